//! `vigil agent` figures: the latency of a durable job accept (POST /jobs
//! over HTTP on 127.0.0.1 until the job is committed with
//! synchronous=FULL and answered 201), and 1,000 queued jobs run with the
//! default concurrency: how long, whether they started in submission
//! order, and the process's memory before and after.
//!
//! `cargo bench --bench agent` (VIGIL_BENCH_JOBS sets how many are timed,
//! default 2000). Prints figures; asserts nothing about time.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use vigil::agent::config::AgentConfig;
use vigil::engine::Execution;
use vigil::exec::http::HttpTarget;
use vigil::model::ActionId;
use vigil::runbook::Catalog;

const RUNBOOK: &str = r#"
name = "bench_step"
description = "Benchmark: one short step."
risk = "low"
approval = "auto"

[match]
alertname = ["Bench"]

[params.n]
source = "literal"
pattern = '[0-9]{1,7}'

[[steps]]
name = "step"
argv = ["true", "{n}"]
timeout = "10s"
"#;

fn rss_kb(field: &str) -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .unwrap_or_default()
        .lines()
        .find(|l| l.starts_with(field))
        .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        .unwrap_or(0)
}

fn pct(sorted: &[Duration], p: f64) -> f64 {
    let i = ((sorted.len() as f64 * p).ceil() as usize).clamp(1, sorted.len()) - 1;
    sorted[i].as_secs_f64() * 1000.0
}

struct Bench {
    client: reqwest::Client,
    url: String,
    catalog: Catalog,
    next: u64,
}

impl Bench {
    fn job(&mut self) -> Execution {
        self.next += 1;
        let rb = self.catalog.get("bench_step").expect("the bench runbook");
        let params: BTreeMap<String, String> = [("n".to_string(), self.next.to_string())].into();
        Execution {
            action: ActionId(self.next),
            attempt: 1,
            runbook: "bench_step".into(),
            target: "bench-host".into(),
            executor: "http".into(),
            steps: rb.plan("bench-host", &params),
            params,
        }
    }

    /// Submits one job; the time until its 201.
    async fn submit(&mut self) -> Duration {
        let x = self.job();
        let t = Instant::now();
        let r = self
            .client
            .post(format!("{}/jobs", self.url))
            .header("Idempotency-Key", HttpTarget::key(&x))
            .json(&HttpTarget::body(&x))
            .send()
            .await
            .expect("the agent answers");
        assert_eq!(r.status(), 201, "{:?}", r.text().await);
        let _ = r.bytes().await;
        t.elapsed()
    }

    async fn get(&self, path: &str) -> serde_json::Value {
        self.client
            .get(format!("{}{path}", self.url))
            .send()
            .await
            .expect("the agent answers")
            .json()
            .await
            .expect("json")
    }

    async fn counts(&self) -> serde_json::Value {
        self.get("/health").await
    }
}

fn main() {
    let n: usize = std::env::var("VIGIL_BENCH_JOBS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(2000);
    let dir = tempfile::tempdir().expect("temp dir");
    std::fs::create_dir(dir.path().join("runbooks")).unwrap();
    std::fs::write(dir.path().join("runbooks/bench_step.toml"), RUNBOOK).unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a port");
    let cfg = AgentConfig::load(&vigil::agent::Flags {
        config: None,
        listen: Some(format!("127.0.0.1:{port}")),
        data_dir: Some(dir.path().join("data")),
    })
    .map(|mut c| {
        c.runbook_dir = Some(dir.path().join("runbooks"));
        c
    })
    .expect("config");
    let default_running = cfg.max_running;
    let catalog = cfg.catalog().expect("catalog");
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async move {
        let (stop_tx, stop) = tokio::sync::watch::channel(false);
        let agent = tokio::spawn(vigil::agent::run(cfg, stop));
        let mut b = Bench {
            client: reqwest::Client::new(),
            url: format!("http://127.0.0.1:{port}"),
            catalog,
            next: 0,
        };
        while b.client.get(format!("{}/health", b.url)).send().await.is_err() {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        // 1. Durable accept latency, jobs running behind it.
        let mut lat = Vec::with_capacity(n);
        for _ in 0..n {
            lat.push(b.submit().await);
        }
        lat.sort();
        println!(
            "agent accept (POST /jobs -> 201, committed with synchronous=FULL), {n} jobs: \
             p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms",
            pct(&lat, 0.50),
            pct(&lat, 0.99),
            pct(&lat, 1.0)
        );
        // Let the first batch drain.
        while b.counts().await["queued"].as_i64().unwrap_or(1) > 0
            || b.counts().await["running"].as_i64().unwrap_or(1) > 0
        {
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        // 2. 1,000 jobs queued at once, default concurrency.
        let rss0 = rss_kb("VmRSS:");
        let t = Instant::now();
        let first = b.next + 1;
        for _ in 0..1000 {
            b.submit().await;
        }
        let queued_in = t.elapsed();
        let mut peak_queue = 0;
        let mut peak_rss = rss0;
        loop {
            let c = b.counts().await;
            let (q, r) = (
                c["queued"].as_i64().unwrap_or(0),
                c["running"].as_i64().unwrap_or(0),
            );
            peak_queue = peak_queue.max(q);
            peak_rss = peak_rss.max(rss_kb("VmRSS:"));
            if q == 0 && r == 0 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let took = t.elapsed();
        let rss1 = rss_kb("VmRSS:");
        let list = b.get("/jobs?limit=1000").await;
        let mut jobs: Vec<(u64, String, String)> = list["jobs"]
            .as_array()
            .expect("jobs")
            .iter()
            .map(|j| {
                (
                    j["id"].as_str().unwrap_or("")[4..].parse().unwrap_or(0),
                    j["started_at"].as_str().unwrap_or("").to_string(),
                    j["status"].as_str().unwrap_or("").to_string(),
                )
            })
            .collect();
        jobs.sort();
        let in_order = jobs.windows(2).all(|w| w[0].1 <= w[1].1);
        let ok = jobs.iter().filter(|j| j.2 == "succeeded").count();
        println!(
            "1000 jobs queued in {:.2}s (peak queue {peak_queue}), all run in {:.2}s with max_running = {default_running} \
             ({:.0} jobs/s); {ok}/1000 succeeded; started in submission order: {in_order} (job ids from {first})",
            queued_in.as_secs_f64(),
            took.as_secs_f64(),
            1000.0 / took.as_secs_f64()
        );
        println!(
            "memory (whole bench process, RSS): {} KiB before, peak {} KiB while 1000 were queued, {} KiB after",
            rss0, peak_rss, rss1
        );
        let _ = stop_tx.send(true);
        let _ = agent.await;
    });
}
