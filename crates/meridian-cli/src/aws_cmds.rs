//! `meridian bootstrap`: what a pipeline needs in its AWS regions (`backend: aws`) before its
//! first run. The work is `meridian_aws::bootstrap`; this file parses and prints.

use crate::Global;
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(clap::Args, Debug)]
pub struct BootstrapArgs {
    /// The pipeline's definition (meridian.yaml, CodePipeline JSON or CloudFormation).
    pub file: PathBuf,
    /// A CloudFormation parameter value, NAME=VALUE (repeatable).
    #[arg(long = "param", value_parser = crate::pipeline_cmds::parse_kv)]
    pub params: Vec<(String, String)>,
    /// Only this pipeline, when the file declares several.
    #[arg(long)]
    pub pipeline: Option<String>,
    #[command(flatten)]
    pub read: crate::pipeline_cmds::ReadArgs,
    /// Show what would be created or changed, and change nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Print the IAM policies: what the pipeline's runs need, and what bootstrap itself needs.
    #[arg(long)]
    pub print_policy: bool,
    /// Delete the buckets instead (stacks are never deleted; a non-empty bucket needs --force).
    #[arg(long)]
    pub delete: bool,
    /// With --delete: delete the artifacts in the buckets too.
    #[arg(long, requires = "delete")]
    pub force: bool,
    /// Send every AWS call to this endpoint (a stand-in such as moto); default: AWS_ENDPOINT_URL.
    #[arg(long)]
    pub endpoint_url: Option<String>,
    /// The AWS profile whose credentials to use; default: AWS_PROFILE.
    #[arg(long)]
    pub profile: Option<String>,
}

#[cfg(not(feature = "aws"))]
pub fn bootstrap(_args: BootstrapArgs, _global: &Global) -> anyhow::Result<ExitCode> {
    crate::error("this build of Meridian has no AWS support (it keeps the AWS SDK out of the local build): build it with `cargo build --release -p meridian-cli --features aws`");
    Ok(ExitCode::from(2))
}

#[cfg(feature = "aws")]
pub fn bootstrap(args: BootstrapArgs, global: &Global) -> anyhow::Result<ExitCode> {
    use meridian_aws::bootstrap::{self, Deleted};
    if let Err(e) = crate::pipeline_cmds::check_region(&args.read) {
        crate::error(&e);
        return Ok(ExitCode::from(2));
    }
    let opts = crate::pipeline_cmds::load_options(&args.params, &args.pipeline, &args.read);
    let loaded = meridian_pipeline::load_files(std::slice::from_ref(&args.file), &opts);
    if loaded.unreadable || loaded.has_errors() {
        crate::pipeline_cmds::print_diagnostics(&loaded);
        crate::error(&format!("{} has errors (see above)", args.file.display()));
        return Ok(ExitCode::from(1));
    }
    let Some(p) = loaded.pipelines.into_iter().next() else {
        crate::error(&format!("{} declares no pipeline", args.file.display()));
        return Ok(ExitCode::from(1));
    };
    let home = meridian_engine::driver::home_region(
        &p,
        args.read
            .region
            .as_deref()
            .or(Some(p.home_region.as_str()).filter(|r| !r.is_empty())),
    );
    let specs = bootstrap::buckets_of(&p, &home);
    if specs.is_empty() {
        crate::error(&format!(
            "no region of pipeline {} uses the aws backend, so it needs nothing on AWS: say `backend: aws` (meridian.yaml), or `\"x-meridian\": {{\"backend\": \"aws\"}}` (CodePipeline JSON), for the regions to deploy to AWS",
            p.name
        ));
        return Ok(ExitCode::from(2));
    }
    let json = matches!(global.output, crate::OutputFormat::Json);
    if args.print_policy {
        let mut pipeline = bootstrap::artifact_policy(&specs);
        if p.meridian.builds.as_deref() == Some("codebuild") {
            if let Some(statements) = pipeline["Statement"].as_array_mut() {
                statements.push(bootstrap::builds_statement(&specs));
            }
        }
        let policies = serde_json::json!({
            "pipeline": pipeline,
            "bootstrap": bootstrap::bootstrap_policy(&specs),
        });
        println!("{}", serde_json::to_string_pretty(&policies)?);
        return Ok(ExitCode::SUCCESS);
    }
    let aws = meridian_aws::AwsOptions {
        profile: args.profile.clone(),
        endpoint_url: args.endpoint_url.clone(),
        roles: p.meridian.roles.clone(),
        ..Default::default()
    };
    let rt = tokio::runtime::Runtime::new()?;
    let say = |l: &str| {
        if !json {
            println!("{l}");
        }
    };
    if args.delete {
        let deleted = match rt.block_on(bootstrap::delete(&aws, &specs, args.force, &say)) {
            Ok(d) => d,
            Err(e) => {
                crate::error(&e.to_string());
                return Ok(ExitCode::from(1));
            }
        };
        if json {
            let rows: Vec<serde_json::Value> = deleted
                .iter()
                .map(|(s, d)| {
                    serde_json::json!({"region": s.region, "bucket": s.bucket, "deleted": match d {
                        Deleted::Absent => serde_json::Value::Null,
                        Deleted::Deleted { objects } => serde_json::json!({"objects": objects}),
                    }})
                })
                .collect();
            println!("{}", serde_json::to_string_pretty(&rows)?);
        }
        return Ok(ExitCode::SUCCESS);
    }
    let result = if args.dry_run {
        rt.block_on(bootstrap::plan(&aws, &specs))
    } else {
        rt.block_on(bootstrap::apply(&aws, &specs, &say))
    };
    let plans = match result {
        Ok(p) => p,
        Err(e) => {
            crate::error(&e.to_string());
            return Ok(ExitCode::from(1));
        }
    };
    if json {
        println!("{}", serde_json::to_string_pretty(&plans)?);
    } else if args.dry_run {
        for p in &plans {
            if p.steps.is_empty() {
                println!("{} ({}): ready, nothing to change", p.spec.bucket, p.spec.region);
            }
            for s in &p.steps {
                println!("{} ({}): would {}", p.spec.bucket, p.spec.region, s.describe(&p.spec));
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}
