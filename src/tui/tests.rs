//! The console's tests: state (keys in, intents out), buffers with style
//! checks where colour carries safety, and whole-screen snapshots at three
//! sizes in every bundled theme.

use std::fmt::Write as _;
use std::sync::Arc;
use std::time::Instant;

use ratatui::Terminal;
use ratatui::backend::TestBackend;
use ratatui::buffer::Buffer;
use ratatui::crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use ratatui::style::Style;

use crate::engine::Event;
use crate::hub::Snapshot;
use crate::model::{ActionState, Severity};
use crate::tui::app::{App, AppOptions, AuditPage, AuditQuery, Intent, Pane, Popup, Seek};
use crate::tui::fixture;
use crate::tui::keymap::Keymap;
use crate::tui::theme::{self, Theme};
use crate::tui::view;

fn snap() -> Snapshot {
    let inc = fixture::incident(0);
    let s = fixture::snapshot(&inc, None);
    let focus = fixture::first_alert(&s);
    let mut s = fixture::snapshot(&inc, focus);
    Arc::make_mut(&mut s.recent).clear();
    s
}

fn app_with(s: Snapshot, read_only: bool) -> App {
    let mut app = App::new(
        Arc::new(s),
        Theme::fallback(),
        Keymap::fallback(),
        AppOptions {
            read_only,
            log_path: "/var/log/vigil/vigil.log".into(),
            config_dir: None,
            theme_names: theme::BUNDLED.iter().map(|(n, _)| n.to_string()).collect(),
            problems: Vec::new(),
            history_path: None,
        },
    );
    // Feed the audit pane the fixture's records, as the reader would.
    let inc = fixture::incident(0);
    let mut recs = inc.records.clone();
    recs.reverse();
    let gen_ = app.audit.generation;
    app.apply_audit_page(AuditPage {
        generation: gen_,
        before: None,
        records: recs,
        total: Some(inc.records.len() as u64),
        error: None,
        ..AuditPage::default()
    });
    app.outbox.clear();
    app
}

fn app() -> App {
    app_with(snap(), false)
}

fn key(app: &mut App, k: KeyCode) {
    app.on_key(&KeyEvent::new(k, KeyModifiers::NONE), Instant::now());
}

fn chr(app: &mut App, c: char) {
    let m = if c.is_ascii_uppercase() {
        KeyModifiers::SHIFT
    } else {
        KeyModifiers::NONE
    };
    app.on_key(&KeyEvent::new(KeyCode::Char(c), m), Instant::now());
}

fn typed(app: &mut App, s: &str) {
    for c in s.chars() {
        chr(app, c);
    }
}

fn hub_events(app: &mut App) -> Vec<Event> {
    std::mem::take(&mut app.outbox)
        .into_iter()
        .filter_map(|i| match i {
            Intent::Hub(e) => Some(e),
            _ => None,
        })
        .collect()
}

/// Focuses Audit, opens its filter prompt and types `text` (not entered).
fn audit_filter_typed(app: &mut App, text: &str) {
    chr(app, '5');
    chr(app, '/');
    typed(app, text);
}

/// The newest audit query the console asked for.
fn last_audit_query(app: &App) -> AuditQuery {
    app.outbox
        .iter()
        .rev()
        .find_map(|i| match i {
            Intent::Audit(q) => Some(q.clone()),
            _ => None,
        })
        .expect("an audit query")
}

fn render(app: &mut App, w: u16, h: u16) -> Buffer {
    let mut t = Terminal::new(TestBackend::new(w, h)).expect("terminal");
    t.draw(|f| view::draw(f, app)).expect("draw");
    t.backend().buffer().clone()
}

fn text(b: &Buffer) -> String {
    let mut s = String::new();
    for y in 0..b.area.height {
        for x in 0..b.area.width {
            s.push_str(b[(x, y)].symbol());
        }
        s.push('\n');
    }
    s
}

// ----- state --------------------------------------------------------------

#[test]
fn the_fixture_has_an_approval_waiting_and_the_queue_shows_it_first() {
    let a = app();
    assert_eq!(a.pending(), 1);
    let first = a.selected_action().expect("an action");
    assert_eq!(first.state, ActionState::AwaitingApproval);
    assert_eq!(first.runbook, "service_restart");
}

#[test]
fn approve_confirms_with_cancel_focused_and_enter_there_does_nothing() {
    let mut a = app();
    chr(&mut a, '4');
    assert_eq!(a.focus, Pane::Approvals);
    chr(&mut a, 'a');
    let Some(Popup::Confirm(c)) = &a.popup else {
        panic!("no confirmation");
    };
    assert!(!c.ok_focused, "Cancel must be focused");
    let all = c.lines.join("\n");
    assert!(all.contains("Target:  api-01"), "{all}");
    assert!(all.contains("service_restart"), "{all}");
    assert!(all.contains("systemctl"), "the exact command: {all}");
    assert!(all.contains("LIVE"), "{all}");
    key(&mut a, KeyCode::Enter);
    assert!(a.popup.is_none());
    assert!(hub_events(&mut a).is_empty(), "Cancel sent something");
}

#[test]
fn the_confirmation_keeps_live_and_its_buttons_in_view_when_commands_are_long() {
    let mut s = snap();
    let long = "x".repeat(400);
    for act in Arc::make_mut(&mut s.actions) {
        for step in &mut act.plan {
            step.argv.push(long.clone());
        }
    }
    let mut a = app_with(s, false);
    chr(&mut a, '4');
    chr(&mut a, 'a');
    assert!(matches!(a.popup, Some(Popup::Confirm(_))));
    for (w, h) in [(200, 50), (120, 35), (80, 24), (60, 16)] {
        let t = text(&render(&mut a, w, h));
        assert!(t.contains("LIVE: these commands"), "{w}x{h}:\n{t}");
        assert!(t.contains("[ Cancel ]"), "{w}x{h}:\n{t}");
        // All of it fits down to 120x35; smaller, the cut is said.
        let cut = t.contains("more below, not shown");
        assert_eq!(cut, h < 35, "{w}x{h}:\n{t}");
        // Both read-only steps show in the dialog (the Runbooks pane
        // behind it may show more).
        assert_eq!(t.matches("[read-only]").count() >= 2, !cut, "{w}x{h}:\n{t}");
    }
}

#[test]
fn approve_after_moving_to_the_button_sends_one_approval() {
    let mut a = app();
    chr(&mut a, '4');
    chr(&mut a, 'a');
    key(&mut a, KeyCode::Tab);
    key(&mut a, KeyCode::Enter);
    let evs = hub_events(&mut a);
    assert!(
        matches!(evs.as_slice(), [Event::Approve { actor, .. }] if actor == "alice"),
        "{evs:?}"
    );
}

#[test]
fn the_confirmation_says_dry_run_when_dry_run_is_on() {
    let mut s = snap();
    s.modes.dry_run = true;
    let mut a = app_with(s, false);
    chr(&mut a, '4');
    chr(&mut a, 'a');
    let Some(Popup::Confirm(c)) = &a.popup else {
        panic!("no confirmation");
    };
    assert!(
        c.lines.iter().any(|l| l.starts_with("DRY-RUN")),
        "{:?}",
        c.lines
    );
}

#[test]
fn reject_needs_a_reason_and_sends_it() {
    let mut a = app();
    chr(&mut a, '4');
    chr(&mut a, 'r');
    key(&mut a, KeyCode::Tab);
    key(&mut a, KeyCode::Enter);
    let Some(Popup::Confirm(c)) = &a.popup else {
        panic!("the popup closed without a reason");
    };
    assert_eq!(c.error.as_deref(), Some("a reason is required"));
    typed(&mut a, "deploy in progress");
    key(&mut a, KeyCode::Enter);
    let evs = hub_events(&mut a);
    assert!(
        matches!(evs.as_slice(), [Event::Reject { reason, .. }] if reason == "deploy in progress"),
        "{evs:?}"
    );
}

#[test]
fn leaving_dry_run_confirms_but_entering_it_does_not() {
    let mut s = snap();
    s.modes.dry_run = true;
    let mut a = app_with(s, false);
    chr(&mut a, 'D');
    assert!(matches!(a.popup, Some(Popup::Confirm(_))));
    key(&mut a, KeyCode::Esc);
    assert!(hub_events(&mut a).is_empty());

    let mut a = app();
    chr(&mut a, 'D');
    assert!(a.popup.is_none());
    let evs = hub_events(&mut a);
    assert!(
        matches!(evs.as_slice(), [Event::SetDryRun { on: true, .. }]),
        "{evs:?}"
    );
}

#[test]
fn read_only_removes_every_dangerous_action() {
    let mut a = app_with(snap(), true);
    chr(&mut a, '4');
    chr(&mut a, 'a');
    chr(&mut a, 'r');
    chr(&mut a, 'D');
    chr(&mut a, 'F');
    assert!(a.popup.is_none());
    assert!(hub_events(&mut a).is_empty());
    for cmd in [
        "approve",
        "reject A000001 no",
        "dry-run off",
        "unfreeze",
        "freeze",
        "silence 1h",
    ] {
        let e = a.command(cmd, Instant::now()).unwrap_err();
        assert!(e.contains("read-only"), "{cmd}: {e}");
    }
    // Looking stays possible.
    assert!(a.command("theme light", Instant::now()).is_ok());
}

#[test]
fn the_palette_runs_commands_and_explains_bad_ones() {
    let mut a = app();
    chr(&mut a, ':');
    typed(&mut a, "frobnicate");
    key(&mut a, KeyCode::Enter);
    let Some(Popup::Palette { error: Some(e), .. }) = &a.popup else {
        panic!("no error shown");
    };
    assert!(
        e.contains("unknown command") && e.contains("dry-run on|off"),
        "{e}"
    );
    key(&mut a, KeyCode::Esc);
    assert!(
        a.command("theme nope", Instant::now())
            .unwrap_err()
            .contains("known: default")
    );
    a.command("export audit /tmp/x.jsonl", Instant::now())
        .unwrap();
    assert!(
        a.outbox
            .iter()
            .any(|i| matches!(i, Intent::ExportAudit(p) if p.ends_with("x.jsonl")))
    );
    a.command("approve A000001", Instant::now()).unwrap();
    assert!(matches!(a.popup, Some(Popup::Confirm(_))));
    assert!(a.command("approve bogus", Instant::now()).is_ok());
    assert!(
        a.flashes
            .back()
            .is_some_and(|f| f.text.contains("not an action id"))
    );
}

#[test]
fn the_audit_filter_becomes_a_store_query_and_bad_keys_are_explained() {
    let mut a = app();
    audit_filter_typed(&mut a, "host=web-03 kind=action_started");
    key(&mut a, KeyCode::Enter);
    assert!(a.popup.is_none());
    let q = last_audit_query(&a);
    assert_eq!(q.filter.target.as_deref(), Some("web-03"));
    assert_eq!(q.filter.kind.as_deref(), Some("action_started"));
    assert!(q.count);
    chr(&mut a, '/');
    typed(&mut a, " colour=red");
    key(&mut a, KeyCode::Enter);
    let Some(Popup::Filter { error: Some(e), .. }) = &a.popup else {
        panic!("no error");
    };
    assert!(e.contains("host=, runbook=, kind= or actor="), "{e}");
}

#[test]
fn ctrl_u_in_a_prompt_clears_back_to_the_start_of_the_line() {
    let mut a = app();
    audit_filter_typed(&mut a, "host=web-03 kind=action_started");
    a.on_key(
        &KeyEvent::new(KeyCode::Char('u'), KeyModifiers::CONTROL),
        Instant::now(),
    );
    typed(&mut a, "actor=alice");
    key(&mut a, KeyCode::Enter);
    assert!(a.popup.is_none());
    let q = last_audit_query(&a);
    assert_eq!(q.filter.actor.as_deref(), Some("alice"));
    assert_eq!(q.filter.target, None);
    assert_eq!(q.filter.kind, None);
}

#[test]
fn an_audit_page_from_an_old_filter_is_ignored() {
    let mut a = app();
    let rows = a.audit.rows.len();
    let old = a.audit.generation;
    a.apply_filter(Pane::Audit, "runbook=disk_cleanup").unwrap();
    a.apply_audit_page(AuditPage {
        generation: old,
        before: None,
        records: Vec::new(),
        total: Some(0),
        error: None,
        ..AuditPage::default()
    });
    assert!(a.audit.rows.is_empty() && rows > 0);
    assert_eq!(a.audit.total, None);
}

#[test]
fn alert_filter_keeps_matching_rows_and_the_selection() {
    let mut a = app();
    chr(&mut a, '/');
    typed(&mut a, "web-03");
    key(&mut a, KeyCode::Enter);
    assert_eq!(a.alert_rows.len(), 1);
    assert_eq!(
        a.selected_alert().map(|x| x.name.as_str()),
        Some("DiskSpaceLow")
    );
    key(&mut a, KeyCode::Esc);
    assert!(a.alert_rows.len() > 3);
    assert_eq!(
        a.selected_alert().map(|x| x.name.as_str()),
        Some("DiskSpaceLow")
    );
}

#[test]
fn navigation_keys_and_sequences_move_the_selection() {
    let mut a = app();
    chr(&mut a, 'j');
    chr(&mut a, 'j');
    assert_eq!(a.alert_sel, 2);
    chr(&mut a, 'g');
    assert_eq!(a.alert_sel, 2, "a prefix alone does nothing");
    chr(&mut a, 'g');
    assert_eq!(a.alert_sel, 0);
    chr(&mut a, 'G');
    assert_eq!(a.alert_sel, a.alert_rows.len() - 1);
    key(&mut a, KeyCode::Tab);
    assert_eq!(a.focus, Pane::Detail);
    chr(&mut a, 'z');
    assert!(a.zoom);
    chr(&mut a, 'q');
    assert!(a.quit);
}

#[test]
fn selecting_an_alert_asks_the_hub_for_its_suggestions() {
    let mut a = app();
    chr(&mut a, 'j');
    let focus: Vec<_> = a
        .outbox
        .iter()
        .filter_map(|i| match i {
            Intent::Focus(f) => Some(f.clone()),
            _ => None,
        })
        .collect();
    assert_eq!(focus.len(), 1);
    assert_eq!(
        focus[0].as_deref(),
        a.selected_alert().map(|x| x.fingerprint.as_str())
    );
}

#[test]
fn state_changes_in_new_snapshots_flash_and_flashes_expire() {
    let mut a = app();
    let inc = fixture::incident(0);
    let mut s = snap();
    let id = s
        .actions
        .iter()
        .position(|x| x.state == ActionState::AwaitingApproval)
        .unwrap();
    Arc::make_mut(&mut s.actions)[id].state = ActionState::Running;
    let now = Instant::now();
    a.set_snapshot(Arc::new(s), now);
    let f = a.flashes.back().expect("a flash");
    assert!(f.text.contains("executing"), "{}", f.text);
    assert_eq!(a.expire_flashes(now + crate::tui::app::FLASH_FOR * 2), None);
    assert!(a.flashes.is_empty());
    drop(inc);
}

#[test]
fn help_is_built_from_the_live_keymap() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("keymaps")).unwrap();
    std::fs::write(
        dir.path().join("keymaps/mine.toml"),
        "[meta]\nname = \"mine\"\nextends = \"default\"\n[global]\napprove = [\"ctrl-y\"]\n",
    )
    .unwrap();
    let mut errs = Vec::new();
    let km = crate::tui::keymap::load("mine", Some(dir.path()), &mut errs);
    assert!(errs.is_empty(), "{errs:?}");
    let rows = crate::tui::commands::help_rows(&km, false);
    assert!(
        rows.iter()
            .any(|r| r.keys == "ctrl-y" && r.description.starts_with("approve")),
        "{rows:?}"
    );
    assert!(
        !rows
            .iter()
            .any(|r| r.keys == "a" && r.description.starts_with("approve"))
    );
}

// ----- buffers and styles -------------------------------------------------

fn find(b: &Buffer, needle: &str) -> Option<(u16, u16)> {
    for y in 0..b.area.height {
        let line: String = (0..b.area.width)
            .map(|x| b[(x, y)].symbol().to_string())
            .collect();
        if let Some(pos) = line.find(needle) {
            let x = line[..pos].chars().count() as u16;
            return Some((x, y));
        }
    }
    None
}

fn style_at(b: &Buffer, x: u16, y: u16) -> Style {
    b[(x, y)].style()
}

#[test]
fn a_console_on_a_standby_says_so_and_names_the_active_hub() {
    let mut a = app();
    let b = render(&mut a, 160, 40);
    assert!(find(&b, "STANDBY").is_none(), "{}", text(&b));
    let mut s = snap();
    s.standby = Some("db1:4121 at 10.0.0.5:8080".into());
    let mut a = app_with(s, false);
    let b = render(&mut a, 160, 40);
    let (_, y) = find(&b, " STANDBY: active is db1:4121 at 10.0.0.5:8080 ")
        .unwrap_or_else(|| panic!("{}", text(&b)));
    assert_eq!(y, 0, "in the status bar");
}

#[test]
fn the_mode_banner_says_live_or_dry_run_in_its_own_style() {
    let t = Theme::fallback();
    let mut a = app();
    let b = render(&mut a, 120, 40);
    let (x, y) = find(&b, " LIVE ").expect("LIVE banner");
    assert_eq!((x, y), (0, 0));
    let live = t.style("mode.live_banner");
    assert_eq!(style_at(&b, 1, 0).fg, live.fg);
    assert_eq!(style_at(&b, 1, 0).bg, live.bg);

    let mut s = snap();
    s.modes.dry_run = true;
    s.modes.frozen = true;
    let mut a = app_with(s, false);
    let b = render(&mut a, 120, 40);
    assert_eq!(find(&b, " DRY-RUN "), Some((0, 0)));
    let dry = t.style("mode.dry_run_banner");
    assert_eq!(style_at(&b, 2, 0).bg, dry.bg);
    assert_ne!(dry.bg, live.bg);
    let (fx, _) = find(&b, " FROZEN ").expect("FROZEN banner");
    assert_eq!(style_at(&b, fx + 1, 0).bg, t.style("mode.frozen_banner").bg);
    assert!(find(&b, "1 awaiting approval").is_some());
    assert!(find(&b, "op alice").is_some());
    assert!(find(&b, "prometheus DOWN").is_some());
}

#[test]
fn severities_carry_a_word_and_their_colour() {
    let t = Theme::fallback();
    let mut a = app();
    let b = render(&mut a, 160, 48);
    for (word, sev) in [
        ("CRIT", Severity::Critical),
        ("HIGH", Severity::High),
        ("WARN", Severity::Warning),
        ("INFO", Severity::Info),
    ] {
        let (x, y) = find(&b, &format!("│{word}  ")).unwrap_or_else(|| panic!("{word}"));
        assert_eq!(style_at(&b, x + 1, y).fg, t.severity(sev).fg, "{word}");
    }
    let (x, y) = find(&b, "│OK  ").expect("a resolved row");
    assert_eq!(style_at(&b, x + 1, y).fg, t.resolved().fg);
}

#[test]
fn every_size_down_to_nothing_draws_without_panicking() {
    let mut a = app();
    for (w, h) in [
        (200, 50),
        (120, 35),
        (119, 35),
        (80, 24),
        (79, 23),
        (40, 12),
        (20, 5),
        (10, 3),
        (1, 1),
        (0, 0),
    ] {
        let b = render(&mut a, w, h);
        if w >= 20 && h >= 5 {
            let t = text(&b);
            assert!(t.contains("LIVE"), "{w}x{h}:\n{t}");
        }
    }
    // With every popup open too.
    chr(&mut a, '?');
    for (w, h) in [(80, 24), (20, 5), (3, 2)] {
        render(&mut a, w, h);
    }
    key(&mut a, KeyCode::Esc);
    chr(&mut a, '4');
    chr(&mut a, 'r');
    for (w, h) in [(80, 24), (20, 5), (3, 2)] {
        render(&mut a, w, h);
    }
}

#[test]
fn the_layout_follows_the_size() {
    let mut a = app();
    let t = text(&render(&mut a, 160, 48));
    for p in [
        "1 Alerts",
        "2 Detail",
        "3 Runbooks",
        "4 Approvals",
        "5 Audit",
        "6 Hosts",
    ] {
        assert!(t.contains(p), "dashboard lacks {p}");
    }
    let t = text(&render(&mut a, 80, 24));
    assert!(t.contains("1 Alerts") && t.contains("4 Approvals") && t.contains("5 Audit"));
    assert!(!t.contains("6 Hosts"));
    let t = text(&render(&mut a, 40, 12));
    assert!(t.contains("1Al") && t.contains("6Ho"), "tabs:\n{t}");
}

#[test]
fn hostile_label_values_are_shown_escaped_never_raw() {
    let mut s = snap();
    if let Some(al) = s.alerts.first_mut().map(Arc::make_mut) {
        al.labels
            .insert("host".into(), "evil\n\u{1b}[2J$(rm -rf /)".into());
    }
    let mut a = app_with(s, false);
    let t = text(&render(&mut a, 160, 48));
    assert!(!t.contains('\u{1b}'));
    assert!(t.contains("evil\\n\\u{1b}"), "{t}");
}

// ----- whole-screen snapshots ---------------------------------------------

/// The screen as text, then each row's style runs, so a snapshot catches a
/// colour change as well as a layout change.
fn screen(b: &Buffer) -> String {
    let mut s = text(b);
    s.push_str("--- styles (row: from-to fg bg modifiers) ---\n");
    for y in 0..b.area.height {
        let mut runs: Vec<(u16, u16, Style)> = Vec::new();
        for x in 0..b.area.width {
            let st = b[(x, y)].style();
            match runs.last_mut() {
                Some((_, end, last)) if *last == st => *end = x,
                _ => runs.push((x, x, st)),
            }
        }
        let desc: Vec<String> = runs
            .iter()
            .filter(|(_, _, st)| {
                *st != Style::default()
                    .fg(ratatui::style::Color::Reset)
                    .bg(ratatui::style::Color::Reset)
            })
            .map(|(a, e, st)| {
                format!(
                    "{a}-{e} {:?} {:?} {:?}",
                    st.fg.unwrap_or(ratatui::style::Color::Reset),
                    st.bg.unwrap_or(ratatui::style::Color::Reset),
                    st.add_modifier
                )
            })
            .collect();
        let _ = writeln!(s, "{y}: {}", desc.join(" | "));
    }
    s
}

#[test]
fn whole_screen_snapshots_in_every_theme_and_size() {
    for (name, _) in theme::BUNDLED {
        for (w, h) in [(200u16, 50u16), (120, 35), (80, 24)] {
            let mut a = app();
            let mut errs = Vec::new();
            a.theme = theme::load(name, None, &mut errs).expect("theme");
            let b = render(&mut a, w, h);
            insta::assert_snapshot!(format!("console_{name}_{w}x{h}"), screen(&b));
        }
    }
}

#[test]
fn silence_confirms_then_asks_for_it_and_a_silenced_alert_says_so() {
    let mut a = app();
    let fp = a.selected_alert().expect("an alert").fingerprint.clone();
    a.command("silence 2h deploy in progress", Instant::now())
        .unwrap();
    let Some(Popup::Confirm(c)) = &a.popup else {
        panic!("no confirmation");
    };
    assert!(c.title.contains("for 2h"), "{}", c.title);
    key(&mut a, KeyCode::Tab);
    key(&mut a, KeyCode::Enter);
    let asked: Vec<_> = std::mem::take(&mut a.outbox)
        .into_iter()
        .filter_map(|i| match i {
            Intent::Silence {
                fingerprint,
                duration,
                comment,
            } => Some((fingerprint, duration, comment)),
            _ => None,
        })
        .collect();
    assert_eq!(
        asked,
        vec![(
            fp.clone(),
            "2h".to_string(),
            "deploy in progress".to_string()
        )]
    );
    // Not silenced yet: unsilence explains.
    a.command("unsilence", Instant::now()).unwrap();
    assert!(a.popup.is_none());
    assert!(
        a.flashes
            .back()
            .is_some_and(|f| f.text.contains("not silenced"))
    );
    // The hub's next snapshot carries the silence.
    let mut s = (*a.snap).clone();
    let al = s
        .alerts
        .iter_mut()
        .find(|x| x.fingerprint == fp)
        .map(Arc::make_mut)
        .expect("alert");
    al.silence = Some(crate::engine::AlertSilence {
        id: "8a3c".into(),
        until: s.at + chrono::TimeDelta::hours(2),
        actor: "alice".into(),
        comment: "deploy in progress".into(),
    });
    a.set_snapshot(Arc::new(s), Instant::now());
    let b = text(&render(&mut a, 160, 48));
    assert!(b.contains("silenced"), "{b}");
    assert!(b.contains("SILENCED until"), "{b}");
    a.command("unsilence", Instant::now()).unwrap();
    key(&mut a, KeyCode::Tab);
    key(&mut a, KeyCode::Enter);
    assert!(
        a.outbox
            .iter()
            .any(|i| matches!(i, Intent::Unsilence { fingerprint } if *fingerprint == fp))
    );
    // Read-only consoles cannot silence.
    let mut ro = app_with(snap(), true);
    assert!(ro.command("silence 1h", Instant::now()).is_err());
    assert!(ro.command("unsilence", Instant::now()).is_err());
}

// ----- round 2: the traps, the audit window, navigation ---------------------

fn intents(app: &mut App) -> Vec<Intent> {
    std::mem::take(&mut app.outbox)
}

fn confirm(app: &App) -> &crate::tui::dialogs::Confirm {
    match &app.popup {
        Some(Popup::Confirm(c)) => c,
        other => panic!("no confirmation: {other:?}"),
    }
}

#[test]
fn reject_answers_enter_with_the_typed_reason_and_esc_cancels() {
    let mut a = app();
    chr(&mut a, '4');
    chr(&mut a, 'r');
    assert!(!confirm(&a).ok_focused, "Cancel is focused");
    typed(&mut a, "disk is fine, false alarm");
    key(&mut a, KeyCode::Enter);
    let evs = hub_events(&mut a);
    assert!(
        matches!(evs.as_slice(), [Event::Reject { reason, .. }] if reason == "disk is fine, false alarm"),
        "{evs:?}"
    );
    assert!(a.popup.is_none());
    // Esc sends nothing, whatever was typed.
    chr(&mut a, 'r');
    typed(&mut a, "oops");
    key(&mut a, KeyCode::Esc);
    assert!(a.popup.is_none());
    assert!(hub_events(&mut a).is_empty());
    assert!(
        a.flashes
            .back()
            .is_some_and(|f| f.text.contains("cancelled"))
    );
}

fn silences(app: &mut App) -> Vec<(String, String)> {
    intents(app)
        .into_iter()
        .filter_map(|i| match i {
            Intent::Silence {
                duration, comment, ..
            } => Some((duration, comment)),
            _ => None,
        })
        .collect()
}

#[test]
fn the_silence_dialog_keeps_its_comment_and_offers_durations() {
    let mut a = app();
    chr(&mut a, 's');
    let c = confirm(&a);
    assert!(c.title.ends_with("for 1h?"), "{}", c.title);
    typed(&mut a, "deploy window");
    key(&mut a, KeyCode::Tab);
    key(&mut a, KeyCode::Right);
    assert!(confirm(&a).title.ends_with("for 2h?"));
    key(&mut a, KeyCode::Enter);
    assert_eq!(
        silences(&mut a),
        vec![("2h".to_string(), "deploy window".to_string())]
    );
    // A custom duration is typed into the picker.
    chr(&mut a, 's');
    key(&mut a, KeyCode::Tab);
    typed(&mut a, "90m");
    assert!(confirm(&a).title.ends_with("for 90m?"));
    key(&mut a, KeyCode::Enter);
    assert_eq!(silences(&mut a), vec![("90m".to_string(), String::new())]);
    // A bad one is said, not sent.
    chr(&mut a, 's');
    key(&mut a, KeyCode::Tab);
    typed(&mut a, "soon");
    key(&mut a, KeyCode::Enter);
    assert!(
        confirm(&a)
            .error
            .as_deref()
            .is_some_and(|e| e.contains("soon"))
    );
    assert!(silences(&mut a).is_empty());
    // The dialog draws its choices.
    let t = text(&render(&mut a, 120, 35));
    assert!(
        t.contains("30m") && t.contains("4h") && t.contains("custom: soon"),
        "{t}"
    );
}

#[test]
fn filters_apply_as_they_are_typed_with_a_count_and_esc_puts_back() {
    let mut a = app();
    let all = a.alert_rows.len();
    chr(&mut a, '/');
    typed(&mut a, "web-03");
    assert_eq!(a.alert_rows.len(), 1, "applied before enter");
    let t = text(&render(&mut a, 120, 35));
    assert!(t.contains(&format!("1 of {all} match")), "{t}");
    key(&mut a, KeyCode::Esc);
    assert_eq!(a.alert_rows.len(), all, "esc put the old filter back");
    // The audit filter waits until it parses.
    chr(&mut a, '5');
    chr(&mut a, '/');
    typed(&mut a, "kind=action_st");
    assert!(
        matches!(&a.popup, Some(Popup::Filter { error: Some(e), .. }) if e.contains("record kind"))
    );
    typed(&mut a, "arted");
    assert_eq!(
        last_audit_query(&a).filter.kind.as_deref(),
        Some("action_started")
    );
}

fn page(app: &App, records: Vec<crate::model::Record>, seek: Option<Seek>) -> AuditPage {
    AuditPage {
        generation: app.audit.generation,
        records,
        seek,
        ..AuditPage::default()
    }
}

#[test]
fn audit_counts_are_right_when_records_arrive_into_an_empty_list() {
    let mut s = snap();
    s.audit_seq = 0;
    let mut a = app_with(s, false);
    a.set_audit_filter("kind=alert_firing");
    let empty = AuditPage {
        total: Some(0),
        ..page(&a, Vec::new(), None)
    };
    a.apply_audit_page(empty);
    let t = text(&render(&mut a, 120, 35));
    assert!(t.contains("no record matches the filter"), "{t}");
    let recs: Vec<_> = fixture::incident(0)
        .records
        .into_iter()
        .rev()
        .filter(|r| r.kind == crate::model::RecordKind::AlertFiring)
        .collect();
    let n = recs.len();
    assert!(n >= 3);
    a.audit.loading = false;
    a.refresh_audit(false);
    a.apply_audit_page(page(&a, recs, None));
    assert_eq!(a.audit.total, Some(n as u64));
    let t = text(&render(&mut a, 120, 35));
    assert!(t.contains(&format!("{n} matches")), "{t}");
    // No filter: the trail is numbered, its count is the newest seq.
    let mut s = snap();
    s.audit_seq = 0;
    let mut b = app_with(s, false);
    b.set_audit_filter("");
    b.apply_audit_page(AuditPage {
        total: Some(0),
        ..page(&b, Vec::new(), None)
    });
    assert!(text(&render(&mut b, 120, 35)).contains("the audit trail is empty"));
}

#[test]
fn goto_since_and_g_reach_the_whole_trail_and_enter_opens_a_record() {
    let mut a = app();
    a.command("goto 5", Instant::now()).unwrap();
    assert_eq!(a.focus, Pane::Audit);
    let q = last_audit_query(&a);
    assert_eq!(q.seek, Some(Seek::Seq(5)));
    let recs: Vec<_> = fixture::incident(0)
        .records
        .into_iter()
        .filter(|r| r.seq >= 5)
        .rev()
        .collect();
    a.apply_audit_page(page(&a, recs, Some(Seek::Seq(5))));
    let sel = &a.audit.rows[a.audit.selected];
    assert_eq!(sel.seq, 5);
    key(&mut a, KeyCode::Enter);
    let t = text(&render(&mut a, 200, 50));
    assert!(t.contains("Record 5"), "{t}");
    assert!(t.contains("at          2026-11-23 03:00:"), "{t}");
    key(&mut a, KeyCode::Esc);
    assert!(
        a.command("goto x", Instant::now())
            .unwrap_err()
            .contains("goto SEQ")
    );
    a.command("since 2026-11-23T03:00", Instant::now()).unwrap();
    assert!(matches!(last_audit_query(&a).seek, Some(Seek::Since(_))));
    // Nothing since then: the window stays and the console says so.
    let rows = a.audit.rows.len();
    let q = last_audit_query(&a);
    a.apply_audit_page(page(&a, Vec::new(), q.seek));
    assert_eq!(a.audit.rows.len(), rows);
    assert!(
        a.flashes
            .back()
            .is_some_and(|f| f.text.starts_with("no record since"))
    );
    assert!(a.command("since soon", Instant::now()).is_err());
    // G asks for the oldest of the whole trail; g g for the newest.
    a.outbox.clear();
    a.audit.exhausted = false;
    chr(&mut a, 'G');
    assert_eq!(last_audit_query(&a).seek, Some(Seek::Oldest));
    a.audit.at_head = false;
    chr(&mut a, 'g');
    chr(&mut a, 'g');
    let q = last_audit_query(&a);
    assert_eq!((q.seek, q.before), (None, None));
}

#[test]
fn detail_and_runbooks_follow_the_selected_approval() {
    let mut a = app();
    let first_alert = a.selected_alert().unwrap().fingerprint.clone();
    chr(&mut a, '4');
    chr(&mut a, 'j');
    let act = a.selected_action().unwrap().clone();
    assert_ne!(act.fingerprint, first_alert);
    let focus: Vec<_> = intents(&mut a)
        .into_iter()
        .filter_map(|i| match i {
            Intent::Focus(f) => f,
            _ => None,
        })
        .collect();
    assert_eq!(focus.last(), Some(&act.fingerprint));
    assert_eq!(
        a.context_alert().map(|x| x.fingerprint.clone()),
        Some(act.fingerprint.clone())
    );
    let t = text(&render(&mut a, 200, 50));
    assert!(t.contains("for the selected approval"), "{t}");
    // Back in Alerts, they follow the alert again.
    chr(&mut a, '1');
    assert_eq!(
        a.context_alert().map(|x| x.fingerprint.clone()),
        Some(first_alert)
    );
}

#[test]
fn the_approve_dialog_shows_the_analysis_and_warns_when_it_disagrees() {
    let mut s = snap();
    let fp = s
        .actions
        .iter()
        .find(|x| x.state == ActionState::AwaitingApproval)
        .unwrap()
        .fingerprint
        .clone();
    let analyses = &mut s.analyses;
    let v = analyses.get_mut(&fp).expect("an analysis");
    v.analysis.cause = crate::analysis::Cause::ALL
        .iter()
        .copied()
        .find(|c| *c != crate::analysis::Cause::Unknown)
        .unwrap();
    v.analysis
        .runbooks
        .retain(|r| r.runbook != "service_restart");
    let mut a = app_with(s, false);
    chr(&mut a, '4');
    chr(&mut a, 'a');
    let all = confirm(&a).lines.join("\n");
    assert!(all.contains("Analysis:"), "{all}");
    assert!(all.contains("evidence:"), "{all}");
    assert!(
        all.contains("WARNING: the analysis says") && all.contains("service_restart"),
        "{all}"
    );
}

#[test]
fn the_hint_bar_shows_the_focused_panes_keys_and_lists_say_where_they_are() {
    let mut a = app();
    chr(&mut a, '4');
    let t = text(&render(&mut a, 200, 50));
    let hints = t.lines().last().unwrap_or("");
    for h in [
        "a approve",
        "r reject",
        "y copy",
        "F freeze",
        "T theme",
        "? help",
    ] {
        assert!(hints.contains(h), "{h} missing: {hints}");
    }
    assert!(t.contains(" 1/2 "), "{t}");
    chr(&mut a, 'y');
    let copied: Vec<_> = intents(&mut a)
        .into_iter()
        .filter_map(|i| match i {
            Intent::Copy(c) => Some(c),
            _ => None,
        })
        .collect();
    assert_eq!(copied, vec!["A000001".to_string()]);
}

#[test]
fn the_palette_completes_and_help_comes_from_the_registry() {
    let mut a = app();
    chr(&mut a, ':');
    typed(&mut a, "rese");
    key(&mut a, KeyCode::Tab);
    let Some(Popup::Palette { input, .. }) = &a.popup else {
        panic!("no palette");
    };
    assert_eq!(input.lines().join(""), "reset-breaker ");
    key(&mut a, KeyCode::Esc);
    chr(&mut a, ':');
    typed(&mut a, "run ");
    key(&mut a, KeyCode::Tab);
    let Some(Popup::Palette {
        error: Some(list), ..
    }) = &a.popup
    else {
        panic!("no list");
    };
    assert!(
        list.contains("service_restart") && list.contains("disk_cleanup"),
        "{list}"
    );
    key(&mut a, KeyCode::Esc);
    let rows = crate::tui::commands::help_rows(&a.keymap, false);
    for p in [
        ":unsilence",
        ":goto SEQ",
        ":since",
        ":propose",
        ":run RUNBOOK",
    ] {
        assert!(rows.iter().any(|r| r.palette.starts_with(p)), "{p}");
    }
    // Read-only: the dangerous ones are neither listed nor completed.
    let ro = app_with(snap(), true);
    let rows = crate::tui::commands::help_rows(&ro.keymap, true);
    assert!(!rows.iter().any(|r| r.palette.starts_with(":approve")));
    assert!(!ro.completions(0, &[]).iter().any(|c| c == "approve"));
    assert!(ro.completions(0, &[]).iter().any(|c| c == "goto"));
}

// ----- the analysis' runbooks and weighed evidence ---------------------------

fn weighed_app(read_only: bool) -> App {
    let inc = fixture::incident(0);
    let mut a = app_with(fixture::weighed_disk(&inc), read_only);
    let fp = a.snap.focus.clone();
    for _ in 0..20 {
        if a.selected_alert().map(|x| &x.fingerprint) == fp.as_ref() {
            break;
        }
        chr(&mut a, 'j');
    }
    assert_eq!(a.selected_alert().map(|x| &x.fingerprint), fp.as_ref());
    a.outbox.clear();
    a
}

/// Selects the suggestion named `runbook` in Runbooks.
fn select_suggestion(a: &mut App, runbook: &str) {
    chr(a, '3');
    for _ in 0..10 {
        if a.snap
            .suggestions
            .get(a.suggestion_sel)
            .map(|s| s.runbook.as_str())
            == Some(runbook)
        {
            return;
        }
        chr(a, 'j');
    }
    panic!("no suggestion {runbook}");
}

#[test]
fn runbooks_show_matched_and_recommended_side_by_side_with_why_and_capacity() {
    let mut a = weighed_app(false);
    chr(&mut a, '3');
    chr(&mut a, 'z');
    let t = text(&render(&mut a, 200, 50));
    for want in [
        "disk /var: 176.0 GiB of 200.0 GiB used, +12.0 GiB/h",
        "6.0 GiB must be freed to get below 170.0 GiB",
        "log /var/log/app/app.log: 92% of the growth",
        "1. disk_cleanup  [matched]",
        "why not: disk_cleanup would free at most 1.0 GiB of the 6.0 GiB needed",
        "capacity: frees at most 1.0 GiB of 6.0 GiB needed (not enough)",
    ] {
        assert!(t.contains(want), "{want:?} missing:\n{t}");
    }
    select_suggestion(&mut a, "log_rotation");
    let t = text(&render(&mut a, 200, 50));
    for want in [
        "2. log_rotation  [analysis #1]",
        "why: the analysis recommends it: log /var/log/app/app.log explains 92% of the growth",
        "capacity: frees at most 40.0 GiB of 6.0 GiB needed",
        "P or `:propose-analysis log_rotation` proposes it with the analysis' parameters",
        "params: path=/var/log/app/app.log",
    ] {
        assert!(t.contains(want), "{want:?} missing:\n{t}");
    }
    assert!(
        !t.contains("40.0 GiB of 6.0 GiB needed (not enough)"),
        "{t}"
    );
    assert!(t.contains("P propose recommended"), "the hint bar: {t}");
}

#[test]
fn p_proposes_the_selected_recommendation_after_a_confirmation_with_its_params_and_why() {
    let mut a = weighed_app(false);
    let fp = a.snap.focus.clone().expect("a focus");
    select_suggestion(&mut a, "log_rotation");
    chr(&mut a, 'P');
    let Some(Popup::Confirm(c)) = &a.popup else {
        panic!("no confirmation");
    };
    assert!(!c.ok_focused, "Cancel must be focused");
    assert!(c.title.contains("log_rotation"), "{}", c.title);
    let all = c.lines.join("\n");
    for want in [
        "runbook  log_rotation @web-03  (analysis #1",
        "params   path=/var/log/app/app.log",
        "why      the analysis recommends it",
        "capacity frees at most 40.0 GiB of 6.0 GiB needed",
        "disk /var: 176.0 GiB of 200.0 GiB used",
        "LIVE",
    ] {
        assert!(all.contains(want), "{want:?} missing:\n{all}");
    }
    // Enter on Cancel sends nothing.
    key(&mut a, KeyCode::Enter);
    assert!(a.popup.is_none());
    assert!(a.outbox.is_empty(), "{:?}", a.outbox);
    // The palette completes the analysis' runbooks only.
    assert_eq!(
        a.completions(1, &["propose-analysis"]),
        vec!["log_rotation".to_string()]
    );
    // The palette form, confirmed.
    a.command("propose-analysis log_rotation", Instant::now())
        .unwrap();
    key(&mut a, KeyCode::Tab);
    key(&mut a, KeyCode::Enter);
    let asked: Vec<_> = std::mem::take(&mut a.outbox)
        .into_iter()
        .filter_map(|i| match i {
            Intent::ProposeAnalysis {
                fingerprint,
                runbook,
            } => Some((fingerprint, runbook)),
            _ => None,
        })
        .collect();
    assert_eq!(asked, vec![(fp, "log_rotation".to_string())]);
    assert!(
        a.flashes
            .back()
            .is_some_and(|f| f.text.contains("proposing log_rotation"))
    );
}

#[test]
fn proposing_what_the_analysis_does_not_recommend_says_what_it_does() {
    let mut a = weighed_app(false);
    select_suggestion(&mut a, "disk_cleanup");
    chr(&mut a, 'P');
    assert!(a.popup.is_none());
    let f = a.flashes.back().expect("a flash");
    assert!(
        f.text
            .contains("not recommended by the analysis; it recommends: log_rotation"),
        "{}",
        f.text
    );
    a.command("propose-analysis no_such", Instant::now())
        .unwrap();
    assert!(a.popup.is_none());
    let f = a.flashes.back().expect("a flash");
    assert!(
        f.text.contains("\"no_such\" is not recommended"),
        "{}",
        f.text
    );
    // Recommended but not proposable now: the hub's why-not is shown.
    let mut s = (*a.snap).clone();
    for x in &mut s.suggestions {
        if x.runbook == "log_rotation" {
            x.proposable = false;
            x.why_not = vec!["an action is already open for this alert".into()];
        }
    }
    a.snap = Arc::new(s);
    a.command("propose-analysis log_rotation", Instant::now())
        .unwrap();
    assert!(a.popup.is_none());
    let f = a.flashes.back().expect("a flash");
    assert!(
        f.text
            .contains("cannot be proposed now: an action is already open"),
        "{}",
        f.text
    );
    assert!(
        a.outbox
            .iter()
            .all(|i| !matches!(i, Intent::ProposeAnalysis { .. }))
    );
}

#[test]
fn read_only_has_no_propose_analysis() {
    let mut a = weighed_app(true);
    select_suggestion(&mut a, "log_rotation");
    chr(&mut a, 'P');
    assert!(a.popup.is_none());
    let e = a
        .command("propose-analysis log_rotation", Instant::now())
        .unwrap_err();
    assert!(e.contains("read-only"), "{e}");
    chr(&mut a, 'z');
    let t = text(&render(&mut a, 200, 50));
    assert!(!t.contains(":propose-analysis"), "{t}");
    assert!(t.contains("[analysis #1]"), "looking stays possible: {t}");
    assert!(
        a.outbox
            .iter()
            .all(|i| !matches!(i, Intent::ProposeAnalysis { .. }))
    );
}

#[test]
fn detail_and_the_approve_dialog_show_the_weighed_evidence() {
    let inc = fixture::incident(0);
    let mut a = weighed_app(false);
    chr(&mut a, '2');
    chr(&mut a, 'z');
    let t = text(&render(&mut a, 200, 50));
    assert!(
        t.contains("weighed: disk /var: 176.0 GiB of 200.0 GiB used"),
        "{t}"
    );
    assert!(
        t.contains("weighed: log /var/log/app/app.log: 92% of the growth"),
        "{t}"
    );
    // The approve dialog of the focused alert's action carries it too.
    let mut s = snap();
    s.assessment = fixture::weighed_disk(&inc).assessment;
    let mut a = app_with(s.clone(), false);
    chr(&mut a, '4');
    chr(&mut a, 'a');
    let Some(Popup::Confirm(c)) = &a.popup else {
        panic!("no confirmation");
    };
    let all = c.lines.join("\n");
    assert!(all.contains("weighed: disk /var: 176.0 GiB"), "{all}");
    assert!(
        all.contains("weighed: log /var/log/app/app.log: 92%"),
        "{all}"
    );
    // Another alert in focus: its weighing is not this action's.
    s.focus = Some("not-this-alert".into());
    let mut a = app_with(s, false);
    chr(&mut a, '4');
    chr(&mut a, 'a');
    let Some(Popup::Confirm(c)) = &a.popup else {
        panic!("no confirmation");
    };
    assert!(!c.lines.join("\n").contains("weighed:"));
}

/// The Hosts pane is a plain list: its selection and filter are kept for
/// it, and keys, `/`, the counts and a new snapshot work on it with no code
/// of its own outside its module.
#[test]
fn a_plain_list_pane_moves_filters_and_counts_through_the_pane_table() {
    let mut a = app();
    let all = a.snap.hosts.len();
    assert!(all >= 3, "the fixture has hosts");
    chr(&mut a, '6');
    assert_eq!(a.focus, Pane::Hosts);
    chr(&mut a, 'j');
    chr(&mut a, 'j');
    assert_eq!(a.list(Pane::Hosts).sel, 2);
    assert_eq!(a.list_position(Pane::Hosts), Some((2, all)));
    chr(&mut a, 'G');
    assert_eq!(a.list(Pane::Hosts).sel, all - 1);
    chr(&mut a, '/');
    typed(&mut a, "web");
    key(&mut a, KeyCode::Enter);
    let webs = a
        .snap
        .hosts
        .iter()
        .filter(|h| h.name.contains("web"))
        .count();
    assert!(webs > 0 && webs < all);
    assert_eq!(a.list(Pane::Hosts).filter, "web");
    assert_eq!(a.list(Pane::Hosts).sel, 0, "a new filter starts at the top");
    assert_eq!(a.filter_count(Pane::Hosts), (Some(webs as u64), all as u64));
    chr(&mut a, 'G');
    assert_eq!(a.list_position(Pane::Hosts), Some((webs - 1, webs)));
    // The filter is the pane's own: Alerts keeps none.
    assert_eq!(a.filter_text(Pane::Alerts), "");
    // A snapshot with fewer hosts keeps the selection on a row that exists.
    let mut s = (*a.snap).clone();
    s.hosts = Arc::new(s.hosts.iter().take(1).cloned().collect());
    a.set_snapshot(Arc::new(s), Instant::now());
    let n = a.list_rows(Pane::Hosts).map_or(0, |r| r.len());
    assert!(a.list(Pane::Hosts).sel <= n.saturating_sub(1));
    key(&mut a, KeyCode::Esc);
    assert_eq!(a.filter_text(Pane::Hosts), "");
    assert_eq!(a.filter_count(Pane::Hosts), (Some(1), 1));
}
