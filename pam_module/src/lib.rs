//! pam_authguard: the PAM module. One line in `/etc/pam.d/sshd`:
//!
//! ```text
//! auth requisite pam_authguard.so [config=PATH] [fail=open|closed]
//! ```
//!
//! - `pam_sm_authenticate` admits (returns `PAM_IGNORE`, so the module can
//!   never authenticate anyone by itself) or refuses (`PAM_AUTH_ERR`, with a
//!   `PAM_ERROR_MSG` to the client) and records the attempt.
//! - `pam_sm_setcred`, called by sshd after a successful login, marks the
//!   attempt a success.
//!
//! This file converts PAM's world into typed options; [`ffi`] holds every
//! `unsafe` line; [`guard`] is the plain, testable logic over authguard-core.
//! Every hook runs inside `catch_unwind`: a panic becomes the fail mode's answer.
//!
//! The crate proves those promises to the compiler: `unsafe` is denied
//! everywhere but [`ffi`], and outside tests so is every way to panic on
//! purpose (a panic inside sshd is a login outage).
#![deny(unsafe_code)]
#![cfg_attr(
    not(test),
    deny(
        clippy::panic,
        clippy::unwrap_used,
        clippy::expect_used,
        clippy::todo,
        clippy::unimplemented,
        clippy::unreachable
    )
)]

pub mod args;
#[allow(unsafe_code)]
pub mod ffi;
pub mod guard;

use args::ModuleArgs;
use guard::Verdict;
use pam::constants::{
    PAM_ESTABLISH_CRED, PAM_REINITIALIZE_CRED, PAM_SILENT, PamFlag, PamResultCode,
};
use pam::module::{PamHandle, PamHooks};
use std::ffi::CStr;
use std::panic::{AssertUnwindSafe, catch_unwind};

/// The module type the `pam_hooks!` macro exports entry points for.
#[derive(Debug)]
pub struct AuthGuard;
pam::pam_hooks!(AuthGuard);

impl PamHooks for AuthGuard {
    fn sm_authenticate(pamh: &mut PamHandle, args: Vec<&CStr>, flags: PamFlag) -> PamResultCode {
        let args = ModuleArgs::parse(&args);
        let verdict = catch_unwind(AssertUnwindSafe(|| {
            let items = ffi::read_items(pamh);
            guard::authenticate(&args, &items)
        }))
        .unwrap_or_else(|_| guard::on_panic(&args, "authenticate"));
        match verdict {
            Verdict::Admit {
                attempt_id: Some(id),
            } => {
                ffi::remember_attempt(pamh, id);
                ffi::set_settled(pamh, false);
                PamResultCode::PAM_IGNORE
            }
            // Not counted (allowed, not an address, or a fault): setcred has nothing to mark.
            Verdict::Admit { attempt_id: None } => {
                ffi::set_settled(pamh, true);
                PamResultCode::PAM_IGNORE
            }
            Verdict::Refuse { message } => {
                if flags & PAM_SILENT == 0 {
                    ffi::tell_client(pamh, &message);
                }
                PamResultCode::PAM_AUTH_ERR
            }
        }
    }

    fn sm_setcred(pamh: &mut PamHandle, args: Vec<&CStr>, flags: PamFlag) -> PamResultCode {
        if flags & (PAM_ESTABLISH_CRED | PAM_REINITIALIZE_CRED) != 0 && !ffi::is_settled(pamh) {
            let args = ModuleArgs::parse(&args);
            // A failure to record a success must never fail the login.
            let _ = catch_unwind(AssertUnwindSafe(|| {
                let items = ffi::read_items(pamh);
                guard::record_success(&args, &items, ffi::recall_attempt(pamh));
            }));
            ffi::set_settled(pamh, true);
        }
        PamResultCode::PAM_IGNORE
    }
}

#[cfg(test)]
mod tests {
    /// build.rs links the unwinder statically (libgcc_eh.a as `-lgcc_s`);
    /// the hooks' `catch_unwind` must still catch a panic with it, and no
    /// libgcc_s.so.1 may be mapped. This test binary links as the module does.
    #[test]
    fn a_panic_unwinds_to_catch_unwind_with_the_static_unwinder() {
        let caught = std::panic::catch_unwind(|| {
            let empty: Vec<u8> = Vec::new();
            empty[std::hint::black_box(3)]
        });
        assert!(caught.is_err(), "the panic was caught, not aborted");
        let maps = std::fs::read_to_string("/proc/self/maps").unwrap();
        assert!(
            !maps.contains("libgcc_s"),
            "libgcc_s.so is loaded: build.rs did not find libgcc_eh.a"
        );
    }
}
