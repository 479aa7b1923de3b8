use crate::util::{fixture, text, Env};

#[test]
fn a_panic_in_a_plugin_call_leaves_the_host_alive() {
    let env = Env::new();
    env.install(&fixture("alpha"), "libalpha.so");
    env.install(&fixture("beta"), "libbeta.so");
    env.config(
        "[core]\nplugins = [\"beta.publish\", \"alpha.enrich\"]\n[\"beta.publish\"]\npanic_in = \"validate\"\n[\"alpha.enrich\"]\nsuffix = \".x\"\n",
    );
    let out = env.gordon(&["check"]);
    let stdout = text(&out.stdout);
    // The host went on to check the next plugin and exited normally with a verdict.
    assert_eq!(out.status.code(), Some(1), "{stdout}{}", text(&out.stderr));
    assert!(
        stdout.contains("panicked in validate_config: fixture panic in validate_config"),
        "{stdout}"
    );
    assert!(stdout.contains("ok: alpha.enrich"), "{stdout}");
    // The panic is reported through the host's log with the plugin's name, not as a
    // raw backtrace.
    let stderr = text(&out.stderr);
    assert!(stderr.contains("plugin=\"beta.publish\""), "{stderr}");
}

#[test]
fn plugin_logs_reach_the_host_log_with_the_plugin_name() {
    let env = Env::new();
    env.install(&fixture("alpha"), "libalpha.so");
    env.config(
        "[core]\nplugins = [\"alpha.source\", \"alpha.probe\"]\n[core.route]\nconsume = \"probe\"\n[\"alpha.probe\"]\nlog = \"probe says hello\"\n",
    );
    let out = env.gordon(&["check"]);
    assert!(out.status.success());
    let stderr = text(&out.stderr);
    let line = stderr
        .lines()
        .find(|l| l.contains("probe says hello"))
        .expect(&stderr);
    assert!(
        line.contains("WARN") && line.contains("plugin=\"alpha.probe\""),
        "{line}"
    );
}

#[test]
fn check_passes_on_a_good_setup() {
    let env = Env::new();
    env.install(&fixture("alpha"), "libalpha.so");
    env.config("[core]\nplugins = [\"alpha.source\", \"alpha.enrich\"]\n[core.route]\nconsume = \"enrich\"\nenrich = \"cleanup\"\n[\"alpha.enrich\"]\nsuffix = \".example\"\n");
    let out = env.gordon(&["check"]);
    let stdout = text(&out.stdout);
    assert!(out.status.success(), "{stdout}");
    assert!(
        stdout.contains("ok: alpha.source") && stdout.contains("ok: alpha.enrich"),
        "{stdout}"
    );
    assert!(stdout.contains("0 error(s)"), "{stdout}");
}
