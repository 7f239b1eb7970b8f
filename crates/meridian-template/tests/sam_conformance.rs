//! The SAM transform against aws-sam-translator's own golden tests: for every
//! `input/<name>.yaml` of the fixtures, the transform equals `output/<name>.json` (or, for error
//! cases, its error JSON equals the golden error).

#[path = "sam/helpers.rs"]
mod helpers;

use meridian_template::sam::{transform, SamOptions};
use serde_json::Value;

#[test]
fn golden_translator_tests() {
    let dir = helpers::shared_dir().join("fixtures/serverless-application-model");
    let input_dir = dir.join("input");
    if !input_dir.is_dir() {
        helpers::missing(
            "SAM conformance (aws-sam-translator golden tests)",
            &format!("the fixtures directory {} is absent", input_dir.display()),
        );
        return;
    }
    let mut names: Vec<String> = std::fs::read_dir(&input_dir)
        .expect("read input dir")
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".yaml"))
        .collect();
    names.sort();
    assert!(!names.is_empty(), "no golden inputs in {}", input_dir.display());

    let mut failures = Vec::new();
    for name in &names {
        let input = helpers::read_template(&input_dir.join(name));
        let out_path = dir.join("output").join(name.replace(".yaml", ".json"));
        let expected: Value = serde_json::from_str(&std::fs::read_to_string(&out_path).expect("golden output"))
            .expect("golden output is JSON");
        let actual = match transform(&input, &SamOptions::default()) {
            Ok(v) => v,
            Err(e) => e.to_aws_json(),
        };
        if actual != expected {
            failures.push(format!("{name}:\n  {}", helpers::diff(&expected, &actual).join("\n  ")));
        }
    }
    eprintln!("SAM golden tests: {} checked, {} failed", names.len(), failures.len());
    assert!(
        failures.is_empty(),
        "{} of {} golden tests differ:\n{}",
        failures.len(),
        names.len(),
        failures.join("\n")
    );
}
