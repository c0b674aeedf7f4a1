//! Country data from real files: Debian's `tor-geoipdb` package (downloaded
//! with `apt-get download`, unpacked with `dpkg-deb -x`, never installed)
//! imported with `guardctl geo import`, well-known addresses looked up, and
//! a malformed file refused (exit 2, naming its line) with the data kept.
//! Then a MaxMind DB written by MaxMind's own writer (Debian's
//! `libmaxmind-db-writer-perl`), shaped like GeoLite2-Country with its
//! IPv6-to-IPv4 aliases, and truncated copies of it refused.

use authguard_e2e::{
    Guard, Value, describe_output, parse_json, require_root, run_with_timeout, tor_geoip,
};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

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
    // A file of unknown countries only says so, not "no ranges".
    let unknown = tmp.path().join("unknown.csv");
    std::fs::write(&unknown, "8.8.8.0,8.8.8.255,ZZ\n9.9.9.0,9.9.9.255,??\n").expect("write");
    assert_refused(&g, &unknown, "all 2 ranges in it name an unknown country");
    assert_known_lookups(&g);
}

/// MaxMind::DB::Writer::Tree writing a GeoLite2-Country-shaped database:
/// `perl SCRIPT OUT TYPE`, one `NETWORK COUNTRY REGISTERED` line per
/// network on stdin (`-` for none). IPv4 goes in as IPv4 (stored at
/// ::/96) and is aliased at ::ffff:0:0/96, 2001::/32 and 2002::/16, as in
/// MaxMind's files.
const MMDB_WRITER: &str = r#"
use strict;
use warnings;
use MaxMind::DB::Writer::Tree;

my ($out, $type) = @ARGV;
my %types = (
    continent => 'map', country => 'map', registered_country => 'map',
    names => 'map', code => 'utf8_string', geoname_id => 'uint32',
    iso_code => 'utf8_string', is_in_european_union => 'boolean',
    en => 'utf8_string', de => 'utf8_string',
    autonomous_system_number => 'uint32',
);
my $tree = MaxMind::DB::Writer::Tree->new(
    ip_version => 6, record_size => 24, database_type => $type,
    languages => ['en', 'de'], description => { en => 'authguard test data' },
    map_key_type_callback => sub { $types{ $_[0] } },
    merge_strategy => 'recurse', alias_ipv6_to_ipv4 => 1,
);
sub place {
    my ($cc) = @_;
    return { iso_code => $cc, geoname_id => 1000, names => { en => "land $cc", de => "Land $cc" } };
}
while (my $line = <STDIN>) {
    my ($network, $cc, $registered) = split ' ', $line;
    my %record = (continent => { code => 'EU', geoname_id => 6255148, names => { en => 'Europe' } });
    $record{country} = place($cc) if $cc ne '-';
    $record{registered_country} = place($registered) if $registered ne '-';
    %record = (autonomous_system_number => 15169) if $type =~ /ASN/;
    $tree->insert_network($network, \%record);
}
open my $fh, '>:raw', $out or die "$out: $!";
$tree->write_tree($fh);
close $fh or die "$out: $!";
"#;

/// (network, country, registered country): 8.8.8.0/24 and 8.8.9.0/24 are
/// adjacent and both US (one range once merged); 91.198.174.0/24 has only
/// a registered country; 5.5.5.0/24 has neither (unknown).
const MMDB_NETWORKS: [(&str, &str, &str); 8] = [
    ("8.8.8.0/24", "US", "US"),
    ("8.8.9.0/24", "US", "US"),
    ("193.0.0.0/21", "NL", "NL"),
    ("193.0.8.0/24", "DE", "-"),
    ("91.198.174.0/24", "-", "NL"),
    ("5.5.5.0/24", "-", "-"),
    ("2001:4860::/32", "US", "US"),
    ("2001:67c:2e8::/48", "NL", "NL"),
];

/// The IPv4 and IPv6 ranges the import must store: every network with a
/// country, minus the one adjacent US pair merged, no alias copies.
const MMDB_RANGES: (u64, u64) = (4, 2);

/// Inside and outside the networks, through the IPv4-mapped and 6to4
/// aliases too (the store maps only IPv4-mapped addresses to IPv4).
const MMDB_LOOKUPS: [(&str, Option<&str>); 14] = [
    ("8.8.8.8", Some("US")),
    ("8.8.9.255", Some("US")),
    ("8.8.10.0", None),
    ("8.8.7.255", None),
    ("193.0.6.139", Some("NL")),
    ("::ffff:193.0.6.139", Some("NL")),
    ("193.0.8.1", Some("DE")),
    ("91.198.174.192", Some("NL")),
    ("5.5.5.5", None),
    ("2001:4860:4860::8888", Some("US")),
    ("2001:67c:2e8:22::c100:68b", Some("NL")),
    ("2001:4861::1", None),
    ("2002:808:808::1", None),
    ("1.1.1.1", None),
];

/// Writes a database of `database_type` holding [`MMDB_NETWORKS`] to `out`.
fn write_mmdb(dir: &Path, out: &Path, database_type: &str) {
    let script = dir.join("write-mmdb.pl");
    std::fs::write(&script, MMDB_WRITER).expect("write the writer script");
    let lines: String = MMDB_NETWORKS
        .iter()
        .map(|(net, cc, registered)| format!("{net} {cc} {registered}\n"))
        .collect();
    let mut perl = Command::new("perl");
    perl.arg(&script).arg(out).arg(database_type);
    let f = run_with_timeout(&mut perl, Some(lines.as_bytes()), Duration::from_secs(60));
    assert!(
        f.status.success(),
        "MaxMind's writer failed (is libmaxmind-db-writer-perl installed? `make test-deps`): {}",
        f.describe()
    );
}

fn assert_mmdb_lookups(g: &Guard) {
    for (address, country) in MMDB_LOOKUPS {
        let expected = country.map_or(Value::Null, Value::from);
        assert_eq!(lookup(g, address), expected, "geo lookup {address}");
    }
}

/// A copy of `db` cut to `len` bytes.
fn truncated(db: &Path, to: PathBuf, len: usize) -> PathBuf {
    let bytes = std::fs::read(db).expect("read the database");
    std::fs::write(&to, &bytes[..len]).expect("write the truncated copy");
    to
}

/// Runs `geo import FILE`, which must fail with exit 2 and `words` in
/// stderr, naming the file.
fn assert_refused(g: &Guard, file: &Path, words: &str) {
    let out = g.guardctl(&["geo", "import", path(file)]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{}", describe_output(&out));
    assert!(
        stderr.contains(path(file)) && stderr.contains(words),
        "the error must name {} and say `{words}`: {stderr}",
        file.display()
    );
}

#[test]
fn a_maxmind_db_imports_once_per_network_and_truncated_copies_are_refused() {
    if !require_root() {
        return;
    }
    let tmp = tempfile::tempdir().expect("a temporary directory");
    let db = tmp.path().join("GeoLite2-Country.mmdb");
    write_mmdb(tmp.path(), &db, "GeoLite2-Country");
    let g = Guard::new();

    let out = g.guardctl_ok(&["geo", "import", path(&db), "--json"]);
    let done = parse_json(&out);
    let file = &done["files"][0];
    assert_eq!(file["format"], "mmdb", "{done}");
    assert_eq!(file["database_type"], "GeoLite2-Country", "{done}");
    assert_eq!(file["unknown"], 1, "{done}");
    let (v4, v6) = MMDB_RANGES;
    assert_eq!(done["ipv4_ranges"], v4, "no IPv4 range twice: {done}");
    assert_eq!(done["ipv6_ranges"], v6, "no alias as IPv6: {done}");
    assert_eq!(done["countries"], 3, "{done}");
    eprintln!("imported the test database in {} s", done["seconds"]);
    assert_mmdb_lookups(&g);

    // Cut in its search tree (no metadata left), and cut inside its
    // metadata: both refused, nothing imported.
    let len = std::fs::metadata(&db).expect("stat").len() as usize;
    let half = truncated(&db, tmp.path().join("half.mmdb"), len / 2);
    assert_refused(&g, &half, "not a MaxMind DB");
    let cut = truncated(&db, tmp.path().join("cut.mmdb"), len - 20);
    assert_refused(&g, &cut, "not a valid MaxMind DB");
    assert_mmdb_lookups(&g);

    let asn = tmp.path().join("GeoLite2-ASN.mmdb");
    write_mmdb(tmp.path(), &asn, "GeoLite2-ASN");
    assert_refused(&g, &asn, "no country data in");
    assert_refused(&g, &asn, "database_type GeoLite2-ASN");
    assert_mmdb_lookups(&g);
}
