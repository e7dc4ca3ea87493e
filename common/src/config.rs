//! Schema of the daemon's configuration and of the policy files, and the TOML
//! reading that turns a mistake into `file:line: key: message`.

use std::collections::BTreeMap;
use std::fmt;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::domain::ImportField;
use crate::protocol::Role;

/// A mistake in a configuration or policy file, located.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConfigError {
    pub file: String,
    pub line: Option<u32>,
    /// Dotted key path ("stores.max_open_tenants"), empty for file-level errors.
    pub key: String,
    pub message: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.file)?;
        if let Some(line) = self.line {
            write!(f, ":{line}")?;
        }
        if !self.key.is_empty() {
            write!(f, ": {}", self.key)?;
        }
        write!(f, ": {}", self.message)
    }
}

impl std::error::Error for ConfigError {}

/// Parses TOML into `T`, reporting the file, line and key path of the first mistake.
pub fn parse_toml<T: DeserializeOwned>(file: &str, text: &str) -> Result<T, ConfigError> {
    let de = toml::de::Deserializer::parse(text).map_err(|e| ConfigError {
        file: file.to_string(),
        line: e.span().map(|s| line_of_offset(text, s.start)),
        key: String::new(),
        message: e.message().to_string(),
    })?;
    serde_path_to_error::deserialize(de).map_err(|e| {
        let key = e.path().to_string();
        let key = if key == "." { String::new() } else { key };
        let inner = e.into_inner();
        let line = inner
            .span()
            .map(|s| line_of_offset(text, s.start))
            .or_else(|| line_of_key(text, &key));
        ConfigError {
            file: file.to_string(),
            line,
            key,
            message: inner.message().to_string(),
        }
    })
}

/// A located validation error for a value that parsed but is not acceptable.
pub fn invalid(file: &str, text: &str, key: &str, message: impl Into<String>) -> ConfigError {
    ConfigError {
        file: file.to_string(),
        line: line_of_key(text, key),
        key: key.to_string(),
        message: message.into(),
    }
}

fn line_of_offset(text: &str, offset: usize) -> u32 {
    let offset = offset.min(text.len());
    text.as_bytes()[..offset]
        .iter()
        .filter(|&&b| b == b'\n')
        .count() as u32
        + 1
}

/// Finds the line that defines a dotted key, for errors found after parsing.
/// Handles `[table]`, `[[array]]` (`access[2].role`) and `key = value`; falls
/// back to the table header, then to nothing.
pub fn line_of_key(text: &str, path: &str) -> Option<u32> {
    if path.is_empty() {
        return None;
    }
    // "access[2].role" -> table "access", index 2, key "role".
    let mut parts: Vec<String> = path.split('.').map(str::to_string).collect();
    let leaf = parts.pop()?;
    let (leaf, _) = split_index(&leaf);
    let mut want_table = Vec::new();
    let mut want_index = None;
    for p in &parts {
        let (name, idx) = split_index(p);
        want_table.push(name.to_string());
        if idx.is_some() {
            want_index = idx;
        }
    }
    let want_table = want_table.join(".");
    let mut table = String::new();
    let mut array_seen: BTreeMap<String, usize> = BTreeMap::new();
    let mut current_index = None;
    let mut header_line = None;
    for (n, raw) in text.lines().enumerate() {
        let line = raw.trim();
        if let Some(name) = line.strip_prefix("[[").and_then(|l| l.split("]]").next()) {
            table = name.trim().to_string();
            let i = array_seen.entry(table.clone()).or_insert(0);
            current_index = Some(*i);
            *i += 1;
        } else if let Some(name) = line.strip_prefix('[').and_then(|l| l.split(']').next()) {
            table = name.trim().to_string();
            current_index = None;
        } else if let Some((k, _)) = line.split_once('=') {
            let k = k.trim().trim_matches('"');
            if table == want_table
                && k == leaf
                && (want_index.is_none() || want_index == current_index)
            {
                return Some(n as u32 + 1);
            }
            continue;
        } else {
            continue;
        }
        if table == want_table && (want_index.is_none() || want_index == current_index) {
            header_line.get_or_insert(n as u32 + 1);
        }
    }
    header_line
}

fn split_index(s: &str) -> (&str, Option<usize>) {
    match s.split_once('[') {
        Some((name, rest)) => (name, rest.trim_end_matches(']').parse().ok()),
        None => (s, None),
    }
}

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
    pub stores: StoresConfig,
    pub control: ControlConfig,
    pub import: ImportConfig,
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
            stores: StoresConfig::default(),
            control: ControlConfig::default(),
            import: ImportConfig::default(),
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

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields, default)]
pub struct TenantImport {
    /// Header (as written in the export, case-insensitive) -> canonical field.
    /// Consulted before the built-in German and English defaults.
    pub columns: BTreeMap<String, ImportField>,
    /// Force a delimiter (";", ",", "\t", "|") instead of detecting it.
    pub delimiter: Option<String>,
    /// Force an encoding ("utf-8", "windows-1252") instead of detecting it.
    pub encoding: Option<String>,
    /// Day-first is the German default; set "ymd" or "dmy" to force.
    pub date_order: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

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
    fn line_of_key_finds_array_entries() {
        let text = "[[access]]\nuid = 1\nrole = \"admin\"\n[[access]]\nuid = 2\nrole = \"x\"\n";
        assert_eq!(line_of_key(text, "access[1].role"), Some(6));
        assert_eq!(line_of_key(text, "access[0].uid"), Some(2));
        assert_eq!(line_of_key(text, "nothing.here"), None);
    }
}
