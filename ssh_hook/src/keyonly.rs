//! The sshd side of key-only signaling: the `authguard-keyonly.conf`
//! snippet. sshd then offers key-only sources just `publickey`, so a
//! password guesser learns at once there is nothing to guess, while a human
//! with a key is not bothered. Two forms:
//!
//! - [`render_listener`] (`method = "redirect"`): a key-only listener on one
//!   more port with a `Match LocalPort` block, written once. nftables sends
//!   key-only sources there, so a new offender needs no sshd reload (a
//!   reload makes OpenSSH 9.8+ forget its PerSourcePenalties). Which
//!   `Port`/`ListenAddress` lines it needs is worked out by [`plan_listener`]
//!   from `sshd -T`, so every listener sshd had is kept.
//! - [`render`] (`method = "reload"`): `Match Address` blocks naming a
//!   [`KeyOnlySet`], rewritten (and sshd reloaded) when the set changes.
//!   Thousands of sources stay quick for sshd: the set is already merged
//!   into the fewest CIDRs, and long lists are split over several `Match`
//!   blocks of [`PER_BLOCK`] networks (sshd reads a config line into a
//!   bounded buffer).

use authguard_core::policy::keyonly::KeyOnlySet;
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

/// Where sshd listens: the `port` and `listenaddress` lines of `sshd -T`,
/// or the `Port`/`ListenAddress` lines of a listener snippet. Repeats are
/// kept (sshd lists a port written twice twice), so lines can be subtracted.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Listening {
    /// Ports, in order.
    pub ports: Vec<u16>,
    /// Addresses with their port: host as sshd prints it (`0.0.0.0`,
    /// `[::]`), port, and what follows (` rdomain NAME` or nothing).
    pub addresses: Vec<(String, u16, String)>,
}

impl Listening {
    /// The `port N` and `listenaddress HOST:PORT` lines of `sshd -T` output.
    pub fn of_sshd_t(text: &str) -> Listening {
        Listening::parse(text, "port ", "listenaddress ", false)
    }

    /// The `Port`/`ListenAddress` lines of a snippet [`render_listener`] wrote
    /// (none in any other file).
    pub fn of_snippet(text: &str) -> Listening {
        if !text.contains(LISTENER_MARK) {
            return Listening::default();
        }
        Listening::parse(text, "Port ", "ListenAddress ", true)
    }

    fn parse(text: &str, port_word: &str, address_word: &str, stop_at_match: bool) -> Listening {
        let mut seen = Listening::default();
        for line in text.lines() {
            if stop_at_match && line.starts_with("Match ") {
                break;
            }
            if let Some(port) = line.strip_prefix(port_word) {
                seen.ports.extend(port.trim().parse::<u16>().ok());
            } else if let Some(rest) = line.strip_prefix(address_word) {
                let (address, more) = rest.split_once(' ').unwrap_or((rest, ""));
                if let Some((host, port)) = address.rsplit_once(':')
                    && let Ok(port) = port.parse()
                {
                    let more = if more.is_empty() {
                        String::new()
                    } else {
                        format!(" {more}")
                    };
                    seen.addresses.push((host.to_owned(), port, more));
                }
            }
        }
        seen
    }

    /// `self` with one of each of `other`'s lines taken out.
    fn without(mut self, other: &Listening) -> Listening {
        for port in &other.ports {
            if let Some(at) = self.ports.iter().position(|p| p == port) {
                self.ports.remove(at);
            }
        }
        for address in &other.addresses {
            if let Some(at) = self.addresses.iter().position(|a| a == address) {
                self.addresses.remove(at);
            }
        }
        self
    }
}

/// Why no listener snippet could be planned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PlanError {
    /// The port is one sshd already listens on for everyone (its value).
    /// sshd already listens on the key-only port for everyone.
    PortInUse(u16),
}

impl std::fmt::Display for PlanError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            PlanError::PortInUse(port) => write!(
                f,
                "sshd already listens on port {port} for everyone: choose another [keyonly] port"
            ),
        }
    }
}

impl std::error::Error for PlanError {}

/// The `Port`/`ListenAddress` lines the listener snippet must hold so that
/// sshd keeps every listener it has and adds `port` on each address.
///
/// `seen` is `sshd -T` with the current files, `ours` the lines the current
/// snippet holds ([`Listening::of_snippet`]), and `probe_added` says that
/// `-o Port=PORT` was given to that `sshd -T` (it is, when `ours` has no
/// `Port` line). Why the probe: `Port` lines add up, and sshd's default 22
/// applies only when no `Port` line exists at all, so a snippet with just
/// `Port PORT` would end sshd's listening on 22. With one port given, the
/// ports left are exactly those the admin's files name (none: the default
/// 22, which the snippet must then name itself). A `ListenAddress HOST:N`
/// with its own port ignores `Port` lines: it gets a `HOST:PORT` twin.
pub fn plan_listener(
    port: u16,
    seen: &Listening,
    ours: &Listening,
    probe_added: bool,
) -> Result<Listening, PlanError> {
    let mut probe = Listening::default();
    if probe_added {
        probe.ports.push(port);
    }
    let admins = seen.clone().without(ours).without(&probe);
    if admins.ports.contains(&port) {
        return Err(PlanError::PortInUse(port));
    }
    let mut plan = Listening::default();
    if admins.ports.is_empty() {
        plan.ports.push(22);
    }
    plan.ports.push(port);
    for (host, _, more) in admins.addresses.iter().filter(|a| a.1 != port) {
        let twin = (host.clone(), port, more.clone());
        if !admins.addresses.contains(&twin) && !plan.addresses.contains(&twin) {
            plan.addresses.push(twin);
        }
    }
    Ok(plan)
}

/// The first line of a listener snippet: how [`Listening::of_snippet`]
/// knows the file's `Port` lines are authguard's.
const LISTENER_MARK: &str = "# authguard key-only listener";

/// The listener snippet: `lines` ([`plan_listener`]) and the `Match
/// LocalPort` block. Written into `sshd_config.d`, which Debian's
/// sshd_config includes first, so this is the first `Match` sshd reads and
/// later ones cannot take its settings back.
pub fn render_listener(port: u16, lines: &Listening) -> String {
    let mut s = format!(
        "{LISTENER_MARK} ([keyonly] method = \"redirect\").\n\
         # Written by `guardctl keyonly apply`: do not edit, it is rewritten.\n\
         # nftables (table inet authguard) sends key-only sources' new connections\n\
         # here, to port {port}, where sshd offers only public keys. This file does\n\
         # not change when offenders do: sshd is never reloaded for one.\n"
    );
    for p in &lines.ports {
        let _ = writeln!(s, "Port {p}");
    }
    for (host, p, more) in &lines.addresses {
        let _ = writeln!(s, "ListenAddress {host}:{p}{more}");
    }
    let _ = write!(s, "Match LocalPort {port}\n{SETTINGS}");
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

    fn listening(ports: &[u16], addresses: &[&str]) -> Listening {
        let mut text = String::new();
        for p in ports {
            text.push_str(&format!("port {p}\n"));
        }
        for a in addresses {
            text.push_str(&format!("listenaddress {a}\n"));
        }
        Listening::of_sshd_t(&text)
    }

    #[test]
    fn the_listener_keeps_sshds_default_port_and_every_address() {
        // Debian's stock config: no Port line. Probed with -o Port=2223, sshd
        // shows only 2223: the snippet must name 22 itself.
        let stock = listening(&[2223], &["[::]:2223", "0.0.0.0:2223"]);
        let plan = plan_listener(2223, &stock, &Listening::default(), true).unwrap();
        assert_eq!(plan.ports, [22, 2223]);
        assert!(plan.addresses.is_empty(), "wildcards follow Port lines");
        let text = render_listener(2223, &plan);
        assert!(
            text.contains(
                "Port 22\nPort 2223\nMatch LocalPort 2223\n    AuthenticationMethods publickey\n"
            ),
            "{text}"
        );
        // Applied again with that file in place: the same plan (no probe now).
        let ours = Listening::of_snippet(&text);
        assert_eq!(ours.ports, [22, 2223]);
        let now = listening(
            &[22, 2223],
            &["[::]:22", "[::]:2223", "0.0.0.0:22", "0.0.0.0:2223"],
        );
        assert_eq!(plan_listener(2223, &now, &ours, false).unwrap(), plan);

        // The admin's own Port 2222 and an address with its own port.
        let custom = listening(
            &[2223, 2222],
            &[
                "192.0.2.1:2223",
                "192.0.2.1:2222",
                "[2001:db8::1]:22 rdomain blue",
            ],
        );
        let plan = plan_listener(2223, &custom, &Listening::default(), true).unwrap();
        assert_eq!(plan.ports, [2223], "2222 stays the admin's");
        assert_eq!(
            plan.addresses,
            [("[2001:db8::1]".to_owned(), 2223, " rdomain blue".to_owned())]
        );
        let text = render_listener(2223, &plan);
        assert!(
            text.contains("ListenAddress [2001:db8::1]:2223 rdomain blue\n"),
            "{text}"
        );
        assert_eq!(Listening::of_snippet(&text).addresses, plan.addresses);

        // sshd already serves 2223 to everyone: no key-only listener there.
        let taken = listening(&[2223, 2223], &["0.0.0.0:2223"]);
        assert_eq!(
            plan_listener(2223, &taken, &Listening::default(), true),
            Err(PlanError::PortInUse(2223))
        );
        // Another program's file never counts as ours.
        assert_eq!(Listening::of_snippet("Port 22\n"), Listening::default());
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
