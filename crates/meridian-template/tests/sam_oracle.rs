//! aws-sam-translator 1.115.0 as the oracle: the same templates through it (in `.venv`, see
//! scripts/test-peers/requirements.txt) and through Meridian's transform give equal output, or
//! equal errors.

#[path = "sam/helpers.rs"]
mod helpers;

use std::path::{Path, PathBuf};
use std::process::Command;

use meridian_template::sam::{transform, SamOptions};
use serde_json::Value;

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .unwrap()
}

/// The venv's Python with samtranslator importable, or None (after failing in CI or warning).
fn oracle_python() -> Option<PathBuf> {
    let p = std::env::var_os("MERIDIAN_TEST_PYTHON")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo().join(".venv/bin/python"));
    if !p.is_file() {
        helpers::missing(
            "SAM transform against aws-sam-translator (oracle)",
            &format!(
                "{} is missing; run scripts/setup.sh (it installs scripts/test-peers/requirements.txt)",
                p.display()
            ),
        );
        return None;
    }
    let ok = Command::new(&p)
        .args([
            "-c",
            "import samtranslator, sys; sys.exit(0 if samtranslator.__version__ == '1.115.0' else 1)",
        ])
        .status()
        .map(|s| s.success())
        .unwrap_or(false);
    if !ok {
        helpers::missing(
            "SAM transform against aws-sam-translator (oracle)",
            &format!("aws-sam-translator 1.115.0 is not importable by {}; pip install -r scripts/test-peers/requirements.txt", p.display()),
        );
        return None;
    }
    Some(p)
}

fn oracle(python: &Path, text: &str, name: &str) -> Value {
    let dir = std::env::temp_dir().join(format!("meridian-sam-oracle-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join(name.replace('/', "_"));
    std::fs::write(&path, text).unwrap();
    let driver = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/sam/translate.py");
    let out = Command::new(python)
        .arg(&driver)
        .arg(&path)
        .output()
        .expect("run the oracle");
    let _ = std::fs::remove_file(&path);
    assert!(
        out.status.success(),
        "{name}: oracle failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("oracle prints JSON")
}

/// Template texts to compare: (name, text).
fn cases() -> Vec<(String, String)> {
    let mut cases = Vec::new();
    let shared = helpers::shared_dir().join("fixtures");
    let integration = shared.join("serverless-application-model/integration");
    let mut shared_found = 0;
    if let Ok(entries) = std::fs::read_dir(&integration) {
        let mut names: Vec<PathBuf> = entries.filter_map(|e| e.ok()).map(|e| e.path()).collect();
        names.sort();
        for p in names.into_iter().filter(|p| p.extension().is_some_and(|e| e == "yaml")) {
            let text = std::fs::read_to_string(&p)
                .unwrap()
                .replace("${codeuri}", "s3://sam-demo-bucket/code.zip");
            cases.push((
                format!("integration/{}", p.file_name().unwrap().to_string_lossy()),
                text,
            ));
            shared_found += 1;
        }
    }
    let pipeline = shared.join("multi-region-codepipeline/template.yaml");
    if let Ok(text) = std::fs::read_to_string(&pipeline) {
        // as `aws cloudformation package` leaves it
        let text = text.replace(
            "CodeUri: ./target",
            "CodeUri: s3://artifacts-us-east-1/4f1d2a9c0b7e.zip",
        );
        cases.push(("multi-region-codepipeline/template.yaml".into(), text));
        shared_found += 1;
    }
    if shared_found < 3 {
        helpers::missing(
            "SAM oracle comparison of the shared fixtures",
            &format!(
                "fixtures under {} are absent (found {shared_found} of 3)",
                shared.display()
            ),
        );
    }
    let hello = repo().join("examples/hello-regions/template.yaml");
    let text = std::fs::read_to_string(&hello).expect("examples/hello-regions/template.yaml");
    cases.push((
        "examples/hello-regions/template.yaml".into(),
        text.replace(
            "CodeUri: src/",
            "CodeUri: s3://artifacts-us-east-1/hello-regions/9b1c0e.zip",
        ),
    ));
    let own = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/sam/templates");
    let mut names: Vec<PathBuf> = std::fs::read_dir(&own)
        .unwrap()
        .filter_map(|e| e.ok())
        .map(|e| e.path())
        .collect();
    names.sort();
    for p in names {
        cases.push((
            format!("templates/{}", p.file_name().unwrap().to_string_lossy()),
            std::fs::read_to_string(&p).unwrap(),
        ));
    }
    cases
}

#[test]
fn transform_agrees_with_aws_sam_translator() {
    let Some(python) = oracle_python() else { return };
    let cases = cases();
    assert!(cases.len() >= 10, "only {} templates", cases.len());
    let mut failures = Vec::new();
    for (name, text) in &cases {
        let expected = oracle(&python, text, name);
        let input = helpers::parse_template(name, text);
        let actual = match transform(&input, &SamOptions::default()) {
            Ok(v) => v,
            Err(e) => e.to_aws_json(),
        };
        if actual != expected {
            failures.push(format!("{name}:\n  {}", helpers::diff(&expected, &actual).join("\n  ")));
        }
    }
    eprintln!(
        "SAM oracle: {} templates compared, {} differ",
        cases.len(),
        failures.len()
    );
    assert!(
        failures.is_empty(),
        "{} of {} differ from aws-sam-translator:\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n")
    );
}
