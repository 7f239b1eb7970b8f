//! The canary judge: is the new version (canary) worse than the old one (baseline)?
//!
//! [`judge`] compares two [`Sample`]s taken over the same time span and answers
//! [`Verdict::Pass`], [`Verdict::Fail`] or [`Verdict::NeedMoreData`]. Low traffic must neither
//! pass a bad release nor fail a good one, so every decision is a confidence bound, and when the
//! bounds straddle the tolerance the judge says so instead of guessing.
//!
//! # Error rate
//!
//! With `x` errors in `n` invocations, the Wilson score interval for the error rate `p = x/n`
//! at the normal quantile `z` (one-sided: `z = Φ⁻¹(confidence)`, 1.645 at 95%) is
//!
//! ```text
//! centre = (p + z²/2n) / (1 + z²/n)
//! half   = z / (1 + z²/n) · sqrt(p(1-p)/n + z²/4n²)
//! [l, u] = [centre - half, centre + half]
//! ```
//!
//! Unlike the textbook `p ± z·sqrt(p(1-p)/n)` it behaves at `p = 0` (0 errors in 60 calls still
//! leaves `u ≈ 4.3%`), which is exactly the low-traffic case. For the difference
//! `d = p_canary - p_baseline` the judge uses Newcombe's hybrid score interval (Newcombe 1998,
//! method 10), which combines the two Wilson intervals:
//!
//! ```text
//! L = d - sqrt((p_c - l_c)² + (u_b - p_b)²)
//! U = d + sqrt((u_c - p_c)² + (p_b - l_b)²)
//! ```
//!
//! With tolerance `δ = max_error_rate_increase`:
//!
//! - `L > δ`: the canary's error rate exceeds the baseline's by more than `δ` with the given
//!   confidence → **Fail**. (10% against 0% over 1,000 calls each: `L ≈ 0.085 > 0.01`.)
//! - `U ≤ δ`: with the given confidence the increase is at most `δ` → **Pass**.
//! - otherwise the data cannot tell → **NeedMoreData**, with an estimate of how many
//!   invocations per side would decide at the rates seen so far. (1 error in 60 against 0 in 60:
//!   `L ≈ -0.028`, `U ≈ 0.071`, so neither Fail nor Pass.)
//!
//! Both one-sided decisions are at level `confidence`, so a release as good as the old one is
//! failed with probability at most `1 - confidence` (less in practice, the interval being
//! conservative near 0), and a release worse by more than `δ` passes with at most that
//! probability. The price is traffic: proving "no worse than +1%" with 0 errors on both sides
//! takes about `z²/δ ≈ 270` invocations per side at 95%, more when the baseline itself has errors.
//!
//! **First release** (baseline with no invocations at all): the canary alone is held to
//! `max_error_rate_without_baseline` with its own Wilson interval: Fail when `l_c` exceeds the
//! bound, Pass when `u_c` is within it, otherwise NeedMoreData.
//!
//! # Latency
//!
//! A p99 computed from fewer than 100 invocations is just the maximum, so latency is only judged
//! when both sides have at least [`P99_MIN_INVOCATIONS`]; below that the latency check is skipped
//! (and the verdict's reasons say so) while the error rate is still judged. The canary fails when
//! `p99_c / p99_b > max_p99_ratio` *and* the absolute increase exceeds `min_p99_increase_ms`
//! (default 25 ms), the noise floor: on a loaded machine a handful of slow invocations moves a
//! small p99 by several milliseconds (11.7 ms against 6.5 ms for two identical versions), which
//! is a ratio, not a regression. A side without a p99 skips the latency check.
//!
//! # Minimum sample
//!
//! Below `min_invocations` on the canary, or on a baseline that has some traffic, the verdict is
//! NeedMoreData whatever the numbers: alarms, not the judge, catch a release that fails
//! outright.

use serde::{Deserialize, Serialize};

/// Invocations below which a p99 is just the maximum.
pub const P99_MIN_INVOCATIONS: u64 = 100;

/// How strict the judge is. [`JudgeConfig::default`] gives the documented defaults.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct JudgeConfig {
    /// Invocations needed on each side before any decision (default 50).
    pub min_invocations: u64,
    /// Tolerated absolute increase of the error rate, e.g. 0.01 = one point (default 0.01).
    pub max_error_rate_increase: f64,
    /// Tolerated ratio of the canary's p99 to the baseline's (default 1.5).
    pub max_p99_ratio: f64,
    /// The noise floor: a p99 increase of at most this many milliseconds is never a regression,
    /// whatever the ratio (default 25).
    pub min_p99_increase_ms: f64,
    /// Error-rate bound for a canary without a baseline (first release, default 0.05).
    pub max_error_rate_without_baseline: f64,
    /// One-sided confidence of every decision, in `0.5..1` (default 0.95).
    pub confidence: f64,
}

impl Default for JudgeConfig {
    fn default() -> Self {
        JudgeConfig {
            min_invocations: 50,
            max_error_rate_increase: 0.01,
            max_p99_ratio: 1.5,
            min_p99_increase_ms: 25.0,
            max_error_rate_without_baseline: 0.05,
            confidence: 0.95,
        }
    }
}

/// What one side served over the judged span.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
pub struct Sample {
    /// Invocations served.
    pub invocations: u64,
    /// Of which ended in an error (values above `invocations` are clamped).
    pub errors: u64,
    /// 99th percentile duration, when known.
    pub p99_ms: Option<f64>,
}

/// The judge's answer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Verdict {
    /// The canary is no worse than the baseline within the tolerances.
    Pass,
    /// The canary is worse; each reason is one failed check with its numbers.
    Fail {
        /// Human-readable reasons.
        reasons: Vec<String>,
    },
    /// The data cannot decide yet.
    NeedMoreData {
        /// What is missing, with the numbers.
        reason: String,
    },
}

/// A Wilson score interval `[lower, upper]` for `errors / n` at quantile `z`.
pub fn wilson_interval(errors: u64, n: u64, z: f64) -> (f64, f64) {
    if n == 0 {
        return (0.0, 1.0);
    }
    let n_f = n as f64;
    let p = errors.min(n) as f64 / n_f;
    let z2 = z * z;
    let denom = 1.0 + z2 / n_f;
    let centre = (p + z2 / (2.0 * n_f)) / denom;
    let half = z / denom * (p * (1.0 - p) / n_f + z2 / (4.0 * n_f * n_f)).sqrt();
    ((centre - half).max(0.0), (centre + half).min(1.0))
}

/// Newcombe's hybrid score interval `[L, U]` for `p_canary - p_baseline`.
pub fn difference_interval(baseline: (u64, u64), canary: (u64, u64), z: f64) -> (f64, f64) {
    let rate = |(x, n): (u64, u64)| if n == 0 { 0.0 } else { x.min(n) as f64 / n as f64 };
    let (pb, pc) = (rate(baseline), rate(canary));
    let (lb, ub) = wilson_interval(baseline.0, baseline.1, z);
    let (lc, uc) = wilson_interval(canary.0, canary.1, z);
    let d = pc - pb;
    let lower = d - ((pc - lc).powi(2) + (ub - pb).powi(2)).sqrt();
    let upper = d + ((uc - pc).powi(2) + (pb - lb).powi(2)).sqrt();
    (lower, upper)
}

/// The standard normal CDF (Abramowitz & Stegun 26.2.17, absolute error below 7.5e-8).
fn normal_cdf(x: f64) -> f64 {
    let t = 1.0 / (1.0 + 0.231_641_9 * x.abs());
    let poly =
        t * (0.319_381_530 + t * (-0.356_563_782 + t * (1.781_477_937 + t * (-1.821_255_978 + t * 1.330_274_429))));
    let tail = (-x * x / 2.0).exp() / (2.0 * std::f64::consts::PI).sqrt() * poly;
    if x >= 0.0 {
        1.0 - tail
    } else {
        tail
    }
}

/// The one-sided normal quantile for `confidence` (clamped to `0.5..=0.999999`), by bisection.
pub fn z_for_confidence(confidence: f64) -> f64 {
    let c = if confidence.is_finite() {
        confidence.clamp(0.5, 0.999_999)
    } else {
        0.95
    };
    let (mut lo, mut hi) = (0.0f64, 6.0f64);
    for _ in 0..100 {
        let mid = (lo + hi) / 2.0;
        if normal_cdf(mid) < c {
            lo = mid;
        } else {
            hi = mid;
        }
    }
    (lo + hi) / 2.0
}

fn pct(x: f64) -> String {
    format!("{:.2}%", x * 100.0)
}

enum Decision {
    Pass,
    Fail(String),
    Undecided(String),
}

/// A verdict with the checks that were not made and why (the latency check on a small sample).
#[derive(Debug, Clone, PartialEq)]
pub struct Judgement {
    pub verdict: Verdict,
    /// Checks skipped, in words; also appended to the verdict's reasons when it has some.
    pub notes: Vec<String>,
}

/// Judges `canary` against `baseline`; see the module documentation for the maths. A skipped
/// check is said in the reasons of a Fail or NeedMoreData verdict; [`judge_with_notes`] gives it
/// for a Pass too.
pub fn judge(config: &JudgeConfig, baseline: &Sample, canary: &Sample) -> Verdict {
    judge_with_notes(config, baseline, canary).verdict
}

/// [`judge`], with the checks it skipped.
pub fn judge_with_notes(config: &JudgeConfig, baseline: &Sample, canary: &Sample) -> Judgement {
    let mut notes = Vec::new();
    let mut verdict = judge_inner(config, baseline, canary, &mut notes);
    match &mut verdict {
        Verdict::Fail { reasons } => reasons.extend(notes.iter().cloned()),
        Verdict::NeedMoreData { reason } => {
            for n in &notes {
                reason.push_str("; ");
                reason.push_str(n);
            }
        }
        Verdict::Pass => {}
    }
    Judgement { verdict, notes }
}

fn judge_inner(config: &JudgeConfig, baseline: &Sample, canary: &Sample, notes: &mut Vec<String>) -> Verdict {
    let z = z_for_confidence(config.confidence);
    let min = config.min_invocations;
    let alone = baseline.invocations == 0;
    if canary.invocations < min.max(1) {
        return Verdict::NeedMoreData {
            reason: format!(
                "the new version served {} invocations; at least {} are needed to judge it",
                canary.invocations,
                min.max(1)
            ),
        };
    }
    if !alone && baseline.invocations < min {
        return Verdict::NeedMoreData {
            reason: format!(
                "the old version served {} invocations; at least {min} are needed to compare with it",
                baseline.invocations
            ),
        };
    }

    let c = (canary.errors.min(canary.invocations), canary.invocations);
    let b = (baseline.errors.min(baseline.invocations), baseline.invocations);
    let conf = format!("{:.0}%", config.confidence.clamp(0.5, 0.999_999) * 100.0);
    let rate_c = c.0 as f64 / c.1 as f64;

    let errors = if alone {
        let bound = config.max_error_rate_without_baseline;
        let (l, u) = wilson_interval(c.0, c.1, z);
        if l > bound {
            Decision::Fail(format!(
                "error rate {} ({} of {}) exceeds the {} allowed without a baseline (lower {conf} bound {})",
                pct(rate_c),
                c.0,
                c.1,
                pct(bound),
                pct(l)
            ))
        } else if u <= bound {
            Decision::Pass
        } else {
            let need = invocations_to_decide(
                |k| {
                    let (l, u) = wilson_interval(scale(c.0, k), scale(c.1, k), z);
                    l > bound || u <= bound
                },
                c.1,
            );
            Decision::Undecided(format!(
                "error rate {} ({} of {}) with no baseline: the {conf} interval [{}, {}] straddles the {} bound{}",
                pct(rate_c),
                c.0,
                c.1,
                pct(l),
                pct(u),
                pct(bound),
                need
            ))
        }
    } else {
        let delta = config.max_error_rate_increase;
        let (l, u) = difference_interval(b, c, z);
        let rate_b = b.0 as f64 / b.1 as f64;
        if l > delta {
            Decision::Fail(format!(
                "error rate {} ({} of {}) against {} ({} of {}) on the old version: the increase is above {} with {conf} confidence (lower bound {})",
                pct(rate_c),
                c.0,
                c.1,
                pct(rate_b),
                b.0,
                b.1,
                pct(delta),
                pct(l)
            ))
        } else if u <= delta {
            Decision::Pass
        } else {
            let need = invocations_to_decide(
                |k| {
                    let (l, u) = difference_interval((scale(b.0, k), scale(b.1, k)), (scale(c.0, k), scale(c.1, k)), z);
                    l > delta || u <= delta
                },
                b.1.min(c.1),
            );
            Decision::Undecided(format!(
                "error rate {} ({} of {}) against {} ({} of {}): the {conf} interval of the increase [{}, {}] straddles the tolerated {}{}",
                pct(rate_c),
                c.0,
                c.1,
                pct(rate_b),
                b.0,
                b.1,
                pct(l),
                pct(u),
                pct(delta),
                need
            ))
        }
    };

    let latency = match (alone, baseline.p99_ms, canary.p99_ms) {
        (false, Some(_), Some(_)) if b.1 < P99_MIN_INVOCATIONS || c.1 < P99_MIN_INVOCATIONS => {
            notes.push(format!(
                "latency not judged: {} and {} invocations (old, new), and a p99 of fewer than {P99_MIN_INVOCATIONS} invocations is only the maximum",
                b.1, c.1
            ));
            Decision::Pass
        }
        (false, Some(pb), Some(pc)) if pb.is_finite() && pc.is_finite() => {
            let ratio_exceeded = if pb > 0.0 {
                pc / pb > config.max_p99_ratio
            } else {
                pc > 0.0
            };
            let floor = if config.min_p99_increase_ms.is_finite() {
                config.min_p99_increase_ms.max(0.0)
            } else {
                JudgeConfig::default().min_p99_increase_ms
            };
            if ratio_exceeded && pc - pb > floor {
                Decision::Fail(format!(
                    "p99 {pc:.1} ms against {pb:.1} ms on the old version is more than {}x and {:.1} ms slower (noise floor {floor} ms)",
                    config.max_p99_ratio,
                    pc - pb
                ))
            } else {
                Decision::Pass
            }
        }
        _ => Decision::Pass,
    };

    let mut fails = Vec::new();
    let mut undecided = Vec::new();
    for d in [errors, latency] {
        match d {
            Decision::Pass => {}
            Decision::Fail(r) => fails.push(r),
            Decision::Undecided(r) => undecided.push(r),
        }
    }
    if !fails.is_empty() {
        Verdict::Fail { reasons: fails }
    } else if !undecided.is_empty() {
        Verdict::NeedMoreData {
            reason: undecided.join("; "),
        }
    } else {
        Verdict::Pass
    }
}

fn scale(x: u64, k: f64) -> u64 {
    (x as f64 * k).round() as u64
}

/// Smallest multiple of the current sample (at the same rates) for which `decides` holds,
/// phrased for a reason string.
fn invocations_to_decide(decides: impl Fn(f64) -> bool, n: u64) -> String {
    let mut hi = 2.0f64;
    while !decides(hi) {
        hi *= 2.0;
        if hi > 1e6 {
            return "; the observed increase is at the tolerance, more data may never decide".into();
        }
    }
    let mut lo = hi / 2.0;
    for _ in 0..30 {
        let mid = (lo + hi) / 2.0;
        if decides(mid) {
            hi = mid;
        } else {
            lo = mid;
        }
    }
    format!(
        "; about {} invocations per side would decide at these rates",
        (n as f64 * hi).ceil() as u64
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(invocations: u64, errors: u64) -> Sample {
        Sample {
            invocations,
            errors,
            p99_ms: None,
        }
    }

    #[test]
    fn quantiles() {
        assert!((z_for_confidence(0.95) - 1.6449).abs() < 1e-3);
        assert!((z_for_confidence(0.99) - 2.3263).abs() < 1e-3);
        assert!((z_for_confidence(0.5)).abs() < 1e-6);
        assert!((z_for_confidence(f64::NAN) - 1.6449).abs() < 1e-3);
    }

    #[test]
    fn wilson_at_zero_is_not_degenerate() {
        let (l, u) = wilson_interval(0, 60, 1.645);
        assert_eq!(l, 0.0);
        assert!((u - 0.0432).abs() < 1e-3, "{u}");
        let (l, u) = wilson_interval(100, 1000, 1.645);
        assert!(l > 0.08 && u < 0.12, "{l} {u}");
    }

    #[test]
    fn one_error_in_sixty_is_not_a_fail() {
        let v = judge(&JudgeConfig::default(), &s(60, 0), &s(60, 1));
        assert!(matches!(v, Verdict::NeedMoreData { .. }), "{v:?}");
    }

    #[test]
    fn ten_percent_errors_with_enough_calls_fails() {
        let v = judge(&JudgeConfig::default(), &s(1000, 0), &s(1000, 100));
        let Verdict::Fail { reasons } = v else { panic!("{v:?}") };
        assert!(reasons[0].contains("10.00%"), "{reasons:?}");
        // Already at 200 calls a side.
        assert!(matches!(
            judge(&JudgeConfig::default(), &s(200, 0), &s(200, 20)),
            Verdict::Fail { .. }
        ));
    }

    #[test]
    fn clean_release_with_enough_calls_passes() {
        assert_eq!(judge(&JudgeConfig::default(), &s(1000, 0), &s(1000, 0)), Verdict::Pass);
        assert_eq!(
            judge(&JudgeConfig::default(), &s(5000, 50), &s(5000, 52)),
            Verdict::Pass
        );
        // Not enough to prove "no worse than +1%": says how much more is needed.
        let v = judge(&JudgeConfig::default(), &s(100, 0), &s(100, 0));
        let Verdict::NeedMoreData { reason } = v else {
            panic!("{v:?}")
        };
        assert!(reason.contains("invocations per side"), "{reason}");
    }

    #[test]
    fn below_the_minimum_sample() {
        let v = judge(&JudgeConfig::default(), &s(1000, 0), &s(49, 40));
        assert!(matches!(v, Verdict::NeedMoreData { .. }), "{v:?}");
        let v = judge(&JudgeConfig::default(), &s(10, 0), &s(1000, 0));
        assert!(matches!(v, Verdict::NeedMoreData { .. }), "{v:?}");
    }

    #[test]
    fn first_release_is_judged_alone() {
        let cfg = JudgeConfig::default();
        assert_eq!(judge(&cfg, &s(0, 0), &s(60, 0)), Verdict::Pass);
        assert!(matches!(judge(&cfg, &s(0, 0), &s(200, 40)), Verdict::Fail { .. }));
        assert!(matches!(judge(&cfg, &s(0, 0), &s(60, 3)), Verdict::NeedMoreData { .. }));
    }

    #[test]
    fn latency_regression() {
        let cfg = JudgeConfig::default();
        let base = Sample {
            invocations: 1000,
            errors: 0,
            p99_ms: Some(100.0),
        };
        let slow = Sample {
            p99_ms: Some(200.0),
            ..base
        };
        assert!(matches!(judge(&cfg, &base, &slow), Verdict::Fail { .. }));
        let fine = Sample {
            p99_ms: Some(140.0),
            ..base
        };
        assert_eq!(judge(&cfg, &base, &fine), Verdict::Pass);
        // Tiny absolute numbers are noise.
        let b = Sample {
            p99_ms: Some(1.0),
            ..base
        };
        let c = Sample {
            p99_ms: Some(3.0),
            ..base
        };
        assert_eq!(judge(&cfg, &b, &c), Verdict::Pass);
        // Fewer than 100 invocations: a p99 excess is not enough to fail.
        let small_b = Sample {
            invocations: 60,
            errors: 0,
            p99_ms: Some(100.0),
        };
        let small_c = Sample {
            p99_ms: Some(300.0),
            ..small_b
        };
        assert!(matches!(judge(&cfg, &small_b, &small_c), Verdict::NeedMoreData { .. }));
    }

    /// A tiny deterministic generator (Knuth's MMIX LCG), uniform in `0..1`.
    struct Lcg(u64);

    impl Lcg {
        fn next(&mut self) -> f64 {
            self.0 = self
                .0
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            (self.0 >> 11) as f64 / (1u64 << 53) as f64
        }
    }

    /// `n` durations of a ~6 ms function on a loaded machine: 4-8 ms, 3% of them 2x to 4x
    /// slower (another build took the CPU), plus `shift` ms.
    fn durations(rng: &mut Lcg, n: usize, shift: f64) -> Vec<f64> {
        (0..n)
            .map(|_| {
                let mut d = 4.0 + 4.0 * rng.next();
                if rng.next() < 0.03 {
                    d *= 2.0 + 2.0 * rng.next();
                }
                d + shift
            })
            .collect()
    }

    /// Nearest-rank p99.
    fn p99(mut d: Vec<f64>) -> f64 {
        d.sort_by(|a, b| a.total_cmp(b));
        d[((d.len() as f64 * 0.99).ceil() as usize).max(1) - 1]
    }

    fn sample(rng: &mut Lcg, n: usize, shift: f64) -> Sample {
        Sample {
            invocations: n as u64,
            errors: 0,
            p99_ms: Some(p99(durations(rng, n, shift))),
        }
    }

    #[test]
    fn identical_versions_with_jitter_never_fail_on_latency() {
        let mut rng = Lcg(42);
        let cfg = JudgeConfig::default();
        let old_floor = JudgeConfig {
            min_p99_increase_ms: 5.0,
            ..cfg
        };
        let (mut fails, mut fails_old_floor) = (0, 0);
        for trial in 0..1000 {
            let n = 100 + trial % 400;
            let (b, c) = (sample(&mut rng, n, 0.0), sample(&mut rng, n, 0.0));
            if let Verdict::Fail { reasons } = judge(&cfg, &b, &c) {
                fails += 1;
                eprintln!("trial {trial}: {reasons:?}");
            }
            if matches!(judge(&old_floor, &b, &c), Verdict::Fail { .. }) {
                fails_old_floor += 1;
            }
        }
        assert_eq!(fails, 0, "an identical release was rolled back");
        // the jitter is real: a 5 ms floor fails identical releases
        assert!(fails_old_floor > 10, "{fails_old_floor}");
    }

    #[test]
    fn a_slower_canary_still_fails() {
        let mut rng = Lcg(7);
        let cfg = JudgeConfig::default();
        for trial in 0..1000 {
            let n = 100 + trial % 400;
            let (b, c) = (sample(&mut rng, n, 0.0), sample(&mut rng, n, 50.0));
            let v = judge(&cfg, &b, &c);
            let Verdict::Fail { reasons } = &v else {
                panic!("trial {trial}: {b:?} {c:?}: {v:?}")
            };
            assert!(reasons[0].starts_with("p99 "), "{reasons:?}");
            assert!(reasons[0].contains("(noise floor 25 ms)"), "{reasons:?}");
        }
    }

    #[test]
    fn latency_on_a_small_sample_is_skipped_and_said() {
        let cfg = JudgeConfig {
            max_error_rate_increase: 0.1,
            ..JudgeConfig::default()
        };
        let b = Sample {
            invocations: 80,
            errors: 0,
            p99_ms: Some(10.0),
        };
        let slow = Sample {
            p99_ms: Some(500.0),
            ..b
        };
        // errors still judged: with a 10-point tolerance 0 of 80 against 0 of 80 passes
        let j = judge_with_notes(&cfg, &b, &slow);
        assert_eq!(j.verdict, Verdict::Pass);
        assert_eq!(
            j.notes,
            ["latency not judged: 80 and 80 invocations (old, new), and a p99 of fewer than 100 invocations is only the maximum"]
        );
        // and a failing error rate still fails, saying latency was not judged
        let bad = Sample { errors: 40, ..slow };
        let Verdict::Fail { reasons } = judge(&cfg, &b, &bad) else {
            panic!()
        };
        assert!(reasons[0].starts_with("error rate 50.00%"), "{reasons:?}");
        assert!(reasons[1].starts_with("latency not judged: 80 and 80"), "{reasons:?}");
    }

    #[test]
    fn errors_above_invocations_are_clamped() {
        let v = judge(&JudgeConfig::default(), &s(1000, 0), &s(1000, 5000));
        assert!(matches!(v, Verdict::Fail { .. }));
    }
}
