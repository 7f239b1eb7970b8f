//! Meridian's engine: runs pipelines the way CodePipeline does, on one machine.
//!
//! - [`journal`]: the crash-safe record of every execution (SQLite, WAL), written before effects.
//! - [`state`]: the pure state machines of one action and one execution's status.
//! - [`machine`]: the execution's decisions (next stage, run-order group, retry, rollback, stop), pure.
//! - [`artifacts`]: deterministic zip artifacts, per-region stores, verified replication.
//! - [`providers`]: what actions do (source, commands, approval, ...), behind a trait.
//! - [`stacks`]: what a region offers to deploy CloudFormation stacks (the CloudFormation action uses it).
//! - [`driver`]: scheduling (stages, run orders, regions in parallel), execution modes, recovery.
//!
//! It must not know about the CLI or terminals: it reports through the journal.

pub mod artifacts;
pub mod delivery;
pub mod driver;
pub mod journal;
pub mod ledger;
pub mod machine;
pub mod policy;
pub mod providers;
pub mod retry;
pub use meridian_region::stacks;
pub mod state;
pub mod variables;

pub use driver::{Engine, EngineError};
pub use providers::RunEnv;
pub use state::{ActionStatus, ExecutionStatus};
