//! The CodeBuild action: `ProjectName` names a project of the definition (its buildspec path or
//! inline buildspec, its environment variables); the build runs as CodeBuild runs it (see the
//! meridian-buildspec crate) with the primary source and the secondary inputs; its artifacts
//! become the output artifacts and its `exported-variables` the action's output variables.
//!
//! With `builds: codebuild`, the build runs on the action region's AWS CodeBuild instead (the
//! project of that name in the account): the primary source goes to the region's artifact
//! bucket, the definition's buildspec, variables and timeout are the build's overrides, and its
//! output artifact comes back from the bucket ([`run_remote`]).

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
            if ctx.remote_builds {
                return run_remote(ctx, &name, &primary).await;
            }
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

/// The build on the region's AWS CodeBuild (`builds: codebuild`), through its
/// [`meridian_region::services::RemoteBuilds`].
async fn run_remote(ctx: &ActionContext, name: &str, primary: &std::path::Path) -> Result<ActionOutput, String> {
    let a = &ctx.action;
    if ctx.inputs.len() > 1 {
        return Err(format!(
            "project `{name}` runs on AWS CodeBuild (`builds: codebuild`), which Meridian gives the primary source only: secondary input artifacts are not passed yet (build on this machine with `builds: local`)"
        ));
    }
    if ctx.outputs.len() > 1 {
        return Err(format!(
            "project `{name}` runs on AWS CodeBuild (`builds: codebuild`), whose build Meridian collects one output artifact from: declare one output artifact, or build on this machine with `builds: local`"
        ));
    }
    if a.config("BatchEnabled").is_some_and(|v| v.eq_ignore_ascii_case("true")) {
        return Err(format!(
            "project `{name}` runs on AWS CodeBuild (`builds: codebuild`); batch builds there are not run by Meridian yet: set BatchEnabled to false, or build on this machine with `builds: local`"
        ));
    }
    let backend = ctx.regions.get(&ctx.region).map_err(|e| e.to_string())?;
    let Some((bucket, store)) = ctx.stores.get(&ctx.region) else {
        return Err(format!(
            "region {} has no artifact store, which AWS CodeBuild reads the source from: declare the pipeline's artifact store for it",
            ctx.region
        ));
    };
    // the primary source, zipped, into the region's bucket
    let zip = ctx.work_dir.join("source.zip");
    let (dir, out) = (primary.to_path_buf(), zip.clone());
    tokio::task::spawn_blocking(move || crate::artifacts::pack_dir(&dir, &out))
        .await
        .map_err(|e| format!("zipping the source failed: {e}"))?
        .map_err(|e| format!("cannot zip the source for CodeBuild: {e}"))?;
    let (digest, _) = store
        .put_file(&zip)
        .await
        .map_err(|e| format!("cannot upload the source for CodeBuild: {e}"))?;
    let project = ctx.projects.get(name);
    let mut vars = Vec::new();
    if let Some(p) = project {
        vars.extend(project::project_env(&p.environment_variables)?);
    }
    if let Some(json) = a.config("EnvironmentVariables") {
        vars.extend(project::action_env(json)?);
    }
    let env = vars
        .into_iter()
        .map(|v| {
            let kind = match v.kind {
                meridian_buildspec::EnvKind::Plaintext => "PLAINTEXT",
                meridian_buildspec::EnvKind::ParameterStore => "PARAMETER_STORE",
                meridian_buildspec::EnvKind::SecretsManager => "SECRETS_MANAGER",
            };
            (v.name, v.value, kind.to_string())
        })
        .collect();
    let output = ctx.outputs.first().map(|(oname, _)| {
        (
            format!(
                "meridian/builds/{}/{}/{}.zip",
                meridian_core::path::safe_component(&ctx.execution_id),
                meridian_core::path::safe_component(&a.name),
                meridian_core::path::safe_component(oname)
            ),
            ctx.work_dir.join("output.zip"),
        )
    });
    let req = meridian_region::services::RemoteBuild {
        region: ctx.region.clone(),
        project: name.to_string(),
        bucket: bucket.clone(),
        source_key: crate::artifacts::object_key(&digest),
        buildspec: project.map(|p| match &p.buildspec {
            BuildSpecSource::Path(path) => path.clone(),
            BuildSpecSource::Inline(text) => text.clone(),
        }),
        env,
        timeout_minutes: project
            .and_then(|p| p.timeout_in_minutes)
            .map(|m| m.clamp(5, 2160) as u32),
        output: output.clone(),
    };
    let stop = Arc::new(AtomicBool::new(false));
    let mut cancel = ctx.cancel.clone();
    let flag = stop.clone();
    let watcher = tokio::spawn(async move {
        let _ = cancel.wait_for(|c| *c).await;
        flag.store(true, Ordering::SeqCst);
    });
    let log = ctx.log.clone();
    let say: meridian_region::Say = Arc::new(move |l: &str| log.line(l));
    let result = backend.builds.run_build(&req, say, stop).await;
    watcher.abort();
    let result = result.map_err(|e| e.to_string())?;
    if let (Some((_, file)), Some((oname, odir))) = (&output, ctx.outputs.first()) {
        let (file, odir) = (file.clone(), odir.clone());
        tokio::task::spawn_blocking(move || crate::artifacts::unpack(&file, &odir))
            .await
            .map_err(|e| format!("unzipping the output failed: {e}"))?
            .map_err(|e| format!("cannot unpack output artifact {oname} of build {}: {e}", result.id))?;
    }
    let mut out = ActionOutput::default();
    out.variables.insert("BuildId".into(), result.id.into());
    Ok(out)
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
