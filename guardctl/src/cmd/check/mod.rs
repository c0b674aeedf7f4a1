//! `guardctl check`: is the set-up sound, and if not, what to do, in plain words.
//! (A config that does not parse never gets here: loading it fails first,
//! with the key and line, exit 2.)

mod fleet;
mod geo;
mod sshd;

use crate::context::Context;
use crate::pam_file::{self, PamLine};
use authguard_core::store::{self, Access, Store, StoreError};
use std::path::Path;
use std::process::ExitCode;
use std::time::Duration;

/// One finding.
struct Finding {
    ok: bool,
    /// A problem that weakens the guard without breaking it: printed as
    /// WARN, and `check` still succeeds.
    warn: bool,
    what: String,
    fix: Option<String>,
}

impl Finding {
    pub(super) fn ok(what: String) -> Finding {
        Finding {
            ok: true,
            warn: false,
            what,
            fix: None,
        }
    }

    pub(super) fn fail(what: String, fix: Option<String>) -> Finding {
        Finding {
            ok: false,
            warn: false,
            what,
            fix,
        }
    }

    pub(super) fn warning(what: String, fix: String) -> Finding {
        Finding {
            ok: true,
            warn: true,
            what,
            fix: Some(fix),
        }
    }

    fn label(&self) -> &'static str {
        match (self.ok, self.warn) {
            (_, true) => "WARN",
            (true, false) => "ok  ",
            (false, false) => "FAIL",
        }
    }
}

pub fn check(ctx: &Context, pam_file: &Path) -> anyhow::Result<ExitCode> {
    // One connection for every finding that reads the store.
    let store = Store::open(ctx.store_path(), Access::Read, Duration::from_secs(2));
    let mut findings = vec![
        config_finding(ctx),
        store_finding(ctx, &store),
        pam_finding(pam_file),
    ];
    let lport = ctx.config.firewall.ports.first().copied().unwrap_or(22);
    findings.extend(sshd::findings(
        &ctx.config.keyonly.sshd_config,
        pam_file,
        lport,
    ));
    findings.extend([
        daemon_finding(ctx, store.as_ref().ok()),
        keyonly_finding(ctx),
        steering_finding(ctx),
        geo::blocked_finding(ctx, store.as_ref().ok()),
        geo::keyonly_finding(ctx, store.as_ref().ok()),
        fleet::finding(ctx, store.as_ref().ok()),
    ]);
    for f in &findings {
        outln!("{} {}", f.label(), f.what);
        if let Some(fix) = &f.fix {
            outln!("     fix: {fix}");
        }
    }
    Ok(if findings.iter().all(|f| f.ok) {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

/// Key-only signaling needs sshd's main config to include the drop-in
/// directory, with no `Match` block before it (the first value sshd
/// obtains for a connection wins, so an earlier block could override ours).
fn keyonly_finding(ctx: &Context) -> Finding {
    let k = &ctx.config.keyonly;
    if !crate::keyonly::wanted(&ctx.config) {
        return Finding::ok("key-only signaling is off".into());
    }
    let dir = k.sshd_config_dir.display().to_string();
    let Ok(text) = std::fs::read_to_string(&k.sshd_config) else {
        return Finding::warning(
            format!(
                "cannot read {}: key-only signaling reaches sshd only through PAM refusals",
                k.sshd_config.display()
            ),
            "install openssh-server, or set [keyonly] sshd_config".into(),
        );
    };
    match sshd_include_place(&text, &dir) {
        IncludePlace::Missing => Finding::warning(
            format!(
                "{} does not include {dir}: sshd still offers passwords to key-only sources (PAM refuses them)",
                k.sshd_config.display()
            ),
            format!(
                "add `Include {dir}/*.conf` at the top of {}",
                k.sshd_config.display()
            ),
        ),
        IncludePlace::AfterMatch(line) => Finding::warning(
            format!(
                "{} includes {dir} after a Match block (line {line}) that can override the key-only settings",
                k.sshd_config.display()
            ),
            format!("move `Include {dir}/*.conf` above line {line}"),
        ),
        IncludePlace::Fine => Finding::ok(format!(
            "{} includes {dir} for key-only signaling",
            k.sshd_config.display()
        )),
    }
}

/// With `[keyonly] method = "redirect"`: the key-only listener's snippet
/// is in place and sshd listens on its port (the firewall steers nobody
/// to a port that is not served).
fn steering_finding(ctx: &Context) -> Finding {
    let config = &ctx.config;
    if !crate::keyonly::wants_listener(config) {
        return Finding::ok(format!(
            "key-only method: {} (sshd is reloaded when the key-only set changes)",
            if crate::keyonly::wanted(config) {
                "reload"
            } else {
                "none needed"
            }
        ));
    }
    let port = config.keyonly.port;
    let file = crate::keyonly::file_path(config);
    let text = std::fs::read_to_string(&file).unwrap_or_default();
    let fix = "run `guardctl keyonly apply` (or start `guardctl daemon`)".to_owned();
    if !ssh_hook::keyonly::Listening::of_snippet(&text)
        .ports
        .contains(&port)
    {
        return Finding::warning(
            format!(
                "{} does not hold the key-only listener on port {port}: key-only sources are refused by PAM but not told to use a key",
                file.display()
            ),
            fix,
        );
    }
    if !crate::sshd::listening_on(port) {
        return Finding::warning(
            format!(
                "sshd does not listen on the key-only port {port}: the firewall steers nobody there"
            ),
            format!("reload sshd (`systemctl reload ssh`), or {fix}"),
        );
    }
    Finding::ok(format!(
        "key-only sources are steered to sshd's key-only listener on port {port} (no sshd reload per offender)"
    ))
}

#[derive(Debug, PartialEq, Eq)]
enum IncludePlace {
    Missing,
    /// After the `Match` block starting on this line (1-based).
    AfterMatch(usize),
    Fine,
}

fn sshd_include_place(text: &str, dir: &str) -> IncludePlace {
    let dir = dir.trim_end_matches('/');
    let mut first_match = None;
    for (n, line) in text.lines().enumerate() {
        let mut words = line.split('#').next().unwrap_or("").split_whitespace();
        let Some(keyword) = words.next() else {
            continue;
        };
        if keyword.eq_ignore_ascii_case("match") {
            first_match.get_or_insert(n + 1);
        } else if keyword.eq_ignore_ascii_case("include")
            && words.any(|w| w.starts_with(&format!("{dir}/")))
        {
            return match first_match {
                Some(line) => IncludePlace::AfterMatch(line),
                None => IncludePlace::Fine,
            };
        }
    }
    IncludePlace::Missing
}

fn config_finding(ctx: &Context) -> Finding {
    let what = if ctx.config_found {
        format!("config {} is valid", ctx.config_path.display())
    } else {
        format!(
            "config {} not found: the defaults are in force",
            ctx.config_path.display()
        )
    };
    Finding::ok(what)
}

fn store_finding(ctx: &Context, store: &Result<Store, StoreError>) -> Finding {
    match store {
        Ok(_) => Finding::ok(format!(
            "store {} opens, schema {}",
            ctx.store_path().display(),
            store::SCHEMA_VERSION
        )),
        Err(e) => Finding::fail(
            format!("store: {e}"),
            Some("run `guardctl init` as root (it creates or migrates the store)".into()),
        ),
    }
}

/// Is `guardctl daemon` keeping the firewall in step? Only asked when the
/// firewall backend is on and the store opens.
fn daemon_finding(ctx: &Context, store: Option<&Store>) -> Finding {
    use authguard_core::config::FirewallBackend;
    if ctx.config.firewall.backend == FirewallBackend::None {
        return Finding::ok("firewall backend is none: no daemon needed".into());
    }
    let Some(store) = store else {
        return Finding::fail("daemon: cannot tell (the store does not open)".into(), None);
    };
    let part = super::status::daemon_state(ctx, store, authguard_core::time::now());
    let alive = part
        .json
        .get("alive")
        .and_then(|v| v.as_bool())
        .unwrap_or(false);
    let what = format!("daemon: {}", part.text);
    if alive {
        return Finding::ok(what);
    }
    Finding::fail(
        what,
        Some(
            "start it: `systemctl enable --now authguard.service` (or run `guardctl daemon`); \
             until then bans are refused by PAM but not dropped by the firewall"
                .into(),
        ),
    )
}

fn pam_finding(pam_file: &Path) -> Finding {
    const LINE: &str = "auth requisite pam_authguard.so";
    let text = match std::fs::read_to_string(pam_file) {
        Ok(t) => t,
        Err(e) => {
            return Finding::fail(
                format!("cannot read {}: {e}", pam_file.display()),
                Some("is openssh-server installed?".into()),
            );
        }
    };
    let file = pam_file.display();
    match pam_file::locate(&text) {
        PamLine::Before { control } if control == "requisite" || control == "required" => {
            Finding::ok(format!(
                "{file} has the authguard line before the password check"
            ))
        }
        PamLine::Before { control } => Finding::fail(
            format!("{file} has pam_authguard.so as `{control}`: its refusals are not enforced"),
            Some(format!("make it `{LINE}`")),
        ),
        PamLine::After => Finding::fail(
            format!(
                "{file} has pam_authguard.so after the password check: offenders' passwords are still tried"
            ),
            Some(format!("move `{LINE}` above `@include common-auth`")),
        ),
        PamLine::Missing => Finding::fail(
            format!("{file} does not use pam_authguard.so: nothing is guarded"),
            Some(format!("add `{LINE}` above `@include common-auth`")),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_where_sshd_includes_the_drop_in_directory() {
        let dir = "/etc/ssh/sshd_config.d";
        let debian = "# comment\nInclude /etc/ssh/sshd_config.d/*.conf\nPort 22\nMatch User x\n  X11Forwarding no\n";
        assert_eq!(sshd_include_place(debian, dir), IncludePlace::Fine);
        let late = "Port 22\nMatch Address 10.0.0.0/8\n  PasswordAuthentication yes\ninclude /etc/ssh/sshd_config.d/*\n";
        assert_eq!(sshd_include_place(late, dir), IncludePlace::AfterMatch(2));
        assert_eq!(
            sshd_include_place("Port 22\n#Include /etc/ssh/sshd_config.d/*.conf\n", dir),
            IncludePlace::Missing
        );
    }
}
