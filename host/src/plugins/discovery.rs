//! Finding candidate libraries in the plugin directories.
//!
//! abi_stable's `load_from_directory` loads one fixed file name per interface, so the
//! host scans each directory itself, the way Python scans for entry points: every
//! `.so` / `.dylib` file is a candidate, loaded and judged on its own.

use std::io::ErrorKind;
use std::path::{Path, PathBuf};

use super::inspect::check_not_writable;
use super::refusal::{Reason, Refused};

/// Candidate files, and directories refused as a whole.
#[derive(Debug, Default)]
pub struct Scan {
    /// Library files, sorted per directory.
    pub libraries: Vec<PathBuf>,
    /// Directories that are missing, unreadable or writable by others.
    pub refused: Vec<Refused>,
}

/// Whether `name` looks like a plugin library.
pub fn is_library_name(name: &str) -> bool {
    name.ends_with(".so") || name.ends_with(".dylib")
}

/// Scans every directory.
pub fn scan(dirs: &[PathBuf]) -> Scan {
    let mut scan = Scan::default();
    for dir in dirs {
        if let Err(why) = check_directory(dir) {
            scan.refused
                .push(Refused::new(dir.clone(), Reason::Other(why)));
            continue;
        }
        if let Err(reason) = check_not_writable(dir, "directory") {
            scan.refused.push(Refused::new(dir.clone(), reason));
            continue;
        }
        let entries = match std::fs::read_dir(dir) {
            Ok(entries) => entries,
            Err(e) => {
                let why = format!("plugin directory cannot be read: {}", io_reason(&e));
                scan.refused
                    .push(Refused::new(dir.clone(), Reason::Other(why)));
                continue;
            }
        };
        let mut files: Vec<PathBuf> = entries
            .filter_map(Result::ok)
            .map(|e| e.path())
            .filter(|p| {
                p.file_name()
                    .and_then(|n| n.to_str())
                    .is_some_and(is_library_name)
            })
            .collect();
        files.sort();
        scan.libraries.extend(files);
    }
    scan
}

/// Why `dir` cannot serve as a plugin directory, if it cannot: it is missing, is not
/// a directory, is a symlink loop, or may not be looked at.
fn check_directory(dir: &Path) -> Result<(), String> {
    match std::fs::metadata(dir) {
        Ok(meta) if meta.is_dir() => Ok(()),
        Ok(meta) if meta.is_file() => {
            Err("plugin directory is not a directory (it is a file)".into())
        }
        Ok(_) => Err("plugin directory is not a directory".into()),
        Err(e) if e.kind() == ErrorKind::NotFound => match std::fs::read_link(dir) {
            Ok(target) => Err(format!(
                "plugin directory does not exist (it is a symlink to {}, which does not exist)",
                target.display()
            )),
            Err(_) => Err("plugin directory does not exist".into()),
        },
        Err(e) => Err(format!(
            "plugin directory cannot be reached: {}",
            io_reason(&e)
        )),
    }
}

/// An I/O error as a few lowercase words, for the errors a directory lookup meets.
fn io_reason(e: &std::io::Error) -> String {
    match e.raw_os_error() {
        Some(libc::ELOOP) => "symlink loop".into(),
        Some(libc::EACCES) | Some(libc::EPERM) => "permission denied".into(),
        Some(libc::ENOTDIR) => "a parent in its path is not a directory".into(),
        Some(libc::ENAMETOOLONG) => "path too long".into(),
        _ => e.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use super::*;

    fn reason(dir: &Path) -> String {
        let scan = scan(&[dir.to_path_buf()]);
        assert!(scan.libraries.is_empty());
        scan.refused
            .first()
            .map(ToString::to_string)
            .unwrap_or_default()
    }

    #[test]
    fn each_unusable_plugin_directory_says_why() {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path();
        let file = root.join("a-file");
        std::fs::write(&file, "").unwrap();
        let r = reason(&file);
        assert!(
            r.contains("a-file") && r.contains("is not a directory"),
            "{r}"
        );

        let missing = root.join("missing");
        let r = reason(&missing);
        assert!(
            r.contains("missing: ") && r.ends_with("does not exist"),
            "{r}"
        );

        let dangling = root.join("dangling");
        std::os::unix::fs::symlink(root.join("nowhere"), &dangling).unwrap();
        let r = reason(&dangling);
        assert!(r.contains("does not exist") && r.contains("nowhere"), "{r}");

        let (a, b) = (root.join("loop-a"), root.join("loop-b"));
        std::os::unix::fs::symlink(&b, &a).unwrap();
        std::os::unix::fs::symlink(&a, &b).unwrap();
        let r = reason(&a);
        assert!(r.contains("loop-a") && r.contains("symlink loop"), "{r}");

        let below_a_file = file.join("plugins.d");
        let r = reason(&below_a_file);
        assert!(
            r.contains("not a directory") && !r.contains("does not exist"),
            "{r}"
        );
    }

    #[test]
    fn an_unreadable_plugin_directory_is_permission_denied() {
        // SAFETY: `geteuid` has no preconditions.
        if unsafe { libc::geteuid() } == 0 {
            eprintln!("skipping: permissions do not apply to root");
            return;
        }
        let tmp = tempfile::tempdir().unwrap();
        let locked = tmp.path().join("locked");
        let inner = locked.join("plugins.d");
        std::fs::create_dir_all(&inner).unwrap();
        std::fs::set_permissions(&inner, std::fs::Permissions::from_mode(0o300)).unwrap();
        let r = reason(&inner);
        assert!(r.contains("cannot be read: permission denied"), "{r}");
        std::fs::set_permissions(&locked, std::fs::Permissions::from_mode(0o600)).unwrap();
        let r = reason(&inner);
        std::fs::set_permissions(&locked, std::fs::Permissions::from_mode(0o755)).unwrap();
        assert!(r.contains("cannot be reached: permission denied"), "{r}");
    }
}
