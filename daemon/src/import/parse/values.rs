//! Parsers for single cell values as dealer systems write them. Each takes a
//! trimmed, non-empty cell and returns the domain value or the reason it is
//! unusable; the reason quotes the cell so an error line reads on its own
//! (`"max@@example" is not an address`).

use touchpoint_common::domain::{Salutation, Timestamp};
use touchpoint_common::Date;

/// How to read dates whose year is not written first.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum DateOrder {
    /// `31.12.2024`, the German default.
    #[default]
    Dmy,
    /// `24.12.31` read as 2024-12-31. Four-digit-year-first dates are always year-first.
    Ymd,
    /// `12/31/2024`, US exports.
    Mdy,
}

impl DateOrder {
    pub fn from_option(s: &str) -> Option<Self> {
        match s.trim().to_ascii_lowercase().as_str() {
            "dmy" | "d.m.y" | "dd.mm.yyyy" => Some(Self::Dmy),
            "ymd" | "y-m-d" | "yyyy-mm-dd" => Some(Self::Ymd),
            "mdy" | "m/d/y" | "mm/dd/yyyy" => Some(Self::Mdy),
            _ => None,
        }
    }

    fn expected(self) -> &'static str {
        match self {
            Self::Dmy => "DD.MM.YYYY or YYYY-MM-DD",
            Self::Ymd => "YYYY-MM-DD",
            Self::Mdy => "MM/DD/YYYY or YYYY-MM-DD",
        }
    }
}

/// Which century a two-digit year belongs to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Era {
    /// Birth dates: never in the future, so `31.12.85` is 1985 and `01.01.30` is 1930.
    Past,
    /// Registration, service, inspection and warranty dates: up to 20 years
    /// ahead of today, otherwise the previous century.
    Near,
}

const MIN_YEAR: i32 = 1900;
const MAX_YEAR: i32 = 2199;

/// A parsed date with an optional time of day (seconds from midnight, UTC).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct DateTime {
    date: Date,
    utc_secs: Option<i64>,
}

/// Parses `31.12.2024`, `2024-12-31`, `31.12.24`, `20241231`, optionally
/// followed by a time (`31.12.2024 00:00`, `2024-12-31T10:00:00Z`); the time
/// is dropped. Month and year alone (`03/2026`, as HU dates are written)
/// give the first of the month. `Ok(None)` for placeholder dates such as
/// `00.00.0000`.
pub fn parse_date(
    s: &str,
    order: DateOrder,
    era: Era,
    today: Date,
) -> Result<Option<Date>, String> {
    let Some(dt) = parse_date_time(s, order, era, today)? else {
        return Ok(None);
    };
    if era == Era::Past && dt.date > today {
        return Err(format!("{s:?} is in the future"));
    }
    Ok(Some(dt.date))
}

/// Like [`parse_date`] but keeps the time of day: a date alone is midnight
/// UTC; a time without an offset is taken as UTC.
pub fn parse_timestamp(
    s: &str,
    order: DateOrder,
    today: Date,
) -> Result<Option<Timestamp>, String> {
    let Some(dt) = parse_date_time(s, order, Era::Near, today)? else {
        return Ok(None);
    };
    let midnight = Timestamp::from_date(dt.date).millis();
    Ok(Some(Timestamp(midnight + dt.utc_secs.unwrap_or(0) * 1000)))
}

fn parse_date_time(
    s: &str,
    order: DateOrder,
    era: Era,
    today: Date,
) -> Result<Option<DateTime>, String> {
    let bad = || format!("{s:?} is not a date (expected {})", order.expected());
    let (date_part, time_part) = match s.find(['T', ' ']) {
        Some(i) => (&s[..i], Some(s[i + 1..].trim())),
        None => (s, None),
    };
    if !date_part.is_empty()
        && date_part
            .bytes()
            .all(|b| matches!(b, b'0' | b'.' | b'-' | b'/'))
    {
        return Ok(None);
    }
    let (year, m, d) = split_ymd(date_part, order).ok_or_else(bad)?;
    // In the expected format, but no such day: say so, not "not a date".
    let no_such_day = |y: i32| {
        if (1..=12).contains(&m) && (1..=31).contains(&d) {
            let last = days_in_month(y, m);
            format!("{s:?} does not exist: {} has {last} days", month_name(y, m))
        } else if !(1..=12).contains(&m) {
            format!("{s:?} does not exist: there is no month {m}")
        } else {
            format!("{s:?} does not exist: there is no day {d}")
        }
    };
    let date = match year {
        Year::Full(y) => {
            if !(MIN_YEAR..=MAX_YEAR).contains(&y) {
                return Err(format!("{s:?} is not a plausible date (year {y})"));
            }
            Date::from_ymd(y, m, d).ok_or_else(|| no_such_day(y))?
        }
        Year::TwoDigit(yy) => {
            let this_century = Date::from_ymd(2000 + yy, m, d);
            let previous = Date::from_ymd(1900 + yy, m, d);
            let too_late = |c: Date| match era {
                Era::Past => c > today,
                Era::Near => c.year() > today.year() + 20,
            };
            match this_century {
                Some(c) if !too_late(c) => c,
                _ => previous.ok_or_else(|| no_such_day(1900 + yy))?,
            }
        }
    };
    let utc_secs = match time_part {
        None => None,
        Some(t) => Some(parse_time(t).ok_or_else(bad)?),
    };
    Ok(Some(DateTime { date, utc_secs }))
}

enum Year {
    Full(i32),
    TwoDigit(i32),
}

fn split_ymd(s: &str, order: DateOrder) -> Option<(Year, u32, u32)> {
    let num = |p: &str| -> Option<u32> {
        if p.is_empty() || p.len() > 4 || !p.bytes().all(|b| b.is_ascii_digit()) {
            None
        } else {
            p.parse().ok()
        }
    };
    if s.len() == 8 && s.bytes().all(|b| b.is_ascii_digit()) {
        // Compact 20241231; only year-first is unambiguous enough.
        let (y, m, d) = (num(&s[..4])?, num(&s[4..6])?, num(&s[6..])?);
        return (y >= 1000).then_some((Year::Full(y as i32), m, d));
    }
    let sep = s.bytes().find(|b| !b.is_ascii_digit())?;
    if !matches!(sep, b'.' | b'-' | b'/') {
        return None;
    }
    let mut parts = s.split(sep as char);
    let (a, b) = (parts.next()?, parts.next()?);
    let Some(c) = parts.next() else {
        // "03/2026": inspection and warranty months; the first of the month.
        let month_year = sep != b'-' && (1..=2).contains(&a.len()) && b.len() == 4;
        return month_year
            .then(|| Some((Year::Full(num(b)? as i32), num(a)?, 1)))
            .flatten();
    };
    if parts.next().is_some() {
        return None;
    }
    let (na, nb, nc) = (num(a)?, num(b)?, num(c)?);
    let year = |p: &str, n: u32| -> Option<Year> {
        match p.len() {
            4 => Some(Year::Full(n as i32)),
            2 => Some(Year::TwoDigit(n as i32)),
            _ => None,
        }
    };
    if a.len() == 4 {
        return (b.len() <= 2 && c.len() <= 2).then_some((Year::Full(na as i32), nb, nc));
    }
    if c.len() == 4 || order != DateOrder::Ymd {
        if b.len() > 2 || a.len() > 2 {
            return None;
        }
        return match order {
            DateOrder::Mdy => Some((year(c, nc)?, na, nb)),
            _ => Some((year(c, nc)?, nb, na)),
        };
    }
    if b.len() > 2 || c.len() > 2 {
        return None;
    }
    Some((year(a, na)?, nb, nc))
}

/// `10:00`, `10:00:00`, `10:00:00.123`, with an optional `Z` or `+01:00`
/// offset. Returns seconds from midnight in UTC (may leave the day).
fn parse_time(t: &str) -> Option<i64> {
    let t = t.trim().trim_end_matches(" Uhr");
    let (clock, offset_secs) = if let Some(c) = t.strip_suffix(['Z', 'z']) {
        (c, 0)
    } else if let Some(i) = t.rfind(['+', '-']).filter(|&i| i >= 4) {
        let (sign, off) = (if &t[i..=i] == "-" { -1 } else { 1 }, &t[i + 1..]);
        let (oh, om) = match off.split_once(':') {
            Some((h, m)) => (h, m),
            None if off.len() == 4 => (&off[..2], &off[2..]),
            None => (off, "0"),
        };
        let (oh, om): (i64, i64) = (oh.parse().ok()?, om.parse().ok()?);
        if oh > 14 || om > 59 {
            return None;
        }
        (&t[..i], sign * (oh * 3600 + om * 60))
    } else {
        (t, 0)
    };
    let mut it = clock.split(':');
    let h: i64 = digits(it.next()?)?;
    let m: i64 = digits(it.next()?)?;
    let s: i64 = match it.next() {
        Some(sec) => digits(sec.split(['.', ',']).next()?)?,
        None => 0,
    };
    if it.next().is_some() || h > 23 || m > 59 || s > 60 {
        return None;
    }
    Some(h * 3600 + m * 60 + s - offset_secs)
}

fn digits(p: &str) -> Option<i64> {
    if p.is_empty() || p.len() > 2 || !p.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    p.parse().ok()
}

/// Mileage ceiling: beyond this the value is a typo or a serial number.
pub const MAX_KM: u64 = 2_000_000;

/// Whole kilometres from `45.300`, `45300`, `45.300,5`, `45,300.5`,
/// `45 300 km`. A single separator followed by exactly three digits groups
/// thousands; otherwise it is the decimal mark. Fractions are cut off (an
/// odometer has not reached the next kilometre yet).
pub fn parse_km(s: &str) -> Result<u32, String> {
    let bad = || format!("{s:?} is not a mileage");
    let mut t = s.trim();
    for unit in ["km", "KM", "Km", "kM"] {
        if let Some(rest) = t.strip_suffix(unit) {
            t = rest.trim_end();
            break;
        }
    }
    if let Some(rest) = t.strip_prefix('-') {
        if rest.bytes().any(|b| b.is_ascii_digit()) {
            return Err(format!("{s:?} is negative"));
        }
        return Err(bad());
    }
    let t = t.strip_prefix('+').unwrap_or(t);
    // Grouping by spaces (also no-break spaces) and Swiss apostrophes.
    let mut buf = [0u8; 32];
    let mut len = 0;
    for c in t.chars() {
        match c {
            ' ' | '\u{a0}' | '\u{202f}' | '\'' | '’' => continue,
            '0'..='9' | '.' | ',' => {
                if len == buf.len() {
                    return Err(bad());
                }
                buf[len] = c as u8;
                len += 1;
            }
            _ => return Err(bad()),
        }
    }
    let t = &buf[..len];
    if t.is_empty() || !t[0].is_ascii_digit() {
        return Err(bad());
    }
    let dots = t.iter().filter(|&&b| b == b'.').count();
    let commas = t.iter().filter(|&&b| b == b',').count();
    let last_of = |c: u8| t.iter().rposition(|&b| b == c);
    let (int_part, thousands): (&[u8], Option<u8>) = match (dots, commas) {
        (0, 0) => (t, None),
        (_, 0) | (0, _) => {
            let sep = if dots > 0 { b'.' } else { b',' };
            let pos = last_of(sep).ok_or_else(bad)?;
            let first = t.iter().position(|&b| b == sep).ok_or_else(bad)?;
            if dots + commas > 1 || (t.len() - pos - 1 == 3 && first <= 3) {
                (t, Some(sep))
            } else {
                (&t[..pos], None)
            }
        }
        _ => {
            let (dec, grp) = if last_of(b'.') > last_of(b',') {
                (b'.', b',')
            } else {
                (b',', b'.')
            };
            let pos = last_of(dec).ok_or_else(bad)?;
            if t.iter().filter(|&&b| b == dec).count() > 1 {
                return Err(bad());
            }
            (&t[..pos], Some(grp))
        }
    };
    let fraction_start = int_part.len() + 1;
    if fraction_start < t.len() && !t[fraction_start..].iter().all(u8::is_ascii_digit) {
        return Err(bad());
    }
    let mut value: u64 = 0;
    let mut group_len = 0usize;
    let mut groups = 0usize;
    for &b in int_part {
        if Some(b) == thousands {
            if (groups == 0 && !(1..=3).contains(&group_len)) || (groups > 0 && group_len != 3) {
                return Err(bad());
            }
            groups += 1;
            group_len = 0;
        } else if b.is_ascii_digit() {
            value = value.saturating_mul(10).saturating_add(u64::from(b - b'0'));
            group_len += 1;
        } else {
            return Err(bad());
        }
    }
    if groups > 0 && group_len != 3 {
        return Err(bad());
    }
    if value > MAX_KM {
        return Err(format!(
            "{s:?} is not a plausible mileage (more than 2,000,000 km)"
        ));
    }
    Ok(value as u32)
}

/// Lower-cases the domain, keeps the local part as written. Accepts what
/// real addresses look like, not all of RFC 5322: one `@`, a non-empty local
/// part, a domain with a dot and a top-level domain, no spaces.
pub fn normalize_email(s: &str) -> Result<String, String> {
    let bad = || format!("{s:?} is not an address");
    let t = s
        .strip_prefix("mailto:")
        .or_else(|| s.strip_prefix("MAILTO:"))
        .unwrap_or(s);
    let (local, domain) = t.split_once('@').ok_or_else(bad)?;
    if domain.contains('@') || local.is_empty() || domain.is_empty() {
        return Err(bad());
    }
    let forbidden = |c: char| c.is_whitespace() || c.is_control() || "\"(),:;<>[]\\".contains(c);
    if local.chars().any(forbidden)
        || local.starts_with('.')
        || local.ends_with('.')
        || local.contains("..")
    {
        return Err(bad());
    }
    let labels: Vec<&str> = domain.split('.').collect();
    if labels.len() < 2 {
        return Err(bad());
    }
    for label in &labels {
        let ok = !label.is_empty()
            && !label.starts_with('-')
            && !label.ends_with('-')
            && label.chars().all(|c| c.is_alphanumeric() || c == '-');
        if !ok {
            return Err(bad());
        }
    }
    let tld = labels[labels.len() - 1];
    if tld.chars().count() < 2 || !(tld.chars().all(char::is_alphabetic) || tld.starts_with("xn--"))
    {
        return Err(bad());
    }
    let mut out = String::with_capacity(t.len());
    out.push_str(local);
    out.push('@');
    out.extend(domain.chars().flat_map(char::to_lowercase));
    Ok(out)
}

/// International dialling code for the countries whose dealers we see, used
/// to complete national numbers (`089 1234567` in DE is `+49891234567`).
fn dialling_code(country: &str) -> Option<&'static str> {
    Some(match country {
        "DE" => "49",
        "AT" => "43",
        "CH" => "41",
        "LI" => "423",
        "NL" => "31",
        "BE" => "32",
        "LU" => "352",
        "FR" => "33",
        "IT" => "39",
        "ES" => "34",
        "PL" => "48",
        "CZ" => "420",
        "DK" => "45",
        "GB" => "44",
        "SE" => "46",
        "NO" => "47",
        "US" => "1",
        _ => return None,
    })
}

/// E.164-style `+<country><number>` with digits only: `+49 89 1234-567`,
/// `089/1234567`, `0049 (0)89 1234567` all become `+49891234567`. National
/// numbers get the dialling code of `country`.
pub fn normalize_phone(s: &str, country: &str) -> Result<String, String> {
    let bad = || format!("{s:?} is not a phone number");
    let mut digits = String::with_capacity(s.len() + 3);
    let mut plus = false;
    let t = s.replace("(0)", " ");
    for (i, c) in t.trim().chars().enumerate() {
        match c {
            '+' if i == 0 => plus = true,
            '0'..='9' => digits.push(c),
            ' ' | '\u{a0}' | '-' | '/' | '(' | ')' | '.' => {}
            _ => return Err(bad()),
        }
    }
    let international = if plus {
        digits
    } else if let Some(rest) = digits.strip_prefix("00") {
        rest.to_string()
    } else if let Some(rest) = digits.strip_prefix('0') {
        let code = dialling_code(country).ok_or_else(|| format!("{s:?} has no country code"))?;
        format!("{code}{rest}")
    } else if digits.is_empty() {
        return Err(bad());
    } else {
        return Err(format!("{s:?} has no area code"));
    };
    // "+49 089 …": the trunk 0 does not belong after the country code.
    let mut international = international;
    for code in ["49", "43", "41"] {
        if international.starts_with(code) && international[code.len()..].starts_with('0') {
            international.remove(code.len());
            break;
        }
    }
    if !(8..=15).contains(&international.len()) {
        return Err(bad());
    }
    international.insert(0, '+');
    Ok(international)
}

/// `12`, `12a`, `12 a`, `12-14`, `12/1`, `3a-c`: digits first, short letter
/// suffixes, one range or fraction.
fn is_house_no(compact: &str) -> bool {
    let b = compact.as_bytes();
    let mut i = 0;
    let part = |i: &mut usize, need_digit: bool| -> bool {
        let start = *i;
        while *i < b.len() && b[*i].is_ascii_digit() {
            *i += 1;
        }
        let digits = *i - start;
        let letters_start = *i;
        while *i < b.len() && b[*i].is_ascii_alphabetic() {
            *i += 1;
        }
        let letters = *i - letters_start;
        (digits > 0 || (!need_digit && letters > 0)) && digits <= 5 && letters <= 2
    };
    if !part(&mut i, true) {
        return false;
    }
    if i < b.len() && (b[i] == b'-' || b[i] == b'/') {
        i += 1;
        if !part(&mut i, false) {
            return false;
        }
    }
    i == b.len()
}

/// `12 a` → `12A`, `12-14` kept; anything that is not a house number is kept
/// as written (whitespace collapsed).
pub fn normalize_house_no(s: &str) -> String {
    let compact: String = s.chars().filter(|c| !c.is_whitespace()).collect();
    if is_house_no(&compact) {
        compact.to_ascii_uppercase()
    } else {
        collapse_ws(s)
    }
}

/// Splits `Hauptstr. 12a` into (`Hauptstr.`, `12A`); `Straße des 17. Juni 5`
/// into (`Straße des 17. Juni`, `5`). No house number: (street, None).
pub fn split_street(s: &str) -> (String, Option<String>) {
    let tokens: Vec<&str> = s.split_whitespace().collect();
    for i in 1..tokens.len() {
        if !tokens[i].starts_with(|c: char| c.is_ascii_digit()) {
            continue;
        }
        let compact: String = tokens[i..].concat();
        if is_house_no(&compact) {
            return (tokens[..i].join(" "), Some(compact.to_ascii_uppercase()));
        }
    }
    // "Hauptstr.12a": no space after the abbreviation.
    if let Some(last) = tokens.last() {
        if let Some(dot) = last.rfind('.') {
            let (head, no) = (&last[..=dot], &last[dot + 1..]);
            if head.len() > 1 && is_house_no(no) {
                let mut street = tokens[..tokens.len() - 1].join(" ");
                if !street.is_empty() {
                    street.push(' ');
                }
                street.push_str(head);
                return (street, Some(no.to_ascii_uppercase()));
            }
        }
    }
    (tokens.join(" "), None)
}

/// Trims and collapses inner runs of whitespace to one space.
pub fn collapse_ws(s: &str) -> String {
    let s = s.trim();
    let mut prev_space = false;
    let clean = s.chars().all(|c| {
        let space = c.is_whitespace();
        let ok = !(space && (prev_space || c != ' '));
        prev_space = space;
        ok
    });
    if clean {
        return s.to_string();
    }
    let mut out = String::with_capacity(s.len());
    for word in s.split_whitespace() {
        if !out.is_empty() {
            out.push(' ');
        }
        out.push_str(word);
    }
    out
}

const NAME_PARTICLES: &[&str] = &[
    "von", "van", "vom", "de", "der", "den", "del", "della", "di", "da", "du", "zu", "zum", "zur",
    "ten", "ter", "la", "le", "y",
];

/// Splits a "Name" cell into (first name, last name): `Müller, Hans` and
/// `Hans Müller` both give (`Hans`, `Müller`); particles stay with the last
/// name (`Hans von der Heide` → `von der Heide`).
pub fn split_full_name(s: &str) -> (String, String) {
    if let Some((last, first)) = s.split_once(',') {
        return (collapse_ws(first), collapse_ws(last));
    }
    let tokens: Vec<&str> = s.split_whitespace().collect();
    match tokens.len() {
        0 => (String::new(), String::new()),
        1 => (String::new(), tokens[0].to_string()),
        n => {
            let mut j = n - 1;
            while j > 1 && NAME_PARTICLES.contains(&tokens[j - 1].to_lowercase().as_str()) {
                j -= 1;
            }
            (tokens[..j].join(" "), tokens[j..].join(" "))
        }
    }
}

/// Whether a name carries a legal form (`Autohaus Schmidt GmbH`, `Meier KG`).
pub fn looks_like_company(name: &str) -> bool {
    const FORMS: &[&str] = &[
        "gmbh",
        "mbh",
        "ag",
        "kg",
        "ohg",
        "gbr",
        "ug",
        "ek",
        "e.k",
        "ev",
        "e.v",
        "kgaa",
        "se",
        "ltd",
        "inc",
        "llc",
        "gmbh&co",
        "co.kg",
        "gmbh&co.kg",
    ];
    name.split_whitespace().any(|tok| {
        let t = tok
            .trim_matches(|c: char| matches!(c, ',' | '(' | ')' | '.'))
            .to_lowercase();
        FORMS.contains(&t.as_str())
    })
}

/// `Herr`, `Frau`, `Firma`, `Divers` and their English and abbreviated forms,
/// also gender codes (`m`/`w`/`d`). Couples and anything else: Unknown.
pub fn parse_salutation(s: &str) -> Salutation {
    let lower = s.to_lowercase();
    if lower.contains(" und ") || lower.contains('&') || lower.contains(" and ") {
        return Salutation::Unknown;
    }
    let first = lower
        .split_whitespace()
        .next()
        .unwrap_or("")
        .trim_end_matches('.');
    match first {
        "herr" | "herrn" | "hr" | "mr" | "mister" | "sir" | "m" | "männlich" | "maennlich"
        | "male" => Salutation::Mr,
        "frau" | "fr" | "mrs" | "ms" | "miss" | "w" | "weiblich" | "female" | "f" => Salutation::Ms,
        "divers" | "diverse" | "d" | "mx" | "neutral" | "x" => Salutation::Mx,
        "firma" | "fa" | "company" | "firm" => Salutation::Company,
        _ => Salutation::Unknown,
    }
}

/// `ja`/`nein`, `x`, `1`/`0`, `yes`/`no`, `true`/`false` and the words DMS
/// consent columns use.
pub fn parse_yes_no(s: &str) -> Result<bool, String> {
    match s.to_lowercase().as_str() {
        "ja" | "j" | "yes" | "y" | "x" | "1" | "true" | "wahr" | "erteilt" | "ok" | "opt-in"
        | "optin" | "granted" | "zugestimmt" => Ok(true),
        "nein" | "n" | "no" | "0" | "false" | "falsch" | "widerrufen" | "abgelehnt"
        | "verweigert" | "opt-out" | "optout" | "revoked" | "denied" => Ok(false),
        _ => Err(format!("{s:?} is not yes or no")),
    }
}

/// Folds a name for table lookups: lower case, umlauts spelled out, only
/// letters and digits (`Kunden-Nr.` → `kundennr`, `Nächste HU` → `naechstehu`).
pub fn fold_key(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            'ä' | 'Ä' => out.push_str("ae"),
            'ö' | 'Ö' => out.push_str("oe"),
            'ü' | 'Ü' => out.push_str("ue"),
            'ß' | 'ẞ' => out.push_str("ss"),
            c if c.is_alphanumeric() => out.extend(c.to_lowercase()),
            _ => {}
        }
    }
    out
}

const COUNTRIES: &[(&str, &[&str])] = &[
    (
        "DE",
        &[
            "d",
            "deu",
            "deutschland",
            "germany",
            "brd",
            "bundesrepublikdeutschland",
            "allemagne",
        ],
    ),
    ("AT", &["a", "aut", "oesterreich", "osterreich", "austria"]),
    (
        "CH",
        &["che", "schweiz", "switzerland", "suisse", "svizzera"],
    ),
    ("LI", &["fl", "lie", "liechtenstein"]),
    ("NL", &["nld", "niederlande", "netherlands", "holland"]),
    ("BE", &["b", "bel", "belgien", "belgium", "belgique"]),
    ("LU", &["l", "lux", "luxemburg", "luxembourg"]),
    ("FR", &["f", "fra", "frankreich", "france"]),
    ("IT", &["i", "ita", "italien", "italy", "italia"]),
    ("ES", &["e", "esp", "spanien", "spain", "espana"]),
    ("PT", &["p", "prt", "portugal"]),
    ("PL", &["pol", "polen", "poland", "polska"]),
    (
        "CZ",
        &[
            "cze",
            "tschechien",
            "tschechischerepublik",
            "czechia",
            "czechrepublic",
        ],
    ),
    ("SK", &["svk", "slowakei", "slovakia"]),
    ("HU", &["h", "hun", "ungarn", "hungary"]),
    ("DK", &["dk", "dnk", "daenemark", "denmark"]),
    ("SE", &["s", "swe", "schweden", "sweden"]),
    ("NO", &["nor", "norwegen", "norway"]),
    ("FI", &["fin", "finnland", "finland"]),
    (
        "GB",
        &[
            "uk",
            "gbr",
            "grossbritannien",
            "vereinigteskoenigreich",
            "unitedkingdom",
            "england",
        ],
    ),
    ("IE", &["irl", "irland", "ireland"]),
    ("US", &["usa", "vereinigtestaaten", "unitedstates"]),
    ("GR", &["gr", "grc", "griechenland", "greece"]),
    ("TR", &["tr", "tur", "tuerkei", "turkey", "turkiye"]),
    ("HR", &["hr", "hrv", "kroatien", "croatia"]),
    ("SI", &["slo", "svn", "slowenien", "slovenia"]),
    ("RO", &["rou", "rumaenien", "romania"]),
    ("BG", &["bgr", "bulgarien", "bulgaria"]),
];

/// ISO 3166-1 alpha-2: `D`, `Deutschland`, `Germany` → `DE`; any two-letter
/// code is taken as written (upper-cased).
pub fn normalize_country(s: &str) -> Result<String, String> {
    let key = fold_key(s);
    for (code, aliases) in COUNTRIES {
        if key.eq_ignore_ascii_case(code) || aliases.contains(&key.as_str()) {
            return Ok((*code).to_string());
        }
    }
    if key.len() == 2 && key.bytes().all(|b| b.is_ascii_alphabetic()) && s.trim().len() == 2 {
        return Ok(key.to_ascii_uppercase());
    }
    Err(format!(
        "{s:?} is not a country (use a two-letter code like DE)"
    ))
}

/// German postcodes are five digits; `D-80331` is accepted and a four-digit
/// code had its leading zero eaten by a spreadsheet (`1067` → `01067`).
/// Other countries: as written.
pub fn normalize_postcode(s: &str, country: &str) -> Result<String, String> {
    if country != "DE" {
        return Ok(collapse_ws(s));
    }
    let t = s.trim();
    let t = t
        .strip_prefix("D-")
        .or_else(|| t.strip_prefix("DE-"))
        .or_else(|| t.strip_prefix("D "))
        .unwrap_or(t);
    let compact: String = t.chars().filter(|c| !c.is_whitespace()).collect();
    if compact.bytes().all(|b| b.is_ascii_digit()) && compact != "00000" {
        match compact.len() {
            5 => return Ok(compact),
            4 => return Ok(format!("0{compact}")),
            _ => {}
        }
    }
    Err(format!("{s:?} is not a German postcode (5 digits)"))
}

/// ISO 639-1, lower case: `de`, `DE`, `de-DE`, `Deutsch`, `English`.
pub fn normalize_language(s: &str) -> Result<String, String> {
    let t = s.trim();
    let head = t.split(['-', '_']).next().unwrap_or(t);
    if head.len() == 2 && head.bytes().all(|b| b.is_ascii_alphabetic()) {
        return Ok(head.to_ascii_lowercase());
    }
    let code = match fold_key(t).as_str() {
        "deutsch" | "german" | "ger" | "deu" => "de",
        "englisch" | "english" | "eng" => "en",
        "franzoesisch" | "french" | "fra" | "fre" => "fr",
        "italienisch" | "italian" | "ita" => "it",
        "spanisch" | "spanish" | "spa" => "es",
        "niederlaendisch" | "dutch" | "nld" => "nl",
        "polnisch" | "polish" | "pol" => "pl",
        "tuerkisch" | "turkish" | "tur" => "tr",
        "russisch" | "russian" | "rus" => "ru",
        "tschechisch" | "czech" | "ces" => "cs",
        "daenisch" | "danish" | "dan" => "da",
        _ => {
            return Err(format!(
                "{s:?} is not a language (use a two-letter code like de)"
            ))
        }
    };
    Ok(code.to_string())
}

/// VIN upper-cased with spaces removed; 17 characters of A–Z and 0–9
/// without I, O and Q.
pub fn normalize_vin(s: &str) -> Result<String, String> {
    let vin: String = s
        .chars()
        .filter(|c| !c.is_whitespace())
        .flat_map(char::to_uppercase)
        .collect();
    let ok = vin.len() == 17
        && vin.bytes().all(|b| {
            (b.is_ascii_uppercase() || b.is_ascii_digit()) && !matches!(b, b'I' | b'O' | b'Q')
        });
    if ok {
        return Ok(vin);
    }
    let n = vin.chars().count();
    if n != 17 {
        return Err(format!(
            "{s:?} is not a VIN: it has {n} characters, a VIN has 17"
        ));
    }
    // 17 characters: say which one is not allowed, and where.
    let (at, c) = vin
        .chars()
        .enumerate()
        .find(|(_, c)| {
            !(c.is_ascii_uppercase() || c.is_ascii_digit()) || matches!(c, 'I' | 'O' | 'Q')
        })
        .unwrap_or((0, '?'));
    let why = match c {
        'I' => "is never used in VINs (it reads like 1)",
        'O' | 'Q' => "is never used in VINs (it reads like 0)",
        _ => "is not a letter or digit",
    };
    Err(format!(
        "{s:?} is not a VIN: character {} ({c:?}) {why}",
        at + 1
    ))
}

fn days_in_month(y: i32, m: u32) -> u32 {
    (28..=31)
        .rev()
        .find(|&d| Date::from_ymd(y, m, d).is_some())
        .unwrap_or(28)
}

/// "February 1990" (the year matters: February of a leap year has 29).
fn month_name(y: i32, m: u32) -> String {
    const NAMES: [&str; 12] = [
        "January",
        "February",
        "March",
        "April",
        "May",
        "June",
        "July",
        "August",
        "September",
        "October",
        "November",
        "December",
    ];
    format!("{} {y}", NAMES[(m as usize).clamp(1, 12) - 1])
}

/// Channel names of consent files.
pub fn parse_channel(s: &str) -> Result<touchpoint_common::domain::Channel, String> {
    use touchpoint_common::domain::Channel;
    match fold_key(s).as_str() {
        "email" | "mail" | "emailwerbung" | "newsletter" => Ok(Channel::Email),
        "post" | "brief" | "letter" | "postal" | "postwerbung" | "briefpost" => Ok(Channel::Post),
        "phone" | "telefon" | "tel" | "telephone" | "anruf" | "telefonwerbung" => {
            Ok(Channel::Phone)
        }
        _ => Err(format!("{s:?} is not a channel (email, post or phone)")),
    }
}

/// The kind of a response in a response file, in German or English:
/// an appointment booked (`Termin`, `Termin vereinbart`, `appointment`) or
/// an offer accepted (`Angebot angenommen`, `offer accepted`).
pub fn parse_response_kind(s: &str) -> Result<touchpoint_common::report::ResponseKind, String> {
    use touchpoint_common::report::ResponseKind;
    match fold_key(s).as_str() {
        "termin" | "terminvereinbart" | "termingebucht" | "terminvereinbarung" | "werkstatttermin"
        | "servicetermin" | "appointment" | "appointmentbooked" | "appointmentmade" | "booked" => {
            Ok(ResponseKind::Appointment)
        }
        "angebotangenommen" | "angebotakzeptiert" | "angenommen" | "auftragerteilt"
        | "offeraccepted" | "offeraccept" | "accepted" => Ok(ResponseKind::OfferAccepted),
        _ => Err(format!(
            "{s:?} is not a response kind (Termin / appointment, or Angebot angenommen / offer accepted)"
        )),
    }
}

/// The channel column of a send history file: a channel, or `None` for a
/// control-group member (`control`, `Kontrollgruppe`).
pub fn parse_sent_channel(s: &str) -> Result<Option<touchpoint_common::domain::Channel>, String> {
    match fold_key(s).as_str() {
        "control" | "controlgroup" | "kontrolle" | "kontrollgruppe" | "holdout" => Ok(None),
        _ => parse_channel(s)
            .map(Some)
            .map_err(|_| format!("{s:?} is not a channel (email, post, phone, or control)")),
    }
}

/// The largest order value accepted, in cents (10 million euro): beyond
/// it the cell is a typo, an order number or a sum of many orders.
pub const MAX_AMOUNT_CENTS: i64 = 1_000_000_000;

/// Cents from an order or invoice amount as exports write it: `412,00`,
/// `1.234,56 €`, `1,234.56`, `EUR 412`, `412.5`. With both marks the last
/// one is the decimal mark; a lone `,` is the decimal mark (German exports);
/// a lone `.` followed by exactly three digits groups thousands (`1.234`),
/// otherwise it is the decimal mark. At most two decimals; a negative
/// amount (a credit note) is no response value and is refused.
pub fn parse_amount(s: &str) -> Result<i64, String> {
    let bad = || format!("{s:?} is not an amount (write 412,00 or 412.00)");
    let mut t = s.trim();
    for unit in ["€", "EUR", "Euro", "eur"] {
        if let Some(rest) = t.strip_suffix(unit) {
            t = rest.trim_end();
        }
        if let Some(rest) = t.strip_prefix(unit) {
            t = rest.trim_start();
        }
    }
    if t.starts_with('-') || t.ends_with('-') {
        return Err(format!(
            "{s:?} is negative (a credit note is no order value)"
        ));
    }
    let t: String = t
        .chars()
        .filter(|c| !matches!(c, ' ' | '\u{a0}' | '\''))
        .collect();
    if t.is_empty()
        || !t
            .bytes()
            .all(|b| b.is_ascii_digit() || b == b'.' || b == b',')
    {
        return Err(bad());
    }
    let decimal = match (t.rfind(','), t.rfind('.')) {
        (Some(c), Some(d)) => Some(c.max(d)),
        // `1,234,567`: English grouping or a typo; a German export never
        // writes it.
        (Some(_), None) if t.matches(',').count() > 1 => return Err(bad()),
        (Some(c), None) => Some(c),
        (None, Some(d)) => {
            let thousands = t.len() - d - 1 == 3;
            (!thousands && t.matches('.').count() == 1).then_some(d)
        }
        (None, None) => None,
    };
    let (whole, frac) = match decimal {
        Some(at) => (&t[..at], &t[at + 1..]),
        None => (t.as_str(), ""),
    };
    if frac.len() > 2 || frac.contains(['.', ',']) {
        return Err(bad());
    }
    let whole: String = whole.chars().filter(char::is_ascii_digit).collect();
    if whole.is_empty() && frac.is_empty() {
        return Err(bad());
    }
    let euros: i64 = if whole.is_empty() {
        0
    } else {
        whole.parse().map_err(|_| bad())?
    };
    let cents: i64 = match frac.len() {
        0 => 0,
        1 => frac.parse::<i64>().map_err(|_| bad())? * 10,
        _ => frac.parse().map_err(|_| bad())?,
    };
    let total = euros
        .checked_mul(100)
        .and_then(|e| e.checked_add(cents))
        .filter(|c| *c <= MAX_AMOUNT_CENTS)
        .ok_or_else(|| format!("{s:?} is more than 10 000 000 euro"))?;
    Ok(total)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn amounts_in_german_and_english_forms() {
        for (text, cents) in [
            ("412,00", 41_200),
            ("412.00", 41_200),
            ("1.234,56 €", 123_456),
            ("1,234.56", 123_456),
            ("EUR 412", 41_200),
            ("412.5", 41_250),
            ("1.234", 123_400),
            ("0,99", 99),
            ("12 345,00", 1_234_500),
        ] {
            assert_eq!(parse_amount(text), Ok(cents), "{text}");
        }
        for text in [
            "-12,00",
            "12,345,67",
            "abc",
            "1,234",
            "12,3456",
            "99999999999",
        ] {
            let got = parse_amount(text);
            // "1,234" is one euro twenty-three point four: three decimals.
            assert!(got.is_err(), "{text}: {got:?}");
        }
    }

    fn d(y: i32, m: u32, day: u32) -> Date {
        Date::from_ymd(y, m, day).expect("valid test date")
    }

    const TODAY: fn() -> Date = || d(2025, 6, 15);

    fn date(s: &str) -> Result<Option<Date>, String> {
        parse_date(s, DateOrder::Dmy, Era::Near, TODAY())
    }

    #[test]
    fn dates_in_german_iso_and_short_forms() {
        assert_eq!(date("31.12.2024"), Ok(Some(d(2024, 12, 31))));
        assert_eq!(date("1.2.2024"), Ok(Some(d(2024, 2, 1))));
        assert_eq!(date("2024-12-31"), Ok(Some(d(2024, 12, 31))));
        assert_eq!(date("2024/12/31"), Ok(Some(d(2024, 12, 31))));
        assert_eq!(date("20241231"), Ok(Some(d(2024, 12, 31))));
        assert_eq!(date("31.12.24"), Ok(Some(d(2024, 12, 31))));
        assert_eq!(date("31/12/2024"), Ok(Some(d(2024, 12, 31))));
        assert_eq!(date("31.12.2024 00:00"), Ok(Some(d(2024, 12, 31))));
        assert_eq!(date("2024-12-31T10:00:00"), Ok(Some(d(2024, 12, 31))));
        assert_eq!(
            date("2024-12-31T10:00:00.250+01:00"),
            Ok(Some(d(2024, 12, 31)))
        );
        assert_eq!(date("03/2026"), Ok(Some(d(2026, 3, 1))));
        assert_eq!(date("3.2026"), Ok(Some(d(2026, 3, 1))));
        assert!(date("2026-03").is_err());
        assert!(date("13/2026").is_err());
        assert_eq!(date("00.00.0000"), Ok(None));
        assert_eq!(date("0000-00-00"), Ok(None));
    }

    #[test]
    fn bad_dates_say_what_was_expected() {
        assert_eq!(
            date("31.13.2024"),
            Err("\"31.13.2024\" does not exist: there is no month 13".into())
        );
        // In the expected format, but no such day (2024 is a leap year).
        assert_eq!(
            date("30.02.2024"),
            Err("\"30.02.2024\" does not exist: February 2024 has 29 days".into())
        );
        assert_eq!(
            date("31.02.1990"),
            Err("\"31.02.1990\" does not exist: February 1990 has 28 days".into())
        );
        assert_eq!(
            date("31.04.90"),
            Err("\"31.04.90\" does not exist: April 1990 has 30 days".into())
        );
        assert_eq!(
            date("1.2.3.4"),
            Err("\"1.2.3.4\" is not a date (expected DD.MM.YYYY or YYYY-MM-DD)".into())
        );
        assert_eq!(date("gestern").map_err(|_| ()), Err(()));
        assert_eq!(date("31.12.2024 25:00").map_err(|_| ()), Err(()));
        assert_eq!(
            date("1.1.1850"),
            Err("\"1.1.1850\" is not a plausible date (year 1850)".into())
        );
        assert_eq!(date("31.12.202").map_err(|_| ()), Err(()));
    }

    #[test]
    fn two_digit_years_pivot_by_era() {
        // Near: up to 20 years ahead.
        assert_eq!(date("01.03.45"), Ok(Some(d(2045, 3, 1))));
        assert_eq!(date("01.03.46"), Ok(Some(d(1946, 3, 1))));
        assert_eq!(date("01.03.99"), Ok(Some(d(1999, 3, 1))));
        // Past: a birth date is never in the future.
        let birth = |s| parse_date(s, DateOrder::Dmy, Era::Past, TODAY());
        assert_eq!(birth("17.04.85"), Ok(Some(d(1985, 4, 17))));
        assert_eq!(birth("17.04.25"), Ok(Some(d(2025, 4, 17))));
        assert_eq!(birth("17.07.25"), Ok(Some(d(1925, 7, 17))));
        assert_eq!(birth("17.04.26"), Ok(Some(d(1926, 4, 17))));
        assert_eq!(
            birth("01.01.2030"),
            Err("\"01.01.2030\" is in the future".into())
        );
    }

    #[test]
    fn date_order_is_honoured() {
        let ymd = |s| parse_date(s, DateOrder::Ymd, Era::Near, TODAY());
        let mdy = |s| parse_date(s, DateOrder::Mdy, Era::Near, TODAY());
        assert_eq!(ymd("24.12.31"), Ok(Some(d(2024, 12, 31))));
        assert_eq!(ymd("2024-12-31"), Ok(Some(d(2024, 12, 31))));
        assert_eq!(mdy("12/31/2024"), Ok(Some(d(2024, 12, 31))));
        assert_eq!(mdy("2024-12-31"), Ok(Some(d(2024, 12, 31))));
        assert!(date("12/31/2024").is_err());
        assert_eq!(DateOrder::from_option(" YMD "), Some(DateOrder::Ymd));
        assert_eq!(DateOrder::from_option("julian"), None);
    }

    #[test]
    fn timestamps_keep_the_time_in_utc() {
        let ts = |s| parse_timestamp(s, DateOrder::Dmy, TODAY()).map(|t| t.map(|t| t.to_string()));
        assert_eq!(ts("15.03.2024"), Ok(Some("2024-03-15 00:00:00 UTC".into())));
        assert_eq!(
            ts("15.03.2024 14:30"),
            Ok(Some("2024-03-15 14:30:00 UTC".into()))
        );
        assert_eq!(
            ts("2024-03-15T14:30:05Z"),
            Ok(Some("2024-03-15 14:30:05 UTC".into()))
        );
        assert_eq!(
            ts("2024-03-15T14:30:05+01:00"),
            Ok(Some("2024-03-15 13:30:05 UTC".into()))
        );
        assert_eq!(
            ts("2024-03-15 14:30:05.123"),
            Ok(Some("2024-03-15 14:30:05 UTC".into()))
        );
    }

    #[test]
    fn mileage_in_every_notation() {
        assert_eq!(parse_km("45300"), Ok(45300));
        assert_eq!(parse_km("45.300"), Ok(45300));
        assert_eq!(parse_km("45.300,5"), Ok(45300));
        assert_eq!(parse_km("45,300.5"), Ok(45300));
        assert_eq!(parse_km("45 300 km"), Ok(45300));
        assert_eq!(parse_km("45\u{a0}300"), Ok(45300));
        assert_eq!(parse_km("45300km"), Ok(45300));
        assert_eq!(parse_km("1.234.567"), Ok(1_234_567));
        assert_eq!(parse_km("1,234,567"), Ok(1_234_567));
        assert_eq!(parse_km("45,3"), Ok(45));
        assert_eq!(parse_km("4530,75"), Ok(4530));
        assert_eq!(parse_km("0"), Ok(0));
        assert_eq!(parse_km("2.000.000"), Ok(2_000_000));
    }

    #[test]
    fn bad_mileage_is_rejected() {
        assert_eq!(parse_km("-5"), Err("\"-5\" is negative".into()));
        assert_eq!(
            parse_km("-45.300 km"),
            Err("\"-45.300 km\" is negative".into())
        );
        assert_eq!(
            parse_km("2.000.001"),
            Err("\"2.000.001\" is not a plausible mileage (more than 2,000,000 km)".into())
        );
        assert_eq!(
            parse_km("99999999999999999999999"),
            Err(
                "\"99999999999999999999999\" is not a plausible mileage (more than 2,000,000 km)"
                    .into()
            )
        );
        assert_eq!(
            parse_km("ca. 45000"),
            Err("\"ca. 45000\" is not a mileage".into())
        );
        assert!(parse_km("45.30.0").is_err());
        assert_eq!(parse_km("4.5300"), Ok(4));
        assert!(parse_km("45.300.5,3,1").is_err());
        assert!(parse_km("km").is_err());
        assert!(parse_km(",5").is_err());
    }

    #[test]
    fn phone_numbers_become_international() {
        assert_eq!(
            normalize_phone("+49 89 1234-567", "DE"),
            Ok("+49891234567".into())
        );
        assert_eq!(
            normalize_phone("089/1234567", "DE"),
            Ok("+49891234567".into())
        );
        assert_eq!(
            normalize_phone("0049 (0)89 1234567", "DE"),
            Ok("+49891234567".into())
        );
        assert_eq!(
            normalize_phone("+49 (0)89 1234567", "DE"),
            Ok("+49891234567".into())
        );
        assert_eq!(
            normalize_phone("+49 089 1234567", "DE"),
            Ok("+49891234567".into())
        );
        assert_eq!(
            normalize_phone("0171 1234567", "DE"),
            Ok("+491711234567".into())
        );
        assert_eq!(
            normalize_phone("(0662) 87 23 11", "AT"),
            Ok("+43662872311".into())
        );
        assert_eq!(
            normalize_phone("+39 06 1234567", "DE"),
            Ok("+39061234567".into())
        );
        assert_eq!(
            normalize_phone("1234567", "DE"),
            Err("\"1234567\" has no area code".into())
        );
        assert_eq!(
            normalize_phone("0123 45", "DE"),
            Err("\"0123 45\" is not a phone number".into())
        );
        assert_eq!(
            normalize_phone("089 1234567 privat", "DE"),
            Err("\"089 1234567 privat\" is not a phone number".into())
        );
        assert_eq!(
            normalize_phone("089 1234567", "XX"),
            Err("\"089 1234567\" has no country code".into())
        );
    }

    #[test]
    fn emails_are_checked_and_domains_lowercased() {
        assert_eq!(
            normalize_email("Hans.Mueller@Example.DE"),
            Ok("Hans.Mueller@example.de".into())
        );
        assert_eq!(
            normalize_email("info+werkstatt@autohaus-müller.de"),
            Ok("info+werkstatt@autohaus-müller.de".into())
        );
        assert_eq!(normalize_email("mailto:a@b.de"), Ok("a@b.de".into()));
        for bad in [
            "max@@example",
            "max@example",
            "@example.de",
            "max@",
            "max example@x.de",
            "max@x..de",
            "max@-x.de",
            "max@x.d",
            "max@x.de;b@y.de",
            ".max@x.de",
            "max",
            "max@x.1",
        ] {
            assert_eq!(
                normalize_email(bad),
                Err(format!("{bad:?} is not an address")),
                "{bad}"
            );
        }
    }

    #[test]
    fn house_numbers_are_normalised() {
        assert_eq!(normalize_house_no("12 a"), "12A");
        assert_eq!(normalize_house_no("12a"), "12A");
        assert_eq!(normalize_house_no("12-14"), "12-14");
        assert_eq!(normalize_house_no("12 - 14"), "12-14");
        assert_eq!(normalize_house_no("3a-c"), "3A-C");
        assert_eq!(normalize_house_no("7/1"), "7/1");
        assert_eq!(normalize_house_no("Hinterhaus  links"), "Hinterhaus links");
    }

    #[test]
    fn streets_are_split_from_house_numbers() {
        let s = |x: &str| split_street(x);
        assert_eq!(s("Hauptstr. 12a"), ("Hauptstr.".into(), Some("12A".into())));
        assert_eq!(
            s("Hauptstr. 12 a"),
            ("Hauptstr.".into(), Some("12A".into()))
        );
        assert_eq!(s("Am Markt 3-5"), ("Am Markt".into(), Some("3-5".into())));
        assert_eq!(
            s("Straße des 17. Juni 5"),
            ("Straße des 17. Juni".into(), Some("5".into()))
        );
        assert_eq!(s("Hauptstr.12"), ("Hauptstr.".into(), Some("12".into())));
        assert_eq!(s("Lindenallee"), ("Lindenallee".into(), None));
        assert_eq!(s("  Alter   Weg  "), ("Alter Weg".into(), None));
        assert_eq!(s("B 27"), ("B".into(), Some("27".into())));
    }

    #[test]
    fn full_names_are_split() {
        let s = |x: &str| split_full_name(x);
        assert_eq!(s("Müller, Hans"), ("Hans".into(), "Müller".into()));
        assert_eq!(s("Hans Müller"), ("Hans".into(), "Müller".into()));
        assert_eq!(
            s("Hans  Peter   Müller"),
            ("Hans Peter".into(), "Müller".into())
        );
        assert_eq!(
            s("Anna von der Heide"),
            ("Anna".into(), "von der Heide".into())
        );
        assert_eq!(s("Müller"), ("".into(), "Müller".into()));
        assert_eq!(s("von Trapp, Maria"), ("Maria".into(), "von Trapp".into()));
        assert!(looks_like_company("Autohaus Schmidt GmbH & Co. KG"));
        assert!(looks_like_company("Meier e.K."));
        assert!(!looks_like_company("Hans Müller"));
    }

    #[test]
    fn whitespace_is_collapsed() {
        assert_eq!(collapse_ws("  Hans  Peter\t Müller "), "Hans Peter Müller");
        assert_eq!(collapse_ws("Weiß"), "Weiß");
    }

    #[test]
    fn salutations_and_yes_no() {
        assert_eq!(parse_salutation("Herr"), Salutation::Mr);
        assert_eq!(parse_salutation("Herrn Dr."), Salutation::Mr);
        assert_eq!(parse_salutation("Fr."), Salutation::Ms);
        assert_eq!(parse_salutation("Mrs"), Salutation::Ms);
        assert_eq!(parse_salutation("Divers"), Salutation::Mx);
        assert_eq!(parse_salutation("Firma"), Salutation::Company);
        assert_eq!(parse_salutation("Company"), Salutation::Company);
        assert_eq!(parse_salutation("Herr und Frau"), Salutation::Unknown);
        assert_eq!(parse_salutation("Dr."), Salutation::Unknown);
        for yes in ["ja", "JA", "x", "1", "yes", "true", "Y"] {
            assert_eq!(parse_yes_no(yes), Ok(true), "{yes}");
        }
        for no in ["nein", "0", "no", "false", "N", "widerrufen"] {
            assert_eq!(parse_yes_no(no), Ok(false), "{no}");
        }
        assert_eq!(
            parse_yes_no("vielleicht"),
            Err("\"vielleicht\" is not yes or no".into())
        );
    }

    #[test]
    fn countries_postcodes_languages() {
        for de in ["D", "DE", "Deutschland", "germany", "BRD"] {
            assert_eq!(normalize_country(de), Ok("DE".into()), "{de}");
        }
        assert_eq!(normalize_country("Österreich"), Ok("AT".into()));
        assert_eq!(normalize_country("nl"), Ok("NL".into()));
        assert_eq!(
            normalize_country("Narnia"),
            Err("\"Narnia\" is not a country (use a two-letter code like DE)".into())
        );
        assert_eq!(normalize_postcode("80331", "DE"), Ok("80331".into()));
        assert_eq!(normalize_postcode("D-80331", "DE"), Ok("80331".into()));
        assert_eq!(normalize_postcode("1067", "DE"), Ok("01067".into()));
        assert_eq!(
            normalize_postcode("803311", "DE"),
            Err("\"803311\" is not a German postcode (5 digits)".into())
        );
        assert_eq!(
            normalize_postcode("8O331", "DE"),
            Err("\"8O331\" is not a German postcode (5 digits)".into())
        );
        assert_eq!(normalize_postcode("1010", "AT"), Ok("1010".into()));
        assert_eq!(normalize_postcode("SW1A  1AA", "GB"), Ok("SW1A 1AA".into()));
        assert_eq!(normalize_language("DE"), Ok("de".into()));
        assert_eq!(normalize_language("de-AT"), Ok("de".into()));
        assert_eq!(normalize_language("Englisch"), Ok("en".into()));
        assert!(normalize_language("Klingonisch").is_err());
    }

    #[test]
    fn vins_and_channels() {
        assert_eq!(
            normalize_vin("wvw zzz 1kz 6w 000 001"),
            Ok("WVWZZZ1KZ6W000001".into())
        );
        assert_eq!(
            normalize_vin("WVWZZZ1KZ6W00001"),
            Err("\"WVWZZZ1KZ6W00001\" is not a VIN: it has 16 characters, a VIN has 17".into())
        );
        assert_eq!(
            normalize_vin("WVWZZZ1KZ6W00000O"),
            Err("\"WVWZZZ1KZ6W00000O\" is not a VIN: character 17 ('O') is never used in VINs (it reads like 0)".into())
        );
        use touchpoint_common::domain::Channel;
        assert_eq!(parse_channel("E-Mail"), Ok(Channel::Email));
        assert_eq!(parse_channel("Brief"), Ok(Channel::Post));
        assert_eq!(parse_channel("Tel."), Ok(Channel::Phone));
        assert!(parse_channel("Fax").is_err());
    }

    #[test]
    fn keys_fold_case_umlauts_and_punctuation() {
        assert_eq!(fold_key("Kunden-Nr."), "kundennr");
        assert_eq!(fold_key(" Nächste HU "), "naechstehu");
        assert_eq!(fold_key("Straße"), "strasse");
        assert_eq!(fold_key("customer_id"), "customerid");
        assert_eq!(fold_key("E-MAIL"), "email");
    }
}
