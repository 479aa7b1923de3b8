//! The catalog of plugins found in the plugin directories, and the selection of the
//! active ones named by `core.plugins`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use super::refusal::{Refused, Warned, Warning};
use super::{discovery, inspect, loader};

/// A plugin name as a `&'static str`, as messages' histories and metric tags need
/// it. Each call leaks one small string: call it once per plugin, at start-up.
pub fn intern(name: &str) -> &'static str {
    gordon_plugin_api::Phase::intern(name).as_str()
}

/// One plugin a library exports.
#[derive(Clone)]
pub struct PluginInfo {
    /// Dotted name.
    pub name: String,
    /// `runnable`, `message_handler` or `metric_relay`.
    pub kind: String,
    /// Handled phase, or start phase of a runnable.
    pub phase: String,
    /// The version of the crate that built it.
    pub version: String,
    /// One line.
    pub description: String,
    /// The library file.
    pub library: PathBuf,
    /// The plugin-api version the library was built against.
    pub api_version: String,
    /// Its actions and the host events it selects (empty before plugin-api 1.3).
    pub definition: gordon_plugin_api::Definition,
    /// Its functions in the library.
    pub fns: loader::EntryFns,
}

impl PluginInfo {
    /// A problem with this plugin, as one line naming it and its library.
    pub fn problem(&self, error: &dyn std::fmt::Display) -> String {
        format!(
            "plugin `{}` ({}): {error}",
            self.name,
            self.library.display()
        )
    }
}

impl std::fmt::Debug for PluginInfo {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PluginInfo")
            .field("name", &self.name)
            .field("kind", &self.kind)
            .field("library", &self.library)
            .finish()
    }
}

/// Everything discovery found: plugins, refused libraries, warnings about libraries
/// that loaded, and name clashes.
#[derive(Debug, Default)]
pub struct Catalog {
    /// Plugins of the libraries that loaded, in directory order.
    pub plugins: Vec<PluginInfo>,
    /// Libraries (or directories) that were refused.
    pub refused: Vec<Refused>,
    /// Libraries that loaded, with something to know about them (one line each).
    pub warnings: Vec<Warned>,
    /// Names exported by more than one library: name -> files.
    pub duplicates: BTreeMap<String, Vec<PathBuf>>,
}

impl Catalog {
    /// Scans every directory, checks every candidate file before loading it, loads
    /// each one on its own, and collects every failure.
    pub fn discover(dirs: &[PathBuf], checks: &inspect::Checks) -> Catalog {
        let mut catalog = Catalog::default();
        let scan = discovery::scan(dirs);
        catalog.refused.extend(scan.refused);
        for path in scan.libraries {
            match load_one(&path, checks) {
                Ok((plugins, warning)) => {
                    catalog.plugins.extend(plugins);
                    catalog.warnings.extend(warning.map(|warning| Warned {
                        library: path.clone(),
                        warning,
                    }));
                }
                Err(refused) => catalog.refused.push(refused),
            }
        }
        let mut by_name: BTreeMap<String, Vec<PathBuf>> = BTreeMap::new();
        for p in &catalog.plugins {
            by_name
                .entry(p.name.clone())
                .or_default()
                .push(p.library.clone());
        }
        catalog.duplicates = by_name
            .into_iter()
            .filter(|(_, libs)| libs.len() > 1)
            .collect();
        catalog
    }

    /// The names of every plugin found (for configuration isolation).
    pub fn names(&self) -> Vec<&str> {
        self.plugins.iter().map(|p| p.name.as_str()).collect()
    }

    /// Picks the plugins named in `wanted`. Returns them in the order given, plus one
    /// problem per name that is missing or ambiguous.
    pub fn select(&self, wanted: &[String], dirs: &[PathBuf]) -> (Vec<&PluginInfo>, Vec<String>) {
        let mut active = Vec::new();
        let mut problems = Vec::new();
        for name in wanted {
            if let Some(files) = self.duplicates.get(name) {
                problems.push(format!(
                    "plugin `{name}` is exported by more than one library: {}",
                    join_paths(files)
                ));
                continue;
            }
            match self.plugins.iter().find(|p| &p.name == name) {
                Some(p) => active.push(p),
                None => problems.push(format!(
                    "plugin `{name}` is listed in core.plugins but no library provides it (searched {})",
                    join_paths(dirs)
                )),
            }
        }
        (active, problems)
    }
}

fn join_paths(paths: &[PathBuf]) -> String {
    paths
        .iter()
        .map(|p| p.display().to_string())
        .collect::<Vec<_>>()
        .join(", ")
}

/// Checks and loads one library: its plugins, and a warning about it if there is one.
pub(crate) fn load_one(
    path: &Path,
    checks: &inspect::Checks,
) -> Result<(Vec<PluginInfo>, Option<Warning>), Refused> {
    let refused = |reason| Refused::new(path.to_path_buf(), reason);
    if !loaded::unchanged(path) {
        return Err(refused(super::Reason::ChangedSinceLoaded));
    }
    let runtime = inspect::inspect(path).map_err(refused)?;
    checks.check_pin(path).map_err(refused)?;
    let warning = checks.check_panic(runtime).map_err(refused)?;
    let lib = loader::load(path)?;
    loaded::remember(path);
    let plugins = lib
        .entries
        .into_iter()
        .map(|e| PluginInfo {
            name: e.name,
            kind: e.kind,
            phase: e.phase,
            version: e.version,
            description: e.description,
            library: path.to_path_buf(),
            api_version: lib.api_version.to_string(),
            definition: e.definition,
            fns: e.fns,
        })
        .collect();
    Ok((plugins, warning))
}

/// The libraries this process has loaded, by path, with what the file was then:
/// `dlopen` of a path already loaded returns the loaded code, so a file replaced
/// since would silently not be the code that runs.
mod loaded {
    use std::collections::HashMap;
    use std::os::unix::fs::MetadataExt;
    use std::path::{Path, PathBuf};
    use std::sync::Mutex;

    type Identity = (u64, u64, i64, i64, u64);

    static LOADED: Mutex<Option<HashMap<PathBuf, Identity>>> = Mutex::new(None);

    fn identity(path: &Path) -> Option<Identity> {
        let m = std::fs::metadata(path).ok()?;
        Some((m.dev(), m.ino(), m.mtime(), m.mtime_nsec(), m.size()))
    }

    fn key(path: &Path) -> PathBuf {
        std::fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf())
    }

    /// Whether `path` is not loaded, or is loaded and still the same file.
    pub fn unchanged(path: &Path) -> bool {
        let map = LOADED.lock().unwrap_or_else(|p| p.into_inner());
        match map.as_ref().and_then(|m| m.get(&key(path))) {
            None => true,
            Some(then) => identity(path).as_ref() == Some(then),
        }
    }

    /// Records `path` as loaded, as it is now.
    pub fn remember(path: &Path) {
        let Some(now) = identity(path) else { return };
        LOADED
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get_or_insert_with(HashMap::new)
            .entry(key(path))
            .or_insert(now);
    }
}
