//! Validation: every rule of CodePipeline that can be checked without AWS, and the multi-region
//! mistakes users make most, all reported at once with the place and the fix.

use crate::diag::Diagnostic;
use crate::model::*;
use crate::source::Span;
use meridian_core::region::edit_distance;
use meridian_core::RegionId;
use std::collections::{BTreeMap, BTreeSet, HashMap};

/// CodePipeline's documented quotas that a definition can break.
pub mod limits {
    pub const MIN_STAGES: usize = 2;
    pub const MAX_STAGES: usize = 50;
    pub const MAX_ACTIONS_PER_STAGE: usize = 50;
    pub const MAX_RUN_ORDER: i64 = 999;
    pub const MAX_NAME_LEN: usize = 100;
    pub const MAX_VARIABLES: usize = 50;
    pub const TIMEOUT_MINUTES: std::ops::RangeInclusive<i64> = 5..=86400;
    /// CodeBuild's build timeout.
    pub const BUILD_TIMEOUT_MINUTES: std::ops::RangeInclusive<i64> = 5..=2160;
}

/// What CodePipeline knows of a provider: where it belongs, what it needs, what it takes and gives.
pub struct ProviderSpec {
    pub category: &'static str,
    pub owners: &'static [&'static str],
    pub provider: &'static str,
    pub required: &'static [&'static str],
    pub inputs: (usize, usize),
    pub outputs: (usize, usize),
}

const fn spec(
    category: &'static str,
    owners: &'static [&'static str],
    provider: &'static str,
    required: &'static [&'static str],
    inputs: (usize, usize),
    outputs: (usize, usize),
) -> ProviderSpec {
    ProviderSpec {
        category,
        owners,
        provider,
        required,
        inputs,
        outputs,
    }
}

const AWS: &[&str] = &["AWS"];

pub const PROVIDERS: &[ProviderSpec] = &[
    spec("Source", AWS, "S3", &["S3Bucket", "S3ObjectKey"], (0, 0), (1, 1)),
    spec(
        "Source",
        AWS,
        "CodeCommit",
        &["RepositoryName", "BranchName"],
        (0, 0),
        (1, 1),
    ),
    spec("Source", AWS, "ECR", &["RepositoryName"], (0, 0), (1, 1)),
    spec(
        "Source",
        &["ThirdParty"],
        "GitHub",
        &["Owner", "Repo", "Branch", "OAuthToken"],
        (0, 0),
        (1, 1),
    ),
    spec(
        "Source",
        AWS,
        "CodeStarSourceConnection",
        &["ConnectionArn", "FullRepositoryId", "BranchName"],
        (0, 0),
        (1, 1),
    ),
    spec(
        "Source",
        &["Meridian"],
        "LocalGit",
        &["RepositoryPath", "BranchName"],
        (0, 0),
        (1, 1),
    ),
    spec("Build", AWS, "CodeBuild", &["ProjectName"], (1, 5), (0, 5)),
    spec("Test", AWS, "CodeBuild", &["ProjectName"], (1, 5), (0, 5)),
    spec("Build", &["Meridian"], "Package", &["TemplatePath"], (1, 5), (1, 1)),
    spec("Approval", AWS, "Manual", &[], (0, 0), (0, 0)),
    spec(
        "Deploy",
        AWS,
        "CloudFormation",
        &["ActionMode", "StackName"],
        (0, 10),
        (0, 1),
    ),
    spec(
        "Deploy",
        AWS,
        "CloudFormationStackSet",
        &["StackSetName", "TemplatePath", "DeploymentTargets"],
        (1, 10),
        (0, 0),
    ),
    spec(
        "Deploy",
        AWS,
        "CodeDeploy",
        &["ApplicationName", "DeploymentGroupName"],
        (1, 1),
        (0, 0),
    ),
    spec("Deploy", AWS, "ECS", &["ClusterName", "ServiceName"], (1, 1), (0, 0)),
    spec(
        "Deploy",
        AWS,
        "CodeDeployToECS",
        &[
            "ApplicationName",
            "DeploymentGroupName",
            "TaskDefinitionTemplateArtifact",
            "AppSpecTemplateArtifact",
        ],
        (1, 3),
        (0, 0),
    ),
    spec("Deploy", AWS, "S3", &["BucketName", "Extract"], (1, 1), (0, 0)),
    spec(
        "Deploy",
        AWS,
        "ElasticBeanstalk",
        &["ApplicationName", "EnvironmentName"],
        (1, 1),
        (0, 0),
    ),
    spec(
        "Deploy",
        AWS,
        "AppConfig",
        &[
            "Application",
            "Environment",
            "ConfigurationProfile",
            "InputArtifactConfigurationPath",
            "DeploymentStrategy",
        ],
        (1, 1),
        (0, 0),
    ),
    spec("Invoke", AWS, "Lambda", &["FunctionName"], (0, 5), (0, 5)),
    spec("Invoke", AWS, "StepFunctions", &["StateMachineArn"], (0, 1), (0, 1)),
    spec("Compute", AWS, "Commands", &[], (1, 10), (0, 1)),
];

const CATEGORIES: &[&str] = &["Source", "Build", "Test", "Deploy", "Approval", "Invoke", "Compute"];
const CFN_MODES: &[&str] = &[
    "CREATE_UPDATE",
    "CHANGE_SET_REPLACE",
    "CHANGE_SET_EXECUTE",
    "DELETE_ONLY",
    "REPLACE_ON_FAILURE",
];
const CODEPIPELINE_VARIABLES: &[&str] = &["PipelineExecutionId", "PipelineName", "PipelineExecutionStartTime"];

pub fn find_provider(t: &ActionTypeId) -> Option<&'static ProviderSpec> {
    PROVIDERS
        .iter()
        .find(|p| p.provider == t.provider && p.category == t.category && p.owners.contains(&t.owner.as_str()))
}

use crate::is_placeholder;

fn name_ok(name: &str, extra: &str) -> bool {
    !name.is_empty()
        && name.len() <= limits::MAX_NAME_LEN
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_".contains(c) || extra.contains(c))
}

/// The warning for a value the definition leaves to AWS or to an unset parameter, standing where
/// a check needs the value (a name, a region): the check waits until the value is given.
fn placeholder_warning(what: &str, value: &str, span: Option<Span>) -> Diagnostic {
    Diagnostic::warning(
        "placeholder",
        format!(
            "{what} is `{value}`, from {}: it is checked when the value is known",
            crate::cfn::placeholder_origin(value)
        ),
    )
    .at_opt(span)
    .help(crate::cfn::placeholder_help(value))
}

/// Checks a pipeline and returns every problem found.
pub fn validate(p: &Pipeline) -> Vec<Diagnostic> {
    let mut d = Vec::new();
    let pspan = p.loc.node;
    if is_placeholder(&p.name) {
        d.push(placeholder_warning("the pipeline's name", &p.name, p.loc.at("name")));
    } else if !p.name.is_empty() && !name_ok(&p.name, ".@") {
        d.push(
            Diagnostic::error("invalid-name", format!("`{}` is not a valid pipeline name", p.name))
                .at_opt(p.loc.at("name"))
                .help("use at most 100 letters, digits and . @ - _"),
        );
    }
    check_stores(p, &mut d);
    check_projects(p, &mut d);
    check_v2_features(p, &mut d);
    if p.stages.len() < limits::MIN_STAGES {
        d.push(
            Diagnostic::error(
                "too-few-stages",
                format!(
                    "the pipeline has {} stage(s); CodePipeline needs at least {}",
                    p.stages.len(),
                    limits::MIN_STAGES
                ),
            )
            .at_opt(p.loc.at("stages"))
            .help("add a stage after the source stage, such as a Build or Deploy stage"),
        );
    }
    if p.stages.len() > limits::MAX_STAGES {
        d.push(
            Diagnostic::error(
                "limit",
                format!(
                    "the pipeline has {} stages; CodePipeline allows at most {}",
                    p.stages.len(),
                    limits::MAX_STAGES
                ),
            )
            .at_opt(p.loc.at("stages"))
            .help("merge stages, or split the pipeline in two"),
        );
    }
    if p.variables.len() > limits::MAX_VARIABLES {
        d.push(
            Diagnostic::error(
                "limit",
                format!(
                    "the pipeline declares {} variables; CodePipeline allows at most {}",
                    p.variables.len(),
                    limits::MAX_VARIABLES
                ),
            )
            .at_opt(pspan)
            .help("remove the variables the pipeline does not use, or pass values through an artifact"),
        );
    }
    let mut var_names: HashMap<&str, Span> = HashMap::new();
    for v in &p.variables {
        if let Some(first) = var_names.insert(&v.name, v.loc.at("name").unwrap_or_default()) {
            d.push(
                Diagnostic::error(
                    "duplicate-variable",
                    format!("the pipeline variable `{}` is declared twice", v.name),
                )
                .at_opt(v.loc.at("name"))
                .related(first, "first declared here")
                .help("rename or remove one of them"),
            );
        }
        if is_placeholder(&v.name) {
            d.push(placeholder_warning("a variable's name", &v.name, v.loc.at("name")));
        } else if !name_ok(&v.name, "@") || v.name.len() > 128 {
            d.push(
                Diagnostic::error("invalid-name", format!("`{}` is not a valid variable name", v.name))
                    .at_opt(v.loc.at("name"))
                    .help("use letters, digits and @ - _"),
            );
        }
    }

    // Names.
    let mut stage_names: HashMap<&str, Option<Span>> = HashMap::new();
    for s in &p.stages {
        if let Some(first) = stage_names.insert(&s.name, s.loc.at("name")) {
            let mut diag = Diagnostic::error("duplicate-stage", format!("two stages are named `{}`", s.name))
                .at_opt(s.loc.at("name"))
                .help("stage names are unique in a pipeline: rename one of them");
            if let Some(f) = first {
                diag = diag.related(f, "first used here");
            }
            d.push(diag);
        }
        if is_placeholder(&s.name) {
            d.push(placeholder_warning("a stage's name", &s.name, s.loc.at("name")));
        } else if !s.name.is_empty() && !name_ok(&s.name, ".@") {
            d.push(
                Diagnostic::error("invalid-name", format!("`{}` is not a valid stage name", s.name))
                    .at_opt(s.loc.at("name"))
                    .help("use at most 100 letters, digits and . @ - _"),
            );
        }
        if s.actions.is_empty() {
            d.push(
                Diagnostic::error("empty-stage", format!("stage `{}` has no actions", s.name))
                    .at_opt(s.loc.at("name"))
                    .help("add an action, or remove the stage"),
            );
        }
        if s.actions.len() > limits::MAX_ACTIONS_PER_STAGE {
            d.push(
                Diagnostic::error(
                    "limit",
                    format!(
                        "stage `{}` has {} actions; CodePipeline allows at most {} in a stage",
                        s.name,
                        s.actions.len(),
                        limits::MAX_ACTIONS_PER_STAGE
                    ),
                )
                .at_opt(s.loc.at("name"))
                .help("split the stage in two: deploy half of the regions in a later stage"),
            );
        }
        let mut action_names: HashMap<&str, Option<Span>> = HashMap::new();
        for a in &s.actions {
            if let Some(first) = action_names.insert(&a.name, a.loc.at("name")) {
                let mut diag = Diagnostic::error("duplicate-action", format!("two actions of stage `{}` are named `{}`", s.name, a.name))
                    .at_opt(a.loc.at("name"))
                    .help("action names are unique in a stage: rename one (multi-region pipelines usually add the region, such as DeployToUsWest2)");
                if let Some(f) = first {
                    diag = diag.related(f, "first used here");
                }
                d.push(diag);
            }
            if is_placeholder(&a.name) {
                d.push(placeholder_warning(
                    &format!("the name of an action of stage `{}`", s.name),
                    &a.name,
                    a.loc.at("name"),
                ));
            } else if !a.name.is_empty() && !name_ok(&a.name, ".@") {
                d.push(
                    Diagnostic::error("invalid-name", format!("`{}` is not a valid action name", a.name))
                        .at_opt(a.loc.at("name"))
                        .help("use at most 100 letters, digits and . @ - _"),
                );
            }
        }
        check_conditions(s, &mut d);
    }

    // Source actions only, and only in the first stage.
    for (i, s) in p.stages.iter().enumerate() {
        for a in &s.actions {
            let is_source = a.category() == "Source";
            if i == 0 && !is_source {
                d.push(
                    Diagnostic::error(
                        "first-stage-not-source",
                        format!(
                            "the first stage `{}` has `{}`, a {} action; the first stage holds only source actions",
                            s.name,
                            a.name,
                            a.category()
                        ),
                    )
                    .at_opt(a.loc.at("category"))
                    .help("move this action to a later stage, after the source stage"),
                );
            }
            if i > 0 && is_source {
                d.push(
                    Diagnostic::error(
                        "source-not-first",
                        format!(
                            "source action `{}` is in stage `{}`; source actions belong in the first stage",
                            a.name, s.name
                        ),
                    )
                    .at_opt(a.loc.at("category"))
                    .help("move it to the first stage"),
                );
            }
        }
    }

    check_actions(p, &mut d);
    check_artifacts_and_variables(p, &mut d);
    check_triggers(p, &mut d);
    d
}

fn check_stores(p: &Pipeline, d: &mut Vec<Diagnostic>) {
    if p.artifact_store.is_some() && !p.artifact_stores.is_empty() {
        d.push(
            Diagnostic::error(
                "both-artifact-stores",
                "the pipeline has both `artifactStore` and `artifactStores`",
            )
            .at_opt(p.loc.at("artifactStores"))
            .help("keep `artifactStores` (one per region) and move the single store into it under its region"),
        );
    }
    let native_without_regions =
        p.format == SourceFormat::Native && p.meridian.delivery.as_ref().is_none_or(|d| d.waves.is_empty());
    if p.artifact_store.is_none() && p.artifact_stores.is_empty() && !native_without_regions {
        d.push(
            Diagnostic::error("no-artifact-store", "the pipeline has no artifact store")
                .at_opt(p.loc.at("name"))
                .help("add `artifactStore` (one region) or `artifactStores` with a store for every region the pipeline acts in"),
        );
    }
    let mut reported = Vec::new();
    for (region, store) in &p.artifact_stores {
        if is_placeholder(region) {
            d.push(placeholder_warning(
                "an artifact store's region",
                region,
                store.loc.at("region"),
            ));
            reported.push(store.loc.at("region"));
            continue;
        }
        if let Err(e) = RegionId::new(region) {
            d.push(region_error(&e, store.loc.at("region"), "artifact store"));
            reported.push(store.loc.at("region"));
        }
    }
    for (s, a) in p.actions() {
        let Some(region) = &a.region else { continue };
        if is_placeholder(region) {
            if !reported.contains(&a.loc.at("region")) {
                d.push(placeholder_warning(
                    &format!("the region of action `{}`", a.name),
                    region,
                    a.loc.at("region"),
                ));
            }
            continue;
        }
        if let Err(e) = RegionId::new(region) {
            // The native format writes a region once for its store and its actions: say it once.
            if !reported.contains(&a.loc.at("region")) {
                d.push(region_error(&e, a.loc.at("region"), &format!("action `{}`", a.name)));
            }
            continue;
        }
        // an action in the pipeline's own region uses the pipeline's single store
        if *region == p.home_region && p.artifact_stores.is_empty() {
            continue;
        }
        if p.artifact_store.is_some() && p.artifact_stores.is_empty() {
            let home = if p.home_region.is_empty() {
                "us-east-1"
            } else {
                p.home_region.as_str()
            };
            d.push(
                Diagnostic::error("cross-region-needs-stores", format!("action `{}` of stage `{}` runs in `{region}`, but the pipeline lives in `{home}` and has a single `artifactStore`", a.name, s.name))
                    .at_opt(a.loc.at("region"))
                    .help(format!("if the pipeline lives in `{region}`, say so with `--region {region}`; otherwise replace `artifactStore` with `artifactStores`: one store in `{home}` and one in `{region}`")),
            );
        } else if !p.artifact_stores.is_empty() && !p.artifact_stores.contains_key(region) {
            let have: Vec<&str> = p.artifact_stores.keys().map(String::as_str).collect();
            let example = p
                .artifact_stores
                .values()
                .next()
                .map(|s| s.location.clone())
                .unwrap_or_default();
            d.push(
                Diagnostic::error("no-artifact-store-in-region", format!("action `{}` of stage `{}` runs in `{region}`, which has no artifact store", a.name, s.name))
                    .at_opt(a.loc.at("region"))
                    .label("no artifact store for this region")
                    .help(format!(
                        "add a store for `{region}` to `artifactStores` (stores exist for {}), such as `{region}: {{type: S3, location: {}}}`: CodePipeline copies the action's input artifacts there",
                        have.join(", "),
                        guess_location(&example, have.first().copied().unwrap_or_default(), region)
                    )),
            );
        }
    }
}

fn guess_location(example: &str, example_region: &str, region: &str) -> String {
    if !example_region.is_empty() && example.contains(example_region) {
        example.replace(example_region, region)
    } else {
        format!("my-artifacts-{region}")
    }
}

fn region_error(e: &meridian_core::RegionError, span: Option<Span>, what: &str) -> Diagnostic {
    Diagnostic::error("invalid-region", format!("{e}, in {what}"))
        .at_opt(span)
        .help(match e.suggestion() {
            Some(s) => format!("did you mean `{s}`? Region names look like us-east-1, eu-west-1, ap-southeast-2"),
            None => "use an AWS region name such as us-east-1, eu-west-1 or ap-southeast-2".into(),
        })
}

fn check_v2_features(p: &Pipeline, d: &mut Vec<Diagnostic>) {
    if p.pipeline_type == PipelineType::V2 {
        return;
    }
    let help = "set `pipelineType: V2` (PipelineType in CloudFormation); V2 pipelines support this";
    if !p.variables.is_empty() {
        d.push(
            Diagnostic::error("needs-v2", "pipeline variables need a V2 pipeline")
                .at_opt(p.variables[0].loc.at("name"))
                .help(help),
        );
    }
    if !p.triggers.is_empty() {
        d.push(
            Diagnostic::error("needs-v2", "triggers need a V2 pipeline")
                .at_opt(p.triggers[0].loc.node)
                .help(help),
        );
    }
    if p.execution_mode != ExecutionMode::Superseded {
        d.push(
            Diagnostic::error(
                "needs-v2",
                format!("execution mode {:?} needs a V2 pipeline", p.execution_mode).to_uppercase(),
            )
            .at_opt(p.loc.at("executionMode"))
            .help(help),
        );
    }
    for (_, a) in p.actions() {
        if a.provider() == "Commands" {
            d.push(
                Diagnostic::error(
                    "needs-v2",
                    format!("the Commands action `{}` needs a V2 pipeline", a.name),
                )
                .at_opt(a.loc.at("provider"))
                .help(help),
            );
        }
    }
}

fn check_conditions(s: &Stage, d: &mut Vec<Diagnostic>) {
    if let Some(f) = &s.on_failure {
        if let Some(r) = &f.result {
            if !["ROLLBACK", "FAIL", "RETRY", "SKIP"].contains(&r.as_str()) {
                d.push(
                    Diagnostic::error(
                        "invalid-value",
                        format!("`{r}` is not an onFailure result of stage `{}`", s.name),
                    )
                    .at_opt(f.loc.at("result"))
                    .help("use ROLLBACK, FAIL, RETRY or SKIP"),
                );
            }
        }
        if let Some(rc) = &f.retry_configuration {
            if !["FAILED_ACTIONS", "ALL_ACTIONS"].contains(&rc.retry_mode.as_str()) {
                d.push(
                    Diagnostic::error("invalid-value", format!("`{}` is not a retry mode", rc.retry_mode))
                        .at_opt(f.loc.at("retryMode"))
                        .help("use FAILED_ACTIONS or ALL_ACTIONS"),
                );
            }
        }
    }
}

fn check_actions(p: &Pipeline, d: &mut Vec<Diagnostic>) {
    for (s, a) in p.actions() {
        let t = &a.action_type_id;
        if a.run_order < 1 || a.run_order > limits::MAX_RUN_ORDER {
            d.push(
                Diagnostic::error(
                    "invalid-run-order",
                    format!(
                        "action `{}` has run order {}; run orders go from 1 to {}",
                        a.name,
                        a.run_order,
                        limits::MAX_RUN_ORDER
                    ),
                )
                .at_opt(a.loc.at("runOrder"))
                .help("use 1 for actions that run first; actions with the same run order run together"),
            );
        }
        if let Some(tm) = a.timeout_in_minutes {
            if !limits::TIMEOUT_MINUTES.contains(&tm) {
                d.push(
                    Diagnostic::error(
                        "invalid-timeout",
                        format!(
                            "action `{}` has a timeout of {tm} minutes; CodePipeline allows 5 to 86400",
                            a.name
                        ),
                    )
                    .at_opt(a.loc.at("timeoutInMinutes"))
                    .help("give `timeoutInMinutes` between 5 and 86400"),
                );
            }
        }
        if !t.category.is_empty() && !CATEGORIES.contains(&t.category.as_str()) {
            d.push(
                Diagnostic::error(
                    "invalid-category",
                    format!("`{}` is not an action category", t.category),
                )
                .at_opt(a.loc.at("category"))
                .help(format!("use one of {}", CATEGORIES.join(", "))),
            );
            continue;
        }
        let spec = match find_provider(t) {
            Some(spec) => spec,
            None => {
                let elsewhere: Vec<&ProviderSpec> = PROVIDERS.iter().filter(|p| p.provider == t.provider).collect();
                if let Some(other) = elsewhere
                    .iter()
                    .find(|p| p.owners.contains(&t.owner.as_str()))
                    .or(elsewhere.first())
                {
                    let msg = if other.category != t.category {
                        format!(
                            "provider `{}` is not a {} action (action `{}`)",
                            t.provider, t.category, a.name
                        )
                    } else {
                        format!(
                            "provider `{}` is not owned by `{}` (action `{}`)",
                            t.provider, t.owner, a.name
                        )
                    };
                    d.push(
                        Diagnostic::error("provider-mismatch", msg)
                            .at_opt(a.loc.at("provider"))
                            .help(format!(
                                "`{}` is category {}, owner {}",
                                t.provider,
                                other.category,
                                other.owners.join("/")
                            )),
                    );
                } else if !t.provider.is_empty() && t.owner != "Custom" {
                    d.push(
                        Diagnostic::warning("unknown-provider", format!("provider `{}` of action `{}` is not one Meridian knows; it fails when run locally", t.provider, a.name))
                            .at_opt(a.loc.at("provider"))
                            .help("check the spelling; the known providers include CodeCommit, GitHub, CodeStarSourceConnection, S3, CodeBuild, CloudFormation, CodeDeploy, Lambda, Manual, Commands"),
                    );
                }
                check_counts(s, a, None, d);
                continue;
            }
        };
        for key in spec.required {
            if !a.configuration.contains_key(*key) {
                let similar = a
                    .configuration
                    .keys()
                    .find(|k| edit_distance(&k.to_ascii_lowercase(), &key.to_ascii_lowercase()) <= 2);
                d.push(
                    Diagnostic::error(
                        "missing-configuration",
                        format!("{} action `{}` needs `{key}` in its configuration", t.provider, a.name),
                    )
                    .at_opt(
                        similar
                            .and_then(|k| a.loc.exact(&format!("configuration.{k}#key")))
                            .or(a.loc.at("configuration")),
                    )
                    .help(match similar {
                        Some(k) => format!("`{k}` is written here: did you mean `{key}`?"),
                        None => format!("add `{key}: ...` to the configuration"),
                    }),
                );
            }
        }
        if t.provider == "CloudFormation" {
            check_cloudformation(a, d);
        }
        check_artifact_paths(a, d);
        if t.provider == "CodeBuild" {
            check_codebuild(p, a, d);
        }
        if t.provider == "Commands" && a.commands.is_empty() {
            d.push(
                Diagnostic::error(
                    "missing-commands",
                    format!("Commands action `{}` has no `commands`", a.name),
                )
                .at_opt(a.loc.node)
                .help("add `commands:` with the shell commands to run"),
            );
        }
        check_counts(s, a, Some(spec), d);
    }
}

fn check_counts(s: &Stage, a: &Action, spec: Option<&ProviderSpec>, d: &mut Vec<Diagnostic>) {
    let (imax, omax) = spec.map(|s| (s.inputs.1, s.outputs.1)).unwrap_or((100, 100));
    let (imin, omin) = spec.map(|s| (s.inputs.0, s.outputs.0)).unwrap_or((0, 0));
    for (kind, n, min, max) in [
        ("input", a.input_artifacts.len(), imin, imax),
        ("output", a.output_artifacts.len(), omin, omax),
    ] {
        if n < min || n > max {
            let range = if min == max {
                format!("exactly {min}")
            } else {
                format!("{min} to {max}")
            };
            d.push(
                Diagnostic::error(
                    "artifact-count",
                    format!(
                        "action `{}` of stage `{}` has {n} {kind} artifact(s); {} actions take {range}",
                        a.name,
                        s.name,
                        a.provider()
                    ),
                )
                .at_opt(
                    a.loc
                        .at(if kind == "input" {
                            "inputArtifacts.0"
                        } else {
                            "outputArtifacts.0"
                        })
                        .or(a.loc.at("name")),
                )
                .help(format!("give `{kind}Artifacts` {range} entries")),
            );
        }
    }
}

fn check_cloudformation(a: &Action, d: &mut Vec<Diagnostic>) {
    let Some(mode) = a.config("ActionMode") else {
        return;
    };
    if is_placeholder(mode) {
        d.push(placeholder_warning(
            &format!("the ActionMode of action `{}`", a.name),
            mode,
            a.loc.at("configuration.ActionMode"),
        ));
        return;
    }
    if !CFN_MODES.contains(&mode) {
        d.push(
            Diagnostic::error("invalid-value", format!("`{mode}` is not a CloudFormation action mode"))
                .at_opt(a.loc.at("configuration.ActionMode"))
                .help(format!("use one of {}", CFN_MODES.join(", "))),
        );
        return;
    }
    let needs: &[&str] = match mode {
        "CREATE_UPDATE" | "REPLACE_ON_FAILURE" => &["TemplatePath"],
        "CHANGE_SET_REPLACE" => &["TemplatePath", "ChangeSetName"],
        "CHANGE_SET_EXECUTE" => &["ChangeSetName"],
        _ => &[],
    };
    for key in needs {
        if !a.configuration.contains_key(*key) {
            d.push(
                Diagnostic::error(
                    "missing-configuration",
                    format!("CloudFormation action `{}` in mode {mode} needs `{key}`", a.name),
                )
                .at_opt(a.loc.at("configuration.ActionMode"))
                .help(format!("add `{key}` to the configuration")),
            );
        }
    }
    if let Some(caps) = a.config("Capabilities") {
        for c in caps.split(',').map(str::trim) {
            if !["CAPABILITY_IAM", "CAPABILITY_NAMED_IAM", "CAPABILITY_AUTO_EXPAND"].contains(&c) {
                d.push(
                    Diagnostic::error("invalid-value", format!("`{c}` is not a capability"))
                        .at_opt(a.loc.at("configuration.Capabilities"))
                        .help(
                            "use CAPABILITY_IAM, CAPABILITY_NAMED_IAM and CAPABILITY_AUTO_EXPAND, separated by commas",
                        ),
                );
            }
        }
    }
    if let Some(po) = a.config("ParameterOverrides") {
        if !po.contains("{{aws:") {
            if let Err(e) = serde_json::from_str::<serde_json::Map<String, serde_json::Value>>(po) {
                d.push(
                    Diagnostic::error(
                        "invalid-json",
                        format!("ParameterOverrides of action `{}` is not a JSON object: {e}", a.name),
                    )
                    .at_opt(a.loc.at("configuration.ParameterOverrides"))
                    .help("write it as a JSON object such as {\"Stage\": \"prod\"}"),
                );
            }
        }
    }
}

/// Paths written as `Artifact::path` (TemplatePath, TemplateConfiguration, and any other
/// configuration value naming one of the action's input artifacts) must stay inside the artifact.
fn check_artifact_paths(a: &Action, d: &mut Vec<Diagnostic>) {
    for (key, value) in &a.configuration {
        let Some((artifact, path)) = value.split_once("::") else {
            continue;
        };
        let names_input = a.input_artifacts.iter().any(|i| i.name == artifact);
        if !(names_input || key == "TemplatePath" || key == "TemplateConfiguration") {
            continue;
        }
        if let Err(e) = meridian_core::path::check_relative(path) {
            let why = match e {
                meridian_core::path::PathError::Absolute { .. } => "is absolute".to_string(),
                meridian_core::path::PathError::DotDot { .. } => "leaves the artifact through `..`".to_string(),
                other => other.to_string(),
            };
            d.push(
                Diagnostic::error(
                    "path-outside-artifact",
                    format!("{key} of action `{}` names `{path}`, which {why}", a.name),
                )
                .at_opt(a.loc.at(&format!("configuration.{key}")))
                .label("a path inside the artifact is expected here")
                .help(format!(
                    "write a path inside the artifact, like `{}::template.yaml`",
                    if artifact.is_empty() { "Src" } else { artifact }
                )),
            );
        }
    }
}

/// The build projects Meridian runs: a buildspec path inside the source, and CodeBuild's timeout.
fn check_projects(p: &Pipeline, d: &mut Vec<Diagnostic>) {
    for (name, project) in &p.meridian.build_projects {
        if let Some(t) = project.timeout_in_minutes {
            if !limits::BUILD_TIMEOUT_MINUTES.contains(&t) {
                d.push(
                    Diagnostic::error(
                        "invalid-timeout",
                        format!("build project `{name}` has a timeout of {t} minutes; CodeBuild allows 5 to 2160"),
                    )
                    .at_opt(project.loc.at("timeout").or(project.loc.node))
                    .help("give a build timeout between 5 and 2160 minutes (36 hours)"),
                );
            }
        }
        if let BuildSpecSource::Path(path) = &project.buildspec {
            if let Err(e) = meridian_core::path::check_relative(path) {
                d.push(
                    Diagnostic::error(
                        "path-outside-source",
                        format!("the buildspec of build project `{name}` must be inside the source: {e}"),
                    )
                    .at_opt(project.loc.at("buildspec").or(project.loc.node))
                    .help("give a path inside the primary source, like `buildspec.yml`"),
                );
            }
        }
    }
}

fn check_codebuild(p: &Pipeline, a: &Action, d: &mut Vec<Diagnostic>) {
    if let Some(ev) = a.config("EnvironmentVariables") {
        if !ev.contains("{{aws:") {
            let ok = serde_json::from_str::<Vec<serde_json::Value>>(ev)
                .map(|items| {
                    items
                        .iter()
                        .all(|i| i.get("name").is_some() && i.get("value").is_some())
                })
                .unwrap_or(false);
            if !ok {
                d.push(
                    Diagnostic::error(
                        "invalid-json",
                        format!(
                            "EnvironmentVariables of action `{}` is not a JSON list of {{name, value, type}}",
                            a.name
                        ),
                    )
                    .at_opt(a.loc.at("configuration.EnvironmentVariables"))
                    .help("write it as [{\"name\":\"STAGE\",\"value\":\"prod\",\"type\":\"PLAINTEXT\"}]"),
                );
            }
        }
    }
    if a.input_artifacts.len() > 1 {
        match a.config("PrimarySource") {
            None => d.push(
                Diagnostic::error(
                    "missing-configuration",
                    format!(
                        "CodeBuild action `{}` has {} input artifacts and no `PrimarySource`",
                        a.name,
                        a.input_artifacts.len()
                    ),
                )
                .at_opt(a.loc.at("configuration"))
                .help(format!(
                    "add `PrimarySource: {}` (the input whose buildspec runs)",
                    a.input_artifacts[0].name
                )),
            ),
            Some(ps) if !a.input_artifacts.iter().any(|i| i.name == ps) => d.push(
                Diagnostic::error(
                    "unknown-input-artifact",
                    format!(
                        "PrimarySource `{ps}` of action `{}` is not one of its input artifacts",
                        a.name
                    ),
                )
                .at_opt(a.loc.at("configuration.PrimarySource"))
                .help(format!(
                    "use one of: {}",
                    a.input_artifacts
                        .iter()
                        .map(|i| i.name.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                )),
            ),
            _ => {}
        }
    }
    if let Some(name) = a.config("ProjectName") {
        let projects = &p.meridian.build_projects;
        if p.format != SourceFormat::CodepipelineJson
            && !projects.is_empty()
            && !projects.contains_key(name)
            && !name.contains("{{aws:")
        {
            d.push(
                Diagnostic::warning(
                    "unknown-project",
                    format!(
                        "ProjectName `{name}` of action `{}` is not a CodeBuild project of this definition",
                        a.name
                    ),
                )
                .at_opt(a.loc.at("configuration.ProjectName"))
                .help(format!(
                    "the projects declared here are: {}; a local build needs the project's buildspec",
                    projects.keys().cloned().collect::<Vec<_>>().join(", ")
                )),
            );
        }
    }
}

/// `Artifact::path` references in configuration.
fn artifact_file_refs(a: &Action) -> Vec<(&'static str, String)> {
    let mut out = Vec::new();
    for key in ["TemplatePath", "TemplateConfiguration"] {
        if let Some(v) = a.config(key) {
            out.push((key, v.split_once("::").map(|x| x.0).unwrap_or(v).to_string()));
        }
    }
    if let Some(po) = a.config("ParameterOverrides") {
        // { "Fn::GetParam" : ["Artifact", "file.json", "Key"] } and
        // { "Fn::GetArtifactAtt" : ["Artifact", "ObjectKey"] }.
        if let Ok(v) = serde_json::from_str::<serde_json::Value>(po) {
            collect_fn_artifacts(&v, &mut out);
        }
    }
    out
}

fn collect_fn_artifacts(v: &serde_json::Value, out: &mut Vec<(&'static str, String)>) {
    match v {
        serde_json::Value::Object(m) => {
            for (k, v) in m {
                if k == "Fn::GetParam" || k == "Fn::GetArtifactAtt" {
                    if let Some(name) = v.get(0).and_then(|n| n.as_str()) {
                        out.push(("ParameterOverrides", name.to_string()));
                    }
                } else {
                    collect_fn_artifacts(v, out);
                }
            }
        }
        serde_json::Value::Array(items) => items.iter().for_each(|i| collect_fn_artifacts(i, out)),
        _ => {}
    }
}

/// `#{Namespace.Variable}` references in an action's configuration and commands.
fn variable_refs(a: &Action) -> Vec<(String, String, Option<Span>)> {
    let mut out = Vec::new();
    let mut scan = |text: &str, span: Option<Span>| {
        let mut rest = text;
        while let Some(i) = rest.find("#{") {
            let after = &rest[i + 2..];
            let Some(end) = after.find('}') else { break };
            let inner = &after[..end];
            if let Some((ns, var)) = inner.split_once('.') {
                out.push((ns.to_string(), var.to_string(), span));
            }
            rest = &after[end + 1..];
        }
    };
    for (k, v) in &a.configuration {
        scan(v, a.loc.at(&format!("configuration.{k}")));
    }
    for c in &a.commands {
        scan(c, a.loc.at("commands"));
    }
    out
}

fn check_artifacts_and_variables(p: &Pipeline, d: &mut Vec<Diagnostic>) {
    // Where each artifact is produced and each namespace declared: (stage index, run order, action).
    let mut produced: BTreeMap<&str, (usize, i64, &Action, &Stage)> = BTreeMap::new();
    let mut namespaces: BTreeMap<&str, (usize, i64, &Action)> = BTreeMap::new();
    for (si, s) in p.stages.iter().enumerate() {
        for a in &s.actions {
            for (i, o) in a.output_artifacts.iter().enumerate() {
                let span = a.loc.at(&format!("outputArtifacts.{i}"));
                if is_placeholder(&o.name) {
                    d.push(placeholder_warning("an output artifact's name", &o.name, span));
                } else if !name_ok(&o.name, "") {
                    d.push(
                        Diagnostic::error("invalid-name", format!("`{}` is not a valid artifact name", o.name))
                            .at_opt(span)
                            .help("use at most 100 letters, digits, - and _"),
                    );
                }
                if let Some((_, _, first, fs)) = produced.get(o.name.as_str()) {
                    let mut diag = Diagnostic::error(
                        "duplicate-artifact",
                        format!(
                            "output artifact `{}` of action `{}` is also produced by action `{}` (stage `{}`)",
                            o.name, a.name, first.name, fs.name
                        ),
                    )
                    .at_opt(span)
                    .help("output artifact names are unique in a pipeline: rename one");
                    if let Some(fspan) = first.loc.exact("outputArtifacts.0") {
                        diag = diag.related(fspan, "first produced here");
                    }
                    d.push(diag);
                } else {
                    produced.insert(&o.name, (si, a.run_order, a, s));
                }
            }
            if let Some(ns) = &a.namespace {
                let span = a.loc.at("namespace");
                if is_placeholder(ns) {
                    d.push(placeholder_warning("a namespace", ns, span));
                } else if !name_ok(ns, "@") {
                    d.push(
                        Diagnostic::error("invalid-name", format!("`{ns}` is not a valid namespace"))
                            .at_opt(span)
                            .help("use letters, digits and @ - _"),
                    );
                }
                if ns == "codepipeline" || ns == "variables" {
                    d.push(
                        Diagnostic::error("reserved-namespace", format!("`{ns}` is a reserved namespace"))
                            .at_opt(span)
                            .help("choose another namespace for this action"),
                    );
                }
                if let Some((_, _, first)) = namespaces.get(ns.as_str()) {
                    d.push(
                        Diagnostic::error(
                            "duplicate-namespace",
                            format!(
                                "namespace `{ns}` of action `{}` is already declared by action `{}`",
                                a.name, first.name
                            ),
                        )
                        .at_opt(span)
                        .help("namespaces are unique in a pipeline"),
                    );
                } else {
                    namespaces.insert(ns, (si, a.run_order, a));
                }
            }
        }
    }
    let before = |si: usize, ro: i64, psi: usize, pro: i64| psi < si || (psi == si && pro < ro);
    let declared_vars: BTreeSet<&str> = p.variables.iter().map(|v| v.name.as_str()).collect();
    for (si, s) in p.stages.iter().enumerate() {
        for a in &s.actions {
            for (i, inp) in a.input_artifacts.iter().enumerate() {
                let span = a.loc.at(&format!("inputArtifacts.{i}"));
                match produced.get(inp.name.as_str()) {
                    Some((psi, pro, pa, ps)) if !before(si, a.run_order, *psi, *pro) => {
                        let when = if std::ptr::eq(*pa, a) {
                            "itself".to_string()
                        } else if *psi == si && *pro == a.run_order {
                            format!("action `{}`, which runs at the same time (run order {pro})", pa.name)
                        } else {
                            format!("action `{}` of stage `{}`, which runs later", pa.name, ps.name)
                        };
                        d.push(
                            Diagnostic::error("input-not-yet-produced", format!("action `{}` takes `{}` as input, but it is produced by {when}", a.name, inp.name))
                                .at_opt(span)
                                .help("an input must come from an earlier stage or from an action with a lower run order in the same stage"),
                        );
                    }
                    Some(_) => {}
                    None => {
                        let hint = produced
                            .keys()
                            .map(|k| (edit_distance(k, &inp.name), *k))
                            .filter(|(dd, _)| *dd <= 3)
                            .min();
                        d.push(
                            Diagnostic::error(
                                "unknown-input-artifact",
                                format!(
                                    "action `{}` takes `{}` as input, but no earlier action produces it",
                                    a.name, inp.name
                                ),
                            )
                            .at_opt(span)
                            .label("no action outputs this artifact")
                            .help(match hint {
                                Some((_, k)) => format!("did you mean `{k}`?"),
                                None => format!(
                                    "add it to the outputArtifacts of an earlier action (produced so far: {})",
                                    produced.keys().cloned().collect::<Vec<_>>().join(", ")
                                ),
                            }),
                        );
                    }
                }
            }
            for (key, artifact) in artifact_file_refs(a) {
                if is_placeholder(&artifact) {
                    d.push(placeholder_warning(
                        &format!("the artifact that {key} of action `{}` reads from", a.name),
                        &artifact,
                        a.loc.at(&format!("configuration.{key}")),
                    ));
                } else if !a.input_artifacts.iter().any(|i| i.name == artifact) {
                    d.push(
                        Diagnostic::error("artifact-not-input", format!("{key} of action `{}` reads from artifact `{artifact}`, which is not one of its input artifacts", a.name))
                            .at_opt(a.loc.at(&format!("configuration.{key}")))
                            .help(if a.input_artifacts.is_empty() {
                                format!("add `{artifact}` to the action's inputArtifacts")
                            } else {
                                format!("add `{artifact}` to inputArtifacts, or read from one of: {}", a.input_artifacts.iter().map(|i| i.name.as_str()).collect::<Vec<_>>().join(", "))
                            }),
                    );
                }
            }
            for (ns, var, span) in variable_refs(a) {
                match ns.as_str() {
                    "codepipeline" => {
                        if !CODEPIPELINE_VARIABLES.contains(&var.as_str()) {
                            d.push(
                                Diagnostic::error("unknown-variable", format!("`#{{codepipeline.{var}}}` is not a pipeline-level variable"))
                                    .at_opt(span)
                                    .help(format!("use one of {}", CODEPIPELINE_VARIABLES.join(", "))),
                            );
                        }
                    }
                    "variables" => {
                        if !declared_vars.contains(var.as_str()) {
                            d.push(
                                Diagnostic::error("unknown-variable", format!("`#{{variables.{var}}}` names no pipeline variable"))
                                    .at_opt(span)
                                    .help(format!("declare `{var}` under the pipeline's variables")),
                            );
                        }
                    }
                    _ => match namespaces.get(ns.as_str()) {
                        Some((nsi, nro, na)) if !before(si, a.run_order, *nsi, *nro) => d.push(
                            Diagnostic::error("namespace-not-yet-declared", format!("`#{{{ns}.{var}}}` in action `{}` refers to namespace `{ns}` of action `{}`, which has not run yet", a.name, na.name))
                                .at_opt(span)
                                .help("a variable can only be used by actions that run after the action that declares its namespace"),
                        ),
                        Some(_) => {}
                        None => {
                            let hint = namespaces.keys().map(|k| (edit_distance(k, &ns), *k)).filter(|(dd, _)| *dd <= 3).min();
                            d.push(
                                Diagnostic::error("unknown-namespace", format!("`#{{{ns}.{var}}}` in action `{}` refers to namespace `{ns}`, which no earlier action declares", a.name))
                                    .at_opt(span)
                                    .help(match hint {
                                        Some((_, k)) => format!("did you mean `{k}`?"),
                                        None => format!("give the action that outputs `{var}` `namespace: {ns}`"),
                                    }),
                            );
                        }
                    },
                }
            }
        }
    }
}

fn check_triggers(p: &Pipeline, d: &mut Vec<Diagnostic>) {
    for t in &p.triggers {
        let name = &t.git_configuration.source_action_name;
        let source = p
            .stages
            .first()
            .and_then(|s| s.actions.iter().find(|a| &a.name == name));
        match source {
            None => d.push(
                Diagnostic::error("unknown-trigger-source", format!("the trigger names source action `{name}`, which is not in the first stage"))
                    .at_opt(t.loc.at("sourceActionName"))
                    .help(format!(
                        "use one of: {}",
                        p.stages.first().map(|s| s.actions.iter().map(|a| a.name.as_str()).collect::<Vec<_>>().join(", ")).unwrap_or_default()
                    )),
            ),
            Some(a) if a.provider() != "CodeStarSourceConnection" && a.provider() != "LocalGit" => d.push(
                Diagnostic::error("trigger-source-provider", format!("the trigger's source action `{name}` uses {}, but git triggers need a CodeStarSourceConnection source", a.provider()))
                    .at_opt(t.loc.at("sourceActionName"))
                    .help("use a CodeStarSourceConnection source action, or remove the trigger"),
            ),
            _ => {}
        }
    }
}
