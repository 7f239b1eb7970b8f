//! What a region must offer to deploy container services: the port of CodePipeline's `ECS`
//! deploy action (an image definitions file -> a new task definition revision -> the service
//! updated to it -> the service stable). AWS regions implement it; local regions run no
//! containers and refuse it with [`NoContainers`].
//!
//! And builds run by the region's own build service ([`RemoteBuilds`]: AWS CodeBuild), when the
//! pipeline says `builds: codebuild`; local regions refuse them with [`NoRemoteBuilds`].

use crate::{ErrorKind, RegionError, Say};
use futures::future::BoxFuture;
use std::time::Duration;

/// One service to move to new images.
#[derive(Debug, Clone, PartialEq)]
pub struct ImageDeploy {
    pub region: String,
    pub cluster: String,
    pub service: String,
    /// Container name -> image URI, from `imagedefinitions.json`.
    pub images: Vec<(String, String)>,
    /// How long the service may take to become stable.
    pub timeout: Duration,
}

/// Container services of one kind of region.
pub trait ContainerServices: Send + Sync {
    /// Registers a revision of the service's task definition with the new images, updates the
    /// service to it, and waits until the service is stable. Returns the new revision's ARN.
    fn deploy_images<'a>(&'a self, req: &'a ImageDeploy, say: Say) -> BoxFuture<'a, Result<String, RegionError>>;
}

/// Regions that run no containers (local ones): the action is refused with what to do.
pub struct NoContainers;

impl ContainerServices for NoContainers {
    fn deploy_images<'a>(&'a self, req: &'a ImageDeploy, _say: Say) -> BoxFuture<'a, Result<String, RegionError>> {
        Box::pin(async move {
            Err(RegionError::new(
                ErrorKind::Invalid,
                format!(
                    "the ECS deploy action updates service {} of cluster {} in {}, but local regions run no containers: give {} `backend: aws` (an ECS service deploys only to an AWS region)",
                    req.service, req.cluster, req.region, req.region
                ),
            )
            .region(&req.region))
        })
    }
}

/// One build for the region's own build service (AWS CodeBuild) to run: the project, the zipped
/// primary source already in the region's artifact bucket, the definition's overrides, and where
/// the output artifact goes.
#[derive(Debug, Clone, PartialEq)]
pub struct RemoteBuild {
    pub region: String,
    /// The CodeBuild project (it must exist in the account and region).
    pub project: String,
    /// The region's artifact bucket, which holds the source and receives the output.
    pub bucket: String,
    /// The key of the zipped primary source in the bucket.
    pub source_key: String,
    /// `buildspecOverride`: a path in the source, or inline buildspec YAML.
    pub buildspec: Option<String>,
    /// Environment variables (`environmentVariablesOverride`): name, value and CodeBuild's type
    /// (`PLAINTEXT`, `PARAMETER_STORE`, `SECRETS_MANAGER`: the value names the parameter or
    /// secret, which CodeBuild reads).
    pub env: Vec<(String, String, String)>,
    pub timeout_minutes: Option<u32>,
    /// The key under which the build uploads its zipped output artifact, and the local file to
    /// copy it to; `None` when the action has no output artifact.
    pub output: Option<(String, std::path::PathBuf)>,
}

/// How a remote build ended.
#[derive(Debug, Clone, PartialEq)]
pub struct RemoteBuildResult {
    /// The build's id (`project:uuid`).
    pub id: String,
    /// `SUCCEEDED` (any other status is an error).
    pub status: String,
}

/// The build service of one kind of region: CodeBuild on AWS, none in local regions (their
/// builds run on this machine).
pub trait RemoteBuilds: Send + Sync {
    /// Starts the build, says its phases and log lines as they come, stops it when `stop`
    /// becomes true, and waits for it to end; on success the output artifact is in its file.
    fn run_build<'a>(
        &'a self,
        req: &'a RemoteBuild,
        say: Say,
        stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    ) -> BoxFuture<'a, Result<RemoteBuildResult, RegionError>>;
}

/// Regions without a build service of their own (local ones): builds run on this machine, and a
/// remote build is refused with what to do.
pub struct NoRemoteBuilds;

impl RemoteBuilds for NoRemoteBuilds {
    fn run_build<'a>(
        &'a self,
        req: &'a RemoteBuild,
        _say: Say,
        _stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    ) -> BoxFuture<'a, Result<RemoteBuildResult, RegionError>> {
        Box::pin(async move {
            Err(RegionError::new(
                ErrorKind::Invalid,
                format!(
                    "project {} is to run on AWS CodeBuild (`builds: codebuild`), but {} is a local region, which has no CodeBuild: give {} `backend: aws`, or drop `builds: codebuild` to build on this machine",
                    req.project, req.region, req.region
                ),
            )
            .region(&req.region))
        })
    }
}
