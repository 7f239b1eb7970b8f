//! `meridian validate` and `meridian graph`.
use crate::Global;
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(clap::Args, Debug)]
pub struct ValidateArgs {
    pub files: Vec<PathBuf>,
}
#[derive(clap::Args, Debug)]
pub struct GraphArgs {
    pub file: PathBuf,
}
pub fn validate(_a: ValidateArgs, _g: &Global) -> anyhow::Result<ExitCode> {
    anyhow::bail!("in progress")
}
pub fn graph(_a: GraphArgs, _g: &Global) -> anyhow::Result<ExitCode> {
    anyhow::bail!("in progress")
}
