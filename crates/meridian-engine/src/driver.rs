//! The driver: performs what the journal records. It runs stages one after another, the actions
//! of a stage grouped by run order (a group's actions at once, in every region), replicates input
//! artifacts to each action's region first, applies execution modes across processes through the
//! journal, and recovers executions whose process died.

use crate::artifacts::{self, ArtifactStore};
use crate::journal::{ArtifactRow, ExecutionRow, Journal, JournalError, NewAction, StageEntry};
use crate::machine::{self, ActionView, ExecutionView, OnFailure, StageView, Step};
use crate::providers::{ActionContext, Log, Registry, RunEnv};
use crate::state::{ActionEvent, ActionStatus, ExecutionEvent, ExecutionStatus};
use crate::variables::{self, Namespaces};
use meridian_pipeline::model::{Action, ExecutionMode, Pipeline, Stage};
use meridian_region::artifacts::StoreLocation;
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    #[error(transparent)]
    Journal(#[from] JournalError),
    #[error(transparent)]
    Artifact(#[from] artifacts::ArtifactError),
    #[error("{0}")]
    Invalid(String),
}

pub type Result<T> = std::result::Result<T, EngineError>;

/// Called with an execution id when a process finds an execution whose owner died: the CLI starts
/// a `meridian resume` for it.
pub type OrphanHook = Arc<dyn Fn(&str) + Send + Sync>;

pub struct Engine {
    pub data_dir: PathBuf,
    pub journal: Arc<Journal>,
    pub registry: Registry,
    /// Builds each execution's map of region backends from what its pipeline asks for: provided
    /// by the program that opens the engine; the engine names no implementation.
    pub wiring: Arc<dyn meridian_region::Wiring>,
    /// The region backends of the executions this process drives.
    active: std::sync::Mutex<std::collections::HashMap<String, Arc<meridian_region::Regions>>>,
    /// `max-parallel-regions` of the executions this process drives.
    slots: crate::policy::Slots,
    /// How often (engine clock time) the delivery driver looks at a shifting alias.
    pub delivery_tick: Duration,
    /// Live log lines (`--verbose`): action name and line.
    pub echo: Option<crate::providers::Echo>,
    pub on_orphan: Option<OrphanHook>,
}

/// Default action timeouts (minutes), as CodePipeline's.
fn default_timeout_minutes(a: &Action) -> i64 {
    match a.category() {
        "Approval" => 7 * 24 * 60,
        _ => 60,
    }
}

/// The pipeline's own region: where actions without `region` run and the single store lives.
pub fn home_region(p: &Pipeline, requested: Option<&str>) -> String {
    if let Some(r) = requested {
        return r.to_string();
    }
    if let Some(d) = &p.meridian.delivery {
        if !d.home_region.is_empty() {
            return d.home_region.clone();
        }
    }
    if p.artifact_stores.is_empty() || p.artifact_stores.contains_key("us-east-1") {
        return "us-east-1".into();
    }
    p.artifact_stores
        .keys()
        .next()
        .cloned()
        .unwrap_or_else(|| "us-east-1".into())
}

/// A user-written name (stage, action, artifact, bucket) as one path component: `..` and `a/b`
/// never leave the directory they are joined to, and two different names never share one.
fn sanitize(s: &str) -> String {
    meridian_core::path::safe_component(s)
}

/// The directory of an action's attempts (work directories and logs): one component per name
/// under `executions/`, whatever the names (`..` is a valid stage or action name on AWS).
fn attempt_dir(data_dir: &Path, execution: &str, stage: &str, action: &str) -> PathBuf {
    data_dir
        .join("executions")
        .join(sanitize(execution))
        .join(sanitize(stage))
        .join(sanitize(action))
}

/// What the pipeline asks for: `backend:` of the native format's regions, or the `x-meridian` /
/// `Metadata: Meridian` extension of the CodePipeline forms.
pub fn backend_choice(p: &Pipeline) -> meridian_region::BackendChoice {
    meridian_region::BackendChoice {
        default: p.meridian.default_backend.clone(),
        by_region: p.meridian.backends.clone(),
        roles: p.meridian.roles.clone(),
    }
}

/// Every region's artifact store, opened by the region's backend from the pipeline's declaration.
pub fn region_stores(
    regions: &meridian_region::Regions,
    p: &Pipeline,
    env: &RunEnv,
) -> Result<BTreeMap<String, Arc<dyn ArtifactStore>>> {
    let mut out: BTreeMap<String, Arc<dyn ArtifactStore>> = BTreeMap::new();
    let open = |region: &str, s: &meridian_pipeline::model::ArtifactStore| -> Result<Arc<dyn ArtifactStore>> {
        let location = StoreLocation {
            store_type: s.store_type.clone(),
            location: s.location.clone(),
            root: Some(env.artifact_root.clone().unwrap_or_else(|| env.data_dir.clone())),
        };
        let backend = regions.get(region).map_err(|e| EngineError::Invalid(e.to_string()))?;
        Ok(backend.artifacts.open(region, &location)?)
    };
    for (region, s) in &p.artifact_stores {
        out.insert(region.clone(), open(region, s)?);
    }
    if let Some(s) = &p.artifact_store {
        out.insert(env.home_region.clone(), open(&env.home_region, s)?);
    }
    Ok(out)
}

fn new_id() -> String {
    let mut b = [0u8; 16];
    meridian_core::random::fill(&mut b);
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    let h = hex::encode(b);
    format!(
        "{}-{}-{}-{}-{}",
        &h[0..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..32]
    )
}

/// The stored form of an execution's definition and run environment.
#[derive(serde::Serialize, serde::Deserialize)]
struct Stored {
    env: RunEnv,
    /// Only this stage runs (a ROLLBACK execution).
    only_stage: Option<usize>,
}

/// Waits until `clock` reaches `deadline_ms`. The clock is looked at again at least every
/// second, so a clock that jumps (a manual one in a test, or a replay) is followed within that;
/// on the system clock this sleeps on the runtime's timer in between.
pub async fn until(clock: Arc<dyn meridian_core::Clock>, deadline_ms: i64) {
    loop {
        let now = clock.now_millis();
        if now >= deadline_ms {
            return;
        }
        let left = (deadline_ms - now) as u64;
        tokio::time::sleep(Duration::from_millis(left.clamp(1, 1000))).await;
    }
}

/// How an action's run ended.
enum End {
    Done(std::result::Result<crate::providers::ActionOutput, String>),
    TimedOut,
    Abandoned,
}

/// One attempt's work directory and log.
struct Attempt {
    work: PathBuf,
    log_path: PathBuf,
    log: Log,
}

/// The action with `#{namespace.variable}` references in its configuration and commands
/// resolved from the outputs of the actions that ran before it.
fn resolve_action(a: &Action, ns: &Namespaces) -> std::result::Result<Action, String> {
    let mut resolved = a.clone();
    for v in resolved.configuration.values_mut() {
        *v = variables::resolve(v, ns)?;
    }
    for c in resolved.commands.iter_mut() {
        *c = variables::resolve(c, ns)?;
    }
    Ok(resolved)
}

/// One input artifact in `region`'s store (replicated there from where it was produced, digest
/// verified), unpacked under `work/inputs/`.
async fn fetch_input(
    name: &str,
    art: &ArtifactRow,
    region: &str,
    store: &Arc<dyn ArtifactStore>,
    stores: &BTreeMap<String, Arc<dyn ArtifactStore>>,
    work: &Path,
    log: &Log,
) -> std::result::Result<PathBuf, String> {
    let digest: meridian_core::Digest = art
        .digest
        .parse()
        .map_err(|e| format!("the journal's digest of {name} is unreadable: {e}"))?;
    if art.region != region {
        let Some(src) = stores.get(&art.region) else {
            return Err(format!(
                "artifact {name} is in region {}, which has no artifact store",
                art.region
            ));
        };
        match store.replicate_from(src.as_ref(), &digest).await {
            Ok(0) => log.line(&format!("artifact {name} ({digest}) is already in the {region} store")),
            Ok(n) => log.line(&format!(
                "replicated artifact {name} ({n} bytes) from {} to {region}, digest verified",
                art.region
            )),
            Err(e) => return Err(format!("failed to replicate artifact {name} to {region}: {e}")),
        }
    }
    let zip = work.join(format!("{}.zip", sanitize(name)));
    let dir = work.join("inputs").join(sanitize(name));
    store
        .get_to_file(&digest, &zip)
        .await
        .map_err(|e| format!("failed to fetch artifact {name}: {e}"))?;
    let (z, d) = (zip.clone(), dir.clone());
    match tokio::task::spawn_blocking(move || artifacts::unpack(&z, &d)).await {
        Ok(Ok(())) => {}
        Ok(Err(e)) => return Err(e.to_string()),
        Err(e) => return Err(format!("unpacking failed: {e}")),
    }
    let _ = std::fs::remove_file(&zip);
    Ok(dir)
}

/// Packs each output directory into a zip and puts it in the region's store: the journal rows
/// that record them.
async fn store_outputs(
    outputs: &[(String, PathBuf)],
    work: &Path,
    store: &Arc<dyn ArtifactStore>,
    region: &str,
    log: &Log,
) -> std::result::Result<Vec<ArtifactRow>, String> {
    let mut rows = Vec::new();
    for (name, dir) in outputs {
        let zip = work.join(format!("{}.out.zip", sanitize(name)));
        let (d, z) = (dir.clone(), zip.clone());
        let packed = tokio::task::spawn_blocking(move || artifacts::pack_dir(&d, &z)).await;
        let stored = match packed {
            Ok(Ok(())) => store.put_file(&zip).await.map_err(|e| e.to_string()),
            Ok(Err(e)) => Err(e.to_string()),
            Err(e) => Err(e.to_string()),
        };
        let _ = std::fs::remove_file(&zip);
        let (digest, size) = stored.map_err(|e| format!("failed to store output artifact {name}: {e}"))?;
        log.line(&format!(
            "output artifact {name}: {digest} ({size} bytes) in the {region} store"
        ));
        rows.push(ArtifactRow {
            name: name.clone(),
            digest: digest.to_string(),
            size: size as i64,
            region: region.to_string(),
        });
    }
    Ok(rows)
}

impl Engine {
    pub fn open(data_dir: &Path) -> Result<Engine> {
        Self::open_with_clock(data_dir, Arc::new(meridian_core::SystemClock))
    }

    /// An engine whose journal, ledger and deployment windows read time from `clock`.
    pub fn open_with_clock(data_dir: &Path, clock: Arc<dyn meridian_core::Clock>) -> Result<Engine> {
        Ok(Engine {
            data_dir: data_dir.to_path_buf(),
            journal: Arc::new(Journal::open(data_dir)?.with_clock(clock)),
            registry: Registry::local(),
            wiring: Arc::new(meridian_region::Regions::default()),
            active: Default::default(),
            slots: Default::default(),
            delivery_tick: Duration::from_millis(100),
            echo: None,
            on_orphan: None,
        })
    }

    /// Records a new execution (every stage and action `Pending`) and returns its id.
    pub fn start(&self, p: &Pipeline, env: RunEnv, trigger: &str) -> Result<String> {
        self.start_with(p, env, trigger, None)
    }

    fn start_with(&self, p: &Pipeline, env: RunEnv, trigger: &str, only_stage: Option<usize>) -> Result<String> {
        let id = new_id();
        let definition = serde_json::json!({ "pipeline": p }).to_string();
        let context = serde_json::to_string(&Stored {
            env: env.clone(),
            only_stage,
        })
        .unwrap_or_default();
        let stages: Vec<String> = p.stages.iter().map(|s| s.name.clone()).collect();
        let regions: Vec<String> = p
            .stages
            .iter()
            .flat_map(|s| s.actions.iter())
            .map(|a| a.region.clone().unwrap_or_else(|| env.home_region.clone()))
            .collect();
        let mut actions = Vec::new();
        let mut i = 0;
        for (si, s) in p.stages.iter().enumerate() {
            for a in &s.actions {
                actions.push(NewAction {
                    stage_idx: si,
                    name: &a.name,
                    region: &regions[i],
                    run_order: a.run_order,
                    provider: &a.action_type_id.provider,
                    namespace: a.namespace.as_deref(),
                });
                i += 1;
            }
        }
        let mode = match p.execution_mode {
            ExecutionMode::Queued => "QUEUED",
            ExecutionMode::Superseded => "SUPERSEDED",
            ExecutionMode::Parallel => "PARALLEL",
        };
        self.journal
            .create_execution(&id, &p.name, mode, &definition, &context, trigger, &stages, &actions)?;
        Ok(id)
    }

    fn load(&self, row: &ExecutionRow) -> Result<(Pipeline, Stored)> {
        let loaded = meridian_pipeline::load_str("journal", &row.definition, &Default::default());
        let p = loaded.pipelines.into_iter().next().ok_or_else(|| {
            EngineError::Invalid(format!(
                "the journal's copy of execution {}'s pipeline cannot be read",
                row.id
            ))
        })?;
        let stored: Stored = serde_json::from_str(&row.context)
            .map_err(|e| EngineError::Invalid(format!("the journal's run context of {} is unreadable: {e}", row.id)))?;
        Ok((p, stored))
    }

    /// Runs an action under the execution's deploy policy ([`crate::policy`]): a deploy waits for
    /// its region's window and a slot among `max-parallel-regions` first, and applies the
    /// rollback policy after.
    /// Runs the provider under the pipeline's deploy policy. `started` is set to the clock's time
    /// when the provider itself starts: waiting for a deployment window or a slot of
    /// `max-parallel-regions` is not part of the action's run, so its timeout counts from then.
    async fn run_with_policy(
        &self,
        provider: &dyn crate::providers::ActionProvider,
        ctx: &ActionContext,
        started: &std::sync::atomic::AtomicI64,
    ) -> std::result::Result<crate::providers::ActionOutput, String> {
        let start = || started.store(self.journal.now().max(1), std::sync::atomic::Ordering::SeqCst);
        if !provider.deploys(&ctx.action) {
            start();
            return provider.run(ctx).await;
        }
        crate::policy::wait_for_window(ctx).await?;
        let _slot = self.slots.take(ctx).await?;
        start();
        let r = provider.run(ctx).await;
        crate::policy::after_deploy(ctx, r.is_err()).await;
        r
    }

    /// The region backends of an execution this process drives.
    fn regions_of(&self, id: &str) -> Arc<meridian_region::Regions> {
        self.active
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(id)
            .cloned()
            .unwrap_or_default()
    }

    fn orphan(&self, id: &str) {
        if let Some(hook) = &self.on_orphan {
            hook(id);
        }
    }

    /// Runs an execution (new, resumed or retried) to its end.
    pub async fn drive(&self, id: &str) -> Result<ExecutionStatus> {
        let row = self.journal.execution(id)?;
        let (p, stored) = self.load(&row)?;
        let env = Arc::new(stored.env);
        // The regions' backends and artifact stores; an execution that cannot reach them fails
        // with the reason instead of staying in progress.
        let opened = self
            .wiring
            .regions(&backend_choice(&p))
            .map_err(|e| EngineError::Invalid(e.to_string()))
            .and_then(|r| {
                let stores = region_stores(&r, &p, &env)?;
                Ok((Arc::new(r), stores))
            });
        let (regions, stores) = match opened {
            Ok(x) => x,
            Err(e) => {
                let reason = format!("the pipeline's regions cannot be reached: {e}");
                let _ = self.journal.execution_event(id, ExecutionEvent::Fail, Some(&reason));
                return Err(e);
            }
        };
        self.active
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(id.to_string(), regions);

        // Stop with --abandon: a watcher flips every running action's cancel signal.
        let (abandon_tx, abandon_rx) = tokio::sync::watch::channel(false);
        let watcher = {
            let journal = self.journal.clone();
            let id = id.to_string();
            tokio::spawn(async move {
                loop {
                    if let Ok(r) = journal.execution(&id) {
                        if r.stop_mode.as_deref() == Some("abandon") {
                            let _ = abandon_tx.send(true);
                            return;
                        }
                        if r.status.is_terminal() {
                            return;
                        }
                    }
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            })
        };
        let result = self
            .drive_inner(&row, &p, &env, &stores, stored.only_stage, abandon_rx)
            .await;
        watcher.abort();
        self.active.lock().unwrap_or_else(|e| e.into_inner()).remove(id);
        let status = match result {
            Ok(s) => s,
            Err(e) => {
                // Never leave an execution in progress behind an internal error: record it.
                let reason = format!("Meridian could not continue the execution: {e}");
                let _ = self.journal.execution_event(id, ExecutionEvent::Fail, Some(&reason));
                return Err(e);
            }
        };
        if self.journal.executions(None)?.iter().all(|e| e.status.is_terminal()) {
            if let Err(e) = self.gc(&stores, env.retain).await {
                eprintln!("note: artifact garbage collection failed: {e}");
            }
        }
        Ok(status)
    }

    fn stop_mode(&self, id: &str) -> Result<Option<String>> {
        Ok(self.journal.execution(id)?.stop_mode)
    }

    async fn drive_inner(
        &self,
        row: &ExecutionRow,
        p: &Pipeline,
        env: &Arc<RunEnv>,
        stores: &BTreeMap<String, Arc<dyn ArtifactStore>>,
        only_stage: Option<usize>,
        abandon: tokio::sync::watch::Receiver<bool>,
    ) -> Result<ExecutionStatus> {
        let id = row.id.as_str();
        if row.mode == "QUEUED" {
            let mut said = None;
            while let Some(ahead) = self.journal.queued_ahead(&row.pipeline, row.seq)? {
                if said.as_deref() != Some(ahead.id.as_str()) {
                    self.journal
                        .set_waiting(id, Some(&format!("queued behind execution {}", ahead.id)))?;
                    said = Some(ahead.id.clone());
                }
                if !crate::journal::owner_alive(ahead.owner_pid, ahead.owner_start) {
                    self.orphan(&ahead.id);
                }
                if self.stop_mode(id)?.is_some() {
                    return Ok(self
                        .journal
                        .execution_event(id, ExecutionEvent::Stop, Some("stopped while queued"))?);
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            if said.is_some() {
                self.journal.set_waiting(id, None)?;
            }
        }
        // The machine decides, the driver performs: each step is recorded in the journal, and
        // the next one is decided from what the journal then holds.
        let mut auto_retried = BTreeSet::new();
        loop {
            let view = self.view(id, p, only_stage, &auto_retried)?;
            match machine::next_step(&view) {
                Step::EnterStage { stage: si } => {
                    let stage = &p.stages[si];
                    if row.mode == "SUPERSEDED" {
                        if let Some(ended) = self.enter_superseded(row, &stage.name).await? {
                            return Ok(ended);
                        }
                    }
                    self.journal
                        .stage_event(id, si, &stage.name, ActionStatus::InProgress)?;
                }
                Step::Run { stage: si, actions } => {
                    let stage = &p.stages[si];
                    let runs = stage
                        .actions
                        .iter()
                        .filter(|a| actions.contains(&a.name))
                        .map(|a| self.run_action(row, p, si, stage, a, env, stores, abandon.clone()));
                    for r in futures::future::join_all(runs).await {
                        r?;
                    }
                }
                Step::RetryStage {
                    stage: si,
                    all_actions,
                    reason,
                } => {
                    auto_retried.insert(si);
                    self.reset_stage(id, si, &p.stages[si].name, all_actions, &reason)?;
                }
                Step::StageSucceeded { stage: si } => {
                    self.journal
                        .stage_event(id, si, &p.stages[si].name, ActionStatus::Succeeded)?;
                    // A finished stage is free for the next execution, even while this one
                    // waits to enter the next stage (where it can be superseded).
                    if row.mode == "SUPERSEDED" {
                        self.journal.release_stage_locks(id)?;
                    }
                }
                Step::FailStage {
                    stage: si,
                    reason,
                    roll_back,
                } => {
                    let stage = &p.stages[si];
                    self.journal.stage_event(id, si, &stage.name, ActionStatus::Failed)?;
                    let reason = if roll_back {
                        self.roll_back_stage(row, p, env, si, reason)?
                    } else {
                        reason
                    };
                    return Ok(self.journal.execution_event(id, ExecutionEvent::Fail, Some(&reason))?);
                }
                Step::Stop { stage, reason } => {
                    if let Some(si) = stage {
                        self.journal
                            .stage_event(id, si, &p.stages[si].name, ActionStatus::Abandoned)?;
                    }
                    return Ok(self.journal.execution_event(id, ExecutionEvent::Stop, Some(&reason))?);
                }
                Step::Finish { event, reason } => {
                    return Ok(self.journal.execution_event(id, event, reason.as_deref())?);
                }
            }
        }
    }

    /// What the machine decides from: the execution as the journal records it now.
    fn view(
        &self,
        id: &str,
        p: &Pipeline,
        only_stage: Option<usize>,
        auto_retried: &BTreeSet<usize>,
    ) -> Result<ExecutionView> {
        let stage_rows = self.journal.stages(id)?;
        let actions = self.journal.actions(id)?;
        let stages = p
            .stages
            .iter()
            .enumerate()
            .map(|(si, stage)| {
                let on_failure = stage.on_failure.as_ref();
                StageView {
                    name: stage.name.clone(),
                    status: stage_rows.get(si).map_or(ActionStatus::Pending, |r| r.status),
                    on_failure: match on_failure.and_then(|f| f.result.as_deref()) {
                        Some("RETRY") => OnFailure::Retry {
                            all_actions: on_failure
                                .and_then(|f| f.retry_configuration.as_ref())
                                .is_some_and(|r| r.retry_mode == "ALL_ACTIONS"),
                        },
                        Some("ROLLBACK") => OnFailure::Rollback,
                        _ => OnFailure::Fail,
                    },
                    auto_retried: auto_retried.contains(&si),
                    actions: actions
                        .iter()
                        .filter(|a| a.stage_idx == si as i64)
                        .map(|a| ActionView {
                            name: a.name.clone(),
                            region: a.region.clone(),
                            run_order: a.run_order,
                            status: a.status,
                            error: a.error.clone(),
                        })
                        .collect(),
                }
            })
            .collect();
        Ok(ExecutionView {
            stages,
            only_stage,
            stop_requested: self.stop_mode(id)?.is_some(),
        })
    }

    /// Admission to a stage under `SUPERSEDED`: waits while an earlier execution holds it, and
    /// ends this execution (returning its status) when a later one has passed it.
    async fn enter_superseded(&self, row: &ExecutionRow, stage: &str) -> Result<Option<ExecutionStatus>> {
        let id = row.id.as_str();
        let mut orphan_said = false;
        loop {
            match self.journal.try_enter_stage(&row.pipeline, row.seq, id, stage)? {
                StageEntry::Entered => return Ok(None),
                StageEntry::Superseded(by) => {
                    let reason = format!("superseded by execution {by} at stage {stage}");
                    return Ok(Some(self.journal.execution_event(
                        id,
                        ExecutionEvent::Supersede,
                        Some(&reason),
                    )?));
                }
                StageEntry::Wait { holder, holder_alive } => {
                    if !holder_alive && !orphan_said {
                        self.orphan(&holder);
                        orphan_said = true;
                    }
                    if self.stop_mode(id)?.is_some() {
                        return Ok(Some(self.journal.execution_event(
                            id,
                            ExecutionEvent::Stop,
                            Some("stopped while waiting"),
                        )?));
                    }
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            }
        }
    }

    /// `onFailure: ROLLBACK`: the failed stage is redeployed by a new execution with the
    /// artifacts of the last successful one. Returns the failure's reason, saying so.
    fn roll_back_stage(
        &self,
        row: &ExecutionRow,
        p: &Pipeline,
        env: &RunEnv,
        si: usize,
        reason: String,
    ) -> Result<String> {
        let last_good = self
            .journal
            .executions(Some(&row.pipeline))?
            .into_iter()
            .rev()
            .find(|e| e.status == ExecutionStatus::Succeeded && e.seq < row.seq);
        Ok(match last_good {
            Some(good) => {
                let rb = self.start_rollback(p, env, &good, si, &row.id)?;
                format!(
                    "{reason}; stage {} rolled back by execution {rb} to the artifacts of {}",
                    p.stages[si].name, good.id
                )
            }
            None => format!("{reason}; no earlier successful execution to roll back to"),
        })
    }

    /// A ROLLBACK: a new execution that re-runs one stage with an earlier execution's artifacts.
    fn start_rollback(
        &self,
        p: &Pipeline,
        env: &RunEnv,
        good: &ExecutionRow,
        stage: usize,
        failed: &str,
    ) -> Result<String> {
        let rb = self.start_with(
            p,
            env.clone(),
            &format!("Rollback of {failed} to {}", good.id),
            Some(stage),
        )?;
        let arts = self.journal.artifacts(&good.id)?;
        self.journal.write(|tx| {
            for a in &arts {
                tx.execute(
                    "INSERT OR REPLACE INTO artifacts (execution_id, name, digest, size, region) VALUES (?1, ?2, ?3, ?4, ?5)",
                    rusqlite::params![rb, a.name, a.digest, a.size, a.region],
                )?;
            }
            Ok(())
        })?;
        if let Some(hook) = &self.on_orphan {
            // The rollback runs in its own process, like a recovered execution.
            let journal = self.journal.clone();
            journal.write(|tx| {
                tx.execute(
                    "UPDATE executions SET owner_pid = NULL, owner_start = NULL WHERE id = ?1",
                    [&rb],
                )?;
                Ok(())
            })?;
            hook(&rb);
        }
        Ok(rb)
    }

    fn reset_stage(&self, id: &str, si: usize, stage: &str, all: bool, why: &str) -> Result<()> {
        for a in self
            .journal
            .actions(id)?
            .into_iter()
            .filter(|a| a.stage_idx == si as i64)
        {
            let redo = match a.status {
                ActionStatus::Failed | ActionStatus::Abandoned => true,
                ActionStatus::Succeeded => all,
                _ => false,
            };
            if redo {
                self.journal
                    .reset_action(id, si, stage, &a.name, ActionEvent::Retry, why)?;
            }
        }
        Ok(())
    }

    fn namespaces(&self, id: &str, p: &Pipeline, env: &RunEnv, started: i64) -> Result<Namespaces> {
        let mut ns = Namespaces::new();
        for a in self.journal.actions(id)? {
            if let (Some(space), ActionStatus::Succeeded) = (a.namespace, a.status) {
                let vars = ns.entry(space).or_default();
                for (k, v) in a.output_variables {
                    vars.insert(k, v.as_str().map(str::to_string).unwrap_or_else(|| v.to_string()));
                }
            }
        }
        ns.insert("variables".into(), env.variables.clone().into_iter().collect());
        let cp = ns.entry("codepipeline".into()).or_default();
        cp.insert("PipelineExecutionId".into(), id.to_string());
        cp.insert("PipelineName".into(), p.name.clone());
        cp.insert(
            "PipelineExecutionStartTime".into(),
            meridian_core::clock::format_rfc3339(started / 1000),
        );
        Ok(ns)
    }

    /// One attempt of one action: its configuration resolved, its inputs replicated to its
    /// region and unpacked, the journal told it started (write-ahead), the provider run against
    /// its timeout and `stop --abandon`, its outputs packed into the region's store, and the
    /// result recorded. A failure of any step fails the action with the reason.
    #[allow(clippy::too_many_arguments)]
    async fn run_action(
        &self,
        row: &ExecutionRow,
        p: &Pipeline,
        si: usize,
        stage: &Stage,
        a: &Action,
        env: &Arc<RunEnv>,
        stores: &BTreeMap<String, Arc<dyn ArtifactStore>>,
        abandon: tokio::sync::watch::Receiver<bool>,
    ) -> Result<ActionStatus> {
        let id = row.id.as_str();
        let region = a.region.clone().unwrap_or_else(|| env.home_region.clone());
        let fail = |msg: String| -> Result<ActionStatus> {
            Ok(self.journal.action_finished(
                id,
                si,
                &stage.name,
                &a.name,
                ActionEvent::Fail,
                Some(&msg),
                &[],
                &Default::default(),
            )?)
        };
        let Some(store) = stores.get(&region).cloned() else {
            return fail(format!(
                "region {region} has no artifact store: add one to the pipeline's artifactStores"
            ));
        };
        let ns = self.namespaces(id, p, env, row.started_at)?;
        let resolved = match resolve_action(a, &ns) {
            Ok(r) => r,
            Err(e) => return fail(e),
        };
        let attempt = match self.open_attempt(id, si, stage, a, &region)? {
            Ok(x) => x,
            Err(e) => return fail(e),
        };
        let log = attempt.log.clone();
        let inputs = match self.fetch_inputs(id, a, &region, &store, stores, &attempt).await? {
            Ok(i) => i,
            Err(e) => return fail(e),
        };
        let mut outputs = Vec::new();
        for o in &a.output_artifacts {
            let dir = attempt.work.join("outputs").join(sanitize(&o.name));
            let _ = std::fs::create_dir_all(&dir);
            outputs.push((o.name.clone(), dir));
        }
        // Write-ahead: the journal says InProgress before anything of the action runs.
        let resolved_json = serde_json::to_string(&resolved.configuration).unwrap_or_default();
        let number = self.journal.action_started(
            id,
            si,
            &stage.name,
            &a.name,
            &resolved_json,
            &attempt.log_path.display().to_string(),
        )?;
        let Some(provider) = self.registry.get(a) else {
            let t = &a.action_type_id;
            let msg = format!(
                "provider {} ({}/{}) is not implemented in local regions yet",
                t.provider, t.category, t.owner
            );
            log.line(&msg);
            return fail(msg);
        };
        let (cancel_tx, cancel_rx) = tokio::sync::watch::channel(false);
        let ctx = ActionContext {
            execution_id: id.to_string(),
            pipeline: p.name.clone(),
            stage: stage.name.clone(),
            stage_idx: si,
            action: resolved,
            attempt: number,
            region: region.clone(),
            work_dir: attempt.work.clone(),
            inputs,
            outputs: outputs.clone(),
            log: log.clone(),
            cancel: cancel_rx,
            journal: self.journal.clone(),
            env: env.clone(),
            projects: Arc::new(p.meridian.build_projects.clone()),
            remote_builds: p.meridian.builds.as_deref() == Some("codebuild"),
            regions: self.regions_of(id),
            delivery_tick: self.delivery_tick,
            stores: Arc::new(
                stores
                    .iter()
                    .map(|(r, s)| {
                        let bucket = p
                            .artifact_stores
                            .get(r)
                            .or(p.artifact_store.as_ref())
                            .map(|x| x.location.clone())
                            .unwrap_or_default();
                        (r.clone(), (bucket, s.clone()))
                    })
                    .collect(),
            ),
        };
        let minutes = a.timeout_in_minutes.unwrap_or_else(|| default_timeout_minutes(a));
        let timeout = env.scaled(Duration::from_secs(minutes as u64 * 60));
        let end = self.perform(provider.as_ref(), &ctx, timeout, cancel_tx, abandon).await;
        let (ev, error, vars) = match end {
            End::Done(Ok(out)) => (ActionEvent::Succeed, None, out.variables),
            End::Done(Err(msg)) => (ActionEvent::Fail, Some(msg), Default::default()),
            End::TimedOut if a.category() == "Approval" => (
                ActionEvent::Fail,
                Some(format!(
                    "the approval expired after {minutes} minutes without a decision"
                )),
                Default::default(),
            ),
            End::TimedOut => (
                ActionEvent::Fail,
                Some(format!("timed out after {minutes} minutes; its processes were killed")),
                Default::default(),
            ),
            End::Abandoned => (
                ActionEvent::Abandon,
                Some("abandoned by `meridian stop --abandon`".to_string()),
                Default::default(),
            ),
        };
        if let Some(e) = &error {
            log.line(e);
        }
        let rows = if ev == ActionEvent::Succeed {
            match store_outputs(&outputs, &attempt.work, &store, &region, &log).await {
                Ok(rows) => rows,
                Err(e) => return fail(e),
            }
        } else {
            Vec::new()
        };
        Ok(self
            .journal
            .action_finished(id, si, &stage.name, &a.name, ev, error.as_deref(), &rows, &vars)?)
    }

    /// The attempt's work directory (emptied) and log. The outer error is the journal's; the
    /// inner one fails the action.
    fn open_attempt(
        &self,
        id: &str,
        si: usize,
        stage: &Stage,
        a: &Action,
        region: &str,
    ) -> Result<std::result::Result<Attempt, String>> {
        let attempt_dir = attempt_dir(&self.data_dir, id, &stage.name, &a.name);
        let number = self
            .journal
            .actions(id)?
            .iter()
            .find(|r| r.stage_idx == si as i64 && r.name == a.name)
            .map(|r| r.attempt + 1)
            .unwrap_or(1);
        let work = attempt_dir.join(format!("attempt-{number}"));
        let log_path = attempt_dir.join(format!("attempt-{number}.log"));
        let _ = std::fs::remove_dir_all(&work);
        if let Err(e) = std::fs::create_dir_all(&work) {
            return Ok(Err(format!(
                "failed to create the work directory {}: {e}",
                work.display()
            )));
        }
        let echo = self.echo.clone().map(|f| {
            let prefix = format!("[{} {region}] ", a.name);
            Arc::new(move |l: &str| f(&format!("{prefix}{l}"))) as crate::providers::Echo
        });
        Ok(match Log::create(&log_path, echo) {
            Ok(log) => Ok(Attempt { work, log_path, log }),
            Err(e) => Err(format!("failed to create the log {}: {e}", log_path.display())),
        })
    }

    /// The action's input artifacts, replicated to its region's store when they were produced
    /// elsewhere (verified by digest), fetched and unpacked into the work directory.
    async fn fetch_inputs(
        &self,
        id: &str,
        a: &Action,
        region: &str,
        store: &Arc<dyn ArtifactStore>,
        stores: &BTreeMap<String, Arc<dyn ArtifactStore>>,
        attempt: &Attempt,
    ) -> Result<std::result::Result<Vec<(String, PathBuf)>, String>> {
        let produced: BTreeMap<String, ArtifactRow> = self
            .journal
            .artifacts(id)?
            .into_iter()
            .map(|r| (r.name.clone(), r))
            .collect();
        let mut inputs = Vec::new();
        for inp in &a.input_artifacts {
            let Some(art) = produced.get(&inp.name) else {
                return Ok(Err(format!(
                    "input artifact {} was not produced by an earlier action",
                    inp.name
                )));
            };
            match fetch_input(&inp.name, art, region, store, stores, &attempt.work, &attempt.log).await {
                Ok(dir) => inputs.push((inp.name.clone(), dir)),
                Err(e) => return Ok(Err(e)),
            }
        }
        Ok(Ok(inputs))
    }

    /// Runs the provider (under the pipeline's policy) until it ends, its timeout passes, or
    /// `stop --abandon` comes; on the last two it is told to cancel and given 10 s to clean up.
    async fn perform(
        &self,
        provider: &dyn crate::providers::ActionProvider,
        ctx: &ActionContext,
        timeout: Duration,
        cancel: tokio::sync::watch::Sender<bool>,
        mut abandon: tokio::sync::watch::Receiver<bool>,
    ) -> End {
        let started = std::sync::atomic::AtomicI64::new(0);
        let fut = self.run_with_policy(provider, ctx, &started);
        tokio::pin!(fut);
        // The timeout counts from when the provider starts, not from a window or slot wait.
        let timer = async {
            loop {
                let at = started.load(std::sync::atomic::Ordering::SeqCst);
                if at > 0 {
                    return until(self.journal.clock(), at.saturating_add(timeout.as_millis() as i64)).await;
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        };
        let end = tokio::select! {
            r = &mut fut => End::Done(r),
            _ = timer => End::TimedOut,
            _ = abandon.wait_for(|a| *a) => End::Abandoned,
        };
        if !matches!(end, End::Done(_)) {
            let _ = cancel.send(true);
            let _ = tokio::time::timeout(Duration::from_secs(10), &mut fut).await;
        }
        end
    }

    /// Deletes stored artifacts that no retained execution references.
    pub async fn gc(&self, stores: &BTreeMap<String, Arc<dyn ArtifactStore>>, keep: usize) -> Result<usize> {
        let keep = keep.max(1);
        let retained = self.journal.retained_digests(keep)?;
        let mut deleted = 0;
        for store in stores.values() {
            for d in store.list().await? {
                if !retained.contains(&d.to_string()) {
                    store.delete(&d).await?;
                    deleted += 1;
                }
            }
        }
        Ok(deleted)
    }

    /// Executions whose process died while they were in progress.
    pub fn orphans(&self) -> Result<Vec<ExecutionRow>> {
        Ok(self.journal.orphans()?)
    }

    /// Takes over an orphaned execution and repairs its journal: actions that were in progress
    /// are resumed when safe to repeat and failed otherwise; a stopping execution is stopped.
    /// Returns whether the execution should now be driven, or `None` when another process took it.
    pub fn take_over(&self, id: &str) -> Result<Option<bool>> {
        let row = self.journal.execution(id)?;
        if row.status.is_terminal() || crate::journal::owner_alive(row.owner_pid, row.owner_start) {
            return Ok(None);
        }
        if !self
            .journal
            .claim(id, row.owner_pid, self.journal.pid(), self.journal.self_start())?
        {
            return Ok(None);
        }
        let (p, _) = self.load(&row)?;
        let dead = row.owner_pid.unwrap_or(0);
        let stopping = row.stop_mode.is_some();
        for a in self
            .journal
            .actions(id)?
            .into_iter()
            .filter(|a| a.status == ActionStatus::InProgress)
        {
            let si = a.stage_idx as usize;
            let stage = &p.stages[si].name;
            let model = p.stages[si].actions.iter().find(|x| x.name == a.name);
            let safe = model
                .and_then(|m| self.registry.get(m).map(|pr| pr.safe_to_repeat(m)))
                .unwrap_or(false);
            if stopping {
                let why = format!("abandoned: the meridian process (pid {dead}) stopping it ended");
                self.journal.action_finished(
                    id,
                    si,
                    stage,
                    &a.name,
                    ActionEvent::Abandon,
                    Some(&why),
                    &[],
                    &Default::default(),
                )?;
            } else if safe {
                let why = format!(
                    "the meridian process running it (pid {dead}) ended; {} is safe to repeat, so it runs again",
                    a.provider
                );
                self.journal
                    .reset_action(id, si, stage, &a.name, ActionEvent::Resume, &why)?;
            } else {
                let why = format!(
                    "interrupted: the meridian process running it (pid {dead}) ended while it was in progress; a {} action is not safe to repeat, so it is marked failed (run `meridian retry {id}` to run it again)",
                    a.provider
                );
                self.journal.action_finished(
                    id,
                    si,
                    stage,
                    &a.name,
                    ActionEvent::Fail,
                    Some(&why),
                    &[],
                    &Default::default(),
                )?;
            }
        }
        if stopping {
            self.journal
                .execution_event(id, ExecutionEvent::Stop, Some("stopped (its process had ended)"))?;
            return Ok(Some(false));
        }
        Ok(Some(true))
    }

    /// The action `action` of execution `id`, which must be a running `provider` action (waiting
    /// for what `waits_for` says).
    fn waiting_action(
        &self,
        id: &str,
        action: &str,
        provider: &str,
        kind: &str,
        waits_for: &str,
    ) -> Result<crate::journal::ActionRow> {
        let a = self
            .journal
            .actions(id)?
            .into_iter()
            .find(|a| a.name == action)
            .ok_or_else(|| JournalError::NoSuchAction(id.to_string(), action.to_string()))?;
        if a.provider != provider {
            return Err(EngineError::Invalid(format!(
                "action `{action}` is a {} action, not {kind}",
                a.provider
            )));
        }
        if a.status != ActionStatus::InProgress {
            return Err(EngineError::Invalid(format!(
                "action `{action}` is {}, not waiting for {waits_for}",
                a.status
            )));
        }
        Ok(a)
    }

    /// `meridian approve`: records the decision for the action's current attempt.
    pub fn approve(&self, id: &str, action: &str, approved: bool, comment: Option<&str>) -> Result<()> {
        let a = self.waiting_action(id, action, "Manual", "a manual approval", "approval")?;
        Ok(self
            .journal
            .record_approval(id, a.stage_idx as usize, action, a.attempt, approved, comment)?)
    }

    /// `meridian approve --skip-window`: lets a deploy action waiting for its region's
    /// deployment window go now. Recorded in the journal as the action's approval.
    pub fn skip_window(&self, id: &str, action: &str, comment: Option<&str>) -> Result<()> {
        let a = self.waiting_action(
            id,
            action,
            "CloudFormation",
            "a deploy (CloudFormation) action, the only ones that wait for windows",
            "its deployment window",
        )?;
        let note = format!("skip-window{}", comment.map(|c| format!(": {c}")).unwrap_or_default());
        Ok(self
            .journal
            .record_approval(id, a.stage_idx as usize, action, a.attempt, true, Some(&note))?)
    }

    /// `meridian retry`: makes a failed or stopped execution run its failed stage again (only the
    /// failed actions, or all of the stage's actions), then the stages after it.
    pub fn prepare_retry(&self, id: &str, all_actions: bool) -> Result<String> {
        let row = self.journal.execution(id)?;
        if !matches!(row.status, ExecutionStatus::Failed | ExecutionStatus::Stopped) {
            return Err(EngineError::Invalid(format!(
                "execution {id} is {}: only a failed or stopped execution can be retried",
                row.status
            )));
        }
        let (p, _) = self.load(&row)?;
        let stages = self.journal.stages(id)?;
        let Some(stage) = stages
            .iter()
            .find(|s| s.status != ActionStatus::Succeeded && s.status != ActionStatus::Pending)
            .or(stages.iter().find(|s| s.status != ActionStatus::Succeeded))
        else {
            return Err(EngineError::Invalid(format!("execution {id} has no stage to retry")));
        };
        let si = stage.idx as usize;
        self.reset_stage(id, si, &p.stages[si].name, all_actions, "retried by `meridian retry`")?;
        self.journal.execution_event(id, ExecutionEvent::Retry, None)?;
        Ok(p.stages[si].name.clone())
    }

    /// `meridian stop`: asks the execution's driver to stop (and with `abandon`, to kill its
    /// running actions now).
    pub fn stop(&self, id: &str, abandon: bool, reason: &str) -> Result<ExecutionStatus> {
        Ok(self.journal.request_stop(id, abandon, reason)?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_never_leave_the_executions_directory() {
        let data = Path::new("/data");
        // `..` is a name AWS allows for a stage and an action: it stays one component.
        let d = attempt_dir(data, "e1", "..", "..");
        assert_eq!(d, Path::new("/data/executions/e1/%2E%2E/%2E%2E"));
        let d = attempt_dir(data, "e1", "a/../../..", ".");
        assert_eq!(d, Path::new("/data/executions/e1/a%2F..%2F..%2F../%2E"));
        assert!(d.starts_with("/data/executions/e1"));
        // ordinary names are kept as written
        assert_eq!(
            attempt_dir(data, "e1", "Build", "Unit-tests_1.2"),
            Path::new("/data/executions/e1/Build/Unit-tests_1.2")
        );
        // two names that differ never share a directory
        assert_ne!(attempt_dir(data, "e1", "a b", "x"), attempt_dir(data, "e1", "a_b", "x"));
    }
}
