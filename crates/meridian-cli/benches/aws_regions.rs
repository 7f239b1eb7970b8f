//! Benchmark of AWS regions against moto's server (from `.venv-moto`, made by `scripts/setup.sh`):
//! examples/hello-regions deployed to 1 region, then to 20 regions in one wave, each time as a new
//! pipeline (bootstrap, release 1 creating the stacks, release 2 updating them with new code and
//! moving each region's alias at once). Prints the wall time of each release, the ratio of 20
//! regions to 1 (the work is waiting on the endpoint, not on this machine: the goal is at most
//! 1.5), and the API calls a region's deploy makes (counted in moto's request log).
//!
//! Run with `cargo bench -p meridian-cli --bench aws_regions` (it builds the debug `meridian`
//! with the `aws` feature unless MERIDIAN_BIN names another binary).

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const REGIONS: [&str; 20] = [
    "us-east-1",
    "us-east-2",
    "us-west-1",
    "us-west-2",
    "ca-central-1",
    "sa-east-1",
    "eu-west-1",
    "eu-west-2",
    "eu-west-3",
    "eu-central-1",
    "eu-north-1",
    "eu-south-1",
    "ap-south-1",
    "ap-southeast-1",
    "ap-southeast-2",
    "ap-northeast-1",
    "ap-northeast-2",
    "ap-northeast-3",
    "me-south-1",
    "af-south-1",
];

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .unwrap()
}

struct Moto {
    child: Child,
    url: String,
    log: PathBuf,
}

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn moto(dir: &Path) -> Moto {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let log = dir.join("moto.log");
    let child = Command::new(repo().join(".venv-moto/bin/moto_server"))
        .args(["-H", "127.0.0.1", "-p", &port.to_string()])
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .unwrap();
    let started = Instant::now();
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(started.elapsed() < Duration::from_secs(30), "moto did not start");
        std::thread::sleep(Duration::from_millis(100));
    }
    Moto {
        child,
        url: format!("http://127.0.0.1:{port}"),
        log,
    }
}

/// CPU seconds moto's server has used so far (Linux: /proc/PID/stat, user + system, in ticks of
/// 1/100 s), to tell waiting on the stand-in from work of Meridian's.
fn moto_cpu(m: &Moto) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{}/stat", m.child.id())).unwrap_or_default();
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .map(|(_, rest)| rest.split_whitespace().collect())
        .unwrap_or_default();
    let tick = |i: usize| fields.get(i).and_then(|f| f.parse::<f64>().ok()).unwrap_or(0.0);
    (tick(11) + tick(12)) / 100.0
}

/// Requests moto has answered so far (one line each in its log).
fn requests(m: &Moto) -> usize {
    std::fs::read_to_string(&m.log)
        .unwrap_or_default()
        .lines()
        .filter(|l| l.contains("HTTP/1.1\""))
        .count()
}

fn run(meridian: &Path, dir: &Path, m: &Moto, args: &[&str]) {
    let out = Command::new(meridian)
        .args(args)
        .current_dir(dir)
        .env("MERIDIAN_DATA_DIR", dir.join("data"))
        .env("AWS_ENDPOINT_URL", &m.url)
        .env("AWS_ACCESS_KEY_ID", "testing")
        .env("AWS_SECRET_ACCESS_KEY", "testing")
        .env_remove("AWS_PROFILE")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "meridian {args:?}: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

fn git(dir: &Path, args: &[&str]) {
    let ok = Command::new("git")
        .args(["-c", "user.email=bench@example.com", "-c", "user.name=Bench"])
        .args(args)
        .current_dir(dir)
        .status()
        .unwrap()
        .success();
    assert!(ok);
}

/// One pipeline over `regions`: release 1 and release 2 in seconds, API calls per region and
/// release, and moto's CPU seconds over both releases.
fn measure(meridian: &Path, regions: &[&str]) -> (f64, f64, f64, f64) {
    let tmp = tempfile::tempdir().unwrap();
    let m = moto(tmp.path());
    let app = tmp.path().join("app");
    let example = repo().join("examples/hello-regions");
    std::fs::create_dir_all(app.join("src")).unwrap();
    for f in ["template.yaml", "buildspec.yml", "src/index.js"] {
        std::fs::copy(example.join(f), app.join(f)).unwrap();
    }
    let pipeline = format!(
        "pipeline: bench\nbackend: aws\nsource:\n  path: .\n  branch: main\nbuild:\n  buildspec: buildspec.yml\ndeploy:\n  template: template.yaml\n  stack: bench\n  preference: AllAtOnce\n  capabilities: [CAPABILITY_IAM, CAPABILITY_AUTO_EXPAND]\nwaves:\n  - name: all\n    regions: [{}]\n",
        regions.join(", ")
    );
    std::fs::write(app.join("meridian.yaml"), pipeline).unwrap();
    git(&app, &["init", "-q", "-b", "main"]);
    git(&app, &["add", "."]);
    git(&app, &["commit", "-q", "-m", "release 1"]);
    run(meridian, &app, &m, &["bootstrap", "meridian.yaml"]);
    let cpu0 = moto_cpu(&m);
    let before = requests(&m);
    let t = Instant::now();
    run(meridian, &app, &m, &["run", "meridian.yaml"]);
    let mut cpu = moto_cpu(&m) - cpu0;
    let create = t.elapsed().as_secs_f64();
    let calls_create = requests(&m) - before;
    // moto's CloudFormation makes no alias: made as the template says (docs/aws.md)
    let script = format!(
        "import boto3\nfor r in {regions:?}:\n    lam = boto3.client('lambda', region_name=r, endpoint_url='{}', aws_access_key_id='t', aws_secret_access_key='t')\n    fn = lam.list_functions()['Functions'][0]['FunctionName']\n    lam.create_alias(FunctionName=fn, Name='live', FunctionVersion='1')\n",
        m.url
    );
    let ok = Command::new(repo().join(".venv-moto/bin/python"))
        .arg("-c")
        .arg(script)
        .status()
        .unwrap()
        .success();
    assert!(ok);
    let src = std::fs::read_to_string(app.join("src/index.js")).unwrap();
    std::fs::write(
        app.join("src/index.js"),
        src.replace("const RELEASE = \"1\";", "const RELEASE = \"2\";"),
    )
    .unwrap();
    git(&app, &["commit", "-q", "-am", "release 2"]);
    let before = requests(&m);
    let cpu1 = moto_cpu(&m);
    let t = Instant::now();
    run(meridian, &app, &m, &["run", "meridian.yaml"]);
    let update = t.elapsed().as_secs_f64();
    cpu += moto_cpu(&m) - cpu1;
    let calls_update = requests(&m) - before;
    let per_region = (calls_create + calls_update) as f64 / 2.0 / regions.len() as f64;
    (create, update, per_region, cpu)
}

fn main() {
    if !repo().join(".venv-moto/bin/moto_server").is_file() {
        eprintln!("moto is missing (.venv-moto): run scripts/setup.sh");
        std::process::exit(2);
    }
    let meridian = std::env::var("MERIDIAN_BIN").map(PathBuf::from).unwrap_or_else(|_| {
        let status = Command::new("cargo")
            .args(["build", "-q", "-p", "meridian-cli", "--features", "aws"])
            .status()
            .unwrap();
        assert!(status.success());
        repo().join("target/debug/meridian")
    });
    let (c1, u1, calls1, cpu1) = measure(&meridian, &REGIONS[..1]);
    println!("1 region:   release 1 (create) {c1:.1} s, release 2 (update + alias) {u1:.1} s, {calls1:.0} API calls per region and release; moto busy {cpu1:.1} CPU s");
    let (c20, u20, calls20, cpu20) = measure(&meridian, &REGIONS);
    println!("20 regions: release 1 (create) {c20:.1} s, release 2 (update + alias) {u20:.1} s, {calls20:.0} API calls per region and release; moto busy {cpu20:.1} CPU s");
    println!(
        "ratio 20/1: create {:.2}, update {:.2} (goal: at most 1.5)",
        c20 / c1,
        u20 / u1
    );
}
