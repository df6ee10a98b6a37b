//! The Approvals pane: open actions, those waiting for a human first.

use ratatui::layout::Rect;
use ratatui::style::Modifier;
use ratatui::text::{Line, Span};

use crate::model::ActionState;
use crate::tui::app::App;
use crate::tui::panes::{PaneText, age, clean, pad, select, state_style, window};

pub fn draw(app: &App, area: Rect) -> PaneText {
    let t = &app.theme;
    let snap = &app.snap;
    let title = format!(
        "{} awaiting · {} open{} ",
        app.pending(),
        app.approval_rows.len(),
        if app.approval_filter.is_empty() {
            String::new()
        } else {
            format!(" · filter {:?}", app.approval_filter)
        }
    );
    let h = usize::from(area.height.saturating_sub(3));
    let w = usize::from(area.width.saturating_sub(2));
    let mut lines = vec![Line::styled(
        pad(
            "ID       STATE             RUNBOOK@TARGET             RISK    LEFT    PARAMS",
            w,
        ),
        t.muted().add_modifier(Modifier::BOLD),
    )];
    if app.approval_rows.is_empty() {
        lines.push(Line::styled("nothing waits for a human", t.muted()));
        return (title, lines, None);
    }
    let start = window(app.approval_sel, h);
    for (i, &ix) in app.approval_rows.iter().enumerate().skip(start).take(h) {
        let a = &snap.actions[ix];
        let risk = snap
            .runbooks
            .iter()
            .find(|r| r.name == a.runbook)
            .map(|r| r.risk.clone())
            .unwrap_or_else(|| "-".into());
        let left = match (a.state, a.due) {
            (ActionState::AwaitingApproval, Some(d)) => age(d - app.now()),
            _ => "-".into(),
        };
        let state = match a.block {
            Some(b) if a.state == ActionState::Blocked => format!("blocked:{}", b.as_str()),
            _ if a.state == ActionState::AwaitingApproval && a.approvals_needed > 1 => format!(
                "{}/{} appr {}",
                a.approvals.len(),
                a.approvals_needed,
                a.approvals.join(",")
            ),
            _ => a.state.as_str().to_string(),
        };
        let params = a
            .params
            .iter()
            .map(|(k, v)| format!("{k}={}", clean(v)))
            .collect::<Vec<_>>()
            .join(" ");
        let line = Line::from(vec![
            Span::styled(pad(&a.id.to_string(), 9), t.text()),
            Span::styled(pad(&state, 18), state_style(a.state, t)),
            Span::styled(
                pad(&format!("{}@{}", a.runbook, clean(&a.target)), 27),
                t.text(),
            ),
            Span::styled(pad(&risk, 8), t.text()),
            Span::styled(pad(&left, 8), t.text()),
            Span::styled(pad(&params, w.saturating_sub(70)), t.muted()),
        ]);
        lines.push(select(line, i == app.approval_sel, t));
    }
    (title, lines, Some(app.approval_sel))
}
