//! `gordon ctl`: asks a running host over its control socket.

use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{bail, Context as _};
use serde_json::{json, Value};

use crate::cli::Global;

/// Sends one request to the host at `socket` (or the configuration's socket)
/// and returns its answer.
///
/// # Errors
/// No host answers there, the peer was refused, or the host reports an error.
pub fn request(global: &Global, socket: Option<&Path>, request: &Value) -> anyhow::Result<Value> {
    let path: PathBuf = match socket {
        Some(p) => p.to_path_buf(),
        None => crate::config::Config::load(&global.config_root, "gordon")
            .context("reading the configuration to find the control socket")?
            .control_socket(),
    };
    let mut conn = UnixStream::connect(&path).with_context(|| {
        format!(
            "cannot reach gordon's control socket {} (is `gordon run` running with this config root?)",
            path.display()
        )
    })?;
    conn.set_read_timeout(Some(Duration::from_secs(30)))?;
    // A host that refuses the peer may close before reading: its answer, if
    // any, is still there to read.
    let _ = writeln!(conn, "{request}");
    let mut line = String::new();
    BufReader::new(&conn)
        .read_line(&mut line)
        .with_context(|| format!("no answer on {}", path.display()))?;
    let answer: Value = serde_json::from_str(line.trim())
        .with_context(|| format!("a malformed answer on {}", path.display()))?;
    if answer["ok"].as_bool() != Some(true) {
        bail!(
            "{}",
            answer["error"]
                .as_str()
                .unwrap_or("the host refused the request")
        );
    }
    Ok(answer)
}

/// `gordon ctl status [--json]`.
///
/// # Errors
/// As [`request`], or a failed write to stdout.
pub fn status(global: &Global, socket: Option<&Path>, as_json: bool) -> anyhow::Result<()> {
    let answer = request(global, socket, &json!({"command": "status"}))?;
    let doc = &answer["status"];
    let mut out = std::io::stdout().lock();
    if as_json {
        writeln!(out, "{}", serde_json::to_string_pretty(doc)?)?;
    } else {
        write!(out, "{}", super::status::render(doc))?;
    }
    Ok(())
}

/// `gordon ctl action PLUGIN ACTION [key=value ...] [--json]`: prints the
/// action's result (JSON; text results as they are).
///
/// # Errors
/// As [`request`] (an unknown action or a bad parameter is the host's error), or
/// a failed write to stdout.
pub fn action(
    global: &Global,
    socket: Option<&Path>,
    plugin: &str,
    action: &str,
    params: &[String],
    as_json: bool,
) -> anyhow::Result<()> {
    let answer = request(
        global,
        socket,
        &json!({"command": "action", "plugin": plugin, "action": action, "args": params}),
    )?;
    let mut out = std::io::stdout().lock();
    if as_json {
        writeln!(out, "{answer}")?;
    } else {
        match &answer["result"] {
            Value::String(text) => writeln!(out, "{text}")?,
            other => writeln!(out, "{}", serde_json::to_string_pretty(other)?)?,
        }
    }
    Ok(())
}

/// `gordon ctl reload [--json]`: asks the host to reload and prints what changed.
///
/// # Errors
/// As [`request`]; a refused reload is an error listing every problem.
pub fn reload(global: &Global, socket: Option<&Path>, as_json: bool) -> anyhow::Result<()> {
    let answer = request(global, socket, &json!({"command": "reload"}))?;
    let report = &answer["report"];
    let mut out = std::io::stdout().lock();
    if as_json {
        writeln!(out, "{report}")?;
        return Ok(());
    }
    writeln!(
        out,
        "configuration generation {} in use",
        report["generation"]
    )?;
    for what in ["applied", "restarted", "added", "removed"] {
        let names: Vec<&str> = report[what]
            .as_array()
            .map(|a| a.iter().filter_map(Value::as_str).collect())
            .unwrap_or_default();
        if !names.is_empty() {
            writeln!(out, "{what}: {}", names.join(", "))?;
        }
    }
    Ok(())
}

/// `gordon ctl plugin stop|start NAME`.
///
/// # Errors
/// As [`request`]: the host's refusal (no such plugin, already stopped, not
/// stopped) names the plugin.
pub fn plugin(
    global: &Global,
    socket: Option<&Path>,
    op: &str,
    name: &str,
    as_json: bool,
) -> anyhow::Result<()> {
    let answer = request(
        global,
        socket,
        &json!({"command": "plugin", "op": op, "name": name}),
    )?;
    let mut out = std::io::stdout().lock();
    if as_json {
        writeln!(out, "{answer}")?;
    } else {
        writeln!(out, "{}", answer["message"].as_str().unwrap_or("done"))?;
    }
    Ok(())
}
