//! `meridian build` (run a buildspec on its own, like CodeBuild's local agent without Docker) and
//! `meridian secrets` (the local regions' parameter and secrets stores).
//!
//! Exit codes of `meridian build`: 0 the build succeeded (or, with `--plan`, the buildspec is
//! valid); 1 the build failed, timed out or was stopped, or the buildspec is invalid; 2 it could
//! not be run at all (unreadable buildspec, missing secret, no shell).

use crate::{Global, OutputFormat};
use anyhow::Context;
use meridian_buildspec::runner::{EnvVar, Status};
use meridian_buildspec::{parse_file, plan, run_build, BuildContext, BuildOutcome, SecretKind, SecretStore};
use serde_json::json;
use std::io::{IsTerminal, Read};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

fn parse_kv(s: &str) -> Result<(String, String), String> {
    match s.split_once('=') {
        Some((k, v)) if !k.is_empty() => Ok((k.to_string(), v.to_string())),
        _ => Err(format!("`{s}` is not NAME=VALUE")),
    }
}

#[derive(clap::Args, Debug)]
pub struct BuildArgs {
    /// The source directory to build (it is copied; the build never changes it).
    #[arg(default_value = ".")]
    pub dir: PathBuf,
    /// The buildspec (default: buildspec.yml in DIR). A relative path that does not exist from
    /// here is looked up in DIR, as CodeBuild does.
    #[arg(long)]
    pub buildspec: Option<PathBuf>,
    /// A variable, NAME=VALUE (repeatable); overrides the buildspec's.
    #[arg(long = "env", value_parser = parse_kv)]
    pub env: Vec<(String, String)>,
    /// Copy the artifacts here: the primary artifact's files at the top, each secondary
    /// artifact in a directory named after its identifier.
    #[arg(long)]
    pub output_dir: Option<PathBuf>,
    /// The local region the build runs in (AWS_REGION, its parameter and secrets stores).
    #[arg(long, default_value = "us-east-1")]
    pub region: String,
    /// Build timeout in minutes, 5 to 2160 as CodeBuild allows.
    #[arg(long, default_value_t = 60)]
    pub timeout: u64,
    /// Stream the build's log to stderr as it runs.
    #[arg(long, short)]
    pub verbose: bool,
    /// Check the buildspec and print what would run, without running anything.
    #[arg(long)]
    pub plan: bool,
    /// The project name (build ids, and the cache kept between builds).
    #[arg(long, default_value = "local")]
    pub project: String,
}

/// The buildspec to read. One found in DIR (the default `buildspec.yml`, or a relative
/// `--buildspec` read from DIR) comes from the source and must stay inside it: a symbolic link
/// committed there that points outside is refused, as a path climbing out with `..` is. A path
/// that the user names from the working directory is the user's own choice.
fn buildspec_path(args: &BuildArgs) -> Result<PathBuf, String> {
    let in_dir = |rel: &str| {
        if !args.dir.is_dir() {
            return Ok(args.dir.join(rel));
        }
        // checked, then named as the user wrote it (diagnostics show `DIR/buildspec.yml`)
        meridian_core::path::confine(&args.dir, rel)
            .map(|_| args.dir.join(rel))
            .map_err(|e| {
                format!(
                    "the buildspec must be inside the source directory `{}`, not outside it: {e}",
                    args.dir.display()
                )
            })
    };
    match &args.buildspec {
        None => in_dir("buildspec.yml"),
        Some(p) if p.is_absolute() || p.exists() => Ok(p.clone()),
        Some(p) => in_dir(&p.to_string_lossy()),
    }
}

fn color() -> bool {
    std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none()
}

/// CodeBuild's rules for what the command line names: a project name (it names the cache
/// directory) and environment variable names.
fn check_build_args(args: &BuildArgs) -> Result<(), String> {
    let p = &args.project;
    let project_ok = (2..=255).contains(&p.len())
        && p.starts_with(|c: char| c.is_ascii_alphanumeric())
        && p.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
    if !project_ok {
        return Err(format!(
            "--project `{p}` is not a project name: CodeBuild's are 2 to 255 letters, digits, hyphens and underscores, starting with a letter or digit"
        ));
    }
    for (k, _) in &args.env {
        let ok = k.starts_with(|c: char| c.is_ascii_alphabetic() || c == '_')
            && k.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
        if !ok {
            return Err(format!(
                "--env `{k}` is not a valid environment variable name: use letters, digits and underscores, not starting with a digit"
            ));
        }
    }
    crate::check_region(&args.region)
}

pub fn build(args: BuildArgs, global: &Global) -> anyhow::Result<ExitCode> {
    if let Err(e) = check_build_args(&args) {
        crate::error(&e);
        return Ok(ExitCode::from(2));
    }
    let path = match buildspec_path(&args) {
        Ok(p) => p,
        Err(e) => {
            crate::error(&e);
            return Ok(ExitCode::from(2));
        }
    };
    let parsed = match parse_file(&path) {
        Ok(p) => p,
        Err(e) => {
            crate::error(&format!("cannot read the buildspec `{}`: {e}", path.display()));
            return Ok(ExitCode::from(2));
        }
    };
    eprint!("{}", parsed.render_diagnostics(color()));
    let Some(spec) = parsed.spec.as_ref().filter(|_| !parsed.has_errors()) else {
        let errors = parsed.diagnostics.iter().filter(|d| d.is_error()).count();
        eprintln!("invalid buildspec: {errors} error(s)");
        if global.output == OutputFormat::Json {
            let diags: Vec<_> = parsed.diagnostics.iter().map(|d| d.to_json(&parsed.sources)).collect();
            println!(
                "{}",
                serde_json::to_string_pretty(&json!({"valid": false, "diagnostics": diags}))?
            );
        }
        return Ok(ExitCode::from(1));
    };
    if args.plan {
        match global.output {
            OutputFormat::Text => print!("{}{}", plan::render(spec), batch_plan(spec)),
            OutputFormat::Json => {
                let diags: Vec<_> = parsed.diagnostics.iter().map(|d| d.to_json(&parsed.sources)).collect();
                println!(
                    "{}",
                    serde_json::to_string_pretty(
                        &json!({"valid": true, "diagnostics": diags, "plan": plan::render(spec)})
                    )?
                );
            }
        }
        return Ok(ExitCode::SUCCESS);
    }

    let builds = global.data_dir.join("builds");
    std::fs::create_dir_all(&builds).with_context(|| format!("failed to create `{}`", builds.display()))?;
    let mut ctx = BuildContext::new(&args.project, &args.dir, PathBuf::new());
    let uuid = ctx.build_id.rsplit(':').next().unwrap_or_default().to_string();
    ctx.work_dir = builds.join(&uuid);
    ctx.region = args.region.clone();
    ctx.timeout = match meridian_buildspec::project::build_timeout(args.timeout) {
        Ok(t) => t,
        Err(e) => {
            crate::error(&format!("--timeout {}: {e}", args.timeout));
            return Ok(ExitCode::from(2));
        }
    };
    ctx.cache_dir = Some(global.data_dir.join("cache").join(&args.project));
    // The data directory is often inside the source (`.meridian/`): never copy it into a build.
    ctx.exclude = vec![global.data_dir.clone()];
    ctx.env = args.env.iter().map(|(k, v)| EnvVar::plain(k, v)).collect();
    ctx.initiator = std::env::var("USER")
        .map(|u| format!("meridian/{u}"))
        .unwrap_or("meridian".into());
    ctx.resolved_source_version = git_head(&args.dir);
    if !spec.env.parameter_store.is_empty() || !spec.env.secrets_manager.is_empty() {
        ctx.secrets = Some(SecretStore::open(&global.data_dir)?);
    }
    if args.verbose {
        ctx.on_log = Some(Arc::new(|line: &str| eprintln!("{line}")));
    }
    // The build's AWS CLI, SDKs and SAM CLI reach the local region through the local endpoint,
    // served by this process while the build runs.
    let local = meridian_local::backend::backend(&global.data_dir, Arc::new(|l: &str| eprintln!("{l}")));
    ctx.aws_env = local
        .clients
        .environment(&ctx.region)
        .map_err(|e| anyhow::anyhow!("cannot serve the local endpoint for the build: {e}"))?;
    if spec.batch.is_some() {
        return run_batch_build(spec, &ctx, global);
    }
    eprintln!(
        "build {} started (log: {})",
        ctx.build_id,
        ctx.work_dir.join("build.log").display()
    );
    let outcome = match run_build(spec, &ctx) {
        Ok(o) => o,
        Err(e) => {
            crate::error(&format!("the build could not run: {e}"));
            return Ok(ExitCode::from(2));
        }
    };
    if let Some(out) = &args.output_dir {
        copy_artifacts(&outcome, out)?;
    }
    let _ = std::fs::write(
        ctx.work_dir.join("outcome.json"),
        serde_json::to_vec_pretty(&outcome).unwrap_or_default(),
    );
    // The copies of the sources and the collected artifacts are not kept: only the log and the
    // outcome stay under <data-dir>/builds/<build-id>/.
    for entry in std::fs::read_dir(&ctx.work_dir).into_iter().flatten().flatten() {
        if entry.path().is_dir() {
            let _ = std::fs::remove_dir_all(entry.path());
        }
    }
    match global.output {
        OutputFormat::Json => println!("{}", serde_json::to_string_pretty(&outcome)?),
        OutputFormat::Text => print_outcome(&outcome, args.output_dir.as_deref()),
    }
    Ok(if outcome.succeeded() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

/// The builds of a batch, for `--plan`.
fn batch_plan(spec: &meridian_buildspec::BuildSpec) -> String {
    let Some(b) = &spec.batch else {
        return String::new();
    };
    let mut out = format!(
        "batch: {} of {} build(s){}\n",
        b.kind.key(),
        b.builds.len(),
        if b.fast_fail { ", fast-fail" } else { "" }
    );
    for build in &b.builds {
        let mut line = format!("  {}", build.identifier);
        if let Some(s) = &build.buildspec {
            line.push_str(&format!(" (buildspec {s})"));
        }
        for (k, v) in &build.variables {
            line.push_str(&format!(" {k}={v}"));
        }
        if !build.depend_on.is_empty() {
            line.push_str(&format!(" after {}", build.depend_on.join(", ")));
        }
        if build.ignore_failure {
            line.push_str(" (failure ignored)");
        }
        out.push_str(&meridian_pipeline::source::escape_controls(&line));
        out.push('\n');
    }
    out
}

/// `meridian build` of a batch buildspec: every build of the batch, at most one per core at once.
fn run_batch_build(
    spec: &meridian_buildspec::BuildSpec,
    ctx: &BuildContext,
    global: &Global,
) -> anyhow::Result<ExitCode> {
    use meridian_buildspec::batch::{default_parallelism, run_batch};
    let parallel = default_parallelism();
    eprintln!(
        "batch build started: {} build(s), at most {parallel} at once (logs under {})",
        spec.batch.as_ref().map(|b| b.builds.len()).unwrap_or(0),
        ctx.work_dir.display()
    );
    let outcome = match run_batch(spec, ctx, parallel) {
        Ok(o) => o,
        Err(e) => {
            crate::error(&format!("the batch could not run: {e}"));
            return Ok(ExitCode::from(2));
        }
    };
    let _ = std::fs::write(
        ctx.work_dir.join("outcome.json"),
        serde_json::to_vec_pretty(&outcome).unwrap_or_default(),
    );
    // only the logs and outcomes stay, as for a single build
    for b in &outcome.builds {
        let dir = ctx.work_dir.join(&b.identifier);
        for entry in std::fs::read_dir(&dir).into_iter().flatten().flatten() {
            if entry.path().is_dir() {
                let _ = std::fs::remove_dir_all(entry.path());
            }
        }
    }
    match global.output {
        OutputFormat::Json => println!("{}", serde_json::to_string_pretty(&outcome)?),
        OutputFormat::Text => {
            for b in &outcome.builds {
                let status = b.status.map(|s| s.as_str()).unwrap_or("NOT_RUN");
                let mut line = format!("build {}: {status}", b.identifier);
                if b.ignore_failure && b.status != Some(meridian_buildspec::Status::Succeeded) {
                    line.push_str(" (failure ignored)");
                }
                if let Some(o) = &b.outcome {
                    line.push_str(&format!(
                        " in {:.1} s, log: {}",
                        o.duration_ms as f64 / 1000.0,
                        o.log_file.display()
                    ));
                }
                if let Some(r) = &b.reason {
                    line.push_str(&format!(": {r}"));
                }
                println!("{}", meridian_pipeline::source::escape_controls(&line));
            }
            println!(
                "batch {}: {} build(s) in {:.1} s",
                outcome.status.as_str(),
                outcome.builds.len(),
                outcome.duration_ms as f64 / 1000.0
            );
        }
    }
    Ok(if outcome.succeeded() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

fn git_head(dir: &Path) -> Option<String> {
    let out = std::process::Command::new("git")
        .args(["rev-parse", "HEAD"])
        .current_dir(dir)
        .stderr(std::process::Stdio::null())
        .output()
        .ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).trim().to_string())
}

fn copy_artifacts(outcome: &BuildOutcome, out: &Path) -> anyhow::Result<()> {
    for a in &outcome.artifacts {
        let to = match &a.identifier {
            None => out.to_path_buf(),
            Some(id) => out.join(id),
        };
        meridian_buildspec::files::copy_tree(&a.dir, &to)
            .with_context(|| format!("failed to copy artifacts to `{}`", to.display()))?;
    }
    Ok(())
}

fn print_outcome(o: &BuildOutcome, output_dir: Option<&Path>) {
    println!(
        "build {} {} in {:.1}s",
        o.build_id,
        o.status.as_str(),
        o.duration_ms as f64 / 1000.0
    );
    for p in &o.phases {
        let msg = p.message.as_deref().map(|m| format!(" ({m})")).unwrap_or_default();
        println!(
            "  {:<16} {:<9} {:>7.2}s{msg}",
            p.name,
            p.status.as_str(),
            p.duration_ms as f64 / 1000.0
        );
    }
    for r in &o.reports {
        println!(
            "  report {}: {} tests, {} passed, {} failed, {} skipped",
            r.group, r.counts.total, r.counts.passed, r.counts.failed, r.counts.skipped
        );
    }
    for a in &o.artifacts {
        let label = a.identifier.as_deref().unwrap_or("primary");
        let place = match output_dir {
            Some(d) => match &a.identifier {
                None => format!(" -> {}", d.display()),
                Some(id) => format!(" -> {}", d.join(id).display()),
            },
            None => String::new(),
        };
        println!("  artifact {label}: {} files{place}", a.files);
    }
    for (k, v) in &o.exported_variables {
        println!("  exported {k}={v}");
    }
    for w in &o.warnings {
        eprintln!("warning: {w}");
    }
    if o.status != Status::Succeeded {
        eprintln!("log: {}", o.log_file.display());
    }
}

#[derive(Clone, Copy, Debug, clap::ValueEnum)]
pub enum KindArg {
    Parameter,
    Secret,
}

impl From<KindArg> for SecretKind {
    fn from(k: KindArg) -> Self {
        match k {
            KindArg::Parameter => SecretKind::Parameter,
            KindArg::Secret => SecretKind::Secret,
        }
    }
}

#[derive(clap::Args, Debug)]
pub struct Where {
    /// The local region whose store to use.
    #[arg(long)]
    pub region: String,
    /// Parameter Store (`parameter-store`) or Secrets Manager (`secrets-manager`).
    #[arg(long, value_enum, default_value_t = KindArg::Secret)]
    pub kind: KindArg,
}

#[derive(clap::Subcommand, Debug)]
pub enum SecretsCommand {
    /// Store a value (for a secret: a new version, labelled AWSCURRENT).
    Put {
        #[command(flatten)]
        at: Where,
        name: String,
        /// The value; read from standard input when left out (keeps it out of shell history).
        value: Option<String>,
    },
    /// Print a value.
    Get {
        #[command(flatten)]
        at: Where,
        name: String,
        /// A version stage, such as AWSPREVIOUS (secrets).
        #[arg(long)]
        version_stage: Option<String>,
        /// A version id (secrets).
        #[arg(long)]
        version_id: Option<String>,
    },
    /// List names (never values).
    List {
        #[command(flatten)]
        at: Where,
    },
}

pub fn secrets(cmd: SecretsCommand, global: &Global) -> anyhow::Result<ExitCode> {
    let region = match &cmd {
        SecretsCommand::Put { at, .. } | SecretsCommand::Get { at, .. } => &at.region,
        SecretsCommand::List { at } => &at.region,
    };
    if let Err(e) = crate::check_region(region) {
        crate::error(&e);
        return Ok(ExitCode::from(2));
    }
    let store = SecretStore::open(&global.data_dir)?;
    match cmd {
        SecretsCommand::Put { at, name, value } => {
            let value = match value {
                Some(v) => v,
                None => {
                    let mut s = String::new();
                    std::io::stdin()
                        .read_to_string(&mut s)
                        .context("failed to read the value from stdin")?;
                    s.strip_suffix('\n').map(str::to_string).unwrap_or(s)
                }
            };
            let kind: SecretKind = at.kind.into();
            let id = store.put(&at.region, kind, &name, &value)?;
            match global.output {
                OutputFormat::Json => println!(
                    "{}",
                    json!({"name": name, "kind": kind.as_str(), "region": at.region, "versionId": id})
                ),
                OutputFormat::Text => eprintln!("stored {} `{name}` in {} (version {id})", kind.as_str(), at.region),
            }
            Ok(ExitCode::SUCCESS)
        }
        SecretsCommand::Get {
            at,
            name,
            version_stage,
            version_id,
        } => {
            let kind: SecretKind = at.kind.into();
            match store.get_version(&at.region, kind, &name, version_stage.as_deref(), version_id.as_deref())? {
                Some(v) => {
                    match global.output {
                        OutputFormat::Json => println!("{}", json!({"name": name, "value": v})),
                        OutputFormat::Text => println!("{v}"),
                    }
                    Ok(ExitCode::SUCCESS)
                }
                None => {
                    crate::error(&format!("no {} `{name}` in {}", kind.as_str(), at.region));
                    Ok(ExitCode::from(1))
                }
            }
        }
        SecretsCommand::List { at } => {
            let kind: SecretKind = at.kind.into();
            let listed = store.list(&at.region, kind)?;
            match global.output {
                OutputFormat::Json => println!("{}", serde_json::to_string_pretty(&listed)?),
                OutputFormat::Text => {
                    for l in &listed {
                        println!("{}\t{} version(s)\tupdated {}", l.name, l.versions, l.updated);
                    }
                    if listed.is_empty() {
                        eprintln!("no {}s in {}", kind.as_str(), at.region);
                    }
                }
            }
            Ok(ExitCode::SUCCESS)
        }
    }
}
