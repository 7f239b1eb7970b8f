//! Pipeline definitions: one model, three formats in, and validation that explains every mistake.
//!
//! - [`model`]: CodePipeline's model (V1 and V2) plus Meridian's extensions.
//! - Formats: Meridian's native `meridian.yaml` ([`native`]), CodePipeline API JSON, and
//!   CloudFormation templates declaring `AWS::CodePipeline::Pipeline` ([`cfn`]).
//! - [`validate`]: all the checks, each diagnostic with file, line, column, snippet and help.
//!
//! This crate does no I/O beyond reading the definition files it is given, and never talks to AWS.

mod backends;
pub mod cfn;
pub mod diag;
pub mod graph;
pub mod model;
pub mod native;
pub mod node;
pub mod pattern;
mod read;
pub mod source;
pub mod validate;

pub use diag::{Diagnostic, Severity};
pub use model::Pipeline;
pub use source::{SourceFile, Sources, Span};

use node::Node;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

#[derive(Debug, Clone, Default)]
pub struct LoadOptions {
    /// CloudFormation parameter values (`--param Name=Value`).
    pub params: BTreeMap<String, String>,
    /// Only this pipeline (`--pipeline NAME`), when a file declares several.
    pub pipeline: Option<String>,
    /// The pipeline's home region (`--region`): `AWS::Region` of a template, and where actions
    /// without a region run. When unsaid, see [`LoadOptions::env_region`] and
    /// [`Pipeline::home_region`] for how it is found.
    pub region: Option<String>,
    /// `AWS_REGION` (else `AWS_DEFAULT_REGION`) of the environment, taken when the definition does
    /// not say its region. The library reads no environment: the caller passes it.
    pub env_region: Option<String>,
    /// `AWS::StackName` of a template (`--stack-name`); default: the file's base name.
    pub stack_name: Option<String>,
    /// `AWS::AccountId` of a template (`--account-id`); default: 123456789012.
    pub account_id: Option<String>,
}

/// The account id templates see when none is given: the account of the local regions.
pub const DEFAULT_ACCOUNT_ID: &str = "123456789012";

/// The region a pipeline lives in when nothing says otherwise.
pub const DEFAULT_REGION: &str = "us-east-1";

/// At most this many diagnostics are kept (in file order); the others are counted in
/// [`Loaded::omitted_errors`] and [`Loaded::omitted_warnings`], and said in one last diagnostic.
pub const MAX_DIAGNOSTICS: usize = 100;

/// The result of reading and validating definition files.
#[derive(Debug, Default)]
pub struct Loaded {
    pub sources: Sources,
    pub pipelines: Vec<Pipeline>,
    pub diagnostics: Vec<Diagnostic>,
    /// A file could not be read or parsed at all (exit code 2 in the CLI).
    pub unreadable: bool,
    /// Errors and warnings past [`MAX_DIAGNOSTICS`], counted but not kept.
    pub omitted_errors: usize,
    pub omitted_warnings: usize,
}

impl Loaded {
    pub fn has_errors(&self) -> bool {
        self.omitted_errors > 0 || self.diagnostics.iter().any(Diagnostic::is_error)
    }

    /// Errors found, those omitted included (the diagnostic saying how many were omitted is not
    /// one).
    pub fn error_count(&self) -> usize {
        self.diagnostics
            .iter()
            .filter(|d| d.is_error() && d.code != "too-many-diagnostics")
            .count()
            + self.omitted_errors
    }

    /// Warnings found, those omitted included.
    pub fn warning_count(&self) -> usize {
        self.diagnostics
            .iter()
            .filter(|d| !d.is_error() && d.code != "too-many-diagnostics")
            .count()
            + self.omitted_warnings
    }
}

/// Reads, expands and validates definition files.
pub fn load_files(paths: &[PathBuf], opts: &LoadOptions) -> Loaded {
    let mut out = Loaded::default();
    for path in paths {
        match source::read_text(path, source::MAX_INPUT_BYTES) {
            Ok(text) => {
                let id = out.sources.add(SourceFile::new(
                    path.display().to_string(),
                    Some(path.to_path_buf()),
                    text,
                ));
                read_one(id, &mut out, opts);
            }
            Err(e) => {
                out.unreadable = true;
                let d = e.to_diagnostic(&path.display().to_string(), Some(path), &mut out.sources);
                out.diagnostics.push(d);
            }
        }
    }
    finish(&mut out, opts);
    out
}

/// Reads, expands and validates one definition given as text (`name` is shown in diagnostics).
pub fn load_str(name: &str, text: &str, opts: &LoadOptions) -> Loaded {
    let mut out = Loaded::default();
    let id = out.sources.add(SourceFile::new(name, None, text.to_string()));
    read_one(id, &mut out, opts);
    finish(&mut out, opts);
    out
}

fn read_one(id: source::FileId, out: &mut Loaded, opts: &LoadOptions) {
    let file = out.sources.get(id).clone();
    let mut root = match node::parse_tree(id, &file, &mut out.diagnostics) {
        Ok(root) => root,
        Err(d) => {
            out.unreadable = true;
            out.diagnostics.push(*d);
            return;
        }
    };
    let d = &mut out.diagnostics;
    if root.as_map().is_none() {
        out.unreadable = true;
        d.push(
            Diagnostic::error("not-a-pipeline", format!("`{}` is not a pipeline definition: it holds {}", file.name, root.kind()))
                .at(root.span)
                .help("give a meridian.yaml, a CodePipeline JSON (`aws codepipeline get-pipeline`) or a CloudFormation template"),
        );
        return;
    }
    // Repeated keys: Meridian's own format refuses them; CloudFormation, and the JSON parsers of
    // AWS's CLI and SDKs, keep the last value.
    let policy = if native::is_native(&root) {
        node::DuplicateKeys::ErrorKeepLast
    } else if cfn::is_template(&root) {
        node::DuplicateKeys::KeepLast {
            said: "CloudFormation keeps the last value",
        }
    } else {
        node::DuplicateKeys::KeepLast {
            said: "AWS's JSON parsers (the CLI's, the SDKs') keep the last value",
        }
    };
    node::resolve_duplicate_keys(&mut root, &file, policy, d);
    let first = out.pipelines.len();
    if native::is_native(&root) {
        out.pipelines.extend(native::read_native(&root, d));
        for p in &mut out.pipelines[first..] {
            let own = p
                .meridian
                .delivery
                .as_ref()
                .map(|d| d.home_region.clone())
                .unwrap_or_default();
            p.home_region = match &opts.region {
                Some(r) => r.clone(),
                None if !own.is_empty() => own,
                None => home_region(p, None, opts),
            };
        }
    } else if cfn::is_template(&root) {
        let pseudo = cfn::Pseudo {
            region: template_region(&root, opts),
            stack_name: opts
                .stack_name
                .clone()
                .or_else(|| opts.params.get("AWS::StackName").cloned())
                .unwrap_or_else(|| base_name(&file)),
            account_id: opts
                .account_id
                .clone()
                .or_else(|| opts.params.get("AWS::AccountId").cloned())
                .unwrap_or_else(|| DEFAULT_ACCOUNT_ID.to_string()),
        };
        let mut read = cfn::read_template(&root, &opts.params, &pseudo, d);
        for p in &mut read {
            p.home_region = pseudo.region.clone();
        }
        // `Metadata: Meridian:` of the template: which backend reaches each region.
        if let Some(ext) = root
            .get("Metadata")
            .and_then(|m| m.as_map())
            .and_then(|m| m.iter().find(|(k, _)| k.as_str() == Some("Meridian")))
        {
            for p in &mut read {
                backends::read_extension(&ext.1, &mut p.meridian, d);
            }
        }
        out.pipelines.extend(read);
    } else if let Some(inner) = root.get("pipeline").filter(|p| p.as_map().is_some()) {
        // `aws codepipeline get-pipeline` output: `pipeline` and `metadata`, and Meridian's own
        // `x-meridian` beside them.
        let mut read = read::read_pipeline(inner, model::SourceFormat::CodepipelineJson, None, d);
        if let (Some(p), Some(ext)) = (read.as_mut(), root.get("x-meridian")) {
            backends::read_extension(ext, &mut p.meridian, d);
        }
        // `metadata.pipelineArn`: arn:aws:codepipeline:REGION:ACCOUNT:NAME
        let arn_region = root
            .get("metadata")
            .and_then(|m| m.get("pipelineArn"))
            .and_then(Node::as_str)
            .and_then(|arn| arn.split(':').nth(3))
            .filter(|r| !r.is_empty())
            .map(str::to_string);
        if let Some(p) = read.as_mut() {
            p.home_region = home_region(p, arn_region.as_deref(), opts);
        }
        out.pipelines.extend(read);
    } else if root.get("stages").is_some() || root.get("name").is_some() {
        let mut read = read::read_pipeline(&root, model::SourceFormat::CodepipelineJson, None, d);
        if let Some(p) = read.as_mut() {
            p.home_region = home_region(p, None, opts);
        }
        out.pipelines.extend(read);
    } else {
        out.unreadable = true;
        d.push(
            Diagnostic::error("not-a-pipeline", format!("`{}` is not a pipeline definition Meridian knows", file.name))
                .at(root.span)
                .help("a meridian.yaml starts with `pipeline: NAME`; CodePipeline JSON has `pipeline` or `stages`; a CloudFormation template has `Resources`"),
        );
    }
}

/// A file's base name without its extension (`pipeline.yaml` gives `pipeline`): a template's
/// `AWS::StackName` when none is given.
fn base_name(file: &SourceFile) -> String {
    let name = file.path.as_deref().unwrap_or(Path::new(&file.name));
    name.file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "stack".to_string())
}

/// Is `s` a value the definition leaves to AWS or to a parameter (a `{{aws:...}}` placeholder)?
pub fn is_placeholder(s: &str) -> bool {
    s.contains("{{aws:")
}

/// The region every action names, when every action names one and they agree (an action
/// without a region runs in the home region, which is what is being looked for).
fn agreed_region<'a>(mut regions: impl Iterator<Item = Option<&'a str>>) -> Option<String> {
    let first = regions.next()??;
    if is_placeholder(first) || first.is_empty() {
        return None;
    }
    regions.all(|r| r == Some(first)).then(|| first.to_string())
}

/// The home region of a CodePipeline JSON pipeline: `--region`, else the region every action
/// names (when all name the same), else the region of `metadata.pipelineArn`, else the environment's, else us-east-1. An
/// `artifactStores` map holds the pipeline's own region: when the last two are not in it, its
/// first region is taken.
fn home_region(p: &Pipeline, arn_region: Option<&str>, opts: &LoadOptions) -> String {
    if let Some(r) = opts.region.clone().or_else(|| opts.params.get("AWS::Region").cloned()) {
        return r;
    }
    if let Some(r) = agreed_region(p.actions().map(|(_, a)| a.region.as_deref())) {
        return r;
    }
    if let Some(r) = arn_region {
        return r.to_string();
    }
    let fits = |r: &str| p.artifact_stores.is_empty() || p.artifact_stores.contains_key(r);
    if let Some(r) = opts.env_region.as_deref().filter(|r| fits(r)) {
        return r.to_string();
    }
    if fits(DEFAULT_REGION) {
        return DEFAULT_REGION.to_string();
    }
    p.artifact_stores
        .keys()
        .next()
        .cloned()
        .unwrap_or_else(|| DEFAULT_REGION.to_string())
}

/// The region of a CloudFormation template (its `AWS::Region`): `--region`, else
/// `--param AWS::Region=...`, else the region every action of its pipelines writes literally,
/// when every action writes the same one, else the environment's, else us-east-1; the last two
/// only when `ArtifactStores` (as written) has a store there, else its first region.
fn template_region(root: &Node, opts: &LoadOptions) -> String {
    if let Some(r) = opts.region.clone().or_else(|| opts.params.get("AWS::Region").cloned()) {
        return r;
    }
    let mut regions = Vec::new();
    let mut stores = Vec::new();
    for (_, res) in root.get("Resources").and_then(Node::as_map).unwrap_or(&[]) {
        if res.get("Type").and_then(Node::as_str) != Some("AWS::CodePipeline::Pipeline") {
            continue;
        }
        let props = res.get("Properties");
        for store in props
            .and_then(|p| p.get("ArtifactStores"))
            .and_then(Node::as_seq)
            .unwrap_or(&[])
        {
            if let Some(r) = store
                .get("Region")
                .filter(|r| r.intrinsic().is_none())
                .and_then(Node::as_str)
            {
                stores.push(r);
            }
        }
        let stages = props.and_then(|p| p.get("Stages")).and_then(Node::as_seq);
        for stage in stages.unwrap_or(&[]) {
            for action in stage.get("Actions").and_then(Node::as_seq).unwrap_or(&[]) {
                // `!Ref AWS::Region` and other functions say nothing here
                regions.push(
                    action
                        .get("Region")
                        .filter(|r| r.intrinsic().is_none())
                        .and_then(Node::as_str),
                );
            }
        }
    }
    if let Some(r) = agreed_region(regions.into_iter()) {
        return r;
    }
    // `ArtifactStores` holds the pipeline's own region (when written literally)
    let fits = |r: &str| stores.is_empty() || stores.contains(&r);
    match opts.env_region.as_deref() {
        Some(r) if fits(r) => r.to_string(),
        _ if fits(DEFAULT_REGION) => DEFAULT_REGION.to_string(),
        _ => stores
            .first()
            .map(|r| r.to_string())
            .unwrap_or_else(|| DEFAULT_REGION.to_string()),
    }
}

fn finish(out: &mut Loaded, opts: &LoadOptions) {
    if let Some(name) = &opts.pipeline {
        let names: Vec<String> = out.pipelines.iter().map(|p| p.name.clone()).collect();
        out.pipelines.retain(|p| &p.name == name);
        if out.pipelines.is_empty() && !out.unreadable {
            out.diagnostics.push(
                Diagnostic::error("no-such-pipeline", format!("no pipeline is named `{name}`"))
                    .help(format!("the files define: {}", names.join(", "))),
            );
        }
    }
    for p in &out.pipelines {
        out.diagnostics.extend(validate::validate(p));
    }
    // Several pipelines of one template share parameters and projects: report each problem once.
    let mut seen = std::collections::HashSet::new();
    out.diagnostics
        .retain(|d| seen.insert((d.code, d.message.clone(), d.span)));
    out.diagnostics
        .sort_by_key(|d| d.span.map(|s| (s.file, s.start)).unwrap_or((u32::MAX, 0)));
    // A flood (a 2 MB line of wrong items, 20,000 unknown fields) is said in its first
    // diagnostics and a count.
    if out.diagnostics.len() > MAX_DIAGNOSTICS {
        let rest = out.diagnostics.split_off(MAX_DIAGNOSTICS);
        out.omitted_errors = rest.iter().filter(|d| d.is_error()).count();
        out.omitted_warnings = rest.len() - out.omitted_errors;
        let make = if out.omitted_errors > 0 {
            Diagnostic::error
        } else {
            Diagnostic::warning
        };
        out.diagnostics.push(
            make(
                "too-many-diagnostics",
                format!(
                    "and {} more: {} error(s) and {} warning(s) not shown",
                    rest.len(),
                    out.omitted_errors,
                    out.omitted_warnings
                ),
            )
            .help(format!(
                "Meridian shows the first {MAX_DIAGNOSTICS} problems of a definition: fix those (most are likely the same mistake) and validate again"
            )),
        );
    }
}

/// The directory a definition's relative paths (a native `source.path`, a buildspec) start from.
pub fn base_dir(p: &Pipeline, sources: &Sources) -> Option<PathBuf> {
    let span = p.loc.node?;
    let path = sources.get(span.file).path.as_ref()?;
    Some(path.parent().map(Path::to_path_buf).unwrap_or_default())
}
