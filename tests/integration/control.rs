//! The control socket and systemd: `gordon ctl status` against a running host,
//! who may use the socket, readiness notifications, the unit file.

use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::UnixDatagram;
use std::time::Duration;

use crate::isolation::{fault_env, port_of, post_one, started_pid, stop, wait_done};
use crate::util::{gordon_bin, root, test_tool, text, Env};

/// Polls until the control socket exists (a readiness probe).
pub(crate) fn wait_for_socket(path: &std::path::Path) {
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while !path.exists() {
        assert!(
            std::time::Instant::now() < deadline,
            "{} did not appear",
            path.display()
        );
        std::thread::sleep(Duration::from_millis(10));
    }
}

pub(crate) fn ctl_json(env: &Env) -> serde_json::Value {
    let out = env.gordon(&["ctl", "status", "--json"]);
    assert!(out.status.success(), "{}\n{}", text(&out.stderr), env.log());
    serde_json::from_slice(&out.stdout).unwrap()
}

pub(crate) fn plugin<'a>(doc: &'a serde_json::Value, name: &str) -> &'a serde_json::Value {
    doc["plugins"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == name)
        .unwrap_or_else(|| panic!("{name} not in {doc}"))
}

#[test]
fn ctl_status_shows_every_plugin_its_process_and_the_queues() {
    let env = fault_env("segv", "", "");
    let mut child = env.spawn(&[]);
    let port = port_of(&env);
    let pid = started_pid(&env, "acme.fault");
    // The socket exists once the service routes; `port` is written before that.
    let sock = env.path().join("gordon.sock");
    wait_for_socket(&sock);
    let mode = std::fs::metadata(&sock).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600, "the control socket must be private");

    let doc = ctl_json(&env);
    assert_eq!(doc["generation"], 1, "{doc}");
    assert_eq!(doc["healthy"], true, "{doc}");
    let fault = plugin(&doc, "acme.fault");
    assert_eq!(fault["isolated"], true, "{doc}");
    assert_eq!(fault["state"], "running", "{doc}");
    assert_eq!(fault["pid"], pid, "{doc}");
    assert_eq!(fault["restarts"], 0, "{doc}");
    let http = plugin(&doc, "http.events");
    assert_eq!(http["isolated"], false, "{doc}");
    assert_eq!(http["state"], "running", "{doc}");
    assert_eq!(doc["sources"][0]["name"], "http.events", "{doc}");
    assert_eq!(doc["sources"][0]["queued"], 0, "{doc}");

    // A crash: the status shows the restart and the new process.
    let crash = post_one(port, "crash-me");
    assert_eq!(wait_done(&env, port, &crash)["status"], "dropped");
    let fine = post_one(port, "fine");
    assert_eq!(wait_done(&env, port, &fine)["status"], "published");
    let doc = ctl_json(&env);
    let fault = plugin(&doc, "acme.fault");
    assert_eq!(fault["restarts"], 1, "{doc}");
    assert_eq!(fault["state"], "running", "{doc}");
    assert_ne!(fault["pid"], pid, "{doc}");
    // Per stage totals: the crashed batch counts as dropped, the next as handled.
    let publish = doc["stages"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["phase"] == "publish" && s["plugin"] == "acme.fault")
        .unwrap_or_else(|| panic!("no publish stage in {doc}"));
    assert_eq!(publish["dropped"], 1, "{doc}");
    assert!(publish["messages"].as_u64().unwrap() >= 2, "{doc}");

    let out = env.gordon(&["ctl", "status"]);
    let human = text(&out.stdout);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(human.contains("acme.fault [isolated]"), "{human}");
    assert!(human.contains("configuration generation 1"), "{human}");
    assert!(human.contains("healthy"), "{human}");

    assert_eq!(stop(&mut child).code(), Some(0), "{}", env.log());
    assert!(!sock.exists(), "the socket outlived the host");
}

#[test]
fn ctl_without_a_running_host_says_where_it_looked() {
    let env = fault_env("segv", "", "");
    let out = env.gordon(&["ctl", "status"]);
    assert_eq!(out.status.code(), Some(2));
    let err = text(&out.stderr);
    assert!(
        err.contains("cannot reach gordon's control socket") && err.contains("gordon.sock"),
        "{err}"
    );
}

#[test]
fn only_root_and_the_services_user_may_use_the_control_socket() {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        eprintln!("skipping: needs root to run a client as another user");
        return;
    }
    let env = fault_env("segv", "", "");
    let mut child = env.spawn(&[]);
    let sock = env.path().join("gordon.sock");
    wait_for_socket(&sock);
    // Even with the file opened to everyone, the peer's uid is checked.
    std::fs::set_permissions(&sock, std::fs::Permissions::from_mode(0o666)).unwrap();
    std::fs::set_permissions(env.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let out = {
        use std::os::unix::process::CommandExt;
        std::process::Command::new(gordon_bin())
            .args(["ctl", "--socket"])
            .arg(&sock)
            .arg("status")
            .uid(65534)
            .gid(65534)
            .output()
            .unwrap()
    };
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stdout));
    let err = text(&out.stderr);
    assert!(
        err.contains("uid 65534 may not use this control socket"),
        "{err}"
    );
    assert!(env.log().contains("refused a client"), "{}", env.log());
    // Root still may.
    assert!(env.gordon(&["ctl", "status"]).status.success());
    assert_eq!(stop(&mut child).code(), Some(0), "{}", env.log());
}

#[test]
fn readiness_reloading_and_stopping_are_notified_to_systemd() {
    let env = fault_env("segv", "", "");
    let path = env.path().join("notify.sock");
    let listener = UnixDatagram::bind(&path).unwrap();
    listener
        .set_read_timeout(Some(Duration::from_secs(60)))
        .unwrap();
    let mut child = env.spawn_with(&[], &[("NOTIFY_SOCKET", path.to_str().unwrap())], None);
    let mut buf = [0u8; 256];
    let n = listener.recv(&mut buf).expect("no READY=1 within 60 s");
    assert_eq!(&buf[..n], b"READY=1");
    // Ready means routing: a message is published at once.
    let port = port_of(&env);
    let fine = post_one(port, "fine");
    assert_eq!(wait_done(&env, port, &fine)["status"], "published");
    // A reload says so, and says when it is ready again.
    let out = env.gordon(&["ctl", "reload"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let n = listener.recv(&mut buf).expect("no RELOADING=1");
    assert_eq!(&buf[..n], b"RELOADING=1");
    let n = listener
        .recv(&mut buf)
        .expect("no READY=1 after the reload");
    assert_eq!(&buf[..n], b"READY=1");
    crate::util::signal(&child, libc::SIGTERM);
    let n = listener.recv(&mut buf).expect("no STOPPING=1");
    assert_eq!(&buf[..n], b"STOPPING=1");
    let status = crate::util::wait_exit(&mut child, Duration::from_secs(30));
    assert_eq!(status.code(), Some(0), "{}", env.log());
}

#[test]
fn the_systemd_unit_verifies() {
    let Some(analyze) = test_tool(
        &["/usr/bin/systemd-analyze", "/bin/systemd-analyze"],
        "systemd",
    ) else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let unit = std::fs::read_to_string(root().join("packaging/gordon.service")).unwrap();
    assert!(unit.contains("Type=notify"), "{unit}");
    // Verified against the binary the tests built (the unit names the installed
    // path).
    let unit = unit.replace("/usr/bin/gordon", &gordon_bin().display().to_string());
    let path = dir.path().join("gordon.service");
    std::fs::write(&path, unit).unwrap();
    let out = std::process::Command::new(analyze)
        .arg("verify")
        .arg(&path)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}{}",
        text(&out.stdout),
        text(&out.stderr)
    );
}

/// `gordon ctl top` in a real terminal (tmux): rates appear while events flow,
/// and `q` quits.
#[test]
fn ctl_top_shows_live_rates_and_quits_on_q() {
    let Some(tmux) = test_tool(&["/usr/bin/tmux", "/bin/tmux"], "tmux") else {
        return;
    };
    let env = fault_env("segv", "", "");
    let mut child = env.spawn(&[]);
    let port = port_of(&env);
    wait_for_socket(&env.path().join("gordon.sock"));
    let server = format!("gordon-test-{}", std::process::id());
    let tm = |args: &[&str]| {
        std::process::Command::new(&tmux)
            .args(["-L", &server])
            .args(args)
            .output()
            .unwrap()
    };
    let cmd = format!(
        "{} -c {} ctl top --interval 0.5",
        gordon_bin().display(),
        env.path().display()
    );
    let out = tm(&[
        "new-session",
        "-d",
        "-s",
        "top",
        "-x",
        "150",
        "-y",
        "40",
        &cmd,
    ]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    // Events flow while the view refreshes; a publish rate above zero shows up.
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    let mut screen;
    let mut n = 0;
    let seen = loop {
        for _ in 0..20 {
            post_one(port, &format!("fine{n}"));
            n += 1;
        }
        screen = text(&tm(&["capture-pane", "-p", "-t", "top"]).stdout);
        let rate = screen
            .lines()
            .find(|l| l.starts_with("publish") && l.contains("acme.fault"))
            .and_then(|l| l.split_whitespace().nth(2))
            .and_then(|r| r.parse::<f64>().ok());
        if rate.is_some_and(|r| r > 0.0) {
            break true;
        }
        if std::time::Instant::now() > deadline {
            break false;
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    assert!(seen, "no publish rate on the screen:\n{screen}");
    assert!(screen.contains("acme.fault [isolated]"), "{screen}");
    assert!(screen.contains("q quits"), "{screen}");
    tm(&["send-keys", "-t", "top", "q"]);
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while tm(&["has-session", "-t", "top"]).status.success() {
        assert!(
            std::time::Instant::now() < deadline,
            "`q` did not end ctl top:\n{}",
            text(&tm(&["capture-pane", "-p", "-t", "top"]).stdout)
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    tm(&["kill-server"]);
    assert_eq!(stop(&mut child).code(), Some(0), "{}", env.log());
}
