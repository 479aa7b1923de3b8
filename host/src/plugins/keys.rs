//! A plugin's configuration keys, as its library describes them (plugin-api 1.3,
//! `Plugin::config_keys`): named to the operator when the plugin refuses its
//! configuration, and compared with the keys the operator wrote, so that a typo a
//! plugin would silently ignore is reported.

use gordon_plugin_api::ConfigKey;

use crate::config::PluginConfig;
use crate::plugins::PluginInfo;

/// A refusal of the plugin's configuration, as [`PluginInfo::problem`] words it,
/// followed by the plugin's keys when it describes them.
pub fn refusal(info: &PluginInfo, error: &dyn std::fmt::Display) -> String {
    format!("{}{}", info.problem(error), hint(info))
}

/// `"; its keys: a, b, c (…)"`, for a plugin that describes its keys; empty for
/// one that does not.
fn hint(info: &PluginInfo) -> String {
    let keys = top_level(&info.definition.config);
    if keys.is_empty() {
        return String::new();
    }
    format!(
        "; its keys: {} (`gordon plugins info {}` describes them)",
        keys.join(", "),
        info.name
    )
}

/// A warning for each key in the plugin's own table that it does not describe.
/// Keys of the package table (`["dns"]`) are shared by the package's plugins and
/// not checked; a plugin that describes no keys is not checked at all.
pub fn unknown(info: &PluginInfo, config: &PluginConfig) -> Vec<String> {
    let known = top_level(&info.definition.config);
    if known.is_empty() {
        return Vec::new();
    }
    config
        .own_keys()
        .filter(|(key, _)| !known.contains(key))
        .map(|(key, origin)| {
            let guess = suggestion(key, &known)
                .map(|s| format!(" (did you mean `{s}`?)"))
                .unwrap_or_default();
            format!(
                "{origin} {key}: `{}` has no key `{key}`{guess}; its keys: {}",
                info.name,
                known.join(", ")
            )
        })
        .collect()
}

/// The names of the top-level keys (not those of nested tables).
fn top_level(keys: &[ConfigKey]) -> Vec<&str> {
    keys.iter()
        .map(|k| k.name.as_str())
        .filter(|n| !n.contains('.'))
        .collect()
}

/// The known key nearest to `key`, when it is close enough to be a typo.
fn suggestion<'a>(key: &str, known: &[&'a str]) -> Option<&'a str> {
    known
        .iter()
        .map(|k| (strsim::levenshtein(key, k), *k))
        .filter(|(d, _)| *d <= 2)
        .min()
        .map(|(_, k)| k)
}
