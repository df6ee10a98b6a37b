//! The hub's side of the change stream (`GET /api/v1/stream`): one task
//! follows the hub's snapshots, computes each change once
//! ([`crate::stream::diff`]), serialises it once and hands the same bytes
//! to every attached console. It also keeps who is attached (presence).
//!
//! A console that cannot keep up is dropped (it reconnects and starts over
//! from a snapshot), so a slow client never holds the hub's memory.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use axum::body::Bytes;
use tokio::sync::{Notify, broadcast, mpsc, watch};

use crate::access::Identity;
use crate::hub::Snapshot;
use crate::stream::{Delta, Line, Presence, diff};

/// Changes kept for consoles that are a little behind; one further behind
/// is dropped.
const BACKLOG: usize = 256;

struct Current {
    version: u64,
    snapshot: Arc<Snapshot>,
}

pub struct Feed {
    tx: broadcast::Sender<Bytes>,
    current: Mutex<Current>,
    presence: Mutex<BTreeMap<u64, Presence>>,
    next_id: AtomicU64,
    presence_changed: Notify,
}

/// The attached console's place in the presence list; leaving drops it.
pub struct Attached {
    feed: Arc<Feed>,
    id: u64,
}

impl Drop for Attached {
    fn drop(&mut self) {
        if let Ok(mut p) = self.feed.presence.lock() {
            p.remove(&self.id);
        }
        self.feed.presence_changed.notify_one();
    }
}

/// What the stream shares with clients: no per-console focus.
fn shared(s: &Snapshot) -> Arc<Snapshot> {
    let mut s = s.clone();
    s.focus = None;
    s.suggestions = Vec::new();
    s.assessment = None;
    s.link = None;
    Arc::new(s)
}

fn line(l: &Line) -> Bytes {
    let mut v = serde_json::to_vec(l).unwrap_or_default();
    v.push(b'\n');
    Bytes::from(v)
}

impl Feed {
    /// Starts following `snapshots` until `shutdown`.
    pub fn spawn(
        mut snapshots: watch::Receiver<Arc<Snapshot>>,
        mut shutdown: watch::Receiver<bool>,
        vitals: &Arc<crate::vital::Vitals>,
    ) -> Arc<Feed> {
        let first = shared(&snapshots.borrow_and_update());
        let (tx, _) = broadcast::channel(BACKLOG);
        let feed = Arc::new(Feed {
            tx,
            current: Mutex::new(Current {
                version: 1,
                snapshot: first,
            }),
            presence: Mutex::new(BTreeMap::new()),
            next_id: AtomicU64::new(1),
            presence_changed: Notify::new(),
        });
        let f = feed.clone();
        let stopping = shutdown.clone();
        vitals.spawn("change feed", stopping, async move {
            if crate::vital::injected("feed-ends").is_some() {
                return;
            }
            loop {
                let mut with_presence = false;
                tokio::select! {
                    changed = snapshots.changed() => {
                        if changed.is_err() {
                            break;
                        }
                    }
                    _ = f.presence_changed.notified() => with_presence = true,
                    _ = shutdown.changed() => {
                        if *shutdown.borrow() {
                            break;
                        }
                    }
                }
                let next = shared(&snapshots.borrow_and_update());
                f.publish(next, with_presence);
            }
        });
        feed
    }

    fn presence_list(&self) -> Vec<Presence> {
        self.presence
            .lock()
            .map(|p| p.values().cloned().collect())
            .unwrap_or_default()
    }

    fn publish(&self, next: Arc<Snapshot>, with_presence: bool) {
        let Ok(mut cur) = self.current.lock() else {
            return;
        };
        let mut d: Delta = diff(&cur.snapshot, &next);
        if with_presence {
            d.presence = Some(self.presence_list());
        }
        cur.version += 1;
        cur.snapshot = next;
        let bytes = line(&Line::Delta {
            version: cur.version,
            delta: Box::new(d),
        });
        // Sent under the lock: a console that subscribes gets the snapshot
        // of one version and every delta after it.
        let _ = self.tx.send(bytes);
    }

    /// Attaches `who`: the first line (the whole snapshot) and a channel
    /// of the lines after it. The channel ends when the console falls too
    /// far behind or the hub stops.
    pub fn attach(self: &Arc<Self>, who: &Identity) -> mpsc::Receiver<Bytes> {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        if let Ok(mut p) = self.presence.lock() {
            p.insert(
                id,
                Presence {
                    name: who.name.clone(),
                    role: who.role,
                    via: who.via,
                    since: chrono::Utc::now(),
                },
            );
        }
        self.presence_changed.notify_one();
        let attached = Attached {
            feed: self.clone(),
            id,
        };
        let (version, snapshot, mut rx) = {
            let cur = match self.current.lock() {
                Ok(c) => c,
                Err(p) => p.into_inner(),
            };
            (cur.version, cur.snapshot.clone(), self.tx.subscribe())
        };
        let first = Line::Snapshot {
            version,
            you: who.clone(),
            presence: self.presence_list(),
            snapshot,
        };
        let (out, lines) = mpsc::channel::<Bytes>(16);
        tokio::spawn(async move {
            let _attached = attached;
            let first = tokio::task::spawn_blocking(move || line(&first))
                .await
                .unwrap_or_default();
            if out.send(first).await.is_err() {
                return;
            }
            loop {
                match rx.recv().await {
                    Ok(b) => {
                        if out.send(b).await.is_err() {
                            return;
                        }
                    }
                    // Too far behind: end the stream; the console
                    // reconnects and starts from a snapshot.
                    Err(broadcast::error::RecvError::Lagged(n)) => {
                        tracing::info!("a console fell {n} changes behind; it starts over");
                        return;
                    }
                    Err(broadcast::error::RecvError::Closed) => return,
                }
            }
        });
        lines
    }

    /// Who is attached now.
    pub fn presence(&self) -> Vec<Presence> {
        self.presence_list()
    }
}
