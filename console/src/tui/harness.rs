//! The console without a terminal: keys in, frames out, every effect
//! carried out against a real daemon before the next key. Used by the
//! end-to-end tests and the console benchmark; the interactive console runs
//! the same [`App`] and [`net::perform`].

use std::path::Path;

use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use ratatui::backend::TestBackend;
use ratatui::buffer::Buffer;
use ratatui::Terminal;
use touchpoint_common::protocol::Changes;

use super::app::{App, AppState};
use super::msg::NetEvent;
use super::{net, ui};
use crate::client::{Client, ClientError};

pub struct Harness {
    pub app: App,
    pub client: Client,
    terminal: Terminal<TestBackend>,
}

impl Harness {
    /// Connects like the console does and settles the first view.
    pub async fn attach(
        socket: &Path,
        width: u16,
        height: u16,
        readonly: bool,
    ) -> Result<Harness, ClientError> {
        let client = Client::connect(socket).await?;
        let terminal = Terminal::new(TestBackend::new(width, height))
            .map_err(|e| ClientError::Protocol(format!("test terminal: {e}")))?;
        let mut app = App::new(AppState::new(socket.display().to_string(), readonly));
        app.resize(width, height);
        app.apply(NetEvent::Connected {
            daemon: client.daemon().to_string(),
            identity: client.identity().clone(),
        });
        let mut h = Harness {
            app,
            client,
            terminal,
        };
        h.settle().await?;
        Ok(h)
    }

    /// Carries out effects (and the effects their answers cause) until none
    /// is left; returns how many requests that took.
    pub async fn settle(&mut self) -> Result<usize, ClientError> {
        let mut requests = 0;
        for _ in 0..32 {
            let effects = net::coalesce(self.app.take_effects());
            if effects.is_empty() {
                return Ok(requests);
            }
            for e in effects {
                requests += 1;
                for ev in net::perform(&mut self.client, e).await? {
                    self.app.apply(ev);
                }
            }
        }
        Err(ClientError::Protocol(
            "the console kept asking: effects did not settle".into(),
        ))
    }

    /// A key press, then settle.
    pub async fn press(&mut self, key: KeyEvent) -> Result<(), ClientError> {
        self.app.key(key);
        self.settle().await.map(|_| ())
    }

    pub async fn press_code(&mut self, code: KeyCode) -> Result<(), ClientError> {
        self.press(KeyEvent::new(code, KeyModifiers::NONE)).await
    }

    /// Types text character by character (into an input, or as keys).
    pub async fn type_text(&mut self, text: &str) -> Result<(), ClientError> {
        for c in text.chars() {
            let mods = if c.is_uppercase() {
                KeyModifiers::SHIFT
            } else {
                KeyModifiers::NONE
            };
            self.app.key(KeyEvent::new(KeyCode::Char(c), mods));
        }
        self.settle().await.map(|_| ())
    }

    /// What the change feed would deliver, then settle.
    pub async fn changed(&mut self, changes: Changes) -> Result<(), ClientError> {
        self.app.apply(NetEvent::Changed(changes));
        self.settle().await.map(|_| ())
    }

    pub fn resize(&mut self, width: u16, height: u16) {
        self.app.resize(width, height);
        self.terminal.backend_mut().resize(width, height);
    }

    /// Draws a frame and returns it; keeps where it put things, as the
    /// console does, for the next mouse event.
    pub fn draw(&mut self) -> &Buffer {
        let state = &self.app.state;
        let mut hits = Default::default();
        // Drawing into a TestBackend cannot fail.
        let _ = self.terminal.draw(|f| hits = ui::draw(f, state));
        self.app.hits = hits;
        self.terminal.backend().buffer()
    }

    /// Draws a frame and returns it as text, one line per row, trailing
    /// blanks trimmed.
    pub fn screen(&mut self) -> String {
        buffer_text(self.draw())
    }
}

/// `state` drawn on a terminal of `width` × `height`, as text (see
/// [`buffer_text`]).
pub fn render(state: &AppState, width: u16, height: u16) -> String {
    let mut terminal = match Terminal::new(TestBackend::new(width, height)) {
        Ok(t) => t,
        Err(e) => return format!("test terminal: {e}"),
    };
    // Drawing into a TestBackend cannot fail.
    let _ = terminal.draw(|f| {
        ui::draw(f, state);
    });
    buffer_text(terminal.backend().buffer())
}

pub fn buffer_text(buf: &Buffer) -> String {
    let area = buf.area;
    let mut out = String::new();
    for y in area.top()..area.bottom() {
        let mut line = String::new();
        for x in area.left()..area.right() {
            if let Some(cell) = buf.cell((x, y)) {
                line.push_str(cell.symbol());
            }
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}
