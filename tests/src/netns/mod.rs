//! Network-namespace labs for the firewall tests: real packets, real nftables,
//! never the host's network.
//!
//! A [`Lab`] is one *server* namespace and N *attacker* namespaces. The
//! server namespace holds a bridge `br0` carrying the server's addresses
//! ([`SERVER_ADDRS`]: `192.0.2.1/24`, `2001:db8:1::1/64`, and on-link
//! addresses in `198.51.100.0/24`, `203.0.113.0/24`, `2001:db8:2::/64`,
//! `2001:db8:3::/64`). Each attacker namespace is joined to the bridge by a
//! veth pair (server side `vN` enslaved to `br0`, attacker side `eth0`) and
//! gets the addresses the test names, with default routes via the server's
//! address in the same subnet. IPv6 duplicate address detection is off, so
//! every address works at once. A third kind, the *scratch* namespace, is
//! empty (only `lo`): a place to run a tool whose nftables side effects must
//! reach neither the server namespace nor the host.
//!
//! Namespaces are named `ag-<role>-<pid>-<n>` (role `srv`, `scratch` or the
//! attacker's name). [`Lab`]'s `Drop` ends whatever still runs in them and
//! deletes them, also on panic; [`Lab::new`] first deletes namespaces left
//! behind by test processes that no longer exist (a `kill -9`'d run).
//!
//! Inside the lab: [`Sshd::start_in_netns`] runs the real sshd in the server
//! namespace on port 22 of every address, [`Daemon`] runs `guardctl daemon`
//! there, and [`Lab::probe`] / [`Lab::wait_until_blocked`] /
//! [`Lab::wait_until_open`] make TCP connects from a chosen attacker source.
//! Give the [`Guard`] the server namespace ([`crate::GuardConfig::netns`]) so
//! its `guardctl ban/unban/allow` push into the lab's firewall.
//!
//! Rooms: `lab` (the namespaces), `namespaces` (the `ip` plumbing under
//! them), `nft` (the server's ruleset), `probe` (TCP connects), `ssh`
//! (logins from attackers), `sshd` and `daemon` (what runs in the server
//! namespace), `fixture` (the set-up most firewall tests share).

mod daemon;
mod fixture;
mod held;
mod lab;
mod namespaces;
mod nft;
mod probe;
mod ssh;
mod sshd;

pub use daemon::Daemon;
pub use fixture::{Fixture, WithDaemon, WithGuard, WithLab, WithSshd};
pub use held::HeldSession;
pub use lab::{Lab, SERVER_ADDRS, SERVER_V4, SERVER_V6, SSH_PORT};
pub use nft::{NftElement, set_elements};
pub use probe::{PROBE_TIMEOUT, Probe, WAIT};
