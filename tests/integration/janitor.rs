use std::time::{Duration, Instant};

use crate::util::{fixture, text, Env};

pub(crate) fn janitor_env(extra: &str) -> Env {
    let env = Env::new();
    env.install(&fixture("gamma"), "libgamma.so");
    env.install(&fixture("beta"), "libbeta.so");
    env.janitor_config(&format!(
        r#"[core]
plugins = ["gamma.authority", "gamma.reconciler", "gamma.publisher"]
run_timeout = 20
["gamma.authority".zones]
"example.com." = ["www.example.com. A 10.0.0.1", "api.example.com. A 10.0.0.2"]
["gamma.reconciler".actual]
"example.com." = ["www.example.com. A 10.0.0.1", "old.example.com. A 10.0.0.9"]
["gamma.publisher"]
out = "{}"
{extra}
"#,
        env.file("published.jsonl")
    ));
    env
}

/// The corrections the publisher wrote, one JSON line each; a line still being
/// written (a running `--interval` janitor) is not one yet.
fn published(env: &Env) -> Vec<serde_json::Value> {
    let text = std::fs::read_to_string(env.path().join("published.jsonl")).unwrap_or_default();
    let complete = text.rfind('\n').map_or("", |end| &text[..end]);
    complete
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

/// What the publisher wrote, as `action name` lines.
pub(crate) fn published_summary(env: &Env) -> Vec<String> {
    published(env)
        .iter()
        .map(|c| {
            format!(
                "{} {}",
                c["action"].as_str().unwrap(),
                c["resourceRecords"]["name"].as_str().unwrap()
            )
        })
        .collect()
}

#[test]
fn a_run_publishes_deletions_then_additions() {
    let env = janitor_env("");
    let out = env.gordon(&["janitor", "--once"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(
        published_summary(&env),
        ["deletions old.example.com.", "additions api.example.com."]
    );
    assert!(
        text(&out.stderr).contains("Janitor run ended."),
        "{}",
        text(&out.stderr)
    );
}

#[test]
fn dry_run_prints_the_plan_and_changes_nothing() {
    let env = janitor_env("");
    let out = env.gordon(&["janitor", "--dry-run"]);
    let stdout = text(&out.stdout);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(
        stdout.contains("zone example.com.: 1 addition(s), 1 deletion(s)"),
        "{stdout}"
    );
    assert!(
        stdout.contains("-  old.example.com.  A  300  10.0.0.9"),
        "{stdout}"
    );
    assert!(
        stdout.contains("+  api.example.com.  A  300  10.0.0.2"),
        "{stdout}"
    );
    assert!(published(&env).is_empty(), "a dry run published");
}

#[test]
fn a_failing_authority_fails_the_run_by_name_and_deletes_nothing() {
    let env = janitor_env("");
    env.user_config("");
    std::fs::write(
        env.path().join("gordon-janitor-user.toml"),
        "[\"gamma.authority\"]\nfail = \"inventory unreadable\"\n",
    )
    .unwrap();
    let out = env.gordon(&["janitor"]);
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("plugin `gamma.authority` failed: inventory unreadable"),
        "{stderr}"
    );
    assert!(
        published(&env).is_empty(),
        "changes were published after the authority failed"
    );
    assert!(
        stderr.contains("run-ended") || stderr.contains("Janitor run failed."),
        "{stderr}"
    );
}

#[test]
fn a_hanging_plugin_is_named_and_the_run_ends() {
    let env = janitor_env("");
    std::fs::write(
        env.path().join("gordon-janitor-user.toml"),
        "[core]\nrun_timeout = 1\n[\"gamma.reconciler\"]\nhang = true\n",
    )
    .unwrap();
    let started = Instant::now();
    let out = env.gordon(&["janitor"]);
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        started.elapsed() < Duration::from_secs(15),
        "the run did not end at its timeout"
    );
    assert!(
        stderr.contains("plugin `gamma.reconciler` did not finish within 1 s"),
        "{stderr}"
    );
}

#[test]
fn a_missing_plugin_ends_the_run_even_in_debug_mode() {
    let env = janitor_env("");
    std::fs::write(
        env.path().join("gordon-janitor-user.toml"),
        "[core]\ndebug = true\nplugins = [\"gamma.authority\", \"gamma.reconciler\", \"nats.publisher\"]\n",
    )
    .unwrap();
    let started = Instant::now();
    let out = env.gordon(&["janitor"]);
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(started.elapsed() < Duration::from_secs(15));
    assert!(stderr.contains("nats.publisher"), "{stderr}");
}

#[test]
fn the_run_ended_metric_carries_status_and_counts() {
    let env = janitor_env(&format!("[\"beta.relay\"]\nreport = \"{}\"\n", "RELAY"));
    let cfg = std::fs::read_to_string(env.path().join("gordon-janitor.toml"))
        .unwrap()
        .replace("RELAY", &env.file("relay.json"))
        .replace(
            "plugins = [\"gamma.authority\", \"gamma.reconciler\", \"gamma.publisher\"]",
            "plugins = [\"gamma.authority\", \"gamma.reconciler\", \"gamma.publisher\", \"beta.relay\"]\nmetrics = \"beta.relay\"",
        );
    env.janitor_config(&cfg);
    let out = env.gordon(&["janitor"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let relay = std::fs::read_to_string(env.path().join("relay.json")).unwrap_or_default();
    assert!(relay.contains("gordon.janitor.run-ended"), "{relay}");
}

#[test]
fn interval_runs_repeat_until_a_signal() {
    let env = janitor_env("");
    let mut child = env.spawn(&["janitor", "--interval", "0.1"]);
    // Each run publishes the same two corrections (the fixture's "actual" never
    // changes): wait for three runs' worth.
    let deadline = Instant::now() + Duration::from_secs(30);
    while published(&env).len() < 6 {
        assert!(
            Instant::now() < deadline,
            "runs did not repeat:\n{}",
            env.log()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    crate::util::signal(&child, libc::SIGTERM);
    let status = crate::util::wait_exit(&mut child, Duration::from_secs(30));
    assert!(status.success(), "{status:?}\n{}", env.log());
}

#[test]
fn interval_mode_reloads_on_sighup_and_refuses_an_invalid_configuration() {
    let env = janitor_env("");
    let mut child = env.spawn(&["janitor", "--interval", "0.2"]);
    let wait_for = |what: &str, done: &dyn Fn() -> bool| {
        let deadline = Instant::now() + Duration::from_secs(30);
        while !done() {
            assert!(Instant::now() < deadline, "{what}:\n{}", env.log());
            std::thread::sleep(Duration::from_millis(20));
        }
    };
    wait_for("a first run", &|| !published(&env).is_empty());
    // An invalid configuration is refused; the runs go on as they were.
    std::fs::write(
        env.path().join("gordon-janitor-user.toml"),
        "[core]\nrun_timeout = \"soon\"\n",
    )
    .unwrap();
    crate::util::signal(&child, libc::SIGHUP);
    wait_for("the refusal", &|| {
        env.log().contains("Reload refused (SIGHUP)")
    });
    assert!(env.log().contains("run_timeout"), "{}", env.log());
    let before = published(&env).len();
    wait_for("runs after the refusal", &|| {
        published(&env).len() > before + 2
    });
    // A valid one: the authority now holds one more name, and the next runs add it.
    std::fs::write(
        env.path().join("gordon-janitor-user.toml"),
        "[\"gamma.authority\".zones]\n\"example.com.\" = [\"www.example.com. A 10.0.0.1\", \"api.example.com. A 10.0.0.2\", \"new.example.com. A 10.0.0.3\"]\n",
    )
    .unwrap();
    crate::util::signal(&child, libc::SIGHUP);
    wait_for("the reload", &|| {
        env.log()
            .contains("Configuration reloaded (SIGHUP); the next run uses it.")
    });
    wait_for("the new name published", &|| {
        published_summary(&env)
            .iter()
            .any(|l| l.contains("new.example.com."))
    });
    crate::util::signal(&child, libc::SIGTERM);
    let status = crate::util::wait_exit(&mut child, Duration::from_secs(30));
    assert!(status.success(), "{status:?}\n{}", env.log());
}
