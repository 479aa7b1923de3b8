//! Configuration errors in plugin tables name the file, the table and the key.

use crate::util::{fixture, text, Env};

fn alpha_env() -> Env {
    let env = Env::new();
    env.install(&fixture("alpha"), "libalpha.so");
    env
}

/// `gordon check`'s output, asserting it failed on plugin problems (exit 1).
fn check_fails(env: &Env) -> String {
    let out = env.gordon(&["check"]);
    let stdout = text(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{stdout}{}", text(&out.stderr));
    stdout
}

/// The one `error:` line about `plugin`.
fn error_about(stdout: &str, plugin: &str) -> String {
    let lines: Vec<&str> = stdout
        .lines()
        .filter(|l| l.starts_with("error: ") && l.contains(&format!("plugin `{plugin}`")))
        .collect();
    assert_eq!(lines.len(), 1, "{stdout}");
    lines[0].to_owned()
}

#[test]
fn a_wrong_type_in_the_user_files_package_table_names_that_file_table_and_key() {
    let env = alpha_env();
    env.config("[core]\nplugins = [\"alpha.enrich\"]\n");
    env.user_config("[\"alpha\"]\nsuffix = 5\n");
    let line = error_about(&check_fails(&env), "alpha.enrich");
    let expected = format!(
        "{}: [\"alpha\"] suffix: invalid type: integer `5`, expected a string",
        env.file("gordon-user.toml")
    );
    assert!(line.ends_with(&expected), "{line}\nexpected: {expected}");
}

#[test]
fn an_unknown_key_in_the_main_file_is_not_blamed_on_the_user_file() {
    let env = alpha_env();
    env.config("[core]\nplugins = [\"alpha.enrich\"]\n[\"alpha.enrich\"]\nsuffix = \".a\"\nsufix = \".b\"\n");
    env.user_config("[\"alpha.enrich\"]\nsuffix = \".c\"\n");
    let line = error_about(&check_fails(&env), "alpha.enrich");
    let expected = format!(
        "{}: [\"alpha.enrich\"] sufix: unknown field `sufix`, expected `suffix`",
        env.file("gordon.toml")
    );
    assert!(line.ends_with(&expected), "{line}\nexpected: {expected}");
}

#[test]
fn the_plugins_own_table_wins_over_the_package_table_in_errors_too() {
    let env = alpha_env();
    // The main file's own table beats the user file's package table.
    env.config("[core]\nplugins = [\"alpha.enrich\"]\n[\"alpha.enrich\"]\nsuffix = 5\n");
    env.user_config("[\"alpha\"]\nsuffix = \".ok\"\n");
    let line = error_about(&check_fails(&env), "alpha.enrich");
    let expected = format!(
        "{}: [\"alpha.enrich\"] suffix: invalid type: integer `5`",
        env.file("gordon.toml")
    );
    assert!(line.contains(&expected), "{line}\nexpected: {expected}");

    // The nested spelling is named as written.
    env.config("[core]\nplugins = [\"alpha.enrich\"]\n");
    env.user_config("[alpha.enrich]\nsuffix = [\".x\"]\n");
    let line = error_about(&check_fails(&env), "alpha.enrich");
    let expected = format!(
        "{}: [alpha.enrich] suffix: invalid type: sequence, expected a string",
        env.file("gordon-user.toml")
    );
    assert!(line.ends_with(&expected), "{line}\nexpected: {expected}");
}

#[test]
fn a_plugins_own_complaint_and_a_missing_key_name_the_files() {
    let env = alpha_env();
    env.config("[core]\nplugins = [\"alpha.enrich\"]\n[\"alpha.enrich\"]\nsuffix = \"\"\n");
    let line = error_about(&check_fails(&env), "alpha.enrich");
    let expected = format!(
        "`suffix` must not be empty (configured in {} [\"alpha.enrich\"])",
        env.file("gordon.toml")
    );
    assert!(line.ends_with(&expected), "{line}\nexpected: {expected}");

    env.config("[core]\nplugins = [\"alpha.enrich\"]\n");
    env.user_config("[core]\ndebug = false\n");
    let line = error_about(&check_fails(&env), "alpha.enrich");
    let expected = format!(
        "missing field `suffix` (there is no [\"alpha.enrich\"] or [\"alpha\"] table in {} or {})",
        env.file("gordon.toml"),
        env.file("gordon-user.toml")
    );
    assert!(line.ends_with(&expected), "{line}\nexpected: {expected}");
}

#[test]
fn nan_and_inf_are_refused_and_dates_pass_as_strings() {
    let env = alpha_env();
    let dump = env.path().join("probe.json");
    env.config(&format!(
        "[core]\nplugins = [\"alpha.probe\"]\n[\"alpha.probe\"]\ndump_path = \"{}\"\nat = 1979-05-27T07:32:00Z\nday = 1979-05-27\nratio = 0.5\n",
        dump.display()
    ));
    let out = env.gordon(&["check"]);
    let stdout = text(&out.stdout);
    assert!(!stdout.contains("plugin `alpha.probe` ("), "{stdout}");
    let seen: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&dump).unwrap()).unwrap();
    assert_eq!(seen["at"], "1979-05-27T07:32:00Z", "{seen}");
    assert_eq!(seen["day"], "1979-05-27", "{seen}");
    assert_eq!(seen["ratio"], 0.5, "{seen}");

    // An infinity would reach the plugin as null, silently unsetting the key.
    std::fs::remove_file(&dump).unwrap();
    env.config(&format!(
        "[core]\nplugins = [\"alpha.probe\", \"alpha.enrich\"]\n[\"alpha.probe\"]\ndump_path = \"{}\"\nratio = 0.5\n[\"alpha.enrich\"]\nsuffix = \".x\"\n",
        dump.display()
    ));
    env.user_config("[\"alpha.probe\"]\nratio = inf\n[alpha]\nweights = [1.0, nan]\n");
    let stdout = check_fails(&env);
    let probe = error_about(&stdout, "alpha.probe");
    let expected = format!(
        "{}: [\"alpha.probe\"] ratio: inf cannot be given to a plugin",
        env.file("gordon-user.toml")
    );
    assert!(probe.contains(&expected), "{probe}\nexpected: {expected}");
    let enrich = error_about(&stdout, "alpha.enrich");
    let expected = format!(
        "{}: [\"alpha\"] weights[1]: nan cannot be given to a plugin",
        env.file("gordon-user.toml")
    );
    assert!(enrich.contains(&expected), "{enrich}\nexpected: {expected}");
    assert!(
        !dump.exists(),
        "the probe was called with the refused configuration"
    );
}

#[test]
fn the_service_names_the_file_table_and_key_too() {
    let env = alpha_env();
    env.install(&fixture("beta"), "libbeta.so");
    env.config("[core]\nplugins = [\"alpha.source\", \"alpha.enrich\", \"beta.publish\"]\n");
    env.user_config("[\"alpha.enrich\"]\nsuffix = 5\n");
    let out = env.gordon(&[]);
    let stderr = text(&out.stderr);
    assert!(!out.status.success(), "{stderr}");
    let expected = format!(
        "{}: [\"alpha.enrich\"] suffix: invalid type: integer `5`, expected a string",
        env.file("gordon-user.toml")
    );
    assert!(stderr.contains(&expected), "{stderr}\nexpected: {expected}");
}

#[test]
fn each_unusable_plugin_directory_is_reported_as_what_it_is() {
    let env = alpha_env();
    std::fs::write(env.path().join("a-file"), "").unwrap();
    std::os::unix::fs::symlink(env.path().join("loop-b"), env.path().join("loop-a")).unwrap();
    std::os::unix::fs::symlink(env.path().join("loop-a"), env.path().join("loop-b")).unwrap();
    env.config(
        "[core]\nplugins = [\"alpha.probe\"]\nplugin_dirs = [\"plugins.d\", \"a-file\", \"loop-a\", \"missing\"]\n",
    );
    let stdout = check_fails(&env);
    for (dir, why) in [
        (
            "a-file",
            "plugin directory is not a directory (it is a file)",
        ),
        ("loop-a", "plugin directory cannot be reached: symlink loop"),
        ("missing", "plugin directory does not exist"),
    ] {
        let line = stdout
            .lines()
            .find(|l| l.contains(&format!("{}:", env.file(dir))))
            .unwrap_or_else(|| panic!("no line about {dir}:\n{stdout}"));
        assert!(
            line.starts_with("error: refused ") && line.ends_with(why),
            "{line}"
        );
    }
    // The good directory still counts.
    assert!(stdout.contains("ok: alpha.probe"), "{stdout}");
}
