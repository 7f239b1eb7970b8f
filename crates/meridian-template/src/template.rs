//! A template read from YAML (short-form tags) or JSON, with the line of every resource kept for
//! messages, and the SAM transform applied when the template asks for it.

use crate::sam;
use meridian_pipeline::node;
use meridian_pipeline::source::{SourceFile, Sources};
use serde_json::{Map, Value};
use std::collections::BTreeMap;
use std::fmt;

pub use crate::declared::MAX_RESOURCES;
use crate::declared::{self, Problem, Transform};

/// An error in a template: the file, the line when known, the resource when known, and the fix.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct TemplateError {
    pub file: String,
    pub line: Option<usize>,
    pub logical_id: Option<String>,
    pub message: String,
    pub help: Option<String>,
}

impl TemplateError {
    pub fn new(file: &str, message: impl Into<String>) -> Self {
        TemplateError {
            file: file.to_string(),
            line: None,
            logical_id: None,
            message: message.into(),
            help: None,
        }
    }
    pub fn at(mut self, line: Option<usize>) -> Self {
        self.line = line;
        self
    }
    pub fn resource(mut self, id: &str) -> Self {
        self.logical_id = Some(id.to_string());
        self
    }
    pub fn help(mut self, help: impl Into<String>) -> Self {
        self.help = Some(help.into());
        self
    }
}

impl fmt::Display for TemplateError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.file)?;
        if let Some(line) = self.line {
            write!(f, ":{line}")?;
        }
        if let Some(id) = &self.logical_id {
            write!(f, ": resource `{id}`")?;
        }
        write!(f, ": {}", self.message)?;
        if let Some(help) = &self.help {
            write!(f, " (help: {help})")?;
        }
        Ok(())
    }
}

impl std::error::Error for TemplateError {}

/// One resource as the template declares it (after the SAM transform).
#[derive(Debug, Clone, PartialEq)]
pub struct Resource {
    pub logical_id: String,
    pub type_: String,
    pub properties: Value,
    pub depends_on: Vec<String>,
    pub condition: Option<String>,
    pub deletion_policy: Option<String>,
    pub update_policy: Option<Value>,
    pub line: Option<usize>,
}

/// A parsed template.
#[derive(Debug, Clone)]
pub struct Template {
    /// The file name shown in messages.
    pub file: String,
    /// The processed template (SAM transform applied) as CloudFormation JSON.
    pub json: Value,
    /// The template as written, as JSON (before any transform).
    pub original: Value,
    /// Line of each top-level key of `Resources`, `Parameters` and `Outputs` in the file.
    lines: BTreeMap<String, usize>,
}

impl Template {
    /// Reads a template from text (YAML or JSON). The SAM transform is applied when the template
    /// declares `Transform: AWS::Serverless-2016-10-31`; `sam_opts` gives it the parameter values
    /// and region.
    pub fn parse(file: &str, text: &str, sam_opts: &sam::SamOptions) -> Result<Template, TemplateError> {
        let (original, lines) = read_json(file, text)?;
        let mut t = Template {
            file: file.to_string(),
            json: original.clone(),
            original,
            lines,
        };
        if !t.original.is_object() {
            return Err(
                TemplateError::new(file, "a template is a mapping with a `Resources` section")
                    .at(Some(1))
                    .help("start the file with `Resources:`"),
            );
        }
        // lines of the template as written, for messages while `t.json` changes
        let written = Template {
            file: String::new(),
            json: Value::Null,
            original: Value::Null,
            lines: t.lines.clone(),
        };
        let problem = |p: Problem| {
            let line = p.at.as_deref().and_then(|k| written.line_of(k));
            TemplateError::new(file, p.message).at(line).help(p.help)
        };
        let own_macros = sam_opts.macros.as_deref();
        let transforms = declared::transforms_with(&t.original, &|name| own_macros.is_some_and(|m| m.exists(name)))
            .map_err(problem)?;
        let macro_ctx = crate::include::MacroContext::new(
            &sam_opts.region,
            &sam_opts.account_id,
            &sam_opts.parameter_values,
            &t.original,
        );
        // Macros run from the most deeply nested outward: the snippets of `Fn::Transform` come in
        // before the `Transform` section is applied.
        let mut budget = crate::include::Budget::default();
        let include_error = |e: crate::include::IncludeError| {
            // lines are known of sections and of the entries of Resources, Parameters, Outputs
            let mut parts = e.at.split('.');
            let section = parts.next().unwrap_or_default();
            let entry = parts
                .next()
                .filter(|_| matches!(section, "Resources" | "Parameters" | "Outputs"));
            TemplateError::new(file, e.message)
                .at(entry.and_then(|id| written.lines.get(id).copied()).or_else(|| written.line_of(section)))
                .help("put the snippet in the region's S3 (`aws s3 cp snippet.yaml s3://BUCKET/KEY --endpoint-url` the local endpoint) or fix `Location`")
        };
        if sam_opts.snippets.is_some() || own_macros.is_some() {
            t.json = crate::include::expand_all(
                &t.json,
                &sam_opts.parameter_values,
                sam_opts.snippets.as_deref(),
                own_macros.map(|m| (m, &macro_ctx)),
                &mut budget,
            )
            .map_err(include_error)?;
        }
        declared::check(&t.json).map_err(problem)?;
        // CloudFormation applies the transforms in the order the template lists them.
        for tr in &transforms {
            match tr {
                Transform::Include(location) => match &sam_opts.snippets {
                    Some(snippets) => crate::include::include_top(
                        &mut t.json,
                        location,
                        &sam_opts.parameter_values,
                        snippets.as_ref(),
                        &mut budget,
                    )
                    .map_err(include_error)?,
                    None => {
                        return Err(TemplateError::new(
                            file,
                            format!("the template includes {location} with AWS::Include, a snippet in S3, and this command reads no region's buckets"),
                        )
                        .at(t.line_of("Transform"))
                        .help("deploy the stack to a region (`meridian stack deploy`), which reads the snippet from its S3, or paste the snippet into the template"))
                    }
                },
                Transform::LanguageExtensions => {
                    t.json = crate::extensions::apply(&t.json, &sam_opts.parameter_values).map_err(|m| {
                        TemplateError::new(file, format!("{}: {m}", declared::LANGUAGE_EXTENSIONS))
                            .at(t.line_of("Transform"))
                            .help("fix the loop or policy as the message says (see docs/stacks.md)")
                    })?;
                }
                Transform::Sam => {}
                Transform::Macro(name, params) => {
                    if let Some(m) = own_macros {
                        let fragment = std::mem::take(&mut t.json);
                        t.json = crate::include::run_macro(m, name, params, fragment, &macro_ctx, &mut budget, "Transform")
                            .map_err(include_error)?;
                        if !t.json.is_object() {
                            return Err(TemplateError::new(
                                file,
                                format!("Transform {}::{name} failed with: the macro's fragment is not a template (a mapping)", sam_opts.account_id),
                            )
                            .at(written.line_of("Transform"))
                            .help("a macro in the Transform section must answer the whole template as its fragment"));
                        }
                    }
                }
            }
        }
        if transforms.contains(&Transform::Sam) {
            t.json = sam::transform(&t.json, sam_opts).map_err(|e| {
                let id = e.errors.first().and_then(|r| r.logical_id.clone());
                let mut err = TemplateError::new(file, e.to_string()).help(
                    "fix the resource as the message says; `meridian template transform FILE` shows the SAM transform's output",
                );
                if let Some(id) = id {
                    err.line = t.line_of(&id);
                    err.logical_id = Some(id);
                }
                err
            })?;
        }
        t.check_shape()?;
        Ok(t)
    }

    /// Names another file in messages, with its lines: the template the user wrote, when this one
    /// was generated from it (a packaged copy).
    pub fn relabel(&mut self, file: &str, original_text: &str) {
        if let Ok((_, lines)) = read_json(file, original_text) {
            self.lines = lines;
            self.file = file.to_string();
        }
    }

    /// Reads a template file.
    pub fn load(path: &std::path::Path, sam_opts: &sam::SamOptions) -> Result<Template, TemplateError> {
        use meridian_pipeline::source::{read_text, ReadError, MAX_INPUT_BYTES};
        let name = path.display().to_string();
        let text = read_text(path, MAX_INPUT_BYTES).map_err(|e| match &e {
            ReadError::Io(_) => {
                TemplateError::new(&name, format!("cannot read the template: {e}")).help("check the path")
            }
            ReadError::TooLarge { .. } => TemplateError::new(&name, format!("cannot read the template: {e}")).help(
                "CloudFormation accepts templates of at most 1 MB (51,200 bytes inline), and Meridian reads files of up to 10 MiB: check that this is the template",
            ),
            ReadError::NotText { offset, text, .. } => {
                let line = text.as_bytes()[..(*offset).min(text.len())].iter().filter(|b| **b == b'\n').count() + 1;
                TemplateError::new(&name, format!("the template is {e}"))
                    .at(Some(line))
                    .help("templates are UTF-8 text: check that this is the right file (not a binary or an archive), or convert it (`iconv -t UTF-8`)")
            }
        })?;
        Template::parse(&path.display().to_string(), &text, sam_opts)
    }

    /// The line of a logical id (resource, parameter or output) in the file. Resources the SAM
    /// transform generated point at the serverless resource they came from.
    pub fn line_of(&self, id: &str) -> Option<usize> {
        if let Some(l) = self.lines.get(id) {
            return Some(*l);
        }
        self.lines
            .iter()
            .filter(|(k, _)| id.starts_with(k.as_str()))
            .max_by_key(|(k, _)| k.len())
            .map(|(_, l)| *l)
    }

    pub fn section(&self, name: &str) -> Option<&Map<String, Value>> {
        self.json.get(name).and_then(Value::as_object)
    }

    pub fn resources(&self) -> Vec<Resource> {
        let Some(res) = self.section("Resources") else {
            return Vec::new();
        };
        res.iter()
            .map(|(id, r)| Resource {
                logical_id: id.clone(),
                type_: r.get("Type").and_then(Value::as_str).unwrap_or_default().to_string(),
                properties: r
                    .get("Properties")
                    .cloned()
                    .unwrap_or_else(|| Value::Object(Map::new())),
                depends_on: match r.get("DependsOn") {
                    Some(Value::String(s)) => vec![s.clone()],
                    Some(Value::Array(a)) => a.iter().filter_map(|v| v.as_str().map(String::from)).collect(),
                    _ => Vec::new(),
                },
                condition: r.get("Condition").and_then(Value::as_str).map(String::from),
                deletion_policy: r.get("DeletionPolicy").and_then(Value::as_str).map(String::from),
                update_policy: r.get("UpdatePolicy").cloned(),
                line: self.line_of(id),
            })
            .collect()
    }

    fn check_shape(&self) -> Result<(), TemplateError> {
        let file = &self.file;
        let Some(res) = self.json.get("Resources") else {
            return Err(TemplateError::new(file, "the template has no `Resources` section")
                .at(Some(1))
                .help("a template declares at least one resource under `Resources:`"));
        };
        let Some(res) = res.as_object() else {
            return Err(
                TemplateError::new(file, "`Resources` must be a mapping of logical ids to resources")
                    .at(self.line_of("Resources")),
            );
        };
        // CloudFormation's quota, counted on the processed template (after the SAM transform).
        declared::quota("Resources", "resources", res.len(), MAX_RESOURCES).map_err(|p| {
            TemplateError::new(file, p.message)
                .at(self.line_of("Resources"))
                .help(p.help)
        })?;
        if res.is_empty() {
            return Err(TemplateError::new(
                file,
                "Template format error: At least one Resources member must be defined.",
            )
            .at(self.line_of("Resources"))
            .help("declare at least one resource"));
        }
        for (id, r) in res {
            let err = |m: String| TemplateError::new(file, m).at(self.line_of(id)).resource(id);
            if id.starts_with("Fn::ForEach::") {
                return Err(err(format!("logical id `{id}` must be alphanumeric (A-Za-z0-9)"))
                    .help("a Fn::ForEach loop needs `Transform: AWS::LanguageExtensions` (before AWS::Serverless-2016-10-31 in a list)"));
            }
            if !id.chars().all(|c| c.is_ascii_alphanumeric()) || id.is_empty() {
                return Err(err(format!("logical id `{id}` must be alphanumeric (A-Za-z0-9)")));
            }
            let Some(obj) = r.as_object() else {
                return Err(err("a resource must be a mapping with `Type` and `Properties`".into()));
            };
            match obj.get("Type").and_then(Value::as_str) {
                Some(_) => {}
                None => {
                    return Err(err("the resource has no `Type`".into())
                        .help("add `Type:`, for example `Type: AWS::Lambda::Function`"))
                }
            }
            let custom = obj
                .get("Type")
                .and_then(Value::as_str)
                .is_some_and(|t| t.starts_with("Custom::") || t == "AWS::CloudFormation::CustomResource");
            for key in obj.keys() {
                // Custom resources take a `Version` attribute (of the provider's protocol).
                if custom && key == "Version" {
                    continue;
                }
                if !matches!(
                    key.as_str(),
                    "Type"
                        | "Properties"
                        | "DependsOn"
                        | "Condition"
                        | "DeletionPolicy"
                        | "UpdateReplacePolicy"
                        | "UpdatePolicy"
                        | "CreationPolicy"
                        | "Metadata"
                ) {
                    return Err(err(format!("unknown resource attribute `{key}`")).help(
                        "resource attributes are Type, Properties, DependsOn, Condition, DeletionPolicy, UpdateReplacePolicy, UpdatePolicy, CreationPolicy and Metadata",
                    ));
                }
            }
        }
        for section in self.json.as_object().into_iter().flat_map(|o| o.keys()) {
            if !matches!(
                section.as_str(),
                "AWSTemplateFormatVersion"
                    | "Description"
                    | "Metadata"
                    | "Parameters"
                    | "Rules"
                    | "Mappings"
                    | "Conditions"
                    | "Transform"
                    | "Resources"
                    | "Outputs"
                    | "Globals"
            ) {
                return Err(TemplateError::new(file, format!("unknown template section `{section}`"))
                    .at(self.line_of(section))
                    .help("sections are AWSTemplateFormatVersion, Description, Metadata, Parameters, Rules, Mappings, Conditions, Transform, Resources and Outputs"));
            }
        }
        Ok(())
    }
}

/// Parses YAML or JSON into JSON (short-form tags in long form), with the line of every key of the
/// sections whose entries have logical ids.
pub fn read_json(file: &str, text: &str) -> Result<(Value, BTreeMap<String, usize>), TemplateError> {
    let mut sources = Sources::default();
    let id = sources.add(SourceFile::new(file, None, text.to_string()));
    let src = sources.get(id).clone();
    let mut diags = Vec::new();
    let root = node::parse(id, &src, &mut diags).map_err(|d| {
        let line = d.span.map(|s| src.line_col(s.start as usize).0);
        let help = match d.code {
            "syntax" if node::is_json_file(&src) => "fix the JSON syntax at this line".to_string(),
            "syntax" => "fix the YAML syntax at this line".to_string(),
            _ => d.help.clone().unwrap_or_else(|| "fix this line".into()),
        };
        TemplateError::new(file, d.message.clone()).at(line).help(help)
    })?;
    if root.is_null() && !matches!(&root.value, node::Value::Scalar { text, .. } if !text.is_empty()) {
        return Err(TemplateError::new(file, "the template is empty")
            .at(Some(1))
            .help("a template is a mapping with a `Resources` section: start the file with `Resources:`"));
    }
    if let Some(d) = diags.iter().find(|d| d.is_error()) {
        let line = d.span.map(|s| src.line_col(s.start as usize).0);
        return Err(TemplateError::new(file, d.message.clone())
            .at(line)
            .help(d.help.clone().unwrap_or_else(|| "fix this line".into())));
    }
    let mut lines = BTreeMap::new();
    if let Some(top) = root.as_map() {
        for (k, v) in top {
            if let Some(name) = k.as_str() {
                lines.insert(name.to_string(), src.line_col(k.span.start as usize).0);
            }
            if k.as_str() == Some("Rules") {
                // Rules are kept apart: a rule may share its name with a resource.
                for (rk, _) in v.as_map().unwrap_or_default() {
                    if let Some(name) = rk.as_str() {
                        lines.insert(format!("Rules.{name}"), src.line_col(rk.span.start as usize).0);
                    }
                }
            }
            if matches!(k.as_str(), Some("Resources" | "Parameters" | "Outputs")) {
                for (rk, _) in v.as_map().unwrap_or_default() {
                    if let Some(name) = rk.as_str() {
                        lines.insert(name.to_string(), src.line_col(rk.span.start as usize).0);
                    }
                }
            }
        }
    }
    Ok((root.to_json(), lines))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(body: &str) -> Result<Template, TemplateError> {
        Template::parse("t.yaml", body, &sam::SamOptions::default())
    }

    #[test]
    fn custom_resources_take_a_version_attribute() {
        let custom = "Resources:\n  C:\n    Type: Custom::Tagger\n    Version: '1.0'\n    Properties: {ServiceToken: arn:aws:lambda:us-east-1:123456789012:function:f}\n";
        parse(custom).unwrap();
        let e = parse(&custom.replace("Custom::Tagger", "AWS::SNS::Topic")).unwrap_err();
        assert!(e.message.contains("unknown resource attribute `Version`"), "{e}");
        assert_eq!(e.line, Some(2));
    }

    #[test]
    fn a_declaration_cloudformation_refuses_is_refused_at_its_line() {
        let e =
            parse("Parameters:\n  Env:\n    Type: Strng\nResources:\n  Q:\n    Type: AWS::SNS::Topic\n").unwrap_err();
        assert_eq!(e.message, "Template format error: Unrecognized parameter type: Strng");
        assert_eq!(e.line, Some(2));
        let e = parse("Transform: MyMacro\nResources:\n  Q:\n    Type: AWS::SNS::Topic\n").unwrap_err();
        assert_eq!(e.message, "No transform named 123456789012::MyMacro found.");
        assert_eq!(e.line, Some(1));
    }
}
