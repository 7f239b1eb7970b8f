//! The `meridian lambda` and `meridian serve` commands, run as the real binary.

use serde_json::Value;
use std::io::{BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../meridian-local/tests/fixtures/python")
}

const PREFIX: &str = "meridian-lambda-cli-tests-";

/// This run's directory for test data. Directories left by earlier runs (whose process is gone)
/// are removed the first time, so repeated runs do not fill the temp directory.
fn test_root() -> &'static Path {
    static ROOT: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    ROOT.get_or_init(|| {
        let base = std::env::temp_dir();
        #[cfg(target_os = "linux")]
        if let Ok(entries) = std::fs::read_dir(&base) {
            for e in entries.flatten() {
                let name = e.file_name().to_string_lossy().into_owned();
                if let Some(pid) = name.strip_prefix(PREFIX) {
                    if !Path::new("/proc").join(pid).exists() {
                        let _ = std::fs::remove_dir_all(e.path());
                    }
                }
            }
        }
        let root = base.join(format!("{PREFIX}{}", std::process::id()));
        std::fs::create_dir_all(&root).unwrap();
        root
    })
}

fn temp_dir(tag: &str) -> PathBuf {
    let d = test_root().join(tag);
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn meridian(data: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_meridian"))
        .arg("--data-dir")
        .arg(data)
        .args(args)
        .env_remove("AWS_REGION")
        .output()
        .unwrap()
}

fn ok(data: &Path, args: &[&str]) -> String {
    let out = meridian(data, args);
    assert!(
        out.status.success(),
        "meridian {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

struct Served(Child);

impl Drop for Served {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Starts `meridian serve --port 0` and returns it with the port it printed.
fn serve(data: &Path) -> (Served, u16) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_meridian"))
        .arg("--data-dir")
        .arg(data)
        .args(["serve", "--port", "0"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let port = line
        .trim()
        .rsplit(':')
        .next()
        .unwrap()
        .parse()
        .unwrap_or_else(|_| panic!("no endpoint in `{line}`"));
    (Served(child), port)
}

fn post(port: u16, path: &str, body: &str) -> (u16, String) {
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    write!(
        s,
        "POST {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap();
    let (head, body) = out.split_once("\r\n\r\n").unwrap();
    (head.split(' ').nth(1).unwrap().parse().unwrap(), body.to_string())
}

#[test]
fn lambda_commands_manage_and_invoke_functions() {
    let data = temp_dir("manage");
    let code = fixtures();
    let code = code.to_str().unwrap();
    let base = ["--region", "eu-west-1", "--function-name", "tag"];
    let created = ok(
        &data,
        &[
            &["lambda", "create-function"][..],
            &base,
            &[
                "--runtime",
                "python3.11",
                "--handler",
                "handler.tag",
                "--code-dir",
                code,
                "--environment",
                "TAG=one",
            ],
        ]
        .concat(),
    );
    assert_eq!(
        created.trim(),
        "arn:aws:lambda:eu-west-1:123456789012:function:tag:$LATEST"
    );
    assert_eq!(
        ok(&data, &[&["lambda", "publish-version"][..], &base].concat()).trim(),
        created.trim().replace("$LATEST", "1")
    );
    ok(
        &data,
        &[
            &["lambda", "create-alias"][..],
            &base,
            &["--name", "live", "--function-version", "1"],
        ]
        .concat(),
    );

    let out = ok(&data, &["lambda", "invoke", "--region", "eu-west-1", "tag:live"]);
    assert_eq!(out.trim(), "\"one\"");

    let listed: Value = serde_json::from_str(&ok(
        &data,
        &["--output", "json", "lambda", "list", "--region", "eu-west-1"],
    ))
    .unwrap();
    assert_eq!(listed["Functions"][0]["FunctionName"], "tag");
    assert_eq!(listed["Functions"][0]["Environment"]["Variables"]["TAG"], "one");
    let empty: Value = serde_json::from_str(&ok(
        &data,
        &["--output", "json", "lambda", "list", "--region", "us-east-1"],
    ))
    .unwrap();
    assert_eq!(empty["Functions"], Value::Array(vec![]));

    // Weighted routing needs a second published version.
    ok(
        &data,
        &[
            &["lambda", "update-function-code"][..],
            &base,
            &["--zip-file", &write_zip(&data, "print('changed')")],
        ]
        .concat(),
    );
    ok(&data, &[&["lambda", "publish-version"][..], &base].concat());
    let alias: Value = serde_json::from_str(&ok(
        &data,
        &[
            &["--output", "json", "lambda", "update-alias"][..],
            &base,
            &["--name", "live", "--routing-config", "2=0.25"],
        ]
        .concat(),
    ))
    .unwrap();
    assert_eq!(alias["RoutingConfig"]["AdditionalVersionWeights"]["2"], 0.25);
    let bad = meridian(
        &data,
        &[
            &["lambda", "update-alias"][..],
            &base,
            &["--name", "live", "--routing-config", "2=1.5"],
        ]
        .concat(),
    );
    assert_eq!(bad.status.code(), Some(2));

    // A failing function and an unknown one exit 1 and say why on stderr.
    let failing = meridian(&data, &["lambda", "invoke", "--region", "eu-west-1", "tag:2"]);
    assert_eq!(failing.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&failing.stdout).contains("Runtime.ImportModuleError"));
    let missing = meridian(&data, &["lambda", "invoke", "--region", "eu-west-1", "nope"]);
    assert_eq!(missing.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&missing.stderr).contains("ResourceNotFoundException"));

    let metrics: Value = serde_json::from_str(&ok(
        &data,
        &[
            &["--output", "json", "lambda", "metrics"][..],
            &base,
            &["--qualifier", "live"],
        ]
        .concat(),
    ))
    .unwrap();
    let invocations: u64 = metrics
        .as_array()
        .unwrap()
        .iter()
        .map(|b| b["invocations"].as_u64().unwrap())
        .sum();
    assert_eq!(invocations, 1);
    let text = ok(&data, &[&["lambda", "metrics"][..], &base].concat());
    assert!(text.starts_with("MINUTE (UTC)"), "{text}");

    ok(&data, &[&["lambda", "delete-function"][..], &base].concat());
    assert_eq!(
        meridian(&data, &["lambda", "get", "--region", "eu-west-1", "tag"])
            .status
            .code(),
        Some(1)
    );
    let bad_region = meridian(&data, &["lambda", "list", "--region", "eu-wset-1"]);
    assert_eq!(bad_region.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&bad_region.stderr).contains("did you mean `eu-west-1`"));
}

/// A zip with one broken `handler.py`, so that the version made from it fails to import.
fn write_zip(dir: &Path, text: &str) -> String {
    let path = dir.join("broken.zip");
    // `python3 -m zipfile` is a real, independent zip writer.
    let src = dir.join("broken-src");
    std::fs::create_dir_all(&src).unwrap();
    std::fs::write(
        src.join("handler.py"),
        format!("{text}\nraise ImportError('broken on purpose')\n"),
    )
    .unwrap();
    let st = Command::new("python3")
        .args(["-m", "zipfile", "-c"])
        .arg(&path)
        .arg(src.join("handler.py"))
        .status()
        .unwrap();
    assert!(st.success());
    path.display().to_string()
}

#[test]
fn serve_sees_functions_created_by_another_process() {
    let data = temp_dir("serve");
    let (served, port) = serve(&data);
    // Created after the server started, by a separate `meridian` process.
    ok(
        &data,
        &[
            "lambda",
            "create-function",
            "--region",
            "us-east-1",
            "--function-name",
            "echo",
            "--runtime",
            "python3.11",
            "--handler",
            "handler.echo",
            "--code-dir",
            fixtures().to_str().unwrap(),
        ],
    );
    let (status, body) = post(port, "/2015-03-31/functions/echo/invocations", r#"{"from":"http"}"#);
    assert_eq!(status, 200, "{body}");
    let v: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["event"]["from"], "http");
    let (status, body) = post(port, "/2015-03-31/functions/other/invocations", "{}");
    assert_eq!(status, 404);
    assert!(body.contains("Function not found"));

    // SIGTERM stops the server cleanly; what it measured and logged is on disk for other commands.
    let mut served = served;
    // SAFETY: sending a signal to a child process we started and still own.
    let rc = unsafe { libc::kill(served.0.id() as libc::pid_t, libc::SIGTERM) };
    assert_eq!(rc, 0);
    let status = served.0.wait().unwrap();
    assert!(status.success(), "serve exited with {status}");
    let metrics: Value = serde_json::from_str(&ok(
        &data,
        &[
            "--output",
            "json",
            "lambda",
            "metrics",
            "--region",
            "us-east-1",
            "--function-name",
            "echo",
        ],
    ))
    .unwrap();
    assert_eq!(metrics[0]["invocations"], 1);
    let log = std::fs::read_to_string(data.join("regions/us-east-1/lambda/logs/echo.log")).unwrap();
    assert!(
        log.contains("START RequestId:") && log.contains("REPORT RequestId:"),
        "{log}"
    );
}

#[test]
fn a_runtime_other_than_the_local_interpreter_runs_with_a_warning() {
    let data = temp_dir("version-warning");
    ok(
        &data,
        &[
            "lambda",
            "create-function",
            "--function-name",
            "old",
            "--runtime",
            "python3.8",
            "--handler",
            "handler.tag",
            "--code-dir",
            fixtures().to_str().unwrap(),
            "--environment",
            "TAG=still runs",
        ],
    );
    let out = meridian(&data, &["lambda", "invoke", "old"]);
    assert!(out.status.success());
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "\"still runs\"");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("warning: functions with runtime python3.8 run on the local Python 3."),
        "{stderr}"
    );
}
