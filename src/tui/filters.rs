//! Filters: what `/` matches in each pane, applied as it is typed, and how
//! many rows it lets through.

use crate::engine::{Action, Alert};
use crate::model::AlertStatus;
use crate::tui::app::App;
use crate::tui::panes::Pane;
use crate::tui::popups::Popup;

impl App {
    pub(crate) fn filter_text(&self, pane: Pane) -> &str {
        match pane {
            Pane::Audit => &self.audit.filter_text,
            Pane::Approvals => &self.approval_filter,
            p if p.spec().list.is_some() => &self.list(p).filter,
            _ => &self.alert_filter,
        }
    }

    pub(crate) fn open_filter(&mut self) {
        let pane = self.focus.filtered();
        let hint = pane.spec().filter.unwrap_or_default();
        let text = self.filter_text(pane).to_string();
        self.popup = Some(Popup::Filter {
            input: crate::tui::prompt::input_line(hint, &text),
            pane,
            error: None,
            before: text,
        });
    }

    pub(crate) fn clear_filter(&mut self) {
        let pane = self.focus.filtered();
        if !self.filter_text(pane).is_empty() {
            let _ = self.apply_filter(pane, "");
        }
    }

    /// How many rows the filter of `pane` lets through, and of how many.
    pub fn filter_count(&self, pane: Pane) -> (Option<u64>, u64) {
        match pane {
            Pane::Audit => (self.audit.total, self.snap.audit_seq),
            Pane::Approvals => (
                Some(self.approval_rows.len() as u64),
                self.snap
                    .actions
                    .iter()
                    .filter(|a| !a.state.is_final())
                    .count() as u64,
            ),
            p if p.spec().list.is_some() => (
                self.list_rows(p).map(|r| r.len() as u64),
                p.spec().list.as_ref().map_or(0, |l| (l.total)(self)) as u64,
            ),
            _ => (
                Some(self.alert_rows.len() as u64),
                (self.snap.alerts.len() + self.snap.pending.len()) as u64,
            ),
        }
    }

    /// Applies a filter typed for `pane`; an error says what is accepted.
    pub fn apply_filter(&mut self, pane: Pane, text: &str) -> Result<(), String> {
        let t = text.trim().to_string();
        if self.filter_text(pane) == t {
            return Ok(());
        }
        match pane {
            Pane::Audit => {
                crate::tui::audit::parse_audit_filter(&t)?;
                self.set_audit_filter(&t);
            }
            Pane::Approvals => {
                self.approval_filter = t;
                self.approval_sel = 0;
                self.rebuild_rows();
            }
            p if p.spec().list.is_some() => {
                self.lists[p.index()] = crate::tui::panes::ListState { sel: 0, filter: t };
            }
            _ => {
                self.alert_filter = t;
                self.alert_sel = 0;
                self.rebuild_rows();
            }
        }
        Ok(())
    }
}

pub(crate) fn alert_matches(a: &Alert, f: &str) -> bool {
    a.name.to_lowercase().contains(f)
        || a.severity.as_str().contains(f)
        || a.labels.iter().any(|(k, v)| {
            v.to_lowercase().contains(f) || format!("{k}={v}").to_lowercase().contains(f)
        })
        || (a.status == AlertStatus::Resolved && "resolved".contains(f))
        || (a.silence.is_some() && "silenced".contains(f))
}

pub(crate) fn action_matches(a: &Action, f: &str) -> bool {
    a.runbook.to_lowercase().contains(f)
        || a.target.to_lowercase().contains(f)
        || a.alert.to_lowercase().contains(f)
        || a.id.to_string().to_lowercase().contains(f)
}
