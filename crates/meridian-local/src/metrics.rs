//! Invocation metrics per region, function and qualifier (a version or an alias; `""` stands for
//! the whole function), as CloudWatch keeps them for Lambda: Invocations, Errors, Throttles,
//! Duration percentiles and ConcurrentExecutions. They are recorded in one-second buckets (high
//! resolution, so that a deployment run 60 times faster still has a datapoint per scaled minute)
//! and read back aggregated into any period: minutes for `lambda metrics`, the alarm's period for
//! alarms and the canary judge. Recording is in memory; [`Recorder::drain`] hands buckets to the
//! store.

use meridian_core::clock::EpochMillis;
use serde::Serialize;
use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;

/// Duration histogram with buckets 2% wide: percentiles are exact to within 2%, and buckets of
/// different processes and minutes merge by adding counts.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Histogram {
    counts: BTreeMap<u32, u64>,
}

const GROWTH: f64 = 1.02;

impl Histogram {
    fn index(micros: f64) -> u32 {
        if micros <= 1.0 {
            0
        } else {
            (micros.ln() / GROWTH.ln()).ceil() as u32
        }
    }

    pub fn record_micros(&mut self, micros: u64) {
        *self.counts.entry(Self::index(micros as f64)).or_default() += 1;
    }

    pub fn merge(&mut self, other: &Histogram) {
        for (k, v) in &other.counts {
            *self.counts.entry(*k).or_default() += v;
        }
    }

    pub fn count(&self) -> u64 {
        self.counts.values().sum()
    }

    /// The `q` quantile (0..=1) in milliseconds: the upper bound of the bucket holding that rank.
    pub fn quantile_ms(&self, q: f64) -> Option<f64> {
        let total = self.count();
        if total == 0 {
            return None;
        }
        let rank = ((q * total as f64).ceil() as u64).clamp(1, total);
        let mut seen = 0;
        for (k, v) in &self.counts {
            seen += v;
            if seen >= rank {
                return Some(GROWTH.powi(*k as i32) / 1000.0);
            }
        }
        None
    }

    /// The mean in milliseconds, each sample counted at its bucket's upper bound (within 2%).
    pub fn mean_ms(&self) -> Option<f64> {
        let total = self.count();
        if total == 0 {
            return None;
        }
        let sum: f64 = self
            .counts
            .iter()
            .map(|(k, v)| GROWTH.powi(*k as i32) / 1000.0 * *v as f64)
            .sum();
        Some(sum / total as f64)
    }

    pub fn to_json(&self) -> String {
        serde_json::to_string(&self.counts).expect("histogram serializes")
    }

    /// A histogram from stored JSON; unreadable data counts as empty rather than failing a query.
    pub fn from_json(s: &str) -> Self {
        Histogram {
            counts: serde_json::from_str(s).unwrap_or_default(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct MetricKey {
    pub region: String,
    pub function: String,
    pub qualifier: String,
    /// Start of the one-second bucket, in epoch milliseconds.
    pub second: i64,
}

#[derive(Debug, Clone, Default)]
pub struct PendingBucket {
    pub invocations: u64,
    pub errors: u64,
    pub throttles: u64,
    pub max_concurrency: u32,
    pub durations: Histogram,
}

/// One minute of one qualifier's metrics, as alarms and the canary judge read them.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct MinuteBucket {
    /// Start of the minute, epoch milliseconds.
    pub minute: EpochMillis,
    pub invocations: u64,
    pub errors: u64,
    pub throttles: u64,
    /// The most executions that ran at once during the minute.
    pub concurrent_executions: u32,
    pub duration_p50_ms: Option<f64>,
    pub duration_p90_ms: Option<f64>,
    pub duration_p99_ms: Option<f64>,
}

impl MinuteBucket {
    pub(crate) fn from_pending(minute: i64, b: &PendingBucket) -> Self {
        MinuteBucket {
            minute,
            invocations: b.invocations,
            errors: b.errors,
            throttles: b.throttles,
            concurrent_executions: b.max_concurrency,
            duration_p50_ms: b.durations.quantile_ms(0.50),
            duration_p90_ms: b.durations.quantile_ms(0.90),
            duration_p99_ms: b.durations.quantile_ms(0.99),
        }
    }
}

pub fn minute_of(t: EpochMillis) -> i64 {
    t - t.rem_euclid(60_000)
}

/// Start of the one-second bucket holding `t`.
pub fn second_of(t: EpochMillis) -> i64 {
    t - t.rem_euclid(1000)
}

impl PendingBucket {
    /// Adds another bucket's counts (histograms merge exactly).
    pub fn add(&mut self, b: &PendingBucket) {
        self.invocations += b.invocations;
        self.errors += b.errors;
        self.throttles += b.throttles;
        self.max_concurrency = self.max_concurrency.max(b.max_concurrency);
        self.durations.merge(&b.durations);
    }
}

/// Groups one-second buckets (sorted by start) into periods of `period_ms` aligned on `origin`.
pub fn aggregate(seconds: &[(i64, PendingBucket)], origin: i64, period_ms: i64) -> Vec<(i64, PendingBucket)> {
    let period_ms = period_ms.max(1000);
    let mut out: Vec<(i64, PendingBucket)> = Vec::new();
    for (t, b) in seconds {
        let start = origin + (t - origin).div_euclid(period_ms) * period_ms;
        match out.last_mut() {
            Some((s, acc)) if *s == start => acc.add(b),
            _ => out.push((start, b.clone())),
        }
    }
    out
}

/// What happened to one invocation, as metrics see it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Success,
    Error,
    Throttled,
}

#[derive(Default)]
pub struct Recorder {
    pending: Mutex<HashMap<MetricKey, PendingBucket>>,
}

impl Recorder {
    /// Records one invocation under the function as a whole, the executed version and, when the
    /// call named one, the alias.
    #[allow(clippy::too_many_arguments)]
    pub fn record(
        &self,
        at: EpochMillis,
        region: &str,
        function: &str,
        version: &str,
        alias: Option<&str>,
        outcome: Outcome,
        duration_micros: Option<u64>,
        concurrency: u32,
    ) {
        let second = second_of(at);
        let mut pending = self.pending.lock().unwrap_or_else(|e| e.into_inner());
        for qualifier in ["", version].into_iter().chain(alias) {
            let b = pending
                .entry(MetricKey {
                    region: region.to_string(),
                    function: function.to_string(),
                    qualifier: qualifier.to_string(),
                    second,
                })
                .or_default();
            match outcome {
                Outcome::Throttled => b.throttles += 1,
                Outcome::Success | Outcome::Error => {
                    b.invocations += 1;
                    if outcome == Outcome::Error {
                        b.errors += 1;
                    }
                }
            }
            if let Some(d) = duration_micros {
                b.durations.record_micros(d);
            }
            b.max_concurrency = b.max_concurrency.max(concurrency);
        }
    }

    pub fn drain(&self) -> Vec<(MetricKey, PendingBucket)> {
        let mut pending = self.pending.lock().unwrap_or_else(|e| e.into_inner());
        pending.drain().collect()
    }

    /// Puts buckets back after a failed write, so that nothing recorded is lost.
    pub fn restore(&self, buckets: Vec<(MetricKey, PendingBucket)>) {
        let mut pending = self.pending.lock().unwrap_or_else(|e| e.into_inner());
        for (k, b) in buckets {
            pending.entry(k).or_default().add(&b);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_are_within_two_percent() {
        let mut h = Histogram::default();
        for ms in 1..=1000u64 {
            h.record_micros(ms * 1000);
        }
        for (q, want) in [(0.5, 500.0), (0.9, 900.0), (0.99, 990.0)] {
            let got = h.quantile_ms(q).unwrap();
            assert!((got - want).abs() / want < 0.021, "q{q}: {got} vs {want}");
        }
        let back = Histogram::from_json(&h.to_json());
        assert_eq!(back, h);
        assert_eq!(Histogram::default().quantile_ms(0.5), None);
    }

    #[test]
    fn records_function_version_and_alias_dimensions() {
        let r = Recorder::default();
        r.record(
            61_000,
            "us-east-1",
            "f",
            "2",
            Some("live"),
            Outcome::Error,
            Some(5000),
            3,
        );
        r.record(
            119_999,
            "us-east-1",
            "f",
            "1",
            Some("live"),
            Outcome::Throttled,
            None,
            1,
        );
        let mut all = r.drain();
        all.sort_by(|a, b| a.0.qualifier.cmp(&b.0.qualifier));
        let names: Vec<_> = all.iter().map(|(k, _)| k.qualifier.as_str()).collect();
        // The function and the alias got both calls, in two one-second buckets; each version one.
        assert_eq!(names, ["", "", "1", "2", "live", "live"]);
        let live: Vec<_> = all.iter().filter(|(k, _)| k.qualifier == "live").cloned().collect();
        let mut secs: Vec<_> = live.iter().map(|(k, b)| (k.second, b.clone())).collect();
        secs.sort_by_key(|x| x.0);
        assert_eq!(secs.iter().map(|x| x.0).collect::<Vec<_>>(), [61_000, 119_000]);
        let minute = aggregate(&secs, 0, 60_000);
        assert_eq!(minute.len(), 1);
        let (start, m) = &minute[0];
        assert_eq!(
            (*start, m.invocations, m.errors, m.throttles, m.max_concurrency),
            (60_000, 1, 1, 1, 3)
        );
        assert_eq!(
            aggregate(&secs, 0, 10_000).iter().map(|x| x.0).collect::<Vec<_>>(),
            [60_000, 110_000]
        );
        assert!(r.drain().is_empty());
    }
}
