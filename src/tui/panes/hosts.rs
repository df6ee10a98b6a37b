//! The Hosts pane: every host with its disk and memory pulse.

use ratatui::layout::Rect;
use ratatui::style::Modifier;
use ratatui::text::{Line, Span};

use crate::model::Severity;
use crate::tui::app::App;
use crate::tui::panes::{Pane, PaneText, clean, pad, select, spark, window};

/// The hosts whose name holds `filter` (any case), in the snapshot's order.
pub fn rows(app: &App, filter: &str) -> Vec<usize> {
    let f = filter.to_lowercase();
    app.snap
        .hosts
        .iter()
        .enumerate()
        .filter(|(_, h)| f.is_empty() || h.name.to_lowercase().contains(&f))
        .map(|(i, _)| i)
        .collect()
}

pub fn total(app: &App) -> usize {
    app.snap.hosts.len()
}

pub fn draw(app: &App, area: Rect) -> PaneText {
    let t = &app.theme;
    let snap = &app.snap;
    let state = app.list(Pane::Hosts);
    let rows = rows(app, &state.filter);
    let title = format!(
        "{} hosts{} ",
        rows.len(),
        if state.filter.is_empty() {
            String::new()
        } else {
            format!(" · filter {:?}", state.filter)
        }
    );
    let h = usize::from(area.height.saturating_sub(3));
    let w = usize::from(area.width.saturating_sub(2));
    // Name, group, services, alerts and actions take 42 columns; the two
    // sparklines share the rest.
    let sw = ((w.saturating_sub(42)) / 2).saturating_sub(6).clamp(4, 30);
    let mut lines = vec![Line::styled(
        pad(
            &format!(
                "HOST        GROUP   {:<w2$}{:<w2$}SVC         ALRT ACT",
                "DISK %",
                "MEM %",
                w2 = sw + 6
            ),
            w,
        ),
        t.muted().add_modifier(Modifier::BOLD),
    )];
    if rows.is_empty() {
        lines.push(Line::styled(
            "no host configured or reported yet",
            t.muted(),
        ));
        return (title, lines, None);
    }
    let start = window(state.sel, h);
    for (i, &ix) in rows.iter().enumerate().skip(start).take(h) {
        let hv = &snap.hosts[ix];
        let firing = hv.worst.or_else(|| app.derived.host_worst(&hv.name));
        let name_style = firing.map(|s| t.severity(s)).unwrap_or_else(|| t.text());
        let mut spans = vec![
            Span::styled(
                pad(
                    &format!(
                        "{}{}",
                        if firing.is_some() { "! " } else { "  " },
                        clean(&hv.name)
                    ),
                    12,
                ),
                name_style,
            ),
            Span::styled(pad(hv.group.as_deref().unwrap_or("-"), 8), t.muted()),
        ];
        if hv.no_data(snap.at) {
            // Never shows old figures as current: the marker says since when.
            let since = hv
                .last_seen
                .map(|at| format!("no data since {}", at.format("%H:%M:%S")))
                .unwrap_or_else(|| "no data".to_string());
            spans.push(Span::styled(
                pad(&since, (sw + 6) * 2),
                t.severity(Severity::Warning),
            ));
        } else {
            for m in [crate::hosts::DISK, crate::hosts::MEMORY] {
                let hist: Vec<f64> = hv
                    .history
                    .get(m)
                    .map(|h| h.iter().copied().collect())
                    .unwrap_or_default();
                let last = hv.metrics.get(m).copied();
                let style = match last {
                    Some(v) if v > 90.0 => t.severity(Severity::Critical),
                    Some(v) if v > 80.0 => t.severity(Severity::Warning),
                    _ => t.text(),
                };
                spans.push(Span::styled(
                    format!("{:<w2$}", spark(&hist, sw, Some((0.0, 100.0))), w2 = sw),
                    style,
                ));
                spans.push(Span::styled(
                    format!(
                        " {:<5}",
                        last.map(|v| format!("{v:.0}"))
                            .unwrap_or_else(|| "-".into())
                    ),
                    style,
                ));
            }
        }
        let down: Vec<&str> = hv.services_down().collect();
        let (svc, svc_style) = match (down.first(), hv.services.len()) {
            (_, 0) => ("-".to_string(), t.muted()),
            (None, n) => (format!("{n} up"), t.text()),
            (Some(first), _) if down.len() == 1 => (
                format!("{} down", clean(first)),
                t.severity(Severity::Critical),
            ),
            (Some(_), _) => (
                format!("{} down", down.len()),
                t.severity(Severity::Critical),
            ),
        };
        spans.push(Span::styled(pad(&svc, 12), svc_style));
        let count = |n: u32| {
            if n == 0 {
                "-".to_string()
            } else {
                n.to_string()
            }
        };
        spans.push(Span::styled(pad(&count(hv.alerts), 5), name_style));
        spans.push(Span::styled(pad(&count(hv.actions), 3), t.text()));
        lines.push(select(Line::from(spans), i == state.sel, t));
    }
    (title, lines, Some(state.sel))
}
