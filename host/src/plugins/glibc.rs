//! The C library a plugin needs, read from its file before it is opened.
//!
//! A library built on a newer system than the host's records the newer glibc
//! symbol versions it uses (`GLIBC_2.38`) in its version-needs section; the dynamic
//! loader would refuse it with "version `GLIBC_2.38' not found". Reading the
//! section first lets the refusal name both versions and the fix.

use object::read::elf::ElfFile64;
use object::ReadRef;

/// A glibc version, `2.34` as `[2, 34]`.
pub type Version = Vec<u32>;

/// Parses `GLIBC_2.2.5` (a symbol version name); `None` for other names
/// (`GLIBC_PRIVATE`, `GCC_3.0`).
fn parse(name: &[u8]) -> Option<Version> {
    let rest = std::str::from_utf8(name).ok()?.strip_prefix("GLIBC_")?;
    rest.split('.').map(|p| p.parse().ok()).collect()
}

/// Shows a version as glibc does: `2.34`.
pub fn show(v: &[u32]) -> String {
    v.iter().map(u32::to_string).collect::<Vec<_>>().join(".")
}

/// The newest glibc version a 64-bit ELF library needs, if it names any.
pub fn needed<'data, R: ReadRef<'data>>(
    elf: &ElfFile64<'data, object::Endianness, R>,
) -> Option<Version> {
    let (endian, data) = (elf.endian(), elf.data());
    let sections = elf.elf_section_table();
    let (mut needs, link) = sections.gnu_verneed(endian, data).ok()??;
    let strings = sections.strings(endian, data, link).ok()?;
    let mut newest: Option<Version> = None;
    while let Ok(Some((_, mut aux))) = needs.next() {
        while let Ok(Some(a)) = aux.next() {
            if let Some(v) = a.name(endian, strings).ok().and_then(parse) {
                if newest.as_ref().is_none_or(|n| v > *n) {
                    newest = Some(v);
                }
            }
        }
    }
    newest
}

/// The glibc this process runs on, or `None` on another C library.
pub fn running() -> Option<Version> {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        // SAFETY: `gnu_get_libc_version` takes no arguments and returns a pointer to
        // a static NUL-terminated string owned by glibc, valid for the whole process.
        let text = unsafe { std::ffi::CStr::from_ptr(libc::gnu_get_libc_version()) };
        text.to_str()
            .ok()?
            .split('.')
            .map(|p| p.parse().ok())
            .collect()
    }
    #[cfg(not(all(target_os = "linux", target_env = "gnu")))]
    {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn glibc_version_names_parse_and_order_numerically() {
        assert_eq!(parse(b"GLIBC_2.2.5"), Some(vec![2, 2, 5]));
        assert_eq!(parse(b"GLIBC_PRIVATE"), None);
        assert_eq!(parse(b"GCC_3.0"), None);
        assert!(parse(b"GLIBC_2.10").unwrap() > parse(b"GLIBC_2.9").unwrap());
        assert_eq!(show(&[2, 34]), "2.34");
    }

    #[test]
    fn this_process_runs_on_a_glibc_at_least_as_new_as_its_own_binary_needs() {
        let Some(have) = running() else { return };
        let exe = std::fs::read("/proc/self/exe").unwrap();
        let elf = ElfFile64::<object::Endianness>::parse(exe.as_slice()).unwrap();
        let need = needed(&elf).expect("a glibc binary names its glibc versions");
        assert!(need <= have, "{} > {}", show(&need), show(&have));
    }
}
