//! The Runbooks pane: the runbooks for the alert in context side by side:
//! those whose rule matches it, those only the root-cause analysis
//! recommends, and those it declines; each with where it comes from, why,
//! why not, what it would free against what is needed, its guards and
//! parameters; then the exact plan of the selected one.

use ratatui::layout::Rect;
use ratatui::text::{Line, Span};

use crate::engine::SuggestionOrigin;
use crate::tui::app::App;
use crate::tui::panes::{
    PaneText, clean, frees_text, select, show_cmd, state_style, weighed_lines,
};

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
    for w in weighed_lines(snap, &a.fingerprint) {
        lines.push(Line::styled(w, t.muted()));
    }
    let mut sel_line = 0;
    for (i, s) in snap.suggestions.iter().enumerate() {
        let selected = i == app.suggestion_sel;
        if selected {
            sel_line = lines.len();
        }
        let origin = match (s.origin, s.analysis_rank) {
            (SuggestionOrigin::Match, _) => "matched".to_string(),
            (SuggestionOrigin::Analysis, Some(r)) => format!("analysis #{r}"),
            (SuggestionOrigin::Analysis, None) => "analysis".to_string(),
            (SuggestionOrigin::Both, Some(r)) => format!("matched + analysis #{r}"),
            (SuggestionOrigin::Both, None) => "matched + analysis".to_string(),
        };
        let head = Line::from(vec![
            Span::styled(format!("{}. {}", i + 1, s.runbook), t.title()),
            Span::styled(format!("  [{origin}]"), t.title()),
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
        let why = if s.why.is_empty() { &s.reasons } else { &s.why };
        for w in why {
            lines.push(Line::styled(format!("   why: {}", clean(w)), t.muted()));
        }
        for w in &s.why_not {
            lines.push(Line::styled(
                format!("   why not: {}", clean(w)),
                t.style("approval.failed"),
            ));
        }
        if let Some(f) = frees_text(s) {
            lines.push(Line::styled(format!("   capacity: {f}"), t.text()));
        }
        if s.proposable && !app.opts.read_only {
            let key = app
                .keymap
                .keys_text(
                    crate::tui::keymap::Scope::Pane(crate::tui::panes::Pane::Suggestions),
                    crate::tui::commands::UiAction::ProposeAnalysis,
                )
                .into_iter()
                .next()
                .map(|k| format!("{k} or "))
                .unwrap_or_default();
            lines.push(Line::styled(
                format!(
                    "   {key}`:propose-analysis {}` proposes it with the analysis' parameters",
                    s.runbook
                ),
                t.style("approval.approved"),
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
        if !selected && !s.plan.is_empty() {
            lines.push(Line::styled(
                format!("   {mode}: {} step(s), shown when selected", s.plan.len()),
                t.muted(),
            ));
        }
    }
    // The exact commands of the selected runbook only, after the list: a
    // long plan never pushes the other runbooks out of sight.
    if let Some(s) = snap.suggestions.get(app.suggestion_sel)
        && !s.plan.is_empty()
    {
        lines.push(Line::raw(""));
        lines.push(Line::styled(
            format!("{} of {}. {}", mode, app.suggestion_sel + 1, s.runbook),
            t.title(),
        ));
        for st in &s.plan {
            lines.push(Line::styled(
                format!(
                    "   $ {}{}",
                    show_cmd(&st.display()),
                    if st.read_only { "  [read-only]" } else { "" }
                ),
                t.text(),
            ));
        }
    }
    (String::new(), lines, Some(sel_line))
}
