//! The outside world of abuse reports, run for real on this host: a whois
//! server on loopback answering in registry reply shapes ([`WhoisServer`]),
//! and Debian's exim4 set for local delivery only into one mbox file the
//! test reads ([`Mta`]).
//!
//! No internet: whois answers come from the test, mail never leaves the
//! machine (exim's only router delivers every recipient to the mbox).

use crate::env::{tempdir, wait_until};
use std::io::{Read, Write};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

/// A whois server on loopback: answers each question (one line, the
/// address) with what `answer` makes of it, and counts the questions.
#[derive(Debug)]
pub struct WhoisServer {
    port: u16,
    asked: Arc<AtomicUsize>,
}

impl WhoisServer {
    /// Starts the server; it lives as long as the test process.
    pub fn start(answer: fn(&str) -> String) -> WhoisServer {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind a whois port");
        let port = listener.local_addr().expect("local addr").port();
        let asked = Arc::new(AtomicUsize::new(0));
        let count = Arc::clone(&asked);
        std::thread::spawn(move || {
            for conn in listener.incoming() {
                let Ok(mut conn) = conn else { continue };
                count.fetch_add(1, Ordering::SeqCst);
                let mut query = Vec::new();
                let mut byte = [0u8; 1];
                while conn.read(&mut byte).unwrap_or(0) == 1 && byte[0] != b'\n' {
                    query.push(byte[0]);
                }
                let query = String::from_utf8_lossy(&query);
                let _ = conn.write_all(answer(query.trim()).as_bytes());
            }
        });
        WhoisServer { port, asked }
    }

    /// `[report] whois_server` for it.
    pub fn address(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// How many questions it was asked.
    pub fn asked(&self) -> usize {
        self.asked.load(Ordering::SeqCst)
    }
}

/// A reply in RIPE's shape naming `contact` as the abuse mailbox.
pub fn ripe_reply(contact: &str) -> String {
    format!(
        "% This is the RIPE Database query service.\n\n\
         % Abuse contact for '0.0.0.0 - 255.255.255.255' is '{contact}'\n\n\
         inetnum:        0.0.0.0 - 255.255.255.255\n\
         netname:        TEST-NET\n\
         source:         RIPE\n"
    )
}

/// The recipient domain [`Mta`] refuses, as a relay refuses an unknown user.
pub const REFUSED_DOMAIN: &str = "refused.example";

/// exim4 (Debian's exim4-daemon-light) with its own configuration: every
/// message goes into one mbox file, except those to [`REFUSED_DOMAIN`],
/// which its non-SMTP ACL rejects (`sendmail` then exits 1).
#[derive(Debug)]
pub struct Mta {
    dir: tempfile::TempDir,
}

/// Where Debian installs exim.
const EXIM: &str = "/usr/sbin/exim4";

impl Mta {
    /// Writes the configuration. Panics when exim4 is not installed
    /// (`make deps` installs exim4-daemon-light).
    pub fn start() -> Mta {
        assert!(
            Path::new(EXIM).exists(),
            "{EXIM} is missing: install exim4-daemon-light (make deps)"
        );
        let dir = tempdir("mta");
        let d = dir.path();
        for sub in ["spool", "log", "box"] {
            std::fs::create_dir_all(d.join(sub)).expect("mta dirs");
        }
        // The transport writes as nobody, into a directory only it owns.
        let nobody = std::process::Command::new("chown")
            .args(["nobody:nogroup"])
            .arg(d.join("box"))
            .status()
            .expect("chown");
        assert!(nobody.success(), "chown nobody the mailbox directory");
        std::fs::write(d.join("exim.conf"), config(d)).expect("write exim.conf");
        Mta { dir }
    }

    /// `[report] sendmail` for this MTA, as sendmail(8) is called.
    pub fn sendmail(&self) -> String {
        format!(
            "{EXIM} -C {} -t -oi",
            self.dir.path().join("exim.conf").display()
        )
    }

    fn mbox(&self) -> PathBuf {
        self.dir.path().join("box/mailbox")
    }

    /// Every message delivered so far, raw, in order (exim's own bounces
    /// to root included: see [`Mta::delivered_to`]).
    pub fn messages(&self) -> Vec<String> {
        split_mbox(&std::fs::read_to_string(self.mbox()).unwrap_or_default())
    }

    /// The messages delivered to `domain`'s recipients (by Envelope-to).
    pub fn delivered_to(&self, domain: &str) -> Vec<String> {
        let at = format!("@{domain}");
        self.messages()
            .into_iter()
            .filter(|m| {
                m.lines()
                    .take_while(|l| !l.is_empty())
                    .any(|l| l.starts_with("Envelope-to:") && l.contains(&at))
            })
            .collect()
    }

    /// Waits (up to 10 s: exim delivers in a process it forks) until
    /// `n` messages were delivered to `domain`; returns them.
    pub fn wait_for(&self, domain: &str, n: usize) -> Vec<String> {
        wait_until(Duration::from_secs(10), || {
            self.delivered_to(domain).len() >= n
        });
        self.delivered_to(domain)
    }

    /// exim's main and reject logs, for a failure's message.
    pub fn log(&self) -> String {
        let mut out = String::new();
        for name in ["mainlog", "rejectlog", "paniclog"] {
            if let Ok(text) = std::fs::read_to_string(self.dir.path().join("log").join(name)) {
                out.push_str(&format!("--- exim {name}\n{text}"));
            }
        }
        out
    }
}

/// A local-delivery-only exim: one router, one appendfile transport.
/// The mbox has one fixed name: exim refuses file names built from a
/// recipient ("tainted").
fn config(d: &Path) -> String {
    let d = d.display();
    format!(
        r#"keep_environment =
primary_hostname = guarded.test
spool_directory = {d}/spool
log_file_path = {d}/log/%slog
exim_user = root
exim_group = root
never_users =
trusted_users = root
acl_not_smtp = not_smtp

begin acl
not_smtp:
  deny message = recipient refused: $recipients
       condition = ${{if match{{$recipients}}{{\N@refused\.example\N}}}}
  accept

begin routers
mailbox:
  driver = accept
  transport = mailbox

begin transports
mailbox:
  driver = appendfile
  file = {d}/box/mailbox
  user = nobody
  group = nogroup
  envelope_to_add = true
  mode = 0600
"#
    )
}

/// Splits an mbox into its messages (each without its `From ` line).
fn split_mbox(text: &str) -> Vec<String> {
    let mut messages = Vec::new();
    let mut current: Option<String> = None;
    let mut blank_before = true;
    for line in text.split_inclusive('\n') {
        if blank_before && line.starts_with("From ") {
            messages.extend(current.take());
            current = Some(String::new());
        } else if let Some(m) = current.as_mut() {
            m.push_str(line);
        }
        blank_before = line == "\n";
    }
    messages.extend(current);
    messages
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_mbox_splits_at_its_from_lines_only() {
        let text = "From a@b Mon Dec  7 10:00:00 2026\nSubject: one\n\nbody\nFrom here on\n\n\
                    From c@d Mon Dec  7 10:00:01 2026\nSubject: two\n\nbody\n";
        let m = split_mbox(text);
        assert_eq!(m.len(), 2, "{m:?}");
        assert!(m[0].contains("From here on") && m[1].starts_with("Subject: two"));
    }
}
