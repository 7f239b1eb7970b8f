//! `meridian validate` and `meridian graph`: read pipeline definitions and present what was found.

use crate::{Global, OutputFormat};
use meridian_pipeline::graph::{self, GraphFormat};
use meridian_pipeline::{load_files, LoadOptions, Loaded, Pipeline};
use serde_json::json;
use std::collections::BTreeMap;
use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;

/// `K=V`, for `--param` and `--var`.
pub fn parse_kv(s: &str) -> Result<(String, String), String> {
    match s.split_once('=') {
        Some((k, v)) if !k.is_empty() => Ok((k.to_string(), v.to_string())),
        _ => Err(format!("`{s}` is not NAME=VALUE")),
    }
}

/// How a definition is read as AWS would: its home region and a template's pseudo parameters.
#[derive(clap::Args, Debug, Clone, Default)]
pub struct ReadArgs {
    /// The pipeline's home region: `AWS::Region` of a template, where actions without a region
    /// run. Default: the region all its actions name, else a get-pipeline dump's
    /// `metadata.pipelineArn`, else AWS_REGION / AWS_DEFAULT_REGION, else us-east-1.
    #[arg(long)]
    pub region: Option<String>,
    /// `AWS::StackName` of a template. Default: the file's base name.
    #[arg(long)]
    pub stack_name: Option<String>,
    /// `AWS::AccountId` of a template. Default: 123456789012.
    #[arg(long)]
    pub account_id: Option<String>,
}

/// The region of the environment, as the AWS CLI reads it.
pub fn env_region() -> Option<String> {
    ["AWS_REGION", "AWS_DEFAULT_REGION"]
        .iter()
        .filter_map(|k| std::env::var(k).ok())
        .find(|v| !v.trim().is_empty())
        .map(|v| v.trim().to_string())
}

/// Options for reading definitions (`--param`, `--pipeline`, `--region`, ...).
pub fn load_options(params: &[(String, String)], pipeline: &Option<String>, read: &ReadArgs) -> LoadOptions {
    LoadOptions {
        params: params.iter().cloned().collect::<BTreeMap<_, _>>(),
        pipeline: pipeline.clone(),
        region: read.region.clone(),
        env_region: env_region(),
        stack_name: read.stack_name.clone(),
        account_id: read.account_id.clone(),
    }
}

/// `--region`, checked: a misspelt region is a usage error, before any file is read.
pub fn check_region(read: &ReadArgs) -> Result<(), String> {
    match &read.region {
        Some(r) => crate::check_region(r),
        None => Ok(()),
    }
}

#[derive(clap::Args, Debug)]
pub struct ValidateArgs {
    /// Definition files: meridian.yaml, CodePipeline JSON, or CloudFormation templates.
    #[arg(required = true)]
    pub files: Vec<PathBuf>,
    /// A CloudFormation parameter value, NAME=VALUE (repeatable).
    #[arg(long = "param", value_parser = parse_kv)]
    pub params: Vec<(String, String)>,
    /// Only this pipeline, when a file declares several.
    #[arg(long)]
    pub pipeline: Option<String>,
    #[command(flatten)]
    pub read: ReadArgs,
    /// Print the full model each definition expands into (CodePipeline API JSON).
    #[arg(long)]
    pub expanded: bool,
}

#[derive(clap::Args, Debug)]
pub struct GraphArgs {
    pub file: PathBuf,
    #[arg(long = "param", value_parser = parse_kv)]
    pub params: Vec<(String, String)>,
    #[arg(long)]
    pub pipeline: Option<String>,
    #[command(flatten)]
    pub read: ReadArgs,
    #[arg(long, value_enum, default_value_t = GraphKind::Text)]
    pub format: GraphKind,
}

#[derive(Clone, Copy, Debug, clap::ValueEnum)]
pub enum GraphKind {
    Text,
    Mermaid,
    Dot,
}

/// Prints every diagnostic to stderr, miette style.
pub fn print_diagnostics(loaded: &Loaded) {
    let color = std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none();
    for d in &loaded.diagnostics {
        eprint!("{}", d.render(&loaded.sources, color));
        eprintln!();
    }
}

/// A short summary of a pipeline for JSON output.
pub fn summary(p: &Pipeline) -> serde_json::Value {
    json!({
        "name": p.name,
        "format": p.format,
        "pipelineType": p.pipeline_type,
        "executionMode": p.execution_mode,
        "homeRegion": p.home_region,
        "artifactStores": p.artifact_stores.iter().map(|(r, s)| json!({"region": r, "type": s.store_type, "location": s.location})).collect::<Vec<_>>(),
        "regions": p.regions(),
        "stages": p.stages.iter().map(|s| json!({
            "name": s.name,
            "actions": s.actions.iter().map(|a| json!({
                "name": a.name,
                "category": a.category(),
                "provider": a.provider(),
                "runOrder": a.run_order,
                "region": a.region,
            })).collect::<Vec<_>>(),
        })).collect::<Vec<_>>(),
        "placeholders": p.meridian.placeholders,
    })
}

fn exit_code(loaded: &Loaded) -> ExitCode {
    if loaded.unreadable {
        ExitCode::from(2)
    } else if loaded.has_errors() {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    }
}

pub fn validate(args: ValidateArgs, global: &Global) -> anyhow::Result<ExitCode> {
    if let Err(e) = check_region(&args.read) {
        eprintln!("error: {e}");
        return Ok(ExitCode::from(2));
    }
    let loaded = load_files(&args.files, &load_options(&args.params, &args.pipeline, &args.read));
    let valid = !loaded.has_errors() && !loaded.unreadable;
    match global.output {
        OutputFormat::Json => {
            let mut out = json!({
                "valid": valid,
                "diagnostics": loaded.diagnostics.iter().map(|d| d.to_json(&loaded.sources)).collect::<Vec<_>>(),
                "pipelines": loaded.pipelines.iter().map(summary).collect::<Vec<_>>(),
            });
            if args.expanded {
                out["expanded"] = loaded.pipelines.iter().map(|p| json!({"pipeline": p})).collect();
            }
            println!("{}", serde_json::to_string_pretty(&out)?);
        }
        OutputFormat::Text => {
            print_diagnostics(&loaded);
            if args.expanded {
                for p in &loaded.pipelines {
                    println!("{}", serde_json::to_string_pretty(&json!({ "pipeline": p }))?);
                }
            }
            let errors = loaded.error_count();
            let warnings = loaded.warning_count();
            for p in &loaded.pipelines {
                let actions: usize = p.stages.iter().map(|s| s.actions.len()).sum();
                let line = format!(
                    "pipeline `{}`: {} stages, {} actions, regions: {}",
                    meridian_pipeline::diag::clip(&p.name),
                    p.stages.len(),
                    actions,
                    if p.regions().is_empty() {
                        "(the pipeline's own)".to_string()
                    } else {
                        p.regions().join(", ")
                    }
                );
                // Names come from the file: never print their control characters raw.
                eprintln!("{}", meridian_pipeline::source::escape_controls(&line));
            }
            eprintln!(
                "{}: {errors} error(s), {warnings} warning(s)",
                if valid { "valid" } else { "invalid" }
            );
        }
    }
    Ok(exit_code(&loaded))
}

pub fn graph(args: GraphArgs, _global: &Global) -> anyhow::Result<ExitCode> {
    if let Err(e) = check_region(&args.read) {
        eprintln!("error: {e}");
        return Ok(ExitCode::from(2));
    }
    let loaded = load_files(
        std::slice::from_ref(&args.file),
        &load_options(&args.params, &args.pipeline, &args.read),
    );
    if loaded.unreadable || loaded.pipelines.is_empty() {
        print_diagnostics(&loaded);
        return Ok(exit_code(&loaded));
    }
    if loaded.has_errors() {
        eprintln!("note: the definition has errors (run `meridian validate`); drawing it as written");
    }
    let format = match args.format {
        GraphKind::Text => GraphFormat::Text,
        GraphKind::Mermaid => GraphFormat::Mermaid,
        GraphKind::Dot => GraphFormat::Dot,
    };
    for p in &loaded.pipelines {
        print!("{}", graph::render(p, format));
    }
    Ok(ExitCode::SUCCESS)
}
