//! The start-up sequence every command shares: configuration, logging, discovery,
//! selection of the active plugins, and each plugin's own configuration.

use std::path::Path;

use crate::error::{IoWhat, StartResult};

use crate::config::{Config, PluginConfig};
use crate::plugins::{hostlink, Catalog, PluginInfo};

/// How serious a start-up problem is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Severity {
    /// Stops the service (and fails `gordon check`).
    Error,
    /// Logged; the service goes on (`core.debug = true`).
    Warning,
}

/// One start-up problem, in one line.
#[derive(Debug, Clone)]
pub struct Problem {
    /// Error or warning.
    pub severity: Severity,
    /// What is wrong, naming the file, key or plugin.
    pub message: String,
}

/// Configuration and plugins, loaded and checked.
pub struct Session {
    /// The configuration.
    pub config: Config,
    /// Every library found.
    pub catalog: Catalog,
    /// The active plugins, in `core.plugins` order.
    pub active: Vec<PluginInfo>,
    /// Every problem met so far.
    pub problems: Vec<Problem>,
}

impl Session {
    /// Loads `{base}.toml` from `root`, sets up logging, and discovers plugins.
    ///
    /// # Errors
    /// A configuration error (naming the file and key), a bad `GORDON_LOG`, or a
    /// logging set-up error.
    pub fn open(root: &Path, base: &str, verbose: bool) -> StartResult<Session> {
        let config = Config::load(root, base)?;
        let env = std::env::var(crate::logging::ENV_VAR).ok();
        let (directives, source) =
            crate::logging::resolve(&config.core.logging, env.as_deref(), verbose)?;
        crate::logging::init(&config.core.logging, &directives, source)
            .what("cannot set up logging")?;
        hostlink::set_log_directives(&directives);
        Ok(Session::discover(config, verbose))
    }

    /// Discovers the plugins `config` names (loading libraries not loaded yet) —
    /// what [`Session::open`] does after setting up logging, and what a reload
    /// does with the new configuration.
    pub fn discover(config: Config, verbose: bool) -> Session {
        let dirs = config.plugin_dirs();
        let checks = crate::plugins::inspect::Checks {
            pins: config.core.plugin_pins.clone(),
            required: config.core.require_pins,
            // Validated with the rest of `[core]`.
            panic_abort: config.core.panic_abort.parse().unwrap_or_default(),
        };
        let catalog = Catalog::discover(&dirs, &checks);
        let soft = if config.core.debug {
            Severity::Warning
        } else {
            Severity::Error
        };
        let mut problems: Vec<Problem> = catalog
            .refused
            .iter()
            .map(|r| Problem {
                severity: soft,
                message: format!("refused {r}"),
            })
            .collect();
        problems.extend(catalog.warnings.iter().map(|w| Problem {
            severity: Severity::Warning,
            message: w.to_string(),
        }));
        if verbose {
            for r in catalog.refused.iter().filter(|r| r.detail.is_some()) {
                tracing::debug!(library = %r.library.display(), "Full report:\n{}", r.detail.as_deref().unwrap_or(""));
            }
        }
        let (active, missing) = catalog.select(&config.core.plugins, &dirs);
        let active: Vec<PluginInfo> = active.into_iter().cloned().collect();
        problems.extend(missing.into_iter().map(|message| Problem {
            severity: soft,
            message,
        }));
        problems.extend(unknown_log_targets(&active));
        Session {
            config,
            catalog,
            active,
            problems,
        }
    }

    /// The configuration plugin `info` receives: JSON object text (a
    /// [`PluginConfig`] derefs to `str`) that remembers the file and table each key
    /// came from, so that `instance::validate` can name them in an error.
    pub fn plugin_config_json(&self, info: &PluginInfo) -> PluginConfig {
        self.config
            .plugin_config_for(&info.name, &self.catalog.names())
    }

    /// Whether any problem is an error.
    pub fn has_errors(&self) -> bool {
        self.problems.iter().any(|p| p.severity == Severity::Error)
    }

    /// Logs every problem at its severity.
    pub fn log_problems(&self) {
        for p in &self.problems {
            match p.severity {
                Severity::Error => tracing::error!("{}", p.message),
                Severity::Warning => tracing::warn!("{}", p.message),
            }
        }
    }
}

/// A warning for each plugin name (or `pkg.*`) the log directives in force name
/// that no active plugin has: most likely a typo, which would otherwise show
/// nothing more of the plugin it meant.
fn unknown_log_targets(active: &[PluginInfo]) -> Vec<Problem> {
    let Some((directives, source)) = crate::logging::active() else {
        return Vec::new();
    };
    directives
        .plugin_targets()
        .filter(|t| !active.iter().any(|p| t.matches(&p.name)))
        .map(|t| Problem {
            severity: Severity::Warning,
            message: format!(
                "`{}` names `{t}`, which is no active plugin (see core.plugins)",
                source.name()
            ),
        })
        .collect()
}
