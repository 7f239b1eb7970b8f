//! Action providers: what an action does, behind one trait, so that local implementations and the
//! AWS ones (next) plug into the engine without changing it.

pub mod approval;
pub mod cloudformation;
pub mod codebuild;
pub mod commands;
pub mod ecs;
pub mod package;
pub mod shell;
pub mod source;

use crate::journal::Journal;
use futures::future::BoxFuture;
use meridian_pipeline::model::Action;
use std::collections::{BTreeMap, HashMap};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

/// Each region's bucket name (its store's location in the pipeline) and artifact store.
pub type RegionStores = BTreeMap<String, (String, Arc<dyn crate::artifacts::ArtifactStore>)>;

/// Where live log lines go (`--verbose`).
pub type Echo = Arc<dyn Fn(&str) + Send + Sync>;

/// An action's log: a file under the execution's directory, optionally echoed live.
#[derive(Clone)]
pub struct Log {
    file: Arc<Mutex<std::fs::File>>,
    echo: Option<Echo>,
    masks: Arc<Vec<String>>,
}

impl Log {
    pub fn create(path: &Path, echo: Option<Echo>) -> std::io::Result<Log> {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)?;
        }
        let file = std::fs::OpenOptions::new().create(true).append(true).open(path)?;
        Ok(Log {
            file: Arc::new(Mutex::new(file)),
            echo,
            masks: Arc::new(Vec::new()),
        })
    }

    /// A log that replaces these values with `***` in every line.
    pub fn masking(&self, secrets: Vec<String>) -> Log {
        Log {
            masks: Arc::new(secrets.into_iter().filter(|s| !s.is_empty()).collect()),
            ..self.clone()
        }
    }

    pub fn line(&self, text: &str) {
        let mut text = text.to_string();
        for m in self.masks.iter() {
            text = text.replace(m.as_str(), "***");
        }
        if let Ok(mut f) = self.file.lock() {
            let _ = writeln!(f, "{text}");
        }
        if let Some(echo) = &self.echo {
            echo(&text);
        }
    }
}

/// Everything an action needs to run.
#[derive(Clone)]
pub struct ActionContext {
    pub execution_id: String,
    pub pipeline: String,
    pub stage: String,
    pub stage_idx: usize,
    /// The action with its configuration resolved (variables substituted).
    pub action: Action,
    pub attempt: i64,
    pub region: String,
    /// A fresh directory for this attempt.
    pub work_dir: PathBuf,
    /// Input artifacts, unpacked, in the action's order.
    pub inputs: Vec<(String, PathBuf)>,
    /// Empty directories, one per output artifact, for the provider to fill.
    pub outputs: Vec<(String, PathBuf)>,
    pub log: Log,
    /// Becomes true when the action must stop now (abandon, timeout): kill what it runs.
    pub cancel: tokio::sync::watch::Receiver<bool>,
    pub journal: Arc<Journal>,
    pub env: Arc<RunEnv>,
    /// The pipeline's CodeBuild projects (native `build`, or the template's AWS::CodeBuild::Project).
    pub projects: Arc<BTreeMap<String, meridian_pipeline::model::BuildProject>>,
    /// CodeBuild actions run on the region's AWS CodeBuild (`builds: codebuild`), not here.
    pub remote_builds: bool,
    /// Every region's artifact store, and the bucket name (store location) the pipeline gives it.
    pub stores: Arc<RegionStores>,
    /// The backend of every region (stacks, functions).
    pub regions: Arc<meridian_region::Regions>,
    /// How often the engine's delivery driver looks at a shifting alias (its clock's time).
    pub delivery_tick: std::time::Duration,
}

impl ActionContext {
    /// The engine's delivery driver for a region, on the engine's clock.
    /// Deployments of the region's backend that a process which has ended left mixed are put
    /// back first (an AWS alias left at 10% by a killed run), and said in the action's log.
    pub fn delivery_driver(&self, region: &str) -> Result<Arc<dyn crate::stacks::AliasShifter>, String> {
        let backend = self.regions.get(region).map_err(|e| e.to_string())?;
        match crate::delivery::recover_for(backend, &self.env.data_dir, self.journal.clock()) {
            Ok(lines) => lines.iter().for_each(|l| self.log.line(l)),
            Err(e) => self.log.line(&format!(
                "deployments a killed process left could not be put back yet: {e}"
            )),
        }
        crate::delivery::driver_for(backend, &self.env.data_dir, self.journal.clock(), self.delivery_tick)
    }
}

/// What an execution was started with, kept in the journal so that a recovered execution runs
/// with the same inputs.
#[derive(Debug, Clone, Default, serde::Serialize, serde::Deserialize)]
pub struct RunEnv {
    pub data_dir: PathBuf,
    /// Where the definition file was (relative paths in it start there).
    pub base_dir: Option<PathBuf>,
    /// `--repo ID=PATH`: repositories for GitHub/CodeStar/CodeCommit source actions.
    pub repos: BTreeMap<String, PathBuf>,
    /// Pipeline variables, defaults overridden by `--var`.
    pub variables: BTreeMap<String, String>,
    pub home_region: String,
    /// Where local artifact stores live (`--artifact-root`); by default the data directory.
    #[serde(default)]
    pub artifact_root: Option<PathBuf>,
    /// Local deployments run this many times faster (timeouts and waits are divided by it).
    pub time_scale: f64,
    /// Keep the artifacts of this many executions per pipeline.
    pub retain: usize,
    /// Progressive delivery for every CloudFormation action (native `deploy:`): preference,
    /// synthetic traffic, judge. `time_scale`, pipeline and execution are filled per action.
    #[serde(default)]
    pub delivery: crate::stacks::DeliveryOptions,
    /// When a region fails, roll back every region this execution deployed (not only the failed one).
    #[serde(default)]
    pub rollback_all_regions: bool,
    /// Deployment windows by region: a deploy waits for its region's window to open.
    #[serde(default)]
    pub windows: BTreeMap<String, meridian_pipeline::model::DeploymentWindow>,
    /// `--skip-windows`: deploy now, whatever the windows say (recorded in the journal).
    #[serde(default)]
    pub skip_windows: bool,
    /// Regions deploying at once at most (native `max-parallel-regions`).
    #[serde(default)]
    pub max_parallel_regions: Option<usize>,
}

impl RunEnv {
    pub fn scaled(&self, d: std::time::Duration) -> std::time::Duration {
        if self.time_scale > 0.0 {
            d.div_f64(self.time_scale)
        } else {
            d
        }
    }
}

#[derive(Debug, Default)]
pub struct ActionOutput {
    pub variables: serde_json::Map<String, serde_json::Value>,
}

pub trait ActionProvider: Send + Sync {
    /// Whether the action deploys to its region: the execution's deploy policy (windows,
    /// `max-parallel-regions`, the rollback policy, [`crate::policy`]) applies to it.
    fn deploys(&self, _action: &Action) -> bool {
        false
    }
    /// Whether running the action again after an interruption cannot do harm. Recovery resumes
    /// such actions and marks the others failed.
    fn safe_to_repeat(&self, action: &Action) -> bool;
    /// Runs the action. An `Err` is the failure message shown to the user.
    fn run<'a>(&'a self, ctx: &'a ActionContext) -> BoxFuture<'a, Result<ActionOutput, String>>;
}

/// Providers by (owner, provider).
#[derive(Clone, Default)]
pub struct Registry {
    map: HashMap<(String, String), Arc<dyn ActionProvider>>,
}

impl Registry {
    pub fn register(&mut self, owner: &str, provider: &str, p: Arc<dyn ActionProvider>) {
        self.map.insert((owner.to_string(), provider.to_string()), p);
    }

    pub fn get(&self, action: &Action) -> Option<Arc<dyn ActionProvider>> {
        let t = &action.action_type_id;
        self.map.get(&(t.owner.clone(), t.provider.clone())).cloned()
    }

    /// The providers local regions have.
    pub fn local() -> Registry {
        let mut r = Registry::default();
        let source: Arc<dyn ActionProvider> = Arc::new(source::GitSource);
        for (owner, name) in [
            ("AWS", "CodeCommit"),
            ("ThirdParty", "GitHub"),
            ("AWS", "CodeStarSourceConnection"),
            ("Meridian", "LocalGit"),
        ] {
            r.register(owner, name, source.clone());
        }
        r.register("AWS", "Commands", Arc::new(commands::Commands));
        r.register("AWS", "Manual", Arc::new(approval::ManualApproval));
        r.register("AWS", "CodeBuild", Arc::new(codebuild::CodeBuild));
        r.register("Meridian", "Package", Arc::new(package::Package));
        // Deploys through the action region's backend (`ActionContext::regions`).
        r.register("AWS", "CloudFormation", Arc::new(cloudformation::CloudFormation));
        r.register("AWS", "ECS", Arc::new(ecs::Ecs));
        r
    }
}
