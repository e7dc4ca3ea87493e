//! The TUI's connection: connects (and reconnects with back-off), carries
//! out the UI's [`Effect`]s on one connection and listens to the daemon's
//! change feed on a second, reporting everything as [`NetEvent`]s.
//!
//! [`perform`] is the one place an effect becomes requests; the tests drive
//! it directly against a real daemon.

use std::path::PathBuf;
use std::time::Duration;

use tokio::sync::mpsc;
use touchpoint_common::protocol::{ActionResult, MessageAction};
use touchpoint_common::TenantId;

use super::msg::{Act, Data, Effect, Fetch, NetEvent, Run};
use crate::client::{Client, ClientError, Subscription};
use crate::commands::{self, CommandError};
use crate::format;

const BACKOFF_FIRST: Duration = Duration::from_millis(500);
const BACKOFF_MAX: Duration = Duration::from_secs(10);
/// A quiet request connection is pinged so the daemon's idle timeout does
/// not close it under an operator who is reading.
const KEEPALIVE: Duration = Duration::from_secs(30);

/// Carries out one effect. `Err` only when the connection failed; a refusal
/// becomes [`NetEvent::Failed`].
pub async fn perform(client: &mut Client, effect: Effect) -> Result<Vec<NetEvent>, ClientError> {
    let result = match effect {
        Effect::Reconnect => return Ok(Vec::new()),
        Effect::Fetch(f) => fetch(client, f)
            .await
            .map(|(what, d)| (what, NetEvent::Data(d))),
        Effect::Act(a) => act(client, a).await,
    };
    match result {
        Ok((_, ev)) => Ok(vec![ev]),
        // A slow answer is skipped by its id when it comes; the connection
        // stays (a send cut off half-way marks it broken, and the next
        // request says so).
        Err((_, e)) if e.is_connection() && !matches!(e, ClientError::Timeout { .. }) => Err(e),
        Err((what, e)) => Ok(vec![NetEvent::Failed {
            what,
            error: e.to_string(),
        }]),
    }
}

type Outcome<T> = Result<(&'static str, T), (&'static str, ClientError)>;

fn tag<T>(what: &'static str, r: Result<T, ClientError>) -> Outcome<T> {
    r.map(|v| (what, v)).map_err(|e| (what, e))
}

async fn fetch(c: &mut Client, f: Fetch) -> Outcome<Data> {
    match f {
        Fetch::Status => tag(
            "status",
            c.status().await.map(|s| Data::Status(Box::new(s))),
        ),
        Fetch::Overview { day } => tag(
            "overview",
            c.overview(day).await.map(|o| Data::Overview(Box::new(o))),
        ),
        Fetch::Queue {
            filter,
            offset,
            limit,
        } => tag(
            "queue",
            c.queue(&filter, offset, limit)
                .await
                .map(|p| Data::Queue(Box::new(p))),
        ),
        Fetch::Message { tenant, id } => {
            let r = c.message(&tenant, id).await;
            tag(
                "message",
                r.map(|m| Data::Message {
                    tenant,
                    message: Box::new(m),
                }),
            )
        }
        Fetch::Content { tenant, id } => tag(
            "content",
            c.content(&tenant, id)
                .await
                .map(|m| Data::Content(Box::new(m))),
        ),
        Fetch::Tenants => tag("tenants", c.tenants().await.map(Data::Tenants)),
        Fetch::Costs { month } => tag(
            "costs",
            c.costs(None, Some(month))
                .await
                .map(|rows| Data::Costs { month, rows }),
        ),
        Fetch::Tenant(t) => tag(
            "tenant",
            c.tenant(&t).await.map(|d| Data::Tenant(Box::new(d))),
        ),
        Fetch::Proposals { all } => tag("proposals", c.proposals(all).await.map(Data::Proposals)),
        Fetch::Proposal(id) => tag(
            "proposal",
            c.proposal(id).await.map(|d| Data::Proposal(Box::new(d))),
        ),
        Fetch::Preview { id, tenant } => tag(
            "preview",
            c.preview(id, &tenant, None)
                .await
                .map(|p| Data::Preview(Box::new(p))),
        ),
        Fetch::Audit { text, limit } => {
            let r = c.audit(None, limit, &text).await;
            tag("audit", r.map(|entries| Data::Audit { text, entries }))
        }
        Fetch::Report(query) => tag(
            "results",
            c.report(query).await.map(|r| Data::Report(Box::new(r))),
        ),
        Fetch::Learning => tag(
            "learning",
            c.learning(None).await.map(|s| Data::Learning(Box::new(s))),
        ),
        Fetch::Customer { tenant, customer } => {
            let answer = match c.customer(&tenant, customer.clone()).await {
                Ok(d) => Ok(Box::new(d)),
                // A refusal is the answer the view shows; a broken
                // connection is the connection's.
                Err(e) if e.is_connection() => return Err(("customer", e)),
                Err(e) => Err(e.to_string()),
            };
            Ok((
                "customer",
                Data::Customer {
                    tenant,
                    customer,
                    answer,
                },
            ))
        }
    }
}

async fn act(c: &mut Client, a: Act) -> Outcome<NetEvent> {
    match a {
        Act::Messages { action, targets } => {
            let mut results: Vec<ActionResult> = Vec::new();
            for (tenant, ids) in &targets {
                match c.message_action(tenant, ids, action).await {
                    Ok(r) => results.extend(r),
                    // Earlier tenants' results stand; this tenant's ids
                    // are reported with the reason, the rest go on.
                    Err(e) if !e.is_connection() => {
                        results.extend(ids.iter().map(|id| ActionResult {
                            id: *id,
                            outcome: Err(format!("{tenant}: {e}")),
                        }));
                    }
                    Err(e) => return Err((action.as_str(), e)),
                }
            }
            let (summary, ok) = action_summary(action, &results);
            Ok((action.as_str(), NetEvent::Acted { summary, ok }))
        }
        Act::Approve { id, comment } => tag(
            "approve",
            c.approve(id, &comment).await.map(|d| NetEvent::Acted {
                summary: format!(
                    "approved #{id}: {} is in force ({})",
                    d.proposal.template,
                    crate::format::proposal_status(&d.proposal.status)
                ),
                ok: true,
            }),
        ),
        Act::Reject { id, comment } => tag(
            "reject",
            c.reject(id, &comment).await.map(|d| NetEvent::Acted {
                summary: format!("rejected #{id} ({})", d.proposal.template),
                ok: true,
            }),
        ),
        Act::Run(run) => run_command(c, run).await,
    }
}

/// A command of the `:` line, carried out as the subcommand of the same
/// name does it ([`crate::commands`]); its output is the subcommand's text.
async fn run_command(c: &mut Client, run: Run) -> Outcome<NetEvent> {
    let ran = |title: String, summary: String, text: String, ok: bool| NetEvent::Ran {
        title,
        summary,
        text,
        ok,
    };
    match run {
        Run::Pause(scope) => tag(
            "pause",
            c.pause(scope.clone()).await.map(|p| {
                let summary = format!("paused {scope}; {}", pauses_in_force(p.len()));
                ran(format!("pause {scope}"), summary, format::pauses(&p), true)
            }),
        ),
        Run::Resume(scope) => tag(
            "resume",
            c.resume(scope.clone()).await.map(|p| {
                let summary = format!("resumed {scope}; {}", pauses_in_force(p.len()));
                ran(format!("resume {scope}"), summary, format::pauses(&p), true)
            }),
        ),
        Run::Plan {
            tenant,
            day,
            dry_run,
            policies,
            show,
        } => {
            let options = commands::PlanOptions {
                tenant,
                dry_run,
                policies,
                day,
                show,
            };
            let title = if options.writes() {
                "plan".to_string()
            } else {
                "plan (dry run)".to_string()
            };
            match commands::plan(c, &options).await {
                Ok(r) => {
                    let (summary, ok) = plan_summary(&r);
                    let text = format::plan(&r, options.policies.is_some());
                    Ok(("plan", ran(title, summary, text, ok)))
                }
                Err(CommandError::Client(e)) => Err(("plan", e)),
                Err(CommandError::Policies(text)) => Ok((
                    "plan",
                    ran(
                        title,
                        "plan: the --policies files are not valid; nothing planned".into(),
                        text,
                        false,
                    ),
                )),
            }
        }
        Run::Batches { tenant } => tag(
            "batches",
            c.run_batches(tenant.as_ref()).await.map(|b| {
                let messages: u64 = b.iter().map(|x| x.messages).sum();
                let summary = match b.len() {
                    0 => "no letter batches or call lists to close".to_string(),
                    n => format!(
                        "closed {n} batch{} of {messages} message{}",
                        if n == 1 { "" } else { "es" },
                        if messages == 1 { "" } else { "s" }
                    ),
                };
                ran("batches".into(), summary, format::batches(&b), true)
            }),
        ),
        Run::Import { tenant, files } => {
            let done = commands::import(c, &tenant, &files, |_| {}).await;
            let mut text: String = done.results.iter().map(commands::import_text).collect();
            if let Some((label, e)) = &done.broken {
                text.push_str(&format!(
                    "{label}: the connection broke ({e}): it may or may not have been \
                     imported, and the files after it were not sent\n"
                ));
            }
            let failed = done.failed();
            let summary = import_summary(&tenant, files.len(), &done);
            Ok((
                "import",
                ran(format!("import to {tenant}"), summary, text, !failed),
            ))
        }
    }
}

fn pauses_in_force(n: usize) -> String {
    match n {
        0 => "no pauses in force".into(),
        1 => "1 pause in force".into(),
        n => format!("{n} pauses in force"),
    }
}

/// "planned 12 messages for 3 tenants" / "dry run: 12 messages would be
/// planned for 3 tenants"; a tenant that could not be planned is named.
fn plan_summary(r: &touchpoint_common::protocol::PlanResult) -> (String, bool) {
    let planned: u64 = r.reports.iter().map(|p| p.planned_count).sum();
    let dry = r.reports.first().is_some_and(|p| p.dry_run);
    let tenants = r.reports.len();
    let s = |n: u64| if n == 1 { "" } else { "s" };
    let mut summary = if dry {
        format!(
            "dry run: {planned} message{} would be planned for {tenants} tenant{}; nothing written",
            s(planned),
            s(tenants as u64)
        )
    } else {
        format!(
            "planned {planned} message{} for {tenants} tenant{}",
            s(planned),
            s(tenants as u64)
        )
    };
    if let Some((tenant, why)) = r.failed.first() {
        summary.push_str(&format!("; {tenant} failed: {why}"));
        if r.failed.len() > 1 {
            summary.push_str(&format!(" (and {} more)", r.failed.len() - 1));
        }
    }
    (summary, r.failed.is_empty())
}

/// "import to d001: 2 files committed" or the first file that was not.
fn import_summary(tenant: &TenantId, files: usize, done: &commands::ImportRun) -> String {
    use touchpoint_common::domain::ImportStatus;
    let first_bad = done.results.iter().find_map(|(label, r)| match r {
        Ok(report) => match &report.status {
            ImportStatus::Failed { reason } => Some(format!("{label}: failed: {reason}")),
            _ => None,
        },
        Err(e) => Some(format!("{label}: failed: {e}")),
    });
    let committed = done
        .results
        .iter()
        .filter(|(_, r)| r.as_ref().is_ok_and(|x| x.is_committed()))
        .count();
    if let ([one], None) = (done.results.as_slice(), &done.broken) {
        // One file: the first line of its report says it all.
        let text = commands::import_text(one);
        return format!(
            "import to {tenant}: {}",
            text.lines().next().unwrap_or_default()
        );
    }
    let head = format!(
        "import to {tenant}: {committed} of {files} file{} committed",
        if files == 1 { "" } else { "s" }
    );
    match (first_bad, &done.broken) {
        (Some(bad), _) => format!("{head}; {bad}"),
        (None, Some((label, _))) => format!("{head}; {label}: the connection broke"),
        (None, None) => head,
    }
}

/// "held 3 messages" or "held 2 of 3; #12: sent, cannot be held".
pub fn action_summary(action: MessageAction, results: &[ActionResult]) -> (String, bool) {
    let done = crate::format::action_done(action);
    let ok = results.iter().filter(|r| r.outcome.is_ok()).count();
    let refused: Vec<String> = results
        .iter()
        .filter_map(|r| {
            r.outcome
                .as_ref()
                .err()
                .map(|why| format!("#{}: {why}", r.id))
        })
        .collect();
    let plural = |n: usize| if n == 1 { "" } else { "s" };
    if refused.is_empty() {
        (format!("{done} {ok} message{}", plural(ok)), true)
    } else {
        let first = refused.first().cloned().unwrap_or_default();
        let more = if refused.len() > 1 {
            format!(" (and {} more refused)", refused.len() - 1)
        } else {
            String::new()
        };
        (
            format!("{done} {ok} of {}; {first}{more}", results.len()),
            false,
        )
    }
}

/// Runs until the UI drops its end of either channel.
pub async fn run(
    socket: PathBuf,
    events: mpsc::UnboundedSender<NetEvent>,
    mut effects: mpsc::UnboundedReceiver<Effect>,
) {
    let mut backoff = BACKOFF_FIRST;
    let mut attempt: u32 = 1;
    loop {
        if events.send(NetEvent::Connecting { attempt }).is_err() {
            return;
        }
        let error = match connect(&socket).await {
            Ok((mut client, feed)) => {
                backoff = BACKOFF_FIRST;
                attempt = 1;
                let connected = NetEvent::Connected {
                    daemon: client.daemon().to_string(),
                    identity: client.identity().clone(),
                };
                if events.send(connected).is_err() {
                    return;
                }
                match session(&mut client, feed, &events, &mut effects).await {
                    Some(e) => e,
                    None => return,
                }
            }
            Err(e) => e,
        };
        tracing::info!(error = %error, attempt, "daemon connection down");
        let down = NetEvent::Disconnected {
            error: error.to_string(),
            attempt,
        };
        if events.send(down).is_err() {
            return;
        }
        attempt = attempt.saturating_add(1);
        // Wait out the back-off; `r` retries at once. Fetches asked for
        // meanwhile are dropped: the view asks again once connected. An
        // action is not kept for later (the user decided on what they saw
        // then): they are told it was not sent.
        let wait = tokio::time::sleep(backoff);
        tokio::pin!(wait);
        loop {
            tokio::select! {
                _ = &mut wait => break,
                effect = effects.recv() => match effect {
                    None => return,
                    Some(Effect::Reconnect) => break,
                    Some(Effect::Act(_)) => {
                        if events.send(not_sent("the daemon is not reachable")).is_err() {
                            return;
                        }
                    }
                    Some(Effect::Fetch(_)) => {}
                },
            }
        }
        backoff = (backoff * 2).min(BACKOFF_MAX);
    }
}

/// The request connection and, if the daemon offers it, the change feed.
async fn connect(socket: &std::path::Path) -> Result<(Client, Option<Subscription>), ClientError> {
    let client = Client::connect(socket).await?;
    let feed = match Client::connect(socket).await?.subscribe().await {
        Ok(s) => Some(s),
        Err(e) if e.is_connection() => return Err(e),
        Err(e) => {
            tracing::warn!(error = %e, "no change feed: the console shows what it asks for");
            None
        }
    };
    Ok((client, feed))
}

fn not_sent(why: &str) -> NetEvent {
    NetEvent::Acted {
        summary: format!("not sent, nothing changed: {why}; try again once connected"),
        ok: false,
    }
}

/// Serves effects and changes until the connection fails (returns the
/// error) or the UI is gone (None).
async fn session(
    client: &mut Client,
    mut feed: Option<Subscription>,
    events: &mpsc::UnboundedSender<NetEvent>,
    effects: &mut mpsc::UnboundedReceiver<Effect>,
) -> Option<ClientError> {
    // The request connection must not look idle to the daemon: a ping when
    // no request went out for KEEPALIVE, whatever the change feed does.
    let mut quiet_until = tokio::time::Instant::now() + KEEPALIVE;
    loop {
        let change = async {
            match feed.as_mut() {
                Some(f) => f.next().await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            first = effects.recv() => {
                let first = first?;
                let mut batch = vec![first];
                while let Ok(e) = effects.try_recv() {
                    batch.push(e);
                }
                let mut batch = coalesce(batch).into_iter();
                while let Some(effect) = batch.next() {
                    quiet_until = tokio::time::Instant::now() + KEEPALIVE;
                    let was_act = matches!(effect, Effect::Act(_));
                    match perform(client, effect).await {
                        Ok(evs) => {
                            for ev in evs {
                                if events.send(ev).is_err() {
                                    return None;
                                }
                            }
                        }
                        Err(e) => {
                            // Whether the daemon acted before the connection
                            // broke cannot be known; the view reads again
                            // once connected and shows what happened.
                            let why = format!("the connection broke ({e})");
                            let lost = batch.filter(|x| matches!(x, Effect::Act(_))).count();
                            if was_act {
                                let ev = NetEvent::Acted {
                                    summary: format!(
                                        "{why}: it may or may not have been done; check once connected"
                                    ),
                                    ok: false,
                                };
                                if events.send(ev).is_err() {
                                    return None;
                                }
                            } else if lost > 0 && events.send(not_sent(&why)).is_err() {
                                return None;
                            }
                            return Some(e);
                        }
                    }
                }
            }
            change = change => match change {
                Ok(c) => {
                    if events.send(NetEvent::Changed(c)).is_err() {
                        return None;
                    }
                }
                Err(e) => return Some(e),
            },
            _ = tokio::time::sleep_until(quiet_until) => {
                quiet_until = tokio::time::Instant::now() + KEEPALIVE;
                if let Err(e) = client.ping().await {
                    if e.is_connection() {
                        return Some(e);
                    }
                }
                if let Some(f) = feed.as_mut() {
                    // Finds a feed whose daemon went silent.
                    if let Err(e) = f.ping().await {
                        return Some(e);
                    }
                }
            }
        }
    }
}

/// Keeps the newest fetch of each kind (in the place of the first) and every
/// action, in order: a burst of changes or key presses asks once.
pub fn coalesce(batch: Vec<Effect>) -> Vec<Effect> {
    let mut out: Vec<Effect> = Vec::with_capacity(batch.len());
    for e in batch {
        match &e {
            Effect::Fetch(f) => {
                let slot = out
                    .iter_mut()
                    .find(|x| matches!(x, Effect::Fetch(g) if g.key() == f.key()));
                match slot {
                    Some(slot) => *slot = e,
                    None => out.push(e),
                }
            }
            Effect::Act(_) => out.push(e),
            Effect::Reconnect => {}
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use touchpoint_common::protocol::QueueFilter;

    #[test]
    fn coalescing_keeps_the_newest_fetch_of_a_kind_and_every_action() {
        let q = |offset| {
            Effect::Fetch(Fetch::Queue {
                filter: QueueFilter::default(),
                offset,
                limit: 10,
            })
        };
        let act = Effect::Act(Act::Approve {
            id: 1,
            comment: String::new(),
        });
        let out = coalesce(vec![
            q(0),
            Effect::Fetch(Fetch::Status),
            act.clone(),
            q(5),
            Effect::Reconnect,
        ]);
        assert_eq!(out, vec![q(5), Effect::Fetch(Fetch::Status), act]);
    }

    #[test]
    fn action_summaries_name_refusals() {
        use touchpoint_common::outbox::MessageStatus;
        let ok = |id| ActionResult {
            id,
            outcome: Ok(MessageStatus::Held),
        };
        let (s, ok_all) = action_summary(MessageAction::Hold, &[ok(1), ok(2)]);
        assert_eq!((s.as_str(), ok_all), ("held 2 messages", true));
        let refused = ActionResult {
            id: 3,
            outcome: Err("sent: cannot be held".into()),
        };
        let (s, ok_all) = action_summary(MessageAction::Hold, &[ok(1), refused]);
        assert_eq!(s, "held 1 of 2; #3: sent: cannot be held");
        assert!(!ok_all);
    }
}
