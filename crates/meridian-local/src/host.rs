//! The Lambda host of the local regions: the registry (create, update, publish, alias), the
//! process pool (warm reuse, scale-out up to the concurrency limit, idle reaping) and invocation
//! (timeouts, crashes, logs, metrics). This is the Rust API the deployer calls; the Invoke API
//! server ([`crate::invoke_api`]) and the CLI are thin layers over it.

use crate::code;
use crate::error::{LambdaError, Result};
use crate::metrics::{aggregate, minute_of, MinuteBucket, Outcome, PendingBucket, Recorder};
use crate::model::{
    function_arn, validate_alias_name, Alias, CodeSource, FunctionRef, FunctionSpec, FunctionVersion, RuntimeKind,
    LATEST,
};
use crate::sandbox::{Env, EnvResult, InitFailure, Invocation, Launch, RuntimeReply, MAX_RESPONSE_BYTES};
use crate::store::Store;
use base64::Engine as _;
use bytes::Bytes;
use meridian_core::clock::EpochMillis;
use meridian_core::{Clock, RegionId, SystemClock};
use serde_json::json;
use std::collections::{BTreeMap, HashMap};
use std::ffi::OsString;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock, Weak};
use std::time::{Duration, Instant};

/// The longest `ClientContext` Lambda accepts: 3,583 bytes of base64 (the Invoke API's model).
pub const MAX_CLIENT_CONTEXT_BYTES: usize = 3583;

/// The largest synchronous request payload Lambda accepts.
pub const MAX_SYNC_PAYLOAD_BYTES: usize = 6 * 1024 * 1024;
/// The largest asynchronous (`Event`) request payload Lambda accepts.
pub const MAX_ASYNC_PAYLOAD_BYTES: usize = 256 * 1024;
/// `X-Amz-Log-Result` carries the last 4 KB of the log.
const TAIL_BYTES: usize = 4096;

/// How the host runs functions.
#[derive(Debug, Clone)]
pub struct HostConfig {
    /// Root of Meridian's state; the registry is `<data_dir>/local-lambda.sqlite`, code lives under
    /// `<data_dir>/regions/<region>/lambda/`.
    pub data_dir: PathBuf,
    /// Python interpreter for `python3.x` functions.
    pub python: PathBuf,
    /// Node.js for `nodejsN.x` functions.
    pub node: PathBuf,
    /// Warm environments idle this long are stopped.
    pub idle_timeout: Duration,
    /// Time a runtime has to ask for its first invocation (Lambda: 10 s).
    pub init_timeout: Duration,
    /// Concurrent executions per function when it has no reserved concurrency.
    pub max_concurrency_per_function: u32,
    /// Delays before the retries of a failed `Event` invocation (Lambda retries twice, after about
    /// one and two minutes; locally the default is one and two seconds).
    pub async_retry_delays: Vec<Duration>,
    pub clock: Arc<dyn Clock>,
    /// How long the Invoke API waits for a connection's request headers (an idle or silent
    /// client is dropped after this; default 30 s). A request being served is never timed out.
    pub http_header_timeout: Duration,
}

/// The Invoke API's default [`HostConfig::http_header_timeout`], and the Runtime API's header
/// read timeout: a connection that sends no complete request head for this long is closed.
pub const HTTP_HEADER_TIMEOUT: Duration = Duration::from_secs(30);

impl HostConfig {
    pub fn new(data_dir: impl Into<PathBuf>) -> Self {
        HostConfig {
            data_dir: data_dir.into(),
            python: std::env::var_os("MERIDIAN_PYTHON")
                .map(PathBuf::from)
                .unwrap_or_else(|| "python3".into()),
            node: std::env::var_os("MERIDIAN_NODE")
                .map(PathBuf::from)
                .unwrap_or_else(|| "node".into()),
            idle_timeout: Duration::from_secs(300),
            init_timeout: Duration::from_secs(10),
            max_concurrency_per_function: 10,
            async_retry_delays: vec![Duration::from_secs(1), Duration::from_secs(2)],
            clock: Arc::new(SystemClock),
            http_header_timeout: HTTP_HEADER_TIMEOUT,
        }
    }
}

/// One call of the Invoke API.
#[derive(Debug, Clone, Default)]
pub struct InvokeRequest {
    /// Name, ARN or partial ARN, optionally with `:qualifier`.
    pub function: String,
    pub qualifier: Option<String>,
    pub payload: Bytes,
    /// `X-Amz-Log-Type: Tail`.
    pub tail_logs: bool,
    /// `X-Amz-Client-Context`, base64-encoded JSON.
    pub client_context: Option<String>,
}

impl InvokeRequest {
    pub fn new(function: &str, payload: impl Into<Bytes>) -> Self {
        InvokeRequest {
            function: function.to_string(),
            payload: payload.into(),
            ..Default::default()
        }
    }
}

/// The result of a synchronous invocation.
#[derive(Debug, Clone)]
pub struct InvokeResponse {
    pub request_id: String,
    pub payload: Bytes,
    /// `X-Amz-Function-Error`: `Unhandled` when the function failed.
    pub function_error: Option<String>,
    pub executed_version: String,
    /// `X-Amz-Log-Result`: the last 4 KB of this invocation's log, base64.
    pub log_result: Option<String>,
    pub duration: Duration,
    /// True when this invocation started a new execution environment.
    pub cold_start: bool,
}

impl InvokeResponse {
    /// The decoded log tail.
    pub fn log_text(&self) -> Option<String> {
        let b = base64::engine::general_purpose::STANDARD
            .decode(self.log_result.as_ref()?)
            .ok()?;
        Some(String::from_utf8_lossy(&b).into_owned())
    }
}

/// A resolved target: which version runs, and through which alias.
#[derive(Debug, Clone)]
pub struct Resolved {
    pub version: FunctionVersion,
    pub alias: Option<String>,
    pub reserved_concurrency: Option<u32>,
    /// The ARN the runtime sees as `Lambda-Runtime-Invoked-Function-Arn`.
    pub invoked_arn: String,
}

/// Changes to a function's configuration; `None` keeps the current value.
#[derive(Debug, Clone, Default)]
pub struct ConfigUpdate {
    pub runtime: Option<String>,
    pub handler: Option<String>,
    pub memory_size: Option<u32>,
    pub timeout: Option<u32>,
    pub environment: Option<BTreeMap<String, String>>,
    pub description: Option<String>,
}

type PoolKey = (String, String, String, String);

#[derive(Default)]
struct Pools {
    idle: HashMap<PoolKey, Vec<Arc<Env>>>,
    /// Executions running (or starting) per (region, function).
    inflight: HashMap<(String, String), u32>,
}

struct Inner {
    cfg: HostConfig,
    store: Store,
    recorder: Recorder,
    pools: Mutex<Pools>,
    runtime_dir: PathBuf,
    /// Error-diffusion accumulators of weighted aliases, per alias ARN and revision.
    routing: Mutex<HashMap<String, f64>>,
    ids: AtomicU64,
    python: OnceLock<std::result::Result<(PathBuf, String), String>>,
    node_version: OnceLock<Option<String>>,
    warned: Mutex<std::collections::HashSet<String>>,
    logs: crate::logs::LogWriter,
    /// Where the local API is served, for functions' environment.
    endpoint: Mutex<Option<String>>,
}

/// The Lambda host. Cheap to clone; clones share everything.
#[derive(Clone)]
pub struct LambdaHost {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for LambdaHost {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LambdaHost")
            .field("data_dir", &self.inner.cfg.data_dir)
            .finish()
    }
}

struct SlotGuard {
    host: Weak<Inner>,
    key: (String, String),
}

impl Drop for SlotGuard {
    fn drop(&mut self) {
        if let Some(inner) = self.host.upgrade() {
            let mut pools = inner.pools.lock().unwrap_or_else(|e| e.into_inner());
            if let Some(n) = pools.inflight.get_mut(&self.key) {
                *n = n.saturating_sub(1);
            }
        }
    }
}

impl LambdaHost {
    /// Opens (or creates) the state under `cfg.data_dir`.
    pub fn open(mut cfg: HostConfig) -> Result<Self> {
        // Runtimes start in their code directory: every path they are given must be absolute.
        if let Ok(abs) = std::path::absolute(&cfg.data_dir) {
            cfg.data_dir = abs;
        }
        let store = Store::open(&cfg.data_dir)?;
        let runtime_dir = cfg.data_dir.join("runtime");
        std::fs::create_dir_all(&runtime_dir).map_err(|e| LambdaError::io("create", &runtime_dir, e))?;
        for (name, text) in [
            ("python_bootstrap.py", include_str!("bootstrap/python_bootstrap.py")),
            ("node_bootstrap.js", include_str!("bootstrap/node_bootstrap.js")),
        ] {
            let path = runtime_dir.join(name);
            if std::fs::read_to_string(&path).ok().as_deref() != Some(text) {
                // Write beside and rename: another process may be starting a runtime from it.
                let tmp = runtime_dir.join(format!(".{name}.{}", std::process::id()));
                std::fs::write(&tmp, text).map_err(|e| LambdaError::io("write", &tmp, e))?;
                std::fs::rename(&tmp, &path).map_err(|e| LambdaError::io("write", &path, e))?;
            }
        }
        Ok(LambdaHost {
            inner: Arc::new(Inner {
                cfg,
                store,
                recorder: Recorder::default(),
                pools: Mutex::new(Pools::default()),
                runtime_dir,
                routing: Mutex::new(HashMap::new()),
                ids: AtomicU64::new(0),
                python: OnceLock::new(),
                node_version: OnceLock::new(),
                warned: Mutex::new(Default::default()),
                logs: crate::logs::LogWriter::start(),
                endpoint: Mutex::new(None),
            }),
        })
    }

    pub fn config(&self) -> &HostConfig {
        &self.inner.cfg
    }

    fn now(&self) -> EpochMillis {
        self.inner.cfg.clock.now_millis()
    }

    /// Tells functions started from now on where the local API is served (set in their
    /// environment as `AWS_ENDPOINT_URL_LAMBDA` and `AWS_ENDPOINT_URL_CODEDEPLOY`).
    pub fn set_service_endpoint(&self, url: Option<String>) {
        *self.inner.endpoint.lock().unwrap_or_else(|e| e.into_inner()) = url;
    }

    pub fn service_endpoint(&self) -> Option<String> {
        self.inner.endpoint.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    fn new_id(&self) -> String {
        new_request_id(&self.inner.ids)
    }

    // ---- registry ---------------------------------------------------------------------------

    /// Creates a function; its code becomes `$LATEST`.
    pub fn create_function(&self, region: &RegionId, spec: FunctionSpec, code: &CodeSource) -> Result<FunctionVersion> {
        spec.validate()?;
        let stored = code::store(&self.inner.cfg.data_dir, region, code)?;
        let v = FunctionVersion {
            region: region.clone(),
            function_name: spec.function_name.clone(),
            version: LATEST.to_string(),
            runtime: spec.runtime,
            handler: spec.handler,
            memory_size: spec.memory_size,
            timeout: spec.timeout,
            environment: spec.environment,
            description: spec.description,
            code_sha256: stored.sha256,
            code_size: stored.size,
            last_modified: self.now(),
            revision_id: self.new_id(),
        };
        if !self.inner.store.create_function(&v, spec.reserved_concurrency)? {
            return Err(LambdaError::ResourceConflict(format!(
                "Function already exist: {}",
                v.function_arn()
            )));
        }
        Ok(v)
    }

    fn latest(&self, region: &RegionId, name: &str) -> Result<FunctionVersion> {
        self.inner
            .store
            .get_version(region, name, LATEST)?
            .ok_or_else(|| LambdaError::FunctionNotFound {
                arn: function_arn(region, name),
            })
    }

    /// Stops the warm environments of `$LATEST` once its code or configuration changed: they run
    /// a revision no call will ask for again.
    fn retire_latest(&self, region: &RegionId, name: &str) {
        let mut pools = self.inner.pools.lock().unwrap_or_else(|e| e.into_inner());
        pools
            .idle
            .retain(|k, _| !(k.0 == region.as_str() && k.1 == name && k.2 == LATEST));
    }

    /// Replaces the code of `$LATEST`.
    pub fn update_function_code(&self, region: &RegionId, name: &str, code: &CodeSource) -> Result<FunctionVersion> {
        let mut v = self.latest(region, name)?;
        let stored = code::store(&self.inner.cfg.data_dir, region, code)?;
        v.code_sha256 = stored.sha256;
        v.code_size = stored.size;
        v.last_modified = self.now();
        v.revision_id = self.new_id();
        self.inner.store.put_latest(&v)?;
        self.retire_latest(region, name);
        Ok(v)
    }

    /// Changes the configuration of `$LATEST`.
    pub fn update_function_configuration(
        &self,
        region: &RegionId,
        name: &str,
        update: ConfigUpdate,
    ) -> Result<FunctionVersion> {
        let mut v = self.latest(region, name)?;
        let mut spec = FunctionSpec {
            function_name: v.function_name.clone(),
            runtime: update.runtime.unwrap_or(v.runtime.clone()),
            handler: update.handler.unwrap_or(v.handler.clone()),
            memory_size: update.memory_size.unwrap_or(v.memory_size),
            timeout: update.timeout.unwrap_or(v.timeout),
            environment: update.environment.unwrap_or(v.environment.clone()),
            description: update.description.unwrap_or(v.description.clone()),
            reserved_concurrency: None,
        };
        spec.validate()?;
        v.runtime = std::mem::take(&mut spec.runtime);
        v.handler = std::mem::take(&mut spec.handler);
        v.memory_size = spec.memory_size;
        v.timeout = spec.timeout;
        v.environment = std::mem::take(&mut spec.environment);
        v.description = std::mem::take(&mut spec.description);
        v.last_modified = self.now();
        v.revision_id = self.new_id();
        self.inner.store.put_latest(&v)?;
        self.retire_latest(region, name);
        Ok(v)
    }

    /// Sets (`Some`) or removes (`None`) a function's reserved concurrency.
    pub fn put_function_concurrency(&self, region: &RegionId, name: &str, reserved: Option<u32>) -> Result<()> {
        if self.inner.store.set_reserved_concurrency(region, name, reserved)? {
            Ok(())
        } else {
            Err(LambdaError::FunctionNotFound {
                arn: function_arn(region, name),
            })
        }
    }

    /// Publishes `$LATEST` as an immutable numbered version.
    pub fn publish_version(&self, region: &RegionId, name: &str, description: Option<&str>) -> Result<FunctionVersion> {
        self.inner
            .store
            .publish_version(region, name, description, self.now(), self.new_id())?
            .ok_or_else(|| LambdaError::FunctionNotFound {
                arn: function_arn(region, name),
            })
    }

    fn check_alias_target(
        &self,
        region: &RegionId,
        name: &str,
        version: &str,
        weights: &BTreeMap<String, f64>,
    ) -> Result<()> {
        let exists = |v: &str| -> Result<()> {
            self.inner
                .store
                .get_version(region, name, v)?
                .map(|_| ())
                .ok_or_else(|| LambdaError::VersionNotFound {
                    arn: function_arn(region, name),
                    version: v.to_string(),
                })
        };
        exists(version)?;
        if weights.len() > 1 {
            return Err(LambdaError::InvalidParameterValue(
                "an alias routes to at most one additional version".into(),
            ));
        }
        for (extra, w) in weights {
            if !(0.0..=1.0).contains(w) || w.is_nan() {
                return Err(LambdaError::InvalidParameterValue(format!(
                    "weight {w} of version {extra} is outside 0..=1"
                )));
            }
            if extra == version {
                return Err(LambdaError::InvalidParameterValue(format!(
                    "the additional version {extra} is the alias's own version"
                )));
            }
            if extra == LATEST || version == LATEST {
                return Err(LambdaError::InvalidParameterValue(
                    "$LATEST cannot take part in weighted routing; publish a version".into(),
                ));
            }
            exists(extra)?;
        }
        Ok(())
    }

    pub fn create_alias(
        &self,
        region: &RegionId,
        name: &str,
        alias: &str,
        version: &str,
        weights: BTreeMap<String, f64>,
        description: &str,
    ) -> Result<Alias> {
        validate_alias_name(alias)?;
        self.latest(region, name)?;
        self.check_alias_target(region, name, version, &weights)?;
        let a = Alias {
            region: region.clone(),
            function_name: name.to_string(),
            name: alias.to_string(),
            function_version: version.to_string(),
            additional_version_weights: weights,
            description: description.to_string(),
            revision_id: self.new_id(),
        };
        if !self.inner.store.put_alias(&a, true)? {
            return Err(LambdaError::ResourceConflict(format!(
                "Alias already exists: {}",
                a.arn()
            )));
        }
        Ok(a)
    }

    /// Changes an alias; `None` keeps the current version / routing / description.
    pub fn update_alias(
        &self,
        region: &RegionId,
        name: &str,
        alias: &str,
        version: Option<&str>,
        weights: Option<BTreeMap<String, f64>>,
        description: Option<&str>,
    ) -> Result<Alias> {
        let mut a = self.get_alias(region, name, alias)?;
        if let Some(v) = version {
            a.function_version = v.to_string();
        }
        if let Some(w) = weights {
            a.additional_version_weights = w;
        }
        if let Some(d) = description {
            a.description = d.to_string();
        }
        self.check_alias_target(region, name, &a.function_version, &a.additional_version_weights)?;
        a.revision_id = self.new_id();
        self.inner.store.put_alias(&a, false)?;
        Ok(a)
    }

    pub fn get_alias(&self, region: &RegionId, name: &str, alias: &str) -> Result<Alias> {
        self.inner
            .store
            .get_alias(region, name, alias)?
            .ok_or_else(|| LambdaError::AliasNotFound {
                arn: format!("{}:{alias}", function_arn(region, name)),
            })
    }

    pub fn list_aliases(&self, region: &RegionId, name: &str) -> Result<Vec<Alias>> {
        self.latest(region, name)?;
        self.inner.store.list_aliases(region, name)
    }

    /// Deletes a function with all its versions and aliases, and stops its environments.
    pub fn delete_function(&self, region: &RegionId, name: &str) -> Result<()> {
        if !self.inner.store.delete_function(region, name)? {
            return Err(LambdaError::FunctionNotFound {
                arn: function_arn(region, name),
            });
        }
        let mut pools = self.inner.pools.lock().unwrap_or_else(|e| e.into_inner());
        pools.idle.retain(|k, _| !(k.0 == region.as_str() && k.1 == name));
        Ok(())
    }

    /// A version (`$LATEST` when `qualifier` is `None`) or the version an alias points to, with the
    /// function's reserved concurrency.
    pub fn get_function(
        &self,
        region: &RegionId,
        function: &str,
        qualifier: Option<&str>,
    ) -> Result<(FunctionVersion, Option<u32>)> {
        let r = FunctionRef::parse(function)?;
        let region = r.region.clone().unwrap_or_else(|| region.clone());
        let q = merge_qualifier(&r, qualifier)?;
        let reserved =
            self.inner
                .store
                .function_exists(&region, &r.name)?
                .ok_or_else(|| LambdaError::FunctionNotFound {
                    arn: function_arn(&region, &r.name),
                })?;
        let version = match q.as_deref() {
            None | Some(LATEST) => LATEST.to_string(),
            Some(v) if v.chars().all(|c| c.is_ascii_digit()) => v.to_string(),
            Some(alias) => self.get_alias(&region, &r.name, alias)?.function_version,
        };
        let v = self
            .inner
            .store
            .get_version(&region, &r.name, &version)?
            .ok_or_else(|| LambdaError::VersionNotFound {
                arn: function_arn(&region, &r.name),
                version,
            })?;
        Ok((v, reserved))
    }

    pub fn list_functions(&self, region: &RegionId) -> Result<Vec<FunctionVersion>> {
        self.inner.store.list_functions(region)
    }

    /// `$LATEST` first, then the published versions in order.
    pub fn list_versions(&self, region: &RegionId, name: &str) -> Result<Vec<FunctionVersion>> {
        let v = self.inner.store.list_versions(region, name)?;
        if v.is_empty() {
            return Err(LambdaError::FunctionNotFound {
                arn: function_arn(region, name),
            });
        }
        Ok(v)
    }

    // ---- invocation -------------------------------------------------------------------------

    /// Finds what an invocation would run, picking a version of a weighted alias. This is all a
    /// `DryRun` invocation does.
    pub fn resolve(&self, region: &RegionId, function: &str, qualifier: Option<&str>) -> Result<Resolved> {
        let r = FunctionRef::parse(function)?;
        let region = r.region.clone().unwrap_or_else(|| region.clone());
        let q = merge_qualifier(&r, qualifier)?;
        let reserved =
            self.inner
                .store
                .function_exists(&region, &r.name)?
                .ok_or_else(|| LambdaError::FunctionNotFound {
                    arn: function_arn(&region, &r.name),
                })?;
        let base = function_arn(&region, &r.name);
        let (version, alias) = match q.as_deref() {
            None => (LATEST.to_string(), None),
            Some(LATEST) => (LATEST.to_string(), None),
            Some(v) if v.chars().all(|c| c.is_ascii_digit()) => (v.to_string(), None),
            Some(alias) => {
                let a = self.get_alias(&region, &r.name, alias)?;
                (self.pick_version(&a), Some(a.name))
            }
        };
        let v = self
            .inner
            .store
            .get_version(&region, &r.name, &version)?
            .ok_or_else(|| LambdaError::VersionNotFound {
                arn: base.clone(),
                version: version.clone(),
            })?;
        let invoked_arn = match &q {
            Some(q) => format!("{base}:{q}"),
            None => base,
        };
        Ok(Resolved {
            version: v,
            alias,
            reserved_concurrency: reserved,
            invoked_arn,
        })
    }

    /// Weighted routing by error diffusion: each call adds the weight to an accumulator and the
    /// additional version runs whenever it passes one. Over N calls the additional version runs
    /// round(N x weight) times (exactly, not just on average), interleaved evenly.
    fn pick_version(&self, a: &Alias) -> String {
        let Some((extra, w)) = a.additional_version_weights.iter().next() else {
            return a.function_version.clone();
        };
        let key = format!("{}#{}", a.arn(), a.revision_id);
        let mut routing = self.inner.routing.lock().unwrap_or_else(|e| e.into_inner());
        let acc = routing.entry(key).or_insert(ROUTING_START);
        if route_to_additional(acc, *w) {
            extra.clone()
        } else {
            a.function_version.clone()
        }
    }

    fn check_payload(payload: &[u8], limit: usize, kind: &'static str) -> Result<()> {
        if payload.len() > limit {
            return Err(LambdaError::RequestTooLarge {
                kind,
                size: payload.len(),
                limit,
            });
        }
        if !payload.is_empty() {
            serde_json::from_slice::<serde::de::IgnoredAny>(payload)
                .map_err(|e| LambdaError::InvalidRequestContent(e.to_string()))?;
        }
        Ok(())
    }

    /// `ClientContext` is at most [`MAX_CLIENT_CONTEXT_BYTES`] of base64, refused at once
    /// otherwise (a longer one could not reach the runtime: the invoke hung until its timeout).
    fn check_client_context(req: &InvokeRequest) -> Result<()> {
        match &req.client_context {
            Some(cc) if cc.len() > MAX_CLIENT_CONTEXT_BYTES => Err(LambdaError::InvalidParameterValue(format!(
                "Client context must be at most {MAX_CLIENT_CONTEXT_BYTES} bytes of base64-encoded data; this one is {} bytes",
                cc.len()
            ))),
            _ => Ok(()),
        }
    }

    /// Validates a `DryRun` invocation: the function and qualifier exist and the payload is valid.
    pub fn dry_run(&self, region: &RegionId, req: &InvokeRequest) -> Result<Resolved> {
        Self::check_payload(&req.payload, MAX_SYNC_PAYLOAD_BYTES, "Request")?;
        Self::check_client_context(req)?;
        self.resolve(region, &req.function, req.qualifier.as_deref())
    }

    /// A synchronous (`RequestResponse`) invocation.
    pub async fn invoke(&self, region: &RegionId, req: InvokeRequest) -> Result<InvokeResponse> {
        Self::check_payload(&req.payload, MAX_SYNC_PAYLOAD_BYTES, "Request")?;
        Self::check_client_context(&req)?;
        let resolved = self.resolve(region, &req.function, req.qualifier.as_deref())?;
        self.run(resolved, req).await
    }

    /// An asynchronous (`Event`) invocation: validated now, queued, and retried twice when the
    /// function fails or is throttled, as Lambda does. Returns the request id.
    pub fn invoke_event(&self, region: &RegionId, req: InvokeRequest) -> Result<String> {
        Self::check_payload(&req.payload, MAX_ASYNC_PAYLOAD_BYTES, "Request")?;
        Self::check_client_context(&req)?;
        // Resolve now so that an unknown function fails the call, as on AWS.
        self.resolve(region, &req.function, req.qualifier.as_deref())?;
        let request_id = self.new_id();
        let host = self.clone();
        let region = region.clone();
        tokio::spawn(async move {
            let delays = host.inner.cfg.async_retry_delays.clone();
            for attempt in 0..=delays.len() {
                let failed = match host.resolve(&region, &req.function, req.qualifier.as_deref()) {
                    Ok(resolved) => match host.run(resolved, req.clone()).await {
                        Ok(r) => r.function_error.is_some(),
                        Err(LambdaError::TooManyRequests { .. }) => true,
                        Err(_) => false,
                    },
                    Err(_) => false,
                };
                if !failed || attempt == delays.len() {
                    return;
                }
                tokio::time::sleep(delays[attempt]).await;
            }
        });
        Ok(request_id)
    }

    async fn run(&self, resolved: Resolved, req: InvokeRequest) -> Result<InvokeResponse> {
        let inner = &self.inner;
        let v = &resolved.version;
        let fkey = (v.region.as_str().to_string(), v.function_name.clone());
        let limit = resolved
            .reserved_concurrency
            .unwrap_or(inner.cfg.max_concurrency_per_function);
        // Take a concurrency slot, and a warm environment when one is idle.
        let pool_key: PoolKey = (fkey.0.clone(), fkey.1.clone(), v.version.clone(), v.revision_id.clone());
        let (concurrency, warm) = {
            let mut pools = inner.pools.lock().unwrap_or_else(|e| e.into_inner());
            let running = pools.inflight.get(&fkey).copied().unwrap_or(0);
            if running >= limit {
                drop(pools);
                inner.recorder.record(
                    self.now(),
                    &fkey.0,
                    &fkey.1,
                    &v.version,
                    resolved.alias.as_deref(),
                    Outcome::Throttled,
                    None,
                    running,
                );
                return Err(LambdaError::TooManyRequests {
                    function: v.function_arn(),
                    limit,
                    reason: if resolved.reserved_concurrency.is_some() {
                        "ReservedFunctionConcurrentInvocationLimitExceeded"
                    } else {
                        "ConcurrentInvocationLimitExceeded"
                    },
                });
            }
            pools.inflight.insert(fkey.clone(), running + 1);
            let mut warm = None;
            if let Some(list) = pools.idle.get_mut(&pool_key) {
                while let Some(env) = list.pop() {
                    if env.is_alive() {
                        warm = Some(env);
                        break;
                    }
                }
            }
            (running + 1, warm)
        };
        let _slot = SlotGuard {
            host: Arc::downgrade(&self.inner),
            key: fkey.clone(),
        };

        let request_id = self.new_id();
        let start_ms = self.now();
        let mut log = format!("START RequestId: {request_id} Version: {}\n", v.version).into_bytes();
        let cold_start = warm.is_none();
        let call_started = Instant::now();
        let env = match warm {
            Some(env) => Ok(env),
            None => self.start_env(&resolved).await,
        };
        // Duration is the function's own time, as Lambda reports it; a cold start's init is
        // reported separately (Init Duration).
        let mut started = Instant::now();

        let timeout = Duration::from_secs(v.timeout as u64);
        let (payload, function_error, env_back, init_ms) = match env {
            Err((failure, init_logs)) => {
                started = call_started;
                log.extend_from_slice(&init_logs);
                let (payload, line) = init_failure_payload(&request_id, failure);
                log.extend_from_slice(line.as_bytes());
                (payload, Some("Unhandled".to_string()), None, None)
            }
            Ok(env) => {
                let init_ms = {
                    let mut fresh = env.fresh.lock().unwrap_or_else(|e| e.into_inner());
                    std::mem::replace(&mut *fresh, false).then_some(env.init_duration)
                };
                let deadline = self.now() + timeout.as_millis() as i64;
                let inv = Invocation {
                    request_id: request_id.clone(),
                    payload: if req.payload.is_empty() {
                        Bytes::from_static(b"{}")
                    } else {
                        req.payload.clone()
                    },
                    deadline_ms: deadline,
                    invoked_arn: resolved.invoked_arn.clone(),
                    trace_id: trace_id(start_ms, &request_id),
                    client_context: req.client_context.as_deref().and_then(decode_client_context),
                    cognito_identity: None,
                };
                let result = env.run(inv, timeout).await;
                if req.tail_logs {
                    env.settle_logs(Duration::from_millis(200)).await;
                }
                log.extend_from_slice(&env.take_logs());
                match result {
                    EnvResult::Reply(RuntimeReply::Response(body)) => (body, None, Some(env), init_ms),
                    EnvResult::Reply(RuntimeReply::Error { error_type, body }) => {
                        let body = if body.is_empty() {
                            Bytes::from(json!({"errorType": error_type, "errorMessage": ""}).to_string())
                        } else {
                            body
                        };
                        (body, Some("Unhandled".to_string()), Some(env), init_ms)
                    }
                    EnvResult::Reply(RuntimeReply::ResponseTooLarge(size)) => {
                        let msg = format!(
                            "Response payload size ({size} bytes) exceeded maximum allowed payload size ({MAX_RESPONSE_BYTES} bytes)."
                        );
                        let body = json!({"errorType": "Function.ResponseSizeTooLarge", "errorMessage": msg});
                        (
                            Bytes::from(body.to_string()),
                            Some("Unhandled".to_string()),
                            Some(env),
                            init_ms,
                        )
                    }
                    EnvResult::TimedOut => {
                        let msg = format!("Task timed out after {}.00 seconds", v.timeout);
                        log.extend_from_slice(
                            format!("{} {request_id} {msg}\n", crate::model::iso8601(self.now())).as_bytes(),
                        );
                        let body = json!({"errorType": "Sandbox.Timedout", "errorMessage": format!("RequestId: {request_id} Error: {msg}")});
                        (
                            Bytes::from(body.to_string()),
                            Some("Unhandled".to_string()),
                            None,
                            init_ms,
                        )
                    }
                    EnvResult::Exited(status) => {
                        let msg = format!("RequestId: {request_id} Error: Runtime exited with error: {status}");
                        log.extend_from_slice(format!("{msg}\nRuntime.ExitError\n").as_bytes());
                        let body = json!({"errorType": "Runtime.ExitError", "errorMessage": msg});
                        (
                            Bytes::from(body.to_string()),
                            Some("Unhandled".to_string()),
                            None,
                            init_ms,
                        )
                    }
                }
            }
        };
        let duration = started.elapsed();
        let billed = duration.as_millis() as u64 + 1;
        log.extend_from_slice(
            format!(
                "END RequestId: {request_id}\nREPORT RequestId: {request_id}\tDuration: {:.2} ms\tBilled Duration: {billed} ms\tMemory Size: {} MB{}\n",
                duration.as_secs_f64() * 1000.0,
                v.memory_size,
                init_ms
                    .map(|d| format!("\tInit Duration: {:.2} ms", d.as_secs_f64() * 1000.0))
                    .unwrap_or_default(),
            )
            .as_bytes(),
        );
        inner.recorder.record(
            start_ms,
            &fkey.0,
            &fkey.1,
            &v.version,
            resolved.alias.as_deref(),
            if function_error.is_some() {
                Outcome::Error
            } else {
                Outcome::Success
            },
            Some(duration.as_micros() as u64),
            concurrency,
        );
        if let Some(env) = env_back {
            if env.is_alive() {
                *env.last_used.lock().unwrap_or_else(|e| e.into_inner()) = Instant::now();
                let mut pools = inner.pools.lock().unwrap_or_else(|e| e.into_inner());
                pools.idle.entry(pool_key).or_default().push(env);
            }
        }
        let log_result = req.tail_logs.then(|| {
            let tail = &log[log.len().saturating_sub(TAIL_BYTES)..];
            base64::engine::general_purpose::STANDARD.encode(tail)
        });
        self.append_log_file(v, log);
        Ok(InvokeResponse {
            request_id,
            payload,
            function_error,
            executed_version: v.version.clone(),
            log_result,
            duration,
            cold_start,
        })
    }

    /// Appends an invocation's log to `<data-dir>/regions/<region>/lambda/logs/<function>.log`,
    /// the local stand-in for the function's CloudWatch log group (written in the background).
    fn append_log_file(&self, v: &FunctionVersion, log: Vec<u8>) {
        let path = self
            .inner
            .cfg
            .data_dir
            .join("regions")
            .join(v.region.as_str())
            .join("lambda")
            .join("logs")
            .join(format!("{}.log", v.function_name));
        self.inner.logs.append(path, log);
    }

    /// Waits until every invocation log so far is on disk.
    pub fn flush_logs(&self) {
        self.inner.logs.flush();
    }

    async fn start_env(&self, r: &Resolved) -> std::result::Result<Arc<Env>, (InitFailure, Vec<u8>)> {
        let launch = self.launch(r).await.map_err(|f| (f, Vec::new()))?;
        Env::start(launch, "AWS_LAMBDA_RUNTIME_API", self.inner.cfg.init_timeout).await
    }

    async fn launch(&self, r: &Resolved) -> std::result::Result<Launch, InitFailure> {
        let v = &r.version;
        let inner = &self.inner;
        let task_root = code::code_dir(&inner.cfg.data_dir, &v.region, &v.code_sha256);
        let kind = RuntimeKind::parse(&v.runtime).map_err(|e| InitFailure::Spawn(e.to_string()))?;
        let mut env: Vec<(String, String)> = Vec::new();
        if let Some(path) = std::env::var_os("PATH") {
            env.push(("PATH".into(), path.to_string_lossy().into_owned()));
        }
        let region = v.region.as_str().to_string();
        let stream = format!(
            "{}/[{}]{}",
            crate::model::iso8601(self.now())
                .get(..10)
                .unwrap_or("1970-01-01")
                .replace('-', "/"),
            v.version,
            self.new_id().replace('-', "")
        );
        for (k, val) in [
            ("AWS_LAMBDA_FUNCTION_NAME", v.function_name.clone()),
            ("AWS_LAMBDA_FUNCTION_VERSION", v.version.clone()),
            ("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", v.memory_size.to_string()),
            ("AWS_LAMBDA_LOG_GROUP_NAME", format!("/aws/lambda/{}", v.function_name)),
            ("AWS_LAMBDA_LOG_STREAM_NAME", stream),
            ("AWS_LAMBDA_INITIALIZATION_TYPE", "on-demand".into()),
            ("AWS_EXECUTION_ENV", format!("AWS_Lambda_{}", v.runtime)),
            ("AWS_REGION", region.clone()),
            ("AWS_DEFAULT_REGION", region),
            ("_HANDLER", v.handler.clone()),
            ("LAMBDA_TASK_ROOT", task_root.to_string_lossy().into_owned()),
            ("LAMBDA_RUNTIME_DIR", inner.runtime_dir.to_string_lossy().into_owned()),
            ("TZ", ":UTC".into()),
            ("LANG", "en_US.UTF-8".into()),
        ] {
            env.push((k.to_string(), val));
        }
        // Lambda gives every function credentials (SDKs refuse to sign without them), and the
        // local endpoint when one is being served: the same variables a build gets.
        let url = self.service_endpoint();
        for (k, val) in crate::credentials::client_env(v.region.as_ref(), url.as_deref()) {
            if k != "AWS_REGION" && k != "AWS_DEFAULT_REGION" {
                env.push((k, val));
            }
        }
        for (k, val) in &v.environment {
            env.push((k.clone(), val.clone()));
        }
        let (program, args): (PathBuf, Vec<OsString>) = match kind {
            RuntimeKind::Provided => {
                let bootstrap = task_root.join("bootstrap");
                if !bootstrap.is_file() {
                    return Err(InitFailure::Reported {
                        error_type: "Runtime.InvalidEntrypoint".into(),
                        body: Bytes::from(
                            json!({"errorType": "Runtime.InvalidEntrypoint", "errorMessage": "Couldn't find valid bootstrap(s): [/var/task/bootstrap /opt/bootstrap]"})
                                .to_string(),
                        ),
                    });
                }
                (bootstrap, Vec::new())
            }
            RuntimeKind::Python { minor } => {
                let (python, version) = self.python().await.map_err(InitFailure::Spawn)?;
                self.warn_version(&v.runtime, &format!("3.{minor}"), &version, "Python");
                env.push(("PYTHONPATH".into(), task_root.to_string_lossy().into_owned()));
                env.push(("PYTHONUNBUFFERED".into(), "1".into()));
                env.push(("PYTHONDONTWRITEBYTECODE".into(), "1".into()));
                if task_root.join("awslambdaric").is_dir() {
                    (
                        python,
                        vec!["-m".into(), "awslambdaric".into(), v.handler.clone().into()],
                    )
                } else {
                    (
                        python,
                        vec![inner.runtime_dir.join("python_bootstrap.py").into_os_string()],
                    )
                }
            }
            RuntimeKind::Node { major } => {
                if let Some(version) = self.node_version().await {
                    self.warn_version(&v.runtime, &major.to_string(), &version, "Node.js");
                }
                env.push((
                    "NODE_PATH".into(),
                    task_root.join("node_modules").to_string_lossy().into_owned(),
                ));
                (
                    inner.cfg.node.clone(),
                    vec![inner.runtime_dir.join("node_bootstrap.js").into_os_string()],
                )
            }
        };
        Ok(Launch {
            program,
            args,
            cwd: task_root,
            env,
        })
    }

    /// A runtime version other than the local interpreter's still runs, with a warning (once).
    fn warn_version(&self, runtime: &str, wanted: &str, local: &str, language: &str) {
        let matches = local == wanted || local.starts_with(&format!("{wanted}."));
        if !matches
            && self
                .inner
                .warned
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .insert(runtime.to_string())
        {
            eprintln!("warning: functions with runtime {runtime} run on the local {language} {local}, not {wanted}");
        }
    }

    /// The real interpreter behind `cfg.python` (resolving shims such as pyenv's) and its version.
    async fn python(&self) -> std::result::Result<(PathBuf, String), String> {
        if let Some(r) = self.inner.python.get() {
            return r.clone();
        }
        let cfg = &self.inner.cfg;
        let out = tokio::process::Command::new(&cfg.python)
            .args([
                "-c",
                "import sys; print(sys.executable); print('%d.%d.%d' % sys.version_info[:3])",
            ])
            .output()
            .await;
        let r = match out {
            Ok(o) if o.status.success() => {
                let text = String::from_utf8_lossy(&o.stdout).into_owned();
                let mut lines = text.lines();
                match (lines.next(), lines.next()) {
                    (Some(exe), Some(ver)) if !exe.is_empty() => Ok((PathBuf::from(exe), ver.to_string())),
                    _ => Err(format!("`{}` did not report its executable", cfg.python.display())),
                }
            }
            Ok(o) => Err(format!(
                "`{}` failed: {}",
                cfg.python.display(),
                String::from_utf8_lossy(&o.stderr).trim()
            )),
            Err(e) => Err(format!(
                "failed to run the local Python `{}`: {e}",
                cfg.python.display()
            )),
        };
        let _ = self.inner.python.set(r.clone());
        r
    }

    async fn node_version(&self) -> Option<String> {
        if let Some(v) = self.inner.node_version.get() {
            return v.clone();
        }
        let out = tokio::process::Command::new(&self.inner.cfg.node)
            .arg("--version")
            .output()
            .await
            .ok();
        let v = out.filter(|o| o.status.success()).map(|o| {
            String::from_utf8_lossy(&o.stdout)
                .trim()
                .trim_start_matches('v')
                .to_string()
        });
        let _ = self.inner.node_version.set(v.clone());
        v
    }

    // ---- housekeeping -----------------------------------------------------------------------

    /// Stops environments idle for longer than the idle timeout. Returns how many were stopped.
    pub fn reap_idle(&self) -> usize {
        let idle_for = self.inner.cfg.idle_timeout;
        let mut pools = self.inner.pools.lock().unwrap_or_else(|e| e.into_inner());
        let mut reaped = 0;
        for list in pools.idle.values_mut() {
            let before = list.len();
            list.retain(|env| {
                env.is_alive() && env.last_used.lock().unwrap_or_else(|e| e.into_inner()).elapsed() < idle_for
            });
            reaped += before - list.len();
        }
        pools.idle.retain(|_, l| !l.is_empty());
        reaped
    }

    /// Warm environments per function version, for diagnostics and tests.
    pub fn warm_environments(&self, region: &RegionId, name: &str) -> usize {
        let pools = self.inner.pools.lock().unwrap_or_else(|e| e.into_inner());
        pools
            .idle
            .iter()
            .filter(|(k, _)| k.0 == region.as_str() && k.1 == name)
            .map(|(_, l)| l.len())
            .sum()
    }

    /// Writes recorded metrics to the store.
    pub fn flush_metrics(&self) -> Result<()> {
        let pending = self.inner.recorder.drain();
        let copy = pending.clone();
        if let Err(e) = self.inner.store.merge_metrics(pending) {
            self.inner.recorder.restore(copy);
            return Err(e);
        }
        Ok(())
    }

    /// One-minute buckets for a function (`qualifier` `None`), a version or an alias, for minutes
    /// that start in `[since, until)`. Minutes without invocations are left out.
    pub fn metrics(
        &self,
        region: &RegionId,
        function: &str,
        qualifier: Option<&str>,
        since: EpochMillis,
        until: EpochMillis,
    ) -> Result<Vec<MinuteBucket>> {
        let since = minute_of(since);
        let rows = self.metric_periods(region, function, qualifier, since, until, 60_000)?;
        Ok(rows.iter().map(|(m, b)| MinuteBucket::from_pending(*m, b)).collect())
    }

    /// Metrics of a function, version or alias aggregated into periods of `period_ms` (at least
    /// a second) aligned on `since`, for `[since, until)`. Periods without invocations are left
    /// out. Alarms and the canary judge read these.
    pub fn metric_periods(
        &self,
        region: &RegionId,
        function: &str,
        qualifier: Option<&str>,
        since: EpochMillis,
        until: EpochMillis,
        period_ms: i64,
    ) -> Result<Vec<(EpochMillis, PendingBucket)>> {
        self.flush_metrics()?;
        let rows = self
            .inner
            .store
            .read_metrics(region, function, qualifier.unwrap_or(""), since, until)?;
        Ok(aggregate(&rows, since, period_ms))
    }

    /// Starts the background work of a long-running host: metrics flushed every second and idle
    /// environments reaped. Stops by itself when the host is dropped.
    pub fn start_background(&self) -> tokio::task::JoinHandle<()> {
        let weak = Arc::downgrade(&self.inner);
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_secs(1));
            loop {
                tick.tick().await;
                let Some(inner) = weak.upgrade() else { return };
                let host = LambdaHost { inner };
                if let Err(e) = host.flush_metrics() {
                    eprintln!("warning: {e}");
                }
                host.reap_idle();
            }
        })
    }

    /// Flushes metrics and stops every warm environment.
    pub fn shutdown(&self) -> Result<()> {
        let mut pools = self.inner.pools.lock().unwrap_or_else(|e| e.into_inner());
        for env in pools.idle.drain().flat_map(|(_, l)| l) {
            env.kill_now();
        }
        drop(pools);
        self.flush_logs();
        self.flush_metrics()
    }
}

/// Where a weighted alias's accumulator starts: halfway, so that the additional version's calls
/// are rounded to the nearest whole number rather than down.
const ROUTING_START: f64 = 0.5;

/// One step of error-diffusion routing: true when this call goes to the additional version.
fn route_to_additional(acc: &mut f64, weight: f64) -> bool {
    *acc += weight;
    if *acc >= 1.0 {
        *acc -= 1.0;
        true
    } else {
        false
    }
}

fn merge_qualifier(r: &FunctionRef, qualifier: Option<&str>) -> Result<Option<String>> {
    match (r.qualifier.as_deref(), qualifier) {
        (Some(a), Some(b)) if a != b => Err(LambdaError::InvalidParameterValue(format!(
            "The derived qualifier from the function name ({a}) does not match the specified qualifier ({b})."
        ))),
        (Some(a), _) => Ok(Some(a.to_string())),
        (None, b) => Ok(b.map(str::to_string)),
    }
}

fn init_failure_payload(request_id: &str, failure: InitFailure) -> (Bytes, String) {
    match failure {
        InitFailure::Reported { error_type, body } => {
            let line = format!("INIT_REPORT Status: error\tError Type: {error_type}\n");
            let body = if body.is_empty() {
                Bytes::from(json!({"errorType": error_type, "errorMessage": ""}).to_string())
            } else {
                body
            };
            (body, line)
        }
        InitFailure::Exited(status) => {
            let msg = format!("RequestId: {request_id} Error: Runtime exited with error: {status}");
            (
                Bytes::from(json!({"errorType": "Runtime.ExitError", "errorMessage": msg}).to_string()),
                format!("{msg}\nRuntime.ExitError\n"),
            )
        }
        InitFailure::TimedOut(d) => {
            let msg = format!(
                "RequestId: {request_id} Error: Init timed out after {:.2} seconds",
                d.as_secs_f64()
            );
            (
                Bytes::from(json!({"errorType": "Sandbox.Timedout", "errorMessage": msg}).to_string()),
                format!("{msg}\n"),
            )
        }
        InitFailure::Spawn(why) => {
            let msg = format!("RequestId: {request_id} Error: {why}");
            (
                Bytes::from(json!({"errorType": "Runtime.InvalidEntrypoint", "errorMessage": msg}).to_string()),
                format!("{msg}\n"),
            )
        }
    }
}

fn decode_client_context(b64: &str) -> Option<String> {
    let bytes = base64::engine::general_purpose::STANDARD.decode(b64).ok()?;
    String::from_utf8(bytes).ok()
}

/// An X-Ray trace header: `Root=1-<epoch seconds hex>-<96 bits>;Parent=<64 bits>;Sampled=0`.
fn trace_id(now: EpochMillis, request_id: &str) -> String {
    let hex: String = request_id.chars().filter(|c| *c != '-').collect();
    format!(
        "Root=1-{:08x}-{};Parent={};Sampled=0;Lineage=1:{}:0",
        now / 1000,
        &hex[..24],
        &hex[16..32],
        &hex[..8]
    )
}

/// A random-looking UUID (version 4 layout) from time, process id and a counter, mixed with
/// SplitMix64; unique within and across processes, which is what request ids need.
pub(crate) fn new_request_id(counter: &AtomicU64) -> String {
    fn mix(mut z: u64) -> u64 {
        z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    let n = counter.fetch_add(1, Ordering::Relaxed);
    let t = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0);
    let a = mix(t ^ ((std::process::id() as u64) << 32) ^ n);
    let b = mix(a ^ n.rotate_left(17));
    let a = (a & 0xFFFF_FFFF_FFFF_0FFF) | 0x4000;
    let b = (b & 0x3FFF_FFFF_FFFF_FFFF) | 0x8000_0000_0000_0000;
    format!(
        "{:08x}-{:04x}-{:04x}-{:04x}-{:012x}",
        a >> 32,
        (a >> 16) & 0xFFFF,
        a & 0xFFFF,
        b >> 48,
        b & 0xFFFF_FFFF_FFFF
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        /// After any number of calls, the additional version has had the weighted share of
        /// them, rounded: never more than one call away from N x weight.
        #[test]
        fn weighted_routing_is_exact_to_one_call(weight in 0.0f64..=1.0, calls in 1usize..3000) {
            let mut acc = ROUTING_START;
            let mut extra = 0usize;
            for n in 1..=calls {
                if route_to_additional(&mut acc, weight) {
                    extra += 1;
                }
                prop_assert!((extra as f64 - n as f64 * weight).abs() <= 1.0 + 1e-9);
            }
            prop_assert!((0.0..1.0 + 1e-9).contains(&acc));
        }
    }

    #[test]
    fn request_ids_are_uuid_shaped_and_unique() {
        let n = AtomicU64::new(0);
        let ids: std::collections::HashSet<String> = (0..10_000).map(|_| new_request_id(&n)).collect();
        assert_eq!(ids.len(), 10_000);
        let id = ids.iter().next().unwrap();
        let parts: Vec<usize> = id.split('-').map(str::len).collect();
        assert_eq!(parts, [8, 4, 4, 4, 12]);
        assert_eq!(&id[14..15], "4", "version 4 layout: {id}");
    }
}
