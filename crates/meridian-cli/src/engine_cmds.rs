//! `meridian run`, `resume`, `executions`, `approve`, `retry`, `stop` and `logs`: starting
//! executions and looking at them. The engine does the work; this module presents it.

use crate::pipeline_cmds::{parse_kv, print_diagnostics};
use crate::{Global, OutputFormat};
use anyhow::{anyhow, bail, Context};
use meridian_core::clock::format_rfc3339;
use meridian_engine::journal::{ActionRow, ExecutionRow};
use meridian_engine::{Engine, ExecutionStatus, RunEnv};
use serde_json::json;
use std::collections::BTreeMap;
use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

#[derive(clap::Args, Debug)]
pub struct RunArgs {
    /// The pipeline definition (meridian.yaml, CodePipeline JSON or a CloudFormation template).
    pub file: PathBuf,
    /// A CloudFormation parameter value, NAME=VALUE (repeatable).
    #[arg(long = "param", value_parser = parse_kv)]
    pub params: Vec<(String, String)>,
    /// A pipeline variable, NAME=VALUE, overriding its default (repeatable).
    #[arg(long = "var", value_parser = parse_kv)]
    pub vars: Vec<(String, String)>,
    /// A local git repository for a GitHub/CodeStar/CodeCommit source: ID=PATH, where ID is
    /// `owner/repo` or the CodeCommit repository name (repeatable).
    #[arg(long = "repo", value_parser = parse_kv)]
    pub repos: Vec<(String, String)>,
    /// Which pipeline, when the file declares several.
    #[arg(long)]
    pub pipeline: Option<String>,
    /// `--region` (the pipeline's home region: where actions without a region run, and a
    /// template's `AWS::Region`), `--stack-name` and `--account-id`.
    #[command(flatten)]
    pub read: crate::pipeline_cmds::ReadArgs,
    /// Where local artifact stores live (`Local` store paths and S3 buckets run locally are under
    /// it). Default: the data directory.
    #[arg(long)]
    pub artifact_root: Option<PathBuf>,
    /// Run N times faster: timeouts and waits are divided by N.
    #[arg(long, default_value_t = 1.0)]
    pub time_scale: f64,
    /// Keep the artifacts of this many executions per pipeline; older ones are deleted.
    #[arg(long, default_value_t = 10)]
    pub retain: usize,
    /// Deploy every region now, even where its deployment window is closed (recorded).
    #[arg(long)]
    pub skip_windows: bool,
    /// Stream every action's log lines to stderr.
    #[arg(long, short)]
    pub verbose: bool,
}

#[derive(clap::Args, Debug)]
pub struct ExecArg {
    /// The execution id (or a unique prefix of it).
    pub execution: String,
    #[arg(long, short)]
    pub verbose: bool,
}

#[derive(clap::Subcommand, Debug)]
pub enum ExecutionsCommand {
    /// Every execution, oldest first.
    List {
        #[arg(long)]
        pipeline: Option<String>,
    },
    /// One execution: stages, actions, timing, errors, variables, artifacts, events, logs.
    Show { execution: String },
}

#[derive(clap::Args, Debug)]
pub struct ApproveArgs {
    pub execution: String,
    /// The manual approval action's name.
    pub action: String,
    #[arg(long)]
    pub reject: bool,
    #[arg(long)]
    pub comment: Option<String>,
    /// The action is a deploy waiting for its region's deployment window: deploy now.
    #[arg(long, conflicts_with = "reject")]
    pub skip_window: bool,
}

#[derive(clap::Args, Debug)]
pub struct RetryArgs {
    pub execution: String,
    /// Run again only the failed actions of the failed stage (the default).
    #[arg(long, conflicts_with = "all_actions")]
    pub failed_actions: bool,
    /// Run again every action of the failed stage.
    #[arg(long)]
    pub all_actions: bool,
    #[arg(long, short)]
    pub verbose: bool,
}

#[derive(clap::Args, Debug)]
pub struct StopArgs {
    pub execution: String,
    /// Kill the running actions now instead of letting them finish.
    #[arg(long)]
    pub abandon: bool,
    #[arg(long, default_value = "stopped by the operator")]
    pub reason: String,
}

#[derive(clap::Args, Debug)]
pub struct LogsArgs {
    pub execution: String,
    pub action: String,
}

fn absolute(p: &Path) -> PathBuf {
    std::path::absolute(p).unwrap_or_else(|_| p.to_path_buf())
}

/// Opens the engine and starts a `meridian resume` for every execution whose process died, so
/// that no execution stays in progress forever.
pub fn open_engine(global: &Global) -> anyhow::Result<Engine> {
    let data_dir = absolute(&global.data_dir);
    let mut engine =
        Engine::open(&data_dir).with_context(|| format!("failed to open the data directory {}", data_dir.display()))?;
    // Each execution's regions are reached through the backends its pipeline asks for; local
    // stacks (and the Lambda host under them) open when a CloudFormation action first runs.
    engine.wiring = Arc::new(meridian_wiring::Wiring::new(
        &data_dir,
        Arc::new(|l: &str| eprintln!("{l}")),
    ));
    let dd = data_dir.clone();
    engine.on_orphan = Some(Arc::new(move |id: &str| spawn_resume(&dd, id)));
    for o in engine.orphans()? {
        spawn_resume(&data_dir, &o.id);
    }
    Ok(engine)
}

/// Starts `meridian resume ID` as a detached process with its output in the execution's folder.
fn spawn_resume(data_dir: &Path, id: &str) {
    let Ok(exe) = std::env::current_exe() else { return };
    let dir = data_dir.join("executions").join(id);
    let _ = std::fs::create_dir_all(&dir);
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(dir.join("resume.log"));
    let mut cmd = std::process::Command::new(exe);
    cmd.arg("--data-dir")
        .arg(data_dir)
        .arg("resume")
        .arg(id)
        .stdin(std::process::Stdio::null());
    if let Ok(log) = log {
        if let Ok(l2) = log.try_clone() {
            cmd.stdout(l2).stderr(log);
        }
    }
    use std::os::unix::process::CommandExt;
    cmd.process_group(0);
    let _ = cmd.spawn();
}

fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("failed to start the async runtime")
}

fn ms(t: Option<i64>) -> serde_json::Value {
    t.map(|t| {
        json!(format!(
            "{}.{:03}Z",
            format_rfc3339(t / 1000).trim_end_matches('Z'),
            t % 1000
        ))
    })
    .unwrap_or(serde_json::Value::Null)
}

fn elapsed(start: Option<i64>, end: Option<i64>) -> String {
    match start {
        None => String::new(),
        Some(s) => {
            let e = end.unwrap_or_else(meridian_engine::journal::now_millis);
            format!("{:.1}s", (e - s) as f64 / 1000.0)
        }
    }
}

/// The JSON form of an execution, as `run --output json` and `executions show` print it.
pub fn execution_json(engine: &Engine, id: &str, detail: bool) -> anyhow::Result<serde_json::Value> {
    let j = &engine.journal;
    let row = j.execution(id)?;
    let stages = j.stages(id)?;
    let actions = j.actions(id)?;
    let stages_json: Vec<_> = stages
        .iter()
        .map(|s| {
            let acts: Vec<_> = actions
                .iter()
                .filter(|a| a.stage_idx == s.idx)
                .map(|a| {
                    let mut v = json!({
                        "name": a.name, "region": a.region, "runOrder": a.run_order, "provider": a.provider,
                        "status": a.status.to_string(), "attempt": a.attempt,
                        "startedAt": ms(a.started_at), "endedAt": ms(a.ended_at), "error": a.error,
                        "outputVariables": a.output_variables,
                    });
                    if detail {
                        v["namespace"] = json!(a.namespace);
                        v["logPath"] = json!(a.log_path);
                    }
                    v
                })
                .collect();
            json!({"name": s.name, "status": s.status.to_string(), "attempt": s.attempt, "startedAt": ms(s.started_at), "endedAt": ms(s.ended_at), "actions": acts})
        })
        .collect();
    let mut v = json!({
        "executionId": row.id, "pipeline": row.pipeline, "status": row.status.to_string(), "statusReason": row.status_reason,
        "executionMode": row.mode, "trigger": row.trigger, "startedAt": ms(Some(row.started_at)), "endedAt": ms(row.ended_at),
        "waiting": row.waiting, "stages": stages_json,
    });
    if detail {
        let env = stored_env(&row);
        v["variables"] = json!(env.map(|e| e.variables).unwrap_or_default());
        v["artifacts"] = json!(j.artifacts(id)?);
        v["events"] = json!(j.events(id)?);
    }
    Ok(v)
}

fn stored_env(row: &ExecutionRow) -> Option<RunEnv> {
    let v: Option<serde_json::Value> = serde_json::from_str(&row.context).ok();
    v.and_then(|v| serde_json::from_value(v["env"].clone()).ok())
}

fn status_mark(s: &str) -> &'static str {
    match s {
        "Succeeded" => "ok",
        "Failed" => "FAILED",
        "InProgress" => "..",
        "Abandoned" => "abandoned",
        _ => "",
    }
}

/// One line per stage and per action: region, state, elapsed time.
fn render(row: &ExecutionRow, stages: &[meridian_engine::journal::StageRow], actions: &[ActionRow]) -> Vec<String> {
    let mut lines = vec![format!(
        "{} {} {}{}",
        row.pipeline,
        &row.id[..8],
        row.status,
        row.waiting
            .as_ref()
            .map(|w| format!(" (waiting: {w})"))
            .unwrap_or_default()
    )];
    for s in stages {
        lines.push(format!(
            "  {:<28} {:<11} {:>8}",
            s.name,
            s.status.to_string(),
            elapsed(s.started_at, s.ended_at)
        ));
        for a in actions.iter().filter(|a| a.stage_idx == s.idx) {
            lines.push(format!(
                "    {:<26} {:<15} {:<11} {:>8} {}",
                a.name,
                a.region,
                a.status.to_string(),
                elapsed(a.started_at, a.ended_at),
                status_mark(&a.status.to_string())
            ));
        }
    }
    lines
}

/// Drives an execution to its end with live progress on a terminal, then prints the summary.
fn drive_and_report(engine: Engine, id: &str, global: &Global) -> anyhow::Result<ExitCode> {
    let rt = runtime()?;
    let engine = Arc::new(engine);
    let tty = std::io::stderr().is_terminal();
    let status = rt.block_on(async {
        let progress = if tty && engine.echo.is_none() {
            let engine = engine.clone();
            let id = id.to_string();
            Some(tokio::spawn(async move {
                let mut drawn = 0usize;
                loop {
                    if let (Ok(row), Ok(st), Ok(ac)) = (
                        engine.journal.execution(&id),
                        engine.journal.stages(&id),
                        engine.journal.actions(&id),
                    ) {
                        let lines = render(&row, &st, &ac);
                        let mut err = std::io::stderr().lock();
                        if drawn > 0 {
                            let _ = write!(err, "\x1b[{drawn}A\x1b[J");
                        }
                        for l in &lines {
                            let _ = writeln!(err, "{l}");
                        }
                        drawn = lines.len();
                    }
                    tokio::time::sleep(Duration::from_millis(200)).await;
                }
            }))
        } else {
            None
        };
        let r = engine.drive(id).await;
        if let Some(p) = progress {
            p.abort();
            let _ = p.await;
        }
        r
    });
    let status = status.map_err(|e| anyhow!("execution {id}: {e}"))?;
    report(&engine, id, global)?;
    Ok(if status == ExecutionStatus::Succeeded {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

fn report(engine: &Engine, id: &str, global: &Global) -> anyhow::Result<()> {
    let row = engine.journal.execution(id)?;
    match global.output {
        OutputFormat::Json => println!("{}", serde_json::to_string_pretty(&execution_json(engine, id, false)?)?),
        OutputFormat::Text => {
            for l in render(&row, &engine.journal.stages(id)?, &engine.journal.actions(id)?) {
                eprintln!("{l}");
            }
            for a in engine.journal.actions(id)?.iter().filter(|a| a.error.is_some()) {
                eprintln!(
                    "  {} ({}): {}",
                    a.name,
                    a.region,
                    a.error.as_deref().unwrap_or_default()
                );
            }
            eprintln!(
                "execution {} {}{}",
                row.id,
                row.status,
                row.status_reason.map(|r| format!(": {r}")).unwrap_or_default()
            );
        }
    }
    Ok(())
}

/// The delivery settings of a native pipeline (`deploy:` and `regions:`) for its run.
fn delivery_env(p: &meridian_pipeline::model::Pipeline, base_dir: Option<&Path>) -> anyhow::Result<RunEnv> {
    let mut env = RunEnv::default();
    let Some(d) = &p.meridian.delivery else {
        return Ok(env);
    };
    env.delivery.preference = d.deployment_preference.clone();
    if let Some(t) = &d.traffic {
        let mut payloads = Vec::new();
        if let Some(file) = &t.payloads {
            let path = base_dir.map(|b| b.join(file)).unwrap_or_else(|| PathBuf::from(file));
            let text = std::fs::read_to_string(&path)
                .with_context(|| format!("cannot read the traffic payloads {}", path.display()))?;
            for (i, line) in text.lines().enumerate().filter(|(_, l)| !l.trim().is_empty()) {
                serde_json::from_str::<serde_json::Value>(line).with_context(|| {
                    format!(
                        "{}:{}: a traffic payload must be one JSON document per line",
                        path.display(),
                        i + 1
                    )
                })?;
                payloads.push(line.to_string());
            }
        }
        env.delivery.traffic = Some(meridian_engine::stacks::TrafficSpec {
            rate: t.rate,
            payloads,
            route: t.route.clone(),
        });
    }
    if let Some(j) = &d.judge {
        let mut cfg = meridian_delivery::judge::JudgeConfig::default();
        if let Some(n) = j.min_invocations {
            cfg.min_invocations = n.max(1) as u64;
        }
        if let Some(x) = j.max_error_rate_increase {
            cfg.max_error_rate_increase = x;
        }
        if let Some(x) = j.max_p99_ratio {
            cfg.max_p99_ratio = x;
        }
        env.delivery.judge = Some(cfg);
    }
    env.rollback_all_regions = d.rollback.as_deref() == Some("execution");
    env.windows = d.windows.clone();
    env.max_parallel_regions = d.max_parallel_regions.filter(|n| *n > 0).map(|n| n as usize);
    Ok(env)
}

fn echo_fn() -> Arc<dyn Fn(&str) + Send + Sync> {
    Arc::new(|l: &str| eprintln!("{l}"))
}

pub fn run(args: RunArgs, global: &Global) -> anyhow::Result<ExitCode> {
    if let Err(e) = crate::pipeline_cmds::check_region(&args.read) {
        bail!("{e}");
    }
    let opts = crate::pipeline_cmds::load_options(&args.params, &args.pipeline, &args.read);
    let loaded = meridian_pipeline::load_files(std::slice::from_ref(&args.file), &opts);
    print_diagnostics(&loaded);
    if loaded.unreadable || loaded.has_errors() {
        eprintln!("not run: {} has errors (see above)", args.file.display());
        return Ok(ExitCode::from(2));
    }
    if loaded.pipelines.len() > 1 {
        let names: Vec<_> = loaded.pipelines.iter().map(|p| p.name.as_str()).collect();
        bail!(
            "{} declares several pipelines ({}): choose one with --pipeline",
            args.file.display(),
            names.join(", ")
        );
    }
    let Some(p) = loaded.pipelines.into_iter().next() else {
        bail!("{} declares no pipeline", args.file.display())
    };
    let mut variables: BTreeMap<String, String> = p
        .variables
        .iter()
        .map(|v| (v.name.clone(), v.default_value.clone().unwrap_or_default()))
        .collect();
    for (k, v) in &args.vars {
        if !variables.contains_key(k) {
            let known: Vec<&str> = variables.keys().map(String::as_str).collect();
            bail!(
                "--var {k}: the pipeline has no variable `{k}` (it has: {})",
                if known.is_empty() {
                    "none".into()
                } else {
                    known.join(", ")
                }
            );
        }
        variables.insert(k.clone(), v.clone());
    }
    let missing: Vec<&String> = p
        .variables
        .iter()
        .filter(|v| v.default_value.is_none() && !args.vars.iter().any(|(k, _)| k == &v.name))
        .map(|v| &v.name)
        .collect();
    if let Some(m) = missing.first() {
        bail!("pipeline variable `{m}` has no default: pass --var {m}=VALUE");
    }
    if args.time_scale <= 0.0 {
        bail!("--time-scale must be positive");
    }
    let mut engine = open_engine(global)?;
    if args.verbose {
        engine.echo = Some(echo_fn());
    }
    let base_dir = meridian_pipeline::base_dir(&p, &loaded.sources).map(|d| absolute(&d));
    let env = RunEnv {
        data_dir: engine.data_dir.clone(),
        base_dir: base_dir.clone(),
        repos: args
            .repos
            .iter()
            .map(|(k, v)| (k.clone(), absolute(Path::new(v))))
            .collect(),
        variables,
        home_region: meridian_engine::driver::home_region(
            &p,
            args.read
                .region
                .as_deref()
                .or(Some(p.home_region.as_str()).filter(|r| !r.is_empty())),
        ),
        artifact_root: args.artifact_root.as_deref().map(absolute),
        time_scale: args.time_scale,
        retain: args.retain,
        skip_windows: args.skip_windows,
        ..delivery_env(&p, base_dir.as_deref())?
    };
    let id = engine.start(&p, env, "StartPipelineExecution (meridian run)")?;
    eprintln!("execution {id} of {} started", p.name);
    drive_and_report(engine, &id, global)
}

pub fn resume(args: ExecArg, global: &Global) -> anyhow::Result<ExitCode> {
    let mut engine = open_engine(global)?;
    if args.verbose {
        engine.echo = Some(echo_fn());
    }
    let id = engine.journal.resolve_id(&args.execution)?;
    match engine.take_over(&id)? {
        None => {
            eprintln!("execution {id} is not orphaned (finished, or another process runs it)");
            Ok(ExitCode::SUCCESS)
        }
        Some(false) => {
            report(&engine, &id, global)?;
            Ok(ExitCode::from(1))
        }
        Some(true) => {
            eprintln!("resuming execution {id}");
            drive_and_report(engine, &id, global)
        }
    }
}

pub fn executions(cmd: ExecutionsCommand, global: &Global) -> anyhow::Result<ExitCode> {
    let engine = open_engine(global)?;
    match cmd {
        ExecutionsCommand::List { pipeline } => {
            let rows = engine.journal.executions(pipeline.as_deref())?;
            match global.output {
                OutputFormat::Json => {
                    let v: Vec<_> = rows
                        .iter()
                        .map(|r| json!({"executionId": r.id, "pipeline": r.pipeline, "status": r.status.to_string(), "statusReason": r.status_reason, "trigger": r.trigger, "startedAt": ms(Some(r.started_at)), "endedAt": ms(r.ended_at), "waiting": r.waiting}))
                        .collect();
                    println!("{}", serde_json::to_string_pretty(&v)?);
                }
                OutputFormat::Text => {
                    println!(
                        "{:<36}  {:<20} {:<11} {:<20} {:>9}",
                        "EXECUTION", "PIPELINE", "STATUS", "STARTED", "DURATION"
                    );
                    for r in rows {
                        println!(
                            "{:<36}  {:<20} {:<11} {:<20} {:>9}",
                            r.id,
                            r.pipeline,
                            r.status.to_string(),
                            format_rfc3339(r.started_at / 1000),
                            elapsed(Some(r.started_at), r.ended_at)
                        );
                    }
                }
            }
        }
        ExecutionsCommand::Show { execution } => {
            let id = engine.journal.resolve_id(&execution)?;
            match global.output {
                OutputFormat::Json => println!(
                    "{}",
                    serde_json::to_string_pretty(&execution_json(&engine, &id, true)?)?
                ),
                OutputFormat::Text => {
                    let row = engine.journal.execution(&id)?;
                    println!("execution {} of {} ({})", row.id, row.pipeline, row.mode);
                    println!(
                        "status:  {}{}",
                        row.status,
                        row.status_reason.as_ref().map(|r| format!(": {r}")).unwrap_or_default()
                    );
                    println!("trigger: {}", row.trigger);
                    println!(
                        "started: {}  duration: {}",
                        format_rfc3339(row.started_at / 1000),
                        elapsed(Some(row.started_at), row.ended_at)
                    );
                    for l in render(&row, &engine.journal.stages(&id)?, &engine.journal.actions(&id)?)
                        .into_iter()
                        .skip(1)
                    {
                        println!("{l}");
                    }
                    for a in engine.journal.actions(&id)? {
                        if let Some(e) = &a.error {
                            println!("error in {} ({}): {e}", a.name, a.region);
                        }
                        if !a.output_variables.is_empty() {
                            let vars: Vec<String> = a
                                .output_variables
                                .iter()
                                .map(|(k, v)| format!("{k}={}", v.as_str().unwrap_or_default()))
                                .collect();
                            println!(
                                "variables of {}{}: {}",
                                a.name,
                                a.namespace
                                    .as_ref()
                                    .map(|n| format!(" (#{{{n}.*}})"))
                                    .unwrap_or_default(),
                                vars.join(", ")
                            );
                        }
                        if let Some(l) = &a.log_path {
                            println!("log of {}: {l}", a.name);
                        }
                    }
                    for art in engine.journal.artifacts(&id)? {
                        println!(
                            "artifact {}: {} ({} bytes, {})",
                            art.name, art.digest, art.size, art.region
                        );
                    }
                    println!("events:");
                    for e in engine.journal.events(&id)? {
                        println!(
                            "  {} {}{}{}{}",
                            format_rfc3339(e.at / 1000),
                            e.kind,
                            e.stage.map(|s| format!(" {s}")).unwrap_or_default(),
                            e.action.map(|a| format!(" / {a}")).unwrap_or_default(),
                            e.detail.map(|d| format!(": {d}")).unwrap_or_default()
                        );
                    }
                }
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

pub fn approve(args: ApproveArgs, global: &Global) -> anyhow::Result<ExitCode> {
    let engine = open_engine(global)?;
    let id = engine.journal.resolve_id(&args.execution)?;
    if args.skip_window {
        engine.skip_window(&id, &args.action, args.comment.as_deref())?;
        eprintln!(
            "`{}` of execution {id} deploys now, outside its window (recorded)",
            args.action
        );
        return Ok(ExitCode::SUCCESS);
    }
    engine.approve(&id, &args.action, !args.reject, args.comment.as_deref())?;
    eprintln!(
        "{} `{}` of execution {id}",
        if args.reject { "rejected" } else { "approved" },
        args.action
    );
    Ok(ExitCode::SUCCESS)
}

pub fn retry(args: RetryArgs, global: &Global) -> anyhow::Result<ExitCode> {
    let mut engine = open_engine(global)?;
    if args.verbose {
        engine.echo = Some(echo_fn());
    }
    let id = engine.journal.resolve_id(&args.execution)?;
    let stage = engine.prepare_retry(&id, args.all_actions)?;
    eprintln!(
        "retrying stage {stage} of execution {id} ({} actions)",
        if args.all_actions { "all" } else { "failed" }
    );
    drive_and_report(engine, &id, global)
}

pub fn stop(args: StopArgs, global: &Global) -> anyhow::Result<ExitCode> {
    let engine = open_engine(global)?;
    let id = engine.journal.resolve_id(&args.execution)?;
    let status = engine.stop(&id, args.abandon, &args.reason)?;
    eprintln!(
        "execution {id}: {status} ({})",
        if args.abandon {
            "running actions are abandoned"
        } else {
            "running actions finish first"
        }
    );
    Ok(ExitCode::SUCCESS)
}

pub fn logs(args: LogsArgs, global: &Global) -> anyhow::Result<ExitCode> {
    let engine = open_engine(global)?;
    let id = engine.journal.resolve_id(&args.execution)?;
    let actions = engine.journal.actions(&id)?;
    let Some(a) = actions.iter().find(|a| a.name == args.action) else {
        let names: Vec<&str> = actions.iter().map(|a| a.name.as_str()).collect();
        bail!(
            "execution {id} has no action `{}` (it has: {})",
            args.action,
            names.join(", ")
        );
    };
    let Some(path) = &a.log_path else {
        bail!("action `{}` has not run, so it has no log", a.name)
    };
    let text = std::fs::read_to_string(path).with_context(|| format!("failed to read {path}"))?;
    print!("{text}");
    Ok(ExitCode::SUCCESS)
}

/// `meridian reset-journal`: moves the journal aside (with its WAL), keeping it.
pub fn reset_journal(global: &Global) -> anyhow::Result<ExitCode> {
    let data_dir = absolute(&global.data_dir);
    let aside = meridian_engine::journal::Journal::quarantine(&data_dir)?;
    eprintln!(
        "moved the journal aside to {}; the next command starts a fresh one (execution history and release ledger start empty)",
        aside.display()
    );
    Ok(ExitCode::SUCCESS)
}
