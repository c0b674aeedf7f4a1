//! What a blocked country costs each new connection in the kernel: TCP
//! connects to port 22 (nothing listens, so each is answered with a reset)
//! from an address in no country, inside the load part's namespace. The
//! SYN goes through the input chain like an outsider's would: past the
//! allow sets, into chain `geo` (one hash lookup per prefix length), out
//! again, then the ban sets. The time per connect is mostly the socket
//! calls; the difference between states is what the rules cost.

use crate::firewall::Netns;
use anyhow::{Context, Result, bail};

/// The source: TEST-NET-2, in no country's data and not allowed.
pub const SOURCE: &str = "198.51.100.7";

/// Connects per run.
pub const CONNECTS: usize = 20_000;

/// Runs per figure (the median is kept).
const RUNS: usize = 3;

/// `CONNECTS` connects from `SOURCE` to itself on port 22; prints the
/// seconds they took.
const SCRIPT: &str = r#"
import socket, sys, time
src, n = sys.argv[1], int(sys.argv[2])
t0 = time.perf_counter()
for _ in range(n):
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.bind((src, 0))
    try:
        s.connect((src, 22))
    except ConnectionRefusedError:
        pass
    s.close()
print(time.perf_counter() - t0)
"#;

/// Gives the namespace's loopback `SOURCE`.
pub fn prepare(ns: &Netns) -> Result<()> {
    for args in [
        &["link", "set", "lo", "up"][..],
        &["addr", "add", &format!("{SOURCE}/32"), "dev", "lo"],
    ] {
        let status = ns.cmd("ip").args(args).status()?;
        if !status.success() {
            bail!("ip {} failed in the namespace", args.join(" "));
        }
    }
    Ok(())
}

/// Microseconds per connect, the median of `RUNS` runs.
pub fn per_connect_us(ns: &Netns) -> Result<f64> {
    let mut runs = Vec::new();
    for _ in 0..RUNS {
        let out = ns
            .cmd("python3")
            .args(["-c", SCRIPT, SOURCE, &CONNECTS.to_string()])
            .output()?;
        if !out.status.success() {
            bail!(
                "the connect loop failed: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        let secs: f64 = String::from_utf8_lossy(&out.stdout)
            .trim()
            .parse()
            .context("the connect loop printed no time")?;
        runs.push(secs * 1e6 / CONNECTS as f64);
    }
    runs.sort_by(f64::total_cmp);
    Ok(runs[RUNS / 2])
}
