//! `guardctl allow add|remove|list`.

use crate::BadInput;
use crate::cli::AllowCommand;
use crate::context::Context;
use crate::output::{print_json, table};
use authguard_core::addr;
use authguard_core::syslog::untrusted;
use authguard_core::time;
use serde_json::json;
use std::process::ExitCode;

pub fn run(ctx: &Context, command: AllowCommand) -> anyhow::Result<ExitCode> {
    match command {
        AllowCommand::Add { target, comment } => {
            let mut store = ctx.writer()?;
            let name = addr::display(&target);
            let (added, lifted) = store.allow_add(&target, &comment, time::now())?;
            outln!(
                "{} {name}",
                if added { "allowed" } else { "already allowed:" }
            );
            for source in lifted {
                outln!("unbanned {source} (now allowed)");
                ctx.log(&format!("unban {source} (allowed by {name})"));
            }
            if added {
                ctx.log(&format!("allow {name}: {}", untrusted(comment.as_bytes())));
                crate::firewall::push_now(&ctx.config, &store, None);
            }
        }
        AllowCommand::Remove { target } => {
            let name = addr::display(&target);
            if ctx.config.allow.iter().any(|c| c.0 == target) {
                return Err(BadInput(format!(
                    "{name} is allowed by the config file {}; edit `allow` there",
                    ctx.config_path.display()
                ))
                .into());
            }
            let mut store = ctx.writer()?;
            if !store.allow_remove(&target)? {
                return Err(BadInput(format!("{name} is not in the allow list")).into());
            }
            outln!("removed {name} from the allow list");
            ctx.log(&format!("allow remove {name}"));
            crate::firewall::push_now(&ctx.config, &store, None);
        }
        AllowCommand::List(f) => {
            let store = ctx.reader()?;
            let mut rows: Vec<(String, String, String, String)> = ctx
                .config
                .allow
                .iter()
                .map(|c| {
                    (
                        addr::display(&c.0),
                        "config".into(),
                        String::new(),
                        String::new(),
                    )
                })
                .collect();
            for e in store.allow_list()? {
                rows.push((e.network, "store".into(), time::rfc3339(e.added), e.comment));
            }
            if f.json {
                print_json(&json!(
                    rows.iter()
                        .map(|(n, o, a, c)| json!({
                            "network": n, "origin": o,
                            "added": if a.is_empty() { None } else { Some(a) },
                            "comment": c,
                        }))
                        .collect::<Vec<_>>()
                ));
            } else {
                let mut t = table(&["network", "from", "added", "comment"]);
                for (n, o, a, c) in rows {
                    t.add_row(vec![n, o, a, untrusted(c.as_bytes()).into_owned()]);
                }
                outln!("{t}");
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}
