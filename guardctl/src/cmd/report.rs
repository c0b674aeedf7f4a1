//! `guardctl report ADDR [--since DUR] [--format text|xarf] [--to ADDR]
//! [--send [--dry-run] [--force]]`, `guardctl report contacts [--json]`,
//! `guardctl report auto [--dry-run] [--json]`.

use crate::BadInput;
use crate::cli::{ReportArgs, ReportCommand, ReportFormat as Format};
use crate::complaints::send::{self, Outgoing};
use crate::complaints::{self, Host, auto, contacts, subnets};
use crate::context::Context;
use crate::mail;
use crate::output::{print_json, relative, table};
use crate::report::{self, MAX_EXCERPT};
use authguard_core::store::reports::SentReport;
use authguard_core::time;
use serde_json::json;
use std::process::ExitCode;

pub fn run(ctx: &Context, args: ReportArgs) -> anyhow::Result<ExitCode> {
    match args.command {
        Some(ReportCommand::Contacts { json }) => list_contacts(ctx, json.json),
        Some(ReportCommand::Auto { dry_run, json }) => auto_pass(ctx, dry_run, json.json),
        None => one(ctx, &args),
    }
}

/// One source's report: printed, or mailed and recorded.
fn one(ctx: &Context, args: &ReportArgs) -> anyhow::Result<ExitCode> {
    let target = args
        .target
        .expect("clap requires ADDR without a subcommand");
    if let Some(to) = &args.to {
        mail::mailbox(to).map_err(|why| BadInput(format!("--to: {why}")))?;
    }
    // A writer keeps the whois answer; a reader still makes a report.
    let mut store = ctx.writer().or_else(|_| ctx.reader())?;
    let now = time::now();
    let start = time::before(now, args.since);
    let host = Host::read(ctx);
    let ip = target.addr();
    let facts = complaints::facts(ctx, &store, &host, ip, start, now)?;
    if !facts.has_offences() {
        anyhow::bail!(
            "nothing to report: no failed or refused attempts from {} since {}",
            facts.network,
            time::rfc3339(start)
        );
    }
    let (to, to_note) = match &args.to {
        Some(to) => (Some(to.clone()), String::new()),
        None => match complaints::abuse_contact(ctx, &mut store, ip, now) {
            Ok(Some(c)) if mail::mailbox(&c).is_ok() => (Some(c), String::new()),
            Ok(Some(c)) => (None, format!("(whois named {c:?}, not a mail address)")),
            Ok(None) => (
                None,
                "(whois names no abuse contact: find it at the address's registry)".into(),
            ),
            Err(why) => (None, format!("(unknown: {why})")),
        },
    };
    let env = host.envelope(ctx, to.clone(), to_note.clone(), now, false);
    let (message, format) = match args.format {
        Format::Text => (report::text(&facts, &env, now), "text"),
        Format::Xarf => (report::xarf(&facts, &env, now), "xarf"),
    };
    if !args.send {
        out!("{message}");
        return Ok(ExitCode::SUCCESS);
    }
    let Some(to) = to else {
        anyhow::bail!("not sent: no recipient {to_note}; name one with --to");
    };
    if let Some(j) = send::standing(ctx, &store, &to, now)?
        && let Some(why) = send::given_up_words(&j, &to, ctx)
        && !args.force
    {
        anyhow::bail!("not sent: {why}; --force sends it all the same");
    }
    let outgoing = Outgoing {
        message,
        report: SentReport {
            sent: now,
            contact: to,
            message_id: env.message_id,
            format,
            auto: false,
            sources: vec![send::reported(&facts, MAX_EXCERPT)],
        },
    };
    let r = &outgoing.report;
    if args.dry_run {
        out!("{}", outgoing.message);
        eprintln!(
            "guardctl: dry run: this is what `{}` would be given for {}; nothing was sent or recorded",
            ctx.config.report.sendmail, r.contact
        );
        return Ok(ExitCode::SUCCESS);
    }
    send::deliver(ctx, &mut store, &outgoing)?;
    subnets::refresh(ctx, &mut store, time::now());
    let s = &r.sources[0];
    outln!(
        "sent to {}: Message-ID <{}>, {} log lines quoted from {} to {}",
        r.contact,
        r.message_id,
        s.lines,
        time::rfc3339(s.first),
        time::rfc3339(s.last)
    );
    Ok(ExitCode::SUCCESS)
}

fn list_contacts(ctx: &Context, as_json: bool) -> anyhow::Result<ExitCode> {
    let store = ctx.reader()?;
    let now = time::now();
    let rows = contacts::all(ctx, &store, now)?;
    let held = store.unresponsive_subnets()?;
    let stricter = |contact: &str| -> Vec<&str> {
        held.iter()
            .filter(|h| h.contact == contact)
            .map(|h| h.subnet.as_str())
            .collect()
    };
    if as_json {
        let list: Vec<_> = rows
            .iter()
            .map(|r| {
                let j = &r.judgement;
                json!({
                    "contact": r.contact,
                    "reports": r.reports,
                    "sources_reported": j.sources_reported,
                    "sources_judged": j.sources_judged,
                    "sources_back": j.sources_back,
                    "last_report": time::rfc3339(r.last_report),
                    "last_report_age_seconds": now.saturating_sub(r.last_report),
                    "verdict": j.verdict.word(),
                    "given_up": j.given_up,
                    "stricter_subnets": stricter(&r.contact),
                })
            })
            .collect();
        print_json(&json!(list));
        return Ok(ExitCode::SUCCESS);
    }
    if rows.is_empty() {
        outln!("no reports sent yet");
        return Ok(ExitCode::SUCCESS);
    }
    let mut t = table(&[
        "contact",
        "reports",
        "sources reported",
        "back after grace",
        "last report",
        "verdict",
        "mailed",
    ]);
    for r in &rows {
        let j = &r.judgement;
        t.add_row(vec![
            r.contact.clone(),
            r.reports.to_string(),
            j.sources_reported.to_string(),
            format!("{} of {} judged", j.sources_back, j.sources_judged),
            relative(r.last_report, now),
            j.verdict.word().to_owned(),
            if j.given_up { "no: given up" } else { "yes" }.to_owned(),
        ]);
    }
    outln!("{t}");
    outln!(
        "back: seen attacking more than {} after its report (grace); given up after {} reports while unresponsive",
        ctx.config.report.grace.0,
        ctx.config.report.give_up_after.0
    );
    if !held.is_empty() {
        outln!(
            "{} subnets of contacts given up on are banned at {} offenders (unresponsive = \"subnet\"): {}",
            held.len(),
            ctx.config.report.unresponsive_subnet_offenders.0,
            held.iter()
                .map(|h| h.subnet.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        );
    }
    Ok(ExitCode::SUCCESS)
}

fn auto_pass(ctx: &Context, dry_run: bool, as_json: bool) -> anyhow::Result<ExitCode> {
    if ctx.config.report.auto.is_empty() {
        return Err(BadInput(
            "[report] auto is empty: no ban is reported automatically (e.g. auto = [\"recidive\"])"
                .into(),
        )
        .into());
    }
    let mut store = ctx.writer()?;
    let pass = auto::run(ctx, &mut store, time::now(), dry_run, |m| out!("{m}"))?;
    if !dry_run {
        subnets::refresh(ctx, &mut store, time::now());
    }
    if as_json {
        print_json(&json!({
            "dry_run": dry_run,
            "sent": pass.sent.iter().map(|(to, id, n)| json!({"to": to, "message_id": id, "sources": n})).collect::<Vec<_>>(),
            "skipped": pass.skipped.iter().map(|(what, why)| json!({"what": what, "why": why})).collect::<Vec<_>>(),
        }));
        return Ok(ExitCode::SUCCESS);
    }
    let mut sent = table(&["to", "sources", "message-id"]);
    for (to, id, n) in &pass.sent {
        sent.add_row(vec![to.clone(), n.to_string(), format!("<{id}>")]);
    }
    let mut skipped = table(&["not reported", "why"]);
    for (what, why) in &pass.skipped {
        skipped.add_row(vec![what.clone(), why.clone()]);
    }
    let say = |text: String| {
        if dry_run {
            eprintln!("{text}");
        } else {
            outln!("{text}");
        }
    };
    let verb = if dry_run { "would send" } else { "sent" };
    say(format!("{verb} {} report(s)", pass.sent.len()));
    if !pass.sent.is_empty() {
        say(sent.to_string());
    }
    if !pass.skipped.is_empty() {
        say(skipped.to_string());
    }
    Ok(ExitCode::SUCCESS)
}
