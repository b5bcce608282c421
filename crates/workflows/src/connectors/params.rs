//! The params of a connector action's node, checked against the action's JSON Schema:
//! when a workflow is saved a value that is still a template passes (it is known only
//! when the step runs); when the step runs, the rendered params must pass whole.

use serde_json::Value;

/// Compiles `schema` (no remote references: the crate's resolvers are off).
pub fn compile(schema: &Value) -> Result<jsonschema::Validator, String> {
    jsonschema::validator_for(schema).map_err(|error| error.to_string())
}

/// Whether `text` parses as a template (its values are known only when it runs).
pub fn check_template(text: &str) -> Result<(), String> {
    let env = minijinja::Environment::new();
    env.template_from_str(text)
        .map(|_| ())
        .map_err(|error| error.to_string())
}

fn is_template(value: &Value) -> bool {
    value
        .as_str()
        .is_some_and(|text| text.contains("{{") || text.contains("{%"))
}

/// `/text/body` or `/to/0` as a field under `params` (`text.body`, `to[0]`).
fn field_of(pointer: &str) -> String {
    let mut field = String::new();
    for segment in pointer.split('/').skip(1) {
        let segment = segment.replace("~1", "/").replace("~0", "~");
        if segment.parse::<usize>().is_ok() && !field.is_empty() {
            field.push_str(&format!("[{segment}]"));
        } else {
            if !field.is_empty() {
                field.push('.');
            }
            field.push_str(&segment);
        }
    }
    field
}

/// Problems of `params` against `schema`, as (param, message) pairs (the param is
/// empty for the params as a whole). With `templates_pass`, a problem found at a string
/// that is a template is left out.
pub fn check(schema: &Value, params: &Value, templates_pass: bool) -> Vec<(String, String)> {
    let validator = match compile(schema) {
        Ok(validator) => validator,
        Err(message) => {
            return vec![(
                String::new(),
                format!("the action's params_schema: {message}"),
            )];
        }
    };
    let empty = Value::Object(serde_json::Map::new());
    let params = if params.is_null() { &empty } else { params };
    validator
        .iter_errors(params)
        .filter_map(|error| {
            let pointer = error.instance_path().as_str().to_owned();
            let at_template = params.pointer(&pointer).is_some_and(is_template);
            (!(templates_pass && at_template)).then(|| (field_of(&pointer), error.to_string()))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn schema() -> Value {
        json!({"type": "object", "required": ["to", "count"], "additionalProperties": false,
               "properties": {"to": {"type": "string", "pattern": "^[0-9]+$"},
                              "count": {"type": "integer"},
                              "tags": {"type": "array", "items": {"type": "string"}}}})
    }

    #[test]
    fn templates_pass_when_saved_but_not_once_rendered() {
        let params = json!({"to": "{{ trigger.body.phone }}", "count": "{{ trigger.body.n }}"});
        assert_eq!(check(&schema(), &params, true), vec![]);
        let mut problems: Vec<String> = check(&schema(), &params, false)
            .into_iter()
            .map(|(field, _)| field)
            .collect();
        problems.sort();
        assert_eq!(problems, ["count", "to"]);
    }

    #[test]
    fn problems_name_the_param() {
        let problems: Vec<String> = check(
            &schema(),
            &json!({"to": "x", "tags": [1], "extra": 1}),
            true,
        )
        .into_iter()
        .map(|(field, _)| field)
        .collect();
        assert!(problems.contains(&String::new()), "{problems:?}");
        assert!(problems.contains(&"to".to_owned()), "{problems:?}");
        assert!(problems.contains(&"tags[0]".to_owned()), "{problems:?}");
        assert!(check_template("{{ params.to ").is_err());
        assert!(check_template("{{ params.to }}").is_ok());
    }
}
