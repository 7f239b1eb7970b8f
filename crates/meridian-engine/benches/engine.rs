//! Engine figures, printed: `cargo bench -p meridian-engine --bench engine`.
//!
//! 1. A pipeline of 3 stages x 30 regions of trivial Commands actions: the cost of one action
//!    transition (a committed journal write: p50/p99), and how close each 30-region group
//!    finishes to its slowest action (target: within 1.2x).
//! 2. Replication of a 200 MB artifact to 10 region stores, against `cp` of the same bytes on the
//!    same disk (target: at least 70% of cp's throughput), and the bytes a second replication of
//!    the same content copies (target: 0).

use meridian_core::KNOWN_REGIONS;
use meridian_engine::artifacts::{ArtifactStore, ObjectArtifactStore};
use meridian_engine::{Engine, RunEnv};
use serde_json::json;
use std::path::Path;
use std::process::Command;
use std::time::Instant;

/// The bench's regions keep their artifacts in directories, as local regions do.
struct DirStores(std::path::PathBuf);

impl meridian_region::artifacts::ArtifactStores for DirStores {
    fn open(
        &self,
        region: &str,
        store: &meridian_region::artifacts::StoreLocation,
    ) -> meridian_region::artifacts::Result<std::sync::Arc<dyn ArtifactStore>> {
        Ok(std::sync::Arc::new(ObjectArtifactStore::local(
            region,
            &self.0.join(&store.location),
        )?))
    }
}

fn pct(v: &mut [f64], p: f64) -> f64 {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    v[((v.len() - 1) as f64 * p).round() as usize]
}

fn repo(dir: &Path) {
    std::fs::create_dir_all(dir).unwrap();
    let git = |args: &[&str]| {
        assert!(Command::new("git")
            .args(["-c", "user.email=b@b", "-c", "user.name=b"])
            .args(args)
            .current_dir(dir)
            .status()
            .unwrap()
            .success())
    };
    git(&["init", "-q", "-b", "main"]);
    std::fs::write(dir.join("README"), "bench\n").unwrap();
    git(&["add", "."]);
    git(&["commit", "-q", "-m", "bench"]);
}

fn scheduling(root: &Path, command: &str) {
    let mut regions = vec!["us-east-1"];
    regions.extend(
        KNOWN_REGIONS
            .iter()
            .copied()
            .filter(|r| !r.starts_with("us-gov") && !r.starts_with("cn-") && *r != "us-east-1")
            .take(29),
    );
    assert_eq!(regions.len(), 30);
    let stores: serde_json::Map<String, serde_json::Value> = regions
        .iter()
        .map(|r| (r.to_string(), json!({"type": "S3", "location": format!("bench-{r}")})))
        .collect();
    let mut stages = vec![
        json!({"name": "Source", "actions": [{"name": "Source", "actionTypeId": {"category": "Source", "owner": "AWS", "provider": "CodeCommit", "version": "1"}, "configuration": {"RepositoryName": "app", "BranchName": "main"}, "outputArtifacts": [{"name": "Code"}]}]}),
    ];
    for s in 0..3 {
        let actions: Vec<_> = regions
            .iter()
            .map(|r| json!({"name": format!("A{s}-{r}"), "region": r, "actionTypeId": {"category": "Compute", "owner": "AWS", "provider": "Commands", "version": "1"}, "commands": [command], "inputArtifacts": [{"name": "Code"}]}))
            .collect();
        stages.push(json!({"name": format!("Stage{s}"), "actions": actions}));
    }
    let text = json!({"pipeline": {"name": "bench", "pipelineType": "V2", "artifactStores": stores, "stages": stages}})
        .to_string();
    let loaded = meridian_pipeline::load_str("bench.json", &text, &Default::default());
    assert!(!loaded.has_errors());
    let p = loaded.pipelines.into_iter().next().unwrap();
    let data = root.join(format!("data-{}", command.replace(' ', "_")));
    let mut engine = Engine::open(&data).unwrap();
    let memory = std::sync::Arc::new(meridian_region::memory::MemoryRegion::new(std::sync::Arc::new(
        meridian_core::SystemClock,
    )));
    engine.wiring = std::sync::Arc::new(meridian_region::Regions::all(meridian_region::RegionBackend {
        kind: "bench".into(),
        artifacts: std::sync::Arc::new(DirStores(data.join("buckets"))),
        stacks: memory.clone(),
        functions: memory,
        clients: std::sync::Arc::new(meridian_region::OwnConfiguration),
        services: std::sync::Arc::new(meridian_region::services::NoContainers),
        builds: std::sync::Arc::new(meridian_region::services::NoRemoteBuilds),
    }));
    let env = RunEnv {
        data_dir: data.clone(),
        repos: [("app".to_string(), root.join("app"))].into(),
        home_region: "us-east-1".into(),
        time_scale: 1.0,
        retain: 10,
        ..Default::default()
    };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    let id = engine.start(&p, env, "bench").unwrap();
    let t = Instant::now();
    let status = rt.block_on(engine.drive(&id)).unwrap();
    let total = t.elapsed().as_secs_f64();
    if status.to_string() != "Succeeded" {
        panic!(
            "the bench pipeline failed: {:?}",
            engine.journal.execution(&id).unwrap().status_reason
        );
    }
    let mut writes: Vec<f64> = engine
        .journal
        .write_timings()
        .iter()
        .map(|u| *u as f64 / 1000.0)
        .collect();
    let n = writes.len();
    let (p50, p99) = (pct(&mut writes, 0.5), pct(&mut writes, 0.99));
    let stages = engine.journal.stages(&id).unwrap();
    let actions = engine.journal.actions(&id).unwrap();
    println!(
        "scheduling, 3 stages x 30 regions of `{command}` ({} actions, {total:.2} s in all)",
        actions.len()
    );
    println!("  action transition (committed journal write): p50 {p50:.2} ms, p99 {p99:.2} ms over {n} writes (target p50 < 2 ms)");
    for s in stages.iter().skip(1) {
        let group: Vec<_> = actions.iter().filter(|a| a.stage_idx == s.idx).collect();
        let slowest = group
            .iter()
            .map(|a| a.ended_at.unwrap() - a.started_at.unwrap())
            .max()
            .unwrap() as f64;
        let first_start = group.iter().map(|a| a.started_at.unwrap()).min().unwrap();
        let last_end = group.iter().map(|a| a.ended_at.unwrap()).max().unwrap();
        let wall = (last_end - first_start) as f64;
        let stage_wall = (s.ended_at.unwrap() - s.started_at.unwrap()) as f64;
        println!(
            "  {}: 30 regions finished in {wall:.0} ms, slowest action {slowest:.0} ms: {:.2}x (target <= 1.2x); stage with input replication {stage_wall:.0} ms",
            s.name,
            wall / slowest
        );
    }
}

fn replication(root: &Path) {
    let size = 200usize << 20;
    let file = root.join("blob");
    {
        use std::io::Write;
        let mut f = std::io::BufWriter::new(std::fs::File::create(&file).unwrap());
        let mut x: u64 = 0x9e3779b97f4a7c15;
        let mut buf = vec![0u8; 1 << 20];
        for _ in 0..200 {
            for b in buf.chunks_mut(8) {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                b.copy_from_slice(&x.to_le_bytes()[..b.len()]);
            }
            f.write_all(&buf).unwrap();
        }
    }
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    let home = ObjectArtifactStore::local("us-east-1", &root.join("stores/us-east-1")).unwrap();
    let (digest, _) = rt.block_on(home.put_file(&file)).unwrap();
    let regions = &KNOWN_REGIONS[..10];
    let targets: Vec<ObjectArtifactStore> = regions
        .iter()
        .map(|r| ObjectArtifactStore::local(r, &root.join(format!("stores/r-{r}"))).unwrap())
        .collect();
    // cp of the same bytes, ten times, on the same disk.
    let t = Instant::now();
    for i in 0..10 {
        assert!(Command::new("cp")
            .arg(&file)
            .arg(root.join(format!("cp-{i}")))
            .status()
            .unwrap()
            .success());
    }
    Command::new("sync").status().ok();
    let cp = t.elapsed().as_secs_f64();
    // As the engine does when the actions of 10 regions start together: concurrently.
    let t = Instant::now();
    let copied: u64 = rt
        .block_on(futures::future::join_all(
            targets.iter().map(|s| s.replicate_from(&home, &digest)),
        ))
        .into_iter()
        .map(|r| r.unwrap())
        .sum();
    Command::new("sync").status().ok();
    let ours = t.elapsed().as_secs_f64();
    let t = Instant::now();
    let mut again = 0u64;
    for s in &targets {
        again += rt.block_on(s.replicate_from(&home, &digest)).unwrap();
    }
    let second = t.elapsed().as_secs_f64();
    let mb = (size * 10) as f64 / 1e6;
    println!("replication of a 200 MB artifact to 10 region stores (digest verified)");
    println!(
        "  cp: {:.0} MB/s; meridian: {:.0} MB/s ({} bytes): {:.0}% of cp (target >= 70%)",
        mb / cp,
        mb / ours,
        copied,
        100.0 * cp / ours
    );
    println!(
        "  second replication of the same content: {again} bytes copied in {:.1} ms (target 0 bytes)",
        second * 1000.0
    );
}

fn main() {
    let tmp = tempfile::tempdir_in(
        std::env::var("MERIDIAN_BENCH_DIR").unwrap_or_else(|_| std::env::temp_dir().display().to_string()),
    )
    .unwrap();
    repo(&tmp.path().join("app"));
    scheduling(tmp.path(), "true");
    scheduling(tmp.path(), "sleep 0.5");
    replication(tmp.path());
}
