//! What a region must offer to deploy CloudFormation stacks: the port the CloudFormation action
//! and the release ledger use, implemented by the local region (meridian-local) and by AWS.

use crate::{RegionError, Say};
use futures::future::BoxFuture;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::PathBuf;

/// A request to plan (and possibly run) a stack change.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct StackRequest {
    pub region: String,
    pub stack_name: String,
    /// The change set's name (CHANGE_SET_REPLACE); `None` for a direct create or update.
    pub change_set_name: Option<String>,
    /// The template file; relative code paths in it are relative to its directory.
    pub template_path: PathBuf,
    pub parameters: BTreeMap<String, String>,
    pub capabilities: Vec<String>,
    pub tags: BTreeMap<String, String>,
    /// Record resource types local regions cannot deploy as inert placeholders instead of failing.
    pub allow_unsupported: bool,
    /// Beyond SAM: publish a new function version when its configuration changes, not only its code.
    pub publish_on_config_change: bool,
    /// Where the local buckets of this run live (a pipeline's `--artifact-root`); `None`: the default.
    pub artifact_root: Option<PathBuf>,
    /// The template the user wrote, when `template_path` is a packaged copy of it: messages name
    /// this file and its lines.
    pub source_template: Option<PathBuf>,
    /// How alias updates under `CodeDeployLambdaAliasUpdate` shift traffic.
    #[serde(default)]
    pub delivery: DeliveryOptions,
    /// The region's artifact bucket: where a template too large to send with the request is put
    /// for CloudFormation to read (AWS regions).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub template_bucket: Option<String>,
    /// The role CloudFormation acts with (the action's `RoleArn`; AWS regions).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service_role: Option<String>,
}

/// Progressive-delivery settings of one stack operation, from the pipeline (native `deploy:`) or
/// the command line. The template's own `DeploymentPreference` applies where these are silent.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct DeliveryOptions {
    /// Overrides the deployment group's configuration: a CodeDeploy name
    /// (`Canary10Percent5Minutes`) or a multi-step schedule (`1%:5m,25%:5m,100%`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub preference: Option<String>,
    /// Nominal durations (bakes, hook timeouts) are divided by this; 0 means 1.
    #[serde(default)]
    pub time_scale: f64,
    /// Synthetic traffic sent to the alias while it shifts (local regions have no users).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub traffic: Option<TrafficSpec>,
    /// Compare the new version with the old one at the end of every bake.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub judge: Option<meridian_delivery::judge::JudgeConfig>,
    /// The pipeline and execution deploying, for the deployment's record.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pipeline: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub execution_id: Option<String>,
}

impl DeliveryOptions {
    pub fn time_scale(&self) -> f64 {
        if self.time_scale > 0.0 {
            self.time_scale
        } else {
            1.0
        }
    }
}

/// Synthetic traffic: `rate` invocations a second, payloads taken in turn.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TrafficSpec {
    pub rate: f64,
    /// JSON payloads; empty means `{}`.
    #[serde(default)]
    pub payloads: Vec<String>,
    /// `METHOD /path` (within the stage) of the API in front of the alias: the traffic goes
    /// through it, as users' requests do, instead of invoking the alias directly.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub route: Option<String>,
}

/// One alias moved by a CodeDeploy deployment group (`UpdatePolicy: CodeDeployLambdaAliasUpdate`).
#[derive(Debug, Clone)]
pub struct AliasDeployment {
    pub region: String,
    pub stack_name: String,
    pub function: String,
    pub alias: String,
    pub from_version: String,
    pub to_version: String,
    /// The deployment group's properties, evaluated.
    pub deployment_group: serde_json::Value,
    /// The group's `AWS::CodeDeploy::DeploymentConfig` properties when it names one of the stack's.
    pub deployment_config: Option<serde_json::Value>,
    /// Alarm name -> the alarm's properties, evaluated, for the group's alarms.
    pub alarms: BTreeMap<String, serde_json::Value>,
    /// BeforeAllowTraffic / AfterAllowTraffic hook function names.
    pub before_hook: Option<String>,
    pub after_hook: Option<String>,
    pub options: DeliveryOptions,
}

/// An alias move that another system runs: a CodeDeploy deployment that CloudFormation started
/// for an alias under `CodeDeployLambdaAliasUpdate` (AWS regions, templates sent with their
/// `Transform`).
#[derive(Debug, Clone)]
pub struct FollowedDeployment {
    pub region: String,
    pub stack_name: String,
    /// The other system's id (CodeDeploy's `d-...`): the deployment's id in Meridian's record too.
    pub id: String,
    pub function: String,
    pub alias: String,
    pub from_version: String,
    pub to_version: String,
    /// How it moves traffic (`CodeDeployDefault.LambdaCanary10Percent5Minutes`).
    pub config_name: String,
    pub options: DeliveryOptions,
}

/// The running deployment, as the system that runs it shows it.
pub trait DeploymentHandle: Send + Sync {
    /// One look: status, traffic on the new version, hook results.
    fn look(&self) -> Result<meridian_delivery::follow::Look, RegionError>;
    /// Stops it; the system puts the alias back on the old version.
    fn stop(&self, reason: &str) -> Result<(), RegionError>;
    /// `Some(why)` once the operation that started it is over: the follower stops looking after
    /// one last look.
    fn ended(&self) -> Option<String> {
        None
    }
}

/// Shifts an alias's traffic under a deployment group's settings (the progressive-delivery
/// engine, [`crate::delivery`]). `Err` means the deployment failed and the alias is back on
/// `from_version`.
pub trait AliasShifter: Send + Sync {
    fn shift(&self, d: &AliasDeployment, log: &dyn Fn(&str)) -> Result<(), String>;
    /// Follows a move another system runs until it ends: records it like a shift of its own,
    /// judges the new version when the options ask for it, and stops it on a failing verdict or
    /// an operator's `abort`. `Err` says why the new version is not what the alias serves.
    fn follow(&self, d: &FollowedDeployment, handle: &dyn DeploymentHandle, log: &dyn Fn(&str)) -> Result<(), String>;
}

/// A function's alias and the version it serves, as the release ledger records it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LiveFunction {
    pub function: String,
    pub alias: String,
    pub version: String,
}

/// A stack as `describe-stacks` shows it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct StackInfo {
    pub stack_name: String,
    pub stack_id: String,
    pub region: String,
    pub stack_status: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stack_status_reason: Option<String>,
    /// Parameter values, NoEcho ones as `****`.
    pub parameters: BTreeMap<String, String>,
    pub outputs: BTreeMap<String, String>,
    /// The stack's tags (the last operation that gave some).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub tags: BTreeMap<String, String>,
    pub creation_time: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_updated_time: Option<String>,
}

/// The outcome of a stack operation that ran.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum StackOutcome {
    /// The change was applied; the stack is in a *_COMPLETE state.
    Applied(StackInfo),
    /// The template and parameters match what is deployed: "No updates are to be performed."
    NoChanges(StackInfo),
}

impl StackOutcome {
    pub fn stack(&self) -> &StackInfo {
        match self {
            StackOutcome::Applied(s) | StackOutcome::NoChanges(s) => s,
        }
    }
}

/// What a running stack operation reports to: its progress lines (stack events), and the
/// engine's delivery driver, which performs the alias moves the change implies (an alias under
/// `CodeDeployLambdaAliasUpdate`: shift, bake, judge, roll back) through the region's
/// [`crate::FunctionControl`]. Without a driver the deployer moves aliases its own way.
#[derive(Clone)]
pub struct Progress {
    pub say: Say,
    pub shifter: Option<std::sync::Arc<dyn AliasShifter>>,
    /// The pipeline's delivery settings, for moves the operation does not carry in a
    /// [`StackRequest`] (a change set executed, whose CodeDeploy deployments are followed).
    pub delivery: DeliveryOptions,
}

impl Progress {
    /// Progress lines only.
    pub fn say(say: Say) -> Progress {
        Progress {
            say,
            shifter: None,
            delivery: DeliveryOptions::default(),
        }
    }
}

/// Stack operations of one kind of region, as CloudFormation's API offers them. Errors carry
/// AWS's text where AWS has one, and say whether trying again can help ([`RegionError::kind`]).
/// Progress lines (stack events, traffic shifting) go to `log` as they happen.
pub trait StackDeployer: Send + Sync {
    fn describe_stack<'a>(
        &'a self,
        region: &'a str,
        stack: &'a str,
    ) -> BoxFuture<'a, Result<Option<StackInfo>, RegionError>>;
    /// Creates or updates the stack now (CloudFormation's CreateStack/UpdateStack) and waits
    /// until it is stable.
    fn deploy<'a>(
        &'a self,
        req: &'a StackRequest,
        progress: Progress,
    ) -> BoxFuture<'a, Result<StackOutcome, RegionError>>;
    /// Creates a change set (replacing one of the same name); returns its description as text lines.
    fn create_change_set<'a>(
        &'a self,
        req: &'a StackRequest,
        log: Say,
    ) -> BoxFuture<'a, Result<Vec<String>, RegionError>>;
    fn execute_change_set<'a>(
        &'a self,
        region: &'a str,
        stack: &'a str,
        change_set: &'a str,
        progress: Progress,
    ) -> BoxFuture<'a, Result<StackOutcome, RegionError>>;
    fn delete_stack<'a>(&'a self, region: &'a str, stack: &'a str, log: Say) -> BoxFuture<'a, Result<(), RegionError>>;
    /// The stack's aliases and the versions they serve (for the release ledger).
    fn live_functions<'a>(
        &'a self,
        _region: &'a str,
        _stack: &'a str,
    ) -> BoxFuture<'a, Result<Vec<LiveFunction>, RegionError>> {
        Box::pin(async { Ok(Vec::new()) })
    }
}
