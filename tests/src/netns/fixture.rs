//! The set-up the firewall tests share, one step a call, in the order they
//! always took it: a [`Lab`], a [`Guard`] whose `guardctl` runs in the lab's
//! server namespace, the lab [`Sshd`], then the [`Daemon`].
//!
//! Each step acts at once and hands back the next stage, whose fields a test
//! destructures. What a test does after set-up is never here.
//!
//! ```no_run
//! use authguard_e2e::Guard;
//! use authguard_e2e::netns::{Fixture, WithDaemon};
//! let WithDaemon { lab, guard, sshd, daemon } = Fixture::lab(&[("atk1", &["203.0.113.10/24"])])
//!     .guard(Guard::builder())
//!     .sshd()
//!     .daemon();
//! ```
//!
//! Destructure in that order (`lab, guard, sshd, daemon`): bindings are
//! dropped in reverse, so the daemon stops first and the lab goes last, as
//! when each was its own `let`.

use super::{Daemon, Lab};
use crate::guard::{Guard, GuardConfig};
use crate::sshd::Sshd;

/// Where a fixture starts: [`Fixture::lab`].
#[derive(Debug)]
pub struct Fixture;

impl Fixture {
    /// Builds the lab ([`Lab::new`]); the first step.
    pub fn lab(attackers: &[(&str, &[&str])]) -> WithLab {
        WithLab {
            lab: Lab::new(attackers),
        }
    }
}

/// A lab and nothing in it yet.
#[derive(Debug)]
pub struct WithLab {
    /// The lab.
    pub lab: Lab,
}

impl WithLab {
    /// Starts the guard of `config`, its `guardctl` run in the lab's server
    /// namespace ([`GuardConfig::netns`]).
    pub fn guard(self, config: GuardConfig) -> WithGuard {
        let guard = config.netns(self.lab.server_ns()).start();
        WithGuard {
            guard,
            lab: self.lab,
        }
    }
}

/// A lab and its guard. Fields in drop order.
#[derive(Debug)]
pub struct WithGuard {
    /// The guard (its `guardctl` in the server namespace).
    pub guard: Guard,
    /// The lab.
    pub lab: Lab,
}

impl WithGuard {
    /// Runs `step` with the started guard before anything else starts
    /// (importing a country file, say).
    pub fn then(self, step: impl FnOnce(&Guard)) -> WithGuard {
        step(&self.guard);
        self
    }

    /// Starts the lab sshd with the default authguard stack for the guard
    /// ([`Sshd::start_in_netns`]).
    pub fn sshd(self) -> WithSshd {
        let sshd = Sshd::start_in_netns(&self.guard, &self.lab);
        WithSshd {
            sshd,
            guard: self.guard,
            lab: self.lab,
        }
    }
}

/// A lab, its guard and its sshd. Fields in drop order.
#[derive(Debug)]
pub struct WithSshd {
    /// The sshd in the server namespace.
    pub sshd: Sshd,
    /// The guard.
    pub guard: Guard,
    /// The lab.
    pub lab: Lab,
}

impl WithSshd {
    /// Starts `guardctl daemon` and waits for its table ([`Daemon::start`]).
    pub fn daemon(self) -> WithDaemon {
        let daemon = Daemon::start(&self.guard, &self.lab);
        WithDaemon {
            daemon,
            sshd: self.sshd,
            guard: self.guard,
            lab: self.lab,
        }
    }
}

/// The whole set-up: lab, guard, sshd and daemon. Fields in drop order.
#[derive(Debug)]
pub struct WithDaemon {
    /// The daemon in the server namespace.
    pub daemon: Daemon,
    /// The sshd in the server namespace.
    pub sshd: Sshd,
    /// The guard.
    pub guard: Guard,
    /// The lab.
    pub lab: Lab,
}
