//! The region ports: everything the engine needs from a region, as traits, and the bundle of
//! them that one region is reached through ([`RegionBackend`]).
//!
//! - [`stacks::StackDeployer`]: CloudFormation (stacks, change sets), used by the CloudFormation
//!   action and the release ledger.
//! - [`artifacts::ArtifactStore`]: a region's artifact store (content-addressed by digest), and
//!   [`artifacts::ArtifactStores`], which opens it from the pipeline's declaration.
//! - [`FunctionControl`]: alias routing, invocations and metrics, used by the progressive-delivery
//!   driver.
//! - [`services::ContainerServices`]: ECS services moved to new images (AWS regions only).
//! - [`services::RemoteBuilds`]: builds run by the region's CodeBuild (AWS regions only).
//! - [`ClientAccess`]: the environment that sends the AWS CLIs and SDKs a build runs to the
//!   region (the local endpoint and its credentials; nothing for AWS, whose own apply).
//! - [`RegionError`]: what every port returns when a call fails, typed by whether a retry helps.
//!
//! Implementations: `meridian-local` (simulated regions on this machine) and, next, `meridian-aws`.
//! The engine holds a [`Regions`] map and never names an implementation; wiring a region to its
//! backend is the job of the program that starts the engine (the CLI, the server).
//!
//! What this crate must not do: depend on the engine or on any implementation, or do I/O.

pub mod artifacts;
pub mod error;
pub mod functions;
pub mod memory;
pub mod services;
pub mod stacks;

pub use error::{ErrorContext, ErrorKind, RegionError};
pub use functions::FunctionControl;
pub use stacks::StackDeployer;

use std::collections::BTreeMap;
use std::sync::Arc;

/// Where progress lines of a long operation go (stack events, traffic shifting), as they happen.
pub type Say = Arc<dyn Fn(&str) + Send + Sync>;

/// One region's backend: the ports through which the engine reaches it.
#[derive(Clone)]
pub struct RegionBackend {
    /// Which implementation this is (`local`, `aws`), for messages and `meridian graph`.
    pub kind: String,
    /// The region's artifact store, as the pipeline declares it.
    pub artifacts: Arc<dyn artifacts::ArtifactStores>,
    pub stacks: Arc<dyn StackDeployer>,
    /// The region's functions: what the engine's delivery driver shifts, measures and invokes.
    pub functions: Arc<dyn FunctionControl>,
    /// How the AWS CLIs and SDKs of a build (run on this machine) reach the region.
    pub clients: Arc<dyn ClientAccess>,
    /// The region's container services (the ECS deploy action).
    pub services: Arc<dyn services::ContainerServices>,
    /// The region's build service (CodeBuild actions with `builds: codebuild`).
    pub builds: Arc<dyn services::RemoteBuilds>,
}

/// How programs that Meridian starts on this machine (builds) reach a region with the AWS CLIs
/// and SDKs: the variables to add to their environment.
pub trait ClientAccess: Send + Sync {
    /// `AWS_ENDPOINT_URL`, credentials and region for local regions (the endpoint is served from
    /// the first call); empty where the user's own configuration applies (AWS).
    fn environment(&self, region: &str) -> Result<Vec<(String, String)>, RegionError>;
}

/// The user's own AWS configuration applies: nothing is added.
pub struct OwnConfiguration;

impl ClientAccess for OwnConfiguration {
    fn environment(&self, _region: &str) -> Result<Vec<(String, String)>, RegionError> {
        Ok(Vec::new())
    }
}

impl std::fmt::Debug for RegionBackend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RegionBackend")
            .field("kind", &self.kind)
            .finish_non_exhaustive()
    }
}

/// Which backend reaches each region: one per region named, and a default for the others.
#[derive(Clone, Debug, Default)]
pub struct Regions {
    default: Option<RegionBackend>,
    by_region: BTreeMap<String, RegionBackend>,
}

impl Regions {
    /// Every region through the same backend.
    pub fn all(backend: RegionBackend) -> Regions {
        Regions {
            default: Some(backend),
            by_region: BTreeMap::new(),
        }
    }

    /// This region through its own backend.
    pub fn with(mut self, region: &str, backend: RegionBackend) -> Regions {
        self.by_region.insert(region.to_string(), backend);
        self
    }

    /// The backend of a region, or an error naming the region when none is wired.
    pub fn get(&self, region: &str) -> Result<&RegionBackend, RegionError> {
        self.by_region.get(region).or(self.default.as_ref()).ok_or_else(|| {
            RegionError::new(
                ErrorKind::Invalid,
                format!("no backend reaches region {region}: the program that started the engine wired none"),
            )
            .region(region)
        })
    }
}

/// The backend kind each region of a pipeline asks for: its own choice, else the pipeline's
/// default, else `local`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct BackendChoice {
    pub default: Option<String>,
    pub by_region: BTreeMap<String, String>,
    /// The IAM role to assume in an AWS region (cross-account deploys), by region; `*`: every AWS
    /// region without its own.
    pub roles: BTreeMap<String, String>,
}

impl BackendChoice {
    pub fn kind_of(&self, region: &str) -> &str {
        self.by_region
            .get(region)
            .or(self.default.as_ref())
            .map(String::as_str)
            .unwrap_or("local")
    }
}

/// Builds the [`Regions`] of an execution from what its pipeline asks for. The program that
/// starts the engine provides it (the CLI and the server share one, in `meridian-wiring`).
pub trait Wiring: Send + Sync {
    fn regions(&self, choice: &BackendChoice) -> Result<Regions, RegionError>;
}

/// A fixed map, whatever the pipeline asks for: for tests and benchmarks.
impl Wiring for Regions {
    fn regions(&self, _choice: &BackendChoice) -> Result<Regions, RegionError> {
        Ok(self.clone())
    }
}
