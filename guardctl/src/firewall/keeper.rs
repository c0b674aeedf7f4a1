//! The daemon's side of the firewall: one [`Keeper::pass`] per store change.
//!
//! A pass reads only the sources the change log names since the last pass
//! and sends their elements as one small batch. A full load (every active
//! ban) runs at start, at each resync, when the allow list or the country
//! blocks changed, when a network wider than one source changed (interval
//! sets need their overlaps recomputed), and after any nft error. Blocked
//! countries' ranges are read again only when the store's geo revision moves.

use super::{Change, Desired, Entry, GeoBlock, REBUILD_OVER, Sync, Units, parse_source};
use authguard_core::config::Config;
use authguard_core::store::Store;
use authguard_core::time::Timestamp;
use ipnet::IpNet;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Keeps the firewall in step with the store across passes.
#[derive(Debug)]
pub struct Keeper {
    config: Config,
    units: Units,
    sync: Sync,
    /// The change-log revision the firewall reflects; `None`: load everything.
    rev: Option<i64>,
    /// The blocked countries' ranges last read (`None`: not yet).
    geo: Option<Arc<GeoBlock>>,
    /// A bulk write seen going on, waited for before the rebuild.
    settling: Option<Settling>,
}

/// How long the change log must rest after a bulk write's mark before the
/// rebuild: a 100,000-decision pull commits a chunk every few tens of
/// milliseconds, and one rebuild at its end beats one per chunk.
const SETTLE: Duration = Duration::from_millis(100);
/// The longest a rebuild waits for a bulk write that keeps going.
const SETTLE_AT_MOST: Duration = Duration::from_secs(3);

/// A bulk write being waited for: the change log's revision last seen,
/// when it last moved, and when the wait began.
#[derive(Debug, Clone, Copy)]
struct Settling {
    rev: i64,
    moved: Instant,
    began: Instant,
}

impl Keeper {
    /// A keeper that loads everything on its first pass.
    pub fn new(config: &Config) -> Keeper {
        Keeper {
            config: config.clone(),
            units: Units::of(config),
            sync: Sync::new(config),
            rev: None,
            geo: None,
            settling: None,
        }
    }

    /// What the firewall holds, as far as the keeper knows.
    pub fn applied(&self) -> Option<&Desired> {
        self.sync.applied()
    }

    /// Brings the firewall in step with the store. `full`: load every ban
    /// and compare with the kernel's table (the periodic resync).
    pub fn pass(
        &mut self,
        store: &mut Store,
        full: bool,
        now: Timestamp,
    ) -> anyhow::Result<Change> {
        let allowed = Desired::allowed(&self.config, store)?;
        let allow_changed = self.applied().is_some_and(|a| a.allowed != allowed);
        let geo_revision = store.geo_revision()?;
        let geo_changed = self
            .applied()
            .is_some_and(|a| a.geo.revision != geo_revision);
        let change = match (self.rev, self.applied()) {
            (Some(rev), Some(_)) if !full && !allow_changed && !geo_changed => {
                self.changed_since(store, rev, &allowed, now)
            }
            _ => self.load_all(store, full, now),
        };
        if change.is_err() {
            // Whatever failed, the next pass starts from the whole store.
            self.rev = None;
        }
        change
    }

    fn load_all(
        &mut self,
        store: &mut Store,
        verify: bool,
        now: Timestamp,
    ) -> anyhow::Result<Change> {
        // The revision first: a change made during the load is then seen
        // twice (harmless), never missed.
        let rev = store.ban_revision()?;
        // Whatever bulk write was being waited for, this load takes it in.
        self.settling = None;
        let geo = self.geo(store)?;
        let desired = Desired::load(&self.config, store, now, geo)?;
        let change = self.sync.sync(desired, verify, now)?;
        self.advance(store, rev);
        Ok(change)
    }

    fn changed_since(
        &mut self,
        store: &mut Store,
        rev: i64,
        allowed: &[IpNet],
        now: Timestamp,
    ) -> anyhow::Result<Change> {
        let changes = store.ban_changes_since(rev)?;
        if changes.sources.is_empty() && !changes.reload {
            return Ok(Change::Nothing);
        }
        // A flood of changes (a fleet's full pull) is one rebuild, not
        // thousands of one-element batches and log lines.
        if changes.reload && !self.settled(changes.rev) {
            return Ok(Change::Settling);
        }
        if changes.reload || changes.sources.len() > REBUILD_OVER {
            return self.load_all(store, false, now);
        }
        let mut updates = Vec::with_capacity(changes.sources.len());
        for source in &changes.sources {
            let Some(net) = parse_source(source) else {
                continue;
            };
            if !self.units.is_unit(&net) {
                return self.load_all(store, false, now);
            }
            let entry = if allowed.iter().any(|a| a.contains(&net)) {
                None
            } else {
                let bans = store.active_bans_of(source, now)?;
                Entry::merged(bans.iter().map(Entry::of))
            };
            updates.push((net, entry));
        }
        let change = self.sync.update(updates, now)?;
        // A new ban makes a past offender: key-only at once, not at the next resync.
        let steering = self.steering(store, now)?;
        let steered = self.sync.update_steering(steering, now)?;
        self.advance(store, changes.rev);
        Ok(match (change, steered) {
            (_, rebuilt @ Change::Rebuilt { .. }) => rebuilt,
            (Change::Nothing, steered) => steered,
            (change, _) => change,
        })
    }

    /// True once the change log has rested for [`SETTLE`] at `rev` (or the
    /// wait has lasted [`SETTLE_AT_MOST`]).
    fn settled(&mut self, rev: i64) -> bool {
        let at = Instant::now();
        let s = self.settling.get_or_insert(Settling {
            rev,
            moved: at,
            began: at,
        });
        if s.rev != rev {
            (s.rev, s.moved) = (rev, at);
        }
        let done = at - s.moved >= SETTLE || at - s.began >= SETTLE_AT_MOST;
        if done {
            self.settling = None;
        }
        done
    }

    /// The key-only steering wanted now (countries from the copy in hand).
    fn steering(
        &mut self,
        store: &Store,
        now: Timestamp,
    ) -> anyhow::Result<Option<super::steering::Steering>> {
        let geo = self.geo(store)?;
        Desired::steering(&self.config, store, now, &geo)
    }

    /// Makes the next pass load everything (sshd's key-only listener came
    /// or went: the steering rules change with it).
    pub fn reload_next(&mut self) {
        self.rev = None;
    }

    /// The blocked countries' ranges: the copy in hand while the store's
    /// geo revision is unchanged, else read again.
    fn geo(&mut self, store: &Store) -> anyhow::Result<Arc<GeoBlock>> {
        let revision = store.geo_revision()?;
        match &self.geo {
            Some(geo) if geo.revision == revision => Ok(Arc::clone(geo)),
            _ => {
                let geo = Arc::new(GeoBlock::load(&self.config, store)?);
                self.geo = Some(Arc::clone(&geo));
                Ok(geo)
            }
        }
    }

    /// Records that the firewall reflects the log up to `rev`, and prunes it.
    fn advance(&mut self, store: &mut Store, rev: i64) {
        self.rev = Some(rev);
        // A failed prune only leaves rows to skip next time.
        let _ = store.prune_ban_changes(rev);
    }
}
