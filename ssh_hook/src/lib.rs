//! ssh_hook: authguard's side of sshd: its log, for what PAM never sees
//! (public-key failures, invalid users, scanners, pre-auth disconnects), and
//! its config, for key-only signaling.
//!
//! - [`event`]: the typed result, [`Event`] with its [`Kind`] and [`Method`].
//! - [`message`]: the bare sshd message (`Failed password for …`), parsed from
//!   the fixed structure at its end so that user-controlled text (user names,
//!   key ids, client banners) can never move the address. OpenSSH 6.x–10.x,
//!   `sshd`, `sshd-session`, `sshd-auth`; no regex engine.
//! - `parsed`: what one line is ([`Parsed`]), and what every framing shares
//!   (is the program sshd's, what its message says).
//! - [`framing`]: the line around it (RFC 3164, RFC 5424, rsyslog ISO,
//!   `journalctl -o short|short-iso|short-precise|short-unix|short-monotonic|cat|json`).
//! - [`weigh`]: what each event means for its source's failure count.
//! - [`follow`]: the file and journal followers the daemon reads with.
//! - [`keyonly`]: the sshd_config.d snippet for key-only signaling.
//!
//! Not here: ban decisions and windows (`authguard-core`), the daemon that
//! runs the followers and reloads sshd (`guardctl`).
#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod address;
mod bytes;
mod civil_time;
pub mod event;
pub mod follow;
pub mod framing;
mod journal;
pub mod keyonly;
pub mod message;
mod parsed;
mod sequence;
pub mod weigh;

pub use event::{Event, Kind, Method, Unaddressed};
pub use framing::{Classifier, Parsed, classify_line, parse_line};
pub use message::parse_message;
pub use sequence::Sequencer;
pub use weigh::{Tracker, Verdict, Weights};
