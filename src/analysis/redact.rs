//! Secret redaction for anything that leaves the machine (the LLM prompt):
//! values of secret-looking keys, and secret-looking text inside any value
//! (bearer tokens, `password=...`, credentials in URLs, cloud and API keys,
//! JWTs, long random strings).
//!
//! Pure string work; it must err on the side of redacting.

use std::sync::LazyLock;

use regex::Regex;

use super::AnalysisInput;
use crate::model::Labels;

pub const REDACTED: &str = "[REDACTED]";

const SECRET_KEY_PARTS: [&str; 18] = [
    "token",
    "password",
    "passwd",
    "pwd",
    "pass",
    "secret",
    "secrets",
    "apikey",
    "key",
    "keys",
    "credential",
    "credentials",
    "cookie",
    "authorization",
    "auth",
    "dsn",
    "signature",
    "bearer",
];

/// Is this a key whose value is a secret (`api_key`, `X-Auth-Token`,
/// `db.password`...)?
pub fn is_secret_key(key: &str) -> bool {
    let k = key.to_ascii_lowercase();
    k.split(|c: char| !c.is_ascii_alphanumeric())
        .any(|part| SECRET_KEY_PARTS.contains(&part))
        || k.contains("password")
        || k.contains("secret")
        || k.contains("token")
        || k.contains("apikey")
}

struct Rule {
    re: Regex,
    with: &'static str,
}

static RULES: LazyLock<Vec<Rule>> = LazyLock::new(|| {
    let r = |p: &str, with: &'static str| Regex::new(p).ok().map(|re| Rule { re, with });
    [
        r(r"(?i)\b(bearer|basic|token)\s+[A-Za-z0-9._~+/=-]{8,}", "$1 [REDACTED]"),
        r(
            r#"(?i)\b([a-z0-9_.-]*(?:password|passwd|pwd|token|secret|api[_-]?key|access[_-]?key|auth)[a-z0-9_.-]*)(\s*[=:]\s*)("[^"]*"|'[^']*'|[^\s,;&"']+)"#,
            "$1$2[REDACTED]",
        ),
        r(
            r"(?i)\b([a-z][a-z0-9+.-]*://)[^/\s:@]+:[^/\s@]+@",
            "$1[REDACTED]@",
        ),
        r(r"\bAKIA[0-9A-Z]{16}\b", "[REDACTED]"),
        r(
            r"\beyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}",
            "[REDACTED]",
        ),
        r(
            r"\b(?:gh[pousr]_[A-Za-z0-9]{20,}|xox[abprs]-[A-Za-z0-9-]{10,}|sk-[A-Za-z0-9_-]{20,}|glpat-[A-Za-z0-9_-]{20,})",
            "[REDACTED]",
        ),
        r(r"-----BEGIN [A-Z ]*PRIVATE KEY-----[\s\S]*?(?:-----END [A-Z ]*PRIVATE KEY-----|$)", "[REDACTED]"),
        r(r"\b[0-9a-fA-F]{40,}\b", "[REDACTED]"),
    ]
    .into_iter()
    .flatten()
    .collect()
});

static LONG_TOKEN: LazyLock<Option<Regex>> =
    LazyLock::new(|| Regex::new(r"[A-Za-z0-9+_=-]{40,}").ok());

/// Redacts secret-looking text inside a value.
pub fn redact_text(s: &str) -> String {
    let mut out = s.to_string();
    for rule in RULES.iter() {
        out = rule.re.replace_all(&out, rule.with).into_owned();
    }
    if let Some(re) = LONG_TOKEN.as_ref() {
        // Long random strings mixing upper case, lower case and digits.
        out = re
            .replace_all(&out, |c: &regex::Captures<'_>| {
                let m = &c[0];
                let mixed = m.chars().any(|x| x.is_ascii_uppercase())
                    && m.chars().any(|x| x.is_ascii_lowercase())
                    && m.chars().any(|x| x.is_ascii_digit());
                if mixed {
                    REDACTED.to_string()
                } else {
                    m.to_string()
                }
            })
            .into_owned();
    }
    out
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
