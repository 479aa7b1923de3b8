//! The change threshold of a janitor run, octoDNS style: a plan that would update
//! or delete more than `max_change_percent` of a zone's owned record sets (in zones
//! of at least `min_owned` of them) is refused as a whole — nothing is published —
//! unless `--force`.
//!
//! The figures come from the extra fields a reconciler puts on each change:
//! `zone`, `change` (`create`, `update`, `delete`, `adopt`) and `zone_owned` (the
//! record sets of the zone it owns and may change). A change without `change`
//! counts as an update (an addition) or a deletion; a zone whose changes carry no
//! `zone_owned` has no known size and is not held to the threshold (`dns.reconciler`
//! always sends it).

use std::collections::BTreeMap;

use gordon_plugin_api::{Action, EventMessage};

/// The limits of one run.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Threshold {
    /// The most a plan may update and delete, in percent of a zone's owned record
    /// sets (octoDNS: 30).
    pub max_change_percent: f64,
    /// Zones with fewer owned record sets are not held to it (octoDNS: 10).
    pub min_owned: u64,
}

impl Default for Threshold {
    fn default() -> Self {
        Threshold {
            max_change_percent: 30.0,
            min_owned: 10,
        }
    }
}

/// What a change does, from its `change` field (or its action).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// A record set that is not there.
    Create,
    /// A record set replaced with other data.
    Update,
    /// A record set deleted.
    Delete,
    /// A record set marked ours, data unchanged.
    Adopt,
}

/// What the janitor reads from a change's extra fields.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Meta {
    /// The zone (`?` when not given).
    pub zone: String,
    /// What the change does.
    pub kind: Kind,
    /// The zone's owned record sets, when the reconciler says.
    pub owned: Option<u64>,
}

/// Reads the extra fields of `change`.
pub fn meta(change: &EventMessage) -> Meta {
    let extra = serde_json::from_str::<serde_json::Value>(change.extra_json()).ok();
    let field = |k: &str| extra.as_ref().and_then(|v| v.get(k));
    let zone = field("zone")
        .and_then(|z| z.as_str())
        .map_or_else(|| "?".to_owned(), str::to_owned);
    let kind = match field("change").and_then(|c| c.as_str()) {
        Some("create") => Kind::Create,
        Some("update") => Kind::Update,
        Some("delete") => Kind::Delete,
        Some("adopt") => Kind::Adopt,
        _ if change.action() == Action::Deletions => Kind::Delete,
        _ => Kind::Update,
    };
    let owned = field("zone_owned").and_then(serde_json::Value::as_u64);
    Meta { zone, kind, owned }
}

/// One zone's part of a plan.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Figures {
    /// The zone.
    pub zone: String,
    /// Its owned record sets, when known.
    pub owned: Option<u64>,
    /// Record sets to create.
    pub creates: u64,
    /// Record sets to replace with other data.
    pub updates: u64,
    /// Record sets to delete.
    pub deletes: u64,
    /// Record sets to mark ours (data unchanged).
    pub adopts: u64,
}

impl Figures {
    /// Record sets whose data would change or go: what the threshold counts.
    pub fn changing(&self) -> u64 {
        self.updates + self.deletes
    }

    /// `changing` in percent of the owned record sets, when that is known and not 0.
    pub fn percent(&self) -> Option<f64> {
        self.owned
            .filter(|o| *o > 0)
            .map(|o| self.changing() as f64 * 100.0 / o as f64)
    }

    /// Whether the plan for this zone is over the threshold.
    pub fn over(&self, t: &Threshold) -> bool {
        match (self.owned, self.percent()) {
            (Some(owned), Some(pct)) => owned >= t.min_owned && pct > t.max_change_percent,
            _ => false,
        }
    }

    /// One line of figures for the plan (empty when the size is unknown).
    pub fn summary(&self, t: &Threshold) -> String {
        let Some(owned) = self.owned else {
            return String::new();
        };
        let pct = self.percent().unwrap_or(0.0);
        let applies = if owned >= t.min_owned {
            format!("threshold {} %", t.max_change_percent)
        } else {
            format!("no threshold under {} owned record sets", t.min_owned)
        };
        format!(
            "{owned} owned record set(s): {} update(s) and {} deletion(s) change {pct:.1} % of them ({applies}); {} creation(s), {} adoption(s)",
            self.updates, self.deletes, self.creates, self.adopts
        )
    }

    /// Why the zone's plan is refused.
    pub fn refusal(&self, t: &Threshold) -> String {
        format!(
            "zone {}: {} of {} owned record set(s) would change ({} update(s), {} deletion(s)): {:.1} %, over the {} % change threshold (zones of at least {} owned record sets)",
            self.zone,
            self.changing(),
            self.owned.unwrap_or(0),
            self.updates,
            self.deletes,
            self.percent().unwrap_or(0.0),
            t.max_change_percent,
            t.min_owned
        )
    }
}

/// The figures of every zone with changes, by zone.
pub fn figures(changes: &[EventMessage]) -> BTreeMap<String, Figures> {
    let mut zones: BTreeMap<String, Figures> = BTreeMap::new();
    for c in changes {
        let m = meta(c);
        let f = zones.entry(m.zone.clone()).or_insert_with(|| Figures {
            zone: m.zone.clone(),
            ..Figures::default()
        });
        if m.owned.is_some() {
            f.owned = m.owned;
        }
        match m.kind {
            Kind::Create => f.creates += 1,
            Kind::Update => f.updates += 1,
            Kind::Delete => f.deletes += 1,
            Kind::Adopt => f.adopts += 1,
        }
    }
    zones
}

#[cfg(test)]
mod tests {
    use super::*;
    use gordon_plugin_api::{Phase, RecordType, ResourceRecord};

    fn change(action: Action, extra: &str) -> EventMessage {
        let mut m = EventMessage::new(
            Phase::new("consume"),
            action,
            ResourceRecord::new("x.example.com.", RecordType::A, ["10.0.0.1"]),
        );
        m.set_extra_json(extra);
        m
    }

    fn plan(owned: u64, kinds: &[&str]) -> Vec<EventMessage> {
        kinds
            .iter()
            .map(|k| {
                let action = if *k == "delete" {
                    Action::Deletions
                } else {
                    Action::Additions
                };
                change(
                    action,
                    &format!(r#"{{"zone":"example.com.","change":"{k}","zone_owned":{owned}}}"#),
                )
            })
            .collect()
    }

    #[test]
    fn updates_and_deletions_count_against_owned_record_sets() {
        let t = Threshold::default();
        let four = plan(
            12,
            &["delete", "delete", "delete", "update", "create", "adopt"],
        );
        let f = &figures(&four)["example.com."];
        assert_eq!((f.changing(), f.creates, f.adopts), (4, 1, 1));
        assert!(f.over(&t), "4 of 12 is 33 %");
        assert_eq!(
            f.refusal(&t),
            "zone example.com.: 4 of 12 owned record set(s) would change (1 update(s), 3 deletion(s)): 33.3 %, over the 30 % change threshold (zones of at least 10 owned record sets)"
        );
        assert!(f.summary(&t).starts_with("12 owned record set(s): 1 update(s) and 3 deletion(s) change 33.3 % of them (threshold 30 %)"));
        // Exactly 30 % is not over it; creations and adoptions never count.
        let three = plan(
            10,
            &["delete", "delete", "update", "create", "create", "adopt"],
        );
        assert!(!figures(&three)["example.com."].over(&t));
        // Small zones are not held to it.
        let small = plan(9, &["delete"; 9]);
        assert!(!figures(&small)["example.com."].over(&t));
        let strict = Threshold {
            max_change_percent: 0.0,
            min_owned: 1,
        };
        assert!(figures(&small)["example.com."].over(&strict));
    }

    #[test]
    fn changes_without_figures_fall_back_to_their_action() {
        let plain = [
            change(Action::Deletions, r#"{"zone":"example.com."}"#),
            change(Action::Additions, ""),
        ];
        let zones = figures(&plain);
        assert_eq!(zones["example.com."].deletes, 1);
        assert_eq!(zones["?"].updates, 1);
        assert!(!zones["example.com."].over(&Threshold::default()));
        assert_eq!(zones["example.com."].summary(&Threshold::default()), "");
    }
}
