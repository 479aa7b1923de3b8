//! A library built with `panic = "abort"` cannot have its panics caught at the
//! boundary: its first panic ends the host. It is told from the file's symbols before
//! it is opened, and refused (`core.panic_abort = "refuse"`, the default) or loaded
//! with a warning (`"warn"`).

use crate::util::{fixture, panic_abort_fixture, refusal_for, sample, text, Env};

/// A configuration `gordon check` passes, given alpha and beta.
const GOOD: &str = "[core]\nplugins = [\"alpha.source\", \"alpha.enrich\", \"beta.publish\"]\n[\"alpha.enrich\"]\nsuffix = \".example\"\n";

const ABORT: &str = "built with panic = \"abort\": a panic in it would end the host";

fn warnings(list: &serde_json::Value) -> Vec<String> {
    list["warnings"]
        .as_array()
        .unwrap_or_else(|| panic!("no `warnings` in {list}"))
        .iter()
        .map(|w| {
            format!(
                "{}: {}",
                w["library"].as_str().unwrap_or(""),
                w["warning"].as_str().unwrap_or("")
            )
        })
        .collect()
}

#[test]
fn by_default_a_panic_abort_library_is_refused_naming_the_file() {
    let env = Env::new();
    env.install(&fixture("alpha"), "libalpha.so");
    env.install(&fixture("beta"), "libbeta.so");
    let lib = env.install(&panic_abort_fixture(), "libabort.so");
    env.config(GOOD);

    let out = env.gordon(&["check"]);
    let stdout = text(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{stdout}{}", text(&out.stderr));
    let line = stdout
        .lines()
        .find(|l| l.contains("libabort.so"))
        .unwrap_or_else(|| panic!("libabort.so not reported:\n{stdout}"));
    assert_eq!(
        line,
        format!(
            "error: refused {}: {ABORT}; rebuild with panic = \"unwind\" or set core.panic_abort = \"warn\"",
            lib.display()
        ),
        "{stdout}"
    );
    assert!(stdout.contains("1 error(s), 0 warning(s)"), "{stdout}");

    let list = env.list_json();
    let reason = refusal_for(&list, "libabort.so").unwrap_or_else(|| panic!("not refused: {list}"));
    assert!(
        reason.starts_with(ABORT) && reason.contains("core.panic_abort = \"warn\""),
        "{reason}"
    );
    assert!(!reason.contains('\n'), "{reason}");
    let names: Vec<&str> = list["plugins"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|p| p["name"].as_str())
        .collect();
    assert!(!names.contains(&"abort.handler"), "{list}");
    assert!(names.contains(&"alpha.source"), "{list}");
    assert_eq!(warnings(&list), Vec::<String>::new());
}

#[test]
fn with_warn_it_loads_runs_and_is_reported_as_a_warning() {
    let env = Env::new();
    env.install(&fixture("alpha"), "libalpha.so");
    env.install(&fixture("beta"), "libbeta.so");
    let lib = env.install(&panic_abort_fixture(), "libabort.so");
    env.config(&format!(
        "[core]\npanic_abort = \"warn\"\nplugins = [\"alpha.source\", \"abort.handler\", \"beta.publish\"]\n[\"alpha.source\"]\ncount = 20\nreport = \"{}\"\n",
        env.file("report.json")
    ));
    let warning = format!(
        "{}: {ABORT} (loaded because core.panic_abort = \"warn\")",
        lib.display()
    );

    let out = env.gordon(&["check"]);
    let stdout = text(&out.stdout);
    assert!(out.status.success(), "{stdout}{}", text(&out.stderr));
    assert!(
        stdout.contains(&format!("warning: {warning}\n")),
        "{stdout}"
    );
    assert!(stdout.contains("ok: abort.handler"), "{stdout}");
    assert!(stdout.contains("0 error(s), 1 warning(s)"), "{stdout}");

    let list = env.list_json();
    assert_eq!(warnings(&list), vec![warning.clone()]);
    assert_eq!(list["refused"].as_array().unwrap().len(), 0, "{list}");
    let handler = list["plugins"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == "abort.handler")
        .unwrap_or_else(|| panic!("abort.handler not listed: {list}"));
    assert!(handler["library"]
        .as_str()
        .unwrap()
        .ends_with("libabort.so"));

    // The service runs it (it does not panic), and logs the warning.
    let (out, report) = env.run_to_report();
    let stderr = text(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert_eq!(report["by_phase"]["cleanup"], 20, "{report}");
    let logged = stderr
        .lines()
        .find(|l| l.contains(&warning))
        .unwrap_or_else(|| panic!("warning not logged:\n{stderr}"));
    assert!(logged.contains("WARN"), "{logged}");
}

#[test]
fn an_unknown_panic_abort_value_is_a_config_error() {
    let env = Env::new();
    env.config("[core]\npanic_abort = \"ignore\"\n");
    let out = env.gordon(&["check"]);
    let stderr = text(&out.stderr);
    assert!(!out.status.success());
    assert!(
        stderr.contains("core.panic_abort") && stderr.contains("`refuse` or `warn`"),
        "{stderr}"
    );
}

/// No false positive: every library of this workspace is built with the default
/// `panic = "unwind"`, and none is refused or warned about for it.
#[test]
fn unwind_libraries_are_not_flagged() {
    let env = Env::new();
    env.install(&fixture("alpha"), "libalpha.so");
    env.install(&fixture("beta"), "libbeta.so");
    env.config(GOOD);
    let out = env.gordon(&["check"]);
    let stdout = text(&out.stdout);
    assert!(out.status.success(), "{stdout}");
    assert!(stdout.contains("0 error(s), 0 warning(s)"), "{stdout}");

    for name in ["gamma", "ctor-panic"] {
        env.install(&fixture(name), &format!("libfixture-{name}.so"));
    }
    for name in ["http", "dns", "nats", "rfc2136", "inventory"] {
        env.install(&sample(name), &format!("libsample-{name}.so"));
    }
    let list = env.list_json();
    assert_eq!(warnings(&list), Vec::<String>::new());
    let refused = list["refused"].as_array().unwrap();
    // Only the fixture made to fail, and for its own reason.
    assert_eq!(refused.len(), 1, "{list}");
    let reason = refusal_for(&list, "libfixture-ctor-panic.so").unwrap_or_default();
    assert!(
        reason.contains("root module constructor panicked"),
        "{reason}"
    );
}
