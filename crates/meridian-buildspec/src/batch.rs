//! Batch builds (`batch:` in a buildspec), as CodeBuild runs them: a `build-list` or an expanded
//! `build-matrix` runs its builds side by side, at most as many at once as the machine has cores;
//! a `build-graph` runs each build once the builds it `depend-on` have succeeded. Each build has
//! its own working directory, variables (`CODEBUILD_BATCH_BUILD_IDENTIFIER` among them) and log,
//! and may name its own buildspec. The batch fails when a build without `ignore-failure` fails;
//! with `fast-fail`, the builds still running are stopped and no other starts.

use crate::runner::{new_uuid, run_build, BuildContext, BuildError, BuildOutcome, EnvVar, Status};
use crate::spec::BuildSpec;
use serde::Serialize;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

/// The most builds a batch may hold (CodeBuild's default `maximum-builds-allowed`).
pub const MAX_BATCH_BUILDS: usize = 100;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum BatchKind {
    BuildList,
    BuildMatrix,
    BuildGraph,
}

impl BatchKind {
    pub fn key(self) -> &'static str {
        match self {
            BatchKind::BuildList => "build-list",
            BatchKind::BuildMatrix => "build-matrix",
            BatchKind::BuildGraph => "build-graph",
        }
    }
}

/// A buildspec's `batch` section, with a matrix expanded into its builds.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Batch {
    pub kind: BatchKind,
    pub fast_fail: bool,
    pub builds: Vec<BatchBuild>,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct BatchBuild {
    pub identifier: String,
    /// A buildspec of its own, a path in the source (else the batch's buildspec, its phases).
    pub buildspec: Option<String>,
    /// `env.variables`: they override the buildspec's and the project's.
    pub variables: Vec<(String, String)>,
    /// `depend-on` (build-graph only).
    pub depend_on: Vec<String>,
    pub ignore_failure: bool,
}

/// `[A-Za-z0-9_]+`: what CodeBuild takes as a batch build's identifier.
pub fn valid_identifier(s: &str) -> bool {
    !s.is_empty() && s.len() <= 127 && s.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// How each build of a batch ended.
#[derive(Debug, Serialize)]
pub struct BatchBuildOutcome {
    pub identifier: String,
    /// `None` when the build never started (a dependency failed, or fast-fail stopped the batch).
    pub status: Option<Status>,
    pub ignore_failure: bool,
    /// Why it did not run, or could not.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub outcome: Option<BuildOutcome>,
}

impl BatchBuildOutcome {
    /// Does this build fail the batch?
    pub fn fails_batch(&self) -> bool {
        !self.ignore_failure && self.status != Some(Status::Succeeded)
    }
}

#[derive(Debug, Serialize)]
pub struct BatchOutcome {
    pub status: Status,
    pub kind: BatchKind,
    pub builds: Vec<BatchBuildOutcome>,
    pub duration_ms: u64,
}

impl BatchOutcome {
    pub fn succeeded(&self) -> bool {
        self.status == Status::Succeeded
    }
}

/// The builds at most running at once: the machine's cores.
pub fn default_parallelism() -> usize {
    std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1)
}

/// Runs the batch of `spec` (which must have one): each build in `<work_dir>/<identifier>`,
/// at most `parallel` at once.
pub fn run_batch(spec: &BuildSpec, ctx: &BuildContext, parallel: usize) -> Result<BatchOutcome, BuildError> {
    let Some(batch) = &spec.batch else {
        return Err(BuildError::NoBatch);
    };
    let started = Instant::now();
    std::fs::create_dir_all(&ctx.work_dir).map_err(|source| BuildError::Io {
        action: "create",
        path: ctx.work_dir.clone(),
        source,
    })?;
    let own = BuildSpec {
        batch: None,
        ..spec.clone()
    };
    let n = batch.builds.len();
    let stop = ctx.stop.clone().unwrap_or_else(|| Arc::new(AtomicBool::new(false)));
    // per build: None = waiting, Some(outcome) = done (run or skipped)
    let results: Mutex<Vec<Option<BatchBuildOutcome>>> = Mutex::new((0..n).map(|_| None).collect());
    let running: Mutex<Vec<bool>> = Mutex::new(vec![false; n]);
    let wake = std::sync::Condvar::new();
    let failed_fast = AtomicBool::new(false);

    // The next build that may start: all its dependencies succeeded. Builds whose dependencies
    // failed (or that fast-fail stops) are recorded as not run.
    let next = |results: &mut Vec<Option<BatchBuildOutcome>>, running: &mut Vec<bool>| -> Option<usize> {
        loop {
            let mut progressed = false;
            for i in 0..n {
                if results[i].is_some() || running[i] {
                    continue;
                }
                let b = &batch.builds[i];
                let skip = if failed_fast.load(Ordering::SeqCst) || stop.load(Ordering::SeqCst) {
                    Some("the batch failed fast, or was stopped, before it started".to_string())
                } else {
                    b.depend_on.iter().find_map(|d| {
                        let j = batch.builds.iter().position(|x| &x.identifier == d)?;
                        match &results[j] {
                            Some(r) if r.status != Some(Status::Succeeded) => {
                                Some(format!("the build `{d}` it depends on did not succeed"))
                            }
                            _ => None,
                        }
                    })
                };
                if let Some(reason) = skip {
                    results[i] = Some(BatchBuildOutcome {
                        identifier: b.identifier.clone(),
                        status: None,
                        ignore_failure: b.ignore_failure,
                        reason: Some(reason),
                        outcome: None,
                    });
                    progressed = true;
                    continue;
                }
                let ready = b.depend_on.iter().all(|d| {
                    batch
                        .builds
                        .iter()
                        .position(|x| &x.identifier == d)
                        .is_some_and(|j| results[j].as_ref().is_some_and(|r| r.status == Some(Status::Succeeded)))
                });
                if ready {
                    running[i] = true;
                    return Some(i);
                }
            }
            if !progressed {
                return None;
            }
        }
    };

    std::thread::scope(|scope| {
        for _ in 0..parallel.clamp(1, n.max(1)) {
            scope.spawn(|| loop {
                let i = {
                    let mut r = results.lock().unwrap_or_else(|e| e.into_inner());
                    let mut run = running.lock().unwrap_or_else(|e| e.into_inner());
                    loop {
                        if let Some(i) = next(&mut r, &mut run) {
                            break Some(i);
                        }
                        // nothing can start: done when nothing runs either
                        if !run.iter().enumerate().any(|(i, on)| *on && r[i].is_none()) {
                            break None;
                        }
                        drop(run);
                        r = wake.wait(r).unwrap_or_else(|e| e.into_inner());
                        run = running.lock().unwrap_or_else(|e| e.into_inner());
                    }
                };
                let Some(i) = i else {
                    wake.notify_all();
                    return;
                };
                let b = &batch.builds[i];
                let outcome = run_one(&own, b, ctx, &stop);
                if outcome.fails_batch() && batch.fast_fail {
                    failed_fast.store(true, Ordering::SeqCst);
                    stop.store(true, Ordering::SeqCst);
                }
                let mut r = results.lock().unwrap_or_else(|e| e.into_inner());
                r[i] = Some(outcome);
                drop(r);
                wake.notify_all();
            });
        }
    });
    let builds: Vec<BatchBuildOutcome> = results
        .into_inner()
        .unwrap_or_else(|e| e.into_inner())
        .into_iter()
        .zip(&batch.builds)
        .map(|(r, b)| {
            r.unwrap_or(BatchBuildOutcome {
                identifier: b.identifier.clone(),
                status: None,
                ignore_failure: b.ignore_failure,
                reason: Some("never started".into()),
                outcome: None,
            })
        })
        .collect();
    let status = if stop.load(Ordering::SeqCst) && !failed_fast.load(Ordering::SeqCst) {
        Status::Stopped
    } else if builds.iter().any(BatchBuildOutcome::fails_batch) {
        Status::Failed
    } else {
        Status::Succeeded
    };
    Ok(BatchOutcome {
        status,
        kind: batch.kind,
        builds,
        duration_ms: started.elapsed().as_millis() as u64,
    })
}

/// One build of a batch: its buildspec, its own directory, variables and log.
fn run_one(own: &BuildSpec, b: &BatchBuild, ctx: &BuildContext, stop: &Arc<AtomicBool>) -> BatchBuildOutcome {
    let fail = |reason: String| BatchBuildOutcome {
        identifier: b.identifier.clone(),
        status: Some(Status::Failed),
        ignore_failure: b.ignore_failure,
        reason: Some(reason),
        outcome: None,
    };
    let spec = match &b.buildspec {
        None => own.clone(),
        Some(rel) => {
            let path: PathBuf = match meridian_core::path::confine(&ctx.source_dir, rel) {
                Ok(_) => ctx.source_dir.join(rel),
                Err(e) => return fail(format!("its buildspec `{rel}` is not inside the source: {e}")),
            };
            match crate::spec::parse_file(&path) {
                Ok(p) => match p.spec.clone().filter(|_| !p.has_errors()) {
                    Some(s) if s.batch.is_none() => s,
                    Some(_) => return fail(format!("its buildspec `{rel}` has a `batch` of its own")),
                    None => {
                        return fail(format!(
                            "its buildspec `{rel}` is invalid:\n{}",
                            p.render_diagnostics(false)
                        ))
                    }
                },
                Err(e) => return fail(format!("cannot read its buildspec `{rel}`: {e}")),
            }
        }
    };
    let mut c = ctx.clone();
    c.work_dir = ctx.work_dir.join(&b.identifier);
    c.build_id = format!("{}:{}", ctx.project, new_uuid());
    c.log_file = None;
    c.stop = Some(stop.clone());
    c.env
        .push(EnvVar::plain("CODEBUILD_BATCH_BUILD_IDENTIFIER", &b.identifier));
    c.env.extend(b.variables.iter().map(|(k, v)| EnvVar::plain(k, v)));
    if let Some(sink) = &ctx.on_log {
        let sink = sink.clone();
        let id = b.identifier.clone();
        c.on_log = Some(Arc::new(move |line: &str| sink(&format!("[{id}] {line}"))));
    }
    match run_build(&spec, &c) {
        Ok(outcome) => BatchBuildOutcome {
            identifier: b.identifier.clone(),
            status: Some(outcome.status),
            ignore_failure: b.ignore_failure,
            reason: None,
            outcome: Some(outcome),
        },
        Err(e) => fail(format!("it could not run: {e}")),
    }
}
