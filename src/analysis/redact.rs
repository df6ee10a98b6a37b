//! Secret redaction for anything that leaves the machine (the LLM prompt):
//! values of secret-looking keys, and secret-looking text inside any value,
//! by the crate's one rule set (`crate::redact`), applied to every label,
//! annotation, parameter and detail of an analysis input.
//!
//! Pure string work; it must err on the side of redacting.

use super::AnalysisInput;
use crate::model::Labels;

pub use crate::redact::{REDACTED, is_secret_key};

/// Redacts secret-looking text inside a value (the crate's one rule set).
pub fn redact_text(s: &str) -> String {
    crate::redact::redact(s)
}

/// Redacts a label set: whole values of secret keys, secret text in others.
pub fn redact_labels(l: &Labels) -> Labels {
    l.iter()
        .map(|(k, v)| {
            let v = if is_secret_key(k) {
                REDACTED.to_string()
            } else {
                redact_text(v)
            };
            (k.clone(), v)
        })
        .collect()
}

/// A copy of the input with every label, annotation, parameter and detail
/// redacted: what may be sent to an LLM.
pub fn redact_input(input: &AnalysisInput) -> AnalysisInput {
    let mut r = input.clone();
    r.alert.labels = redact_labels(&r.alert.labels);
    r.alert.annotations = redact_labels(&r.alert.annotations);
    r.host_labels = redact_labels(&r.host_labels);
    for a in &mut r.related {
        a.labels = redact_labels(&a.labels);
        a.annotations = redact_labels(&a.annotations);
    }
    for s in &mut r.series {
        s.labels = redact_labels(&s.labels);
    }
    for rec in &mut r.records {
        if let Some(l) = rec.labels.as_mut() {
            *l = redact_labels(l);
        }
        if let Some(p) = rec.params.as_mut() {
            *p = redact_labels(p);
        }
        if let Some(d) = rec.detail.as_mut() {
            *d = redact_text(d);
        }
        if let Some(d) = rec.reason.as_mut() {
            *d = redact_text(d);
        }
        rec.data = None;
    }
    r
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secret_keys_are_blanked_whole() {
        let l: Labels = [
            ("api_key", "abc"),
            ("X-Auth-Token", "t0k"),
            ("db.password", "hunter2"),
            ("service", "gunicorn"),
            ("mountpoint", "/var/lib/postgresql"),
        ]
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        let r = redact_labels(&l);
        assert_eq!(r["api_key"], REDACTED);
        assert_eq!(r["X-Auth-Token"], REDACTED);
        assert_eq!(r["db.password"], REDACTED);
        assert_eq!(r["service"], "gunicorn");
        assert_eq!(r["mountpoint"], "/var/lib/postgresql");
    }

    #[test]
    fn secrets_inside_text_are_redacted() {
        for (text, secret) in [
            (
                "curl -H 'Authorization: Bearer abcdef123456789'",
                "abcdef123456789",
            ),
            (
                "connect postgres://app:s3cr3tpw@db-01:5432/app failed",
                "s3cr3tpw",
            ),
            ("login failed password=hunter22 for user app", "hunter22"),
            ("key AKIAIOSFODNN7EXAMPLE leaked", "AKIAIOSFODNN7EXAMPLE"),
            ("token ghp_abcdefghijklmnopqrstuvwxyz0123", "ghp_abcdefghij"),
            (
                "openai sk-proj-abcdefghijklmnopqrstuvwx",
                "sk-proj-abcdefghij",
            ),
            (
                "jwt eyJhbGciOiJIUzI1.eyJzdWIiOiIxMjM0.SflKxwRJSMeKKF2QT4",
                "eyJhbGciOiJIUzI1",
            ),
        ] {
            let r = redact_text(text);
            assert!(!r.contains(secret), "{text:?} -> {r:?}");
            assert!(r.contains(REDACTED), "{text:?} -> {r:?}");
        }
        let plain = "disk /var/log/nginx/access.log grew to 12 GiB on app-02";
        assert_eq!(redact_text(plain), plain);
    }
}
