//! The confirmations: a question, what will happen (the exact commands,
//! LIVE or DRY-RUN, what the analysis says), and two buttons with Cancel
//! focused. A dialog with a text field (reject's reason, silence's
//! comment) is answered by Enter with the text and cancelled by Esc.
//! Building a dialog decides nothing; `confirmed` turns the answer into an
//! intent for the hub.

use std::collections::BTreeMap;
use std::time::Instant;

use tui_textarea::TextArea;

use crate::engine::{Action, Event};
use crate::model::{ActionId, ActionState};
use crate::tui::app::{App, Intent, Level};
use crate::tui::panes::{Pane, clean, plural, show_cmd};
use crate::tui::prompt::input_line;

/// The silence dialog's durations; the last is typed.
pub const SILENCE_FOR: [&str; 5] = ["30m", "1h", "2h", "4h", "custom"];

/// What a confirmation does when the operator confirms.
#[derive(Debug, Clone, PartialEq)]
pub enum Confirmed {
    Approve(ActionId),
    Reject(ActionId),
    DryRun(bool),
    Freeze(bool),
    ResetBreaker {
        runbook: String,
        target: String,
    },
    /// The duration and comment come from the dialog.
    Silence {
        fingerprint: String,
    },
    Unsilence {
        fingerprint: String,
    },
    /// Quit, stopping the hub others are attached to.
    Quit,
    /// Propose a manual run.
    Run {
        runbook: String,
        target: String,
        params: BTreeMap<String, String>,
    },
    /// Propose an alert's runbook again.
    Repropose {
        fingerprint: String,
    },
    /// Propose the runbook the alert's analysis recommends.
    ProposeAnalysis {
        fingerprint: String,
        runbook: String,
    },
}

/// The silence dialog's duration picker.
#[derive(Debug)]
pub struct Durations {
    /// Index into [`SILENCE_FOR`].
    pub choice: usize,
    pub custom: TextArea<'static>,
    /// Keys go to the picker (else to the comment).
    pub focused: bool,
}

impl Durations {
    pub fn value(&self) -> String {
        match SILENCE_FOR.get(self.choice) {
            Some(&"custom") | None => self.custom.lines().join("").trim().to_string(),
            Some(d) => d.to_string(),
        }
    }
}

/// A two-step confirmation.
#[derive(Debug)]
pub struct Confirm {
    pub title: String,
    pub lines: Vec<String>,
    pub ok_label: String,
    pub on_ok: Confirmed,
    /// false: Cancel is focused.
    pub ok_focused: bool,
    /// A text to type (reject's reason, silence's comment).
    pub reason: Option<TextArea<'static>>,
    /// Enter refuses an empty text.
    pub reason_required: bool,
    pub durations: Option<Durations>,
    pub error: Option<String>,
}

impl Confirm {
    pub fn new(title: String, lines: Vec<String>, ok: &str, on_ok: Confirmed) -> Confirm {
        Confirm {
            title,
            lines,
            ok_label: ok.into(),
            on_ok,
            ok_focused: false,
            reason: None,
            reason_required: false,
            durations: None,
            error: None,
        }
    }
}

/// What a confirmation shows of an action: target, runbook, parameters
/// and the exact commands.
pub fn action_lines(a: &Action) -> Vec<String> {
    let mut v = vec![
        format!("Target:  {}", clean(&a.target)),
        format!(
            "Runbook: {}  (alert {}, {})",
            a.runbook,
            clean(&a.alert),
            a.severity.as_str()
        ),
    ];
    if let Some(by) = &a.requested_by {
        v.push(format!(
            "Asked:   manual run by {by} (who cannot be its only approver)"
        ));
    }
    if a.approvals_needed > 1 {
        v.push(format!(
            "Approvals: {} of {}{}",
            a.approvals.len(),
            a.approvals_needed,
            if a.approvals.is_empty() {
                String::new()
            } else {
                format!(" ({})", a.approvals.join(", "))
            }
        ));
    }
    if !a.params.is_empty() {
        v.push(format!(
            "Params:  {}",
            a.params
                .iter()
                .map(|(k, v)| format!("{k}={}", v.escape_debug()))
                .collect::<Vec<_>>()
                .join(" ")
        ));
    }
    v.push("Commands:".into());
    if a.plan.is_empty() {
        v.push("  (none)".into());
    }
    for (i, s) in a.plan.iter().enumerate() {
        let ro = if s.read_only { "  [read-only]" } else { "" };
        v.push(format!("  {}. {}{ro}", i + 1, show_cmd(&s.display())));
    }
    v
}

/// What the analysis says about an action's alert, for its approval: the
/// verdict, its top evidence, and a warning when the runbook is not what
/// it recommends.
/// "params   k=v k=v" for a dialog, or `none` when there are none.
fn params_line(params: &std::collections::BTreeMap<String, String>, none: &str) -> String {
    let shown = params
        .iter()
        .map(|(k, v)| format!("{k}={}", clean(v)))
        .collect::<Vec<_>>()
        .join(" ");
    format!("params   {}", if shown.is_empty() { none } else { &shown })
}

pub fn analysis_verdict(app: &App, a: &Action) -> Vec<String> {
    let Some(v) = app.snap.analyses.get(&a.fingerprint) else {
        return vec!["Analysis: not ready yet (see Detail)".into()];
    };
    let an = &v.analysis;
    let mut out = vec![if an.inconclusive() {
        format!(
            "Analysis: inconclusive ({:.0}% confident): {}",
            an.confidence * 100.0,
            clean(&an.summary)
        )
    } else {
        format!(
            "Analysis: {} ({:.0}% confident): {}",
            an.cause.as_str().replace('_', " "),
            an.confidence * 100.0,
            clean(&an.summary)
        )
    }];
    for e in an.evidence.iter().take(2) {
        out.push(format!(
            "  evidence: {} = {}",
            clean(&e.signal),
            crate::tui::panes::detail::human_value(&e.value)
        ));
    }
    out.extend(
        crate::tui::panes::weighed_lines(&app.snap, &a.fingerprint)
            .into_iter()
            .map(|l| format!("  weighed: {l}")),
    );
    if !an.inconclusive() && !an.runbooks.iter().any(|r| r.runbook == a.runbook) {
        out.push(match an.runbooks.first() {
            Some(r) => format!(
                "WARNING: the analysis says {} will not fix the cause; it recommends {}",
                a.runbook, r.runbook
            ),
            None => format!(
                "WARNING: the analysis says no runbook fixes this, {} included: a human should look",
                a.runbook
            ),
        });
    }
    out
}

impl App {
    pub(crate) fn mode_text(&self) -> &'static str {
        if self.snap.modes.dry_run {
            "DRY-RUN: nothing will change on the host; the plan is recorded"
        } else {
            "LIVE: these commands will run on the host"
        }
    }

    fn confirm(&mut self, c: Confirm) {
        self.popup = Some(crate::tui::popups::Popup::Confirm(Box::new(c)));
    }

    fn find_action(&self, id: Option<&str>) -> Result<Action, String> {
        match id {
            Some(id) => {
                let want = ActionId::parse(id).ok_or_else(|| {
                    format!("{id:?} is not an action id; expected one such as A000042")
                })?;
                self.snap
                    .actions
                    .iter()
                    .find(|a| a.id == want)
                    .cloned()
                    .ok_or_else(|| format!("no action {want} is open"))
            }
            None => self
                .action_in_focus()
                .cloned()
                .ok_or_else(|| "select an action in Approvals (or an alert with one) first".into()),
        }
    }

    pub(crate) fn ask_approve(&mut self, id: Option<&str>, now: Instant) {
        let a = match self.find_action(id) {
            Ok(a) => a,
            Err(e) => return self.flash(e, Level::Bad, now),
        };
        if !matches!(
            a.state,
            ActionState::AwaitingApproval | ActionState::Interrupted
        ) {
            return self.flash(
                format!("{} is {}, not awaiting approval", a.id, a.state.as_str()),
                Level::Bad,
                now,
            );
        }
        let mut lines = action_lines(&a);
        lines.push(String::new());
        // The mode and the analysis are pinned: never cut by a long plan.
        lines.push(self.mode_text().to_string());
        lines.extend(analysis_verdict(self, &a));
        if a.state == ActionState::Interrupted {
            lines.push(
                "It was interrupted by a restart: check the host before running it again.".into(),
            );
        }
        self.confirm(Confirm::new(
            format!("Approve {}?", a.id),
            lines,
            "Approve",
            Confirmed::Approve(a.id),
        ));
    }

    fn text_field(&self, title: &str, hint: &str, text: &str) -> TextArea<'static> {
        let mut t = input_line(hint, text);
        t.set_block(
            ratatui::widgets::Block::bordered()
                .title(format!(" {title} "))
                .border_style(self.theme.border(true)),
        );
        t
    }

    pub(crate) fn ask_reject(&mut self, id: Option<&str>, reason: &str, now: Instant) {
        let a = match self.find_action(id) {
            Ok(a) => a,
            Err(e) => return self.flash(e, Level::Bad, now),
        };
        if !matches!(
            a.state,
            ActionState::AwaitingApproval | ActionState::Interrupted | ActionState::Blocked
        ) {
            return self.flash(
                format!(
                    "{} is {}; only a waiting action can be rejected",
                    a.id,
                    a.state.as_str()
                ),
                Level::Bad,
                now,
            );
        }
        let mut lines = action_lines(&a);
        lines.extend(analysis_verdict(self, &a));
        let mut c = Confirm::new(
            format!("Reject {}?", a.id),
            lines,
            "Reject",
            Confirmed::Reject(a.id),
        );
        c.reason = Some(self.text_field(
            "Reason",
            "why (required; recorded in the audit trail)",
            reason,
        ));
        c.reason_required = true;
        self.confirm(c);
    }

    pub(crate) fn ask_dry_run(&mut self, on: bool) {
        if on {
            // Entering dry-run only makes things safer: no confirmation.
            self.outbox.push(Intent::Hub(Event::SetDryRun {
                on: true,
                actor: self.snap.operator.clone(),
            }));
            return;
        }
        let open = self.approval_rows.len();
        self.confirm(Confirm::new(
            "Leave dry-run and go LIVE?".into(),
            vec![
                "Actions will run on hosts for real from now on.".into(),
                format!(
                    "{} open; automatic runbooks will act by themselves.",
                    plural(open, "action")
                ),
            ],
            "Go LIVE",
            Confirmed::DryRun(false),
        ));
    }

    /// Asks before proposing a manual run: what, where, and that the
    /// runbook's approval policy applies (an automatic one starts at once).
    pub(crate) fn ask_run(
        &mut self,
        runbook: &str,
        target: &str,
        params: BTreeMap<String, String>,
    ) {
        let info = self.snap.runbooks.iter().find(|r| r.name == runbook);
        let mut lines = vec![
            format!(
                "runbook  {runbook}{}",
                info.map(|i| format!(" (risk {})", i.risk))
                    .unwrap_or_default()
            ),
            format!("target   {}", clean(target)),
            params_line(&params, "(the runbook's defaults)"),
            String::new(),
            "The hub checks the parameters and guards, then asks for approval as the runbook's"
                .into(),
            "policy says (an automatic runbook starts at once). You cannot be its only approver."
                .into(),
            self.mode_text().to_string(),
        ];
        if info.is_none() {
            lines.insert(
                0,
                format!("no runbook named {runbook:?} is known; the hub will refuse it"),
            );
        }
        self.confirm(Confirm::new(
            format!("Propose {runbook} on {}?", clean(target)),
            lines,
            "Propose",
            Confirmed::Run {
                runbook: runbook.to_string(),
                target: target.to_string(),
                params,
            },
        ));
    }

    /// Asks before proposing the selected alert's runbook again.
    pub(crate) fn ask_repropose(&mut self, now: Instant) {
        let Some(a) = self.context_alert().cloned() else {
            return self.flash("select a firing alert first", Level::Bad, now);
        };
        self.confirm(Confirm::new(
            format!("Propose a runbook for {} again?", clean(&a.name)),
            vec![
                format!(
                    "alert  {} on {}",
                    clean(&a.name),
                    clean(a.host().unwrap_or("-"))
                ),
                "Its last action ended without fixing it, or none was proposed. A new action"
                    .into(),
                "goes through the same guards and approvals.".into(),
                self.mode_text().to_string(),
            ],
            "Propose",
            Confirmed::Repropose {
                fingerprint: a.fingerprint.clone(),
            },
        ));
    }

    /// Asks before proposing the runbook the analysis recommends for the
    /// alert in context: `runbook`, or the one selected in Runbooks. The
    /// dialog shows the parameters the analysis took, why, and what it
    /// would free; the hub checks everything again.
    pub(crate) fn ask_propose_analysis(&mut self, runbook: Option<&str>, now: Instant) {
        let Some(a) = self.context_alert().cloned() else {
            return self.flash("select a firing alert first", Level::Bad, now);
        };
        if self.snap.focus.as_deref() != Some(a.fingerprint.as_str()) {
            return self.flash(
                "the runbooks for this alert are still loading; try again",
                Level::Bad,
                now,
            );
        }
        let recommended = || {
            self.snap
                .suggestions
                .iter()
                .filter(|s| s.analysis_rank.is_some())
                .map(|s| s.runbook.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        };
        let s = match runbook {
            Some(rb) => self.snap.suggestions.iter().find(|s| s.runbook == rb),
            None => self.snap.suggestions.get(self.suggestion_sel),
        };
        let Some(s) = s.filter(|s| s.analysis_rank.is_some()).cloned() else {
            let named = runbook.map_or("the selected runbook".to_string(), |r| format!("{r:?}"));
            let known = recommended();
            return self.flash(
                if known.is_empty() {
                    format!("{named} is not recommended: the analysis recommends no runbook for this alert")
                } else {
                    format!("{named} is not recommended by the analysis; it recommends: {known}")
                },
                Level::Bad,
                now,
            );
        };
        if !s.proposable {
            return self.flash(
                format!(
                    "{} cannot be proposed now: {}",
                    s.runbook,
                    if s.why_not.is_empty() {
                        "the hub would refuse it".to_string()
                    } else {
                        clean(&s.why_not.join("; "))
                    }
                ),
                Level::Bad,
                now,
            );
        }
        let params = self
            .snap
            .assessment
            .as_ref()
            .and_then(|x| x.recommended.iter().find(|r| r.runbook == s.runbook))
            .map(|r| r.params.clone())
            .or_else(|| s.params.clone().ok())
            .unwrap_or_default();
        let mut lines = vec![
            format!(
                "alert    {} on {}",
                clean(&a.name),
                clean(a.host().unwrap_or("-"))
            ),
            format!(
                "runbook  {} @{}  (analysis #{}, risk {}, approval {})",
                s.runbook,
                clean(&s.target),
                s.analysis_rank.unwrap_or(0),
                s.risk,
                s.approval
            ),
            params_line(&params, "(none)"),
        ];
        lines.extend(s.why.iter().map(|w| format!("why      {}", clean(w))));
        lines.extend(crate::tui::panes::frees_text(&s).map(|f| format!("capacity {f}")));
        lines.extend(crate::tui::panes::weighed_lines(&self.snap, &a.fingerprint));
        lines.push(String::new());
        lines.push(
            "The hub takes the parameters from the analysis and checks the guards, then asks"
                .into(),
        );
        lines.push("for approval as the runbook's policy says.".into());
        lines.push(self.mode_text().to_string());
        self.confirm(Confirm::new(
            format!("Propose {} as the analysis recommends?", s.runbook),
            lines,
            "Propose",
            Confirmed::ProposeAnalysis {
                fingerprint: a.fingerprint.clone(),
                runbook: s.runbook.clone(),
            },
        ));
    }

    /// Quits, unless this console started the hub and others are attached
    /// to it: then it says so and asks first.
    pub(crate) fn ask_quit(&mut self) {
        let owns = self.snap.link.as_ref().is_some_and(|l| l.owns_hub && l.up);
        let others = self.others_attached();
        if !owns || others.is_empty() {
            self.quit = true;
            return;
        }
        let n = others.len();
        self.confirm(Confirm::new(
            "Stop the hub others are using?".into(),
            vec![
                format!(
                    "{} attached: {}.",
                    if n == 1 {
                        "1 other console is".to_string()
                    } else {
                        format!("{n} other consoles are")
                    },
                    others.join(", ")
                ),
                "This console started the hub: quitting stops it, and theirs show it lost until a hub runs again.".into(),
                "Nothing is lost: every record is durable, and open work comes back when a hub starts on this data dir.".into(),
                "To keep a hub running on its own, start it with `vigil serve`.".into(),
            ],
            "Quit",
            Confirmed::Quit,
        ));
    }

    pub(crate) fn ask_freeze(&mut self, on: bool) {
        if on {
            self.outbox.push(Intent::Hub(Event::SetFrozen {
                on: true,
                actor: self.snap.operator.clone(),
            }));
            return;
        }
        self.confirm(Confirm::new(
            "Unfreeze?".into(),
            vec![
                "Approved and automatic actions will start running again.".into(),
                self.mode_text().to_string(),
            ],
            "Unfreeze",
            Confirmed::Freeze(false),
        ));
    }

    pub(crate) fn ask_reset_breaker(&mut self, which: Option<(String, String)>, now: Instant) {
        let pick = which.or_else(|| {
            let a = match self.focus {
                Pane::Approvals => self.selected_action()?,
                _ => {
                    let fp = &self.context_alert()?.fingerprint;
                    self.snap.actions.iter().find(|a| &a.fingerprint == fp)?
                }
            };
            Some((a.runbook.clone(), a.target.clone()))
        });
        let open: Vec<(String, String)> = self
            .snap
            .breakers
            .iter()
            .map(|(r, t, _)| (r.clone(), t.clone()))
            .collect();
        let found = pick
            .filter(|p| open.contains(p))
            .or_else(|| (open.len() == 1).then(|| open[0].clone()));
        let Some((runbook, target)) = found else {
            let list = open
                .iter()
                .map(|(r, t)| format!("{r}@{t}"))
                .collect::<Vec<_>>()
                .join(", ");
            return self.flash(
                if open.is_empty() {
                    "no circuit breaker is open".to_string()
                } else {
                    format!("which breaker? open: {list} (reset-breaker RUNBOOK TARGET)")
                },
                Level::Bad,
                now,
            );
        };
        self.confirm(Confirm::new(
            format!("Reset the breaker of {runbook}@{target}?"),
            vec![
                format!(
                    "{runbook} ran too often on {target} without the alert staying away, so the breaker opened;"
                ),
                "resetting lets it run again (check why it keeps coming back first).".into(),
                self.mode_text().to_string(),
            ],
            "Reset",
            Confirmed::ResetBreaker { runbook, target },
        ));
    }

    pub(crate) fn ask_silence(&mut self, duration: &str, comment: &str, now: Instant) {
        let Some(al) = self.context_alert().cloned() else {
            return self.flash("select an alert to silence first", Level::Bad, now);
        };
        if let Err(e) = crate::units::parse_duration(duration) {
            return self.flash(format!("silence {duration}: {e}"), Level::Bad, now);
        }
        let labels = al
            .labels
            .iter()
            .map(|(k, v)| format!("{k}={:?}", clean(v)))
            .collect::<Vec<_>>()
            .join(", ");
        let choice = SILENCE_FOR
            .iter()
            .position(|d| *d == duration)
            .unwrap_or(SILENCE_FOR.len() - 1);
        let custom = if choice == SILENCE_FOR.len() - 1 {
            duration
        } else {
            ""
        };
        let mut c = Confirm::new(
            format!("Silence {} for {duration}?", clean(&al.name)),
            vec![
                format!("Matchers: {labels}"),
                "No runbook is proposed for it while silenced.".into(),
            ],
            "Silence",
            Confirmed::Silence {
                fingerprint: al.fingerprint.clone(),
            },
        );
        c.reason = Some(self.text_field(
            "Comment",
            "why (recorded with the silence, in Alertmanager too)",
            comment,
        ));
        c.durations = Some(Durations {
            choice,
            custom: input_line("e.g. 90m, 8h, 2d", custom),
            focused: false,
        });
        self.confirm(c);
    }

    pub(crate) fn ask_unsilence(&mut self, now: Instant) {
        let Some(al) = self.context_alert().cloned() else {
            return self.flash("select a silenced alert first", Level::Bad, now);
        };
        let Some(sil) = &al.silence else {
            return self.flash(
                format!("{} is not silenced", clean(&al.name)),
                Level::Bad,
                now,
            );
        };
        self.confirm(Confirm::new(
            format!("End the silence of {}?", clean(&al.name)),
            vec![
                format!(
                    "Silenced by {} until {}{}",
                    clean(&sil.actor),
                    sil.until.format("%Y-%m-%d %H:%M UTC"),
                    if sil.comment.is_empty() {
                        String::new()
                    } else {
                        format!(": {}", clean(&sil.comment))
                    }
                ),
                "Runbooks may be proposed for it again at once.".into(),
            ],
            "End silence",
            Confirmed::Unsilence {
                fingerprint: al.fingerprint.clone(),
            },
        ));
    }

    /// Carries out a confirmed dialog: `text` is its typed reason or
    /// comment, `duration` the silence's.
    pub(crate) fn confirmed(&mut self, c: Confirmed, text: String, duration: String, now: Instant) {
        let actor = self.snap.operator.clone();
        let ev = match c {
            Confirmed::Approve(action) => Event::Approve { action, actor },
            Confirmed::Reject(action) => Event::Reject {
                action,
                actor,
                reason: text,
            },
            Confirmed::DryRun(on) => Event::SetDryRun { on, actor },
            Confirmed::Freeze(on) => Event::SetFrozen { on, actor },
            Confirmed::ResetBreaker { runbook, target } => Event::ResetBreaker {
                runbook,
                target,
                actor,
            },
            Confirmed::Silence { fingerprint } => {
                self.outbox.push(Intent::Silence {
                    fingerprint,
                    duration,
                    comment: text,
                });
                return;
            }
            Confirmed::Unsilence { fingerprint } => {
                self.outbox.push(Intent::Unsilence { fingerprint });
                return;
            }
            Confirmed::Quit => {
                self.quit = true;
                return;
            }
            Confirmed::Run {
                runbook,
                target,
                params,
            } => {
                self.flash(format!("proposing {runbook}@{target}..."), Level::Info, now);
                self.outbox.push(Intent::Run {
                    runbook,
                    target,
                    params,
                });
                return;
            }
            Confirmed::Repropose { fingerprint } => {
                self.outbox.push(Intent::Repropose { fingerprint });
                return;
            }
            Confirmed::ProposeAnalysis {
                fingerprint,
                runbook,
            } => {
                self.flash(format!("proposing {runbook}..."), Level::Info, now);
                self.outbox.push(Intent::ProposeAnalysis {
                    fingerprint,
                    runbook,
                });
                return;
            }
        };
        let what = match &ev {
            Event::Approve { action, .. } => format!("approval of {action} sent"),
            Event::Reject { action, reason, .. } => {
                format!("rejection of {action} sent: {}", clean(reason))
            }
            Event::SetDryRun { on: true, .. } => "dry-run on".to_string(),
            Event::SetDryRun { on: false, .. } => "dry-run off: actions are LIVE".to_string(),
            Event::SetFrozen { on: true, .. } => "frozen: nothing will run".to_string(),
            Event::SetFrozen { on: false, .. } => "unfrozen".to_string(),
            Event::ResetBreaker {
                runbook, target, ..
            } => format!("breaker {runbook}@{target} reset"),
            _ => String::new(),
        };
        self.outbox.push(Intent::Hub(ev));
        self.flash(what, Level::Info, now);
    }
}
