//! `meridian build` and `meridian secrets` as a user runs them: exit codes, artifacts, logs, masking.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

fn tmp(name: &str) -> PathBuf {
    let p = std::env::temp_dir().join(format!("meridian-build-cli-{name}-{}", std::process::id()));
    let _ = fs::remove_dir_all(&p);
    fs::create_dir_all(&p).unwrap();
    p
}

fn meridian(data: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_meridian"))
        .arg("--data-dir")
        .arg(data)
        .args(args)
        .env_remove("MERIDIAN_DATA_DIR")
        .output()
        .expect("run meridian")
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

fn fixture(rel: &str) -> Option<PathBuf> {
    let p = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../../shared/fixtures")
        .join(rel);
    if p.exists() {
        return Some(p);
    }
    if std::env::var_os("CI").is_some() {
        panic!("fixture {} is missing, and CI is set", p.display());
    }
    eprintln!(
        "SKIP!!! fixture {} is missing (../shared is absent); this test checked nothing",
        p.display()
    );
    None
}

#[test]
fn a_successful_build_exits_zero_copies_artifacts_and_keeps_its_log() {
    let root = tmp("ok");
    let src = root.join("app");
    fs::create_dir_all(src.join("lib")).unwrap();
    fs::write(src.join("lib/code.js"), "exports.handler = 1").unwrap();
    fs::write(
        src.join("buildspec.yml"),
        "version: 0.2\nenv:\n  exported-variables: [OUT]\nphases:\n  build:\n    commands:\n      - mkdir -p dist && cp lib/code.js dist/ && echo \"region=$AWS_REGION name=$NAME\"\n      - export OUT=done\nartifacts:\n  files: ['**/*']\n  base-directory: dist\n",
    )
    .unwrap();
    let data = root.join("data");
    let out_dir = root.join("out");
    let out = meridian(
        &data,
        &[
            "build",
            src.to_str().unwrap(),
            "--env",
            "NAME=meridian",
            "--region",
            "eu-west-1",
            "--output-dir",
            out_dir.to_str().unwrap(),
            "--verbose",
        ],
    );
    let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
    assert_eq!(out.status.code(), Some(0), "{stdout}\n{stderr}");
    assert!(
        stderr.contains("region=eu-west-1 name=meridian"),
        "--verbose streams the log: {stderr}"
    );
    assert!(stdout.contains("SUCCEEDED"), "{stdout}");
    assert!(stdout.contains("exported OUT=done"), "{stdout}");
    assert_eq!(
        fs::read_to_string(out_dir.join("code.js")).unwrap(),
        "exports.handler = 1"
    );
    let builds: Vec<_> = fs::read_dir(data.join("builds")).unwrap().collect();
    assert_eq!(builds.len(), 1);
    let dir = builds[0].as_ref().unwrap().path();
    let log = fs::read_to_string(dir.join("build.log")).unwrap();
    assert!(log.contains("region=eu-west-1 name=meridian"));
    assert!(dir.join("outcome.json").is_file());
    assert!(!src.join("dist").exists(), "the source directory is not changed");

    let out = meridian(&data, &["--output", "json", "build", src.to_str().unwrap()]);
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["status"], "SUCCEEDED");
    assert_eq!(v["exportedVariables"]["OUT"], "done");
}

#[test]
fn a_failed_build_exits_one() {
    let root = tmp("fail");
    fs::write(
        root.join("spec.yml"),
        "version: 0.2\nphases:\n  build:\n    commands: [\"exit 3\"]\n",
    )
    .unwrap();
    let out = meridian(
        &root.join("data"),
        &[
            "build",
            root.to_str().unwrap(),
            "--buildspec",
            root.join("spec.yml").to_str().unwrap(),
        ],
    );
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    assert!(text(&out.stdout).contains("FAILED"));
    assert!(text(&out.stdout).contains("exit status 3"));
}

#[test]
fn plan_prints_phases_without_running_and_rejects_invalid_buildspecs() {
    let Some(reference) = fixture("aws-codebuild-user-guide/build-spec-ref-example.buildspec.yml") else {
        return;
    };
    let root = tmp("plan");
    let data = root.join("data");
    let out = meridian(
        &data,
        &[
            "build",
            "--plan",
            "--buildspec",
            reference.to_str().unwrap(),
            root.to_str().unwrap(),
        ],
    );
    let stdout = text(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert!(stdout.contains("phase INSTALL"), "{stdout}");
    assert!(stdout.contains("$ mvn install"), "{stdout}");
    assert!(stdout.contains("secondary artifact artifact2:"), "{stdout}");
    assert!(!data.join("builds").exists(), "--plan runs nothing");

    fs::write(
        root.join("buildspec.yml"),
        "version: 0.2\nphases:\n  biuld:\n    commands: [ls]\n",
    )
    .unwrap();
    let out = meridian(&data, &["build", "--plan", root.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    let stderr = text(&out.stderr);
    assert!(stderr.contains("`biuld` is not a build phase"), "{stderr}");
    assert!(stderr.contains("buildspec.yml:3:3"), "{stderr}");
    assert!(stderr.contains("did you mean `build`"), "{stderr}");
}

#[test]
fn secrets_are_stored_encrypted_listed_without_values_and_masked_in_builds() {
    let root = tmp("secrets");
    let data = root.join("data");
    let out = meridian(
        &data,
        &[
            "secrets",
            "put",
            "--region",
            "us-west-2",
            "deploy-key",
            "s3cr3t-VALUE-42",
        ],
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    // from stdin, as a parameter
    let mut child = Command::new(env!("CARGO_BIN_EXE_meridian"))
        .arg("--data-dir")
        .arg(&data)
        .args([
            "secrets",
            "put",
            "--kind",
            "parameter",
            "--region",
            "us-west-2",
            "/ci/param",
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(b"param-VALUE-7\n").unwrap();
    assert!(child.wait().unwrap().success());

    let got = meridian(&data, &["secrets", "get", "--region", "us-west-2", "deploy-key"]);
    assert_eq!(text(&got.stdout), "s3cr3t-VALUE-42\n");
    let got = meridian(
        &data,
        &[
            "secrets",
            "get",
            "--kind",
            "parameter",
            "--region",
            "us-west-2",
            "/ci/param",
        ],
    );
    assert_eq!(text(&got.stdout), "param-VALUE-7\n");
    assert_eq!(
        meridian(&data, &["secrets", "get", "--region", "us-east-1", "deploy-key"])
            .status
            .code(),
        Some(1)
    );

    let list = meridian(&data, &["--output", "json", "secrets", "list", "--region", "us-west-2"]);
    let v: serde_json::Value = serde_json::from_slice(&list.stdout).unwrap();
    assert_eq!(v[0]["name"], "deploy-key");
    assert!(!text(&list.stdout).contains("s3cr3t"));
    let on_disk = fs::read_to_string(data.join("regions/us-west-2/secrets.json")).unwrap();
    assert!(!on_disk.contains("s3cr3t"));

    fs::write(
        root.join("buildspec.yml"),
        "version: 0.2\nenv:\n  secrets-manager:\n    KEY: deploy-key\n  parameter-store:\n    P: /ci/param\nphases:\n  build:\n    commands:\n      - echo \"key is $KEY, param is $P\"\n",
    )
    .unwrap();
    let out = meridian(
        &data,
        &["build", root.to_str().unwrap(), "--region", "us-west-2", "--verbose"],
    );
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert!(stderr.contains("key is ***, param is ***"), "{stderr}");
    assert!(!stderr.contains("s3cr3t") && !stderr.contains("param-VALUE"));
}

/// `--timeout` takes what CodeBuild takes (5 to 2160 minutes); 0 is refused, not stretched.
#[test]
fn build_timeouts_outside_codebuilds_range_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("buildspec.yml"),
        "version: 0.2\nphases:\n  build:\n    commands:\n      - echo hi\n",
    )
    .unwrap();
    for t in ["0", "4", "2161"] {
        let o = std::process::Command::new(env!("CARGO_BIN_EXE_meridian"))
            .arg("--data-dir")
            .arg(dir.path().join("data"))
            .args(["build", dir.path().to_str().unwrap(), "--timeout", t])
            .output()
            .unwrap();
        assert_eq!(o.status.code(), Some(2), "--timeout {t}");
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(
            err.contains("CodeBuild allows 5 to 2160 minutes"),
            "--timeout {t}: {err}"
        );
    }
}

/// A batch buildspec (issue 17): `meridian build` runs its builds and says how each ended.
#[test]
fn a_batch_build_runs_every_build_and_fails_as_codebuild_says() {
    let root = tmp("batch");
    let src = root.join("src");
    fs::create_dir_all(&src).unwrap();
    fs::write(
        src.join("buildspec.yml"),
        "version: 0.2
batch:
  build-graph:
    - identifier: compile
    - identifier: test
      depend-on: [compile]
      env:
        variables:
          FAIL: \"yes\"
    - identifier: publish
      depend-on: [test]
phases:
  build:
    commands:
      - echo building $CODEBUILD_BATCH_BUILD_IDENTIFIER
      - test \"$FAIL\" != yes
",
    )
    .unwrap();
    let data = root.join("data");
    let plan = meridian(&data, &["build", src.to_str().unwrap(), "--plan"]);
    assert_eq!(plan.status.code(), Some(0), "{}", text(&plan.stderr));
    assert!(
        text(&plan.stdout).contains("batch: build-graph of 3 build(s)"),
        "{}",
        text(&plan.stdout)
    );
    assert!(
        text(&plan.stdout).contains("  publish after test"),
        "{}",
        text(&plan.stdout)
    );
    let out = meridian(&data, &["build", src.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    assert!(stdout.contains("build compile: SUCCEEDED"), "{stdout}");
    assert!(stdout.contains("build test: FAILED"), "{stdout}");
    assert!(
        stdout.contains("build publish: NOT_RUN: the build `test` it depends on did not succeed"),
        "{stdout}"
    );
    assert!(stdout.contains("batch FAILED: 3 build(s)"), "{stdout}");
}
