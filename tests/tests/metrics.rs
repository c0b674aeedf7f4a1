//! Metrics an admin can graph: `guardctl metrics` (no daemon) and the
//! daemon's textfile, parsed by a real Prometheus parser (Debian's
//! `python3-prometheus-client`) and scraped through a real node_exporter
//! (Debian's `prometheus-node-exporter`, our own instance on a free
//! loopback port, never the host's service). What an admin checks: bans
//! active, made and ended by origin, attempts by outcome; counters that
//! stay put across `unban --forget` and the retention purge.

use authguard_e2e::crowdsec::free_local_addr;
use authguard_e2e::*;
use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// Debian's Python, where `python3-prometheus-client` is (a `python3`
/// earlier on PATH, pyenv's say, may not have it).
const PYTHON: &str = "/usr/bin/python3";
const NODE_EXPORTER: &str = "/usr/bin/prometheus-node-exporter";

/// Parses exposition text with prometheus_client's parser; prints each
/// family's type and each sample as JSON.
const PARSE: &str = r#"
import json, sys
from prometheus_client.parser import text_string_to_metric_families
out = {"types": {}, "samples": []}
for f in text_string_to_metric_families(sys.stdin.read()):
    out["types"][f.name] = f.type
    for s in f.samples:
        out["samples"].append([s.name, s.labels, s.value])
print(json.dumps(out))
"#;

/// What the parser made of a text.
struct Parsed {
    types: BTreeMap<String, String>,
    samples: Vec<(String, BTreeMap<String, String>, f64)>,
}

impl Parsed {
    /// The value of `name` with exactly `labels`, if present.
    fn value(&self, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
        let want: BTreeMap<String, String> = labels
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        self.samples
            .iter()
            .find(|(n, l, _)| n == name && *l == want)
            .map(|s| s.2)
    }

    fn must(&self, name: &str, labels: &[(&str, &str)]) -> f64 {
        self.value(name, labels)
            .unwrap_or_else(|| panic!("no {name} {labels:?} among {:?}", self.samples))
    }
}

fn parse(text: &str) -> Parsed {
    let mut py = Command::new(PYTHON);
    py.args(["-c", PARSE]);
    let f = run_with_timeout(&mut py, Some(text.as_bytes()), Duration::from_secs(30));
    assert!(
        f.status.success(),
        "prometheus_client refused the text: {}\n--- text ---\n{text}",
        f.describe()
    );
    let json: Value = serde_json::from_str(&f.stdout).expect("the parser's JSON");
    let types = json["types"]
        .as_object()
        .expect("types")
        .iter()
        .map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_owned()))
        .collect();
    let samples = json["samples"]
        .as_array()
        .expect("samples")
        .iter()
        .map(|s| {
            let labels = s[1]
                .as_object()
                .expect("labels")
                .iter()
                .map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_owned()))
                .collect();
            (
                s[0].as_str().unwrap_or_default().to_owned(),
                labels,
                s[2].as_f64().unwrap_or(f64::NAN),
            )
        })
        .collect();
    Parsed { types, samples }
}

/// `guardctl metrics`, parsed.
fn metrics(g: &Guard) -> Parsed {
    let out = g.guardctl_ok(&["metrics"]);
    parse(&String::from_utf8_lossy(&out.stdout))
}

/// The counters an admin graphs, to compare before and after a deletion.
fn counters(p: &Parsed) -> Vec<(String, BTreeMap<String, String>, f64)> {
    p.samples
        .iter()
        .filter(|s| s.0.ends_with("_total"))
        .cloned()
        .collect()
}

#[test]
fn guardctl_metrics_parse_and_count_bans_and_attempts_across_forget() {
    if !require_root() {
        return;
    }
    let g = Guard::builder().max_failures(2).start();
    let out = g.guardctl(&["metrics", "--textfile", "relative.prom"]);
    assert_eq!(out.status.code(), Some(2), "{}", describe_output(&out));
    g.guardctl_ok(&["ban", "203.0.113.7"]);
    g.guardctl_ok(&["ban", "203.0.113.8"]);
    g.guardctl_ok(&["unban", "203.0.113.8"]);
    // Two failed passwords from one source, then refusals under its ban.
    let pam = PamService::deny(&g);
    for _ in 0..4 {
        pam.run("192.0.2.10", "root", &["authenticate"]);
    }
    let m = metrics(&g);
    for (family, kind) in [
        ("authguard_bans_active", "gauge"),
        ("authguard_bans_made", "counter"),
        ("authguard_bans_ended", "counter"),
        ("authguard_attempts", "counter"),
        ("authguard_store_size_bytes", "gauge"),
        ("authguard_daemon_up", "gauge"),
    ] {
        assert_eq!(
            m.types.get(family).map(String::as_str),
            Some(kind),
            "{family}: {:?}",
            m.types
        );
    }
    let manual = [("origin", "manual")];
    assert_eq!(m.must("authguard_bans_active", &manual), 1.0);
    assert_eq!(m.must("authguard_bans_made_total", &manual), 2.0);
    assert_eq!(
        m.must(
            "authguard_bans_ended_total",
            &[("origin", "manual"), ("reason", "unbanned")]
        ),
        1.0
    );
    assert_eq!(m.must("authguard_bans_active", &[("origin", "pam")]), 1.0);
    assert_eq!(
        m.must("authguard_attempts_total", &[("outcome", "admitted")]),
        2.0
    );
    assert_eq!(
        m.must("authguard_attempts_total", &[("outcome", "refused")]),
        2.0
    );
    assert!(m.must("authguard_store_size_bytes", &[]) > 0.0);
    assert_eq!(m.must("authguard_daemon_up", &[]), 0.0, "no daemon ran");
    for (_, labels, _) in &m.samples {
        for value in labels.values() {
            assert!(
                value.parse::<std::net::IpAddr>().is_err(),
                "an address as a label: {value}"
            );
        }
    }
    // Forgetting a source deletes its rows, never what the counters said.
    let before = counters(&m);
    g.guardctl_ok(&["unban", "192.0.2.10", "--forget"]);
    g.guardctl_ok(&["unban", "203.0.113.8", "--forget"]);
    let after = metrics(&g);
    assert_eq!(
        after.must("authguard_bans_active", &[("origin", "pam")]),
        0.0
    );
    for (name, labels, value) in before {
        let pairs: Vec<(&str, &str)> = labels
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        let now = after.must(&name, &pairs);
        assert!(now >= value, "{name} {labels:?} went from {value} to {now}");
    }
    assert_eq!(
        after.must(
            "authguard_bans_ended_total",
            &[("origin", "pam"), ("reason", "unbanned")]
        ),
        1.0,
        "the forgotten ban was lifted first"
    );
}

/// One HTTP GET of `url_path` on `addr`, the body.
fn http_get(addr: std::net::SocketAddr, url_path: &str) -> Option<String> {
    let mut s = std::net::TcpStream::connect_timeout(&addr, Duration::from_secs(2)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(10))).ok()?;
    write!(s, "GET {url_path} HTTP/1.0\r\nHost: {addr}\r\n\r\n").ok()?;
    let mut reply = String::new();
    s.read_to_string(&mut reply).ok()?;
    let (head, body) = reply.split_once("\r\n\r\n")?;
    // "HTTP/1.0 200 OK": Go answers in the request's version.
    (head.split(' ').nth(1) == Some("200")).then(|| body.to_owned())
}

/// Our own node_exporter reading only `dir`'s textfiles; killed on drop.
struct NodeExporter(Child);

impl NodeExporter {
    fn start(dir: &Path, addr: std::net::SocketAddr, log: &Path) -> NodeExporter {
        let err = std::fs::File::create(log).expect("node_exporter.err");
        let child = Command::new(NODE_EXPORTER)
            .arg(format!("--web.listen-address={addr}"))
            .arg("--collector.disable-defaults")
            .arg("--collector.textfile")
            .arg(format!("--collector.textfile.directory={}", dir.display()))
            .stdout(Stdio::null())
            .stderr(err)
            .spawn()
            .expect("start prometheus-node-exporter");
        NodeExporter(child)
    }
}

impl Drop for NodeExporter {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn the_daemon_writes_a_textfile_node_exporter_serves_and_counters_survive_the_purge() {
    if !require_root() {
        return;
    }
    let scratch = tempfile::tempdir().expect("tempdir");
    let textdir = scratch.path().join("node-exporter");
    std::fs::create_dir(&textdir).expect("textfile dir");
    let prom = textdir.join("authguard.prom");
    // Retention of one second: the daemon's first purge, at its start,
    // deletes every row older than that (the recidive rule, off, would
    // need more history).
    let g = Guard::builder()
        .extra("[recidive]")
        .extra("bans = 0")
        .extra("[metrics]")
        .extra(&format!("textfile = \"{}\"", prom.display()))
        .extra("interval = \"1s\"")
        .start();
    std::fs::write(
        g.config_path(),
        std::fs::read_to_string(g.config_path())
            .expect("config")
            .replace("[store]\n", "[store]\nretention = \"1s\"\n"),
    )
    .expect("write config");
    g.guardctl_ok(&["ban", "203.0.113.7"]);
    g.guardctl_ok(&["ban", "203.0.113.8"]);
    g.guardctl_ok(&["unban", "203.0.113.8"]);
    let before = metrics(&g);
    std::thread::sleep(Duration::from_millis(2100));

    let daemon = HostDaemon::start(&g);
    assert!(
        wait_until(Duration::from_secs(15), || daemon
            .stderr()
            .contains("retention: deleted")),
        "no purge: {}",
        daemon.stderr()
    );
    let listed = parse_json(&g.guardctl_ok(&["list", "--all", "--json"]));
    assert_eq!(
        listed.as_array().map(Vec::len),
        Some(1),
        "the lifted ban was purged: {listed}"
    );
    // The file is rewritten every second: wait for one written after the purge.
    let written_after_purge = || {
        std::fs::read_to_string(&prom)
            .ok()
            .map(|t| parse(&t))
            .filter(|m| m.value("authguard_daemon_up", &[]) == Some(1.0))
    };
    std::thread::sleep(Duration::from_millis(1200));
    let mut file = None;
    assert!(
        wait_until(Duration::from_secs(10), || {
            file = written_after_purge();
            file.is_some()
        }),
        "no textfile from the daemon: {}",
        daemon.stderr()
    );
    let file = file.expect("the textfile");
    assert_eq!(
        counters(&metrics(&g)),
        counters(&before),
        "the purge moved no counter"
    );
    assert_eq!(counters(&file), counters(&before), "nor in the textfile");
    assert_eq!(
        file.must("authguard_bans_active", &[("origin", "manual")]),
        1.0
    );
    assert!(file.must("authguard_daemon_heartbeat_timestamp_seconds", &[]) > 1.7e9);
    assert!(
        daemon
            .stderr()
            .contains(&format!("metrics: writing {}", prom.display())),
        "{}",
        daemon.stderr()
    );
    let leftovers: Vec<_> = std::fs::read_dir(&textdir)
        .expect("textfile dir")
        .flatten()
        .map(|e| e.file_name())
        .collect();
    assert_eq!(leftovers, ["authguard.prom"], "no temporary file left");

    if !Path::new(NODE_EXPORTER).exists() {
        assert!(
            std::env::var("CI").map_or(true, |v| v != "true"),
            "{NODE_EXPORTER} is missing under CI (make test-deps installs it)"
        );
        eprintln!("skipping the node_exporter scrape: {NODE_EXPORTER} is not installed");
        return;
    }
    let addr = free_local_addr();
    let _exporter = NodeExporter::start(&textdir, addr, &scratch.path().join("node_exporter.err"));
    let mut body = None;
    assert!(
        wait_until(Duration::from_secs(15), || {
            body = http_get(addr, "/metrics");
            body.is_some()
        }),
        "node_exporter did not answer on {addr}: {}",
        std::fs::read_to_string(scratch.path().join("node_exporter.err")).unwrap_or_default()
    );
    let body = body.expect("a scrape");
    let scraped = parse(&body);
    assert_eq!(
        scraped.must("node_textfile_scrape_error", &[]),
        0.0,
        "{body}"
    );
    assert_eq!(
        scraped.must("authguard_bans_made_total", &[("origin", "manual")]),
        2.0,
        "{body}"
    );
    assert_eq!(
        scraped.must("authguard_bans_active", &[("origin", "manual")]),
        1.0
    );
    assert_eq!(scraped.must("authguard_daemon_up", &[]), 1.0);
    assert_eq!(
        scraped.types.get("authguard_attempts").map(String::as_str),
        Some("counter")
    );
}
