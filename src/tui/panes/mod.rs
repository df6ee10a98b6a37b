//! The panes: one module each (Alerts, Detail, Runbooks, Approvals, Audit,
//! Hosts), [`PANES`], the one table that says what a pane is called, which
//! keymap table and filter it has, which keys its hint bar shows, how it is
//! drawn and, for a plain list, what its rows are, and [`DASHBOARD`], the
//! layout that arranges them.
//!
//! Adding a pane is a variant of [`Pane`], an entry in [`PANES`] and in
//! [`DASHBOARD`], and a module with its draw function (and, for a list, its
//! rows: its selection and filter are then kept for it in [`ListState`],
//! and moving, clicking, `/` and the counts work with no code outside its
//! module); its focus command is one line of the command registry and one
//! key in `keymaps/default.toml`. Each pane draws only the rows it can
//! show, so a frame costs the same with ten alerts or ten thousand.
//! Drawing reads the `App`; it changes nothing but the rows per page and
//! the pane areas it measures.

pub mod alerts;
pub mod approvals;
pub mod audit;
pub mod detail;
pub mod hosts;
pub mod runbooks;

use chrono::TimeDelta;
use ratatui::Frame;
use ratatui::layout::{Alignment, Rect};
use ratatui::style::Style;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Paragraph, Wrap};

use crate::model::{ActionState, Severity};
use crate::tui::app::App;
use crate::tui::commands::UiAction;
use crate::tui::theme::Theme;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Pane {
    Alerts,
    Detail,
    Suggestions,
    Approvals,
    Audit,
    Hosts,
}

/// What the console knows of a pane.
pub struct PaneSpec {
    pub pane: Pane,
    pub title: &'static str,
    /// Its table in keymap files.
    pub table: &'static str,
    /// What its `/` filter matches; `None`: `/` filters Alerts.
    pub filter: Option<&'static str>,
    /// Its main keys, first in the hint bar.
    pub hints: &'static [UiAction],
    pub draw: fn(&App, Rect) -> PaneText,
    /// For a plain list pane: its rows. Alerts, Approvals, Audit and
    /// Runbooks keep lists of their own (they follow the alert in context
    /// or page through the store).
    pub list: Option<ListSpec>,
}

/// The rows of a plain list pane.
pub struct ListSpec {
    /// The rows a filter lets through, in order (indices into what the
    /// pane shows); the filter is as typed.
    pub rows: fn(&App, &str) -> Vec<usize>,
    /// How many rows there are without a filter.
    pub total: fn(&App) -> usize,
}

/// What the console keeps for a plain list pane: the selected row and the
/// filter.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ListState {
    pub sel: usize,
    pub filter: String,
}

use UiAction as U;

/// Every pane, in focus order (`1`, `2`, ...).
pub const PANES: &[PaneSpec] = &[
    PaneSpec {
        pane: Pane::Alerts,
        title: "Alerts",
        table: "alerts",
        filter: Some("text in name, host, labels or severity"),
        hints: &[U::Open, U::Approve, U::Reject, U::Silence, U::Copy],
        draw: alerts::draw,
        list: None,
    },
    PaneSpec {
        pane: Pane::Detail,
        title: "Detail",
        table: "detail",
        filter: None,
        hints: &[U::Approve, U::Reject, U::Silence],
        draw: detail::draw,
        list: None,
    },
    PaneSpec {
        pane: Pane::Suggestions,
        title: "Runbooks",
        table: "suggestions",
        filter: None,
        hints: &[U::ProposeAnalysis, U::Approve, U::Reject],
        draw: runbooks::draw,
        list: None,
    },
    PaneSpec {
        pane: Pane::Approvals,
        title: "Approvals",
        table: "approvals",
        filter: Some("text in runbook, target, alert or id"),
        hints: &[U::Approve, U::Reject, U::Open, U::Copy],
        draw: approvals::draw,
        list: None,
    },
    PaneSpec {
        pane: Pane::Audit,
        title: "Audit",
        table: "audit",
        filter: Some("host=NAME runbook=NAME kind=KIND actor=NAME (a bare word is a host)"),
        hints: &[U::Open, U::Top, U::Bottom, U::Copy],
        draw: audit::draw,
        list: None,
    },
    PaneSpec {
        pane: Pane::Hosts,
        title: "Hosts",
        table: "hosts",
        filter: Some("text in the host name"),
        hints: &[],
        draw: hosts::draw,
        list: Some(ListSpec {
            rows: hosts::rows,
            total: hosts::total,
        }),
    },
];

/// The dashboard: rows of panes, top to bottom, each row's share of the
/// height and each pane's share of its row's width (in percent; 0: what
/// is left).
pub const DASHBOARD: &[(u16, &[(Pane, u16)])] = &[
    (42, &[(Pane::Alerts, 55), (Pane::Detail, 0)]),
    (25, &[(Pane::Approvals, 55), (Pane::Suggestions, 0)]),
    (0, &[(Pane::Audit, 60), (Pane::Hosts, 0)]),
];

impl Pane {
    /// Every pane, in the order of [`PANES`].
    pub const ALL: [Pane; PANES.len()] = {
        let mut all = [Pane::Alerts; PANES.len()];
        let mut i = 0;
        while i < PANES.len() {
            all[i] = PANES[i].pane;
            i += 1;
        }
        all
    };

    pub fn spec(self) -> &'static PaneSpec {
        &PANES[self.index()]
    }

    pub fn title(self) -> &'static str {
        self.spec().title
    }

    pub fn index(self) -> usize {
        self as usize
    }

    /// The pane `/` filters when this one is focused.
    pub fn filtered(self) -> Pane {
        if self.spec().filter.is_some() {
            self
        } else {
            Pane::Alerts
        }
    }
}

pub fn draw_pane(f: &mut Frame, app: &mut App, pane: Pane, area: Rect) {
    if area.width == 0 || area.height == 0 {
        return;
    }
    let focused = app.focus == pane;
    app.pane_areas.push((pane, area));
    let (title, lines, selected) = (pane.spec().draw)(app, area);
    let num = pane.index() + 1;
    let mut block = Block::bordered()
        .title(Line::from(vec![
            Span::styled(format!(" {num} {} ", pane.title()), app.theme.title()),
            Span::styled(title, app.theme.muted()),
        ]))
        .border_style(app.theme.border(focused));
    let inner = block.inner(area);
    if focused {
        app.page_rows = usize::from(inner.height.saturating_sub(1).max(1));
    }
    let mut p = Paragraph::new(lines);
    let mut more = None;
    match pane {
        Pane::Detail | Pane::Suggestions => {
            p = p.wrap(Wrap { trim: false });
            let total = p.line_count(inner.width);
            let skip = if pane == Pane::Detail {
                usize::from(app.detail_scroll)
            } else {
                selected
                    .unwrap_or(0)
                    .saturating_sub(usize::from(inner.height) / 2)
            };
            let skip = skip.min(total.saturating_sub(1));
            p = p.scroll((skip.min(u16::MAX as usize) as u16, 0));
            let below = total.saturating_sub(skip + usize::from(inner.height));
            if below > 0 {
                more = Some(format!(" ↓ {} more below ", plural(below, "line")));
            }
        }
        _ => {
            if let Some((sel, len)) = app.list_position(pane) {
                let h = usize::from(inner.height.saturating_sub(1));
                let start = window(sel, h);
                let below = len.saturating_sub(start + h);
                let mut s = format!(" {}/{} ", (sel + 1).min(len), len);
                if below > 0 {
                    s.push_str(&format!("· ↓ {} more below ", human_count(below as u64)));
                } else if start > 0 {
                    s.push_str("· ↑ more above ");
                }
                more = Some(s);
            }
        }
    }
    if let Some(m) = more {
        block = block.title_bottom(Line::styled(m, app.theme.muted()).alignment(Alignment::Right));
    }
    f.render_widget(p.block(block), area);
}

/// The first row to show so that `sel` is visible in `h` rows.
pub fn window(sel: usize, h: usize) -> usize {
    if h == 0 || sel < h { 0 } else { sel + 1 - h }
}

/// A compact age: `45s`, `3m`, `2h05m`, `3d`.
pub fn age(d: TimeDelta) -> String {
    let s = d.num_seconds().max(0);
    if s < 60 {
        format!("{s}s")
    } else if s < 3600 {
        format!("{}m", s / 60)
    } else if s < 86_400 {
        format!("{}h{:02}m", s / 3600, (s % 3600) / 60)
    } else {
        format!("{}d", s / 86_400)
    }
}

/// Severity as a word, never colour alone.
pub fn sev_word(s: Severity) -> &'static str {
    match s {
        Severity::Critical => "CRIT",
        Severity::High => "HIGH",
        Severity::Warning => "WARN",
        Severity::Info => "INFO",
    }
}

pub fn pad(s: &str, w: usize) -> String {
    let n = s.chars().count();
    if n > w {
        let mut t: String = s.chars().take(w.saturating_sub(1)).collect();
        t.push('…');
        t
    } else {
        format!("{s:<w$}")
    }
}

pub use crate::model::clean;

/// A command line as the operator should read it: line breaks inside a
/// script argument shown as `↵`, other control characters escaped.
pub fn show_cmd(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '\n' => out.push_str(" ↵ "),
            '\t' => out.push(' '),
            c if c.is_control() => out.extend(c.escape_debug()),
            c => out.push(c),
        }
    }
    out
}

pub fn fmt_value(v: f64) -> String {
    if v.abs() >= 1e9 {
        format!("{:.1}G", v / 1e9)
    } else if v.abs() >= 1e6 {
        format!("{:.1}M", v / 1e6)
    } else if v.fract() == 0.0 {
        format!("{v:.0}")
    } else if v.abs() < 1.0 {
        format!("{v:.3}")
    } else {
        format!("{v:.1}")
    }
}

pub fn select(line: Line<'static>, selected: bool, t: &Theme) -> Line<'static> {
    if selected {
        line.patch_style(t.selection())
    } else {
        line
    }
}

/// A pane's title text, its lines and the line selected.
pub type PaneText = (String, Vec<Line<'static>>, Option<usize>);

/// Unicode block sparkline of `vals` squeezed into `w` cells, scaled to
/// `range` when given (percentages: 0-100), else to the values' own span
/// widened so that noise on a steady value stays flat.
pub fn spark(vals: &[f64], w: usize, range: Option<(f64, f64)>) -> String {
    const BARS: [char; 8] = ['▁', '▂', '▃', '▄', '▅', '▆', '▇', '█'];
    if vals.is_empty() || w == 0 {
        return String::new();
    }
    let n = vals.len();
    let cells = w.min(n);
    let (lo, hi) = range.unwrap_or_else(|| {
        let (l, h) = vals
            .iter()
            .fold((f64::MAX, f64::MIN), |(l, h), v| (l.min(*v), h.max(*v)));
        let floor = (h.abs().max(l.abs()) * 0.05).max(1e-9);
        if h - l < floor {
            (l - floor, h + floor)
        } else {
            (l, h)
        }
    });
    let span = (hi - lo).max(1e-9);
    (0..cells)
        .map(|c| {
            let i = (c * n / cells).min(n - 1);
            let j = (((c + 1) * n / cells).max(i + 1)).min(n);
            let v = vals[i..j].iter().copied().fold(f64::MIN, f64::max);
            let k = (((v - lo) / span) * 7.0).round().clamp(0.0, 7.0) as usize;
            BARS[k]
        })
        .collect()
}

pub fn state_style(s: ActionState, t: &Theme) -> Style {
    match s {
        ActionState::AwaitingApproval | ActionState::Interrupted => t.style("approval.pending"),
        ActionState::Approved | ActionState::Done => t.style("approval.approved"),
        ActionState::Rejected | ActionState::Cancelled | ActionState::Expired => {
            t.style("approval.rejected")
        }
        ActionState::Running | ActionState::Verifying => t.style("approval.executing"),
        ActionState::Escalated | ActionState::RetryWaiting => t.style("approval.failed"),
        ActionState::Blocked | ActionState::Proposed => t.muted(),
    }
}

/// A number for people: `1,234,567`.
pub fn human_count(n: u64) -> String {
    let s = n.to_string();
    let mut out = String::with_capacity(s.len() + s.len() / 3);
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// `1 record`, `2 records`, `1,024 records`.
pub fn plural(n: usize, one: &str) -> String {
    plural_u64(n as u64, one)
}

pub fn plural_u64(n: u64, one: &str) -> String {
    let many = match one {
        "is" => "are".to_string(),
        "was" => "were".to_string(),
        w if w.ends_with('s') || w.ends_with('x') || w.ends_with("ch") || w.ends_with("sh") => {
            format!("{w}es")
        }
        w => format!("{w}s"),
    };
    format!("{} {}", human_count(n), if n == 1 { one } else { &many })
}

/// A duration for people: `45s`, `3m 05s`, `2h 05m`, `3d 4h` (to the
/// nearest second).
pub fn duration(d: TimeDelta) -> String {
    let s = ((d.num_milliseconds() + 500) / 1000).max(0);
    if s < 60 {
        format!("{s}s")
    } else if s < 3600 {
        format!("{}m {:02}s", s / 60, s % 60)
    } else if s < 86_400 {
        format!("{}h {:02}m", s / 3600, (s % 3600) / 60)
    } else {
        format!("{}d {}h", s / 86_400, (s % 86_400) / 3600)
    }
}

/// The weighed evidence behind alert `fingerprint`'s analysis: its
/// capacity line and its shares line, when the hub has weighed it (only
/// the focused alert's assessment is in the snapshot).
pub fn weighed_lines(snap: &crate::hub::Snapshot, fingerprint: &str) -> Vec<String> {
    if snap.focus.as_deref() != Some(fingerprint) {
        return Vec::new();
    }
    let Some(w) = snap.assessment.as_ref().and_then(|a| a.weighing.as_ref()) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    if let Some(c) = &w.capacity {
        out.push(clean(&crate::analysis::weigh::capacity_line(c)));
    }
    let shares = w.shares_line();
    if !shares.is_empty() {
        out.push(clean(&shares));
    }
    out
}

/// What a suggestion would free against what is needed: "frees at most
/// 2.0 GiB of 6.0 GiB needed", or none when the analysis cannot tell.
pub fn frees_text(s: &crate::engine::Suggestion) -> Option<String> {
    let unit: crate::analysis::weigh::Unit =
        serde_json::from_value(serde_json::Value::String(s.unit.clone()?)).ok()?;
    Some(match (s.frees_at_most, s.needed) {
        (Some(f), Some(n)) => format!(
            "frees at most {} of {} needed{}",
            unit.show(f),
            unit.show(n),
            if f < n { " (not enough)" } else { "" }
        ),
        (Some(f), None) => format!("frees at most {}", unit.show(f)),
        (None, Some(n)) => format!(
            "{} must be freed; how much it frees is unknown",
            unit.show(n)
        ),
        (None, None) => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_pane_table_is_in_focus_order_and_words_read_right() {
        for (i, p) in Pane::ALL.iter().enumerate() {
            assert_eq!(PANES[i].pane, *p);
            assert_eq!(p.index(), i);
        }
        assert_eq!(plural(1, "record"), "1 record");
        assert_eq!(plural(1234, "record"), "1,234 records");
        assert_eq!(plural(2, "match"), "2 matches");
        assert_eq!(human_count(1_000_000), "1,000,000");
        assert_eq!(duration(TimeDelta::seconds(80)), "1m 20s");
        assert_eq!(duration(TimeDelta::seconds(7500)), "2h 05m");
        assert_eq!(fmt_value(89.80000000000001), "89.8");
        assert_eq!(detail::human_value("89.80000000000001"), "89.8");
        assert_eq!(detail::human_value("api-01"), "api-01");
    }

    #[test]
    fn the_dashboard_shows_every_pane_once() {
        let mut placed: Vec<Pane> = DASHBOARD
            .iter()
            .flat_map(|(_, row)| row.iter().map(|(p, _)| *p))
            .collect();
        placed.sort();
        assert_eq!(placed, Pane::ALL.to_vec());
        for (h, row) in DASHBOARD {
            assert!(*h <= 100 && row.iter().map(|(_, w)| w).sum::<u16>() <= 100);
        }
    }
}
