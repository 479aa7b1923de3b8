//! The plan: the reconciler's changes as a table per zone, with the figures the
//! change threshold reads. Printed by a dry run, and by a run the threshold refuses.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use gordon_plugin_api::{Action, EventMessage};

use super::safety::{self, Kind, Threshold};

/// Renders the plan: per zone (the `zone` field reconcilers put in the event's
/// extra fields, or `?`), deletions then additions, one line per rrset — an
/// update or adoption says so at the end of its line — then the zone's figures.
pub fn render(changes: &[EventMessage], threshold: &Threshold) -> String {
    let mut zones: BTreeMap<String, Vec<&EventMessage>> = BTreeMap::new();
    for c in changes {
        zones.entry(safety::meta(c).zone).or_default().push(c);
    }
    let figures = safety::figures(changes);
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
        let rows: Vec<[String; 6]> = list
            .iter()
            .map(|c| {
                let r = c.record();
                let note = match safety::meta(c).kind {
                    Kind::Update => "  # update",
                    Kind::Adopt => "  # adopt: mark as ours",
                    Kind::Create | Kind::Delete => "",
                };
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
                    note.to_owned(),
                ]
            })
            .collect();
        let widths: Vec<usize> = (0..4)
            .map(|i| rows.iter().map(|r| r[i].len()).max().unwrap_or(0))
            .collect();
        for row in &rows {
            let _ = writeln!(
                out,
                "  {:<w0$}  {:<w1$}  {:<w2$}  {:>w3$}  {}{}",
                row[0],
                row[1],
                row[2],
                row[3],
                row[4],
                row[5],
                w0 = widths[0],
                w1 = widths[1],
                w2 = widths[2],
                w3 = widths[3]
            );
        }
        let summary = figures
            .get(zone)
            .map(|f| f.summary(threshold))
            .unwrap_or_default();
        if !summary.is_empty() {
            let _ = writeln!(out, "  {summary}");
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
        let text = render(&[del, add], &Threshold::default());
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
        assert_eq!(render(&[], &Threshold::default()), "plan: no changes\n");
        let mut update = EventMessage::new(
            Phase::new("consume"),
            Action::Additions,
            ResourceRecord::new("db.example.com.", RecordType::A, ["10.0.0.3"]),
        );
        update.set_extra_json(r#"{"zone":"example.com.","change":"update","zone_owned":4}"#);
        let text = render(&[update], &Threshold::default());
        assert!(
            text.contains("+  db.example.com.  A  300  10.0.0.3  # update\n"),
            "{text}"
        );
        assert!(
            text.contains("  4 owned record set(s): 1 update(s) and 0 deletion(s) change 25.0 % of them (no threshold under 10 owned record sets)"),
            "{text}"
        );
    }
}
