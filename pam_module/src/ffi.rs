//! Every call into PAM's C API, wrapped once. The rest of the module is safe Rust.
//!
//! pam-bindings does the raw FFI; what needs care here is the typed data
//! slot (`pam_get_data` is unsafe because PAM stores untyped pointers).

use pam::constants::PAM_ERROR_MSG;
use pam::conv::Conv;
use pam::items::{RHost, Service, User};
use pam::module::PamHandle;

/// The `pam_set_data` key under which the admitted attempt's id is kept
/// between `pam_sm_authenticate` and `pam_sm_setcred`.
const ATTEMPT_KEY: &str = "authguard_attempt_id";

/// The key of a flag set once this PAM transaction needs no more store
/// work: the success is recorded, or admission already met a fault. It is
/// inherited by sshd's forked session child, whose second setcred then
/// skips the store.
const SETTLED_KEY: &str = "authguard_settled";

/// What the module reads from PAM, as raw bytes: none of it is trusted.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Items {
    /// `PAM_RHOST`: the client address (or a host name with `UseDNS yes`).
    pub rhost: Option<Vec<u8>>,
    /// `PAM_USER`: the user name the client asked for; any bytes.
    pub user: Option<Vec<u8>>,
    /// `PAM_SERVICE`: `sshd`.
    pub service: Option<Vec<u8>>,
}

/// Reads the items the decision needs. Never prompts (no `pam_get_user`):
/// sshd has set `PAM_USER` already, and a guard must not converse first.
pub fn read_items(pamh: &PamHandle) -> Items {
    Items {
        rhost: pamh
            .get_item::<RHost<'_>>()
            .ok()
            .flatten()
            .map(|v| v.0.to_bytes().to_vec()),
        user: pamh
            .get_item::<User<'_>>()
            .ok()
            .flatten()
            .map(|v| v.0.to_bytes().to_vec()),
        service: pamh
            .get_item::<Service<'_>>()
            .ok()
            .flatten()
            .map(|v| v.0.to_bytes().to_vec()),
    }
}

/// Keeps the admitted attempt's id for `pam_sm_setcred` in the same process.
pub fn remember_attempt(pamh: &mut PamHandle, id: i64) {
    let _ = pamh.set_data(ATTEMPT_KEY, Box::new(id));
}

/// The id kept by [`remember_attempt`], if this process made one.
pub fn recall_attempt(pamh: &PamHandle) -> Option<i64> {
    // SAFETY: ATTEMPT_KEY is private to this module and only `remember_attempt`
    // stores under it, always a `Box<i64>`; so the pointer PAM returns, if any,
    // points to a live i64 owned by PAM until pam_end.
    unsafe { pamh.get_data::<i64>(ATTEMPT_KEY) }.ok().copied()
}

/// Shows `message` to the client as PAM_ERROR_MSG. Failures are ignored:
/// a client that cannot display it is refused all the same.
pub fn tell_client(pamh: &PamHandle, message: &str) {
    if let Ok(Some(conv)) = pamh.get_item::<Conv<'_>>() {
        let _ = conv.send(PAM_ERROR_MSG, message);
    }
}

/// Marks whether this PAM transaction needs no more store work. sshd may
/// run several password attempts on one handle, so an admitted attempt
/// clears the flag that an earlier fault set.
pub fn set_settled(pamh: &mut PamHandle, settled: bool) {
    let _ = pamh.set_data(SETTLED_KEY, Box::new(settled));
}

/// True once [`set_settled`] set the flag ran in this process (or the one it forked from).
pub fn is_settled(pamh: &PamHandle) -> bool {
    // SAFETY: SETTLED_KEY is private to this module and only `set_settled`
    // stores under it, always a `Box<bool>`, owned by PAM until pam_end.
    unsafe { pamh.get_data::<bool>(SETTLED_KEY) }.is_ok_and(|b| *b)
}
