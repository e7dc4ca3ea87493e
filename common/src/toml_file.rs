//! Reading TOML into a schema type so that a mistake reads
//! `file:line: key.path: message`: [`parse_toml`] for what serde finds,
//! [`invalid`] and [`line_of_key`] for what validation finds afterwards.
//!
//! Imports nothing from this crate: the schemas (`config`, `policy`,
//! `template`) and the daemon's own files all read through it.

use std::collections::BTreeMap;
use std::fmt;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

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
        message: format!("not valid TOML: {}", e.message().trim_end()),
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
            message: plain_types(inner.message()),
        }
    })
}

/// serde names the Rust type it wanted ("expected u32"); a person editing a
/// file wants the TOML kind of value.
fn plain_types(message: &str) -> String {
    const NAMES: [(&str, &str); 15] = [
        ("unknown field `", "unknown key `"),
        ("missing field `", "missing key `"),
        ("unknown variant `", "unknown value `"),
        ("expected u8", "expected a whole number (0 or more)"),
        ("expected u16", "expected a whole number (0 or more)"),
        ("expected u32", "expected a whole number (0 or more)"),
        ("expected u64", "expected a whole number (0 or more)"),
        ("expected usize", "expected a whole number (0 or more)"),
        ("expected i32", "expected a whole number"),
        ("expected i64", "expected a whole number"),
        ("expected f64", "expected a number"),
        ("expected a sequence", "expected a list ([...])"),
        ("expected a map", "expected a table"),
        ("expected a boolean", "expected true or false"),
        ("expected a borrowed string", "expected a string"),
    ];
    let mut out = message.trim_end().to_string();
    for (from, to) in NAMES {
        if let Some(at) = out.find(from) {
            let end = at + from.len();
            // Whole words only: "expected u8" must not match "expected u80".
            if from.ends_with('`') || !out[end..].starts_with(|c: char| c.is_ascii_alphanumeric()) {
                out.replace_range(at..end, to);
            }
        }
    }
    if let Some(at) = out.find("expected struct ") {
        let rest = &out[at + "expected struct ".len()..];
        let name_len = rest
            .find(|c: char| !c.is_ascii_alphanumeric() && c != '_')
            .unwrap_or(rest.len());
        out.replace_range(
            at..at + "expected struct ".len() + name_len,
            "expected a table",
        );
    }
    out
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
/// Handles `[table]`, `[[array]]` (`access[2].role`) and `key = value`; a
/// key inside an inline table (`send_window = { from = .., to = .. }`) is on
/// the line of the key that holds the table; a key that is missing is on its
/// table's header; else there is no line.
pub fn line_of_key(text: &str, path: &str) -> Option<u32> {
    if path.is_empty() {
        return None;
    }
    find_key(text, path).or_else(|| {
        let (parent, _) = path.rsplit_once('.')?;
        line_of_key(text, parent)
    })
}

fn find_key(text: &str, path: &str) -> Option<u32> {
    // "access[2].role" -> table "access", index 2, key "role".
    let mut parts: Vec<String> = path.split('.').map(str::to_string).collect();
    let last = parts.pop()?;
    let (leaf, leaf_index) = split_index(&last);
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
    // The path may name a table itself: "services.oil_change" is `[services.oil_change]`.
    let as_table = if want_table.is_empty() {
        leaf.to_string()
    } else {
        format!("{want_table}.{leaf}")
    };
    let mut table = String::new();
    let mut array_seen: BTreeMap<String, usize> = BTreeMap::new();
    let mut current_index = None;
    let mut header_line = None;
    // Inside a multi-line string nothing is a key or a header.
    let mut in_string: Option<&str> = None;
    for (n, raw) in text.lines().enumerate() {
        let line = raw.trim();
        if let Some(delim) = in_string {
            if line.matches(delim).count() % 2 == 1 {
                in_string = None;
            }
            continue;
        }
        in_string = ["\"\"\"", "'''"]
            .into_iter()
            .find(|d| line.matches(d).count() % 2 == 1);
        if let Some(name) = line.strip_prefix("[[").and_then(|l| l.split("]]").next()) {
            table = name.trim().to_string();
            let i = array_seen.entry(table.clone()).or_insert(0);
            current_index = Some(*i);
            *i += 1;
            if table == as_table && (leaf_index.is_none() || leaf_index == current_index) {
                return Some(n as u32 + 1);
            }
        } else if let Some(name) = line.strip_prefix('[').and_then(|l| l.split(']').next()) {
            table = name.trim().to_string();
            current_index = None;
            if table == as_table {
                return Some(n as u32 + 1);
            }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn serde_type_names_are_replaced_as_whole_words_only() {
        assert_eq!(plain_types("expected u80"), "expected u80");
    }

    #[test]
    fn line_of_key_finds_keys_in_inline_tables_and_tables_named_by_the_path() {
        let text = "[services.a]\nname = \"A\"\nsend_window = { from = \"18:00\", to = \"08:00\" }\n\n[services.a.segment]\nvehicle_age_years = { min = 8, max = 3 }\n\n[services.oil_change]\nmonthly_budget = 1\n";
        assert_eq!(line_of_key(text, "services.a.send_window.to"), Some(3));
        assert_eq!(line_of_key(text, "services.a.send_window"), Some(3));
        assert_eq!(
            line_of_key(text, "services.a.segment.vehicle_age_years.max"),
            Some(6)
        );
        assert_eq!(line_of_key(text, "services.oil_change"), Some(8));
        assert_eq!(line_of_key(text, "services.a.segment"), Some(5));
        // A key that is not there: its table's header.
        assert_eq!(line_of_key(text, "services.a.lead_days"), Some(1));
        assert_eq!(line_of_key(text, "services"), None);
    }

    #[test]
    fn line_of_key_skips_multi_line_strings() {
        let text = "[slots]\nsignature = \"\"\"\n[tenant]\nid = 1\n\"\"\"\nid = 2\n";
        assert_eq!(line_of_key(text, "slots.id"), Some(6));
        assert_eq!(line_of_key(text, "tenant.id"), None);
    }

    #[test]
    fn line_of_key_finds_array_entries() {
        let text = "[[access]]\nuid = 1\nrole = \"admin\"\n[[access]]\nuid = 2\nrole = \"x\"\n";
        assert_eq!(line_of_key(text, "access[1].role"), Some(6));
        assert_eq!(line_of_key(text, "access[0].uid"), Some(2));
        assert_eq!(line_of_key(text, "nothing.here"), None);
        assert_eq!(line_of_key(text, "access[1]"), Some(4));
    }
}
