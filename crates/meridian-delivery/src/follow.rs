//! Following a deployment that another system runs: CodeDeploy, to which CloudFormation hands an
//! alias under `CodeDeployLambdaAliasUpdate` when a template goes to AWS with its `Transform`
//! (a pipeline's `CHANGE_SET_REPLACE` then `CHANGE_SET_EXECUTE`). CodeDeploy moves the alias by
//! its own configuration and hooks; Meridian watches it (status, traffic on the new version, hook
//! results), judges the new version against the old one as it would its own shift, and stops the
//! deployment (CodeDeploy then puts the alias back) on a failing verdict or an operator's `abort`.
//!
//! Pure like [`crate::deployment`]: the driver passes what it saw ([`FollowEvent`]) with the
//! clock's reading and performs the [`FollowEffect`]s: look at the deployment, judge, stop it.
//!
//! ```
//! use meridian_delivery::follow::*;
//!
//! let mut f = Follow::new(FollowConfig::default());
//! assert!(f.apply(FollowEvent::Start, 0).contains(&FollowEffect::Look));
//! let look = Look { status: RemoteStatus::InProgress, new_version_percent: Some(10.0), ..Look::default() };
//! f.apply(FollowEvent::Looked(look), 1_000);
//! assert_eq!(f.new_version_percent(), 10.0);
//! let done = Look { status: RemoteStatus::Succeeded, new_version_percent: Some(100.0), ..Look::default() };
//! f.apply(FollowEvent::Looked(done), 2_000);
//! assert_eq!(f.state().name(), "Succeeded");
//! ```

use crate::judge::Verdict;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// A CodeDeploy deployment's status (`GetDeployment`'s `deploymentInfo.status`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub enum RemoteStatus {
    #[default]
    Created,
    Queued,
    InProgress,
    Baking,
    Ready,
    Succeeded,
    Failed,
    Stopped,
}

impl RemoteStatus {
    /// CodeDeploy's word for it; `None` for a word it does not use.
    pub fn parse(s: &str) -> Option<RemoteStatus> {
        Some(match s {
            "Created" => RemoteStatus::Created,
            "Queued" => RemoteStatus::Queued,
            "InProgress" => RemoteStatus::InProgress,
            "Baking" => RemoteStatus::Baking,
            "Ready" => RemoteStatus::Ready,
            "Succeeded" => RemoteStatus::Succeeded,
            "Failed" => RemoteStatus::Failed,
            "Stopped" => RemoteStatus::Stopped,
            _ => return None,
        })
    }

    pub fn is_terminal(self) -> bool {
        matches!(
            self,
            RemoteStatus::Succeeded | RemoteStatus::Failed | RemoteStatus::Stopped
        )
    }
}

/// One look at the deployment.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct Look {
    pub status: RemoteStatus,
    /// Share of the alias's traffic on the new version, when it could be read.
    pub new_version_percent: Option<f64>,
    /// Lifecycle hooks and their status (`BeforeAllowTraffic` -> `Succeeded`), as CodeDeploy
    /// reports them.
    pub hooks: BTreeMap<String, String>,
    /// CodeDeploy's error message (`errorInformation.message`) of a failed or stopped deployment.
    pub message: Option<String>,
}

/// How the follower looks and judges.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FollowConfig {
    /// How often to look at the deployment (CodeDeploy's API is throttled per account).
    pub look_every_ms: u64,
    /// Judge the new version against the old while traffic is on it, every `judge_every_ms`.
    pub judge: bool,
    pub judge_every_ms: u64,
    /// Looks that may fail in a row before the deployment is given up as unknown; each failure
    /// doubles the wait before the next look (up to a minute).
    pub max_failed_looks: u32,
    /// `StopDeployment` calls that may fail before the follower gives up stopping it.
    pub max_stop_attempts: u32,
}

impl Default for FollowConfig {
    fn default() -> Self {
        FollowConfig {
            look_every_ms: 5_000,
            judge: false,
            judge_every_ms: 60_000,
            max_failed_looks: 10,
            max_stop_attempts: 5,
        }
    }
}

/// What happened.
#[derive(Debug, Clone, PartialEq)]
pub enum FollowEvent {
    Start,
    Looked(Look),
    LookFailed {
        error: String,
    },
    /// The judge's answer to [`FollowEffect::Judge`].
    Verdict(Verdict),
    /// `StopDeployment` was accepted (the deployment is now stopping, its alias going back).
    StopAccepted,
    StopFailed {
        error: String,
    },
    /// The answer to [`FollowEffect::PutBack`]: `Ok` once the alias serves the old version.
    PutBack(Result<(), String>),
    /// Operator commands.
    Abort,
    Promote,
    Extend,
    /// The clock reached a time the follower asked for.
    Timer,
    /// The stack operation that started the deployment is over, and the deployment has not
    /// said how it ended: the follower stops with what it saw.
    Ended {
        why: String,
    },
}

/// What the driver must do.
#[derive(Debug, Clone, PartialEq)]
pub enum FollowEffect {
    /// A line for the deployment's record and the action's log.
    Record(String),
    /// Look at the deployment; answer with `Looked` or `LookFailed`.
    Look,
    /// Compare the new version with the old since `since_ms`; answer with `Verdict`.
    Judge { since_ms: i64 },
    /// `StopDeployment` with automatic rollback; answer with `StopAccepted` or `StopFailed`.
    Stop { reason: String },
    /// The deployment finished although the judge failed it: put the alias back on the old
    /// version (the stack still names the new one until its next deploy). Answer with
    /// `PutBack`.
    PutBack,
    /// Send `Timer` at this time.
    WakeAt(i64),
}

/// Where the followed deployment is.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "state")]
pub enum FollowState {
    /// Watching; `stopping` once Meridian asked CodeDeploy to stop it, and why.
    Following {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        stopping: Option<String>,
    },
    Succeeded,
    /// CodeDeploy failed or stopped it: the alias is back on the old version.
    RolledBack {
        reason: String,
    },
    /// It ended in a way that leaves the release wrong: the judge failed it but CodeDeploy
    /// finished it before it could be stopped.
    Failed {
        reason: String,
    },
    /// Meridian could not see how it ended.
    Unknown {
        reason: String,
    },
}

impl FollowState {
    /// The word `meridian deployments` shows.
    pub fn name(&self) -> &'static str {
        match self {
            FollowState::Following { stopping: None } => "InProgress",
            FollowState::Following { stopping: Some(_) } => "RollingBack",
            FollowState::Succeeded => "Succeeded",
            FollowState::RolledBack { .. } => "RolledBack",
            FollowState::Failed { .. } => "Failed",
            FollowState::Unknown { .. } => "Unknown",
        }
    }

    pub fn reason(&self) -> Option<&str> {
        match self {
            FollowState::Following { stopping } => stopping.as_deref(),
            FollowState::RolledBack { reason } | FollowState::Failed { reason } | FollowState::Unknown { reason } => {
                Some(reason)
            }
            FollowState::Succeeded => None,
        }
    }
}

/// The follower of one deployment.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Follow {
    config: FollowConfig,
    state: FollowState,
    status: Option<RemoteStatus>,
    percent: f64,
    hooks: BTreeMap<String, String>,
    /// When traffic first reached the new version: the judge's samples start there.
    traffic_since: Option<i64>,
    next_look: Option<i64>,
    next_judge: Option<i64>,
    judging: bool,
    failed_looks: u32,
    stop_attempts: u32,
    /// Waiting for the answer to a `Stop`.
    stop_pending: bool,
    /// CodeDeploy accepted a `Stop`: it is stopping, nothing more to send.
    #[serde(default)]
    stop_accepted: bool,
}

impl Follow {
    pub fn new(config: FollowConfig) -> Follow {
        Follow {
            config,
            state: FollowState::Following { stopping: None },
            status: None,
            percent: 0.0,
            hooks: BTreeMap::new(),
            traffic_since: None,
            next_look: None,
            next_judge: None,
            judging: false,
            failed_looks: 0,
            stop_attempts: 0,
            stop_pending: false,
            stop_accepted: false,
        }
    }

    pub fn state(&self) -> &FollowState {
        &self.state
    }

    /// The word `meridian deployments` shows: the state's, except that a deployment Meridian
    /// could not stop is `InProgress` (CodeDeploy goes on with it), not `RollingBack`.
    pub fn status_name(&self) -> &'static str {
        let gave_up =
            !self.stop_pending && !self.stop_accepted && self.stop_attempts >= self.config.max_stop_attempts.max(1);
        match self.state {
            FollowState::Following { stopping: Some(_) } if gave_up => "InProgress",
            ref s => s.name(),
        }
    }

    pub fn is_terminal(&self) -> bool {
        !matches!(self.state, FollowState::Following { .. })
    }

    /// Share of the alias's traffic on the new version, as last seen.
    pub fn new_version_percent(&self) -> f64 {
        self.percent
    }

    fn stopping(&self) -> Option<&str> {
        match &self.state {
            FollowState::Following { stopping } => stopping.as_deref(),
            _ => None,
        }
    }

    /// Applies what happened at `now` (epoch milliseconds); returns what to do. Events that
    /// come after the end are ignored.
    pub fn apply(&mut self, event: FollowEvent, now: i64) -> Vec<FollowEffect> {
        let mut out = Vec::new();
        if self.is_terminal() {
            return out;
        }
        match event {
            FollowEvent::Start => {
                out.push(FollowEffect::Look);
            }
            FollowEvent::Looked(look) => {
                self.failed_looks = 0;
                self.looked(look, now, &mut out);
            }
            FollowEvent::LookFailed { error } => {
                self.failed_looks += 1;
                if self.failed_looks >= self.config.max_failed_looks.max(1) {
                    let reason = format!(
                        "CodeDeploy could not be read {} times in a row (last: {error}); the deployment goes on without Meridian",
                        self.failed_looks
                    );
                    out.push(FollowEffect::Record(format!("given up: {reason}")));
                    self.unseen(reason);
                } else {
                    out.push(FollowEffect::Record(format!(
                        "could not look at the deployment: {error}"
                    )));
                    // Throttled or unreachable: wait longer each time.
                    let wait = (self.config.look_every_ms << self.failed_looks.min(6)).min(60_000);
                    self.look_at(now + wait as i64, &mut out);
                }
            }
            FollowEvent::Verdict(v) => {
                self.judging = false;
                match v {
                    Verdict::Pass => {
                        self.next_judge = Some(now + self.config.judge_every_ms as i64);
                        out.push(FollowEffect::WakeAt(now + self.config.judge_every_ms as i64));
                    }
                    Verdict::NeedMoreData { .. } => {
                        self.next_judge = Some(now + self.config.judge_every_ms as i64);
                        out.push(FollowEffect::WakeAt(now + self.config.judge_every_ms as i64));
                    }
                    Verdict::Fail { reasons } => {
                        self.stop(
                            format!("the judge failed the new version: {}", reasons.join("; ")),
                            &mut out,
                        );
                    }
                }
            }
            FollowEvent::StopAccepted => {
                self.stop_pending = false;
                self.stop_accepted = true;
                out.push(FollowEffect::Record(
                    "CodeDeploy accepted the stop: it puts the alias back on the old version".into(),
                ));
                self.schedule_look(now, &mut out);
            }
            FollowEvent::StopFailed { error } => {
                self.stop_pending = false;
                if self.stop_attempts >= self.config.max_stop_attempts.max(1) {
                    out.push(FollowEffect::Record(format!(
                        "could not stop the deployment after {} attempts (last: {error}): stop it with `aws deploy stop-deployment --auto-rollback-enabled`",
                        self.stop_attempts
                    )));
                } else {
                    out.push(FollowEffect::Record(format!(
                        "could not stop the deployment ({error}): trying again"
                    )));
                }
                self.schedule_look(now, &mut out);
            }
            FollowEvent::Abort => {
                out.push(FollowEffect::Record("operator: abort".into()));
                self.stop("the operator aborted it".into(), &mut out);
            }
            FollowEvent::Promote | FollowEvent::Extend => {
                out.push(FollowEffect::Record(
                    "CodeDeploy runs this deployment by its own configuration: promote and extend apply to Meridian's schedules only; abort stops it".into(),
                ));
            }
            FollowEvent::Timer => {
                if self.next_look.is_some_and(|t| t <= now) {
                    self.next_look = None;
                    out.push(FollowEffect::Look);
                }
                if self.next_judge.is_some_and(|t| t <= now) && !self.judging && self.stopping().is_none() {
                    self.next_judge = None;
                    self.judging = true;
                    out.push(FollowEffect::Judge {
                        since_ms: self.traffic_since.unwrap_or(now),
                    });
                }
            }
            FollowEvent::Ended { why } => {
                let reason = format!(
                    "{why}, while CodeDeploy still said {}",
                    self.status
                        .map(|s| format!("{s:?}"))
                        .unwrap_or_else(|| "nothing".into())
                );
                out.push(FollowEffect::Record(format!("no longer followed: {reason}")));
                self.unseen(reason);
            }
            FollowEvent::PutBack(result) => {
                let reason = self.state.reason().unwrap_or_default().to_string();
                let reason = match result {
                    Ok(()) => format!(
                        "{reason}; the alias is back on the old version, and the stack names the new one until its next deploy (or `meridian rollback`)"
                    ),
                    Err(e) => {
                        self.percent = 100.0;
                        format!("{reason}; the alias could not be put back on the old version ({e}): the new version serves all traffic")
                    }
                };
                out.push(FollowEffect::Record(reason.clone()));
                self.state = FollowState::Failed { reason };
            }
        }
        out
    }

    /// Ends unseen; if Meridian was stopping it, the judge's (or operator's) verdict stands.
    fn unseen(&mut self, reason: String) {
        self.state = match self.stopping() {
            Some(stopping) => FollowState::Failed {
                reason: format!("{stopping}; whether CodeDeploy stopped it is unknown ({reason})"),
            },
            None => FollowState::Unknown { reason },
        };
    }

    fn schedule_look(&mut self, now: i64, out: &mut Vec<FollowEffect>) {
        self.look_at(now + self.config.look_every_ms as i64, out);
    }

    fn look_at(&mut self, at: i64, out: &mut Vec<FollowEffect>) {
        if self.next_look.is_none_or(|t| t > at) {
            self.next_look = Some(at);
            out.push(FollowEffect::WakeAt(at));
        }
    }

    fn stop(&mut self, reason: String, out: &mut Vec<FollowEffect>) {
        if let FollowState::Following { stopping } = &mut self.state {
            if stopping.is_none() {
                out.push(FollowEffect::Record(format!("stopping the deployment: {reason}")));
                *stopping = Some(reason.clone());
            }
        }
        self.send_stop(reason, out);
    }

    /// Sends a stop unless one is in flight, was accepted, or the attempts are used up.
    fn send_stop(&mut self, reason: String, out: &mut Vec<FollowEffect>) {
        if !self.stop_pending && !self.stop_accepted && self.stop_attempts < self.config.max_stop_attempts.max(1) {
            self.stop_attempts += 1;
            self.stop_pending = true;
            out.push(FollowEffect::Stop { reason });
        }
    }

    fn looked(&mut self, look: Look, now: i64, out: &mut Vec<FollowEffect>) {
        if self.status != Some(look.status) {
            out.push(FollowEffect::Record(format!("CodeDeploy: {:?}", look.status)));
            self.status = Some(look.status);
        }
        for (hook, status) in &look.hooks {
            if self.hooks.get(hook) != Some(status) {
                out.push(FollowEffect::Record(format!("{hook} hook: {status}")));
                self.hooks.insert(hook.clone(), status.clone());
            }
        }
        if let Some(p) = look.new_version_percent {
            if p != self.percent {
                out.push(FollowEffect::Record(format!("{p}% on the new version")));
                self.percent = p;
            }
            if p > 0.0 && self.traffic_since.is_none() && !look.status.is_terminal() {
                self.traffic_since = Some(now);
                if self.config.judge {
                    self.next_judge = Some(now + self.config.judge_every_ms as i64);
                    out.push(FollowEffect::WakeAt(now + self.config.judge_every_ms as i64));
                }
            }
        }
        let message = look.message.clone().filter(|m| !m.is_empty());
        match (look.status, self.stopping().map(String::from)) {
            (RemoteStatus::Succeeded, None) => {
                self.percent = 100.0;
                self.state = FollowState::Succeeded;
            }
            (RemoteStatus::Succeeded, Some(reason)) => {
                // Still following (stopping): the put-back's answer ends it.
                self.percent = 0.0;
                let reason = format!("{reason}; CodeDeploy had finished the deployment before it could be stopped");
                out.push(FollowEffect::Record(reason.clone()));
                self.state = FollowState::Following { stopping: Some(reason) };
                out.push(FollowEffect::PutBack);
            }
            (RemoteStatus::Failed | RemoteStatus::Stopped, ours) => {
                self.percent = 0.0;
                let reason = match (ours, message) {
                    (Some(ours), _) => ours,
                    (None, Some(m)) => format!("CodeDeploy: {m}"),
                    (None, None) => format!("CodeDeploy: the deployment {:?}", look.status),
                };
                self.state = FollowState::RolledBack { reason };
            }
            (_, Some(reason)) => {
                // Still running after Meridian asked it to stop, and the stop failed: ask again.
                self.send_stop(reason, out);
                self.schedule_look(now, out);
            }
            (_, None) => self.schedule_look(now, out),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn look(status: RemoteStatus, p: f64) -> Look {
        Look {
            status,
            new_version_percent: Some(p),
            ..Look::default()
        }
    }

    fn judging() -> Follow {
        Follow::new(FollowConfig {
            judge: true,
            ..FollowConfig::default()
        })
    }

    #[test]
    fn a_canary_that_succeeds_is_recorded_step_by_step() {
        let mut f = Follow::new(FollowConfig::default());
        assert_eq!(f.apply(FollowEvent::Start, 0), vec![FollowEffect::Look]);
        let mut hooks = BTreeMap::new();
        hooks.insert("BeforeAllowTraffic".to_string(), "Succeeded".to_string());
        let out = f.apply(
            FollowEvent::Looked(Look {
                status: RemoteStatus::InProgress,
                new_version_percent: Some(10.0),
                hooks,
                message: None,
            }),
            1_000,
        );
        assert!(out.contains(&FollowEffect::Record("CodeDeploy: InProgress".into())));
        assert!(out.contains(&FollowEffect::Record("BeforeAllowTraffic hook: Succeeded".into())));
        assert!(out.contains(&FollowEffect::Record("10% on the new version".into())));
        assert!(out.contains(&FollowEffect::WakeAt(6_000)));
        // Nothing new: nothing said, the next look asked for.
        assert!(f.apply(FollowEvent::Timer, 3_000).is_empty());
        assert_eq!(f.apply(FollowEvent::Timer, 6_000), vec![FollowEffect::Look]);
        let out = f.apply(FollowEvent::Looked(look(RemoteStatus::InProgress, 10.0)), 6_100);
        assert_eq!(out, vec![FollowEffect::WakeAt(11_100)]);
        f.apply(FollowEvent::Looked(look(RemoteStatus::Succeeded, 100.0)), 12_000);
        assert_eq!(f.state(), &FollowState::Succeeded);
        assert_eq!(f.new_version_percent(), 100.0);
        // Over: later events change nothing.
        assert!(f.apply(FollowEvent::Abort, 13_000).is_empty());
        assert_eq!(f.state().name(), "Succeeded");
    }

    #[test]
    fn codedeploy_failing_it_is_a_rollback_with_its_message() {
        let mut f = Follow::new(FollowConfig::default());
        f.apply(FollowEvent::Start, 0);
        f.apply(FollowEvent::Looked(look(RemoteStatus::InProgress, 10.0)), 1_000);
        f.apply(
            FollowEvent::Looked(Look {
                status: RemoteStatus::Failed,
                new_version_percent: Some(0.0),
                message: Some("The deployment failed because one or more alarms were activated".into()),
                ..Look::default()
            }),
            2_000,
        );
        assert_eq!(
            f.state(),
            &FollowState::RolledBack {
                reason: "CodeDeploy: The deployment failed because one or more alarms were activated".into()
            }
        );
        assert_eq!(f.new_version_percent(), 0.0);
    }

    #[test]
    fn a_failing_verdict_stops_the_deployment_and_its_end_is_recorded_as_ours() {
        let mut f = judging();
        f.apply(FollowEvent::Start, 0);
        // No traffic on the new version yet: no judging.
        let out = f.apply(FollowEvent::Looked(look(RemoteStatus::InProgress, 0.0)), 1_000);
        assert!(!out.iter().any(|e| matches!(e, FollowEffect::WakeAt(61_000))));
        let out = f.apply(FollowEvent::Looked(look(RemoteStatus::InProgress, 10.0)), 6_000);
        assert!(out.contains(&FollowEffect::WakeAt(66_000)), "{out:?}");
        let out = f.apply(FollowEvent::Timer, 66_000);
        assert!(out.contains(&FollowEffect::Judge { since_ms: 6_000 }), "{out:?}");
        // Asked once at a time.
        f.apply(FollowEvent::Looked(look(RemoteStatus::InProgress, 10.0)), 66_500);
        assert!(!f
            .apply(FollowEvent::Timer, 70_000)
            .iter()
            .any(|e| matches!(e, FollowEffect::Judge { .. })));
        let out = f.apply(
            FollowEvent::Verdict(Verdict::Fail {
                reasons: vec!["error rate 40% vs 0%".into()],
            }),
            70_500,
        );
        let reason = "the judge failed the new version: error rate 40% vs 0%".to_string();
        assert!(out.contains(&FollowEffect::Stop { reason: reason.clone() }), "{out:?}");
        assert_eq!(f.state().name(), "RollingBack");
        f.apply(FollowEvent::StopAccepted, 71_000);
        f.apply(
            FollowEvent::Looked(Look {
                status: RemoteStatus::Stopped,
                new_version_percent: Some(0.0),
                message: Some("The deployment was stopped by the user".into()),
                ..Look::default()
            }),
            76_000,
        );
        assert_eq!(f.state(), &FollowState::RolledBack { reason });
    }

    #[test]
    fn passing_and_inconclusive_verdicts_judge_again_later() {
        let mut f = judging();
        f.apply(FollowEvent::Start, 0);
        f.apply(FollowEvent::Looked(look(RemoteStatus::InProgress, 10.0)), 0);
        assert!(f
            .apply(FollowEvent::Timer, 60_000)
            .contains(&FollowEffect::Judge { since_ms: 0 }));
        assert!(f
            .apply(FollowEvent::Verdict(Verdict::Pass), 60_100)
            .contains(&FollowEffect::WakeAt(120_100)));
        assert!(f
            .apply(FollowEvent::Timer, 120_100)
            .contains(&FollowEffect::Judge { since_ms: 0 }));
        f.apply(
            FollowEvent::Verdict(Verdict::NeedMoreData {
                reason: "3 invocations".into(),
            }),
            120_200,
        );
        assert_eq!(f.state().name(), "InProgress");
    }

    #[test]
    fn a_deployment_that_finishes_before_the_stop_is_a_failure() {
        let mut f = judging();
        f.apply(FollowEvent::Start, 0);
        f.apply(FollowEvent::Looked(look(RemoteStatus::InProgress, 10.0)), 0);
        f.apply(FollowEvent::Timer, 60_000);
        f.apply(
            FollowEvent::Verdict(Verdict::Fail {
                reasons: vec!["p99".into()],
            }),
            60_000,
        );
        f.apply(
            FollowEvent::StopFailed {
                error: "DeploymentAlreadyCompletedException".into(),
            },
            60_100,
        );
        let out = f.apply(FollowEvent::Looked(look(RemoteStatus::Succeeded, 100.0)), 61_000);
        // The alias is put back by Meridian: the judge's verdict stands.
        assert!(out.contains(&FollowEffect::PutBack), "{out:?}");
        assert!(!f.is_terminal());
        f.apply(FollowEvent::PutBack(Ok(())), 61_100);
        match f.state() {
            FollowState::Failed { reason } => assert!(
                reason.contains("before it could be stopped")
                    && reason.contains("the alias is back on the old version"),
                "{reason}"
            ),
            s => panic!("{s:?}"),
        }
        assert_eq!(f.new_version_percent(), 0.0);
    }

    #[test]
    fn an_alias_that_cannot_be_put_back_is_said_to_serve_the_new_version() {
        let mut f = Follow::new(FollowConfig::default());
        f.apply(FollowEvent::Start, 0);
        f.apply(FollowEvent::Abort, 1);
        f.apply(FollowEvent::StopFailed { error: "x".into() }, 2);
        f.apply(FollowEvent::Looked(look(RemoteStatus::Succeeded, 100.0)), 3);
        f.apply(FollowEvent::PutBack(Err("AccessDenied".into())), 4);
        assert_eq!(f.state().name(), "Failed");
        assert!(f
            .state()
            .reason()
            .unwrap()
            .contains("the new version serves all traffic"));
        assert_eq!(f.new_version_percent(), 100.0);
    }

    #[test]
    fn an_accepted_stop_is_not_sent_again_while_codedeploy_rolls_back() {
        let mut f = judging();
        f.apply(FollowEvent::Start, 0);
        f.apply(FollowEvent::Looked(look(RemoteStatus::InProgress, 10.0)), 0);
        f.apply(FollowEvent::Timer, 60_000);
        let out = f.apply(
            FollowEvent::Verdict(Verdict::Fail {
                reasons: vec!["errors".into()],
            }),
            60_000,
        );
        assert_eq!(out.iter().filter(|e| matches!(e, FollowEffect::Stop { .. })).count(), 1);
        f.apply(FollowEvent::StopAccepted, 60_100);
        // CodeDeploy says InProgress a while longer, and the operator aborts too: no second stop.
        let mut later = f.apply(FollowEvent::Looked(look(RemoteStatus::InProgress, 10.0)), 65_100);
        later.extend(f.apply(FollowEvent::Abort, 65_200));
        assert!(
            !later.iter().any(|e| matches!(e, FollowEffect::Stop { .. })),
            "{later:?}"
        );
        f.apply(FollowEvent::Looked(look(RemoteStatus::Stopped, 0.0)), 70_100);
        assert_eq!(f.state().name(), "RolledBack");
    }

    #[test]
    fn losing_sight_while_stopping_keeps_the_verdict() {
        for lose in [
            FollowEvent::Ended {
                why: "the stack ended UPDATE_COMPLETE".into(),
            },
            FollowEvent::LookFailed { error: "x".into() },
        ] {
            let mut f = Follow::new(FollowConfig {
                max_failed_looks: 1,
                ..FollowConfig::default()
            });
            f.apply(FollowEvent::Start, 0);
            f.apply(FollowEvent::Abort, 1);
            f.apply(
                FollowEvent::StopFailed {
                    error: "throttled".into(),
                },
                2,
            );
            f.apply(lose, 3);
            assert_eq!(f.state().name(), "Failed", "{:?}", f.state());
            assert!(f
                .state()
                .reason()
                .unwrap()
                .starts_with("the operator aborted it; whether CodeDeploy stopped it is unknown"));
        }
    }

    #[test]
    fn a_refused_stop_is_tried_again_at_each_look_then_given_up_with_the_command_to_run() {
        let mut f = Follow::new(FollowConfig {
            max_stop_attempts: 2,
            ..FollowConfig::default()
        });
        f.apply(FollowEvent::Start, 0);
        let out = f.apply(FollowEvent::Abort, 100);
        assert!(out.iter().any(|e| matches!(e, FollowEffect::Stop { .. })));
        f.apply(
            FollowEvent::StopFailed {
                error: "throttled".into(),
            },
            200,
        );
        let out = f.apply(FollowEvent::Looked(look(RemoteStatus::InProgress, 10.0)), 5_200);
        assert!(out.iter().any(|e| matches!(e, FollowEffect::Stop { .. })), "{out:?}");
        let out = f.apply(
            FollowEvent::StopFailed {
                error: "throttled".into(),
            },
            5_300,
        );
        assert!(
            out.iter()
                .any(|e| matches!(e, FollowEffect::Record(l) if l.contains("aws deploy stop-deployment"))),
            "{out:?}"
        );
        let out = f.apply(FollowEvent::Looked(look(RemoteStatus::InProgress, 10.0)), 10_300);
        assert!(!out.iter().any(|e| matches!(e, FollowEffect::Stop { .. })), "{out:?}");
        // CodeDeploy goes on with it: shown in progress, the reason kept for its end.
        assert_eq!(f.status_name(), "InProgress");
        assert_eq!(f.state().reason(), Some("the operator aborted it"));
    }

    #[test]
    fn promote_and_extend_are_refused_with_why() {
        let mut f = Follow::new(FollowConfig::default());
        f.apply(FollowEvent::Start, 0);
        for ev in [FollowEvent::Promote, FollowEvent::Extend] {
            let out = f.apply(ev, 10);
            assert!(
                matches!(&out[..], [FollowEffect::Record(l)] if l.contains("abort stops it")),
                "{out:?}"
            );
        }
        assert_eq!(f.state().name(), "InProgress");
    }

    #[test]
    fn looks_failing_in_a_row_back_off_then_give_up_as_unknown_and_one_success_resets_the_count() {
        let mut f = Follow::new(FollowConfig {
            max_failed_looks: 2,
            ..FollowConfig::default()
        });
        f.apply(FollowEvent::Start, 0);
        // twice the usual 5 s before the next look
        assert!(f
            .apply(FollowEvent::LookFailed { error: "x".into() }, 1)
            .contains(&FollowEffect::WakeAt(10_001)));
        f.apply(FollowEvent::Looked(look(RemoteStatus::InProgress, 0.0)), 2);
        f.apply(FollowEvent::LookFailed { error: "x".into() }, 3);
        assert_eq!(f.state().name(), "InProgress");
        f.apply(
            FollowEvent::LookFailed {
                error: "AccessDenied".into(),
            },
            4,
        );
        assert_eq!(f.state().name(), "Unknown");
        assert!(f.state().reason().unwrap().contains("AccessDenied"));
    }

    #[test]
    fn the_stack_ending_first_leaves_it_unknown_with_the_last_status() {
        let mut f = Follow::new(FollowConfig::default());
        f.apply(FollowEvent::Start, 0);
        f.apply(FollowEvent::Looked(look(RemoteStatus::Created, 0.0)), 1);
        f.apply(
            FollowEvent::Ended {
                why: "the stack update ended".into(),
            },
            2,
        );
        assert_eq!(
            f.state(),
            &FollowState::Unknown {
                reason: "the stack update ended, while CodeDeploy still said Created".into()
            }
        );
    }

    #[test]
    fn the_state_survives_serialization() {
        let mut f = judging();
        f.apply(FollowEvent::Start, 0);
        f.apply(FollowEvent::Looked(look(RemoteStatus::InProgress, 10.0)), 0);
        f.apply(FollowEvent::Abort, 1);
        let back: Follow = serde_json::from_str(&serde_json::to_string(&f).unwrap()).unwrap();
        assert_eq!(serde_json::to_value(&back).unwrap(), serde_json::to_value(&f).unwrap());
        assert_eq!(back.state().name(), "RollingBack");
        assert_eq!(back.new_version_percent(), 10.0);
    }
}
