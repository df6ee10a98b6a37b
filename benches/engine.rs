//! Engine benchmarks: sample evaluation throughput (default policies plus
//! 100 more, 10,000 series), alert-in to decision-out latency percentiles,
//! and the replay of a 24-hour scenario with 100,000 events.
//!
//! `cargo bench --bench engine` prints criterion's figures and, after them,
//! the percentile and replay figures measured directly.

use std::collections::BTreeMap;
use std::hint::black_box;
use std::time::Instant;

use chrono::TimeDelta;
use criterion::{Criterion, Throughput};

use vigil::config::Config;
use vigil::engine::{Engine, Event};
use vigil::model::{AlertStatus, IncomingAlert, Labels, Time};
use vigil::sim::scenario::Scenario;

const SERIES: usize = 10_000;

fn t0() -> Time {
    "2026-01-01T00:00:00Z".parse().unwrap_or_default()
}

/// Defaults plus 100 extra policies on 20 other metrics, none of them
/// firing at the values fed (so the figure is pure evaluation).
fn engine_with_extra_policies() -> Engine {
    let mut text = String::new();
    for i in 0..100 {
        text.push_str(&format!(
            "[[policies]]\nname = \"Extra{i}\"\nwhen = 'metric_{m}{{tier!=\"none\"}} > {th}'\nfor = \"1m\"\nlabels = [\"host\"]\n\n",
            m = i % 20,
            th = 1000 + i
        ));
    }
    let c = Config::parse("bench.toml", &text).expect("bench config parses");
    let setup = c
        .build("bench.toml", &text, false, Some("sim".into()))
        .expect("bench config builds");
    Engine::new(setup)
}

fn series_labels(i: usize) -> (String, Labels) {
    let metrics = [
        "disk_used_percent",
        "memory_used_percent",
        "service_up",
        "zombie_processes",
        "connection_pool_used_ratio",
    ];
    let name = if i.is_multiple_of(2) {
        metrics[i / 2 % metrics.len()].to_string()
    } else {
        format!("metric_{}", i % 20)
    };
    let mut l = Labels::new();
    l.insert("host".into(), format!("host-{:05}", i / 10));
    l.insert("service".into(), format!("svc{}", i % 10));
    l.insert("mountpoint".into(), "/".into());
    l.insert("tier".into(), "web".into());
    (name, l)
}

fn healthy_value(name: &str) -> f64 {
    match name {
        "service_up" => 1.0,
        "connection_pool_used_ratio" => 0.4,
        _ => 40.0,
    }
}

fn bench_samples(c: &mut Criterion) {
    let mut g = c.benchmark_group("samples");
    // Interned path: the series id is known (ingest keeps a cache).
    let mut e = engine_with_extra_policies();
    let ids: Vec<(u32, f64)> = (0..SERIES)
        .map(|i| {
            let (n, l) = series_labels(i);
            (e.intern(&n, &l).expect("intern"), healthy_value(&n))
        })
        .collect();
    let now = t0();
    g.throughput(Throughput::Elements(SERIES as u64));
    g.bench_function("observe_interned_10k_series", |b| {
        b.iter(|| {
            for (id, v) in &ids {
                e.observe(*id, black_box(*v), now);
            }
        })
    });
    // Label path: every sample looks its series up by name and labels.
    let mut e2 = engine_with_extra_policies();
    let samples: Vec<vigil::model::Sample> = (0..SERIES)
        .map(|i| {
            let (n, l) = series_labels(i);
            vigil::model::Sample {
                value: healthy_value(&n),
                name: n,
                labels: l,
            }
        })
        .collect();
    let batch = Event::Samples(samples);
    // The batch is copied outside the timing: the hub receives it owned.
    g.bench_function("handle_samples_by_labels_10k_series", |b| {
        b.iter_batched(
            || batch.clone(),
            |batch| black_box(e2.handle(batch, now)),
            criterion::BatchSize::LargeInput,
        )
    });
    g.finish();
}

fn alert(i: usize) -> IncomingAlert {
    let mut l = Labels::new();
    l.insert("alertname".into(), "DiskSpaceLow".into());
    l.insert("host".into(), format!("h{i}"));
    l.insert("mountpoint".into(), "/".into());
    l.insert("severity".into(), "warning".into());
    IncomingAlert {
        labels: l,
        annotations: Labels::new(),
        status: AlertStatus::Firing,
        fingerprint: None,
        starts_at: None,
        ends_at: None,
        source: Some("bench".into()),
        generator_url: None,
    }
}

/// Alert in → decision out (match, guards, approval, start) per alert.
fn alert_latency() {
    let mut e = engine_with_extra_policies();
    let mut lat = Vec::with_capacity(20_000);
    let mut now = t0();
    for i in 0..20_000 {
        now += TimeDelta::milliseconds(10);
        let a = alert(i);
        let s = Instant::now();
        let cmds = e.handle(Event::Alert(a), now);
        lat.push(s.elapsed().as_nanos() as u64);
        black_box(cmds);
    }
    lat.sort_unstable();
    let p = |q: f64| lat[((lat.len() as f64 * q) as usize).min(lat.len() - 1)] as f64 / 1000.0;
    println!(
        "alert in -> decision out (20,000 alerts, growing action table): p50 {:.1} us, p99 {:.1} us, max {:.1} us",
        p(0.50),
        p(0.99),
        p(1.0)
    );
}

/// A 24-hour scenario with 100,000 events on 50 hosts.
fn replay_24h() {
    let mut s = String::from("name = \"bench-24h\"\nstart = \"2026-01-01T00:00:00Z\"\n\n");
    for h in 0..50 {
        s.push_str(&format!(
            "[[hosts]]\nname = \"h{h:02}\"\nlabels = {{ group = \"g{}\" }}\nservices = [\"api\"]\n\n",
            h % 5
        ));
    }
    let mut outcomes = BTreeMap::new();
    for i in 0..100_000u64 {
        let secs = i * 86_400 / 100_000;
        let h = i % 50;
        // A disk that fills up and gets cleaned every few hours per host.
        let phase = (secs + h * 600) % 14_400;
        let v = if phase > 12_000 {
            92.0
        } else {
            60.0 + (phase as f64 / 1000.0)
        };
        s.push_str(&format!(
            "[[events]]\nat = \"{secs}s\"\nmetric = {{ name = \"disk_used_percent\", value = {v:.1}, labels = {{ host = \"h{h:02}\", mountpoint = \"/\" }} }}\n\n"
        ));
        outcomes.insert(format!("disk_cleanup@h{h:02}"), ());
    }
    s.push_str("[outcomes]\n");
    for k in outcomes.keys() {
        s.push_str(&format!(
            "\"{k}\" = {{ result = \"success\", set = {{ disk_used_percent = 50.0 }} }}\n"
        ));
    }
    let started = Instant::now();
    let sc = Scenario::parse("bench-24h.toml", &s).expect("bench scenario parses");
    let parsed = started.elapsed();
    let replay = sc.run();
    let total = started.elapsed();
    println!(
        "replay of a 24h scenario with 100,000 events: {:.3} s total ({:.3} s parsing), {} records",
        total.as_secs_f64(),
        parsed.as_secs_f64(),
        replay.log.len()
    );
}

/// `VIGIL_BENCH_ONLY=alerts|replay` runs only that figure (for profiling).
fn main() {
    let only = std::env::var("VIGIL_BENCH_ONLY").ok();
    if only.is_none() {
        let mut c = Criterion::default().configure_from_args();
        bench_samples(&mut c);
        c.final_summary();
    }
    if only.as_deref().is_none_or(|o| o == "alerts") {
        alert_latency();
    }
    if only.as_deref().is_none_or(|o| o == "replay") {
        replay_24h();
    }
}
