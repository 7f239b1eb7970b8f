//! Benchmark: one wave of 20 local regions, AllAtOnce, against one region. The target is that
//! 20 regions finish within 1.5x the time of one. Each case runs a native pipeline twice (create
//! the stacks, then a new release whose alias shifts AllAtOnce) and times the deploy stage of
//! the second run, as the journal records it. Run with `cargo bench -p meridian-cli --bench waves`.
//!
//! Local regions are CPU-bound (unpack, evaluate the template, publish, move the alias, commit),
//! so it also prints the CPU one more region's deploy costs (the second run's CPU time with 20
//! regions, less that with one, over 19) and compares the 20-region wall time with the ideal
//! on this machine: 20 x that CPU / cores (goal: within 1.2x).

use std::path::Path;
use std::process::Command;

const REGIONS: [&str; 20] = [
    "us-east-1",
    "us-east-2",
    "us-west-1",
    "us-west-2",
    "ca-central-1",
    "eu-west-1",
    "eu-west-2",
    "eu-west-3",
    "eu-central-1",
    "eu-north-1",
    "eu-south-1",
    "ap-southeast-1",
    "ap-southeast-2",
    "ap-northeast-1",
    "ap-northeast-2",
    "ap-northeast-3",
    "ap-south-1",
    "sa-east-1",
    "me-south-1",
    "af-south-1",
];

const TEMPLATE: &str = "Transform: AWS::Serverless-2016-10-31
Resources:
  Hello:
    Type: AWS::Serverless::Function
    Properties:
      CodeUri: src/
      Handler: index.handler
      Runtime: nodejs20.x
      AutoPublishAlias: live
      DeploymentPreference:
        Type: AllAtOnce
";

fn sh(dir: &Path, program: &str, args: &[&str]) -> String {
    let o = Command::new(program)
        .args(args)
        .current_dir(dir)
        .output()
        .expect("runs");
    assert!(
        o.status.success(),
        "{program} {args:?}: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn git(dir: &Path, args: &[&str]) {
    let mut a = vec!["-c", "user.email=b@example.com", "-c", "user.name=B"];
    a.extend_from_slice(args);
    sh(dir, "git", &a);
}

/// CPU seconds (user + system) of the children this process has waited for.
fn children_cpu() -> f64 {
    // SAFETY: getrusage writes into the zeroed struct it is given.
    let mut u: libc::rusage = unsafe { std::mem::zeroed() };
    unsafe { libc::getrusage(libc::RUSAGE_CHILDREN, &mut u) };
    let t = |tv: libc::timeval| tv.tv_sec as f64 + tv.tv_usec as f64 / 1e6;
    t(u.ru_utime) + t(u.ru_stime)
}

/// Seconds the deploy stage, and the whole execution, of the second release took, with `n`
/// regions in one wave, and the CPU seconds of that second run.
fn wave_seconds(n: usize) -> (f64, f64, f64) {
    let tmp = tempfile::tempdir().expect("temp dir");
    let dir = tmp.path();
    std::fs::create_dir_all(dir.join("src")).unwrap();
    std::fs::write(dir.join("template.yaml"), TEMPLATE).unwrap();
    std::fs::write(dir.join("src/index.js"), "exports.handler = async () => 1;\n").unwrap();
    let regions = REGIONS[..n].join(", ");
    std::fs::write(
        dir.join("meridian.yaml"),
        format!(
            "pipeline: wave\nsource:\n  path: .\ndeploy:\n  template: template.yaml\n  preference: AllAtOnce\nwaves:\n  - name: all\n    regions: [{regions}]\n"
        ),
    )
    .unwrap();
    git(dir, &["init", "-q", "-b", "main"]);
    git(dir, &["add", "."]);
    git(dir, &["commit", "-q", "-m", "one"]);
    let meridian = env!("CARGO_BIN_EXE_meridian");
    let data = dir.join("data");
    let data = data.to_str().unwrap();
    sh(dir, meridian, &["--data-dir", data, "run", "meridian.yaml"]);
    std::fs::write(dir.join("src/index.js"), "exports.handler = async () => 2;\n").unwrap();
    git(dir, &["commit", "-q", "-am", "two"]);
    let cpu = children_cpu();
    sh(dir, meridian, &["--data-dir", data, "run", "meridian.yaml"]);
    let cpu = children_cpu() - cpu;
    let list: serde_json::Value = serde_json::from_str(&sh(
        dir,
        meridian,
        &["--data-dir", data, "--output", "json", "executions", "list"],
    ))
    .expect("json");
    let id = list.as_array().and_then(|a| a.last()).expect("an execution")["executionId"]
        .as_str()
        .expect("id")
        .to_string();
    let show: serde_json::Value = serde_json::from_str(&sh(
        dir,
        meridian,
        &["--data-dir", data, "--output", "json", "executions", "show", &id],
    ))
    .expect("json");
    let stage = show["stages"]
        .as_array()
        .expect("stages")
        .iter()
        .find(|s| s["name"] == "Deploy-all")
        .expect("the deploy stage");
    assert_eq!(stage["status"], "Succeeded", "{stage:#}");
    let at = |v: &serde_json::Value, k: &str| {
        v[k].as_str()
            .and_then(|t| meridian_delivery::window::parse_instant(t).ok())
            .unwrap_or_else(|| panic!("no {k}: {v:#}"))
    };
    (
        (at(stage, "endedAt") - at(stage, "startedAt")) as f64 / 1000.0,
        (at(&show, "endedAt") - at(&show, "startedAt")) as f64 / 1000.0,
        cpu,
    )
}

fn main() {
    // Warm the binary and the file cache once.
    let _ = wave_seconds(1);
    let (mut one, mut twenty) = (Vec::new(), Vec::new());
    for _ in 0..3 {
        one.push(wave_seconds(1));
        twenty.push(wave_seconds(20));
    }
    let median = |v: &[(f64, f64, f64)], f: fn(&(f64, f64, f64)) -> f64| {
        let mut x: Vec<f64> = v.iter().map(f).collect();
        x.sort_by(|a, b| a.total_cmp(b));
        x[x.len() / 2]
    };
    for (what, f) in [
        (
            "deploy stage",
            (|x: &(f64, f64, f64)| x.0) as fn(&(f64, f64, f64)) -> f64,
        ),
        ("whole execution", |x: &(f64, f64, f64)| x.1),
    ] {
        let (a, b) = (median(&one, f), median(&twenty, f));
        println!("{what}, AllAtOnce, second release (median of 3):");
        println!("  1 region:   {a:.3} s");
        println!("  20 regions: {b:.3} s");
        println!("  ratio:      {:.2}x (target: at most 1.5x)", b / a);
    }
    let cores = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1) as f64;
    let per_region = (median(&twenty, |x| x.2) - median(&one, |x| x.2)) / 19.0;
    let ideal = 20.0 * per_region / cores;
    let wall = median(&twenty, |x| x.0);
    println!("CPU-bound view (second release, median of 3, {cores} cores):");
    println!("  CPU per region deploy:      {:.1} ms", per_region * 1000.0);
    println!("  ideal 20-region deploy:     {ideal:.3} s (20 x CPU per region / cores)");
    println!("  measured 20-region deploy:  {wall:.3} s");
    println!("  measured / ideal:           {:.2}x (goal: within 1.2x)", wall / ideal);
}
