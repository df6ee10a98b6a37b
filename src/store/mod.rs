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

mod backend;
mod chain;
mod lease;
mod pg;
mod schema;
#[cfg(test)]
mod tests;
mod writer;

pub use backend::AnyStore;
pub use lease::{Fence, Lease, LeaseState};
pub use pg::{PgStore, PgTarget, StoreSpec};
pub use writer::{AuditWriter, WriterStats};

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
    #[error("{}: not the active hub: {why}; no action was started", path.display())]
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

/// Identification read from a database header.
struct Ident {
    application_id: i64,
    version: i64,
    objects: i64,
}

fn identify(conn: &Connection, path: &Path) -> Result<Ident, StoreError> {
    let application_id = conn
        .query_row("PRAGMA application_id", [], |r| r.get(0))
        .map_err(sql_err(path, "read the database header"))?;
    let version = conn
        .query_row("PRAGMA user_version", [], |r| r.get(0))
        .map_err(sql_err(path, "read the schema version"))?;
    let objects = conn
        .query_row("SELECT count(*) FROM sqlite_master", [], |r| r.get(0))
        .map_err(sql_err(path, "read the schema"))?;
    Ok(Ident {
        application_id,
        version,
        objects,
    })
}

/// Checks the header; `Ok(true)` when the database is empty (brand new).
fn check_ident(id: &Ident, path: &Path) -> Result<bool, StoreError> {
    let known = schema::current_version();
    if id.application_id != schema::APPLICATION_ID {
        if id.application_id == 0 && id.version == 0 && id.objects == 0 {
            return Ok(true);
        }
        return Err(StoreError::Foreign {
            path: path.to_path_buf(),
            detail: if id.application_id != 0 {
                format!("application id {:#x}", id.application_id)
            } else {
                format!(
                    "no vigil application id; {} schema objects, user_version {}",
                    id.objects, id.version
                )
            },
        });
    }
    if id.version > known {
        return Err(StoreError::TooNew {
            path: path.to_path_buf(),
            found: id.version,
            known,
        });
    }
    Ok(false)
}

/// `vigil.db-wal` beside `vigil.db`.
fn wal_path(db: &Path) -> PathBuf {
    let mut s = db.as_os_str().to_owned();
    s.push("-wal");
    PathBuf::from(s)
}

/// `vigil.db-shm` beside `vigil.db`.
fn shm_path(db: &Path) -> PathBuf {
    let mut s = db.as_os_str().to_owned();
    s.push("-shm");
    PathBuf::from(s)
}

impl Store {
    /// Opens (creating if needed) `dir/vigil.db` for reading and writing and
    /// brings its schema up to date.
    ///
    /// The directory is made private (0700; one that others can write is
    /// refused) and the database, its WAL and shared-memory files are 0600
    /// whatever the umask: SQLite gives the files it creates beside the
    /// database the database file's mode.
    pub fn open(dir: &Path) -> Result<Store, StoreError> {
        match crate::private::private_dir(dir).map_err(|message| StoreError::NotPrivate {
            path: dir.to_path_buf(),
            message,
        })? {
            crate::private::DirState::Tightened(mode) => tracing::warn!(
                "data dir {} had mode {mode:04o}; made it 0700 (private to its owner)",
                dir.display()
            ),
            crate::private::DirState::Created | crate::private::DirState::Private => {}
        }
        let path = dir.join(DB_FILE);
        if path.exists() && !path.is_file() {
            return Err(StoreError::NotADatabase { path });
        }
        let private = |p: &Path, r: Result<(), String>| {
            r.map_err(|message| StoreError::NotPrivate {
                path: p.to_path_buf(),
                message,
            })
        };
        if !path.exists() {
            // created empty with 0600 before SQLite sees it
            private(&path, crate::private::private_file(&path))?;
        }
        let flags = OpenFlags::SQLITE_OPEN_READ_WRITE
            | OpenFlags::SQLITE_OPEN_CREATE
            | OpenFlags::SQLITE_OPEN_NO_MUTEX;
        let conn = Connection::open_with_flags(&path, flags)
            .map_err(sql_err(&path, "open the database"))?;
        conn.busy_timeout(BUSY_TIMEOUT)
            .map_err(sql_err(&path, "set the busy timeout"))?;
        conn.set_prepared_statement_cache_capacity(64);
        // Read before writing anything: a foreign file stays untouched.
        check_ident(&identify(&conn, &path)?, &path)?;
        // Ours: files an older vigil (or another umask) left readable
        // become private too.
        for f in [path.clone(), wal_path(&path), shm_path(&path)] {
            private(&f, crate::private::tighten_if_exists(&f))?;
        }
        let mode: String = conn
            .query_row("PRAGMA journal_mode = WAL", [], |r| r.get(0))
            .map_err(sql_err(&path, "switch to WAL mode"))?;
        if !mode.eq_ignore_ascii_case("wal") {
            return Err(StoreError::Io {
                path,
                what: format!("use WAL mode (the file system gave journal mode {mode:?})"),
                source: Arc::new(io::Error::other("WAL unavailable")),
            });
        }
        conn.execute_batch(
            "PRAGMA synchronous = FULL; PRAGMA fullfsync = ON; PRAGMA cache_size = -16384;",
        )
        .map_err(sql_err(&path, "set synchronous=FULL"))?;
        let mut store = Store {
            conn,
            path,
            read_only: false,
            names: NameIds::default(),
        };
        store.migrate()?;
        Ok(store)
    }

    /// Opens an existing `dir/vigil.db` read-only (for `vigil audit
    /// verify|export|tail`, or a reader beside a running writer).
    pub fn open_read_only(dir: &Path) -> Result<Store, StoreError> {
        let path = dir.join(DB_FILE);
        if !path.exists() {
            return Err(StoreError::Missing { path });
        }
        if !path.is_file() {
            return Err(StoreError::NotADatabase { path });
        }
        let flags = OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX;
        let conn = Connection::open_with_flags(&path, flags)
            .map_err(sql_err(&path, "open the database"))?;
        conn.busy_timeout(BUSY_TIMEOUT)
            .map_err(sql_err(&path, "set the busy timeout"))?;
        let id = identify(&conn, &path)?;
        let known = schema::current_version();
        if check_ident(&id, &path)? || id.version < known {
            return Err(StoreError::NeedsMigration {
                path,
                found: id.version,
                known,
            });
        }
        conn.execute_batch("PRAGMA query_only = ON")
            .map_err(sql_err(&path, "set query_only"))?;
        Ok(Store {
            conn,
            path,
            read_only: true,
            names: NameIds::default(),
        })
    }

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

    /// Sets how many WAL pages a commit may leave before it copies them into
    /// the database itself (0: never; an [`AuditWriter`] checkpoints from
    /// its own thread instead).
    pub(crate) fn set_auto_checkpoint(&self, pages: u32) -> Result<(), StoreError> {
        self.conn
            .query_row(&format!("PRAGMA wal_autocheckpoint = {pages}"), [], |_| {
                Ok(())
            })
            .map_err(self.err("set the WAL checkpoint threshold"))
    }

    /// Copies committed WAL pages into the database without waiting for
    /// readers (`PRAGMA wal_checkpoint(PASSIVE)`). True when it copied all
    /// of them (so the WAL can start over).
    pub(crate) fn checkpoint(&self) -> Result<bool, StoreError> {
        checkpoint(&self.conn).map_err(self.err("checkpoint the WAL"))
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

    fn migrate(&mut self) -> Result<(), StoreError> {
        let from = identify(&self.conn, &self.path)?.version;
        self.migrate_steps()?;
        if from > 0 && from < schema::RESUMABLE_VERSION {
            // The columns a restart resumes from are new: fill them from
            // the trail once.
            self.rebuild_state()?;
        }
        Ok(())
    }

    fn migrate_steps(&mut self) -> Result<(), StoreError> {
        let known = schema::current_version();
        loop {
            let path = self.path.clone();
            let tx = self
                .conn
                .transaction_with_behavior(TransactionBehavior::Immediate)
                .map_err(sql_err(&path, "begin a schema migration"))?;
            // Re-read under the write lock: another process may have migrated.
            let id = identify(&tx, &path)?;
            check_ident(&id, &path)?;
            if id.version >= known {
                return Ok(());
            }
            let next = id.version + 1;
            let Some(sql) = usize::try_from(id.version)
                .ok()
                .and_then(|i| schema::MIGRATIONS.get(i))
            else {
                return Err(StoreError::Foreign {
                    path,
                    detail: format!("schema version {}", id.version),
                });
            };
            let what = format!("migrate the schema to version {next}");
            tx.execute_batch(sql)
                .map_err(sql_err(&path, what.clone()))?;
            tx.execute_batch(&format!(
                "PRAGMA application_id = {}; PRAGMA user_version = {next};",
                schema::APPLICATION_ID
            ))
            .map_err(sql_err(&path, what.clone()))?;
            tx.commit().map_err(sql_err(&path, what))?;
        }
    }

    /// The seq and hash of the newest record (0 and [`GENESIS_PREV`] when the
    /// trail is empty).
    pub fn head(&self) -> Result<(u64, String), StoreError> {
        head(&self.conn).map_err(self.err("read the newest audit record"))
    }

    /// The newest record's seq (0 when the trail is empty).
    pub fn last_seq(&self) -> Result<u64, StoreError> {
        Ok(self.head()?.0)
    }

    /// Numbers `records` (continuing after the newest stored record), chains
    /// their hashes, writes them and the derived state in one transaction and
    /// returns once it is committed. `at` is kept as given. On error nothing
    /// was written and the records' `seq` are as they were.
    pub fn append(&mut self, records: &mut [Record]) -> Result<(), StoreError> {
        self.append_serialised(records, None)
    }

    /// [`Store::append`] of records whose
    /// [`Record::canonical_json_after_seq`] the caller already made (one per
    /// record, in order): the writer thread then only numbers and chains.
    pub(crate) fn append_serialised(
        &mut self,
        records: &mut [Record],
        after_seq: Option<&[String]>,
    ) -> Result<(), StoreError> {
        let refuse = self.read_only_error();
        let res = guarded_append(records, refuse, |records| {
            self.append_tx(records, after_seq)
        });
        if res.is_err() {
            // Ids the rolled-back transaction assigned are not in the file.
            self.names.clear();
        }
        res
    }

    fn append_tx(
        &mut self,
        records: &mut [Record],
        after_seq: Option<&[String]>,
    ) -> Result<(), StoreError> {
        let Store {
            conn, path, names, ..
        } = self;
        let what = "append audit records";
        let e = || sql_err(path, what);
        let tx = conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(e())?;
        let (mut seq, mut prev) = head(&tx).map_err(e())?;
        let mut derived = DerivedBatch::default();
        let mut tags = Vec::with_capacity(records.len() * 4);
        {
            let mut ins = tx
                .prepare_cached(
                    "INSERT INTO audit (seq, at, kind, runbook, target, actor, action_id, json, prev, hash)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
                )
                .map_err(e())?;
            for (i, r) in records.iter_mut().enumerate() {
                seq += 1;
                r.seq = seq;
                let json = match after_seq.and_then(|a| a.get(i)) {
                    Some(after) => canonical_json_with_seq(seq, after),
                    None => r.canonical_json(),
                };
                let hash = chain_hash(&prev, &json);
                ins.execute(params![
                    seq as i64,
                    fmt_time(&r.at),
                    r.kind.as_str(),
                    r.runbook,
                    r.target,
                    r.actor,
                    r.action_id,
                    json,
                    prev,
                    hash,
                ])
                .map_err(e())?;
                for (col, value) in tag_values(r).into_iter().enumerate() {
                    if let Some(value) = value {
                        tags.push((
                            seq >> schema::BUCKET_SHIFT,
                            names.id(&tx, col, value).map_err(e())?,
                            seq,
                        ));
                    }
                }
                apply_derived(&tx, r, &mut derived).map_err(e())?;
                prev = hash;
            }
        }
        insert_tags(&tx, &mut tags).map_err(e())?;
        derived.flush(&tx).map_err(e())?;
        tx.execute(
            "INSERT INTO chain_head (id, seq, hash) VALUES (1, ?1, ?2)
             ON CONFLICT (id) DO UPDATE SET seq = excluded.seq, hash = excluded.hash",
            params![seq as i64, prev],
        )
        .map_err(e())?;
        tx.commit().map_err(e())
    }

    /// Recomputes the derived tables from the audit trail (recovery, or after
    /// a migration that adds derived state).
    pub fn rebuild_state(&mut self) -> Result<(), StoreError> {
        if self.read_only {
            return Err(StoreError::ReadOnly {
                path: self.path.clone(),
                what: "rebuild the derived state",
            });
        }
        let path = self.path.clone();
        let e = || sql_err(&path, "rebuild the derived state");
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(e())?;
        tx.execute_batch(
            "DELETE FROM actions; DELETE FROM breakers; DELETE FROM alerts;
             DELETE FROM modes; DELETE FROM action_starts; DELETE FROM silences;",
        )
        .map_err(e())?;
        let mut derived = DerivedBatch::default();
        {
            let mut stmt = tx
                .prepare("SELECT seq, json FROM audit ORDER BY seq")
                .map_err(e())?;
            let mut rows = stmt.query([]).map_err(e())?;
            while let Some(row) = rows.next().map_err(e())? {
                let seq: i64 = row.get(0).map_err(e())?;
                let json: String = row.get(1).map_err(e())?;
                let mut rec: Record =
                    serde_json::from_str(&json).map_err(|err| StoreError::Corrupt {
                        path: path.clone(),
                        seq: seq as u64,
                        why: format!("stored JSON is not a record: {err}"),
                    })?;
                rec.seq = seq as u64;
                apply_derived(&tx, &rec, &mut derived).map_err(e())?;
                if derived.actions.len() >= DerivedBatch::MAX_PENDING {
                    derived.flush(&tx).map_err(e())?;
                }
            }
        }
        derived.flush(&tx).map_err(e())?;
        tx.commit().map_err(e())
    }

    /// [`Store::load_state_at`] with the current time.
    pub fn load_state(&self) -> Result<PersistedState, StoreError> {
        self.load_state_at(chrono::Utc::now())
    }

    /// The state a restarted Vigil rebuilds itself from; `recent_starts`
    /// covers the 24 hours before `now`.
    pub fn load_state_at(&self, now: Time) -> Result<PersistedState, StoreError> {
        let e = || self.err("load the persisted state");
        let tx = self.conn.unchecked_transaction().map_err(e())?;
        let mut st = PersistedState {
            last_seq: head(&tx).map_err(e())?.0,
            ..PersistedState::default()
        };

        st.actions = self.load_actions(
            &tx,
            "WHERE state IN ('action_started', 'action_interrupted')",
        )?;
        st.open_actions = self.load_actions(
            &tx,
            "WHERE phase NOT IN ('done', 'rejected', 'expired', 'escalated', 'cancelled')",
        )?;
        // Both through an index: the newest proposal in the trail, and the
        // greatest id of the actions table (ids of one width sort by number).
        let newest = self.newest_proposal()?;
        let greatest: Option<String> = tx
            .query_row("SELECT max(action_id) FROM actions", [], |r| r.get(0))
            .map_err(e())?;
        st.max_action = [newest, greatest]
            .into_iter()
            .flatten()
            .chain(st.actions.iter().map(|a| a.action_id.clone()))
            .filter_map(|id| id.strip_prefix('A').and_then(|n| n.parse::<u64>().ok()))
            .max()
            .unwrap_or(0);

        let mut stmt = tx
            .prepare("SELECT runbook, target, opened_at, reason, seq FROM breakers ORDER BY seq")
            .map_err(e())?;
        let mut rows = stmt.query([]).map_err(e())?;
        while let Some(row) = rows.next().map_err(e())? {
            let seq = row.get::<_, i64>(4).map_err(e())? as u64;
            st.breakers.push(PersistedBreaker {
                runbook: row.get(0).map_err(e())?,
                target: row.get(1).map_err(e())?,
                opened_at: self.time(seq, row.get_ref(2).map_err(e())?)?,
                reason: row.get(3).map_err(e())?,
                seq,
            });
        }
        drop(rows);
        drop(stmt);

        let mut stmt = tx
            .prepare("SELECT name, value, seq FROM modes ORDER BY name")
            .map_err(e())?;
        let mut rows = stmt.query([]).map_err(e())?;
        while let Some(row) = rows.next().map_err(e())? {
            let seq = row.get::<_, i64>(2).map_err(e())? as u64;
            let name: String = row.get(0).map_err(e())?;
            let value: String = row.get(1).map_err(e())?;
            let value: serde_json::Value = serde_json::from_str(&value)
                .map_err(|err| self.corrupt(seq, format!("mode {name}: {err}")))?;
            st.modes.insert(name, value);
        }
        drop(rows);
        drop(stmt);
        st.dry_run = st.modes.get("dry_run").and_then(|v| v.as_bool());
        st.frozen = st.modes.get("frozen").and_then(|v| v.as_bool());

        let mut stmt = tx
            .prepare(
                "SELECT fingerprint, alert, labels, severity, since, last_at, seq, source, action_id
                 FROM alerts WHERE status = 'firing' ORDER BY seq",
            )
            .map_err(e())?;
        let mut rows = stmt.query([]).map_err(e())?;
        while let Some(row) = rows.next().map_err(e())? {
            let seq = row.get::<_, i64>(6).map_err(e())? as u64;
            let labels: Option<String> = row.get(2).map_err(e())?;
            let labels = match labels {
                Some(l) => serde_json::from_str(&l)
                    .map_err(|err| self.corrupt(seq, format!("alert labels: {err}")))?,
                None => Labels::new(),
            };
            let severity: Option<String> = row.get(3).map_err(e())?;
            st.firing_alerts.push(PersistedAlert {
                fingerprint: row.get(0).map_err(e())?,
                alert: row.get(1).map_err(e())?,
                labels,
                severity: severity.as_deref().and_then(Severity::parse),
                since: self.time(seq, row.get_ref(4).map_err(e())?)?,
                last_at: self.time(seq, row.get_ref(5).map_err(e())?)?,
                source: row.get(7).map_err(e())?,
                action_id: row.get(8).map_err(e())?,
            });
        }
        drop(rows);
        drop(stmt);

        let mut stmt = tx
            .prepare(
                "SELECT fingerprint, silence_id, until, actor, comment, seq
                 FROM silences ORDER BY seq",
            )
            .map_err(e())?;
        let mut rows = stmt.query([]).map_err(e())?;
        while let Some(row) = rows.next().map_err(e())? {
            let seq = row.get::<_, i64>(5).map_err(e())? as u64;
            st.silences.push(PersistedSilence {
                fingerprint: row.get(0).map_err(e())?,
                id: row
                    .get::<_, Option<String>>(1)
                    .map_err(e())?
                    .unwrap_or_default(),
                until: self.time(seq, row.get_ref(2).map_err(e())?)?,
                actor: row
                    .get::<_, Option<String>>(3)
                    .map_err(e())?
                    .unwrap_or_default(),
                comment: row
                    .get::<_, Option<String>>(4)
                    .map_err(e())?
                    .unwrap_or_default(),
            });
        }
        drop(rows);
        drop(stmt);

        let cutoff = micros(&(now - chrono::Duration::hours(24)));
        let mut stmt = tx
            .prepare(
                "SELECT runbook, target, action_id, at_us, seq FROM action_starts
                 WHERE at_us >= ?1 ORDER BY at_us, seq",
            )
            .map_err(e())?;
        let mut rows = stmt.query([cutoff]).map_err(e())?;
        while let Some(row) = rows.next().map_err(e())? {
            let seq = row.get::<_, i64>(4).map_err(e())? as u64;
            // The indexed microseconds, not the text: no parsing per row.
            let at_us: i64 = row.get(3).map_err(e())?;
            let at = chrono::DateTime::from_timestamp_micros(at_us)
                .ok_or_else(|| self.corrupt(seq, format!("stored start time {at_us} µs")))?;
            st.recent_starts.push(ActionStart {
                runbook: row.get(0).map_err(e())?,
                target: row.get(1).map_err(e())?,
                action_id: row.get(2).map_err(e())?,
                at,
                seq,
            });
        }
        Ok(st)
    }

    /// The rows of `actions` that `filter` (a WHERE clause) selects, oldest
    /// first.
    fn load_actions(
        &self,
        tx: &Connection,
        filter: &str,
    ) -> Result<Vec<PersistedAction>, StoreError> {
        let e = || self.err("load the persisted actions");
        let mut out = Vec::new();
        let mut stmt = tx
            .prepare(&format!(
                "SELECT action_id, runbook, target, alert, fingerprint, params, state, first_at,
                        last_at, attempt, first_seq, last_seq, phase, severity, reason, due_at,
                        approved_by, requested_by
                 FROM actions {filter} ORDER BY first_seq"
            ))
            .map_err(e())?;
        let mut rows = stmt.query([]).map_err(e())?;
        while let Some(row) = rows.next().map_err(e())? {
            let last_seq = row.get::<_, i64>(11).map_err(e())? as u64;
            let params: Option<String> = row.get(5).map_err(e())?;
            let params = match params {
                Some(p) => serde_json::from_str(&p)
                    .map_err(|err| self.corrupt(last_seq, format!("action params: {err}")))?,
                None => BTreeMap::new(),
            };
            let state: String = row.get(6).map_err(e())?;
            let state = RecordKind::parse(&state)
                .ok_or_else(|| self.corrupt(last_seq, format!("unknown kind {state:?}")))?;
            let severity: Option<String> = row.get(13).map_err(e())?;
            let due_at = match row.get_ref(15).map_err(e())? {
                ValueRef::Null => None,
                v => Some(self.time(last_seq, v)?),
            };
            out.push(PersistedAction {
                action_id: row.get(0).map_err(e())?,
                runbook: row.get(1).map_err(e())?,
                target: row.get(2).map_err(e())?,
                alert: row.get(3).map_err(e())?,
                fingerprint: row.get(4).map_err(e())?,
                params,
                state,
                first_at: self.time(last_seq, row.get_ref(7).map_err(e())?)?,
                last_at: self.time(last_seq, row.get_ref(8).map_err(e())?)?,
                attempt: row.get(9).map_err(e())?,
                first_seq: row.get::<_, i64>(10).map_err(e())? as u64,
                last_seq,
                phase: row.get(12).map_err(e())?,
                severity: severity.as_deref().and_then(Severity::parse),
                reason: row.get(14).map_err(e())?,
                due_at,
                approved_by: row.get(16).map_err(e())?,
                requested_by: row.get(17).map_err(e())?,
            });
        }
        Ok(out)
    }

    /// The action id of the newest `action_proposed` record that has one.
    fn newest_proposal(&self) -> Result<Option<String>, StoreError> {
        let proposals = AuditFilter {
            kind: Some(RecordKind::ActionProposed.as_str().to_string()),
            ..AuditFilter::default()
        };
        let mut before = None;
        loop {
            let page = self.page(&proposals, before, 64)?;
            let Some(last) = page.last() else {
                return Ok(None);
            };
            before = Some(last.seq);
            if let Some(id) = page.into_iter().find_map(|r| r.action_id) {
                return Ok(Some(id));
            }
        }
    }

    fn time(&self, seq: u64, v: ValueRef<'_>) -> Result<Time, StoreError> {
        let s = v
            .as_str()
            .map_err(|_| self.corrupt(seq, "a stored time is not text"))?;
        chrono::DateTime::parse_from_rfc3339(s)
            .map(|t| t.with_timezone(&chrono::Utc))
            .map_err(|err| self.corrupt(seq, format!("stored time {s:?}: {err}")))
    }

    /// Walks the whole trail in seq order, recomputing every hash, and
    /// reports the first record that was altered, removed or reordered.
    /// Checks per record, in order: seq continuity (a gap names the first
    /// missing seq), `prev` against the previous record's hash, the JSON's
    /// own `seq` against the row, and the recomputed hash. The chain head
    /// (written with every append) catches records removed from the end.
    /// The filter columns (`kind`, `target`, ...) are copies for the indexes
    /// and are not checked; the JSON is what the hash covers. Streams rows;
    /// memory use does not grow with the trail.
    pub fn verify(&self) -> Result<VerifyReport, StoreError> {
        let e = || self.err("read the audit trail");
        // One read transaction: the rows and the chain head are one snapshot
        // even while a writer appends.
        let tx = self.conn.unchecked_transaction().map_err(e())?;
        let mut check = chain::ChainCheck::new();
        {
            let mut stmt = tx
                .prepare("SELECT seq, json, prev, hash FROM audit ORDER BY seq")
                .map_err(e())?;
            let mut rows = stmt.query([]).map_err(e())?;
            while let Some(row) = rows.next().map_err(e())? {
                let seq: i64 = row.get(0).map_err(e())?;
                let text = |i: usize| -> Result<Option<&str>, StoreError> {
                    Ok(row.get_ref(i).map_err(e())?.as_str().ok())
                };
                if !check.row(seq, text(1)?, text(2)?, text(3)?) {
                    break;
                }
            }
        }
        if let Some(report) = check.stopped() {
            return Ok(report);
        }
        let head: Option<(i64, String)> = tx
            .query_row("SELECT seq, hash FROM chain_head WHERE id = 1", [], |r| {
                Ok((r.get(0)?, r.get(1)?))
            })
            .optional()
            .map_err(e())?;
        Ok(check.finish(head))
    }

    /// Writes the records with seq greater than `since` (all when `None`) as
    /// JSON lines: each record's fields plus `prev` and `hash`. Returns the
    /// number of lines written.
    pub fn export_jsonl(&self, w: &mut dyn Write, since: Option<u64>) -> Result<u64, StoreError> {
        let e = || self.err("read the audit trail");
        let io_err = |err: io::Error| StoreError::Export {
            path: self.path.clone(),
            source: Arc::new(err),
        };
        let mut out = io::BufWriter::with_capacity(1 << 16, w);
        let mut stmt = self
            .conn
            .prepare("SELECT seq, json, prev, hash FROM audit WHERE seq > ?1 ORDER BY seq")
            .map_err(e())?;
        let mut rows = stmt
            .query([since.unwrap_or(0).min(i64::MAX as u64) as i64])
            .map_err(e())?;
        let mut n = 0u64;
        let mut line = String::new();
        while let Some(row) = rows.next().map_err(e())? {
            let seq = row.get::<_, i64>(0).map_err(e())? as u64;
            let json: String = row.get(1).map_err(e())?;
            let prev: String = row.get(2).map_err(e())?;
            let hash: String = row.get(3).map_err(e())?;
            chain::export_line(&mut line, &json, prev, hash)
                .map_err(|why| self.corrupt(seq, why))?;
            out.write_all(line.as_bytes()).map_err(io_err)?;
            n += 1;
        }
        out.flush().map_err(io_err)?;
        Ok(n)
    }

    fn records(&self, sql: &str, args: &[&dyn rusqlite::ToSql]) -> Result<Vec<Record>, StoreError> {
        let e = || self.err("read the audit trail");
        let mut stmt = self.conn.prepare_cached(sql).map_err(e())?;
        let mut rows = stmt.query(args).map_err(e())?;
        let mut out = Vec::new();
        while let Some(row) = rows.next().map_err(e())? {
            let seq = row.get::<_, i64>(0).map_err(e())? as u64;
            let json = row.get_ref(1).map_err(e())?;
            let json = json
                .as_str()
                .map_err(|_| self.corrupt(seq, "stored JSON is not text"))?;
            let rec: Record = serde_json::from_str(json)
                .map_err(|err| self.corrupt(seq, format!("stored JSON is not a record: {err}")))?;
            out.push(rec);
        }
        Ok(out)
    }

    /// The record with this seq, if stored.
    pub fn get(&self, seq: u64) -> Result<Option<Record>, StoreError> {
        let mut v = self.records(
            "SELECT seq, json FROM audit WHERE seq = ?1",
            &[&(seq.min(i64::MAX as u64) as i64)],
        )?;
        Ok(v.pop())
    }

    /// The newest `n` records, oldest first (newest last).
    pub fn tail(&self, n: usize) -> Result<Vec<Record>, StoreError> {
        let mut v = self.records(
            "SELECT seq, json FROM audit ORDER BY seq DESC LIMIT ?1",
            &[&(n.min(i64::MAX as usize) as i64)],
        )?;
        v.reverse();
        Ok(v)
    }

    /// Up to `limit` records with seq greater than `seq`, oldest first (pass
    /// the last seq you already have).
    pub fn since(&self, seq: u64, limit: usize) -> Result<Vec<Record>, StoreError> {
        self.records(
            "SELECT seq, json FROM audit WHERE seq > ?1 ORDER BY seq LIMIT ?2",
            &[
                &(seq.min(i64::MAX as u64) as i64),
                &(limit.min(i64::MAX as usize) as i64),
            ],
        )
    }

    /// Up to `limit` records matching `filter` with seq below `before_seq`
    /// (all when `None`), newest first: page back through a long trail by
    /// passing the smallest seq of the previous page.
    ///
    /// A filtered page reads `audit_tags` one bucket of 1,024 seqs at a time,
    /// newest first, until the page is full.
    pub fn page(
        &self,
        filter: &AuditFilter,
        before_seq: Option<u64>,
        limit: usize,
    ) -> Result<Vec<Record>, StoreError> {
        let before = before_seq.map_or(i64::MAX, |s| s.min(i64::MAX as u64) as i64);
        let Some(tags) = self.filter_ids(filter)? else {
            return Ok(Vec::new());
        };
        let Some(&lead) = tags.first() else {
            let limit = limit.min(i64::MAX as usize) as i64;
            return self.records(
                "SELECT seq, json FROM audit WHERE seq < ?1 ORDER BY seq DESC LIMIT ?2",
                &[&before, &limit],
            );
        };
        if before <= 1 || limit == 0 {
            return Ok(Vec::new());
        }
        let sql = format!(
            "SELECT a.seq, a.json FROM audit_tags t JOIN audit a ON a.seq = t.seq
             WHERE t.bucket = ?1 AND t.tag = ?2 AND t.seq < ?3{} ORDER BY t.seq DESC LIMIT ?4",
            also_tagged(tags.len(), 5)
        );
        let newest = self.last_seq()?.min(before as u64 - 1);
        let mut out = Vec::new();
        let mut bucket = (newest >> schema::BUCKET_SHIFT) as i64;
        while bucket >= 0 && out.len() < limit {
            let want = (limit - out.len()) as i64;
            let mut args: Vec<&dyn rusqlite::ToSql> = vec![&bucket, &lead, &before, &want];
            args.extend(tags[1..].iter().map(|t| t as &dyn rusqlite::ToSql));
            out.extend(self.records(&sql, &args)?);
            bucket -= 1;
        }
        Ok(out)
    }

    /// How many records match `filter`.
    pub fn count(&self, filter: &AuditFilter) -> Result<u64, StoreError> {
        let e = || self.err("count audit records");
        let Some(tags) = self.filter_ids(filter)? else {
            return Ok(0);
        };
        let Some(&lead) = tags.first() else {
            // The trail is append-only and contiguous (`audit verify` says
            // so when it is not): its size is read from the two ends of
            // the key, not by scanning a million rows (seconds when cold).
            let n: i64 = self
                .conn
                .query_row(
                    "SELECT coalesce(max(seq) - min(seq) + 1, 0) FROM audit",
                    [],
                    |r| r.get(0),
                )
                .map_err(e())?;
            return Ok(n.max(0) as u64);
        };
        let sql = format!(
            "SELECT count(*) FROM audit_tags t WHERE t.bucket = ?1 AND t.tag = ?2{}",
            also_tagged(tags.len(), 3)
        );
        let mut stmt = self.conn.prepare_cached(&sql).map_err(e())?;
        let mut total = 0u64;
        for bucket in 0..=(self.last_seq()? >> schema::BUCKET_SHIFT) as i64 {
            let mut args: Vec<&dyn rusqlite::ToSql> = vec![&bucket, &lead];
            args.extend(tags[1..].iter().map(|t| t as &dyn rusqlite::ToSql));
            let n: i64 = stmt.query_row(args.as_slice(), |r| r.get(0)).map_err(e())?;
            total += n.max(0) as u64;
        }
        Ok(total)
    }

    /// The `audit_names` ids of the filter's values, the leading one first;
    /// `None` when a value was never recorded (nothing can match).
    fn filter_ids(&self, filter: &AuditFilter) -> Result<Option<Vec<i64>>, StoreError> {
        let mut ids = Vec::new();
        for (col, value) in filter.tags() {
            match name_id(&self.conn, col, value).map_err(self.err("read the audit names"))? {
                Some(id) => ids.push(id),
                None => return Ok(None),
            }
        }
        Ok(Some(ids))
    }
}

/// SQL requiring that `t.seq` also carries the tags bound from `?first` on,
/// for the `n - 1` tags after the leading one.
fn also_tagged(n: usize, first: usize) -> String {
    let mut sql = String::new();
    for i in 0..n.saturating_sub(1) {
        let _ = write!(
            sql,
            " AND EXISTS (SELECT 1 FROM audit_tags u
                          WHERE u.bucket = t.bucket AND u.tag = ?{} AND u.seq = t.seq)",
            first + i
        );
    }
    sql
}

fn checkpoint(conn: &Connection) -> rusqlite::Result<bool> {
    // One row: busy (another checkpoint held the lock), WAL frames, frames
    // copied.
    conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |r| {
        let (busy, log, copied): (i64, i64, i64) = (r.get(0)?, r.get(1)?, r.get(2)?);
        Ok(busy == 0 && log == copied)
    })
}

/// Opens a second read-write connection to `path` whose only job is to
/// checkpoint the WAL beside the writer.
pub(crate) fn checkpoint_connection(path: &Path) -> Result<Checkpointer, StoreError> {
    let conn = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .map_err(sql_err(path, "open the database to checkpoint it"))?;
    conn.busy_timeout(BUSY_TIMEOUT)
        .map_err(sql_err(path, "set the busy timeout"))?;
    conn.execute_batch("PRAGMA synchronous = FULL; PRAGMA wal_autocheckpoint = 0;")
        .map_err(sql_err(path, "set synchronous=FULL"))?;
    Ok(Checkpointer {
        conn,
        path: path.to_path_buf(),
    })
}

/// A connection that checkpoints the WAL (see [`checkpoint_connection`]).
pub(crate) struct Checkpointer {
    conn: Connection,
    path: PathBuf,
}

impl Checkpointer {
    pub(crate) fn checkpoint(&self) -> Result<bool, StoreError> {
        checkpoint(&self.conn).map_err(sql_err(&self.path, "checkpoint the WAL"))
    }
}

fn head(conn: &Connection) -> rusqlite::Result<(u64, String)> {
    let row: Option<(i64, String)> = conn
        .prepare_cached("SELECT seq, hash FROM audit ORDER BY seq DESC LIMIT 1")?
        .query_row([], |r| Ok((r.get(0)?, r.get(1)?)))
        .optional()?;
    Ok(match row {
        Some((seq, hash)) => (seq.max(0) as u64, hash),
        None => (0, GENESIS_PREV.to_string()),
    })
}

/// A record's values of [`schema::TAG_COLS`], in that order.
fn tag_values(r: &Record) -> [Option<&str>; 4] {
    [
        Some(r.kind.as_str()),
        r.runbook.as_deref(),
        r.target.as_deref(),
        r.actor.as_deref(),
    ]
}

/// The writer's memory of `audit_names` ids, one map per tag column. Ids
/// are never reused or changed once committed; a failed transaction clears
/// the maps, since ids it assigned were rolled back.
#[derive(Default)]
struct NameIds {
    cols: [std::collections::HashMap<String, i64>; 4],
}

impl NameIds {
    /// Invented label values must not grow the maps without bound: a full
    /// map starts over (the ids stay in the file).
    const MAX_PER_COL: usize = 65_536;

    fn clear(&mut self) {
        self.cols
            .iter_mut()
            .for_each(std::collections::HashMap::clear);
    }

    /// The id of `name` in column `col`, numbering it if it is new.
    fn id(&mut self, tx: &Connection, col: usize, name: &str) -> rusqlite::Result<i64> {
        if let Some(&id) = self.cols[col].get(name) {
            return Ok(id);
        }
        let id = match name_id(tx, col, name)? {
            Some(id) => id,
            None => {
                tx.prepare_cached("INSERT INTO audit_names (col, name) VALUES (?1, ?2)")?
                    .execute(params![schema::TAG_COLS[col], name])?;
                tx.last_insert_rowid()
            }
        };
        let map = &mut self.cols[col];
        if map.len() >= Self::MAX_PER_COL {
            map.clear();
        }
        map.insert(name.to_string(), id);
        Ok(id)
    }
}

/// Writes a transaction's `audit_tags` rows (tag id, seq) in key order,
/// many rows per statement: a statement per row cost more than the b-tree
/// work itself.
fn insert_tags(tx: &Connection, tags: &mut [(u64, i64, u64)]) -> rusqlite::Result<()> {
    tags.sort_unstable();
    let mut rest = &tags[..];
    for rows in [256usize, 32, 4, 1] {
        if rest.len() < rows {
            continue;
        }
        let mut sql = String::from("INSERT INTO audit_tags (bucket, tag, seq) VALUES ");
        for i in 0..rows {
            let sep = if i == 0 { "" } else { "," };
            let (t, q) = (2 * i + 1, 2 * i + 2);
            let _ = write!(sql, "{sep}(?{q} >> {}, ?{t}, ?{q})", schema::BUCKET_SHIFT);
        }
        let mut stmt = tx.prepare_cached(&sql)?;
        let mut args: Vec<i64> = Vec::with_capacity(2 * rows);
        while rest.len() >= rows {
            let (now, later) = rest.split_at(rows);
            args.clear();
            for &(_, tag, seq) in now {
                args.extend([tag, seq as i64]);
            }
            stmt.execute(rusqlite::params_from_iter(args.iter()))?;
            rest = later;
        }
    }
    Ok(())
}

/// The stored id of `name` in tag column `col`, if any record had it.
fn name_id(conn: &Connection, col: usize, name: &str) -> rusqlite::Result<Option<i64>> {
    conn.prepare_cached("SELECT id FROM audit_names WHERE col = ?1 AND name = ?2")?
        .query_row(params![schema::TAG_COLS[col], name], |r| r.get(0))
        .optional()
}

/// One `actions` row as the records of one transaction leave it, written
/// once when the transaction's records are all applied. Fields merge the way
/// the upsert does: a record's value replaces the earlier one, an absent
/// value keeps it.
struct PendingAction {
    runbook: Option<String>,
    target: Option<String>,
    alert: Option<String>,
    fingerprint: Option<String>,
    params: Option<String>,
    state: &'static str,
    first_at: String,
    last_at: String,
    attempt: Option<u32>,
    first_seq: i64,
    last_seq: i64,
    phase: Option<&'static str>,
    severity: Option<&'static str>,
    reason: Option<String>,
    due_at: Option<String>,
    approved_by: Option<String>,
    requested_by: Option<String>,
}

/// What one record says about its action beyond the record's own columns
/// (the schema 4 columns of `actions`); None keeps what was known.
struct ActionFacts {
    phase: Option<&'static str>,
    severity: Option<&'static str>,
    reason: Option<String>,
    due_at: Option<String>,
    approved_by: Option<String>,
    requested_by: Option<String>,
}

impl ActionFacts {
    fn of(r: &Record) -> ActionFacts {
        let data_str = |k: &str| {
            r.data
                .as_ref()
                .and_then(|d| d.get(k))
                .and_then(|v| v.as_str())
                .map(str::to_string)
        };
        let phase = match r.kind {
            RecordKind::ActionProposed => Some("proposed"),
            RecordKind::ActionBlocked => Some("blocked"),
            RecordKind::ApprovalRequested => Some("awaiting_approval"),
            RecordKind::ActionApproved => {
                // Partial four-eyes approvals leave the action waiting.
                let d = r.data.as_ref();
                let got = d
                    .and_then(|d| d.get("approvals"))
                    .and_then(|v| v.as_array())
                    .map(Vec::len);
                let need = d
                    .and_then(|d| d.get("approvals_needed"))
                    .and_then(|v| v.as_u64());
                match (got, need) {
                    (Some(g), Some(n)) if (g as u64) < n => None,
                    _ => Some("approved"),
                }
            }
            RecordKind::ActionStarted => Some("running"),
            RecordKind::ActionInterrupted => Some("interrupted"),
            RecordKind::ActionSucceeded => Some("verifying"),
            RecordKind::RetryScheduled => Some("retry_waiting"),
            RecordKind::VerificationPassed | RecordKind::DryRunPlanned => Some("done"),
            RecordKind::ActionRejected => Some("rejected"),
            RecordKind::ActionExpired => Some("expired"),
            RecordKind::Escalated => Some("escalated"),
            RecordKind::ActionCancelled => Some("cancelled"),
            _ => None,
        };
        let due_at = match r.kind {
            RecordKind::ApprovalRequested => data_str("expires_at"),
            RecordKind::RetryScheduled => data_str("at").or_else(|| {
                // "...; attempt 2 of 3 at 2026-01-01T00:00:30Z (backoff 30s)"
                let d = r.detail.as_deref()?;
                let (_, rest) = d.rsplit_once(" at ")?;
                Some(rest.split(' ').next()?.to_string())
            }),
            _ => None,
        };
        ActionFacts {
            phase,
            severity: match r.kind {
                RecordKind::ActionProposed => r.severity.map(Severity::as_str),
                _ => None,
            },
            reason: match r.kind {
                RecordKind::ActionBlocked => r.reason.clone(),
                _ => None,
            },
            due_at,
            approved_by: match (r.kind, phase) {
                (RecordKind::ActionApproved, Some(_)) => r.actor.clone(),
                _ => None,
            },
            requested_by: match r.kind {
                RecordKind::ActionProposed
                    if r.alert.as_deref() == Some(crate::engine::MANUAL_ALERT)
                        || r.data
                            .as_ref()
                            .is_some_and(|d| d.get("from_analysis").is_some()) =>
                {
                    r.actor.clone()
                }
                _ => None,
            },
        }
    }
}

/// The derived-state writes of one transaction. Most records of a batch
/// change an action's row; merging them per action writes each row once.
#[derive(Default)]
struct DerivedBatch {
    /// Action ids in the order they first appeared (rows are written in it).
    order: Vec<String>,
    actions: std::collections::HashMap<String, PendingAction>,
    /// "alert received from X" of a `signal` record, for the
    /// `alert_firing` of the same fingerprint that follows it.
    sources: std::collections::HashMap<String, String>,
}

impl DerivedBatch {
    /// Rebuilding over a long history flushes now and then instead of
    /// holding every action in memory.
    const MAX_PENDING: usize = 4096;

    fn merge_action(&mut self, id: &str, r: &Record, at: &str) {
        fn keep(new: &Option<String>, old: &mut Option<String>) {
            if new.is_some() {
                old.clone_from(new);
            }
        }
        let params = r
            .params
            .as_ref()
            .and_then(|p| serde_json::to_string(p).ok());
        let seq = r.seq as i64;
        let f = ActionFacts::of(r);
        if let Some(p) = self.actions.get_mut(id) {
            p.phase = f.phase.or(p.phase);
            p.severity = f.severity.or(p.severity);
            keep(&f.reason, &mut p.reason);
            keep(&f.due_at, &mut p.due_at);
            keep(&f.approved_by, &mut p.approved_by);
            keep(&f.requested_by, &mut p.requested_by);
            keep(&r.runbook, &mut p.runbook);
            keep(&r.target, &mut p.target);
            keep(&r.alert, &mut p.alert);
            keep(&r.fingerprint, &mut p.fingerprint);
            if params.is_some() {
                p.params = params;
            }
            p.state = r.kind.as_str();
            at.clone_into(&mut p.last_at);
            p.attempt = r.attempt.or(p.attempt);
            p.last_seq = seq;
            return;
        }
        self.order.push(id.to_string());
        self.actions.insert(
            id.to_string(),
            PendingAction {
                runbook: r.runbook.clone(),
                target: r.target.clone(),
                alert: r.alert.clone(),
                fingerprint: r.fingerprint.clone(),
                params,
                state: r.kind.as_str(),
                first_at: at.to_string(),
                last_at: at.to_string(),
                attempt: r.attempt,
                first_seq: seq,
                last_seq: seq,
                phase: f.phase,
                severity: f.severity,
                reason: f.reason,
                due_at: f.due_at,
                approved_by: f.approved_by,
                requested_by: f.requested_by,
            },
        );
    }

    /// The runbook and target an action has so far: this transaction's
    /// records first, then the stored row.
    fn action_subject(
        &self,
        tx: &Connection,
        id: &str,
    ) -> rusqlite::Result<Option<(Option<String>, Option<String>)>> {
        let stored: Option<(Option<String>, Option<String>)> = tx
            .prepare_cached("SELECT runbook, target FROM actions WHERE action_id = ?1")?
            .query_row([id], |row| Ok((row.get(0)?, row.get(1)?)))
            .optional()?;
        Ok(match (self.actions.get(id), stored) {
            (Some(p), Some((rb, t))) => Some((p.runbook.clone().or(rb), p.target.clone().or(t))),
            (Some(p), None) => Some((p.runbook.clone(), p.target.clone())),
            (None, stored) => stored,
        })
    }

    /// Writes the merged rows.
    fn flush(&mut self, tx: &Connection) -> rusqlite::Result<()> {
        if self.order.is_empty() {
            return Ok(());
        }
        let mut stmt = tx.prepare_cached(
            "INSERT INTO actions (action_id, runbook, target, alert, fingerprint, params, state,
                                  first_at, last_at, attempt, first_seq, last_seq, phase,
                                  severity, reason, due_at, approved_by, requested_by)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16,
                     ?17, ?18)
             ON CONFLICT (action_id) DO UPDATE SET
                 runbook = coalesce(excluded.runbook, runbook),
                 target = coalesce(excluded.target, target),
                 alert = coalesce(excluded.alert, alert),
                 fingerprint = coalesce(excluded.fingerprint, fingerprint),
                 params = coalesce(excluded.params, params),
                 state = excluded.state,
                 last_at = excluded.last_at,
                 attempt = coalesce(excluded.attempt, attempt),
                 last_seq = excluded.last_seq,
                 phase = coalesce(excluded.phase, phase),
                 severity = coalesce(excluded.severity, severity),
                 reason = coalesce(excluded.reason, reason),
                 due_at = coalesce(excluded.due_at, due_at),
                 approved_by = coalesce(excluded.approved_by, approved_by),
                 requested_by = coalesce(excluded.requested_by, requested_by)",
        )?;
        for id in self.order.drain(..) {
            let Some(p) = self.actions.remove(&id) else {
                continue;
            };
            stmt.execute(params![
                id,
                p.runbook,
                p.target,
                p.alert,
                p.fingerprint,
                p.params,
                p.state,
                p.first_at,
                p.last_at,
                p.attempt,
                p.first_seq,
                p.last_seq,
                p.phase,
                p.severity,
                p.reason,
                p.due_at,
                p.approved_by,
                p.requested_by,
            ])?;
        }
        Ok(())
    }
}

/// Updates the derived tables for one (numbered) record. The `actions` row
/// is merged into `batch`; [`DerivedBatch::flush`] writes it.
fn apply_derived(tx: &Connection, r: &Record, batch: &mut DerivedBatch) -> rusqlite::Result<()> {
    let seq = r.seq as i64;
    let at = fmt_time(&r.at);
    if let Some(id) = &r.action_id {
        batch.merge_action(id, r, &at);
    }
    match r.kind {
        RecordKind::Signal => {
            if let (Some(fp), Some(src)) = (
                &r.fingerprint,
                r.detail
                    .as_deref()
                    .and_then(|d| d.strip_prefix("alert received from ")),
            ) {
                batch.sources.insert(fp.clone(), src.to_string());
            }
        }
        RecordKind::ActionProposed => {
            if let (Some(fp), Some(id)) = (&r.fingerprint, &r.action_id) {
                tx.prepare_cached("UPDATE alerts SET action_id = ?2 WHERE fingerprint = ?1")?
                    .execute(params![fp, id])?;
            }
        }
        RecordKind::SilenceCreated => {
            if let Some(fp) = &r.fingerprint {
                let d = |k: &str| {
                    r.data
                        .as_ref()
                        .and_then(|d| d.get(k))
                        .and_then(|v| v.as_str())
                        .map(str::to_string)
                };
                if let Some(until) = d("ends_at") {
                    tx.prepare_cached(
                        "INSERT INTO silences (fingerprint, silence_id, until, actor, comment, seq)
                         VALUES (?1, ?2, ?3, ?4, ?5, ?6)
                         ON CONFLICT (fingerprint) DO UPDATE SET
                             silence_id = excluded.silence_id, until = excluded.until,
                             actor = excluded.actor, comment = excluded.comment,
                             seq = excluded.seq",
                    )?
                    .execute(params![
                        fp,
                        d("silence_id"),
                        until,
                        r.actor,
                        r.reason,
                        seq
                    ])?;
                }
            }
        }
        RecordKind::SilenceExpired => {
            if let Some(fp) = &r.fingerprint {
                tx.prepare_cached("DELETE FROM silences WHERE fingerprint = ?1")?
                    .execute([fp])?;
            }
        }
        RecordKind::CircuitOpened => {
            if let Some(runbook) = &r.runbook {
                tx.prepare_cached(
                    "INSERT INTO breakers (runbook, target, opened_at, reason, seq)
                     VALUES (?1, ?2, ?3, ?4, ?5)
                     ON CONFLICT (runbook, target) DO UPDATE SET
                         reason = coalesce(excluded.reason, reason), seq = excluded.seq",
                )?
                .execute(params![
                    runbook,
                    r.target.as_deref().unwrap_or(""),
                    at,
                    r.reason,
                    seq
                ])?;
            }
        }
        RecordKind::CircuitClosed => {
            if let Some(runbook) = &r.runbook {
                match &r.target {
                    Some(t) => tx
                        .prepare_cached("DELETE FROM breakers WHERE runbook = ?1 AND target = ?2")?
                        .execute(params![runbook, t])?,
                    // No target: every breaker of the runbook closes.
                    None => tx
                        .prepare_cached("DELETE FROM breakers WHERE runbook = ?1")?
                        .execute(params![runbook])?,
                };
            }
        }
        RecordKind::AlertFiring => {
            if let Some(fp) = alert_fingerprint(r) {
                let labels = r
                    .labels
                    .as_ref()
                    .and_then(|l| serde_json::to_string(l).ok());
                tx.prepare_cached(
                    "INSERT INTO alerts (fingerprint, alert, labels, severity, status, since,
                                         last_at, resolved_at, seq, source, action_id)
                     VALUES (?1, ?2, ?3, ?4, 'firing', ?5, ?5, NULL, ?6, ?7, NULL)
                     ON CONFLICT (fingerprint) DO UPDATE SET
                         source = CASE WHEN status = 'firing'
                                       THEN coalesce(source, excluded.source)
                                       ELSE excluded.source END,
                         action_id = CASE WHEN status = 'firing' THEN action_id ELSE NULL END,
                         alert = coalesce(excluded.alert, alert),
                         labels = coalesce(excluded.labels, labels),
                         severity = coalesce(excluded.severity, severity),
                         since = CASE WHEN status = 'firing' THEN since ELSE excluded.since END,
                         status = 'firing',
                         last_at = excluded.last_at,
                         resolved_at = NULL,
                         seq = excluded.seq",
                )?
                .execute(params![
                    fp,
                    r.alert,
                    labels,
                    r.severity.map(Severity::as_str),
                    at,
                    seq,
                    batch.sources.remove(&fp),
                ])?;
            }
        }
        RecordKind::AlertResolved => {
            if let Some(fp) = alert_fingerprint(r) {
                tx.prepare_cached(
                    "UPDATE alerts SET status = 'resolved', resolved_at = ?2, last_at = ?2, seq = ?3
                     WHERE fingerprint = ?1",
                )?
                .execute(params![fp, at, seq])?;
            }
        }
        RecordKind::ModeChanged => {
            if let Some(serde_json::Value::Object(m)) = &r.data {
                let mut stmt = tx.prepare_cached(
                    "INSERT INTO modes (name, value, at, seq) VALUES (?1, ?2, ?3, ?4)
                     ON CONFLICT (name) DO UPDATE SET
                         value = excluded.value, at = excluded.at, seq = excluded.seq",
                )?;
                for (k, v) in m {
                    stmt.execute(params![k, v.to_string(), at, seq])?;
                }
            }
        }
        RecordKind::ActionStarted => {
            let (mut runbook, mut target) = (r.runbook.clone(), r.target.clone());
            if let (Some(id), true) = (&r.action_id, runbook.is_none() || target.is_none())
                && let Some((rb, t)) = batch.action_subject(tx, id)?
            {
                runbook = runbook.or(rb);
                target = target.or(t);
            }
            if let Some(runbook) = runbook {
                tx.prepare_cached(
                    "INSERT INTO action_starts (seq, runbook, target, action_id, at, at_us)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                )?
                .execute(params![
                    seq,
                    runbook,
                    target.unwrap_or_default(),
                    r.action_id,
                    at,
                    micros(&r.at)
                ])?;
            }
        }
        _ => {}
    }
    Ok(())
}

/// The fingerprint an alert record is keyed by: its own, or the one of its
/// labels.
fn alert_fingerprint(r: &Record) -> Option<String> {
    r.fingerprint
        .clone()
        .or_else(|| r.labels.as_ref().map(fingerprint))
}
