//! The console's state and what commands do to it. Pure: no terminal, no
//! clock reads (time comes in as an `Instant`), no I/O. What the console
//! wants done elsewhere (hub events, audit queries, an export, a copy) goes
//! to `outbox` as `Intent`s for the event loop.
//!
//! A key and a `:` command reach the same [`App::invoke`], gated by the
//! same registry entry (`commands`); every dangerous action passes through
//! a confirmation (`dialogs`) and `read_only` refuses them all.

use std::collections::{HashMap, VecDeque};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::engine::{Action, Alert, Event};
use crate::hub::Snapshot;
use crate::model::{ActionId, ActionState, AlertStatus};
use crate::tui::commands::{UiAction, action_info, by_command};
use crate::tui::filters::{action_matches, alert_matches};
use crate::tui::keymap::{Key, Keymap, Lookup, Scope};
use crate::tui::theme::Theme;

pub use crate::tui::audit::{AUDIT_PAGE, AuditPage, AuditQuery, AuditView, Seek};
pub use crate::tui::derived::Derived;
pub use crate::tui::dialogs::{Confirm, Confirmed, action_lines};
pub use crate::tui::panes::{ListState, Pane};
pub use crate::tui::popups::Popup;
pub use crate::tui::prompt::History;

/// How long a flash message stays.
pub const FLASH_FOR: Duration = Duration::from_secs(5);

/// A row of the Alerts pane.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AlertRow {
    /// Index into `Snapshot::alerts`.
    Alert(usize),
    /// Index into `Snapshot::pending`.
    Pending(usize),
}

/// Something for the event loop to do.
#[derive(Debug, Clone)]
pub enum Intent {
    Hub(Event),
    /// Ask the audit reader for a page (newest first) or a seek.
    Audit(AuditQuery),
    /// Write the audit trail to a file.
    ExportAudit(PathBuf),
    /// Tell the hub which alert the operator looks at.
    Focus(Option<String>),
    /// Switch to another theme by name.
    Theme(String),
    Silence {
        fingerprint: String,
        duration: String,
        comment: String,
    },
    /// End an alert's silence now (in Alertmanager too).
    Unsilence {
        fingerprint: String,
    },
    /// Propose a manual run as this console's operator.
    Run {
        runbook: String,
        target: String,
        params: std::collections::BTreeMap<String, String>,
    },
    /// Propose the alert's runbook again.
    Repropose {
        fingerprint: String,
    },
    /// Propose the runbook the alert's analysis recommends (the hub takes
    /// the parameters from the analysis).
    ProposeAnalysis {
        fingerprint: String,
        runbook: String,
    },
    /// Put text on the terminal's clipboard (OSC 52).
    Copy(String),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Level {
    Info,
    Good,
    Bad,
}

#[derive(Debug, Clone)]
pub struct Flash {
    pub text: String,
    pub level: Level,
    pub until: Instant,
}

/// Options the console starts with.
#[derive(Debug, Clone, Default)]
pub struct AppOptions {
    pub read_only: bool,
    pub log_path: PathBuf,
    pub config_dir: Option<PathBuf>,
    pub theme_names: Vec<String>,
    /// Problems with the config, theme or keymap, shown until dismissed.
    pub problems: Vec<String>,
    /// Where the `:` history is kept.
    pub history_path: Option<PathBuf>,
}

pub struct App {
    pub snap: Arc<Snapshot>,
    /// Time since the snapshot was taken: the hub publishes only when
    /// something changes, and ages and the clock move on meanwhile.
    pub since_snapshot: chrono::TimeDelta,
    pub theme: Theme,
    pub keymap: Keymap,
    pub opts: AppOptions,
    pub focus: Pane,
    /// The list Detail and Runbooks follow: Alerts or Approvals.
    pub context: Pane,
    pub zoom: bool,
    pub popup: Option<Popup>,
    pub flashes: VecDeque<Flash>,
    pub quit: bool,
    pub outbox: Vec<Intent>,
    /// Firing, then pending, then resolved alerts after the filter.
    pub alert_rows: Vec<AlertRow>,
    pub alert_filter: String,
    pub alert_sel: usize,
    selected_fp: Option<String>,
    /// Open actions, awaiting a human first (indices into `snap.actions`).
    pub approval_rows: Vec<usize>,
    pub approval_sel: usize,
    pub approval_filter: String,
    pub suggestion_sel: usize,
    /// The selection and filter of each plain list pane (by
    /// `Pane::index`; see `panes::ListSpec`).
    pub lists: Vec<ListState>,
    pub detail_scroll: u16,
    pub audit: AuditView,
    pub history: History,
    pending_keys: Vec<Key>,
    known_states: HashMap<ActionId, ActionState>,
    /// Set when something visible changed and a frame is due.
    pub dirty: bool,
    /// Rows visible in the focused list (for page moves), set by the view.
    pub page_rows: usize,
    /// Where each pane was drawn last (for the mouse), set by the view.
    pub pane_areas: Vec<(Pane, ratatui::layout::Rect)>,
    pub derived: Derived,
}

impl App {
    pub fn new(snap: Arc<Snapshot>, theme: Theme, keymap: Keymap, opts: AppOptions) -> App {
        let mut keymap = keymap;
        if opts.read_only {
            keymap.strip_dangerous();
        }
        let history = History::load(opts.history_path.clone());
        let mut app = App {
            snap,
            theme,
            keymap,
            opts,
            focus: Pane::Alerts,
            context: Pane::Alerts,
            zoom: false,
            popup: None,
            flashes: VecDeque::new(),
            quit: false,
            outbox: Vec::new(),
            alert_rows: Vec::new(),
            alert_filter: String::new(),
            alert_sel: 0,
            selected_fp: None,
            approval_rows: Vec::new(),
            approval_sel: 0,
            approval_filter: String::new(),
            suggestion_sel: 0,
            lists: vec![ListState::default(); Pane::ALL.len()],
            detail_scroll: 0,
            audit: AuditView::default(),
            history,
            pending_keys: Vec::new(),
            known_states: HashMap::new(),
            dirty: true,
            since_snapshot: chrono::TimeDelta::zero(),
            page_rows: 10,
            pane_areas: Vec::new(),
            derived: Derived::default(),
        };
        app.derived = Derived::of(&app.snap);
        for a in app.snap.actions.iter() {
            app.known_states.insert(a.id, a.state);
        }
        app.rebuild_rows();
        app.refresh_audit(true);
        app
    }

    // ----- data -------------------------------------------------------

    /// The time shown: the snapshot's, moved on by the time since it came.
    pub fn now(&self) -> crate::model::Time {
        self.snap.at + self.since_snapshot
    }

    /// Takes a new snapshot from the hub; returns the previous one so that
    /// the caller can free it off the UI thread.
    pub fn set_snapshot(&mut self, snap: Arc<Snapshot>, now: Instant) -> Arc<Snapshot> {
        let old = std::mem::replace(&mut self.snap, snap);
        self.since_snapshot = chrono::TimeDelta::zero();
        self.derived = Derived::of(&self.snap);
        self.flash_transitions(now);
        self.rebuild_rows();
        if self.snap.audit_seq > self.audit.seen_seq && self.audit.at_head {
            self.refresh_audit(false);
        }
        self.dirty = true;
        old
    }

    fn flash_transitions(&mut self, now: Instant) {
        let mut msgs = Vec::new();
        for a in self.snap.actions.iter() {
            let before = self.known_states.insert(a.id, a.state);
            if before == Some(a.state) {
                continue;
            }
            let what = format!("{} {}@{}", a.id, a.runbook, crate::model::clean(&a.target));
            let m = match a.state {
                ActionState::AwaitingApproval
                    if before.is_none() || before == Some(ActionState::Proposed) =>
                {
                    Some((format!("{what} awaits approval"), Level::Info))
                }
                ActionState::Approved => Some((format!("{what} approved"), Level::Good)),
                ActionState::Running => Some((format!("{what} executing"), Level::Info)),
                ActionState::Done if a.detail.starts_with("dry-run") => {
                    Some((format!("{what} planned (dry-run)"), Level::Info))
                }
                ActionState::Done => Some((format!("{what} succeeded and verified"), Level::Good)),
                ActionState::RetryWaiting => {
                    Some((format!("{what} failed; will retry"), Level::Bad))
                }
                ActionState::Escalated => Some((format!("{what} failed; escalated"), Level::Bad)),
                ActionState::Rejected => Some((format!("{what} rejected"), Level::Info)),
                ActionState::Expired => Some((format!("{what} expired unapproved"), Level::Bad)),
                ActionState::Interrupted => {
                    Some((format!("{what} was interrupted; decide again"), Level::Bad))
                }
                _ => None,
            };
            if let Some(m) = m {
                msgs.push(m);
            }
        }
        // Keep the map small: forget actions no longer shown.
        if self.known_states.len() > 4 * self.snap.actions.len() + 64 {
            let ids: std::collections::HashSet<ActionId> =
                self.snap.actions.iter().map(|a| a.id).collect();
            self.known_states.retain(|k, _| ids.contains(k));
        }
        for (t, l) in msgs {
            self.flash(t, l, now);
        }
    }

    pub fn flash(&mut self, text: impl Into<String>, level: Level, now: Instant) {
        self.flashes.push_back(Flash {
            text: text.into(),
            level,
            until: now + FLASH_FOR,
        });
        while self.flashes.len() > 4 {
            self.flashes.pop_front();
        }
        self.dirty = true;
    }

    /// Drops expired flashes; the next time one expires, if any.
    pub fn expire_flashes(&mut self, now: Instant) -> Option<Instant> {
        let before = self.flashes.len();
        self.flashes.retain(|f| f.until > now);
        if self.flashes.len() != before {
            self.dirty = true;
        }
        self.flashes.iter().map(|f| f.until).min()
    }

    pub(crate) fn rebuild_rows(&mut self) {
        let f = self.alert_filter.to_lowercase();
        let snap = &self.snap;
        let mut rows: Vec<AlertRow> = Vec::with_capacity(snap.alerts.len() + snap.pending.len());
        let firing = snap
            .alerts
            .iter()
            .position(|a| a.status == AlertStatus::Resolved)
            .unwrap_or(snap.alerts.len());
        let keep = |a: &Alert| f.is_empty() || alert_matches(a, &f);
        rows.extend(
            (0..firing)
                .filter(|&i| keep(&snap.alerts[i]))
                .map(AlertRow::Alert),
        );
        rows.extend(
            snap.pending
                .iter()
                .enumerate()
                .filter(|(_, p)| {
                    f.is_empty()
                        || p.name.to_lowercase().contains(&f)
                        || "pending".contains(&f)
                        || p.labels.values().any(|v| v.to_lowercase().contains(&f))
                })
                .map(|(i, _)| AlertRow::Pending(i)),
        );
        rows.extend(
            (firing..snap.alerts.len())
                .filter(|&i| keep(&snap.alerts[i]))
                .map(AlertRow::Alert),
        );
        self.alert_rows = rows;
        // Keep the same alert selected when it is still there.
        if let Some(fp) = &self.selected_fp
            && let Some(pos) = self.alert_rows.iter().position(
                |r| matches!(r, AlertRow::Alert(i) if &self.snap.alerts[*i].fingerprint == fp),
            )
        {
            self.alert_sel = pos;
        }
        self.alert_sel = self.alert_sel.min(self.alert_rows.len().saturating_sub(1));

        let af = self.approval_filter.to_lowercase();
        let mut rows: Vec<usize> = self
            .snap
            .actions
            .iter()
            .enumerate()
            .filter(|(_, a)| !a.state.is_final() || a.state == ActionState::Interrupted)
            .filter(|(_, a)| af.is_empty() || action_matches(a, &af))
            .map(|(i, _)| i)
            .collect();
        rows.sort_by_key(|&i| {
            let a = &self.snap.actions[i];
            (
                !matches!(
                    a.state,
                    ActionState::AwaitingApproval | ActionState::Interrupted
                ),
                a.id,
            )
        });
        self.approval_rows = rows;
        self.approval_sel = self
            .approval_sel
            .min(self.approval_rows.len().saturating_sub(1));
        self.suggestion_sel = self
            .suggestion_sel
            .min(self.snap.suggestions.len().saturating_sub(1));
        for p in Pane::ALL {
            let n = self.list_rows(p).map_or(0, |r| r.len());
            let l = &mut self.lists[p.index()];
            l.sel = l.sel.min(n.saturating_sub(1));
        }
        self.note_context();
    }

    /// Tells the hub when the alert in context changed (Detail and
    /// Runbooks follow it).
    fn note_context(&mut self) {
        let fp = self.context_alert().map(|a| a.fingerprint.clone());
        if fp != self.selected_fp || (fp.is_some() && self.snap.focus != fp) {
            if fp != self.selected_fp {
                self.detail_scroll = 0;
                self.suggestion_sel = 0;
            }
            self.selected_fp = fp.clone();
            if self.snap.focus != fp {
                self.outbox.push(Intent::Focus(fp));
            }
        }
    }

    /// The alert selected in Alerts.
    pub fn selected_alert(&self) -> Option<&Alert> {
        match self.alert_rows.get(self.alert_sel)? {
            AlertRow::Alert(i) => self.snap.alerts.get(*i).map(|a| &**a),
            AlertRow::Pending(_) => None,
        }
    }

    /// The alert Detail and Runbooks show: the selected alert, or the
    /// alert of the selected approval when Approvals was used last.
    pub fn context_alert(&self) -> Option<&Alert> {
        match self.context {
            Pane::Approvals => {
                let fp = &self.selected_action()?.fingerprint;
                self.derived.alert(&self.snap, fp)
            }
            _ => self.selected_alert(),
        }
    }

    pub fn selected_action(&self) -> Option<&Action> {
        self.approval_rows
            .get(self.approval_sel)
            .and_then(|&i| self.snap.actions.get(i))
    }

    /// What the console keeps for a plain list pane.
    pub fn list(&self, p: Pane) -> &ListState {
        &self.lists[p.index()]
    }

    /// The rows of a plain list pane after its filter (None: not one).
    pub fn list_rows(&self, p: Pane) -> Option<Vec<usize>> {
        let spec = p.spec().list.as_ref()?;
        Some((spec.rows)(self, &self.lists[p.index()].filter))
    }

    /// The action an approve or reject applies to: the selected approval
    /// when Approvals is in context, else the selected alert's action.
    pub(crate) fn action_in_focus(&self) -> Option<&Action> {
        if self.focus == Pane::Approvals || self.context == Pane::Approvals {
            return self.selected_action();
        }
        let fp = &self.selected_alert()?.fingerprint;
        self.derived
            .action_of(&self.snap, fp)
            .filter(|a| !a.state.is_final() || a.state == ActionState::Interrupted)
    }

    /// Actions awaiting approval.
    pub fn pending(&self) -> usize {
        self.derived.pending_approvals
    }

    /// Who else is attached to the hub (this console's own entry left out).
    pub fn others_attached(&self) -> Vec<String> {
        let mut names: Vec<String> = self.snap.presence.iter().map(|p| p.name.clone()).collect();
        if let Some(me) = self.snap.link.as_ref().and_then(|l| l.me.as_ref())
            && let Some(i) = names.iter().position(|n| *n == me.name)
        {
            names.remove(i);
        }
        names
    }

    // ----- keys -------------------------------------------------------

    /// Handles one key press.
    pub fn on_key(&mut self, ev: &ratatui::crossterm::event::KeyEvent, now: Instant) {
        self.dirty = true;
        if self.popup.is_some() {
            self.popup_key(ev, now);
            return;
        }
        let Some(key) = Key::from_event(ev) else {
            return;
        };
        self.pending_keys.push(key);
        let scope = Scope::Pane(self.focus);
        match self.keymap.lookup(scope, &self.pending_keys) {
            Lookup::Prefix => {}
            Lookup::Action(a) => {
                self.pending_keys.clear();
                self.run(a, now);
            }
            Lookup::None => {
                let was_seq = self.pending_keys.len() > 1;
                self.pending_keys.clear();
                // A key after an unfinished sequence starts afresh.
                if was_seq && let Lookup::Action(a) = self.keymap.lookup(scope, &[key]) {
                    self.run(a, now);
                }
            }
        }
    }

    /// The keys of a prefix typed so far (shown in the hint bar).
    pub fn pending_keys(&self) -> &[Key] {
        &self.pending_keys
    }

    /// Does one command as a key does (no arguments).
    pub fn run(&mut self, a: UiAction, now: Instant) {
        if let Err(e) = self.invoke(a, &[], now) {
            self.flash(e, Level::Bad, now);
        }
    }

    /// Runs one palette line; the error says what is accepted.
    pub fn command(&mut self, line: &str, now: Instant) -> Result<(), String> {
        let words: Vec<&str> = line.split_whitespace().collect();
        let Some((&cmd, args)) = words.split_first() else {
            return Ok(());
        };
        let cmd = if cmd == "q" { "quit" } else { cmd };
        let Some(info) = by_command(cmd) else {
            return Err(format!(
                "unknown command {cmd:?}; commands: {}",
                crate::tui::commands::ACTIONS
                    .iter()
                    .filter(|i| !i.palette.is_empty())
                    .map(|i| i.palette)
                    .collect::<Vec<_>>()
                    .join(", ")
            ));
        };
        self.invoke(info.action, args, now)
    }

    /// Does one command, from a key (no `args`) or the palette. The one
    /// place a command is refused in read-only mode.
    pub fn invoke(&mut self, a: UiAction, args: &[&str], now: Instant) -> Result<(), String> {
        let info = action_info(a);
        if self.opts.read_only && info.dangerous {
            return Err(format!("read-only: {} is not available", info.name));
        }
        let usage = || format!("usage: {}", info.palette);
        use UiAction as U;
        match (a, args) {
            (U::Quit, _) => self.ask_quit(),
            (U::Help, _) => self.popup = Some(Popup::Help { scroll: 0 }),
            (U::Filter, _) => self.open_filter(),
            (U::Palette, _) => self.open_palette(""),
            (U::Cancel, _) => {
                if self.zoom {
                    self.zoom = false;
                } else {
                    self.clear_filter();
                }
            }
            (U::FocusNext, _) => {
                let n = Pane::ALL.len();
                self.set_focus(Pane::ALL[(self.focus.index() + 1) % n])
            }
            (U::FocusPrev, _) => {
                let n = Pane::ALL.len();
                self.set_focus(Pane::ALL[(self.focus.index() + n - 1) % n])
            }
            (U::Zoom, _) => self.zoom = !self.zoom,
            (U::Up, _) => self.move_by(-1),
            (U::Down, _) => self.move_by(1),
            (U::PageUp, _) => self.move_by(-(self.page_rows.max(1) as i64)),
            (U::PageDown, _) => self.move_by(self.page_rows.max(1) as i64),
            (U::Top, _) if self.focus == Pane::Audit => self.audit_newest(),
            (U::Bottom, _) if self.focus == Pane::Audit => self.audit_oldest(),
            (U::Top, _) => self.move_by(i64::MIN / 2),
            (U::Bottom, _) => self.move_by(i64::MAX / 2),
            (U::Open, _) => self.open(),
            (U::Focus(p), _) => self.set_focus(p),
            (U::Copy, _) => self.copy_selected(now),
            (U::Approve, [] | [_]) => self.ask_approve(args.first().copied(), now),
            (U::Reject, _) => {
                let (id, reason) = match args.first() {
                    Some(x) if ActionId::parse(x).is_some() => (Some(*x), args[1..].join(" ")),
                    _ => (None, args.join(" ")),
                };
                self.ask_reject(id, &reason, now)
            }
            (U::ToggleDryRun, []) => self.ask_dry_run(!self.snap.modes.dry_run),
            (U::ToggleDryRun, ["on"]) => self.ask_dry_run(true),
            (U::ToggleDryRun, ["off"]) => self.ask_dry_run(false),
            (U::ToggleFreeze, _) => self.ask_freeze(!self.snap.modes.frozen),
            (U::Freeze, []) => self.ask_freeze(true),
            (U::Unfreeze, []) => self.ask_freeze(false),
            (U::ResetBreaker, []) => self.ask_reset_breaker(None, now),
            (U::ResetBreaker, [rb, t]) => {
                self.ask_reset_breaker(Some((rb.to_string(), t.to_string())), now)
            }
            (U::Silence, []) => self.ask_silence("1h", "", now),
            (U::Silence, [d, rest @ ..]) => self.ask_silence(d, &rest.join(" "), now),
            (U::Unsilence, []) => self.ask_unsilence(now),
            (U::Run, [rb, host, kvs @ ..]) => {
                let mut params = std::collections::BTreeMap::new();
                for kv in kvs {
                    let Some((k, v)) = kv.split_once('=') else {
                        return Err(format!("{kv:?} is not KEY=VALUE; {}", usage()));
                    };
                    params.insert(k.to_string(), v.to_string());
                }
                self.ask_run(rb, host, params);
            }
            (U::Propose, []) => self.ask_repropose(now),
            (U::ProposeAnalysis, []) => self.ask_propose_analysis(None, now),
            (U::ProposeAnalysis, [rb]) => self.ask_propose_analysis(Some(rb), now),
            (U::NextTheme, _) => {
                let names = &self.opts.theme_names;
                if !names.is_empty() {
                    let i = names
                        .iter()
                        .position(|n| *n == self.theme.name)
                        .map_or(0, |i| (i + 1) % names.len());
                    self.outbox.push(Intent::Theme(names[i].clone()));
                }
            }
            (U::Theme, [name]) => {
                if !self.opts.theme_names.iter().any(|n| n == name) {
                    return Err(format!(
                        "no theme {name:?}; known: {}",
                        self.opts.theme_names.join(", ")
                    ));
                }
                self.outbox.push(Intent::Theme(name.to_string()));
            }
            (U::Theme, _) => {
                return Err(format!(
                    "theme NAME; known: {}",
                    self.opts.theme_names.join(", ")
                ));
            }
            (U::Export, ["audit", path]) => {
                self.outbox.push(Intent::ExportAudit(PathBuf::from(path)));
            }
            (U::Export, _) => return Err("export audit PATH (JSON lines)".into()),
            (U::Goto, [seq]) => {
                let n: u64 = seq
                    .trim_start_matches('#')
                    .parse()
                    .map_err(|_| format!("{seq:?} is not a sequence number; {}", usage()))?;
                self.audit_seek(Seek::Seq(n.max(1)));
            }
            (U::Since, [_, ..]) => {
                let t = crate::tui::audit::parse_since(&args.join(" "), self.now())?;
                self.audit_seek(Seek::Since(t));
            }
            _ => return Err(usage()),
        }
        Ok(())
    }

    fn set_focus(&mut self, p: Pane) {
        self.focus = p;
        if matches!(p, Pane::Alerts | Pane::Approvals) && self.context != p {
            self.context = p;
            self.note_context();
        }
    }

    fn open(&mut self) {
        match self.focus {
            Pane::Alerts | Pane::Approvals => self.focus = Pane::Detail,
            Pane::Audit => {
                if let Some(r) = self.audit.rows.get(self.audit.selected) {
                    self.popup = Some(Popup::Record {
                        record: Box::new(r.clone()),
                        scroll: 0,
                    });
                }
            }
            _ => {}
        }
    }

    /// `y`: the selected action's id (Approvals, or an alert's action),
    /// an audit record's action id or seq, or the alert's name and host.
    fn copy_selected(&mut self, now: Instant) {
        let text = match self.focus {
            Pane::Audit => self
                .audit
                .rows
                .get(self.audit.selected)
                .map(|r| r.action_id.clone().unwrap_or_else(|| r.seq.to_string())),
            Pane::Suggestions => self.snap.suggestions.get(self.suggestion_sel).map(|s| {
                s.plan
                    .iter()
                    .map(|p| p.display())
                    .collect::<Vec<_>>()
                    .join("\n")
            }),
            _ => self
                .action_in_focus()
                .map(|a| a.id.to_string())
                .or_else(|| {
                    self.context_alert()
                        .map(|a| format!("{} {}", a.name, a.host().unwrap_or("")))
                }),
        };
        match text.filter(|t| !t.is_empty()) {
            Some(t) => {
                let what = if t.len() > 40 {
                    format!("{} characters", t.chars().count())
                } else {
                    t.clone()
                };
                self.copy(t, what, now)
            }
            None => self.flash("nothing selected to copy", Level::Bad, now),
        }
    }

    pub(crate) fn copy(&mut self, text: String, what: String, now: Instant) {
        self.outbox.push(Intent::Copy(text));
        self.flash(
            format!("copied {what} (through the terminal: OSC 52)"),
            Level::Info,
            now,
        );
    }

    /// The selected row and the number of rows of a list pane.
    pub fn list_position(&self, pane: Pane) -> Option<(usize, usize)> {
        match pane {
            Pane::Alerts => Some((self.alert_sel, self.alert_rows.len())),
            Pane::Approvals => Some((self.approval_sel, self.approval_rows.len())),
            Pane::Audit => Some((self.audit.selected, self.audit.rows.len())),
            p => Some((self.list(p).sel, self.list_rows(p)?.len())),
        }
    }

    fn select_row(&mut self, pane: Pane, i: usize) {
        match pane {
            Pane::Alerts => {
                self.alert_sel = i;
                self.context = Pane::Alerts;
            }
            Pane::Approvals => {
                self.approval_sel = i;
                self.context = Pane::Approvals;
            }
            Pane::Audit => self.audit_select(i),
            Pane::Suggestions => self.suggestion_sel = i,
            p => self.lists[p.index()].sel = i,
        }
        self.note_context();
    }

    fn move_by(&mut self, d: i64) {
        let pane = self.focus;
        let (sel, len) = match pane {
            Pane::Detail => {
                self.detail_scroll = (i64::from(self.detail_scroll) + d).clamp(0, 2000) as u16;
                return;
            }
            Pane::Suggestions => (self.suggestion_sel, self.snap.suggestions.len()),
            p => self.list_position(p).unwrap_or((0, 0)),
        };
        if pane == Pane::Audit && sel == 0 && d < 0 && !self.audit.at_head {
            self.audit_seek(Seek::Newer(self.audit.rows.first().map_or(0, |r| r.seq)));
            return;
        }
        if len == 0 {
            return;
        }
        let i = (sel as i64).saturating_add(d).clamp(0, len as i64 - 1) as usize;
        self.select_row(pane, i);
    }

    fn pane_at(&self, col: u16, row: u16) -> Option<(Pane, ratatui::layout::Rect)> {
        self.pane_areas
            .iter()
            .find(|(_, r)| r.contains(ratatui::layout::Position { x: col, y: row }))
            .copied()
    }

    /// A left click: focuses the pane under the pointer, and in a list
    /// selects the row clicked.
    pub fn click(&mut self, col: u16, row: u16) {
        if self.popup.is_some() {
            return;
        }
        let Some((pane, r)) = self.pane_at(col, row) else {
            return;
        };
        self.dirty = true;
        let was = self.focus;
        self.set_focus(pane);
        // Row 0 is the border, row 1 the column header.
        let line = usize::from(row.saturating_sub(r.y + 2));
        if row < r.y + 2 || row + 1 >= r.bottom() || was != pane {
            return;
        }
        let h = usize::from(r.height.saturating_sub(3));
        if let Some((sel, len)) = self.list_position(pane) {
            let start = crate::tui::panes::window(sel, h);
            if start + line < len {
                self.select_row(pane, start + line);
            }
        }
    }

    /// The mouse wheel over a pane scrolls it without moving the focus
    /// for good.
    pub fn scroll_at(&mut self, col: u16, row: u16, d: i64, _now: Instant) {
        if self.popup.is_some() {
            return;
        }
        let Some((pane, _)) = self.pane_at(col, row) else {
            return;
        };
        self.dirty = true;
        let was = self.focus;
        self.focus = pane;
        self.move_by(d);
        self.focus = was;
    }
}
