//! `meridian stack ...` and `meridian template transform`: CloudFormation/SAM stacks in local regions.

use crate::pipeline_cmds::parse_kv;
use crate::{Global, OutputFormat};
use meridian_engine::stacks::{StackOutcome, StackRequest};
use meridian_local::stacks::LocalStacks;

use meridian_template::sam::{self, SamOptions};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

#[derive(clap::Subcommand)]
pub enum StackCommand {
    /// Create or update a stack from a template, as `sam deploy` does: local code paths are
    /// packaged into the region's local bucket, a change set is made, shown and executed.
    Deploy(DeployArgs),
    /// Stacks of the local regions.
    List(RegionOpt),
    /// One stack: status, parameters, outputs and resources.
    Describe(StackRef),
    /// A stack's events, oldest first.
    Events(StackRef),
    /// A stack's outputs; an HTTP API's URL (`https://{id}.execute-api...`) with its local URL
    /// on the endpoint of `meridian serve` beside it.
    Outputs(OutputsArgs),
    /// Delete a stack and its resources.
    Delete(StackRef),
    /// Stop an update in progress and roll the stack back to its previous template, as
    /// CloudFormation's CancelUpdateStack does (also when the process running it has died).
    CancelUpdate(StackRef),
    /// Change sets: create, describe, execute, delete.
    #[command(subcommand)]
    Changeset(ChangeSetCommand),
}

#[derive(clap::Subcommand)]
pub enum ChangeSetCommand {
    /// Plan a change to a stack without applying it.
    Create(DeployArgs),
    Describe(ChangeSetRef),
    Execute(ChangeSetRef),
    Delete(ChangeSetRef),
}

#[derive(clap::Subcommand)]
pub enum TemplateCommand {
    /// Print the processed CloudFormation JSON of a template (the SAM transform applied), as
    /// aws-sam-translator produces it.
    Transform(TransformArgs),
}

#[derive(clap::Args)]
pub struct RegionOpt {
    /// Only this region.
    #[arg(long)]
    pub region: Option<String>,
}

#[derive(clap::Args)]
pub struct StackRef {
    #[arg(long)]
    pub region: String,
    #[arg(long)]
    pub stack_name: String,
}

#[derive(clap::Args)]
pub struct OutputsArgs {
    #[command(flatten)]
    pub stack: StackRef,
    /// The local endpoint serving the APIs (default: the one a running `meridian serve` of this
    /// data directory recorded).
    #[arg(long)]
    pub endpoint_url: Option<String>,
}

#[derive(clap::Args)]
pub struct ChangeSetRef {
    #[arg(long)]
    pub region: String,
    #[arg(long)]
    pub stack_name: String,
    #[arg(long)]
    pub change_set_name: String,
}

#[derive(clap::Args)]
pub struct DeployArgs {
    #[arg(long)]
    pub region: String,
    #[arg(long)]
    pub template: PathBuf,
    #[arg(long)]
    pub stack_name: String,
    /// A template parameter, NAME=VALUE (repeatable).
    #[arg(long = "param", value_parser = parse_kv)]
    pub params: Vec<(String, String)>,
    /// CAPABILITY_IAM, CAPABILITY_NAMED_IAM, CAPABILITY_AUTO_EXPAND (comma-separated or repeated).
    #[arg(long, value_delimiter = ',')]
    pub capabilities: Vec<String>,
    /// Only make and show the change set (deploy); `changeset create` never executes.
    #[arg(long)]
    pub no_execute: bool,
    /// The change set's name (default: `meridian-<time>`).
    #[arg(long)]
    pub change_set_name: Option<String>,
    /// Record resource types local regions do not deploy as inert placeholders instead of failing.
    #[arg(long)]
    pub allow_unsupported: bool,
    /// Publish a new function version when the configuration changes, not only the code.
    #[arg(long)]
    pub publish_on_config_change: bool,
    /// Shift aliases with this schedule instead of the template's DeploymentPreference
    /// (`AllAtOnce`, `Canary10Percent5Minutes`, `1%:1m,50%:1m,100%`).
    #[arg(long)]
    pub preference: Option<String>,
    /// Run N times faster: bakes and hook timeouts are divided by N.
    #[arg(long, default_value_t = 1.0)]
    pub time_scale: f64,
    /// Send this many invocations a second to each shifting alias (synthetic traffic).
    #[arg(long)]
    pub traffic_rate: Option<f64>,
    /// Send the synthetic traffic through the API in front of the alias: `METHOD /path` within
    /// the API's stage (`GET /hello`), as users' requests come.
    #[arg(long, requires = "traffic_rate")]
    pub traffic_route: Option<String>,
    /// Compare the new version with the old one at the end of every bake (the canary judge).
    #[arg(long)]
    pub judge: bool,
    /// The judge's sample: invocations each version must serve before a verdict (default 50).
    #[arg(long, requires = "judge")]
    pub judge_min_invocations: Option<u64>,
    /// The judge's tolerance: how much the error rate may rise, 0.01 = one point (default 0.01).
    #[arg(long, requires = "judge")]
    pub judge_max_error_rate_increase: Option<f64>,
}

#[derive(clap::Args)]
pub struct TransformArgs {
    pub file: PathBuf,
    /// A template parameter, NAME=VALUE (repeatable).
    #[arg(long = "param", value_parser = parse_kv)]
    pub params: Vec<(String, String)>,
    #[arg(long, default_value = "us-east-1")]
    pub region: String,
    /// Publish a new function version when the configuration changes, not only the code.
    #[arg(long)]
    pub publish_on_config_change: bool,
}

/// Opens the local regions' stacks (and the Lambda host they deploy functions to), after
/// recovering what a killed process left.
pub fn open_stacks(data_dir: &Path) -> anyhow::Result<LocalStacks> {
    meridian_local::backend::open_stacks(data_dir, &|l| eprintln!("{l}")).map_err(|e| anyhow::anyhow!(e))
}

pub(crate) fn data_dir(global: &Global) -> PathBuf {
    std::path::absolute(&global.data_dir).unwrap_or_else(|_| global.data_dir.clone())
}

pub(crate) fn print_json<T: serde::Serialize>(v: &T) -> anyhow::Result<()> {
    println!("{}", serde_json::to_string_pretty(v)?);
    Ok(())
}

fn failed(e: String) -> anyhow::Result<ExitCode> {
    crate::error(&e.to_string());
    Ok(ExitCode::from(1))
}

fn say(line: &str) {
    eprintln!("{line}");
}

fn request(a: &DeployArgs, stacks: &LocalStacks, dd: &Path) -> anyhow::Result<Result<StackRequest, String>> {
    let out = dd.join("packaged").join(&a.region).join(&a.stack_name);
    let packaged = match stacks.package_local_code(&a.template, &a.region, &out) {
        Ok(p) => p,
        Err(e) => return Ok(Err(e)),
    };
    Ok(Ok(StackRequest {
        region: a.region.clone(),
        stack_name: a.stack_name.clone(),
        change_set_name: Some(
            a.change_set_name
                .clone()
                .unwrap_or_else(|| format!("meridian-{}", epoch_millis())),
        ),
        template_path: packaged,
        parameters: a.params.iter().cloned().collect::<BTreeMap<_, _>>(),
        capabilities: a.capabilities.clone(),
        tags: BTreeMap::new(),
        allow_unsupported: a.allow_unsupported,
        publish_on_config_change: a.publish_on_config_change,
        artifact_root: None,
        template_bucket: None,
        service_role: None,
        source_template: Some(a.template.clone()),
        delivery: meridian_engine::stacks::DeliveryOptions {
            preference: a.preference.clone(),
            time_scale: a.time_scale,
            traffic: a.traffic_rate.map(|rate| meridian_engine::stacks::TrafficSpec {
                rate,
                payloads: Vec::new(),
                route: a.traffic_route.clone(),
            }),
            judge: a.judge.then(|| {
                let mut j = meridian_delivery::judge::JudgeConfig::default();
                if let Some(n) = a.judge_min_invocations {
                    j.min_invocations = n.max(1);
                }
                if let Some(x) = a.judge_max_error_rate_increase {
                    j.max_error_rate_increase = x;
                }
                j
            }),
            ..Default::default()
        },
    }))
}

fn epoch_millis() -> u128 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis())
        .unwrap_or(0)
}

/// CloudFormation's rule for stack names: a letter, then letters, digits and hyphens, at most
/// 128 characters.
fn check_stack_name(name: &str) -> Result<(), String> {
    let ok = name.len() <= 128
        && name.starts_with(|c: char| c.is_ascii_alphabetic())
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '-');
    if ok {
        Ok(())
    } else {
        Err(format!(
            "--stack-name `{name}` is not a stack name: CloudFormation's start with a letter and hold only letters, digits and hyphens (at most 128)"
        ))
    }
}

/// The region and stack name a subcommand names, checked before anything is opened or written.
fn check_names(cmd: &StackCommand) -> Result<(), String> {
    let (region, stack): (Option<&str>, Option<&str>) = match cmd {
        StackCommand::Deploy(a) | StackCommand::Changeset(ChangeSetCommand::Create(a)) => {
            (Some(&a.region), Some(&a.stack_name))
        }
        StackCommand::List(r) => (r.region.as_deref(), None),
        StackCommand::Outputs(o) => (Some(&o.stack.region), Some(&o.stack.stack_name)),
        StackCommand::Describe(s)
        | StackCommand::Events(s)
        | StackCommand::Delete(s)
        | StackCommand::CancelUpdate(s) => (Some(&s.region), Some(&s.stack_name)),
        StackCommand::Changeset(
            ChangeSetCommand::Describe(c) | ChangeSetCommand::Execute(c) | ChangeSetCommand::Delete(c),
        ) => (Some(&c.region), Some(&c.stack_name)),
    };
    if let Some(r) = region {
        crate::check_region(r)?;
    }
    if let Some(s) = stack {
        check_stack_name(s)?;
    }
    Ok(())
}

pub fn stack(cmd: StackCommand, global: &Global) -> anyhow::Result<ExitCode> {
    if let Err(e) = check_names(&cmd) {
        crate::error(&e);
        return Ok(ExitCode::from(2));
    }
    let dd = data_dir(global);
    let stacks = open_stacks(&dd)?;
    let json = global.output == OutputFormat::Json;
    match cmd {
        StackCommand::Deploy(a) => deploy_or_plan(a, &stacks, &dd, json),
        StackCommand::Changeset(ChangeSetCommand::Create(mut a)) => {
            a.no_execute = true;
            deploy_or_plan(a, &stacks, &dd, json)
        }
        StackCommand::List(r) => {
            let list = match stacks.list_stacks(r.region.as_deref()) {
                Ok(l) => l,
                Err(e) => return failed(e),
            };
            if json {
                print_json(&list)?;
            } else if list.is_empty() {
                eprintln!("no stacks");
            } else {
                for s in list {
                    println!(
                        "{:<16} {:<32} {:<28} {}",
                        s.region,
                        s.stack_name,
                        s.stack_status,
                        s.last_updated_time.unwrap_or(s.creation_time)
                    );
                }
            }
            Ok(ExitCode::SUCCESS)
        }
        StackCommand::Describe(s) => {
            let info = match stacks.describe(&s.region, &s.stack_name) {
                Ok(i) => i,
                Err(e) => return failed(e),
            };
            let resources = stacks.resources(&s.region, &s.stack_name).unwrap_or_default();
            if json {
                print_json(&serde_json::json!({"Stack": info, "Resources": resources}))?;
            } else {
                println!("{} ({}) {}", info.stack_name, info.region, info.stack_status);
                if let Some(r) = &info.stack_status_reason {
                    println!("  reason: {r}");
                }
                println!("  id: {}", info.stack_id);
                for (k, v) in &info.parameters {
                    println!("  parameter {k} = {v}");
                }
                for (k, v) in &info.outputs {
                    println!("  output {k} = {v}");
                }
                for r in resources {
                    println!(
                        "  {:<32} {:<34} {:<18} {}  [{}]",
                        r.logical_resource_id, r.resource_type, r.resource_status, r.physical_resource_id, r.local
                    );
                }
            }
            Ok(ExitCode::SUCCESS)
        }
        StackCommand::Events(s) => {
            let events = match stacks.events(&s.region, &s.stack_name) {
                Ok(e) => e,
                Err(e) => return failed(e),
            };
            if json {
                print_json(&events)?;
            } else {
                for e in events {
                    println!(
                        "{} {:<36} {:<34} {}{}",
                        e.timestamp,
                        e.resource_status,
                        e.resource_type,
                        e.logical_resource_id,
                        e.resource_status_reason.map(|r| format!("  {r}")).unwrap_or_default()
                    );
                }
            }
            Ok(ExitCode::SUCCESS)
        }
        StackCommand::Outputs(o) => {
            let s = &o.stack;
            let info = match stacks.describe(&s.region, &s.stack_name) {
                Ok(i) => i,
                Err(e) => return failed(e),
            };
            let endpoint = o.endpoint_url.clone().or_else(|| {
                std::fs::read_to_string(dd.join(meridian_local::apigw::SERVE_URL_FILE))
                    .ok()
                    .map(|u| u.trim().to_string())
            });
            if json {
                print_json(&info.outputs)?;
            } else {
                let mut hint = false;
                for (k, v) in info.outputs {
                    let text = v;
                    let local = endpoint
                        .as_deref()
                        .and_then(|e| meridian_local::apigw::local_url(&text, e));
                    match local {
                        Some(l) => println!("{k}\t{text}\t{l}"),
                        None => {
                            hint |= text.contains(".execute-api.");
                            println!("{k}\t{text}")
                        }
                    }
                }
                if hint && endpoint.is_none() {
                    eprintln!("HTTP APIs are served by `meridian serve`: start it (or pass --endpoint-url) to see their local URLs");
                }
            }
            Ok(ExitCode::SUCCESS)
        }
        StackCommand::Delete(s) => match stacks.delete(&s.region, &s.stack_name, &say) {
            Ok(()) => {
                eprintln!("deleted stack {} in {}", s.stack_name, s.region);
                Ok(ExitCode::SUCCESS)
            }
            Err(e) => failed(e),
        },
        StackCommand::CancelUpdate(s) => match stacks.cancel_update(&s.region, &s.stack_name, &say) {
            Ok(what) => {
                eprintln!("stack {} in {}: {what}", s.stack_name, s.region);
                Ok(ExitCode::SUCCESS)
            }
            Err(e) => failed(e),
        },
        StackCommand::Changeset(ChangeSetCommand::Describe(c)) => {
            match stacks.describe_change_set(&c.region, &c.stack_name, &c.change_set_name) {
                Ok(cs) if json => print_json(&cs).map(|_| ExitCode::SUCCESS),
                Ok(cs) => {
                    cs.lines().iter().for_each(|l| println!("{l}"));
                    Ok(ExitCode::SUCCESS)
                }
                Err(e) => failed(e),
            }
        }
        StackCommand::Changeset(ChangeSetCommand::Execute(c)) => {
            match stacks.execute_change_set(&c.region, &c.stack_name, &c.change_set_name, &say, None) {
                Ok(o) => report(o, json),
                Err(e) => failed(e),
            }
        }
        StackCommand::Changeset(ChangeSetCommand::Delete(c)) => {
            match stacks.delete_change_set(&c.region, &c.stack_name, &c.change_set_name) {
                Ok(()) => Ok(ExitCode::SUCCESS),
                Err(e) => failed(e),
            }
        }
    }
}

fn deploy_or_plan(a: DeployArgs, stacks: &LocalStacks, dd: &Path, json: bool) -> anyhow::Result<ExitCode> {
    let req = match request(&a, stacks, dd)? {
        Ok(r) => r,
        Err(e) => return failed(e),
    };
    let cs = match stacks.create_change_set_named(&req) {
        Ok(cs) => cs,
        Err(e) => return failed(e),
    };
    let name = req.change_set_name.clone().unwrap_or_default();
    if a.no_execute {
        if json {
            print_json(&cs)?;
        } else {
            cs.lines().iter().for_each(|l| println!("{l}"));
            eprintln!(
                "execute it with: meridian stack changeset execute --region {} --stack-name {} --change-set-name {name}",
                a.region, a.stack_name
            );
        }
        return Ok(ExitCode::SUCCESS);
    }
    if cs.status == "FAILED" {
        let _ = stacks.delete_change_set(&a.region, &a.stack_name, &name);
        let info = stacks.describe_stack(&a.region, &a.stack_name).ok().flatten();
        eprintln!("No changes to deploy. Stack {} is up to date", a.stack_name);
        if let Some(info) = info {
            return report(StackOutcome::NoChanges(info), json);
        }
        return Ok(ExitCode::SUCCESS);
    }
    if !json {
        cs.lines().iter().for_each(|l| eprintln!("{l}"));
    }
    match stacks.execute_change_set(&a.region, &a.stack_name, &name, &say, None) {
        Ok(o) => report(o, json),
        Err(e) => failed(e),
    }
}

fn report(o: StackOutcome, json: bool) -> anyhow::Result<ExitCode> {
    let s = o.stack();
    if json {
        print_json(s)?;
    } else {
        println!("{} ({}) {}", s.stack_name, s.region, s.stack_status);
        for (k, v) in &s.outputs {
            println!("  output {k} = {v}");
        }
    }
    Ok(ExitCode::SUCCESS)
}

pub fn template(cmd: TemplateCommand, _global: &Global) -> anyhow::Result<ExitCode> {
    let TemplateCommand::Transform(a) = cmd;
    // Read with the same bound and text check as every definition.
    let text = match meridian_pipeline::source::read_text(&a.file, meridian_pipeline::source::MAX_INPUT_BYTES) {
        Ok(t) => t,
        Err(e) => {
            crate::error(&format!("cannot read {}: {e}", a.file.display()));
            return Ok(ExitCode::from(2));
        }
    };
    let name = a.file.display().to_string();
    let (json, _) = match meridian_template::template::read_json(&name, &text) {
        Ok(v) => v,
        Err(e) => {
            crate::error(&e.to_string());
            return Ok(ExitCode::from(2));
        }
    };
    if !json.is_object() {
        crate::error(&format!(
            "{name}: a template is a mapping with a `Resources` section, not {}",
            match &json {
                serde_json::Value::String(_) => "a string",
                serde_json::Value::Array(_) => "a list",
                serde_json::Value::Number(_) => "a number",
                serde_json::Value::Bool(_) => "a boolean",
                _ => "nothing",
            }
        ));
        return Ok(ExitCode::from(2));
    }
    // The transforms CloudFormation would run: a macro that does not exist is refused as it
    // refuses it.
    let transforms = match meridian_template::declared::transforms(&json) {
        Ok(t) => t,
        Err(p) => {
            crate::error(&format!("{name}: {} (help: {})", p.message, p.help));
            return Ok(ExitCode::from(1));
        }
    };
    if !transforms.contains(&meridian_template::declared::Transform::Sam) {
        print_json(&json)?;
        return Ok(ExitCode::SUCCESS);
    }
    let mut opts = SamOptions {
        region: a.region.clone(),
        publish_on_config_change: a.publish_on_config_change,
        ..SamOptions::default()
    };
    for (k, v) in a.params {
        opts.parameter_values.insert(k, serde_json::Value::String(v));
    }
    match sam::transform(&json, &opts) {
        Ok(out) => {
            // CloudFormation counts its quota on the processed template.
            let n = out
                .get("Resources")
                .and_then(serde_json::Value::as_object)
                .map_or(0, |r| r.len());
            let max = meridian_template::declared::MAX_RESOURCES;
            if let Err(p) = meridian_template::declared::quota("Resources", "resources", n, max) {
                crate::error(&format!("{name}: {} (help: {})", p.message, p.help));
                return Ok(ExitCode::from(1));
            }
            print_json(&out)?;
            Ok(ExitCode::SUCCESS)
        }
        Err(e) => {
            crate::error(&format!("{name}: {e}"));
            Ok(ExitCode::from(1))
        }
    }
}
