//! The Audit pane: a window onto the trail, newest first.

use ratatui::layout::Rect;
use ratatui::style::{Modifier, Style};
use ratatui::text::{Line, Span};

use crate::model::Record;
use crate::tui::app::App;
use crate::tui::audit::record_text;
use crate::tui::panes::{PaneText, clean, pad, plural_u64, select, window};
use crate::tui::theme::Theme;

fn kind_style(r: &Record, t: &Theme) -> Style {
    use crate::model::RecordKind as K;
    match r.kind {
        K::ActionFailed | K::VerificationFailed | K::Escalated | K::CircuitOpened => {
            t.style("approval.failed")
        }
        K::ActionSucceeded | K::VerificationPassed | K::ActionApproved | K::CircuitClosed => {
            t.style("approval.approved")
        }
        K::ApprovalRequested | K::ActionInterrupted => t.style("approval.pending"),
        K::ActionBlocked | K::ActionRejected | K::ActionExpired => t.style("approval.rejected"),
        K::ActionStarted | K::DryRunPlanned => t.style("approval.executing"),
        K::AlertFiring => r
            .severity
            .map(|s| t.severity(s))
            .unwrap_or_else(|| t.text()),
        K::AlertResolved => t.resolved(),
        K::ModeChanged => t.title(),
        _ => t.text(),
    }
}

pub fn draw(app: &App, area: Rect) -> PaneText {
    let t = &app.theme;
    let v = &app.audit;
    let total = v
        .total
        .map(|n| plural_u64(n, if v.filtered() { "match" } else { "record" }))
        .unwrap_or_else(|| "counting…".into());
    let title = format!(
        "newest first · {total}{}{}{} ",
        if v.filter_text.is_empty() {
            String::new()
        } else {
            format!(" · filter {}", v.filter_text)
        },
        if v.at_head {
            ""
        } else {
            " · back in time (g g: newest)"
        },
        if v.loading { " · loading" } else { "" }
    );
    let h = usize::from(area.height.saturating_sub(3));
    let w = usize::from(area.width.saturating_sub(2));
    let mut lines = vec![Line::styled(
        pad("SEQ      TIME      KIND                  ACTOR     WHAT", w),
        t.muted().add_modifier(Modifier::BOLD),
    )];
    if let Some(e) = &v.error {
        lines.push(Line::styled(
            format!("audit: {e}"),
            t.style("approval.failed"),
        ));
    }
    if v.rows.is_empty() {
        lines.push(Line::styled(
            if v.loading {
                "reading the audit trail…"
            } else if v.filtered() {
                "no record matches the filter (esc clears it)"
            } else {
                "the audit trail is empty"
            },
            t.muted(),
        ));
        return (title, lines, None);
    }
    let start = window(v.selected, h);
    for (i, r) in v.rows.iter().enumerate().skip(start).take(h) {
        let line = Line::from(vec![
            Span::styled(pad(&r.seq.to_string(), 9), t.muted()),
            Span::styled(pad(&when(r.at, app.now()), 10), t.muted()),
            Span::styled(pad(r.kind.as_str(), 22), kind_style(r, t)),
            Span::styled(pad(&clean(r.actor.as_deref().unwrap_or("-")), 10), t.text()),
            Span::styled(pad(&record_text(r), w.saturating_sub(51)), t.text()),
        ]);
        lines.push(select(line, i == v.selected, t));
    }
    (title, lines, Some(v.selected))
}

/// A record's time in the list: the clock time today, the date before.
fn when(at: crate::model::Time, now: crate::model::Time) -> String {
    if at.date_naive() == now.date_naive() {
        at.format("%H:%M:%S").to_string()
    } else {
        at.format("%m-%d %H:%M").to_string()
    }
}
