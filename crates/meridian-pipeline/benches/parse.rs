//! Parse + validate time for a generated 50-stage, 1,000-action pipeline (target: under 50 ms).
//! Run with `cargo bench -p meridian-pipeline --bench parse`.

use meridian_pipeline::{load_str, LoadOptions};
use serde_json::json;
use std::time::Instant;

fn generate(stages: usize, actions_per_stage: usize) -> String {
    let regions = [
        "us-east-1",
        "us-east-2",
        "us-west-1",
        "us-west-2",
        "eu-west-1",
        "eu-central-1",
        "ap-southeast-2",
        "ap-northeast-1",
        "sa-east-1",
        "ca-central-1",
    ];
    let mut out = Vec::new();
    out.push(json!({"name": "Source", "actions": [{"name": "Source", "namespace": "Src", "actionTypeId": {"category": "Source", "owner": "AWS", "provider": "CodeCommit", "version": "1"}, "configuration": {"RepositoryName": "app", "BranchName": "main"}, "outputArtifacts": [{"name": "SourceOutput"}]}]}));
    for s in 1..stages {
        let actions: Vec<_> = (0..actions_per_stage + usize::from(s <= 19))
            .map(|a| {
                let region = regions[a % regions.len()];
                json!({
                    "name": format!("Deploy{s}x{a}"),
                    "region": region,
                    "runOrder": 1 + a / 10,
                    "namespace": format!("D{s}x{a}"),
                    "actionTypeId": {"category": "Deploy", "owner": "AWS", "provider": "CloudFormation", "version": "1"},
                    "inputArtifacts": [{"name": "SourceOutput"}],
                    "outputArtifacts": [{"name": format!("Out{s}x{a}")}],
                    "configuration": {"ActionMode": "CREATE_UPDATE", "StackName": format!("app-{s}-{a}"), "TemplatePath": "SourceOutput::template.yaml", "ParameterOverrides": "{\"Commit\": \"#{Src.CommitId}\"}"}
                })
            })
            .collect();
        out.push(json!({"name": format!("Stage{s}"), "actions": actions}));
    }
    let stores: serde_json::Map<String, serde_json::Value> = regions
        .iter()
        .map(|r| {
            (
                r.to_string(),
                json!({"type": "S3", "location": format!("artifacts-{r}")}),
            )
        })
        .collect();
    serde_json::to_string_pretty(&json!({"pipeline": {"name": "big", "artifactStores": stores, "stages": out}}))
        .unwrap()
}

fn main() {
    // 1 source action + 49 stages of 20 or 21 deploy actions = 1,000 actions.
    let text = generate(50, 20);
    let probe = load_str("big.json", &text, &LoadOptions::default());
    let actions: usize = probe.pipelines[0].stages.iter().map(|s| s.actions.len()).sum();
    assert!(!probe.has_errors(), "the generated pipeline must be valid");
    let mut times = Vec::new();
    for _ in 0..30 {
        let t = Instant::now();
        let loaded = load_str("big.json", &text, &LoadOptions::default());
        times.push(t.elapsed().as_secs_f64() * 1000.0);
        assert_eq!(loaded.pipelines.len(), 1);
    }
    times.sort_by(|a, b| a.partial_cmp(b).unwrap());
    println!(
        "parse+validate: {} stages, {actions} actions, {} KiB of JSON: median {:.2} ms, max {:.2} ms (target < 50 ms)",
        probe.pipelines[0].stages.len(),
        text.len() / 1024,
        times[times.len() / 2],
        times[times.len() - 1]
    );
}
