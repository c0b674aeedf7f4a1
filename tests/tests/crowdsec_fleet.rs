//! The fleet with the real engine: Debian's CrowdSec LAPI
//! (`tests/src/crowdsec.rs`) and real `guardctl daemon`s following it as
//! bouncers and pushing to it as machines. What an admin checks: a `cscli
//! decisions add` is refused at PAM within seconds, shown by `list --origin
//! crowdsec` with its scenario; a deletion lifts it; an allowed network and
//! a too-wide range are never enforced; with the LAPI down the guard goes
//! on, and on its return a full pull catches up; a ban on host A is refused
//! on host B, its unban lifts it there, and a ban made while the LAPI is
//! down arrives once it is back, once; two servers in their own network
//! namespaces (sshd, store, daemon, nftables each) share a ban made inline
//! on one; `status` shows the link, never the key.

use authguard_e2e::crowdsec::{Lapi, free_local_addr};
use authguard_e2e::*;
use std::os::unix::fs::PermissionsExt;
use std::process::Command;
use std::time::Duration;

/// The pull interval the tests use; a decision must arrive within a few.
const PULL: &str = "1s";
const ARRIVE: Duration = Duration::from_secs(8);

/// `text` in `lapi`'s directory as `name`, mode 0600 (a credential file).
fn secret(lapi: &Lapi, name: &str, text: &str) -> std::path::PathBuf {
    let path = lapi.dir().join(name);
    std::fs::write(&path, text).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
    path
}

/// A new bouncer `name`'s key, in a credential file.
fn bouncer_key(lapi: &Lapi, name: &str) -> std::path::PathBuf {
    secret(lapi, &format!("{name}.key"), &lapi.add_bouncer(name))
}

/// A guard following `lapi` as bouncer `name`, its key in a 0600 file.
fn fleet_guard(lapi: &Lapi, name: &str) -> Guard {
    let key_file = bouncer_key(lapi, name);
    Guard::builder()
        .allow(&["127.0.0.1", "192.0.2.0/24"])
        .extra("[crowdsec]")
        .extra(&format!("url = \"{}\"", lapi.url()))
        .extra(&format!("api_key_file = \"{}\"", key_file.display()))
        .extra(&format!("pull_interval = \"{PULL}\""))
        .start()
}

fn crowdsec_ban(guard: &Guard, address: &str) -> Option<Value> {
    guard.listed(address).filter(|b| b["origin"] == "crowdsec")
}

fn daemon_log(guard: &Guard) -> String {
    std::fs::read_to_string(guard.dir().join("daemon.err")).unwrap_or_default()
}

#[test]
fn a_fleet_decision_is_refused_inline_and_its_deletion_lifts_it() {
    if !require_root() {
        return;
    }
    let Some(lapi) = Lapi::start(free_local_addr()) else {
        return;
    };
    let guard = fleet_guard(&lapi, "authguard-pull");
    let _daemon = HostDaemon::start(&guard);
    let pam = PamService::permit(&guard);
    assert!(
        pam.run("203.0.113.7", "root", &["authenticate"])
            .status
            .success(),
        "clean before"
    );

    lapi.decisions_add_ip("203.0.113.7", "2h");
    lapi.decisions_add_range("198.51.100.7/24", "1h");
    assert!(
        wait_until(ARRIVE, || crowdsec_ban(&guard, "203.0.113.7").is_some()
            && crowdsec_ban(&guard, "198.51.100.0/24").is_some()),
        "pulled bans never listed: {:?}\n{}\n{}",
        guard.list(),
        daemon_log(&guard),
        lapi.diag()
    );
    let ban = crowdsec_ban(&guard, "203.0.113.7").unwrap();
    assert_eq!(ban["decision_origin"], "cscli", "{ban}");
    assert!(
        ban["scenario"].as_str().unwrap().contains("manual"),
        "{ban}"
    );
    let expires = ban["expires"].as_str().unwrap().to_owned();
    assert!(!expires.is_empty(), "the decision's end is kept: {ban}");

    // Refused inline, from the local store: the PAM module talks to no one.
    let refused = pam.run("203.0.113.7", "root", &["authenticate"]);
    assert!(
        !refused.status.success(),
        "a fleet ban lets a password through: {}",
        refused.describe()
    );
    assert!(
        !pam.run("198.51.100.200", "root", &["authenticate"])
            .status
            .success(),
        "the pulled range"
    );
    assert_eq!(
        pam.reached_count("203.0.113.7"),
        1,
        "only the attempt before the ban reached the stack"
    );

    // `list --origin crowdsec` shows exactly the pulled ones.
    let only: Vec<Value> = serde_json::from_str(&String::from_utf8_lossy(
        &guard
            .guardctl_ok(&["list", "--origin", "crowdsec", "--json"])
            .stdout,
    ))
    .unwrap();
    assert_eq!(only.len(), 2, "{only:?}");
    let bad = guard.guardctl(&["list", "--origin", "elsewhere"]);
    assert_eq!(bad.status.code(), Some(2), "an unknown origin is bad input");

    // Deleted in the LAPI: lifted here.
    lapi.decisions_delete_ip("203.0.113.7");
    assert!(
        wait_until(ARRIVE, || crowdsec_ban(&guard, "203.0.113.7").is_none()),
        "a deleted decision still bans: {:?}",
        guard.list()
    );
    assert!(
        pam.run("203.0.113.7", "root", &["authenticate"])
            .status
            .success(),
        "lifted"
    );

    // status shows the link, and never the key.
    let status = guard.guardctl_ok(&["status", "--json"]);
    let json: Value = serde_json::from_slice(&status.stdout).unwrap();
    assert_eq!(json["crowdsec"]["reachable"], true, "{json}");
    assert_eq!(json["crowdsec"]["held"], 1, "{json}");
    let key = std::fs::read_to_string(lapi.dir().join("authguard-pull.key")).unwrap();
    let text = guard.guardctl_ok(&["status"]);
    for out in [&status.stdout, &text.stdout, &text.stderr] {
        assert!(
            !String::from_utf8_lossy(out).contains(key.trim()),
            "the API key is printed"
        );
    }
    assert!(
        !daemon_log(&guard).contains(key.trim()),
        "the API key is logged"
    );
}

#[test]
fn the_fleet_never_locks_the_admin_out_and_survives_an_outage() {
    if !require_root() {
        return;
    }
    let Some(mut lapi) = Lapi::start(free_local_addr()) else {
        return;
    };
    let guard = fleet_guard(&lapi, "authguard-safe");
    let _daemon = HostDaemon::start(&guard);
    let pam = PamService::permit(&guard);

    lapi.decisions_add_ip("192.0.2.9", "1h"); // inside the allow list
    lapi.decisions_add_range("10.0.0.0/8", "1h"); // wider than /16
    lapi.decisions_add_ip("203.0.113.30", "1h");
    assert!(
        wait_until(ARRIVE, || crowdsec_ban(&guard, "203.0.113.30").is_some()),
        "{}",
        daemon_log(&guard)
    );
    assert!(
        crowdsec_ban(&guard, "192.0.2.9").is_none(),
        "an allowed address was banned"
    );
    assert!(
        crowdsec_ban(&guard, "10.0.0.0/8").is_none(),
        "a /8 was banned"
    );
    assert!(
        pam.run("192.0.2.9", "root", &["authenticate"])
            .status
            .success()
    );
    assert!(
        pam.run("10.1.2.3", "root", &["authenticate"])
            .status
            .success()
    );
    let log = daemon_log(&guard);
    assert!(log.contains("allowed network"), "the skip is logged: {log}");
    assert!(log.contains("too wide"), "the skip is logged: {log}");
    let check = String::from_utf8_lossy(&guard.guardctl(&["check"]).stdout).into_owned();
    assert!(
        check.contains("reachable")
            && check.contains("allowed networks won over 1 pulled decision"),
        "check shows the link and the allowed network that won: {check}"
    );

    // The LAPI goes away: the guard goes on deciding from its store.
    lapi.stop();
    assert!(
        wait_until(ARRIVE, || {
            let s: Value =
                serde_json::from_slice(&guard.guardctl_ok(&["status", "--json"]).stdout).unwrap();
            s["crowdsec"]["reachable"] == false
        }),
        "status never showed the outage"
    );
    assert!(
        !pam.run("203.0.113.30", "root", &["authenticate"])
            .status
            .success(),
        "held during the outage"
    );
    assert!(
        pam.run("203.0.113.31", "root", &["authenticate"])
            .status
            .success(),
        "others still admitted"
    );

    // Back, with changes made while this host could not listen: a full
    // pull brings the new one and ends the deleted one.
    lapi.restart();
    lapi.decisions_delete_ip("203.0.113.30");
    lapi.decisions_add_ip("203.0.113.40", "1h");
    assert!(
        wait_until(ARRIVE, || crowdsec_ban(&guard, "203.0.113.40").is_some()
            && crowdsec_ban(&guard, "203.0.113.30").is_none()),
        "not caught up after the outage: {:?}\n{}",
        guard.list(),
        daemon_log(&guard)
    );
}

/// A guard that pulls and pushes, as machine `id` and bouncer `id`.
fn pushing_guard(lapi: &Lapi, id: &str) -> Guard {
    let password = format!("{id}-password");
    lapi.add_machine(id, &password);
    let key_file = bouncer_key(lapi, id);
    let password_file = secret(lapi, &format!("{id}.password"), &password);
    Guard::builder()
        .allow(&["127.0.0.1"])
        .max_failures(2)
        .extra("[crowdsec]")
        .extra(&format!("url = \"{}\"", lapi.url()))
        .extra(&format!("api_key_file = \"{}\"", key_file.display()))
        .extra(&format!("machine_id = \"{id}\""))
        .extra(&format!("password_file = \"{}\"", password_file.display()))
        .extra(&format!("pull_interval = \"{PULL}\""))
        .start()
}

/// Bans `ip` on `guard` the way an attacker does: wrong passwords past the limit.
fn ban_by_failures(guard: &Guard, ip: &str) {
    let pam = PamService::deny(guard);
    for _ in 0..3 {
        pam.run(ip, "root", &["authenticate"]);
    }
    assert!(
        guard.listed(ip).is_some_and(|b| b["origin"] == "pam"),
        "{ip} not banned: {:?}",
        guard.list()
    );
}

/// Active decisions in the LAPI for exactly `value`, as a bouncer asks
/// (`GET /v1/decisions?value=`; `null` is none).
fn in_lapi(lapi: &Lapi, key: &str, value: &str) -> usize {
    let reply = lapi.curl(
        "GET",
        &format!("/v1/decisions?value={value}"),
        &[&format!("X-Api-Key: {key}")],
        None,
    );
    reply.json().as_array().map_or(0, Vec::len)
}

fn outbox(guard: &Guard) -> Value {
    let s: Value =
        serde_json::from_slice(&guard.guardctl_ok(&["status", "--json"]).stdout).unwrap();
    s["crowdsec"]["outbox"].clone()
}

#[test]
fn a_ban_on_one_host_is_refused_on_the_other_and_its_unban_lifts_it() {
    if !require_root() {
        return;
    }
    let Some(mut lapi) = Lapi::start(free_local_addr()) else {
        return;
    };
    let a = pushing_guard(&lapi, "host-a");
    let b = pushing_guard(&lapi, "host-b");
    let (_da, _db) = (HostDaemon::start(&a), HostDaemon::start(&b));
    let on_b = PamService::permit(&b);

    ban_by_failures(&a, "203.0.113.60");
    assert!(
        wait_until(ARRIVE, || crowdsec_ban(&b, "203.0.113.60").is_some()),
        "host B never got host A's ban: {:?}\nA: {}\nB: {}\n{}",
        b.list(),
        daemon_log(&a),
        daemon_log(&b),
        lapi.diag()
    );
    let pulled = crowdsec_ban(&b, "203.0.113.60").unwrap();
    assert_eq!(pulled["decision_origin"], "authguard", "{pulled}");
    assert_eq!(pulled["scenario"], "authguard/ssh-bf", "{pulled}");
    assert!(
        !on_b
            .run("203.0.113.60", "root", &["authenticate"])
            .status
            .success(),
        "B lets it try a password"
    );
    assert_eq!(on_b.reached_count("203.0.113.60"), 0, "refused at PAM on B");
    // No echo: A holds its own ban once, B does not push the pulled one back.
    std::thread::sleep(Duration::from_secs(2));
    let on_a: Vec<Value> = a
        .list()
        .into_iter()
        .filter(|x| x["address"] == "203.0.113.60")
        .collect();
    assert_eq!(on_a.len(), 1, "A holds its ban twice: {on_a:?}");
    let key = lapi.add_bouncer("observer");
    assert_eq!(
        in_lapi(&lapi, &key, "203.0.113.60"),
        1,
        "one decision in the LAPI"
    );

    // "That was me": unbanned on A, lifted on B.
    a.guardctl_ok(&["unban", "203.0.113.60"]);
    assert!(
        wait_until(ARRIVE, || crowdsec_ban(&b, "203.0.113.60").is_none()),
        "A's unban never reached B: {:?}\n{}",
        b.list(),
        daemon_log(&a)
    );

    // The LAPI goes down; a ban made meanwhile waits in A's outbox and is
    // delivered, once, when it is back (the JWT of before is void then).
    lapi.stop();
    ban_by_failures(&a, "203.0.113.61");
    assert!(
        wait_until(ARRIVE, || outbox(&a) == 1),
        "the ban is not queued: {}",
        outbox(&a)
    );
    lapi.restart();
    assert!(
        wait_until(Duration::from_secs(15), || crowdsec_ban(&b, "203.0.113.61")
            .is_some()),
        "the queued ban never arrived: {}\n{}",
        daemon_log(&a),
        lapi.diag()
    );
    assert!(
        wait_until(ARRIVE, || outbox(&a) == 0),
        "outbox not emptied: {}",
        outbox(&a)
    );
    assert_eq!(in_lapi(&lapi, &key, "203.0.113.61"), 1, "delivered twice");
}

#[test]
fn a_fleet_ban_drops_new_connections_but_never_cuts_an_open_session() {
    use authguard_e2e::netns::{Fixture, SERVER_V4, SSH_PORT, WithDaemon};
    if !require_root() {
        return;
    }
    let with_lab = Fixture::lab(&[("atk1", &["203.0.113.10/24"])]);
    let listen = "127.0.0.1:48080".parse().unwrap();
    let Some(lapi) = Lapi::start_in_netns(with_lab.lab.server_ns(), listen) else {
        return;
    };
    let key_file = bouncer_key(&lapi, "authguard-lab");
    let config = Guard::builder()
        .extra("[firewall]")
        .extra("backend = \"nftables\"")
        .extra("ports = [22]")
        .extra("[crowdsec]")
        .extra(&format!("url = \"{}\"", lapi.url()))
        .extra(&format!("api_key_file = \"{}\"", key_file.display()))
        .extra(&format!("pull_interval = \"{PULL}\""));
    let WithDaemon {
        lab,
        guard,
        sshd: _sshd,
        daemon,
    } = with_lab.guard(config).sshd().daemon();
    let held = lab.hold_session("atk1", "203.0.113.10");

    lapi.decisions_add_ip("203.0.113.10", "1h");
    assert!(
        lab.wait_until_blocked("atk1", "203.0.113.10", SERVER_V4, SSH_PORT, ARRIVE)
            .is_some(),
        "the fleet's ban never dropped a new connection: {}\n{}",
        daemon.stderr(),
        lab.diag()
    );
    assert!(crowdsec_ban(&guard, "203.0.113.10").is_some());
    assert!(held.still_talks(), "the fleet's ban cut an open session");
    assert!(
        daemon
            .stderr()
            .contains("203.0.113.10 has an open session to a guarded port"),
        "the spared session is reported: {}",
        daemon.stderr()
    );
}

#[test]
fn an_https_lapi_is_pulled_with_its_ca_file_and_refused_without_it() {
    if !require_root() {
        return;
    }
    let Some(lapi) = Lapi::start_tls(free_local_addr()) else {
        return;
    };
    assert!(lapi.url().starts_with("https://"), "{}", lapi.url());
    let ca = lapi.ca_file().unwrap().to_owned();
    let key_file = bouncer_key(&lapi, "authguard-tls");
    let guard = Guard::builder()
        .extra("[crowdsec]")
        .extra(&format!("url = \"{}\"", lapi.url()))
        .extra(&format!("api_key_file = \"{}\"", key_file.display()))
        .extra(&format!("pull_interval = \"{PULL}\""))
        .start();
    // Without the CA file the LAPI's certificate is not trusted: no pull.
    let daemon = HostDaemon::start(&guard);
    lapi.decisions_add_ip("203.0.113.90", "1h");
    assert!(
        wait_until(ARRIVE, || daemon_log(&guard).contains("pull failed")),
        "an untrusted certificate was accepted: {}",
        daemon_log(&guard)
    );
    assert!(crowdsec_ban(&guard, "203.0.113.90").is_none());
    drop(daemon);
    // With it, the decision arrives.
    guard.set_config(|c| c.extra.push(format!("ca_file = \"{}\"", ca.display())));
    let _daemon = HostDaemon::start(&guard);
    assert!(
        wait_until(ARRIVE, || crowdsec_ban(&guard, "203.0.113.90").is_some()),
        "nothing pulled over https: {}\n{}",
        daemon_log(&guard),
        lapi.diag()
    );
}

#[test]
fn a_client_certificate_pulls_and_pushes_with_no_key_or_password() {
    use authguard_e2e::crowdsec::{AGENT_OU, BOUNCER_OU};
    if !require_root() {
        return;
    }
    let Some(lapi) = Lapi::start_tls(free_local_addr()) else {
        return;
    };
    let ca = lapi.ca_file().unwrap().to_owned();
    let ous = [BOUNCER_OU, AGENT_OU];
    let (old_cert, old_key) = lapi.client_certificate("web-6", &ous, true);
    let (cert, key) = lapi.client_certificate("web-7", &ous, false);
    // No key file and no password file exist: the certificate is all there is.
    let missing = lapi.dir().join("none");
    let guard = Guard::builder()
        .allow(&["127.0.0.1"])
        .max_failures(2)
        .extra("[crowdsec]")
        .extra(&format!("url = \"{}\"", lapi.url()))
        .extra(&format!("ca_file = \"{}\"", ca.display()))
        .extra(&format!("api_key_file = \"{}\"", missing.display()))
        .extra("machine_id = \"web-7\"")
        .extra(&format!("password_file = \"{}\"", missing.display()))
        .extra(&format!("pull_interval = \"{PULL}\""))
        .start();
    let use_cert = |cert: &std::path::Path, key: &std::path::Path| {
        guard.set_config(|c| {
            c.extra
                .retain(|l| !l.starts_with("cert_file") && !l.starts_with("key_file"));
            c.extra.push(format!("cert_file = \"{}\"", cert.display()));
            c.extra.push(format!("key_file = \"{}\"", key.display()));
        });
    };
    // An X.509 v1 certificate (no extensions) is refused in words, not a crash.
    use_cert(&old_cert, &old_key);
    let mut daemon = HostDaemon::start(&guard);
    assert!(
        wait_until(ARRIVE, || daemon_log(&guard)
            .contains("refused for TLS client authentication")),
        "no word on the unusable certificate: {}",
        daemon_log(&guard)
    );
    assert!(daemon.is_running(), "the daemon died");
    drop(daemon);
    use_cert(&cert, &key);
    daemon = HostDaemon::start(&guard);
    lapi.decisions_add_ip("203.0.113.91", "1h");
    assert!(
        wait_until(ARRIVE, || crowdsec_ban(&guard, "203.0.113.91").is_some()),
        "nothing pulled with the client certificate: {}\n{}",
        daemon_log(&guard),
        lapi.diag()
    );
    ban_by_failures(&guard, "203.0.113.92");
    let observer = lapi.add_bouncer("observer");
    assert!(
        wait_until(ARRIVE, || in_lapi(&lapi, &observer, "203.0.113.92") == 1),
        "the ban was not pushed with the client certificate: {}\n{}",
        daemon_log(&guard),
        lapi.diag()
    );
    assert_eq!(outbox(&guard), 0);
    // What the README tells the admin to run to see it.
    let listed = lapi.cscli_ok(&["decisions", "list", "-a", "-o", "json"]);
    assert!(
        listed.stdout.contains("203.0.113.92") && listed.stdout.contains("authguard"),
        "cscli decisions list -a does not show the pushed ban: {}",
        listed.stdout
    );
    drop(daemon);
}

/// Joins two labs' server namespaces with a veth pair: `10.99.0.1` in
/// `a`, `10.99.0.2` in `b` (the fleet's own network; the attackers see
/// neither).
fn link_servers(a: &str, b: &str) {
    let ip = |args: &[&str]| {
        let ok = Command::new("ip")
            .args(args)
            .status()
            .is_ok_and(|s| s.success());
        assert!(ok, "ip {args:?} failed");
    };
    ip(&[
        "-n", a, "link", "add", "fleet0", "type", "veth", "peer", "name", "fleet0", "netns", b,
    ]);
    ip(&["-n", a, "addr", "add", "10.99.0.1/30", "dev", "fleet0"]);
    ip(&["-n", b, "addr", "add", "10.99.0.2/30", "dev", "fleet0"]);
    ip(&["-n", a, "link", "set", "fleet0", "up"]);
    ip(&["-n", b, "link", "set", "fleet0", "up"]);
}

/// A lab server's guard: nftables on port 22, following `url` as bouncer
/// `name` (and pushing as machine `name` when `push`).
fn server_guard(
    lapi: &Lapi,
    lab: &authguard_e2e::netns::Lab,
    name: &str,
    url: &str,
    push: bool,
) -> Guard {
    let key_file = bouncer_key(lapi, name);
    let mut config = Guard::builder()
        .netns(lab.server_ns())
        .max_failures(2)
        .extra("[firewall]")
        .extra("backend = \"nftables\"")
        .extra("ports = [22]")
        .extra("[crowdsec]")
        .extra(&format!("url = \"{url}\""))
        .extra("insecure_http = true")
        .extra(&format!("api_key_file = \"{}\"", key_file.display()))
        .extra(&format!("pull_interval = \"{PULL}\""));
    if push {
        let password = format!("{name}-password");
        lapi.add_machine(name, &password);
        let file = secret(lapi, &format!("{name}.password"), &password);
        config = config
            .extra(&format!("machine_id = \"{name}\""))
            .extra(&format!("password_file = \"{}\"", file.display()));
    }
    config.start()
}

/// Two servers, each its own network namespace with sshd, store, daemon
/// and nftables, joined by a veth; the LAPI on A; the attackers' addresses
/// (`ATTACKERS`, one namespace `atk1`) seen by both.
struct TwoServers {
    lapi: Lapi,
    labs: [authguard_e2e::netns::Lab; 2],
    guards: [Guard; 2],
    daemons: [authguard_e2e::netns::Daemon; 2],
    _sshds: [Sshd; 2],
}

const ATTACKERS: &[&str] = &["203.0.113.10/24", "203.0.113.11/24", "203.0.113.12/24"];

impl TwoServers {
    /// A pushes as a machine; B too when `b_pushes`. Both pull.
    fn start(b_pushes: bool) -> Option<TwoServers> {
        use authguard_e2e::netns::{Daemon as LabDaemon, Lab};
        let labs = [
            Lab::new(&[("atk1", ATTACKERS)]),
            Lab::new(&[("atk1", ATTACKERS)]),
        ];
        link_servers(labs[0].server_ns(), labs[1].server_ns());
        let lapi = Lapi::start_in_netns(labs[0].server_ns(), "10.99.0.1:48100".parse().unwrap())?;
        let url = "http://10.99.0.1:48100";
        let guards = [
            server_guard(&lapi, &labs[0], "server-a", url, true),
            server_guard(&lapi, &labs[1], "server-b", url, b_pushes),
        ];
        let _sshds = [
            Sshd::start_in_netns(&guards[0], &labs[0]),
            Sshd::start_in_netns(&guards[1], &labs[1]),
        ];
        let daemons = [
            LabDaemon::start(&guards[0], &labs[0]),
            LabDaemon::start(&guards[1], &labs[1]),
        ];
        Some(TwoServers {
            lapi,
            labs,
            guards,
            daemons,
            _sshds,
        })
    }

    /// Whether server `i` drops new connections from `source` within `within`.
    fn drops(&self, i: usize, source: &str, within: Duration) -> bool {
        use authguard_e2e::netns::{SERVER_V4, SSH_PORT};
        self.labs[i]
            .wait_until_blocked("atk1", source, SERVER_V4, SSH_PORT, within)
            .is_some()
    }

    /// Whether server `i` takes new connections from `source` again within `within`.
    fn opens(&self, i: usize, source: &str, within: Duration) -> bool {
        use authguard_e2e::netns::{SERVER_V4, SSH_PORT};
        self.labs[i]
            .wait_until_open("atk1", source, SERVER_V4, SSH_PORT, within)
            .is_some()
    }

    /// Both daemons' logs and the LAPI's, for a failure message.
    fn diag(&self) -> String {
        format!(
            "A: {}\nB: {}\n{}",
            self.daemons[0].stderr(),
            self.daemons[1].stderr(),
            self.lapi.diag()
        )
    }
}

#[test]
fn an_attacker_banned_inline_on_one_server_is_dropped_and_refused_on_the_other() {
    use authguard_e2e::netns::{SERVER_V4, SSH_PORT};
    if !require_root() {
        return;
    }
    let Some(two) = TwoServers::start(false) else {
        return;
    };
    let ([lab_a, lab_b], [guard_a, guard_b]) = (&two.labs, &two.guards);
    assert!(
        lab_b.can_connect(
            "atk1",
            "203.0.113.10",
            SERVER_V4,
            SSH_PORT,
            Duration::from_secs(2)
        ),
        "B is open before"
    );

    // Wrong passwords at A until A bans the address inline.
    for _ in 0..4 {
        lab_a.ssh_password(
            "atk1",
            "203.0.113.10",
            SERVER_V4,
            WRONG_PASSWORD,
            Method::Password,
        );
        if guard_a
            .listed("203.0.113.10")
            .is_some_and(|b| b["origin"] == "pam")
        {
            break;
        }
    }
    assert!(
        guard_a.listed("203.0.113.10").is_some(),
        "A never banned the attacker: {:?}",
        guard_a.list()
    );

    // B drops its packets, and its PAM refuses it, without ever having seen it.
    assert!(
        two.drops(1, "203.0.113.10", Duration::from_secs(10)),
        "B never dropped the attacker A banned: {:?}\n{}",
        guard_b.list(),
        two.diag()
    );
    let pulled = crowdsec_ban(guard_b, "203.0.113.10").expect("B holds the fleet's ban");
    assert_eq!(pulled["decision_origin"], "authguard", "{pulled}");
    let on_b = PamService::permit(guard_b);
    assert!(
        !on_b
            .run("203.0.113.10", "root", &["authenticate"])
            .status
            .success(),
        "B's PAM lets it try"
    );
    assert_eq!(on_b.reached_count("203.0.113.10"), 0);
}

#[test]
fn the_fleets_decisions_reach_both_servers_and_a_ban_made_offline_arrives_later() {
    if !require_root() {
        return;
    }
    let Some(mut two) = TwoServers::start(true) else {
        return;
    };

    // The admin's `cscli decisions add` is dropped on both; its delete lifts both.
    two.lapi.decisions_add_ip("203.0.113.11", "1h");
    for (i, server) in ["A", "B"].iter().enumerate() {
        assert!(
            two.drops(i, "203.0.113.11", ARRIVE),
            "{server} never dropped the cscli decision\n{}",
            two.diag()
        );
    }
    two.lapi.decisions_delete_ip("203.0.113.11");
    for (i, server) in ["A", "B"].iter().enumerate() {
        assert!(
            two.opens(i, "203.0.113.11", ARRIVE),
            "{server} still drops after cscli decisions delete\n{}",
            two.diag()
        );
    }

    // The LAPI goes down; B bans meanwhile, on its own (dropped there at
    // once); A gets it, once, when the LAPI is back.
    two.lapi.stop();
    two.guards[1].guardctl_ok(&["ban", "203.0.113.12", "--for", "1h", "--reason", "offline"]);
    assert!(
        two.drops(1, "203.0.113.12", ARRIVE),
        "B's own ban is not enforced while the LAPI is down\n{}",
        two.diag()
    );
    assert!(
        wait_until(ARRIVE, || outbox(&two.guards[1]) == 1),
        "B's ban is not queued: {}",
        outbox(&two.guards[1])
    );
    two.lapi.restart();
    assert!(
        two.drops(0, "203.0.113.12", Duration::from_secs(15)),
        "A never got B's ban made while the LAPI was down\n{}",
        two.diag()
    );
    let key = two.lapi.add_bouncer("observer");
    assert_eq!(
        in_lapi(&two.lapi, &key, "203.0.113.12"),
        1,
        "delivered once"
    );

    // A blocklist-sized batch (more than one change-log chunk) lands in
    // both servers' nftables.
    let n = 1_500;
    let list: Vec<Value> = (0..n)
        .map(|i: u32| {
            let ip = std::net::Ipv4Addr::from(u32::from(std::net::Ipv4Addr::new(20, 0, 0, 1)) + i);
            serde_json::json!({ "value": ip.to_string(), "duration": "1h" })
        })
        .collect();
    let file = two.lapi.dir().join("blocklist.json");
    std::fs::write(&file, serde_json::to_vec(&list).unwrap()).unwrap();
    two.lapi
        .cscli_ok(&["decisions", "import", "-i", &file.to_string_lossy()]);
    for (i, server) in ["A", "B"].iter().enumerate() {
        let held = || two.labs[i].set_elements("fleet4").unwrap_or_default().len();
        assert!(
            wait_until(Duration::from_secs(15), || held() >= n as usize),
            "{server}'s nftables hold {} of the {n} imported decisions\n{}",
            held(),
            two.diag()
        );
        assert!(two.labs[i].set_covers("fleet4", "20.0.5.220"));
    }
}
