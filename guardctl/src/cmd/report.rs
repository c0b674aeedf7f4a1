//! `guardctl report ADDR [--since DUR] [--format text|xarf] [--to ADDR]`.

use crate::cli::ReportFormat as Format;
use crate::context::Context;
use crate::report::{self, Envelope, Facts};
use authguard_core::addr;
use authguard_core::time;
use ipnet::IpNet;
use std::process::ExitCode;
use std::time::Duration;

pub fn report(
    ctx: &Context,
    target: &IpNet,
    since: Duration,
    format: Format,
    to: Option<String>,
) -> anyhow::Result<ExitCode> {
    let store = ctx.reader()?;
    let p = &ctx.config.policy;
    let ip = target.addr();
    let network = addr::display(&addr::source_of(ip, p.ipv4_prefix.0, p.ipv6_prefix.0));
    let now = time::now();
    let start = authguard_core::time::before(now, since);
    let rows = store.evidence(&network, start)?;
    if !rows.iter().any(|r| r.outcome != "success") {
        anyhow::bail!(
            "nothing to report: no failed or refused attempts from {network} since {}",
            time::rfc3339(start)
        );
    }
    let host = host_name();
    let (to, to_note) = match to {
        Some(to) => (Some(to), String::new()),
        None => match report::abuse_contact(&ip.to_string()) {
            Ok(Some(contact)) => (Some(contact), String::new()),
            Ok(None) => (
                None,
                "(whois names no abuse contact: find it at the address's registry)".into(),
            ),
            Err(why) => (None, format!("(unknown: {why})")),
        },
    };
    let r = &ctx.config.report;
    let envelope = Envelope {
        from: if r.from.is_empty() {
            format!("root@{host}")
        } else {
            r.from.clone()
        },
        reporter: if r.reporter.is_empty() {
            host
        } else {
            r.reporter.clone()
        },
        to,
        to_note,
    };
    let facts = Facts {
        address: ip.to_string(),
        network,
        rows,
        ports: ctx.config.firewall.ports.clone(),
    };
    match format {
        Format::Text => out!("{}", report::text(&facts, &envelope, now)),
        Format::Xarf => out!("{}", report::xarf(&facts, &envelope, now)),
    }
    Ok(ExitCode::SUCCESS)
}

fn host_name() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_owned())
        .ok()
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "localhost".into())
}
