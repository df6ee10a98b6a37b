//! One type for "the configured store": the SQLite file in the data dir
//! (the default) or a PostgreSQL database (`[store] url`). Callers that read
//! or append pick nothing: they call the same methods on either.

use std::io::Write;
use std::path::Path;

use super::pg::{PgStore, PgTarget, StoreSpec};
use super::{AuditFilter, AuditWriter, Store, StoreError, VerifyReport};
use crate::model::Record;

/// The configured store, opened.
#[derive(Debug)]
pub enum AnyStore {
    Sqlite(Store),
    Postgres(PgStore),
}

/// Calls the same method on whichever backend is open.
macro_rules! both {
    ($self:ident, $s:ident => $e:expr) => {
        match $self {
            AnyStore::Sqlite($s) => $e,
            AnyStore::Postgres($s) => $e,
        }
    };
}

impl AnyStore {
    /// The PostgreSQL target `[store]` names, if any (`Err` names what is
    /// wrong with it, without a secret).
    pub fn target(spec: Option<&StoreSpec>) -> Result<Option<PgTarget>, StoreError> {
        let Some(spec) = spec else { return Ok(None) };
        let Some(url) = spec.url.as_deref() else {
            return match &spec.password_env {
                Some(_) => Err(bad("[store] password_env is set but [store] url is not")),
                None => Ok(None),
            };
        };
        spec.lease_ttl().map_err(|m| bad(&m))?;
        PgTarget::parse(url, spec.password_env.as_deref())
            .map(Some)
            .map_err(|m| bad(&m))
    }

    /// Opens the configured store read-write, migrating its schema.
    pub fn open(spec: Option<&StoreSpec>, data_dir: &Path) -> Result<AnyStore, StoreError> {
        Ok(match AnyStore::target(spec)? {
            Some(t) => AnyStore::Postgres(PgStore::open(&t)?),
            None => AnyStore::Sqlite(Store::open(data_dir)?),
        })
    }

    /// Opens the configured store for reading (`vigil audit ...`).
    pub fn open_read_only(
        spec: Option<&StoreSpec>,
        data_dir: &Path,
    ) -> Result<AnyStore, StoreError> {
        Ok(match AnyStore::target(spec)? {
            Some(t) => AnyStore::Postgres(PgStore::open_read_only(&t)?),
            None => AnyStore::Sqlite(Store::open_read_only(data_dir)?),
        })
    }

    /// The database file, or the store's URL without secrets.
    pub fn path(&self) -> &Path {
        both!(self, s => s.path())
    }

    pub fn head(&mut self) -> Result<(u64, String), StoreError> {
        both!(self, s => s.head())
    }

    pub fn append(&mut self, records: &mut [Record]) -> Result<(), StoreError> {
        both!(self, s => s.append(records))
    }

    pub fn verify(&mut self) -> Result<VerifyReport, StoreError> {
        both!(self, s => s.verify())
    }

    pub fn export_jsonl(
        &mut self,
        w: &mut dyn Write,
        since: Option<u64>,
    ) -> Result<u64, StoreError> {
        both!(self, s => s.export_jsonl(w, since))
    }

    pub fn get(&mut self, seq: u64) -> Result<Option<Record>, StoreError> {
        both!(self, s => s.get(seq))
    }

    pub fn tail(&mut self, n: usize) -> Result<Vec<Record>, StoreError> {
        both!(self, s => s.tail(n))
    }

    pub fn since(&mut self, seq: u64, limit: usize) -> Result<Vec<Record>, StoreError> {
        both!(self, s => s.since(seq, limit))
    }

    pub fn page(
        &mut self,
        filter: &AuditFilter,
        before_seq: Option<u64>,
        limit: usize,
    ) -> Result<Vec<Record>, StoreError> {
        both!(self, s => s.page(filter, before_seq, limit))
    }

    pub fn count(&mut self, filter: &AuditFilter) -> Result<u64, StoreError> {
        both!(self, s => s.count(filter))
    }

    /// Starts the group-commit writer thread, which owns the store from now on.
    pub fn into_writer(self) -> Result<AuditWriter, StoreError> {
        match self {
            AnyStore::Sqlite(s) => AuditWriter::spawn(s),
            AnyStore::Postgres(s) => AuditWriter::spawn_pg(s),
        }
    }
}

fn bad(message: &str) -> StoreError {
    StoreError::BadConfig {
        path: "config [store]".into(),
        message: message.to_string(),
    }
}
