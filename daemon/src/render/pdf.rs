//! Print-ready letters as one PDF per batch.
//!
//! Every letter starts on a new page of one document and is laid out on A4
//! after DIN 5008, form B (positions in mm from the top left corner):
//!
//! ```text
//!  logo line (bold, right-aligned at 190)                       y 25
//!  address field x 20..105, y 45..90 (text from x 25):
//!    Zusatz- und Vermerkzone 45..62.7  return-address line, 7 pt, underlined, on its last line
//!    Anschriftzone 62.7..90            address block, 10 pt (8 pt beyond 6 lines, at most 9)
//!  information block x 125..190 from y 50: first line bold, then the others, then the date
//!  fold marks at y 105 and 210, punch mark at y 148.5 (left edge)
//!  body from y 98.46, x 25..190, 11 pt; continuation pages from y 25 under a
//!  one-line header (addressee · date); "Seite n von m" at y 287 on every page
//! ```
//!
//! The body is the rendered letter text. Blank lines separate paragraphs (and
//! each one is kept as vertical space); lines beginning with `- ` are bullet
//! items with a hanging indent. Inside a paragraph a line break is taken as
//! the template author's source wrapping, and the lines are reflowed, when
//! the line before it is long (at least [`SOFT_BREAK_RATIO`] of the text
//! width) and either ends in a comma or could not have taken the next line's
//! first word within the body's longest (non-bullet) line. Other breaks are kept, so
//! greetings, signatures, footers and address lines stay as written.
//!
//! Text is set in the standard Type 1 fonts Helvetica and Helvetica-Bold with
//! WinAnsiEncoding: German text (ä ö ü ß €, „ “ – ·) prints as written,
//! characters outside WinAnsi print as `?`. The fonts are two objects shared
//! by every page (the resources sit on the page tree and are inherited), and
//! content streams are not compressed, so the text of a letter can be found
//! in the file as WinAnsi bytes (`M\xfcller`). The output depends only on the
//! input: no dates, no random file ids.

use pdf_writer::{Finish, Name, Pdf, Rect, Ref, Settings, TextStr};
use unicode_normalization::{is_nfc_quick, IsNormalized, UnicodeNormalization};

/// One letter of a batch.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Letter {
    /// Outbox message id.
    pub message: u64,
    /// The dealer's customer number of the addressee.
    pub recipient: String,
    /// Address block lines: name, street, postcode and city (, country).
    pub address: Vec<String>,
    pub postcode: String,
    /// Return-address line, "Autohaus Beispiel · Hauptstr. 1 · 12345 Stadt".
    pub sender_line: String,
    /// Information block lines: dealer name (set in bold), phone, email, ….
    pub info: Vec<String>,
    /// The dealer's logo slot, printed as a text line at the top right.
    pub logo: Option<String>,
    /// Date of the letter as it is printed, "23.11.2026".
    pub date: String,
    /// The rendered letter text.
    pub body: String,
}

impl Letter {
    /// The addressee's name: the first address line that is not a bare
    /// salutation ("Frau", "Herrn", "Firma").
    pub fn addressee(&self) -> &str {
        const SALUTATIONS: [&str; 7] = [
            "frau", "herr", "herrn", "firma", "familie", "eheleute", "divers",
        ];
        let mut lines = self
            .address
            .iter()
            .map(|s| s.trim())
            .filter(|s| !s.is_empty());
        let first = lines.next().unwrap_or_default();
        if SALUTATIONS.contains(&first.to_lowercase().as_str()) {
            lines.next().unwrap_or(first)
        } else {
            first
        }
    }
}

/// A line break inside a paragraph is taken for the author's source wrapping
/// only after a line at least this share of the text width long.
pub const SOFT_BREAK_RATIO: f32 = 0.55;

/// Renders `letters` in order into one PDF; returns it with the number of
/// pages of each letter.
pub fn render_batch(letters: &[Letter]) -> (Vec<u8>, Vec<u32>) {
    let mut doc = Doc::new(letters.len());
    let pages = letters.iter().map(|l| doc.letter(l)).collect();
    (doc.finish(), pages)
}

// ----- geometry -------------------------------------------------------------------

const MM: f32 = 72.0 / 25.4;
const PAGE_W: f32 = 210.0 * MM;
const PAGE_H: f32 = 297.0 * MM;

/// PDF y (from the bottom, pt) of a position `mm` below the top edge.
fn from_top(mm: f32) -> f32 {
    PAGE_H - mm * MM
}

const LEFT: f32 = 25.0 * MM;
const RIGHT: f32 = PAGE_W - 20.0 * MM;
const TEXT_W: f32 = RIGHT - LEFT;

const BODY_SIZE: f32 = 11.0;
const LEADING: f32 = 13.2;
/// Baseline of a line whose capitals start at `top_mm` (Helvetica's cap height is 0.718 em).
fn first_baseline(top_mm: f32, size: f32) -> f32 {
    from_top(top_mm) - 0.718 * size
}
const BODY_TOP_FIRST_MM: f32 = 98.46;
const BODY_TOP_NEXT_MM: f32 = 25.0;
/// No body baseline lies lower than this (mm from the top).
const BODY_BOTTOM_MM: f32 = 272.0;
const BULLET_INDENT: f32 = 5.0 * MM;

const FOLD_MARKS_MM: [f32; 2] = [105.0, 210.0];
const PUNCH_MARK_MM: f32 = 148.5;

const ADDRESS_X: f32 = 25.0 * MM;
/// Usable width of the address field (85 mm less 5 mm on either side).
const ADDRESS_W: f32 = 75.0 * MM;
const VERMERK_BOTTOM_MM: f32 = 45.0 + 17.7;
const ANSCHRIFT_BOTTOM_MM: f32 = 90.0;

const INFO_X: f32 = 125.0 * MM;
const INFO_W: f32 = RIGHT - INFO_X;
const INFO_TOP_MM: f32 = 50.0;
const INFO_SIZE: f32 = 9.0;
const INFO_LEADING: f32 = 11.0;

const LOGO_SIZE: f32 = 14.0;
const LOGO_BASELINE_MM: f32 = 25.0;

const SMALL: f32 = 8.0;
const HEADER_BASELINE_MM: f32 = 15.0;
const FOOTER_BASELINE_MM: f32 = 287.0;

/// Body lines that fit on a page whose body begins `top_mm` below the top edge.
fn lines_per_page(top_mm: f32) -> usize {
    let first = first_baseline(top_mm, BODY_SIZE);
    let span = first - from_top(BODY_BOTTOM_MM);
    (span / LEADING) as usize + 1
}

// ----- fonts ----------------------------------------------------------------------

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Font {
    Regular,
    Bold,
}

impl Font {
    fn resource(self) -> &'static [u8] {
        match self {
            Font::Regular => b"/F1",
            Font::Bold => b"/F2",
        }
    }

    /// Advance of a WinAnsi byte in 1/1000 em.
    fn advance(self, b: u8) -> u32 {
        let table = match self {
            Font::Regular => &HELVETICA,
            Font::Bold => &HELVETICA_BOLD,
        };
        u32::from(table[usize::from(b.saturating_sub(32))])
    }

    /// Width of WinAnsi text at `size`, pt.
    fn width(self, text: &[u8], size: f32) -> f32 {
        self.units(text) as f32 * size / 1000.0
    }

    fn units(self, text: &[u8]) -> u32 {
        text.iter().map(|&b| self.advance(b)).sum()
    }
}

/// Advance widths of Helvetica (Adobe's AFM) for the WinAnsi codes 32 to 255,
/// 1/1000 em. Codes WinAnsi leaves undefined are 0 and never written.
#[rustfmt::skip]
const HELVETICA: [u16; 224] = [
    278, 278, 355, 556, 556, 889, 667, 191, 333, 333, 389, 584, 278, 333, 278, 278, // 0x20
    556, 556, 556, 556, 556, 556, 556, 556, 556, 556, 278, 278, 584, 584, 584, 556, // 0x30
    1015, 667, 667, 722, 722, 667, 611, 778, 722, 278, 500, 667, 556, 833, 722, 778, // 0x40
    667, 778, 722, 667, 611, 722, 667, 944, 667, 667, 611, 278, 278, 278, 469, 556, // 0x50
    333, 556, 556, 500, 556, 556, 278, 556, 556, 222, 222, 500, 222, 833, 556, 556, // 0x60
    556, 556, 333, 500, 278, 556, 500, 722, 500, 500, 500, 334, 260, 334, 584, 0, // 0x70
    556, 0, 222, 556, 333, 1000, 556, 556, 333, 1000, 667, 333, 1000, 0, 611, 0, // 0x80
    0, 222, 222, 333, 333, 350, 556, 1000, 333, 1000, 500, 333, 944, 0, 500, 667, // 0x90
    278, 333, 556, 556, 556, 556, 260, 556, 333, 737, 370, 556, 584, 333, 737, 333, // 0xA0
    400, 584, 333, 333, 333, 578, 537, 278, 333, 333, 365, 556, 834, 834, 834, 611, // 0xB0
    667, 667, 667, 667, 667, 667, 1000, 722, 667, 667, 667, 667, 278, 278, 278, 278, // 0xC0
    722, 722, 778, 778, 778, 778, 778, 584, 778, 722, 722, 722, 722, 667, 667, 611, // 0xD0
    556, 556, 556, 556, 556, 556, 889, 500, 556, 556, 556, 556, 278, 278, 278, 278, // 0xE0
    556, 556, 556, 556, 556, 556, 556, 584, 611, 556, 556, 556, 556, 500, 556, 500, // 0xF0
];

/// As [`HELVETICA`], for Helvetica-Bold.
#[rustfmt::skip]
const HELVETICA_BOLD: [u16; 224] = [
    278, 333, 474, 556, 556, 889, 722, 238, 333, 333, 389, 584, 278, 333, 278, 278, // 0x20
    556, 556, 556, 556, 556, 556, 556, 556, 556, 556, 333, 333, 584, 584, 584, 611, // 0x30
    975, 722, 722, 722, 722, 667, 611, 778, 722, 278, 556, 722, 611, 833, 722, 778, // 0x40
    667, 778, 722, 667, 611, 722, 667, 944, 667, 667, 611, 333, 278, 333, 584, 556, // 0x50
    333, 556, 611, 556, 611, 556, 333, 611, 611, 278, 278, 556, 278, 889, 611, 611, // 0x60
    611, 611, 389, 556, 333, 611, 556, 778, 556, 556, 500, 389, 280, 389, 584, 0, // 0x70
    556, 0, 278, 556, 500, 1000, 556, 556, 333, 1000, 667, 333, 1000, 0, 611, 0, // 0x80
    0, 278, 278, 500, 500, 350, 556, 1000, 333, 1000, 556, 333, 944, 0, 500, 667, // 0x90
    278, 333, 556, 556, 556, 556, 280, 556, 333, 737, 370, 556, 584, 333, 737, 333, // 0xA0
    400, 584, 333, 333, 333, 611, 556, 278, 333, 333, 365, 556, 834, 834, 834, 611, // 0xB0
    722, 722, 722, 722, 722, 722, 1000, 722, 667, 667, 667, 667, 278, 278, 278, 278, // 0xC0
    722, 722, 778, 778, 778, 778, 778, 584, 778, 722, 722, 722, 722, 667, 667, 611, // 0xD0
    556, 556, 556, 556, 556, 556, 889, 556, 556, 556, 556, 556, 278, 278, 278, 278, // 0xE0
    611, 611, 611, 611, 611, 611, 611, 584, 611, 611, 611, 611, 611, 556, 611, 556, // 0xF0
];

/// WinAnsi code of a character; `None` for characters that print as nothing
/// (soft hyphen, zero-width space). Characters outside WinAnsi become `?`.
fn winansi(c: char) -> Option<u8> {
    let u = c as u32;
    Some(match u {
        0x20..=0x7e | 0xa0..=0xac | 0xae..=0xff => u as u8,
        0x09 | 0x2000..=0x200a => b' ',
        0xad | 0x200b..=0x200d | 0x2060 | 0xfeff => return None,
        0x202f => 0xa0,
        0x2010 | 0x2011 | 0x2212 => b'-',
        0x20ac => 0x80,
        0x201a => 0x82,
        0x0192 => 0x83,
        0x201e => 0x84,
        0x2026 => 0x85,
        0x2020 => 0x86,
        0x2021 => 0x87,
        0x02c6 => 0x88,
        0x2030 => 0x89,
        0x0160 => 0x8a,
        0x2039 => 0x8b,
        0x0152 => 0x8c,
        0x017d => 0x8e,
        0x2018 => 0x91,
        0x2019 => 0x92,
        0x201c => 0x93,
        0x201d => 0x94,
        0x2022 => 0x95,
        0x2013 => 0x96,
        0x2014 => 0x97,
        0x02dc => 0x98,
        0x2122 => 0x99,
        0x0161 => 0x9a,
        0x203a => 0x9b,
        0x0153 => 0x9c,
        0x017e => 0x9e,
        0x0178 => 0x9f,
        _ => b'?',
    })
}

/// Appends `s` as WinAnsi bytes. Decomposed umlauts ("u" + U+0308) are
/// composed first, so they print as "ü" rather than "u?".
fn push_winansi(s: &str, out: &mut Vec<u8>) {
    if s.is_ascii() {
        out.extend(s.bytes().map(|b| match b {
            b'\t' => b' ',
            0x20..=0x7e => b,
            _ => b'?',
        }));
        return;
    }
    if is_nfc_quick(s.chars()) == IsNormalized::Yes {
        out.extend(s.chars().filter_map(winansi));
    } else {
        out.extend(s.nfc().filter_map(winansi));
    }
}

/// WinAnsi bytes of `s`.
pub fn encode_winansi(s: &str) -> Vec<u8> {
    let mut v = Vec::with_capacity(s.len());
    push_winansi(s, &mut v);
    v
}

// ----- content streams ------------------------------------------------------------

/// A page's content stream, written by hand: pdf-writer's `Content` writes
/// every non-ASCII string in hex, which doubles German text and hides it
/// from a byte search.
struct Stream {
    buf: Vec<u8>,
    font: Option<(Font, f32)>,
    gray: f32,
}

impl Stream {
    fn new() -> Self {
        Self {
            buf: Vec::with_capacity(8 * 1024),
            font: None,
            gray: 0.0,
        }
    }

    fn reset(&mut self) {
        self.buf.clear();
        self.font = None;
        self.gray = 0.0;
    }

    /// A number with at most two decimals.
    fn num(&mut self, v: f32) {
        let hundredths = (v * 100.0).round() as i64;
        let (sign, abs) = if hundredths < 0 {
            ("-", -hundredths)
        } else {
            ("", hundredths)
        };
        self.buf.extend_from_slice(sign.as_bytes());
        push_uint(&mut self.buf, (abs / 100) as u64);
        let frac = abs % 100;
        if frac != 0 {
            self.buf.push(b'.');
            self.buf.push(b'0' + (frac / 10) as u8);
            if frac % 10 != 0 {
                self.buf.push(b'0' + (frac % 10) as u8);
            }
        }
        self.buf.push(b' ');
    }

    fn line(&mut self, x1: f32, y1: f32, x2: f32, y2: f32) {
        self.num(x1);
        self.num(y1);
        self.buf.extend_from_slice(b"m ");
        self.num(x2);
        self.num(y2);
        self.buf.extend_from_slice(b"l S\n");
    }

    fn stroke_style(&mut self, width: f32, gray: f32) {
        self.num(width);
        self.buf.extend_from_slice(b"w ");
        self.num(gray);
        self.buf.extend_from_slice(b"G\n");
    }

    fn begin_text(&mut self) {
        self.buf.extend_from_slice(b"BT\n");
    }

    fn end_text(&mut self) {
        self.buf.extend_from_slice(b"ET\n");
    }

    /// Shows WinAnsi `text` with its baseline starting at (`x`, `y`).
    /// Inside `begin_text` … `end_text` only.
    fn text(&mut self, font: Font, size: f32, gray: f32, x: f32, y: f32, text: &[u8]) {
        if self.font != Some((font, size)) {
            self.buf.extend_from_slice(font.resource());
            self.buf.push(b' ');
            self.num(size);
            self.buf.extend_from_slice(b"Tf\n");
            self.font = Some((font, size));
        }
        if self.gray != gray {
            self.num(gray);
            self.buf.extend_from_slice(b"g\n");
            self.gray = gray;
        }
        self.buf.extend_from_slice(b"1 0 0 1 ");
        self.num(x);
        self.num(y);
        self.buf.extend_from_slice(b"Tm (");
        for &b in text {
            if matches!(b, b'(' | b')' | b'\\') {
                self.buf.push(b'\\');
            }
            self.buf.push(b);
        }
        self.buf.extend_from_slice(b") Tj\n");
    }
}

fn push_uint(buf: &mut Vec<u8>, mut n: u64) {
    let mut digits = [0u8; 20];
    let mut i = digits.len();
    loop {
        i -= 1;
        digits[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    buf.extend_from_slice(&digits[i..]);
}

/// The size at which `text` fits `max_w` (shrinking down to `min_size`) and
/// the number of its bytes that fit at that size.
fn fit(font: Font, text: &[u8], size: f32, min_size: f32, max_w: f32) -> (f32, usize) {
    let units = font.units(text) as f32;
    if units * size / 1000.0 <= max_w {
        return (size, text.len());
    }
    let shrunk = (max_w * 1000.0 / units).max(min_size);
    // Round down to a quarter point so the number stays short.
    let shrunk = ((shrunk * 4.0).floor() / 4.0).max(min_size);
    let budget = (max_w * 1000.0 / shrunk) as u32;
    let mut used = 0;
    let mut end = 0;
    for &b in text {
        used += font.advance(b);
        if used > budget {
            break;
        }
        end += 1;
    }
    (shrunk, end)
}

// ----- body layout ----------------------------------------------------------------

#[derive(Clone, Copy, Debug)]
enum LineKind {
    Blank,
    Text,
    /// First line of a bullet item: the bullet, then the text at the indent.
    Bullet,
    /// Further line of a bullet item, at the indent.
    BulletMore,
}

#[derive(Clone, Copy, Debug)]
struct BodyLine {
    kind: LineKind,
    start: usize,
    end: usize,
}

/// The text of a bullet item line (`- text` or `• text`, indented or not).
fn bullet_item(line: &str) -> Option<&str> {
    let t = line.trim_start();
    t.strip_prefix("- ").or_else(|| t.strip_prefix("\u{2022} "))
}

#[derive(PartialEq, Eq, Clone, Copy)]
enum Block {
    None,
    Para,
    Bullet,
}

/// Lays out a body into lines of at most the text width, in `lines`, with
/// their WinAnsi text in `text`.
struct Layout {
    text: Vec<u8>,
    lines: Vec<BodyLine>,
    para: Vec<u8>,
    scratch: Vec<u8>,
}

impl Layout {
    fn new() -> Self {
        Self {
            text: Vec::with_capacity(4096),
            lines: Vec::with_capacity(128),
            para: Vec::with_capacity(1024),
            scratch: Vec::with_capacity(256),
        }
    }

    fn body(&mut self, body: &str) {
        self.text.clear();
        self.lines.clear();
        self.para.clear();
        let source: Vec<&str> = body.split('\n').map(str::trim_end).collect();
        // The author's wrap width: the longest line that is not a bullet item.
        let wrap_chars = source
            .iter()
            .filter(|l| bullet_item(l).is_none())
            .map(|l| l.trim_start().chars().count())
            .max()
            .unwrap_or(0);
        let floor = (SOFT_BREAK_RATIO * TEXT_W * 1000.0 / BODY_SIZE) as u32;
        let mut block = Block::None;
        for (i, line) in source.iter().enumerate() {
            let trimmed = line.trim_start();
            if trimmed.is_empty() {
                self.flush(block);
                block = Block::None;
                self.lines.push(BodyLine {
                    kind: LineKind::Blank,
                    start: 0,
                    end: 0,
                });
                continue;
            }
            let item = bullet_item(line);
            let joins = match (item, block) {
                (Some(_), _) | (None, Block::None) => false,
                (None, Block::Bullet) => {
                    line.len() != trimmed.len() || self.soft_before(&source, i, wrap_chars, floor)
                }
                (None, Block::Para) => self.soft_before(&source, i, wrap_chars, floor),
            };
            if joins {
                self.para.push(b' ');
            } else {
                self.flush(block);
                block = if item.is_some() {
                    Block::Bullet
                } else {
                    Block::Para
                };
            }
            push_winansi(item.unwrap_or(trimmed), &mut self.para);
        }
        self.flush(block);
        while matches!(self.lines.last(), Some(l) if matches!(l.kind, LineKind::Blank)) {
            self.lines.pop();
        }
    }

    /// Whether the break before source line `i` is the author's wrapping: the
    /// first word of line `i` would not have fit on the line before within
    /// the body's longest line, and the line before is long.
    fn soft_before(&mut self, source: &[&str], i: usize, wrap_chars: usize, floor: u32) -> bool {
        let Some(prev) = i.checked_sub(1).map(|p| source[p].trim_start()) else {
            return false;
        };
        let next_word = source[i]
            .split_whitespace()
            .next()
            .map_or(0, |w| w.chars().count());
        // A line ending in a comma goes on, whatever its length (placeholders
        // may have made it shorter than the author wrapped it).
        if prev.chars().count() + 1 + next_word <= wrap_chars && !prev.ends_with(',') {
            return false;
        }
        self.scratch.clear();
        push_winansi(prev, &mut self.scratch);
        Font::Regular.units(&self.scratch) >= floor
    }

    /// Wraps the paragraph collected in `para` into lines.
    fn flush(&mut self, block: Block) {
        if block == Block::None || self.para.is_empty() {
            self.para.clear();
            return;
        }
        let width = match block {
            Block::Bullet => TEXT_W - BULLET_INDENT,
            _ => TEXT_W,
        };
        let max = (width * 1000.0 / BODY_SIZE) as u32;
        let space = Font::Regular.advance(b' ');
        let para = std::mem::take(&mut self.para);
        let mut first = true;
        let mut line_start = self.text.len();
        let mut line_units = 0u32;
        let emit = |this: &mut Self, line_start: &mut usize, first: &mut bool| {
            let kind = match (block, *first) {
                (Block::Bullet, true) => LineKind::Bullet,
                (Block::Bullet, false) => LineKind::BulletMore,
                _ => LineKind::Text,
            };
            this.lines.push(BodyLine {
                kind,
                start: *line_start,
                end: this.text.len(),
            });
            *line_start = this.text.len();
            *first = false;
        };
        for word in para.split(|&b| b == b' ').filter(|w| !w.is_empty()) {
            let w = Font::Regular.units(word);
            let empty = self.text.len() == line_start;
            if !empty && line_units + space + w <= max {
                self.text.push(b' ');
                self.text.extend_from_slice(word);
                line_units += space + w;
                continue;
            }
            if !empty {
                emit(self, &mut line_start, &mut first);
                line_units = 0;
            }
            if w <= max {
                self.text.extend_from_slice(word);
                line_units = w;
                continue;
            }
            // A word wider than the line (a long URL): broken where it must.
            for &b in word {
                let a = Font::Regular.advance(b);
                if line_units + a > max && self.text.len() > line_start {
                    emit(self, &mut line_start, &mut first);
                    line_units = 0;
                }
                self.text.push(b);
                line_units += a;
            }
        }
        if self.text.len() > line_start {
            emit(self, &mut line_start, &mut first);
        }
        self.para = para;
        self.para.clear();
    }
}

// ----- the document ---------------------------------------------------------------

const CATALOG: Ref = Ref::new(1);
const ROOT: Ref = Ref::new(2);
const FONT_REGULAR: Ref = Ref::new(3);
const FONT_BOLD: Ref = Ref::new(4);
const INFO: Ref = Ref::new(5);
const FIRST_FREE: i32 = 6;
/// Pages per intermediate node of the page tree, so that no node has a
/// Kids array of a hundred thousand entries.
const PAGES_PER_NODE: usize = 64;

struct Doc {
    pdf: Pdf,
    next: i32,
    pages: Vec<Ref>,
    nodes: Vec<Ref>,
    stream: Stream,
    layout: Layout,
    scratch: Vec<u8>,
    first_lines: usize,
    next_lines: usize,
}

impl Doc {
    fn new(letters: usize) -> Self {
        let mut pdf =
            Pdf::with_settings_and_capacity(Settings { pretty: false }, 16 * 1024 + letters * 6000);
        pdf.set_version(1, 4);
        Self {
            pdf,
            next: FIRST_FREE,
            pages: Vec::with_capacity(letters * 2),
            nodes: Vec::new(),
            stream: Stream::new(),
            layout: Layout::new(),
            scratch: Vec::with_capacity(256),
            first_lines: lines_per_page(BODY_TOP_FIRST_MM),
            next_lines: lines_per_page(BODY_TOP_NEXT_MM),
        }
    }

    fn alloc(&mut self) -> Ref {
        let r = Ref::new(self.next);
        self.next += 1;
        r
    }

    /// Writes the pages of one letter; returns how many.
    fn letter(&mut self, l: &Letter) -> u32 {
        self.layout.body(&l.body);
        // Page of each body line; a blank line at the top of a page is dropped.
        let mut breaks = vec![0usize];
        let mut used = 0;
        let mut cap = self.first_lines;
        let mut skip_blank = Vec::with_capacity(4);
        for (i, line) in self.layout.lines.iter().enumerate() {
            if used == cap {
                breaks.push(i);
                used = 0;
                cap = self.next_lines;
            }
            if used == 0 && i > 0 && matches!(line.kind, LineKind::Blank) {
                skip_blank.push(i);
                continue;
            }
            used += 1;
        }
        let total = breaks.len();
        breaks.push(self.layout.lines.len());
        for p in 0..total {
            self.stream.reset();
            self.marks();
            if p == 0 {
                self.first_page_head(l);
            } else {
                self.continuation_head(l);
            }
            let top = if p == 0 {
                BODY_TOP_FIRST_MM
            } else {
                BODY_TOP_NEXT_MM
            };
            let mut y = first_baseline(top, BODY_SIZE);
            for i in breaks[p]..breaks[p + 1] {
                if skip_blank.contains(&i) {
                    continue;
                }
                let line = self.layout.lines[i];
                let text = &self.layout.text[line.start..line.end];
                match line.kind {
                    LineKind::Blank => {}
                    LineKind::Text => {
                        self.stream
                            .text(Font::Regular, BODY_SIZE, 0.0, LEFT, y, text)
                    }
                    LineKind::Bullet | LineKind::BulletMore => {
                        if matches!(line.kind, LineKind::Bullet) {
                            self.stream.text(
                                Font::Regular,
                                BODY_SIZE,
                                0.0,
                                LEFT + 1.5 * MM,
                                y,
                                &[0x95],
                            );
                        }
                        self.stream.text(
                            Font::Regular,
                            BODY_SIZE,
                            0.0,
                            LEFT + BULLET_INDENT,
                            y,
                            text,
                        );
                    }
                }
                y -= LEADING;
            }
            self.footer(p + 1, total);
            self.stream.end_text();
            self.write_page();
        }
        total as u32
    }

    /// Fold and punch marks, then the start of the page's text object.
    fn marks(&mut self) {
        let s = &mut self.stream;
        s.stroke_style(0.5, 0.4);
        for mm in FOLD_MARKS_MM {
            s.line(4.0 * MM, from_top(mm), 9.0 * MM, from_top(mm));
        }
        s.line(
            4.0 * MM,
            from_top(PUNCH_MARK_MM),
            12.0 * MM,
            from_top(PUNCH_MARK_MM),
        );
    }

    fn first_page_head(&mut self, l: &Letter) {
        // Return-address line on the last line of the Vermerkzone, underlined.
        self.scratch.clear();
        push_winansi(&l.sender_line, &mut self.scratch);
        let (size, end) = fit(Font::Regular, &self.scratch, 7.0, 5.0, ADDRESS_W);
        let sender_y = from_top(VERMERK_BOTTOM_MM - 1.5);
        let sender_w = Font::Regular.width(&self.scratch[..end], size);
        if end > 0 {
            self.stream.stroke_style(0.3, 0.0);
            self.stream.line(
                ADDRESS_X,
                sender_y - 1.2,
                ADDRESS_X + sender_w,
                sender_y - 1.2,
            );
        }
        self.stream.begin_text();
        let sender = std::mem::take(&mut self.scratch);
        self.stream.text(
            Font::Regular,
            size,
            0.0,
            ADDRESS_X,
            sender_y,
            &sender[..end],
        );
        self.scratch = sender;

        // Address block: six lines at 10 pt fill the Anschriftzone; more
        // (up to nine) at 8 pt.
        let lines: Vec<&str> = l
            .address
            .iter()
            .map(|s| s.trim())
            .filter(|s| !s.is_empty())
            .take(9)
            .collect();
        let (size, leading) = if lines.len() > 6 {
            (8.0, 8.6)
        } else {
            (10.0, 12.0)
        };
        let mut y = first_baseline(VERMERK_BOTTOM_MM + 1.2, size);
        for line in lines {
            if y < from_top(ANSCHRIFT_BOTTOM_MM) {
                break;
            }
            self.fitted(Font::Regular, line, size, ADDRESS_X, y, ADDRESS_W, 0.0);
            y -= leading;
        }

        // Information block.
        let mut y = first_baseline(INFO_TOP_MM, INFO_SIZE);
        let lowest = from_top(BODY_TOP_FIRST_MM - 4.0);
        for (i, line) in l.info.iter().enumerate() {
            if y < lowest {
                break;
            }
            let font = if i == 0 { Font::Bold } else { Font::Regular };
            self.fitted(font, line, INFO_SIZE, INFO_X, y, INFO_W, 0.0);
            y -= INFO_LEADING;
        }
        if !l.info.is_empty() {
            y -= INFO_LEADING;
        }
        let y = y.max(lowest);
        let date = format!("Datum: {}", l.date);
        self.fitted(Font::Regular, &date, INFO_SIZE, INFO_X, y, INFO_W, 0.0);

        if let Some(logo) = l.logo.as_deref().map(str::trim).filter(|s| !s.is_empty()) {
            self.scratch.clear();
            push_winansi(logo, &mut self.scratch);
            let (size, end) = fit(Font::Bold, &self.scratch, LOGO_SIZE, 8.0, RIGHT - LEFT);
            let w = Font::Bold.width(&self.scratch[..end], size);
            let logo = std::mem::take(&mut self.scratch);
            self.stream.text(
                Font::Bold,
                size,
                0.0,
                RIGHT - w,
                from_top(LOGO_BASELINE_MM),
                &logo[..end],
            );
            self.scratch = logo;
        }
    }

    fn continuation_head(&mut self, l: &Letter) {
        self.stream.begin_text();
        let name = l.addressee();
        let head = if name.is_empty() {
            l.date.clone()
        } else {
            format!("{name} \u{b7} {}", l.date)
        };
        self.fitted(
            Font::Regular,
            &head,
            SMALL,
            LEFT,
            from_top(HEADER_BASELINE_MM),
            TEXT_W,
            0.35,
        );
    }

    fn footer(&mut self, page: usize, of: usize) {
        self.scratch.clear();
        self.scratch.extend_from_slice(b"Seite ");
        push_uint(&mut self.scratch, page as u64);
        self.scratch.extend_from_slice(b" von ");
        push_uint(&mut self.scratch, of as u64);
        let w = Font::Regular.width(&self.scratch, SMALL);
        let text = std::mem::take(&mut self.scratch);
        self.stream.text(
            Font::Regular,
            SMALL,
            0.35,
            RIGHT - w,
            from_top(FOOTER_BASELINE_MM),
            &text,
        );
        self.scratch = text;
    }

    /// Shows `text` at (`x`, `y`), shrunk (to at most 70 %) and then cut to fit `max_w`.
    #[allow(clippy::too_many_arguments)]
    fn fitted(&mut self, font: Font, text: &str, size: f32, x: f32, y: f32, max_w: f32, gray: f32) {
        self.scratch.clear();
        push_winansi(text, &mut self.scratch);
        let (size, end) = fit(font, &self.scratch, size, size * 0.7, max_w);
        let bytes = std::mem::take(&mut self.scratch);
        self.stream.text(font, size, gray, x, y, &bytes[..end]);
        self.scratch = bytes;
    }

    fn write_page(&mut self) {
        if self.pages.len() % PAGES_PER_NODE == 0 {
            let node = self.alloc();
            self.nodes.push(node);
        }
        let parent = self.nodes[self.nodes.len() - 1];
        let page = self.alloc();
        let content = self.alloc();
        self.pages.push(page);
        self.pdf.stream(content, &self.stream.buf);
        self.pdf.page(page).parent(parent).contents(content);
    }

    fn finish(mut self) -> Vec<u8> {
        for (node, kids) in self.nodes.iter().zip(self.pages.chunks(PAGES_PER_NODE)) {
            self.pdf
                .pages(*node)
                .parent(ROOT)
                .kids(kids.iter().copied())
                .count(kids.len() as i32);
        }
        let mut root = self.pdf.pages(ROOT);
        root.kids(self.nodes.iter().copied())
            .count(self.pages.len() as i32)
            .media_box(Rect::new(0.0, 0.0, PAGE_W, PAGE_H));
        root.resources()
            .fonts()
            .pair(Name(b"F1"), FONT_REGULAR)
            .pair(Name(b"F2"), FONT_BOLD);
        root.finish();
        for (id, name) in [(FONT_REGULAR, "Helvetica"), (FONT_BOLD, "Helvetica-Bold")] {
            self.pdf
                .type1_font(id)
                .base_font(Name(name.as_bytes()))
                .encoding_predefined(Name(b"WinAnsiEncoding"));
        }
        self.pdf.catalog(CATALOG).pages(ROOT);
        self.pdf
            .document_info(INFO)
            .producer(TextStr("Touchpoint letter batch"));
        self.pdf.finish()
    }
}

#[cfg(test)]
mod tests;
