//! The store's schema and its migrations. Only `guardctl init` (and the
//! package's postinst, which calls it) runs this; the PAM module never does.

use rusqlite::Connection;

/// The schema version this build reads and writes (`PRAGMA user_version`).
pub const SCHEMA_VERSION: i64 = 12;

/// Each entry takes the store from version `i` to `i + 1`.
const MIGRATIONS: [&str; 12] = [
    // 0 → 1: attempts, bans, allow list.
    r#"
    -- One row per login attempt the guard saw. `live` is 1 while the attempt
    -- counts toward a ban: a ban, an unban or the same user's success clears it.
    CREATE TABLE attempts (
        id       INTEGER PRIMARY KEY,
        at       INTEGER NOT NULL,
        source   TEXT    NOT NULL,
        address  TEXT    NOT NULL,
        user     BLOB    NOT NULL,
        service  TEXT    NOT NULL,
        origin   TEXT    NOT NULL,
        outcome  TEXT    NOT NULL CHECK (outcome IN ('pending', 'success', 'refused', 'failure')),
        live     INTEGER NOT NULL DEFAULT 0
    ) STRICT;
    CREATE INDEX attempts_live ON attempts (source, at) WHERE live = 1;
    CREATE INDEX attempts_by_source ON attempts (source, at);
    CREATE INDEX attempts_by_time ON attempts (at);

    -- Bans are history: expiry and unban set `ended`, nothing deletes a row
    -- (but `unban --forget`). lo/hi: 16-byte range keys, IPv4 as ::ffff:a.b.c.d.
    CREATE TABLE bans (
        id         INTEGER PRIMARY KEY,
        source     TEXT    NOT NULL,
        lo         BLOB    NOT NULL,
        hi         BLOB    NOT NULL,
        since      INTEGER NOT NULL,
        expires    INTEGER,
        ended      INTEGER,
        end_reason TEXT,
        reason     TEXT    NOT NULL,
        origin     TEXT    NOT NULL,
        level      INTEGER NOT NULL,
        failures   INTEGER NOT NULL
    ) STRICT;
    CREATE INDEX bans_open ON bans (lo) WHERE ended IS NULL;
    CREATE INDEX bans_by_source ON bans (source, since);

    -- Networks allowed with `guardctl allow add` (the config's `allow` adds to these).
    CREATE TABLE allow (
        network TEXT    PRIMARY KEY,
        lo      BLOB    NOT NULL,
        hi      BLOB    NOT NULL,
        added   INTEGER NOT NULL,
        comment TEXT    NOT NULL DEFAULT ''
    ) STRICT;
    CREATE INDEX allow_lo ON allow (lo);
    "#,
    // 1 → 2: which ports a ban closes (recidive bans close all), and a
    // key-value table for the daemon's heartbeat.
    r#"
    ALTER TABLE bans ADD COLUMN scope TEXT NOT NULL DEFAULT 'ports' CHECK (scope IN ('ports', 'all'));
    CREATE INDEX bans_since ON bans (since);
    CREATE TABLE meta (
        key   TEXT PRIMARY KEY,
        value TEXT NOT NULL
    ) STRICT;
    "#,
    // 2 → 3: a change log of bans, so the daemon reads what changed since
    // its last pass instead of every active ban. Triggers fill it, so every
    // writer (PAM module, guardctl, older code) is covered (but a fleet
    // pull, which turns them off and logs its own: `store/changes.rs`); AUTOINCREMENT
    // keeps `rev` growing even after the daemon prunes what it has read.
    r#"
    CREATE TABLE ban_changes (
        rev    INTEGER PRIMARY KEY AUTOINCREMENT,
        source TEXT    NOT NULL
    ) STRICT;
    CREATE TRIGGER ban_changes_insert AFTER INSERT ON bans
        BEGIN INSERT INTO ban_changes (source) VALUES (NEW.source); END;
    CREATE TRIGGER ban_changes_update AFTER UPDATE ON bans
        BEGIN INSERT INTO ban_changes (source) VALUES (NEW.source); END;
    CREATE TRIGGER ban_changes_delete AFTER DELETE ON bans WHEN OLD.ended IS NULL
        BEGIN INSERT INTO ban_changes (source) VALUES (OLD.source); END;
    "#,
    // 3 → 4: events from sshd's log. A failure may weigh less than one (a
    // protocol probe); `kind` is the sshd event, `line` the raw log line
    // (evidence for abuse reports). The log follower's position (journal
    // cursor, file offset) lives in `meta`.
    r#"
    ALTER TABLE attempts ADD COLUMN weight REAL NOT NULL DEFAULT 1;
    ALTER TABLE attempts ADD COLUMN kind TEXT;
    ALTER TABLE attempts ADD COLUMN line BLOB;
    "#,
    // 4 → 5: past offenders (key-only signaling) are looked up by the
    // networks containing an address among all bans, ended ones included.
    r#"
    CREATE INDEX bans_lo ON bans (lo, since);
    "#,
    // 5 → 6: countries (`guardctl geo import`). Disjoint IP ranges keyed as
    // in `bans`; an address's range is the one with the greatest lo at or
    // below its key, if hi reaches it. The primary key is the index on lo
    // (WITHOUT ROWID: one B-tree, no separate index to fill on import).
    // What was imported (files, time, counts) is kept in `meta` (`geo.*`).
    r#"
    CREATE TABLE geo_ranges (
        lo      BLOB NOT NULL PRIMARY KEY,
        hi      BLOB NOT NULL,
        country TEXT NOT NULL
    ) STRICT, WITHOUT ROWID;
    "#,
    // 6 → 7: blocked countries (`guardctl geo block`): the firewall drops
    // their ranges. Every change to country data (import, block, unblock)
    // also bumps `meta` key `geo.revision` in its transaction, so the
    // daemon knows when to reload the sets.
    r#"
    CREATE TABLE geo_blocks (
        country TEXT    PRIMARY KEY,
        since   INTEGER NOT NULL
    ) STRICT;
    "#,
    // 7 → 8: the fleet (CrowdSec's LAPI). A pulled ban (origin `crowdsec`)
    // keeps the LAPI's decision id, its own origin and scenario. Bans this
    // host makes, and their early ends, queue in `crowdsec_outbox` by
    // trigger (every writer, the PAM module included, without a line of
    // its code) while `meta` key `crowdsec.push` is '1'; the daemon
    // delivers the queue and deletes what the LAPI took.
    r#"
    ALTER TABLE bans ADD COLUMN decision_id INTEGER;
    ALTER TABLE bans ADD COLUMN decision_origin TEXT;
    ALTER TABLE bans ADD COLUMN scenario TEXT;
    CREATE INDEX bans_decision ON bans (decision_id) WHERE decision_id IS NOT NULL;
    CREATE TABLE crowdsec_outbox (
        id      INTEGER PRIMARY KEY,
        ban_id  INTEGER NOT NULL,
        action  TEXT    NOT NULL CHECK (action IN ('ban', 'unban')),
        queued  INTEGER NOT NULL,
        tries   INTEGER NOT NULL DEFAULT 0,
        error   TEXT
    ) STRICT;
    CREATE TRIGGER crowdsec_outbox_ban AFTER INSERT ON bans
        WHEN NEW.origin != 'crowdsec'
         AND (SELECT value FROM meta WHERE key = 'crowdsec.push') = '1'
        BEGIN INSERT INTO crowdsec_outbox (ban_id, action, queued) VALUES (NEW.id, 'ban', NEW.since); END;
    CREATE TRIGGER crowdsec_outbox_unban AFTER UPDATE OF ended ON bans
        WHEN OLD.ended IS NULL AND NEW.end_reason IN ('unbanned', 'allowed')
         AND NEW.origin != 'crowdsec'
         AND (SELECT value FROM meta WHERE key = 'crowdsec.push') = '1'
        BEGIN INSERT INTO crowdsec_outbox (ban_id, action, queued) VALUES (NEW.id, 'unban', NEW.ended); END;
    "#,
    // 8 → 9: counters for `guardctl metrics`. A `_total` metric is what
    // this table holds plus what the current rows count: every path that
    // deletes rows (the retention purge, `unban --forget`) adds what it
    // deletes here, by label, in its own transaction, so a counter never
    // goes down. Events kept nowhere else (key-only reloads of sshd) are
    // counted here alone. No writer on a login's path touches it.
    r#"
    CREATE TABLE counters (
        metric TEXT    NOT NULL,
        first  TEXT    NOT NULL DEFAULT '',
        second TEXT    NOT NULL DEFAULT '',
        value  INTEGER NOT NULL DEFAULT 0,
        PRIMARY KEY (metric, first, second)
    ) STRICT, WITHOUT ROWID;
    "#,
    // 9 → 10: abuse contacts found by whois for `guardctl report`, per
    // source network (as reports count sources), with when and from whom.
    // `contact` NULL: the registry named none. Kept for
    // `[report] whois_max_age`, then asked again.
    r#"
    CREATE TABLE whois_cache (
        network TEXT    PRIMARY KEY,
        contact TEXT,
        server  TEXT    NOT NULL,
        fetched INTEGER NOT NULL
    ) STRICT;
    "#,
    // 10 → 11: abuse reports that went out (`guardctl report --send`, and
    // automatic ones): to whom, when, the Message-ID, and per source the
    // evidence window and the log lines quoted, so `report contacts` can
    // tell whether the sources stopped. `contact` is lower case. Never
    // purged: a few rows a day at most, by `[report] max_per_day`.
    r#"
    CREATE TABLE reports (
        id         INTEGER PRIMARY KEY,
        sent       INTEGER NOT NULL,
        contact    TEXT    NOT NULL,
        message_id TEXT    NOT NULL UNIQUE,
        format     TEXT    NOT NULL CHECK (format IN ('text', 'xarf')),
        auto       INTEGER NOT NULL
    ) STRICT;
    CREATE INDEX reports_by_contact ON reports (contact, sent);
    CREATE INDEX reports_by_time ON reports (sent);
    CREATE TABLE reported_sources (
        report  INTEGER NOT NULL REFERENCES reports (id) ON DELETE CASCADE,
        address TEXT    NOT NULL,
        source  TEXT    NOT NULL,
        first   INTEGER NOT NULL,
        last    INTEGER NOT NULL,
        lines   INTEGER NOT NULL,
        PRIMARY KEY (report, source)
    ) STRICT;
    CREATE INDEX reported_sources_by_source ON reported_sources (source);
    "#,
    // 11 → 12: with `[report] unresponsive = "subnet"`, the subnets (as the
    // subnet rule cuts them) holding sources of a contact given up on,
    // where that rule bans at a lower threshold. guardctl
    // rewrites it after judging contacts; a new ban reads one row.
    r#"
    CREATE TABLE unresponsive_subnets (
        subnet  TEXT    PRIMARY KEY,
        contact TEXT    NOT NULL,
        since   INTEGER NOT NULL
    ) STRICT, WITHOUT ROWID;
    "#,
];

/// What `migrate` did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Migration {
    /// The store already had this version.
    UpToDate,
    /// Created or upgraded from the given version.
    From(i64),
}

/// Brings the schema to [`SCHEMA_VERSION`] in one transaction. Idempotent.
/// A store newer than this build is left alone and reported.
pub fn migrate(conn: &mut Connection) -> Result<Migration, super::StoreError> {
    let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Exclusive)?;
    let found: i64 = tx.query_row("PRAGMA user_version", [], |r| r.get(0))?;
    if found > SCHEMA_VERSION {
        return Err(super::StoreError::SchemaMismatch {
            found,
            expected: SCHEMA_VERSION,
        });
    }
    if found == SCHEMA_VERSION {
        return Ok(Migration::UpToDate);
    }
    for step in &MIGRATIONS[usize::try_from(found).unwrap_or(0)..] {
        tx.execute_batch(step)?;
    }
    tx.pragma_update(None, "user_version", SCHEMA_VERSION)?;
    tx.commit()?;
    Ok(Migration::From(found))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn version_1_store_migrates_and_keeps_its_bans() {
        let dir = std::env::temp_dir().join(format!("ag-migrate-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("v1.db");
        let mut conn = Connection::open(&path).unwrap();
        conn.execute_batch(MIGRATIONS[0]).unwrap();
        conn.pragma_update(None, "user_version", 1).unwrap();
        conn.execute(
            "INSERT INTO bans (source, lo, hi, since, expires, reason, origin, level, failures)
             VALUES ('203.0.113.7', x'00', x'00', 1, NULL, 'r', 'pam', 1, 5)",
            [],
        )
        .unwrap();
        assert_eq!(migrate(&mut conn).unwrap(), Migration::From(1));
        let (source, scope): (String, String) = conn
            .query_row("SELECT source, scope FROM bans", [], |r| {
                Ok((r.get(0)?, r.get(1)?))
            })
            .unwrap();
        assert_eq!((source.as_str(), scope.as_str()), ("203.0.113.7", "ports"));
        assert_eq!(migrate(&mut conn).unwrap(), Migration::UpToDate);
        // From version 3 on, every change to a ban is logged for the daemon.
        conn.execute("UPDATE bans SET ended = 2 WHERE source = '203.0.113.7'", [])
            .unwrap();
        let logged: String = conn
            .query_row("SELECT source FROM ban_changes", [], |r| r.get(0))
            .unwrap();
        assert_eq!(logged, "203.0.113.7");
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn version_5_store_migrates_to_country_data() {
        let dir = std::env::temp_dir().join(format!("ag-migrate5-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let mut conn = Connection::open(dir.join("v5.db")).unwrap();
        for step in &MIGRATIONS[..5] {
            conn.execute_batch(step).unwrap();
        }
        conn.pragma_update(None, "user_version", 5).unwrap();
        conn.execute("INSERT INTO meta (key, value) VALUES ('daemon', '{}')", [])
            .unwrap();
        assert_eq!(migrate(&mut conn).unwrap(), Migration::From(5));
        let (meta, ranges): (i64, i64) = conn
            .query_row(
                "SELECT (SELECT count(*) FROM meta), (SELECT count(*) FROM geo_ranges)",
                [],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .unwrap();
        assert_eq!((meta, ranges), (1, 0));
        let user_version: i64 = conn
            .query_row("PRAGMA user_version", [], |r| r.get(0))
            .unwrap();
        assert_eq!(user_version, SCHEMA_VERSION);
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn version_6_store_migrates_to_country_blocks_and_keeps_its_ranges() {
        let dir = std::env::temp_dir().join(format!("ag-migrate6-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let mut conn = Connection::open(dir.join("v6.db")).unwrap();
        for step in &MIGRATIONS[..6] {
            conn.execute_batch(step).unwrap();
        }
        conn.pragma_update(None, "user_version", 6).unwrap();
        conn.execute(
            "INSERT INTO geo_ranges (lo, hi, country) VALUES (x'01', x'02', 'NL')",
            [],
        )
        .unwrap();
        assert_eq!(migrate(&mut conn).unwrap(), Migration::From(6));
        conn.execute(
            "INSERT INTO geo_blocks (country, since) VALUES ('NL', 1)",
            [],
        )
        .unwrap();
        let blocked: (String, i64) = conn
            .query_row(
                "SELECT b.country, count(*) FROM geo_blocks b JOIN geo_ranges r USING (country)",
                [],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .unwrap();
        assert_eq!(blocked, ("NL".to_owned(), 1));
        let strict = conn.execute(
            "INSERT INTO geo_blocks (country, since) VALUES ('DE', 'soon')",
            [],
        );
        assert!(strict.is_err(), "since is an INTEGER in a STRICT table");
        assert_eq!(migrate(&mut conn).unwrap(), Migration::UpToDate);
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn version_7_store_migrates_to_the_fleet_and_queues_only_its_own_bans() {
        let dir = std::env::temp_dir().join(format!("ag-migrate7-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let mut conn = Connection::open(dir.join("v7.db")).unwrap();
        for step in &MIGRATIONS[..7] {
            conn.execute_batch(step).unwrap();
        }
        conn.pragma_update(None, "user_version", 7).unwrap();
        assert_eq!(migrate(&mut conn).unwrap(), Migration::From(7));
        let ban = |origin: &str| {
            conn.execute(
                "INSERT INTO bans (source, lo, hi, since, expires, reason, origin, level, failures)
                 VALUES ('203.0.113.7', x'00', x'00', 1, 100, 'r', ?1, 1, 5)",
                [origin],
            )
            .unwrap();
        };
        let queued = |conn: &Connection| -> i64 {
            conn.query_row("SELECT count(*) FROM crowdsec_outbox", [], |r| r.get(0))
                .unwrap()
        };
        ban("pam");
        assert_eq!(queued(&conn), 0, "nothing queues while push is off");
        conn.execute(
            "INSERT INTO meta (key, value) VALUES ('crowdsec.push', '1')",
            [],
        )
        .unwrap();
        ban("pam");
        ban("crowdsec");
        assert_eq!(queued(&conn), 1, "our ban queues, a pulled one never");
        conn.execute(
            "UPDATE bans SET ended = 5, end_reason = 'unbanned' WHERE ended IS NULL",
            [],
        )
        .unwrap();
        let actions: Vec<String> = conn
            .prepare("SELECT action FROM crowdsec_outbox ORDER BY id")
            .unwrap()
            .query_map([], |r| r.get(0))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        assert_eq!(
            actions,
            ["ban", "unban", "unban"],
            "each of our unbans queues"
        );
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn version_8_store_migrates_to_counters_and_keeps_its_bans() {
        let dir = std::env::temp_dir().join(format!("ag-migrate8-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let mut conn = Connection::open(dir.join("v8.db")).unwrap();
        for step in &MIGRATIONS[..8] {
            conn.execute_batch(step).unwrap();
        }
        conn.pragma_update(None, "user_version", 8).unwrap();
        conn.execute(
            "INSERT INTO bans (source, lo, hi, since, expires, reason, origin, level, failures)
             VALUES ('203.0.113.7', x'00', x'00', 1, 100, 'r', 'pam', 1, 5)",
            [],
        )
        .unwrap();
        assert_eq!(migrate(&mut conn).unwrap(), Migration::From(8));
        let (bans, counters): (i64, i64) = conn
            .query_row(
                "SELECT (SELECT count(*) FROM bans), (SELECT count(*) FROM counters)",
                [],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .unwrap();
        assert_eq!((bans, counters), (1, 0));
        assert_eq!(migrate(&mut conn).unwrap(), Migration::UpToDate);
        let _ = std::fs::remove_dir_all(&dir);
    }
}
