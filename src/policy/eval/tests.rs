use super::*;
use crate::policy::{Policy, default_specs};

fn t(secs: i64) -> Time {
    "2026-01-01T00:00:00Z".parse::<Time>().unwrap() + TimeDelta::seconds(secs)
}

fn labels(pairs: &[(&str, &str)]) -> Labels {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn defaults() -> Evaluator {
    Evaluator::new(
        default_specs()
            .iter()
            .map(|s| Policy::compile(s).unwrap())
            .collect(),
    )
}

#[test]
fn for_duration_then_fire_on_tick_without_new_samples() {
    let mut ev = defaults();
    let l = labels(&[("host", "h1"), ("mountpoint", "/")]);
    let mut out = Vec::new();
    ev.observe_sample("disk_used_percent", &l, 90.0, t(0), &mut out)
        .unwrap();
    assert!(out.is_empty());
    assert_eq!(ev.next_deadline(), Some(t(60)));
    ev.tick(t(59), &mut out);
    assert!(out.is_empty());
    ev.tick(t(60), &mut out);
    assert!(matches!(
        out[0],
        Transition::Fired {
            severity: Severity::Warning,
            ..
        }
    ));
    let inst = ev.instance(0);
    assert_eq!(inst.labels().get("alertname").unwrap(), "DiskSpaceLow");
}

#[test]
fn pending_resets_when_condition_stops_holding() {
    let mut ev = defaults();
    let l = labels(&[("host", "h1"), ("mountpoint", "/")]);
    let mut out = Vec::new();
    ev.observe_sample("disk_used_percent", &l, 90.0, t(0), &mut out)
        .unwrap();
    ev.observe_sample("disk_used_percent", &l, 70.0, t(30), &mut out)
        .unwrap();
    ev.tick(t(60), &mut out);
    assert!(out.is_empty());
}

#[test]
fn hysteresis_keeps_firing_between_thresholds() {
    let mut ev = defaults();
    let l = labels(&[("host", "h1"), ("mountpoint", "/")]);
    let mut out = Vec::new();
    ev.observe_sample("disk_used_percent", &l, 97.0, t(0), &mut out)
        .unwrap();
    ev.tick(t(60), &mut out);
    assert_eq!(
        out,
        vec![Transition::Fired {
            instance: 0,
            severity: Severity::Critical
        }]
    );
    out.clear();
    ev.observe_sample("disk_used_percent", &l, 82.0, t(70), &mut out)
        .unwrap();
    assert!(out.is_empty(), "82 is inside the hysteresis band");
    ev.observe_sample("disk_used_percent", &l, 79.0, t(80), &mut out)
        .unwrap();
    assert_eq!(
        out,
        vec![Transition::Resolved {
            instance: 0,
            stale: false
        }]
    );
}

#[test]
fn stale_data_resolves_after_five_minutes() {
    let mut ev = defaults();
    let l = labels(&[("host", "h1"), ("service", "api")]);
    let mut out = Vec::new();
    ev.observe_sample("service_up", &l, 0.0, t(0), &mut out)
        .unwrap();
    ev.tick(t(30), &mut out);
    assert_eq!(out.len(), 1);
    out.clear();
    ev.tick(t(300), &mut out);
    assert!(out.is_empty(), "still current at exactly 5m");
    let due = ev.next_deadline().unwrap();
    ev.tick(due, &mut out);
    assert_eq!(
        out,
        vec![Transition::Resolved {
            instance: 0,
            stale: true
        }]
    );
}

#[test]
fn matchers_select_series_and_all_combines_metrics() {
    let spec: crate::policy::PolicySpec = toml::from_str(
        r#"
name = "HotAndBusy"
when = { all = ['cpu{role="web"} > 90', "load > 4"] }
labels = ["host"]
"#,
    )
    .unwrap();
    let mut ev = Evaluator::new(vec![Policy::compile(&spec).unwrap()]);
    let web = labels(&[("host", "w1"), ("role", "web")]);
    let db = labels(&[("host", "d1"), ("role", "db")]);
    let mut out = Vec::new();
    ev.observe_sample("cpu", &db, 99.0, t(0), &mut out).unwrap();
    ev.observe_sample("load", &db, 9.0, t(0), &mut out).unwrap();
    assert!(out.is_empty(), "role=db is not selected");
    ev.observe_sample("cpu", &web, 95.0, t(0), &mut out)
        .unwrap();
    assert!(out.is_empty(), "load not yet known for w1");
    ev.observe_sample("load", &labels(&[("host", "w1")]), 5.0, t(1), &mut out)
        .unwrap();
    assert_eq!(out.len(), 1);
}

#[test]
fn fingerprints_are_per_label_set() {
    let mut ev = defaults();
    let mut out = Vec::new();
    for m in ["/", "/var"] {
        let l = labels(&[("host", "h1"), ("mountpoint", m), ("device", "sda")]);
        ev.observe_sample("disk_used_percent", &l, 99.0, t(0), &mut out)
            .unwrap();
    }
    assert_eq!(ev.instances().len(), 2);
    assert_ne!(ev.instance(0).fingerprint, ev.instance(1).fingerprint);
    assert_eq!(ev.instance(0).labels().get("device").unwrap(), "sda");
    assert!(!ev.instance(0).key.contains_key("device"));
}
fn budget(ttl_secs: i64, per_metric: usize, total: usize) -> SeriesBudget {
    SeriesBudget {
        ttl: TimeDelta::seconds(ttl_secs),
        per_metric,
        total,
    }
}

fn disk(host: &str) -> Labels {
    labels(&[("host", host), ("mountpoint", "/")])
}

#[test]
fn idle_series_are_evicted_and_their_ids_reused() {
    let mut ev = defaults();
    ev.set_budget(budget(3600, 100, 100));
    let mut out = Vec::new();
    for h in ["h1", "h2", "h3"] {
        ev.observe_sample("disk_used_percent", &disk(h), 50.0, t(0), &mut out)
            .unwrap();
    }
    ev.observe_sample("disk_used_percent", &disk("h4"), 50.0, t(3000), &mut out)
        .unwrap();
    assert_eq!(ev.series_count(), 4);
    let sizes = (ev.keys.len(), ev.instances.len(), ev.vals.len());
    assert_eq!(
        ev.evict_idle(t(3600), 1000, |_| false),
        0,
        "not idle for 1h yet"
    );
    assert_eq!(ev.evict_idle(t(3601), 1000, |_| false), 3);
    assert_eq!(ev.series_count(), 1);
    assert_eq!(
        ev.figures(),
        SeriesFigures {
            live: 1,
            evicted: 3,
            instances: 1
        }
    );
    let left: Vec<String> = ev.series().map(|k| k.to_labels()["host"].clone()).collect();
    assert_eq!(left, ["h4"]);
    // New series take the freed ids: the tables do not grow.
    for h in ["h5", "h6", "h7"] {
        let id = ev
            .observe_sample("disk_used_percent", &disk(h), 50.0, t(3700), &mut out)
            .unwrap();
        assert!(id < 3, "{h} got id {id}");
    }
    assert_eq!((ev.keys.len(), ev.instances.len(), ev.vals.len()), sizes);
    assert!(out.is_empty());
}

#[test]
fn a_firing_alert_keeps_its_series_until_it_resolves() {
    let mut ev = defaults();
    ev.set_budget(budget(60, 100, 100));
    let l = labels(&[("host", "h1"), ("service", "api")]);
    let mut out = Vec::new();
    ev.observe_sample("service_up", &l, 0.0, t(0), &mut out)
        .unwrap();
    ev.tick(t(30), &mut out);
    assert!(matches!(out[..], [Transition::Fired { .. }]));
    out.clear();
    // Idle for more than the ttl, still firing (staleness resolves it
    // only after 5 minutes): kept.
    assert_eq!(ev.evict_idle(t(200), 1000, |_| false), 0);
    assert!(ev.is_firing(0));
    ev.tick(t(301), &mut out);
    assert_eq!(
        out,
        vec![Transition::Resolved {
            instance: 0,
            stale: true
        }]
    );
    // Resolved, but an alert of the table still refers to it: kept.
    assert_eq!(ev.evict_idle(t(400), 1000, |i| i == 0), 0);
    assert!(!ev.instances()[0].fingerprint.is_empty());
    assert_eq!(ev.evict_idle(t(400), 1000, |_| false), 1);
    assert_eq!(ev.figures().instances, 0);
    assert_eq!(ev.find_instance(""), None);
}

#[test]
fn a_pending_alert_keeps_its_series() {
    let mut ev = defaults();
    ev.set_budget(budget(60, 100, 100));
    let mut out = Vec::new();
    // MemoryPressure holds for 2m: pending past the 1m ttl.
    let l = labels(&[("host", "h1"), ("service", "db")]);
    ev.observe_sample("memory_used_percent", &l, 95.0, t(0), &mut out)
        .unwrap();
    assert_eq!(ev.evict_idle(t(90), 1000, |_| false), 0);
    assert!(matches!(ev.state(0), InstState::Pending { .. }));
    ev.tick(t(120), &mut out);
    assert!(matches!(out[..], [Transition::Fired { .. }]));
}

#[test]
fn an_evicted_series_comes_back_as_a_new_series_and_evaluates_afresh() {
    let mut ev = defaults();
    ev.set_budget(budget(60, 100, 100));
    let mut out = Vec::new();
    let l = disk("h1");
    ev.observe_sample("disk_used_percent", &l, 90.0, t(0), &mut out)
        .unwrap();
    // Pending, then back to normal: inactive.
    ev.observe_sample("disk_used_percent", &l, 50.0, t(10), &mut out)
        .unwrap();
    let fp = ev.instance(0).fingerprint.clone();
    assert_eq!(ev.evict_idle(t(100), 1000, |_| false), 1);
    assert_eq!(ev.figures().instances, 0);
    // Another series takes the freed ids first.
    ev.observe_sample("disk_used_percent", &disk("h2"), 50.0, t(200), &mut out)
        .unwrap();
    assert_eq!(ev.instance(0).key.get("host").unwrap(), "h2");
    // h1 is back: a new series and instance, no memory of the old
    // pending state; it fires after its own minute.
    let id = ev
        .observe_sample("disk_used_percent", &l, 97.0, t(300), &mut out)
        .unwrap();
    assert_eq!(id, 1);
    assert!(out.is_empty());
    ev.tick(t(359), &mut out);
    assert!(out.is_empty(), "for 1m starts at the new sample");
    ev.tick(t(360), &mut out);
    assert_eq!(
        out,
        vec![Transition::Fired {
            instance: 1,
            severity: Severity::Critical
        }]
    );
    assert_eq!(ev.instance(1).fingerprint, fp, "the same alert");
    assert_eq!(ev.instance(1).labels().get("mountpoint").unwrap(), "/");
    // The old deadline of instance 0 (h1's pending) hits h2: nothing.
    out.clear();
    ev.tick(t(10_000), &mut out);
    assert!(
        !out.iter()
            .any(|t| matches!(t, Transition::Fired { instance: 0, .. })),
        "{out:?}"
    );
}

#[test]
fn subs_are_compacted_when_half_of_them_are_garbage() {
    let mut ev = defaults();
    ev.set_budget(budget(60, 10_000, 10_000));
    let mut out = Vec::new();
    for i in 0..3000 {
        let at = if i % 3 == 0 { t(100) } else { t(0) };
        ev.observe_sample(
            "disk_used_percent",
            &disk(&format!("h{i}")),
            50.0,
            at,
            &mut out,
        )
        .unwrap();
    }
    // An idle series no policy reads, interned last: its (empty) run
    // starts at the end of `subs`, and it is swept after a compaction.
    ev.observe_sample("unread", &disk("h1"), 1.0, t(0), &mut out)
        .unwrap();
    assert_eq!(ev.subs.len(), 3000);
    // In small steps, as the hub does it.
    let mut evicted = 0;
    for _ in 0..10 {
        evicted += ev.evict_idle(t(90), 500, |_| false);
    }
    assert_eq!(evicted, 2001);
    assert!(ev.subs.len() < 3000, "compacted");
    assert_eq!(ev.subs.len() - ev.subs_garbage, 1000);
    assert_eq!(ev.series_count(), 1000);
    // The survivors still feed their own instances.
    let id = ev
        .observe_sample("disk_used_percent", &disk("h2997"), 99.0, t(120), &mut out)
        .unwrap();
    ev.tick(t(180), &mut out);
    assert_eq!(out.len(), 1, "{out:?}");
    let Transition::Fired { instance, .. } = out[0] else {
        panic!("{out:?}")
    };
    assert_eq!(ev.instance(instance).key.get("host").unwrap(), "h2997");
    assert!(ev.keys[id as usize].label("host") == Some("h2997"));
}

#[test]
fn a_metric_at_its_limit_refuses_new_series_and_keeps_old_ones() {
    let mut ev = defaults();
    ev.set_budget(budget(60, 2, 3));
    let mut out = Vec::new();
    for h in ["h1", "h2"] {
        ev.observe_sample("disk_used_percent", &disk(h), 50.0, t(0), &mut out)
            .unwrap();
    }
    let e = ev
        .observe_sample("disk_used_percent", &disk("h3"), 50.0, t(0), &mut out)
        .unwrap_err();
    assert_eq!(e.kind, LimitKind::PerMetric);
    assert_eq!(e.reason(), "max_series_per_metric");
    let msg = e.to_string();
    assert!(
        msg.contains("metric disk_used_percent already has 2 series"),
        "{msg}"
    );
    assert!(msg.contains("max_series_per_metric"), "{msg}");
    // Known series go on; other metrics have their own count.
    ev.observe_sample("disk_used_percent", &disk("h1"), 60.0, t(30), &mut out)
        .unwrap();
    ev.observe_sample("service_up", &disk("h1"), 1.0, t(30), &mut out)
        .unwrap();
    // The total limit.
    let e = ev
        .observe_sample("zombie_processes", &disk("h1"), 1.0, t(30), &mut out)
        .unwrap_err();
    assert_eq!(e.kind, LimitKind::Total);
    assert!(e.to_string().contains("already holds 3 series"), "{e}");
    // An evicted series makes room.
    assert_eq!(ev.evict_idle(t(61), 100, |_| false), 1);
    ev.observe_sample("disk_used_percent", &disk("h3"), 50.0, t(61), &mut out)
        .unwrap();
    assert_eq!(ev.series_count(), 3);
}
/// What must hold between every table of the evaluator, whatever
/// happened before.
fn check_invariants(ev: &Evaluator) {
    let live: Vec<usize> = (0..ev.keys.len())
        .filter(|&i| !ev.keys[i].is_empty())
        .collect();
    assert_eq!(live.len(), ev.series_count());
    assert_eq!(ev.index.len(), live.len());
    assert_eq!(ev.free_series.len() + live.len(), ev.keys.len());
    assert!(ev.free_series.iter().all(|&i| (i as usize) < ev.keys.len()));
    assert!(
        ev.free_insts
            .iter()
            .all(|&i| (i as usize) < ev.instances.len())
    );
    let per_metric: u32 = ev.per_metric.values().sum();
    assert_eq!(per_metric as usize, live.len());
    let mut fed = vec![0u32; ev.instances.len()];
    for &id in &live {
        assert_eq!(ev.find_series(ev.keys[id].as_bytes()), Some(id as SeriesId));
        let h = ev.series_hot[id];
        let end = (h.subs_start + h.subs_len) as usize;
        assert!(
            end <= ev.subs.len(),
            "series {id}: run {}..{end}",
            h.subs_start
        );
        for &(inst, slot) in &ev.subs[h.subs_start as usize..end] {
            let hi = ev.hot[inst as usize];
            assert_ne!(
                ev.instances[inst as usize].policy,
                u32::MAX,
                "a freed instance"
            );
            assert!(slot >= hi.vals_start && slot < hi.vals_start + hi.leaves);
            fed[inst as usize] += 1;
        }
    }
    let mut live_insts = 0;
    for (i, x) in ev.instances.iter().enumerate() {
        if x.policy == u32::MAX {
            assert!(ev.free_insts.contains(&(i as InstanceId)));
            continue;
        }
        live_insts += 1;
        assert_eq!(ev.hot[i].series, fed[i], "instance {i}");
        let h = hash_inst(
            &ev.hasher,
            x.policy,
            x.key.iter().map(|(k, v)| (k, v.as_str())),
        );
        assert_eq!(
            ev.inst_index.find(h, |&j| j as usize == i),
            Some(&(i as InstanceId))
        );
    }
    assert_eq!(ev.inst_index.len(), live_insts);
}

#[test]
fn eviction_and_reuse_keep_every_table_consistent() {
    // A small deterministic generator (xorshift): many runs of random
    // samples, ticks and eviction steps over a pool of series.
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut next = |n: u64| {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x % n
    };
    let metrics = [
        "disk_used_percent",
        "service_up",
        "unread",
        "memory_used_percent",
    ];
    let mut ev = defaults();
    ev.set_budget(budget(120, 40, 100));
    let mut out = Vec::new();
    let mut now = 0;
    for step in 0..20_000 {
        now += next(3) as i64;
        match next(10) {
            0 => ev.tick(t(now), &mut out),
            1 => {
                let pinned = next(50) as InstanceId;
                ev.evict_idle(t(now), 1 + next(40) as usize, |i| i == pinned);
            }
            _ => {
                let m = metrics[next(metrics.len() as u64) as usize];
                let l = labels(&[
                    ("host", &format!("h{}", next(60))),
                    ("mountpoint", "/"),
                    ("service", ["api", "db"][next(2) as usize]),
                ]);
                let v = [0.0, 1.0, 50.0, 97.0][next(4) as usize];
                let r = ev.observe_sample(m, &l, v, t(now), &mut out);
                if let Err(e) = r {
                    assert!(e.limit == 40 || e.limit == 100, "{e}");
                }
            }
        }
        out.clear();
        if step % 97 == 0 {
            check_invariants(&ev);
        }
    }
    check_invariants(&ev);
    assert!(ev.figures().evicted > 100, "{:?}", ev.figures());
}
