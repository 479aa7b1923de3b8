//! Starting a plugin process and telling how it ended.
//!
//! The process is the host's own binary (`gordon __plugin-process`) with three
//! sockets at fixed descriptors: calls (3), the stream of a source's events or a
//! janitor plugin's data (4), and telemetry — the plugin's logs and metrics (5).
//! Its stdout and stderr go to a pipe the host reads line by line.

use std::io;
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::net::UnixStream;
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::process::{Child, ChildStderr, Command, ExitStatus, Stdio};
use std::sync::Mutex;

/// The hidden subcommand a plugin process runs.
pub const SUBCOMMAND: &str = "__plugin-process";

/// Descriptor numbers of the three sockets in the plugin process.
pub const CALL_FD: i32 = 3;
/// See [`CALL_FD`].
pub const STREAM_FD: i32 = 4;
/// See [`CALL_FD`].
pub const TELEMETRY_FD: i32 = 5;

/// The host's ends of a started process's sockets.
pub struct Ends {
    /// Calls and their answers.
    pub call: UnixStream,
    /// Events or janitor data.
    pub stream: UnixStream,
    /// Logs and metrics from the process.
    pub telemetry: UnixStream,
    /// The process's stdout and stderr.
    pub output: ChildStderr,
}

/// A started plugin process.
pub struct Process {
    /// Its pid.
    pub pid: i32,
    /// `Some` until the reaper takes it to wait.
    child: Mutex<Option<Child>>,
    /// Set once the process has ended and before its pid is released, so a kill
    /// never reaches another process that reuses the pid.
    ended: Mutex<bool>,
}

/// Starts the plugin process for `plugin` from the host's own executable.
///
/// # Errors
/// The sockets or the process cannot be created.
pub fn spawn(plugin: &str) -> io::Result<(Process, Ends)> {
    // The running binary itself, even if its file was replaced (a package
    // upgrade) or deleted since the host started: host and plugin process always
    // speak the same protocol.
    let proc_exe = std::path::Path::new("/proc/self/exe");
    let exe = if proc_exe.exists() {
        proc_exe.to_path_buf()
    } else {
        std::env::current_exe()?
    };
    let (call, child_call) = UnixStream::pair()?;
    let (stream, child_stream) = UnixStream::pair()?;
    let (telemetry, child_telemetry) = UnixStream::pair()?;
    for s in [&call, &stream, &child_call, &child_stream] {
        super::link::tune(s);
    }
    let fds: [OwnedFd; 3] = [
        child_call.into(),
        child_stream.into(),
        child_telemetry.into(),
    ];
    let raw = [fds[0].as_raw_fd(), fds[1].as_raw_fd(), fds[2].as_raw_fd()];
    let mut cmd = Command::new(exe);
    // What `ps` shows: the host's own path, not /proc/self/exe.
    if let Ok(path) = std::env::current_exe() {
        cmd.arg0(path);
    }
    cmd.arg(SUBCOMMAND)
        .arg("--plugin")
        .arg(plugin)
        .arg("--host-pid")
        .arg(std::process::id().to_string())
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    // SAFETY: the closure runs in the forked child before exec and calls only
    // async-signal-safe functions (fcntl, dup2, setpgid, prctl); it allocates nothing and
    // touches no lock. It moves the three socket ends to descriptors 3-5 (through
    // temporaries, so that a source already numbered 3-5 is not overwritten before
    // it is copied), sends stdout to the stderr pipe, and asks the kernel to kill
    // the process when the host thread that started it (the plugin's supervisor,
    // which lives as long as the process) ends.
    unsafe {
        cmd.pre_exec(move || {
            let mut tmp = [0; 3];
            for (i, fd) in raw.iter().enumerate() {
                let t = libc::fcntl(*fd, libc::F_DUPFD_CLOEXEC, 10);
                if t < 0 {
                    return Err(io::Error::last_os_error());
                }
                tmp[i] = t;
            }
            for (i, t) in tmp.iter().enumerate() {
                if libc::dup2(*t, CALL_FD + i as i32) < 0 {
                    return Err(io::Error::last_os_error());
                }
            }
            if libc::dup2(2, 1) < 0 {
                return Err(io::Error::last_os_error());
            }
            // A process group of its own: a terminal's Ctrl-C reaches the host,
            // which stops its plugins in order, not every plugin at once.
            if libc::setpgid(0, 0) != 0 {
                return Err(io::Error::last_os_error());
            }
            if libc::prctl(
                libc::PR_SET_PDEATHSIG,
                libc::SIGKILL as libc::c_ulong,
                0,
                0,
                0,
            ) != 0
            {
                return Err(io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let mut child = cmd.spawn()?;
    drop(fds);
    let output = child
        .stderr
        .take()
        .ok_or_else(|| io::Error::other("no stderr pipe"))?;
    let pid = i32::try_from(child.id()).map_err(io::Error::other)?;
    Ok((
        Process {
            pid,
            child: Mutex::new(Some(child)),
            ended: Mutex::new(false),
        },
        Ends {
            call,
            stream,
            telemetry,
            output,
        },
    ))
}

impl Process {
    /// Kills the process (SIGKILL) unless it has already ended.
    pub fn kill(&self) {
        let ended = self.ended.lock().unwrap_or_else(|p| p.into_inner());
        if !*ended {
            // SAFETY: kill(2) has no memory effects; the pid is still this
            // process's (it has not been reaped: `ended` is false and is set, under
            // this lock, before the reaper releases the pid).
            unsafe {
                libc::kill(self.pid, libc::SIGKILL);
            }
        }
    }

    /// Waits until the process ends, then reaps it. Call from one thread only.
    pub fn wait(&self) -> io::Result<ExitStatus> {
        // Wait without reaping first, so `kill` cannot race with pid reuse.
        loop {
            // SAFETY: a zeroed siginfo_t is a valid out-parameter for waitid.
            let mut info: libc::siginfo_t = unsafe { std::mem::zeroed() };
            // SAFETY: `info` is a live, writable siginfo_t; WNOWAIT leaves the
            // child waitable, so the `wait` below still reaps it.
            let rc = unsafe {
                libc::waitid(
                    libc::P_PID,
                    self.pid as libc::id_t,
                    &mut info,
                    libc::WEXITED | libc::WNOWAIT,
                )
            };
            if rc == 0 {
                break;
            }
            let err = io::Error::last_os_error();
            if err.kind() != io::ErrorKind::Interrupted {
                return Err(err);
            }
        }
        *self.ended.lock().unwrap_or_else(|p| p.into_inner()) = true;
        let child = self.child.lock().unwrap_or_else(|p| p.into_inner()).take();
        match child {
            Some(mut child) => child.wait(),
            None => Err(io::Error::other("already waited for")),
        }
    }
}

/// How a plugin process ended, in the words a dropped message's history and the
/// log use: `plugin process crashed (SIGSEGV)`, `plugin process exited with
/// status 3`.
pub fn describe(status: ExitStatus) -> String {
    if let Some(sig) = status.signal() {
        if sig == libc::SIGKILL {
            // Not a fault of its own: the kernel's out-of-memory killer, or an
            // operator.
            return "plugin process was killed (SIGKILL)".to_owned();
        }
        format!("plugin process crashed ({})", signal_name(sig))
    } else {
        match status.code() {
            Some(0) => "plugin process exited".to_owned(),
            Some(code) => format!("plugin process exited with status {code}"),
            None => format!("plugin process ended ({status})"),
        }
    }
}

fn signal_name(sig: i32) -> String {
    let name = match sig {
        libc::SIGSEGV => "SIGSEGV",
        libc::SIGABRT => "SIGABRT",
        libc::SIGBUS => "SIGBUS",
        libc::SIGILL => "SIGILL",
        libc::SIGFPE => "SIGFPE",
        libc::SIGKILL => "SIGKILL",
        libc::SIGTERM => "SIGTERM",
        libc::SIGXCPU => "SIGXCPU",
        libc::SIGPIPE => "SIGPIPE",
        libc::SIGTRAP => "SIGTRAP",
        libc::SIGSYS => "SIGSYS",
        other => return format!("signal {other}"),
    };
    name.to_owned()
}
