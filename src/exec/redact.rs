//! Redaction of secrets from text that goes to the audit trail and logs:
//! `password=`, `token:`, bearer tokens, private key blocks, passwords in
//! URLs, AWS access keys. Conservative: it may hide a harmless value, never
//! the other way round on the shapes it knows.

use std::sync::LazyLock;

use regex::Regex;

static RULES: LazyLock<Vec<(Regex, &'static str)>> = LazyLock::new(|| {
    [
        (
            r"(?s)-----BEGIN [A-Z ]*PRIVATE KEY-----.*?(-----END [A-Z ]*PRIVATE KEY-----|\z)",
            "[REDACTED PRIVATE KEY]",
        ),
        (r"(?i)\b(bearer|basic)\s+[A-Za-z0-9._~+/=-]{6,}", "$1 [REDACTED]"),
        (
            r#"(?i)\b([A-Za-z0-9_-]*(?:password|passwd|pwd|secret|token|api[_-]?key|access[_-]?key|auth))(["']?\s*[=:]\s*["']?)[^\s"',;&]+"#,
            "$1$2[REDACTED]",
        ),
        (r"(://[^/\s:@]+:)[^@\s/]+@", "$1[REDACTED]@"),
        (r"\bAKIA[0-9A-Z]{16}\b", "[REDACTED]"),
    ]
    .into_iter()
    .filter_map(|(p, r)| Regex::new(p).ok().map(|re| (re, r)))
    .collect()
});

/// The text with every secret it recognises replaced by `[REDACTED]`.
pub fn redact(s: &str) -> String {
    let mut out = s.to_string();
    for (re, rep) in RULES.iter() {
        if re.is_match(&out) {
            out = re.replace_all(&out, *rep).into_owned();
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::redact;

    #[test]
    fn known_secret_shapes_are_hidden() {
        for (input, secret) in [
            ("PGPASSWORD=hunter22 psql", "hunter22"),
            ("Authorization: Bearer abcdef123456", "abcdef123456"),
            ("token: \"s3cr3t-value\"", "s3cr3t-value"),
            ("redis://app:topsecret@db:6379/0", "topsecret"),
            ("api_key=XYZ123abc", "XYZ123abc"),
            ("id AKIAABCDEFGHIJKLMNOP", "AKIAABCDEFGHIJKLMNOP"),
            (
                "-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXk\n-----END OPENSSH PRIVATE KEY-----",
                "b3BlbnNzaC1rZXk",
            ),
        ] {
            let r = redact(input);
            assert!(!r.contains(secret), "{input:?} -> {r:?}");
            assert!(r.contains("[REDACTED"), "{input:?} -> {r:?}");
        }
        assert_eq!(redact("freed 12 files"), "freed 12 files");
    }
}
