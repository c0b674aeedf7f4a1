//! Handing a message to the local MTA: `[report] sendmail` (by default
//! `/usr/sbin/sendmail -t -oi`, which every Debian MTA provides) with the
//! message on its standard input, bounded in time. Also what a mailbox
//! may look like before it goes into a header, and a fresh Message-ID.

use std::io::{Read, Write};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// How long the MTA may take to accept one message.
const SUBMIT_TIMEOUT: Duration = Duration::from_secs(60);

/// Why the MTA did not take a message. Nothing was sent in any case.
#[derive(Debug, thiserror::Error)]
pub enum MailError {
    /// The program does not exist: no MTA is installed.
    #[error(
        "no MTA: {0} does not exist (install one, e.g. exim4-daemon-light or postfix, or set [report] sendmail)"
    )]
    NoMta(String),
    /// It could not be started or fed.
    #[error("{program} could not be run: {why}")]
    Run {
        /// The program.
        program: String,
        /// What failed.
        why: std::io::Error,
    },
    /// It refused the message or a recipient (exit status not 0).
    #[error("{program} refused the message ({status}){detail}")]
    Refused {
        /// The program.
        program: String,
        /// Its exit status, in words.
        status: String,
        /// What it said on standard error, if anything.
        detail: String,
    },
    /// It did not finish in time (and was killed).
    #[error("{program} did not finish within {}s and was stopped", SUBMIT_TIMEOUT.as_secs())]
    Timeout {
        /// The program.
        program: String,
    },
}

/// Hands `message` to `argv` (program and arguments) and waits for it.
pub fn submit(argv: &[String], message: &str) -> Result<(), MailError> {
    let (program, args) = argv
        .split_first()
        .expect("a sendmail command is never empty");
    let run = |why| MailError::Run {
        program: program.clone(),
        why,
    };
    let mut child = match Command::new(program)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
    {
        Ok(child) => child,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(MailError::NoMta(program.clone()));
        }
        Err(e) => return Err(run(e)),
    };
    // Its complaints are read while it runs, so a chatty MTA cannot block.
    let mut stderr = child.stderr.take().expect("stderr is piped");
    let said = std::thread::spawn(move || {
        let mut text = Vec::new();
        let _ = (&mut stderr).take(64 * 1024).read_to_end(&mut text);
        String::from_utf8_lossy(&text).trim().to_owned()
    });
    let fed = child
        .stdin
        .take()
        .expect("stdin is piped")
        .write_all(message.as_bytes());
    let deadline = Instant::now() + SUBMIT_TIMEOUT;
    let status = loop {
        match child.try_wait().map_err(run)? {
            Some(status) => break status,
            None if Instant::now() >= deadline => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(MailError::Timeout {
                    program: program.clone(),
                });
            }
            None => std::thread::sleep(Duration::from_millis(20)),
        }
    };
    let detail = said.join().unwrap_or_default();
    if status.success() {
        // It exited 0 but never read the whole message: not sent.
        return fed.map_err(run);
    }
    Err(MailError::Refused {
        program: program.clone(),
        status: exit_words(status),
        detail: if detail.is_empty() {
            String::new()
        } else {
            format!(": {detail}")
        },
    })
}

/// An exit status in words, with sysexits(3)'s meaning where it has one.
fn exit_words(status: std::process::ExitStatus) -> String {
    use std::os::unix::process::ExitStatusExt;
    let Some(code) = status.code() else {
        return format!("killed by signal {}", status.signal().unwrap_or(0));
    };
    let meaning = match code {
        64 => " usage",
        65 => " bad message",
        67 => " addressee unknown",
        68 => " host unknown",
        69 => " service unavailable",
        71 | 72 | 74 => " system error",
        73 => " cannot create file",
        75 => " temporary failure, try later",
        77 => " permission denied",
        78 => " configuration error",
        _ => "",
    };
    format!("exit status {code}{meaning}")
}

/// Checks that `text` is one bare mailbox (`local@domain`) fit for a
/// header: no spaces, commas, brackets or line breaks that would add a
/// recipient or a header.
pub fn mailbox(text: &str) -> Result<&str, String> {
    let bad = || format!("{text:?} is not a mail address (want local@domain)");
    let (local, domain) = text.split_once('@').ok_or_else(bad)?;
    let local_ok = !local.is_empty()
        && local.len() <= 64
        && local
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "!#$%&'*+-/=?^_`{|}~.".contains(c));
    let domain_ok = !domain.is_empty()
        && domain.len() <= 253
        && !domain.starts_with(['.', '-'])
        && !domain.ends_with(['.', '-'])
        && domain
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '.' || c == '-');
    if local_ok && domain_ok {
        Ok(text)
    } else {
        Err(bad())
    }
}

/// A Message-ID unique to this host (without the angle brackets).
pub fn message_id(host: &str, now: i64) -> String {
    let mut random = [0u8; 8];
    let _ = std::fs::File::open("/dev/urandom").and_then(|mut f| f.read_exact(&mut random));
    let hex: String = random.iter().map(|b| format!("{b:02x}")).collect();
    let host = if mailbox(&format!("x@{host}")).is_ok() {
        host
    } else {
        "localhost"
    };
    format!("authguard.{now}.{}.{hex}@{host}", std::process::id())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_mailbox_cannot_smuggle_a_recipient_or_a_header() {
        assert!(mailbox("abuse@isp.example").is_ok());
        assert!(mailbox("abuse+ssh@mail.isp-1.example").is_ok());
        for bad in [
            "abuse",
            "@isp.example",
            "abuse@",
            "a@b.example, c@d.example",
            "abuse@isp.example\nBcc: x@y.example",
            "Abuse <abuse@isp.example>",
            "a b@isp.example",
            "abuse@-isp.example",
        ] {
            assert!(mailbox(bad).is_err(), "{bad:?} passed");
        }
    }

    #[test]
    fn message_ids_differ() {
        assert_ne!(message_id("h.example", 1), message_id("h.example", 1));
        assert!(message_id("bad host", 1).ends_with("@localhost"));
    }

    #[test]
    fn a_missing_mta_a_refusal_and_an_acceptance_are_told_apart() {
        let argv = |a: &[&str]| a.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>();
        let missing = submit(&argv(&["/nonexistent/sendmail", "-t"]), "x").unwrap_err();
        assert!(matches!(missing, MailError::NoMta(_)), "{missing}");
        let refused = submit(
            &argv(&[
                "/bin/sh",
                "-c",
                "cat >/dev/null; echo 'no such user' >&2; exit 67",
            ]),
            "x",
        )
        .unwrap_err();
        let words = refused.to_string();
        assert!(
            words.contains("exit status 67 addressee unknown") && words.contains("no such user"),
            "{words}"
        );
        submit(&argv(&["/bin/sh", "-c", "cat >/dev/null"]), "x").unwrap();
    }
}
