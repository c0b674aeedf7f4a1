//! What every command needs: the config (from `--config`, `AUTHGUARD_CONFIG`
//! or the default path), a logger, and the store opened as the verb needs it.

use crate::BadInput;
use anyhow::Context as _;
use authguard_core::config::{self, Config};
use authguard_core::store::{Access, Store};
use authguard_core::syslog::{Logger, Severity};
use std::path::{Path, PathBuf};

/// Loaded once per run.
#[derive(Debug, Clone)]
pub struct Context {
    pub config: Config,
    pub config_path: PathBuf,
    /// False when the config file did not exist and defaults are in force.
    pub config_found: bool,
    log: Logger,
}

impl Context {
    pub fn load(flag: Option<&Path>) -> anyhow::Result<Context> {
        let env = std::env::var_os("AUTHGUARD_CONFIG").filter(|v| !v.is_empty());
        let (path, explicit) = match (flag, env) {
            (Some(p), _) => (p.to_owned(), true),
            (None, Some(e)) => (PathBuf::from(e), true),
            (None, None) => (PathBuf::from(config::DEFAULT_PATH), false),
        };
        let config =
            Config::load_or_default(&path, explicit).map_err(|e| BadInput(e.to_string()))?;
        let log = Logger::new(&config.log.socket, "authguard");
        Ok(Context {
            config_found: path.exists(),
            config,
            config_path: path,
            log,
        })
    }

    pub fn store_path(&self) -> &Path {
        &self.config.store.path
    }

    /// Opens the store for reading.
    pub fn reader(&self) -> anyhow::Result<Store> {
        Store::open(self.store_path(), Access::Read, self.timeout())
            .with_context(|| format!("cannot read the store {}", self.store_path().display()))
    }

    /// Opens the store for a mutating verb, with a clear error when this
    /// process may not write it.
    pub fn writer(&self) -> anyhow::Result<Store> {
        let path = self.store_path();
        Store::open(path, Access::Write, self.timeout())
            .with_context(|| format!("cannot write the store {}", path.display()))
    }

    /// How long a store operation may wait for another writer.
    pub fn timeout(&self) -> std::time::Duration {
        // A person can wait a little longer than sshd.
        self.config
            .store
            .busy_timeout
            .0
            .max(std::time::Duration::from_secs(5))
    }

    /// A `say` that another thread can own (the fleet link's).
    pub fn sayer(&self) -> impl Fn(&str) + Send + 'static {
        let log = self.log.clone();
        move |message: &str| {
            log.log(Severity::Notice, message);
            eprintln!("authguard: {message}");
        }
    }

    /// Logs to syslog and stderr: the daemon's voice (systemd's journal reads stderr).
    pub fn say(&self, message: &str) {
        self.log.log(Severity::Notice, message);
        eprintln!("authguard: {message}");
    }

    /// Logs an action to syslog (ident `authguard`) as the PAM module logs its decisions.
    pub fn log(&self, message: &str) {
        self.log.log(Severity::Notice, message);
    }
}
