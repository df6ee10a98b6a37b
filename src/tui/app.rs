//! The console's state and what keys do to it. Pure: no terminal, no
//! clock reads (time comes in as an `Instant`), no I/O. What the console
//! wants done elsewhere (hub events, audit queries, an export) goes to
//! `outbox` as `Intent`s for the event loop.
//!
//! Every dangerous action passes through a confirmation with Cancel
//! focused; `read_only` refuses them all.

use std::collections::{HashMap, VecDeque};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tui_textarea::TextArea;

use crate::engine::{Action, Alert, Event};
use crate::hub::Snapshot;
use crate::model::{ActionId, ActionState, AlertStatus, Record};
use crate::store::AuditFilter;
use crate::tui::keymap::{ACTIONS, Key, KeyName, Keymap, Lookup, Scope, UiAction, action_info};
use crate::tui::theme::Theme;

/// How long a flash message stays.
pub const FLASH_FOR: Duration = Duration::from_secs(5);
/// Audit rows fetched per page.
pub const AUDIT_PAGE: usize = 200;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Pane {
    Alerts,
    Detail,
    Suggestions,
    Approvals,
    Audit,
    Hosts,
}

impl Pane {
    pub const ALL: [Pane; 6] = [
        Pane::Alerts,
        Pane::Detail,
        Pane::Suggestions,
        Pane::Approvals,
        Pane::Audit,
        Pane::Hosts,
    ];

    pub fn scope(self) -> Scope {
        match self {
            Pane::Alerts => Scope::Alerts,
            Pane::Detail => Scope::Detail,
            Pane::Suggestions => Scope::Suggestions,
            Pane::Approvals => Scope::Approvals,
            Pane::Audit => Scope::Audit,
            Pane::Hosts => Scope::Hosts,
        }
    }

    pub fn title(self) -> &'static str {
        match self {
            Pane::Alerts => "Alerts",
            Pane::Detail => "Detail",
            Pane::Suggestions => "Runbooks",
            Pane::Approvals => "Approvals",
            Pane::Audit => "Audit",
            Pane::Hosts => "Hosts",
        }
    }

    fn index(self) -> usize {
        Pane::ALL.iter().position(|p| *p == self).unwrap_or(0)
    }
}

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
    /// Ask the audit reader for a page (newest first).
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
}

#[derive(Debug, Clone, PartialEq)]
pub struct AuditQuery {
    pub generation: u64,
    pub filter: AuditFilter,
    pub before: Option<u64>,
    pub limit: usize,
    /// Count the matching records too (when the filter changed).
    pub count: bool,
}

/// The audit reader's answer.
#[derive(Debug, Clone)]
pub struct AuditPage {
    pub generation: u64,
    pub before: Option<u64>,
    pub records: Vec<Record>,
    pub total: Option<u64>,
    pub error: Option<String>,
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

/// What a confirmation does when the operator confirms.
#[derive(Debug, Clone, PartialEq)]
pub enum Confirmed {
    Approve(ActionId),
    Reject(ActionId),
    DryRun(bool),
    Freeze(bool),
    ResetBreaker {
        runbook: String,
        target: String,
    },
    Silence {
        fingerprint: String,
        duration: String,
        comment: String,
    },
    Unsilence {
        fingerprint: String,
    },
    /// Quit, stopping the hub others are attached to.
    Quit,
    /// Propose a manual run.
    Run {
        runbook: String,
        target: String,
        params: std::collections::BTreeMap<String, String>,
    },
    /// Propose an alert's runbook again.
    Repropose {
        fingerprint: String,
    },
}

/// A two-step confirmation: a question, what will happen, and two buttons
/// with Cancel focused.
#[derive(Debug)]
pub struct Confirm {
    pub title: String,
    pub lines: Vec<String>,
    pub ok_label: String,
    pub on_ok: Confirmed,
    /// false: Cancel is focused.
    pub ok_focused: bool,
    /// A reason to type (reject).
    pub reason: Option<TextArea<'static>>,
    pub error: Option<String>,
}

#[derive(Debug)]
pub enum Popup {
    Help {
        scroll: u16,
    },
    Confirm(Box<Confirm>),
    Palette {
        input: TextArea<'static>,
        error: Option<String>,
    },
    Filter {
        input: TextArea<'static>,
        pane: Pane,
        error: Option<String>,
    },
}

/// The audit pane's window onto the store.
#[derive(Debug, Default)]
pub struct AuditView {
    pub filter: AuditFilter,
    pub filter_text: String,
    pub rows: Vec<Record>,
    pub selected: usize,
    pub total: Option<u64>,
    pub generation: u64,
    pub loading: bool,
    /// No older records match.
    pub exhausted: bool,
    /// The audit seq the head was last fetched at.
    pub seen_seq: u64,
    pub error: Option<String>,
}

/// A 64-bit FNV-1a hash: the derived indexes key strings by it so that a
/// snapshot of ten thousand alerts costs no string copies. Every lookup
/// checks the string it finds.
fn h64(s: &str) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in s.as_bytes() {
        h ^= u64::from(*b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h
}

/// What the panes need from a snapshot that would cost a pass over every
/// alert or action: computed once per snapshot, not once per frame.
#[derive(Debug, Default)]
pub struct Derived {
    /// Firing alerts by severity (index: `Severity as usize`).
    pub firing: [usize; 4],
    /// Per host (by hash): the worst firing severity and up to 8 firing
    /// alerts (indices into `snap.alerts`).
    hosts: HashMap<u64, (crate::model::Severity, Vec<usize>)>,
    /// The action of each alert fingerprint (by hash), open ones first.
    action_of: HashMap<u64, usize>,
    /// The open action of each runbook@target (by hash).
    open_action: HashMap<u64, usize>,
    pub pending_approvals: usize,
}

fn pair_hash(a: &str, b: &str) -> u64 {
    h64(a) ^ h64(b).rotate_left(17)
}

impl Derived {
    pub fn of(snap: &Snapshot) -> Derived {
        let mut d = Derived {
            hosts: HashMap::with_capacity(256),
            action_of: HashMap::with_capacity(snap.actions.len()),
            open_action: HashMap::with_capacity(snap.actions.len()),
            ..Derived::default()
        };
        for (i, a) in snap.alerts.iter().enumerate() {
            if a.status != AlertStatus::Firing {
                continue;
            }
            d.firing[a.severity as usize] += 1;
            if let Some(h) = a.host() {
                let e = d.hosts.entry(h64(h)).or_insert((a.severity, Vec::new()));
                if a.severity > e.0 {
                    e.0 = a.severity;
                }
                if e.1.len() < 8 {
                    e.1.push(i);
                }
            }
        }
        for (i, a) in snap.actions.iter().enumerate() {
            if a.state == ActionState::AwaitingApproval {
                d.pending_approvals += 1;
            }
            let open = a.is_open();
            let k = h64(&a.fingerprint);
            match d.action_of.get(&k) {
                Some(&j) if !open || snap.actions[j].is_open() => {}
                _ => {
                    d.action_of.insert(k, i);
                }
            }
            if open {
                d.open_action
                    .entry(pair_hash(&a.runbook, &a.target))
                    .or_insert(i);
            }
        }
        d
    }

    /// The worst firing severity on `host`.
    pub fn host_worst(&self, host: &str) -> Option<crate::model::Severity> {
        self.hosts.get(&h64(host)).map(|e| e.0)
    }

    /// Firing alerts on `host` (at most 8), checked against the snapshot.
    pub fn host_alerts<'s>(&self, snap: &'s Snapshot, host: &str) -> Vec<&'s Alert> {
        self.hosts
            .get(&h64(host))
            .map(|e| {
                e.1.iter()
                    .filter_map(|&i| snap.alerts.get(i).map(|a| &**a))
                    .filter(|a| a.host() == Some(host))
                    .collect()
            })
            .unwrap_or_default()
    }

    /// The action of the alert with this fingerprint.
    pub fn action_of<'s>(&self, snap: &'s Snapshot, fp: &str) -> Option<&'s Action> {
        self.action_of
            .get(&h64(fp))
            .and_then(|&i| snap.actions.get(i))
            .filter(|a| a.fingerprint == fp)
    }

    /// The open action of runbook@target.
    pub fn open_action<'s>(
        &self,
        snap: &'s Snapshot,
        runbook: &str,
        target: &str,
    ) -> Option<&'s Action> {
        self.open_action
            .get(&pair_hash(runbook, target))
            .and_then(|&i| snap.actions.get(i))
            .filter(|a| a.runbook == runbook && a.target == target)
    }
}

/// Options the console starts with.
#[derive(Debug, Clone)]
pub struct AppOptions {
    pub read_only: bool,
    pub log_path: PathBuf,
    pub config_dir: Option<PathBuf>,
    pub theme_names: Vec<String>,
    /// Problems with the config, theme or keymap, shown until dismissed.
    pub problems: Vec<String>,
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
    pub host_sel: usize,
    pub host_filter: String,
    pub detail_scroll: u16,
    pub audit: AuditView,
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
        let mut app = App {
            snap,
            theme,
            keymap,
            opts,
            focus: Pane::Alerts,
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
            host_sel: 0,
            host_filter: String::new(),
            detail_scroll: 0,
            audit: AuditView::default(),
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
        if self.snap.audit_seq > self.audit.seen_seq && self.audit.selected == 0 {
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
            let what = format!("{} {}@{}", a.id, a.runbook, a.target);
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

    fn rebuild_rows(&mut self) {
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
        self.note_selected_alert();

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
        self.host_sel = self.host_sel.min(self.host_rows().len().saturating_sub(1));
    }

    fn note_selected_alert(&mut self) {
        let fp = self.selected_alert().map(|a| a.fingerprint.clone());
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

    pub fn selected_alert(&self) -> Option<&Alert> {
        match self.alert_rows.get(self.alert_sel)? {
            AlertRow::Alert(i) => self.snap.alerts.get(*i).map(|a| &**a),
            AlertRow::Pending(_) => None,
        }
    }

    pub fn selected_action(&self) -> Option<&Action> {
        self.approval_rows
            .get(self.approval_sel)
            .and_then(|&i| self.snap.actions.get(i))
    }

    pub fn host_rows(&self) -> Vec<usize> {
        let f = self.host_filter.to_lowercase();
        self.snap
            .hosts
            .iter()
            .enumerate()
            .filter(|(_, h)| f.is_empty() || h.name.to_lowercase().contains(&f))
            .map(|(i, _)| i)
            .collect()
    }

    /// The action an approve or reject applies to: the selected approval
    /// in the Approvals pane, else the selected alert's action.
    fn action_in_focus(&self) -> Option<&Action> {
        if self.focus == Pane::Approvals {
            return self.selected_action();
        }
        let fp = &self.selected_alert()?.fingerprint;
        self.snap
            .actions
            .iter()
            .find(|a| &a.fingerprint == fp && !a.state.is_final())
            .or_else(|| {
                self.snap
                    .actions
                    .iter()
                    .find(|a| &a.fingerprint == fp && a.state == ActionState::Interrupted)
            })
    }

    /// Pending approvals.
    pub fn pending(&self) -> usize {
        self.derived.pending_approvals
    }

    // ----- audit ------------------------------------------------------

    /// Asks for the newest page again (`count`: the filter changed).
    pub fn refresh_audit(&mut self, count: bool) {
        if self.audit.loading && !count {
            return;
        }
        self.audit.generation += 1;
        self.audit.loading = true;
        self.audit.seen_seq = self.snap.audit_seq;
        self.outbox.push(Intent::Audit(AuditQuery {
            generation: self.audit.generation,
            filter: self.audit.filter.clone(),
            before: None,
            limit: AUDIT_PAGE,
            count,
        }));
    }

    fn more_audit(&mut self) {
        if self.audit.loading || self.audit.exhausted {
            return;
        }
        let Some(last) = self.audit.rows.last() else {
            return;
        };
        self.audit.loading = true;
        self.outbox.push(Intent::Audit(AuditQuery {
            generation: self.audit.generation,
            filter: self.audit.filter.clone(),
            before: Some(last.seq),
            limit: AUDIT_PAGE,
            count: false,
        }));
    }

    pub fn apply_audit_page(&mut self, page: AuditPage) {
        if page.generation != self.audit.generation {
            return;
        }
        self.audit.loading = false;
        self.audit.error = page.error;
        if let Some(t) = page.total {
            self.audit.total = Some(t);
        }
        let full = page.records.len() >= AUDIT_PAGE;
        match page.before {
            None => {
                let keep_older = self.audit.rows.len() > AUDIT_PAGE;
                let newest_old = self.audit.rows.first().map(|r| r.seq);
                let added = match newest_old {
                    Some(s) => page.records.iter().filter(|r| r.seq > s).count() as u64,
                    None => 0,
                };
                if keep_older {
                    // Prepend what is new; keep the pages already loaded.
                    let mut rows: Vec<Record> = page
                        .records
                        .into_iter()
                        .filter(|r| newest_old.is_none_or(|s| r.seq > s))
                        .collect();
                    rows.append(&mut self.audit.rows);
                    self.audit.rows = rows;
                } else {
                    self.audit.rows = page.records;
                    self.audit.exhausted = !full;
                }
                if let Some(t) = self.audit.total.as_mut()
                    && page.total.is_none()
                {
                    *t += added;
                }
            }
            Some(_) => {
                self.audit.exhausted = !full;
                self.audit.rows.extend(page.records);
            }
        }
        self.audit.selected = self
            .audit
            .selected
            .min(self.audit.rows.len().saturating_sub(1));
        // A change arrived while this query was in flight.
        if self.snap.audit_seq > self.audit.seen_seq && self.audit.selected == 0 {
            self.refresh_audit(false);
        }
        self.dirty = true;
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
        let scope = self.focus.scope();
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

    /// Does one registered action.
    pub fn run(&mut self, a: UiAction, now: Instant) {
        if self.opts.read_only && action_info(a).dangerous {
            self.flash(
                format!("read-only: {} is not available", action_info(a).name),
                Level::Bad,
                now,
            );
            return;
        }
        match a {
            UiAction::Quit => self.ask_quit(),
            UiAction::Help => self.popup = Some(Popup::Help { scroll: 0 }),
            UiAction::Filter => self.open_filter(),
            UiAction::Palette => {
                self.popup = Some(Popup::Palette {
                    input: input_line(
                        "approve | reject | dry-run on|off | freeze | unfreeze | reset-breaker | theme NAME | export audit PATH | silence 1h | unsilence",
                        "",
                    ),
                    error: None,
                })
            }
            UiAction::Cancel => {
                if self.zoom {
                    self.zoom = false;
                } else {
                    self.clear_filter();
                }
            }
            UiAction::FocusNext => {
                self.focus = Pane::ALL[(self.focus.index() + 1) % Pane::ALL.len()];
            }
            UiAction::FocusPrev => {
                self.focus =
                    Pane::ALL[(self.focus.index() + Pane::ALL.len() - 1) % Pane::ALL.len()];
            }
            UiAction::Zoom => self.zoom = !self.zoom,
            UiAction::Up => self.move_by(-1),
            UiAction::Down => self.move_by(1),
            UiAction::PageUp => self.move_by(-(self.page_rows.max(1) as i64)),
            UiAction::PageDown => self.move_by(self.page_rows.max(1) as i64),
            UiAction::Top => self.move_by(i64::MIN / 2),
            UiAction::Bottom => self.move_by(i64::MAX / 2),
            UiAction::Open => match self.focus {
                Pane::Alerts => self.focus = Pane::Detail,
                Pane::Approvals => {
                    if let Some(fp) = self.selected_action().map(|a| a.fingerprint.clone()) {
                        self.select_alert(&fp);
                        self.focus = Pane::Detail;
                    }
                }
                _ => {}
            },
            UiAction::FocusAlerts => self.focus = Pane::Alerts,
            UiAction::FocusDetail => self.focus = Pane::Detail,
            UiAction::FocusSuggestions => self.focus = Pane::Suggestions,
            UiAction::FocusApprovals => self.focus = Pane::Approvals,
            UiAction::FocusAudit => self.focus = Pane::Audit,
            UiAction::FocusHosts => self.focus = Pane::Hosts,
            UiAction::Approve => self.ask_approve(None, now),
            UiAction::Reject => self.ask_reject(None, "", now),
            UiAction::ToggleDryRun => self.ask_dry_run(!self.snap.modes.dry_run),
            UiAction::ToggleFreeze => self.ask_freeze(!self.snap.modes.frozen),
            UiAction::ResetBreaker => self.ask_reset_breaker(None, now),
            UiAction::Silence => self.ask_silence("1h", "", now),
            UiAction::NextTheme => {
                let names = &self.opts.theme_names;
                if !names.is_empty() {
                    let i = names
                        .iter()
                        .position(|n| *n == self.theme.name)
                        .map_or(0, |i| (i + 1) % names.len());
                    self.outbox.push(Intent::Theme(names[i].clone()));
                }
            }
        }
    }

    fn select_alert(&mut self, fp: &str) {
        if let Some(pos) = self
            .alert_rows
            .iter()
            .position(|r| matches!(r, AlertRow::Alert(i) if self.snap.alerts[*i].fingerprint == fp))
        {
            self.alert_sel = pos;
            self.note_selected_alert();
        }
    }

    fn move_by(&mut self, d: i64) {
        let step = |sel: usize, len: usize| -> usize {
            if len == 0 {
                return 0;
            }
            (sel as i64).saturating_add(d).clamp(0, len as i64 - 1) as usize
        };
        match self.focus {
            Pane::Alerts => {
                self.alert_sel = step(self.alert_sel, self.alert_rows.len());
                self.note_selected_alert();
            }
            Pane::Detail => {
                self.detail_scroll = (i64::from(self.detail_scroll) + d).clamp(0, 500) as u16;
            }
            Pane::Suggestions => {
                self.suggestion_sel = step(self.suggestion_sel, self.snap.suggestions.len())
            }
            Pane::Approvals => {
                self.approval_sel = step(self.approval_sel, self.approval_rows.len())
            }
            Pane::Hosts => self.host_sel = step(self.host_sel, self.host_rows().len()),
            Pane::Audit => {
                self.audit.selected = step(self.audit.selected, self.audit.rows.len());
                if self.audit.selected + AUDIT_PAGE / 2 >= self.audit.rows.len() {
                    self.more_audit();
                }
                if self.audit.selected == 0 && self.snap.audit_seq > self.audit.seen_seq {
                    self.refresh_audit(false);
                }
            }
        }
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
        self.focus = pane;
        // Row 0 is the border, row 1 the column header.
        let line = usize::from(row.saturating_sub(r.y + 2));
        if row < r.y + 2 || row + 1 >= r.bottom() || was != pane {
            return;
        }
        let h = usize::from(r.height.saturating_sub(3));
        let pick = |sel: usize, len: usize| -> Option<usize> {
            let start = if h == 0 || sel < h { 0 } else { sel + 1 - h };
            let i = start + line;
            (i < len).then_some(i)
        };
        match pane {
            Pane::Alerts => {
                if let Some(i) = pick(self.alert_sel, self.alert_rows.len()) {
                    self.alert_sel = i;
                    self.note_selected_alert();
                }
            }
            Pane::Approvals => {
                if let Some(i) = pick(self.approval_sel, self.approval_rows.len()) {
                    self.approval_sel = i;
                }
            }
            Pane::Audit => {
                if let Some(i) = pick(self.audit.selected, self.audit.rows.len()) {
                    self.audit.selected = i;
                }
            }
            Pane::Hosts => {
                if let Some(i) = pick(self.host_sel, self.host_rows().len()) {
                    self.host_sel = i;
                }
            }
            Pane::Detail | Pane::Suggestions => {}
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

    // ----- filters ----------------------------------------------------

    fn open_filter(&mut self) {
        let (hint, text) = match self.focus {
            Pane::Audit => (
                "host=NAME runbook=NAME kind=KIND actor=NAME (a bare word is a host)",
                self.audit.filter_text.clone(),
            ),
            Pane::Approvals => (
                "text in runbook, target, alert or id",
                self.approval_filter.clone(),
            ),
            Pane::Hosts => ("text in the host name", self.host_filter.clone()),
            _ => (
                "text in name, host, labels or severity",
                self.alert_filter.clone(),
            ),
        };
        let pane = match self.focus {
            Pane::Detail | Pane::Suggestions => Pane::Alerts,
            p => p,
        };
        self.popup = Some(Popup::Filter {
            input: input_line(hint, &text),
            pane,
            error: None,
        });
    }

    fn clear_filter(&mut self) {
        match self.focus {
            Pane::Audit if !self.audit.filter_text.is_empty() => {
                self.set_audit_filter("");
            }
            Pane::Approvals => {
                self.approval_filter.clear();
                self.rebuild_rows();
            }
            Pane::Hosts => {
                self.host_filter.clear();
                self.rebuild_rows();
            }
            Pane::Alerts | Pane::Detail | Pane::Suggestions => {
                self.alert_filter.clear();
                self.rebuild_rows();
            }
            Pane::Audit => {}
        }
    }

    /// Applies a filter typed for `pane`; an error says what is accepted.
    pub fn apply_filter(&mut self, pane: Pane, text: &str) -> Result<(), String> {
        match pane {
            Pane::Audit => {
                parse_audit_filter(text)?;
                self.set_audit_filter(text);
            }
            Pane::Approvals => {
                self.approval_filter = text.trim().to_string();
                self.approval_sel = 0;
                self.rebuild_rows();
            }
            Pane::Hosts => {
                self.host_filter = text.trim().to_string();
                self.host_sel = 0;
                self.rebuild_rows();
            }
            _ => {
                self.alert_filter = text.trim().to_string();
                self.alert_sel = 0;
                self.rebuild_rows();
            }
        }
        Ok(())
    }

    fn set_audit_filter(&mut self, text: &str) {
        let f = parse_audit_filter(text).unwrap_or_default();
        self.audit.filter = f;
        self.audit.filter_text = text.trim().to_string();
        self.audit.rows.clear();
        self.audit.selected = 0;
        self.audit.total = None;
        self.audit.exhausted = false;
        self.audit.loading = false;
        self.refresh_audit(true);
    }

    // ----- popups -----------------------------------------------------

    fn popup_key(&mut self, ev: &ratatui::crossterm::event::KeyEvent, now: Instant) {
        use ratatui::crossterm::event::{KeyCode, KeyModifiers};
        let ctrl_c = ev.code == KeyCode::Char('c') && ev.modifiers.contains(KeyModifiers::CONTROL);
        let Some(popup) = self.popup.as_mut() else {
            return;
        };
        match popup {
            Popup::Help { scroll } => match ev.code {
                KeyCode::Down | KeyCode::Char('j') => *scroll = scroll.saturating_add(1),
                KeyCode::Up | KeyCode::Char('k') => *scroll = scroll.saturating_sub(1),
                KeyCode::PageDown => *scroll = scroll.saturating_add(10),
                KeyCode::PageUp => *scroll = scroll.saturating_sub(10),
                _ if ctrl_c => self.ask_quit(),
                _ => self.popup = None,
            },
            Popup::Confirm(c) => match ev.code {
                KeyCode::Esc => self.popup = None,
                _ if ctrl_c => self.popup = None,
                KeyCode::Tab | KeyCode::BackTab | KeyCode::Left | KeyCode::Right
                    if c.reason.is_none() || matches!(ev.code, KeyCode::Tab | KeyCode::BackTab) =>
                {
                    c.ok_focused = !c.ok_focused;
                }
                KeyCode::Enter => {
                    if !c.ok_focused {
                        self.popup = None;
                        self.flash("cancelled", Level::Info, now);
                        return;
                    }
                    let reason = c
                        .reason
                        .as_ref()
                        .map(|t| t.lines().join("\n").trim().to_string());
                    if let Some(r) = &reason
                        && r.is_empty()
                    {
                        c.error = Some("a reason is required".into());
                        return;
                    }
                    let on_ok = c.on_ok.clone();
                    self.popup = None;
                    self.confirmed(on_ok, reason.unwrap_or_default(), now);
                }
                _ => {
                    if let Some(t) = c.reason.as_mut() {
                        edit(t, ev);
                        c.error = None;
                    }
                }
            },
            Popup::Palette { input, error } => match ev.code {
                KeyCode::Esc => self.popup = None,
                _ if ctrl_c => self.popup = None,
                KeyCode::Enter => {
                    let line = input.lines().join(" ");
                    self.popup = None;
                    if let Err(e) = self.command(&line, now) {
                        self.popup = Some(Popup::Palette {
                            input: input_line("", &line),
                            error: Some(e),
                        });
                    }
                }
                _ => {
                    edit(input, ev);
                    *error = None;
                }
            },
            Popup::Filter { input, pane, error } => match ev.code {
                KeyCode::Esc => self.popup = None,
                _ if ctrl_c => self.popup = None,
                KeyCode::Enter => {
                    let line = input.lines().join(" ");
                    let pane = *pane;
                    match self.apply_filter(pane, &line) {
                        Ok(()) => self.popup = None,
                        Err(e) => {
                            if let Some(Popup::Filter { error, .. }) = self.popup.as_mut() {
                                *error = Some(e);
                            }
                        }
                    }
                }
                _ => {
                    edit(input, ev);
                    *error = None;
                }
            },
        }
    }

    fn confirmed(&mut self, c: Confirmed, reason: String, now: Instant) {
        let actor = self.snap.operator.clone();
        let ev = match c {
            Confirmed::Approve(action) => Event::Approve { action, actor },
            Confirmed::Reject(action) => Event::Reject {
                action,
                actor,
                reason,
            },
            Confirmed::DryRun(on) => Event::SetDryRun { on, actor },
            Confirmed::Freeze(on) => Event::SetFrozen { on, actor },
            Confirmed::ResetBreaker { runbook, target } => Event::ResetBreaker {
                runbook,
                target,
                actor,
            },
            Confirmed::Silence {
                fingerprint,
                duration,
                comment,
            } => {
                self.outbox.push(Intent::Silence {
                    fingerprint,
                    duration,
                    comment,
                });
                return;
            }
            Confirmed::Unsilence { fingerprint } => {
                self.outbox.push(Intent::Unsilence { fingerprint });
                return;
            }
            Confirmed::Quit => {
                self.quit = true;
                return;
            }
            Confirmed::Run {
                runbook,
                target,
                params,
            } => {
                self.flash(format!("proposing {runbook}@{target}..."), Level::Info, now);
                self.outbox.push(Intent::Run {
                    runbook,
                    target,
                    params,
                });
                return;
            }
            Confirmed::Repropose { fingerprint } => {
                self.outbox.push(Intent::Repropose { fingerprint });
                return;
            }
        };
        let what = match &ev {
            Event::Approve { action, .. } => format!("approval of {action} sent"),
            Event::Reject { action, .. } => format!("rejection of {action} sent"),
            Event::SetDryRun { on: true, .. } => "dry-run on".to_string(),
            Event::SetDryRun { on: false, .. } => "dry-run off: actions are LIVE".to_string(),
            Event::SetFrozen { on: true, .. } => "frozen: nothing will run".to_string(),
            Event::SetFrozen { on: false, .. } => "unfrozen".to_string(),
            Event::ResetBreaker {
                runbook, target, ..
            } => {
                format!("breaker {runbook}@{target} reset")
            }
            _ => String::new(),
        };
        self.outbox.push(Intent::Hub(ev));
        self.flash(what, Level::Info, now);
    }

    fn mode_text(&self) -> &'static str {
        if self.snap.modes.dry_run {
            "DRY-RUN: nothing will change on the host; the plan is recorded"
        } else {
            "LIVE: these commands will run on the host"
        }
    }

    fn find_action(&self, id: Option<&str>) -> Result<Action, String> {
        match id {
            Some(id) => {
                let want = ActionId::parse(id).ok_or_else(|| {
                    format!("{id:?} is not an action id; expected one such as A000042")
                })?;
                self.snap
                    .actions
                    .iter()
                    .find(|a| a.id == want)
                    .cloned()
                    .ok_or_else(|| format!("no action {want} is open"))
            }
            None => self
                .action_in_focus()
                .cloned()
                .ok_or_else(|| "select an action in Approvals (or an alert with one) first".into()),
        }
    }

    fn ask_approve(&mut self, id: Option<&str>, now: Instant) {
        let a = match self.find_action(id) {
            Ok(a) => a,
            Err(e) => return self.flash(e, Level::Bad, now),
        };
        if !matches!(
            a.state,
            ActionState::AwaitingApproval | ActionState::Interrupted
        ) {
            return self.flash(
                format!("{} is {}, not waiting for approval", a.id, a.state.as_str()),
                Level::Bad,
                now,
            );
        }
        let mut lines = action_lines(&a);
        lines.push(String::new());
        lines.push(self.mode_text().to_string());
        if a.state == ActionState::Interrupted {
            lines.push(
                "It was interrupted by a restart: check the host before running it again.".into(),
            );
        }
        self.popup = Some(Popup::Confirm(Box::new(Confirm {
            title: format!("Approve {}?", a.id),
            lines,
            ok_label: "Approve".into(),
            on_ok: Confirmed::Approve(a.id),
            ok_focused: false,
            reason: None,
            error: None,
        })));
    }

    fn ask_reject(&mut self, id: Option<&str>, reason: &str, now: Instant) {
        let a = match self.find_action(id) {
            Ok(a) => a,
            Err(e) => return self.flash(e, Level::Bad, now),
        };
        if !matches!(
            a.state,
            ActionState::AwaitingApproval | ActionState::Interrupted | ActionState::Blocked
        ) {
            return self.flash(
                format!(
                    "{} is {}; only a waiting action can be rejected",
                    a.id,
                    a.state.as_str()
                ),
                Level::Bad,
                now,
            );
        }
        let lines = action_lines(&a);
        let mut t = input_line("why (required; recorded in the audit trail)", reason);
        t.set_block(
            ratatui::widgets::Block::bordered()
                .title(" Reason ")
                .border_style(self.theme.border(true)),
        );
        self.popup = Some(Popup::Confirm(Box::new(Confirm {
            title: format!("Reject {}?", a.id),
            lines,
            ok_label: "Reject".into(),
            on_ok: Confirmed::Reject(a.id),
            ok_focused: false,
            reason: Some(t),
            error: None,
        })));
    }

    fn ask_dry_run(&mut self, on: bool) {
        if on {
            // Entering dry-run only makes things safer: no confirmation.
            self.outbox.push(Intent::Hub(Event::SetDryRun {
                on: true,
                actor: self.snap.operator.clone(),
            }));
            return;
        }
        let open = self.approval_rows.len();
        self.popup = Some(Popup::Confirm(Box::new(Confirm {
            title: "Leave dry-run and go LIVE?".into(),
            lines: vec![
                "Actions will run on hosts for real from now on.".into(),
                format!(
                    "{open} action(s) are open; auto-approved runbooks will act by themselves."
                ),
            ],
            ok_label: "Go LIVE".into(),
            on_ok: Confirmed::DryRun(false),
            ok_focused: false,
            reason: None,
            error: None,
        })));
    }

    /// Asks before proposing a manual run: what, where, and that the
    /// runbook's approval policy applies (an automatic one starts at once).
    fn ask_run(
        &mut self,
        runbook: &str,
        target: &str,
        params: std::collections::BTreeMap<String, String>,
    ) {
        let info = self.snap.runbooks.iter().find(|r| r.name == runbook);
        let mut lines = vec![
            format!(
                "runbook  {runbook}{}",
                info.map(|i| format!(" (risk {})", i.risk))
                    .unwrap_or_default()
            ),
            format!("target   {}", crate::model::clean(target)),
            format!(
                "params   {}",
                if params.is_empty() {
                    "(the runbook's defaults)".to_string()
                } else {
                    params
                        .iter()
                        .map(|(k, v)| format!("{k}={}", crate::model::clean(v)))
                        .collect::<Vec<_>>()
                        .join(" ")
                }
            ),
            String::new(),
            "The hub checks the parameters and guards, then asks for approval as the runbook's"
                .into(),
            "policy says (an automatic runbook starts at once). You cannot be its only approver."
                .into(),
            self.mode_text().to_string(),
        ];
        if info.is_none() {
            lines.insert(
                0,
                format!("no runbook named {runbook:?} is known; the hub will refuse it"),
            );
        }
        self.popup = Some(Popup::Confirm(Box::new(Confirm {
            title: format!("Propose {runbook} on {}?", crate::model::clean(target)),
            lines,
            ok_label: "Propose".into(),
            on_ok: Confirmed::Run {
                runbook: runbook.to_string(),
                target: target.to_string(),
                params,
            },
            ok_focused: false,
            reason: None,
            error: None,
        })));
    }

    /// Asks before proposing the selected alert's runbook again.
    fn ask_repropose(&mut self, now: Instant) {
        let Some(a) = self.selected_alert().cloned() else {
            return self.flash("select a firing alert first", Level::Bad, now);
        };
        self.popup = Some(Popup::Confirm(Box::new(Confirm {
            title: format!("Propose a runbook for {} again?", a.name),
            lines: vec![
                format!(
                    "alert  {} on {}",
                    a.name,
                    crate::model::clean(a.host().unwrap_or("-"))
                ),
                "Its last action ended without fixing it. A new action goes through the".into(),
                "same guards and approvals.".into(),
                self.mode_text().to_string(),
            ],
            ok_label: "Propose".into(),
            on_ok: Confirmed::Repropose {
                fingerprint: a.fingerprint.clone(),
            },
            ok_focused: false,
            reason: None,
            error: None,
        })));
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

    /// Quits, unless this console started the hub and others are attached
    /// to it: then it says so and asks first.
    fn ask_quit(&mut self) {
        let owns = self.snap.link.as_ref().is_some_and(|l| l.owns_hub && l.up);
        let others = self.others_attached();
        if !owns || others.is_empty() {
            self.quit = true;
            return;
        }
        let n = others.len();
        self.popup = Some(Popup::Confirm(Box::new(Confirm {
            title: "Stop the hub others are using?".into(),
            lines: vec![
                format!(
                    "{n} other console{} attached: {}.",
                    if n == 1 { " is" } else { "s are" },
                    others.join(", ")
                ),
                "This console started the hub: quitting stops it, and theirs show it lost until a hub runs again.".into(),
                "Nothing is lost: every record is durable, and open work comes back when a hub starts on this data dir.".into(),
                "To keep a hub running on its own, start it with `vigil serve`.".into(),
            ],
            ok_label: "Quit".into(),
            on_ok: Confirmed::Quit,
            ok_focused: false,
            reason: None,
            error: None,
        })));
    }

    fn ask_freeze(&mut self, on: bool) {
        if on {
            self.outbox.push(Intent::Hub(Event::SetFrozen {
                on: true,
                actor: self.snap.operator.clone(),
            }));
            return;
        }
        self.popup = Some(Popup::Confirm(Box::new(Confirm {
            title: "Unfreeze?".into(),
            lines: vec![
                "Approved and automatic actions will start running again.".into(),
                self.mode_text().to_string(),
            ],
            ok_label: "Unfreeze".into(),
            on_ok: Confirmed::Freeze(false),
            ok_focused: false,
            reason: None,
            error: None,
        })));
    }

    fn ask_reset_breaker(&mut self, which: Option<(String, String)>, now: Instant) {
        let pick = which.or_else(|| {
            let (rb, t) = match self.focus {
                Pane::Approvals => self
                    .selected_action()
                    .map(|a| (a.runbook.clone(), a.target.clone()))?,
                _ => {
                    let al = self.selected_alert()?;
                    let a = self
                        .snap
                        .actions
                        .iter()
                        .find(|a| a.fingerprint == al.fingerprint)?;
                    (a.runbook.clone(), a.target.clone())
                }
            };
            Some((rb, t))
        });
        let open: Vec<(String, String)> = self
            .snap
            .breakers
            .iter()
            .map(|(r, t, _)| (r.clone(), t.clone()))
            .collect();
        let Some((runbook, target)) = pick
            .filter(|p| open.contains(p))
            .or_else(|| (open.len() == 1).then(|| open[0].clone()))
        else {
            let list = open
                .iter()
                .map(|(r, t)| format!("{r}@{t}"))
                .collect::<Vec<_>>()
                .join(", ");
            return self.flash(
                if open.is_empty() {
                    "no circuit breaker is open".to_string()
                } else {
                    format!("which breaker? open: {list} (reset-breaker RUNBOOK TARGET)")
                },
                Level::Bad,
                now,
            );
        };
        self.popup = Some(Popup::Confirm(Box::new(Confirm {
            title: format!("Reset the breaker of {runbook}@{target}?"),
            lines: vec![
                format!("{runbook} failed repeatedly on {target}; resetting lets it run again."),
                self.mode_text().to_string(),
            ],
            ok_label: "Reset".into(),
            on_ok: Confirmed::ResetBreaker { runbook, target },
            ok_focused: false,
            reason: None,
            error: None,
        })));
    }

    fn ask_silence(&mut self, duration: &str, comment: &str, now: Instant) {
        let Some(al) = self.selected_alert().cloned() else {
            return self.flash("select an alert to silence first", Level::Bad, now);
        };
        if let Err(e) = crate::units::parse_duration(duration) {
            return self.flash(format!("silence {duration}: {e}"), Level::Bad, now);
        }
        let mut t = input_line("comment (recorded with the silence)", comment);
        t.set_block(
            ratatui::widgets::Block::bordered()
                .title(" Comment ")
                .border_style(self.theme.border(true)),
        );
        let labels = al
            .labels
            .iter()
            .map(|(k, v)| format!("{k}={v:?}"))
            .collect::<Vec<_>>()
            .join(", ");
        self.popup = Some(Popup::Confirm(Box::new(Confirm {
            title: format!("Silence {} for {duration}?", al.name),
            lines: vec![
                format!("Matchers: {labels}"),
                "No runbook is proposed for it while silenced.".into(),
            ],
            ok_label: "Silence".into(),
            on_ok: Confirmed::Silence {
                fingerprint: al.fingerprint.clone(),
                duration: duration.to_string(),
                comment: comment.to_string(),
            },
            ok_focused: false,
            reason: Some(t),
            error: None,
        })));
    }

    fn ask_unsilence(&mut self, now: Instant) {
        let Some(al) = self.selected_alert().cloned() else {
            return self.flash("select a silenced alert first", Level::Bad, now);
        };
        let Some(sil) = &al.silence else {
            return self.flash(format!("{} is not silenced", al.name), Level::Bad, now);
        };
        self.popup = Some(Popup::Confirm(Box::new(Confirm {
            title: format!("End the silence of {}?", al.name),
            lines: vec![
                format!(
                    "Silenced by {} until {}{}",
                    sil.actor,
                    sil.until.format("%H:%M UTC"),
                    if sil.comment.is_empty() {
                        String::new()
                    } else {
                        format!(": {}", sil.comment)
                    }
                ),
                "Runbooks may be proposed for it again at once.".into(),
            ],
            ok_label: "End silence".into(),
            on_ok: Confirmed::Unsilence {
                fingerprint: al.fingerprint.clone(),
            },
            ok_focused: false,
            reason: None,
            error: None,
        })));
    }

    /// Runs one palette command; the error says what is accepted.
    pub fn command(&mut self, line: &str, now: Instant) -> Result<(), String> {
        let words: Vec<&str> = line.split_whitespace().collect();
        let Some((&cmd, args)) = words.split_first() else {
            return Ok(());
        };
        let dangerous = matches!(
            cmd,
            "approve"
                | "reject"
                | "reset-breaker"
                | "silence"
                | "unsilence"
                | "unfreeze"
                | "run"
                | "propose"
        ) || (cmd == "dry-run" && args.first() == Some(&"off"))
            || cmd == "freeze";
        if self.opts.read_only && dangerous {
            return Err(format!("read-only: {cmd} is not available"));
        }
        match (cmd, args) {
            ("approve", [] | [_]) => self.ask_approve(args.first().copied(), now),
            ("reject", _) => {
                let (id, reason) = match args.first() {
                    Some(a) if ActionId::parse(a).is_some() => (Some(*a), args[1..].join(" ")),
                    _ => (None, args.join(" ")),
                };
                self.ask_reject(id, &reason, now)
            }
            ("dry-run", ["on"]) => self.ask_dry_run(true),
            ("dry-run", ["off"]) => self.ask_dry_run(false),
            ("dry-run", _) => return Err("dry-run on | dry-run off".into()),
            ("freeze", []) => self.ask_freeze(true),
            ("unfreeze", []) => self.ask_freeze(false),
            ("reset-breaker", []) => self.ask_reset_breaker(None, now),
            ("reset-breaker", [rb, t]) => {
                self.ask_reset_breaker(Some((rb.to_string(), t.to_string())), now)
            }
            ("reset-breaker", _) => return Err("reset-breaker [RUNBOOK TARGET]".into()),
            ("theme", [name]) => {
                if !self.opts.theme_names.iter().any(|n| n == name) {
                    return Err(format!(
                        "no theme {name:?}; known: {}",
                        self.opts.theme_names.join(", ")
                    ));
                }
                self.outbox.push(Intent::Theme(name.to_string()));
            }
            ("theme", _) => {
                return Err(format!(
                    "theme NAME; known: {}",
                    self.opts.theme_names.join(", ")
                ));
            }
            ("export", ["audit", path]) => {
                self.outbox.push(Intent::ExportAudit(PathBuf::from(path)));
            }
            ("export", _) => return Err("export audit PATH (JSON lines)".into()),
            ("silence", [d, rest @ ..]) => self.ask_silence(d, &rest.join(" "), now),
            ("silence", []) => {
                return Err("silence DURATION [comment], e.g. silence 1h deploy".into());
            }
            ("unsilence", []) => self.ask_unsilence(now),
            ("run", [rb, host, kvs @ ..]) => {
                let mut params = std::collections::BTreeMap::new();
                for kv in kvs {
                    let Some((k, v)) = kv.split_once('=') else {
                        return Err(format!("{kv:?} is not KEY=VALUE"));
                    };
                    params.insert(k.to_string(), v.to_string());
                }
                self.ask_run(rb, host, params);
            }
            ("run", _) => {
                return Err("run RUNBOOK HOST [KEY=VALUE]..., e.g. run service_restart web-01 service=nginx".into());
            }
            ("propose", []) => self.ask_repropose(now),
            ("help", _) => self.popup = Some(Popup::Help { scroll: 0 }),
            ("quit" | "q", _) => self.ask_quit(),
            _ => {
                return Err(format!(
                    "unknown command {cmd:?}; commands: approve [ID], reject [ID] [reason], \
                     dry-run on|off, freeze, unfreeze, reset-breaker [RUNBOOK TARGET], \
                     theme NAME, export audit PATH, silence DURATION [comment], unsilence, \
                     run RUNBOOK HOST [KEY=VALUE]..., propose, help, quit"
                ));
            }
        }
        Ok(())
    }
}

/// Help text from the live keymap: (section, keys, description).
pub fn help_rows(keymap: &Keymap) -> Vec<(String, String, String)> {
    {
        let mut rows = Vec::new();
        for scope in Scope::ALL {
            for info in ACTIONS {
                let keys = keymap.keys(scope, info.action);
                if keys.is_empty() {
                    continue;
                }
                let k = keys
                    .iter()
                    .map(|s| crate::tui::keymap::fmt_seq(s))
                    .collect::<Vec<_>>()
                    .join(", ");
                let d = if info.dangerous {
                    format!("{} [dangerous]", info.description)
                } else {
                    info.description.to_string()
                };
                rows.push((scope.table().to_string(), k, d));
            }
        }
        rows
    }
}

/// A one-line text input.
pub fn input_line(placeholder: &str, text: &str) -> TextArea<'static> {
    let mut t = TextArea::new(vec![text.to_string()]);
    t.set_placeholder_text(placeholder.to_string());
    t.set_cursor_line_style(ratatui::style::Style::default());
    t.move_cursor(tui_textarea::CursorMove::End);
    t
}

/// One key in a text input, with the shell's line editing where the
/// widget's own binding differs: Ctrl-U clears back to the line's start
/// (the widget would undo). Ctrl-W, Ctrl-K, Ctrl-A and Ctrl-E already
/// behave as in readline.
fn edit(t: &mut TextArea<'static>, ev: &ratatui::crossterm::event::KeyEvent) {
    use ratatui::crossterm::event::{KeyCode, KeyModifiers};
    if ev.code == KeyCode::Char('u') && ev.modifiers.contains(KeyModifiers::CONTROL) {
        t.delete_line_by_head();
    } else {
        t.input(*ev);
    }
}

fn alert_matches(a: &Alert, f: &str) -> bool {
    a.name.to_lowercase().contains(f)
        || a.severity.as_str().contains(f)
        || a.labels.iter().any(|(k, v)| {
            v.to_lowercase().contains(f) || format!("{k}={v}").to_lowercase().contains(f)
        })
        || (a.status == AlertStatus::Resolved && "resolved".contains(f))
}

fn action_matches(a: &Action, f: &str) -> bool {
    a.runbook.to_lowercase().contains(f)
        || a.target.to_lowercase().contains(f)
        || a.alert.to_lowercase().contains(f)
        || a.id.to_string().to_lowercase().contains(f)
}

/// What a confirmation shows of an action: target, runbook, parameters
/// and the exact commands.
pub fn action_lines(a: &Action) -> Vec<String> {
    let mut v = vec![
        format!("Target:  {}", a.target),
        format!(
            "Runbook: {}  (alert {}, {})",
            a.runbook,
            a.alert,
            a.severity.as_str()
        ),
    ];
    if let Some(by) = &a.requested_by {
        v.push(format!(
            "Asked:   manual run by {by} (who cannot be its only approver)"
        ));
    }
    if a.approvals_needed > 1 {
        v.push(format!(
            "Approvals: {} of {}{}",
            a.approvals.len(),
            a.approvals_needed,
            if a.approvals.is_empty() {
                String::new()
            } else {
                format!(" ({})", a.approvals.join(", "))
            }
        ));
    }
    if !a.params.is_empty() {
        v.push(format!(
            "Params:  {}",
            a.params
                .iter()
                .map(|(k, v)| format!("{k}={}", v.escape_debug()))
                .collect::<Vec<_>>()
                .join(" ")
        ));
    }
    v.push("Commands:".into());
    if a.plan.is_empty() {
        v.push("  (none)".into());
    }
    for (i, s) in a.plan.iter().enumerate() {
        let ro = if s.read_only { "  [read-only]" } else { "" };
        v.push(format!(
            "  {}. {}{ro}",
            i + 1,
            crate::tui::panes::show_cmd(&s.display())
        ));
    }
    v
}

/// Parses an audit filter: `key=value` words with keys host (or target),
/// runbook, kind and actor; a bare word is a host.
pub fn parse_audit_filter(text: &str) -> Result<AuditFilter, String> {
    let mut f = AuditFilter::default();
    for w in text.split_whitespace() {
        let (k, v) = w.split_once('=').unwrap_or(("host", w));
        if v.is_empty() {
            return Err(format!("{w:?}: a value is needed after '='"));
        }
        let slot = match k {
            "host" | "target" => &mut f.target,
            "runbook" => &mut f.runbook,
            "kind" => &mut f.kind,
            "actor" => &mut f.actor,
            _ => {
                return Err(format!(
                    "{k:?} is not a filter key; use host=, runbook=, kind= or actor="
                ));
            }
        };
        *slot = Some(v.to_string());
    }
    if let Some(k) = &f.kind
        && crate::model::RecordKind::parse(k).is_none()
    {
        return Err(format!(
            "kind={k:?} is not a record kind (e.g. action_failed, alert_firing)"
        ));
    }
    Ok(f)
}

/// Is this key a plain character (for hints)?
pub fn is_char(k: &Key) -> bool {
    matches!(k.code, KeyName::Char(_))
}
