//! Attached consoles, measured against the real `vigil serve` on the
//! million-record store with 10,000 firing alerts:
//! - attach: connect to the socket to the hub's whole snapshot decoded and
//!   applied by the console's client (the first frame with the hub's data
//!   is drawn from it; `cargo bench --bench console` gives the frame);
//! - change latency: the hub publishes a change (an alert delivered by
//!   webhook) to the moment an attached client has applied it, p50/p99;
//! - idle cost: the hub's CPU over 20 s with 0 and with 20 consoles
//!   attached.
//!
//! Run: `cargo bench --bench attach` (builds the store on first use).

#[path = "support/store.rs"]
mod bench_store;

use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use vigil::client::{Endpoint, HubClient};
use vigil::hub::Snapshot;

const ALERTS: usize = 10_000;

fn pct(v: &mut [Duration], p: f64) -> Duration {
    v.sort();
    v[(((v.len() as f64 - 1.0) * p).round() as usize).min(v.len() - 1)]
}

fn ms(d: Duration) -> String {
    format!("{:.2} ms", d.as_secs_f64() * 1000.0)
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

fn cpu_ticks(pid: u32) -> u64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let after = stat.rsplit_once(')').map(|x| x.1).unwrap_or("");
    let f: Vec<&str> = after.split_whitespace().collect();
    f.get(11).and_then(|v| v.parse::<u64>().ok()).unwrap_or(0)
        + f.get(12).and_then(|v| v.parse::<u64>().ok()).unwrap_or(0)
}

fn webhook(port: u16, from: usize, n: usize) {
    let alerts: Vec<serde_json::Value> = (from..from + n)
        .map(|i| {
            let severity = ["warning", "critical", "high"][i % 3];
            serde_json::json!({
                "status": "firing",
                "labels": {"alertname": "NodeFilesystemAlmostFull", "host": format!("node-{i:05}"),
                           "mountpoint": "/var", "severity": severity},
                "annotations": {"summary": "almost full"},
                "startsAt": "2026-11-23T02:00:00Z", "endsAt": "0001-01-01T00:00:00Z",
                "generatorURL": "http://prom/graph", "fingerprint": format!("{:016x}", i + 1)
            })
        })
        .collect();
    let body = serde_json::json!({
        "version": "4", "status": "firing", "receiver": "vigil", "groupKey": "{}:{}",
        "groupLabels": {}, "commonLabels": {}, "commonAnnotations": {}, "externalURL": "http://am",
        "alerts": alerts
    })
    .to_string();
    // A plain HTTP/1.1 request from this process, as a long-running
    // Alertmanager sends it (a curl process per delivery would compete
    // for the CPU with what is measured).
    use std::io::{Read, Write};
    let mut c = std::net::TcpStream::connect(("127.0.0.1", port)).expect("connect to the hub");
    write!(
        c,
        "POST /hooks/alertmanager HTTP/1.1\r\nhost: 127.0.0.1\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
        body.len()
    )
    .expect("send the webhook");
    let mut answer = String::new();
    c.read_to_string(&mut answer).expect("the hub's answer");
    assert!(
        answer.starts_with("HTTP/1.1 200"),
        "webhook refused: {}",
        answer.lines().next().unwrap_or("")
    );
}

async fn wait_up(rx: &mut tokio::sync::watch::Receiver<Arc<Snapshot>>, alerts: usize) {
    loop {
        {
            let s = rx.borrow_and_update();
            if s.link.as_ref().is_some_and(|l| l.up) && s.alerts.len() >= alerts {
                return;
            }
        }
        if rx.changed().await.is_err() {
            panic!("the client stopped");
        }
    }
}

fn main() {
    let seed = bench_store::store_dir();
    let work = tempfile::tempdir().expect("temp dir");
    let data = work.path().join("data");
    let cp = Command::new("cp").arg("-r").arg(&seed).arg(&data).status();
    assert!(cp.is_ok_and(|s| s.success()), "copy the store");
    let cfg = work.path().join("quiet.toml");
    std::fs::write(&cfg, "operator = \"bench\"\ndemo = false\n").expect("config");
    let port = free_port();
    let bin = env!("CARGO_BIN_EXE_vigil");
    let mut hub = Command::new(bin)
        .args(["serve", "--config"])
        .arg(&cfg)
        .arg("--data-dir")
        .arg(&data)
        .args(["--listen", &format!("127.0.0.1:{port}")])
        .env("HOME", work.path())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("vigil serve");
    HUB_PID.store(hub.id(), std::sync::atomic::Ordering::Relaxed);
    let sock = data.join("vigil.sock");
    let t0 = Instant::now();
    while !vigil::client::hub_listening(&sock) {
        assert!(
            t0.elapsed() < Duration::from_secs(60),
            "the hub never served"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    for b in 0..ALERTS / 500 {
        webhook(port, b * 500, 500);
    }
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    rt.block_on(async {
        let endpoint = Endpoint::Socket(sock.clone());
        let empty = Arc::new(Snapshot::empty(chrono::Utc::now()));
        // Wait for the hub to hold every alert.
        {
            let c = HubClient::new(&endpoint, false).expect("client");
            let (_f, focus) = tokio::sync::watch::channel(None);
            let mut rx = c.follow(empty.clone(), false, focus);
            tokio::time::timeout(Duration::from_secs(60), wait_up(&mut rx, ALERTS))
                .await
                .expect("10,000 alerts in the hub");
        }

        // Attach: 20 times, a new client each time.
        let mut attach = Vec::new();
        for _ in 0..20 {
            let t = Instant::now();
            let c = HubClient::new(&endpoint, false).expect("client");
            let (_f, focus) = tokio::sync::watch::channel(None);
            let mut rx = c.follow(empty.clone(), false, focus);
            wait_up(&mut rx, ALERTS).await;
            attach.push(t.elapsed());
        }
        println!(
            "attach to the whole snapshot (10,000 alerts, 1,000,000 records in the store): p50 {}, p99 {}, max {}",
            ms(pct(&mut attach, 0.5)),
            ms(pct(&mut attach, 0.99)),
            ms(*attach.iter().max().expect("runs"))
        );

        // Idle cost: 0 consoles, then 20.
        let hz = 100.0;
        let idle = |secs: u64| async move {
            let a = cpu_ticks(hub_pid());
            tokio::time::sleep(Duration::from_secs(secs)).await;
            (cpu_ticks(hub_pid()) - a) as f64 / hz / secs as f64 * 100.0
        };
        let none = idle(20).await;
        let mut keep = Vec::new();
        // VIGIL_BENCH_CONSOLES changes how many attach (default 20).
        let consoles: usize = std::env::var("VIGIL_BENCH_CONSOLES")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(20)
            .max(1);
        for _ in 0..consoles {
            let c = HubClient::new(&endpoint, false).expect("client");
            let (f, focus) = tokio::sync::watch::channel(None);
            let mut rx = c.follow(empty.clone(), false, focus);
            wait_up(&mut rx, ALERTS).await;
            keep.push((rx, f));
        }
        tokio::time::sleep(Duration::from_secs(2)).await;
        let twenty = idle(20).await;
        println!(
            "hub CPU while idle over 20 s: {none:.2}% of a core with no console, {twenty:.2}% with {consoles} attached (+{:.2}%)",
            twenty - none
        );

        // Change latency: the hub's publish time (`at`) to the client
        // holding the change; one new alert every 50 ms.
        let (mut rx, _f) = keep.pop().expect("a client");
        let mut lat = Vec::new();
        for i in 0..300 {
            let before = rx.borrow_and_update().alerts.len();
            let p = port;
            std::thread::spawn(move || webhook(p, ALERTS + i, 1));
            loop {
                if rx.changed().await.is_err() {
                    panic!("the client stopped");
                }
                let s = rx.borrow_and_update().clone();
                if s.alerts.len() > before {
                    let d = chrono::Utc::now() - s.at;
                    lat.push(d.to_std().unwrap_or_default());
                    break;
                }
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        println!(
            "hub publish to attached console (300 changes, {consoles} consoles attached): p50 {}, p99 {}, max {}",
            ms(pct(&mut lat, 0.5)),
            ms(pct(&mut lat, 0.99)),
            ms(*lat.iter().max().expect("runs"))
        );
    });
    let _ = hub.kill();
    let _ = hub.wait();

    fn hub_pid() -> u32 {
        HUB_PID.load(std::sync::atomic::Ordering::Relaxed)
    }
}

static HUB_PID: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
