//! CloudFormation templates that declare `AWS::CodePipeline::Pipeline` (and the
//! `AWS::CodeBuild::Project`s the pipelines build with).
//!
//! Intrinsic functions are evaluated where their value is knowable locally (parameters, mappings,
//! conditions, `!Sub`, `!Join`, ...). A value only AWS could know (`!GetAtt Role.Arn`,
//! `!ImportValue`, the physical name of a resource without a name property) becomes a visible
//! placeholder `{{aws:...}}`, recorded in the model, that never blocks a local run.

use crate::diag::Diagnostic;
use crate::model::*;
use crate::node::{Node, Value};
use crate::read::{read_pipeline, Obj};
use crate::source::Span;
use meridian_core::region::edit_distance;
use std::collections::BTreeMap;

struct Param {
    value: Option<String>,
    /// `CommaDelimitedList` or `List<...>`: `Ref` gives a list.
    list: bool,
}

/// The pseudo parameters a template sees: `AWS::Region` (the pipeline's home region),
/// `AWS::StackName` and `AWS::AccountId`; the partition and URL suffix follow from the region.
#[derive(Clone, Debug)]
pub(crate) struct Pseudo {
    pub region: String,
    pub stack_name: String,
    pub account_id: String,
}

impl Pseudo {
    fn partition(&self) -> &'static str {
        if self.region.starts_with("cn-") {
            "aws-cn"
        } else if self.region.starts_with("us-gov-") {
            "aws-us-gov"
        } else {
            "aws"
        }
    }

    fn url_suffix(&self) -> &'static str {
        if self.region.starts_with("cn-") {
            "amazonaws.com.cn"
        } else {
            "amazonaws.com"
        }
    }
}

struct Ctx<'a> {
    params: BTreeMap<String, Param>,
    resources: BTreeMap<String, &'a Node>,
    mappings: Option<&'a Node>,
    conditions: BTreeMap<String, &'a Node>,
    /// The key of each declared condition, where a cycle is reported.
    condition_keys: BTreeMap<String, Span>,
    condition_values: BTreeMap<String, bool>,
    /// The conditions being evaluated, outermost first: a cycle's path.
    evaluating: Vec<String>,
    placeholders: Vec<String>,
    overrides: &'a BTreeMap<String, String>,
    pseudo: &'a Pseudo,
}

pub(crate) fn is_template(root: &Node) -> bool {
    root.get("Resources").is_some() || root.get("AWSTemplateFormatVersion").is_some()
}

fn placeholder(ctx: &mut Ctx, what: String) -> String {
    let p = format!("{{{{aws:{what}}}}}");
    if !ctx.placeholders.contains(&p) {
        ctx.placeholders.push(p.clone());
    }
    p
}

pub(crate) fn read_template(
    root: &Node,
    params: &BTreeMap<String, String>,
    pseudo: &Pseudo,
    diags: &mut Vec<Diagnostic>,
) -> Vec<Pipeline> {
    let mut ctx = Ctx {
        params: BTreeMap::new(),
        resources: BTreeMap::new(),
        mappings: root.get("Mappings"),
        conditions: BTreeMap::new(),
        condition_keys: BTreeMap::new(),
        condition_values: BTreeMap::new(),
        evaluating: Vec::new(),
        placeholders: Vec::new(),
        overrides: params,
        pseudo,
    };
    read_parameters(root, params, &mut ctx, diags);
    let Some(resources) = root.get("Resources").and_then(Node::as_map) else {
        if let Some(r) = root.get("Resources") {
            diags.push(
                Diagnostic::error(
                    "wrong-type",
                    "`Resources` must be a mapping of logical ids to resources",
                )
                .at(r.span)
                .help("write each resource as `Name:` with `Type:` and `Properties:` under it, not as a `- ` list"),
            );
            return Vec::new();
        }
        diags.push(
            Diagnostic::error("missing-field", "the template has no `Resources`")
                .at(root.span)
                .help("declare the pipeline under `Resources:` as a resource of type AWS::CodePipeline::Pipeline"),
        );
        return Vec::new();
    };
    for (k, v) in resources {
        if let Some(name) = k.as_str() {
            ctx.resources.insert(name.to_string(), v);
        }
    }
    if let Some(conds) = root.get("Conditions").and_then(Node::as_map) {
        for (k, v) in conds {
            if let Some(name) = k.as_str() {
                ctx.conditions.insert(name.to_string(), v);
                ctx.condition_keys.insert(name.to_string(), k.span);
            }
        }
    }
    let names: Vec<String> = ctx.conditions.keys().cloned().collect();
    for name in names {
        if ctx.condition_values.contains_key(&name) {
            continue;
        }
        let node = ctx.conditions[&name];
        ctx.evaluating.push(name.clone());
        let value = eval_condition(node, &mut ctx, diags);
        ctx.evaluating.pop();
        ctx.condition_values.insert(name, value);
    }

    // Build projects first: every pipeline of the template can use them.
    let mut projects = BTreeMap::new();
    let mut pipelines = Vec::new();
    let mut pipeline_nodes = Vec::new();
    for (k, v) in resources {
        let logical = k.as_str().unwrap_or_default().to_string();
        let Some(ty) = v.get("Type").and_then(Node::as_str) else {
            continue;
        };
        if let Some(cond) = v.get("Condition").and_then(Node::as_str) {
            if ctx.condition_values.get(cond) == Some(&false) {
                continue;
            }
        }
        match ty {
            "AWS::CodeBuild::Project" => {
                let props = match v.get("Properties") {
                    Some(p) => eval(p, &mut ctx, diags),
                    None => None,
                };
                if let Some(props) = props {
                    let name = props
                        .get("Name")
                        .and_then(Node::as_str)
                        .map(str::to_string)
                        .unwrap_or(logical.clone());
                    projects.insert(name, read_project(&props, diags));
                }
            }
            "AWS::CodePipeline::Pipeline" => pipeline_nodes.push((logical, k.span, v)),
            _ => {}
        }
    }
    for (logical, key_span, v) in pipeline_nodes {
        let Some(props_node) = v.get("Properties") else {
            diags.push(
                Diagnostic::error(
                    "missing-field",
                    format!("the pipeline resource `{logical}` has no `Properties`"),
                )
                .at(key_span)
                .help("add Properties with Stages, ArtifactStore(s) and RoleArn"),
            );
            continue;
        };
        ctx.placeholders.clear();
        let Some(props) = eval(props_node, &mut ctx, diags) else {
            continue;
        };
        if let Some(mut p) = read_pipeline(
            &props,
            SourceFormat::Cloudformation,
            Some((logical.clone(), key_span)),
            diags,
        ) {
            p.meridian.build_projects = projects.clone();
            p.meridian.placeholders = ctx.placeholders.clone();
            pipelines.push(p);
        }
    }
    if pipelines.is_empty() {
        diags.push(
            Diagnostic::error("no-pipeline", "the template declares no AWS::CodePipeline::Pipeline")
                .at(root.get("Resources").map(|r| r.span).unwrap_or(root.span))
                .help("add a resource with `Type: AWS::CodePipeline::Pipeline`"),
        );
    }
    pipelines
}

fn read_parameters(root: &Node, overrides: &BTreeMap<String, String>, ctx: &mut Ctx, diags: &mut Vec<Diagnostic>) {
    let declared = root.get("Parameters").and_then(Node::as_map).unwrap_or(&[]);
    for (k, v) in declared {
        let Some(name) = k.as_str() else { continue };
        let default = v.get("Default").and_then(|d| match &d.value {
            Value::Seq(items) => Some(items.iter().filter_map(Node::as_str).collect::<Vec<_>>().join(",")),
            _ => d.as_str().map(str::to_string),
        });
        let value = overrides.get(name).cloned().or(default);
        match &value {
            None => diags.push(
                Diagnostic::warning(
                    "unset-parameter",
                    format!("parameter `{name}` has no default and no value was given"),
                )
                .at(k.span)
                .help(format!(
                    "pass `--param {name}=VALUE`; until then its uses are placeholders"
                )),
            ),
            Some(val) => check_allowed(name, val, v, overrides.contains_key(name), diags),
        }
        let ty = v.get("Type").and_then(Node::as_str).unwrap_or_default();
        let list = ty == "CommaDelimitedList" || ty.starts_with("List<");
        ctx.params.insert(name.to_string(), Param { value, list });
    }
    for name in overrides.keys() {
        if !ctx.params.contains_key(name) && !name.starts_with("AWS::") {
            let known: Vec<&str> = declared.iter().filter_map(|(k, _)| k.as_str()).collect();
            let hint = known
                .iter()
                .map(|k| (edit_distance(k, name), *k))
                .filter(|(d, _)| *d <= 3)
                .min();
            diags.push(
                Diagnostic::warning(
                    "unknown-parameter",
                    format!("`--param {name}` names no parameter of the template; it is ignored"),
                )
                .help(match hint {
                    Some((_, k)) => format!("did you mean `{k}`?"),
                    None => format!("the template's parameters are: {}", known.join(", ")),
                }),
            );
        }
    }
}

fn check_allowed(name: &str, value: &str, decl: &Node, given: bool, diags: &mut Vec<Diagnostic>) {
    let origin = if given {
        format!("--param {name}={value}")
    } else {
        format!("the default `{value}`")
    };
    if let Some(allowed) = decl.get("AllowedValues").and_then(Node::as_seq) {
        let values: Vec<&str> = allowed.iter().filter_map(Node::as_str).collect();
        if !values.contains(&value) {
            diags.push(
                Diagnostic::error(
                    "parameter-not-allowed",
                    format!("{origin} is not one of the allowed values of parameter `{name}`"),
                )
                .at(decl.get("AllowedValues").map(|n| n.span).unwrap_or(decl.span))
                .help(format!("use one of: {}", values.join(", "))),
            );
        }
    }
    if let Some(pattern) = decl.get("AllowedPattern").and_then(Node::as_str) {
        // Java's syntax, as CloudFormation reads it (look-ahead and all); anchored to the whole value
        match crate::pattern::java_regex(pattern) {
            Ok(re) if !re.is_match(value).unwrap_or(false) => diags.push(
                Diagnostic::error(
                    "parameter-not-allowed",
                    format!("{origin} does not match the AllowedPattern of parameter `{name}`"),
                )
                .at(decl.get("AllowedPattern").map(|n| n.span).unwrap_or(decl.span))
                .help(format!("give a value that matches `{pattern}`")),
            ),
            Err(_) => diags.push(
                Diagnostic::error(
                    "bad-pattern",
                    format!("the AllowedPattern `{pattern}` of parameter `{name}` is not a valid regular expression"),
                )
                .at(decl.get("AllowedPattern").map(|n| n.span).unwrap_or(decl.span))
                .help("fix the pattern; it must match the whole value"),
            ),
            _ => {}
        }
    }
}

fn read_project(props: &Node, diags: &mut Vec<Diagnostic>) -> BuildProject {
    let mut bp = BuildProject::default();
    bp.loc.node = Some(props.span);
    if let Some(spec) = props.get("Source").and_then(|s| s.get("BuildSpec")) {
        if let Some(s) = spec.as_str() {
            bp.buildspec = if s.contains('\n') || s.trim_start().starts_with("version") {
                BuildSpecSource::Inline(s.to_string())
            } else {
                BuildSpecSource::Path(s.to_string())
            };
            bp.loc.set("buildspec", spec.span);
        }
    }
    if let Some(env) = props.get("Environment") {
        bp.image = env.get("Image").and_then(Node::as_str).map(str::to_string);
        for v in env.get("EnvironmentVariables").and_then(Node::as_seq).unwrap_or(&[]) {
            let Some(mut o) = Obj::new(v, "an environment variable", diags) else {
                continue;
            };
            let name = o.string("Name", diags).map(|x| x.0).unwrap_or_default();
            let value = o.string("Value", diags).map(|x| x.0).unwrap_or_default();
            let var_type = o
                .string("Type", diags)
                .map(|x| x.0)
                .unwrap_or_else(|| "PLAINTEXT".into());
            o.finish(diags);
            bp.environment_variables
                .push(EnvironmentVariable { name, value, var_type });
        }
    }
    bp.timeout_in_minutes = props
        .get("TimeoutInMinutes")
        .and_then(Node::as_str)
        .and_then(|s| s.parse().ok());
    bp
}

fn scalar(text: String, span: Span) -> Node {
    Node::scalar(text, span)
}

/// Ref semantics: a parameter's value, a pseudo parameter, or a resource's physical id.
fn resolve_ref(name: &str, span: Span, ctx: &mut Ctx, diags: &mut Vec<Diagnostic>) -> Option<String> {
    if let Some(p) = ctx.params.get(name) {
        return Some(match &p.value {
            Some(v) => v.clone(),
            None => placeholder(ctx, format!("parameter {name}")),
        });
    }
    if let Some(v) = ctx.overrides.get(name) {
        return Some(v.clone());
    }
    let pseudo = ctx.pseudo;
    match name {
        "AWS::Region" => return Some(pseudo.region.clone()),
        "AWS::StackName" => return Some(pseudo.stack_name.clone()),
        "AWS::AccountId" => return Some(pseudo.account_id.clone()),
        "AWS::Partition" => return Some(pseudo.partition().into()),
        "AWS::URLSuffix" => return Some(pseudo.url_suffix().into()),
        "AWS::NoValue" => return None,
        // a local stack's id, in CloudFormation's form
        "AWS::StackId" => {
            return Some(format!(
                "arn:{}:cloudformation:{}:{}:stack/{}/00000000-0000-0000-0000-000000000000",
                pseudo.partition(),
                pseudo.region,
                pseudo.account_id,
                pseudo.stack_name
            ))
        }
        // a list (of the SNS topics given to `create-stack`): none locally; in a string, empty
        "AWS::NotificationARNs" => return Some(String::new()),
        _ => {}
    }
    if let Some(res) = ctx.resources.get(name).copied() {
        let ty = res.get("Type").and_then(Node::as_str).unwrap_or_default();
        let name_prop = match ty {
            "AWS::S3::Bucket" => "BucketName",
            "AWS::Lambda::Function" => "FunctionName",
            "AWS::IAM::Role" => "RoleName",
            "AWS::CloudFormation::Stack" => "StackName",
            _ => "Name",
        };
        if let Some(n) = res.get("Properties").and_then(|p| p.get(name_prop)) {
            if let Some(v) = eval(n, ctx, diags).as_ref().and_then(Node::as_str) {
                return Some(v.to_string());
            }
        }
        // A CodeBuild project without a Name is known locally by its logical id, so that
        // `ProjectName: !Ref Project` finds the project declared beside the pipeline.
        if ty == "AWS::CodeBuild::Project" || ty == "AWS::CodePipeline::Pipeline" {
            return Some(name.to_string());
        }
        return Some(placeholder(ctx, format!("Ref {name}")));
    }
    let mut known: Vec<&String> = ctx.params.keys().chain(ctx.resources.keys()).collect();
    known.sort_by_key(|k| edit_distance(k, name));
    diags.push(
        Diagnostic::error(
            "unknown-reference",
            format!("`Ref {name}` names neither a parameter nor a resource of the template"),
        )
        .at(span)
        .help(match known.first() {
            Some(k) if edit_distance(k, name) <= 3 => format!("did you mean `{k}`?"),
            _ => "declare it under Parameters or Resources, or fix the name".into(),
        }),
    );
    Some(placeholder(ctx, format!("Ref {name}")))
}

fn unknown_condition_help(ctx: &Ctx, name: &str) -> String {
    let near = ctx
        .conditions
        .keys()
        .map(|k| (edit_distance(k, name), k))
        .filter(|(d, _)| *d <= 3)
        .min();
    match near {
        Some((_, k)) => format!("did you mean `{k}`?"),
        None if ctx.conditions.is_empty() => "declare it under `Conditions:`".to_string(),
        None => format!(
            "declare it under `Conditions:`; the template declares: {}",
            ctx.conditions.keys().cloned().collect::<Vec<_>>().join(", ")
        ),
    }
}

/// What a placeholder stands for, in words: "parameter `X`", "an export of another stack", ...
pub(crate) fn placeholder_origin(value: &str) -> String {
    let Some(inner) = value.split("{{aws:").nth(1).and_then(|r| r.split("}}").next()) else {
        return "a value only AWS knows".to_string();
    };
    if let Some(p) = inner.strip_prefix("parameter ") {
        format!("parameter `{p}`, which has no value")
    } else if let Some(e) = inner.strip_prefix("ImportValue ") {
        format!("the export `{e}` of another stack")
    } else if let Some(a) = inner.strip_prefix("GetAtt ") {
        format!("the attribute `{a}` of a resource")
    } else if let Some(r) = inner.strip_prefix("Ref ") {
        format!("the physical id of resource `{r}`")
    } else {
        format!("`{inner}`")
    }
}

/// How to give a placeholder's value: `--param NAME=...` for a parameter; otherwise, that AWS
/// resolves it.
pub(crate) fn placeholder_help(value: &str) -> String {
    let mut params = Vec::new();
    let mut aws = Vec::new();
    for part in value.split("{{aws:").skip(1) {
        let inner = part.split("}}").next().unwrap_or_default();
        match inner.strip_prefix("parameter ") {
            Some(p) => params.push(format!("`--param {p}=...`")),
            None => aws.push(inner.to_string()),
        }
    }
    let mut out = Vec::new();
    if !params.is_empty() {
        out.push(format!(
            "pass {} to give the value; the checks that need it run then",
            params.join(" and ")
        ));
    }
    if !aws.is_empty() {
        out.push(format!(
            "{} is resolved by CloudFormation on AWS, not locally: the local run uses the placeholder as it is",
            aws.iter().map(|a| format!("`{a}`")).collect::<Vec<_>>().join(", ")
        ));
    }
    if out.is_empty() {
        "the value is resolved on AWS".to_string()
    } else {
        out.join("; ")
    }
}

fn eval_condition(node: &Node, ctx: &mut Ctx, diags: &mut Vec<Diagnostic>) -> bool {
    match node.intrinsic() {
        Some(("Condition", arg)) => {
            let name = arg.as_str().unwrap_or_default().to_string();
            if let Some(v) = ctx.condition_values.get(&name) {
                return *v;
            }
            if let Some(at) = ctx.evaluating.iter().position(|c| *c == name) {
                // `A: !Condition B`, `B: !Condition A`: CloudFormation refuses the template
                let path = ctx.evaluating[at..].join(" -> ");
                let key = ctx.condition_keys.get(&name).copied().unwrap_or(arg.span);
                diags.push(
                    Diagnostic::error("condition-cycle", format!("condition `{name}` refers to itself through {path}"))
                        .at(key)
                        .label("this condition")
                        .related(arg.span, "refers back here")
                        .help("a condition cannot depend on itself: rewrite one of these conditions without `Condition` of the others"),
                );
                ctx.condition_values.insert(name, false);
                return false;
            }
            match ctx.conditions.get(&name).copied() {
                Some(n) => {
                    ctx.evaluating.push(name.clone());
                    let v = eval_condition(n, ctx, diags);
                    ctx.evaluating.pop();
                    ctx.condition_values.entry(name).or_insert(v);
                    v
                }
                None => {
                    diags.push(
                        Diagnostic::error("unknown-condition", format!("condition `{name}` is not declared"))
                            .at(arg.span)
                            .help(unknown_condition_help(ctx, &name)),
                    );
                    false
                }
            }
        }
        Some(("Fn::Equals", arg)) => {
            let items = arg.as_seq().unwrap_or(&[]);
            let vals: Vec<String> = items
                .iter()
                .map(|i| {
                    eval(i, ctx, diags)
                        .map(|n| n.as_str().unwrap_or_default().to_string())
                        .unwrap_or_default()
                })
                .collect();
            vals.len() == 2 && vals[0] == vals[1]
        }
        Some(("Fn::Not", arg)) => !arg
            .as_seq()
            .and_then(|s| s.first())
            .is_some_and(|n| eval_condition(n, ctx, diags)),
        Some(("Fn::And", arg)) => arg
            .as_seq()
            .unwrap_or(&[])
            .iter()
            .all(|n| eval_condition(n, ctx, diags)),
        Some(("Fn::Or", arg)) => arg
            .as_seq()
            .unwrap_or(&[])
            .iter()
            .any(|n| eval_condition(n, ctx, diags)),
        _ => node.as_bool().unwrap_or(false),
    }
}

/// Evaluates intrinsic functions. `None` means the value is removed (`AWS::NoValue`).
fn eval(node: &Node, ctx: &mut Ctx, diags: &mut Vec<Diagnostic>) -> Option<Node> {
    if let Some((name, arg)) = node.intrinsic() {
        let span = node.span;
        return match name {
            "Ref" => {
                let target = arg.as_str().unwrap_or_default().to_string();
                if target == "AWS::NotificationARNs" && !ctx.params.contains_key(&target) {
                    return Some(Node {
                        span,
                        value: Value::Seq(Vec::new()),
                    });
                }
                // a list parameter with a value is a list
                if let Some(Param {
                    value: Some(v),
                    list: true,
                }) = ctx.params.get(&target)
                {
                    return Some(Node {
                        span,
                        value: Value::Seq(v.split(',').map(|p| scalar(p.trim().to_string(), span)).collect()),
                    });
                }
                resolve_ref(&target, span, ctx, diags).map(|v| scalar(v, span))
            }
            "Fn::GetAtt" => {
                let parts: Vec<String> = match &arg.value {
                    Value::Seq(items) => items
                        .iter()
                        .filter_map(|i| eval(i, ctx, diags))
                        .filter_map(|n| n.as_str().map(str::to_string))
                        .collect(),
                    _ => arg
                        .as_str()
                        .map(|s| s.split('.').map(str::to_string).collect())
                        .unwrap_or_default(),
                };
                let res = parts.first().cloned().unwrap_or_default();
                if !ctx.resources.contains_key(&res) {
                    diags.push(
                        Diagnostic::error(
                            "unknown-reference",
                            format!("`GetAtt {}` names no resource of the template", parts.join(".")),
                        )
                        .at(span)
                        .help("fix the resource's logical id"),
                    );
                }
                Some(scalar(placeholder(ctx, format!("GetAtt {}", parts.join("."))), span))
            }
            "Fn::ImportValue" => {
                let v = eval(arg, ctx, diags)
                    .and_then(|n| n.as_str().map(str::to_string))
                    .unwrap_or_default();
                Some(scalar(placeholder(ctx, format!("ImportValue {v}")), span))
            }
            "Fn::Sub" => Some(scalar(eval_sub(arg, ctx, diags), span)),
            "Fn::Join" => {
                let items = arg.as_seq().unwrap_or(&[]);
                let delim = items.first().and_then(Node::as_str).unwrap_or_default().to_string();
                let list = items.get(1).and_then(|l| eval(l, ctx, diags));
                if let Some(unknown) = list
                    .as_ref()
                    .and_then(Node::as_str)
                    .filter(|s| crate::is_placeholder(s))
                {
                    return Some(scalar(unknown.to_string(), span));
                }
                let parts: Vec<String> = list
                    .as_ref()
                    .and_then(Node::as_seq)
                    .unwrap_or(&[])
                    .iter()
                    .filter_map(|n| n.as_str().map(str::to_string))
                    .collect();
                Some(scalar(parts.join(&delim), span))
            }
            "Fn::Select" => {
                let items = arg.as_seq().unwrap_or(&[]);
                let index = items.first().and_then(|n| eval(n, ctx, diags));
                let index_text = index.as_ref().and_then(Node::as_str).unwrap_or_default().to_string();
                let idx = index_text.trim().parse::<usize>().ok();
                let list = items.get(1).and_then(|l| eval(l, ctx, diags));
                let list_items = list.as_ref().and_then(Node::as_seq);
                // a value left to AWS or to an unset parameter: the item is too
                let unknown = std::iter::once(index_text.as_str())
                    .chain(list_items.unwrap_or(&[]).iter().filter_map(Node::as_str))
                    .chain(list.as_ref().and_then(Node::as_str))
                    .find(|s| crate::is_placeholder(s))
                    .map(str::to_string);
                match (idx, list_items) {
                    (Some(i), Some(l)) if i < l.len() && !l[i].as_str().is_some_and(crate::is_placeholder) => {
                        Some(l[i].clone())
                    }
                    _ if unknown.is_some() => {
                        let from = unknown.unwrap_or_default();
                        diags.push(
                            Diagnostic::warning(
                                "placeholder",
                                format!(
                                    "Fn::Select picks item {} of a list from {}",
                                    index_text,
                                    placeholder_origin(&from)
                                ),
                            )
                            .at(span)
                            .help(placeholder_help(&from)),
                        );
                        Some(scalar(
                            placeholder(ctx, format!("Select {index_text} of {}", placeholder_origin(&from))),
                            span,
                        ))
                    }
                    (_, l) => {
                        let help = match (idx, l) {
                            (None, _) => format!("the index must be a whole number from 0, found `{index_text}`"),
                            (Some(_), Some([])) => "the list is empty: give it items, or pick from another list".to_string(),
                            (Some(i), Some(l)) => format!("the list has {} item(s), so the index is 0 to {}; found {i}", l.len(), l.len() - 1),
                            (Some(_), None) => format!(
                                "the second argument must be a list (such as `!Split [\",\", !Ref Param]` or `!GetAZs ''`), found {}",
                                list.as_ref().map(Node::kind).unwrap_or("nothing")
                            ),
                        };
                        diags.push(
                            Diagnostic::error("invalid-intrinsic", "Fn::Select needs an index within its list")
                                .at(span)
                                .help(help),
                        );
                        None
                    }
                }
            }
            "Fn::Split" => {
                let items = arg.as_seq().unwrap_or(&[]);
                let delim = items.first().and_then(Node::as_str).unwrap_or(",").to_string();
                let s = items
                    .get(1)
                    .and_then(|n| eval(n, ctx, diags))
                    .and_then(|n| n.as_str().map(str::to_string))
                    .unwrap_or_default();
                // a value left to AWS or to an unset parameter has no items to count yet: the
                // list stays that value, and what picks from it is a placeholder too
                if crate::is_placeholder(&s) {
                    return Some(scalar(s, span));
                }
                Some(Node {
                    span,
                    value: Value::Seq(s.split(delim.as_str()).map(|p| scalar(p.to_string(), span)).collect()),
                })
            }
            "Fn::If" => {
                let items = arg.as_seq().unwrap_or(&[]);
                if items.len() != 3 {
                    diags.push(
                        Diagnostic::error(
                            "invalid-intrinsic",
                            "Fn::If takes [condition, value-if-true, value-if-false]",
                        )
                        .at(span)
                        .help("write `!If [ConditionName, value-if-true, value-if-false]`"),
                    );
                    return None;
                }
                let Some(cond) = items[0].as_str() else {
                    diags.push(
                        Diagnostic::error(
                            "invalid-intrinsic",
                            format!("the first item of Fn::If must be the name of a condition, found {}", items[0].kind()),
                        )
                        .at(items[0].span)
                        .help("declare the condition under `Conditions:` and name it here: CloudFormation takes no inline condition in Fn::If"),
                    );
                    return None;
                };
                let value = match ctx.condition_values.get(cond) {
                    Some(v) => *v,
                    None => {
                        diags.push(
                            Diagnostic::error("unknown-condition", format!("condition `{cond}` is not declared"))
                                .at(items[0].span)
                                .help(unknown_condition_help(ctx, cond)),
                        );
                        false
                    }
                };
                eval(if value { &items[1] } else { &items[2] }, ctx, diags)
            }
            "Fn::FindInMap" => {
                let items = arg.as_seq().unwrap_or(&[]);
                let keys: Vec<String> = items
                    .iter()
                    .filter_map(|n| eval(n, ctx, diags))
                    .filter_map(|n| n.as_str().map(str::to_string))
                    .collect();
                let found = (keys.len() == 3)
                    .then(|| {
                        ctx.mappings
                            .and_then(|m| m.get(&keys[0]))
                            .and_then(|m| m.get(&keys[1]))
                            .and_then(|m| m.get(&keys[2]))
                    })
                    .flatten()
                    .cloned();
                match found {
                    Some(n) => eval(&n, ctx, diags),
                    None => {
                        diags.push(
                            Diagnostic::error(
                                "invalid-intrinsic",
                                format!("Fn::FindInMap finds nothing at {}", keys.join(" / ")),
                            )
                            .at(span)
                            .help("check the map, key and second-level key against Mappings"),
                        );
                        None
                    }
                }
            }
            "Fn::Base64" => {
                use base64_encode as b64;
                let s = eval(arg, ctx, diags)
                    .and_then(|n| n.as_str().map(str::to_string))
                    .unwrap_or_default();
                Some(scalar(b64(s.as_bytes()), span))
            }
            "Fn::GetAZs" => {
                let region = eval(arg, ctx, diags)
                    .and_then(|n| n.as_str().map(str::to_string))
                    .unwrap_or_default();
                Some(Node {
                    span,
                    value: Value::Seq(
                        ["a", "b", "c"]
                            .iter()
                            .map(|z| scalar(format!("{region}{z}"), span))
                            .collect(),
                    ),
                })
            }
            "Fn::ToJsonString" => {
                let v = eval(arg, ctx, diags).map(|n| n.to_json()).unwrap_or_default();
                Some(scalar(v.to_string(), span))
            }
            "Fn::Length" => {
                let n = eval(arg, ctx, diags)
                    .and_then(|n| n.as_seq().map(<[Node]>::len))
                    .unwrap_or(0);
                Some(Node {
                    span,
                    value: Value::Scalar {
                        text: n.to_string(),
                        plain: true,
                    },
                })
            }
            "Condition" => Some(node.clone()),
            // CodePipeline's own functions, evaluated by the CloudFormation action, not here.
            "Fn::GetParam" | "Fn::GetArtifactAtt" => Some(node.clone()),
            other => {
                diags.push(
                    Diagnostic::error("invalid-intrinsic", format!("`{other}` is not an intrinsic function Meridian can evaluate"))
                        .at(span)
                        .help("use Ref, Fn::Sub, Fn::Join, Fn::If, Fn::Select, Fn::Split, Fn::FindInMap, Fn::GetAtt or Fn::ImportValue"),
                );
                None
            }
        };
    }
    match &node.value {
        Value::Scalar { .. } => Some(node.clone()),
        Value::Seq(items) => Some(Node {
            span: node.span,
            value: Value::Seq(items.iter().filter_map(|i| eval(i, ctx, diags)).collect()),
        }),
        Value::Map(entries) => Some(Node {
            span: node.span,
            value: Value::Map(
                entries
                    .iter()
                    .filter_map(|(k, v)| eval(v, ctx, diags).map(|v| (k.clone(), v)))
                    .collect(),
            ),
        }),
    }
}

fn eval_sub(arg: &Node, ctx: &mut Ctx, diags: &mut Vec<Diagnostic>) -> String {
    let (template, vars) = match &arg.value {
        Value::Seq(items) => (
            items.first().and_then(Node::as_str).unwrap_or_default().to_string(),
            items.get(1),
        ),
        _ => (arg.as_str().unwrap_or_default().to_string(), None),
    };
    let mut out = String::new();
    let mut rest = template.as_str();
    while let Some(i) = rest.find("${") {
        out.push_str(&rest[..i]);
        let after = &rest[i + 2..];
        if let Some(lit) = after.strip_prefix('!') {
            // `${!Literal}` stands for `${Literal}`.
            out.push_str("${");
            rest = lit;
            continue;
        }
        let Some(end) = after.find('}') else {
            out.push_str(&rest[i..]);
            rest = "";
            break;
        };
        let var = after[..end].trim();
        let value = if let Some(v) = vars.and_then(|m| m.get(var)) {
            eval(v, ctx, diags)
                .and_then(|n| n.as_str().map(str::to_string))
                .unwrap_or_default()
        } else if let Some((res, attr)) = var.split_once('.').filter(|(r, _)| ctx.resources.contains_key(*r)) {
            placeholder(ctx, format!("GetAtt {res}.{attr}"))
        } else {
            resolve_ref(var, arg.span, ctx, diags).unwrap_or_default()
        };
        out.push_str(&value);
        rest = &after[end + 1..];
    }
    out.push_str(rest);
    out
}

fn base64_encode(bytes: &[u8]) -> String {
    const T: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let b = [chunk[0], *chunk.get(1).unwrap_or(&0), *chunk.get(2).unwrap_or(&0)];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(T[((n >> (18 - 6 * i)) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn base64_matches_rfc4648_vectors() {
        for (i, o) in [
            ("", ""),
            ("f", "Zg=="),
            ("fo", "Zm8="),
            ("foo", "Zm9v"),
            ("foobar", "Zm9vYmFy"),
        ] {
            assert_eq!(super::base64_encode(i.as_bytes()), o);
        }
    }
}
