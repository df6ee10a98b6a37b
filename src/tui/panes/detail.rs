//! The Detail pane: the alert in context (the row selected in Alerts or
//! Approvals), its root cause, the engine's evidence and its action.

use ratatui::layout::Rect;
use ratatui::text::{Line, Span};

use crate::engine::Alert;
use crate::hub::PendingAlert;
use crate::model::{AlertStatus, Severity};
use crate::tui::app::{AlertRow, App};
use crate::tui::panes::{Pane, PaneText, clean, duration, fmt_value, sev_word, spark, state_style};
use crate::tui::theme::Theme;

pub fn draw(app: &App, area: Rect) -> PaneText {
    let t = &app.theme;
    let snap = &app.snap;
    let mut lines: Vec<Line<'static>> = Vec::new();
    let Some(a) = app.context_alert() else {
        let pending = match app.alert_rows.get(app.alert_sel) {
            Some(AlertRow::Pending(ix)) if app.context == Pane::Alerts => snap.pending.get(*ix),
            _ => None,
        };
        if let Some(p) = pending {
            pending_lines(p, app.now(), t, &mut lines);
        } else if app.context == Pane::Approvals && app.selected_action().is_some() {
            lines.push(Line::styled(
                "the alert of this action is no longer open (see Audit for its story)",
                t.muted(),
            ));
        } else {
            lines.push(Line::styled("select an alert or an approval", t.muted()));
        }
        return (String::new(), lines, None);
    };
    let from = if app.context == Pane::Approvals {
        " · for the selected approval"
    } else {
        ""
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
            match a.resolved_at {
                Some(r) if resolved => format!(
                    "  resolved {} ago, after firing for {}  ·  source {}{from}",
                    duration(app.now() - r),
                    duration(r - a.since),
                    clean(&a.source)
                ),
                _ => format!(
                    "  firing for {}  ·  source {}{from}",
                    duration(app.now() - a.since),
                    clean(&a.source)
                ),
            },
            t.text(),
        ),
    ]));
    lines.push(Line::styled(
        format!(
            "since {}{}",
            a.since.format("%Y-%m-%d %H:%M:%S UTC"),
            a.resolved_at
                .map(|r| format!(", resolved {}", r.format("%Y-%m-%d %H:%M:%S UTC")))
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
    let weighed = crate::tui::panes::weighed_lines(snap, &a.fingerprint)
        .into_iter()
        .map(|w| Line::styled(format!("  weighed: {w}"), t.text()));
    if let Some(v) = snap.analyses.get(&a.fingerprint) {
        analysis_lines(v, t, &mut lines);
        lines.extend(weighed);
        why_not_proposed(app, a, t, &mut lines);
        lines.push(Line::styled("Evidence from the engine", t.title()));
    } else {
        lines.push(Line::styled(
            "analysing… until then, the engine's evidence:",
            t.muted(),
        ));
        lines.extend(weighed);
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
    let bullet = if a.evidence.len() > 1 {
        "•"
    } else {
        "evidence:"
    };
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
            format!(
                "  {bullet} {} = {}{at}{note}",
                clean(&e.signal),
                human_value(&e.value)
            ),
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

/// A value from the analysis for people: a float's noise trimmed
/// (`89.80000000000001` reads `89.8`), anything else as it is.
pub fn human_value(v: &str) -> String {
    match v.trim().parse::<f64>() {
        Ok(x) if v.contains('.') && x.is_finite() => fmt_value(x),
        _ => clean(v),
    }
}

/// A condition that holds but has not fired yet: since when, its value,
/// the severity it will fire with and when.
fn pending_lines(
    p: &PendingAlert,
    now: crate::model::Time,
    t: &Theme,
    lines: &mut Vec<Line<'static>>,
) {
    lines.push(Line::from(vec![
        Span::styled(
            format!("{} ", p.severity.map_or("····", sev_word).to_lowercase()),
            p.severity.map_or_else(|| t.muted(), |s| t.severity(s)),
        ),
        Span::styled(clean(&p.name), t.title()),
        Span::styled(
            "  pending: the condition holds, not yet for long enough",
            t.text(),
        ),
    ]));
    lines.push(Line::styled(
        format!(
            "holding for {} (since {}){}",
            duration(now - p.since),
            p.since.format("%Y-%m-%d %H:%M:%S UTC"),
            match p.fires_at {
                Some(f) if f > now => format!(
                    "; fires in {} ({}) if it keeps holding",
                    duration(f - now),
                    f.format("%H:%M:%S UTC")
                ),
                Some(_) => "; fires at the next evaluation".to_string(),
                None => String::new(),
            }
        ),
        t.text(),
    ));
    if let Some(c) = &p.condition {
        lines.push(Line::styled(
            format!(
                "policy: {}  → value now {}",
                clean(c),
                p.value.map(fmt_value).unwrap_or_else(|| "-".into())
            ),
            t.text(),
        ));
    }
    if let Some(s) = p.severity {
        lines.push(Line::styled(
            format!("fires as {}", s.as_str()),
            t.severity(s),
        ));
    }
    for (k, v) in &p.labels {
        lines.push(Line::styled(format!("  {k}={}", clean(v)), t.muted()));
    }
}

/// When the analysis recommends another runbook than the one matched,
/// why that one is not proposed: no rule of it matches this alert, a
/// guard would block it, or a parameter does not validate.
fn why_not_proposed(app: &App, a: &Alert, t: &Theme, lines: &mut Vec<Line<'static>>) {
    let snap = &app.snap;
    let Some(v) = snap.analyses.get(&a.fingerprint) else {
        return;
    };
    if v.analysis.inconclusive() {
        return;
    }
    let Some(rec) = v.analysis.runbooks.first() else {
        return;
    };
    let matched = app
        .derived
        .action_of(snap, &a.fingerprint)
        .map(|x| x.runbook.clone())
        .or_else(|| snap.suggestions.first().map(|s| s.runbook.clone()));
    if matched.as_deref() == Some(rec.runbook.as_str()) {
        return;
    }
    if snap.focus.as_deref() != Some(a.fingerprint.as_str()) {
        lines.push(Line::styled(
            format!(
                "  {} is recommended; checking why it is not proposed…",
                rec.runbook
            ),
            t.muted(),
        ));
        return;
    }
    let why = match snap.suggestions.iter().find(|s| s.runbook == rec.runbook) {
        None => format!(
            "no rule of {} matches this alert (its `match` does not select {}), so the engine cannot propose it; `:run {} {}` asks for it by hand",
            rec.runbook,
            clean(&a.name),
            rec.runbook,
            clean(a.host().unwrap_or("HOST"))
        ),
        Some(s) => match (&s.params, &s.block) {
            (Err(e), _) => format!(
                "{}: a parameter does not validate: {}",
                rec.runbook,
                clean(e)
            ),
            (Ok(_), Some(b)) => format!(
                "{}: a guard would block it: {}: {}",
                rec.runbook,
                b.reason.as_str(),
                clean(&b.detail)
            ),
            (Ok(_), None) => format!(
                "{} matches (score {}) but ranks below {}; `:propose` proposes the best match again",
                rec.runbook,
                s.score,
                matched.as_deref().unwrap_or("another runbook")
            ),
        },
    };
    lines.push(Line::styled("Why not the recommended runbook?", t.title()));
    lines.push(Line::styled(
        format!("  {why}"),
        t.severity(Severity::Warning),
    ));
}
