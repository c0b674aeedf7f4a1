//! Abuse reports through a real MTA (Debian's exim4, local delivery only,
//! into an mbox this test parses as email), with abuse contacts from a
//! whois server on loopback and offenders fed to a real `guardctl daemon`
//! through the sshd log it follows:
//!
//! - `report ADDR --send` delivers the report and `report contacts` counts
//!   it; `--dry-run`, a refused recipient and a missing MTA send and record
//!   nothing;
//! - a contact whose source attacks again after the grace is judged
//!   unresponsive and, after `give_up_after` reports, is no longer mailed
//!   unless `--force`;
//! - `report auto` with a thousand offenders behind one contact sends one
//!   email of at most 50 sources, each with only its own lines, and the
//!   daily cap holds across passes and the daemon's own reporter.

use authguard_e2e::abuse::{Mta, REFUSED_DOMAIN, WhoisServer, ripe_reply};
use authguard_e2e::*;
use mailparse::{MailHeaderMap, ParsedMail};
use std::io::Write as _;
use std::path::PathBuf;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Who the registry names for each test network.
fn registry(address: &str) -> String {
    let contact = if address.starts_with("203.0.113.") {
        "abuse@isp-one.example"
    } else if address.starts_with("198.51.100.") {
        "abuse@isp-two.example"
    } else if address.starts_with("100.") {
        "abuse@big.example"
    } else if address.starts_with("192.0.2.") {
        "abuse@xarf.example"
    } else {
        return "% No abuse contact registered\n".into();
    };
    ripe_reply(contact)
}

/// The sshd log the daemon follows: lines in `journalctl -o short-unix`
/// framing, stamped now.
struct SshdLogFile(PathBuf);

impl SshdLogFile {
    fn failures(&self, address: &str, user: &str, count: usize) -> String {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .expect("clock")
            .as_secs();
        (0..count)
            .map(|i| {
                format!(
                    "{now}.000000 web1 sshd[{}]: Failed password for invalid user {user} from {address} port {} ssh2\n",
                    4000 + i,
                    40000 + i
                )
            })
            .collect()
    }

    fn append(&self, text: &str) {
        let mut f = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.0)
            .expect("open the sshd log");
        f.write_all(text.as_bytes()).expect("write the sshd log");
    }
}

/// A guard whose daemon follows `auth.log` (the log counts password
/// failures: no PAM module here), mailing through `mta`, asking `whois`.
fn guard_with(mta: &Mta, whois: &WhoisServer, max_failures: u32, report: &[&str]) -> Guard {
    let mut config = Guard::builder()
        .max_failures(max_failures)
        .extra("[sshd_log]")
        .extra("pam_module = \"inactive\"")
        .extra("[report]")
        .extra(&format!("sendmail = \"{}\"", mta.sendmail()))
        .extra(&format!("whois_server = \"{}\"", whois.address()));
    for line in report {
        config = config.extra(line);
    }
    let guard = config.start();
    let log = guard.dir().join("auth.log");
    guard.set_config(|c| {
        let at = c
            .extra
            .iter()
            .position(|l| l == "[sshd_log]")
            .expect("table");
        c.extra
            .insert(at + 1, format!("source = \"{}\"", log.display()));
    });
    guard
}

/// Starts the daemon and waits until it follows the log (it reads a log
/// that appears later from its first line).
fn daemon_following(guard: &Guard) -> HostDaemon {
    let daemon = HostDaemon::start(guard);
    assert!(
        wait_until(Duration::from_secs(10), || daemon
            .stderr()
            .contains("sshd log: following")),
        "the daemon does not follow the log: {}",
        daemon.stderr()
    );
    daemon
}

fn bans(guard: &Guard) -> usize {
    parse_json(&guard.guardctl_ok(&["list", "--json"]))
        .as_array()
        .map_or(0, Vec::len)
}

fn contacts(guard: &Guard) -> Vec<Value> {
    parse_json(&guard.guardctl_ok(&["report", "contacts", "--json"]))
        .as_array()
        .cloned()
        .expect("a JSON array")
}

fn contact<'a>(list: &'a [Value], name: &str) -> Option<&'a Value> {
    list.iter().find(|c| c["contact"] == name)
}

fn parse(raw: &str) -> ParsedMail<'_> {
    mailparse::parse_mail(raw.as_bytes()).expect("the delivered message parses as email")
}

fn header(mail: &ParsedMail<'_>, name: &str) -> String {
    mail.headers.get_first_value(name).unwrap_or_default()
}

fn stderr(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn stdout(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn a_sent_report_arrives_as_email_and_its_contact_is_judged() {
    if !require_root() {
        return;
    }
    let mta = Mta::start();
    let whois = WhoisServer::start(registry);
    let guard = guard_with(
        &mta,
        &whois,
        3,
        &[
            "grace = \"1s\"",
            "give_up_after = 1",
            "unresponsive = \"subnet\"",
            "unresponsive_subnet_offenders = 2",
        ],
    );
    guard.set_config(|c| c.ban_time = "2s".into());
    let log = SshdLogFile(guard.dir().join("auth.log"));
    let _daemon = daemon_following(&guard);
    log.append(&log.failures("203.0.113.7", "admin", 3));
    log.append(&log.failures("198.51.100.9", "oracle", 3));
    assert!(
        wait_until(Duration::from_secs(10), || guard
            .log_attempts("198.51.100.9")
            >= 3
            && guard.log_attempts("203.0.113.7") >= 3),
        "the daemon did not record the offenders: {}",
        guard.diag()
    );

    // --dry-run prints the message and sends and records nothing.
    let dry = guard.guardctl_ok(&["report", "203.0.113.7", "--send", "--dry-run"]);
    assert!(
        stdout(&dry).contains("To: abuse@isp-one.example")
            && stdout(&dry).contains("Message-ID: <"),
        "{}",
        describe_output(&dry)
    );
    assert!(stderr(&dry).contains("nothing was sent or recorded"));
    // A refused recipient: the MTA's exit status decides; nothing recorded.
    let to = format!("abuse@{REFUSED_DOMAIN}");
    let refused = guard.guardctl(&["report", "203.0.113.7", "--send", "--to", &to]);
    assert_eq!(
        refused.status.code(),
        Some(1),
        "{}",
        describe_output(&refused)
    );
    assert!(
        stderr(&refused).contains("was not sent"),
        "{}",
        describe_output(&refused)
    );
    // A missing MTA names itself.
    let working = mta.sendmail();
    guard.set_config(|c| {
        c.extra
            .iter_mut()
            .filter(|l| l.starts_with("sendmail = "))
            .for_each(|l| *l = "sendmail = \"/nonexistent/sendmail -t -oi\"".into());
    });
    let missing = guard.guardctl(&["report", "203.0.113.7", "--send"]);
    assert_eq!(
        missing.status.code(),
        Some(1),
        "{}",
        describe_output(&missing)
    );
    assert!(
        stderr(&missing).contains("/nonexistent/sendmail"),
        "{}",
        describe_output(&missing)
    );
    guard.set_config(|c| {
        c.extra
            .iter_mut()
            .filter(|l| l.starts_with("sendmail = "))
            .for_each(|l| *l = format!("sendmail = \"{working}\""));
    });
    assert!(contacts(&guard).is_empty(), "{:?}", contacts(&guard));
    assert!(
        mta.delivered_to("isp-one.example").is_empty(),
        "a dry run or a failed send delivered mail"
    );

    // --send: delivered, and the mail is the one recorded.
    let sent = guard.guardctl_ok(&["report", "203.0.113.7", "--send"]);
    let said = stdout(&sent);
    let id = said
        .split("Message-ID <")
        .nth(1)
        .and_then(|rest| rest.split('>').next())
        .unwrap_or_else(|| panic!("no Message-ID in {said:?}"))
        .to_owned();
    let delivered = mta.wait_for("isp-one.example", 1);
    assert_eq!(delivered.len(), 1, "{}", mta.log());
    println!("--- the report as delivered ---\n{}", delivered[0]);
    let mail = parse(&delivered[0]);
    assert_eq!(header(&mail, "Message-ID"), format!("<{id}>"));
    assert_eq!(header(&mail, "To"), "abuse@isp-one.example");
    assert!(header(&mail, "Subject").starts_with("SSH login attacks from 203.0.113.7 (3 attempts"));
    assert_eq!(mail.ctype.mimetype, "text/plain");
    let body = mail.get_body().expect("a text body");
    assert!(
        body.contains("Failed password for invalid user admin from 203.0.113.7 port 40000 ssh2"),
        "{body}"
    );
    assert!(
        !body.contains("198.51.100.9") && !body.contains("oracle"),
        "another source's evidence: {body}"
    );
    let one = contacts(&guard);
    let isp_one = contact(&one, "abuse@isp-one.example").expect("the contact is listed");
    assert_eq!(
        (&isp_one["reports"], &isp_one["sources_reported"]),
        (&Value::from(1), &Value::from(1)),
        "{one:?}"
    );

    // The other source's contact; then that source attacks again after
    // the grace, the first does not.
    guard.guardctl_ok(&["report", "198.51.100.9", "--send"]);
    assert_eq!(mta.wait_for("isp-two.example", 1).len(), 1, "{}", mta.log());
    std::thread::sleep(Duration::from_secs(3));
    log.append(&log.failures("198.51.100.9", "oracle", 1));
    let judged = |list: &[Value], who: &str, verdict: &str| {
        contact(list, who).is_some_and(|c| c["verdict"] == verdict)
    };
    assert!(
        wait_until(Duration::from_secs(15), || {
            let list = contacts(&guard);
            judged(&list, "abuse@isp-one.example", "responsive")
                && judged(&list, "abuse@isp-two.example", "unresponsive")
        }),
        "{:#?}\n{}",
        contacts(&guard),
        guard.diag()
    );
    let list = contacts(&guard);
    let isp_two = contact(&list, "abuse@isp-two.example").expect("listed");
    assert_eq!(isp_two["sources_back"], 1, "{isp_two}");
    assert_eq!(isp_two["given_up"], true, "{isp_two}");
    assert_eq!(
        contact(&list, "abuse@isp-one.example").expect("listed")["given_up"],
        false
    );
    println!(
        "--- guardctl report contacts ---\n{}",
        stdout(&guard.guardctl_ok(&["report", "contacts"]))
    );

    // Given up: --send refuses and says why; --force sends all the same.
    let refused = guard.guardctl(&["report", "198.51.100.9", "--send"]);
    assert_eq!(
        refused.status.code(),
        Some(1),
        "{}",
        describe_output(&refused)
    );
    assert!(
        stderr(&refused).contains("unresponsive") && stderr(&refused).contains("--force"),
        "{}",
        describe_output(&refused)
    );
    guard.guardctl_ok(&["report", "198.51.100.9", "--send", "--force"]);
    assert_eq!(mta.wait_for("isp-two.example", 2).len(), 2, "{}", mta.log());

    a_given_up_contacts_subnet_is_banned_early(&guard, &log);
}

/// `unresponsive = "subnet"`: the given-up contact's subnet is banned at
/// its second offender; the responsive one's is not (the subnet rule is
/// otherwise off).
fn a_given_up_contacts_subnet_is_banned_early(guard: &Guard, log: &SshdLogFile) {
    let list = contacts(guard);
    let stricter = |who: &str| contact(&list, who).expect("listed")["stricter_subnets"].clone();
    assert_eq!(
        stricter("abuse@isp-two.example"),
        serde_json::json!(["198.51.100.0/24"])
    );
    assert_eq!(stricter("abuse@isp-one.example"), serde_json::json!([]));
    log.append(&log.failures("198.51.100.20", "oracle", 3));
    log.append(&log.failures("203.0.113.20", "admin", 3));
    // Bans last 2 s here: every ban on record.
    let listed = |source: &str| {
        parse_json(&guard.guardctl_ok(&["list", "--all", "--json"]))
            .as_array()
            .into_iter()
            .flatten()
            .find(|b| b["address"] == source)
            .cloned()
    };
    assert!(
        wait_until(Duration::from_secs(10), || listed("198.51.100.0/24")
            .is_some()
            && listed("203.0.113.20").is_some()),
        "no subnet ban for the unresponsive contact's network: {}",
        guard.diag()
    );
    let subnet = listed("198.51.100.0/24").expect("banned");
    assert_eq!(subnet["origin"], "subnet", "{subnet}");
    assert!(
        subnet["reason"]
            .as_str()
            .is_some_and(|r| r.contains("abuse@isp-two.example")),
        "{subnet}"
    );
    assert!(listed("203.0.113.0/24").is_none(), "{}", guard.diag());
}

/// The addresses of a thousand offenders behind one abuse contact.
fn thousand() -> Vec<String> {
    (0..1000)
        .map(|i| format!("100.64.{}.{}", i / 250, i % 250 + 1))
        .collect()
}

/// The `=== N. ADDR ===` sections of a batch report: address and text.
fn sections(body: &str) -> Vec<(String, String)> {
    body.split("\n=== ")
        .skip(1)
        .map(|s| {
            let (title, text) = s.split_once(" ===\n").expect("a section title");
            let address = title.split_once(". ").expect("N. ADDR").1.to_owned();
            (address, text.to_owned())
        })
        .collect()
}

#[test]
fn a_thousand_offenders_behind_one_contact_get_one_email() {
    if !require_root() {
        return;
    }
    let mta = Mta::start();
    let whois = WhoisServer::start(registry);
    let guard = guard_with(
        &mta,
        &whois,
        2,
        &["max_per_day = 2", "xarf = [\"@xarf.example\"]"],
    );
    guard.set_config(|c| c.ban_time = "1h".into());
    let log = SshdLogFile(guard.dir().join("auth.log"));
    let mut daemon = daemon_following(&guard);
    let mut lines = String::new();
    for (i, address) in thousand().iter().enumerate() {
        lines.push_str(&log.failures(address, &format!("user{i}"), 2));
    }
    for n in 1..=3 {
        lines.push_str(&log.failures(&format!("192.0.2.{n}"), "test", 2));
    }
    log.append(&lines);
    assert!(
        wait_until(Duration::from_secs(60), || bans(&guard) >= 1003),
        "{} bans of 1003: {}",
        bans(&guard),
        daemon.stderr()
    );
    daemon.stop();
    // Banned, then allowed: never reported. A manual ban has no evidence of its own.
    guard.guardctl_ok(&["ban", "100.127.0.1"]);
    guard.set_config(|c| {
        c.allow.push("192.0.2.3/32".into());
        c.extra.push("auto = [\"ban\"]".into());
    });

    let pass = parse_json(&guard.guardctl_ok(&["report", "auto", "--json"]));
    let sent = pass["sent"].as_array().expect("sent");
    let skipped = pass["skipped"].as_array().expect("skipped");
    let why = |what: &str| -> Vec<String> {
        skipped
            .iter()
            .filter(|s| s["what"] == what)
            .map(|s| s["why"].as_str().unwrap_or_default().to_owned())
            .collect()
    };
    assert_eq!(sent.len(), 2, "{pass:#}");
    assert_eq!(sent[0]["to"], "abuse@big.example", "{pass:#}");
    assert_eq!(sent[0]["sources"], 50, "{pass:#}");
    assert!(
        why("abuse@big.example")
            .iter()
            .any(|w| w.contains("950 more sources wait")),
        "{pass:#}"
    );
    assert_eq!(sent[1]["to"], "abuse@xarf.example", "{pass:#}");
    assert!(
        why("abuse@xarf.example")
            .iter()
            .any(|w| w.contains("max_per_day")),
        "{pass:#}"
    );
    assert!(
        why("192.0.2.3").iter().any(|w| w.contains("allowed")),
        "{pass:#}"
    );

    // The big contact's one email: 50 sections, each with its own lines only.
    let big = mta.wait_for("big.example", 1);
    assert_eq!(big.len(), 1, "{}", mta.log());
    let mail = parse(&big[0]);
    assert_eq!(header(&mail, "Auto-Submitted"), "auto-generated");
    assert_eq!(
        header(&mail, "Message-ID"),
        format!("<{}>", sent[0]["message_id"].as_str().unwrap_or_default())
    );
    let body = mail.get_body().expect("a text body");
    let parts = sections(&body);
    assert_eq!(parts.len(), 50, "{body}");
    for (address, text) in &parts {
        let quoted: Vec<&str> = text
            .lines()
            .filter(|l| l.contains("Failed password"))
            .collect();
        assert!(!quoted.is_empty(), "no evidence for {address}: {text}");
        let own = format!(" from {address} port ");
        assert!(
            quoted.iter().all(|l| l.contains(&own)),
            "{address}'s section quotes another source: {quoted:#?}"
        );
    }
    assert!(!body.contains("100.127.0.1"), "a manual ban was reported");
    // X-ARF: one message per source, machine-readable part included.
    let xarf = mta.wait_for("xarf.example", 1);
    assert_eq!(xarf.len(), 1, "{}", mta.log());
    let mail = parse(&xarf[0]);
    assert_eq!(header(&mail, "X-XARF"), "PLAIN");
    assert_eq!(mail.subparts.len(), 3, "{}", xarf[0]);
    let report = mail.subparts[1].get_body().expect("the report part");
    assert!(report.contains("Report-Type: login-attack"), "{report}");

    // The cap holds: a second pass and the daemon's reporter send nothing.
    let again = parse_json(&guard.guardctl_ok(&["report", "auto", "--json"]));
    assert_eq!(again["sent"], serde_json::json!([]), "{again:#}");
    let logged = guard.log_len();
    let _daemon = HostDaemon::start(&guard);
    assert!(
        guard.wait_for_log(
            "report: not reporting abuse@big.example",
            Duration::from_secs(30)
        ),
        "the daemon's reporter did not run: {}",
        guard.diag()
    );
    assert!(guard.log_len() > logged);
    assert_eq!(mta.messages().len(), 2, "{}", mta.log());
    assert_eq!(mta.delivered_to(REFUSED_DOMAIN).len(), 0);
}
