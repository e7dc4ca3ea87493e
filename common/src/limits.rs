//! Bounds on the text a client sends, checked before a request is handled,
//! so that nothing that comes over the socket is stored, logged or shown
//! unbounded, and no control character (a terminal escape, a forged line
//! break) reaches an audit line or a report someone else reads.
//!
//! Text from outside that cannot be refused (a relay's reply, a delivery
//! report, a call centre's file) is made safe where it enters with
//! [`outside`] instead.

use std::borrow::Cow;
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
/// Text from outside the daemon that it keeps or passes on (a relay's
/// reply, a delivery report's diagnostic, a call centre's note): about a
/// kilobyte says all a person needs, and a message's history holds dozens.
pub const OUTSIDE_CHARS: usize = 1_000;
/// A value from outside quoted back in an error ("… is not an outcome").
pub const ECHO_CHARS: usize = 100;

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

/// `text` from outside as it may be stored, logged and repeated: one line
/// without surrounding space (a line break or tab and the space around it
/// become one space, any other control character `?`) of at most `max` characters,
/// cut with `…`. Borrows `text` when it is that already, so a short clean
/// reply costs no copy.
pub fn outside(text: &str, max: usize) -> Cow<'_, str> {
    let text = text.trim();
    // Bytes bound characters from above: only long texts are counted.
    let short = text.len() <= max || text.chars().nth(max).is_none();
    if short && !text.contains(char::is_control) {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len().min(max.saturating_mul(4)) + 3);
    let mut chars = text.chars().peekable();
    let mut n = 0;
    while let Some(c) = chars.next() {
        if n == max {
            out.push('…');
            break;
        }
        match c {
            '\t' | '\n' | '\r' => {
                // A folded or continued line goes on after one space.
                while chars
                    .next_if(|c| matches!(c, ' ' | '\t' | '\n' | '\r'))
                    .is_some()
                {}
                if out.ends_with(' ') {
                    continue;
                }
                out.push(' ');
            }
            c if c.is_control() => out.push('?'),
            c => out.push(c),
        }
        n += 1;
    }
    Cow::Owned(out)
}

/// [`outside`] of a text the caller owns: the same string back when it is
/// fine as it is.
pub fn outside_owned(text: String, max: usize) -> String {
    match outside(&text, max) {
        Cow::Borrowed(b) if b.len() == text.len() => text,
        other => other.into_owned(),
    }
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

    #[test]
    fn outside_text_becomes_one_short_clean_line() {
        assert!(matches!(
            outside("250 2.0.0 Ok", 10_000),
            Cow::Borrowed("250 2.0.0 Ok")
        ));
        assert_eq!(
            outside("  550 no\r\n 550 such\tuser\r\n", 100),
            "550 no 550 such user"
        );
        assert_eq!(outside("a\u{1b}[2Jb\u{7}", 100), "a?[2Jb?");
        assert_eq!(outside(&"ä".repeat(10), 10), "ä".repeat(10));
        assert_eq!(outside(&"ä".repeat(11), 10), format!("{}…", "ä".repeat(10)));
        assert_eq!(outside(&"x".repeat(3 << 20), 1_000).chars().count(), 1_001);
        let owned = String::from("fine as it is");
        let at = owned.as_ptr();
        let back = outside_owned(owned, 100);
        assert_eq!(back.as_ptr(), at, "not copied");
        assert_eq!(outside_owned(" padded ".into(), 100), "padded");
    }
}
