//! Property tests with generated input over every parser of outside input:
//! config, scenario, runbook, keymap and theme files, the Alertmanager
//! webhook and the ingest API. Inputs are random bytes, mutations of the
//! real files (bundled runbooks, keymaps, themes, the scenarios, the
//! Prometheus/Alertmanager fixtures), deep nesting, huge numbers and
//! invalid UTF-8. The property: no panic, and an error is a value that says
//! something.
//!
//! `cargo test --test fuzz_parsers` runs a bounded number of cases per
//! parser (a few seconds); `VIGIL_FUZZ_CASES=N` runs N per parser and
//! `VIGIL_FUZZ_SEED=S` changes the seed. A failing input is written to
//! `target/fuzz-failures/` and named in the failure.

use std::collections::BTreeMap;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::{Path, PathBuf};

use vigil::config::Config;
use vigil::runbook::{Catalog, parse_spec};
use vigil::sim::scenario::{Scenario, replay_file};

/// xorshift64*: small, seeded, good enough to drive mutations.
struct Rng(u64);

impl Rng {
    fn new(seed: u64) -> Rng {
        Rng(seed.max(1))
    }
    fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: usize) -> usize {
        if n == 0 {
            0
        } else {
            (self.next() % n as u64) as usize
        }
    }
    fn chance(&mut self, one_in: usize) -> bool {
        self.below(one_in) == 0
    }
    fn pick<'a, T>(&mut self, v: &'a [T]) -> &'a T {
        &v[self.below(v.len())]
    }
}

fn cases() -> usize {
    std::env::var("VIGIL_FUZZ_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(150)
}

fn seed() -> u64 {
    std::env::var("VIGIL_FUZZ_SEED")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(0x5eed_1e55_f00d)
}

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// Every file with extension `ext` directly in each of `dirs` (missing
/// directories are skipped).
fn corpus(dirs: &[PathBuf], ext: &str) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    for d in dirs {
        let Ok(rd) = std::fs::read_dir(d) else {
            continue;
        };
        let mut files: Vec<PathBuf> = rd
            .flatten()
            .map(|e| e.path())
            .filter(|p| p.is_file() && p.extension().is_some_and(|x| x == ext))
            .collect();
        files.sort();
        for f in files {
            out.push(std::fs::read(&f).unwrap());
        }
    }
    assert!(!out.is_empty(), "no *.{ext} in {dirs:?}");
    out
}

/// Tokens that tend to find edges: huge and odd numbers, absurd durations,
/// structure, invalid UTF-8, control characters.
const TOKENS: &[&[u8]] = &[
    b"99999999999999999999999999999",
    b"-9223372036854775808",
    b"18446744073709551616",
    b"1e309",
    b"-1e309",
    b"nan",
    b"inf",
    b"-0.0",
    b"\"10000000y\"",
    b"\"99999999999999999999999d\"",
    b"\"0s\"",
    b"\"-1s\"",
    b"\"1ns\"",
    b"\"4294967296/1s\"",
    b"\"0/0s\"",
    b"\"1/0s\"",
    b"\"* * * * *\"",
    b"\"0 0 31 2 *\"",
    b"\"(a+)+$\"",
    b"\"[\"",
    b"\"\\u0000\"",
    b"\"\\uD800\"",
    b"[[",
    b"]]",
    b"{",
    b"}",
    b"[",
    b"]",
    b"\n[x]\n",
    b"\n[[hosts]]\nname = \"h\"\n",
    b" = ",
    b"\"\"\"",
    b"'''",
    b"\xff\xfe",
    b"\xc3\x28",
    b"\xe2\x82",
    b"\xf0\x9f\x92",
    b"\x00",
    b"\r\n",
    b"\t",
    b"\\",
    b"\"",
    b"null",
    b"true",
    b"{}",
    b"[]",
    b"\"status\": \"firing\"",
    b"\"value\": 1e308",
];

/// One random mutation of `input`, sometimes spliced with another file.
fn mutate(rng: &mut Rng, input: &[u8], others: &[Vec<u8>]) -> Vec<u8> {
    let mut v = input.to_vec();
    let rounds = 1 + rng.below(8);
    for _ in 0..rounds {
        let len = v.len();
        match rng.below(9) {
            0 if len > 0 => {
                let i = rng.below(len);
                v[i] ^= 1 << rng.below(8);
            }
            1 => {
                let i = rng.below(len + 1);
                v.insert(i, rng.next() as u8);
            }
            2 if len > 0 => {
                let a = rng.below(len);
                let b = (a + rng.below(64)).min(len);
                v.drain(a..b);
            }
            3 if len > 0 => {
                let a = rng.below(len);
                let b = (a + rng.below(128)).min(len);
                let chunk = v[a..b].to_vec();
                let at = rng.below(len + 1);
                v.splice(at..at, chunk);
            }
            4 | 5 => {
                let t = rng.pick(TOKENS);
                let at = rng.below(len + 1);
                v.splice(at..at, t.iter().copied());
            }
            6 if len > 0 => {
                // replace a number or a quoted value with a token
                let at = rng.below(len);
                let end = v[at..]
                    .iter()
                    .position(|b| matches!(b, b'\n' | b',' | b'}' | b']'))
                    .map(|p| at + p)
                    .unwrap_or(len);
                let t = rng.pick(TOKENS);
                v.splice(at..end, t.iter().copied());
            }
            7 if !others.is_empty() => {
                let o = rng.pick(others);
                let a = rng.below(o.len() + 1);
                let b = (a + rng.below(256)).min(o.len());
                let at = rng.below(len + 1);
                v.splice(at..at, o[a..b].iter().copied());
            }
            _ => {
                let keep = rng.below(len + 1);
                v.truncate(keep);
            }
        }
    }
    v
}

fn random_bytes(rng: &mut Rng) -> Vec<u8> {
    let n = rng.below(512);
    (0..n)
        .map(|_| {
            if rng.chance(3) {
                // mostly printable, so the parsers get past the first byte
                let alphabet = b" =[]{}\"'.,:\n#abcdefghijklmnopqrstuvwxyz0123456789_-";
                alphabet[rng.below(alphabet.len())]
            } else {
                rng.next() as u8
            }
        })
        .collect()
}

/// Deeply nested structures in TOML and JSON, and huge literals.
fn nested(rng: &mut Rng, json: bool) -> Vec<u8> {
    let depth = 1 + rng.below(20_000);
    let mut s = String::new();
    match (json, rng.below(3)) {
        (true, 0) => {
            s.push_str(&"[".repeat(depth));
            s.push_str(&"]".repeat(depth));
        }
        (true, 1) => {
            for _ in 0..depth {
                s.push_str("{\"a\":");
            }
            s.push('1');
            s.push_str(&"}".repeat(depth));
        }
        (true, _) => {
            s.push_str("{\"alerts\": [{\"labels\": {\"a\": \"");
            s.push_str(&"x".repeat(depth * 10));
            s.push_str("\"}, \"status\": \"firing\"}], \"value\": ");
            s.push_str(&"9".repeat(depth));
            s.push('}');
        }
        (false, 0) => {
            s.push_str("a = ");
            s.push_str(&"[".repeat(depth));
            s.push_str(&"]".repeat(depth));
        }
        (false, 1) => {
            s.push_str("a = ");
            for _ in 0..depth {
                s.push_str("{ b = ");
            }
            s.push('1');
            s.push_str(&" }".repeat(depth));
        }
        (false, _) => {
            s.push_str("[settings]\nmax_parallel_runs = ");
            s.push_str(&"9".repeat(depth));
            s.push_str("\n[");
            s.push_str(&"a.".repeat(depth.min(5000)));
            s.push_str("b]\n");
        }
    }
    s.into_bytes()
}

/// Odd values for a structure-aware mutation: kept valid TOML / JSON, so
/// the validators behind the syntax are reached.
fn odd_string(rng: &mut Rng) -> String {
    if rng.chance(4) {
        // durations past any sane range, but inside TimeDelta
        return rng
            .pick(&["10000000y", "200000y", "290000000y", "106751991167d"])
            .to_string();
    }
    rng.pick(&[
        "10000000y",
        "99999999999999999999999d",
        "0s",
        "-1s",
        "1ns",
        "0",
        "",
        "4294967296/1s",
        "0/1m",
        "3/0s",
        "1001/1h",
        "soon",
        "* * * * *",
        "0 0 31 2 *",
        "(a+)+$",
        "[",
        "{target}",
        "{nope}",
        "\u{0}",
        "../../etc/passwd",
        "http://",
        "firing",
        "resolved",
        "auto",
        "manual",
        "ssh",
        "http",
        "2026-02-30T00:00:00Z",
        "+262143-12-31T23:59:59Z",
    ])
    .to_string()
}

fn odd_toml(rng: &mut Rng) -> toml::Value {
    match rng.below(6) {
        0 => toml::Value::Integer(*rng.pick(&[0, -1, 1, i64::MAX, i64::MIN, 65536, 4_294_967_296])),
        1 => toml::Value::Float(*rng.pick(&[f64::NAN, f64::INFINITY, -0.0, 1e308, 1.5, -1.0])),
        2 => toml::Value::Boolean(rng.chance(2)),
        3 => toml::Value::Array(vec![toml::Value::String(odd_string(rng)); rng.below(3)]),
        _ => toml::Value::String(odd_string(rng)),
    }
}

fn odd_json(rng: &mut Rng) -> serde_json::Value {
    use serde_json::json;
    match rng.below(6) {
        0 => json!(*rng.pick(&[0i64, -1, i64::MAX, i64::MIN])),
        1 => json!(*rng.pick(&[1e308, -1e308, 0.5, u64::MAX as f64])),
        2 => json!(null),
        3 => json!([odd_string(rng)]),
        4 => json!({ odd_string(rng): odd_string(rng) }),
        _ => json!(odd_string(rng)),
    }
}

/// Replaces, removes or duplicates a random leaf of a parsed TOML file.
fn walk_toml(rng: &mut Rng, v: &mut toml::Value) {
    match v {
        toml::Value::Table(t) if !t.is_empty() && !rng.chance(6) => {
            let keys: Vec<String> = t.keys().cloned().collect();
            let k = rng.pick(&keys).clone();
            if rng.chance(10) {
                t.remove(&k);
            } else if let Some(child) = t.get_mut(&k) {
                walk_toml(rng, child);
            }
        }
        toml::Value::Array(a) if !a.is_empty() && !rng.chance(6) => {
            let i = rng.below(a.len());
            if rng.chance(10) {
                let dup = a[i].clone();
                a.push(dup);
            } else {
                walk_toml(rng, &mut a[i]);
            }
        }
        _ => *v = odd_toml(rng),
    }
}

fn walk_json(rng: &mut Rng, v: &mut serde_json::Value) {
    match v {
        serde_json::Value::Object(o) if !o.is_empty() && !rng.chance(6) => {
            let keys: Vec<String> = o.keys().cloned().collect();
            let k = rng.pick(&keys).clone();
            if rng.chance(10) {
                o.remove(&k);
            } else if let Some(child) = o.get_mut(&k) {
                walk_json(rng, child);
            }
        }
        serde_json::Value::Array(a) if !a.is_empty() && !rng.chance(6) => {
            let i = rng.below(a.len());
            walk_json(rng, &mut a[i]);
        }
        _ => *v = odd_json(rng),
    }
}

/// The leaves that carry a number or a duration (`"30s"`, `"3/10m"`):
/// what the range checks are about. Each as a path of keys and indexes.
fn number_leaves(v: &toml::Value, path: &mut Vec<String>, out: &mut Vec<Vec<String>>) {
    match v {
        toml::Value::Table(t) => {
            for (k, c) in t {
                path.push(k.clone());
                number_leaves(c, path, out);
                path.pop();
            }
        }
        toml::Value::Array(a) => {
            for (i, c) in a.iter().enumerate() {
                path.push(i.to_string());
                number_leaves(c, path, out);
                path.pop();
            }
        }
        toml::Value::Integer(_) | toml::Value::Float(_) => out.push(path.clone()),
        toml::Value::String(s)
            if vigil::units::parse_duration(s).is_ok() || vigil::units::Rate::parse(s).is_ok() =>
        {
            out.push(path.clone())
        }
        _ => {}
    }
}

fn at_path<'a>(v: &'a mut toml::Value, path: &[String]) -> Option<&'a mut toml::Value> {
    let Some((first, rest)) = path.split_first() else {
        return Some(v);
    };
    let child = match v {
        toml::Value::Table(t) => t.get_mut(first)?,
        toml::Value::Array(a) => a.get_mut(first.parse::<usize>().ok()?)?,
        _ => return None,
    };
    at_path(child, rest)
}

/// Replaces a number or a duration somewhere in the file with an odd one.
fn mutate_number(rng: &mut Rng, v: &mut toml::Value) {
    let mut leaves = Vec::new();
    number_leaves(v, &mut Vec::new(), &mut leaves);
    if leaves.is_empty() {
        return walk_toml(rng, v);
    }
    let path = rng.pick(&leaves).clone();
    if let Some(leaf) = at_path(v, &path) {
        *leaf = match leaf {
            toml::Value::String(_) if rng.chance(2) => {
                let n = rng.pick(&["0", "1", "4294967296", "99999", "1001"]);
                let unit = rng.pick(&["y", "d", "h", "m", "s", "ms", "ns", ""]);
                toml::Value::String(if rng.chance(3) {
                    format!("{n}/{}{unit}", rng.below(1_000_000))
                } else {
                    format!("{n}{unit}")
                })
            }
            _ => odd_toml(rng),
        };
    }
}

/// A structure-aware mutation: parse, change one to three values, print.
/// Falls back to a byte mutation when the base does not parse.
fn structured(rng: &mut Rng, base: &[u8], json: bool) -> Option<Vec<u8>> {
    let text = std::str::from_utf8(base).ok()?;
    let n = 1 + rng.below(3);
    if json {
        let mut v: serde_json::Value = serde_json::from_str(text).ok()?;
        for _ in 0..n {
            walk_json(rng, &mut v);
        }
        serde_json::to_vec(&v).ok()
    } else {
        let mut v = toml::Value::Table(toml::from_str::<toml::Table>(text).ok()?);
        for _ in 0..n {
            if rng.chance(2) {
                mutate_number(rng, &mut v);
            } else {
                walk_toml(rng, &mut v);
            }
        }
        // NaN and infinities print as nan / inf, which TOML accepts
        toml::to_string(&v).ok().map(String::into_bytes)
    }
}

/// The next input: a mutated corpus file most of the time (by bytes or by
/// structure), else random bytes or deep nesting.
fn input(rng: &mut Rng, corpus: &[Vec<u8>], json: bool) -> Vec<u8> {
    match rng.below(20) {
        0 => random_bytes(rng),
        1 => nested(rng, json),
        2 => rng.pick(corpus).clone(),
        3..=11 => {
            let base = rng.pick(corpus).clone();
            structured(rng, &base, json).unwrap_or_else(|| mutate(rng, &base, corpus))
        }
        _ => {
            let base = rng.pick(corpus).clone();
            mutate(rng, &base, corpus)
        }
    }
}

/// Runs `check` on `cases()` generated inputs in a thread with the main
/// thread's stack size (8 MiB); every panic is collected and the inputs
/// are saved.
fn fuzz(name: &str, corpus: Vec<Vec<u8>>, json: bool, check: fn(&[u8]) -> Result<(), String>) {
    let n = cases();
    let seed = seed()
        ^ name
            .bytes()
            .fold(0u64, |h, b| h.wrapping_mul(31).wrapping_add(b as u64));
    let name_owned = name.to_string();
    let handle = std::thread::Builder::new()
        .name(format!("fuzz-{name}"))
        .stack_size(8 << 20)
        .spawn(move || {
            let mut rng = Rng::new(seed);
            let mut failures = Vec::new();
            let mut errors = 0usize;
            for i in 0..n {
                let data = input(&mut rng, &corpus, json);
                match catch_unwind(AssertUnwindSafe(|| check(&data))) {
                    Ok(Ok(())) => {}
                    Ok(Err(msg)) => {
                        errors += 1;
                        if msg.trim().is_empty() {
                            failures.push((i, data, "an empty error message".to_string()));
                        }
                    }
                    Err(p) => {
                        let what = p
                            .downcast_ref::<String>()
                            .cloned()
                            .or_else(|| p.downcast_ref::<&str>().map(|s| s.to_string()))
                            .unwrap_or_default();
                        failures.push((i, data, format!("panic: {what}")));
                    }
                }
            }
            (failures, errors)
        })
        .unwrap();
    let (failures, errors) = handle.join().expect("the fuzz thread itself failed");
    eprintln!(
        "fuzz {name_owned}: {n} cases, {errors} refused with an error, {} failures",
        failures.len()
    );
    if !failures.is_empty() {
        let dir = root().join("target").join("fuzz-failures");
        let _ = std::fs::create_dir_all(&dir);
        let mut report = String::new();
        for (i, data, what) in failures.iter().take(20) {
            let p = dir.join(format!("{name_owned}-{i}.bin"));
            let _ = std::fs::write(&p, data);
            report.push_str(&format!("  case {i}: {what} (input in {})\n", p.display()));
        }
        panic!("{name_owned}: {} failing inputs:\n{report}", failures.len());
    }
}

fn text(data: &[u8]) -> std::borrow::Cow<'_, str> {
    String::from_utf8_lossy(data)
}

/// A file of `data` in a private temp dir, for the paths that read files
/// (invalid UTF-8 included).
fn with_file<T>(rel: &str, data: &[u8], f: impl FnOnce(&Path, &Path) -> T) -> T {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join(rel);
    std::fs::create_dir_all(p.parent().unwrap()).unwrap();
    std::fs::write(&p, data).unwrap();
    f(dir.path(), &p)
}

fn check_config(data: &[u8]) -> Result<(), String> {
    if data.len().is_multiple_of(7) {
        // the file path: invalid UTF-8 reaches read_to_string
        return with_file("config.toml", data, |_, p| {
            Config::load(p).map(|_| ()).map_err(|e| e.to_string())
        });
    }
    let t = text(data);
    let c = Config::parse("c.toml", &t).map_err(|e| e.to_string())?;
    c.build("c.toml", &t, false, Some("sim".into()))
        .map(|_| ())
        .map_err(|es| {
            es.iter()
                .map(|e| e.to_string())
                .collect::<Vec<_>>()
                .join("\n")
        })
}

fn check_scenario(data: &[u8]) -> Result<(), String> {
    if data.len().is_multiple_of(7) {
        return with_file("s.toml", data, |_, p| match replay_file(p) {
            Ok(r) => {
                let _ = r.unmet();
                Ok(())
            }
            Err(e) => Err(e.to_string()),
        });
    }
    let t = text(data);
    let s = Scenario::parse("s.toml", &t).map_err(|e| e.to_string())?;
    // run what replays in reasonable time (the replayer is not the subject)
    if s.end - s.start <= chrono::TimeDelta::days(2) {
        let r = s.run();
        let _ = r.unmet();
    }
    Ok(())
}

fn check_runbook(data: &[u8]) -> Result<(), String> {
    let t = text(data).into_owned();
    parse_spec("r.toml", &t).map_err(|e| e.to_string())?;
    let cat =
        Catalog::from_sources(&[("r.toml".to_string(), t)], &BTreeMap::new()).map_err(|es| {
            es.iter()
                .map(|e| e.to_string())
                .collect::<Vec<_>>()
                .join("\n")
        })?;
    for rb in &cat.runbooks {
        let labels: vigil::model::Labels = [
            ("alertname".to_string(), "X".to_string()),
            ("host".to_string(), "web-01".to_string()),
            ("service".to_string(), "nginx; rm -rf /".to_string()),
        ]
        .into();
        let _ = rb.matches(&labels);
        if let Ok(params) = rb.resolve_params(&labels, &labels, &BTreeMap::new()) {
            let _ = rb.plan("web-01", &params);
        }
    }
    Ok(())
}

fn check_keymap(data: &[u8]) -> Result<(), String> {
    with_file("keymaps/fz.toml", data, |dir, _| {
        let mut errs = Vec::new();
        let km = vigil::tui::keymap::load("fz", Some(dir), &mut errs);
        let _ = km.all().count();
        if errs.is_empty() {
            Ok(())
        } else {
            Err(errs
                .iter()
                .map(|e| e.to_string())
                .collect::<Vec<_>>()
                .join("\n"))
        }
    })
}

fn check_theme(data: &[u8]) -> Result<(), String> {
    with_file("themes/fz.toml", data, |dir, _| {
        let mut errs = Vec::new();
        let th = vigil::tui::theme::load("fz", Some(dir), &mut errs);
        if let Some(t) = th {
            let _ = t.style("alert.critical");
        }
        if errs.is_empty() {
            Ok(())
        } else {
            Err(errs
                .iter()
                .map(|e| e.to_string())
                .collect::<Vec<_>>()
                .join("\n"))
        }
    })
}

fn bad(e: vigil::ingest::parse::BadInput) -> String {
    format!("{e:?}")
}

fn check_webhook(data: &[u8]) -> Result<(), String> {
    let p = vigil::ingest::parse::parse_webhook(data).map_err(bad)?;
    let _ = p.incoming("am");
    Ok(())
}

fn check_ingest(data: &[u8]) -> Result<(), String> {
    let plain = vigil::ingest::parse::parse_ingest(data).map(|v| v.len());
    let keyed = vigil::ingest::parse::parse_ingest_keyed(data).map(|v| {
        let n = v.len();
        v.into_iter().for_each(|m| drop(m.into_sample()));
        n
    });
    match (plain, keyed) {
        (Ok(_), Ok(_)) => Ok(()),
        (Err(e), _) | (_, Err(e)) => Err(bad(e)),
    }
}

fn dirs(rel: &[&str]) -> Vec<PathBuf> {
    rel.iter()
        .map(|r| {
            if r.starts_with('/') {
                PathBuf::from(r)
            } else {
                root().join(r)
            }
        })
        .collect()
}

/// Config files: the README's examples, the scenarios' `[config]` tables
/// as files of their own, and a few written here.
fn config_corpus() -> Vec<Vec<u8>> {
    let mut out: Vec<Vec<u8>> = Vec::new();
    let readme = std::fs::read_to_string(root().join("README.md")).unwrap();
    let mut rest = readme.as_str();
    while let Some(a) = rest.find("```toml\n") {
        let after = &rest[a + 8..];
        let Some(b) = after.find("```") else { break };
        out.push(after.as_bytes()[..b].to_vec());
        rest = &after[b..];
    }
    for s in corpus(&dirs(&["tests/scenarios"]), "toml") {
        let t = String::from_utf8_lossy(&s).into_owned();
        if let Ok(v) = toml::from_str::<toml::Table>(&t)
            && let Some(c) = v.get("config").and_then(|c| c.as_table())
        {
            out.push(toml::to_string(c).unwrap_or_default().into_bytes());
        }
    }
    out.push(
        b"[settings]\napproval_expiry = \"30m\"\nretry_backoff = \"30s\"\nblast_radius = 0.5\nmax_parallel_runs = 4\n\
[listener]\nrate_limit = 100\n[[sources]]\nname = \"am\"\nkind = \"alertmanager\"\nurl = \"http://127.0.0.1:9093\"\ninterval = \"15s\"\n\
[[escalation]]\nname = \"w\"\nkind = \"webhook\"\nurl = \"http://127.0.0.1:9/x\"\nmax_attempts = 3\nbackoff = \"1s\"\n\
[[hosts]]\nname = \"web-1\"\nexecutor = \"ssh\"\n[hosts.ssh]\nport = 22\nconnect_timeout = 10\ncontrol_persist = \"60s\"\n\
[[hosts]]\nname = \"api\"\nexecutor = \"http\"\n[hosts.http]\nurl = \"http://127.0.0.1:9/api\"\npoll_interval = \"1s\"\nmax_wait = \"10m\"\nretries = 2\n"
            .to_vec(),
    );
    out
}

#[test]
fn config_parser_never_panics() {
    fuzz("config", config_corpus(), false, check_config);
}

#[test]
fn scenario_parser_never_panics() {
    let c = corpus(
        &dirs(&[
            "tests/scenarios",
            "tests/scenarios/invalid",
            "tests/rca",
            "/work/shared/scenarios",
        ]),
        "toml",
    );
    fuzz("scenario", c, false, check_scenario);
}

#[test]
fn runbook_parser_never_panics() {
    fuzz(
        "runbook",
        corpus(&dirs(&["runbooks"]), "toml"),
        false,
        check_runbook,
    );
}

#[test]
fn keymap_parser_never_panics() {
    fuzz(
        "keymap",
        corpus(&dirs(&["keymaps"]), "toml"),
        false,
        check_keymap,
    );
}

#[test]
fn theme_parser_never_panics() {
    fuzz(
        "theme",
        corpus(&dirs(&["themes"]), "toml"),
        false,
        check_theme,
    );
}

#[test]
fn webhook_parser_never_panics() {
    let c = corpus(
        &dirs(&[
            "tests/fixtures/prometheus-stack",
            "/work/shared/fixtures/prometheus-stack",
        ]),
        "json",
    );
    fuzz("webhook", c, true, check_webhook);
}

#[test]
fn ingest_parser_never_panics() {
    let mut c = corpus(&dirs(&["tests/fixtures/prometheus-stack"]), "json");
    for s in [
        r#"{"name": "disk_used_percent", "value": 91.5, "tags": {"host": "web-01", "mountpoint": "/"}}"#,
        r#"[{"name": "a", "value": 1, "tags": {}}, {"name": "b", "value": -2.5e10, "tags": {"x": "y"}, "timestamp": "2026-01-01T00:00:00Z"}]"#,
        r#"{"name": "a", "value": 1, "tags": {"host": "h"}, "timestamp": 1767225600}"#,
    ] {
        c.push(s.as_bytes().to_vec());
    }
    fuzz("ingest", c, true, check_ingest);
}

#[test]
fn unit_parsers_never_panic() {
    let c: Vec<Vec<u8>> = [
        "30s",
        "1h30m",
        "3/10m",
        "250ms",
        "7d",
        "0",
        "1 h",
        "10000000y",
        "2/0s",
    ]
    .iter()
    .map(|s| s.as_bytes().to_vec())
    .collect();
    fuzz("units", c, false, |data| {
        let t = text(data);
        let _ = vigil::units::parse_duration(&t);
        let _ = vigil::units::parse_delta(&t);
        let _ = vigil::units::Rate::parse(&t);
        vigil::units::limits::APPROVAL_EXPIRY
            .parse_delta("k", &t)
            .map(|_| ())
    });
}
