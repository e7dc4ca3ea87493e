//! Bounds on the text a client sends, checked before a request is handled,
//! so that nothing that comes over the socket is stored, logged or shown
//! unbounded, and no control character (a terminal escape, a forged line
//! break) reaches an audit line or a report someone else reads.

use std::fmt;

/// Names: file names, template and service names, customer numbers.
pub const NAME_CHARS: usize = 255;
/// Comments of proposals and decisions.
pub const COMMENT_CHARS: usize = 2_000;
/// Filter and search texts.
pub const FILTER_CHARS: usize = 1_000;
/// The client's self-description in its hello.
pub const CLIENT_CHARS: usize = 64;
/// Messages one action names.
pub const ACTION_IDS: usize = 10_000;
/// A proposed template or brand file.
pub const MATERIAL_BYTES: usize = 1 << 20;

/// What is wrong with one field of a request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LimitError {
    pub field: &'static str,
    pub problem: String,
}

impl fmt::Display for LimitError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.field, self.problem)
    }
}

impl std::error::Error for LimitError {}

/// One line of text of at most `max` characters, without control
/// characters.
pub fn line(field: &'static str, text: &str, max: usize) -> Result<(), LimitError> {
    chars(field, text, max)?;
    match text.chars().position(char::is_control) {
        Some(at) => Err(LimitError {
            field,
            problem: format!(
                "contains a control character ({}) at character {}",
                text.chars()
                    .nth(at)
                    .map(|c| format!("U+{:04X}", c as u32))
                    .unwrap_or_default(),
                at + 1
            ),
        }),
        None => Ok(()),
    }
}

/// Text of at most `max` characters (any characters).
pub fn chars(field: &'static str, text: &str, max: usize) -> Result<(), LimitError> {
    // Bytes bound characters from above: only long texts are counted.
    if text.len() > max {
        let n = text.chars().count();
        if n > max {
            return Err(LimitError {
                field,
                problem: format!("{n} characters; at most {max}"),
            });
        }
    }
    Ok(())
}

/// A multi-line document (a template): at most `max` bytes, no control
/// characters but tab and line breaks.
pub fn document(field: &'static str, text: &str, max: usize) -> Result<(), LimitError> {
    if text.len() > max {
        return Err(LimitError {
            field,
            problem: format!("{} bytes; at most {max}", text.len()),
        });
    }
    match text
        .char_indices()
        .find(|(_, c)| c.is_control() && !matches!(c, '\t' | '\n' | '\r'))
    {
        Some((at, c)) => Err(LimitError {
            field,
            problem: format!(
                "contains a control character (U+{:04X}) at line {}",
                c as u32,
                text[..at].matches('\n').count() + 1
            ),
        }),
        None => Ok(()),
    }
}

/// `text` made safe to store and show when it cannot be refused (a
/// client's name in its hello): control characters become `?`, and it is
/// cut to `max` characters with `…`.
pub fn clean(text: &str, max: usize) -> String {
    let mut out: String = text
        .chars()
        .take(max)
        .map(|c| if c.is_control() { '?' } else { c })
        .collect();
    if text.chars().nth(max).is_some() {
        out.push('…');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_line_is_bounded_and_has_no_control_characters() {
        assert!(line("comment", "ok, fine", 10).is_ok());
        assert_eq!(
            line("comment", "ääääääääääää", 10)
                .expect_err("long")
                .to_string(),
            "comment: 12 characters; at most 10"
        );
        // Multi-byte characters count once.
        assert!(line("comment", "ääääääääää", 10).is_ok());
        assert_eq!(
            line("comment", "a\u{1b}[2J", 10)
                .expect_err("escape")
                .to_string(),
            "comment: contains a control character (U+001B) at character 2"
        );
        assert!(line("comment", "two\nlines", 20).is_err());
    }

    #[test]
    fn a_document_keeps_its_lines_but_no_other_control_characters() {
        assert!(document("text", "[a]\n\tb = 1\r\n", 100).is_ok());
        assert_eq!(
            document("text", "[a]\nb = \"\u{7}\"", 100)
                .expect_err("bell")
                .to_string(),
            "text: contains a control character (U+0007) at line 2"
        );
        assert!(document("text", &"x".repeat(101), 100).is_err());
    }

    #[test]
    fn clean_cuts_and_masks() {
        assert_eq!(clean("touchpoint 0.1.0", 64), "touchpoint 0.1.0");
        assert_eq!(clean("a\u{1b}b\nc", 64), "a?b?c");
        assert_eq!(clean(&"x".repeat(100), 3), "xxx…");
    }
}
