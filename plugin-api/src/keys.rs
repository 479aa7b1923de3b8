//! What an operator may write in a plugin's table (since 1.3): each key's name,
//! type, default and one line of documentation, described by the plugin from its
//! configuration type so that `gordon plugins info` and `gordon check` can name
//! valid keys to an operator who holds only the library.
//!
//! Derive [`JsonSchema`](schemars::JsonSchema) beside `Deserialize` on the
//! configuration type and return [`ConfigKey::of`] from
//! [`Plugin::config_keys`](crate::Plugin::config_keys):
//!
//! ```
//! use gordon_plugin_api::schemars::{self, JsonSchema};
//! use gordon_plugin_api::ConfigKey;
//! use serde::Deserialize;
//!
//! #[derive(Deserialize, JsonSchema)]
//! struct Config {
//!     /// The TTL of the records this plugin writes, in seconds.
//!     #[serde(default = "default_ttl")]
//!     ttl: u32,
//!     /// The zone's primary server, `host:port`.
//!     server: String,
//! }
//!
//! fn default_ttl() -> u32 {
//!     300
//! }
//!
//! let keys = ConfigKey::of::<Config>();
//! assert_eq!(keys[0].name, "server");
//! assert!(keys[0].required);
//! assert_eq!(keys[1].name, "ttl");
//! assert_eq!(keys[1].kind, "integer");
//! assert_eq!(keys[1].default.as_deref(), Some("300"));
//! assert_eq!(keys[1].doc, "The TTL of the records this plugin writes, in seconds.");
//! ```
//!
//! The derive's generated code names `schemars`, so bring the SDK's re-export
//! into scope as above (`use gordon_plugin_api::schemars::{self, JsonSchema}`);
//! a crate that depends on `schemars = "1"` itself gets the same crate.

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// How deep nested tables are listed (`tsig.secret` is depth 2).
const MAX_DEPTH: usize = 3;

/// One key of a plugin's configuration table.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConfigKey {
    /// Its name; a key of a nested table is dotted (`tsig.secret`).
    pub name: String,
    /// Its type, in words: `string`, `integer`, `number`, `boolean`, `table`,
    /// `list of string`, `one of "a", "b"`.
    #[serde(rename = "type")]
    pub kind: String,
    /// Whether the plugin refuses a configuration without it.
    #[serde(default)]
    pub required: bool,
    /// Its default as TOML would spell it, when it has one (`schemars` records the
    /// `#[serde(default = "…")]` of a field whose type is `Serialize`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default: Option<String>,
    /// The first line of its documentation.
    #[serde(default)]
    pub doc: String,
}

impl ConfigKey {
    /// The keys of configuration type `T`, from its JSON schema, sorted by name
    /// (nested tables' keys after their table).
    pub fn of<T: schemars::JsonSchema>() -> Vec<ConfigKey> {
        ConfigKey::from_schema(schemars::schema_for!(T).as_value())
    }

    /// The keys a JSON schema (draft 2020-12, as `schemars` writes it) describes
    /// for an object.
    pub fn from_schema(schema: &Value) -> Vec<ConfigKey> {
        let mut keys = Vec::new();
        walk(schema, schema, "", 1, &mut keys);
        keys
    }
}

/// Appends the keys of object schema `node` under `prefix`.
fn walk(root: &Value, node: &Value, prefix: &str, depth: usize, out: &mut Vec<ConfigKey>) {
    let node = resolve(root, node);
    let Some(props) = node.get("properties").and_then(Value::as_object) else {
        return;
    };
    let required: Vec<&str> = node
        .get("required")
        .and_then(Value::as_array)
        .map(|r| r.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    for (name, prop) in props {
        let target = non_null(root, prop);
        let dotted = format!("{prefix}{name}");
        out.push(ConfigKey {
            name: dotted.clone(),
            kind: describe(root, target),
            required: required.contains(&name.as_str()),
            default: prop.get("default").map(toml_like),
            doc: first_line(prop)
                .or_else(|| first_line(target))
                .unwrap_or_default(),
        });
        if depth < MAX_DEPTH && target.get("properties").is_some() {
            walk(root, target, &format!("{dotted}."), depth + 1, out);
        }
    }
}

/// Follows a local `$ref` (`#/$defs/Name`).
fn resolve<'a>(root: &'a Value, node: &'a Value) -> &'a Value {
    let Some(path) = node.get("$ref").and_then(Value::as_str) else {
        return node;
    };
    let Some(pointer) = path.strip_prefix('#') else {
        return node;
    };
    root.pointer(pointer)
        .map_or(node, |target| resolve(root, target))
}

/// The schema of an optional value without its `null` alternative.
fn non_null<'a>(root: &'a Value, node: &'a Value) -> &'a Value {
    let node = resolve(root, node);
    for key in ["anyOf", "oneOf"] {
        if let Some(alts) = node.get(key).and_then(Value::as_array) {
            let real: Vec<&Value> = alts.iter().filter(|a| !is_null(a)).collect();
            if real.len() == 1 && real.len() < alts.len() {
                return resolve(root, real[0]);
            }
        }
    }
    node
}

fn is_null(node: &Value) -> bool {
    node.get("type").and_then(Value::as_str) == Some("null")
        || node.get("const").is_some_and(Value::is_null)
}

/// A schema's type in words.
fn describe(root: &Value, node: &Value) -> String {
    let node = non_null(root, node);
    if let Some(values) = node.get("enum").and_then(Value::as_array) {
        return one_of(values.iter().filter(|v| !v.is_null()).cloned().collect());
    }
    if let Some(value) = node.get("const") {
        return value.to_string();
    }
    for key in ["oneOf", "anyOf"] {
        if let Some(alts) = node.get(key).and_then(Value::as_array) {
            let alts: Vec<&Value> = alts
                .iter()
                .map(|a| resolve(root, a))
                .filter(|a| !is_null(a))
                .collect();
            // Unit variants of an enum: each a `const` (or a one-value `enum`).
            let consts: Option<Vec<Value>> = alts
                .iter()
                .map(|a| {
                    a.get("const").cloned().or_else(|| {
                        a.get("enum")
                            .and_then(Value::as_array)
                            .filter(|e| e.len() == 1)
                            .map(|e| e[0].clone())
                    })
                })
                .collect();
            if let Some(consts) = consts {
                return one_of(consts);
            }
            let mut kinds: Vec<String> = alts.iter().map(|a| describe(root, a)).collect();
            kinds.dedup();
            return kinds.join(" or ");
        }
    }
    let kind = match node.get("type") {
        Some(Value::String(t)) => t.as_str(),
        Some(Value::Array(types)) => types
            .iter()
            .filter_map(Value::as_str)
            .find(|t| *t != "null")
            .unwrap_or("value"),
        _ => "value",
    };
    match kind {
        "array" => match node.get("items") {
            Some(items) => format!("list of {}", describe(root, items)),
            None => "list".to_owned(),
        },
        "object" => match node.get("additionalProperties") {
            Some(values @ Value::Object(_)) if node.get("properties").is_none() => {
                format!("table of {}", describe(root, values))
            }
            _ => "table".to_owned(),
        },
        other => other.to_owned(),
    }
}

fn one_of(values: Vec<Value>) -> String {
    let shown: Vec<String> = values.iter().map(Value::to_string).collect();
    format!("one of {}", shown.join(", "))
}

/// A default as TOML spells it: strings quoted, lists and tables inline.
fn toml_like(value: &Value) -> String {
    match value {
        Value::Object(map) if map.is_empty() => "{}".to_owned(),
        Value::Object(map) => {
            let items: Vec<String> = map
                .iter()
                .map(|(k, v)| format!("{k} = {}", toml_like(v)))
                .collect();
            format!("{{ {} }}", items.join(", "))
        }
        Value::Array(items) => {
            let items: Vec<String> = items.iter().map(toml_like).collect();
            format!("[{}]", items.join(", "))
        }
        other => other.to_string(),
    }
}

/// The first line of a schema's documentation: its `title` (`schemars` makes one
/// of a doc comment that opens with a `# heading`), else its `description`.
fn first_line(node: &Value) -> Option<String> {
    ["title", "description"].iter().find_map(|key| {
        let text = node.get(*key).and_then(Value::as_str)?;
        text.lines()
            .map(str::trim)
            .find(|l| !l.is_empty())
            .map(str::to_owned)
    })
}

#[cfg(test)]
mod tests {
    use schemars::JsonSchema;
    use serde::Deserialize;

    use super::ConfigKey;

    // `Serialize` too: schemars shows a default only of a type it can serialise.
    #[allow(dead_code)]
    #[derive(Deserialize, serde::Serialize, JsonSchema)]
    #[serde(rename_all = "lowercase")]
    enum Policy {
        Report,
        Correct,
    }

    #[allow(dead_code)]
    #[derive(Deserialize, JsonSchema)]
    struct Tsig {
        /// The key's name.
        name: String,
        /// Its base64 secret.
        ///
        /// Read from the file when it starts with `@`.
        secret: String,
    }

    #[allow(dead_code)]
    #[derive(Deserialize, JsonSchema)]
    struct Config {
        /// Servers to fail over to, in order.
        servers: Vec<String>,
        /// What a run does with differences.
        #[serde(default = "report")]
        policy: Policy,
        /// How long to wait for an answer, in seconds.
        timeout: Option<f64>,
        /// Signs every message.
        tsig: Option<Tsig>,
        /// Extra labels.
        #[serde(default)]
        labels: std::collections::BTreeMap<String, String>,
        #[serde(default = "yes")]
        verify: bool,
    }

    fn report() -> Policy {
        Policy::Report
    }

    fn yes() -> bool {
        true
    }

    fn key<'a>(keys: &'a [ConfigKey], name: &str) -> &'a ConfigKey {
        keys.iter()
            .find(|k| k.name == name)
            .unwrap_or_else(|| panic!("no key {name} in {keys:?}"))
    }

    #[test]
    fn each_key_has_its_type_default_and_first_line_of_doc() {
        let keys = ConfigKey::of::<Config>();
        let servers = key(&keys, "servers");
        assert_eq!(servers.kind, "list of string");
        assert!(servers.required);
        assert_eq!(servers.doc, "Servers to fail over to, in order.");
        let policy = key(&keys, "policy");
        assert_eq!(policy.kind, r#"one of "report", "correct""#);
        assert_eq!(policy.default.as_deref(), Some(r#""report""#));
        assert!(!policy.required);
        let timeout = key(&keys, "timeout");
        assert_eq!(timeout.kind, "number");
        assert!(!timeout.required);
        assert_eq!(key(&keys, "labels").kind, "table of string");
        assert_eq!(key(&keys, "verify").default.as_deref(), Some("true"));
        assert_eq!(key(&keys, "verify").doc, "");
    }

    #[test]
    fn a_nested_table_lists_its_keys_dotted_after_it() {
        let keys = ConfigKey::of::<Config>();
        let names: Vec<&str> = keys.iter().map(|k| k.name.as_str()).collect();
        let at = names.iter().position(|n| *n == "tsig").unwrap();
        assert_eq!(&names[at + 1..at + 3], ["tsig.name", "tsig.secret"]);
        assert_eq!(key(&keys, "tsig").kind, "table");
        assert!(key(&keys, "tsig.secret").required);
        assert_eq!(key(&keys, "tsig.secret").doc, "Its base64 secret.");
    }

    #[test]
    fn keys_survive_the_trip_through_json() {
        let keys = ConfigKey::of::<Config>();
        let text = serde_json::to_string(&keys).unwrap();
        let back: Vec<ConfigKey> = serde_json::from_str(&text).unwrap();
        assert_eq!(back, keys);
    }
}
