//! What keys do while a popup is open: the help, a confirmation, the `:`
//! palette (with completion and history), the `/` filter (applied as it
//! is typed) and an audit record in full. Drawing them is in `view`.

use std::time::Instant;

use ratatui::crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use tui_textarea::TextArea;

use crate::model::Record;
use crate::tui::app::{App, Level};
use crate::tui::dialogs::{Confirm, SILENCE_FOR};
use crate::tui::panes::Pane;
use crate::tui::prompt::{complete, edit, input_line, text_of};

#[derive(Debug)]
pub enum Popup {
    Help {
        scroll: u16,
    },
    Confirm(Box<Confirm>),
    Palette {
        input: TextArea<'static>,
        /// An error, or the completions of the last tab.
        error: Option<String>,
    },
    Filter {
        input: TextArea<'static>,
        pane: Pane,
        error: Option<String>,
        /// The filter in place when the prompt opened (esc goes back).
        before: String,
    },
    /// One audit record in full.
    Record {
        record: Box<Record>,
        scroll: u16,
    },
}

impl App {
    pub(crate) fn open_palette(&mut self, text: &str) {
        self.popup = Some(Popup::Palette {
            input: input_line(
                "a command (tab completes, up/down: history; ? lists them)",
                text,
            ),
            error: None,
        });
    }

    pub(crate) fn popup_key(&mut self, ev: &KeyEvent, now: Instant) {
        let ctrl_c = ev.code == KeyCode::Char('c') && ev.modifiers.contains(KeyModifiers::CONTROL);
        let Some(popup) = self.popup.as_mut() else {
            return;
        };
        match popup {
            Popup::Help { scroll } | Popup::Record { scroll, .. } => match ev.code {
                KeyCode::Down | KeyCode::Char('j') => *scroll = scroll.saturating_add(1),
                KeyCode::Up | KeyCode::Char('k') => *scroll = scroll.saturating_sub(1),
                KeyCode::PageDown | KeyCode::Char(' ') => *scroll = scroll.saturating_add(10),
                KeyCode::PageUp => *scroll = scroll.saturating_sub(10),
                KeyCode::Char('y') => {
                    if let Popup::Record { record, .. } = popup {
                        let text = serde_json::to_string(record).unwrap_or_default();
                        let what = format!("record {} as JSON", record.seq);
                        self.copy(text, what, now);
                    }
                }
                _ if ctrl_c => self.ask_quit(),
                _ => self.popup = None,
            },
            Popup::Confirm(_) => self.confirm_key(ev, ctrl_c, now),
            Popup::Palette { input, error } => match ev.code {
                KeyCode::Esc => self.popup = None,
                _ if ctrl_c => self.popup = None,
                KeyCode::Enter => {
                    let line = text_of(input);
                    self.popup = None;
                    if let Err(e) = self.history.push(&line) {
                        self.flash(format!("history not saved: {e}"), Level::Bad, now);
                    }
                    if let Err(e) = self.command(&line, now) {
                        self.popup = Some(Popup::Palette {
                            input: input_line("", &line),
                            error: Some(e),
                        });
                    }
                }
                KeyCode::Tab => {
                    let line = text_of(input);
                    let (done, options) = complete(&line, |i, w| self.completions(i, w));
                    if let Some(Popup::Palette { input, error }) = self.popup.as_mut() {
                        *input = input_line("", &done);
                        *error = (!options.is_empty()).then(|| options.join("  "));
                    }
                }
                KeyCode::Up | KeyCode::Down => {
                    let line = text_of(input);
                    if let Some(l) = self.history.browse(ev.code == KeyCode::Up, &line)
                        && let Some(Popup::Palette { input, .. }) = self.popup.as_mut()
                    {
                        *input = input_line("", &l);
                    }
                }
                _ => {
                    edit(input, ev);
                    *error = None;
                }
            },
            Popup::Filter {
                input,
                pane,
                before,
                ..
            } => {
                let pane = *pane;
                match ev.code {
                    KeyCode::Esc => {
                        let before = std::mem::take(before);
                        self.popup = None;
                        let _ = self.apply_filter(pane, &before);
                    }
                    _ if ctrl_c => self.popup = None,
                    KeyCode::Enter => {
                        let line = text_of(input);
                        match self.apply_filter(pane, &line) {
                            Ok(()) => self.popup = None,
                            Err(e) => {
                                if let Some(Popup::Filter { error, .. }) = self.popup.as_mut() {
                                    *error = Some(e);
                                }
                            }
                        }
                    }
                    _ => {
                        edit(input, ev);
                        let line = text_of(input);
                        // As it is typed: a half-typed audit filter that
                        // does not parse yet is said, not applied.
                        let r = self.apply_filter(pane, &line);
                        if let Some(Popup::Filter { error, .. }) = self.popup.as_mut() {
                            *error = r.err();
                        }
                    }
                }
            }
        }
    }

    fn confirm_key(&mut self, ev: &KeyEvent, ctrl_c: bool, now: Instant) {
        let Some(Popup::Confirm(c)) = self.popup.as_mut() else {
            return;
        };
        let picker = c.durations.as_ref().is_some_and(|d| d.focused);
        match ev.code {
            KeyCode::Esc => {
                self.popup = None;
                self.flash("cancelled: nothing was sent", Level::Info, now);
            }
            _ if ctrl_c => self.popup = None,
            KeyCode::Tab | KeyCode::BackTab if c.durations.is_some() => {
                if let Some(d) = c.durations.as_mut() {
                    d.focused = !d.focused;
                }
            }
            KeyCode::Tab | KeyCode::BackTab => c.ok_focused = !c.ok_focused,
            KeyCode::Left | KeyCode::Right if picker => {
                if let Some(d) = c.durations.as_mut() {
                    let n = SILENCE_FOR.len();
                    d.choice = if ev.code == KeyCode::Right {
                        (d.choice + 1) % n
                    } else {
                        (d.choice + n - 1) % n
                    };
                }
                c.error = None;
                retitle(c);
            }
            KeyCode::Left | KeyCode::Right if c.reason.is_none() => c.ok_focused = !c.ok_focused,
            KeyCode::Enter => {
                // A dialog with a text field answers on Enter: the text was
                // typed on purpose. Without one, Enter presses the focused
                // button (Cancel first).
                if c.reason.is_none() && !c.ok_focused {
                    self.popup = None;
                    self.flash("cancelled: nothing was sent", Level::Info, now);
                    return;
                }
                let text = c.reason.as_ref().map(text_of).unwrap_or_default();
                let text = text.trim().to_string();
                if c.reason_required && text.is_empty() {
                    c.error = Some("a reason is required".into());
                    return;
                }
                let duration = c.durations.as_ref().map(|d| d.value()).unwrap_or_default();
                if c.durations.is_some()
                    && let Err(e) = crate::units::parse_duration(&duration)
                {
                    c.error = Some(format!("duration {duration:?}: {e}"));
                    return;
                }
                let on_ok = c.on_ok.clone();
                self.popup = None;
                self.confirmed(on_ok, text, duration, now);
            }
            _ if picker => {
                if let Some(d) = c.durations.as_mut() {
                    d.choice = SILENCE_FOR.len() - 1;
                    edit(&mut d.custom, ev);
                }
                c.error = None;
                retitle(c);
            }
            _ => {
                if let Some(t) = c.reason.as_mut() {
                    edit(t, ev);
                    c.error = None;
                }
            }
        }
    }

    /// What tab offers for word `i` after `words` in the palette.
    pub(crate) fn completions(&self, i: usize, words: &[&str]) -> Vec<String> {
        if i == 0 {
            return crate::tui::commands::command_words()
                .filter(|w| {
                    !self.opts.read_only
                        || crate::tui::commands::by_command(w).is_some_and(|c| !c.dangerous)
                })
                .map(String::from)
                .collect();
        }
        let hosts = || -> Vec<String> { self.snap.hosts.iter().map(|h| h.name.clone()).collect() };
        let runbooks =
            || -> Vec<String> { self.snap.runbooks.iter().map(|r| r.name.clone()).collect() };
        match (words.first().copied(), i) {
            (Some("approve" | "reject"), 1) => self
                .approval_rows
                .iter()
                .filter_map(|&ix| self.snap.actions.get(ix))
                .map(|a| a.id.to_string())
                .collect(),
            (Some("run"), 1) => runbooks(),
            (Some("run"), 2) => hosts(),
            (Some("run"), _) => words
                .get(1)
                .and_then(|rb| self.snap.suggestions.iter().find(|s| s.runbook == *rb))
                .and_then(|s| s.params.as_ref().ok())
                .map(|p| p.keys().map(|k| format!("{k}=")).collect())
                .unwrap_or_default(),
            (Some("reset-breaker"), 1) => self.snap.breakers.iter().map(|b| b.0.clone()).collect(),
            (Some("reset-breaker"), 2) => self
                .snap
                .breakers
                .iter()
                .filter(|b| Some(b.0.as_str()) == words.get(1).copied())
                .map(|b| b.1.clone())
                .collect(),
            (Some("propose-analysis"), 1) => self
                .snap
                .suggestions
                .iter()
                .filter(|s| s.analysis_rank.is_some())
                .map(|s| s.runbook.clone())
                .collect(),
            (Some("theme"), 1) => self.opts.theme_names.clone(),
            (Some("silence"), 1) => SILENCE_FOR[..4].iter().map(|s| s.to_string()).collect(),
            (Some("since"), 1) => ["15m", "1h", "2h", "24h"].map(String::from).to_vec(),
            (Some("dry-run"), 1) => ["on", "off"].map(String::from).to_vec(),
            (Some("export"), 1) => vec!["audit".into()],
            _ => Vec::new(),
        }
    }
}

/// The silence dialog's title follows the duration picked.
fn retitle(c: &mut Confirm) {
    if let Some(d) = &c.durations
        && let Some(i) = c.title.rfind(" for ")
    {
        c.title = format!("{} for {}?", &c.title[..i], d.value());
    }
}
