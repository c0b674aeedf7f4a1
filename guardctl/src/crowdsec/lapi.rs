//! The HTTP side of the fleet: CrowdSec's Local API as a bouncer reads it
//! (`GET /v1/decisions/stream`; the machine side is [`super::machine`]). Blocking (ureq on rustls), every request
//! bounded by `[crowdsec] timeout`, every body by [`MAX_BODY`], and the
//! stream parsed as it arrives: a decision is judged and kept compact
//! before the next is read, so a community blocklist never sits in memory
//! as JSON. Credentials are read from their files and never logged.

use super::decisions::{Intake, Judge};
use anyhow::{Context as _, bail};
use authguard_core::config::{CrowdsecConfig, Url};
use std::io::Read;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

/// The most a stream body may hold (a million decisions is about 200 MB).
pub const MAX_BODY: u64 = 256 << 20;

/// What the LAPI is told we are (it wants `name/version`).
const USER_AGENT: &str = concat!("authguard/", env!("CARGO_PKG_VERSION"));

/// A connection to the LAPI as a bouncer.
pub struct Lapi {
    agent: ureq::Agent,
    base: String,
    /// None: the TLS client certificate authenticates.
    api_key: Option<String>,
}

impl std::fmt::Debug for Lapi {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the key.
        f.debug_struct("Lapi")
            .field("base", &self.base)
            .finish_non_exhaustive()
    }
}

impl Lapi {
    /// A client for `[crowdsec]`: reads the API key (a file of mode 0600
    /// or stricter; not with a client certificate) and the TLS files.
    pub fn new(config: &CrowdsecConfig) -> anyhow::Result<Lapi> {
        Url::parse(&config.url).map_err(anyhow::Error::msg)?;
        let api_key = credential(config, &config.api_key_file, "api_key_file")?;
        Ok(Lapi {
            agent: agent(config)?,
            base: config.url.trim_end_matches('/').to_owned(),
            api_key,
        })
    }

    /// The active decisions for exactly `value` (`GET /v1/decisions`), as
    /// `(id, origin, scenario)`: how a retried push learns whether its first
    /// try got through.
    pub fn decisions_for(&self, value: &str) -> anyhow::Result<Vec<(i64, String, String)>> {
        let url = format!("{}/v1/decisions?value={value}", self.base);
        let mut response = self
            .agent
            .get(&url)
            .with_key(self.api_key.as_deref())
            .call()?;
        let status = response.status().as_u16();
        let text = read_body(&mut response)?;
        if status != 200 {
            bail!("the LAPI answered {status}: {}", snippet(text.as_bytes()));
        }
        let list: Option<Vec<serde_json::Value>> = serde_json::from_str(&text)?;
        Ok(list
            .unwrap_or_default()
            .iter()
            .filter_map(|d| {
                let word = |k: &str| d[k].as_str().unwrap_or_default().to_owned();
                Some((d["id"].as_i64()?, word("origin"), word("scenario")))
            })
            .collect())
    }

    /// `GET /v1/decisions/stream` (`startup=true` for everything active),
    /// each decision judged into `intake` as it is parsed.
    pub fn stream(
        &self,
        startup: bool,
        judge: &Judge<'_>,
        intake: &mut Intake<'_>,
    ) -> anyhow::Result<()> {
        let url = format!("{}/v1/decisions/stream?startup={startup}", self.base);
        let mut response = self
            .agent
            .get(&url)
            .with_key(self.api_key.as_deref())
            .call()
            .with_context(|| format!("cannot reach the LAPI at {}", self.base))?;
        let status = response.status().as_u16();
        let reader = response.body_mut().with_config().limit(MAX_BODY).reader();
        if status != 200 {
            bail!("the LAPI answered {status}: {}", snippet(reader));
        }
        super::decisions::parse_stream(reader, judge, intake)
    }
}

/// A bouncer's request with its `X-Api-Key`, when it has one.
trait WithKey: Sized {
    fn with_key(self, key: Option<&str>) -> Self;
}

impl<B> WithKey for ureq::RequestBuilder<B> {
    fn with_key(self, key: Option<&str>) -> Self {
        match key {
            Some(k) => self.header("X-Api-Key", k),
            None => self,
        }
    }
}

/// The HTTP agent every request goes through: timeouts, TLS, our name.
pub(super) fn agent(config: &CrowdsecConfig) -> anyhow::Result<ureq::Agent> {
    Ok(ureq::Agent::config_builder()
        .timeout_global(Some(config.timeout.0.0))
        .user_agent(USER_AGENT)
        .http_status_as_error(false)
        .tls_config(tls_config(config)?)
        .build()
        .into())
}

/// A small answer's body (login, alert ids), at most 1 MiB.
pub(super) fn read_body(response: &mut ureq::http::Response<ureq::Body>) -> anyhow::Result<String> {
    Ok(response
        .body_mut()
        .with_config()
        .limit(1 << 20)
        .read_to_string()?)
}

/// The first bytes of an error body, for the log line.
pub(super) fn snippet(reader: impl Read) -> String {
    let mut text = String::new();
    let _ = reader.take(200).read_to_string(&mut text);
    authguard_core::syslog::untrusted(text.trim().as_bytes()).into_owned()
}

/// The credential `key` names (`path`), or None when a TLS client
/// certificate authenticates instead (`[crowdsec] cert_file`): then the
/// file is not read.
pub fn credential(
    config: &CrowdsecConfig,
    path: &Path,
    key: &str,
) -> anyhow::Result<Option<String>> {
    if config.client_cert() {
        return Ok(None);
    }
    read_secret(path, key).map(Some)
}

/// A credential from its file: one line, trimmed; the file must not be
/// readable by group or others.
fn read_secret(path: &Path, key: &str) -> anyhow::Result<String> {
    let meta = std::fs::metadata(path)
        .with_context(|| format!("[crowdsec] {key} {}: cannot read it", path.display()))?;
    if meta.permissions().mode() & 0o077 != 0 {
        bail!(
            "[crowdsec] {key} {} is readable by others (mode {:o}): chmod 600 it",
            path.display(),
            meta.permissions().mode() & 0o777
        );
    }
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("[crowdsec] {key} {}: cannot read it", path.display()))?;
    let secret = text.trim();
    if secret.is_empty() || secret.contains(char::is_whitespace) {
        bail!("[crowdsec] {key} {}: expected one word", path.display());
    }
    Ok(secret.to_owned())
}

fn tls_config(config: &CrowdsecConfig) -> anyhow::Result<ureq::tls::TlsConfig> {
    use ureq::tls::{Certificate, ClientCert, PrivateKey, RootCerts, TlsConfig};
    let mut tls = TlsConfig::builder();
    if !config.ca_file.as_os_str().is_empty() {
        let pem = std::fs::read(&config.ca_file)
            .with_context(|| format!("[crowdsec] ca_file {}", config.ca_file.display()))?;
        let cert = Certificate::from_pem(&pem).with_context(|| {
            format!(
                "[crowdsec] ca_file {}: not a PEM certificate",
                config.ca_file.display()
            )
        })?;
        tls = tls.root_certs(RootCerts::new_with_certs(&[cert.to_owned()]));
    }
    if !config.cert_file.as_os_str().is_empty() {
        let cert = std::fs::read(&config.cert_file)
            .with_context(|| format!("[crowdsec] cert_file {}", config.cert_file.display()))?;
        let key = std::fs::read(&config.key_file)
            .with_context(|| format!("[crowdsec] key_file {}", config.key_file.display()))?;
        usable_client_cert(&cert, &key).with_context(|| {
            format!(
                "[crowdsec] cert_file {} with key_file {}",
                config.cert_file.display(),
                config.key_file.display()
            )
        })?;
        let cert =
            Certificate::from_pem(&cert).context("[crowdsec] cert_file: not a PEM certificate")?;
        let key =
            PrivateKey::from_pem(&key).context("[crowdsec] key_file: not a PEM private key")?;
        tls = tls.client_cert(Some(ClientCert::new_with_certs(
            &[cert.to_owned()],
            key.to_owned(),
        )));
    }
    Ok(tls.build())
}

/// What rustls says of a client certificate and its key (both PEM), asked
/// before ureq is given them: ureq panics on what rustls refuses (an X.509
/// v1 certificate, a key that is not the certificate's).
fn usable_client_cert(cert_pem: &[u8], key_pem: &[u8]) -> anyhow::Result<()> {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};
    let chain = CertificateDer::pem_slice_iter(cert_pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| anyhow::anyhow!("not a PEM certificate: {e}"))?;
    let key = PrivateKeyDer::from_pem_slice(key_pem)
        .map_err(|e| anyhow::anyhow!("not a PEM private key: {e}"))?;
    // The provider ureq itself builds its config with (deprecated in this
    // rustls for lacking post-quantum key exchange, which a key check needs not).
    #[allow(deprecated)]
    let provider = rustls::crypto::ring::default_provider();
    rustls::sign::CertifiedKey::from_der(chain, key, &provider)
        .map_err(|e| anyhow::anyhow!("refused for TLS client authentication: {e}"))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crowdsec::decisions::{Intake, Judge};
    use authguard_core::config::{Config, PositiveDuration};
    use authguard_core::duration::HumanDuration;
    use std::io::Write;
    use std::net::TcpListener;
    use std::time::{Duration, Instant};

    /// A LAPI stand-in on loopback that answers every connection with
    /// `reply` (after `delay`), and a config pointing at it.
    fn fake(reply: &'static [u8], delay: Duration) -> (Config, std::path::PathBuf) {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                std::thread::spawn(move || {
                    let mut stream = stream;
                    std::thread::sleep(delay);
                    let _ = stream.write_all(reply);
                    std::thread::sleep(Duration::from_secs(60));
                });
            }
        });
        let dir = std::env::temp_dir().join(format!("ag-fake-lapi-{port}"));
        std::fs::create_dir_all(&dir).unwrap();
        let key = dir.join("key");
        std::fs::write(&key, "k3y").unwrap();
        std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o600)).unwrap();
        let mut config = Config::default();
        config.crowdsec.url = format!("http://127.0.0.1:{port}/");
        config.crowdsec.api_key_file = key;
        config.crowdsec.timeout = PositiveDuration(HumanDuration::secs(1));
        (config, dir)
    }

    /// One startup pull; the decisions it held.
    fn pull(config: &Config) -> anyhow::Result<usize> {
        let lapi = Lapi::new(&config.crowdsec)?;
        let judge = Judge {
            config,
            allowed: &[],
            now: 0,
        };
        let mut sink = |_: Vec<_>, _: Vec<_>| Ok(());
        let mut intake = Intake::new(100, &mut sink);
        lapi.stream(true, &judge, &mut intake)?;
        Ok(intake.held_ids.len())
    }

    #[test]
    fn a_hanging_lapi_costs_one_timeout_and_an_error_in_words() {
        let (config, _dir) = fake(b"", Duration::from_secs(30));
        let started = Instant::now();
        let e = pull(&config).unwrap_err();
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "waited {:?}",
            started.elapsed()
        );
        assert!(format!("{e:#}").contains("cannot reach the LAPI"), "{e:#}");
    }

    #[test]
    fn html_and_truncated_answers_are_errors_not_crashes() {
        let html: &[u8] = b"HTTP/1.1 502 Bad Gateway\r\nContent-Type: text/html\r\nContent-Length: 33\r\n\r\n<html><body>nginx</body></html>\r\n";
        let (config, _dir) = fake(html, Duration::ZERO);
        let e = format!("{:#}", pull(&config).unwrap_err());
        assert!(e.contains("502") && e.contains("nginx"), "{e}");
        let cut: &[u8] = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 400\r\n\r\n{\"new\":[{\"id\":1,\"type\":\"ban\"";
        let (config, _dir) = fake(cut, Duration::ZERO);
        assert!(pull(&config).is_err(), "a truncated body is an error");
        let ok: &[u8] = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 27\r\n\r\n{\"deleted\":null,\"new\":null}";
        let (config, _dir) = fake(ok, Duration::ZERO);
        assert_eq!(pull(&config).unwrap(), 0);
    }

    #[test]
    fn a_key_others_can_read_is_refused_by_name() {
        let (config, dir) = fake(b"", Duration::ZERO);
        std::fs::set_permissions(dir.join("key"), std::fs::Permissions::from_mode(0o644)).unwrap();
        let e = format!("{:#}", Lapi::new(&config.crowdsec).unwrap_err());
        assert!(e.contains("api_key_file") && e.contains("chmod 600"), "{e}");
        assert!(!e.contains("k3y"), "the key itself is never in an error");
    }
}
