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
    /// When the hosts' figures were last sent.
    hosts_sent: tokio::time::Instant,
}

/// The Hosts board's figures (latest values and sparklines of every host)
/// change with every sample; consoles get them at most this often.
/// Alerts, actions and records are never held back.
const HOSTS_EVERY: std::time::Duration = std::time::Duration::from_secs(1);

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
fn shared(s: &Snapshot) -> Snapshot {
    let mut s = s.clone();
    s.focus = None;
    s.suggestions = Vec::new();
    s.assessment = None;
    s.link = None;
    s
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
        let first = Arc::new(shared(&snapshots.borrow_and_update()));
        let (tx, _) = broadcast::channel(BACKLOG);
        let feed = Arc::new(Feed {
            tx,
            current: Mutex::new(Current {
                version: 1,
                snapshot: first,
                hosts_sent: tokio::time::Instant::now(),
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
            // Set while the hosts' figures are held back: they are sent
            // then, even if nothing else changes.
            let mut held: Option<tokio::time::Instant> = None;
            loop {
                let mut with_presence = false;
                let resend = async {
                    match held {
                        Some(t) => tokio::time::sleep_until(t).await,
                        None => std::future::pending::<()>().await,
                    }
                };
                tokio::select! {
                    changed = snapshots.changed() => {
                        if changed.is_err() {
                            break;
                        }
                    }
                    _ = f.presence_changed.notified() => with_presence = true,
                    () = resend => {}
                    _ = shutdown.changed() => {
                        if *shutdown.borrow() {
                            break;
                        }
                    }
                }
                let next = shared(&snapshots.borrow_and_update());
                held = f
                    .publish(next, with_presence)
                    .then(|| tokio::time::Instant::now() + HOSTS_EVERY);
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

    /// Publishes `next`; true when its hosts' figures were held back.
    fn publish(&self, mut next: Snapshot, with_presence: bool) -> bool {
        let Ok(mut cur) = self.current.lock() else {
            return false;
        };
        let mut held = false;
        if !Arc::ptr_eq(&next.hosts, &cur.snapshot.hosts) {
            if cur.hosts_sent.elapsed() < HOSTS_EVERY {
                next.hosts = cur.snapshot.hosts.clone();
                held = true;
            } else {
                cur.hosts_sent = tokio::time::Instant::now();
            }
        }
        let next = Arc::new(next);
        cur.version += 1;
        if self.tx.receiver_count() == 0 {
            // Nobody attached: no change to compute or write. A console
            // that attaches later starts from this snapshot (under the
            // same lock, so it misses nothing).
            cur.snapshot = next;
            return held;
        }
        let mut d: Delta = diff(&cur.snapshot, &next);
        if with_presence {
            d.presence = Some(self.presence_list());
        }
        cur.snapshot = next;
        let bytes = line(&Line::Delta {
            version: cur.version,
            delta: Box::new(d),
        });
        // Sent under the lock: a console that subscribes gets the snapshot
        // of one version and every delta after it.
        let _ = self.tx.send(bytes);
        held
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::access::{Role, Via};
    use crate::hosts::HostView;
    use crate::stream::Line;

    fn with_host_value(prev: &Snapshot, v: f64) -> Snapshot {
        let mut s = prev.clone();
        let mut h = HostView {
            name: "web-1".into(),
            ..HostView::default()
        };
        h.metrics.insert("cpu".into(), v);
        s.hosts = Arc::new(vec![h]);
        s
    }

    async fn next_delta(lines: &mut mpsc::Receiver<Bytes>) -> Delta {
        let b = tokio::time::timeout(std::time::Duration::from_secs(5), lines.recv())
            .await
            .expect("a line within 5 s")
            .expect("a line");
        match serde_json::from_slice::<Line>(&b).expect("a line of the stream") {
            Line::Delta { delta, .. } => *delta,
            Line::Snapshot { .. } => panic!("a snapshot where a change was expected"),
        }
    }

    #[tokio::test]
    async fn host_figures_are_sent_at_most_once_a_second_and_never_left_behind() {
        let first = Snapshot::empty(chrono::Utc::now());
        let (tx, rx) = watch::channel(Arc::new(first.clone()));
        let (_stop, shutdown) = watch::channel(false);
        let feed = Feed::spawn(rx, shutdown, &crate::vital::Vitals::new());
        let who = Identity {
            name: "ana".into(),
            role: Role::Operator,
            via: Via::Socket,
        };
        let mut lines = feed.attach(&who);
        let _snapshot = lines.recv().await.expect("the first line");
        // Presence changed (ana attached).
        let _ = next_delta(&mut lines).await;

        // A host's figure changes right away: held back, the change still
        // goes out (with its other fields).
        let a = with_host_value(&first, 1.0);
        tx.send_replace(Arc::new(a.clone()));
        let d = next_delta(&mut lines).await;
        assert!(d.hosts.is_none(), "sent before a second passed");

        // Nothing else changes: after a second the figures go out anyway.
        tokio::time::sleep(HOSTS_EVERY).await;
        let d = next_delta(&mut lines).await;
        let hosts = d.hosts.expect("the held-back figures");
        assert_eq!(hosts[0].metrics.get("cpu"), Some(&1.0));

        // A second later, the next figure goes out with its change.
        tokio::time::sleep(HOSTS_EVERY).await;
        tx.send_replace(Arc::new(with_host_value(&a, 2.0)));
        let d = next_delta(&mut lines).await;
        assert_eq!(d.hosts.expect("due")[0].metrics.get("cpu"), Some(&2.0));
    }
}
