//! CodeBuild buildspecs run locally, and CloudFormation/SAM templates packaged once per region.
//!
//! - [`spec`]: the buildspec model (version 0.2, and 0.1) and its parser, with diagnostics at the
//!   line for everything CodeBuild would reject; [`plan`] renders what a build would run.
//!
//! What this crate must not do: talk to AWS, know about pipelines or executions (the engine calls
//! it), or print anything itself (logs go to the caller's sink and to the build's log file).

pub mod plan;
pub mod spec;

pub use spec::{parse_file, parse_str, BuildSpec, Parsed, PhaseName};
