//! The `["nats.events"]` configuration, its checks and the values derived from it.

use std::time::Duration;

use gordon_plugin_api::schemars::{self, JsonSchema};
use gordon_plugin_api::PluginError;
use serde::{Deserialize, Serialize};

/// `["nats.events"]` configuration (see the crate documentation for every key).
///
/// `servers`, `credentials_file` and `credentials_env` are shared with
/// [`NatsPublisherConfig`] (they may sit in the `["nats"]` package table): keep
/// their declarations and checks the same in both.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct NatsEventsConfig {
    /// NATS server URLs; the client connects to one and fails over to the others.
    #[serde(default = "default_servers")]
    pub servers: Vec<String>,
    /// The JetStream stream to consume.
    pub stream: String,
    /// The consumer's filter subject (and the stream's subject when it is created).
    pub subject: String,
    /// The durable consumer's name, shared by every gordon process that splits the work.
    pub durable: String,
    /// Create the stream and the consumer when they are missing.
    #[serde(default)]
    pub create: bool,
    /// Deliveries of one message before it is dead-lettered.
    #[serde(default = "default_max_deliver")]
    pub max_deliver: u32,
    /// Seconds JetStream waits for an acknowledgement before redelivering.
    #[serde(default = "default_ack_wait")]
    pub ack_wait: f64,
    /// Where messages go after their last failed delivery.
    pub dead_letter_subject: Option<String>,
    /// Seconds; events with an older `timestamp` are rejected (0 = no limit).
    #[serde(default = "default_max_msg_age")]
    pub max_msg_age: u64,
    /// Messages asked for per pull request.
    #[serde(default = "default_batch")]
    pub batch: usize,
    /// A NATS credentials (`.creds`) file.
    pub credentials_file: Option<String>,
    /// An environment variable holding credentials, an nkey seed or a token.
    pub credentials_env: Option<String>,
    /// Delays before a failed message is redelivered, in milliseconds.
    #[serde(default)]
    pub nak_backoff_ms: NakBackoff,
}

fn default_servers() -> Vec<String> {
    vec!["nats://127.0.0.1:4222".into()]
}
const fn default_max_deliver() -> u32 {
    5
}
const fn default_ack_wait() -> f64 {
    30.0
}
const fn default_max_msg_age() -> u64 {
    300
}
const fn default_batch() -> usize {
    256
}

/// How long to wait before a rejected (nak'ed) message is redelivered.
// `Serialize` so that the configuration keys show its default.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(untagged)]
pub enum NakBackoff {
    /// A base delay, doubled per delivery: `base * 2^(delivery - 1)`, at most
    /// [`NakBackoff::MAX_EXPONENTIAL`].
    Base(u64),
    /// One delay per delivery; the last repeats.
    List(Vec<u64>),
}

impl Default for NakBackoff {
    fn default() -> Self {
        NakBackoff::Base(1000)
    }
}

impl NakBackoff {
    /// The longest delay the exponential form reaches.
    pub const MAX_EXPONENTIAL: Duration = Duration::from_secs(300);

    /// The delay after the `delivered`-th delivery failed (1 for the first).
    pub fn delay(&self, delivered: u64) -> Duration {
        let n = delivered.max(1) - 1;
        match self {
            NakBackoff::Base(base) => {
                let ms =
                    base.saturating_mul(1u64.checked_shl(n.min(63) as u32).unwrap_or(u64::MAX));
                Duration::from_millis(ms)
                    .min(Self::MAX_EXPONENTIAL.max(Duration::from_millis(*base)))
            }
            NakBackoff::List(list) => {
                let i = usize::try_from(n)
                    .unwrap_or(usize::MAX)
                    .min(list.len().saturating_sub(1));
                Duration::from_millis(list.get(i).copied().unwrap_or(0))
            }
        }
    }
}

/// `["nats.publisher"]` configuration (see the crate documentation for every key).
///
/// `servers`, `credentials_file` and `credentials_env` are declared exactly as in
/// [`NatsEventsConfig`]: they may sit in the `["nats"]` package table, which both
/// plugins receive. Every other key belongs in the plugin's own table, since
/// `deny_unknown_fields` makes the other plugin refuse it.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct NatsPublisherConfig {
    /// NATS server URLs; the client connects to one and fails over to the others.
    #[serde(default = "default_servers")]
    pub servers: Vec<String>,
    /// The literal subject changes are published to (the one `nats.events` consumes).
    pub subject: String,
    /// Seconds to wait for each publish acknowledgement (and JetStream API reply).
    #[serde(default = "default_publish_timeout")]
    pub timeout: f64,
    /// Seconds to keep retrying the connection before the run fails.
    #[serde(default = "default_connect_timeout")]
    pub connect_timeout: f64,
    /// Publishes awaiting their acknowledgement at once.
    #[serde(default = "default_max_in_flight")]
    pub max_in_flight: usize,
    /// The most changes in one message; 1 publishes each change as one event object.
    ///
    /// More sends JSON arrays of up to this many events.
    #[serde(default = "default_events_per_message")]
    pub events_per_message: usize,
    /// A NATS credentials (`.creds`) file.
    pub credentials_file: Option<String>,
    /// An environment variable holding credentials, an nkey seed or a token.
    pub credentials_env: Option<String>,
}

const fn default_publish_timeout() -> f64 {
    10.0
}
const fn default_connect_timeout() -> f64 {
    30.0
}
const fn default_max_in_flight() -> usize {
    256
}
const fn default_events_per_message() -> usize {
    1
}

/// The most publishes `max_in_flight` allows.
pub const MAX_IN_FLIGHT: usize = 65_536;
/// The most changes `events_per_message` allows in one message.
pub const MAX_EVENTS_PER_PUBLISH: usize = 10_000;

/// Checks every `["nats.publisher"]` key beyond what deserialising checks; the error
/// names the key.
pub fn validate_publisher(cfg: &NatsPublisherConfig) -> Result<(), PluginError> {
    validate_servers(&cfg.servers)?;
    check_subject("subject", &cfg.subject, false)?;
    for (key, value, max) in [
        ("timeout", cfg.timeout, 3_600.0),
        ("connect_timeout", cfg.connect_timeout, 86_400.0),
    ] {
        if !(value.is_finite() && value > 0.0 && value <= max) {
            return Err(err(format!(
                "`{key}` must be more than 0 and at most {max} seconds, got {value}"
            )));
        }
    }
    if cfg.max_in_flight == 0 || cfg.max_in_flight > MAX_IN_FLIGHT {
        return Err(err(format!(
            "`max_in_flight` must be from 1 to {MAX_IN_FLIGHT}, got {}",
            cfg.max_in_flight
        )));
    }
    if cfg.events_per_message == 0 || cfg.events_per_message > MAX_EVENTS_PER_PUBLISH {
        return Err(err(format!(
            "`events_per_message` must be from 1 to {MAX_EVENTS_PER_PUBLISH}, got {}",
            cfg.events_per_message
        )));
    }
    validate_credentials(
        cfg.credentials_file.as_deref(),
        cfg.credentials_env.as_deref(),
    )
}

fn err(msg: String) -> PluginError {
    PluginError::new(msg)
}

/// Checks every key beyond what deserialising checks; the error names the key.
pub fn validate(cfg: &NatsEventsConfig) -> Result<(), PluginError> {
    validate_servers(&cfg.servers)?;
    check_name("stream", &cfg.stream)?;
    check_name("durable", &cfg.durable)?;
    check_subject("subject", &cfg.subject, true)?;
    if cfg.max_deliver == 0 {
        return Err(err("`max_deliver` must be at least 1".into()));
    }
    if !(cfg.ack_wait.is_finite() && cfg.ack_wait > 0.0 && cfg.ack_wait <= 86_400.0) {
        return Err(err(format!(
            "`ack_wait` must be more than 0 and at most 86400 seconds, got {}",
            cfg.ack_wait
        )));
    }
    if cfg.batch == 0 || cfg.batch > 100_000 {
        return Err(err(format!(
            "`batch` must be from 1 to 100000, got {}",
            cfg.batch
        )));
    }
    if let Some(dead) = &cfg.dead_letter_subject {
        check_subject("dead_letter_subject", dead, false)?;
        if subject_matches(&cfg.subject, dead) {
            return Err(err(format!(
                "`dead_letter_subject` {dead:?} is inside `subject` {:?}: dead letters would be consumed again",
                cfg.subject
            )));
        }
    }
    validate_credentials(
        cfg.credentials_file.as_deref(),
        cfg.credentials_env.as_deref(),
    )?;
    if let NakBackoff::List(list) = &cfg.nak_backoff_ms {
        if list.is_empty() {
            return Err(err(
                "`nak_backoff_ms` must be a number or a non-empty list of milliseconds".into(),
            ));
        }
    }
    Ok(())
}

/// Checks `servers`, a key shared by every plugin of the `["nats"]` package.
pub fn validate_servers(servers: &[String]) -> Result<(), PluginError> {
    if servers.is_empty() {
        return Err(err("`servers` must list at least one server URL".into()));
    }
    for server in servers {
        server.parse::<async_nats::ServerAddr>().map_err(|e| {
            err(format!(
                "`servers`: {:?} is not a NATS server URL: {e}",
                redact_url(server)
            ))
        })?;
    }
    Ok(())
}

/// Checks `credentials_file` and `credentials_env`, keys shared by every plugin of
/// the `["nats"]` package.
pub fn validate_credentials(file: Option<&str>, env: Option<&str>) -> Result<(), PluginError> {
    if file.is_some() && env.is_some() {
        return Err(err(
            "set `credentials_file` or `credentials_env`, not both".into()
        ));
    }
    if let Some(file) = file {
        if file.trim().is_empty() {
            return Err(err("`credentials_file` must not be empty".into()));
        }
    }
    if let Some(var) = env {
        if var.is_empty() || var.contains('=') || var.contains('\0') {
            return Err(err(format!(
                "`credentials_env` must name an environment variable, got {var:?}"
            )));
        }
    }
    Ok(())
}

/// Stream and consumer names: no whitespace, dots, wildcards or path separators.
fn check_name(key: &str, name: &str) -> Result<(), PluginError> {
    if name.is_empty() {
        return Err(err(format!("`{key}` must not be empty")));
    }
    if let Some(c) = name
        .chars()
        .find(|c| c.is_whitespace() || c.is_control() || matches!(c, '.' | '*' | '>' | '/' | '\\'))
    {
        return Err(err(format!(
            "`{key}` {name:?} must not contain {c:?} (no whitespace, '.', '*', '>', '/' or '\\')"
        )));
    }
    Ok(())
}

/// A subject: non-empty dot-separated tokens without whitespace; wildcards (`*` for
/// one token, `>` for the rest, last) only where `wildcards` is set.
fn check_subject(key: &str, subject: &str, wildcards: bool) -> Result<(), PluginError> {
    if subject.is_empty() {
        return Err(err(format!("`{key}` must not be empty")));
    }
    let tokens: Vec<&str> = subject.split('.').collect();
    for (i, token) in tokens.iter().enumerate() {
        if token.is_empty() {
            return Err(err(format!("`{key}` {subject:?} has an empty token")));
        }
        if token.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(err(format!(
                "`{key}` {subject:?} must not contain whitespace"
            )));
        }
        let wild = *token == "*" || *token == ">";
        if wild && !wildcards {
            return Err(err(format!(
                "`{key}` {subject:?} must be a literal subject, without wildcards"
            )));
        }
        if *token == ">" && i + 1 != tokens.len() {
            return Err(err(format!(
                "`{key}` {subject:?}: '>' must be the last token"
            )));
        }
        if !wild && (token.contains('*') || token.contains('>')) {
            return Err(err(format!(
                "`{key}` {subject:?}: a wildcard must be a whole token"
            )));
        }
    }
    Ok(())
}

/// Whether the literal `subject` matches `pattern` (NATS wildcards `*` and `>`).
pub fn subject_matches(pattern: &str, subject: &str) -> bool {
    let mut p = pattern.split('.');
    let mut s = subject.split('.');
    loop {
        match (p.next(), s.next()) {
            (Some(">"), Some(_)) => return true,
            (Some("*"), Some(_)) => {}
            (Some(a), Some(b)) if a == b => {}
            (None, None) => return true,
            _ => return false,
        }
    }
}

/// A server URL without its user and password, for logs and errors.
pub fn redact_url(url: &str) -> String {
    let (scheme, rest) = match url.split_once("://") {
        Some((scheme, rest)) => (format!("{scheme}://"), rest),
        None => (String::new(), url),
    };
    let (authority, path) = match rest.find('/') {
        Some(i) => rest.split_at(i),
        None => (rest, ""),
    };
    match authority.rsplit_once('@') {
        Some((_, host)) => format!("{scheme}***@{host}{path}"),
        None => url.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exponential_backoff_doubles_and_is_capped() {
        let b = NakBackoff::Base(100);
        assert_eq!(b.delay(1), Duration::from_millis(100));
        assert_eq!(b.delay(2), Duration::from_millis(200));
        assert_eq!(b.delay(4), Duration::from_millis(800));
        assert_eq!(b.delay(0), Duration::from_millis(100));
        assert_eq!(b.delay(40), NakBackoff::MAX_EXPONENTIAL);
        assert_eq!(b.delay(u64::MAX), NakBackoff::MAX_EXPONENTIAL);
        assert_eq!(NakBackoff::Base(0).delay(3), Duration::ZERO);
    }

    #[test]
    fn list_backoff_repeats_its_last_value() {
        let b = NakBackoff::List(vec![10, 50, 200]);
        assert_eq!(b.delay(1), Duration::from_millis(10));
        assert_eq!(b.delay(3), Duration::from_millis(200));
        assert_eq!(b.delay(9), Duration::from_millis(200));
    }

    #[test]
    fn wildcards_match_like_nats() {
        assert!(subject_matches("events.>", "events.dns.a"));
        assert!(subject_matches("events.*", "events.dns"));
        assert!(!subject_matches("events.*", "events.dns.a"));
        assert!(!subject_matches("events.>", "events"));
        assert!(subject_matches("events", "events"));
        assert!(!subject_matches("events", "events.dead"));
        assert!(subject_matches(">", "anything.at.all"));
    }

    /// Checks `keys` with the SDK's test kit; returns a lookup by name.
    fn check_keys<'a, T: serde::de::DeserializeOwned>(
        keys: &'a [gordon_plugin_api::ConfigKey],
    ) -> impl Fn(&str) -> &'a gordon_plugin_api::ConfigKey + 'a {
        gordon_plugin_api::testing::check_keys::<T>(keys).unwrap();
        move |name| keys.iter().find(|k| k.name == name).unwrap()
    }

    #[test]
    fn every_plugin_describes_the_keys_it_accepts() {
        use gordon_plugin_api::Plugin;

        let events = crate::NatsEvents::config_keys();
        let key = check_keys::<NatsEventsConfig>(&events);
        assert_eq!(key("servers").kind, "list of string");
        assert_eq!(
            key("servers").default.as_deref(),
            Some(r#"["nats://127.0.0.1:4222"]"#)
        );
        for name in ["stream", "subject", "durable"] {
            assert!(key(name).required, "{name}");
            assert_eq!(key(name).kind, "string", "{name}");
        }
        assert_eq!(key("ack_wait").kind, "number");
        assert_eq!(key("ack_wait").default.as_deref(), Some("30.0"));
        assert_eq!(key("max_deliver").default.as_deref(), Some("5"));
        assert_eq!(key("batch").default.as_deref(), Some("256"));
        let backoff = key("nak_backoff_ms");
        assert_eq!(backoff.kind, "integer or list of integer");
        assert_eq!(backoff.default.as_deref(), Some("1000"));
        assert_eq!(
            backoff.doc,
            "Delays before a failed message is redelivered, in milliseconds."
        );
        assert_eq!(key("dead_letter_subject").default, None);
        assert!(!key("dead_letter_subject").required);

        let publisher = crate::NatsPublisher::config_keys();
        let key = check_keys::<NatsPublisherConfig>(&publisher);
        assert!(key("subject").required);
        assert_eq!(key("timeout").default.as_deref(), Some("10.0"));
        assert_eq!(key("connect_timeout").default.as_deref(), Some("30.0"));
        assert_eq!(key("max_in_flight").default.as_deref(), Some("256"));
        assert_eq!(key("events_per_message").default.as_deref(), Some("1"));
        // The keys both may take from the `["nats"]` table read the same.
        for name in ["servers", "credentials_file", "credentials_env"] {
            let one = events.iter().find(|k| k.name == name).unwrap();
            assert_eq!(one, key(name), "{name}");
        }

        let discovery = crate::discovery::NatsDiscovery::config_keys();
        let key = check_keys::<crate::discovery::DiscoveryConfig>(&discovery);
        assert_eq!(
            key("bucket").default.as_deref(),
            Some(r#""gordon_discovery""#)
        );
        assert_eq!(key("expiry").default.as_deref(), Some("10.0"));
        assert_eq!(key("connect_timeout").default.as_deref(), Some("5.0"));
        assert_eq!(key("heartbeat").kind, "number");
        assert_eq!(key("heartbeat").default, None);
        assert!(discovery.iter().all(|k| !k.required));
    }

    #[test]
    fn urls_lose_their_passwords() {
        assert_eq!(
            redact_url("nats://user:secret@host:4222/x"),
            "nats://***@host:4222/x"
        );
        assert_eq!(redact_url("nats://host:4222"), "nats://host:4222");
        assert_eq!(redact_url("tok@host"), "***@host");
    }
}
