//! The installed sshd as guardctl asks it things: `sshd -t` (is the whole
//! configuration valid), `sshd -T -C …` (the effective settings for one
//! connection), the pid in its `PidFile`, and whether anything listens on
//! a TCP port (from `/proc/net/tcp*`, in guardctl's network namespace).

use std::path::Path;
use std::process::Command;

/// `/usr/sbin/sshd` where it exists, else `sshd` from `PATH`.
pub fn binary() -> &'static str {
    if Path::new("/usr/sbin/sshd").exists() {
        "/usr/sbin/sshd"
    } else {
        "sshd"
    }
}

/// `sshd -t -f CONFIG`: the whole configuration, includes and all.
pub fn validate(sshd_config: &Path) -> Result<(), String> {
    let out = Command::new(binary())
        .arg("-t")
        .arg("-f")
        .arg(sshd_config)
        .output()
        .map_err(|e| format!("cannot run sshd -t: {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(String::from_utf8_lossy(&out.stderr).trim().to_owned())
    }
}

/// `sshd -T -f CONFIG -C SPEC [EXTRA…]`: one `keyword value` per line.
/// `SPEC` must name `lport`: once any `Match LocalPort` exists (the
/// key-only listener's block), sshd refuses `-T` without it.
pub fn effective(sshd_config: &Path, spec: &str, extra: &[String]) -> Result<String, String> {
    let out = Command::new(binary())
        .arg("-T")
        .arg("-f")
        .arg(sshd_config)
        .arg("-C")
        .arg(spec)
        .args(extra)
        .output()
        .map_err(|e| format!("cannot run {} -T: {e}", binary()))?;
    if !out.status.success() {
        let err = String::from_utf8_lossy(&out.stderr);
        return Err(err.lines().last().unwrap_or("it failed").to_owned());
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// The pid in sshd's `PidFile` (from `sshd -T`).
pub fn pid(sshd_config: &Path, lport: u16) -> anyhow::Result<u32> {
    let text = effective(sshd_config, &format!("lport={lport}"), &[]).unwrap_or_default();
    let pidfile = text
        .lines()
        .find_map(|l| l.strip_prefix("pidfile "))
        .unwrap_or("/run/sshd.pid")
        .trim()
        .to_owned();
    let pid = std::fs::read_to_string(&pidfile)
        .map_err(|e| anyhow::anyhow!("sshd does not seem to run ({pidfile}: {e})"))?;
    pid.trim()
        .parse()
        .map_err(|_| anyhow::anyhow!("{pidfile} holds no pid"))
}

/// True when a TCP socket listens on `port` (any address, IPv4 or IPv6).
pub fn listening_on(port: u16) -> bool {
    ["/proc/net/tcp", "/proc/net/tcp6"]
        .iter()
        .any(|table| std::fs::read_to_string(table).is_ok_and(|text| listens_in(&text, port)))
}

/// The remote addresses of established TCP connections to one of `ports`
/// (SSH sessions, for those the guarded ports), IPv4 and IPv6.
pub fn established_from(ports: &[u16]) -> Vec<std::net::IpAddr> {
    ["/proc/net/tcp", "/proc/net/tcp6"]
        .iter()
        .filter_map(|table| std::fs::read_to_string(table).ok())
        .flat_map(|text| established_in(&text, ports))
        .collect()
}

fn established_in(table: &str, ports: &[u16]) -> Vec<std::net::IpAddr> {
    table
        .lines()
        .skip(1)
        .filter_map(|row| {
            let mut fields = row.split_whitespace().skip(1);
            let (local, remote, state) = (fields.next()?, fields.next()?, fields.next()?);
            let port = u16::from_str_radix(local.rsplit_once(':')?.1, 16).ok()?;
            (state == "01" && ports.contains(&port)).then_some(())?;
            proc_address(remote.rsplit_once(':')?.0)
        })
        .collect()
}

/// An address as `/proc/net/tcp*` writes it: 32-bit words in host (little-
/// endian) byte order, one word for IPv4, four for IPv6.
fn proc_address(hex: &str) -> Option<std::net::IpAddr> {
    let word = |i: usize| {
        u32::from_str_radix(hex.get(i * 8..i * 8 + 8)?, 16)
            .ok()
            .map(u32::swap_bytes)
    };
    match hex.len() {
        8 => Some(std::net::Ipv4Addr::from(word(0)?).into()),
        32 => {
            let mut octets = [0u8; 16];
            for i in 0..4 {
                octets[i * 4..i * 4 + 4].copy_from_slice(&word(i)?.to_be_bytes());
            }
            Some(authguard_core::addr::canonical(
                std::net::Ipv6Addr::from(octets).into(),
            ))
        }
        _ => None,
    }
}

/// The `/proc/net/tcp` rows: `sl local_address rem_address st …`, the
/// address `HEX:PORTHEX`, state `0A` for LISTEN.
fn listens_in(table: &str, port: u16) -> bool {
    table.lines().skip(1).any(|row| {
        let mut fields = row.split_whitespace().skip(1);
        let local = fields.next().unwrap_or_default();
        let state = fields.nth(1).unwrap_or_default();
        state == "0A"
            && local
                .rsplit_once(':')
                .and_then(|(_, hex)| u16::from_str_radix(hex, 16).ok())
                == Some(port)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn established_sessions_are_read_from_proc() {
        let v4 = "  sl  local_address rem_address   st\n   0: 0100007F:0016 0A7100CB:D431 01 0\n   1: 00000000:0016 00000000:0000 0A 0\n   2: 0100007F:1F90 0B7100CB:D431 01 0\n";
        let ip = |s: &str| s.parse::<std::net::IpAddr>().unwrap();
        assert_eq!(established_in(v4, &[22]), [ip("203.0.113.10")]);
        let v6 = "  sl  local_address rem_address st\n   0: 00000000000000000000000001000000:0016 B80D0120000000000000000001000000:9C40 01 0\n";
        assert_eq!(established_in(v6, &[22]), [ip("2001:db8::1")]);
        assert_eq!(proc_address("zz"), None);
    }

    #[test]
    fn a_listening_socket_is_read_from_proc_net_tcp() {
        let table = "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n\
            0: 00000000:08AF 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 1 1\n\
            1: 0100007F:0016 0100007F:D2F0 01 00000000:00000000 00:00000000 00000000     0        0 2 1\n";
        assert!(listens_in(table, 2223));
        assert!(
            !listens_in(table, 22),
            "an established connection is no listener"
        );
        let socket = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = socket.local_addr().unwrap().port();
        assert!(listening_on(port));
        drop(socket);
        assert!(!listening_on(port));
    }
}
