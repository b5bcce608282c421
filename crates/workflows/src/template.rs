//! Node params as templates (minijinja) over the data so far: `trigger`, `nodes.<id>.output`
//! and `execution`.
//!
//! A string that is exactly one `{{ expression }}` evaluates to the expression's JSON
//! value (number, bool, object…); any other string containing `{{` renders to a string;
//! objects and lists are rendered member by member.

use minijinja::{Environment, UndefinedBehavior};
use serde_json::Value;

/// A template that does not parse or evaluate; `path` locates it inside the params.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("template at `{path}`: {message}")]
pub struct TemplateError {
    pub path: String,
    pub message: String,
}

/// Renders templates; one per engine (it holds no per-run state).
#[derive(Debug)]
pub struct Templates {
    env: Environment<'static>,
}

impl Default for Templates {
    fn default() -> Self {
        Self::new()
    }
}

/// The expression of a string that is exactly `{{ expression }}`.
fn sole_expression(text: &str) -> Option<&str> {
    let inner = text.trim().strip_prefix("{{")?.strip_suffix("}}")?;
    (!inner.contains("{{") && !inner.contains("}}")).then_some(inner.trim())
}

impl Templates {
    pub fn new() -> Self {
        let mut env = Environment::new();
        // A typo in a path is an error, not an empty string.
        env.set_undefined_behavior(UndefinedBehavior::Strict);
        Self { env }
    }

    /// Renders every template inside `params` against `context`.
    pub fn render(&self, params: &Value, context: &Value) -> Result<Value, TemplateError> {
        self.render_at(
            params,
            &minijinja::Value::from(minijinja::value::Serde(context)),
            "params",
        )
    }

    fn render_at(
        &self,
        value: &Value,
        context: &minijinja::Value,
        path: &str,
    ) -> Result<Value, TemplateError> {
        let failed = |error: minijinja::Error| TemplateError {
            path: path.to_owned(),
            message: error.to_string(),
        };
        match value {
            Value::String(text) if text.contains("{{") || text.contains("{%") => {
                match sole_expression(text) {
                    Some(expression) => {
                        let evaluated = self
                            .env
                            .compile_expression(expression)
                            .and_then(|compiled| compiled.eval(context.clone()))
                            .map_err(failed)?;
                        serde_json::to_value(&evaluated).map_err(|error| TemplateError {
                            path: path.to_owned(),
                            message: error.to_string(),
                        })
                    }
                    None => self
                        .env
                        .render_str(text, context.clone())
                        .map(Value::String)
                        .map_err(failed),
                }
            }
            Value::Array(items) => items
                .iter()
                .enumerate()
                .map(|(index, item)| self.render_at(item, context, &format!("{path}[{index}]")))
                .collect::<Result<Vec<_>, _>>()
                .map(Value::Array),
            Value::Object(map) => map
                .iter()
                .map(|(key, item)| {
                    Ok((
                        key.clone(),
                        self.render_at(item, context, &format!("{path}.{key}"))?,
                    ))
                })
                .collect::<Result<serde_json::Map<_, _>, _>>()
                .map(Value::Object),
            other => Ok(other.clone()),
        }
    }

    /// Whether `value` evaluates as true (for conditions): JSON truthiness.
    pub fn truthy(value: &Value) -> bool {
        match value {
            Value::Null => false,
            Value::Bool(flag) => *flag,
            Value::Number(number) => number.as_f64().is_some_and(|n| n != 0.0),
            Value::String(text) => !text.is_empty() && text != "false",
            Value::Array(items) => !items.is_empty(),
            Value::Object(map) => !map.is_empty(),
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn context() -> Value {
        json!({"trigger": {"body": {"a": 4, "b": 8, "name": "Ada", "tags": ["x", "y"]}},
               "nodes": {"shape": {"output": {"total": 12}}}})
    }

    #[test]
    fn a_sole_expression_keeps_its_json_type() -> Result<(), TemplateError> {
        let templates = Templates::new();
        assert_eq!(
            templates.render(&json!("{{ trigger.body.a + trigger.body.b }}"), &context())?,
            json!(12)
        );
        assert_eq!(
            templates.render(&json!("{{ nodes.shape.output.total > 10 }}"), &context())?,
            json!(true)
        );
        assert_eq!(
            templates.render(&json!("{{ trigger.body.tags }}"), &context())?,
            json!(["x", "y"])
        );
        Ok(())
    }

    #[test]
    fn mixed_text_renders_to_a_string_and_structures_recurse() -> Result<(), TemplateError> {
        let templates = Templates::new();
        assert_eq!(
            templates.render(&json!({"subject": "Hi {{ trigger.body.name }}!", "n": 3, "list": ["{{ trigger.body.b }}"]}), &context())?,
            json!({"subject": "Hi Ada!", "n": 3, "list": [8]})
        );
        Ok(())
    }

    #[test]
    fn errors_name_where_they_are() {
        let templates = Templates::new();
        let error = templates.render(
            &json!({"values": {"x": "{{ trigger.body.missing.deeper }}"}}),
            &context(),
        );
        assert!(
            matches!(error, Err(TemplateError { ref path, .. }) if path == "params.values.x"),
            "{error:?}"
        );
        assert!(templates.render(&json!("{{ 1 + }}"), &context()).is_err());
    }
}
