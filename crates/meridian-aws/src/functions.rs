//! What the engine's delivery driver needs from an AWS region's functions: alias weights
//! (Lambda `UpdateAlias` with `RoutingConfig`), invocations (`Invoke`), and metrics per alias or
//! version (CloudWatch `GetMetricData` on `AWS/Lambda`).
//!
//! The port is synchronous (its caller, the delivery driver, is a loop on a thread of its own
//! that waits through its clock), and it may be called from inside another runtime's task: each
//! call runs its SDK future on this backend's own runtime and waits for it there.

use crate::config::AwsOptions;
use aws_sdk_cloudwatch::types::StateValue;
use aws_sdk_cloudwatch::types::{Dimension, Metric, MetricDataQuery, MetricStat};
use aws_sdk_lambda::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_lambda::types::{AliasRoutingConfiguration, InvocationType};
use meridian_delivery::alarm::{AlarmState, MetricPoint};
use meridian_region::{ErrorKind, FunctionControl, RegionError};
use std::collections::BTreeMap;
use std::sync::Arc;

/// The FunctionControl of AWS regions.
pub struct AwsFunctions {
    options: AwsOptions,
    runtime: Arc<tokio::runtime::Runtime>,
    /// Alarm states read lately, by region and alarm: the driver looks every tick, CloudWatch
    /// evaluates alarms once a period (a minute at least) and throttles `DescribeAlarms`.
    alarms: std::sync::Mutex<BTreeMap<(String, String), ReadAlarm>>,
}

/// An alarm's state as read from CloudWatch, when, and CloudWatch's reason.
type ReadAlarm = (std::time::Instant, AlarmState, String);

/// How long an alarm's state read from CloudWatch is used before it is read again.
pub const ALARM_STATE_TTL: std::time::Duration = std::time::Duration::from_secs(2);

impl AwsFunctions {
    pub fn new(options: AwsOptions) -> Result<AwsFunctions, RegionError> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("meridian-aws")
            .enable_all()
            .build()
            .map_err(|e| {
                RegionError::new(
                    ErrorKind::Unavailable,
                    format!("cannot start the AWS client's runtime: {e}"),
                )
            })?;
        Ok(AwsFunctions {
            options,
            runtime: Arc::new(runtime),
            alarms: Default::default(),
        })
    }

    /// Runs `f` on this backend's runtime and waits for it (from any thread, in a runtime or not).
    fn run<T: Send + 'static>(
        &self,
        f: impl std::future::Future<Output = Result<T, RegionError>> + Send + 'static,
    ) -> Result<T, RegionError> {
        let handle = self.runtime.spawn(f);
        futures::executor::block_on(handle)
            .map_err(|e| RegionError::new(ErrorKind::Unavailable, format!("an AWS call was interrupted: {e}")))?
    }

    fn lambda(&self, region: &str) -> impl std::future::Future<Output = aws_sdk_lambda::Client> + Send + 'static {
        let (options, region) = (self.options.clone(), region.to_string());
        async move { aws_sdk_lambda::Client::new(&options.sdk_config(&region).await) }
    }

    fn cloudwatch(
        &self,
        region: &str,
    ) -> impl std::future::Future<Output = aws_sdk_cloudwatch::Client> + Send + 'static {
        let (options, region) = (self.options.clone(), region.to_string());
        async move { aws_sdk_cloudwatch::Client::new(&options.sdk_config(&region).await) }
    }
}

fn err<E: ProvideErrorMetadata + std::error::Error + 'static>(
    region: &str,
    action: &str,
    resource: &str,
    e: SdkError<E>,
) -> RegionError {
    crate::sdk_error(region, action, &e).resource(resource)
}

/// CloudWatch periods are whole minutes for standard metrics.
fn period_secs(period_ms: i64) -> i32 {
    let secs = (period_ms / 1000).max(60);
    ((secs + 59) / 60 * 60).min(86_400) as i32
}

impl FunctionControl for AwsFunctions {
    fn route_alias(
        &self,
        region: &str,
        function: &str,
        alias: &str,
        version: &str,
        extra: Option<(&str, f64)>,
    ) -> Result<(), RegionError> {
        let client = self.lambda(region);
        let (region, function, alias, version) = (
            region.to_string(),
            function.to_string(),
            alias.to_string(),
            version.to_string(),
        );
        let extra = extra.map(|(v, w)| (v.to_string(), w));
        self.run(async move {
            let lambda = client.await;
            // no extra version clears the routing (an empty map, as the CLI's `--routing-config AdditionalVersionWeights={}`)
            let weights: std::collections::HashMap<String, f64> = extra.into_iter().filter(|(_, w)| *w > 0.0).collect();
            lambda
                .update_alias()
                .function_name(&function)
                .name(&alias)
                .function_version(&version)
                .routing_config(
                    AliasRoutingConfiguration::builder()
                        .set_additional_version_weights(Some(weights))
                        .build(),
                )
                .send()
                .await
                .map(drop)
                .map_err(|e| err(&region, "lambda:UpdateAlias", &format!("{function}:{alias}"), e))
        })
    }

    fn invoke_event(&self, region: &str, function: &str, payload: &[u8]) -> Result<(), RegionError> {
        self.call(region, function, payload, InvocationType::Event).map(drop)
    }

    fn invoke(&self, region: &str, function: &str, payload: &[u8]) -> Result<bool, RegionError> {
        self.call(region, function, payload, InvocationType::RequestResponse)
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
        let mut dimensions = vec![("FunctionName", function.to_string())];
        if let Some(q) = qualifier {
            dimensions.push(("Resource", format!("{function}:{q}")));
        }
        let resource = format!("{function}{}", qualifier.map(|q| format!(":{q}")).unwrap_or_default());
        self.metric_points(region, &dimensions, resource, since_ms, until_ms, period_ms)
    }

    /// An alias's invocations that `version` ran: Lambda's `ExecutedVersion` dimension beside
    /// the alias's `Resource`.
    fn version_metrics(
        &self,
        region: &str,
        function: &str,
        alias: &str,
        version: &str,
        since_ms: i64,
        until_ms: i64,
        period_ms: i64,
    ) -> Result<Vec<MetricPoint>, RegionError> {
        let dimensions = [
            ("FunctionName", function.to_string()),
            ("Resource", format!("{function}:{alias}")),
            ("ExecutedVersion", version.to_string()),
        ];
        let resource = format!("{function}:{alias} (version {version})");
        self.metric_points(region, &dimensions, resource, since_ms, until_ms, period_ms)
    }

    fn alarm_state(&self, region: &str, alarm: &str) -> Result<Option<(AlarmState, String)>, RegionError> {
        let key = (region.to_string(), alarm.to_string());
        if let Some((at, state, reason)) = self.alarms.lock().unwrap_or_else(|e| e.into_inner()).get(&key) {
            if at.elapsed() < ALARM_STATE_TTL {
                return Ok(Some((*state, reason.clone())));
            }
        }
        let read = self.read_alarm(region, alarm)?;
        self.alarms
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(key, (std::time::Instant::now(), read.0, read.1.clone()));
        Ok(Some(read))
    }
}

impl AwsFunctions {
    /// `GetMetricData` of AWS/Lambda's metrics with exactly these dimensions.
    fn metric_points(
        &self,
        region: &str,
        dimensions: &[(&str, String)],
        resource: String,
        since_ms: i64,
        until_ms: i64,
        period_ms: i64,
    ) -> Result<Vec<MetricPoint>, RegionError> {
        let client = self.cloudwatch(region);
        let region = region.to_string();
        let dimensions: Vec<Dimension> = dimensions
            .iter()
            .map(|(k, v)| Dimension::builder().name(*k).value(v).build())
            .collect();
        let period = period_secs(period_ms);
        self.run(async move {
            let cw = client.await;
            let query = |id: &str, metric: &str, stat: &str| {
                MetricDataQuery::builder()
                    .id(id)
                    .metric_stat(
                        MetricStat::builder()
                            .metric(
                                Metric::builder()
                                    .namespace("AWS/Lambda")
                                    .metric_name(metric)
                                    .set_dimensions(Some(dimensions.clone()))
                                    .build(),
                            )
                            .period(period)
                            .stat(stat)
                            .build(),
                    )
                    .return_data(true)
                    .build()
            };
            let queries = vec![
                query("invocations", "Invocations", "Sum"),
                query("errors", "Errors", "Sum"),
                query("throttles", "Throttles", "Sum"),
                query("p50", "Duration", "p50"),
                query("p90", "Duration", "p90"),
                query("p99", "Duration", "p99"),
                query("avg", "Duration", "Average"),
                query("max", "Duration", "Maximum"),
                query("min", "Duration", "Minimum"),
            ];
            let at = |ms: i64| aws_sdk_cloudwatch::primitives::DateTime::from_millis(ms);
            let mut points: BTreeMap<i64, MetricPoint> = BTreeMap::new();
            let mut next = None;
            loop {
                let out = cw
                    .get_metric_data()
                    .set_metric_data_queries(Some(queries.clone()))
                    .start_time(at(since_ms))
                    .end_time(at(until_ms))
                    .set_next_token(next.clone())
                    .send()
                    .await
                    .map_err(|e| crate::sdk_error(&region, "cloudwatch:GetMetricData", &e).resource(&resource))?;
                for r in out.metric_data_results() {
                    let id = r.id().unwrap_or_default();
                    for (t, v) in r.timestamps().iter().zip(r.values()) {
                        let start = t.to_millis().unwrap_or(0);
                        let p = points.entry(start).or_insert_with(|| MetricPoint {
                            start_ms: start,
                            period_ms: period as i64 * 1000,
                            ..Default::default()
                        });
                        match id {
                            "invocations" => p.invocations = v.max(0.0) as u64,
                            "errors" => p.errors = v.max(0.0) as u64,
                            "throttles" => p.throttles = v.max(0.0) as u64,
                            "p50" => p.duration_p50_ms = Some(*v),
                            "p90" => p.duration_p90_ms = Some(*v),
                            "p99" => p.duration_p99_ms = Some(*v),
                            "avg" => p.duration_avg_ms = Some(*v),
                            "max" => p.duration_max_ms = Some(*v),
                            "min" => p.duration_min_ms = Some(*v),
                            _ => {}
                        }
                    }
                }
                next = out.next_token().map(str::to_string);
                if next.is_none() {
                    return Ok(points.into_values().collect());
                }
            }
        })
    }
}

impl AwsFunctions {
    fn read_alarm(&self, region: &str, alarm: &str) -> Result<(AlarmState, String), RegionError> {
        let client = self.cloudwatch(region);
        let (region, alarm) = (region.to_string(), alarm.to_string());
        self.run(async move {
            let cw = client.await;
            let out = cw
                .describe_alarms()
                .alarm_names(&alarm)
                .send()
                .await
                .map_err(|e| crate::sdk_error(&region, "cloudwatch:DescribeAlarms", &e).resource(&alarm))?;
            let Some(a) = out.metric_alarms().first() else {
                return Err(RegionError::new(
                    ErrorKind::NotFound,
                    format!("the alarm {alarm} of the deployment group does not exist in {region}: a deployment cannot be judged by it"),
                )
                .region(&region)
                .resource(&alarm));
            };
            let state = match a.state_value() {
                Some(StateValue::Alarm) => AlarmState::Alarm,
                Some(StateValue::Ok) => AlarmState::Ok,
                _ => AlarmState::InsufficientData,
            };
            Ok((state, a.state_reason().unwrap_or("CloudWatch's state").to_string()))
        })
    }
}

impl AwsFunctions {
    fn call(&self, region: &str, function: &str, payload: &[u8], kind: InvocationType) -> Result<bool, RegionError> {
        let client = self.lambda(region);
        let (region, function, payload) = (region.to_string(), function.to_string(), payload.to_vec());
        self.run(async move {
            let lambda = client.await;
            let out = lambda
                .invoke()
                .function_name(&function)
                .invocation_type(kind)
                .payload(aws_sdk_lambda::primitives::Blob::new(payload))
                .send()
                .await
                .map_err(|e| err(&region, "lambda:InvokeFunction", &function, e))?;
            Ok(out.function_error().is_none())
        })
    }
}

/// Lambda calls of the stack deployer (async, on its caller's runtime).
pub(crate) mod calls {
    use super::*;
    use aws_sdk_lambda::Client;

    /// The version `function:alias` serves; `None` when the alias (or the function) does not exist.
    pub async fn alias_version(
        lambda: &Client,
        region: &str,
        function: &str,
        alias: &str,
    ) -> Result<Option<String>, RegionError> {
        {
            match lambda.get_alias().function_name(function).name(alias).send().await {
                Ok(a) => Ok(a.function_version().map(str::to_string)),
                Err(SdkError::ServiceError(e)) if e.err().code() == Some("ResourceNotFoundException") => Ok(None),
                Err(e) => Err(err(region, "lambda:GetAlias", &format!("{function}:{alias}"), e)),
            }
        }
    }

    /// The aliases of a function and the version each serves.
    pub async fn aliases(lambda: &Client, region: &str, function: &str) -> Result<Vec<(String, String)>, RegionError> {
        {
            let mut out = Vec::new();
            let mut marker = None;
            loop {
                let page = match lambda
                    .list_aliases()
                    .function_name(function)
                    .set_marker(marker)
                    .send()
                    .await
                {
                    Ok(p) => p,
                    Err(SdkError::ServiceError(e)) if e.err().code() == Some("ResourceNotFoundException") => {
                        return Ok(out)
                    }
                    Err(e) => return Err(err(region, "lambda:ListAliases", function, e)),
                };
                for a in page.aliases() {
                    if let (Some(n), Some(v)) = (a.name(), a.function_version()) {
                        out.push((n.to_string(), v.to_string()));
                    }
                }
                marker = page.next_marker().map(str::to_string);
                if marker.is_none() {
                    return Ok(out);
                }
            }
        }
    }

    /// The newest published version of a function (the highest number), if any.
    pub async fn latest_version(lambda: &Client, region: &str, function: &str) -> Result<Option<String>, RegionError> {
        {
            let mut best: Option<u64> = None;
            let mut marker = None;
            loop {
                let page = lambda
                    .list_versions_by_function()
                    .function_name(function)
                    .set_marker(marker)
                    .send()
                    .await
                    .map_err(|e| err(region, "lambda:ListVersionsByFunction", function, e))?;
                for v in page.versions() {
                    if let Some(n) = v.version().and_then(|v| v.parse::<u64>().ok()) {
                        best = Some(best.map_or(n, |b| b.max(n)));
                    }
                }
                marker = page.next_marker().map(str::to_string);
                if marker.is_none() {
                    return Ok(best.map(|n| n.to_string()));
                }
            }
        }
    }

    /// A published version that holds the function's current code and configuration: `candidate`
    /// (the version the stack published) when its `CodeSha256` is `$LATEST`'s, else one published
    /// now from `$LATEST`. A version whose code is not what was deployed must never take traffic.
    pub async fn version_with_latest_code(
        lambda: &Client,
        region: &str,
        function: &str,
        candidate: Option<String>,
    ) -> Result<Option<String>, RegionError> {
        let sha = |q: Option<String>| async move {
            lambda
                .get_function_configuration()
                .function_name(function)
                .set_qualifier(q)
                .send()
                .await
                .map(|c| c.code_sha256().map(str::to_string))
                .map_err(|e| err(region, "lambda:GetFunctionConfiguration", function, e))
        };
        let latest = sha(None).await?;
        if let Some(c) = &candidate {
            if sha(Some(c.clone())).await? == latest {
                return Ok(candidate);
            }
        }
        let published = lambda
            .publish_version()
            .function_name(function)
            .set_code_sha256(latest)
            .description("published by Meridian: the stack's version did not hold the deployed code")
            .send()
            .await
            .map_err(|e| err(region, "lambda:PublishVersion", function, e))?;
        Ok(published.version().map(str::to_string))
    }
}
