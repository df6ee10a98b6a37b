//! Key bindings: the registry of every console action (one source of truth
//! for handlers, the hint bar and the help screen), the `keymaps/*.toml`
//! format, and lookup of key sequences.
//!
//! It decides nothing about what an action does; `app` does. It refuses
//! keymaps that would make a dangerous action one slip away: conflicts,
//! prefixes that shadow a binding, a dangerous action on a bare navigation
//! key. A broken keymap is reported and the bundled default is used.

use std::collections::BTreeMap;
use std::path::Path;

use ratatui::crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use serde::Deserialize;

pub use crate::tui::commands::{ACTIONS, ActionInfo, UiAction, action_info};
use crate::tui::panes::Pane;
use crate::units::files::{Bundled, FileError};
use crate::units::toml_error_line;

pub const BUNDLED: &[(&str, &str)] = &[("default", include_str!("../../keymaps/default.toml"))];

/// Where a binding applies: everywhere, or in one pane (which wins over
/// global there). A pane's table is named by its entry in `panes::PANES`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Scope {
    Global,
    Pane(Pane),
}

impl Scope {
    /// Global, then every pane in focus order.
    pub fn all() -> impl Iterator<Item = Scope> {
        std::iter::once(Scope::Global).chain(Pane::ALL.into_iter().map(Scope::Pane))
    }

    pub fn table(self) -> &'static str {
        match self {
            Scope::Global => "global",
            Scope::Pane(p) => p.spec().table,
        }
    }
}

/// One key press, normalised: `shift` is folded into the character
/// (`shift-g` is `G`), and only ctrl and alt are kept as modifiers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Key {
    pub code: KeyName,
    pub ctrl: bool,
    pub alt: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum KeyName {
    Char(char),
    Enter,
    Esc,
    Tab,
    BackTab,
    Backspace,
    Delete,
    Up,
    Down,
    Left,
    Right,
    PageUp,
    PageDown,
    Home,
    End,
    F(u8),
}

const NAMED: &[(&str, KeyName)] = &[
    ("enter", KeyName::Enter),
    ("esc", KeyName::Esc),
    ("tab", KeyName::Tab),
    ("backtab", KeyName::BackTab),
    ("backspace", KeyName::Backspace),
    ("delete", KeyName::Delete),
    ("up", KeyName::Up),
    ("down", KeyName::Down),
    ("left", KeyName::Left),
    ("right", KeyName::Right),
    ("pageup", KeyName::PageUp),
    ("pagedown", KeyName::PageDown),
    ("home", KeyName::Home),
    ("end", KeyName::End),
    ("space", KeyName::Char(' ')),
];

impl Key {
    pub fn from_event(k: &KeyEvent) -> Option<Key> {
        let code = match k.code {
            KeyCode::Char(c) => KeyName::Char(c),
            KeyCode::Enter => KeyName::Enter,
            KeyCode::Esc => KeyName::Esc,
            KeyCode::Tab if k.modifiers.contains(KeyModifiers::SHIFT) => KeyName::BackTab,
            KeyCode::Tab => KeyName::Tab,
            KeyCode::BackTab => KeyName::BackTab,
            KeyCode::Backspace => KeyName::Backspace,
            KeyCode::Delete => KeyName::Delete,
            KeyCode::Up => KeyName::Up,
            KeyCode::Down => KeyName::Down,
            KeyCode::Left => KeyName::Left,
            KeyCode::Right => KeyName::Right,
            KeyCode::PageUp => KeyName::PageUp,
            KeyCode::PageDown => KeyName::PageDown,
            KeyCode::Home => KeyName::Home,
            KeyCode::End => KeyName::End,
            KeyCode::F(n) => KeyName::F(n),
            _ => return None,
        };
        Some(Key {
            code,
            ctrl: k.modifiers.contains(KeyModifiers::CONTROL),
            alt: k.modifiers.contains(KeyModifiers::ALT),
        })
    }

    /// Parses one key: `q`, `G`, `shift-g`, `ctrl-c`, `alt-x`, `enter`,
    /// `f5`, `space`.
    pub fn parse(s: &str) -> Result<Key, String> {
        let mut ctrl = false;
        let mut alt = false;
        let mut shift = false;
        let mut rest = s;
        loop {
            let lower = rest.to_ascii_lowercase();
            if rest.len() > 1 && lower.starts_with("ctrl-") {
                ctrl = true;
                rest = &rest[5..];
            } else if rest.len() > 1 && lower.starts_with("alt-") {
                alt = true;
                rest = &rest[4..];
            } else if rest.len() > 1 && lower.starts_with("shift-") {
                shift = true;
                rest = &rest[6..];
            } else {
                break;
            }
        }
        let lower = rest.to_ascii_lowercase();
        let mut chars = rest.chars();
        let code = match (chars.next(), chars.next()) {
            (Some(c), None) if !c.is_control() => {
                if shift {
                    KeyName::Char(c.to_uppercase().next().unwrap_or(c))
                } else {
                    KeyName::Char(c)
                }
            }
            _ => {
                if let Some((_, k)) = NAMED.iter().find(|(n, _)| *n == lower) {
                    if shift && *k == KeyName::Tab {
                        KeyName::BackTab
                    } else {
                        *k
                    }
                } else if let Some(n) = lower.strip_prefix('f').and_then(|n| n.parse::<u8>().ok())
                    && (1..=12).contains(&n)
                {
                    KeyName::F(n)
                } else {
                    return Err(format!(
                        "key {s:?}: expected a character or one of {}, f1-f12, with optional \
                         ctrl-, alt-, shift- prefixes",
                        NAMED.iter().map(|(n, _)| *n).collect::<Vec<_>>().join(", ")
                    ));
                }
            }
        };
        Ok(Key { code, ctrl, alt })
    }

    /// Keys that move around: a dangerous action is never bound to one
    /// of these without ctrl or alt.
    pub fn is_navigation(&self) -> bool {
        !self.ctrl
            && !self.alt
            && matches!(
                self.code,
                KeyName::Up
                    | KeyName::Down
                    | KeyName::Left
                    | KeyName::Right
                    | KeyName::PageUp
                    | KeyName::PageDown
                    | KeyName::Home
                    | KeyName::End
                    | KeyName::Tab
                    | KeyName::BackTab
                    | KeyName::Enter
                    | KeyName::Esc
                    | KeyName::Char(' ')
                    | KeyName::Char('j')
                    | KeyName::Char('k')
                    | KeyName::Char('h')
                    | KeyName::Char('l')
                    | KeyName::Char('g')
                    | KeyName::Char('G')
            )
    }
}

impl std::fmt::Display for Key {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.ctrl {
            f.write_str("ctrl-")?;
        }
        if self.alt {
            f.write_str("alt-")?;
        }
        match self.code {
            KeyName::Char(' ') => f.write_str("space"),
            KeyName::Char(c) => write!(f, "{c}"),
            KeyName::F(n) => write!(f, "f{n}"),
            other => {
                let n = NAMED
                    .iter()
                    .find(|(_, k)| *k == other)
                    .map(|(n, _)| *n)
                    .unwrap_or("?");
                f.write_str(n)
            }
        }
    }
}

/// A sequence of keys (`g g`).
pub type KeySeq = Vec<Key>;

pub fn parse_seq(s: &str) -> Result<KeySeq, String> {
    let parts: Vec<&str> = s.split_whitespace().collect();
    if parts.is_empty() {
        return Err("an empty key; use [] to unbind".into());
    }
    if parts.len() > 3 {
        return Err(format!("key {s:?}: sequences are at most 3 keys long"));
    }
    parts.iter().map(|p| Key::parse(p)).collect()
}

pub fn fmt_seq(seq: &[Key]) -> String {
    seq.iter()
        .map(|k| k.to_string())
        .collect::<Vec<_>>()
        .join(" ")
}

/// A loaded keymap.
#[derive(Debug, Clone)]
pub struct Keymap {
    pub name: String,
    /// (scope, action) -> key sequences.
    bindings: BTreeMap<(Scope, UiAction), Vec<KeySeq>>,
}

/// What a key press means, given what came before it.
#[derive(Debug, Clone, PartialEq)]
pub enum Lookup {
    Action(UiAction),
    /// The start of a longer sequence: wait for the next key.
    Prefix,
    None,
}

#[derive(Debug, Deserialize)]
struct KeymapFile {
    meta: KeymapMeta,
    #[serde(flatten)]
    tables: BTreeMap<String, toml::Value>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct KeymapMeta {
    name: String,
    #[serde(default)]
    extends: Option<String>,
}

impl Keymap {
    /// The bundled default. Never fails: it is checked by the tests.
    pub fn fallback() -> Keymap {
        let mut errs = Vec::new();
        parse(
            "default",
            BUNDLED[0].1,
            "keymaps/default.toml",
            None,
            &mut errs,
            0,
        )
        .unwrap_or(Keymap {
            name: "default".into(),
            bindings: BTreeMap::new(),
        })
    }

    /// The keys bound to `action` in `scope` (not counting global ones).
    pub fn keys(&self, scope: Scope, action: UiAction) -> &[KeySeq] {
        self.bindings
            .get(&(scope, action))
            .map(Vec::as_slice)
            .unwrap_or(&[])
    }

    /// The keys that trigger `action` in `scope`, pane bindings first,
    /// as text (`a`, `ctrl-c`).
    pub fn keys_text(&self, scope: Scope, action: UiAction) -> Vec<String> {
        let mut v: Vec<String> = self
            .keys(scope, action)
            .iter()
            .map(|s| fmt_seq(s))
            .collect();
        if scope != Scope::Global {
            v.extend(self.keys(Scope::Global, action).iter().map(|s| fmt_seq(s)));
        }
        v
    }

    /// Every binding, for the help screen: (scope, action, keys).
    pub fn all(&self) -> impl Iterator<Item = (Scope, UiAction, &[KeySeq])> {
        self.bindings
            .iter()
            .map(|((s, a), k)| (*s, *a, k.as_slice()))
    }

    /// What `keys` (the pending prefix plus the new key) mean in `scope`.
    /// The pane's bindings win over global ones.
    pub fn lookup(&self, scope: Scope, keys: &[Key]) -> Lookup {
        let mut prefix = false;
        for s in [scope, Scope::Global] {
            for ((sc, a), seqs) in &self.bindings {
                if *sc != s {
                    continue;
                }
                for seq in seqs {
                    if seq.as_slice() == keys {
                        return Lookup::Action(*a);
                    }
                    if seq.len() > keys.len() && seq.starts_with(keys) {
                        prefix = true;
                    }
                }
            }
            if scope == Scope::Global {
                break;
            }
        }
        if prefix { Lookup::Prefix } else { Lookup::None }
    }

    /// Removes every dangerous action (`--read-only`).
    pub fn strip_dangerous(&mut self) {
        self.bindings.retain(|(_, a), _| !action_info(*a).dangerous);
    }
}

/// Loads keymap `name`: the user's `DIR/keymaps/NAME.toml` when it exists,
/// else the bundled one. On any problem the bundled default comes back
/// and the problems are in `errors`.
pub fn load(name: &str, user_dir: Option<&Path>, errors: &mut Vec<FileError>) -> Keymap {
    let before = errors.len();
    let km = source(name, user_dir, errors)
        .and_then(|(text, file)| parse(name, &text, &file, user_dir, errors, 0));
    match km {
        Some(k) if errors.len() == before => k,
        _ => Keymap::fallback(),
    }
}

/// Keymap files: the bundled default and the config dir's `keymaps/`.
pub const KEYMAPS: Bundled = Bundled {
    kind: "keymap",
    folder: "keymaps",
    tag: "bundled",
    files: BUNDLED,
    missing: |b, name, _| {
        format!(
            "no such keymap; bundled: {}; or put {name}.toml in the config dir's keymaps/",
            b.bundled_names().join(", ")
        )
    },
};

/// The names of every keymap: bundled, then the user's.
pub fn names(user_dir: Option<&Path>) -> Vec<String> {
    KEYMAPS.names(KEYMAPS.user_folder(user_dir).as_deref())
}

fn source(
    name: &str,
    user_dir: Option<&Path>,
    errors: &mut Vec<FileError>,
) -> Option<(String, String)> {
    KEYMAPS
        .find(name, KEYMAPS.user_folder(user_dir).as_deref(), errors)
        .map(|s| (s.text, s.file))
}

fn parse(
    _name: &str,
    text: &str,
    file: &str,
    user_dir: Option<&Path>,
    errors: &mut Vec<FileError>,
    depth: usize,
) -> Option<Keymap> {
    let err = |line: Option<usize>, message: String| FileError {
        file: file.to_string(),
        line,
        message,
    };
    let kf: KeymapFile = match toml::from_str(text) {
        Ok(k) => k,
        Err(e) => {
            let (line, message) = toml_error_line(&e, text);
            errors.push(err(line, message));
            return None;
        }
    };
    let mut km = match kf.meta.extends.as_deref() {
        Some(p) if depth < 4 => {
            let (pt, pf) = source(p, user_dir, errors)?;
            parse(p, &pt, &pf, user_dir, errors, depth + 1)?
        }
        Some(p) => {
            errors.push(err(
                crate::units::line_of(text, "extends"),
                format!("extends {p:?}: chains of more than 4 keymaps are refused (a loop?)"),
            ));
            return None;
        }
        None => Keymap {
            name: String::new(),
            bindings: BTreeMap::new(),
        },
    };
    km.name = kf.meta.name.clone();
    let before = errors.len();
    for (table, value) in &kf.tables {
        let Some(scope) = Scope::all().find(|s| s.table() == table) else {
            errors.push(err(
                crate::units::line_of(text, &format!("[{table}]")),
                format!(
                    "[{table}]: unknown table; expected [meta], {}",
                    Scope::all()
                        .map(|s| format!("[{}]", s.table()))
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            ));
            continue;
        };
        let Some(entries) = value.as_table() else {
            errors.push(err(None, format!("{table}: expected a table")));
            continue;
        };
        for (action_name, keys) in entries {
            let line = crate::tui::theme::key_line(text, table, action_name);
            let Some(info) = ACTIONS.iter().find(|i| i.name == action_name) else {
                errors.push(err(
                    line,
                    format!(
                        "[{table}] {action_name}: unknown action; known: {}",
                        ACTIONS
                            .iter()
                            .map(|i| i.name)
                            .collect::<Vec<_>>()
                            .join(", ")
                    ),
                ));
                continue;
            };
            let Some(list) = keys.as_array() else {
                errors.push(err(
                    line,
                    format!("[{table}] {action_name}: expected a list of keys such as [\"a\", \"ctrl-x\"]"),
                ));
                continue;
            };
            let mut seqs = Vec::new();
            for k in list {
                let Some(ks) = k.as_str() else {
                    errors.push(err(
                        line,
                        format!("[{table}] {action_name}: keys are strings"),
                    ));
                    continue;
                };
                match parse_seq(ks) {
                    Ok(seq) => {
                        if info.dangerous && seq.len() == 1 && seq[0].is_navigation() {
                            errors.push(err(
                                line,
                                format!(
                                    "[{table}] {action_name}: {ks:?} is a navigation key; a \
                                     dangerous action needs a key of its own"
                                ),
                            ));
                            continue;
                        }
                        seqs.push(seq);
                    }
                    Err(e) => errors.push(err(line, format!("[{table}] {action_name}: {e}"))),
                }
            }
            km.bindings.insert((scope, info.action), seqs);
        }
    }
    if errors.len() == before && depth == 0 {
        check_conflicts(&km, file, text, errors);
    }
    km.bindings.retain(|_, v| !v.is_empty());
    Some(km)
}

/// Two actions on one key (or one key the prefix of another) where both
/// apply: the same scope, or a pane and global.
fn check_conflicts(km: &Keymap, file: &str, text: &str, errors: &mut Vec<FileError>) {
    let flat: Vec<(Scope, UiAction, &KeySeq)> = km
        .bindings
        .iter()
        .flat_map(|((s, a), seqs)| seqs.iter().map(move |q| (*s, *a, q)))
        .collect();
    for (i, (s1, a1, q1)) in flat.iter().enumerate() {
        for (s2, a2, q2) in flat.iter().skip(i + 1) {
            if a1 == a2 {
                continue;
            }
            let same_scope = s1 == s2;
            let overlap = same_scope;
            // A pane may override a global key on purpose; that is not a
            // conflict, but a prefix clash across them is.
            let clash = if overlap {
                q1 == q2 || q1.starts_with(q2) || q2.starts_with(q1)
            } else if *s1 == Scope::Global || *s2 == Scope::Global {
                q1 != q2 && (q1.starts_with(q2) || q2.starts_with(q1))
            } else {
                false
            };
            if clash {
                let n1 = action_info(*a1).name;
                let n2 = action_info(*a2).name;
                errors.push(FileError {
                    file: file.to_string(),
                    line: crate::tui::theme::key_line(text, s2.table(), n2),
                    message: format!(
                        "{:?} ({}.{n1}) and {:?} ({}.{n2}) conflict: one key would do two things",
                        fmt_seq(q1),
                        s1.table(),
                        fmt_seq(q2),
                        s2.table()
                    ),
                });
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn k(s: &str) -> Key {
        Key::parse(s).unwrap()
    }

    #[test]
    fn the_bundled_keymap_loads_clean_and_binds_every_action() {
        let mut errs = Vec::new();
        let km = load("default", None, &mut errs);
        assert!(errs.is_empty(), "{errs:?}");
        for i in ACTIONS.iter().filter(|i| i.palette.is_empty()) {
            assert!(
                Scope::all().any(|s| !km.keys(s, i.action).is_empty()),
                "{} is not bound",
                i.name
            );
        }
    }

    #[test]
    fn keys_parse_and_normalise() {
        assert_eq!(k("shift-g"), k("G"));
        assert_eq!(k("shift-tab"), k("backtab"));
        assert!(k("ctrl-c").ctrl);
        assert_eq!(k("space").code, KeyName::Char(' '));
        assert_eq!(k("f5").code, KeyName::F(5));
        assert_eq!(k("ctrl-c").to_string(), "ctrl-c");
        assert!(Key::parse("hyper-x").unwrap_err().contains("expected"));
        assert_eq!(parse_seq("g g").unwrap().len(), 2);
        let ev = KeyEvent::new(KeyCode::Char('G'), KeyModifiers::SHIFT);
        assert_eq!(Key::from_event(&ev), Some(k("G")));
    }

    #[test]
    fn lookup_prefers_the_pane_and_waits_for_sequences() {
        let km = Keymap::fallback();
        assert_eq!(
            km.lookup(Scope::Pane(Pane::Alerts), &[k("q")]),
            Lookup::Action(UiAction::Quit)
        );
        assert_eq!(
            km.lookup(Scope::Pane(Pane::Alerts), &[k("g")]),
            Lookup::Prefix
        );
        assert_eq!(
            km.lookup(Scope::Pane(Pane::Alerts), &[k("g"), k("g")]),
            Lookup::Action(UiAction::Top)
        );
        assert_eq!(
            km.lookup(Scope::Pane(Pane::Alerts), &[k("F12")]),
            Lookup::None
        );
    }

    fn user(text: &str) -> (Keymap, Vec<FileError>) {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("keymaps")).unwrap();
        std::fs::write(dir.path().join("keymaps/mine.toml"), text).unwrap();
        let mut errs = Vec::new();
        let km = load("mine", Some(dir.path()), &mut errs);
        (km, errs)
    }

    #[test]
    fn a_remap_extends_the_default() {
        let (km, errs) = user(
            "[meta]\nname = \"mine\"\nextends = \"default\"\n[approvals]\napprove = [\"ctrl-y\"]\n[global]\nzoom = []\n",
        );
        assert!(errs.is_empty(), "{errs:?}");
        assert_eq!(km.name, "mine");
        assert_eq!(
            km.lookup(Scope::Pane(Pane::Approvals), &[k("ctrl-y")]),
            Lookup::Action(UiAction::Approve)
        );
        assert_eq!(
            km.lookup(Scope::Pane(Pane::Alerts), &[k("z")]),
            Lookup::None
        );
    }

    #[test]
    fn broken_keymaps_are_reported_and_fall_back_to_the_default() {
        let (km, errs) = user(
            "[meta]\nname = \"mine\"\nextends = \"default\"\n[global]\nexplode = [\"x\"]\napprove = [\"j\"]\nhelp = [\"hyper-q\"]\nzoom = [\"q\"]\n",
        );
        let text = errs
            .iter()
            .map(|e| e.to_string())
            .collect::<Vec<_>>()
            .join("\n");
        assert!(
            text.contains("mine.toml:5: [global] explode: unknown action"),
            "{text}"
        );
        assert!(
            text.contains("mine.toml:6: [global] approve: \"j\" is a navigation key"),
            "{text}"
        );
        assert!(
            text.contains("mine.toml:7: [global] help: key \"hyper-q\""),
            "{text}"
        );
        // Fell back: the default's bindings are there.
        assert_eq!(km.name, "default");
        assert_eq!(
            km.lookup(Scope::Global, &[k("z")]),
            Lookup::Action(UiAction::Zoom)
        );
    }

    #[test]
    fn conflicts_and_shadowing_prefixes_are_refused() {
        let (_, errs) =
            user("[meta]\nname = \"mine\"\nextends = \"default\"\n[global]\nzoom = [\"q\"]\n");
        assert!(
            errs.iter().any(|e| e.message.contains("conflict")),
            "{errs:?}"
        );
        let (_, errs) = user(
            "[meta]\nname = \"mine\"\nextends = \"default\"\n[global]\nnext_theme = [\"g\"]\n",
        );
        assert!(
            errs.iter().any(|e| e.message.contains("\"g g\"")),
            "{errs:?}"
        );
    }

    #[test]
    fn read_only_strips_every_dangerous_action() {
        let mut km = Keymap::fallback();
        km.strip_dangerous();
        for (_, a, _) in km.all() {
            assert!(!action_info(a).dangerous, "{a:?}");
        }
        assert_eq!(
            km.lookup(Scope::Pane(Pane::Approvals), &[k("a")]),
            Lookup::None
        );
    }
}
