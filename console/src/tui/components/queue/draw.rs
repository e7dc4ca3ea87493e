//! Drawing the queue: the filter line, the list (only the rows on screen
//! are built) and the message detail with its content, why and history.

use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Style, Stylize};
use ratatui::text::{Line, Span, Text};
use ratatui::widgets::{Cell, Paragraph, Row, Table, Wrap};
use ratatui::Frame;
use touchpoint_common::domain::Channel;
use touchpoint_common::outbox::Message;
use touchpoint_common::protocol::{MessageContent, QueueRow};
use touchpoint_common::queue::SortKey;

use super::QueueView;
use crate::format;
use crate::tui::hits::Hits;
use crate::tui::widgets::{
    dim, euro, hang, header_row, page_top, pane, right, status_style, thousands, WIDE,
};

impl QueueView {
    /// Paints the view into `area`; changes nothing; records the list's
    /// rows and the detail pane in `hits`.
    pub fn draw(&self, frame: &mut Frame, area: Rect, hits: &mut Hits) {
        let [bar, main] = Layout::vertical([Constraint::Length(1), Constraint::Min(0)]).areas(area);
        draw_filter_bar(frame, bar, self);
        if self.detail_beside(area.width) {
            let [list, detail] =
                Layout::horizontal([Constraint::Percentage(55), Constraint::Percentage(45)])
                    .spacing(2)
                    .areas(main);
            draw_list(frame, list, self, hits);
            draw_detail(frame, detail, self);
            hits.detail = Some(detail);
        } else if self.detail_open {
            draw_detail(frame, main, self);
            hits.detail = Some(main);
        } else {
            draw_list(frame, main, self, hits);
        }
    }
}

fn draw_filter_bar(frame: &mut Frame, area: Rect, q: &QueueView) {
    let mut spans = vec![Span::from(" / ").reversed()];
    if q.filter.is_empty() {
        spans.push(Span::from(" all messages").style(dim()));
    } else {
        spans.push(Span::from(format!(" {}", q.filter)).bold());
    }
    if let Some(p) = &q.page {
        spans.push(Span::from(format!("  {} ", thousands(p.total))).bold());
        spans.push(Span::from("match"));
        for (status, n) in &p.counts {
            spans.push(Span::from(" · "));
            spans.push(
                Span::from(format!("{} {}", status, thousands(*n))).style(status_style(*status)),
            );
        }
    }
    if !q.marks.is_empty() {
        spans.push(
            Span::from(format!("  ◆ {} marked", q.marks.len()))
                .yellow()
                .bold(),
        );
    }
    frame.render_widget(Paragraph::new(Line::from(spans)), area);
}

/// The order in words, as the list's title shows it.
fn order(q: &QueueView) -> String {
    let s = q.filter.sort;
    let (words, arrow) = match s.key {
        SortKey::Time => ("send time", if s.reversed { "↑" } else { "↓" }),
        SortKey::Tenant => ("tenant", if s.reversed { "↓" } else { "↑" }),
        SortKey::Status => ("status", if s.reversed { "↓" } else { "↑" }),
        SortKey::Cost => ("cost", if s.reversed { "↑" } else { "↓" }),
    };
    format!("by {words} {arrow}")
}

fn draw_list(frame: &mut Frame, area: Rect, q: &QueueView, hits: &mut Hits) {
    let total = q.total();
    let title = match (&q.page, &q.error) {
        (_, Some(_)) => " Messages (refused) ".to_string(),
        (Some(_), None) if total == 0 => " Messages (none match) ".to_string(),
        (Some(_), None) => format!(
            " Messages {} of {} · {} ",
            thousands(q.selected + 1),
            thousands(total),
            order(q)
        ),
        (None, None) => " Messages (loading…) ".to_string(),
    };
    let block = pane(title, !q.detail_open || area.width >= WIDE);
    let inner_rows = usize::from(area.height.saturating_sub(2));
    hits.list_pane = Some(area);
    if let Some(e) = &q.error {
        let text = vec![
            Line::from(format!("The daemon refused this filter: {e}")).red(),
            Line::from(""),
            Line::from("/ edits the filter, Esc clears it.").style(dim()),
        ];
        frame.render_widget(
            Paragraph::new(text).block(block).wrap(Wrap { trim: false }),
            area,
        );
        return;
    }
    let wide = area.width >= 100;
    let mut head: Vec<(&'static str, bool)> = vec![
        (" ", false),
        ("Tenant", false),
        ("#", true),
        ("Status", false),
        ("Ch", false),
        ("Service", false),
        ("Send on", false),
        ("Customer", false),
    ];
    let mut widths = vec![
        Constraint::Length(1),
        Constraint::Length(6),
        Constraint::Length(7),
        Constraint::Length(9),
        Constraint::Length(5),
        Constraint::Length(14),
        Constraint::Length(10),
        Constraint::Fill(1),
    ];
    if wide {
        // Send time beside the day, the cost, and where it goes.
        head.insert(7, ("At", false));
        widths.insert(7, Constraint::Length(5));
        head.extend([("Cost", true), ("Att", true), ("Address / answer", false)]);
        // As much room for the address as for the customer.
        widths.extend([
            Constraint::Length(8),
            Constraint::Length(3),
            Constraint::Fill(1),
        ]);
    }
    let Some(page) = &q.page else {
        frame.render_widget(Paragraph::new("asking the daemon…").block(block), area);
        return;
    };
    if total == 0 {
        let text = if q.filter.is_empty() {
            "The outbox is empty: nothing planned yet.".to_string()
        } else {
            "No message matches. / edits the filter, Esc clears it.".to_string()
        };
        frame.render_widget(Paragraph::new(text).block(block), area);
        return;
    }
    let selected = usize::try_from(q.selected).unwrap_or(usize::MAX);
    let top = page_top(selected, inner_rows.max(1));
    let shown = usize::try_from(total)
        .unwrap_or(usize::MAX)
        .saturating_sub(top);
    hits.table(area, block.inner(area), top, shown.min(inner_rows));
    // Only the rows on screen are built.
    let rows = (top..top + inner_rows)
        .take_while(|i| (*i as u64) < total)
        .map(|i| {
            let row = (i as u64)
                .checked_sub(page.offset)
                .and_then(|k| page.rows.get(usize::try_from(k).ok()?));
            let is_selected = i == selected;
            match row {
                Some(r) => queue_row(r, q.marks.contains(&(r.tenant.clone(), r.id)), wide).style(
                    if is_selected {
                        Style::new().reversed()
                    } else {
                        Style::new()
                    },
                ),
                None => Row::new(vec![Cell::from(""), Cell::from("…")]).style(dim()),
            }
        });
    frame.render_widget(
        Table::new(rows, widths)
            .header(header_row(&head))
            .block(block)
            .column_spacing(1),
        area,
    );
}

fn queue_row(r: &QueueRow, marked: bool, wide: bool) -> Row<'static> {
    let customer = if r.name.is_empty() {
        r.recipient.clone()
    } else {
        format!("{} {}", r.recipient, r.name)
    };
    let mut cells = vec![
        if marked {
            Cell::from("◆").yellow().bold()
        } else {
            Cell::from(" ")
        },
        Cell::from(r.tenant.to_string()),
        right(r.id.to_string()),
        Cell::from(r.status.as_str()).style(status_style(r.status)),
        Cell::from(r.channel.as_str()),
        Cell::from(r.service.clone()),
        Cell::from(r.send_on.to_string()),
    ];
    if wide {
        cells.push(Cell::from(format!(
            "{:02}:{:02}",
            r.send_at / 60,
            r.send_at % 60
        )));
    }
    cells.push(Cell::from(customer));
    if wide {
        cells.push(right(euro(r.cost)));
        cells.push(right(if r.attempts > 0 {
            r.attempts.to_string()
        } else {
            String::new()
        }));
        cells.push(if r.last_error.is_empty() {
            // The address used once dispatch chose it (an email's); a
            // letter's, and any before dispatch, is shown as its town.
            Cell::from(match r.channel {
                Channel::Email if !r.address.is_empty() => r.address.clone(),
                _ if !r.town.is_empty() => r.town.clone(),
                _ => r.address.clone(),
            })
        } else {
            Cell::from(r.last_error.clone()).red()
        });
    }
    Row::new(cells)
}

fn draw_detail(frame: &mut Frame, area: Rect, q: &QueueView) {
    let Some(row) = q.selected_row() else {
        frame.render_widget(
            Paragraph::new("No message selected.").block(pane(" Message ".into(), false)),
            area,
        );
        return;
    };
    let title = format!(" {} #{} ", row.tenant, row.id);
    let block = pane(title, q.detail_open);
    // Wrapped here, once, to the pane's width: continuation lines keep
    // their indent, and the number of lines is known, so scrolling stops
    // at the end.
    let width = usize::from(block.inner(area).width.max(1));
    let height = block.inner(area).height;
    let mut lines: Vec<Line> = Vec::new();
    hang(
        &mut lines,
        vec![
            Span::from(row.status.as_str()).style(status_style(row.status)),
            Span::from(" "),
        ],
        row.status.as_str().chars().count() + 1,
        &format!(
            "· {} · {} · send {} {:02}:{:02} · {}",
            row.channel,
            row.service,
            row.send_on,
            row.send_at / 60,
            row.send_at % 60,
            euro(row.cost)
        ),
        Style::new(),
        width,
    );
    let customer = if row.name.is_empty() {
        row.recipient.clone()
    } else {
        format!("{} ({})", row.name, row.recipient)
    };
    hang(
        &mut lines,
        vec![Span::from("to ")],
        3,
        &format!("{customer} {}", row.address),
        Style::new(),
        width,
    );
    match q.current_content() {
        Some(c) => content_lines(c, &mut lines, width),
        None => lines.push(Line::from("content: loading…").style(dim())),
    }
    match q.current_detail() {
        Some(m) => message_lines(m, &mut lines, width),
        None => lines.push(Line::from("why and history: loading…").style(dim())),
    }
    let max = u16::try_from(lines.len())
        .unwrap_or(u16::MAX)
        .saturating_sub(height);
    q.detail_max.set(max);
    frame.render_widget(
        Paragraph::new(Text::from(lines))
            .block(block)
            .scroll((q.detail_scroll.min(max), 0)),
        area,
    );
}

fn section(lines: &mut Vec<Line<'static>>, title: &str) {
    lines.push(Line::from(""));
    lines.push(Line::from(title.to_string()).bold().underlined());
}

/// A template's text as paragraphs: lines its author broke to fill a
/// width join their paragraph again (the pane wraps them to its own
/// width); a short line (an address line, a greeting, a signature), a
/// blank line and a list item keep their breaks.
pub(super) fn reflow(text: &str) -> Vec<String> {
    /// A line at least this long was broken to fill a width.
    const FILLED: usize = 50;
    let item = |l: &str| {
        let l = l.trim_start();
        ["- ", "• ", "* ", "– "].iter().any(|m| l.starts_with(m))
    };
    let mut out = Vec::new();
    let mut cur = String::new();
    for line in text.lines() {
        let t = line.trim_end();
        if t.trim().is_empty() {
            if !cur.is_empty() {
                out.push(std::mem::take(&mut cur));
            }
            out.push(String::new());
            continue;
        }
        if item(t) && !cur.is_empty() {
            out.push(std::mem::take(&mut cur));
        }
        if cur.is_empty() {
            cur.push_str(t);
        } else {
            cur.push(' ');
            cur.push_str(t.trim_start());
        }
        if t.chars().count() < FILLED {
            out.push(std::mem::take(&mut cur));
        }
    }
    if !cur.is_empty() {
        out.push(cur);
    }
    out
}

/// The content whole: the pane scrolls.
fn content_lines(c: &MessageContent, lines: &mut Vec<Line<'static>>, width: usize) {
    section(lines, "Content");
    hang(lines, Vec::new(), 0, &c.note, dim(), width);
    if !c.subject.is_empty() {
        hang(
            lines,
            vec![Span::from("Subject: ").bold()],
            9,
            &c.subject,
            Style::new(),
            width,
        );
    }
    for para in reflow(&c.text) {
        if para.is_empty() {
            lines.push(Line::from(""));
            continue;
        }
        // A paragraph keeps its own leading indent on every line.
        let lead = para.chars().take_while(|c| *c == ' ').count();
        hang(
            lines,
            vec![Span::from(" ".repeat(lead))],
            lead,
            &para,
            Style::new(),
            width,
        );
    }
}

fn message_lines(m: &Message, lines: &mut Vec<Line<'static>>, width: usize) {
    section(lines, "Why");
    for o in &m.occasions {
        hang(
            lines,
            vec![Span::from("• ")],
            2,
            &format!("{} due {}: {}", o.service, o.due, o.reason),
            Style::new(),
            width,
        );
    }
    for w in &m.why {
        hang(
            lines,
            vec![Span::from(format!("{:>13} ", w.step.as_str())).style(dim())],
            14,
            &w.text,
            Style::new(),
            width,
        );
    }
    section(lines, "History");
    for (at, status, why) in &m.history {
        let at = format!("{} ", format::time_short(*at));
        let n = at.chars().count() + 10;
        hang(
            lines,
            vec![
                Span::from(at).style(dim()),
                Span::from(format!("{status:<9} ")).style(status_style(*status)),
            ],
            n,
            why,
            Style::new(),
            width,
        );
    }
    let d = &m.dispatch;
    section(lines, "Dispatch");
    let mut facts = vec![format!("attempts {}", d.attempts)];
    if let Some(t) = d.retry_at {
        facts.push(format!("next try {}", format::time_short(t)));
    }
    if !d.batch.is_empty() {
        facts.push(format!("batch {}", d.batch));
    }
    if d.booked != 0 {
        facts.push(format!(
            "booked {} (brand {})",
            euro(d.booked),
            euro(d.brand_share)
        ));
    }
    if let Some(of) = d.fallback_of {
        facts.push(format!("replaces email #{of}"));
    }
    if let Some(to) = d.fallback_to {
        facts.push(format!("replaced by letter #{to}"));
    }
    if let Some(from) = d.held_from {
        facts.push(format!("held from {from}"));
    }
    hang(
        lines,
        Vec::new(),
        0,
        &facts.join(" · "),
        Style::new(),
        width,
    );
    if !d.last_error.is_empty() {
        hang(
            lines,
            vec![Span::from("last answer: ").red()],
            13,
            &d.last_error,
            Style::new().red(),
            width,
        );
    }
    hang(
        lines,
        Vec::new(),
        0,
        &format!("Message-ID {}", m.message_id),
        dim(),
        width,
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_filled_paragraph_joins_again_and_short_lines_keep_their_breaks() {
        let text = "Guten Tag Herr Fößel,\n\
                    \n\
                    Ihr Fahrzeug hat eine Pause verdient: am 20.03.2026 ist der\n\
                    Service fällig. Vereinbaren Sie einen Termin.\n\
                    - Inspektion nach Herstellervorgaben und ein Ölwechsel mit Filter\n\
                    - Prüfung der Bremsen\n\
                    \n\
                    Ihr Serviceteam\n\
                    Tim Fößel\n";
        assert_eq!(
            reflow(text),
            [
                "Guten Tag Herr Fößel,",
                "",
                "Ihr Fahrzeug hat eine Pause verdient: am 20.03.2026 ist der Service fällig. Vereinbaren Sie einen Termin.",
                "- Inspektion nach Herstellervorgaben und ein Ölwechsel mit Filter",
                "- Prüfung der Bremsen",
                "",
                "Ihr Serviceteam",
                "Tim Fößel",
            ]
        );
    }
}
