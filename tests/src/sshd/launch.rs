//! Starting a test sshd: on the host (a free loopback port, a private mount
//! namespace) or in a Debian 13 machine, and waiting until it listens.
//! Also `sshd -T` on either platform.
//!
//! The files the sshd reads are written by `files`; the type is in `mod.rs`.

use super::files::{
    prepare_sshd_dir, prepare_sshd_dir_for, write_sshd_config_extra, write_sshd_config_on,
};
use super::{Platform, Sshd, SshdLog, Stack};
use crate::env::{tempdir, wait_until};
use crate::guard::Guard;
use crate::process::{CLIENT_TIMEOUT, Finished, run_with_timeout};
use crate::sys::{Signal, kill_group};
use crate::trixie;
use std::net::{TcpListener, TcpStream};
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

impl Sshd {
    /// sshd with the default authguard stack for `guard`.
    pub fn start(guard: &Guard) -> Sshd {
        Sshd::with_stack(Stack::Guarded(guard.config_path()))
    }

    /// sshd with the default stack minus authguard.
    pub fn start_unguarded() -> Sshd {
        Sshd::with_stack(Stack::Unguarded)
    }

    /// sshd with the given stack.
    pub fn with_stack(stack: Stack) -> Sshd {
        Sshd::with_stack_and_config(stack, "")
    }

    /// sshd with the given stack and `extra` sshd_config text. sshd keeps a
    /// keyword's *first* value, so the lines of `extra` before its first
    /// `Match` go in front of the harness's config (and override it, e.g.
    /// `LoginGraceTime 5`); a `Match` block and everything after it go at the
    /// end, where `Match` must be. The result is checked with `sshd -T`.
    pub fn with_stack_and_config(stack: Stack, extra: &str) -> Sshd {
        Sshd::launch(Platform::Host, stack, extra)
    }

    /// sshd with the default authguard stack for `guard` on `platform`.
    pub fn start_on(platform: Platform, guard: &Guard) -> Sshd {
        Sshd::launch(platform, Stack::Guarded(guard.config_path()), "")
    }

    /// [`Sshd::with_stack_and_config`] on `platform`.
    pub fn launch(platform: Platform, stack: Stack, extra: &str) -> Sshd {
        match platform {
            Platform::Host => Sshd::launch_on_host(stack, extra),
            Platform::Debian13 => Sshd::launch_on_debian13(stack, extra),
        }
    }

    fn launch_on_debian13(stack: Stack, extra: &str) -> Sshd {
        Sshd::launch_in(Arc::new(trixie::Machine::boot()), stack, extra)
    }

    /// An sshd (the root's OpenSSH 10) inside the Debian 13 `machine`, with
    /// `stack` as its `/etc/pam.d/sshd` and the test user added to the
    /// machine's user files.
    pub fn launch_in(machine: Arc<trixie::Machine>, stack: Stack, extra: &str) -> Sshd {
        Sshd::launch_in_logging(machine, stack, extra, SshdLog::File)
    }

    /// [`Sshd::launch_in`], with sshd's log going where `log` says. Ready
    /// once a TCP connect from 127.0.0.1 succeeds (the same readiness probe
    /// as on the host, so both logs start alike).
    pub fn launch_in_logging(
        machine: Arc<trixie::Machine>,
        stack: Stack,
        extra: &str,
        log: SshdLog,
    ) -> Sshd {
        let (dir, path) = prepare_sshd_dir_for(&stack, &machine.path().join("etc"));
        write_sshd_config_on(Platform::Debian13, &path, 22, &["127.0.0.1"], extra);
        let mut child = spawn_sshd_in(&machine, &path, log);
        let probe = || {
            machine.in_net(|| {
                TcpStream::connect_timeout(&([127, 0, 0, 1], 22).into(), Duration::from_millis(200))
                    .is_ok()
            })
        };
        let listening = wait_until(Duration::from_secs(20), || {
            matches!(child.try_wait(), Ok(Some(_))) || probe()
        });
        let exited = child.try_wait().expect("wait for sshd");
        if !listening || exited.is_some() {
            kill_group(child.id(), Signal::Kill);
            let _ = child.wait();
            panic!(
                "Debian 13 sshd did not start listening within 20 s: exit {exited:?}\n\
                 --- sshd.log ---\n{}\n--- sshd stderr ---\n{}",
                std::fs::read_to_string(path.join("sshd.log")).unwrap_or_default(),
                std::fs::read_to_string(path.join("sshd.err")).unwrap_or_default()
            );
        }
        Sshd {
            dir: Some(dir),
            path,
            port: 22,
            child,
            platform: Platform::Debian13,
            machine: Some(machine),
        }
    }

    fn launch_on_host(stack: Stack, extra: &str) -> Sshd {
        let (dir, path) = prepare_sshd_dir(&stack);
        let mut last_log = String::new();
        for _ in 0..5 {
            let port = free_port();
            write_sshd_config_extra(&path, port, &["127.0.0.1"], extra);
            let mut child = spawn_sshd(&path, None);
            let deadline = Instant::now() + Duration::from_secs(10);
            let mut exited = None;
            let mut up = false;
            while Instant::now() < deadline {
                if let Some(status) = child.try_wait().expect("wait for sshd") {
                    exited = Some(status);
                    break;
                }
                if TcpStream::connect_timeout(
                    &([127, 0, 0, 1], port).into(),
                    Duration::from_millis(200),
                )
                .is_ok()
                {
                    up = true;
                    break;
                }
                std::thread::sleep(Duration::from_millis(30));
            }
            if up {
                return Sshd {
                    dir: Some(dir),
                    path,
                    port,
                    child,
                    platform: Platform::Host,
                    machine: None,
                };
            }
            if exited.is_none() {
                kill_group(child.id(), Signal::Kill);
            }
            let _ = child.wait();
            last_log = format!(
                "exit {:?}\n--- sshd.log ---\n{}\n--- sshd stderr ---\n{}",
                exited,
                std::fs::read_to_string(path.join("sshd.log")).unwrap_or_default(),
                std::fs::read_to_string(path.join("sshd.err")).unwrap_or_default()
            );
            if !last_log.contains("Address already in use") {
                break;
            }
        }
        panic!("test sshd did not start listening within 10 s: {last_log}");
    }
}

/// Starts `sshd -D` (config `<path>/sshd_config`, log `<path>/sshd.log`) in a
/// private mount namespace with the test PAM file and user files bind-mounted,
/// inside the network namespace `netns` when given. The child leads its own
/// process group.
pub(crate) fn spawn_sshd(path: &Path, netns: Option<&str>) -> Child {
    let _ = std::fs::remove_file(path.join("sshd.log"));
    let mut cmd = match netns {
        Some(ns) => {
            let mut c = Command::new("ip");
            c.args(["netns", "exec", ns, "unshare"]);
            c
        }
        None => Command::new("unshare"),
    };
    cmd.args(["--mount", "--propagation", "private", "sh", "-c"])
        .arg(
            "set -e; mount --bind \"$1\" /etc/pam.d/sshd; mount --bind \"$2\" /etc/passwd; \
             mount --bind \"$3\" /etc/shadow; mount --bind \"$4\" /etc/group; \
             exec /usr/sbin/sshd -D -E \"$5\" -f \"$6\"",
        )
        .arg("sh")
        .arg(path.join("pam.sshd"))
        .arg(path.join("passwd"))
        .arg(path.join("shadow"))
        .arg(path.join("group"))
        .arg(path.join("sshd.log"))
        .arg(path.join("sshd_config"))
        .stdin(Stdio::null())
        .stdout(std::fs::File::create(path.join("sshd.out")).expect("create sshd.out"))
        .stderr(std::fs::File::create(path.join("sshd.err")).expect("create sshd.err"))
        .process_group(0);
    cmd.spawn().expect("spawn unshare … sshd")
}

/// Starts the machine's `sshd -D` (config `<path>/sshd_config`, log
/// `<path>/sshd.log`) with the test PAM file and user files copied into the
/// machine first. The child is sshd itself (nsenter execs it) and leads its
/// own process group.
fn spawn_sshd_in(machine: &trixie::Machine, path: &Path, log: SshdLog) -> Child {
    let _ = std::fs::remove_file(path.join("sshd.log"));
    let d = path.to_string_lossy();
    machine.run_ok("cp", &[&format!("{d}/pam.sshd"), "/etc/pam.d/sshd"]);
    for file in ["passwd", "shadow", "group"] {
        machine.run_ok("cp", &[&format!("{d}/{file}"), &format!("/etc/{file}")]);
    }
    let mut cmd = machine.command("/usr/sbin/sshd");
    cmd.arg("-D");
    if log == SshdLog::File {
        cmd.arg("-E").arg(path.join("sshd.log"));
    }
    cmd.arg("-f")
        .arg(path.join("sshd_config"))
        .stdin(Stdio::null())
        .stdout(std::fs::File::create(path.join("sshd.out")).expect("create sshd.out"))
        .stderr(std::fs::File::create(path.join("sshd.err")).expect("create sshd.err"))
        .process_group(0);
    cmd.spawn().expect("spawn nsenter … sshd")
}

/// `sshd -T -f PATH` with the sshd of `platform`: its effective settings,
/// or why it rejects the file.
pub fn sshd_dump_on(platform: Platform, path: &Path) -> Finished {
    match platform {
        Platform::Host => run_with_timeout(
            Command::new("/usr/sbin/sshd").arg("-T").arg("-f").arg(path),
            None,
            CLIENT_TIMEOUT,
        ),
        Platform::Debian13 => {
            let scratch = tempdir("ag-sshd-t-");
            let mut cmd = trixie::root().command(scratch.path(), false, ":", "/usr/sbin/sshd");
            cmd.arg("-T").arg("-f").arg(path);
            run_with_timeout(&mut cmd, None, CLIENT_TIMEOUT)
        }
    }
}

pub(crate) fn free_port() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind a free port");
    l.local_addr().expect("local addr").port()
}
