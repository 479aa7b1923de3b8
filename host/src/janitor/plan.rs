//! The dry-run plan: the reconciler's changes as a table per zone.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use gordon_plugin_api::{Action, EventMessage};

/// The zone a change belongs to: the `zone` field reconcilers put in the event's
/// extra fields, or `?`.
fn zone_of(change: &EventMessage) -> String {
    serde_json::from_str::<serde_json::Value>(change.extra_json())
        .ok()
        .and_then(|v| v.get("zone").and_then(|z| z.as_str()).map(str::to_owned))
        .unwrap_or_else(|| "?".into())
}

/// Renders the plan: per zone, deletions then additions, one line per rrset.
pub fn render(changes: &[EventMessage]) -> String {
    let mut zones: BTreeMap<String, Vec<&EventMessage>> = BTreeMap::new();
    for c in changes {
        zones.entry(zone_of(c)).or_default().push(c);
    }
    let mut out = String::new();
    if zones.is_empty() {
        out.push_str("plan: no changes\n");
    }
    for (zone, list) in &zones {
        let adds = list
            .iter()
            .filter(|c| c.action() == Action::Additions)
            .count();
        let dels = list.len() - adds;
        let _ = writeln!(out, "zone {zone}: {adds} addition(s), {dels} deletion(s)");
        let rows: Vec<[String; 5]> = list
            .iter()
            .map(|c| {
                let r = c.record();
                [
                    if c.action() == Action::Additions {
                        "+"
                    } else {
                        "-"
                    }
                    .to_owned(),
                    r.name().to_owned(),
                    r.rtype().to_string(),
                    r.ttl().to_string(),
                    r.rrdatas().collect::<Vec<_>>().join(" "),
                ]
            })
            .collect();
        let widths: Vec<usize> = (0..4)
            .map(|i| rows.iter().map(|r| r[i].len()).max().unwrap_or(0))
            .collect();
        for row in &rows {
            let _ = writeln!(
                out,
                "  {:<w0$}  {:<w1$}  {:<w2$}  {:>w3$}  {}",
                row[0],
                row[1],
                row[2],
                row[3],
                row[4],
                w0 = widths[0],
                w1 = widths[1],
                w2 = widths[2],
                w3 = widths[3]
            );
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use gordon_plugin_api::{Phase, RecordType, ResourceRecord};

    #[test]
    fn plan_groups_by_zone() {
        let mut del = EventMessage::new(
            Phase::new("consume"),
            Action::Deletions,
            ResourceRecord::new("old.example.com.", RecordType::A, ["10.0.0.9"]),
        );
        del.set_extra_json(r#"{"zone":"example.com."}"#);
        let mut add = EventMessage::new(
            Phase::new("consume"),
            Action::Additions,
            ResourceRecord::new("new.example.com.", RecordType::A, ["10.0.0.1"]),
        );
        add.set_extra_json(r#"{"zone":"example.com."}"#);
        let text = render(&[del, add]);
        assert!(
            text.starts_with("zone example.com.: 1 addition(s), 1 deletion(s)\n"),
            "{text}"
        );
        assert!(
            text.contains("-  old.example.com.  A  300  10.0.0.9"),
            "{text}"
        );
        assert!(
            text.contains("+  new.example.com.  A  300  10.0.0.1"),
            "{text}"
        );
        assert_eq!(render(&[]), "plan: no changes\n");
    }
}
