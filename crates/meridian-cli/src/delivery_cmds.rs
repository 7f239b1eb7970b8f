//! Progressive delivery from the command line: `meridian releases` (the ledger), `rollback`,
//! `deployments`, the operator controls `promote`, `extend` and `abort`, and `windows`.

use crate::stack_cmds::{data_dir, print_json};
use crate::{Global, OutputFormat};
use anyhow::{anyhow, bail, Context};
use meridian_delivery::window::Window;
use meridian_engine::delivery::{Command as DeployCommand, DeliveryStore, DeploymentRow};
use meridian_engine::journal::Journal;
use meridian_engine::ledger::{self, ReleaseRow};
use meridian_engine::stacks::{DeliveryOptions, Progress};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

fn utc(ms: i64) -> String {
    meridian_core::clock::format_rfc3339(ms / 1000)
}

/// A pipeline given by name, or by its definition file.
fn pipeline_name(arg: &str) -> anyhow::Result<String> {
    let path = Path::new(arg);
    if !path.is_file() {
        return Ok(arg.to_string());
    }
    Ok(load_pipeline(path)?.name)
}

fn load_pipeline(path: &Path) -> anyhow::Result<meridian_pipeline::model::Pipeline> {
    let loaded = meridian_pipeline::load_files(&[path.to_path_buf()], &Default::default());
    if loaded.unreadable || loaded.has_errors() {
        crate::pipeline_cmds::print_diagnostics(&loaded);
        bail!("{} has errors (see above)", path.display());
    }
    loaded
        .pipelines
        .into_iter()
        .next()
        .ok_or_else(|| anyhow!("{} declares no pipeline", path.display()))
}

#[derive(clap::Args, Debug)]
pub struct ReleasesArgs {
    /// The pipeline's name (or its definition file).
    pub pipeline: String,
    /// Every deploy attempt, oldest first, instead of what is live.
    #[arg(long)]
    pub history: bool,
}

fn functions_text(r: &ReleaseRow) -> String {
    if r.functions.is_empty() {
        return "-".into();
    }
    r.functions
        .iter()
        .map(|f| format!("{}:{}=v{}", f.function, f.alias, f.version))
        .collect::<Vec<_>>()
        .join(" ")
}

pub fn releases(args: ReleasesArgs, global: &Global) -> anyhow::Result<ExitCode> {
    let name = pipeline_name(&args.pipeline)?;
    let journal = Journal::open(&data_dir(global))?;
    let rows: Vec<ReleaseRow> = if args.history {
        journal.releases(Some(&name))?
    } else {
        journal.live_releases(&name)?.into_values().collect()
    };
    if global.output == OutputFormat::Json {
        print_json(&rows)?;
        return Ok(ExitCode::SUCCESS);
    }
    if rows.is_empty() {
        eprintln!("pipeline {name} has no releases in the ledger yet (it records every region a pipeline deploys)");
        return Ok(ExitCode::SUCCESS);
    }
    if args.history {
        println!(
            "{:<5} {:<15} {:<17} {:<12} {:<9} {:<21} DETAIL",
            "SEQ", "REGION", "RELEASE", "STATUS", "EXECUTION", "AT (UTC)"
        );
        for r in &rows {
            println!(
                "{:<5} {:<15} {:<17} {:<12} {:<9} {:<21} {}",
                r.seq,
                r.region,
                r.release_id,
                r.status,
                r.execution_id.as_deref().map(|e| &e[..e.len().min(8)]).unwrap_or("-"),
                utc(r.at),
                r.detail.as_deref().unwrap_or(&functions_text(r))
            );
        }
    } else {
        println!(
            "{:<15} {:<17} {:<9} {:<21} {:<20} FUNCTIONS",
            "REGION", "RELEASE", "EXECUTION", "DEPLOYED (UTC)", "TEMPLATE"
        );
        for r in &rows {
            println!(
                "{:<15} {:<17} {:<9} {:<21} {:<20} {}",
                r.region,
                r.release_id,
                r.execution_id.as_deref().map(|e| &e[..e.len().min(8)]).unwrap_or("-"),
                utc(r.at),
                &r.template_digest[..r.template_digest.len().min(19)],
                functions_text(r)
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}

#[derive(clap::Args, Debug)]
pub struct RollbackArgs {
    /// The pipeline's name (or its definition file).
    pub pipeline: String,
    /// Only these regions (comma-separated). Default: every region with a live release.
    #[arg(long, value_delimiter = ',')]
    pub regions: Vec<String>,
    /// The release to put back (a release id or an execution id, or a prefix). Default: each
    /// region's release before the live one.
    #[arg(long)]
    pub to: Option<String>,
    /// Shift traffic with this schedule instead of the template's (e.g. AllAtOnce).
    #[arg(long)]
    pub preference: Option<String>,
    /// Run N times faster: bakes and hook timeouts are divided by N.
    #[arg(long, default_value_t = 1.0)]
    pub time_scale: f64,
}

pub fn rollback(args: RollbackArgs, global: &Global) -> anyhow::Result<ExitCode> {
    let name = pipeline_name(&args.pipeline)?;
    let dir = data_dir(global);
    let journal = Journal::open(&dir)?;
    let live = journal.live_releases(&name)?;
    if live.is_empty() {
        bail!("pipeline {name} has no live release in any region: nothing to roll back");
    }
    let regions: Vec<String> = if args.regions.is_empty() {
        live.keys().cloned().collect()
    } else {
        for r in &args.regions {
            if !live.contains_key(r) {
                bail!(
                    "pipeline {name} has no live release in {r} (it has: {})",
                    live.keys().cloned().collect::<Vec<_>>().join(", ")
                );
            }
        }
        args.regions.clone()
    };
    let all = journal.releases(Some(&name))?;
    // Each region is reached through the backend its pipeline names (the definition its live
    // release was deployed by, as the journal keeps it), and aliases move through the engine's
    // delivery driver, as in a run.
    let wiring = meridian_wiring::Wiring::new(&dir, Arc::new(|l: &str| eprintln!("{l}")));
    // the definition a release was deployed by, as the journal keeps it
    let definition_of = |release: &ReleaseRow| match release.execution_id.as_deref().map(|id| journal.execution(id)) {
        Some(Ok(row)) => meridian_pipeline::load_str("journal", &row.definition, &Default::default())
            .pipelines
            .into_iter()
            .next(),
        _ => None,
    };
    let backend_of = |release: &ReleaseRow, or: &ReleaseRow| -> anyhow::Result<meridian_region::RegionBackend> {
        // a release a rollback made has no execution: the other release's definition then says
        let choice = definition_of(release)
            .or_else(|| definition_of(or))
            .as_ref()
            .map(meridian_engine::driver::backend_choice)
            .unwrap_or_default();
        let regions = meridian_region::Wiring::regions(&wiring, &choice).map_err(|e| anyhow!(e.to_string()))?;
        Ok(regions
            .get(&release.region)
            .map_err(|e| anyhow!(e.to_string()))?
            .clone())
    };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("failed to start the async runtime")?;
    let mut failed = false;
    for region in regions {
        let current = &live[&region];
        let target = match &args.to {
            Some(to) => all
                .iter()
                .rev()
                .filter(|r| r.region == region && r.status != "failed")
                .find(|r| {
                    r.release_id.starts_with(to.as_str())
                        || r.release_id.trim_start_matches("rel-").starts_with(to.as_str())
                        || r.execution_id.as_deref().is_some_and(|e| e.starts_with(to.as_str()))
                })
                .cloned(),
            None => journal.previous_release(&name, &region)?,
        };
        let Some(target) = target else {
            eprintln!(
                "{region}: no {} to roll back to; it stays on {}",
                args.to
                    .as_deref()
                    .map(|t| format!("release matching `{t}`"))
                    .unwrap_or_else(|| "earlier release".into()),
                current.release_id
            );
            failed = true;
            continue;
        };
        if target.release_id == current.release_id {
            eprintln!("{region}: {} is already live", target.release_id);
            continue;
        }
        let opts = DeliveryOptions {
            preference: args.preference.clone(),
            time_scale: args.time_scale,
            pipeline: Some(name.clone()),
            ..Default::default()
        };
        let say: meridian_region::Say = Arc::new(|l: &str| eprintln!("{l}"));
        let reason = format!("meridian rollback from {}", current.release_id);
        let backend = backend_of(current, &target)?;
        for line in meridian_engine::delivery::recover_for(&backend, &dir, Arc::new(meridian_core::SystemClock))
            .map_err(|e| anyhow!(e))?
        {
            eprintln!("{line}");
        }
        let driver = meridian_engine::delivery::driver_for(
            &backend,
            &dir,
            Arc::new(meridian_core::SystemClock),
            std::time::Duration::from_millis(100),
        )
        .map_err(|e| anyhow!(e))?;
        // the region's artifact bucket, for a template too large to send with the request
        // (a release a rollback made has no execution: the target's definition then says)
        let bucket = definition_of(current).or_else(|| definition_of(&target)).and_then(|p| {
            p.artifact_stores
                .get(&region)
                .or(p.artifact_store.as_ref())
                .map(|s| s.location.clone())
        });
        match rt.block_on(ledger::redeploy(
            &journal,
            backend.stacks.as_ref(),
            &target,
            bucket,
            opts,
            &dir,
            &reason,
            Progress {
                say,
                shifter: Some(driver),
                delivery: Default::default(),
            },
        )) {
            Ok(r) => eprintln!("{region}: {} is live again ({})", r.release_id, functions_text(&r)),
            Err(e) => {
                eprintln!("{region}: {e}");
                failed = true;
            }
        }
    }
    Ok(if failed { ExitCode::FAILURE } else { ExitCode::SUCCESS })
}

#[derive(clap::Subcommand, Debug)]
pub enum DeploymentsCommand {
    /// Every deployment (one region's move of one alias), oldest first.
    List,
    /// One deployment and its events.
    Show { deployment: String },
}

fn store(global: &Global) -> anyhow::Result<DeliveryStore> {
    DeliveryStore::open(&data_dir(global)).map_err(|e| anyhow!(e))
}

pub fn deployments(cmd: DeploymentsCommand, global: &Global) -> anyhow::Result<ExitCode> {
    let store = store(global)?;
    match cmd {
        DeploymentsCommand::List => {
            let rows = store.list().map_err(|e| anyhow!(e))?;
            if global.output == OutputFormat::Json {
                print_json(&rows)?;
                return Ok(ExitCode::SUCCESS);
            }
            println!(
                "{:<12} {:<15} {:<40} {:<9} {:<11} {:>5}  SCHEDULE / REASON",
                "ID", "REGION", "FUNCTION:ALIAS", "VERSIONS", "STATUS", "NEW%"
            );
            for r in &rows {
                println!(
                    "{:<12} {:<15} {:<40} {:<9} {:<11} {:>5}  {}",
                    r.id,
                    r.region,
                    format!("{}:{}", r.function, r.alias),
                    format!("{}->{}", r.from_version, r.to_version),
                    r.status,
                    r.new_version_percent,
                    r.reason.as_deref().unwrap_or(&r.schedule)
                );
            }
        }
        DeploymentsCommand::Show { deployment } => {
            let r = find(&store, Some(&deployment), None)?;
            let events = store.events(&r.id).map_err(|e| anyhow!(e))?;
            if global.output == OutputFormat::Json {
                print_json(&serde_json::json!({"deployment": r, "events": events}))?;
                return Ok(ExitCode::SUCCESS);
            }
            println!("deployment {} in {} ({})", r.id, r.region, r.stack);
            println!(
                "  {}:{} version {} -> {}",
                r.function, r.alias, r.from_version, r.to_version
            );
            println!("  schedule: {}", r.schedule);
            println!(
                "  status:   {} ({}% on the new version)",
                r.status, r.new_version_percent
            );
            if let Some(reason) = &r.reason {
                println!("  reason:   {reason}");
            }
            if let Some(e) = &r.execution_id {
                println!("  execution {e} of {}", r.pipeline.as_deref().unwrap_or("-"));
            }
            for (at, line) in events {
                println!("  {}  {line}", utc(at));
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// A deployment by id (or prefix), or the one running (in `region`).
fn find(store: &DeliveryStore, id: Option<&str>, region: Option<&str>) -> anyhow::Result<DeploymentRow> {
    let rows = store.list().map_err(|e| anyhow!(e))?;
    let matching: Vec<&DeploymentRow> = match id {
        Some(id) => rows.iter().filter(|r| r.id.starts_with(id)).collect(),
        None => rows
            .iter()
            .filter(|r| !r.is_over())
            .filter(|r| region.is_none_or(|g| r.region == g))
            .collect(),
    };
    match matching.as_slice() {
        [one] => Ok((*one).clone()),
        [] => match id {
            Some(id) => bail!("no deployment {id} (see `meridian deployments list`)"),
            None => bail!(
                "no deployment is running{}",
                region.map(|r| format!(" in {r}")).unwrap_or_default()
            ),
        },
        many => bail!(
            "several deployments match ({}): name one",
            many.iter()
                .map(|r| format!("{} in {}", r.id, r.region))
                .collect::<Vec<_>>()
                .join(", ")
        ),
    }
}

#[derive(clap::Args, Debug)]
pub struct DeploymentArg {
    /// The deployment id (or a prefix). Default: the one running.
    pub deployment: Option<String>,
    /// The running deployment of this region.
    #[arg(long)]
    pub region: Option<String>,
}

#[derive(clap::Args, Debug)]
pub struct ExtendArgs {
    #[command(flatten)]
    pub target: DeploymentArg,
    /// How much longer to bake: `90s`, `5m`, `1h` (nominal: divided by the deployment's time scale).
    #[arg(long)]
    pub by: String,
}

pub enum Control {
    Promote(DeploymentArg),
    Extend(ExtendArgs),
    Abort(DeploymentArg),
}

pub fn control(c: Control, global: &Global) -> anyhow::Result<ExitCode> {
    let store = store(global)?;
    let (target, cmd) = match c {
        Control::Promote(t) => (t, DeployCommand::Promote),
        Control::Abort(t) => (t, DeployCommand::Abort),
        Control::Extend(e) => {
            let by_ms = meridian_delivery::schedule::parse_duration(e.by.trim()).map_err(|m| anyhow!("--by: {m}"))?;
            (e.target, DeployCommand::Extend { by_ms })
        }
    };
    let r = find(&store, target.deployment.as_deref(), target.region.as_deref())?;
    store.command(&r.id, &cmd).map_err(|e| anyhow!(e))?;
    let what = match cmd {
        DeployCommand::Promote => "promote (all traffic to the new version now)".to_string(),
        DeployCommand::Abort => "abort (roll back)".to_string(),
        DeployCommand::Extend { by_ms } => format!("extend the bake by {} s", by_ms / 1000),
    };
    eprintln!(
        "deployment {} in {} ({}:{}): {what} sent; its driver acts on it within a second",
        r.id, r.region, r.function, r.alias
    );
    Ok(ExitCode::SUCCESS)
}

#[derive(clap::Args, Debug)]
pub struct WindowsArgs {
    /// The pipeline definition (meridian.yaml).
    pub file: PathBuf,
    /// How many openings to list per region.
    #[arg(long, default_value_t = 3)]
    pub count: usize,
    /// Compute from this instant (RFC 3339) instead of now.
    #[arg(long)]
    pub at: Option<String>,
}

pub fn windows(args: WindowsArgs, global: &Global) -> anyhow::Result<ExitCode> {
    let p = load_pipeline(&args.file).with_context(|| format!("cannot read {}", args.file.display()))?;
    let now = match &args.at {
        Some(a) => meridian_delivery::window::parse_instant(a).map_err(|e| anyhow!("--at: {e}"))?,
        None => meridian_engine::journal::now_millis(),
    };
    let Some(d) = p.meridian.delivery.as_ref() else {
        bail!(
            "{} has no waves (deployment windows are part of Meridian's own format)",
            args.file.display()
        );
    };
    let mut out = Vec::new();
    for wave in &d.waves {
        for region in &wave.regions {
            let Some(w) = d.windows.get(region) else {
                out.push(serde_json::json!({"region": region, "wave": wave.name, "window": null, "open": true, "openings": []}));
                continue;
            };
            let win = Window::new(&w.timezone, &w.hours, &w.days, &w.freeze)
                .map_err(|e| anyhow!("the deployment window of {region}: {e}"))?;
            let open = win.is_open(now);
            let openings: Vec<serde_json::Value> = win
                .openings(now, args.count)
                .into_iter()
                .map(|(o, c)| {
                    serde_json::json!({
                        "opens": utc(o), "closes": utc(c),
                        "opensLocal": win.local_time(o), "closesLocal": win.local_time(c),
                    })
                })
                .collect();
            out.push(serde_json::json!({
                "region": region, "wave": wave.name, "window": w, "open": open,
                "closesAt": if open { win.closes_at(now).map(utc) } else { None },
                "openings": openings,
            }));
        }
    }
    if global.output == OutputFormat::Json {
        print_json(&out)?;
        return Ok(ExitCode::SUCCESS);
    }
    println!("deployment windows of {} at {}", p.name, utc(now));
    for r in &out {
        let region = r["region"].as_str().unwrap_or_default();
        let Some(w) = r["window"].as_object() else {
            println!("{region:<15} always open (no window)");
            continue;
        };
        let days = w
            .get("days")
            .and_then(|d| d.as_array())
            .map(|d| d.iter().filter_map(|x| x.as_str()).collect::<Vec<_>>().join(","))
            .filter(|s| !s.is_empty())
            .unwrap_or_else(|| "every day".into());
        let state = if r["open"].as_bool() == Some(true) {
            format!("OPEN until {}", r["closesAt"].as_str().unwrap_or("-"))
        } else {
            "closed".to_string()
        };
        println!(
            "{region:<15} {} {} {days}: {state}",
            w.get("timezone").and_then(|v| v.as_str()).unwrap_or_default(),
            w.get("hours").and_then(|v| v.as_str()).unwrap_or_default(),
        );
        for o in r["openings"].as_array().into_iter().flatten() {
            println!(
                "{:<15}   opens {}  closes {}   ({})",
                "",
                o["opensLocal"].as_str().unwrap_or_default(),
                o["closesLocal"].as_str().unwrap_or_default(),
                o["opens"].as_str().unwrap_or_default()
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}
