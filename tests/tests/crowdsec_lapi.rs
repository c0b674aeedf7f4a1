//! The CrowdSec harness works: the real LAPI of Debian 12's `crowdsec`
//! (1.4.6), offline, answers a bouncer's stream pull and takes a machine's
//! alert, as authguard's CrowdSec member will use them.

use authguard_e2e::crowdsec::{Lapi, describe_stream, free_local_addr, stream_values};
use authguard_e2e::netns::Lab;
use authguard_e2e::*;
use std::net::SocketAddr;

fn has(answer: &Value, which: &str, scope: &str, value: &str) -> bool {
    stream_values(answer, which)
        .iter()
        .any(|(s, v)| s == scope && v == value)
}

/// A minimal valid alert (every field 1.4.6's `models.Alert.Validate`
/// requires) carrying one ban decision for `ip`.
fn ban_alert(ip: &str, duration: &str) -> String {
    let now = std::process::Command::new("date")
        .args(["-u", "+%Y-%m-%dT%H:%M:%SZ"])
        .output()
        .expect("date");
    let now = String::from_utf8_lossy(&now.stdout).trim().to_owned();
    serde_json::json!([{
        "scenario": "authguard/ssh-bf",
        "scenario_hash": "",
        "scenario_version": "",
        "message": format!("authguard banned {ip}"),
        "events_count": 5,
        "start_at": now,
        "stop_at": now,
        "capacity": 0,
        "leakspeed": "0",
        "simulated": false,
        "events": [],
        "source": {"scope": "Ip", "value": ip, "ip": ip},
        "decisions": [{
            "duration": duration,
            "origin": "authguard",
            "scenario": "authguard/ssh-bf",
            "scope": "Ip",
            "type": "ban",
            "value": ip
        }]
    }])
    .to_string()
}

#[test]
fn lapi_serves_a_bouncer_and_a_machine() {
    if !require_root() {
        return;
    }
    let started = std::time::Instant::now();
    let Some(mut lapi) = Lapi::start(free_local_addr()) else {
        return;
    };
    eprintln!(
        "LAPI {} answered /health {:.3} s after spawn; Lapi::start took {:.3} s \
         (package, config, cscli machine, spawn, wait) (crowdsec {})",
        lapi.url(),
        lapi.startup.as_secs_f64(),
        started.elapsed().as_secs_f64(),
        lapi.package().version
    );
    let key = lapi.add_bouncer("authguard-test");

    // A bouncer's first pull: JSON with both lists, nothing in them yet.
    let first = lapi.stream(&key, "startup=true");
    assert!(
        first.get("new").is_some() && first.get("deleted").is_some(),
        "the startup stream has no new/deleted: {first}"
    );
    assert!(
        stream_values(&first, "new").is_empty(),
        "a fresh LAPI has decisions: {first}"
    );

    // A wrong key is refused.
    let refused = lapi.curl(
        "GET",
        "/v1/decisions/stream?startup=true",
        &["X-Api-Key: not-a-key"],
        None,
    );
    assert_eq!(refused.status, 403, "{}", refused.run.describe());
    assert_eq!(refused.json()["message"], "access forbidden");

    // A decision added with cscli is in the next pull's `new`…
    lapi.decisions_add_ip("192.0.2.7", "1h");
    lapi.decisions_add_range("198.51.100.0/24", "2h");
    let added = lapi.stream(&key, "");
    assert!(
        has(&added, "new", "Ip", "192.0.2.7") && has(&added, "new", "Range", "198.51.100.0/24"),
        "cscli's decisions are not in the stream's new:\n{}\n{}",
        describe_stream(&added),
        lapi.diag()
    );
    let d = added["new"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["value"] == "192.0.2.7")
        .unwrap();
    assert_eq!(d["type"], "ban");
    assert_eq!(d["origin"], "cscli");
    let duration = d["duration"].as_str().unwrap_or_default();
    assert!(
        duration.starts_with("59m") || duration.starts_with("1h"),
        "a 1h decision has duration {duration:?}"
    );
    assert!(
        d["id"].as_i64().is_some_and(|id| id > 0),
        "decision without an id: {d}"
    );
    assert_eq!(
        lapi.active_decisions().len(),
        2,
        "{}",
        lapi.decisions_list()
    );

    // …and once deleted, in `deleted` (with a negative duration).
    let said = lapi.decisions_delete_ip("192.0.2.7");
    assert!(
        said.contains("1 decision(s) deleted"),
        "cscli said {said:?}"
    );
    let deleted = lapi.stream(&key, "");
    assert!(
        has(&deleted, "deleted", "Ip", "192.0.2.7"),
        "the deleted decision is not in the stream's deleted:\n{}",
        describe_stream(&deleted)
    );
    assert!(
        !has(&deleted, "new", "Ip", "192.0.2.7"),
        "{}",
        describe_stream(&deleted)
    );

    // A machine logs in and pushes an alert with a ban: bouncers see it.
    lapi.add_machine("authguard-host", "machine-password-1");
    let token = lapi.login("authguard-host", "machine-password-1");
    let posted = lapi.curl(
        "POST",
        "/v1/alerts",
        &[
            &format!("Authorization: Bearer {token}"),
            "User-Agent: authguard-e2e/1",
        ],
        Some(&ban_alert("203.0.113.9", "4h")),
    );
    assert_eq!(
        posted.status,
        201,
        "POST /v1/alerts: {}\n{}",
        posted.run.describe(),
        lapi.diag()
    );
    let ids = posted.json();
    assert!(
        ids.as_array()
            .is_some_and(|a| a.len() == 1 && a[0].is_string()),
        "POST /v1/alerts answered {ids} (want one alert id, a string)"
    );
    let pushed = lapi.stream(&key, "");
    assert!(
        has(&pushed, "new", "Ip", "203.0.113.9"),
        "the machine's ban is not in the stream:\n{}\n{}",
        describe_stream(&pushed),
        lapi.diag()
    );
    let d = pushed["new"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["value"] == "203.0.113.9")
        .unwrap();
    assert_eq!(d["origin"], "authguard");
    assert_eq!(d["scenario"], "authguard/ssh-bf");

    // Down, then back: the key still works, the ban is still there, the
    // machine's old token is not (a new random JWT secret).
    lapi.stop();
    assert_eq!(lapi.health(), 0, "the LAPI still answers after stop");
    lapi.restart();
    eprintln!("LAPI restarted in {:.3} s", lapi.startup.as_secs_f64());
    let again = lapi.stream(&key, "startup=true");
    assert!(
        has(&again, "new", "Ip", "203.0.113.9") && has(&again, "new", "Range", "198.51.100.0/24"),
        "{}",
        describe_stream(&again)
    );
    let stale = lapi.curl(
        "POST",
        "/v1/alerts",
        &[&format!("Authorization: Bearer {token}")],
        Some("[]"),
    );
    assert_eq!(stale.status, 401, "{}", stale.run.describe());
    let _ = lapi.login("authguard-host", "machine-password-1");
}

#[test]
fn lapi_listens_inside_a_network_namespace() {
    if !require_root() {
        return;
    }
    let lab = Lab::new(&[("atk1", &["203.0.113.10/24"])]);
    let listen: SocketAddr = format!("{}:8080", netns::SERVER_V4).parse().unwrap();
    let Some(lapi) = Lapi::start_in_netns(lab.server_ns(), listen) else {
        return;
    };
    let key = lapi.add_bouncer("in-ns");
    lapi.decisions_add_ip("203.0.113.10", "30m");
    let answer = lapi.stream(&key, "startup=true");
    assert!(
        has(&answer, "new", "Ip", "203.0.113.10"),
        "{}\n{}",
        describe_stream(&answer),
        lapi.diag()
    );
    // An attacker namespace reaches it over the lab's bridge; the host does not.
    let mut from_atk = lab.exec_in(
        "atk1",
        &[
            "curl",
            "-s",
            "-m",
            "5",
            "-H",
            &format!("X-Api-Key: {key}"),
            &format!("{}/v1/decisions/stream?startup=true", lapi.url()),
        ],
    );
    let f = run_with_timeout(&mut from_atk, None, std::time::Duration::from_secs(20));
    assert!(
        f.status.success() && f.stdout.contains("203.0.113.10"),
        "{}",
        f.describe()
    );
    let mut from_host = std::process::Command::new("curl");
    from_host
        .args(["-s", "-m", "2", "-o", "/dev/null"])
        .arg(format!("{}/health", lapi.url()));
    let f = run_with_timeout(&mut from_host, None, std::time::Duration::from_secs(10));
    assert!(
        !f.status.success(),
        "the host reached a LAPI inside the namespace"
    );
}

#[test]
fn lapi_start_failure_panics_with_its_log() {
    if !require_root() {
        return;
    }
    if authguard_e2e::crowdsec::package().is_none() {
        return;
    }
    let taken = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = taken.local_addr().unwrap();
    let err = std::panic::catch_unwind(|| Lapi::start(addr)).expect_err("started on a taken port");
    let msg = err.downcast_ref::<String>().cloned().unwrap_or_default();
    assert!(
        msg.contains("did not start") && msg.contains("address already in use"),
        "the panic does not name the cause: {msg}"
    );
}
