//! Real pipeline definitions from public repositories (issue 17): CloudFormation templates
//! declaring `AWS::CodePipeline::Pipeline` and CodePipeline API JSON, V1 and V2, single- and
//! cross-region, as AWS reads them. They live in ../shared/corpus/pipelines beside the project,
//! with their origin and licence in corpus/SOURCES.tsv (committed); the files are not copied into the project:
//! `python3 scripts/corpus.py` assembles them, pinned by commit and SHA-256.
//!
//! Each is asserted valid (no errors: placeholders for what only AWS or an unset parameter can
//! give are warnings), or, when listed in [`REFUSED`], to fail with the error AWS would give.

use meridian_pipeline::{load_files, LoadOptions, Severity};
use std::path::PathBuf;

/// Files AWS itself would refuse, with the diagnostic code Meridian gives and why AWS refuses it.
const REFUSED: &[(&str, &str, &str)] = &[
    (
        "aws-cloudformation-templates--community__codestar__python-webservice-lambda__template.yml",
        "invalid-intrinsic",
        "`Fn::If` whose first item is an inline `Fn::Equals` (CloudFormation: \"Fn::If requires a list argument with the first element being a condition\"), and a `Fn::GetAtt::` key (\"Encountered unsupported function\")",
    ),
    (
        "aws-codebuild-user-guide--doc_source__how-to-create-pipeline-cli.md_block0.json",
        "invalid-name",
        "the guide's `<my-pipeline-name>` stands for a name: CreatePipeline refuses it (names match [A-Za-z0-9.@\\-_]+)",
    ),
    (
        "aws-codebuild-user-guide--doc_source__sample-pipeline-batch.md_block2.json",
        "invalid-name",
        "an output artifact named `output1 ` (a trailing space): CreatePipeline refuses it (artifact names match [a-zA-Z0-9_\\-]+)",
    ),
];

/// Files whose stack AWS accepts in one region only, refused in the home region the test reads
/// them in (us-east-1).
const REFUSED_HERE: &[(&str, &str, &str)] = &[(
    "amazon-sagemaker-secure-mlops--test__cfn_templates__test-base-vpc-pipeline.yaml",
    "cross-region-needs-stores",
    "actions in `TestVPCRegion` (default us-east-2) and a single `ArtifactStore`: CreatePipeline accepts it only in that region (`--region us-east-2`); in us-east-1 it needs `ArtifactStores`",
)];

/// Files AWS accepts and Meridian does not yet: each a limitation on record (issue 17's closing
/// note), with the diagnostic code and the reason.
const NOT_YET: &[(&str, &str, &str)] = &[];

/// The least number of definitions the corpus must hold (the issue asks for 50).
const MIN_DEFINITIONS: usize = 50;

/// Where the corpus was assembled (`python3 scripts/corpus.py`): MERIDIAN_CORPUS, or
/// ../shared/corpus beside the project.
fn corpus() -> Option<PathBuf> {
    let dir = std::env::var_os("MERIDIAN_CORPUS")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/corpus"));
    if dir.is_dir() {
        return Some(dir);
    }
    eprintln!(
        "\n!!! {} not found: SKIPPING the corpus of real pipeline definitions (assemble it with `python3 scripts/corpus.py`) !!!\n",
        dir.display()
    );
    None
}

/// The corpus's manifest, committed: (file, licence) of every pipelines file it names.
fn manifest() -> Vec<(String, String)> {
    let text =
        std::fs::read_to_string(PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../corpus/SOURCES.tsv")).unwrap();
    text.lines()
        .skip(1)
        .map(|l| l.split('\t').collect::<Vec<_>>())
        .filter(|c| c[0] == "pipelines")
        .map(|c| (c[1].to_string(), c[6].to_string()))
        .collect()
}

#[test]
fn real_pipeline_definitions_are_read_as_aws_reads_them() {
    let Some(dir) = corpus() else { return };
    let manifest = manifest();
    for (name, _, _) in REFUSED.iter().chain(REFUSED_HERE).chain(NOT_YET) {
        assert!(
            manifest.iter().any(|(n, _)| n == name),
            "{name} is expected but not in corpus/SOURCES.tsv"
        );
    }
    // every file the manifest names is there: a partial corpus is an error, not a smaller test
    let files: Vec<PathBuf> = manifest
        .iter()
        .map(|(name, _)| dir.join("pipelines").join(name))
        .collect();
    let missing: Vec<_> = files.iter().filter(|p| !p.is_file()).collect();
    assert!(
        missing.is_empty(),
        "the corpus lacks {} files, e.g. {:?}: run `python3 scripts/corpus.py`",
        missing.len(),
        missing.first()
    );
    // a file the manifest does not name has no origin or licence on record
    for entry in std::fs::read_dir(dir.join("pipelines")).unwrap() {
        let name = entry.unwrap().file_name().into_string().unwrap();
        assert!(
            manifest.iter().any(|(n, _)| *n == name),
            "{name} is not in corpus/SOURCES.tsv"
        );
    }
    assert!(
        files.len() >= MIN_DEFINITIONS,
        "the corpus holds {} definitions",
        files.len()
    );
    let mut failures = Vec::new();
    let (mut cfn, mut api, mut v2, mut cross) = (0, 0, 0, 0);
    for path in &files {
        let name = path.file_name().unwrap().to_str().unwrap();
        // every file says where it comes from and under which licence
        let licence = &manifest.iter().find(|(n, _)| n == name).unwrap().1;
        assert!(
            ["MIT-0", "MIT", "Apache-2.0"].contains(&licence.as_str()),
            "{name}: licence {licence} is not one that allows a copy"
        );
        // the corpus's file names are long: a stack name as a user would give it
        let opts = LoadOptions {
            stack_name: Some("corpus-stack".into()),
            ..Default::default()
        };
        let loaded = load_files(std::slice::from_ref(path), &opts);
        let errors: Vec<_> = loaded
            .diagnostics
            .iter()
            .filter(|d| d.severity == Severity::Error)
            .collect();
        for d in &loaded.diagnostics {
            assert!(d.help.is_some(), "{name}: `{}` has no help", d.message);
        }
        match REFUSED
            .iter()
            .chain(REFUSED_HERE)
            .chain(NOT_YET)
            .find(|(f, _, _)| *f == name)
        {
            Some((_, code, why)) if !errors.iter().any(|d| d.code == *code) => {
                failures.push(format!(
                    "{name}: expected a `{code}` error ({why}), found {:?}",
                    errors.iter().map(|d| &d.message).collect::<Vec<_>>()
                ));
            }
            Some(_) => {}
            None if !errors.is_empty() || loaded.pipelines.is_empty() => failures.push(format!(
                "{name}:\n{}",
                loaded
                    .diagnostics
                    .iter()
                    .filter(|d| d.is_error())
                    .map(|d| d.render(&loaded.sources, false))
                    .collect::<String>()
            )),
            None => {}
        }
        for p in &loaded.pipelines {
            match p.format {
                meridian_pipeline::model::SourceFormat::Cloudformation => cfn += 1,
                _ => api += 1,
            }
            if p.pipeline_type == meridian_pipeline::model::PipelineType::V2 {
                v2 += 1;
            }
            if p.artifact_stores.len() > 1 {
                cross += 1;
            }
        }
    }
    eprintln!(
        "{} definitions: {cfn} CloudFormation pipelines, {api} CodePipeline JSON pipelines, {v2} V2, {cross} cross-region; {} refused as AWS would, {} not yet read",
        files.len(),
        REFUSED.len() + REFUSED_HERE.len(),
        NOT_YET.len()
    );
    // and in the region where AWS accepts them, they are valid
    for (name, _, _) in REFUSED_HERE {
        let opts = LoadOptions {
            stack_name: Some("corpus-stack".into()),
            region: Some("us-east-2".into()),
            ..Default::default()
        };
        let loaded = load_files(&[dir.join("pipelines").join(name)], &opts);
        if loaded.diagnostics.iter().any(|d| d.is_error()) {
            failures.push(format!(
                "{name} in us-east-2: {:?}",
                loaded
                    .diagnostics
                    .iter()
                    .filter(|d| d.is_error())
                    .map(|d| &d.message)
                    .collect::<Vec<_>>()
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} definitions:\n\n{}",
        failures.len(),
        files.len(),
        failures.join("\n\n")
    );
    assert!(
        api >= 3 && v2 >= 1 && cross >= 1,
        "the corpus lacks a kind: {api} API JSON, {v2} V2, {cross} cross-region"
    );
}
