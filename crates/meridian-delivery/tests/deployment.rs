//! Invariants of the deployment state machine under random schedules and random events.
//!
//! A small model of the alias follows the effects (`SetWeights` sets the new version's share,
//! `Rollback` puts it back to 0) and checks, after every event:
//! - the share is always within 0..=100 and only goes down through a rollback;
//! - nothing raises the share again once a rollback started;
//! - a refused event changes nothing;
//! - every terminal state is fully new (100%) or fully old (0%), in the state and in the model.
//!
//! Then: a failure injected at every point of a successful run in turn still ends fully old or
//! fully new, and a deployment reloaded from its JSON at any point continues identically.

use meridian_delivery::alarm::AlarmState;
use meridian_delivery::deployment::{
    Deployment, DeploymentConfig, DeploymentState, Effect, Event, HookKind, InconclusivePolicy, JudgePolicy,
};
use meridian_delivery::judge::Verdict;
use meridian_delivery::schedule::{Step, TrafficSchedule};
use proptest::prelude::*;

const MIN: u64 = 60_000;

fn schedule_strategy() -> impl Strategy<Value = TrafficSchedule> {
    // Up to five intermediate steps: distinct percentages (whole or halves) with bakes.
    (
        proptest::collection::btree_set(1u32..199, 0..5),
        proptest::collection::vec(0u64..=10, 5),
    )
        .prop_map(|(halves, bakes)| {
            let mut steps: Vec<Step> = halves
                .into_iter()
                .zip(bakes)
                .map(|(h, b)| Step {
                    percent: f64::from(h) / 2.0,
                    bake_ms: b * MIN,
                })
                .collect();
            steps.push(Step {
                percent: 100.0,
                bake_ms: 0,
            });
            TrafficSchedule::from_steps(steps).expect("valid by construction")
        })
}

fn config_strategy() -> impl Strategy<Value = DeploymentConfig> {
    (
        schedule_strategy(),
        any::<bool>(),
        any::<bool>(),
        prop_oneof![Just(1.0), Just(60.0)],
        proptest::option::of((1u64..=3, 1u64..=5, any::<bool>())),
    )
        .prop_map(|(schedule, pre, post, time_scale, judge)| {
            let mut c = DeploymentConfig::new("checkout", "live", schedule);
            c.pre_traffic_hook = pre.then(|| "checkout-pre".to_string());
            c.post_traffic_hook = post.then(|| "checkout-post".to_string());
            c.time_scale = time_scale;
            c.judge = judge.map(|(recheck, wait, proceed)| JudgePolicy {
                recheck_ms: recheck * MIN,
                max_wait_ms: wait * MIN,
                on_inconclusive: if proceed {
                    InconclusivePolicy::Proceed
                } else {
                    InconclusivePolicy::Rollback
                },
                verdict_timeout_ms: 10 * MIN,
            });
            c
        })
}

/// An event with the time that passes before it. Percentages are picked from the schedule.
#[derive(Debug, Clone)]
enum Gen {
    Start,
    Hook(bool, bool),
    Shifted(usize),
    ShiftFailed,
    Timer,
    Alarm(u8),
    Verdict(u8),
    Promote,
    Extend(u64),
    Abort,
    RollbackDone,
    RollbackFailed,
}

fn gen_strategy() -> impl Strategy<Value = (Gen, u64)> {
    let g = prop_oneof![
        Just(Gen::Start),
        (any::<bool>(), any::<bool>()).prop_map(|(a, b)| Gen::Hook(a, b)),
        (0usize..6).prop_map(Gen::Shifted),
        Just(Gen::ShiftFailed),
        Just(Gen::Timer),
        Just(Gen::Timer),
        (0u8..3).prop_map(Gen::Alarm),
        (0u8..3).prop_map(Gen::Verdict),
        Just(Gen::Promote),
        (0u64..5).prop_map(Gen::Extend),
        Just(Gen::Abort),
        Just(Gen::RollbackDone),
        Just(Gen::RollbackFailed),
    ];
    (g, 0u64..=12 * MIN)
}

fn to_event(g: &Gen, schedule: &TrafficSchedule, now: i64) -> Event {
    match g {
        Gen::Start => Event::Start,
        Gen::Hook(pre, ok) => Event::HookReported {
            hook: if *pre {
                HookKind::PreTraffic
            } else {
                HookKind::PostTraffic
            },
            succeeded: *ok,
        },
        Gen::Shifted(i) => Event::TrafficShifted {
            new_version_percent: schedule.steps[(*i).min(schedule.steps.len() - 1)].percent,
        },
        Gen::ShiftFailed => Event::ShiftFailed {
            error: "alias update refused".into(),
        },
        Gen::Timer => Event::Timer(now),
        Gen::Alarm(s) => Event::AlarmStateChanged {
            alarm: "errors".into(),
            state: [AlarmState::Ok, AlarmState::Alarm, AlarmState::InsufficientData][*s as usize],
        },
        Gen::Verdict(v) => Event::Verdict(match v {
            0 => Verdict::Pass,
            1 => Verdict::Fail {
                reasons: vec!["error rate".into()],
            },
            _ => Verdict::NeedMoreData {
                reason: "few invocations".into(),
            },
        }),
        Gen::Promote => Event::Promote,
        Gen::Extend(m) => Event::Extend { by_ms: m * MIN },
        Gen::Abort => Event::Abort,
        Gen::RollbackDone => Event::RollbackDone,
        Gen::RollbackFailed => Event::RollbackFailed {
            error: "throttled".into(),
        },
    }
}

/// The alias as the driver would leave it after performing the effects.
#[derive(Debug, Default)]
struct AliasModel {
    percent: f64,
    rolled_back: bool,
}

impl AliasModel {
    fn perform(&mut self, effects: &[Effect]) -> Result<(), TestCaseError> {
        for e in effects {
            match e {
                Effect::SetWeights { new_version_percent } => {
                    let p = *new_version_percent;
                    prop_assert!((0.0..=100.0).contains(&p), "weight {p} out of range");
                    prop_assert!(!self.rolled_back, "weights raised to {p} after a rollback");
                    prop_assert!(
                        p >= self.percent,
                        "weight went down from {} to {p} without a rollback",
                        self.percent
                    );
                    self.percent = p;
                }
                Effect::Rollback => {
                    self.percent = 0.0;
                    self.rolled_back = true;
                }
                _ => {}
            }
        }
        Ok(())
    }
}

/// Applies one event and checks the per-event invariants.
fn step(d: &mut Deployment, alias: &mut AliasModel, event: Event, now: i64) -> Result<(), TestCaseError> {
    let before = d.clone();
    let percent_before = d.new_version_percent();
    match d.apply(event.clone(), now) {
        Ok(effects) => {
            alias.perform(&effects)?;
            let p = d.new_version_percent();
            prop_assert!((0.0..=100.0).contains(&p));
            if p < percent_before {
                prop_assert!(
                    effects.contains(&Effect::Rollback),
                    "share fell from {percent_before} to {p} on {event:?} without a rollback"
                );
            }
            if before.is_terminal() {
                prop_assert_eq!(&before.state(), &d.state(), "a terminal state moved");
            }
        }
        Err(_) => prop_assert_eq!(&before, d, "a refused {:?} changed the deployment", event),
    }
    Ok(())
}

fn check_terminal(d: &Deployment, alias: &AliasModel) -> Result<(), TestCaseError> {
    match d.state() {
        DeploymentState::Succeeded { .. } => {
            prop_assert_eq!(d.new_version_percent(), 100.0);
            prop_assert_eq!(alias.percent, 100.0);
            prop_assert!(!alias.rolled_back);
        }
        DeploymentState::RolledBack { .. } => {
            prop_assert_eq!(d.new_version_percent(), 0.0);
            prop_assert_eq!(alias.percent, 0.0);
            prop_assert!(alias.rolled_back);
        }
        DeploymentState::Failed { .. } => {
            prop_assert_eq!(d.new_version_percent(), 0.0);
            prop_assert_eq!(alias.percent, 0.0, "failed after traffic moved");
        }
        other => prop_assert!(false, "not terminal: {:?}", other),
    }
    Ok(())
}

/// The event a well-behaved driver sends next, everything succeeding.
fn cooperative(d: &Deployment, now: i64) -> (Event, i64) {
    match d.state() {
        DeploymentState::Pending => (Event::Start, now),
        DeploymentState::PreTrafficHook { .. } => (
            Event::HookReported {
                hook: HookKind::PreTraffic,
                succeeded: true,
            },
            now + 1_000,
        ),
        DeploymentState::Shifting { step, .. } => (
            Event::TrafficShifted {
                new_version_percent: d.config().schedule.steps[*step].percent,
            },
            now + 100,
        ),
        DeploymentState::Baking { until_ms, .. } => (Event::Timer(*until_ms), (*until_ms).max(now)),
        DeploymentState::Judging { .. } => (Event::Verdict(Verdict::Pass), now + 100),
        DeploymentState::PostTrafficHook { .. } => (
            Event::HookReported {
                hook: HookKind::PostTraffic,
                succeeded: true,
            },
            now + 1_000,
        ),
        DeploymentState::RollingBack { .. } => (Event::RollbackDone, now + 100),
        s => panic!("no cooperative event in terminal state {s:?}"),
    }
}

fn finish(d: &mut Deployment, alias: &mut AliasModel, mut now: i64) -> Result<(), TestCaseError> {
    let mut guard = 0;
    while !d.is_terminal() {
        let (e, t) = cooperative(d, now);
        now = t;
        step(d, alias, e, now)?;
        guard += 1;
        prop_assert!(guard < 200, "the deployment does not finish: {:?}", d.state());
    }
    check_terminal(d, alias)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn random_events_keep_weights_sound(
        config in config_strategy(),
        events in proptest::collection::vec(gen_strategy(), 0..60),
    ) {
        let schedule = config.schedule.clone();
        let mut d = Deployment::new(config).unwrap();
        let mut alias = AliasModel::default();
        let mut now = 1_700_000_000_000i64;
        for (g, dt) in &events {
            now += *dt as i64;
            step(&mut d, &mut alias, to_event(g, &schedule, now), now)?;
            if d.is_terminal() {
                check_terminal(&d, &alias)?;
            }
        }
        finish(&mut d, &mut alias, now)?;
    }

    #[test]
    fn failure_injected_at_every_step_ends_fully_old_or_fully_new(config in config_strategy()) {
        // The successful run, as a list of events.
        let mut happy = Vec::new();
        {
            let mut d = Deployment::new(config.clone()).unwrap();
            let mut now = 0i64;
            while !d.is_terminal() {
                let (e, t) = cooperative(&d, now);
                now = t;
                d.apply(e.clone(), now).unwrap();
                happy.push((e, now));
            }
            let succeeded = matches!(d.state(), DeploymentState::Succeeded { .. });
            prop_assert!(succeeded, "the happy path ended in {:?}", d.state());
        }
        let failures = [
            Event::Abort,
            Event::AlarmStateChanged { alarm: "errors".into(), state: AlarmState::Alarm },
            Event::ShiftFailed { error: "refused".into() },
            Event::Verdict(Verdict::Fail { reasons: vec!["errors".into()] }),
            Event::HookReported { hook: HookKind::PreTraffic, succeeded: false },
            Event::HookReported { hook: HookKind::PostTraffic, succeeded: false },
            Event::Timer(i64::MAX / 4), // every deadline passes: hooks and verdicts time out
        ];
        for k in 0..happy.len() {
            for failure in &failures {
                let mut d = Deployment::new(config.clone()).unwrap();
                let mut alias = AliasModel::default();
                for (e, t) in &happy[..k] {
                    step(&mut d, &mut alias, e.clone(), *t)?;
                }
                let now = happy[k].1;
                let was_active = !d.is_terminal();
                let accepted = d.apply(failure.clone(), now);
                if let Ok(fx) = &accepted {
                    alias.perform(fx)?;
                }
                let must_not_succeed = was_active
                    && accepted.is_ok()
                    && matches!(failure, Event::Abort | Event::AlarmStateChanged { .. });
                if d.is_terminal() {
                    check_terminal(&d, &alias)?;
                } else {
                    finish(&mut d, &mut alias, now)?;
                }
                if must_not_succeed {
                    let succeeded = matches!(d.state(), DeploymentState::Succeeded { .. });
                    prop_assert!(!succeeded, "{:?} after {} events still succeeded", failure, k);
                }
            }
        }
    }

    #[test]
    fn restarting_from_json_continues_identically(
        config in config_strategy(),
        events in proptest::collection::vec(gen_strategy(), 1..50),
        cut in 0usize..50,
    ) {
        let schedule = config.schedule.clone();
        let mut original = Deployment::new(config).unwrap();
        let mut now = 1_700_000_000_000i64;
        let timed: Vec<(Event, i64)> = events
            .iter()
            .map(|(g, dt)| {
                now += *dt as i64;
                (to_event(g, &schedule, now), now)
            })
            .collect();
        let cut = cut.min(timed.len());
        for (e, t) in &timed[..cut] {
            let _ = original.apply(e.clone(), *t);
        }
        let json = serde_json::to_string(&original).unwrap();
        let mut restored: Deployment = serde_json::from_str(&json).unwrap();
        prop_assert_eq!(&restored, &original);
        prop_assert_eq!(restored.resume_effects(), original.resume_effects());
        for (e, t) in &timed[cut..] {
            let a = original.apply(e.clone(), *t);
            let b = restored.apply(e.clone(), *t);
            prop_assert_eq!(a, b);
            prop_assert_eq!(&restored, &original);
        }
    }
}
