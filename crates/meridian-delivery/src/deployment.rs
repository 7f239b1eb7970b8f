//! The state machine of one region's deployment of one Lambda alias.
//!
//! A [`Deployment`] moves an alias from the old version to the new one along a
//! [`TrafficSchedule`], CodeDeploy-style: an optional pre-traffic hook, then for each step set
//! the weights, wait for the driver to confirm them, bake, optionally ask for a health verdict
//! (the [`judge`](mod@crate::judge)), then the next step; at 100% an optional post-traffic hook.
//! Any alarm going to `Alarm`, a failed hook, a failed verdict or an operator's `Abort` rolls
//! back.
//!
//! It is pure: [`Deployment::apply`] takes an [`Event`] and the clock's reading and returns
//! [`Effect`]s as data for a driver to perform (`SetWeights`, `InvokeHook`, `WakeAt`, ...). Every
//! legal transition is one arm of the `match` in `apply`; anything else is an
//! [`IllegalTransition`] and leaves the deployment unchanged.
//!
//! Rules worth knowing:
//!
//! - **Weights only move forward** (strictly increasing schedule steps); the only way down is
//!   [`Effect::Rollback`], which puts all traffic back on the old version. Every terminal state
//!   is fully new ([`DeploymentState::Succeeded`], 100%) or fully old
//!   ([`DeploymentState::RolledBack`] after traffic moved, [`DeploymentState::Failed`] when it
//!   never did). A failed rollback is retried ([`Event::RollbackFailed`]), never abandoned.
//! - **Time**: every nominal duration (bakes, hook timeout, judge intervals, `Extend`) is
//!   divided by `time_scale`; `now` is always the real clock. Hooks that never report fail at
//!   their deadline (default one hour).
//! - **Observations** ([`Event::Timer`], [`Event::AlarmStateChanged`]) are legal in every state,
//!   since a wake-up or an alarm may arrive late: a timer that is not due does nothing, and in a
//!   terminal state both are ignored. Commands and replies are legal only where expected.
//! - **Judge**: with [`JudgePolicy`] set, the end of each non-final bake asks for a verdict
//!   ([`Effect::EvaluateHealth`]). `NeedMoreData` keeps baking for `recheck_ms` and asks again,
//!   for at most `max_wait_ms`; then `on_inconclusive` decides (roll back by default, so low
//!   traffic never promotes an unproven release).
//! - `Promote` goes to 100% now (skipping remaining bakes and verdicts, not hooks); `Extend`
//!   lengthens the current bake (or starts another one while a verdict is awaited); `Abort`
//!   rolls back (or fails, before any traffic moved).
//! - **Restart**: the deployment is `Serialize`/`Deserialize`; after loading, the driver calls
//!   [`Deployment::resume_effects`] for what must be (re)issued and carries on.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::alarm::AlarmState;
use crate::judge::Verdict;
use crate::schedule::{scale_ms, ScheduleError, TrafficSchedule};

/// Default time a hook has to report: one hour (nominal, divided by the time scale).
pub const DEFAULT_HOOK_TIMEOUT_MS: u64 = 3_600_000;

/// Which lifecycle hook.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum HookKind {
    /// `BeforeAllowTraffic`: runs before the new version gets any traffic.
    PreTraffic,
    /// `AfterAllowTraffic`: runs once the new version has all traffic.
    PostTraffic,
}

/// What to do when the judge still lacks data after `max_wait_ms`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub enum InconclusivePolicy {
    /// Roll back: an unproven release does not go further (default).
    #[default]
    Rollback,
    /// Go on to the next step, relying on alarms.
    Proceed,
}

/// How verdicts are asked for. Durations are nominal (divided by the time scale).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct JudgePolicy {
    /// After `NeedMoreData`, bake this long before asking again (default 1 minute).
    pub recheck_ms: u64,
    /// How long past a step's bake to keep waiting for conclusive data (default 30 minutes).
    pub max_wait_ms: u64,
    /// What to do then.
    pub on_inconclusive: InconclusivePolicy,
    /// How long the driver has to answer an `EvaluateHealth` (default 10 minutes).
    pub verdict_timeout_ms: u64,
}

impl Default for JudgePolicy {
    fn default() -> Self {
        JudgePolicy {
            recheck_ms: 60_000,
            max_wait_ms: 30 * 60_000,
            on_inconclusive: InconclusivePolicy::Rollback,
            verdict_timeout_ms: 10 * 60_000,
        }
    }
}

/// What to deploy and how.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DeploymentConfig {
    /// The function whose alias moves.
    pub function: String,
    /// The alias.
    pub alias: String,
    /// The traffic schedule (nominal bakes).
    pub schedule: TrafficSchedule,
    /// Function invoked before any traffic moves (`BeforeAllowTraffic`).
    pub pre_traffic_hook: Option<String>,
    /// Function invoked once all traffic has moved (`AfterAllowTraffic`).
    pub post_traffic_hook: Option<String>,
    /// How long a hook has to report (nominal; default one hour).
    pub hook_timeout_ms: u64,
    /// Divides every nominal duration (1 = real time, 60 = a minute per second).
    pub time_scale: f64,
    /// Ask for a verdict at the end of each non-final bake.
    pub judge: Option<JudgePolicy>,
}

impl DeploymentConfig {
    /// A configuration with no hooks, no judge, real time and the default hook timeout.
    pub fn new(function: impl Into<String>, alias: impl Into<String>, schedule: TrafficSchedule) -> Self {
        DeploymentConfig {
            function: function.into(),
            alias: alias.into(),
            schedule,
            pre_traffic_hook: None,
            post_traffic_hook: None,
            hook_timeout_ms: DEFAULT_HOOK_TIMEOUT_MS,
            time_scale: 1.0,
            judge: None,
        }
    }
}

/// Where a deployment is.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum DeploymentState {
    /// Created, not started.
    Pending,
    /// The pre-traffic hook runs; it must report by `deadline_ms`.
    PreTrafficHook {
        /// When the hook is considered failed.
        deadline_ms: i64,
    },
    /// Weights for `step` were requested at `since_ms`; waiting for the driver to confirm.
    Shifting {
        /// Index into the schedule.
        step: usize,
        /// When the weights were requested.
        since_ms: i64,
    },
    /// Step `step` is live since `since_ms`; bake until `until_ms`.
    Baking {
        /// Index into the schedule.
        step: usize,
        /// When the step's weights were confirmed.
        since_ms: i64,
        /// When the bake ends.
        until_ms: i64,
        /// When the judge first said `NeedMoreData` for this step, if it did.
        inconclusive_since_ms: Option<i64>,
    },
    /// Bake over, a verdict was asked for; it must come by `deadline_ms`.
    Judging {
        /// Index into the schedule.
        step: usize,
        /// When the step's weights were confirmed.
        since_ms: i64,
        /// When a missing verdict rolls back.
        deadline_ms: i64,
        /// When the judge first said `NeedMoreData` for this step, if it did.
        inconclusive_since_ms: Option<i64>,
    },
    /// All traffic on the new version; the post-traffic hook runs until `deadline_ms`.
    PostTrafficHook {
        /// When the hook is considered failed.
        deadline_ms: i64,
    },
    /// Done: the new version has all traffic.
    Succeeded {
        /// When.
        at_ms: i64,
    },
    /// Putting all traffic back on the old version.
    RollingBack {
        /// Why.
        reason: String,
        /// Rollback attempts so far (the current one included).
        attempts: u32,
    },
    /// Done: the old version has all traffic again.
    RolledBack {
        /// Why it was rolled back.
        reason: String,
    },
    /// Done before any traffic moved (pre-traffic hook failed, alarm or abort before shifting):
    /// the old version never lost traffic.
    Failed {
        /// Why.
        reason: String,
    },
}

impl DeploymentState {
    /// The variant's name, for messages.
    pub fn name(&self) -> &'static str {
        match self {
            Self::Pending => "Pending",
            Self::PreTrafficHook { .. } => "PreTrafficHook",
            Self::Shifting { .. } => "Shifting",
            Self::Baking { .. } => "Baking",
            Self::Judging { .. } => "Judging",
            Self::PostTrafficHook { .. } => "PostTrafficHook",
            Self::Succeeded { .. } => "Succeeded",
            Self::RollingBack { .. } => "RollingBack",
            Self::RolledBack { .. } => "RolledBack",
            Self::Failed { .. } => "Failed",
        }
    }

    /// Whether nothing more will happen.
    pub fn is_terminal(&self) -> bool {
        matches!(
            self,
            Self::Succeeded { .. } | Self::RolledBack { .. } | Self::Failed { .. }
        )
    }
}

/// What happened, as told to [`Deployment::apply`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Event {
    /// Begin.
    Start,
    /// A hook reported its result.
    HookReported {
        /// Which hook.
        hook: HookKind,
        /// Whether it succeeded.
        succeeded: bool,
    },
    /// The driver applied a `SetWeights`.
    TrafficShifted {
        /// The weight applied (must be the one requested).
        new_version_percent: f64,
    },
    /// The driver could not apply a `SetWeights`.
    ShiftFailed {
        /// Why.
        error: String,
    },
    /// A `WakeAt` fired (its time).
    Timer(i64),
    /// An alarm watching the deployment changed state.
    AlarmStateChanged {
        /// The alarm's name.
        alarm: String,
        /// Its new state.
        state: AlarmState,
    },
    /// The answer to `EvaluateHealth`.
    Verdict(Verdict),
    /// Operator: go to 100% now.
    Promote,
    /// Operator: bake longer (nominal milliseconds).
    Extend {
        /// How much longer.
        by_ms: u64,
    },
    /// Operator: stop and roll back.
    Abort,
    /// The driver finished a `Rollback`.
    RollbackDone,
    /// The driver could not finish a `Rollback`; it is retried.
    RollbackFailed {
        /// Why.
        error: String,
    },
}

impl Event {
    /// The variant's name, for messages.
    pub fn name(&self) -> &'static str {
        match self {
            Self::Start => "Start",
            Self::HookReported { .. } => "HookReported",
            Self::TrafficShifted { .. } => "TrafficShifted",
            Self::ShiftFailed { .. } => "ShiftFailed",
            Self::Timer(_) => "Timer",
            Self::AlarmStateChanged { .. } => "AlarmStateChanged",
            Self::Verdict(_) => "Verdict",
            Self::Promote => "Promote",
            Self::Extend { .. } => "Extend",
            Self::Abort => "Abort",
            Self::RollbackDone => "RollbackDone",
            Self::RollbackFailed { .. } => "RollbackFailed",
        }
    }
}

/// What the driver must do, in order.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Effect {
    /// Invoke a hook function; it reports with `HookReported` (or fails at `deadline_ms`).
    InvokeHook {
        /// Which hook.
        hook: HookKind,
        /// The hook function.
        function: String,
        /// When it is considered failed.
        deadline_ms: i64,
    },
    /// Route this share of the alias's traffic to the new version; report `TrafficShifted`.
    SetWeights {
        /// Percentage on the new version.
        new_version_percent: f64,
    },
    /// Send `Timer` at (or after) this instant.
    WakeAt(i64),
    /// Judge the new version against the old over `[since_ms, now)`; report `Verdict`.
    EvaluateHealth {
        /// The step just baked.
        step: usize,
        /// When the new version first got traffic in this deployment.
        since_ms: i64,
        /// Its current share.
        new_version_percent: f64,
    },
    /// Put all traffic back on the old version; report `RollbackDone` or `RollbackFailed`.
    Rollback,
    /// A line for the journal.
    Record(String),
}

/// An event that is not legal in the current state. The deployment is unchanged.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, Serialize, Deserialize)]
#[error("failed to apply {event} to the deployment of {alias} in state {state}: {detail}")]
pub struct IllegalTransition {
    /// `function:alias`.
    pub alias: String,
    /// The state's name.
    pub state: String,
    /// The event's name.
    pub event: String,
    /// Why it is refused.
    pub detail: String,
}

/// One region's deployment of one alias. See the module documentation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Deployment {
    config: DeploymentConfig,
    state: DeploymentState,
    /// Last known state of every alarm reported.
    alarms: BTreeMap<String, AlarmState>,
    /// When the new version first got traffic.
    traffic_since_ms: Option<i64>,
}

type Outcome = (DeploymentState, Vec<Effect>);

impl Deployment {
    /// A pending deployment. Fails if the schedule breaks its invariants.
    pub fn new(config: DeploymentConfig) -> Result<Deployment, ScheduleError> {
        TrafficSchedule::from_steps(config.schedule.steps.clone())?;
        Ok(Deployment {
            config,
            state: DeploymentState::Pending,
            alarms: BTreeMap::new(),
            traffic_since_ms: None,
        })
    }

    /// The configuration.
    pub fn config(&self) -> &DeploymentConfig {
        &self.config
    }

    /// The current state.
    pub fn state(&self) -> &DeploymentState {
        &self.state
    }

    /// Last known state of each alarm reported.
    pub fn alarms(&self) -> &BTreeMap<String, AlarmState> {
        &self.alarms
    }

    /// Whether the deployment is over.
    pub fn is_terminal(&self) -> bool {
        self.state.is_terminal()
    }

    /// The share of traffic the deployment wants on the new version now: the current step's
    /// while shifting, baking or judging, 100 from the post-traffic hook on, 0 before any shift
    /// and from the start of a rollback.
    pub fn new_version_percent(&self) -> f64 {
        match &self.state {
            DeploymentState::Shifting { step, .. }
            | DeploymentState::Baking { step, .. }
            | DeploymentState::Judging { step, .. } => self.percent(*step),
            DeploymentState::PostTrafficHook { .. } | DeploymentState::Succeeded { .. } => 100.0,
            DeploymentState::Pending
            | DeploymentState::PreTrafficHook { .. }
            | DeploymentState::RollingBack { .. }
            | DeploymentState::RolledBack { .. }
            | DeploymentState::Failed { .. } => 0.0,
        }
    }

    /// What a driver must (re)issue after loading this deployment from its journal: the
    /// requests whose answer the state is waiting for. Hooks are not invoked again (they need
    /// not be idempotent); a lost invocation fails at its deadline.
    pub fn resume_effects(&self) -> Vec<Effect> {
        match &self.state {
            DeploymentState::Pending
            | DeploymentState::Succeeded { .. }
            | DeploymentState::RolledBack { .. }
            | DeploymentState::Failed { .. } => vec![],
            DeploymentState::PreTrafficHook { deadline_ms } | DeploymentState::PostTrafficHook { deadline_ms } => {
                vec![Effect::WakeAt(*deadline_ms)]
            }
            DeploymentState::Shifting { step, .. } => vec![Effect::SetWeights {
                new_version_percent: self.percent(*step),
            }],
            DeploymentState::Baking { until_ms, .. } => vec![Effect::WakeAt(*until_ms)],
            DeploymentState::Judging {
                step,
                since_ms,
                deadline_ms,
                ..
            } => vec![self.evaluate_health(*step, *since_ms), Effect::WakeAt(*deadline_ms)],
            DeploymentState::RollingBack { .. } => vec![Effect::Rollback],
        }
    }

    /// Applies `event` at `now_ms` and returns the effects to perform, or refuses it.
    pub fn apply(&mut self, event: Event, now_ms: i64) -> Result<Vec<Effect>, IllegalTransition> {
        use DeploymentState as S;
        use Event as E;

        let last = self.config.schedule.steps.len() - 1;
        let event_name = event.name();
        let mut traffic_since = self.traffic_since_ms;
        let mut alarm_update = None;
        let illegal = |detail: &str| -> Result<Vec<Effect>, IllegalTransition> {
            Err(IllegalTransition {
                alias: format!("{}:{}", self.config.function, self.config.alias),
                state: self.state.name().to_string(),
                event: event_name.to_string(),
                detail: detail.to_string(),
            })
        };

        // Every legal transition. `None` keeps the state; an `Err` changes nothing.
        let (next, effects): (Option<S>, Vec<Effect>) = match (&self.state, event) {
            // Observations are always legal; after the end they are ignored.
            (s, E::Timer(_) | E::AlarmStateChanged { .. }) if s.is_terminal() => (None, vec![]),

            (_, E::AlarmStateChanged { alarm, state }) => {
                alarm_update = Some((alarm.clone(), state));
                let note = Effect::Record(format!("alarm {alarm} is {state:?}"));
                if state != AlarmState::Alarm {
                    (None, vec![note])
                } else {
                    match &self.state {
                        S::Pending | S::RollingBack { .. } => (None, vec![note]),
                        S::PreTrafficHook { .. } => {
                            let (s, fx) = self.fail(format!("alarm {alarm} went to ALARM before traffic moved"));
                            (Some(s), prepend(note, fx))
                        }
                        _ => {
                            let (s, fx) = self.rollback(format!("alarm {alarm} went to ALARM"));
                            (Some(s), prepend(note, fx))
                        }
                    }
                }
            }

            (S::Pending, E::Start) => {
                if let Some(name) = self
                    .alarms
                    .iter()
                    .find(|(_, s)| **s == AlarmState::Alarm)
                    .map(|(n, _)| n)
                {
                    let (s, fx) = self.fail(format!("alarm {name} is in ALARM; not starting"));
                    (Some(s), fx)
                } else if let Some(hook) = &self.config.pre_traffic_hook {
                    let deadline_ms = now_ms.saturating_add(self.scaled(self.config.hook_timeout_ms));
                    (
                        Some(S::PreTrafficHook { deadline_ms }),
                        vec![
                            Effect::Record(format!("started; invoking pre-traffic hook {hook}")),
                            Effect::InvokeHook {
                                hook: HookKind::PreTraffic,
                                function: hook.clone(),
                                deadline_ms,
                            },
                            Effect::WakeAt(deadline_ms),
                        ],
                    )
                } else {
                    let (s, fx) = self.begin_shift(0, now_ms);
                    (Some(s), prepend(Effect::Record("started".into()), fx))
                }
            }
            (S::Pending | S::PreTrafficHook { .. }, E::Abort) => {
                let (s, fx) = self.fail("aborted by the operator before traffic moved".into());
                (Some(s), fx)
            }

            (
                S::PreTrafficHook { .. },
                E::HookReported {
                    hook: HookKind::PreTraffic,
                    succeeded: true,
                },
            ) => {
                let (s, fx) = self.begin_shift(0, now_ms);
                (
                    Some(s),
                    prepend(Effect::Record("pre-traffic hook succeeded".into()), fx),
                )
            }
            (
                S::PreTrafficHook { .. },
                E::HookReported {
                    hook: HookKind::PreTraffic,
                    succeeded: false,
                },
            ) => {
                let (s, fx) = self.fail("the pre-traffic hook reported a failure".into());
                (Some(s), fx)
            }
            (S::PreTrafficHook { deadline_ms }, E::Timer(at)) => {
                if now_ms.max(at) >= *deadline_ms {
                    let (s, fx) = self.fail(format!(
                        "the pre-traffic hook did not report within {} ms",
                        self.scaled(self.config.hook_timeout_ms)
                    ));
                    (Some(s), fx)
                } else {
                    (None, vec![])
                }
            }

            (S::Shifting { step, .. }, E::TrafficShifted { new_version_percent: p }) => {
                let target = self.percent(*step);
                if p == target {
                    traffic_since.get_or_insert(now_ms);
                    let (s, fx) = self.enter_bake(*step, now_ms, traffic_since.unwrap_or(now_ms));
                    (Some(s), prepend(Effect::Record(format!("{p}% on the new version")), fx))
                } else if p < target {
                    // The answer to an earlier request overtaken by `Promote`.
                    (
                        None,
                        vec![Effect::Record(format!(
                            "ignored confirmation of {p}%: waiting for {target}%"
                        ))],
                    )
                } else {
                    return illegal(&format!("confirmed {p}% but {target}% was requested"));
                }
            }
            (S::Shifting { step, .. }, E::ShiftFailed { error }) => {
                let (s, fx) = self.rollback(format!(
                    "could not set {}% on the new version: {error}",
                    self.percent(*step)
                ));
                (Some(s), fx)
            }
            (S::Shifting { step, .. }, E::Promote) if *step == last => {
                (None, vec![Effect::Record("promote: already moving to 100%".into())])
            }
            (S::Shifting { .. } | S::Baking { .. } | S::Judging { .. }, E::Promote) => {
                let (s, fx) = self.begin_shift(last, now_ms);
                (
                    Some(s),
                    prepend(Effect::Record("promoted by the operator: 100% now".into()), fx),
                )
            }
            (S::Shifting { .. }, E::Timer(_)) => (None, vec![]),

            (
                S::Baking {
                    step,
                    since_ms,
                    until_ms,
                    inconclusive_since_ms,
                },
                E::Timer(at),
            ) => {
                if now_ms.max(at) >= *until_ms {
                    let since = traffic_since.unwrap_or(*since_ms);
                    let (s, fx) = self.after_bake(*step, *since_ms, since, now_ms, *inconclusive_since_ms);
                    (Some(s), fx)
                } else {
                    (None, vec![])
                }
            }
            (
                S::Baking {
                    step,
                    since_ms,
                    until_ms,
                    inconclusive_since_ms,
                },
                E::Extend { by_ms },
            ) => {
                let until_ms = until_ms.saturating_add(self.scaled(by_ms));
                (
                    Some(S::Baking {
                        step: *step,
                        since_ms: *since_ms,
                        until_ms,
                        inconclusive_since_ms: *inconclusive_since_ms,
                    }),
                    vec![
                        Effect::Record(format!("bake extended by the operator until {until_ms}")),
                        Effect::WakeAt(until_ms),
                    ],
                )
            }

            (
                S::Judging {
                    step,
                    since_ms,
                    inconclusive_since_ms,
                    ..
                },
                E::Verdict(verdict),
            ) => match verdict {
                Verdict::Pass => {
                    let (s, fx) = self.advance(*step, now_ms);
                    (Some(s), prepend(Effect::Record("verdict: pass".into()), fx))
                }
                Verdict::Fail { reasons } => {
                    let (s, fx) = self.rollback(format!("the judge failed the new version: {}", reasons.join("; ")));
                    (Some(s), fx)
                }
                Verdict::NeedMoreData { reason } => {
                    let policy = self.config.judge.clone().unwrap_or_default();
                    let first = inconclusive_since_ms.unwrap_or(now_ms);
                    let waited = now_ms.saturating_sub(first);
                    if waited >= self.scaled(policy.max_wait_ms) {
                        match policy.on_inconclusive {
                            InconclusivePolicy::Rollback => {
                                let (s, fx) = self.rollback(format!(
                                    "not enough data to judge the new version after waiting {waited} ms: {reason}"
                                ));
                                (Some(s), fx)
                            }
                            InconclusivePolicy::Proceed => {
                                let (s, fx) = self.advance(*step, now_ms);
                                (
                                    Some(s),
                                    prepend(
                                        Effect::Record(format!("verdict still inconclusive, proceeding: {reason}")),
                                        fx,
                                    ),
                                )
                            }
                        }
                    } else {
                        let until_ms = now_ms.saturating_add(self.scaled(policy.recheck_ms).max(1));
                        (
                            Some(S::Baking {
                                step: *step,
                                since_ms: *since_ms,
                                until_ms,
                                inconclusive_since_ms: Some(first),
                            }),
                            vec![
                                Effect::Record(format!("verdict: need more data ({reason}); baking on")),
                                Effect::WakeAt(until_ms),
                            ],
                        )
                    }
                }
            },
            (S::Judging { deadline_ms, .. }, E::Timer(at)) => {
                if now_ms.max(at) >= *deadline_ms {
                    let (s, fx) = self.rollback("no health verdict arrived before its deadline".into());
                    (Some(s), fx)
                } else {
                    (None, vec![])
                }
            }
            (
                S::Judging {
                    step,
                    since_ms,
                    inconclusive_since_ms,
                    ..
                },
                E::Extend { by_ms },
            ) => {
                let until_ms = now_ms.saturating_add(self.scaled(by_ms));
                (
                    Some(S::Baking {
                        step: *step,
                        since_ms: *since_ms,
                        until_ms,
                        inconclusive_since_ms: *inconclusive_since_ms,
                    }),
                    vec![
                        Effect::Record(format!(
                            "bake extended by the operator until {until_ms}; the pending verdict is dropped"
                        )),
                        Effect::WakeAt(until_ms),
                    ],
                )
            }

            (
                S::PostTrafficHook { .. },
                E::HookReported {
                    hook: HookKind::PostTraffic,
                    succeeded: true,
                },
            ) => (
                Some(S::Succeeded { at_ms: now_ms }),
                vec![Effect::Record(
                    "post-traffic hook succeeded; deployment succeeded".into(),
                )],
            ),
            (
                S::PostTrafficHook { .. },
                E::HookReported {
                    hook: HookKind::PostTraffic,
                    succeeded: false,
                },
            ) => {
                let (s, fx) = self.rollback("the post-traffic hook reported a failure".into());
                (Some(s), fx)
            }
            (S::PostTrafficHook { deadline_ms }, E::Timer(at)) => {
                if now_ms.max(at) >= *deadline_ms {
                    let (s, fx) = self.rollback(format!(
                        "the post-traffic hook did not report within {} ms",
                        self.scaled(self.config.hook_timeout_ms)
                    ));
                    (Some(s), fx)
                } else {
                    (None, vec![])
                }
            }

            (S::Shifting { .. } | S::Baking { .. } | S::Judging { .. } | S::PostTrafficHook { .. }, E::Abort) => {
                let (s, fx) = self.rollback("aborted by the operator".into());
                (Some(s), fx)
            }

            (S::RollingBack { reason, .. }, E::RollbackDone) => (
                Some(S::RolledBack { reason: reason.clone() }),
                vec![Effect::Record("rolled back: all traffic on the old version".into())],
            ),
            (S::RollingBack { reason, attempts }, E::RollbackFailed { error }) => (
                Some(S::RollingBack {
                    reason: reason.clone(),
                    attempts: attempts.saturating_add(1),
                }),
                vec![
                    Effect::Record(format!("rollback attempt {attempts} failed: {error}; retrying")),
                    Effect::Rollback,
                ],
            ),
            (S::Pending | S::RollingBack { .. }, E::Timer(_)) => (None, vec![]),

            // Everything else is refused, with the reason a user can act on.
            (s, e) => {
                let detail = match (s, &e) {
                    (_, E::Start) => "the deployment has already started",
                    (S::Pending, _) => "the deployment has not started",
                    (S::PreTrafficHook { .. }, E::Promote | E::Extend { .. }) => {
                        "the pre-traffic hook must pass before any traffic moves"
                    }
                    (_, E::HookReported { .. }) => "no such hook is running",
                    (_, E::TrafficShifted { .. } | E::ShiftFailed { .. }) => "no weight change is pending",
                    (_, E::Verdict(_)) => "no verdict was asked for",
                    (_, E::Promote) => "there is nothing left to promote",
                    (_, E::Extend { .. }) => "nothing is baking",
                    (S::RollingBack { .. }, E::Abort) => "a rollback is already under way",
                    (_, E::RollbackDone | E::RollbackFailed { .. }) => "no rollback is under way",
                    _ => "the deployment is over",
                };
                return illegal(detail);
            }
        };

        if let Some(next) = next {
            self.state = next;
        }
        self.traffic_since_ms = traffic_since;
        if let Some((name, state)) = alarm_update {
            self.alarms.insert(name, state);
        }
        Ok(effects)
    }

    fn percent(&self, step: usize) -> f64 {
        self.config.schedule.steps.get(step).map(|s| s.percent).unwrap_or(100.0)
    }

    /// A nominal duration at this deployment's time scale.
    fn scaled(&self, ms: u64) -> i64 {
        scale_ms(ms, self.config.time_scale).min(i64::MAX as u64) as i64
    }

    fn evaluate_health(&self, step: usize, fallback_since: i64) -> Effect {
        Effect::EvaluateHealth {
            step,
            since_ms: self.traffic_since_ms.unwrap_or(fallback_since),
            new_version_percent: self.percent(step),
        }
    }

    fn begin_shift(&self, step: usize, now_ms: i64) -> Outcome {
        let p = self.percent(step);
        (
            DeploymentState::Shifting { step, since_ms: now_ms },
            vec![Effect::SetWeights { new_version_percent: p }],
        )
    }

    fn enter_bake(&self, step: usize, now_ms: i64, traffic_since: i64) -> Outcome {
        let bake = self.scaled(self.config.schedule.steps[step].bake_ms);
        if bake == 0 {
            return self.after_bake(step, now_ms, traffic_since, now_ms, None);
        }
        let until_ms = now_ms.saturating_add(bake);
        (
            DeploymentState::Baking {
                step,
                since_ms: now_ms,
                until_ms,
                inconclusive_since_ms: None,
            },
            vec![Effect::WakeAt(until_ms)],
        )
    }

    fn after_bake(
        &self,
        step: usize,
        step_since: i64,
        traffic_since: i64,
        now_ms: i64,
        inconclusive_since_ms: Option<i64>,
    ) -> Outcome {
        let last = self.config.schedule.steps.len() - 1;
        let baked = self.config.schedule.steps[step].bake_ms > 0;
        match &self.config.judge {
            Some(policy) if step < last && baked => {
                let deadline_ms = now_ms.saturating_add(self.scaled(policy.verdict_timeout_ms).max(1));
                (
                    DeploymentState::Judging {
                        step,
                        since_ms: step_since,
                        deadline_ms,
                        inconclusive_since_ms,
                    },
                    vec![
                        Effect::EvaluateHealth {
                            step,
                            since_ms: traffic_since,
                            new_version_percent: self.percent(step),
                        },
                        Effect::WakeAt(deadline_ms),
                    ],
                )
            }
            _ => self.advance(step, now_ms),
        }
    }

    fn advance(&self, step: usize, now_ms: i64) -> Outcome {
        if step + 1 < self.config.schedule.steps.len() {
            return self.begin_shift(step + 1, now_ms);
        }
        match &self.config.post_traffic_hook {
            Some(hook) => {
                let deadline_ms = now_ms.saturating_add(self.scaled(self.config.hook_timeout_ms));
                (
                    DeploymentState::PostTrafficHook { deadline_ms },
                    vec![
                        Effect::Record(format!(
                            "all traffic on the new version; invoking post-traffic hook {hook}"
                        )),
                        Effect::InvokeHook {
                            hook: HookKind::PostTraffic,
                            function: hook.clone(),
                            deadline_ms,
                        },
                        Effect::WakeAt(deadline_ms),
                    ],
                )
            }
            None => (
                DeploymentState::Succeeded { at_ms: now_ms },
                vec![Effect::Record(
                    "all traffic on the new version; deployment succeeded".into(),
                )],
            ),
        }
    }

    fn rollback(&self, reason: String) -> Outcome {
        (
            DeploymentState::RollingBack {
                reason: reason.clone(),
                attempts: 1,
            },
            vec![Effect::Record(format!("rolling back: {reason}")), Effect::Rollback],
        )
    }

    fn fail(&self, reason: String) -> Outcome {
        (
            DeploymentState::Failed { reason: reason.clone() },
            vec![Effect::Record(format!("failed: {reason}"))],
        )
    }
}

fn prepend(first: Effect, mut rest: Vec<Effect>) -> Vec<Effect> {
    rest.insert(0, first);
    rest
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIN: i64 = 60_000;

    fn canary() -> DeploymentConfig {
        DeploymentConfig::new(
            "checkout",
            "live",
            TrafficSchedule::parse("Canary10Percent5Minutes").unwrap(),
        )
    }

    fn weights(fx: &[Effect]) -> Vec<f64> {
        fx.iter()
            .filter_map(|e| match e {
                Effect::SetWeights { new_version_percent } => Some(*new_version_percent),
                _ => None,
            })
            .collect()
    }

    fn wakes(fx: &[Effect]) -> Vec<i64> {
        fx.iter()
            .filter_map(|e| match e {
                Effect::WakeAt(t) => Some(*t),
                _ => None,
            })
            .collect()
    }

    #[test]
    fn canary_happy_path() {
        let mut d = Deployment::new(canary()).unwrap();
        let fx = d.apply(Event::Start, 0).unwrap();
        assert_eq!(weights(&fx), vec![10.0]);
        assert_eq!(d.state(), &DeploymentState::Shifting { step: 0, since_ms: 0 });
        let fx = d
            .apply(
                Event::TrafficShifted {
                    new_version_percent: 10.0,
                },
                1_000,
            )
            .unwrap();
        assert_eq!(wakes(&fx), vec![1_000 + 5 * MIN]);
        assert!(d.apply(Event::Timer(2 * MIN), 2 * MIN).unwrap().is_empty());
        let fx = d.apply(Event::Timer(1_000 + 5 * MIN), 1_000 + 5 * MIN).unwrap();
        assert_eq!(weights(&fx), vec![100.0]);
        d.apply(
            Event::TrafficShifted {
                new_version_percent: 100.0,
            },
            6 * MIN,
        )
        .unwrap();
        assert_eq!(d.state(), &DeploymentState::Succeeded { at_ms: 6 * MIN });
        assert_eq!(d.new_version_percent(), 100.0);
    }

    #[test]
    fn hooks_and_their_deadlines() {
        let mut cfg = canary();
        cfg.pre_traffic_hook = Some("pre".into());
        cfg.post_traffic_hook = Some("post".into());
        cfg.time_scale = 60.0;
        let mut d = Deployment::new(cfg.clone()).unwrap();
        let fx = d.apply(Event::Start, 0).unwrap();
        // One hour at 60x is one minute.
        assert!(fx.contains(&Effect::InvokeHook {
            hook: HookKind::PreTraffic,
            function: "pre".into(),
            deadline_ms: MIN
        }));
        assert!(weights(&fx).is_empty());
        // The wrong hook is refused.
        let e = d
            .apply(
                Event::HookReported {
                    hook: HookKind::PostTraffic,
                    succeeded: true,
                },
                1,
            )
            .unwrap_err();
        assert_eq!(e.state, "PreTrafficHook");
        // Never reports: fails at the deadline, nothing to roll back.
        d.apply(Event::Timer(MIN - 1), MIN - 1).unwrap();
        assert_eq!(d.state().name(), "PreTrafficHook");
        d.apply(Event::Timer(MIN), MIN).unwrap();
        assert!(matches!(d.state(), DeploymentState::Failed { reason } if reason.contains("did not report")));

        // Post hook failure rolls back.
        let mut d = Deployment::new(cfg).unwrap();
        d.apply(Event::Start, 0).unwrap();
        d.apply(
            Event::HookReported {
                hook: HookKind::PreTraffic,
                succeeded: true,
            },
            10,
        )
        .unwrap();
        d.apply(
            Event::TrafficShifted {
                new_version_percent: 10.0,
            },
            20,
        )
        .unwrap();
        // 5 minutes at 60x = 5 s.
        assert_eq!(
            d.state(),
            &DeploymentState::Baking {
                step: 0,
                since_ms: 20,
                until_ms: 5_020,
                inconclusive_since_ms: None
            }
        );
        d.apply(Event::Timer(5_020), 5_020).unwrap();
        let fx = d
            .apply(
                Event::TrafficShifted {
                    new_version_percent: 100.0,
                },
                5_030,
            )
            .unwrap();
        assert!(fx.iter().any(|e| matches!(
            e,
            Effect::InvokeHook {
                hook: HookKind::PostTraffic,
                ..
            }
        )));
        assert_eq!(d.new_version_percent(), 100.0);
        let fx = d
            .apply(
                Event::HookReported {
                    hook: HookKind::PostTraffic,
                    succeeded: false,
                },
                6_000,
            )
            .unwrap();
        assert!(fx.contains(&Effect::Rollback));
        assert_eq!(d.new_version_percent(), 0.0);
        d.apply(
            Event::RollbackFailed {
                error: "throttled".into(),
            },
            6_100,
        )
        .unwrap();
        assert!(matches!(d.state(), DeploymentState::RollingBack { attempts: 2, .. }));
        d.apply(Event::RollbackDone, 6_200).unwrap();
        assert!(matches!(d.state(), DeploymentState::RolledBack { reason } if reason.contains("post-traffic")));
    }

    #[test]
    fn alarm_rolls_back_and_blocks_start() {
        let mut d = Deployment::new(canary()).unwrap();
        d.apply(
            Event::AlarmStateChanged {
                alarm: "errors".into(),
                state: AlarmState::Alarm,
            },
            0,
        )
        .unwrap();
        d.apply(Event::Start, 0).unwrap();
        assert!(matches!(d.state(), DeploymentState::Failed { .. }));

        let mut d = Deployment::new(canary()).unwrap();
        d.apply(Event::Start, 0).unwrap();
        d.apply(
            Event::TrafficShifted {
                new_version_percent: 10.0,
            },
            0,
        )
        .unwrap();
        let fx = d
            .apply(
                Event::AlarmStateChanged {
                    alarm: "errors".into(),
                    state: AlarmState::InsufficientData,
                },
                MIN,
            )
            .unwrap();
        assert!(!fx.contains(&Effect::Rollback));
        let fx = d
            .apply(
                Event::AlarmStateChanged {
                    alarm: "errors".into(),
                    state: AlarmState::Alarm,
                },
                2 * MIN,
            )
            .unwrap();
        assert!(fx.contains(&Effect::Rollback));
        assert_eq!(d.alarms()["errors"], AlarmState::Alarm);
    }

    #[test]
    fn promote_extend_abort() {
        let cfg = DeploymentConfig::new(
            "f",
            "live",
            TrafficSchedule::parse("Linear10PercentEvery1Minute").unwrap(),
        );
        let mut d = Deployment::new(cfg.clone()).unwrap();
        d.apply(Event::Start, 0).unwrap();
        d.apply(
            Event::TrafficShifted {
                new_version_percent: 10.0,
            },
            0,
        )
        .unwrap();
        let fx = d.apply(Event::Extend { by_ms: 30_000 }, 10).unwrap();
        assert_eq!(wakes(&fx), vec![MIN + 30_000]);
        assert!(d.apply(Event::Timer(MIN), MIN).unwrap().is_empty());
        let fx = d.apply(Event::Promote, MIN + 1).unwrap();
        assert_eq!(weights(&fx), vec![100.0]);
        // The late confirmation of an earlier step is ignored, the real one finishes.
        let fx = d
            .apply(
                Event::TrafficShifted {
                    new_version_percent: 10.0,
                },
                MIN + 2,
            )
            .unwrap();
        assert!(matches!(fx[..], [Effect::Record(_)]));
        d.apply(
            Event::TrafficShifted {
                new_version_percent: 100.0,
            },
            MIN + 3,
        )
        .unwrap();
        assert!(d.is_terminal());
        assert_eq!(d.new_version_percent(), 100.0);
        let before = d.clone();
        let e = d.apply(Event::Abort, MIN + 4).unwrap_err();
        assert_eq!(d, before);
        assert!(e.to_string().contains("failed to apply Abort"), "{e}");

        let mut d = Deployment::new(cfg).unwrap();
        d.apply(Event::Start, 0).unwrap();
        d.apply(
            Event::TrafficShifted {
                new_version_percent: 10.0,
            },
            0,
        )
        .unwrap();
        let fx = d.apply(Event::Abort, 5).unwrap();
        assert!(fx.contains(&Effect::Rollback));
        assert!(d.apply(Event::Abort, 6).is_err());
        d.apply(Event::RollbackDone, 7).unwrap();
        assert!(matches!(d.state(), DeploymentState::RolledBack { reason } if reason.contains("aborted")));
    }

    #[test]
    fn judge_need_more_data_then_pass_or_rollback() {
        let mut cfg = canary();
        cfg.judge = Some(JudgePolicy {
            recheck_ms: MIN as u64,
            max_wait_ms: 3 * MIN as u64,
            ..JudgePolicy::default()
        });
        let mut d = Deployment::new(cfg.clone()).unwrap();
        d.apply(Event::Start, 0).unwrap();
        d.apply(
            Event::TrafficShifted {
                new_version_percent: 10.0,
            },
            0,
        )
        .unwrap();
        let fx = d.apply(Event::Timer(5 * MIN), 5 * MIN).unwrap();
        assert!(fx.contains(&Effect::EvaluateHealth {
            step: 0,
            since_ms: 0,
            new_version_percent: 10.0
        }));
        let more = || {
            Event::Verdict(Verdict::NeedMoreData {
                reason: "12 invocations".into(),
            })
        };
        let fx = d.apply(more(), 5 * MIN).unwrap();
        assert_eq!(wakes(&fx), vec![6 * MIN]);
        d.apply(Event::Timer(6 * MIN), 6 * MIN).unwrap();
        assert_eq!(d.state().name(), "Judging");
        d.apply(Event::Verdict(Verdict::Pass), 6 * MIN).unwrap();
        assert_eq!(weights(&d.resume_effects()), vec![100.0]);

        // Waiting too long for data rolls back.
        let mut d = Deployment::new(cfg.clone()).unwrap();
        d.apply(Event::Start, 0).unwrap();
        d.apply(
            Event::TrafficShifted {
                new_version_percent: 10.0,
            },
            0,
        )
        .unwrap();
        let mut now = 5 * MIN;
        d.apply(Event::Timer(now), now).unwrap();
        loop {
            d.apply(more(), now).unwrap();
            if d.state().name() == "RollingBack" {
                break;
            }
            now += MIN;
            d.apply(Event::Timer(now), now).unwrap();
            assert!(now < 20 * MIN);
        }
        assert_eq!(now, 8 * MIN);

        // No verdict at all: rollback at the verdict deadline; a failed verdict rolls back.
        let mut d = Deployment::new(cfg).unwrap();
        d.apply(Event::Start, 0).unwrap();
        d.apply(
            Event::TrafficShifted {
                new_version_percent: 10.0,
            },
            0,
        )
        .unwrap();
        d.apply(Event::Timer(5 * MIN), 5 * MIN).unwrap();
        let mut failed = d.clone();
        d.apply(Event::Timer(15 * MIN), 15 * MIN).unwrap();
        assert!(matches!(d.state(), DeploymentState::RollingBack { .. }));
        failed
            .apply(
                Event::Verdict(Verdict::Fail {
                    reasons: vec!["10% errors".into()],
                }),
                6 * MIN,
            )
            .unwrap();
        assert!(matches!(failed.state(), DeploymentState::RollingBack { reason, .. } if reason.contains("10% errors")));
    }

    #[test]
    fn illegal_transitions_change_nothing() {
        let mut d = Deployment::new(canary()).unwrap();
        for e in [
            Event::Promote,
            Event::RollbackDone,
            Event::Verdict(Verdict::Pass),
            Event::Extend { by_ms: 1 },
            Event::TrafficShifted {
                new_version_percent: 10.0,
            },
        ] {
            let before = d.clone();
            let err = d.apply(e, 0).unwrap_err();
            assert_eq!(err.state, "Pending");
            assert_eq!(d, before);
        }
        d.apply(Event::Start, 0).unwrap();
        assert!(d.apply(Event::Start, 0).is_err());
        let err = d
            .apply(
                Event::TrafficShifted {
                    new_version_percent: 50.0,
                },
                0,
            )
            .unwrap_err();
        assert!(err.detail.contains("10% was requested"), "{err}");
        let text = serde_json::to_string(&err).unwrap();
        assert!(text.contains("Shifting"));
    }

    #[test]
    fn all_at_once_and_resume() {
        let cfg = DeploymentConfig::new("f", "live", TrafficSchedule::all_at_once());
        let mut d = Deployment::new(cfg).unwrap();
        assert_eq!(weights(&d.apply(Event::Start, 0).unwrap()), vec![100.0]);
        let saved = serde_json::to_string(&d).unwrap();
        let mut restored: Deployment = serde_json::from_str(&saved).unwrap();
        assert_eq!(restored, d);
        assert_eq!(weights(&restored.resume_effects()), vec![100.0]);
        restored
            .apply(
                Event::TrafficShifted {
                    new_version_percent: 100.0,
                },
                1,
            )
            .unwrap();
        assert!(matches!(restored.state(), DeploymentState::Succeeded { .. }));
    }
}
