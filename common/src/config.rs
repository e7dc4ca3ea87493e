//! Schema of the daemon's own configuration file, `touchpointd.toml`. It is
//! read through [`crate::toml_file`]; the daemon checks and resolves it.
//! The policy files' schema is in [`crate::policy`].

use serde::{Deserialize, Serialize};

use crate::protocol::Role;

/// `touchpointd.toml`. Every key has a default so a minimal file, or none, works.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DaemonConfig {
    /// Everything the daemon keeps: tenant stores, the central store, inboxes.
    pub state_dir: String,
    /// Control socket path. Empty: `$RUNTIME_DIRECTORY/touchpoint.sock`, else `<state_dir>/touchpoint.sock`.
    pub socket: String,
    /// Octal permission bits of the socket.
    pub socket_mode: String,
    /// Directory of brand and dealer policy files.
    pub policy_dir: String,
    /// How long a stop (SIGTERM) waits for work under way (an import, a
    /// plan, requests) to finish before it closes anyway.
    pub stop_wait_secs: u64,
    pub stores: StoresConfig,
    pub control: ControlConfig,
    pub import: ImportConfig,
    pub dispatch: DispatchConfig,
    pub http: HttpConfig,
    /// Who may do what, by the Unix identity of the connecting process. With no
    /// rule at all, root and the daemon's own user are admins and nobody else
    /// gets in.
    pub access: Vec<AccessRule>,
}

impl Default for DaemonConfig {
    fn default() -> Self {
        Self {
            state_dir: "/var/lib/touchpoint".into(),
            socket: String::new(),
            socket_mode: "0660".into(),
            policy_dir: "/etc/touchpoint/policies".into(),
            stop_wait_secs: 60,
            stores: StoresConfig::default(),
            control: ControlConfig::default(),
            import: ImportConfig::default(),
            dispatch: DispatchConfig::default(),
            http: HttpConfig::default(),
            access: Vec::new(),
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct StoresConfig {
    /// Tenant databases open at once; the least recently used idle one is closed beyond this.
    pub max_open_tenants: u32,
    /// Page cache per tenant database, bytes (sled's default is 1 GiB).
    pub cache_bytes_per_tenant: u64,
    /// Page cache of the central database, bytes.
    pub cache_bytes_central: u64,
    /// A tenant database unused this long is closed.
    pub idle_close_secs: u64,
    /// How often dirty databases are flushed by the one shared flusher, ms.
    pub flush_every_ms: u64,
}

impl Default for StoresConfig {
    fn default() -> Self {
        Self {
            max_open_tenants: 128,
            cache_bytes_per_tenant: 512 * 1024,
            cache_bytes_central: 16 * 1024 * 1024,
            idle_close_secs: 300,
            flush_every_ms: 500,
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ControlConfig {
    pub max_connections: u32,
    /// Connections one Unix user may hold at once, so that no one user
    /// (a forgotten script, a read-only user's feeds) takes every slot.
    pub max_connections_per_user: u32,
    /// Slots of `max_connections` that only admins may take, so an admin
    /// can always get in (at most `max_connections - 1` take effect).
    pub reserved_for_admins: u32,
    /// A client must complete the hello within this time.
    pub handshake_timeout_ms: u64,
    /// A connection that sends no frame for this long is closed (clients ping).
    pub idle_timeout_secs: u64,
    /// Largest file accepted for import over the socket, bytes.
    pub max_upload_bytes: u64,
}

impl Default for ControlConfig {
    fn default() -> Self {
        Self {
            max_connections: 64,
            max_connections_per_user: 16,
            reserved_for_admins: 4,
            handshake_timeout_ms: 5_000,
            idle_timeout_secs: 120,
            max_upload_bytes: 4 << 30,
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ImportConfig {
    /// Watch `<state_dir>/inbox/<tenant>/` for dropped files.
    pub watch_inbox: bool,
    /// A dropped file is imported once its size has been stable this long, ms.
    pub settle_ms: u64,
    /// Rejected rows listed per import report (the rest are counted).
    pub max_reported_errors: u32,
}

impl Default for ImportConfig {
    fn default() -> Self {
        Self {
            watch_inbox: true,
            settle_ms: 500,
            max_reported_errors: 1000,
        }
    }
}

/// `[dispatch]`: how messages leave the daemon.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DispatchConfig {
    /// Send at all. Off: messages are planned and stay in the outbox.
    pub enabled: bool,
    /// How often the dispatcher looks for messages whose time has come, ms.
    pub tick_ms: u64,
    /// Email goes here as `.eml` files when `smtp.host` is empty.
    /// Default "": `<state_dir>/mail`.
    pub spool_dir: String,
    /// Letter batches (PDF + manifest) for the lettershop. Default "": `<state_dir>/letters`.
    pub letters_dir: String,
    /// Call-centre task lists. Default "": `<state_dir>/calls`.
    pub calls_dir: String,
    /// The day's letter batch and call list close at this local time, "HH:MM".
    pub batch_at: String,
    /// Maildir into which the relay delivers bounces and unsubscribe mails
    /// for the brand's bounce domain. Empty: none are read.
    pub bounce_maildir: String,
    /// 32 bytes that sign return paths and unsubscribe links. Default "":
    /// `<state_dir>/dispatch.key`, created on first start.
    pub secret_file: String,
    pub smtp: SmtpConfig,
    /// DKIM keys by sender domain.
    pub dkim: Vec<DkimConfig>,
}

impl Default for DispatchConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            tick_ms: 1_000,
            spool_dir: String::new(),
            letters_dir: String::new(),
            calls_dir: String::new(),
            batch_at: "16:00".into(),
            bounce_maildir: String::new(),
            secret_file: String::new(),
            smtp: SmtpConfig::default(),
            dkim: Vec::new(),
        }
    }
}

/// `[http]`: the small HTTP endpoint for RFC 8058 one-click unsubscribes.
/// Off unless `listen` is set.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct HttpConfig {
    /// Address and port to serve on, e.g. "127.0.0.1:8025". Empty: no HTTP.
    pub listen: String,
    /// What recipients reach it as, e.g. "https://service.brand.example";
    /// emails carry `{public_url}/u/{token}` in place of the brand's
    /// `email.unsubscribe_url`. Empty: `http://{listen}` (local use only).
    pub public_url: String,
    /// Addresses of reverse proxies whose `X-Forwarded-For` is believed;
    /// from anyone else the header is ignored.
    pub trusted_proxies: Vec<String>,
    /// Connections served at once; more are closed at once.
    pub max_connections: u32,
    /// Connections one client address holds at once (IPv6: one /64); more
    /// are closed at once, before a byte is read. Connections from
    /// `trusted_proxies` are exempt (every client behind a proxy comes from
    /// it). Unset: 16, or `max_connections` when that is smaller.
    pub max_connections_per_ip: Option<u32>,
    /// Largest request body read, bytes (a one-click POST is 26).
    pub max_body_bytes: u32,
    /// A request's header (and its body) must arrive within this time, ms.
    pub request_timeout_ms: u64,
    /// Refused requests per minute from one client address; past them it
    /// gets 429. Genuine one-clicks are not counted.
    pub requests_per_minute: u32,
}

impl Default for HttpConfig {
    fn default() -> Self {
        Self {
            listen: String::new(),
            public_url: String::new(),
            trusted_proxies: Vec::new(),
            max_connections: 128,
            max_connections_per_ip: None,
            max_body_bytes: 4096,
            request_timeout_ms: 10_000,
            requests_per_minute: 30,
        }
    }
}

/// How the connection to the relay is secured.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SmtpTls {
    /// Plain connection (a relay on localhost).
    None,
    /// Plain, then STARTTLS (required).
    Starttls,
    /// TLS from the first byte (port 465).
    Tls,
}

/// `[dispatch.smtp]`: the relay every email goes through.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SmtpConfig {
    /// Relay host name or address. Empty: email is written to the spool.
    pub host: String,
    pub port: u16,
    pub tls: SmtpTls,
    /// AUTH user; empty: no authentication.
    pub username: String,
    /// File holding the AUTH password (kept out of this file).
    pub password_file: String,
    /// PEM file with the CA certificate(s) the relay's certificate is
    /// checked against, for a relay with a private CA. Empty: the public
    /// web PKI roots.
    pub ca_file: String,
    /// Connections to the relay at once, reused across messages.
    pub connections: u32,
    /// Messages handed to the relay pool per connection at once. More keeps
    /// the connections busier; everything in flight when the daemon is
    /// killed (not stopped) is sent again after the restart and may reach
    /// the relay once more (once per crash it was in flight for).
    pub in_flight_per_connection: u32,
    /// Connect and command timeout, seconds.
    pub timeout_secs: u64,
    /// Name sent in EHLO. Empty: the machine's host name.
    pub hello_name: String,
}

impl Default for SmtpConfig {
    fn default() -> Self {
        Self {
            host: String::new(),
            port: 587,
            tls: SmtpTls::Starttls,
            username: String::new(),
            password_file: String::new(),
            ca_file: String::new(),
            connections: 8,
            in_flight_per_connection: 8,
            timeout_secs: 30,
            hello_name: String::new(),
        }
    }
}

/// A DKIM signing key for one sender domain.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DkimConfig {
    /// The sender domain (`d=`), e.g. "autohaus-beispiel.de".
    pub domain: String,
    /// The selector (`s=`): the key is published at `<selector>._domainkey.<domain>`.
    pub selector: String,
    /// PEM private key, RSA (PKCS#1 or PKCS#8) or Ed25519 (PKCS#8).
    pub key_file: String,
}

/// Maps a Unix identity to a role and a tenant scope. The first rule that
/// matches the connecting process wins.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AccessRule {
    pub user: Option<String>,
    pub uid: Option<u32>,
    pub group: Option<String>,
    pub gid: Option<u32>,
    pub role: Role,
    /// Tenant ids, or `["*"]` for all.
    #[serde(default = "all_tenants")]
    pub tenants: Vec<String>,
}

fn all_tenants() -> Vec<String> {
    vec!["*".into()]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::toml_file::parse_toml;

    #[test]
    fn unknown_key_is_located() {
        let text = "state_dir = \"/x\"\n\n[stores]\nmax_open_tenant = 3\n";
        let err = parse_toml::<DaemonConfig>("d.toml", text).expect_err("must fail");
        assert_eq!(err.file, "d.toml");
        assert_eq!(err.line, Some(4), "{err}");
        assert!(err.message.contains("max_open_tenant"), "{err}");
    }

    #[test]
    fn wrong_type_is_located_with_key_path() {
        let text = "[stores]\nmax_open_tenants = \"many\"\n";
        let err = parse_toml::<DaemonConfig>("d.toml", text).expect_err("must fail");
        assert_eq!(err.key, "stores.max_open_tenants", "{err}");
        assert_eq!(err.line, Some(2), "{err}");
    }

    #[test]
    fn bad_role_and_bad_tenant_id_are_located() {
        let text =
            "[[access]]\nuid = 1\nrole = \"admin\"\n\n[[access]]\nuid = 2\nrole = \"boss\"\n";
        let err = parse_toml::<DaemonConfig>("d.toml", text).expect_err("must fail");
        assert_eq!(err.line, Some(7), "{err}");
        assert!(err.key.starts_with("access"), "{err}");

        let text = "[tenant]\nid = \"../x\"\nname = \"A\"\n";
        let err = parse_toml::<crate::policy::TenantPolicy>("t.toml", text).expect_err("must fail");
        assert_eq!(err.key, "tenant.id", "{err}");
        assert_eq!(err.line, Some(2), "{err}");
    }

    #[test]
    fn column_mapping_rejects_unknown_field() {
        let text =
            "[tenant]\nid = \"d1\"\nname = \"A\"\n[import.columns]\n\"Kd-Nr\" = \"kundennummer\"\n";
        let err = parse_toml::<crate::policy::TenantPolicy>("t.toml", text).expect_err("must fail");
        assert_eq!(err.line, Some(5), "{err}");
        assert!(err.message.contains("kundennummer"), "{err}");
    }

    #[test]
    fn messages_name_toml_kinds_not_rust_types() {
        let text = "[stores]\nmax_open_tenants = \"many\"\n";
        let err = parse_toml::<DaemonConfig>("d.toml", text).expect_err("must fail");
        assert_eq!(
            err.message,
            "invalid type: string \"many\", expected a whole number (0 or more)"
        );
        let err = parse_toml::<DaemonConfig>("d.toml", "stores = 5\n").expect_err("must fail");
        assert_eq!(
            err.message, "invalid type: integer `5`, expected a table",
            "{err}"
        );
        let err = parse_toml::<DaemonConfig>("d.toml", "state_dir = \"x\nstores = 1\n")
            .expect_err("must fail");
        assert!(err.message.starts_with("not valid TOML: "), "{err}");
        assert_eq!(err.line, Some(1), "{err}");
    }
}
