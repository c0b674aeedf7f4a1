//! A Debian 13 (trixie) root for the tests: its own OpenSSH 10 sshd, client,
//! PAM, pamtester, nftables and lintian, run from the host's kernel.
//!
//! [`root`] builds the root once with `debootstrap` from the mirror apt is
//! configured with, and keeps it under [`cache_dir`] keyed on the trixie
//! index: the key is the hash the index's signed `InRelease` gives for
//! `main/binary-<arch>/Packages.xz` (it changes exactly when a package
//! version in trixie changes) and the recipe below. A warm run reuses it; a
//! new index builds a new root and deletes the old ones. With no mirror
//! reachable, the newest cached root serves (and says so).
//!
//! The cached root is never written after it is built: [`TrixieRoot::command`]
//! runs a program inside a throw-away overlay of it, in a private mount
//! namespace (and, on request, a private network namespace with only `lo`),
//! with the host's `/dev`, a fresh `/proc`, the temporary directory and the
//! cargo target directory bound in at their own paths, so the test's files,
//! the PAM module and `guardctl` are where the host's tests put them.

use crate::env::{release_dir, target_dir, tempdir, wait_until};
use crate::process::{Finished, run_with_timeout};
use crate::sys::{self, Signal, kill_group};
use std::fs::File;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// What debootstrap adds to its minbase. Part of the cache key.
pub const PACKAGES: &[&str] = &[
    "openssh-server",
    "openssh-client",
    "sshpass",
    "pamtester",
    "nftables",
];

/// What apt adds inside the new root afterwards: debootstrap's own resolver
/// cannot order lintian's Perl dependencies. Part of the cache key.
pub const SECOND_STAGE: &[&str] = &["lintian"];

/// Bump when the way the root is made changes (the key then changes too).
const RECIPE: &str = "authguard-e2e trixie root v1: minbase + /run/sshd";

/// How long debootstrap may take on a fresh machine before the test gives up.
const BUILD_TIMEOUT: Duration = Duration::from_secs(900);

/// The cached Debian 13 root.
#[derive(Debug)]
pub struct TrixieRoot {
    path: PathBuf,
    /// `dpkg-query` of [`PACKAGES`] in the root: `name version` lines.
    versions: String,
    /// How this run got the root: built (and how long it took) or reused.
    pub provenance: String,
}

/// The root, built or reused once per test process (and once per machine:
/// concurrent test processes wait on a lock file for the one that builds).
pub fn root() -> &'static TrixieRoot {
    static ROOT: OnceLock<TrixieRoot> = OnceLock::new();
    ROOT.get_or_init(|| {
        let root = ensure_root();
        eprintln!("debian 13 root: {}", root.provenance);
        root
    })
}

/// Where cached roots live: `AUTHGUARD_E2E_CACHE` or `/var/cache/authguard-e2e`.
pub fn cache_dir() -> PathBuf {
    std::env::var_os("AUTHGUARD_E2E_CACHE")
        .filter(|d| !d.is_empty())
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/var/cache/authguard-e2e"))
}

impl TrixieRoot {
    /// The root directory (read-only by convention: use [`TrixieRoot::command`]).
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The version of `package` in the root, e.g. `1:10.0p1-7+deb13u4`.
    pub fn version(&self, package: &str) -> Option<&str> {
        self.versions.lines().find_map(|l| {
            let (name, version) = l.split_once(' ')?;
            (name == package).then_some(version)
        })
    }

    /// `unshare … chroot <overlay of the root> PROGRAM`: add the program's
    /// arguments with `.args(…)`. `scratch` is an empty directory of the
    /// caller's (under the temporary directory) that holds the overlay's
    /// writable layer. `own_net` gives the program a private network
    /// namespace with `lo` up. `setup` is shell run just before the chroot,
    /// with `$ROOTFS` the overlay's mount point (to copy files in, say).
    /// The program is exec'd: the child's pid is the program's.
    pub fn command(&self, scratch: &Path, own_net: bool, setup: &str, program: &str) -> Command {
        for sub in ["upper", "work", "rootfs"] {
            std::fs::create_dir_all(scratch.join(sub))
                .unwrap_or_else(|e| panic!("mkdir {}/{sub}: {e}", scratch.display()));
        }
        let mut cmd = Command::new("unshare");
        cmd.args(["--mount", "--propagation", "private"]);
        if own_net {
            cmd.arg("--net");
        }
        let net = if own_net { "ip link set lo up" } else { ":" };
        cmd.arg("sh").arg("-c").arg(format!(
            "set -e; L=\"$1\"; S=\"$2\"; T=\"$3\"; B=\"$4\"; shift 4; ROOTFS=\"$S/rootfs\"; \
             mount -t overlay overlay -o \"lowerdir=$L,upperdir=$S/upper,workdir=$S/work\" \"$ROOTFS\"; \
             {PRIVATE_DEV} mount -t proc proc \"$ROOTFS/proc\"; \
             mount --rbind /sys \"$ROOTFS/sys\"; \
             mkdir -p \"$ROOTFS$T\" \"$ROOTFS$B\"; mount --bind \"$T\" \"$ROOTFS$T\"; \
             mount --bind \"$B\" \"$ROOTFS$B\"; {net}; {setup}; exec chroot \"$ROOTFS\" \"$@\""
        ));
        let temp = std::env::temp_dir();
        let temp = temp.canonicalize().unwrap_or(temp);
        cmd.arg("sh")
            .arg(&self.path)
            .arg(scratch)
            .arg(temp)
            .arg(target_dir())
            .arg(program);
        cmd
    }
}

/// Shell that gives the overlay at `$ROOTFS` a `/dev` of its own, as
/// systemd-nspawn does: a tmpfs with the host's harmless device nodes bound
/// in, a private `/dev/shm`, and `/dev/log` pointing at the machine's own
/// journald socket (the host's `/dev` is never written).
const PRIVATE_DEV: &str = "D=\"$ROOTFS/dev\"; mount -t tmpfs -o mode=755,nosuid dev \"$D\"; \
    for n in null zero full random urandom tty; do \
        touch \"$D/$n\"; mount --bind \"/dev/$n\" \"$D/$n\"; done; \
    mkdir \"$D/pts\" \"$D/shm\"; mount --bind /dev/pts \"$D/pts\"; \
    mount -t tmpfs -o mode=1777,nosuid,nodev shm \"$D/shm\"; \
    ln -s pts/ptmx \"$D/ptmx\"; ln -s /proc/self/fd \"$D/fd\"; \
    ln -s /proc/self/fd/0 \"$D/stdin\"; ln -s /proc/self/fd/1 \"$D/stdout\"; \
    ln -s /proc/self/fd/2 \"$D/stderr\"; ln -s /run/systemd/journal/dev-log \"$D/log\";";

/// A Debian 13 "machine": one throw-away overlay of the root with its own
/// mount and network namespaces, kept alive by an idle process, that any
/// number of commands (and an sshd) enter with `nsenter`. What they write
/// lands in the overlay and is gone when the machine is dropped; the host
/// reads its files under [`Machine::path`].
#[derive(Debug)]
pub struct Machine {
    dir: Option<tempfile::TempDir>,
    idle: Child,
}

impl Machine {
    /// Boots a machine from [`root`] (building the root if need be).
    pub fn boot() -> Machine {
        let dir = tempdir("ag-debian13-");
        let mut cmd = root().command(&dir.path().join("overlay"), true, ":", "/bin/sleep");
        cmd.arg("infinity")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(dir.path().join("boot.err")).expect("boot.err"))
            .process_group(0);
        let mut idle = cmd.spawn().expect("spawn unshare … chroot … sleep");
        let machine_root = PathBuf::from(format!("/proc/{}/root", idle.id()));
        // Up once the chroot has happened: the idle process sees the root's os-release.
        let up = wait_until(Duration::from_secs(20), || {
            matches!(idle.try_wait(), Ok(Some(_)))
                || std::fs::read_to_string(machine_root.join("etc/os-release"))
                    .is_ok_and(|t| t.contains("trixie"))
        });
        if !up || !matches!(idle.try_wait(), Ok(None)) {
            let _ = idle.kill();
            let _ = idle.wait();
            panic!(
                "the Debian 13 machine did not come up: {}",
                std::fs::read_to_string(dir.path().join("boot.err")).unwrap_or_default()
            );
        }
        Machine {
            dir: Some(dir),
            idle,
        }
    }

    /// The machine's `/`, seen from the host (`/proc/PID/root`).
    pub fn path(&self) -> PathBuf {
        PathBuf::from(format!("/proc/{}/root", self.idle.id()))
    }

    /// A command for `program` inside the machine (its namespaces and root).
    pub fn command(&self, program: &str) -> Command {
        let mut cmd = Command::new("nsenter");
        cmd.arg("-t")
            .arg(self.idle.id().to_string())
            .args(["-m", "-n", "-r", "-w", "--", program]);
        cmd.env("DEBIAN_FRONTEND", "noninteractive");
        cmd
    }

    /// Runs `f` on a thread of its own that has entered the machine's
    /// network namespace: sockets it makes are the machine's (and stay so).
    pub fn in_net<T: Send>(&self, f: impl FnOnce() -> T + Send) -> T {
        let ns = File::open(format!("/proc/{}/ns/net", self.idle.id()))
            .expect("the machine's network namespace");
        std::thread::scope(|scope| {
            scope
                .spawn(|| {
                    // Only this (scoped, short-lived) thread changes namespace.
                    if let Err(e) = sys::enter_network_namespace(&ns) {
                        panic!("setns: {e}");
                    }
                    f()
                })
                .join()
                .expect("the thread in the machine's network namespace")
        })
    }

    /// Runs `program args` in the machine (bounded: 10 minutes).
    pub fn run(&self, program: &str, args: &[&str]) -> Finished {
        run_with_timeout(
            self.command(program).args(args),
            None,
            Duration::from_secs(600),
        )
    }

    /// [`Machine::run`], panicking with the output unless it succeeded.
    pub fn run_ok(&self, program: &str, args: &[&str]) -> Finished {
        let f = self.run(program, args);
        assert!(
            f.status.success(),
            "{program} {args:?} in the Debian 13 machine failed: {}",
            f.describe()
        );
        f
    }
}

impl Machine {
    /// Starts the root's own systemd-journald inside the machine: what
    /// programs there log with syslog(3) (through `/dev/log`) lands in the
    /// machine's journal, read back with [`Journald::json`].
    pub fn start_journald(&self) -> Journald {
        let mut child = self
            .command("/lib/systemd/systemd-journald")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .process_group(0)
            .spawn()
            .expect("spawn nsenter … systemd-journald");
        let socket = self.path().join("run/systemd/journal/dev-log");
        let up = wait_until(Duration::from_secs(10), || {
            matches!(child.try_wait(), Ok(Some(_))) || socket.exists()
        });
        if !up || !matches!(child.try_wait(), Ok(None)) {
            kill_group(child.id(), Signal::Kill);
            let _ = child.wait();
            panic!("the Debian 13 machine's journald did not open its socket within 10 s");
        }
        Journald { child }
    }
}

/// A machine's systemd-journald ([`Machine::start_journald`]); stopped on drop.
#[derive(Debug)]
pub struct Journald {
    child: Child,
}

impl Journald {
    /// Every entry of the machine's journal so far, one `journalctl -o json`
    /// object per line, read with the machine's own journalctl.
    pub fn json(&self, machine: &Machine) -> Vec<String> {
        let out = machine.run_ok("journalctl", &["-o", "json", "--no-pager", "--all"]);
        out.stdout.lines().map(str::to_owned).collect()
    }
}

impl Drop for Journald {
    fn drop(&mut self) {
        kill_group(self.child.id(), Signal::Kill);
        let _ = self.child.wait();
    }
}

impl Drop for Machine {
    fn drop(&mut self) {
        kill_group(self.idle.id(), Signal::Kill);
        let _ = self.idle.wait();
        release_dir(self.dir.take());
    }
}

fn ensure_root() -> TrixieRoot {
    let cache = cache_dir();
    std::fs::create_dir_all(&cache).unwrap_or_else(|e| panic!("mkdir {}: {e}", cache.display()));
    let _lock = lock(&cache.join("trixie.lock"));
    let mirror = apt_mirror();
    let key = match index_key(&mirror) {
        Ok(key) => key,
        Err(why) => {
            let newest = newest_cached(&cache).unwrap_or_else(|| {
                panic!("no cached Debian 13 root in {} and {why}", cache.display())
            });
            return reuse(newest, &format!("reused (the index is unreachable: {why})"));
        }
    };
    let path = cache.join(format!("trixie-{key}"));
    if path.join(".complete").is_file() {
        return reuse(path, "reused (warm cache)");
    }
    let started = Instant::now();
    build(&path, &mirror);
    let took = started.elapsed();
    for old in cached_roots(&cache) {
        if old != path {
            let _ = std::fs::remove_dir_all(&old);
        }
    }
    reuse(
        path,
        &format!("built from {mirror} in {:.1} s (cold)", took.as_secs_f64()),
    )
}

fn reuse(path: PathBuf, provenance: &str) -> TrixieRoot {
    let versions = std::fs::read_to_string(path.join(".versions")).unwrap_or_default();
    TrixieRoot {
        path,
        versions,
        provenance: provenance.to_owned(),
    }
}

/// debootstrap into `<path>.partial`, then the root's own settings, then one
/// rename: a half-built root is never taken for a cached one.
fn build(path: &Path, mirror: &str) {
    let partial = path.with_extension("partial");
    let _ = std::fs::remove_dir_all(&partial);
    let f = run_with_timeout(
        Command::new("debootstrap")
            .args(["--variant=minbase", "--include"])
            .arg(PACKAGES.join(","))
            .arg("trixie")
            .arg(&partial)
            .arg(mirror),
        None,
        BUILD_TIMEOUT,
    );
    assert!(
        f.status.success(),
        "debootstrap trixie failed (is debootstrap installed and {mirror} reachable?): {}",
        f.describe()
    );
    chroot_ok(&partial, Command::new("apt-get").args(["update", "-qq"]));
    chroot_ok(
        &partial,
        Command::new("apt-get")
            .args(["install", "-y", "-qq", "--no-install-recommends"])
            .args(SECOND_STAGE),
    );
    // sshd's privilege-separation directory (a tmpfs made by systemd on a
    // real system).
    std::fs::create_dir_all(partial.join("run/sshd")).expect("mkdir run/sshd");
    let versions = chroot_ok(
        &partial,
        Command::new("dpkg-query")
            .args(["-W", "-f", "${Package} ${Version}\\n"])
            .args(PACKAGES)
            .args(SECOND_STAGE),
    );
    std::fs::write(partial.join(".versions"), versions.stdout).expect("write .versions");
    std::fs::write(partial.join(".complete"), RECIPE).expect("write .complete");
    std::fs::rename(&partial, path)
        .unwrap_or_else(|e| panic!("rename {} into place: {e}", partial.display()));
}

fn chroot_ok(root: &Path, cmd: &mut Command) -> Finished {
    let mut chroot = Command::new("chroot");
    chroot.arg(root).arg(cmd.get_program()).args(cmd.get_args());
    chroot.env("DEBIAN_FRONTEND", "noninteractive");
    let f = run_with_timeout(&mut chroot, None, Duration::from_secs(600));
    assert!(
        f.status.success(),
        "{chroot:?} in the trixie root failed: {}",
        f.describe()
    );
    f
}

/// The cache key: a hash of the recipe, the package list, the architecture
/// and the index's hash of its Packages file.
fn index_key(mirror: &str) -> Result<String, String> {
    let arch = run_with_timeout(
        Command::new("dpkg").arg("--print-architecture"),
        None,
        Duration::from_secs(10),
    );
    let arch = arch.stdout.trim().to_owned();
    let url = format!("{mirror}/dists/trixie/InRelease");
    let f = run_with_timeout(
        Command::new("wget").args(["-q", "-T", "15", "-O", "-", &url]),
        None,
        Duration::from_secs(30),
    );
    if !f.status.success() {
        return Err(format!("`wget {url}` failed: {}", f.describe()));
    }
    let wanted = format!("main/binary-{arch}/Packages.xz");
    // The SHA256 section comes after MD5Sum: the last matching line is it.
    let packages_hash = f
        .stdout
        .lines()
        .filter(|l| l.split_whitespace().nth(2) == Some(wanted.as_str()))
        .filter_map(|l| l.split_whitespace().next())
        .next_back()
        .ok_or_else(|| format!("{url} names no {wanted}"))?
        .to_owned();
    let material = format!(
        "{RECIPE}\n{arch}\n{}\n{}\n{packages_hash}\n",
        PACKAGES.join(","),
        SECOND_STAGE.join(",")
    );
    let mut sha = Command::new("sha256sum");
    let out = run_with_timeout(&mut sha, Some(material.as_bytes()), Duration::from_secs(10));
    let hash = out.stdout.split_whitespace().next().unwrap_or_default();
    if hash.len() < 16 {
        return Err(format!("sha256sum printed {:?}", out.stdout));
    }
    Ok(hash[..16].to_owned())
}

fn cached_roots(cache: &Path) -> Vec<PathBuf> {
    std::fs::read_dir(cache)
        .map(|rd| {
            rd.filter_map(Result::ok)
                .map(|e| e.path())
                .filter(|p| {
                    p.file_name()
                        .and_then(|n| n.to_str())
                        .is_some_and(|n| n.starts_with("trixie-"))
                        && p.is_dir()
                })
                .collect()
        })
        .unwrap_or_default()
}

fn newest_cached(cache: &Path) -> Option<PathBuf> {
    cached_roots(cache)
        .into_iter()
        .filter(|p| p.join(".complete").is_file())
        .max_by_key(|p| {
            std::fs::metadata(p.join(".complete"))
                .and_then(|m| m.modified())
                .ok()
        })
}

/// The Debian mirror of the host's apt sources (`URIs:` of a deb822 entry
/// or the URI of a one-line `deb` entry) that is not the security archive;
/// `AUTHGUARD_E2E_MIRROR` overrides it.
pub fn apt_mirror() -> String {
    if let Some(m) = std::env::var_os("AUTHGUARD_E2E_MIRROR").filter(|m| !m.is_empty()) {
        return m.to_string_lossy().trim_end_matches('/').to_owned();
    }
    let mut files = vec![PathBuf::from("/etc/apt/sources.list")];
    if let Ok(rd) = std::fs::read_dir("/etc/apt/sources.list.d") {
        let mut more: Vec<PathBuf> = rd.filter_map(Result::ok).map(|e| e.path()).collect();
        more.sort();
        files.extend(more);
    }
    files
        .iter()
        .filter_map(|f| std::fs::read_to_string(f).ok())
        .flat_map(|text| mirror_uris(&text))
        .find(|uri| !uri.contains("security"))
        .unwrap_or_else(|| "http://deb.debian.org/debian".to_owned())
}

fn mirror_uris(text: &str) -> Vec<String> {
    text.lines()
        .filter_map(|l| {
            let l = l.trim();
            let uri = if let Some(rest) = l.strip_prefix("URIs:") {
                rest.split_whitespace().next()
            } else if l.starts_with("deb ") {
                l.split_whitespace().skip(1).find(|w| !w.starts_with('['))
            } else {
                None
            }?;
            uri.starts_with("http")
                .then(|| uri.trim_end_matches('/').to_owned())
        })
        .collect()
}

/// An exclusive `flock` on `path`, held until the file is dropped.
pub(crate) fn lock(path: &Path) -> File {
    let file = File::create(path).unwrap_or_else(|e| panic!("create {}: {e}", path.display()));
    // Blocking is what we want: the holder is another test process building
    // the same root.
    if let Err(e) = sys::lock_exclusive(&file) {
        panic!("flock {}: {e}", path.display());
    }
    file
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mirror_is_read_from_both_source_formats() {
        let deb822 = "Types: deb\nURIs: http://deb.debian.org/debian/\nSuites: bookworm\n";
        assert_eq!(mirror_uris(deb822), ["http://deb.debian.org/debian"]);
        let one_line =
            "deb [arch=amd64] http://ftp.de.debian.org/debian bookworm main\n# deb http://x/y\n";
        assert_eq!(mirror_uris(one_line), ["http://ftp.de.debian.org/debian"]);
    }
}
