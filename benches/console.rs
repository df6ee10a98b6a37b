//! Console figures: a full frame (all panes, 200×50) with 10,000 alerts and
//! 1,000,000 audit records in the store, key press to updated frame while
//! 1,000 alerts a second arrive, the first frame (state built from a
//! 10,000-alert snapshot, then drawn), and `G`: the jump to the oldest of
//! the million records through the paging route's store reads (the store
//! opened per page, as the hub's route does), applied and drawn. Prints
//! p50/p99.
//!
//! The store it builds stays in `target/console-bench-store` so that
//! `scripts/console-figures.sh` can start the real binary on it.
//!
//! Run: `cargo bench --bench console`

use std::sync::Arc;
use std::time::{Duration, Instant};

use ratatui::Terminal;
use ratatui::backend::TestBackend;
use ratatui::crossterm::event::{KeyCode, KeyEvent, KeyModifiers};

#[path = "support/store.rs"]
mod bench_store;

use bench_store::{AUDIT, store_dir};
use vigil::store::{AuditFilter, Store};
use vigil::tui::app::{App, AppOptions, AuditPage, Intent};
use vigil::tui::audit::{PageRequest, Seek, run_seek};
use vigil::tui::fixture;
use vigil::tui::keymap::Keymap;
use vigil::tui::theme::Theme;

const ALERTS: usize = 10_000;

fn pct(v: &mut [Duration], p: f64) -> Duration {
    v.sort();
    let i = ((v.len() as f64 - 1.0) * p).round() as usize;
    v[i.min(v.len() - 1)]
}

fn ms(d: Duration) -> String {
    format!("{:.3} ms", d.as_secs_f64() * 1000.0)
}

fn main() {
    let dir = store_dir();
    let store = Store::open_read_only(&dir).expect("store");

    let build = Instant::now();
    let inc = fixture::incident(ALERTS);
    let base = fixture::snapshot(&inc, None);
    let focus = fixture::first_alert(&base);
    let mut snap = fixture::snapshot(&inc, focus);
    snap.audit_seq = store.last_seq().unwrap_or(0);
    eprintln!(
        "fixture: {} alerts, {} actions in {:.1}s",
        snap.alerts.len(),
        snap.actions.len(),
        build.elapsed().as_secs_f64()
    );
    let snap = Arc::new(snap);
    let mut app = App::new(
        snap.clone(),
        Theme::fallback(),
        Keymap::fallback(),
        AppOptions {
            read_only: false,
            log_path: "/tmp/vigil.log".into(),
            config_dir: None,
            theme_names: vec!["default".into()],
            problems: Vec::new(),
            history_path: None,
        },
    );
    // The audit pane's first page, as the reader thread would fetch it.
    let q = Instant::now();
    let page = store
        .page(&AuditFilter::default(), None, 200)
        .expect("page");
    let total = store.count(&AuditFilter::default()).ok();
    let q_first = q.elapsed();
    let g = app.audit.generation;
    app.apply_audit_page(AuditPage {
        generation: g,
        before: None,
        records: page,
        total,
        error: None,
        ..AuditPage::default()
    });
    // Paging deep into the trail: 50 pages back.
    let q = Instant::now();
    let mut before = app.audit.rows.last().map(|r| r.seq);
    for _ in 0..50 {
        let p = store
            .page(&AuditFilter::default(), before, 200)
            .expect("page");
        before = p.last().map(|r| r.seq);
    }
    let q_page = q.elapsed() / 50;
    let q = Instant::now();
    let filter = AuditFilter {
        target: Some("node-04242".into()),
        ..Default::default()
    };
    let _page = store.page(&filter, None, 200).expect("filtered");
    let fcount = store.count(&filter).unwrap_or(0);
    let q_filter = q.elapsed();
    app.outbox.clear();

    let mut term = Terminal::new(TestBackend::new(200, 50)).expect("terminal");
    for _ in 0..20 {
        term.draw(|f| vigil::tui::view::draw(f, &mut app))
            .expect("draw");
    }
    let mut frames = Vec::with_capacity(1000);
    for i in 0..1000 {
        // Move the selection so frames differ.
        let k = if i % 2 == 0 {
            KeyCode::Down
        } else {
            KeyCode::Up
        };
        app.on_key(&KeyEvent::new(k, KeyModifiers::NONE), Instant::now());
        app.outbox.clear();
        let t = Instant::now();
        term.draw(|f| vigil::tui::view::draw(f, &mut app))
            .expect("draw");
        frames.push(t.elapsed());
    }

    // Key to frame while alerts arrive at 1,000/s: at 30 frames a second
    // each new snapshot carries ~33 new alerts; a key is handled and drawn
    // right after it.
    let mut keys = Vec::with_capacity(600);
    let mut applies = Vec::with_capacity(600);
    let (drop_tx, drop_rx) = std::sync::mpsc::channel::<Arc<vigil::hub::Snapshot>>();
    let dropper = std::thread::spawn(move || {
        for old in drop_rx {
            drop(old)
        }
    });
    let mut s = (*snap).clone();
    let extra = fixture::incident(600 * 34);
    let fresh: Vec<_> = extra.engine.alerts().cloned().collect();
    let mut next = 0;
    for i in 0..600 {
        // 33 arrive, the 33 oldest warnings resolve and leave: the set
        // stays at ~10,000 as the hub's would.
        for _ in 0..33 {
            if let Some(a) = fresh.get(next) {
                s.alerts.push(Arc::new(a.clone()));
                next += 1;
            }
        }
        if s.alerts.len() > ALERTS + 5 {
            let cut = s.alerts.len() - (ALERTS + 5);
            s.alerts.drain(5..5 + cut);
        }
        let arrived = Arc::new(s.clone());
        let t = Instant::now();
        let old = app.set_snapshot(arrived, Instant::now());
        applies.push(t.elapsed());
        let _ = drop_tx.send(old);
        let t = Instant::now();
        let k = if i % 2 == 0 {
            KeyCode::Down
        } else {
            KeyCode::Char('k')
        };
        app.on_key(&KeyEvent::new(k, KeyModifiers::NONE), Instant::now());
        app.outbox.clear();
        term.draw(|f| vigil::tui::view::draw(f, &mut app))
            .expect("draw");
        keys.push(t.elapsed());
    }

    drop(drop_tx);
    let _ = dropper.join();

    // The first frame: the console's state from a 10,000-alert snapshot,
    // then one full draw.
    let mut firsts = Vec::new();
    for _ in 0..15 {
        let t = Instant::now();
        let mut a = App::new(
            snap.clone(),
            Theme::fallback(),
            Keymap::fallback(),
            AppOptions {
                theme_names: vec!["default".into()],
                ..AppOptions::default()
            },
        );
        let mut term = Terminal::new(TestBackend::new(200, 50)).expect("terminal");
        term.draw(|f| vigil::tui::view::draw(f, &mut a))
            .expect("draw");
        firsts.push(t.elapsed());
    }

    // G in Audit: the key, the seek over the route's pages (the store
    // opened for each page, as the hub's route does), the answer applied,
    // the frame drawn.
    let route = |filter: AuditFilter| {
        let dir = dir.clone();
        move |q: PageRequest| {
            Store::open_read_only(&dir)
                .and_then(|s| s.page(&filter, q.before, q.limit))
                .map_err(|e| e.to_string())
        }
    };
    let head = store.last_seq().unwrap_or(0);
    let mut jumps = Vec::new();
    let mut pages = 0usize;
    for _ in 0..30 {
        app.focus = vigil::tui::app::Pane::Audit;
        app.audit.exhausted = false;
        app.outbox.clear();
        let t = Instant::now();
        app.on_key(
            &KeyEvent::new(KeyCode::Char('G'), KeyModifiers::SHIFT),
            Instant::now(),
        );
        let q = app
            .outbox
            .iter()
            .find_map(|i| match i {
                Intent::Audit(q) => Some(q.clone()),
                _ => None,
            })
            .expect("G asks for a seek");
        let counted = route(AuditFilter::default());
        let mut n = 0;
        let (records, at_head) = run_seek(Seek::Oldest, head, q.limit, |r| {
            n += 1;
            counted(r)
        })
        .expect("seek");
        pages = n;
        app.apply_audit_page(AuditPage {
            generation: q.generation,
            records,
            seek: q.seek,
            head: at_head,
            ..AuditPage::default()
        });
        term.draw(|f| vigil::tui::view::draw(f, &mut app))
            .expect("draw");
        jumps.push(t.elapsed());
        assert_eq!(app.audit.rows.last().map(|r| r.seq), Some(1));
    }
    let mut fjumps = Vec::new();
    let mut fpages = 0usize;
    for _ in 0..5 {
        let t = Instant::now();
        let mut n = 0;
        let src = route(filter.clone());
        let _ = run_seek(Seek::Oldest, head, 200, |r| {
            n += 1;
            src(r)
        })
        .expect("filtered seek");
        fpages = n;
        fjumps.push(t.elapsed());
    }
    let mut gotos = Vec::new();
    for i in 0..20u64 {
        let t = Instant::now();
        let mut src = route(AuditFilter::default());
        let (w, _) = run_seek(Seek::Seq(1 + i * 49_999), head, 200, &mut src).expect("goto");
        assert_eq!(w.last().map(|r| r.seq), Some(1 + i * 49_999));
        gotos.push(t.elapsed());
    }
    println!(
        "console frame, 200x50, all panes, {} alerts, {} audit records:",
        snap.alerts.len(),
        total.unwrap_or(0)
    );
    println!(
        "  p50 {}  p99 {}  max {}",
        ms(pct(&mut frames, 0.5)),
        ms(pct(&mut frames, 0.99)),
        ms(pct(&mut frames, 1.0))
    );
    println!(
        "key press to updated frame while 1000 alerts/s arrive ({} alerts):",
        s.alerts.len()
    );
    println!(
        "  p50 {}  p99 {}  max {}",
        ms(pct(&mut keys, 0.5)),
        ms(pct(&mut keys, 0.99)),
        ms(pct(&mut keys, 1.0))
    );
    println!(
        "taking a new snapshot (derived indexes, rows, flashes): p50 {}  p99 {}",
        ms(pct(&mut applies, 0.5)),
        ms(pct(&mut applies, 0.99))
    );
    println!(
        "first frame (state from {} alerts, then a full draw): p50 {}  max {}",
        snap.alerts.len(),
        ms(pct(&mut firsts, 0.5)),
        ms(pct(&mut firsts, 1.0))
    );
    println!(
        "G to the oldest of {} records (key, {pages} page(s) through the route's store reads, applied, drawn): p50 {}  p99 {}  max {}",
        head,
        ms(pct(&mut jumps, 0.5)),
        ms(pct(&mut jumps, 0.99)),
        ms(pct(&mut jumps, 1.0))
    );
    println!(
        "  the same with a filter (host=node-04242, {fcount} matches, {fpages} pages): p50 {}  max {}",
        ms(pct(&mut fjumps, 0.5)),
        ms(pct(&mut fjumps, 1.0))
    );
    println!(
        ":goto SEQ anywhere in the trail: p50 {}  max {}",
        ms(pct(&mut gotos, 0.5)),
        ms(pct(&mut gotos, 1.0))
    );
    println!(
        "audit reader (off the UI thread): newest page + count {}, a page 50 deep {}, filtered page + count ({fcount} of {}) {}",
        ms(q_first),
        ms(q_page),
        AUDIT,
        ms(q_filter)
    );
}
