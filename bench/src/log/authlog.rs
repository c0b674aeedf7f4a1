//! A deterministic, realistic RFC 3164 `auth.log`: sshd connections told
//! the way OpenSSH 9.x tells them at LogLevel INFO (password guessers,
//! key scanners, banner grabbers, old clients that cannot negotiate,
//! logins), a few interleaved at a time, among other programs' lines
//! (CRON, systemd-logind, sudo, systemd).
//!
//! Each connection is a short script of lines from one source, port and
//! pid, as sshd writes them; so a parser that tracks connections sees what
//! it would see on a real server, and the parsers compared count the same
//! attacks.

use crate::admission::{Rng, attacker_ip};
use authguard_core::time::{self, Timestamp};
use std::collections::VecDeque;
use std::io::Write;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// The host name in every line.
const HOST: &str = "web1";
/// Connections in progress at once (their lines interleave).
const OPEN_CONNECTIONS: usize = 4;
/// Names scanners try that do not exist here.
const INVALID_USERS: [&str; 16] = [
    "admin", "test", "oracle", "user", "ubuntu", "guest", "postgres", "git", "ftpuser", "pi",
    "deploy", "jenkins", "hadoop", "support", "mysql", "steam",
];
/// Real users, who log in with keys (sometimes a password).
const USERS: [&str; 3] = ["alice", "bob", "deploy"];
/// Month abbreviations as syslog writes them.
const MONTHS: [&str; 12] = [
    "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
];

/// What to generate.
#[derive(Debug, Clone, Copy)]
pub struct Spec {
    /// Lines to write, exactly.
    pub lines: usize,
    /// Distinct attacking addresses (a few of them do most of the attacking).
    pub sources: usize,
    /// Share of lines from programs other than sshd (0 to 1).
    pub other_share: f64,
    /// The first line's time.
    pub start: Timestamp,
    /// Each line is 0 to this many seconds after the previous one.
    pub max_step: u64,
    /// The generator's seed: the same spec writes the same bytes.
    pub seed: u64,
}

/// What was written.
#[derive(Debug, Clone, Copy, Default)]
pub struct Written {
    /// Lines.
    pub lines: u64,
    /// Lines from sshd.
    pub sshd_lines: u64,
    /// Bytes.
    pub bytes: u64,
    /// sshd connections begun.
    pub connections: u64,
}

/// Writes `spec.lines` lines to `out`.
pub fn write(spec: &Spec, out: &mut impl Write) -> std::io::Result<Written> {
    let mut g = Generator::new(spec);
    let mut w = Written::default();
    let mut line = String::with_capacity(256);
    for _ in 0..spec.lines {
        line.clear();
        g.next_line(&mut line);
        line.push('\n');
        out.write_all(line.as_bytes())?;
        w.bytes += line.len() as u64;
    }
    w.lines = spec.lines as u64;
    w.sshd_lines = g.sshd_lines;
    w.connections = g.connections;
    Ok(w)
}

/// One sshd connection's remaining messages.
#[derive(Debug)]
struct Connection {
    pid: u32,
    messages: VecDeque<String>,
}

#[derive(Debug)]
struct Generator {
    rng: Rng,
    attackers: Vec<IpAddr>,
    legit: [IpAddr; 3],
    other_share: f64,
    clock: Timestamp,
    max_step: u64,
    next_pid: u32,
    next_session: u32,
    open: Vec<Connection>,
    sshd_lines: u64,
    connections: u64,
}

impl Generator {
    fn new(spec: &Spec) -> Generator {
        let mut rng = Rng(spec.seed);
        let attackers = (0..spec.sources.max(1))
            .map(|_| attacker_ip(&mut rng))
            .collect();
        Generator {
            rng,
            attackers,
            legit: [
                IpAddr::V4(Ipv4Addr::new(192, 0, 2, 10)),
                IpAddr::V4(Ipv4Addr::new(192, 0, 2, 11)),
                IpAddr::V6(Ipv6Addr::new(0x2001, 0xdb8, 0x1, 0, 0, 0, 0, 0x10)),
            ],
            other_share: spec.other_share,
            clock: spec.start,
            max_step: spec.max_step,
            next_pid: 2_000,
            next_session: 1,
            open: Vec::new(),
            sshd_lines: 0,
            connections: 0,
        }
    }

    /// Appends the next line (without its `\n`) to `line`.
    fn next_line(&mut self, line: &mut String) {
        if self.max_step > 0 {
            self.clock += self.rng.below(self.max_step + 1) as i64;
        }
        let (_, month, day, h, m, s) = time::civil(self.clock);
        let month = MONTHS[(month as usize).clamp(1, 12) - 1];
        line.push_str(&format!("{month} {day:>2} {h:02}:{m:02}:{s:02} {HOST} "));
        if self.rng.unit() < self.other_share {
            let other = self.other_line();
            line.push_str(&other);
            return;
        }
        while self.open.len() < OPEN_CONNECTIONS {
            let c = self.connection();
            self.open.push(c);
        }
        let i = self.rng.below(self.open.len() as u64) as usize;
        let c = &mut self.open[i];
        let message = c.messages.pop_front().unwrap_or_default();
        line.push_str(&format!("sshd[{}]: {message}", c.pid));
        if c.messages.is_empty() {
            self.open.swap_remove(i);
        }
        self.sshd_lines += 1;
    }

    fn attacker(&mut self) -> IpAddr {
        self.attackers[self.rng.skewed(self.attackers.len())]
    }

    fn port(&mut self) -> u16 {
        1_024 + self.rng.below(64_000) as u16
    }

    fn pick<'a>(&mut self, from: &[&'a str]) -> &'a str {
        from[self.rng.below(from.len() as u64) as usize]
    }

    /// A key's SHA256 fingerprint as sshd prints it.
    fn fingerprint(&mut self) -> String {
        const B64: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
        (0..43)
            .map(|_| char::from(B64[self.rng.below(64) as usize]))
            .collect()
    }

    /// A new connection's script.
    fn connection(&mut self) -> Connection {
        self.next_pid += 1 + self.rng.below(40) as u32;
        self.connections += 1;
        let roll = self.rng.below(100);
        let messages = match roll {
            0..30 => self.invalid_user_password(),
            30..50 => self.root_password(),
            50..60 => self.key_scanner(),
            60..80 => self.probe(),
            80..95 => self.login(),
            _ => self.not_allowed(),
        };
        Connection {
            pid: self.next_pid,
            messages: messages.into(),
        }
    }

    fn invalid_user_password(&mut self) -> Vec<String> {
        let (ip, p, u) = (self.attacker(), self.port(), self.pick(&INVALID_USERS));
        let mut m = vec![
            format!("Invalid user {u} from {ip} port {p}"),
            "pam_unix(sshd:auth): check pass; user unknown".to_owned(),
            format!(
                "pam_unix(sshd:auth): authentication failure; logname= uid=0 euid=0 tty=ssh ruser= rhost={ip}"
            ),
            format!("Failed password for invalid user {u} from {ip} port {p} ssh2"),
        ];
        if self.rng.below(2) == 0 {
            m.push(format!(
                "Received disconnect from {ip} port {p}:11: Bye Bye [preauth]"
            ));
            m.push(format!(
                "Disconnected from invalid user {u} {ip} port {p} [preauth]"
            ));
        } else {
            m.push(format!(
                "Connection closed by invalid user {u} {ip} port {p} [preauth]"
            ));
        }
        m
    }

    fn root_password(&mut self) -> Vec<String> {
        let (ip, p) = (self.attacker(), self.port());
        let mut m = vec![format!(
            "pam_unix(sshd:auth): authentication failure; logname= uid=0 euid=0 tty=ssh ruser= rhost={ip}  user=root"
        )];
        if self.rng.below(10) == 0 {
            // A client that keeps going until MaxAuthTries (6) stops it.
            for _ in 0..6 {
                m.push(format!("Failed password for root from {ip} port {p} ssh2"));
            }
            m.push(format!(
                "error: maximum authentication attempts exceeded for root from {ip} port {p} ssh2 [preauth]"
            ));
            m.push(format!(
                "Disconnecting authenticating user root {ip} port {p}: Too many authentication failures [preauth]"
            ));
            m.push(format!(
                "PAM 5 more authentication failures; logname= uid=0 euid=0 tty=ssh ruser= rhost={ip}  user=root"
            ));
            m.push("PAM service(sshd) ignoring max retries; 6 > 3".to_owned());
        } else {
            for _ in 0..=self.rng.below(2) {
                m.push(format!("Failed password for root from {ip} port {p} ssh2"));
            }
            m.push(format!(
                "Connection closed by authenticating user root {ip} port {p} [preauth]"
            ));
        }
        m
    }

    fn key_scanner(&mut self) -> Vec<String> {
        let (ip, p) = (self.attacker(), self.port());
        let mut m = Vec::new();
        if self.rng.below(2) == 0 {
            let u = self.pick(&INVALID_USERS);
            m.push(format!("Invalid user {u} from {ip} port {p}"));
            for _ in 0..=self.rng.below(2) {
                let fp = self.fingerprint();
                m.push(format!(
                    "Failed publickey for invalid user {u} from {ip} port {p} ssh2: ED25519 SHA256:{fp}"
                ));
            }
            m.push(format!(
                "Connection closed by invalid user {u} {ip} port {p} [preauth]"
            ));
        } else {
            // A valid user's failed keys show from the third on (MaxAuthTries / 2).
            for _ in 0..3 {
                let fp = self.fingerprint();
                m.push(format!(
                    "Failed publickey for root from {ip} port {p} ssh2: RSA SHA256:{fp}"
                ));
            }
            m.push(format!(
                "Connection closed by authenticating user root {ip} port {p} [preauth]"
            ));
        }
        m
    }

    fn probe(&mut self) -> Vec<String> {
        let (ip, p) = (self.attacker(), self.port());
        match self.rng.below(8) {
            0 => vec![
                "error: kex_exchange_identification: Connection closed by remote host".to_owned(),
                format!("Connection closed by {ip} port {p}"),
            ],
            1 => vec![
                "error: kex_exchange_identification: client sent invalid protocol identifier \"GET / HTTP/1.1\"".to_owned(),
                format!("banner exchange: Connection from {ip} port {p}: invalid format"),
            ],
            2 => vec![format!(
                "Unable to negotiate with {ip} port {p}: no matching key exchange method found. Their offer: diffie-hellman-group1-sha1,diffie-hellman-group14-sha1 [preauth]"
            )],
            3 => vec![format!(
                "Unable to negotiate with {ip} port {p}: no matching host key type found. Their offer: ssh-rsa,ssh-dss [preauth]"
            )],
            4 => vec![format!("Connection closed by {ip} port {p} [preauth]")],
            5 => vec![format!(
                "Timeout before authentication for {ip} port {p}"
            )],
            6 => vec![
                "error: kex_exchange_identification: read: Connection reset by peer".to_owned(),
                format!("Connection reset by {ip} port {p}"),
            ],
            _ => vec![format!(
                "banner exchange: Connection from {ip} port {p}: could not read protocol version"
            )],
        }
    }

    fn login(&mut self) -> Vec<String> {
        let ip = self.legit[self.rng.below(3) as usize];
        let (p, u) = (self.port(), self.pick(&USERS));
        let accepted = if self.rng.below(10) == 0 {
            format!("Accepted password for {u} from {ip} port {p} ssh2")
        } else {
            let fp = self.fingerprint();
            format!("Accepted publickey for {u} from {ip} port {p} ssh2: ED25519 SHA256:{fp}")
        };
        vec![
            accepted,
            format!("pam_unix(sshd:session): session opened for user {u}(uid=1000) by (uid=0)"),
            format!("Received disconnect from {ip} port {p}:11: disconnected by user"),
            format!("Disconnected from user {u} {ip} port {p}"),
            format!("pam_unix(sshd:session): session closed for user {u}"),
        ]
    }

    fn not_allowed(&mut self) -> Vec<String> {
        let (ip, p) = (self.attacker(), self.port());
        let u = self.pick(&["root", "oracle", "postgres"]);
        vec![
            format!("User {u} from {ip} not allowed because not listed in AllowUsers"),
            format!("Failed password for invalid user {u} from {ip} port {p} ssh2"),
            format!("Connection closed by invalid user {u} {ip} port {p} [preauth]"),
        ]
    }

    /// A line from another program (the part after the host).
    fn other_line(&mut self) -> String {
        let u = self.pick(&USERS);
        let pid = 20_000 + self.rng.below(30_000);
        let session = self.next_session;
        match self.rng.below(8) {
            0 | 1 => format!(
                "CRON[{pid}]: pam_unix(cron:session): session opened for user root(uid=0) by (uid=0)"
            ),
            2 | 3 => format!("CRON[{pid}]: pam_unix(cron:session): session closed for user root"),
            4 => {
                self.next_session += 1;
                format!("systemd-logind[512]: New session {session} of user {u}.")
            }
            5 => format!(
                "systemd-logind[512]: Session {} logged out. Waiting for processes to exit.",
                session.saturating_sub(1).max(1)
            ),
            6 => format!(
                "sudo:    {u} : TTY=pts/0 ; PWD=/home/{u} ; USER=root ; COMMAND=/usr/bin/systemctl status nginx"
            ),
            _ => format!(
                "systemd[1]: Started session-{session}.scope - Session {session} of User {u}."
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(lines: usize) -> Spec {
        Spec {
            lines,
            sources: 100,
            other_share: 0.3,
            start: 1_795_514_401,
            max_step: 1,
            seed: 7,
        }
    }

    #[test]
    fn same_seed_same_bytes_and_exact_line_count() {
        let (mut a, mut b) = (Vec::new(), Vec::new());
        let wa = write(&spec(2_000), &mut a).unwrap();
        write(&spec(2_000), &mut b).unwrap();
        assert_eq!(a, b);
        assert_eq!(a.iter().filter(|&&c| c == b'\n').count(), 2_000);
        assert_eq!(wa.bytes, a.len() as u64);
        let share = 1.0 - wa.sshd_lines as f64 / wa.lines as f64;
        assert!((0.25..0.35).contains(&share), "non-sshd share {share}");
    }

    #[test]
    fn lines_are_rfc3164() {
        let mut out = Vec::new();
        write(&spec(50), &mut out).unwrap();
        let text = String::from_utf8(out).unwrap();
        let first = text.lines().next().unwrap();
        assert!(first.starts_with("Nov 24 "), "{first}");
        assert!(text.lines().all(|l| l[16..].starts_with("web1 ")));
    }
}
