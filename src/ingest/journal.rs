//! Deliveries to a standby (hubs sharing a PostgreSQL store): a standby
//! acknowledges an Alertmanager webhook only once its body is journaled in
//! the shared store's inbox; the active hub takes the inbox in order,
//! handles each delivery as if it had come to it (durable before it is
//! forgotten) and then clears it. A delivery handled and not yet cleared
//! when the active dies is handled again by the next one: a redelivered
//! firing alert is the same episode, so nothing happens twice.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::watch;

use crate::engine::Event;
use crate::hub::HubHandle;
use crate::store::{PgStore, PgTarget, StoreError};

/// How often the active hub looks at the inbox.
const EVERY: Duration = Duration::from_millis(500);

/// Deliveries taken from the inbox at a time.
const TAKE: i64 = 100;

/// The shared store's inbox, on a connection of its own (made again when
/// it breaks).
pub struct Journal {
    target: PgTarget,
    conn: Mutex<Option<PgStore>>,
}

impl Drop for Journal {
    fn drop(&mut self) {
        // The blocking client ends its connection with a runtime of its
        // own, which cannot start on a runtime's thread (where the API that
        // holds the journal is dropped): end it on a thread of its own.
        let conn = self
            .conn
            .get_mut()
            .unwrap_or_else(|p| p.into_inner())
            .take();
        if let Some(pg) = conn {
            let _ = std::thread::Builder::new()
                .name("vigil-journal-close".into())
                .spawn(move || drop(pg));
        }
    }
}

impl Journal {
    pub fn new(target: PgTarget) -> Arc<Journal> {
        Arc::new(Journal {
            target,
            conn: Mutex::new(None),
        })
    }

    /// Runs `f` on the connection, connecting first when there is none
    /// (or the last one broke). Blocking: call from a blocking task.
    fn with<T>(&self, f: impl FnOnce(&mut PgStore) -> Result<T, StoreError>) -> Result<T, String> {
        let mut g = self.conn.lock().unwrap_or_else(|p| p.into_inner());
        if g.as_ref().is_none_or(PgStore::is_closed) {
            *g = Some(PgStore::open(&self.target).map_err(|e| e.to_string())?);
        }
        let Some(pg) = g.as_mut() else {
            return Err("no connection to the store".into());
        };
        let r = f(pg).map_err(|e| e.to_string());
        if r.is_err() && pg.is_closed() {
            *g = None;
        }
        r
    }

    /// Journals a webhook body a standby received; durable when Ok.
    pub async fn put(
        self: &Arc<Self>,
        received_by: String,
        source: String,
        body: String,
    ) -> Result<i64, String> {
        let j = self.clone();
        tokio::task::spawn_blocking(move || j.with(|pg| pg.journal(&received_by, &source, &body)))
            .await
            .map_err(|e| format!("the journal task failed: {e}"))?
    }

    async fn take(self: &Arc<Self>) -> Result<Vec<(i64, String, String)>, String> {
        let j = self.clone();
        tokio::task::spawn_blocking(move || j.with(|pg| pg.inbox(TAKE)))
            .await
            .map_err(|e| format!("the journal task failed: {e}"))?
    }

    async fn done(self: &Arc<Self>, ids: Vec<i64>) -> Result<(), String> {
        let j = self.clone();
        tokio::task::spawn_blocking(move || j.with(|pg| pg.inbox_done(&ids)))
            .await
            .map_err(|e| format!("the journal task failed: {e}"))?
    }
}

/// The active hub's side: every [`EVERY`], while this hub is active, hands
/// the journaled deliveries to the hub in order and clears those it handled
/// (a body that does not parse is logged and cleared; a delivery the hub
/// cannot take now stays for the next round).
pub async fn drain_inbox(journal: Arc<Journal>, hub: HubHandle, mut stop: watch::Receiver<bool>) {
    let mut failing = false;
    loop {
        tokio::select! {
            _ = stop.changed() => {
                if *stop.borrow() { return; }
            }
            _ = tokio::time::sleep(EVERY) => {}
        }
        if hub.vitals.role().is_none_or(|r| r.is_standby()) {
            continue;
        }
        let rows = match journal.take().await {
            Ok(r) => {
                failing = false;
                r
            }
            Err(e) => {
                if !failing {
                    tracing::warn!("cannot read the shared inbox: {e}");
                }
                failing = true;
                continue;
            }
        };
        let mut handled = Vec::new();
        for (id, source, body) in rows {
            let events: Vec<Event> = match super::parse::parse_webhook(body.as_bytes()) {
                Ok(p) => p.incoming(&source).into_iter().map(Event::Alert).collect(),
                Err(e) => {
                    tracing::warn!(id, "a journaled delivery does not parse ({e}); dropped");
                    handled.push(id);
                    continue;
                }
            };
            let n = events.len();
            match hub.deliver(events).await {
                Ok(()) => {
                    tracing::info!(id, alerts = n, "handled a delivery a standby journaled");
                    handled.push(id);
                }
                Err(e) => {
                    tracing::warn!(id, "a journaled delivery waits: {e}");
                    break;
                }
            }
        }
        if !handled.is_empty()
            && let Err(e) = journal.done(handled).await
        {
            tracing::warn!("cannot clear the shared inbox ({e}); its deliveries are handled again");
        }
    }
}
