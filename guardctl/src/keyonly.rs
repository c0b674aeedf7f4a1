//! Key-only signaling, sshd's side: compute the snippet, write
//! `authguard-keyonly.conf` atomically, let `sshd -t` validate the whole
//! configuration (rolling back to the previous file if it refuses), and
//! reload sshd when the file changed.
//!
//! With `method = "redirect"` the snippet is the key-only listener: it
//! depends on sshd's own ports, not on the offenders, so it is written (and
//! sshd reloaded) once; the firewall does the rest (`firewall::steering`).
//! With `method = "reload"` it names the key-only networks, and changes
//! with them.

use crate::sshd;
use authguard_core::config::{Config, FirewallBackend};
use authguard_core::config::{KeyOnlyMode, Reload};
use authguard_core::policy::keyonly::KeyOnlySet;
use authguard_core::store::Store;
use authguard_core::time::Timestamp;
use ssh_hook::keyonly::{FILE_NAME, Listening, plan_listener, render, render_listener};
use std::path::{Path, PathBuf};
use std::process::Command;

/// The key-only set the policy wants now.
pub fn desired_set(config: &Config, store: &Store, now: Timestamp) -> anyhow::Result<KeyOnlySet> {
    let countries = store.geo_networks_of(&config.geo.keyonly)?;
    Ok(store.key_only_set(config, now, countries)?)
}

/// True when key-only signaling has anything to do: a mode other than
/// `off`, or countries in `[geo] keyonly`.
pub fn wanted(config: &Config) -> bool {
    config.keyonly.mode != KeyOnlyMode::Off || !config.geo.keyonly.is_empty()
}

/// True when nftables steers key-only sources to the key-only listener.
pub fn redirects(config: &Config) -> bool {
    config
        .keyonly
        .redirects(config.firewall.backend == FirewallBackend::Nftables)
}

/// True when the snippet is the key-only listener (`redirect`, and
/// anybody to make key-only).
pub fn wants_listener(config: &Config) -> bool {
    redirects(config) && wanted(config)
}

/// True when the firewall should steer now: the listener is wanted and
/// something listens on its port (steering to a port nobody serves would
/// shut key holders out).
pub fn steers(config: &Config) -> bool {
    wants_listener(config) && sshd::listening_on(config.keyonly.port)
}

/// The snippet's path.
pub fn file_path(config: &Config) -> PathBuf {
    config.keyonly.sshd_config_dir.join(FILE_NAME)
}

/// A port of the guarded ones, for `sshd -T -C lport=…`.
fn main_port(config: &Config) -> u16 {
    config.firewall.ports.first().copied().unwrap_or(22)
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
    let checked = sshd::validate(&config.keyonly.sshd_config).and_then(|()| {
        if wants_listener(config) {
            verify_listener(config)
        } else {
            Ok(())
        }
    });
    if let Err(rejected) = checked {
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

/// Asks sshd what a connection to the key-only port gets: only public
/// keys, or an error naming what overrides it (a `Match` block read before
/// ours: an earlier drop-in, or one above the main config's `Include`).
fn verify_listener(config: &Config) -> Result<(), String> {
    let port = config.keyonly.port;
    let spec =
        format!("lport={port},laddr=192.0.2.1,addr=198.51.100.1,user=authguard-check,host=check");
    let dump = sshd::effective(&config.keyonly.sshd_config, &spec, &[])?;
    let wants = [
        "authenticationmethods publickey",
        "passwordauthentication no",
        "kbdinteractiveauthentication no",
    ];
    let missing: Vec<&str> = wants
        .into_iter()
        .filter(|w| !dump.lines().any(|l| l == *w))
        .collect();
    if missing.is_empty() {
        Ok(())
    } else {
        Err(format!(
            "connections to the key-only port {port} would not get {} (a Match block read before {FILE_NAME} sets otherwise)",
            missing.join(", ")
        ))
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
            let pid = sshd::pid(&config.keyonly.sshd_config, main_port(config))?;
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

/// The snippet the policy wants now, with the set it was made for.
pub fn rendered(
    config: &Config,
    store: &Store,
    now: Timestamp,
) -> anyhow::Result<(KeyOnlySet, String)> {
    let set = desired_set(config, store, now)?;
    let text = snippet(config, &set)?;
    Ok((set, text))
}

/// The snippet for `set`: the key-only listener (`redirect`, which does not
/// depend on the set), or `Match Address` blocks naming it.
pub fn snippet(config: &Config, set: &KeyOnlySet) -> anyhow::Result<String> {
    if wants_listener(config) {
        listener_snippet(config)
    } else {
        Ok(render(set))
    }
}

/// The key-only listener's snippet: every listener sshd has now, plus the
/// key-only port on each address (see `ssh_hook::keyonly::plan_listener`).
fn listener_snippet(config: &Config) -> anyhow::Result<String> {
    let port = config.keyonly.port;
    let current = std::fs::read_to_string(file_path(config)).unwrap_or_default();
    let ours = Listening::of_snippet(&current);
    let probe = ours.ports.is_empty();
    let extra = if probe {
        vec!["-o".to_owned(), format!("Port={port}")]
    } else {
        Vec::new()
    };
    let spec = format!("lport={}", main_port(config));
    let dump = sshd::effective(&config.keyonly.sshd_config, &spec, &extra).map_err(|e| {
        anyhow::anyhow!(
            "cannot read where sshd listens ({} -T): {e}",
            sshd::binary()
        )
    })?;
    let plan = plan_listener(port, &Listening::of_sshd_t(&dump), &ours, probe)?;
    Ok(render_listener(port, &plan))
}
