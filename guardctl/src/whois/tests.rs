//! Replies in each registry's shape (abridged from real answers), and a
//! whois server on loopback that refers the question on, as IANA does.

use super::*;
use std::net::TcpListener;

const IANA: &str = "% IANA WHOIS server
% for more information on IANA, visit http://www.iana.org

refer:        whois.ripe.net

inetnum:      193.0.0.0 - 193.255.255.255
organisation: RIPE NCC
status:       ALLOCATED

whois:        whois.ripe.net
";

const RIPE: &str = "% This is the RIPE Database query service.
% Information related to '193.0.0.0 - 193.0.7.255'

% Abuse contact for '193.0.0.0 - 193.0.7.255' is 'abuse@ripe.net'

inetnum:        193.0.0.0 - 193.0.7.255
netname:        RIPE-NCC
country:        NL
admin-c:        BRD-RIPE
source:         RIPE
";

const ARIN: &str = "NetRange:       8.8.8.0 - 8.8.8.255
CIDR:           8.8.8.0/24
NetName:        GOGL
Organization:   Google LLC (GOGL)

OrgAbuseHandle: ABUSE5250-ARIN
OrgAbuseName:   Abuse
OrgAbusePhone:  +1-650-253-0000
OrgAbuseEmail:  network-abuse@google.com
OrgAbuseRef:    https://rdap.arin.net/registry/entity/ABUSE5250-ARIN
";

const ARIN_REFERRAL: &str = "NetRange:       193.0.0.0 - 193.255.255.255
NetName:        RIPE-CBLK2
OrgName:        RIPE Network Coordination Centre
ReferralServer:  whois://whois.ripe.net
";

const APNIC: &str = "% [whois.apnic.net]
% Information related to '1.1.1.0 - 1.1.1.255'

% Abuse contact for '1.1.1.0 - 1.1.1.255' is 'helpdesk@apnic.net'

inetnum:        1.1.1.0 - 1.1.1.255
netname:        APNIC-LABS
irt:            IRT-APNICRANDNET-AU

irt:            IRT-APNICRANDNET-AU
e-mail:         helpdesk@apnic.net
abuse-mailbox:  helpdesk@apnic.net
";

const LACNIC: &str = "% IP Client: 127.0.0.1

inetnum:     200.7.84.0/23
status:      allocated
owner:       Latin American and Caribbean IP address Regional Registry
owner-c:     LAC
tech-c:      LAC
abuse-c:     ABL
nserver:     a.example

nic-hdl:     LAC
person:      LACNIC Hostmaster
e-mail:      hostmaster@lacnic.net

nic-hdl:     ABL
person:      LACNIC Abuse
e-mail:      abuse@lacnic.net
";

const AFRINIC: &str = "% This is the AfriNIC Whois server.

inetnum:        196.216.2.0 - 196.216.3.255
netname:        AFRINIC-Ops
abuse-c:        GENI1-AFRINIC

role:           AFRINIC General Contact
nic-hdl:        GENI1-AFRINIC
abuse-mailbox:  abuse@afrinic.net
";

const NONE: &str = "% No abuse contact registered for 198.51.100.0 - 198.51.100.255

inetnum:        198.51.100.0 - 198.51.100.255
netname:        TEST-NET-2
";

#[test]
fn every_registrys_shape_gives_its_abuse_mailbox() {
    assert_eq!(contact_in(RIPE).as_deref(), Some("abuse@ripe.net"));
    assert_eq!(
        contact_in(ARIN).as_deref(),
        Some("network-abuse@google.com")
    );
    assert_eq!(contact_in(APNIC).as_deref(), Some("helpdesk@apnic.net"));
    assert_eq!(contact_in(LACNIC).as_deref(), Some("abuse@lacnic.net"));
    assert_eq!(contact_in(AFRINIC).as_deref(), Some("abuse@afrinic.net"));
    assert_eq!(contact_in(NONE), None);
    assert_eq!(contact_in(IANA), None);
}

#[test]
fn referrals_name_the_next_server() {
    let ripe = WhoisServer::parse("whois.ripe.net").unwrap();
    assert_eq!(referral(IANA), Some(ripe.clone()));
    assert_eq!(referral(ARIN_REFERRAL), Some(ripe));
    assert_eq!(
        referral("ReferralServer: rwhois://rwhois.example.net:4321\n"),
        None,
        "rwhois is another protocol"
    );
    assert_eq!(referral(RIPE), None);
}

/// A whois server on loopback answering each question with `reply(n)`,
/// the n-th connection's reply; returns its address and the questions.
fn serve(replies: Vec<String>) -> (WhoisServer, std::sync::mpsc::Receiver<String>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for reply in replies {
            let (mut conn, _) = listener.accept().unwrap();
            let mut line = String::new();
            let mut byte = [0u8; 1];
            while conn.read(&mut byte).unwrap_or(0) == 1 && byte[0] != b'\n' {
                line.push(char::from(byte[0]));
            }
            let _ = tx.send(line.trim_end().to_owned());
            let _ = conn.write_all(reply.as_bytes());
        }
    });
    let server = WhoisServer::parse(&format!("127.0.0.1:{port}")).unwrap();
    (server, rx)
}

#[test]
fn a_lookup_follows_the_referral_to_the_registry_that_names_the_contact() {
    // Build a chain of three servers, each referring to the next.
    let (ripe, ripe_q) = serve(vec![RIPE.to_owned()]);
    let (arin, arin_q) = serve(vec![ARIN_REFERRAL.replace(
        "whois://whois.ripe.net",
        &format!("whois://127.0.0.1:{}", ripe.port),
    )]);
    let (iana, iana_q) =
        serve(vec![IANA.replace(
            "whois.ripe.net",
            &format!("127.0.0.1:{}", arin.port),
        )]);
    let answer = lookup(&iana, "193.0.6.139", Duration::from_secs(5)).unwrap();
    assert_eq!(answer.contact.as_deref(), Some("abuse@ripe.net"));
    assert_eq!(answer.server, ripe.to_string());
    for q in [iana_q, arin_q, ripe_q] {
        assert_eq!(
            q.recv_timeout(Duration::from_secs(1)).unwrap(),
            "193.0.6.139"
        );
    }
}

#[test]
fn a_server_that_is_not_there_is_a_clear_error() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    drop(listener);
    let server = WhoisServer::parse(&format!("127.0.0.1:{port}")).unwrap();
    let err = lookup(&server, "192.0.2.1", Duration::from_secs(2)).unwrap_err();
    assert!(
        err.contains(&format!("whois server 127.0.0.1:{port}")),
        "{err}"
    );
}
