//! Living under change (since 1.3): what a plugin declares and receives while it
//! runs — actions an operator invokes, configuration applied live, host events.
//!
//! All of it is optional. A plugin that implements none of it keeps working: the
//! host replaces it with a new instance when its configuration changes, lists no
//! actions for it, and sends it no events.

use serde::{Deserialize, Serialize};

/// The type of an action parameter. `gordon ctl action P A key=value` converts
/// each value to it, and refuses one that does not convert, before the plugin is
/// called.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ParamType {
    /// Any text.
    String,
    /// A whole number.
    Integer,
    /// Any number.
    Number,
    /// `true` or `false`.
    Boolean,
}

/// One parameter of an [`ActionSpec`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Param {
    /// Its name, as the operator writes it (`name=value`).
    pub name: String,
    /// Its type.
    #[serde(rename = "type")]
    pub kind: ParamType,
    /// Whether the action refuses to run without it.
    pub required: bool,
    /// One line for the operator.
    pub description: String,
}

impl Param {
    /// A parameter the action cannot run without.
    pub fn required(name: &str, kind: ParamType, description: &str) -> Param {
        Param {
            name: name.into(),
            kind,
            required: true,
            description: description.into(),
        }
    }

    /// A parameter the action can run without.
    pub fn optional(name: &str, kind: ParamType, description: &str) -> Param {
        Param {
            required: false,
            ..Param::required(name, kind, description)
        }
    }
}

/// A named action a plugin offers an operator (dr-provision's `Action`), declared
/// by [`Plugin::actions`](crate::Plugin::actions) and run by
/// [`Plugin::invoke`](crate::Plugin::invoke) on the live instance.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ActionSpec {
    /// Its name: `gordon ctl action PLUGIN NAME`.
    pub name: String,
    /// One line saying what it does.
    pub description: String,
    /// Its parameters.
    #[serde(default)]
    pub params: Vec<Param>,
}

impl ActionSpec {
    /// An action without parameters.
    pub fn new(name: &str, description: &str) -> ActionSpec {
        ActionSpec {
            name: name.into(),
            description: description.into(),
            params: Vec::new(),
        }
    }

    /// Adds a parameter.
    #[must_use]
    pub fn param(mut self, param: Param) -> ActionSpec {
        self.params.push(param);
        self
    }
}

/// The answer of [`Plugin::apply_config`](crate::Plugin::apply_config).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConfigChange {
    /// The live instance now runs on the new configuration.
    Applied,
    /// The plugin does not apply this change live: the host starts a new instance
    /// on the new configuration and drains the old one. The default.
    Restart,
}

/// The plugin's definition, as the host reads it without creating the plugin.
#[doc(hidden)]
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Definition {
    /// Its actions.
    #[serde(default)]
    pub actions: Vec<ActionSpec>,
    /// The host events it selects, as patterns.
    #[serde(default)]
    pub events: Vec<String>,
    /// The keys of its configuration, when it describes them
    /// ([`Plugin::config_keys`](crate::Plugin::config_keys)).
    #[serde(default)]
    pub config: Vec<crate::ConfigKey>,
}

/// One event of the host's life, delivered to a plugin that selected it
/// ([`Plugin::HOST_EVENTS`](crate::Plugin::HOST_EVENTS)).
///
/// Events are delivered asynchronously, on a bounded queue per plugin: a plugin
/// that handles them slowly misses some (the host counts them in
/// `gordon_host_events_dropped_total{plugin}`), and never slows the host.
#[derive(Debug, Clone, PartialEq)]
pub struct HostEvent {
    /// What happened: `plugin.started`, `plugin.stopped`, `plugin.failed`,
    /// `plugin.restarted`, `plugin.left`, `config.applied`, `config.refused`,
    /// `message.dropped`, `action.invoked`.
    pub name: String,
    /// The plugin it is about, if any.
    pub plugin: Option<String>,
    /// When, RFC 3339.
    pub time: String,
    /// The whole event as the host sent it: the fields above and the event's own
    /// (`reason`, `generation`, `action`, `msg_id`, ...).
    pub json: serde_json::Value,
}

impl HostEvent {
    /// Reads an event from the host's JSON.
    pub(crate) fn from_json(text: &str) -> Option<HostEvent> {
        let json: serde_json::Value = serde_json::from_str(text).ok()?;
        Some(HostEvent {
            name: json.get("event")?.as_str()?.to_owned(),
            plugin: json
                .get("plugin")
                .and_then(|p| p.as_str())
                .map(str::to_owned),
            time: json
                .get("time")
                .and_then(|t| t.as_str())
                .unwrap_or_default()
                .to_owned(),
            json,
        })
    }

    /// A field of the event, as text.
    pub fn field(&self, key: &str) -> Option<&str> {
        self.json.get(key)?.as_str()
    }
}

/// Whether a host event's name matches a selection pattern: the name itself, a
/// prefix ending in `.*` (`plugin.*`), or `*` for everything.
pub fn event_matches(pattern: &str, name: &str) -> bool {
    if pattern == "*" || pattern == name {
        return true;
    }
    pattern
        .strip_suffix('*')
        .is_some_and(|prefix| prefix.ends_with('.') && name.starts_with(prefix))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn patterns_select_names_prefixes_and_everything() {
        assert!(event_matches("plugin.*", "plugin.failed"));
        assert!(event_matches("*", "message.dropped"));
        assert!(event_matches("config.applied", "config.applied"));
        assert!(!event_matches("config.applied", "config.refused"));
        assert!(!event_matches("plugin.*", "plugins.x"));
        assert!(!event_matches("plug*", "plugin.failed"));
    }

    #[test]
    fn definition_round_trips_as_json() {
        let d = Definition {
            actions: vec![
                ActionSpec::new("probe", "Checks the key").param(Param::required(
                    "zone",
                    ParamType::String,
                    "Which zone",
                )),
            ],
            events: vec!["plugin.*".into()],
            config: Vec::new(),
        };
        let json = serde_json::to_string(&d).unwrap();
        assert!(json.contains(r#""type":"string""#), "{json}");
        assert_eq!(serde_json::from_str::<Definition>(&json).unwrap(), d);
    }

    #[test]
    fn events_parse_from_host_json() {
        let e = HostEvent::from_json(
            r#"{"event":"plugin.left","plugin":"acme.x","time":"t","reason":"done"}"#,
        )
        .unwrap();
        assert_eq!(e.name, "plugin.left");
        assert_eq!(e.plugin.as_deref(), Some("acme.x"));
        assert_eq!(e.field("reason"), Some("done"));
        assert!(HostEvent::from_json("{}").is_none());
    }
}
