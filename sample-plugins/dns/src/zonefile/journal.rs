//! The zone file's journal: what each batch changed, appended and fsynced before the
//! batch's messages are reported published, so that a batch costs what it changes
//! rather than what the zone holds (BIND's `.jnl` does the same for dynamic zones).
//!
//! The journal is a sequence of segment files beside the zone file,
//! `<zone file>.jnl.<seq>`. Each line of a segment is one batch, as JSON: its serial
//! and, for every record set it changed, the set as it now is (or `null` when it was
//! removed), so replaying a line twice changes nothing. The writer starts a new
//! segment whenever it takes a snapshot to rewrite the zone file, and removes the
//! older segments once that file is in place: at any moment, the zone file plus the
//! entries of the segments left whose serial is above the file's is the whole zone.
//!
//! A crash in the middle of an append leaves a last line without its newline: that
//! batch was never reported published and is ignored. Any other line that does not
//! read is an error naming the segment and the line.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write as _};
use std::path::{Path, PathBuf};

use gordon_plugin_api::RecordType;
use serde::{Deserialize, Serialize};

/// One record set as a batch left it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct SetChange {
    /// Absolute owner name.
    pub(crate) name: String,
    /// The type code.
    pub(crate) rtype: u16,
    /// `(ttl, rrdatas)`, or `None` when the set was removed.
    pub(crate) set: Option<(u32, Vec<String>)>,
}

impl SetChange {
    pub(crate) fn record_type(&self) -> RecordType {
        RecordType(self.rtype)
    }
}

/// One batch.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Entry {
    /// The zone's serial after the batch.
    pub(crate) serial: u32,
    pub(crate) changes: Vec<SetChange>,
}

/// The open journal: the segment being appended to, and the older ones whose
/// entries may not be in the zone file yet.
#[derive(Debug)]
pub(crate) struct Journal {
    /// `<zone file>.jnl`; segments are `<base>.<seq>`.
    base: PathBuf,
    dir: PathBuf,
    current: File,
    current_seq: u64,
    older: Vec<u64>,
}

fn segment(base: &Path, seq: u64) -> PathBuf {
    let mut name = base.as_os_str().to_owned();
    name.push(format!(".{seq}"));
    PathBuf::from(name)
}

impl Journal {
    /// Opens the journal of `zone_file`: reads the entries of every segment there is
    /// (oldest first) and starts a new segment after them. The segments read stay
    /// until [`Journal::remove`] is given them (once the zone file holds them).
    pub(crate) fn open(zone_file: &Path) -> Result<(Journal, Vec<Entry>), String> {
        let mut base = zone_file.as_os_str().to_owned();
        base.push(".jnl");
        let base = PathBuf::from(base);
        let dir = zone_file
            .parent()
            .filter(|d| !d.as_os_str().is_empty())
            .map_or_else(|| PathBuf::from("."), Path::to_path_buf);
        fs::create_dir_all(&dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
        let older = segments(&base, &dir)?;
        let mut entries = Vec::new();
        for seq in &older {
            entries.extend(read_segment(&segment(&base, *seq))?);
        }
        let current_seq = older.last().map_or(1, |s| s + 1);
        let current = create(&base, &dir, current_seq).map_err(|e| {
            format!(
                "cannot create {}: {e}",
                segment(&base, current_seq).display()
            )
        })?;
        let journal = Journal {
            base,
            dir,
            current,
            current_seq,
            older,
        };
        Ok((journal, entries))
    }

    /// Appends one batch and waits until it is on disk.
    pub(crate) fn append(&mut self, entry: &Entry) -> io::Result<()> {
        #[cfg(test)]
        if failing::is_set(&self.base) {
            return Err(io::Error::other("injected failure"));
        }
        let mut line = serde_json::to_vec(entry).map_err(io::Error::other)?;
        line.push(b'\n');
        self.current.write_all(&line)?;
        self.current.sync_data()
    }

    /// Starts a new segment; returns every older segment, to be removed once the
    /// zone file holds the state of this moment.
    pub(crate) fn rotate(&mut self) -> io::Result<Vec<u64>> {
        let next = self.current_seq + 1;
        self.current = create(&self.base, &self.dir, next)?;
        self.older.push(self.current_seq);
        self.current_seq = next;
        Ok(self.older.clone())
    }

    /// Removes every segment before the current one (at start-up, once the zone
    /// file holds what they held).
    pub(crate) fn remove_older(&mut self) -> io::Result<()> {
        let older = self.older.clone();
        self.remove(&older)
    }

    /// Removes segments the zone file now holds.
    pub(crate) fn remove(&mut self, done: &[u64]) -> io::Result<()> {
        for seq in done {
            match fs::remove_file(segment(&self.base, *seq)) {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(e) => return Err(e),
            }
        }
        self.older.retain(|s| !done.contains(s));
        File::open(&self.dir)?.sync_all()
    }
}

/// Creates segment `seq` (empty) and makes its name durable.
fn create(base: &Path, dir: &Path, seq: u64) -> io::Result<File> {
    let file = OpenOptions::new()
        .create(true)
        .append(true)
        .open(segment(base, seq))?;
    File::open(dir)?.sync_all()?;
    Ok(file)
}

/// The sequence numbers of the segments of `base` in `dir`, in order.
fn segments(base: &Path, dir: &Path) -> Result<Vec<u64>, String> {
    let prefix = format!(
        "{}.",
        base.file_name()
            .map(|n| n.to_string_lossy())
            .unwrap_or_default()
    );
    let listing = fs::read_dir(dir).map_err(|e| format!("cannot list {}: {e}", dir.display()))?;
    let mut seqs: Vec<u64> = listing
        .filter_map(Result::ok)
        .filter_map(|e| {
            let name = e.file_name().to_string_lossy().into_owned();
            name.strip_prefix(&prefix)?.parse().ok()
        })
        .collect();
    seqs.sort_unstable();
    Ok(seqs)
}

/// The entries of one segment; a torn last line is left out.
fn read_segment(path: &Path) -> Result<Vec<Entry>, String> {
    let text = fs::read(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    let mut entries = Vec::new();
    let mut lines = text.split(|b| *b == b'\n').enumerate().peekable();
    while let Some((i, line)) = lines.next() {
        if lines.peek().is_none() {
            // After the last newline: empty, or a batch whose append did not finish
            // (never reported published).
            break;
        }
        let entry = serde_json::from_slice(line)
            .map_err(|e| format!("journal {} line {}: {e}", path.display(), i + 1))?;
        entries.push(entry);
    }
    Ok(entries)
}

/// Fault injection for tests: appends to the journal of a zone file fail while
/// the guard lives.
#[cfg(test)]
pub(crate) fn fail_appends(zone_file: &Path) -> failing::Guard {
    let mut base = zone_file.as_os_str().to_owned();
    base.push(".jnl");
    failing::set(PathBuf::from(base))
}

#[cfg(test)]
pub(crate) mod failing {
    use std::path::{Path, PathBuf};
    use std::sync::Mutex;

    static FAILING: Mutex<Vec<PathBuf>> = Mutex::new(Vec::new());

    pub(crate) struct Guard(PathBuf);

    impl Drop for Guard {
        fn drop(&mut self) {
            let mut all = FAILING.lock().unwrap_or_else(|p| p.into_inner());
            all.retain(|p| *p != self.0);
        }
    }

    pub(super) fn set(base: PathBuf) -> Guard {
        let mut all = FAILING.lock().unwrap_or_else(|p| p.into_inner());
        all.push(base.clone());
        Guard(base)
    }

    pub(super) fn is_set(base: &Path) -> bool {
        let all = FAILING.lock().unwrap_or_else(|p| p.into_inner());
        all.iter().any(|p| p == base)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(serial: u32, name: &str) -> Entry {
        Entry {
            serial,
            changes: vec![SetChange {
                name: name.to_owned(),
                rtype: RecordType::A.0,
                set: Some((300, vec!["10.0.0.1".to_owned()])),
            }],
        }
    }

    #[test]
    fn entries_survive_reopening_and_a_torn_append_is_ignored() {
        let dir = tempfile::tempdir().unwrap();
        let zone = dir.path().join("z.zone");
        let (mut j, none) = Journal::open(&zone).unwrap();
        assert!(none.is_empty());
        j.append(&entry(1, "a.")).unwrap();
        let older = j.rotate().unwrap();
        j.append(&entry(2, "b.")).unwrap();
        drop(j);
        // A crash in the middle of the next append.
        let mut f = OpenOptions::new()
            .append(true)
            .open(segment(&dir.path().join("z.zone.jnl"), 2))
            .unwrap();
        f.write_all(br#"{"serial":3,"chan"#).unwrap();
        let (mut j, read) = Journal::open(&zone).unwrap();
        assert_eq!(read, [entry(1, "a."), entry(2, "b.")]);
        // Once the zone file holds them, the old segments go.
        j.remove(&older).unwrap();
        j.remove(&[2]).unwrap();
        let (_j, read) = Journal::open(&zone).unwrap();
        assert!(read.is_empty(), "{read:?}");
    }

    #[test]
    fn a_damaged_line_names_the_segment_and_line() {
        let dir = tempfile::tempdir().unwrap();
        let zone = dir.path().join("z.zone");
        fs::write(
            dir.path().join("z.zone.jnl.4"),
            "{\"serial\":1,\"changes\":[]}\nnot json\n",
        )
        .unwrap();
        let e = Journal::open(&zone).unwrap_err();
        assert!(e.contains("z.zone.jnl.4 line 2"), "{e}");
    }
}
