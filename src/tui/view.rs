//! Drawing a frame: the layout for the terminal's size, the status bar,
//! the hint bar and the popups. Panes are in `panes`. Reads the `App`;
//! changes nothing but the rows-per-page it measures.

use ratatui::Frame;
use ratatui::layout::{Constraint, Flex, Layout, Rect};
use ratatui::style::{Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Clear, Paragraph, Wrap};

use crate::hub::HealthState;
use crate::tui::app::{App, Level, Pane, Popup};
use crate::tui::keymap::{UiAction, fmt_seq};
use crate::tui::panes;

/// How the body is arranged for a terminal size.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LayoutMode {
    /// 120×35 and up: every pane at once.
    Dashboard,
    /// 80×24 and up: three panes stacked.
    Stacked,
    /// Smaller: one pane with tabs.
    Tabs,
}

pub fn layout_mode(area: Rect) -> LayoutMode {
    if area.width >= 120 && area.height >= 35 {
        LayoutMode::Dashboard
    } else if area.width >= 80 && area.height >= 24 {
        LayoutMode::Stacked
    } else {
        LayoutMode::Tabs
    }
}

/// Draws the whole console.
pub fn draw(f: &mut Frame, app: &mut App) {
    let area = f.area();
    app.pane_areas.clear();
    if area.width == 0 || area.height == 0 {
        return;
    }
    let [status, body, hints] = if area.height >= 3 {
        Layout::vertical([
            Constraint::Length(1),
            Constraint::Min(1),
            Constraint::Length(1),
        ])
        .areas(area)
    } else {
        [area, Rect::default(), Rect::default()]
    };
    status_bar(f, app, status);
    if body.height > 0 {
        draw_body(f, app, body);
    }
    if hints.height > 0 {
        hint_bar(f, app, hints);
    }
    draw_popup(f, app, area);
}

fn draw_body(f: &mut Frame, app: &mut App, body: Rect) {
    let mode = layout_mode(f.area());
    if app.zoom {
        panes::draw_pane(f, app, app.focus, body);
        return;
    }
    match mode {
        LayoutMode::Dashboard => {
            let [top, mid, bottom] = Layout::vertical([
                Constraint::Percentage(42),
                Constraint::Percentage(25),
                Constraint::Fill(1),
            ])
            .areas(body);
            let [al, de] =
                Layout::horizontal([Constraint::Percentage(55), Constraint::Fill(1)]).areas(top);
            let [ap, su] =
                Layout::horizontal([Constraint::Percentage(55), Constraint::Fill(1)]).areas(mid);
            let [au, ho] =
                Layout::horizontal([Constraint::Percentage(60), Constraint::Fill(1)]).areas(bottom);
            for (p, r) in [
                (Pane::Alerts, al),
                (Pane::Detail, de),
                (Pane::Approvals, ap),
                (Pane::Suggestions, su),
                (Pane::Audit, au),
                (Pane::Hosts, ho),
            ] {
                panes::draw_pane(f, app, p, r);
            }
        }
        LayoutMode::Stacked => {
            let third = match app.focus {
                Pane::Alerts | Pane::Approvals => Pane::Audit,
                p => p,
            };
            let [a, b, c] = Layout::vertical([
                Constraint::Percentage(38),
                Constraint::Percentage(24),
                Constraint::Fill(1),
            ])
            .areas(body);
            panes::draw_pane(f, app, Pane::Alerts, a);
            panes::draw_pane(f, app, Pane::Approvals, b);
            panes::draw_pane(f, app, third, c);
        }
        LayoutMode::Tabs => {
            if body.height >= 2 {
                let [tabs, rest] =
                    Layout::vertical([Constraint::Length(1), Constraint::Fill(1)]).areas(body);
                tab_bar(f, app, tabs);
                panes::draw_pane(f, app, app.focus, rest);
            } else {
                tab_bar(f, app, body);
            }
        }
    }
}

fn tab_bar(f: &mut Frame, app: &App, area: Rect) {
    let mut spans = Vec::new();
    for (i, p) in Pane::ALL.iter().enumerate() {
        let style = if *p == app.focus {
            app.theme.selection()
        } else {
            app.theme.muted()
        };
        let label = if area.width < 60 {
            format!("{}{}", i + 1, &p.title()[..2.min(p.title().len())])
        } else {
            format!("{} {}", i + 1, p.title())
        };
        spans.push(Span::styled(label, style));
        spans.push(Span::raw(" "));
    }
    f.render_widget(Paragraph::new(Line::from(spans)), area);
}

/// The mode banner's text and style: LIVE or DRY-RUN, always.
pub fn mode_banner(app: &App) -> Span<'static> {
    if app.snap.modes.dry_run {
        Span::styled(" DRY-RUN ", app.theme.style("mode.dry_run_banner"))
    } else {
        Span::styled(" LIVE ", app.theme.style("mode.live_banner"))
    }
}

fn status_bar(f: &mut Frame, app: &App, area: Rect) {
    let t = &app.theme;
    let bar = t.status_bar();
    let mut spans = vec![mode_banner(app)];
    if let Some(l) = app.snap.link.as_ref().filter(|l| !l.up) {
        spans.push(Span::raw(" "));
        spans.push(Span::styled(
            format!(
                " HUB LOST: {} (reconnecting) ",
                l.problem.as_deref().unwrap_or("no connection")
            ),
            t.severity(crate::model::Severity::Critical)
                .add_modifier(Modifier::BOLD | Modifier::REVERSED),
        ));
    }
    if app.snap.modes.frozen {
        spans.push(Span::raw(" "));
        spans.push(Span::styled(" FROZEN ", t.style("mode.frozen_banner")));
    }
    if app.snap.demo {
        spans.push(Span::styled(" DEMO", bar.add_modifier(Modifier::BOLD)));
    }
    if app.opts.read_only {
        spans.push(Span::styled(" READ-ONLY", bar.add_modifier(Modifier::BOLD)));
    }
    let pending = app.pending();
    spans.push(Span::styled(" │ ", bar));
    let pstyle = if pending > 0 {
        t.style("approval.pending")
    } else {
        bar
    };
    spans.push(Span::styled(format!("{pending} pending"), pstyle));
    if !app.snap.breakers.is_empty() {
        spans.push(Span::styled(" │ ", bar));
        spans.push(Span::styled(
            format!("{} breaker(s) open", app.snap.breakers.len()),
            t.style("approval.failed"),
        ));
    }
    spans.push(Span::styled(" │ ", bar));
    if app.snap.demo {
        spans.push(Span::styled("demo ok", bar));
    }
    for s in &app.snap.sources {
        let (sym, style) = match s.state {
            HealthState::Ok => ("ok", bar),
            HealthState::Unknown => ("?", t.muted()),
            HealthState::Degraded => ("degraded", t.severity(crate::model::Severity::Warning)),
            HealthState::Down => ("DOWN", t.severity(crate::model::Severity::Critical)),
        };
        spans.push(Span::styled(format!(" {} {sym}", s.name), style));
    }
    if let Some(e) = &app.snap.store_error {
        spans.push(Span::styled(" │ ", bar));
        spans.push(Span::styled(
            format!("STORE ERROR: {e}"),
            t.severity(crate::model::Severity::Critical),
        ));
    }
    if !app.opts.problems.is_empty() {
        spans.push(Span::styled(" │ ", bar));
        spans.push(Span::styled(
            format!("{} config problem(s): see ?", app.opts.problems.len()),
            t.severity(crate::model::Severity::Warning),
        ));
    }
    spans.push(Span::styled(" │ ", bar));
    match app.snap.link.as_ref() {
        Some(l) => {
            let me =
                l.me.as_ref()
                    .map(|m| format!("{} ({})", m.name, m.role))
                    .unwrap_or_else(|| "?".into());
            let to = if l.owns_hub {
                "own hub".to_string()
            } else {
                format!("@ {}", l.to)
            };
            spans.push(Span::styled(format!("{me} {to}"), bar));
            let others = app.others_attached();
            if !others.is_empty() {
                spans.push(Span::styled(
                    format!(" │ +{} {}", others.len(), others.join(", ")),
                    bar,
                ));
            }
        }
        None => spans.push(Span::styled(format!("op {}", app.snap.operator), bar)),
    }
    spans.push(Span::styled(
        format!(" │ {}", app.now().format("%H:%M:%S UTC")),
        bar,
    ));
    f.render_widget(Paragraph::new(Line::from(spans)).style(bar), area);
}

fn hint_bar(f: &mut Frame, app: &App, area: Rect) {
    let t = &app.theme;
    if let Some(fl) = app.flashes.back() {
        let style = match fl.level {
            Level::Good => t.style("approval.approved").add_modifier(Modifier::BOLD),
            Level::Bad => t.style("approval.failed"),
            Level::Info => t.style("ui.title"),
        };
        f.render_widget(
            Paragraph::new(Line::from(vec![Span::styled(
                format!(" {} ", fl.text),
                style,
            )])),
            area,
        );
        return;
    }
    let scope = app.focus.scope();
    let mut spans = Vec::new();
    if !app.pending_keys().is_empty() {
        spans.push(Span::styled(
            format!(" {} … ", fmt_seq(app.pending_keys())),
            t.key_hint(),
        ));
    }
    let wanted: &[UiAction] = match app.focus {
        Pane::Approvals => &[UiAction::Approve, UiAction::Reject, UiAction::Open],
        Pane::Alerts => &[UiAction::Open, UiAction::Approve, UiAction::Silence],
        Pane::Audit => &[UiAction::Filter],
        _ => &[],
    };
    let common = [
        UiAction::Filter,
        UiAction::Palette,
        UiAction::FocusNext,
        UiAction::Zoom,
        UiAction::ToggleDryRun,
        UiAction::Help,
        UiAction::Quit,
    ];
    let mut seen = Vec::new();
    for a in wanted.iter().chain(common.iter()) {
        if seen.contains(a) {
            continue;
        }
        seen.push(*a);
        let keys = app.keymap.keys_text(scope, *a);
        let Some(k) = keys.first() else {
            continue;
        };
        spans.push(Span::styled(format!(" {k}"), t.key_hint()));
        spans.push(Span::styled(
            format!(
                " {}",
                crate::tui::keymap::action_info(*a).name.replace('_', "-")
            ),
            t.muted(),
        ));
    }
    f.render_widget(Paragraph::new(Line::from(spans)), area);
}

/// A rectangle of at most `w`×`h` centred in `area`.
pub fn centered(area: Rect, w: u16, h: u16) -> Rect {
    let w = w.min(area.width);
    let h = h.min(area.height);
    let [r] = Layout::horizontal([Constraint::Length(w)])
        .flex(Flex::Center)
        .areas(area);
    let [r] = Layout::vertical([Constraint::Length(h)])
        .flex(Flex::Center)
        .areas(r);
    r
}

fn help_lines(app: &App) -> Vec<Line<'static>> {
    let theme = &app.theme;
    let mut lines = vec![Line::styled(
        "Keys (from the live keymap; dangerous ones confirm with Cancel focused)",
        theme.title(),
    )];
    let mut last = String::new();
    for (scope, keys, desc) in crate::tui::app::help_rows(&app.keymap) {
        if scope != last {
            lines.push(Line::styled(format!("[{scope}]"), theme.title()));
            last = scope;
        }
        lines.push(Line::from(vec![
            Span::styled(format!("  {keys:<18}"), theme.key_hint()),
            Span::styled(desc, theme.text()),
        ]));
    }
    lines.push(Line::raw(""));
    lines.push(Line::styled("Palette (:)", theme.title()));
    for c in [
        "approve [ID]  ·  reject [ID] [reason]  ·  dry-run on|off  ·  freeze  ·  unfreeze",
        "reset-breaker [RUNBOOK TARGET]  ·  theme NAME  ·  export audit PATH",
        "silence DURATION [comment]  ·  help  ·  quit",
    ] {
        lines.push(Line::styled(format!("  {c}"), theme.text()));
    }
    if app.opts.read_only {
        lines.push(Line::styled(
            "  read-only: approve, reject, dry-run off, freeze, reset-breaker and silence are off",
            theme.muted(),
        ));
    }
    lines.push(Line::raw(""));
    lines.push(Line::styled(
        "Audit filter (/ in Audit): host=NAME runbook=NAME kind=KIND actor=NAME",
        theme.text(),
    ));
    lines.push(Line::styled(
        format!("Log file: {}", app.opts.log_path.display()),
        theme.muted(),
    ));
    if let Some(d) = &app.opts.config_dir {
        lines.push(Line::styled(
            format!(
                "Config dir: {} (themes/ and keymaps/ there override the bundled ones)",
                d.display()
            ),
            theme.muted(),
        ));
    }
    lines.push(Line::styled(
        format!("Theme: {}  ·  keymap: {}", theme.name, app.keymap.name),
        theme.muted(),
    ));
    if !app.opts.problems.is_empty() {
        lines.push(Line::raw(""));
        lines.push(Line::styled(
            "Problems (defaults used instead)",
            theme.severity(crate::model::Severity::Warning),
        ));
        for p in &app.opts.problems {
            lines.push(Line::styled(format!("  {p}"), theme.text()));
        }
    }
    lines
}

fn draw_popup(f: &mut Frame, app: &mut App, area: Rect) {
    if app.popup.is_none() {
        return;
    }
    let help = matches!(app.popup, Some(Popup::Help { .. })).then(|| help_lines(app));
    let theme = app.theme.clone();
    let Some(popup) = app.popup.as_mut() else {
        return;
    };
    match popup {
        Popup::Help { scroll } => {
            let r = centered(area, 96, area.height.saturating_sub(2).max(3));
            f.render_widget(Clear, r);
            let block = Block::bordered()
                .title(" Help: any other key closes ")
                .border_style(theme.border(true));
            f.render_widget(
                Paragraph::new(help.unwrap_or_default())
                    .block(block)
                    .wrap(Wrap { trim: false })
                    .scroll((*scroll, 0)),
                r,
            );
        }
        Popup::Confirm(c) => {
            let extra = if c.reason.is_some() { 4 } else { 0 };
            let w = c
                .lines
                .iter()
                .map(|l| l.chars().count() as u16 + 4)
                .max()
                .unwrap_or(40)
                .clamp(40, 110)
                .min(area.width);
            let inner_w = w.saturating_sub(2);
            // The mode line (LIVE or DRY-RUN) and what follows it are pinned
            // above the buttons: long commands may be cut, the mode never.
            let split = c
                .lines
                .iter()
                .position(|l| l.starts_with("LIVE") || l.starts_with("DRY-RUN"))
                .unwrap_or(c.lines.len());
            let (body_lines, pinned_lines) = c.lines.split_at(split);
            let styled = |l: &String| {
                if l.starts_with("LIVE") {
                    Line::styled(l.clone(), theme.style("mode.live_banner"))
                } else if l.starts_with("DRY-RUN") {
                    Line::styled(l.clone(), theme.style("mode.dry_run_banner"))
                } else {
                    Line::styled(l.clone(), theme.text())
                }
            };
            let body_text = Paragraph::new(body_lines.iter().map(styled).collect::<Vec<_>>())
                .wrap(Wrap { trim: false });
            let pinned_text = Paragraph::new(pinned_lines.iter().map(styled).collect::<Vec<_>>())
                .wrap(Wrap { trim: false });
            let rows = |p: &Paragraph| u16::try_from(p.line_count(inner_w)).unwrap_or(u16::MAX);
            let (body_rows, pinned_rows) = (rows(&body_text), rows(&pinned_text));
            let h = body_rows
                .saturating_add(pinned_rows)
                .saturating_add(4 + extra)
                .min(area.height);
            let r = centered(area, w, h);
            f.render_widget(Clear, r);
            let block = Block::bordered()
                .title(format!(" {} ", c.title))
                .title_style(theme.title())
                .border_style(theme.border(true));
            let inner = block.inner(r);
            f.render_widget(block, r);
            let [body, pinned, reason, err, buttons] = Layout::vertical([
                Constraint::Fill(1),
                Constraint::Length(pinned_rows),
                Constraint::Length(extra),
                Constraint::Length(1),
                Constraint::Length(1),
            ])
            .areas(inner);
            let mut body_area = body;
            if body_rows > body.height && body.height > 0 {
                // Say that something is cut rather than cut it silently.
                let [b, more] =
                    Layout::vertical([Constraint::Fill(1), Constraint::Length(1)]).areas(body);
                body_area = b;
                f.render_widget(
                    Paragraph::new(Line::styled(
                        format!(
                            "… {} more row(s) not shown: enlarge the terminal to read them all",
                            body_rows - b.height
                        ),
                        theme.style("approval.failed"),
                    )),
                    more,
                );
            }
            f.render_widget(body_text, body_area);
            f.render_widget(pinned_text, pinned);
            if let Some(t) = c.reason.as_ref() {
                f.render_widget(t, reason);
            }
            if let Some(e) = &c.error {
                f.render_widget(
                    Paragraph::new(Line::styled(e.clone(), theme.style("approval.failed"))),
                    err,
                );
            }
            let focused = theme.selection().add_modifier(Modifier::BOLD);
            let plain = theme.text();
            let (cs, os) = if c.ok_focused {
                (plain, focused)
            } else {
                (focused, plain)
            };
            let hint = if c.reason.is_some() {
                "  (tab: switch, enter: press, esc: cancel)"
            } else {
                "  (←/→ or tab: switch, enter: press, esc: cancel)"
            };
            f.render_widget(
                Paragraph::new(Line::from(vec![
                    Span::styled("[ Cancel ]", cs),
                    Span::raw("  "),
                    Span::styled(format!("[ {} ]", c.ok_label), os),
                    Span::styled(hint, theme.muted()),
                ])),
                buttons,
            );
        }
        Popup::Palette { input, error } => {
            let h = 4.min(area.height);
            let r = Rect {
                x: area.x,
                y: area.bottom().saturating_sub(h),
                width: area.width,
                height: h,
            };
            f.render_widget(Clear, r);
            let block = Block::bordered()
                .title(" : command ")
                .border_style(theme.border(true));
            let inner = block.inner(r);
            f.render_widget(block, r);
            let [l1, l2] =
                Layout::vertical([Constraint::Length(1), Constraint::Length(1)]).areas(inner);
            input.set_style(theme.text());
            f.render_widget(&*input, l1);
            if let Some(e) = error {
                f.render_widget(
                    Paragraph::new(Line::styled(e.clone(), theme.style("approval.failed"))),
                    l2,
                );
            }
        }
        Popup::Filter { input, pane, error } => {
            let h = 4.min(area.height);
            let r = Rect {
                x: area.x,
                y: area.bottom().saturating_sub(h),
                width: area.width,
                height: h,
            };
            f.render_widget(Clear, r);
            let block = Block::bordered()
                .title(format!(" / filter {} ", pane.title()))
                .border_style(theme.border(true));
            let inner = block.inner(r);
            f.render_widget(block, r);
            let [l1, l2] =
                Layout::vertical([Constraint::Length(1), Constraint::Length(1)]).areas(inner);
            input.set_style(theme.text());
            f.render_widget(&*input, l1);
            let msg = error
                .clone()
                .unwrap_or_else(|| "enter: apply · esc: close · empty: clear".into());
            let style = if error.is_some() {
                theme.style("approval.failed")
            } else {
                theme.muted()
            };
            f.render_widget(Paragraph::new(Line::styled(msg, style)), l2);
        }
    }
}

/// A style with only the foreground of `s` (for text on a coloured bar).
pub fn fg_only(s: Style) -> Style {
    Style { bg: None, ..s }
}
