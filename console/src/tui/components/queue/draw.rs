//! Drawing the queue: the filter line, the list (only the rows on screen
//! are built) and the message detail with its content, why and history.

use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Style, Stylize};
use ratatui::text::{Line, Span, Text};
use ratatui::widgets::{Cell, Paragraph, Row, Table, Wrap};
use ratatui::Frame;
use touchpoint_common::outbox::{Message, MessageStatus};
use touchpoint_common::protocol::{MessageContent, QueueRow};

use super::QueueView;
use crate::format;
use crate::tui::widgets::{dim, euro, header_row, page_top, pane, right, thousands, WIDE};

pub fn status_style(s: MessageStatus) -> Style {
    match s {
        MessageStatus::Planned | MessageStatus::Rendered => Style::new(),
        MessageStatus::Queued | MessageStatus::Sending => Style::new().cyan(),
        MessageStatus::Deferred => Style::new().yellow(),
        MessageStatus::Sent => Style::new().green(),
        MessageStatus::Held => Style::new().magenta().bold(),
        MessageStatus::Failed => Style::new().red().bold(),
        MessageStatus::Fallback => Style::new().yellow(),
        MessageStatus::Cancelled | MessageStatus::Control => dim(),
    }
}

impl QueueView {
    /// Paints the view into `area`; changes nothing.
    pub fn draw(&self, frame: &mut Frame, area: Rect) {
        let [bar, main] = Layout::vertical([Constraint::Length(1), Constraint::Min(0)]).areas(area);
        draw_filter_bar(frame, bar, self);
        let wide = area.width >= WIDE;
        if wide {
            let [list, detail] =
                Layout::horizontal([Constraint::Percentage(55), Constraint::Percentage(45)])
                    .spacing(2)
                    .areas(main);
            draw_list(frame, list, self);
            draw_detail(frame, detail, self);
        } else if self.detail_open {
            draw_detail(frame, main, self);
        } else {
            draw_list(frame, main, self);
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

fn draw_list(frame: &mut Frame, area: Rect, q: &QueueView) {
    let total = q.total();
    let title = match &q.page {
        Some(_) if total == 0 => " Messages (none match) ".to_string(),
        Some(_) => format!(
            " Messages {} of {} ",
            thousands(q.selected + 1),
            thousands(total)
        ),
        None => " Messages (loading…) ".to_string(),
    };
    let block = pane(title, !q.detail_open || area.width >= WIDE);
    let inner_rows = usize::from(area.height.saturating_sub(2));
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
        head.extend([("Att", true), ("Address / last answer", false)]);
        // As much room for the address as for the customer.
        widths.extend([Constraint::Length(3), Constraint::Fill(1)]);
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
        Cell::from(customer),
    ];
    if wide {
        cells.push(right(if r.attempts > 0 {
            r.attempts.to_string()
        } else {
            String::new()
        }));
        cells.push(if r.last_error.is_empty() {
            Cell::from(r.address.clone())
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
    let mut lines: Vec<Line> = vec![Line::from(vec![
        Span::from(row.status.as_str()).style(status_style(row.status)),
        Span::from(format!(
            " · {} · {} · send {} {:02}:{:02} · {}",
            row.channel,
            row.service,
            row.send_on,
            row.send_at / 60,
            row.send_at % 60,
            euro(row.cost)
        )),
    ])];
    let customer = if row.name.is_empty() {
        row.recipient.clone()
    } else {
        format!("{} ({})", row.name, row.recipient)
    };
    lines.push(Line::from(format!("to {customer} {}", row.address)));
    match q.current_content() {
        Some(c) => content_lines(c, &mut lines),
        None => lines.push(Line::from("content: loading…").style(dim())),
    }
    match q.current_detail() {
        Some(m) => message_lines(m, &mut lines),
        None => lines.push(Line::from("why and history: loading…").style(dim())),
    }
    frame.render_widget(
        Paragraph::new(Text::from(lines))
            .block(block)
            .wrap(Wrap { trim: false })
            .scroll((q.detail_scroll, 0)),
        area,
    );
}

fn section(lines: &mut Vec<Line<'static>>, title: &str) {
    lines.push(Line::from(""));
    lines.push(Line::from(title.to_string()).bold().underlined());
}

/// Lines of the content shown before "more": the pane scrolls for the rest.
const CONTENT_LINES: usize = 12;

fn content_lines(c: &MessageContent, lines: &mut Vec<Line<'static>>) {
    section(lines, "Content");
    lines.push(Line::from(c.note.clone()).style(dim()));
    if !c.subject.is_empty() {
        lines.push(Line::from(vec![
            Span::from("Subject: ").bold(),
            Span::from(c.subject.clone()),
        ]));
    }
    let body: Vec<&str> = c.text.lines().collect();
    for l in body.iter().take(CONTENT_LINES) {
        lines.push(Line::from(l.to_string()));
    }
    if body.len() > CONTENT_LINES {
        lines.push(
            Line::from(format!("  … {} more lines", body.len() - CONTENT_LINES)).style(dim()),
        );
    }
}

fn message_lines(m: &Message, lines: &mut Vec<Line<'static>>) {
    section(lines, "Why");
    for o in &m.occasions {
        lines.push(Line::from(format!(
            "• {} due {}: {}",
            o.service, o.due, o.reason
        )));
    }
    for w in &m.why {
        lines.push(Line::from(vec![
            Span::from(format!("{:>13} ", w.step.as_str())).style(dim()),
            Span::from(w.text.clone()),
        ]));
    }
    section(lines, "History");
    for (at, status, why) in &m.history {
        lines.push(Line::from(vec![
            Span::from(format!("{} ", format::time_short(*at))).style(dim()),
            Span::from(format!("{status:<9} ")).style(status_style(*status)),
            Span::from(why.clone()),
        ]));
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
    lines.push(Line::from(facts.join(" · ")));
    if !d.last_error.is_empty() {
        lines.push(Line::from(format!("last answer: {}", d.last_error)).red());
    }
    lines.push(Line::from(format!("Message-ID {}", m.message_id)).style(dim()));
}
