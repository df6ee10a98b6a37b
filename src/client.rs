//! The console's only way to the hub: the HTTP API, over the hub's unix
//! socket (`DATA_DIR/vigil.sock`, identity = this OS user) or over TCP
//! with a bearer token (`vigil --connect URL`). A console that started its
//! own hub uses it the same way, through the socket.
//!
//! It follows the change stream into a local snapshot (a watch channel the
//! console draws from), carries intents out as API calls and says when
//! the hub is gone (then reconnects). It never opens the store, never calls
//! the engine and never calls Alertmanager.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use serde_json::{Value, json};
use tokio::sync::{mpsc, watch};

use crate::access::{Identity, Role};
use crate::analysis::assess::Assessment;
use crate::engine::Suggestion;
use crate::hub::{Link, Snapshot};
use crate::model::Record;
use crate::store::AuditFilter;
use crate::stream::{Line, apply};

/// Where the hub is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Endpoint {
    /// The hub's unix socket.
    Socket(PathBuf),
    /// A hub over TCP: base URL and the operator's token.
    Http { url: String, token: Option<String> },
}

impl Endpoint {
    /// `--connect` text: a URL (`http://host:port`) or a socket path.
    pub fn parse(text: &str, token: Option<String>) -> Result<Endpoint, String> {
        let t = text.trim();
        if t.starts_with("http://") || t.starts_with("https://") {
            let url = t.trim_end_matches('/').to_string();
            reqwest::Url::parse(&url).map_err(|e| format!("--connect {t:?}: {e}"))?;
            Ok(Endpoint::Http { url, token })
        } else if let Some(p) = t.strip_prefix("unix:") {
            Ok(Endpoint::Socket(PathBuf::from(p)))
        } else if t.starts_with('/') || t.starts_with('.') {
            Ok(Endpoint::Socket(PathBuf::from(t)))
        } else {
            Err(format!(
                "--connect {t:?} is neither a URL (http://HOST:PORT) nor a socket path (/path/vigil.sock)"
            ))
        }
    }

    fn label(&self) -> String {
        match self {
            Endpoint::Socket(p) => p.display().to_string(),
            Endpoint::Http { url, .. } => url.clone(),
        }
    }
}

/// A client of one hub.
#[derive(Clone)]
pub struct HubClient {
    http: reqwest::Client,
    /// Streams: no overall timeout.
    streaming: reqwest::Client,
    base: String,
    token: Option<String>,
    cap: Option<Role>,
    label: String,
}

const SHORT: Duration = Duration::from_secs(10);
/// The hub publishes at least every 15 s; a stream silent for longer than
/// this is taken as lost.
const SILENCE_LIMIT: Duration = Duration::from_secs(40);

/// The reason at the bottom of a request error ("Connection refused"),
/// which is what a person needs; the request's URL says nothing new.
fn text_error(e: reqwest::Error) -> String {
    let timeout = e.is_timeout();
    let mut last: &dyn std::error::Error = &e;
    while let Some(x) = last.source() {
        last = x;
    }
    let reason = last.to_string();
    if timeout {
        format!("timed out ({reason})")
    } else {
        reason
    }
}

impl HubClient {
    /// A client of the hub at `endpoint`; `read_only` attaches as a viewer
    /// whatever this user may do.
    pub fn new(endpoint: &Endpoint, read_only: bool) -> Result<HubClient, String> {
        // `timeout` is `None` for the change stream, which is bounded by
        // its own idle limit instead.
        let build = |timeout: Option<Duration>| {
            crate::net::client(crate::net::HttpOptions {
                connect_timeout: Duration::from_secs(3),
                timeout,
                // Below the hub's idle keep-alive limit (10 s), so a pooled
                // connection is not reused just as the hub closes it.
                pool_idle_timeout: Some(Duration::from_secs(5)),
                unix_socket: match endpoint {
                    Endpoint::Socket(p) => Some(p.clone()),
                    Endpoint::Http { .. } => None,
                },
                tls: None,
            })
        };
        let (base, token) = match endpoint {
            // The host is ignored over a unix socket.
            Endpoint::Socket(_) => ("http://vigil.sock".to_string(), None),
            Endpoint::Http { url, token } => (url.clone(), token.clone()),
        };
        Ok(HubClient {
            http: build(Some(SHORT))?,
            streaming: build(None)?,
            base,
            token,
            cap: read_only.then_some(Role::Viewer),
            label: endpoint.label(),
        })
    }

    /// What the console is attached to, for the status bar.
    pub fn label(&self) -> &str {
        &self.label
    }

    fn req(
        &self,
        c: &reqwest::Client,
        method: reqwest::Method,
        path: &str,
    ) -> reqwest::RequestBuilder {
        let mut r = c.request(method, format!("{}{path}", self.base));
        if let Some(t) = &self.token {
            r = r.bearer_auth(t);
        }
        if let Some(role) = self.cap {
            r = r.header("x-vigil-role", role.as_str());
        }
        r
    }

    /// Sends a request; the hub's JSON answer, or its error message.
    async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> Result<Value, String> {
        let mut r = self.req(&self.http, method, path);
        if let Some(b) = body {
            r = r.json(&b);
        }
        let resp = r.send().await.map_err(text_error)?;
        let status = resp.status();
        let v: Value = resp.json().await.unwrap_or(Value::Null);
        if status.is_success() {
            Ok(v)
        } else {
            Err(v
                .get("error")
                .and_then(Value::as_str)
                .map(str::to_string)
                .unwrap_or_else(|| format!("the hub answered {status}")))
        }
    }

    /// Who the hub says this client is.
    pub async fn whoami(&self) -> Result<Identity, String> {
        let v = self
            .call(reqwest::Method::GET, "/api/v1/whoami", None)
            .await?;
        serde_json::from_value(v).map_err(|e| format!("unexpected answer to whoami: {e}"))
    }

    pub async fn approve(&self, id: &str) -> Result<(), String> {
        self.call(
            reqwest::Method::POST,
            &format!("/api/v1/actions/{id}/approve"),
            Some(json!({})),
        )
        .await
        .map(drop)
    }

    pub async fn reject(&self, id: &str, reason: &str) -> Result<(), String> {
        self.call(
            reqwest::Method::POST,
            &format!("/api/v1/actions/{id}/reject"),
            Some(json!({ "reason": reason })),
        )
        .await
        .map(drop)
    }

    /// Proposes a manual run as this client's operator.
    pub async fn run(
        &self,
        runbook: &str,
        target: &str,
        params: &std::collections::BTreeMap<String, String>,
    ) -> Result<(), String> {
        self.call(
            reqwest::Method::POST,
            "/api/v1/run",
            Some(json!({ "runbook": runbook, "target": target, "params": params })),
        )
        .await
        .map(drop)
    }

    /// Proposes an alert's runbook again.
    pub async fn repropose(&self, fingerprint: &str) -> Result<(), String> {
        self.call(
            reqwest::Method::POST,
            &format!("/api/v1/alerts/{fingerprint}/repropose"),
            Some(json!({})),
        )
        .await
        .map(drop)
    }

    /// Proposes the runbook the alert's analysis recommends (parameters
    /// from the analysis).
    pub async fn propose_recommended(
        &self,
        fingerprint: &str,
        runbook: &str,
    ) -> Result<(), String> {
        self.call(
            reqwest::Method::POST,
            &format!("/api/v1/alerts/{fingerprint}/propose"),
            Some(json!({ "runbook": runbook })),
        )
        .await
        .map(drop)
    }

    pub async fn set_dry_run(&self, on: bool) -> Result<(), String> {
        self.call(
            reqwest::Method::POST,
            "/api/v1/modes",
            Some(json!({ "dry_run": on })),
        )
        .await
        .map(drop)
    }

    pub async fn set_frozen(&self, on: bool) -> Result<(), String> {
        self.call(
            reqwest::Method::POST,
            "/api/v1/modes",
            Some(json!({ "frozen": on })),
        )
        .await
        .map(drop)
    }

    pub async fn reset_breaker(&self, runbook: &str, target: &str) -> Result<(), String> {
        self.call(
            reqwest::Method::POST,
            "/api/v1/breakers/reset",
            Some(json!({ "runbook": runbook, "target": target })),
        )
        .await
        .map(drop)
    }

    /// Silences an alert; the hub's answer (where the silence was made).
    pub async fn silence(
        &self,
        fingerprint: &str,
        duration: &str,
        comment: &str,
    ) -> Result<Value, String> {
        self.call(
            reqwest::Method::POST,
            &format!("/api/v1/alerts/{fingerprint}/silence"),
            Some(json!({ "duration": duration, "comment": comment })),
        )
        .await
    }

    pub async fn unsilence(&self, fingerprint: &str) -> Result<Value, String> {
        self.call(
            reqwest::Method::POST,
            &format!("/api/v1/alerts/{fingerprint}/unsilence"),
            Some(json!({})),
        )
        .await
    }

    pub async fn suggestions(&self, fingerprint: &str) -> Result<Vec<Suggestion>, String> {
        self.suggestions_and_assessment(fingerprint)
            .await
            .map(|(s, _)| s)
    }

    /// The suggestions for an alert and the weighed facts behind its
    /// analysis.
    pub async fn suggestions_and_assessment(
        &self,
        fingerprint: &str,
    ) -> Result<(Vec<Suggestion>, Option<Arc<Assessment>>), String> {
        let v = self
            .call(
                reqwest::Method::GET,
                &format!("/api/v1/alerts/{fingerprint}/suggestions"),
                None,
            )
            .await?;
        let s = serde_json::from_value(v.get("suggestions").cloned().unwrap_or(Value::Null))
            .map_err(|e| format!("unexpected suggestions: {e}"))?;
        let a = serde_json::from_value(v.get("assessment").cloned().unwrap_or(Value::Null))
            .map_err(|e| format!("unexpected assessment: {e}"))?;
        Ok((s, a))
    }

    /// A page of the trail, newest first, before `before`.
    pub async fn audit_page(
        &self,
        filter: &AuditFilter,
        before: Option<u64>,
        limit: usize,
        count: bool,
    ) -> Result<(Vec<Record>, Option<u64>), String> {
        let mut q: Vec<(&str, String)> = vec![("limit", limit.to_string())];
        if let Some(b) = before {
            q.push(("before", b.to_string()));
        }
        if count {
            q.push(("count", "1".into()));
        }
        for (k, v) in [
            ("target", &filter.target),
            ("runbook", &filter.runbook),
            ("kind", &filter.kind),
            ("actor", &filter.actor),
        ] {
            if let Some(v) = v {
                q.push((k, v.clone()));
            }
        }
        let mut url = reqwest::Url::parse(&format!("{}/api/v1/audit/page", self.base))
            .map_err(|e| e.to_string())?;
        url.query_pairs_mut()
            .extend_pairs(q.iter().map(|(k, v)| (*k, v.as_str())));
        let path = format!("/api/v1/audit/page?{}", url.query().unwrap_or(""));
        let resp = self
            .req(&self.http, reqwest::Method::GET, &path)
            .send()
            .await
            .map_err(text_error)?;
        let status = resp.status();
        let v: Value = resp.json().await.map_err(text_error)?;
        if !status.is_success() {
            return Err(v["error"].as_str().unwrap_or("audit page refused").into());
        }
        let records: Vec<Record> = serde_json::from_value(v["records"].clone())
            .map_err(|e| format!("unexpected audit page: {e}"))?;
        Ok((records, v["total"].as_u64()))
    }

    /// Writes the whole trail as JSON lines to a new file `path` (never
    /// overwrites; mode 0600). Returns the number of records.
    pub async fn export(&self, path: &Path) -> Result<u64, String> {
        use std::io::Write;
        use std::os::unix::fs::OpenOptionsExt;
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(path)
            .map_err(|e| {
                if e.kind() == std::io::ErrorKind::AlreadyExists {
                    format!("{} exists; export writes a new file only", path.display())
                } else {
                    format!("cannot create {}: {e}", path.display())
                }
            })?;
        let mut resp = self
            .req(
                &self.streaming,
                reqwest::Method::GET,
                "/api/v1/audit/export",
            )
            .send()
            .await
            .map_err(text_error)?;
        if !resp.status().is_success() {
            return Err(format!("the hub refused the export: {}", resp.status()));
        }
        let mut lines = 0u64;
        while let Some(chunk) = resp.chunk().await.map_err(text_error)? {
            lines += chunk.iter().filter(|b| **b == b'\n').count() as u64;
            f.write_all(&chunk)
                .map_err(|e| format!("cannot write {}: {e}", path.display()))?;
        }
        f.sync_all()
            .map_err(|e| format!("cannot write {}: {e}", path.display()))?;
        Ok(lines)
    }

    /// Follows the hub's change stream into a snapshot channel, for as
    /// long as the receiver lives; reconnects when the hub goes away.
    /// `focus` is the alert whose runbook suggestions the console shows.
    pub fn follow(
        &self,
        first: Arc<Snapshot>,
        owns_hub: bool,
        focus: watch::Receiver<Option<String>>,
    ) -> watch::Receiver<Arc<Snapshot>> {
        let (tx, rx) = watch::channel(first);
        let me = self.clone();
        tokio::spawn(async move { me.follow_loop(tx, owns_hub, focus).await });
        rx
    }

    async fn follow_loop(
        self,
        tx: watch::Sender<Arc<Snapshot>>,
        owns_hub: bool,
        mut focus: watch::Receiver<Option<String>>,
    ) {
        let mut backoff = Duration::from_millis(200);
        let mut identity: Option<Identity> = None;
        loop {
            let lost = match self
                .stream_once(&tx, owns_hub, &mut focus, &mut identity)
                .await
            {
                Ok(()) => "the hub closed the connection".to_string(),
                Err(e) => e,
            };
            if tx.is_closed() {
                return;
            }
            let mut s = (**tx.borrow()).clone();
            let was_up = s.link.as_ref().is_some_and(|l| l.up);
            s.link = Some(Link {
                to: self.label.clone(),
                me: identity.clone(),
                owns_hub,
                up: false,
                problem: Some(lost.clone()),
            });
            if was_up {
                tracing::warn!(to = %self.label, "lost the hub: {lost}");
                backoff = Duration::from_millis(200);
            }
            let _ = tx.send(Arc::new(s));
            tokio::time::sleep(backoff).await;
            backoff = (backoff * 2).min(Duration::from_secs(2));
        }
    }

    /// One connection: the snapshot, then deltas until it ends.
    async fn stream_once(
        &self,
        tx: &watch::Sender<Arc<Snapshot>>,
        owns_hub: bool,
        focus: &mut watch::Receiver<Option<String>>,
        identity: &mut Option<Identity>,
    ) -> Result<(), String> {
        let resp = self
            .req(&self.streaming, reqwest::Method::GET, "/api/v1/stream")
            .send()
            .await
            .map_err(|e| format!("cannot reach the hub at {}: {}", self.label, text_error(e)))?;
        if !resp.status().is_success() {
            let status = resp.status();
            let v: Value = resp.json().await.unwrap_or(Value::Null);
            return Err(v["error"]
                .as_str()
                .map(|e| format!("the hub refused: {e}"))
                .unwrap_or_else(|| format!("the hub answered {status}")));
        }
        // Lines are read on a task of their own so that waiting for one
        // can be combined with the other things this loop waits for.
        let (line_tx, mut lines) = mpsc::channel::<Result<Vec<u8>, String>>(64);
        let reader = tokio::spawn(read_lines(resp, line_tx));
        let _stop_reader = AbortOnDrop(reader);
        let mut version = 0u64;
        let mut fetch_due: Option<tokio::time::Instant> = Some(tokio::time::Instant::now());
        loop {
            let fetch = async {
                match fetch_due {
                    Some(t) => tokio::time::sleep_until(t).await,
                    None => std::future::pending::<()>().await,
                }
            };
            tokio::select! {
                got = tokio::time::timeout(SILENCE_LIMIT, lines.recv()) => {
                    let line = match got {
                        Err(_) => return Err(format!("no word from the hub for {}s", SILENCE_LIMIT.as_secs())),
                        Ok(None) => return Ok(()),
                        Ok(Some(Err(e))) => return Err(e),
                        Ok(Some(Ok(l))) => l,
                    };
                    let parsed = if line.len() > 64 * 1024 {
                        tokio::task::spawn_blocking(move || serde_json::from_slice::<Line>(&line))
                            .await
                            .map_err(|e| e.to_string())?
                    } else {
                        serde_json::from_slice::<Line>(&line)
                    };
                    let parsed = parsed.map_err(|e| format!("the hub sent a line this console cannot read: {e}"))?;
                    let prev = tx.borrow().clone();
                    let next = match parsed {
                        Line::Snapshot { version: v, you, presence, snapshot } => {
                            version = v;
                            *identity = Some(you.clone());
                            let mut s = (*snapshot).clone();
                            s.presence = presence;
                            s.focus = prev.focus.clone();
                            s.suggestions = prev.suggestions.clone();
                            s.assessment = prev.assessment.clone();
                            s.link = Some(Link {
                                to: self.label.clone(),
                                me: Some(you),
                                owns_hub,
                                up: true,
                                problem: None,
                            });
                            s
                        }
                        Line::Delta { version: v, delta } => {
                            if version == 0 || v != version + 1 {
                                return Err(format!("missed a change (got {v} after {version})"));
                            }
                            version = v;
                            apply(&prev, *delta)
                        }
                    };
                    if next.focus.is_some() && fetch_due.is_none() {
                        fetch_due = Some(tokio::time::Instant::now() + Duration::from_millis(300));
                    }
                    if tx.send(Arc::new(next)).is_err() {
                        return Ok(());
                    }
                }
                changed = focus.changed() => {
                    if changed.is_err() {
                        return Ok(());
                    }
                    let fp = focus.borrow_and_update().clone();
                    let mut s = (**tx.borrow()).clone();
                    s.focus = fp;
                    s.suggestions = Vec::new();
                    s.assessment = None;
                    let _ = tx.send(Arc::new(s));
                    fetch_due = Some(tokio::time::Instant::now());
                }
                _ = fetch => {
                    fetch_due = None;
                    let fp = tx.borrow().focus.clone();
                    if let Some(fp) = fp
                        && let Ok((list, assessment)) = self.suggestions_and_assessment(&fp).await
                    {
                        let mut s = (**tx.borrow()).clone();
                        if s.focus.as_deref() == Some(fp.as_str()) {
                            s.suggestions = list;
                            s.assessment = assessment;
                            let _ = tx.send(Arc::new(s));
                        }
                    }
                }
            }
        }
    }
}

struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Splits the response body into lines.
async fn read_lines(mut resp: reqwest::Response, out: mpsc::Sender<Result<Vec<u8>, String>>) {
    let mut buf: Vec<u8> = Vec::new();
    loop {
        match resp.chunk().await {
            Ok(Some(chunk)) => {
                // Only the new bytes are searched: a large first line comes
                // in many chunks.
                let mut from = buf.len();
                buf.extend_from_slice(&chunk);
                while let Some(i) = buf[from..].iter().position(|b| *b == b'\n') {
                    let rest = buf.split_off(from + i + 1);
                    let mut line = std::mem::replace(&mut buf, rest);
                    line.pop();
                    from = 0;
                    if !line.is_empty() && out.send(Ok(line)).await.is_err() {
                        return;
                    }
                }
            }
            Ok(None) => return,
            Err(e) => {
                let _ = out
                    .send(Err(format!(
                        "the connection to the hub broke: {}",
                        text_error(e)
                    )))
                    .await;
                return;
            }
        }
    }
}

/// Is a hub serving on `socket`? (A connect that succeeds.)
pub fn hub_listening(socket: &Path) -> bool {
    std::os::unix::net::UnixStream::connect(socket).is_ok()
}
