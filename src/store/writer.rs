//! Group commit: one OS thread owns the [`Store`] and commits whatever many
//! callers queued in one transaction, then answers each of them.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{self, Receiver, Sender, SyncSender, TryRecvError};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

use tokio::sync::oneshot;

use super::{PgStore, Store, StoreError};
use crate::model::Record;

/// At most this many records go into one transaction; more stay queued for
/// the next one.
const MAX_BATCH_RECORDS: usize = 16_384;

type Answer = Result<Vec<Record>, StoreError>;

enum Reply {
    Async(oneshot::Sender<Answer>),
    Blocking(SyncSender<Answer>),
}

impl Reply {
    fn send(self, answer: Answer) {
        // A caller that went away no longer wants the answer; its records
        // are committed (or not) all the same.
        match self {
            Reply::Async(tx) => {
                let _ = tx.send(answer);
            }
            Reply::Blocking(tx) => {
                let _ = tx.send(answer);
            }
        }
    }
}

enum Msg {
    Append {
        records: Vec<Record>,
        /// Each record's JSON after its `seq`, made by the caller's thread.
        after_seq: Vec<String>,
        reply: Reply,
    },
    Shutdown,
}

/// Counters of an [`AuditWriter`] since it started.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct WriterStats {
    /// Transactions committed.
    pub commits: u64,
    /// Records committed.
    pub records: u64,
    /// Append requests answered with success.
    pub requests: u64,
    /// Append requests answered with an error.
    pub failed_requests: u64,
    /// The most records committed in one transaction.
    pub max_batch: u64,
    /// Time spent in transactions (writing and syncing), in microseconds.
    pub busy_micros: u64,
}

#[derive(Default)]
struct Counters {
    commits: AtomicU64,
    records: AtomicU64,
    requests: AtomicU64,
    failed_requests: AtomicU64,
    max_batch: AtomicU64,
    busy_micros: AtomicU64,
}

struct Inner {
    tx: Sender<Msg>,
    counters: Arc<Counters>,
    thread: Mutex<Option<JoinHandle<()>>>,
    path: PathBuf,
}

impl Inner {
    fn join(&self) -> Result<(), StoreError> {
        let handle = match self.thread.lock() {
            Ok(mut g) => g.take(),
            Err(poisoned) => poisoned.into_inner().take(),
        };
        let Some(handle) = handle else {
            return Ok(());
        };
        let _ = self.tx.send(Msg::Shutdown);
        handle.join().map_err(|_| StoreError::WriterPanicked {
            path: self.path.clone(),
        })
    }
}

impl Drop for Inner {
    fn drop(&mut self) {
        // The last handle is gone: commit what is queued and stop.
        let _ = self.join();
    }
}

/// A cloneable handle to the audit writer thread.
///
/// Every append returns only after the transaction holding its records was
/// committed (durably: WAL, `synchronous=FULL`), with the records numbered
/// and chained. Requests that arrive while a commit is in progress are
/// committed together in the next transaction, so many concurrent callers
/// share one `fsync`. When a commit fails, every caller whose records were in
/// it gets the error (the records of a failed multi-caller batch are retried
/// once per caller before giving up, so one caller cannot fail the others).
///
/// Dropping the last handle (or [`AuditWriter::shutdown`]) commits what is
/// queued and joins the thread.
#[derive(Clone)]
pub struct AuditWriter {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for AuditWriter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AuditWriter")
            .field("path", &self.inner.path)
            .finish()
    }
}

impl AuditWriter {
    /// Opens the store in `dir` read-write and starts the writer thread.
    pub fn open(dir: &Path) -> Result<AuditWriter, StoreError> {
        AuditWriter::spawn(Store::open(dir)?)
    }

    /// Starts the writer thread, which owns `store` from now on.
    pub fn spawn(store: Store) -> Result<AuditWriter, StoreError> {
        let path = store.path().to_path_buf();
        refuse_read_only(store.is_read_only(), &path)?;
        // Commits only append to the WAL; copying it into the database (and
        // that fsync) happens on a thread of its own.
        let checkpointer = super::checkpoint_connection(&path)?;
        store.set_auto_checkpoint(0)?;
        AuditWriter::start(path, move |rx, c| run(store, rx, c, checkpointer))
    }

    /// Starts the writer thread on a PostgreSQL store. The server keeps
    /// its own WAL: there is no checkpoint thread.
    pub fn spawn_pg(store: PgStore) -> Result<AuditWriter, StoreError> {
        let path = store.path().to_path_buf();
        refuse_read_only(store.is_read_only(), &path)?;
        AuditWriter::start(path, move |rx, c| run_plain(store, rx, c))
    }

    /// Starts the writer of an active hub on PostgreSQL: each batch goes to
    /// `pg` (fenced by the lease, see [`PgStore::set_fence_all`]), then to
    /// the data dir's copy `local` (see [`catch_up`](super::catch_up)).
    pub fn spawn_mirrored(pg: PgStore, local: Store) -> Result<AuditWriter, StoreError> {
        let path = pg.path().to_path_buf();
        refuse_read_only(pg.is_read_only() || local.is_read_only(), &path)?;
        let store = super::mirror::Mirrored {
            pg,
            local,
            behind: false,
        };
        AuditWriter::start(path, move |rx, c| run_plain(store, rx, c))
    }

    /// Starts the thread that runs `body` on the request queue.
    fn start(
        path: PathBuf,
        body: impl FnOnce(Receiver<Msg>, &Counters) + Send + 'static,
    ) -> Result<AuditWriter, StoreError> {
        let (tx, rx) = mpsc::channel();
        let counters = Arc::new(Counters::default());
        let c = counters.clone();
        let thread = std::thread::Builder::new()
            .name("vigil-audit".into())
            .spawn(move || body(rx, &c))
            .map_err(|e| StoreError::Io {
                path: path.clone(),
                what: "start the audit writer thread".into(),
                source: Arc::new(e),
            })?;
        Ok(AuditWriter {
            inner: Arc::new(Inner {
                tx,
                counters,
                thread: Mutex::new(Some(thread)),
                path,
            }),
        })
    }

    /// The database file (or the PostgreSQL store's URL).
    pub fn path(&self) -> &Path {
        &self.inner.path
    }

    /// Counters since the writer started.
    pub fn stats(&self) -> WriterStats {
        let c = &self.inner.counters;
        WriterStats {
            commits: c.commits.load(Ordering::Relaxed),
            records: c.records.load(Ordering::Relaxed),
            requests: c.requests.load(Ordering::Relaxed),
            failed_requests: c.failed_requests.load(Ordering::Relaxed),
            max_batch: c.max_batch.load(Ordering::Relaxed),
            busy_micros: c.busy_micros.load(Ordering::Relaxed),
        }
    }

    fn closed(&self) -> StoreError {
        StoreError::WriterClosed {
            path: self.inner.path.clone(),
        }
    }

    /// Queues `records` for the writer. Serialising them happens here, on
    /// the caller's thread, so that many callers share that work instead of
    /// queueing it on the one writer.
    fn send(&self, records: Vec<Record>, reply: Reply) -> Result<(), StoreError> {
        let after_seq = records
            .iter()
            .map(Record::canonical_json_after_seq)
            .collect();
        self.inner
            .tx
            .send(Msg::Append {
                records,
                after_seq,
                reply,
            })
            .map_err(|_| self.closed())
    }

    /// Appends `records` and waits (asynchronously) for the commit. Returns
    /// them numbered. If the future is dropped early the records may still
    /// be committed.
    pub async fn append(&self, records: Vec<Record>) -> Result<Vec<Record>, StoreError> {
        let (tx, rx) = oneshot::channel();
        self.send(records, Reply::Async(tx))?;
        rx.await.map_err(|_| self.closed())?
    }

    /// Appends `records` and blocks the calling thread until the commit.
    /// Returns them numbered. Safe to call from any thread (it does not need
    /// or disturb a tokio runtime, but it does block the thread).
    pub fn append_blocking(&self, records: Vec<Record>) -> Result<Vec<Record>, StoreError> {
        let (tx, rx) = mpsc::sync_channel(1);
        self.send(records, Reply::Blocking(tx))?;
        rx.recv().map_err(|_| self.closed())?
    }

    /// Returns once everything queued before the call is committed.
    pub fn flush(&self) -> Result<(), StoreError> {
        self.append_blocking(Vec::new()).map(drop)
    }

    /// [`AuditWriter::flush`] for async callers.
    pub async fn flush_async(&self) -> Result<(), StoreError> {
        self.append(Vec::new()).await.map(drop)
    }

    /// Commits what is queued, stops the thread and waits for it. Later
    /// appends through any handle fail with [`StoreError::WriterClosed`].
    /// Blocks: from async code call it via `spawn_blocking`.
    pub fn shutdown(&self) -> Result<(), StoreError> {
        self.inner.join()
    }
}

/// Records committed since the last checkpoint at which the writer asks for
/// one (SQLite's automatic threshold is 1000 pages, roughly as many).
const CHECKPOINT_AFTER_RECORDS: u64 = 2_000;
/// ... and at which it checkpoints itself before committing more. The WAL
/// only starts over once a checkpoint has copied all of it, which a thread
/// beside a busy writer never quite does; by then it has copied most of it,
/// so this one is short.
const CHECKPOINT_INLINE_AFTER_RECORDS: u64 = 8_000;

/// The checkpoint thread: copies the WAL into the database whenever the
/// writer nudges it, until the writer goes away.
fn spawn_checkpointer(
    checkpointer: super::Checkpointer,
) -> Option<(SyncSender<()>, JoinHandle<()>)> {
    let (nudge, wait) = mpsc::sync_channel::<()>(1);
    let handle = std::thread::Builder::new()
        .name("vigil-checkpoint".into())
        .spawn(move || {
            while wait.recv().is_ok() {
                if let Err(e) = checkpointer.checkpoint() {
                    tracing::warn!(error = %e, "WAL checkpoint failed; the writer will catch up");
                }
            }
        })
        .ok()?;
    Some((nudge, handle))
}

fn run(
    mut store: Store,
    rx: Receiver<Msg>,
    counters: &Counters,
    checkpointer: super::Checkpointer,
) {
    let mut background = spawn_checkpointer(checkpointer);
    if background.is_none() {
        // No thread: commits checkpoint as SQLite does by default.
        let _ = store.set_auto_checkpoint(1000);
    }
    // Records committed since the last nudge, and since the writer's own
    // last checkpoint.
    let (mut since_nudge, mut since_inline) = (0u64, 0u64);
    let mut stop = false;
    while !stop {
        let Some(batch) = gather(&rx, &mut stop) else {
            break;
        };
        let records = batch.records as u64;
        commit(&mut store, batch.requests, counters);
        if let Some((nudge, _)) = &background {
            since_nudge += records;
            since_inline += records;
            if since_inline >= CHECKPOINT_INLINE_AFTER_RECORDS {
                match store.checkpoint() {
                    Ok(true) => (since_nudge, since_inline) = (0, 0),
                    // Another checkpoint was running: try after the next commit.
                    Ok(false) => {}
                    Err(e) => tracing::warn!(error = %e, "WAL checkpoint failed"),
                }
            } else if since_nudge >= CHECKPOINT_AFTER_RECORDS {
                since_nudge = 0;
                let _ = nudge.try_send(());
            }
        }
    }
    if let Some((nudge, handle)) = background.take() {
        drop(nudge);
        let _ = handle.join();
    }
}

fn refuse_read_only(read_only: bool, path: &Path) -> Result<(), StoreError> {
    if read_only {
        return Err(StoreError::ReadOnly {
            path: path.to_path_buf(),
            what: "start an audit writer",
        });
    }
    Ok(())
}

/// Waits for a request, then takes everything already queued into the same
/// transaction (on shutdown, everything queued at all). `None` when every
/// handle is gone.
fn gather(rx: &Receiver<Msg>, stop: &mut bool) -> Option<Batch> {
    let mut batch = Batch::default();
    batch.take(rx.recv().ok()?, stop);
    while *stop || batch.records < MAX_BATCH_RECORDS {
        match rx.try_recv() {
            Ok(m) => batch.take(m, stop),
            Err(TryRecvError::Empty) => break,
            Err(TryRecvError::Disconnected) => {
                *stop = true;
                break;
            }
        }
    }
    Some(batch)
}

/// The writer loop of a store without a checkpoint to run (PostgreSQL).
fn run_plain<S: Appender>(mut store: S, rx: Receiver<Msg>, counters: &Counters) {
    let mut stop = false;
    while !stop {
        let Some(batch) = gather(&rx, &mut stop) else {
            break;
        };
        commit(&mut store, batch.requests, counters);
    }
}

/// What the writer thread commits to: either backend.
pub(crate) trait Appender: Send + 'static {
    fn append_serialised(
        &mut self,
        records: &mut [Record],
        after_seq: Option<&[String]>,
    ) -> Result<(), StoreError>;
}

impl Appender for Store {
    fn append_serialised(
        &mut self,
        records: &mut [Record],
        after_seq: Option<&[String]>,
    ) -> Result<(), StoreError> {
        Store::append_serialised(self, records, after_seq)
    }
}

impl Appender for PgStore {
    fn append_serialised(
        &mut self,
        records: &mut [Record],
        after_seq: Option<&[String]>,
    ) -> Result<(), StoreError> {
        PgStore::append_serialised(self, records, after_seq)
    }
}

impl Appender for super::mirror::Mirrored {
    fn append_serialised(
        &mut self,
        records: &mut [Record],
        after_seq: Option<&[String]>,
    ) -> Result<(), StoreError> {
        super::mirror::Mirrored::append_serialised(self, records, after_seq)
    }
}

/// One caller's records, their JSON after `seq`, and where the answer goes.
type Request = (Vec<Record>, Vec<String>, Reply);

#[derive(Default)]
struct Batch {
    requests: Vec<Request>,
    records: usize,
}

impl Batch {
    fn take(&mut self, m: Msg, stop: &mut bool) {
        match m {
            Msg::Append {
                records,
                after_seq,
                reply,
            } => {
                self.records += records.len();
                self.requests.push((records, after_seq, reply));
            }
            Msg::Shutdown => *stop = true,
        }
    }
}

fn commit<S: Appender>(store: &mut S, batch: Vec<Request>, counters: &Counters) {
    if batch.is_empty() {
        return;
    }
    let lens: Vec<usize> = batch.iter().map(|(r, _, _)| r.len()).collect();
    let total = lens.iter().sum();
    let mut all: Vec<Record> = Vec::with_capacity(total);
    let mut all_json: Vec<String> = Vec::with_capacity(total);
    let mut replies = Vec::with_capacity(batch.len());
    for (mut records, mut after_seq, reply) in batch {
        all.append(&mut records);
        all_json.append(&mut after_seq);
        replies.push(reply);
    }
    let ok = |n: usize| {
        if n == 0 {
            return; // flushes only: nothing was written
        }
        counters.commits.fetch_add(1, Ordering::Relaxed);
        counters.records.fetch_add(n as u64, Ordering::Relaxed);
        counters.max_batch.fetch_max(n as u64, Ordering::Relaxed);
    };
    let answered = |reply: Reply, answer: Answer| {
        let c = if answer.is_ok() {
            &counters.requests
        } else {
            &counters.failed_requests
        };
        c.fetch_add(1, Ordering::Relaxed);
        reply.send(answer);
    };
    let started = std::time::Instant::now();
    let result = store.append_serialised(&mut all, Some(&all_json));
    let busy = |since: std::time::Instant| {
        let us = u64::try_from(since.elapsed().as_micros()).unwrap_or(u64::MAX);
        counters.busy_micros.fetch_add(us, Ordering::Relaxed);
    };
    busy(started);
    match result {
        Ok(()) => {
            ok(all.len());
            let mut it = all.into_iter();
            for (reply, len) in replies.into_iter().zip(lens) {
                answered(reply, Ok(it.by_ref().take(len).collect()));
            }
        }
        Err(e) if replies.len() == 1 => {
            for reply in replies {
                answered(reply, Err(e.clone()));
            }
        }
        Err(_) => {
            // Retry each caller alone: a failure that belongs to one request
            // must not fail the others; a general failure fails them all.
            let mut it = all.into_iter();
            let mut json = all_json.into_iter();
            for (reply, len) in replies.into_iter().zip(lens) {
                let mut part: Vec<Record> = it.by_ref().take(len).collect();
                let part_json: Vec<String> = json.by_ref().take(len).collect();
                let started = std::time::Instant::now();
                let answer = store
                    .append_serialised(&mut part, Some(&part_json))
                    .map(|()| part);
                busy(started);
                if let Ok(p) = &answer {
                    ok(p.len());
                }
                answered(reply, answer);
            }
        }
    }
}
