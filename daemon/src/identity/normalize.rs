//! Match keys: the forms of names, addresses, emails and phone numbers under
//! which two spellings of the same thing compare equal.
//!
//! German exports spell one name several ways ("Müller", "Mueller",
//! "MUELLER", a decomposed "Mu\u{308}ller" from a Mac), so umlauts are
//! transliterated the German way first (ä → ae) and only then are the
//! remaining diacritics dropped (é → e). Transliterating after stripping
//! would make "Müller" and "Muller" equal, which they are not.

use unicode_normalization::char::is_combining_mark;
use unicode_normalization::UnicodeNormalization;

const COMBINING_DIAERESIS: char = '\u{308}';

/// Lower case, German transliteration, no diacritics; every run of
/// whitespace and punctuation becomes one space; apostrophes vanish
/// ("O'Brien" = "OBrien").
pub fn fold(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 4);
    let mut gap = false;
    let push = |out: &mut String, gap: &mut bool, c: char| {
        if *gap && !out.is_empty() {
            out.push(' ');
        }
        *gap = false;
        out.push(c);
    };
    for c in s.chars() {
        match c {
            'a'..='z' | '0'..='9' => push(&mut out, &mut gap, c),
            'A'..='Z' => push(&mut out, &mut gap, c.to_ascii_lowercase()),
            '\'' | '`' | '´' | '\u{2019}' | '\u{2018}' => {}
            'ä' | 'Ä' => {
                push(&mut out, &mut gap, 'a');
                out.push('e');
            }
            'ö' | 'Ö' => {
                push(&mut out, &mut gap, 'o');
                out.push('e');
            }
            'ü' | 'Ü' => {
                push(&mut out, &mut gap, 'u');
                out.push('e');
            }
            'ß' | 'ẞ' => {
                push(&mut out, &mut gap, 's');
                out.push('s');
            }
            // A decomposed umlaut: the base letter is already out.
            COMBINING_DIAERESIS if !gap && matches!(out.chars().last(), Some('a' | 'o' | 'u')) => {
                out.push('e')
            }
            c if c.is_ascii() => gap = true,
            c => {
                for d in std::iter::once(c).nfkd() {
                    if is_combining_mark(d) {
                        continue;
                    }
                    for l in d.to_lowercase() {
                        if l.is_alphanumeric() {
                            push(&mut out, &mut gap, l);
                        } else {
                            gap = true;
                        }
                    }
                }
            }
        }
    }
    out
}

/// Words that are not part of who someone is: a salutation or an academic
/// title typed into a name field ("Dr. Hans", "Frau Petra").
const NAME_NOISE: &[&str] = &["herr", "frau", "dr", "prof"];

/// A person's first or last name. Salutations and titles are dropped
/// unless they are all there is.
pub fn name(s: &str) -> String {
    let folded = fold(s);
    if !folded.split(' ').any(|t| NAME_NOISE.contains(&t)) {
        return folded;
    }
    let kept: Vec<&str> = folded
        .split(' ')
        .filter(|t| !NAME_NOISE.contains(t))
        .collect();
    if kept.is_empty() {
        folded
    } else {
        kept.join(" ")
    }
}

/// Street key: "Hauptstraße", "Hauptstrasse", "Hauptstr.", "Haupt-Str" and
/// "Haupt Straße" are all "hauptstr"; likewise "Marktplatz" / "Marktpl.".
/// Spaces are removed because exports disagree on where they go.
pub fn street(s: &str) -> String {
    let folded = fold(s);
    let mut out = String::with_capacity(folded.len());
    for token in folded.split(' ') {
        if let Some(stem) = token.strip_suffix("strasse") {
            out.push_str(stem);
            out.push_str("str");
        } else if let Some(stem) = token.strip_suffix("platz") {
            out.push_str(stem);
            out.push_str("pl");
        } else {
            out.push_str(token);
        }
    }
    out
}

/// House number key: "12 a", "12a", "12A" → "12a"; ranges and fractions
/// keep their separator ("12-14", "12 - 14" → "12-14").
pub fn house_no(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '-' | '/' if !out.is_empty() && !out.ends_with(['-', '/']) => out.push(c),
            c if c.is_ascii_alphanumeric() => out.push(c.to_ascii_lowercase()),
            c if c.is_alphanumeric() => out.push_str(&fold(c.encode_utf8(&mut [0; 4]))),
            _ => {}
        }
    }
    out.trim_end_matches(['-', '/']).to_string()
}

/// Email key: trimmed and lower-cased. Dots and plus-tags stay: only Gmail
/// ignores them, and for other providers they tell different mailboxes apart.
pub fn email(s: &str) -> Option<String> {
    let e = s.trim().to_lowercase();
    let (local, domain) = e.split_once('@')?;
    if local.is_empty() || domain.is_empty() || e.chars().any(char::is_whitespace) {
        return None;
    }
    Some(e)
}

/// Phone key in international form without the plus: "+49 89 123",
/// "0049 89 123", "089-123", "(089) 123" and "+49 (0)89 123" are all
/// "4989123". A number without trunk or country prefix has no area code
/// and identifies nobody, so it gives no key; nor do placeholders
/// ("0000000") and fragments under seven digits.
pub fn phone(s: &str) -> Option<String> {
    let s = s.trim();
    let plus = s.starts_with('+');
    // "+49 (0)89": the bracketed trunk zero is not dialled internationally.
    let cleaned = s.replace("(0)", "");
    let digits: String = cleaned.chars().filter(char::is_ascii_digit).collect();
    let intl = if plus {
        digits
    } else if let Some(rest) = digits.strip_prefix("00") {
        rest.to_string()
    } else if let Some(rest) = digits.strip_prefix('0') {
        format!("49{rest}")
    } else {
        return None;
    };
    let intl = match intl.strip_prefix("490") {
        Some(rest) => format!("49{rest}"),
        None => intl,
    };
    let national = intl.strip_prefix("49").unwrap_or(&intl);
    let placeholder = national.chars().all(|c| national.starts_with(c));
    if intl.len() < 7 || placeholder {
        return None;
    }
    Some(intl)
}

/// Legal forms, as the words `fold` leaves of them ("GmbH & Co. KG" →
/// "gmbh co kg", "e.K." → "e k", "UG (haftungsbeschränkt)" → "ug
/// haftungsbeschraenkt").
const LEGAL_WORDS: &[&str] = &[
    "gmbh",
    "mbh",
    "ag",
    "kg",
    "kgaa",
    "ohg",
    "gbr",
    "ug",
    "haftungsbeschraenkt",
    "se",
    "co",
    "und",
    "ek",
    "ev",
    "kfm",
    "kfr",
];

/// Company key: the name without its legal form, so "Autohaus Müller GmbH"
/// and "Autohaus Mueller GmbH & Co. KG" compare equal. Only trailing legal
/// words are dropped, and never the whole name.
pub fn company(s: &str) -> String {
    let folded = fold(s);
    let mut tokens: Vec<&str> = folded.split(' ').filter(|t| !t.is_empty()).collect();
    while tokens.len() > 1 {
        let n = tokens.len();
        let last = tokens[n - 1];
        if LEGAL_WORDS.contains(&last) {
            tokens.pop();
        } else if n > 2 && tokens[n - 2] == "e" && matches!(last, "k" | "v" | "kfm" | "kfr") {
            tokens.truncate(n - 2);
        } else {
            break;
        }
    }
    tokens.join(" ")
}

/// Postcode key: no spaces, lower case ("D-80331" stays distinct from
/// "80331" only by its prefix, which is stripped).
pub fn postcode(s: &str) -> String {
    let key: String = fold(s).chars().filter(|c| *c != ' ').collect();
    match key.strip_prefix('d') {
        Some(rest) if rest.len() == 5 && rest.chars().all(|c| c.is_ascii_digit()) => {
            rest.to_string()
        }
        _ => key,
    }
}
