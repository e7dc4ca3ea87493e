//! Dealer policy files (`policies/dealers/<id>.toml`) for generated dealers.

use std::fmt::Write as _;

use crate::gen::{mix, push_translit};
use crate::tables::{Region, BUSINESS_STREETS, FEMALE_FIRST, LAST, MALE_FIRST, REGIONS};
use crate::{DealerSpec, Dialect};

const SALT_POLICY: u64 = 0x706f_6c69;
const SALT_QUALITY_CHECK: u64 = 0x7163_6b00;

/// The demo brand's services (`policies/brand.toml`) as a dealer sees them:
/// euro of monthly budget per 100 customers, and the share of dealers (in
/// percent) that take part. Reminders for service and inspection are what
/// every dealer wants; the rest is a dealer's choice.
const SERVICES: &[(&str, u32, u32)] = &[
    ("service_due", 14, 100),
    ("hu_reminder", 9, 100),
    ("warranty_extension", 6, 40),
    ("birthday", 1, 80),
    ("winter_check", 16, 50),
];

const OPENING_HOURS: &[&str] = &[
    "Mo–Fr 7:30–18:00 Uhr, Sa 9:00–13:00 Uhr",
    "Mo–Fr 7:00–18:30 Uhr, Sa 8:00–12:00 Uhr",
    "Mo–Do 7:30–17:30 Uhr, Fr 7:30–16:00 Uhr",
    "Mo–Fr 8:00–18:00 Uhr",
];

const LOCAL_OFFERS: &[&str] = &[
    "Bei Ihrem nächsten Werkstattbesuch waschen wir Ihr Fahrzeug kostenlos.",
    "Mit diesem Schreiben erhalten Sie 10 % auf Wischerblätter und Scheinwerferlampen.",
    "Während der Inspektion fahren Sie kostenlos einen Ersatzwagen – bitte bei der Terminvereinbarung reservieren.",
    "Kaffee, WLAN und eine Kinderecke: Warten Sie bei uns ganz entspannt.",
];

const FIELDS: &str = "# Fields are the snake_case import fields: customer_no, salutation,
# first_name, last_name, full_name, company, is_company, street, house_no,
# postcode, city, country, email, phone, birth_date, language, vin, make,
# model, first_registration, last_service_date, last_service_km,
# next_inspection, warranty_end, consent_email, consent_post, consent_phone,
# consent_date, consent_source, consent_channel, consent_granted, visit_date,
# visit_km, visit_kind, visit_value, response_date, response_kind,
# response_value, response_note (response files: appointments and offers
# accepted), and ignore (skip the column without a warning).
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

/// "Autohaus Müller GmbH" -> "autohaus-mueller": a domain-name label.
fn slug(name: &str) -> String {
    let mut words = Vec::new();
    for w in name.split([' ', '&']) {
        if matches!(
            w,
            "GmbH" | "KG" | "AG" | "OHG" | "e.K." | "Co." | "und" | ""
        ) {
            continue;
        }
        let mut t = String::new();
        push_translit(&mut t, w);
        if !t.is_empty() {
            words.push(t);
        }
    }
    words.join("-")
}

/// The dealer's channels, contact details, services, budgets and slots,
/// derived from its seed: the same spec always gives the same file.
fn tenant_settings(spec: &DealerSpec, t: &mut String) {
    let mut r = fastrand::Rng::with_seed(mix(spec.seed ^ SALT_POLICY));
    let region: Option<&Region> = REGIONS.iter().find(|g| g.city == spec.city);
    let with_phone = r.u32(0..100) < 25;
    let capacity = (spec.customers / 2).div_ceil(50).max(4) * 50;

    t.push_str(
        "
[channels]
# Channels this dealer sends on at all: \"email\", \"post\", \"phone\" (the
# call centre). A service is only sent on channels both the brand's service
# and this list allow. Default: [\"email\", \"post\"].
",
    );
    let channels = if with_phone {
        "[\"email\", \"post\", \"phone\"]"
    } else {
        "[\"email\", \"post\"]"
    };
    let _ = writeln!(t, "enabled = {channels}");
    t.push_str(
        "# Messages sent per day at most, all channels and services together;
# the rest waits for the next day (1 to 1000000, default 500).
",
    );
    let _ = writeln!(t, "daily_capacity = {capacity}");

    let domain = format!("{}.example", slug(&spec.name));
    let street = format!(
        "{} {}",
        BUSINESS_STREETS[r.usize(..BUSINESS_STREETS.len())],
        r.u32(1..80)
    );
    let postcode = match region {
        Some(g) => {
            let (lo, hi) = g.postcodes;
            format!("{:05}", lo + r.u32(0..=(hi - lo)))
        }
        None => format!("{}{:03}", spec.postcode_prefix, r.u32(0..1000)),
    };
    let area = region.map_or_else(|| format!("0{}1", spec.postcode_prefix), |g| g.area.into());
    let phone = format!(
        "+49 {} {}-0",
        area.trim_start_matches('0'),
        r.u32(100_000..1_000_000)
    );
    t.push_str(
        "
# The dealer as sender: the From of emails and the return address of letters.
[sender]
# Display name in the From header and above the return address.
",
    );
    let _ = writeln!(t, "name = {}", quoted(&spec.name));
    t.push_str(
        "# Address emails are sent from (its domain must allow the mail server).
",
    );
    let _ = writeln!(t, "email = {}", quoted(&format!("service@{domain}")));
    t.push_str(
        "# Where replies go (optional, default: email).
",
    );
    let _ = writeln!(t, "reply_to = {}", quoted(&format!("werkstatt@{domain}")));
    t.push_str(
        "# Telephone number printed in messages for appointments.
",
    );
    let _ = writeln!(t, "phone = {}", quoted(&phone));
    t.push_str(
        "# Postal address of the dealership.
",
    );
    let _ = writeln!(t, "street = {}", quoted(&street));
    let _ = writeln!(t, "postcode = {}", quoted(&postcode));
    let _ = writeln!(t, "city = {}", quoted(&spec.city));

    t.push_str(
        "
# Services of the brand's catalogue (brand.toml [services]) this dealer takes
# part in. A service not listed here, or with opt_in = false, is never sent.
#   opt_in           true: take part (default true)
#   monthly_budget   euro per calendar month for this service's messages
#                    (postage, email, call centre); once spent, the planner
#                    sends the most valuable messages first and the rest waits
#                    for next month. 12.5, 12 or \"12.50\".",
    );
    for &(id, per_100, share) in SERVICES {
        let opt_in = r.u32(0..100) < share;
        let budget = if opt_in {
            // 0.5 to 1.5 times the typical need, in steps of 5 euro.
            let euro = spec.customers as u32 * per_100 * r.u32(50..=150) / 10_000;
            (euro.div_ceil(5) * 5).max(10)
        } else {
            0
        };
        let _ = writeln!(t, "\n[services.{id}]");
        let _ = writeln!(t, "opt_in = {opt_in}");
        let _ = writeln!(t, "monthly_budget = {budget}.00");
    }
    if with_phone {
        // Only dealers with a call centre take part; drawn from its own
        // stream so the draws above stay what they were.
        let mut q = fastrand::Rng::with_seed(mix(spec.seed ^ SALT_QUALITY_CHECK));
        let euro = (spec.customers as u32 * 2 * q.u32(50..=150) / 100).div_ceil(50) * 50;
        let _ = writeln!(t, "\n[services.quality_check]");
        let _ = writeln!(t, "opt_in = true");
        let _ = writeln!(t, "monthly_budget = {}.00", euro.max(100));
    }

    let first = if r.bool() {
        MALE_FIRST[r.usize(..MALE_FIRST.len())]
    } else {
        FEMALE_FIRST[r.usize(..FEMALE_FIRST.len())]
    };
    let last = LAST[r.usize(..LAST.len())];
    let signature = format!("Ihr Serviceteam\n{first} {last}, Serviceleitung");
    let hours = OPENING_HOURS[r.usize(..OPENING_HOURS.len())];
    let offer = if r.u32(0..100) < 60 {
        LOCAL_OFFERS[r.usize(..LOCAL_OFFERS.len())]
    } else {
        ""
    };
    t.push_str(
        "
# The individualisation slots of the brand's templates: the only parts of
# a message the dealer writes (at most 2000 characters each).
[slots]
# Closing lines under every message (\"\\n\" starts a new line).
",
    );
    let _ = writeln!(t, "signature = {}", quoted(&signature));
    t.push_str(
        "# Opening hours of the workshop, printed next to the phone number.
",
    );
    let _ = writeln!(t, "opening_hours = {}", quoted(hours));
    t.push_str(
        "# A local offer printed as its own paragraph; \"\" leaves it out.
",
    );
    let _ = writeln!(t, "local_offer = {}", quoted(offer));
    t.push_str(
        "# Logo on letters: a file relative to the policy directory, like
# \"logos/d001.png\"; \"\" prints the brand's logo.
",
    );
    t.push_str("logo = \"\"\n");

    t.push_str(
        "
# Never contact these customers, whatever their consent says (a complaint,
# a dispute, staff). Unsubscribes arrive by themselves and need no entry.
[suppress]
# Customer numbers as in this dealer's exports.
# customers = [\"100234\", \"100987\"]
# Email addresses (case-insensitive).
# emails = [\"max.mustermann@example.org\"]

# What of this dealer's own results the brand may see by name in its pooled
# report (`touchpoint report --pooled`). By default nothing: the brand sees
# only anonymous pooled figures. Listed fields appear with this dealer's id
# and name, over the report's period and filters: sent, delivered,
# responses, response_rate, control, control_rate, lift, cost,
# cost_per_response, cost_per_incremental, value, bounces, unsubscribes.
[share]
# fields = [\"sent\", \"response_rate\", \"lift\"]
",
    );
}

/// The policy file of a dealer (schema `touchpoint_common::policy::TenantPolicy`),
/// every key explained in a comment. Dealers whose DMS writes the tab dialect
/// get an `[import.columns]` table mapping its short headers.
pub fn tenant_policy_toml(spec: &DealerSpec) -> String {
    tenant_policy_toml_in(spec, spec.dialect())
}

/// The policy file of a dealer whose exports are written in `dialect`
/// (whatever its own DMS would write).
pub fn tenant_policy_toml_in(spec: &DealerSpec, dialect: Dialect) -> String {
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
    tenant_settings(spec, &mut t);
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
