//! The Hosts pane: every host with its disk and memory pulse.

use ratatui::layout::Rect;
use ratatui::style::Modifier;
use ratatui::text::{Line, Span};

use crate::model::Severity;
use crate::tui::app::App;
use crate::tui::panes::{PaneText, clean, pad, select, spark, window};

pub fn draw(app: &App, area: Rect) -> PaneText {
    let t = &app.theme;
    let snap = &app.snap;
    let rows = app.host_rows();
    let title = format!(
        "{} hosts{} ",
        rows.len(),
        if app.host_filter.is_empty() {
            String::new()
        } else {
            format!(" · filter {:?}", app.host_filter)
        }
    );
    let h = usize::from(area.height.saturating_sub(3));
    let w = usize::from(area.width.saturating_sub(2));
    let sw = ((w.saturating_sub(28)) / 2).saturating_sub(6).clamp(4, 30);
    let mut lines = vec![Line::styled(
        pad(
            &format!(
                "HOST        GROUP   {:<w2$}{:<w2$}",
                "DISK %",
                "MEM %",
                w2 = sw + 6
            ),
            w,
        ),
        t.muted().add_modifier(Modifier::BOLD),
    )];
    if rows.is_empty() {
        lines.push(Line::styled("no host has reported yet", t.muted()));
        return (title, lines, None);
    }
    let start = window(app.host_sel, h);
    for (i, &ix) in rows.iter().enumerate().skip(start).take(h) {
        let hv = &snap.hosts[ix];
        let firing = app.derived.host_worst(&hv.name);
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
        for m in ["disk_used_percent", "memory_used_percent"] {
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
        lines.push(select(Line::from(spans), i == app.host_sel, t));
    }
    (title, lines, Some(app.host_sel))
}
