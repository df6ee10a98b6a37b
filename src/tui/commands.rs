//! The one command registry: every thing the console can do, once. Keys
//! (through the keymap), the `:` palette, the `?` help, the hint bar and
//! read-only mode all read this table, so none of them can drift from the
//! others: a command is bound, typed, shown, hinted and gated by the same
//! entry. What a command does is `App::invoke`; this module says what it is
//! called, how it is typed and whether it is dangerous.

use crate::tui::keymap::{Keymap, Scope, fmt_seq};
use crate::tui::panes::Pane;

/// Everything a key or a palette command can do in the console.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum UiAction {
    Quit,
    Help,
    Filter,
    Palette,
    Cancel,
    FocusNext,
    FocusPrev,
    Zoom,
    Up,
    Down,
    PageUp,
    PageDown,
    Top,
    Bottom,
    Open,
    /// Focus one pane.
    Focus(Pane),
    Copy,
    Approve,
    Reject,
    ToggleDryRun,
    ToggleFreeze,
    Freeze,
    Unfreeze,
    ResetBreaker,
    Silence,
    Unsilence,
    Run,
    Propose,
    ProposeAnalysis,
    NextTheme,
    Theme,
    Export,
    Goto,
    Since,
}

/// One entry of the registry.
#[derive(Debug, Clone, Copy)]
pub struct ActionInfo {
    pub action: UiAction,
    /// The name in keymap files.
    pub name: &'static str,
    /// How it is typed after `:` (its first word is the command); empty
    /// when it is a key only.
    pub palette: &'static str,
    pub description: &'static str,
    /// Changes what Vigil does to hosts or its safety modes: confirmed
    /// with Cancel focused, removed by `--read-only`, never on a bare
    /// navigation key.
    pub dangerous: bool,
}

impl ActionInfo {
    /// The palette command word, if it has one.
    pub fn command(&self) -> Option<&'static str> {
        self.palette.split_whitespace().next()
    }
}

const fn info(
    action: UiAction,
    name: &'static str,
    palette: &'static str,
    description: &'static str,
    dangerous: bool,
) -> ActionInfo {
    ActionInfo {
        action,
        name,
        palette,
        description,
        dangerous,
    }
}

use UiAction as A;

/// The registry: every command, in help order.
pub const ACTIONS: &[ActionInfo] = &[
    info(A::Quit, "quit", "quit", "quit the console", false),
    info(A::Help, "help", "help", "show this help", false),
    info(
        A::Filter,
        "filter",
        "",
        "filter the focused pane as you type",
        false,
    ),
    info(
        A::Palette,
        "palette",
        "",
        "type a command (tab completes, up/down: history)",
        false,
    ),
    info(
        A::Cancel,
        "cancel",
        "",
        "close a popup, clear the filter, leave zoom",
        false,
    ),
    info(A::FocusNext, "focus_next", "", "focus the next pane", false),
    info(
        A::FocusPrev,
        "focus_prev",
        "",
        "focus the previous pane",
        false,
    ),
    info(
        A::Zoom,
        "zoom",
        "zoom",
        "zoom the focused pane in or out",
        false,
    ),
    info(A::Up, "up", "", "move up", false),
    info(A::Down, "down", "", "move down", false),
    info(A::PageUp, "page_up", "", "move a page up", false),
    info(A::PageDown, "page_down", "", "move a page down", false),
    info(
        A::Top,
        "top",
        "",
        "go to the first row (Audit: the newest record)",
        false,
    ),
    info(
        A::Bottom,
        "bottom",
        "",
        "go to the last row (Audit: the oldest record of the whole trail)",
        false,
    ),
    info(
        A::Open,
        "open",
        "",
        "open the selected row (Audit: the record in full)",
        false,
    ),
    info(
        A::Focus(Pane::Alerts),
        "focus_alerts",
        "",
        "focus Alerts",
        false,
    ),
    info(
        A::Focus(Pane::Detail),
        "focus_detail",
        "",
        "focus Detail",
        false,
    ),
    info(
        A::Focus(Pane::Suggestions),
        "focus_suggestions",
        "",
        "focus Runbooks",
        false,
    ),
    info(
        A::Focus(Pane::Approvals),
        "focus_approvals",
        "",
        "focus Approvals",
        false,
    ),
    info(
        A::Focus(Pane::Audit),
        "focus_audit",
        "",
        "focus Audit",
        false,
    ),
    info(
        A::Focus(Pane::Hosts),
        "focus_hosts",
        "",
        "focus Hosts",
        false,
    ),
    info(
        A::Copy,
        "copy",
        "copy",
        "copy the selected action id or command (OSC 52)",
        false,
    ),
    info(
        A::Approve,
        "approve",
        "approve [ID]",
        "approve the selected action (confirms)",
        true,
    ),
    info(
        A::Reject,
        "reject",
        "reject [ID] [REASON]",
        "reject the selected action with a reason",
        true,
    ),
    info(
        A::ToggleDryRun,
        "toggle_dry_run",
        "dry-run on|off",
        "switch dry-run on or off (going LIVE confirms)",
        true,
    ),
    info(
        A::ToggleFreeze,
        "toggle_freeze",
        "",
        "freeze or unfreeze all actions (unfreezing confirms)",
        true,
    ),
    info(
        A::Freeze,
        "freeze",
        "freeze",
        "stop every action from starting",
        true,
    ),
    info(
        A::Unfreeze,
        "unfreeze",
        "unfreeze",
        "let actions start again (confirms)",
        true,
    ),
    info(
        A::ResetBreaker,
        "reset_breaker",
        "reset-breaker [RUNBOOK TARGET]",
        "reset an open circuit breaker (confirms)",
        true,
    ),
    info(
        A::Silence,
        "silence",
        "silence [DURATION] [COMMENT]",
        "silence the selected alert (30m, 1h, 2h, 4h or any)",
        true,
    ),
    info(
        A::Unsilence,
        "unsilence",
        "unsilence",
        "end the selected alert's silence (confirms)",
        true,
    ),
    info(
        A::Run,
        "run",
        "run RUNBOOK HOST [KEY=VALUE]...",
        "propose a manual run (confirms; others approve)",
        true,
    ),
    info(
        A::Propose,
        "propose",
        "propose",
        "propose the selected alert's runbook again (confirms)",
        true,
    ),
    info(
        A::ProposeAnalysis,
        "propose_analysis",
        "propose-analysis [RUNBOOK]",
        "propose the runbook the analysis recommends (Runbooks: the selected one; confirms)",
        true,
    ),
    info(
        A::NextTheme,
        "next_theme",
        "",
        "switch to the next theme",
        false,
    ),
    info(A::Theme, "theme", "theme NAME", "switch to a theme", false),
    info(
        A::Export,
        "export",
        "export audit PATH",
        "write the audit trail to a new file (JSON lines)",
        false,
    ),
    info(
        A::Goto,
        "goto",
        "goto SEQ",
        "show the audit record with this sequence number",
        false,
    ),
    info(
        A::Since,
        "since",
        "since 2h|2026-12-01T03:00",
        "show the audit trail from a time on",
        false,
    ),
];

pub fn action_info(a: UiAction) -> &'static ActionInfo {
    ACTIONS
        .iter()
        .find(|i| i.action == a)
        .unwrap_or(&ACTIONS[0])
}

/// The entry a palette word names.
pub fn by_command(word: &str) -> Option<&'static ActionInfo> {
    ACTIONS.iter().find(|i| i.command() == Some(word))
}

/// Every palette command word, in help order.
pub fn command_words() -> impl Iterator<Item = &'static str> {
    ACTIONS.iter().filter_map(|i| i.command())
}

/// One row of the help: where, the keys, the palette form, what it does.
#[derive(Debug, Clone, PartialEq)]
pub struct HelpRow {
    pub scope: String,
    pub keys: String,
    pub palette: String,
    pub description: String,
}

/// The help, from the registry and the live keymap: global keys and
/// commands first, then each pane's own bindings. In read-only mode the
/// dangerous commands are left out (they are not available).
pub fn help_rows(keymap: &Keymap, read_only: bool) -> Vec<HelpRow> {
    let mut rows = Vec::new();
    for scope in Scope::all() {
        for info in ACTIONS {
            if read_only && info.dangerous {
                continue;
            }
            let keys: Vec<String> = keymap
                .keys(scope, info.action)
                .iter()
                .map(|s| fmt_seq(s))
                .collect();
            let global = scope == Scope::Global;
            let listed = global && !info.palette.is_empty();
            if keys.is_empty() && !listed {
                continue;
            }
            let description = if info.dangerous {
                format!("{} [dangerous]", info.description)
            } else {
                info.description.to_string()
            };
            rows.push(HelpRow {
                scope: scope.table().to_string(),
                keys: keys.join(", "),
                palette: if global && !info.palette.is_empty() {
                    format!(":{}", info.palette)
                } else {
                    String::new()
                },
                description,
            });
        }
    }
    rows
}

/// The keys for the hint bar of `pane`: its own main keys, then the
/// common ones; each with the first key bound to it (unbound ones are
/// left out).
pub fn hints(keymap: &Keymap, pane: Pane, breakers_open: bool) -> Vec<(String, &'static str)> {
    let common = [
        A::Filter,
        A::Palette,
        A::FocusNext,
        A::Zoom,
        A::ToggleDryRun,
        A::ToggleFreeze,
        A::NextTheme,
        A::Help,
        A::Quit,
    ];
    let scope = Scope::Pane(pane);
    let mut seen = Vec::new();
    let mut out = Vec::new();
    let extra = breakers_open.then_some(A::ResetBreaker);
    for a in pane.spec().hints.iter().copied().chain(extra).chain(common) {
        if seen.contains(&a) {
            continue;
        }
        seen.push(a);
        if let Some(k) = keymap.keys_text(scope, a).into_iter().next() {
            out.push((k, short_name(a)));
        }
    }
    out
}

/// The word the hint bar shows for a command.
pub fn short_name(a: UiAction) -> &'static str {
    match a {
        A::ToggleDryRun => "dry-run",
        A::ToggleFreeze => "freeze",
        A::ResetBreaker => "reset-breaker",
        A::NextTheme => "theme",
        A::FocusNext => "next pane",
        A::Palette => "command",
        A::Top => "newest",
        A::Bottom => "oldest",
        A::ProposeAnalysis => "propose recommended",
        _ => action_info(a).name,
    }
}
