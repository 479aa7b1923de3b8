//! The edges other tools touch: the original producers' timestamps, SIGHUP from
//! `systemctl reload`, strftime date formats, and a syslog daemon that restarts.

use std::os::unix::net::UnixDatagram;
use std::time::Duration;

use crate::util::{http, signal, text, wait_exit, wait_for_file, wait_for_text, Env};

/// http.events -> dns.enricher -> dns.zonefile, running; returns the HTTP port.
fn running_dns(env: &Env) -> (std::process::Child, u16) {
    let child = env.spawn(&[]);
    let port = wait_for_file(&env.path().join("port"), Duration::from_secs(30))
        .trim()
        .parse()
        .unwrap();
    (child, port)
}

fn event_at(timestamp: &str) -> String {
    format!(
        r#"{{"action":"additions","timestamp":"{timestamp}","resourceRecords":{{"name":"ts","type":"A","rrdatas":["10.0.0.7"]}}}}"#
    )
}

#[test]
fn the_original_janitors_timestamps_are_accepted_and_impossible_dates_refused() {
    let env = crate::e2e::dns_env();
    let (mut child, port) = running_dns(&env);
    // gordon-janitor stamped datetime.utcnow().isoformat(): UTC, no zone, microseconds.
    let now = std::process::Command::new("date")
        .args(["-u", "+%Y-%m-%dT%H:%M:%S.%6N"])
        .output()
        .unwrap();
    let utc_now = text(&now.stdout).trim().to_owned();
    let (status, doc) = http(port, "POST", "/events", &event_at(&utc_now));
    assert_eq!(status, 202, "{utc_now}: {doc}");
    for impossible in [
        "2026-02-31T10:00:00",
        "2026-02-31T10:00:00Z",
        "2026-13-01T00:00:00",
    ] {
        let (status, doc) = http(port, "POST", "/events", &event_at(impossible));
        assert_eq!(status, 400, "{impossible} was accepted: {doc}");
        assert!(doc.to_string().contains("timestamp"), "{doc}");
    }
    signal(&child, libc::SIGTERM);
    assert!(wait_exit(&mut child, Duration::from_secs(30)).success());
}

#[test]
fn sighup_reloads_and_never_stops_the_host() {
    let env = crate::e2e::dns_env();
    let (mut child, port) = running_dns(&env);
    // A SIGHUP that arrives while the host is still starting is ignored without a
    // log line; repeat it until the running host says it reloaded (nothing
    // changed, so nothing is touched).
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while !env.log().contains("Configuration reloaded (SIGHUP).") {
        assert!(std::time::Instant::now() < deadline, "{}", env.log());
        signal(&child, libc::SIGHUP);
        std::thread::sleep(Duration::from_millis(50));
    }
    // Still serving, and still stopping cleanly on SIGTERM.
    let (status, _) = http(port, "GET", "/healthz", "");
    assert_eq!(status, 200);
    signal(&child, libc::SIGHUP);
    let (status, _) = http(port, "POST", "/events", &event_at("2030-01-01T00:00:00Z"));
    assert_eq!(status, 202);
    signal(&child, libc::SIGTERM);
    let status = wait_exit(&mut child, Duration::from_secs(30));
    assert!(status.success(), "{status:?}\n{}", env.log());
}

#[test]
fn date_fmt_takes_every_strftime_code_and_refuses_unknown_ones() {
    let env = crate::e2e::dns_env();
    let config = std::fs::read_to_string(env.path().join("gordon.toml")).unwrap();
    let with_fmt = |fmt: &str| format!("{config}\n[core.logging]\ndate_fmt = \"{fmt}\"\n");
    // Weekday, month name, day and day of year: codes the old subset printed
    // literally.
    env.config(&with_fmt("%a %b %e %j|"));
    let (mut child, _port) = running_dns(&env);
    let log = wait_for_text(
        &env.path().join("stderr.log"),
        "Gordon is running",
        Duration::from_secs(30),
    );
    signal(&child, libc::SIGTERM);
    assert!(wait_exit(&mut child, Duration::from_secs(30)).success());
    let line = log
        .lines()
        .find(|l| l.contains("Gordon is running"))
        .unwrap();
    let stamp = line.split('|').next().unwrap();
    assert!(!stamp.contains('%'), "{line}");
    assert_eq!(stamp.split_whitespace().count(), 4, "{line}");
    env.config(&with_fmt("%Y %Q"));
    let out = env.gordon(&["check"]);
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("`core.logging.date_fmt`"), "{stderr}");
}

#[test]
fn syslog_reconnects_after_the_log_daemon_restarts() {
    let env = crate::e2e::dns_env();
    let socket = env.path().join("syslog.sock");
    let daemon = UnixDatagram::bind(&socket).unwrap();
    daemon
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let config = std::fs::read_to_string(env.path().join("gordon.toml")).unwrap();
    env.config(&format!(
        "{config}\n[core.logging]\nhandlers = [\"stream\", \"syslog\"]\naddress = [\"{}\"]\n",
        socket.display()
    ));
    let (mut child, _port) = running_dns(&env);
    let mut buf = [0u8; 8192];
    let n = daemon.recv(&mut buf).unwrap();
    assert!(
        String::from_utf8_lossy(&buf[..n]).starts_with("<"),
        "not syslog"
    );
    // The daemon restarts: its socket file is replaced by a new one.
    drop(daemon);
    std::fs::remove_file(&socket).unwrap();
    let daemon = UnixDatagram::bind(&socket).unwrap();
    daemon
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    // Each SIGHUP makes a log line; the first may be lost while the host notices.
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    let got = loop {
        signal(&child, libc::SIGHUP);
        daemon
            .set_read_timeout(Some(Duration::from_millis(300)))
            .unwrap();
        if let Ok(n) = daemon.recv(&mut buf) {
            break String::from_utf8_lossy(&buf[..n]).into_owned();
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no syslog line after the restart:\n{}",
            env.log()
        );
    };
    // Whatever the line is, it reached the new socket: the host reconnected.
    assert!(got.starts_with('<') && got.contains("gordon["), "{got}");
    signal(&child, libc::SIGTERM);
    assert!(wait_exit(&mut child, Duration::from_secs(30)).success());
}
