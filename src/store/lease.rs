//! One active hub per PostgreSQL store: a lease row with an expiry on the
//! server's clock, and a fencing epoch that grows at every takeover.
//!
//! - [`Lease::try_acquire`] takes the lease when it is free or expired
//!   (the epoch goes up by one), renews it when its holder already has it
//!   (the epoch stays), and otherwise reports who holds it (standby).
//!   Times are the server's `now()`: hubs' clocks do not matter.
//! - A [`Fence`] (holder, epoch) set on the writer's store makes every
//!   batch holding an `action_started` check, in its own transaction and
//!   under a share lock on the lease row, that the lease is still this
//!   holder's, at this epoch, and unexpired. A takeover updates that row,
//!   so it waits for such a batch to commit (and the new holder then reads
//!   the start), or the batch fails and nothing starts: a hub that lost
//!   its lease can never record a start.
//! - The lease lives on a connection of its own (renewals are not queued
//!   behind audit commits).

use std::path::Path;
use std::time::Duration;

use super::StoreError;
use super::pg::{PgStore, PgTarget};

/// Who holds the lease at which epoch: what the writer checks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fence {
    pub holder: String,
    pub epoch: i64,
}

impl Fence {
    /// In the caller's transaction: Ok when the lease is still ours.
    pub(crate) fn check(
        &self,
        tx: &mut postgres::Transaction<'_>,
        path: &Path,
    ) -> Result<(), StoreError> {
        let row = tx
            .query_one(
                "SELECT holder, epoch, expires_at > now() FROM hub_lease WHERE id = 1 FOR SHARE",
                &[],
            )
            .map_err(|e| StoreError::Postgres {
                path: path.to_path_buf(),
                what: "check the lease".into(),
                source: std::sync::Arc::new(e),
            })?;
        let (holder, epoch, live): (Option<String>, i64, bool) =
            (row.get(0), row.get(1), row.get(2));
        let why = if holder.as_deref() != Some(self.holder.as_str()) || epoch != self.epoch {
            format!(
                "the lease is at epoch {epoch}, held by {}; this hub had epoch {}",
                holder.as_deref().unwrap_or("nobody"),
                self.epoch
            )
        } else if !live {
            format!("this hub's lease (epoch {epoch}) expired")
        } else {
            return Ok(());
        };
        Err(StoreError::Fenced {
            path: path.to_path_buf(),
            why,
        })
    }
}

/// What [`Lease::try_acquire`] found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LeaseState {
    /// This hub holds the lease at `epoch` until `ttl` from now.
    Active { epoch: i64 },
    /// Another hub holds it.
    Standby { holder: String, epoch: i64 },
}

/// A hub's handle on the store's lease, on a connection of its own.
#[derive(Debug)]
pub struct Lease {
    store: PgStore,
    holder: String,
    ttl: Duration,
}

impl Lease {
    /// Connects for `holder` (a name unique per hub process, e.g.
    /// `host:pid`) with leases of `ttl`.
    pub fn open(target: &PgTarget, holder: &str, ttl: Duration) -> Result<Lease, StoreError> {
        Ok(Lease {
            store: PgStore::open(target)?,
            holder: holder.to_string(),
            ttl,
        })
    }

    /// The same lease on a new connection (after the old one broke).
    pub fn reopen(&self) -> Result<Lease, StoreError> {
        Lease::open(self.store.target(), &self.holder, self.ttl)
    }

    /// Takes, renews or reports the lease (see the module comment).
    pub fn try_acquire(&mut self) -> Result<LeaseState, StoreError> {
        let path = self.store.path().to_path_buf();
        let ttl_ms = i64::try_from(self.ttl.as_millis()).unwrap_or(i64::MAX);
        let e = |what: &'static str| {
            let path = path.clone();
            move |err| StoreError::Postgres {
                path,
                what: what.into(),
                source: std::sync::Arc::new(err),
            }
        };
        let row = self
            .store
            .client()
            .query_opt(
                "UPDATE hub_lease SET
                     epoch = CASE WHEN holder = $1 AND expires_at > now() THEN epoch
                                  ELSE epoch + 1 END,
                     addr = CASE WHEN holder = $1 THEN addr ELSE NULL END,
                     holder = $1,
                     expires_at = now() + $2::float8 * interval '1 millisecond'
                 WHERE id = 1 AND (holder = $1 OR expires_at <= now())
                 RETURNING epoch",
                &[&self.holder, &(ttl_ms as f64)],
            )
            .map_err(e("take the lease"))?;
        if let Some(row) = row {
            return Ok(LeaseState::Active { epoch: row.get(0) });
        }
        let row = self
            .store
            .client()
            .query_one("SELECT holder, epoch FROM hub_lease WHERE id = 1", &[])
            .map_err(e("read the lease"))?;
        Ok(LeaseState::Standby {
            holder: row.get::<_, Option<String>>(0).unwrap_or_default(),
            epoch: row.get(1),
        })
    }

    /// Gives the lease up at once (a clean stop): a standby need not wait
    /// for it to expire.
    pub fn release(&mut self) -> Result<(), StoreError> {
        let path = self.store.path().to_path_buf();
        self.store
            .client()
            .execute(
                "UPDATE hub_lease SET expires_at = '-infinity' WHERE id = 1 AND holder = $1",
                &[&self.holder],
            )
            .map(drop)
            .map_err(|err| StoreError::Postgres {
                path,
                what: "release the lease".into(),
                source: std::sync::Arc::new(err),
            })
    }

    /// Says where this hub serves its API while it holds the lease, so
    /// that standbys can name it (a no-op when it does not hold it).
    pub fn advertise(&mut self, addr: &str) -> Result<(), StoreError> {
        let path = self.store.path().to_path_buf();
        self.store
            .client()
            .execute(
                "UPDATE hub_lease SET addr = $2 WHERE id = 1 AND holder = $1",
                &[&self.holder, &addr],
            )
            .map(drop)
            .map_err(|err| StoreError::Postgres {
                path,
                what: "advertise the active hub's address".into(),
                source: std::sync::Arc::new(err),
            })
    }

    /// The holder of the lease and the address it advertised, if any.
    pub fn holder_addr(&mut self) -> Result<(Option<String>, Option<String>), StoreError> {
        let path = self.store.path().to_path_buf();
        let row = self
            .store
            .client()
            .query_one("SELECT holder, addr FROM hub_lease WHERE id = 1", &[])
            .map_err(|err| StoreError::Postgres {
                path,
                what: "read the lease".into(),
                source: std::sync::Arc::new(err),
            })?;
        Ok((row.get(0), row.get(1)))
    }

    /// This hub's name in the lease.
    pub fn holder(&self) -> &str {
        &self.holder
    }

    /// How long a taken or renewed lease lasts.
    pub fn ttl(&self) -> Duration {
        self.ttl
    }

    /// The fence a writer checks while this lease is held at `epoch`.
    pub fn fence(&self, epoch: i64) -> Fence {
        Fence {
            holder: self.holder.clone(),
            epoch,
        }
    }
}
