//! The Runbooks pane: the runbooks that match the alert in context, with
//! their guards, parameters and exact plan.

use ratatui::layout::Rect;
use ratatui::text::{Line, Span};

use crate::tui::app::App;
use crate::tui::panes::{PaneText, clean, select, show_cmd, state_style};

pub fn draw(app: &App, _area: Rect) -> PaneText {
    let t = &app.theme;
    let snap = &app.snap;
    let mut lines: Vec<Line<'static>> = Vec::new();
    let Some(a) = app.selected_alert() else {
        lines.push(Line::styled(
            "select an alert to see its runbooks",
            t.muted(),
        ));
        return (String::new(), lines, None);
    };
    if snap.focus.as_deref() != Some(a.fingerprint.as_str()) {
        lines.push(Line::styled("matching runbooks…", t.muted()));
        return (String::new(), lines, None);
    }
    if snap.suggestions.is_empty() {
        lines.push(Line::styled(
            "no runbook matches this alert: it is for a human",
            t.muted(),
        ));
        return (String::new(), lines, None);
    }
    let mode = if snap.modes.dry_run {
        "dry-run plan"
    } else {
        "plan"
    };
    let mut sel_line = 0;
    for (i, s) in snap.suggestions.iter().enumerate() {
        let selected = i == app.suggestion_sel;
        if selected {
            sel_line = lines.len();
        }
        let head = Line::from(vec![
            Span::styled(format!("{}. {}", i + 1, s.runbook), t.title()),
            Span::styled(
                format!(
                    "  @{}  risk {}  approval {}  score {}",
                    clean(&s.target),
                    s.risk,
                    s.approval,
                    s.score
                ),
                t.text(),
            ),
        ]);
        lines.push(select(head, selected, t));
        if !s.reasons.is_empty() {
            lines.push(Line::styled(
                format!("   why: {}", s.reasons.join("; ")),
                t.muted(),
            ));
        }
        let open = app.derived.open_action(snap, &s.runbook, &s.target);
        match (&s.params, &s.block) {
            (_, _) if open.is_some() => {
                if let Some(x) = open {
                    lines.push(Line::styled(
                        format!("   in progress as {}: {}", x.id, x.state.as_str()),
                        state_style(x.state, t),
                    ));
                }
            }
            (Err(e), _) => lines.push(Line::styled(
                format!("   blocked: param_invalid: {}", clean(e)),
                t.style("approval.failed"),
            )),
            (Ok(_), Some(b)) => lines.push(Line::styled(
                format!(
                    "   would be blocked: {}: {}",
                    b.reason.as_str(),
                    clean(&b.detail)
                ),
                t.style("approval.failed"),
            )),
            (Ok(_), None) => lines.push(Line::styled(
                "   no guard blocks it now",
                t.style("approval.approved"),
            )),
        }
        if let Ok(p) = &s.params
            && !p.is_empty()
        {
            lines.push(Line::styled(
                format!(
                    "   params: {}",
                    p.iter()
                        .map(|(k, v)| format!("{k}={}", clean(v)))
                        .collect::<Vec<_>>()
                        .join(" ")
                ),
                t.text(),
            ));
        }
        for st in &s.plan {
            lines.push(Line::styled(
                format!(
                    "   {mode}: $ {}{}",
                    show_cmd(&st.display()),
                    if st.read_only { "  [read-only]" } else { "" }
                ),
                t.text(),
            ));
        }
    }
    (String::new(), lines, Some(sel_line))
}
