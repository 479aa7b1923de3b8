//! Logging set up from `[core.logging]`: `stream`, `syslog` and `json` handlers.
//!
//! Plugin log events arrive through the host-services table (see `hostlink.rs`) and
//! are re-emitted here with target `gordon::plugin` and a `plugin` field.

use std::io::Write;
use std::net::UdpSocket;
use std::os::unix::net::UnixDatagram;
use std::sync::Arc;

use tracing::{Level, Metadata};
use tracing_subscriber::filter::LevelFilter;
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::time::FormatTime;
use tracing_subscriber::fmt::MakeWriter;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::Layer;

use crate::config::LoggingConfig;

/// Parses a level name of the original configuration.
///
/// # Errors
/// A message naming the accepted levels.
pub fn parse_level(level: &str) -> Result<LevelFilter, String> {
    Ok(match level.to_ascii_lowercase().as_str() {
        "trace" => LevelFilter::TRACE,
        "debug" => LevelFilter::DEBUG,
        "info" => LevelFilter::INFO,
        "warn" | "warning" => LevelFilter::WARN,
        "error" | "critical" => LevelFilter::ERROR,
        "off" => LevelFilter::OFF,
        other => {
            return Err(format!(
            "unknown level `{other}`, expected one of trace, debug, info, warning, error, critical"
        ))
        }
    })
}

/// Installs the global subscriber. `verbose` raises the level to at least `debug`.
///
/// # Errors
/// When a syslog destination cannot be opened.
pub fn init(cfg: &LoggingConfig, verbose: bool) -> std::io::Result<LevelFilter> {
    let mut level = parse_level(&cfg.level).unwrap_or(LevelFilter::INFO);
    if verbose && level < LevelFilter::DEBUG {
        level = LevelFilter::DEBUG;
    }
    let timer = DateFormat(cfg.date_fmt.clone());
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
    let subscriber = tracing_subscriber::registry().with(layers.with_filter(level));
    // A second initialisation (tests) keeps the first subscriber.
    let _ = tracing::subscriber::set_global_default(subscriber);
    Ok(level)
}

#[derive(Clone)]
struct DateFormat(Option<String>);

impl FormatTime for DateFormat {
    fn format_time(&self, w: &mut Writer<'_>) -> std::fmt::Result {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as u64);
        let iso = gordon_plugin_api::format_rfc3339(now);
        match &self.0 {
            None => w.write_str(&iso),
            Some(fmt) => w.write_str(&strftime_subset(fmt, &iso)),
        }
    }
}

/// Applies `%Y %m %d %H %M %S %f %%` to an RFC 3339 timestamp.
fn strftime_subset(fmt: &str, iso: &str) -> String {
    let part = |a: usize, b: usize| iso.get(a..b).unwrap_or("");
    let mut out = String::new();
    let mut chars = fmt.chars();
    while let Some(c) = chars.next() {
        if c != '%' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('Y') => out.push_str(part(0, 4)),
            Some('m') => out.push_str(part(5, 7)),
            Some('d') => out.push_str(part(8, 10)),
            Some('H') => out.push_str(part(11, 13)),
            Some('M') => out.push_str(part(14, 16)),
            Some('S') => out.push_str(part(17, 19)),
            Some('f') => out.push_str(part(20, 26)),
            Some('%') => out.push('%'),
            Some(other) => {
                out.push('%');
                out.push(other);
            }
            None => out.push('%'),
        }
    }
    out
}

#[derive(Clone)]
enum SyslogSocket {
    Unix(Arc<UnixDatagram>),
    Udp(Arc<UdpSocket>),
}

/// Writes each log line as one RFC 3164 datagram.
#[derive(Clone)]
struct Syslog {
    socket: SyslogSocket,
    tag: Arc<str>,
}

impl Syslog {
    fn open(address: Option<&[String]>) -> std::io::Result<Syslog> {
        let socket = match address {
            Some([host, port]) => {
                let sock = UdpSocket::bind("0.0.0.0:0")?;
                sock.connect(format!("{host}:{port}"))?;
                SyslogSocket::Udp(Arc::new(sock))
            }
            _ => {
                let sock = UnixDatagram::unbound()?;
                sock.connect("/dev/log")?;
                SyslogSocket::Unix(Arc::new(sock))
            }
        };
        Ok(Syslog {
            socket,
            tag: format!("gordon[{}]", std::process::id()).into(),
        })
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
        // Logging must never take the service down; a lost syslog line is tolerated.
        let _ = match &self.target.socket {
            SyslogSocket::Unix(s) => s.send(&datagram),
            SyslogSocket::Udp(s) => s.send(&datagram),
        };
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
        assert!(parse_level("loud").unwrap_err().contains("loud"));
    }

    #[test]
    fn date_format_subset() {
        let iso = "2026-11-22T03:04:05.123456Z";
        assert_eq!(
            strftime_subset("%Y-%m-%dT%H:%M:%S", iso),
            "2026-11-22T03:04:05"
        );
        assert_eq!(strftime_subset("%d/%m %f %%", iso), "22/11 123456 %");
    }
}
