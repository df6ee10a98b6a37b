//! One-line prompts (`:` and `/`): the text input, shell-style line
//! editing, the `:` history (kept in a private file in the data dir) and
//! tab completion of commands, action ids, runbooks, hosts and themes.

use std::io::Write;
use std::path::{Path, PathBuf};

use tui_textarea::TextArea;

/// Lines kept in the history file.
pub const HISTORY_KEEP: usize = 500;

/// A one-line text input.
pub fn input_line(placeholder: &str, text: &str) -> TextArea<'static> {
    let mut t = TextArea::new(vec![text.to_string()]);
    t.set_placeholder_text(placeholder.to_string());
    t.set_cursor_line_style(ratatui::style::Style::default());
    t.move_cursor(tui_textarea::CursorMove::End);
    t
}

/// The text of a one-line input.
pub fn text_of(t: &TextArea<'static>) -> String {
    t.lines().join(" ")
}

/// One key in a text input, with the shell's line editing where the
/// widget's own binding differs: Ctrl-U clears back to the line's start
/// (the widget would undo). Ctrl-W, Ctrl-K, Ctrl-A and Ctrl-E already
/// behave as in readline.
pub fn edit(t: &mut TextArea<'static>, ev: &ratatui::crossterm::event::KeyEvent) {
    use ratatui::crossterm::event::{KeyCode, KeyModifiers};
    if ev.code == KeyCode::Char('u') && ev.modifiers.contains(KeyModifiers::CONTROL) {
        t.delete_line_by_head();
    } else {
        t.input(*ev);
    }
}

/// The `:` history: oldest first, no two equal lines in a row.
#[derive(Debug, Default)]
pub struct History {
    pub lines: Vec<String>,
    /// Where it is kept (`DATA_DIR/console-history`), if anywhere.
    pub path: Option<PathBuf>,
    /// While browsing: the index shown, and what was typed before.
    pub at: Option<usize>,
    pub draft: String,
}

impl History {
    /// Reads the history file; a missing or unreadable one is empty.
    pub fn load(path: Option<PathBuf>) -> History {
        let lines = path
            .as_deref()
            .and_then(|p| std::fs::read_to_string(p).ok())
            .map(|t| {
                t.lines()
                    .filter(|l| !l.trim().is_empty())
                    .map(str::to_string)
                    .collect::<Vec<_>>()
            })
            .unwrap_or_default();
        let skip = lines.len().saturating_sub(HISTORY_KEEP);
        History {
            lines: lines.into_iter().skip(skip).collect(),
            path,
            at: None,
            draft: String::new(),
        }
    }

    /// Adds a line run from the palette and appends it to the file.
    pub fn push(&mut self, line: &str) -> Result<(), String> {
        self.at = None;
        let line = line.trim();
        if line.is_empty() || line.contains('\n') || self.lines.last().is_some_and(|l| l == line) {
            return Ok(());
        }
        self.lines.push(line.to_string());
        if self.lines.len() > HISTORY_KEEP {
            self.lines.remove(0);
        }
        match &self.path {
            Some(p) => append_private(p, line),
            None => Ok(()),
        }
    }

    /// Up (`older` true) or down through the history from `current`.
    pub fn browse(&mut self, older: bool, current: &str) -> Option<String> {
        if self.lines.is_empty() {
            return None;
        }
        let next = match (self.at, older) {
            (None, true) => {
                self.draft = current.to_string();
                Some(self.lines.len() - 1)
            }
            (None, false) => return None,
            (Some(0), true) => Some(0),
            (Some(i), true) => Some(i - 1),
            (Some(i), false) if i + 1 < self.lines.len() => Some(i + 1),
            (Some(_), false) => None,
        };
        self.at = next;
        Some(match next {
            Some(i) => self.lines[i].clone(),
            None => std::mem::take(&mut self.draft),
        })
    }
}

/// Appends a line to a private (0600) file, creating it if needed.
fn append_private(p: &Path, line: &str) -> Result<(), String> {
    if let Some(dir) = p.parent().filter(|d| !d.exists()) {
        crate::private::private_dir(dir)?;
    }
    crate::private::private_file(p)?;
    let mut f = crate::private::private_file_options()
        .append(true)
        .open(p)
        .map_err(|e| format!("cannot open {}: {e}", p.display()))?;
    writeln!(f, "{line}").map_err(|e| format!("cannot write {}: {e}", p.display()))
}

/// Completes the last word of `line` from `candidates(word_index, words)`:
/// a single match is completed with a space; several are completed to
/// their common prefix and listed.
pub fn complete(
    line: &str,
    candidates: impl Fn(usize, &[&str]) -> Vec<String>,
) -> (String, Vec<String>) {
    let ends_in_space = line.is_empty() || line.ends_with(' ');
    let words: Vec<&str> = line.split_whitespace().collect();
    let (done, word): (&[&str], &str) = match words.split_last() {
        Some((last, rest)) if !ends_in_space => (rest, last),
        _ => (&words, ""),
    };
    let matches: Vec<String> = candidates(done.len(), done)
        .into_iter()
        .filter(|c| c.starts_with(word))
        .collect();
    let head = if ends_in_space {
        line.to_string()
    } else {
        line[..line.len() - word.len()].to_string()
    };
    match matches.as_slice() {
        [] => (line.to_string(), Vec::new()),
        [one] => (format!("{head}{one} "), Vec::new()),
        many => {
            let mut prefix = many[0].clone();
            for m in &many[1..] {
                while !m.starts_with(&prefix) {
                    prefix.pop();
                }
            }
            let shown = if prefix.len() > word.len() {
                prefix
            } else {
                word.to_string()
            };
            (format!("{head}{shown}"), many.to_vec())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cands(i: usize, w: &[&str]) -> Vec<String> {
        match (i, w.first().copied()) {
            (0, _) => ["approve", "reject", "reset-breaker", "run"]
                .map(String::from)
                .to_vec(),
            (1, Some("run")) => ["disk_cleanup", "service_restart"]
                .map(String::from)
                .to_vec(),
            (2, Some("run")) => ["web-01", "web-02"].map(String::from).to_vec(),
            _ => Vec::new(),
        }
    }

    #[test]
    fn tab_completes_commands_runbooks_and_hosts() {
        assert_eq!(complete("ap", cands), ("approve ".to_string(), vec![]));
        let (l, m) = complete("re", cands);
        assert_eq!(l, "re");
        assert_eq!(m, vec!["reject", "reset-breaker"]);
        assert_eq!(complete("run s", cands).0, "run service_restart ");
        let (l, m) = complete("run service_restart ", cands);
        assert_eq!(l, "run service_restart web-0");
        assert_eq!(m.len(), 2);
        assert_eq!(complete("zzz", cands).0, "zzz");
    }

    #[test]
    fn the_history_is_kept_in_a_private_file_and_browsed_with_up_and_down() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("console-history");
        let mut h = History::load(Some(p.clone()));
        h.push("goto 42").unwrap();
        h.push("goto 42").unwrap();
        h.push("since 2h").unwrap();
        let mode = std::fs::metadata(&p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        let mut h = History::load(Some(p));
        assert_eq!(h.lines, vec!["goto 42", "since 2h"]);
        assert_eq!(h.browse(true, "dr").as_deref(), Some("since 2h"));
        assert_eq!(h.browse(true, "").as_deref(), Some("goto 42"));
        assert_eq!(h.browse(true, "").as_deref(), Some("goto 42"));
        assert_eq!(h.browse(false, "").as_deref(), Some("since 2h"));
        assert_eq!(h.browse(false, "").as_deref(), Some("dr"));
    }
}
