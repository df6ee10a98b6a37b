//! The durable store: a SQLite database (`<data-dir>/vigil.db`) holding the
//! hash-chained audit trail and the state derived from it (open actions,
//! open circuit breakers, firing alerts, modes, recent action starts) so that
//! a restarted Vigil knows where it was.
//!
//! - Every append is one transaction, committed with `synchronous=FULL` in
//!   WAL mode before the call returns: an acknowledged record is on disk.
//! - Each audit row carries `prev` and `hash`, where
//!   `hash = hex(sha256(prev + "\n" + canonical_json))` and the first record's
//!   `prev` is 64 `'0'`s ([`GENESIS_PREV`]). [`Store::verify`] recomputes the
//!   chain and names the first record that was altered, removed or reordered.
//! - The derived tables are written in the same transaction as the records
//!   they come from, so they never disagree with the trail;
//!   [`Store::rebuild_state`] recomputes them from the trail if they must.
//! - [`AuditWriter`] owns a [`Store`] on a dedicated thread and commits the
//!   requests of many callers together (group commit).
//! - Filters by target, runbook, kind and actor read `audit_tags`, one index
//!   keyed by (seq bucket, value id, seq): see [`Store::page`].
//!
//! The store never repairs or overwrites a file it does not recognise: a file
//! that is not an SQLite database, an SQLite database that is not Vigil's, or
//! one written by a newer Vigil is an error naming the file.

mod append;
mod backend;
mod chain;
mod export;
mod lease;
mod mirror;
mod open;
mod pg;
mod pg_target;
mod projection;
mod query;
mod schema;
mod state;
#[cfg(test)]
mod tests;
mod writer;

pub use backend::AnyStore;
pub use lease::{Fence, Lease, LeaseState};
pub use mirror::catch_up;
pub use pg::{PgStore, PgTarget, StoreSpec};
pub use writer::{AuditWriter, WriterStats};

use append::{NameIds, head};
pub(crate) use open::{Checkpointer, checkpoint_connection};
use projection::{DerivedBatch, apply_derived};
use query::name_id;

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use rusqlite::types::ValueRef;
use rusqlite::{Connection, OpenFlags, OptionalExtension, TransactionBehavior, params};
use sha2::{Digest, Sha256};

use crate::model::{
    Labels, Record, RecordKind, Severity, Time, canonical_json_with_seq, fingerprint, fmt_time,
};

/// The database's file name inside the data directory.
pub const DB_FILE: &str = "vigil.db";

/// The `prev` of the first record of a trail.
pub const GENESIS_PREV: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// How long a writer waits for another process's write lock.
const BUSY_TIMEOUT: Duration = Duration::from_secs(10);

/// What can go wrong with the store. Every message names the file.
///
/// Cloneable so that the [`AuditWriter`] can report one failed commit to every
/// caller whose records were in it.
#[derive(Debug, Clone, thiserror::Error)]
pub enum StoreError {
    #[error("{}: cannot {what}: {source}", path.display())]
    Io {
        path: PathBuf,
        what: String,
        #[source]
        source: Arc<io::Error>,
    },
    #[error("{message}")]
    NotPrivate { path: PathBuf, message: String },
    #[error("{}: no audit store here (the file does not exist)", path.display())]
    Missing { path: PathBuf },
    #[error(
        "{}: not an SQLite database; vigil will not open or overwrite it (move it away or use another --data-dir)",
        path.display()
    )]
    NotADatabase { path: PathBuf },
    #[error(
        "{}: an SQLite database that does not belong to vigil ({detail}); vigil will not modify it",
        path.display()
    )]
    Foreign { path: PathBuf, detail: String },
    #[error(
        "{}: schema version {found} is newer than this build of vigil understands (up to {known}); use a newer vigil",
        path.display()
    )]
    TooNew {
        path: PathBuf,
        found: i64,
        known: i64,
    },
    #[error(
        "{}: schema version {found} needs migrating to {known}; open it read-write once (run vigil) first",
        path.display()
    )]
    NeedsMigration {
        path: PathBuf,
        found: i64,
        known: i64,
    },
    #[error("{}: opened read-only, cannot {what}", path.display())]
    ReadOnly { path: PathBuf, what: &'static str },
    #[error("{}: {what}: {source}", path.display())]
    Sqlite {
        path: PathBuf,
        what: String,
        #[source]
        source: Arc<rusqlite::Error>,
    },
    #[error("{}: audit record {seq}: {why}", path.display())]
    Corrupt {
        path: PathBuf,
        seq: u64,
        why: String,
    },
    #[error("{}: cannot write the export: {source}", path.display())]
    Export {
        path: PathBuf,
        #[source]
        source: Arc<io::Error>,
    },
    #[error(
        "{}: the audit writer has stopped; these records were not confirmed as written",
        path.display()
    )]
    WriterClosed { path: PathBuf },
    #[error("{}: the audit writer thread panicked", path.display())]
    WriterPanicked { path: PathBuf },
    #[error("{}: {what}: {source}", path.display())]
    Postgres {
        path: PathBuf,
        what: String,
        #[source]
        source: Arc<postgres::Error>,
    },
    #[error("{}: cannot reach the PostgreSQL server at {addr}: {detail}", path.display())]
    Unreachable {
        path: PathBuf,
        addr: String,
        detail: String,
    },
    #[error("{}: {message}", path.display())]
    BadConfig { path: PathBuf, message: String },
    #[error("{}: not the active hub: {why}; nothing was written (no action started)", path.display())]
    Fenced { path: PathBuf, why: String },
}

impl StoreError {
    /// The database file (or directory) the error is about.
    pub fn path(&self) -> &Path {
        match self {
            StoreError::Io { path, .. }
            | StoreError::Missing { path }
            | StoreError::NotADatabase { path }
            | StoreError::NotPrivate { path, .. }
            | StoreError::Foreign { path, .. }
            | StoreError::TooNew { path, .. }
            | StoreError::NeedsMigration { path, .. }
            | StoreError::ReadOnly { path, .. }
            | StoreError::Sqlite { path, .. }
            | StoreError::Corrupt { path, .. }
            | StoreError::Export { path, .. }
            | StoreError::WriterClosed { path }
            | StoreError::WriterPanicked { path }
            | StoreError::Postgres { path, .. }
            | StoreError::Unreachable { path, .. }
            | StoreError::BadConfig { path, .. }
            | StoreError::Fenced { path, .. } => path,
        }
    }
}

/// Maps an SQLite error on `path` while doing `what`. Allocates only when
/// there is an error (it sits on hot paths).
fn sql_err<'a, W: Into<String> + 'a>(
    path: &'a Path,
    what: W,
) -> impl FnOnce(rusqlite::Error) -> StoreError + 'a {
    move |e| {
        let path = path.to_path_buf();
        if e.sqlite_error_code() == Some(rusqlite::ErrorCode::NotADatabase) {
            StoreError::NotADatabase { path }
        } else {
            StoreError::Sqlite {
                path,
                what: what.into(),
                source: Arc::new(e),
            }
        }
    }
}

/// The first record that failed verification, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BadRecord {
    pub seq: u64,
    pub why: String,
}

/// The outcome of [`Store::verify`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifyReport {
    /// Records read (up to and including the first bad one).
    pub records: u64,
    /// The first record that was altered, removed or reordered, if any.
    pub first_bad: Option<BadRecord>,
}

impl VerifyReport {
    pub fn is_ok(&self) -> bool {
        self.first_bad.is_none()
    }
}

/// Selects audit records; every field that is set must match exactly.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AuditFilter {
    /// The host or other target (`target` column).
    pub target: Option<String>,
    pub runbook: Option<String>,
    /// A record kind name, e.g. `action_blocked`.
    pub kind: Option<String>,
    pub actor: Option<String>,
}

impl AuditFilter {
    /// The set fields as (tag column, value), the one that usually selects
    /// fewest records first: target, actor, runbook, kind.
    fn tags(&self) -> Vec<(usize, &str)> {
        [
            (2, &self.target),
            (3, &self.actor),
            (1, &self.runbook),
            (0, &self.kind),
        ]
        .into_iter()
        .filter_map(|(col, v)| v.as_deref().map(|v| (col, v)))
        .collect()
    }
}

/// One action as the derived `actions` table knows it.
#[derive(Debug, Clone, PartialEq)]
pub struct PersistedAction {
    pub action_id: String,
    pub runbook: Option<String>,
    pub target: Option<String>,
    pub alert: Option<String>,
    pub fingerprint: Option<String>,
    pub params: BTreeMap<String, String>,
    /// The kind of the action's latest record.
    pub state: RecordKind,
    pub first_at: Time,
    pub last_at: Time,
    pub attempt: Option<u32>,
    pub first_seq: u64,
    pub last_seq: u64,
    /// Where the action is in its life, in the engine's terms
    /// (`awaiting_approval`, `blocked`, `retry_waiting`, `verifying`,
    /// `running`, `interrupted`, ..., `done`); None for a trail written
    /// before schema 4 and not rebuilt.
    pub phase: Option<String>,
    pub severity: Option<Severity>,
    /// The reason of its latest `action_blocked`.
    pub reason: Option<String>,
    /// Its approval's expiry (awaiting approval) or its retry's time.
    pub due_at: Option<Time>,
    /// Who gave its last needed approval.
    pub approved_by: Option<String>,
    /// Who asked for it (a manual run).
    pub requested_by: Option<String>,
}

/// An active silence of one alert.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PersistedSilence {
    pub fingerprint: String,
    pub id: String,
    pub until: Time,
    pub actor: String,
    pub comment: String,
}

/// An open circuit breaker.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PersistedBreaker {
    pub runbook: String,
    /// Empty when the `circuit_opened` record named no target.
    pub target: String,
    pub opened_at: Time,
    pub reason: Option<String>,
    pub seq: u64,
}

/// A firing alert.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PersistedAlert {
    pub fingerprint: String,
    pub alert: Option<String>,
    pub labels: Labels,
    pub severity: Option<Severity>,
    /// Start of the current firing episode.
    pub since: Time,
    /// Time of the latest `alert_firing` record.
    pub last_at: Time,
    /// The source it came from ("alert received from X"), when external.
    pub source: Option<String>,
    /// The action of its current episode, if one was proposed.
    pub action_id: Option<String>,
}

/// One `action_started` record (for rebuilding rate limits).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ActionStart {
    pub runbook: String,
    pub target: String,
    pub action_id: Option<String>,
    pub at: Time,
    pub seq: u64,
}

/// What a restarted Vigil needs to pick up where it stopped.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct PersistedState {
    /// The newest record's seq (0 for an empty trail).
    pub last_seq: u64,
    /// The actions whose latest record is `action_started` or
    /// `action_interrupted` (they were running when the process stopped),
    /// oldest first. Finished actions are not loaded: a start must not cost
    /// in proportion to the history.
    pub actions: Vec<PersistedAction>,
    /// The highest action number ever recorded (0 when none): new actions
    /// continue after it.
    pub max_action: u64,
    /// Open circuit breakers.
    pub breakers: Vec<PersistedBreaker>,
    /// The latest `dry_run` value of a `mode_changed` record, if any.
    pub dry_run: Option<bool>,
    /// The latest `frozen` value of a `mode_changed` record, if any.
    pub frozen: Option<bool>,
    /// The latest value of every key any `mode_changed` record carried.
    pub modes: BTreeMap<String, serde_json::Value>,
    /// Alerts whose latest record is `alert_firing`.
    pub firing_alerts: Vec<PersistedAlert>,
    /// `action_started` records of the 24 hours before `now`, oldest first.
    pub recent_starts: Vec<ActionStart>,
    /// Every action that has not ended (any phase but done, rejected,
    /// expired, escalated, cancelled), oldest first.
    pub open_actions: Vec<PersistedAction>,
    /// Silences that were active when the trail ended (some may have
    /// ended since: the engine expires them).
    pub silences: Vec<PersistedSilence>,
}

/// Runs a backend's append transaction `f` on `records`: nothing to do
/// when there are none, `refuse` (a read-only store's error) when set, and
/// on error the records' `seq` are put back as they were.
pub(crate) fn guarded_append(
    records: &mut [Record],
    refuse: Option<StoreError>,
    f: impl FnOnce(&mut [Record]) -> Result<(), StoreError>,
) -> Result<(), StoreError> {
    if records.is_empty() {
        return Ok(());
    }
    if let Some(e) = refuse {
        return Err(e);
    }
    let before: Vec<u64> = records.iter().map(|r| r.seq).collect();
    let res = f(records);
    if res.is_err() {
        for (r, s) in records.iter_mut().zip(before) {
            r.seq = s;
        }
    }
    res
}

/// `hex(sha256(prev + "\n" + json))`: the hash of one audit record.
pub fn chain_hash(prev: &str, canonical_json: &str) -> String {
    let mut out = [0u8; 64];
    chain_hash_into(prev.as_bytes(), canonical_json.as_bytes(), &mut out);
    // Hex digits are ASCII.
    String::from_utf8_lossy(&out).into_owned()
}

fn chain_hash_into(prev: &[u8], json: &[u8], out: &mut [u8; 64]) {
    let mut h = Sha256::new();
    h.update(prev);
    h.update(b"\n");
    h.update(json);
    let digest = h.finalize();
    // The buffer is exactly twice the digest length, so this cannot fail.
    let _ = hex::encode_to_slice(digest, out);
}

/// The `seq` a canonical record JSON carries: read from its `{"seq":N,`
/// prefix, or by parsing when the text is not in canonical shape.
fn json_seq(json: &str) -> Option<u64> {
    if let Some(rest) = json.strip_prefix("{\"seq\":") {
        let end = rest.find([',', '}'])?;
        let digits = &rest[..end];
        if !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()) {
            return digits.parse().ok();
        }
    }
    serde_json::from_str::<serde_json::Value>(json)
        .ok()?
        .get("seq")?
        .as_u64()
}

fn micros(t: &Time) -> i64 {
    t.timestamp_micros()
}

/// The SQLite store. Not `Sync`: one per thread (readers open their own; the
/// writer lives in an [`AuditWriter`] or is used directly by one owner).
pub struct Store {
    conn: Connection,
    path: PathBuf,
    read_only: bool,
    /// The writer's cache of `audit_names` ids.
    names: NameIds,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store")
            .field("path", &self.path)
            .field("read_only", &self.read_only)
            .finish()
    }
}

impl Store {
    /// The database file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The error an append to a read-only store gets (None: writable).
    fn read_only_error(&self) -> Option<StoreError> {
        self.read_only.then(|| StoreError::ReadOnly {
            path: self.path.clone(),
            what: "append audit records",
        })
    }

    pub fn is_read_only(&self) -> bool {
        self.read_only
    }

    fn err<'a, W: Into<String> + 'a>(
        &'a self,
        what: W,
    ) -> impl FnOnce(rusqlite::Error) -> StoreError + 'a {
        sql_err(&self.path, what)
    }

    fn corrupt(&self, seq: u64, why: impl Into<String>) -> StoreError {
        StoreError::Corrupt {
            path: self.path.clone(),
            seq,
            why: why.into(),
        }
    }
}
