//! Definitions read as AWS reads them (issue 17): the home region, pseudo parameters,
//! placeholders, repeated keys, positions in characters, and a help line on every diagnostic.

use meridian_pipeline::{load_str, Diagnostic, LoadOptions, Loaded, Severity};

fn load_with(name: &str, text: &str, opts: &LoadOptions) -> Loaded {
    let loaded = load_str(name, text, opts);
    // every diagnostic, whatever the input, says how to fix it
    for d in &loaded.diagnostics {
        assert!(d.help.is_some(), "{name}: `{}` has no help", d.message);
    }
    loaded
}

fn load(name: &str, text: &str) -> Loaded {
    load_with(name, text, &LoadOptions::default())
}

/// A valid definition in Meridian's format; `{}` is where a test adds lines.
const NATIVE: &str = "pipeline: app\n{}build:\n  buildspec: buildspec.yml\ndeploy:\n  template: template.yaml\n  stack: app\nwaves:\n  - regions: [us-east-1]\n";

fn native(extra: &str) -> String {
    NATIVE.replace("{}", extra)
}

fn errors(l: &Loaded) -> Vec<&Diagnostic> {
    l.diagnostics.iter().filter(|d| d.severity == Severity::Error).collect()
}

fn warnings<'a>(l: &'a Loaded, code: &str) -> Vec<&'a Diagnostic> {
    l.diagnostics
        .iter()
        .filter(|d| d.severity == Severity::Warning && d.code == code)
        .collect()
}

fn render(l: &Loaded) -> String {
    l.diagnostics
        .iter()
        .map(|d| d.render(&l.sources, false))
        .collect::<Vec<_>>()
        .join("\n")
}

fn opts(f: impl FnOnce(&mut LoadOptions)) -> LoadOptions {
    let mut o = LoadOptions::default();
    f(&mut o);
    o
}

/// `aws codepipeline get-pipeline` output: every action says its region, one `artifactStore`.
fn dump(action_regions: [&str; 3], arn_region: &str) -> String {
    format!(
        r#"{{
  "pipeline": {{
    "name": "orders",
    "roleArn": "arn:aws:iam::123456789012:role/p",
    "artifactStore": {{"type": "S3", "location": "orders-artifacts"}},
    "stages": [
      {{"name": "Source", "actions": [{{"name": "Source", "region": "{}",
        "actionTypeId": {{"category": "Source", "owner": "AWS", "provider": "CodeCommit", "version": "1"}},
        "configuration": {{"RepositoryName": "orders", "BranchName": "main"}},
        "outputArtifacts": [{{"name": "Src"}}]}}]}},
      {{"name": "Build", "actions": [{{"name": "Build", "region": "{}",
        "actionTypeId": {{"category": "Build", "owner": "AWS", "provider": "CodeBuild", "version": "1"}},
        "configuration": {{"ProjectName": "orders-build"}},
        "inputArtifacts": [{{"name": "Src"}}], "outputArtifacts": [{{"name": "Out"}}]}}]}},
      {{"name": "Deploy", "actions": [{{"name": "Deploy", "region": "{}",
        "actionTypeId": {{"category": "Deploy", "owner": "AWS", "provider": "CloudFormation", "version": "1"}},
        "configuration": {{"ActionMode": "CREATE_UPDATE", "StackName": "orders", "TemplatePath": "Out::t.yaml"}},
        "inputArtifacts": [{{"name": "Out"}}]}}]}}
    ]
  }},
  "metadata": {{"pipelineArn": "arn:aws:codepipeline:{arn_region}:123456789012:orders"}}
}}
"#,
        action_regions[0], action_regions[1], action_regions[2]
    )
}

#[test]
fn actions_in_the_pipelines_own_region_need_no_store_of_their_own() {
    let l = load("dump.json", &dump(["us-east-1"; 3], "us-east-1"));
    assert!(errors(&l).is_empty(), "{}", render(&l));
    assert_eq!(l.pipelines[0].home_region, "us-east-1");

    // the actions agree on eu-west-1: the pipeline lives there, whatever its ARN says
    let l = load("dump.json", &dump(["eu-west-1"; 3], "us-east-1"));
    assert!(errors(&l).is_empty(), "{}", render(&l));
    assert_eq!(l.pipelines[0].home_region, "eu-west-1");
}

#[test]
fn a_cross_region_action_with_one_store_names_the_home_region_and_both_ways_out() {
    // the actions disagree: the ARN says where the pipeline lives
    let l = load("dump.json", &dump(["eu-west-1", "eu-west-1", "us-west-2"], "eu-west-1"));
    assert_eq!(l.pipelines[0].home_region, "eu-west-1");
    let e = errors(&l);
    assert_eq!(e.len(), 1, "{}", render(&l));
    assert_eq!(e[0].code, "cross-region-needs-stores");
    assert!(
        e[0].message
            .contains("runs in `us-west-2`, but the pipeline lives in `eu-west-1`"),
        "{}",
        e[0].message
    );
    let help = e[0].help.as_deref().unwrap();
    assert!(
        help.contains("--region us-west-2") && help.contains("artifactStores"),
        "{help}"
    );

    // no ARN, no agreement: the environment's region, else us-east-1
    let text = dump(["eu-west-1", "eu-west-1", "us-west-2"], "").replace("arn:aws:codepipeline::", "x");
    let l = load_with("dump.json", &text, &opts(|o| o.env_region = Some("eu-west-1".into())));
    assert_eq!(l.pipelines[0].home_region, "eu-west-1");
    assert_eq!(errors(&l).len(), 1, "{}", render(&l));
    let l = load("dump.json", &text);
    assert_eq!(l.pipelines[0].home_region, "us-east-1");
    assert_eq!(errors(&l).len(), 3, "{}", render(&l));
}

#[test]
fn region_option_wins_over_what_the_definition_says() {
    let l = load_with(
        "dump.json",
        &dump(["us-east-1"; 3], "us-east-1"),
        &opts(|o| o.region = Some("eu-west-1".into())),
    );
    assert_eq!(l.pipelines[0].home_region, "eu-west-1");
    assert_eq!(errors(&l).len(), 3, "{}", render(&l));
}

const TEMPLATE: &str = "AWSTemplateFormatVersion: '2010-09-09'
Parameters:
  CodePipelineName:
    Type: String
Resources:
  Pipeline:
    Type: AWS::CodePipeline::Pipeline
    Properties:
      Name: !Sub ${AWS::StackName}-pipeline
      RoleArn: !Sub arn:${AWS::Partition}:iam::${AWS::AccountId}:role/pipeline
      ArtifactStore: {Type: S3, Location: !Sub 'artifacts-${AWS::Region}.${AWS::URLSuffix}'}
      Stages:
        - Name: Source
          Actions:
            - Name: Source
              ActionTypeId: {Category: Source, Owner: AWS, Provider: CodeCommit, Version: '1'}
              Configuration: {RepositoryName: orders, BranchName: main, Extra: !Ref AWS::NoValue}
              OutputArtifacts: [{Name: Src}]
        - Name: Deploy
          Actions:
            - Name: !Sub ${AWS::StackName}-ChangeSet
              Region: !Ref AWS::Region
              ActionTypeId: {Category: Deploy, Owner: AWS, Provider: CloudFormation, Version: '1'}
              InputArtifacts: [{Name: Src}]
              Configuration:
                ActionMode: CREATE_UPDATE
                StackName: !Ref AWS::StackName
                TemplatePath: Src::template.yaml
                NotificationArns: !Join [',', !Ref AWS::NotificationARNs]
";

#[test]
fn pseudo_parameters_have_the_values_of_a_stack_in_the_home_region() {
    let l = load("pipelines/release.yaml", TEMPLATE);
    assert!(errors(&l).is_empty(), "{}", render(&l));
    let p = &l.pipelines[0];
    assert_eq!(p.name, "release-pipeline");
    assert_eq!(p.role_arn.as_deref(), Some("arn:aws:iam::123456789012:role/pipeline"));
    assert_eq!(
        p.artifact_store.as_ref().unwrap().location,
        "artifacts-us-east-1.amazonaws.com"
    );
    let deploy = &p.stages[1].actions[0];
    assert_eq!(deploy.name, "release-ChangeSet");
    assert_eq!(deploy.region.as_deref(), Some("us-east-1"));
    assert_eq!(deploy.config("StackName"), Some("release"));
    assert_eq!(deploy.config("NotificationArns"), Some(""));
    assert!(!p.stages[0].actions[0].configuration.contains_key("Extra"));
    assert!(p.meridian.placeholders.is_empty(), "{:?}", p.meridian.placeholders);

    let l = load_with(
        "release.yaml",
        TEMPLATE,
        &opts(|o| {
            o.region = Some("cn-north-1".into());
            o.stack_name = Some("orders".into());
            o.account_id = Some("210987654321".into());
        }),
    );
    assert!(errors(&l).is_empty(), "{}", render(&l));
    let p = &l.pipelines[0];
    assert_eq!(p.home_region, "cn-north-1");
    assert_eq!(p.name, "orders-pipeline");
    assert_eq!(
        p.role_arn.as_deref(),
        Some("arn:aws-cn:iam::210987654321:role/pipeline")
    );
    assert_eq!(
        p.artifact_store.as_ref().unwrap().location,
        "artifacts-cn-north-1.amazonaws.com.cn"
    );
    assert_eq!(p.stages[1].actions[0].region.as_deref(), Some("cn-north-1"));

    // `--param AWS::Region=...` works as `--region` does (the issue's example)
    let l = load_with(
        "release.yaml",
        TEMPLATE,
        &opts(|o| {
            o.params.insert("AWS::Region".into(), "us-east-1".into());
        }),
    );
    assert!(errors(&l).is_empty(), "{}", render(&l));
}

#[test]
fn placeholders_are_warnings_that_say_how_to_give_the_value() {
    let text = TEMPLATE
        .replace("Name: !Sub ${AWS::StackName}-pipeline", "Name: !Ref CodePipelineName")
        .replace("        - Name: Deploy\n", "        - Name: !ImportValue TestImport\n");
    let l = load("release.yaml", &text);
    assert!(errors(&l).is_empty(), "{}", render(&l));
    let w = warnings(&l, "placeholder");
    let name = w
        .iter()
        .find(|d| d.message.contains("pipeline's name"))
        .expect("a warning on the name");
    assert!(
        name.message.contains("`{{aws:parameter CodePipelineName}}`"),
        "{}",
        name.message
    );
    assert!(
        name.help.as_deref().unwrap().contains("--param CodePipelineName=..."),
        "{:?}",
        name.help
    );
    let stage = w
        .iter()
        .find(|d| d.message.contains("stage's name"))
        .expect("a warning on the stage");
    assert!(
        stage.message.contains("the export `TestImport` of another stack"),
        "{}",
        stage.message
    );
    assert!(
        stage
            .help
            .as_deref()
            .unwrap()
            .contains("resolved by CloudFormation on AWS"),
        "{:?}",
        stage.help
    );
    // the unset parameter itself is said once more where it is declared
    assert_eq!(warnings(&l, "unset-parameter").len(), 1);

    // a run order, an action mode and the artifact of a TemplatePath from unset parameters
    let text2 = TEMPLATE
        .replace(
            "  CodePipelineName:\n    Type: String\n",
            "  Order:\n    Type: Number\n  Mode:\n    Type: String\n  Art:\n    Type: String\n",
        )
        .replace(
            "              Region: !Ref AWS::Region\n",
            "              Region: !Ref AWS::Region\n              RunOrder: !Ref Order\n",
        )
        .replace("ActionMode: CREATE_UPDATE", "ActionMode: !Ref Mode")
        .replace(
            "TemplatePath: Src::template.yaml",
            "TemplatePath: !Sub '${Art}::template.yaml'",
        );
    let l = load("release.yaml", &text2);
    assert!(errors(&l).is_empty(), "{}", render(&l));
    let w = warnings(&l, "placeholder");
    assert_eq!(w.len(), 3, "{}", render(&l));
    for (what, param) in [
        ("`runOrder` of an action", "Order"),
        ("ActionMode", "Mode"),
        ("TemplatePath", "Art"),
    ] {
        let d = w
            .iter()
            .find(|d| d.message.contains(what))
            .unwrap_or_else(|| panic!("no warning on {what}: {}", render(&l)));
        assert!(
            d.help.as_deref().unwrap().contains(&format!("--param {param}=...")),
            "{:?}",
            d.help
        );
    }

    // given, the value is checked like any other
    let l = load_with(
        "release.yaml",
        &text,
        &opts(|o| {
            o.params.insert("CodePipelineName".into(), "not a name!".into());
        }),
    );
    let e = errors(&l);
    assert_eq!(e.len(), 1, "{}", render(&l));
    assert_eq!(e[0].message, "`not a name!` is not a valid pipeline name");
    assert!(warnings(&l, "placeholder")
        .iter()
        .all(|d| !d.message.contains("pipeline's name")));
}

#[test]
fn fn_select_says_where_its_list_comes_from() {
    let select = |list: &str, index: &str| {
        TEMPLATE
            .replace(
                "RepositoryName: orders",
                &format!("RepositoryName: !Select [{index}, {list}]"),
            )
            .replace(
                "  CodePipelineName:\n    Type: String\n",
                "  CodePipelineName:\n    Type: String\n  Repos:\n    Type: CommaDelimitedList\n",
            )
    };
    // from an unset parameter: a placeholder, with the way to give it
    let l = load("release.yaml", &select("!Ref Repos", "1"));
    assert!(errors(&l).is_empty(), "{}", render(&l));
    let w = warnings(&l, "placeholder");
    assert_eq!(w.len(), 1, "{}", render(&l));
    assert!(w[0].message.contains("parameter `Repos`"), "{}", w[0].message);
    assert!(w[0].help.as_deref().unwrap().contains("--param Repos=..."));
    // an unset parameter split (an ARN's fields): the placeholder is not split into pieces of
    // its own text; the item picked is a placeholder with the way to give it, and so is a join
    let arn = "!Split [':', !Ref CodePipelineName]";
    let l = load("release.yaml", &select(arn, "5"));
    assert!(errors(&l).is_empty(), "{}", render(&l));
    let w = warnings(&l, "placeholder");
    assert!(
        w.iter().any(|d| d.message
            == "Fn::Select picks item 5 of a list from parameter `CodePipelineName`, which has no value"
            && d.help.as_deref().unwrap().contains("--param CodePipelineName=...")),
        "{}",
        render(&l)
    );
    let l = load_with(
        "release.yaml",
        &select(arn, "5"),
        &opts(|o| {
            o.params.insert(
                "CodePipelineName".into(),
                "arn:aws:codecommit:us-east-1:123456789012:orders".into(),
            );
        }),
    );
    assert!(errors(&l).is_empty(), "{}", render(&l));
    assert_eq!(
        l.pipelines[0].stages[0].actions[0].config("RepositoryName"),
        Some("orders")
    );
    // given, it is picked
    let l = load_with(
        "release.yaml",
        &select("!Ref Repos", "1"),
        &opts(|o| {
            o.params.insert("Repos".into(), "a,b".into());
        }),
    );
    assert!(errors(&l).is_empty(), "{}", render(&l));
    assert_eq!(l.pipelines[0].stages[0].actions[0].config("RepositoryName"), Some("b"));
    // a known list, an index past its end: an error saying the list's length
    // (CloudFormation refuses the template there; the value is then missing, as said next)
    let l = load("release.yaml", &select("[a, b]", "2"));
    let e: Vec<_> = errors(&l)
        .into_iter()
        .filter(|d| d.code == "invalid-intrinsic")
        .collect();
    assert_eq!(e.len(), 1, "{}", render(&l));
    assert_eq!(e[0].message, "Fn::Select needs an index within its list");
    assert_eq!(
        e[0].help.as_deref(),
        Some("the list has 2 item(s), so the index is 0 to 1; found 2")
    );
}

#[test]
fn repeated_keys_keep_the_last_value_as_cloudformation_and_the_aws_cli_do() {
    let text = TEMPLATE.replace(
        "              Region: !Ref AWS::Region\n",
        "              Region: !Ref AWS::Region\n              Name: Deploy\n",
    );
    let l = load("release.yaml", &text);
    assert!(errors(&l).is_empty(), "{}", render(&l));
    let w = warnings(&l, "duplicate-key");
    assert_eq!(w.len(), 1, "{}", render(&l));
    assert_eq!(
        w[0].message,
        "the key `Name` appears twice in this mapping (lines 21 and 23); CloudFormation keeps the last value"
    );
    assert_eq!(l.pipelines[0].stages[1].actions[0].name, "Deploy");
    assert!(!render(&l).contains("unknown field"), "{}", render(&l));

    // API JSON: the same, as the AWS CLI's JSON parser does
    let text = dump(["us-east-1"; 3], "us-east-1")
        .replace("\"name\": \"orders\",", "\"name\": \"orders\", \"name\": \"billing\",");
    let l = load("dump.json", &text);
    assert!(errors(&l).is_empty(), "{}", render(&l));
    assert_eq!(warnings(&l, "duplicate-key").len(), 1);
    assert_eq!(l.pipelines[0].name, "billing");

    // Meridian's own format: an error, and nothing else about the key
    let l = load(
        "app.yaml",
        &native("execution-mode: QUEUED\nexecution-mode: PARALLEL\n"),
    );
    let e = errors(&l);
    assert_eq!(e.len(), 1, "{}", render(&l));
    assert_eq!(e[0].message, "the key `execution-mode` appears twice in this mapping");
    assert_eq!(e[0].location(&l.sources).as_deref(), Some("app.yaml:3:1"));
    assert!(!render(&l).contains("did you mean"), "{}", render(&l));
}

#[test]
fn field_suggestions_come_in_the_files_case() {
    let text = TEMPLATE.replace(
        "              OutputArtifacts: [{Name: Src}]",
        "              OutputArtifacts: [{Name: Src}]\n              Configuraton: {}",
    );
    let l = load("release.yaml", &text);
    let w = warnings(&l, "unknown-field");
    assert_eq!(w.len(), 1, "{}", render(&l));
    assert_eq!(w[0].help.as_deref(), Some("did you mean `Configuration`?"));
    let text = TEMPLATE.replace(
        "            - Name: Source\n",
        "            - Name: Source\n              name: Other\n",
    );
    let l = load("release.yaml", &text);
    let w = warnings(&l, "duplicate-key");
    assert_eq!(w.len(), 1, "{}", render(&l));
    assert!(
        w[0].message.contains("`name` is the field `Name` written again"),
        "{}",
        w[0].message
    );
    assert!(!render(&l).contains("did you mean"), "{}", render(&l));
}

#[test]
fn conditions_that_refer_to_themselves_are_errors_naming_the_cycle() {
    let cycle = TEMPLATE.replace(
        "Resources:\n",
        "Conditions:\n  A: !Condition B\n  B: !Not [!Condition A]\n  C: !Equals [a, a]\nResources:\n",
    );
    let l = load("release.yaml", &cycle);
    let e = errors(&l);
    assert_eq!(e.len(), 1, "{}", render(&l));
    assert_eq!(e[0].message, "condition `A` refers to itself through A -> B");
    assert_eq!(e[0].location(&l.sources).as_deref(), Some("release.yaml:6:3"));
    let own = TEMPLATE.replace(
        "Resources:\n",
        "Conditions:\n  A: !And [!Condition A, !Equals [a, a]]\nResources:\n",
    );
    let l = load("release.yaml", &own);
    assert_eq!(errors(&l)[0].message, "condition `A` refers to itself through A");
}

/// The 1-based character column of the first `needle` on a line of `text`, counted independently
/// of the library.
fn column_of(text: &str, needle: &str) -> (usize, usize) {
    let at = text.find(needle).unwrap_or_else(|| panic!("{needle} not in the text"));
    let line_start = text[..at].rfind('\n').map(|i| i + 1).unwrap_or(0);
    (
        text[..at].matches('\n').count() + 1,
        text[line_start..at].chars().count() + 1,
    )
}

#[test]
fn positions_are_counted_in_characters_in_any_script() {
    let text = TEMPLATE
        .replace(
            "  CodePipelineName:\n    Type: String\n",
            "  CodePipelineName:\n    Type: String\n    Default: release\n    Description: \"パイプラインの名前です。リポジトリごとに一つ作ります\"\n",
        )
        .replace(
            "      Stages:\n        - Name: Source\n",
            "      Stages:\n        - {Name: \"Sourcé 🚀\", Descripción: \"ソースコード\", Bogus: 1, Actions: [{Name: Source, ActionTypeId: {Category: Source, Owner: AWS, Provider: CodeCommit, Version: '1'}, Configuration: {RepositoryName: orders, BranchName: main}, OutputArtifacts: [{Name: Src}]}]}\n        - Name: Unused\n",
        );
    let l = load("release.yaml", &text);
    let at = |needle: &str| {
        let (line, col) = column_of(&text, needle);
        format!("release.yaml:{line}:{col}")
    };
    let locations: Vec<(String, String)> = l
        .diagnostics
        .iter()
        .map(|d| (d.message.clone(), d.location(&l.sources).unwrap_or_default()))
        .collect();
    let find = |part: &str| -> String {
        locations
            .iter()
            .find(|(m, _)| m.contains(part))
            .unwrap_or_else(|| panic!("no diagnostic with {part}: {locations:?}"))
            .1
            .clone()
    };
    assert_eq!(find("`Sourcé 🚀` is not a valid stage name"), at("\"Sourcé 🚀\""));
    assert_eq!(find("unknown field `Descripción`"), at("Descripción"));
    assert_eq!(find("unknown field `Bogus`"), at("Bogus"));
    // the rendered snippet marks the same column
    let r = render(&l);
    assert!(r.contains(&format!("[{}]", at("Bogus"))), "{r}");

    // a Japanese block scalar before the mistake: the marker stays on the mistake's line
    let text = TEMPLATE.replace(
        "  CodePipelineName:\n    Type: String\n",
        "  CodePipelineName:\n    Type: String\n    Default: release\n    Description: >\n      パイプラインの名前。\n      リポジトリごとに一つ 🚀 作ります。\n  Stage:\n    Type: String\n    Default: prod\n    AllowedValues: [dev, tést]\n",
    );
    let l = load("release.yaml", &text);
    let e = errors(&l);
    assert_eq!(e.len(), 1, "{}", render(&l));
    let (line, col) = column_of(&text, "[dev, tést]");
    assert_eq!(e[0].location(&l.sources), Some(format!("release.yaml:{line}:{col}")));
    let r = render(&l);
    assert!(r.contains(&format!("[release.yaml:{line}:{col}]")), "{r}");
    assert!(r.contains(&format!(" {line} │     AllowedValues: [dev, tést]")), "{r}");

    // JSON: serde_json's byte columns become character columns too
    let json = "{\"pipeline\": {\"name\": \"日本語のパイプライン😀\", \"roleArn\": \"ñ\" oops}}";
    let l = load("broken.json", json);
    let (line, col) = column_of(json, "oops");
    assert_eq!(
        l.diagnostics[0].location(&l.sources),
        Some(format!("broken.json:{line}:{col}"))
    );
}

#[test]
fn a_flood_of_diagnostics_is_cut_to_a_hundred_and_a_count() {
    let mut text = native("");
    for i in 0..5000 {
        text.push_str(&format!("field{i}: 1\n"));
    }
    let l = load("many.yaml", &text);
    assert_eq!(l.diagnostics.len(), 101);
    assert_eq!(l.warning_count(), 5000);
    assert_eq!(l.error_count(), 0);
    let last = l.diagnostics.last().unwrap();
    assert_eq!(last.message, "and 4900 more: 0 error(s) and 4900 warning(s) not shown");
    assert!(!l.has_errors());
}

#[test]
fn long_values_are_cut_in_messages() {
    let name = "x".repeat(100_000);
    let l = load(
        "long.yaml",
        &native("").replace("pipeline: app", &format!("pipeline: {name}")),
    );
    let r = render(&l);
    assert!(l
        .diagnostics
        .iter()
        .any(|d| d.message.ends_with("is not a valid pipeline name")));
    assert!(r.len() < 4000, "the rendering is {} bytes", r.len());
    assert!(r.contains(&format!("`{}…`", "x".repeat(80))), "{r}");
}

#[test]
fn max_parallel_regions_must_be_a_positive_whole_number() {
    for (value, message) in [
        (
            "abc",
            "`max-parallel-regions` of the pipeline definition must be a whole number, found `abc`",
        ),
        ("0", "`max-parallel-regions` must be at least 1, found 0"),
    ] {
        let text = native(&format!("max-parallel-regions: {value}\n"));
        let l = load("app.yaml", &text);
        let e = errors(&l);
        assert_eq!(e.len(), 1, "{}", render(&l));
        assert_eq!(e[0].message, message);
        assert_eq!(e[0].location(&l.sources).as_deref(), Some("app.yaml:2:23"));
    }
}

#[test]
fn a_list_as_a_key_is_an_error_at_its_place() {
    let l = load("app.yaml", &native("? [a, b]\n: c\n"));
    let e = errors(&l);
    assert_eq!(e.len(), 1, "{}", render(&l));
    assert_eq!(e[0].message, "a mapping key must be a string, found a list");
    assert!(e[0].location(&l.sources).unwrap().starts_with("app.yaml:2:"));
    assert!(!render(&l).contains("unknown field ``"));
}

#[test]
fn quoted_values_whose_lines_are_not_indented_past_their_key_are_read_as_cloudformation_reads_them() {
    // the closing line of `ParameterOverrides` is at its key's column: YAML 1.2 refuses it,
    // CloudFormation (SnakeYAML, as PyYAML) reads it; a second one, double-quoted, holds
    // Japanese text and an escaped quote; a mistake after both must still be placed exactly
    let text = TEMPLATE.replace(
        "                NotificationArns: !Join [',', !Ref AWS::NotificationARNs]\n",
        "                NotificationArns: !Join [',', !Ref AWS::NotificationARNs]\n                ParameterOverrides: !Sub '{\n                  \"Stage\": \"prod\", \"Owner\": \"it''s ${AWS::Region}\"\n                }'\n                TemplateConfiguration: \"Src::設定\n              \\\"日本\\\".json\"\n              Bogus: 1\n",
    );
    let l = load("release.yaml", &text);
    assert!(errors(&l).is_empty(), "{}", render(&l));
    let w = warnings(&l, "quoted-indent");
    assert_eq!(w.len(), 2, "{}", render(&l));
    let (line, col) = column_of(&text, "'{");
    assert_eq!(w[0].location(&l.sources), Some(format!("release.yaml:{line}:{col}")));
    let (line, col) = column_of(&text, "\"Src::設定");
    assert_eq!(w[1].location(&l.sources), Some(format!("release.yaml:{line}:{col}")));
    // the values are folded as YAML folds them: the added indentation is not part of them
    let deploy = &l.pipelines[0].stages[1].actions[0];
    assert_eq!(
        deploy.configuration["ParameterOverrides"],
        "{ \"Stage\": \"prod\", \"Owner\": \"it's us-east-1\" }"
    );
    assert_eq!(deploy.configuration["TemplateConfiguration"], "Src::設定 \"日本\".json");
    // the unknown key after them is found at its own line and column
    let bogus = l
        .diagnostics
        .iter()
        .find(|d| d.message.contains("Bogus"))
        .unwrap_or_else(|| panic!("{}", render(&l)));
    let (line, col) = column_of(&text, "Bogus");
    assert_eq!(bogus.location(&l.sources), Some(format!("release.yaml:{line}:{col}")));

    // a quoted value that never ends is still a syntax error at its quote
    let broken = TEMPLATE.replace(
        "                TemplatePath: Src::template.yaml\n",
        "                TemplatePath: 'Src::template.yaml\n                Other: x\n",
    );
    let l = load("broken.yaml", &broken);
    assert_eq!(errors(&l).len(), 1, "{}", render(&l));
    assert_eq!(errors(&l)[0].code, "syntax");
}

#[test]
fn traffic_can_go_through_an_api_route() {
    let text = native("").replace(
        "  stack: app\n",
        "  stack: app\n  traffic: {rate: 10, route: GET /hello}\n",
    );
    let l = load("p.yaml", &text);
    assert!(errors(&l).is_empty(), "{}", render(&l));
    let t = l.pipelines[0]
        .meridian
        .delivery
        .as_ref()
        .unwrap()
        .traffic
        .as_ref()
        .unwrap();
    assert_eq!((t.rate, t.route.as_deref()), (10.0, Some("GET /hello")));
    let text = native("").replace("  stack: app\n", "  stack: app\n  traffic: {rate: 10, route: /hello}\n");
    let l = load("p.yaml", &text);
    let e = errors(&l);
    assert_eq!(e.len(), 1, "{}", render(&l));
    assert_eq!(e[0].message, "traffic route `/hello` is not `METHOD /path`");
}
