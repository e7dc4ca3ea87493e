//! Brand material: `templates/<name>.toml`, four Jinja templates per file
//! (`subject`, `text` and `html` of the email, `letter` for print).
//!
//! Checked when the policy set is validated, so a template that would fail
//! at send time is refused with the rest of the set: syntax (minijinja's own
//! parser) and the variables it uses (a typo like `custmer.last_name` would
//! otherwise render as an error for every message). Errors point at the line
//! in the file: the line the part's text starts on plus the line inside it.

use minijinja::{AutoEscape, Environment};
use serde::Deserialize;
use toml::Spanned;

use crate::toml_file::{parse_toml, ConfigError};

/// One template file, parsed and syntax-checked.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Template {
    /// The file's stem: what a service's `template` names.
    pub name: String,
    pub subject: String,
    pub text: String,
    pub html: String,
    pub letter: String,
    /// FNV-1a of the file's text: which version of the material a message
    /// was rendered from. Stable across runs and platforms.
    pub version: u64,
}

/// A part of a template.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Part {
    Subject,
    Text,
    Html,
    Letter,
}

impl Part {
    pub const ALL: [Part; 4] = [Part::Subject, Part::Text, Part::Html, Part::Letter];

    /// The key in the file.
    pub fn as_str(self) -> &'static str {
        match self {
            Part::Subject => "subject",
            Part::Text => "text",
            Part::Html => "html",
            Part::Letter => "letter",
        }
    }

    fn from_suffix(name: &str) -> Option<Part> {
        let (_, part) = name.rsplit_once('/')?;
        Part::ALL.into_iter().find(|p| p.as_str() == part)
    }
}

impl std::fmt::Display for Part {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What a template may use, as the renderer provides it. `slots.*` is open
/// (the dealer's `[slots]`), `occasions` is a list whose items the loop
/// names itself.
const OBJECTS: [(&str, &[&str]); 3] = [
    ("brand", &["name"]),
    ("customer", &["salutation_line", "first_name", "last_name"]),
    (
        "dealer",
        &["name", "street", "postcode", "city", "phone", "email"],
    ),
];
const VALUES: [&str; 4] = ["occasions", "unsubscribe_url", "today", "slots"];
/// minijinja's global functions.
const GLOBALS: [&str; 4] = ["range", "dict", "namespace", "debug"];

/// The environment every template is compiled in, for validation and for
/// rendering alike: templates are named `<template>/<part>`, and only the
/// HTML part escapes what it inserts.
pub fn environment() -> Environment<'static> {
    let mut env = Environment::new();
    env.set_auto_escape_callback(|name| match Part::from_suffix(name) {
        Some(Part::Html) => AutoEscape::Html,
        _ => AutoEscape::None,
    });
    env
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTemplate {
    subject: Spanned<String>,
    text: Spanned<String>,
    html: Spanned<String>,
    letter: Spanned<String>,
}

impl Template {
    /// Parses and checks the template `name` from the text of its file;
    /// `file` names the file in errors. Every broken part is reported.
    pub fn parse(name: &str, file: &str, text: &str) -> Result<Template, Vec<ConfigError>> {
        let raw = parse_toml::<RawTemplate>(file, text).map_err(|e| vec![e])?;
        let env = environment();
        let mut errors = Vec::new();
        for (part, value) in [
            (Part::Subject, &raw.subject),
            (Part::Text, &raw.text),
            (Part::Html, &raw.html),
            (Part::Letter, &raw.letter),
        ] {
            let source = value.get_ref();
            let at = |line_inside: Option<usize>| file_line(text, value, line_inside);
            let error = |line, message| ConfigError {
                file: file.to_string(),
                line: Some(line),
                key: part.as_str().to_string(),
                message,
            };
            let full_name = format!("{name}/{part}");
            let compiled = match env.template_from_named_str(&full_name, source) {
                Ok(t) => t,
                Err(e) => {
                    let message = match e.detail() {
                        Some(d) => format!("{}: {d}", e.kind()),
                        None => e.kind().to_string(),
                    };
                    errors.push(error(at(e.line()), message));
                    continue;
                }
            };
            let mut unknown: Vec<String> = compiled
                .undeclared_variables(true)
                .into_iter()
                .filter(|v| !known_variable(v))
                .collect();
            unknown.sort();
            for v in unknown {
                let line = source
                    .lines()
                    .position(|l| l.contains(v.as_str()))
                    .map(|i| i + 1);
                errors.push(error(
                    at(line),
                    format!(
                        "unknown variable `{v}` (a template has: {})",
                        known_variables().join(", ")
                    ),
                ));
            }
        }
        if !errors.is_empty() {
            return Err(errors);
        }
        Ok(Template {
            name: name.to_string(),
            subject: raw.subject.into_inner(),
            text: raw.text.into_inner(),
            html: raw.html.into_inner(),
            letter: raw.letter.into_inner(),
            version: fnv1a(text.as_bytes()),
        })
    }

    pub fn part(&self, part: Part) -> &str {
        match part {
            Part::Subject => &self.subject,
            Part::Text => &self.text,
            Part::Html => &self.html,
            Part::Letter => &self.letter,
        }
    }
}

/// `v` as `undeclared_variables(true)` gives it: `customer.last_name`,
/// `occasions`, `slots.logo`.
fn known_variable(v: &str) -> bool {
    let (root, field) = match v.split_once('.') {
        Some((r, f)) => (r, Some(f)),
        None => (v, None),
    };
    if VALUES.contains(&root) || GLOBALS.contains(&root) {
        return field.is_none() || root == "slots";
    }
    OBJECTS
        .iter()
        .any(|(o, fields)| *o == root && field.is_none_or(|f| fields.contains(&f)))
}

fn known_variables() -> Vec<String> {
    let mut all: Vec<String> = OBJECTS
        .iter()
        .flat_map(|(o, fields)| fields.iter().map(move |f| format!("{o}.{f}")))
        .collect();
    all.extend(VALUES.iter().map(|v| match *v {
        "slots" => "slots.*".to_string(),
        v => v.to_string(),
    }));
    all
}

/// The line in the file of line `line_inside` (1-based) of a string value.
/// A multi-line string starts after its delimiter, and after the newline
/// that directly follows it (TOML trims that one); a one-line string's
/// lines are `\n` escapes, all on the key's line.
fn file_line(text: &str, value: &Spanned<String>, line_inside: Option<usize>) -> u32 {
    let start = value.span().start.min(text.len());
    let rest = &text[start..];
    let (multi, mut content) = if rest.starts_with("'''") || rest.starts_with("\"\"\"") {
        (true, start + 3)
    } else {
        (false, start)
    };
    if multi {
        let after = &text[content.min(text.len())..];
        if after.starts_with('\n') {
            content += 1;
        } else if after.starts_with("\r\n") {
            content += 2;
        }
    }
    let first = text.as_bytes()[..content.min(text.len())]
        .iter()
        .filter(|&&b| b == b'\n')
        .count()
        + 1;
    let inside = if multi {
        line_inside.unwrap_or(1).max(1) - 1
    } else {
        0
    };
    u32::try_from(first + inside).unwrap_or(u32::MAX)
}

/// FNV-1a, 64 bit.
fn fnv1a(bytes: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in bytes {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests;
