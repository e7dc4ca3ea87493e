#![allow(clippy::unwrap_used)]

use super::*;

#[test]
fn formula_starts_are_led_by_a_quote_mark_and_kept() {
    for (raw, written) in [
        (
            "=HYPERLINK(\"http://x\";\"y\")",
            "'=HYPERLINK(\"http://x\";\"y\")",
        ),
        ("+1+cmd|' /C calc'!A0", "'+1+cmd|' /C calc'!A0"),
        ("-2+3", "'-2+3"),
        ("@SUM(A1)", "'@SUM(A1)"),
        ("＝1+1", "'＝1+1"),
        ("＠A1", "'＠A1"),
        // Blanks and control characters before the formula go first.
        ("  =1+1", "'=1+1"),
        ("\t=1+1", "'=1+1"),
        ("\r=1+1", "'=1+1"),
        ("\u{a0}=1+1", "'=1+1"),
        ("\n\t @x", "'@x"),
    ] {
        assert_eq!(text(raw), written, "{raw:?}");
    }
}

#[test]
fn plain_text_and_plain_numbers_stay_as_they_are() {
    for s in [
        "Jürgen Weiß",
        "-5",
        "+4989123456",
        "3,50",
        "-0.5",
        "2026-12-15",
        "d001.17",
        "a=b",
        "",
    ] {
        assert_eq!(text(s), s, "{s:?}");
        assert!(matches!(text(s), Cow::Borrowed(_)), "{s:?} was copied");
    }
    // Not plain numbers: quoted.
    for s in ["+49 89 1234567", "-1,2,3", "+", "-.5", "1-"] {
        assert!(
            !s.starts_with(FORMULA_START) || text(s).starts_with('\''),
            "{s:?}"
        );
    }
}

#[test]
fn a_cell_is_one_line() {
    assert_eq!(
        text("Müller\r\nGmbH\u{2028}& Co.\u{85}KG\u{0}"),
        "Müller  GmbH & Co. KG"
    );
}

#[test]
fn text_is_quoted_numbers_and_the_header_are_not() {
    let mut w = CsvOut::new(&["id", "name", "note", "cents"], 0).unwrap();
    w.row(&[
        Cell::from(17u64),
        Cell::from("Kundin;=1+2"),
        Cell::from("a \"quote\", a comma"),
        Cell::from(-95i64),
    ])
    .unwrap();
    w.row(&[
        Cell::from(18u64),
        Cell::from("=1+2"),
        Cell::from(""),
        Cell::from(0u32),
    ])
    .unwrap();
    let text = String::from_utf8(w.finish().unwrap()).unwrap();
    assert_eq!(
        text,
        "id,name,note,cents\n\
             17,\"Kundin;=1+2\",\"a \"\"quote\"\", a comma\",-95\n\
             18,\"'=1+2\",\"\",0\n"
    );
    // Any CSV reader gets the cells back.
    let mut r = csv::Reader::from_reader(text.as_bytes());
    let rows: Vec<Vec<String>> = r
        .records()
        .map(|r| r.unwrap().iter().map(str::to_string).collect())
        .collect();
    assert_eq!(
        rows[0],
        ["17", "Kundin;=1+2", "a \"quote\", a comma", "-95"]
    );
    assert_eq!(rows[1], ["18", "'=1+2", "", "0"]);
}
