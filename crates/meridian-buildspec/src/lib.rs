//! CodeBuild buildspecs run locally, and CloudFormation/SAM templates packaged once per region.
//!
//! - [`spec`]: the buildspec model (version 0.2, and 0.1) and its parser, with diagnostics at the
//!   line for everything CodeBuild would reject; [`plan`] renders what a build would run.
//! - [`runner`]: [`run_build`] runs a buildspec as CodeBuild does, without Docker: one shell for all
//!   commands, phase transitions, `finally`, timeouts that kill the process tree, masked secrets,
//!   reports ([`reports`]), artifacts ([`artifacts`]) and cache.
//! - [`secrets`]: the local regions' encrypted parameter store and secrets store.
//! - [`project`]: a build project's buildspec and variables, and the CodeBuild action's
//!   `EnvironmentVariables`, as the runner takes them.
//! - [`package`]: a CloudFormation/SAM template packaged once per region, as `aws cloudformation
//!   package` does for one, into the caller's per-region stores, with deterministic zips.
//!
//! What this crate must not do: talk to AWS, know about pipelines or executions (the engine calls
//! it), or print anything itself (logs go to the caller's sink and to the build's log file).

pub mod artifacts;
pub mod batch;
pub mod files;
pub mod package;
pub mod plan;
pub mod project;
pub mod reports;
pub mod runner;
pub mod secrets;
mod shell;
pub mod spec;

pub use runner::{run_build, BuildContext, BuildError, BuildOutcome, EnvKind, EnvVar, Status};
pub use secrets::{Kind as SecretKind, SecretStore};
pub use shell::{cut_piece, CUT_CARRY_BYTES, MAX_LINE_BYTES};
pub use spec::{parse_file, parse_str, BuildSpec, Parsed, PhaseName};
