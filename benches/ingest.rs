//! Ingest benchmarks: the ingest parser (samples/s), the parser plus the
//! engine evaluating every sample of a 5,000-sample batch, and — measured
//! directly after criterion — webhook received → alert in the hub's
//! snapshot, p50/p99, over real HTTP on 127.0.0.1 against a real hub.
//!
//! `cargo bench --bench ingest`. The wrk figures are in scripts/ingest_load.sh.

#[path = "../tests/ingest_support/mod.rs"]
mod ingest_support;

use std::hint::black_box;
use std::time::{Duration, Instant};

use criterion::{Criterion, Throughput};

use vigil::config::Config;
use vigil::engine::{Engine, Event};
use vigil::ingest::parse::parse_ingest_keyed;
use vigil::model::Time;

const BATCH: usize = 5000;

fn batch_body() -> Vec<u8> {
    let v: Vec<String> = (0..BATCH)
        .map(|i| {
            format!(
                "{{\"name\":\"disk_used_percent\",\"value\":{},\"tags\":{{\"host\":\"h{}\",\"mountpoint\":\"/\"}}}}",
                i % 50,
                i % 1000
            )
        })
        .collect();
    format!("[{}]", v.join(",")).into_bytes()
}

fn engine() -> Engine {
    let c = Config::parse("bench.toml", "").unwrap_or_default();
    match c.build("bench.toml", "", false, Some("sim".into())) {
        Ok(s) => Engine::new(s),
        Err(e) => panic!("bench config: {e:?}"),
    }
}

fn benches(c: &mut Criterion) {
    let body = batch_body();
    let mut g = c.benchmark_group("ingest");
    g.throughput(Throughput::Elements(BATCH as u64));
    g.bench_function("parse 5000-sample batch", |b| {
        b.iter(|| black_box(parse_ingest_keyed(black_box(&body)).map(|v| v.len())))
    });
    let mut e = engine();
    let now: Time = "2026-01-01T00:00:00Z".parse().unwrap_or_default();
    g.bench_function("parse + evaluate 5000-sample batch", |b| {
        b.iter(|| {
            if let Ok(v) = parse_ingest_keyed(&body) {
                let samples = v.into_iter().map(|m| m.into_sample()).collect();
                e.handle_into(Event::Keyed(samples), now);
                black_box(e.take_commands());
            }
        })
    });
    g.finish();
}

fn pct(v: &mut [f64], p: f64) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[((v.len() as f64 - 1.0) * p).round() as usize]
}

fn webhook_to_snapshot() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async {
        let client = reqwest::Client::new();
        // Back to back: each webhook is sent as soon as the previous alert
        // shows, so it often waits for the previous batch's audit sync.
        // Paced: one every 10 ms, as Alertmanager groups deliver.
        for (label, pace) in [("back to back", None), ("paced 10 ms", Some(Duration::from_millis(10)))] {
            // A fresh hub for each run: both start from an empty alert table.
            let h = ingest_support::start(ingest_support::Options::default()).await;
            let url = format!("{}/hooks/alertmanager", h.base);
            let mut rx = h.handle.snapshots.clone();
            let mut lat = Vec::new();
            for i in 0..1000u32 {
                let fp = format!("{:016x}", i + if pace.is_some() { 1 << 20 } else { 0 });
                let body = format!(
                    "{{\"version\":\"4\",\"status\":\"firing\",\"receiver\":\"vigil\",\"groupKey\":\"g\",\"alerts\":[{{\"status\":\"firing\",\"labels\":{{\"alertname\":\"BenchAlert\",\"n\":\"{fp}\"}},\"annotations\":{{}},\"startsAt\":\"2026-11-22T20:52:26.814Z\",\"endsAt\":\"0001-01-01T00:00:00Z\",\"fingerprint\":\"{fp}\"}}]}}"
                );
                if let Some(p) = pace {
                    tokio::time::sleep(p).await;
                }
                let t = Instant::now();
                let r = client.post(&url).body(body).send().await;
                if r.map(|r| r.status().as_u16()).unwrap_or(0) != 200 {
                    panic!("webhook refused");
                }
                loop {
                    if rx.borrow_and_update().alerts.iter().any(|a| a.fingerprint == fp) {
                        break;
                    }
                    if tokio::time::timeout(Duration::from_secs(5), rx.changed()).await.is_err() {
                        panic!("alert {fp} never reached the snapshot");
                    }
                }
                lat.push(t.elapsed().as_secs_f64() * 1000.0);
            }
            let (p50, p99, max) = (pct(&mut lat, 0.5), pct(&mut lat, 0.99), pct(&mut lat, 1.0));
            println!(
                "webhook received -> alert in snapshot, {label} ({} alerts, HTTP on 127.0.0.1): p50 {p50:.3} ms, p99 {p99:.3} ms, max {max:.3} ms",
                lat.len()
            );
            h.stop().await;
        }
    });
}

fn main() {
    let mut c = Criterion::default()
        .measurement_time(Duration::from_secs(3))
        .warm_up_time(Duration::from_secs(1))
        .configure_from_args();
    benches(&mut c);
    c.final_summary();
    webhook_to_snapshot();
}
