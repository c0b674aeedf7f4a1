//! The real CrowdSec Local API (LAPI) from Debian 12's `crowdsec` package,
//! offline, for the tests of authguard's CrowdSec member (bouncer pull,
//! machine push). What the API does is written up in
//! `/work/notes/crowdsec-lapi.md` (read from the 1.4.6 source).
//!
//! [`package`] gets the package without installing it (its postinst wants
//! CrowdSec's central API), through [`crate::unpacked`]; so does
//! [`firewall_bouncer`], the official nftables bouncer the benchmark runs
//! side by side.
//!
//! [`Lapi::start`] writes a minimal config into a temporary directory
//! (SQLite database, `api.server.listen_uri` on the address given, no
//! `online_client`, no Prometheus, data/config/hub paths inside the
//! directory), registers the machine `cscli` (whose credentials the real
//! `cscli decisions …` log in with), runs `crowdsec -c CONFIG -no-cs` (the
//! LAPI alone) and waits, bounded, until `GET /health` answers 200.
//! [`Lapi::start_in_netns`] does the same inside a network namespace (`ip
//! netns exec NS …`, the way [`crate::netns`] runs programs): every `cscli`
//! and [`Lapi::curl`] then runs in that namespace too. Drop kills it.
//!
//! The JWT secret is CrowdSec's default: random per LAPI process, so a
//! machine's token does not survive [`Lapi::restart`] (401 "signature is
//! invalid"): that is what a real restart does. Bouncer API keys live in the
//! database and survive.

use crate::env::{release_dir, tempdir};
use crate::sys::{Signal, kill_group};
use crate::unpacked;
pub use crate::unpacked::Package;
use crate::{Finished, run_with_timeout, wait_until};
use serde_json::Value;
use std::fmt::Write as _;
use std::io::Write as _;
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// How long the LAPI may take to answer `/health` after it is spawned (it
/// takes well under a second; the bound covers a loaded CI machine).
pub const START_TIMEOUT: Duration = Duration::from_secs(30);
/// How long one `cscli` or `curl` run may take before it is killed.
const TOOL_TIMEOUT: Duration = Duration::from_secs(60);
/// The password of the machine `cscli` that `cscli decisions …` logs in as.
const CSCLI_MACHINE: &str = "cscli";
const CSCLI_PASSWORD: &str = "authguard-e2e-cscli-password";
/// The organisational unit an https LAPI lets pull with a client certificate.
pub const BOUNCER_OU: &str = "bouncer-ou";
/// The organisational unit an https LAPI lets push with a client certificate.
pub const AGENT_OU: &str = "agent-ou";

/// The package, fetched and unpacked once per machine (reused across test
/// processes, keyed by its version). None, with a note, when it cannot be
/// had outside CI; under `CI=true` that panics (the tests must not skip).
pub fn package() -> Option<&'static Package> {
    static PACKAGE: OnceLock<Result<Package, String>> = OnceLock::new();
    unpacked::once(&PACKAGE, "crowdsec", &["usr/bin/crowdsec", "usr/bin/cscli"])
}

/// Debian's `crowdsec-firewall-bouncer` (the official nftables bouncer,
/// the benchmark's peer), unpacked the same way.
pub fn firewall_bouncer() -> Option<&'static Package> {
    static PACKAGE: OnceLock<Result<Package, String>> = OnceLock::new();
    unpacked::once(
        &PACKAGE,
        "crowdsec-firewall-bouncer",
        &["usr/bin/crowdsec-firewall-bouncer"],
    )
}

/// Where unpacked packages live: `<target>/crowdsec`.
pub fn cache_dir() -> PathBuf {
    unpacked::cache_dir()
}

/// A loopback address with a port nothing listens on (for [`Lapi::start`]).
pub fn free_local_addr() -> SocketAddr {
    SocketAddr::V4(SocketAddrV4::new(
        Ipv4Addr::LOCALHOST,
        crate::sshd::free_port(),
    ))
}

/// What one [`Lapi::curl`] got back.
#[derive(Debug, Clone)]
pub struct HttpReply {
    /// The HTTP status (0 when no response came: connection refused, say).
    pub status: u16,
    /// The response body.
    pub body: String,
    /// The curl run, for assertion messages.
    pub run: Finished,
}

impl HttpReply {
    /// The body as JSON; panics with the reply when it is not.
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| {
            panic!(
                "the LAPI's answer is not JSON ({e}): status {}\n{}",
                self.status,
                self.run.describe()
            )
        })
    }
}

/// A running CrowdSec LAPI with its own config and SQLite database; killed on drop.
#[derive(Debug)]
pub struct Lapi {
    dir: Option<tempfile::TempDir>,
    path: PathBuf,
    package: &'static Package,
    listen: SocketAddr,
    netns: Option<String>,
    /// With TLS: the CA file that signed the LAPI's certificate.
    ca: Option<PathBuf>,
    child: Option<Child>,
    starts: u32,
    /// How long the last start took, from spawn to the first 200 from `/health`.
    pub startup: Duration,
}

impl Lapi {
    /// Starts the LAPI on `listen` (in the host's network namespace). None
    /// (a skip, outside CI) when the package cannot be had.
    pub fn start(listen: SocketAddr) -> Option<Lapi> {
        Lapi::launch_new(listen, None, false)
    }

    /// Starts the LAPI inside network namespace `netns` (e.g. a lab's
    /// [`crate::netns::Lab::server_ns`]) on `listen`, an address of that
    /// namespace. `cscli` and [`Lapi::curl`] then run in `netns` too.
    pub fn start_in_netns(netns: &str, listen: SocketAddr) -> Option<Lapi> {
        Lapi::launch_new(listen, Some(netns.to_owned()), false)
    }

    /// Starts the LAPI on `listen` serving https, with a certificate for
    /// 127.0.0.1 signed by a CA made here ([`Lapi::ca_file`]).
    pub fn start_tls(listen: SocketAddr) -> Option<Lapi> {
        Lapi::launch_new(listen, None, true)
    }

    /// The CA file that signed an https LAPI's certificate.
    pub fn ca_file(&self) -> Option<&Path> {
        self.ca.as_deref()
    }

    /// A client certificate and its key, signed by an https LAPI's CA, with
    /// common name `cn` and organisational units `ous` ([`BOUNCER_OU`] lets
    /// it pull, [`AGENT_OU`] push): CrowdSec's TLS authentication. An X.509
    /// v3 certificate (for client authentication), or with `v1` the bare
    /// kind `openssl x509 -req` makes without extensions, which rustls refuses.
    pub fn client_certificate(&self, cn: &str, ous: &[&str], v1: bool) -> (PathBuf, PathBuf) {
        assert!(
            self.ca.is_some(),
            "a client certificate needs an https LAPI"
        );
        let subject: String = std::iter::once(format!("/CN={cn}"))
            .chain(ous.iter().map(|ou| format!("/OU={ou}")))
            .collect();
        let tls = self.path.join("tls");
        let (key, csr, pem) = (
            format!("{cn}.key"),
            format!("{cn}.csr"),
            format!("{cn}.pem"),
        );
        let mut request = vec!["req", "-newkey", "rsa:2048", "-nodes", "-subj", &subject];
        request.extend(["-keyout", &key, "-out", &csr]);
        openssl(&tls, &request);
        std::fs::write(tls.join("client.ext"), "extendedKeyUsage=clientAuth\n")
            .expect("client.ext");
        let mut sign = vec![
            "x509", "-req", "-in", &csr, "-CA", "ca.pem", "-CAkey", "ca.key",
        ];
        sign.extend(["-CAcreateserial", "-days", "2", "-out", &pem]);
        if !v1 {
            sign.extend(["-extfile", "client.ext"]);
        }
        openssl(&tls, &sign);
        let key = tls.join(key);
        std::fs::set_permissions(&key, std::os::unix::fs::PermissionsExt::from_mode(0o600))
            .expect("chmod the client key");
        (tls.join(pem), key)
    }

    fn launch_new(listen: SocketAddr, netns: Option<String>, tls: bool) -> Option<Lapi> {
        let package = package()?;
        let dir = tempdir("ag-crowdsec-");
        let path = dir.path().to_path_buf();
        let ca = tls.then(|| path_of_ca(&path));
        let mut lapi = Lapi {
            dir: Some(dir),
            path,
            package,
            listen,
            netns,
            child: None,
            starts: 0,
            ca,
            startup: Duration::ZERO,
        };
        if tls {
            make_certificates(&lapi.path, listen);
        }
        lapi.write_config();
        // The machine `cscli decisions …` logs in as (DB only: no LAPI needed).
        let url = lapi.url();
        let mut args = vec![
            "machines",
            "add",
            CSCLI_MACHINE,
            "--password",
            CSCLI_PASSWORD,
        ];
        if tls {
            args.extend(["--url", url.as_str()]);
        }
        lapi.cscli_ok(&args);
        lapi.spawn_and_wait();
        Some(lapi)
    }

    fn write_config(&self) {
        let p = &self.path;
        for sub in ["etc", "etc/notifications", "data", "hub"] {
            std::fs::create_dir_all(p.join(sub)).expect("mkdir in the LAPI's directory");
        }
        let shipped = self.package.root().join("etc/crowdsec");
        for file in ["profiles.yaml", "simulation.yaml"] {
            std::fs::copy(shipped.join(file), p.join("etc").join(file))
                .unwrap_or_else(|e| panic!("copy the package's {file}: {e}"));
        }
        let d = p.display();
        let plugins = self.package.root().join("usr/lib/crowdsec/plugins");
        let config = format!(
            "common:
  daemonize: false
  log_media: stdout
  log_level: info
  working_dir: {d}
config_paths:
  config_dir: {d}/etc/
  data_dir: {d}/data/
  simulation_path: {d}/etc/simulation.yaml
  hub_dir: {d}/hub/
  index_path: {d}/hub/.index.json
  notification_dir: {d}/etc/notifications/
  plugin_dir: {plugins}/
cscli:
  output: human
  color: no
db_config:
  log_level: info
  type: sqlite
  db_path: {d}/data/crowdsec.db
  use_wal: false
api:
  client:
    insecure_skip_verify: {insecure}
    credentials_path: {d}/etc/local_api_credentials.yaml
  server:
    log_level: info
    listen_uri: {listen}{tls}
    profiles_path: {d}/etc/profiles.yaml
    console_path: {d}/etc/console.yaml
    trusted_ips:
      - 127.0.0.1
      - ::1
prometheus:
  enabled: false
",
            plugins = plugins.display(),
            listen = self.listen,
            insecure = self.ca.is_some(),
            tls = if self.ca.is_some() {
                // Client certificates are checked when given (against the
                // same CA): OU `bouncer-ou` pulls, `agent-ou` pushes.
                format!(
                    "\n    tls:\n      cert_file: {d}/tls/server.pem\n      key_file: {d}/tls/server.key\n      client_verification: VerifyClientCertIfGiven\n      ca_cert_path: {d}/tls/ca.pem\n      bouncers_allowed_ou:\n        - {BOUNCER_OU}\n      agents_allowed_ou:\n        - {AGENT_OU}"
                )
            } else {
                String::new()
            },
        );
        std::fs::write(self.config_path(), config).expect("write the LAPI's config.yaml");
    }

    /// The LAPI's `config.yaml`.
    pub fn config_path(&self) -> PathBuf {
        self.path.join("etc/config.yaml")
    }

    /// The LAPI's directory (config, database, log).
    pub fn dir(&self) -> &Path {
        &self.path
    }

    /// The address it listens on.
    pub fn listen(&self) -> SocketAddr {
        self.listen
    }

    /// `http://ADDR:PORT` (IPv6 in brackets), no trailing slash.
    pub fn url(&self) -> String {
        let scheme = if self.ca.is_some() { "https" } else { "http" };
        format!("{scheme}://{}", self.listen)
    }

    /// The network namespace it runs in, if any.
    pub fn netns(&self) -> Option<&str> {
        self.netns.as_deref()
    }

    /// The package it runs from.
    pub fn package(&self) -> &'static Package {
        self.package
    }

    /// Everything the LAPI wrote (all starts, marked), for assertion messages.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.path.join("lapi.log")).unwrap_or_default()
    }

    /// A note with the LAPI's log, for panics.
    pub fn diag(&self) -> String {
        format!(
            "--- crowdsec LAPI log ({}) ---\n{}",
            self.path.join("lapi.log").display(),
            self.log().trim_end()
        )
    }

    /// `program` as a Command in the LAPI's network namespace (`ip netns
    /// exec NS program` there, plain `program` on the host).
    pub fn command(&self, program: impl AsRef<std::ffi::OsStr>) -> Command {
        match &self.netns {
            Some(ns) => {
                let mut cmd = Command::new("ip");
                cmd.args(["netns", "exec", ns]).arg(program);
                cmd
            }
            None => Command::new(program),
        }
    }

    fn spawn(&mut self) {
        self.starts += 1;
        let log_path = self.path.join("lapi.log");
        let open = || {
            std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(&log_path)
                .unwrap_or_else(|e| panic!("open {}: {e}", log_path.display()))
        };
        let mut out = open();
        let _ = writeln!(
            out,
            "=== harness: LAPI start #{} on {}{} ===",
            self.starts,
            self.listen,
            self.netns
                .as_deref()
                .map(|n| format!(" in netns {n}"))
                .unwrap_or_default()
        );
        let mut cmd = self.command(self.package.crowdsec());
        cmd.arg("-c")
            .arg(self.config_path())
            .arg("-no-cs")
            .current_dir(&self.path)
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(open())
            .process_group(0);
        self.child = Some(
            cmd.spawn()
                .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}")),
        );
    }

    fn spawn_and_wait(&mut self) {
        let started = Instant::now();
        self.spawn();
        let mut exited = None;
        let ready = wait_until(START_TIMEOUT, || {
            if let Some(Ok(Some(status))) = self.child.as_mut().map(Child::try_wait) {
                exited = Some(status);
                return true;
            }
            self.health() == 200
        });
        self.startup = started.elapsed();
        if !ready || exited.is_some() {
            let why = match exited {
                Some(status) => format!("crowdsec exited ({status})"),
                None => format!("/health did not answer 200 within {START_TIMEOUT:?}"),
            };
            self.kill();
            panic!(
                "the CrowdSec LAPI did not start on {}: {why}\n{}",
                self.listen,
                self.diag()
            );
        }
    }

    /// The status of `GET /health` (0: no answer).
    /// curl trusts an https LAPI's CA.
    fn trust(&self, cmd: &mut Command) {
        if let Some(ca) = &self.ca {
            cmd.arg("--cacert").arg(ca);
        }
    }

    pub fn health(&self) -> u16 {
        let mut cmd = self.command("curl");
        self.trust(&mut cmd);
        cmd.args(["-s", "-o", "/dev/null", "-m", "2", "-w", "%{http_code}"])
            .arg(format!("{}/health", self.url()));
        let f = run_with_timeout(&mut cmd, None, Duration::from_secs(5));
        f.stdout.trim().parse().unwrap_or(0)
    }

    /// True while the crowdsec process runs.
    pub fn is_running(&mut self) -> bool {
        matches!(self.child.as_mut().map(Child::try_wait), Some(Ok(None)))
    }

    /// The crowdsec process's pid (None when stopped).
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// SIGTERM, then SIGKILL after 5 s; returns once the process is gone
    /// and its port refuses connections. The database stays.
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            kill_group(child.id(), Signal::Term);
            let exited = wait_until(Duration::from_secs(5), || {
                matches!(child.try_wait(), Ok(Some(_)))
            });
            if !exited {
                kill_group(child.id(), Signal::Kill);
            }
            let _ = child.wait();
        }
    }

    fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            kill_group(child.id(), Signal::Kill);
            let _ = child.wait();
        }
    }

    /// Stops the LAPI if it runs and starts it again on the same address and
    /// database, waiting (bounded) until it answers. Machines' JWTs do not
    /// survive this (new random secret); bouncer keys and decisions do.
    pub fn restart(&mut self) {
        self.stop();
        // The old process has exited, so its socket is closed; if something
        // else took the port meanwhile, the start panics saying so.
        self.spawn_and_wait();
    }

    /// `cscli -c CONFIG ARGS…` in the LAPI's namespace, whatever it does.
    pub fn cscli(&self, args: &[&str]) -> Finished {
        let mut cmd = self.command(self.package.cscli());
        cmd.arg("-c").arg(self.config_path()).args(args);
        cmd.current_dir(&self.path);
        run_with_timeout(&mut cmd, None, TOOL_TIMEOUT)
    }

    /// Like [`Lapi::cscli`], panicking (with the LAPI's log) unless it succeeds.
    pub fn cscli_ok(&self, args: &[&str]) -> Finished {
        let f = self.cscli(args);
        assert!(
            f.status.success() && !f.timed_out,
            "cscli {} failed: {}\n{}",
            args.join(" "),
            f.describe(),
            self.diag()
        );
        f
    }

    /// `cscli bouncers add NAME -o raw`: registers a bouncer, returns its API key.
    pub fn add_bouncer(&self, name: &str) -> String {
        let f = self.cscli_ok(&["bouncers", "add", name, "-o", "raw"]);
        let key = f.stdout.trim().to_owned();
        assert!(
            !key.is_empty() && key.chars().all(|c| c.is_ascii_hexdigit()),
            "cscli bouncers add {name} -o raw printed no API key: {}",
            f.describe()
        );
        key
    }

    /// `cscli machines add ID --password PASSWORD -f -`: a machine, validated
    /// at once (cscli adds machines validated). `-f -` prints the credentials
    /// instead of overwriting the `cscli` machine's credentials file.
    pub fn add_machine(&self, id: &str, password: &str) {
        self.cscli_ok(&["machines", "add", id, "--password", password, "-f", "-"]);
    }

    /// `cscli decisions add --ip IP --duration DURATION` (a ban, origin `cscli`).
    pub fn decisions_add_ip(&self, ip: &str, duration: &str) {
        self.cscli_ok(&["decisions", "add", "--ip", ip, "--duration", duration]);
    }

    /// `cscli decisions add --range CIDR --duration DURATION` (scope `Range`;
    /// the value is stored as typed, host bits included).
    pub fn decisions_add_range(&self, cidr: &str, duration: &str) {
        self.cscli_ok(&["decisions", "add", "--range", cidr, "--duration", duration]);
    }

    /// `cscli decisions delete --ip IP`: expires every active decision whose
    /// range contains IP (a covering Range decision too). Returns cscli's
    /// stderr line ("N decision(s) deleted").
    pub fn decisions_delete_ip(&self, ip: &str) -> String {
        self.cscli_ok(&["decisions", "delete", "--ip", ip])
            .stderr
            .trim()
            .to_owned()
    }

    /// `cscli decisions list -o json`: the ALERTS that have an active
    /// decision, each with its `decisions` array (cscli prints `null` when
    /// there are none: this returns `[]` then).
    pub fn decisions_list(&self) -> Value {
        let f = self.cscli_ok(&["decisions", "list", "-o", "json"]);
        let v: Value = serde_json::from_str(f.stdout.trim()).unwrap_or_else(|e| {
            panic!(
                "cscli decisions list -o json printed no JSON ({e}): {}",
                f.describe()
            )
        });
        if v.is_null() {
            Value::Array(Vec::new())
        } else {
            v
        }
    }

    /// The active decisions of [`Lapi::decisions_list`], flattened:
    /// `(scope, value, type, origin)` of each.
    pub fn active_decisions(&self) -> Vec<(String, String, String, String)> {
        let field = |d: &Value, k: &str| d[k].as_str().unwrap_or_default().to_owned();
        self.decisions_list()
            .as_array()
            .into_iter()
            .flatten()
            .flat_map(|alert| alert["decisions"].as_array().cloned().unwrap_or_default())
            .map(|d| {
                (
                    field(&d, "scope"),
                    field(&d, "value"),
                    field(&d, "type"),
                    field(&d, "origin"),
                )
            })
            .collect()
    }

    /// `curl` to the LAPI (in its namespace): `METHOD URL+path` with the
    /// given headers (`"Name: value"`) and JSON body. The reply's status and
    /// body; never panics on an HTTP error (status 0 if nothing answered).
    pub fn curl(
        &self,
        method: &str,
        path: &str,
        headers: &[&str],
        body: Option<&str>,
    ) -> HttpReply {
        let mut cmd = self.command("curl");
        self.trust(&mut cmd);
        cmd.args(["-s", "-S", "-m", "20", "-X", method, "-w", "\n%{http_code}"]);
        for h in headers {
            cmd.arg("-H").arg(h);
        }
        if body.is_some() {
            cmd.args([
                "-H",
                "Content-Type: application/json",
                "--data-binary",
                "@-",
            ]);
        }
        cmd.arg(format!("{}{path}", self.url()));
        let run = run_with_timeout(&mut cmd, body.map(str::as_bytes), TOOL_TIMEOUT);
        let (body, status) = run
            .stdout
            .rsplit_once('\n')
            .map(|(b, s)| (b.to_owned(), s.trim().parse().unwrap_or(0)))
            .unwrap_or_else(|| (String::new(), 0));
        HttpReply { status, body, run }
    }

    /// `GET /v1/decisions/stream[?QUERY]` as bouncer `key`; panics (with the
    /// LAPI's log) unless it answers 200 with JSON. `query` is e.g.
    /// `"startup=true"` or `""`.
    pub fn stream(&self, key: &str, query: &str) -> Value {
        let path = if query.is_empty() {
            "/v1/decisions/stream".to_owned()
        } else {
            format!("/v1/decisions/stream?{query}")
        };
        let r = self.curl("GET", &path, &[&format!("X-Api-Key: {key}")], None);
        assert_eq!(
            r.status,
            200,
            "GET {path}: {}\n{}",
            r.run.describe(),
            self.diag()
        );
        r.json()
    }

    /// `POST /v1/watchers/login` as machine `id`: the JWT. The User-Agent
    /// must be `name/version` (one slash) or the LAPI refuses the login.
    pub fn login(&self, id: &str, password: &str) -> String {
        let body = serde_json::json!({"machine_id": id, "password": password, "scenarios": []});
        let r = self.curl(
            "POST",
            "/v1/watchers/login",
            &["User-Agent: authguard-e2e/1"],
            Some(&body.to_string()),
        );
        let v = r.json();
        let token = v["token"].as_str().unwrap_or_default().to_owned();
        assert!(
            r.status == 200 && !token.is_empty(),
            "login as machine {id}: {}\n{}",
            r.run.describe(),
            self.diag()
        );
        token
    }
}

impl Drop for Lapi {
    fn drop(&mut self) {
        self.kill();
        release_dir(self.dir.take());
    }
}

/// Decisions of a stream answer's `new` or `deleted` (the LAPI sends `null`
/// for an empty list): `(scope, value)` of each.
pub fn stream_values(answer: &Value, which: &str) -> Vec<(String, String)> {
    answer[which]
        .as_array()
        .into_iter()
        .flatten()
        .map(|d| {
            (
                d["scope"].as_str().unwrap_or_default().to_owned(),
                d["value"].as_str().unwrap_or_default().to_owned(),
            )
        })
        .collect()
}

/// One line per decision of a stream answer, for assertion messages.
pub fn describe_stream(answer: &Value) -> String {
    let mut s = String::new();
    for which in ["new", "deleted"] {
        for d in answer[which].as_array().into_iter().flatten() {
            let _ = writeln!(s, "{which}: {d}");
        }
    }
    s
}

fn path_of_ca(dir: &Path) -> PathBuf {
    dir.join("tls/ca.pem")
}

/// `openssl ARGS…` in `dir`, panicking unless it succeeds.
fn openssl(dir: &Path, args: &[&str]) {
    let mut cmd = Command::new("openssl");
    cmd.current_dir(dir).args(args);
    let f = run_with_timeout(&mut cmd, None, Duration::from_secs(30));
    assert!(f.status.success(), "openssl {args:?}: {}", f.describe());
}

/// A CA, and a server certificate it signs for `listen`'s address, with
/// the real `openssl`, into `dir/tls/`.
fn make_certificates(dir: &Path, listen: SocketAddr) {
    let tls = dir.join("tls");
    std::fs::create_dir_all(&tls).expect("mkdir tls");
    let ip = listen.ip();
    let run = |args: &[&str]| openssl(&tls, args);
    run(&[
        "req",
        "-x509",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-days",
        "2",
        "-subj",
        "/CN=authguard test CA",
        "-keyout",
        "ca.key",
        "-out",
        "ca.pem",
    ]);
    run(&[
        "req",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-subj",
        "/CN=lapi",
        "-keyout",
        "server.key",
        "-out",
        "server.csr",
    ]);
    std::fs::write(tls.join("san.ext"), format!("subjectAltName=IP:{ip}\n")).expect("san.ext");
    run(&[
        "x509",
        "-req",
        "-in",
        "server.csr",
        "-CA",
        "ca.pem",
        "-CAkey",
        "ca.key",
        "-CAcreateserial",
        "-days",
        "2",
        "-extfile",
        "san.ext",
        "-out",
        "server.pem",
    ]);
}
