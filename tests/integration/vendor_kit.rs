//! A vendor's path, as the README gives it: the SDK packaged by `cargo package`,
//! `gordon plugins new` around it in a directory outside this workspace, the new
//! crate's own tests, its build, `gordon plugins add`, and the host running it.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;
use std::time::Duration;

use crate::util::{
    api_version, cargo, root, run_cargo, sample, settled_zone, signal, target_dir, text, wait_exit,
    wait_for_file, Env,
};

/// The packaged SDK and its `.sha256`, made once per test process the way the
/// Debian package's build makes them.
fn packaged_sdk() -> PathBuf {
    static MADE: OnceLock<PathBuf> = OnceLock::new();
    MADE.get_or_init(|| {
        let dir = target_dir().join("vendor-kit/sdk");
        let mut cmd = cargo();
        cmd.current_dir(root())
            .args(["package", "--quiet", "--no-verify", "--allow-dirty"])
            .args(["-p", "gordon-plugin-api", "--target-dir"])
            .arg(&dir);
        run_cargo(cmd, "the packaged SDK");
        let file = format!("gordon-plugin-api-{}.crate", api_version());
        let krate = dir.join("package").join(&file);
        let sum = Command::new("sha256sum")
            .arg(&file)
            .current_dir(krate.parent().unwrap())
            .output()
            .unwrap();
        assert!(sum.status.success());
        std::fs::write(krate.with_extension("crate.sha256"), &sum.stdout).unwrap();
        krate
    })
    .clone()
}

/// `gordon plugins new NAME --dir DIR --sdk SDK`.
fn new_crate(name: &str, dir: &Path, sdk: &Path) -> std::process::Output {
    let env = Env::new();
    env.gordon(&[
        "plugins",
        "new",
        name,
        "--dir",
        dir.to_str().unwrap(),
        "--sdk",
        sdk.to_str().unwrap(),
    ])
}

/// Runs cargo `args` in the generated crate; its builds are cached under the
/// target directory, the crate itself stays where it was generated.
fn cargo_in(krate: &Path, toolchain: Option<&str>, args: &[&str], what: &str) -> PathBuf {
    let target = target_dir().join(format!(
        "vendor-kit/target-{}",
        toolchain.unwrap_or("default")
    ));
    let mut cmd = match toolchain {
        Some(t) => {
            let mut c = Command::new("rustup");
            c.args(["run", t, "cargo"]);
            c.env("CARGO_PROFILE_DEV_DEBUG", "line-tables-only")
                .env_remove("RUSTC")
                .env_remove("RUSTUP_TOOLCHAIN");
            c
        }
        None => cargo(),
    };
    cmd.current_dir(krate)
        .args(args)
        .arg("--target-dir")
        .arg(&target)
        // A vendor's own build resolves the SDK's dependencies afresh; here they
        // are pinned to the versions this workspace tests with.
        .env_remove("CARGO_TARGET_DIR");
    run_cargo(cmd, what);
    target
}

/// Generates `acme.ttl` in a fresh directory outside the workspace, with this
/// workspace's lock file (see [`cargo_in`]).
fn generated(dir: &Path) -> PathBuf {
    let krate = dir.join("acme-ttl");
    let out = new_crate("acme.ttl", &krate, &packaged_sdk());
    assert!(out.status.success(), "{}", text(&out.stderr));
    let said = text(&out.stdout);
    assert!(
        said.contains("gordon-plugin-api") && said.contains("sha256"),
        "{said}"
    );
    std::fs::copy(root().join("Cargo.lock"), krate.join("Cargo.lock")).unwrap();
    krate
}

#[test]
fn a_generated_plugin_builds_outside_the_workspace_passes_its_tests_and_runs_in_the_host() {
    let outside = tempfile::tempdir().unwrap();
    let krate = generated(outside.path());
    let manifest = std::fs::read_to_string(krate.join("Cargo.toml")).unwrap();
    assert!(
        !manifest.contains(&root().display().to_string()),
        "{manifest}"
    );
    assert!(
        krate
            .join(format!(
                "vendor/gordon-plugin-api-{}/src/lib.rs",
                api_version()
            ))
            .is_file(),
        "the SDK is unpacked into vendor/"
    );

    cargo_in(
        &krate,
        None,
        &["test", "--quiet"],
        "the generated crate's tests",
    );
    let target = cargo_in(&krate, None, &["build", "--quiet"], "the generated crate");
    let lib = target.join("debug/libacme_ttl.so");

    let env = Env::new();
    env.install(&sample("http"), "libgordon_plugin_http.so");
    env.install(&sample("dns"), "libgordon_plugin_dns.so");
    env.config("[core]\nplugins = []\n");
    let added = env.gordon(&["plugins", "add", lib.to_str().unwrap()]);
    assert!(added.status.success(), "{}", text(&added.stderr));
    assert!(
        text(&added.stdout).contains("\"libacme_ttl.so\" = \"sha256:"),
        "{}",
        text(&added.stdout)
    );

    let info = env.gordon(&["plugins", "info", "acme.ttl", "--json"]);
    assert!(info.status.success(), "{}", text(&info.stderr));
    let doc: serde_json::Value = serde_json::from_slice(&info.stdout).unwrap();
    assert_eq!(doc["phase"], "enrich", "{doc}");
    let ttl = doc["config"]
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["name"] == "ttl")
        .unwrap_or_else(|| panic!("no ttl key: {doc}"));
    assert_eq!(ttl["default"], "300", "{doc}");
    assert_eq!(ttl["type"], "integer", "{doc}");

    let config = |acme: &str| {
        format!(
            r#"[core]
plugins = ["http.events", "acme.ttl", "dns.zonefile"]
["http.events"]
listen = "127.0.0.1:0"
port_file = "{port}"
["dns"]
zone = "example.com."
["dns.zonefile"]
path = "{zone}"
["acme.ttl"]
{acme}
"#,
            port = env.file("port"),
            zone = env.file("zones/example.com.zone"),
        )
    };
    // A typo: the plugin refuses it, and the host names the keys it has.
    env.config(&config("tll = 4200"));
    let check = env.gordon(&["check"]);
    assert!(!check.status.success());
    let said = text(&check.stdout);
    assert!(
        said.contains("unknown field `tll`") && said.contains("its keys: ttl, types"),
        "{said}"
    );
    // Said once, by the refusal: no warning repeats it.
    assert!(!said.contains("has no key `tll`"), "{said}");

    env.config(&config("ttl = 4200"));
    let check = env.gordon(&["check"]);
    assert!(check.status.success(), "{}", text(&check.stdout));
    let mut child = env.spawn(&[]);
    let port: u16 = wait_for_file(&env.path().join("port"), Duration::from_secs(30))
        .trim()
        .parse()
        .unwrap();
    let ids = crate::e2e::post(
        port,
        r#"{"action":"additions","resourceRecords":{"name":"www.example.com.","type":"A","rrdatas":["192.0.2.7"]}}"#,
    );
    let event = crate::e2e::wait_status(port, &ids[0]);
    assert_eq!(event["status"], "published", "{event}");
    assert!(
        event["history"].to_string().contains("Set the TTL to 4200"),
        "{event}"
    );
    let zone = settled_zone(&env.path().join("zones/example.com.zone"));
    assert!(zone.contains("www 4200 IN A 192.0.2.7"), "{zone}");
    signal(&child, libc::SIGTERM);
    let status = wait_exit(&mut child, Duration::from_secs(30));
    assert!(status.success(), "{}", env.log());

    // A lenient plugin (no `deny_unknown_fields`) would ignore the typo: the host
    // warns, naming the key it likely meant, and the check still passes.
    let source = krate.join("src/lib.rs");
    let code = std::fs::read_to_string(&source).unwrap();
    let lenient = code.replacen("#[serde(deny_unknown_fields)]\n", "", 1);
    assert_ne!(lenient, code);
    std::fs::write(&source, lenient).unwrap();
    cargo_in(&krate, None, &["build", "--quiet"], "the lenient crate");
    std::fs::remove_file(env.plugins_d().join("libacme_ttl.so")).unwrap();
    env.install(&lib, "libacme_ttl.so");
    env.config(&config("tll = 4200"));
    let check = env.gordon(&["check"]);
    let said = text(&check.stdout);
    assert!(check.status.success(), "{said}");
    assert!(
        said.contains("warning:") && said.contains("has no key `tll` (did you mean `ttl`?)"),
        "{said}"
    );
}

#[test]
fn an_sdk_that_does_not_match_its_checksum_is_refused_and_nothing_is_created() {
    let dir = tempfile::tempdir().unwrap();
    let sdk = dir.path().join(packaged_sdk().file_name().unwrap());
    std::fs::copy(packaged_sdk(), &sdk).unwrap();
    std::fs::write(
        sdk.with_extension("crate.sha256"),
        format!(
            "{}  {}\n",
            "0".repeat(64),
            sdk.file_name().unwrap().to_string_lossy()
        ),
    )
    .unwrap();
    let krate = dir.path().join("acme-ttl");
    let out = new_crate("acme.ttl", &krate, &sdk);
    assert!(!out.status.success());
    let err = text(&out.stderr);
    assert!(
        err.contains("sha256") && err.contains(".crate.sha256"),
        "{err}"
    );
    assert!(!krate.exists(), "nothing may be written for a refused SDK");
}

/// `rustup toolchain list`, without the default one.
fn other_toolchains() -> Vec<String> {
    let Ok(out) = Command::new("rustup").args(["toolchain", "list"]).output() else {
        return Vec::new();
    };
    text(&out.stdout)
        .lines()
        .filter(|l| !l.contains("(default)") && !l.trim().is_empty())
        .map(|l| l.split_whitespace().next().unwrap_or_default().to_owned())
        .collect()
}

#[test]
fn a_plugin_built_with_another_rustc_loads_in_this_host() {
    let Some(toolchain) = other_toolchains().into_iter().next() else {
        // CI machines have one toolchain and cannot fetch another: say so.
        eprintln!("note: no second Rust toolchain installed (rustup toolchain list); not tested");
        return;
    };
    let rustc = Command::new("rustup")
        .args(["run", &toolchain, "rustc", "-V"])
        .output()
        .unwrap();
    let outside = tempfile::tempdir().unwrap();
    let krate = generated(outside.path());
    let target = cargo_in(
        &krate,
        Some(&toolchain),
        &["build", "--quiet"],
        "the generated crate",
    );
    let env = Env::new();
    env.install(&target.join("debug/libacme_ttl.so"), "libacme_ttl.so");
    env.config("[core]\nplugins = [\"acme.ttl\"]\n");
    let list = env.list_json();
    let found = list["plugins"]
        .as_array()
        .unwrap()
        .iter()
        .any(|p| p["name"] == "acme.ttl");
    assert!(found, "built with {}: {list}", text(&rustc.stdout).trim());
    // Its own code ran: validate_config, through the SDK the other rustc built.
    let check = text(&env.gordon(&["check"]).stdout);
    assert!(check.contains("ok: acme.ttl"), "{check}");
}
