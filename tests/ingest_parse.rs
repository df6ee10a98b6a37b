//! The webhook and ingest parsers against the real captures in
//! tests/fixtures/prometheus-stack, and a randomized mutation loop that must
//! never panic.

use vigil::ingest::parse::{parse_ingest, parse_webhook};
use vigil::model::AlertStatus;

fn fixture(name: &str) -> Vec<u8> {
    let p = format!(
        "{}/tests/fixtures/prometheus-stack/{name}",
        env!("CARGO_MANIFEST_DIR")
    );
    std::fs::read(&p).unwrap_or_else(|e| panic!("{p}: {e}"))
}

const WEBHOOKS: [&str; 6] = [
    "alertmanager_webhook_firing_critical.json",
    "alertmanager_webhook_firing_warning.json",
    "alertmanager_webhook_grouped_firing_mixed.json",
    "alertmanager_webhook_grouped_firing_one_resolved.json",
    "alertmanager_webhook_resolved_after_rule_change.json",
    "alertmanager_webhook_resolved_toggle.json",
];

#[test]
fn every_captured_webhook_parses_with_every_field() {
    for f in WEBHOOKS {
        let raw: serde_json::Value = serde_json::from_slice(&fixture(f)).unwrap();
        let p = parse_webhook(&fixture(f)).unwrap_or_else(|e| panic!("{f}: {e}"));
        assert_eq!(p.version, "4");
        assert_eq!(p.receiver, raw["receiver"].as_str().unwrap(), "{f}");
        assert_eq!(p.group_key, raw["groupKey"].as_str().unwrap(), "{f}");
        assert_eq!(p.external_url, raw["externalURL"].as_str().unwrap(), "{f}");
        assert_eq!(p.truncated_alerts, raw["truncatedAlerts"].as_u64().unwrap());
        assert_eq!(
            p.group_labels.0.len(),
            raw["groupLabels"].as_object().unwrap().len()
        );
        assert_eq!(
            p.common_labels.0.len(),
            raw["commonLabels"].as_object().unwrap().len()
        );
        assert_eq!(
            p.common_annotations.0.len(),
            raw["commonAnnotations"].as_object().unwrap().len()
        );
        let ra = raw["alerts"].as_array().unwrap();
        assert_eq!(p.alerts.len(), ra.len());
        for (a, r) in p.alerts.iter().zip(ra) {
            assert_eq!(a.fingerprint, r["fingerprint"].as_str().unwrap());
            assert_eq!(a.generator_url, r["generatorURL"].as_str().unwrap());
            for (k, v) in r["labels"].as_object().unwrap() {
                assert_eq!(a.labels.0.get(k).map(String::as_str), v.as_str(), "{f} {k}");
            }
            for (k, v) in r["annotations"].as_object().unwrap() {
                assert_eq!(a.annotations.0.get(k).map(String::as_str), v.as_str());
            }
            let starts = r["startsAt"].as_str().unwrap();
            assert_eq!(
                a.starts_at.0.unwrap(),
                chrono::DateTime::parse_from_rfc3339(starts).unwrap()
            );
            // The zero endsAt means unset; a real one is kept.
            let ends = r["endsAt"].as_str().unwrap();
            match a.ends_at.and_then(|t| t.0) {
                None => assert!(ends.starts_with("0001-01-01"), "{f}: {ends}"),
                Some(t) => assert_eq!(t, chrono::DateTime::parse_from_rfc3339(ends).unwrap()),
            }
        }
    }
}

#[test]
fn webhook_alerts_become_incoming_alerts() {
    let p = parse_webhook(&fixture(
        "alertmanager_webhook_grouped_firing_one_resolved.json",
    ))
    .unwrap();
    let v = p.incoming("am");
    assert_eq!(v.len(), 2);
    assert_eq!(v[0].status, AlertStatus::Firing);
    assert_eq!(v[0].ends_at, None);
    assert_eq!(v[0].fingerprint.as_deref(), Some("465b37a73746d1d8"));
    assert_eq!(v[1].status, AlertStatus::Resolved);
    assert!(v[1].ends_at.is_some());
    assert_eq!(v[1].source.as_deref(), Some("am"));
    assert_eq!(v[0].labels.get("team").map(String::as_str), Some("sre"));
}

#[test]
fn escaped_characters_survive() {
    let p = parse_webhook(&fixture("alertmanager_webhook_firing_critical.json")).unwrap();
    assert_eq!(p.group_key, "{}:{alertname=\"HostMemoryCritical\"}");
    let body = br#"{"version":"4","status":"firing","alerts":[{"status":"firing",
        "labels":{"alertname":"A\"b\\c","path":"/var/log/\u00e9t\u00e9\n"},
        "annotations":{"summary":"tab\there \ud83d\udd25"},
        "startsAt":"2026-11-22T20:52:26.814Z","endsAt":"0001-01-01T00:00:00Z"}]}"#;
    let p = parse_webhook(body).unwrap();
    let a = &p.alerts[0];
    assert_eq!(a.labels.0["alertname"], "A\"b\\c");
    assert_eq!(a.labels.0["path"], "/var/log/été\n");
    assert_eq!(a.annotations.0["summary"], "tab\there 🔥");
    assert_eq!(p.truncated_alerts, 0);
}

#[test]
fn truncated_alerts_is_read() {
    let mut raw: serde_json::Value =
        serde_json::from_slice(&fixture("alertmanager_webhook_grouped_firing_mixed.json")).unwrap();
    raw["truncatedAlerts"] = 7.into();
    let p = parse_webhook(&serde_json::to_vec(&raw).unwrap()).unwrap();
    assert_eq!(p.truncated_alerts, 7);
}

#[test]
fn webhook_errors_name_the_field() {
    let mut raw: serde_json::Value =
        serde_json::from_slice(&fixture("alertmanager_webhook_grouped_firing_mixed.json")).unwrap();
    raw["alerts"][1]["status"] = "burning".into();
    let e = parse_webhook(&serde_json::to_vec(&raw).unwrap()).unwrap_err();
    assert_eq!(
        (e.status, e.field.as_str()),
        (422, "alerts[1].status"),
        "{e:?}"
    );
    assert!(e.message.contains("firing"), "{e:?}");

    raw["alerts"][1]["status"] = "firing".into();
    raw["alerts"][0]["startsAt"] = "yesterday".into();
    let e = parse_webhook(&serde_json::to_vec(&raw).unwrap()).unwrap_err();
    assert_eq!(e.field, "alerts[0].startsAt", "{e:?}");

    raw["alerts"][0]["startsAt"] = "2026-11-22T20:52:26Z".into();
    raw["version"] = "3".into();
    let e = parse_webhook(&serde_json::to_vec(&raw).unwrap()).unwrap_err();
    assert_eq!((e.status, e.field.as_str()), (422, "version"));

    let e = parse_webhook(b"{\"version\": \"4\", ").unwrap_err();
    assert_eq!(e.status, 400);
    let e = parse_webhook(b"\xff\xfe{}").unwrap_err();
    assert_eq!(e.status, 400);
}

#[test]
fn hostile_shapes_are_refused_not_panicked_on() {
    let deep = format!("{}{}", "[".repeat(100_000), "]".repeat(100_000));
    assert!(matches!(
        parse_ingest(deep.as_bytes()).unwrap_err().status,
        400 | 422
    ));
    assert!(serde_json::from_slice::<serde_json::Value>(deep.as_bytes()).is_err());
    assert_eq!(parse_webhook(deep.as_bytes()).unwrap_err().status, 422);
    let deep_obj = format!(
        "{{\"name\":\"x\",\"value\":1,\"tags\":{}}}",
        "{\"a\":".repeat(50_000)
    );
    assert!(parse_ingest(deep_obj.as_bytes()).is_err());
    let many: Vec<String> = (0..5000).map(|i| format!("\"l{i}\":\"v\"")).collect();
    let body = format!(
        "{{\"name\":\"x\",\"value\":1,\"tags\":{{{}}}}}",
        many.join(",")
    );
    let e = parse_ingest(body.as_bytes()).unwrap_err();
    assert_eq!((e.status, e.field.as_str()), (422, "tags"), "{e:?}");
    let e =
        parse_ingest(b"{\"name\":\"x\",\"value\":1,\"tags\":{\"a\":\"\xc3\x28\"}}").unwrap_err();
    assert_eq!(e.status, 400);
    let e = parse_ingest(b"{\"name\":\"x\",\"name\":\"y\",\"value\":1}").unwrap_err();
    assert_eq!(e.status, 422, "{e:?}");
    assert!(e.message.contains("duplicate"), "{e:?}");
    let e = parse_ingest(b"[]").unwrap_err();
    assert_eq!(e.status, 422);
}

/// A small deterministic generator (xorshift) so failures reproduce.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

const PIECES: [&[u8]; 16] = [
    b"{",
    b"}",
    b"[",
    b"]",
    b"\"",
    b":",
    b",",
    b"null",
    b"1e999",
    b"-0",
    b"\\u0000",
    b"\xff",
    b"\"alerts\"",
    b"\"labels\"",
    b"\"value\"",
    b"\"0001-01-01T00:00:00Z\"",
];

fn mutate(rng: &mut Rng, seed: &[u8]) -> Vec<u8> {
    let mut b = seed.to_vec();
    for _ in 0..1 + rng.below(8) {
        let at = rng.below(b.len() + 1);
        match rng.below(4) {
            0 if !b.is_empty() => {
                let end = (at + 1 + rng.below(16)).min(b.len());
                b.drain(at.min(b.len())..end);
            }
            1 => {
                let p = PIECES[rng.below(PIECES.len())];
                b.splice(at..at, p.iter().copied());
            }
            2 if at < b.len() => b[at] = rng.next() as u8,
            _ => {
                let src = rng.below(b.len().max(1));
                let end = (src + rng.below(64)).min(b.len());
                let chunk = b[src.min(end)..end].to_vec();
                b.splice(at..at, chunk);
            }
        }
    }
    b
}

#[test]
fn random_mutations_never_panic_and_always_classify() {
    let mut seeds: Vec<Vec<u8>> = WEBHOOKS.iter().map(|f| fixture(f)).collect();
    seeds.push(br#"{"name":"disk_used_percent","value":91.5,"tags":{"host":"a","mountpoint":"/"},"timestamp":"2026-01-01T00:00:00Z"}"#.to_vec());
    seeds.push(br#"[{"name":"cpu","value":1},{"name":"mem","value":2,"tags":{"h":"x"},"timestamp":1700000000}]"#.to_vec());
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let (mut ok, mut refused) = (0, 0);
    for i in 0..20_000 {
        let seed = &seeds[i % seeds.len()];
        let body = mutate(&mut rng, seed);
        for r in [
            parse_webhook(&body).map(|_| ()),
            parse_ingest(&body).map(|_| ()),
        ] {
            match r {
                Ok(()) => ok += 1,
                Err(e) => {
                    assert!(matches!(e.status, 400 | 422), "{e:?}");
                    assert!(!e.field.is_empty() && !e.accepted.is_empty());
                    refused += 1;
                }
            }
        }
    }
    // The loop exercised both outcomes.
    assert!(ok > 100 && refused > 10_000, "ok {ok}, refused {refused}");
}
