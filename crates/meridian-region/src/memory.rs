//! An in-memory region: a small, honest implementation of [`FunctionControl`] for tests of the
//! engine and the delivery driver, in-process and on any [`Clock`] (a 30-minute canary runs in
//! milliseconds on a `ManualClock`), that can fail any call on demand.
//!
//! Its functions are a model, not processes: every alias gets `rate` calls a second from users,
//! split between versions by the alias's routing at that moment; each version fails a set share
//! of its calls and answers with a set p99. Metrics are integrated second by second from the
//! routing history, so what the driver measures follows exactly what it routed.

use crate::{ErrorKind, FunctionControl, RegionError};
use meridian_core::Clock;
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

#[derive(Default)]
struct State {
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
