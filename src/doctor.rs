//! `vigil doctor`: tries everything the config points at, from this
//! machine, and says for each whether it works, why not, and the fix.
//! Hosts (a fresh ssh connection in BatchMode running `true`, the job
//! API of an http host, `true` for a local one), sources (an Alertmanager's
//! silences, a Prometheus query, and each PromQL policy's expression) and
//! escalation targets (reachable, key set; nothing is sent, nobody is paged).
//!
//! The checks are a list of [`Probe`]s: a new host kind adds one arm to
//! [`host_probe`], a new kind of target one probe.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::config::HostEntry;
use crate::config::{Config, EscalationKind, SourceKind, SourceSpec};
use crate::exec::HostExecutor;
use crate::exec::http::HttpTarget;
use crate::exec::ssh::{SshTarget, ssh_reason};
use crate::ingest::client::{AlertmanagerClient, PrometheusClient};
use crate::net::http_client;
use crate::policy::Policy;

/// The result of one probe: what was tried, ok or not, why, and the fix.
#[derive(Debug, Clone, PartialEq)]
pub struct Finding {
    pub check: String,
    pub ok: bool,
    pub reason: String,
    pub fix: String,
}

impl Finding {
    fn ok(check: &str, reason: String) -> Finding {
        Finding {
            check: check.into(),
            ok: true,
            reason,
            fix: String::new(),
        }
    }
    fn fail(check: &str, reason: String, fix: String) -> Finding {
        Finding {
            check: check.into(),
            ok: false,
            reason,
            fix,
        }
    }
}

pub type ProbeFuture<'a> = Pin<Box<dyn Future<Output = Vec<Finding>> + Send + 'a>>;

/// One thing `vigil doctor` tries; it reports one finding or more (a
/// Prometheus source, then each PromQL policy it evaluates).
pub trait Probe: Send + Sync {
    fn run(&self) -> ProbeFuture<'_>;
}

/// An error and its causes on one line (reqwest hides the cause:
/// "connection refused" is in the chain).
pub fn error_chain(e: &dyn std::error::Error) -> String {
    // reqwest names the whole URL (with the query); the check names it
    // already.
    let drop_url = |t: String| match (t.find(" for url ("), t.rfind(')')) {
        (Some(a), Some(b)) if b > a => format!("{}{}", &t[..a], &t[b + 1..]),
        _ => t,
    };
    let mut s = drop_url(e.to_string());
    let mut cur = e.source();
    while let Some(c) = cur {
        let t = drop_url(c.to_string());
        if !s.contains(&t) {
            s.push_str(": ");
            s.push_str(&t);
        }
        cur = c.source();
    }
    s
}

/// The probe for a host, by how Vigil reaches it (None: simulated).
pub fn host_probe(h: &HostEntry) -> Option<Box<dyn Probe>> {
    let check = |kind: &str| format!("host {} ({kind})", h.name);
    match crate::exec::host_executor(h) {
        Err(es) => Some(Box::new(Fixed(Finding::fail(
            &check(h.executor.as_deref().unwrap_or("?")),
            es.iter()
                .map(|e| e.to_string())
                .collect::<Vec<_>>()
                .join("; "),
            "correct [[hosts]] (vigil check names the line)".into(),
        )))),
        Ok(Some(HostExecutor::Ssh(t))) => Some(Box::new(SshProbe {
            check: check(&format!("ssh {}", t.address())),
            name: h.name.clone(),
            target: t,
        })),
        Ok(Some(HostExecutor::Http(t))) => Some(Box::new(HttpHostProbe {
            check: check(&format!("http {}", t.url)),
            target: t,
        })),
        Ok(Some(HostExecutor::Local)) => Some(Box::new(LocalProbe {
            check: check("local"),
        })),
        Ok(None) => None,
    }
}

/// Every probe for `config`: hosts, sources (and their PromQL policies),
/// escalation targets.
pub fn probes(config: &Config, policies: &[Policy]) -> Vec<Box<dyn Probe>> {
    let mut out: Vec<Box<dyn Probe>> = Vec::new();
    out.extend(config.hosts.iter().filter_map(host_probe));
    for s in &config.sources {
        let queries = policies
            .iter()
            .filter_map(|p| {
                let q = p.query.as_ref()?;
                (config.query_source(p)?.name == s.name).then(|| {
                    (
                        p.name.clone(),
                        q.queries.iter().map(|(_, e)| e.clone()).collect(),
                    )
                })
            })
            .collect();
        out.push(Box::new(SourceProbe {
            spec: s.clone(),
            queries,
        }));
    }
    for e in &config.escalation {
        out.push(Box::new(EscalationProbe { spec: e.clone() }));
    }
    out
}

/// Runs the probes at once; findings in the probes' order.
pub async fn run(probes: Vec<Box<dyn Probe>>) -> Vec<Finding> {
    let probes: Vec<Arc<dyn Probe>> = probes.into_iter().map(Arc::from).collect();
    let tasks: Vec<_> = probes
        .iter()
        .cloned()
        .map(|p| tokio::spawn(async move { p.run().await }))
        .collect();
    let mut out = Vec::new();
    for t in tasks {
        match t.await {
            Ok(f) => out.extend(f),
            Err(e) => out.push(Finding::fail(
                "probe",
                format!("the probe stopped: {e}"),
                String::new(),
            )),
        }
    }
    out
}

/// The findings as a table: CHECK, RESULT, then the reason, and the fix on
/// the line below a failure.
pub fn table(findings: &[Finding]) -> String {
    let w = findings
        .iter()
        .map(|f| f.check.chars().count())
        .max()
        .unwrap_or(5)
        .max(5);
    let mut s = format!("{:<w$}  {:<6}  REASON (and FIX)\n", "CHECK", "RESULT");
    for f in findings {
        let reason = f.reason.replace('\n', " ");
        s.push_str(&format!(
            "{:<w$}  {:<6}  {reason}\n",
            f.check,
            if f.ok { "ok" } else { "FAIL" }
        ));
        if !f.ok && !f.fix.is_empty() {
            s.push_str(&format!("{:<w$}  {:<6}  fix: {}\n", "", "", f.fix));
        }
    }
    s
}

/// A probe with one finding.
trait Single: Send + Sync {
    fn once(&self) -> impl Future<Output = Finding> + Send;
}

impl<T: Single> Probe for T {
    fn run(&self) -> ProbeFuture<'_> {
        Box::pin(async move { vec![self.once().await] })
    }
}

struct Fixed(Finding);

impl Probe for Fixed {
    fn run(&self) -> ProbeFuture<'_> {
        let f = self.0.clone();
        Box::pin(async move { vec![f] })
    }
}

/// ssh's own reason (its last stderr lines) and what usually fixes it.
pub fn ssh_fix(reason: &str, t: &SshTarget) -> String {
    let r = reason.to_ascii_lowercase();
    let user = t.user.clone().unwrap_or_else(|| "the ssh user".into());
    let key = t
        .identity
        .as_ref()
        .map(|p| format!("{}.pub", p.display()))
        .unwrap_or_else(|| "the hub user's public key".into());
    if r.contains("permission denied") {
        format!(
            "add {key} to ~{user}/.ssh/authorized_keys on {} (and check [hosts.ssh] user and identity)",
            t.host
        )
    } else if r.contains("host key verification failed") || r.contains("no matching host key") {
        format!(
            "add the host key to known_hosts after checking its fingerprint: ssh-keyscan{} {} >> {}",
            t.port.map(|p| format!(" -p {p}")).unwrap_or_default(),
            t.host,
            t.known_hosts
                .as_ref()
                .map(|p| p.display().to_string())
                .unwrap_or_else(|| "~/.ssh/known_hosts".into())
        )
    } else if r.contains("host key for") && r.contains("has changed") {
        "the host's key changed: find out why before replacing its known_hosts line (ssh-keygen -R HOST)".into()
    } else if r.contains("connection refused") {
        format!("start sshd on {} or correct [hosts.ssh] port", t.host)
    } else if r.contains("timed out") || r.contains("no route") || r.contains("unreachable") {
        format!(
            "check the network path and firewall to {} (or proxy_jump)",
            t.host
        )
    } else if r.contains("could not resolve") || r.contains("name or service not known") {
        "correct [hosts.ssh] host (an address or a name this machine resolves)".into()
    } else if r.contains("unprotected private key") || r.contains("bad permissions") {
        t.identity
            .as_ref()
            .map(|p| format!("chmod 600 {}", p.display()))
            .unwrap_or_else(|| "chmod 600 the private key".into())
    } else if r.contains("no such file") || r.contains("load key") {
        "correct [hosts.ssh] identity (an absolute path to the private key the hub's user can read)"
            .into()
    } else {
        format!(
            "try it by hand as the hub's user: ssh -o BatchMode=yes {} true",
            t.address()
        )
    }
}

struct SshProbe {
    check: String,
    name: String,
    target: SshTarget,
}

impl Single for SshProbe {
    async fn once(&self) -> Finding {
        {
            // A directory with no master in it: the probe opens its own
            // connection, whatever the hub shares.
            let dir = std::env::temp_dir().join(format!("vigil-doctor-{}", std::process::id()));
            let argv = self.target.probe_command(&dir);
            let started = Instant::now();
            let limit = Duration::from_secs(self.target.connect_timeout + 10);
            let run = tokio::process::Command::new(&argv[0])
                .args(&argv[1..])
                .env_clear()
                .envs(crate::exec::ssh::client_env())
                .stdin(std::process::Stdio::null())
                .kill_on_drop(true)
                .output();
            match tokio::time::timeout(limit, run).await {
                Err(_) => Finding::fail(
                    &self.check,
                    format!("no answer within {} s", limit.as_secs()),
                    ssh_fix("timed out", &self.target),
                ),
                Ok(Err(e)) => Finding::fail(
                    &self.check,
                    format!("cannot run ssh: {e}"),
                    "install the OpenSSH client (apt-get install openssh-client)".into(),
                ),
                Ok(Ok(o)) if o.status.success() => Finding::ok(
                    &self.check,
                    format!(
                        "ran `true` as {} in {:.2} s",
                        self.target.user.as_deref().unwrap_or("the default user"),
                        started.elapsed().as_secs_f64()
                    ),
                ),
                Ok(Ok(o)) => {
                    let reason = ssh_reason(&o.stderr, o.status.code());
                    Finding::fail(
                        &self.check,
                        format!("{} ({}): {reason}", self.name, self.target.address()),
                        ssh_fix(&reason, &self.target),
                    )
                }
            }
        }
    }
}

struct LocalProbe {
    check: String,
}

impl Single for LocalProbe {
    async fn once(&self) -> Finding {
        {
            match tokio::process::Command::new("true").status().await {
                Ok(s) if s.success() => Finding::ok(&self.check, "ran `true` here".into()),
                Ok(s) => Finding::fail(&self.check, format!("`true` exited {s}"), String::new()),
                Err(e) => Finding::fail(
                    &self.check,
                    format!("cannot start a process: {e}"),
                    "check the hub user's limits and PATH".into(),
                ),
            }
        }
    }
}

struct HttpHostProbe {
    check: String,
    target: HttpTarget,
}

impl Single for HttpHostProbe {
    async fn once(&self) -> Finding {
        {
            // A job id that cannot exist: 404 says the API is there and
            // took the token.
            let url = format!("{}/jobs/vigil-doctor-probe", self.target.url);
            // A pinned certificate is checked as the executor checks it.
            let client = match &self.target.pin {
                Some(p) => p.client.clone(),
                None => match http_client(Duration::from_secs(10)) {
                    Ok(c) => c,
                    Err(e) => {
                        return Finding::fail(
                            &self.check,
                            e,
                            "the HTTP client cannot be set up on this machine (see the reason)"
                                .into(),
                        );
                    }
                },
            };
            let mut req = client.get(&url).timeout(Duration::from_secs(10));
            if let Some(t) = &self.target.token {
                req = req.bearer_auth(&t.0);
            }
            match req.send().await {
                Err(e) => Finding::fail(
                    &self.check,
                    format!("GET {url}: {}", error_chain(&e)),
                    "start the job API on that host, or correct [hosts.http] url".into(),
                ),
                Ok(r) if matches!(r.status().as_u16(), 401 | 403) => Finding::fail(
                    &self.check,
                    format!("GET {url}: HTTP {} (the token was refused)", r.status()),
                    "set [hosts.http] token_env to the variable holding the API's token".into(),
                ),
                Ok(r) if r.status().is_server_error() => Finding::fail(
                    &self.check,
                    format!("GET {url}: HTTP {}", r.status()),
                    "look at the job API's own log".into(),
                ),
                Ok(r) => Finding::ok(
                    &self.check,
                    format!(
                        "the job API answered HTTP {} to GET {url}",
                        r.status().as_u16()
                    ),
                ),
            }
        }
    }
}

struct SourceProbe {
    spec: SourceSpec,
    /// The PromQL policies it evaluates: (name, queries).
    queries: Vec<(String, Vec<String>)>,
}

impl Probe for SourceProbe {
    fn run(&self) -> ProbeFuture<'_> {
        Box::pin(async move {
            let first = self.reach().await;
            let mut out = vec![first.clone()];
            // A source that does not answer fails its policies too; they
            // are not listed one by one.
            if first.ok {
                for (name, queries) in &self.queries {
                    out.push(self.policy(name, queries).await);
                }
            }
            out
        })
    }
}

impl SourceProbe {
    async fn reach(&self) -> Finding {
        let s = &self.spec;
        let check = format!("source {} ({} {})", s.name, s.kind.as_str(), s.url);
        let fix = format!(
            "start {} at {} or correct [[sources]] url",
            match s.kind {
                SourceKind::Alertmanager => "Alertmanager",
                SourceKind::Prometheus => "Prometheus",
            },
            s.url
        );
        match s.kind {
            SourceKind::Alertmanager => {
                let c = AlertmanagerClient::new(&s.name, &s.url, s.timeout());
                match c.silences().await {
                    Ok(v) => Finding::ok(&check, format!("answered; {} silences", v.len())),
                    Err(e) => Finding::fail(&check, error_chain(&e), fix),
                }
            }
            SourceKind::Prometheus => {
                let c = PrometheusClient::new(&s.name, &s.url, s.timeout());
                match c.query("count(node_memory_MemTotal_bytes)").await {
                    Ok(v) => {
                        let n = v
                            .first()
                            .and_then(|x| x.points.last())
                            .map(|p| p.1)
                            .unwrap_or(0.0);
                        Finding::ok(
                            &check,
                            format!("answered; node_exporter metrics from {n} instance(s)"),
                        )
                    }
                    Err(e) => Finding::fail(&check, error_chain(&e), fix),
                }
            }
        }
    }

    async fn policy(&self, name: &str, queries: &[String]) -> Finding {
        let s = &self.spec;
        let check = format!("policy {name} on {}", s.name);
        let c = PrometheusClient::new(&s.name, &s.url, s.timeout());
        let mut answered = Vec::new();
        for q in queries {
            match c.query(q).await {
                Ok(v) => answered.push(v.len()),
                Err(e) => {
                    return Finding::fail(
                        &check,
                        format!("{q}: {}", error_chain(&e)),
                        "correct the policy's expression (vigil policies show NAME; try it in Prometheus' own UI)".into(),
                    );
                }
            }
        }
        Finding::ok(
            &check,
            format!(
                "evaluates; {} series hold now{}",
                answered.first().copied().unwrap_or(0),
                answered
                    .get(1)
                    .map(|r| format!(", {r} meet the resolve expression"))
                    .unwrap_or_default()
            ),
        )
    }
}

struct EscalationProbe {
    spec: crate::config::EscalationSpec,
}

impl Single for EscalationProbe {
    async fn once(&self) -> Finding {
        {
            let e = &self.spec;
            let check = format!("escalation {} ({:?})", e.name, e.kind).to_lowercase();
            if let Some(var) = &e.routing_key_env
                && std::env::var(var).map(|v| v.is_empty()).unwrap_or(true)
            {
                return Finding::fail(
                    &check,
                    format!("{var} is not set or empty"),
                    format!("export {var}=<routing key> in the hub's environment"),
                );
            }
            // Reachability only: a GET sends no message and pages nobody.
            let url = e.url();
            let client = match http_client(e.timeout()) {
                Ok(c) => c,
                Err(why) => {
                    return Finding::fail(
                        &check,
                        why,
                        "the HTTP client cannot be set up on this machine (see the reason)".into(),
                    );
                }
            };
            match client.get(url).send().await {
                Ok(r) => Finding::ok(
                    &check,
                    format!(
                        "{url} reachable (HTTP {} to a GET; nothing was sent){}",
                        r.status().as_u16(),
                        if e.kind == EscalationKind::Pagerduty {
                            "; routing key set"
                        } else {
                            ""
                        }
                    ),
                ),
                Err(err) => Finding::fail(
                    &check,
                    format!("{url}: {}", error_chain(&err)),
                    "check the network path (proxy, firewall) to the endpoint, or correct url"
                        .into(),
                ),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ssh_reasons_get_their_fix() {
        let t = SshTarget::from_table(
            "h",
            Some(
                &toml::from_str(
                    "host = \"10.0.0.5\"\nuser = \"vigil\"\nport = 2222\nidentity = \"/k/id\"",
                )
                .unwrap(),
            ),
        )
        .unwrap();
        let r = ssh_reason(
            b"\nvigil@10.0.0.5: Permission denied (publickey).\n",
            Some(255),
        );
        assert_eq!(r, "vigil@10.0.0.5: Permission denied (publickey).");
        assert!(ssh_fix(&r, &t).contains("/k/id.pub"));
        assert!(
            ssh_fix("Host key verification failed.", &t).contains("ssh-keyscan -p 2222 10.0.0.5")
        );
        assert!(
            ssh_fix("connect to host 10.0.0.5 port 2222: Connection refused", &t)
                .contains("start sshd")
        );
        assert_eq!(ssh_reason(b"", Some(255)), "ssh exited 255");
    }

    #[test]
    fn the_table_shows_failures_with_their_fix() {
        let t = table(&[
            Finding::ok("host a (local)", "ran".into()),
            Finding::fail("source am", "refused".into(), "start it".into()),
        ]);
        let lines: Vec<&str> = t.lines().collect();
        assert_eq!(lines.len(), 4, "{t}");
        assert!(
            lines[1].contains("ok")
                && lines[2].contains("FAIL")
                && lines[3].contains("fix: start it")
        );
    }
}
