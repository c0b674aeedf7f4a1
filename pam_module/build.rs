//! Links the unwinder into the module instead of loading libgcc_s.so.1.
//!
//! A panic must unwind to the hook's `catch_unwind` (it becomes the fail
//! mode's answer), so the module needs an unwinder; Rust's std asks for it
//! as `-lgcc_s`. As a shared library that is one more object for the dynamic
//! loader to map, relocate and initialise (its CPU-feature probe runs CPUID,
//! which traps in a VM) in every sshd authentication: measured 0.18 ms of a
//! 1.4 ms PAM run. The same unwinder exists as a static archive,
//! libgcc_eh.a, the one `gcc -shared -static-libgcc` links. A directory
//! searched before the system's, holding it under the name `libgcc_s.a`,
//! makes `-lgcc_s` resolve to it. If gcc does not know the archive, nothing
//! changes and the module links libgcc_s.so.1 as before.

use std::path::PathBuf;
use std::process::Command;

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    let Some(archive) = libgcc_eh() else {
        println!("cargo:warning=libgcc_eh.a not found: the module will load libgcc_s.so.1");
        return;
    };
    let Some(out) = std::env::var_os("OUT_DIR").map(PathBuf::from) else {
        return;
    };
    let dir = out.join("static-unwinder");
    let copy = dir.join("libgcc_s.a");
    let linked = std::fs::create_dir_all(&dir)
        .and_then(|()| std::fs::copy(&archive, &copy))
        .is_ok();
    if linked {
        println!("cargo:rustc-link-search=native={}", dir.display());
    }
}

/// The static unwinder of the C compiler the build uses, if it has one.
fn libgcc_eh() -> Option<PathBuf> {
    let cc = std::env::var("CC").unwrap_or_else(|_| "cc".to_owned());
    let out = Command::new(cc)
        .arg("-print-file-name=libgcc_eh.a")
        .output()
        .ok()?;
    let path = PathBuf::from(String::from_utf8(out.stdout).ok()?.trim());
    // gcc prints the bare name back when it has no such file.
    path.is_absolute().then_some(path).filter(|p| p.is_file())
}
