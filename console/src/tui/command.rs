//! The `:` command line (k9s style): a one-line prompt at the bottom of the
//! screen, its editing and history, Tab completion, and the parsing of what
//! was typed into a [`Parsed`] command.
//!
//! The daemon's commands (`pause`, `resume`, `plan`, `batches`, `import`)
//! take the arguments of the subcommands of the same name: they are parsed
//! with the same clap definitions ([`crate::commands`]). The line also
//! knows `q`/`quit`, `help` and the views' names. Completion offers only
//! what the caller's role may run ([`Context`]); [`check`] refuses the
//! rest before anything is sent (the daemon checks again).
//!
//! Everything here but [`CommandLine::draw`] is pure.

use std::collections::VecDeque;

use clap::{CommandFactory, Parser, Subcommand};
use crossterm::event::KeyEvent;
use ratatui::layout::Rect;
use ratatui::style::Stylize;
use ratatui::text::{Line, Span};
use ratatui::widgets::Paragraph;
use ratatui::Frame;
use touchpoint_common::protocol::{PauseScope, Request, Role, Scope};
use touchpoint_common::queue::unknown_value;
use touchpoint_common::TenantId;

use super::action::View;
use super::msg::{Act, Run};
use super::popup::{edit_line, with_cursor, Confirm};
use super::widgets::dim;
use crate::commands::{BatchOptions, ImportOptions, PlanOptions, ScopeArgs};

/// Earlier commands kept for ↑/↓ in one session.
pub const HISTORY: usize = 50;
/// Longest line the prompt takes (a paste of a long file list is cut here).
pub const MAX_LINE: usize = 1_000;

/// The daemon's commands, as clap parses them from the words of a line.
#[derive(Debug, Parser)]
#[command(
    name = ":",
    no_binary_name = true,
    disable_help_flag = true,
    disable_help_subcommand = true,
    disable_version_flag = true
)]
struct LineArgs {
    #[command(subcommand)]
    command: LineCommand,
}

#[derive(Debug, Subcommand)]
enum LineCommand {
    Pause(ScopeArgs),
    Resume(ScopeArgs),
    Plan(PlanOptions),
    Batches(BatchOptions),
    Import(ImportOptions),
    Customer(CustomerLine),
}

/// `:customer --tenant T NO`, as `touchpoint customer` takes it.
#[derive(Debug, clap::Args)]
struct CustomerLine {
    /// The tenant (dealer) the customer belongs to.
    #[arg(long)]
    tenant: TenantId,
    /// The customer number.
    no: String,
}

/// A command of the line, with what it does, for completion and the help.
pub struct Verb {
    pub name: &'static str,
    pub usage: &'static str,
    pub about: &'static str,
    kind: Kind,
}

#[derive(Clone, Copy)]
enum Kind {
    Quit,
    Help,
    View(View),
    /// Sent to the daemon: allowed when the role may make this request.
    Daemon(fn() -> Request),
    /// A stored customer in the customer view (the daemon checks the
    /// tenant's scope and shows its refusal there).
    Customer,
}

const fn verb(name: &'static str, usage: &'static str, about: &'static str, kind: Kind) -> Verb {
    Verb {
        name,
        usage,
        about,
        kind,
    }
}

fn some_tenant() -> TenantId {
    // A valid id: only the request's kind matters to the role.
    TenantId::new("t").unwrap_or_else(|_| unreachable!("`t` is a tenant id"))
}

pub static VERBS: &[Verb] = &[
    verb(
        "pause",
        "pause [--tenant T] [--service S]",
        "stop dispatch (all, a tenant, a service)",
        Kind::Daemon(|| Request::Pause {
            scope: PauseScope::default(),
        }),
    ),
    verb(
        "resume",
        "resume [--tenant T] [--service S]",
        "lift a pause",
        Kind::Daemon(|| Request::Resume {
            scope: PauseScope::default(),
        }),
    ),
    verb(
        "plan",
        "plan [--dry-run] [--tenant T] [--day D]",
        "plan now (--dry-run: only show)",
        Kind::Daemon(|| Request::Plan {
            tenant: None,
            day: None,
            dry_run: true,
            policies: None,
            show: 0,
        }),
    ),
    verb(
        "batches",
        "batches [--tenant T]",
        "close today's letter batches now",
        Kind::Daemon(|| Request::RunBatches { tenant: None }),
    ),
    verb(
        "import",
        "import --tenant T FILE…",
        "upload and import export files",
        Kind::Daemon(|| Request::UploadBegin {
            tenant: some_tenant(),
            file_name: String::new(),
            size: 0,
        }),
    ),
    verb(
        "customer",
        "customer --tenant T NO",
        "a stored customer, whole",
        Kind::Customer,
    ),
    verb("overview", "overview", "view 1", Kind::View(View::Overview)),
    verb("queue", "queue", "view 2", Kind::View(View::Queue)),
    verb(
        "approvals",
        "approvals",
        "view 3",
        Kind::View(View::Approvals),
    ),
    verb("tenants", "tenants", "view 4", Kind::View(View::Tenants)),
    verb("policies", "policies", "view 5", Kind::View(View::Policies)),
    verb("results", "results", "view 6", Kind::View(View::Results)),
    verb("help", "help", "the keys and commands", Kind::Help),
    verb("quit", "quit, q", "leave the console", Kind::Quit),
    verb("q", "q", "leave the console", Kind::Quit),
];

/// What the line knows of the caller and of what the console has read.
#[derive(Clone, Debug, Default)]
pub struct Context {
    /// `None` before the daemon said who we are: only the console's own
    /// commands then.
    pub role: Option<Role>,
    pub scope: Option<Scope>,
    /// `--readonly`: nothing that changes data.
    pub readonly: bool,
    /// Tenant ids and service ids the console has seen, for completion.
    pub tenants: Vec<String>,
    pub services: Vec<String>,
}

impl Context {
    /// Whether the caller may run `v` at all (a dry-run plan for a role that
    /// may not commit one).
    fn offers(&self, v: &Verb) -> bool {
        match v.kind {
            Kind::Daemon(request) => {
                let request = request();
                let writes = !matches!(request, Request::Plan { .. });
                self.role.is_some_and(|r| r.allows(&request)) && !(writes && self.readonly)
            }
            _ => true,
        }
    }

    /// The commands the caller may run, in the table's order.
    pub fn verbs(&self) -> impl Iterator<Item = &'static Verb> + '_ {
        VERBS.iter().filter(|v| self.offers(v))
    }
}

/// `:help`: the commands the caller may run, with their arguments, and
/// how the line works.
pub fn help(ctx: &Context) -> String {
    let verbs: Vec<&Verb> = ctx.verbs().filter(|v| v.name.len() > 1).collect();
    let width = verbs
        .iter()
        .map(|v| v.usage.chars().count())
        .max()
        .unwrap_or(0);
    let mut out = String::new();
    for v in verbs {
        out.push_str(&format!(":{:<width$}  {}\n", v.usage, v.about));
    }
    out.push_str(
        "\nTab completes commands, flags, tenants and services; ↑/↓ recall earlier \
         commands; Ctrl-u clears; Esc cancels.\n\
         The daemon's commands take the arguments of `touchpoint <command>`; what \
         changes data asks first (y/n), and the daemon checks your role again.\n\
         ? lists the keys.\n",
    );
    out
}

/// What a line asks for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Parsed {
    Quit,
    Help,
    View(View),
    Run(Run),
    Customer { tenant: TenantId, no: String },
}

/// Splits a line into words as a shell would: blanks separate, `'…'` and
/// `"…"` keep blanks (and each other's quote), `\` takes the next
/// character as it is (outside single quotes).
pub fn split_words(line: &str) -> Result<Vec<String>, String> {
    let mut words = Vec::new();
    let mut word = String::new();
    let mut in_word = false;
    let mut quote: Option<char> = None;
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        match (quote, c) {
            (Some(q), c) if c == q => quote = None,
            (Some('\''), c) => word.push(c),
            (_, '\\') => match chars.next() {
                Some(next) => {
                    word.push(next);
                    in_word = true;
                }
                None => return Err("a `\\` ends the line: nothing to escape".into()),
            },
            (Some(_), c) => word.push(c),
            (None, '\'' | '"') => {
                quote = Some(c);
                in_word = true;
            }
            (None, c) if c.is_whitespace() => {
                if in_word {
                    words.push(std::mem::take(&mut word));
                    in_word = false;
                }
            }
            (None, c) => {
                word.push(c);
                in_word = true;
            }
        }
    }
    if let Some(q) = quote {
        return Err(format!("a {q} is not closed"));
    }
    if in_word {
        words.push(word);
    }
    Ok(words)
}

/// Parses a line. Unknown commands name the closest one the caller may
/// run; a daemon command's arguments are checked as the subcommand checks
/// them. Whether the caller may run it is [`check`]'s.
pub fn parse(line: &str, ctx: &Context) -> Result<Parsed, String> {
    let words = split_words(line)?;
    let Some(first) = words.first() else {
        return Err("no command".into());
    };
    let Some(v) = VERBS.iter().find(|v| v.name == first.as_str()) else {
        let names: Vec<&str> = ctx
            .verbs()
            .map(|v| v.name)
            .filter(|n| n.len() > 1)
            .collect();
        return Err(format!(
            "{} · :help lists them",
            unknown_value("command", first, names)
        ));
    };
    match v.kind {
        Kind::Quit | Kind::Help | Kind::View(_) if words.len() > 1 => {
            Err(format!(":{} takes no arguments", v.name))
        }
        Kind::Quit => Ok(Parsed::Quit),
        Kind::Help => Ok(Parsed::Help),
        Kind::View(view) => Ok(Parsed::View(view)),
        Kind::Customer => {
            let args = LineArgs::try_parse_from(&words).map_err(|e| clap_error(&e))?;
            match args.command {
                LineCommand::Customer(c) => Ok(Parsed::Customer {
                    tenant: c.tenant,
                    no: c.no,
                }),
                _ => Err(format!(":{} takes --tenant T NO", v.name)),
            }
        }
        Kind::Daemon(_) => {
            let args = LineArgs::try_parse_from(&words).map_err(|e| clap_error(&e))?;
            Ok(Parsed::Run(match args.command {
                LineCommand::Pause(s) => Run::Pause(s.into()),
                LineCommand::Resume(s) => Run::Resume(s.into()),
                LineCommand::Plan(p) => Run::Plan {
                    tenant: p.tenant,
                    day: p.day,
                    dry_run: p.dry_run,
                    policies: p.policies,
                    show: p.show,
                },
                LineCommand::Batches(b) => Run::Batches { tenant: b.tenant },
                LineCommand::Import(i) => Run::Import {
                    tenant: i.tenant,
                    files: i.files,
                },
                LineCommand::Customer(_) => {
                    return Err(format!(":{} is no daemon command", v.name))
                }
            }))
        }
    }
}

/// clap's message on one line: the error and its tip, without the usage.
fn clap_error(e: &clap::Error) -> String {
    let text = e.to_string();
    let parts: Vec<&str> = text
        .lines()
        .map(str::trim)
        .filter(|l| {
            !l.is_empty() && !l.starts_with("Usage:") && !l.starts_with("For more information")
        })
        .map(|l| l.strip_prefix("error: ").unwrap_or(l))
        .collect();
    parts.join(" · ")
}

/// The request a command leads to, for the role's check.
pub fn request_of(run: &Run) -> Request {
    match run {
        Run::Pause(scope) => Request::Pause {
            scope: scope.clone(),
        },
        Run::Resume(scope) => Request::Resume {
            scope: scope.clone(),
        },
        Run::Plan {
            tenant,
            day,
            dry_run,
            policies,
            show,
        } => Request::Plan {
            tenant: tenant.clone(),
            day: *day,
            // Candidate policies make it a dry run, as the daemon does.
            dry_run: *dry_run || policies.is_some(),
            policies: None,
            show: *show,
        },
        Run::Batches { tenant } => Request::RunBatches {
            tenant: tenant.clone(),
        },
        Run::Import { tenant, .. } => Request::UploadBegin {
            tenant: tenant.clone(),
            file_name: String::new(),
            size: 0,
        },
    }
}

/// Whether the command changes data (and so asks first, and is refused
/// by `--readonly`).
pub fn writes(run: &Run) -> bool {
    match run {
        Run::Plan {
            dry_run, policies, ..
        } => !dry_run && policies.is_none(),
        _ => true,
    }
}

fn tenant_of(run: &Run) -> Option<&TenantId> {
    match run {
        Run::Pause(s) | Run::Resume(s) => s.tenant.as_ref(),
        Run::Plan { tenant, .. } | Run::Batches { tenant } => tenant.as_ref(),
        Run::Import { tenant, .. } => Some(tenant),
    }
}

/// Why the caller may not run this, if not: read-only console, the role,
/// a tenant outside the scope. The daemon checks the same again.
pub fn check(run: &Run, ctx: &Context) -> Result<(), String> {
    if writes(run) && ctx.readonly {
        return Err("the console is read-only (--readonly): this command changes data".into());
    }
    let Some(role) = ctx.role else {
        return Err("not connected to the daemon yet".into());
    };
    if !role.allows(&request_of(run)) {
        let what = match run {
            Run::Plan { .. } => "plan without --dry-run",
            Run::Pause(_) => "pause",
            Run::Resume(_) => "resume",
            Run::Batches { .. } => "close batches",
            Run::Import { .. } => "import",
        };
        let dry = if matches!(run, Run::Plan { .. }) && role.allows(&request_of(&dry(run))) {
            " (:plan --dry-run shows what would be planned)"
        } else {
            ""
        };
        return Err(format!("your role ({role}) may not {what}{dry}"));
    }
    if let (Some(t), Some(scope)) = (tenant_of(run), &ctx.scope) {
        if !scope.allows(t) {
            return Err(format!("tenant {t} is not in your scope"));
        }
    }
    Ok(())
}

fn dry(run: &Run) -> Run {
    match run.clone() {
        Run::Plan {
            tenant,
            day,
            policies,
            show,
            ..
        } => Run::Plan {
            tenant,
            day,
            dry_run: true,
            policies,
            show,
        },
        other => other,
    }
}

/// The question asked before a command that changes data, saying what
/// will happen.
pub fn confirm(run: &Run) -> Confirm {
    let scope_tenants = |t: &Option<TenantId>| match t {
        Some(t) => format!("tenant {t}"),
        None => "every tenant in your scope".to_string(),
    };
    let (title, lines) = match run {
        Run::Pause(scope) => (
            format!("Pause {scope}"),
            vec![
                format!("Dispatch stops for {scope} until :resume."),
                "Queued messages wait; nothing is lost.".to_string(),
            ],
        ),
        Run::Resume(scope) => (
            format!("Resume {scope}"),
            vec![format!(
                "The pause of {scope} is lifted: its messages go out again."
            )],
        ),
        Run::Plan { tenant, day, .. } => (
            "Plan now".to_string(),
            vec![
                format!(
                    "Plans {} for {} and writes the messages to the outbox, their cost reserved.",
                    scope_tenants(tenant),
                    day.map_or("today".to_string(), |d| d.to_string())
                ),
                "(:plan --dry-run shows what would be planned.)".to_string(),
            ],
        ),
        Run::Batches { tenant } => (
            "Close today's batches".to_string(),
            vec![format!(
                "Closes today's letter batches and call lists of {} now instead of at the batch time.",
                scope_tenants(tenant)
            )],
        ),
        Run::Import { tenant, files } => {
            let mut lines = vec![format!(
                "Uploads {} file{} to tenant {tenant} and imports {}:",
                files.len(),
                if files.len() == 1 { "" } else { "s" },
                if files.len() == 1 { "it" } else { "them one after the other" }
            )];
            lines.extend(files.iter().take(5).map(|f| format!("  {}", f.display())));
            if files.len() > 5 {
                lines.push(format!("  … and {} more", files.len() - 5));
            }
            lines.push("Bad rows are reported; nothing stored is lost by a bad file.".into());
            (format!("Import to {tenant}"), lines)
        }
    };
    Confirm {
        title,
        lines,
        act: Act::Run(run.clone()),
    }
}

/// What Tab made of the line: the new text and cursor, and the candidates
/// when there was more than one.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Completion {
    pub text: String,
    pub cursor: usize,
    pub candidates: Vec<String>,
}

/// Completes the word before the cursor: a command name the caller may run,
/// a flag of the command not given yet, or the value of `--tenant` or
/// `--service` from those the console knows.
pub fn complete(text: &str, cursor: usize, ctx: &Context) -> Completion {
    let at = text
        .char_indices()
        .nth(cursor)
        .map(|(i, _)| i)
        .unwrap_or(text.len());
    let (head, tail) = text.split_at(at);
    let start = head
        .rfind(char::is_whitespace)
        .map(|i| i + head[i..].chars().next().map_or(1, char::len_utf8))
        .unwrap_or(0);
    let word = &head[start..];
    let before: Vec<&str> = head[..start].split_whitespace().collect();
    let candidates: Vec<String> = match before.as_slice() {
        // `q` is `quit`'s short form, not a candidate of its own.
        [] => ctx
            .verbs()
            .filter(|v| v.name.len() > 1)
            .map(|v| v.name.to_string())
            .collect(),
        [verb, rest @ ..] => match VERBS.iter().find(|v| v.name == *verb) {
            Some(v) if matches!(v.kind, Kind::Daemon(_) | Kind::Customer) && ctx.offers(v) => {
                match rest.last().copied() {
                    Some("--tenant") => ctx.tenants.clone(),
                    Some("--service") => ctx.services.clone(),
                    Some(flag) if takes_value(verb, flag) => Vec::new(),
                    _ if word.is_empty() || word.starts_with('-') => flags(verb)
                        .into_iter()
                        .filter(|f| !rest.contains(&f.as_str()))
                        .collect(),
                    _ => Vec::new(),
                }
            }
            _ => Vec::new(),
        },
    };
    let mut candidates: Vec<String> = candidates
        .into_iter()
        .filter(|c| c.starts_with(word))
        .collect();
    candidates.sort();
    candidates.dedup();
    let replace = |with: &str| {
        let text = format!("{}{with}{tail}", &head[..start]);
        let cursor = head[..start].chars().count() + with.chars().count();
        (text, cursor)
    };
    match candidates.as_slice() {
        [] => Completion {
            text: text.to_string(),
            cursor,
            candidates,
        },
        [one] => {
            let (text, cursor) = replace(&format!("{one} "));
            Completion {
                text,
                cursor,
                candidates: Vec::new(),
            }
        }
        many => {
            let common = common_prefix(many);
            let (text, cursor) = replace(&common);
            Completion {
                text,
                cursor,
                candidates,
            }
        }
    }
}

fn common_prefix(words: &[String]) -> String {
    let Some(first) = words.first() else {
        return String::new();
    };
    let mut n = first.chars().count();
    for w in &words[1..] {
        n = n.min(
            first
                .chars()
                .zip(w.chars())
                .take_while(|(a, b)| a == b)
                .count(),
        );
    }
    first.chars().take(n).collect()
}

/// The long flags of a daemon command, from its clap definition.
fn flags(verb: &str) -> Vec<String> {
    let cmd = LineArgs::command();
    cmd.find_subcommand(verb)
        .map(|sub| {
            sub.get_arguments()
                .filter_map(|a| a.get_long().map(|l| format!("--{l}")))
                .collect()
        })
        .unwrap_or_default()
}

/// Whether `flag` of `verb` takes a value (`--day 2026-12-07`).
fn takes_value(verb: &str, flag: &str) -> bool {
    let Some(long) = flag.strip_prefix("--") else {
        return false;
    };
    let cmd = LineArgs::command();
    cmd.find_subcommand(verb)
        .and_then(|sub| sub.get_arguments().find(|a| a.get_long() == Some(long)))
        .is_some_and(|a| a.get_action().takes_values())
}

/// What the line under the prompt shows.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Hint {
    /// Tab found more than one.
    Candidates(Vec<String>),
    /// The line was refused; it stays for mending.
    Error(String),
}

/// The prompt's state: open or not, the text, the session's history.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CommandLine {
    pub open: bool,
    pub text: String,
    /// In characters.
    pub cursor: usize,
    pub hint: Option<Hint>,
    /// Earlier lines of this session, oldest first, at most [`HISTORY`].
    pub history: VecDeque<String>,
    /// The history entry shown (↑/↓); `None`: the line being typed.
    recall: Option<usize>,
    /// The line being typed while the history is shown.
    draft: String,
}

impl CommandLine {
    /// `:` pressed: an empty prompt.
    pub fn open(&mut self) {
        self.open = true;
        self.text.clear();
        self.cursor = 0;
        self.hint = None;
        self.recall = None;
    }

    pub fn close(&mut self) {
        self.open = false;
        self.hint = None;
        self.recall = None;
    }

    /// Enter: the line, closed and kept in the history.
    pub fn take(&mut self) -> String {
        let line = std::mem::take(&mut self.text).trim().to_string();
        self.close();
        if !line.is_empty() && self.history.back() != Some(&line) {
            if self.history.len() == HISTORY {
                self.history.pop_front();
            }
            self.history.push_back(line.clone());
        }
        line
    }

    /// The line was refused: it opens again as it was, with the reason.
    pub fn refuse(&mut self, line: String, why: String) {
        self.open = true;
        self.cursor = line.chars().count();
        self.text = line;
        self.hint = Some(Hint::Error(why));
    }

    /// ↑ (`back`) or ↓ through the history.
    pub fn recall(&mut self, back: bool) {
        let n = self.history.len();
        let next = match (self.recall, back) {
            (None, true) if n > 0 => {
                self.draft = self.text.clone();
                Some(n - 1)
            }
            (Some(i), true) => Some(i.saturating_sub(1)),
            (Some(i), false) if i + 1 < n => Some(i + 1),
            (Some(_), false) => None,
            (None, _) => return,
        };
        self.text = match next {
            Some(i) => self.history.get(i).cloned().unwrap_or_default(),
            None => std::mem::take(&mut self.draft),
        };
        self.recall = next;
        self.cursor = self.text.chars().count();
        self.hint = None;
    }

    /// Tab.
    pub fn complete(&mut self, ctx: &Context) {
        let c = complete(&self.text, self.cursor, ctx);
        self.text = c.text;
        self.cursor = c.cursor;
        self.hint = (!c.candidates.is_empty()).then_some(Hint::Candidates(c.candidates));
    }

    /// Any other key: edits the line (bounded to [`MAX_LINE`] characters).
    pub fn edit(&mut self, key: &KeyEvent) -> bool {
        let (text, cursor) = (self.text.clone(), self.cursor);
        if !edit_line(&mut self.text, &mut self.cursor, key) {
            return false;
        }
        if self.text.chars().count() > MAX_LINE {
            self.text = text;
            self.cursor = cursor;
        }
        self.hint = None;
        true
    }

    /// The prompt in `prompt` (the footer's row), the hint in `hint` (the
    /// row above it) when there is one.
    pub fn draw(&self, frame: &mut Frame, prompt: Rect, hint: Rect) {
        let mut spans = vec![Span::from(":").bold()];
        spans.extend(with_cursor(&self.text, self.cursor));
        frame.render_widget(Paragraph::new(Line::from(spans)), prompt);
        let line = match &self.hint {
            None => return,
            Some(Hint::Error(e)) => Line::from(vec![
                Span::from(" ! ").red().bold().reversed(),
                Span::from(format!(" {e}")).red(),
            ]),
            Some(Hint::Candidates(c)) => {
                let width = usize::from(hint.width);
                let mut text = String::new();
                for (n, w) in c.iter().enumerate() {
                    let more = format!(" … +{}", c.len() - n);
                    if text.chars().count() + w.chars().count() + 1 + more.chars().count() > width
                        && n + 1 < c.len()
                    {
                        text.push_str(&more);
                        break;
                    }
                    text.push(' ');
                    text.push_str(w);
                }
                Line::from(text).style(dim())
            }
        };
        frame.render_widget(ratatui::widgets::Clear, hint);
        frame.render_widget(Paragraph::new(line), hint);
    }
}

#[cfg(test)]
mod tests;
