//! Loading one checked library: `dlopen`, abi_stable's version and layout checks,
//! then the library's initialisation with the host's services.
//!
//! Libraries are never unloaded (abi_stable leaks them on purpose): code from a
//! library may still be running on one of its threads, and its statics back the
//! `&'static str`s inside every message.

use std::path::{Path, PathBuf};

use abi_stable::library::{lib_header_from_path, LibraryError, RootModule, RootModuleError};
use gordon_plugin_api::abi::LibraryRef;

use super::hostlink;
use super::refusal::{Reason, Refused};

/// A loaded, checked and initialised plugin library.
#[derive(Clone, Copy)]
pub struct Library {
    /// The library's root module.
    pub module: LibraryRef,
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
    let module = header
        .init_root_module::<LibraryRef>()
        .map_err(|e| refusal(path, e))?;
    (module.init())(hostlink::services())
        .into_result()
        .map_err(|e| refuse(Reason::InitFailed(e.message.into())))?;
    Ok(Library {
        module,
        api_version,
    })
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
