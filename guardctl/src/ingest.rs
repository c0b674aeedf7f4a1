//! The daemon's reading of sshd's log: lines from the follower, parsed and
//! weighed (`ssh_hook`), recorded against their sources in batches
//! (`Store::record_log_events`), with the follower's position saved in the
//! same transaction, so a restart neither loses nor repeats an event.
//!
//! One pass reads at most [`BATCH`] lines and holds the write lock for one
//! short transaction: a burst of 10,000 lines becomes 100 transactions with
//! logins free to slip in between.

use anyhow::Context;
use authguard_core::config::{Config, LogSource, PamModule};
use authguard_core::store::bans::BanRecord;
use authguard_core::store::log_events::{LogEvent, LogOutcome, Worth};
use authguard_core::store::{MetaKey, Store};
use authguard_core::time::{self, Timestamp};
use ssh_hook::follow::file::{FileFollower, Position};
use ssh_hook::follow::journal::JournalFollower;
use ssh_hook::{Classifier, Event, Sequencer, Tracker, Weights};
use std::path::Path;

/// Lines per transaction: about 1.5 ms of write lock (500 held it 8 ms,
/// measured by `authguard-bench log`), so a login waits little behind one.
pub const BATCH: usize = 100;

/// Where the lines come from.
#[derive(Debug)]
enum Follower {
    File(FileFollower),
    Journal(JournalFollower),
}

impl Follower {
    fn poll(&mut self, max: usize, line: impl FnMut(&[u8])) -> std::io::Result<usize> {
        match self {
            Follower::File(f) => f.poll(max, line),
            Follower::Journal(j) => j.poll(max, line),
        }
    }

    /// The `meta` key and value to save with the lines handed out so far.
    fn checkpoint(&self) -> Option<(MetaKey, String)> {
        match self {
            Follower::File(f) => Some((MetaKey::LogFilePosition, f.position().to_text())),
            Follower::Journal(j) => j.cursor().map(|c| (MetaKey::JournalCursor, c.to_owned())),
        }
    }
}

/// What one pass did.
#[derive(Debug, Default)]
pub struct Ingested {
    /// Lines read.
    pub lines: usize,
    /// Bans the events created (subnet bans included).
    pub bans: Vec<BanRecord>,
}

/// One line read, with its event and what it is worth (none for lines
/// that hold no event).
#[derive(Debug)]
struct Weighed {
    line: Vec<u8>,
    event: Option<(Event<'static>, Worth)>,
}

/// Reads sshd's log into the store.
#[derive(Debug)]
pub struct Ingest {
    follower: Follower,
    sequencer: Sequencer,
    tracker: Tracker,
    weights: Weights,
    /// Lines' framing, with RFC 3164 dates read in the year the daemon started.
    classifier: Classifier,
    /// Lines read and weighed but not yet recorded (retried as they are,
    /// so the tracker never sees a line twice).
    pending: Vec<Weighed>,
    last_error: Option<String>,
}

impl Ingest {
    /// The reader `[sshd_log] source` asks for: `None` when it is off.
    pub fn start(config: &Config, store: &Store) -> Option<Ingest> {
        let saved = |key| store.meta(key).ok().flatten();
        let follower = match &config.sshd_log.source {
            LogSource::Off => return None,
            LogSource::Journal => Follower::Journal(JournalFollower::new(
                "journalctl",
                saved(MetaKey::JournalCursor),
            )),
            LogSource::File(path) => {
                let resume =
                    saved(MetaKey::LogFilePosition).and_then(|text| Position::from_text(&text));
                Follower::File(FileFollower::new(path, resume))
            }
        };
        let pam_active = match config.sshd_log.pam_module {
            PamModule::Active => true,
            PamModule::Inactive => false,
            PamModule::Auto => crate::pam_file::uses_module(Path::new("/etc/pam.d/sshd")),
        };
        Some(Ingest {
            follower,
            sequencer: Sequencer::new(),
            tracker: Tracker::new(),
            weights: Weights {
                probe: config.sshd_log.probe_weight.0,
                pam_active,
            },
            classifier: Classifier::new(
                i32::try_from(time::civil(time::now()).0).unwrap_or(i32::MAX),
            ),
            pending: Vec::new(),
            last_error: None,
        })
    }

    /// What is followed, for the log.
    pub fn describe(&self) -> String {
        match &self.follower {
            Follower::File(f) => f.path().display().to_string(),
            Follower::Journal(_) => {
                format!(
                    "the journal (SYSLOG_IDENTIFIER {})",
                    ssh_hook::framing::SSHD_PROGRAMS.join(", ")
                )
            }
        }
    }

    /// True the first time `message` is seen in a row (so a lasting fault is logged once).
    pub fn first_time(&mut self, message: &str) -> bool {
        if self.last_error.as_deref() == Some(message) {
            return false;
        }
        self.last_error = Some(message.to_owned());
        true
    }

    /// Reads up to [`BATCH`] new lines into `pending`, parsed and weighed.
    fn read_batch(&mut self) -> std::io::Result<()> {
        let mut lines = Vec::new();
        self.follower
            .poll(BATCH, |line| lines.push(line.to_vec()))?;
        for line in lines {
            let parsed = self.sequencer.resolve(self.classifier.classify(&line));
            let event = parsed.event().map(|event| {
                let worth = self.tracker.weigh(&event, &self.weights).worth();
                (event.into_owned(), worth)
            });
            self.pending.push(Weighed { line, event });
        }
        Ok(())
    }

    /// Reads up to [`BATCH`] new lines and records their events.
    pub fn pass(
        &mut self,
        config: &Config,
        store: &mut Store,
        now: Timestamp,
    ) -> anyhow::Result<Ingested> {
        // Lines whose recording failed last time are retried before new ones.
        if self.pending.is_empty() {
            self.read_batch()?;
        }
        if self.pending.is_empty() {
            return Ok(Ingested::default());
        }
        let records: Vec<LogEvent<'_>> = self
            .pending
            .iter()
            .filter_map(|w| {
                w.event
                    .as_ref()
                    .map(|(event, worth)| (event, *worth, &w.line))
            })
            .map(|(event, worth, line)| LogEvent {
                ip: event.addr,
                user: event.user.as_deref(),
                kind: event.kind.as_str(),
                worth,
                line,
                // A line's own time when it has one, else when we read it.
                at: event.time.filter(|t| *t <= now).unwrap_or(now),
            })
            .collect();
        let checkpoint = self.follower.checkpoint();
        let checkpoint = checkpoint.as_ref().map(|(k, v)| (*k, v.as_str()));
        let outcomes = store.record_log_events(config, &records, checkpoint, now)?;
        let mut bans = Vec::new();
        for outcome in outcomes {
            if let LogOutcome::Banned(ban, subnet) = outcome {
                bans.push(*ban);
                bans.extend(subnet.map(|b| *b));
            }
        }
        let lines = self.pending.len();
        self.pending.clear();
        self.last_error = None;
        if !bans.is_empty() {
            // Recorded (and not to be recorded twice): the caller logs a failure.
            store
                .make_durable()
                .context("bans recorded but not synced to disk")?;
        }
        Ok(Ingested { lines, bans })
    }
}
