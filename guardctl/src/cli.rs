//! The command line, as clap types. Values are parsed into typed addresses
//! and durations here, so a bad one is a usage error (exit 2) naming it.

use authguard_core::geo::Country;
use authguard_core::{addr, duration};
use clap::{ArgGroup, Args, Parser, Subcommand};
use ipnet::IpNet;
use std::net::IpAddr;
use std::path::PathBuf;
use std::time::Duration;

/// See and lift authguard's bans, manage its allow list, check its set-up.
#[derive(Debug, Parser)]
#[command(
    name = "guardctl",
    version,
    about = "See and lift authguard's bans, manage its allow list, check its set-up",
    max_term_width = 100
)]
pub struct Cli {
    /// Config file [default: $AUTHGUARD_CONFIG or /etc/authguard/authguard.toml]
    #[arg(long, global = true, value_name = "PATH")]
    pub config: Option<PathBuf>,

    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Create the store, or migrate it to this version's schema (idempotent)
    Init,
    /// Sum up the store: active bans, recent failures, size, schema version
    Status(JsonFlag),
    /// List active bans (with --all, every ban on record)
    List {
        /// Include bans that have ended
        #[arg(long)]
        all: bool,
        /// Only bans of this origin (pam, sshd-log, recidive, subnet, manual, crowdsec)
        #[arg(long, value_name = "ORIGIN")]
        origin: Option<String>,
        #[command(flatten)]
        json: JsonFlag,
    },
    /// Show one source's history: attempts and bans
    Show {
        /// An address or CIDR
        #[arg(value_parser = parse_target, value_name = "ADDR")]
        target: IpNet,
        /// How many of the most recent attempts to show
        #[arg(long, default_value_t = 50)]
        limit: u32,
        #[command(flatten)]
        json: JsonFlag,
    },
    /// Ban an address or network now
    Ban {
        /// An address (counted as its source, e.g. its /64 for IPv6) or CIDR
        #[arg(value_parser = parse_target, value_name = "ADDR|CIDR")]
        target: IpNet,
        /// How long [default: the policy's escalated ban time]
        #[arg(long = "for", value_parser = parse_duration, value_name = "DUR", conflicts_with = "permanent")]
        duration: Option<Duration>,
        /// Until lifted with `guardctl unban`
        #[arg(long)]
        permanent: bool,
        /// Why, for the list and the log
        #[arg(long, default_value = "manual ban")]
        reason: String,
        /// Ban even a network holding your own SSH session, every address
        /// (/0), or one wider than /8 (IPv4) or /32 (IPv6)
        #[arg(long)]
        force: bool,
    },
    /// Lift a ban now and clear the source's pending failures
    #[command(group(ArgGroup::new("which").required(true).args(["target", "all"])))]
    Unban {
        /// An address or CIDR
        #[arg(value_parser = parse_target, value_name = "ADDR|CIDR")]
        target: Option<IpNet>,
        /// Lift every ban
        #[arg(long)]
        all: bool,
        /// Also delete the source's history ("that was me")
        #[arg(long)]
        forget: bool,
    },
    /// Manage networks that are never banned
    #[command(subcommand)]
    Allow(AllowCommand),
    /// Keep the firewall in step with the store (runs in the foreground, for systemd)
    Daemon,
    /// Key-only signaling: sshd offers past offenders only public-key authentication
    #[command(subcommand)]
    Keyonly(KeyOnlyCommand),
    /// Abuse reports: print or mail one source's (with log excerpts), see
    /// which abuse contacts act on them, run the automatic pass
    Report(ReportArgs),
    /// Dry run over an sshd log (plain, .gz or - for stdin): lines, events by kind,
    /// failures by source, and who the current policy would ban
    Scan {
        /// The log file, or - for standard input
        #[arg(value_name = "FILE")]
        input: PathBuf,
        /// Print each event (with --json: one JSON object per line holding an event)
        #[arg(long)]
        events: bool,
        /// List the sshd lines no event was recognised in
        #[arg(long)]
        show_missed: bool,
        #[command(flatten)]
        json: JsonFlag,
    },
    /// Countries: import IP-range files (Tor's geoip/geoip6, CSV, MaxMind .mmdb),
    /// look an address up, block countries in the firewall
    #[command(subcommand)]
    Geo(GeoCommand),
    /// Print Prometheus metrics (text format) read from the store: bans, attempts,
    /// sshd log events, firewall, the daemon's heartbeat; no daemon needed
    Metrics {
        /// Write them atomically into this file (an absolute path ending in .prom,
        /// for node_exporter's textfile collector) instead of printing them
        #[arg(long, value_parser = parse_textfile, value_name = "PATH")]
        textfile: Option<PathBuf>,
    },
    /// Check config, store and the PAM line, and say what to fix
    Check {
        /// The PAM file to inspect
        #[arg(long, value_name = "PATH", default_value = "/etc/pam.d/sshd")]
        pam_file: PathBuf,
    },
}

/// `guardctl report ADDR [--send …]`, or one of its subcommands.
#[derive(Debug, Args)]
#[command(args_conflicts_with_subcommands = true, subcommand_negates_reqs = true)]
pub struct ReportArgs {
    #[command(subcommand)]
    pub command: Option<ReportCommand>,
    /// The offending address
    #[arg(value_parser = parse_target, value_name = "ADDR", required = true)]
    pub target: Option<IpNet>,
    /// How far back [default: 30d]
    #[arg(long, value_parser = parse_duration, value_name = "DUR", default_value = "30d")]
    pub since: Duration,
    /// text (an email) or xarf (X-ARF login-attack)
    #[arg(long, value_enum, default_value = "text")]
    pub format: ReportFormat,
    /// The recipient, instead of the abuse contact whois names
    #[arg(long, value_name = "ADDR")]
    pub to: Option<String>,
    /// Mail it through [report] sendmail and record it in the store
    #[arg(long)]
    pub send: bool,
    /// With --send: print exactly what would go; send and record nothing
    #[arg(long, requires = "send")]
    pub dry_run: bool,
    /// With --send: mail a contact given up on as unresponsive all the same
    #[arg(long, requires = "send")]
    pub force: bool,
}

#[derive(Debug, Subcommand)]
pub enum ReportCommand {
    /// Each abuse contact reported to: reports, sources reported, sources seen
    /// attacking again after [report] grace, last report, verdict
    Contacts {
        #[command(flatten)]
        json: JsonFlag,
    },
    /// Run the automatic pass now (what the daemon does with [report] auto):
    /// mail each contact the sources of its bans not yet reported
    Auto {
        /// Print the emails that would go; send and record nothing
        #[arg(long)]
        dry_run: bool,
        #[command(flatten)]
        json: JsonFlag,
    },
}

/// `guardctl report --format`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ReportFormat {
    /// An email to paste or pipe into `sendmail -t`.
    Text,
    /// X-ARF 0.2, `login-attack` schema, for ISPs that take machine-readable reports.
    Xarf,
}

#[derive(Debug, Subcommand)]
pub enum GeoCommand {
    /// Replace the store's country data with these files, all at once (e.g.
    /// /usr/share/tor/geoip /usr/share/tor/geoip6; DB-IP or IP2Location CSV;
    /// a MaxMind DB such as GeoLite2-Country.mmdb or DB-IP's country lite .mmdb)
    Import {
        /// The files; a MaxMind DB is told by its content, a text file's format
        /// by its first data line
        #[arg(required = true, value_name = "FILE")]
        files: Vec<PathBuf>,
        #[command(flatten)]
        json: JsonFlag,
    },
    /// Print an address's country (or "unknown")
    Lookup {
        /// One address
        #[arg(value_parser = parse_address, value_name = "ADDR")]
        address: IpAddr,
        #[command(flatten)]
        json: JsonFlag,
    },
    /// Drop these countries' connections in the firewall (after allowed networks);
    /// refused when it would lock you out
    Block {
        /// Two-letter country codes, any case (e.g. CN RU)
        #[arg(required = true, value_parser = parse_country, value_name = "CC")]
        countries: Vec<Country>,
        /// Block even though your SSH session or an allowed network is in one of them
        #[arg(long)]
        force: bool,
    },
    /// Stop blocking these countries
    Unblock {
        /// Two-letter country codes, any case
        #[arg(required = true, value_parser = parse_country, value_name = "CC")]
        countries: Vec<Country>,
    },
    /// List blocked countries with their number of ranges
    List(JsonFlag),
}

#[derive(Debug, Subcommand)]
pub enum KeyOnlyCommand {
    /// Print the sshd_config snippet the policy wants now
    Render,
    /// Write it into sshd_config_dir (validated with `sshd -t`, rolled back if refused) and reload sshd
    Apply,
    /// Mode, how many networks are key-only, and whether the file on disk matches
    Status(JsonFlag),
}

#[derive(Debug, Subcommand)]
pub enum AllowCommand {
    /// Allow a network (lifts the bans inside it)
    Add {
        #[arg(value_parser = parse_target, value_name = "CIDR")]
        target: IpNet,
        /// A note to remember why
        #[arg(long, default_value = "")]
        comment: String,
    },
    /// Remove a network added with `allow add`
    Remove {
        #[arg(value_parser = parse_target, value_name = "CIDR")]
        target: IpNet,
    },
    /// List allowed networks (config and store)
    List(JsonFlag),
}

#[derive(Debug, Args, Clone, Copy)]
pub struct JsonFlag {
    /// Print JSON for programs instead of a table
    #[arg(long)]
    pub json: bool,
}

fn parse_target(s: &str) -> Result<IpNet, String> {
    addr::parse_target(s).map_err(|e| e.to_string())
}

/// One address (IPv4-mapped IPv6 as IPv4), not a network.
fn parse_address(s: &str) -> Result<IpAddr, String> {
    match addr::parse_target(s) {
        Ok(net) if net.prefix_len() == net.max_prefix_len() => Ok(net.addr()),
        Ok(_) => Err(format!("`{s}` is a network; give one address")),
        Err(e) => Err(e.to_string()),
    }
}

/// A two-letter country code, uppercased.
fn parse_country(s: &str) -> Result<Country, String> {
    match Country::parse(s) {
        Ok(Some(c)) => Ok(c),
        Ok(None) => Err(format!(
            "`{s}` marks ranges of unknown country; give a two-letter country code"
        )),
        Err(e) => Err(e),
    }
}

/// `--textfile`: as `[metrics] textfile`, but never empty.
fn parse_textfile(s: &str) -> Result<PathBuf, String> {
    authguard_core::config::Textfile::try_from(s.to_owned())?
        .0
        .ok_or_else(|| "give the file's path".to_owned())
}

fn parse_duration(s: &str) -> Result<Duration, String> {
    match duration::parse(s) {
        Ok(d) if d.is_zero() => Err("a ban must last longer than 0s".into()),
        Ok(d) => Ok(d),
        Err(e) => Err(e.to_string()),
    }
}
