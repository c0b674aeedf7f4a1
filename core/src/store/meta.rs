//! The store's `meta` table: every key it holds, named once.

/// A key of the `meta` table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MetaKey {
    /// The daemon's heartbeat (JSON: pid, started, last sync, last error).
    Heartbeat,
    /// The pid of the `guardctl daemon` that holds the store open, written
    /// at its start: while that process lives, login connections leave the
    /// WAL to SQLite's own checkpoints (`store::wal`).
    DaemonPid,
    /// The sshd log file follower's position (`inode:offset`).
    LogFilePosition,
    /// The journal follower's cursor.
    JournalCursor,
    /// The country files last imported, one per line.
    GeoSources,
    /// When they were imported.
    GeoImported,
    /// IPv4 ranges imported.
    GeoIpv4Ranges,
    /// IPv6 ranges imported.
    GeoIpv6Ranges,
    /// Bumped by every change to country data or blocks, in the same
    /// transaction: the daemon's cue to rebuild country sets.
    GeoRevision,
    /// The fleet link's state (JSON: reachable, last pull, held, skipped,
    /// last error), written by the daemon's link thread.
    CrowdsecLink,
    /// '1' while bans this host makes queue for the LAPI (the outbox
    /// triggers read it).
    CrowdsecPush,
}

impl MetaKey {
    /// The key as stored (a contract: older stores hold these words).
    pub fn as_str(self) -> &'static str {
        match self {
            MetaKey::Heartbeat => "daemon",
            MetaKey::DaemonPid => "daemon.pid",
            MetaKey::LogFilePosition => "sshd_log.file",
            MetaKey::JournalCursor => "sshd_log.journal",
            MetaKey::GeoSources => "geo.sources",
            MetaKey::GeoImported => "geo.imported",
            MetaKey::GeoIpv4Ranges => "geo.ipv4_ranges",
            MetaKey::GeoIpv6Ranges => "geo.ipv6_ranges",
            MetaKey::GeoRevision => "geo.revision",
            MetaKey::CrowdsecLink => "crowdsec.link",
            MetaKey::CrowdsecPush => "crowdsec.push",
        }
    }
}
