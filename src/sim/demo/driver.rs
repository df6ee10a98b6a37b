//! The demo fleet as the hub drives it: the runs of the `sim` executor
//! (what each runbook does to the fleet) and the `DrivenFleet` it is.

use super::*;

impl DemoFleet {
    pub(super) fn find(&self, host: usize, metric: Metric, key: Option<&str>) -> Option<usize> {
        self.series
            .iter()
            .position(|s| s.host == host && s.metric == metric && key.is_none_or(|k| s.key == k))
    }

    /// Restarts the cycle of the ramp on series `i`, or gives a healthy
    /// series a small change that wears off. Returns (before, after).
    pub(super) fn relieve(
        &mut self,
        i: usize,
        t: f64,
        now: Time,
        healthy_change: impl Fn(f64) -> f64,
    ) -> (f64, f64) {
        let before = self.value(i, &self.at(now));
        let quiet_until = now + COOL_OFF;
        let regrow = self.sim(quiet_until);
        if let Some(r) = self.ramps.iter_mut().find(|r| r.series == i) {
            r.quiet_until = Some(quiet_until);
            r.epoch = regrow;
        } else {
            self.bumps.retain(|b| t - b.at < BUMP_DECAY);
            self.bumps.push(Bump {
                series: i,
                amount: healthy_change(before),
                at: t,
            });
        }
        (before, self.value(i, &self.at(now)))
    }

    /// The `sim` executor: applies the runbook's effect to the simulated
    /// host and reports it as an executor would.
    pub fn execute(&mut self, exec: &Execution, now: Time) -> Outcome {
        let t = self.sim(now);
        let Some(host) = HOSTS.iter().position(|h| h.name == exec.target) else {
            return Outcome::failure(
                Some(255),
                format!(
                    "the demo fleet has no host {:?}",
                    exec.target.escape_debug().to_string()
                ),
            );
        };
        let h = &HOSTS[host];
        let param = |k: &str| exec.params.get(k).map(String::as_str);
        let manager = param("manager").unwrap_or(h.manager);
        match exec.runbook.as_str() {
            "disk_cleanup" => {
                let mount = param("mountpoint").unwrap_or("/");
                let Some(i) = self.find(host, Metric::Disk, Some(mount)) else {
                    return Outcome::failure(
                        Some(1),
                        format!("df: {mount}: no such mount point on {}", h.name),
                    );
                };
                let size = self.series[i].size;
                let (before, after) = self.relieve(i, t, now, |v| -(v * 0.05).min(4.0));
                let freed = ((before - after).max(0.0) / 100.0 * size * GIB).round();
                let mut o = Outcome::success(format!(
                    "freed {:.1} GiB on {mount} ({before:.1}% → {after:.1}% used)",
                    freed / GIB
                ));
                o.data = Some(json!({
                    "mountpoint": mount,
                    "freed_bytes": freed as u64,
                    "used_percent_before": before,
                    "used_percent_after": after,
                    "size_bytes": (size * GIB) as u64,
                }));
                o
            }
            "service_restart" => {
                let Some(svc) = param("service") else {
                    return Outcome::failure(Some(2), "no service given");
                };
                let Some(i) = self.find(host, Metric::ServiceUp, Some(svc)) else {
                    return Outcome::failure(
                        Some(5),
                        format!(
                            "Failed to restart {svc}: unit {svc} not found on {}",
                            h.name
                        ),
                    );
                };
                let was_up = self.value(i, &self.at(now)) >= 1.0;
                if i == self.crash.series {
                    self.crash.restarts.push(now);
                }
                let mut o =
                    Outcome::success(format!("restarted {svc} via {manager}: active (running)"));
                o.data = Some(json!({
                    "service": svc,
                    "manager": manager,
                    "was_up": was_up,
                    "active": true,
                    "restarts_this_episode": self.crash.restarts_this_episode(now),
                }));
                o
            }
            "memory_pressure" => {
                let svc = param("service").unwrap_or(h.main);
                let Some(i) = self.find(host, Metric::Memory, None) else {
                    return Outcome::failure(Some(1), format!("no memory figures for {}", h.name));
                };
                if !h.services.contains(&svc) {
                    return Outcome::failure(
                        Some(5),
                        format!(
                            "Failed to restart {svc}: unit {svc} not found on {}",
                            h.name
                        ),
                    );
                }
                let in_backup = i == self.backup_series && self.backup_phase(now).is_some();
                let (before, after) = if in_backup {
                    let v = self.value(i, &self.at(now));
                    (v, v)
                } else {
                    self.relieve(i, t, now, |v| -(v * 0.2).min(12.0))
                };
                let detail = if in_backup {
                    format!(
                        "restarted {svc} via {manager}: memory {before:.1}% → {after:.1}%; the backup still holds it"
                    )
                } else {
                    format!("restarted {svc} via {manager}: memory {before:.1}% → {after:.1}% used")
                };
                let mut o = Outcome::success(detail);
                o.data = Some(json!({
                    "service": svc,
                    "manager": manager,
                    "memory_percent_before": before,
                    "memory_percent_after": after,
                }));
                o
            }
            "log_rotation" => {
                let Some(path) = param("path") else {
                    return Outcome::failure(Some(2), "no path given");
                };
                let Some(i) = self.find(host, Metric::LogBytes, Some(path)) else {
                    return Outcome::failure(
                        Some(1),
                        format!(
                            "stat: cannot stat '{path}' on {}: No such file or directory",
                            h.name
                        ),
                    );
                };
                let (before, after) = self.relieve(i, t, now, |v| -(v - 1.0 * MIB).max(0.0));
                let archive = (before * 0.09).round();
                let file = path.rsplit('/').next().unwrap_or(path);
                let mut o = Outcome::success(format!(
                    "rotated {path}: {} → {} (kept {file}.1.gz, {})",
                    fmt_bytes(before),
                    fmt_bytes(after),
                    fmt_bytes(archive)
                ));
                o.data = Some(json!({
                    "path": path,
                    "bytes_before": before as u64,
                    "bytes_after": after as u64,
                    "archive_bytes": archive as u64,
                }));
                o
            }
            "zombie_killer" => {
                let Some(i) = self.find(host, Metric::Zombies, None) else {
                    return Outcome::failure(Some(1), format!("no process table for {}", h.name));
                };
                let (before, after) = self.relieve(i, t, now, |v| -v);
                let reaped = (before - after).max(0.0);
                let mut o = Outcome::success(format!(
                    "reaped {reaped:.0} zombie processes (SIGCHLD to their parent {}); {after:.0} left",
                    h.main
                ));
                o.data = Some(json!({
                    "zombies_before": before as u64,
                    "zombies_after": after as u64,
                    "reaped": reaped as u64,
                    "parent": h.main,
                }));
                o
            }
            "connection_reset" => {
                let Some(i) = self.find(host, Metric::Pool, None) else {
                    return Outcome::failure(
                        Some(2),
                        format!(
                            "psql: error: no connection pool is configured on {}",
                            h.name
                        ),
                    );
                };
                let pool = self.series[i].key;
                let (before, after) = self.relieve(i, t, now, |v| -(v * 0.3));
                let terminated = ((before - after).max(0.0) * POOL_SIZE).round();
                let mut o = Outcome::success(format!(
                    "terminated {terminated:.0} idle sessions; pool {pool} {:.0}% → {:.0}% used",
                    before * 100.0,
                    after * 100.0
                ));
                o.data = Some(json!({
                    "pool": pool,
                    "terminated": terminated as u64,
                    "used_ratio_before": before,
                    "used_ratio_after": after,
                    "pool_size": POOL_SIZE as u64,
                }));
                o
            }
            other => Outcome::failure(
                Some(127),
                format!(
                    "the sim executor does not know runbook {:?}",
                    other.escape_debug().to_string()
                ),
            ),
        }
    }
}

/// The hub drives the demo fleet: its samples are the `demo` source and
/// it performs the runs of the `sim` executor.
impl crate::hub::DrivenFleet for DemoFleet {
    fn source(&self) -> &'static str {
        "demo"
    }

    fn runs(&self, executor: &str) -> bool {
        executor == "sim"
    }

    fn step(&mut self, now: Time) -> Vec<Sample> {
        DemoFleet::step(self, now)
    }

    fn execute(&mut self, x: &Execution, now: Time) -> Outcome {
        DemoFleet::execute(self, x, now)
    }

    fn incidents(&self) -> Vec<String> {
        DemoFleet::incidents(self)
    }
}
