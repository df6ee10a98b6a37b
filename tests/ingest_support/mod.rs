//! Starts a real hub (SQLite store in a temp dir) with the real HTTP
//! listener on 127.0.0.1 and an ephemeral port, for the ingest tests and
//! benchmarks.
#![allow(dead_code)]

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;

use vigil::config::Config;
use vigil::engine::Engine;
use vigil::hub::{Hub, HubHandle, HubSetup, SourceBoard};
use vigil::ingest::{Api, ListenerOptions, Token};
use vigil::store::{AuditWriter, Store};

pub struct TestHub {
    pub addr: SocketAddr,
    pub handle: HubHandle,
    pub api: Arc<Api>,
    pub dir: tempfile::TempDir,
    pub base: String,
    stop: watch::Sender<bool>,
    hub: Option<tokio::task::JoinHandle<Result<(), vigil::store::StoreError>>>,
}

/// The token of the operator `ana` (role operator) every test hub knows.
pub const ANA_TOKEN: &str = "ana-0123456789abcdef0123456789abcdef";
/// The token of `vic` (role viewer).
pub const VIC_TOKEN: &str = "vic-0123456789abcdef0123456789abcdef";
/// The token of `adam` (role admin).
pub const ADAM_TOKEN: &str = "adam-0123456789abcdef0123456789abcde";

fn operators() -> vigil::access::Access {
    use sha2::Digest;
    let op = |name: &str, role, token: &str| vigil::access::OperatorSpec {
        name: name.into(),
        role: Some(role),
        token_env: None,
        token_sha256: Some(hex::encode(sha2::Sha256::digest(token.as_bytes()))),
    };
    vigil::access::Access::resolve(
        &[
            op("ana", vigil::access::Role::Operator, ANA_TOKEN),
            op("vic", vigil::access::Role::Viewer, VIC_TOKEN),
            op("adam", vigil::access::Role::Admin, ADAM_TOKEN),
        ],
        &Default::default(),
    )
    .expect("test operators")
}

#[derive(Default)]
pub struct Options<'a> {
    pub config: &'a str,
    pub token: Option<&'a str>,
    pub rate_limit: Option<u32>,
}

pub async fn start(o: Options<'_>) -> TestHub {
    let dir = tempfile::tempdir().expect("temp dir");
    let config = Config::parse("test.toml", o.config).expect("config parses");
    let setup = config
        .build("test.toml", o.config, false, Some("sim".into()))
        .expect("config builds");
    let store = Store::open(dir.path()).expect("store opens");
    let restored = store.load_state().expect("state loads");
    let writer = AuditWriter::spawn(store).expect("writer starts");
    let engine = Engine::new(setup);
    let policies = engine.evaluator().policies().to_vec();
    let board = SourceBoard::default();
    let (hub, handle) = Hub::new(HubSetup {
        engine,
        writer,
        restored,
        demo: None,
        operator: "tester".into(),
        sim_run_time: Duration::from_millis(10),
        tick: Duration::from_millis(200),
        executors: None,
        escalator: None,
        sources: board.clone(),
    });
    let (stop, stop_rx) = watch::channel(false);
    let hub = tokio::spawn(hub.run(stop_rx.clone()));
    let opts = ListenerOptions {
        addr: "127.0.0.1:0".parse().expect("addr"),
        token: o.token.map(Token::new),
        rate_limit: o.rate_limit,
        access: operators(),
        socket: true,
        socket_group: None,
    };
    let started = vigil::ingest::start(
        handle.clone(),
        &config,
        policies,
        dir.path().to_path_buf(),
        opts,
        board,
        stop_rx,
    )
    .await
    .expect("listener starts");
    let addr = started.tcp.expect("TCP listener starts");
    let api = started.api;
    TestHub {
        addr,
        base: format!("http://{addr}"),
        handle,
        api,
        dir,
        stop,
        hub: Some(hub),
    }
}

impl TestHub {
    pub async fn stop(mut self) {
        let _ = self.stop.send(true);
        if let Some(h) = self.hub.take() {
            let _ = h.await;
        }
    }

    /// Waits until the snapshot satisfies `f` (at most `secs`).
    pub async fn wait_for(
        &self,
        secs: u64,
        f: impl Fn(&vigil::hub::Snapshot) -> bool,
    ) -> Arc<vigil::hub::Snapshot> {
        let mut rx = self.handle.snapshots.clone();
        let deadline = tokio::time::Instant::now() + Duration::from_secs(secs);
        loop {
            let s = rx.borrow_and_update().clone();
            if f(&s) {
                return s;
            }
            if tokio::time::timeout_at(deadline, rx.changed())
                .await
                .is_err()
            {
                panic!(
                    "condition not met within {secs}s; last snapshot seq {}",
                    s.audit_seq
                );
            }
        }
    }
}

pub fn fixture(name: &str) -> Vec<u8> {
    let p = format!(
        "{}/tests/fixtures/prometheus-stack/{name}",
        env!("CARGO_MANIFEST_DIR")
    );
    std::fs::read(&p).unwrap_or_else(|e| panic!("{p}: {e}"))
}
