//! The progressive-delivery driver: runs a [`meridian_delivery::deployment::Deployment`] (the
//! pure state machine) against a region's functions. It moves alias weights along the schedule,
//! invokes lifecycle hooks with CodeDeploy's event shape and waits for them to report through
//! `PutLifecycleEventHookExecutionStatus`, evaluates the deployment group's CloudWatch alarms on
//! the region's metrics, asks the canary judge for a verdict at the end of each bake, sends
//! synthetic traffic while it shifts, and takes operator commands (promote, extend, abort).
//!
//! Every deployment is a row of `<data>/delivery.sqlite`, saved after every transition with the
//! state machine's serialized state: `meridian deployments` shows it, operator commands are rows
//! the driver picks up, and a deployment whose process died is rolled back by the next process
//! that opens the store ([`Shifter::recover`]), so that no region is left on a mixed alias
//! without a record.
//!
//! What it must not do: know how a region runs functions. That is [`FunctionControl`],
//! implemented by the local Lambda host (and later by AWS).

use meridian_delivery::alarm::{evaluate_with_previous, AlarmSpec, AlarmState};
use meridian_delivery::deployment::{
    Deployment, DeploymentConfig, DeploymentState, Effect, Event, HookKind, JudgePolicy,
};
use meridian_delivery::follow::{Follow, FollowConfig, FollowEffect, FollowEvent, FollowState};
use meridian_delivery::judge::{judge, Sample, Verdict};
use meridian_delivery::schedule::TrafficSchedule;
use meridian_region::stacks::{AliasDeployment, AliasShifter, DeploymentHandle, FollowedDeployment};
pub use meridian_region::FunctionControl;
use rusqlite::{params, Connection, OptionalExtension};
use serde::Serialize;
use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// A deployment as `meridian deployments` lists it.
#[derive(Debug, Clone, Serialize)]
pub struct DeploymentRow {
    pub id: String,
    pub region: String,
    pub stack: String,
    pub function: String,
    pub alias: String,
    pub from_version: String,
    pub to_version: String,
    pub pipeline: Option<String>,
    pub execution_id: Option<String>,
    pub schedule: String,
    pub status: String,
    pub reason: Option<String>,
    /// Share of the alias's traffic on the new version now.
    pub new_version_percent: f64,
    pub started_ms: i64,
    pub updated_ms: i64,
}

impl DeploymentRow {
    /// Whether the deployment is over (succeeded, rolled back, failed, or ended unseen).
    pub fn is_over(&self) -> bool {
        OVER.contains(&self.status.as_str())
    }
}

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS deployments (
    id TEXT PRIMARY KEY, region TEXT NOT NULL, stack TEXT NOT NULL, function TEXT NOT NULL,
    alias TEXT NOT NULL, from_version TEXT NOT NULL, to_version TEXT NOT NULL,
    pipeline TEXT, execution_id TEXT, schedule TEXT NOT NULL,
    state TEXT NOT NULL, status TEXT NOT NULL, reason TEXT, percent REAL NOT NULL,
    owner_pid INTEGER, owner_start INTEGER, started_ms INTEGER NOT NULL, updated_ms INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS deployment_events (
    deployment_id TEXT NOT NULL, at_ms INTEGER NOT NULL, line TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS deployment_commands (
    seq INTEGER PRIMARY KEY AUTOINCREMENT, deployment_id TEXT NOT NULL, command TEXT NOT NULL,
    by_ms INTEGER, issued_ms INTEGER NOT NULL, taken_ms INTEGER);
CREATE TABLE IF NOT EXISTS deployment_backends (
    deployment_id TEXT PRIMARY KEY, backend TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS hook_executions (
    execution_id TEXT PRIMARY KEY, deployment_id TEXT NOT NULL, hook TEXT NOT NULL,
    function TEXT NOT NULL, status TEXT NOT NULL, invoked_ms INTEGER NOT NULL, reported_ms INTEGER);
";

/// `<data>/delivery.sqlite`: deployments, their events, operator commands, hook executions.
#[derive(Clone)]
pub struct DeliveryStore {
    conn: Arc<Mutex<Connection>>,
}

/// The columns a deployment's row starts with.
struct NewRow<'a> {
    region: &'a str,
    stack: &'a str,
    function: &'a str,
    alias: &'a str,
    from_version: &'a str,
    to_version: &'a str,
    options: &'a crate::stacks::DeliveryOptions,
}

impl<'a> From<&'a AliasDeployment> for NewRow<'a> {
    fn from(d: &'a AliasDeployment) -> NewRow<'a> {
        NewRow {
            region: &d.region,
            stack: &d.stack_name,
            function: &d.function,
            alias: &d.alias,
            from_version: &d.from_version,
            to_version: &d.to_version,
            options: &d.options,
        }
    }
}

impl<'a> From<&'a FollowedDeployment> for NewRow<'a> {
    fn from(d: &'a FollowedDeployment) -> NewRow<'a> {
        NewRow {
            region: &d.region,
            stack: &d.stack_name,
            function: &d.function,
            alias: &d.alias,
            from_version: &d.from_version,
            to_version: &d.to_version,
            options: &d.options,
        }
    }
}

/// The statuses of a deployment that is over.
const OVER: [&str; 4] = ["Succeeded", "RolledBack", "Failed", "Unknown"];

/// An operator command for a running deployment.
#[derive(Debug, Clone, PartialEq)]
pub enum Command {
    Promote,
    Extend { by_ms: u64 },
    Abort,
}

fn now_ms() -> i64 {
    crate::journal::now_millis()
}

impl DeliveryStore {
    pub fn open(data_dir: &Path) -> Result<DeliveryStore, String> {
        std::fs::create_dir_all(data_dir).map_err(|e| format!("cannot create {}: {e}", data_dir.display()))?;
        let path = data_dir.join("delivery.sqlite");
        let conn = crate::journal::open_store(
            &path,
            Duration::from_secs(10),
            SCHEMA,
            "the record of past and running deployments then starts empty; the release ledger in the journal keeps what is live",
        )?;
        Ok(DeliveryStore {
            conn: Arc::new(Mutex::new(conn)),
        })
    }

    fn db<T>(&self, f: impl FnOnce(&Connection) -> rusqlite::Result<T>) -> Result<T, String> {
        let c = self.conn.lock().unwrap_or_else(|e| e.into_inner());
        f(&c).map_err(|e| format!("delivery store: {e}"))
    }

    fn create(&self, id: &str, d: &AliasDeployment, schedule: &str, dep: &Deployment, at: i64) -> Result<(), String> {
        let state = serde_json::to_string(dep).map_err(|e| e.to_string())?;
        self.insert(id, &NewRow::from(d), schedule, &state, dep.state().name(), at)
    }

    fn insert(&self, id: &str, d: &NewRow, schedule: &str, state: &str, status: &str, at: i64) -> Result<(), String> {
        let pid = std::process::id();
        let start = crate::journal::process_start_time(pid).map(|s| s as i64);
        self.db(|c| {
            c.execute(
                "INSERT INTO deployments (id, region, stack, function, alias, from_version, to_version, pipeline, execution_id, schedule, state, status, reason, percent, owner_pid, owner_start, started_ms, updated_ms)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, NULL, 0, ?13, ?14, ?15, ?15)",
                params![
                    id,
                    d.region,
                    d.stack,
                    d.function,
                    d.alias,
                    d.from_version,
                    d.to_version,
                    d.options.pipeline,
                    d.options.execution_id,
                    schedule,
                    state,
                    status,
                    pid as i64,
                    start,
                    at
                ],
            )
            .map(|_| ())
        })
    }

    fn save(&self, id: &str, dep: &Deployment, at: i64) -> Result<(), String> {
        let state = serde_json::to_string(dep).map_err(|e| e.to_string())?;
        let reason = match dep.state() {
            DeploymentState::RollingBack { reason, .. }
            | DeploymentState::RolledBack { reason }
            | DeploymentState::Failed { reason } => Some(reason.as_str()),
            _ => None,
        };
        self.update(id, &state, dep.state().name(), reason, dep.new_version_percent(), at)
    }

    fn update(
        &self,
        id: &str,
        state: &str,
        status: &str,
        reason: Option<&str>,
        percent: f64,
        at: i64,
    ) -> Result<(), String> {
        self.db(|c| {
            c.execute(
                "UPDATE deployments SET state=?2, status=?3, reason=?4, percent=?5, updated_ms=?6 WHERE id=?1",
                params![id, state, status, reason, percent, at],
            )
            .map(|_| ())
        })
    }

    fn event(&self, id: &str, at: i64, line: &str) -> Result<(), String> {
        self.db(|c| {
            c.execute(
                "INSERT INTO deployment_events (deployment_id, at_ms, line) VALUES (?1, ?2, ?3)",
                params![id, at, line],
            )
            .map(|_| ())
        })
    }

    /// The deployment's event lines, oldest first.
    pub fn events(&self, id: &str) -> Result<Vec<(i64, String)>, String> {
        self.db(|c| {
            let mut st =
                c.prepare("SELECT at_ms, line FROM deployment_events WHERE deployment_id=?1 ORDER BY rowid")?;
            let rows = st.query_map([id], |r| Ok((r.get(0)?, r.get(1)?)))?;
            rows.collect()
        })
    }

    fn row(r: &rusqlite::Row) -> rusqlite::Result<DeploymentRow> {
        Ok(DeploymentRow {
            id: r.get(0)?,
            region: r.get(1)?,
            stack: r.get(2)?,
            function: r.get(3)?,
            alias: r.get(4)?,
            from_version: r.get(5)?,
            to_version: r.get(6)?,
            pipeline: r.get(7)?,
            execution_id: r.get(8)?,
            schedule: r.get(9)?,
            status: r.get(10)?,
            reason: r.get(11)?,
            new_version_percent: r.get(12)?,
            started_ms: r.get(13)?,
            updated_ms: r.get(14)?,
        })
    }

    const COLS: &'static str = "id, region, stack, function, alias, from_version, to_version, pipeline, execution_id, schedule, status, reason, percent, started_ms, updated_ms";

    /// Every deployment, oldest first.
    pub fn list(&self) -> Result<Vec<DeploymentRow>, String> {
        self.db(|c| {
            let mut st = c.prepare(&format!(
                "SELECT {} FROM deployments ORDER BY started_ms, rowid",
                Self::COLS
            ))?;
            let rows = st.query_map([], Self::row)?;
            rows.collect()
        })
    }

    pub fn get(&self, id: &str) -> Result<Option<DeploymentRow>, String> {
        self.db(|c| {
            c.query_row(
                &format!("SELECT {} FROM deployments WHERE id=?1", Self::COLS),
                [id],
                Self::row,
            )
            .optional()
        })
    }

    /// Queues an operator command for a running deployment.
    pub fn command(&self, id: &str, cmd: &Command) -> Result<(), String> {
        let row = self
            .get(id)?
            .ok_or_else(|| format!("no deployment {id} (see `meridian deployments`)"))?;
        if row.is_over() {
            return Err(format!(
                "deployment {id} is over ({}): nothing to {}",
                row.status,
                cmd.verb()
            ));
        }
        if !matches!(cmd, Command::Abort) {
            let backend: Option<String> = self.db(|c| {
                c.query_row(
                    "SELECT backend FROM deployment_backends WHERE deployment_id=?1",
                    [id],
                    |r| r.get(0),
                )
                .optional()
            })?;
            if backend.as_deref() == Some("codedeploy") {
                return Err(format!(
                    "deployment {id} is run by CodeDeploy, by its own configuration ({}): it cannot {}; `meridian abort {id}` stops it",
                    row.schedule.trim_end_matches(" (run by CodeDeploy)"),
                    cmd.verb()
                ));
            }
        }
        let (name, by) = match cmd {
            Command::Promote => ("promote", None),
            Command::Extend { by_ms } => ("extend", Some(*by_ms as i64)),
            Command::Abort => ("abort", None),
        };
        self.db(|c| {
            c.execute(
                "INSERT INTO deployment_commands (deployment_id, command, by_ms, issued_ms) VALUES (?1, ?2, ?3, ?4)",
                params![id, name, by, now_ms()],
            )
            .map(|_| ())
        })
    }

    fn take_commands(&self, id: &str) -> Result<Vec<Command>, String> {
        self.db(|c| {
            let mut st = c.prepare(
                "SELECT seq, command, by_ms FROM deployment_commands WHERE deployment_id=?1 AND taken_ms IS NULL ORDER BY seq",
            )?;
            let rows: Vec<(i64, String, Option<i64>)> = st
                .query_map([id], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?
                .collect::<rusqlite::Result<_>>()?;
            for (seq, _, _) in &rows {
                c.execute(
                    "UPDATE deployment_commands SET taken_ms=?2 WHERE seq=?1",
                    params![seq, now_ms()],
                )?;
            }
            Ok(rows
                .into_iter()
                .filter_map(|(_, cmd, by)| match cmd.as_str() {
                    "promote" => Some(Command::Promote),
                    "extend" => Some(Command::Extend {
                        by_ms: by.unwrap_or(0).max(0) as u64,
                    }),
                    "abort" => Some(Command::Abort),
                    _ => None,
                })
                .collect())
        })
    }

    fn register_hook(&self, exec: &str, deployment: &str, hook: HookKind, function: &str) -> Result<(), String> {
        self.db(|c| {
            c.execute(
                "INSERT INTO hook_executions (execution_id, deployment_id, hook, function, status, invoked_ms) VALUES (?1, ?2, ?3, ?4, 'Pending', ?5)",
                params![exec, deployment, format!("{hook:?}"), function, now_ms()],
            )
            .map(|_| ())
        })
    }

    fn hook_status(&self, exec: &str) -> Result<Option<String>, String> {
        self.db(|c| {
            c.query_row(
                "SELECT status FROM hook_executions WHERE execution_id=?1",
                [exec],
                |r| r.get::<_, String>(0),
            )
            .optional()
        })
        .map(|s| s.filter(|s| s != "Pending"))
    }

    /// `PutLifecycleEventHookExecutionStatus`: records a hook's result. Errors use CodeDeploy's
    /// exception names.
    pub fn report_hook(&self, deployment_id: &str, exec: &str, status: &str) -> Result<(), (String, String)> {
        if !matches!(status, "Succeeded" | "Failed") {
            return Err((
                "InvalidLifecycleEventHookExecutionStatusException".into(),
                format!("status must be Succeeded or Failed, not {status}"),
            ));
        }
        let row: Option<(String, String)> = self
            .db(|c| {
                c.query_row(
                    "SELECT deployment_id, status FROM hook_executions WHERE execution_id=?1",
                    [exec],
                    |r| Ok((r.get(0)?, r.get(1)?)),
                )
                .optional()
            })
            .map_err(|e| ("InternalFailure".to_string(), e))?;
        match row {
            None => Err((
                "InvalidLifecycleEventHookExecutionIdException".into(),
                format!("no lifecycle event hook execution {exec}"),
            )),
            Some((d, _)) if d != deployment_id => Err((
                "InvalidDeploymentIdException".into(),
                format!("hook execution {exec} does not belong to deployment {deployment_id}"),
            )),
            Some((_, s)) if s != "Pending" => Err((
                "LifecycleEventAlreadyCompletedException".into(),
                format!("hook execution {exec} already reported {s}"),
            )),
            Some(_) => self
                .db(|c| {
                    c.execute(
                        "UPDATE hook_executions SET status=?2, reported_ms=?3 WHERE execution_id=?1",
                        params![exec, status, now_ms()],
                    )
                    .map(|_| ())
                })
                .map_err(|e| ("InternalFailure".to_string(), e)),
        }
    }
}

impl Command {
    fn verb(&self) -> &'static str {
        match self {
            Command::Promote => "promote",
            Command::Extend { .. } => "extend",
            Command::Abort => "abort",
        }
    }
}

/// Describes a schedule for people: `10% for 5m, then 100%`.
pub fn describe_schedule(s: &TrafficSchedule) -> String {
    let dur = |ms: u64| {
        if ms == 0 {
            String::new()
        } else if ms % 60_000 == 0 {
            format!(" for {}m", ms / 60_000)
        } else {
            format!(" for {}s", ms as f64 / 1000.0)
        }
    };
    s.steps
        .iter()
        .map(|st| format!("{}%{}", st.percent, dur(st.bake_ms)))
        .collect::<Vec<_>>()
        .join(", then ")
}

/// Which schedule a deployment follows: the pipeline's preference, else the group's
/// `AWS::CodeDeploy::DeploymentConfig`, else its predefined `DeploymentConfigName`, else
/// AllAtOnce (CodeDeploy's default for Lambda).
pub fn schedule_for(d: &AliasDeployment) -> Result<TrafficSchedule, String> {
    if let Some(p) = &d.options.preference {
        return TrafficSchedule::parse(p).map_err(|e| e.to_string());
    }
    if let Some(cfg) = &d.deployment_config {
        return TrafficSchedule::from_codedeploy_config(cfg).map_err(|e| e.to_string());
    }
    match d.deployment_group.get("DeploymentConfigName").and_then(|v| v.as_str()) {
        Some(name) => TrafficSchedule::parse(name).map_err(|e| format!("deployment group: {e}")),
        None => Ok(TrafficSchedule::all_at_once()),
    }
}

/// Synthetic traffic to one alias, from worker threads, until dropped.
pub struct Traffic {
    stop: Arc<AtomicBool>,
    workers: Vec<std::thread::JoinHandle<()>>,
}

impl Traffic {
    pub fn start(
        control: Arc<dyn FunctionControl>,
        region: &str,
        target: &str,
        rate: f64,
        payloads: &[String],
        route: Option<&str>,
    ) -> Traffic {
        let stop = Arc::new(AtomicBool::new(false));
        let rate = rate.clamp(0.1, 1000.0);
        let n = (rate / 10.0).ceil().clamp(1.0, 8.0) as usize;
        let interval = Duration::from_secs_f64(n as f64 / rate);
        let payloads: Arc<Vec<Vec<u8>>> = Arc::new(if payloads.is_empty() {
            vec![b"{}".to_vec()]
        } else {
            payloads.iter().map(|p| p.as_bytes().to_vec()).collect()
        });
        let workers = (0..n)
            .map(|w| {
                let (stop, control, payloads) = (stop.clone(), control.clone(), payloads.clone());
                let (region, target) = (region.to_string(), target.to_string());
                let route = route.map(str::to_string);
                std::thread::spawn(move || {
                    let mut i = w;
                    let mut next = std::time::Instant::now() + interval.mul_f64(w as f64 / n as f64);
                    while !stop.load(Ordering::Relaxed) {
                        let now = std::time::Instant::now();
                        if next > now {
                            std::thread::sleep((next - now).min(Duration::from_millis(50)));
                            continue;
                        }
                        next += interval;
                        let payload = &payloads[i % payloads.len()];
                        let _ = match &route {
                            // through the API, as users' requests come
                            Some(route) => control.api_request(&region, &target, route, payload),
                            None => control.invoke(&region, &target, payload),
                        };
                        i += n;
                    }
                })
            })
            .collect();
        Traffic { stop, workers }
    }
}

impl Drop for Traffic {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        for w in self.workers.drain(..) {
            let _ = w.join();
        }
    }
}

/// An unfinished deployment: id, region, function, alias, old version, owner pid and start.
type Unfinished = (String, String, String, String, String, Option<i64>, Option<i64>);

/// The engine's delivery driver for one region: shifts, bakes, judges and rolls back through the
/// region's [`FunctionControl`], records in `<data>/delivery.sqlite`, and waits on `clock`.
pub fn driver_for(
    backend: &meridian_region::RegionBackend,
    data_dir: &Path,
    clock: Arc<dyn meridian_core::Clock>,
    tick: Duration,
) -> Result<Arc<dyn AliasShifter>, String> {
    let store = DeliveryStore::open(data_dir)?;
    Ok(Arc::new(
        Shifter::new(backend.functions.clone(), store)
            .with_clock(clock, tick)
            .for_backend(&backend.kind),
    ))
}

/// Puts back the deployments of `backend`'s regions that a process which has ended left mixed
/// (see [`Shifter::recover`]); one line for each.
pub fn recover_for(
    backend: &meridian_region::RegionBackend,
    data_dir: &Path,
    clock: Arc<dyn meridian_core::Clock>,
) -> Result<Vec<String>, String> {
    let shifter = Shifter::new(backend.functions.clone(), DeliveryStore::open(data_dir)?)
        .with_clock(clock, Duration::from_millis(100))
        .for_backend(&backend.kind);
    Ok(shifter
        .recover()?
        .into_iter()
        .map(|id| {
            format!(
                "deployment {id}: the process running it had ended; its alias is back on the previous version (meridian deployments show {id})"
            )
        })
        .collect())
}

/// The [`AliasShifter`] of every region: the engine's delivery driver.
pub struct Shifter {
    control: Arc<dyn FunctionControl>,
    store: DeliveryStore,
    /// Where the driver's time comes from: every timestamp it records and every wait.
    clock: Arc<dyn meridian_core::Clock>,
    /// How often (in the clock's time) the driver looks at hooks, alarms, commands and timers.
    tick: Duration,
    /// The backend whose regions `control` reaches (`local`, `aws`): the deployments it records
    /// and recovers are that backend's.
    kind: String,
}

struct Run<'a> {
    id: String,
    d: &'a AliasDeployment,
    dep: Deployment,
    /// Each alarm's definition, or why it cannot be evaluated here (the region may evaluate it).
    alarms: Vec<(String, Result<AlarmSpec, String>)>,
    alarm_states: BTreeMap<String, AlarmState>,
    wakes: BTreeSet<i64>,
    hook: Option<(HookKind, String)>,
    last_verdict: Option<String>,
    started: i64,
    log: &'a dyn Fn(&str),
}

impl Shifter {
    /// A driver on the machine's clock, looking every 100 ms.
    pub fn new(control: Arc<dyn FunctionControl>, store: DeliveryStore) -> Shifter {
        Shifter {
            control,
            store,
            clock: Arc::new(meridian_core::SystemClock),
            tick: Duration::from_millis(100),
            kind: "local".into(),
        }
    }

    /// The same driver on another clock, looking every `tick` of it: on a
    /// [`meridian_core::ManualClock`] a 30-minute bake takes no wall time.
    pub fn with_clock(mut self, clock: Arc<dyn meridian_core::Clock>, tick: Duration) -> Shifter {
        self.clock = clock;
        self.tick = tick;
        self
    }

    /// The same driver for the regions of another backend (`local` by default).
    pub fn for_backend(mut self, kind: &str) -> Shifter {
        self.kind = kind.to_string();
        self
    }

    pub fn store(&self) -> &DeliveryStore {
        &self.store
    }

    /// Rolls back every unfinished deployment whose process has ended: the alias goes back to
    /// the old version and the deployment is recorded `RolledBack`. Returns the ids.
    pub fn recover(&self) -> Result<Vec<String>, String> {
        let rows: Vec<Unfinished> = self.store.db(|c| {
            let mut st = c.prepare(
                "SELECT d.id, d.region, d.function, d.alias, d.from_version, d.owner_pid, d.owner_start
                 FROM deployments d LEFT JOIN deployment_backends b ON b.deployment_id = d.id
                 WHERE d.status NOT IN ('Succeeded', 'RolledBack', 'Failed', 'Unknown') AND COALESCE(b.backend, 'local') = ?1",
            )?;
            let rows = st.query_map([&self.kind], |r| {
                Ok((
                    r.get(0)?,
                    r.get(1)?,
                    r.get(2)?,
                    r.get(3)?,
                    r.get(4)?,
                    r.get(5)?,
                    r.get(6)?,
                ))
            })?;
            rows.collect()
        })?;
        let mut done = Vec::new();
        for (id, region, function, alias, from, pid, start) in rows {
            if crate::journal::owner_alive(pid, start) {
                continue;
            }
            self.control
                .route_alias(&region, &function, &alias, &from, None)
                .map_err(|e| e.to_string())?;
            let reason = "the process running this deployment ended; rolled back when Meridian next ran";
            self.mark_rolled_back(&id, reason)?;
            self.store.event(
                &id,
                self.now(),
                &format!("rolled back: {function}:{alias} -> version {from} ({reason})"),
            )?;
            done.push(id);
        }
        // CodeDeploy's deployments go on without Meridian: one whose follower ended is marked
        // unknown, never moved.
        if self.kind == "aws" {
            let rows: Vec<(String, Option<i64>, Option<i64>)> = self.store.db(|c| {
                let mut st = c.prepare(
                    "SELECT d.id, d.owner_pid, d.owner_start FROM deployments d JOIN deployment_backends b ON b.deployment_id = d.id
                     WHERE d.status NOT IN ('Succeeded', 'RolledBack', 'Failed', 'Unknown') AND b.backend = 'codedeploy'",
                )?;
                let rows = st.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?;
                rows.collect()
            })?;
            for (id, pid, start) in rows {
                if crate::journal::owner_alive(pid, start) {
                    continue;
                }
                let reason = format!(
                    "the process following it ended; CodeDeploy went on with it: `aws deploy get-deployment --deployment-id {id}` says how it ended"
                );
                let at = self.now();
                self.store.db(|c| {
                    c.execute(
                        "UPDATE deployments SET status='Unknown', reason=?2, updated_ms=?3 WHERE id=?1",
                        params![id, reason, at],
                    )
                    .map(|_| ())
                })?;
                self.store.event(&id, at, &format!("no longer followed: {reason}"))?;
            }
        }
        Ok(done)
    }

    /// Records a deployment whose alias was put back outside the state machine as `RolledBack`.
    fn mark_rolled_back(&self, id: &str, reason: &str) -> Result<(), String> {
        let state = DeploymentState::RolledBack {
            reason: reason.to_string(),
        };
        let at = self.now();
        self.store.db(|c| {
            c.execute(
                "UPDATE deployments SET status=?2, reason=?3, percent=0, updated_ms=?4,
                 state=json_set(state, '$.state', json(?5)) WHERE id=?1",
                params![
                    id,
                    state.name(),
                    reason,
                    at,
                    serde_json::to_string(&state).unwrap_or_default()
                ],
            )
            .map(|_| ())
        })
    }

    fn now(&self) -> i64 {
        self.clock.now_millis()
    }

    fn say(&self, run: &Run, line: &str) {
        (run.log)(&format!("[{} {}] {line}", run.d.region, run.id));
        let _ = self.store.event(&run.id, self.now(), line);
    }

    /// Applies an event; its effects join the queue. An event the state does not take (a late
    /// observation, a command that does not fit) is said and ignored.
    fn apply(&self, run: &mut Run, ev: Event, queue: &mut VecDeque<Effect>) {
        match run.dep.apply(ev, self.now()) {
            Ok(effects) => queue.extend(effects),
            Err(e) => self.say(run, &format!("ignored: {e}")),
        }
    }

    fn sample(&self, run: &Run, version: &str, since: i64, now: i64) -> Result<Sample, String> {
        self.sample_of(&run.d.region, &run.d.function, &run.d.alias, version, since, now)
    }

    /// A version's invocations, errors and p99 latency through the alias since `since`.
    fn sample_of(
        &self,
        region: &str,
        function: &str,
        alias: &str,
        version: &str,
        since: i64,
        now: i64,
    ) -> Result<Sample, String> {
        let pts = self
            .control
            .version_metrics(
                region,
                function,
                alias,
                version,
                since,
                now,
                (now - since).max(1000) + 1000,
            )
            .map_err(|e| e.to_string())?;
        let mut s = Sample::default();
        for p in &pts {
            s.invocations += p.invocations;
            s.errors += p.errors;
            s.p99_ms = match (s.p99_ms, p.duration_p99_ms) {
                (Some(a), Some(b)) => Some(a.max(b)),
                (a, b) => a.or(b),
            };
        }
        Ok(s)
    }

    fn perform(&self, run: &mut Run, e: Effect, queue: &mut VecDeque<Effect>) -> Result<(), String> {
        let d = run.d;
        match e {
            // The driver says these itself, with the alarm's reason and the alias's name.
            Effect::Record(line)
                if line.starts_with("alarm ")
                    || line.ends_with("% on the new version")
                    || line.starts_with("verdict: need more data") =>
            {
                let _ = self.store.event(&run.id, self.now(), &line);
            }
            Effect::Record(line) => self.say(run, &line),
            Effect::WakeAt(t) => {
                run.wakes.insert(t);
            }
            Effect::SetWeights { new_version_percent: p } => {
                let r = if p >= 100.0 {
                    self.control
                        .route_alias(&d.region, &d.function, &d.alias, &d.to_version, None)
                } else if p <= 0.0 {
                    self.control
                        .route_alias(&d.region, &d.function, &d.alias, &d.from_version, None)
                } else {
                    self.control.route_alias(
                        &d.region,
                        &d.function,
                        &d.alias,
                        &d.from_version,
                        Some((&d.to_version, p / 100.0)),
                    )
                };
                let ev = match r {
                    Ok(()) => {
                        self.say(
                            run,
                            &format!("{}% of {}:{} on version {}", p, d.function, d.alias, d.to_version),
                        );
                        Event::TrafficShifted { new_version_percent: p }
                    }
                    Err(error) => Event::ShiftFailed {
                        error: error.to_string(),
                    },
                };
                self.apply(run, ev, queue);
            }
            Effect::InvokeHook { hook, function, .. } => {
                let exec = meridian_core::random::alphanumeric(32);
                self.store.register_hook(&exec, &run.id, hook, &function)?;
                let payload = serde_json::json!({"DeploymentId": run.id, "LifecycleEventHookExecutionId": exec});
                let name = match hook {
                    HookKind::PreTraffic => "BeforeAllowTraffic",
                    HookKind::PostTraffic => "AfterAllowTraffic",
                };
                let r = self.control.ensure_hook_endpoint().and_then(|_| {
                    self.control
                        .invoke_event(&d.region, &function, payload.to_string().as_bytes())
                });
                match r {
                    Ok(()) => {
                        self.say(run, &format!("{name} hook {function} invoked (execution {exec})"));
                        run.hook = Some((hook, exec));
                    }
                    Err(err) => {
                        self.say(run, &format!("{name} hook {function} could not be invoked: {err}"));
                        self.apply(run, Event::HookReported { hook, succeeded: false }, queue);
                    }
                }
            }
            Effect::EvaluateHealth { since_ms, step, .. } => {
                let cfg = d.options.judge.unwrap_or_default();
                let now = self.now();
                let baseline = self.sample(run, &d.from_version, since_ms, now)?;
                let canary = self.sample(run, &d.to_version, since_ms, now)?;
                let v = judge(&cfg, &baseline, &canary);
                // "Need more data" repeats while traffic accumulates: say it once per step.
                let kind = format!(
                    "{step}:{}",
                    std::mem::discriminant(&v) == std::mem::discriminant(&Verdict::Pass)
                );
                let repeat = matches!(v, Verdict::NeedMoreData { .. }) && run.last_verdict.as_deref() == Some(&kind);
                run.last_verdict = Some(kind);
                let line = format!(
                    "judge, step {}: {}",
                    step + 1,
                    judgement(&d.to_version, &canary, &d.from_version, &baseline, &v)
                );
                if repeat {
                    let _ = self.store.event(&run.id, now, &line);
                } else {
                    self.say(run, &line);
                }
                self.apply(run, Event::Verdict(v), queue);
            }
            Effect::Rollback => {
                let r = self
                    .control
                    .route_alias(&d.region, &d.function, &d.alias, &d.from_version, None);
                let ev = match r {
                    Ok(()) => {
                        self.say(
                            run,
                            &format!("rolled back: {}:{} -> version {}", d.function, d.alias, d.from_version),
                        );
                        Event::RollbackDone
                    }
                    Err(error) => {
                        self.clock.sleep(Duration::from_millis(500));
                        Event::RollbackFailed {
                            error: error.to_string(),
                        }
                    }
                };
                self.apply(run, ev, queue);
            }
        }
        Ok(())
    }

    /// Looks at hooks, commands, alarms and timers once.
    fn observe(&self, run: &mut Run, queue: &mut VecDeque<Effect>) -> Result<(), String> {
        let d = run.d;
        for cmd in self.store.take_commands(&run.id)? {
            self.say(run, &format!("operator: {}", cmd.verb()));
            let ev = match cmd {
                Command::Promote => Event::Promote,
                Command::Extend { by_ms } => Event::Extend { by_ms },
                Command::Abort => Event::Abort,
            };
            self.apply(run, ev, queue);
        }
        if let Some((hook, exec)) = run.hook.clone() {
            if let Some(status) = self.store.hook_status(&exec)? {
                run.hook = None;
                self.say(run, &format!("hook execution {exec} reported {status}"));
                self.apply(
                    run,
                    Event::HookReported {
                        hook,
                        succeeded: status == "Succeeded",
                    },
                    queue,
                );
            }
        }
        let now = self.now();
        let scale = d.options.time_scale();
        for (name, spec) in run.alarms.clone() {
            let prev = run
                .alarm_states
                .get(&name)
                .copied()
                .unwrap_or(AlarmState::InsufficientData);
            // The region's own evaluation when it has one (CloudWatch on AWS), else the driver's.
            let (state, reason) = match self.control.alarm_state(&d.region, &name).map_err(|e| e.to_string())? {
                Some(s) => s,
                None => {
                    let spec = spec.map_err(|e| format!("alarm {name}: {e}"))?;
                    let function = spec.function_name.clone().unwrap_or_else(|| d.function.clone());
                    let qualifier = spec.executed_version.clone().or(spec.qualifier.clone());
                    let period = spec.period_ms(scale);
                    let window = period * i64::from(spec.evaluation_periods.max(1));
                    // Only what the deployment served counts: earlier periods had another mix of versions.
                    let since = (now - window - period).max(run.started);
                    let pts = self
                        .control
                        .metrics(&d.region, &function, qualifier.as_deref(), since, now, 1000)
                        .map_err(|e| e.to_string())?;
                    let ev = evaluate_with_previous(&spec, &pts, now, scale, prev);
                    (ev.state, ev.reason)
                }
            };
            if state != prev {
                run.alarm_states.insert(name.clone(), state);
                self.say(run, &format!("alarm {name}: {state:?} ({reason})"));
                self.apply(run, Event::AlarmStateChanged { alarm: name, state }, queue);
            }
        }
        let due: Vec<i64> = run.wakes.range(..=now).copied().collect();
        if !due.is_empty() {
            for t in due {
                run.wakes.remove(&t);
            }
            self.apply(run, Event::Timer(now), queue);
        }
        Ok(())
    }

    fn drive(&self, run: &mut Run) -> Result<(), String> {
        let mut queue = VecDeque::new();
        self.apply(run, Event::Start, &mut queue);
        loop {
            while let Some(e) = queue.pop_front() {
                self.perform(run, e, &mut queue)?;
            }
            self.store.save(&run.id, &run.dep, self.now())?;
            if run.dep.is_terminal() {
                break;
            }
            self.clock.sleep(self.tick);
            self.observe(run, &mut queue)?;
        }
        match run.dep.state() {
            DeploymentState::Succeeded { .. } => Ok(()),
            DeploymentState::RolledBack { reason } | DeploymentState::Failed { reason } => Err(format!(
                "deployment {} of {}:{} failed and was rolled back to version {}: {reason}",
                run.id, run.d.function, run.d.alias, run.d.from_version
            )),
            s => Err(format!("deployment {} stopped in state {}", run.id, s.name())),
        }
    }
}

/// `version 2 3/40 errors, p99 12.0 ms; version 1 0/400 errors: fail (...)`
fn judgement(to: &str, canary: &Sample, from: &str, baseline: &Sample, v: &Verdict) -> String {
    let p99 = |s: &Sample| s.p99_ms.map(|p| format!(", p99 {p:.1} ms")).unwrap_or_default();
    format!(
        "version {to} {}/{} errors{}; version {from} {}/{} errors{}: {}",
        canary.errors,
        canary.invocations,
        p99(canary),
        baseline.errors,
        baseline.invocations,
        p99(baseline),
        match v {
            Verdict::Pass => "pass".to_string(),
            Verdict::Fail { reasons } => format!("fail ({})", reasons.join("; ")),
            Verdict::NeedMoreData { reason } => format!("need more data ({reason})"),
        }
    )
}

impl Shifter {
    /// The row of a followed deployment: made, or taken over by this process when a resumed
    /// execution follows it again. An id that another kind of deployment holds is refused.
    fn record_followed(&self, d: &FollowedDeployment, schedule: &str, f: &Follow) -> Result<(), String> {
        let id = d.id.as_str();
        let backend: Option<String> = self.store.db(|c| {
            c.query_row(
                "SELECT backend FROM deployment_backends WHERE deployment_id=?1",
                [id],
                |r| r.get(0),
            )
            .optional()
        })?;
        if self.store.get(id)?.is_some() {
            if backend.as_deref() != Some("codedeploy") {
                return Err(format!("the id {id} is another deployment's"));
            }
            let pid = std::process::id();
            let start = crate::journal::process_start_time(pid).map(|s| s as i64);
            return self.store.db(|c| {
                c.execute(
                    "UPDATE deployments SET owner_pid=?2, owner_start=?3 WHERE id=?1",
                    params![id, pid as i64, start],
                )
                .map(|_| ())
            });
        }
        let state = serde_json::to_string(f).map_err(|e| e.to_string())?;
        self.store
            .insert(id, &NewRow::from(d), schedule, &state, f.state().name(), self.now())?;
        self.store.db(|c| {
            c.execute(
                "INSERT OR REPLACE INTO deployment_backends (deployment_id, backend) VALUES (?1, 'codedeploy')",
                params![id],
            )
            .map(|_| ())
        })
    }

    /// Performs the follower's effects until none is left.
    fn follow_effects(
        &self,
        d: &FollowedDeployment,
        handle: &dyn DeploymentHandle,
        f: &mut Follow,
        effects: Vec<FollowEffect>,
        wakes: &mut BTreeSet<i64>,
        say: &dyn Fn(&str),
    ) {
        let mut queue: VecDeque<FollowEffect> = effects.into();
        while let Some(e) = queue.pop_front() {
            let now = self.now();
            let ev = match e {
                FollowEffect::Record(line) if line.ends_with("% on the new version") => {
                    say(&format!("{line}: {}:{} version {}", d.function, d.alias, d.to_version));
                    continue;
                }
                FollowEffect::Record(line) => {
                    say(&line);
                    continue;
                }
                FollowEffect::WakeAt(t) => {
                    wakes.insert(t);
                    continue;
                }
                FollowEffect::Look => match handle.look() {
                    Ok(look) => FollowEvent::Looked(look),
                    Err(e) => FollowEvent::LookFailed { error: e.to_string() },
                },
                FollowEffect::Judge { since_ms } => {
                    let cfg = d.options.judge.unwrap_or_default();
                    let samples = self
                        .sample_of(&d.region, &d.function, &d.alias, &d.from_version, since_ms, now)
                        .and_then(|b| {
                            let c = self.sample_of(&d.region, &d.function, &d.alias, &d.to_version, since_ms, now)?;
                            Ok((b, c))
                        });
                    let v = match samples {
                        Ok((baseline, canary)) => {
                            let v = judge(&cfg, &baseline, &canary);
                            say(&format!(
                                "judge: {}",
                                judgement(&d.to_version, &canary, &d.from_version, &baseline, &v)
                            ));
                            v
                        }
                        Err(e) => {
                            say(&format!("judge: the metrics could not be read ({e})"));
                            Verdict::NeedMoreData { reason: e }
                        }
                    };
                    FollowEvent::Verdict(v)
                }
                FollowEffect::PutBack => FollowEvent::PutBack(
                    self.control
                        .route_alias(&d.region, &d.function, &d.alias, &d.from_version, None)
                        .map_err(|e| e.to_string()),
                ),
                FollowEffect::Stop { reason } => match handle.stop(&reason) {
                    Ok(()) => FollowEvent::StopAccepted,
                    Err(e) => FollowEvent::StopFailed { error: e.to_string() },
                },
            };
            queue.extend(f.apply(ev, self.now()));
        }
    }
}

impl AliasShifter for Shifter {
    fn follow(&self, d: &FollowedDeployment, handle: &dyn DeploymentHandle, log: &dyn Fn(&str)) -> Result<(), String> {
        let mut f = Follow::new(FollowConfig {
            judge: d.options.judge.is_some(),
            ..FollowConfig::default()
        });
        let schedule = format!("{} (run by CodeDeploy)", d.config_name);
        let id = d.id.as_str();
        // The record is for people: if it cannot be written, the deployment is still followed,
        // judged and stopped, and that is said.
        let recorded = self.record_followed(d, &schedule, &f);
        let say = |line: &str| {
            log(&format!("[{} {id}] {line}", d.region));
            if recorded.is_ok() {
                let _ = self.store.event(id, self.now(), line);
            }
        };
        if let Err(e) = &recorded {
            say(&format!("not recorded in `meridian deployments`: {e}"));
        }
        say(&format!(
            "CodeDeploy deploys {}:{} version {} -> {}: {schedule}{}",
            d.function,
            d.alias,
            d.from_version,
            d.to_version,
            if d.options.judge.is_some() {
                "; Meridian judges the new version and stops the deployment if it fails"
            } else {
                ""
            }
        ));
        let mut wakes = BTreeSet::new();
        let start = f.apply(FollowEvent::Start, self.now());
        self.follow_effects(d, handle, &mut f, start, &mut wakes, &say);
        loop {
            if recorded.is_ok() {
                let reason = f.state().reason().map(String::from);
                let saved = serde_json::to_string(&f).map_err(|e| e.to_string()).and_then(|state| {
                    self.store.update(
                        id,
                        &state,
                        f.status_name(),
                        reason.as_deref(),
                        f.new_version_percent(),
                        self.now(),
                    )
                });
                if let Err(e) = saved {
                    log(&format!("[{} {id}] the record could not be saved: {e}", d.region));
                }
            }
            if f.is_terminal() {
                break;
            }
            if let Some(why) = handle.ended() {
                // The operation that started it is over: one last look says how it ended.
                let last = match handle.look() {
                    Ok(look) => FollowEvent::Looked(look),
                    Err(e) => FollowEvent::LookFailed { error: e.to_string() },
                };
                let effects = f.apply(last, self.now());
                self.follow_effects(d, handle, &mut f, effects, &mut wakes, &say);
                if !f.is_terminal() {
                    let effects = f.apply(FollowEvent::Ended { why }, self.now());
                    self.follow_effects(d, handle, &mut f, effects, &mut wakes, &say);
                }
                continue;
            }
            self.clock.sleep(self.tick);
            let commands = if recorded.is_ok() {
                self.store.take_commands(id).unwrap_or_default()
            } else {
                Vec::new()
            };
            for cmd in commands {
                let ev = match cmd {
                    Command::Promote => FollowEvent::Promote,
                    Command::Extend { .. } => FollowEvent::Extend,
                    Command::Abort => FollowEvent::Abort,
                };
                let effects = f.apply(ev, self.now());
                self.follow_effects(d, handle, &mut f, effects, &mut wakes, &say);
            }
            let now = self.now();
            let due: Vec<i64> = wakes.range(..=now).copied().collect();
            if !due.is_empty() {
                for t in due {
                    wakes.remove(&t);
                }
                let effects = f.apply(FollowEvent::Timer, now);
                self.follow_effects(d, handle, &mut f, effects, &mut wakes, &say);
            }
        }
        // Err only when the new version is not what it should be: CodeDeploy failed it, or the
        // judge or an operator did. Not seeing how it ended leaves the stack's result to speak.
        match f.state() {
            FollowState::Succeeded => Ok(()),
            FollowState::Unknown { reason } => {
                say(&format!(
                    "how it ended is unknown ({reason}): `aws deploy get-deployment --deployment-id {id}` says"
                ));
                Ok(())
            }
            FollowState::RolledBack { reason } => Err(format!(
                "CodeDeploy deployment {id} of {}:{} was rolled back to version {}: {reason}",
                d.function, d.alias, d.from_version
            )),
            FollowState::Failed { reason } | FollowState::Following { stopping: Some(reason) } => Err(format!(
                "CodeDeploy deployment {id} of {}:{}: {reason}",
                d.function, d.alias
            )),
            FollowState::Following { stopping: None } => Ok(()),
        }
    }

    fn shift(&self, d: &AliasDeployment, log: &dyn Fn(&str)) -> Result<(), String> {
        let schedule = schedule_for(d)?;
        let mut alarms = Vec::new();
        for (name, props) in &d.alarms {
            alarms.push((
                name.clone(),
                AlarmSpec::from_properties(props).map_err(|e| e.to_string()),
            ));
        }
        // An alarm the driver would evaluate must be readable before any traffic moves.
        for (name, spec) in &alarms {
            if let Err(e) = spec {
                if self
                    .control
                    .alarm_state(&d.region, name)
                    .map_err(|e| e.to_string())?
                    .is_none()
                {
                    return Err(format!("alarm {name}: {e}"));
                }
            }
        }
        let cfg = DeploymentConfig {
            pre_traffic_hook: d.before_hook.clone(),
            post_traffic_hook: d.after_hook.clone(),
            time_scale: d.options.time_scale(),
            judge: d.options.judge.map(|_| JudgePolicy {
                // Ask again soon: traffic is synthetic or light, and scaled time is short.
                recheck_ms: 30_000,
                ..JudgePolicy::default()
            }),
            ..DeploymentConfig::new(&d.function, &d.alias, schedule.clone())
        };
        let dep = Deployment::new(cfg).map_err(|e| e.to_string())?;
        let id = format!("d-{}", meridian_core::random::alphanumeric(9));
        let described = describe_schedule(&schedule);
        let started = self.now();
        self.store.create(&id, d, &described, &dep, started)?;
        self.store.db(|c| {
            c.execute(
                "INSERT OR REPLACE INTO deployment_backends (deployment_id, backend) VALUES (?1, ?2)",
                params![id, self.kind],
            )
            .map(|_| ())
        })?;
        let mut run = Run {
            id,
            d,
            dep,
            alarms,
            alarm_states: BTreeMap::new(),
            wakes: BTreeSet::new(),
            hook: None,
            last_verdict: None,
            started,
            log,
        };
        self.say(
            &run,
            &format!(
                "deploying {}:{} version {} -> {}: {described}{}",
                d.function,
                d.alias,
                d.from_version,
                d.to_version,
                if d.options.time_scale() != 1.0 {
                    format!(" (time scale {})", d.options.time_scale())
                } else {
                    String::new()
                }
            ),
        );
        let target = format!("{}:{}", d.function, d.alias);
        // Traffic through an API route: one request first, on the old version still, so that a
        // route that does not reach the alias fails the deployment before anything moves.
        let probe = match d
            .options
            .traffic
            .as_ref()
            .and_then(|t| t.route.as_deref().map(|r| (t, r)))
        {
            Some((t, route)) => {
                let payload = t.payloads.first().map(|p| p.as_bytes()).unwrap_or(b"{}");
                self.control
                    .api_request(&d.region, &target, route, payload)
                    .map(|_| ())
                    .map_err(|e| format!("synthetic traffic through `{route}`: {e}"))
            }
            None => Ok(()),
        };
        let traffic = d.options.traffic.as_ref().filter(|_| probe.is_ok()).map(|t| {
            let to = match &t.route {
                Some(route) => format!("`{route}` of the API in front of {target}"),
                None => target.clone(),
            };
            let unit = if t.route.is_some() { "requests" } else { "invocations" };
            self.say(&run, &format!("synthetic traffic: {} {unit}/s to {to}", t.rate));
            Traffic::start(
                self.control.clone(),
                &d.region,
                &target,
                t.rate,
                &t.payloads,
                t.route.as_deref(),
            )
        });
        let r = probe.and_then(|_| self.drive(&mut run));
        drop(traffic);
        if let Err(e) = &r {
            // Whatever went wrong, the alias must not stay mixed.
            if !run.dep.is_terminal() {
                let _ = self
                    .control
                    .route_alias(&d.region, &d.function, &d.alias, &d.from_version, None);
                let _ = self.mark_rolled_back(&run.id, e);
                let _ = self.store.event(
                    &run.id,
                    self.now(),
                    &format!(
                        "stopped: {e}; {}:{} put back on version {}",
                        d.function, d.alias, d.from_version
                    ),
                );
            }
        }
        r
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stacks::DeliveryOptions;
    use meridian_delivery::alarm::MetricPoint;
    use meridian_region::RegionError;
    use std::sync::atomic::AtomicUsize;

    /// An honest in-memory region: one alias, whose routing calls fail at chosen calls, and
    /// whose versions served `(invocations, errors)` each time its metrics are read.
    struct Region {
        routing: Mutex<(String, Option<(String, f64)>)>,
        calls: AtomicUsize,
        fail: Vec<usize>,
        served: BTreeMap<String, (u64, u64)>,
    }

    impl FunctionControl for Region {
        fn route_alias(
            &self,
            _: &str,
            _: &str,
            _: &str,
            v: &str,
            extra: Option<(&str, f64)>,
        ) -> Result<(), RegionError> {
            if self.fail.contains(&self.calls.fetch_add(1, Ordering::SeqCst)) {
                return Err(RegionError::permanent("injected failure"));
            }
            *self.routing.lock().unwrap() = (v.to_string(), extra.map(|(x, w)| (x.to_string(), w)));
            Ok(())
        }
        fn invoke_event(&self, _: &str, _: &str, _: &[u8]) -> Result<(), RegionError> {
            Ok(())
        }
        fn invoke(&self, _: &str, _: &str, _: &[u8]) -> Result<bool, RegionError> {
            Ok(true)
        }
        fn metrics(
            &self,
            _: &str,
            _: &str,
            version: Option<&str>,
            since: i64,
            _: i64,
            _: i64,
        ) -> Result<Vec<MetricPoint>, RegionError> {
            Ok(match self.served.get(version.unwrap_or_default()) {
                Some(&(invocations, errors)) => vec![MetricPoint {
                    start_ms: since,
                    period_ms: 60_000,
                    invocations,
                    errors,
                    ..MetricPoint::default()
                }],
                None => Vec::new(),
            })
        }
    }

    use meridian_delivery::follow::{Look, RemoteStatus};

    /// A deployment run by another system, as scripted: each look takes the next answer (the
    /// last one repeats); a stop is recorded and turns the looks to `Stopped`; `ended` after
    /// that many looks.
    struct Script {
        looks: Mutex<VecDeque<Result<Look, RegionError>>>,
        last: Mutex<Look>,
        stops: Mutex<Vec<String>>,
        looked: AtomicUsize,
        ended_after: Option<usize>,
        /// `StopDeployment` refused (the deployment is finishing).
        refuse_stop: bool,
    }

    impl Script {
        fn new(looks: Vec<Result<Look, RegionError>>, ended_after: Option<usize>) -> Script {
            Script {
                looks: Mutex::new(looks.into()),
                last: Mutex::new(Look::default()),
                stops: Mutex::new(Vec::new()),
                looked: AtomicUsize::new(0),
                ended_after,
                refuse_stop: false,
            }
        }
    }

    impl DeploymentHandle for Script {
        fn look(&self) -> Result<Look, RegionError> {
            self.looked.fetch_add(1, Ordering::SeqCst);
            if !self.stops.lock().unwrap().is_empty() {
                return Ok(Look {
                    status: RemoteStatus::Stopped,
                    new_version_percent: Some(0.0),
                    message: Some("The deployment was stopped by the user".into()),
                    ..Look::default()
                });
            }
            match self.looks.lock().unwrap().pop_front() {
                Some(Ok(l)) => {
                    *self.last.lock().unwrap() = l.clone();
                    Ok(l)
                }
                Some(Err(e)) => Err(e),
                None => Ok(self.last.lock().unwrap().clone()),
            }
        }
        fn stop(&self, reason: &str) -> Result<(), RegionError> {
            if self.refuse_stop {
                return Err(RegionError::permanent("DeploymentAlreadyCompletedException"));
            }
            self.stops.lock().unwrap().push(reason.to_string());
            Ok(())
        }
        fn ended(&self) -> Option<String> {
            self.ended_after
                .filter(|n| self.looked.load(Ordering::SeqCst) >= *n)
                .map(|_| "the stack update ended".to_string())
        }
    }

    fn at(status: RemoteStatus, p: f64) -> Result<Look, RegionError> {
        Ok(Look {
            status,
            new_version_percent: Some(p),
            ..Look::default()
        })
    }

    fn followed(judge: bool) -> FollowedDeployment {
        FollowedDeployment {
            region: "eu-west-1".into(),
            stack_name: "app".into(),
            id: "d-ABCDEF123".into(),
            function: "app-Fn-1".into(),
            alias: "live".into(),
            from_version: "1".into(),
            to_version: "2".into(),
            config_name: "CodeDeployDefault.LambdaCanary10Percent5Minutes".into(),
            options: DeliveryOptions {
                judge: judge.then(meridian_delivery::judge::JudgeConfig::default),
                pipeline: Some("hello".into()),
                execution_id: Some("e-1".into()),
                ..Default::default()
            },
        }
    }

    fn follower(served: &[(&str, u64, u64)]) -> (Shifter, tempfile::TempDir, Arc<meridian_core::ManualClock>) {
        let dir = tempfile::tempdir().unwrap();
        let clock = Arc::new(meridian_core::ManualClock::new(1_000_000));
        let region = Region {
            routing: Mutex::new(("1".into(), None)),
            calls: AtomicUsize::new(0),
            fail: Vec::new(),
            served: served.iter().map(|(v, i, e)| (v.to_string(), (*i, *e))).collect(),
        };
        let shifter = Shifter::new(Arc::new(region), DeliveryStore::open(dir.path()).unwrap())
            .with_clock(clock.clone(), Duration::from_millis(500))
            .for_backend("aws");
        (shifter, dir, clock)
    }

    #[test]
    fn a_codedeploy_deployment_is_followed_to_its_end_and_recorded_under_its_own_id() {
        let (shifter, _dir, _clock) = follower(&[]);
        let mut hooks = BTreeMap::new();
        hooks.insert("BeforeAllowTraffic".to_string(), "Succeeded".to_string());
        let script = Script::new(
            vec![
                at(RemoteStatus::Created, 0.0),
                Ok(Look {
                    status: RemoteStatus::InProgress,
                    new_version_percent: Some(10.0),
                    hooks,
                    message: None,
                }),
                Err(RegionError::new(meridian_region::ErrorKind::Throttled, "Rate exceeded")),
                at(RemoteStatus::InProgress, 10.0),
                at(RemoteStatus::Succeeded, 100.0),
            ],
            None,
        );
        let lines = Mutex::new(Vec::new());
        let r = shifter.follow(&followed(false), &script, &|l| {
            lines.lock().unwrap().push(l.to_string())
        });
        assert_eq!(r, Ok(()));
        let row = shifter.store().get("d-ABCDEF123").unwrap().unwrap();
        assert_eq!(row.status, "Succeeded");
        assert_eq!(row.new_version_percent, 100.0);
        assert_eq!(
            row.schedule,
            "CodeDeployDefault.LambdaCanary10Percent5Minutes (run by CodeDeploy)"
        );
        assert_eq!(
            (row.pipeline.as_deref(), row.execution_id.as_deref()),
            (Some("hello"), Some("e-1"))
        );
        let said = lines.into_inner().unwrap().join("\n");
        for want in [
            "[eu-west-1 d-ABCDEF123] CodeDeploy deploys app-Fn-1:live version 1 -> 2",
            "CodeDeploy: InProgress",
            "BeforeAllowTraffic hook: Succeeded",
            "10% on the new version: app-Fn-1:live version 2",
            "could not look at the deployment: Rate exceeded",
            "CodeDeploy: Succeeded",
        ] {
            assert!(said.contains(want), "{want} not in:\n{said}");
        }
        assert!(script.stops.lock().unwrap().is_empty());
    }

    #[test]
    fn a_failing_verdict_stops_the_codedeploy_deployment() {
        // The new version fails 30 of 100 calls, the old one none of 1000.
        let (shifter, _dir, _clock) = follower(&[("1", 1000, 0), ("2", 100, 30)]);
        let script = Script::new(vec![at(RemoteStatus::InProgress, 10.0)], None);
        let lines = Mutex::new(Vec::new());
        let r = shifter.follow(&followed(true), &script, &|l| lines.lock().unwrap().push(l.to_string()));
        let e = r.unwrap_err();
        assert!(
            e.contains("rolled back to version 1") && e.contains("the judge failed the new version"),
            "{e}"
        );
        let stops = script.stops.lock().unwrap().clone();
        assert_eq!(stops.len(), 1, "{stops:?}");
        assert!(stops[0].contains("the judge failed"), "{stops:?}");
        let row = shifter.store().get("d-ABCDEF123").unwrap().unwrap();
        assert_eq!((row.status.as_str(), row.new_version_percent), ("RolledBack", 0.0));
        let said = lines.into_inner().unwrap().join("\n");
        assert!(
            said.contains("judge: version 2 30/100 errors; version 1 0/1000 errors: fail"),
            "{said}"
        );
    }

    #[test]
    fn without_a_judge_config_nothing_is_judged_and_a_healthy_judge_lets_it_finish() {
        for judge in [false, true] {
            let (shifter, _dir, _clock) = follower(&[("1", 1000, 0), ("2", 1000, 0)]);
            let mut looks = vec![at(RemoteStatus::InProgress, 10.0); 40];
            looks.push(at(RemoteStatus::Succeeded, 100.0));
            let script = Script::new(looks, None);
            let lines = Mutex::new(Vec::new());
            let r = shifter.follow(&followed(judge), &script, &|l| {
                lines.lock().unwrap().push(l.to_string())
            });
            assert_eq!(r, Ok(()));
            let said = lines.into_inner().unwrap().join("\n");
            assert_eq!(
                said.contains("judge: version 2 0/1000 errors; version 1 0/1000 errors: pass"),
                judge,
                "{said}"
            );
        }
    }

    #[test]
    fn an_operator_abort_stops_the_codedeploy_deployment_and_promote_is_refused() {
        let (shifter, _dir, _clock) = follower(&[]);
        let store = shifter.store().clone();
        let script = Script::new(vec![at(RemoteStatus::InProgress, 10.0)], None);
        let lines = Mutex::new(Vec::new());
        let r = std::thread::scope(|s| {
            let t = s.spawn(|| {
                shifter.follow(&followed(false), &script, &|l| {
                    lines.lock().unwrap().push(l.to_string())
                })
            });
            while store
                .get("d-ABCDEF123")
                .unwrap()
                .is_none_or(|r| r.new_version_percent < 10.0)
            {
                std::thread::sleep(Duration::from_millis(1));
            }
            let refused = store.command("d-ABCDEF123", &Command::Promote).unwrap_err();
            assert!(
                refused.contains("run by CodeDeploy, by its own configuration (CodeDeployDefault.LambdaCanary10Percent5Minutes): it cannot promote"),
                "{refused}"
            );
            store.command("d-ABCDEF123", &Command::Abort).unwrap();
            t.join().unwrap()
        });
        assert!(r.unwrap_err().contains("the operator aborted it"));
        let said = lines.into_inner().unwrap().join("\n");
        assert!(said.contains("operator: abort"), "{said}");
        assert_eq!(script.stops.lock().unwrap().len(), 1);
        assert_eq!(store.get("d-ABCDEF123").unwrap().unwrap().status, "RolledBack");
    }

    #[test]
    fn a_deployment_still_unfinished_when_its_stack_operation_ends_is_recorded_unknown() {
        let (shifter, _dir, _clock) = follower(&[]);
        let script = Script::new(vec![at(RemoteStatus::Created, 0.0)], Some(3));
        let r = shifter.follow(&followed(false), &script, &|_| {});
        assert_eq!(r, Ok(()));
        let row = shifter.store().get("d-ABCDEF123").unwrap().unwrap();
        assert_eq!(row.status, "Unknown");
        assert!(row
            .reason
            .as_deref()
            .unwrap()
            .contains("while CodeDeploy still said Created"));
        assert!(row.is_over());
        // Over: no command is taken.
        assert!(shifter.store().command("d-ABCDEF123", &Command::Abort).is_err());
    }

    #[test]
    fn a_deployment_that_finishes_before_it_can_be_stopped_has_its_alias_put_back() {
        let dir = tempfile::tempdir().unwrap();
        let region = Arc::new(Region {
            routing: Mutex::new(("2".into(), None)),
            calls: AtomicUsize::new(0),
            fail: Vec::new(),
            served: BTreeMap::new(),
        });
        let clock = Arc::new(meridian_core::ManualClock::new(1_000_000));
        let shifter = Shifter::new(region.clone(), DeliveryStore::open(dir.path()).unwrap())
            .with_clock(clock, Duration::from_millis(500))
            .for_backend("aws");
        let store = shifter.store().clone();
        let mut looks = vec![at(RemoteStatus::InProgress, 10.0); 3];
        looks.push(at(RemoteStatus::Succeeded, 100.0));
        let mut script = Script::new(looks, None);
        script.refuse_stop = true;
        // The operator aborts before the first look.
        let r = std::thread::scope(|s| {
            let t = s.spawn(|| shifter.follow(&followed(false), &script, &|_| {}));
            while store.get("d-ABCDEF123").unwrap().is_none() {
                std::thread::sleep(Duration::from_millis(1));
            }
            store.command("d-ABCDEF123", &Command::Abort).unwrap();
            t.join().unwrap()
        });
        let e = r.unwrap_err();
        assert!(
            e.contains("the operator aborted it; CodeDeploy had finished the deployment before it could be stopped; the alias is back on the old version"),
            "{e}"
        );
        assert_eq!(*region.routing.lock().unwrap(), ("1".to_string(), None));
        let row = store.get("d-ABCDEF123").unwrap().unwrap();
        assert_eq!((row.status.as_str(), row.new_version_percent), ("Failed", 0.0));
    }

    #[test]
    fn a_followed_deployment_whose_follower_died_is_marked_unknown_and_its_alias_left_to_codedeploy() {
        let (shifter, _dir, _clock) = follower(&[]);
        let script = Script::new(vec![at(RemoteStatus::InProgress, 10.0)], Some(2));
        shifter.follow(&followed(false), &script, &|_| {}).unwrap();
        // As if the process following it had been killed mid-way.
        shifter
            .store()
            .db(|c| {
                c.execute(
                    "UPDATE deployments SET status='InProgress', reason=NULL, owner_pid=999999999, owner_start=1 WHERE id='d-ABCDEF123'",
                    [],
                )
            })
            .unwrap();
        // Local regions' recovery does not touch it; AWS's marks it, and moves no alias.
        let region = Arc::new(Region {
            routing: Mutex::new(("1".into(), Some(("2".into(), 0.1)))),
            calls: AtomicUsize::new(0),
            fail: Vec::new(),
            served: BTreeMap::new(),
        });
        let local = Shifter::new(region.clone(), shifter.store().clone());
        assert_eq!(local.recover().unwrap(), Vec::<String>::new());
        assert_eq!(
            shifter.store().get("d-ABCDEF123").unwrap().unwrap().status,
            "InProgress"
        );
        let aws = Shifter::new(region.clone(), shifter.store().clone()).for_backend("aws");
        assert_eq!(aws.recover().unwrap(), Vec::<String>::new());
        assert_eq!(
            region.calls.load(Ordering::SeqCst),
            0,
            "CodeDeploy's alias is not moved"
        );
        let row = shifter.store().get("d-ABCDEF123").unwrap().unwrap();
        assert_eq!(row.status, "Unknown");
        assert!(
            row.reason
                .as_deref()
                .unwrap_or_default()
                .contains("aws deploy get-deployment --deployment-id d-ABCDEF123"),
            "{row:?}"
        );
    }

    fn deployment() -> AliasDeployment {
        AliasDeployment {
            region: "us-east-1".into(),
            stack_name: "app".into(),
            function: "f".into(),
            alias: "live".into(),
            from_version: "1".into(),
            to_version: "2".into(),
            deployment_group: serde_json::Value::Null,
            deployment_config: None,
            alarms: BTreeMap::new(),
            before_hook: None,
            after_hook: None,
            options: DeliveryOptions {
                preference: Some("10%:1m,50%:1m,100%".into()),
                time_scale: 60_000.0,
                ..Default::default()
            },
        }
    }

    #[test]
    fn a_failure_at_every_routing_call_ends_fully_old_or_fully_new_and_recorded() {
        // Calls: 10%, 50%, 100%, then the rollback's. Fail each shift in turn, alone or with the
        // rollback after it (which is retried), and nothing.
        let cases: [&[usize]; 7] = [&[0], &[1], &[2], &[0, 1], &[1, 2], &[2, 3, 4], &[]];
        for fail in cases {
            let fail_at = fail.to_vec();
            let dir = tempfile::tempdir().unwrap();
            let region = Arc::new(Region {
                routing: Mutex::new(("1".into(), None)),
                calls: AtomicUsize::new(0),
                fail: fail.to_vec(),
                served: BTreeMap::new(),
            });
            let shifter = Shifter::new(region.clone(), DeliveryStore::open(dir.path()).unwrap());
            let result = shifter.shift(&deployment(), &|_| {});
            let routing = region.routing.lock().unwrap().clone();
            let row = shifter.store().list().unwrap().pop().unwrap();
            match &result {
                Ok(()) => {
                    assert_eq!(routing, ("2".into(), None), "fail_at {fail_at:?}");
                    assert_eq!(row.status, "Succeeded");
                    assert_eq!(row.new_version_percent, 100.0);
                }
                Err(e) => {
                    assert_eq!(routing, ("1".into(), None), "fail_at {fail_at:?}: {e}");
                    assert!(matches!(row.status.as_str(), "RolledBack" | "Failed"), "{row:?}");
                    assert_eq!(row.new_version_percent, 0.0);
                    assert!(e.contains("injected failure"), "{e}");
                }
            }
            // Any failed shift fails the deployment; a failed rollback is retried until it works.
            assert_eq!(result.is_ok(), fail.is_empty(), "fail_at {fail_at:?}: {result:?}");
        }
    }
}
