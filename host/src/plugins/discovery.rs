//! Finding candidate libraries in the plugin directories.
//!
//! abi_stable's `load_from_directory` loads one fixed file name per interface, so the
//! host scans each directory itself, the way Python scans for entry points: every
//! `.so` / `.dylib` file is a candidate, loaded and judged on its own.

use std::path::PathBuf;

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
        if !dir.is_dir() {
            scan.refused.push(Refused::new(
                dir.clone(),
                Reason::Other("plugin directory does not exist".into()),
            ));
            continue;
        }
        if let Err(reason) = check_not_writable(dir, "directory") {
            scan.refused.push(Refused::new(dir.clone(), reason));
            continue;
        }
        let entries = match std::fs::read_dir(dir) {
            Ok(entries) => entries,
            Err(e) => {
                scan.refused
                    .push(Refused::new(dir.clone(), Reason::Other(e.to_string())));
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
