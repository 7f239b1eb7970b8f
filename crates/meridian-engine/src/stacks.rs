//! What a region must offer to deploy CloudFormation stacks: the trait the CloudFormation action
//! uses, implemented by the local region (meridian-local) and later by AWS.

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

/// Stack operations of one kind of region. Calls block; the engine runs them off its runtime.
/// Errors are the message a user sees (AWS's text where AWS has one).
pub trait StackDeployer: Send + Sync {
    fn describe_stack(&self, region: &str, stack: &str) -> Result<Option<StackInfo>, String>;
    /// Creates or updates the stack now (CloudFormation's CreateStack/UpdateStack).
    fn deploy(&self, req: &StackRequest, log: &dyn Fn(&str)) -> Result<StackOutcome, String>;
    /// Creates a change set (replacing one of the same name); returns its description as text lines.
    fn create_change_set(&self, req: &StackRequest, log: &dyn Fn(&str)) -> Result<Vec<String>, String>;
    fn execute_change_set(
        &self,
        region: &str,
        stack: &str,
        change_set: &str,
        log: &dyn Fn(&str),
    ) -> Result<StackOutcome, String>;
    fn delete_stack(&self, region: &str, stack: &str, log: &dyn Fn(&str)) -> Result<(), String>;
}
