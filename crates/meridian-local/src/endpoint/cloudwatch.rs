//! CloudWatch over the local metrics and alarms: `PutMetricData` (custom metrics, kept in
//! `<data>/endpoint/metrics.db`), `GetMetricData` (custom metrics, and Lambda's own
//! `AWS/Lambda` metrics from the Lambda host), `DescribeAlarms` (the `AWS::CloudWatch::Alarm`
//! resources of the region's stacks, evaluated now on the Lambda host's metrics as the delivery
//! driver evaluates them).
//!
//! Current SDKs and CLIs speak the Smithy RPC v2 CBOR protocol to CloudWatch
//! (`POST /service/GraniteServiceVersion20100801/operation/OP`); the JSON 1.0 protocol
//! (`X-Amz-Target: GraniteServiceVersion20100801.OP`) is served too.

use super::query::esc;
use super::{full, Body, Endpoint};
use crate::credentials::ACCOUNT_ID;
use bytes::Bytes;
use hyper::{Response, StatusCode};
use meridian_core::RegionId;
use serde_json::{json, Map, Value};

/// The protocol of a request, which its answer speaks too.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Protocol {
    Cbor,
    Json,
}

/// The operation of a CloudWatch request: from the RPC v2 path or the JSON target.
pub fn operation(path: &str, target: Option<&str>) -> Option<(Protocol, String)> {
    if let Some(op) = path.strip_prefix("/service/GraniteServiceVersion20100801/operation/") {
        return Some((Protocol::Cbor, op.to_string()));
    }
    target
        .and_then(|t| t.strip_prefix("GraniteServiceVersion20100801."))
        .map(|op| (Protocol::Json, op.to_string()))
}

type Fail = (StatusCode, &'static str, String);

fn invalid(message: impl Into<String>) -> Fail {
    (StatusCode::BAD_REQUEST, "InvalidParameterValue", message.into())
}

fn missing(name: &str) -> Fail {
    (
        StatusCode::BAD_REQUEST,
        "MissingParameter",
        format!("The parameter {name} is required."),
    )
}

pub async fn handle(
    ep: &Endpoint,
    region: &str,
    protocol: Protocol,
    op: &str,
    body: Bytes,
    request_id: &str,
) -> Response<Body> {
    let input = match decode(protocol, &body) {
        Ok(v) => v,
        Err(m) => {
            return answer(
                protocol,
                Err((StatusCode::BAD_REQUEST, "SerializationException", m)),
                request_id,
            )
        }
    };
    let (ep2, region2, op2) = (ep.clone(), region.to_string(), op.to_string());
    let out = tokio::task::spawn_blocking(move || dispatch(&ep2, &region2, &op2, &input))
        .await
        .unwrap_or_else(|e| Err((StatusCode::INTERNAL_SERVER_ERROR, "InternalServiceError", e.to_string())));
    answer(protocol, out, request_id)
}

fn dispatch(ep: &Endpoint, region: &str, op: &str, v: &Value) -> Result<Value, Fail> {
    match op {
        "PutMetricData" => put_metric_data(ep, region, v),
        "GetMetricData" => get_metric_data(ep, region, v),
        "DescribeAlarms" => describe_alarms(ep, region, v),
        other => Err((
            StatusCode::BAD_REQUEST,
            "InvalidAction",
            format!("local regions serve CloudWatch's PutMetricData, GetMetricData and DescribeAlarms, not `{other}`"),
        )),
    }
}

// ---- the store of custom metrics -----------------------------------------------------------

fn store(ep: &Endpoint) -> Result<rusqlite::Connection, Fail> {
    let fail = |e: String| (StatusCode::INTERNAL_SERVER_ERROR, "InternalServiceError", e);
    let dir = ep.data_dir().join("endpoint");
    std::fs::create_dir_all(&dir).map_err(|e| fail(e.to_string()))?;
    let c = rusqlite::Connection::open(dir.join("metrics.db")).map_err(|e| fail(e.to_string()))?;
    c.busy_timeout(std::time::Duration::from_secs(10))
        .map_err(|e| fail(e.to_string()))?;
    c.execute_batch(
        "PRAGMA journal_mode=WAL;
         CREATE TABLE IF NOT EXISTS datapoints (region TEXT, namespace TEXT, name TEXT, dims TEXT, at INTEGER,
           count REAL, sum REAL, min REAL, max REAL, unit TEXT);
         CREATE INDEX IF NOT EXISTS by_metric ON datapoints (region, namespace, name, dims, at);",
    )
    .map_err(|e| fail(e.to_string()))?;
    Ok(c)
}

/// Dimensions as one canonical text (sorted `Name=Value` lines), the metric's identity with its
/// namespace and name.
fn dims_key(v: Option<&Value>) -> Result<String, Fail> {
    let mut pairs = Vec::new();
    for d in v.and_then(Value::as_array).into_iter().flatten() {
        let name = d
            .get("Name")
            .and_then(Value::as_str)
            .ok_or_else(|| missing("Dimensions.member.N.Name"))?;
        let value = d
            .get("Value")
            .and_then(Value::as_str)
            .ok_or_else(|| missing("Dimensions.member.N.Value"))?;
        pairs.push(format!("{name}={value}"));
    }
    if pairs.len() > 30 {
        return Err(invalid(
            "The collection Dimensions must not have a size greater than 30.",
        ));
    }
    pairs.sort();
    Ok(pairs.join("\n"))
}

fn now_ms() -> i64 {
    jiff::Timestamp::now().as_millisecond()
}

/// A timestamp member (epoch seconds, as both protocols carry it after decoding).
fn time_ms(v: Option<&Value>) -> Option<i64> {
    v.and_then(Value::as_f64).map(|s| (s * 1000.0) as i64)
}

fn put_metric_data(ep: &Endpoint, region: &str, v: &Value) -> Result<Value, Fail> {
    let ns = v
        .get("Namespace")
        .and_then(Value::as_str)
        .ok_or_else(|| missing("Namespace"))?;
    if ns.starts_with("AWS/") {
        return Err(invalid(format!(
            "The value {ns} for parameter Namespace is invalid: AWS/ namespaces are AWS's own"
        )));
    }
    let data = v
        .get("MetricData")
        .and_then(Value::as_array)
        .ok_or_else(|| missing("MetricData"))?;
    if data.len() > 1000 {
        return Err(invalid(
            "The collection MetricData must not have a size greater than 1000.",
        ));
    }
    let mut c = store(ep)?;
    let tx = c
        .transaction()
        .map_err(|e| (StatusCode::INTERNAL_SERVER_ERROR, "InternalServiceError", e.to_string()))?;
    for d in data {
        let name = d
            .get("MetricName")
            .and_then(Value::as_str)
            .ok_or_else(|| missing("MetricData.member.N.MetricName"))?;
        let dims = dims_key(d.get("Dimensions"))?;
        let at = time_ms(d.get("Timestamp")).unwrap_or_else(now_ms);
        let unit = d.get("Unit").and_then(Value::as_str).unwrap_or("None");
        let mut rows: Vec<(f64, f64, f64, f64)> = Vec::new();
        if let Some(x) = d.get("Value").and_then(Value::as_f64) {
            rows.push((1.0, x, x, x));
        }
        if let Some(values) = d.get("Values").and_then(Value::as_array) {
            let counts = d.get("Counts").and_then(Value::as_array);
            if counts.is_some_and(|c| c.len() != values.len()) {
                return Err(invalid("The parameters MetricData.member.N.Values and MetricData.member.N.Counts must be of the same size."));
            }
            for (i, x) in values.iter().enumerate() {
                let x = x
                    .as_f64()
                    .ok_or_else(|| invalid("MetricData.member.N.Values must hold numbers"))?;
                let n = counts.and_then(|c| c.get(i)).and_then(Value::as_f64).unwrap_or(1.0);
                rows.push((n, x * n, x, x));
            }
        }
        if let Some(s) = d.get("StatisticValues") {
            let f = |k: &str| {
                s.get(k)
                    .and_then(Value::as_f64)
                    .ok_or_else(|| missing(&format!("MetricData.member.N.StatisticValues.{k}")))
            };
            rows.push((f("SampleCount")?, f("Sum")?, f("Minimum")?, f("Maximum")?));
        }
        if rows.is_empty() {
            return Err(missing("MetricData.member.N.Value"));
        }
        for (n, sum, min, max) in rows {
            if !(n.is_finite() && sum.is_finite() && min.is_finite() && max.is_finite()) {
                return Err(invalid(
                    "The value for parameter MetricData.member.N.Value must be a finite number",
                ));
            }
            tx.execute(
                "INSERT INTO datapoints VALUES (?1,?2,?3,?4,?5,?6,?7,?8,?9,?10)",
                rusqlite::params![region, ns, name, dims, at, n, sum, min, max, unit],
            )
            .map_err(|e| (StatusCode::INTERNAL_SERVER_ERROR, "InternalServiceError", e.to_string()))?;
        }
    }
    tx.commit()
        .map_err(|e| (StatusCode::INTERNAL_SERVER_ERROR, "InternalServiceError", e.to_string()))?;
    Ok(json!({}))
}

/// One period's aggregate: count, sum, min, max, and the values when known (for percentiles).
#[derive(Default, Clone)]
struct Agg {
    count: f64,
    sum: f64,
    min: f64,
    max: f64,
    /// Percentile of this period, when the source has them (Lambda's durations).
    quantile: Option<std::sync::Arc<dyn Fn(f64) -> Option<f64> + Send + Sync>>,
}

fn stat_value(stat: &str, a: &Agg) -> Result<Option<f64>, Fail> {
    if a.count <= 0.0 {
        return Ok(None);
    }
    Ok(match stat {
        "Sum" => Some(a.sum),
        "Average" => Some(a.sum / a.count),
        "Minimum" => Some(a.min),
        "Maximum" => Some(a.max),
        "SampleCount" => Some(a.count),
        p if p.starts_with('p') => {
            let q: f64 = p[1..]
                .parse()
                .map_err(|_| invalid(format!("The statistic {p} is not valid")))?;
            if !(0.0..=100.0).contains(&q) {
                return Err(invalid(format!("The statistic {p} is not valid")));
            }
            match &a.quantile {
                Some(f) => f(q / 100.0),
                None => return Err(invalid(format!("local regions compute {p} for AWS/Lambda durations only; custom metrics have Sum, Average, Minimum, Maximum and SampleCount"))),
            }
        }
        other => {
            return Err(invalid(format!(
                "The statistic {other} is not valid (Sum, Average, Minimum, Maximum, SampleCount, pNN)"
            )))
        }
    })
}

fn get_metric_data(ep: &Endpoint, region: &str, v: &Value) -> Result<Value, Fail> {
    let start = time_ms(v.get("StartTime")).ok_or_else(|| missing("StartTime"))?;
    let end = time_ms(v.get("EndTime")).ok_or_else(|| missing("EndTime"))?;
    if end <= start {
        return Err(invalid(
            "The parameter StartTime must be less than the parameter EndTime.",
        ));
    }
    let ascending = v.get("ScanBy").and_then(Value::as_str) == Some("TimestampAscending");
    let queries = v
        .get("MetricDataQueries")
        .and_then(Value::as_array)
        .ok_or_else(|| missing("MetricDataQueries"))?;
    if queries.len() > 500 {
        return Err(invalid(
            "The collection MetricDataQueries must not have a size greater than 500.",
        ));
    }
    let mut results = Vec::new();
    for q in queries {
        let id = q
            .get("Id")
            .and_then(Value::as_str)
            .ok_or_else(|| missing("MetricDataQueries.member.N.Id"))?;
        if q.get("Expression").is_some() {
            return Err(invalid(format!(
                "query {id}: local regions do not evaluate metric math expressions; use MetricStat"
            )));
        }
        if q.get("ReturnData").and_then(Value::as_bool) == Some(false) {
            continue;
        }
        let ms = q
            .get("MetricStat")
            .ok_or_else(|| missing("MetricDataQueries.member.N.MetricStat"))?;
        let metric = ms
            .get("Metric")
            .ok_or_else(|| missing("MetricDataQueries.member.N.MetricStat.Metric"))?;
        let ns = metric.get("Namespace").and_then(Value::as_str).unwrap_or_default();
        let name = metric.get("MetricName").and_then(Value::as_str).unwrap_or_default();
        let period = ms
            .get("Period")
            .and_then(Value::as_i64)
            .ok_or_else(|| missing("MetricDataQueries.member.N.MetricStat.Period"))?;
        if period < 1 || (period >= 60 && period % 60 != 0) || (period < 60 && ![1, 5, 10, 30].contains(&period)) {
            return Err(invalid(format!("The parameter MetricDataQueries.member.N.MetricStat.Period ({period}) must be 1, 5, 10, 30 or a multiple of 60")));
        }
        let stat = ms
            .get("Stat")
            .and_then(Value::as_str)
            .ok_or_else(|| missing("MetricDataQueries.member.N.MetricStat.Stat"))?;
        let period_ms = period * 1000;
        let periods: Vec<(i64, Agg)> = if ns == "AWS/Lambda" {
            lambda_periods(ep, region, name, metric.get("Dimensions"), start, end, period_ms)?
        } else {
            custom_periods(
                ep,
                region,
                ns,
                name,
                &dims_key(metric.get("Dimensions"))?,
                start,
                end,
                period_ms,
            )?
        };
        let mut points: Vec<(i64, f64)> = Vec::new();
        for (at, a) in &periods {
            if let Some(x) = stat_value(stat, a)? {
                points.push((*at, x));
            }
        }
        points.sort_by_key(|p| p.0);
        if !ascending {
            points.reverse();
        }
        results.push(json!({
            "Id": id,
            "Label": q.get("Label").and_then(Value::as_str).unwrap_or(name),
            "Timestamps": points.iter().map(|p| json!(p.0 as f64 / 1000.0)).collect::<Vec<_>>(),
            "Values": points.iter().map(|p| json!(p.1)).collect::<Vec<_>>(),
            "StatusCode": "Complete",
        }));
    }
    Ok(json!({ "MetricDataResults": results, "Messages": [] }))
}

#[allow(clippy::too_many_arguments)]
fn custom_periods(
    ep: &Endpoint,
    region: &str,
    ns: &str,
    name: &str,
    dims: &str,
    start: i64,
    end: i64,
    period_ms: i64,
) -> Result<Vec<(i64, Agg)>, Fail> {
    let c = store(ep)?;
    let err = |e: rusqlite::Error| (StatusCode::INTERNAL_SERVER_ERROR, "InternalServiceError", e.to_string());
    let mut st = c
        .prepare("SELECT at, count, sum, min, max FROM datapoints WHERE region=?1 AND namespace=?2 AND name=?3 AND dims=?4 AND at>=?5 AND at<?6")
        .map_err(err)?;
    let rows = st
        .query_map(rusqlite::params![region, ns, name, dims, start, end], |r| {
            Ok((
                r.get::<_, i64>(0)?,
                r.get::<_, f64>(1)?,
                r.get::<_, f64>(2)?,
                r.get::<_, f64>(3)?,
                r.get::<_, f64>(4)?,
            ))
        })
        .map_err(err)?;
    let mut by: std::collections::BTreeMap<i64, Agg> = Default::default();
    for row in rows {
        let (at, n, sum, min, max) = row.map_err(err)?;
        let slot = start + (at - start) / period_ms * period_ms;
        let a = by.entry(slot).or_insert(Agg {
            min: f64::INFINITY,
            max: f64::NEG_INFINITY,
            ..Default::default()
        });
        a.count += n;
        a.sum += sum;
        a.min = a.min.min(min);
        a.max = a.max.max(max);
    }
    Ok(by.into_iter().collect())
}

/// The function and qualifier of Lambda's dimensions: `FunctionName`, with `Resource`
/// (`NAME:QUALIFIER`) or `ExecutedVersion`.
fn lambda_target(dims: Option<&Value>) -> Result<(String, Option<String>), Fail> {
    let mut function = None;
    let mut qualifier = None;
    for d in dims.and_then(Value::as_array).into_iter().flatten() {
        let (Some(n), Some(v)) = (
            d.get("Name").and_then(Value::as_str),
            d.get("Value").and_then(Value::as_str),
        ) else {
            continue;
        };
        match n {
            "FunctionName" => function = Some(v.to_string()),
            "Resource" => qualifier = v.split_once(':').map(|(_, q)| q.to_string()),
            "ExecutedVersion" => qualifier = Some(v.to_string()),
            _ => {}
        }
    }
    let function = function.ok_or_else(|| invalid("AWS/Lambda metrics need the FunctionName dimension locally"))?;
    Ok((function, qualifier))
}

fn lambda_periods(
    ep: &Endpoint,
    region: &str,
    name: &str,
    dims: Option<&Value>,
    start: i64,
    end: i64,
    period_ms: i64,
) -> Result<Vec<(i64, Agg)>, Fail> {
    let (function, qualifier) = lambda_target(dims)?;
    let rid = RegionId::new(region).map_err(|e| invalid(e.to_string()))?;
    let rows = ep
        .host()
        .metric_periods(&rid, &function, qualifier.as_deref(), start, end, period_ms)
        .map_err(|e| invalid(e.to_string()))?;
    let mut out = Vec::new();
    for (at, b) in rows {
        let hist = std::sync::Arc::new(b.durations.clone());
        let a = match name {
            "Invocations" | "Errors" | "Throttles" => {
                let x = match name {
                    "Invocations" => b.invocations,
                    "Errors" => b.errors,
                    _ => b.throttles,
                } as f64;
                Agg {
                    count: b.invocations.max(1) as f64,
                    sum: x,
                    min: x,
                    max: x,
                    quantile: None,
                }
            }
            "Duration" => {
                let n = b.durations.count() as f64;
                let mean = b.durations.mean_ms().unwrap_or(0.0);
                let h = hist.clone();
                Agg {
                    count: n,
                    sum: mean * n,
                    min: b.durations.quantile_ms(0.0).unwrap_or(0.0),
                    max: b.durations.quantile_ms(1.0).unwrap_or(0.0),
                    quantile: Some(std::sync::Arc::new(move |q| h.quantile_ms(q))),
                }
            }
            other => {
                return Err(invalid(format!(
                "local regions record the AWS/Lambda metrics Invocations, Errors, Throttles and Duration, not {other}"
            )))
            }
        };
        out.push((at, a));
    }
    Ok(out)
}

fn describe_alarms(ep: &Endpoint, region: &str, v: &Value) -> Result<Value, Fail> {
    let names: Vec<&str> = v
        .get("AlarmNames")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .collect();
    let prefix = v.get("AlarmNamePrefix").and_then(Value::as_str);
    let state_filter = v.get("StateValue").and_then(Value::as_str);
    let stacks = ep
        .stacks()
        .map_err(|e| (StatusCode::INTERNAL_SERVER_ERROR, "InternalServiceError", e))?;
    let rid = RegionId::new(region).map_err(|e| invalid(e.to_string()))?;
    let mut alarms = Vec::new();
    for s in stacks.list_stacks(Some(region)).map_err(invalid)? {
        if s.stack_status == "DELETE_COMPLETE" {
            continue;
        }
        for r in stacks.resources(region, &s.stack_name).map_err(invalid)? {
            if r.resource_type != "AWS::CloudWatch::Alarm" {
                continue;
            }
            let name = r.physical_resource_id.clone();
            if (!names.is_empty() && !names.contains(&name.as_str())) || prefix.is_some_and(|p| !name.starts_with(p)) {
                continue;
            }
            let props = stacks
                .resource_properties(region, &s.stack_name, &r.logical_resource_id)
                .map_err(invalid)?
                .unwrap_or(Value::Null);
            let (state, reason) = match meridian_delivery::alarm::AlarmSpec::from_properties(&props) {
                Ok(spec) => {
                    let now = now_ms();
                    let window = spec.period_s as i64 * 1000 * (spec.evaluation_periods.max(1) as i64 + 1);
                    let points = spec
                        .function_name
                        .as_deref()
                        .map(|f| {
                            crate::functions::metric_points(
                                ep.host(),
                                &rid,
                                f,
                                spec.qualifier.as_deref(),
                                now - window,
                                now,
                                spec.period_s as i64 * 1000,
                            )
                        })
                        .transpose()
                        .map_err(|e| invalid(e.to_string()))?
                        .unwrap_or_default();
                    let e = meridian_delivery::alarm::evaluate(&spec, &points, now, 1.0);
                    let state = match e.state {
                        meridian_delivery::alarm::AlarmState::Ok => "OK",
                        meridian_delivery::alarm::AlarmState::Alarm => "ALARM",
                        meridian_delivery::alarm::AlarmState::InsufficientData => "INSUFFICIENT_DATA",
                    };
                    (state, e.reason)
                }
                Err(e) => (
                    "INSUFFICIENT_DATA",
                    format!("local regions evaluate alarms on AWS/Lambda metrics: {e}"),
                ),
            };
            if state_filter.is_some_and(|f| f != state) {
                continue;
            }
            let mut a = Map::new();
            a.insert("AlarmName".into(), json!(name));
            a.insert(
                "AlarmArn".into(),
                json!(format!("arn:aws:cloudwatch:{region}:{ACCOUNT_ID}:alarm:{name}")),
            );
            for key in [
                "AlarmDescription",
                "MetricName",
                "Namespace",
                "Statistic",
                "ExtendedStatistic",
                "Dimensions",
                "Period",
                "EvaluationPeriods",
                "DatapointsToAlarm",
                "Threshold",
                "ComparisonOperator",
                "TreatMissingData",
                "Unit",
            ] {
                if let Some(x) = props.get(key) {
                    let x = match (key, x) {
                        ("Period" | "EvaluationPeriods" | "DatapointsToAlarm", Value::String(s)) => {
                            s.parse::<i64>().map(|n| json!(n)).unwrap_or(x.clone())
                        }
                        ("Threshold", Value::String(s)) => s.parse::<f64>().map(|n| json!(n)).unwrap_or(x.clone()),
                        _ => x.clone(),
                    };
                    a.insert(key.into(), x);
                }
            }
            a.insert("StateValue".into(), json!(state));
            a.insert("StateReason".into(), json!(reason));
            a.insert("StateUpdatedTimestamp".into(), json!(now_ms() as f64 / 1000.0));
            a.insert(
                "ActionsEnabled".into(),
                json!(props.get("ActionsEnabled").and_then(Value::as_bool).unwrap_or(true)),
            );
            alarms.push(Value::Object(a));
        }
    }
    Ok(json!({ "MetricAlarms": alarms, "CompositeAlarms": [] }))
}

// ---- the wire --------------------------------------------------------------------------------

fn decode(protocol: Protocol, body: &[u8]) -> Result<Value, String> {
    if body.is_empty() {
        return Ok(json!({}));
    }
    match protocol {
        Protocol::Json => serde_json::from_slice(body).map_err(|e| format!("the request body is not JSON: {e}")),
        Protocol::Cbor => {
            let v: ciborium::Value =
                ciborium::from_reader(body).map_err(|e| format!("the request body is not CBOR: {e}"))?;
            cbor_to_json(v, 0)
        }
    }
}

fn cbor_to_json(v: ciborium::Value, depth: usize) -> Result<Value, String> {
    use ciborium::Value as C;
    if depth > 64 {
        return Err("the request body nests deeper than 64 levels".into());
    }
    Ok(match v {
        C::Null => Value::Null,
        C::Bool(b) => json!(b),
        C::Integer(i) => {
            let n: i128 = i.into();
            json!(n as f64)
                .as_f64()
                .and_then(|_| i64::try_from(n).ok())
                .map(|n| json!(n))
                .unwrap_or(json!(n as f64))
        }
        C::Float(f) => json!(f),
        C::Text(s) => json!(s),
        C::Bytes(b) => {
            use base64::Engine as _;
            json!(base64::engine::general_purpose::STANDARD.encode(b))
        }
        // Tag 1: epoch seconds, as timestamps travel.
        C::Tag(_, inner) => cbor_to_json(*inner, depth + 1)?,
        C::Array(a) => Value::Array(
            a.into_iter()
                .map(|x| cbor_to_json(x, depth + 1))
                .collect::<Result<_, _>>()?,
        ),
        C::Map(m) => {
            let mut o = Map::new();
            for (k, x) in m {
                let C::Text(k) = k else {
                    return Err("a CBOR map key is not text".into());
                };
                o.insert(k, cbor_to_json(x, depth + 1)?);
            }
            Value::Object(o)
        }
        _ => Value::Null,
    })
}

/// JSON to CBOR; members named `…Timestamp` or `Timestamps` are timestamps (tag 1).
fn json_to_cbor(v: &Value, timestamp: bool) -> ciborium::Value {
    use ciborium::Value as C;
    match v {
        Value::Null => C::Null,
        Value::Bool(b) => C::Bool(*b),
        Value::Number(n) if timestamp => C::Tag(1, Box::new(C::Float(n.as_f64().unwrap_or(0.0)))),
        Value::Number(n) => match n.as_i64() {
            Some(i) => C::Integer(i.into()),
            None => C::Float(n.as_f64().unwrap_or(0.0)),
        },
        Value::String(s) => C::Text(s.clone()),
        Value::Array(a) => C::Array(a.iter().map(|x| json_to_cbor(x, timestamp)).collect()),
        Value::Object(o) => C::Map(
            o.iter()
                .map(|(k, x)| {
                    (
                        C::Text(k.clone()),
                        json_to_cbor(x, k.ends_with("Timestamp") || k == "Timestamps"),
                    )
                })
                .collect(),
        ),
    }
}

fn answer(protocol: Protocol, out: Result<Value, Fail>, request_id: &str) -> Response<Body> {
    let (status, body, code) = match out {
        Ok(v) => (StatusCode::OK, v, None),
        Err((status, code, message)) => (status, json!({"__type": code, "message": message}), Some(code)),
    };
    let mut b = Response::builder()
        .status(status)
        .header("x-amzn-RequestId", request_id);
    if let Some(code) = code {
        // CloudWatch is query-compatible: SDKs read the query error code from this header.
        let kind = if status.is_server_error() { "Receiver" } else { "Sender" };
        b = b.header("x-amzn-query-error", format!("{code};{kind}"));
    }
    match protocol {
        Protocol::Cbor => {
            let mut bytes = Vec::new();
            if ciborium::into_writer(&json_to_cbor(&body, false), &mut bytes).is_err() {
                return b
                    .status(StatusCode::INTERNAL_SERVER_ERROR)
                    .body(full(esc("could not encode the answer")))
                    .expect("valid response");
            }
            b.header("smithy-protocol", "rpc-v2-cbor")
                .header("Content-Type", "application/cbor")
                .body(full(bytes))
                .expect("valid response")
        }
        Protocol::Json => b
            .header("Content-Type", "application/x-amz-json-1.0")
            .body(full(body.to_string()))
            .expect("valid response"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cbor_round_trips_with_timestamps_tagged() {
        let v = json!({"MetricDataResults": [{"Id": "a", "Timestamps": [1.5, 2.0], "Values": [3, 4.5]}], "StateUpdatedTimestamp": 7.0});
        let c = json_to_cbor(&v, false);
        let mut bytes = Vec::new();
        ciborium::into_writer(&c, &mut bytes).unwrap();
        let back: ciborium::Value = ciborium::from_reader(&bytes[..]).unwrap();
        let text = format!("{back:?}");
        assert!(text.contains("Tag(1, Float(1.5))"), "{text}");
        assert_eq!(
            cbor_to_json(back, 0).unwrap(),
            json!({"MetricDataResults": [{"Id": "a", "Timestamps": [1.5, 2.0], "Values": [3, 4.5]}], "StateUpdatedTimestamp": 7.0})
        );
    }

    #[test]
    fn operations_come_from_the_rpc_path_or_the_json_target() {
        assert!(matches!(
            operation("/service/GraniteServiceVersion20100801/operation/GetMetricData", None),
            Some((Protocol::Cbor, op)) if op == "GetMetricData"
        ));
        assert!(matches!(
            operation("/", Some("GraniteServiceVersion20100801.PutMetricData")),
            Some((Protocol::Json, op)) if op == "PutMetricData"
        ));
        assert!(operation("/", None).is_none());
    }
}
