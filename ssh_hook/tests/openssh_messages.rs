//! Every message OpenSSH 6.6 to 10.2 writes about a client at INFO or
//! above (`tests/data/openssh_messages.txt`, read from each release's
//! source: one `# VERSIONS file:function ADDRESS` comment, then the bare
//! message). Each must give its client's address or nothing, never
//! another; each that names a client must be an event unless it is one
//! of the few lines that are no one's fault; lines that name none must be
//! tied to their pid's connection or to nothing.

use ssh_hook::{Parsed, Sequencer, classify_line, parse_message};

/// Messages that name the client but are no event, with why.
const NOT_EVENTS: [(&str, &str); 19] = [
    ("Postponed ", "a step of one login"),
    ("Partial ", "a step of one login (AuthenticationMethods)"),
    ("Disconnected from user ", "a logged-in user leaving"),
    (
        "Received disconnect from 203.0.113.5 port 4242:11: disconnected by user",
        "after login",
    ),
    (
        "reverse mapping checking",
        "the client's DNS, not the client",
    ),
    (
        "Address 203.0.113.5 maps to",
        "the client's DNS, not the client",
    ),
    ("Nasty PTR record", "the client's DNS, not the client"),
    (
        "User root from host.example",
        "UseDNS yes: a host name, not an address",
    ),
    (
        "error: PAM: Authentication failure for root from host.example",
        "UseDNS yes: a host name",
    ),
    (
        "Disconnecting invalid user admin 203.0.113.5 port 4242: Change of username",
        "client text on both sides of the address: tied by pid instead",
    ),
    (
        "userauth_hostbased mismatch",
        "a host-based key's holder from the wrong name",
    ),
    (
        "/root/.ssh/authorized_keys:3: Authentication tried",
        "a valid key outside its from= restriction",
    ),
    (
        "Authentication tried for root with",
        "a valid key outside its from= restriction",
    ),
    (
        "error: public key ",
        "a security key without its touch or PIN",
    ),
    ("Timeout, client not responding from user ", "after login"),
    ("terminating inactive connection from user ", "after login"),
    ("Read error from remote host", "after login (9.9+)"),
    (
        "Received request from",
        "after login: a forwarding the config refuses",
    ),
    ("error: Connection from user ", "after login"),
];

/// The samples: (expected address or "none", message).
fn samples() -> Vec<(String, String)> {
    let text = include_str!("data/openssh_messages.txt");
    let mut out = Vec::new();
    let mut expected = None;
    for line in text.lines() {
        if let Some(comment) = line.strip_prefix("# ") {
            expected = comment.split_whitespace().last().map(str::to_owned);
        } else if !line.is_empty() {
            out.push((
                expected.take().expect("a comment before each sample"),
                line.to_owned(),
            ));
        }
    }
    out
}

#[test]
fn the_address_is_the_clients_or_none() {
    let samples = samples();
    assert!(samples.len() > 150, "{} samples", samples.len());
    let mut missing = Vec::new();
    for (expected, message) in &samples {
        match parse_message(message.as_bytes()) {
            Some(event) => assert_eq!(&event.addr.to_string(), expected, "{message}"),
            None if expected == "none" => {}
            None if NOT_EVENTS
                .iter()
                .any(|(start, _)| message.starts_with(start)) => {}
            None => missing.push(message.clone()),
        }
    }
    assert!(
        missing.is_empty(),
        "not recognised:\n{}",
        missing.join("\n")
    );
}

#[test]
fn lines_naming_no_client_get_their_pids_address_or_none() {
    for (expected, message) in samples().iter().filter(|(e, _)| e == "none") {
        let mut sequencer = Sequencer::new();
        let before = "Dec  7 10:00:00 h sshd[77]: Invalid user probe from 192.0.2.9 port 9";
        sequencer.resolve(classify_line(before.as_bytes(), 2026));
        let line = format!("Dec  7 10:00:01 h sshd[77]: {message}");
        if let Parsed::Event(event) = sequencer.resolve(classify_line(line.as_bytes(), 2026)) {
            assert_eq!(
                event.addr.to_string(),
                "192.0.2.9",
                "{message} ({expected})"
            );
        }
        // Another pid's address is never taken.
        let other = format!("Dec  7 10:00:01 h sshd[78]: {message}");
        let parsed = sequencer.resolve(classify_line(other.as_bytes(), 2026));
        assert!(parsed.event().is_none(), "{message}");
    }
}
