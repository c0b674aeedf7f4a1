//! Every call the harness makes into libc, each behind a small safe wrapper.
//!
//! Only what std cannot do lives here: the effective uid, signals to a pid or
//! a process group, a TCP connect bound to a chosen source, `SO_LINGER`,
//! `setns(2)` and `flock(2)`. Each `unsafe` block says why it is sound. The
//! harness' logic (what to signal, when, why) stays with the callers.

use std::fs::File;
use std::io;
use std::net::{Ipv4Addr, SocketAddrV4, TcpStream};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};

/// The signals the harness sends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Signal {
    /// SIGTERM: a chance to clean up.
    Term,
    /// SIGKILL: none.
    Kill,
}

impl Signal {
    fn number(self) -> libc::c_int {
        match self {
            Signal::Term => libc::SIGTERM,
            Signal::Kill => libc::SIGKILL,
        }
    }
}

/// The process' effective uid (0: root).
pub(crate) fn effective_uid() -> u32 {
    // SAFETY: geteuid has no preconditions and cannot fail.
    unsafe { libc::geteuid() }
}

/// A pid the harness may signal: above 1, so never init, "every process"
/// (-1) or "my own group" (0).
fn signalable(pid: u32) -> Option<libc::pid_t> {
    libc::pid_t::try_from(pid).ok().filter(|&pid| pid > 1)
}

/// Sends `signal` to the process group `pgid` (a child the harness spawned
/// as its own group leader). Does nothing for pids 0 and 1.
pub(crate) fn kill_group(pgid: u32, signal: Signal) {
    if let Some(pgid) = signalable(pgid) {
        // SAFETY: kill(2) with a negative pid signals the process group we
        // created for our own child; no memory is involved.
        unsafe {
            libc::kill(-pgid, signal.number());
        }
    }
}

/// Sends `signal` to the one process `pid`. Does nothing for pids 0 and 1.
pub(crate) fn kill_process(pid: u32, signal: Signal) {
    if let Some(pid) = signalable(pid) {
        // SAFETY: kill(2) on one positive pid; no memory is involved.
        unsafe {
            libc::kill(pid, signal.number());
        }
    }
}

/// A libc return code: 0 is success, anything else an error in `errno`.
fn zero_or_errno(rc: libc::c_int) -> io::Result<()> {
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

fn sockaddr_in(addr: SocketAddrV4) -> libc::sockaddr_in {
    libc::sockaddr_in {
        sin_family: libc::AF_INET as libc::sa_family_t,
        sin_port: addr.port().to_be(),
        sin_addr: libc::in_addr {
            s_addr: u32::from(*addr.ip()).to_be(),
        },
        sin_zero: [0; 8],
    }
}

const SOCKADDR_IN_LEN: libc::socklen_t =
    std::mem::size_of::<libc::sockaddr_in>() as libc::socklen_t;

fn new_tcp_socket() -> io::Result<OwnedFd> {
    // SAFETY: socket(2) takes no pointers; the result is checked.
    let fd = unsafe { libc::socket(libc::AF_INET, libc::SOCK_STREAM | libc::SOCK_CLOEXEC, 0) };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: `fd` is a socket just created and owned by nothing else; the
    // OwnedFd closes it on every path.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

fn bind(fd: RawFd, local: SocketAddrV4) -> io::Result<()> {
    let local = sockaddr_in(local);
    // SAFETY: the pointer is to a live sockaddr_in of SOCKADDR_IN_LEN bytes.
    let rc = unsafe { libc::bind(fd, (&raw const local).cast(), SOCKADDR_IN_LEN) };
    zero_or_errno(rc)
}

fn connect(fd: RawFd, remote: SocketAddrV4) -> io::Result<()> {
    let remote = sockaddr_in(remote);
    // SAFETY: as in `bind`. A blocking connect to loopback ends at once.
    let rc = unsafe { libc::connect(fd, (&raw const remote).cast(), SOCKADDR_IN_LEN) };
    zero_or_errno(rc)
}

/// A blocking TCP connection from `source` (any local port) to `remote`:
/// std cannot bind a socket before connecting it.
pub(crate) fn tcp_connect_bound(source: Ipv4Addr, remote: SocketAddrV4) -> io::Result<TcpStream> {
    let fd = new_tcp_socket()?;
    bind(fd.as_raw_fd(), SocketAddrV4::new(source, 0))
        .map_err(|e| io::Error::new(e.kind(), format!("bind {source}: {e}")))?;
    connect(fd.as_raw_fd(), remote)
        .map_err(|e| io::Error::new(e.kind(), format!("connect from {source}: {e}")))?;
    Ok(TcpStream::from(fd))
}

/// Sets `SO_LINGER` to 0 on `stream`: closing it then sends a TCP reset
/// instead of a FIN.
pub(crate) fn set_linger_zero(stream: &TcpStream) -> io::Result<()> {
    let linger = libc::linger {
        l_onoff: 1,
        l_linger: 0,
    };
    // SAFETY: `linger` is a live struct of the size passed; the fd is open
    // (borrowed from `stream` for the call).
    let rc = unsafe {
        libc::setsockopt(
            stream.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_LINGER,
            (&raw const linger).cast(),
            std::mem::size_of::<libc::linger>() as libc::socklen_t,
        )
    };
    zero_or_errno(rc)
}

/// Moves the calling thread into the network namespace `ns` (an open
/// `/proc/PID/ns/net`). Only that thread changes namespace.
pub(crate) fn enter_network_namespace(ns: &File) -> io::Result<()> {
    // SAFETY: setns(2) on an open namespace fd; it changes only the calling
    // thread's network namespace, and no memory is involved.
    let rc = unsafe { libc::setns(ns.as_raw_fd(), libc::CLONE_NEWNET) };
    zero_or_errno(rc)
}

/// Takes an exclusive `flock(2)` on `file`, blocking until it is free; the
/// lock lasts as long as the file stays open.
pub(crate) fn lock_exclusive(file: &File) -> io::Result<()> {
    // SAFETY: flock(2) on a descriptor we own (borrowed for the call).
    let rc = unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX) };
    zero_or_errno(rc)
}
