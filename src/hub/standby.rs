//! A standby hub (hubs sharing one store): it shows what the active hub
//! did, as the shared trail says, and acts on nothing. Its engine is
//! rebuilt from the trail's state whenever the trail moves; it never
//! ticks, never writes and refuses every intent and delivery with the
//! active hub's name. When the lease becomes its own it stops, so that the
//! process starts again as the active hub.

use super::*;

/// What a standby learns from the shared store.
pub enum Followed {
    /// The trail moved: its state and its newest records (oldest first).
    State {
        state: Box<PersistedState>,
        recent: Vec<Record>,
    },
    /// This hub holds the lease now.
    Promoted,
}

/// How a standby's run ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StandbyEnd {
    /// Asked to stop.
    Stopped,
    /// It holds the lease: start again as the active hub.
    Promoted,
    /// The store's follower ended (see the log).
    Lost,
}

/// Builds a fresh engine from the configuration (a standby rebuilds its
/// view from scratch at every change of the trail).
pub type EngineFactory = Box<dyn Fn() -> Result<Engine, String> + Send>;

impl Hub {
    /// Runs as a standby until `shutdown`, or until the follower says the
    /// lease is this hub's. The hub is the caller's to drop (after it set
    /// `shutdown`: the consoles' feeds end with the hub, and an end while
    /// the hub is not stopping is a fault).
    pub async fn run_standby(
        &mut self,
        mut shutdown: watch::Receiver<bool>,
        mut feed: mpsc::Receiver<Followed>,
        make_engine: EngineFactory,
        vitals: Arc<crate::vital::Vitals>,
    ) -> StandbyEnd {
        // Nothing restored is carried out here: the active hub does it.
        self.pending_restore.clear();
        self.backlog
            .closed
            .store(true, std::sync::atomic::Ordering::Release);
        let refusal = || {
            vitals
                .standby_refusal()
                .unwrap_or_else(|| "this hub is a standby".into())
        };
        let mut publish = tokio::time::interval(Duration::from_secs(1));
        publish.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
        let end = loop {
            tokio::select! {
                biased;
                _ = shutdown.changed() => {
                    if *shutdown.borrow() { break StandbyEnd::Stopped; }
                }
                f = feed.recv() => match f {
                    Some(Followed::State { state, recent }) => match make_engine() {
                        Ok(engine) => self.view(&state, recent, engine),
                        Err(e) => tracing::warn!("the standby's view is not refreshed: {e}"),
                    },
                    Some(Followed::Promoted) => break StandbyEnd::Promoted,
                    None => break StandbyEnd::Lost,
                },
                Some(d) = self.deliveries.recv() => {
                    let _ = d.done.send(Err(refusal()));
                }
                Some(_) = self.rx.recv() => {}
                Some(q) = self.queries.recv() => match q {
                    Query::Suggestions { fingerprint, reply } => {
                        let _ = reply.send(self.suggestions(&fingerprint, Utc::now()));
                    }
                    Query::Assessment { fingerprint, reply } => {
                        let _ = reply.send(self.analysis.assessment(&fingerprint));
                    }
                    Query::Intent { reply, .. } => {
                        let _ = reply.send(Err(IntentError::Standby(refusal())));
                    }
                },
                Ok(()) = self.focus.changed() => self.publish(),
                // Ages and the sources' board move with time.
                _ = publish.tick() => self.publish(),
            }
        };
        self.deliveries.close();
        self.rx.close();
        end
    }

    /// Shows the trail's state: `engine`, fresh, restored as a view.
    fn view(&mut self, state: &PersistedState, recent: Vec<Record>, mut engine: Engine) {
        let now = Utc::now();
        engine.restore_view(restored_from(state), now);
        self.engine = engine;
        self.ordered.clear();
        self.ordered_ready = false;
        self.audit_seq = state.last_seq;
        self.recent_shared = Arc::new(recent.iter().cloned().map(Arc::new).collect());
        self.recent = recent.into();
        self.publish();
    }
}
