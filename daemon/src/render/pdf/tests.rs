#![allow(clippy::unwrap_used)]

use super::*;

pub(crate) fn sample(message: u64, name: &str, body: &str) -> Letter {
    Letter {
        message,
        recipient: format!("K{message:05}"),
        address: vec![
            name.to_string(),
            "Lindenstraße 12".into(),
            "38440 Wolfsburg".into(),
        ],
        postcode: "38440".into(),
        sender_line: "Autohaus Müller · Hauptstr. 1 · 38440 Wolfsburg".into(),
        info: vec![
            "Autohaus Müller GmbH".into(),
            "Telefon 05361 12345".into(),
            "service@autohaus-mueller.de".into(),
            "Mo–Fr 7:30–18:00 · Sa 9–13".into(),
        ],
        logo: Some("AUTOHAUS MÜLLER".into()),
        date: "23.11.2026".into(),
        body: body.to_string(),
    }
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

fn count(hay: &[u8], needle: &[u8]) -> usize {
    hay.windows(needle.len()).filter(|w| *w == needle).count()
}

#[test]
fn winansi_maps_german_text_and_replaces_the_rest() {
    assert_eq!(
        encode_winansi("Müller Ä Ö Ü ä ö ß € – „x“ ·"),
        b"M\xfcller \xc4 \xd6 \xdc \xe4 \xf6 \xdf \x80 \x96 \x84x\x93 \xb7"
    );
    assert_eq!(encode_winansi("日本 ✓\tx"), b"?? ? x");
    // Decomposed u + combining diaeresis composes to ü.
    assert_eq!(encode_winansi("Mu\u{308}ller"), b"M\xfcller");
    assert_eq!(encode_winansi("Ab\u{ad}satz"), b"Absatz");
}

#[test]
fn widths_are_helvetica_metrics() {
    assert_eq!(Font::Regular.advance(b' '), 278);
    assert_eq!(Font::Regular.advance(b'W'), 944);
    assert_eq!(Font::Regular.advance(0xfc), 556); // ü
    assert_eq!(Font::Regular.advance(0xdf), 611); // ß
    assert_eq!(Font::Regular.advance(0x80), 556); // €
    assert_eq!(Font::Bold.advance(b'i'), 278);
    assert_eq!(Font::Bold.advance(b'm'), 889);
    assert_eq!(Font::Regular.units(b"Hallo"), 722 + 556 + 222 + 222 + 556);
}

#[test]
fn umlauts_are_written_as_winansi_bytes() {
    let body = "Sehr geehrte Frau Müller,\n\nIhre Inspektion ist fällig. Grüße aus Köln – 100 €.";
    let (pdf, pages) = render_batch(&[sample(1, "Jürgen Müller", body)]);
    assert_eq!(pages, [1]);
    assert!(pdf.starts_with(b"%PDF-1.4"));
    for needle in [
        &b"J\xfcrgen M\xfcller"[..],
        b"Lindenstra\xdfe 12",
        b"Sehr geehrte Frau M\xfcller,",
        b"Gr\xfc\xdfe aus K\xf6ln \x96 100 \x80.",
        b"AUTOHAUS M\xdcLLER",
        b"Autohaus M\xfcller \xb7 Hauptstr. 1",
        b"Datum: 23.11.2026",
        b"(Seite 1 von 1)",
        b"/BaseFont/Helvetica-Bold",
        b"/Encoding/WinAnsiEncoding",
    ] {
        assert!(
            contains(&pdf, needle),
            "{:?}",
            String::from_utf8_lossy(needle)
        );
    }
    // One font object per face for the whole document.
    assert_eq!(count(&pdf, b"/Type/Font"), 2);
}

#[test]
fn long_letters_break_into_numbered_pages() {
    let para = "Mit der Inspektion nach Herstellervorgabe bleiben Ihre Garantie- und \
                    Kulanzansprüche erhalten, und Sie fahren sicher und wirtschaftlich.";
    let long: String = (0..40).map(|_| format!("{para}\n\n")).collect();
    let short = "Guten Tag,\n\nkurz und bündig.";
    let (pdf, pages) = render_batch(&[
        sample(1, "A", short),
        sample(2, "B", &long),
        sample(3, "C", short),
    ]);
    // Each paragraph wraps to two lines plus a blank: 40 * 3 - 1 lines.
    let lines = 40 * 3 - 1;
    let first = lines_per_page(BODY_TOP_FIRST_MM);
    let next = lines_per_page(BODY_TOP_NEXT_MM);
    assert!(first < lines);
    let expected = 1 + (lines - first).div_ceil(next) as u32;
    assert!(expected >= 3, "{expected}");
    assert_eq!(pages, [1, expected, 1]);
    let total = 2 + expected as usize;
    assert_eq!(count(&pdf, b"/Type/Page/"), total);
    assert!(contains(
        &pdf,
        format!("/Kids[6 0 R]/Count {total}").as_bytes()
    ));
    for n in 1..=expected {
        let s = format!("(Seite {n} von {expected})");
        assert_eq!(count(&pdf, s.as_bytes()), 1, "{s}");
    }
    assert_eq!(count(&pdf, b"(Seite 1 von 1)"), 2);
    // Continuation pages carry the addressee and date.
    assert_eq!(count(&pdf, "(B \u{b7} 23.11.2026)".as_bytes()), 0);
    assert_eq!(count(&pdf, b"(B \xb7 23.11.2026)"), expected as usize - 1);
}

#[test]
fn output_is_deterministic() {
    let letters = [sample(1, "Anna", "Hallo"), sample(2, "Bert", "Welt")];
    assert_eq!(render_batch(&letters), render_batch(&letters));
}

#[test]
fn source_wrapping_is_reflowed_and_short_lines_are_kept() {
    let mut layout = Layout::new();
    layout.body(
        "Ihr Nordwagen hat sich eine Pause verdient: Nach unseren Unterlagen ist die\n\
             nächste Inspektion bald fällig.\n\
             \n\
             \x20 - Inspektion für Ihren Aurora: fällig am 15.07.2026\n\
             \x20 - HU für Ihren Boreas: fällig am 01.08.2026\n\
             \n\
             Mit freundlichen Grüßen\n\
             \n\
             Ihr Serviceteam\n\
             Autohaus Müller\n\n\n",
    );
    let lines: Vec<(String, &str)> = layout
        .lines
        .iter()
        .map(|l| {
            let text: String = layout.text[l.start..l.end]
                .iter()
                .map(|&b| char::from(b))
                .collect();
            let kind = match l.kind {
                LineKind::Blank => "blank",
                LineKind::Text => "text",
                LineKind::Bullet => "bullet",
                LineKind::BulletMore => "more",
            };
            (text, kind)
        })
        .collect();
    let expect = [
            ("Ihr Nordwagen hat sich eine Pause verdient: Nach unseren Unterlagen ist die n\u{e4}chste", "text"),
            ("Inspektion bald f\u{e4}llig.", "text"),
            ("", "blank"),
            ("Inspektion f\u{fc}r Ihren Aurora: f\u{e4}llig am 15.07.2026", "bullet"),
            ("HU f\u{fc}r Ihren Boreas: f\u{e4}llig am 01.08.2026", "bullet"),
            ("", "blank"),
            ("Mit freundlichen Gr\u{fc}\u{df}en", "text"),
            ("", "blank"),
            ("Ihr Serviceteam", "text"),
            ("Autohaus M\u{fc}ller", "text"),
        ];
    let got: Vec<(&str, &str)> = lines.iter().map(|(t, k)| (t.as_str(), *k)).collect();
    assert_eq!(got, expect);
}

#[test]
fn wrapped_lines_fit_the_text_width() {
    let mut layout = Layout::new();
    let word = "Kulanzansprüche ";
    let body = format!(
        "{}\n- {}\n{}",
        word.repeat(60),
        word.repeat(30),
        "x".repeat(400)
    );
    layout.body(&body);
    assert!(layout.lines.len() > 10);
    for l in &layout.lines {
        let w = Font::Regular.width(&layout.text[l.start..l.end], BODY_SIZE);
        let max = match l.kind {
            LineKind::Bullet | LineKind::BulletMore => TEXT_W - BULLET_INDENT,
            _ => TEXT_W,
        };
        assert!(w <= max + 0.01, "{w} > {max}");
    }
    assert!(layout
        .lines
        .iter()
        .any(|l| matches!(l.kind, LineKind::BulletMore)));
}

#[test]
fn special_characters_are_escaped_in_strings() {
    let (pdf, _) = render_batch(&[sample(1, "A", "Rechnung (FIN WNW123) C:\\pfad")]);
    assert!(contains(&pdf, br"(Rechnung \(FIN WNW123\) C:\\pfad)"));
}

#[test]
fn too_long_lines_shrink_then_cut() {
    let text = b"Autohaus Mustermann GmbH & Co. KG \xb7 Industriestra\xdfe 123 \xb7 12345 Musterstadt-Nord";
    let (size, end) = fit(Font::Regular, text, 7.0, 5.0, ADDRESS_W);
    assert!((5.0..7.0).contains(&size));
    assert_eq!(end, text.len());
    let (size, end) = fit(Font::Regular, &text.repeat(3), 7.0, 5.0, ADDRESS_W);
    assert_eq!(size, 5.0);
    assert!(end < text.len() * 3);
    assert!(Font::Regular.width(&text.repeat(3)[..end], 5.0) <= ADDRESS_W);
}

#[test]
fn addressee_skips_a_salutation_line() {
    let mut l = sample(1, "Frau", "");
    l.address.insert(1, "Änne Müller".into());
    assert_eq!(l.addressee(), "Änne Müller");
    let l = sample(1, "Autohaus Süd GmbH", "");
    assert_eq!(l.addressee(), "Autohaus Süd GmbH");
    let mut l = sample(1, "", "");
    l.address.clear();
    assert_eq!(l.addressee(), "");
}
