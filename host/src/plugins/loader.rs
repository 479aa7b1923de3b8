//! Loading one checked library: `dlopen`, abi_stable's version and layout checks,
//! then the library's initialisation with the host's services.
//!
//! Libraries are never unloaded (abi_stable leaks them on purpose): code from a
//! library may still be running on one of its threads, and its statics back the
//! `&'static str`s inside every message.

use std::path::{Path, PathBuf};

use abi_stable::library::{
    lib_header_from_path, LibHeader, LibraryError, RootModule, RootModuleError,
};
use abi_stable::std_types::RString;
use abi_stable::std_types::{RResult, RStr};
use gordon_plugin_api::abi::{
    v1_0, v1_1, v1_2, AuthorityBox, Created, HandlerBox, LibraryRef, PublisherBox, ReconcilerBox,
    RelayBox, RunnableBox,
};
use gordon_plugin_api::{Definition, FfiError};

use super::hostlink;
use super::refusal::{Reason, Refused};

pub(crate) type Ctor<T> = extern "C" fn(RStr<'_>) -> RResult<T, FfiError>;

/// The functions of one plugin entry, whichever minor version wrote it.
#[derive(Clone, Copy)]
pub struct EntryFns {
    /// Checks a configuration.
    pub validate_config: extern "C" fn(RStr<'_>) -> RResult<(), FfiError>,
    /// Runnable constructor.
    pub new_runnable: Option<Ctor<RunnableBox>>,
    /// Handler constructor.
    pub new_handler: Option<Ctor<HandlerBox>>,
    /// Relay constructor.
    pub new_relay: Option<Ctor<RelayBox>>,
    /// Authority constructor (1.1+).
    pub new_authority: Option<Ctor<AuthorityBox>>,
    /// Reconciler constructor (1.1+).
    pub new_reconciler: Option<Ctor<ReconcilerBox>>,
    /// Publisher constructor (1.1+).
    pub new_publisher: Option<Ctor<PublisherBox>>,
    /// Checks the configuration and the plugin's environment (1.3+).
    pub validate_dependencies: Option<extern "C" fn(RStr<'_>) -> RResult<(), FfiError>>,
    /// Validates once and creates, with the control object (1.3+).
    pub create: Option<Ctor<Created>>,
}

/// One plugin of a loaded library.
#[derive(Clone)]
pub struct Entry {
    /// Dotted name.
    pub name: String,
    /// Kind.
    pub kind: String,
    /// Phase or start phase.
    pub phase: String,
    /// Version of the crate that built it.
    pub version: String,
    /// One line.
    pub description: String,
    /// Its actions and selected host events (empty before 1.3).
    pub definition: Definition,
    /// Its functions.
    pub fns: EntryFns,
}

/// A loaded, checked and initialised plugin library.
pub struct Library {
    /// Its plugins.
    pub entries: Vec<Entry>,
    /// The plugin-api version the library was built against.
    pub api_version: &'static str,
}

/// The plugin-api version this host was built with.
pub fn host_api_version() -> &'static str {
    LibraryRef::VERSION_STRINGS.version.as_str()
}

/// Loads a library that passed [`super::inspect::inspect`].
pub fn load(path: &Path) -> Result<Library, Refused> {
    let refuse = |reason: Reason| Refused::new(path.to_path_buf(), reason);
    let header = lib_header_from_path(path).map_err(|e| refusal(path, e))?;
    if header.layout().is_none() {
        return Err(refuse(Reason::NoLayout));
    }
    let api_version = header.version_strings().version.as_str();
    let library = from_header(header, api_version).map_err(|e| refusal(path, e))?;
    let initialised = match &library {
        Versioned::V1_0(m) => m.init()(hostlink::services_v1_1()),
        Versioned::V1_1(m) => m.init()(hostlink::services_v1_1()),
        Versioned::V1_2(m) => m.init()(hostlink::services_v1_2()),
        Versioned::Current(m) => m.init()(hostlink::services()),
    };
    initialised
        .into_result()
        .map_err(|e| refuse(Reason::InitFailed(e.message.into())))?;
    Ok(Library {
        entries: library.entries(),
        api_version,
    })
}

/// A root module, checked against the types of the minor version that wrote it.
pub enum Versioned {
    /// Built against plugin-api 1.0.
    V1_0(v1_0::LibraryRef),
    /// Built against plugin-api 1.1.
    V1_1(v1_1::LibraryRef),
    /// Built against plugin-api 1.2.
    V1_2(v1_2::LibraryRef),
    /// Built against this host's minor version or a later one.
    Current(LibraryRef),
}

/// Checks a library's version and layout and builds its root module.
///
/// # Errors
/// abi_stable's error: version, layout or constructor.
pub fn from_header(header: &LibHeader, api_version: &str) -> Result<Versioned, LibraryError> {
    let minor = api_version
        .split('.')
        .nth(1)
        .and_then(|m| m.parse::<u32>().ok());
    let one = api_version.starts_with("1.");
    if one && minor == Some(0) {
        header
            .init_root_module::<v1_0::LibraryRef>()
            .map(Versioned::V1_0)
    } else if one && minor == Some(1) {
        header
            .init_root_module::<v1_1::LibraryRef>()
            .map(Versioned::V1_1)
    } else if one && minor == Some(2) {
        header
            .init_root_module::<v1_2::LibraryRef>()
            .map(Versioned::V1_2)
    } else {
        header
            .init_root_module::<LibraryRef>()
            .map(Versioned::Current)
    }
}

/// Reads plugin entry `$j`: `$janitor` gives its three janitor constructors
/// (absent before 1.1), `$live` its definition and its 1.3 functions.
macro_rules! entry {
    ($j:ident, $janitor:expr) => {
        entry!($j, $janitor, (Definition::default(), None, None))
    };
    ($j:ident, $janitor:expr, $live:expr) => {{
        let (new_authority, new_reconciler, new_publisher) = $janitor;
        let (definition, validate_dependencies, create) = $live;
        Entry {
            name: $j.name().to_string(),
            kind: $j.kind().to_string(),
            phase: $j.phase().to_string(),
            version: $j.version().to_string(),
            description: $j.description().to_string(),
            definition,
            fns: EntryFns {
                validate_config: $j.validate_config(),
                new_runnable: $j.new_runnable().into_option(),
                new_handler: $j.new_handler().into_option(),
                new_relay: $j.new_relay().into_option(),
                new_authority,
                new_reconciler,
                new_publisher,
                validate_dependencies,
                create,
            },
        }
    }};
}

/// Reads a 1.3 entry's definition (plugin code, guarded by the SDK; a definition
/// that does not parse is logged and read as empty).
fn definition(name: &str, define: Option<extern "C" fn() -> RString>) -> Definition {
    let Some(define) = define else {
        return Definition::default();
    };
    let text = define();
    serde_json::from_str(text.as_str()).unwrap_or_else(|e| {
        tracing::warn!(plugin = name, error = %e, "The plugin's definition is not valid; it offers no actions or events.");
        Definition::default()
    })
}

/// The janitor constructors of an entry of 1.1 or later.
macro_rules! janitor_fns {
    ($e:expr) => {
        (
            $e.new_authority().and_then(|f| f.into_option()),
            $e.new_reconciler().and_then(|f| f.into_option()),
            $e.new_publisher().and_then(|f| f.into_option()),
        )
    };
}

impl Versioned {
    /// The plugins, whichever version wrote them.
    pub fn entries(&self) -> Vec<Entry> {
        match self {
            Versioned::V1_0(m) => m
                .plugins()
                .iter()
                .map(|e| entry!(e, (None, None, None)))
                .collect(),
            Versioned::V1_1(m) => m
                .plugins()
                .iter()
                .map(|e| entry!(e, janitor_fns!(e)))
                .collect(),
            Versioned::V1_2(m) => m
                .plugins()
                .iter()
                .map(|e| entry!(e, janitor_fns!(e)))
                .collect(),
            Versioned::Current(m) => m
                .plugins()
                .iter()
                .map(|e| {
                    let live = (
                        definition(e.name().as_str(), e.define()),
                        e.validate_dependencies(),
                        e.create(),
                    );
                    entry!(e, janitor_fns!(e), live)
                })
                .collect(),
        }
    }
}

fn refusal(path: &Path, err: LibraryError) -> Refused {
    let mut refused = Refused::new(
        PathBuf::from(path),
        Reason::Other(one_line(&err.to_string())),
    );
    refused.reason = match err {
        LibraryError::OpenError { err, .. } => Reason::OpenFailed(one_line(&err.to_string())),
        LibraryError::GetSymbolError { symbol, .. } => Reason::NoRootModule {
            symbol: String::from_utf8_lossy(&symbol)
                .trim_end_matches('\0')
                .into(),
        },
        LibraryError::InvalidAbiHeader(h) => Reason::AbiHeader(format!("{h:?}")),
        LibraryError::IncompatibleVersionNumber {
            expected_version,
            actual_version,
            ..
        } => Reason::IncompatibleVersion {
            found: actual_version.to_string(),
            expected: expected_version.to_string(),
            expected_major: expected_version.major,
        },
        LibraryError::ParseVersionError(e) => Reason::Other(one_line(&e.to_string())),
        LibraryError::AbiInstability(report) => {
            let report = report.to_string();
            let summary = summarize_layout_report(&report);
            refused.detail = Some(report);
            Reason::LayoutMismatch {
                expected: host_api_version().into(),
                summary,
            }
        }
        LibraryError::RootModule {
            err: RootModuleError::Unwound,
            ..
        } => Reason::ConstructorPanicked("no message".into()),
        LibraryError::RootModule {
            err: RootModuleError::Returned(e),
            ..
        } => {
            let text = one_line(&e.to_string());
            match text.strip_prefix("panicked in the library constructor: ") {
                Some(msg) => Reason::ConstructorPanicked(msg.into()),
                None => Reason::ConstructorFailed(text),
            }
        }
        other => Reason::Other(one_line(&other.to_string())),
    };
    refused
}

fn one_line(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// Boils abi_stable's multi-kilobyte layout report down to its first difference:
/// which type (and the field that leads to it) and what differs, e.g.
/// "in `ResourceRecord` (EventMessage.record): unexpected field: expected `rtype:
/// RecordType`, found `ttl: u32`".
pub fn summarize_layout_report(report: &str) -> String {
    let lines: Vec<&str> = report.lines().map(str::trim).collect();
    let failing = lines.iter().position(|l| {
        l.split_once(" error(s)inside")
            .and_then(|(n, _)| n.parse::<u32>().ok())
            .is_some_and(|n| n > 0)
    });
    let mut location = String::new();
    if let Some(start) = failing {
        // The path from the root module down to the mismatching type, as
        // `field_name:` / `type:` pairs.
        let end = lines[start..]
            .iter()
            .position(|l| l.starts_with("Layout of expected type"))
            .map_or(lines.len(), |e| start + e);
        let mut path: Vec<(&str, &str)> = Vec::new();
        let mut field = "";
        for l in &lines[start..end] {
            if let Some(f) = l.strip_prefix("field_name:") {
                field = f;
            } else if let Some(t) = l.strip_prefix("type:") {
                path.push((field, t.trim()));
            }
        }
        if let Some(&(field, ty)) = path.last() {
            location = format!("in `{ty}`");
            if let Some(&(_, parent)) = path.len().checked_sub(2).and_then(|i| path.get(i)) {
                location.push_str(&format!(" ({parent}.{field})"));
            }
        }
    }
    let error = lines.iter().position(|l| l.starts_with("Error:"));
    let mut what = String::new();
    if let Some(e) = error {
        what = lines[e].trim_start_matches("Error:").trim().to_string();
        let describe = |from: usize| -> Option<String> {
            let name = lines
                .get(from..)?
                .iter()
                .find_map(|l| l.strip_prefix("field_name:"));
            let ty = lines
                .get(from..)?
                .iter()
                .find_map(|l| l.strip_prefix("type:"));
            match (name, ty) {
                (Some(n), Some(t)) => Some(format!("`{n}: {}`", t.trim())),
                (None, Some(t)) => Some(format!("`{}`", t.trim())),
                _ => None,
            }
        };
        let expected = lines[e..]
            .iter()
            .position(|l| *l == "Expected:")
            .map(|i| e + i + 1);
        let found = lines[e..]
            .iter()
            .position(|l| *l == "Found:")
            .map(|i| e + i + 1);
        if let (Some(x), Some(f)) = (expected.and_then(describe), found.and_then(describe)) {
            what.push_str(&format!(": expected {x}, found {f}"));
        }
    }
    match (location.is_empty(), what.is_empty()) {
        (false, false) => format!("{location}: {what}"),
        (false, true) => location,
        (true, false) => what,
        (true, true) => "the interface types differ".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::summarize_layout_report;

    #[test]
    fn summary_names_type_field_and_difference() {
        let report = "0 error(s)inside:\n  x\n2 error(s)inside:\n    <other>\n    field_name:0\n    type:EventMessage\n    field_name:record\n    type:ResourceRecord\nLayout of expected type:\n    type:ResourceRecord\nError:unexpected field\nExpected:\n    field_name:rtype\n    type:RecordType\nFound:\n    field_name:ttl\n    type:u32\n";
        assert_eq!(
            summarize_layout_report(report),
            "in `ResourceRecord` (EventMessage.record): unexpected field: expected `rtype: RecordType`, found `ttl: u32`"
        );
    }
}
