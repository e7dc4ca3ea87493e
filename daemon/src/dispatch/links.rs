//! Click tracking's link rewriting (brand policy `[tracking] clicks`, off
//! by default): the http(s) links of a rendered email's text and HTML
//! parts become `{public_url}/c/{token}`, and the addresses they stood for
//! are kept with the message, so that `/c/` answers a redirect to what the
//! message itself linked, never to an address a token carries.
//!
//! What is rewritten: in the text part every `http://` or `https://`
//! address (trailing sentence punctuation is not part of it); in the HTML
//! part only the value of an `href` attribute inside a tag: never `src`
//! (a tracked image would be an open-tracking pixel), never the visible
//! text (the person sees where a link goes), never inside a comment.
//! `mailto:` and anything but http(s) is left alone, as is whatever `keep`
//! says (the unsubscribe link, the daemon's own addresses). The same
//! address in both parts is one link. Beyond [`MAX_LINKS`] links, or an
//! address longer than [`MAX_URL`], the link is left as it is, untracked.

/// Links tracked per message at most.
pub const MAX_LINKS: usize = 64;
/// Longest address tracked (bytes); a longer one is left untracked.
pub const MAX_URL: usize = 2048;

/// A rendered email with its links rewritten.
#[derive(Debug, PartialEq, Eq)]
pub struct Rewritten {
    pub text: String,
    pub html: String,
    /// The original addresses; link `n` (counted from 1) is `links[n - 1]`.
    pub links: Vec<String>,
}

/// Rewrites the links of `text` and `html`: link `n` becomes `to(n)`,
/// except those `keep` holds on to.
pub fn rewrite(
    text: &str,
    html: &str,
    keep: impl Fn(&str) -> bool,
    to: impl Fn(u32) -> String,
) -> Rewritten {
    let mut links = Links {
        seen: Vec::new(),
        keep: &keep,
        to: &to,
    };
    let text = rewrite_text(text, &mut links);
    let html = rewrite_html(html, &mut links);
    Rewritten {
        text,
        html,
        links: links.seen,
    }
}

struct Links<'a> {
    seen: Vec<String>,
    keep: &'a dyn Fn(&str) -> bool,
    to: &'a dyn Fn(u32) -> String,
}

impl Links<'_> {
    /// The tracking address for `url`, or `None` to leave it.
    fn track(&mut self, url: &str) -> Option<String> {
        if !is_web(url) || url.len() > MAX_URL || (self.keep)(url) {
            return None;
        }
        let n = match self.seen.iter().position(|s| s == url) {
            Some(i) => i + 1,
            None if self.seen.len() < MAX_LINKS => {
                self.seen.push(url.to_string());
                self.seen.len()
            }
            None => return None,
        };
        Some((self.to)(n as u32))
    }
}

fn is_web(url: &str) -> bool {
    let lower = |n: usize| url.get(..n).map(str::to_ascii_lowercase);
    lower(7).as_deref() == Some("http://") || lower(8).as_deref() == Some("https://")
}

/// Where a web address starts at `i` of `s`: `http://` or `https://` with
/// no letter or digit before it.
fn starts_web(s: &str, i: usize) -> bool {
    is_web(&s[i..])
        && s[..i]
            .chars()
            .next_back()
            .is_none_or(|c| !c.is_alphanumeric())
}

fn rewrite_text(text: &str, links: &mut Links<'_>) -> String {
    let mut out = String::with_capacity(text.len());
    let (mut copied, mut i) = (0, 0);
    while i < text.len() {
        if !(text.is_char_boundary(i) && starts_web(text, i)) {
            i += 1;
            continue;
        }
        let end = text[i..]
            .find(|c: char| c.is_whitespace() || c.is_control() || matches!(c, '<' | '>' | '"'))
            .map_or(text.len(), |n| i + n);
        let end = i + url_len(&text[i..end]);
        if let Some(t) = links.track(&text[i..end]) {
            out.push_str(&text[copied..i]);
            out.push_str(&t);
            copied = end;
        }
        i = end.max(i + 1);
    }
    out.push_str(&text[copied..]);
    out
}

/// The address in `candidate` without the sentence punctuation after it
/// (a closing parenthesis only when the address opened none).
fn url_len(candidate: &str) -> usize {
    let mut s = candidate;
    loop {
        let Some(last) = s.chars().next_back() else {
            return 0;
        };
        let strip = matches!(last, '.' | ',' | ';' | ':' | '!' | '?' | '\'')
            || (last == ')' && s.matches('(').count() < s.matches(')').count());
        if !strip {
            return s.len();
        }
        s = &s[..s.len() - last.len_utf8()];
    }
}

fn rewrite_html(html: &str, links: &mut Links<'_>) -> String {
    let b = html.as_bytes();
    let mut out = String::with_capacity(html.len());
    let mut copied = 0;
    let mut i = 0;
    while i < b.len() {
        if b[i] != b'<' {
            i += 1;
            continue;
        }
        if html[i..].starts_with("<!--") {
            i = html[i + 4..].find("-->").map_or(b.len(), |n| i + 4 + n + 3);
            continue;
        }
        // A tag: its name, then attributes until the `>` outside quotes.
        // Only a link a reader clicks is tracked (`a`, `area`): an `href`
        // a mail client fetches by itself (`link`, `base`) would count
        // every opening as a click, an open-tracking pixel by another name.
        i += 1;
        let tag_start = i;
        while i < b.len() && !matches!(b[i], b'>' | b'<' | b'/') && !b[i].is_ascii_whitespace() {
            i += 1;
        }
        let tag = &html[tag_start..i];
        let clicked = tag.eq_ignore_ascii_case("a") || tag.eq_ignore_ascii_case("area");
        while i < b.len() && !matches!(b[i], b'>' | b'<') {
            if b[i].is_ascii_whitespace() || b[i] == b'/' {
                i += 1;
                continue;
            }
            let name_start = i;
            while i < b.len()
                && !matches!(b[i], b'=' | b'>' | b'<' | b'/')
                && !b[i].is_ascii_whitespace()
            {
                i += 1;
            }
            let name = &html[name_start..i];
            let mut j = i;
            while j < b.len() && b[j].is_ascii_whitespace() {
                j += 1;
            }
            if j >= b.len() || b[j] != b'=' {
                continue;
            }
            j += 1;
            while j < b.len() && b[j].is_ascii_whitespace() {
                j += 1;
            }
            let (start, end, next) = match b.get(j) {
                Some(&q @ (b'"' | b'\'')) => {
                    let end = html[j + 1..].find(q as char).map_or(b.len(), |n| j + 1 + n);
                    (j + 1, end, (end + 1).min(b.len()))
                }
                Some(_) => {
                    let end = html[j..]
                        .find(|c: char| c.is_ascii_whitespace() || c == '>')
                        .map_or(b.len(), |n| j + n);
                    (j, end, end)
                }
                None => (j, j, j),
            };
            if clicked && name.eq_ignore_ascii_case("href") {
                if let Some(t) = links.track(&unescape(&html[start..end])) {
                    out.push_str(&html[copied..start]);
                    out.push_str(&t);
                    copied = end;
                }
            }
            i = next;
        }
    }
    out.push_str(&html[copied..]);
    out
}

/// An attribute value as a browser reads it: the character references a
/// template writes (`&amp;`, `&quot;`, `&#39;`, `&lt;`, `&gt;`, numeric).
fn unescape(v: &str) -> String {
    let mut out = String::with_capacity(v.len());
    let mut rest = v;
    while let Some(at) = rest.find('&') {
        out.push_str(&rest[..at]);
        rest = &rest[at..];
        // By bytes: the 12th byte may fall inside a character (`ü`).
        let Some(semi) = rest.bytes().take(12).position(|b| b == b';') else {
            out.push('&');
            rest = &rest[1..];
            continue;
        };
        let name = &rest[1..semi];
        let c = match name {
            "amp" => Some('&'),
            "quot" => Some('"'),
            "apos" => Some('\''),
            "lt" => Some('<'),
            "gt" => Some('>'),
            _ => name
                .strip_prefix("#x")
                .or_else(|| name.strip_prefix("#X"))
                .and_then(|h| u32::from_str_radix(h, 16).ok())
                .or_else(|| name.strip_prefix('#').and_then(|d| d.parse().ok()))
                .and_then(char::from_u32),
        };
        match c {
            Some(c) => {
                out.push(c);
                rest = &rest[semi + 1..];
            }
            None => {
                out.push('&');
                rest = &rest[1..];
            }
        }
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests;
