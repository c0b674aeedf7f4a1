//! What the installed sshd really does with PAM and its own penalties: read
//! from `sshd -T` (its effective settings, whatever its version's defaults)
//! and, for `PAMServiceName` inside `Match` blocks that `-T` does not show,
//! from the config files themselves.

use super::Finding;
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

/// The sshd whose settings are checked.
const SSHD: &str = "/usr/sbin/sshd";

/// The findings about sshd: UsePAM, the PAM services it uses, and
/// PerSourceNetBlockSize. `pam_file` is the service file checked for the
/// authguard line (`/etc/pam.d/sshd`); other services are looked up beside it.
pub(super) fn findings(sshd_config: &Path, pam_file: &Path, lport: u16) -> Vec<Finding> {
    let dump = match effective_settings(sshd_config, lport) {
        Ok(dump) => dump,
        Err(why) => {
            return vec![Finding::warning(
                format!("cannot read sshd's effective settings ({SSHD} -T): {why}"),
                "run `guardctl check` as root on the machine sshd runs on".into(),
            )];
        }
    };
    let settings = Settings::parse(&dump);
    let mut findings = vec![use_pam_finding(&settings)];
    findings.extend(services_finding(&settings, sshd_config, pam_file));
    findings.extend(net_block_finding(&settings));
    findings
}

/// `sshd -T -f CONFIG -C lport=PORT`: one `keyword value` per line,
/// keywords in lower case (the key-only listener's `Match LocalPort` makes
/// `-T` without `lport` fail).
fn effective_settings(sshd_config: &Path, lport: u16) -> Result<String, String> {
    crate::sshd::effective(sshd_config, &format!("lport={lport}"), &[])
}

/// The settings these findings need, from `sshd -T`.
#[derive(Debug, Default, PartialEq, Eq)]
struct Settings {
    use_pam: bool,
    /// `pamservicename` (OpenSSH 9.8+); `None` for older sshd, where the
    /// service is always `sshd`.
    pam_service: Option<String>,
    /// `persourcepenalties` is shown (9.8+) and not `no`.
    penalties: bool,
    /// The IPv6 half of `persourcenetblocksize` (`32:128` gives 128).
    ipv6_block: Option<u8>,
}

impl Settings {
    fn parse(dump: &str) -> Settings {
        let mut settings = Settings::default();
        for line in dump.lines() {
            let Some((key, value)) = line.split_once(' ') else {
                continue;
            };
            match key {
                "usepam" => settings.use_pam = value == "yes",
                "pamservicename" => settings.pam_service = Some(value.to_owned()),
                "persourcepenalties" => settings.penalties = value != "no",
                "persourcenetblocksize" => {
                    settings.ipv6_block = value.split_once(':').and_then(|(_, v)| v.parse().ok());
                }
                _ => {}
            }
        }
        settings
    }
}

fn use_pam_finding(settings: &Settings) -> Finding {
    if settings.use_pam {
        Finding::ok("sshd uses PAM (UsePAM yes)".into())
    } else {
        Finding::fail(
            "sshd has UsePAM no: the PAM module never runs, so nothing is guarded inline".into(),
            Some("set `UsePAM yes` in /etc/ssh/sshd_config (Debian's default)".into()),
        )
    }
}

/// Every PAM service sshd may use (the global `PAMServiceName` and any in
/// `Match` blocks) must have the authguard line, or logins sent there are
/// not guarded.
fn services_finding(settings: &Settings, sshd_config: &Path, pam_file: &Path) -> Option<Finding> {
    let mut services: BTreeSet<String> = settings.pam_service.iter().cloned().collect();
    services.extend(configured_services(sshd_config));
    let checked = pam_file.file_name()?.to_string_lossy().into_owned();
    let pam_dir = pam_file.parent()?;
    let unguarded: Vec<String> = services
        .into_iter()
        .filter(|s| *s != checked && !crate::pam_file::uses_module(&pam_dir.join(s)))
        .collect();
    if unguarded.is_empty() {
        return None;
    }
    let names = unguarded.join(", ");
    Some(Finding::fail(
        format!(
            "sshd's PAMServiceName sends logins to PAM service(s) {names} without pam_authguard.so: those logins are not guarded"
        ),
        Some(format!(
            "add `auth requisite pam_authguard.so` above `@include common-auth` in {}",
            unguarded
                .iter()
                .map(|s| pam_dir.join(s).display().to_string())
                .collect::<Vec<_>>()
                .join(" and ")
        )),
    ))
}

/// The `PAMServiceName` values written in sshd's config and the files it
/// includes (`sshd -T` shows only the global one, not those in `Match` blocks).
fn configured_services(sshd_config: &Path) -> BTreeSet<String> {
    let mut services = BTreeSet::new();
    let mut pending = vec![sshd_config.to_path_buf()];
    let mut seen = BTreeSet::new();
    while let Some(path) = pending.pop() {
        if !seen.insert(path.clone()) || seen.len() > 256 {
            continue;
        }
        let Ok(text) = std::fs::read_to_string(&path) else {
            continue;
        };
        for line in text.lines() {
            let mut words = line.split('#').next().unwrap_or("").split_whitespace();
            match words.next() {
                Some(k) if k.eq_ignore_ascii_case("pamservicename") => {
                    services.extend(words.next().map(str::to_owned));
                }
                Some(k) if k.eq_ignore_ascii_case("include") => {
                    pending.extend(words.flat_map(included_files));
                }
                _ => {}
            }
        }
    }
    services
}

/// The files an `Include` pattern names: relative to /etc/ssh, with `*` in
/// the last component only (what Debian's configs use).
fn included_files(pattern: &str) -> Vec<PathBuf> {
    let path = Path::new("/etc/ssh").join(pattern);
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let Some((prefix, suffix)) = name.split_once('*') else {
        return vec![path];
    };
    let Some(dir) = path.parent() else {
        return Vec::new();
    };
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut files: Vec<PathBuf> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            p.file_name()
                .map(|n| n.to_string_lossy())
                .is_some_and(|n| n.starts_with(prefix) && n.ends_with(suffix))
        })
        .collect();
    files.sort();
    files
}

/// With PerSourcePenalties on, sshd counts IPv6 per /128 by default, while
/// authguard counts per /64: a source that rotates through its /64 escapes
/// sshd's penalties but not authguard.
fn net_block_finding(settings: &Settings) -> Option<Finding> {
    if !settings.penalties {
        return None;
    }
    Some(match settings.ipv6_block {
        Some(64) => {
            Finding::ok("sshd's PerSourcePenalties count IPv6 per /64, as authguard does".into())
        }
        block => Finding::warning(
            format!(
                "sshd's PerSourcePenalties count IPv6 per /{}; authguard counts per /64",
                block.map_or("?".into(), |b| b.to_string())
            ),
            "add `PerSourceNetBlockSize 32:64` to /etc/ssh/sshd_config.d/authguard.conf".into(),
        ),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_openssh_10_and_9_2_dumps() {
        let ten = "port 22\nusepam yes\npamservicename sshd\npersourcepenalties crash:90s authfail:5s\n\
                   persourcenetblocksize 32:128\n";
        assert_eq!(
            Settings::parse(ten),
            Settings {
                use_pam: true,
                pam_service: Some("sshd".into()),
                penalties: true,
                ipv6_block: Some(128),
            }
        );
        let nine = "usepam no\npersourcenetblocksize 32:128\n";
        assert_eq!(
            Settings::parse(nine),
            Settings {
                use_pam: false,
                pam_service: None,
                penalties: false,
                ipv6_block: Some(128),
            }
        );
        let off = Settings::parse("usepam yes\npersourcepenalties no\n");
        assert!(!off.penalties && net_block_finding(&off).is_none());
    }

    #[test]
    fn use_pam_no_fails_and_the_ipv6_block_is_recommended() {
        assert!(!use_pam_finding(&Settings::default()).ok);
        let default_block = Settings {
            penalties: true,
            ipv6_block: Some(128),
            ..Settings::default()
        };
        let f = net_block_finding(&default_block).expect("a finding");
        assert!(f.warn && f.what.contains("/128"), "{}", f.what);
        let ours = Settings {
            ipv6_block: Some(64),
            ..default_block
        };
        assert!(!net_block_finding(&ours).expect("a finding").warn);
    }

    #[test]
    fn services_in_match_blocks_and_includes_are_found_and_checked() {
        let dir = std::env::temp_dir().join(format!("guardctl-check-sshd-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir(&dir).expect("mkdir");
        let conf_d = dir.join("sshd_config.d");
        std::fs::create_dir(&conf_d).expect("mkdir");
        let main = dir.join("sshd_config");
        std::fs::write(
            &main,
            format!(
                "Include {}/*.conf\nUsePAM yes\nMatch User backup\n\tPAMServiceName sshd-backup\n",
                conf_d.display()
            ),
        )
        .expect("write");
        std::fs::write(
            conf_d.join("x.conf"),
            "Match Address 10.0.0.0/8\n  pamservicename lan # ours\n",
        )
        .expect("write");
        let found = configured_services(&main);
        assert_eq!(
            found.into_iter().collect::<Vec<_>>(),
            ["lan", "sshd-backup"]
        );
        let pam = dir.join("pam.d");
        std::fs::create_dir(&pam).expect("mkdir");
        std::fs::write(
            pam.join("sshd"),
            "auth requisite pam_authguard.so\n@include common-auth\n",
        )
        .expect("write");
        std::fs::write(
            pam.join("lan"),
            "auth requisite pam_authguard.so\n@include common-auth\n",
        )
        .expect("write");
        std::fs::write(pam.join("sshd-backup"), "@include common-auth\n").expect("write");
        let settings = Settings {
            use_pam: true,
            pam_service: Some("sshd".into()),
            ..Settings::default()
        };
        let f = services_finding(&settings, &main, &pam.join("sshd")).expect("a finding");
        assert!(!f.ok, "{}", f.what);
        assert!(
            f.what.contains("sshd-backup") && !f.what.contains("lan"),
            "{}",
            f.what
        );
        std::fs::write(pam.join("sshd-backup"), "auth requisite pam_authguard.so\n")
            .expect("write");
        assert!(services_finding(&settings, &main, &pam.join("sshd")).is_none());
        let _ = std::fs::remove_dir_all(&dir);
    }
}
