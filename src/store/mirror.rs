//! The data dir's SQLite file as a mirror of a shared PostgreSQL trail.
//!
//! A hub on PostgreSQL keeps a copy of the shared trail in its data dir:
//! the same records with the same seq and the same chain hashes, made by
//! appending them in order (the chain is a function of the records). Start-
//! up restores from the mirror's derived state, the HTTP API reads audit
//! pages from it, and a standby follows the active hub through it. The
//! active hub's writer appends to PostgreSQL first, then to the mirror
//! ([`Mirrored`]); a standby copies what is new ([`catch_up`]).
//!
//! A mirror that is not a prefix of the shared trail (another store's file,
//! a data dir that ran on SQLite alone) is refused, never merged.

use super::{PgStore, Store, StoreError};
use crate::model::Record;

/// Records copied per round trip.
const PAGE: usize = 2_000;

/// Copies the shared trail's records the mirror lacks; the number copied.
/// Refuses a mirror whose head is not a record of the shared trail.
pub fn catch_up(pg: &mut PgStore, local: &mut Store) -> Result<u64, StoreError> {
    let (mut seq, hash) = local.head()?;
    if seq > 0 {
        match pg.hash_at(seq)? {
            Some(h) if h == hash => {}
            other => {
                return Err(StoreError::BadConfig {
                    path: local.path().to_path_buf(),
                    message: match other {
                        Some(_) => format!(
                            "this data dir's trail is not a copy of {}: record {seq} differs. A hub on PostgreSQL needs a data dir of its own (empty, or one it mirrored this store into)",
                            pg.path().display()
                        ),
                        None => format!(
                            "this data dir's trail goes to record {seq}, beyond {} (a data dir that ran on SQLite alone, or another store's). A hub on PostgreSQL needs a data dir of its own (empty, or one it mirrored this store into)",
                            pg.path().display()
                        ),
                    },
                });
            }
        }
    }
    let mut copied = 0u64;
    loop {
        let mut page = pg.since(seq, PAGE)?;
        let Some(last) = page.last().map(|r| r.seq) else {
            return Ok(copied);
        };
        if page.first().map(|r| r.seq) != Some(seq + 1) {
            return Err(gap(local, pg, seq));
        }
        local.append(&mut page)?;
        let (now, local_hash) = local.head()?;
        if now != last || pg.hash_at(last)?.as_deref() != Some(local_hash.as_str()) {
            return Err(gap(local, pg, last));
        }
        copied += page.len() as u64;
        seq = last;
    }
}

fn gap(local: &Store, pg: &PgStore, seq: u64) -> StoreError {
    StoreError::BadConfig {
        path: local.path().to_path_buf(),
        message: format!(
            "the copy of {} diverged at record {seq} (a record that does not chain the same): stop the hub and move this data dir's vigil.db aside; it is copied again from the store at the next start",
            pg.path().display()
        ),
    }
}

/// An active hub's writer: PostgreSQL (fenced) first, then the mirror. A
/// record that reached PostgreSQL is acknowledged even if the mirror
/// failed; the mirror then catches up from PostgreSQL at the next batch.
pub(crate) struct Mirrored {
    pub(crate) pg: PgStore,
    pub(crate) local: Store,
    /// The mirror missed a batch: copy from PostgreSQL before the next.
    pub(crate) behind: bool,
}

impl Mirrored {
    pub(crate) fn append_serialised(
        &mut self,
        records: &mut [Record],
        after_seq: Option<&[String]>,
    ) -> Result<(), StoreError> {
        if let Err(e) = self.pg.append_serialised(records, after_seq) {
            // A lost connection is made again for the next batch; this one
            // is not retried (it may have committed before the loss: the
            // caller hears it failed and its sender delivers again).
            if self.pg.is_closed() {
                match self.pg.reconnect() {
                    Ok(p) => self.pg = p,
                    Err(e2) => tracing::warn!(error = %e2, "cannot reconnect to the store"),
                }
            }
            return Err(e);
        }
        let first = records.first().map_or(0, |r| r.seq);
        let mirror = (|| -> Result<(), StoreError> {
            if self.behind || self.local.last_seq()? + 1 != first {
                catch_up(&mut self.pg, &mut self.local)?;
                return Ok(());
            }
            let mut copy = records.to_vec();
            self.local.append_serialised(&mut copy, after_seq)?;
            let seq = records.last().map_or(0, |r| r.seq);
            if self.local.last_seq()? != seq {
                catch_up(&mut self.pg, &mut self.local)?;
            }
            Ok(())
        })();
        self.behind = match mirror {
            Ok(()) => false,
            Err(e) => {
                tracing::error!(error = %e, "the data dir's copy of the shared trail fell behind");
                true
            }
        };
        Ok(())
    }
}
