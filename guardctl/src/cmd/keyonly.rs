//! `guardctl keyonly render|apply|status`.

use crate::cli::KeyOnlyCommand;
use crate::context::Context;
use crate::keyonly::{self, Applied};
use crate::output;
use authguard_core::keyonly::KeyOnlySet;
use authguard_core::store::Store;
use authguard_core::time;
use serde_json::json;
use std::process::ExitCode;

pub fn run(ctx: &Context, command: KeyOnlyCommand) -> anyhow::Result<ExitCode> {
    let store = ctx.reader()?;
    let (set, text) = keyonly::rendered(&ctx.config, &store, time::now())?;
    match command {
        KeyOnlyCommand::Render => print!("{text}"),
        KeyOnlyCommand::Apply => {
            let path = keyonly::file_path(&ctx.config);
            match keyonly::apply(&ctx.config, &text)? {
                Applied::Unchanged => println!("{} already up to date", path.display()),
                Applied::Written { reloaded } => {
                    println!("wrote {} ({})", path.display(), describe(&set));
                    ctx.log(&format!(
                        "keyonly: wrote {} ({})",
                        path.display(),
                        describe(&set)
                    ));
                    if reloaded {
                        println!("sshd reloaded");
                    } else {
                        println!(
                            "sshd not reloaded (reload = \"none\"): it reads the file at its next restart"
                        );
                    }
                }
            }
        }
        KeyOnlyCommand::Status(json) => {
            let path = keyonly::file_path(&ctx.config);
            let on_disk = std::fs::read_to_string(&path).ok();
            let in_step = on_disk.as_deref() == Some(text.as_str());
            let mode = ctx.config.keyonly.mode.as_str();
            let countries = countries(ctx, &store)?;
            if json.json {
                output::print_json(&json!({
                    "mode": mode,
                    "countries": ctx.config.geo.keyonly.iter().map(|c| c.as_str()).collect::<Vec<_>>(),
                    "networks": set_json(&set),
                    "file": path.display().to_string(),
                    "file_exists": on_disk.is_some(),
                    "in_step": in_step,
                }));
            } else {
                let mut t = output::key_value_table();
                t.add_row(vec!["mode".to_owned(), mode.to_owned()]);
                t.add_row(vec!["countries".to_owned(), countries]);
                t.add_row(vec!["key-only".to_owned(), describe(&set)]);
                t.add_row(vec![
                    "file".to_owned(),
                    match (&on_disk, in_step) {
                        (None, _) => {
                            format!("{} MISSING (run `guardctl keyonly apply`)", path.display())
                        }
                        (Some(_), true) => format!("{} matches the store", path.display()),
                        (Some(_), false) => format!(
                            "{} DIFFERS from the store (run `guardctl keyonly apply`)",
                            path.display()
                        ),
                    },
                ]);
                println!("{t}");
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
