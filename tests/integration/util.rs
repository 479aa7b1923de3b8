//! Test harness: builds the binary and the fixture libraries once, and gives each
//! test a fresh config root with its own `plugins.d/`.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::{Mutex, OnceLock};

/// The workspace root.
pub fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

/// The cargo target directory.
pub fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR").map_or_else(|| root().join("target"), PathBuf::from)
}

/// Cargo, with the workspace's debug level also for the out-of-tree builds (the
/// drift and vendor fixtures): full debug info would multiply their disk use.
pub fn cargo() -> Command {
    let mut cmd = Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()));
    cmd.env("CARGO_PROFILE_DEV_DEBUG", "line-tables-only");
    cmd
}

/// Packages every test needs built: the host and the fixture cdylibs.
const PACKAGES: &[&str] = &[
    "gordon",
    "gordon-fixture-alpha",
    "gordon-fixture-beta",
    "gordon-fixture-ctor-panic",
    "gordon-fixture-not-a-plugin",
    "gordon-fixture-gamma",
    "gordon-plugin-http",
    "gordon-plugin-dns",
    "gordon-plugin-nats",
    "gordon-plugin-rfc2136",
    "gordon-plugin-inventory",
    "gordon-plugin-audit",
];

pub fn run_cargo(mut cmd: Command, what: &str) {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("cannot run cargo for {what}: {e}"));
    assert!(
        out.status.success(),
        "building {what} failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Builds the host and the fixtures (once per test process).
pub fn build() {
    static BUILT: OnceLock<()> = OnceLock::new();
    BUILT.get_or_init(|| {
        let mut cmd = cargo();
        cmd.current_dir(root()).arg("build").arg("--quiet");
        for p in PACKAGES {
            cmd.args(["-p", p]);
        }
        run_cargo(cmd, "the host and fixtures");
    });
}

/// The `gordon` binary.
pub fn gordon_bin() -> PathBuf {
    build();
    target_dir().join("debug").join("gordon")
}

/// A sample plugin library built from `sample-plugins/<name>`.
pub fn sample(name: &str) -> PathBuf {
    build();
    target_dir()
        .join("debug")
        .join(format!("libgordon_plugin_{name}.so"))
}

/// A fixture library built from `tests/fixtures/<name>`.
pub fn fixture(name: &str) -> PathBuf {
    build();
    let file = format!("libgordon_fixture_{}.so", name.replace('-', "_"));
    target_dir().join("debug").join(file)
}

/// How a drifted copy of plugin-api differs from the real one.
#[derive(Clone, Copy, Debug)]
pub enum Drift {
    /// `version = "2.0.0"`.
    Major,
    /// Two fields of `ResourceRecord` swapped: same version, different layout.
    Layout,
    /// Not drifted at all: the released plugin-api 1.0.0, which the current host must
    /// keep loading. Like every `Released*`, built from the packaged `.crate` in
    /// `tests/compat` with the lock file that version was released with.
    Released1_0,
    /// The released plugin-api 1.1.0, likewise.
    Released1_1,
    /// The released plugin-api 1.2.0, likewise.
    Released1_2,
}

impl Drift {
    /// The released plugin-api version a `Released*` drift is built against.
    fn release(self) -> Option<&'static str> {
        match self {
            Drift::Major | Drift::Layout => None,
            Drift::Released1_0 => Some("1.0.0"),
            Drift::Released1_1 => Some("1.1.0"),
            Drift::Released1_2 => Some("1.2.0"),
        }
    }
}

/// A plugin built against a drifted copy of plugin-api (see `tests/abi-drift`).
pub fn drifted_fixture(drift: Drift) -> PathBuf {
    static LOCK: Mutex<()> = Mutex::new(());
    let _guard = LOCK.lock().unwrap_or_else(|p| p.into_inner());
    let base = target_dir().join("abi-drift");
    let variant = match drift {
        Drift::Major => "major",
        Drift::Layout => "layout",
        Drift::Released1_0 => "released-1.0",
        Drift::Released1_1 => "released-1.1",
        Drift::Released1_2 => "released-1.2",
    };
    let ws = base.join(variant);
    let _ = std::fs::remove_dir_all(&ws);
    // A release is built from its package and with the lock file it was released
    // with; a drifted copy of today's plugin-api with today's lock file.
    let lock = match drift.release() {
        Some(version) => {
            let compat = root().join("tests/compat");
            let krate = compat.join(format!("gordon-plugin-api-{version}.crate"));
            verify_sha256(&krate);
            unpack_crate(&krate, &ws.join("plugin-api"));
            compat.join(format!("gordon-plugin-api-{version}.Cargo.lock"))
        }
        None => {
            copy_dir(&root().join("plugin-api"), &ws.join("plugin-api"));
            root().join("Cargo.lock")
        }
    };
    copy_dir(&root().join("tests/abi-drift"), &ws.join("fixture"));
    std::fs::copy(&lock, ws.join("Cargo.lock")).unwrap();
    std::fs::write(ws.join("Cargo.toml"), drift_workspace_manifest()).unwrap();
    match drift {
        Drift::Major => patch(
            &ws.join("plugin-api/Cargo.toml"),
            "\nversion = \"1.",
            "\nversion = \"2.",
        ),
        Drift::Layout => patch(
            &ws.join("plugin-api/src/message.rs"),
            "    rtype: RecordType,\n    ttl: u32,\n",
            "    ttl: u32,\n    rtype: RecordType,\n",
        ),
        Drift::Released1_0 | Drift::Released1_1 | Drift::Released1_2 => {}
    }
    let mut cmd = cargo();
    cmd.current_dir(&ws)
        .args([
            "build",
            "--quiet",
            "-p",
            "gordon-fixture-drift",
            "--target-dir",
        ])
        .arg(base.join("target"));
    run_cargo(cmd, &format!("the {variant} drift fixture"));
    assert_pinned(&ws.join("Cargo.lock"), &lock);
    base.join("target/debug/libgordon_fixture_drift.so")
}

/// Checks `file` against its line in the `SHA256SUMS` beside it (the check
/// `sha256sum -c SHA256SUMS` makes), so no fixture is built from a release package
/// that changed.
fn verify_sha256(file: &Path) {
    let name = file.file_name().unwrap().to_str().unwrap();
    let sums = file.with_file_name("SHA256SUMS");
    let listed = std::fs::read_to_string(&sums)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", sums.display()));
    let expected = listed
        .lines()
        .find_map(|line| {
            let (sum, file) = line.split_once(char::is_whitespace)?;
            (file.trim_start().trim_start_matches('*') == name).then_some(sum)
        })
        .unwrap_or_else(|| panic!("{} lists no checksum for {name}", sums.display()));
    let out = Command::new("sha256sum")
        .arg(file)
        .output()
        .unwrap_or_else(|e| panic!("cannot run sha256sum on {}: {e}", file.display()));
    assert!(
        out.status.success(),
        "sha256sum {}: {}",
        file.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    let actual = stdout.split_whitespace().next().unwrap_or_default();
    assert!(
        actual.eq_ignore_ascii_case(expected),
        "{} does not match its checksum in {}: sha256 {actual}, expected {expected}",
        file.display(),
        sums.display()
    );
}

/// Fails unless every registry package in the lock file a drift build ended with
/// (`used`) is pinned, at the same version, by the one it was given: cargo may add
/// the fixture crate itself, but never choose a dependency version of its own.
fn assert_pinned(used: &Path, given: &Path) {
    fn registry_packages(lock: &Path) -> std::collections::BTreeSet<String> {
        let text = std::fs::read_to_string(lock).unwrap();
        let doc: toml::Table = text.parse().unwrap();
        doc["package"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|p| {
                let source = p.get("source")?.as_str()?;
                let (name, version) = (p["name"].as_str()?, p["version"].as_str()?);
                Some(format!("{name} {version} ({source})"))
            })
            .collect()
    }
    let pinned = registry_packages(given);
    let unpinned: Vec<String> = registry_packages(used)
        .into_iter()
        .filter(|p| !pinned.contains(p))
        .collect();
    assert!(
        unpinned.is_empty(),
        "the drift build chose versions {} does not pin: {unpinned:?}",
        given.display()
    );
}

/// The workspace manifest for a drift build: the real workspace's shared sections,
/// with only the drifted crates as members.
fn drift_workspace_manifest() -> String {
    let text = std::fs::read_to_string(root().join("Cargo.toml")).unwrap();
    let mut doc: toml::Table = text.parse().unwrap();
    let ws = doc.get_mut("workspace").unwrap().as_table_mut().unwrap();
    ws.insert(
        "members".into(),
        toml::Value::Array(vec!["fixture".into(), "plugin-api".into()]),
    );
    ws.remove("exclude");
    let deps = ws.get_mut("dependencies").unwrap().as_table_mut().unwrap();
    deps.retain(|k, _| k != "gordon-plugin-api");
    toml::to_string(&doc).unwrap()
}

/// Replaces exactly one occurrence, so a test cannot pass because the patch silently
/// stopped applying.
fn patch(path: &Path, from: &str, to: &str) {
    let text = std::fs::read_to_string(path).unwrap();
    assert_eq!(
        text.matches(from).count(),
        1,
        "patch target not found once in {}",
        path.display()
    );
    std::fs::write(path, text.replacen(from, to, 1)).unwrap();
}

/// Unpacks a `.crate` (a gzipped tar holding `NAME-VERSION/`) as directory `to`.
fn unpack_crate(file: &Path, to: &Path) {
    let parent = to.parent().unwrap();
    std::fs::create_dir_all(parent).unwrap();
    let out = Command::new("tar")
        .arg("-xzf")
        .arg(file)
        .arg("-C")
        .arg(parent)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "tar: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stem = file.file_stem().unwrap();
    std::fs::rename(parent.join(stem), to).unwrap();
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let dest = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &dest);
        } else {
            std::fs::copy(entry.path(), dest).unwrap();
        }
    }
}

/// A config root with a `plugins.d/`.
pub struct Env {
    /// Keeps the directory alive.
    pub dir: tempfile::TempDir,
}

impl Env {
    /// An empty config root.
    pub fn new() -> Env {
        let dir = tempfile::tempdir().unwrap();
        let env = Env { dir };
        std::fs::create_dir(env.plugins_d()).unwrap();
        set_mode(&env.plugins_d(), 0o755);
        set_mode(env.path(), 0o755);
        env
    }

    /// The config root.
    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// Its plugin directory.
    pub fn plugins_d(&self) -> PathBuf {
        self.path().join("plugins.d")
    }

    /// Copies a library into `plugins.d/` as `file` (mode 0755).
    pub fn install(&self, lib: &Path, file: &str) -> PathBuf {
        let dest = self.plugins_d().join(file);
        std::fs::copy(lib, &dest).unwrap_or_else(|e| panic!("copy {}: {e}", lib.display()));
        set_mode(&dest, 0o755);
        dest
    }

    /// Writes raw bytes into `plugins.d/`.
    pub fn install_bytes(&self, bytes: &[u8], file: &str) -> PathBuf {
        let dest = self.plugins_d().join(file);
        std::fs::write(&dest, bytes).unwrap();
        set_mode(&dest, 0o755);
        dest
    }

    /// Writes `gordon.toml`.
    pub fn config(&self, text: &str) -> &Self {
        std::fs::write(self.path().join("gordon.toml"), text).unwrap();
        self
    }

    /// Writes `gordon-janitor.toml`.
    pub fn janitor_config(&self, text: &str) -> &Self {
        std::fs::write(self.path().join("gordon-janitor.toml"), text).unwrap();
        self
    }

    /// Writes `gordon-user.toml`.
    pub fn user_config(&self, text: &str) -> &Self {
        std::fs::write(self.path().join("gordon-user.toml"), text).unwrap();
        self
    }

    /// Runs `gordon -c ROOT args...` to completion.
    pub fn gordon(&self, args: &[&str]) -> Output {
        Command::new(gordon_bin())
            .arg("-c")
            .arg(self.path())
            .args(args)
            .env_remove("RUST_BACKTRACE")
            .output()
            .unwrap()
    }

    /// `gordon plugins list --json`, parsed.
    pub fn list_json(&self) -> serde_json::Value {
        let out = self.gordon(&["plugins", "list", "--json"]);
        assert!(out.status.success(), "list failed: {}", text(&out.stderr));
        serde_json::from_slice(&out.stdout).unwrap()
    }
}

impl Drop for Env {
    /// Kills any `gordon` still running on this config root (a test that failed
    /// between `spawn` and `wait_exit`), so no process outlives its test.
    fn drop(&mut self) {
        let root = self.path().as_os_str().as_encoded_bytes().to_vec();
        let Ok(procs) = std::fs::read_dir("/proc") else {
            return;
        };
        for entry in procs.flatten() {
            let Some(pid) = entry
                .file_name()
                .to_str()
                .and_then(|p| p.parse::<i32>().ok())
            else {
                continue;
            };
            let cmdline = std::fs::read(entry.path().join("cmdline")).unwrap_or_default();
            let ours = cmdline.split(|b| *b == 0).any(|arg| arg == root.as_slice());
            if ours {
                // SAFETY: `kill` has no memory-safety preconditions; the process runs
                // on this test's own config root.
                unsafe { libc::kill(pid, libc::SIGKILL) };
            }
        }
    }
}

/// A config root with the `alpha` and `beta` fixtures installed and `config` as
/// `gordon.toml`, where `REPORT` and `MARKER` stand for the files `report.json` and
/// `sent` of the root.
pub fn alpha_beta_env(config: &str) -> Env {
    let env = Env::new();
    env.install(&fixture("alpha"), "libalpha.so");
    env.install(&fixture("beta"), "libbeta.so");
    env.config(
        &config
            .replace("REPORT", &env.file("report.json"))
            .replace("MARKER", &env.file("sent")),
    );
    env
}

/// Sets permission bits.
pub fn set_mode(path: &Path, mode: u32) {
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
}

/// Lossy UTF-8.
pub fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// The refusal reason printed for a library file name, from `list --json`.
pub fn refusal_for(list: &serde_json::Value, file: &str) -> Option<String> {
    list["refused"].as_array()?.iter().find_map(|r| {
        let lib = r["library"].as_str()?;
        lib.ends_with(file)
            .then(|| r["reason"].as_str().unwrap_or("").to_owned())
    })
}

impl Env {
    /// Starts `gordon -c ROOT args...` in the background, stderr captured to
    /// `ROOT/stderr.log`. Should the test fail before the process exits, dropping
    /// the `Env` kills it.
    pub fn spawn(&self, args: &[&str]) -> std::process::Child {
        let log = std::fs::File::create(self.path().join("stderr.log")).unwrap();
        Command::new(gordon_bin())
            .arg("-c")
            .arg(self.path())
            .args(args)
            .stdout(std::process::Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap()
    }

    /// What the background process logged so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.path().join("stderr.log")).unwrap_or_default()
    }

    /// A path inside the config root, as a string for configuration files.
    pub fn file(&self, name: &str) -> String {
        self.path().join(name).display().to_string()
    }

    /// Runs the service to completion and returns the source's report.
    pub fn run_to_report(&self) -> (Output, serde_json::Value) {
        let out = self.gordon(&[]);
        let report = std::fs::read_to_string(self.path().join("report.json"))
            .unwrap_or_else(|e| panic!("no report ({e}); stderr:\n{}", text(&out.stderr)));
        (out, serde_json::from_str(&report).unwrap())
    }
}

/// Polls until `path` exists (a readiness probe, not a fixed wait).
pub fn wait_for_file(path: &Path, timeout: std::time::Duration) -> String {
    let deadline = std::time::Instant::now() + timeout;
    loop {
        if let Ok(s) = std::fs::read_to_string(path) {
            if !s.is_empty() {
                return s;
            }
        }
        assert!(
            std::time::Instant::now() < deadline,
            "{} did not appear",
            path.display()
        );
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
}

/// Sends a signal to a child.
pub fn signal(child: &std::process::Child, sig: i32) {
    // SAFETY: `kill` has no memory-safety preconditions; the pid is our own child.
    let rc = unsafe { libc::kill(child.id() as i32, sig) };
    assert_eq!(rc, 0, "kill failed");
}

/// Waits for a child to exit, failing the test if it does not within `timeout`.
pub fn wait_exit(
    child: &mut std::process::Child,
    timeout: std::time::Duration,
) -> std::process::ExitStatus {
    let deadline = std::time::Instant::now() + timeout;
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status;
        }
        if std::time::Instant::now() > deadline {
            let _ = child.kill();
            panic!("gordon did not exit within {timeout:?}");
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
}

/// A free TCP port on 127.0.0.1.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// One HTTP/1.1 request to 127.0.0.1:`port`; returns the status and the JSON body.
pub fn http(port: u16, method: &str, path: &str, body: &str) -> (u16, serde_json::Value) {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    write!(
        s,
        "{method} {path} HTTP/1.1\r\nhost: test\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap();
    let status = out.get(9..12).and_then(|c| c.parse().ok()).unwrap_or(0);
    let body = out.split("\r\n\r\n").nth(1).unwrap_or("null");
    (
        status,
        serde_json::from_str(body).unwrap_or(serde_json::Value::Null),
    )
}

/// A tool the tests check output with, if installed at one of `paths`. In CI
/// (`CI=true`) its absence fails the test; locally the check is skipped.
pub fn test_tool(paths: &[&str], package: &str) -> Option<PathBuf> {
    let found = paths.iter().map(PathBuf::from).find(|p| p.exists());
    let name = paths
        .first()
        .and_then(|p| Path::new(p).file_name())
        .map_or_else(String::new, |n| n.to_string_lossy().into_owned());
    if found.is_none() {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "{name} is missing (Debian package {package}); CI must install it"
        );
        eprintln!("skipping the {name} check: install the Debian package {package}");
    }
    found
}

/// `named-checkzone`, if installed. In CI (`CI=true`) its absence fails the test.
pub fn named_checkzone() -> Option<PathBuf> {
    test_tool(
        &["/usr/bin/named-checkzone", "/usr/sbin/named-checkzone"],
        "bind9",
    )
}

/// The default pipeline (http.events -> dns.enricher -> dns.zonefile) on a fresh
/// config root, its HTTP port written to `port` and its zone to
/// `zones/example.com.zone`; `core` is added to `[core]` (it may end with more
/// top-level tables) and `http` to `["http.events"]`.
pub fn dns_env_with(core: &str, http: &str) -> Env {
    dns_env_for("example.com.", core, http)
}

/// [`dns_env_with`] for `zone` (absolute), its file `zones/<zone>zone`.
pub fn dns_env_for(zone: &str, core: &str, http: &str) -> Env {
    let env = Env::new();
    env.install(&sample("http"), "libgordon_plugin_http.so");
    env.install(&sample("dns"), "libgordon_plugin_dns.so");
    env.config(&format!(
        r#"[core]
plugins = ["http.events", "dns.enricher", "dns.zonefile"]
{core}
["http.events"]
listen = "127.0.0.1:0"
port_file = "{port}"
{http}
["dns"]
zone = "{zone}"
["dns.zonefile"]
path = "{path}"
"#,
        port = env.file("port"),
        path = env.file(&format!("zones/{zone}zone")),
    ));
    env
}

/// The zone file `dns.zonefile` keeps at `path`, once its writer has caught up with
/// its journal: when no journal segment (`<file>.jnl.<n>`) holds a batch any more.
/// A batch is published once journaled; the file follows within a few rewrites.
pub fn settled_zone(path: &Path) -> String {
    let prefix = format!("{}.jnl.", path.file_name().unwrap().to_string_lossy());
    let dir = path.parent().unwrap();
    let journaled = || -> u64 {
        std::fs::read_dir(dir)
            .map(|list| {
                list.filter_map(Result::ok)
                    .filter(|e| e.file_name().to_string_lossy().starts_with(&prefix))
                    .filter_map(|e| e.metadata().ok())
                    .map(|m| m.len())
                    .sum()
            })
            .unwrap_or(0)
    };
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while journaled() > 0 {
        assert!(
            std::time::Instant::now() < deadline,
            "the zone file {} did not catch up with its journal",
            path.display()
        );
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    std::fs::read_to_string(path).unwrap()
}

/// The plugin-api version of this workspace (what the host reports).
pub fn api_version() -> String {
    let text = std::fs::read_to_string(root().join("plugin-api/Cargo.toml")).unwrap();
    let doc: toml::Table = text.parse().unwrap();
    doc["package"]["version"].as_str().unwrap().to_owned()
}

/// A vendor's plugin built with `panic = "abort"` (`tests/panic-abort`, a crate with
/// its own workspace, since `panic` is honoured only at a workspace root), built
/// outside this workspace once per test process.
pub fn panic_abort_fixture() -> PathBuf {
    static BUILT: OnceLock<PathBuf> = OnceLock::new();
    BUILT
        .get_or_init(|| build_outside("tests/panic-abort", "libgordon_fixture_panic_abort.so"))
        .clone()
}

/// Builds a plugin crate of `tests/` the way a vendor would, outside this
/// workspace: copied under the target directory with this workspace's `Cargo.lock`
/// and its plugin-api path made absolute. Returns the library `lib` it produced.
pub fn build_outside(crate_dir: &str, lib: &str) -> PathBuf {
    static LOCK: Mutex<()> = Mutex::new(());
    let _guard = LOCK.lock().unwrap_or_else(|p| p.into_inner());
    let base = target_dir()
        .join("outside")
        .join(crate_dir.replace('/', "-"));
    let built = base.join("target/debug").join(lib);
    let krate = base.join("fixture");
    let _ = std::fs::remove_dir_all(&krate);
    copy_dir(&root().join(crate_dir), &krate);
    let api = root().join("plugin-api").display().to_string();
    patch(
        &krate.join("Cargo.toml"),
        "path = \"../../plugin-api\"",
        &format!("path = {}", toml::Value::String(api)),
    );
    std::fs::copy(root().join("Cargo.lock"), krate.join("Cargo.lock")).unwrap();
    let mut cmd = cargo();
    cmd.current_dir(&krate)
        .args(["build", "--quiet", "--target-dir"])
        .arg(base.join("target"));
    run_cargo(cmd, crate_dir);
    built
}

/// The misbehaving vendor plugins of `tests/vendor` (`acme.hang`, `acme.crash`,
/// `acme.fault`).
pub fn vendor_fixture() -> PathBuf {
    static BUILT: OnceLock<PathBuf> = OnceLock::new();
    BUILT
        .get_or_init(|| build_outside("tests/vendor", "libacme_gordon_fixture.so"))
        .clone()
}

/// Polls `path` until its text contains `needle` (a readiness probe, not a fixed
/// wait); returns the text.
pub fn wait_for_text(path: &Path, needle: &str, timeout: std::time::Duration) -> String {
    let deadline = std::time::Instant::now() + timeout;
    loop {
        let text = std::fs::read_to_string(path).unwrap_or_default();
        if text.contains(needle) {
            return text;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "`{needle}` did not appear in {}:\n{text}",
            path.display()
        );
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
}

impl Env {
    /// Starts `gordon -c ROOT args...` like [`Env::spawn`], with `vars` added to its
    /// environment and, with `nofile`, its descriptor limit (`RLIMIT_NOFILE`, soft
    /// and hard) lowered to that many before it starts.
    pub fn spawn_with(
        &self,
        args: &[&str],
        vars: &[(&str, &str)],
        nofile: Option<libc::rlim_t>,
    ) -> std::process::Child {
        use std::os::unix::process::CommandExt;
        let log = std::fs::File::create(self.path().join("stderr.log")).unwrap();
        let mut cmd = Command::new(gordon_bin());
        cmd.arg("-c")
            .arg(self.path())
            .args(args)
            .envs(vars.iter().copied())
            .stdout(std::process::Stdio::null())
            .stderr(log);
        if let Some(n) = nofile {
            let limit = libc::rlimit {
                rlim_cur: n,
                rlim_max: n,
            };
            // SAFETY: between fork and exec the closure only calls `setrlimit`, which
            // is async-signal-safe, on a value it owns; it allocates nothing.
            unsafe {
                cmd.pre_exec(move || {
                    if libc::setrlimit(libc::RLIMIT_NOFILE, &limit) == 0 {
                        Ok(())
                    } else {
                        Err(std::io::Error::last_os_error())
                    }
                });
            }
        }
        cmd.spawn().unwrap()
    }
}

/// Raises this process's soft descriptor limit to `want` (if its hard limit allows),
/// for tests that hold many sockets open; returns the soft limit now in force.
pub fn raise_nofile_limit(want: libc::rlim_t) -> libc::rlim_t {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: `getrlimit` and `setrlimit` read and write only the struct passed.
    unsafe {
        assert_eq!(libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit), 0);
        let target = want.min(limit.rlim_max);
        if limit.rlim_cur < target {
            limit.rlim_cur = target;
            assert_eq!(libc::setrlimit(libc::RLIMIT_NOFILE, &limit), 0);
        }
    }
    limit.rlim_cur
}

/// A raw HTTP/1.1 exchange with 127.0.0.1:`port`, for requests `http` cannot send
/// (odd framing, several headers): writes `request`, reads until the server closes
/// or `timeout` passes. Returns what came back (possibly nothing).
pub fn http_raw(port: u16, request: &[u8], timeout: std::time::Duration) -> String {
    use std::io::{Read, Write};
    let addr = std::net::SocketAddr::from(([127, 0, 0, 1], port));
    let mut s = std::net::TcpStream::connect_timeout(&addr, timeout).unwrap();
    s.set_read_timeout(Some(timeout)).unwrap();
    s.write_all(request).unwrap();
    let mut out = Vec::new();
    let _ = s.read_to_end(&mut out);
    text(&out)
}

/// The status code of a raw HTTP response (0 if there is none).
pub fn http_status(response: &str) -> u16 {
    response
        .get(9..12)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0)
}
