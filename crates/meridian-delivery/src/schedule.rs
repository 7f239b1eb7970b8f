//! Traffic schedules: how much of an alias's traffic goes to the new version, and for how long.
//!
//! A [`TrafficSchedule`] is a list of [`Step`]s. Each step names the share of traffic on the
//! new version and how long to wait ("bake") once that share is reached. Percentages strictly
//! increase and the last step is always 100% with no bake: a schedule only moves forward, and
//! the only way back is a rollback.
//!
//! Accepted spellings (see [`TrafficSchedule::parse`]):
//!
//! - CodeDeploy's predefined Lambda configurations, with or without the
//!   `CodeDeployDefault.Lambda` prefix: `AllAtOnce`, `Canary10Percent5Minutes`,
//!   `Linear10PercentEvery1Minute`, ...
//! - custom names of the same shapes: `Canary25Percent2Minutes`, `Linear20PercentEvery5Minutes`
//!   (`Minute`/`Minutes`/`Hour`/`Hours`);
//! - Meridian's multi-step form: `1%:5m,5%:5m,25%:10m,50%:10m,100%` (durations in `s`, `m`, `h`).
//!
//! [`TrafficSchedule::from_codedeploy_config`] reads the `TrafficRoutingConfig` of an
//! `AWS::CodeDeploy::DeploymentConfig` (CloudFormation or API casing).

use serde::{Deserialize, Serialize};
use serde_json::Value;

const MINUTE_MS: u64 = 60_000;
const HOUR_MS: u64 = 60 * MINUTE_MS;

/// The forms [`TrafficSchedule::parse`] accepts, quoted in every parse error.
pub const ACCEPTED_FORMS: &str =
    "accepted forms: AllAtOnce, Canary<P>Percent<N>Minutes (e.g. Canary10Percent5Minutes), \
Linear<P>PercentEvery<N>Minutes (e.g. Linear10PercentEvery1Minute), each optionally prefixed with \
`CodeDeployDefault.Lambda`, or steps like `1%:5m,25%:10m,100%` (durations in s, m or h)";

/// One step of a schedule: move to `percent` of traffic on the new version, then wait `bake_ms`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Step {
    /// Share of the alias's traffic on the new version, in `0..=100`.
    pub percent: f64,
    /// How long to wait after reaching `percent` before the next step, in milliseconds.
    pub bake_ms: u64,
}

/// A validated sequence of traffic steps ending at 100% with no bake.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TrafficSchedule {
    /// The steps, in order. Percentages strictly increase; the last is `100` with `bake_ms == 0`.
    pub steps: Vec<Step>,
}

/// Why a schedule could not be read.
#[derive(Debug, Clone, PartialEq, thiserror::Error, Serialize, Deserialize)]
pub enum ScheduleError {
    /// The name matched none of the accepted forms.
    #[error("failed to read traffic schedule {input:?}: {detail}; {ACCEPTED_FORMS}")]
    Unrecognized {
        /// What the user wrote.
        input: String,
        /// What was wrong with it.
        detail: String,
    },
    /// The steps are well-formed but do not make a valid schedule.
    #[error("failed to build traffic schedule: {0}")]
    Invalid(String),
    /// A CodeDeploy deployment configuration could not be read.
    #[error("failed to read CodeDeploy deployment configuration: {0}")]
    CodeDeployConfig(String),
}

impl TrafficSchedule {
    /// Everything at once: 100% on the new version immediately.
    pub fn all_at_once() -> Self {
        TrafficSchedule {
            steps: vec![Step {
                percent: 100.0,
                bake_ms: 0,
            }],
        }
    }

    /// CodeDeploy's canary: `percent` first, wait `interval_ms`, then everything.
    pub fn canary(percent: f64, interval_ms: u64) -> Result<Self, ScheduleError> {
        check_share(percent)?;
        Self::from_steps(vec![
            Step {
                percent,
                bake_ms: interval_ms,
            },
            Step {
                percent: 100.0,
                bake_ms: 0,
            },
        ])
    }

    /// CodeDeploy's linear: add `percent` every `interval_ms` until everything has moved.
    /// `Linear10PercentEvery1Minute` is 10%, 20%, ... 90% with one minute each, then 100%.
    /// When `percent` does not divide 100 the last increment is smaller (30% -> 30, 60, 90, 100).
    pub fn linear(percent: f64, interval_ms: u64) -> Result<Self, ScheduleError> {
        check_share(percent)?;
        let mut steps = Vec::new();
        let mut k = 1u32;
        loop {
            // Multiply rather than accumulate so that 10% steps are exactly 10, 20, ... 90.
            let p = percent * f64::from(k);
            if p >= 100.0 - 1e-9 {
                break;
            }
            steps.push(Step {
                percent: p,
                bake_ms: interval_ms,
            });
            k += 1;
        }
        steps.push(Step {
            percent: 100.0,
            bake_ms: 0,
        });
        Self::from_steps(steps)
    }

    /// Builds a schedule from explicit steps, checking the invariants: at least one step,
    /// every percentage finite and in `0..=100`, strictly increasing, the last one 100 with no bake.
    pub fn from_steps(steps: Vec<Step>) -> Result<Self, ScheduleError> {
        let Some(last) = steps.last() else {
            return Err(ScheduleError::Invalid("a schedule needs at least one step".into()));
        };
        if last.percent != 100.0 {
            return Err(ScheduleError::Invalid(format!(
                "the last step must move 100% of traffic, not {}%",
                last.percent
            )));
        }
        if last.bake_ms != 0 {
            return Err(ScheduleError::Invalid(
                "the last step (100%) cannot have a bake time: there is nothing left to shift".into(),
            ));
        }
        let mut previous = 0.0f64;
        for (i, step) in steps.iter().enumerate() {
            if !step.percent.is_finite() || step.percent < 0.0 || step.percent > 100.0 {
                return Err(ScheduleError::Invalid(format!(
                    "step {} has {}% of traffic; percentages must be between 0 and 100",
                    i + 1,
                    step.percent
                )));
            }
            if i > 0 && step.percent <= previous {
                return Err(ScheduleError::Invalid(format!(
                    "step {} ({}%) does not increase on step {} ({}%); percentages must strictly increase",
                    i + 1,
                    step.percent,
                    i,
                    previous
                )));
            }
            previous = step.percent;
        }
        Ok(TrafficSchedule { steps })
    }

    /// Reads a schedule name; see the module documentation for the accepted forms.
    pub fn parse(name: &str) -> Result<Self, ScheduleError> {
        let input = name.trim();
        let unrecognized = |detail: String| ScheduleError::Unrecognized {
            input: name.to_string(),
            detail,
        };
        if input.is_empty() {
            return Err(unrecognized("the name is empty".into()));
        }
        if input.contains(':') || input.contains(',') || input.contains('%') {
            return parse_steps(input).map_err(unrecognized);
        }
        // Names are matched without regard to case: `canary10percent5minutes` is fine too.
        let lower = input.to_ascii_lowercase();
        let bare = lower
            .strip_prefix("codedeploydefault.lambda")
            .or_else(|| lower.strip_prefix("codedeploydefault."))
            .unwrap_or(&lower);
        if bare == "allatonce" {
            return Ok(Self::all_at_once());
        }
        if let Some(rest) = bare.strip_prefix("canary") {
            let (percent, interval) = parse_named(rest, "percent").map_err(unrecognized)?;
            return Self::canary(percent, interval).map_err(|e| unrecognized(e.to_string()));
        }
        if let Some(rest) = bare.strip_prefix("linear") {
            let (percent, interval) = parse_named(rest, "percentevery").map_err(unrecognized)?;
            return Self::linear(percent, interval).map_err(|e| unrecognized(e.to_string()));
        }
        Err(unrecognized("not a known configuration name".into()))
    }

    /// Reads CodeDeploy's `TrafficRoutingConfig` (`Type: TimeBasedCanary | TimeBasedLinear |
    /// AllAtOnce`, intervals in minutes). `value` may be the whole
    /// `AWS::CodeDeploy::DeploymentConfig` resource, its `Properties`, or the
    /// `TrafficRoutingConfig` itself; keys are matched case-insensitively so the API's camelCase
    /// form works too, and numbers may be JSON strings. A Lambda configuration without a
    /// `TrafficRoutingConfig` is `AllAtOnce`, as in CodeDeploy.
    pub fn from_codedeploy_config(value: &Value) -> Result<Self, ScheduleError> {
        let err = ScheduleError::CodeDeployConfig;
        let mut v = value;
        if let Some(props) = get_ci(v, "Properties") {
            v = props;
        }
        if let Some(routing) = get_ci(v, "TrafficRoutingConfig") {
            v = routing;
        } else if get_ci(v, "Type").is_none() {
            let platform = get_ci(v, "ComputePlatform").and_then(Value::as_str);
            if platform == Some("Lambda") {
                return Ok(Self::all_at_once());
            }
            return Err(err(
                "expected a TrafficRoutingConfig with a Type (TimeBasedCanary, TimeBasedLinear or AllAtOnce)".into(),
            ));
        }
        let kind = get_ci(v, "Type")
            .and_then(Value::as_str)
            .ok_or_else(|| err("TrafficRoutingConfig.Type is missing or not a string".into()))?;
        let read = |section: &str, percent_key: &str, interval_key: &str| -> Result<(f64, u64), ScheduleError> {
            let body = get_ci(v, section).ok_or_else(|| err(format!("Type is {kind} but {section} is missing")))?;
            let percent = get_ci(body, percent_key)
                .and_then(number)
                .ok_or_else(|| err(format!("{section}.{percent_key} is missing or not a number")))?;
            let minutes = get_ci(body, interval_key)
                .and_then(number)
                .ok_or_else(|| err(format!("{section}.{interval_key} is missing or not a number")))?;
            if minutes.is_nan() || minutes < 0.0 || minutes.fract() != 0.0 {
                return Err(err(format!(
                    "{section}.{interval_key} must be a whole number of minutes, not {minutes}"
                )));
            }
            Ok((percent, minutes as u64 * MINUTE_MS))
        };
        match kind {
            "AllAtOnce" => Ok(Self::all_at_once()),
            "TimeBasedCanary" => {
                let (p, i) = read("TimeBasedCanary", "CanaryPercentage", "CanaryInterval")?;
                Self::canary(p, i).map_err(|e| err(e.to_string()))
            }
            "TimeBasedLinear" => {
                let (p, i) = read("TimeBasedLinear", "LinearPercentage", "LinearInterval")?;
                Self::linear(p, i).map_err(|e| err(e.to_string()))
            }
            other => Err(err(format!(
                "unknown Type {other:?}; expected TimeBasedCanary, TimeBasedLinear or AllAtOnce"
            ))),
        }
    }

    /// The same schedule with every bake divided by `time_scale` (rounded to the millisecond),
    /// so that a demo can run a 30-minute canary in 30 seconds with `time_scale = 60`.
    /// A scale that is not a positive finite number is treated as 1.
    pub fn scaled(&self, time_scale: f64) -> Self {
        TrafficSchedule {
            steps: self
                .steps
                .iter()
                .map(|s| Step {
                    percent: s.percent,
                    bake_ms: scale_ms(s.bake_ms, time_scale),
                })
                .collect(),
        }
    }

    /// The sum of all bakes: how long the schedule takes if nothing waits on anything else.
    pub fn total_ms(&self) -> u64 {
        self.steps.iter().map(|s| s.bake_ms).fold(0u64, u64::saturating_add)
    }
}

/// Divides a nominal duration by the time scale (non-positive or non-finite scales count as 1).
pub fn scale_ms(ms: u64, time_scale: f64) -> u64 {
    if !(time_scale.is_finite() && time_scale > 0.0) {
        return ms;
    }
    let v = (ms as f64 / time_scale).round();
    if v >= u64::MAX as f64 {
        u64::MAX
    } else {
        v as u64
    }
}

fn check_share(percent: f64) -> Result<(), ScheduleError> {
    if percent.is_finite() && percent > 0.0 && percent < 100.0 {
        Ok(())
    } else {
        Err(ScheduleError::Invalid(format!(
            "the percentage must be more than 0 and less than 100, not {percent}"
        )))
    }
}

/// `10percent5minutes` (sep = "percent") or `10percentevery1minute` (sep = "percentevery"),
/// already lower-cased.
fn parse_named(rest: &str, sep: &str) -> Result<(f64, u64), String> {
    let (p, tail) = rest
        .split_once(sep)
        .ok_or_else(|| format!("expected `<number>{sep}` after the kind"))?;
    let percent: f64 = p
        .parse()
        .ok()
        .filter(|v: &f64| v.is_finite())
        .ok_or_else(|| format!("{p:?} is not a percentage"))?;
    let digits_end = tail.find(|c: char| !c.is_ascii_digit()).unwrap_or(tail.len());
    let (n, unit) = tail.split_at(digits_end);
    let n: u64 = n
        .parse()
        .map_err(|_| format!("expected a whole number before the unit, found {tail:?}"))?;
    let unit_ms = match unit {
        "minute" | "minutes" => MINUTE_MS,
        "hour" | "hours" => HOUR_MS,
        _ => return Err(format!("unknown unit {unit:?}; use Minute(s) or Hour(s)")),
    };
    Ok((percent, n.saturating_mul(unit_ms)))
}

/// `1%:5m,5%:5m,100%`
fn parse_steps(input: &str) -> Result<TrafficSchedule, String> {
    let mut steps = Vec::new();
    for (i, item) in input.split(',').enumerate() {
        let item = item.trim();
        let (p, d) = match item.split_once(':') {
            Some((p, d)) => (p.trim(), Some(d.trim())),
            None => (item, None),
        };
        let p = p.strip_suffix('%').unwrap_or(p).trim();
        let percent: f64 = p
            .parse()
            .ok()
            .filter(|v: &f64| v.is_finite())
            .ok_or_else(|| format!("step {} ({item:?}) does not start with a percentage like `5%`", i + 1))?;
        let bake_ms = match d {
            None => 0,
            Some(d) => parse_duration(d).map_err(|e| format!("step {} ({item:?}): {e}", i + 1))?,
        };
        steps.push(Step { percent, bake_ms });
    }
    if let Some(last) = steps.last() {
        if last.percent != 100.0 {
            return Err(format!(
                "the last step must be `100%`, found {}%; write `...,100%` to finish the shift",
                last.percent
            ));
        }
    }
    for (i, s) in steps.iter().enumerate() {
        if s.bake_ms == 0 && s.percent < 100.0 && i + 1 < steps.len() {
            return Err(format!(
                "step {} ({}%) has no bake time; write it as `{}%:5m`",
                i + 1,
                s.percent,
                s.percent
            ));
        }
    }
    TrafficSchedule::from_steps(steps).map_err(|e| match e {
        ScheduleError::Invalid(m) => m,
        other => other.to_string(),
    })
}

/// `90s`, `5m`, `1h`, also `1.5m`, in milliseconds.
pub fn parse_duration(d: &str) -> Result<u64, String> {
    let (n, unit_ms) = if let Some(n) = d.strip_suffix('s') {
        (n, 1_000.0)
    } else if let Some(n) = d.strip_suffix('m') {
        (n, MINUTE_MS as f64)
    } else if let Some(n) = d.strip_suffix('h') {
        (n, HOUR_MS as f64)
    } else {
        return Err(format!("duration {d:?} needs a unit: s, m or h (e.g. `5m`)"));
    };
    let v: f64 = n
        .trim()
        .parse()
        .ok()
        .filter(|v: &f64| v.is_finite() && *v >= 0.0)
        .ok_or_else(|| format!("duration {d:?} is not a non-negative number followed by s, m or h"))?;
    Ok((v * unit_ms).round() as u64)
}

/// Case-insensitive object lookup (CloudFormation uses PascalCase, the API camelCase).
pub(crate) fn get_ci<'a>(v: &'a Value, key: &str) -> Option<&'a Value> {
    let obj = v.as_object()?;
    obj.get(key)
        .or_else(|| obj.iter().find(|(k, _)| k.eq_ignore_ascii_case(key)).map(|(_, v)| v))
}

/// A JSON number, or a string holding one (CloudFormation often resolves numbers to strings).
pub(crate) fn number(v: &Value) -> Option<f64> {
    match v {
        Value::Number(n) => n.as_f64(),
        Value::String(s) => s.trim().parse::<f64>().ok().filter(|f| f.is_finite()),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn percents(s: &TrafficSchedule) -> Vec<f64> {
        s.steps.iter().map(|s| s.percent).collect()
    }

    #[test]
    fn predefined_names_with_and_without_prefix() {
        let a = TrafficSchedule::parse("CodeDeployDefault.LambdaCanary10Percent5Minutes").unwrap();
        let b = TrafficSchedule::parse("Canary10Percent5Minutes").unwrap();
        assert_eq!(a, b);
        assert_eq!(
            a.steps,
            vec![
                Step {
                    percent: 10.0,
                    bake_ms: 300_000
                },
                Step {
                    percent: 100.0,
                    bake_ms: 0
                }
            ]
        );
        for (name, minutes) in [
            ("Canary10Percent10Minutes", 10),
            ("Canary10Percent15Minutes", 15),
            ("Canary10Percent30Minutes", 30),
        ] {
            let s = TrafficSchedule::parse(&format!("CodeDeployDefault.Lambda{name}")).unwrap();
            assert_eq!(s.total_ms(), minutes * 60_000, "{name}");
        }
        assert_eq!(
            TrafficSchedule::parse("CodeDeployDefault.LambdaAllAtOnce").unwrap(),
            TrafficSchedule::all_at_once()
        );
    }

    #[test]
    fn linear_names() {
        let s = TrafficSchedule::parse("CodeDeployDefault.LambdaLinear10PercentEvery1Minute").unwrap();
        assert_eq!(
            percents(&s),
            vec![10.0, 20.0, 30.0, 40.0, 50.0, 60.0, 70.0, 80.0, 90.0, 100.0]
        );
        assert_eq!(s.total_ms(), 9 * 60_000);
        for (name, minutes) in [
            ("Linear10PercentEvery2Minutes", 2),
            ("Linear10PercentEvery3Minutes", 3),
            ("Linear10PercentEvery10Minutes", 10),
        ] {
            let s = TrafficSchedule::parse(name).unwrap();
            assert_eq!(s.total_ms(), 9 * minutes * 60_000, "{name}");
        }
        let s = TrafficSchedule::parse("Linear20PercentEvery5Minutes").unwrap();
        assert_eq!(percents(&s), vec![20.0, 40.0, 60.0, 80.0, 100.0]);
        let s = TrafficSchedule::parse("Linear30PercentEvery1Minute").unwrap();
        assert_eq!(percents(&s), vec![30.0, 60.0, 90.0, 100.0]);
    }

    #[test]
    fn custom_canary() {
        let s = TrafficSchedule::parse("Canary25Percent2Minutes").unwrap();
        assert_eq!(percents(&s), vec![25.0, 100.0]);
        assert_eq!(s.steps[0].bake_ms, 120_000);
        assert_eq!(
            TrafficSchedule::parse("codedeploydefault.lambdacanary25percent2minutes").unwrap(),
            s
        );
        let s = TrafficSchedule::parse("Canary5Percent1Hour").unwrap();
        assert_eq!(s.steps[0].bake_ms, 3_600_000);
    }

    #[test]
    fn multi_step_form() {
        let s = TrafficSchedule::parse("1%:5m,5%:5m,25%:10m,50%:10m,100%").unwrap();
        assert_eq!(percents(&s), vec![1.0, 5.0, 25.0, 50.0, 100.0]);
        assert_eq!(s.total_ms(), 30 * 60_000);
        let s = TrafficSchedule::parse(" 10% : 30s , 50%:1h, 100% ").unwrap();
        assert_eq!(s.steps[0].bake_ms, 30_000);
        assert_eq!(s.steps[1].bake_ms, 3_600_000);
        assert_eq!(TrafficSchedule::parse("100%").unwrap(), TrafficSchedule::all_at_once());
    }

    #[test]
    fn errors_say_what_is_accepted() {
        for bad in [
            "",
            "Canary",
            "Canary10Percent",
            "Canary100Percent5Minutes",
            "Canary0Percent5Minutes",
            "Linear10PercentEvery1Fortnight",
            "Blue/Green",
            "10%:5m,50%:5m",
            "50%:5m,10%:5m,100%",
            "10%:5,100%",
            "10%,100%",
            "abc%:5m,100%",
            "100%:5m",
        ] {
            let e = TrafficSchedule::parse(bad).unwrap_err().to_string();
            assert!(e.contains("accepted forms"), "{bad}: {e}");
        }
        let e = TrafficSchedule::parse("10%:5m,50%:5m").unwrap_err().to_string();
        assert!(e.contains("100%"), "{e}");
    }

    #[test]
    fn codedeploy_config_shapes() {
        let canary = json!({"Type": "AWS::CodeDeploy::DeploymentConfig", "Properties": {
            "ComputePlatform": "Lambda",
            "TrafficRoutingConfig": {"Type": "TimeBasedCanary",
                "TimeBasedCanary": {"CanaryPercentage": 15, "CanaryInterval": "7"}}}});
        let s = TrafficSchedule::from_codedeploy_config(&canary).unwrap();
        assert_eq!(percents(&s), vec![15.0, 100.0]);
        assert_eq!(s.steps[0].bake_ms, 7 * 60_000);

        let linear = json!({"type": "TimeBasedLinear",
            "timeBasedLinear": {"linearPercentage": 25, "linearInterval": 2}});
        let s = TrafficSchedule::from_codedeploy_config(&linear).unwrap();
        assert_eq!(percents(&s), vec![25.0, 50.0, 75.0, 100.0]);
        assert_eq!(s.total_ms(), 6 * 60_000);

        let all = json!({"TrafficRoutingConfig": {"Type": "AllAtOnce"}});
        assert_eq!(
            TrafficSchedule::from_codedeploy_config(&all).unwrap(),
            TrafficSchedule::all_at_once()
        );
        let none = json!({"ComputePlatform": "Lambda"});
        assert_eq!(
            TrafficSchedule::from_codedeploy_config(&none).unwrap(),
            TrafficSchedule::all_at_once()
        );

        for bad in [
            json!({"Type": "TimeBasedCanary"}),
            json!({"Type": "TimeBasedCanary", "TimeBasedCanary": {"CanaryPercentage": 10}}),
            json!({"Type": "TimeBasedCanary", "TimeBasedCanary": {"CanaryPercentage": 100, "CanaryInterval": 5}}),
            json!({"Type": "BlueGreen"}),
            json!({"ComputePlatform": "Server"}),
            json!("Canary10Percent5Minutes"),
        ] {
            assert!(TrafficSchedule::from_codedeploy_config(&bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn scaling_divides_bakes() {
        let s = TrafficSchedule::parse("Canary10Percent30Minutes").unwrap();
        let fast = s.scaled(60.0);
        assert_eq!(fast.steps[0].bake_ms, 30_000);
        assert_eq!(fast.total_ms(), 30_000);
        assert_eq!(s.scaled(0.0), s);
        assert_eq!(s.scaled(f64::NAN), s);
        assert_eq!(s.scaled(0.5).total_ms(), 60 * 60_000);
    }

    #[test]
    fn from_steps_rejects_decreasing() {
        assert!(TrafficSchedule::from_steps(vec![]).is_err());
        assert!(TrafficSchedule::from_steps(vec![
            Step {
                percent: 50.0,
                bake_ms: 1
            },
            Step {
                percent: 50.0,
                bake_ms: 1
            },
            Step {
                percent: 100.0,
                bake_ms: 0
            },
        ])
        .is_err());
    }
}
