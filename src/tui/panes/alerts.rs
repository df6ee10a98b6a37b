//! The Alerts pane: firing alerts, then pending conditions, then resolved
//! ones, after the filter.

use ratatui::layout::Rect;
use ratatui::style::Modifier;
use ratatui::text::{Line, Span};

use crate::engine::Alert;
use crate::model::{AlertStatus, Severity};
use crate::tui::app::{AlertRow, App};
use crate::tui::panes::{PaneText, age, clean, fmt_value, pad, select, sev_word, window};
use crate::tui::theme::Theme;

pub fn draw(app: &App, area: Rect) -> PaneText {
    let t = &app.theme;
    let snap = &app.snap;
    let counts = app.derived.firing;
    let title = format!(
        "firing: {} crit {} high {} warn {} info · {} pending (not firing yet){} ",
        counts[Severity::Critical as usize],
        counts[Severity::High as usize],
        counts[Severity::Warning as usize],
        counts[Severity::Info as usize],
        snap.pending.len(),
        if app.alert_filter.is_empty() {
            String::new()
        } else {
            format!(" · filter {:?}", app.alert_filter)
        }
    );
    let h = usize::from(area.height.saturating_sub(3));
    let w = usize::from(area.width.saturating_sub(2));
    let compact = w < 60;
    let header = if compact {
        "SEV   HOST        ALERT"
    } else {
        "SEV   AGE     STATE         HOST          ALERT"
    };
    let mut lines = vec![Line::styled(
        pad(header, w),
        t.muted().add_modifier(Modifier::BOLD),
    )];
    if app.alert_rows.is_empty() {
        lines.push(Line::styled(
            if app.alert_filter.is_empty() {
                "no alerts: all quiet"
            } else {
                "no alert matches the filter (esc clears it)"
            },
            t.muted(),
        ));
        return (title, lines, None);
    }
    let start = window(app.alert_sel, h);
    for (i, row) in app.alert_rows.iter().enumerate().skip(start).take(h) {
        let line = match *row {
            AlertRow::Alert(ix) => {
                let a = &snap.alerts[ix];
                alert_line(a, app.now(), t, w)
            }
            AlertRow::Pending(ix) => pending_line(&snap.pending[ix], app.now(), t, w),
        };
        lines.push(select(line, i == app.alert_sel, t));
    }
    (title, lines, Some(app.alert_sel))
}

/// A condition that holds but not yet for its `for`: the severity it
/// will fire with (lower case: not yet), how long until it fires, its
/// value now.
fn pending_line(
    p: &crate::hub::PendingAlert,
    now: crate::model::Time,
    t: &Theme,
    w: usize,
) -> Line<'static> {
    let host = p.labels.get("host").map(String::as_str).unwrap_or("-");
    let word = p.severity.map_or("····", |s| sev_word(s)).to_lowercase();
    let style = p
        .severity
        .map_or_else(|| t.muted(), |s| t.severity(s).add_modifier(Modifier::DIM));
    let fires = match p.fires_at {
        Some(f) if f > now => format!("fires in {}", age(f - now)),
        Some(_) => "fires now".to_string(),
        None => "pending".to_string(),
    };
    let tail = format!(
        "{} {}",
        clean(&p.name),
        p.value.map(fmt_value).unwrap_or_default()
    );
    if w < 60 {
        return Line::from(vec![
            Span::styled(format!("{word}  "), style),
            Span::styled(pad(&clean(host), 12), t.muted()),
            Span::styled(
                pad(&format!("{tail} ({fires})"), w.saturating_sub(18)),
                t.muted(),
            ),
        ]);
    }
    Line::from(vec![
        Span::styled(format!("{word}  "), style),
        Span::styled(pad(&age(now - p.since), 8), t.muted()),
        Span::styled(pad(&fires, 14), t.muted()),
        Span::styled(pad(&clean(host), 14), t.muted()),
        Span::styled(pad(&tail, w.saturating_sub(42)), t.muted()),
    ])
}

fn alert_line(a: &Alert, now: crate::model::Time, t: &Theme, w: usize) -> Line<'static> {
    let resolved = a.status == AlertStatus::Resolved;
    let (word, style) = if resolved {
        ("OK  ", t.resolved())
    } else {
        (sev_word(a.severity), t.severity(a.severity))
    };
    let state = if resolved {
        "resolved"
    } else if a.silence.is_some() {
        "silenced"
    } else {
        "firing"
    };
    let host = a.host().unwrap_or("-");
    let value = a.value.map(fmt_value).unwrap_or_default();
    let extra = a
        .labels
        .iter()
        .filter(|(k, _)| !matches!(k.as_str(), "alertname" | "host" | "severity"))
        .map(|(k, v)| format!("{k}={}", clean(v)))
        .collect::<Vec<_>>()
        .join(" ");
    let text_style = if resolved || a.silence.is_some() {
        t.muted()
    } else {
        t.text()
    };
    let mut tail = format!("{} {value}", clean(&a.name));
    if !extra.is_empty() {
        tail.push_str("  ");
        tail.push_str(&extra);
    }
    if w < 60 {
        return Line::from(vec![
            Span::styled(format!("{word}  "), style),
            Span::styled(pad(&clean(host), 12), text_style),
            Span::styled(pad(&tail, w.saturating_sub(18)), text_style),
        ]);
    }
    let used = 6 + 8 + 14 + 14;
    Line::from(vec![
        Span::styled(format!("{word}  "), style),
        Span::styled(pad(&age(now - a.since), 8), text_style),
        Span::styled(pad(state, 14), text_style),
        Span::styled(pad(&clean(host), 14), text_style),
        Span::styled(pad(&tail, w.saturating_sub(used)), text_style),
    ])
}
