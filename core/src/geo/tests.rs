use super::*;

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

fn summary(file: &GeoFile) -> Vec<(String, String, &str)> {
    file.ranges
        .iter()
        .map(|r| (r.lo.to_string(), r.hi.to_string(), r.country.as_str()))
        .collect()
}

fn malformed(name: &str, data: &str) -> (u64, String) {
    match parse(name, data.as_bytes()) {
        Err(GeoError::Malformed { file, line, what }) => {
            assert_eq!(file, name);
            (line, what)
        }
        other => panic!("expected a malformed line, got {other:?}"),
    }
}

const TOR_V4: &str = "# Last updated based on IPFire Location\n\
    #\n\
    \n\
    15726992,15726999,??\n\
    16777216,16777471,AU\n\
    134744064,134744319,us\r\n";

#[test]
fn tor_v4_lines_comments_and_unknown_countries() {
    let file = parse("geoip", TOR_V4.as_bytes()).unwrap();
    assert_eq!(file.format, Format::TorV4);
    assert_eq!(file.unknown, 1);
    let expected = vec![
        ("1.0.0.0".into(), "1.0.0.255".into(), "AU"),
        ("8.8.8.0".into(), "8.8.8.255".into(), "US"),
    ];
    assert_eq!(summary(&file), expected);
    assert_eq!(file.ranges[0].line, 5);
    assert!(file.ranges.iter().all(GeoRange::is_ipv4));
}

#[test]
fn tor_v6_lines() {
    let data = "# comment\n2001::,2001:0:ffff:ffff:ffff:ffff:ffff:ffff,??\n\
        2001:4860::,2001:4860:ffff:ffff:ffff:ffff:ffff:ffff,US\n";
    let file = parse("geoip6", data.as_bytes()).unwrap();
    assert_eq!(file.format, Format::TorV6);
    assert_eq!(
        summary(&file),
        vec![(
            "2001:4860::".into(),
            "2001:4860:ffff:ffff:ffff:ffff:ffff:ffff".into(),
            "US"
        )]
    );
    assert!(!file.ranges[0].is_ipv4());
}

#[test]
fn dbip_csv_mixes_families_in_one_file() {
    let data = "1.0.0.0,1.0.0.255,AU\n\
        ::ffff:1.0.1.0,::ffff:1.0.1.255,CN\n\
        2001:200::,2001:200:ffff:ffff:ffff:ffff:ffff:ffff,JP\n\
        0.0.0.0,0.255.255.255,ZZ\n";
    let file = parse("dbip-country-lite.csv", data.as_bytes()).unwrap();
    assert_eq!(file.format, Format::Csv);
    assert_eq!(file.unknown, 1);
    let v4: Vec<bool> = file.ranges.iter().map(GeoRange::is_ipv4).collect();
    assert_eq!(v4, [true, true, false]);
}

#[test]
fn ip2location_csv_quoted_integers_and_header() {
    let data = "\"ip_from\",\"ip_to\",\"country_code\",\"country_name\"\n\
        \"0\",\"16777215\",\"-\",\"-\"\n\
        \"16777216\",\"16777471\",\"AU\",\"Australia\"\n\
        \"3238002688\", \"3238008831\" ,\"NL\",\"Netherlands, Kingdom of the\"\n\
        \"0\",\"281470681743359\",\"-\",\"-\"\n\
        \"58568784045719197223097215437582106624\",\"58568784124947359737361553031126056959\",\"us\",\"United States\"\n";
    let file = parse("IP2LOCATION-LITE-DB1.CSV", data.as_bytes()).unwrap();
    assert_eq!(file.format, Format::Csv);
    assert_eq!(file.unknown, 2);
    assert_eq!(
        summary(&file),
        vec![
            ("1.0.0.0".into(), "1.0.0.255".into(), "AU"),
            ("193.0.0.0".into(), "193.0.23.255".into(), "NL"),
            (
                "2c0f:f000::".into(),
                "2c0f:f000:ffff:ffff:ffff:ffff:ffff:ffff".into(),
                "US"
            ),
        ]
    );
}

#[test]
fn format_detection() {
    assert_eq!(Format::detect("16777216,16777471,AU"), Format::TorV4);
    assert_eq!(Format::detect("2001::,2001::ff,US"), Format::TorV6);
    assert_eq!(Format::detect("1.0.0.0,1.0.0.255,AU"), Format::Csv);
    assert_eq!(Format::detect("\"1\",\"2\",\"AU\""), Format::Csv);
    assert_eq!(
        Format::detect("\"2001::\",\"2001::ff\",\"US\""),
        Format::Csv
    );
    assert_eq!(Format::detect("1,2,AU,Australia"), Format::Csv);
}

#[test]
fn malformed_lines_name_file_and_line() {
    let broken = TOR_V4.replace("16777216,16777471,AU", "16777216,16777471");
    assert_eq!(
        malformed("geoip", &broken),
        (5, "expected FROM,TO,COUNTRY (3 fields), found 2".into())
    );
    let cases: &[(&str, u64, &str)] = &[
        ("1,2,AU\nx,3,AU\n", 2, "`x` is not an IPv4 address"),
        ("1,2,AU\n1,4294967296,AU\n", 2, "`4294967296`"),
        ("1,2,AU\n2001::,2001::1,US\n", 2, "`2001::`"),
        ("1,2,USA\n", 1, "`USA` is not a two-letter country code"),
        ("1,2,U1\n", 1, "`U1`"),
        ("5,2,AU\n", 1, "starts after it ends"),
        (
            "# c\n2001::,2001::1,US\n2001::2,nope,US\n",
            3,
            "`nope` is not an IPv6",
        ),
        (
            "1.0.0.0,1.0.0.255,AU\n1.0.1.0,2001::,AU\n",
            2,
            "not of one address family",
        ),
        (
            "1.0.0.0,1.0.0.255,AU\n1.0.1.0,1.0.1.9\n",
            2,
            "at least 3 fields",
        ),
        ("\"1.0.0.0\",\"1.0.0.255,AU\n", 1, "not closed"),
        (
            "1.0.0.0,1.0.0.255,AU\n16777216,1.0.1.9,AU\n",
            2,
            "mix a number and an address",
        ),
        (
            "\"1\",\"2\",AU\n\"1\",\"x\",AU\n",
            2,
            "`x` is not an IP address",
        ),
        (
            "1.0.0.0,1.0.0.255,AU\n1,999999999999999999999999999999999999999999,AU\n",
            2,
            "too large",
        ),
        ("\"1.0.0.0\"x,1.0.0.255,AU\n", 1, "after a quoted field"),
        (
            "1.0.0.0,1.0.0.255,AU\n1.0.1.0,1.0.1.300,AU\n",
            2,
            "`1.0.1.300`",
        ),
    ];
    for (data, line, what) in cases {
        let (got_line, got_what) = malformed("f.csv", data);
        assert_eq!(got_line, *line, "{data:?}: {got_what}");
        assert!(got_what.contains(what), "{data:?}: {got_what}");
    }
    let binary = parse("x.bin", b"1,2,AU\n\xff\xfe,1,AU\n").unwrap_err();
    assert_eq!(
        binary.to_string(),
        "x.bin, line 2: not text (invalid UTF-8)"
    );
}

#[test]
fn a_file_without_ranges_is_refused() {
    for data in ["", "# only comments\n\n"] {
        assert_eq!(
            parse("empty", data.as_bytes()),
            Err(GeoError::Empty {
                file: "empty".into()
            })
        );
    }
    let unknown = parse("unknown", b"1,2,??\n3,4,ZZ\n").unwrap_err();
    assert_eq!(
        unknown,
        GeoError::AllUnknown {
            file: "unknown".into(),
            lines: 2
        }
    );
    assert!(unknown.to_string().contains("unknown country"), "{unknown}");
}

#[test]
fn country_codes() {
    assert_eq!(Country::parse("nl").unwrap().unwrap().as_str(), "NL");
    assert_eq!(Country::parse(" De ").unwrap().unwrap().to_string(), "DE");
    for unknown in ["??", "-", "ZZ"] {
        assert_eq!(Country::parse(unknown), Ok(None));
    }
    for bad in ["", "N", "NLD", "1A", "é"] {
        assert!(Country::parse(bad).is_err(), "{bad:?}");
    }
}

#[test]
fn merge_sorts_files_together_and_refuses_overlaps() {
    let v6 = parse("geoip6", b"2001:4860::,2001:4860::ffff,US\n").unwrap();
    let v4 = parse("geoip", b"16777472,16778239,CN\n16777216,16777471,AU\n").unwrap();
    let merged = merge(&[v6.clone(), v4.clone()]).unwrap();
    let order: Vec<IpAddr> = merged.ranges().iter().map(|r| r.lo).collect();
    assert_eq!(order, [ip("1.0.0.0"), ip("1.0.1.0"), ip("2001:4860::")]);
    assert_eq!(merged.family_counts(), (2, 1));
    let mapped = parse("more.csv", b"::ffff:1.0.0.128,::ffff:1.0.0.130,NZ\n").unwrap();
    assert_eq!(
        merge(&[v4, v6, mapped]),
        Err(GeoError::Overlap {
            file: "more.csv".into(),
            line: 1,
            other_file: "geoip".into(),
            other_line: 2,
        })
    );
}

fn keys(lo: &str, hi: &str) -> ([u8; 16], [u8; 16]) {
    (addr::key_of(ip(lo)), addr::key_of(ip(hi)))
}

fn shown(ranges: &[AddrRange]) -> Vec<String> {
    ranges
        .iter()
        .map(|r| format!("{}-{}", r.lo, r.hi))
        .collect()
}

#[test]
fn coalesce_merges_adjacent_and_overlapping_ranges_per_family() {
    let merged = coalesce([
        keys("198.51.100.0", "198.51.100.127"),
        keys("10.0.0.0", "10.0.0.255"),
        // Adjacent: 10.0.1.0 follows 10.0.0.255.
        keys("10.0.1.0", "10.0.1.255"),
        // Overlapping and inside.
        keys("198.51.100.64", "198.51.100.255"),
        keys("198.51.100.10", "198.51.100.20"),
        // A gap of one address stays a gap.
        keys("198.51.101.1", "198.51.101.1"),
        // The last IPv4 address and the first IPv6 key after the IPv4 block
        // are adjacent keys, but never one range.
        keys("255.255.255.0", "255.255.255.255"),
        keys("::1:0:0:0", "::1:0:0:ff"),
        keys("2001:db8::", "2001:db8::ffff"),
        keys("2001:db8::1:0", "2001:db8:0:0:ffff:ffff:ffff:ffff"),
    ]);
    assert_eq!(
        shown(&merged),
        [
            "10.0.0.0-10.0.1.255",
            "198.51.100.0-198.51.100.255",
            "198.51.101.1-198.51.101.1",
            "255.255.255.0-255.255.255.255",
            "::1:0:0:0-::1:0:0:ff",
            "2001:db8::-2001:db8::ffff:ffff:ffff:ffff",
        ]
    );
    assert!(merged[1].is_ipv4() && !merged[4].is_ipv4());
    assert!(merged[0].contains(ip("10.0.1.7")));
    assert!(merged[0].contains(ip("::ffff:10.0.1.7")));
    assert!(!merged[0].contains(ip("10.0.2.0")));
    assert!(coalesce([]).is_empty());
}

#[test]
fn coalesce_cuts_a_range_that_spans_the_ipv4_block() {
    let merged = coalesce([keys("::fffe:ffff:fff0", "::1:0:0:5")]);
    assert_eq!(
        shown(&merged),
        [
            "::fffe:ffff:fff0-::fffe:ffff:ffff",
            "0.0.0.0-255.255.255.255",
            "::1:0:0:0-::1:0:0:5",
        ]
    );
}

fn networks_of(lo: &str, hi: &str) -> Vec<String> {
    let range = AddrRange {
        lo: ip(lo),
        hi: ip(hi),
    };
    range.networks().iter().map(ToString::to_string).collect()
}

#[test]
fn a_range_becomes_the_fewest_cidrs() {
    assert_eq!(networks_of("10.0.0.0", "10.0.1.255"), ["10.0.0.0/23"]);
    assert_eq!(
        networks_of("198.51.100.5", "198.51.100.17"),
        [
            "198.51.100.5/32",
            "198.51.100.6/31",
            "198.51.100.8/29",
            "198.51.100.16/31",
        ]
    );
    assert_eq!(networks_of("0.0.0.0", "255.255.255.255"), ["0.0.0.0/0"]);
    assert_eq!(
        networks_of("255.255.255.255", "255.255.255.255"),
        ["255.255.255.255/32"]
    );
    assert_eq!(
        networks_of("::", "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff"),
        ["::/0"]
    );
    assert_eq!(
        networks_of("2001:db8::", "2001:db8:1::ffff"),
        ["2001:db8::/48", "2001:db8:1::/112"]
    );
}

proptest::proptest! {
    /// The networks tile the range exactly (in order, touching, none
    /// outside), and a range never needs more than 2 × 31 of them.
    #[test]
    fn cidr_cover_tiles_a_range_exactly(a: u32, b: u32) {
        let (lo, hi) = (a.min(b), a.max(b));
        let nets = networks_of(&Ipv4Addr::from(lo).to_string(), &Ipv4Addr::from(hi).to_string());
        let mut next = u64::from(lo);
        for net in &nets {
            let net: ipnet::Ipv4Net = net.parse().unwrap();
            proptest::prop_assert_eq!(u64::from(u32::from(net.network())), next);
            next = u64::from(u32::from(net.broadcast())) + 1;
        }
        proptest::prop_assert_eq!(next, u64::from(hi) + 1);
        proptest::prop_assert!(nets.len() <= 62, "{} networks", nets.len());
    }
}
