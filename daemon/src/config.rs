//! Reading and checking `touchpointd.toml`, and resolving the paths it names.

use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::time::Duration;

use touchpoint_common::config::DaemonConfig;
use touchpoint_common::toml_file::{invalid, parse_toml, ConfigError};
use touchpoint_common::TenantId;

/// A checked configuration with every path resolved.
#[derive(Clone, Debug)]
pub struct Resolved {
    pub config: DaemonConfig,
    pub state_dir: PathBuf,
    pub socket: PathBuf,
    pub socket_mode: u32,
    pub policy_dir: PathBuf,
    pub dispatch: DispatchPaths,
    /// The one-click unsubscribe endpoint, when `[http] listen` is set.
    pub http: Option<HttpSettings>,
}

/// `[http]`, checked.
#[derive(Clone, Debug)]
pub struct HttpSettings {
    pub listen: SocketAddr,
    /// Without a trailing `/`; `None`: `http://` and the bound address.
    pub public_url: Option<String>,
    pub trusted_proxies: Vec<IpAddr>,
    pub max_connections: usize,
    /// At most this many of them from one client address (IPv6: one
    /// /64); `trusted_proxies` are exempt.
    pub max_connections_per_ip: usize,
    pub max_body_bytes: usize,
    pub request_timeout: Duration,
    pub requests_per_minute: u32,
}

/// Where dispatch writes and reads, resolved against the state directory.
#[derive(Clone, Debug)]
pub struct DispatchPaths {
    pub spool: PathBuf,
    pub letters: PathBuf,
    pub calls: PathBuf,
    pub secret: PathBuf,
    pub bounce_maildir: Option<PathBuf>,
    /// Minutes after midnight at which the day's batches close.
    pub batch_at: u16,
}

/// "HH:MM" as minutes after midnight.
pub fn parse_hhmm(s: &str) -> Option<u16> {
    let (h, m) = s.split_once(':')?;
    if h.len() != 2 || m.len() != 2 {
        return None;
    }
    let (h, m): (u16, u16) = (h.parse().ok()?, m.parse().ok()?);
    (h < 24 && m < 60).then_some(h * 60 + m)
}

/// Command-line values that take precedence over the file.
#[derive(Clone, Debug, Default)]
pub struct Overrides {
    pub state_dir: Option<PathBuf>,
    pub socket: Option<PathBuf>,
    pub policy_dir: Option<PathBuf>,
}

pub fn load(file: Option<&Path>, overrides: &Overrides) -> Result<Resolved, Vec<ConfigError>> {
    let (config, text, name) = match file {
        Some(path) => {
            let name = path.display().to_string();
            let text = std::fs::read_to_string(path).map_err(|e| {
                vec![ConfigError {
                    file: name.clone(),
                    line: None,
                    key: String::new(),
                    message: format!("cannot read: {e}"),
                }]
            })?;
            (
                parse_toml::<DaemonConfig>(&name, &text).map_err(|e| vec![e])?,
                text,
                name,
            )
        }
        None => (
            DaemonConfig::default(),
            String::new(),
            "(built-in defaults)".to_string(),
        ),
    };
    resolve(config, &text, &name, overrides)
}

/// The longest `stop_wait_secs`: a day.
const MAX_STOP_WAIT_SECS: u64 = 24 * 60 * 60;

fn resolve(
    config: DaemonConfig,
    text: &str,
    file: &str,
    o: &Overrides,
) -> Result<Resolved, Vec<ConfigError>> {
    let mut errors = Vec::new();
    let mut check = |ok: bool, key: &str, msg: String| {
        if !ok {
            errors.push(invalid(file, text, key, msg));
        }
    };
    check(
        (1..=MAX_STOP_WAIT_SECS).contains(&config.stop_wait_secs),
        "stop_wait_secs",
        format!(
            "must be between 1 and {MAX_STOP_WAIT_SECS}, got {}",
            config.stop_wait_secs
        ),
    );
    let s = &config.stores;
    check(
        s.max_open_tenants >= 1,
        "stores.max_open_tenants",
        format!("must be at least 1, got {}", s.max_open_tenants),
    );
    check(
        s.cache_bytes_per_tenant >= 64 * 1024,
        "stores.cache_bytes_per_tenant",
        format!("must be at least 65536, got {}", s.cache_bytes_per_tenant),
    );
    check(
        s.flush_every_ms >= 10,
        "stores.flush_every_ms",
        format!("must be at least 10, got {}", s.flush_every_ms),
    );
    let c = &config.control;
    check(
        c.max_connections >= 1,
        "control.max_connections",
        format!("must be at least 1, got {}", c.max_connections),
    );
    check(
        c.max_connections_per_user >= 1,
        "control.max_connections_per_user",
        format!("must be at least 1, got {}", c.max_connections_per_user),
    );
    check(
        c.handshake_timeout_ms >= 10,
        "control.handshake_timeout_ms",
        format!("must be at least 10, got {}", c.handshake_timeout_ms),
    );
    check(
        c.idle_timeout_secs >= 1,
        "control.idle_timeout_secs",
        format!("must be at least 1, got {}", c.idle_timeout_secs),
    );
    let d = &config.dispatch;
    check(
        d.tick_ms >= 10,
        "dispatch.tick_ms",
        format!("must be at least 10, got {}", d.tick_ms),
    );
    check(
        parse_hhmm(&d.batch_at).is_some(),
        "dispatch.batch_at",
        format!("must be a time of day \"HH:MM\", got {:?}", d.batch_at),
    );
    check(
        (1..=256).contains(&d.smtp.connections),
        "dispatch.smtp.connections",
        format!("must be between 1 and 256, got {}", d.smtp.connections),
    );
    check(
        (1..=256).contains(&d.smtp.in_flight_per_connection),
        "dispatch.smtp.in_flight_per_connection",
        format!(
            "must be between 1 and 256, got {}",
            d.smtp.in_flight_per_connection
        ),
    );
    check(
        d.smtp.timeout_secs >= 1,
        "dispatch.smtp.timeout_secs",
        format!("must be at least 1, got {}", d.smtp.timeout_secs),
    );
    check(
        d.smtp.username.is_empty() || !d.smtp.password_file.is_empty(),
        "dispatch.smtp.password_file",
        "a username needs a password_file".into(),
    );
    for (i, k) in d.dkim.iter().enumerate() {
        check(
            !k.domain.is_empty() && !k.selector.is_empty() && !k.key_file.is_empty(),
            &format!("dispatch.dkim[{i}]"),
            "needs domain, selector and key_file".into(),
        );
    }
    let http = check_http(&config, &mut check);
    let mode = u32::from_str_radix(config.socket_mode.trim_start_matches("0o"), 8)
        .ok()
        .filter(|m| *m <= 0o777);
    check(
        mode.is_some(),
        "socket_mode",
        format!(
            "must be octal permission bits like \"0660\", got {:?}",
            config.socket_mode
        ),
    );
    for (i, rule) in config.access.iter().enumerate() {
        let key = |k: &str| format!("access[{i}].{k}");
        check(
            rule.uid.is_some() || rule.user.is_some() || rule.gid.is_some() || rule.group.is_some(),
            &key("role"),
            "a rule must name a uid, user, gid or group".into(),
        );
        for t in &rule.tenants {
            if t != "*" {
                if let Err(e) = TenantId::new(t.as_str()) {
                    check(false, &key("tenants"), e.to_string());
                }
            }
        }
    }
    if !errors.is_empty() {
        return Err(errors);
    }
    let state_dir = o
        .state_dir
        .clone()
        .unwrap_or_else(|| PathBuf::from(&config.state_dir));
    let socket = o.socket.clone().unwrap_or_else(|| {
        if !config.socket.is_empty() {
            PathBuf::from(&config.socket)
        } else if let Some(rt) = std::env::var_os("RUNTIME_DIRECTORY") {
            // systemd's RuntimeDirectory= (may list several, colon-separated).
            let first = rt
                .to_string_lossy()
                .split(':')
                .next()
                .unwrap_or_default()
                .to_string();
            PathBuf::from(first).join("touchpoint.sock")
        } else {
            PathBuf::from("/run/touchpoint/touchpoint.sock")
        }
    });
    let policy_dir = o
        .policy_dir
        .clone()
        .unwrap_or_else(|| PathBuf::from(&config.policy_dir));
    let dir_or = |set: &str, default: &str| {
        if set.is_empty() {
            state_dir.join(default)
        } else {
            PathBuf::from(set)
        }
    };
    let dispatch = DispatchPaths {
        spool: dir_or(&d.spool_dir, "mail"),
        letters: dir_or(&d.letters_dir, "letters"),
        calls: dir_or(&d.calls_dir, "calls"),
        secret: dir_or(&d.secret_file, "dispatch.key"),
        bounce_maildir: (!d.bounce_maildir.is_empty()).then(|| PathBuf::from(&d.bounce_maildir)),
        batch_at: parse_hhmm(&d.batch_at).unwrap_or(16 * 60),
    };
    Ok(Resolved {
        dispatch,
        http,
        state_dir,
        socket,
        socket_mode: mode.unwrap_or(0o660),
        policy_dir,
        config,
    })
}

/// `[http] max_connections_per_ip` when unset (or `max_connections`, when
/// that is smaller).
const DEFAULT_CONNECTIONS_PER_IP: u32 = 16;

/// `[http]`: `None` when off. Every key is checked even when off, so a
/// typo is found before someone turns it on.
fn check_http(
    config: &DaemonConfig,
    check: &mut impl FnMut(bool, &str, String),
) -> Option<HttpSettings> {
    let h = &config.http;
    let listen = if h.listen.is_empty() {
        None
    } else {
        let parsed = h.listen.parse::<SocketAddr>().ok();
        check(
            parsed.is_some(),
            "http.listen",
            format!(
                "must be an address and port like \"127.0.0.1:8025\" or \"[::1]:8025\", got {:?}",
                h.listen
            ),
        );
        parsed
    };
    let public_url = h.public_url.trim_end_matches('/');
    if !h.public_url.is_empty() {
        check(
            public_url_ok(public_url),
            "http.public_url",
            format!(
                "must be an http:// or https:// address with no query, fragment or spaces, like \"https://service.brand.example\", got {:?}",
                h.public_url
            ),
        );
        check(
            !h.listen.is_empty(),
            "http.public_url",
            "needs http.listen: the daemon answers the links it points to".into(),
        );
    }
    let mut trusted = Vec::new();
    for (i, p) in h.trusted_proxies.iter().enumerate() {
        match p.parse::<IpAddr>() {
            Ok(ip) => trusted.push(ip),
            Err(_) => check(
                false,
                "http.trusted_proxies",
                format!(
                    "entry {}: must be an IP address like \"127.0.0.1\", got {p:?}",
                    i + 1
                ),
            ),
        }
    }
    check(
        (1..=65_536).contains(&h.max_connections),
        "http.max_connections",
        format!("must be between 1 and 65536, got {}", h.max_connections),
    );
    let per_ip = h
        .max_connections_per_ip
        .unwrap_or(DEFAULT_CONNECTIONS_PER_IP.min(h.max_connections));
    if let Some(n) = h.max_connections_per_ip {
        check(
            (1..=h.max_connections).contains(&n),
            "http.max_connections_per_ip",
            format!(
                "must be between 1 and http.max_connections ({}), got {n}",
                h.max_connections
            ),
        );
    }
    check(
        (64..=1 << 20).contains(&h.max_body_bytes),
        "http.max_body_bytes",
        format!("must be between 64 and 1048576, got {}", h.max_body_bytes),
    );
    check(
        (100..=600_000).contains(&h.request_timeout_ms),
        "http.request_timeout_ms",
        format!(
            "must be between 100 and 600000, got {}",
            h.request_timeout_ms
        ),
    );
    check(
        h.requests_per_minute >= 1,
        "http.requests_per_minute",
        format!("must be at least 1, got {}", h.requests_per_minute),
    );
    if listen.is_some() {
        check(
            config.dispatch.enabled,
            "http.listen",
            "serves the unsubscribe links of sent email, so it needs dispatch.enabled = true"
                .into(),
        );
    }
    Some(HttpSettings {
        listen: listen?,
        public_url: (!public_url.is_empty()).then(|| public_url.to_string()),
        trusted_proxies: trusted,
        max_connections: h.max_connections as usize,
        max_connections_per_ip: per_ip.max(1) as usize,
        max_body_bytes: h.max_body_bytes as usize,
        request_timeout: Duration::from_millis(h.request_timeout_ms),
        requests_per_minute: h.requests_per_minute,
    })
}

/// It stands in a `List-Unsubscribe` header and an HTML attribute: a plain
/// http(s) origin with an optional path, nothing that needs quoting.
fn public_url_ok(url: &str) -> bool {
    let rest = url
        .strip_prefix("https://")
        .or_else(|| url.strip_prefix("http://"));
    match rest {
        Some(rest) => {
            !rest.is_empty()
                && !rest.starts_with('/')
                && rest.bytes().all(|b| {
                    b.is_ascii_alphanumeric()
                        || matches!(
                            b,
                            b'.' | b'-' | b'_' | b':' | b'/' | b'[' | b']' | b'~' | b'%'
                        )
                })
        }
        None => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_resolve() {
        let r = load(
            None,
            &Overrides {
                socket: Some("/tmp/x.sock".into()),
                ..Default::default()
            },
        )
        .expect("defaults");
        assert_eq!(r.socket_mode, 0o660);
        assert_eq!(r.socket, PathBuf::from("/tmp/x.sock"));
    }

    #[test]
    fn range_errors_are_located() {
        let text = "socket_mode = \"rw\"\nstop_wait_secs = 0\n[stores]\nmax_open_tenants = 0\n[[access]]\nrole = \"admin\"\ntenants = [\"../d1\"]\n";
        let cfg = parse_toml::<DaemonConfig>("t.toml", text).expect("parses");
        let errs = resolve(cfg, text, "t.toml", &Overrides::default()).expect_err("invalid");
        let shown: Vec<String> = errs.iter().map(ToString::to_string).collect();
        assert_eq!(
            shown,
            [
                "t.toml:2: stop_wait_secs: must be between 1 and 86400, got 0",
                "t.toml:4: stores.max_open_tenants: must be at least 1, got 0",
                "t.toml:1: socket_mode: must be octal permission bits like \"0660\", got \"rw\"",
                "t.toml:6: access[0].role: a rule must name a uid, user, gid or group",
                "t.toml:7: access[0].tenants: tenant id \"../d1\" contains '.'; allowed are a-z, 0-9, '-' and '_'",
            ]
        );
    }

    #[test]
    fn http_is_off_by_default_and_checked_when_set() {
        let r = load(None, &Overrides::default()).expect("defaults");
        assert!(r.http.is_none());

        let text = "[http]\nlisten = \"127.0.0.1:8025\"\npublic_url = \"https://service.example/abmelden/\"\ntrusted_proxies = [\"127.0.0.1\"]\n";
        let cfg = parse_toml::<DaemonConfig>("t.toml", text).expect("parses");
        let h = resolve(cfg, text, "t.toml", &Overrides::default())
            .expect("valid")
            .http
            .expect("on");
        assert_eq!(
            h.listen,
            "127.0.0.1:8025".parse::<SocketAddr>().expect("addr")
        );
        assert_eq!(
            h.public_url.as_deref(),
            Some("https://service.example/abmelden")
        );
        assert_eq!(
            h.trusted_proxies,
            ["127.0.0.1".parse::<IpAddr>().expect("ip")]
        );
    }

    #[test]
    fn http_errors_are_located() {
        let text = "[dispatch]\nenabled = false\n\n[http]\nlisten = \"localhost\"\npublic_url = \"javascript:alert(1)\"\ntrusted_proxies = [\"proxy\"]\nmax_body_bytes = 1\n";
        let cfg = parse_toml::<DaemonConfig>("t.toml", text).expect("parses");
        let errs = resolve(cfg, text, "t.toml", &Overrides::default()).expect_err("invalid");
        let shown: Vec<String> = errs.iter().map(ToString::to_string).collect();
        assert_eq!(
            shown,
            [
                "t.toml:5: http.listen: must be an address and port like \"127.0.0.1:8025\" or \"[::1]:8025\", got \"localhost\"",
                "t.toml:6: http.public_url: must be an http:// or https:// address with no query, fragment or spaces, like \"https://service.brand.example\", got \"javascript:alert(1)\"",
                "t.toml:7: http.trusted_proxies: entry 1: must be an IP address like \"127.0.0.1\", got \"proxy\"",
                "t.toml:8: http.max_body_bytes: must be between 64 and 1048576, got 1",
            ]
        );

        let text = "[dispatch]\nenabled = false\n\n[http]\nlisten = \"127.0.0.1:8025\"\n";
        let cfg = parse_toml::<DaemonConfig>("t.toml", text).expect("parses");
        let errs = resolve(cfg, text, "t.toml", &Overrides::default()).expect_err("invalid");
        assert_eq!(
            errs[0].to_string(),
            "t.toml:5: http.listen: serves the unsubscribe links of sent email, so it needs dispatch.enabled = true"
        );
    }

    #[test]
    fn per_ip_connections_default_below_the_total_and_are_checked() {
        let on = "[http]\nlisten = \"127.0.0.1:8025\"\n";
        let settings = |extra: &str| {
            let text = format!("{on}{extra}");
            let cfg = parse_toml::<DaemonConfig>("t.toml", &text).expect("parses");
            resolve(cfg, &text, "t.toml", &Overrides::default())
                .map(|r| r.http.expect("on"))
                .map_err(|e| e.iter().map(ToString::to_string).collect::<Vec<_>>())
        };
        assert_eq!(settings("").expect("valid").max_connections_per_ip, 16);
        let few = settings("max_connections = 4\n").expect("valid");
        assert_eq!(few.max_connections_per_ip, 4);
        let set = settings("max_connections_per_ip = 2\n").expect("valid");
        assert_eq!(set.max_connections_per_ip, 2);
        for bad in ["0", "129"] {
            assert_eq!(
                settings(&format!("max_connections_per_ip = {bad}\n")).expect_err("invalid"),
                [format!("t.toml:3: http.max_connections_per_ip: must be between 1 and http.max_connections (128), got {bad}")]
            );
        }
    }

    /// The packaged example carries `[http]` commented out; uncommented as
    /// an administrator would, it is valid and means what it says.
    #[test]
    fn the_shipped_http_section_uncommented_is_valid() {
        let shipped = std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../policies/touchpointd.toml"
        ))
        .expect("policies/touchpointd.toml");
        let section: String = shipped
            .lines()
            .skip_while(|l| *l != "# [http]")
            .take_while(|l| !l.is_empty())
            .filter(|l| !l.starts_with("##"))
            .map(|l| format!("{}\n", l.trim_start_matches("# ")))
            .collect();
        assert!(section.starts_with("[http]\nlisten = "), "{section}");
        let cfg = parse_toml::<DaemonConfig>("touchpointd.toml", &section).expect("parses");
        let h = resolve(cfg, &section, "touchpointd.toml", &Overrides::default())
            .expect("valid")
            .http
            .expect("on");
        assert_eq!(
            h.public_url.as_deref(),
            Some("https://service.nordwagen.example")
        );
        assert_eq!(h.requests_per_minute, 30);
    }
}
