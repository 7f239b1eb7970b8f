//! The `meridian` binary: parses arguments and presents results; the work lives in the library
//! crates. Data goes to stdout, everything else (progress, diagnostics) to stderr.
//!
//! Exit codes: 0 success, 1 the thing asked about failed or is invalid, 2 unusable input (an
//! unreadable file, bad arguments).

mod aws_cmds;
mod build_cmds;
mod delivery_cmds;
mod engine_cmds;
mod lambda;
mod pipeline_cmds;
mod stack_cmds;

use clap::{Parser, Subcommand, ValueEnum};
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Parser)]
#[command(
    name = "meridian",
    version,
    about = "Multi-region delivery for serverless applications"
)]
struct Cli {
    #[command(flatten)]
    global: Global,
    #[command(subcommand)]
    command: Command,
}

/// Options every command takes.
#[derive(clap::Args, Clone, Debug)]
pub struct Global {
    /// Where Meridian keeps its state: journal, artifact stores, local regions, logs.
    #[arg(long, global = true, env = "MERIDIAN_DATA_DIR", default_value = ".meridian")]
    pub data_dir: PathBuf,
    /// How listings and results are printed on stdout.
    #[arg(long, global = true, value_enum, default_value_t = OutputFormat::Text)]
    pub output: OutputFormat,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum OutputFormat {
    Text,
    Json,
}

#[derive(Subcommand)]
enum Command {
    /// Check pipeline definitions and explain every mistake.
    Validate(pipeline_cmds::ValidateArgs),
    /// Draw a pipeline's stages, actions, regions and artifact flow.
    Graph(pipeline_cmds::GraphArgs),
    /// Start an execution of a pipeline and run it to its end.
    Run(engine_cmds::RunArgs),
    /// Continue an execution whose process ended (started automatically by any command).
    Resume(engine_cmds::ExecArg),
    /// Past and running executions.
    #[command(subcommand)]
    Executions(engine_cmds::ExecutionsCommand),
    /// Approve (or reject) a manual approval action that is waiting.
    Approve(engine_cmds::ApproveArgs),
    /// Run the failed stage of a failed or stopped execution again, then the stages after it.
    Retry(engine_cmds::RetryArgs),
    /// Stop an execution: running actions finish first, or are killed with --abandon.
    Stop(engine_cmds::StopArgs),
    /// Print an action's log.
    Logs(engine_cmds::LogsArgs),
    /// Move a damaged journal aside (kept as `journal.db.corrupt-<time>`) so that the next
    /// command starts a fresh one; only when asked, never on its own.
    ResetJournal,
    /// Serve the local regions' AWS APIs (S3, CloudFormation, SSM, Secrets Manager, STS, Lambda)
    /// on one port, for the AWS CLI, the SDKs and the SAM CLI.
    Serve(lambda::ServeArgs),
    /// Print the environment that sends AWS CLIs and SDKs to a local endpoint (`eval "$(meridian
    /// credentials --endpoint-url http://127.0.0.1:9001)"`).
    Credentials(lambda::CredentialsArgs),
    /// Manage and invoke functions in local regions.
    #[command(subcommand)]
    Lambda(lambda::LambdaCommand),
    /// Run a buildspec on its own, as CodeBuild would (without Docker); `--plan` only checks it.
    Build(build_cmds::BuildArgs),
    /// The local regions' parameter and secrets stores (encrypted at rest).
    #[command(subcommand)]
    Secrets(build_cmds::SecretsCommand),
    /// CloudFormation/SAM stacks in local regions: deploy, change sets, events, outputs, delete.
    #[command(subcommand)]
    Stack(stack_cmds::StackCommand),
    /// Templates: print the processed CloudFormation of a SAM template.
    #[command(subcommand)]
    Template(stack_cmds::TemplateCommand),
    /// The release ledger: what is live in every region of a pipeline (`--history`: every deploy).
    Releases(delivery_cmds::ReleasesArgs),
    /// Deploy an earlier release again (traffic shifting and judging as for any release).
    Rollback(delivery_cmds::RollbackArgs),
    /// Deployments: one region's move of one alias to a new version, step by step.
    #[command(subcommand)]
    Deployments(delivery_cmds::DeploymentsCommand),
    /// Finish a running deployment now: all traffic to the new version.
    Promote(delivery_cmds::DeploymentArg),
    /// Bake a running deployment's current step longer.
    Extend(delivery_cmds::ExtendArgs),
    /// Stop a running deployment and roll it back.
    Abort(delivery_cmds::DeploymentArg),
    /// A pipeline's deployment windows: open or closed now, and the next openings per region.
    Windows(delivery_cmds::WindowsArgs),
    /// Create what a pipeline needs in its AWS regions (each region's artifact bucket), idempotently.
    Bootstrap(aws_cmds::BootstrapArgs),
}

fn main() -> ExitCode {
    // Behave as a Unix tool when stdout is closed early (`meridian executions list | head`).
    // SAFETY: restoring the default SIGPIPE disposition before any thread starts.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
    let cli = Cli::parse();
    if let Err(e) = check_data_dir(&cli.global.data_dir) {
        error(&e);
        return ExitCode::from(2);
    }
    let result = match cli.command {
        Command::Validate(args) => pipeline_cmds::validate(args, &cli.global),
        Command::Graph(args) => pipeline_cmds::graph(args, &cli.global),
        Command::Run(a) => engine_cmds::run(a, &cli.global),
        Command::Resume(a) => engine_cmds::resume(a, &cli.global),
        Command::Executions(c) => engine_cmds::executions(c, &cli.global),
        Command::Approve(a) => engine_cmds::approve(a, &cli.global),
        Command::Retry(a) => engine_cmds::retry(a, &cli.global),
        Command::Stop(a) => engine_cmds::stop(a, &cli.global),
        Command::Logs(a) => engine_cmds::logs(a, &cli.global),
        Command::ResetJournal => engine_cmds::reset_journal(&cli.global),
        Command::Serve(args) => lambda::serve(args, &cli.global),
        Command::Credentials(args) => lambda::credentials(args),
        Command::Lambda(cmd) => lambda::lambda(cmd, &cli.global),
        Command::Build(a) => build_cmds::build(a, &cli.global),
        Command::Secrets(c) => build_cmds::secrets(c, &cli.global),
        Command::Stack(c) => stack_cmds::stack(c, &cli.global),
        Command::Template(c) => stack_cmds::template(c, &cli.global),
        Command::Releases(a) => delivery_cmds::releases(a, &cli.global),
        Command::Rollback(a) => delivery_cmds::rollback(a, &cli.global),
        Command::Deployments(c) => delivery_cmds::deployments(c, &cli.global),
        Command::Promote(a) => delivery_cmds::control(delivery_cmds::Control::Promote(a), &cli.global),
        Command::Extend(a) => delivery_cmds::control(delivery_cmds::Control::Extend(a), &cli.global),
        Command::Abort(a) => delivery_cmds::control(delivery_cmds::Control::Abort(a), &cli.global),
        Command::Windows(a) => delivery_cmds::windows(a, &cli.global),
        Command::Bootstrap(a) => aws_cmds::bootstrap(a, &cli.global),
    };
    match result {
        Ok(code) => code,
        Err(err) => {
            error(&format!("{err:#}"));
            ExitCode::from(2)
        }
    }
}

/// Prints an error on stderr. Names and values in it may come from hostile files: control and
/// invisible formatting characters (NUL, ESC, U+202E, ...) are shown escaped, never raw.
pub(crate) fn error(message: &str) {
    eprintln!("error: {}", meridian_pipeline::source::escape_controls(message));
}

/// The data directory, when it exists, must be a directory: every store would otherwise fail on
/// its own with an OS error ("File exists", "Not a directory").
fn check_data_dir(dir: &std::path::Path) -> Result<(), String> {
    match std::fs::metadata(dir) {
        Ok(m) if !m.is_dir() => Err(format!(
            "`{}` is not a directory: the data directory (--data-dir, or MERIDIAN_DATA_DIR; `.meridian` by default) is where Meridian keeps its state; name a directory, or a path that does not exist yet (Meridian creates it)",
            dir.display()
        )),
        _ => Ok(()),
    }
}

/// A region name from the command line, checked before it names anything on disk.
pub(crate) fn check_region(region: &str) -> Result<(), String> {
    meridian_core::RegionId::new(region)
        .map(|_| ())
        .map_err(|e| format!("--region: {e}"))
}
