//! Reads a CodePipeline declaration from a spanned tree into the model.
//!
//! The API JSON form (camelCase keys, `artifactStores` as a map keyed by region) and the
//! CloudFormation form (PascalCase keys, `ArtifactStores` as a list of `{Region, ArtifactStore}`)
//! differ only in the case of the first letter of each key and in that one shape, so one reader
//! serves both: keys are matched with the first letter in either case. Configuration keys keep
//! their case. Intrinsic functions must have been evaluated before (see `cfn`).

use crate::diag::Diagnostic;
use crate::model::*;
use crate::node::{Node, Value};
use crate::source::Span;
use meridian_core::region::edit_distance;

/// A mapping being read: remembers which keys were asked for, to warn about the others.
pub(crate) struct Obj<'a> {
    entries: &'a [(Node, Node)],
    used: Vec<bool>,
    asked: Vec<&'static str>,
    what: String,
}

pub(crate) fn key_matches(actual: &str, wanted: &str) -> bool {
    if actual == wanted {
        return true;
    }
    let (mut a, mut w) = (actual.chars(), wanted.chars());
    match (a.next(), w.next()) {
        (Some(x), Some(y)) => x.eq_ignore_ascii_case(&y) && a.as_str() == w.as_str(),
        _ => false,
    }
}

impl<'a> Obj<'a> {
    pub fn new(node: &'a Node, what: impl Into<String>, diags: &mut Vec<Diagnostic>) -> Option<Self> {
        let what = what.into();
        match node.as_map() {
            Some(entries) => Some(Obj {
                entries,
                used: vec![false; entries.len()],
                asked: Vec::new(),
                what,
            }),
            None => {
                diags.push(
                    Diagnostic::error("wrong-type", format!("{what} must be a mapping, found {}", node.kind()))
                        .at(node.span)
                        .help("write it as `Key: value` entries"),
                );
                None
            }
        }
    }

    pub fn get(&mut self, key: &'static str) -> Option<&'a Node> {
        self.asked.push(key);
        let entries = self.entries;
        for (i, (k, v)) in entries.iter().enumerate() {
            if k.as_str().is_some_and(|s| key_matches(s, key)) {
                self.used[i] = true;
                return if v.is_null() { None } else { Some(v) };
            }
        }
        None
    }

    pub fn key_span(&self, key: &str) -> Option<Span> {
        self.entries
            .iter()
            .find(|(k, _)| k.as_str().is_some_and(|s| key_matches(s, key)))
            .map(|(k, _)| k.span)
    }

    /// A string value. Numbers and booleans are taken as written.
    pub fn string(&mut self, key: &'static str, diags: &mut Vec<Diagnostic>) -> Option<(String, Span)> {
        let v = self.get(key)?;
        match v.as_str() {
            Some(s) => Some((s.to_string(), v.span)),
            None => {
                diags.push(
                    Diagnostic::error(
                        "wrong-type",
                        format!("`{key}` of {} must be a string, found {}", self.what, v.kind()),
                    )
                    .at(v.span)
                    .help(format!("write `{key}` as a single value")),
                );
                None
            }
        }
    }

    pub fn int(&mut self, key: &'static str, diags: &mut Vec<Diagnostic>) -> Option<(i64, Span)> {
        let (s, span) = self.string(key, diags)?;
        if crate::is_placeholder(&s) {
            diags.push(
                Diagnostic::warning(
                    "placeholder",
                    format!(
                        "`{key}` of {} is `{s}`, from {}: it is checked when the value is known",
                        self.what,
                        crate::cfn::placeholder_origin(&s)
                    ),
                )
                .at(span)
                .help(crate::cfn::placeholder_help(&s)),
            );
            return None;
        }
        match s.trim().parse::<i64>() {
            Ok(n) => Some((n, span)),
            Err(_) => {
                diags.push(
                    Diagnostic::error(
                        "wrong-type",
                        format!("`{key}` of {} must be a whole number, found `{s}`", self.what),
                    )
                    .at(span)
                    .help(format!("write `{key}` as a number such as 1")),
                );
                None
            }
        }
    }

    pub fn float(&mut self, key: &'static str, diags: &mut Vec<Diagnostic>) -> Option<(f64, Span)> {
        let (s, span) = self.string(key, diags)?;
        match s.trim().parse::<f64>() {
            Ok(n) if n.is_finite() => Some((n, span)),
            _ => {
                diags.push(
                    Diagnostic::error(
                        "wrong-type",
                        format!("`{key}` of {} must be a number, found `{s}`", self.what),
                    )
                    .at(span)
                    .help(format!("write `{key}` as a number such as 0.5")),
                );
                None
            }
        }
    }

    pub fn list(&mut self, key: &'static str, diags: &mut Vec<Diagnostic>) -> &'a [Node] {
        let Some(v) = self.get(key) else { return &[] };
        match v.as_seq() {
            Some(items) => items,
            None => {
                diags.push(
                    Diagnostic::error(
                        "wrong-type",
                        format!("`{key}` of {} must be a list, found {}", self.what, v.kind()),
                    )
                    .at(v.span)
                    .help(format!("write `{key}` as a list, one `- item` per line")),
                );
                &[]
            }
        }
    }

    pub fn strings(&mut self, key: &'static str, diags: &mut Vec<Diagnostic>) -> Vec<(String, Span)> {
        self.list(key, diags)
            .iter()
            .filter_map(|n| match n.as_str() {
                Some(s) => Some((s.to_string(), n.span)),
                None => {
                    diags.push(
                        Diagnostic::error(
                            "wrong-type",
                            format!("the items of `{key}` must be strings, found {}", n.kind()),
                        )
                        .at(n.span)
                        .help(format!("write each item of `{key}` as a single value")),
                    );
                    None
                }
            })
            .collect()
    }

    /// Warns about keys that were never asked for, suggesting the closest known one.
    pub fn finish(self, diags: &mut Vec<Diagnostic>) {
        for (i, (k, _)) in self.entries.iter().enumerate() {
            if self.used[i] {
                continue;
            }
            // a key that is no string was reported as the tree was read
            let Some(name) = k.as_str() else { continue };
            // the same field written twice, differing in the case of its first letter
            // (`Name` and `name`): the first is read
            if let Some(a) = self.asked.iter().find(|a| key_matches(name, a)) {
                let read = self
                    .entries
                    .iter()
                    .zip(&self.used)
                    .find(|((k, _), used)| **used && k.as_str().is_some_and(|s| key_matches(s, a)))
                    .and_then(|((k, _), _)| k.as_str())
                    .unwrap_or(a);
                diags.push(
                    Diagnostic::warning(
                        "duplicate-key",
                        format!(
                            "`{name}` is the field `{read}` written again, in {}; it is ignored",
                            self.what
                        ),
                    )
                    .at(k.span)
                    .help("remove one of the two entries"),
                );
                continue;
            }
            let suggestion = self
                .asked
                .iter()
                .map(|a| (edit_distance(&name.to_ascii_lowercase(), &a.to_ascii_lowercase()), *a))
                .filter(|(d, _)| *d <= 3)
                .min();
            // suggest in the case the file writes its keys in (CloudFormation's PascalCase)
            let pascal = name.starts_with(|c: char| c.is_ascii_uppercase());
            let cased = |a: &str| -> String {
                if pascal {
                    let mut c = a.chars();
                    c.next()
                        .map(|f| f.to_ascii_uppercase().to_string() + c.as_str())
                        .unwrap_or_default()
                } else {
                    a.to_string()
                }
            };
            let help = match suggestion {
                Some((_, s)) => format!("did you mean `{}`?", cased(s)),
                None => format!(
                    "the fields of {} are: {}",
                    self.what,
                    self.asked.iter().map(|a| cased(a)).collect::<Vec<_>>().join(", ")
                ),
            };
            diags.push(
                Diagnostic::warning(
                    "unknown-field",
                    format!("unknown field `{name}` in {}; it is ignored", self.what),
                )
                .at(k.span)
                .help(help),
            );
        }
    }
}

/// Reads a pipeline declaration (the object inside the API JSON's `pipeline` wrapper, or the
/// `Properties` of an `AWS::CodePipeline::Pipeline`).
pub(crate) fn read_pipeline(
    node: &Node,
    format: SourceFormat,
    fallback_name: Option<(String, Span)>,
    diags: &mut Vec<Diagnostic>,
) -> Option<Pipeline> {
    let mut o = Obj::new(node, "the pipeline", diags)?;
    let mut p = Pipeline {
        format,
        ..Default::default()
    };
    p.loc.node = Some(node.span);
    match o.string("name", diags).or(fallback_name) {
        Some((name, span)) => {
            p.name = name;
            p.loc.set("name", span);
        }
        None => diags.push(
            Diagnostic::error("missing-field", "the pipeline has no `name`")
                .at(node.span)
                .help("add `name: my-pipeline`"),
        ),
    }
    p.role_arn = o.string("roleArn", diags).map(|(s, _)| s);
    p.version = o.int("version", diags).and_then(|(v, _)| u64::try_from(v).ok());
    if let Some(store) = o.get("artifactStore") {
        p.artifact_store = read_store(store, diags);
    }
    if let Some(stores) = o.get("artifactStores") {
        p.loc.set("artifactStores", stores.span);
        match &stores.value {
            // API JSON: a map keyed by region.
            Value::Map(entries) => {
                for (k, v) in entries {
                    let region = k.as_str().unwrap_or_default().to_string();
                    if let Some(mut s) = read_store(v, diags) {
                        s.loc.set("region", k.span);
                        p.artifact_stores.insert(region, s);
                    }
                }
            }
            // CloudFormation: a list of {Region, ArtifactStore}.
            Value::Seq(items) => {
                for item in items {
                    let Some(mut io) = Obj::new(item, "an artifact store entry", diags) else { continue };
                    let region = io.string("Region", diags);
                    let store = io.get("ArtifactStore");
                    io.finish(diags);
                    match (region, store) {
                        (Some((region, rspan)), Some(store)) => {
                            if let Some(mut s) = read_store(store, diags) {
                                s.loc.set("region", rspan);
                                if p.artifact_stores.insert(region.clone(), s).is_some() {
                                    diags.push(
                                        Diagnostic::error("duplicate-artifact-store", format!("two artifact stores for region `{region}`"))
                                            .at(rspan)
                                            .help("keep one artifact store per region"),
                                    );
                                }
                            }
                        }
                        _ => diags.push(
                            Diagnostic::error("missing-field", "an artifact store entry needs `Region` and `ArtifactStore`")
                                .at(item.span)
                                .help("write `- Region: us-east-1` with `ArtifactStore: {Type: S3, Location: bucket}`"),
                        ),
                    }
                }
            }
            _ => diags.push(
                Diagnostic::error("wrong-type", "`artifactStores` must be a map keyed by region (API JSON) or a list of {Region, ArtifactStore} (CloudFormation)")
                    .at(stores.span)
                    .help("write `artifactStores: {us-east-1: {type: S3, location: bucket}}` (API JSON) or `ArtifactStores: [{Region: us-east-1, ArtifactStore: {Type: S3, Location: bucket}}]`"),
            ),
        }
    }
    if let Some((mode, span)) = o.string("executionMode", diags) {
        p.loc.set("executionMode", span);
        match ExecutionMode::parse(&mode) {
            Some(m) => p.execution_mode = m,
            None => diags.push(
                Diagnostic::error("invalid-value", format!("`{mode}` is not an execution mode"))
                    .at(span)
                    .help("use QUEUED, SUPERSEDED or PARALLEL"),
            ),
        }
    }
    if let Some((t, span)) = o.string("pipelineType", diags) {
        p.loc.set("pipelineType", span);
        match t.as_str() {
            "V1" => p.pipeline_type = PipelineType::V1,
            "V2" => p.pipeline_type = PipelineType::V2,
            _ => diags.push(
                Diagnostic::error("invalid-value", format!("`{t}` is not a pipeline type"))
                    .at(span)
                    .help("use V1 or V2"),
            ),
        }
    }
    for v in o.list("variables", diags) {
        let Some(mut vo) = Obj::new(v, "a pipeline variable", diags) else {
            continue;
        };
        let mut var = Variable::default();
        var.loc.node = Some(v.span);
        if let Some((n, s)) = vo.string("name", diags) {
            var.name = n;
            var.loc.set("name", s);
        }
        var.default_value = vo.string("defaultValue", diags).map(|(s, _)| s);
        var.description = vo.string("description", diags).map(|(s, _)| s);
        vo.finish(diags);
        p.variables.push(var);
    }
    for t in o.list("triggers", diags) {
        if let Some(trigger) = read_trigger(t, diags) {
            p.triggers.push(trigger);
        }
    }
    let stages = o.list("stages", diags);
    if let Some(s) = o.key_span("stages") {
        p.loc.set("stages", s);
    }
    for s in stages {
        if let Some(stage) = read_stage(s, diags) {
            p.stages.push(stage);
        }
    }
    if let Some(ext) = o.get("meridian") {
        p.meridian = crate::native::read_extensions(ext, diags);
    }
    // Fields CloudFormation accepts that do not change how the pipeline runs.
    for k in ["restartExecutionOnUpdate", "disableInboundStageTransitions", "tags"] {
        let _ = o.get(k);
    }
    o.finish(diags);
    Some(p)
}

fn read_store(node: &Node, diags: &mut Vec<Diagnostic>) -> Option<ArtifactStore> {
    let mut o = Obj::new(node, "an artifact store", diags)?;
    let mut s = ArtifactStore::default();
    s.loc.node = Some(node.span);
    s.store_type = o.string("type", diags).map(|(t, _)| t).unwrap_or_else(|| "S3".into());
    match o.string("location", diags) {
        Some((l, span)) => {
            s.location = l;
            s.loc.set("location", span);
        }
        None => diags.push(
            Diagnostic::error("missing-field", "the artifact store has no `location`")
                .at(node.span)
                .help("add `location: my-artifact-bucket` (a bucket on AWS, a directory locally)"),
        ),
    }
    if let Some(k) = o.get("encryptionKey") {
        if let Some(mut ko) = Obj::new(k, "an encryption key", diags) {
            s.encryption_key = Some(EncryptionKey {
                id: ko.string("id", diags).map(|x| x.0).unwrap_or_default(),
                key_type: ko.string("type", diags).map(|x| x.0).unwrap_or_else(|| "KMS".into()),
            });
            ko.finish(diags);
        }
    }
    o.finish(diags);
    Some(s)
}

fn read_filter(node: Option<&Node>, diags: &mut Vec<Diagnostic>) -> Option<IncludeExclude> {
    let node = node?;
    let mut o = Obj::new(node, "a git filter", diags)?;
    let f = IncludeExclude {
        includes: o.strings("includes", diags).into_iter().map(|x| x.0).collect(),
        excludes: o.strings("excludes", diags).into_iter().map(|x| x.0).collect(),
    };
    o.finish(diags);
    Some(f)
}

fn read_trigger(node: &Node, diags: &mut Vec<Diagnostic>) -> Option<Trigger> {
    let mut o = Obj::new(node, "a trigger", diags)?;
    let mut t = Trigger::default();
    t.loc.node = Some(node.span);
    t.provider_type = o
        .string("providerType", diags)
        .map(|x| x.0)
        .unwrap_or_else(|| "CodeStarSourceConnection".into());
    if let Some(g) = o.get("gitConfiguration") {
        if let Some(mut go) = Obj::new(g, "the git configuration of a trigger", diags) {
            if let Some((n, s)) = go.string("sourceActionName", diags) {
                t.git_configuration.source_action_name = n;
                t.loc.set("sourceActionName", s);
            }
            for (key, is_pr) in [("push", false), ("pullRequest", true)] {
                for f in go.list(key, diags) {
                    let Some(mut fo) = Obj::new(f, "a git filter", diags) else {
                        continue;
                    };
                    let filter = GitFilter {
                        events: if is_pr {
                            fo.strings("events", diags).into_iter().map(|x| x.0).collect()
                        } else {
                            Vec::new()
                        },
                        branches: read_filter(fo.get("branches"), diags),
                        tags: if is_pr {
                            None
                        } else {
                            read_filter(fo.get("tags"), diags)
                        },
                        file_paths: read_filter(fo.get("filePaths"), diags),
                    };
                    fo.finish(diags);
                    if is_pr {
                        t.git_configuration.pull_request.push(filter);
                    } else {
                        t.git_configuration.push.push(filter);
                    }
                }
            }
            go.finish(diags);
        }
    }
    o.finish(diags);
    Some(t)
}

fn read_conditions(node: &Node, what: &'static str, diags: &mut Vec<Diagnostic>) -> Option<StageConditions> {
    let mut o = Obj::new(node, what, diags)?;
    let mut c = StageConditions::default();
    c.loc.node = Some(node.span);
    if what == "onFailure" {
        if let Some((r, s)) = o.string("result", diags) {
            c.result = Some(r);
            c.loc.set("result", s);
        }
        if let Some(rc) = o.get("retryConfiguration") {
            if let Some(mut ro) = Obj::new(rc, "a retry configuration", diags) {
                c.retry_configuration = ro.string("retryMode", diags).map(|(m, s)| {
                    c.loc.set("retryMode", s);
                    RetryConfiguration { retry_mode: m }
                });
                ro.finish(diags);
            }
        }
    }
    c.conditions = o.list("conditions", diags).iter().map(Node::to_json).collect();
    o.finish(diags);
    Some(c)
}

fn read_stage(node: &Node, diags: &mut Vec<Diagnostic>) -> Option<Stage> {
    let mut o = Obj::new(node, "a stage", diags)?;
    let mut st = Stage::default();
    st.loc.node = Some(node.span);
    match o.string("name", diags) {
        Some((n, s)) => {
            st.name = n;
            st.loc.set("name", s);
        }
        None => diags.push(
            Diagnostic::error("missing-field", "a stage has no `name`")
                .at(node.span)
                .help("add `name: Build` (names are unique in a pipeline)"),
        ),
    }
    let actions = o.list("actions", diags);
    for a in actions {
        if let Some(action) = read_action(a, diags) {
            st.actions.push(action);
        }
    }
    st.on_failure = o.get("onFailure").and_then(|n| read_conditions(n, "onFailure", diags));
    st.on_success = o.get("onSuccess").and_then(|n| read_conditions(n, "onSuccess", diags));
    st.before_entry = o
        .get("beforeEntry")
        .and_then(|n| read_conditions(n, "beforeEntry", diags));
    let _ = o.get("blockers");
    o.finish(diags);
    Some(st)
}

fn read_artifacts(
    o: &mut Obj,
    key: &'static str,
    action: &mut Action,
    diags: &mut Vec<Diagnostic>,
) -> Vec<ArtifactRef> {
    let mut out = Vec::new();
    for (i, n) in o.list(key, diags).iter().enumerate() {
        let Some(mut ao) = Obj::new(n, "an artifact", diags) else {
            continue;
        };
        match ao.string("name", diags) {
            Some((name, span)) => {
                action.loc.set(format!("{key}.{i}"), span);
                out.push(ArtifactRef { name });
            }
            None => diags.push(
                Diagnostic::error("missing-field", "an artifact has no `name`")
                    .at(n.span)
                    .help("write `- name: BuildOutput`"),
            ),
        }
        ao.finish(diags);
    }
    out
}

fn read_action(node: &Node, diags: &mut Vec<Diagnostic>) -> Option<Action> {
    let mut o = Obj::new(node, "an action", diags)?;
    let mut a = Action {
        run_order: 1,
        ..Default::default()
    };
    a.loc.node = Some(node.span);
    match o.string("name", diags) {
        Some((n, s)) => {
            a.name = n;
            a.loc.set("name", s);
        }
        None => diags.push(
            Diagnostic::error("missing-field", "an action has no `name`")
                .at(node.span)
                .help("add `name: Deploy` (names are unique in a stage)"),
        ),
    }
    match o.get("actionTypeId") {
        Some(t) => {
            a.loc.set("actionTypeId", t.span);
            if let Some(mut to) = Obj::new(t, "an action type id", diags) {
                for (key, slot) in [
                    ("category", &mut a.action_type_id.category),
                    ("owner", &mut a.action_type_id.owner),
                    ("provider", &mut a.action_type_id.provider),
                    ("version", &mut a.action_type_id.version),
                ] {
                    match to.string(key, diags) {
                        Some((v, span)) => {
                            *slot = v;
                            a.loc.set(key, span);
                        }
                        None => diags.push(
                            Diagnostic::error("missing-field", format!("the action type id of `{}` has no `{key}`", a.name))
                                .at(t.span)
                                .help("an action type id has category, owner, provider and version, such as Deploy / AWS / CloudFormation / 1"),
                        ),
                    }
                }
                to.finish(diags);
            }
        }
        None => diags.push(
            Diagnostic::error(
                "missing-field",
                format!("the action `{}` has no `actionTypeId`", a.name),
            )
            .at(node.span)
            .help("add `actionTypeId: {category: Deploy, owner: AWS, provider: CloudFormation, version: '1'}`"),
        ),
    }
    if let Some((n, s)) = o.int("runOrder", diags) {
        a.run_order = n;
        a.loc.set("runOrder", s);
    }
    if let Some(cfg) = o.get("configuration") {
        a.loc.set("configuration", cfg.span);
        match cfg.as_map() {
            Some(entries) => {
                for (k, v) in entries {
                    let key = k.as_str().unwrap_or_default().to_string();
                    if v.is_null() {
                        continue;
                    }
                    match v.as_str() {
                        Some(s) => {
                            a.loc.set(format!("configuration.{key}"), v.span);
                            a.loc.set(format!("configuration.{key}#key"), k.span);
                            a.configuration.insert(key, s.to_string());
                        }
                        None => diags.push(
                            Diagnostic::error("wrong-type", format!("configuration `{key}` of action `{}` must be a string, found {}", a.name, v.kind()))
                                .at(v.span)
                                .help("CodePipeline configuration values are strings; write JSON values such as ParameterOverrides as a quoted JSON string"),
                        ),
                    }
                }
            }
            None => diags.push(
                Diagnostic::error(
                    "wrong-type",
                    format!("`configuration` of action `{}` must be a mapping", a.name),
                )
                .at(cfg.span)
                .help("write `configuration` as `Key: value` entries, such as `ProjectName: my-build`"),
            ),
        }
    }
    a.input_artifacts = read_artifacts(&mut o, "inputArtifacts", &mut a, diags);
    a.output_artifacts = read_artifacts(&mut o, "outputArtifacts", &mut a, diags);
    if let Some((r, s)) = o.string("region", diags) {
        a.region = Some(r);
        a.loc.set("region", s);
    }
    if let Some((n, s)) = o.string("namespace", diags) {
        a.namespace = Some(n);
        a.loc.set("namespace", s);
    }
    a.role_arn = o.string("roleArn", diags).map(|x| x.0);
    if let Some((t, s)) = o.int("timeoutInMinutes", diags) {
        a.timeout_in_minutes = Some(t);
        a.loc.set("timeoutInMinutes", s);
    }
    if let Some(c) = o.get("commands") {
        a.loc.set("commands", c.span);
        match (c.as_seq(), c.as_str()) {
            (Some(items), _) => {
                a.commands = items
                    .iter()
                    .map(|n| n.as_str().unwrap_or_default().to_string())
                    .collect()
            }
            (None, Some(s)) => a.commands = vec![s.to_string()],
            _ => {}
        }
    }
    a.output_variables = o.strings("outputVariables", diags).into_iter().map(|x| x.0).collect();
    o.finish(diags);
    Some(a)
}
