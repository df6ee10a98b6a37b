//! Opening a store: recognising the file, making it private, and bringing
//! its schema up to date; WAL checkpoints.

use super::*;

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

    /// For a copy of a trail whose truth is elsewhere (the data dir's copy
    /// of a shared PostgreSQL trail): commits reach the WAL without waiting
    /// for the disk. A power loss may lose the copy's newest records, never
    /// corrupt it; they are copied again from the store at the next start.
    pub fn relax_sync_for_copy(&self) -> Result<(), StoreError> {
        self.conn
            .execute_batch("PRAGMA synchronous = NORMAL")
            .map_err(sql_err(&self.path, "set synchronous=NORMAL"))
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
