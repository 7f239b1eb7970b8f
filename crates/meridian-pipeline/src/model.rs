//! The pipeline model: CodePipeline's (V1 and V2), plus the Meridian extensions that the native
//! format carries (build projects, waves, deployment windows).
//!
//! All three formats produce this model. Its serde form is CodePipeline's API JSON (camelCase, as
//! `aws codepipeline get-pipeline` prints it), with the extensions under a `meridian` key, so a
//! printed model reads back into the same model.

use crate::source::Span;
use serde::Serialize;
use std::collections::BTreeMap;

/// Where the parts of a model element were written. Ignored by equality (`==` compares what a
/// definition means, not where it was written) and by serialization.
#[derive(Clone, Debug, Default)]
pub struct Loc {
    /// The whole element.
    pub node: Option<Span>,
    /// Field spans by path relative to the element: `name`, `region`, `configuration.StackName`,
    /// `inputArtifacts.0`, ...
    pub fields: Vec<(String, Span)>,
}

impl Loc {
    pub fn at(&self, path: &str) -> Option<Span> {
        self.fields
            .iter()
            .find(|(p, _)| p == path)
            .map(|(_, s)| *s)
            .or(self.node)
    }
    pub fn exact(&self, path: &str) -> Option<Span> {
        self.fields.iter().find(|(p, _)| p == path).map(|(_, s)| *s)
    }
    pub fn set(&mut self, path: impl Into<String>, span: Span) {
        self.fields.push((path.into(), span));
    }
}

impl PartialEq for Loc {
    fn eq(&self, _: &Self) -> bool {
        true
    }
}

/// Which of the three formats a pipeline was read from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Default)]
#[serde(rename_all = "kebab-case")]
pub enum SourceFormat {
    #[default]
    CodepipelineJson,
    Cloudformation,
    Native,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Default)]
pub enum PipelineType {
    #[default]
    V1,
    V2,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Default)]
#[serde(rename_all = "UPPERCASE")]
pub enum ExecutionMode {
    Queued,
    #[default]
    Superseded,
    Parallel,
}

impl ExecutionMode {
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "QUEUED" => Some(Self::Queued),
            "SUPERSEDED" => Some(Self::Superseded),
            "PARALLEL" => Some(Self::Parallel),
            _ => None,
        }
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct Pipeline {
    pub name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub role_arn: Option<String>,
    /// The V1 single-region store. A pipeline has this or `artifact_stores`, never both.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub artifact_store: Option<ArtifactStore>,
    /// One store per region, keyed by region name.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub artifact_stores: BTreeMap<String, ArtifactStore>,
    pub stages: Vec<Stage>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub version: Option<u64>,
    pub execution_mode: ExecutionMode,
    pub pipeline_type: PipelineType,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub variables: Vec<Variable>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub triggers: Vec<Trigger>,
    #[serde(skip_serializing_if = "Extensions::is_empty")]
    pub meridian: Extensions,
    #[serde(skip)]
    pub format: SourceFormat,
    /// The region the pipeline lives in: `AWS::Region` of its template, where its actions without
    /// a `region` run and where its single `artifactStore` is. Set by the loader: `--region`, else
    /// what the definition says (the native format's home, the region all its actions name, a
    /// get-pipeline dump's `metadata.pipelineArn`), else `AWS_REGION`/`AWS_DEFAULT_REGION`, else
    /// us-east-1. Not part of the printed model (CodePipeline's JSON has no such field).
    #[serde(skip)]
    pub home_region: String,
    #[serde(skip)]
    pub loc: Loc,
}

impl Pipeline {
    /// Every action with its stage, in pipeline order.
    pub fn actions(&self) -> impl Iterator<Item = (&Stage, &Action)> {
        self.stages.iter().flat_map(|s| s.actions.iter().map(move |a| (s, a)))
    }

    /// The regions the pipeline has artifact stores in (the single store counts as no region).
    pub fn regions(&self) -> Vec<&str> {
        let mut r: Vec<&str> = self.artifact_stores.keys().map(String::as_str).collect();
        for (_, a) in self.actions() {
            if let Some(region) = &a.region {
                if !r.contains(&region.as_str()) {
                    r.push(region);
                }
            }
        }
        r
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct ArtifactStore {
    #[serde(rename = "type")]
    pub store_type: String,
    pub location: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub encryption_key: Option<EncryptionKey>,
    #[serde(skip)]
    pub loc: Loc,
}

#[derive(Clone, Debug, PartialEq, Serialize, Default)]
pub struct EncryptionKey {
    pub id: String,
    #[serde(rename = "type")]
    pub key_type: String,
}

#[derive(Clone, Debug, PartialEq, Serialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct Variable {
    pub name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub default_value: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    #[serde(skip)]
    pub loc: Loc,
}

#[derive(Clone, Debug, PartialEq, Serialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct Trigger {
    pub provider_type: String,
    pub git_configuration: GitConfiguration,
    #[serde(skip)]
    pub loc: Loc,
}

#[derive(Clone, Debug, PartialEq, Serialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct GitConfiguration {
    pub source_action_name: String,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub push: Vec<GitFilter>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub pull_request: Vec<GitFilter>,
}

/// A push or pull-request filter: the event matches when every given filter matches.
#[derive(Clone, Debug, PartialEq, Serialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct GitFilter {
    /// Pull-request events (OPEN, UPDATED, CLOSED); empty for push filters.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub events: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub branches: Option<IncludeExclude>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tags: Option<IncludeExclude>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub file_paths: Option<IncludeExclude>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Default)]
pub struct IncludeExclude {
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub includes: Vec<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub excludes: Vec<String>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct Stage {
    pub name: String,
    pub actions: Vec<Action>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub on_failure: Option<StageConditions>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub on_success: Option<StageConditions>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub before_entry: Option<StageConditions>,
    #[serde(skip)]
    pub loc: Loc,
}

/// `onFailure`, `onSuccess` and `beforeEntry`. `result` and `retryConfiguration` only apply to
/// `onFailure`.
#[derive(Clone, Debug, PartialEq, Serialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct StageConditions {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub result: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub retry_configuration: Option<RetryConfiguration>,
    /// Conditions with their rules, kept as written (rules are evaluated by the engine).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<serde_json::Value>,
    #[serde(skip)]
    pub loc: Loc,
}

#[derive(Clone, Debug, PartialEq, Serialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct RetryConfiguration {
    pub retry_mode: String,
}

#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct ActionTypeId {
    pub category: String,
    pub owner: String,
    pub provider: String,
    pub version: String,
}

#[derive(Clone, Debug, PartialEq, Serialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct Action {
    pub name: String,
    pub action_type_id: ActionTypeId,
    pub run_order: i64,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub configuration: BTreeMap<String, String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub commands: Vec<String>,
    pub output_artifacts: Vec<ArtifactRef>,
    pub input_artifacts: Vec<ArtifactRef>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub output_variables: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub role_arn: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub region: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub timeout_in_minutes: Option<i64>,
    #[serde(skip)]
    pub loc: Loc,
}

impl Action {
    pub fn provider(&self) -> &str {
        &self.action_type_id.provider
    }
    pub fn category(&self) -> &str {
        &self.action_type_id.category
    }
    pub fn config(&self, key: &str) -> Option<&str> {
        self.configuration.get(key).map(String::as_str)
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Default)]
pub struct ArtifactRef {
    pub name: String,
}

/// What Meridian keeps beside CodePipeline's model.
#[derive(Clone, Debug, PartialEq, Serialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct Extensions {
    /// CodeBuild projects by name: from the native format's `build`, or the
    /// `AWS::CodeBuild::Project` resources of the same CloudFormation template.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub build_projects: BTreeMap<String, BuildProject>,
    /// The native format's delivery plan: waves, deployment windows, traffic shifting.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub delivery: Option<Delivery>,
    /// Values that only AWS could know (a role ARN from `!GetAtt`, an `!ImportValue`), shown as
    /// placeholders in the model; listed here with where they stand.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub placeholders: Vec<String>,
    /// The backend each region is reached through (`local`, `aws`), where the definition says.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub backends: BTreeMap<String, String>,
    /// The backend of every other region (`local` when unsaid).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub default_backend: Option<String>,
    /// The IAM role assumed to reach each AWS region (cross-account deploys), by region; `*`: every
    /// AWS region without its own.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub roles: BTreeMap<String, String>,
    /// Where CodeBuild actions run: `local` (this machine, the default) or `codebuild` (the
    /// action region's AWS CodeBuild, with the project of the same name).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub builds: Option<String>,
}

/// Where CodeBuild actions can run.
pub const BUILD_RUNNERS: &[&str] = &["local", "codebuild"];

/// The region backends Meridian has: simulated regions on this machine, and AWS.
pub const BACKENDS: &[&str] = &["local", "aws"];

impl Extensions {
    pub fn is_empty(&self) -> bool {
        self.build_projects.is_empty()
            && self.delivery.is_none()
            && self.placeholders.is_empty()
            && self.backends.is_empty()
            && self.default_backend.is_none()
            && self.roles.is_empty()
            && self.builds.is_none()
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct BuildProject {
    /// A path to a buildspec file (relative to the primary source), or inline buildspec YAML.
    pub buildspec: BuildSpecSource,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub environment_variables: Vec<EnvironmentVariable>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub image: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub timeout_in_minutes: Option<i64>,
    #[serde(skip)]
    pub loc: Loc,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum BuildSpecSource {
    /// The default: `buildspec.yml` at the root of the primary source.
    Path(String),
    Inline(String),
}

impl Default for BuildSpecSource {
    fn default() -> Self {
        BuildSpecSource::Path("buildspec.yml".into())
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Default)]
pub struct EnvironmentVariable {
    pub name: String,
    pub value: String,
    /// PLAINTEXT, PARAMETER_STORE or SECRETS_MANAGER.
    #[serde(rename = "type")]
    pub var_type: String,
}

#[derive(Clone, Debug, PartialEq, Serialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct Delivery {
    pub home_region: String,
    pub waves: Vec<Wave>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub deployment_preference: Option<String>,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub windows: BTreeMap<String, DeploymentWindow>,
    /// Regions deploying at once at most, across a wave (None: all of the wave's regions).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_parallel_regions: Option<i64>,
    /// Synthetic traffic sent to each region's aliases while they shift.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub traffic: Option<TrafficSettings>,
    /// The canary judge, when on.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub judge: Option<JudgeSettings>,
    /// Roll back `region` (the failed one, default) or every region of the `execution`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rollback: Option<String>,
}

/// Synthetic traffic: invocations a second, and a file of payloads (one JSON document a line).
#[derive(Clone, Debug, PartialEq, Serialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct TrafficSettings {
    pub rate: f64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub payloads: Option<String>,
    /// `METHOD /path` of the API in front of the alias: traffic goes through it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub route: Option<String>,
}

/// Tolerances of the canary judge; unset ones take the judge's defaults.
#[derive(Clone, Debug, PartialEq, Serialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct JudgeSettings {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub min_invocations: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_error_rate_increase: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_p99_ratio: Option<f64>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct Wave {
    pub name: String,
    pub regions: Vec<String>,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub approval: bool,
}

/// When a region may be deployed: in its own time zone, on some days, between two times.
#[derive(Clone, Debug, PartialEq, Serialize, serde::Deserialize, Default)]
#[serde(rename_all = "camelCase", default)]
pub struct DeploymentWindow {
    /// IANA time zone name, such as `Europe/Dublin`.
    pub timezone: String,
    /// `HH:MM-HH:MM`; a range that ends before it starts crosses midnight.
    pub hours: String,
    /// Lowercase three-letter day names (`mon` ... `sun`); empty means every day.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub days: Vec<String>,
    /// Dates (`YYYY-MM-DD`, in the window's time zone) on which nothing is deployed.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub freeze: Vec<String>,
}
