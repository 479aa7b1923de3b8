//! Logging set up from `[core.logging]`: `stream`, `syslog` and `json` handlers,
//! and the level directives of `level` (or `GORDON_LOG`, see [`Directives`]).
//!
//! Plugin log events arrive through the host-services table (see `hostlink.rs`) and
//! are re-emitted there with target `gordon::plugin` and `plugin` and `module`
//! fields, once the plugin's directive allows them.

mod directives;

use std::io::Write;
use std::net::UdpSocket;
use std::os::unix::net::UnixDatagram;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};

use tracing::{Level, Metadata};
use tracing_subscriber::filter::LevelFilter;
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::time::FormatTime;
use tracing_subscriber::fmt::MakeWriter;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::Layer;

use crate::config::LoggingConfig;

pub use directives::{
    DirectiveError, DirectiveProblem, Directives, HostFilter, PluginFilter, PluginTarget,
    PLUGIN_TARGET,
};

/// The environment variable that, when set and not empty, replaces
/// `[core.logging] level` (same syntax).
pub const ENV_VAR: &str = "GORDON_LOG";

/// A level name that is not one of the original configuration's.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown level `{0}`, expected one of trace, debug, info, warning, error, critical")]
pub struct UnknownLevel(pub String);

/// `GORDON_LOG` holds a bad directive.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("environment variable GORDON_LOG: {0}")]
pub struct EnvError(pub DirectiveError);

/// Where the directives in force come from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    /// `[core.logging] level`.
    Config,
    /// The `GORDON_LOG` environment variable.
    Env,
}

impl Source {
    /// The key or variable, for messages.
    pub fn name(self) -> &'static str {
        match self {
            Source::Config => "core.logging.level",
            Source::Env => ENV_VAR,
        }
    }
}

/// The directives in force: `env` (the value of `GORDON_LOG`) when set and not
/// empty, else `[core.logging] level`; `verbose` raises the default to at least
/// `debug`.
///
/// # Errors
/// `env` is not valid. (`level` was checked when the configuration was loaded.)
pub fn resolve(
    cfg: &LoggingConfig,
    env: Option<&str>,
    verbose: bool,
) -> Result<(Directives, Source), EnvError> {
    let (mut directives, source) = match env.filter(|v| !v.trim().is_empty()) {
        Some(text) => (text.parse::<Directives>().map_err(EnvError)?, Source::Env),
        None => (cfg.level.parse().unwrap_or_default(), Source::Config),
    };
    if verbose {
        directives.raise_default(LevelFilter::DEBUG);
    }
    Ok((directives, source))
}

static ACTIVE: OnceLock<(Directives, Source)> = OnceLock::new();

/// The directives [`init`] installed (the first, if it ran more than once).
pub fn active() -> Option<&'static (Directives, Source)> {
    ACTIVE.get()
}

/// Parses a level name of the original configuration.
///
/// # Errors
/// The name is not a level; the message names the accepted ones.
pub fn parse_level(level: &str) -> Result<LevelFilter, UnknownLevel> {
    Ok(match level.to_ascii_lowercase().as_str() {
        "trace" => LevelFilter::TRACE,
        "debug" => LevelFilter::DEBUG,
        "info" => LevelFilter::INFO,
        "warn" | "warning" => LevelFilter::WARN,
        "error" | "critical" => LevelFilter::ERROR,
        "off" => LevelFilter::OFF,
        other => return Err(UnknownLevel(other.to_owned())),
    })
}

/// Installs the global subscriber: the handlers of `cfg`, filtered by
/// `directives` (see [`resolve`]), which [`active`] returns from then on.
///
/// # Errors
/// When a syslog destination cannot be opened.
pub fn init(cfg: &LoggingConfig, directives: &Directives, source: Source) -> std::io::Result<()> {
    let timer = DateFormat(cfg.date_fmt.as_deref().map(|f| chrono_format(f).into()));
    let mut layers: Vec<Box<dyn Layer<tracing_subscriber::Registry> + Send + Sync>> = Vec::new();
    for handler in &cfg.handlers {
        match handler.as_str() {
            "json" => layers.push(
                tracing_subscriber::fmt::layer()
                    .json()
                    .with_timer(timer.clone())
                    .with_writer(std::io::stderr)
                    .boxed(),
            ),
            "syslog" => layers.push(
                tracing_subscriber::fmt::layer()
                    .with_ansi(false)
                    .without_time()
                    .with_target(false)
                    .with_writer(Syslog::open(cfg.address.as_deref())?)
                    .boxed(),
            ),
            _ => layers.push(
                tracing_subscriber::fmt::layer()
                    .with_timer(timer.clone())
                    .with_ansi(false)
                    .with_writer(std::io::stderr)
                    .boxed(),
            ),
        }
    }
    // One level for everything is the plain level filter, as before directives.
    let filtered = if directives.is_plain() {
        layers.with_filter(directives.default_level()).boxed()
    } else {
        layers.with_filter(directives.host_filter()).boxed()
    };
    let subscriber = tracing_subscriber::registry().with(filtered);
    // A second initialisation (tests) keeps the first subscriber.
    if tracing::subscriber::set_global_default(subscriber).is_ok() {
        let _ = ACTIVE.set((directives.clone(), source));
    }
    Ok(())
}

#[derive(Clone)]
struct DateFormat(Option<Arc<str>>);

impl FormatTime for DateFormat {
    fn format_time(&self, w: &mut Writer<'_>) -> std::fmt::Result {
        let now = chrono::Utc::now();
        match &self.0 {
            None => write!(
                w,
                "{}",
                now.to_rfc3339_opts(chrono::SecondsFormat::Micros, true)
            ),
            Some(fmt) => write!(w, "{}", now.format(fmt)),
        }
    }
}

/// Turns a Python `strftime` format (the original's `date_fmt`) into chrono's, which
/// differs only in `%f`: microseconds in Python, nanoseconds in chrono.
fn chrono_format(python: &str) -> String {
    let mut out = String::with_capacity(python.len() + 2);
    let mut chars = python.chars();
    while let Some(c) = chars.next() {
        out.push(c);
        if c == '%' {
            match chars.next() {
                Some('f') => out.push_str("6f"),
                Some(other) => out.push(other),
                None => {}
            }
        }
    }
    out
}

/// Checks a `date_fmt` (Python `strftime` codes, as the original took).
///
/// # Errors
/// The format has a code chrono does not know, or a lone `%`.
pub fn check_date_format(python: &str) -> Result<(), String> {
    use chrono::format::{Item, StrftimeItems};
    let chrono = chrono_format(python);
    if StrftimeItems::new(&chrono).any(|item| matches!(item, Item::Error)) {
        return Err(format!(
            "`{python}` is not a strftime format (e.g. \"%Y-%m-%d %H:%M:%S\")"
        ));
    }
    Ok(())
}

/// Where syslog datagrams go.
#[derive(Clone)]
enum SyslogSocket {
    Unix(Arc<UnixDatagram>, Arc<Path>),
    Udp(Arc<UdpSocket>),
}

/// Writes each log line as one RFC 3164 datagram.
#[derive(Clone)]
struct Syslog {
    socket: SyslogSocket,
    tag: Arc<str>,
    /// When a reconnect to the local socket was last tried (ms since the epoch).
    last_reconnect_ms: Arc<AtomicU64>,
}

impl Syslog {
    fn open(address: Option<&[String]>) -> std::io::Result<Syslog> {
        let socket = match address {
            Some([host, port]) => {
                let sock = UdpSocket::bind("0.0.0.0:0")?;
                sock.connect(format!("{host}:{port}"))?;
                SyslogSocket::Udp(Arc::new(sock))
            }
            Some([path]) => {
                let sock = UnixDatagram::unbound()?;
                sock.connect(path)?;
                SyslogSocket::Unix(Arc::new(sock), Path::new(path).into())
            }
            _ => {
                let sock = UnixDatagram::unbound()?;
                sock.connect("/dev/log")?;
                SyslogSocket::Unix(Arc::new(sock), Path::new("/dev/log").into())
            }
        };
        Ok(Syslog {
            socket,
            tag: format!("gordon[{}]", std::process::id()).into(),
            last_reconnect_ms: Arc::new(AtomicU64::new(0)),
        })
    }

    /// Sends one datagram. When the local log daemon has restarted, the socket file
    /// is a new one and sends fail: reconnect (at most once a second, so a missing
    /// daemon costs no more than one failed syscall per line) and send again.
    fn send(&self, datagram: &[u8]) {
        // Logging must never take the service down; a lost syslog line is tolerated.
        match &self.socket {
            SyslogSocket::Udp(s) => {
                let _ = s.send(datagram);
            }
            SyslogSocket::Unix(s, path) => {
                if s.send(datagram).is_ok() {
                    return;
                }
                let now = std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map_or(0, |d| d.as_millis() as u64);
                let last = self.last_reconnect_ms.load(Ordering::Relaxed);
                if now.saturating_sub(last) < 1000
                    || self
                        .last_reconnect_ms
                        .compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed)
                        .is_err()
                {
                    return;
                }
                if s.connect(path).is_ok() {
                    let _ = s.send(datagram);
                }
            }
        }
    }
}

struct SyslogLine {
    target: Syslog,
    severity: u8,
    buf: Vec<u8>,
}

impl Write for SyslogLine {
    fn write(&mut self, data: &[u8]) -> std::io::Result<usize> {
        self.buf.extend_from_slice(data);
        Ok(data.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Drop for SyslogLine {
    fn drop(&mut self) {
        // Facility `user` (1): priority = 8 + severity.
        let mut datagram = format!("<{}>{}: ", 8 + self.severity, self.target.tag).into_bytes();
        datagram.extend_from_slice(self.buf.trim_ascii_end());
        self.target.send(&datagram);
    }
}

impl<'a> MakeWriter<'a> for Syslog {
    type Writer = SyslogLine;
    fn make_writer(&'a self) -> SyslogLine {
        SyslogLine {
            target: self.clone(),
            severity: 6,
            buf: Vec::new(),
        }
    }
    fn make_writer_for(&'a self, meta: &Metadata<'_>) -> SyslogLine {
        let severity = match *meta.level() {
            Level::ERROR => 3,
            Level::WARN => 4,
            Level::INFO => 6,
            _ => 7,
        };
        SyslogLine {
            target: self.clone(),
            severity,
            buf: Vec::new(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn levels_of_the_original_are_accepted() {
        assert_eq!(parse_level("warning").unwrap(), LevelFilter::WARN);
        assert_eq!(parse_level("critical").unwrap(), LevelFilter::ERROR);
        assert!(parse_level("loud")
            .unwrap_err()
            .to_string()
            .contains("`loud`"));
    }

    #[test]
    fn gordon_log_replaces_the_configured_level_and_verbose_raises_the_default() {
        let cfg = LoggingConfig {
            level: "warning,dns.zonefile=trace".into(),
            ..LoggingConfig::default()
        };
        let (d, source) = resolve(&cfg, None, false).unwrap();
        assert_eq!(
            (d.to_string().as_str(), source),
            ("warn,dns.zonefile=trace", Source::Config)
        );
        let (d, source) = resolve(&cfg, Some("  "), true).unwrap();
        assert_eq!(
            (d.to_string().as_str(), source),
            ("debug,dns.zonefile=trace", Source::Config)
        );
        let (d, source) = resolve(&cfg, Some("error,http.events=debug"), true).unwrap();
        assert_eq!(
            (d.to_string().as_str(), source),
            ("debug,http.events=debug", Source::Env)
        );
        let e = resolve(&cfg, Some("info,http.events=chatty"), false).unwrap_err();
        assert_eq!(
            e.to_string(),
            "environment variable GORDON_LOG: directive `http.events=chatty`: unknown level `chatty`, expected one of trace, debug, info, warning, error, critical"
        );
    }

    #[test]
    fn python_date_formats_are_whole_strftime() {
        assert_eq!(chrono_format("%H:%M:%S.%f"), "%H:%M:%S.%6f");
        assert_eq!(chrono_format("%%f %d"), "%%f %d");
        let at = chrono::DateTime::parse_from_rfc3339("2026-11-22T03:04:05.123456Z").unwrap();
        let show = |python: &str| at.format(&chrono_format(python)).to_string();
        assert_eq!(show("%Y-%m-%dT%H:%M:%S"), "2026-11-22T03:04:05");
        assert_eq!(show("%d/%m %f %%"), "22/11 123456 %");
        // Codes the old subset printed literally.
        assert_eq!(show("%b %e %a %j %y %I %p"), "Nov 22 Sun 326 26 03 AM");
        assert!(check_date_format("%Y %Q").is_err());
        assert!(check_date_format("%Y-%m-%d %H:%M:%S,%f").is_ok());
    }
}
