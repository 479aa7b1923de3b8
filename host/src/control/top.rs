//! `gordon ctl top`: a live view of a running host, refreshed every second —
//! per phase and plugin the message rate, totals and drops; every plugin's state
//! and restarts; each source's queue. `q`, Esc or Ctrl-C quit and restore the
//! terminal.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::Path;
use std::time::{Duration, Instant};

use crossterm::event::{self, Event, KeyCode, KeyEvent, KeyModifiers};
use crossterm::{cursor, execute, terminal};
use serde_json::{json, Value};

use crate::cli::Global;

/// Puts the terminal back however `run` ends.
struct Restore;

impl Drop for Restore {
    fn drop(&mut self) {
        let _ = execute!(
            std::io::stdout(),
            terminal::LeaveAlternateScreen,
            cursor::Show
        );
        let _ = terminal::disable_raw_mode();
    }
}

/// Runs the view until the user quits.
///
/// # Errors
/// The terminal cannot be put in raw mode.
pub fn run(global: &Global, socket: Option<&Path>, interval: Duration) -> anyhow::Result<()> {
    let mut out = std::io::stdout();
    terminal::enable_raw_mode()?;
    let _restore = Restore;
    execute!(out, terminal::EnterAlternateScreen, cursor::Hide)?;
    let mut previous: Option<(Instant, Value)> = None;
    loop {
        let now = Instant::now();
        let screen = match super::client::request(global, socket, &json!({"command": "status"})) {
            Ok(answer) => {
                let doc = answer["status"].clone();
                let screen = render(&doc, previous.as_ref().map(|(t, d)| (now - *t, d)));
                previous = Some((now, doc));
                screen
            }
            Err(e) => format!("gordon ctl top: {e:#}\n\nretrying every second; q quits\n"),
        };
        execute!(
            out,
            cursor::MoveTo(0, 0),
            terminal::Clear(terminal::ClearType::All)
        )?;
        // Raw mode: a newline does not return the carriage.
        write!(out, "{}", screen.replace('\n', "\r\n"))?;
        out.flush()?;
        let until = now + interval;
        loop {
            let left = until.saturating_duration_since(Instant::now());
            if left.is_zero() || !event::poll(left)? {
                break;
            }
            if let Event::Key(key) = event::read()? {
                if quits(&key) {
                    return Ok(());
                }
            }
        }
    }
}

fn quits(key: &KeyEvent) -> bool {
    matches!(
        key.code,
        KeyCode::Char('q') | KeyCode::Char('Q') | KeyCode::Esc
    ) || (key.code == KeyCode::Char('c') && key.modifiers.contains(KeyModifiers::CONTROL))
}

/// One screen: the host, the stages with their rates since `previous` (how long
/// ago, and what it said), the plugins, the sources.
pub fn render(doc: &Value, previous: Option<(Duration, &Value)>) -> String {
    let before: BTreeMap<(String, String), u64> = previous
        .map(|(_, d)| {
            d["stages"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|s| (key(s), s["messages"].as_u64().unwrap_or(0)))
                .collect()
        })
        .unwrap_or_default();
    let secs = previous.map_or(0.0, |(dt, _)| dt.as_secs_f64());
    let mut out = format!(
        "gordon {} (pid {}) up {:.0} s, configuration generation {}, {}\n\n",
        doc["version"].as_str().unwrap_or("?"),
        doc["pid"],
        doc["uptime_seconds"].as_f64().unwrap_or(0.0),
        doc["generation"],
        if doc["healthy"].as_bool() == Some(true) {
            "healthy"
        } else {
            "UNHEALTHY"
        }
    );
    let mut rows = vec![["PHASE", "PLUGIN", "MSG/S", "MESSAGES", "DROPPED"].map(String::from)];
    for s in doc["stages"].as_array().into_iter().flatten() {
        let now = s["messages"].as_u64().unwrap_or(0);
        let rate = match before.get(&key(s)) {
            Some(then) if secs > 0.0 => format!("{:.0}", now.saturating_sub(*then) as f64 / secs),
            _ => "-".into(),
        };
        rows.push([
            s["phase"].as_str().unwrap_or("?").to_owned(),
            s["plugin"].as_str().unwrap_or("?").to_owned(),
            rate,
            now.to_string(),
            s["dropped"].to_string(),
        ]);
    }
    out.push_str(&crate::table::render(&rows));
    let mut rows = vec![["PLUGIN", "STATE", "PID", "RESTARTS"].map(String::from)];
    for p in doc["plugins"].as_array().into_iter().flatten() {
        let mut name = p["name"].as_str().unwrap_or("?").to_owned();
        if p["isolated"].as_bool() == Some(true) {
            name.push_str(" [isolated]");
        }
        rows.push([
            name,
            p["state"].as_str().unwrap_or("?").to_owned(),
            p["pid"].as_i64().map_or("-".into(), |v| v.to_string()),
            p["restarts"].to_string(),
        ]);
    }
    out.push('\n');
    out.push_str(&crate::table::render(&rows));
    let rows = super::status::source_rows(doc);
    out.push('\n');
    out.push_str(&crate::table::render(&rows));
    for p in doc["problems"].as_array().into_iter().flatten() {
        out.push_str(&format!("\nproblem: {}", p.as_str().unwrap_or("?")));
    }
    out.push_str("\n\nq quits\n");
    out
}

fn key(stage: &Value) -> (String, String) {
    (
        stage["phase"].as_str().unwrap_or("").to_owned(),
        stage["plugin"].as_str().unwrap_or("").to_owned(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rates_come_from_two_snapshots() {
        let stage = |n: u64| {
            json!({"version": "0", "pid": 1, "uptime_seconds": 1.0, "generation": 1, "healthy": true,
                   "stages": [{"phase": "enrich", "plugin": "dns.enricher", "messages": n, "dropped": 0}],
                   "plugins": [], "sources": [], "problems": []})
        };
        let first = render(&stage(100), None);
        assert!(first.contains("dns.enricher  -"), "{first}");
        let then = stage(100);
        let screen = render(&stage(600), Some((Duration::from_secs(2), &then)));
        assert!(screen.contains("250"), "{screen}");
    }
}
