//! The local region's side of progressive delivery: [`LocalFunctions`] implements the engine's
//! [`FunctionControl`] on the Lambda host (alias weights, invocations, metrics), and serves the
//! local API on an ephemeral port while hooks run, so that a hook function's
//! `PutLifecycleEventHookExecutionStatus` reaches the deployment driver.

use crate::endpoint::{Endpoint, EndpointConfig};
use crate::host::{InvokeRequest, LambdaHost};
use meridian_core::RegionId;
use meridian_delivery::alarm::MetricPoint;
use meridian_region::{FunctionControl, RegionError};
use std::collections::BTreeMap;
use std::sync::OnceLock;

/// An API route synthetic traffic goes through: the API, and the path with the stage.
type ApiRoute = (crate::apigw::HttpApi, String);

pub struct LocalFunctions {
    host: LambdaHost,
    /// APIs found for synthetic traffic, by (region, target, route).
    apis: std::sync::Mutex<BTreeMap<(String, String, String), ApiRoute>>,
    /// Invocations run on their own runtime: the driver is called from blocking threads, and
    /// from commands that have no runtime of their own.
    rt: Option<tokio::runtime::Runtime>,
    endpoint: OnceLock<Result<String, String>>,
}

fn region(r: &str) -> Result<RegionId, RegionError> {
    RegionId::new(r).map_err(|e| RegionError::new(meridian_region::ErrorKind::Invalid, e.to_string()).region(r))
}

impl LocalFunctions {
    pub fn new(host: LambdaHost) -> Result<LocalFunctions, String> {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("meridian-delivery")
            .enable_all()
            .build()
            .map_err(|e| format!("cannot start the delivery runtime: {e}"))?;
        Ok(LocalFunctions {
            host,
            apis: Default::default(),
            rt: Some(rt),
            endpoint: OnceLock::new(),
        })
    }

    fn rt(&self) -> &tokio::runtime::Runtime {
        self.rt.as_ref().expect("the runtime lives until drop")
    }

    pub fn host(&self) -> &LambdaHost {
        &self.host
    }

    /// The local endpoint's URL, served on an ephemeral port of this process from the first call
    /// (unless one is served already, as by `meridian serve`).
    pub fn endpoint_url(&self) -> Result<String, RegionError> {
        FunctionControl::ensure_hook_endpoint(self)?;
        self.host.service_endpoint().ok_or_else(|| {
            RegionError::new(
                meridian_region::ErrorKind::Unavailable,
                "the local endpoint is not served",
            )
        })
    }
}

impl FunctionControl for LocalFunctions {
    fn route_alias(
        &self,
        region_name: &str,
        function: &str,
        alias: &str,
        version: &str,
        extra: Option<(&str, f64)>,
    ) -> Result<(), RegionError> {
        let weights: BTreeMap<String, f64> = extra
            .filter(|(v, w)| *v != version && *w > 0.0)
            .map(|(v, w)| (v.to_string(), (w * 1e6).round() / 1e6))
            .into_iter()
            .collect();
        self.host
            .update_alias(
                &region(region_name)?,
                function,
                alias,
                Some(version),
                Some(weights),
                None,
            )
            .map(|_| ())
            .map_err(RegionError::from)
    }

    fn invoke_event(&self, region_name: &str, function: &str, payload: &[u8]) -> Result<(), RegionError> {
        let _g = self.rt().enter();
        let (name, qualifier) = split_qualifier(function);
        let mut req = InvokeRequest::new(name, payload.to_vec());
        req.qualifier = qualifier;
        self.host
            .invoke_event(&region(region_name)?, req)
            .map(|_| ())
            .map_err(RegionError::from)
    }

    fn invoke(&self, region_name: &str, function: &str, payload: &[u8]) -> Result<bool, RegionError> {
        let (name, qualifier) = split_qualifier(function);
        let mut req = InvokeRequest::new(name, payload.to_vec());
        req.qualifier = qualifier;
        let r = self.rt().block_on(self.host.invoke(&region(region_name)?, req));
        r.map(|r| r.function_error.is_none()).map_err(RegionError::from)
    }

    fn metrics(
        &self,
        region_name: &str,
        function: &str,
        qualifier: Option<&str>,
        since_ms: i64,
        until_ms: i64,
        period_ms: i64,
    ) -> Result<Vec<MetricPoint>, RegionError> {
        metric_points(
            &self.host,
            &region(region_name)?,
            function,
            qualifier,
            since_ms,
            until_ms,
            period_ms,
        )
        .map_err(RegionError::from)
    }

    fn api_request(&self, region_name: &str, target: &str, route: &str, body: &[u8]) -> Result<bool, RegionError> {
        let invalid = |m: String| RegionError::new(meridian_region::ErrorKind::Invalid, m).region(region_name);
        let (method, rest) = route
            .split_once(' ')
            .ok_or_else(|| invalid(format!("traffic route `{route}` is not `METHOD /path`")))?;
        let (path, query) = rest.split_once('?').unwrap_or((rest, ""));
        let key = (region_name.to_string(), target.to_string(), route.to_string());
        let cached = self.apis.lock().unwrap_or_else(|p| p.into_inner()).get(&key).cloned();
        let (api, full) = match cached {
            Some(found) => found,
            None => {
                // The stacks are opened here, not held: they hold the functions' shifter.
                let data_dir = self.host.config().data_dir.clone();
                let stacks =
                    crate::stacks::LocalStacks::open(&data_dir, &data_dir, self.host.clone()).map_err(invalid)?;
                let found = stacks
                    .api_routing_to(region_name, method, path, target)
                    .map_err(invalid)?
                    .ok_or_else(|| {
                        invalid(format!(
                            "no API of region {region_name} routes `{method} {path}` to {target}: synthetic traffic needs a route (HTTP API) or method (REST API) whose integration calls the alias"
                        ))
                    })?;
                self.apis
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .insert(key, found.clone());
                found
            }
        };
        let headers = vec![
            ("content-type".to_string(), "application/json".to_string()),
            ("user-agent".to_string(), "meridian-synthetic-traffic".to_string()),
        ];
        let request_id = meridian_core::random::alphanumeric(20).to_ascii_lowercase();
        let answer = self.rt().block_on(crate::endpoint::apigw::serve(
            &self.host,
            &api,
            crate::endpoint::apigw::ApiRequest {
                method,
                path: &full,
                raw_query: query,
                headers: &headers,
                body,
                source_ip: "127.0.0.1",
                request_id: &request_id,
            },
        ));
        Ok(answer.status < 500)
    }

    fn ensure_hook_endpoint(&self) -> Result<(), RegionError> {
        if self.host.service_endpoint().is_some() {
            return Ok(());
        }
        let url = self
            .endpoint
            .get_or_init(|| {
                let listener = self
                    .rt()
                    .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
                    .map_err(|e| format!("cannot serve the local endpoint: {e}"))?;
                let addr = listener.local_addr().map_err(|e| e.to_string())?;
                let cfg = EndpointConfig {
                    default_region: RegionId::new("us-east-1").map_err(|e| e.to_string())?,
                    require_auth: false,
                };
                self.rt().spawn(Endpoint::new(self.host.clone(), cfg).serve(listener));
                Ok(format!("http://{addr}"))
            })
            .clone()
            .map_err(|e| RegionError::new(meridian_region::ErrorKind::Unavailable, e))?;
        self.host.set_service_endpoint(Some(url));
        Ok(())
    }
}

/// A function's (or one qualifier's) metrics by period, as alarms and the canary judge read them.
pub fn metric_points(
    host: &LambdaHost,
    region: &RegionId,
    function: &str,
    qualifier: Option<&str>,
    since_ms: i64,
    until_ms: i64,
    period_ms: i64,
) -> crate::Result<Vec<MetricPoint>> {
    let rows = host.metric_periods(region, function, qualifier, since_ms, until_ms, period_ms)?;
    Ok(rows
        .into_iter()
        .map(|(start, b)| MetricPoint {
            start_ms: start,
            period_ms: period_ms.max(1000),
            invocations: b.invocations,
            errors: b.errors,
            throttles: b.throttles,
            duration_p50_ms: b.durations.quantile_ms(0.50),
            duration_p90_ms: b.durations.quantile_ms(0.90),
            duration_p99_ms: b.durations.quantile_ms(0.99),
            duration_avg_ms: b.durations.mean_ms(),
            duration_max_ms: b.durations.quantile_ms(1.0),
            duration_min_ms: b.durations.quantile_ms(0.0),
        })
        .collect())
}

impl Drop for LocalFunctions {
    fn drop(&mut self) {
        // May be dropped from async code: a runtime can only be shut down in the background there.
        if let Some(rt) = self.rt.take() {
            rt.shutdown_background();
        }
    }
}

fn split_qualifier(f: &str) -> (&str, Option<String>) {
    match f.rsplit_once(':') {
        Some((n, q)) if !n.contains(':') => (n, Some(q.to_string())),
        _ => (f, None),
    }
}
