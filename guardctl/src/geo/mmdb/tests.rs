use super::*;

// A minimal MaxMind DB writer, enough to build small databases byte by
// byte (the end-to-end test uses MaxMind's own writer).

fn string(s: &str) -> Vec<u8> {
    assert!(s.len() < 29);
    let mut out = vec![0x40 | s.len() as u8];
    out.extend_from_slice(s.as_bytes());
    out
}

fn map(pairs: &[(&str, Vec<u8>)]) -> Vec<u8> {
    let mut out = vec![0xE0 | pairs.len() as u8];
    for (key, value) in pairs {
        out.extend(string(key));
        out.extend_from_slice(value);
    }
    out
}

fn uint16(v: u16) -> Vec<u8> {
    let mut out = vec![0xA2];
    out.extend_from_slice(&v.to_be_bytes());
    out
}

fn uint32(v: u32) -> Vec<u8> {
    let mut out = vec![0xC4];
    out.extend_from_slice(&v.to_be_bytes());
    out
}

fn uint64(v: u64) -> Vec<u8> {
    // Extended type 9: size 8 in the control byte, 9 − 7 in the next.
    let mut out = vec![0x08, 0x02];
    out.extend_from_slice(&v.to_be_bytes());
    out
}

fn empty_array() -> Vec<u8> {
    vec![0x00, 0x04]
}

/// What one record of a node points to.
#[derive(Clone, Copy)]
enum To {
    Node(usize),
    Empty,
    /// The n-th of the data records.
    Data(usize),
}

/// A country record: `{country: {iso_code: CC}}`.
fn country(cc: &str) -> Vec<u8> {
    map(&[("country", map(&[("iso_code", string(cc))]))])
}

/// A database of record size 24 with these nodes and data records.
fn database(ip_version: u16, database_type: &str, nodes: &[[To; 2]], data: &[Vec<u8>]) -> Vec<u8> {
    let mut offsets = Vec::new();
    let mut section = Vec::new();
    for record in data {
        offsets.push(section.len());
        section.extend_from_slice(record);
    }
    let mut out = Vec::new();
    for node in nodes {
        for to in node {
            let value = match *to {
                To::Node(n) => n,
                To::Empty => nodes.len(),
                To::Data(i) => nodes.len() + SEPARATOR + offsets[i],
            };
            out.extend_from_slice(&(value as u32).to_be_bytes()[1..]);
        }
    }
    out.extend_from_slice(&[0; SEPARATOR]);
    out.extend(section);
    out.extend_from_slice(MARKER);
    out.extend(metadata(ip_version, database_type, nodes.len() as u32));
    out
}

fn metadata(ip_version: u16, database_type: &str, node_count: u32) -> Vec<u8> {
    map(&[
        ("binary_format_major_version", uint16(2)),
        ("binary_format_minor_version", uint16(0)),
        ("build_epoch", uint64(1_750_000_000)),
        ("database_type", string(database_type)),
        ("description", map(&[])),
        ("ip_version", uint16(ip_version)),
        ("languages", empty_array()),
        ("node_count", uint32(node_count)),
        ("record_size", uint16(24)),
    ])
}

/// IPv4: 0/2 and 64/2 US (one range once merged), 128/2 registered in NL
/// only, 192/2 without a country.
fn ipv4_database() -> Vec<u8> {
    let nodes = [
        [To::Node(1), To::Node(2)],
        [To::Data(0), To::Data(0)],
        [To::Data(1), To::Data(2)],
    ];
    let data = [
        country("US"),
        map(&[("registered_country", map(&[("iso_code", string("NL"))]))]),
        map(&[("continent", map(&[("code", string("EU"))]))]),
    ];
    database(4, "GeoLite2-Country", &nodes, &data)
}

fn range(lo: &str, hi: &str) -> (IpAddr, IpAddr) {
    (lo.parse().expect("lo"), hi.parse().expect("hi"))
}

fn spans(file: &GeoFile) -> Vec<(IpAddr, IpAddr, String)> {
    file.ranges
        .iter()
        .map(|r| (r.lo, r.hi, r.country.to_string()))
        .collect()
}

fn expect(lo: &str, hi: &str, cc: &str) -> (IpAddr, IpAddr, String) {
    let (lo, hi) = range(lo, hi);
    (lo, hi, cc.to_owned())
}

#[test]
fn an_ipv4_database_merges_its_networks_and_falls_back_to_the_registered_country() {
    let db = parse("x.mmdb", &ipv4_database(), false).expect("parses");
    assert_eq!(db.file.format, Format::Mmdb);
    assert_eq!(db.database_type, "GeoLite2-Country");
    assert_eq!(db.build_epoch, 1_750_000_000);
    assert_eq!(
        spans(&db.file),
        [
            expect("0.0.0.0", "127.255.255.255", "US"),
            expect("128.0.0.0", "191.255.255.255", "NL"),
        ]
    );
    assert_eq!(db.file.unknown, 1);
    let lines: Vec<u64> = db.file.ranges.iter().map(|r| r.line).collect();
    assert_eq!(lines, [1, 2]);
}

/// An IPv6 tree as MaxMind writes it: IPv4 at ::/96 (0/1 US, 128/1 NL),
/// aliased at ::ffff:0:0/96, and 8000::/1 in DE.
fn ipv6_database_with_alias() -> Vec<u8> {
    let (ipv4_root, alias_first) = (96, 97);
    let mut nodes = Vec::new();
    for depth in 0..96 {
        let right = match depth {
            0 => To::Data(2),
            80 => To::Node(alias_first),
            _ => To::Empty,
        };
        nodes.push([To::Node(depth + 1), right]);
    }
    nodes.push([To::Data(0), To::Data(1)]);
    // Bits 81..95 of ::ffff:0:0 are ones; the last one leads to IPv4.
    for depth in 81..96 {
        let next = if depth == 95 {
            ipv4_root
        } else {
            nodes.len() + 1
        };
        nodes.push([To::Empty, To::Node(next)]);
    }
    let data = [country("US"), country("NL"), country("DE")];
    database(6, "GeoLite2-Country", &nodes, &data)
}

#[test]
fn ipv4_in_an_ipv6_database_comes_out_once_as_ipv4() {
    let db = parse("x.mmdb", &ipv6_database_with_alias(), false).expect("parses");
    assert_eq!(
        spans(&db.file),
        [
            expect("0.0.0.0", "127.255.255.255", "US"),
            expect("128.0.0.0", "255.255.255.255", "NL"),
            expect("8000::", "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", "DE"),
        ]
    );
    assert!(db.file.ranges[..2].iter().all(GeoRange::is_ipv4));
    let bytes = ipv6_database_with_alias();
    let marker = find_marker("x.mmdb", &bytes).expect("a marker");
    let meta = Reader::from_source(&bytes[..])
        .expect("a database")
        .metadata;
    let (records, offsets) = data_records(&bytes, marker, &meta).expect("records");
    assert_eq!(records, 3);
    assert!(offsets.len() <= 3, "{offsets:?}");
}

fn refusal(bytes: &[u8]) -> String {
    parse("x.mmdb", bytes, false)
        .expect_err("refused")
        .to_string()
}

#[test]
fn a_truncated_database_is_refused_naming_the_file() {
    let db = ipv4_database();
    for cut in [db.len() / 2, db.len() - 5, 10, 0] {
        let why = refusal(&db[..cut]);
        assert!(
            why.starts_with("x.mmdb: not a valid MaxMind DB"),
            "{cut}: {why}"
        );
    }
}

#[test]
fn a_tree_larger_than_the_file_is_refused() {
    let mut big = ipv4_database();
    let meta = metadata(4, "GeoLite2-Country", 1_000_000);
    let marker = big.len() - metadata(4, "GeoLite2-Country", 3).len();
    big.truncate(marker);
    big.extend(meta);
    assert!(
        refusal(&big).contains("does not fit in the file"),
        "{}",
        refusal(&big)
    );
}

#[test]
fn a_record_pointing_past_the_data_is_refused() {
    let mut db = ipv4_database();
    // Node 2's right record: far past the data section.
    db[15..18].copy_from_slice(&[0x7F, 0xFF, 0xFF]);
    assert!(
        refusal(&db).contains("node 2 points outside the file"),
        "{}",
        refusal(&db)
    );
    // Inside the separator: no data lives there.
    db[15..18].copy_from_slice(&[0x00, 0x00, 0x05]);
    assert!(
        refusal(&db).contains("node 2 points outside the file"),
        "{}",
        refusal(&db)
    );
}

#[test]
fn a_loop_in_the_search_tree_is_refused() {
    let nodes = [[To::Node(1), To::Empty], [To::Data(0), To::Node(0)]];
    let db = database(4, "GeoLite2-Country", &nodes, &[country("US")]);
    assert_eq!(
        refusal(&db),
        "x.mmdb: not a valid MaxMind DB: search tree node 1 points back to node 0 (a loop)"
    );
}

#[test]
fn a_shared_subtree_is_no_loop() {
    // Both halves lead to node 1, as MaxMind's aliases lead to IPv4.
    let nodes = [[To::Node(1), To::Node(1)], [To::Data(0), To::Empty]];
    let db = database(4, "GeoLite2-Country", &nodes, &[country("US")]);
    let meta = Reader::from_source(&db[..]).expect("a database").metadata;
    assert_eq!(check_no_loop(&db, &meta), Ok(()));
}

#[test]
fn records_of_another_layout_are_refused_as_such() {
    // ipinfo's layout: `country` is a bare code.
    let nodes = [[To::Data(0), To::Empty]];
    let ipinfo = map(&[("country", string("US"))]);
    let db = database(4, "ipinfo country.mmdb", &nodes, &[ipinfo]);
    let why = refusal(&db);
    assert!(
        why.starts_with("x.mmdb: cannot read its records as GeoIP2 country records"),
        "{why}"
    );
}

#[test]
fn a_damaged_record_is_refused_not_a_panic() {
    let mut db = ipv4_database();
    // The first data record's map claims 28 pairs: decoding runs off the end.
    let data_start = 3 * 6 + SEPARATOR;
    db[data_start] = 0xE0 | 28;
    let why = refusal(&db);
    assert!(why.starts_with("x.mmdb: "), "{why}");
    // A pointer far past the end (the crate's decoder would panic on it):
    // caught by the data check, naming the offset.
    db[data_start..data_start + 5].copy_from_slice(&[0x38, 0xFF, 0xFF, 0xFF, 0x00]);
    assert_eq!(
        refusal(&db),
        "x.mmdb: not a valid MaxMind DB: data section: data offset 4294967040 is past the section's end"
    );
}

#[test]
fn a_pointer_loop_in_the_data_is_refused_not_a_stack_overflow() {
    let mut db = ipv4_database();
    // The first record becomes {"a": <pointer to itself>}: the crate would
    // recurse until the stack overflows and the process aborts.
    let data_start = 3 * 6 + SEPARATOR;
    db[data_start..data_start + 5].copy_from_slice(&[0xE1, 0x41, b'a', 0x20, 0x00]);
    let why = refusal(&db);
    assert!(
        why.starts_with(
            "x.mmdb: not a valid MaxMind DB: data section: data nested deeper than 32 levels"
        ),
        "{why}"
    );
}

#[test]
fn a_database_without_countries_is_refused_with_its_type() {
    let asn = map(&[("autonomous_system_number", uint32(15169))]);
    let nodes = [[To::Data(0), To::Empty]];
    let db = database(4, "GeoLite2-ASN", &nodes, &[asn]);
    assert_eq!(
        refusal(&db),
        "no country data in x.mmdb: database_type GeoLite2-ASN"
    );
}

#[test]
fn a_code_that_is_no_country_is_refused_naming_the_network() {
    let nodes = [[To::Data(0), To::Empty]];
    let db = database(4, "GeoLite2-Country", &nodes, &[country("USA")]);
    let why = refusal(&db);
    assert!(why.starts_with("x.mmdb, network 0.0.0.0/1: `USA`"), "{why}");
}

fn net(text: &str) -> IpNetwork {
    text.parse().expect("a network")
}

fn cc(code: &str) -> Option<Country> {
    Country::parse(code).expect("a code")
}

#[test]
fn ranges_merge_only_adjacent_networks_of_one_country_and_family() {
    let mut r = Ranges::default();
    r.add(net("8.8.8.0/24"), cc("US"));
    r.add(net("8.8.9.0/24"), cc("us"));
    r.add(net("8.8.10.0/24"), cc("DE"));
    r.add(net("8.8.11.0/24"), None);
    r.add(net("8.8.12.0/24"), cc("DE"));
    r.add(net("255.255.255.0/24"), cc("DE"));
    r.add(net("::1:0:0/96"), cc("DE"));
    let file = GeoFile {
        name: "x".into(),
        format: Format::Mmdb,
        ranges: r.ranges,
        unknown: r.unknown,
    };
    assert_eq!(
        spans(&file),
        [
            expect("8.8.8.0", "8.8.9.255", "US"),
            expect("8.8.10.0", "8.8.10.255", "DE"),
            expect("8.8.12.0", "8.8.12.255", "DE"),
            expect("255.255.255.0", "255.255.255.255", "DE"),
            expect("::1:0:0", "::1:ffff:ffff", "DE"),
        ]
    );
    assert_eq!(file.unknown, 1);
}

#[test]
fn an_ipv4_mapped_network_is_ipv4() {
    let mut r = Ranges::default();
    r.add(net("::ffff:1.2.3.0/120"), cc("AU"));
    let first = r.ranges[0];
    assert_eq!((first.lo, first.hi), range("1.2.3.0", "1.2.3.255"));
}

#[test]
fn records_of_each_size_are_read() {
    // Node 1 of each size: left 0x0ABCDEF / right 0x0123456 (28: nibbles).
    let r24 = [0, 0, 0, 0, 0, 0, 0xAB, 0xCD, 0xEF, 0x12, 0x34, 0x56];
    assert_eq!(record(&r24, 24, 1, 0), Some(0xABCDEF));
    assert_eq!(record(&r24, 24, 1, 1), Some(0x123456));
    let r28 = [
        0, 0, 0, 0, 0, 0, 0, 0xAB, 0xCD, 0xEF, 0x71, 0x12, 0x34, 0x56,
    ];
    assert_eq!(record(&r28, 28, 1, 0), Some(0x7AB_CDEF));
    assert_eq!(record(&r28, 28, 1, 1), Some(0x112_3456));
    let r32 = [0, 0, 0, 0, 0, 0, 0, 0, 1, 2, 3, 4, 5, 6, 7, 8];
    assert_eq!(record(&r32, 32, 1, 0), Some(0x0102_0304));
    assert_eq!(record(&r32, 32, 1, 1), Some(0x0506_0708));
    assert_eq!(record(&r24, 24, 2, 0), None, "past the buffer");
    assert_eq!(record(&r24, 20, 0, 0), None, "no such size");
}

#[test]
fn record_kinds() {
    assert_eq!(RecordKind::of(3, 10, 100), RecordKind::Node);
    assert_eq!(RecordKind::of(10, 10, 100), RecordKind::Empty);
    assert_eq!(RecordKind::of(11, 10, 100), RecordKind::Bad);
    assert_eq!(RecordKind::of(26, 10, 100), RecordKind::Data);
    assert_eq!(RecordKind::of(125, 10, 100), RecordKind::Data);
    assert_eq!(RecordKind::of(126, 10, 100), RecordKind::Bad);
}

#[test]
fn the_marker_tells_a_database_from_text() {
    let dir = std::env::temp_dir().join(format!("guardctl-mmdb-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("a temporary directory");
    let (db, text) = (dir.join("x.mmdb"), dir.join("geoip"));
    std::fs::write(&db, ipv4_database()).expect("write");
    std::fs::write(&text, "16777216,16777471,AU\n").expect("write");
    let open = |p: &std::path::Path| std::fs::File::open(p).expect("open");
    assert_eq!(has_marker(&mut open(&db)).ok(), Some(true));
    assert_eq!(has_marker(&mut open(&text)).ok(), Some(false));
    let read = read(&db, "x.mmdb", u64::MAX).expect("reads");
    assert_eq!(read.file.ranges.len(), 2);
    std::fs::remove_dir_all(&dir).expect("clean up");
}
