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
use meridian_delivery::judge::{judge, Sample, Verdict};
use meridian_delivery::schedule::TrafficSchedule;
use meridian_region::stacks::{AliasDeployment, AliasShifter};
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
        let pid = std::process::id();
        let start = crate::journal::process_start_time(pid).map(|s| s as i64);
        self.db(|c| {
            c.execute(
                "INSERT INTO deployments (id, region, stack, function, alias, from_version, to_version, pipeline, execution_id, schedule, state, status, reason, percent, owner_pid, owner_start, started_ms, updated_ms)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, NULL, 0, ?13, ?14, ?15, ?15)",
                params![
                    id,
                    d.region,
                    d.stack_name,
                    d.function,
                    d.alias,
                    d.from_version,
                    d.to_version,
                    d.options.pipeline,
                    d.options.execution_id,
                    schedule,
                    state,
                    dep.state().name(),
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
            | DeploymentState::Failed { reason } => Some(reason.clone()),
            _ => None,
        };
        self.db(|c| {
            c.execute(
                "UPDATE deployments SET state=?2, status=?3, reason=?4, percent=?5, updated_ms=?6 WHERE id=?1",
                params![id, state, dep.state().name(), reason, dep.new_version_percent(), at],
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
        if matches!(row.status.as_str(), "Succeeded" | "RolledBack" | "Failed") {
            return Err(format!(
                "deployment {id} is over ({}): nothing to {}",
                row.status,
                cmd.verb()
            ));
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
                 WHERE d.status NOT IN ('Succeeded', 'RolledBack', 'Failed') AND COALESCE(b.backend, 'local') = ?1",
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
        let d = run.d;
        let pts = self
            .control
            .metrics(
                &d.region,
                &d.function,
                Some(version),
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
                let p99 = |s: &Sample| s.p99_ms.map(|p| format!(", p99 {p:.1} ms")).unwrap_or_default();
                let line = format!(
                    "judge, step {}: version {} {}/{} errors{}; version {} {}/{} errors{}: {}",
                    step + 1,
                    d.to_version,
                    canary.errors,
                    canary.invocations,
                    p99(&canary),
                    d.from_version,
                    baseline.errors,
                    baseline.invocations,
                    p99(&baseline),
                    match &v {
                        Verdict::Pass => "pass".to_string(),
                        Verdict::Fail { reasons } => format!("fail ({})", reasons.join("; ")),
                        Verdict::NeedMoreData { reason } => format!("need more data ({reason})"),
                    }
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

impl AliasShifter for Shifter {
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

    /// An honest in-memory region: one alias, whose routing calls fail at chosen calls.
    struct Region {
        routing: Mutex<(String, Option<(String, f64)>)>,
        calls: AtomicUsize,
        fail: Vec<usize>,
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
            _: Option<&str>,
            _: i64,
            _: i64,
            _: i64,
        ) -> Result<Vec<MetricPoint>, RegionError> {
            Ok(Vec::new())
        }
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
