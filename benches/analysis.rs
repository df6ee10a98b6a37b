//! Heuristic root-cause analysis speed over the labelled cases in
//! tests/rca: criterion's figures per case, then a printed p50/p99/max over
//! many runs of every case (the target is p99 <= 1 ms), for the analysis
//! with its weighing and for the checks an LLM's answer passes (which weigh
//! the input again).
//!
//! Run with `cargo bench --bench analysis`.

use std::hint::black_box;
use std::path::Path;
use std::time::{Duration, Instant};

use criterion::{Criterion, criterion_group, criterion_main};
use vigil::analysis::{Analyser, Heuristic, check};
use vigil::sim::eval::{Case, load_case};

fn cases() -> Vec<Case> {
    let mut files: Vec<_> = std::fs::read_dir("tests/rca")
        .expect("run from the package root")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "toml"))
        .collect();
    files.sort();
    files
        .iter()
        .filter_map(|f| load_case(Path::new(f)).ok().flatten())
        .collect()
}

fn percentiles(cases: &[Case]) {
    let mut times: Vec<Duration> = Vec::new();
    for c in cases {
        let h = Heuristic::new(c.catalog.clone());
        for _ in 0..300 {
            let t0 = Instant::now();
            black_box(h.analyse(black_box(&c.input)));
            times.push(t0.elapsed());
        }
    }
    report("heuristic analysis (with weighing)", cases.len(), times);
    // The LLM path: its answer (here the heuristic's) passes `check`,
    // which resolves parameters and weighs the input again.
    let mut times: Vec<Duration> = Vec::new();
    for c in cases {
        let h = Heuristic::new(c.catalog.clone());
        let a = h.analyse(&c.input);
        for _ in 0..300 {
            let t0 = Instant::now();
            let _ = black_box(check(black_box(a.clone()), &c.input, &c.catalog));
            times.push(t0.elapsed());
        }
    }
    report("checks of an answer (LLM path)", cases.len(), times);
}

fn report(what: &str, n: usize, mut times: Vec<Duration>) {
    times.sort();
    let at = |q: f64| times[((times.len() as f64 * q).ceil() as usize).saturating_sub(1)];
    println!(
        "{what} over {n} cases x 300 runs: p50 {:?}, p99 {:?}, max {:?}",
        at(0.50),
        at(0.99),
        times[times.len() - 1]
    );
}

fn bench(c: &mut Criterion) {
    let cases = cases();
    percentiles(&cases);
    let mut g = c.benchmark_group("heuristic");
    for name in [
        "memory-leak-gunicorn",
        "crash-loop-after-restarts",
        "disk-postgres-data-volume",
        "traffic-spike-memory-web-group",
        "mixed-data-dir-outgrows-log",
        "capacity-restart-frees-too-little",
        "oom-kill-loop-memory-pressure",
    ] {
        if let Some(case) = cases.iter().find(|x| x.name == name) {
            let h = Heuristic::new(case.catalog.clone());
            g.bench_function(name, |b| b.iter(|| h.analyse(black_box(&case.input))));
        }
    }
    g.bench_function("all cases", |b| {
        let hs: Vec<_> = cases
            .iter()
            .map(|c| (Heuristic::new(c.catalog.clone()), &c.input))
            .collect();
        b.iter(|| {
            for (h, i) in &hs {
                black_box(h.analyse(i));
            }
        })
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
