//! The fleet: CrowdSec's Local API. The daemon runs a [`link`] thread,
//! apart from its other duties, that pulls the LAPI's ban decisions into
//! the store as a bouncer and pushes this host's bans from the store's
//! outbox as a machine. Logins never wait on it: the PAM module decides
//! from the local store, and the firewall takes pulled bans like any other.
//!
//! - [`lapi`]: HTTP as a bouncer, credentials, TLS.
//! - [`machine`]: HTTP as a machine: login, alerts, deletions.
//! - [`decisions`]: the stream read as it arrives, each decision judged by
//!   `policy::fleet`.
//! - [`link`]: the loop (pull, then push) and what it reports (`meta` key
//!   `crowdsec.link`).

pub mod decisions;
pub mod lapi;
pub mod link;
pub mod machine;
