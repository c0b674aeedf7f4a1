//! The WAL's life across the PAM module's short connections, and making a
//! ban durable.
//!
//! Each login opens the store twice (authenticate, setcred) for one
//! transaction each. By SQLite's default the last connection to close
//! checkpoints the WAL into the database and deletes the WAL and its index;
//! with no daemon holding the store open that is every close, and the next
//! open creates them again: five fsyncs and a directory sync per
//! transaction, two transactions per login.
//!
//! A login connection ([`super::Access::Login`]) leaves the WAL for the next
//! one (`SQLITE_DBCONFIG_NO_CKPT_ON_CLOSE`). But the WAL must not grow: when
//! no other connection has the store open, the next opener rebuilds the
//! WAL's index by reading every frame in it, and forgets what was already
//! copied back, so SQLite's own autocheckpoint never restarts the WAL and
//! each open would read more. So after a commit that leaves the WAL at
//! [`TRUNCATE_AT_BYTES`] or more, the connection checkpoints it
//! (`wal_checkpoint(PASSIVE)`: other logins keep committing meanwhile) and,
//! once all of it is copied back, cuts it to zero (`wal_checkpoint(TRUNCATE)`,
//! which then holds the write lock only for the cut), without waiting: if
//! anyone is reading or writing, the next login's commit tries again.
//!
//! Not while `guardctl daemon` runs (`meta` key `daemon.pid` names a live
//! guardctl process): it holds the store open, so the WAL index outlives
//! every login connection, nobody rebuilds it, and SQLite's autocheckpoint
//! (every 1,000 pages) keeps the WAL short. Cutting it every few logins
//! would only add three fsyncs to every fourth login.
//!
//! Durability. Commits run with `synchronous = NORMAL`: not fsynced, so a
//! power cut may lose the last attempts recorded (a few recent failures, or
//! successes). A transaction that creates a ban is fsynced before the
//! refusal that reports it goes out ([`super::Store::make_durable`]): a ban
//! is never lost. An fsync of the WAL syncs every frame in it, the ban's and
//! all before; a checkpoint syncs the WAL before it copies it into the
//! database and the database before it cuts the WAL, so there is no moment
//! at which a synced ban lives nowhere on disk.

use super::{MetaKey, Store, StoreError};
use rusqlite::config::DbConfig;
use std::path::PathBuf;
use std::time::Duration;

/// A login connection cuts the WAL once it holds this much: 64 pages of
/// 4 KiB with their frame headers, about four logins' worth.
pub const TRUNCATE_AT_BYTES: u64 = 64 * (4096 + 24);

impl Store {
    /// A login connection: the WAL stays at close.
    pub(super) fn leave_wal_on_close(&self) -> Result<(), StoreError> {
        self.conn
            .set_db_config(DbConfig::SQLITE_DBCONFIG_NO_CKPT_ON_CLOSE, true)?;
        Ok(())
    }

    /// After a login connection's commit: cuts the WAL if it has grown past
    /// [`TRUNCATE_AT_BYTES`] and nobody else is using the store. Best
    /// effort: a busy store or a failed checkpoint leaves it for the next.
    pub(super) fn trim_wal(&self) {
        let grown = std::fs::metadata(self.wal_path()).is_ok_and(|m| m.len() >= TRUNCATE_AT_BYTES);
        if !grown || self.held_by_daemon() || self.conn.busy_timeout(Duration::ZERO).is_err() {
            return;
        }
        // PASSIVE first: it copies the WAL into the database and fsyncs
        // both without the write lock, so other logins go on committing.
        // TRUNCATE takes the write lock for the whole checkpoint, fsyncs
        // included: on a disk whose flush takes 17 ms (the bench's slow
        // disk) every fourth login held every other one up for two of them,
        // and a flood of them ran out busy_timeout. Only once nothing is
        // left to copy does TRUNCATE run, to cut the file: a short hold.
        let passive = self
            .conn
            .query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |r| {
                Ok((
                    r.get::<_, i64>(0)?,
                    r.get::<_, i64>(1)?,
                    r.get::<_, i64>(2)?,
                ))
            });
        if let Ok((0, log, copied)) = passive
            && log >= 0
            && log == copied
        {
            let _ = self
                .conn
                .query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()));
        }
        let _ = self.conn.busy_timeout(self.timeout);
    }

    /// Whether `guardctl daemon` holds the store open: the pid it wrote at
    /// its start is a live process named guardctl (not a pid reused since).
    fn held_by_daemon(&self) -> bool {
        let Ok(Some(pid)) = self.meta(MetaKey::DaemonPid) else {
            return false;
        };
        let Ok(pid) = pid.parse::<u32>() else {
            return false;
        };
        std::fs::read_to_string(format!("/proc/{pid}/comm"))
            .is_ok_and(|c| c.trim_end() == "guardctl")
    }

    /// Puts everything committed so far on disk (fsync of the WAL), for a
    /// transaction that created a ban. Costs one fsync; only bans pay it.
    pub fn make_durable(&self) -> Result<(), StoreError> {
        match std::fs::File::open(self.wal_path()) {
            Ok(wal) => wal.sync_data()?,
            // Checkpointed and removed meanwhile (a closing guardctl): the
            // checkpoint synced the database before it removed the WAL.
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(e.into()),
        }
        Ok(())
    }

    fn wal_path(&self) -> PathBuf {
        let mut name = self.path.clone().into_os_string();
        name.push("-wal");
        PathBuf::from(name)
    }
}

#[cfg(test)]
mod tests {
    use super::super::Access;
    use super::super::admission::{Attempt, Decision};
    use super::super::test_support::TempStore;
    use super::*;
    use crate::config::Config;

    fn wal_len(t: &TempStore) -> Option<u64> {
        let mut name = t.path.clone().into_os_string();
        name.push("-wal");
        std::fs::metadata(name).ok().map(|m| m.len())
    }

    /// Logins as the PAM module runs them: two connections each, nobody
    /// else holding the store. Returns the largest WAL seen after a close.
    fn logins(t: &TempStore, n: i64) -> u64 {
        let config = Config::default();
        let ip = "192.0.2.10".parse().unwrap();
        let login = Attempt {
            ip,
            user: b"admin",
            service: "sshd",
        };
        let open = || Store::open(&t.path, Access::Login, Duration::from_secs(1)).unwrap();
        let mut largest = 0;
        for now in 1..=n {
            let Decision::Admitted { attempt_id, .. } = open().admit(&config, &login, now).unwrap()
            else {
                panic!("a clean source is admitted");
            };
            let mut store = open();
            store
                .record_success(&config.policy, ip, b"admin", Some(attempt_id), now)
                .unwrap();
            drop(store);
            largest = largest.max(wal_len(t).expect("a login connection leaves the WAL"));
        }
        largest
    }

    #[test]
    fn login_connections_keep_the_wal_but_never_let_it_grow() {
        let t = TempStore::new("wal-bound");
        let largest = logins(&t, 100);
        // One login writes a few pages past the bound before the cut.
        assert!(
            largest < TRUNCATE_AT_BYTES + 32 * 4120,
            "the WAL grew to {largest} bytes over 100 logins"
        );
        // Nothing recorded was lost by leaving or cutting the WAL.
        let store = t.open();
        let successes: i64 = store
            .conn()
            .query_row(
                "SELECT COUNT(*) FROM attempts WHERE outcome = 'success'",
                [],
                |r| r.get(0),
            )
            .unwrap();
        assert_eq!(successes, 100);
    }

    /// A process named guardctl (a copy of sleep), as the daemon would be.
    fn fake_daemon(t: &TempStore) -> std::process::Child {
        let exe = t.dir.join("guardctl");
        std::fs::copy("/bin/sleep", &exe).unwrap();
        std::process::Command::new(&exe).arg("60").spawn().unwrap()
    }

    #[test]
    fn while_the_daemon_holds_the_store_the_wal_is_left_to_sqlite() {
        let t = TempStore::new("wal-daemon");
        let mut daemon = fake_daemon(&t);
        let mut held = t.open();
        held.set_meta(MetaKey::DaemonPid, &daemon.id().to_string())
            .unwrap();
        let largest = logins(&t, 30);
        assert!(
            largest > 2 * TRUNCATE_AT_BYTES,
            "cut at {largest} bytes although the daemon holds the store"
        );
        // The daemon gone (its pid dead): the next logins cut the WAL again.
        // (`held` stays open, so no closing checkpoint removes the WAL.)
        daemon.kill().unwrap();
        daemon.wait().unwrap();
        logins(&t, 1);
        assert!(wal_len(&t).unwrap() < TRUNCATE_AT_BYTES);
        drop(held);
    }

    #[test]
    fn another_connection_keeps_its_default_close() {
        let t = TempStore::new("wal-write-close");
        logins(&t, 3);
        // A guardctl-style connection, the last to close, checkpoints and
        // removes the WAL as SQLite always did.
        drop(t.open());
        assert_eq!(wal_len(&t), None);
    }

    #[test]
    fn a_ban_can_be_made_durable_with_or_without_a_wal() {
        let t = TempStore::new("wal-durable");
        let store = Store::open(&t.path, Access::Login, Duration::from_secs(1)).unwrap();
        store.make_durable().expect("fsync of the WAL");
        let mut name = t.path.clone().into_os_string();
        name.push("-wal");
        let _ = std::fs::remove_file(name);
        store
            .make_durable()
            .expect("no WAL: the checkpoint that removed it synced the database");
    }
}
