//! `meridian serve` and `meridian lambda ...`: the local regions' Lambda host (issue 5).
//! Owned by the Lambda-host work; replace the body as that work lands.

use crate::Global;
use std::process::ExitCode;

#[derive(clap::Args, Debug)]
pub struct ServeArgs {
    /// TCP port on 127.0.0.1 for the Invoke API.
    #[arg(long, default_value_t = 9001)]
    pub port: u16,
}

#[derive(clap::Subcommand, Debug)]
pub enum LambdaCommand {
    /// List the functions of a region.
    List {
        #[arg(long)]
        region: String,
    },
}

pub fn serve(_args: ServeArgs, _global: &Global) -> anyhow::Result<ExitCode> {
    anyhow::bail!("the local Lambda host is not built yet")
}

pub fn lambda(_cmd: LambdaCommand, _global: &Global) -> anyhow::Result<ExitCode> {
    anyhow::bail!("the local Lambda host is not built yet")
}
