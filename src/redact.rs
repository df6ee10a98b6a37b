//! The one set of secret-redaction rules, for text that goes to the audit
//! trail and logs (`exec`) and for anything that leaves the machine (the
//! LLM prompt, `analysis`): values of secret-looking keys (`password=`,
//! `"token": "..."`), bearer and basic credentials, private key blocks,
//! credentials in URLs, cloud and API keys, JWTs, long hex and random
//! strings.
//!
//! Pure string work; it errs on the side of redacting: it may hide a
//! harmless value, never the other way round on the shapes it knows. A
//! JSON text stays JSON (a redacted string value stays a string).
//! A leaf: it imports nothing from the crate.

use std::sync::LazyLock;

use regex::{Captures, Regex};

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

/// What a match becomes.
enum With {
    Text(&'static str),
    /// A secret key's value, keeping the key, the separator and quotes.
    KeyValue,
    /// A long run of hex digits, unless it is one character repeated
    /// (padding, filler: no secret).
    HexLooking,
    /// A long run of letters and digits, when it mixes cases and digits.
    RandomLooking,
}

static RULES: LazyLock<Vec<(Regex, With)>> = LazyLock::new(|| {
    [
        (
            r"(?s)-----BEGIN [A-Z ]*PRIVATE KEY-----.*?(-----END [A-Z ]*PRIVATE KEY-----|\z)",
            With::Text("[REDACTED PRIVATE KEY]"),
        ),
        (
            r"(?i)\b(bearer|basic|token)\s+[A-Za-z0-9._~+/=-]{6,}",
            With::Text("$1 [REDACTED]"),
        ),
        (
            r#"(?i)\b([a-z0-9_.-]*(?:password|passwd|pwd|token|secret|api[_-]?key|access[_-]?key|auth)[a-z0-9_.-]*)(["']?\s*[=:]\s*)("[^"]*"|'[^']*'|["']?[^\s"',;&]+)"#,
            With::KeyValue,
        ),
        (r"(://)[^/\s:@]+:[^@\s/]+@", With::Text("$1[REDACTED]@")),
        (r"\bAKIA[0-9A-Z]{16}\b", With::Text(REDACTED)),
        (
            r"\beyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}",
            With::Text(REDACTED),
        ),
        (
            r"\b(?:gh[pousr]_[A-Za-z0-9]{20,}|xox[abprs]-[A-Za-z0-9-]{10,}|sk-[A-Za-z0-9_-]{20,}|glpat-[A-Za-z0-9_-]{20,})",
            With::Text(REDACTED),
        ),
        (r"\b[0-9a-fA-F]{40,}\b", With::HexLooking),
        (r"[A-Za-z0-9+_=-]{40,}", With::RandomLooking),
    ]
    .into_iter()
    .filter_map(|(p, w)| Regex::new(p).ok().map(|re| (re, w)))
    .collect()
});

/// `key=value` with the value hidden: a quoted value stays quoted, and a
/// bare value after a quoted key (JSON's `"n":5`) becomes a string.
fn key_value(c: &Captures<'_>) -> String {
    let (key, sep, value) = (&c[1], &c[2], &c[3]);
    let quote = value.chars().next().filter(|q| *q == '"' || *q == '\'');
    match quote {
        Some(q) if value.len() >= 2 && value.ends_with(q) => format!("{key}{sep}{q}{REDACTED}{q}"),
        Some(q) => format!("{key}{sep}{q}{REDACTED}"),
        None if sep.starts_with('"') => format!("{key}{sep}\"{REDACTED}\""),
        None => format!("{key}{sep}{REDACTED}"),
    }
}

/// Long hex strings, but not one character repeated.
fn hex_looking(c: &Captures<'_>) -> String {
    let m = &c[0];
    if m.chars().all(|x| m.starts_with(x)) {
        m.to_string()
    } else {
        REDACTED.to_string()
    }
}

/// Long random strings: upper case, lower case and digits mixed.
fn random_looking(c: &Captures<'_>) -> String {
    let m = &c[0];
    let mixed = m.chars().any(|x| x.is_ascii_uppercase())
        && m.chars().any(|x| x.is_ascii_lowercase())
        && m.chars().any(|x| x.is_ascii_digit());
    if mixed {
        REDACTED.to_string()
    } else {
        m.to_string()
    }
}

/// The text with every secret it recognises replaced by `[REDACTED]`.
pub fn redact(s: &str) -> String {
    let mut out = s.to_string();
    for (re, with) in RULES.iter() {
        if !re.is_match(&out) {
            continue;
        }
        out = match with {
            With::Text(t) => re.replace_all(&out, *t),
            With::KeyValue => re.replace_all(&out, key_value),
            With::HexLooking => re.replace_all(&out, hex_looking),
            With::RandomLooking => re.replace_all(&out, random_looking),
        }
        .into_owned();
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Secret forms only one of the two former rule sets knew: the audit's
    /// (`exec`) or the LLM prompt's (`analysis`). (text, the secret)
    pub(crate) const ONCE_ONE_SIDED: &[(&str, &str)] = &[
        // Formerly the prompt's only.
        ("token abcdef12345 was refused", "abcdef12345"),
        ("password_hash=5f4dcc3b5aa7 stored", "5f4dcc3b5aa7"),
        ("password=\"hunter two\" in the log", "two"),
        ("connect postgres://appuser:pw@db:5432", "appuser"),
        (
            "jwt eyJhbGciOiJIUzI1.eyJzdWIiOiIxMjM0.SflKxwRJSMeKKF2QT4",
            "eyJhbGciOiJIUzI1",
        ),
        ("gh ghp_abcdefghijklmnopqrstuvwxyz0123", "ghp_abcdefghij"),
        ("slack xoxb-1234567890-abcdef", "xoxb-1234567890"),
        (
            "openai sk-proj-abcdefghijklmnopqrstuvwx",
            "sk-proj-abcdefghij",
        ),
        ("gitlab glpat-abcdefghijklmnopqrstuv", "glpat-abcdefghij"),
        (
            "hmac 0123456789abcdef0123456789abcdef01234567",
            "0123456789abcdef0123",
        ),
        (
            "blob Zm9vYmFyQmF6UXV4MTIzNDU2Nzg5MGFiY2RlZmdoaWpr",
            "Zm9vYmFyQmF6UXV4MTIz",
        ),
        // Formerly the audit's only.
        ("Authorization: Bearer abc123", "abc123"),
        ("{\"api_key\": \"XYZ123abc\"}", "XYZ123abc"),
        ("'password' = 'hunter22'", "hunter22"),
        ("password=\"unclosed", "unclosed"),
    ];

    #[test]
    fn every_known_form_is_hidden() {
        for (input, secret) in ONCE_ONE_SIDED.iter().chain(&[
            ("PGPASSWORD=hunter22 psql", "hunter22"),
            ("redis://app:topsecret@db:6379/0", "topsecret"),
            ("id AKIAABCDEFGHIJKLMNOP", "AKIAABCDEFGHIJKLMNOP"),
            (
                "-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXk\n-----END OPENSSH PRIVATE KEY-----",
                "b3BlbnNzaC1rZXk",
            ),
        ]) {
            let r = redact(input);
            assert!(!r.contains(secret), "{input:?} -> {r:?}");
            assert!(r.contains("[REDACTED"), "{input:?} -> {r:?}");
        }
        for plain in [
            "freed 12 files",
            &"a".repeat(1000),
            "disk /var/log/nginx/access.log grew to 12 GiB on app-02",
        ] {
            assert_eq!(redact(plain), plain);
        }
    }

    #[test]
    fn json_stays_json() {
        for text in [
            r#"{"password":"a b","token_count":5,"user":"app"}"#,
            r#"{"note":"Bearer abcdef123456","secret":'x'}"#,
        ] {
            let r = redact(text);
            assert!(r.contains(REDACTED), "{r}");
            if text.contains("\"user\"") {
                let v: serde_json::Value = serde_json::from_str(&r).expect("still JSON");
                assert_eq!(v["password"], REDACTED);
                assert_eq!(v["token_count"], REDACTED);
                assert_eq!(v["user"], "app");
            }
        }
    }

    #[test]
    fn forms_once_known_to_one_side_are_hidden_on_both_paths() {
        use crate::model::Labels;
        for (input, secret) in ONCE_ONE_SIDED {
            let audit = crate::exec::redact(input);
            assert!(!audit.contains(secret), "audit: {input:?} -> {audit:?}");
            let prompt = crate::analysis::redact::redact_text(input);
            assert!(!prompt.contains(secret), "prompt: {input:?} -> {prompt:?}");
            let labels: Labels = [("summary".to_string(), input.to_string())].into();
            let l = crate::analysis::redact::redact_labels(&labels);
            assert!(!l["summary"].contains(secret), "label: {input:?} -> {l:?}");
        }
    }
}
