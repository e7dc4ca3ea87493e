//! The TUI's connection: connects (and reconnects with back-off), polls the
//! daemon, and reports what it learns as [`NetEvent`]s.

use std::path::PathBuf;
use std::time::Duration;

use tokio::sync::mpsc;
use touchpoint_common::TenantId;

use super::app::{Effect, NetEvent};
use crate::client::{Client, ClientError};

/// How often the daemon is polled while connected. A push subscription will
/// replace this.
pub const POLL_EVERY: Duration = Duration::from_secs(2);
const BACKOFF_FIRST: Duration = Duration::from_millis(500);
const BACKOFF_MAX: Duration = Duration::from_secs(10);

/// Runs until the UI drops its end of either channel.
pub async fn run(
    socket: PathBuf,
    events: mpsc::UnboundedSender<NetEvent>,
    mut effects: mpsc::UnboundedReceiver<Effect>,
) {
    let mut watched: Option<TenantId> = None;
    let mut backoff = BACKOFF_FIRST;
    let mut attempt: u32 = 1;
    loop {
        if events.send(NetEvent::Connecting { attempt }).is_err() {
            return;
        }
        let error = match Client::connect(&socket).await {
            Ok(mut client) => {
                backoff = BACKOFF_FIRST;
                attempt = 1;
                let connected = NetEvent::Connected {
                    daemon: client.daemon().to_string(),
                    identity: client.identity().clone(),
                };
                if events.send(connected).is_err() {
                    return;
                }
                match session(&mut client, &events, &mut effects, &mut watched).await {
                    Some(e) => e,
                    None => return,
                }
            }
            Err(e) => e,
        };
        tracing::info!(error = %error, attempt, "daemon connection down");
        if events
            .send(NetEvent::Disconnected {
                error: error.to_string(),
                attempt,
            })
            .is_err()
        {
            return;
        }
        attempt = attempt.saturating_add(1);
        // Wait out the back-off; `r` retries at once.
        let wait = tokio::time::sleep(backoff);
        tokio::pin!(wait);
        loop {
            tokio::select! {
                _ = &mut wait => break,
                effect = effects.recv() => match effect {
                    None => return,
                    Some(Effect::Refresh) => break,
                    Some(Effect::Watch(t)) => watched = t,
                },
            }
        }
        backoff = (backoff * 2).min(BACKOFF_MAX);
    }
}

/// Polls until the connection fails (returns the error) or the UI is gone (None).
async fn session(
    client: &mut Client,
    events: &mpsc::UnboundedSender<NetEvent>,
    effects: &mut mpsc::UnboundedReceiver<Effect>,
    watched: &mut Option<TenantId>,
) -> Option<ClientError> {
    loop {
        if let Err(e) = poll_once(client, events, watched.as_ref()).await {
            match e {
                PollError::Gone => return None,
                PollError::Client(e) => return Some(e),
            }
        }
        let wait = tokio::time::sleep(POLL_EVERY);
        tokio::pin!(wait);
        tokio::select! {
            _ = &mut wait => {}
            effect = effects.recv() => match effect {
                None => return None,
                Some(Effect::Refresh) => {}
                Some(Effect::Watch(t)) => *watched = t,
            },
        }
    }
}

enum PollError {
    /// The UI dropped its receiver.
    Gone,
    Client(ClientError),
}

impl From<ClientError> for PollError {
    fn from(e: ClientError) -> Self {
        PollError::Client(e)
    }
}

async fn poll_once(
    client: &mut Client,
    events: &mpsc::UnboundedSender<NetEvent>,
    watched: Option<&TenantId>,
) -> Result<(), PollError> {
    let send = |ev: NetEvent| events.send(ev).map_err(|_| PollError::Gone);
    match client.status().await {
        Ok(s) => send(NetEvent::Status(Box::new(s)))?,
        Err(e) => refused_or_fatal(e, &send)?,
    }
    match client.tenants().await {
        Ok(t) => send(NetEvent::Tenants(t))?,
        Err(e) => refused_or_fatal(e, &send)?,
    }
    if let Some(t) = watched {
        match client.tenant(t).await {
            Ok(d) => send(NetEvent::Detail(Box::new(d)))?,
            Err(e) => refused_or_fatal(e, &send)?,
        }
    }
    Ok(())
}

/// A refusal is shown and polling goes on; a connection failure ends the session.
fn refused_or_fatal(
    e: ClientError,
    send: &impl Fn(NetEvent) -> Result<(), PollError>,
) -> Result<(), PollError> {
    if e.is_connection() {
        Err(PollError::Client(e))
    } else {
        send(NetEvent::RequestFailed(e.to_string()))
    }
}
