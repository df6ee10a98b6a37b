//! Samples and deliveries on their way into the hub: the bounded backlog
//! senders wait in, the inbox the hub drains at once, and what a durable
//! delivery is told.

use super::*;

/// Samples sent to the hub and not yet evaluated. The event queue is
/// bounded in events, and an event can carry thousands of samples: senders of
/// sample batches wait here so that a fast client cannot make the queue
/// hold gigabytes.
///
/// Ingested samples reach the hub through its `inbox` rather than the event
/// channel ([`Admitted::deliver`]): the hub takes everything delivered in a
/// millisecond at once, so that a thousand single-sample requests cost it one
/// wakeup instead of a thousand.
#[derive(Debug, Default)]
pub struct SampleBacklog {
    pub(super) queued: std::sync::atomic::AtomicU64,
    pub(super) drained: tokio::sync::Notify,
    pub(super) inbox: std::sync::Mutex<Vec<crate::model::KeyedSample>>,
    /// Senders waiting for the samples now in the inbox to be evaluated
    /// and their records committed (taken with the inbox, under its lock),
    /// with where their samples are in the inbox (start, count).
    pub(super) waiting: std::sync::Mutex<Vec<(Evaluated, usize, usize)>>,
    /// Set (under the inbox lock) when the hub took the inbox for the last
    /// time: later deliveries are refused, not left unanswered.
    pub(super) closed: std::sync::atomic::AtomicBool,
    /// Notified when the inbox stops being empty.
    pub(super) arrived: tokio::sync::Notify,
}

impl SampleBacklog {
    /// At most this many samples wait for the hub (a batch is let in when
    /// nothing waits, however large).
    pub const MAX_SAMPLES: u64 = 250_000;

    /// Waits until `n` more samples fit, and counts them in. Unless
    /// [`Admitted::sent`] is called, dropping the ticket counts them out
    /// again (a client that went away before its batch was sent).
    pub async fn admit(self: &Arc<Self>, n: u64) -> Admitted {
        self.wait_for_room(n).await;
        Admitted {
            backlog: self.clone(),
            n,
        }
    }

    pub(super) async fn wait_for_room(&self, n: u64) {
        use std::sync::atomic::Ordering;
        loop {
            // Registered before the check, so a drain in between wakes it.
            let drained = self.drained.notified();
            let before = self.queued.load(Ordering::Acquire);
            if before != 0 && before + n > Self::MAX_SAMPLES {
                drained.await;
            } else if self
                .queued
                .compare_exchange(before, before + n, Ordering::AcqRel, Ordering::Acquire)
                .is_ok()
            {
                return;
            }
        }
    }

    /// The hub evaluated `n` samples that were counted in (or a sender gave
    /// up before sending them).
    pub fn done(&self, n: u64) {
        use std::sync::atomic::Ordering;
        let _ = self
            .queued
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |q| {
                Some(q.saturating_sub(n))
            });
        self.drained.notify_waiters();
    }

    /// Samples waiting now.
    pub fn queued(&self) -> u64 {
        self.queued.load(std::sync::atomic::Ordering::Acquire)
    }

    pub(super) fn inbox(&self) -> std::sync::MutexGuard<'_, Vec<crate::model::KeyedSample>> {
        self.inbox
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Every delivered sample not taken yet, in the order delivered.
    pub fn take_delivered(&self) -> Vec<crate::model::KeyedSample> {
        self.take_with_waiters().0
    }

    /// The delivered samples and the senders waiting for them to be
    /// durable.
    pub(super) fn take_with_waiters(
        &self,
    ) -> (
        Vec<crate::model::KeyedSample>,
        Vec<(Evaluated, usize, usize)>,
    ) {
        let mut inbox = self.inbox();
        let samples = std::mem::take(&mut *inbox);
        let waiting = std::mem::take(
            &mut *self
                .waiting
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner),
        );
        drop(inbox);
        (samples, waiting)
    }
}

/// Samples counted into a [`SampleBacklog`] and not sent yet.
#[must_use]
pub struct Admitted {
    backlog: Arc<SampleBacklog>,
    n: u64,
}

impl Admitted {
    /// The samples are in the hub's queue: the hub counts them out.
    pub fn sent(mut self) {
        self.n = 0;
    }

    /// Hands the admitted samples to the hub's inbox (the hub counts them
    /// out once it evaluated them).
    pub fn deliver(self, samples: Vec<crate::model::KeyedSample>) {
        self.deliver_inner(samples, None);
    }

    /// [`Admitted::deliver`], and an answer once the hub evaluated the
    /// samples and committed every record they caused (Ok, with the samples
    /// a series limit refused), or could not (Err with why; dropped when the
    /// hub stopped first).
    pub fn deliver_durable(
        self,
        samples: Vec<crate::model::KeyedSample>,
    ) -> tokio::sync::oneshot::Receiver<Result<Vec<Refused>, String>> {
        let (tx, rx) = tokio::sync::oneshot::channel();
        self.deliver_inner(samples, Some(tx));
        rx
    }

    pub(super) fn deliver_inner(
        mut self,
        samples: Vec<crate::model::KeyedSample>,
        waiter: Option<Evaluated>,
    ) {
        let first = {
            let mut inbox = self.backlog.inbox();
            if self
                .backlog
                .closed
                .load(std::sync::atomic::Ordering::Acquire)
            {
                // Dropped unanswered: the sender hears that the hub stopped.
                drop(waiter);
                return;
            }
            if let Some(w) = waiter {
                self.backlog
                    .waiting
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner)
                    .push((w, inbox.len(), samples.len()));
            }
            let first = inbox.is_empty();
            if first {
                *inbox = samples;
            } else {
                inbox.extend(samples);
            }
            first
        };
        if first {
            self.backlog.arrived.notify_one();
        }
        self.n = 0;
    }
}

impl Drop for Admitted {
    fn drop(&mut self) {
        if self.n > 0 {
            self.backlog.done(self.n);
        }
    }
}

/// Where the hub says whether what a sender delivered is durable.
pub(super) type Durable = tokio::sync::oneshot::Sender<Result<(), String>>;

/// A sample a series limit refused: its index in the sender's request,
/// and why.
pub type Refused = (usize, crate::policy::eval::SeriesLimit);

/// Where the hub answers a sender of samples: the samples it refused (the
/// others were evaluated and their records committed), or why nothing was.
pub(super) type Evaluated = tokio::sync::oneshot::Sender<Result<Vec<Refused>, String>>;

/// Events a sender wants acknowledged once durable (a webhook's alerts): the
/// hub handles them and answers after their records are committed.
#[derive(Debug)]
pub struct Delivery {
    pub events: Vec<Event>,
    pub done: Durable,
}

/// Why a delivery was not acknowledged.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DeliveryError {
    /// The hub's delivery queue is full: try again shortly.
    Busy,
    /// The hub has stopped (or stopped before it got to the delivery).
    Stopped,
    /// The records could not be written.
    Store(String),
}

impl std::fmt::Display for DeliveryError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            DeliveryError::Busy => f.write_str("the hub's delivery queue is full"),
            DeliveryError::Stopped => f.write_str("the hub has stopped"),
            DeliveryError::Store(e) => write!(f, "the audit trail could not be written: {e}"),
        }
    }
}

/// How many deliveries may wait for the hub before senders are told to
/// come back later (503).
pub const DELIVERY_QUEUE: usize = 1024;
