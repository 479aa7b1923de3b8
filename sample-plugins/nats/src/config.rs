//! The `["nats.events"]` configuration, its checks and the values derived from it.

use std::time::Duration;

use gordon_plugin_api::PluginError;
use serde::Deserialize;

/// `["nats.events"]` configuration (see the crate documentation for every key).
#[derive(Debug, Clone, Deserialize)]
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
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
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

fn err(msg: String) -> PluginError {
    PluginError::new(msg)
}

/// Checks every key beyond what deserialising checks; the error names the key.
pub fn validate(cfg: &NatsEventsConfig) -> Result<(), PluginError> {
    if cfg.servers.is_empty() {
        return Err(err("`servers` must list at least one server URL".into()));
    }
    for server in &cfg.servers {
        server.parse::<async_nats::ServerAddr>().map_err(|e| {
            err(format!(
                "`servers`: {:?} is not a NATS server URL: {e}",
                redact_url(server)
            ))
        })?;
    }
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
    if cfg.credentials_file.is_some() && cfg.credentials_env.is_some() {
        return Err(err(
            "set `credentials_file` or `credentials_env`, not both".into()
        ));
    }
    if let Some(file) = &cfg.credentials_file {
        if file.trim().is_empty() {
            return Err(err("`credentials_file` must not be empty".into()));
        }
    }
    if let Some(var) = &cfg.credentials_env {
        if var.is_empty() || var.contains('=') || var.contains('\0') {
            return Err(err(format!(
                "`credentials_env` must name an environment variable, got {var:?}"
            )));
        }
    }
    if let NakBackoff::List(list) = &cfg.nak_backoff_ms {
        if list.is_empty() {
            return Err(err(
                "`nak_backoff_ms` must be a number or a non-empty list of milliseconds".into(),
            ));
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
