//! Dealer policy files (`policies/dealers/<id>.toml`) for generated dealers.

use std::fmt::Write as _;

use crate::{DealerSpec, Dialect};

const FIELDS: &str = "# Fields are the snake_case import fields: customer_no, salutation,
# first_name, last_name, full_name, company, is_company, street, house_no,
# postcode, city, country, email, phone, birth_date, language, vin, make,
# model, first_registration, last_service_date, last_service_km,
# next_inspection, warranty_end, consent_email, consent_post, consent_phone,
# consent_date, consent_source, consent_channel, consent_granted, visit_date,
# visit_km, visit_kind, and ignore (skip the column without a warning).
";

const SEMICOLON: &str = "# This DMS writes ';'-separated Windows-1252 files with German headers and
# dates like 31.12.2024, which detection handles. Uncomment to force.
# Delimiter: \";\", \",\", \"\\t\" (tab) or \"|\". Default: detected.
# delimiter = \";\"
# Encoding: \"utf-8\" or \"windows-1252\". Default: detected.
# encoding = \"windows-1252\"
# Date order: \"dmy\" (day first, the default) or \"ymd\".
# date_order = \"dmy\"

# Header -> field overrides, looked up (case-insensitively) before the
# built-in headers. None needed for this DMS; uncomment to add one.
";

const COMMA: &str = "# This DMS writes ','-separated UTF-8 (with byte-order mark) with English
# headers and ISO dates (2024-12-31).
# Delimiter: \";\", \",\", \"\\t\" (tab) or \"|\". Default: detected.
# delimiter = \",\"
# Encoding: \"utf-8\" or \"windows-1252\". Default: detected.
encoding = \"utf-8\"
# Date order: \"dmy\" (day first, the default) or \"ymd\". Forced here so that
# a file with nothing but unambiguous dates is never read day first.
date_order = \"ymd\"

# Header -> field overrides, looked up (case-insensitively) before the
# built-in headers. None needed for this DMS; uncomment to add one.
";

const TAB: &str = "# This DMS writes tab-separated UTF-8 without byte-order mark, with short
# German headers and two-digit years (31.12.24).
# Delimiter: \";\", \",\", \"\\t\" (tab) or \"|\". Default: detected.
delimiter = \"\\t\"
# Encoding: \"utf-8\" or \"windows-1252\". Default: detected.
encoding = \"utf-8\"
# Date order: \"dmy\" (day first, the default) or \"ymd\".
date_order = \"dmy\"

# Header -> field overrides, looked up (case-insensitively) before the
# built-in headers. The short headers of this DMS need them; \"Name\" in
# particular holds only the surname here, not \"Surname, First name\".
";

/// A TOML basic string.
fn quoted(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\t' => out.push_str("\\t"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            c if c.is_control() => {
                let _ = write!(out, "\\u{:04X}", u32::from(c));
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// The policy file of a dealer (schema `touchpoint_common::config::TenantPolicy`),
/// every key explained in a comment. Dealers whose DMS writes the tab dialect
/// get an `[import.columns]` table mapping its short headers.
pub fn tenant_policy_toml(spec: &DealerSpec) -> String {
    let dialect = spec.dialect();
    let mut t = String::with_capacity(4096);
    let city = if spec.city.is_empty() {
        String::new()
    } else {
        format!(", {}", spec.city)
    };
    let _ = writeln!(t, "# Dealer policy of {}{city}.", spec.name);
    t.push_str(
        "#
# One file per dealer in <policy_dir>/dealers/, named after the tenant id.
# touchpointd re-reads it within a second of a change; a file with a mistake
# is rejected with file, line and key, and the previous version stays in force.

[tenant]
# Tenant id: names the dealer's sealed data room on disk. 1 to 64 characters
# of a-z, 0-9, '-' and '_', starting with a letter or digit; must equal the
# file name. Never rename it: a new id is a new, empty data room.
",
    );
    let _ = writeln!(t, "id = {}", quoted(&spec.id));
    t.push_str("# Name of the dealership, shown in the console and signed under messages.\n");
    let _ = writeln!(t, "name = {}", quoted(&spec.name));
    t.push_str("# Where the dealership is (optional, default \"\"); shown in the console.\n");
    let _ = writeln!(t, "city = {}", quoted(&spec.city));
    t.push_str(
        "
# How the exports of this dealer's management system (DMS) are read. Every
# key is optional: by default the importer detects delimiter and encoding,
# reads dates day first and knows the usual German and English headers.
[import]
",
    );
    match dialect {
        Dialect::DmsSemicolon1252 => {
            t.push_str(SEMICOLON);
            t.push_str(FIELDS);
            t.push_str("# [import.columns]\n# \"Kd-Nr.\" = \"customer_no\"\n");
        }
        Dialect::DmsCommaUtf8Bom => {
            t.push_str(COMMA);
            t.push_str(FIELDS);
            t.push_str("# [import.columns]\n# \"Cust. ID\" = \"customer_no\"\n");
        }
        Dialect::DmsTab => {
            t.push_str(TAB);
            t.push_str(FIELDS);
            t.push_str("[import.columns]\n");
            let mut seen = Vec::new();
            for (header, field) in dialect
                .customer_columns()
                .iter()
                .chain(dialect.visit_columns())
            {
                if seen.contains(header) {
                    continue;
                }
                seen.push(*header);
                let _ = writeln!(t, "{} = {}", quoted(header), quoted(field.name()));
            }
        }
    }
    t
}
