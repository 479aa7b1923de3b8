//! Configuration: `gordon.toml` deep-merged with `gordon-user.toml`.
//!
//! The two files live in the config root (`-c DIR`, default: the working directory).
//! Every table of the user file is merged key by key into the main file, so a user
//! file can override `core.debug` without repeating `core.plugins`. `[core]` is typed
//! and strict: an unknown key or a wrong type is an error naming the file and the key.
//! Everything else belongs to plugins, and a plugin sees only its own tables; each of
//! its keys remembers the file and table that set it, so that an error can name them.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use gordon_plugin_api::PluginError;
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
    /// Several keys are wrong; one line each.
    #[error("{} problems:\n{}", .0.len(), .0.iter().map(|e| format!("  {e}")).collect::<Vec<_>>().join("\n"))]
    Several(Vec<ConfigError>),
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
    /// Seconds a handler call (one batch) may take before its messages are dropped
    /// and rejected, the plugin is reported stuck and its worker replaced.
    #[serde(default = "default_handler_timeout")]
    pub handler_timeout: f64,
    /// Per-plugin overrides of `handler_timeout`: plugin name -> seconds.
    #[serde(default)]
    pub handler_timeouts: BTreeMap<String, f64>,
    /// What to do with a library built with `panic = "abort"` (its first panic
    /// would end the host): `refuse` (the default) or `warn`.
    #[serde(default = "default_panic_abort")]
    pub panic_abort: String,
    /// Phase -> next phase.
    #[serde(default = "default_route")]
    pub route: BTreeMap<String, String>,
    /// Logging.
    #[serde(default)]
    pub logging: LoggingConfig,
    /// Router tuning.
    #[serde(default)]
    pub router: RouterConfig,
    /// Plugins that run in a process of their own (see `[core.isolation]`); every
    /// name must be in `core.plugins`.
    #[serde(default)]
    pub isolate: Vec<String>,
    /// How isolated plugins run and are restarted.
    #[serde(default)]
    pub isolation: IsolationConfig,
    /// The control socket (`gordon ctl`).
    #[serde(default)]
    pub control: ControlConfig,
    /// What happens to a plugin that asks to leave.
    #[serde(default)]
    pub leaving: LeavingConfig,
    /// Per discovery plugin, the clusters `gordon run` watches and the records
    /// it keeps for each.
    #[serde(default)]
    pub discovery: BTreeMap<String, WatchConfig>,
}

/// `[core.discovery."PLUGIN"]`: the clusters a discovery plugin's watch turns
/// into record sets.
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct WatchConfig {
    /// The clusters, each with its records.
    #[serde(default)]
    pub clusters: Vec<ClusterRecords>,
}

/// The records of one watched cluster.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ClusterRecords {
    /// The cluster's name in the store (`web`).
    pub cluster: String,
    /// The record set that holds every live member's address, absolute
    /// (`web.example.com.`); each member also gets `NODE.NAME` with its own.
    pub name: String,
    /// The records' TTL, seconds.
    #[serde(default = "default_discovery_ttl")]
    pub ttl: u32,
    /// An SRV record set `SRV.NAME` (e.g. `_http._tcp`) with each member's port,
    /// its targets the members' own names.
    #[serde(default)]
    pub srv: Option<String>,
}

const fn default_discovery_ttl() -> u32 {
    60
}

/// `[core.leaving]`: a plugin that asks to leave (`PluginContext::leave`) is
/// stopped cleanly, then started again after a back-off, or left stopped.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LeavingConfig {
    /// Start it again (after `restart_backoff`), or leave it stopped.
    #[serde(default = "default_true")]
    pub restart: bool,
    /// Seconds before the first restart; doubled for each leave that follows
    /// within `restart_backoff_max`.
    #[serde(default = "default_leave_backoff")]
    pub restart_backoff: f64,
    /// Longest back-off, seconds.
    #[serde(default = "default_leave_backoff_max")]
    pub restart_backoff_max: f64,
}

impl Default for LeavingConfig {
    fn default() -> Self {
        LeavingConfig {
            restart: true,
            restart_backoff: default_leave_backoff(),
            restart_backoff_max: default_leave_backoff_max(),
        }
    }
}

const fn default_leave_backoff() -> f64 {
    1.0
}

const fn default_leave_backoff_max() -> f64 {
    60.0
}

/// `[core.control]`: the control socket `gordon ctl` talks to.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ControlConfig {
    /// Listen on the control socket at all.
    #[serde(default = "default_true")]
    pub enabled: bool,
    /// The socket's path, relative to the config root; default
    /// `$RUNTIME_DIRECTORY/gordon.sock` when systemd sets it, else `gordon.sock`
    /// in the config root.
    pub socket: Option<PathBuf>,
}

impl Default for ControlConfig {
    fn default() -> Self {
        ControlConfig {
            enabled: true,
            socket: None,
        }
    }
}

const fn default_true() -> bool {
    true
}

/// `[core.isolation]`: the limits of every isolated plugin's process and how its
/// crashes are handled.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IsolationConfig {
    /// Address-space limit of the process in MiB (`RLIMIT_AS`); 0 = none.
    #[serde(default)]
    pub memory_limit_mb: u64,
    /// CPU time limit of the process in seconds (`RLIMIT_CPU`); 0 = none.
    #[serde(default)]
    pub cpu_limit_seconds: u64,
    /// Most open files of the process (`RLIMIT_NOFILE`); 0 = inherit.
    #[serde(default)]
    pub max_open_files: u64,
    /// User to run the process as (name or uid); needs the host to run as root.
    pub user: Option<String>,
    /// Group to run the process as (name or gid); needs the host to run as root.
    pub group: Option<String>,
    /// Seconds a process has to load its library and create its plugin.
    #[serde(default = "default_start_timeout")]
    pub start_timeout: f64,
    /// Seconds a call other than a handler's batch (a source's cleanup, a relay's
    /// flush) may take before the process is killed.
    #[serde(default = "default_call_timeout")]
    pub call_timeout: f64,
    /// Seconds before the first restart after a crash; doubles with each crash
    /// in a row, up to `restart_backoff_max`.
    #[serde(default = "default_restart_backoff")]
    pub restart_backoff: f64,
    /// Longest wait between restarts, in seconds. A process that ran longer than
    /// this before crashing is restarted after `restart_backoff` again.
    #[serde(default = "default_restart_backoff_max")]
    pub restart_backoff_max: f64,
    /// A plugin that crashes more than this many times within `crash_window` is
    /// marked failed and not restarted (then `core.debug` decides: go on without
    /// it, or stop the host with a non-zero exit).
    #[serde(default = "default_max_crashes")]
    pub max_crashes: u32,
    /// The window of `max_crashes`, in seconds.
    #[serde(default = "default_crash_window")]
    pub crash_window: f64,
}

impl Default for IsolationConfig {
    fn default() -> Self {
        IsolationConfig {
            memory_limit_mb: 0,
            cpu_limit_seconds: 0,
            max_open_files: 0,
            user: None,
            group: None,
            start_timeout: default_start_timeout(),
            call_timeout: default_call_timeout(),
            restart_backoff: default_restart_backoff(),
            restart_backoff_max: default_restart_backoff_max(),
            max_crashes: default_max_crashes(),
            crash_window: default_crash_window(),
        }
    }
}

const fn default_start_timeout() -> f64 {
    30.0
}
const fn default_call_timeout() -> f64 {
    10.0
}
const fn default_restart_backoff() -> f64 {
    0.1
}
const fn default_restart_backoff_max() -> f64 {
    10.0
}
const fn default_max_crashes() -> u32 {
    5
}
const fn default_crash_window() -> f64 {
    60.0
}

/// `[core.logging]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LoggingConfig {
    /// `error`, `warning`/`warn`, `info`, `debug`, `trace` (`critical` = `error`), or
    /// RUST_LOG-style directives: that level and `TARGET=LEVEL` items, comma
    /// separated, a TARGET being a module path or a plugin name (see
    /// `logging::Directives`).
    #[serde(default = "default_level")]
    pub level: String,
    /// Any of `stream` (stderr), `syslog`, `json` (stderr, one JSON object per line).
    #[serde(default = "default_handlers")]
    pub handlers: Vec<String>,
    /// Accepted for compatibility with the original configuration; the text layout
    /// is fixed.
    pub fmt: Option<String>,
    /// Timestamp format, Python `strftime` codes (UTC); default RFC 3339.
    pub date_fmt: Option<String>,
    /// Syslog destination: `[host, port]` (UDP) or `[path]` (a local datagram
    /// socket); default the local `/dev/log`.
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
const fn default_handler_timeout() -> f64 {
    30.0
}
fn default_panic_abort() -> String {
    "refuse".into()
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
    /// Which file (an index into `files`) last set each key of `table`.
    trace: Trace<usize>,
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
        let mut trace = trace_of(&table, &0);
        if user.is_file() {
            let over = read_file(&user)?;
            let over_trace = trace_of(&over, &1);
            merge_traced(&mut table, &mut trace, over, over_trace);
            files.push(user.clone());
        }
        let merged_name = if files.len() > 1 {
            PathBuf::from(format!("{} + {}", main.display(), user.display()))
        } else {
            main
        };
        let core = parse_core(&merged_name, table.get("core"), Whole::Yes)?;
        Ok(Config {
            root: root.to_path_buf(),
            files,
            core,
            table,
            trace,
        })
    }

    /// Parses a configuration from text, for tests and tools.
    ///
    /// # Errors
    /// A [`ConfigError`].
    pub fn from_str(root: &Path, text: &str) -> Result<Config, ConfigError> {
        let path = root.join("gordon.toml");
        let table = parse_text(&path, text)?;
        let core = parse_core(&path, table.get("core"), Whole::Yes)?;
        let trace = trace_of(&table, &0);
        Ok(Config {
            root: root.to_path_buf(),
            files: vec![path],
            core,
            table,
            trace,
        })
    }

    /// A top-level table (`[ffwd]`, `[prometheus]`) as JSON; empty when absent.
    pub fn table_json(&self, name: &str) -> serde_json::Value {
        self.table
            .get(name)
            .map_or_else(|| serde_json::json!({}), toml_to_json)
    }

    /// Where the control socket is: `core.control.socket` (relative to the
    /// config root), else `$RUNTIME_DIRECTORY/gordon.sock`, else `gordon.sock` in
    /// the config root.
    pub fn control_socket(&self) -> PathBuf {
        if let Some(path) = &self.core.control.socket {
            return self.root.join(path);
        }
        match std::env::var_os("RUNTIME_DIRECTORY") {
            // systemd's RuntimeDirectory=; several are separated by colons.
            Some(dirs) if !dirs.is_empty() => {
                let first = dirs
                    .to_string_lossy()
                    .split(':')
                    .next()
                    .unwrap_or_default()
                    .to_owned();
                PathBuf::from(first).join("gordon.sock")
            }
            _ => self.root.join("gordon.sock"),
        }
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
        self.plugin_config_traced(name, known).0
    }

    /// [`Config::plugin_config`] as the JSON the plugin receives, with the file and
    /// table each key came from. A float JSON cannot carry (`nan`, `inf`) makes it a
    /// refusal naming the file, the table and the key.
    pub fn plugin_config_for(&self, name: &str, known: &[&str]) -> PluginConfig {
        let (table, trace) = self.plugin_config_traced(name, known);
        let refused = non_finite(&table);
        let mut config = PluginConfig {
            json: toml_to_json(&toml::Value::Table(table)).to_string(),
            trace,
            files: self.files.clone(),
            tables: plugin_tables(name),
            refusal: None,
        };
        if let Some((path, spelled)) = refused {
            let (origin, shown) = config.resolve(&path);
            let at = origin.map_or_else(|| shown.clone(), |o| format!("{o} {shown}"));
            config.refusal = Some(format!(
                "{at}: {spelled} cannot be given to a plugin: its configuration travels as JSON, which has no nan or infinity"
            ));
        }
        config
    }

    /// The plugin's configuration, and the file and table that set each key. Tables
    /// are applied package first, then nested, then quoted, the user file over the
    /// main file in each.
    fn plugin_config_traced(&self, name: &str, known: &[&str]) -> (toml::Table, Trace<Origin>) {
        let package = name.split('.').next().unwrap_or(name);
        let tables = plugin_tables(name);
        let origin = |table: &String| {
            let table = table.clone();
            move |file: &usize| Origin {
                file: self.files.get(*file).cloned().unwrap_or_default(),
                table: table.clone(),
            }
        };
        let mut out = toml::Table::new();
        let mut trace = Trace::new();
        if let (true, Some(toml::Value::Table(pkg))) = (package != name, self.table.get(package)) {
            let pkg_trace = self.trace.get(package).map(|t| &t.children);
            let tag = origin(&tables[0]);
            for (key, value) in pkg {
                let dotted = format!("{package}.{key}");
                let belongs_to_a_plugin = value.is_table()
                    && known
                        .iter()
                        .any(|k| *k == dotted || k.starts_with(&format!("{dotted}.")));
                let is_own = name == dotted || name.starts_with(&format!("{dotted}."));
                if !belongs_to_a_plugin && !is_own {
                    out.insert(key.clone(), value.clone());
                    if let Some(t) = pkg_trace.and_then(|p| p.get(key)) {
                        let traced = Traced {
                            origin: tag(&t.origin),
                            children: retag(&t.children, &tag),
                        };
                        trace.insert(key.clone(), traced);
                    }
                }
            }
        }
        // The nested form `[dns.zonefile]`.
        let mut node = self.table.get(package);
        let mut node_trace = self.trace.get(package);
        for part in name.split('.').skip(1) {
            node = node.and_then(|v| v.get(part));
            node_trace = node_trace.and_then(|t| t.children.get(part));
        }
        if let (true, Some(toml::Value::Table(own))) = (package != name, node) {
            let tag = origin(&tables[1]);
            let own_trace = node_trace.map_or_else(Trace::new, |t| retag(&t.children, &tag));
            merge_traced(&mut out, &mut trace, own.clone(), own_trace);
        }
        // The quoted form `["dns.zonefile"]` (or a plain `[name]` for a one-part name).
        if let Some(toml::Value::Table(own)) = self.table.get(name) {
            let tag = origin(&tables[tables.len() - 1]);
            let own_trace = self
                .trace
                .get(name)
                .map_or_else(Trace::new, |t| retag(&t.children, &tag));
            merge_traced(&mut out, &mut trace, own.clone(), own_trace);
        }
        (out, trace)
    }
}

/// The tables that configure plugin `name`, package table first: `["dns"]`,
/// `[dns.enricher]`, `["dns.enricher"]`; only `["name"]` for a one-part name.
pub fn plugin_tables(name: &str) -> Vec<String> {
    let own = format!("[{}]", quoted_key(name));
    match name.split_once('.') {
        None => vec![own],
        Some((package, _)) => {
            let nested: Vec<String> = name.split('.').map(toml_key).collect();
            vec![
                format!("[{}]", quoted_key(package)),
                format!("[{}]", nested.join(".")),
                own,
            ]
        }
    }
}

fn read_file(path: &Path) -> Result<toml::Table, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    let table = parse_text(path, &text)?;
    // Check `[core]` of each file on its own, so an error names the file it is in
    // (what relates keys that either file may set waits for the merged table).
    parse_core(path, table.get("core"), Whole::No)?;
    Ok(table)
}

fn parse_text(path: &Path, text: &str) -> Result<toml::Table, ConfigError> {
    text.parse::<toml::Table>().map_err(|e| ConfigError::Parse {
        path: path.to_path_buf(),
        message: e.to_string().trim_end().replace('\n', " "),
    })
}

/// Whether a `[core]` table is the merged configuration or one file's part.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Whole {
    Yes,
    No,
}

fn parse_core(
    path: &Path,
    core: Option<&toml::Value>,
    whole: Whole,
) -> Result<CoreConfig, ConfigError> {
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
    validate_core(path, &core, whole)?;
    Ok(core)
}

/// Checks the values of `[core]` the types cannot; reports every problem at once.
/// Checks between keys that different files may set run on the whole
/// configuration only.
fn validate_core(path: &Path, core: &CoreConfig, whole: Whole) -> Result<(), ConfigError> {
    let mut errors = Vec::new();
    let mut invalid = |key: &str, message: String| {
        errors.push(ConfigError::Invalid {
            path: path.to_path_buf(),
            key: key.into(),
            message,
        });
    };
    if let Err(m) = core
        .panic_abort
        .parse::<crate::plugins::inspect::PanicAbort>()
    {
        invalid("core.panic_abort", m);
    }
    if let Err(e) = core.logging.level.parse::<crate::logging::Directives>() {
        invalid("core.logging.level", e.to_string());
    }
    for h in &core.logging.handlers {
        if !["stream", "syslog", "json"].contains(&h.as_str()) {
            invalid(
                "core.logging.handlers",
                format!("unknown handler `{h}`, expected `stream`, `syslog` or `json`"),
            );
        }
    }
    if let Some(addr) = &core.logging.address {
        let ok = match addr.as_slice() {
            [host, port] => !host.is_empty() && port.parse::<u16>().is_ok(),
            [path] => path.starts_with('/'),
            _ => false,
        };
        if !ok {
            invalid(
                "core.logging.address",
                format!("expected [\"host\", \"port\"] or [\"/path/to/socket\"], got {addr:?}"),
            );
        }
    }
    if let Some(fmt) = &core.logging.date_fmt {
        if let Err(m) = crate::logging::check_date_format(fmt) {
            invalid("core.logging.date_fmt", m);
        }
    }
    let mut seconds = |key: &str, value: f64, zero_ok: bool| {
        let low_ok = if zero_ok { value >= 0.0 } else { value > 0.0 };
        if !(value.is_finite() && low_ok && value <= MAX_SECONDS) {
            let low = if zero_ok { ">= 0" } else { "> 0" };
            invalid(
                key,
                format!("must be a number of seconds {low} and <= {MAX_SECONDS}, got {value}"),
            );
        }
    };
    seconds("core.run_timeout", core.run_timeout, false);
    seconds("core.shutdown_timeout", core.shutdown_timeout, true);
    seconds("core.handler_timeout", core.handler_timeout, false);
    for (plugin, value) in &core.handler_timeouts {
        seconds(
            &format!("core.handler_timeouts.\"{plugin}\""),
            *value,
            false,
        );
    }
    let iso = &core.isolation;
    seconds("core.isolation.start_timeout", iso.start_timeout, false);
    seconds("core.isolation.call_timeout", iso.call_timeout, false);
    seconds("core.isolation.restart_backoff", iso.restart_backoff, true);
    seconds(
        "core.isolation.restart_backoff_max",
        iso.restart_backoff_max,
        true,
    );
    seconds("core.isolation.crash_window", iso.crash_window, false);
    seconds(
        "core.leaving.restart_backoff",
        core.leaving.restart_backoff,
        true,
    );
    seconds(
        "core.leaving.restart_backoff_max",
        core.leaving.restart_backoff_max,
        true,
    );
    if whole == Whole::Yes && iso.restart_backoff_max < iso.restart_backoff {
        invalid(
            "core.isolation.restart_backoff_max",
            format!(
                "must be at least core.isolation.restart_backoff ({}), got {}",
                iso.restart_backoff, iso.restart_backoff_max
            ),
        );
    }
    if iso.max_crashes == 0 {
        invalid(
            "core.isolation.max_crashes",
            "must be at least 1".to_owned(),
        );
    }
    for (key, value) in [("user", &iso.user), ("group", &iso.group)] {
        if value.as_deref().is_some_and(str::is_empty) {
            invalid(
                &format!("core.isolation.{key}"),
                "must not be empty".to_owned(),
            );
        }
    }
    let mut isolated = std::collections::BTreeSet::new();
    for name in &core.isolate {
        if whole == Whole::Yes && !core.plugins.contains(name) {
            invalid(
                "core.isolate",
                format!("`{name}` is not listed in core.plugins"),
            );
        } else if !isolated.insert(name.as_str()) {
            invalid("core.isolate", format!("`{name}` is listed more than once"));
        }
    }
    let mut in_range = |key: &str, value: usize, max: usize| {
        if !(1..=max).contains(&value) {
            invalid(key, format!("must be between 1 and {max}, got {value}"));
        }
    };
    if let Some(workers) = core.router.workers {
        in_range("core.router.workers", workers, MAX_WORKERS);
    }
    in_range("core.router.batch_size", core.router.batch_size, MAX_BATCH);
    in_range(
        "core.router.queue_capacity",
        core.router.queue_capacity,
        MAX_QUEUE,
    );
    for (file, pin) in &core.plugin_pins {
        let hex = pin.strip_prefix("sha256:").unwrap_or("");
        if hex.len() != 64 || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
            invalid(
                &format!("core.plugin_pins.{file}"),
                format!("expected \"sha256:\" and 64 hex digits, got {pin:?}"),
            );
        }
    }
    let mut seen = std::collections::BTreeSet::new();
    for name in &core.plugins {
        if name.is_empty() || name.starts_with("core.") || name == "core" {
            invalid("core.plugins", format!("`{name}` is not a plugin name"));
        } else if !seen.insert(name.as_str()) {
            invalid("core.plugins", format!("`{name}` is listed more than once"));
        }
    }
    for (plugin, watch) in &core.discovery {
        if whole == Whole::Yes && !core.plugins.contains(plugin) {
            invalid(
                &format!("core.discovery.\"{plugin}\""),
                format!("`{plugin}` is not in core.plugins"),
            );
        }
        for (i, c) in watch.clusters.iter().enumerate() {
            let key = format!("core.discovery.\"{plugin}\".clusters[{i}]");
            if watch.clusters[..i].iter().any(|o| o.cluster == c.cluster) {
                invalid(
                    &format!("{key}.cluster"),
                    format!("cluster `{}` is listed more than once", c.cluster),
                );
            }
            if c.cluster.is_empty() || c.cluster.contains(['.', '*', '>', ' ']) {
                invalid(
                    &format!("{key}.cluster"),
                    format!(
                        "`{}` is not a cluster name (no dots, spaces or wildcards)",
                        c.cluster
                    ),
                );
            }
            if !c.name.ends_with('.') || c.name.len() < 2 {
                invalid(
                    &format!("{key}.name"),
                    format!("`{}` must be an absolute name ending with a dot", c.name),
                );
            }
            if c.srv
                .as_deref()
                .is_some_and(|s| !s.starts_with('_') || s.ends_with('.'))
            {
                invalid(
                    &format!("{key}.srv"),
                    "must be like `_http._tcp` (relative, underscored)".into(),
                );
            }
        }
    }
    match errors.len() {
        0 => Ok(()),
        1 => Err(errors.remove(0)),
        _ => Err(ConfigError::Several(errors)),
    }
}

/// Longest timeout accepted, in seconds (one day): anything longer is a typo, and
/// some values (`1e20`) do not fit a `Duration`.
pub const MAX_SECONDS: f64 = 86_400.0;
/// Most router workers per source.
pub const MAX_WORKERS: usize = 256;
/// Largest router batch.
pub const MAX_BATCH: usize = 65_536;
/// Largest per-source queue.
pub const MAX_QUEUE: usize = 1 << 24;

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

/// Converts TOML to JSON for a plugin (dates become RFC 3339 strings). JSON has no
/// `nan` or `inf`: they become `null`, so [`Config::plugin_config_for`] refuses them.
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

/// Where a key of a plugin's configuration was set: a file, and a table in it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Origin {
    /// The file.
    pub file: PathBuf,
    /// The table as TOML writes it: `["dns"]` (the package table), `[dns.enricher]`
    /// (nested) or `["dns.enricher"]` (quoted).
    pub table: String,
}

impl std::fmt::Display for Origin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.file.display(), self.table)
    }
}

/// Who set one key last, and who set each key under it when its value is a table.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Traced<T> {
    origin: T,
    children: Trace<T>,
}

/// Who set each key of a table (arrays are one value: their elements have no entry).
type Trace<T> = BTreeMap<String, Traced<T>>;

/// Every key of `table` set by `origin`.
fn trace_of<T: Clone>(table: &toml::Table, origin: &T) -> Trace<T> {
    table
        .iter()
        .map(|(key, value)| {
            let children = match value {
                toml::Value::Table(t) => trace_of(t, origin),
                _ => Trace::new(),
            };
            (
                key.clone(),
                Traced {
                    origin: origin.clone(),
                    children,
                },
            )
        })
        .collect()
}

/// The same trace with each origin mapped through `f`.
fn retag<T, U>(trace: &Trace<T>, f: &impl Fn(&T) -> U) -> Trace<U> {
    trace
        .iter()
        .map(|(key, t)| {
            (
                key.clone(),
                Traced {
                    origin: f(&t.origin),
                    children: retag(&t.children, f),
                },
            )
        })
        .collect()
}

/// [`deep_merge`], recording who set each key: a key `over` replaces takes its
/// trace from `over_trace`; a table both have keeps the keys only `base` sets.
fn merge_traced<T: Clone>(
    base: &mut toml::Table,
    base_trace: &mut Trace<T>,
    over: toml::Table,
    mut over_trace: Trace<T>,
) {
    for (key, value) in over {
        let Some(traced) = over_trace.remove(&key) else {
            base_trace.remove(&key);
            deep_merge(base, toml::Table::from_iter([(key, value)]));
            continue;
        };
        match (base.get_mut(&key), value) {
            (Some(toml::Value::Table(b)), toml::Value::Table(o)) => {
                let entry = base_trace.entry(key).or_insert_with(|| Traced {
                    origin: traced.origin.clone(),
                    children: Trace::new(),
                });
                entry.origin = traced.origin;
                merge_traced(b, &mut entry.children, o, traced.children);
            }
            (_, v) => {
                base.insert(key.clone(), v);
                base_trace.insert(key, traced);
            }
        }
    }
}

/// A key as TOML writes it: bare when it can be, quoted otherwise.
fn toml_key(key: &str) -> String {
    let bare = !key.is_empty()
        && key
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
    if bare {
        key.to_owned()
    } else {
        quoted_key(key)
    }
}

/// A key as a TOML quoted key: `"dns.enricher"`.
fn quoted_key(key: &str) -> String {
    format!("\"{}\"", key.replace('\\', "\\\\").replace('"', "\\\""))
}

/// One step of a path into a plugin's configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Step {
    /// A key. `exact` is false for an unquoted piece of a path an older SDK wrote,
    /// where `a.b` may be the one key `"a.b"`.
    Key { key: String, exact: bool },
    /// An array position.
    Index(usize),
}

/// Writes a path as TOML would: `servers[0].port`, `zones."example.com".ttl`.
fn show_path(path: &[Step]) -> String {
    let mut out = String::new();
    for step in path {
        match step {
            Step::Index(i) => out.push_str(&format!("[{i}]")),
            Step::Key { key, .. } => {
                if !out.is_empty() {
                    out.push('.');
                }
                out.push_str(&toml_key(key));
            }
        }
    }
    out
}

/// Reads a path written by the SDK (see [`show_path`]); `None` if it is not one.
fn parse_path(text: &str) -> Option<Vec<Step>> {
    let mut path = Vec::new();
    let mut rest = text;
    while !rest.is_empty() {
        if let Some(r) = rest.strip_prefix('[') {
            let end = r.find(']')?;
            path.push(Step::Index(r[..end].parse().ok()?));
            rest = &r[end + 1..];
            continue;
        }
        if !path.is_empty() {
            rest = rest.strip_prefix('.')?;
        }
        if let Some(r) = rest.strip_prefix('"') {
            let mut key = String::new();
            let mut chars = r.char_indices();
            let end = loop {
                match chars.next()? {
                    (_, '\\') => key.push(chars.next()?.1),
                    (i, '"') => break i,
                    (_, c) => key.push(c),
                }
            };
            path.push(Step::Key { key, exact: true });
            rest = &r[end + 1..];
        } else {
            let end = rest.find(['.', '[']).unwrap_or(rest.len());
            if end == 0 {
                return None;
            }
            path.push(Step::Key {
                key: rest[..end].to_owned(),
                exact: false,
            });
            rest = &rest[end..];
        }
    }
    Some(path)
}

/// The first float JSON cannot carry (`nan`, `inf`), with its path and TOML spelling.
fn non_finite(table: &toml::Table) -> Option<(Vec<Step>, &'static str)> {
    fn within<'a>(
        items: impl Iterator<Item = (Step, &'a toml::Value)>,
        path: &mut Vec<Step>,
    ) -> Option<&'static str> {
        for (step, value) in items {
            path.push(step);
            if let Some(found) = walk(value, path) {
                return Some(found);
            }
            path.pop();
        }
        None
    }
    fn keys(t: &toml::Table) -> impl Iterator<Item = (Step, &toml::Value)> {
        t.iter().map(|(key, v)| {
            let step = Step::Key {
                key: key.clone(),
                exact: true,
            };
            (step, v)
        })
    }
    fn walk(value: &toml::Value, path: &mut Vec<Step>) -> Option<&'static str> {
        match value {
            toml::Value::Float(f) if f.is_nan() => Some("nan"),
            toml::Value::Float(f) if f.is_infinite() => Some(if *f < 0.0 { "-inf" } else { "inf" }),
            toml::Value::Table(t) => within(keys(t), path),
            toml::Value::Array(a) => {
                within(a.iter().enumerate().map(|(i, v)| (Step::Index(i), v)), path)
            }
            _ => None,
        }
    }
    let mut path = Vec::new();
    let spelled = within(keys(table), &mut path)?;
    Some((path, spelled))
}

/// What the SDK's configuration errors start with (see `parse_config` in
/// `gordon-plugin-api`): one key, or the table as a whole.
const SDK_KEY_ERROR: &str = "invalid configuration at `";
const SDK_TABLE_ERROR: &str = "invalid configuration: ";

/// The configuration one plugin receives, as JSON object text (it derefs to `str`),
/// with the file and table each of its keys came from, to name them in errors.
#[derive(Debug, Clone)]
pub struct PluginConfig {
    json: String,
    trace: Trace<Origin>,
    /// The files read, main first.
    files: Vec<PathBuf>,
    /// The tables that may configure the plugin, package table first.
    tables: Vec<String>,
    /// Why the configuration cannot be given to the plugin at all.
    refusal: Option<String>,
}

impl std::ops::Deref for PluginConfig {
    type Target = str;
    fn deref(&self) -> &str {
        &self.json
    }
}

impl PluginConfig {
    /// The top-level keys set in the plugin's own tables (not its package table,
    /// which the package's plugins share), with the file and table of each.
    pub fn own_keys(&self) -> impl Iterator<Item = (&str, &Origin)> + '_ {
        let package = (self.tables.len() > 1).then(|| self.tables[0].as_str());
        self.trace
            .iter()
            .filter(move |(_, t)| Some(t.origin.table.as_str()) != package)
            .map(|(k, t)| (k.as_str(), &t.origin))
    }

    /// The JSON object text the plugin receives.
    pub fn json(&self) -> &str {
        &self.json
    }

    /// The file and table that set the key at `path` (TOML syntax, e.g.
    /// `servers[0].port`): the innermost key of the path that has a trace.
    pub fn origin_of(&self, path: &str) -> Option<Origin> {
        self.resolve(&parse_path(path)?).0
    }

    /// Runs `validate` on the JSON, unless the configuration holds a value JSON
    /// cannot carry; an error it returns is reworded by [`PluginConfig::explain`].
    ///
    /// # Errors
    /// The refusal, or `validate`'s error naming the file and table (a caught panic
    /// is passed on unchanged).
    pub fn validate_with<T>(
        &self,
        validate: impl FnOnce(&str) -> Result<T, PluginError>,
    ) -> Result<T, PluginError> {
        if let Some(refusal) = &self.refusal {
            return Err(PluginError::new(refusal.clone()));
        }
        validate(&self.json).map_err(|e| {
            if e.is_panic() {
                e
            } else {
                PluginError::new(self.explain(e.message()))
            }
        })
    }

    /// Rewords a plugin's configuration error to name where the key came from.
    ///
    /// An SDK error about one key becomes `FILE: [TABLE] KEY: WHAT`; any other error
    /// (a missing key, a plugin's own validation text) is kept and followed by the
    /// tables the configuration came from, or by the tables it was looked for in.
    pub fn explain(&self, message: &str) -> String {
        if let Some(rest) = message.strip_prefix(SDK_KEY_ERROR) {
            if let Some((path, what)) = rest.split_once("`: ") {
                if let Some(path) = parse_path(path) {
                    let (origin, shown) = self.resolve(&path);
                    return match origin {
                        Some(origin) => format!("{origin} {shown}: {what}"),
                        None => format!("{shown}: {what} ({})", self.sources()),
                    };
                }
            }
        }
        let what = message.strip_prefix(SDK_TABLE_ERROR).unwrap_or(message);
        format!("{what} ({})", self.sources())
    }

    /// The origin of the innermost traced key on `path`, and the path as TOML
    /// writes it. An unquoted run of keys (an older SDK's `a.b.c`) matches the
    /// longest dotted key the table has.
    fn resolve(&self, path: &[Step]) -> (Option<Origin>, String) {
        let mut level = Some(&self.trace);
        let mut origin = None;
        let mut shown = Vec::new();
        let mut i = 0;
        while i < path.len() {
            let Step::Key { key, exact } = &path[i] else {
                level = None;
                shown.push(path[i].clone());
                i += 1;
                continue;
            };
            let run = if *exact {
                i + 1
            } else {
                i + path[i..]
                    .iter()
                    .take_while(|s| matches!(s, Step::Key { exact: false, .. }))
                    .count()
            };
            let found = level.and_then(|children| {
                (i + 1..=run).rev().find_map(|end| {
                    let joined = path[i..end]
                        .iter()
                        .filter_map(|s| match s {
                            Step::Key { key, .. } => Some(key.as_str()),
                            Step::Index(_) => None,
                        })
                        .collect::<Vec<_>>()
                        .join(".");
                    children.get_key_value(&joined).map(|(k, t)| (k, t, end))
                })
            });
            match found {
                Some((k, traced, end)) => {
                    origin = Some(traced.origin.clone());
                    level = Some(&traced.children);
                    shown.push(Step::Key {
                        key: k.clone(),
                        exact: true,
                    });
                    i = end;
                }
                None => {
                    level = None;
                    shown.push(Step::Key {
                        key: key.clone(),
                        exact: *exact,
                    });
                    i += 1;
                }
            }
        }
        (origin, show_path(&shown))
    }

    /// `configured in FILE [TABLE], …`, or where the configuration was looked for.
    fn sources(&self) -> String {
        fn collect(trace: &Trace<Origin>, out: &mut Vec<Origin>) {
            for t in trace.values() {
                if !out.contains(&t.origin) {
                    out.push(t.origin.clone());
                }
                collect(&t.children, out);
            }
        }
        let mut origins = Vec::new();
        collect(&self.trace, &mut origins);
        let rank = |o: &Origin| {
            (
                self.files.iter().position(|f| *f == o.file),
                self.tables.iter().position(|t| *t == o.table),
            )
        };
        origins.sort_by_key(rank);
        let join = |items: Vec<String>, last: &str| match items.split_last() {
            Some((tail, head)) if !head.is_empty() => format!("{} {last} {tail}", head.join(", ")),
            _ => items.concat(),
        };
        if origins.is_empty() {
            // Its own table first, then the package table (not the nested spelling).
            let tables = match self.tables.as_slice() {
                [package, .., own] => vec![own.clone(), package.clone()],
                other => other.to_vec(),
            };
            format!(
                "there is no {} table in {}",
                join(tables, "or"),
                join(
                    self.files.iter().map(|f| f.display().to_string()).collect(),
                    "or"
                )
            )
        } else {
            format!(
                "configured in {}",
                join(
                    origins
                        .iter()
                        .map(|o| format!("{} {}", o.file.display(), o.table))
                        .collect(),
                    "and"
                )
            )
        }
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
    fn log_level_directives_are_checked_at_load_naming_file_key_and_item() {
        let dir = tempfile::tempdir().unwrap();
        let good = "[core.logging]\nlevel = \"warning,dns.rfc2136=debug,gordon::service=trace\"\n";
        write(dir.path(), "gordon.toml", good);
        let cfg = Config::load(dir.path(), "gordon").unwrap();
        assert_eq!(
            cfg.core.logging.level,
            "warning,dns.rfc2136=debug,gordon::service=trace"
        );
        write(
            dir.path(),
            "gordon.toml",
            "[core.logging]\nlevel = \"warning,dns.rfc2136=chatty\"\n",
        );
        let err = Config::load(dir.path(), "gordon").unwrap_err().to_string();
        let file = dir.path().join("gordon.toml");
        assert_eq!(
            err,
            format!(
                "{}: `core.logging.level`: directive `dns.rfc2136=chatty`: unknown level `chatty`, expected one of trace, debug, info, warning, error, critical",
                file.display()
            )
        );
    }

    #[test]
    fn every_bad_core_value_is_reported_at_once() {
        let err = Config::from_str(
            Path::new("."),
            "[core]\nplugins = [\"a.b\", \"a.b\"]\nshutdown_timeout = 1e20\nhandler_timeout = 0\n[core.router]\nworkers = 0\nbatch_size = 4611686018427387904\n",
        )
        .unwrap_err()
        .to_string();
        for key in [
            "`core.plugins`: `a.b` is listed more than once",
            "`core.shutdown_timeout`",
            "`core.handler_timeout`",
            "`core.router.workers`",
            "`core.router.batch_size`",
        ] {
            assert!(err.contains(key), "{key} missing from: {err}");
        }
        assert!(err.starts_with("5 problems:"), "{err}");
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

    /// A config root with both files, loaded.
    fn load_both(main: &str, user: &str) -> (tempfile::TempDir, Config) {
        let dir = tempfile::tempdir().unwrap();
        write(dir.path(), "gordon.toml", main);
        write(dir.path(), "gordon-user.toml", user);
        let cfg = Config::load(dir.path(), "gordon").unwrap();
        (dir, cfg)
    }

    #[test]
    fn keys_that_relate_to_each_other_are_checked_once_the_files_are_merged() {
        // The user file isolates a plugin the main file lists, and sets a back-off
        // beyond the default maximum that the main file raises.
        let (_dir, cfg) = load_both(
            "[core]\nplugins = [\"acme.enrich\"]\n[core.isolation]\nrestart_backoff_max = 60\n",
            "[core]\nisolate = [\"acme.enrich\"]\n[core.isolation]\nrestart_backoff = 20\n",
        );
        assert_eq!(cfg.core.isolate, ["acme.enrich"]);
        let dir = tempfile::tempdir().unwrap();
        write(dir.path(), "gordon.toml", "[core]\nplugins = [\"a.b\"]\n");
        write(
            dir.path(),
            "gordon-user.toml",
            "[core]\nisolate = [\"c.d\"]\n",
        );
        let err = Config::load(dir.path(), "gordon").unwrap_err().to_string();
        assert!(
            err.contains("`core.isolate`: `c.d` is not listed in core.plugins"),
            "{err}"
        );
    }

    fn origin(pc: &PluginConfig, path: &str) -> String {
        let o = pc
            .origin_of(path)
            .unwrap_or_else(|| panic!("no origin for {path}"));
        format!(
            "{}: {}",
            o.file.file_name().unwrap().to_string_lossy(),
            o.table
        )
    }

    #[test]
    fn each_key_remembers_its_file_and_table() {
        let known = ["dns.enricher", "dns.zonefile"];
        let (_dir, cfg) = load_both(
            r#"
            ["dns"]
            zone = "a."
            ttl = 300
            limits = { low = 1, high = 2 }
            servers = [{ port = 53 }]
            ["dns.enricher"]
            ttl = 600
            [dns.zonefile]
            path = "z.db"
            "#,
            r#"
            ["dns"]
            zone = 5
            ttl = 900
            limits = { high = 3 }
            [dns.enricher]
            retries = 2
            "#,
        );
        let pc = cfg.plugin_config_for("dns.enricher", &known);
        // The user file wins over the main file...
        assert_eq!(origin(&pc, "zone"), r#"gordon-user.toml: ["dns"]"#);
        // ...but the plugin's own table wins over the package table, whatever the file.
        assert_eq!(origin(&pc, "ttl"), r#"gordon.toml: ["dns.enricher"]"#);
        assert_eq!(origin(&pc, "retries"), "gordon-user.toml: [dns.enricher]");
        // Deep-merged tables keep each key's own origin; arrays are one value.
        assert_eq!(origin(&pc, "limits.low"), r#"gordon.toml: ["dns"]"#);
        assert_eq!(origin(&pc, "limits.high"), r#"gordon-user.toml: ["dns"]"#);
        assert_eq!(origin(&pc, "servers[0].port"), r#"gordon.toml: ["dns"]"#);
        // Another plugin's tables are neither seen nor traced.
        assert!(pc.origin_of("path").is_none());
        let seen: serde_json::Value = serde_json::from_str(pc.json()).unwrap();
        assert_eq!(seen["ttl"], 600);
        assert_eq!(seen["zone"], 5);
        assert_eq!(seen["limits"], serde_json::json!({"low": 1, "high": 3}));
        assert!(seen.get("path").is_none(), "{seen}");
        let z = cfg.plugin_config_for("dns.zonefile", &known);
        assert_eq!(origin(&z, "path"), "gordon.toml: [dns.zonefile]");
        assert_eq!(cfg.plugin_config("dns.zonefile", &known).len(), 5);
    }

    #[test]
    fn sdk_errors_are_reworded_to_name_file_table_and_key() {
        let (dir, cfg) = load_both(
            "[\"dns.enricher\"]\nservers = [{ port = 53 }, { port = \"x\" }]\n[dns.enricher.zones]\n\"example.com\" = { ttl = -1 }\n",
            "[\"dns\"]\nzone = 5\n",
        );
        let user = dir.path().join("gordon-user.toml").display().to_string();
        let main = dir.path().join("gordon.toml").display().to_string();
        let pc = cfg.plugin_config_for("dns.enricher", &["dns.enricher"]);
        assert_eq!(
            pc.explain(
                "invalid configuration at `zone`: invalid type: integer `5`, expected a string"
            ),
            format!(r#"{user}: ["dns"] zone: invalid type: integer `5`, expected a string"#)
        );
        assert_eq!(
            pc.explain("invalid configuration at `servers[1].port`: invalid type: string \"x\", expected u16"),
            format!(r#"{main}: ["dns.enricher"] servers[1].port: invalid type: string "x", expected u16"#)
        );
        // Quoted keys, and the unquoted form an older SDK writes, find the same key.
        for path in [r#"zones."example.com".ttl"#, "zones.example.com.ttl"] {
            assert_eq!(
                pc.explain(&format!("invalid configuration at `{path}`: invalid value")),
                format!(r#"{main}: [dns.enricher] zones."example.com".ttl: invalid value"#)
            );
        }
        // No key to point at: the tables the configuration came from.
        assert_eq!(
            pc.explain("invalid configuration: missing field `name`"),
            format!(
                r#"missing field `name` (configured in {main} [dns.enricher], {main} ["dns.enricher"] and {user} ["dns"])"#
            )
        );
        assert_eq!(
            pc.explain("`zone` must end with a dot"),
            format!(
                r#"`zone` must end with a dot (configured in {main} [dns.enricher], {main} ["dns.enricher"] and {user} ["dns"])"#
            )
        );
        // A plugin nothing configures: where its table was looked for.
        let none = cfg.plugin_config_for("other.plugin", &["dns.enricher"]);
        assert_eq!(
            none.explain("invalid configuration: missing field `name`"),
            format!(
                r#"missing field `name` (there is no ["other.plugin"] or ["other"] table in {main} or {user})"#
            )
        );
    }

    #[test]
    fn validate_with_rewords_errors_but_not_panics() {
        let (dir, cfg) = load_both("[\"dns\"]\nzone = 5\n", "");
        let main = dir.path().join("gordon.toml").display().to_string();
        let pc = cfg.plugin_config_for("dns.enricher", &[]);
        let err = pc
            .validate_with(|json| {
                assert_eq!(json, r#"{"zone":5}"#);
                Err::<(), _>(PluginError::new("invalid configuration at `zone`: wrong"))
            })
            .unwrap_err();
        assert_eq!(err.message(), format!(r#"{main}: ["dns"] zone: wrong"#));
        assert!(pc.validate_with(|_| Ok(())).is_ok());
    }

    #[test]
    fn nan_and_inf_are_refused_naming_file_table_and_key() {
        let (dir, cfg) = load_both(
            "[\"alpha\"]\nlimits = [1.0, -inf]\n[\"beta.x\"]\nok = 1.5\n",
            "[\"beta.x\"]\nratio = nan\n[alpha.y]\nr = +inf\n",
        );
        let main = dir.path().join("gordon.toml").display().to_string();
        let user = dir.path().join("gordon-user.toml").display().to_string();
        let refusal = |name: &str| {
            let pc = cfg.plugin_config_for(name, &["alpha.y", "beta.x"]);
            pc.validate_with(|_| -> Result<(), _> {
                panic!("a refused configuration reached the plugin")
            })
            .unwrap_err()
            .to_string()
        };
        let e = refusal("beta.x");
        assert!(
            e.starts_with(&format!(
                r#"{user}: ["beta.x"] ratio: nan cannot be given to a plugin"#
            )),
            "{e}"
        );
        assert!(e.contains("JSON"), "{e}");
        let e = refusal("alpha.z");
        assert!(
            e.starts_with(&format!(r#"{main}: ["alpha"] limits[1]: -inf cannot"#)),
            "{e}"
        );
        let e = refusal("alpha.y");
        assert!(e.contains("limits[1]: -inf"), "{e}");
        let only_inf = Config::from_str(Path::new("."), "[\"alpha.y\"]\nr = inf\n").unwrap();
        let e = only_inf
            .plugin_config_for("alpha.y", &[])
            .validate_with(|_| Ok(()))
            .unwrap_err()
            .to_string();
        assert!(e.contains(r#"["alpha.y"] r: inf cannot"#), "{e}");
    }

    #[test]
    fn datetimes_reach_plugins_as_strings() {
        let cfg = Config::from_str(
            Path::new("."),
            "[\"a.b\"]\nat = 1979-05-27T07:32:00Z\nlocal = 1979-05-27T07:32:00\nday = 1979-05-27\ntime = 07:32:00.5\nratio = 0.25\n",
        )
        .unwrap();
        let pc = cfg.plugin_config_for("a.b", &[]);
        assert!(pc.validate_with(|_| Ok(())).is_ok());
        let seen: serde_json::Value = serde_json::from_str(&pc).unwrap();
        assert_eq!(
            seen,
            serde_json::json!({
                "at": "1979-05-27T07:32:00Z",
                "local": "1979-05-27T07:32:00",
                "day": "1979-05-27",
                "time": "07:32:00.5",
                "ratio": 0.25,
            })
        );
    }
}
