//! Key-only signaling, sshd's side: compute the set from the store, write
//! `authguard-keyonly.conf` atomically, let `sshd -t` validate the whole
//! configuration (rolling back to the previous file if it refuses), and
//! reload sshd.

use crate::firewall::{Desired, parse_source};
use authguard_core::config::Config;
use authguard_core::keyonly::{KeyOnlyMode, KeyOnlySet, Reload};
use authguard_core::store::Store;
use authguard_core::time::Timestamp;
use ssh_hook::keyonly::{FILE_NAME, render};
use std::path::{Path, PathBuf};
use std::process::Command;

/// The key-only set the policy wants now.
pub fn desired_set(config: &Config, store: &Store, now: Timestamp) -> anyhow::Result<KeyOnlySet> {
    let offenders = store
        .past_offenders(config.keyonly.window_start(now))?
        .iter()
        .filter_map(|s| parse_source(s))
        .collect::<Vec<_>>();
    let countries = store
        .geo_ranges_of(&config.geo.keyonly)?
        .iter()
        .flat_map(|range| range.networks())
        .collect();
    let allowed = Desired::allowed(config, store)?;
    Ok(KeyOnlySet::new(
        &config.keyonly,
        offenders,
        countries,
        &allowed,
    ))
}

/// True when key-only signaling has anything to do: a mode other than
/// `off`, or countries in `[geo] keyonly`.
pub fn wanted(config: &Config) -> bool {
    config.keyonly.mode != KeyOnlyMode::Off || !config.geo.keyonly.is_empty()
}

/// The snippet's path.
pub fn file_path(config: &Config) -> PathBuf {
    config.keyonly.sshd_config_dir.join(FILE_NAME)
}

/// What `apply` did.
#[derive(Debug, PartialEq, Eq)]
pub enum Applied {
    /// The file already said this: nothing written, sshd not reloaded.
    Unchanged,
    /// Written and validated; `reloaded` says whether sshd was told.
    Written { reloaded: bool },
}

/// Writes `text` as the snippet if it differs, validates, reloads.
pub fn apply(config: &Config, text: &str) -> anyhow::Result<Applied> {
    let path = file_path(config);
    let previous = std::fs::read(&path).ok();
    if previous.as_deref() == Some(text.as_bytes()) {
        return Ok(Applied::Unchanged);
    }
    let dir = &config.keyonly.sshd_config_dir;
    std::fs::create_dir_all(dir)
        .map_err(|e| anyhow::anyhow!("cannot create {}: {e}", dir.display()))?;
    replace_file(&path, text.as_bytes())?;
    if let Err(rejected) = validate(&config.keyonly.sshd_config) {
        // Put the previous file back (or none): sshd must never see this one.
        let restored = match &previous {
            Some(old) => replace_file(&path, old),
            None => std::fs::remove_file(&path).map_err(Into::into),
        };
        anyhow::ensure!(
            restored.is_ok(),
            "sshd rejected the new configuration ({rejected}) and the previous {} could not be restored: {:?}",
            path.display(),
            restored.err()
        );
        anyhow::bail!(
            "sshd rejected the configuration with the new {} ({rejected}); the previous file is kept",
            path.display()
        );
    }
    let reloaded = reload(config)?;
    Ok(Applied::Written { reloaded })
}

/// Writes `bytes` to a hidden temp file next to `path` (not matched by
/// `Include *.conf`), syncs it, and renames it over `path`.
fn replace_file(path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    use std::io::Write as _;
    let temp = path.with_file_name(format!(".{FILE_NAME}.new"));
    let mut file = std::fs::File::create(&temp)
        .map_err(|e| anyhow::anyhow!("cannot write {}: {e}", temp.display()))?;
    file.write_all(bytes)?;
    file.sync_all()?;
    std::fs::rename(&temp, path)
        .map_err(|e| anyhow::anyhow!("cannot replace {}: {e}", path.display()))?;
    Ok(())
}

fn sshd() -> &'static str {
    if Path::new("/usr/sbin/sshd").exists() {
        "/usr/sbin/sshd"
    } else {
        "sshd"
    }
}

/// `sshd -t -f CONFIG`: the whole configuration, includes and all.
fn validate(sshd_config: &Path) -> Result<(), String> {
    let out = Command::new(sshd())
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

/// Tells sshd to re-read its config; false when `reload = "none"`.
fn reload(config: &Config) -> anyhow::Result<bool> {
    let argv: Vec<String> = match &config.keyonly.reload {
        Reload::None => return Ok(false),
        Reload::Command(argv) => argv.clone(),
        Reload::Auto if Path::new("/run/systemd/system").exists() => {
            ["systemctl", "reload", "ssh"].map(String::from).to_vec()
        }
        Reload::Auto => {
            let pid = sshd_pid(&config.keyonly.sshd_config)?;
            vec!["kill".into(), "-HUP".into(), pid.to_string()]
        }
    };
    let out = Command::new(&argv[0])
        .args(&argv[1..])
        .output()
        .map_err(|e| anyhow::anyhow!("cannot run {}: {e}", argv[0]))?;
    anyhow::ensure!(
        out.status.success(),
        "reloading sshd failed ({}): {}",
        argv.join(" "),
        String::from_utf8_lossy(&out.stderr).trim()
    );
    Ok(true)
}

/// The pid in sshd's `PidFile` (from `sshd -T`).
fn sshd_pid(sshd_config: &Path) -> anyhow::Result<u32> {
    let out = Command::new(sshd())
        .args(["-T", "-f"])
        .arg(sshd_config)
        .output()?;
    let text = String::from_utf8_lossy(&out.stdout);
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

/// The snippet the policy wants now.
pub fn rendered(
    config: &Config,
    store: &Store,
    now: Timestamp,
) -> anyhow::Result<(KeyOnlySet, String)> {
    let set = desired_set(config, store, now)?;
    let text = render(&set);
    Ok((set, text))
}
