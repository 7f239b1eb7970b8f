//! Running a buildspec as CodeBuild does, on this machine, without Docker.
//!
//! A build gets a fresh working directory (a copy of its sources), one shell for all its commands
//! (a new one per command for version 0.1), CodeBuild's variables, its phases in order with
//! CodeBuild's rules for what runs after a failure, a timeout that kills the whole process tree,
//! secret values masked in every log line, and then its reports, artifacts and cache.

use crate::artifacts;
use crate::files::{copy_tree, copy_tree_except, glob_match};
use crate::reports::{self, Counts};
use crate::secrets::{Kind, SecretStore};
use crate::shell::{quote, Ran, Shell};
use crate::spec::{BuildSpec, OnFailure, PhaseName, ReportFormat, SecretRef, SpecVersion};
use serde::Serialize;
use std::collections::BTreeMap;
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Where a variable given by the project or the build's start comes from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EnvKind {
    Plaintext,
    /// The value is a parameter name in the region's parameter store.
    ParameterStore,
    /// The value is a `secret-id:json-key:version-stage:version-id` reference.
    SecretsManager,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EnvVar {
    pub name: String,
    pub value: String,
    pub kind: EnvKind,
}

impl EnvVar {
    pub fn plain(name: impl Into<String>, value: impl Into<String>) -> EnvVar {
        EnvVar {
            name: name.into(),
            value: value.into(),
            kind: EnvKind::Plaintext,
        }
    }
}

/// A live log sink: called with every (masked) log line as it is produced.
pub type LogSink = Arc<dyn Fn(&str) + Send + Sync>;

/// Everything a build needs besides its buildspec.
#[derive(Clone)]
pub struct BuildContext {
    /// The build project's name (in `CODEBUILD_BUILD_ID`, `CODEBUILD_BUILD_ARN`).
    pub project: String,
    /// `project:uuid`, as CodeBuild's build ids.
    pub build_id: String,
    pub build_number: u64,
    pub region: String,
    pub account_id: String,
    /// The primary source; it is copied, never changed.
    pub source_dir: PathBuf,
    /// Secondary sources by identifier (`CODEBUILD_SRC_DIR_<identifier>`); copied too.
    pub secondary_sources: Vec<(String, PathBuf)>,
    /// This build's own directory: created fresh (it must not exist, or be empty). The build runs
    /// in `<work_dir>/src`; artifacts are written under `<work_dir>/artifacts/`.
    pub work_dir: PathBuf,
    /// The project's cache directory (`cache.paths` are restored from and saved to it).
    pub cache_dir: Option<PathBuf>,
    /// Variables from the project and the start of the build: they override the buildspec's.
    pub env: Vec<EnvVar>,
    /// The parameter and secrets stores (`parameter-store`, `secrets-manager`).
    pub secrets: Option<SecretStore>,
    pub timeout: Duration,
    pub source_version: Option<String>,
    pub resolved_source_version: Option<String>,
    /// Who started the build (`CODEBUILD_INITIATOR`), such as `codepipeline/my-pipeline`.
    pub initiator: String,
    /// Where the full log is written; by default `<work_dir>/build.log`.
    pub log_file: Option<PathBuf>,
    pub on_log: Option<LogSink>,
    /// Set to true to stop the build: its process tree is killed.
    pub stop: Option<Arc<AtomicBool>>,
    /// What sends the build's AWS CLIs and SDKs to its region (for a local region: the local
    /// endpoint and its credentials). Below the buildspec's and the project's variables.
    pub aws_env: Vec<(String, String)>,
    /// Directories inside the source that are not copied (Meridian's data directory, say). The
    /// work directory never is.
    pub exclude: Vec<PathBuf>,
}

impl BuildContext {
    pub fn new(project: impl Into<String>, source_dir: impl Into<PathBuf>, work_dir: impl Into<PathBuf>) -> Self {
        let project = project.into();
        BuildContext {
            build_id: format!("{project}:{}", new_uuid()),
            project,
            build_number: 1,
            region: "us-east-1".into(),
            account_id: "123456789012".into(),
            source_dir: source_dir.into(),
            secondary_sources: Vec::new(),
            work_dir: work_dir.into(),
            cache_dir: None,
            env: Vec::new(),
            secrets: None,
            timeout: Duration::from_secs(60 * 60),
            source_version: None,
            resolved_source_version: None,
            initiator: "meridian".into(),
            log_file: None,
            on_log: None,
            stop: None,
            aws_env: Vec::new(),
            exclude: Vec::new(),
        }
    }
}

/// A random version-4 UUID, for build ids.
pub fn new_uuid() -> String {
    let mut b = [0u8; 16];
    if getrandom::fill(&mut b).is_err() {
        // Unique enough for a local build id when the OS has no randomness to give.
        let t = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default()
            .as_nanos();
        b = (t ^ u128::from(std::process::id())).to_le_bytes();
    }
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    let h = hex::encode(b);
    format!("{}-{}-{}-{}-{}", &h[..8], &h[8..12], &h[12..16], &h[16..20], &h[20..])
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Status {
    Succeeded,
    Failed,
    TimedOut,
    Stopped,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Succeeded => "SUCCEEDED",
            Status::Failed => "FAILED",
            Status::TimedOut => "TIMED_OUT",
            Status::Stopped => "STOPPED",
        }
    }
}

#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PhaseResult {
    /// INSTALL, PRE_BUILD, BUILD, POST_BUILD, UPLOAD_ARTIFACTS, or FINALIZING when the log could not be written.
    pub name: &'static str,
    pub status: Status,
    pub duration_ms: u64,
    /// Why it failed: the command and its exit status.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ArtifactOutput {
    /// None for the primary artifact; the identifier of a secondary one.
    pub identifier: Option<String>,
    /// `artifacts.name` after the shell expanded it.
    pub name: Option<String>,
    /// The directory holding the artifact's files (zip it to upload it).
    pub dir: PathBuf,
    pub files: usize,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ReportSummary {
    pub group: String,
    pub format: &'static str,
    pub files: Vec<String>,
    #[serde(flatten)]
    pub counts: Counts,
    /// Files that could not be read as the format says.
    pub errors: Vec<String>,
}

/// What a build did.
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct BuildOutcome {
    pub build_id: String,
    pub status: Status,
    pub phases: Vec<PhaseResult>,
    /// `env.exported-variables` with their values at the end of the build; secret values (and
    /// the secret parts of values) are masked as `***`.
    pub exported_variables: BTreeMap<String, String>,
    /// The exported variables whose values held a secret and were masked.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub masked_variables: Vec<String>,
    pub artifacts: Vec<ArtifactOutput>,
    pub reports: Vec<ReportSummary>,
    pub warnings: Vec<String>,
    /// Where the build ran (`CODEBUILD_SRC_DIR`).
    pub src_dir: PathBuf,
    pub log_file: PathBuf,
    pub duration_ms: u64,
}

impl BuildOutcome {
    pub fn succeeded(&self) -> bool {
        self.status == Status::Succeeded
    }
}

/// Why a build could not be run at all (a build that ran and failed is an `Ok` outcome).
#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    #[error("failed to {action} `{}`: {source}", path.display())]
    Io {
        action: &'static str,
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("failed to start the shell `{shell}`: {source}")]
    Shell { shell: String, source: std::io::Error },
    #[error("the work directory `{}` is not empty; each build needs a fresh one", .0.display())]
    WorkDirInUse(PathBuf),
    #[error("the source directory `{}` does not exist", .0.display())]
    NoSource(PathBuf),
    #[error("variable `{var}` needs the {kind} store, but this build has none")]
    NoSecretStore { var: String, kind: &'static str },
    #[error("parameter `{name}` (for variable `{var}`) does not exist in {region}; add it with `meridian secrets put --kind parameter --region {region} {name} VALUE`")]
    MissingParameter { var: String, name: String, region: String },
    #[error("secret `{reference}` (for variable `{var}`) does not exist in {region}; add it with `meridian secrets put --region {region} NAME VALUE`")]
    MissingSecret {
        var: String,
        reference: String,
        region: String,
    },
    #[error("failed to read a secret for variable `{var}`: {message}")]
    Secret { var: String, message: String },
    #[error("the build timeout is zero: a build needs a timeout (CodeBuild allows 5 to 2160 minutes)")]
    NoTimeout,
    #[error("the buildspec has no `batch` section")]
    NoBatch,
    #[error("the buildspec declares a `batch` ({0}): it runs as a batch build (`meridian build` runs it; the CodeBuild action of a pipeline does not yet)")]
    IsABatch(&'static str),
}

fn io_err<'a>(action: &'static str, path: &'a Path) -> impl FnOnce(std::io::Error) -> BuildError + 'a {
    move |source| BuildError::Io {
        action,
        path: path.to_path_buf(),
        source,
    }
}

/// The build's log: masks secrets, stamps CodeBuild-style lines, writes the file, feeds the sink.
struct Log {
    file: fs::File,
    path: PathBuf,
    masks: Vec<String>,
    sink: Option<LogSink>,
    /// The first write to the log file that failed (a full disk): the build then fails, since
    /// its log is incomplete.
    failed: Option<String>,
}

impl Log {
    fn mask(&self, line: &str) -> String {
        let mut out = line.to_string();
        for m in &self.masks {
            if out.contains(m.as_str()) {
                out = out.replace(m.as_str(), "***");
            }
        }
        out
    }

    /// A line printed by a command.
    fn output(&mut self, line: &str) {
        let line = self.mask(line);
        if let Err(e) = writeln!(self.file, "{line}") {
            self.record_failure(e);
        }
        if let Some(s) = &self.sink {
            s(&line);
        }
    }

    fn record_failure(&mut self, e: std::io::Error) {
        if self.failed.is_none() {
            self.failed = Some(format!(
                "failed to write the build log `{}`: {e}; the log is incomplete, so the build cannot be trusted: free space on that disk and run it again",
                self.path.display()
            ));
        }
    }

    /// Makes the log durable; a disk that turns out full (or failing) at this point fails the
    /// build like a failed write. Files that cannot be synced (a pipe, a terminal) are fine.
    fn sync(&mut self) {
        if let Err(e) = self.file.sync_data() {
            if matches!(e.raw_os_error(), Some(libc::ENOSPC | libc::EIO | libc::EDQUOT)) {
                self.record_failure(e);
            }
        }
    }

    /// A line from the build agent itself, as CodeBuild's `[Container] 2024/01/02 10:00:00.123 ...`.
    fn agent(&mut self, text: &str) {
        let now = jiff::Timestamp::now();
        let stamp = format!("{}.{:03}", now.strftime("%Y/%m/%d %H:%M:%S"), now.subsec_millisecond());
        self.output(&format!("[Container] {stamp} {text}"));
    }
}

/// Runs a build to its end and says what happened. Blocking: from async code, call it in
/// `spawn_blocking`.
pub fn run_build(spec: &BuildSpec, ctx: &BuildContext) -> Result<BuildOutcome, BuildError> {
    if let Some(b) = &spec.batch {
        return Err(BuildError::IsABatch(b.kind.key()));
    }
    if ctx.timeout.is_zero() {
        return Err(BuildError::NoTimeout);
    }
    let started = Instant::now();
    let deadline = started + ctx.timeout;
    if !ctx.source_dir.is_dir() {
        return Err(BuildError::NoSource(ctx.source_dir.clone()));
    }
    if ctx.work_dir.exists()
        && fs::read_dir(&ctx.work_dir)
            .map_err(io_err("read", &ctx.work_dir))?
            .next()
            .is_some()
    {
        return Err(BuildError::WorkDirInUse(ctx.work_dir.clone()));
    }
    let src = ctx.work_dir.join("src");
    fs::create_dir_all(&ctx.work_dir).map_err(io_err("create", &ctx.work_dir))?;
    let mut skip: Vec<PathBuf> = ctx.exclude.iter().filter_map(|p| p.canonicalize().ok()).collect();
    skip.extend(ctx.work_dir.canonicalize().ok());
    copy_tree_except(&ctx.source_dir, &src, &skip).map_err(io_err("copy the source into", &src))?;
    let src = src.canonicalize().map_err(io_err("read", &src))?;
    let mut secondary_dirs = Vec::new();
    for (id, dir) in &ctx.secondary_sources {
        let to = ctx.work_dir.join(format!("src-{id}"));
        copy_tree_except(dir, &to, &skip).map_err(io_err("copy a secondary source into", &to))?;
        secondary_dirs.push((id.clone(), to.canonicalize().map_err(io_err("read", &to))?));
    }
    let log_path = ctx.log_file.clone().unwrap_or_else(|| ctx.work_dir.join("build.log"));
    if let Some(parent) = log_path.parent() {
        fs::create_dir_all(parent).map_err(io_err("create", parent))?;
    }
    let file = fs::File::create(&log_path).map_err(io_err("create", &log_path))?;

    // Variables, lowest precedence first: CodeBuild's, the buildspec's, then the project's.
    let (env, masks) = environment(spec, ctx, &src, &secondary_dirs)?;
    let mut masks: Vec<String> = masks.into_iter().filter(|m| !m.is_empty()).collect();
    masks.sort_by_key(|m| std::cmp::Reverse(m.len()));
    masks.dedup();
    let mut log = Log {
        file,
        path: log_path.clone(),
        masks,
        sink: ctx.on_log.clone(),
        failed: None,
    };
    let mut warnings = Vec::new();
    log.agent(&format!(
        "Build {} of project {} in {}",
        ctx.build_id, ctx.project, ctx.region
    ));
    if spec.version == SpecVersion::V0_1 {
        log.agent("Buildspec version 0.1: every command runs in its own shell");
    }

    let mut runner = Runner {
        program: spec.env.shell.clone().unwrap_or_else(|| "bash".into()),
        version: spec.version,
        cwd: src.clone(),
        env,
        shell: None,
        deadline,
        stop: ctx.stop.clone(),
    };

    if let Some(cache) = &ctx.cache_dir {
        let files = cache.join("files");
        if files.is_dir() {
            copy_tree(&files, &src).map_err(io_err("restore the cache from", &files))?;
            log.agent(&format!("Restored the cache from {}", cache.display()));
        }
    }

    let mut phases = Vec::new();
    let mut failed = false;
    let mut upload = true;
    let mut interrupted = None;
    for name in PhaseName::ALL {
        let Some(phase) = spec.phase(name) else { continue };
        let t0 = Instant::now();
        log.agent(&format!("Entering phase {}", name.upper()));
        if name == PhaseName::Install {
            for (rt, wanted) in &phase.runtime_versions {
                let wanted = expand_var(wanted, &runner.env);
                if let Some(w) = check_runtime(rt, &wanted) {
                    log.agent(&format!("Warning: {w}"));
                    warnings.push(w);
                }
            }
        }
        let mut message = None;
        let mut status = Status::Succeeded;
        for block in [&phase.commands, &phase.finally] {
            for cmd in block {
                if status != Status::Succeeded && std::ptr::eq(block, &phase.commands) {
                    break;
                }
                log.agent(&format!("Running command {}", cmd.text.trim_end()));
                let ran = runner.run(&cmd.text, &mut log)?;
                match ran {
                    Ran::Exit(0) => {}
                    Ran::TimedOut | Ran::Stopped => {
                        status = if ran == Ran::TimedOut {
                            Status::TimedOut
                        } else {
                            Status::Stopped
                        };
                        message = Some(format!("{} while running `{}`", status.as_str(), cmd.text.trim_end()));
                        break;
                    }
                    Ran::Exit(code) | Ran::ShellExited(code) => {
                        log.agent(&format!(
                            "Command did not exit successfully {} exit status {code}",
                            cmd.text.trim_end()
                        ));
                        if status == Status::Succeeded {
                            message = Some(format!(
                                "Error while executing command: {}. Reason: exit status {code}",
                                cmd.text.trim_end()
                            ));
                        }
                        if status == Status::Succeeded {
                            // Set at the first failure, so that `finally` commands can see it.
                            runner.env_set("CODEBUILD_BUILD_SUCCEEDING", "0", &mut log)?;
                        }
                        status = Status::Failed;
                        if !std::ptr::eq(block, &phase.commands) {
                            break;
                        }
                    }
                }
            }
            if matches!(status, Status::TimedOut | Status::Stopped) {
                break;
            }
        }
        log.agent(&format!("Phase complete: {} State: {}", name.upper(), status.as_str()));
        if let Some(m) = &message {
            log.agent(&format!(
                "Phase context status code: COMMAND_EXECUTION_ERROR Message: {m}"
            ));
        }
        phases.push(PhaseResult {
            name: name.upper(),
            status,
            duration_ms: t0.elapsed().as_millis() as u64,
            message,
        });
        match status {
            Status::Succeeded => {}
            Status::TimedOut | Status::Stopped => {
                interrupted = Some(status);
                break;
            }
            Status::Failed => {
                failed = true;
                let ends = match phase.on_failure {
                    OnFailure::Continue => false,
                    OnFailure::Abort => true,
                    // CodeBuild's transitions: INSTALL and PRE_BUILD go to FINALIZING; BUILD goes on to
                    // POST_BUILD; POST_BUILD goes on to UPLOAD_ARTIFACTS.
                    OnFailure::Transitions => matches!(name, PhaseName::Install | PhaseName::PreBuild),
                };
                if ends {
                    upload = false;
                    break;
                }
            }
        }
    }

    let mut exported = BTreeMap::new();
    let mut masked_variables = Vec::new();
    let mut outputs = Vec::new();
    let mut reports_out = Vec::new();
    if let Some(st) = interrupted {
        runner.kill();
        log.agent(&format!("Build {}: the process tree was killed", st.as_str()));
    } else {
        // Values computed by the shell: exported variables, then artifact names.
        let mut names: Vec<Option<String>> = Vec::new();
        if let Some(a) = &spec.artifacts {
            names.push(a.primary.name.clone());
            names.extend(a.secondary.iter().map(|(_, r)| r.name.clone()));
        }
        let values = runner.capture(&spec.env.exported_variables, &names, &ctx.work_dir, &mut log)?;
        let (vars, artifact_names) = values.split_at(spec.env.exported_variables.len().min(values.len()));
        for (k, v) in spec.env.exported_variables.iter().zip(vars) {
            // A value holding a secret (from `secrets-manager` or `parameter-store`, or made
            // from one) is exported masked, as every log line is: the outcome is printed and
            // recorded, and a secret must not leave through it.
            let shown = log.mask(v);
            if shown != *v {
                log.agent(&format!(
                    "Exported variable {k} holds a secret value: it is exported masked (***); read the secret where it is needed instead"
                ));
                masked_variables.push(k.clone());
            }
            exported.insert(k.clone(), shown);
        }
        for r in &spec.reports {
            reports_out.push(read_report(&src, r, &mut warnings));
        }
        for r in &reports_out {
            log.agent(&format!(
                "Report group {}: {} tests, {} passed, {} failed, {} skipped",
                r.group, r.counts.total, r.counts.passed, r.counts.failed, r.counts.skipped
            ));
        }
        if upload {
            if let Some(a) = &spec.artifacts {
                let t0 = Instant::now();
                log.agent("Entering phase UPLOAD_ARTIFACTS");
                let mut problem = None;
                let rules = std::iter::once((None, &a.primary)).chain(a.secondary.iter().map(|(id, r)| (Some(id), r)));
                for (i, (id, rule)) in rules.enumerate() {
                    let dir = match id {
                        None => ctx.work_dir.join("artifacts").join("primary"),
                        Some(id) => ctx.work_dir.join("artifacts").join("secondary").join(id),
                    };
                    let label = id.map(|s| s.as_str()).unwrap_or("primary");
                    let n = match artifacts::collect(&src, rule, &dir, &mut warnings) {
                        Ok(n) => n,
                        Err(e) => match crate::files::confinement_error(&e) {
                            // a path leading outside the source: the artifact is refused, whole
                            Some(why) => {
                                let _ = fs::remove_dir_all(&dir);
                                problem.get_or_insert(format!("CLIENT_ERROR: the {label} artifact is refused: {why}"));
                                log.agent(&format!("Artifact {label}: refused: {why}"));
                                continue;
                            }
                            None => return Err(io_err("collect artifacts into", &dir)(e)),
                        },
                    };
                    if n == 0 {
                        problem.get_or_insert(format!(
                            "CLIENT_ERROR: no matching artifact paths found for the {label} artifact ({})",
                            rule.files.join(", ")
                        ));
                    }
                    log.agent(&format!("Artifact {label}: {n} files"));
                    outputs.push(ArtifactOutput {
                        identifier: id.cloned(),
                        name: rule
                            .name
                            .as_ref()
                            .map(|_| artifact_names.get(i).cloned().unwrap_or_default()),
                        dir,
                        files: n,
                    });
                }
                let status = if problem.is_some() {
                    failed = true;
                    Status::Failed
                } else {
                    Status::Succeeded
                };
                if let Some(p) = &problem {
                    log.agent(&format!("Phase context status code: {p}"));
                }
                log.agent(&format!("Phase complete: UPLOAD_ARTIFACTS State: {}", status.as_str()));
                phases.push(PhaseResult {
                    name: "UPLOAD_ARTIFACTS",
                    status,
                    duration_ms: t0.elapsed().as_millis() as u64,
                    message: problem,
                });
            }
        }
        runner.finish();
        if let Some(cache) = &ctx.cache_dir {
            save_cache(&src, &spec.cache_paths, cache, &mut warnings).map_err(io_err("save the cache to", cache))?;
        }
    }
    for w in &warnings {
        if !w.starts_with("runtime-versions") {
            log.agent(&format!("Warning: {w}"));
        }
    }
    log.sync();
    let mut status = interrupted.unwrap_or(if failed || log.failed.is_some() {
        Status::Failed
    } else {
        Status::Succeeded
    });
    log.agent(&format!("Build {}", status.as_str()));
    log.sync();
    if let Some(why) = log.failed.take() {
        // Never SUCCEEDED with a truncated log: the reason is where every failure is said.
        if status == Status::Succeeded {
            status = Status::Failed;
        }
        phases.push(PhaseResult {
            name: "FINALIZING",
            status: Status::Failed,
            duration_ms: 0,
            message: Some(format!("CLIENT_ERROR: {why}")),
        });
    }
    Ok(BuildOutcome {
        build_id: ctx.build_id.clone(),
        status,
        phases,
        exported_variables: exported,
        masked_variables,
        artifacts: outputs,
        reports: reports_out,
        warnings,
        src_dir: src,
        log_file: log_path,
        duration_ms: started.elapsed().as_millis() as u64,
    })
}

struct Runner {
    program: String,
    version: SpecVersion,
    cwd: PathBuf,
    env: Vec<(String, String)>,
    shell: Option<Shell>,
    deadline: Instant,
    stop: Option<Arc<AtomicBool>>,
}

impl Runner {
    fn shell(&mut self) -> Result<&mut Shell, BuildError> {
        let fresh = self.version == SpecVersion::V0_1 || !self.shell.as_ref().is_some_and(Shell::alive);
        if fresh {
            if let Some(old) = self.shell.take() {
                old.finish();
            }
            let s = Shell::start(&self.program, &self.cwd, &self.env).map_err(|source| BuildError::Shell {
                shell: self.program.clone(),
                source,
            })?;
            self.shell = Some(s);
        }
        Ok(self.shell.as_mut().expect("started above"))
    }

    fn run(&mut self, command: &str, log: &mut Log) -> Result<Ran, BuildError> {
        let deadline = self.deadline;
        let stop = self.stop.clone();
        let shell = self.shell()?;
        let ran = shell.run(command, deadline, stop.as_deref(), &mut |l| log.output(l));
        if let Ran::ShellExited(_) = ran {
            if self.version == SpecVersion::V0_2 {
                log.agent("The shell exited; later commands run in a new one (variables and directory are reset)");
            }
        }
        Ok(ran)
    }

    /// Sets a variable for this and every later shell.
    fn env_set(&mut self, name: &str, value: &str, log: &mut Log) -> Result<(), BuildError> {
        match self.env.iter_mut().find(|(k, _)| k == name) {
            Some(slot) => slot.1 = value.to_string(),
            None => self.env.push((name.into(), value.into())),
        }
        if let Some(s) = self.shell.as_mut().filter(|s| s.alive()) {
            let deadline = self.deadline;
            s.run(
                &format!("export {name}={}", quote(value)),
                deadline,
                self.stop.as_deref(),
                &mut |l| log.output(l),
            );
        }
        Ok(())
    }

    /// Reads variables' values and expands artifact names in the build's shell.
    fn capture(
        &mut self,
        vars: &[String],
        names: &[Option<String>],
        work: &Path,
        log: &mut Log,
    ) -> Result<Vec<String>, BuildError> {
        if vars.is_empty() && names.iter().all(Option::is_none) {
            return Ok(Vec::new());
        }
        let out = work.join("captured.bin");
        let mut script = String::from("{ ");
        for v in vars {
            if v.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
                script.push_str(&format!("printf '%s\\0' \"${{{v}-}}\"; "));
            } else {
                script.push_str("printf '\\0'; ");
            }
        }
        for n in names {
            match n {
                Some(n) => script.push_str(&format!(
                    "__meridian_n={}; eval \"__meridian_v=\\\"$__meridian_n\\\"\"; printf '%s\\0' \"$__meridian_v\"; ",
                    quote(n)
                )),
                None => script.push_str("printf '\\0'; "),
            }
        }
        script.push_str(&format!("}} > {}", quote(&out.to_string_lossy())));
        let ran = self.run(&script, log)?;
        if !ran.ok() {
            return Ok(Vec::new());
        }
        let bytes = fs::read(&out).map_err(io_err("read", &out))?;
        let _ = fs::remove_file(&out);
        let mut values: Vec<String> = bytes
            .split(|b| *b == 0)
            .map(|s| String::from_utf8_lossy(s).into_owned())
            .collect();
        values.pop(); // after the last NUL
        let names_out = values.split_off(vars.len().min(values.len()));
        values.extend(
            names
                .iter()
                .zip(names_out.into_iter().chain(std::iter::repeat(String::new())))
                .map(|(n, v)| if n.is_some() { v } else { String::new() }),
        );
        Ok(values)
    }

    fn kill(&mut self) {
        if let Some(mut s) = self.shell.take() {
            s.kill();
        }
    }

    fn finish(&mut self) {
        if let Some(s) = self.shell.take() {
            s.finish();
        }
    }
}

/// The build's variables and the values to mask.
#[allow(clippy::type_complexity)]
fn environment(
    spec: &BuildSpec,
    ctx: &BuildContext,
    src: &Path,
    secondary: &[(String, PathBuf)],
) -> Result<(Vec<(String, String)>, Vec<String>), BuildError> {
    let mut env: Vec<(String, String)> = Vec::new();
    let mut masks = Vec::new();
    let set = |env: &mut Vec<(String, String)>, k: &str, v: String| match env.iter_mut().find(|(n, _)| n == k) {
        Some(slot) => slot.1 = v,
        None => env.push((k.to_string(), v)),
    };
    let arn = format!(
        "arn:aws:codebuild:{}:{}:build/{}",
        ctx.region, ctx.account_id, ctx.build_id
    );
    let builtins = [
        ("CODEBUILD_SRC_DIR", src.display().to_string()),
        ("CODEBUILD_BUILD_ID", ctx.build_id.clone()),
        ("CODEBUILD_BUILD_ARN", arn),
        ("CODEBUILD_BUILD_NUMBER", ctx.build_number.to_string()),
        ("CODEBUILD_BUILD_SUCCEEDING", "1".into()),
        ("CODEBUILD_BUILD_IMAGE", "meridian/local".into()),
        ("CODEBUILD_INITIATOR", ctx.initiator.clone()),
        ("CODEBUILD_PROJECT_NAME", ctx.project.clone()),
        (
            "CODEBUILD_START_TIME",
            jiff::Timestamp::now().as_millisecond().to_string(),
        ),
        ("CODEBUILD_KMS_KEY_ID", "alias/aws/s3".into()),
        (
            "CODEBUILD_LOG_PATH",
            ctx.build_id.split(':').nth(1).unwrap_or("").to_string(),
        ),
        ("CODEBUILD_CI", "true".into()),
        ("AWS_REGION", ctx.region.clone()),
        ("AWS_DEFAULT_REGION", ctx.region.clone()),
    ];
    for (k, v) in builtins {
        set(&mut env, k, v);
    }
    for (k, v) in &ctx.aws_env {
        // the credentials the build is given (a role's session) never reach its log
        if matches!(k.as_str(), "AWS_SECRET_ACCESS_KEY" | "AWS_SESSION_TOKEN") && !v.is_empty() {
            masks.push(v.clone());
        }
        set(&mut env, k, v.clone());
    }
    if let Some(v) = &ctx.resolved_source_version {
        set(&mut env, "CODEBUILD_RESOLVED_SOURCE_VERSION", v.clone());
    }
    if let Some(v) = ctx.source_version.as_ref().or(ctx.resolved_source_version.as_ref()) {
        set(&mut env, "CODEBUILD_SOURCE_VERSION", v.clone());
    }
    for (id, dir) in secondary {
        set(&mut env, &format!("CODEBUILD_SRC_DIR_{id}"), dir.display().to_string());
    }
    for (k, v) in &spec.env.variables {
        set(&mut env, k, v.clone());
    }
    for (k, name) in &spec.env.parameter_store {
        let v = parameter(ctx, k, name)?;
        masks.push(v.clone());
        set(&mut env, k, v);
    }
    for (k, r) in &spec.env.secrets_manager {
        let v = secret(ctx, k, r)?;
        masks.push(v.clone());
        set(&mut env, k, v);
    }
    for var in &ctx.env {
        let v = match var.kind {
            EnvKind::Plaintext => var.value.clone(),
            EnvKind::ParameterStore => {
                let v = parameter(ctx, &var.name, &var.value)?;
                masks.push(v.clone());
                v
            }
            EnvKind::SecretsManager => {
                let r = SecretRef::parse(&var.value).map_err(|message| BuildError::Secret {
                    var: var.name.clone(),
                    message,
                })?;
                let v = secret(ctx, &var.name, &r)?;
                masks.push(v.clone());
                v
            }
        };
        set(&mut env, &var.name, v);
    }
    // Multi-line secrets are masked line by line too: a command may print one line of them.
    let lines: Vec<String> = masks
        .iter()
        .filter(|m| m.contains('\n'))
        .flat_map(|m| {
            m.lines()
                .map(str::trim)
                .filter(|l| l.len() >= 4)
                .map(String::from)
                .collect::<Vec<_>>()
        })
        .collect();
    masks.extend(lines);
    Ok((env, masks))
}

fn store<'a>(ctx: &'a BuildContext, var: &str, kind: &'static str) -> Result<&'a SecretStore, BuildError> {
    ctx.secrets.as_ref().ok_or_else(|| BuildError::NoSecretStore {
        var: var.to_string(),
        kind,
    })
}

fn parameter(ctx: &BuildContext, var: &str, name: &str) -> Result<String, BuildError> {
    let s = store(ctx, var, "parameter")?;
    s.get(&ctx.region, Kind::Parameter, name)
        .map_err(|e| BuildError::Secret {
            var: var.into(),
            message: e.to_string(),
        })?
        .ok_or_else(|| BuildError::MissingParameter {
            var: var.into(),
            name: name.into(),
            region: ctx.region.clone(),
        })
}

fn secret(ctx: &BuildContext, var: &str, r: &SecretRef) -> Result<String, BuildError> {
    let s = store(ctx, var, "secrets")?;
    s.resolve_secret(&ctx.region, r)
        .map_err(|e| BuildError::Secret {
            var: var.into(),
            message: e.to_string(),
        })?
        .ok_or_else(|| BuildError::MissingSecret {
            var: var.into(),
            reference: [
                Some(r.secret_id.as_str()),
                r.json_key.as_deref(),
                r.version_stage.as_deref(),
                r.version_id.as_deref(),
            ]
            .iter()
            .map(|p| p.unwrap_or(""))
            .collect::<Vec<_>>()
            .join(":")
            .trim_end_matches(':')
            .to_string(),
            region: ctx.region.clone(),
        })
}

/// `$NAME` or `${NAME}` (a whole value) from the build's variables or this process's.
fn expand_var(value: &str, env: &[(String, String)]) -> String {
    let name = value
        .strip_prefix("${")
        .and_then(|v| v.strip_suffix('}'))
        .or_else(|| value.strip_prefix('$'));
    match name {
        Some(n) => env
            .iter()
            .find(|(k, _)| k == n)
            .map(|(_, v)| v.clone())
            .or_else(|| std::env::var(n).ok())
            .unwrap_or_default(),
        None => value.to_string(),
    }
}

/// Checks one `runtime-versions` entry against what this machine has; a warning when it differs.
pub fn check_runtime(runtime: &str, wanted: &str) -> Option<String> {
    let (program, args): (&str, &[&str]) = match runtime {
        "nodejs" => ("node", &["--version"]),
        "python" => ("python3", &["--version"]),
        "java" => ("java", &["-version"]),
        "ruby" => ("ruby", &["--version"]),
        "golang" => ("go", &["version"]),
        "php" => ("php", &["--version"]),
        "dotnet" => ("dotnet", &["--version"]),
        other => {
            return Some(format!(
                "runtime-versions: Meridian cannot check `{other}: {wanted}` on this machine; the build uses what is installed"
            ))
        }
    };
    let shown = format!("{program} {}", args.join(" "));
    let found = match std::process::Command::new(program).args(args).output() {
        Ok(o) => {
            let text = format!(
                "{}{}",
                String::from_utf8_lossy(&o.stdout),
                String::from_utf8_lossy(&o.stderr)
            );
            version_in(&text)
        }
        Err(_) => None,
    };
    let Some(found) = found else {
        return Some(format!(
            "runtime-versions asks for {runtime} {wanted}, but `{shown}` found no {runtime} on this machine"
        ));
    };
    if runtime_satisfies(wanted, &found) {
        None
    } else {
        Some(format!(
            "runtime-versions asks for {runtime} {wanted}, but this machine has {runtime} {found} (`{shown}`); the build uses {found}"
        ))
    }
}

/// The first `1.2.3`-like version in a tool's output.
fn version_in(text: &str) -> Option<String> {
    let start = text.find(|c: char| c.is_ascii_digit())?;
    let v: String = text[start..]
        .chars()
        .take_while(|c| c.is_ascii_digit() || *c == '.')
        .collect();
    Some(v.trim_end_matches('.').to_string())
}

/// `latest`, `18`, `18.x`, `3.11`, `corretto17`, `openjdk11` against a found version.
fn runtime_satisfies(wanted: &str, found: &str) -> bool {
    let wanted = wanted.trim();
    if wanted.is_empty() || wanted == "latest" {
        return true;
    }
    let digits = wanted.trim_start_matches(|c: char| !c.is_ascii_digit());
    let want: Vec<&str> = digits.split('.').filter(|p| !p.is_empty() && *p != "x").collect();
    let mut have: Vec<&str> = found.split('.').collect();
    // Java 8 calls itself 1.8.
    if have.first() == Some(&"1") && have.len() > 1 {
        have.remove(0);
    }
    !want.is_empty() && want.iter().zip(have.iter()).all(|(w, h)| w == h) && want.len() <= have.len()
}

fn read_report(src: &Path, r: &crate::spec::ReportGroup, warnings: &mut Vec<String>) -> ReportSummary {
    let mut counts = Counts::default();
    let mut errors = Vec::new();
    let selected = match artifacts::select(
        src,
        &r.files,
        r.base_directory.as_deref(),
        &[],
        r.discard_paths,
        false,
        &mut Vec::new(),
    ) {
        Ok(s) => s,
        Err(e) => {
            if let Some(why) = crate::files::confinement_error(&e) {
                errors.push(format!("no report file is read: {why}"));
            }
            Vec::new()
        }
    };
    let mut files = Vec::new();
    for s in &selected {
        files.push(s.found.rel.clone());
        let parsed = match r.format {
            ReportFormat::JunitXml => fs::read_to_string(&s.found.path)
                .map_err(|e| e.to_string())
                .and_then(|t| reports::junit(&t)),
            ReportFormat::CucumberJson => fs::read_to_string(&s.found.path)
                .map_err(|e| e.to_string())
                .and_then(|t| reports::cucumber(&t)),
            ReportFormat::Other(_) => continue,
        };
        match parsed {
            Ok(c) => counts.add(&c),
            Err(e) => errors.push(format!("{}: {e}", s.found.rel)),
        }
    }
    for e in &errors {
        warnings.push(format!("report group {}: {e}", r.name));
    }
    if selected.is_empty() {
        warnings.push(format!("report group {}: no report files found", r.name));
    }
    ReportSummary {
        group: r.name.clone(),
        format: r.format.as_str(),
        files,
        counts,
        errors,
    }
}

/// Saves the files `cache.paths` names (inside the source directory) for the next build.
fn save_cache(src: &Path, paths: &[String], cache: &Path, warnings: &mut Vec<String>) -> std::io::Result<()> {
    if paths.is_empty() {
        return Ok(());
    }
    let mut rel_patterns = Vec::new();
    for p in paths {
        if let Some(abs) = p.strip_prefix('/') {
            let src_s = src.to_string_lossy();
            match abs.strip_prefix(src_s.trim_start_matches('/')) {
                Some(rest) => rel_patterns.push(rest.trim_start_matches('/').to_string()),
                None => warnings.push(format!(
                    "cache path `{p}` is outside the build's directory; Meridian caches only paths inside it"
                )),
            }
        } else {
            rel_patterns.push(p.clone());
        }
    }
    let tmp = cache.join("files.new");
    let _ = fs::remove_dir_all(&tmp);
    fs::create_dir_all(&tmp)?;
    let mut escaping = Vec::new();
    let found = crate::files::walk_within(src, true, src, crate::files::OnEscape::Skip, &mut escaping)?;
    for e in escaping {
        warnings.push(format!("{e}; it is not cached"));
    }
    for f in found {
        let hit = rel_patterns.iter().any(|p| {
            glob_match(p, &f.rel)
                || (!crate::files::is_glob(p) && f.rel.starts_with(&format!("{}/", p.trim_end_matches('/'))))
        });
        if !hit {
            continue;
        }
        let dest = tmp.join(&f.rel);
        if let Some(parent) = dest.parent() {
            fs::create_dir_all(parent)?;
        }
        match &f.link {
            Some(t) => crate::files::symlink(t, &dest)?,
            None => {
                fs::copy(&f.path, &dest)?;
            }
        }
    }
    let files = cache.join("files");
    let _ = fs::remove_dir_all(&files);
    fs::rename(&tmp, &files)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn runtime_versions_compare_like_codebuild() {
        assert!(runtime_satisfies("18", "18.19.0"));
        assert!(runtime_satisfies("18.x", "18.19.0"));
        assert!(!runtime_satisfies("20", "18.19.0"));
        assert!(runtime_satisfies("3.11", "3.11.2"));
        assert!(!runtime_satisfies("3.12", "3.11.2"));
        assert!(runtime_satisfies("corretto17", "17.0.2"));
        assert!(runtime_satisfies("openjdk8", "1.8.0"));
        assert!(runtime_satisfies("latest", "1.0"));
        assert_eq!(version_in("v20.11.1\n").as_deref(), Some("20.11.1"));
        assert_eq!(version_in("Python 3.11.2").as_deref(), Some("3.11.2"));
        assert_eq!(version_in("go version go1.22.0 linux/amd64").as_deref(), Some("1.22.0"));
    }

    #[test]
    fn uuids_look_like_uuids() {
        let u = new_uuid();
        assert_eq!(u.len(), 36);
        assert_eq!(&u[14..15], "4");
        assert_ne!(u, new_uuid());
    }
}
