//! The control socket's listener, inside `gordon run`.

use std::io::{BufRead, BufReader, Write};
use std::os::fd::AsRawFd;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::{json, Value};

use super::status::Live;

/// A listening control socket; the file is removed when this is dropped.
pub struct Server {
    path: PathBuf,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

/// Listens on `path` for `gordon ctl` and answers from `live`. A socket that
/// cannot be created is a warning, not a reason not to run: the service works
/// without it.
pub fn start(path: &Path, live: Arc<Mutex<Live>>) -> Option<Server> {
    match listen(path) {
        Ok(listener) => {
            let spawned = std::thread::Builder::new()
                .name("gordon-control".into())
                .spawn(move || serve(listener, live));
            match spawned {
                Ok(_) => {
                    tracing::info!(socket = %path.display(), "Control socket ready (gordon ctl).");
                    Some(Server {
                        path: path.to_path_buf(),
                    })
                }
                Err(e) => {
                    tracing::warn!(error = %e, "Cannot start the control socket's thread; running without it.");
                    let _ = std::fs::remove_file(path);
                    None
                }
            }
        }
        Err(why) => {
            tracing::warn!(socket = %path.display(), "{why}; running without a control socket.");
            None
        }
    }
}

fn listen(path: &Path) -> Result<UnixListener, String> {
    if path.exists() {
        // Another host answering there keeps its socket; a stale file (a host
        // that was killed) is replaced.
        if UnixStream::connect(path).is_ok() {
            return Err(format!(
                "{} is the control socket of another running gordon",
                path.display()
            ));
        }
        std::fs::remove_file(path).map_err(|e| {
            format!(
                "cannot remove the stale control socket {}: {e}",
                path.display()
            )
        })?;
    }
    let listener = UnixListener::bind(path)
        .map_err(|e| format!("cannot create the control socket {}: {e}", path.display()))?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))
        .map_err(|e| format!("cannot make {} private (0600): {e}", path.display()))?;
    Ok(listener)
}

fn serve(listener: UnixListener, live: Arc<Mutex<Live>>) {
    for conn in listener.incoming() {
        let Ok(conn) = conn else { continue };
        // A client that sends nothing is cut off after a second. Each request
        // has a thread: an action or a reload may take seconds, and `status`
        // must still answer meanwhile.
        let _ = conn.set_read_timeout(Some(Duration::from_secs(1)));
        let _ = conn.set_write_timeout(Some(Duration::from_secs(5)));
        let live = Arc::clone(&live);
        let spawned = std::thread::Builder::new()
            .name("gordon-control-request".into())
            .spawn(move || answer(conn, &live));
        if let Err(e) = spawned {
            tracing::warn!(error = %e, "Control socket: cannot start a thread for a request.");
        }
    }
}

/// Whether the peer is root or this process's own user.
fn peer_allowed(conn: &UnixStream) -> Result<(), String> {
    let mut cred = libc::ucred {
        pid: 0,
        uid: u32::MAX,
        gid: u32::MAX,
    };
    let mut len = std::mem::size_of::<libc::ucred>() as libc::socklen_t;
    // SAFETY: `cred` and `len` are live and writable, `len` is the size of
    // `cred`, and the descriptor is the open connection for the call's duration.
    let rc = unsafe {
        libc::getsockopt(
            conn.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_PEERCRED,
            (&mut cred as *mut libc::ucred).cast(),
            &mut len,
        )
    };
    if rc != 0 {
        return Err(format!(
            "cannot tell who is asking: {}",
            std::io::Error::last_os_error()
        ));
    }
    // SAFETY: geteuid has no preconditions.
    let own = unsafe { libc::geteuid() };
    if cred.uid == 0 || cred.uid == own {
        Ok(())
    } else {
        Err(format!(
            "uid {} may not use this control socket (only root and uid {own}, the service's user)",
            cred.uid
        ))
    }
}

fn answer(conn: UnixStream, live: &Mutex<Live>) {
    // The request is read before the peer is judged, so that a refused client
    // gets the refusal as its answer rather than a broken pipe.
    let mut line = String::new();
    let read = BufReader::new(&conn).read_line(&mut line);
    let reply = match (peer_allowed(&conn), read) {
        (Err(why), _) => {
            tracing::warn!("Control socket: refused a client: {why}.");
            json!({"ok": false, "error": why})
        }
        (Ok(()), Ok(_)) => handle(line.trim(), live),
        (Ok(()), Err(e)) => json!({"ok": false, "error": format!("cannot read the request: {e}")}),
    };
    let mut conn = conn;
    let _ = writeln!(conn, "{reply}");
}

fn handle(request: &str, live: &Mutex<Live>) -> Value {
    let request: Value = match serde_json::from_str(request) {
        Ok(v) => v,
        Err(e) => return json!({"ok": false, "error": format!("not a JSON request: {e}")}),
    };
    match request["command"].as_str() {
        Some("status") => {
            let live = live.lock().unwrap_or_else(|p| p.into_inner());
            json!({"ok": true, "status": live.snapshot()})
        }
        Some("action") => action(&request, live),
        Some("plugin") => {
            use crate::live::requests::Command;
            let name = request["name"].as_str().unwrap_or_default().to_owned();
            let command = match request["op"].as_str() {
                Some("stop") => Command::Stop(name),
                Some("start") => Command::Start(name),
                _ => {
                    return json!({"ok": false, "error": "a plugin request says `op`: stop or start"})
                }
            };
            match crate::live::requests::request(command).recv_timeout(Duration::from_secs(600)) {
                Ok(answer) => answer,
                Err(_) => json!({"ok": false, "error": "the host did not answer within 600 s"}),
            }
        }
        Some("reload") => {
            let answer = crate::live::requests::request(crate::live::requests::Command::Reload);
            match answer.recv_timeout(Duration::from_secs(600)) {
                Ok(report) => {
                    let ok = report["ok"].as_bool() == Some(true);
                    let mut reply = json!({"ok": ok, "report": report});
                    if !ok {
                        let problems: Vec<&str> = reply["report"]["problems"]
                            .as_array()
                            .map(|a| a.iter().filter_map(Value::as_str).collect())
                            .unwrap_or_default();
                        reply["error"] = json!(format!(
                            "reload refused; the configuration in use is unchanged:\n  {}",
                            problems.join("\n  ")
                        ));
                    }
                    reply
                }
                Err(_) => {
                    json!({"ok": false, "error": "the host did not answer the reload within 600 s"})
                }
            }
        }
        Some(other) => {
            json!({"ok": false, "error": format!("unknown command `{other}` (this host answers: status, action, reload, plugin)")})
        }
        None => json!({"ok": false, "error": "the request names no `command`"}),
    }
}

/// Runs a plugin's action: its parameters are checked against the declaration
/// first, and the plugin is called without holding the status lock.
fn action(request: &Value, live: &Mutex<Live>) -> Value {
    let (Some(plugin), Some(name)) = (request["plugin"].as_str(), request["action"].as_str())
    else {
        return json!({"ok": false, "error": "an action request names a `plugin` and an `action`"});
    };
    let words: Vec<String> = request["args"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|w| w.as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default();
    let found = {
        let live = live.lock().unwrap_or_else(|p| p.into_inner());
        live.plugins
            .iter()
            .find(|p| p.name == plugin && p.stopped.is_none())
            .map(|p| {
                (
                    Arc::clone(&p.control),
                    p.actions.iter().find(|a| a.name == name).cloned(),
                    p.actions.iter().map(|a| a.name.clone()).collect::<Vec<_>>(),
                )
            })
    };
    let Some((control, spec, offered)) = found else {
        return json!({"ok": false, "error": format!("no running plugin `{plugin}`")});
    };
    let Some(spec) = spec else {
        let offered = if offered.is_empty() {
            "it offers none".to_owned()
        } else {
            format!("it offers: {}", offered.join(", "))
        };
        return json!({"ok": false, "error": format!("plugin `{plugin}` has no action `{name}` ({offered})")});
    };
    let params = match crate::live::actions::params(&spec, &words) {
        Ok(p) => Value::Object(p),
        Err(e) => return json!({"ok": false, "error": e}),
    };
    tracing::info!(plugin, action = name, params = %params, "Running an action.");
    let result = control.invoke(name, &params.to_string());
    let ok = result.is_ok();
    crate::live::events::publish(
        "action.invoked",
        Some(plugin),
        json!({"action": name, "params": params, "ok": ok}),
    );
    match result {
        Ok(text) => {
            let result: Value = serde_json::from_str(&text).unwrap_or(Value::String(text));
            json!({"ok": true, "plugin": plugin, "action": name, "result": result})
        }
        Err(e) => {
            json!({"ok": false, "error": format!("plugin `{plugin}`, action `{name}`: {}", e.message())})
        }
    }
}
