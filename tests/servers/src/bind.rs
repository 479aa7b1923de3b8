//! BIND 9 (`named`) as the primary of test zones on 127.0.0.1, for tests of RFC 2136
//! publishers.
//!
//! ```ignore
//! use gordon_test_servers::bind::{Bind, Key};
//! let key = Key::random("gordon-key", "hmac-sha256");
//! let Some(bind) = Bind::start("example.test.", &[key]) else { return };
//! // ... send updates to bind.addr() ...
//! assert!(bind.axfr().iter().any(|l| l == "www.example.test. 300 IN A 10.0.0.1"));
//! ```
//!
//! `named -g -c DIR/named.conf` (`-u root` when run as root) listens on a free port
//! (UDP and TCP) with a fresh directory for zone files and journals, logging to
//! `DIR/server.log` (shown when it fails to start). Each zone starts empty but valid
//! (SOA, NS `ns1.<zone>`, glue `127.0.0.1`). Updatable zones accept UPDATE and AXFR
//! signed with any of the given keys; read-only zones accept AXFR only, so BIND
//! answers an update with REFUSED. The server is ready when it answers a SOA query
//! for every zone with authority. Updates land in a journal: read the state with
//! [`DnsServer::axfr`], not from the zone file.
//!
//! [`Key`] and [`DnsServer`] (what a running BIND or Knot offers) are shared with
//! [`crate::knot`].

use std::fs::File;
use std::io::{Read, Write};
use std::net::{Ipv4Addr, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use crate::{free_port, require, stop, wait_until};

/// A TSIG key: name, algorithm (`hmac-sha256`, `hmac-sha384`, `hmac-sha512`) and the
/// base64 secret.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Key {
    /// The key name, e.g. `gordon-key`.
    pub name: String,
    /// The algorithm, e.g. `hmac-sha256`.
    pub algorithm: String,
    /// The secret, base64.
    pub secret: String,
}

impl Key {
    /// A key with the given base64 secret.
    pub fn new(name: &str, algorithm: &str, secret: &str) -> Self {
        let s = |s: &str| s.to_owned();
        Key {
            name: s(name),
            algorithm: s(algorithm),
            secret: s(secret),
        }
    }

    /// A key with a fresh random secret as long as the algorithm's digest.
    pub fn random(name: &str, algorithm: &str) -> Self {
        let mut bytes = vec![0u8; if algorithm.ends_with("512") { 64 } else { 48 }];
        File::open("/dev/urandom")
            .and_then(|mut f| f.read_exact(&mut bytes))
            .expect("read /dev/urandom");
        Key::new(name, algorithm, &base64(&bytes))
    }

    /// The key as a BIND `key` statement: the format of `tsig-keygen` and `dig -k`.
    pub fn bind_stanza(&self) -> String {
        let (name, alg, secret) = (&self.name, &self.algorithm, &self.secret);
        format!("key \"{name}\" {{\n\talgorithm {alg};\n\tsecret \"{secret}\";\n}};\n")
    }
}

/// Standard base64 with padding.
fn base64(bytes: &[u8]) -> String {
    const ABC: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let n = (chunk.iter().enumerate()).fold(0, |n, (i, b)| n | u32::from(*b) << (16 - 8 * i));
        for i in 0..4 {
            let six = (n >> (18 - 6 * i) & 63) as usize;
            out.push(char::from(if i <= chunk.len() { ABC[six] } else { b'=' }));
        }
    }
    out
}

/// Sends a SOA query for `zone` over UDP; true when the answer is authoritative and
/// has the SOA.
fn soa_ready(port: u16, zone: &str) -> bool {
    let Ok(sock) = UdpSocket::bind((Ipv4Addr::LOCALHOST, 0)) else {
        return false;
    };
    let id = (std::process::id() as u16) ^ port;
    let mut q = id.to_be_bytes().to_vec();
    q.extend_from_slice(&[0, 0, 0, 1, 0, 0, 0, 0, 0, 0]);
    for label in zone.split('.').filter(|l| !l.is_empty()) {
        q.push(label.len() as u8);
        q.extend_from_slice(label.as_bytes());
    }
    q.extend_from_slice(&[0, 0, 6, 0, 1]);
    let mut b = [0u8; 1500];
    let _ = sock.set_read_timeout(Some(Duration::from_millis(200)));
    if sock.send_to(&q, (Ipv4Addr::LOCALHOST, port)).is_err() {
        return false;
    }
    // Reply for our id, QR and AA set, NOERROR, at least one answer.
    matches!(sock.recv(&mut b), Ok(n) if n >= 12 && b[..2] == q[..2]
        && b[2] & 0x84 == 0x84 && b[3] & 0x0f == 0 && b[6..8] != [0, 0])
}

/// The zones to serve: `(name, updatable)`.
pub(crate) fn zone_list<'a>(updatable: &[&'a str], read_only: &[&'a str]) -> Vec<(&'a str, bool)> {
    assert!(!updatable.is_empty(), "at least one updatable zone");
    let rw = updatable.iter().map(|z| (*z, true));
    rw.chain(read_only.iter().map(|z| (*z, false))).collect()
}

/// A running BIND or Knot serving test zones; stopped when dropped.
#[derive(Debug)]
pub struct DnsServer {
    child: Child,
    dir: tempfile::TempDir,
    port: u16,
    zone: String,
    keys: Vec<Key>,
    dig: PathBuf,
}

impl DnsServer {
    /// A fresh state directory with an empty zone file `DIR/<zone>zone` per zone.
    pub(crate) fn prepare(server: &str, zones: &[(&str, bool)]) -> (tempfile::TempDir, u16) {
        let prefix = format!("gordon-{server}-");
        let dir = tempfile::Builder::new()
            .prefix(&prefix)
            .tempdir()
            .expect("temp dir");
        for (zone, _) in zones {
            let text = format!(
                "$ORIGIN {zone}\n$TTL 300\n@ IN SOA ns1 hostmaster 1 3600 900 1209600 300\n\
                 @ IN NS ns1\nns1 IN A 127.0.0.1\n"
            );
            std::fs::write(dir.path().join(format!("{zone}zone")), text).expect("zone file");
        }
        (dir, free_port())
    }

    /// Spawns `cmd` logging to `DIR/server.log` and waits until every zone answers.
    pub(crate) fn launch(
        mut cmd: Command,
        dir: tempfile::TempDir,
        port: u16,
        zones: &[(&str, bool)],
        keys: &[Key],
    ) -> Option<Self> {
        let dig = require("dig", "bind9-dnsutils")?;
        let log_path = dir.path().join("server.log");
        let log = File::create(&log_path).expect("create the server log");
        let log2 = log.try_clone().expect("clone the log handle");
        cmd.stdin(Stdio::null()).stdout(log2).stderr(log);
        let mut child = cmd.spawn().expect("start the DNS server");
        wait_until(
            &format!("DNS server on port {port}"),
            Duration::from_secs(20),
            || {
                if let Ok(Some(status)) = child.try_wait() {
                    let log = std::fs::read_to_string(&log_path).unwrap_or_default();
                    panic!("{cmd:?} exited during start-up ({status}); log:\n{log}");
                }
                zones.iter().all(|(z, _)| soa_ready(port, z))
            },
        );
        let (zone, keys) = (zones[0].0.to_owned(), keys.to_vec());
        Some(DnsServer {
            child,
            dir,
            port,
            zone,
            keys,
            dig,
        })
    }

    /// The port (UDP and TCP) on 127.0.0.1.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// `127.0.0.1:PORT`.
    pub fn addr(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// The first updatable zone.
    pub fn zone(&self) -> &str {
        &self.zone
    }

    /// The keys the server accepts.
    pub fn keys(&self) -> &[Key] {
        &self.keys
    }

    /// The state directory (configuration, zone files, journals, `server.log`).
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// The server's log so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("server.log")).unwrap_or_default()
    }

    /// The zone's records by AXFR with `dig`, signed with the first key, one per line
    /// (`name ttl class type rdata`, single-spaced), the SOA once.
    pub fn axfr(&self) -> Vec<String> {
        self.axfr_zone(&self.zone)
    }

    /// [`DnsServer::axfr`] of another zone the server serves.
    ///
    /// # Panics
    /// If the transfer fails.
    pub fn axfr_zone(&self, zone: &str) -> Vec<String> {
        let key = self.keys.first().expect("AXFR needs a key");
        let key_file = self.dir.path().join(format!("{}.key", key.name));
        std::fs::write(&key_file, key.bind_stanza()).expect("write a key file");
        let out = Command::new(&self.dig)
            .args(["@127.0.0.1", "-p", &self.port.to_string(), "-k"])
            .arg(key_file)
            .args([
                zone,
                "AXFR",
                "+nocmd",
                "+nostats",
                "+onesoa",
                "+nocomments",
                "+tries=1",
            ])
            .output()
            .expect("run dig");
        let text = String::from_utf8_lossy(&out.stdout);
        let failed = !out.status.success() || text.contains("; Transfer failed");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            !failed,
            "AXFR of {zone} from port {} failed: {text}{err}",
            self.port
        );
        let lines = text
            .lines()
            .filter(|l| !l.trim().is_empty() && !l.starts_with(';'));
        let records = lines.map(|l| l.split_whitespace().collect::<Vec<_>>().join(" "));
        records
            .filter(|l| l.split(' ').nth(3) != Some("TSIG"))
            .collect()
    }

    /// Runs one `nsupdate` session against `zone` signed with the first key:
    /// `commands` (e.g. `update add ...` lines), then `send`. For changes "behind
    /// gordon's back", and for benchmark baselines. The secret goes through stdin.
    ///
    /// # Errors
    /// `nsupdate`'s output when the update fails.
    pub fn nsupdate(&self, zone: &str, commands: &str) -> Result<(), String> {
        let nsupdate = require("nsupdate", "bind9-dnsutils").ok_or("nsupdate is missing")?;
        let key = self.keys.first().ok_or("no key")?;
        let (port, alg, name, secret) = (self.port, &key.algorithm, &key.name, &key.secret);
        let script = format!(
            "server 127.0.0.1 {port}\nkey {alg}:{name} {secret}\nzone {zone}\n{commands}\nsend\n"
        );
        let mut child = Command::new(nsupdate)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| format!("cannot run nsupdate: {e}"))?;
        if let Some(mut stdin) = child.stdin.take() {
            stdin
                .write_all(script.as_bytes())
                .map_err(|e| e.to_string())?;
        }
        let out = child.wait_with_output().map_err(|e| e.to_string())?;
        let text = String::from_utf8_lossy(&out.stdout) + String::from_utf8_lossy(&out.stderr);
        out.status.success().then_some(()).ok_or(text.into_owned())
    }
}

impl Drop for DnsServer {
    fn drop(&mut self) {
        stop(&mut self.child);
    }
}

/// A running `named`; everything else is on [`DnsServer`].
#[derive(Debug)]
pub struct Bind(DnsServer);

impl Bind {
    /// Starts `named` serving `zone` (absolute, e.g. `example.test.`), updatable and
    /// transferable with any of `tsig`. `None` when `named` or `dig` is not installed
    /// (outside CI).
    ///
    /// # Panics
    /// If the server does not start or is not ready within 20 s (with its log).
    pub fn start(zone: &str, tsig: &[Key]) -> Option<Self> {
        Bind::start_zones(&[zone], &[], tsig)
    }

    /// Starts `named` with `updatable` zones (the first is [`DnsServer::zone`]) and
    /// `read_only` ones (AXFR with the keys; updates are REFUSED).
    ///
    /// # Panics
    /// As [`Bind::start`]; also when `updatable` is empty.
    pub fn start_zones(updatable: &[&str], read_only: &[&str], tsig: &[Key]) -> Option<Self> {
        let named = require("named", "bind9")?;
        let zones = zone_list(updatable, read_only);
        let (dir, port) = DnsServer::prepare("bind", &zones);
        let cmd = named_command(&named, dir.path(), port, &zones, tsig);
        DnsServer::launch(cmd, dir, port, &zones, tsig).map(Bind)
    }

    /// Starts `named` serving a copy of the zone file `file` as the primary of `zone`
    /// (read-only; AXFR with any of `tsig`), to prove that BIND loads it.
    /// `Some(Ok(bind))` once the zone is loaded and answers; `Some(Err(log))` when
    /// `named` refuses the zone (the log says why: `too many records`, `CNAME and
    /// other data`, ...); `None` when `named` or `dig` is not installed (outside CI).
    ///
    /// # Panics
    /// If `named` neither loads nor refuses the zone within 20 s.
    pub fn load(zone: &str, file: &Path, tsig: &[Key]) -> Option<Result<Self, String>> {
        Bind::load_within(zone, file, tsig, Duration::from_secs(20))
    }

    /// [`Bind::load`] with a longer wait for `named` to load the zone: a zone of
    /// millions of records takes BIND 15 s or more to read (benchmarks).
    ///
    /// # Panics
    /// If `named` neither loads nor refuses the zone within `timeout`.
    pub fn load_within(
        zone: &str,
        file: &Path,
        tsig: &[Key],
        timeout: Duration,
    ) -> Option<Result<Self, String>> {
        let named = require("named", "bind9")?;
        let dig = require("dig", "bind9-dnsutils")?;
        let zones = [(zone, false)];
        let (dir, port) = DnsServer::prepare("bind", &zones);
        std::fs::copy(file, dir.path().join(format!("{zone}zone"))).expect("copy the zone file");
        let mut cmd = named_command(&named, dir.path(), port, &zones, tsig);
        let log_path = dir.path().join("server.log");
        let log = File::create(&log_path).expect("create the server log");
        let log2 = log.try_clone().expect("clone the log handle");
        cmd.stdin(Stdio::null()).stdout(log2).stderr(log);
        let mut child = cmd.spawn().expect("start named");
        let shown = zone.trim_end_matches('.');
        let (loaded, refused) = (
            format!("zone {shown}/IN: loaded serial"),
            format!("zone {shown}/IN: not loaded due to errors"),
        );
        let read_log = || std::fs::read_to_string(&log_path).unwrap_or_default();
        let mut exited = false;
        wait_until(&format!("named loading {zone}"), timeout, || {
            exited = matches!(child.try_wait(), Ok(Some(_)));
            let log = read_log();
            exited || log.contains(&loaded) || log.contains(&refused)
        });
        if exited || !read_log().contains(&loaded) {
            stop(&mut child);
            return Some(Err(read_log()));
        }
        wait_until(
            &format!("{zone} on port {port}"),
            Duration::from_secs(20),
            || soa_ready(port, zone),
        );
        Some(Ok(Bind(DnsServer {
            child,
            dir,
            port,
            zone: zone.to_owned(),
            keys: tsig.to_vec(),
            dig,
        })))
    }
}

/// Writes `DIR/named.conf` for `zones` (`DIR/<zone>zone` each) and returns the
/// command that runs `named` on it in the foreground.
fn named_command(
    named: &Path,
    dir: &Path,
    port: u16,
    zones: &[(&str, bool)],
    tsig: &[Key],
) -> Command {
    let d = dir.display();
    let mut conf = format!(
        "options {{ directory \"{d}\"; listen-on port {port} {{ 127.0.0.1; }};\n\
         listen-on-v6 {{ none; }}; pid-file \"{d}/named.pid\"; recursion no;\n\
         session-keyfile \"{d}/session.key\"; managed-keys-directory \"{d}\";\n\
         notify no; dnssec-validation no; }};\ncontrols {{ }};\n"
    );
    let keys: String = tsig
        .iter()
        .map(|k| format!("key \"{}\"; ", k.name))
        .collect();
    tsig.iter().for_each(|k| conf.push_str(&k.bind_stanza()));
    for (zone, rw) in zones {
        let update = if *rw { keys.as_str() } else { "none; " };
        conf.push_str(&format!(
            "zone \"{zone}\" {{ type primary; file \"{d}/{zone}zone\";\n\
             allow-update {{ {update}}}; allow-transfer {{ {keys}}}; }};\n"
        ));
    }
    let conf_path = dir.join("named.conf");
    std::fs::write(&conf_path, conf).expect("write named.conf");
    let mut cmd = Command::new(named);
    cmd.arg("-g").arg("-c").arg(conf_path);
    // SAFETY: geteuid has no preconditions and cannot fail.
    if unsafe { libc::geteuid() } == 0 {
        cmd.args(["-u", "root"]);
    }
    cmd
}

impl std::ops::Deref for Bind {
    type Target = DnsServer;
    fn deref(&self) -> &DnsServer {
        &self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_matches_known_vectors() {
        assert_eq!(base64(b""), "");
        assert_eq!(base64(b"f"), "Zg==");
        assert_eq!(base64(b"fo"), "Zm8=");
        assert_eq!(base64(b"foobar"), "Zm9vYmFy");
        assert_eq!(Key::random("k", "hmac-sha512").secret.len(), 88);
    }

    #[test]
    fn loads_a_zone_file_or_says_why_not() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("zone");
        let head =
            "$ORIGIN example.test.\n$TTL 300\n@ IN SOA ns1 hostmaster 1 3600 900 1209600 300\n\
                    @ IN NS ns1\nns1 IN A 127.0.0.1\n";
        let many: String = (0..101).map(|i| format!("www IN A 10.0.0.{i}\n")).collect();
        std::fs::write(&file, format!("{head}{many}")).unwrap();
        let Some(refused) = Bind::load("example.test.", &file, &[]) else {
            return;
        };
        let log = refused.unwrap_err();
        assert!(log.contains("too many records"), "{log}");
        std::fs::write(&file, format!("{head}www IN A 10.0.0.1\n")).unwrap();
        let key = Key::random("k", "hmac-sha256");
        let bind = Bind::load("example.test.", &file, &[key]).unwrap().unwrap();
        assert!(bind
            .axfr()
            .contains(&"www.example.test. 300 IN A 10.0.0.1".to_owned()));
    }

    #[test]
    fn serves_updates_and_transfers() {
        let key = Key::random("test-key", "hmac-sha384");
        let Some(bind) = Bind::start_zones(&["example.test."], &["ro.test."], &[key]) else {
            return;
        };
        assert!(bind
            .axfr()
            .contains(&"ns1.example.test. 300 IN A 127.0.0.1".to_owned()));
        bind.nsupdate(
            "example.test.",
            "update add www.example.test. 60 A 10.0.0.9",
        )
        .unwrap();
        assert!(bind
            .axfr()
            .contains(&"www.example.test. 60 IN A 10.0.0.9".to_owned()));
        let refused = bind.nsupdate("ro.test.", "update add a.ro.test. 60 A 10.0.0.1");
        assert!(refused.unwrap_err().contains("REFUSED"));
        assert_eq!(bind.axfr_zone("ro.test.").len(), 3);
    }
}
