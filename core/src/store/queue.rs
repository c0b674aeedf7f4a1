//! The queue login writers wait their turn in: an exclusive `flock(2)` on
//! `<store>-queue`, taken before `BEGIN IMMEDIATE` and let go after the
//! commit, so that sshd processes take the write lock one after the other,
//! in the order they came, each asleep in the kernel until its turn.
//!
//! Why not SQLite's lock alone: SQLite never waits in the kernel for its
//! write lock; a waiter polls (`Store::begin_immediate`). A flood of logins
//! (`authguard-bench flood`: 256 sshd processes at once, 2 cores) showed
//! the two ways polling runs out `busy_timeout` and admits uncounted:
//! waiters that retry every millisecond burn the CPU the lock holder
//! needs (throughput fell from ~1,800 to ~240 decisions/s, so 256 waiters
//! took more than a second to drain), and waiters that sleep longer get
//! the lock in no order at all, so an unlucky one loses until its timeout
//! while newcomers walk in. Linux queues blocked `flock` waiters in a
//! chain (each behind the one before it) and wakes one per release: no
//! CPU is spent waiting and nobody is overtaken.
//!
//! `flock` has no timeout, and sshd must never wait past `busy_timeout`,
//! so a contended wait runs in a short-lived thread and the login waits
//! for it at most the time left. A thread whose login gave up takes its
//! turn when it comes and gives it back at once (its [`Turn`] unlocks
//! when dropped, explicitly: a forked child sharing the descriptor does
//! not keep the lock). Anything unusual (no queue file can be made, no
//! thread can be started, flock fails) falls back to SQLite's lock alone,
//! which is what makes admission correct; the queue only makes it fair.

use super::StoreError;
use std::fs::{File, OpenOptions, TryLockError};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::time::Duration;

/// A turn in the queue; given back when dropped.
#[derive(Debug)]
pub(super) struct Turn(Option<File>);

impl Drop for Turn {
    fn drop(&mut self) {
        if let Some(file) = &self.0 {
            let _ = file.unlock();
        }
    }
}

/// The queue's file beside the store.
fn queue_path(store: &Path) -> PathBuf {
    let mut name = store.as_os_str().to_owned();
    name.push("-queue");
    PathBuf::from(name)
}

/// Waits for this login's turn, at most `timeout`.
pub(super) fn wait_turn(store: &Path, timeout: Duration) -> Result<Turn, StoreError> {
    let Ok(file) = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .mode(0o600)
        .open(queue_path(store))
    else {
        return Ok(Turn(None));
    };
    // std's file locks are flock(2) on Linux.
    match file.try_lock() {
        Ok(()) => return Ok(Turn(Some(file))),
        Err(TryLockError::WouldBlock) => {}
        Err(TryLockError::Error(_)) => return Ok(Turn(None)),
    }
    let (tx, rx) = mpsc::sync_channel::<Turn>(1);
    let waiter = std::thread::Builder::new()
        .name("authguard-queue".into())
        .spawn(move || {
            if file.lock().is_ok() {
                // Sent, or dropped here (unlocking) if the login gave up.
                let _ = tx.try_send(Turn(Some(file)));
            }
        });
    if waiter.is_err() {
        return Ok(Turn(None));
    }
    match rx.recv_timeout(timeout) {
        Ok(turn) => Ok(turn),
        Err(mpsc::RecvTimeoutError::Timeout) => Err(StoreError::Busy(timeout)),
        // The waiter ended without the lock: flock failed; SQLite alone.
        Err(mpsc::RecvTimeoutError::Disconnected) => Ok(Turn(None)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Instant;

    fn temp(name: &str) -> PathBuf {
        let dir =
            std::env::temp_dir().join(format!("authguard-queue-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        dir.join("authguard.db")
    }

    #[test]
    fn turns_are_exclusive_bounded_and_given_back() {
        let store = temp("bounded");
        let first = wait_turn(&store, Duration::from_secs(1)).unwrap();
        assert!(first.0.is_some(), "the queue file was made and locked");
        let t = Instant::now();
        let second = wait_turn(&store, Duration::from_millis(100));
        assert!(matches!(second, Err(StoreError::Busy(_))));
        let waited = t.elapsed();
        assert!(
            waited >= Duration::from_millis(100) && waited < Duration::from_millis(600),
            "{waited:?}"
        );
        drop(first);
        // The thread that gave up took its turn and gave it back at once.
        let third = wait_turn(&store, Duration::from_secs(1)).unwrap();
        assert!(third.0.is_some());
        drop(third);
        std::fs::remove_dir_all(store.parent().unwrap()).unwrap();
    }

    #[test]
    fn waiters_are_served_in_the_order_they_came() {
        let store = temp("fifo");
        let held = wait_turn(&store, Duration::from_secs(5)).unwrap();
        let (tx, rx) = mpsc::channel();
        let mut joins = Vec::new();
        for i in 0..5 {
            let (store, tx) = (store.clone(), tx.clone());
            joins.push(std::thread::spawn(move || {
                let turn = wait_turn(&store, Duration::from_secs(5)).unwrap();
                tx.send(i).unwrap();
                std::thread::sleep(Duration::from_millis(5));
                drop(turn);
            }));
            // Each in line before the next comes.
            std::thread::sleep(Duration::from_millis(30));
        }
        drop(held);
        for j in joins {
            j.join().unwrap();
        }
        let order: Vec<i32> = rx.try_iter().collect();
        assert_eq!(order, vec![0, 1, 2, 3, 4]);
        std::fs::remove_dir_all(store.parent().unwrap()).unwrap();
    }

    #[test]
    fn no_queue_file_falls_back_to_sqlite_alone() {
        let store = Path::new("/nonexistent-authguard-dir/authguard.db");
        assert!(
            wait_turn(store, Duration::from_millis(10))
                .unwrap()
                .0
                .is_none()
        );
    }
}
