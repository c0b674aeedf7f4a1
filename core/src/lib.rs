//! authguard-core: everything authguard decides, with no FFI and no I/O
//! beyond the store file and the syslog socket.
//!
//! - [`addr`]: client addresses, sources (addresses aggregated to a prefix), CIDRs.
//! - [`duration`] and [`time`]: human durations and RFC 3339 timestamps.
//! - [`config`]: `authguard.toml`, with errors that name the key and line.
//! - [`policy`]: every rule (allowed, banned, key-only, threshold,
//!   escalation, recidive, subnet, expiry) as pure functions over the
//!   `Facts` they ask of the store, or of memory.
//! - [`geo`]: country data files (Tor's geoip, CSV) parsed into IP ranges.
//! - [`store`]: the SQLite store: schema, admission transaction, queries.
//! - [`syslog`]: one greppable line per decision, to `/dev/log`.
//!
//! What does not live here: PAM's C world (see `pam_module`), the command
//! line and its output (see `guardctl`).
#![forbid(unsafe_code)]

pub mod addr;
pub mod config;
pub mod duration;
pub mod geo;
pub mod policy;
pub mod store;
pub mod syslog;
pub mod time;
