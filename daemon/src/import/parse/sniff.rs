//! Looks at the first bytes of a file: is it text at all, which encoding,
//! which delimiter. Works on the sniff buffer only, never reads.

use encoding_rs::{Encoding, UTF_16BE, UTF_16LE, UTF_8, WINDOWS_1252};

/// Known binary formats by their first bytes, with what to tell the dealer.
const MAGIC: &[(&[u8], &str)] = &[
    (
        b"PK\x03\x04",
        "looks like a ZIP archive (an .xlsx?); export as CSV",
    ),
    (
        b"PK\x05\x06",
        "looks like a ZIP archive (an .xlsx?); export as CSV",
    ),
    (
        b"\xD0\xCF\x11\xE0\xA1\xB1\x1A\xE1",
        "looks like an old Excel .xls (or other Office) file; export as CSV",
    ),
    (b"\x89PNG\r\n\x1a\n", "looks like a PNG image"),
    (b"\xFF\xD8\xFF", "looks like a JPEG image"),
    (b"GIF87a", "looks like a GIF image"),
    (b"GIF89a", "looks like a GIF image"),
    (
        b"%PDF-",
        "looks like a PDF document; export the data as CSV",
    ),
    (
        b"\x1F\x8B",
        "looks like a gzip-compressed file; unpack it first",
    ),
    (
        b"7z\xBC\xAF\x27\x1C",
        "looks like a 7-Zip archive; unpack it first",
    ),
    (b"Rar!\x1A\x07", "looks like a RAR archive; unpack it first"),
    (b"SQLite format 3\0", "looks like an SQLite database"),
    (b"{\\rtf", "looks like an RTF document; export as CSV"),
];

/// Why these bytes are not a CSV text, if they are not.
pub fn binary_reason(buf: &[u8], text_start: usize) -> Option<String> {
    if let Some((_, why)) = MAGIC.iter().find(|(m, _)| buf.starts_with(m)) {
        return Some((*why).to_string());
    }
    let text = &buf[text_start.min(buf.len())..];
    let first = text
        .iter()
        .position(|b| !b.is_ascii_whitespace())
        .map(|i| &text[i..])
        .unwrap_or(&[]);
    let head: Vec<u8> = first.iter().take(16).map(u8::to_ascii_lowercase).collect();
    if ["<?xml", "<html", "<!doctype", "<table"]
        .iter()
        .any(|p| head.starts_with(p.as_bytes()))
    {
        return Some("looks like XML or HTML (an Excel XML/HTML export?); export as CSV".into());
    }
    if head.starts_with(b"{") {
        return Some("looks like JSON; export as CSV".into());
    }
    None
}

/// A byte-order mark: the encoding it announces and its length.
pub fn bom(buf: &[u8]) -> Option<(&'static Encoding, usize)> {
    Encoding::for_bom(buf)
}

/// UTF-16 without a BOM shows as a NUL in every other byte of ASCII text.
pub fn utf16_without_bom(buf: &[u8]) -> Option<&'static Encoding> {
    let pairs = buf.len() / 2;
    if pairs < 4 {
        return None;
    }
    let even = buf.iter().step_by(2).filter(|&&b| b == 0).count();
    let odd = buf.iter().skip(1).step_by(2).filter(|&&b| b == 0).count();
    if odd * 10 >= pairs * 4 && even * 20 < pairs {
        Some(UTF_16LE)
    } else if even * 10 >= pairs * 4 && odd * 20 < pairs {
        Some(UTF_16BE)
    } else {
        None
    }
}

/// Why a single-byte or UTF-8 text is really binary: NULs or many control characters.
pub fn control_reason(text: &[u8]) -> Option<&'static str> {
    if text.contains(&0) {
        return Some("contains binary data (NUL bytes); not a text file");
    }
    let controls = text
        .iter()
        .filter(|&&b| b < 0x20 && !matches!(b, b'\t' | b'\n' | b'\r' | 0x0c | 0x1a))
        .count();
    (controls > 4.max(text.len() / 200))
        .then_some("contains binary data (control characters); not a text file")
}

/// Whether the buffer is UTF-8, allowing a character cut off by the end of
/// the sniff buffer when the file goes on.
pub fn is_utf8(buf: &[u8], at_eof: bool) -> bool {
    match std::str::from_utf8(buf) {
        Ok(_) => true,
        Err(e) => e.error_len().is_none() && !at_eof,
    }
}

/// The encodings we name in reports; anything else is named as encoding_rs does.
pub fn label(enc: &'static Encoding, with_bom: bool) -> &'static str {
    if enc == UTF_8 {
        if with_bom {
            "utf-8 (BOM)"
        } else {
            "utf-8"
        }
    } else if enc == WINDOWS_1252 {
        "windows-1252"
    } else if enc == UTF_16LE {
        "utf-16le"
    } else if enc == UTF_16BE {
        "utf-16be"
    } else {
        enc.name()
    }
}

/// Excel writes `sep=;` as a first line to announce the delimiter.
pub fn excel_sep_line(text: &[u8]) -> Option<u8> {
    let line = text.split(|&b| b == b'\n').next()?;
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    match line {
        [b's' | b'S', b'e' | b'E', b'p' | b'P', b'=', d] if d.is_ascii() && *d != b'"' => Some(*d),
        _ => None,
    }
}

pub const CANDIDATES: [u8; 4] = [b';', b',', b'\t', b'|'];
const MAX_LINES: usize = 200;

/// Counts each candidate delimiter outside quotes per record of the first
/// lines and picks the one that splits the header and the rows alike. With
/// `complete` false the last line may be cut off and is not counted. None:
/// no candidate occurs in the header, i.e. a single column.
pub fn sniff_delimiter(text: &[u8], complete: bool) -> Option<u8> {
    let mut lines: Vec<[u32; 4]> = Vec::new();
    let mut counts = [0u32; 4];
    let mut in_quotes = false;
    let mut blank = true;
    for &b in text {
        if b == b'"' {
            in_quotes = !in_quotes;
            blank = false;
        } else if in_quotes {
            continue;
        } else if b == b'\n' || b == b'\r' {
            if !blank {
                lines.push(counts);
                if lines.len() >= MAX_LINES {
                    break;
                }
            }
            counts = [0; 4];
            blank = true;
        } else {
            if let Some(i) = CANDIDATES.iter().position(|&c| c == b) {
                counts[i] += 1;
            }
            if !b.is_ascii_whitespace() {
                blank = false;
            }
        }
    }
    if !blank && lines.len() < MAX_LINES && (complete || lines.is_empty()) {
        lines.push(counts);
    }
    let (header, data) = lines.split_first()?;
    // Per candidate: columns in the header, the most common count in the
    // rows and how many rows have it. Rows are compared with each other, not
    // with the header, so trailing empty header cells do not spoil the vote.
    let mut best: Option<(u8, u32, bool)> = None;
    for (i, &c) in CANDIDATES.iter().enumerate() {
        let h = header[i];
        if h == 0 {
            continue;
        }
        let (typical, consistent) = if data.is_empty() {
            (h, true)
        } else {
            let mut freq: Vec<(u32, usize)> = Vec::new();
            for l in data {
                match freq.iter_mut().find(|(n, _)| *n == l[i]) {
                    Some(e) => e.1 += 1,
                    None => freq.push((l[i], 1)),
                }
            }
            let (mode, n) = freq
                .iter()
                .copied()
                .max_by_key(|&(count, n)| (n, count))
                .unwrap_or((0, 0));
            (mode, mode > 0 && n * 2 >= data.len())
        };
        let strength = h.min(typical);
        let better = match best {
            None => true,
            Some((_, s, cons)) => (consistent, strength) > (cons, s),
        };
        if better {
            best = Some((c, strength, consistent));
        }
    }
    best.map(|(c, _, _)| c)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn binary_formats_are_named() {
        assert_eq!(
            binary_reason(b"PK\x03\x04\x14\x00\x06\x00", 0).as_deref(),
            Some("looks like a ZIP archive (an .xlsx?); export as CSV")
        );
        assert_eq!(
            binary_reason(b"\x89PNG\r\n\x1a\n\0\0", 0).as_deref(),
            Some("looks like a PNG image")
        );
        assert!(binary_reason(b"  <?xml version=\"1.0\"?>", 0).is_some());
        assert_eq!(binary_reason(b"Kundennr;Name\n", 0), None);
        assert_eq!(
            control_reason(b"a\0b"),
            Some("contains binary data (NUL bytes); not a text file")
        );
        assert_eq!(
            control_reason(b"Kundennr;Name\r\n1;M\xfcller\r\n\x1a"),
            None
        );
    }

    #[test]
    fn encodings() {
        assert!(is_utf8("Müller".as_bytes(), true));
        assert!(!is_utf8(b"M\xfcller", true));
        // A character cut in half by the end of the sniff buffer.
        assert!(is_utf8(&"Mü".as_bytes()[..2], false));
        assert!(!is_utf8(&"Mü".as_bytes()[..2], true));
        assert_eq!(bom(b"\xEF\xBB\xBFa"), Some((UTF_8, 3)));
        assert_eq!(
            utf16_without_bom(b"K\0d\0n\0r\0;\0N\0a\0m\0"),
            Some(UTF_16LE)
        );
        assert_eq!(utf16_without_bom(b"Kdnr;Name"), None);
        assert_eq!(label(WINDOWS_1252, false), "windows-1252");
        assert_eq!(label(UTF_8, true), "utf-8 (BOM)");
    }

    #[test]
    fn delimiters_are_detected() {
        assert_eq!(sniff_delimiter(b"a;b;c\n1;2;3\n4;5;6\n", true), Some(b';'));
        assert_eq!(sniff_delimiter(b"a,b,c\n1,2,3\n", true), Some(b','));
        assert_eq!(sniff_delimiter(b"a\tb\tc\n1\t2,5\t3\n", true), Some(b'\t'));
        assert_eq!(sniff_delimiter(b"a|b\n1|2\n", true), Some(b'|'));
        // Commas inside values of a semicolon file.
        assert_eq!(
            sniff_delimiter(
                b"Nr;Name;Ort\n1;M\xfcller, Hans;Ulm\n2;Weiss, Eva;Ulm\n",
                true
            ),
            Some(b';')
        );
        // A comma in the header only, and trailing empty header cells.
        assert_eq!(
            sniff_delimiter(b"Nr;Name, Vorname;Ort;;;\n1;Hans;Ulm\n2;Eva;Ulm\n", true),
            Some(b';')
        );
        // Quoted delimiters and newlines do not count.
        assert_eq!(
            sniff_delimiter(b"a,b\n\"x;y;z\",\"1\n;;\"\n", true),
            Some(b',')
        );
        assert_eq!(sniff_delimiter(b"Nur eine Spalte\nText\n", true), None);
        // A cut-off last line is not counted.
        assert_eq!(sniff_delimiter(b"a;b;c\n1;2;3\n4,5", false), Some(b';'));
    }

    #[test]
    fn excel_sep_line_is_recognised() {
        assert_eq!(excel_sep_line(b"sep=;\r\nA;B\r\n"), Some(b';'));
        assert_eq!(excel_sep_line(b"sep=,\nA,B"), Some(b','));
        assert_eq!(excel_sep_line(b"A;B\n"), None);
    }
}
