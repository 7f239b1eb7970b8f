//! Pipeline definitions end to end: the catalogue of broken definitions (snapshots of what a user
//! sees), the third-party fixtures, real-world shapes, round trips and robustness.

use meridian_pipeline::model::{Pipeline, SourceFormat};
use meridian_pipeline::{load_str, LoadOptions, Loaded, Severity};
use std::path::{Path, PathBuf};

fn crate_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// ../shared/fixtures beside the project. CI always has it; elsewhere its absence is said loudly.
fn fixtures() -> Option<PathBuf> {
    let dir = crate_dir().join("../../../shared/fixtures");
    if dir.is_dir() {
        return Some(dir);
    }
    if std::env::var_os("CI").is_some() {
        panic!("../shared/fixtures is missing in CI: the fixture tests cannot run");
    }
    eprintln!("\n!!! ../shared/fixtures not found: SKIPPING the third-party fixture tests !!!\n");
    None
}

fn load(name: &str, text: &str) -> Loaded {
    load_str(name, text, &LoadOptions::default())
}

fn load_path(path: &Path, opts: &LoadOptions) -> Loaded {
    meridian_pipeline::load_files(&[path.to_path_buf()], opts)
}

fn render(l: &Loaded) -> String {
    l.diagnostics
        .iter()
        .map(|d| d.render(&l.sources, false))
        .collect::<Vec<_>>()
        .join("\n")
}

fn codes(l: &Loaded) -> Vec<&'static str> {
    l.diagnostics.iter().map(|d| d.code).collect()
}

fn sorted_files(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir).unwrap().map(|e| e.unwrap().path()).collect();
    files.sort();
    files
}

#[test]
fn catalogue_of_broken_definitions() {
    let files = sorted_files(&crate_dir().join("tests/catalogue"));
    assert!(files.len() >= 45, "the catalogue shrank to {} files", files.len());
    let mut formats = std::collections::BTreeSet::new();
    let mut kinds = std::collections::BTreeSet::new();
    for path in files {
        let file = path.file_name().unwrap().to_str().unwrap().to_string();
        let stem = file.rsplit_once('.').unwrap().0;
        let (format, expected) = stem.split_once('-').unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        let loaded = load(&format!("catalogue/{file}"), &text);
        let found = codes(&loaded);
        assert!(
            found.contains(&expected),
            "{file}: expected a `{expected}` diagnostic, found {found:?}"
        );
        // Every diagnostic names its place and says how to fix it.
        for d in &loaded.diagnostics {
            assert!(d.span.is_some(), "{file}: `{}` has no place", d.message);
            assert!(d.help.is_some(), "{file}: `{}` has no help", d.message);
        }
        for p in &loaded.pipelines {
            let want = match format {
                "api" => SourceFormat::CodepipelineJson,
                "cfn" => SourceFormat::Cloudformation,
                "native" => SourceFormat::Native,
                other => panic!("unknown catalogue prefix {other}"),
            };
            assert_eq!(p.format, want, "{file} was read as the wrong format");
        }
        formats.insert(format.to_string());
        kinds.insert(expected.to_string());
        insta::assert_snapshot!(stem.to_string(), render(&loaded));
    }
    assert_eq!(formats.len(), 3);
    assert!(kinds.len() >= 20, "only {} distinct mistakes", kinds.len());
}

fn valid_definitions() -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = sorted_files(&crate_dir().join("tests/valid"))
        .into_iter()
        .map(|p| {
            (
                format!("valid/{}", p.file_name().unwrap().to_str().unwrap()),
                std::fs::read_to_string(p).unwrap(),
            )
        })
        .collect();
    if let Some(f) = fixtures() {
        for rel in [
            "multi-region-codepipeline/deployment-pipeline/pipeline.yaml",
            "aws-codepipeline-user-guide/cross-region-update-pipeline-output.json",
        ] {
            out.push((rel.to_string(), std::fs::read_to_string(f.join(rel)).unwrap()));
        }
    }
    out
}

#[test]
fn valid_definitions_have_no_errors() {
    for (name, text) in valid_definitions() {
        let loaded = load(&name, &text);
        let errors: Vec<String> = loaded
            .diagnostics
            .iter()
            .filter(|d| d.severity == Severity::Error)
            .map(|d| d.message.clone())
            .collect();
        assert!(errors.is_empty(), "{name}: {errors:?}\n{}", render(&loaded));
        assert!(!loaded.pipelines.is_empty(), "{name}: no pipeline");
    }
}

/// Parse, print (the API JSON form), parse: the same model.
#[test]
fn round_trip_through_the_printed_model() {
    for (name, text) in valid_definitions() {
        let first = load(&name, &text);
        for p in &first.pipelines {
            let printed = serde_json::to_string_pretty(&serde_json::json!({ "pipeline": p })).unwrap();
            let second = load("printed.json", &printed);
            assert!(
                !second.has_errors(),
                "{name}: the printed model does not validate:\n{}",
                render(&second)
            );
            let mut again: Pipeline = second.pipelines.into_iter().next().unwrap();
            assert_eq!(again.format, SourceFormat::CodepipelineJson);
            again.format = p.format;
            assert_eq!(&again, p, "{name}: the model changed in a round trip");
            // And printing it again gives the same bytes.
            let reprinted = serde_json::to_string_pretty(&serde_json::json!({ "pipeline": again })).unwrap();
            assert_eq!(printed, reprinted);
        }
    }
}

#[test]
fn the_symphoniacloud_pipeline() {
    let Some(f) = fixtures() else { return };
    let path = f.join("multi-region-codepipeline/deployment-pipeline/pipeline.yaml");
    let loaded = load_path(&path, &LoadOptions::default());
    assert_eq!(
        codes(&loaded),
        ["unset-parameter", "unset-parameter"],
        "{}",
        render(&loaded)
    );
    assert!(render(&loaded).contains("--param GitHubOAuthToken=VALUE"));
    let p = &loaded.pipelines[0];
    assert_eq!(p.format, SourceFormat::Cloudformation);
    assert_eq!(
        p.stages.iter().map(|s| s.name.as_str()).collect::<Vec<_>>(),
        ["Source", "Build", "Deploy"]
    );
    let deploy = &p.stages[2].actions;
    assert_eq!(
        deploy.iter().map(|a| a.region.as_deref().unwrap()).collect::<Vec<_>>(),
        ["us-east-1", "us-west-2"]
    );
    assert!(
        deploy.iter().all(|a| a.run_order == 1),
        "the two regions deploy in parallel"
    );
    assert_eq!(
        deploy[1].config("TemplatePath"),
        Some("BuildOutput::packaged-template-us-west-2.yaml")
    );
    assert_eq!(deploy[0].config("StackName"), Some("multi-region-codepipeline-app"));
    // Values only AWS knows are visible placeholders.
    assert_eq!(p.role_arn.as_deref(), Some("{{aws:GetAtt CodePipelineRole.Arn}}"));
    assert_eq!(
        deploy[0].config("RoleArn"),
        Some("{{aws:GetAtt CloudformationRole.Arn}}")
    );
    assert_eq!(
        p.stages[0].actions[0].config("OAuthToken"),
        Some("{{aws:parameter GitHubOAuthToken}}")
    );
    // The CodeBuild project of the same template is kept, with its buildspec and variables.
    assert_eq!(p.stages[1].actions[0].config("ProjectName"), Some("CodeBuildProject"));
    let project = &p.meridian.build_projects["CodeBuildProject"];
    assert_eq!(
        project.buildspec,
        meridian_pipeline::model::BuildSpecSource::Path("deployment-pipeline/buildspec.yaml".into())
    );
    assert_eq!(project.environment_variables[1].name, "US_WEST_2_ARTIFACT_BUCKET");

    // With the parameters given, the buckets are real names and nothing is left to warn about.
    let opts = LoadOptions {
        params: [("ArtifactBucketNamePrefix", "acme"), ("GitHubOAuthToken", "t0ken")]
            .into_iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
        ..Default::default()
    };
    let loaded = load_path(&path, &opts);
    assert!(loaded.diagnostics.is_empty(), "{}", render(&loaded));
    let p = &loaded.pipelines[0];
    assert_eq!(p.artifact_stores["us-west-2"].location, "acme-us-west-2");
    assert_eq!(
        p.meridian.build_projects["CodeBuildProject"].environment_variables[0].value,
        "acme-us-east-1"
    );
    // A value outside AllowedPattern is refused, naming the pattern.
    let bad = LoadOptions {
        params: [("ArtifactBucketNamePrefix".to_string(), "acme_bad".to_string())].into(),
        ..Default::default()
    };
    let loaded = load_path(&path, &bad);
    assert!(codes(&loaded).contains(&"parameter-not-allowed"), "{}", render(&loaded));
}

#[test]
fn the_codepipeline_user_guide_json() {
    let Some(f) = fixtures() else { return };
    let loaded = load_path(
        &f.join("aws-codepipeline-user-guide/cross-region-update-pipeline-output.json"),
        &LoadOptions::default(),
    );
    assert!(loaded.diagnostics.is_empty(), "{}", render(&loaded));
    let p = &loaded.pipelines[0];
    assert_eq!(p.name, "AnyCompanyPipeline");
    assert_eq!(p.version, Some(4));
    assert_eq!(p.artifact_stores.keys().collect::<Vec<_>>(), ["us-east-1", "us-west-2"]);
    assert_eq!(p.artifact_stores["us-east-1"].location, "my-storage-bucket-us-east-1");
    assert_eq!(p.stages[1].actions[0].region.as_deref(), Some("us-east-1"));
    assert_eq!(p.stages[0].actions[0].config("RepositoryName"), Some("MyTestRepo"));
}

#[test]
fn real_world_shapes_are_understood() {
    let text = std::fs::read_to_string(crate_dir().join("tests/valid/cfn-realworld.yaml")).unwrap();
    let loaded = load("realworld.yaml", &text);
    assert!(loaded.diagnostics.is_empty(), "{}", render(&loaded));
    let p = &loaded.pipelines[0];
    assert_eq!(p.name, "acme-orders");
    assert_eq!(p.artifact_stores["eu-west-1"].location, "acme-artifacts-eu-west-1");
    let build = &p.stages[1].actions[0];
    assert_eq!(build.config("PrimarySource"), Some("AppCode"));
    let env: serde_json::Value = serde_json::from_str(build.config("EnvironmentVariables").unwrap()).unwrap();
    assert_eq!(env[1]["value"], "acme-artifacts", "!Sub filled in the parameter");
    assert_eq!(
        env[0]["value"], "#{AppSource.CommitId}",
        "pipeline variables are left for run time"
    );
    let deploy = &p.stages[2].actions;
    assert_eq!(
        deploy[1].config("CustomData"),
        Some("Approve the production change set")
    );
    assert_eq!(deploy[2].config("ActionMode"), Some("CHANGE_SET_EXECUTE"));
    assert_eq!(
        p.triggers[0].git_configuration.pull_request[0].events,
        ["OPEN", "UPDATED"]
    );
    // `AWS::StackName` is the file's base name (issue 17), not a placeholder
    assert!(
        p.meridian.placeholders.iter().all(|p| p.starts_with("{{aws:GetAtt ")),
        "{:?}",
        p.meridian.placeholders
    );
    assert!(
        p.meridian.build_projects.contains_key("realworld-build"),
        "{:?}",
        p.meridian.build_projects.keys()
    );
    // Fn::GetParam naming an artifact the action does not take in is caught inside the JSON string.
    let broken = text.replace(
        r#"["BuildOutput", "build.json", "version"]"#,
        r#"["BuildOut", "build.json", "version"]"#,
    );
    let loaded = load("realworld.yaml", &broken);
    assert!(
        loaded
            .diagnostics
            .iter()
            .any(|d| d.code == "artifact-not-input" && d.message.contains("`BuildOut`")),
        "{}",
        render(&loaded)
    );
}

#[test]
fn several_pipelines_in_one_template() {
    let base = std::fs::read_to_string(crate_dir().join("tests/valid/cfn-two-regions.yaml")).unwrap();
    let (head, rest) = base.split_once("  Pipeline:\n").unwrap();
    let (pipeline, tail) = rest.split_once("  Role:\n").unwrap();
    let text = format!(
        "{head}  Pipeline:\n{pipeline}  Staging:\n{}  Role:\n{tail}",
        pipeline.replace("RunOrder: 1", "RunOrder: 0")
    );
    let all = load("two.yaml", &text);
    assert_eq!(
        all.pipelines.iter().map(|p| p.name.as_str()).collect::<Vec<_>>(),
        ["Pipeline", "Staging"]
    );
    assert_eq!(
        codes(&all),
        ["invalid-run-order", "invalid-run-order"],
        "{}",
        render(&all)
    );
    let one = load_str(
        "two.yaml",
        &text,
        &LoadOptions {
            pipeline: Some("Pipeline".into()),
            ..Default::default()
        },
    );
    assert_eq!(one.pipelines.len(), 1);
    assert!(one.diagnostics.is_empty(), "{}", render(&one));
    let none = load_str(
        "two.yaml",
        &text,
        &LoadOptions {
            pipeline: Some("Prod".into()),
            ..Default::default()
        },
    );
    assert_eq!(codes(&none), ["no-such-pipeline"]);
    assert!(none.diagnostics[0]
        .help
        .as_deref()
        .unwrap()
        .contains("Pipeline, Staging"));
}

#[test]
fn native_format_expands_regions_written_once() {
    let text = std::fs::read_to_string(crate_dir().join("../../examples/hello-regions/meridian.yaml")).unwrap();
    let loaded = load("meridian.yaml", &text);
    assert!(loaded.diagnostics.is_empty(), "{}", render(&loaded));
    let p = &loaded.pipelines[0];
    assert_eq!(
        p.stages.iter().map(|s| s.name.as_str()).collect::<Vec<_>>(),
        ["Source", "Build", "Package", "Deploy-primary", "Deploy-rest"]
    );
    assert_eq!(
        p.artifact_stores.keys().collect::<Vec<_>>(),
        ["ap-southeast-2", "eu-west-1", "us-east-1"]
    );
    assert_eq!(
        p.stages[2].actions[0].config("Regions"),
        Some("us-east-1,eu-west-1,ap-southeast-2")
    );
    let rest = &p.stages[4].actions;
    let eu = rest.iter().find(|a| a.name == "Deploy-eu-west-1").unwrap();
    assert_eq!(
        eu.config("TemplatePath"),
        Some("PackagedOutput::packaged-template-eu-west-1.yaml")
    );
    assert_eq!(
        eu.config("ParameterOverrides"),
        Some(r#"{"Greeting":"dia duit"}"#),
        "the region's override wins"
    );
    let smoke = rest.iter().find(|a| a.name == "Validate-smoke-eu-west-1").unwrap();
    assert_eq!(
        smoke.run_order,
        eu.run_order + 1,
        "validation runs after the region's deploy"
    );
    let delivery = p.meridian.delivery.as_ref().unwrap();
    assert_eq!(delivery.home_region, "us-east-1");
    assert_eq!(
        delivery.deployment_preference.as_deref(),
        Some("Canary10Percent5Minutes")
    );
    assert_eq!(delivery.windows["eu-west-1"].days, ["mon", "tue", "wed", "thu", "fri"]);
    assert_eq!(
        p.meridian.build_projects["hello-regions-build"].environment_variables[0].name,
        "NODE_ENV"
    );
}

#[test]
fn stage_limit_is_enforced() {
    let stages: Vec<serde_json::Value> = (0..51)
        .map(|i| {
            let (cat, prov, cfg, outs) = if i == 0 {
                ("Source", "CodeCommit", serde_json::json!({"RepositoryName": "r", "BranchName": "main"}), serde_json::json!([{"name": "Src"}]))
            } else {
                ("Approval", "Manual", serde_json::json!({}), serde_json::json!([]))
            };
            serde_json::json!({"name": format!("S{i}"), "actions": [{"name": "A", "actionTypeId": {"category": cat, "owner": "AWS", "provider": prov, "version": "1"}, "configuration": cfg, "outputArtifacts": outs}]})
        })
        .collect();
    let text = serde_json::json!({"name": "big", "artifactStore": {"type": "S3", "location": "b"}, "stages": stages})
        .to_string();
    let loaded = load("big.json", &text);
    assert_eq!(codes(&loaded), ["limit"], "{}", render(&loaded));
    assert!(loaded.diagnostics[0].message.contains("51 stages"));
}

#[test]
fn diagnostics_point_at_the_line_and_column() {
    let text =
        std::fs::read_to_string(crate_dir().join("tests/catalogue/cfn-no-artifact-store-in-region.yaml")).unwrap();
    let loaded = load("t.yaml", &text);
    let d = &loaded.diagnostics[0];
    let j = d.to_json(&loaded.sources);
    let line = text.lines().position(|l| l.contains("Region: eu-central-1")).unwrap() + 1;
    assert_eq!(j.line, Some(line));
    assert_eq!(j.column, Some(23));
    assert_eq!(j.snippet.as_deref(), Some("eu-central-1"));
    assert!(j
        .help
        .unwrap()
        .contains("eu-central-1: {type: S3, location: acme-artifacts-eu-central-1}"));
}

mod robustness {
    use super::*;
    use proptest::prelude::*;

    fn corpus() -> Vec<String> {
        let mut texts: Vec<String> = valid_definitions().into_iter().map(|(_, t)| t).collect();
        texts.truncate(6);
        texts
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 400, ..ProptestConfig::default() })]

        /// Arbitrary text never panics any of the parsers.
        #[test]
        fn arbitrary_text_never_panics(text in any::<String>()) {
            let _ = load("fuzz.yaml", &text);
        }

        /// YAML-like noise: keys, tags, brackets, quotes and indentation in random order.
        #[test]
        fn yaml_like_noise_never_panics(parts in proptest::collection::vec(prop_oneof![
            Just("Resources:\n"), Just("  P:\n"), Just("    Type: AWS::CodePipeline::Pipeline\n"), Just("!Ref "), Just("!Sub '${"),
            Just("!GetAtt A."), Just("- "), Just("["), Just("]"), Just("{"), Just("}"), Just(": "), Just("\n  "), Just("\""),
            Just("'"), Just("pipeline: x\n"), Just("waves:\n"), Just("stages:\n"), Just("&a "), Just("*a "), Just("#{"),
            Just("é"), Just("\t"), Just("name"), Just("Fn::If"), Just(",")
        ], 0..60)) {
            let text: String = parts.concat();
            let _ = load("noise.yaml", &text);
        }

        /// Real definitions, cut or corrupted at a random place.
        #[test]
        fn damaged_real_definitions_never_panic(which in 0usize..6, at in any::<prop::sample::Index>(), junk in "[\\x00-\\x7f]{0,8}") {
            let texts = corpus();
            let text = &texts[which % texts.len()];
            let mut cut = at.index(text.len() + 1);
            while !text.is_char_boundary(cut) { cut -= 1; }
            let damaged = format!("{}{}{}", &text[..cut], junk, &text[cut..].get(junk.len().min(text.len() - cut)..).unwrap_or(""));
            let _ = load("damaged.yaml", &damaged);
            let _ = load("cut.yaml", &text[..cut]);
        }
    }
}

/// Which backend reaches each region, in all three forms: native `backend:`, `x-meridian` beside
/// `pipeline` in API JSON, `Metadata: Meridian` in a CloudFormation template.
#[test]
fn region_backends_are_read_from_every_form_and_checked() {
    let native = "pipeline: app\nbackend: local\ndeploy:\n  template: t.yaml\n  stack: app\nwaves:\n  - regions: [us-east-1]\n  - regions: [eu-west-1]\nregions:\n  eu-west-1:\n    backend: aws\n";
    let l = load("meridian.yaml", native);
    assert!(!l.has_errors(), "{}", render(&l));
    let m = &l.pipelines[0].meridian;
    assert_eq!(m.default_backend.as_deref(), Some("local"));
    assert_eq!(m.backends.get("eu-west-1").map(String::as_str), Some("aws"));

    let api = r#"{"pipeline": {"name": "app", "pipelineType": "V2", "roleArn": "arn:aws:iam::123456789012:role/p",
        "artifactStore": {"type": "S3", "location": "b"},
        "stages": [{"name": "Source", "actions": [{"name": "S", "actionTypeId": {"category": "Source", "owner": "AWS", "provider": "CodeCommit", "version": "1"},
            "configuration": {"RepositoryName": "r", "BranchName": "main"}, "outputArtifacts": [{"name": "Src"}]}]},
          {"name": "Run", "actions": [{"name": "C", "actionTypeId": {"category": "Compute", "owner": "AWS", "provider": "Commands", "version": "1"},
            "commands": ["true"], "inputArtifacts": [{"name": "Src"}]}]}]},
      "x-meridian": {"regions": {"us-east-1": {"backend": "aws"}}}}"#;
    let l = load("p.json", api);
    assert!(!l.has_errors(), "{}", render(&l));
    assert_eq!(
        l.pipelines[0].meridian.backends.get("us-east-1").map(String::as_str),
        Some("aws")
    );

    let cfn = "Metadata:\n  Meridian:\n    Backend: aws\nResources:\n  P:\n    Type: AWS::CodePipeline::Pipeline\n    Properties:\n      PipelineType: V2\n      RoleArn: arn:aws:iam::123456789012:role/p\n      ArtifactStore: {Type: S3, Location: b}\n      Stages:\n        - Name: Source\n          Actions:\n            - Name: S\n              ActionTypeId: {Category: Source, Owner: AWS, Provider: CodeCommit, Version: '1'}\n              Configuration: {RepositoryName: r, BranchName: main}\n              OutputArtifacts: [{Name: Src}]\n        - Name: Run\n          Actions:\n            - Name: C\n              ActionTypeId: {Category: Compute, Owner: AWS, Provider: Commands, Version: '1'}\n              Commands: ['true']\n              InputArtifacts: [{Name: Src}]\n";
    let l = load("template.yaml", cfn);
    assert!(!l.has_errors(), "{}", render(&l));
    assert_eq!(l.pipelines[0].meridian.default_backend.as_deref(), Some("aws"));

    // A misspelt backend is an error at its place, with the fix.
    let l = load("meridian.yaml", &native.replace("backend: aws", "backend: awz"));
    assert_eq!(codes(&l), vec!["unknown-backend"], "{}", render(&l));
    let text = render(&l);
    assert!(text.contains("`awz` is not a region backend"), "{text}");
    assert!(text.contains("did you mean `aws`?"), "{text}");
    assert!(text.contains("meridian.yaml:11:"), "{text}");
}

/// Where CodeBuild actions run: `builds: codebuild` (natively, in `x-meridian` and in
/// `Metadata: Meridian`), checked like a backend.
#[test]
fn where_builds_run_is_read_from_every_form_and_checked() {
    let native = "pipeline: app\nbackend: aws\nbuilds: codebuild\nbuild:\n  buildspec: buildspec.yml\ndeploy:\n  template: t.yaml\nwaves:\n  - regions: [us-east-1]\n";
    let l = load("meridian.yaml", native);
    assert!(!l.has_errors(), "{}", render(&l));
    assert_eq!(l.pipelines[0].meridian.builds.as_deref(), Some("codebuild"));

    let api = r#"{"pipeline": {"name": "app", "pipelineType": "V2", "roleArn": "arn:aws:iam::123456789012:role/p",
        "artifactStore": {"type": "S3", "location": "b"},
        "stages": [{"name": "Source", "actions": [{"name": "S", "actionTypeId": {"category": "Source", "owner": "AWS", "provider": "CodeCommit", "version": "1"},
            "configuration": {"RepositoryName": "r", "BranchName": "main"}, "outputArtifacts": [{"name": "Src"}]}]},
          {"name": "Build", "actions": [{"name": "B", "actionTypeId": {"category": "Build", "owner": "AWS", "provider": "CodeBuild", "version": "1"},
            "configuration": {"ProjectName": "p"}, "inputArtifacts": [{"name": "Src"}]}]}]},
      "x-meridian": {"backend": "aws", "builds": "codebuild"}}"#;
    let l = load("p.json", api);
    assert!(!l.has_errors(), "{}", render(&l));
    assert_eq!(l.pipelines[0].meridian.builds.as_deref(), Some("codebuild"));

    let l = load(
        "meridian.yaml",
        &native.replace("builds: codebuild", "builds: codebiuld"),
    );
    assert_eq!(codes(&l), vec!["unknown-build-runner"], "{}", render(&l));
    let text = render(&l);
    assert!(text.contains("`codebiuld` is not where builds can run"), "{text}");
    assert!(text.contains("did you mean `codebuild`?"), "{text}");
    assert!(text.contains("meridian.yaml:3:"), "{text}");
}
