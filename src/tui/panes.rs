//! The six panes: Alerts, Detail (with root cause), Runbooks (suggestions),
//! Approvals, Audit and Hosts. Each draws only the rows it can show, so a
//! frame costs the same with ten alerts or ten thousand.

use chrono::TimeDelta;
use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::style::{Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Paragraph, Wrap};

use crate::engine::Alert;
use crate::model::{ActionState, AlertStatus, Record, Severity};
use crate::tui::app::{AlertRow, App, Pane};
use crate::tui::theme::Theme;

pub fn draw_pane(f: &mut Frame, app: &mut App, pane: Pane, area: Rect) {
    if area.width == 0 || area.height == 0 {
        return;
    }
    let focused = app.focus == pane;
    app.pane_areas.push((pane, area));
    let (title, lines, selected) = match pane {
        Pane::Alerts => alerts(app, area),
        Pane::Detail => detail(app, area),
        Pane::Suggestions => suggestions(app),
        Pane::Approvals => approvals(app, area),
        Pane::Audit => audit(app, area),
        Pane::Hosts => hosts(app, area),
    };
    let num = Pane::ALL.iter().position(|p| *p == pane).unwrap_or(0) + 1;
    let block = Block::bordered()
        .title(Line::from(vec![
            Span::styled(format!(" {num} {} ", pane.title()), app.theme.title()),
            Span::styled(title, app.theme.muted()),
        ]))
        .border_style(app.theme.border(focused));
    let inner = block.inner(area);
    if focused {
        app.page_rows = usize::from(inner.height.max(1));
    }
    let mut p = Paragraph::new(lines).block(block);
    match pane {
        Pane::Detail => {
            p = p.wrap(Wrap { trim: false }).scroll((app.detail_scroll, 0));
        }
        Pane::Suggestions => {
            let skip = selected
                .unwrap_or(0)
                .saturating_sub(usize::from(inner.height) / 2);
            p = p.scroll((skip.min(u16::MAX as usize) as u16, 0));
        }
        _ => {}
    }
    f.render_widget(p, area);
}

/// The first row to show so that `sel` is visible in `h` rows.
fn window(sel: usize, h: usize) -> usize {
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

fn pad(s: &str, w: usize) -> String {
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

fn fmt_value(v: f64) -> String {
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

fn select(line: Line<'static>, selected: bool, t: &Theme) -> Line<'static> {
    if selected {
        line.patch_style(t.selection())
    } else {
        line
    }
}

type PaneText = (String, Vec<Line<'static>>, Option<usize>);

fn alerts(app: &App, area: Rect) -> PaneText {
    let t = &app.theme;
    let snap = &app.snap;
    let mut counts = [0usize; 4];
    for a in snap
        .alerts
        .iter()
        .filter(|a| a.status == AlertStatus::Firing)
    {
        counts[a.severity as usize] += 1;
    }
    let title = format!(
        "{} crit {} high {} warn {} info · {} pending{} ",
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
        "SEV   AGE     STATE     HOST          ALERT"
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
            AlertRow::Pending(ix) if compact => {
                let p = &snap.pending[ix];
                let host = p.labels.get("host").map(String::as_str).unwrap_or("-");
                Line::from(vec![
                    Span::styled("····  ", t.muted()),
                    Span::styled(pad(&clean(host), 12), t.muted()),
                    Span::styled(format!("{} (pending)", clean(&p.name)), t.muted()),
                ])
            }
            AlertRow::Pending(ix) => {
                let p = &snap.pending[ix];
                let host = p.labels.get("host").map(String::as_str).unwrap_or("-");
                Line::from(vec![
                    Span::styled("····  ", t.muted()),
                    Span::styled(pad(&age(app.now() - p.since), 8), t.muted()),
                    Span::styled(pad("pending", 10), t.muted()),
                    Span::styled(pad(&clean(host), 14), t.muted()),
                    Span::styled(clean(&p.name), t.muted()),
                ])
            }
        };
        lines.push(select(line, i == app.alert_sel, t));
    }
    (title, lines, Some(app.alert_sel))
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
    let used = 6 + 8 + 10 + 14;
    Line::from(vec![
        Span::styled(format!("{word}  "), style),
        Span::styled(pad(&age(now - a.since), 8), text_style),
        Span::styled(pad(state, 10), text_style),
        Span::styled(pad(&clean(host), 14), text_style),
        Span::styled(pad(&tail, w.saturating_sub(used)), text_style),
    ])
}

fn detail(app: &App, area: Rect) -> PaneText {
    let t = &app.theme;
    let snap = &app.snap;
    let mut lines: Vec<Line<'static>> = Vec::new();
    let Some(a) = app.selected_alert() else {
        if let Some(AlertRow::Pending(ix)) = app.alert_rows.get(app.alert_sel) {
            let p = &snap.pending[*ix];
            lines.push(Line::styled(
                format!("{} (pending)", clean(&p.name)),
                t.title(),
            ));
            lines.push(Line::styled(
                format!("The condition holds since {} ago; it fires when it has held for the policy's `for`.", age(app.now() - p.since)),
                t.text(),
            ));
            for (k, v) in &p.labels {
                lines.push(Line::styled(format!("  {k}={}", clean(v)), t.muted()));
            }
        } else {
            lines.push(Line::styled("select an alert", t.muted()));
        }
        return (String::new(), lines, None);
    };
    let resolved = a.status == AlertStatus::Resolved;
    lines.push(Line::from(vec![
        Span::styled(
            format!("{} ", if resolved { "OK" } else { sev_word(a.severity) }),
            if resolved {
                t.resolved()
            } else {
                t.severity(a.severity)
            },
        ),
        Span::styled(clean(&a.name), t.title()),
        Span::styled(
            format!(
                "  {} for {}  ·  source {}",
                if resolved { "resolved" } else { "firing" },
                age(a.resolved_at.unwrap_or(app.now()) - a.since),
                clean(&a.source)
            ),
            t.text(),
        ),
    ]));
    lines.push(Line::styled(
        format!(
            "since {}{}",
            a.since.format("%Y-%m-%d %H:%M:%S UTC"),
            a.resolved_at
                .map(|r| format!(", resolved {}", r.format("%H:%M:%S")))
                .unwrap_or_default()
        ),
        t.muted(),
    ));
    if let Some(s) = &a.silence {
        lines.push(Line::styled(
            format!(
                "SILENCED {} by {}{}  (no runbook is proposed; `unsilence` ends it)",
                if s.until >= crate::engine::while_inhibited() {
                    "while the inhibiting alert fires".to_string()
                } else {
                    format!("until {}", s.until.format("%Y-%m-%d %H:%M UTC"))
                },
                clean(&s.actor),
                if s.comment.is_empty() {
                    String::new()
                } else {
                    format!(": {}", clean(&s.comment))
                }
            ),
            t.severity(Severity::Warning),
        ));
    }
    let labels = a
        .labels
        .iter()
        .map(|(k, v)| format!("{k}={}", clean(v)))
        .collect::<Vec<_>>()
        .join(" ");
    lines.push(Line::styled(format!("labels: {labels}"), t.text()));
    for (k, v) in &a.annotations {
        lines.push(Line::styled(format!("{k}: {}", clean(v)), t.text()));
    }
    lines.push(Line::raw(""));
    lines.push(Line::styled("Root cause", t.title()));
    if let Some(v) = snap.analyses.get(&a.fingerprint) {
        analysis_lines(v, t, &mut lines);
        lines.push(Line::styled("Evidence from the engine", t.title()));
    } else {
        lines.push(Line::styled(
            "analysing… until then, the engine's evidence:",
            t.muted(),
        ));
    }
    if let Some(c) = &a.condition {
        lines.push(Line::styled(
            format!(
                "  policy: {}  → value {}",
                clean(c),
                a.value.map(fmt_value).unwrap_or_else(|| "-".into())
            ),
            t.text(),
        ));
    }
    let metric = a
        .condition
        .as_deref()
        .and_then(|c| {
            c.split(|ch: char| !(ch.is_alphanumeric() || ch == '_'))
                .next()
        })
        .filter(|m| !m.is_empty());
    if let (Some(m), Some(host)) = (metric, a.host())
        && let Some(hv) = snap.hosts.iter().find(|h| h.name == host)
        && let Some(hist) = hv.series_for(m, &a.labels).or_else(|| hv.history.get(m))
        && !hist.is_empty()
    {
        let vals: Vec<f64> = hist.iter().copied().collect();
        let (lo, hi) = vals
            .iter()
            .fold((f64::MAX, f64::MIN), |(l, h), v| (l.min(*v), h.max(*v)));
        let first = vals[0];
        let last = vals[vals.len() - 1];
        let trend = if (last - first).abs() < (hi - lo).max(1e-9) * 0.1 {
            "flat"
        } else if last > first {
            "rising"
        } else {
            "falling"
        };
        let w = usize::from(area.width.saturating_sub(30)).clamp(10, 60);
        lines.push(Line::from(vec![
            Span::styled(format!("  {m} on {host}: "), t.text()),
            Span::styled(spark(&vals, w, None), t.severity(a.severity)),
        ]));
        lines.push(Line::styled(
            format!(
                "  last {} · min {} · max {} · {trend} over the last {} samples",
                fmt_value(last),
                fmt_value(lo),
                fmt_value(hi),
                vals.len()
            ),
            t.text(),
        ));
    }
    let others: Vec<&Alert> = a
        .host()
        .map(|h| {
            app.derived
                .host_alerts(snap, h)
                .into_iter()
                .filter(|o| o.fingerprint != a.fingerprint)
                .take(5)
                .collect()
        })
        .unwrap_or_default();
    if !others.is_empty() {
        lines.push(Line::styled(
            format!(
                "  also firing on this host: {}",
                others
                    .iter()
                    .map(|o| clean(&o.name))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
            t.text(),
        ));
    }
    if let Some(act) = app.derived.action_of(snap, &a.fingerprint) {
        lines.push(Line::raw(""));
        lines.push(Line::from(vec![
            Span::styled("Action ", t.title()),
            Span::styled(
                format!("{} {}@{} ", act.id, act.runbook, act.target),
                t.text(),
            ),
            Span::styled(act.state.as_str().to_string(), state_style(act.state, t)),
            Span::styled(
                act.block
                    .map(|b| format!(" ({})", b.as_str()))
                    .unwrap_or_default(),
                t.muted(),
            ),
        ]));
        if !act.detail.is_empty() {
            lines.push(Line::styled(format!("  {}", clean(&act.detail)), t.muted()));
        }
    }
    (String::new(), lines, None)
}

/// The analyser's answer: cause, confidence, summary, the evidence it
/// cites, the runbooks it recommends and what would change its mind.
fn analysis_lines(
    v: &crate::analysis::live::AnalysisView,
    t: &Theme,
    lines: &mut Vec<Line<'static>>,
) {
    use crate::analysis::live::AnalysisState;
    let a = &v.analysis;
    let who = match v.analyser {
        crate::analysis::AnalyserKind::Heuristic => "built-in analyser",
        crate::analysis::AnalyserKind::Llm => "LLM (checked)",
    };
    let state = match v.state {
        AnalysisState::Pending => " · LLM asked, waiting",
        AnalysisState::Streaming => " · LLM answering…",
        AnalysisState::Done => "",
        AnalysisState::Fallback => " · LLM answer not used",
    };
    let cause_style = if a.inconclusive() {
        t.muted()
    } else {
        t.title()
    };
    lines.push(Line::from(vec![
        Span::styled(
            if a.inconclusive() {
                "inconclusive".to_string()
            } else {
                a.cause.as_str().replace('_', " ")
            },
            cause_style,
        ),
        Span::styled(
            format!("  confidence {:.0}%  · {who}{state}", a.confidence * 100.0),
            t.muted(),
        ),
    ]));
    lines.push(Line::styled(format!("  {}", clean(&a.summary)), t.text()));
    if let Some(f) = &v.fallback {
        lines.push(Line::styled(format!("  (LLM: {})", clean(f)), t.muted()));
    }
    if v.state == AnalysisState::Streaming && !v.streamed.is_empty() {
        let tail: String = v
            .streamed
            .chars()
            .rev()
            .take(200)
            .collect::<Vec<_>>()
            .into_iter()
            .rev()
            .collect();
        lines.push(Line::styled(format!("  … {}", clean(&tail)), t.muted()));
    }
    for e in a.evidence.iter().take(6) {
        let at =
            e.at.map(|x| format!(" at {}", x.format("%H:%M:%S")))
                .unwrap_or_default();
        let note = if e.note.is_empty() {
            String::new()
        } else {
            format!(" — {}", clean(&e.note))
        };
        lines.push(Line::styled(
            format!("  • {} = {}{at}{note}", clean(&e.signal), clean(&e.value)),
            t.text(),
        ));
    }
    if a.runbooks.is_empty() {
        lines.push(Line::styled(
            "  recommends: no runbook; a human should look",
            t.text(),
        ));
    }
    for (i, r) in a.runbooks.iter().enumerate() {
        let params = r
            .params
            .iter()
            .map(|(k, v)| format!("{k}={}", clean(v)))
            .collect::<Vec<_>>()
            .join(" ");
        lines.push(Line::styled(
            format!(
                "  {} {}{}{}",
                if i == 0 {
                    "recommends:"
                } else {
                    "       then:"
                },
                r.runbook,
                if params.is_empty() {
                    String::new()
                } else {
                    format!(" ({params})")
                },
                if r.why.is_empty() {
                    String::new()
                } else {
                    format!(" — {}", clean(&r.why))
                }
            ),
            t.text(),
        ));
    }
    for w in a.would_change.iter().take(3) {
        lines.push(Line::styled(
            format!("  would change it: {}", clean(w)),
            t.muted(),
        ));
    }
}

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

fn state_style(s: ActionState, t: &Theme) -> Style {
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

fn suggestions(app: &App) -> PaneText {
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

fn approvals(app: &App, area: Rect) -> PaneText {
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

fn record_text(r: &Record) -> String {
    let mut s = String::new();
    if let Some(id) = &r.action_id {
        s.push_str(id);
        s.push(' ');
    }
    if let Some(rb) = &r.runbook {
        s.push_str(rb);
        if let Some(tg) = &r.target {
            s.push('@');
            s.push_str(&clean(tg));
        }
        s.push(' ');
    } else if let Some(a) = &r.alert {
        s.push_str(&clean(a));
        if let Some(tg) = &r.target {
            s.push('@');
            s.push_str(&clean(tg));
        }
        s.push(' ');
    }
    if let Some(reason) = &r.reason {
        s.push_str(reason);
        s.push_str(": ");
    }
    if let Some(d) = &r.detail {
        s.push_str(&clean(d));
    }
    s
}

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

fn audit(app: &App, area: Rect) -> PaneText {
    let t = &app.theme;
    let v = &app.audit;
    let total = v
        .total
        .map(|n| format!("{n} records"))
        .unwrap_or_else(|| "counting…".into());
    let title = format!(
        "newest first · {total}{}{} ",
        if v.filter_text.is_empty() {
            String::new()
        } else {
            format!(" · filter {}", v.filter_text)
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
            } else {
                "no record matches"
            },
            t.muted(),
        ));
        return (title, lines, None);
    }
    let start = window(v.selected, h);
    for (i, r) in v.rows.iter().enumerate().skip(start).take(h) {
        let line = Line::from(vec![
            Span::styled(pad(&r.seq.to_string(), 9), t.muted()),
            Span::styled(pad(&r.at.format("%H:%M:%S").to_string(), 10), t.muted()),
            Span::styled(pad(r.kind.as_str(), 22), kind_style(r, t)),
            Span::styled(pad(&clean(r.actor.as_deref().unwrap_or("-")), 10), t.text()),
            Span::styled(pad(&record_text(r), w.saturating_sub(51)), t.text()),
        ]);
        lines.push(select(line, i == v.selected, t));
    }
    (title, lines, Some(v.selected))
}

fn hosts(app: &App, area: Rect) -> PaneText {
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
    let start = window(app.host_sel, h);
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
        lines.push(select(Line::from(spans), i == app.host_sel, t));
    }
    (title, lines, Some(app.host_sel))
}
