//! The agent's job store: one SQLite file (`DATA_DIR/agent.db`, WAL,
//! `synchronous=FULL`), so a job is durable before the hub hears of it and
//! survives the agent's death.
//!
//! Owns the job rows and their state changes (queued → running → succeeded
//! / failed / cancelled), idempotency by (hub, key), the queue order
//! (submission order), recovery after a crash (a job left `running` is
//! failed as interrupted, never re-run) and pruning of finished jobs. It
//! runs nothing and decides nothing about what may run.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Mutex;

use chrono::{DateTime, Utc};
use rusqlite::{Connection, OptionalExtension, params};
use serde_json::{Value, json};

use crate::runbook::PlannedStep;

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS jobs (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    hub TEXT NOT NULL,
    key TEXT NOT NULL,
    body_hash TEXT NOT NULL,
    action_id TEXT NOT NULL,
    attempt INTEGER NOT NULL,
    runbook TEXT NOT NULL,
    target TEXT NOT NULL,
    params TEXT NOT NULL,
    plan TEXT NOT NULL,
    status TEXT NOT NULL,
    created_at TEXT NOT NULL,
    started_at TEXT,
    finished_at TEXT,
    exit_code INTEGER,
    detail TEXT NOT NULL DEFAULT '',
    output TEXT NOT NULL DEFAULT '',
    facts TEXT NOT NULL DEFAULT '{}',
    steps TEXT NOT NULL DEFAULT '[]',
    cancel_by TEXT,
    -- The running step's process group and its leader's identity (start
    -- time and command line), so a restart can stop a step a crash left.
    pgid INTEGER,
    pg_ident TEXT,
    UNIQUE (hub, key)
);
CREATE INDEX IF NOT EXISTS jobs_by_status ON jobs (status, seq);
";

/// Where a job is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    Queued,
    Running,
    Succeeded,
    Failed,
    Cancelled,
}

impl Status {
    pub const ALL: [Status; 5] = [
        Status::Queued,
        Status::Running,
        Status::Succeeded,
        Status::Failed,
        Status::Cancelled,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Status::Queued => "queued",
            Status::Running => "running",
            Status::Succeeded => "succeeded",
            Status::Failed => "failed",
            Status::Cancelled => "cancelled",
        }
    }

    pub fn parse(s: &str) -> Option<Status> {
        Status::ALL.into_iter().find(|x| x.as_str() == s)
    }

    pub fn terminal(self) -> bool {
        matches!(self, Status::Succeeded | Status::Failed | Status::Cancelled)
    }
}

/// A job as the API accepted it (its plan already checked).
#[derive(Debug, Clone)]
pub struct NewJob {
    pub hub: String,
    pub key: String,
    pub body_hash: String,
    pub action_id: String,
    pub attempt: u32,
    pub runbook: String,
    pub target: String,
    pub params: BTreeMap<String, String>,
    pub plan: Vec<PlannedStep>,
}

/// A stored job: what was accepted, then where it is.
#[derive(Debug, Clone)]
pub struct Job {
    pub seq: i64,
    pub spec: NewJob,
    pub status: Status,
    pub created_at: String,
    pub started_at: Option<String>,
    pub finished_at: Option<String>,
    pub exit_code: Option<i32>,
    pub detail: String,
    pub output: String,
    pub facts: Value,
    pub steps: Value,
}

impl Job {
    /// The job's public id (`job-SEQ`).
    pub fn id(&self) -> String {
        format!("job-{}", self.seq)
    }

    /// The job's answer to the hub: what `GET /jobs/{id}` returns.
    pub fn answer(&self) -> Value {
        json!({
            "id": self.id(),
            "status": self.status.as_str(),
            "idempotency_key": self.spec.key,
            "action_id": self.spec.action_id,
            "attempt": self.spec.attempt,
            "runbook": self.spec.runbook,
            "target": self.spec.target,
            "created_at": self.created_at,
            "started_at": self.started_at,
            "finished_at": self.finished_at,
            "exit_code": self.exit_code,
            "detail": self.detail,
            "output": self.output,
            "facts": self.facts,
            "steps": self.steps,
        })
    }
}

/// The seq of a public job id, when it is one.
pub fn seq_of(id: &str) -> Option<i64> {
    id.strip_prefix("job-")?.parse().ok().filter(|n| *n > 0)
}

/// How a job ended, as stored.
#[derive(Debug, Clone)]
pub struct Ending {
    pub status: Status,
    pub exit_code: Option<i32>,
    pub detail: String,
    pub output: String,
    pub facts: Value,
    pub steps: Value,
}

/// What a submission did.
#[derive(Debug)]
pub enum Submitted {
    Created(Job),
    /// The same key with the same body: the job it made.
    Existing(Job),
    /// The same key with another body.
    Conflict(Job),
    /// The queue holds `max_queued` jobs already.
    Full,
}

/// What a cancel request found.
#[derive(Debug)]
pub enum Cancel {
    /// It was queued and is now cancelled.
    Dequeued(Job),
    /// It runs: the runner stops it.
    Stopping(Job),
    /// It had already ended.
    Finished(Job),
}

#[derive(Debug, thiserror::Error)]
#[error("job store {path}: {what}: {source}")]
pub struct StoreError {
    path: String,
    what: &'static str,
    #[source]
    source: rusqlite::Error,
}

/// One connection (writers never wait on SQLite's lock, only on this
/// mutex). It commits with `synchronous=FULL` (a job accepted, claimed,
/// cancelled or ended is on disk before anyone hears of it), except what a
/// power cut may lose without harm (a running job's progress, its step's
/// process group), written with `synchronous=NORMAL` so those writes do not
/// queue accepts behind a sync each.
pub struct JobStore {
    conn: Mutex<Connection>,
    path: String,
    /// Dropped with the store: the checkpoint thread then ends.
    _checkpoints: Option<std::sync::mpsc::Sender<()>>,
}

/// How often the WAL is copied into the database, beside the writer.
const CHECKPOINT_EVERY: std::time::Duration = std::time::Duration::from_millis(500);

/// Checkpoints `path`'s WAL on a connection and thread of its own until
/// the returned sender is dropped, so that no accept ever waits for a
/// checkpoint (SQLite's automatic one runs inside the commit that crosses
/// its threshold, fsyncing the database on that request's time).
fn spawn_checkpoints(path: &Path) -> rusqlite::Result<Option<std::sync::mpsc::Sender<()>>> {
    let conn = Connection::open(path)?;
    conn.execute_batch("PRAGMA busy_timeout = 5000; PRAGMA wal_autocheckpoint = 0;")?;
    let (tx, rx) = std::sync::mpsc::channel::<()>();
    let spawned = std::thread::Builder::new()
        .name("agent-checkpoint".into())
        .spawn(move || {
            while let Err(std::sync::mpsc::RecvTimeoutError::Timeout) =
                rx.recv_timeout(CHECKPOINT_EVERY)
            {
                if let Err(e) =
                    conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |r| r.get::<_, i64>(0))
                {
                    tracing::warn!("cannot checkpoint the job store's WAL: {e}");
                }
            }
        });
    match spawned {
        Ok(_) => Ok(Some(tx)),
        Err(e) => {
            tracing::warn!("no checkpoint thread ({e}); SQLite checkpoints on commit");
            Ok(None)
        }
    }
}

/// Now, as stored: RFC 3339, UTC, milliseconds (sorts as text).
pub fn stamp(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string()
}

const COLUMNS: &str = "seq, hub, key, body_hash, action_id, attempt, runbook, target, params, plan, \
     status, created_at, started_at, finished_at, exit_code, detail, output, facts, steps";

fn row_job(r: &rusqlite::Row<'_>) -> rusqlite::Result<Job> {
    let text = |i: usize| r.get::<_, String>(i);
    let parse = |s: String| serde_json::from_str::<Value>(&s).unwrap_or(Value::Null);
    Ok(Job {
        seq: r.get(0)?,
        spec: NewJob {
            hub: text(1)?,
            key: text(2)?,
            body_hash: text(3)?,
            action_id: text(4)?,
            attempt: r.get(5)?,
            runbook: text(6)?,
            target: text(7)?,
            params: serde_json::from_str(&text(8)?).unwrap_or_default(),
            plan: serde_json::from_str(&text(9)?).unwrap_or_default(),
        },
        status: Status::parse(&text(10)?).unwrap_or(Status::Failed),
        created_at: text(11)?,
        started_at: r.get(12)?,
        finished_at: r.get(13)?,
        exit_code: r.get(14)?,
        detail: text(15)?,
        output: text(16)?,
        facts: parse(text(17)?),
        steps: parse(text(18)?),
    })
}

/// The one job matching `filter` (an SQL condition on `jobs`), if any.
fn select_one(
    c: &Connection,
    filter: &str,
    p: impl rusqlite::Params,
) -> rusqlite::Result<Option<Job>> {
    c.query_row(
        &format!("SELECT {COLUMNS} FROM jobs WHERE {filter}"),
        p,
        row_job,
    )
    .optional()
}

impl JobStore {
    /// Opens (or creates) `dir/agent.db`.
    pub fn open(dir: &Path) -> Result<JobStore, StoreError> {
        let path = dir.join("agent.db");
        let shown = path.display().to_string();
        let err = |what| {
            let p = shown.clone();
            move |source| StoreError {
                path: p,
                what,
                source,
            }
        };
        let conn = Connection::open(&path).map_err(err("open"))?;
        conn.query_row("PRAGMA journal_mode = WAL", [], |r| r.get::<_, String>(0))
            .map_err(err("set WAL"))?;
        conn.execute_batch("PRAGMA synchronous = FULL; PRAGMA busy_timeout = 5000;")
            .map_err(err("set synchronous=FULL"))?;
        conn.execute_batch(SCHEMA)
            .map_err(err("create the schema"))?;
        let checkpoints = spawn_checkpoints(&path).map_err(err("open a checkpoint connection"))?;
        if checkpoints.is_some() {
            conn.execute_batch("PRAGMA wal_autocheckpoint = 0;")
                .map_err(err("hand checkpoints to their thread"))?;
        }
        Ok(JobStore {
            conn: Mutex::new(conn),
            path: shown,
            _checkpoints: checkpoints,
        })
    }

    fn with<T>(
        &self,
        what: &'static str,
        f: impl FnOnce(&mut Connection) -> rusqlite::Result<T>,
    ) -> Result<T, StoreError> {
        let mut c = self.conn.lock().unwrap_or_else(|e| e.into_inner());
        f(&mut c).map_err(|source| StoreError {
            path: self.path.clone(),
            what,
            source,
        })
    }

    /// [`JobStore::with`] for a write a power cut may lose: committed with
    /// `synchronous=NORMAL`, then FULL again whatever happened.
    fn light<T>(
        &self,
        what: &'static str,
        f: impl FnOnce(&mut Connection) -> rusqlite::Result<T>,
    ) -> Result<T, StoreError> {
        self.with(what, |c| {
            c.execute_batch("PRAGMA synchronous = NORMAL")?;
            let r = f(c);
            let back = c.execute_batch("PRAGMA synchronous = FULL");
            let r = r?;
            back.map(|_| r)
        })
    }

    /// The job a hub made with `key`, if any.
    pub fn by_key(&self, hub: &str, key: &str) -> Result<Option<Job>, StoreError> {
        self.with("read a job", |c| {
            select_one(c, "hub = ?1 AND key = ?2", params![hub, key])
        })
    }

    /// One job of a hub.
    pub fn get(&self, hub: &str, seq: i64) -> Result<Option<Job>, StoreError> {
        self.with("read a job", |c| {
            select_one(c, "seq = ?1 AND hub = ?2", params![seq, hub])
        })
    }

    /// Stores a new job, durably, unless its key is taken or the queue is
    /// full; one transaction, so two submissions of one key make one job.
    pub fn submit(&self, j: &NewJob, max_queued: usize) -> Result<Submitted, StoreError> {
        self.with("store a job", |c| {
            let tx = c.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
            let found = select_one(&tx, "hub = ?1 AND key = ?2", params![j.hub, j.key])?;
            if let Some(old) = found {
                return Ok(if old.spec.body_hash == j.body_hash {
                    Submitted::Existing(old)
                } else {
                    Submitted::Conflict(old)
                });
            }
            let queued: i64 = tx.query_row(
                "SELECT count(*) FROM jobs WHERE status = 'queued'",
                [],
                |r| r.get(0),
            )?;
            if queued as usize >= max_queued {
                return Ok(Submitted::Full);
            }
            tx.execute(
                "INSERT INTO jobs (hub, key, body_hash, action_id, attempt, runbook, target, \
                 params, plan, status, created_at) VALUES (?1,?2,?3,?4,?5,?6,?7,?8,?9,'queued',?10)",
                params![
                    j.hub,
                    j.key,
                    j.body_hash,
                    j.action_id,
                    j.attempt,
                    j.runbook,
                    j.target,
                    serde_json::to_string(&j.params).unwrap_or_default(),
                    serde_json::to_string(&j.plan).unwrap_or_default(),
                    stamp(Utc::now()),
                ],
            )?;
            let job = select_one(&tx, "seq = ?1", params![tx.last_insert_rowid()])?
                .ok_or(rusqlite::Error::QueryReturnedNoRows)?;
            tx.commit()?;
            Ok(Submitted::Created(job))
        })
    }

    /// Takes the oldest queued job and marks it running.
    pub fn claim_next(&self) -> Result<Option<Job>, StoreError> {
        self.with("claim a job", |c| {
            let seq: Option<i64> = c
                .query_row(
                    "UPDATE jobs SET status = 'running', started_at = ?1, \
                     detail = 'started' WHERE seq = (SELECT seq FROM jobs \
                     WHERE status = 'queued' ORDER BY seq LIMIT 1) RETURNING seq",
                    params![stamp(Utc::now())],
                    |r| r.get(0),
                )
                .optional()?;
            match seq {
                None => Ok(None),
                Some(seq) => select_one(c, "seq = ?1", params![seq]),
            }
        })
    }

    /// What a running job has done so far (shown to the hub as it polls),
    /// between steps: no step runs.
    pub fn progress(
        &self,
        seq: i64,
        detail: &str,
        output: &str,
        steps: &Value,
    ) -> Result<(), StoreError> {
        self.light("record progress", |c| {
            c.execute(
                "UPDATE jobs SET detail = ?2, output = ?3, steps = ?4, pgid = NULL, \
                 pg_ident = NULL WHERE seq = ?1 AND status = 'running'",
                params![seq, detail, output, steps.to_string()],
            )
            .map(|_| ())
        })
    }

    /// A step started: what the job does now and the step's process group
    /// with its leader's identity (so a restart after a crash can stop it).
    pub fn step_started(
        &self,
        seq: i64,
        detail: &str,
        group: Option<(u32, String)>,
    ) -> Result<(), StoreError> {
        let (pgid, ident) = group.unzip();
        self.light("record a step's start", |c| {
            c.execute(
                "UPDATE jobs SET detail = ?2, pgid = ?3, pg_ident = ?4 \
                 WHERE seq = ?1 AND status = 'running'",
                params![seq, detail, pgid, ident],
            )
            .map(|_| ())
        })
    }

    /// A job's end.
    pub fn finish(&self, seq: i64, e: &Ending) -> Result<(), StoreError> {
        self.with("record a job's end", |c| {
            c.execute(
                "UPDATE jobs SET status = ?2, exit_code = ?3, detail = ?4, output = ?5, \
                 facts = ?6, steps = ?7, finished_at = ?8, pgid = NULL, pg_ident = NULL \
                 WHERE seq = ?1",
                params![
                    seq,
                    e.status.as_str(),
                    e.exit_code,
                    e.detail,
                    e.output,
                    e.facts.to_string(),
                    e.steps.to_string(),
                    stamp(Utc::now())
                ],
            )
            .map(|_| ())
        })
    }

    /// A hub asks to stop its job: a queued one is cancelled here, a
    /// running one is marked for the runner.
    pub fn cancel(&self, hub: &str, seq: i64) -> Result<Option<Cancel>, StoreError> {
        self.with("cancel a job", |c| {
            let tx = c.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
            let get = |tx: &rusqlite::Transaction<'_>| {
                select_one(tx, "seq = ?1 AND hub = ?2", params![seq, hub])
            };
            let Some(job) = get(&tx)? else {
                return Ok(None);
            };
            let out = match job.status {
                Status::Queued => {
                    tx.execute(
                        "UPDATE jobs SET status = 'cancelled', finished_at = ?2, cancel_by = ?3, \
                         detail = ?4 WHERE seq = ?1",
                        params![
                            seq,
                            stamp(Utc::now()),
                            hub,
                            format!("cancelled by hub {hub} before it started; nothing ran")
                        ],
                    )?;
                    Cancel::Dequeued(get(&tx)?.unwrap_or(job))
                }
                Status::Running => {
                    tx.execute(
                        "UPDATE jobs SET cancel_by = ?2 WHERE seq = ?1",
                        params![seq, hub],
                    )?;
                    Cancel::Stopping(job)
                }
                _ => Cancel::Finished(job),
            };
            tx.commit()?;
            Ok(Some(out))
        })
    }

    /// The steps' process groups of jobs left running by a crash.
    pub fn orphans(&self) -> Result<Vec<(i64, u32, String)>, StoreError> {
        self.with("read interrupted jobs", |c| {
            let mut st = c.prepare(
                "SELECT seq, pgid, pg_ident FROM jobs WHERE status = 'running' \
                 AND pgid IS NOT NULL AND pg_ident IS NOT NULL",
            )?;
            let rows = st.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?;
            rows.collect()
        })
    }

    /// After a crash: every job left running failed as interrupted (its
    /// steps may have run partly; it is never started again), with what
    /// became of its step (`notes`, by seq). The count.
    pub fn recover(&self, notes: &BTreeMap<i64, String>) -> Result<usize, StoreError> {
        self.with("recover interrupted jobs", |c| {
            let tx = c.transaction()?;
            let seqs: Vec<i64> = {
                let mut st = tx.prepare("SELECT seq FROM jobs WHERE status = 'running'")?;
                st.query_map([], |r| r.get(0))?.collect::<Result<_, _>>()?
            };
            for seq in &seqs {
                let note = notes.get(seq).map(|n| format!("; {n}")).unwrap_or_default();
                tx.execute(
                    "UPDATE jobs SET status = 'failed', finished_at = ?2, pgid = NULL, \
                     pg_ident = NULL, detail = 'interrupted: the agent stopped while this job ran (at ' \
                     || detail || ')' || ?3 || '; it was not re-run: the hub decides whether to try again' \
                     WHERE seq = ?1",
                    params![seq, stamp(Utc::now()), note],
                )?;
            }
            tx.commit()?;
            Ok(seqs.len())
        })
    }

    /// Removes finished jobs that ended before `before`; the count.
    pub fn prune(&self, before: DateTime<Utc>) -> Result<usize, StoreError> {
        self.with("prune finished jobs", |c| {
            c.execute(
                "DELETE FROM jobs WHERE finished_at IS NOT NULL AND finished_at < ?1 \
                 AND status IN ('succeeded', 'failed', 'cancelled')",
                params![stamp(before)],
            )
        })
    }

    /// A hub's jobs, newest first, optionally of one status.
    pub fn list(
        &self,
        hub: &str,
        status: Option<Status>,
        limit: usize,
    ) -> Result<Vec<Job>, StoreError> {
        self.with("list jobs", |c| {
            let mut st = c.prepare(&format!(
                "SELECT {COLUMNS} FROM jobs WHERE hub = ?1 AND (?2 IS NULL OR status = ?2) \
                 ORDER BY seq DESC LIMIT ?3"
            ))?;
            let rows = st.query_map(
                params![hub, status.map(Status::as_str), limit as i64],
                row_job,
            )?;
            rows.collect()
        })
    }

    /// Jobs per status (for /health and the queue limit).
    pub fn counts(&self) -> Result<BTreeMap<&'static str, i64>, StoreError> {
        self.with("count jobs", |c| {
            let mut out: BTreeMap<&'static str, i64> =
                Status::ALL.iter().map(|s| (s.as_str(), 0)).collect();
            let mut st = c.prepare("SELECT status, count(*) FROM jobs GROUP BY status")?;
            let rows = st.query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?)))?;
            for row in rows {
                let (s, n) = row?;
                if let Some(s) = Status::parse(&s) {
                    out.insert(s.as_str(), n);
                }
            }
            Ok(out)
        })
    }

    /// Who asked to cancel a running job, if anyone.
    pub fn cancel_requested(&self, seq: i64) -> Result<Option<String>, StoreError> {
        self.with("read a cancel request", |c| {
            c.query_row(
                "SELECT cancel_by FROM jobs WHERE seq = ?1",
                params![seq],
                |r| r.get(0),
            )
            .optional()
            .map(Option::flatten)
        })
    }
}

/// Runs a store call on the blocking pool (a commit waits for the disk);
/// the error is logged and returned as text.
pub async fn off_thread<T: Send + 'static>(
    store: &std::sync::Arc<JobStore>,
    f: impl FnOnce(&JobStore) -> Result<T, StoreError> + Send + 'static,
) -> Result<T, String> {
    let store = store.clone();
    let r = match tokio::task::spawn_blocking(move || f(&store)).await {
        Ok(r) => r.map_err(|e| e.to_string()),
        Err(e) => Err(format!("the job store task failed: {e}")),
    };
    if let Err(e) = &r {
        tracing::error!("{e}");
    }
    r
}

#[cfg(test)]
#[path = "store_tests.rs"]
mod tests;
