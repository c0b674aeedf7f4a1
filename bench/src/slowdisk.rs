//! A real slow block device for the flood part: ext4 on a block device
//! whose every flush (and, with dm-delay, every write) waits `delay` first.
//!
//! - dm-delay where the kernel has it: a loop device over a sparse file,
//!   `dmsetup create … delay /dev/loopN 0 0 /dev/loopN 0 <ms>`.
//! - Otherwise (a kernel built without device-mapper, `CONFIG_MD` unset, as
//!   on this project's VMs): the same loop device, but its backing file is
//!   served by a FUSE file system this binary runs (`slowdisk-serve`), which
//!   sleeps `delay` in every FUSE `fsync` before it fdatasyncs the real
//!   file. The loop driver turns each flush and FUA write ext4 sends it
//!   into such an fsync, so ext4's journal commits, and with them every
//!   fsync(2) on the file system, wait at least `delay` on the device.
//!
//! [`SlowDisk`] tears everything down when dropped (also on an error): the
//! ext4 mount, the mapping, the loop device, the FUSE mount and its server.

use anyhow::{Context, Result, bail, ensure};
use std::ffi::OsStr;
use std::fs::File;
use std::io::Write as _;
use std::os::unix::fs::FileExt as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// Size of the slow device.
const DISK_BYTES: u64 = 256 << 20;
/// The FUSE file that backs the loop device.
const FUSE_FILE: &str = "disk.img";

/// A mounted slow ext4 file system; unmounted and removed on drop.
#[derive(Debug)]
pub struct SlowDisk {
    /// What the device is, for the output.
    pub kind: String,
    /// Where ext4 is mounted.
    pub mount: PathBuf,
    mounted: bool,
    dm_name: Option<String>,
    loop_dev: Option<String>,
    fuse_mount: Option<PathBuf>,
    fuse_server: Option<Child>,
}

/// Why there is no slow disk (printed, never faked).
pub fn unavailable_reason() -> Option<String> {
    if !Path::new("/dev/loop-control").exists() {
        return Some("no loop devices (/dev/loop-control missing)".into());
    }
    for tool in ["losetup", "mkfs.ext4", "mount", "umount"] {
        if !crate::pam::in_path(tool) {
            return Some(format!("`{tool}` is not installed"));
        }
    }
    if dm_delay().is_err() && !Path::new("/dev/fuse").exists() {
        return Some("neither dm-delay (device-mapper) nor FUSE (/dev/fuse) is available".into());
    }
    None
}

/// Whether the kernel's device-mapper has the `delay` target (loading
/// dm-delay if it can); the error says why not.
pub fn dm_delay() -> Result<()> {
    ensure!(crate::pam::in_path("dmsetup"), "dmsetup is not installed");
    let listed = || -> Result<bool> {
        let out = Command::new("dmsetup")
            .arg("targets")
            .stderr(Stdio::piped())
            .output()?;
        if !out.status.success() {
            let why = String::from_utf8_lossy(&out.stderr);
            bail!(
                "`dmsetup targets` failed: {}",
                why.lines().next().unwrap_or("").trim()
            );
        }
        Ok(String::from_utf8_lossy(&out.stdout)
            .lines()
            .any(|l| l.split_whitespace().next() == Some("delay")))
    };
    if listed().unwrap_or(false) {
        return Ok(());
    }
    let _ = Command::new("modprobe")
        .arg("dm-delay")
        .stderr(Stdio::null())
        .status();
    match listed() {
        Ok(true) => Ok(()),
        Ok(false) => bail!("device-mapper has no `delay` target (modprobe dm-delay failed)"),
        Err(e) => Err(e),
    }
}

impl SlowDisk {
    /// Makes the device in `dir` and mounts ext4 on it, flushes delayed by `delay`.
    pub fn create(exe: &Path, dir: &Path, delay: Duration) -> Result<SlowDisk> {
        let mut disk = SlowDisk {
            kind: String::new(),
            mount: dir.join("slow-mnt"),
            mounted: false,
            dm_name: None,
            loop_dev: None,
            fuse_mount: None,
            fuse_server: None,
        };
        let ms = delay.as_millis();
        let device = match dm_delay() {
            Ok(()) => {
                let backing = dir.join("slow.img");
                File::create(&backing)?.set_len(DISK_BYTES)?;
                let lo = losetup(&backing)?;
                disk.loop_dev = Some(lo.clone());
                let name = format!("authguard-bench-slow-{}", std::process::id());
                let table = format!("0 {} delay {lo} 0 0 {lo} 0 {ms}", DISK_BYTES / 512);
                run(Command::new("dmsetup").args(["create", &name, "--table", &table]))?;
                disk.dm_name = Some(name.clone());
                disk.kind = format!("dm-delay ({ms} ms on every write and flush) over {lo}");
                format!("/dev/mapper/{name}")
            }
            Err(why) => {
                let fuse = dir.join("slow-fuse");
                std::fs::create_dir_all(&fuse)?;
                let backing = dir.join("slow.img");
                File::create(&backing)?.set_len(DISK_BYTES)?;
                let server = Command::new(exe)
                    .arg("slowdisk-serve")
                    .arg("--backing")
                    .arg(&backing)
                    .arg("--mount")
                    .arg(&fuse)
                    .args(["--fsync-ms", &ms.to_string()])
                    .stdin(Stdio::null())
                    .stdout(Stdio::null())
                    .stderr(Stdio::inherit())
                    .spawn()
                    .context("starting the FUSE server")?;
                disk.fuse_server = Some(server);
                disk.fuse_mount = Some(fuse.clone());
                let file = fuse.join(FUSE_FILE);
                wait_for_fuse(&file, disk.fuse_server.as_mut())?;
                let lo = losetup(&file)?;
                disk.loop_dev = Some(lo.clone());
                disk.kind = format!(
                    "{lo} over a FUSE file whose every fsync sleeps {ms} ms first \
                     (dm-delay unavailable: {why:#})"
                );
                lo
            }
        };
        run(Command::new("mkfs.ext4").args(["-q", "-F", &device]))?;
        std::fs::create_dir_all(&disk.mount)?;
        run(Command::new("mount").arg(&device).arg(&disk.mount))?;
        disk.mounted = true;
        Ok(disk)
    }
}

impl Drop for SlowDisk {
    fn drop(&mut self) {
        if self.mounted {
            let _ = quiet(Command::new("umount").arg(&self.mount));
        }
        if let Some(name) = &self.dm_name {
            let _ = quiet(Command::new("dmsetup").args(["remove", name]));
        }
        if let Some(lo) = &self.loop_dev {
            let _ = quiet(Command::new("losetup").args(["-d", lo]));
        }
        if let Some(fuse) = &self.fuse_mount {
            // The loop device lets go of the file asynchronously: retry a while.
            let began = Instant::now();
            while quiet(Command::new("umount").arg(fuse)).is_err()
                && began.elapsed() < Duration::from_secs(5)
            {
                std::thread::sleep(Duration::from_millis(100));
            }
        }
        if let Some(mut server) = self.fuse_server.take() {
            let began = Instant::now();
            while matches!(server.try_wait(), Ok(None)) && began.elapsed() < Duration::from_secs(3)
            {
                std::thread::sleep(Duration::from_millis(50));
            }
            if matches!(server.try_wait(), Ok(None)) {
                let _ = server.kill();
                if let Some(fuse) = &self.fuse_mount {
                    let _ = quiet(Command::new("umount").arg("-l").arg(fuse));
                }
            }
            let _ = server.wait();
        }
    }
}

fn wait_for_fuse(file: &Path, server: Option<&mut Child>) -> Result<()> {
    let began = Instant::now();
    let mut server = server;
    loop {
        if std::fs::metadata(file).is_ok_and(|m| m.len() == DISK_BYTES) {
            return Ok(());
        }
        if let Some(s) = server.as_deref_mut()
            && let Some(status) = s.try_wait()?
        {
            bail!("the FUSE server exited before mounting: {status}");
        }
        ensure!(
            began.elapsed() < Duration::from_secs(10),
            "the FUSE file {} did not appear within 10 s",
            file.display()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn losetup(file: &Path) -> Result<String> {
    let out = Command::new("losetup")
        .args(["-f", "--show"])
        .arg(file)
        .stderr(Stdio::piped())
        .output()
        .context("running losetup")?;
    ensure!(
        out.status.success(),
        "losetup -f --show {}: {}",
        file.display(),
        String::from_utf8_lossy(&out.stderr).trim()
    );
    Ok(String::from_utf8(out.stdout)?.trim().to_owned())
}

fn run(cmd: &mut Command) -> Result<()> {
    let out = cmd
        .stdin(Stdio::null())
        .stderr(Stdio::piped())
        .output()
        .with_context(|| format!("running {cmd:?}"))?;
    ensure!(
        out.status.success(),
        "{cmd:?} failed ({}): {}",
        out.status,
        String::from_utf8_lossy(&out.stderr).trim()
    );
    Ok(())
}

fn quiet(cmd: &mut Command) -> Result<()> {
    let status = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()?;
    ensure!(status.success(), "{cmd:?}: {status}");
    Ok(())
}

/// fsync(2) latency of 4 KiB appends to a file in `dir`, µs per sample.
pub fn fsync_latency(dir: &Path, samples: usize) -> Result<Vec<f64>> {
    let path = dir.join(".authguard-bench-fsync-probe");
    let mut f = File::create(&path).context("creating the fsync probe")?;
    let block = vec![0x5au8; 4096];
    let mut out = Vec::with_capacity(samples);
    for _ in 0..samples {
        f.write_all(&block)?;
        let t = Instant::now();
        f.sync_data()?;
        out.push(t.elapsed().as_secs_f64() * 1e6);
    }
    drop(f);
    std::fs::remove_file(&path)?;
    Ok(out)
}

// ---------------------------------------------------------------------------
// The FUSE server (hidden subcommand `slowdisk-serve`)
// ---------------------------------------------------------------------------

/// Arguments of the hidden `slowdisk-serve` subcommand.
#[derive(Debug, clap::Args)]
pub struct ServeArgs {
    /// The real file behind the FUSE file.
    #[arg(long)]
    backing: PathBuf,
    /// Where to mount the FUSE file system.
    #[arg(long)]
    mount: PathBuf,
    /// Sleep this long in every fsync before syncing the real file.
    #[arg(long)]
    fsync_ms: u64,
}

/// Serves `disk.img` at `--mount` until unmounted.
pub fn serve(a: &ServeArgs) -> Result<()> {
    let backing = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(&a.backing)
        .with_context(|| format!("opening {}", a.backing.display()))?;
    let size = backing.metadata()?.len();
    let fs = DelayFs {
        backing,
        size,
        delay: Duration::from_millis(a.fsync_ms),
    };
    let mut config = fuser::Config::default();
    config.mount_options.extend([
        fuser::MountOption::FSName("authguard-bench-slowdisk".into()),
        fuser::MountOption::RW,
    ]);
    // Flushes from the loop device's workers wait in parallel, as on a
    // device with a queue; one thread would serialise them.
    config.n_threads = Some(4);
    fuser::mount(fs, &a.mount, &config).context("serving the FUSE file system")
}

struct DelayFs {
    backing: File,
    size: u64,
    delay: Duration,
}

const TTL: Duration = Duration::from_secs(3600);
const ROOT: fuser::INodeNo = fuser::INodeNo::ROOT;
const FILE: fuser::INodeNo = fuser::INodeNo(2);

impl DelayFs {
    fn attr(&self, ino: fuser::INodeNo) -> fuser::FileAttr {
        let now = SystemTime::now();
        let (kind, perm, size, nlink) = if ino == ROOT {
            (fuser::FileType::Directory, 0o755, 0, 2)
        } else {
            (fuser::FileType::RegularFile, 0o600, self.size, 1)
        };
        fuser::FileAttr {
            ino,
            size,
            blocks: size.div_ceil(512),
            atime: UNIX_EPOCH,
            mtime: now,
            ctime: now,
            crtime: UNIX_EPOCH,
            kind,
            perm,
            nlink,
            uid: 0,
            gid: 0,
            rdev: 0,
            blksize: 4096,
            flags: 0,
        }
    }
}

impl fuser::Filesystem for DelayFs {
    fn lookup(
        &self,
        _req: &fuser::Request,
        parent: fuser::INodeNo,
        name: &OsStr,
        reply: fuser::ReplyEntry,
    ) {
        if parent == ROOT && name == OsStr::new(FUSE_FILE) {
            reply.entry(&TTL, &self.attr(FILE), fuser::Generation(0));
        } else {
            reply.error(fuser::Errno::ENOENT);
        }
    }

    fn getattr(
        &self,
        _req: &fuser::Request,
        ino: fuser::INodeNo,
        _fh: Option<fuser::FileHandle>,
        reply: fuser::ReplyAttr,
    ) {
        if ino == ROOT || ino == FILE {
            reply.attr(&TTL, &self.attr(ino));
        } else {
            reply.error(fuser::Errno::ENOENT);
        }
    }

    fn setattr(
        &self,
        _req: &fuser::Request,
        ino: fuser::INodeNo,
        _mode: Option<u32>,
        _uid: Option<u32>,
        _gid: Option<u32>,
        _size: Option<u64>,
        _atime: Option<fuser::TimeOrNow>,
        _mtime: Option<fuser::TimeOrNow>,
        _ctime: Option<SystemTime>,
        _fh: Option<fuser::FileHandle>,
        _crtime: Option<SystemTime>,
        _chgtime: Option<SystemTime>,
        _bkuptime: Option<SystemTime>,
        _flags: Option<fuser::BsdFileFlags>,
        reply: fuser::ReplyAttr,
    ) {
        // A fixed-size device: nothing to change.
        reply.attr(&TTL, &self.attr(ino));
    }

    fn read(
        &self,
        _req: &fuser::Request,
        _ino: fuser::INodeNo,
        _fh: fuser::FileHandle,
        offset: u64,
        size: u32,
        _flags: fuser::OpenFlags,
        _lock_owner: Option<fuser::LockOwner>,
        reply: fuser::ReplyData,
    ) {
        let len = (size as u64).min(self.size.saturating_sub(offset)) as usize;
        let mut buf = vec![0u8; len];
        match self.backing.read_exact_at(&mut buf, offset) {
            Ok(()) => reply.data(&buf),
            Err(e) => reply.error(e.into()),
        }
    }

    fn write(
        &self,
        _req: &fuser::Request,
        _ino: fuser::INodeNo,
        _fh: fuser::FileHandle,
        offset: u64,
        data: &[u8],
        _write_flags: fuser::WriteFlags,
        _flags: fuser::OpenFlags,
        _lock_owner: Option<fuser::LockOwner>,
        reply: fuser::ReplyWrite,
    ) {
        if offset + data.len() as u64 > self.size {
            reply.error(fuser::Errno::ENOSPC);
            return;
        }
        match self.backing.write_all_at(data, offset) {
            Ok(()) => reply.written(data.len() as u32),
            Err(e) => reply.error(e.into()),
        }
    }

    fn flush(
        &self,
        _req: &fuser::Request,
        _ino: fuser::INodeNo,
        _fh: fuser::FileHandle,
        _lock_owner: fuser::LockOwner,
        reply: fuser::ReplyEmpty,
    ) {
        // close(2), not a device flush.
        reply.ok();
    }

    fn fsync(
        &self,
        _req: &fuser::Request,
        _ino: fuser::INodeNo,
        _fh: fuser::FileHandle,
        _datasync: bool,
        reply: fuser::ReplyEmpty,
    ) {
        // The slow medium: every flush of the device costs `delay` first.
        std::thread::sleep(self.delay);
        match self.backing.sync_data() {
            Ok(()) => reply.ok(),
            Err(e) => reply.error(e.into()),
        }
    }
}
