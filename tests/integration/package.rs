//! The operator's package: built by `packaging/build-deb.sh`, installed with
//! `dpkg -i` on this machine, checked as an operator would (`gordon check` on the
//! installed configuration, the installed plugins listed, the unit verified, the
//! man page and completions in place), and removed cleanly. Needs root and dpkg;
//! skipped elsewhere (in CI, whose machines have both, it runs).

use std::path::Path;
use std::process::Command;

use crate::util::{root, test_tool, text};

fn run(cmd: &mut Command) -> std::process::Output {
    let out = cmd.output().unwrap();
    assert!(
        out.status.success(),
        "{cmd:?}: {}{}",
        text(&out.stdout),
        text(&out.stderr)
    );
    out
}

#[test]
fn the_package_installs_checks_verifies_and_removes_cleanly() {
    // SAFETY: geteuid has no preconditions.
    let is_root = unsafe { libc::geteuid() } == 0;
    let Some(dpkg) = test_tool(&["/usr/bin/dpkg"], "dpkg") else {
        return;
    };
    if !is_root {
        eprintln!("skipping the package test: installing a package needs root");
        return;
    }
    if Path::new("/usr/bin/gordon").exists()
        && !Command::new(&dpkg)
            .args(["-s", "gordon"])
            .output()
            .unwrap()
            .status
            .success()
    {
        eprintln!("skipping the package test: /usr/bin/gordon exists and is not from the package");
        return;
    }
    let built = run(Command::new(root().join("packaging/build-deb.sh")).current_dir(root()));
    let deb = root().join(text(&built.stdout).trim());
    assert!(deb.is_file(), "{}", deb.display());
    run(Command::new(&dpkg).arg("-i").arg(&deb));

    let check = run(Command::new("/usr/bin/gordon").args(["-c", "/etc/gordon", "check"]));
    assert!(
        text(&check.stdout).contains("0 error(s)"),
        "{}",
        text(&check.stdout)
    );
    let list = run(Command::new("/usr/bin/gordon").args([
        "-c",
        "/etc/gordon",
        "plugins",
        "list",
        "--json",
    ]));
    let doc: serde_json::Value = serde_json::from_slice(&list.stdout).unwrap();
    let names: Vec<&str> = doc["plugins"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|p| p["name"].as_str())
        .collect();
    for want in [
        "http.events",
        "dns.zonefile",
        "dns.rfc2136",
        "nats.events",
        "nats.discovery",
        "audit.log",
    ] {
        assert!(names.contains(&want), "{want} not installed: {names:?}");
    }
    assert!(doc["refused"].as_array().unwrap().is_empty(), "{doc}");
    if let Some(analyze) = test_tool(
        &["/usr/bin/systemd-analyze", "/bin/systemd-analyze"],
        "systemd",
    ) {
        run(Command::new(analyze).args(["verify", "/lib/systemd/system/gordon.service"]));
    }
    for file in [
        "/usr/share/man/man1/gordon.1.gz",
        "/usr/share/bash-completion/completions/gordon",
        "/usr/share/doc/gordon/copyright",
    ] {
        assert!(Path::new(file).is_file(), "{file} missing");
    }
    // The vendor kit: the packaged SDK, found by `plugins new` without --sdk, and
    // its checksum, which `sha256sum -c` accepts.
    let sdk = format!("gordon-plugin-api-{}.crate", crate::util::api_version());
    run(Command::new("sha256sum")
        .args(["-c", &format!("{sdk}.sha256")])
        .current_dir("/usr/share/gordon/sdk"));
    let vendor = tempfile::tempdir().unwrap();
    let krate = vendor.path().join("acme-probe");
    run(Command::new("/usr/bin/gordon")
        .args(["plugins", "new", "acme.probe", "--dir"])
        .arg(&krate));
    assert!(krate.join("src/lib.rs").is_file());
    assert!(krate
        .join(format!("vendor/{}", sdk.trim_end_matches(".crate")))
        .join("Cargo.toml")
        .is_file());
    let conffiles = run(Command::new("dpkg-query").args(["-W", "-f=${Conffiles}", "gordon"]));
    assert!(
        text(&conffiles.stdout).contains("/etc/gordon/gordon.toml"),
        "{}",
        text(&conffiles.stdout)
    );

    // Removed: the files go, the edited configuration stays until purged.
    run(Command::new(&dpkg).args(["-r", "gordon"]));
    assert!(!Path::new("/usr/bin/gordon").exists());
    assert!(!Path::new("/usr/share/gordon/sdk").join(&sdk).exists());
    assert!(!Path::new("/usr/lib/gordon/plugins.d/libgordon_plugin_dns.so").exists());
    assert!(
        Path::new("/etc/gordon/gordon.toml").exists(),
        "a conffile stays until purge"
    );
    run(Command::new(&dpkg).args(["-P", "gordon"]));
    assert!(!Path::new("/etc/gordon/gordon.toml").exists());
    assert!(!Command::new(&dpkg)
        .args(["-s", "gordon"])
        .output()
        .unwrap()
        .status
        .success());
}
