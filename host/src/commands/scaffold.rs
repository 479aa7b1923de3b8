//! `gordon plugins new NAME`: a plugin crate that builds outside this repository.
//!
//! The SDK travels as the crate `cargo package` makes (`gordon-plugin-api-X.crate`,
//! a gzipped tar) with its sha256. The new crate gets it unpacked under `vendor/`
//! and depends on it by path, so a vendor needs no checkout of gordon and no
//! registry that carries the SDK — only crates.io, for the SDK's own dependencies.
//! The files written are the templates in `host/templates/plugin/`.

use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context as _};

use crate::plugins::inspect::sha256_file;
use crate::plugins::loader::host_api_version;

const CARGO_TOML: &str = include_str!("../../templates/plugin/Cargo.toml.in");
const LIB_RS: &str = include_str!("../../templates/plugin/lib.rs.in");
const README: &str = include_str!("../../templates/plugin/README.md.in");
const GITIGNORE: &str = include_str!("../../templates/plugin/gitignore.in");

/// The names a plugin name gives its crate.
#[derive(Debug, PartialEq, Eq)]
struct Names {
    /// `acme.set-ttl`.
    plugin: String,
    /// `acme-set-ttl`: the package and directory name.
    krate: String,
    /// `acme_set_ttl`: the library is `libacme_set_ttl.so`.
    lib: String,
    /// `SetTtl`: the plugin's type.
    ty: String,
}

fn names(plugin: &str) -> anyhow::Result<Names> {
    let valid = plugin.split('.').all(|part| {
        part.starts_with(|c: char| c.is_ascii_lowercase())
            && part
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_')
    });
    if !valid || !plugin.contains('.') {
        bail!(
            "`{plugin}` is not a plugin name: write it as PACKAGE.PLUGIN (e.g. `acme.ttl`), \
             lowercase letters, digits, `-` and `_`, each part starting with a letter"
        );
    }
    let krate = plugin.replace(['.', '_'], "-");
    let (_, after) = plugin.split_once('.').unwrap_or(("", plugin));
    let ty: String = after
        .split(['.', '-', '_'])
        .filter(|w| !w.is_empty())
        .map(|w| {
            let mut c = w.chars();
            c.next()
                .map(|f| f.to_ascii_uppercase().to_string() + c.as_str())
                .unwrap_or_default()
        })
        .collect();
    Ok(Names {
        plugin: plugin.to_owned(),
        lib: krate.replace('-', "_"),
        krate,
        ty,
    })
}

/// Where a packaged SDK is looked for when `--sdk` is not given: beside the
/// installed binary (`/usr/bin/gordon` -> `/usr/share/gordon/sdk/`, where the
/// Debian package puts it) and beside a source build (`target/debug/gordon` ->
/// `target/package/`, where `cargo package` writes it).
fn sdk_candidates() -> Vec<PathBuf> {
    let file = format!("gordon-plugin-api-{}.crate", host_api_version());
    let Some(bin_dir) = std::env::current_exe()
        .ok()
        .and_then(|e| e.parent().map(Path::to_path_buf))
    else {
        return Vec::new();
    };
    let mut out = Vec::new();
    if let Some(prefix) = bin_dir.parent() {
        out.push(prefix.join("share/gordon/sdk").join(&file));
        out.push(prefix.join("package").join(&file));
    }
    out
}

fn find_sdk(given: Option<&Path>) -> anyhow::Result<PathBuf> {
    if let Some(path) = given {
        if !path.is_file() {
            bail!("--sdk {}: no such file", path.display());
        }
        return Ok(path.to_path_buf());
    }
    let candidates = sdk_candidates();
    if let Some(found) = candidates.iter().find(|c| c.is_file()) {
        return Ok(found.clone());
    }
    let looked: Vec<String> = candidates.iter().map(|c| c.display().to_string()).collect();
    bail!(
        "no packaged SDK found (looked for {}); give one with --sdk FILE.crate \
         (`cargo package -p gordon-plugin-api` in gordon's sources makes it)",
        looked.join(", ")
    )
}

/// Checks the crate against `FILE.sha256` (`sha256sum` format) when that file
/// exists; returns the crate's sha256 (hex).
fn verify(sdk: &Path) -> anyhow::Result<String> {
    let actual = sha256_file(sdk)
        .with_context(|| format!("cannot read {}", sdk.display()))?
        .trim_start_matches("sha256:")
        .to_owned();
    let mut sums = sdk.as_os_str().to_owned();
    sums.push(".sha256");
    let sums = PathBuf::from(sums);
    if let Ok(text) = std::fs::read_to_string(&sums) {
        let expected = text.split_whitespace().next().unwrap_or_default();
        if !expected.eq_ignore_ascii_case(&actual) {
            bail!(
                "{}: sha256 is {actual}, but {} says {expected}; refusing an SDK that changed",
                sdk.display(),
                sums.display()
            );
        }
    }
    Ok(actual)
}

/// Unpacks the `.crate` into `vendor/`; returns the SDK's version, read from the
/// archive's top directory (`gordon-plugin-api-1.3.0/`).
fn unpack(sdk: &Path, vendor: &Path) -> anyhow::Result<String> {
    let open = || -> anyhow::Result<tar::Archive<flate2::read::GzDecoder<File>>> {
        let file = File::open(sdk).with_context(|| format!("cannot open {}", sdk.display()))?;
        Ok(tar::Archive::new(flate2::read::GzDecoder::new(file)))
    };
    let not_a_crate = || format!("{}: not a packaged crate", sdk.display());
    let mut archive = open()?;
    let first = archive
        .entries()
        .with_context(not_a_crate)?
        .next()
        .transpose()
        .with_context(not_a_crate)?;
    let version = match first {
        Some(entry) => {
            let path = entry.path().with_context(not_a_crate)?;
            path.components()
                .next()
                .and_then(|c| c.as_os_str().to_str())
                .and_then(|top| top.strip_prefix("gordon-plugin-api-"))
                .map(str::to_owned)
        }
        None => None,
    };
    let Some(version) = version else {
        bail!("{}: not a packaged gordon-plugin-api crate", sdk.display());
    };
    std::fs::create_dir_all(vendor)?;
    // `unpack` refuses entries that would land outside `vendor` (`..`, absolute).
    // The files get the time of unpacking, not the archive's: `cargo package`
    // stamps every file with one fixed old time, and cargo's freshness check, which
    // compares modification times, would then take a newer SDK unpacked where an
    // older one was built for the same, already compiled one.
    let mut archive = open()?;
    archive.set_preserve_mtime(false);
    archive
        .unpack(vendor)
        .with_context(|| format!("cannot unpack {} into {}", sdk.display(), vendor.display()))?;
    Ok(version)
}

fn fill(template: &str, names: &Names, api: &str, sha256: &str) -> String {
    template
        .replace("{{plugin}}", &names.plugin)
        .replace("{{crate}}", &names.krate)
        .replace("{{lib}}", &names.lib)
        .replace("{{type}}", &names.ty)
        .replace("{{api}}", api)
        .replace("{{sha256}}", sha256)
}

/// `plugins new NAME [--dir DIR] [--sdk FILE]`.
///
/// # Errors
/// A name that is not `PACKAGE.PLUGIN`, a directory that is not empty, no SDK
/// found, an SDK whose checksum differs, or a failed write.
pub fn run(plugin: &str, dir: Option<&Path>, sdk: Option<&Path>) -> anyhow::Result<()> {
    let names = names(plugin)?;
    let dir = dir.map_or_else(|| PathBuf::from(&names.krate), Path::to_path_buf);
    if dir.exists() && std::fs::read_dir(&dir)?.next().is_some() {
        bail!("{} exists and is not empty", dir.display());
    }
    let sdk = find_sdk(sdk)?;
    let sha256 = verify(&sdk)?;
    let api = unpack(&sdk, &dir.join("vendor"))?;
    std::fs::create_dir_all(dir.join("src"))?;
    let files = [
        ("Cargo.toml", CARGO_TOML),
        ("src/lib.rs", LIB_RS),
        ("README.md", README),
        (".gitignore", GITIGNORE),
    ];
    for (file, template) in files {
        let path = dir.join(file);
        std::fs::write(&path, fill(template, &names, &api, &sha256))
            .with_context(|| format!("cannot write {}", path.display()))?;
    }
    let mut out = std::io::stdout().lock();
    writeln!(
        out,
        "created {} ({} against gordon-plugin-api {api}, sha256 {sha256})",
        dir.display(),
        names.plugin
    )?;
    writeln!(
        out,
        "next: cd {} && cargo test && cargo build --release",
        dir.display()
    )?;
    writeln!(
        out,
        "then: gordon plugins add {}/target/release/lib{}.so",
        dir.display(),
        names.lib
    )?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_plugin_name_gives_the_crate_library_and_type_names() {
        let n = names("acme.set-ttl").unwrap();
        assert_eq!(n.krate, "acme-set-ttl");
        assert_eq!(n.lib, "acme_set_ttl");
        assert_eq!(n.ty, "SetTtl");
        assert_eq!(names("dns.my_thing.v2").unwrap().ty, "MyThingV2");
    }

    #[test]
    fn names_that_are_not_package_dot_plugin_are_refused() {
        for bad in [
            "acme",
            "Acme.ttl",
            "acme.",
            ".ttl",
            "acme.1ttl",
            "acme.t tl",
            "acme/ttl",
        ] {
            let err = names(bad).unwrap_err().to_string();
            assert!(
                err.contains(bad) && err.contains("PACKAGE.PLUGIN"),
                "{bad}: {err}"
            );
        }
    }

    #[test]
    fn every_placeholder_of_every_template_is_filled() {
        let n = names("acme.ttl").unwrap();
        for t in [CARGO_TOML, LIB_RS, README, GITIGNORE] {
            let filled = fill(t, &n, "1.3.0", "00ff");
            assert!(!filled.contains("{{"), "{filled}");
        }
        let manifest: toml::Table = fill(CARGO_TOML, &n, "1.3.0", "00ff").parse().unwrap();
        assert_eq!(manifest["package"]["name"].as_str(), Some("acme-ttl"));
    }
}
