//! Reading and checking `touchpointd.toml`, and resolving the paths it names.

use std::path::{Path, PathBuf};

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
        state_dir,
        socket,
        socket_mode: mode.unwrap_or(0o660),
        policy_dir,
        config,
    })
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
        let text = "socket_mode = \"rw\"\n[stores]\nmax_open_tenants = 0\n[[access]]\nrole = \"admin\"\ntenants = [\"../d1\"]\n";
        let cfg = parse_toml::<DaemonConfig>("t.toml", text).expect("parses");
        let errs = resolve(cfg, text, "t.toml", &Overrides::default()).expect_err("invalid");
        let shown: Vec<String> = errs.iter().map(ToString::to_string).collect();
        assert_eq!(
            shown,
            [
                "t.toml:3: stores.max_open_tenants: must be at least 1, got 0",
                "t.toml:1: socket_mode: must be octal permission bits like \"0660\", got \"rw\"",
                "t.toml:5: access[0].role: a rule must name a uid, user, gid or group",
                "t.toml:6: access[0].tenants: tenant id \"../d1\" contains '.'; allowed are a-z, 0-9, '-' and '_'",
            ]
        );
    }
}
