//! The guards as a pure check: whether an action may start now and, if
//! not, which guard blocks it and why. Changes nothing.

use super::*;

impl Engine {
    /// Runs the guards for an action; `retry` skips the guards that do not
    /// apply to a retry of an action already running (duplicate, cooldown).
    pub fn check_guards(&self, id: ActionId, now: Time, retry: bool) -> Result<(), Block> {
        let Some(a) = self.actions.get(&id) else {
            return Err(Block::new(
                BlockReason::PreconditionFailed,
                "unknown action",
            ));
        };
        let Some(rb) = self.catalog.get(&a.runbook) else {
            return Err(Block::new(
                BlockReason::NoExecutor,
                format!("runbook {} is not in the catalog", a.runbook),
            ));
        };
        if self.modes.frozen {
            return Err(Block::new(
                BlockReason::Frozen,
                "Vigil is frozen: nothing runs until an operator unfreezes",
            ));
        }
        let facts = self.inventory.facts(&a.target);
        if let Some((what, end)) = guards::maintenance_for(&self.windows, &facts, now) {
            return Err(Block::new(
                BlockReason::MaintenanceWindow,
                format!("{} is in its {what} until {}", a.target, fmt_time(&end)),
            )
            .until(end));
        }
        if let Some((p, v, glob)) = rb.protected_hit(&a.params) {
            return Err(Block::new(
                BlockReason::ProtectedTarget,
                format!(
                    "{p}={:?} is protected for {} (matches {glob:?}); name it in [runbooks.{}] allow_protected to allow it",
                    v.escape_debug().to_string(),
                    rb.name(),
                    rb.name()
                ),
            ));
        }
        for pc in &rb.spec.preconditions {
            if pc.in_host_services
                && let Some(h) = self.inventory.hosts.get(&a.target)
                && !h.services.is_empty()
                && let Some(v) = a.params.get(&pc.param)
                && !h.services.iter().any(|s| s == v)
            {
                return Err(Block::new(
                    BlockReason::PreconditionFailed,
                    format!(
                        "{}={:?} is not a service of {} (known: {})",
                        pc.param,
                        v.escape_debug().to_string(),
                        a.target,
                        h.services.join(", ")
                    ),
                ));
            }
        }
        if self.inventory.executor_of(&a.target).is_none() {
            return Err(Block::new(
                BlockReason::NoExecutor,
                format!(
                    "no executor is configured for host {:?}",
                    a.target.escape_debug().to_string()
                ),
            ));
        }
        let key = (a.runbook.clone(), a.target.clone());
        if !retry
            && let Some(other) = self
                .open_keys
                .get(&key)
                .and_then(|ids| {
                    // An action that is itself waiting behind a duplicate
                    // does not hold the slot.
                    ids.iter().filter(|o| **o != id).find(|o| {
                        self.actions.get(o).is_some_and(|x| {
                            !(x.state == ActionState::Blocked
                                && x.block == Some(BlockReason::Duplicate))
                        })
                    })
                })
                .and_then(|o| self.actions.get(o))
        {
            return Err(Block::new(
                BlockReason::Duplicate,
                format!(
                    "{} is already {} for {}@{}",
                    other.id,
                    other.state.as_str(),
                    a.runbook,
                    a.target
                ),
            ));
        }
        let breaker = self.breakers.get(&key);
        if let Some(since) = breaker.and_then(|b| b.open_since) {
            return Err(Block::new(
                BlockReason::CircuitOpen,
                format!(
                    "the circuit for {}@{} has been open since {}; an operator must reset it",
                    a.runbook,
                    a.target,
                    fmt_time(&since)
                ),
            ));
        }
        let recent = breaker
            .map(|b| {
                b.runs
                    .iter()
                    .filter(|t| now - **t < rb.max_runs.per)
                    .count()
            })
            .unwrap_or(0);
        if recent >= rb.max_runs.count as usize {
            return Err(Block::new(
                BlockReason::CircuitOpen,
                format!(
                    "{recent} runs of {}@{} in the last {} (max_runs {}): opening the circuit",
                    a.runbook,
                    a.target,
                    fmt_delta(rb.max_runs.per),
                    rb.max_runs
                ),
            ));
        }
        if !retry
            && let Some(last) = breaker.and_then(|b| b.runs.back())
            && now - *last < rb.cooldown
        {
            let until = add_time(*last, rb.cooldown);
            return Err(Block::new(
                BlockReason::RateLimited,
                format!(
                    "{}@{} last ran at {}; cooldown {} lasts until {}",
                    a.runbook,
                    a.target,
                    fmt_time(last),
                    fmt_delta(rb.cooldown),
                    fmt_time(&until)
                ),
            )
            .until(until));
        }
        if let Some((group, members)) = self.inventory.group_of(&a.target) {
            let limit = guards::blast_radius_limit(members.len(), self.settings.blast_radius);
            let busy: Vec<&str> = members
                .iter()
                .filter(|m| **m != a.target && self.flight.contains_key(*m))
                .map(String::as_str)
                .collect();
            if busy.len() >= limit {
                return Err(Block::new(
                    BlockReason::ConcurrencyLimit,
                    format!(
                        "{} of the {} hosts of group {group:?} {} being acted on ({}); at most {limit} at once",
                        busy.len(),
                        members.len(),
                        if busy.len() == 1 { "is" } else { "are" },
                        busy.join(", ")
                    ),
                ));
            }
        }
        Ok(())
    }

    /// Which guard would block this runbook on this target right now, if
    /// any (for the console's suggestions).
    pub fn would_block(
        &self,
        runbook: &str,
        target: &str,
        params: &BTreeMap<String, String>,
        now: Time,
    ) -> Option<Block> {
        let mut probe = Engine {
            eval: Evaluator::new(Vec::new()),
            catalog: self.catalog.clone(),
            inventory: self.inventory.clone(),
            windows: self.windows.clone(),
            settings: self.settings.clone(),
            modes: self.modes,
            alerts: table::AlertTable::default(),
            resolved_order: VecDeque::new(),
            actions: self
                .actions
                .iter()
                .filter(|(_, a)| !a.state.is_final())
                .map(|(k, v)| (*k, v.clone()))
                .collect(),
            next_action: self.next_action,
            breakers: self.breakers.clone(),
            due: BinaryHeap::new(),
            transitions: Vec::new(),
            out: Vec::new(),
            open_keys: self.open_keys.clone(),
            flight: self.flight.clone(),
            blocked: BTreeSet::new(),
            silences: HashMap::new(),
            upstream: HashMap::new(),
            upstream_on: HashMap::new(),
            restored_stale_at: None,
            refused: Vec::new(),
            refusal_noted: HashMap::new(),
        };
        let id = ActionId(u64::MAX);
        probe.actions.insert(
            id,
            Action::proposed(id, runbook, target, params.clone(), now),
        );
        probe.check_guards(id, now, false).err()
    }
}
