//! Configuration: `gordon.toml` deep-merged with `gordon-user.toml`.
//!
//! The two files live in the config root (`-c DIR`, default: the working directory).
//! Every table of the user file is merged key by key into the main file, so a user
//! file can override `core.debug` without repeating `core.plugins`. `[core]` is typed
//! and strict: an unknown key or a wrong type is an error naming the file and the key.
//! Everything else belongs to plugins, and a plugin sees only its own tables.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;

/// A configuration problem, naming the file and key it is about.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The main file is missing.
    #[error("configuration file {} not found", .0.display())]
    Missing(PathBuf),
    /// A file could not be read.
    #[error("cannot read {}: {source}", .path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// A file is not valid TOML.
    #[error("{}: {message}", .path.display())]
    Parse {
        /// The file.
        path: PathBuf,
        /// The parser's message, with line and column.
        message: String,
    },
    /// A key has a wrong type or value, or is unknown.
    #[error("{}: `{key}`: {message}", .path.display())]
    Invalid {
        /// The file (or files, after merging).
        path: PathBuf,
        /// The dotted key, e.g. `core.debug`.
        key: String,
        /// What is wrong.
        message: String,
    },
}

/// The `[core]` table.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CoreConfig {
    /// Names of the plugins to activate; an installed plugin not listed is skipped.
    #[serde(default)]
    pub plugins: Vec<String>,
    /// Keep going when a plugin cannot be loaded (warn), instead of exiting non-zero.
    #[serde(default)]
    pub debug: bool,
    /// The metrics relay: `log`, `ffwd`, `prometheus`, or a metric-relay plugin's name.
    #[serde(default = "default_metrics")]
    pub metrics: String,
    /// Directories searched for plugin libraries, relative to the config root.
    #[serde(default = "default_plugin_dirs")]
    pub plugin_dirs: Vec<PathBuf>,
    /// Pinned library hashes: file name -> `sha256:<hex>`. A pinned library whose
    /// bytes differ is refused before it is opened.
    #[serde(default)]
    pub plugin_pins: BTreeMap<String, String>,
    /// Refuse every library without a pin in `plugin_pins`.
    #[serde(default)]
    pub require_pins: bool,
    /// Seconds allowed for draining and for each plugin's shutdown.
    #[serde(default = "default_shutdown_timeout")]
    pub shutdown_timeout: f64,
    /// `gordon janitor`: seconds one run may take before it is abandoned and
    /// reported as failed, naming the plugins still running.
    #[serde(default = "default_run_timeout")]
    pub run_timeout: f64,
    /// Phase -> next phase.
    #[serde(default = "default_route")]
    pub route: BTreeMap<String, String>,
    /// Logging.
    #[serde(default)]
    pub logging: LoggingConfig,
    /// Router tuning.
    #[serde(default)]
    pub router: RouterConfig,
}

/// `[core.logging]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LoggingConfig {
    /// `error`, `warning`/`warn`, `info`, `debug`, `trace` (`critical` = `error`).
    #[serde(default = "default_level")]
    pub level: String,
    /// Any of `stream` (stderr), `syslog`, `json` (stderr, one JSON object per line).
    #[serde(default = "default_handlers")]
    pub handlers: Vec<String>,
    /// Accepted for compatibility with the original configuration; the text layout
    /// is fixed.
    pub fmt: Option<String>,
    /// Timestamp format (strftime subset: `%Y %m %d %H %M %S`); default RFC 3339.
    pub date_fmt: Option<String>,
    /// Syslog destination `[host, port]` (UDP); default the local `/dev/log`.
    pub address: Option<Vec<String>>,
}

impl Default for LoggingConfig {
    fn default() -> Self {
        LoggingConfig {
            level: default_level(),
            handlers: default_handlers(),
            fmt: None,
            date_fmt: None,
            address: None,
        }
    }
}

/// `[core.router]`: how the router moves messages.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RouterConfig {
    /// Worker threads running the route (default: available cores).
    pub workers: Option<usize>,
    /// Messages a source may have queued before its sends wait.
    #[serde(default = "default_queue_capacity")]
    pub queue_capacity: usize,
    /// Most messages a worker takes and routes as one batch.
    #[serde(default = "default_batch_size")]
    pub batch_size: usize,
}

impl Default for RouterConfig {
    fn default() -> Self {
        RouterConfig {
            workers: None,
            queue_capacity: default_queue_capacity(),
            batch_size: default_batch_size(),
        }
    }
}

fn default_metrics() -> String {
    "log".into()
}
fn default_plugin_dirs() -> Vec<PathBuf> {
    vec![PathBuf::from("plugins.d")]
}
const fn default_shutdown_timeout() -> f64 {
    10.0
}
const fn default_run_timeout() -> f64 {
    600.0
}
fn default_route() -> BTreeMap<String, String> {
    [
        ("consume", "enrich"),
        ("enrich", "publish"),
        ("publish", "cleanup"),
    ]
    .into_iter()
    .map(|(a, b)| (a.to_owned(), b.to_owned()))
    .collect()
}
fn default_level() -> String {
    "info".into()
}
fn default_handlers() -> Vec<String> {
    vec!["stream".into()]
}
const fn default_queue_capacity() -> usize {
    8192
}
const fn default_batch_size() -> usize {
    256
}

/// The loaded configuration.
#[derive(Debug, Clone)]
pub struct Config {
    /// The config root.
    pub root: PathBuf,
    /// The files read, main first.
    pub files: Vec<PathBuf>,
    /// The typed `[core]` table.
    pub core: CoreConfig,
    /// The whole merged document (plugin tables included).
    pub table: toml::Table,
}

impl Config {
    /// Loads `{base}.toml` (required) and `{base}-user.toml` (optional) from `root`.
    ///
    /// # Errors
    /// A [`ConfigError`] naming the file and key.
    pub fn load(root: &Path, base: &str) -> Result<Config, ConfigError> {
        let main = root.join(format!("{base}.toml"));
        let user = root.join(format!("{base}-user.toml"));
        if !main.is_file() {
            return Err(ConfigError::Missing(main));
        }
        let mut files = vec![main.clone()];
        let mut table = read_file(&main)?;
        if user.is_file() {
            deep_merge(&mut table, read_file(&user)?);
            files.push(user.clone());
        }
        let merged_name = if files.len() > 1 {
            PathBuf::from(format!("{} + {}", main.display(), user.display()))
        } else {
            main
        };
        let core = parse_core(&merged_name, table.get("core"))?;
        Ok(Config {
            root: root.to_path_buf(),
            files,
            core,
            table,
        })
    }

    /// Parses a configuration from text, for tests and tools.
    ///
    /// # Errors
    /// A [`ConfigError`].
    pub fn from_str(root: &Path, text: &str) -> Result<Config, ConfigError> {
        let path = root.join("gordon.toml");
        let table = parse_text(&path, text)?;
        let core = parse_core(&path, table.get("core"))?;
        Ok(Config {
            root: root.to_path_buf(),
            files: vec![path],
            core,
            table,
        })
    }

    /// The plugin directories, resolved against the config root.
    pub fn plugin_dirs(&self) -> Vec<PathBuf> {
        self.core
            .plugin_dirs
            .iter()
            .map(|d| self.root.join(d))
            .collect()
    }

    /// The configuration plugin `name` receives: its package table (`["dns"]` for
    /// `dns.zonefile`) deep-merged with its own table (`["dns.zonefile"]`, or the
    /// nested `[dns.zonefile]`), without the tables of any other plugin in `known`.
    pub fn plugin_config(&self, name: &str, known: &[&str]) -> toml::Table {
        let package = name.split('.').next().unwrap_or(name);
        let mut out = toml::Table::new();
        if package != name {
            if let Some(toml::Value::Table(pkg)) = self.table.get(package) {
                for (key, value) in pkg {
                    let dotted = format!("{package}.{key}");
                    let belongs_to_a_plugin = value.is_table()
                        && known
                            .iter()
                            .any(|k| *k == dotted || k.starts_with(&format!("{dotted}.")));
                    let is_own = name == dotted || name.starts_with(&format!("{dotted}."));
                    if !belongs_to_a_plugin && !is_own {
                        out.insert(key.clone(), value.clone());
                    }
                }
            }
        }
        // The nested form `[dns.zonefile]`.
        let mut node = self.table.get(package);
        for part in name.split('.').skip(1) {
            node = node.and_then(|v| v.get(part));
        }
        if package != name {
            if let Some(toml::Value::Table(own)) = node {
                deep_merge(&mut out, own.clone());
            }
        }
        // The quoted form `["dns.zonefile"]` (or a plain `[name]` for a one-part name).
        if let Some(toml::Value::Table(own)) = self.table.get(name) {
            deep_merge(&mut out, own.clone());
        }
        out
    }
}

fn read_file(path: &Path) -> Result<toml::Table, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    let table = parse_text(path, &text)?;
    // Check `[core]` of each file on its own, so an error names the file it is in.
    parse_core(path, table.get("core"))?;
    Ok(table)
}

fn parse_text(path: &Path, text: &str) -> Result<toml::Table, ConfigError> {
    text.parse::<toml::Table>().map_err(|e| ConfigError::Parse {
        path: path.to_path_buf(),
        message: e.to_string().trim_end().replace('\n', " "),
    })
}

fn parse_core(path: &Path, core: Option<&toml::Value>) -> Result<CoreConfig, ConfigError> {
    let value = core
        .cloned()
        .unwrap_or_else(|| toml::Value::Table(toml::Table::new()));
    if !value.is_table() {
        return Err(ConfigError::Invalid {
            path: path.to_path_buf(),
            key: "core".into(),
            message: "must be a table".into(),
        });
    }
    let core: CoreConfig = serde_path_to_error::deserialize(value).map_err(|e| {
        let key = format!("core.{}", e.path())
            .trim_end_matches('.')
            .to_owned();
        ConfigError::Invalid {
            path: path.to_path_buf(),
            key,
            message: e.inner().to_string(),
        }
    })?;
    validate_core(path, &core)?;
    Ok(core)
}

fn validate_core(path: &Path, core: &CoreConfig) -> Result<(), ConfigError> {
    let invalid = |key: &str, message: String| ConfigError::Invalid {
        path: path.to_path_buf(),
        key: key.into(),
        message,
    };
    if !(core.run_timeout.is_finite() && core.run_timeout > 0.0) {
        return Err(invalid(
            "core.run_timeout",
            format!("must be a number of seconds > 0, got {}", core.run_timeout),
        ));
    }
    if !(core.shutdown_timeout.is_finite() && core.shutdown_timeout >= 0.0) {
        return Err(invalid(
            "core.shutdown_timeout",
            format!(
                "must be a number of seconds >= 0, got {}",
                core.shutdown_timeout
            ),
        ));
    }
    crate::logging::parse_level(&core.logging.level)
        .map_err(|m| invalid("core.logging.level", m))?;
    for h in &core.logging.handlers {
        if !["stream", "syslog", "json"].contains(&h.as_str()) {
            return Err(invalid(
                "core.logging.handlers",
                format!("unknown handler `{h}`, expected `stream`, `syslog` or `json`"),
            ));
        }
    }
    if let Some(addr) = &core.logging.address {
        if addr.len() != 2 || addr[1].parse::<u16>().is_err() {
            return Err(invalid(
                "core.logging.address",
                format!("expected [\"host\", \"port\"], got {addr:?}"),
            ));
        }
    }
    if core.router.batch_size == 0 || core.router.queue_capacity == 0 {
        return Err(invalid(
            "core.router",
            "batch_size and queue_capacity must be >= 1".into(),
        ));
    }
    for (file, pin) in &core.plugin_pins {
        let hex = pin.strip_prefix("sha256:").unwrap_or("");
        if hex.len() != 64 || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(invalid(
                &format!("core.plugin_pins.{file}"),
                format!("expected \"sha256:\" and 64 hex digits, got {pin:?}"),
            ));
        }
    }
    for name in &core.plugins {
        if name.is_empty() || name.starts_with("core.") || name == "core" {
            return Err(invalid(
                "core.plugins",
                format!("`{name}` is not a plugin name"),
            ));
        }
    }
    Ok(())
}

/// Merges `over` into `base`: tables merge key by key, everything else is replaced.
pub fn deep_merge(base: &mut toml::Table, over: toml::Table) {
    for (key, value) in over {
        match (base.get_mut(&key), value) {
            (Some(toml::Value::Table(b)), toml::Value::Table(o)) => deep_merge(b, o),
            (_, v) => {
                base.insert(key, v);
            }
        }
    }
}

/// Converts TOML to JSON for a plugin (dates become RFC 3339 strings).
pub fn toml_to_json(value: &toml::Value) -> serde_json::Value {
    use serde_json::Value as J;
    match value {
        toml::Value::String(s) => J::String(s.clone()),
        toml::Value::Integer(i) => J::from(*i),
        toml::Value::Float(f) => serde_json::Number::from_f64(*f).map_or(J::Null, J::Number),
        toml::Value::Boolean(b) => J::Bool(*b),
        toml::Value::Datetime(d) => J::String(d.to_string()),
        toml::Value::Array(a) => J::Array(a.iter().map(toml_to_json).collect()),
        toml::Value::Table(t) => J::Object(
            t.iter()
                .map(|(k, v)| (k.clone(), toml_to_json(v)))
                .collect(),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(dir: &Path, name: &str, text: &str) {
        std::fs::write(dir.join(name), text).unwrap();
    }

    #[test]
    fn user_file_deep_merges_over_main() {
        let dir = tempfile::tempdir().unwrap();
        write(
            dir.path(),
            "gordon.toml",
            "[core]\nplugins = [\"a.b\"]\ndebug = false\n[core.logging]\nlevel = \"info\"\n",
        );
        write(
            dir.path(),
            "gordon-user.toml",
            "[core]\ndebug = true\n[core.logging]\nlevel = \"debug\"\n",
        );
        let cfg = Config::load(dir.path(), "gordon").unwrap();
        assert!(cfg.core.debug);
        assert_eq!(cfg.core.plugins, vec!["a.b"]);
        assert_eq!(cfg.core.logging.level, "debug");
        assert_eq!(cfg.files.len(), 2);
    }

    #[test]
    fn unknown_core_key_names_file_and_key() {
        let dir = tempfile::tempdir().unwrap();
        write(dir.path(), "gordon.toml", "[core]\nplugins = []\n");
        write(dir.path(), "gordon-user.toml", "[core]\nbogus = 1\n");
        let err = Config::load(dir.path(), "gordon").unwrap_err().to_string();
        assert!(err.contains("gordon-user.toml"), "{err}");
        assert!(err.contains("`core.bogus`"), "{err}");
    }

    #[test]
    fn wrong_type_names_the_key() {
        let dir = tempfile::tempdir().unwrap();
        write(dir.path(), "gordon.toml", "[core]\ndebug = \"yes\"\n");
        let err = Config::load(dir.path(), "gordon").unwrap_err().to_string();
        assert!(
            err.contains("`core.debug`") && err.contains("gordon.toml"),
            "{err}"
        );
        write(dir.path(), "gordon.toml", "[core.logging]\nlevel = 3\n");
        let err = Config::load(dir.path(), "gordon").unwrap_err().to_string();
        assert!(err.contains("`core.logging.level`"), "{err}");
    }

    #[test]
    fn missing_main_file_is_named() {
        let dir = tempfile::tempdir().unwrap();
        let err = Config::load(dir.path(), "gordon").unwrap_err().to_string();
        assert!(
            err.contains("gordon.toml") && err.contains("not found"),
            "{err}"
        );
    }

    #[test]
    fn plugin_sees_package_and_own_tables_only() {
        let cfg = Config::from_str(
            Path::new("."),
            r#"
            [core]
            plugins = ["dns.zonefile", "dns.enricher"]
            ["dns"]
            zone = "example.com."
            ttl = 300
            ["dns.zonefile"]
            path = "zone.db"
            ttl = 600
            ["dns.enricher"]
            secret = "enricher-only"
            [http]
            listen = "x"
            "#,
        )
        .unwrap();
        let known = ["dns.zonefile", "dns.enricher"];
        let z = cfg.plugin_config("dns.zonefile", &known);
        assert_eq!(z.get("zone").and_then(|v| v.as_str()), Some("example.com."));
        assert_eq!(z.get("ttl").and_then(|v| v.as_integer()), Some(600));
        assert_eq!(z.get("path").and_then(|v| v.as_str()), Some("zone.db"));
        assert!(z.get("secret").is_none() && z.get("listen").is_none() && z.get("core").is_none());
    }

    #[test]
    fn nested_plugin_tables_are_isolated_too() {
        let cfg = Config::from_str(
            Path::new("."),
            "[dns]\nzone = \"a.\"\n[dns.zonefile]\npath = \"p\"\n[dns.enricher]\nsecret = \"s\"\n",
        )
        .unwrap();
        let z = cfg.plugin_config("dns.zonefile", &["dns.zonefile", "dns.enricher"]);
        assert_eq!(z.len(), 2, "{z:?}");
        assert_eq!(z.get("path").and_then(|v| v.as_str()), Some("p"));
    }

    #[test]
    fn defaults_give_the_gordon_route() {
        let cfg = Config::from_str(Path::new("."), "").unwrap();
        assert_eq!(
            cfg.core.route.get("consume").map(String::as_str),
            Some("enrich")
        );
        assert_eq!(cfg.core.metrics, "log");
        assert_eq!(cfg.plugin_dirs(), vec![PathBuf::from("./plugins.d")]);
    }
}
