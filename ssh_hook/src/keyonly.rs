//! The sshd side of key-only signaling: the `authguard-keyonly.conf`
//! snippet for a [`KeyOnlySet`]. sshd then offers key-only sources just
//! `publickey`, so a password guesser learns at once there is nothing to
//! guess, while a human with a key is not bothered.
//!
//! Thousands of sources stay quick for sshd: the set is already merged into
//! the fewest CIDRs, and long lists are split over several `Match` blocks
//! of [`PER_BLOCK`] networks (sshd reads a config line into a bounded buffer).

use authguard_core::keyonly::KeyOnlySet;
use ipnet::IpNet;
use std::fmt::Write as _;

/// The file written into `sshd_config_dir`.
pub const FILE_NAME: &str = "authguard-keyonly.conf";

/// Networks per `Match Address` line.
pub const PER_BLOCK: usize = 256;

const SETTINGS: &str = "    AuthenticationMethods publickey\n    PasswordAuthentication no\n    KbdInteractiveAuthentication no\n";

/// The whole snippet (a header comment and zero or more `Match` blocks).
pub fn render(set: &KeyOnlySet) -> String {
    let mut s = String::from(
        "# Written by `guardctl keyonly apply` (authguard): do not edit, it is rewritten.\n\
         # Sources listed here are offered only public-key authentication.\n",
    );
    match set {
        KeyOnlySet::Nobody => s.push_str("# Nobody is key-only now.\n"),
        KeyOnlySet::Networks(nets) => {
            for chunk in nets.chunks(PER_BLOCK) {
                let _ = write!(s, "Match Address {}\n{SETTINGS}", list(chunk, ""));
            }
        }
        KeyOnlySet::AllExcept(except) if except.is_empty() => {
            let _ = write!(s, "Match all\n{SETTINGS}");
        }
        KeyOnlySet::AllExcept(except) => {
            // sshd's pattern lists: `*` matches every address, `!NET` excludes one.
            // One line must hold every exception, so it is never split.
            let _ = write!(s, "Match Address *,{}\n{SETTINGS}", list(except, "!"));
        }
    }
    s
}

fn list(nets: &[IpNet], prefix: &str) -> String {
    nets.iter()
        .map(|n| format!("{prefix}{n}"))
        .collect::<Vec<_>>()
        .join(",")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn net(s: &str) -> IpNet {
        authguard_core::addr::parse_target(s).unwrap()
    }

    #[test]
    fn renders_match_blocks_split_by_size() {
        let nets: Vec<IpNet> = (0..600u32)
            .map(|i| net(&format!("10.{}.{}.0/24", i / 256, i % 256)))
            .collect();
        let text = render(&KeyOnlySet::Networks(nets));
        assert_eq!(text.matches("Match Address ").count(), 3);
        assert_eq!(text.matches("AuthenticationMethods publickey").count(), 3);
        assert!(
            text.contains("Match Address 10.0.0.0/24,10.0.1.0/24,"),
            "{text}"
        );
        let untrusted = render(&KeyOnlySet::AllExcept(vec![net("10.0.0.0/8"), net("::1")]));
        assert!(
            untrusted.contains("Match Address *,!10.0.0.0/8,!::1/128\n"),
            "{untrusted}"
        );
        assert!(!render(&KeyOnlySet::Nobody).contains("Match"));
    }
}
