//! `meridian validate` and `meridian graph` as a user runs them: exit codes, JSON, expansion.

use std::path::PathBuf;
use std::process::{Command, Output};

fn meridian(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_meridian"))
        .args(args)
        .current_dir(root())
        .output()
        .expect("run meridian")
}

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn json(out: &Output) -> serde_json::Value {
    serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("stdout is not JSON ({e}): {}", String::from_utf8_lossy(&out.stdout)))
}

const EXAMPLE: &str = "examples/hello-regions/meridian.yaml";
const BROKEN: &str = "crates/meridian-pipeline/tests/catalogue/cfn-no-artifact-store-in-region.yaml";

#[test]
fn valid_definition_exits_zero_with_a_summary() {
    let out = meridian(&["validate", EXAMPLE]);
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("pipeline `hello-regions`: 5 stages, 9 actions"),
        "{stderr}"
    );
    assert!(stderr.contains("valid: 0 error(s), 0 warning(s)"));
    assert!(out.stdout.is_empty(), "data only goes to stdout when asked for");
}

#[test]
fn errors_exit_one_and_json_has_every_field() {
    let out = meridian(&["validate", "--output", "json", BROKEN, EXAMPLE]);
    assert_eq!(out.status.code(), Some(1));
    let v = json(&out);
    assert_eq!(v["valid"], false);
    let d = &v["diagnostics"][0];
    for key in ["severity", "message", "file", "line", "column", "help"] {
        assert!(!d[key].is_null(), "diagnostic without {key}: {d}");
    }
    assert_eq!(d["severity"], "error");
    assert_eq!(d["file"], BROKEN);
    let names: Vec<&str> = v["pipelines"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["Pipeline", "hello-regions"]);
    let stages = &v["pipelines"][1]["stages"];
    assert_eq!(stages[4]["actions"][0]["region"], "eu-west-1");
    assert_eq!(v["pipelines"][1]["artifactStores"].as_array().unwrap().len(), 3);
}

#[test]
fn unreadable_input_exits_two() {
    let out = meridian(&["validate", "does/not/exist.yaml"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("cannot read `does/not/exist.yaml`"));
    let out = meridian(&["validate", "crates/meridian-pipeline/tests/catalogue/cfn-syntax.yaml"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("invalid YAML"));
}

#[test]
fn expansion_validates_again_as_codepipeline_json() {
    let out = meridian(&["validate", "--expanded", EXAMPLE]);
    assert_eq!(out.status.code(), Some(0));
    let v = json(&out);
    assert_eq!(v["pipeline"]["pipelineType"], "V2");
    let dir = std::env::temp_dir().join(format!("meridian-expanded-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("expanded.json");
    std::fs::write(&file, &out.stdout).unwrap();
    let again = meridian(&["validate", "--output", "json", file.to_str().unwrap()]);
    assert_eq!(
        again.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&again.stdout)
    );
    assert_eq!(json(&again)["pipelines"][0]["format"], "codepipeline-json");
    std::fs::remove_dir_all(dir).ok();
}

#[test]
fn params_and_pipeline_selection() {
    let two = "crates/meridian-pipeline/tests/valid/cfn-two-regions.yaml";
    let out = meridian(&[
        "validate",
        "--output",
        "json",
        "--param",
        "BucketPrefix=Not_Allowed",
        two,
    ]);
    assert_eq!(out.status.code(), Some(1));
    assert!(json(&out)["diagnostics"][0]["message"]
        .as_str()
        .unwrap()
        .contains("--param BucketPrefix=Not_Allowed"));
    let out = meridian(&["validate", "--pipeline", "Nope", two]);
    assert_eq!(out.status.code(), Some(1));
    let out = meridian(&["validate", "--param", "novalue", two]);
    assert_eq!(out.status.code(), Some(2), "clap rejects a --param without =");
}

#[test]
fn graph_in_three_formats() {
    let text = meridian(&["graph", EXAMPLE]);
    let text = String::from_utf8_lossy(&text.stdout);
    assert!(text.contains("run order 1 (2 in parallel)"), "{text}");
    assert!(
        text.contains("Deploy-eu-west-1 (Deploy/CloudFormation) @ eu-west-1  [PackagedOutput] -> []"),
        "{text}"
    );
    let mermaid = meridian(&["graph", "--format", "mermaid", EXAMPLE]);
    let mermaid = String::from_utf8_lossy(&mermaid.stdout);
    assert!(mermaid.starts_with("flowchart LR"));
    assert!(mermaid.contains("s1a0 -->|BuildOutput| s2a0"), "{mermaid}");
    let dot = meridian(&["graph", "--format", "dot", EXAMPLE]);
    let dot = String::from_utf8_lossy(&dot.stdout);
    assert!(dot.starts_with("digraph \"hello-regions\""));
    assert!(dot.contains("s2a0 -> s4a0 [label=\"PackagedOutput\"]"), "{dot}");
}

fn meridian_env(args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut c = Command::new(env!("CARGO_BIN_EXE_meridian"));
    c.args(args)
        .current_dir(root())
        .env_remove("AWS_REGION")
        .env_remove("AWS_DEFAULT_REGION");
    for (k, v) in env {
        c.env(k, v);
    }
    c.output().expect("run meridian")
}

/// The home region (issue 17): `--region`, else the definition, else AWS_REGION /
/// AWS_DEFAULT_REGION, else us-east-1. An action in it needs no store of its own.
#[test]
fn the_home_region_comes_from_the_flag_the_environment_or_us_east_1() {
    // one `artifactStore`; DeployUsEast1 runs in us-east-1, DeployEuWest1 in eu-west-1
    const ONE_STORE: &str = "crates/meridian-pipeline/tests/catalogue/api-cross-region-needs-stores.json";
    let cross = |out: &Output| -> Vec<String> {
        json(out)["diagnostics"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|d| d["code"] == "cross-region-needs-stores")
            .map(|d| d["message"].as_str().unwrap().split('`').nth(1).unwrap().to_string())
            .collect()
    };
    // its `metadata.pipelineArn` says us-east-1, whatever the environment says
    let out = meridian_env(
        &["validate", "--output", "json", ONE_STORE],
        &[("AWS_REGION", "eu-west-1")],
    );
    assert_eq!(cross(&out), ["DeployEuWest1"]);
    // without it: the environment's region, else us-east-1
    let dir = std::env::temp_dir().join(format!("meridian-home-region-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let no_arn = dir.join("no-arn.json");
    let text = std::fs::read_to_string(root().join(ONE_STORE)).unwrap();
    std::fs::write(&no_arn, text.replace("arn:aws:codepipeline:us-east-1:", "")).unwrap();
    let no_arn = no_arn.to_str().unwrap();
    let out = meridian_env(&["validate", "--output", "json", no_arn], &[]);
    assert_eq!(cross(&out), ["DeployEuWest1"], "us-east-1 by default");
    let out = meridian_env(
        &["validate", "--output", "json", no_arn],
        &[("AWS_DEFAULT_REGION", "eu-west-1")],
    );
    assert_eq!(cross(&out), ["DeployUsEast1"]);
    let out = meridian_env(
        &["validate", "--output", "json", no_arn],
        &[("AWS_REGION", "us-west-2"), ("AWS_DEFAULT_REGION", "eu-west-1")],
    );
    assert_eq!(
        cross(&out),
        ["DeployUsEast1", "DeployEuWest1"],
        "AWS_REGION before AWS_DEFAULT_REGION"
    );
    std::fs::remove_dir_all(&dir).ok();
    let out = meridian_env(
        &["validate", "--output", "json", "--region", "us-east-1", ONE_STORE],
        &[("AWS_REGION", "eu-west-1")],
    );
    assert_eq!(cross(&out), ["DeployEuWest1"], "--region wins over the environment");
    assert_eq!(json(&out)["pipelines"][0]["homeRegion"], "us-east-1");
    let out = meridian_env(&["validate", "--region", "eu-west-9", ONE_STORE], &[]);
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("--region: `eu-west-9` is not an AWS region name"),
        "{stderr}"
    );
}

#[test]
fn stack_name_and_account_id_are_the_templates_pseudo_parameters() {
    const TEMPLATE: &str = "crates/meridian-pipeline/tests/valid/cfn-realworld.yaml";
    let projects = |out: &Output| -> Vec<String> {
        json(out)["expanded"][0]["pipeline"]["meridian"]["buildProjects"]
            .as_object()
            .unwrap()
            .keys()
            .cloned()
            .collect()
    };
    let out = meridian_env(&["validate", "--output", "json", "--expanded", TEMPLATE], &[]);
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(
        projects(&out),
        ["cfn-realworld-build"],
        "the file's base name by default"
    );
    let out = meridian_env(
        &[
            "validate",
            "--output",
            "json",
            "--expanded",
            "--stack-name",
            "shop",
            "--account-id",
            "210987654321",
            TEMPLATE,
        ],
        &[],
    );
    assert_eq!(projects(&out), ["shop-build"]);
    let out = meridian_env(
        &["graph", "--stack-name", "shop", "--region", "eu-west-1", TEMPLATE],
        &[],
    );
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
}
