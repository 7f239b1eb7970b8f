//! The CodeBuild action on AWS regions (`builds: codebuild`), as CodePipeline runs it: the
//! project's build is started with the primary source from the region's artifact bucket
//! (`sourceTypeOverride: S3`), the definition's buildspec, environment variables and timeout as
//! overrides, and the output artifact sent back to the bucket as a zip; its phases and its log
//! lines (CloudWatch Logs) are said while it runs, it is stopped when the action is, and on
//! success the artifact is copied to this machine.

use crate::config::AwsOptions;
use aws_sdk_codebuild::types::{
    ArtifactNamespace, ArtifactPackaging, ArtifactsType, Build, EnvironmentVariable, EnvironmentVariableType,
    ProjectArtifacts, SourceType, StatusType,
};
use futures::future::BoxFuture;
use meridian_region::services::{RemoteBuild, RemoteBuildResult, RemoteBuilds};
use meridian_region::{ErrorKind, RegionError, Say};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// The RemoteBuilds of AWS regions.
pub struct CodeBuildService {
    options: AwsOptions,
    /// How often the build is looked at while it runs.
    pub poll: Duration,
}

impl CodeBuildService {
    pub fn new(options: AwsOptions) -> CodeBuildService {
        CodeBuildService {
            options,
            poll: Duration::from_secs(5),
        }
    }
}

fn invalid(req: &RemoteBuild, message: String) -> RegionError {
    RegionError::new(ErrorKind::Invalid, message)
        .region(&req.region)
        .resource(&req.project)
}

/// `StartBuild`'s request: the project with the source, buildspec, variables, timeout and
/// artifacts of this run.
fn start_request(
    cx: &aws_sdk_codebuild::Client,
    req: &RemoteBuild,
) -> Result<aws_sdk_codebuild::operation::start_build::builders::StartBuildFluentBuilder, RegionError> {
    let built = |what: &str, e: aws_sdk_codebuild::error::BuildError| invalid(req, format!("{what}: {e}"));
    let mut start = cx
        .start_build()
        .project_name(&req.project)
        .source_type_override(SourceType::S3)
        .source_location_override(format!("{}/{}", req.bucket, req.source_key))
        .set_buildspec_override(req.buildspec.clone())
        .set_timeout_in_minutes_override(req.timeout_minutes.map(|m| m.clamp(5, 2160) as i32));
    for (name, value, kind) in &req.env {
        let v = EnvironmentVariable::builder()
            .name(name)
            .value(value)
            .r#type(EnvironmentVariableType::from(kind.as_str()))
            .build()
            .map_err(|e| built("an environment variable", e))?;
        start = start.environment_variables_override(v);
    }
    let artifacts = match &req.output {
        Some((key, _)) => {
            let (path, name) = key.rsplit_once('/').unwrap_or(("", key.as_str()));
            ProjectArtifacts::builder()
                .r#type(ArtifactsType::S3)
                .location(&req.bucket)
                .path(path)
                .name(name)
                .packaging(ArtifactPackaging::Zip)
                .namespace_type(ArtifactNamespace::None)
                .build()
        }
        None => ProjectArtifacts::builder().r#type(ArtifactsType::NoArtifacts).build(),
    }
    .map_err(|e| built("the artifacts override", e))?;
    Ok(start.artifacts_override(artifacts))
}

/// A line per phase that ended since `seen` phases were said: its name, status and, for a
/// failure, CodeBuild's reason.
fn phase_lines(build: &Build, seen: &mut usize) -> Vec<String> {
    let phases = build.phases();
    let mut out = Vec::new();
    while *seen < phases.len() {
        let p = &phases[*seen];
        let Some(status) = p.phase_status() else {
            // still running: said when it ends
            break;
        };
        let name = p.phase_type().map(|t| t.as_str().to_string()).unwrap_or_default();
        let mut line = format!("phase {name}: {}", status.as_str());
        if let Some(d) = p.duration_in_seconds() {
            line.push_str(&format!(" ({d} s)"));
        }
        for c in p.contexts() {
            if let Some(m) = c.message().filter(|m| !m.is_empty()) {
                line.push_str(&format!(": {} {m}", c.status_code().unwrap_or_default()));
            }
        }
        out.push(line);
        *seen += 1;
    }
    out
}

/// Why a build that ended without success failed, from its failed phase.
fn failure(build: &Build) -> String {
    let status = build.build_status().map(|s| s.as_str().to_string()).unwrap_or_default();
    let failed = build
        .phases()
        .iter()
        .find(|p| p.phase_status().is_some_and(|s| s != &StatusType::Succeeded));
    match failed {
        Some(p) => {
            let reason: Vec<String> = p
                .contexts()
                .iter()
                .filter_map(|c| c.message().filter(|m| !m.is_empty()).map(str::to_string))
                .collect();
            format!(
                "build {} ended {status} in phase {}{}",
                build.id().unwrap_or_default(),
                p.phase_type().map(|t| t.as_str()).unwrap_or("?"),
                if reason.is_empty() {
                    String::new()
                } else {
                    format!(": {}", reason.join("; "))
                }
            )
        }
        None => format!("build {} ended {status}", build.id().unwrap_or_default()),
    }
}

impl CodeBuildService {
    /// The log lines written since `token`, from the build's CloudWatch Logs stream (none when
    /// the stream does not exist yet).
    async fn log_lines(
        &self,
        logs: &aws_sdk_cloudwatchlogs::Client,
        build: &Build,
        token: &mut Option<String>,
    ) -> Vec<String> {
        let Some((group, stream)) = build
            .logs()
            .and_then(|l| Some((l.group_name()?.to_string(), l.stream_name()?.to_string())))
        else {
            return Vec::new();
        };
        let mut out = Vec::new();
        // a few pages at a time; the rest comes at the next look
        for _ in 0..5 {
            let page = logs
                .get_log_events()
                .log_group_name(&group)
                .log_stream_name(&stream)
                .start_from_head(true)
                .set_next_token(token.clone())
                .send()
                .await;
            let Ok(page) = page else { break };
            let lines: Vec<String> = page
                .events()
                .iter()
                .filter_map(|e| e.message().map(|m| m.trim_end().to_string()))
                .collect();
            let next = page.next_forward_token().map(str::to_string);
            let done = lines.is_empty() || next == *token;
            out.extend(lines);
            *token = next;
            if done {
                break;
            }
        }
        out
    }

    /// Copies the build's zipped output artifact to its local file.
    async fn fetch_output(&self, req: &RemoteBuild, key: &str, file: &std::path::Path) -> Result<(), RegionError> {
        let s3 = aws_sdk_s3::Client::new(&self.options.sdk_config(&req.region).await);
        let got = s3.get_object().bucket(&req.bucket).key(key).send().await.map_err(|e| {
            let missing = e.as_service_error().is_some_and(|s| s.is_no_such_key());
            if missing {
                invalid(
                    req,
                    format!(
                        "CodeBuild reported the build of {} a success, but its output artifact s3://{}/{key} is not there: check that project's artifacts can be overridden (its `artifacts` type is not NO_ARTIFACTS in the console's settings) and that its role may s3:PutObject to {}",
                        req.project, req.bucket, req.bucket
                    ),
                )
            } else {
                crate::sdk_error(&req.region, "s3:GetObject", &e)
            }
        })?;
        let mut reader = got.body.into_async_read();
        let mut out = tokio::fs::File::create(file)
            .await
            .map_err(|e| invalid(req, format!("cannot write {}: {e}", file.display())))?;
        tokio::io::copy(&mut reader, &mut out)
            .await
            .map_err(|e| invalid(req, format!("cannot copy s3://{}/{key}: {e}", req.bucket)))?;
        Ok(())
    }
}

/// How many times in a row looking at a build may fail (throttling, the network) before the
/// build is given up, and stopped.
const POLL_ATTEMPTS: u32 = 5;

impl CodeBuildService {
    /// Looks at the build until it ends, saying its log lines and phases, and stops it when
    /// `stop` becomes true; a failed look is tried again, up to [`POLL_ATTEMPTS`] in a row.
    async fn follow(
        &self,
        cx: &aws_sdk_codebuild::Client,
        logs: &aws_sdk_cloudwatchlogs::Client,
        req: &RemoteBuild,
        id: &str,
        say: &Say,
        stop: &AtomicBool,
    ) -> Result<Build, RegionError> {
        let (mut phases_said, mut log_token, mut stopping, mut failures) = (0usize, None, false, 0u32);
        loop {
            if stop.load(Ordering::SeqCst) && !stopping {
                stopping = true;
                say(&format!("stopping build {id}"));
                cx.stop_build()
                    .id(id)
                    .send()
                    .await
                    .map_err(|e| crate::sdk_error(&req.region, "codebuild:StopBuild", &e).resource(id))?;
            }
            let got = match cx.batch_get_builds().ids(id).send().await {
                Ok(got) => {
                    failures = 0;
                    got
                }
                Err(e) => {
                    failures += 1;
                    let e = crate::sdk_error(&req.region, "codebuild:BatchGetBuilds", &e).resource(id);
                    if failures >= POLL_ATTEMPTS {
                        return Err(e);
                    }
                    say(&format!("looking at build {id} failed ({}); trying again", e.message));
                    tokio::time::sleep(self.poll * failures).await;
                    continue;
                }
            };
            let Some(build) = got.builds().first().cloned() else {
                return Err(invalid(req, format!("BatchGetBuilds does not know build {id}")));
            };
            for line in self.log_lines(logs, &build, &mut log_token).await {
                say(&line);
            }
            for line in phase_lines(&build, &mut phases_said) {
                say(&line);
            }
            let running = build.build_status().is_none_or(|s| s == &StatusType::InProgress);
            if !running {
                return Ok(build);
            }
            tokio::time::sleep(self.poll).await;
        }
    }
}

impl RemoteBuilds for CodeBuildService {
    fn run_build<'a>(
        &'a self,
        req: &'a RemoteBuild,
        say: Say,
        stop: Arc<AtomicBool>,
    ) -> BoxFuture<'a, Result<RemoteBuildResult, RegionError>> {
        Box::pin(async move {
            let config = self.options.sdk_config(&req.region).await;
            let cx = aws_sdk_codebuild::Client::new(&config);
            let logs = aws_sdk_cloudwatchlogs::Client::new(&config);
            let started = start_request(&cx, req)?
                .send()
                .await
                .map_err(|e| crate::sdk_error(&req.region, "codebuild:StartBuild", &e).resource(&req.project))?;
            let id = started
                .build_value()
                .and_then(|b| b.id())
                .map(str::to_string)
                .ok_or_else(|| invalid(req, "StartBuild returned no build".into()))?;
            say(&format!(
                "started build {id} of project {} in {}",
                req.project, req.region
            ));
            let build = match self.follow(&cx, &logs, req, &id, &say, &stop).await {
                Ok(b) => b,
                Err(e) => {
                    // a build that can no longer be followed is not left running: stopped, best effort
                    let _ = cx.stop_build().id(&id).send().await;
                    say(&format!("stopped build {id}: it could not be followed"));
                    return Err(e);
                }
            };
            let status = build.build_status().map(|s| s.as_str().to_string()).unwrap_or_default();
            if build.build_status() != Some(&StatusType::Succeeded) {
                return Err(RegionError::new(ErrorKind::Invalid, failure(&build))
                    .region(&req.region)
                    .resource(&id));
            }
            if let Some((key, file)) = &req.output {
                self.fetch_output(req, key, file).await?;
            }
            Ok(RemoteBuildResult { id, status })
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_sdk_codebuild::types::{BuildPhase, BuildPhaseType, PhaseContext};

    fn build(phases: Vec<BuildPhase>, status: StatusType) -> Build {
        Build::builder()
            .id("app:1")
            .build_status(status)
            .set_phases(Some(phases))
            .build()
    }

    #[test]
    fn phases_are_said_once_each_when_they_end() {
        let b = build(
            vec![
                BuildPhase::builder()
                    .phase_type(BuildPhaseType::Submitted)
                    .phase_status(StatusType::Succeeded)
                    .duration_in_seconds(0)
                    .build(),
                BuildPhase::builder().phase_type(BuildPhaseType::Queued).build(),
            ],
            StatusType::InProgress,
        );
        let mut seen = 0;
        assert_eq!(phase_lines(&b, &mut seen), vec!["phase SUBMITTED: SUCCEEDED (0 s)"]);
        assert_eq!(seen, 1);
        assert!(phase_lines(&b, &mut seen).is_empty());
    }

    #[test]
    fn a_failed_build_names_its_phase_and_reason() {
        let b = build(
            vec![
                BuildPhase::builder()
                    .phase_type(BuildPhaseType::Install)
                    .phase_status(StatusType::Succeeded)
                    .build(),
                BuildPhase::builder()
                    .phase_type(BuildPhaseType::Build)
                    .phase_status(StatusType::Failed)
                    .contexts(
                        PhaseContext::builder()
                            .status_code("COMMAND_EXECUTION_ERROR")
                            .message("Error while executing command: make. Reason: exit status 2")
                            .build(),
                    )
                    .build(),
            ],
            StatusType::Failed,
        );
        assert_eq!(
            failure(&b),
            "build app:1 ended FAILED in phase BUILD: Error while executing command: make. Reason: exit status 2"
        );
    }
}
