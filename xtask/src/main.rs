//! `cargo run -p xtask -- assets DIR`: writes guardctl's man page
//! (`guardctl.8`) and bash completion (`guardctl.bash`), generated from the
//! clap definition in `guardctl/src/cli.rs` (included here by path, so there
//! is one definition), and `authguard.toml.5`, generated from the shipped
//! config (see `config_man`). The Debian package ships all three.
//!
//! Nothing here runs at install time or on a server.

#![forbid(unsafe_code)]

mod config_man;

#[path = "../../guardctl/src/cli.rs"]
#[allow(dead_code)]
mod cli;

use anyhow::{Context, bail};
use clap::CommandFactory;
use std::path::Path;
use std::process::ExitCode;

fn main() -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("xtask: {e:#}");
            ExitCode::from(2)
        }
    }
}

fn run() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [verb, dir] = args.as_slice() else {
        bail!("usage: xtask assets DIR");
    };
    if verb != "assets" {
        bail!("unknown verb {verb:?} (known: assets)");
    }
    let dir = Path::new(dir);
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    write_man(dir)?;
    let config_page = dir.join("authguard.toml.5");
    std::fs::write(&config_page, config_man::render())
        .with_context(|| format!("cannot write {}", config_page.display()))?;
    write_completion(dir)
}

/// `guardctl.8`: section 8 (system administration), one page for all
/// verbs, as OpenSSH's pages do, plus files, exit status and see-also.
fn write_man(dir: &Path) -> anyhow::Result<()> {
    let cmd = guardctl_command();
    let man = clap_mangen::Man::new(cmd.clone())
        .section("8")
        .manual("authguard")
        .source(format!("authguard {}", env!("CARGO_PKG_VERSION")));
    let mut page = Vec::new();
    man.render_title(&mut page)?;
    man.render_name_section(&mut page)?;
    man.render_synopsis_section(&mut page)?;
    man.render_description_section(&mut page)?;
    man.render_options_section(&mut page)?;
    page.extend_from_slice(b".SH VERBS\n");
    for sub in cmd.get_subcommands().filter(|s| !s.is_hide_set()) {
        let name = format!("guardctl {}", sub.get_name());
        let man = clap_mangen::Man::new(sub.clone().name(name.clone()));
        let mut synopsis = Vec::new();
        man.render_synopsis_section(&mut synopsis)?;
        let mut options = Vec::new();
        man.render_options_section(&mut options)?;
        let about = sub.get_about().map(ToString::to_string).unwrap_or_default();
        let part = format!(
            ".SS \"{name}\"\n{about}\n.PP\n{}{}",
            body(&synopsis),
            body(&options)
        );
        page.extend_from_slice(part.as_bytes());
    }
    page.extend_from_slice(include_str!("guardctl.8.tail").as_bytes());
    let path = dir.join("guardctl.8");
    std::fs::write(&path, page).with_context(|| format!("cannot write {}", path.display()))
}

/// guardctl's clap command (the same workspace version as the binary's).
fn guardctl_command() -> clap::Command {
    cli::Cli::command().name("guardctl")
}

/// A rendered section without its `.SH` heading line.
fn body(section: &[u8]) -> String {
    let text = String::from_utf8_lossy(section);
    text.lines()
        .filter(|l| !l.starts_with(".SH "))
        .map(|l| format!("{l}\n"))
        .collect()
}

fn write_completion(dir: &Path) -> anyhow::Result<()> {
    let mut cmd = guardctl_command();
    let path = dir.join("guardctl.bash");
    let mut file =
        std::fs::File::create(&path).with_context(|| format!("cannot write {}", path.display()))?;
    clap_complete::generate(clap_complete::Shell::Bash, &mut cmd, "guardctl", &mut file);
    Ok(())
}
