//! Benchmark of the local AWS endpoint with the real AWS CLI (from `.venv`, made by
//! `scripts/setup.sh`): `aws s3 cp` of a 100 MB artifact to a local region against a plain `cp` of
//! the same file (the ratio is the endpoint's cost over the disk's), and `aws cloudformation
//! deploy` of the example stack (examples/hello-regions, packaged with `aws cloudformation
//! package`), create and update, in seconds. Run with `cargo bench -p meridian-cli --bench endpoint`
//! (it uses the debug `meridian` binary unless MERIDIAN_BIN names another).

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Instant;

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .unwrap()
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}

fn main() {
    let aws = repo().join(".venv/bin/aws");
    if !aws.is_file() {
        eprintln!("the AWS CLI is missing ({}): run scripts/setup.sh", aws.display());
        std::process::exit(2);
    }
    let meridian = std::env::var("MERIDIAN_BIN").map(PathBuf::from).unwrap_or_else(|_| {
        let status = Command::new("cargo")
            .args(["build", "-q", "-p", "meridian-cli"])
            .status()
            .unwrap();
        assert!(status.success());
        repo().join("target/debug/meridian")
    });
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let mut server = Command::new(&meridian)
        .arg("--data-dir")
        .arg(&data)
        .args(["serve", "--port", "0"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut url = String::new();
    BufReader::new(server.stdout.take().unwrap())
        .read_line(&mut url)
        .unwrap();
    let url = url.trim().to_string();
    let creds = Command::new(&meridian)
        .args(["credentials", "--endpoint-url", &url, "--region", "eu-west-1"])
        .output()
        .unwrap();
    let env: Vec<(String, String)> = String::from_utf8_lossy(&creds.stdout)
        .lines()
        .filter_map(|l| l.trim_start_matches("export ").split_once('='))
        .map(|(k, v)| (k.to_string(), v.trim_matches('\'').to_string()))
        .collect();
    let run = |args: &[&str], dir: &Path| {
        let o = Command::new(&aws)
            .args(args)
            .envs(env.iter().map(|(k, v)| (k, v)))
            .env("AWS_CONFIG_FILE", "/dev/null")
            .env("AWS_SHARED_CREDENTIALS_FILE", "/dev/null")
            .current_dir(dir)
            .output()
            .unwrap();
        assert!(
            o.status.success(),
            "aws {args:?}: {}",
            String::from_utf8_lossy(&o.stderr)
        );
    };
    run(&["s3", "mb", "s3://bench-eu-west-1"], tmp.path());

    // 100 MB of incompressible bytes.
    let file = tmp.path().join("artifact.zip");
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
    let bytes: Vec<u8> = (0..100_000_000)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect();
    std::fs::write(&file, &bytes).unwrap();
    drop(bytes);
    let (mut s3, mut cp) = (Vec::new(), Vec::new());
    for i in 0..5 {
        let t = Instant::now();
        run(
            &[
                "s3",
                "cp",
                "--no-progress",
                file.to_str().unwrap(),
                &format!("s3://bench-eu-west-1/artifact-{i}.zip"),
            ],
            tmp.path(),
        );
        s3.push(t.elapsed().as_secs_f64());
        let t = Instant::now();
        let st = Command::new("cp")
            .arg(&file)
            .arg(tmp.path().join(format!("copy-{i}.zip")))
            .status()
            .unwrap();
        assert!(st.success());
        // A plain cp leaves the bytes in the page cache; the endpoint syncs each object to disk.
        let st = Command::new("sync").status().unwrap();
        assert!(st.success());
        cp.push(t.elapsed().as_secs_f64());
    }
    let (s3, cp) = (median(s3), median(cp));
    println!(
        "aws s3 cp, 100 MB to a local region: {s3:.2} s median of 5 (cp + sync: {cp:.2} s; ratio {:.1}x)",
        s3 / cp
    );
    // The same upload to moto's S3 (.venv-moto), a peer's local S3, when installed: most of the
    // time is the AWS CLI's own (reading, hashing and sending 8 MiB parts).
    let moto = repo().join(".venv-moto/bin/moto_server");
    if moto.is_file() {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let mut m = Command::new(&moto)
            .args(["-p", &port.to_string()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let endpoint = format!("http://127.0.0.1:{port}");
        let moto_run = |args: &[&str]| {
            Command::new(&aws)
                .args(["--endpoint-url", &endpoint])
                .args(args)
                .env("AWS_ACCESS_KEY_ID", "x")
                .env("AWS_SECRET_ACCESS_KEY", "y")
                .env("AWS_DEFAULT_REGION", "us-east-1")
                .env("AWS_CONFIG_FILE", "/dev/null")
                .output()
                .unwrap()
                .status
                .success()
        };
        let t0 = Instant::now();
        while !moto_run(&["s3", "mb", "s3://bench"]) {
            assert!(t0.elapsed().as_secs() < 30, "moto did not start");
            std::thread::sleep(std::time::Duration::from_millis(200));
        }
        let mut times = Vec::new();
        for i in 0..5 {
            let t = Instant::now();
            assert!(moto_run(&[
                "s3",
                "cp",
                "--no-progress",
                file.to_str().unwrap(),
                &format!("s3://bench/a-{i}.zip")
            ]));
            times.push(t.elapsed().as_secs_f64());
        }
        let _ = m.kill();
        let _ = m.wait();
        let t = median(times);
        println!(
            "aws s3 cp, 100 MB to moto's S3: {t:.2} s median of 5 (Meridian / moto: {:.2}x)",
            s3 / t
        );
    }

    // The example stack, packaged once, deployed (create) and deployed again with a change.
    let app = tmp.path().join("app");
    std::fs::create_dir_all(&app).unwrap();
    let example = repo().join("examples/hello-regions");
    let st = Command::new("cp")
        .arg("-r")
        .arg(example.join("src"))
        .arg(example.join("template.yaml"))
        .arg(&app)
        .status()
        .unwrap();
    assert!(st.success());
    run(
        &[
            "cloudformation",
            "package",
            "--template-file",
            "template.yaml",
            "--s3-bucket",
            "bench-eu-west-1",
            "--output-template-file",
            "packaged.yaml",
        ],
        &app,
    );
    let deploy = |greeting: &str| {
        let t = Instant::now();
        run(
            &[
                "cloudformation",
                "deploy",
                "--template-file",
                "packaged.yaml",
                "--stack-name",
                "hello",
                "--capabilities",
                "CAPABILITY_IAM",
                "--parameter-overrides",
                &format!("Greeting={greeting}"),
            ],
            &app,
        );
        t.elapsed().as_secs_f64()
    };
    let create = deploy("hello");
    let update = deploy("bonjour");
    println!("aws cloudformation deploy of examples/hello-regions: create {create:.1} s, update {update:.1} s (the CLI polls every 5 s)");
    let _ = server.kill();
    let _ = server.wait();
}
