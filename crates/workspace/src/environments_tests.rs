//! Tests of `environments`.

use super::*;

#[test]
fn names_follow_their_rules() {
    assert!(valid_environment_name("staging"));
    assert!(valid_environment_name("qa-2"));
    assert!(!valid_environment_name("Staging"));
    assert!(!valid_environment_name("2nd"));
    assert!(!valid_environment_name(""));
    assert!(valid_variable_name("API_URL"));
    assert!(valid_variable_name("_token"));
    assert!(!valid_variable_name("9LIVES"));
    assert!(!valid_variable_name("has-dash"));
    assert!(!valid_variable_name(&"A".repeat(65)));
}

fn environment_with(variables: Vec<Variable>) -> Environment {
    let now = OffsetDateTime::UNIX_EPOCH;
    Environment {
        id: EnvironmentId::new(),
        workspace_id: WorkspaceId::new(),
        name: "staging".to_owned(),
        description: String::new(),
        is_default: false,
        variables,
        created_at: now,
        updated_at: now,
    }
}

#[test]
fn a_secret_without_value_keeps_the_stored_one_and_needs_one() {
    let sealed = CredentialId::new();
    let current = environment_with(vec![Variable {
        name: "TOKEN".to_owned(),
        value: StoredValue::Secret(sealed),
        updated_at: OffsetDateTime::UNIX_EPOCH,
    }]);
    let mut errors = ValidationErrors::new();
    let mut to_seal = Vec::new();
    let inputs = [
        VariableInput {
            name: "TOKEN".to_owned(),
            value: None,
            secret: true,
            secret_ref: None,
        },
        VariableInput {
            name: "NEW_SECRET".to_owned(),
            value: Some("s3cr3t".to_owned()),
            secret: true,
            secret_ref: None,
        },
        VariableInput {
            name: "URL".to_owned(),
            value: Some("https://x.test".to_owned()),
            secret: false,
            secret_ref: None,
        },
    ];
    let now = OffsetDateTime::UNIX_EPOCH + time::Duration::hours(1);
    let variables =
        EnvironmentService::check_variables(&current, &inputs, now, &mut errors, &mut to_seal);
    assert!(errors.is_empty(), "{errors:?}");
    assert_eq!(variables[0].value, StoredValue::Secret(sealed));
    assert_eq!(variables[0].updated_at, OffsetDateTime::UNIX_EPOCH);
    let sealed: Vec<(usize, &str)> = to_seal
        .iter()
        .map(|(index, secret)| (*index, secret.expose_secret()))
        .collect();
    assert_eq!(sealed, vec![(1, "s3cr3t")]);
    assert_eq!(
        variables[2].value,
        StoredValue::Plain("https://x.test".to_owned())
    );

    let mut errors = ValidationErrors::new();
    let missing = [VariableInput {
        name: "OTHER".to_owned(),
        value: None,
        secret: true,
        secret_ref: None,
    }];
    EnvironmentService::check_variables(&current, &missing, now, &mut errors, &mut to_seal);
    assert!(!errors.is_empty());
}

#[test]
fn bad_and_repeated_variable_names_are_named() {
    let current = environment_with(Vec::new());
    let mut errors = ValidationErrors::new();
    let inputs = [
        VariableInput {
            name: "9X".to_owned(),
            value: Some("a".to_owned()),
            secret: false,
            secret_ref: None,
        },
        VariableInput {
            name: "A".to_owned(),
            value: Some("a".to_owned()),
            secret: false,
            secret_ref: None,
        },
        VariableInput {
            name: "A".to_owned(),
            value: Some("b".to_owned()),
            secret: false,
            secret_ref: None,
        },
    ];
    EnvironmentService::check_variables(
        &current,
        &inputs,
        OffsetDateTime::UNIX_EPOCH,
        &mut errors,
        &mut Vec::new(),
    );
    let rendered = format!("{errors:?}");
    assert!(rendered.contains("variables[0].name"), "{rendered}");
    assert!(rendered.contains("variables[2].name"), "{rendered}");
}
