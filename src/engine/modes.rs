//! Modes (dry-run, freeze) and circuit breakers: set by operators.

use super::*;

impl Engine {
    pub(super) fn set_mode(
        &mut self,
        dry_run: Option<bool>,
        frozen: Option<bool>,
        actor: String,
        now: Time,
    ) {
        let before = self.modes;
        if let Some(d) = dry_run {
            self.modes.dry_run = d;
        }
        if let Some(f) = frozen {
            self.modes.frozen = f;
        }
        if before == self.modes {
            return;
        }
        let mut r = rec(RecordKind::ModeChanged, now);
        r.actor = Some(actor);
        let mut what = Vec::new();
        if before.dry_run != self.modes.dry_run {
            what.push(if self.modes.dry_run {
                "dry-run on"
            } else {
                "dry-run off (LIVE)"
            });
        }
        if before.frozen != self.modes.frozen {
            what.push(if self.modes.frozen {
                "frozen"
            } else {
                "unfrozen"
            });
        }
        r.detail = Some(what.join(", "));
        r.data = Some(json!({ "dry_run": self.modes.dry_run, "frozen": self.modes.frozen }));
        self.out.push(Command::Record(r));
        if before.frozen && !self.modes.frozen {
            self.recheck_blocked(now);
        }
    }

    pub(super) fn on_reset(&mut self, runbook: String, target: String, actor: String, now: Time) {
        let key = (runbook.clone(), target.clone());
        let Some(b) = self.breakers.get_mut(&key) else {
            return;
        };
        if b.open_since.is_none() {
            return;
        }
        b.open_since = None;
        b.runs.clear();
        let mut r = rec(RecordKind::CircuitClosed, now);
        r.runbook = Some(runbook);
        r.target = Some(target);
        r.actor = Some(actor);
        r.detail = Some("reset by an operator".into());
        self.out.push(Command::Record(r));
        self.recheck_blocked(now);
    }
}
