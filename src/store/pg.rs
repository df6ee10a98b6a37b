//! The PostgreSQL backend: the same hash-chained trail as the SQLite file,
//! in a database several hubs can share (`[store] url`).
//!
//! - Rows carry the same `json`, `prev` and `hash` as in SQLite, made by the
//!   same [`chain_hash`](super::chain_hash) over the same canonical JSON, so
//!   a trail verifies and exports alike on both.
//! - An append is one statement (one round trip, one transaction): it
//!   moves the single `chain_head` row from the head this writer last saw
//!   and inserts the batch (`unnest` of arrays) only if it did, so writers
//!   in several processes chain one after another (the loser rechains).
//!   `synchronous_commit = on`: durable before the call returns.
//! - The schema version lives in `vigil_schema`; migrations run under a
//!   transaction-scoped advisory lock, so two hubs starting together
//!   migrate once. A database written by a newer schema is refused.
//! - The password comes from the environment variable named by `[store]
//!   password_env` or from `~/.pgpass` (`$PGPASSFILE`); a URL carrying one
//!   is refused, and no error or log line shows it.
//! - No TLS in this build: the connection is plain TCP; keep it on a
//!   trusted network or behind a tunnel.

use std::io::{self, Write};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use postgres::{Client, IsolationLevel, NoTls};

use super::chain::{ChainCheck, export_line};
pub use super::pg_target::{PgTarget, StoreSpec};
use super::{AuditFilter, StoreError, VerifyReport, chain_hash};
use crate::model::{Record, RecordKind, canonical_json_with_seq, fmt_time};

/// Ordered migrations of the PostgreSQL schema: `PG_MIGRATIONS[i]` takes
/// version `i` to `i + 1`. Append; never edit one that has shipped.
const PG_MIGRATIONS: &[&str] = &[
    // 1: the audit trail and its chain head.
    r#"
    CREATE TABLE audit (
        seq       BIGINT PRIMARY KEY,
        at        TEXT NOT NULL,
        kind      TEXT NOT NULL,
        runbook   TEXT,
        target    TEXT,
        actor     TEXT,
        action_id TEXT,
        json      TEXT NOT NULL,
        prev      TEXT NOT NULL,
        hash      TEXT NOT NULL
    );
    CREATE INDEX audit_kind    ON audit (kind, seq);
    CREATE INDEX audit_runbook ON audit (runbook, seq) WHERE runbook IS NOT NULL;
    CREATE INDEX audit_target  ON audit (target, seq)  WHERE target IS NOT NULL;
    CREATE INDEX audit_actor   ON audit (actor, seq)   WHERE actor IS NOT NULL;
    CREATE TABLE chain_head (
        id   INTEGER PRIMARY KEY CHECK (id = 1),
        seq  BIGINT NOT NULL,
        hash TEXT NOT NULL
    );
    INSERT INTO chain_head (id, seq, hash)
        VALUES (1, 0, '0000000000000000000000000000000000000000000000000000000000000000');
    "#,
    // 2: the active hub's lease and its fencing epoch (see lease.rs).
    r#"
    CREATE TABLE hub_lease (
        id         INTEGER PRIMARY KEY CHECK (id = 1),
        holder     TEXT,
        epoch      BIGINT NOT NULL,
        expires_at TIMESTAMPTZ NOT NULL
    );
    INSERT INTO hub_lease (id, holder, epoch, expires_at) VALUES (1, NULL, 0, '-infinity');
    "#,
    // 3: where the lease's holder serves its API (standbys name it).
    r#"
    ALTER TABLE hub_lease ADD COLUMN addr TEXT;
    "#,
    // 4: deliveries a standby accepted, for the active hub to handle.
    r#"
    CREATE TABLE inbox (
        id          BIGSERIAL PRIMARY KEY,
        received_at TIMESTAMPTZ NOT NULL DEFAULT now(),
        received_by TEXT NOT NULL,
        source      TEXT NOT NULL,
        body        TEXT NOT NULL
    );
    "#,
];

/// What `vigil_schema.application` says in a database that is Vigil's.
const APPLICATION: &str = "vigil";

/// The advisory lock key migrations hold ("VGIL").
const MIGRATION_LOCK: i64 = 0x5647_494C;

/// How long connecting may take before the server counts as unreachable.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// The PostgreSQL schema version this build writes and understands.
pub(crate) fn pg_version() -> i32 {
    PG_MIGRATIONS.len() as i32
}

/// The PostgreSQL store. One connection; not `Sync` (one per thread, like
/// the SQLite [`Store`](super::Store)).
pub struct PgStore {
    client: Client,
    target: PgTarget,
    path: PathBuf,
    read_only: bool,
    /// Set on an active hub's writer: `action_started` is only written
    /// while this (holder, epoch) holds an unexpired lease.
    fence: Option<super::lease::Fence>,
    /// The fence holds every batch, not only those that start an action
    /// (a hub's own writer: a hub that lost its lease writes nothing).
    fence_all: bool,
    /// The append statement, prepared on first use.
    append_stmt: Option<postgres::Statement>,
    /// The head this store's last append left (None: read it first).
    last_head: Option<(u64, String)>,
}

impl std::fmt::Debug for PgStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PgStore")
            .field("store", &self.path)
            .field("read_only", &self.read_only)
            .finish()
    }
}

/// Maps a driver error on `path` while doing `what` (after connecting: the
/// password is no longer at hand, and no query carries it).
fn pg_err(path: PathBuf, what: &str, e: postgres::Error) -> StoreError {
    StoreError::Postgres {
        path,
        what: what.to_string(),
        source: Arc::new(e),
    }
}

impl PgStore {
    /// Connects to the store, creating or migrating its schema.
    pub fn open(target: &PgTarget) -> Result<PgStore, StoreError> {
        let mut s = PgStore::connect(target, false)?;
        s.migrate()?;
        Ok(s)
    }

    /// Connects to an existing store for reading (`vigil audit ...`); it
    /// must have this build's schema version.
    pub fn open_read_only(target: &PgTarget) -> Result<PgStore, StoreError> {
        let mut s = PgStore::connect(target, true)?;
        let known = pg_version();
        match s.version()? {
            None => Err(StoreError::Missing { path: s.path }),
            Some(v) if v > known => Err(StoreError::TooNew {
                path: s.path,
                found: v.into(),
                known: known.into(),
            }),
            Some(v) if v < known => Err(StoreError::NeedsMigration {
                path: s.path,
                found: v.into(),
                known: known.into(),
            }),
            Some(_) => Ok(s),
        }
    }

    fn connect(target: &PgTarget, read_only: bool) -> Result<PgStore, StoreError> {
        let path = target.path();
        let password = target.password()?;
        let mut cfg = postgres::Config::new();
        cfg.host(&target.host)
            .port(target.port)
            .user(&target.user)
            .dbname(&target.dbname)
            .application_name("vigil")
            .connect_timeout(CONNECT_TIMEOUT)
            // A store that stops answering (a partition drops packets) is
            // an error within seconds, not a hang until TCP gives up.
            .keepalives(true)
            .keepalives_idle(Duration::from_secs(5))
            .tcp_user_timeout(Duration::from_secs(10));
        if let Some(p) = &password {
            cfg.password(p);
        }
        let client = cfg.connect(NoTls).map_err(|e| {
            if let Some(db) = e.as_db_error() {
                // The server answered (bad password, no such database, ...):
                // its message names the user or database, never the password.
                let mut message = format!("{}: {}", db.severity(), db.message());
                if let Some(p) = password.as_deref().filter(|p| !p.is_empty()) {
                    message = message.replace(p, "***");
                }
                StoreError::BadConfig {
                    path: path.clone(),
                    message: format!("the server refused the connection: {message}"),
                }
            } else {
                let detail = std::error::Error::source(&e)
                    .map(ToString::to_string)
                    .unwrap_or_else(|| e.to_string());
                StoreError::Unreachable {
                    path: path.clone(),
                    addr: target.addr(),
                    detail,
                }
            }
        })?;
        let mut s = PgStore {
            client,
            target: target.clone(),
            path,
            read_only,
            fence: None,
            fence_all: false,
            append_stmt: None,
            last_head: None,
        };
        // Every commit waits for its WAL flush, whatever the server's default.
        let set = if read_only {
            "SET synchronous_commit = on; SET default_transaction_read_only = on"
        } else {
            "SET synchronous_commit = on"
        };
        s.client
            .batch_execute(set)
            .map_err(|e| pg_err(s.path.clone(), "set synchronous_commit", e))?;
        Ok(s)
    }

    /// From now on, a batch holding an `action_started` record commits only
    /// while `fence` holds the lease (checked in the batch's transaction).
    pub fn set_fence(&mut self, fence: super::lease::Fence) {
        self.fence = Some(fence);
    }

    /// From now on, every batch commits only while `fence` holds the
    /// lease: the writer of an active hub, which must write nothing once
    /// another hub took over (its records would be missing from the new
    /// active's state).
    pub fn set_fence_all(&mut self, fence: super::lease::Fence) {
        self.fence = Some(fence);
        self.fence_all = true;
    }

    /// Keeps a delivery a standby accepted (`body` as received) until the
    /// active hub handles it: durable when this returns.
    pub fn journal(
        &mut self,
        received_by: &str,
        source: &str,
        body: &str,
    ) -> Result<i64, StoreError> {
        let row = self
            .client
            .query_one(
                "INSERT INTO inbox (received_by, source, body) VALUES ($1, $2, $3) RETURNING id",
                &[&received_by, &source, &body],
            )
            .map_err(|e| pg_err(self.path.clone(), "journal a delivery", e))?;
        Ok(row.get(0))
    }

    /// The oldest `limit` journaled deliveries: (id, source, body).
    pub fn inbox(&mut self, limit: i64) -> Result<Vec<(i64, String, String)>, StoreError> {
        let rows = self
            .client
            .query(
                "SELECT id, source, body FROM inbox ORDER BY id LIMIT $1",
                &[&limit],
            )
            .map_err(|e| pg_err(self.path.clone(), "read the inbox", e))?;
        Ok(rows
            .iter()
            .map(|r| (r.get(0), r.get(1), r.get(2)))
            .collect())
    }

    /// Forgets journaled deliveries once handled.
    pub fn inbox_done(&mut self, ids: &[i64]) -> Result<(), StoreError> {
        self.client
            .execute("DELETE FROM inbox WHERE id = ANY($1)", &[&ids])
            .map(drop)
            .map_err(|e| pg_err(self.path.clone(), "clear the inbox", e))
    }

    /// Whether the connection to the server is gone.
    pub fn is_closed(&self) -> bool {
        self.client.is_closed()
    }

    /// The same store on a new connection, with the same fence.
    pub fn reconnect(&self) -> Result<PgStore, StoreError> {
        let mut s = PgStore::connect(&self.target, self.read_only)?;
        s.fence = self.fence.clone();
        s.fence_all = self.fence_all;
        Ok(s)
    }

    /// The chain hash of the record `seq`, if stored.
    pub fn hash_at(&mut self, seq: u64) -> Result<Option<String>, StoreError> {
        let seq = seq.min(i64::MAX as u64) as i64;
        let row = self
            .client
            .query_opt("SELECT hash FROM audit WHERE seq = $1", &[&seq])
            .map_err(|e| pg_err(self.path.clone(), "read a record's hash", e))?;
        Ok(row.map(|r| r.get(0)))
    }

    pub(crate) fn client(&mut self) -> &mut Client {
        &mut self.client
    }

    /// The store as errors name it (`postgresql://user@host:port/db`).
    pub fn path(&self) -> &std::path::Path {
        &self.path
    }

    pub fn target(&self) -> &PgTarget {
        &self.target
    }

    pub fn is_read_only(&self) -> bool {
        self.read_only
    }

    /// The schema version, `None` when the database has no Vigil schema.
    fn version(&mut self) -> Result<Option<i32>, StoreError> {
        let path = self.path.clone();
        read_version(&mut self.client, &path)
    }

    fn migrate(&mut self) -> Result<(), StoreError> {
        let path = self.path.clone();
        let e = |what: &str| {
            let path = path.clone();
            let what = what.to_string();
            move |err| pg_err(path, &what, err)
        };
        let mut tx = self
            .client
            .transaction()
            .map_err(e("begin a schema migration"))?;
        tx.execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATION_LOCK])
            .map_err(e("lock the schema for migration"))?;
        let known = pg_version();
        let mut version = match read_version(&mut tx, &path)? {
            Some(v) => v,
            None => {
                let others: i64 = tx
                    .query_one(
                        "SELECT count(*) FROM pg_tables
                         WHERE schemaname = current_schema() AND tablename IN ('audit', 'chain_head', 'hub_lease')",
                        &[],
                    )
                    .map_err(e("read the schema"))?
                    .get(0);
                if others > 0 {
                    return Err(StoreError::Foreign {
                        path,
                        detail: "it has audit tables but no vigil_schema table".into(),
                    });
                }
                tx.batch_execute(&format!(
                    "CREATE TABLE vigil_schema (
                         id INTEGER PRIMARY KEY CHECK (id = 1),
                         application TEXT NOT NULL,
                         version INTEGER NOT NULL);
                     INSERT INTO vigil_schema VALUES (1, '{APPLICATION}', 0);"
                ))
                .map_err(e("create the schema table"))?;
                0
            }
        };
        if version > known {
            return Err(StoreError::TooNew {
                path,
                found: version.into(),
                known: known.into(),
            });
        }
        while version < known {
            let next = version + 1;
            let what = format!("migrate the schema to version {next}");
            tx.batch_execute(PG_MIGRATIONS[version as usize])
                .map_err(e(&what))?;
            tx.execute(
                "UPDATE vigil_schema SET version = $1 WHERE id = 1",
                &[&next],
            )
            .map_err(e(&what))?;
            version = next;
        }
        tx.commit().map_err(e("commit the schema migration"))
    }

    /// The seq and hash of the newest record (0 and the genesis value when
    /// the trail is empty).
    pub fn head(&mut self) -> Result<(u64, String), StoreError> {
        let row = self
            .client
            .query_one("SELECT seq, hash FROM chain_head WHERE id = 1", &[])
            .map_err(|e| pg_err(self.path.clone(), "read the chain head", e))?;
        Ok((row.get::<_, i64>(0).max(0) as u64, row.get(1)))
    }

    /// Numbers, chains and writes `records` in one transaction, as
    /// [`Store::append`](super::Store::append) does.
    pub fn append(&mut self, records: &mut [Record]) -> Result<(), StoreError> {
        self.append_serialised(records, None)
    }

    pub(crate) fn append_serialised(
        &mut self,
        records: &mut [Record],
        after_seq: Option<&[String]>,
    ) -> Result<(), StoreError> {
        let refuse = self.read_only.then(|| StoreError::ReadOnly {
            path: self.path.clone(),
            what: "append audit records",
        });
        super::guarded_append(records, refuse, |records| {
            self.append_tx(records, after_seq)
        })
    }

    /// One statement, so one round trip and one implicit transaction per
    /// batch: it moves the chain head from the head this store last saw
    /// (and, for a batch with an `action_started` on a fenced store, only
    /// while the lease is this hub's, under a share lock on its row) and
    /// inserts the rows only if it did. When another writer moved the head
    /// first, nothing was written: read the head again and rechain.
    fn append_tx(
        &mut self,
        records: &mut [Record],
        after_seq: Option<&[String]>,
    ) -> Result<(), StoreError> {
        let path = self.path.clone();
        let e = |err| pg_err(path.clone(), "append audit records", err);
        let fence = self.fence.clone().filter(|_| {
            self.fence_all || records.iter().any(|r| r.kind == RecordKind::ActionStarted)
        });
        let stmt = match &self.append_stmt {
            Some(s) => s.clone(),
            None => {
                let s = self.client.prepare(APPEND_SQL).map_err(e)?;
                self.append_stmt = Some(s.clone());
                s
            }
        };
        for _ in 0..APPEND_ATTEMPTS {
            let (head_seq, head_hash) = match self.last_head.take() {
                Some(h) => h,
                None => self.head()?,
            };
            let rows = ChainedRows::of(records, after_seq, head_seq, &head_hash);
            let (seq, prev) = (rows.seqs.last().copied().unwrap_or(0), rows.hash_last());
            let n = self
                .client
                .execute(
                    &stmt,
                    &[
                        &rows.seqs,
                        &rows.at,
                        &rows.kind,
                        &rows.runbook,
                        &rows.target,
                        &rows.actor,
                        &rows.action_id,
                        &rows.json,
                        &rows.prevs,
                        &rows.hashes,
                        &(head_seq as i64),
                        &head_hash,
                        &fence.as_ref().map(|f| f.holder.as_str()),
                        &fence.as_ref().map_or(0, |f| f.epoch),
                    ],
                )
                .map_err(e)?;
            if n == records.len() as u64 {
                self.last_head = Some((seq as u64, prev));
                return Ok(());
            }
            if let Some(f) = &fence {
                // Nothing written: say so if it was the lease.
                let mut tx = self.client.transaction().map_err(e)?;
                f.check(&mut tx, &path)?;
            }
        }
        Err(StoreError::BadConfig {
            path,
            message: format!(
                "the chain head moved under {APPEND_ATTEMPTS} attempts in a row (too many writers?); nothing was written"
            ),
        })
    }

    /// [`Store::verify`](super::Store::verify) on PostgreSQL: the same
    /// checks over one snapshot, read in pages of 10,000 rows.
    pub fn verify(&mut self) -> Result<VerifyReport, StoreError> {
        let path = self.path.clone();
        let e = |err| pg_err(path.clone(), "read the audit trail", err);
        let mut tx = snapshot(&mut self.client).map_err(e)?;
        let mut check = ChainCheck::new();
        scan(&mut tx, 0, |seq, row| {
            let text = |i: usize| row.try_get::<_, &str>(i).ok();
            Ok(check.row(seq, text(1), text(2), text(3)))
        })
        .map_err(|err| err.into_store(&path))?;
        if let Some(report) = check.stopped() {
            return Ok(report);
        }
        let head = tx
            .query_opt("SELECT seq, hash FROM chain_head WHERE id = 1", &[])
            .map_err(e)?
            .map(|r| (r.get::<_, i64>(0), r.get::<_, String>(1)));
        // An empty trail's head row says seq 0: the same as no head in SQLite.
        let head = head.filter(|(s, _)| *s > 0);
        Ok(check.finish(head))
    }

    /// [`Store::export_jsonl`](super::Store::export_jsonl) on PostgreSQL.
    pub fn export_jsonl(
        &mut self,
        w: &mut dyn Write,
        since: Option<u64>,
    ) -> Result<u64, StoreError> {
        let path = self.path.clone();
        let e = |err| pg_err(path.clone(), "read the audit trail", err);
        let io_err = |err: io::Error| StoreError::Export {
            path: path.clone(),
            source: Arc::new(err),
        };
        let mut out = io::BufWriter::with_capacity(1 << 16, w);
        let mut tx = snapshot(&mut self.client).map_err(e)?;
        let after = since.unwrap_or(0).min(i64::MAX as u64) as i64;
        let (mut n, mut line) = (0u64, String::new());
        scan(&mut tx, after, |seq, row| {
            export_line(&mut line, row.get(1), row.get(2), row.get(3)).map_err(|why| {
                StoreError::Corrupt {
                    path: path.clone(),
                    seq: seq as u64,
                    why,
                }
            })?;
            out.write_all(line.as_bytes()).map_err(io_err)?;
            n += 1;
            Ok(true)
        })
        .map_err(|err| err.into_store(&path))?;
        out.flush().map_err(io_err)?;
        Ok(n)
    }

    fn records(
        &mut self,
        sql: &str,
        args: &[&(dyn postgres::types::ToSql + Sync)],
    ) -> Result<Vec<Record>, StoreError> {
        let rows = self
            .client
            .query(sql, args)
            .map_err(|e| pg_err(self.path.clone(), "read the audit trail", e))?;
        rows.iter()
            .map(|row| {
                let seq: i64 = row.get(0);
                serde_json::from_str(row.get(1)).map_err(|err| StoreError::Corrupt {
                    path: self.path.clone(),
                    seq: seq as u64,
                    why: format!("stored JSON is not a record: {err}"),
                })
            })
            .collect()
    }

    /// The record with this seq, if stored.
    pub fn get(&mut self, seq: u64) -> Result<Option<Record>, StoreError> {
        let seq = seq.min(i64::MAX as u64) as i64;
        Ok(self
            .records("SELECT seq, json FROM audit WHERE seq = $1", &[&seq])?
            .pop())
    }

    /// The newest `n` records, oldest first.
    pub fn tail(&mut self, n: usize) -> Result<Vec<Record>, StoreError> {
        let n = n.min(i64::MAX as usize) as i64;
        let mut v = self.records(
            "SELECT seq, json FROM audit ORDER BY seq DESC LIMIT $1",
            &[&n],
        )?;
        v.reverse();
        Ok(v)
    }

    /// Up to `limit` records with seq greater than `seq`, oldest first.
    pub fn since(&mut self, seq: u64, limit: usize) -> Result<Vec<Record>, StoreError> {
        let (seq, limit) = (
            seq.min(i64::MAX as u64) as i64,
            limit.min(i64::MAX as usize) as i64,
        );
        self.records(
            "SELECT seq, json FROM audit WHERE seq > $1 ORDER BY seq LIMIT $2",
            &[&seq, &limit],
        )
    }

    /// Up to `limit` records matching `filter` below `before_seq`, newest
    /// first (see [`Store::page`](super::Store::page)).
    pub fn page(
        &mut self,
        filter: &AuditFilter,
        before_seq: Option<u64>,
        limit: usize,
    ) -> Result<Vec<Record>, StoreError> {
        let before = before_seq.map_or(i64::MAX, |s| s.min(i64::MAX as u64) as i64);
        let limit = limit.min(i64::MAX as usize) as i64;
        let (cond, values) = filter_sql(filter, 3);
        let sql =
            format!("SELECT seq, json FROM audit WHERE seq < $1{cond} ORDER BY seq DESC LIMIT $2");
        let mut args: Vec<&(dyn postgres::types::ToSql + Sync)> = vec![&before, &limit];
        args.extend(
            values
                .iter()
                .map(|v| v as &(dyn postgres::types::ToSql + Sync)),
        );
        self.records(&sql, &args)
    }

    /// How many records match `filter`.
    pub fn count(&mut self, filter: &AuditFilter) -> Result<u64, StoreError> {
        let (cond, values) = filter_sql(filter, 1);
        let sql = if values.is_empty() {
            // Append-only and contiguous: read the size from the key's ends.
            "SELECT coalesce(max(seq) - min(seq) + 1, 0)::int8 FROM audit".to_string()
        } else {
            format!("SELECT count(*) FROM audit WHERE true{cond}")
        };
        let args: Vec<&(dyn postgres::types::ToSql + Sync)> = values
            .iter()
            .map(|v| v as &(dyn postgres::types::ToSql + Sync))
            .collect();
        let n: i64 = self
            .client
            .query_one(&sql, &args)
            .map_err(|e| pg_err(self.path.clone(), "count audit records", e))?
            .get(0);
        Ok(n.max(0) as u64)
    }
}

/// How often an append rechains after another writer moved the head.
const APPEND_ATTEMPTS: usize = 64;

/// See [`PgStore::append_tx`]: $1-$10 the rows, $11/$12 the head they
/// chain from, $13/$14 the fence (holder NULL: none). The new head is the
/// last row's.
const APPEND_SQL: &str = "
    WITH head AS (
        UPDATE chain_head
           SET seq = ($1::int8[])[cardinality($1::int8[])],
               hash = ($10::text[])[cardinality($10::text[])]
         WHERE id = 1 AND seq = $11::int8 AND hash = $12::text
           AND ($13::text IS NULL OR EXISTS (
                   SELECT 1 FROM hub_lease
                    WHERE id = 1 AND holder = $13 AND epoch = $14::int8 AND expires_at > now()
                      FOR SHARE))
        RETURNING 1)
    INSERT INTO audit (seq, at, kind, runbook, target, actor, action_id, json, prev, hash)
    SELECT u.* FROM unnest($1::int8[], $2::text[], $3::text[], $4::text[], $5::text[],
                           $6::text[], $7::text[], $8::text[], $9::text[], $10::text[]) AS u,
                    head";

/// A batch numbered and chained after a head, as statement arrays.
struct ChainedRows<'a> {
    seqs: Vec<i64>,
    at: Vec<String>,
    kind: Vec<&'static str>,
    runbook: Vec<Option<&'a str>>,
    target: Vec<Option<&'a str>>,
    actor: Vec<Option<&'a str>>,
    action_id: Vec<Option<&'a str>>,
    json: Vec<String>,
    prevs: Vec<String>,
    hashes: Vec<String>,
}

impl<'a> ChainedRows<'a> {
    /// Numbers `records` after `seq` (setting their `seq`) and chains them
    /// after `prev`.
    fn of(
        records: &'a mut [Record],
        after_seq: Option<&[String]>,
        mut seq: u64,
        prev: &str,
    ) -> ChainedRows<'a> {
        let n = records.len();
        let mut rows = ChainedRows {
            seqs: Vec::with_capacity(n),
            at: Vec::with_capacity(n),
            kind: Vec::with_capacity(n),
            runbook: Vec::with_capacity(n),
            target: Vec::with_capacity(n),
            actor: Vec::with_capacity(n),
            action_id: Vec::with_capacity(n),
            json: Vec::with_capacity(n),
            prevs: Vec::with_capacity(n),
            hashes: Vec::with_capacity(n),
        };
        let mut prev = prev.to_string();
        for (i, r) in records.iter_mut().enumerate() {
            seq += 1;
            r.seq = seq;
            let j = match after_seq.and_then(|a| a.get(i)) {
                Some(after) => canonical_json_with_seq(seq, after),
                None => r.canonical_json(),
            };
            let hash = chain_hash(&prev, &j);
            rows.seqs.push(seq as i64);
            rows.at.push(fmt_time(&r.at));
            rows.kind.push(r.kind.as_str());
            rows.json.push(j);
            rows.prevs.push(std::mem::replace(&mut prev, hash.clone()));
            rows.hashes.push(hash);
        }
        for r in records.iter() {
            rows.runbook.push(r.runbook.as_deref());
            rows.target.push(r.target.as_deref());
            rows.actor.push(r.actor.as_deref());
            rows.action_id.push(r.action_id.as_deref());
        }
        rows
    }

    fn hash_last(&self) -> String {
        self.hashes.last().cloned().unwrap_or_default()
    }
}

/// A read-only transaction on one snapshot of the trail.
fn snapshot(c: &mut Client) -> Result<postgres::Transaction<'_>, postgres::Error> {
    c.build_transaction()
        .isolation_level(IsolationLevel::RepeatableRead)
        .read_only(true)
        .start()
}

/// What stopped a [`scan`]: the driver, or the caller.
enum ScanError {
    Pg(postgres::Error),
    Store(StoreError),
}

impl ScanError {
    fn into_store(self, path: &std::path::Path) -> StoreError {
        match self {
            ScanError::Pg(e) => pg_err(path.to_path_buf(), "read the audit trail", e),
            ScanError::Store(e) => e,
        }
    }
}

impl From<StoreError> for ScanError {
    fn from(e: StoreError) -> Self {
        ScanError::Store(e)
    }
}

/// Hands `f` the rows (seq, json, prev, hash) with seq above `after` in
/// seq order, 10,000 at a time (memory does not grow with the trail),
/// until they run out or `f` says false.
fn scan(
    tx: &mut postgres::Transaction<'_>,
    mut after: i64,
    mut f: impl FnMut(i64, &postgres::Row) -> Result<bool, StoreError>,
) -> Result<(), ScanError> {
    loop {
        let rows = tx
            .query(
                "SELECT seq, json, prev, hash FROM audit WHERE seq > $1 ORDER BY seq LIMIT 10000",
                &[&after],
            )
            .map_err(ScanError::Pg)?;
        if rows.is_empty() {
            return Ok(());
        }
        for row in &rows {
            let seq: i64 = row.get(0);
            after = seq;
            if !f(seq, row)? {
                return Ok(());
            }
        }
    }
}

/// ` AND col = $k ...` for the filter's set fields, numbered from `first`,
/// and their values in that order.
fn filter_sql(filter: &AuditFilter, first: usize) -> (String, Vec<String>) {
    let mut sql = String::new();
    let mut values = Vec::new();
    for (col, v) in [
        ("target", &filter.target),
        ("actor", &filter.actor),
        ("runbook", &filter.runbook),
        ("kind", &filter.kind),
    ] {
        if let Some(v) = v {
            sql.push_str(&format!(" AND {col} = ${}", first + values.len()));
            values.push(v.clone());
        }
    }
    (sql, values)
}

/// `vigil_schema`'s version, `None` when the table does not exist or is
/// not Vigil's.
fn read_version(
    c: &mut impl postgres::GenericClient,
    path: &std::path::Path,
) -> Result<Option<i32>, StoreError> {
    let e = |err| pg_err(path.to_path_buf(), "read the schema version", err);
    let exists: bool = c
        .query_one("SELECT to_regclass('vigil_schema') IS NOT NULL", &[])
        .map_err(e)?
        .get(0);
    if !exists {
        return Ok(None);
    }
    let row = c
        .query_opt(
            "SELECT application, version FROM vigil_schema WHERE id = 1",
            &[],
        )
        .map_err(e)?;
    match row {
        Some(r) if r.get::<_, &str>(0) == APPLICATION => Ok(Some(r.get(1))),
        _ => Err(StoreError::Foreign {
            path: path.to_path_buf(),
            detail: "its vigil_schema table does not say vigil".into(),
        }),
    }
}
