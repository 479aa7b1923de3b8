//! Checks that read a library file without loading it.
//!
//! `dlopen` runs a library's initialisers, which is vendor code. Everything that can
//! be decided from the bytes on disk is decided here first: permissions, file format,
//! truncation, CPU architecture and the presence of the root-module symbol.

use std::fs::File;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use object::read::ReadCache;
use object::{Object, ObjectKind, ObjectSegment};

use super::refusal::Reason;

/// The symbol every plugin library exports.
pub const ROOT_SYMBOL: &str = abi_stable::library::ROOT_MODULE_LOADER_NAME;

/// Refuses a file or directory that group or others may write: whoever can write it
/// can make the host run their code.
pub fn check_not_writable(path: &Path, what: &'static str) -> Result<(), Reason> {
    let meta = std::fs::metadata(path).map_err(|e| Reason::Other(e.to_string()))?;
    let mode = meta.permissions().mode() & 0o7777;
    if mode & 0o022 != 0 {
        return Err(Reason::Writable {
            what,
            path: path.to_path_buf(),
            mode,
        });
    }
    Ok(())
}

/// Which libraries must match a hash before they are opened.
#[derive(Debug, Default, Clone)]
pub struct Pins {
    /// File name -> `sha256:<hex>`.
    pub pins: std::collections::BTreeMap<String, String>,
    /// Refuse files without a pin.
    pub required: bool,
}

impl Pins {
    /// Checks `path` against its pin, if pins are in use.
    pub fn check(&self, path: &Path) -> Result<(), Reason> {
        if self.pins.is_empty() && !self.required {
            return Ok(());
        }
        let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
        let pin = self.pins.get(name);
        if pin.is_none() && !self.required {
            return Ok(());
        }
        let found = sha256_file(path).map_err(|e| Reason::Other(e.to_string()))?;
        match pin {
            None => Err(Reason::Unpinned { found }),
            Some(p) if p.eq_ignore_ascii_case(&found) => Ok(()),
            Some(p) => Err(Reason::HashMismatch {
                expected: p.clone(),
                found,
            }),
        }
    }
}

/// `sha256:<hex>` of a file.
pub fn sha256_file(path: &Path) -> std::io::Result<String> {
    use sha2::{Digest, Sha256};
    use std::io::Read;
    let mut file = File::open(path)?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 1 << 16];
    loop {
        let n = file.read(&mut buf)?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
    }
    let digest = hasher.finalize();
    Ok(format!(
        "sha256:{}",
        digest
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect::<String>()
    ))
}

/// Runs every pre-load check on one library file.
pub fn inspect(path: &Path) -> Result<(), Reason> {
    let meta = std::fs::metadata(path).map_err(|e| Reason::Other(e.to_string()))?;
    if !meta.is_file() {
        return Err(Reason::NotAFile);
    }
    check_not_writable(path, "file")?;
    let file = File::open(path).map_err(|e| Reason::Other(e.to_string()))?;
    let len = meta.len();
    let cache = ReadCache::new(file);
    let mut magic = [0u8; 4];
    let head = object::ReadRef::read_bytes_at(&cache, 0, 4).unwrap_or(&[]);
    magic[..head.len()].copy_from_slice(head);
    if !is_object_magic(&magic) {
        return Err(Reason::NotSharedObject(if len < 4 {
            format!("only {len} bytes")
        } else {
            "no ELF or Mach-O header".into()
        }));
    }
    let obj = object::File::parse(&cache).map_err(|e| Reason::Truncated(e.to_string()))?;
    if obj.kind() != ObjectKind::Dynamic {
        return Err(Reason::NotSharedObject(format!(
            "it is {:?}, not a dynamic library",
            obj.kind()
        )));
    }
    for segment in obj.segments() {
        let (offset, size) = segment.file_range();
        if offset.saturating_add(size) > len {
            return Err(Reason::Truncated(format!(
                "a segment ends at byte {}, the file has {len}",
                offset + size
            )));
        }
    }
    if let Some(expected) = host_architecture() {
        if obj.architecture() != expected {
            return Err(Reason::WrongArchitecture {
                found: format!("{:?}", obj.architecture()).to_lowercase(),
                expected: std::env::consts::ARCH.into(),
            });
        }
    }
    let exports = obj
        .exports()
        .map_err(|e| Reason::Truncated(e.to_string()))?;
    let found = exports.iter().any(|e| {
        let name = e.name();
        name == ROOT_SYMBOL.as_bytes() || name.strip_prefix(b"_") == Some(ROOT_SYMBOL.as_bytes())
    });
    if !found {
        return Err(Reason::NoRootModule {
            symbol: ROOT_SYMBOL.into(),
        });
    }
    Ok(())
}

fn is_object_magic(magic: &[u8; 4]) -> bool {
    magic == b"\x7fELF"
        || matches!(
            u32::from_le_bytes(*magic),
            0xfeed_face | 0xfeed_facf | 0xcefa_edfe | 0xcffa_edfe | 0xcafe_babe | 0xbeba_feca
        )
}

fn host_architecture() -> Option<object::Architecture> {
    match std::env::consts::ARCH {
        "x86_64" => Some(object::Architecture::X86_64),
        "aarch64" => Some(object::Architecture::Aarch64),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn text_file_is_not_a_shared_object() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("bogus.so");
        std::fs::write(&p, "hello, I am text").unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o644)).unwrap();
        assert!(matches!(inspect(&p), Err(Reason::NotSharedObject(_))));
    }

    #[test]
    fn group_writable_file_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("w.so");
        std::fs::write(&p, b"\x7fELF").unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o664)).unwrap();
        assert!(matches!(
            inspect(&p),
            Err(Reason::Writable { mode: 0o664, .. })
        ));
    }

    #[test]
    fn truncated_elf_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("t.so");
        // A copy of a real shared object cut short.
        let libc = [
            "/lib/x86_64-linux-gnu/libc.so.6",
            "/lib/aarch64-linux-gnu/libc.so.6",
        ]
        .into_iter()
        .find(|p| Path::new(p).exists());
        let Some(libc) = libc else { return };
        let bytes = std::fs::read(libc).unwrap();
        std::fs::write(&p, &bytes[..bytes.len() / 3]).unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o644)).unwrap();
        assert!(
            matches!(inspect(&p), Err(Reason::Truncated(_))),
            "{:?}",
            inspect(&p)
        );
    }
}
