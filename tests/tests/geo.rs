//! Country data from real files: Debian's `tor-geoipdb` package (downloaded
//! with `apt-get download`, unpacked with `dpkg-deb -x`, never installed)
//! imported with `guardctl geo import`, well-known addresses looked up, and
//! a malformed file refused (exit 2, naming its line) with the data kept.

use authguard_e2e::{Guard, Value, describe_output, parse_json, require_root, tor_geoip};
use std::path::Path;

/// Addresses whose country is stable: Google's resolvers, RIPE NCC's web
/// server in Amsterdam, APNIC's 1.1.1.0/24 (registered in Australia).
const KNOWN: [(&str, &str); 5] = [
    ("8.8.8.8", "US"),
    ("2001:4860:4860::8888", "US"),
    ("193.0.6.139", "NL"),
    ("::ffff:193.0.6.139", "NL"),
    ("1.1.1.1", "AU"),
];

fn lookup(g: &Guard, address: &str) -> Value {
    let out = g.guardctl_ok(&["geo", "lookup", address, "--json"]);
    let json = parse_json(&out);
    assert_eq!(json["address"].as_str().map(str::is_empty), Some(false));
    json["country"].clone()
}

fn assert_known_lookups(g: &Guard) {
    for (address, country) in KNOWN {
        assert_eq!(lookup(g, address), country, "geo lookup {address}");
    }
    for private in ["127.0.0.1", "10.1.2.3", "::1"] {
        assert_eq!(lookup(g, private), Value::Null, "geo lookup {private}");
    }
}

fn path(p: &Path) -> &str {
    p.to_str().expect("a UTF-8 temporary path")
}

/// Tor's geoip without its comments, line 3 broken: a copy that would
/// import, but for one line.
fn broken_copy(geoip: &Path, to: &Path) {
    let text = std::fs::read_to_string(geoip).expect("read geoip");
    let mut lines: Vec<&str> = text.lines().filter(|l| !l.starts_with('#')).collect();
    assert!(
        lines.len() > 100_000,
        "geoip has {} data lines",
        lines.len()
    );
    lines[2] = "16777472,oops,CN";
    std::fs::write(to, lines.join("\n") + "\n").expect("write the broken copy");
}

#[test]
fn tor_geoip_files_import_look_up_and_survive_a_malformed_file() {
    if !require_root() {
        return;
    }
    let tmp = tempfile::tempdir().expect("a temporary directory");
    let Some(tor) = tor_geoip(tmp.path()) else {
        return;
    };
    let (v4, v6) = (tor.join("geoip"), tor.join("geoip6"));
    let g = Guard::new();
    assert_eq!(lookup(&g, "8.8.8.8"), Value::Null, "no data yet");

    let out = g.guardctl_ok(&["geo", "import", path(&v4), path(&v6), "--json"]);
    let done = parse_json(&out);
    let formats: Vec<&str> = done["files"]
        .as_array()
        .expect("files")
        .iter()
        .filter_map(|f| f["format"].as_str())
        .collect();
    assert_eq!(formats, ["tor-ipv4", "tor-ipv6"], "{done}");
    assert!(done["ipv4_ranges"].as_u64() > Some(100_000), "{done}");
    assert!(done["ipv6_ranges"].as_u64() > Some(50_000), "{done}");
    assert!(done["countries"].as_u64() > Some(200), "{done}");
    assert!(done["seconds"].as_f64() < Some(30.0), "{done}");
    assert_known_lookups(&g);
    let text = g.guardctl_ok(&["geo", "lookup", "193.0.6.139"]);
    assert_eq!(String::from_utf8_lossy(&text.stdout), "NL\n");
    assert_eq!(g.show("8.8.8.8")["country"], "US");
    let shown = g.guardctl_ok(&["show", "1.1.1.1"]);
    assert!(String::from_utf8_lossy(&shown.stdout).contains("country AU"));

    // A valid file that would change 8.8.8.8, then one with a broken line 3:
    // nothing of either may be imported.
    let other = tmp.path().join("other.csv");
    std::fs::write(&other, "8.8.8.0,8.8.8.255,DE\n").expect("write other.csv");
    let broken = tmp.path().join("geoip-broken");
    broken_copy(&v4, &broken);
    let out = g.guardctl(&["geo", "import", path(&other), path(&broken)]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{}", describe_output(&out));
    assert!(
        stderr.contains(&format!("{}, line 3: `oops`", broken.display())),
        "the error must name the file and line 3: {stderr}"
    );
    assert_known_lookups(&g);
}
