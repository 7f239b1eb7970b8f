//! Progressive delivery, the pure core: traffic schedules, alarm evaluation, the canary judge,
//! deployment windows and the state machine of one region's deployment of one alias.
//!
//! Nothing here does I/O or reads the time: callers pass the clock's reading (`now`, epoch
//! milliseconds) and perform the [`deployment::Effect`]s the state machine returns. A driver
//! in the engine owns the clock, the alias, the hooks and the metrics.
//!
//! - [`schedule`]: CodeDeploy-style traffic schedules (`Canary10Percent5Minutes`, ...).
//! - [`alarm`]: CloudWatch metric alarms over Lambda metrics, with M-out-of-N and missing data.
//! - [`judge`](mod@judge): compares the new version's errors and latency with the old one's.
//! - [`window`]: when a region may be deployed, in its own time zone.
//! - [`deployment`]: the state machine of a traffic shift, effects as data.
//! - [`follow`]: following a deployment CodeDeploy runs (status, traffic, hooks), judged and
//!   stopped on a failing verdict.
//!
//! ```
//! use meridian_delivery::{Deployment, DeploymentConfig, DeploymentState, Effect, Event, TrafficSchedule};
//!
//! let schedule = TrafficSchedule::parse("CodeDeployDefault.LambdaCanary10Percent5Minutes").unwrap();
//! let mut d = Deployment::new(DeploymentConfig::new("checkout", "live", schedule)).unwrap();
//! let effects = d.apply(Event::Start, 0).unwrap();
//! assert!(effects.contains(&Effect::SetWeights { new_version_percent: 10.0 }));
//! // The driver moved the alias, then wakes the deployment when the bake is over.
//! let effects = d.apply(Event::TrafficShifted { new_version_percent: 10.0 }, 1_000).unwrap();
//! assert!(effects.contains(&Effect::WakeAt(301_000)));
//! d.apply(Event::Timer(301_000), 301_000).unwrap();
//! d.apply(Event::TrafficShifted { new_version_percent: 100.0 }, 302_000).unwrap();
//! assert!(matches!(d.state(), DeploymentState::Succeeded { .. }));
//! ```

pub mod alarm;
pub mod deployment;
pub mod follow;
pub mod judge;
pub mod schedule;
pub mod window;

pub use alarm::{AlarmEvaluation, AlarmSpec, AlarmState, MetricPoint};
pub use deployment::{
    Deployment, DeploymentConfig, DeploymentState, Effect, Event, HookKind, IllegalTransition, JudgePolicy,
};
pub use judge::{judge, JudgeConfig, Sample, Verdict};
pub use schedule::{Step, TrafficSchedule};
pub use window::{Window, WindowError};
