//! The console's event loop and terminal hygiene.
//!
//! Owns the terminal (raw mode, alternate screen, mouse) and gives it back
//! on every way out: quit, ctrl-c, a panic, SIGINT, SIGTERM and SIGHUP. Reads keys on a thread of its own;
//! everything it knows of the hub comes through a [`HubClient`] (the
//! change stream, audit pages, intents), off the drawing path, so drawing
//! never waits on I/O: a frame is drawn at once after a key, and at most 30
//! times a second while data moves; nothing is drawn while nothing
//! changes.

use std::io::{self, Stdout, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use ratatui::Terminal;
use ratatui::backend::CrosstermBackend;
use ratatui::crossterm::event::{
    self, DisableMouseCapture, EnableMouseCapture, Event as TermEvent, KeyEventKind, MouseButton,
    MouseEventKind,
};
use ratatui::crossterm::execute;
use ratatui::crossterm::terminal::{
    EnterAlternateScreen, LeaveAlternateScreen, disable_raw_mode, enable_raw_mode,
};
use tokio::sync::mpsc;

use crate::client::HubClient;
use crate::engine::Event;
use crate::tui::app::{App, AppOptions, AuditPage, AuditQuery, Intent, Level};
use crate::tui::audit::Seeker;
use crate::tui::keymap::{self, Keymap};
use crate::tui::theme::{self, Theme};
use crate::tui::view;

/// The fastest data-driven frame rate.
const MIN_FRAME: Duration = Duration::from_millis(33);

/// What the console starts with.
pub struct ConsoleSetup {
    /// The hub this console is attached to.
    pub client: HubClient,
    /// The console started the hub it talks to (quitting stops it).
    pub owns_hub: bool,
    pub log_path: PathBuf,
    /// The config dir whose `themes/` and `keymaps/` override the bundled.
    pub config_dir: Option<PathBuf>,
    pub theme: String,
    pub keymap: String,
    pub read_only: bool,
    /// Config problems to show in the status bar.
    pub problems: Vec<String>,
    /// When the process started (the first frame's latency is from here).
    pub started: Instant,
    /// What the console shows until the hub's first snapshot arrives.
    pub first: Arc<crate::hub::Snapshot>,
    /// Where the `:` history is kept (a private file in the data dir).
    pub history_path: Option<PathBuf>,
}

/// Loads the theme and keymap for a setup, falling back to the bundled
/// defaults; problems are appended to `problems`.
pub fn load_look(
    theme_name: &str,
    keymap_name: &str,
    config_dir: Option<&Path>,
    problems: &mut Vec<String>,
) -> (Theme, Keymap) {
    let mut terrs = Vec::new();
    let theme = theme::load(theme_name, config_dir, &mut terrs)
        .unwrap_or_else(Theme::fallback)
        .for_terminal(theme::ColourDepth::from_env());
    problems.extend(terrs.iter().map(|e| e.to_string()));
    let mut kerrs = Vec::new();
    let keymap = keymap::load(keymap_name, config_dir, &mut kerrs);
    problems.extend(kerrs.iter().map(|e| e.to_string()));
    (theme, keymap)
}

/// Every problem with the themes and keymaps `vigil check` can see: all
/// bundled ones, every file in the config dir's `themes/` and `keymaps/`,
/// and the theme and keymap selected.
pub fn check_look(theme_name: &str, keymap_name: &str, config_dir: Option<&Path>) -> Vec<String> {
    let mut out = Vec::new();
    let mut names = theme::names(config_dir);
    if !names.iter().any(|n| n == theme_name) {
        names.push(theme_name.to_string());
    }
    for n in names {
        let mut errs = Vec::new();
        let _ = theme::load(&n, config_dir, &mut errs);
        out.extend(errs.iter().map(|e| e.to_string()));
    }
    let mut kms = keymap::names(config_dir);
    if !kms.iter().any(|k| k == keymap_name) {
        kms.push(keymap_name.to_string());
    }
    for k in kms {
        let mut errs = Vec::new();
        let _ = keymap::load(&k, config_dir, &mut errs);
        out.extend(errs.iter().map(|e| e.to_string()));
    }
    out.dedup();
    out
}

fn restore_terminal() {
    let _ = disable_raw_mode();
    let mut out = io::stdout();
    let _ = execute!(
        out,
        DisableMouseCapture,
        LeaveAlternateScreen,
        ratatui::crossterm::cursor::Show
    );
    let _ = out.flush();
}

/// Raw mode, the alternate screen and mouse capture for as long as it
/// lives; restored on drop and on panic.
struct TerminalGuard {
    terminal: Terminal<CrosstermBackend<Stdout>>,
}

impl TerminalGuard {
    fn enter() -> io::Result<TerminalGuard> {
        let prev = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            restore_terminal();
            prev(info);
        }));
        enable_raw_mode()?;
        let mut out = io::stdout();
        if let Err(e) = execute!(out, EnterAlternateScreen, EnableMouseCapture) {
            restore_terminal();
            return Err(e);
        }
        let mut terminal = Terminal::new(CrosstermBackend::new(io::stdout()))?;
        terminal.hide_cursor()?;
        terminal.clear()?;
        Ok(TerminalGuard { terminal })
    }
}

impl Drop for TerminalGuard {
    fn drop(&mut self) {
        restore_terminal();
    }
}

enum Reply {
    Page(AuditPage),
    Notice(String, Level),
}

/// Reads terminal events on a thread of its own until `stop`.
fn input_thread(tx: mpsc::Sender<TermEvent>, stop: Arc<AtomicBool>) {
    while !stop.load(Ordering::Relaxed) {
        match event::poll(Duration::from_millis(200)) {
            Ok(true) => match event::read() {
                Ok(ev) => {
                    if tx.blocking_send(ev).is_err() {
                        return;
                    }
                }
                Err(_) => return,
            },
            Ok(false) => {}
            Err(_) => return,
        }
    }
}

/// Runs the console until the operator quits or SIGTERM/SIGHUP arrives.
pub async fn run(setup: ConsoleSetup) -> io::Result<()> {
    let started = setup.started;
    let mut problems = setup.problems.clone();
    let (theme, keymap) = load_look(
        &setup.theme,
        &setup.keymap,
        setup.config_dir.as_deref(),
        &mut problems,
    );
    for p in &problems {
        tracing::warn!("console: {p}");
    }
    let opts = AppOptions {
        read_only: setup.read_only,
        log_path: setup.log_path.clone(),
        config_dir: setup.config_dir.clone(),
        theme_names: theme::names(setup.config_dir.as_deref()),
        problems,
        history_path: setup.history_path.clone(),
    };
    let client = setup.client.clone();
    let (focus_tx, focus_rx) = tokio::sync::watch::channel(None);
    let mut snaps = client.follow(setup.first.clone(), setup.owns_hub, focus_rx);
    let first = snaps.borrow_and_update().clone();
    let mut app = App::new(first, theme, keymap, opts);

    let mut guard = TerminalGuard::enter()?;
    let stop = Arc::new(AtomicBool::new(false));
    let (key_tx, mut key_rx) = mpsc::channel::<TermEvent>(4096);
    let input = {
        let stop = stop.clone();
        std::thread::Builder::new()
            .name("vigil-input".into())
            .spawn(move || input_thread(key_tx, stop))?
    };
    let (reply_tx, mut reply_rx) = mpsc::channel::<Reply>(64);
    let (audit_tx, audit_rx) = tokio::sync::watch::channel::<Option<AuditQuery>>(None);
    tokio::spawn(audit_pages(client.clone(), audit_rx, reply_tx.clone()));
    let io = Io {
        client: client.clone(),
        audit: audit_tx,
        focus: focus_tx,
        replies: reply_tx,
        config_dir: setup.config_dir.clone(),
    };
    // Old snapshots are freed here, not on the UI thread: dropping ten
    // thousand alerts takes longer than drawing them.
    let (drop_tx, drop_rx) = std::sync::mpsc::channel::<Arc<crate::hub::Snapshot>>();
    std::thread::Builder::new()
        .name("vigil-snapshot-drop".into())
        .spawn(move || {
            for old in drop_rx {
                drop(old)
            }
        })?;
    let mut term_sig = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    let mut hup_sig = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup())?;
    let mut int_sig = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::interrupt())?;

    let mut last_frame: Option<Instant> = None;
    let mut attached = false;
    let mut snap_came = Instant::now();
    // The clock and ages move on between snapshots.
    let mut clock = tokio::time::interval(Duration::from_secs(1));
    clock.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    let result: io::Result<()> = loop {
        // Hand over what the app asked for.
        for intent in std::mem::take(&mut app.outbox) {
            perform(intent, &mut app, &io);
        }
        if app.quit {
            break Ok(());
        }
        let now = Instant::now();
        let next_flash = app.expire_flashes(now);
        if app.dirty && last_frame.is_none_or(|t| now >= t + MIN_FRAME) {
            if let Err(e) = guard.terminal.draw(|f| view::draw(f, &mut app)) {
                break Err(e);
            }
            if last_frame.is_none() {
                tracing::info!(
                    "console: first frame {:.1} ms after the process started",
                    started.elapsed().as_secs_f64() * 1000.0
                );
            }
            app.dirty = false;
            last_frame = Some(now);
        }
        let frame_due = app.dirty.then(|| last_frame.map_or(now, |t| t + MIN_FRAME));
        let wake = [frame_due, next_flash].into_iter().flatten().min();
        let sleep = async {
            match wake {
                Some(t) => tokio::time::sleep_until(t.into()).await,
                None => std::future::pending::<()>().await,
            }
        };
        tokio::select! {
            ev = key_rx.recv() => {
                let Some(ev) = ev else { break Ok(()) };
                let now = Instant::now();
                on_term_event(&mut app, ev, now);
                while let Ok(ev) = key_rx.try_recv() {
                    on_term_event(&mut app, ev, now);
                }
                // A key is answered at once, not at the data frame rate.
                for intent in std::mem::take(&mut app.outbox) {
                    perform(intent, &mut app, &io);
                }
                if app.dirty && !app.quit {
                    if let Err(e) = guard.terminal.draw(|f| view::draw(f, &mut app)) {
                        break Err(e);
                    }
                    app.dirty = false;
                    last_frame = Some(Instant::now());
                }
            }
            changed = snaps.changed() => {
                if changed.is_err() {
                    break Ok(());
                }
                let s = snaps.borrow_and_update().clone();
                snap_came = Instant::now();
                if !attached && s.link.as_ref().is_some_and(|l| l.up) {
                    attached = true;
                    tracing::info!(
                        to = client.label(),
                        "console: attached; the hub's snapshot ({} alerts) arrived {:.1} ms after the process started",
                        s.alerts.len(),
                        started.elapsed().as_secs_f64() * 1000.0
                    );
                }
                let old = app.set_snapshot(s, snap_came);
                let _ = drop_tx.send(old);
            }
            _ = clock.tick() => {
                let since = chrono::TimeDelta::from_std(snap_came.elapsed()).unwrap_or_default();
                // Redraw when the shown second changes.
                if (app.snap.at + since).timestamp() != app.now().timestamp() {
                    app.dirty = true;
                }
                app.since_snapshot = since;
            }
            reply = reply_rx.recv() => match reply {
                Some(Reply::Page(p)) => app.apply_audit_page(p),
                Some(Reply::Notice(t, l)) => app.flash(t, l, Instant::now()),
                None => {}
            },
            _ = term_sig.recv() => break Ok(()),
            _ = hup_sig.recv() => break Ok(()),
            _ = int_sig.recv() => break Ok(()),
            _ = sleep => {}
        }
    };
    stop.store(true, Ordering::Relaxed);
    drop(guard);
    let _ = input.join();
    result
}

fn on_term_event(app: &mut App, ev: TermEvent, now: Instant) {
    // Debug builds panic on a key when asked, so that the end-to-end tests
    // can check that a panic gives the terminal back.
    #[cfg(debug_assertions)]
    if matches!(ev, TermEvent::Key(_)) && std::env::var_os("VIGIL_CONSOLE_TEST_PANIC").is_some() {
        panic!("VIGIL_CONSOLE_TEST_PANIC: a panic on purpose");
    }
    match ev {
        TermEvent::Key(k) if k.kind != KeyEventKind::Release => app.on_key(&k, now),
        TermEvent::Resize(_, _) => app.dirty = true,
        TermEvent::Mouse(m) => match m.kind {
            MouseEventKind::Down(MouseButton::Left) => app.click(m.column, m.row),
            MouseEventKind::ScrollDown => app.scroll_at(m.column, m.row, 3, now),
            MouseEventKind::ScrollUp => app.scroll_at(m.column, m.row, -3, now),
            _ => {}
        },
        TermEvent::FocusGained => app.dirty = true,
        _ => {}
    }
}

/// Fetches audit pages and runs seeks; only the newest query matters.
async fn audit_pages(
    client: HubClient,
    mut queries: tokio::sync::watch::Receiver<Option<AuditQuery>>,
    out: mpsc::Sender<Reply>,
) {
    while queries.changed().await.is_ok() {
        let Some(q) = queries.borrow_and_update().clone() else {
            continue;
        };
        let mut page = AuditPage {
            generation: q.generation,
            before: q.before,
            seek: q.seek,
            ..AuditPage::default()
        };
        let got = match q.seek {
            None => client
                .audit_page(&q.filter, q.before, q.limit, q.count)
                .await
                .map(|(records, total)| (records, total, false)),
            Some(seek) => {
                let mut s = Seeker::new(seek, q.head, q.limit);
                let mut err = None;
                // A bound on round trips (a few binary searches).
                for _ in 0..300 {
                    let Some(req) = s.next() else { break };
                    match client
                        .audit_page(&q.filter, req.before, req.limit, false)
                        .await
                    {
                        Ok((recs, _)) => s.feed(recs),
                        Err(e) => {
                            err = Some(e);
                            break;
                        }
                    }
                }
                match (err, s.finish()) {
                    (Some(e), _) => Err(e),
                    (None, Some((recs, head))) => Ok((recs, None, head)),
                    (None, None) => Err("the audit trail changed while it was searched".into()),
                }
            }
        };
        match got {
            Ok((records, total, head)) => {
                page.records = records;
                page.total = total;
                page.head = head;
            }
            Err(e) => page.error = Some(e),
        }
        if out.send(Reply::Page(page)).await.is_err() {
            return;
        }
    }
}

/// Puts `text` on the clipboard through the terminal (OSC 52), which
/// works over SSH and in tmux (`set-clipboard on`).
fn osc52(text: &str) {
    let seq = format!("\x1b]52;c;{}\x07", base64(text.as_bytes()));
    let mut out = io::stdout();
    let _ = out.write_all(seq.as_bytes());
    let _ = out.flush();
}

fn base64(b: &[u8]) -> String {
    const T: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut s = String::with_capacity(b.len().div_ceil(3) * 4);
    for c in b.chunks(3) {
        let n = (u32::from(c[0]) << 16)
            | (u32::from(*c.get(1).unwrap_or(&0)) << 8)
            | u32::from(*c.get(2).unwrap_or(&0));
        for i in 0..4 {
            if i <= c.len() {
                s.push(T[(n >> (18 - 6 * i)) as usize & 63] as char);
            } else {
                s.push('=');
            }
        }
    }
    s
}

/// What the console's intents are carried out with.
struct Io {
    client: HubClient,
    audit: tokio::sync::watch::Sender<Option<AuditQuery>>,
    focus: tokio::sync::watch::Sender<Option<String>>,
    replies: mpsc::Sender<Reply>,
    config_dir: Option<PathBuf>,
}

/// Runs `call` off the UI task; its error (or `ok`) comes back as a flash.
fn in_background<F>(replies: &mpsc::Sender<Reply>, call: F)
where
    F: std::future::Future<Output = Result<Option<String>, String>> + Send + 'static,
{
    let replies = replies.clone();
    tokio::spawn(async move {
        let notice = match call.await {
            Ok(Some(ok)) => Some(Reply::Notice(ok, Level::Good)),
            Ok(None) => None,
            Err(e) => Some(Reply::Notice(e, Level::Bad)),
        };
        if let Some(n) = notice {
            let _ = replies.send(n).await;
        }
    });
}

fn perform(intent: Intent, app: &mut App, io: &Io) {
    let config_dir = io.config_dir.as_deref();
    let now = Instant::now();
    let c = io.client.clone();
    match intent {
        Intent::Hub(ev) => match ev {
            Event::Approve { action, .. } => in_background(&io.replies, async move {
                c.approve(&action.to_string())
                    .await
                    .map(|()| None)
                    .map_err(|e| format!("approval of {action} refused: {e}"))
            }),
            Event::Reject { action, reason, .. } => in_background(&io.replies, async move {
                c.reject(&action.to_string(), &reason)
                    .await
                    .map(|()| None)
                    .map_err(|e| format!("rejection of {action} refused: {e}"))
            }),
            Event::SetDryRun { on, .. } => in_background(&io.replies, async move {
                c.set_dry_run(on)
                    .await
                    .map(|()| None)
                    .map_err(|e| format!("dry-run not changed: {e}"))
            }),
            Event::SetFrozen { on, .. } => in_background(&io.replies, async move {
                c.set_frozen(on)
                    .await
                    .map(|()| None)
                    .map_err(|e| format!("freeze not changed: {e}"))
            }),
            Event::ResetBreaker {
                runbook, target, ..
            } => in_background(&io.replies, async move {
                c.reset_breaker(&runbook, &target)
                    .await
                    .map(|()| None)
                    .map_err(|e| format!("breaker not reset: {e}"))
            }),
            other => app.flash(
                format!("the console cannot send {other:?}"),
                Level::Bad,
                now,
            ),
        },
        Intent::Audit(q) => {
            io.audit.send_replace(Some(q));
        }
        Intent::Copy(text) => osc52(&text),
        Intent::ExportAudit(p) => in_background(&io.replies, async move {
            c.export(&p)
                .await
                .map(|n| Some(format!("exported {n} records to {}", p.display())))
        }),
        Intent::Focus(fp) => {
            io.focus.send_replace(fp);
        }
        Intent::Theme(name) => {
            let mut errs = Vec::new();
            match theme::load(&name, config_dir, &mut errs) {
                Some(t) if errs.is_empty() => {
                    app.theme = t.for_terminal(theme::ColourDepth::from_env());
                    app.flash(format!("theme {name}"), Level::Info, now);
                }
                _ => app.flash(
                    format!(
                        "theme {name}: {}",
                        errs.first().map(|e| e.to_string()).unwrap_or_default()
                    ),
                    Level::Bad,
                    now,
                ),
            }
        }
        Intent::Silence {
            fingerprint,
            duration,
            comment,
        } => {
            app.flash(format!("silencing for {duration}..."), Level::Info, now);
            // The Alertmanager call must not hold up the keys.
            in_background(&io.replies, async move {
                let o = c
                    .silence(&fingerprint, &duration, &comment)
                    .await
                    .map_err(|e| format!("silence not created: {e}"))?;
                let until = o["until"]
                    .as_str()
                    .and_then(|t| t.parse::<crate::model::Time>().ok())
                    .map(|t| t.format("%H:%M UTC").to_string())
                    .unwrap_or_default();
                Ok(Some(match o["alertmanager"].as_str() {
                    Some(am) => format!(
                        "silenced until {until} in {am} (silence {})",
                        o["id"].as_str().unwrap_or("?")
                    ),
                    None => {
                        format!("silenced in Vigil until {until} (no runbook proposed meanwhile)")
                    }
                }))
            });
        }
        Intent::Run {
            runbook,
            target,
            params,
        } => in_background(&io.replies, async move {
            c.run(&runbook, &target, &params)
                .await
                .map(|()| Some(format!("{runbook}@{target} proposed")))
                .map_err(|e| format!("run refused: {e}"))
        }),
        Intent::Repropose { fingerprint } => in_background(&io.replies, async move {
            c.repropose(&fingerprint)
                .await
                .map(|()| Some("proposed again".to_string()))
                .map_err(|e| format!("not proposed: {e}"))
        }),
        Intent::ProposeAnalysis {
            fingerprint,
            runbook,
        } => in_background(&io.replies, async move {
            c.propose_recommended(&fingerprint, &runbook)
                .await
                .map(|()| Some(format!("{runbook} proposed (the analysis' recommendation)")))
                .map_err(|e| format!("{runbook} not proposed: {e}"))
        }),
        Intent::Unsilence { fingerprint } => in_background(&io.replies, async move {
            let o = c
                .unsilence(&fingerprint)
                .await
                .map_err(|e| format!("silence not ended: {e}"))?;
            Ok(Some(format!(
                "silence {} ended",
                o["expired"].as_str().unwrap_or("?")
            )))
        }),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn base64_is_the_standard_alphabet_with_padding() {
        assert_eq!(super::base64(b""), "");
        assert_eq!(super::base64(b"A000042"), "QTAwMDA0Mg==");
        assert_eq!(super::base64(b"ab"), "YWI=");
        assert_eq!(super::base64(b"abc"), "YWJj");
    }
}
