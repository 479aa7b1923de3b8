//! The limits a plugin process puts on itself before it loads the library.

use serde::{Deserialize, Serialize};

/// Limits from `[core.isolation]`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Limits {
    /// `RLIMIT_AS` in MiB; 0 = none.
    pub memory_limit_mb: u64,
    /// `RLIMIT_CPU` in seconds; 0 = none.
    pub cpu_limit_seconds: u64,
    /// `RLIMIT_NOFILE`; 0 = inherit.
    pub max_open_files: u64,
    /// User to switch to.
    pub user: Option<String>,
    /// Group to switch to.
    pub group: Option<String>,
}

fn os_error(what: &str) -> String {
    format!("{what}: {}", std::io::Error::last_os_error())
}

fn set_limit(resource: libc::__rlimit_resource_t, value: u64, what: &str) -> Result<(), String> {
    let lim = libc::rlimit {
        rlim_cur: value as libc::rlim_t,
        rlim_max: value as libc::rlim_t,
    };
    // SAFETY: setrlimit reads the live `lim` and changes only this process.
    if unsafe { libc::setrlimit(resource, &lim) } != 0 {
        return Err(os_error(what));
    }
    Ok(())
}

/// Applies the limits to this process: resource limits, no new privileges, then
/// the group and user. Returns what could not be applied.
///
/// # Errors
/// One line naming the limit that failed.
pub fn apply(l: &Limits) -> Result<(), String> {
    if l.memory_limit_mb > 0 {
        set_limit(
            libc::RLIMIT_AS,
            l.memory_limit_mb.saturating_mul(1 << 20),
            "core.isolation.memory_limit_mb: setrlimit(RLIMIT_AS)",
        )?;
    }
    if l.cpu_limit_seconds > 0 {
        set_limit(
            libc::RLIMIT_CPU,
            l.cpu_limit_seconds,
            "core.isolation.cpu_limit_seconds: setrlimit(RLIMIT_CPU)",
        )?;
    }
    if l.max_open_files > 0 {
        set_limit(
            libc::RLIMIT_NOFILE,
            l.max_open_files,
            "core.isolation.max_open_files: setrlimit(RLIMIT_NOFILE)",
        )?;
    }
    // SAFETY: prctl with PR_SET_NO_NEW_PRIVS takes integer arguments only.
    if unsafe { libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) } != 0 {
        return Err(os_error("prctl(PR_SET_NO_NEW_PRIVS)"));
    }
    if let Some(group) = &l.group {
        let gid = group_id(group)?;
        // SAFETY: setgroups reads one gid from a live array; setgid takes an int.
        unsafe {
            if libc::setgroups(1, &gid) != 0 {
                return Err(os_error("core.isolation.group: setgroups"));
            }
            if libc::setgid(gid) != 0 {
                return Err(os_error("core.isolation.group: setgid"));
            }
        }
    }
    if let Some(user) = &l.user {
        let (uid, primary) = user_id(user)?;
        if l.group.is_none() {
            // SAFETY: as above.
            unsafe {
                if libc::setgroups(1, &primary) != 0 {
                    return Err(os_error("core.isolation.user: setgroups"));
                }
                if libc::setgid(primary) != 0 {
                    return Err(os_error("core.isolation.user: setgid"));
                }
            }
        }
        // SAFETY: setuid takes an int.
        if unsafe { libc::setuid(uid) } != 0 {
            return Err(os_error("core.isolation.user: setuid"));
        }
    }
    Ok(())
}

/// A user's uid and primary gid, by name or number.
fn user_id(user: &str) -> Result<(libc::uid_t, libc::gid_t), String> {
    let name = std::ffi::CString::new(user)
        .map_err(|_| format!("core.isolation.user: `{user}` is not a user name"))?;
    let mut pwd: libc::passwd = unsafe_zeroed();
    let mut buf = vec![0 as libc::c_char; 16 * 1024];
    let mut found: *mut libc::passwd = std::ptr::null_mut();
    // SAFETY: every pointer is to live, writable memory of the size passed;
    // getpwnam_r writes only into `pwd`, `buf` and `found`.
    let rc = unsafe {
        libc::getpwnam_r(
            name.as_ptr(),
            &mut pwd,
            buf.as_mut_ptr(),
            buf.len(),
            &mut found,
        )
    };
    if rc == 0 && !found.is_null() {
        return Ok((pwd.pw_uid, pwd.pw_gid));
    }
    match user.parse::<libc::uid_t>() {
        Ok(uid) => Ok((uid, uid)),
        Err(_) => Err(format!("core.isolation.user: no user `{user}`")),
    }
}

/// A group's gid, by name or number.
fn group_id(group: &str) -> Result<libc::gid_t, String> {
    let name = std::ffi::CString::new(group)
        .map_err(|_| format!("core.isolation.group: `{group}` is not a group name"))?;
    let mut grp: libc::group = unsafe_zeroed();
    let mut buf = vec![0 as libc::c_char; 16 * 1024];
    let mut found: *mut libc::group = std::ptr::null_mut();
    // SAFETY: as in `user_id`, for getgrnam_r.
    let rc = unsafe {
        libc::getgrnam_r(
            name.as_ptr(),
            &mut grp,
            buf.as_mut_ptr(),
            buf.len(),
            &mut found,
        )
    };
    if rc == 0 && !found.is_null() {
        return Ok(grp.gr_gid);
    }
    group
        .parse::<libc::gid_t>()
        .map_err(|_| format!("core.isolation.group: no group `{group}`"))
}

/// A zeroed C struct for libc to fill.
fn unsafe_zeroed<T: Copy>() -> T {
    // SAFETY: only used for the plain C structs `passwd` and `group`, for which
    // all-zero bytes (null pointers, zero ids) are valid values.
    unsafe { std::mem::zeroed() }
}
