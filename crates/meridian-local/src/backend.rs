//! Wiring of the local regions: the Lambda host, the stacks and the progressive-delivery driver
//! opened together on a data directory, recovered from whatever a killed process left, and
//! offered to the engine as one [`RegionBackend`]. The CLI and (later) the server use this; the
//! engine never does.

use crate::functions::LocalFunctions;
use crate::stacks::LocalStacks;
use crate::{HostConfig, LambdaHost};
use futures::future::BoxFuture;
use meridian_engine::delivery::{DeliveryStore, Shifter};
use meridian_region::stacks::{LiveFunction, Progress, StackDeployer, StackInfo, StackOutcome, StackRequest};
use meridian_region::{FunctionControl, RegionBackend, RegionError, Say};
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// What opening the local regions gives: the stacks and the functions (one Lambda host).
#[derive(Clone)]
struct Opened {
    stacks: LocalStacks,
    functions: Arc<LocalFunctions>,
}

/// Opens the local regions on a data directory: the Lambda host, the stacks, the functions, and
/// the delivery driver the stacks use when no other is given (`meridian stack deploy`). What a
/// killed process left is brought back to a stable state first (traffic shifts, then stack
/// operations); `notice` hears one line for each.
fn open_local(data_dir: &Path, notice: &dyn Fn(&str)) -> Result<Opened, String> {
    let host = LambdaHost::open(HostConfig::new(data_dir))
        .map_err(|e| format!("failed to open the local Lambda host in {}: {e}", data_dir.display()))?;
    open_with_host(host, data_dir, notice)
}

/// The local stacks over an open Lambda host (the local endpoint's, say), recovered as
/// [`open_stacks`] does.
pub fn open_stacks_with_host(host: LambdaHost, data_dir: &Path, notice: &dyn Fn(&str)) -> Result<LocalStacks, String> {
    open_with_host(host, data_dir, notice).map(|o| o.stacks)
}

fn open_with_host(host: LambdaHost, data_dir: &Path, notice: &dyn Fn(&str)) -> Result<Opened, String> {
    let stacks = LocalStacks::open(data_dir, data_dir, host.clone())?;
    let clock = host.config().clock.clone();
    let functions = Arc::new(LocalFunctions::new(host)?);
    let shifter = Shifter::new(functions.clone(), DeliveryStore::open(data_dir)?)
        .with_clock(clock, std::time::Duration::from_millis(100));
    for id in shifter.recover()? {
        notice(&format!(
            "deployment {id}: the process running it had ended; its alias is back on the previous version (meridian deployments show {id})"
        ));
    }
    stacks.set_shifter(Arc::new(shifter));
    for line in stacks.recover_interrupted(&|l| notice(&format!("  {l}")))? {
        notice(&line);
    }
    Ok(Opened { stacks, functions })
}

/// The local regions' stacks, with the Lambda host they deploy functions to and the driver that
/// shifts their aliases, after recovering what a killed process left.
pub fn open_stacks(data_dir: &Path, notice: &dyn Fn(&str)) -> Result<LocalStacks, String> {
    open_local(data_dir, notice).map(|o| o.stacks)
}

/// The local stacks, opened on first use: pipelines without CloudFormation actions never touch the
/// Lambda host's or the stacks' databases.
#[derive(Clone)]
pub struct LazyStacks {
    data_dir: PathBuf,
    notice: Say,
    opened: Arc<std::sync::OnceLock<Result<Opened, String>>>,
}

impl LazyStacks {
    pub fn new(data_dir: &Path, notice: Say) -> Self {
        LazyStacks {
            data_dir: data_dir.to_path_buf(),
            notice,
            opened: Arc::default(),
        }
    }

    /// The local regions, opened (and recovered) here the first time: for callers that may block.
    fn opened_blocking(&self) -> Result<&Opened, RegionError> {
        self.opened
            .get_or_init(|| open_local(&self.data_dir, &|l| (self.notice)(l)))
            .as_ref()
            .map_err(|e| RegionError::new(meridian_region::ErrorKind::Unavailable, e.clone()))
    }

    /// The stacks, opened (and recovered) on a blocking thread the first time.
    async fn get(&self) -> Result<LocalStacks, RegionError> {
        if let Some(o) = self.opened.get() {
            return o
                .as_ref()
                .map(|o| o.stacks.clone())
                .map_err(|e| RegionError::new(meridian_region::ErrorKind::Unavailable, e.clone()));
        }
        let me = self.clone();
        tokio::task::spawn_blocking(move || me.opened_blocking().map(|o| o.stacks.clone()))
            .await
            .map_err(|e| RegionError::permanent(format!("opening the local stacks stopped: {e}")))?
    }
}

impl StackDeployer for LazyStacks {
    fn describe_stack<'a>(
        &'a self,
        region: &'a str,
        stack: &'a str,
    ) -> BoxFuture<'a, Result<Option<StackInfo>, RegionError>> {
        Box::pin(async move { StackDeployer::describe_stack(&self.get().await?, region, stack).await })
    }

    fn deploy<'a>(
        &'a self,
        req: &'a StackRequest,
        progress: Progress,
    ) -> BoxFuture<'a, Result<StackOutcome, RegionError>> {
        Box::pin(async move { StackDeployer::deploy(&self.get().await?, req, progress).await })
    }

    fn create_change_set<'a>(
        &'a self,
        req: &'a StackRequest,
        log: Say,
    ) -> BoxFuture<'a, Result<Vec<String>, RegionError>> {
        Box::pin(async move { StackDeployer::create_change_set(&self.get().await?, req, log).await })
    }

    fn execute_change_set<'a>(
        &'a self,
        region: &'a str,
        stack: &'a str,
        change_set: &'a str,
        progress: Progress,
    ) -> BoxFuture<'a, Result<StackOutcome, RegionError>> {
        Box::pin(async move {
            StackDeployer::execute_change_set(&self.get().await?, region, stack, change_set, progress).await
        })
    }

    fn delete_stack<'a>(&'a self, region: &'a str, stack: &'a str, log: Say) -> BoxFuture<'a, Result<(), RegionError>> {
        Box::pin(async move { StackDeployer::delete_stack(&self.get().await?, region, stack, log).await })
    }

    fn live_functions<'a>(
        &'a self,
        region: &'a str,
        stack: &'a str,
    ) -> BoxFuture<'a, Result<Vec<LiveFunction>, RegionError>> {
        Box::pin(async move { StackDeployer::live_functions(&self.get().await?, region, stack).await })
    }
}

/// The local functions behind the engine's delivery driver. The driver calls from a thread of
/// its own, so the first call may open the local regions here.
impl FunctionControl for LazyStacks {
    fn route_alias(
        &self,
        region: &str,
        function: &str,
        alias: &str,
        version: &str,
        extra: Option<(&str, f64)>,
    ) -> Result<(), RegionError> {
        self.opened_blocking()?
            .functions
            .route_alias(region, function, alias, version, extra)
    }

    fn invoke_event(&self, region: &str, function: &str, payload: &[u8]) -> Result<(), RegionError> {
        self.opened_blocking()?
            .functions
            .invoke_event(region, function, payload)
    }

    fn invoke(&self, region: &str, function: &str, payload: &[u8]) -> Result<bool, RegionError> {
        self.opened_blocking()?.functions.invoke(region, function, payload)
    }

    fn metrics(
        &self,
        region: &str,
        function: &str,
        qualifier: Option<&str>,
        since_ms: i64,
        until_ms: i64,
        period_ms: i64,
    ) -> Result<Vec<meridian_delivery::alarm::MetricPoint>, RegionError> {
        self.opened_blocking()?
            .functions
            .metrics(region, function, qualifier, since_ms, until_ms, period_ms)
    }

    fn api_request(&self, region: &str, target: &str, route: &str, body: &[u8]) -> Result<bool, RegionError> {
        self.opened_blocking()?
            .functions
            .api_request(region, target, route, body)
    }

    fn ensure_hook_endpoint(&self) -> Result<(), RegionError> {
        self.opened_blocking()?.functions.ensure_hook_endpoint()
    }
}

impl meridian_region::ClientAccess for LazyStacks {
    fn environment(&self, region: &str) -> Result<Vec<(String, String)>, RegionError> {
        let url = self.opened_blocking()?.functions.endpoint_url()?;
        Ok(crate::credentials::client_env(region, Some(&url)))
    }
}

/// Every local region, as one backend over a data directory.
pub fn backend(data_dir: &Path, notice: Say) -> RegionBackend {
    let lazy = Arc::new(LazyStacks::new(data_dir, notice));
    RegionBackend {
        kind: "local".into(),
        artifacts: Arc::new(crate::buckets::LocalArtifactStores {
            data_dir: data_dir.to_path_buf(),
        }),
        stacks: lazy.clone(),
        functions: lazy.clone(),
        clients: lazy,
        services: Arc::new(meridian_region::services::NoContainers),
        builds: Arc::new(meridian_region::services::NoRemoteBuilds),
    }
}
