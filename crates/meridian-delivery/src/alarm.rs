//! CloudWatch metric alarms over Lambda metrics, evaluated the way CloudWatch does.
//!
//! [`AlarmSpec::from_properties`] reads the resolved `Properties` of an `AWS::CloudWatch::Alarm`
//! (namespace `AWS/Lambda`, metrics `Errors`, `Throttles`, `Duration`, `Invocations`).
//! [`evaluate`] turns per-period [`MetricPoint`]s into an [`AlarmState`] with a CloudWatch-like
//! `StateReason`.
//!
//! # Semantics
//!
//! - **Periods** are `Period / time_scale` long and aligned to the epoch, like CloudWatch's.
//!   Only complete periods count: the newest evaluated period ends at or before `now`. The
//!   evaluation looks at exactly the last `EvaluationPeriods` periods (N); a point belongs to the
//!   period containing its `start_ms`, and several points in one period are merged (counts add;
//!   averages are weighted by invocations; percentiles take the largest, which is an upper bound
//!   of the merged percentile).
//! - **Datapoints from a [`MetricPoint`]**: Lambda publishes nothing for a function that was not
//!   invoked, so a period whose points have no invocations and no throttles is *missing*.
//!   `Invocations`, `Errors` and `Throttles` are modelled as one 0/1 sample per request
//!   (`Errors` per invocation, `Throttles` per request = invocations + throttles), so `Sum` is
//!   the count, `Average` the rate, `SampleCount` the number of samples, `Maximum` 1 when any
//!   sample is 1. `Duration` uses the caller's aggregates; a statistic the point does not carry
//!   (say `p99` when `duration_p99_ms` is `None`) makes that period missing.
//! - **M out of N**: the alarm is `Alarm` when at least `DatapointsToAlarm` (M) of the N periods
//!   breach, else `Ok`.
//! - **Missing data** (`TreatMissingData`): `notBreaching` counts a missing period as good,
//!   `breaching` as bad. `missing` (the default) and `ignore` evaluate only the periods that have
//!   data (still needing M breaching ones to alarm); when *every* period is missing, `missing`
//!   gives `InsufficientData` and `ignore` keeps the previous state
//!   ([`evaluate_with_previous`]; [`evaluate`] assumes the previous state of a new alarm,
//!   `InsufficientData`).
//!
//! Unlike CloudWatch, the evaluation does not reach further back than N periods to replace
//! missing ones: during a deployment older periods were served by another mix of versions.

use std::fmt::Write as _;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::schedule::{get_ci, number};

/// Lambda metrics an alarm can watch.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum LambdaMetric {
    /// Number of invocations.
    Invocations,
    /// Invocations that ended in a function error.
    Errors,
    /// Requests refused for lack of concurrency.
    Throttles,
    /// Time spent in the handler, in milliseconds.
    Duration,
}

/// The statistic an alarm compares with its threshold.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub enum Statistic {
    /// Sum of the samples.
    Sum,
    /// Mean of the samples.
    Average,
    /// Largest sample.
    Maximum,
    /// Smallest sample.
    Minimum,
    /// Number of samples.
    SampleCount,
    /// An extended statistic `pNN` (50, 90 or 99).
    Percentile(u8),
}

/// How the datapoint is compared with the threshold.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum ComparisonOperator {
    /// `value > threshold`
    GreaterThanThreshold,
    /// `value >= threshold`
    GreaterThanOrEqualToThreshold,
    /// `value < threshold`
    LessThanThreshold,
    /// `value <= threshold`
    LessThanOrEqualToThreshold,
}

impl ComparisonOperator {
    /// Whether `value` breaches `threshold`.
    pub fn breaches(self, value: f64, threshold: f64) -> bool {
        match self {
            Self::GreaterThanThreshold => value > threshold,
            Self::GreaterThanOrEqualToThreshold => value >= threshold,
            Self::LessThanThreshold => value < threshold,
            Self::LessThanOrEqualToThreshold => value <= threshold,
        }
    }

    fn words(self) -> &'static str {
        match self {
            Self::GreaterThanThreshold => "greater than",
            Self::GreaterThanOrEqualToThreshold => "greater than or equal to",
            Self::LessThanThreshold => "less than",
            Self::LessThanOrEqualToThreshold => "less than or equal to",
        }
    }
}

/// CloudWatch's `TreatMissingData`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub enum TreatMissingData {
    /// `missing` (default): all periods missing gives `InsufficientData`.
    #[default]
    Missing,
    /// `notBreaching`: a missing period is good.
    NotBreaching,
    /// `breaching`: a missing period is bad.
    Breaching,
    /// `ignore`: all periods missing keeps the previous state.
    Ignore,
}

/// The state of an alarm.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum AlarmState {
    /// Within the threshold.
    Ok,
    /// Breaching.
    Alarm,
    /// Not enough data to decide.
    InsufficientData,
}

/// A Lambda metric alarm, read from CloudFormation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AlarmSpec {
    /// `AlarmName`, when given.
    pub name: Option<String>,
    /// `MetricName`.
    pub metric: LambdaMetric,
    /// The `FunctionName` dimension, or the function part of `Resource`.
    pub function_name: Option<String>,
    /// The alias or version of the `Resource` dimension (`fn:alias`).
    pub qualifier: Option<String>,
    /// The `ExecutedVersion` dimension.
    pub executed_version: Option<String>,
    /// `Statistic` or `ExtendedStatistic`.
    pub statistic: Statistic,
    /// `Period`, in seconds.
    pub period_s: u64,
    /// `EvaluationPeriods` (N).
    pub evaluation_periods: u32,
    /// `DatapointsToAlarm` (M), at most N.
    pub datapoints_to_alarm: u32,
    /// `Threshold`.
    pub threshold: f64,
    /// `ComparisonOperator`.
    pub comparison: ComparisonOperator,
    /// `TreatMissingData`.
    pub treat_missing_data: TreatMissingData,
}

/// Why an alarm definition cannot be used.
#[derive(Debug, Clone, PartialEq, thiserror::Error, Serialize, Deserialize)]
pub enum AlarmError {
    /// A required property is absent.
    #[error("failed to read alarm: property {0} is required")]
    Missing(&'static str),
    /// A property has a value Meridian cannot use.
    #[error("failed to read alarm: {property} is {value:?}; {expected}")]
    Invalid {
        /// The property.
        property: &'static str,
        /// What it held.
        value: String,
        /// What is accepted.
        expected: String,
    },
}

/// One period of metrics of one qualifier (alias or version), aggregated by the caller.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct MetricPoint {
    /// Start of the period, epoch milliseconds.
    pub start_ms: i64,
    /// Length of the period in milliseconds.
    pub period_ms: i64,
    /// Invocations in the period.
    pub invocations: u64,
    /// Invocations that ended in an error.
    pub errors: u64,
    /// Throttled requests.
    pub throttles: u64,
    /// Median duration.
    pub duration_p50_ms: Option<f64>,
    /// 90th percentile duration.
    pub duration_p90_ms: Option<f64>,
    /// 99th percentile duration.
    pub duration_p99_ms: Option<f64>,
    /// Mean duration.
    pub duration_avg_ms: Option<f64>,
    /// Longest duration.
    pub duration_max_ms: Option<f64>,
    /// Shortest duration.
    pub duration_min_ms: Option<f64>,
}

/// The outcome of [`evaluate`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AlarmEvaluation {
    /// The new state.
    pub state: AlarmState,
    /// Why, with the datapoints and threshold, in the style of CloudWatch's `StateReason`.
    pub reason: String,
}

fn invalid(property: &'static str, value: &Value, expected: impl Into<String>) -> AlarmError {
    let value = match value {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    };
    AlarmError::Invalid {
        property,
        value,
        expected: expected.into(),
    }
}

fn whole(props: &Value, key: &'static str) -> Result<Option<u64>, AlarmError> {
    match get_ci(props, key) {
        None | Some(Value::Null) => Ok(None),
        Some(v) => match number(v) {
            Some(n) if n >= 0.0 && n.fract() == 0.0 && n <= u32::MAX as f64 => Ok(Some(n as u64)),
            _ => Err(invalid(key, v, "expected a whole non-negative number")),
        },
    }
}

impl AlarmSpec {
    /// Reads the resolved `Properties` of an `AWS::CloudWatch::Alarm`. Numbers may be JSON
    /// numbers or strings. Metric-math alarms (`Metrics`) are not supported.
    pub fn from_properties(props: &Value) -> Result<AlarmSpec, AlarmError> {
        if !props.is_object() {
            return Err(invalid("Properties", props, "expected an object"));
        }
        if get_ci(props, "Metrics").is_some() {
            return Err(AlarmError::Invalid {
                property: "Metrics",
                value: "metric math".into(),
                expected: "only single-metric alarms (MetricName, Namespace, Dimensions) are supported".into(),
            });
        }
        let name = get_ci(props, "AlarmName").and_then(Value::as_str).map(str::to_string);
        let metric_v = get_ci(props, "MetricName").ok_or(AlarmError::Missing("MetricName"))?;
        let metric = match metric_v.as_str() {
            Some("Errors") => LambdaMetric::Errors,
            Some("Throttles") => LambdaMetric::Throttles,
            Some("Duration") => LambdaMetric::Duration,
            Some("Invocations") => LambdaMetric::Invocations,
            _ => {
                return Err(invalid(
                    "MetricName",
                    metric_v,
                    "supported Lambda metrics are Errors, Throttles, Duration and Invocations",
                ))
            }
        };
        let ns = get_ci(props, "Namespace").ok_or(AlarmError::Missing("Namespace"))?;
        if ns.as_str() != Some("AWS/Lambda") {
            return Err(invalid("Namespace", ns, "only AWS/Lambda is supported"));
        }

        let mut function_name = None;
        let mut qualifier = None;
        let mut executed_version = None;
        if let Some(dims) = get_ci(props, "Dimensions") {
            let list = dims
                .as_array()
                .ok_or_else(|| invalid("Dimensions", dims, "expected a list of {Name, Value}"))?;
            for d in list {
                let dn = get_ci(d, "Name").and_then(Value::as_str);
                let dv = get_ci(d, "Value").and_then(|v| match v {
                    Value::String(s) => Some(s.clone()),
                    Value::Number(n) => Some(n.to_string()),
                    _ => None,
                });
                let (Some(dn), Some(dv)) = (dn, dv) else {
                    return Err(invalid("Dimensions", d, "each dimension needs a string Name and Value"));
                };
                match dn {
                    "FunctionName" => function_name = Some(dv),
                    "Resource" => match dv.split_once(':') {
                        Some((f, q)) if !f.is_empty() && !q.is_empty() => {
                            if let Some(existing) = &function_name {
                                if existing != f {
                                    return Err(invalid(
                                        "Dimensions",
                                        d,
                                        format!("Resource names function {f} but FunctionName is {existing}"),
                                    ));
                                }
                            }
                            function_name = Some(f.to_string());
                            qualifier = Some(q.to_string());
                        }
                        // A bare function name: the unqualified function.
                        None if !dv.is_empty() => function_name = Some(dv),
                        _ => {
                            return Err(invalid(
                                "Dimensions",
                                d,
                                "the Resource dimension is `function:alias` or `function:version`",
                            ))
                        }
                    },
                    "ExecutedVersion" => executed_version = Some(dv),
                    other => {
                        return Err(AlarmError::Invalid {
                            property: "Dimensions",
                            value: other.to_string(),
                            expected: "Lambda dimensions are FunctionName, Resource and ExecutedVersion".into(),
                        })
                    }
                }
            }
        }

        let statistic = match (get_ci(props, "Statistic"), get_ci(props, "ExtendedStatistic")) {
            (Some(_), Some(_)) => {
                return Err(AlarmError::Invalid {
                    property: "Statistic",
                    value: "both Statistic and ExtendedStatistic".into(),
                    expected: "give exactly one of them".into(),
                })
            }
            (Some(s), None) => match s.as_str() {
                Some("Sum") => Statistic::Sum,
                Some("Average") => Statistic::Average,
                Some("Maximum") => Statistic::Maximum,
                Some("Minimum") => Statistic::Minimum,
                Some("SampleCount") => Statistic::SampleCount,
                _ => {
                    return Err(invalid(
                        "Statistic",
                        s,
                        "expected Sum, Average, Maximum, Minimum or SampleCount",
                    ))
                }
            },
            (None, Some(e)) => match e.as_str() {
                Some("p50") => Statistic::Percentile(50),
                Some("p90") => Statistic::Percentile(90),
                Some("p99") => Statistic::Percentile(99),
                _ => return Err(invalid("ExtendedStatistic", e, "expected p50, p90 or p99")),
            },
            (None, None) => return Err(AlarmError::Missing("Statistic")),
        };

        let period_s = whole(props, "Period")?.ok_or(AlarmError::Missing("Period"))?;
        if period_s == 0 {
            return Err(AlarmError::Invalid {
                property: "Period",
                value: "0".into(),
                expected: "expected a positive number of seconds".into(),
            });
        }
        let n = whole(props, "EvaluationPeriods")?.ok_or(AlarmError::Missing("EvaluationPeriods"))?;
        if n == 0 {
            return Err(AlarmError::Invalid {
                property: "EvaluationPeriods",
                value: "0".into(),
                expected: "expected at least 1".into(),
            });
        }
        let m = whole(props, "DatapointsToAlarm")?.unwrap_or(n);
        if m == 0 || m > n {
            return Err(AlarmError::Invalid {
                property: "DatapointsToAlarm",
                value: m.to_string(),
                expected: format!("expected between 1 and EvaluationPeriods ({n})"),
            });
        }
        let threshold_v = get_ci(props, "Threshold").ok_or(AlarmError::Missing("Threshold"))?;
        let threshold = number(threshold_v).ok_or_else(|| invalid("Threshold", threshold_v, "expected a number"))?;
        let op_v = get_ci(props, "ComparisonOperator").ok_or(AlarmError::Missing("ComparisonOperator"))?;
        let comparison = match op_v.as_str() {
            Some("GreaterThanThreshold") => ComparisonOperator::GreaterThanThreshold,
            Some("GreaterThanOrEqualToThreshold") => ComparisonOperator::GreaterThanOrEqualToThreshold,
            Some("LessThanThreshold") => ComparisonOperator::LessThanThreshold,
            Some("LessThanOrEqualToThreshold") => ComparisonOperator::LessThanOrEqualToThreshold,
            _ => return Err(invalid(
                "ComparisonOperator",
                op_v,
                "expected GreaterThanThreshold, GreaterThanOrEqualToThreshold, LessThanThreshold or LessThanOrEqualToThreshold",
            )),
        };
        let treat_missing_data = match get_ci(props, "TreatMissingData") {
            None | Some(Value::Null) => TreatMissingData::Missing,
            Some(v) => match v.as_str() {
                Some("missing") => TreatMissingData::Missing,
                Some("notBreaching") => TreatMissingData::NotBreaching,
                Some("breaching") => TreatMissingData::Breaching,
                Some("ignore") => TreatMissingData::Ignore,
                _ => {
                    return Err(invalid(
                        "TreatMissingData",
                        v,
                        "expected missing, notBreaching, breaching or ignore",
                    ))
                }
            },
        };
        Ok(AlarmSpec {
            name,
            metric,
            function_name,
            qualifier,
            executed_version,
            statistic,
            period_s,
            evaluation_periods: n as u32,
            datapoints_to_alarm: m as u32,
            threshold,
            comparison,
            treat_missing_data,
        })
    }

    /// The period length in milliseconds at `time_scale` (at least 1 ms).
    pub fn period_ms(&self, time_scale: f64) -> i64 {
        let scale = if time_scale.is_finite() && time_scale > 0.0 {
            time_scale
        } else {
            1.0
        };
        ((self.period_s as f64 * 1000.0 / scale).round() as i64).max(1)
    }
}

/// Several points merged into one period's aggregate.
#[derive(Default)]
struct Merged {
    invocations: u64,
    errors: u64,
    throttles: u64,
    avg_weighted: Option<(f64, u64)>,
    max: Option<f64>,
    min: Option<f64>,
    p50: Option<f64>,
    p90: Option<f64>,
    p99: Option<f64>,
}

fn opt_max(a: Option<f64>, b: Option<f64>) -> Option<f64> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.max(b)),
        (a, None) => a,
        (None, b) => b,
    }
}

fn opt_min(a: Option<f64>, b: Option<f64>) -> Option<f64> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, None) => a,
        (None, b) => b,
    }
}

impl Merged {
    fn add(&mut self, p: &MetricPoint) {
        self.invocations += p.invocations;
        self.errors += p.errors;
        self.throttles += p.throttles;
        if let Some(avg) = p.duration_avg_ms {
            let w = p.invocations.max(1);
            let (sum, n) = self.avg_weighted.unwrap_or((0.0, 0));
            self.avg_weighted = Some((sum + avg * w as f64, n + w));
        }
        self.max = opt_max(self.max, p.duration_max_ms);
        self.min = opt_min(self.min, p.duration_min_ms);
        // The merged percentile is at most the largest of the parts' percentiles.
        self.p50 = opt_max(self.p50, p.duration_p50_ms);
        self.p90 = opt_max(self.p90, p.duration_p90_ms);
        self.p99 = opt_max(self.p99, p.duration_p99_ms);
    }

    /// The datapoint of `metric`/`stat`, or None when the period is missing.
    fn datapoint(&self, metric: LambdaMetric, stat: Statistic) -> Option<f64> {
        if self.invocations == 0 && self.throttles == 0 {
            return None;
        }
        // Count metrics: `ones` samples of value 1 among `n` samples of 0 or 1.
        let counts = |ones: u64, n: u64| -> Option<f64> {
            if n == 0 {
                return None;
            }
            Some(match stat {
                Statistic::Sum => ones as f64,
                Statistic::SampleCount => n as f64,
                Statistic::Average => ones as f64 / n as f64,
                Statistic::Maximum => f64::from(u8::from(ones > 0)),
                Statistic::Minimum => f64::from(u8::from(ones == n)),
                Statistic::Percentile(p) => {
                    // Nearest-rank percentile of n sorted 0/1 samples, the ones last.
                    let rank = ((f64::from(p) / 100.0) * n as f64).ceil().max(1.0) as u64;
                    f64::from(u8::from(rank > n - ones))
                }
            })
        };
        match metric {
            LambdaMetric::Invocations => counts(self.invocations, self.invocations),
            LambdaMetric::Errors => counts(self.errors.min(self.invocations), self.invocations),
            LambdaMetric::Throttles => counts(self.throttles, self.invocations + self.throttles),
            LambdaMetric::Duration => {
                if self.invocations == 0 {
                    return None;
                }
                match stat {
                    Statistic::SampleCount => Some(self.invocations as f64),
                    Statistic::Average => self.avg_weighted.map(|(s, n)| s / n as f64),
                    Statistic::Sum => self.avg_weighted.map(|(s, n)| s / n as f64 * self.invocations as f64),
                    Statistic::Maximum => self.max,
                    Statistic::Minimum => self.min,
                    Statistic::Percentile(50) => self.p50,
                    Statistic::Percentile(90) => self.p90,
                    Statistic::Percentile(99) => self.p99,
                    Statistic::Percentile(_) => None,
                }
            }
        }
    }
}

/// Evaluates `spec` at `now_ms` over `points` as a new alarm would (previous state
/// `InsufficientData`). See the module documentation for the rules.
pub fn evaluate(spec: &AlarmSpec, points: &[MetricPoint], now_ms: i64, time_scale: f64) -> AlarmEvaluation {
    evaluate_with_previous(spec, points, now_ms, time_scale, AlarmState::InsufficientData)
}

/// [`evaluate`] for an alarm whose current state is `previous` (matters for `ignore`, which
/// keeps it when every period is missing).
pub fn evaluate_with_previous(
    spec: &AlarmSpec,
    points: &[MetricPoint],
    now_ms: i64,
    time_scale: f64,
    previous: AlarmState,
) -> AlarmEvaluation {
    let period = spec.period_ms(time_scale);
    let n = spec.evaluation_periods.max(1) as usize;
    let m = (spec.datapoints_to_alarm.max(1) as usize).min(n);
    // End of the newest complete period.
    let end = now_ms.div_euclid(period) * period;
    let first_start = end.saturating_sub(period.saturating_mul(n as i64));

    let mut merged: Vec<Merged> = (0..n).map(|_| Merged::default()).collect();
    for p in points {
        if p.start_ms < first_start || p.start_ms >= end {
            continue;
        }
        let idx = ((p.start_ms - first_start) / period) as usize;
        if let Some(slot) = merged.get_mut(idx) {
            slot.add(p);
        }
    }
    // Oldest first.
    let values: Vec<Option<f64>> = merged
        .iter()
        .map(|g| g.datapoint(spec.metric, spec.statistic))
        .collect();
    let present = values.iter().filter(|v| v.is_some()).count();
    let breaching_real = values
        .iter()
        .flatten()
        .filter(|v| spec.comparison.breaches(**v, spec.threshold))
        .count();
    let missing = n - present;

    let (state, counted_breaching, counted_total) = if present == 0 {
        match spec.treat_missing_data {
            TreatMissingData::Missing => (AlarmState::InsufficientData, 0, 0),
            TreatMissingData::Ignore => (previous, 0, 0),
            TreatMissingData::Breaching => (AlarmState::Alarm, n, n),
            TreatMissingData::NotBreaching => (AlarmState::Ok, 0, n),
        }
    } else {
        let (b, total) = match spec.treat_missing_data {
            TreatMissingData::Breaching => (breaching_real + missing, n),
            TreatMissingData::NotBreaching => (breaching_real, n),
            TreatMissingData::Missing | TreatMissingData::Ignore => (breaching_real, present),
        };
        (if b >= m { AlarmState::Alarm } else { AlarmState::Ok }, b, total)
    };

    // A CloudWatch-like StateReason: newest datapoints first, with their period start.
    let mut listed = String::new();
    for (i, v) in values.iter().enumerate().rev() {
        if let Some(v) = v {
            if !listed.is_empty() {
                listed.push_str(", ");
            }
            let start = first_start + period * i as i64;
            let _ = write!(listed, "{} ({})", fmt_num(*v), fmt_time(start));
        }
    }
    let stat = match spec.statistic {
        Statistic::Percentile(p) => format!("p{p}"),
        s => format!("{s:?}"),
    };
    let subject = format!("{:?} {stat} over {} s periods", spec.metric, spec.period_s);
    let missing_note = if missing > 0 {
        format!(
            "; {missing} of {n} periods missing, treated as {}",
            match spec.treat_missing_data {
                TreatMissingData::Missing => "missing",
                TreatMissingData::NotBreaching => "not breaching",
                TreatMissingData::Breaching => "breaching",
                TreatMissingData::Ignore => "ignored",
            }
        )
    } else {
        String::new()
    };
    let reason = if present == 0 {
        match state {
            AlarmState::InsufficientData if spec.treat_missing_data == TreatMissingData::Missing => format!(
                "Insufficient Data: no datapoints of {subject} in the last {n} periods (TreatMissingData missing)."
            ),
            _ if spec.treat_missing_data == TreatMissingData::Ignore => format!(
                "No datapoints of {subject} in the last {n} periods; TreatMissingData ignore keeps the state {state:?}."
            ),
            _ => format!(
                "{}: all {n} periods of {subject} missing, treated as {} (minimum {m} breaching for ALARM).",
                if state == AlarmState::Alarm {
                    "Threshold Crossed"
                } else {
                    "Threshold Not Crossed"
                },
                if spec.treat_missing_data == TreatMissingData::Breaching {
                    "breaching"
                } else {
                    "not breaching"
                }
            ),
        }
    } else {
        format!(
            "{}: {counted_breaching} out of the last {counted_total} datapoints of {subject} [{listed}] {} {} the threshold ({}) (minimum {m} datapoints for ALARM){missing_note}.",
            if state == AlarmState::Alarm {
                "Threshold Crossed"
            } else {
                "Threshold Not Crossed"
            },
            if counted_breaching == 1 { "was" } else { "were" },
            spec.comparison.words(),
            fmt_num(spec.threshold),
        )
    };
    AlarmEvaluation { state, reason }
}

fn fmt_num(v: f64) -> String {
    if v.fract() == 0.0 && v.abs() < 1e15 {
        format!("{v:.1}")
    } else {
        format!("{v}")
    }
}

fn fmt_time(ms: i64) -> String {
    match jiff::Timestamp::from_millisecond(ms) {
        Ok(ts) => ts.strftime("%d/%m/%y %H:%M:%S").to_string(),
        Err(_) => ms.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn errors_alarm(n: u32, m: Option<u32>, treat: Option<&str>) -> AlarmSpec {
        let mut props = json!({
            "AlarmName": "fn-errors",
            "MetricName": "Errors",
            "Namespace": "AWS/Lambda",
            "Dimensions": [{"Name": "Resource", "Value": "checkout:live"},
                           {"Name": "FunctionName", "Value": "checkout"}],
            "Statistic": "Sum",
            "Period": "60",
            "EvaluationPeriods": n,
            "Threshold": "0",
            "ComparisonOperator": "GreaterThanThreshold",
        });
        if let Some(m) = m {
            props["DatapointsToAlarm"] = json!(m);
        }
        if let Some(t) = treat {
            props["TreatMissingData"] = json!(t);
        }
        AlarmSpec::from_properties(&props).unwrap()
    }

    fn point(minute: i64, invocations: u64, errors: u64) -> MetricPoint {
        MetricPoint {
            start_ms: minute * 60_000,
            period_ms: 60_000,
            invocations,
            errors,
            ..MetricPoint::default()
        }
    }

    #[test]
    fn reads_properties() {
        let a = errors_alarm(3, None, None);
        assert_eq!(a.metric, LambdaMetric::Errors);
        assert_eq!(a.function_name.as_deref(), Some("checkout"));
        assert_eq!(a.qualifier.as_deref(), Some("live"));
        assert_eq!(a.period_s, 60);
        assert_eq!(a.datapoints_to_alarm, 3);
        assert_eq!(a.treat_missing_data, TreatMissingData::Missing);
        assert_eq!(a.threshold, 0.0);

        let p = AlarmSpec::from_properties(&json!({
            "MetricName": "Duration", "Namespace": "AWS/Lambda", "ExtendedStatistic": "p99",
            "Period": 300, "EvaluationPeriods": "5", "DatapointsToAlarm": "2", "Threshold": 250.5,
            "ComparisonOperator": "GreaterThanOrEqualToThreshold", "TreatMissingData": "notBreaching",
            "Dimensions": [{"Name": "FunctionName", "Value": "f"}, {"Name": "ExecutedVersion", "Value": "7"}]
        }))
        .unwrap();
        assert_eq!(p.statistic, Statistic::Percentile(99));
        assert_eq!(p.evaluation_periods, 5);
        assert_eq!(p.datapoints_to_alarm, 2);
        assert_eq!(p.executed_version.as_deref(), Some("7"));
    }

    #[test]
    fn rejects_what_it_cannot_evaluate() {
        let base = json!({"MetricName": "Errors", "Namespace": "AWS/Lambda", "Statistic": "Sum",
            "Period": 60, "EvaluationPeriods": 1, "Threshold": 1, "ComparisonOperator": "GreaterThanThreshold"});
        assert!(AlarmSpec::from_properties(&base).is_ok());
        let with = |k: &str, v: Value| {
            let mut p = base.clone();
            p[k] = v;
            AlarmSpec::from_properties(&p).unwrap_err().to_string()
        };
        let e = with("MetricName", json!("ConcurrentExecutions"));
        assert!(
            e.contains("ConcurrentExecutions") && e.contains("Errors, Throttles, Duration and Invocations"),
            "{e}"
        );
        assert!(with("Namespace", json!("AWS/EC2")).contains("AWS/Lambda"));
        assert!(with("Statistic", json!("Median")).contains("Median"));
        assert!(with("Period", json!("sixty")).contains("Period"));
        assert!(with("DatapointsToAlarm", json!(2)).contains("DatapointsToAlarm"));
        assert!(with("ComparisonOperator", json!("LessThanLowerThreshold")).contains("ComparisonOperator"));
        assert!(with("TreatMissingData", json!("Breaching")).contains("TreatMissingData"));
        assert!(with("Dimensions", json!([{"Name": "InstanceId", "Value": "i-1"}])).contains("InstanceId"));
        assert!(with("Dimensions", json!([{"Name": "Resource", "Value": ":live"}])).contains("Resource"));
        let mut p = base.clone();
        p.as_object_mut().unwrap().remove("Threshold");
        assert_eq!(
            AlarmSpec::from_properties(&p).unwrap_err(),
            AlarmError::Missing("Threshold")
        );
    }

    #[test]
    fn m_out_of_n() {
        let a = errors_alarm(3, Some(2), None);
        // now = 10:00:30 -> complete periods are minutes 7, 8, 9.
        let now = 10 * 60_000 + 30_000;
        let ok = evaluate(&a, &[point(7, 10, 0), point(8, 10, 1), point(9, 10, 0)], now, 1.0);
        assert_eq!(ok.state, AlarmState::Ok, "{}", ok.reason);
        let alarm = evaluate(&a, &[point(7, 10, 2), point(8, 10, 0), point(9, 10, 1)], now, 1.0);
        assert_eq!(alarm.state, AlarmState::Alarm, "{}", alarm.reason);
        assert!(alarm.reason.contains("2 out of the last 3"), "{}", alarm.reason);
        assert!(
            alarm.reason.contains("greater than the threshold (0.0)"),
            "{}",
            alarm.reason
        );
        // The period still running (minute 10) and old ones (minute 6) do not count.
        let r = evaluate(
            &a,
            &[
                point(6, 10, 5),
                point(10, 10, 5),
                point(7, 1, 0),
                point(8, 1, 0),
                point(9, 1, 1),
            ],
            now,
            1.0,
        );
        assert_eq!(r.state, AlarmState::Ok, "{}", r.reason);
    }

    #[test]
    fn missing_data_treatments() {
        let now = 10 * 60_000;
        // Only minute 9 has data, and it breaches; 3-of-3.
        let pts = [point(9, 5, 1)];
        assert_eq!(
            evaluate(&errors_alarm(3, None, None), &pts, now, 1.0).state,
            AlarmState::Ok
        );
        assert_eq!(
            evaluate(&errors_alarm(3, None, Some("breaching")), &pts, now, 1.0).state,
            AlarmState::Alarm
        );
        assert_eq!(
            evaluate(&errors_alarm(3, None, Some("notBreaching")), &pts, now, 1.0).state,
            AlarmState::Ok
        );
        // 1-of-3 with one breaching real point alarms under every treatment.
        for t in ["missing", "ignore", "breaching", "notBreaching"] {
            assert_eq!(
                evaluate(&errors_alarm(3, Some(1), Some(t)), &pts, now, 1.0).state,
                AlarmState::Alarm,
                "{t}"
            );
        }
        // Nothing at all; a period with zero invocations is missing too.
        let idle = [point(8, 0, 0)];
        let e = evaluate(&errors_alarm(3, None, None), &idle, now, 1.0);
        assert_eq!(e.state, AlarmState::InsufficientData);
        assert!(e.reason.contains("Insufficient Data"), "{}", e.reason);
        assert_eq!(
            evaluate(&errors_alarm(3, None, Some("breaching")), &idle, now, 1.0).state,
            AlarmState::Alarm
        );
        assert_eq!(
            evaluate(&errors_alarm(3, None, Some("notBreaching")), &idle, now, 1.0).state,
            AlarmState::Ok
        );
        let ignore = errors_alarm(3, None, Some("ignore"));
        assert_eq!(evaluate(&ignore, &idle, now, 1.0).state, AlarmState::InsufficientData);
        assert_eq!(
            evaluate_with_previous(&ignore, &idle, now, 1.0, AlarmState::Alarm).state,
            AlarmState::Alarm
        );
        // Two present, both breaching, 2-of-3 with one missing: alarm under missing.
        let two = [point(7, 5, 1), point(9, 5, 2)];
        assert_eq!(
            evaluate(&errors_alarm(3, Some(2), None), &two, now, 1.0).state,
            AlarmState::Alarm
        );
    }

    #[test]
    fn time_scale_shortens_periods_and_points_merge() {
        let a = errors_alarm(1, None, None);
        // Period 60 s at scale 60 is 1 s. now = 5.0 s -> evaluated period [4 s, 5 s).
        let pts = [
            MetricPoint {
                start_ms: 4_000,
                period_ms: 500,
                invocations: 3,
                ..Default::default()
            },
            MetricPoint {
                start_ms: 4_500,
                period_ms: 500,
                invocations: 3,
                errors: 1,
                ..Default::default()
            },
        ];
        let e = evaluate(&a, &pts, 5_000, 60.0);
        assert_eq!(e.state, AlarmState::Alarm, "{}", e.reason);
        assert!(e.reason.contains("[1.0 ("), "{}", e.reason);
    }

    #[test]
    fn statistics_of_the_models() {
        let mut m = Merged::default();
        m.add(&MetricPoint {
            invocations: 10,
            errors: 2,
            throttles: 5,
            duration_avg_ms: Some(100.0),
            duration_p99_ms: Some(400.0),
            duration_max_ms: Some(500.0),
            ..Default::default()
        });
        m.add(&MetricPoint {
            invocations: 30,
            duration_avg_ms: Some(200.0),
            duration_p99_ms: Some(300.0),
            duration_max_ms: Some(350.0),
            ..Default::default()
        });
        use LambdaMetric::*;
        assert_eq!(m.datapoint(Errors, Statistic::Sum), Some(2.0));
        assert_eq!(m.datapoint(Errors, Statistic::Average), Some(0.05));
        assert_eq!(m.datapoint(Errors, Statistic::SampleCount), Some(40.0));
        assert_eq!(m.datapoint(Errors, Statistic::Maximum), Some(1.0));
        assert_eq!(m.datapoint(Errors, Statistic::Minimum), Some(0.0));
        assert_eq!(m.datapoint(Errors, Statistic::Percentile(99)), Some(1.0));
        assert_eq!(m.datapoint(Errors, Statistic::Percentile(50)), Some(0.0));
        assert_eq!(m.datapoint(Throttles, Statistic::Average), Some(5.0 / 45.0));
        assert_eq!(m.datapoint(Invocations, Statistic::Sum), Some(40.0));
        assert_eq!(m.datapoint(Duration, Statistic::Average), Some(175.0));
        assert_eq!(m.datapoint(Duration, Statistic::Maximum), Some(500.0));
        assert_eq!(m.datapoint(Duration, Statistic::Percentile(99)), Some(400.0));
        assert_eq!(m.datapoint(Duration, Statistic::Percentile(90)), None);
        assert_eq!(m.datapoint(Duration, Statistic::Minimum), None);
    }

    #[test]
    fn latency_alarm_below_threshold() {
        let a = AlarmSpec::from_properties(&json!({
            "MetricName": "Duration", "Namespace": "AWS/Lambda", "Statistic": "Average",
            "Period": 60, "EvaluationPeriods": 2, "Threshold": 100,
            "ComparisonOperator": "LessThanThreshold"}))
        .unwrap();
        let p = |min: i64, avg: f64| MetricPoint {
            start_ms: min * 60_000,
            period_ms: 60_000,
            invocations: 1,
            duration_avg_ms: Some(avg),
            ..Default::default()
        };
        assert_eq!(
            evaluate(&a, &[p(0, 50.0), p(1, 60.0)], 120_000, 1.0).state,
            AlarmState::Alarm
        );
        assert_eq!(
            evaluate(&a, &[p(0, 50.0), p(1, 160.0)], 120_000, 1.0).state,
            AlarmState::Ok
        );
    }
}
