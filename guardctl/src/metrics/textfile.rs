//! The metrics textfile for node_exporter's textfile collector: written
//! atomically ([`write_textfile`]), and rewritten by the daemon's own
//! thread every `[metrics] interval` ([`start`]) on its own read-only
//! store connection, so counting rows never delays a firewall pass.

use authguard_core::config::Config;
use authguard_core::store::{Access, Store};
use authguard_core::time;
use std::io::Write as _;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// Writes `text` as `path` atomically: a temporary file in the same
/// directory (a name node_exporter ignores: not `*.prom`), synced, mode
/// 0644 (node_exporter runs as its own user), renamed over `path`, and
/// the directory synced. A reader sees the old file or the new, whole.
pub fn write_textfile(path: &Path, text: &str) -> std::io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    let dir = path.parent().unwrap_or(Path::new("/"));
    let name = path.file_name().unwrap_or_default().to_string_lossy();
    let temp = dir.join(format!(".{name}.{}.tmp", std::process::id()));
    let written = (|| {
        let mut file = std::fs::File::create(&temp)?;
        file.set_permissions(std::fs::Permissions::from_mode(0o644))?;
        file.write_all(text.as_bytes())?;
        file.sync_all()?;
        std::fs::rename(&temp, path)?;
        std::fs::File::open(dir)?.sync_all()
    })();
    if written.is_err() {
        let _ = std::fs::remove_file(&temp);
    }
    written
}

/// The daemon's textfile writer; stops (and joins) when dropped.
#[derive(Debug)]
pub struct Writer {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Drop for Writer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Starts rewriting `[metrics] textfile` every `[metrics] interval`, or
/// None when it is `""`. What it does is said once, and again when that
/// changes (written, or why not); a failure never stops the daemon.
pub fn start(
    config: &Config,
    timeout: Duration,
    say: impl Fn(&str) + Send + 'static,
) -> Option<Writer> {
    let path = config.metrics.textfile.0.clone()?;
    let config = config.clone();
    let stop = Arc::new(AtomicBool::new(false));
    let stopped = Arc::clone(&stop);
    let thread = std::thread::spawn(move || {
        let interval = config.metrics.interval.0;
        let mut store = None;
        let mut said = String::new();
        while !stopped.load(Ordering::Relaxed) {
            let message = match pass(&config, &path, timeout, &mut store) {
                Ok(()) => format!("metrics: writing {} every {interval}", path.display()),
                Err(why) => format!("metrics: not writing {}: {why}", path.display()),
            };
            if message != said {
                say(&message);
                said = message;
            }
            pause(interval.0, &stopped);
        }
    });
    Some(Writer {
        stop,
        thread: Some(thread),
    })
}

/// Renders the metrics and writes the file once; the store connection is
/// opened on first use and again after a fault.
fn pass(
    config: &Config,
    path: &Path,
    timeout: Duration,
    store: &mut Option<Store>,
) -> Result<(), String> {
    let dir = path.parent().unwrap_or(Path::new("/"));
    if !dir.is_dir() {
        return Err(format!("directory {} does not exist", dir.display()));
    }
    if store.is_none() {
        let opened = Store::open(&config.store.path, Access::Read, timeout);
        *store = Some(opened.map_err(|e| e.to_string())?);
    }
    let Some(reader) = store.as_ref() else {
        return Err("no store".into());
    };
    let text = match super::render(config, reader, time::now()) {
        Ok(text) => text,
        Err(e) => {
            *store = None;
            return Err(e.to_string());
        }
    };
    write_textfile(path, &text).map_err(|e| e.to_string())
}

/// Sleeps `d`, waking early when asked to stop.
pub(crate) fn pause(d: Duration, stop: &AtomicBool) {
    let until = Instant::now() + d;
    while !stop.load(Ordering::Relaxed) && Instant::now() < until {
        std::thread::sleep(Duration::from_millis(100).min(until - Instant::now()));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_textfile_is_replaced_whole_and_readable_by_node_exporter() {
        use std::os::unix::fs::PermissionsExt;
        let dir = std::env::temp_dir().join(format!("ag-textfile-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("authguard.prom");
        write_textfile(&path, "authguard_x 1\n").unwrap();
        write_textfile(&path, "authguard_x 2\n").unwrap();
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "authguard_x 2\n");
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o644);
        let names: Vec<_> = std::fs::read_dir(&dir)
            .unwrap()
            .flatten()
            .map(|e| e.file_name())
            .collect();
        assert_eq!(names, ["authguard.prom"], "no temporary file left");
        assert!(write_textfile(&dir.join("gone/authguard.prom"), "x").is_err());
        let _ = std::fs::remove_dir_all(&dir);
    }
}
