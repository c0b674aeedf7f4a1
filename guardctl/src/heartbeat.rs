//! The daemon's heartbeat: what it records in the store's `meta` table
//! after each pass, and how `guardctl status` reads it back.

use authguard_core::store::{MetaKey, Store, StoreError};
use authguard_core::time::Timestamp;
use std::time::Duration;

/// What the daemon records after each pass.
#[derive(Debug, serde::Serialize, serde::Deserialize)]
pub struct Heartbeat {
    /// The daemon's process id.
    pub pid: u32,
    /// When it started.
    pub started: Timestamp,
    /// When it last brought the firewall in step (or tried to).
    pub last_sync: Timestamp,
    /// Ban elements it wants in the firewall.
    pub bans: usize,
    /// The last pass's error, if it failed.
    pub last_error: Option<String>,
    /// When it last rebuilt the firewall from the store (a resync), if it
    /// has (absent from older daemons' heartbeats).
    #[serde(default)]
    pub last_resync: Option<Timestamp>,
    /// Whether that resync succeeded.
    #[serde(default)]
    pub resync_ok: Option<bool>,
}

impl Heartbeat {
    /// Records this heartbeat in the store.
    pub fn record(&self, store: &mut Store) -> Result<(), StoreError> {
        let json = serde_json::to_string(self).unwrap_or_default();
        store.set_meta(MetaKey::Heartbeat, &json)
    }

    /// The last heartbeat recorded, if any (and readable).
    pub fn last(store: &Store) -> Option<Heartbeat> {
        let json = store.meta(MetaKey::Heartbeat).ok().flatten()?;
        serde_json::from_str(&json).ok()
    }

    /// True when the daemon that wrote it still runs: its pid is alive and
    /// it synced within two resync intervals (a live daemon writes at
    /// least every resync).
    pub fn is_alive(&self, resync: Duration, now: Timestamp) -> bool {
        let limit = 2 * authguard_core::time::secs(resync) + 5;
        let fresh = now - self.last_sync <= limit;
        fresh && std::path::Path::new(&format!("/proc/{}", self.pid)).exists()
    }
}
