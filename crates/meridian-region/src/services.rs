//! What a region must offer to deploy container services: the port of CodePipeline's `ECS`
//! deploy action (an image definitions file -> a new task definition revision -> the service
//! updated to it -> the service stable). AWS regions implement it; local regions run no
//! containers and refuse it with [`NoContainers`].

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
