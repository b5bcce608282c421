//! Credential kinds: their fields, which are secret, and validation of submitted data.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

use fluxolab_kernel::{SecretRef, ValidationErrors};

/// What a credential is for; each kind has its own fields.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CredentialKind {
    Smtp,
    HttpBasic,
    HttpHeader,
    BearerToken,
    MetaApp,
    Generic,
}

/// The type of one field's value.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FieldType {
    Text,
    Port,
    OneOf(&'static [&'static str]),
}

/// One field of a kind.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FieldSpec {
    pub name: &'static str,
    pub field_type: FieldType,
    pub required: bool,
    /// Sealed at rest and masked on the way out.
    pub secret: bool,
}

const fn text(name: &'static str, required: bool, secret: bool) -> FieldSpec {
    FieldSpec {
        name,
        field_type: FieldType::Text,
        required,
        secret,
    }
}

const SMTP: &[FieldSpec] = &[
    text("host", true, false),
    FieldSpec {
        name: "port",
        field_type: FieldType::Port,
        required: true,
        secret: false,
    },
    text("username", false, false),
    text("password", false, true),
    FieldSpec {
        name: "tls_mode",
        field_type: FieldType::OneOf(&["none", "starttls", "tls"]),
        required: true,
        secret: false,
    },
];
const HTTP_BASIC: &[FieldSpec] = &[text("username", true, false), text("password", true, true)];
const HTTP_HEADER: &[FieldSpec] = &[text("name", true, false), text("value", true, true)];
const BEARER_TOKEN: &[FieldSpec] = &[text("token", true, true)];
const META_APP: &[FieldSpec] = &[
    text("app_secret", true, true),
    text("access_token", true, true),
    text("verify_token", true, true),
];

/// The longest value any field may hold.
pub const MAX_VALUE_CHARS: usize = 8192;

/// Submitted data split into what is stored plainly and what is sealed.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct SplitData {
    pub public: Map<String, Value>,
    /// Secret values, and `{"secret_ref": …}` objects standing for values kept in a
    /// secret provider (resolved at use).
    pub secrets: Map<String, Value>,
    /// The references among the secrets, by field, for the caller to check that their
    /// providers exist.
    pub references: Vec<(String, SecretRef)>,
}

/// Checks a secret field's value when it is a `{"secret_ref": …}`: `None` when it is
/// not one (check it as a value), else whether the reference is well formed.
fn reference(
    field: &str,
    value: &Value,
    split: &mut SplitData,
    errors: &mut ValidationErrors,
) -> Option<()> {
    match SecretRef::in_value(value)? {
        Ok(reference) => {
            split.secrets.insert(field.to_owned(), value.clone());
            split.references.push((field.to_owned(), reference));
        }
        Err(message) => errors.add(format!("data.{field}.secret_ref"), message),
    }
    Some(())
}

impl CredentialKind {
    pub const ALL: [CredentialKind; 6] = [
        CredentialKind::Smtp,
        CredentialKind::HttpBasic,
        CredentialKind::HttpHeader,
        CredentialKind::BearerToken,
        CredentialKind::MetaApp,
        CredentialKind::Generic,
    ];

    pub const fn code(self) -> &'static str {
        match self {
            CredentialKind::Smtp => "smtp",
            CredentialKind::HttpBasic => "http_basic",
            CredentialKind::HttpHeader => "http_header",
            CredentialKind::BearerToken => "bearer_token",
            CredentialKind::MetaApp => "meta_app",
            CredentialKind::Generic => "generic",
        }
    }

    /// Parses a stored or submitted code.
    pub fn from_code(code: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|kind| kind.code() == code)
    }

    /// The declared fields; `Generic` declares none (any string key, all secret).
    pub const fn fields(self) -> &'static [FieldSpec] {
        match self {
            CredentialKind::Smtp => SMTP,
            CredentialKind::HttpBasic => HTTP_BASIC,
            CredentialKind::HttpHeader => HTTP_HEADER,
            CredentialKind::BearerToken => BEARER_TOKEN,
            CredentialKind::MetaApp => META_APP,
            CredentialKind::Generic => &[],
        }
    }

    /// Whether `field` of this kind is secret.
    pub fn is_secret(self, field: &str) -> bool {
        self == CredentialKind::Generic
            || self
                .fields()
                .iter()
                .any(|spec| spec.name == field && spec.secret)
    }

    /// A JSON Schema of the kind's `data`; secret fields are `writeOnly` and `x-secret`.
    pub fn json_schema(self) -> Value {
        if self == CredentialKind::Generic {
            return json!({
                "type": "object",
                "minProperties": 1,
                "propertyNames": {"minLength": 1, "maxLength": 128},
                "additionalProperties": {
                    "anyOf": [
                        {"type": "string", "maxLength": MAX_VALUE_CHARS},
                        SecretRef::json_schema(),
                    ],
                    "writeOnly": true,
                    "x-secret": true,
                },
            });
        }
        let mut properties = Map::new();
        for spec in self.fields() {
            let mut schema = match spec.field_type {
                // A required text must hold more than spaces.
                FieldType::Text if spec.required => json!({
                    "type": "string",
                    "minLength": 1,
                    "maxLength": MAX_VALUE_CHARS,
                    "pattern": "\\S",
                }),
                FieldType::Text => {
                    json!({"type": ["string", "null"], "maxLength": MAX_VALUE_CHARS})
                }
                FieldType::Port if spec.required => {
                    json!({"type": "integer", "minimum": 1, "maximum": 65535})
                }
                FieldType::Port => {
                    json!({"type": ["integer", "null"], "minimum": 1, "maximum": 65535})
                }
                FieldType::OneOf(values) if spec.required => {
                    json!({"type": "string", "enum": values})
                }
                FieldType::OneOf(values) => {
                    let mut values: Vec<Value> = values.iter().map(|v| json!(v)).collect();
                    values.push(Value::Null);
                    json!({"type": ["string", "null"], "enum": values})
                }
            };
            if spec.secret {
                if spec.field_type == FieldType::Text {
                    // Or a secret provider's secret, resolved at use.
                    schema = json!({"anyOf": [schema, SecretRef::json_schema()]});
                }
                schema["writeOnly"] = Value::Bool(true);
                schema["x-secret"] = Value::Bool(true);
            }
            properties.insert(spec.name.to_owned(), schema);
        }
        let required: Vec<&str> = self
            .fields()
            .iter()
            .filter(|spec| spec.required)
            .map(|spec| spec.name)
            .collect();
        json!({
            "type": "object",
            "properties": properties,
            "required": required,
            "additionalProperties": false,
        })
    }

    /// Validates submitted `data` and splits it. With `keep_secrets` (a PATCH), an
    /// absent secret field keeps its stored value, so it is not required here; the
    /// caller merges. Every problem is reported at once, as `data.<field>`.
    pub fn validate(
        self,
        data: &Map<String, Value>,
        keep_secrets: &[String],
    ) -> Result<SplitData, ValidationErrors> {
        let mut errors = ValidationErrors::new();
        let mut split = SplitData::default();
        let too_long = |value: &str| value.chars().count() > MAX_VALUE_CHARS;
        if self == CredentialKind::Generic {
            if data.is_empty() && keep_secrets.is_empty() {
                errors.add("data", "must have at least one key");
            }
            for (key, value) in data {
                if reference(key, value, &mut split, &mut errors).is_some() {
                    continue;
                }
                match value.as_str() {
                    _ if key.is_empty() || key.chars().count() > 128 => {
                        errors.add(format!("data.{key}"), "keys must be 1–128 characters")
                    }
                    Some(text) if too_long(text) => errors.add(
                        format!("data.{key}"),
                        format!("must be at most {MAX_VALUE_CHARS} characters"),
                    ),
                    Some(_) => {
                        split.secrets.insert(key.clone(), value.clone());
                    }
                    None => errors.add(format!("data.{key}"), "must be a string"),
                }
            }
            return errors.into_result(split);
        }
        for key in data.keys() {
            if !self.fields().iter().any(|spec| spec.name == key) {
                errors.add(
                    format!("data.{key}"),
                    format!("is not a field of {} credentials", self.code()),
                );
            }
        }
        for spec in self.fields() {
            let field = format!("data.{}", spec.name);
            let Some(value) = data.get(spec.name).filter(|value| !value.is_null()) else {
                if spec.required
                    && !(spec.secret && keep_secrets.iter().any(|kept| kept == spec.name))
                {
                    errors.add(field, "is required");
                }
                continue;
            };
            if spec.secret
                && spec.field_type == FieldType::Text
                && reference(spec.name, value, &mut split, &mut errors).is_some()
            {
                continue;
            }
            let valid = match spec.field_type {
                FieldType::Text => match value.as_str() {
                    Some(text) if spec.required && text.trim().is_empty() => {
                        Err("must not be empty".to_owned())
                    }
                    Some(text) if too_long(text) => {
                        Err(format!("must be at most {MAX_VALUE_CHARS} characters"))
                    }
                    Some(_) => Ok(()),
                    None => Err("must be a string".to_owned()),
                },
                FieldType::Port => match value.as_u64() {
                    Some(1..=65535) => Ok(()),
                    _ => Err("must be a whole number from 1 to 65535".to_owned()),
                },
                FieldType::OneOf(values) => match value.as_str() {
                    Some(text) if values.contains(&text) => Ok(()),
                    _ => Err(format!("must be one of {}", values.join(", "))),
                },
            };
            match valid {
                Err(message) => errors.add(field, message),
                Ok(()) if spec.secret => {
                    split.secrets.insert(spec.name.to_owned(), value.clone());
                }
                Ok(()) => {
                    split.public.insert(spec.name.to_owned(), value.clone());
                }
            }
        }
        errors.into_result(split)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn data(value: Value) -> Map<String, Value> {
        match value {
            Value::Object(map) => map,
            _ => Map::new(),
        }
    }

    #[test]
    fn smtp_data_is_split_into_public_fields_and_sealed_secrets() -> Result<(), ValidationErrors> {
        let split = CredentialKind::Smtp.validate(
            &data(json!({"host": "smtp.example.com", "port": 587, "username": "ada", "password": "s3cret", "tls_mode": "starttls"})),
            &[],
        )?;
        assert_eq!(split.secrets, data(json!({"password": "s3cret"})));
        assert_eq!(split.public["port"], 587);
        assert!(!split.public.contains_key("password"));
        Ok(())
    }

    #[test]
    fn every_problem_names_its_field() {
        let errors = CredentialKind::Smtp
            .validate(
                &data(json!({"port": "587", "tls_mode": "ssl", "colour": "red"})),
                &[],
            )
            .err()
            .unwrap_or_default();
        let fields: Vec<_> = errors.errors().iter().map(|e| e.field.as_str()).collect();
        assert_eq!(
            fields,
            ["data.colour", "data.host", "data.port", "data.tls_mode"]
        );
    }

    #[test]
    fn a_kept_secret_is_not_required_again() {
        let patch = data(json!({"name": "X-Api-Key"}));
        assert!(CredentialKind::HttpHeader.validate(&patch, &[]).is_err());
        assert!(
            CredentialKind::HttpHeader
                .validate(&patch, &["value".to_owned()])
                .is_ok()
        );
    }

    #[test]
    fn generic_values_are_all_secret_strings() {
        assert!(
            CredentialKind::Generic
                .validate(&data(json!({"a": 1})), &[])
                .is_err()
        );
        let split = CredentialKind::Generic.validate(&data(json!({"a": "1"})), &[]);
        assert!(split.is_ok_and(|split| split.public.is_empty() && split.secrets.len() == 1));
    }

    #[test]
    fn a_secret_field_may_reference_a_secret_provider_and_a_plain_one_may_not() {
        let reference = json!({"secret_ref": {"provider": "aws-prod", "name": "smtp/pass"}});
        let split = CredentialKind::Smtp
            .validate(
                &data(
                    json!({"host": "mail.example.com", "port": 587, "username": "u",
                             "password": reference, "tls_mode": "starttls"}),
                ),
                &[],
            )
            .expect("a reference stands for the password");
        assert_eq!(split.secrets["password"], reference);
        assert_eq!(split.references[0].0, "password");
        assert_eq!(split.references[0].1.provider, "aws-prod");
        let refused = CredentialKind::Smtp.validate(
            &data(
                json!({"host": reference, "port": 587, "username": "u", "password": "p",
                         "tls_mode": "starttls"}),
            ),
            &[],
        );
        assert!(refused.is_err(), "a public field takes no reference");
        let malformed = CredentialKind::Generic
            .validate(
                &data(json!({"token": {"secret_ref": {"provider": "Bad Name", "name": "x"}}})),
                &[],
            )
            .expect_err("malformed");
        assert_eq!(malformed.errors()[0].field, "data.token.secret_ref");
    }

    #[test]
    fn schemas_mark_secret_fields() {
        let schema = CredentialKind::MetaApp.json_schema();
        assert_eq!(schema["properties"]["app_secret"]["x-secret"], true);
        assert_eq!(schema["required"].as_array().map(Vec::len), Some(3));
        assert_eq!(
            CredentialKind::from_code("smtp"),
            Some(CredentialKind::Smtp)
        );
        assert_eq!(CredentialKind::from_code("ftp"), None);
    }
}
