//! Why a plugin library was refused.

use std::fmt;
use std::path::PathBuf;

/// The reason a library is refused. Each prints as one line.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Reason {
    /// The file is not an ELF or Mach-O shared object.
    #[error("not a shared object: {0}")]
    NotSharedObject(String),
    /// The headers point past the end of the file, or cannot be parsed.
    #[error("truncated or corrupt shared object: {0}")]
    Truncated(String),
    /// Built for another CPU.
    #[error("built for {found}, this host is {expected}")]
    WrongArchitecture {
        /// The library's architecture.
        found: String,
        /// The host's.
        expected: String,
    },
    /// Needs a newer C library than the host runs on.
    #[error(
        "needs glibc {needed} (symbol version GLIBC_{needed}), this system has glibc {have}: \
         build it on a system with glibc {have} or older"
    )]
    NewerGlibc {
        /// The newest version the library needs.
        needed: String,
        /// The running one.
        have: String,
    },
    /// The root-module symbol is not exported.
    #[error("no gordon root module (symbol `{symbol}` is not exported); is it a gordon plugin?")]
    NoRootModule {
        /// The missing symbol.
        symbol: String,
    },
    /// The file or its directory may be changed by other users.
    #[error("{what} {path} is writable by group or others (mode {mode:04o}); refusing to load code from it")]
    Writable {
        /// `file` or `directory`.
        what: &'static str,
        /// The file or directory.
        path: PathBuf,
        /// Its permission bits.
        mode: u32,
    },
    /// The file changed on disk after this process loaded it: a loaded library can
    /// never be unloaded, so the new file can only be loaded by a new process.
    #[error("the file changed on disk after gordon loaded it; a loaded library cannot be replaced in a running host, so restart gordon to load the new file (the running host keeps the version it loaded)")]
    ChangedSinceLoaded,
    /// The file's hash differs from its pin in `core.plugin_pins`.
    #[error(
        "sha256 is {found}, but core.plugin_pins pins {expected}; refusing a library that changed"
    )]
    HashMismatch {
        /// The pinned hash.
        expected: String,
        /// The file's hash.
        found: String,
    },
    /// `core.require_pins` is set and the file has no pin.
    #[error("not pinned in core.plugin_pins (core.require_pins = true); its sha256 is {found}")]
    Unpinned {
        /// The file's hash, ready to pin.
        found: String,
    },
    /// Built with `panic = "abort"`, and `core.panic_abort` is `refuse`.
    #[error("built with panic = \"abort\": a panic in it would end the host; rebuild with panic = \"unwind\" or set core.panic_abort = \"warn\"")]
    PanicAbort,
    /// The file is not a regular file.
    #[error("not a regular file")]
    NotAFile,
    /// The dynamic loader refused it.
    #[error("dlopen failed: {0}")]
    OpenFailed(String),
    /// Built with an abi_stable whose loader header differs.
    #[error("built with an incompatible abi_stable version: {0}")]
    AbiHeader(String),
    /// Built against another major version of plugin-api.
    #[error("built against plugin-api {found}; this host supports plugin-api {expected_major}.x (it has {expected})")]
    IncompatibleVersion {
        /// The library's plugin-api version.
        found: String,
        /// The host's plugin-api version.
        expected: String,
        /// The major version the host accepts.
        expected_major: u32,
    },
    /// The types of the interface differ from the host's.
    #[error("type layout mismatch with this host's plugin-api {expected}: {summary} (run with --verbose for the full report)")]
    LayoutMismatch {
        /// The host's plugin-api version.
        expected: String,
        /// The first difference, in one line.
        summary: String,
    },
    /// The library opted out of layout checking.
    #[error("exports no type layout, so its interface cannot be checked")]
    NoLayout,
    /// The root module's constructor panicked.
    #[error("root module constructor panicked: {0}")]
    ConstructorPanicked(String),
    /// The root module's constructor returned an error.
    #[error("root module constructor failed: {0}")]
    ConstructorFailed(String),
    /// The library's initialisation with the host's services failed.
    #[error("initialisation failed: {0}")]
    InitFailed(String),
    /// Anything else the loader reported.
    #[error("cannot be loaded: {0}")]
    Other(String),
}

/// A refused library: the file and the reason, plus the full report for
/// `--verbose` where there is one.
#[derive(Debug, Clone)]
pub struct Refused {
    /// The library file (or directory).
    pub library: PathBuf,
    /// Why.
    pub reason: Reason,
    /// A long report (the full layout comparison), shown with `--verbose`.
    pub detail: Option<String>,
}

impl Refused {
    /// A refusal without a long report.
    pub fn new(library: PathBuf, reason: Reason) -> Self {
        Refused {
            library,
            reason,
            detail: None,
        }
    }
}

impl fmt::Display for Refused {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.library.display(), self.reason)
    }
}

/// Something about a library that loaded which its operator should know. Each
/// prints as one line.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Warning {
    /// Built with `panic = "abort"`, and `core.panic_abort` is `warn`.
    #[error("built with panic = \"abort\": a panic in it would end the host (loaded because core.panic_abort = \"warn\")")]
    PanicAbort,
    /// Its symbols show neither panic runtime.
    #[error("cannot tell from its symbols whether it was built with panic = \"unwind\"; if it was built with panic = \"abort\", a panic in it would end the host")]
    PanicUnknown,
}

/// A library that loaded, with a warning about it.
#[derive(Debug, Clone)]
pub struct Warned {
    /// The library file.
    pub library: PathBuf,
    /// What to know.
    pub warning: Warning,
}

impl fmt::Display for Warned {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.library.display(), self.warning)
    }
}
