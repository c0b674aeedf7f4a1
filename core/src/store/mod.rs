//! The SQLite store shared by every sshd process, `guardctl` and the daemon.
//!
//! - [`schema`]: tables, indexes, migrations (run by `guardctl init` only).
//! - [`admission`]: the one write transaction that admits or refuses a login.
//! - [`bans`]: creating, lifting, listing bans; a source's history.
//! - `ban_record`: one ban as kept ([`bans::BanRecord`]); `lookup`: the
//!   row-level queries the modules share (a ban row, networks containing
//!   an address).
//! - [`allow`]: the allow list kept in the store.
//! - [`changes`]: active bans and the change log the daemon follows.
//! - [`evidence`]: one source's attempts and log lines, for abuse reports.
//! - [`fleet`]: decisions pulled from CrowdSec's LAPI, held as bans.
//! - `facts`: the store answering the policy's questions ([`crate::policy::Facts`])
//!   inside a transaction, and writing down the bans it decides.
//! - [`geo`]: country data: IP ranges imported from geoip files, lookups,
//!   blocked countries.
//! - [`log_events`]: events from sshd's log, counted and banned like PAM's.
//! - [`meta`]: the keys of the `meta` table.
//! - [`metrics`]: counters and gauges for `guardctl metrics`; what the
//!   purge and `--forget` delete is folded into its counters.
//! - [`outbox`]: this host's bans waiting to reach the fleet's LAPI.
//! - [`offenders`]: past offenders, for key-only signaling.
//! - `queue`: the kernel queue login writers wait their turn in.
//! - `wal`: the WAL across the PAM module's short connections; a ban's fsync.
//! - [`reports`]: abuse reports sent, and what their sources did after.
//! - [`whois`]: abuse contacts whois named, cached for reports.
//!
//! A [`Store`] is one connection, opened for one job and dropped after it:
//! nothing here is kept in a static or across a fork.

pub mod admission;
pub mod allow;
mod ban_record;
pub mod bans;
pub mod changes;
pub mod evidence;
mod facts;
pub mod fleet;
pub mod geo;
pub mod log_events;
mod lookup;
pub mod meta;
pub mod metrics;
pub mod offenders;
pub mod outbox;
mod queue;
pub mod reports;
pub mod schema;
pub mod unresponsive;
mod wal;
pub mod whois;

use rusqlite::{Connection, ErrorCode, OpenFlags};
use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

pub use meta::MetaKey;
pub use schema::SCHEMA_VERSION;

/// Why the store could not be used. Each variant is a fault the PAM module
/// survives by applying `fail_mode`, and `guardctl` reports in words.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// There is no store file at the path (run `guardctl init`).
    #[error("no store at {0} (run `guardctl init`)")]
    Missing(PathBuf),
    /// The store exists but this process may not open it as asked.
    #[error("no permission to open the store {0} (guardctl must run as root)")]
    Permission(PathBuf),
    /// The store was made by another version of authguard.
    #[error(
        "store schema version {found}, this build knows {expected} (run `guardctl init` to migrate)"
    )]
    SchemaMismatch {
        /// `PRAGMA user_version` of the file.
        found: i64,
        /// [`SCHEMA_VERSION`].
        expected: i64,
    },
    /// Another process held the write lock past `busy_timeout`.
    #[error("store is locked by another process (waited {0:?})")]
    Busy(Duration),
    /// A login waited `busy_timeout` for its turn while other connections
    /// kept committing: the store works and is saturated (a flood), not
    /// stuck. The PAM module refuses such an attempt instead of admitting
    /// it uncounted, whatever `fail_mode` says (that is for a store that
    /// does not work).
    #[error("store is saturated: others kept committing while this login waited {0:?}")]
    Saturated(Duration),
    /// The work took longer than its deadline and was interrupted.
    #[error("store operation interrupted after its deadline of {0:?}")]
    Timeout(Duration),
    /// The file is not a database, or its pages are damaged.
    #[error("store is corrupt: {0}")]
    Corrupt(SqliteError),
    /// SQLite found the file read-only.
    #[error("store is read-only: {0}")]
    ReadOnly(SqliteError),
    /// The file (or its directory, for the -wal/-shm files) is on a
    /// read-only file system.
    #[error("store is read-only: {} is on a read-only file system", .0.display())]
    ReadOnlyFileSystem(PathBuf),
    /// The disk is full.
    #[error("disk full while writing the store")]
    Full,
    /// Any other SQLite failure.
    #[error("store error: {0}")]
    Sqlite(SqliteError),
    /// An I/O failure around the store (its directory, its file modes).
    #[error("store error: {0}")]
    Io(std::io::Error),
}

/// SQLite's own error, kept whole (its code decides the variant above) and
/// shown in the variant's message. Not a `#[source]`: the message already
/// holds its text, and `anyhow`'s `{:#}` would print it twice.
pub type SqliteError = rusqlite::Error;

impl From<rusqlite::Error> for StoreError {
    fn from(e: rusqlite::Error) -> Self {
        let extended = match &e {
            rusqlite::Error::SqliteFailure(f, _) => f.extended_code,
            _ => 0,
        };
        match e.sqlite_error_code() {
            Some(ErrorCode::DatabaseBusy | ErrorCode::DatabaseLocked) => {
                StoreError::Busy(Duration::ZERO)
            }
            Some(ErrorCode::DatabaseCorrupt | ErrorCode::NotADatabase) => StoreError::Corrupt(e),
            Some(ErrorCode::ReadOnly) => StoreError::ReadOnly(e),
            Some(ErrorCode::DiskFull) => StoreError::Full,
            // The WAL index (-shm) could not grow: on Linux that is ENOSPC.
            Some(ErrorCode::SystemIoFailure) if extended == rusqlite::ffi::SQLITE_IOERR_SHMSIZE => {
                StoreError::Full
            }
            Some(ErrorCode::OperationInterrupted) => StoreError::Timeout(Duration::ZERO),
            _ => StoreError::Sqlite(e),
        }
    }
}

impl From<std::io::Error> for StoreError {
    fn from(e: std::io::Error) -> Self {
        StoreError::Io(e)
    }
}

/// How a store is opened.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// Reading only (`list`, `show`, `status`).
    Read,
    /// Reading and writing rows; never creates the file or changes the schema.
    Write,
    /// [`Access::Write`] for one login (the PAM module): the WAL is left
    /// for the next connection instead of checkpointed at close (`wal`).
    Login,
}

/// One connection to the store.
#[derive(Debug)]
pub struct Store {
    conn: Connection,
    path: PathBuf,
    timeout: Duration,
    access: Access,
}

impl Store {
    /// Opens an existing, initialised store. `timeout` bounds both the wait
    /// for another writer and the run time of each statement.
    pub fn open(path: &Path, access: Access, timeout: Duration) -> Result<Store, StoreError> {
        let flags = match access {
            Access::Read => OpenFlags::SQLITE_OPEN_READ_ONLY,
            Access::Write | Access::Login => OpenFlags::SQLITE_OPEN_READ_WRITE,
        } | OpenFlags::SQLITE_OPEN_NO_MUTEX;
        let conn = Connection::open_with_flags(path, flags).map_err(|e| open_error(path, e))?;
        let mut store = Store {
            conn,
            path: path.to_owned(),
            timeout,
            access,
        };
        // SQLite opens lazily: "cannot open" may surface at the first statement.
        store.configure().map_err(|e| reclassify_open(path, e))?;
        // SQLite opens a file it may not write read-only, silently; a writer
        // is told at once, by name. Asked of SQLite rather than by opening
        // the file first: closing any descriptor of it drops this process's
        // POSIX locks, its other connections' too (only once it is known
        // unwritable does `why_cannot_open` look at the file).
        if access != Access::Read && store.conn.is_readonly(rusqlite::MAIN_DB)? {
            return Err(
                why_cannot_open(path).unwrap_or_else(|| StoreError::Permission(path.to_owned()))
            );
        }
        if access == Access::Login {
            store.leave_wal_on_close()?;
        }
        let found = store
            .schema_version()
            .map_err(|e| reclassify_open(path, e))?;
        if found != SCHEMA_VERSION {
            return Err(StoreError::SchemaMismatch {
                found,
                expected: SCHEMA_VERSION,
            });
        }
        Ok(store)
    }

    /// Creates the store (directory 0700, file 0600) or migrates it to
    /// [`SCHEMA_VERSION`]. Idempotent: running it twice changes nothing.
    pub fn init(path: &Path) -> Result<schema::Migration, StoreError> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty())
            && !dir.exists()
        {
            std::fs::DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(dir)?;
        }
        let mut conn = Connection::open(path).map_err(|e| open_error(path, e))?;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))?;
        conn.busy_timeout(Duration::from_secs(5))?;
        conn.pragma_update(None, "journal_mode", "WAL")?;
        schema::migrate(&mut conn)
    }

    fn configure(&mut self) -> Result<(), StoreError> {
        self.conn.busy_timeout(self.timeout)?;
        self.conn.pragma_update(None, "synchronous", "NORMAL")?;
        // Bound every statement's run time too, not only lock waits: a damaged
        // file must not keep sshd waiting. Checked every 1000 VM steps.
        self.renew_deadline();
        Ok(())
    }

    /// Gives the statements that follow a fresh deadline (twice the busy
    /// timeout from now). A connection kept open, like the daemon's, calls
    /// it before each pass; one opened per job never needs to.
    pub fn renew_deadline(&self) {
        self.arm_deadline(self.statement_budget());
    }

    /// The usual run time allowed to statements: twice the busy timeout.
    fn statement_budget(&self) -> Duration {
        self.timeout * 2
    }

    /// Interrupts statements that run past `budget` from now.
    fn arm_deadline(&self, budget: Duration) {
        let deadline = Instant::now() + budget;
        self.conn
            .progress_handler(1000, Some(move || Instant::now() > deadline));
    }

    /// `PRAGMA user_version` of the open store.
    pub fn schema_version(&self) -> Result<i64, StoreError> {
        Ok(self
            .conn
            .query_row("PRAGMA user_version", [], |r| r.get(0))?)
    }

    /// Changes whenever *another* connection commits (`PRAGMA data_version`):
    /// how the daemon notices new bans without re-reading everything.
    pub fn data_version(&self) -> Result<i64, StoreError> {
        Ok(self
            .conn
            .query_row("PRAGMA data_version", [], |r| r.get(0))?)
    }

    /// Sets a `meta` value (the daemon's heartbeat, say).
    pub fn set_meta(&mut self, key: MetaKey, value: &str) -> Result<(), StoreError> {
        self.write(|tx| upsert_meta(tx, key, value))
    }

    /// A `meta` value, if set.
    pub fn meta(&self, key: MetaKey) -> Result<Option<String>, StoreError> {
        use rusqlite::OptionalExtension;
        Ok(self
            .conn
            .query_row(
                "SELECT value FROM meta WHERE key = ?1",
                [key.as_str()],
                |r| r.get(0),
            )
            .optional()?)
    }

    /// The store's file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Runs `f` in a `BEGIN IMMEDIATE` transaction: the write lock is taken
    /// first, so check-then-write sequences are atomic across processes.
    pub(crate) fn write<T>(
        &mut self,
        f: impl FnOnce(&rusqlite::Transaction<'_>) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        self.write_within(self.statement_budget(), f)
    }

    /// [`Store::write`] with its statements allowed `budget` instead of the
    /// usual deadline (bulk work: a country import); the usual deadline is
    /// armed again afterwards.
    pub(crate) fn write_within<T>(
        &mut self,
        budget: Duration,
        f: impl FnOnce(&rusqlite::Transaction<'_>) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        let timeout = self.timeout;
        // Each transaction gets its own deadline (a long-lived connection,
        // the daemon's, would otherwise run out of the one set at open).
        self.arm_deadline(budget);
        let began = Instant::now();
        let login = self.access == Access::Login;
        // What others have committed so far, to tell a flood from a stuck lock.
        let seen = login.then(|| self.data_version().ok()).flatten();
        // A login waits its turn in the queue first, then takes SQLite's
        // lock, all within the one busy_timeout (see `queue`). The queue
        // gets three quarters of it: should its holder be stuck (stopped,
        // say) outside any transaction, SQLite's lock is still free, and
        // the last quarter takes it without the queue.
        let turn = login.then(|| queue::wait_turn(&self.path, timeout * 3 / 4).ok());
        let result = self
            .begin_immediate(timeout.saturating_sub(began.elapsed()))
            .and_then(|tx| {
                let value = f(&tx).map_err(|e| with_wait(e, timeout))?;
                tx.commit().map_err(|e| with_wait(e.into(), timeout))?;
                Ok(value)
            })
            .map_err(|e| self.saturated_or(e, seen));
        drop(turn);
        if result.is_ok() && self.access == Access::Login {
            self.trim_wal();
        }
        if budget != self.statement_budget() {
            self.renew_deadline();
        }
        result
    }

    /// A busy store whose data changed since `seen` is saturated, not stuck.
    fn saturated_or(&self, e: StoreError, seen: Option<i64>) -> StoreError {
        match (e, seen) {
            (StoreError::Busy(waited), Some(before))
                if self.data_version().is_ok_and(|now| now != before) =>
            {
                StoreError::Saturated(waited)
            }
            (e, _) => e,
        }
    }

    /// Takes the write lock (`BEGIN IMMEDIATE`) within `left` (what is left
    /// of `busy_timeout`); a timeout is reported as the whole `busy_timeout`.
    ///
    /// SQLite's own busy handler sleeps 1, 2, 5 … 100 ms between tries, so
    /// under a burst of logins a waiter can sleep long after the lock is
    /// free and even run out its timeout (which would admit uncounted). We
    /// retry with short, jittered sleeps (50 µs doubling to 1 ms) instead.
    fn begin_immediate(&self, left: Duration) -> Result<rusqlite::Transaction<'_>, StoreError> {
        let start = Instant::now();
        let mut pause = Duration::from_micros(50);
        let mut jitter = Jitter::seeded();
        self.conn.busy_timeout(Duration::ZERO)?;
        let result = loop {
            match rusqlite::Transaction::new_unchecked(
                &self.conn,
                rusqlite::TransactionBehavior::Immediate,
            ) {
                Ok(tx) => break Ok(tx),
                Err(e) if e.sqlite_error_code() == Some(ErrorCode::DatabaseBusy) => {
                    if start.elapsed() >= left {
                        break Err(StoreError::Busy(self.timeout));
                    }
                    std::thread::sleep(
                        jitter
                            .spread(pause)
                            .min(left.saturating_sub(start.elapsed())),
                    );
                    pause = (pause * 2).min(Duration::from_millis(1));
                }
                Err(e) => break Err(e.into()),
            }
        };
        self.conn.busy_timeout(self.timeout)?;
        result
    }

    /// The underlying connection, for read queries.
    pub(crate) fn conn(&self) -> &Connection {
        &self.conn
    }
}

/// A tiny xorshift generator: spreads retry sleeps so waiters do not retry
/// in lockstep. Not for anything secret.
struct Jitter(u64);

impl Jitter {
    fn seeded() -> Jitter {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or(0);
        Jitter((u64::from(std::process::id()) << 32 | u64::from(nanos)) | 1)
    }

    /// `d` scaled by a factor in [0.5, 1.5).
    fn spread(&mut self, d: Duration) -> Duration {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        d.mul_f64(0.5 + (self.0 % 1000) as f64 / 1000.0)
    }
}

/// Fills in how long we waited, for Busy and Timeout errors.
fn with_wait(e: StoreError, waited: Duration) -> StoreError {
    match e {
        StoreError::Busy(_) => StoreError::Busy(waited),
        StoreError::Timeout(_) => StoreError::Timeout(waited * 2),
        other => other,
    }
}

/// Turns an open failure into the fault a person can act on.
fn open_error(path: &Path, e: rusqlite::Error) -> StoreError {
    if e.sqlite_error_code() == Some(ErrorCode::CannotOpen) {
        return why_cannot_open(path).unwrap_or(StoreError::Sqlite(e));
    }
    e.into()
}

/// A generic error from the first statements after open, made specific.
fn reclassify_open(path: &Path, e: StoreError) -> StoreError {
    match e {
        StoreError::Sqlite(e) if e.sqlite_error_code() == Some(ErrorCode::CannotOpen) => {
            why_cannot_open(path).unwrap_or(StoreError::Sqlite(e))
        }
        other => other,
    }
}

/// Asks the OS why the store (or its -wal/-shm companions) cannot be opened.
fn why_cannot_open(path: &Path) -> Option<StoreError> {
    use std::io::ErrorKind;
    let denied = |p: &Path| StoreError::Permission(p.to_owned());
    match std::fs::metadata(path) {
        Err(io) if io.kind() == ErrorKind::NotFound => {
            return Some(StoreError::Missing(path.to_owned()));
        }
        Err(io) if io.kind() == ErrorKind::PermissionDenied => return Some(denied(path)),
        _ => {}
    }
    match std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(path)
    {
        Err(io) if io.kind() == ErrorKind::ReadOnlyFilesystem => {
            Some(StoreError::ReadOnlyFileSystem(path.to_owned()))
        }
        Err(io) if io.kind() == ErrorKind::PermissionDenied => Some(denied(path)),
        Err(_) => None,
        // The file itself is writable: its directory is not (no -wal/-shm can be made).
        Ok(_) => {
            let dir = path.parent().unwrap_or(Path::new("."));
            let probe = dir.join(format!(".authguard-probe-{}", std::process::id()));
            match std::fs::File::create(&probe) {
                Ok(_) => {
                    let _ = std::fs::remove_file(&probe);
                    None
                }
                Err(io) if io.kind() == ErrorKind::ReadOnlyFilesystem => {
                    Some(StoreError::ReadOnlyFileSystem(dir.to_owned()))
                }
                Err(io) if io.kind() == ErrorKind::StorageFull => Some(StoreError::Full),
                Err(_) => Some(denied(dir)),
            }
        }
    }
}

/// Size of the store on disk: the database plus its WAL.
pub fn disk_size(path: &Path) -> u64 {
    let mut wal = path.as_os_str().to_owned();
    wal.push("-wal");
    [path.to_owned(), PathBuf::from(wal)]
        .iter()
        .filter_map(|p| std::fs::metadata(p).ok())
        .map(|m| m.len())
        .sum()
}

/// Sets a `meta` key inside a transaction.
pub(crate) fn upsert_meta(
    tx: &rusqlite::Transaction<'_>,
    key: MetaKey,
    value: &str,
) -> Result<(), StoreError> {
    tx.execute(
        "INSERT INTO meta (key, value) VALUES (?1, ?2)
         ON CONFLICT (key) DO UPDATE SET value = excluded.value",
        [key.as_str(), value],
    )?;
    Ok(())
}

#[cfg(test)]
pub(crate) mod test_support {
    use super::*;

    /// A fresh, initialised store in its own temp directory.
    pub struct TempStore {
        pub dir: PathBuf,
        pub path: PathBuf,
    }

    impl TempStore {
        pub fn new(name: &str) -> TempStore {
            let dir = std::env::temp_dir().join(format!(
                "authguard-test-{name}-{}-{:?}",
                std::process::id(),
                std::thread::current().id()
            ));
            let _ = std::fs::remove_dir_all(&dir);
            let path = dir.join("store").join("authguard.db");
            Store::init(&path).unwrap();
            TempStore { dir, path }
        }

        pub fn open(&self) -> Store {
            Store::open(&self.path, Access::Write, Duration::from_secs(1)).unwrap()
        }
    }

    impl Drop for TempStore {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::test_support::TempStore;
    use super::*;
    use std::os::unix::fs::MetadataExt;

    /// A login's admission while the queue is held and another connection
    /// holds SQLite's write lock; `commit_meanwhile`: that connection
    /// commits once during the wait (and takes the lock again at once, while
    /// the login still waits in the queue, so it never finds it free).
    fn admission_behind_a_holder(name: &str, commit_meanwhile: bool) -> StoreError {
        let t = TempStore::new(name);
        let queue_turn = queue::wait_turn(&t.path, Duration::from_secs(1)).unwrap();
        let holder = t.open();
        holder.conn().execute_batch("BEGIN IMMEDIATE").unwrap();
        let path = t.path.clone();
        let login = std::thread::spawn(move || {
            let mut store = Store::open(&path, Access::Login, Duration::from_millis(400)).unwrap();
            let attempt = admission::Attempt {
                ip: "192.0.2.1".parse().unwrap(),
                user: b"root",
                service: "sshd",
            };
            store.admit(&crate::config::Config::default(), &attempt, 1)
        });
        std::thread::sleep(Duration::from_millis(100));
        if commit_meanwhile {
            holder
                .conn()
                .execute_batch(
                    "INSERT INTO meta (key, value) VALUES ('test', '1'); COMMIT; BEGIN IMMEDIATE",
                )
                .unwrap();
        }
        let outcome = login.join().unwrap();
        holder.conn().execute_batch("COMMIT").unwrap();
        drop(queue_turn);
        outcome.expect_err("the login never got the lock")
    }

    #[test]
    fn a_login_behind_a_stuck_lock_is_busy_a_fault_for_fail_mode() {
        let e = admission_behind_a_holder("stuck", false);
        assert!(matches!(e, StoreError::Busy(_)), "{e:?}");
    }

    #[test]
    fn a_login_that_waited_while_others_committed_is_saturated_not_failed_open() {
        let e = admission_behind_a_holder("saturated", true);
        assert!(matches!(e, StoreError::Saturated(_)), "{e:?}");
    }

    #[test]
    fn a_long_lived_connection_gets_a_fresh_deadline_per_pass() {
        let t = test_support::TempStore::new("deadline");
        let store = Store::open(&t.path, Access::Read, Duration::from_millis(20)).unwrap();
        let busy = "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 20000) SELECT count(*) FROM n";
        std::thread::sleep(Duration::from_millis(60));
        let stale: Result<i64, _> = store.conn().query_row(busy, [], |r| r.get(0));
        assert!(stale.is_err(), "the deadline set at open has passed");
        store.renew_deadline();
        let fresh: i64 = store.conn().query_row(busy, [], |r| r.get(0)).unwrap();
        assert_eq!(fresh, 20000);
    }

    #[test]
    fn init_creates_private_store_and_is_idempotent() {
        let t = TempStore::new("init");
        let dir_mode = std::fs::metadata(t.path.parent().unwrap()).unwrap().mode() & 0o777;
        let file_mode = std::fs::metadata(&t.path).unwrap().mode() & 0o777;
        assert_eq!((dir_mode, file_mode), (0o700, 0o600));
        assert_eq!(Store::init(&t.path).unwrap(), schema::Migration::UpToDate);
        let store = t.open();
        assert_eq!(store.schema_version().unwrap(), SCHEMA_VERSION);
        let mode: String = store
            .conn()
            .query_row("PRAGMA journal_mode", [], |r| r.get(0))
            .unwrap();
        assert_eq!(mode, "wal");
    }

    #[test]
    fn faults_are_named() {
        let t = TempStore::new("faults");
        let missing = t.dir.join("nope.db");
        assert!(matches!(
            Store::open(&missing, Access::Write, Duration::from_secs(1)),
            Err(StoreError::Missing(_))
        ));
        let garbage = t.dir.join("garbage.db");
        std::fs::write(&garbage, vec![0x42u8; 8192]).unwrap();
        assert!(matches!(
            Store::open(&garbage, Access::Write, Duration::from_secs(1)),
            Err(StoreError::Corrupt(_))
        ));
        let store = t.open();
        store
            .conn()
            .pragma_update(None, "user_version", 99)
            .unwrap();
        assert!(matches!(
            Store::open(&t.path, Access::Write, Duration::from_secs(1)),
            Err(StoreError::SchemaMismatch { found: 99, .. })
        ));
    }
}
