//! Publishing a batch: one UPDATE per chunk of changes (chunks that share no name
//! in flight together), split in halves when the server rejects it for something a
//! record may have caused, until each failing change stands alone; ownership
//! lookups and prerequisites; verification.
//!
//! Splitting instead of falling back to one UPDATE per message keeps a batch with
//! one bad record at about `2 * log2(n)` extra UPDATEs instead of `n`. Order is kept:
//! the halves are sent first half first, and chunks in flight together touch
//! different names, so the effect is that of applying the messages one by one.

use std::collections::{HashMap, HashSet};
use std::future::{poll_fn, Future};
use std::pin::Pin;
use std::sync::Arc;
use std::task::Poll;
use std::time::Instant;

use gordon_plugin_api::tokio::sync::Semaphore;
use gordon_plugin_api::tokio::task::JoinSet;
use gordon_plugin_api::{tracing, PluginError, RecordType};

use crate::changes::{self, update_message, Change, Claim, Edit, Op, OwnerValues, Sizing};
use crate::client::Client;
use crate::config::{Ownership, Verify};
use crate::error::{rcode, Failure, Scope};
use crate::wire::{rdata_text, Name};

/// The (TTL, canonical rdata) of each record of a record set.
type Rrs = Vec<(u32, Vec<u8>)>;
/// What a query found.
type Served = Result<Rrs, Failure>;

/// How many lookups or verification queries run at once.
const PARALLEL_QUERIES: usize = 32;
/// How many UPDATEs of one batch are in flight at once.
const PARALLEL_UPDATES: usize = 4;

/// What the server holds at an owner record's name.
#[derive(Clone, Debug, PartialEq, Eq)]
enum OwnerState {
    /// Exactly our owner record.
    Ours,
    /// Exactly the owner record of `adopt_from_owner`.
    Previous,
    /// No TXT record there.
    Absent,
    /// Something else, shown for the error message.
    Foreign(String),
}

/// The parts of the plugin a publishing run needs.
#[derive(Debug)]
pub(crate) struct Publisher {
    pub(crate) client: Arc<Client>,
    pub(crate) max_batch: usize,
    pub(crate) verify: Verify,
    /// How ownership records are honoured.
    pub(crate) ownership: Ownership,
    /// Our owner record data.
    pub(crate) value: Vec<u8>,
    /// The owner record data of `adopt_from_owner` (empty without).
    pub(crate) previous: Vec<u8>,
}

impl Publisher {
    fn values(&self) -> OwnerValues<'_> {
        OwnerValues {
            ours: &self.value,
            previous: &self.previous,
        }
    }

    /// The claims this configuration can make (what bounds a change's size).
    fn claims(&self) -> Vec<Claim> {
        let own = &self.ownership;
        if own.manage_unowned {
            return vec![Claim::Force];
        }
        let mut claims = vec![Claim::Ours, Claim::New];
        if own.adopt {
            claims.push(Claim::Adopt);
        }
        if !self.previous.is_empty() {
            claims.push(Claim::Previous);
        }
        claims
    }
}

/// One `handle_batch` call's state.
struct Run<'p> {
    p: &'p Publisher,
    zone: String,
    owners: HashMap<Name, OwnerState>,
    /// Whether the server refuses this key any update of the zone (asked once).
    zone_refused: Option<bool>,
    failed: HashMap<usize, PluginError>,
}

/// Whether to look owner records up before an UPDATE.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Lookups {
    /// Take an owner not known yet to be absent; the prerequisites check it.
    Skip,
    /// Look every unknown owner up first.
    Do,
}

impl Publisher {
    fn run(&self) -> Run<'_> {
        Run {
            p: self,
            zone: self.client.zone_text.clone(),
            owners: HashMap::new(),
            zone_refused: None,
            failed: HashMap::new(),
        }
    }

    /// Publishes the changes; returns the failed messages by batch index.
    ///
    /// The chunks of a batch go out [`PARALLEL_UPDATES`] at a time rather than one
    /// after the other, so that the server always has the next UPDATE at hand
    /// while it applies one (it applies a zone's UPDATEs one at a time, and the time
    /// between them was the gap that bounded this path). That keeps the effect of
    /// applying the messages one by one because the UPDATEs in flight together
    /// never name the same owner name: `fold` leaves one change per record set,
    /// and [`waves`] holds back a chunk that names a record (of another type, say a
    /// CNAME after a deleted A) of an earlier chunk until that one is done.
    pub(crate) async fn publish(&self, changes: Vec<Change>) -> HashMap<usize, PluginError> {
        let claims = self.claims();
        let sizing = Sizing {
            zone: &self.client.zone,
            values: self.values(),
            claims: &claims,
        };
        let (chunks, too_large) = changes::chunks(changes, self.max_batch, &sizing);
        let mut run = self.run();
        for c in too_large {
            let e = c.effective();
            let text = format!(
                "record set {} {} is too large for one DNS message",
                e.name, e.rtype
            );
            run.fail(&c, "too_large", text);
        }
        let mut failed = run.failed;
        for wave in waves(chunks) {
            // Nothing unpublished may pass for published: a chunk whose run did not
            // report back (which `concurrently` rules out) fails its messages.
            let msgs: Vec<Vec<usize>> = wave
                .iter()
                .map(|chunk| chunk.iter().flat_map(Change::msgs).collect())
                .collect();
            let runs = wave.into_iter().map(|chunk| async move {
                let mut run = self.run();
                run.chunk(chunk).await;
                run.failed
            });
            let mut reports = concurrently(runs, PARALLEL_UPDATES).await.into_iter();
            for chunk_msgs in msgs {
                match reports.next() {
                    Some(report) => failed.extend(report),
                    None => failed.extend(chunk_msgs.into_iter().map(|m| {
                        (
                            m,
                            PluginError::new("internal error: the update was not sent"),
                        )
                    })),
                }
            }
        }
        failed
    }
}

/// Groups chunks (in order) into waves whose chunks share no record name; a chunk
/// that shares one with the wave being formed starts the next wave.
fn waves(chunks: Vec<Vec<Change>>) -> Vec<Vec<Vec<Change>>> {
    let mut waves = Vec::new();
    let mut wave: Vec<Vec<Change>> = Vec::new();
    let mut names: HashSet<Name> = HashSet::new();
    for chunk in chunks {
        if chunk.iter().any(|c| names.contains(&c.effective().name)) {
            waves.push(std::mem::take(&mut wave));
            names.clear();
        }
        names.extend(chunk.iter().map(|c| c.effective().name.clone()));
        wave.push(chunk);
    }
    if !wave.is_empty() {
        waves.push(wave);
    }
    waves
}

/// Runs `futures` on the calling task, at most `limit` at a time (started in
/// order); their outputs, in order.
async fn concurrently<F: Future>(
    futures: impl IntoIterator<Item = F>,
    limit: usize,
) -> Vec<F::Output> {
    let mut waiting = futures.into_iter().enumerate();
    let mut running: Vec<(usize, Pin<Box<F>>)> = Vec::new();
    let mut done: Vec<(usize, F::Output)> = Vec::new();
    poll_fn(|cx| loop {
        while running.len() < limit.max(1) {
            match waiting.next() {
                Some((i, f)) => running.push((i, Box::pin(f))),
                None => break,
            }
        }
        if running.is_empty() {
            return Poll::Ready(());
        }
        let before = done.len();
        let mut at = 0;
        while at < running.len() {
            match running[at].1.as_mut().poll(cx) {
                Poll::Ready(out) => done.push((running.swap_remove(at).0, out)),
                Poll::Pending => at += 1,
            }
        }
        // Nothing finished: every running future has registered its wake-up.
        if done.len() == before {
            return Poll::Pending;
        }
    })
    .await;
    done.sort_by_key(|(i, _)| *i);
    done.into_iter().map(|(_, out)| out).collect()
}

impl Run<'_> {
    /// The server in use, for messages: the one that answered last.
    fn server(&self) -> String {
        self.p.client.server_in_use()
    }

    /// Publishes one chunk. First optimistically: a record set whose owner is not
    /// known yet is taken to be new, and the UPDATE's prerequisites (record set and
    /// owner record absent) decide; only a chunk whose prerequisites fail is sent
    /// again after looking its owners up. Creations, the common case, then cost no
    /// query at all.
    async fn chunk(&mut self, chunk: Vec<Change>) {
        let mut stack = vec![(chunk, Lookups::Skip)];
        while let Some((part, lookups)) = stack.pop() {
            if let Err((failure, sent, guessed)) = self.apply(part, lookups).await {
                if guessed && failure.scope() == Scope::Prerequisite {
                    stack.push((sent, Lookups::Do));
                    continue;
                }
                self.after_failure(sent, failure, &mut stack).await;
            }
        }
    }

    /// Fails the messages of `change` with `text`; `label` tags the metric. Logged
    /// at debug level: the host logs each failed message, and a failure of a whole
    /// UPDATE is logged once where it is seen.
    fn fail(&mut self, change: &Change, label: &str, text: String) {
        let tags = [("zone", self.zone.as_str()), ("rcode", label)];
        let e = change.effective();
        tracing::debug!(name = %e.name, rtype = %e.rtype, error = %text, "Change failed.");
        for msg in change.msgs() {
            self.p.client.metrics.incr("rfc2136.failures", 1.0, &tags);
            self.failed.insert(msg, PluginError::new(text.clone()));
        }
    }

    fn fail_with(&mut self, change: &Change, failure: &Failure) {
        let refused = matches!(
            failure,
            Failure::Rcode {
                rcode: rcode::REFUSED,
                tsig_error: 0
            }
        );
        if refused && self.zone_refused == Some(false) && change.edits.len() == 1 {
            // The zone takes updates from this key, just not this one.
            let e = change.effective();
            let text = format!(
                "server {} refused the update of {} {} in zone {} (REFUSED): the key may not change this name, or the server's checks reject the record",
                self.server(), e.name, e.rtype, self.zone
            );
            return self.fail(change, "REFUSED", text);
        }
        let text = failure.describe(&self.server(), &self.zone);
        self.fail(change, &failure.label(), text);
    }

    fn succeed(&mut self, change: &Change) {
        for msg in change.msgs() {
            self.failed.remove(&msg);
        }
    }

    /// Queries record sets, [`PARALLEL_QUERIES`] at a time; results in order.
    async fn query_all(&self, keys: &[(Name, u16)]) -> Vec<Served> {
        let limit = Arc::new(Semaphore::new(PARALLEL_QUERIES));
        let mut tasks = JoinSet::new();
        for (i, (name, rtype)) in keys.iter().enumerate() {
            let (client, limit, name, rtype) =
                (self.p.client.clone(), limit.clone(), name.clone(), *rtype);
            tasks.spawn(async move {
                let _permit = limit.acquire().await;
                (i, client.query(&name, rtype).await)
            });
        }
        let mut out: Vec<Served> = keys
            .iter()
            .map(|_| Err(Failure::Io("query task failed".to_owned())))
            .collect();
        while let Some(joined) = tasks.join_next().await {
            if let Ok((i, found)) = joined {
                out[i] = found;
            }
        }
        out
    }

    /// Looks up the owner records of `changes` not looked up yet in this run.
    async fn look_up_owners(&mut self, changes: &[Change]) -> Result<(), Failure> {
        let p = self.p;
        if p.ownership.manage_unowned {
            // Every claim is `Force`: nothing to look up.
            return Ok(());
        }
        let txt = RecordType::TXT.0;
        let wanted: Vec<(Name, u16)> = changes
            .iter()
            .map(|c| c.effective().owner.clone())
            .filter(|o| !self.owners.contains_key(o))
            .map(|o| (o, txt))
            .collect();
        let found = self.query_all(&wanted).await;
        for ((name, _), found) in wanted.into_iter().zip(found) {
            let found = match found {
                Ok(found) => found,
                Err(f) if f.scope() == Scope::Transient => return Err(f),
                Err(f) => return Err(self.lookup_failed(f).await),
            };
            let state = match found {
                rrs if rrs.is_empty() => OwnerState::Absent,
                rrs if rrs.len() == 1 && rrs[0].1 == p.value => OwnerState::Ours,
                rrs if rrs.len() == 1 && !p.previous.is_empty() && rrs[0].1 == p.previous => {
                    OwnerState::Previous
                }
                rrs => {
                    let shown: Vec<String> = rrs.iter().map(|(_, r)| rdata_text(txt, r)).collect();
                    OwnerState::Foreign(shown.join(", "))
                }
            };
            self.owners.insert(name, state);
        }
        Ok(())
    }

    /// An owner lookup was answered with an error: the zone-wide reason if an empty
    /// UPDATE shows one (not authoritative, refused, wrong key), else the lookup's.
    async fn lookup_failed(&mut self, f: Failure) -> Failure {
        match self.p.client.probe_update().await {
            Err(probe) => {
                let refused = matches!(
                    probe,
                    Failure::Rcode {
                        rcode: rcode::REFUSED,
                        ..
                    }
                );
                self.zone_refused = Some(refused);
                probe
            }
            Ok(()) => {
                self.zone_refused = Some(false);
                match f {
                    Failure::Rcode { rcode, .. } => Failure::OwnerLookup(rcode),
                    other => other,
                }
            }
        }
    }

    fn not_owned(&self, e: &Edit, found: &str, unmarked: bool) -> String {
        let id = &self.p.ownership.owner_id;
        let hint = if unmarked {
            "; `adopt = true` takes over record sets without an owner record"
        } else {
            "; `adopt_from_owner` takes over the record sets of another owner id"
        };
        format!(
            "{} {} is not owned by gordon owner {id} (owner record {} at server {} holds {found}): leaving it alone{hint}",
            e.name, e.rtype, e.owner, self.server()
        )
    }

    /// How `e` claims its record set, from what the lookups found; `Err` with the
    /// reason when it may not touch it.
    fn claim(&self, e: &Edit) -> Result<Claim, String> {
        let own = &self.p.ownership;
        if own.manage_unowned {
            return Ok(Claim::Force);
        }
        match self.owners.get(&e.owner) {
            Some(OwnerState::Ours) => Ok(Claim::Ours),
            Some(OwnerState::Previous) => Ok(Claim::Previous),
            Some(OwnerState::Absent) | None if own.adopt => Ok(Claim::Adopt),
            Some(OwnerState::Absent) | None => Ok(Claim::New),
            Some(OwnerState::Foreign(found)) => Err(self.not_owned(e, found, false)),
        }
    }

    /// Sends one UPDATE for `part`, looking its unknown owners up first unless
    /// `lookups` says to guess them absent. On a failure of the UPDATE as a whole,
    /// returns it with the changes it carried and whether an owner was guessed;
    /// everything else is settled here.
    async fn apply(
        &mut self,
        part: Vec<Change>,
        lookups: Lookups,
    ) -> Result<(), (Failure, Vec<Change>, bool)> {
        let guessed = lookups == Lookups::Skip
            && !self.p.ownership.manage_unowned
            && part
                .iter()
                .any(|c| !self.owners.contains_key(&c.effective().owner));
        if lookups == Lookups::Do {
            if let Err(f) = self.look_up_owners(&part).await {
                return Err((f, part, false));
            }
        }
        let mut sent: Vec<(Change, Claim)> = Vec::with_capacity(part.len());
        for change in part {
            let e = change.effective();
            let claim = match self.claim(e) {
                Ok(claim) => claim,
                Err(text) => {
                    self.fail(&change, "not_owned", text);
                    continue;
                }
            };
            sent.push((change, claim));
        }
        if sent.is_empty() {
            return Ok(());
        }
        let p = self.p;
        let refs: Vec<(&Edit, Claim)> = sent
            .iter()
            .map(|(c, claim)| (c.effective(), *claim))
            .collect();
        let msg = update_message(&p.client.zone, &refs, p.values());
        let client = &p.client;
        let started = Instant::now();
        let result = client.update(&msg).await;
        let tags = client.tags();
        client.metrics.incr("rfc2136.updates", 1.0, &tags);
        client.metrics.timer(
            "rfc2136.update_seconds",
            started.elapsed().as_secs_f64(),
            &tags,
        );
        tracing::debug!(server = %self.server(), zone = %self.zone, changes = sent.len(), bytes = msg.len(), ok = result.is_ok(), "Sent an update.");
        let changes: Vec<Change> = sent.into_iter().map(|(c, _)| c).collect();
        if let Err(f) = result {
            return Err((f, changes, guessed));
        }
        client
            .metrics
            .incr("rfc2136.changes", changes.len() as f64, &tags);
        for c in &changes {
            let now = if c.effective().op == Op::Delete {
                OwnerState::Absent
            } else {
                OwnerState::Ours
            };
            self.owners.insert(c.effective().owner.clone(), now);
        }
        let problems = self.verify(&changes).await;
        for c in &changes {
            match problems.get(&c.effective().msg) {
                Some(text) => self.fail(c, "mismatch", text.clone()),
                None => self.succeed(c),
            }
        }
        Ok(())
    }

    /// Whether the server refuses every update of the zone with this key (an empty
    /// UPDATE tells), so a REFUSED batch need not be split record by record.
    async fn zone_refused(&mut self) -> bool {
        if self.zone_refused.is_none() {
            let probe = self.p.client.probe_update().await;
            self.zone_refused = Some(matches!(
                probe,
                Err(Failure::Rcode {
                    rcode: rcode::REFUSED,
                    ..
                })
            ));
        }
        self.zone_refused == Some(true)
    }

    /// Decides what to do with changes whose UPDATE failed as a whole.
    async fn after_failure(
        &mut self,
        mut sent: Vec<Change>,
        f: Failure,
        stack: &mut Vec<(Vec<Change>, Lookups)>,
    ) {
        let record_level = match f.scope() {
            Scope::Records | Scope::Prerequisite => {
                !matches!(
                    f,
                    Failure::Rcode {
                        rcode: rcode::REFUSED,
                        ..
                    }
                ) || !self.zone_refused().await
            }
            Scope::Transient | Scope::Zone => false,
        };
        if !record_level {
            let error = f.describe(&self.server(), &self.zone);
            tracing::warn!(changes = sent.len(), %error, "Update failed; failing its messages.");
            for c in &sent {
                self.fail_with(c, &f);
            }
        } else if sent.len() > 1 {
            let second = sent.split_off(sent.len() / 2);
            stack.push((second, Lookups::Do));
            stack.push((sent, Lookups::Do));
        } else if let Some(change) = sent.pop() {
            self.alone(change, f).await;
        }
    }

    /// A change that failed on its own. A failed prerequisite may come from a stale
    /// lookup (or an earlier attempt that did land): look again and retry once. A
    /// change folded from several messages is retried message by message, so only
    /// the bad one fails.
    async fn alone(&mut self, change: Change, f: Failure) {
        let singles: Vec<(Change, Option<Failure>)> = if change.edits.len() > 1 {
            change
                .edits
                .into_iter()
                .map(|e| (Change { edits: vec![e] }, None))
                .collect()
        } else {
            vec![(change, Some(f))]
        };
        for (single, known) in singles {
            let mut outcome = match known {
                Some(f) => Err(f),
                None => self
                    .apply(vec![single.clone()], Lookups::Do)
                    .await
                    .map_err(|(f, ..)| f),
            };
            if let Err(f) = &outcome {
                let o = single.effective().owner.clone();
                if f.scope() == Scope::Prerequisite {
                    self.owners.remove(&o);
                    outcome = self
                        .apply(vec![single.clone()], Lookups::Do)
                        .await
                        .map_err(|(f, ..)| f);
                    if let Err(f) = &outcome {
                        if f.scope() == Scope::Prerequisite {
                            let (found, unmarked) = match self.owners.get(&o) {
                                Some(OwnerState::Absent) => {
                                    ("nothing, but the record set exists".to_owned(), true)
                                }
                                Some(OwnerState::Foreign(s)) => (s.clone(), false),
                                _ => ("a record that changed during the update".to_owned(), false),
                            };
                            let text = self.not_owned(single.effective(), &found, unmarked);
                            self.fail(&single, "not_owned", text);
                            continue;
                        }
                    }
                }
            }
            match outcome {
                Ok(()) => {}
                Err(f) => self.fail_with(&single, &f),
            }
        }
    }

    /// Checks what the server serves for `changes`; returns the problems found by
    /// message index of each change's effective edit.
    async fn verify(&self, changes: &[Change]) -> HashMap<usize, String> {
        let keys: Vec<(Name, u16)> = changes
            .iter()
            .map(|c| (c.effective().name.clone(), c.effective().rtype.0))
            .collect();
        let served: Vec<Served> = match self.p.verify {
            Verify::None => return HashMap::new(),
            Verify::Query => self.query_all(&keys).await,
            Verify::Axfr => match self.p.client.axfr().await {
                Ok(records) => {
                    let mut sets: HashMap<(Name, u16), Rrs> = HashMap::new();
                    for (name, rtype, ttl, rdata) in records {
                        sets.entry((name, rtype)).or_default().push((ttl, rdata));
                    }
                    keys.iter()
                        .map(|k| Ok(sets.remove(k).unwrap_or_default()))
                        .collect()
                }
                Err(f) => keys.iter().map(|_| Err(f.clone())).collect(),
            },
        };
        let mut problems = HashMap::new();
        for (c, served) in changes.iter().zip(served) {
            let e = c.effective();
            let problem = match served {
                Err(f) => Some(format!(
                    "cannot verify: {}",
                    f.describe(&self.server(), &self.zone)
                )),
                Ok(rrs) => mismatch(e, &rrs),
            };
            if let Some(problem) = problem {
                let (server, zone) = (self.server(), &self.zone);
                let what = format!(
                    "server {server} does not serve what was sent for {} {} in zone {zone}",
                    e.name, e.rtype
                );
                problems.insert(e.msg, format!("{what}: {problem}"));
            }
        }
        problems
    }
}

/// How the served records `rrs` differ from what `e` asked for, if they do.
fn mismatch(e: &Edit, rrs: &[(u32, Vec<u8>)]) -> Option<String> {
    let show = |set: &mut Vec<&Vec<u8>>| {
        set.sort();
        let texts: Vec<String> = set.iter().map(|r| rdata_text(e.rtype.0, r)).collect();
        format!("[{}]", texts.join(", "))
    };
    let mut got: Vec<&Vec<u8>> = rrs.iter().map(|(_, r)| r).collect();
    match &e.op {
        Op::Delete if got.is_empty() => None,
        Op::Delete => Some(format!("expected no records, got {}", show(&mut got))),
        Op::Replace { ttl, rdatas } => {
            let mut want: Vec<&Vec<u8>> = rdatas.iter().collect();
            let ttls_ok = rrs.iter().all(|(t, _)| t == ttl);
            let (w, g) = (show(&mut want), show(&mut got));
            if w == g && ttls_ok {
                None
            } else {
                let got_ttl = rrs
                    .first()
                    .map_or(String::new(), |(t, _)| format!(" (ttl {t})"));
                Some(format!("expected {w} (ttl {ttl}), got {g}{got_ttl}"))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::cell::Cell;

    use gordon_plugin_api::testing::event;
    use gordon_plugin_api::tokio;

    use super::*;
    use crate::changes::{fold, validate, Rules};

    fn change(name: &str, rtype: &str, index: usize) -> Change {
        let zone = Name::parse("example.com.").unwrap();
        let rules = Rules {
            zone: &zone,
            default_ttl: 300,
        };
        let data = if rtype == "CNAME" {
            "target"
        } else {
            "10.0.0.1"
        };
        let edit = validate(index, &event(name, rtype, &[data]), rules).unwrap();
        fold(vec![edit]).remove(0)
    }

    fn names(waves: &[Vec<Vec<Change>>]) -> Vec<Vec<Vec<String>>> {
        let show = |c: &Change| format!("{} {}", c.effective().name, c.effective().rtype);
        waves
            .iter()
            .map(|w| w.iter().map(|c| c.iter().map(show).collect()).collect())
            .collect()
    }

    #[test]
    fn chunks_that_share_a_name_go_out_one_after_the_other() {
        let chunks = vec![
            vec![change("a", "A", 0), change("b", "A", 1)],
            vec![change("c", "A", 2)],
            // Same name as the first chunk, another type: waits for it.
            vec![change("a", "CNAME", 3), change("d", "A", 4)],
            vec![change("e", "A", 5)],
        ];
        let got = names(&waves(chunks));
        assert_eq!(
            got,
            [
                vec![
                    vec!["a.example.com. A", "b.example.com. A"],
                    vec!["c.example.com. A"]
                ],
                vec![
                    vec!["a.example.com. CNAME", "d.example.com. A"],
                    vec!["e.example.com. A"]
                ],
            ]
        );
    }

    #[test]
    fn concurrently_keeps_order_and_its_limit() {
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        let (running, most) = (Cell::new(0), Cell::new(0));
        let futures = (0..10).map(|i| {
            let (running, most) = (&running, &most);
            async move {
                running.set(running.get() + 1);
                most.set(most.get().max(running.get()));
                for _ in 0..(10 - i) {
                    tokio::task::yield_now().await;
                }
                running.set(running.get() - 1);
                i * 2
            }
        });
        let out = rt.block_on(concurrently(futures, 3));
        assert_eq!(out, (0..10).map(|i| i * 2).collect::<Vec<_>>());
        assert_eq!(most.get(), 3);
        assert!(rt
            .block_on(concurrently(Vec::<std::future::Ready<()>>::new(), 3))
            .is_empty());
    }
}
