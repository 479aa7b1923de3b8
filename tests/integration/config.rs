use crate::util::{fixture, sample, text, Env};

fn probe_env() -> Env {
    let env = Env::new();
    env.install(&fixture("alpha"), "libalpha.so");
    env.install(&fixture("beta"), "libbeta.so");
    env
}

#[test]
fn plugin_receives_only_its_package_and_own_tables_merged() {
    let env = probe_env();
    env.install(&sample("http"), "libgordon_plugin_http.so");
    let dump = env.path().join("probe.json");
    env.config(&format!(
        r#"
[core]
plugins = ["http.events", "alpha.probe"]
[core.route]
consume = "probe"

["alpha"]
shared = "from package"
level = 1

["alpha.probe"]
dump_path = "{}"
level = 2

["alpha.enrich"]
suffix = ".enrich-secret"

["beta"]
token = "beta-secret"
"#,
        dump.display()
    ));
    env.user_config("[\"alpha.probe\"]\nlevel = 3\nfrom_user = true\n");
    let out = env.gordon(&["check"]);
    assert!(
        out.status.success(),
        "{}{}",
        text(&out.stdout),
        text(&out.stderr)
    );
    let seen: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&dump).unwrap()).unwrap();
    assert_eq!(seen["shared"], "from package");
    assert_eq!(
        seen["level"], 3,
        "user file must win over both tables: {seen}"
    );
    assert_eq!(seen["from_user"], true);
    let raw = seen.to_string();
    for secret in ["enrich-secret", "beta-secret", "core", "plugins"] {
        assert!(!raw.contains(secret), "probe saw `{secret}`: {raw}");
    }
}

#[test]
fn validation_errors_of_every_plugin_are_reported() {
    let env = probe_env();
    env.config(
        r#"
[core]
plugins = ["alpha.source", "alpha.probe", "alpha.enrich", "beta.publish"]
["alpha.probe"]
fail = "probe rejects this setup"
["alpha.enrich"]
suffix = ""
["beta.publish"]
unknown_key = 1
"#,
    );
    let out = env.gordon(&["check"]);
    assert_eq!(out.status.code(), Some(1));
    let stdout = text(&out.stdout);
    assert!(
        stdout.contains("`alpha.probe`") && stdout.contains("probe rejects this setup"),
        "{stdout}"
    );
    assert!(
        stdout.contains("`alpha.enrich`") && stdout.contains("`suffix` must not be empty"),
        "{stdout}"
    );
    assert!(
        stdout.contains("`beta.publish`") && stdout.contains("unknown_key"),
        "{stdout}"
    );
    assert!(stdout.contains("3 error(s)"), "{stdout}");
}

#[test]
fn unknown_core_key_is_rejected_with_file_and_key() {
    let env = probe_env();
    env.config("[core]\nplugins = []\n");
    env.user_config("[core]\nplugin = [\"typo\"]\n");
    let out = env.gordon(&["check"]);
    assert_eq!(out.status.code(), Some(2));
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("gordon-user.toml") && stderr.contains("`core.plugin`"),
        "{stderr}"
    );
}

#[test]
fn wrong_type_in_core_names_the_key() {
    let env = probe_env();
    env.config("[core]\nplugins = []\nshutdown_timeout = \"soon\"\n");
    let out = env.gordon(&["check"]);
    assert_eq!(out.status.code(), Some(2));
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("gordon.toml") && stderr.contains("`core.shutdown_timeout`"),
        "{stderr}"
    );
}

#[test]
fn missing_config_file_is_named() {
    let env = probe_env();
    let out = env.gordon(&["check"]);
    assert_eq!(out.status.code(), Some(2));
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("gordon.toml") && stderr.contains("not found"),
        "{stderr}"
    );
}

#[test]
fn unlisted_plugins_are_not_validated() {
    let env = probe_env();
    // alpha.probe would fail validation, but it is not listed.
    env.config(
        "[core]\nplugins = [\"alpha.source\", \"beta.publish\"]\n[core.route]\nconsume = \"publish\"\n[\"alpha.probe\"]\nfail = \"should not run\"\n",
    );
    let out = env.gordon(&["check"]);
    let stdout = text(&out.stdout);
    assert!(out.status.success(), "{stdout}");
    assert!(!stdout.contains("should not run"), "{stdout}");
}

#[test]
fn json_and_syslog_log_handlers_write_where_configured() {
    let env = probe_env();
    let syslog = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    syslog
        .set_read_timeout(Some(std::time::Duration::from_secs(5)))
        .unwrap();
    env.config(&format!(
        "[core]\nplugins = [\"alpha.source\", \"alpha.probe\"]\n[core.route]\nconsume = \"probe\"\n[core.logging]\nlevel = \"warning\"\nhandlers = [\"json\", \"syslog\"]\naddress = [\"127.0.0.1\", \"{}\"]\n[\"alpha.probe\"]\nlog = \"probe says hello\"\n",
        syslog.local_addr().unwrap().port()
    ));
    let out = env.gordon(&["check"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let stderr = text(&out.stderr);
    let line = stderr
        .lines()
        .find(|l| l.contains("probe says hello"))
        .expect(&stderr);
    let doc: serde_json::Value = serde_json::from_str(line).unwrap();
    assert_eq!(doc["level"], "WARN", "{doc}");
    assert_eq!(doc["fields"]["plugin"], "alpha.probe", "{doc}");
    let mut buf = [0u8; 4096];
    let n = syslog.recv(&mut buf).unwrap();
    let datagram = String::from_utf8_lossy(&buf[..n]);
    assert!(datagram.starts_with("<12>gordon["), "{datagram}");
    assert!(datagram.contains("probe says hello"), "{datagram}");
}
