//! Console figures: a full frame (all panes, 200×50) with 10,000 alerts and
//! 1,000,000 audit records in the store, and key press to updated frame
//! while 1,000 alerts a second arrive. Prints p50/p99.
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
use vigil::tui::app::{App, AppOptions, AuditPage};
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
        "audit reader (off the UI thread): newest page + count {}, a page 50 deep {}, filtered page + count ({fcount} of {}) {}",
        ms(q_first),
        ms(q_page),
        AUDIT,
        ms(q_filter)
    );
}
