//! The console's event loop and terminal hygiene.
//!
//! Owns the terminal (raw mode, alternate screen, mouse) and gives it back
//! on quit, on panic and on SIGTERM. Reads keys on a thread of its own and
//! the audit trail on another, so drawing never waits on I/O: a frame is
//! drawn at once after a key, and at most 30 times a second while data
//! moves; nothing is drawn while nothing changes.

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

use crate::hub::HubHandle;
use crate::store::Store;
use crate::tui::app::{App, AppOptions, AuditPage, AuditQuery, Intent, Level};
use crate::tui::keymap::{self, Keymap};
use crate::tui::theme::{self, Theme};
use crate::tui::view;

/// The fastest data-driven frame rate.
const MIN_FRAME: Duration = Duration::from_millis(33);

/// What the console starts with.
pub struct ConsoleSetup {
    pub handle: HubHandle,
    pub data_dir: PathBuf,
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
    /// Creates silences (in Alertmanager for its alerts, in Vigil for its
    /// own); `None` in a console with no hub I/O.
    pub silencer: Option<crate::ingest::silence::Silencer>,
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
    let theme = theme::load(theme_name, config_dir, &mut terrs).unwrap_or_else(Theme::fallback);
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
    let mut kms: Vec<String> = keymap::BUNDLED.iter().map(|(n, _)| n.to_string()).collect();
    if let Some(d) = config_dir
        && let Ok(rd) = std::fs::read_dir(d.join("keymaps"))
    {
        for e in rd.flatten() {
            let p = e.path();
            if p.extension().is_some_and(|x| x == "toml")
                && let Some(stem) = p.file_stem().and_then(|s| s.to_str())
                && !kms.iter().any(|k| k == stem)
            {
                kms.push(stem.to_string());
            }
        }
    }
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

enum AuditJob {
    Query(AuditQuery),
    Export(PathBuf),
}

enum Reply {
    Page(AuditPage),
    Notice(String, Level),
}

/// Serves audit pages from a read-only connection, off the UI thread.
fn audit_reader(dir: PathBuf, jobs: std::sync::mpsc::Receiver<AuditJob>, out: mpsc::Sender<Reply>) {
    let mut store: Option<Store> = None;
    while let Ok(first) = jobs.recv() {
        // Only the newest query of each kind matters.
        let mut batch = vec![first];
        while let Ok(j) = jobs.try_recv() {
            batch.push(j);
        }
        let newest_gen = batch
            .iter()
            .filter_map(|j| match j {
                AuditJob::Query(q) => Some(q.generation),
                _ => None,
            })
            .max();
        for job in batch {
            if store.is_none() {
                match Store::open_read_only(&dir) {
                    Ok(s) => store = Some(s),
                    Err(e) => {
                        if let AuditJob::Query(q) = &job {
                            let _ = out.blocking_send(Reply::Page(AuditPage {
                                generation: q.generation,
                                before: q.before,
                                records: Vec::new(),
                                total: None,
                                error: Some(e.to_string()),
                            }));
                        }
                        continue;
                    }
                }
            }
            let Some(s) = store.as_ref() else { continue };
            match job {
                AuditJob::Query(q) => {
                    if Some(q.generation) != newest_gen {
                        continue;
                    }
                    let page = s.page(&q.filter, q.before, q.limit);
                    let total = if q.count {
                        s.count(&q.filter).ok()
                    } else {
                        None
                    };
                    let reply = match page {
                        Ok(records) => AuditPage {
                            generation: q.generation,
                            before: q.before,
                            records,
                            total,
                            error: None,
                        },
                        Err(e) => AuditPage {
                            generation: q.generation,
                            before: q.before,
                            records: Vec::new(),
                            total,
                            error: Some(e.to_string()),
                        },
                    };
                    if out.blocking_send(Reply::Page(reply)).is_err() {
                        return;
                    }
                }
                AuditJob::Export(path) => {
                    let msg = export(s, &path);
                    let _ = out.blocking_send(match msg {
                        Ok(n) => Reply::Notice(
                            format!("exported {n} records to {}", path.display()),
                            Level::Good,
                        ),
                        Err(e) => Reply::Notice(e, Level::Bad),
                    });
                }
            }
        }
    }
}

/// Writes the whole trail as JSON lines to a new file (never overwrites).
fn export(s: &Store, path: &Path) -> Result<u64, String> {
    let f = crate::private::private_file_options()
        .write(true)
        .create_new(true)
        .open(path)
        .map_err(|e| {
            if e.kind() == io::ErrorKind::AlreadyExists {
                format!("{} exists; export writes a new file only", path.display())
            } else {
                format!("cannot create {}: {e}", path.display())
            }
        })?;
    let mut w = io::BufWriter::new(f);
    let n = s
        .export_jsonl(&mut w, None)
        .map_err(|e| format!("export failed: {e}"))?;
    w.flush()
        .map_err(|e| format!("cannot write {}: {e}", path.display()))?;
    Ok(n)
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
    };
    let handle = setup.handle.clone();
    let mut snaps = handle.snapshots.clone();
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
    let (job_tx, job_rx) = std::sync::mpsc::channel::<AuditJob>();
    let (reply_tx, mut reply_rx) = mpsc::channel::<Reply>(64);
    let io = Io {
        handle: handle.clone(),
        jobs: job_tx,
        replies: reply_tx.clone(),
        silencer: setup.silencer.clone(),
        config_dir: setup.config_dir.clone(),
    };
    {
        let dir = setup.data_dir.clone();
        std::thread::Builder::new()
            .name("vigil-audit-reader".into())
            .spawn(move || audit_reader(dir, job_rx, reply_tx))?;
    }
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

    let mut last_frame: Option<Instant> = None;
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
            _ = sleep => {}
        }
    };
    stop.store(true, Ordering::Relaxed);
    drop(guard);
    let _ = input.join();
    result
}

fn on_term_event(app: &mut App, ev: TermEvent, now: Instant) {
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

/// What the console's intents are carried out with.
struct Io {
    handle: HubHandle,
    jobs: std::sync::mpsc::Sender<AuditJob>,
    replies: mpsc::Sender<Reply>,
    silencer: Option<crate::ingest::silence::Silencer>,
    config_dir: Option<PathBuf>,
}

fn perform(intent: Intent, app: &mut App, io: &Io) {
    let (handle, jobs, config_dir) = (&io.handle, &io.jobs, io.config_dir.as_deref());
    let now = Instant::now();
    match intent {
        Intent::Hub(ev) => {
            if let Err(e) = handle.events.try_send(ev) {
                app.flash(
                    format!("the hub did not take it ({e}); try again"),
                    Level::Bad,
                    now,
                );
            }
        }
        Intent::Audit(q) => {
            let _ = jobs.send(AuditJob::Query(q));
        }
        Intent::ExportAudit(p) => {
            let _ = jobs.send(AuditJob::Export(p));
        }
        Intent::Focus(fp) => {
            handle.focus.send_replace(fp);
        }
        Intent::Theme(name) => {
            let mut errs = Vec::new();
            match theme::load(&name, config_dir, &mut errs) {
                Some(t) if errs.is_empty() => {
                    app.theme = t;
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
            let Some(silencer) = io.silencer.clone() else {
                return app.flash("silences are not available here", Level::Bad, now);
            };
            let actor = app.snap.operator.clone();
            let replies = io.replies.clone();
            app.flash(format!("silencing for {duration}..."), Level::Info, now);
            // The Alertmanager call must not hold up the keys.
            tokio::spawn(async move {
                let notice = match silencer
                    .silence(&fingerprint, &duration, &actor, &comment)
                    .await
                {
                    Ok(o) => Reply::Notice(
                        match &o.alertmanager {
                            Some(am) => format!(
                                "silenced until {} in {am} (silence {})",
                                o.until.format("%H:%M UTC"),
                                o.id
                            ),
                            None => format!(
                                "silenced in Vigil until {} (no runbook proposed meanwhile)",
                                o.until.format("%H:%M UTC")
                            ),
                        },
                        Level::Good,
                    ),
                    Err(e) => Reply::Notice(format!("silence not created: {e}"), Level::Bad),
                };
                let _ = replies.send(notice).await;
            });
        }
        Intent::Unsilence { fingerprint } => {
            let Some(silencer) = io.silencer.clone() else {
                return app.flash("silences are not available here", Level::Bad, now);
            };
            let actor = app.snap.operator.clone();
            let replies = io.replies.clone();
            tokio::spawn(async move {
                let notice = match silencer.expire(&fingerprint, &actor).await {
                    Ok(id) => Reply::Notice(format!("silence {id} ended"), Level::Good),
                    Err(e) => Reply::Notice(format!("silence not ended: {e}"), Level::Bad),
                };
                let _ = replies.send(notice).await;
            });
        }
    }
}
