//! `[core.logging] level` as RUST_LOG-style directives: a default level and
//! levels for module paths and plugins, e.g.
//! `warning,dns.rfc2136=debug,gordon::service=trace`.
//!
//! Each comma-separated item is `LEVEL` (the default, at most one; `info` when
//! none is given) or `TARGET=LEVEL`:
//!
//! - a TARGET with a `.` and no `::` names a plugin: exactly (`dns.rfc2136`), or
//!   every plugin of a package (`dns.*`);
//! - any other TARGET is a module path prefix, matched as `RUST_LOG` matches it
//!   (a plain prefix of the target: `gordon::service` also covers
//!   `gordon::service::lifecycle`), against the host's own targets and against the
//!   module path a plugin logged from (`gordon_plugin_rfc2136::client`).
//!
//! The most specific directive decides: for a plugin's line, a directive naming
//! the plugin (its exact name before its package's `pkg.*`), else the longest
//! module prefix matching the plugin's module path, else the default; for the
//! host's own lines, the longest module prefix, else the default.

use std::fmt;
use std::str::FromStr;

use tracing::level_filters::LevelFilter;
use tracing::{Level, Metadata};
use tracing_subscriber::filter::Targets;
use tracing_subscriber::layer::{Context, Filter};

use super::{parse_level, UnknownLevel};

/// The target every plugin line is re-emitted with (see `plugins/hostlink.rs`
/// and `isolation/telemetry.rs`); which plugin and module it came from are fields.
pub const PLUGIN_TARGET: &str = "gordon::plugin";

/// A bad item of `[core.logging] level` (or of `GORDON_LOG`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}{problem}", named(.item))]
pub struct DirectiveError {
    /// The item as written (trimmed).
    pub item: String,
    /// What is wrong with it.
    pub problem: DirectiveProblem,
}

/// `directive `ITEM`: ` before the problem, unless there is no item to name.
fn named(item: &str) -> String {
    if item.is_empty() {
        String::new()
    } else {
        format!("directive `{item}`: ")
    }
}

/// What is wrong with one directive.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DirectiveProblem {
    /// No directive at all.
    #[error(
        "no level given: expected a level (`info`) or directives (`warning,dns.rfc2136=debug`)"
    )]
    Nothing,
    /// Nothing between two commas (or before the first, or after the last).
    #[error("an empty directive (a doubled, leading or trailing comma?)")]
    Empty,
    /// The level is not one of the known names.
    #[error(transparent)]
    Level(#[from] UnknownLevel),
    /// A target with no `=LEVEL`.
    #[error("no level for this target; write `TARGET=LEVEL`, e.g. `{0}=debug`")]
    NoLevel(String),
    /// A second item without a target.
    #[error("a second default level (`{0}` came first); give at most one level without a target")]
    SecondDefault(String),
    /// The same target twice.
    #[error("this target is given a level twice")]
    Duplicate,
    /// `=LEVEL` with nothing before it.
    #[error("no target before `=`")]
    EmptyTarget,
    /// A target with spaces or characters of `EnvFilter`'s span and field syntax.
    #[error("a target is a module path (`gordon::service`) or a plugin name (`dns.rfc2136`, `dns.*`); span and field filters are not supported")]
    BadTarget,
    /// A plugin name with an empty part, or a `*` that is not a whole last part.
    #[error("not a plugin name: expected `package.name` or `package.*`")]
    BadPluginName,
    /// The fixed target of re-emitted plugin lines.
    #[error("`gordon::plugin` carries every plugin's lines: name the plugin (`dns.rfc2136=debug`) or its module path (`gordon_plugin_rfc2136=debug`) instead")]
    PluginTarget,
}

/// Which lines a directive is about.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Target {
    /// A module path prefix.
    Module(String),
    /// An exact plugin name.
    Plugin(String),
    /// Every plugin whose name starts with this (`dns.`, from `dns.*`).
    Package(String),
}

impl Target {
    fn parse(text: &str) -> Result<Target, DirectiveProblem> {
        if text.is_empty() {
            return Err(DirectiveProblem::EmptyTarget);
        }
        if text
            .chars()
            .any(|c| c.is_whitespace() || matches!(c, '[' | ']' | '{' | '}' | '=' | '"' | ','))
        {
            return Err(DirectiveProblem::BadTarget);
        }
        if text.contains("::") || !text.contains('.') {
            if text == PLUGIN_TARGET {
                return Err(DirectiveProblem::PluginTarget);
            }
            if text.contains('*') {
                return Err(DirectiveProblem::BadTarget);
            }
            return Ok(Target::Module(text.to_owned()));
        }
        let parts: Vec<&str> = text.split('.').collect();
        let (last, first) = parts.split_last().ok_or(DirectiveProblem::BadPluginName)?;
        if first.iter().any(|p| p.is_empty() || p.contains('*')) || last.is_empty() {
            return Err(DirectiveProblem::BadPluginName);
        }
        match *last {
            "*" => Ok(Target::Package(text[..text.len() - 1].to_owned())),
            l if l.contains('*') => Err(DirectiveProblem::BadPluginName),
            _ => Ok(Target::Plugin(text.to_owned())),
        }
    }
}

impl fmt::Display for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Target::Module(m) => f.write_str(m),
            Target::Plugin(p) => f.write_str(p),
            Target::Package(prefix) => write!(f, "{prefix}*"),
        }
    }
}

/// Parsed `[core.logging] level`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Directives {
    default: LevelFilter,
    /// In the order given; no target twice.
    targets: Vec<(Target, LevelFilter)>,
}

impl Default for Directives {
    /// `info`, no targets: the configuration's default.
    fn default() -> Self {
        Directives {
            default: LevelFilter::INFO,
            targets: Vec::new(),
        }
    }
}

impl FromStr for Directives {
    type Err = DirectiveError;

    fn from_str(text: &str) -> Result<Directives, DirectiveError> {
        let mut default: Option<(&str, LevelFilter)> = None;
        let mut targets: Vec<(Target, LevelFilter)> = Vec::new();
        if text.trim().is_empty() {
            return Err(DirectiveError {
                item: String::new(),
                problem: DirectiveProblem::Nothing,
            });
        }
        for item in text.split(',').map(str::trim) {
            let fail = |problem: DirectiveProblem| DirectiveError {
                item: item.to_owned(),
                problem,
            };
            if item.is_empty() {
                return Err(fail(DirectiveProblem::Empty));
            }
            match item.split_once('=') {
                None => {
                    let level = parse_level(item).map_err(|e| {
                        if item.contains("::") || item.contains('.') {
                            fail(DirectiveProblem::NoLevel(item.to_owned()))
                        } else {
                            fail(e.into())
                        }
                    })?;
                    if let Some((first, _)) = default {
                        return Err(fail(DirectiveProblem::SecondDefault(first.to_owned())));
                    }
                    default = Some((item, level));
                }
                Some((target, level)) => {
                    let target = Target::parse(target.trim()).map_err(fail)?;
                    let level = parse_level(level.trim()).map_err(|e| fail(e.into()))?;
                    if targets.iter().any(|(t, _)| *t == target) {
                        return Err(fail(DirectiveProblem::Duplicate));
                    }
                    targets.push((target, level));
                }
            }
        }
        Ok(Directives {
            default: default.map_or(LevelFilter::INFO, |(_, level)| level),
            targets,
        })
    }
}

impl fmt::Display for Directives {
    /// The canonical text, which parses back to the same directives (what an
    /// isolated plugin's process is given).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.default)?;
        for (target, level) in &self.targets {
            write!(f, ",{target}={level}")?;
        }
        Ok(())
    }
}

impl Directives {
    /// The level of lines no directive names.
    pub fn default_level(&self) -> LevelFilter {
        self.default
    }

    /// Raises the default to at least `level` (`--verbose`); directives keep
    /// their own levels.
    pub fn raise_default(&mut self, level: LevelFilter) {
        if self.default < level {
            self.default = level;
        }
    }

    /// Whether this is one level for everything, as before directives existed.
    pub fn is_plain(&self) -> bool {
        self.targets.is_empty()
    }

    /// The most verbose level any directive allows: what plugin libraries are told
    /// to forward (the host drops what the plugin's own directive does not allow).
    pub fn max_level(&self) -> LevelFilter {
        self.targets
            .iter()
            .map(|(_, level)| *level)
            .fold(self.default, LevelFilter::max)
    }

    /// The plugin names and packages the directives name (`dns.rfc2136`, `dns.*`).
    pub fn plugin_targets(&self) -> impl Iterator<Item = PluginTarget<'_>> {
        self.targets.iter().filter_map(|(t, _)| match t {
            Target::Plugin(name) => Some(PluginTarget::Name(name)),
            Target::Package(prefix) => Some(PluginTarget::Package(prefix)),
            Target::Module(_) => None,
        })
    }

    /// The default and the module directives, as tracing-subscriber's filter.
    fn module_targets(&self) -> Targets {
        Targets::new()
            .with_default(self.default)
            .with_targets(self.targets.iter().filter_map(|(t, level)| match t {
                Target::Module(m) => Some((m.clone(), *level)),
                Target::Plugin(_) | Target::Package(_) => None,
            }))
    }

    /// The filter of the host's subscriber.
    pub fn host_filter(&self) -> HostFilter {
        HostFilter {
            modules: self.module_targets(),
            plugins: self.max_level(),
        }
    }

    /// What decides, per plugin line, whether it is logged; `None` when there is
    /// one level for everything (the subscriber's filter is then enough).
    pub fn plugin_filter(&self) -> Option<PluginFilter> {
        if self.is_plain() {
            return None;
        }
        let mut names = Vec::new();
        let mut packages = Vec::new();
        for (target, level) in &self.targets {
            match target {
                Target::Plugin(name) => names.push((Box::from(name.as_str()), *level)),
                Target::Package(prefix) => packages.push((Box::from(prefix.as_str()), *level)),
                Target::Module(_) => {}
            }
        }
        // Longest first: the most specific package wins.
        packages
            .sort_by_key(|(prefix, _): &(Box<str>, LevelFilter)| std::cmp::Reverse(prefix.len()));
        Some(PluginFilter {
            names,
            packages,
            modules: self.module_targets(),
        })
    }
}

/// A plugin name or package a directive names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PluginTarget<'a> {
    /// `dns.rfc2136`.
    Name(&'a str),
    /// `dns.*`, as its prefix `dns.`.
    Package(&'a str),
}

impl PluginTarget<'_> {
    /// Whether the plugin `name` is one this target names.
    pub fn matches(&self, name: &str) -> bool {
        match self {
            PluginTarget::Name(n) => *n == name,
            PluginTarget::Package(prefix) => name.starts_with(prefix),
        }
    }
}

impl fmt::Display for PluginTarget<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PluginTarget::Name(n) => f.write_str(n),
            PluginTarget::Package(prefix) => write!(f, "{prefix}*"),
        }
    }
}

/// Decides each plugin line by the plugin's name and module path.
///
/// Written by hand rather than left to `Targets`: every plugin line reaches the
/// subscriber with the one target `gordon::plugin`, the plugin's name and module
/// being fields, which target filters do not see. Built once; a decision is a
/// scan of a few short lists, with no allocation.
#[derive(Debug, Clone)]
pub struct PluginFilter {
    /// Exact plugin names.
    names: Vec<(Box<str>, LevelFilter)>,
    /// Package prefixes (`dns.`), longest first.
    packages: Vec<(Box<str>, LevelFilter)>,
    /// The default and the module directives.
    modules: Targets,
}

impl PluginFilter {
    /// Whether a line at `level` that plugin `plugin` logged from module path
    /// `module` is logged.
    pub fn enabled(&self, plugin: &str, module: &str, level: Level) -> bool {
        match self.plugin_level(plugin) {
            Some(allowed) => level <= allowed,
            None => self.modules.would_enable(module, &level),
        }
    }

    fn plugin_level(&self, plugin: &str) -> Option<LevelFilter> {
        self.names
            .iter()
            .find(|(name, _)| **name == *plugin)
            .or_else(|| {
                self.packages
                    .iter()
                    .find(|(prefix, _)| plugin.starts_with(&**prefix))
            })
            .map(|(_, level)| *level)
    }
}

/// The host subscriber's filter: the module directives for the host's own
/// targets; every plugin line (target `gordon::plugin`, exactly: the host's
/// `gordon::plugins::…` modules are host targets) up to the most verbose level
/// any directive allows, as the plugin's own directive was applied before the
/// line was re-emitted.
#[derive(Debug, Clone)]
pub struct HostFilter {
    modules: Targets,
    plugins: LevelFilter,
}

impl HostFilter {
    fn allows(&self, meta: &Metadata<'_>) -> bool {
        self.allows_target(meta.target(), meta.level())
    }

    fn allows_target(&self, target: &str, level: &Level) -> bool {
        if target == PLUGIN_TARGET {
            *level <= self.plugins
        } else {
            self.modules.would_enable(target, level)
        }
    }
}

impl<S> Filter<S> for HostFilter {
    fn enabled(&self, meta: &Metadata<'_>, _cx: &Context<'_, S>) -> bool {
        self.allows(meta)
    }

    fn callsite_enabled(&self, meta: &'static Metadata<'static>) -> tracing::subscriber::Interest {
        // Targets and levels are static: decided once per call site.
        if self.allows(meta) {
            tracing::subscriber::Interest::always()
        } else {
            tracing::subscriber::Interest::never()
        }
    }

    fn max_level_hint(&self) -> Option<LevelFilter> {
        Some(self.plugins)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Directives {
        text.parse()
            .unwrap_or_else(|e| panic!("`{text}` refused: {e}"))
    }

    fn refused(text: &str) -> DirectiveError {
        match text.parse::<Directives>() {
            Ok(d) => panic!("`{text}` accepted as {d}"),
            Err(e) => e,
        }
    }

    #[test]
    fn a_level_alone_is_the_default_as_before() {
        for (text, level) in [
            ("info", LevelFilter::INFO),
            ("warning", LevelFilter::WARN),
            ("WARN", LevelFilter::WARN),
            ("critical", LevelFilter::ERROR),
            ("trace", LevelFilter::TRACE),
            ("off", LevelFilter::OFF),
        ] {
            let d = parse(text);
            assert!(d.is_plain(), "{text}");
            assert_eq!(d.default_level(), level, "{text}");
            assert_eq!(d.max_level(), level, "{text}");
            assert!(d.plugin_filter().is_none(), "{text}");
        }
    }

    #[test]
    fn targets_are_module_paths_or_plugin_names() {
        let d = parse(
            " warning , dns.rfc2136 = debug,gordon::service=trace,gordon_plugin_nats=trace,dns.*=error,tokio=off",
        );
        assert_eq!(d.default_level(), LevelFilter::WARN);
        assert_eq!(
            d.targets,
            [
                (Target::Plugin("dns.rfc2136".into()), LevelFilter::DEBUG),
                (Target::Module("gordon::service".into()), LevelFilter::TRACE),
                (
                    Target::Module("gordon_plugin_nats".into()),
                    LevelFilter::TRACE
                ),
                (Target::Package("dns.".into()), LevelFilter::ERROR),
                (Target::Module("tokio".into()), LevelFilter::OFF),
            ]
        );
        assert_eq!(d.max_level(), LevelFilter::TRACE);
        let names: Vec<String> = d.plugin_targets().map(|t| t.to_string()).collect();
        assert_eq!(names, ["dns.rfc2136", "dns.*"]);
        // Without a level of its own, the default stays `info`.
        assert_eq!(
            parse("dns.zonefile=debug").default_level(),
            LevelFilter::INFO
        );
    }

    #[test]
    fn the_canonical_text_parses_back_the_same() {
        let d = parse("dns.rfc2136=warning,critical,gordon=trace,acme.*=DEBUG");
        assert_eq!(
            d.to_string(),
            "error,dns.rfc2136=warn,gordon=trace,acme.*=debug"
        );
        assert_eq!(parse(&d.to_string()), d);
        assert_eq!(parse("info").to_string(), "info");
    }

    #[test]
    fn bad_items_are_refused_naming_the_item() {
        let cases: &[(&str, &str, DirectiveProblem)] = &[
            ("info,", "", DirectiveProblem::Empty),
            (" ", "", DirectiveProblem::Nothing),
            ("info,,dns.x=debug", "", DirectiveProblem::Empty),
            (
                "loud",
                "loud",
                DirectiveProblem::Level(UnknownLevel("loud".into())),
            ),
            (
                "dns.rfc2136=loud",
                "dns.rfc2136=loud",
                DirectiveProblem::Level(UnknownLevel("loud".into())),
            ),
            (
                "dns.rfc2136",
                "dns.rfc2136",
                DirectiveProblem::NoLevel("dns.rfc2136".into()),
            ),
            (
                "gordon::service",
                "gordon::service",
                DirectiveProblem::NoLevel("gordon::service".into()),
            ),
            (
                "info,debug",
                "debug",
                DirectiveProblem::SecondDefault("info".into()),
            ),
            ("a=info,a=debug", "a=debug", DirectiveProblem::Duplicate),
            (
                "dns.*=info,dns.*=debug",
                "dns.*=debug",
                DirectiveProblem::Duplicate,
            ),
            ("=debug", "=debug", DirectiveProblem::EmptyTarget),
            (
                "gordon[span]=debug",
                "gordon[span]=debug",
                DirectiveProblem::BadTarget,
            ),
            ("my app=debug", "my app=debug", DirectiveProblem::BadTarget),
            (
                "a=b=debug",
                "a=b=debug",
                DirectiveProblem::Level(UnknownLevel("b=debug".into())),
            ),
            (
                "gordon::*=debug",
                "gordon::*=debug",
                DirectiveProblem::BadTarget,
            ),
            ("dns.=debug", "dns.=debug", DirectiveProblem::BadPluginName),
            (".x=debug", ".x=debug", DirectiveProblem::BadPluginName),
            (
                "dns..x=debug",
                "dns..x=debug",
                DirectiveProblem::BadPluginName,
            ),
            (
                "dns.x*=debug",
                "dns.x*=debug",
                DirectiveProblem::BadPluginName,
            ),
            ("*.x=debug", "*.x=debug", DirectiveProblem::BadPluginName),
            (
                "gordon::plugin=warn",
                "gordon::plugin=warn",
                DirectiveProblem::PluginTarget,
            ),
        ];
        for (text, item, problem) in cases {
            let e = refused(text);
            assert_eq!(e.item, *item, "{text}");
            assert_eq!(e.problem, *problem, "{text}");
            if !item.is_empty() {
                assert!(
                    e.to_string().starts_with(&format!("directive `{item}`: ")),
                    "{e}"
                );
            }
        }
        let e = refused("warning,dns.rfc2136=loud");
        assert_eq!(
            e.to_string(),
            "directive `dns.rfc2136=loud`: unknown level `loud`, expected one of trace, debug, info, warning, error, critical"
        );
    }

    #[test]
    fn verbose_raises_only_the_default() {
        let mut d = parse("warning,gordon::janitor=error,dns.zonefile=trace");
        d.raise_default(LevelFilter::DEBUG);
        assert_eq!(d.default_level(), LevelFilter::DEBUG);
        assert_eq!(
            d.to_string(),
            "debug,gordon::janitor=error,dns.zonefile=trace"
        );
        let mut quiet = parse("trace");
        quiet.raise_default(LevelFilter::DEBUG);
        assert_eq!(quiet.default_level(), LevelFilter::TRACE);
    }

    #[test]
    fn a_plugin_line_is_decided_by_name_then_module_then_default() {
        let d = parse(
            "warning,dns.rfc2136=debug,dns.*=error,gordon_plugin_nats=trace,gordon_plugin_nats::acks=info,gordon_plugin_dns=off",
        );
        let f = d.plugin_filter().unwrap();
        let on = |plugin: &str, module: &str, level: Level| f.enabled(plugin, module, level);
        // The plugin's own name, whatever the module.
        assert!(on(
            "dns.rfc2136",
            "gordon_plugin_rfc2136::client",
            Level::DEBUG
        ));
        assert!(!on(
            "dns.rfc2136",
            "gordon_plugin_rfc2136::client",
            Level::TRACE
        ));
        // The exact name before its package; the package before module directives.
        assert!(!on(
            "dns.zonefile",
            "gordon_plugin_dns::zonefile",
            Level::WARN
        ));
        assert!(on(
            "dns.zonefile",
            "gordon_plugin_dns::zonefile",
            Level::ERROR
        ));
        // Not named: the longest module prefix.
        assert!(on(
            "nats.consumer",
            "gordon_plugin_nats::consumer",
            Level::TRACE
        ));
        assert!(on("nats.consumer", "gordon_plugin_nats::acks", Level::INFO));
        assert!(!on(
            "nats.consumer",
            "gordon_plugin_nats::acks",
            Level::DEBUG
        ));
        // Nothing matches: the default.
        assert!(on("http.events", "gordon_plugin_http::server", Level::WARN));
        assert!(!on(
            "http.events",
            "gordon_plugin_http::server",
            Level::INFO
        ));
        // A package is a whole first part: `dns.*` is not `dnsx.*`.
        assert!(!on("dnsx.a", "x", Level::INFO));
        assert!(on("dnsx.a", "x", Level::WARN));
    }

    #[test]
    fn the_longest_package_wins() {
        let d = parse("acme.*=warn,acme.dns.*=trace,acme.dns.x=error");
        let f = d.plugin_filter().unwrap();
        assert!(f.enabled("acme.dns.y", "m", Level::TRACE));
        assert!(!f.enabled("acme.other", "m", Level::INFO));
        assert!(!f.enabled("acme.dns.x", "m", Level::WARN));
        let t = PluginTarget::Package("acme.");
        assert!(t.matches("acme.dns") && !t.matches("acmex.dns"));
    }

    #[test]
    fn host_lines_follow_module_prefixes_and_plugin_lines_pass_to_the_plugin_filter() {
        let d = parse("warning,gordon::service=trace,gordon::plugins=error,dns.rfc2136=debug");
        let f = d.host_filter();
        let on = |target: &str, level: Level| f.allows_target(target, &level);
        assert!(on("gordon::service::lifecycle", Level::TRACE));
        assert!(on("gordon::router", Level::WARN));
        assert!(!on("gordon::router", Level::INFO));
        // `gordon::plugins::…` are host modules, apart from the plugin lines.
        assert!(!on("gordon::plugins::registry", Level::WARN));
        // Plugin lines up to the most verbose directive; the plugin filter decides.
        assert!(on(PLUGIN_TARGET, Level::TRACE));
        assert_eq!(
            <HostFilter as Filter<tracing_subscriber::Registry>>::max_level_hint(&f),
            Some(LevelFilter::TRACE)
        );
    }
}
