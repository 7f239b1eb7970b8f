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
mod read;
pub mod source;
pub mod validate;

pub use diag::{Diagnostic, Severity};
pub use model::Pipeline;
pub use source::{SourceFile, Sources, Span};

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

#[derive(Debug, Clone, Default)]
pub struct LoadOptions {
    /// CloudFormation parameter values (`--param Name=Value`).
    pub params: BTreeMap<String, String>,
    /// Only this pipeline (`--pipeline NAME`), when a file declares several.
    pub pipeline: Option<String>,
}

/// The result of reading and validating definition files.
#[derive(Debug, Default)]
pub struct Loaded {
    pub sources: Sources,
    pub pipelines: Vec<Pipeline>,
    pub diagnostics: Vec<Diagnostic>,
    /// A file could not be read or parsed at all (exit code 2 in the CLI).
    pub unreadable: bool,
}

impl Loaded {
    pub fn has_errors(&self) -> bool {
        self.diagnostics.iter().any(Diagnostic::is_error)
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
    let root = match node::parse(id, &file, &mut out.diagnostics) {
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
    if native::is_native(&root) {
        out.pipelines.extend(native::read_native(&root, d));
    } else if cfn::is_template(&root) {
        let mut read = cfn::read_template(&root, &opts.params, d);
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
        out.pipelines.extend(read);
    } else if root.get("stages").is_some() || root.get("name").is_some() {
        out.pipelines.extend(read::read_pipeline(
            &root,
            model::SourceFormat::CodepipelineJson,
            None,
            d,
        ));
    } else {
        out.unreadable = true;
        d.push(
            Diagnostic::error("not-a-pipeline", format!("`{}` is not a pipeline definition Meridian knows", file.name))
                .at(root.span)
                .help("a meridian.yaml starts with `pipeline: NAME`; CodePipeline JSON has `pipeline` or `stages`; a CloudFormation template has `Resources`"),
        );
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
    let mut seen = Vec::new();
    out.diagnostics.retain(|d| {
        let key = (d.code, d.message.clone(), d.span);
        if seen.contains(&key) {
            false
        } else {
            seen.push(key);
            true
        }
    });
    out.diagnostics
        .sort_by_key(|d| d.span.map(|s| (s.file, s.start)).unwrap_or((u32::MAX, 0)));
}

/// The directory a definition's relative paths (a native `source.path`, a buildspec) start from.
pub fn base_dir(p: &Pipeline, sources: &Sources) -> Option<PathBuf> {
    let span = p.loc.node?;
    let path = sources.get(span.file).path.as_ref()?;
    Some(path.parent().map(Path::to_path_buf).unwrap_or_default())
}
