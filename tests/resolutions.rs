//! Every alert resolution reaches the escalator once, however many arrive
//! between two snapshots: a burst of 200 alerts firing and resolving makes
//! far more records than a snapshot's recent list holds (500), and each of
//! the 200 incidents an escalator opened must still be closed.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use vigil::config::Config;
use vigil::engine::{Engine, Escalation, Escalator, Event, Resolution};
use vigil::hub::{Hub, HubSetup};
use vigil::model::Sample;
use vigil::store::{AuditWriter, Store};

const CONFIG: &str = r#"
[[policies]]
name = "BurstGauge"
when = "burst_gauge > 1"
for = "0s"
resolve = "burst_gauge < 1"
severity = "warning"
labels = ["host"]
"#;

const HOSTS: usize = 200;

/// Counts the resolutions it hears, per fingerprint.
#[derive(Default)]
struct Recorder {
    resolved: Mutex<BTreeMap<String, usize>>,
}

impl Escalator for Recorder {
    fn escalate(&self, _e: Escalation) {}

    fn resolved(&self, r: Resolution) {
        assert_eq!(r.alert.as_deref(), Some("BurstGauge"));
        *self
            .resolved
            .lock()
            .unwrap()
            .entry(r.fingerprint)
            .or_default() += 1;
    }
}

fn burst(value: f64) -> Event {
    Event::Samples(
        (0..HOSTS)
            .map(|i| Sample {
                name: "burst_gauge".into(),
                value,
                labels: [("host".to_string(), format!("host-{i:03}"))].into(),
            })
            .collect(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_burst_of_resolutions_reaches_the_escalator_each_once() {
    let dir = tempfile::tempdir().unwrap();
    let config = Config::parse("config.toml", CONFIG).unwrap();
    let setup = config.build("config.toml", CONFIG, false, None).unwrap();
    let store = Store::open(dir.path()).unwrap();
    let restored = store.load_state().unwrap();
    let writer = AuditWriter::spawn(store).unwrap();
    let recorder = Arc::new(Recorder::default());
    let (hub, handle) = Hub::new(HubSetup {
        engine: Engine::new(setup),
        writer,
        restored,
        demo: None,
        operator: "test".into(),
        sim_run_time: Duration::from_millis(10),
        tick: Duration::from_millis(50),
        executors: None,
        escalator: Some(recorder.clone() as Arc<dyn Escalator>),
        sources: Default::default(),
    });
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let task = tokio::spawn(async move { hub.run(stop_rx).await });

    // Fire and resolve all of them back to back, twice over.
    for _ in 0..2 {
        handle.events.send(burst(5.0)).await.unwrap();
        handle.events.send(burst(0.0)).await.unwrap();
    }
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        let total: usize = recorder.resolved.lock().unwrap().values().sum();
        if total >= 2 * HOSTS || tokio::time::Instant::now() > deadline {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let _ = stop_tx.send(true);
    task.await.unwrap().unwrap();

    let seen = recorder.resolved.lock().unwrap().clone();
    assert_eq!(seen.len(), HOSTS, "one fingerprint per host: {seen:?}");
    assert!(
        seen.values().all(|n| *n == 2),
        "each alert resolved twice, so heard twice: {seen:?}"
    );
    // The audit trail holds the same number of resolutions.
    let store = Store::open(dir.path()).unwrap();
    let resolved_records = store
        .tail(100_000)
        .unwrap()
        .iter()
        .filter(|r| r.kind == vigil::model::RecordKind::AlertResolved)
        .count();
    assert_eq!(resolved_records, 2 * HOSTS);
}
