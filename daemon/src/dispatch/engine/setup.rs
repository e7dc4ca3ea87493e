//! Starting the dispatcher: the transport (an SMTP relay, or the local
//! spool without a relay host), the DKIM keys, the secret that signs return
//! paths and unsubscribe links, and the pauses in force.

use std::collections::HashMap;
use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use nix::sys::stat::SFlag;
use tokio::sync::Notify;
use touchpoint_common::config::{DispatchConfig, SmtpTls};

use super::record::RELAY_BACKOFF_MIN;
use super::{Counters, DispatchError, Dispatcher, Result, State, Transport};
use crate::config::DispatchPaths;
use crate::dispatch::mime::Dkim;
use crate::dispatch::smtp::Relay;
use crate::dispatch::spool::Spool;
use crate::files::{Dir, Perms};
use crate::policy::PolicyHandle;
use crate::render::{InForce, MaterialSource};
use crate::store::Stores;

/// Reads or creates the 32-byte secret that signs return paths and links.
fn load_secret(path: &std::path::Path) -> Result<[u8; 32]> {
    crate::files::secret(path).map_err(|e| match e {
        crate::files::SecretError::Setup(m) => DispatchError::Setup(m),
        crate::files::SecretError::Io(m) => DispatchError::Io(m),
    })
}

/// Removes the temporary files a crash left in the tenants' folders of the
/// letters, call lists and spool. Called before the dispatcher writes
/// anything, so none of them can be one being written.
fn remove_leftovers(paths: &DispatchPaths) {
    for root in [&paths.letters, &paths.calls, &paths.spool] {
        let folder = match Dir::open(root, Perms::PRIVATE) {
            Ok(Some(d)) => d,
            Ok(None) => continue,
            Err(e) => {
                // Its batches fail with the same error, where it is seen.
                tracing::warn!("{e}");
                continue;
            }
        };
        let names = match folder.names() {
            Ok(n) => n,
            Err(e) => {
                tracing::warn!("{e}");
                continue;
            }
        };
        for name in names {
            if !matches!(folder.kind(&name), Ok(Some(SFlag::S_IFDIR))) {
                continue;
            }
            let removed = folder
                .open_sub(&name)
                .and_then(|t| t.map_or(Ok(0), |t| t.remove_temps()));
            match removed {
                Ok(0) => {}
                Ok(n) => tracing::info!(
                    folder = %folder.path().join(&name).display(),
                    files = n,
                    "removed temporary files left by a stop"
                ),
                Err(e) => tracing::warn!("{e}"),
            }
        }
    }
}

impl Dispatcher {
    pub fn new(
        stores: Arc<Stores>,
        policies: Arc<PolicyHandle>,
        cfg: &DispatchConfig,
        paths: DispatchPaths,
    ) -> Result<Self> {
        let secret = load_secret(&paths.secret)?;
        remove_leftovers(&paths);
        let (transport, desc, max_in_flight) = if cfg.smtp.host.is_empty() {
            (
                Transport::Spool(Spool::new(paths.spool.clone())),
                format!("spool {}", paths.spool.display()),
                256,
            )
        } else {
            let password = if cfg.smtp.password_file.is_empty() {
                None
            } else {
                Some(
                    std::fs::read_to_string(&cfg.smtp.password_file)
                        .map_err(|e| {
                            DispatchError::Setup(format!("{}: {e}", cfg.smtp.password_file))
                        })?
                        .trim_end()
                        .to_string(),
                )
            };
            let mut relay = Relay::new(&cfg.smtp, password)
                .map_err(|e| DispatchError::Setup(format!("smtp relay: {e}")))?;
            if !cfg.smtp.ca_file.is_empty() {
                let pem = std::fs::read(&cfg.smtp.ca_file).map_err(|e| {
                    DispatchError::Setup(format!("dispatch.smtp.ca_file {}: {e}", cfg.smtp.ca_file))
                })?;
                relay = relay.with_root_certificates(&pem).map_err(|e| {
                    DispatchError::Setup(format!("dispatch.smtp.ca_file {}: {e}", cfg.smtp.ca_file))
                })?;
            }
            let tls = match cfg.smtp.tls {
                SmtpTls::None => "plain",
                SmtpTls::Starttls => "starttls",
                SmtpTls::Tls => "tls",
            };
            (
                Transport::Relay(Arc::new(relay)),
                format!(
                    "smtp relay {}:{} ({tls}, {} connections)",
                    cfg.smtp.host, cfg.smtp.port, cfg.smtp.connections
                ),
                // Enough that the relay's connections rarely wait for the
                // loop (its pool queues the rest); what is in flight at a
                // crash may reach the relay once more, so not more.
                (cfg.smtp.connections * cfg.smtp.in_flight_per_connection) as usize,
            )
        };
        let mut dkim = HashMap::new();
        for k in &cfg.dkim {
            let key = Dkim::load(k)
                .map_err(|e| DispatchError::Setup(format!("dkim key for {}: {e}", k.domain)))?;
            dkim.insert(k.domain.to_ascii_lowercase(), key);
        }
        let pauses = stores.central().pauses()?;
        Ok(Self {
            stores,
            policies,
            paths,
            enabled: cfg.enabled,
            tick: Duration::from_millis(cfg.tick_ms),
            transport,
            transport_desc: desc,
            max_in_flight,
            secret,
            dkim,
            state: Mutex::new(State {
                pauses,
                relay_backoff: RELAY_BACKOFF_MIN,
                ..State::default()
            }),
            counters: Counters::default(),
            wake: Notify::new(),
            in_force: InForce::new(None),
            throughput: Default::default(),
            people: Mutex::new(HashMap::new()),
            one_click: None,
            click_base: None,
            click_base_missing: AtomicBool::new(false),
        })
    }

    /// Emails link `{base}/u/{token}` (the daemon's own one-click endpoint,
    /// `[http] public_url`) in place of the brand's `email.unsubscribe_url`.
    pub fn with_one_click(mut self, base: String) -> Self {
        self.one_click = Some(base);
        self
    }

    /// `[http] public_url` when emails link the daemon's own endpoint.
    pub fn one_click_base(&self) -> Option<&str> {
        self.one_click.as_deref()
    }

    /// Renders with the brand material in force in `source` (approvals').
    pub fn with_material(mut self, source: Arc<dyn MaterialSource>) -> Self {
        self.in_force = InForce::new(Some(source));
        self
    }
}

#[cfg(test)]
mod tests;
