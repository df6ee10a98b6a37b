//! The cost of one published change on its way to attached consoles, by
//! stage, with 10,000 alerts in the table: the hub's snapshot of the
//! engine, the diff against the last one, the line written once for every
//! console, and each console's parse and apply. The attach bench measures
//! the same path end to end through real processes; this one says where
//! its time goes.
//!
//! Run: `cargo bench --bench feed` (VIGIL_BENCH_CONSOLES sets how many
//! consoles parse and apply each line; default 20).

use std::sync::Arc;
use std::time::{Duration, Instant};

use vigil::config::Config;
use vigil::engine::{Engine, Event};
use vigil::hub::Snapshot;
use vigil::model::{AlertStatus, IncomingAlert, Labels, Time};
use vigil::stream::{Line, apply, diff};

const ALERTS: usize = 10_000;
const CHANGES: usize = 300;

fn alert(i: usize) -> Event {
    let mut l = Labels::new();
    l.insert("alertname".into(), "NodeFilesystemAlmostFull".into());
    l.insert("host".into(), format!("node-{i:05}"));
    l.insert("mountpoint".into(), "/var".into());
    l.insert(
        "severity".into(),
        ["warning", "critical", "high"][i % 3].into(),
    );
    Event::Alert(IncomingAlert {
        labels: l,
        annotations: Labels::new(),
        status: AlertStatus::Firing,
        fingerprint: Some(format!("{:016x}", i + 1)),
        starts_at: None,
        ends_at: None,
        source: Some("bench".into()),
        generator_url: None,
    })
}

fn pct(v: &mut [Duration], p: f64) -> Duration {
    v.sort();
    v[(((v.len() as f64 - 1.0) * p).round() as usize).min(v.len() - 1)]
}

fn report(what: &str, v: &mut [Duration]) {
    println!(
        "{what:<44} p50 {:>8.3} ms  p99 {:>8.3} ms",
        pct(v, 0.5).as_secs_f64() * 1e3,
        pct(v, 0.99).as_secs_f64() * 1e3
    );
}

fn main() {
    let text = "demo = false\n";
    let c = Config::parse("bench.toml", text).expect("config");
    let setup = c
        .build("bench.toml", text, false, Some("sim".into()))
        .expect("config builds");
    let mut engine = Engine::new(setup);
    let t0: Time = "2026-01-01T00:00:00Z".parse().unwrap_or_default();
    for i in 0..ALERTS {
        engine.handle(alert(i), t0);
    }
    let consoles: usize = std::env::var("VIGIL_BENCH_CONSOLES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(20)
        .max(1);
    // The hub keeps its alert order from one publish to the next and puts
    // back only what changed.
    let mut ordered = vigil::hub::ordered_alerts(&engine);
    let _ = engine.take_alert_changes();
    let mut prev = Arc::new(Snapshot::of_engine_ordered(
        &engine,
        t0,
        None,
        ordered.clone(),
    ));
    let mut held: Vec<Arc<Snapshot>> = vec![prev.clone(); consoles];
    let (mut snap_t, mut diff_t, mut line_t, mut parse_t, mut apply_t, mut all_t) =
        (vec![], vec![], vec![], vec![], vec![], vec![]);
    for i in 0..CHANGES {
        let now = t0 + chrono::TimeDelta::seconds(i as i64 + 1);
        engine.handle(alert(ALERTS + i), now);
        let start = Instant::now();
        vigil::hub::follow_alert_order(&mut engine, &mut ordered, true);
        let next = Arc::new(Snapshot::of_engine_ordered(
            &engine,
            now,
            None,
            ordered.clone(),
        ));
        let a = Instant::now();
        let d = diff(&prev, &next);
        let b = Instant::now();
        let mut bytes = serde_json::to_vec(&Line::Delta {
            version: i as u64 + 2,
            delta: Box::new(d),
        })
        .expect("line");
        bytes.push(b'\n');
        let c = Instant::now();
        snap_t.push(a - start);
        diff_t.push(b - a);
        line_t.push(c - b);
        for h in held.iter_mut() {
            let p0 = Instant::now();
            let Ok(Line::Delta { delta, .. }) = serde_json::from_slice::<Line>(&bytes) else {
                panic!("not a delta")
            };
            let p1 = Instant::now();
            *h = Arc::new(apply(h, *delta));
            parse_t.push(p1 - p0);
            apply_t.push(p1.elapsed());
        }
        all_t.push(start.elapsed());
        assert_eq!(held[0].alerts.len(), ALERTS + i + 1);
        prev = next;
    }
    println!("{CHANGES} changes, {ALERTS} alerts, {consoles} consoles (one thread):");
    report("hub: snapshot of the engine", &mut snap_t);
    report("hub: diff against the last snapshot", &mut diff_t);
    report("hub: the line, once for all", &mut line_t);
    report("console: parse the line", &mut parse_t);
    report("console: apply the delta", &mut apply_t);
    report("all of it, every console in turn", &mut all_t);
}
