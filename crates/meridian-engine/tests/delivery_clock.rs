//! The progressive-delivery driver on a manual clock against the in-memory region: a
//! Canary10Percent30Minutes deployment with its whole bake and a judged verdict runs in
//! milliseconds of wall time, and what it routed, measured and decided is checked exactly.

use meridian_core::{Clock, ManualClock};
use meridian_engine::delivery::{DeliveryStore, Shifter};
use meridian_engine::stacks::{AliasDeployment, AliasShifter, DeliveryOptions};
use meridian_region::memory::{Behaviour, MemoryRegion};
use serde_json::json;
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const START: i64 = 1_790_000_000_000;
const MINUTE: i64 = 60_000;

fn deployment(alarms: BTreeMap<String, serde_json::Value>) -> AliasDeployment {
    AliasDeployment {
        region: "us-east-1".into(),
        stack_name: "app".into(),
        function: "hello".into(),
        alias: "live".into(),
        from_version: "1".into(),
        to_version: "2".into(),
        deployment_group: json!({"DeploymentConfigName": "CodeDeployDefault.LambdaCanary10Percent30Minutes"}),
        deployment_config: None,
        alarms,
        before_hook: None,
        after_hook: None,
        options: DeliveryOptions {
            preference: Some("Canary10Percent30Minutes".into()),
            time_scale: 1.0,
            judge: Some(Default::default()),
            ..Default::default()
        },
    }
}

fn errors_alarm() -> BTreeMap<String, serde_json::Value> {
    BTreeMap::from([(
        "hello-errors".to_string(),
        json!({
            "Namespace": "AWS/Lambda",
            "MetricName": "Errors",
            "Dimensions": [{"Name": "Resource", "Value": "hello:live"}],
            "Statistic": "Sum",
            "Period": 60,
            "EvaluationPeriods": 1,
            "Threshold": 0,
            "ComparisonOperator": "GreaterThanThreshold",
            "TreatMissingData": "notBreaching"
        }),
    )])
}

struct Setup {
    clock: ManualClock,
    region: Arc<MemoryRegion>,
    shifter: Shifter,
    _dir: tempfile::TempDir,
}

fn setup() -> Setup {
    let clock = ManualClock::new(START);
    let region = Arc::new(MemoryRegion::new(Arc::new(clock.clone())));
    region.set_traffic(20.0);
    region.create_alias("us-east-1", "hello", "live", "1");
    let dir = tempfile::tempdir().unwrap();
    // The driver looks every 10 s of the manual clock: 180 looks in a 30-minute bake.
    let shifter = Shifter::new(region.clone(), DeliveryStore::open(dir.path()).unwrap())
        .with_clock(Arc::new(clock.clone()), Duration::from_secs(10));
    Setup {
        clock,
        region,
        shifter,
        _dir: dir,
    }
}

#[test]
fn a_thirty_minute_canary_is_baked_judged_and_promoted_on_a_manual_clock() {
    let s = setup();
    let lines = Mutex::new(Vec::<String>::new());
    let wall = Instant::now();
    let r = s.shifter.shift(&deployment(errors_alarm()), &|l| {
        lines.lock().unwrap().push(l.to_string())
    });
    let wall = wall.elapsed();
    let lines = lines.into_inner().unwrap();
    assert!(r.is_ok(), "{r:?}\n{}", lines.join("\n"));
    eprintln!("Canary10Percent30Minutes: {wall:?} of wall time");

    // 10% at once, then everything once the 30-minute bake was judged.
    let h = s.region.history("us-east-1", "hello", "live");
    assert_eq!(h.len(), 3, "{h:?}");
    assert_eq!((h[1].at_ms, h[1].share("2")), (START, 0.1));
    assert_eq!(h[2].share("2"), 1.0);
    let baked = h[2].at_ms - h[1].at_ms;
    assert!(
        (30 * MINUTE..30 * MINUTE + MINUTE).contains(&baked),
        "promoted after {} s of clock time",
        baked / 1000
    );
    // The judge compared what each version served during the bake: 10% and 90% of 20 calls a
    // second for 30 minutes.
    let verdict = lines.iter().find(|l| l.contains("judge, step 1")).expect("a verdict");
    assert!(verdict.ends_with(": pass"), "{verdict}");
    assert!(
        verdict.contains("version 2 0/36") && verdict.contains("version 1 0/324"),
        "{verdict}"
    );
    let row = s.shifter.store().list().unwrap().pop().unwrap();
    assert_eq!((row.status.as_str(), row.new_version_percent), ("Succeeded", 100.0));
    assert!(s.clock.now_millis() - START >= 30 * MINUTE);
}

#[test]
fn a_failing_canary_trips_its_alarm_and_goes_back_within_the_bake() {
    let s = setup();
    s.region.set_behaviour(
        "hello",
        "2",
        Behaviour {
            error_rate: 0.2,
            p99_ms: 20.0,
        },
    );
    let r = s.shifter.shift(&deployment(errors_alarm()), &|_| {});
    let e = r.expect_err("the errors alarm must roll the canary back");
    assert!(e.contains("hello-errors"), "{e}");
    let h = s.region.history("us-east-1", "hello", "live");
    let last = h.last().unwrap();
    assert_eq!((last.version.as_str(), last.extra.clone()), ("1", None), "{h:?}");
    assert!(
        last.at_ms - START < 3 * MINUTE,
        "rolled back {} s into the 30-minute bake",
        (last.at_ms - START) / 1000
    );
    let row = s.shifter.store().list().unwrap().pop().unwrap();
    assert_eq!((row.status.as_str(), row.new_version_percent), ("RolledBack", 0.0));
}

/// A failure of each routing call in turn (and of every call around them): every case ends with
/// the alias wholly on one version and a record that says which.
#[test]
fn a_failure_at_every_port_call_leaves_the_alias_whole_and_recorded() {
    // Count the calls of an undisturbed run first.
    let calls = {
        let s = setup();
        s.shifter.shift(&deployment(errors_alarm()), &|_| {}).unwrap();
        s.region.calls()
    };
    let routing: Vec<usize> = calls
        .iter()
        .enumerate()
        .filter(|(_, c)| c.starts_with("route_alias"))
        .map(|(i, _)| i)
        .collect();
    assert_eq!(routing.len(), 2, "{calls:?}");
    // Every routing call, the first and last metrics calls, and some in the middle of the bake.
    let mut points: Vec<usize> = routing.clone();
    points.extend([routing[0] + 1, calls.len() / 2, calls.len() - 2, calls.len() - 1]);
    for n in points {
        let s = setup();
        s.region.fail_call(n);
        let r = s.shifter.shift(&deployment(errors_alarm()), &|_| {});
        let route = s.region.routing("us-east-1", "hello", "live").unwrap();
        let row = s.shifter.store().list().unwrap().pop().unwrap();
        assert!(route.extra.is_none(), "call {n} ({}): mixed {route:?}", calls[n]);
        match &r {
            Ok(()) => {
                assert_eq!(route.version, "2", "call {n}");
                assert_eq!(row.status, "Succeeded", "call {n}");
            }
            Err(e) => {
                assert_eq!(route.version, "1", "call {n}: {e}");
                assert!(
                    matches!(row.status.as_str(), "RolledBack" | "Failed"),
                    "call {n}: {row:?}"
                );
                assert!(e.contains("injected failure"), "call {n}: {e}");
            }
        }
    }
}
