//! The pure state machines of executions, stages and actions: every legal transition is in one
//! `match`, and anything else is a typed error, never a silent no-op. The journal checks each
//! transition before writing it.

use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

/// Statuses as CodePipeline names them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum ExecutionStatus {
    InProgress,
    Stopping,
    Stopped,
    Succeeded,
    Failed,
    Superseded,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum ActionStatus {
    /// Not started in this attempt.
    Pending,
    InProgress,
    Succeeded,
    Failed,
    /// Stopped with `--abandon`, or left running by a stopped execution.
    Abandoned,
}

/// Stages share the action statuses; a stage that never started is `Pending`.
pub type StageStatus = ActionStatus;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ActionEvent {
    Start,
    Succeed,
    Fail,
    Abandon,
    /// Recovery: the process running it died and the action is safe to repeat.
    Resume,
    /// `meridian retry` or an automatic stage retry.
    Retry,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ExecutionEvent {
    StopRequested,
    Succeed,
    Fail,
    Stop,
    Supersede,
    /// `meridian retry` of a failed or stopped execution.
    Retry,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("illegal transition: {what} cannot go from {from} on {event}")]
pub struct IllegalTransition {
    pub what: &'static str,
    pub from: String,
    pub event: String,
}

impl ActionStatus {
    pub fn apply(self, ev: ActionEvent) -> Result<ActionStatus, IllegalTransition> {
        use ActionEvent as E;
        use ActionStatus as S;
        match (self, ev) {
            (S::Pending, E::Start) => Ok(S::InProgress),
            (S::InProgress, E::Succeed) => Ok(S::Succeeded),
            (S::InProgress, E::Fail) => Ok(S::Failed),
            // A pending action can fail before it starts (its inputs could not be prepared).
            (S::Pending, E::Fail) => Ok(S::Failed),
            (S::InProgress | S::Pending, E::Abandon) => Ok(S::Abandoned),
            (S::InProgress, E::Resume) => Ok(S::Pending),
            (S::Failed | S::Abandoned | S::Succeeded, E::Retry) => Ok(S::Pending),
            (from, event) => Err(IllegalTransition {
                what: "an action",
                from: from.to_string(),
                event: format!("{event:?}"),
            }),
        }
    }

    pub fn is_terminal(self) -> bool {
        matches!(
            self,
            ActionStatus::Succeeded | ActionStatus::Failed | ActionStatus::Abandoned
        )
    }
}

impl ExecutionStatus {
    pub fn apply(self, ev: ExecutionEvent) -> Result<ExecutionStatus, IllegalTransition> {
        use ExecutionEvent as E;
        use ExecutionStatus as S;
        match (self, ev) {
            (S::InProgress, E::StopRequested) => Ok(S::Stopping),
            (S::InProgress, E::Succeed) => Ok(S::Succeeded),
            (S::InProgress | S::Stopping, E::Fail) => Ok(S::Failed),
            (S::InProgress | S::Stopping, E::Stop) => Ok(S::Stopped),
            (S::InProgress, E::Supersede) => Ok(S::Superseded),
            (S::Failed | S::Stopped, E::Retry) => Ok(S::InProgress),
            (from, event) => Err(IllegalTransition {
                what: "an execution",
                from: from.to_string(),
                event: format!("{event:?}"),
            }),
        }
    }

    pub fn is_terminal(self) -> bool {
        !matches!(self, ExecutionStatus::InProgress | ExecutionStatus::Stopping)
    }
}

macro_rules! names {
    ($t:ty { $($v:ident),* }) => {
        impl fmt::Display for $t {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(match self { $(Self::$v => stringify!($v)),* })
            }
        }
        impl FromStr for $t {
            type Err = String;
            fn from_str(s: &str) -> Result<Self, String> {
                match s { $(stringify!($v) => Ok(Self::$v),)* other => Err(format!("unknown status `{other}`")) }
            }
        }
    };
}
names!(ExecutionStatus {
    InProgress,
    Stopping,
    Stopped,
    Succeeded,
    Failed,
    Superseded
});
names!(ActionStatus {
    Pending,
    InProgress,
    Succeeded,
    Failed,
    Abandoned
});

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn legal_and_illegal_action_transitions() {
        use ActionEvent::*;
        use ActionStatus::*;
        assert_eq!(Pending.apply(Start), Ok(InProgress));
        assert_eq!(InProgress.apply(Succeed), Ok(Succeeded));
        assert_eq!(InProgress.apply(Resume), Ok(Pending));
        assert_eq!(Failed.apply(Retry), Ok(Pending));
        let err = Succeeded.apply(Fail).unwrap_err();
        assert_eq!(
            err.to_string(),
            "illegal transition: an action cannot go from Succeeded on Fail"
        );
        assert!(
            Pending.apply(Succeed).is_err(),
            "an action cannot succeed without starting"
        );
        assert!(Pending.apply(Resume).is_err());
    }

    #[test]
    fn execution_transitions_and_names_round_trip() {
        use ExecutionEvent::*;
        use ExecutionStatus::*;
        assert_eq!(InProgress.apply(StopRequested), Ok(Stopping));
        assert_eq!(Stopping.apply(Stop), Ok(Stopped));
        assert!(Succeeded.apply(Retry).is_err(), "a succeeded execution is not retried");
        assert!(Superseded.apply(Fail).is_err());
        for s in [InProgress, Stopping, Stopped, Succeeded, Failed, Superseded] {
            assert_eq!(s.to_string().parse::<ExecutionStatus>(), Ok(s));
        }
        assert!(!Stopping.is_terminal() && Superseded.is_terminal());
    }
}
