//! A TCP session to the lab's sshd held open from an attacker's source:
//! does it still talk after the firewall changed? What an admin's open
//! SSH session feels when a ban covers it.

use super::{Lab, SERVER_V4, SSH_PORT};
use std::io::{BufRead, BufReader, Lines, Write};
use std::process::{Child, ChildStdout, Stdio};

/// Holds one TCP connection to sshd from a source: prints `up` once the
/// server's banner is read, then on a line from stdin sends a client
/// banner and prints `alive` if sshd answers (its key exchange), `dead`
/// if nothing comes back.
const HOLD_SCRIPT: &str = r#"
import socket, sys
src, dst, port = sys.argv[1], sys.argv[2], int(sys.argv[3])
s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
s.bind((src, 0))
s.settimeout(5)
s.connect((dst, port))
s.recv(256)
print("up", flush=True)
sys.stdin.readline()
s.settimeout(4)
try:
    s.sendall(b"SSH-2.0-authguard-hold\r\n")
    print("alive" if s.recv(4096) else "dead", flush=True)
except OSError:
    print("dead", flush=True)
"#;

/// A session held open; see [`Lab::hold_session`].
#[derive(Debug)]
pub struct HeldSession {
    child: Child,
    said: Lines<BufReader<ChildStdout>>,
}

impl Lab {
    /// Opens a session to sshd (IPv4) from `source` in `attacker`'s
    /// namespace and holds it, panicking unless sshd's banner arrives.
    pub fn hold_session(&self, attacker: &str, source: &str) -> HeldSession {
        let port = SSH_PORT.to_string();
        let argv = [
            "/usr/bin/python3",
            "-c",
            HOLD_SCRIPT,
            source,
            SERVER_V4,
            &port,
        ];
        let mut child = self
            .exec_in(self.attacker_ns(attacker), &argv)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .expect("the held session");
        let mut said = BufReader::new(child.stdout.take().expect("its stdout")).lines();
        let first = said.next().and_then(Result::ok);
        assert_eq!(
            first.as_deref(),
            Some("up"),
            "no session to hold from {source}"
        );
        HeldSession { child, said }
    }
}

impl HeldSession {
    /// Whether sshd still answers on the held connection (a client banner
    /// sent, the server's key exchange back within 4 s).
    pub fn still_talks(mut self) -> bool {
        if let Some(stdin) = self.child.stdin.as_mut() {
            let _ = stdin.write_all(b"go\n");
        }
        let answer = self.said.next().and_then(Result::ok);
        let _ = self.child.wait();
        answer.as_deref() == Some("alive")
    }
}

impl Drop for HeldSession {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
