//! A dealer's slot values as brand material (`brand.toml [review]
//! dealer_slots`): the `[slots]` table of `dealers/<id>.toml` is versioned,
//! proposed and approved like a template, under the name `slots/<id>`.
//!
//! Its text is the table as TOML in one canonical form: a `[slots]` header,
//! then one `name = "value"` line per slot, sorted by name, every value a
//! basic string with line breaks and control characters escaped. The same
//! values always give the same text, so a version is compared by its text
//! and a reviewer's diff shows exactly the slots that change, one per line.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use touchpoint_common::policy::{self, BrandPolicy};
use touchpoint_common::toml_file::{invalid, parse_toml, ConfigError};
use touchpoint_common::TenantId;

/// What a slot-material name starts with; the rest is the tenant id.
pub const PREFIX: &str = "slots/";

/// Characters a dealer's slot holds at most, declared or not (as the
/// policy check of a dealer's file has it).
pub const MAX_SLOT_CHARS: usize = 2000;

/// The material name of a tenant's slots.
pub fn name(tenant: &TenantId) -> String {
    format!("{PREFIX}{tenant}")
}

/// Whether `name` names slot material (valid tenant id or not).
pub fn is_slots(name: &str) -> bool {
    name.starts_with(PREFIX)
}

/// The tenant whose slots `name` names, if it is `slots/<valid tenant id>`.
pub fn tenant_of(name: &str) -> Option<TenantId> {
    TenantId::new(name.strip_prefix(PREFIX)?).ok()
}

/// Who may hear of a change of the material `name`: the dealer whose slots
/// it is, every subscriber for brand material (it applies to every
/// tenant), and only scopes over every tenant for a `slots/` name that
/// names no valid tenant (nobody else may see it).
pub fn audience(name: &str) -> crate::events::Audience {
    use crate::events::Audience;
    if !is_slots(name) {
        return Audience::Everyone;
    }
    match tenant_of(name) {
        Some(t) => Audience::Tenant(t),
        None => Audience::ScopeOverAll,
    }
}

/// The canonical text of a `[slots]` table (see the module docs).
pub fn to_text(slots: &BTreeMap<String, String>) -> String {
    let mut out = String::from("[slots]\n");
    for (k, v) in slots {
        let bare = !k.is_empty()
            && k.bytes()
                .all(|c| c.is_ascii_alphanumeric() || c == b'_' || c == b'-');
        if bare {
            out.push_str(k);
        } else {
            out.push_str(&basic_string(k));
        }
        out.push_str(" = ");
        out.push_str(&basic_string(v));
        out.push('\n');
    }
    out
}

/// A TOML basic string. Line breaks are escaped so that a value stays on
/// its line; non-ASCII text stays as it is, readable in the diff.
fn basic_string(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            // C0, DEL and C1 are all below U+FFFF.
            c if c.is_control() => {
                let _ = write!(out, "\\u{:04X}", u32::from(c));
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// What a slot-material text may hold: the `[slots]` table and nothing else.
#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct SlotsFile {
    #[serde(default)]
    slots: BTreeMap<String, String>,
}

/// Reads a slot-material text (`file` names it in errors): TOML with only
/// a `[slots]` table of strings. Not checked against the brand.
pub fn from_text(file: &str, text: &str) -> Result<BTreeMap<String, String>, Vec<ConfigError>> {
    parse_toml::<SlotsFile>(file, text)
        .map(|f| f.slots)
        .map_err(|e| vec![e])
}

/// Reads a proposed slot-material text and checks it against the brand's
/// slot declarations: a slot the brand does not declare, a value longer than
/// its `max_len` (or [`MAX_SLOT_CHARS`]), markup where the slot allows none,
/// a required slot missing or empty. Every error with its line, in line order.
pub fn check(
    file: &str,
    text: &str,
    brand: &BrandPolicy,
) -> Result<BTreeMap<String, String>, Vec<ConfigError>> {
    let slots = from_text(file, text)?;
    let mut errors = Vec::new();
    for (slot, value) in &slots {
        if value.chars().count() > MAX_SLOT_CHARS {
            errors.push(invalid(
                file,
                text,
                &format!("slots.{slot}"),
                format!("is longer than {MAX_SLOT_CHARS} characters"),
            ));
        }
    }
    policy::check_slots(&slots, brand, &mut |key, message| {
        errors.push(invalid(file, text, &key, message));
    });
    if errors.is_empty() {
        Ok(slots)
    } else {
        errors.sort_by_key(|e| e.line.unwrap_or(0));
        Err(errors)
    }
}

/// The fingerprint a version of slot material records (templates record
/// their own; nothing reads this one but the history).
pub fn fingerprint(text: &str) -> u64 {
    let h = blake3::hash(text.as_bytes());
    let mut b = [0u8; 8];
    b.copy_from_slice(&h.as_bytes()[..8]);
    u64::from_be_bytes(b)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn the_canonical_text_is_sorted_escaped_and_reads_back_the_same() {
        let slots = BTreeMap::from([
            (
                "signature".to_string(),
                "Ihr Team\nGrüße \"aus\" C:\\".to_string(),
            ),
            ("logo".to_string(), String::new()),
            (
                "odd key".to_string(),
                "tab\there\u{7f}\u{1}\u{85}".to_string(),
            ),
        ]);
        let text = to_text(&slots);
        assert_eq!(
            text,
            "[slots]\nlogo = \"\"\n\"odd key\" = \"tab\\there\\u007F\\u0001\\u0085\"\nsignature = \"Ihr Team\\nGrüße \\\"aus\\\" C:\\\\\"\n"
        );
        assert_eq!(from_text("x", &text).unwrap(), slots);
        assert_eq!(to_text(&BTreeMap::new()), "[slots]\n");
        assert_eq!(from_text("x", "[slots]\n").unwrap(), BTreeMap::new());
    }

    #[test]
    fn names_carry_a_valid_tenant_id() {
        let t = TenantId::new("d001").unwrap();
        assert_eq!(name(&t), "slots/d001");
        assert_eq!(tenant_of("slots/d001"), Some(t));
        assert_eq!(tenant_of("slots/../x"), None);
        assert_eq!(tenant_of("service_due"), None);
        assert!(is_slots("slots/"));
        assert!(!is_slots("service_due"));
    }

    #[test]
    fn other_tables_and_non_strings_are_refused_with_their_line() {
        let e = from_text("f", "[slots]\nsignature = 3\n").unwrap_err();
        assert_eq!(e.len(), 1);
        assert_eq!(e[0].line, Some(2), "{e:?}");
        assert_eq!(e[0].key, "slots.signature");
        let e = from_text("f", "[slots]\n\n[sender]\nname = \"x\"\n").unwrap_err();
        assert!(e[0].message.contains("unknown key `sender`"), "{e:?}");
    }
}
