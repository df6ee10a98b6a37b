//! Signals in and the HTTP API out: the axum listener (Alertmanager webhook,
//! ingest API, the JSON API, `/health`, `/metrics`), its bearer-token auth
//! and rate limit, the Prometheus/Alertmanager clients and pollers, and
//! silences.
//!
//! Everything here is the imperative shell: it parses, authenticates and
//! forwards events to the hub, and reads snapshots and the store. It must
//! not decide anything (the engine does) nor write the audit trail (the hub
//! does).

pub mod api;
pub mod client;
pub mod evidence;
pub mod feed;
pub mod journal;
pub mod parse;
pub mod poll;
pub mod rules;
pub mod silence;
pub mod stats;
pub mod violations;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use tokio::sync::watch;

use crate::config::{Config, SourceKind};
use crate::hub::{HealthState, HubHandle, SourceBoard};
use crate::policy::Policy;

/// The default listener address.
pub const DEFAULT_LISTEN: &str = "127.0.0.1:9797";
/// Requests per second an exposed (non-loopback) listener accepts when the
/// config sets no `rate_limit`.
pub const DEFAULT_EXPOSED_RATE: u32 = 10_000;
/// Bodies over this many bytes get 413.
pub const MAX_BODY: usize = 1 << 20;

#[derive(Debug, thiserror::Error)]
pub enum ListenError {
    #[error("listen address {0:?} is not IP:PORT (e.g. 127.0.0.1:9797)")]
    BadAddress(String),
    #[error(
        "refusing to listen on {0} without a bearer token: set [listener] token_env in the config and export that variable, or listen on 127.0.0.1"
    )]
    ExposedWithoutToken(SocketAddr),
    #[error("[listener] token_env names {0}, which is not set or empty")]
    TokenMissing(String),
    #[error("{0}")]
    Access(String),
    #[error("cannot listen on {path}: {source}")]
    Socket {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        #[source]
        source: std::io::Error,
    },
}

/// A bearer token, kept only as its SHA-256 so that comparisons take the
/// same time whatever the input, and the token is never printed.
#[derive(Clone)]
pub struct Token([u8; 32]);

impl Token {
    pub fn new(secret: &str) -> Token {
        Token(Sha256::digest(secret.as_bytes()).into())
    }

    /// Constant-time check of a presented token.
    pub fn admits(&self, presented: &[u8]) -> bool {
        let h: [u8; 32] = Sha256::digest(presented).into();
        h.ct_eq(&self.0).into()
    }
}

impl std::fmt::Debug for Token {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Token(<redacted>)")
    }
}

/// A token bucket: `rate` requests per second, bursts up to `rate`.
pub struct RateLimiter {
    rate: f64,
    state: Mutex<(f64, Instant)>,
}

impl RateLimiter {
    pub fn new(per_second: u32) -> RateLimiter {
        let rate = f64::from(per_second.max(1));
        RateLimiter {
            rate,
            state: Mutex::new((rate, Instant::now())),
        }
    }

    /// Takes one token; false when none is left.
    pub fn admit(&self) -> bool {
        let Ok(mut s) = self.state.lock() else {
            return true;
        };
        let now = Instant::now();
        let refill = now.duration_since(s.1).as_secs_f64() * self.rate;
        s.0 = (s.0 + refill).min(self.rate);
        s.1 = now;
        if s.0 >= 1.0 {
            s.0 -= 1.0;
            true
        } else {
            false
        }
    }
}

/// What the listener needs, resolved from the command line and the config.
pub struct ListenerOptions {
    pub addr: SocketAddr,
    pub token: Option<Token>,
    pub rate_limit: Option<u32>,
    /// Operators' tokens and OS users' roles.
    pub access: crate::access::Access,
    /// Serve the API on `DATA_DIR/vigil.sock` too.
    pub socket: bool,
    /// The group that may connect to the socket (mode 0660).
    pub socket_group: Option<String>,
}

impl ListenerOptions {
    /// `--listen` wins over the config's `listen`; the token comes from the
    /// environment variable `[listener] token_env` names. A non-loopback
    /// address without a token is refused.
    pub fn resolve(flag: Option<&str>, config: &Config) -> Result<ListenerOptions, ListenError> {
        let text = flag.or(config.listen.as_deref()).unwrap_or(DEFAULT_LISTEN);
        let addr: SocketAddr = text
            .parse()
            .map_err(|_| ListenError::BadAddress(text.to_string()))?;
        let token = match &config.listener.token_env {
            Some(var) => match std::env::var(var) {
                Ok(v) if v.trim().len() >= crate::access::MIN_TOKEN_BYTES => {
                    Some(Token::new(v.trim()))
                }
                Ok(v) if !v.trim().is_empty() => {
                    return Err(ListenError::Access(format!(
                        "[listener] token_env {var} holds a token of {} bytes; at least {} are accepted (e.g. `openssl rand -hex 32`)",
                        v.trim().len(),
                        crate::access::MIN_TOKEN_BYTES
                    )));
                }
                _ => return Err(ListenError::TokenMissing(var.clone())),
            },
            None => None,
        };
        if !addr.ip().is_loopback() && token.is_none() {
            return Err(ListenError::ExposedWithoutToken(addr));
        }
        // Off by default on loopback; an exposed listener gets a limit
        // unless the config sets one.
        let rate_limit = config
            .listener
            .rate_limit
            .or((!addr.ip().is_loopback()).then_some(DEFAULT_EXPOSED_RATE));
        let access = crate::access::Access::resolve(&config.operators, &config.access)
            .map_err(|es| {
                ListenError::Access(
                    es.iter()
                        .map(|e| e.to_string())
                        .collect::<Vec<_>>()
                        .join("; "),
                )
            })?
            .with_hub_name(config.operator.clone());
        if let Some(g) = &config.access.socket_group
            && crate::access::group_id(g).is_none()
        {
            return Err(ListenError::Access(format!(
                "[access] socket_group {g:?} is not a group on this machine"
            )));
        }
        Ok(ListenerOptions {
            addr,
            token,
            rate_limit,
            access,
            socket: true,
            socket_group: config.access.socket_group.clone(),
        })
    }
}

/// Everything the routes share.
pub struct Api {
    pub hub: HubHandle,
    pub stats: stats::Stats,
    pub violations: violations::ViolationIndex,
    pub policies: Vec<Policy>,
    pub silencer: silence::Silencer,
    /// The `prometheus` sources, for `GET /api/v1/query` (alert context).
    pub prometheus: Vec<client::PrometheusClient>,
    pub data_dir: PathBuf,
    pub token: Option<Token>,
    pub limiter: Option<RateLimiter>,
    /// The source name given to webhook alerts (the first Alertmanager
    /// source, else `alertmanager`).
    pub webhook_source: String,
    pub board: SourceBoard,
    pub access: crate::access::Access,
    /// The change stream to attached consoles.
    pub feed: Arc<feed::Feed>,
    /// The shared store's inbox (hubs sharing a PostgreSQL store): where a
    /// standby journals the webhooks it accepts.
    pub journal: Option<Arc<journal::Journal>>,
}

impl Api {
    pub fn new(
        hub: HubHandle,
        config: &Config,
        policies: Vec<Policy>,
        data_dir: PathBuf,
        opts: &ListenerOptions,
        board: SourceBoard,
        feed: Arc<feed::Feed>,
    ) -> Api {
        Api {
            access: opts.access.clone(),
            feed,
            silencer: silence::Silencer::new(hub.clone(), &config.sources),
            prometheus: config
                .sources
                .iter()
                .filter(|s| s.kind == SourceKind::Prometheus)
                .map(|s| client::PrometheusClient::new(&s.name, &s.url, s.timeout()))
                .collect(),
            hub,
            stats: stats::Stats::default(),
            violations: violations::ViolationIndex::new(&policies),
            policies,
            data_dir,
            token: opts.token.clone(),
            limiter: opts.rate_limit.map(RateLimiter::new),
            webhook_source: config
                .sources
                .iter()
                .find(|s| s.kind == SourceKind::Alertmanager)
                .map(|s| s.name.clone())
                .unwrap_or_else(|| "alertmanager".into()),
            board,
            journal: crate::store::AnyStore::target(config.store.as_ref())
                .ok()
                .flatten()
                .map(journal::Journal::new),
        }
    }
}

/// Binds the address (so the caller learns of a failure at once).
pub async fn bind(addr: SocketAddr) -> Result<tokio::net::TcpListener, ListenError> {
    tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|source| ListenError::Bind { addr, source })
}

/// Waits until `shutdown` turns true (or its sender is gone).
async fn stopped(mut shutdown: watch::Receiver<bool>) {
    while !*shutdown.borrow() {
        if shutdown.changed().await.is_err() {
            break;
        }
    }
}

/// A client gets this long to send a request's headers, and an idle
/// keep-alive connection is closed after it.
pub const HEADER_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

/// Connections served at once: a share of the descriptors this process
/// may open (the rest are the store's, the executors' and the pollers'),
/// at most 4,096.
pub fn connection_cap() -> usize {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit writes into `lim`, owned here.
    let soft = if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) } == 0 {
        lim.rlim_cur as usize
    } else {
        1024
    };
    (soft / 2).clamp(64, 4096)
}

/// Raises this process's soft descriptor limit to the hard one (done once
/// at start, before the listener sizes itself).
pub fn raise_fd_limit() {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit/setrlimit on this process's own limits.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) == 0 && lim.rlim_cur < lim.rlim_max {
            lim.rlim_cur = lim.rlim_max;
            let _ = libc::setrlimit(libc::RLIMIT_NOFILE, &lim);
        }
    }
}

/// Serves the API on `listener` until `shutdown` turns true (see
/// [`serve_connections`]).
pub async fn serve(
    listener: tokio::net::TcpListener,
    api: Arc<Api>,
    shutdown: watch::Receiver<bool>,
) -> std::io::Result<()> {
    let addr = listener.local_addr()?;
    poll::report(
        &api.board,
        "http listener",
        "listener",
        HealthState::Ok,
        format!("listening on {addr}"),
    );
    serve_connections(listener, api::router(api), None, shutdown).await;
    Ok(())
}

/// Serves `app` on `listener` until `shutdown` turns true: at most
/// [`connection_cap`] connections at once (the rest wait in the kernel's
/// backlog), each given [`HEADER_TIMEOUT`] to send its headers (and, with
/// `tls`, to finish its handshake), so slow or half-sent requests cannot
/// hold the listener. Shared by the hub's API and `vigil agent`.
pub async fn serve_connections(
    listener: tokio::net::TcpListener,
    app: axum::Router,
    tls: Option<tokio_rustls::TlsAcceptor>,
    shutdown: watch::Receiver<bool>,
) {
    let permits = Arc::new(tokio::sync::Semaphore::new(connection_cap()));
    let stop = stopped(shutdown);
    tokio::pin!(stop);
    loop {
        let permit = tokio::select! {
            p = permits.clone().acquire_owned() => match p {
                Ok(p) => p,
                Err(_) => break,
            },
            _ = &mut stop => break,
        };
        let stream = tokio::select! {
            r = listener.accept() => match r {
                Ok((s, _)) => s,
                Err(e) => {
                    // Out of descriptors or similar: wait a little rather
                    // than spin.
                    tracing::warn!("accept failed: {e}");
                    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                    continue;
                }
            },
            _ = &mut stop => break,
        };
        let _ = stream.set_nodelay(true);
        let svc = hyper_util::service::TowerToHyperService::new(app.clone());
        let tls = tls.clone();
        tokio::spawn(async move {
            let _permit = permit;
            let mut b = hyper::server::conn::http1::Builder::new();
            b.timer(hyper_util::rt::TokioTimer::new())
                .header_read_timeout(HEADER_TIMEOUT);
            let Some(acceptor) = tls else {
                let _ = b
                    .serve_connection(hyper_util::rt::TokioIo::new(stream), svc)
                    .await;
                return;
            };
            if let Ok(Ok(s)) = tokio::time::timeout(HEADER_TIMEOUT, acceptor.accept(stream)).await {
                let _ = b
                    .serve_connection(hyper_util::rt::TokioIo::new(s), svc)
                    .await;
            }
        });
    }
}

/// Binds `DATA_DIR/vigil.sock`: mode 0660 (0600 without a group), owned
/// by `group` when one is set. A socket file left by a dead hub is
/// replaced; the caller holds the data dir's lock, so no live hub uses it.
pub fn bind_socket(
    path: &std::path::Path,
    group: Option<&str>,
) -> Result<tokio::net::UnixListener, ListenError> {
    use std::os::unix::fs::{FileTypeExt, PermissionsExt};
    let err = |source| ListenError::Socket {
        path: path.to_path_buf(),
        source,
    };
    match std::fs::symlink_metadata(path) {
        Ok(m) if m.file_type().is_socket() => std::fs::remove_file(path).map_err(err)?,
        Ok(_) => {
            return Err(err(std::io::Error::new(
                std::io::ErrorKind::AlreadyExists,
                "a file that is not a socket is in the way",
            )));
        }
        Err(_) => {}
    }
    let listener = tokio::net::UnixListener::bind(path).map_err(err)?;
    let gid = group.and_then(crate::access::group_id);
    if let Some(gid) = gid {
        std::os::unix::fs::chown(path, None, Some(gid)).map_err(err)?;
        // The group may pass through the data dir to reach the socket, and
        // do nothing else there: 0710 (the store stays the hub's own).
        if let Some(dir) = path.parent() {
            std::os::unix::fs::chown(dir, None, Some(gid)).map_err(err)?;
            std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o710)).map_err(err)?;
        }
    }
    let mode = if gid.is_some() { 0o660 } else { 0o600 };
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).map_err(err)?;
    Ok(listener)
}

/// Serves the API on the unix socket until `shutdown`; the actor of every
/// request is the peer's OS user.
pub async fn serve_socket(
    listener: tokio::net::UnixListener,
    api: Arc<Api>,
    shutdown: watch::Receiver<bool>,
) -> std::io::Result<()> {
    let app = api::socket_router(api);
    axum::serve(
        listener,
        app.into_make_service_with_connect_info::<api::Peer>(),
    )
    .with_graceful_shutdown(stopped(shutdown))
    .await
}

/// What [`start`] brought up.
pub struct Started {
    pub api: Arc<Api>,
    /// The TCP listener's address, or why it is not listening.
    pub tcp: Result<SocketAddr, ListenError>,
    /// The unix socket, when it serves.
    pub socket: Option<PathBuf>,
}

/// Starts the pollers, the change feed, the unix socket (when asked) and
/// the TCP listener. A unix socket that cannot be bound is an error; a TCP
/// address that cannot be bound is reported in `tcp` (and on the source
/// board as Down).
pub async fn start(
    hub: HubHandle,
    config: &Config,
    policies: Vec<Policy>,
    data_dir: PathBuf,
    opts: ListenerOptions,
    board: SourceBoard,
    shutdown: watch::Receiver<bool>,
) -> Result<Started, ListenError> {
    let vitals = hub.vitals.clone();
    let pollers = poll::spawn_pollers(
        &config.sources,
        hub.events.clone(),
        board.clone(),
        shutdown.clone(),
    );
    for (name, task) in pollers {
        vitals.watch(&format!("source {name}"), shutdown.clone(), task);
    }
    let rules = rules::spawn_rules(
        &config.sources,
        &policies,
        hub.events.clone(),
        board.clone(),
        shutdown.clone(),
    );
    // One task per prometheus source, in the config's order.
    let proms = config
        .sources
        .iter()
        .filter(|s| s.kind == SourceKind::Prometheus);
    for (s, task) in proms.zip(rules) {
        vitals.watch(&format!("queries {}", s.name), shutdown.clone(), task);
    }
    let feed = feed::Feed::spawn(hub.snapshots.clone(), shutdown.clone(), &vitals);
    let api = Arc::new(Api::new(
        hub,
        config,
        policies,
        data_dir.clone(),
        &opts,
        board.clone(),
        feed,
    ));
    if let Some(j) = &api.journal {
        vitals.spawn(
            "shared inbox",
            shutdown.clone(),
            journal::drain_inbox(j.clone(), api.hub.clone(), shutdown.clone()),
        );
    }
    let mut socket = None;
    if opts.socket {
        let path = data_dir.join(crate::owner::SOCKET_FILE);
        let l = bind_socket(&path, opts.socket_group.as_deref())?;
        let served = api.clone();
        let stop = shutdown.clone();
        vitals.spawn(
            "unix socket",
            shutdown.clone(),
            serve_socket(l, served, stop),
        );
        socket = Some(path);
    }
    let tcp = match bind(opts.addr).await {
        Ok(listener) => {
            let addr = listener.local_addr().unwrap_or(opts.addr);
            let served = api.clone();
            let stopping = shutdown.clone();
            vitals.spawn("http listener", stopping, async move {
                let r = serve(listener, served.clone(), shutdown).await;
                if let Err(e) = &r {
                    poll::report(
                        &served.board,
                        "http listener",
                        "listener",
                        HealthState::Down,
                        e.to_string(),
                    );
                }
                r
            });
            Ok(addr)
        }
        Err(e) => {
            poll::report(
                &board,
                "http listener",
                "listener",
                HealthState::Down,
                e.to_string(),
            );
            Err(e)
        }
    };
    Ok(Started { api, tcp, socket })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn token_compare_and_redaction() {
        let t = Token::new("s3cret");
        assert!(t.admits(b"s3cret"));
        assert!(!t.admits(b"s3cres"));
        assert!(!t.admits(b""));
        assert_eq!(format!("{t:?}"), "Token(<redacted>)");
    }

    #[test]
    fn exposed_address_needs_a_token() {
        let c = Config::default();
        let e = ListenerOptions::resolve(Some("0.0.0.0:9797"), &c)
            .err()
            .unwrap();
        assert!(matches!(e, ListenError::ExposedWithoutToken(_)), "{e}");
        let o = ListenerOptions::resolve(Some("127.0.0.1:0"), &c).unwrap();
        assert_eq!(o.rate_limit, None);
        assert!(ListenerOptions::resolve(Some("[::1]:0"), &c).is_ok());
        assert!(ListenerOptions::resolve(Some("nowhere"), &c).is_err());
    }

    #[test]
    fn rate_limiter_refuses_past_the_burst() {
        let l = RateLimiter::new(5);
        let admitted = (0..20).filter(|_| l.admit()).count();
        assert!((5..=6).contains(&admitted), "{admitted}");
    }
}
