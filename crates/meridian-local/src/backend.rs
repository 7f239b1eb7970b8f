//! Wiring of the local regions: the Lambda host, the stacks and the progressive-delivery driver
//! opened together on a data directory, recovered from whatever a killed process left, and
//! offered to the engine as one [`RegionBackend`]. The CLI and (later) the server use this; the
//! engine never does.

use crate::functions::LocalFunctions;
use crate::stacks::LocalStacks;
use crate::{HostConfig, LambdaHost};
use futures::future::BoxFuture;
use meridian_engine::delivery::{DeliveryStore, Shifter};
use meridian_region::stacks::{LiveFunction, StackDeployer, StackInfo, StackOutcome, StackRequest};
use meridian_region::{RegionBackend, RegionError, Say};
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// The progressive-delivery driver over the local Lambda host. Deployments whose process died
/// are rolled back first; `notice` hears one line for each.
pub fn open_shifter(data_dir: &Path, host: LambdaHost, notice: &dyn Fn(&str)) -> Result<Arc<Shifter>, String> {
    let clock = host.config().clock.clone();
    let control = Arc::new(LocalFunctions::new(host)?);
    let store = DeliveryStore::open(data_dir)?;
    let shifter = Shifter::new(control, store).with_clock(clock, std::time::Duration::from_millis(100));
    for id in shifter.recover()? {
        notice(&format!(
            "deployment {id}: the process running it had ended; its alias is back on the previous version (meridian deployments show {id})"
        ));
    }
    Ok(Arc::new(shifter))
}

/// The local regions' stacks, with the Lambda host they deploy functions to and the driver that
/// shifts their aliases. Deployments and stack operations whose process died are brought back to
/// a stable state first; `notice` hears one line for each (and the events of their rollback).
pub fn open_stacks(data_dir: &Path, notice: &dyn Fn(&str)) -> Result<LocalStacks, String> {
    let host = LambdaHost::open(HostConfig::new(data_dir))
        .map_err(|e| format!("failed to open the local Lambda host in {}: {e}", data_dir.display()))?;
    let stacks = LocalStacks::open(data_dir, data_dir, host.clone())?;
    stacks.set_shifter(open_shifter(data_dir, host, notice)?);
    for line in stacks.recover_interrupted(&|l| notice(&format!("  {l}")))? {
        notice(&line);
    }
    Ok(stacks)
}

/// The local stacks, opened on first use: pipelines without CloudFormation actions never touch the
/// Lambda host's or the stacks' databases.
#[derive(Clone)]
pub struct LazyStacks {
    data_dir: PathBuf,
    notice: Say,
    stacks: Arc<std::sync::OnceLock<Result<LocalStacks, String>>>,
}

impl LazyStacks {
    pub fn new(data_dir: &Path, notice: Say) -> Self {
        LazyStacks {
            data_dir: data_dir.to_path_buf(),
            notice,
            stacks: Arc::default(),
        }
    }

    /// The stacks, opened (and recovered) on a blocking thread the first time.
    async fn get(&self) -> Result<LocalStacks, RegionError> {
        let opened = match self.stacks.get() {
            Some(s) => s.clone(),
            None => {
                let me = self.clone();
                tokio::task::spawn_blocking(move || {
                    me.stacks
                        .get_or_init(|| open_stacks(&me.data_dir, &|l| (me.notice)(l)))
                        .clone()
                })
                .await
                .map_err(|e| RegionError::permanent(format!("opening the local stacks stopped: {e}")))?
            }
        };
        opened.map_err(|e| RegionError::new(meridian_region::ErrorKind::Unavailable, e))
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

    fn deploy<'a>(&'a self, req: &'a StackRequest, log: Say) -> BoxFuture<'a, Result<StackOutcome, RegionError>> {
        Box::pin(async move { StackDeployer::deploy(&self.get().await?, req, log).await })
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
        log: Say,
    ) -> BoxFuture<'a, Result<StackOutcome, RegionError>> {
        Box::pin(
            async move { StackDeployer::execute_change_set(&self.get().await?, region, stack, change_set, log).await },
        )
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

/// Every local region, as one backend over a data directory.
pub fn backend(data_dir: &Path, notice: Say) -> RegionBackend {
    RegionBackend {
        kind: "local".into(),
        artifacts: Arc::new(crate::buckets::LocalArtifactStores {
            data_dir: data_dir.to_path_buf(),
        }),
        stacks: Arc::new(LazyStacks::new(data_dir, notice)),
    }
}
