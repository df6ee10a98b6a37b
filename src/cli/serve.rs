//! `vigil serve`: the hub without a console, until SIGINT/SIGTERM, a time
//! limit or an internal fault; on a shared store, as the active hub or a
//! standby (see `vigil::ha`).

use std::sync::Arc;

use super::*;

pub(super) fn cmd_serve(cli: &Cli, listen: Option<String>, duration: Option<String>) -> ExitCode {
    let limit = match duration
        .as_deref()
        .map(vigil::units::parse_duration)
        .transpose()
    {
        Ok(d) => d,
        Err(e) => {
            eprintln!("error: --duration: {e}");
            return ExitCode::from(2);
        }
    };
    vigil::vital::install_panic_hook();
    let (rt, p, _guard) = match start_hub(cli, true) {
        Ok(x) => x,
        Err(code) => return code,
    };
    let opts = match vigil::ingest::ListenerOptions::resolve(listen.as_deref(), &p.config) {
        Ok(o) => o,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(1);
        }
    };
    eprintln!(
        "vigil serve: {} data in {}, log {}",
        if p.demo {
            "demo fleet,"
        } else {
            "configured sources,"
        },
        p.data_dir.display(),
        p.log_path.display()
    );
    let result = rt.block_on(async move {
        let mut p = p;
        let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
        let addr = match start_io(&mut p, opts, stop_rx.clone()).await {
            Ok(vigil::ingest::Started { tcp: Ok(a), .. }) => a,
            Ok(vigil::ingest::Started { tcp: Err(e), .. }) | Err(e) => {
                return Err(e.to_string());
            }
        };
        let vitals = p.handle.vitals.clone();
        let release = Arc::new(std::sync::atomic::AtomicBool::new(false));
        // A hub on a shared store: the active one keeps its lease (its loss
        // ends the run), a standby runs as one until the lease is its own.
        let mut lost = None;
        let mut keeper = None;
        let mut hub = match p.shared.take() {
            None => HubTask::Active(vitals.spawn("hub", stop_rx.clone(), p.hub.run(stop_rx))),
            Some(start::SharedRole::Active { lease, epoch }) => {
                let (rx, thread) = vigil::ha::keep_lease(
                    lease,
                    epoch,
                    Some(addr.to_string()),
                    vitals.clone(),
                    release.clone(),
                );
                lost = Some(rx);
                keeper = thread;
                HubTask::Active(vitals.spawn("hub", stop_rx.clone(), p.hub.run(stop_rx)))
            }
            Some(start::SharedRole::Standby {
                follower,
                make_engine,
            }) => {
                eprintln!(
                    "vigil serve: standby; {}",
                    vitals.standby_refusal().unwrap_or_default()
                );
                let feed = vigil::ha::follow(follower, vitals.clone());
                let mut hub = p.hub;
                let (stop, v) = (stop_rx.clone(), vitals.clone());
                HubTask::Standby(tokio::spawn(async move {
                    let end = match hub.run_standby(stop, feed, make_engine, v).await {
                        vigil::hub::StandbyEnd::Promoted => Ok(Ended::Promoted),
                        vigil::hub::StandbyEnd::Stopped => Ok(Ended::Stopped),
                        vigil::hub::StandbyEnd::Lost => {
                            Err("the standby's follower ended (see the log)".to_string())
                        }
                    };
                    (end, Box::new(hub))
                }))
            }
        };
        let _keep = p.handle;
        let lease_lost = async {
            match lost {
                Some(rx) => rx.await.ok(),
                None => std::future::pending().await,
            }
        };
        let (fault, lost_why, promoted) = tokio::select! {
            _ = wait_for_stop(limit) => (None, None, false),
            why = vitals.faulted() => (Some(why), None, false),
            Some(why) = lease_lost => (None, Some(why), false),
            end = hub.ended() => match end {
                Ok(Ended::Promoted) => (None, None, true),
                Ok(Ended::Stopped) => (None, None, false),
                Err(e) => (Some(e), None, false),
            },
        };
        match (&fault, &lost_why) {
            (_, Some(why)) => {
                tracing::error!("lost the lease: {why}; this hub stops acting now");
                eprintln!("error: lost the lease: {why}; this hub stops acting and starts again as a standby");
            }
            (None, None) if !promoted => {
                tracing::info!("shutting down: flushing the audit trail")
            }
            (None, None) => {}
            (Some(why), None) => {
                tracing::error!("stopping on an internal fault: {why}");
                eprintln!("error: internal fault: {why}; flushing the audit trail and stopping");
            }
        }
        let _ = stop_tx.send(true);
        // A hub that died has already flushed its writer while unwinding;
        // a live one drains and flushes now, within a bound.
        // A hub that lost its lease writes nothing more (its writer is
        // fenced, and may hang on a store that does not answer): a short
        // wait, then it starts again as a standby.
        let bound = if lost_why.is_some() {
            std::time::Duration::from_secs(2)
        } else {
            FAULT_DRAIN
        };
        let drained = tokio::time::timeout(bound, hub.join()).await.is_ok();
        // A clean stop hands the lease over at once.
        release.store(true, std::sync::atomic::Ordering::Release);
        if let Some(k) = keeper {
            let joined = tokio::task::spawn_blocking(move || k.join());
            let _ = tokio::time::timeout(std::time::Duration::from_secs(5), joined).await;
        }
        if fault.is_none() && lost_why.is_none() && !drained {
            return Err("the hub did not stop within 30 s".to_string());
        }
        if lost_why.is_some() || promoted {
            return Ok(Outcome::Again);
        }
        let fault = fault.or_else(|| vitals.first_fault());
        Ok(match fault {
            Some(why) => Outcome::Fault(why),
            None => Outcome::Clean,
        })
    });
    match result {
        Ok(Outcome::Clean) => {
            tracing::info!("stopped cleanly");
            ExitCode::SUCCESS
        }
        Ok(Outcome::Again) => {
            // Logs are flushed by the guard's drop; the exec replaces this
            // image (same pid, so the same name in the lease).
            drop(_guard);
            let e = vigil::ha::exec_again();
            eprintln!("error: cannot start again ({e})");
            ExitCode::from(1)
        }
        Ok(Outcome::Fault(why)) => {
            eprintln!("error: vigil serve stopped on an internal fault ({why}); exit 70");
            ExitCode::from(70)
        }
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(1)
        }
    }
}

/// How a `vigil serve` run ended.
enum Outcome {
    Clean,
    Fault(String),
    /// Lost the lease, or a standby took it: exec again in the new role.
    Again,
}

/// How a standby's task ended.
enum Ended {
    Stopped,
    Promoted,
}

/// The hub's task in `vigil serve`.
enum HubTask {
    /// Its end is a fault unless asked for (see [`vigil::vital::Vitals`]).
    Active(tokio::task::JoinHandle<()>),
    Standby(tokio::task::JoinHandle<(Result<Ended, String>, Box<vigil::hub::Hub>)>),
    /// A standby that ended, kept until the stop is set (dropping it ends
    /// the consoles' feeds).
    Ended(Box<vigil::hub::Hub>),
    Done,
}

impl HubTask {
    /// A standby's end (an active hub's is watched by its vitals: never).
    async fn ended(&mut self) -> Result<Ended, String> {
        let HubTask::Standby(h) = self else {
            return std::future::pending().await;
        };
        match h.await {
            Ok((end, hub)) => {
                *self = HubTask::Ended(hub);
                end
            }
            Err(e) => {
                *self = HubTask::Done;
                Err(format!("the standby task failed: {e}"))
            }
        }
    }

    /// Waits for the task to end.
    async fn join(&mut self) {
        match std::mem::replace(self, HubTask::Done) {
            HubTask::Active(h) => {
                let _ = h.await;
            }
            HubTask::Standby(h) => {
                let _ = h.await;
            }
            HubTask::Ended(hub) => drop(hub),
            HubTask::Done => {}
        }
    }
}

/// How long a stopping hub may take to drain and flush.
const FAULT_DRAIN: std::time::Duration = std::time::Duration::from_secs(30);
