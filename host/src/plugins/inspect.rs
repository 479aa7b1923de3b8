//! Checks that read a library file without loading it.
//!
//! `dlopen` runs a library's initialisers, which is vendor code. Everything that can
//! be decided from the bytes on disk is decided here first: permissions, file format,
//! truncation, CPU architecture, the presence of the root-module symbol, and the
//! panic runtime the library was linked with (see [`panic_runtime`]).

use std::fs::File;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use object::read::ReadCache;
use object::{Object, ObjectKind, ObjectSegment, ObjectSymbol};

use super::refusal::{Reason, Warning};

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

/// What the pre-load checks are configured with: hash pins (`core.plugin_pins`,
/// `core.require_pins`) and what to do with a `panic = "abort"` library
/// (`core.panic_abort`).
#[derive(Debug, Default, Clone)]
pub struct Checks {
    /// File name -> `sha256:<hex>`.
    pub pins: std::collections::BTreeMap<String, String>,
    /// Refuse files without a pin.
    pub required: bool,
    /// What to do with a library built with `panic = "abort"`.
    pub panic_abort: PanicAbort,
}

/// `core.panic_abort`: what to do with a library built with `panic = "abort"`, whose
/// first panic ends the whole host (an abort cannot be caught at the boundary).
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub enum PanicAbort {
    /// Refuse to load it (the default).
    #[default]
    Refuse,
    /// Load it, with a warning naming the file.
    Warn,
}

impl std::str::FromStr for PanicAbort {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "refuse" => Ok(PanicAbort::Refuse),
            "warn" => Ok(PanicAbort::Warn),
            other => Err(format!(
                "unknown value `{other}`, expected `refuse` or `warn`"
            )),
        }
    }
}

impl Checks {
    /// Checks `path` against its pin, if pins are in use.
    pub fn check_pin(&self, path: &Path) -> Result<(), Reason> {
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

impl Checks {
    /// Applies `core.panic_abort` to what [`inspect`] found: a `panic = "abort"`
    /// library is refused, or loads with a warning; one whose runtime cannot be told
    /// loads with a warning either way (nothing shows it is `abort`).
    pub fn check_panic(&self, runtime: PanicRuntime) -> Result<Option<Warning>, Reason> {
        match (runtime, self.panic_abort) {
            (PanicRuntime::Unwind, _) => Ok(None),
            (PanicRuntime::Abort, PanicAbort::Refuse) => Err(Reason::PanicAbort),
            (PanicRuntime::Abort, PanicAbort::Warn) => Ok(Some(Warning::PanicAbort)),
            (PanicRuntime::Unknown, _) => Ok(Some(Warning::PanicUnknown)),
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

/// Runs every pre-load check on one library file, and tells which panic runtime the
/// library was linked with (a policy decision left to [`Checks::check_panic`]).
pub fn inspect(path: &Path) -> Result<PanicRuntime, Reason> {
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
    if let (object::File::Elf64(elf), Some(have)) = (&obj, super::glibc::running()) {
        if let Some(needed) = super::glibc::needed(elf).filter(|n| *n > have) {
            return Err(Reason::NewerGlibc {
                needed: super::glibc::show(&needed),
                have: super::glibc::show(&have),
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
    Ok(panic_runtime(&obj))
}

/// The panic runtime a library was linked with, as far as its symbols tell.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PanicRuntime {
    /// `panic = "unwind"` (the default): a panic unwinds to the SDK's shims, which
    /// catch it at the boundary.
    Unwind,
    /// `panic = "abort"`: the first panic ends the process, host and all.
    Abort,
    /// The symbols do not say (no trace of Rust's panic machinery at all).
    Unknown,
}

/// Tells the panic runtime from the library's symbols, without loading it.
///
/// What it relies on: `panic_unwind`, the runtime of `panic = "unwind"`, throws a
/// panic with `_Unwind_RaiseException`, and nothing else in a Rust library calls it.
/// The unwinder is a shared library (libgcc_s, libSystem), so the function is an
/// import and stays in the *dynamic* symbol table, which `strip` cannot remove
/// (the dynamic loader needs it). `panic_abort` never calls it. Both runtimes keep
/// the rest of the machinery: the standard library is built with landing pads, so
/// `_Unwind_Resume` and `rust_eh_personality` (and its `_Unwind_GetLanguageSpecificData`)
/// are there either way. So:
///
/// - `_Unwind_RaiseException`, or a symbol of the `panic_unwind` crate, anywhere →
///   [`PanicRuntime::Unwind`];
/// - otherwise, evidence of Rust's panic machinery (`_Unwind_Resume`,
///   `_Unwind_GetLanguageSpecificData`, `rust_eh_personality`, `__rust_start_panic`,
///   a `panic_abort` symbol) → [`PanicRuntime::Abort`];
/// - neither → [`PanicRuntime::Unknown`]: the unwinder was linked in statically and
///   the file stripped, or it is not a Rust library at all.
///
/// The dynamic symbols are read first; the full symbol table (gone in a stripped
/// file) only when they do not show `panic_unwind`. Mach-O names carry a leading `_`.
pub fn panic_runtime<'data, O: Object<'data>>(obj: &O) -> PanicRuntime {
    let mut machinery = false;
    let mut scan = |names: &mut dyn Iterator<Item = &[u8]>| -> bool {
        for name in names {
            match panic_evidence(name) {
                Some(PanicRuntime::Unwind) => return true,
                Some(_) => machinery = true,
                None => {}
            }
        }
        false
    };
    let unwind = scan(&mut obj.dynamic_symbols().filter_map(|s| s.name_bytes().ok()))
        || scan(&mut obj.symbols().filter_map(|s| s.name_bytes().ok()));
    if unwind {
        PanicRuntime::Unwind
    } else if machinery {
        PanicRuntime::Abort
    } else {
        PanicRuntime::Unknown
    }
}

/// What one symbol name says: `Unwind` for `panic_unwind`'s, `Abort` for machinery
/// both runtimes have (so it means "abort" only without the former).
fn panic_evidence(name: &[u8]) -> Option<PanicRuntime> {
    let bare = name.strip_prefix(b"_").unwrap_or(name);
    let is = |s: &[u8]| name == s || bare == s;
    let contains = |s: &[u8]| name.windows(s.len()).any(|w| w == s);
    // Crate names are length-prefixed in both manglings (`12panic_unwind`).
    if is(b"_Unwind_RaiseException") || contains(b"12panic_unwind") {
        return Some(PanicRuntime::Unwind);
    }
    if is(b"_Unwind_Resume")
        || is(b"_Unwind_GetLanguageSpecificData")
        || is(b"rust_eh_personality")
        || name.ends_with(b"__rust_start_panic")
        || contains(b"11panic_abort")
    {
        return Some(PanicRuntime::Abort);
    }
    None
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
    fn panic_runtime_symbols_are_recognised_in_elf_and_mach_o_spellings() {
        for unwind in [
            &b"_Unwind_RaiseException"[..],
            b"__Unwind_RaiseException",
            b"_RNvNtCsiGO2KWI1TB6_12panic_unwind3imp6CANARY",
            b"_ZN12panic_unwind3imp5panic17h0123456789abcdefE",
        ] {
            assert_eq!(panic_evidence(unwind), Some(PanicRuntime::Unwind));
        }
        for machinery in [
            &b"_Unwind_Resume"[..],
            b"__Unwind_Resume",
            b"_Unwind_GetLanguageSpecificData",
            b"rust_eh_personality",
            b"_rust_eh_personality",
            b"_RNvCsfLfy6EI15iL_7___rustc18___rust_start_panic",
            b"__rust_start_panic",
        ] {
            assert_eq!(panic_evidence(machinery), Some(PanicRuntime::Abort));
        }
        for other in [
            &b"_Unwind_Backtrace"[..],
            b"abort",
            b"_ZN26gordon_fixture_panic_abort5Abort3newE",
        ] {
            assert_eq!(panic_evidence(other), None);
        }
    }

    #[test]
    fn this_unwind_test_binary_is_seen_as_unwind() {
        let exe = std::env::current_exe().unwrap();
        let data = std::fs::read(exe).unwrap();
        let obj = object::File::parse(&*data).unwrap();
        assert_eq!(panic_runtime(&obj), PanicRuntime::Unwind);
    }

    #[test]
    fn core_panic_abort_decides_refuse_or_warn() {
        let checks = |panic_abort: &str| Checks {
            panic_abort: panic_abort.parse().unwrap(),
            ..Checks::default()
        };
        assert_eq!(Checks::default().panic_abort, PanicAbort::Refuse);
        let (refuse, warn) = (checks("refuse"), checks("warn"));
        assert_eq!(refuse.check_panic(PanicRuntime::Unwind), Ok(None));
        assert_eq!(warn.check_panic(PanicRuntime::Unwind), Ok(None));
        assert_eq!(
            refuse.check_panic(PanicRuntime::Abort),
            Err(Reason::PanicAbort)
        );
        assert_eq!(
            warn.check_panic(PanicRuntime::Abort),
            Ok(Some(Warning::PanicAbort))
        );
        for c in [&refuse, &warn] {
            assert_eq!(
                c.check_panic(PanicRuntime::Unknown),
                Ok(Some(Warning::PanicUnknown))
            );
        }
        assert!("Warn".parse::<PanicAbort>().is_err());
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
