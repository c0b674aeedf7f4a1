//! The fleet: CrowdSec's Local API. The daemon runs a [`link`] thread,
//! apart from its other duties, that pulls the LAPI's ban decisions into
//! the store as a bouncer. Logins never wait on it: the PAM module decides
//! from the local store, and the firewall takes pulled bans like any other.
//!
//! - [`lapi`]: HTTP, credentials, TLS.
//! - [`decisions`]: the stream read as it arrives, each decision judged by
//!   `policy::fleet`.
//! - [`link`]: the pull loop and what it reports (`meta` key `crowdsec.link`).

pub mod decisions;
pub mod lapi;
pub mod link;
