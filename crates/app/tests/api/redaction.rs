//! Every value that carries a secret across our crates formats for debugging without it.

use fluxolab_kernel::{RunEnvironment, SecretString};
use fluxolab_webhooks::model::{NewRegistration, RegistrationPatch};
use fluxolab_workspace::environments::{EnvironmentPatch, VariableInput};
use serde_json::{Map, Value};

const SECRET: &str = "hunter2-the-secret-value";

#[test]
fn no_secret_bearing_value_shows_its_secret_in_debug() {
    let secret = || SecretString::from(SECRET);
    let mut variables = Map::new();
    variables.insert("API_TOKEN".to_owned(), Value::String(SECRET.to_owned()));
    let shown = [
        format!("{:?}", secret()),
        format!(
            "{:?}",
            NewRegistration {
                name: "Orders".to_owned(),
                verify_token: Some(secret()),
                signing_secret: Some(secret()),
                ..NewRegistration::default()
            }
        ),
        format!(
            "{:?}",
            RegistrationPatch {
                verify_token: Some(Some(secret())),
                signing_secret: Some(secret()),
                ..RegistrationPatch::default()
            }
        ),
        format!(
            "{:?}",
            EnvironmentPatch {
                variables: Some(vec![VariableInput {
                    secret_ref: None,
                    name: "API_TOKEN".to_owned(),
                    value: Some(SECRET.to_owned()),
                    secret: true,
                }]),
                ..EnvironmentPatch::default()
            }
        ),
        format!(
            "{:?}",
            RunEnvironment {
                variables,
                secrets: vec![SECRET.to_owned()],
            }
        ),
    ];
    for text in shown {
        assert!(!text.contains(SECRET), "a secret in {text}");
        assert!(!text.contains("hunter2"), "part of a secret in {text}");
    }
}

#[test]
fn a_plain_variable_still_shows_its_value() {
    let plain = VariableInput {
        name: "REGION".to_owned(),
        value: Some("eu-west-1".to_owned()),
        secret: false,
        secret_ref: None,
    };
    assert!(format!("{plain:?}").contains("eu-west-1"));
}
