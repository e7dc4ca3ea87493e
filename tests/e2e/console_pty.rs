//! The real `touchpoint` binary in a pseudo-terminal: keys are typed into
//! the terminal, the screen is read back through a terminal emulator
//! (vt100), and what the keys did is checked on the daemon. Also: a resize,
//! the daemon going away and coming back, and the terminal restored on quit.

use std::io::{Read, Write};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use nix::pty::{openpty, Winsize};
use touchpoint_common::outbox::MessageStatus;
use touchpoint_common::protocol::{PauseScope, QueueFilter};
use touchpoint_tests::{bin, DaemonProcess, Options, TestDaemon};

use crate::today::{brand_due_at_once, dealer_file, plan_customers};

const WAIT: Duration = Duration::from_secs(15);

/// A console running in a pseudo-terminal.
struct Terminal {
    child: Child,
    master: std::fs::File,
    screen: Arc<Mutex<vt100::Parser>>,
    raw: Arc<Mutex<Vec<u8>>>,
}

impl Terminal {
    fn start(socket: &Path, home: &Path, cols: u16, rows: u16) -> Terminal {
        let size = Winsize {
            ws_row: rows,
            ws_col: cols,
            ws_xpixel: 0,
            ws_ypixel: 0,
        };
        let pty = openpty(Some(&size), None).expect("openpty");
        let slave = pty.slave;
        let child = Command::new(bin("touchpoint"))
            .arg("--socket")
            .arg(socket)
            .env("TERM", "xterm-256color")
            .env("HOME", home)
            .env("XDG_STATE_HOME", home)
            .stdin(Stdio::from(slave.try_clone().expect("dup")))
            .stdout(Stdio::from(slave.try_clone().expect("dup")))
            .stderr(Stdio::from(slave))
            .spawn()
            .expect("spawn touchpoint");
        let master = std::fs::File::from(pty.master);
        let screen = Arc::new(Mutex::new(vt100::Parser::new(rows, cols, 0)));
        let raw = Arc::new(Mutex::new(Vec::new()));
        let mut reader = master.try_clone().expect("dup master");
        let (s, r) = (screen.clone(), raw.clone());
        std::thread::spawn(move || {
            let mut buf = [0u8; 8192];
            // Ends when the console exits (EIO on the master).
            while let Ok(n) = reader.read(&mut buf) {
                if n == 0 {
                    break;
                }
                if let Ok(mut p) = s.lock() {
                    p.process(&buf[..n]);
                }
                if let Ok(mut v) = r.lock() {
                    v.extend_from_slice(&buf[..n]);
                }
            }
        });
        Terminal {
            child,
            master,
            screen,
            raw,
        }
    }

    fn contents(&self) -> String {
        self.screen
            .lock()
            .map(|p| p.screen().contents())
            .unwrap_or_default()
    }

    fn wait_for(&self, text: &str) {
        let deadline = Instant::now() + WAIT;
        while !self.contents().contains(text) {
            assert!(
                Instant::now() < deadline,
                "{text:?} never appeared; the screen:\n{}",
                self.contents()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn type_keys(&mut self, keys: &str) {
        self.master.write_all(keys.as_bytes()).expect("type");
        self.master.flush().expect("flush");
    }

    fn resize(&mut self, cols: u16, rows: u16) {
        let size = rustix::termios::Winsize {
            ws_row: rows,
            ws_col: cols,
            ws_xpixel: 0,
            ws_ypixel: 0,
        };
        rustix::termios::tcsetwinsize(&self.master, size).expect("resize");
        if let Ok(mut p) = self.screen.lock() {
            p.screen_mut().set_size(rows, cols);
        }
        // The kernel signals the foreground process group of the terminal;
        // the console is not in one (no controlling terminal), so tell it.
        let pid = nix::unistd::Pid::from_raw(self.child.id() as i32);
        let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGWINCH);
    }
}

impl Drop for Terminal {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn the_real_console_in_a_pseudo_terminal() {
    let files = tempfile::tempdir().expect("tempdir");
    let mut d = TestDaemon::start_with(Options {
        dealer_files: vec![dealer_file(files.path())],
        brand: Some(brand_due_at_once()),
        dispatch: Some("[dispatch]\ntick_ms = 50\nbatch_at = \"23:59\"\n".into()),
        ..Options::default()
    });
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    rt.block_on(async {
        let mut c = d.client().await;
        c.pause(PauseScope::default()).await.expect("pause");
        plan_customers(&mut c, files.path()).await;
    });

    let mut t = Terminal::start(&d.socket, files.path(), 100, 30);
    t.wait_for("1 Overview");
    t.wait_for("● live");
    t.wait_for(" per tenant ");

    // The queue, by a click on its tab (the terminal reports the mouse
    // as SGR: button 0 pressed at column, row, 1-based), filtered to one
    // customer, marked and held.
    let tabs = t.contents().lines().next().unwrap_or_default().to_string();
    // Its title or only its number, as the width allows.
    let at = tabs.find(" 2 ").expect("the queue's tab") + 1;
    let column = tabs[..at].chars().count() + 1;
    t.type_keys(&format!("\x1b[<0;{column};1M\x1b[<0;{column};1m"));
    t.wait_for("Messages 1 of 6");
    t.type_keys("/");
    t.wait_for("Filter the queue");
    t.type_keys("k-3\r");
    t.wait_for("1 match");
    t.type_keys(" H");
    t.wait_for("Hold 1 message");
    t.type_keys("y");
    t.wait_for("held 1 message");
    let held = rt.block_on(async {
        let mut c = d.client().await;
        c.queue(&QueueFilter::parse("status:held").expect("filter"), 0, 10)
            .await
            .expect("queue")
    });
    assert_eq!(held.total, 1);
    assert_eq!(held.rows.first().map(|r| r.recipient.as_str()), Some("K-3"));
    assert_eq!(
        held.rows.first().map(|r| r.status),
        Some(MessageStatus::Held)
    );

    // Smaller and larger terminals: drawn again, nothing breaks.
    t.resize(40, 10);
    t.wait_for("Messag");
    t.resize(160, 48);
    t.wait_for("Messages 1 of 1");

    // The daemon goes away: the console says so, and reconnects by itself
    // when the daemon is back (the real binary, on the same state).
    d.stop_in_place();
    t.wait_for("disconnected");
    let log = files.path().join("touchpointd.log");
    let _daemon = DaemonProcess::spawn(&d.config_file, &d.socket, &log);
    t.wait_for("● live");
    t.type_keys("r");
    t.wait_for("1 match");

    // q quits and gives the terminal back (alternate screen left, cursor shown).
    t.type_keys("q");
    let deadline = Instant::now() + WAIT;
    let status = loop {
        if let Some(s) = t.child.try_wait().expect("wait") {
            break s;
        }
        assert!(Instant::now() < deadline, "the console did not quit");
        std::thread::sleep(Duration::from_millis(20));
    };
    assert!(status.success(), "{status:?}");
    std::thread::sleep(Duration::from_millis(100));
    let raw = t.raw.lock().map(|v| v.clone()).unwrap_or_default();
    let tail = String::from_utf8_lossy(&raw[raw.len().saturating_sub(64)..]).into_owned();
    assert!(
        tail.contains("\x1b[?1049l"),
        "alternate screen not left: {tail:?}"
    );
    assert!(
        tail.contains("\x1b[?25h"),
        "cursor not shown again: {tail:?}"
    );
    let tail = String::from_utf8_lossy(&raw[raw.len().saturating_sub(256)..]).into_owned();
    assert!(
        tail.contains("\x1b[?1000l"),
        "mouse capture not given back: {tail:?}"
    );
}
