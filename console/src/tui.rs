//! The interactive console: ratatui + crossterm.
//!
//! Keys become [`action::Action`]s through the [`keymap`];
//! [`app::App::update`] hands each to the component of the view on screen,
//! which changes its state; [`ui::draw`] only renders. The screen is
//! redrawn when a key was pressed, the terminal was resized or the daemon's
//! data changed — never on a timer — and only once per batch of pending
//! events, which matters over SSH.
//!
//! ```text
//! action      View, Action: the vocabulary; imports nothing of the TUI
//! keymap      the bindings as data, help and footer hints from them; imports action
//! msg         Effect (Fetch, Act) to the connection, NetEvent (Data) back; nothing of the TUI
//! components  one per view: its state, update, fetches, answers, draw;
//!             never app, ui, net, harness, nor another component
//! popup       input, confirmation, a command's output, help: state, editing, drawing
//! command     the `:` line: editing, history, completion, parsing, its drawing;
//!             the daemon's commands as the subcommands parse them (crate::commands)
//! widgets     the drawing helpers the components and popups share; nothing of the TUI
//! app         shared state (view, connection, status, popup, notice) and routing;
//!             no drawing (ui, widgets), no connection (net, harness)
//! ui          the frame around the view on screen: tabs, footer, popup
//! hits        where the last frame put tabs, rows and panes, for the mouse
//! net         the connection task; of the TUI it imports msg only
//! harness     the console without a terminal, for tests and benchmarks
//! ```
//!
//! The tests in `lib.rs` check these arrows.

pub mod action;
pub mod app;
pub mod command;
pub mod components;
pub mod harness;
pub mod hits;
pub mod keymap;
pub mod msg;
pub mod net;
pub mod popup;
pub mod ui;
pub mod widgets;

#[cfg(test)]
mod tests;

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use crossterm::event::{self, DisableMouseCapture, EnableMouseCapture, Event};
use ratatui::DefaultTerminal;
use tokio::sync::mpsc;

use app::{App, AppState};
use msg::{Effect, NetEvent};

/// Restores the terminal however the TUI ends; the panic hook that
/// `ratatui::try_init` installs covers panics, and ours before it gives
/// the mouse back.
struct TerminalGuard {
    terminal: DefaultTerminal,
    /// Whether the terminal reports the mouse to us now.
    mouse: bool,
}

impl TerminalGuard {
    fn init() -> std::io::Result<Self> {
        match ratatui::try_init() {
            Ok(terminal) => {
                let restore = std::panic::take_hook();
                std::panic::set_hook(Box::new(move |info| {
                    release_mouse();
                    restore(info);
                }));
                Ok(Self {
                    terminal,
                    mouse: false,
                })
            }
            Err(e) => {
                ratatui::restore();
                Err(e)
            }
        }
    }

    /// Mouse capture on or off, as the app wants it.
    fn follow_mouse(&mut self, want: bool) -> std::io::Result<()> {
        if want != self.mouse {
            if want {
                crossterm::execute!(std::io::stdout(), EnableMouseCapture)?;
            } else {
                crossterm::execute!(std::io::stdout(), DisableMouseCapture)?;
            }
            self.mouse = want;
        }
        Ok(())
    }
}

/// Gives the mouse back to the terminal (harmless when it was not taken).
fn release_mouse() {
    let _ = crossterm::execute!(std::io::stdout(), DisableMouseCapture);
}

impl Drop for TerminalGuard {
    fn drop(&mut self) {
        release_mouse();
        ratatui::restore();
    }
}

/// Reads terminal events on a thread of its own (crossterm's reader blocks)
/// until `stop` is set or the receiver is gone.
fn spawn_input(tx: mpsc::UnboundedSender<Event>, stop: Arc<AtomicBool>) {
    let spawned = std::thread::Builder::new()
        .name("tui-input".into())
        .spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                match event::poll(Duration::from_millis(100)) {
                    Ok(true) => match event::read() {
                        Ok(ev) => {
                            if tx.send(ev).is_err() {
                                break;
                            }
                        }
                        Err(e) => {
                            tracing::error!(error = %e, "reading the terminal failed");
                            break;
                        }
                    },
                    Ok(false) => {}
                    Err(e) => {
                        tracing::error!(error = %e, "polling the terminal failed");
                        break;
                    }
                }
            }
        });
    if let Err(e) = spawned {
        tracing::error!(error = %e, "cannot start the input thread");
    }
}

/// Runs the console against the daemon at `socket` until the user quits;
/// `mouse`: capture the mouse from the start (`m` toggles it).
pub async fn run(socket: PathBuf, readonly: bool, mouse: bool) -> anyhow::Result<()> {
    use std::io::IsTerminal as _;
    if !std::io::stdout().is_terminal() || !std::io::stdin().is_terminal() {
        anyhow::bail!(
            "the interactive console needs a terminal; for scripts use the subcommands \
             (touchpoint --help)"
        );
    }
    let mut guard = TerminalGuard::init()?;
    let (net_tx, mut net_rx) = mpsc::unbounded_channel();
    let (effect_tx, effect_rx) = mpsc::unbounded_channel();
    let net = tokio::spawn(net::run(socket.clone(), net_tx, effect_rx));
    let (key_tx, mut key_rx) = mpsc::unbounded_channel();
    let stop = Arc::new(AtomicBool::new(false));
    spawn_input(key_tx, stop.clone());

    let mut state = AppState::new(socket.display().to_string(), readonly);
    // https://no-color.org: set and not empty.
    state.monochrome = std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty());
    state.mouse = mouse;
    let mut app = App::new(state);
    let result = event_loop(&mut guard, &mut app, &mut key_rx, &mut net_rx, &effect_tx).await;
    stop.store(true, Ordering::Relaxed);
    net.abort();
    drop(guard);
    result
}

async fn event_loop(
    guard: &mut TerminalGuard,
    app: &mut App,
    keys: &mut mpsc::UnboundedReceiver<Event>,
    net: &mut mpsc::UnboundedReceiver<NetEvent>,
    effects: &mpsc::UnboundedSender<Effect>,
) -> anyhow::Result<()> {
    let size = guard.terminal.size()?;
    app.resize(size.width, size.height);
    guard.follow_mouse(app.state.mouse)?;
    draw(&mut guard.terminal, app)?;
    let mut net_open = true;
    loop {
        let mut dirty = false;
        tokio::select! {
            ev = keys.recv() => match ev {
                Some(ev) => dirty |= on_terminal_event(app, ev),
                // The input thread ended: nothing can reach us any more.
                None => return Ok(()),
            },
            ev = net.recv(), if net_open => match ev {
                Some(ev) => dirty |= app.apply(ev),
                None => net_open = false,
            },
        }
        // Drain whatever else is pending, then draw once.
        while let Ok(ev) = keys.try_recv() {
            dirty |= on_terminal_event(app, ev);
        }
        while let Ok(ev) = net.try_recv() {
            dirty |= app.apply(ev);
        }
        for effect in app.take_effects() {
            // The connection task only goes away with the UI.
            let _ = effects.send(effect);
        }
        if app.state.quit {
            return Ok(());
        }
        guard.follow_mouse(app.state.mouse)?;
        if dirty {
            draw(&mut guard.terminal, app)?;
        }
    }
}

/// Draws a frame and keeps where it put things, for the next click.
fn draw(terminal: &mut DefaultTerminal, app: &mut App) -> std::io::Result<()> {
    let mut hits = hits::Hits::default();
    terminal.draw(|f| hits = ui::draw(f, &app.state))?;
    app.hits = hits;
    Ok(())
}

/// Returns whether the screen must be redrawn.
pub(crate) fn on_terminal_event(app: &mut App, ev: Event) -> bool {
    match ev {
        Event::Key(key) => app.key(key),
        Event::Mouse(m) => app.mouse(m),
        Event::Resize(w, h) => {
            app.resize(w, h);
            true
        }
        _ => false,
    }
}
