//! The module map holds: every `crate::X` a top-level module of `src/`
//! names (outside its test code) is one of the arrows ARCHITECTURE.md
//! draws, and the arrows go one way (no cycle). A new import against them,
//! or a new top-level module nobody placed, fails here with the file.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// Each top-level module and the modules it may import, lowest first.
const ARROWS: &[(&str, &[&str])] = &[
    // Leaves: plain data and helpers.
    ("units", &[]),
    ("model", &[]),
    ("private", &[]),
    ("owner", &[]),
    ("shard_map", &[]),
    ("net", &[]),
    ("access", &[]),
    ("redact", &[]),
    ("vital", &["model"]),
    // The functional core.
    ("policy", &["model", "units"]),
    ("runbook", &["model", "policy", "units"]),
    ("engine", &["model", "policy", "runbook", "units"]),
    ("hosts", &["engine", "model", "policy"]),
    // The wire form of the engine's alerts, actions, silences and breakers.
    ("view", &["engine", "model", "runbook"]),
    // Runs executions; its host settings are checked by the config.
    ("exec", &["engine", "net", "redact", "runbook", "units"]),
    // The store: an effect (it implements no hub trait and knows no hub).
    ("store", &["engine", "model", "private"]),
    // The config file, as data for everything above it (the store's
    // `[store]` spec is the store's own type, as host settings are exec's).
    (
        "config",
        &[
            "access", "engine", "exec", "model", "policy", "runbook", "store", "units",
        ],
    ),
    // Effects: each implements an engine trait and knows no hub.
    (
        "analysis",
        &[
            "config",
            "engine",
            "model",
            "net",
            "policy",
            "redact",
            "runbook",
            "shard_map",
            "units",
        ],
    ),
    ("notify", &["config", "engine", "model", "net"]),
    // The shell around the engine.
    (
        "hub",
        &[
            "access",
            "analysis",
            "engine",
            "hosts",
            "model",
            "policy",
            "shard_map",
            "store",
            "view",
            "vital",
        ],
    ),
    (
        "stream",
        &["access", "analysis", "engine", "hub", "model", "view"],
    ),
    (
        "ingest",
        &[
            "access", "config", "engine", "hosts", "hub", "model", "net", "owner", "policy",
            "store", "stream", "units", "view", "vital",
        ],
    ),
    // Outside the hub: the demo fleet and the replayer drive it; the
    // client attaches to it; the console reads what the client brings.
    (
        "sim",
        &[
            "analysis", "config", "engine", "hub", "model", "policy", "runbook", "units",
        ],
    ),
    (
        "client",
        &[
            "access", "analysis", "engine", "hub", "model", "net", "store", "stream",
        ],
    ),
    // The console draws the hub's snapshots, which still carry engine and
    // analysis types; `store` is the audit page query, `config` the
    // screen fixtures' hosts.
    (
        "tui",
        &[
            "analysis", "client", "config", "engine", "hosts", "hub", "model", "private", "store",
            "units",
        ],
    ),
    // Hubs sharing a store: the lease, the trail's copy, the standby's feed.
    ("ha", &["hub", "store", "vital"]),
    // Start-up and the command line's checks.
    (
        "start",
        &[
            "config", "engine", "exec", "ha", "hub", "ingest", "notify", "owner", "private",
            "runbook", "sim", "store", "analysis", "policy",
        ],
    ),
    ("preflight", &["config", "engine", "exec", "units"]),
    (
        "doctor",
        &["config", "engine", "exec", "ingest", "net", "policy"],
    ),
    (
        "agent",
        &[
            "exec", "ingest", "model", "owner", "private", "runbook", "units",
        ],
    ),
];

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for e in std::fs::read_dir(dir).expect("src/ is readable") {
        let p = e.expect("a directory entry").path();
        if p.is_dir() {
            rust_files(&p, out);
        } else if p.extension().is_some_and(|x| x == "rs") {
            out.push(p);
        }
    }
}

/// The `crate::X` names in a file's non-test code (comments skipped; the
/// file stops at its `#[cfg(test)] mod ... {` block).
fn imports(text: &str) -> BTreeSet<String> {
    let lines: Vec<&str> = text.lines().collect();
    let mut out = BTreeSet::new();
    for (i, line) in lines.iter().enumerate() {
        let t = line.trim_start();
        if t.starts_with("#[cfg(test)]")
            && lines
                .get(i + 1)
                .is_some_and(|n| n.trim_start().starts_with("mod ") && n.trim_end().ends_with('{'))
        {
            break;
        }
        if t.starts_with("//") {
            continue;
        }
        let mut rest = *line;
        while let Some(at) = rest.find("crate::") {
            let after = &rest[at + "crate::".len()..];
            let name: String = after
                .chars()
                .take_while(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == '_')
                .collect();
            if !name.is_empty() {
                out.insert(name);
            }
            rest = after;
        }
    }
    out
}

/// (importer, imported) -> the files that import it.
fn edges() -> BTreeMap<(String, String), BTreeSet<String>> {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    let mut out: BTreeMap<(String, String), BTreeSet<String>> = BTreeMap::new();
    for f in files {
        let rel = f.strip_prefix(&src).expect("under src/");
        let name = rel.file_name().and_then(|n| n.to_str()).unwrap_or("");
        if name == "tests.rs" || name.ends_with("_tests.rs") {
            continue;
        }
        let first = rel
            .components()
            .next()
            .and_then(|c| c.as_os_str().to_str())
            .unwrap_or("");
        let top = first.trim_end_matches(".rs").to_string();
        if top == "main" || top == "lib" {
            continue;
        }
        let text = std::fs::read_to_string(&f).expect("a readable source file");
        for m in imports(&text) {
            if m != top {
                out.entry((top.clone(), m))
                    .or_default()
                    .insert(rel.display().to_string());
            }
        }
    }
    out
}

#[test]
fn every_import_follows_an_arrow() {
    let allowed: BTreeMap<&str, BTreeSet<&str>> = ARROWS
        .iter()
        .map(|(m, to)| (*m, to.iter().copied().collect()))
        .collect();
    let found = edges();
    // The scan sees the imports it should: a guard against a reader that
    // finds nothing and passes.
    assert!(found.contains_key(&("hub".into(), "engine".into())));
    assert!(found.contains_key(&("exec".into(), "engine".into())));
    assert!(found.len() > 60, "only {} imports found", found.len());
    let mut wrong = Vec::new();
    for ((from, to), files) in &found {
        match allowed.get(from.as_str()) {
            None => wrong.push(format!(
                "module {from} is not on the map (tests/arrows.rs ARROWS, ARCHITECTURE.md)"
            )),
            Some(ok) if !ok.contains(to.as_str()) => wrong.push(format!(
                "{from} -> {to} is against the arrows, in {}",
                files.iter().cloned().collect::<Vec<_>>().join(", ")
            )),
            Some(_) => {}
        }
    }
    assert!(
        wrong.is_empty(),
        "imports against the module map:\n{}",
        wrong.join("\n")
    );
}

#[test]
fn the_arrows_go_one_way() {
    // Each module may import only modules listed before it.
    let mut seen = BTreeSet::new();
    for (m, to) in ARROWS {
        for t in *to {
            assert!(
                seen.contains(t),
                "{m} -> {t}: {t} is not below {m} in ARROWS (a cycle, or a module out of order)"
            );
        }
        assert!(seen.insert(*m), "{m} is listed twice");
    }
}

#[test]
fn the_scan_reads_imports_and_skips_comments_and_tests() {
    let text = "use crate::engine::Event;\n// crate::sim is only named\nfn f() { crate::model::x(); }\n#[cfg(test)]\nmod tests {\n    use crate::tui::fixture;\n}\n";
    let got: Vec<String> = imports(text).into_iter().collect();
    assert_eq!(got, vec!["engine".to_string(), "model".to_string()]);
}

#[test]
fn the_engine_stays_pure() {
    // No clock, no files, no network, no processes, no runtime: time comes
    // in as an argument. `effects.rs` names the channel an effect answers
    // on, in its traits' signatures only.
    const IMPURE: &[&str] = &[
        "Utc::now",
        "SystemTime::now",
        "Instant::now",
        "std::fs",
        "std::net",
        "std::process",
        "std::thread",
        "reqwest",
        "tokio::spawn",
        "tokio::time",
        "tokio::fs",
        "tokio::net",
    ];
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("src/engine");
    let mut files = Vec::new();
    rust_files(&dir, &mut files);
    assert!(files.len() > 10, "the engine's files: {files:?}");
    let mut found = Vec::new();
    for f in files {
        let name = f.file_name().and_then(|n| n.to_str()).unwrap_or("");
        if name == "tests.rs" || name.ends_with("_tests.rs") {
            continue;
        }
        let text = std::fs::read_to_string(&f).expect("a readable source file");
        let code = match text.find("#[cfg(test)]\nmod tests {") {
            Some(at) => &text[..at],
            None => &text,
        };
        for (n, line) in code.lines().enumerate() {
            if line.trim_start().starts_with("//") {
                continue;
            }
            let tokio_use = line.contains("tokio") && !line.contains("tokio::sync::mpsc");
            if tokio_use || IMPURE.iter().any(|w| line.contains(w)) {
                found.push(format!("{}:{}: {}", f.display(), n + 1, line.trim()));
            }
        }
    }
    assert!(found.is_empty(), "I/O in the engine:\n{}", found.join("\n"));
}
