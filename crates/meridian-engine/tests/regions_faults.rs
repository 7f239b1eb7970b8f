//! The engine against the in-memory region (every port in-process): a pipeline that deploys a
//! release with a canary to us-east-1, then to eu-west-1 and ap-southeast-2 together. A failure is
//! injected at every port call of that execution in turn; every time, each region ends on a
//! release the ledger records as live there, with its alias wholly on that release's version and
//! its stack stable, and the next run deploys the release everywhere.

use meridian_core::ManualClock;
use meridian_engine::stacks::DeliveryOptions;
use meridian_engine::{Engine, RunEnv};
use meridian_region::memory::MemoryRegion;
use meridian_region::Regions;
use serde_json::json;
use std::path::Path;
use std::process::Command;
use std::sync::Arc;
use std::time::Duration;

const REGIONS: [&str; 3] = ["us-east-1", "eu-west-1", "ap-southeast-2"];

fn git(dir: &Path, args: &[&str]) {
    let ok = Command::new("git")
        .args(["-c", "user.email=t@example.com", "-c", "user.name=T"])
        .args(args)
        .current_dir(dir)
        .status()
        .unwrap()
        .success();
    assert!(ok, "git {args:?}");
}

fn release(repo: &Path, n: u32) {
    std::fs::write(repo.join("template.yaml"), format!("Resources: {{}}\n# release {n}\n")).unwrap();
    git(repo, &["add", "."]);
    git(repo, &["commit", "-q", "-m", &format!("release {n}")]);
}

fn pipeline() -> meridian_pipeline::model::Pipeline {
    let deploy = |name: &str, region: &str, order: u32| {
        json!({"name": name, "region": region, "runOrder": order,
            "actionTypeId": {"category": "Deploy", "owner": "AWS", "provider": "CloudFormation", "version": "1"},
            "configuration": {"ActionMode": "CREATE_UPDATE", "StackName": "app", "TemplatePath": "Code::template.yaml",
                "RoleArn": "arn:aws:iam::123456789012:role/cfn"},
            "inputArtifacts": [{"name": "Code"}]})
    };
    let stores: serde_json::Map<String, serde_json::Value> = REGIONS
        .iter()
        .map(|r| {
            (
                r.to_string(),
                json!({"type": "S3", "location": format!("artifacts-{r}")}),
            )
        })
        .collect();
    let text = json!({"pipeline": {"name": "waves", "pipelineType": "V2", "artifactStores": stores, "stages": [
        {"name": "Source", "actions": [{"name": "Source",
            "actionTypeId": {"category": "Source", "owner": "AWS", "provider": "CodeCommit", "version": "1"},
            "configuration": {"RepositoryName": "app", "BranchName": "main"}, "outputArtifacts": [{"name": "Code"}]}]},
        {"name": "Deploy", "actions": [deploy("primary", "us-east-1", 1), deploy("eu", "eu-west-1", 2), deploy("ap", "ap-southeast-2", 2)]}
    ]}})
    .to_string();
    let loaded = meridian_pipeline::load_str("waves.json", &text, &Default::default());
    assert!(!loaded.has_errors(), "{:?}", loaded.diagnostics);
    loaded.pipelines.into_iter().next().unwrap()
}

struct World {
    engine: Engine,
    region: Arc<MemoryRegion>,
    env: RunEnv,
    repo: std::path::PathBuf,
    rt: tokio::runtime::Runtime,
    _dir: tempfile::TempDir,
}

fn world() -> World {
    let dir = tempfile::tempdir().unwrap();
    let repo = dir.path().join("app");
    std::fs::create_dir_all(&repo).unwrap();
    git(&repo, &["init", "-q", "-b", "main"]);
    release(&repo, 1);
    let data = dir.path().join("data");
    let clock = ManualClock::new(1_790_000_000_000);
    let region = Arc::new(MemoryRegion::new(Arc::new(clock.clone())));
    // The engine's delivery driver shifts the canaries, on the manual clock, looking every 10 s.
    let mut engine = Engine::open_with_clock(&data, Arc::new(clock)).unwrap();
    engine.wiring = Arc::new(Regions::all(region.backend()));
    engine.delivery_tick = Duration::from_secs(10);
    let env = RunEnv {
        data_dir: data.clone(),
        repos: [("app".to_string(), repo.clone())].into(),
        home_region: "us-east-1".into(),
        time_scale: 1.0,
        retain: 10,
        delivery: DeliveryOptions {
            preference: Some("Canary10Percent5Minutes".into()),
            judge: Some(Default::default()),
            ..Default::default()
        },
        ..Default::default()
    };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(4)
        .enable_all()
        .build()
        .unwrap();
    World {
        engine,
        region,
        env,
        repo,
        rt,
        _dir: dir,
    }
}

impl World {
    fn run(&self) -> String {
        let id = self.engine.start(&pipeline(), self.env.clone(), "test").unwrap();
        self.rt.block_on(self.engine.drive(&id)).unwrap().to_string()
    }

    /// Every region is on the release the ledger says is live there: its alias wholly on that
    /// release's version, its stack stable on the same version. Returns the live release ids.
    fn consistent(&self, what: &str) -> Vec<String> {
        let live = self.engine.journal.live_releases("waves").unwrap();
        REGIONS
            .iter()
            .map(|r| {
                let row = live.get(*r).unwrap_or_else(|| panic!("{what}: nothing live in {r}"));
                let route = self.region.routing(r, "app-fn", "live").unwrap();
                assert!(route.extra.is_none(), "{what}: {r} left mixed: {route:?}");
                assert_eq!(row.functions.len(), 1, "{what}: {row:?}");
                assert_eq!(
                    row.functions[0].version, route.version,
                    "{what}: {r}: ledger and alias differ"
                );
                let (status, version) = self.region.stack(r, "app").unwrap();
                assert!(
                    matches!(
                        status.as_str(),
                        "CREATE_COMPLETE" | "UPDATE_COMPLETE" | "UPDATE_ROLLBACK_COMPLETE"
                    ),
                    "{what}: {r}: stack {status}"
                );
                assert_eq!(
                    version.to_string(),
                    route.version,
                    "{what}: {r}: stack and alias differ"
                );
                row.release_id.clone()
            })
            .collect()
    }
}

#[test]
fn a_failure_at_every_port_call_leaves_every_region_on_a_recorded_release() {
    // An undisturbed second release, to learn its port calls.
    let calls: Vec<String> = {
        let w = world();
        assert_eq!(w.run(), "Succeeded");
        let before = w.region.calls().len();
        release(&w.repo, 2);
        assert_eq!(w.run(), "Succeeded");
        let ids = w.consistent("clean run");
        assert!(ids.iter().all(|i| i == &ids[0]), "one release everywhere: {ids:?}");
        w.region.calls()[before..].to_vec()
    };
    assert!(
        calls.iter().filter(|c| c.starts_with("deploy ")).count() == 3,
        "{calls:?}"
    );
    let points: Vec<usize> = (0..calls.len()).collect();
    let mut outcomes = std::collections::BTreeMap::<String, usize>::new();
    for &n in &points {
        let w = world();
        assert_eq!(w.run(), "Succeeded");
        let first = w.consistent("release 1");
        release(&w.repo, 2);
        w.region.fail_call(w.region.calls().len() + n);
        let status = w.run();
        let what = format!("failure of call {n} ({})", calls[n]);
        let after = w.consistent(&what);
        match status.as_str() {
            // The failure was retried away: release 2 everywhere.
            "Succeeded" => assert!(after.iter().all(|id| !first.contains(id)), "{what}: {after:?}"),
            // The region that failed is back on release 1 (and, with the primary first, the
            // others never left it unless they finished).
            _ => assert!(
                after.iter().any(|id| first.contains(id)),
                "{what}: a failed run left every region moved"
            ),
        }
        *outcomes.entry(status).or_default() += 1;
        // The next run puts release 2 everywhere.
        assert_eq!(w.run(), "Succeeded", "{what}: the next run");
        let fixed = w.consistent(&format!("{what}, then a clean run"));
        assert!(
            fixed.iter().all(|i| i == &fixed[0] && !first.contains(i)),
            "{what}: {fixed:?}"
        );
    }
    eprintln!("{} failure points of {} calls: {outcomes:?}", points.len(), calls.len());
    assert!(outcomes.get("Failed").copied().unwrap_or(0) >= 5, "{outcomes:?}");
}

/// Deployment windows and the journal read the engine's clock: on a Saturday (manual clock) the
/// eu-west-1 deploy waits for its Monday-to-Friday window and says when it opens; once the clock
/// says Monday 10:00 in Dublin it deploys, and the journal's timestamps are the clock's.
#[test]
fn deployment_windows_follow_the_engines_clock() {
    const SATURDAY_NOON: i64 = 1_795_867_200_000; // 2026-11-28T12:00:00Z
    const MONDAY_10: i64 = 1_796_032_800_000; // 2026-11-30T10:00:00Z (10:00 in Dublin too)
    let dir = tempfile::tempdir().unwrap();
    let repo = dir.path().join("app");
    std::fs::create_dir_all(&repo).unwrap();
    git(&repo, &["init", "-q", "-b", "main"]);
    release(&repo, 1);
    let data = dir.path().join("data");
    let clock = ManualClock::new(SATURDAY_NOON);
    let region = Arc::new(MemoryRegion::new(Arc::new(clock.clone())));
    let mut engine = Engine::open_with_clock(&data, Arc::new(clock.clone())).unwrap();
    engine.wiring = Arc::new(Regions::all(region.backend()));
    engine.delivery_tick = Duration::from_secs(10);
    let engine = Arc::new(engine);
    let mut env = RunEnv {
        data_dir: data.clone(),
        repos: [("app".to_string(), repo.clone())].into(),
        home_region: "us-east-1".into(),
        time_scale: 1.0,
        retain: 10,
        ..Default::default()
    };
    env.windows.insert(
        "eu-west-1".into(),
        meridian_pipeline::model::DeploymentWindow {
            timezone: "Europe/Dublin".into(),
            hours: "09:00-17:00".into(),
            days: ["mon", "tue", "wed", "thu", "fri"].map(String::from).to_vec(),
            freeze: vec![],
        },
    );
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    let id = engine.start(&pipeline(), env, "test").unwrap();
    let driving = {
        let (engine, id) = (engine.clone(), id.clone());
        rt.spawn(async move { engine.drive(&id).await })
    };
    // us-east-1 has no window; eu-west-1 waits, saying when its window opens.
    let start = std::time::Instant::now();
    let waiting = loop {
        if let Some(w) = engine.journal.execution(&id).unwrap().waiting {
            break w;
        }
        assert!(start.elapsed() < Duration::from_secs(20), "eu-west-1 never waited");
        std::thread::sleep(Duration::from_millis(20));
    };
    assert!(
        waiting.contains("the deployment window of eu-west-1") && waiting.contains("it opens at 2026-11-30 09:00"),
        "{waiting}"
    );
    assert!(
        region.stack("eu-west-1", "app").is_none(),
        "nothing deployed on a Saturday"
    );
    assert!(region.stack("us-east-1", "app").is_some());
    clock.set(MONDAY_10);
    let status = rt.block_on(driving).unwrap().unwrap().to_string();
    assert_eq!(status, "Succeeded");
    assert!(region.stack("eu-west-1", "app").is_some());
    let row = engine.journal.execution(&id).unwrap();
    assert_eq!(
        row.started_at, SATURDAY_NOON,
        "the journal's time is the engine's clock"
    );
    assert!(row.ended_at.unwrap() >= MONDAY_10);
}
