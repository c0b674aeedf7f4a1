//! Abuse contacts from whois (RFC 3912): ask `[report] whois_server`
//! (IANA by default), follow its referral to the registry that holds the
//! address, and read the abuse mailbox out of that registry's reply. Each
//! of the five registries answers in its own shape:
//!
//! - RIPE, APNIC and AFRINIC: `% Abuse contact for '…' is 'abuse@…'`, and
//!   `abuse-mailbox:` in the IRT or role object;
//! - ARIN: `OrgAbuseEmail:` (and `ReferralServer: whois://…` for space it
//!   handed to another registry);
//! - LACNIC: `abuse-c: HANDLE`, and `e-mail:` in the `nic-hdl: HANDLE` block;
//! - IANA: `refer:` (or `whois:`) names the registry to ask.

use authguard_core::config::WhoisServer;
use std::io::{Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::time::Duration;

/// The longest reply read (registries answer in a few kilobytes).
const MAX_REPLY: u64 = 1 << 20;
/// Referrals followed at most (IANA → ARIN → another registry is two).
const MAX_HOPS: usize = 4;

/// What whois said of an address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Answer {
    /// The abuse mailbox, if the registry names one.
    pub contact: Option<String>,
    /// The server that answered last (`host:port`).
    pub server: String,
}

/// Asks `first` about `address`, following referrals; each exchange may
/// take `timeout` to connect and to read.
pub fn lookup(first: &WhoisServer, address: &str, timeout: Duration) -> Result<Answer, String> {
    let mut server = first.clone();
    let mut contact = None;
    for _ in 0..MAX_HOPS {
        let reply = query(&server, address, timeout)?;
        contact = contact_in(&reply).or(contact);
        match referral(&reply) {
            Some(next) if next != server => server = next,
            _ => break,
        }
    }
    Ok(Answer {
        contact,
        server: server.to_string(),
    })
}

/// One whois exchange: the query line, then everything until the server closes.
fn query(server: &WhoisServer, address: &str, timeout: Duration) -> Result<String, String> {
    let name = server.to_string();
    let addrs = (server.host.as_str(), server.port)
        .to_socket_addrs()
        .map_err(|e| format!("whois server {name}: {e}"))?;
    let mut last = format!("whois server {name}: no address");
    for addr in addrs {
        match TcpStream::connect_timeout(&addr, timeout) {
            Ok(mut stream) => {
                stream
                    .set_read_timeout(Some(timeout))
                    .and_then(|()| stream.set_write_timeout(Some(timeout)))
                    .and_then(|()| stream.write_all(format!("{address}\r\n").as_bytes()))
                    .map_err(|e| format!("whois server {name}: {e}"))?;
                let mut reply = Vec::new();
                stream
                    .take(MAX_REPLY)
                    .read_to_end(&mut reply)
                    .map_err(|e| format!("whois server {name} did not answer: {e}"))?;
                return Ok(String::from_utf8_lossy(&reply).into_owned());
            }
            Err(e) => last = format!("whois server {name}: {e}"),
        }
    }
    Err(last)
}

/// The server a reply refers the question to, if any.
fn referral(reply: &str) -> Option<WhoisServer> {
    reply.lines().find_map(|line| {
        let (key, value) = line.split_once(':')?;
        let value = value.trim();
        match key.trim().to_ascii_lowercase().as_str() {
            "refer" | "whois" => WhoisServer::parse(value).ok(),
            // ARIN: `whois://whois.ripe.net` or `whois://rwhois.example:4321`;
            // rwhois:// is another protocol and is not followed.
            "referralserver" => {
                let rest = value.strip_prefix("whois://")?;
                WhoisServer::parse(rest.trim_end_matches('/')).ok()
            }
            _ => None,
        }
    })
}

/// The abuse mailbox a registry's reply names, if any.
pub fn contact_in(reply: &str) -> Option<String> {
    let mailbox = |v: &str| {
        let v = v.trim().trim_matches('\'');
        (v.contains('@') && !v.contains(char::is_whitespace)).then(|| v.to_owned())
    };
    for line in reply.lines() {
        let lower = line.to_ascii_lowercase();
        if lower.contains("abuse contact for") {
            // `% Abuse contact for '193.0.0.0 - 193.0.7.255' is 'abuse@ripe.net'`
            if let Some(found) = line.rsplit('\'').nth(1).and_then(mailbox) {
                return Some(found);
            }
        }
        if let Some((key, value)) = line.split_once(':') {
            let key = key.trim().to_ascii_lowercase();
            if matches!(
                key.as_str(),
                "abuse-mailbox" | "orgabuseemail" | "rabuseemail"
            ) && let Some(found) = mailbox(value)
            {
                return Some(found);
            }
        }
    }
    abuse_handle_mail(reply)
}

/// LACNIC's shape: the `abuse-c:` handle's `nic-hdl` block and its `e-mail:`.
fn abuse_handle_mail(reply: &str) -> Option<String> {
    let field = |line: &str, name: &str| {
        line.split_once(':')
            .filter(|(k, _)| k.trim().eq_ignore_ascii_case(name))
            .map(|(_, v)| v.trim().to_owned())
    };
    let handle = reply.lines().find_map(|l| field(l, "abuse-c"))?;
    let mut in_block = false;
    for line in reply.lines() {
        if line.trim().is_empty() {
            in_block = false;
        } else if let Some(h) = field(line, "nic-hdl").or_else(|| field(line, "nic-hdl-br")) {
            in_block = h.eq_ignore_ascii_case(&handle);
        } else if in_block
            && let Some(mail) = field(line, "e-mail").or_else(|| field(line, "abuse-mailbox"))
            && mail.contains('@')
        {
            return Some(mail);
        }
    }
    None
}

#[cfg(test)]
mod tests;
