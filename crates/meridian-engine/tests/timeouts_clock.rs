//! Action timeouts follow the engine's clock: a manual approval, which CodePipeline lets wait
//! seven days, expires when a manual clock passes those seven days, in about a second of wall
//! time, and a clock that has not reached the timeout leaves the approval waiting.

use meridian_core::ManualClock;
use meridian_engine::{Engine, RunEnv};
use meridian_region::memory::MemoryRegion;
use meridian_region::Regions;
use serde_json::json;
use std::path::Path;
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

const START: i64 = 1_790_000_000_000;

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

#[test]
fn a_seven_day_approval_expires_on_the_engines_clock() {
    let dir = tempfile::tempdir().unwrap();
    let repo = dir.path().join("app");
    std::fs::create_dir_all(&repo).unwrap();
    git(&repo, &["init", "-q", "-b", "main"]);
    std::fs::write(repo.join("README"), "app\n").unwrap();
    git(&repo, &["add", "."]);
    git(&repo, &["commit", "-q", "-m", "one"]);
    let text = json!({"pipeline": {"name": "gate", "pipelineType": "V2",
        "artifactStore": {"type": "S3", "location": "artifacts"}, "stages": [
        {"name": "Source", "actions": [{"name": "Source",
            "actionTypeId": {"category": "Source", "owner": "AWS", "provider": "CodeCommit", "version": "1"},
            "configuration": {"RepositoryName": "app", "BranchName": "main"}, "outputArtifacts": [{"name": "Code"}]}]},
        {"name": "Gate", "actions": [{"name": "Approve",
            "actionTypeId": {"category": "Approval", "owner": "AWS", "provider": "Manual", "version": "1"}}]}
    ]}})
    .to_string();
    let loaded = meridian_pipeline::load_str("gate.json", &text, &Default::default());
    assert!(!loaded.has_errors(), "{:?}", loaded.diagnostics);
    let p = loaded.pipelines.into_iter().next().unwrap();

    let data = dir.path().join("data");
    let clock = ManualClock::new(START);
    let mut engine = Engine::open_with_clock(&data, Arc::new(clock.clone())).unwrap();
    let region = Arc::new(MemoryRegion::new(Arc::new(clock.clone())));
    engine.wiring = Arc::new(Regions::all(region.backend()));
    let engine = Arc::new(engine);
    let env = RunEnv {
        data_dir: data.clone(),
        repos: [("app".to_string(), repo.clone())].into(),
        home_region: "us-east-1".into(),
        time_scale: 1.0,
        retain: 10,
        ..Default::default()
    };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    let id = engine.start(&p, env, "test").unwrap();
    let driving = {
        let (engine, id) = (engine.clone(), id.clone());
        rt.spawn(async move { engine.drive(&id).await })
    };
    let approval_status = |engine: &Engine| {
        engine
            .journal
            .actions(&id)
            .unwrap()
            .into_iter()
            .find(|a| a.name == "Approve")
            .map(|a| a.status.to_string())
    };
    let waited = Instant::now();
    while approval_status(&engine).as_deref() != Some("InProgress") {
        assert!(
            waited.elapsed() < Duration::from_secs(30),
            "the approval never started: {:?}",
            engine.journal.execution(&id).unwrap()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    // six days and 23 hours: still waiting for a decision
    clock.advance(Duration::from_secs(7 * 24 * 3600 - 3600));
    std::thread::sleep(Duration::from_millis(1500));
    assert_eq!(approval_status(&engine).as_deref(), Some("InProgress"));
    // past seven days: it expires, within about a second of wall time
    let expiring = Instant::now();
    clock.advance(Duration::from_secs(2 * 3600));
    let status = rt.block_on(driving).unwrap().unwrap();
    assert!(expiring.elapsed() < Duration::from_secs(5), "{:?}", expiring.elapsed());
    assert_eq!(status.to_string(), "Failed");
    let row = engine.journal.execution(&id).unwrap();
    assert!(
        row.status_reason
            .as_deref()
            .unwrap_or_default()
            .contains("the approval expired after 10080 minutes without a decision"),
        "{:?}",
        row.status_reason
    );
    assert!(
        row.ended_at.unwrap() >= START + 7 * 24 * 3600 * 1000,
        "ended on the clock's time"
    );
}
