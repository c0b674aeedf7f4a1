//! `guardctl keyonly render|apply|status`.

use crate::cli::KeyOnlyCommand;
use crate::context::Context;
use crate::keyonly::{self, Applied};
use crate::output;
use authguard_core::policy::keyonly::KeyOnlySet;
use authguard_core::store::Store;
use authguard_core::time;
use serde_json::json;
use std::process::ExitCode;

pub fn run(ctx: &Context, command: KeyOnlyCommand) -> anyhow::Result<ExitCode> {
    let store = ctx.reader()?;
    let set = keyonly::desired_set(&ctx.config, &store, time::now())?;
    let text = keyonly::snippet(&ctx.config, &set);
    match command {
        KeyOnlyCommand::Render => out!("{}", text?),
        KeyOnlyCommand::Apply => {
            let text = text?;
            let path = keyonly::file_path(&ctx.config);
            match keyonly::apply(&ctx.config, &text)? {
                Applied::Unchanged => outln!("{} already up to date", path.display()),
                Applied::Written { reloaded } => {
                    outln!("wrote {} ({})", path.display(), describe(&set));
                    ctx.log(&format!(
                        "keyonly: wrote {} ({})",
                        path.display(),
                        describe(&set)
                    ));
                    if reloaded {
                        outln!("sshd reloaded");
                        // Counted for `guardctl metrics`, as the daemon's reloads are.
                        if let Ok(mut writer) = ctx.writer() {
                            super::daemon::count_reload(ctx, &mut writer);
                        }
                    } else {
                        outln!(
                            "sshd not reloaded (reload = \"none\"): it reads the file at its next restart"
                        );
                    }
                }
            }
        }
        KeyOnlyCommand::Status(json) => {
            let path = keyonly::file_path(&ctx.config);
            let on_disk = std::fs::read_to_string(&path).ok();
            let in_step = text.as_ref().is_ok_and(|t| on_disk.as_ref() == Some(t));
            let mode = ctx.config.keyonly.mode.as_str();
            let k = &ctx.config.keyonly;
            let redirect = keyonly::redirects(&ctx.config);
            let method = if redirect { "redirect" } else { "reload" };
            let listening = redirect && crate::sshd::listening_on(k.port);
            let countries = countries(ctx, &store)?;
            if json.json {
                output::print_json(&json!({
                    "mode": mode,
                    "method": method,
                    "port": redirect.then_some(k.port),
                    "listening": listening,
                    "countries": ctx.config.geo.keyonly.iter().map(|c| c.as_str()).collect::<Vec<_>>(),
                    "networks": set_json(&set),
                    "file": path.display().to_string(),
                    "file_exists": on_disk.is_some(),
                    "in_step": in_step,
                }));
            } else {
                let mut t = output::key_value_table();
                t.add_row(vec!["mode".to_owned(), mode.to_owned()]);
                t.add_row(vec![
                    "method".to_owned(),
                    if !redirect {
                        "reload (sshd re-reads the file when the set changes)".to_owned()
                    } else if listening {
                        format!("redirect to port {} (sshd listens there)", k.port)
                    } else {
                        format!(
                            "redirect to port {} (sshd does NOT listen there: nobody is steered)",
                            k.port
                        )
                    },
                ]);
                t.add_row(vec!["countries".to_owned(), countries]);
                t.add_row(vec!["key-only".to_owned(), describe(&set)]);
                t.add_row(vec![
                    "file".to_owned(),
                    match (&on_disk, in_step) {
                        (None, _) => {
                            format!("{} MISSING (run `guardctl keyonly apply`)", path.display())
                        }
                        (Some(_), true) => format!("{} matches the store", path.display()),
                        (Some(_), false) if text.is_err() => format!(
                            "{} cannot be compared: {:#}",
                            path.display(),
                            text.as_ref()
                                .err()
                                .map(ToString::to_string)
                                .unwrap_or_default()
                        ),
                        (Some(_), false) => format!(
                            "{} DIFFERS from the store (run `guardctl keyonly apply`)",
                            path.display()
                        ),
                    },
                ]);
                outln!("{t}");
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// `[geo] keyonly` in words, naming any country the imported data lacks.
fn countries(ctx: &Context, store: &Store) -> anyhow::Result<String> {
    let mut words = Vec::new();
    for country in &ctx.config.geo.keyonly {
        if store.geo_has_country(*country)? {
            words.push(country.to_string());
        } else {
            words.push(format!(
                "{country} (not in the country data: run `guardctl geo import`)"
            ));
        }
    }
    Ok(if words.is_empty() {
        "none ([geo] keyonly)".into()
    } else {
        words.join(", ")
    })
}

fn describe(set: &KeyOnlySet) -> String {
    match set {
        KeyOnlySet::Nobody => "nobody".into(),
        KeyOnlySet::Networks(n) => format!("{} networks", n.len()),
        KeyOnlySet::AllExcept(n) => format!("everyone but {} networks", n.len()),
    }
}

fn set_json(set: &KeyOnlySet) -> serde_json::Value {
    match set {
        KeyOnlySet::Nobody => json!([]),
        KeyOnlySet::Networks(n) => json!(n.iter().map(ToString::to_string).collect::<Vec<_>>()),
        KeyOnlySet::AllExcept(n) => {
            json!({"all_except": n.iter().map(ToString::to_string).collect::<Vec<_>>()})
        }
    }
}
