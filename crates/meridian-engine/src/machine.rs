//! The execution's decisions, as a pure state machine: given what the journal records about an
//! execution (its stages, their actions and statuses, whether a stop was asked for), [`next_step`]
//! says what happens next: enter a stage, run a run-order group's actions, retry a failed stage,
//! fail it (rolling it back when its `onFailure` says so), stop, or finish. It does no I/O and
//! reads no clock; the driver ([`crate::driver`]) performs each [`Step`], records it in the
//! journal, reads the journal back into an [`ExecutionView`] and asks again, so a resumed
//! execution continues from whatever was recorded last.
//!
//! What is not decided here, and why:
//! - admission across executions (`QUEUED` order, `SUPERSEDED` stage locks) is a transaction of
//!   the journal shared by every process ([`crate::journal::Journal::try_enter_stage`]): the
//!   driver asks it when it performs [`Step::EnterStage`];
//! - waves, deployment windows and `max-parallel-regions` apply per action, around the deploy
//!   actions of a group ([`crate::policy`]);
//! - one deployment's traffic shifting is its own pure machine (`meridian-delivery`).

use crate::state::{ActionStatus, ExecutionEvent};

/// What a stage does when it fails (CodePipeline V2's `onFailure.result`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OnFailure {
    /// The execution fails (the default).
    Fail,
    /// The stage's failed actions (or all of them) run once more, then it fails for good.
    Retry { all_actions: bool },
    /// The stage is redeployed with the last successful execution's artifacts, by a new
    /// execution, and this one fails.
    Rollback,
}

/// One action as the journal records it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ActionView {
    pub name: String,
    pub region: String,
    pub run_order: i64,
    pub status: ActionStatus,
    pub error: Option<String>,
}

/// One stage as the journal records it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StageView {
    pub name: String,
    /// `Pending` until the stage is entered.
    pub status: ActionStatus,
    pub on_failure: OnFailure,
    /// Whether this run of the execution has already retried the stage automatically.
    pub auto_retried: bool,
    pub actions: Vec<ActionView>,
}

/// What the machine decides from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ExecutionView {
    pub stages: Vec<StageView>,
    /// A rollback execution runs one stage only.
    pub only_stage: Option<usize>,
    /// `meridian stop` was asked for.
    pub stop_requested: bool,
}

/// What the driver does next.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Step {
    /// Enter the stage: admission (stage locks of `SUPERSEDED`), then record it in progress.
    EnterStage { stage: usize },
    /// Run these pending actions of the stage at once (one run-order group).
    Run { stage: usize, actions: Vec<String> },
    /// Reset the stage's failed actions (or all of them) to run again.
    RetryStage {
        stage: usize,
        all_actions: bool,
        reason: String,
    },
    /// Every action of the stage succeeded.
    StageSucceeded { stage: usize },
    /// The stage failed: record it, start its rollback when `roll_back`, and fail the execution.
    FailStage {
        stage: usize,
        reason: String,
        roll_back: bool,
    },
    /// Stop the execution (a stop was asked for, or actions were abandoned); `stage` is the
    /// stage in progress to record as abandoned.
    Stop { stage: Option<usize>, reason: String },
    /// The execution ends with this event.
    Finish {
        event: ExecutionEvent,
        reason: Option<String>,
    },
}

/// The next step of an execution.
pub fn next_step(v: &ExecutionView) -> Step {
    for (si, stage) in v.stages.iter().enumerate() {
        if v.only_stage.is_some_and(|o| o != si) || stage.status == ActionStatus::Succeeded {
            continue;
        }
        if stage.status == ActionStatus::Pending {
            if v.stop_requested {
                return Step::Stop {
                    stage: None,
                    reason: "stopped by request".into(),
                };
            }
            return Step::EnterStage { stage: si };
        }
        // A group's outcome is judged when it ends (failures first, even when a stop was asked
        // for meanwhile); a stop takes effect before the next group.
        let failed: Vec<String> = stage
            .actions
            .iter()
            .filter(|a| a.status == ActionStatus::Failed)
            .map(|a| {
                format!(
                    "action {} ({}) failed: {}",
                    a.name,
                    a.region,
                    a.error.as_deref().unwrap_or_default()
                )
            })
            .collect();
        if !failed.is_empty() {
            let reason = format!("stage {} failed: {}", stage.name, failed.join("; "));
            return match stage.on_failure {
                OnFailure::Retry { all_actions } if !stage.auto_retried => Step::RetryStage {
                    stage: si,
                    all_actions,
                    reason: format!("automatic retry after: {reason}"),
                },
                OnFailure::Rollback => Step::FailStage {
                    stage: si,
                    reason,
                    roll_back: true,
                },
                _ => Step::FailStage {
                    stage: si,
                    reason,
                    roll_back: false,
                },
            };
        }
        if stage.actions.iter().any(|a| a.status == ActionStatus::Abandoned) {
            return Step::Stop {
                stage: Some(si),
                reason: "stopped by request".into(),
            };
        }
        // The first run-order group with actions still to run; actions in other states (run by
        // another process, or ended by recovery) are not run again.
        let first_pending = stage
            .actions
            .iter()
            .filter(|a| a.status == ActionStatus::Pending)
            .map(|a| a.run_order)
            .min();
        if let Some(order) = first_pending {
            if v.stop_requested {
                return Step::Stop {
                    stage: Some(si),
                    reason: "stopped by request".into(),
                };
            }
            return Step::Run {
                stage: si,
                actions: stage
                    .actions
                    .iter()
                    .filter(|a| a.run_order == order && a.status == ActionStatus::Pending)
                    .map(|a| a.name.clone())
                    .collect(),
            };
        }
        return Step::StageSucceeded { stage: si };
    }
    Step::Finish {
        event: ExecutionEvent::Succeed,
        reason: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ActionStatus::*;

    fn action(name: &str, order: i64, status: ActionStatus) -> ActionView {
        ActionView {
            name: name.into(),
            region: "us-east-1".into(),
            run_order: order,
            status,
            error: (status == Failed).then(|| "boom".into()),
        }
    }

    fn stage(name: &str, status: ActionStatus, actions: Vec<ActionView>) -> StageView {
        StageView {
            name: name.into(),
            status,
            on_failure: OnFailure::Fail,
            auto_retried: false,
            actions,
        }
    }

    fn view(stages: Vec<StageView>) -> ExecutionView {
        ExecutionView {
            stages,
            only_stage: None,
            stop_requested: false,
        }
    }

    /// Drives the machine to its end, performing each step on the view as the driver would, with
    /// `outcome` deciding how each action run ends. Returns the steps taken.
    fn drive(mut v: ExecutionView, outcome: impl Fn(&str, u32) -> ActionStatus) -> Vec<Step> {
        let mut steps = Vec::new();
        let mut runs: std::collections::HashMap<String, u32> = Default::default();
        for _ in 0..100 {
            let step = next_step(&v);
            steps.push(step.clone());
            match &step {
                Step::EnterStage { stage } => v.stages[*stage].status = InProgress,
                Step::Run { stage, actions } => {
                    for a in v.stages[*stage]
                        .actions
                        .iter_mut()
                        .filter(|a| actions.contains(&a.name))
                    {
                        let n = runs.entry(a.name.clone()).or_default();
                        *n += 1;
                        a.status = outcome(&a.name, *n);
                        a.error = (a.status == Failed).then(|| "boom".into());
                    }
                }
                Step::RetryStage { stage, all_actions, .. } => {
                    let s = &mut v.stages[*stage];
                    s.auto_retried = true;
                    for a in &mut s.actions {
                        if a.status == Failed || (*all_actions && a.status == Succeeded) {
                            a.status = Pending;
                        }
                    }
                }
                Step::StageSucceeded { stage } => v.stages[*stage].status = Succeeded,
                Step::FailStage { .. } | Step::Stop { .. } | Step::Finish { .. } => return steps,
            }
        }
        panic!("the machine did not end: {steps:?}");
    }

    fn runs(steps: &[Step]) -> Vec<Vec<String>> {
        steps
            .iter()
            .filter_map(|s| match s {
                Step::Run { actions, .. } => Some(actions.clone()),
                _ => None,
            })
            .collect()
    }

    #[test]
    fn stages_run_in_order_and_run_order_groups_one_after_another() {
        let v = view(vec![
            stage("Source", Pending, vec![action("Src", 1, Pending)]),
            stage(
                "Deploy",
                Pending,
                vec![
                    action("B1", 2, Pending),
                    action("A", 1, Pending),
                    action("B2", 2, Pending),
                ],
            ),
        ]);
        let steps = drive(v, |_, _| Succeeded);
        assert_eq!(runs(&steps), vec![vec!["Src"], vec!["A"], vec!["B1", "B2"]]);
        assert_eq!(
            steps.last(),
            Some(&Step::Finish {
                event: ExecutionEvent::Succeed,
                reason: None
            })
        );
    }

    #[test]
    fn a_failed_action_fails_its_stage_after_its_group_and_names_every_failure() {
        let v = view(vec![stage(
            "Deploy",
            Pending,
            vec![
                action("A", 1, Pending),
                action("B", 1, Pending),
                action("C", 2, Pending),
            ],
        )]);
        let steps = drive(v, |n, _| if n == "C" { Succeeded } else { Failed });
        assert_eq!(runs(&steps), vec![vec!["A", "B"]], "C never runs");
        assert_eq!(
            steps.last(),
            Some(&Step::FailStage {
                stage: 0,
                reason: "stage Deploy failed: action A (us-east-1) failed: boom; action B (us-east-1) failed: boom"
                    .into(),
                roll_back: false
            })
        );
    }

    #[test]
    fn retry_runs_the_failed_actions_once_more_then_fails_for_good() {
        let mut s = stage(
            "Deploy",
            Pending,
            vec![action("A", 1, Pending), action("B", 1, Pending)],
        );
        s.on_failure = OnFailure::Retry { all_actions: false };
        // B fails every time: retried once, then the stage fails
        let steps = drive(view(vec![s.clone()]), |n, _| if n == "B" { Failed } else { Succeeded });
        assert_eq!(runs(&steps), vec![vec!["A", "B"], vec!["B"]]);
        assert!(matches!(steps.last(), Some(Step::FailStage { roll_back: false, .. })));
        // B fails once: the retry succeeds
        let steps = drive(view(vec![s.clone()]), |n, k| {
            if n == "B" && k == 1 {
                Failed
            } else {
                Succeeded
            }
        });
        assert!(matches!(
            steps.last(),
            Some(Step::Finish {
                event: ExecutionEvent::Succeed,
                ..
            })
        ));
        // ALL_ACTIONS runs the succeeded ones again too
        s.on_failure = OnFailure::Retry { all_actions: true };
        let steps = drive(
            view(vec![s]),
            |n, k| if n == "B" && k == 1 { Failed } else { Succeeded },
        );
        assert_eq!(runs(&steps), vec![vec!["A", "B"], vec!["A", "B"]]);
    }

    #[test]
    fn rollback_fails_the_stage_with_its_rollback() {
        let mut s = stage("Deploy", Pending, vec![action("A", 1, Pending)]);
        s.on_failure = OnFailure::Rollback;
        let steps = drive(view(vec![s]), |_, _| Failed);
        assert!(matches!(
            steps.last(),
            Some(Step::FailStage {
                stage: 0,
                roll_back: true,
                ..
            })
        ));
    }

    #[test]
    fn a_stop_ends_before_the_next_group_and_marks_the_stage_in_progress() {
        let mut v = view(vec![
            stage("Source", Succeeded, vec![action("Src", 1, Succeeded)]),
            stage(
                "Deploy",
                InProgress,
                vec![action("A", 1, Succeeded), action("B", 2, Pending)],
            ),
        ]);
        v.stop_requested = true;
        assert_eq!(
            next_step(&v),
            Step::Stop {
                stage: Some(1),
                reason: "stopped by request".into()
            }
        );
        // before a stage is entered, there is no stage to mark
        v.stages[1].status = Pending;
        assert_eq!(
            next_step(&v),
            Step::Stop {
                stage: None,
                reason: "stopped by request".into()
            }
        );
        // abandoned actions (stop --abandon) stop the execution too
        v.stop_requested = false;
        v.stages[1].status = InProgress;
        v.stages[1].actions[1].status = Abandoned;
        assert!(matches!(next_step(&v), Step::Stop { stage: Some(1), .. }));
        // a failure in the group that was running when the stop came counts first
        v.stop_requested = true;
        v.stages[1].actions[1].status = Failed;
        assert!(matches!(next_step(&v), Step::FailStage { stage: 1, .. }));
        // a stage whose every action ended well is finished before the stop takes effect
        v.stages[1].actions[1].status = Succeeded;
        assert_eq!(next_step(&v), Step::StageSucceeded { stage: 1 });
    }

    #[test]
    fn a_resumed_execution_continues_where_the_journal_left_it() {
        // Source done; Deploy's first group done; the second group's action was left running by
        // a dead process and failed by recovery; nothing runs twice
        let v = view(vec![
            stage("Source", Succeeded, vec![action("Src", 1, Succeeded)]),
            stage(
                "Deploy",
                InProgress,
                vec![action("A", 1, Succeeded), action("B", 2, Pending)],
            ),
        ]);
        assert_eq!(
            next_step(&v),
            Step::Run {
                stage: 1,
                actions: vec!["B".into()]
            }
        );
        let mut v2 = v.clone();
        v2.stages[1].actions[1].status = Failed;
        assert!(matches!(next_step(&v2), Step::FailStage { stage: 1, .. }));
    }

    #[test]
    fn a_rollback_execution_runs_only_its_stage() {
        let mut v = view(vec![
            stage("Source", Pending, vec![action("Src", 1, Pending)]),
            stage("Deploy", Pending, vec![action("A", 1, Pending)]),
        ]);
        v.only_stage = Some(1);
        let steps = drive(v, |_, _| Succeeded);
        assert_eq!(runs(&steps), vec![vec!["A"]]);
    }
}
