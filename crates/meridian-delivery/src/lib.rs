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

pub mod alarm;
pub mod deployment;
pub mod judge;
pub mod schedule;
pub mod window;

pub use alarm::{AlarmEvaluation, AlarmSpec, AlarmState, MetricPoint};
pub use judge::{judge, JudgeConfig, Sample, Verdict};
pub use schedule::{Step, TrafficSchedule};
pub use window::{Window, WindowError};
