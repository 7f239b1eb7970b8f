//! Conformance with third-party clients, installed by `scripts/setup.sh` into `.venv`: boto3 and
//! the AWS CLI call `meridian serve` through `--endpoint-url` in two regions, and a handler runs
//! under `awslambdaric`. Outside CI the test is skipped (loudly) when the virtualenv is missing;
//! in CI (`CI` set) a missing virtualenv fails it.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .unwrap()
}

fn venv_python() -> Option<PathBuf> {
    let p = std::env::var_os("MERIDIAN_TEST_PYTHON")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo().join(".venv/bin/python"));
    if p.is_file() {
        return Some(p);
    }
    if std::env::var_os("CI").is_some() {
        panic!(
            "the test peers' Python ({}) is missing; run scripts/setup.sh",
            p.display()
        );
    }
    eprintln!(
        "\n!!!!!!!!\n!!! SKIPPING lambda conformance: {} is missing. Run `bash scripts/setup.sh`.\n!!!!!!!!\n",
        p.display()
    );
    None
}

struct Served(Child);

impl Drop for Served {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn meridian(data: &Path, python: &Path, args: &[&str]) {
    let out = Command::new(env!("CARGO_BIN_EXE_meridian"))
        .arg("--data-dir")
        .arg(data)
        .args(args)
        .env("MERIDIAN_PYTHON", python)
        .env_remove("AWS_REGION")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "meridian {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        let target = to.join(e.file_name());
        if e.file_type().unwrap().is_dir() {
            if e.file_name() != "__pycache__" {
                copy_dir(&e.path(), &target);
            }
        } else {
            std::fs::copy(e.path(), target).unwrap();
        }
    }
}

/// A package as `pip install -t . awslambdaric` would lay it out, plus the handler.
fn awslambdaric_package(python: &Path, into: &Path) {
    let out = Command::new(python)
        .args([
            "-c",
            "import awslambdaric, os; print(os.path.dirname(os.path.dirname(awslambdaric.__file__)))",
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "awslambdaric is not installed in {}",
        python.display()
    );
    let site = PathBuf::from(String::from_utf8(out.stdout).unwrap().trim());
    for e in std::fs::read_dir(&site).unwrap() {
        let e = e.unwrap();
        let name = e.file_name().to_string_lossy().into_owned();
        if name == "awslambdaric" || name == "simplejson" {
            copy_dir(&e.path(), &into.join(&name));
        } else if name.starts_with("runtime_client") || name == "snapshot_restore_py.py" {
            std::fs::copy(e.path(), into.join(&name)).unwrap();
        }
    }
    std::fs::copy(repo().join("scripts/test-peers/ric/app.py"), into.join("app.py")).unwrap();
}

#[test]
fn boto3_aws_cli_and_awslambdaric_work_against_meridian_serve() {
    let Some(python) = venv_python() else { return };
    let data = std::env::temp_dir().join(format!("meridian-conformance-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&data);
    std::fs::create_dir_all(&data).unwrap();
    let fixtures = repo().join("crates/meridian-local/tests/fixtures/python");
    let fixtures = fixtures.to_str().unwrap();

    let mut child = Command::new(env!("CARGO_BIN_EXE_meridian"))
        .arg("--data-dir")
        .arg(&data)
        .args(["serve", "--port", "0"])
        .env("MERIDIAN_PYTHON", &python)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let _served = Served(child);
    let endpoint = line.trim().to_string();
    assert!(endpoint.starts_with("http://127.0.0.1:"), "{endpoint}");

    let create = |region: &str, name: &str, handler: &str, code: &str, extra: &[&str]| {
        let mut args = vec![
            "lambda",
            "create-function",
            "--region",
            region,
            "--function-name",
            name,
            "--runtime",
            "python3.11",
            "--handler",
            handler,
            "--code-dir",
            code,
        ];
        args.extend_from_slice(extra);
        meridian(&data, &python, &args);
    };
    for region in ["us-east-1", "eu-west-1"] {
        create(region, "echo", "handler.echo", fixtures, &[]);
        meridian(
            &data,
            &python,
            &[
                "lambda",
                "publish-version",
                "--region",
                region,
                "--function-name",
                "echo",
            ],
        );
        meridian(
            &data,
            &python,
            &[
                "lambda",
                "create-alias",
                "--region",
                region,
                "--function-name",
                "echo",
                "--name",
                "live",
                "--function-version",
                "1",
            ],
        );
    }
    create("us-east-1", "fail", "handler.fail", fixtures, &[]);
    create("us-east-1", "sleepy", "handler.sleep", fixtures, &["--timeout", "1"]);
    create(
        "us-east-1",
        "blocked",
        "handler.echo",
        fixtures,
        &["--reserved-concurrency", "0"],
    );
    let ric = data.join("ric-src");
    awslambdaric_package(&python, &ric);
    create("us-east-1", "ric", "app.handler", ric.to_str().unwrap(), &[]);

    let status = Command::new(&python)
        .arg(repo().join("scripts/test-peers/boto3_conformance.py"))
        .arg(&endpoint)
        .env_remove("AWS_PROFILE")
        .env("AWS_CONFIG_FILE", data.join("no-aws-config"))
        .env("AWS_SHARED_CREDENTIALS_FILE", data.join("no-aws-credentials"))
        .status()
        .unwrap();
    assert!(status.success(), "boto3 conformance checks failed (see output above)");

    // The AWS CLI, in eu-west-1: invoke with a payload, then read the result file.
    let aws = python.parent().unwrap().join("aws");
    let outfile = data.join("aws-out.json");
    let out = Command::new(&aws)
        .args([
            "lambda",
            "invoke",
            "--endpoint-url",
            &endpoint,
            "--region",
            "eu-west-1",
            "--function-name",
            "echo",
        ])
        .args(["--qualifier", "live", "--payload", r#"{"cli": true}"#])
        .arg(&outfile)
        .env("AWS_ACCESS_KEY_ID", "local")
        .env("AWS_SECRET_ACCESS_KEY", "local")
        .env("AWS_CONFIG_FILE", data.join("no-aws-config"))
        .env("AWS_SHARED_CREDENTIALS_FILE", data.join("no-aws-credentials"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "aws lambda invoke: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let meta: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        (meta["StatusCode"].as_i64(), meta["ExecutedVersion"].as_str()),
        (Some(200), Some("1"))
    );
    let result: serde_json::Value = serde_json::from_slice(&std::fs::read(&outfile).unwrap()).unwrap();
    assert_eq!(result["event"]["cli"], true);
    assert_eq!(result["env"]["AWS_REGION"], "eu-west-1");

    // A function error through the AWS CLI.
    let out = Command::new(&aws)
        .args([
            "lambda",
            "invoke",
            "--endpoint-url",
            &endpoint,
            "--region",
            "us-east-1",
            "--function-name",
            "fail",
        ])
        .arg(&outfile)
        .env("AWS_ACCESS_KEY_ID", "local")
        .env("AWS_SECRET_ACCESS_KEY", "local")
        .env("AWS_CONFIG_FILE", data.join("no-aws-config"))
        .output()
        .unwrap();
    let meta: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(meta["FunctionError"], "Unhandled");

    // An unknown function: the CLI names the AWS error.
    let out = Command::new(&aws)
        .args([
            "lambda",
            "get-function",
            "--endpoint-url",
            &endpoint,
            "--region",
            "eu-west-1",
            "--function-name",
            "fail",
        ])
        .env("AWS_ACCESS_KEY_ID", "local")
        .env("AWS_SECRET_ACCESS_KEY", "local")
        .env("AWS_CONFIG_FILE", data.join("no-aws-config"))
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("ResourceNotFoundException"));
    let _ = std::fs::remove_dir_all(&data);
}
