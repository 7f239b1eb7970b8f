//! The CodeBuild action: `ProjectName` names a project of the definition (its buildspec path or
//! inline buildspec, its environment variables); the build runs as CodeBuild runs it (see the
//! meridian-buildspec crate) with the primary source and the secondary inputs; its artifacts
//! become the output artifacts and its `exported-variables` the action's output variables.

use super::commands::copy_tree;
use super::{ActionContext, ActionOutput, ActionProvider};
use futures::future::BoxFuture;
use meridian_buildspec::{project, run_build, BuildContext, SecretStore};
use meridian_pipeline::model::{Action, BuildSpecSource};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

pub struct CodeBuild;

impl ActionProvider for CodeBuild {
    fn safe_to_repeat(&self, _: &Action) -> bool {
        // Builds run arbitrary commands, which may publish or deploy.
        false
    }

    fn run<'a>(&'a self, ctx: &'a ActionContext) -> BoxFuture<'a, Result<ActionOutput, String>> {
        Box::pin(async move {
            let a = &ctx.action;
            let name = a.config("ProjectName").unwrap_or_default().to_string();
            let primary_name = a
                .config("PrimarySource")
                .map(str::to_string)
                .or_else(|| ctx.inputs.first().map(|i| i.0.clone()));
            let Some((_, primary)) = ctx
                .inputs
                .iter()
                .find(|(n, _)| Some(n) == primary_name.as_ref())
                .cloned()
            else {
                return Err("the CodeBuild action has no primary source input artifact".into());
            };
            let project = match ctx.projects.get(&name) {
                Some(p) => p.clone(),
                None if primary.join("buildspec.yml").is_file() => {
                    ctx.log.line(&format!(
                        "project `{name}` is not declared in the definition: using buildspec.yml from the source, as CodeBuild's default"
                    ));
                    Default::default()
                }
                None => {
                    let known: Vec<&String> = ctx.projects.keys().collect();
                    return Err(format!(
                        "CodeBuild project `{name}` is not declared in the definition (declared: {known:?}); declare it as an AWS::CodeBuild::Project in the same template, or in the native format's `build`"
                    ));
                }
            };
            let parsed = project::load_buildspec(&project.buildspec, &primary).map_err(|e| {
                let what = match &project.buildspec {
                    BuildSpecSource::Path(p) => format!("the buildspec `{p}`"),
                    BuildSpecSource::Inline(_) => "the inline buildspec".into(),
                };
                format!("failed to read {what} of project `{name}`: {e}")
            })?;
            for line in parsed.render_diagnostics(false).lines() {
                ctx.log.line(line);
            }
            let Some(spec) = parsed.spec.clone().filter(|_| !parsed.has_errors()) else {
                return Err(format!(
                    "the buildspec of project `{name}` is invalid (see the log: `meridian logs {} {}`)",
                    ctx.execution_id, a.name
                ));
            };
            let mut env = project::project_env(&project.environment_variables)?;
            if let Some(json) = a.config("EnvironmentVariables") {
                env.extend(project::action_env(json)?);
            }
            let work = ctx.work_dir.join("build");
            let mut bc = BuildContext::new(name.clone(), primary.clone(), work);
            bc.build_number = ctx.attempt as u64;
            bc.region = ctx.region.clone();
            bc.secondary_sources = ctx
                .inputs
                .iter()
                .filter(|(n, _)| Some(n) != primary_name.as_ref())
                .map(|(n, d)| (n.clone(), d.clone()))
                .collect();
            bc.cache_dir = Some(
                ctx.env
                    .data_dir
                    .join("cache")
                    .join(meridian_core::path::safe_component(&name)),
            );
            bc.env = env;
            bc.secrets = SecretStore::open(&ctx.env.data_dir).ok();
            let minutes = project.timeout_in_minutes.unwrap_or(60).max(1) as u64;
            bc.timeout = ctx.env.scaled(Duration::from_secs(minutes * 60));
            bc.initiator = format!("codepipeline/{}", ctx.pipeline);
            bc.resolved_source_version = resolved_source_version(ctx);
            bc.log_file = Some(ctx.work_dir.join("build.log"));
            let log = ctx.log.clone();
            bc.on_log = Some(Arc::new(move |l: &str| log.line(l)));
            let stop = Arc::new(AtomicBool::new(false));
            bc.stop = Some(stop.clone());
            bc.exclude = vec![ctx.env.data_dir.clone()];
            // The AWS CLI, SDKs and SAM CLI of the build reach its region (a local region's
            // endpoint, or AWS with the user's own configuration).
            let clients = ctx.regions.get(&ctx.region).map_err(|e| e.to_string())?.clients.clone();
            let region = ctx.region.clone();
            bc.aws_env = tokio::task::spawn_blocking(move || clients.environment(&region))
                .await
                .map_err(|e| format!("the build's AWS environment failed: {e}"))?
                .map_err(|e| format!("cannot give the build access to region {}: {e}", ctx.region))?;
            let mut cancel = ctx.cancel.clone();
            let watcher = tokio::spawn(async move {
                let _ = cancel.wait_for(|c| *c).await;
                stop.store(true, Ordering::SeqCst);
            });
            if a.config("BatchEnabled").is_some_and(|v| v.eq_ignore_ascii_case("true")) {
                let combine = a
                    .config("CombineArtifacts")
                    .is_some_and(|v| v.eq_ignore_ascii_case("true"));
                let result = run_batch_action(ctx, &name, spec, bc, combine).await;
                watcher.abort();
                return result;
            }
            let outcome = tokio::task::spawn_blocking(move || run_build(&spec, &bc)).await;
            watcher.abort();
            let outcome = outcome
                .map_err(|e| format!("the build runner failed: {e}"))?
                .map_err(|e| e.to_string())?;
            for w in &outcome.warnings {
                ctx.log.line(&format!("warning: {w}"));
            }
            if !outcome.succeeded() {
                let why: Vec<String> = outcome
                    .phases
                    .iter()
                    .filter_map(|p| p.message.as_ref().map(|m| format!("{}: {m}", p.name)))
                    .collect();
                return Err(format!(
                    "build {}: {}",
                    outcome.status.as_str(),
                    if why.is_empty() {
                        "see the log".into()
                    } else {
                        why.join("; ")
                    }
                ));
            }
            // The primary artifact goes to the first output, secondary artifacts to the outputs
            // named by their identifiers.
            for (i, (oname, odir)) in ctx.outputs.iter().enumerate() {
                let art = outcome
                    .artifacts
                    .iter()
                    .find(|x| x.identifier.as_deref() == Some(oname.as_str()))
                    .or_else(|| {
                        if i == 0 {
                            outcome.artifacts.iter().find(|x| x.identifier.is_none())
                        } else {
                            None
                        }
                    });
                match art {
                    Some(art) => copy_tree(&art.dir, odir).map_err(|e| format!("failed to collect artifact {oname}: {e}"))?,
                    None => {
                        return Err(format!(
                            "the build produced no artifact for output `{oname}`: add `artifacts` (or a secondary artifact `{oname}`) to the buildspec"
                        ))
                    }
                }
            }
            let mut out = ActionOutput::default();
            for (k, v) in outcome.exported_variables {
                out.variables.insert(k, v.into());
            }
            Ok(out)
        })
    }
}

/// A batch build (`BatchEnabled`), as CodePipeline runs one: every build of the buildspec's
/// `batch`, then the output artifacts by name: `BUILD` is that build's primary artifact and
/// `BUILD_ARTIFACT` its secondary artifact `ARTIFACT`; with `CombineArtifacts`, the first output
/// holds every build's primary artifact in a directory named by its identifier (and each
/// secondary one in `BUILD_ARTIFACT/`).
async fn run_batch_action(
    ctx: &ActionContext,
    project: &str,
    spec: meridian_buildspec::BuildSpec,
    bc: BuildContext,
    combine: bool,
) -> Result<ActionOutput, String> {
    if spec.batch.is_none() {
        return Err(format!(
            "BatchEnabled is true, but the buildspec of project `{project}` has no `batch` section: add build-list, build-matrix or build-graph to it, or set BatchEnabled to false"
        ));
    }
    let parallel = meridian_buildspec::batch::default_parallelism();
    let outcome = tokio::task::spawn_blocking(move || meridian_buildspec::batch::run_batch(&spec, &bc, parallel))
        .await
        .map_err(|e| format!("the build runner failed: {e}"))?
        .map_err(|e| e.to_string())?;
    let mut failed = Vec::new();
    for b in &outcome.builds {
        let status = b.status.map(|s| s.as_str()).unwrap_or("NOT_RUN");
        ctx.log.line(&format!(
            "batch build {}: {status}{}{}",
            b.identifier,
            if b.ignore_failure && b.status != Some(meridian_buildspec::Status::Succeeded) {
                " (failure ignored)"
            } else {
                ""
            },
            b.reason.as_ref().map(|r| format!(": {r}")).unwrap_or_default()
        ));
        if b.fails_batch() {
            failed.push(format!("{} ({status})", b.identifier));
        }
    }
    if !outcome.succeeded() {
        return Err(format!(
            "batch build {}: {}",
            outcome.status.as_str(),
            failed.join(", ")
        ));
    }
    // (build identifier, artifact identifier or None for the primary one) -> directory
    let mut artifacts: Vec<(String, Option<String>, std::path::PathBuf)> = Vec::new();
    for b in &outcome.builds {
        for art in b.outcome.iter().flat_map(|o| o.artifacts.iter()) {
            artifacts.push((b.identifier.clone(), art.identifier.clone(), art.dir.clone()));
        }
    }
    if combine {
        let Some((oname, odir)) = ctx.outputs.first() else {
            return Ok(ActionOutput::default());
        };
        for (build, art, dir) in &artifacts {
            let sub = match art {
                None => build.clone(),
                Some(a) => format!("{build}_{a}"),
            };
            copy_tree(dir, &odir.join(meridian_core::path::safe_component(&sub)))
                .map_err(|e| format!("failed to collect artifact {oname}: {e}"))?;
        }
        return Ok(ActionOutput::default());
    }
    for (oname, odir) in &ctx.outputs {
        let found = artifacts.iter().find(|(build, art, _)| match art {
            None => build == oname,
            Some(a) => format!("{build}_{a}") == *oname,
        });
        match found {
            Some((_, _, dir)) => {
                copy_tree(dir, odir).map_err(|e| format!("failed to collect artifact {oname}: {e}"))?
            }
            None => {
                let known: Vec<String> = artifacts
                    .iter()
                    .map(|(b, a, _)| a.as_ref().map(|a| format!("{b}_{a}")).unwrap_or_else(|| b.clone()))
                    .collect();
                return Err(format!(
                    "the batch produced no artifact for output `{oname}`: with BatchEnabled, output artifacts are named BUILD (a build's primary artifact) or BUILD_ARTIFACT (its secondary artifact); this batch made {known:?} (or set CombineArtifacts to true)"
                ));
            }
        }
    }
    Ok(ActionOutput::default())
}

/// The commit of the source this build's inputs came from (`CODEBUILD_RESOLVED_SOURCE_VERSION`).
fn resolved_source_version(ctx: &ActionContext) -> Option<String> {
    let actions = ctx.journal.actions(&ctx.execution_id).ok()?;
    actions.iter().find_map(|a| {
        a.output_variables
            .get("CommitId")
            .and_then(|v| v.as_str())
            .map(str::to_string)
    })
}
