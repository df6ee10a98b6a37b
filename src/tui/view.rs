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
use crate::tui::keymap::fmt_seq;
use crate::tui::panes::{self, plural};

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
    // A theme that sets its background (light) paints the whole screen.
    let bg = app.theme.background();
    if bg != Style::default() {
        f.render_widget(Block::default().style(bg), area);
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
            let heights: Vec<Constraint> =
                panes::DASHBOARD.iter().map(|(h, _)| share(*h)).collect();
            let rows = Layout::vertical(heights).split(body);
            for ((_, row), area) in panes::DASHBOARD.iter().zip(rows.iter()) {
                let widths: Vec<Constraint> = row.iter().map(|(_, w)| share(*w)).collect();
                let cells = Layout::horizontal(widths).split(*area);
                for ((p, _), r) in row.iter().zip(cells.iter()) {
                    panes::draw_pane(f, app, *p, *r);
                }
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

/// A share of a layout in percent; 0 is what is left.
fn share(percent: u16) -> Constraint {
    if percent == 0 {
        Constraint::Fill(1)
    } else {
        Constraint::Percentage(percent)
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
    if let Some(active) = &app.snap.standby {
        // A standby shows the active hub's work and acts on nothing.
        spans.push(Span::raw(" "));
        spans.push(Span::styled(
            format!(" STANDBY: active is {active} "),
            t.style("mode.frozen_banner"),
        ));
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
    spans.push(Span::styled(
        format!("{} awaiting approval", human(pending)),
        pstyle,
    ));
    if !app.snap.breakers.is_empty() {
        spans.push(Span::styled(" │ ", bar));
        spans.push(Span::styled(
            format!("{} open", plural(app.snap.breakers.len(), "breaker")),
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
            format!(
                "{}: see ?",
                plural(app.opts.problems.len(), "config problem")
            ),
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
    let mut spans = Vec::new();
    if !app.pending_keys().is_empty() {
        spans.push(Span::styled(
            format!(" {} … ", fmt_seq(app.pending_keys())),
            t.key_hint(),
        ));
    }
    let mut used = spans.iter().map(|s| s.width()).sum::<usize>();
    let room = usize::from(area.width);
    for (k, name) in
        crate::tui::commands::hints(&app.keymap, app.focus, !app.snap.breakers.is_empty())
    {
        let w = k.chars().count() + name.chars().count() + 2;
        if used + w > room {
            break;
        }
        used += w;
        spans.push(Span::styled(format!(" {k}"), t.key_hint()));
        spans.push(Span::styled(format!(" {name}"), t.muted()));
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
        "Keys and : commands (from the live keymap and the command registry; dangerous ones confirm with Cancel focused)",
        theme.title(),
    )];
    let mut last = String::new();
    for row in crate::tui::commands::help_rows(&app.keymap, app.opts.read_only) {
        if row.scope != last {
            lines.push(Line::styled(format!("[{}]", row.scope), theme.title()));
            last = row.scope.clone();
        }
        lines.push(Line::from(vec![
            Span::styled(format!("  {:<16}", row.keys), theme.key_hint()),
            Span::styled(format!("{:<34}", row.palette), theme.text()),
            Span::styled(row.description, theme.muted()),
        ]));
    }
    if app.opts.read_only {
        lines.push(Line::styled(
            "  read-only: every dangerous command is off (and not listed)",
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
    let app_now = app.now();
    // A dry-run record's plan, step by step, when the action is known.
    let plan: Option<Vec<String>> = match &app.popup {
        Some(Popup::Record { record, .. }) => record.action_id.as_ref().and_then(|id| {
            app.snap
                .actions
                .iter()
                .find(|a| a.id.to_string() == *id)
                .map(|a| {
                    a.plan
                        .iter()
                        .map(|s| {
                            let mut line = s.display();
                            if s.read_only {
                                line.insert_str(0, "[read-only] ");
                            }
                            line
                        })
                        .collect()
                })
        }),
        _ => None,
    };
    let counts = match &app.popup {
        Some(Popup::Filter { pane, .. }) => app.filter_count(*pane),
        _ => (None, 0),
    };
    let Some(popup) = app.popup.as_mut() else {
        return;
    };
    match popup {
        Popup::Help { scroll } => {
            let r = centered(area, 96, area.height.saturating_sub(2).max(3));
            clear(f, r, &theme);
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
            let extra = if c.reason.is_some() { 3 } else { 0 };
            let picker_rows = if c.durations.is_some() { 1 } else { 0 };
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
                .saturating_add(4 + extra + picker_rows)
                .min(area.height);
            let r = centered(area, w, h);
            clear(f, r, &theme);
            let block = Block::bordered()
                .title(format!(" {} ", c.title))
                .title_style(theme.title())
                .border_style(theme.border(true));
            let inner = block.inner(r);
            f.render_widget(block, r);
            let [body, pinned, picker, reason, err, buttons] = Layout::vertical([
                Constraint::Fill(1),
                Constraint::Length(pinned_rows),
                Constraint::Length(picker_rows),
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
                            "… {} more below, not shown: enlarge the terminal to read them all",
                            plural(usize::from(body_rows - b.height), "row")
                        ),
                        theme.style("approval.failed"),
                    )),
                    more,
                );
            }
            f.render_widget(body_text, body_area);
            f.render_widget(pinned_text, pinned);
            if let Some(d) = c.durations.as_mut() {
                let mut sp = vec![Span::styled("For: ", theme.text())];
                for (i, o) in crate::tui::dialogs::SILENCE_FOR.iter().enumerate() {
                    let chosen = i == d.choice;
                    let style = if chosen && d.focused {
                        theme.selection().add_modifier(Modifier::BOLD)
                    } else if chosen {
                        theme.title()
                    } else {
                        theme.muted()
                    };
                    let label = if *o == "custom" {
                        let typed = d.custom.lines().join("");
                        if typed.is_empty() {
                            "custom: type it".to_string()
                        } else {
                            format!("custom: {typed}")
                        }
                    } else {
                        o.to_string()
                    };
                    sp.push(Span::styled(
                        if chosen {
                            format!("[{label}]")
                        } else {
                            format!(" {label} ")
                        },
                        style,
                    ));
                    sp.push(Span::raw(" "));
                }
                sp.push(Span::styled(
                    if d.focused {
                        "←/→ choose, type a custom one"
                    } else {
                        "tab: change"
                    },
                    theme.muted(),
                ));
                f.render_widget(Paragraph::new(Line::from(sp)), picker);
            }
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
            let hint = if c.durations.is_some() {
                "  (enter: silence with this comment, esc: cancel)"
            } else if c.reason.is_some() {
                "  (type the reason, enter: reject with it, esc: cancel)"
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
            clear(f, r, &theme);
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
        Popup::Record { record, scroll } => {
            let lines: Vec<Line> =
                crate::tui::audit::record_lines(record, app_now, plan.as_deref())
                    .into_iter()
                    .map(|l| Line::styled(l, theme.text()))
                    .collect();
            let r = centered(area, 110, area.height.saturating_sub(2).max(3));
            clear(f, r, &theme);
            let block = Block::bordered()
                .title(format!(
                    " Record {} · {} · j/k scroll, y copies it as JSON, any other key closes ",
                    record.seq,
                    record.kind.as_str()
                ))
                .border_style(theme.border(true));
            f.render_widget(
                Paragraph::new(lines)
                    .block(block)
                    .wrap(Wrap { trim: false })
                    .scroll((*scroll, 0)),
                r,
            );
        }
        Popup::Filter {
            input, pane, error, ..
        } => {
            let h = 4.min(area.height);
            let r = Rect {
                x: area.x,
                y: area.bottom().saturating_sub(h),
                width: area.width,
                height: h,
            };
            clear(f, r, &theme);
            let block = Block::bordered()
                .title(format!(" / filter {} ", pane.title()))
                .border_style(theme.border(true));
            let inner = block.inner(r);
            f.render_widget(block, r);
            let [l1, l2] =
                Layout::vertical([Constraint::Length(1), Constraint::Length(1)]).areas(inner);
            input.set_style(theme.text());
            f.render_widget(&*input, l1);
            let msg = error.clone().unwrap_or_else(|| {
                let (n, of) = counts;
                let n = n.map_or_else(|| "counting…".to_string(), panes::human_count);
                format!(
                    "{n} of {} match · applied as you type · enter: keep · esc: put back · empty: clear",
                    panes::human_count(of)
                )
            });
            let style = if error.is_some() {
                theme.style("approval.failed")
            } else {
                theme.muted()
            };
            f.render_widget(Paragraph::new(Line::styled(msg, style)), l2);
        }
    }
}

fn human(n: usize) -> String {
    panes::human_count(n as u64)
}

/// Clears a popup's area to the theme's background.
fn clear(f: &mut Frame, r: Rect, theme: &crate::tui::theme::Theme) {
    f.render_widget(Clear, r);
    f.render_widget(Block::default().style(theme.background()), r);
}
