//! Plugin actions from the operator's side: `key=value` words checked and typed
//! against the action's declared parameters before the plugin is called, and the
//! declaration as JSON Schema for `plugins list --json`.

use gordon_plugin_api::{ActionSpec, ParamType};
use serde_json::{json, Map, Value};

/// Turns `key=value` words into the action's parameters: every key declared,
/// every value of its declared type, every required parameter present.
///
/// # Errors
/// One line naming the parameter and what is wrong, and the parameters the action
/// takes.
pub fn params(spec: &ActionSpec, words: &[String]) -> Result<Map<String, Value>, String> {
    let mut out = Map::new();
    let takes = || {
        if spec.params.is_empty() {
            "it takes no parameters".to_owned()
        } else {
            let names: Vec<String> = spec
                .params
                .iter()
                .map(|p| {
                    let kind = type_name(p.kind);
                    if p.required {
                        format!("{}={kind}", p.name)
                    } else {
                        format!("[{}={kind}]", p.name)
                    }
                })
                .collect();
            format!("it takes {}", names.join(" "))
        }
    };
    for word in words {
        let Some((key, text)) = word.split_once('=') else {
            return Err(format!(
                "`{word}` is not key=value (action `{}`: {})",
                spec.name,
                takes()
            ));
        };
        let Some(param) = spec.params.iter().find(|p| p.name == key) else {
            return Err(format!(
                "action `{}` has no parameter `{key}` ({})",
                spec.name,
                takes()
            ));
        };
        let value = typed(param.kind, text).ok_or_else(|| {
            format!(
                "parameter `{key}` of action `{}` must be {}, not `{text}`",
                spec.name,
                article(param.kind)
            )
        })?;
        out.insert(key.to_owned(), value);
    }
    if let Some(missing) = spec
        .params
        .iter()
        .find(|p| p.required && !out.contains_key(&p.name))
    {
        return Err(format!(
            "action `{}` needs parameter `{}` ({})",
            spec.name,
            missing.name,
            takes()
        ));
    }
    Ok(out)
}

fn typed(kind: ParamType, text: &str) -> Option<Value> {
    Some(match kind {
        ParamType::String => json!(text),
        ParamType::Integer => json!(text.parse::<i64>().ok()?),
        ParamType::Number => {
            let n = text.parse::<f64>().ok().filter(|n| n.is_finite())?;
            json!(n)
        }
        ParamType::Boolean => json!(text.parse::<bool>().ok()?),
    })
}

fn type_name(kind: ParamType) -> &'static str {
    match kind {
        ParamType::String => "string",
        ParamType::Integer => "integer",
        ParamType::Number => "number",
        ParamType::Boolean => "boolean",
    }
}

fn article(kind: ParamType) -> &'static str {
    match kind {
        ParamType::String => "a string",
        ParamType::Integer => "an integer",
        ParamType::Number => "a number",
        ParamType::Boolean => "true or false",
    }
}

/// An action as `plugins list --json` shows it: its name, description, and its
/// parameters as a JSON Schema object.
pub fn schema(spec: &ActionSpec) -> Value {
    let mut properties = Map::new();
    for p in &spec.params {
        properties.insert(
            p.name.clone(),
            json!({"type": type_name(p.kind), "description": p.description}),
        );
    }
    let required: Vec<&str> = spec
        .params
        .iter()
        .filter(|p| p.required)
        .map(|p| p.name.as_str())
        .collect();
    json!({
        "name": spec.name,
        "description": spec.description,
        "params": {
            "type": "object",
            "properties": properties,
            "required": required,
            "additionalProperties": false,
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use gordon_plugin_api::Param;

    fn probe() -> ActionSpec {
        ActionSpec::new("probe", "Checks")
            .param(Param::required("zone", ParamType::String, "Zone"))
            .param(Param::optional("tries", ParamType::Integer, "How often"))
            .param(Param::optional("strict", ParamType::Boolean, "Fail hard"))
    }

    fn words(w: &[&str]) -> Vec<String> {
        w.iter().map(|s| (*s).to_owned()).collect()
    }

    #[test]
    fn values_are_typed_as_declared() {
        let p = params(&probe(), &words(&["zone=a.", "tries=3", "strict=true"])).unwrap();
        assert_eq!(
            Value::Object(p),
            json!({"zone": "a.", "tries": 3, "strict": true})
        );
    }

    #[test]
    fn bad_words_are_named() {
        let e = params(&probe(), &words(&["zone=a.", "tries=three"])).unwrap_err();
        assert_eq!(
            e,
            "parameter `tries` of action `probe` must be an integer, not `three`"
        );
        let e = params(&probe(), &words(&["bogus=1"])).unwrap_err();
        assert!(
            e.starts_with("action `probe` has no parameter `bogus`"),
            "{e}"
        );
        assert!(e.contains("zone=string [tries=integer]"), "{e}");
        let e = params(&probe(), &words(&[])).unwrap_err();
        assert!(
            e.starts_with("action `probe` needs parameter `zone`"),
            "{e}"
        );
        let e = params(&probe(), &words(&["zone"])).unwrap_err();
        assert!(e.starts_with("`zone` is not key=value"), "{e}");
    }

    #[test]
    fn schema_lists_properties_and_required() {
        let s = schema(&probe());
        assert_eq!(s["params"]["required"], json!(["zone"]));
        assert_eq!(s["params"]["properties"]["tries"]["type"], "integer");
    }
}
