//! The configuration of `dns.rfc2136`, checked and resolved (key read and decoded).

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;

use gordon_plugin_api::{ownership, PluginError};
use serde::Deserialize;

use crate::tsig::{parse_key_file, Algorithm, Key};
use crate::wire::Name;

/// What to check after an update succeeded.
#[derive(Clone, Copy, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum Verify {
    /// Trust the server's NOERROR (default).
    #[default]
    None,
    /// Query every changed record set back (signed, UDP or TCP).
    Query,
    /// Transfer the whole zone (AXFR) once per UPDATE and compare.
    Axfr,
}

/// How messages travel.
#[derive(Clone, Copy, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum Transport {
    /// UDP for messages up to 512 bytes, TCP for larger ones and truncated answers
    /// (default).
    #[default]
    Auto,
    /// TCP only.
    Tcp,
}

/// The configuration of `dns.rfc2136`: the `["dns"]` table merged with
/// `["dns.rfc2136"]`. See the crate documentation for every key.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Rfc2136Config {
    /// Shared: the zone, an absolute name ending in `.` (required).
    pub zone: String,
    /// Shared: the TTL of records whose TTL is 0 (unset); 60..=86400, default 300.
    #[serde(default = "default_ttl")]
    pub default_ttl: u32,
    /// The primary server, `IP:port` (`[v6]:port`); the port defaults to 53.
    pub server: String,
    /// A BIND key file (`tsig-keygen` output). Exactly one of this and
    /// `tsig_secret_env`.
    #[serde(default)]
    pub tsig_key_file: Option<PathBuf>,
    /// The name of an environment variable holding the base64 secret.
    #[serde(default)]
    pub tsig_secret_env: Option<String>,
    /// The key name: required with `tsig_secret_env`; with a key file, selects the
    /// key (required when the file has several).
    #[serde(default)]
    pub tsig_key_name: Option<String>,
    /// `hmac-sha256` (default), `hmac-sha384` or `hmac-sha512`; with a key file it
    /// must match the file's.
    #[serde(default)]
    pub tsig_algorithm: Option<String>,
    /// How long to wait for an answer, per attempt; default 5000.
    #[serde(default = "default_timeout_ms")]
    pub timeout_ms: u64,
    /// Retries of transient failures (timeout, SERVFAIL, refused connection);
    /// default 3.
    #[serde(default = "default_retries")]
    pub retries: u32,
    /// The first retry's pause; it doubles each retry; default 200.
    #[serde(default = "default_retry_backoff_ms")]
    pub retry_backoff_ms: u64,
    /// The most record-set changes in one UPDATE; default 500.
    #[serde(default = "default_max_batch")]
    pub max_batch: usize,
    /// `none` (default), `query` or `axfr`.
    #[serde(default)]
    pub verify: Verify,
    /// This instance's owner id (default `gordon`): every record set published is
    /// marked with an owner record holding it, and only record sets so marked are
    /// changed or deleted.
    #[serde(default = "default_owner_id")]
    pub owner_id: String,
    /// Take over record sets that exist without any owner record (made by hand or
    /// by a deployment from before ownership): change them and write our owner
    /// record. Meant for migrating; default `false`.
    #[serde(default)]
    pub adopt: bool,
    /// Take over record sets marked by this other owner id (a renamed instance):
    /// their owner record is rewritten to ours.
    #[serde(default)]
    pub adopt_from_owner: Option<String>,
    /// DANGER: change and delete record sets whatever owns them — records made by
    /// hand, by other tools or by other owners. Owner records are still written.
    /// Default `false`; a warning is logged whenever it is on.
    #[serde(default)]
    pub manage_unowned: bool,
    /// `auto` (default) or `tcp`.
    #[serde(default)]
    pub transport: Transport,
}

fn default_ttl() -> u32 {
    300
}
fn default_timeout_ms() -> u64 {
    5000
}
fn default_retries() -> u32 {
    3
}
fn default_retry_backoff_ms() -> u64 {
    200
}
fn default_max_batch() -> usize {
    500
}
fn default_owner_id() -> String {
    ownership::DEFAULT_OWNER_ID.into()
}

/// How ownership records are honoured.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Ownership {
    /// Our owner id.
    pub(crate) owner_id: String,
    /// Take over record sets without an owner record.
    pub(crate) adopt: bool,
    /// Take over record sets of this other owner id.
    pub(crate) adopt_from_owner: Option<String>,
    /// Change record sets whatever owns them.
    pub(crate) manage_unowned: bool,
}

/// The configuration, checked, with the key loaded.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Settings {
    pub(crate) zone: Name,
    pub(crate) default_ttl: u32,
    pub(crate) server: SocketAddr,
    pub(crate) key: Key,
    pub(crate) timeout: Duration,
    pub(crate) retries: u32,
    pub(crate) backoff: Duration,
    pub(crate) max_batch: usize,
    pub(crate) verify: Verify,
    pub(crate) ownership: Ownership,
    pub(crate) tcp_only: bool,
}

fn err(text: impl Into<String>) -> PluginError {
    PluginError::new(text)
}

/// Parses `server`: `IP:port`, `[IPv6]:port` or a bare IP (port 53).
pub(crate) fn server_addr(raw: &str) -> Result<SocketAddr, PluginError> {
    let raw = raw.trim();
    raw.parse::<SocketAddr>()
        .or_else(|_| {
            raw.trim_start_matches('[')
                .trim_end_matches(']')
                .parse::<IpAddr>()
                .map(|ip| (ip, 53).into())
        })
        .map_err(|_| {
            err(format!(
                "`server`: {raw:?} is not an address like 127.0.0.1:53 or [::1]:53"
            ))
        })
        .and_then(|a| {
            if a.port() == 0 {
                Err(err(format!("`server`: {raw:?} has port 0")))
            } else {
                Ok(a)
            }
        })
}

fn algorithm(raw: &str, key: &str) -> Result<Algorithm, PluginError> {
    Algorithm::parse(raw).ok_or_else(|| {
        err(format!(
            "TSIG key {key:?}: algorithm {raw:?} is not supported (use hmac-sha256, hmac-sha384 or hmac-sha512)"
        ))
    })
}

/// Loads the key from the file or the environment variable the configuration names.
fn load_key(cfg: &Rfc2136Config) -> Result<Key, PluginError> {
    match (&cfg.tsig_key_file, &cfg.tsig_secret_env) {
        (Some(_), Some(_)) => Err(err(
            "give either `tsig_key_file` or `tsig_secret_env`, not both",
        )),
        (None, None) => Err(err(
            "a TSIG key is required: set `tsig_key_file` or `tsig_secret_env`",
        )),
        (None, Some(var)) => {
            let name = cfg.tsig_key_name.as_deref().ok_or_else(|| {
                err(format!(
                    "`tsig_key_name` is required with `tsig_secret_env` ({var})"
                ))
            })?;
            let alg = algorithm(cfg.tsig_algorithm.as_deref().unwrap_or("hmac-sha256"), name)?;
            let secret = std::env::var(var).map_err(|_| {
                err(format!("`tsig_secret_env`: environment variable {var} (the secret of TSIG key {name:?}) is not set"))
            })?;
            Key::new(name, alg, &secret).map_err(|e| err(format!("`tsig_secret_env` {var}: {e}")))
        }
        (Some(path), None) => {
            let shown = path.display();
            let text = std::fs::read_to_string(path)
                .map_err(|e| err(format!("`tsig_key_file`: cannot read {shown}: {e}")))?;
            let defs =
                parse_key_file(&text).map_err(|e| err(format!("`tsig_key_file` {shown}: {e}")))?;
            let wanted = cfg
                .tsig_key_name
                .as_deref()
                .map(|n| n.trim_end_matches('.'));
            let def = match wanted {
                Some(n) => defs
                    .iter()
                    .find(|d| d.name.trim_end_matches('.').eq_ignore_ascii_case(n)),
                None if defs.len() == 1 => defs.first(),
                None => None,
            };
            let Some(def) = def else {
                let names: Vec<&str> = defs.iter().map(|d| d.name.as_str()).collect();
                return Err(err(match wanted {
                    Some(n) => format!("`tsig_key_file` {shown} has no key {n:?} (it has {names:?})"),
                    None if names.is_empty() => format!("`tsig_key_file` {shown} has no `key` statement"),
                    None => format!("`tsig_key_file` {shown} has several keys {names:?}: choose one with `tsig_key_name`"),
                }));
            };
            let name = &def.name;
            let in_file = def.algorithm.as_deref().ok_or_else(|| {
                err(format!(
                    "`tsig_key_file` {shown}: key {name:?} has no `algorithm`"
                ))
            })?;
            let alg = algorithm(in_file, name)?;
            if let Some(given) = &cfg.tsig_algorithm {
                if algorithm(given, name)? != alg {
                    return Err(err(format!(
                        "`tsig_algorithm` {given} does not match {} of key {name:?} in {shown}",
                        alg.name()
                    )));
                }
            }
            let secret = def.secret.as_deref().ok_or_else(|| {
                err(format!(
                    "`tsig_key_file` {shown}: key {name:?} has no `secret`"
                ))
            })?;
            Key::new(name, alg, secret).map_err(|e| err(format!("`tsig_key_file` {shown}: {e}")))
        }
    }
}

impl Settings {
    /// Checks the configuration and loads the key.
    pub(crate) fn resolve(cfg: &Rfc2136Config) -> Result<Settings, PluginError> {
        if !cfg.zone.ends_with('.') {
            return Err(err(format!(
                "`zone` must be an absolute name ending in '.', got {:?}",
                cfg.zone
            )));
        }
        let zone = Name::parse(&cfg.zone).map_err(|e| err(format!("`zone`: {e}")))?;
        if !(60..=86_400).contains(&cfg.default_ttl) {
            return Err(err(format!(
                "`default_ttl` must be within 60..=86400, got {}",
                cfg.default_ttl
            )));
        }
        let server = server_addr(&cfg.server)?;
        let key = load_key(cfg)?;
        if cfg.timeout_ms == 0 || cfg.timeout_ms > 600_000 {
            return Err(err(format!(
                "`timeout_ms` must be within 1..=600000, got {}",
                cfg.timeout_ms
            )));
        }
        if cfg.retries > 20 {
            return Err(err(format!(
                "`retries` must be at most 20, got {}",
                cfg.retries
            )));
        }
        if cfg.retry_backoff_ms > 60_000 {
            return Err(err(format!(
                "`retry_backoff_ms` must be at most 60000, got {}",
                cfg.retry_backoff_ms
            )));
        }
        if !(1..=10_000).contains(&cfg.max_batch) {
            return Err(err(format!(
                "`max_batch` must be within 1..=10000, got {}",
                cfg.max_batch
            )));
        }
        ownership::check_owner_ids(&cfg.owner_id, cfg.adopt_from_owner.as_deref()).map_err(err)?;
        Ok(Settings {
            zone,
            default_ttl: cfg.default_ttl,
            server,
            key,
            timeout: Duration::from_millis(cfg.timeout_ms),
            retries: cfg.retries,
            backoff: Duration::from_millis(cfg.retry_backoff_ms),
            max_batch: cfg.max_batch,
            verify: cfg.verify,
            ownership: Ownership {
                owner_id: cfg.owner_id.clone(),
                adopt: cfg.adopt,
                adopt_from_owner: cfg.adopt_from_owner.clone(),
                manage_unowned: cfg.manage_unowned,
            },
            tcp_only: cfg.transport == Transport::Tcp,
        })
    }
}

#[cfg(test)]
mod tests {
    use gordon_plugin_api::testing::validate;

    use super::*;
    use crate::Rfc2136;

    const SECRET: &str = "c2VjcmV0c2VjcmV0c2VjcmV0c2VjcmV0c2VjcmV0MTI=";

    fn key_file(text: &str) -> tempfile::NamedTempFile {
        let file = tempfile::NamedTempFile::new().unwrap();
        std::fs::write(file.path(), text).unwrap();
        file
    }

    fn check(extra: &str) -> Result<(), String> {
        let toml = format!("zone = \"example.com.\"\nserver = \"127.0.0.1:5353\"\n{extra}");
        validate::<Rfc2136>(&toml).map_err(|e| e.to_string())
    }

    fn stanza(name: &str, alg: &str) -> String {
        format!("key \"{name}\" {{ algorithm {alg}; secret \"{SECRET}\"; }};\n")
    }

    #[test]
    fn a_key_file_is_read_and_its_key_chosen() {
        let one = key_file(&stanza("gordon-key", "hmac-sha512"));
        let path = one.path().display();
        assert_eq!(check(&format!("tsig_key_file = \"{path}\"")), Ok(()));
        let both = format!("tsig_key_file = \"{path}\"\ntsig_algorithm = \"hmac-sha512\"");
        assert_eq!(check(&both), Ok(()));
        let err = check(&format!(
            "tsig_key_file = \"{path}\"\ntsig_algorithm = \"hmac-sha256\""
        ))
        .unwrap_err();
        assert!(
            err.contains("does not match hmac-sha512 of key \"gordon-key\""),
            "{err}"
        );
        let two = key_file(&(stanza("a", "hmac-sha256") + &stanza("b", "hmac-sha384")));
        let path = two.path().display();
        let err = check(&format!("tsig_key_file = \"{path}\"")).unwrap_err();
        assert!(err.contains("several keys [\"a\", \"b\"]"), "{err}");
        assert_eq!(
            check(&format!(
                "tsig_key_file = \"{path}\"\ntsig_key_name = \"b.\""
            )),
            Ok(())
        );
        let err = check(&format!(
            "tsig_key_file = \"{path}\"\ntsig_key_name = \"c\""
        ))
        .unwrap_err();
        assert!(err.contains("has no key \"c\""), "{err}");
    }

    #[test]
    fn key_errors_name_the_key_and_hide_the_secret() {
        let md5 = key_file(&stanza("old-key", "hmac-md5"));
        let err = check(&format!("tsig_key_file = \"{}\"", md5.path().display())).unwrap_err();
        assert!(
            err.contains("TSIG key \"old-key\": algorithm \"hmac-md5\" is not supported"),
            "{err}"
        );
        let broken = key_file(&format!(
            "key \"k\" {{ algorithm hmac-sha256; secret \"{SECRET}\" }};"
        ));
        let err = check(&format!("tsig_key_file = \"{}\"", broken.path().display())).unwrap_err();
        assert!(
            err.contains("line 1: expected `;` after `secret` in key \"k\""),
            "{err}"
        );
        let bad64 = key_file("key \"k\" { algorithm hmac-sha256; secret \"not*base64\"; };");
        let err = check(&format!("tsig_key_file = \"{}\"", bad64.path().display())).unwrap_err();
        assert!(
            err.contains("the secret of TSIG key k. is not valid base64"),
            "{err}"
        );
        assert!(!err.contains("not*base64"));
        let err = check("tsig_key_file = \"/nonexistent/k.key\"").unwrap_err();
        assert!(err.contains("cannot read /nonexistent/k.key"), "{err}");
        assert!(!err.contains(SECRET));
    }

    #[test]
    fn exactly_one_key_source_is_required() {
        let err = check("").unwrap_err();
        assert!(err.contains("a TSIG key is required"), "{err}");
        let err = check("tsig_key_file = \"k\"\ntsig_secret_env = \"V\"").unwrap_err();
        assert!(err.contains("not both"), "{err}");
        let err = check("tsig_secret_env = \"GORDON_RFC2136_TEST_UNSET\"").unwrap_err();
        assert!(err.contains("`tsig_key_name` is required"), "{err}");
        let unset = "tsig_secret_env = \"GORDON_RFC2136_TEST_UNSET\"\ntsig_key_name = \"k\"";
        let err = check(unset).unwrap_err();
        assert!(
            err.contains("GORDON_RFC2136_TEST_UNSET (the secret of TSIG key \"k\") is not set"),
            "{err}"
        );
        let err = check(&format!("{unset}\ntsig_algorithm = \"hmac-sha1\"")).unwrap_err();
        assert!(
            err.contains("algorithm \"hmac-sha1\" is not supported"),
            "{err}"
        );
    }

    #[test]
    fn the_rest_of_the_configuration_is_checked() {
        let file = key_file(&stanza("k", "hmac-sha256"));
        let key = format!("tsig_key_file = \"{}\"\n", file.path().display());
        let bad = |extra: &str| check(&format!("{key}{extra}")).unwrap_err();
        assert!(bad("zonee = \"x\"").contains("zonee"));
        assert!(bad("verify = \"maybe\"").contains("maybe"));
        assert!(bad("max_batch = 0").contains("`max_batch` must be within 1..=10000"));
        assert!(bad("owner_id = \"a,b\"").contains("`owner_id`"));
        assert!(bad("adopt_from_owner = \"a b\"").contains("`adopt_from_owner`"));
        assert!(bad("adopt_from_owner = \"gordon\"").contains("is `owner_id` itself"));
        assert!(bad("timeout_ms = 0").contains("`timeout_ms`"));
        let toml = format!("zone = \"example.com\"\nserver = \"127.0.0.1\"\n{key}");
        assert!(validate::<Rfc2136>(&toml)
            .unwrap_err()
            .to_string()
            .contains("absolute"));
        for (raw, ok) in [
            ("127.0.0.1", true),
            ("[::1]:53", true),
            ("::1", true),
            ("ns1:53", false),
            ("1.2.3.4:0", false),
        ] {
            assert_eq!(server_addr(raw).is_ok(), ok, "{raw}");
        }
        assert_eq!(server_addr("10.0.0.1").unwrap().port(), 53);
        let cfg = Rfc2136Config {
            zone: "example.com.".into(),
            default_ttl: 300,
            server: "127.0.0.1:53".into(),
            tsig_key_file: Some(file.path().into()),
            tsig_secret_env: None,
            tsig_key_name: None,
            tsig_algorithm: None,
            timeout_ms: 100,
            retries: 0,
            retry_backoff_ms: 0,
            max_batch: 1,
            verify: Verify::Axfr,
            owner_id: "g".into(),
            adopt: false,
            adopt_from_owner: Some("old".into()),
            manage_unowned: false,
            transport: Transport::Tcp,
        };
        let settings = Settings::resolve(&cfg).unwrap();
        assert!(settings.tcp_only);
        assert_eq!(settings.ownership.adopt_from_owner.as_deref(), Some("old"));
        assert!(
            !format!("{settings:?}").contains(SECRET),
            "Debug must not show the secret"
        );
    }
}
