//! Execution environments: one OS process per environment, each with its own Lambda Runtime API
//! endpoint (`AWS_LAMBDA_RUNTIME_API`) on an ephemeral 127.0.0.1 port, as each Lambda sandbox has
//! its own. The runtime client inside the process long-polls `/next`; this module hands it one
//! invocation at a time and waits for `/response`, `/error`, the process's exit or the deadline.

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use serde_json::json;
use std::ffi::OsString;
use std::path::PathBuf;
use std::process::Stdio;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::io::AsyncReadExt;
use tokio::sync::{mpsc, oneshot, watch, Notify};
use tokio::task::JoinHandle;

/// Lambda's limit on a synchronous response, and on the runtime's `/response` body.
pub const MAX_RESPONSE_BYTES: usize = 6 * 1024 * 1024;
/// Logs kept per environment between invocations; older output is dropped first.
const LOG_BUFFER_BYTES: usize = 1024 * 1024;
const RUNTIME_PREFIX: &str = "/2018-06-01/runtime";

/// One invocation, as the runtime receives it from `/next`.
pub(crate) struct Invocation {
    pub request_id: String,
    pub payload: Bytes,
    pub deadline_ms: i64,
    pub invoked_arn: String,
    pub trace_id: String,
    pub client_context: Option<String>,
    pub cognito_identity: Option<String>,
}

struct Pending {
    inv: Invocation,
    reply: oneshot::Sender<RuntimeReply>,
}

/// What the runtime answered.
#[derive(Debug)]
pub(crate) enum RuntimeReply {
    Response(Bytes),
    Error { error_type: String, body: Bytes },
    ResponseTooLarge(usize),
}

#[derive(Debug)]
pub(crate) enum InitSignal {
    Ready,
    Error { error_type: String, body: Bytes },
}

/// Why an environment could not start.
#[derive(Debug)]
pub(crate) enum InitFailure {
    /// The runtime reported `/runtime/init/error`.
    Reported {
        error_type: String,
        body: Bytes,
    },
    /// The process exited before asking for work.
    Exited(String),
    TimedOut(Duration),
    /// The process could not be started at all.
    Spawn(String),
}

/// The end of one invocation in an environment.
#[derive(Debug)]
pub(crate) enum EnvResult {
    Reply(RuntimeReply),
    TimedOut,
    Exited(String),
}

/// How to start the runtime process.
#[derive(Debug, Clone)]
pub(crate) struct Launch {
    pub program: PathBuf,
    pub args: Vec<OsString>,
    pub cwd: PathBuf,
    pub env: Vec<(String, String)>,
}

struct Current {
    request_id: String,
    reply: oneshot::Sender<RuntimeReply>,
}

/// State shared between the environment's handle and its Runtime API server.
struct Shared {
    invocations: tokio::sync::Mutex<mpsc::Receiver<Pending>>,
    current: Mutex<Option<Current>>,
    init: Mutex<Option<oneshot::Sender<InitSignal>>>,
}

pub(crate) struct Env {
    tx: mpsc::Sender<Pending>,
    exit: watch::Receiver<Option<String>>,
    kill: Mutex<Option<oneshot::Sender<()>>>,
    logs: Arc<Mutex<Vec<u8>>>,
    log_activity: Arc<Notify>,
    server: JoinHandle<()>,
    pub last_used: Mutex<Instant>,
    pub init_duration: Duration,
    /// True until the first invocation has run: the first one reports the init duration.
    pub fresh: Mutex<bool>,
    /// The read ends of stdout and stderr, with a flag set when their pump stopped (and so the
    /// descriptor may be closed).
    pipes: Vec<(i32, Arc<AtomicBool>)>,
}

impl Drop for Env {
    fn drop(&mut self) {
        self.kill_now();
        self.server.abort();
    }
}

impl Env {
    /// Starts the process and waits until its runtime asks for the first invocation.
    /// On failure, also returns what the process wrote before it was stopped.
    pub(crate) async fn start(
        launch: Launch,
        runtime_api_env: &str,
        init_timeout: Duration,
    ) -> Result<Arc<Env>, (InitFailure, Vec<u8>)> {
        let started = Instant::now();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.map_err(|e| {
            (
                InitFailure::Spawn(format!("failed to bind a Runtime API port: {e}")),
                Vec::new(),
            )
        })?;
        let addr = listener.local_addr().map_err(|e| {
            (
                InitFailure::Spawn(format!("failed to read the Runtime API address: {e}")),
                Vec::new(),
            )
        })?;
        let (tx, rx) = mpsc::channel(1);
        let (init_tx, init_rx) = oneshot::channel();
        let shared = Arc::new(Shared {
            invocations: tokio::sync::Mutex::new(rx),
            current: Mutex::new(None),
            init: Mutex::new(Some(init_tx)),
        });
        let server = tokio::spawn(serve_runtime_api(listener, shared.clone()));

        let mut cmd = tokio::process::Command::new(&launch.program);
        cmd.args(&launch.args)
            .current_dir(&launch.cwd)
            .env_clear()
            .envs(launch.env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .env(runtime_api_env, addr.to_string())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        // Its own process group, so that the sandbox can end with everything the function started.
        #[cfg(unix)]
        cmd.process_group(0);
        let mut child = match cmd.spawn() {
            Ok(c) => c,
            Err(e) => {
                server.abort();
                let why = format!("failed to start {}: {e}", launch.program.display());
                return Err((InitFailure::Spawn(why), Vec::new()));
            }
        };
        let logs = Arc::new(Mutex::new(Vec::new()));
        let log_activity = Arc::new(Notify::new());
        let mut pipes = Vec::new();
        if let Some(out) = child.stdout.take() {
            let done = Arc::new(AtomicBool::new(false));
            pipes.push((raw_fd(&out), done.clone()));
            tokio::spawn(pump_logs(out, logs.clone(), log_activity.clone(), done));
        }
        if let Some(err) = child.stderr.take() {
            let done = Arc::new(AtomicBool::new(false));
            pipes.push((raw_fd(&err), done.clone()));
            tokio::spawn(pump_logs(err, logs.clone(), log_activity.clone(), done));
        }
        let (exit_tx, exit_rx) = watch::channel(None);
        let (kill_tx, kill_rx) = oneshot::channel::<()>();
        let pid = child.id();
        tokio::spawn(async move {
            let status = tokio::select! {
                s = child.wait() => s,
                _ = kill_rx => {
                    kill_group(pid);
                    let _ = child.start_kill();
                    child.wait().await
                }
            };
            // The sandbox ends with its runtime, as on Lambda: stop what the function left running.
            kill_group(pid);
            let text = match status {
                Ok(s) => describe_exit(s),
                Err(e) => format!("failed to wait for the runtime process: {e}"),
            };
            let _ = exit_tx.send(Some(text));
        });

        let mut env = Env {
            tx,
            exit: exit_rx,
            kill: Mutex::new(Some(kill_tx)),
            logs,
            log_activity,
            server,
            last_used: Mutex::new(Instant::now()),
            init_duration: Duration::ZERO,
            fresh: Mutex::new(true),
            pipes,
        };
        let mut exit = env.exit.clone();
        let outcome = tokio::select! {
            sig = init_rx => match sig {
                Ok(InitSignal::Ready) => Ok(()),
                Ok(InitSignal::Error { error_type, body }) => Err(InitFailure::Reported { error_type, body }),
                Err(_) => Err(InitFailure::Exited("the Runtime API stopped".into())),
            },
            status = wait_exit(&mut exit) => Err(InitFailure::Exited(status)),
            _ = tokio::time::sleep(init_timeout) => Err(InitFailure::TimedOut(init_timeout)),
        };
        match outcome {
            Ok(()) => {
                env.init_duration = started.elapsed();
                Ok(Arc::new(env))
            }
            Err(f) => {
                env.kill_now();
                let _ = tokio::time::timeout(Duration::from_millis(200), wait_exit(&mut exit)).await;
                env.settle_logs(Duration::from_millis(20)).await;
                Err((f, env.take_logs()))
            }
        }
    }

    pub(crate) fn is_alive(&self) -> bool {
        self.exit.borrow().is_none()
    }

    pub(crate) fn kill_now(&self) {
        if let Some(k) = self.kill.lock().unwrap_or_else(|e| e.into_inner()).take() {
            let _ = k.send(());
        }
    }

    /// Runs one invocation: hands it to the runtime and waits for its answer, its exit or the
    /// deadline (then the process is killed, as Lambda does).
    pub(crate) async fn run(&self, inv: Invocation, timeout: Duration) -> EnvResult {
        let (reply_tx, reply_rx) = oneshot::channel();
        let pending = Pending { inv, reply: reply_tx };
        let mut exit = self.exit.clone();
        if self.tx.send(pending).await.is_err() {
            return EnvResult::Exited("the Runtime API stopped".into());
        }
        let result = tokio::select! {
            r = reply_rx => match r {
                Ok(reply) => EnvResult::Reply(reply),
                // The runtime asked for more work without answering: it is broken, stop it.
                Err(_) => {
                    self.kill_now();
                    EnvResult::Exited("the runtime asked for the next invocation without answering this one".into())
                }
            },
            status = wait_exit(&mut exit) => EnvResult::Exited(status),
            _ = tokio::time::sleep(timeout) => {
                self.kill_now();
                EnvResult::TimedOut
            }
        };
        if let EnvResult::Exited(_) | EnvResult::TimedOut = result {
            // Let the last output reach the log buffer before the caller reads it.
            let _ = tokio::time::timeout(Duration::from_millis(200), wait_exit(&mut exit)).await;
            self.settle_logs(Duration::from_millis(20)).await;
        }
        result
    }

    /// Waits until everything the process wrote so far is in the log buffer: its pipes are empty
    /// and no more output arrived for a moment. Output written before the runtime answered is
    /// then attributed to this invocation, however busy the machine is.
    pub(crate) async fn settle_logs(&self, max: Duration) {
        let until = Instant::now() + max;
        loop {
            let now = Instant::now();
            if now >= until {
                return;
            }
            let unread = self.unread_output();
            let wait = if unread > 0 {
                Duration::from_millis(1)
            } else {
                Duration::from_millis(3)
            };
            let quiet = tokio::time::timeout(wait.min(until - now), self.log_activity.notified())
                .await
                .is_err();
            if quiet && unread == 0 && self.unread_output() == 0 {
                return;
            }
        }
    }

    /// Bytes written by the process that the log pumps have not read yet.
    fn unread_output(&self) -> usize {
        self.pipes
            .iter()
            .filter(|(_, done)| !done.load(Ordering::Acquire))
            .map(|(fd, _)| unread_bytes(*fd))
            .sum()
    }

    /// The output captured since the last call.
    pub(crate) fn take_logs(&self) -> Vec<u8> {
        std::mem::take(&mut *self.logs.lock().unwrap_or_else(|e| e.into_inner()))
    }
}

async fn wait_exit(exit: &mut watch::Receiver<Option<String>>) -> String {
    match exit.wait_for(|s| s.is_some()).await {
        Ok(s) => s.clone().unwrap_or_default(),
        Err(_) => "the runtime process is gone".to_string(),
    }
}

/// Kills the process group led by the runtime process.
fn kill_group(pid: Option<u32>) {
    #[cfg(unix)]
    if let Some(pid) = pid.and_then(|p| libc::pid_t::try_from(p).ok()) {
        // SAFETY: kill(2) with a negative pid signals that process group; no memory is involved.
        unsafe {
            libc::kill(-pid, libc::SIGKILL);
        }
    }
    #[cfg(not(unix))]
    let _ = pid;
}

#[cfg(unix)]
fn raw_fd(pipe: &impl std::os::fd::AsRawFd) -> i32 {
    pipe.as_raw_fd()
}

#[cfg(not(unix))]
fn raw_fd<T>(_pipe: &T) -> i32 {
    -1
}

/// Bytes waiting in a pipe (`FIONREAD`).
#[cfg(unix)]
fn unread_bytes(fd: i32) -> usize {
    let mut n: libc::c_int = 0;
    // SAFETY: FIONREAD stores one c_int through the pointer, which points at `n`. `fd` is the read
    // end of a pipe whose pump task has not finished, so it is still open and ours.
    let r = unsafe { libc::ioctl(fd, libc::FIONREAD, &mut n as *mut libc::c_int) };
    if r == 0 {
        n.max(0) as usize
    } else {
        0
    }
}

#[cfg(not(unix))]
fn unread_bytes(_fd: i32) -> usize {
    0
}

fn describe_exit(s: std::process::ExitStatus) -> String {
    #[cfg(unix)]
    {
        use std::os::unix::process::ExitStatusExt;
        if let Some(sig) = s.signal() {
            return format!("signal: {sig}");
        }
    }
    match s.code() {
        Some(c) => format!("exit status {c}"),
        None => "exit status unknown".to_string(),
    }
}

async fn pump_logs(
    mut from: impl tokio::io::AsyncRead + Unpin,
    logs: Arc<Mutex<Vec<u8>>>,
    activity: Arc<Notify>,
    done: Arc<AtomicBool>,
) {
    let mut buf = vec![0u8; 16 * 1024];
    loop {
        match from.read(&mut buf).await {
            Ok(0) | Err(_) => {
                // Set before `from` is dropped and its descriptor closed (and maybe reused).
                done.store(true, Ordering::Release);
                return;
            }
            Ok(n) => {
                {
                    let mut l = logs.lock().unwrap_or_else(|e| e.into_inner());
                    l.extend_from_slice(&buf[..n]);
                    if l.len() > LOG_BUFFER_BYTES {
                        let cut = l.len() - LOG_BUFFER_BYTES;
                        l.drain(..cut);
                    }
                }
                activity.notify_waiters();
            }
        }
    }
}

type Body = Full<Bytes>;

async fn serve_runtime_api(listener: tokio::net::TcpListener, shared: Arc<Shared>) {
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            continue;
        };
        let _ = stream.set_nodelay(true);
        let shared = shared.clone();
        tokio::spawn(async move {
            let svc = hyper::service::service_fn(move |req| handle(req, shared.clone()));
            // Title case, as Lambda sends them: some runtime clients match header names exactly.
            // Only the reading of a request head is timed: a runtime long-polls
            // `/invocation/next` for minutes, and that wait is never cut.
            let _ = hyper::server::conn::http1::Builder::new()
                .title_case_headers(true)
                .timer(hyper_util::rt::TokioTimer::new())
                .header_read_timeout(crate::host::HTTP_HEADER_TIMEOUT)
                .serve_connection(TokioIo::new(stream), svc)
                .await;
        });
    }
}

fn reply(status: StatusCode, body: serde_json::Value) -> Response<Body> {
    Response::builder()
        .status(status)
        .header("Content-Type", "application/json")
        .body(Full::new(Bytes::from(body.to_string())))
        .expect("static response parts are valid")
}

async fn handle(req: Request<Incoming>, shared: Arc<Shared>) -> Result<Response<Body>, std::convert::Infallible> {
    let path = req.uri().path().to_string();
    let method = req.method().clone();
    let Some(rest) = path.strip_prefix(RUNTIME_PREFIX) else {
        return Ok(reply(
            StatusCode::NOT_FOUND,
            json!({"errorMessage": format!("unknown path {path}"), "errorType": "NotFound"}),
        ));
    };
    let segments: Vec<&str> = rest.trim_start_matches('/').split('/').collect();
    match (method.as_str(), segments.as_slice()) {
        ("GET", ["invocation", "next"]) => Ok(next(&shared).await),
        ("POST", ["invocation", id, kind @ ("response" | "error")]) => {
            let error_type_header = header(&req, "Lambda-Runtime-Function-Error-Type");
            let body = match req.into_body().collect().await {
                Ok(b) => b.to_bytes(),
                Err(e) => {
                    return Ok(reply(
                        StatusCode::BAD_REQUEST,
                        json!({"errorMessage": format!("could not read the body: {e}"), "errorType": "InvalidRequest"}),
                    ))
                }
            };
            let current = {
                let mut cur = shared.current.lock().unwrap_or_else(|e| e.into_inner());
                match cur.as_ref() {
                    Some(c) if c.request_id == *id => cur.take(),
                    _ => None,
                }
            };
            let Some(current) = current else {
                return Ok(reply(
                    StatusCode::BAD_REQUEST,
                    json!({"errorMessage": format!("Invalid request ID: {id}"), "errorType": "InvalidRequestID"}),
                ));
            };
            if *kind == "response" {
                if body.len() > MAX_RESPONSE_BYTES {
                    let _ = current.reply.send(RuntimeReply::ResponseTooLarge(body.len()));
                    return Ok(reply(
                        StatusCode::PAYLOAD_TOO_LARGE,
                        json!({
                        "errorMessage": format!("Exceeded maximum allowed payload size ({MAX_RESPONSE_BYTES} bytes)."),
                        "errorType": "RequestEntityTooLarge"}),
                    ));
                }
                let _ = current.reply.send(RuntimeReply::Response(body));
            } else {
                let error_type = error_type_from(error_type_header, &body);
                let _ = current.reply.send(RuntimeReply::Error { error_type, body });
            }
            Ok(reply(StatusCode::ACCEPTED, json!({"status": "OK"})))
        }
        ("POST", ["init", "error"]) => {
            let error_type_header = header(&req, "Lambda-Runtime-Function-Error-Type");
            let body = req
                .into_body()
                .collect()
                .await
                .map(|b| b.to_bytes())
                .unwrap_or_default();
            let sender = shared.init.lock().unwrap_or_else(|e| e.into_inner()).take();
            match sender {
                Some(s) => {
                    let error_type = error_type_from(error_type_header, &body);
                    let _ = s.send(InitSignal::Error { error_type, body });
                    Ok(reply(StatusCode::ACCEPTED, json!({"status": "OK"})))
                }
                None => Ok(reply(
                    StatusCode::FORBIDDEN,
                    json!({"errorMessage": "init error reported after init", "errorType": "InvalidStateTransition"}),
                )),
            }
        }
        _ => Ok(reply(
            StatusCode::NOT_FOUND,
            json!({"errorMessage": format!("unknown path {method} {path}"), "errorType": "NotFound"}),
        )),
    }
}

fn header(req: &Request<Incoming>, name: &str) -> Option<String> {
    req.headers()
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string)
}

fn error_type_from(header: Option<String>, body: &[u8]) -> String {
    header
        .filter(|h| !h.is_empty())
        .or_else(|| {
            serde_json::from_slice::<serde_json::Value>(body)
                .ok()
                .and_then(|v| v.get("errorType").and_then(|t| t.as_str()).map(str::to_string))
        })
        .unwrap_or_else(|| "Unhandled".to_string())
}

async fn next(shared: &Shared) -> Response<Body> {
    if let Some(init) = shared.init.lock().unwrap_or_else(|e| e.into_inner()).take() {
        let _ = init.send(InitSignal::Ready);
    }
    let pending = {
        let mut rx = shared.invocations.lock().await;
        rx.recv().await
    };
    let Some(Pending { inv: p, reply: p_reply }) = pending else {
        return reply(
            StatusCode::INTERNAL_SERVER_ERROR,
            json!({"errorMessage": "the environment is shutting down", "errorType": "ShuttingDown"}),
        );
    };
    let mut b = Response::builder()
        .status(StatusCode::OK)
        .header("Content-Type", "application/json")
        .header("Lambda-Runtime-Aws-Request-Id", &p.request_id)
        .header("Lambda-Runtime-Deadline-Ms", p.deadline_ms.to_string())
        .header("Lambda-Runtime-Invoked-Function-Arn", &p.invoked_arn)
        .header("Lambda-Runtime-Trace-Id", &p.trace_id);
    if let Some(cc) = &p.client_context {
        b = b.header("Lambda-Runtime-Client-Context", cc);
    }
    if let Some(ci) = &p.cognito_identity {
        b = b.header("Lambda-Runtime-Cognito-Identity", ci);
    }
    let resp = b.body(Full::new(p.payload)).unwrap_or_else(|e| {
        reply(
            StatusCode::INTERNAL_SERVER_ERROR,
            json!({"errorMessage": e.to_string(), "errorType": "InvalidHeader"}),
        )
    });
    *shared.current.lock().unwrap_or_else(|e| e.into_inner()) = Some(Current {
        request_id: p.request_id,
        reply: p_reply,
    });
    resp
}

#[cfg(test)]
mod tests {
    use super::error_type_from;

    #[test]
    fn error_type_comes_from_the_header_then_the_body() {
        let body = br#"{"errorType": "MyError", "errorMessage": "m"}"#;
        assert_eq!(error_type_from(Some("Runtime.Header".into()), body), "Runtime.Header");
        assert_eq!(error_type_from(None, body), "MyError");
        assert_eq!(error_type_from(Some(String::new()), body), "MyError");
        assert_eq!(error_type_from(None, b"not json"), "Unhandled");
    }
}
