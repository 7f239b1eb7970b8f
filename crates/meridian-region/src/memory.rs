//! An in-memory region: a small, honest implementation of every port ([`FunctionControl`],
//! [`StackDeployer`], [`ArtifactStores`]) for tests of the engine and the delivery driver,
//! in-process and on any [`Clock`] (a 30-minute canary runs in milliseconds on a `ManualClock`),
//! that can fail any call on demand: every call of every port counts, in order.
//!
//! Its functions are a model, not processes: every alias gets `rate` calls a second from users,
//! split between versions by the alias's routing at that moment; each version fails a set share
//! of its calls and answers with a set p99. Metrics are integrated second by second from the
//! routing history, so what the driver measures follows exactly what it routed.

use crate::artifacts::{ArtifactError, ArtifactStore, ArtifactStores, StoreLocation};
use crate::stacks::{
    AliasDeployment, AliasShifter, LiveFunction, Progress, StackDeployer, StackInfo, StackOutcome, StackRequest,
};
use crate::{ErrorKind, FunctionControl, RegionBackend, RegionError, Say};
use futures::future::BoxFuture;
use meridian_core::{Clock, Digest};
use meridian_delivery::alarm::MetricPoint;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};

/// How one version of a function behaves under traffic.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Behaviour {
    /// Share of calls that fail, `0..=1`.
    pub error_rate: f64,
    /// The 99th percentile of durations.
    pub p99_ms: f64,
}

impl Default for Behaviour {
    fn default() -> Self {
        Behaviour {
            error_rate: 0.0,
            p99_ms: 20.0,
        }
    }
}

/// An alias's routing from `at_ms` on: `version` takes what `extra` does not.
#[derive(Debug, Clone, PartialEq)]
pub struct Route {
    pub at_ms: i64,
    pub version: String,
    pub extra: Option<(String, f64)>,
}

impl Route {
    /// The share of the alias's calls that `version` serves under this routing.
    pub fn share(&self, version: &str) -> f64 {
        let extra = self.extra.as_ref().filter(|(v, w)| v != &self.version && *w > 0.0);
        match extra {
            Some((v, w)) if v == version => *w,
            Some((_, w)) if self.version == version => 1.0 - w,
            None if self.version == version => 1.0,
            _ => 0.0,
        }
    }
}

type AliasKey = (String, String, String);

/// A stack of the in-memory region: one function (`<stack>-fn`) behind an alias `live`, whose
/// code is the template. Deploying another template publishes the next version and moves the
/// alias to it, through the driver its operation is given (`Progress::shifter`), else at once.
#[derive(Debug, Clone)]
struct MemoryStack {
    id: String,
    status: String,
    /// Digest of the template and parameters deployed.
    release: String,
    version: u32,
    outputs: BTreeMap<String, String>,
}

#[derive(Default)]
struct State {
    stacks: BTreeMap<(String, String), MemoryStack>,
    /// Artifacts by region.
    objects: BTreeMap<String, BTreeMap<Digest, bytes::Bytes>>,
    routes: BTreeMap<AliasKey, Vec<Route>>,
    behaviour: BTreeMap<(String, String), Behaviour>,
    rate: f64,
    calls: Vec<String>,
    fail: BTreeSet<usize>,
    invoked: Vec<(String, String)>,
}

/// The in-memory region (every region name at once: keys include the region).
pub struct MemoryRegion {
    clock: Arc<dyn Clock>,
    state: Mutex<State>,
}

impl MemoryRegion {
    pub fn new(clock: Arc<dyn Clock>) -> MemoryRegion {
        MemoryRegion {
            clock,
            state: Mutex::new(State {
                rate: 10.0,
                ..State::default()
            }),
        }
    }

    /// This region as a backend of every region name (keys include the region).
    pub fn backend(self: &Arc<Self>) -> RegionBackend {
        RegionBackend {
            kind: "memory".into(),
            artifacts: Arc::new(self.clone()),
            stacks: self.clone(),
            functions: self.clone(),
            clients: Arc::new(crate::OwnConfiguration),
            services: Arc::new(crate::services::NoContainers),
            builds: Arc::new(crate::services::NoRemoteBuilds),
        }
    }

    /// A stack's status and the version its function's alias was last deployed with.
    pub fn stack(&self, region: &str, name: &str) -> Option<(String, u32)> {
        self.state()
            .stacks
            .get(&(region.to_string(), name.to_string()))
            .map(|s| (s.status.clone(), s.version))
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Users' calls a second to every alias (10 unless set).
    pub fn set_traffic(&self, per_second: f64) {
        self.state().rate = per_second;
    }

    /// An alias that exists now, all on `version`.
    pub fn create_alias(&self, region: &str, function: &str, alias: &str, version: &str) {
        let at_ms = self.clock.now_millis();
        self.state()
            .routes
            .entry(key(region, function, alias))
            .or_default()
            .push(Route {
                at_ms,
                version: version.to_string(),
                extra: None,
            });
    }

    pub fn set_behaviour(&self, function: &str, version: &str, b: Behaviour) {
        self.state()
            .behaviour
            .insert((function.to_string(), version.to_string()), b);
    }

    /// Makes the `n`-th call (counting from 0, every port call counts) fail as unavailable.
    pub fn fail_call(&self, n: usize) {
        self.state().fail.insert(n);
    }

    /// Every port call so far, in order (`route_alias f:live 1 + 2@0.1`, `metrics f:2`, ...).
    pub fn calls(&self) -> Vec<String> {
        self.state().calls.clone()
    }

    /// The alias's routing now.
    pub fn routing(&self, region: &str, function: &str, alias: &str) -> Option<Route> {
        self.history(region, function, alias).pop()
    }

    /// Every routing the alias has had, oldest first.
    pub fn history(&self, region: &str, function: &str, alias: &str) -> Vec<Route> {
        self.state()
            .routes
            .get(&key(region, function, alias))
            .cloned()
            .unwrap_or_default()
    }

    /// Functions invoked asynchronously (hooks), with their payloads.
    pub fn invoked(&self) -> Vec<(String, String)> {
        self.state().invoked.clone()
    }

    /// Counts a call, failing it when asked to.
    fn call(&self, what: String) -> Result<(), RegionError> {
        let mut s = self.state();
        let n = s.calls.len();
        s.calls.push(what.clone());
        if s.fail.contains(&n) {
            return Err(RegionError::new(
                ErrorKind::Unavailable,
                format!("injected failure of call {n} ({what})"),
            ));
        }
        Ok(())
    }
}

fn stack_function(stack: &str) -> String {
    format!("{stack}-fn")
}

impl MemoryRegion {
    fn deploy_now(
        &self,
        req: &StackRequest,
        log: &dyn Fn(&str),
        driver: Option<Arc<dyn AliasShifter>>,
    ) -> Result<StackOutcome, RegionError> {
        let (region, name) = (req.region.as_str(), req.stack_name.as_str());
        self.call(format!("deploy {region}/{name}"))?;
        let text = std::fs::read(&req.template_path).map_err(|e| {
            RegionError::new(
                ErrorKind::Invalid,
                format!("cannot read the template {}: {e}", req.template_path.display()),
            )
        })?;
        let mut release = text;
        release.extend(format!("{:?}", req.parameters).bytes());
        let release = Digest::of(&release).hex();
        let function = stack_function(name);
        let key = (region.to_string(), name.to_string());
        let existing = self.state().stacks.get(&key).cloned();
        let Some(mut stack) = existing else {
            let stack = MemoryStack {
                id: format!("arn:aws:cloudformation:{region}:000000000000:stack/{name}/memory"),
                status: "CREATE_COMPLETE".into(),
                release,
                version: 1,
                outputs: BTreeMap::from([("Function".to_string(), function.clone())]),
            };
            self.create_alias(region, &function, "live", "1");
            log(&format!("CREATE_COMPLETE {name}"));
            self.state().stacks.insert(key, stack.clone());
            return Ok(StackOutcome::Applied(self.info(region, name, &stack)));
        };
        if stack.status.ends_with("_IN_PROGRESS") {
            return Err(RegionError::new(
                ErrorKind::Conflict,
                format!(
                    "Stack:{} is in {} state and can not be updated.",
                    stack.id, stack.status
                ),
            ));
        }
        if stack.release == release {
            return Ok(StackOutcome::NoChanges(self.info(region, name, &stack)));
        }
        let from = stack.version;
        let to = from + 1;
        self.set_status(&key, "UPDATE_IN_PROGRESS");
        let moved = match driver {
            Some(shifter) => shifter
                .shift(
                    &AliasDeployment {
                        region: region.to_string(),
                        stack_name: name.to_string(),
                        function: function.clone(),
                        alias: "live".into(),
                        from_version: from.to_string(),
                        to_version: to.to_string(),
                        deployment_group: serde_json::Value::Null,
                        deployment_config: None,
                        alarms: BTreeMap::new(),
                        before_hook: None,
                        after_hook: None,
                        options: req.delivery.clone(),
                    },
                    log,
                )
                .map_err(RegionError::permanent),
            None => self.route_alias(region, &function, "live", &to.to_string(), None),
        };
        match moved {
            Ok(()) => {
                stack.status = "UPDATE_COMPLETE".into();
                stack.release = release;
                stack.version = to;
                self.state().stacks.insert(key, stack.clone());
                log(&format!("UPDATE_COMPLETE {name}"));
                Ok(StackOutcome::Applied(self.info(region, name, &stack)))
            }
            Err(e) => {
                // The shifter put the alias back; the stack goes back to its previous release.
                self.set_status(&key, "UPDATE_ROLLBACK_COMPLETE");
                log(&format!("UPDATE_ROLLBACK_COMPLETE {name}"));
                Err(RegionError::permanent(format!("stack {name} in {region}: {e}; rolled back")).region(region))
            }
        }
    }

    fn set_status(&self, key: &(String, String), status: &str) {
        if let Some(s) = self.state().stacks.get_mut(key) {
            s.status = status.to_string();
        }
    }

    fn info(&self, region: &str, name: &str, s: &MemoryStack) -> StackInfo {
        StackInfo {
            stack_name: name.to_string(),
            stack_id: s.id.clone(),
            region: region.to_string(),
            stack_status: s.status.clone(),
            stack_status_reason: None,
            parameters: BTreeMap::new(),
            outputs: s.outputs.clone(),
            tags: BTreeMap::new(),
            creation_time: String::new(),
            last_updated_time: None,
        }
    }
}

fn unsupported<'a, T: Send + 'a>(what: &str) -> BoxFuture<'a, Result<T, RegionError>> {
    let e = RegionError::new(
        ErrorKind::Invalid,
        format!("the in-memory region does not model {what}"),
    );
    Box::pin(async move { Err(e) })
}

impl StackDeployer for MemoryRegion {
    fn describe_stack<'a>(
        &'a self,
        region: &'a str,
        stack: &'a str,
    ) -> BoxFuture<'a, Result<Option<StackInfo>, RegionError>> {
        Box::pin(async move {
            self.call(format!("describe_stack {region}/{stack}"))?;
            let s = self
                .state()
                .stacks
                .get(&(region.to_string(), stack.to_string()))
                .cloned();
            Ok(s.map(|s| self.info(region, stack, &s)))
        })
    }

    fn deploy<'a>(
        &'a self,
        req: &'a StackRequest,
        progress: Progress,
    ) -> BoxFuture<'a, Result<StackOutcome, RegionError>> {
        Box::pin(async move { self.deploy_now(req, &|l| (progress.say)(l), progress.shifter.clone()) })
    }

    fn create_change_set<'a>(
        &'a self,
        _req: &'a StackRequest,
        _log: Say,
    ) -> BoxFuture<'a, Result<Vec<String>, RegionError>> {
        unsupported("change sets")
    }

    fn execute_change_set<'a>(
        &'a self,
        _region: &'a str,
        _stack: &'a str,
        _change_set: &'a str,
        _progress: Progress,
    ) -> BoxFuture<'a, Result<StackOutcome, RegionError>> {
        unsupported("change sets")
    }

    fn delete_stack<'a>(
        &'a self,
        region: &'a str,
        stack: &'a str,
        _log: Say,
    ) -> BoxFuture<'a, Result<(), RegionError>> {
        Box::pin(async move {
            self.call(format!("delete_stack {region}/{stack}"))?;
            self.state().stacks.remove(&(region.to_string(), stack.to_string()));
            Ok(())
        })
    }

    fn live_functions<'a>(
        &'a self,
        region: &'a str,
        stack: &'a str,
    ) -> BoxFuture<'a, Result<Vec<LiveFunction>, RegionError>> {
        Box::pin(async move {
            self.call(format!("live_functions {region}/{stack}"))?;
            let function = stack_function(stack);
            Ok(self
                .routing(region, &function, "live")
                .map(|r| LiveFunction {
                    function,
                    alias: "live".into(),
                    version: r.version,
                })
                .into_iter()
                .collect())
        })
    }
}

/// One region's artifact store in memory.
struct MemoryStore {
    region: String,
    owner: Arc<MemoryRegion>,
}

impl ArtifactStores for Arc<MemoryRegion> {
    fn open(&self, region: &str, store: &StoreLocation) -> Result<Arc<dyn ArtifactStore>, ArtifactError> {
        let _ = store;
        Ok(Arc::new(MemoryStore {
            region: region.to_string(),
            owner: self.clone(),
        }))
    }
}

impl MemoryStore {
    fn call(&self, what: &str) -> Result<(), ArtifactError> {
        self.owner
            .call(format!("{what} {}", self.region))
            .map_err(|e| ArtifactError::Store {
                region: self.region.clone(),
                message: e.message,
            })
    }

    fn get(&self, digest: &Digest) -> Option<bytes::Bytes> {
        self.owner
            .state()
            .objects
            .get(&self.region)
            .and_then(|m| m.get(digest).cloned())
    }

    fn put(&self, digest: Digest, bytes: bytes::Bytes) {
        self.owner
            .state()
            .objects
            .entry(self.region.clone())
            .or_default()
            .insert(digest, bytes);
    }
}

impl ArtifactStore for MemoryStore {
    fn region(&self) -> &str {
        &self.region
    }

    fn location(&self) -> String {
        format!("memory://{}", self.region)
    }

    fn contains<'a>(&'a self, digest: &'a Digest) -> BoxFuture<'a, Result<bool, ArtifactError>> {
        Box::pin(async move {
            self.call("contains")?;
            Ok(self.get(digest).is_some())
        })
    }

    fn put_file<'a>(&'a self, path: &'a std::path::Path) -> BoxFuture<'a, Result<(Digest, u64), ArtifactError>> {
        Box::pin(async move {
            self.call("put_file")?;
            let bytes = std::fs::read(path)
                .map_err(|e| ArtifactError::Io(format!("failed to read `{}`: {e}", path.display())))?;
            let digest = Digest::of(&bytes);
            let size = bytes.len() as u64;
            self.put(digest, bytes.into());
            Ok((digest, size))
        })
    }

    fn get_to_file<'a>(
        &'a self,
        digest: &'a Digest,
        path: &'a std::path::Path,
    ) -> BoxFuture<'a, Result<(), ArtifactError>> {
        Box::pin(async move {
            self.call("get_to_file")?;
            let bytes = self.get(digest).ok_or_else(|| ArtifactError::Missing {
                region: self.region.clone(),
                digest: *digest,
            })?;
            std::fs::write(path, &bytes)
                .map_err(|e| ArtifactError::Io(format!("failed to write `{}`: {e}", path.display())))
        })
    }

    fn replicate_from<'a>(
        &'a self,
        source: &'a dyn ArtifactStore,
        digest: &'a Digest,
    ) -> BoxFuture<'a, Result<u64, ArtifactError>> {
        Box::pin(async move {
            self.call("replicate_from")?;
            if self.get(digest).is_some() {
                return Ok(0);
            }
            use futures::StreamExt;
            let mut stream = source.stream(digest).await?;
            let mut bytes = Vec::new();
            while let Some(chunk) = stream.next().await {
                bytes.extend_from_slice(&chunk?);
            }
            let actual = Digest::of(&bytes);
            if &actual != digest {
                return Err(ArtifactError::DigestMismatch {
                    region: self.region.clone(),
                    digest: *digest,
                    actual,
                });
            }
            let n = bytes.len() as u64;
            self.put(actual, bytes.into());
            Ok(n)
        })
    }

    fn stream<'a>(
        &'a self,
        digest: &'a Digest,
    ) -> BoxFuture<'a, Result<futures::stream::BoxStream<'a, Result<bytes::Bytes, ArtifactError>>, ArtifactError>> {
        Box::pin(async move {
            self.call("stream")?;
            let bytes = self.get(digest).ok_or_else(|| ArtifactError::Missing {
                region: self.region.clone(),
                digest: *digest,
            })?;
            let s: futures::stream::BoxStream<'a, Result<bytes::Bytes, ArtifactError>> =
                Box::pin(futures::stream::once(async move { Ok(bytes) }));
            Ok(s)
        })
    }

    fn list<'a>(&'a self) -> BoxFuture<'a, Result<Vec<Digest>, ArtifactError>> {
        Box::pin(async move {
            self.call("list")?;
            Ok(self
                .owner
                .state()
                .objects
                .get(&self.region)
                .map(|m| m.keys().copied().collect())
                .unwrap_or_default())
        })
    }

    fn delete<'a>(&'a self, digest: &'a Digest) -> BoxFuture<'a, Result<(), ArtifactError>> {
        Box::pin(async move {
            self.call("delete")?;
            if let Some(m) = self.owner.state().objects.get_mut(&self.region) {
                m.remove(digest);
            }
            Ok(())
        })
    }
}

fn key(region: &str, function: &str, alias: &str) -> AliasKey {
    (region.to_string(), function.to_string(), alias.to_string())
}

impl FunctionControl for MemoryRegion {
    fn route_alias(
        &self,
        region: &str,
        function: &str,
        alias: &str,
        version: &str,
        extra: Option<(&str, f64)>,
    ) -> Result<(), RegionError> {
        let shown = extra.map(|(v, w)| format!(" + {v}@{w}")).unwrap_or_default();
        self.call(format!("route_alias {function}:{alias} {version}{shown}"))?;
        let at_ms = self.clock.now_millis();
        let mut s = self.state();
        let routes = s.routes.get_mut(&key(region, function, alias)).ok_or_else(|| {
            RegionError::new(
                ErrorKind::NotFound,
                format!("Alias not found: {function}:{alias} in {region}"),
            )
        })?;
        routes.push(Route {
            at_ms,
            version: version.to_string(),
            extra: extra.map(|(v, w)| (v.to_string(), w)),
        });
        Ok(())
    }

    fn invoke_event(&self, _region: &str, function: &str, payload: &[u8]) -> Result<(), RegionError> {
        self.call(format!("invoke_event {function}"))?;
        self.state()
            .invoked
            .push((function.to_string(), String::from_utf8_lossy(payload).into_owned()));
        Ok(())
    }

    fn invoke(&self, _region: &str, function: &str, _payload: &[u8]) -> Result<bool, RegionError> {
        self.call(format!("invoke {function}"))?;
        Ok(true)
    }

    fn metrics(
        &self,
        region: &str,
        function: &str,
        qualifier: Option<&str>,
        since_ms: i64,
        until_ms: i64,
        period_ms: i64,
    ) -> Result<Vec<MetricPoint>, RegionError> {
        self.call(format!("metrics {function}:{}", qualifier.unwrap_or("")))?;
        let s = self.state();
        let period_ms = period_ms.max(1000);
        // Every alias of the function carries traffic; a qualifier that is a version counts
        // that version's share, one that is an alias (or none) counts all of it.
        let aliases: Vec<&Vec<Route>> = s
            .routes
            .iter()
            .filter(|((r, f, a), _)| {
                r == region
                    && f == function
                    && qualifier.is_none_or(|q| q == a || !is_alias_of(&s, region, function, q))
            })
            .map(|(_, v)| v)
            .collect();
        let version_q = qualifier.filter(|q| !is_alias_of(&s, region, function, q));
        // Running totals, so that fractions of a call add up across periods instead of being
        // rounded away in each (0.4 errors a second is 24 a minute, not 0).
        let (mut calls, mut errors) = (0.0f64, 0.0f64);
        let mut out = Vec::new();
        let mut start = since_ms;
        while start < until_ms {
            let end = (start + period_ms).min(until_ms);
            let (calls_before, errors_before) = (calls.floor(), errors.floor());
            let mut p99 = None::<f64>;
            let mut t = start;
            while t < end {
                let secs = ((end - t).min(1000)) as f64 / 1000.0;
                for routes in &aliases {
                    let Some(route) = routes.iter().rev().find(|r| r.at_ms <= t) else {
                        continue;
                    };
                    let mut versions = vec![route.version.clone()];
                    versions.extend(route.extra.iter().map(|(v, _)| v.clone()));
                    for v in versions.iter().filter(|v| version_q.is_none_or(|q| q == v.as_str())) {
                        let share = route.share(v);
                        if share <= 0.0 {
                            continue;
                        }
                        let b = s
                            .behaviour
                            .get(&(function.to_string(), v.clone()))
                            .copied()
                            .unwrap_or_default();
                        let n = s.rate * share * secs;
                        calls += n;
                        errors += n * b.error_rate;
                        p99 = Some(p99.map_or(b.p99_ms, |p: f64| p.max(b.p99_ms)));
                    }
                }
                t += 1000;
            }
            let invocations = (calls.floor() - calls_before) as u64;
            if invocations > 0 {
                out.push(MetricPoint {
                    start_ms: start,
                    period_ms,
                    invocations,
                    errors: (errors.floor() - errors_before) as u64,
                    duration_p99_ms: p99,
                    duration_max_ms: p99,
                    ..MetricPoint::default()
                });
            }
            start = end;
        }
        Ok(out)
    }
}

fn is_alias_of(s: &State, region: &str, function: &str, name: &str) -> bool {
    s.routes.contains_key(&key(region, function, name))
}

#[cfg(test)]
mod tests {
    use super::*;
    use meridian_core::ManualClock;
    use std::time::Duration;

    #[test]
    fn metrics_follow_the_routing_second_by_second() {
        let clock = ManualClock::new(0);
        let r = MemoryRegion::new(Arc::new(clock.clone()));
        r.set_traffic(100.0);
        r.create_alias("us-east-1", "f", "live", "1");
        r.set_behaviour(
            "f",
            "2",
            Behaviour {
                error_rate: 0.5,
                p99_ms: 90.0,
            },
        );
        clock.advance(Duration::from_secs(10));
        r.route_alias("us-east-1", "f", "live", "1", Some(("2", 0.1))).unwrap();
        clock.advance(Duration::from_secs(10));
        let v2 = r.metrics("us-east-1", "f", Some("2"), 0, 20_000, 20_000).unwrap();
        assert_eq!(v2.len(), 1);
        assert_eq!(
            (v2[0].invocations, v2[0].errors),
            (100, 50),
            "10% of 100/s for 10 s, half failing"
        );
        assert_eq!(v2[0].duration_p99_ms, Some(90.0));
        let all = r.metrics("us-east-1", "f", Some("live"), 0, 20_000, 10_000).unwrap();
        assert_eq!(all.iter().map(|p| p.invocations).collect::<Vec<_>>(), vec![1000, 1000]);
        assert_eq!(all[1].errors, 50);
    }

    #[test]
    fn any_call_can_be_made_to_fail() {
        let r = MemoryRegion::new(Arc::new(ManualClock::new(0)));
        r.create_alias("us-east-1", "f", "live", "1");
        r.fail_call(1);
        assert!(r.route_alias("us-east-1", "f", "live", "2", None).is_ok());
        let e = r.route_alias("us-east-1", "f", "live", "3", None).unwrap_err();
        assert!(e.retryable(), "{e}");
        assert_eq!(
            r.routing("us-east-1", "f", "live").unwrap().version,
            "2",
            "the failed call changed nothing"
        );
        assert_eq!(r.calls().len(), 2);
        let missing = r.route_alias("us-east-1", "g", "live", "1", None).unwrap_err();
        assert_eq!(missing.kind, ErrorKind::NotFound);
    }
}
