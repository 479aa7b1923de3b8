use crate::util::{api_version, drifted_fixture, fixture, refusal_for, set_mode, text, Drift, Env};

const ALL_ACTIVE: &str = "[core]\nplugins = []\n";

#[test]
fn several_libraries_with_several_plugins_are_listed() {
    let env = Env::new();
    env.config("[core]\nplugins = [\"alpha.enrich\"]\n");
    env.install(&fixture("alpha"), "libalpha.so");
    env.install(&fixture("beta"), "libbeta.so");
    let list = env.list_json();
    let plugins = list["plugins"].as_array().unwrap();
    let mut names: Vec<&str> = plugins
        .iter()
        .map(|p| p["name"].as_str().unwrap())
        .collect();
    names.sort();
    assert_eq!(
        names,
        [
            "alpha.enrich",
            "alpha.probe",
            "alpha.source",
            "beta.publish",
            "beta.relay"
        ]
    );
    let source = plugins
        .iter()
        .find(|p| p["name"] == "alpha.source")
        .unwrap();
    assert_eq!(source["kind"], "runnable");
    assert_eq!(source["phase"], "consume");
    assert_eq!(source["api_version"], api_version().as_str());
    assert!(source["library"]
        .as_str()
        .unwrap()
        .ends_with("plugins.d/libalpha.so"));
    let relay = plugins.iter().find(|p| p["name"] == "beta.relay").unwrap();
    assert_eq!(relay["kind"], "metric_relay");
    let enrich = plugins
        .iter()
        .find(|p| p["name"] == "alpha.enrich")
        .unwrap();
    assert_eq!(enrich["active"], true);
    assert_eq!(list["refused"].as_array().unwrap().len(), 0);
}

#[test]
fn table_output_names_kind_phase_and_library() {
    let env = Env::new();
    env.config(ALL_ACTIVE);
    env.install(&fixture("beta"), "libbeta.so");
    let out = env.gordon(&["plugins", "list"]);
    let stdout = text(&out.stdout);
    let line = stdout
        .lines()
        .find(|l| l.starts_with("beta.publish"))
        .expect(&stdout);
    for field in [
        "message_handler",
        "publish",
        "0.3.0",
        &api_version(),
        "libbeta.so",
    ] {
        assert!(line.contains(field), "{line}");
    }
}

/// Each refusal case, with the text the operator sees.
#[test]
fn every_bad_library_is_refused_with_a_one_line_reason() {
    let env = Env::new();
    env.config(ALL_ACTIVE);
    env.install(&fixture("alpha"), "libgood.so");
    env.install_bytes(b"#!/bin/sh\necho I am a script\n", "libscript.so");
    let real = std::fs::read(fixture("beta")).unwrap();
    env.install_bytes(&real[..real.len() / 2], "libtruncated.so");
    env.install(&fixture("not-a-plugin"), "libnotaplugin.so");
    env.install(&fixture("ctor-panic"), "libctorpanic.so");
    let writable = env.install(&fixture("beta"), "libwritable.so");
    set_mode(&writable, 0o666);
    env.install(&drifted_fixture(Drift::Major), "libmajor.so");
    env.install(&drifted_fixture(Drift::Layout), "liblayout.so");

    let list = env.list_json();
    let (v, major2) = (api_version(), format!("2.{}", &api_version()[2..]));
    let major_msg = format!(
        "built against plugin-api {major2}; this host supports plugin-api 1.x (it has {v})"
    );
    let layout_msg = format!("type layout mismatch with this host's plugin-api {v}");
    let expect = [
        ("libscript.so", "not a shared object: no ELF or Mach-O header"),
        ("libtruncated.so", "truncated or corrupt shared object"),
        ("libnotaplugin.so", "no gordon root module (symbol `_1as_0lib_1header_0root_bmodule_bloader` is not exported)"),
        ("libctorpanic.so", "root module constructor panicked: fixture constructor exploded"),
        ("libwritable.so", "is writable by group or others (mode 0666)"),
        ("libmajor.so", major_msg.as_str()),
        ("liblayout.so", layout_msg.as_str()),
    ];
    for (file, needle) in expect {
        let reason =
            refusal_for(&list, file).unwrap_or_else(|| panic!("{file} not refused: {list}"));
        assert!(reason.contains(needle), "{file}: {reason}");
        assert!(
            !reason.contains('\n'),
            "{file}: reason is not one line: {reason}"
        );
    }
    // The good library still loads next to all of them.
    let names: Vec<&str> = list["plugins"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["name"].as_str().unwrap())
        .collect();
    assert!(names.contains(&"alpha.source"), "{names:?}");
    assert!(
        !names.contains(&"drift.handler"),
        "a drifted plugin was loaded: {names:?}"
    );
}

#[test]
fn layout_mismatch_names_the_type_and_keeps_the_dump_for_verbose() {
    let env = Env::new();
    env.config(ALL_ACTIVE);
    env.install(&drifted_fixture(Drift::Layout), "liblayout.so");
    let list = env.list_json();
    let reason = refusal_for(&list, "liblayout.so").unwrap();
    assert!(reason.contains("ResourceRecord"), "{reason}");
    assert!(reason.len() < 400, "summary too long: {reason}");
    let out = env.gordon(&["--verbose", "plugins", "list"]);
    let stdout = text(&out.stdout);
    assert!(
        stdout.len() > reason.len() + 1000,
        "no full report with --verbose:\n{stdout}"
    );
}

#[test]
fn world_writable_plugin_directory_is_refused() {
    let env = Env::new();
    env.config(ALL_ACTIVE);
    env.install(&fixture("alpha"), "libalpha.so");
    set_mode(&env.plugins_d(), 0o777);
    let list = env.list_json();
    assert_eq!(list["plugins"].as_array().unwrap().len(), 0);
    let refused = list["refused"].as_array().unwrap();
    assert_eq!(refused.len(), 1, "{list}");
    assert!(
        refused[0]["reason"].as_str().unwrap().contains("directory"),
        "{list}"
    );
    set_mode(&env.plugins_d(), 0o755);
}

#[test]
fn duplicate_plugin_names_are_an_error_naming_both_files() {
    let env = Env::new();
    env.config("[core]\nplugins = [\"alpha.enrich\"]\n[\"alpha\"]\nsuffix = \"x\"\n");
    env.install(&fixture("alpha"), "libone.so");
    env.install(&fixture("alpha"), "libtwo.so");
    let out = env.gordon(&["check"]);
    assert_eq!(out.status.code(), Some(1));
    let stdout = text(&out.stdout);
    assert!(
        stdout.contains("`alpha.enrich` is exported by more than one library")
            && stdout.contains("libone.so")
            && stdout.contains("libtwo.so"),
        "{stdout}"
    );
}

#[test]
fn a_listed_plugin_no_library_provides_is_an_error() {
    let env = Env::new();
    env.config("[core]\nplugins = [\"nope.missing\"]\n");
    env.install(&fixture("beta"), "libbeta.so");
    let out = env.gordon(&["check"]);
    assert_eq!(out.status.code(), Some(1));
    let stdout = text(&out.stdout);
    assert!(
        stdout.contains("`nope.missing` is listed in core.plugins but no library provides it"),
        "{stdout}"
    );
    assert!(stdout.contains("plugins.d"), "{stdout}");
}

#[test]
fn debug_mode_turns_refusals_into_warnings() {
    let env = Env::new();
    env.install(&fixture("alpha"), "libalpha.so");
    env.install(&fixture("beta"), "libbeta.so");
    env.install_bytes(b"garbage", "libbad.so");
    env.config("[core]\nplugins = [\"alpha.source\", \"beta.publish\"]\ndebug = false\n[core.route]\nconsume = \"publish\"\n");
    let strict = env.gordon(&["check"]);
    assert_eq!(strict.status.code(), Some(1), "{}", text(&strict.stdout));
    assert!(
        text(&strict.stdout).contains("error: refused"),
        "{}",
        text(&strict.stdout)
    );

    env.user_config("[core]\ndebug = true\n");
    let lenient = env.gordon(&["check"]);
    let stdout = text(&lenient.stdout);
    assert_eq!(lenient.status.code(), Some(0), "{stdout}");
    assert!(
        stdout.contains("warning: refused") && stdout.contains("libbad.so"),
        "{stdout}"
    );
    assert!(stdout.contains("ok: beta.publish"), "{stdout}");
}

fn released_plugin_loads_and_runs(drift: Drift, api: &str) {
    let env = Env::new();
    env.install(&drifted_fixture(drift), "libold.so");
    env.install(&fixture("alpha"), "libalpha.so");
    env.config(&format!(
        "[core]\nplugins = [\"alpha.source\", \"drift.handler\"]\n[core.route]\nconsume = \"enrich\"\n[\"alpha.source\"]\ncount = 50\nreport = \"{}\"\n",
        env.file("report.json")
    ));
    let list = env.list_json();
    let old = list["plugins"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == "drift.handler")
        .unwrap_or_else(|| panic!("{list}"));
    assert_eq!(old["api_version"], api);
    let (out, report) = env.run_to_report();
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(report["by_phase"]["cleanup"], 50, "{report}");
}

#[test]
fn a_plugin_built_against_released_1_0_still_loads_and_runs() {
    released_plugin_loads_and_runs(Drift::Released1_0, "1.0.0");
}

#[test]
fn a_plugin_built_against_released_1_1_still_loads_and_runs() {
    released_plugin_loads_and_runs(Drift::Released1_1, "1.1.0");
}

#[test]
fn a_plugin_built_against_released_1_2_still_loads_and_runs() {
    released_plugin_loads_and_runs(Drift::Released1_2, "1.2.0");
}

fn sha256(path: &std::path::Path) -> String {
    let out = std::process::Command::new("sha256sum")
        .arg(path)
        .output()
        .unwrap();
    format!(
        "sha256:{}",
        text(&out.stdout).split_whitespace().next().unwrap()
    )
}

#[test]
fn pinned_hashes_are_enforced_before_loading() {
    let env = Env::new();
    let good = env.install(&fixture("alpha"), "libalpha.so");
    let other = env.install(&fixture("beta"), "libbeta.so");
    let pin = sha256(&good);
    let mut wrong = sha256(&other);
    wrong.replace_range(10..11, if &wrong[10..11] == "0" { "1" } else { "0" });
    env.config(&format!(
        "[core]\nplugins = []\n[core.plugin_pins]\n\"libalpha.so\" = \"{pin}\"\n\"libbeta.so\" = \"{wrong}\"\n"
    ));
    let list = env.list_json();
    let names: Vec<&str> = list["plugins"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["name"].as_str().unwrap())
        .collect();
    assert!(names.contains(&"alpha.source"), "{list}");
    let reason = refusal_for(&list, "libbeta.so").unwrap_or_else(|| panic!("{list}"));
    assert!(
        reason.contains(&format!(
            "sha256 is {}, but core.plugin_pins pins {wrong}",
            sha256(&other)
        )),
        "{reason}"
    );

    env.config(&format!("[core]\nplugins = []\nrequire_pins = true\n[core.plugin_pins]\n\"libalpha.so\" = \"{pin}\"\n"));
    let list = env.list_json();
    let reason = refusal_for(&list, "libbeta.so").unwrap_or_else(|| panic!("{list}"));
    assert!(
        reason.contains("not pinned in core.plugin_pins") && reason.contains(&sha256(&other)),
        "{reason}"
    );
}

#[test]
fn a_malformed_pin_is_a_config_error_naming_the_key() {
    let env = Env::new();
    env.config("[core]\n[core.plugin_pins]\n\"libalpha.so\" = \"md5:1234\"\n");
    let out = env.gordon(&["check"]);
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("`core.plugin_pins.libalpha.so`"),
        "{stderr}"
    );
}

#[test]
fn version_names_the_plugin_api_and_the_libraries_it_loads() {
    let manifest =
        std::fs::read_to_string(crate::util::root().join("plugin-api/Cargo.toml")).unwrap();
    let api = manifest
        .lines()
        .find_map(|l| l.strip_prefix("version = \""))
        .and_then(|v| v.strip_suffix('"'))
        .unwrap();
    let out = std::process::Command::new(crate::util::gordon_bin())
        .arg("--version")
        .output()
        .unwrap();
    assert!(out.status.success());
    let text = text(&out.stdout);
    let minor = api.split('.').nth(1).unwrap();
    assert!(text.starts_with("gordon "), "{text}");
    assert!(
        text.contains(&format!(
            "plugin-api {api}: loads plugin libraries built against plugin-api 1.0 up to 1.{minor}"
        )),
        "{text}"
    );
}

#[test]
fn completions_and_the_man_page_come_from_the_command_line() {
    let run = |args: &[&str]| {
        let out = std::process::Command::new(crate::util::gordon_bin())
            .args(args)
            .output()
            .unwrap();
        assert!(out.status.success(), "{args:?}: {}", text(&out.stderr));
        text(&out.stdout)
    };
    let bash = run(&["completions", "bash"]);
    let script =
        std::env::temp_dir().join(format!("gordon-completion-{}.bash", std::process::id()));
    std::fs::write(&script, &bash).unwrap();
    let checked = std::process::Command::new("bash")
        .arg("-n")
        .arg(&script)
        .output()
        .unwrap();
    let _ = std::fs::remove_file(&script);
    assert!(
        checked.status.success(),
        "bash -n: {}",
        text(&checked.stderr)
    );
    assert!(
        bash.contains("report") && bash.contains("ctl"),
        "every command completes"
    );
    let man = run(&["manpage"]);
    assert!(man.contains(".TH gordon 1"), "{man}");
    for command in ["run", "check", "report", "ctl", "janitor", "plugins"] {
        assert!(man.contains(command), "the man page lists `{command}`");
    }
}

#[test]
fn plugins_add_info_and_rm_install_inspect_and_remove_a_library() {
    let env = Env::new();
    env.config("[core]\nplugins = []\n");
    let lib = fixture("alpha");
    // A library that does not pass discovery's checks is refused, and nothing is copied.
    let garbage = env.path().join("libgarbage.so");
    std::fs::write(&garbage, b"not a library").unwrap();
    let out = env.gordon(&["plugins", "add", garbage.to_str().unwrap()]);
    assert!(!out.status.success());
    assert!(
        text(&out.stderr).contains("not a shared object"),
        "{}",
        text(&out.stderr)
    );
    assert!(!env.path().join("plugins.d/libgarbage.so").exists());

    let out = env.gordon(&["plugins", "add", lib.to_str().unwrap()]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let installed = env.path().join("plugins.d").join(lib.file_name().unwrap());
    let mode = std::os::unix::fs::PermissionsExt::mode(
        &std::fs::metadata(&installed).unwrap().permissions(),
    ) & 0o777;
    assert_eq!(mode, 0o644);
    let pin = sha256(&installed);
    assert!(
        text(&out.stdout).contains(&format!("= \"{pin}\"")),
        "{}",
        text(&out.stdout)
    );
    let again = env.gordon(&["plugins", "add", lib.to_str().unwrap()]);
    assert!(
        text(&again.stderr).contains("exists"),
        "{}",
        text(&again.stderr)
    );

    let out = env.gordon(&["plugins", "info", "alpha.source", "--json"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(doc["kind"], "runnable", "{doc}");
    assert_eq!(doc["active"], false, "{doc}");
    env.install(&crate::util::vendor_fixture(), "libacme.so");
    let out = env.gordon(&["plugins", "info", "acme.live"]);
    assert!(
        text(&out.stdout).contains("action:      leave reason=string"),
        "{}",
        text(&out.stdout)
    );
    let missing = env.gordon(&["plugins", "info", "nope.nothing"]);
    assert!(
        text(&missing.stderr).contains("no plugin `nope.nothing`"),
        "{}",
        text(&missing.stderr)
    );

    // Removing refuses while a plugin of the library is active.
    env.config("[core]\nplugins = [\"alpha.source\"]\n");
    let out = env.gordon(&["plugins", "rm", "alpha.source"]);
    assert!(
        text(&out.stderr).contains("listed in core.plugins"),
        "{}",
        text(&out.stderr)
    );
    assert!(installed.exists());
    env.config("[core]\nplugins = []\n");
    let out = env.gordon(&["plugins", "rm", "alpha.source"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(!installed.exists());
}

#[test]
fn a_library_that_needs_a_newer_glibc_is_refused_naming_both_versions() {
    let env = Env::new();
    env.config("[core]\nplugins = []\n");
    // A build from a "newer system": every glibc version it names, 2.x, made 9.x
    // (the names live in the dynamic string table, read before loading).
    let mut bytes = std::fs::read(fixture("alpha")).unwrap();
    let (from, to) = (b"GLIBC_2.", b"GLIBC_9.");
    let mut patched = 0;
    let mut i = 0;
    while let Some(at) = bytes[i..].windows(from.len()).position(|w| w == from) {
        bytes[i + at..i + at + to.len()].copy_from_slice(to);
        patched += 1;
        i += at + from.len();
    }
    assert!(patched > 0, "the fixture names no glibc version");
    env.install_bytes(&bytes, "libnewer.so");
    let list = env.list_json();
    let refusal = refusal_for(&list, "libnewer.so").unwrap_or_else(|| panic!("loaded: {list}"));
    assert!(
        refusal.contains("needs glibc 9.") && refusal.contains("this system has glibc 2."),
        "{refusal}"
    );
}
