//! One stored customer, full height: who they are and how to reach them,
//! consents with their source, vehicles with their stage and due dates,
//! workshop visits, merges, responses and messages, as the daemon answers
//! `Request::Customer` (the request `touchpoint customer` makes). Opened
//! with `c` on a message in the queue, or by [`crate::tui::app::App::open_customer`];
//! Esc goes back to the view it was opened from, Enter on a message shows
//! it in the queue.
//!
//! The lines are wrapped to the pane's width at word boundaries; the
//! cursor moves over them and the pane shows whole pages around it, like
//! the lists. Every text from the dealer's data or the daemon goes through
//! [`format::visible`]: control and bidi characters are written out, never
//! sent to the terminal.

use ratatui::layout::Rect;
use ratatui::style::{Style, Stylize};
use ratatui::text::{Line, Span, Text};
use ratatui::widgets::{Paragraph, Wrap};
use ratatui::Frame;
use touchpoint_common::domain::VehicleStage;
use touchpoint_common::protocol::{Changes, CustomerDetail, QueueFilter, Topic};
use touchpoint_common::{Date, TenantId};

use super::{move_selection, replace, Cmd, Screen};
use crate::format::{self, visible};
use crate::tui::action::{Action, View};
use crate::tui::msg::Fetch;
use crate::tui::widgets::{dim, euro, hang, page_top, pane, status_style, thousands};

#[derive(Clone, Debug, PartialEq)]
pub struct CustomerView {
    /// The tenant and customer number asked for.
    pub target: Option<(TenantId, String)>,
    pub detail: Option<CustomerDetail>,
    /// The daemon refused (an unknown customer, a tenant outside the
    /// caller's scope) or did not answer: shown in the pane.
    pub error: Option<String>,
    /// The line under the cursor.
    pub cursor: usize,
    /// The view it was opened from; Esc goes back there.
    pub back: View,
}

impl Default for CustomerView {
    fn default() -> Self {
        Self {
            target: None,
            detail: None,
            error: None,
            cursor: 0,
            back: View::Queue,
        }
    }
}

/// Lines the pane shows: the screen less the tab line, the footer and the
/// pane's title, two more than the queue's list, which has a filter line
/// and a table header besides (`App::resize`). A page for PgUp/PgDn.
fn rows(screen: Screen) -> usize {
    screen.page_rows + 2
}

/// One line of the pane, and the message it shows, if it does.
struct DetailLine {
    line: Line<'static>,
    message: Option<u64>,
}

impl CustomerView {
    /// Shows `customer` of `tenant` from now on, opened from `from`; the
    /// app asks for it ([`CustomerView::fetch`]).
    pub fn open(&mut self, tenant: TenantId, customer: String, from: View) {
        if from != View::Customer {
            self.back = from;
        }
        self.target = Some((tenant, customer));
        self.detail = None;
        self.error = None;
        self.cursor = 0;
    }

    /// Asks for the customer shown.
    pub fn fetch(&self, out: &mut Vec<Cmd>) {
        if let Some((tenant, customer)) = &self.target {
            out.push(Cmd::Fetch(Fetch::Customer {
                tenant: tenant.clone(),
                customer: customer.clone(),
            }));
        }
    }

    /// The message on the line under the cursor, at this width.
    pub fn message_at_cursor(&self, width: u16) -> Option<u64> {
        let d = self.detail.as_ref()?;
        lines(d, usize::from(width))
            .get(self.cursor)
            .and_then(|l| l.message)
    }

    /// A user action while the customer is on screen.
    pub fn update(&mut self, action: Action, screen: Screen, out: &mut Vec<Cmd>) {
        match action {
            a if a.is_move() => {
                let Some(d) = &self.detail else { return };
                let len = lines(d, usize::from(screen.width)).len();
                move_selection(&mut self.cursor, len, action, rows(screen));
            }
            Action::Back => out.push(Cmd::Show(self.back)),
            Action::Open => {
                let (Some((tenant, _)), Some(d)) = (&self.target, &self.detail) else {
                    return;
                };
                let Some(id) = self.message_at_cursor(screen.width) else {
                    return;
                };
                let Some(m) = d.messages.iter().find(|m| m.id == id) else {
                    return;
                };
                // Narrow enough that the message is among the first rows:
                // its tenant, day and channel, and its recipient's number.
                let filter = QueueFilter {
                    tenants: vec![tenant.clone()],
                    channels: vec![m.channel],
                    from: Some(m.send_on),
                    to: Some(m.send_on),
                    text: d.customer.customer_no.clone(),
                    ..QueueFilter::default()
                };
                out.push(Cmd::ShowMessage {
                    tenant: tenant.clone(),
                    id,
                    filter,
                });
            }
            _ => {}
        }
    }

    /// The daemon says something changed: read the customer again when
    /// its tenant's data or messages changed.
    pub fn on_changed(&self, c: &Changes, out: &mut Vec<Cmd>) {
        let Some((tenant, _)) = &self.target else {
            return;
        };
        let topic = c.topics.contains(&Topic::Outbox) || c.topics.contains(&Topic::Tenants);
        if topic && (c.tenants.is_empty() || c.tenants.contains(tenant)) {
            self.fetch(out);
        }
    }

    /// An answer came; one for a customer no longer shown is dropped.
    /// Returns whether the screen must be redrawn.
    pub fn on_data(
        &mut self,
        tenant: TenantId,
        customer: String,
        answer: Result<Box<CustomerDetail>, String>,
    ) -> bool {
        if self.target.as_ref() != Some(&(tenant, customer)) {
            return false;
        }
        match answer {
            Ok(d) => {
                self.error = None;
                replace(&mut self.detail, Some(*d))
            }
            Err(e) => {
                self.detail = None;
                self.cursor = 0;
                replace(&mut self.error, Some(e))
            }
        }
    }

    /// The request failed without an answer (no answer in time): the pane
    /// says so instead of "asking…" for ever.
    pub fn on_failed(&mut self, error: String) -> bool {
        if self.target.is_none() || self.detail.is_some() {
            return false;
        }
        replace(&mut self.error, Some(error))
    }
}

// ---- drawing ----

impl CustomerView {
    /// Paints the view into `area`; changes nothing.
    pub fn draw(&self, frame: &mut Frame, area: Rect) {
        let name = match &self.target {
            Some((t, no)) => format!("{} of {t}", visible(no)),
            None => String::new(),
        };
        let block = pane(format!(" Customer {name} · Esc back "), true);
        let inner = block.inner(area);
        let rows = usize::from(inner.height).max(1);
        if let Some(e) = &self.error {
            let text = vec![
                Line::from(format!("The daemon refused: {}", visible(e))).red(),
                Line::from(""),
                Line::from("Esc goes back, r asks again.").style(dim()),
            ];
            frame.render_widget(
                Paragraph::new(text).block(block).wrap(Wrap { trim: false }),
                area,
            );
            return;
        }
        let Some(d) = &self.detail else {
            let text = if self.target.is_some() {
                format!("asking the daemon for customer {name}…")
            } else {
                "No customer: c on a message in the queue opens its recipient.".to_string()
            };
            frame.render_widget(Paragraph::new(text).block(block), area);
            return;
        };
        let all = lines(d, usize::from(inner.width));
        let cursor = self.cursor.min(all.len().saturating_sub(1));
        let top = page_top(cursor, rows);
        let shown: Vec<Line> = all
            .into_iter()
            .enumerate()
            .skip(top)
            .take(rows)
            .map(|(i, l)| {
                if i == cursor {
                    l.line.style(Style::new().reversed())
                } else {
                    l.line
                }
            })
            .collect();
        frame.render_widget(Paragraph::new(Text::from(shown)).block(block), area);
    }
}

/// Lines of one kind of record, each knowing whether it shows a message.
struct Lines {
    out: Vec<DetailLine>,
    width: usize,
}

impl Lines {
    fn push(&mut self, line: Line<'static>) {
        self.out.push(DetailLine {
            line,
            message: None,
        });
    }

    /// `text` after `prefix`, wrapped at word boundaries under the text.
    fn hang(&mut self, prefix: Vec<Span<'static>>, text: &str, style: Style, message: Option<u64>) {
        let prefix_width = prefix.iter().map(|s| s.content.chars().count()).sum();
        let mut lines = Vec::new();
        hang(&mut lines, prefix, prefix_width, text, style, self.width);
        self.out
            .extend(lines.into_iter().map(|line| DetailLine { line, message }));
    }

    /// `label` in a column of ten, then `text`.
    fn field(&mut self, label: &str, text: &str) {
        self.hang(
            vec![Span::from(format!("{label:<10}")).style(dim())],
            text,
            Style::new(),
            None,
        );
    }

    fn section(&mut self, title: String) {
        self.push(Line::from(""));
        self.push(Line::from(title).bold().underlined());
    }

    /// A section of `shown` items (and `more` not sent): its title with
    /// the count, and `none` when it is empty.
    fn listing(&mut self, name: &str, shown: usize, more: u64, none: &str) {
        self.section(format!("{name} ({})", shown as u64 + more));
        if shown == 0 {
            self.push(Line::from(none.to_string()).style(dim()));
        }
    }

    fn more(&mut self, n: u64, what: &str) {
        if n > 0 {
            self.push(Line::from(format!("  … {n} more {what}")).style(dim()));
        }
    }
}

fn day(d: Option<Date>) -> String {
    d.map_or("–".to_string(), |d| d.to_string())
}

fn stage(s: Option<VehicleStage>) -> &'static str {
    s.map_or("no stage", VehicleStage::as_str)
}

/// The whole detail as lines of `width` columns.
fn lines(d: &CustomerDetail, width: usize) -> Vec<DetailLine> {
    let mut l = Lines {
        out: Vec::new(),
        width: width.max(1),
    };
    let c = &d.customer;
    let no = visible(&c.customer_no).into_owned();
    l.hang(
        vec![
            Span::from(visible(&c.display_name()).into_owned()).bold(),
            Span::from("  "),
        ],
        &format!("{no} · {}", d.tenant),
        dim(),
        None,
    );
    if let Some(asked) = &d.asked_for {
        l.hang(
            Vec::new(),
            &format!("({} was merged into {no})", visible(asked)),
            dim(),
            None,
        );
    }
    let a = &c.address;
    let street = format!("{} {}", visible(&a.street), visible(&a.house_no));
    let town = format!("{} {}", visible(&a.postcode), visible(&a.city));
    let address = [street.trim(), town.trim(), &visible(&a.country)]
        .into_iter()
        .filter(|p| !p.is_empty())
        .collect::<Vec<_>>()
        .join(", ");
    l.field("address", if address.is_empty() { "–" } else { &address });
    if let Some(company) = &c.company {
        // A private person's company column stays an address line.
        l.field("company", &visible(company));
    }
    l.field("email", &visible(c.email.as_deref().unwrap_or("–")));
    l.field("phone", &visible(c.phone.as_deref().unwrap_or("–")));
    if let Some(b) = c.birth_date {
        l.field("born", &b.to_string());
    }
    l.field(
        "journey",
        &match &d.journey {
            Some(j) => format!("{} since {}", j.stage.as_str(), j.changed_on),
            None => "not derived yet".to_string(),
        },
    );

    l.listing(
        "Consents",
        d.consents.len(),
        d.consents_more,
        "none on record",
    );
    for s in &d.consents {
        let what = if s.granted { "granted" } else { "withdrawn" };
        let of = if s.customer_no == c.customer_no {
            String::new()
        } else {
            format!(" · of {}", visible(&s.customer_no))
        };
        l.hang(
            vec![
                Span::from(format!("{:<7}", s.channel.as_str())),
                if s.granted {
                    Span::from(format!("{what:<10}")).green()
                } else {
                    Span::from(format!("{what:<10}")).red()
                },
                Span::from(format!("{}  ", format::time_short(s.at))),
            ],
            &format!("{}{of}", visible(&s.source)),
            Style::new(),
            None,
        );
    }
    l.more(d.consents_more, "consents");

    l.listing(
        "Vehicles",
        d.vehicles.len(),
        d.vehicles_more,
        "none on record",
    );
    for v in &d.vehicles {
        let x = &v.vehicle;
        l.hang(
            vec![Span::from(format!("{}  ", visible(&x.vin))).bold()],
            &format!(
                "{} {} · {}",
                visible(&x.make),
                visible(&x.model),
                stage(v.stage)
            ),
            Style::new(),
            None,
        );
        let last = match (x.last_service_date, x.last_service_km) {
            (Some(d), Some(km)) => format!("{d} at {} km", thousands(u64::from(km))),
            (d, _) => day(d),
        };
        l.hang(
            vec![Span::from("  ")],
            &format!(
                "registered {} · last service {last} · next HU {} · warranty end {}",
                day(x.first_registration),
                day(x.next_inspection),
                day(x.warranty_end)
            ),
            dim(),
            None,
        );
    }
    l.more(d.vehicles_more, "vehicles");

    let mut visits: Vec<_> = d
        .vehicles
        .iter()
        .flat_map(|v| v.visits.iter().map(move |s| (s, &v.vehicle)))
        .collect();
    let visits_more: u64 = d.vehicles.iter().map(|v| v.visits_more).sum();
    l.listing("Visits", visits.len(), visits_more, "none on record");
    visits.sort_by_key(|(s, _)| std::cmp::Reverse(s.date));
    for (s, v) in visits {
        let mut facts = vec![visible(&s.kind).into_owned()];
        if let Some(km) = s.km {
            facts.push(format!("{} km", thousands(u64::from(km))));
        }
        if let Some(value) = s.value {
            facts.push(euro(value));
        }
        facts.push(format!("{} {}", visible(&v.vin), visible(&v.model)));
        if !s.source.is_empty() {
            facts.push(visible(&s.source).into_owned());
        }
        l.hang(
            vec![Span::from(format!("{}  ", s.date))],
            &facts.join(" · "),
            Style::new(),
            None,
        );
    }
    l.more(visits_more, "visits");

    l.listing("Merges", d.merges.len(), d.merges_more, "none");
    for m in &d.merges {
        let undone = match (&m.undone_at, &m.undone_by) {
            (Some(at), Some(by)) => {
                format!(" · undone {} by {}", format::time_short(*at), visible(by))
            }
            (Some(at), None) => format!(" · undone {}", format::time_short(*at)),
            _ => String::new(),
        };
        l.hang(
            vec![Span::from(format!("#{:<4} ", m.merge_id))],
            &format!(
                "{} merged into {} · {}{undone} · {}",
                visible(&m.merged),
                visible(&m.survivor),
                format::time_short(m.at),
                visible(&format::merge_reasons(m))
            ),
            Style::new(),
            None,
        );
    }
    l.more(d.merges_more, "merges");

    if !d.responses.is_empty() {
        l.section(format!(
            "Responses ({})",
            d.responses.len() as u64 + d.responses_more
        ));
        for r in &d.responses {
            l.hang(
                vec![Span::from(format!("{}  ", r.date))],
                &format!(
                    "{} · {} · {}",
                    r.kind.name(),
                    visible(if r.vin.is_empty() { "–" } else { &r.vin }),
                    visible(&r.source)
                ),
                Style::new(),
                None,
            );
        }
        l.more(d.responses_more, "responses");
    }

    l.listing("Messages", d.messages.len(), d.messages_more, "none");
    for m in &d.messages {
        l.hang(
            vec![
                Span::from(format!("#{:<7} ", m.id)),
                Span::from(format!("{}  ", m.send_on)),
                Span::from(format!("{:<10}", m.status.as_str())).style(status_style(m.status)),
                Span::from(format!("{:<7}", m.channel.as_str())),
            ],
            &visible(&m.service),
            Style::new(),
            Some(m.id),
        );
    }
    l.more(d.messages_more, "messages");
    l.out
}

#[cfg(test)]
mod tests;
