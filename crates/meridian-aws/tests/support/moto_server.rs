//! moto's server for tests (shared by meridian-aws's and meridian-cli's tests): the stand-in for
//! AWS, from `.venv-moto` (scripts/setup.sh installs it, pinned), on a free loopback port, and
//! boto3 from the same virtualenv to check what it holds.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .unwrap()
}

/// A program of `.venv-moto`; `None` (the test says it is skipped) outside CI when it is missing.
pub fn moto_bin(name: &str) -> Option<PathBuf> {
    let p = repo().join(".venv-moto/bin").join(name);
    if p.is_file() {
        return Some(p);
    }
    if std::env::var_os("CI").is_some() {
        panic!("{} is missing; run scripts/setup.sh", p.display());
    }
    eprintln!(
        "\n!!! SKIPPING a test against moto: {} is missing. Run `bash scripts/setup.sh`.\n",
        p.display()
    );
    None
}

/// A moto server, stopped when dropped.
pub struct Moto {
    child: Child,
    pub url: String,
}

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts a moto server on a free port and waits until it listens.
pub fn start() -> Option<Moto> {
    start_with(&[])
}

/// The same, with settings of moto's in its environment (`MOTO_ECS_SERVICE_RUNNING`).
#[allow(dead_code)]
pub fn start_with(env: &[(&str, &str)]) -> Option<Moto> {
    let server = moto_bin("moto_server")?;
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let child = Command::new(server)
        .args(["-H", "127.0.0.1", "-p", &port.to_string()])
        .envs(env.iter().copied())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let started = Instant::now();
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(started.elapsed() < Duration::from_secs(30), "moto did not start");
        std::thread::sleep(Duration::from_millis(100));
    }
    Some(Moto {
        child,
        url: format!("http://127.0.0.1:{port}"),
    })
}

/// Runs a Python snippet with boto3 against `moto` (`s3(region)` gives an S3 client, and
/// `client(service, region)` any other); the snippet prints its JSON answer.
pub fn boto3(moto: &Moto, code: &str) -> serde_json::Value {
    let script = format!(
        "import boto3, json\ndef client(service, region):\n    return boto3.client(service, region_name=region, endpoint_url='{}', aws_access_key_id='testing', aws_secret_access_key='testing')\ndef s3(region):\n    return client('s3', region)\n{code}",
        moto.url
    );
    let out = Command::new(moto_bin("python").unwrap())
        .arg("-c")
        .arg(&script)
        .output()
        .unwrap();
    assert!(out.status.success(), "boto3: {}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&out.stdout)))
}
