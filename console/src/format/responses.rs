//! `touchpoint responses`: a tenant's responses and where attribution
//! credits each, or why it credits it to nothing; as text and as CSV (the
//! JSON is the daemon's answer as it is).

use std::fmt::Write as _;

use touchpoint_common::report::{ResponseLine, ResponseList, ResponseVerdict};

use super::visible::visible;

fn verdict(v: &ResponseVerdict) -> String {
    match v {
        ResponseVerdict::Message { id, sent } => format!("message #{id}, sent {sent}"),
        ResponseVerdict::Control { id, sent } => {
            format!("control record #{id}, would have gone out {sent}")
        }
        ResponseVerdict::Organic { why } => format!("organic: {why}"),
    }
}

fn value(l: &ResponseLine) -> String {
    l.value.map(|v| format!("{v} €")).unwrap_or_default()
}

fn who(l: &ResponseLine) -> String {
    let mut s = if l.recipient.is_empty() {
        "unknown".to_string()
    } else {
        l.recipient.clone()
    };
    if !l.vin.is_empty() {
        let _ = write!(s, " {}", l.vin);
    }
    s
}

/// Two lines per response: what and whose, then the verdict, indented.
pub fn responses(list: &ResponseList) -> String {
    let mut out = format!(
        "{} response{}: {} credited to messages, {} to control records, {} organic\n",
        list.matched,
        if list.matched == 1 { "" } else { "s" },
        list.to_messages,
        list.to_control,
        list.organic
    );
    if (list.lines.len() as u64) < list.matched {
        let _ = writeln!(out, "newest {} shown (--limit)", list.lines.len());
    }
    for l in &list.lines {
        let _ = writeln!(
            out,
            "{}  {:<16} {}  {}{}",
            l.date,
            l.kind.name(),
            visible(&who(l)),
            visible(&l.source),
            match value(l) {
                v if v.is_empty() => v,
                v => format!("  {v}"),
            }
        );
        let _ = writeln!(out, "            → {}", visible(&verdict(&l.verdict)));
    }
    out
}

/// One row per response, cells made safe for spreadsheets.
pub fn responses_csv(list: &ResponseList) -> Result<String, csv::Error> {
    use touchpoint_common::csv_out::{Cell, CsvOut};
    let mut w = CsvOut::new(
        &[
            "date",
            "kind",
            "customer",
            "vin",
            "value",
            "source",
            "credited_to",
            "message",
            "sent",
            "why",
        ],
        160 * (list.lines.len() + 1),
    )?;
    for l in &list.lines {
        let (to, id, sent, why) = match &l.verdict {
            ResponseVerdict::Message { id, sent } => {
                ("message", id.to_string(), sent.to_string(), String::new())
            }
            ResponseVerdict::Control { id, sent } => {
                ("control", id.to_string(), sent.to_string(), String::new())
            }
            ResponseVerdict::Organic { why } => {
                ("nothing", String::new(), String::new(), why.clone())
            }
        };
        let value = l.value.map(|v| v.to_string()).unwrap_or_default();
        let date = l.date.to_string();
        let cells: [&str; 10] = [
            &date,
            l.kind.name(),
            &l.recipient,
            &l.vin,
            &value,
            &l.source,
            to,
            &id,
            &sent,
            &why,
        ];
        let row: Vec<Cell> = cells.iter().map(|c| Cell::from(*c)).collect();
        w.row(&row)?;
    }
    String::from_utf8(w.finish()?)
        .map_err(|e| csv::Error::from(std::io::Error::new(std::io::ErrorKind::InvalidData, e)))
}

#[cfg(test)]
mod tests {
    use touchpoint_common::money::Money;
    use touchpoint_common::report::ResponseKind;
    use touchpoint_common::Date;

    use super::*;

    /// Customer numbers and sources come from dealers' files: neither a
    /// terminal nor a spreadsheet may act on them.
    #[test]
    fn dealer_texts_are_shown_inert_in_the_terminal_and_the_spreadsheet() {
        let day = Date::from_ymd(2027, 1, 8).expect("day");
        let list = ResponseList {
            lines: vec![
                ResponseLine {
                    recipient: "=HYPERLINK(\"x\")".into(),
                    vin: String::new(),
                    kind: ResponseKind::ServiceVisit,
                    date: day,
                    value: Some(Money(41_200)),
                    source: "w\u{1b}[2J.csv:2".into(),
                    verdict: ResponseVerdict::Message { id: 17, sent: day },
                },
                ResponseLine {
                    recipient: String::new(),
                    vin: "WVWZZZ1KZ6W000099".into(),
                    kind: ResponseKind::Appointment,
                    date: day,
                    value: None,
                    source: "a.csv:3".into(),
                    verdict: ResponseVerdict::Organic {
                        why: "walk-in".into(),
                    },
                },
            ],
            matched: 3,
            to_messages: 1,
            to_control: 0,
            organic: 2,
        };
        let text = responses(&list);
        assert_eq!(
            text,
            "3 responses: 1 credited to messages, 0 to control records, 2 organic\n\
             newest 2 shown (--limit)\n\
             2027-01-08  service visit    =HYPERLINK(\"x\")  w\\u{1b}[2J.csv:2  412.00 €\n\
             \x20           → message #17, sent 2027-01-08\n\
             2027-01-08  appointment      unknown WVWZZZ1KZ6W000099  a.csv:3\n\
             \x20           → organic: walk-in\n"
        );
        let csv = responses_csv(&list).expect("csv");
        let first = csv.lines().nth(1).expect("row");
        assert!(first.contains("\"'=HYPERLINK(\"\"x\"\")\""), "{csv}");
        assert!(
            csv.lines().nth(2).expect("row").contains("\"nothing\""),
            "{csv}"
        );
    }
}
