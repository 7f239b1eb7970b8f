//! CodePipeline's `ECS` deploy action on AWS regions, as CodePipeline runs it: the service's
//! current task definition is copied into a new revision whose containers named in
//! `imagedefinitions.json` run the new images, the service is updated to that revision, and the
//! action waits until the service is stable (one deployment, as many tasks running as desired).

use crate::config::AwsOptions;
use aws_sdk_ecs::types::{ContainerDefinition, TaskDefinition};
use aws_sdk_ecs::Client;
use futures::future::BoxFuture;
use meridian_region::services::{ContainerServices, ImageDeploy};
use meridian_region::{ErrorKind, RegionError, Say};
use std::time::{Duration, Instant};

/// The ContainerServices of AWS regions.
pub struct EcsServices {
    options: AwsOptions,
    /// How often the service is looked at while it settles.
    pub poll: Duration,
}

impl EcsServices {
    pub fn new(options: AwsOptions) -> EcsServices {
        EcsServices {
            options,
            poll: Duration::from_secs(5),
        }
    }
}

fn err<E: aws_sdk_ecs::error::ProvideErrorMetadata + std::error::Error + 'static>(
    req: &ImageDeploy,
    action: &str,
    e: aws_sdk_ecs::error::SdkError<E>,
) -> RegionError {
    crate::sdk_error(&req.region, action, &e).resource(&format!("{}/{}", req.cluster, req.service))
}

fn invalid(req: &ImageDeploy, message: String) -> RegionError {
    RegionError::new(ErrorKind::Invalid, message)
        .region(&req.region)
        .resource(&format!("{}/{}", req.cluster, req.service))
}

/// The containers with their new images; an image definition naming no container is an error,
/// as CodePipeline makes it.
fn with_images(req: &ImageDeploy, containers: &[ContainerDefinition]) -> Result<Vec<ContainerDefinition>, RegionError> {
    for (name, _) in &req.images {
        if !containers.iter().any(|c| c.name() == Some(name.as_str())) {
            let names: Vec<&str> = containers.iter().filter_map(|c| c.name()).collect();
            return Err(invalid(
                req,
                format!(
                    "imagedefinitions.json names container `{name}`, which the task definition of service {} does not have (it has: {})",
                    req.service,
                    names.join(", ")
                ),
            ));
        }
    }
    Ok(containers
        .iter()
        .map(
            |c| match req.images.iter().find(|(n, _)| c.name() == Some(n.as_str())) {
                Some((_, image)) => {
                    let mut c = c.clone();
                    c.image = Some(image.clone());
                    c
                }
                None => c.clone(),
            },
        )
        .collect())
}

async fn register(cx: &Client, req: &ImageDeploy, td: &TaskDefinition) -> Result<String, RegionError> {
    let containers = with_images(req, td.container_definitions())?;
    let family = td
        .family()
        .ok_or_else(|| invalid(req, "the service's task definition has no family".into()))?;
    let out = cx
        .register_task_definition()
        .family(family)
        .set_container_definitions(Some(containers))
        .set_task_role_arn(td.task_role_arn().map(str::to_string))
        .set_execution_role_arn(td.execution_role_arn().map(str::to_string))
        .set_network_mode(td.network_mode().cloned())
        .set_volumes(Some(td.volumes().to_vec()))
        .set_placement_constraints(Some(td.placement_constraints().to_vec()))
        .set_requires_compatibilities(Some(td.requires_compatibilities().to_vec()))
        .set_cpu(td.cpu().map(str::to_string))
        .set_memory(td.memory().map(str::to_string))
        .set_pid_mode(td.pid_mode().cloned())
        .set_ipc_mode(td.ipc_mode().cloned())
        .set_proxy_configuration(td.proxy_configuration().cloned())
        .set_ephemeral_storage(td.ephemeral_storage().cloned())
        .set_runtime_platform(td.runtime_platform().cloned())
        .send()
        .await
        .map_err(|e| err(req, "ecs:RegisterTaskDefinition", e))?;
    out.task_definition()
        .and_then(|t| t.task_definition_arn())
        .map(str::to_string)
        .ok_or_else(|| invalid(req, "RegisterTaskDefinition returned no task definition".into()))
}

impl ContainerServices for EcsServices {
    fn deploy_images<'a>(&'a self, req: &'a ImageDeploy, say: Say) -> BoxFuture<'a, Result<String, RegionError>> {
        Box::pin(async move {
            let cx = Client::new(&self.options.sdk_config(&req.region).await);
            let describe = || async {
                cx.describe_services()
                    .cluster(&req.cluster)
                    .services(&req.service)
                    .send()
                    .await
                    .map_err(|e| err(req, "ecs:DescribeServices", e))
            };
            let services = describe().await?;
            let Some(service) = services.services().first() else {
                return Err(RegionError::new(
                    ErrorKind::NotFound,
                    format!(
                        "service {} does not exist in cluster {} in {}: create it first (the ECS action updates a service, it does not create one)",
                        req.service, req.cluster, req.region
                    ),
                )
                .region(&req.region));
            };
            let current = service
                .task_definition()
                .ok_or_else(|| invalid(req, format!("service {} has no task definition", req.service)))?
                .to_string();
            let td = cx
                .describe_task_definition()
                .task_definition(&current)
                .send()
                .await
                .map_err(|e| err(req, "ecs:DescribeTaskDefinition", e))?;
            let td = td
                .task_definition()
                .ok_or_else(|| invalid(req, format!("task definition {current} cannot be read")))?;
            let new = register(&cx, req, td).await?;
            say(&format!(
                "{} {}/{}: registered {new} ({})",
                req.region,
                req.cluster,
                req.service,
                req.images
                    .iter()
                    .map(|(n, i)| format!("{n} = {i}"))
                    .collect::<Vec<_>>()
                    .join(", ")
            ));
            cx.update_service()
                .cluster(&req.cluster)
                .service(&req.service)
                .task_definition(&new)
                .send()
                .await
                .map_err(|e| err(req, "ecs:UpdateService", e))?;
            say(&format!(
                "{} {}/{}: updated to {new}; waiting until it is stable",
                req.region, req.cluster, req.service
            ));
            let started = Instant::now();
            let mut last = String::new();
            loop {
                let now = describe().await?;
                let s = now.services().first();
                let running = s.map_or(0, |s| s.running_count());
                let desired = s.map_or(0, |s| s.desired_count());
                let deployments = s.map_or(0, |s| s.deployments().len());
                let on_new = s.and_then(|s| s.task_definition()) == Some(new.as_str());
                let state = format!("{running}/{desired} tasks running, {deployments} deployment(s)");
                if state != last {
                    say(&format!("{} {}/{}: {state}", req.region, req.cluster, req.service));
                    last = state;
                }
                if on_new && deployments <= 1 && running >= desired {
                    say(&format!(
                        "{} {}/{}: stable on {new}",
                        req.region, req.cluster, req.service
                    ));
                    return Ok(new);
                }
                if started.elapsed() >= req.timeout {
                    return Err(RegionError::new(
                        ErrorKind::Permanent,
                        format!(
                            "service {} of cluster {} in {} was not stable after {} s ({last}); it keeps deploying {new}: see its events (aws ecs describe-services), or raise DeploymentTimeout",
                            req.service,
                            req.cluster,
                            req.region,
                            req.timeout.as_secs()
                        ),
                    )
                    .region(&req.region));
                }
                tokio::time::sleep(self.poll.min(req.timeout)).await;
            }
        })
    }
}
