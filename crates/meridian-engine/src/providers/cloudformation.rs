//! The CloudFormation deploy action, as CodePipeline defines it: ActionMode CREATE_UPDATE,
//! CHANGE_SET_REPLACE, CHANGE_SET_EXECUTE, DELETE_ONLY and REPLACE_ON_FAILURE; StackName,
//! ChangeSetName, TemplatePath, TemplateConfiguration, ParameterOverrides (with Fn::GetParam and
//! Fn::GetArtifactAtt), Capabilities, OutputFileName; stack outputs as output variables.
//!
//! The stacks themselves belong to the region: the action only talks to the [`StackDeployer`] of
//! the action region's backend (`ActionContext::regions`).

use super::{ActionContext, ActionOutput, ActionProvider};
use crate::ledger::NewRelease;
use crate::stacks::{DeliveryOptions, StackDeployer, StackOutcome, StackRequest};
use futures::future::BoxFuture;
use meridian_pipeline::model::Action;
use serde_json::Value;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

#[derive(Clone, Default)]
pub struct CloudFormation;

const MODES: &[&str] = &[
    "CREATE_UPDATE",
    "CHANGE_SET_REPLACE",
    "CHANGE_SET_EXECUTE",
    "DELETE_ONLY",
    "REPLACE_ON_FAILURE",
];

/// `Artifact::path` resolved against the action's unpacked inputs.
fn artifact_file(ctx: &ActionContext, what: &str, spec: &str) -> Result<PathBuf, String> {
    let (art, file) = spec
        .split_once("::")
        .ok_or_else(|| format!("{what} `{spec}` must be `ArtifactName::path/in/artifact`"))?;
    let dir = ctx
        .inputs
        .iter()
        .find(|(n, _)| n == art)
        .map(|(_, d)| d.clone())
        .ok_or_else(|| {
            let names: Vec<&str> = ctx.inputs.iter().map(|(n, _)| n.as_str()).collect();
            format!(
                "{what} reads artifact `{art}`, which is not an input of this action (inputs: {})",
                names.join(", ")
            )
        })?;
    file_in(&dir, what, art, file)
}

/// The file `file` of the artifact `art` unpacked in `dir`, confined to `dir`: `..`, an absolute
/// path or a link in the artifact pointing outside it is refused, at run time as validation
/// refuses them statically (a link can only be seen once the artifact is unpacked).
fn file_in(dir: &Path, what: &str, art: &str, file: &str) -> Result<PathBuf, String> {
    let path = meridian_core::path::confine(dir, file)
        .map_err(|e| format!("{what}: `{art}::{file}` is refused: {e}; name a file inside artifact {art}"))?;
    if !path.is_file() {
        let mut present: Vec<String> = std::fs::read_dir(dir)
            .map(|rd| {
                rd.filter_map(|e| e.ok())
                    .map(|e| e.file_name().to_string_lossy().into_owned())
                    .collect()
            })
            .unwrap_or_default();
        present.sort();
        return Err(format!(
            "{what}: `{file}` is not in artifact {art} (its top level has: {})",
            present.join(", ")
        ));
    }
    Ok(path)
}

/// A file of an artifact read as text, with the bound Meridian puts on every definition file
/// ([`MAX_INPUT_BYTES`](meridian_pipeline::source::MAX_INPUT_BYTES), 10 MiB): a multi-gigabyte
/// (or endless) file in an artifact never fills the memory.
fn read_bounded(path: &Path) -> Result<String, String> {
    use meridian_pipeline::source::{read_text, MAX_INPUT_BYTES};
    read_text(path, MAX_INPUT_BYTES).map_err(|e| e.to_string())
}

/// This execution's record of the artifact `name`.
fn artifact_row(ctx: &ActionContext, name: &str) -> Result<Option<crate::journal::ArtifactRow>, String> {
    Ok(ctx
        .journal
        .artifacts(&ctx.execution_id)
        .map_err(|e| e.to_string())?
        .into_iter()
        .find(|r| r.name == name))
}

/// ParameterOverrides: a JSON object whose values are strings, `Fn::GetParam` or `Fn::GetArtifactAtt`.
fn parameter_overrides(ctx: &ActionContext, text: &str) -> Result<BTreeMap<String, String>, String> {
    let v: Value = serde_json::from_str(text)
        .map_err(|e| format!("ParameterOverrides is not valid JSON ({e}); write {{\"Name\": \"value\", ...}}"))?;
    let obj = v
        .as_object()
        .ok_or("ParameterOverrides must be a JSON object of parameter names to values")?;
    let mut out = BTreeMap::new();
    for (k, val) in obj {
        let s = match val {
            Value::String(s) => s.clone(),
            Value::Number(n) => n.to_string(),
            Value::Bool(b) => b.to_string(),
            Value::Object(o) if o.len() == 1 && o.contains_key("Fn::GetParam") => {
                let a = o["Fn::GetParam"].as_array().filter(|a| a.len() == 3).ok_or_else(|| {
                    format!("parameter `{k}`: Fn::GetParam takes [\"ArtifactName\", \"file.json\", \"Key\"]")
                })?;
                let art = a[0].as_str().unwrap_or_default();
                let file = a[1].as_str().unwrap_or_default();
                let key = a[2].as_str().unwrap_or_default();
                let path = artifact_file(
                    ctx,
                    &format!("parameter `{k}` (Fn::GetParam)"),
                    &format!("{art}::{file}"),
                )?;
                let doc: Value = read_bounded(&path)
                    .and_then(|t| serde_json::from_str(&t).map_err(|e| e.to_string()))
                    .map_err(|e| format!("parameter `{k}`: Fn::GetParam cannot read {art}::{file} as JSON: {e}"))?;
                match doc.get(key) {
                    Some(Value::String(s)) => s.clone(),
                    Some(other) => other.to_string(),
                    None => {
                        return Err(format!(
                            "parameter `{k}`: Fn::GetParam: {art}::{file} has no key `{key}`"
                        ))
                    }
                }
            }
            Value::Object(o) if o.len() == 1 && o.contains_key("Fn::GetArtifactAtt") => {
                let a = o["Fn::GetArtifactAtt"].as_array().filter(|a| a.len() == 2).ok_or_else(|| {
                    format!("parameter `{k}`: Fn::GetArtifactAtt takes [\"ArtifactName\", \"BucketName|ObjectKey|URL\"]")
                })?;
                let art = a[0].as_str().unwrap_or_default();
                let att = a[1].as_str().unwrap_or_default();
                let row = artifact_row(ctx, art)?.ok_or_else(|| {
                    format!("parameter `{k}`: Fn::GetArtifactAtt: no artifact `{art}` in this execution")
                })?;
                let bucket = ctx.stores.get(&ctx.region).map(|(b, _)| b.clone()).unwrap_or_default();
                let key = format!("sha256/{}.zip", row.digest.trim_start_matches("sha256:"));
                match att {
                    "BucketName" => bucket,
                    "ObjectKey" => key,
                    "URL" => format!("https://{bucket}.s3.{}.amazonaws.com/{key}", ctx.region),
                    _ => {
                        return Err(format!(
                            "parameter `{k}`: Fn::GetArtifactAtt attribute `{att}` is not BucketName, ObjectKey or URL"
                        ))
                    }
                }
            }
            other => {
                return Err(format!(
                    "parameter `{k}`: value {other} must be a string, Fn::GetParam or Fn::GetArtifactAtt"
                ))
            }
        };
        out.insert(k.clone(), s);
    }
    Ok(out)
}

/// TemplateConfiguration: `{"Parameters": {...}, "Tags": {...}, "StackPolicy": {...}}`.
/// Parameters and tags by name.
type NamedValues = BTreeMap<String, String>;

fn template_configuration(path: &Path) -> Result<(NamedValues, NamedValues), String> {
    let text = read_bounded(path).map_err(|e| format!("cannot read TemplateConfiguration {}: {e}", path.display()))?;
    let v: Value = serde_json::from_str(&text)
        .map_err(|e| format!("TemplateConfiguration {} is not valid JSON: {e}", path.display()))?;
    let map = |key: &str| -> Result<BTreeMap<String, String>, String> {
        match v.get(key) {
            None => Ok(BTreeMap::new()),
            Some(Value::Object(o)) => Ok(o
                .iter()
                .map(|(k, v)| (k.clone(), v.as_str().map(String::from).unwrap_or_else(|| v.to_string())))
                .collect()),
            Some(_) => Err(format!(
                "TemplateConfiguration: `{key}` must be an object of names to values"
            )),
        }
    };
    if let Some(o) = v.as_object() {
        if let Some(k) = o
            .keys()
            .find(|k| !matches!(k.as_str(), "Parameters" | "Tags" | "StackPolicy"))
        {
            return Err(format!(
                "TemplateConfiguration has an unknown key `{k}` (allowed: Parameters, Tags, StackPolicy)"
            ));
        }
    }
    Ok((map("Parameters")?, map("Tags")?))
}

impl CloudFormation {
    /// The stack port of the action's region.
    fn stacks(ctx: &ActionContext) -> Result<Arc<dyn StackDeployer>, String> {
        Ok(ctx.regions.get(&ctx.region).map_err(|e| e.to_string())?.stacks.clone())
    }

    fn request(&self, ctx: &ActionContext, stack: &str) -> Result<StackRequest, String> {
        let a = &ctx.action;
        let tp = a
            .config("TemplatePath")
            .ok_or("the CloudFormation action needs TemplatePath")?;
        let template_path = artifact_file(ctx, "TemplatePath", tp)?;
        let (mut parameters, tags) = match a.config("TemplateConfiguration") {
            Some(tc) => template_configuration(&artifact_file(ctx, "TemplateConfiguration", tc)?)?,
            None => (BTreeMap::new(), BTreeMap::new()),
        };
        if let Some(po) = a.config("ParameterOverrides") {
            parameters.extend(parameter_overrides(ctx, po)?);
        }
        let capabilities = a
            .config("Capabilities")
            .map(|c| {
                c.split(',')
                    .map(|s| s.trim().to_string())
                    .filter(|s| !s.is_empty())
                    .collect()
            })
            .unwrap_or_default();
        Ok(StackRequest {
            region: ctx.region.clone(),
            stack_name: stack.to_string(),
            change_set_name: a.config("ChangeSetName").map(String::from),
            template_path,
            parameters,
            capabilities,
            tags,
            allow_unsupported: false,
            publish_on_config_change: false,
            source_template: None,
            artifact_root: Some(
                ctx.env
                    .artifact_root
                    .clone()
                    .unwrap_or_else(|| ctx.env.data_dir.clone()),
            ),
            delivery: Self::delivery(ctx),
            template_bucket: ctx.stores.get(&ctx.region).map(|(bucket, _)| bucket.clone()),
            service_role: a.config("RoleArn").map(String::from),
        })
    }

    pub(crate) fn delivery(ctx: &ActionContext) -> DeliveryOptions {
        DeliveryOptions {
            time_scale: ctx.env.time_scale,
            pipeline: Some(ctx.pipeline.clone()),
            execution_id: Some(ctx.execution_id.clone()),
            ..ctx.env.delivery.clone()
        }
    }

    /// The digest of the artifact the template came from (the release's identity).
    fn artifact_digest(ctx: &ActionContext) -> Option<String> {
        let tp = ctx.action.config("TemplatePath")?;
        let (art, _) = tp.split_once("::")?;
        artifact_row(ctx, art).ok()?.map(|r| r.digest)
    }

    /// Writes the ledger row of a deploy attempt, and applies the rollback policy.
    async fn record(
        &self,
        ctx: &ActionContext,
        stacks: &dyn StackDeployer,
        req: &StackRequest,
        result: &Result<Option<StackOutcome>, String>,
    ) {
        let Ok(template) = read_bounded(&req.template_path) else {
            return;
        };
        let digest = Self::artifact_digest(ctx);
        let functions = match crate::retry::retrying(|| stacks.live_functions(&req.region, &req.stack_name)).await {
            Ok(f) => f,
            Err(e) => {
                ctx.log.line(&format!(
                    "warning: cannot read what {} serves now ({e}); the ledger records the release without its functions",
                    req.region
                ));
                Vec::new()
            }
        };
        let failure = result.as_ref().err().cloned();
        let n = NewRelease {
            pipeline: &ctx.pipeline,
            region: &req.region,
            stack: &req.stack_name,
            execution_id: Some(&ctx.execution_id),
            artifact_digest: digest.as_deref(),
            template: &template,
            parameters: &req.parameters,
            capabilities: &req.capabilities,
            artifact_root: req.artifact_root.as_deref(),
            functions: &functions,
            failure: failure.as_deref(),
            release_id: None,
            detail: None,
        };
        match ctx.journal.record_release(&n, false) {
            Ok(r) if failure.is_none() => ctx.log.line(&format!(
                "release {} is live in {} ({})",
                r.release_id,
                req.region,
                functions
                    .iter()
                    .map(|f| format!("{}:{} = version {}", f.function, f.alias, f.version))
                    .collect::<Vec<_>>()
                    .join(", ")
            )),
            Ok(r) => ctx.log.line(&format!(
                "release {} failed in {}; the region stays on its previous release",
                r.release_id, req.region
            )),
            Err(e) => ctx.log.line(&format!(
                "warning: the release ledger could not record this deploy: {e}"
            )),
        }
    }

    fn finish(&self, ctx: &ActionContext, outcome: &StackOutcome) -> Result<ActionOutput, String> {
        let info = outcome.stack();
        let mut o = ActionOutput::default();
        for (k, v) in &info.outputs {
            o.variables.insert(k.clone(), Value::String(v.clone()));
        }
        if let Some(name) = ctx.action.config("OutputFileName") {
            let Some((_, dir)) = ctx.outputs.first() else {
                return Err("OutputFileName needs an output artifact on the action".into());
            };
            let json = serde_json::to_string_pretty(&info.outputs).map_err(|e| e.to_string())?;
            std::fs::write(dir.join(name), json).map_err(|e| format!("cannot write {name}: {e}"))?;
        }
        Ok(o)
    }
}

impl ActionProvider for CloudFormation {
    fn deploys(&self, action: &Action) -> bool {
        matches!(
            action.config("ActionMode"),
            Some("CREATE_UPDATE" | "REPLACE_ON_FAILURE" | "CHANGE_SET_EXECUTE")
        )
    }

    fn safe_to_repeat(&self, action: &Action) -> bool {
        // A stack operation interrupted half-way is recorded by the stack itself; repeating a
        // create/update converges on the template, and deleting twice deletes once.
        !matches!(action.config("ActionMode"), Some("CHANGE_SET_EXECUTE"))
    }

    fn run<'a>(&'a self, ctx: &'a ActionContext) -> BoxFuture<'a, Result<ActionOutput, String>> {
        Box::pin(async move {
            let a = &ctx.action;
            let mode = a.config("ActionMode").ok_or_else(|| {
                format!(
                    "the CloudFormation action needs ActionMode (one of {})",
                    MODES.join(", ")
                )
            })?;
            if !MODES.contains(&mode) {
                return Err(format!("ActionMode `{mode}` is not one of {}", MODES.join(", ")));
            }
            let stack = a
                .config("StackName")
                .ok_or("the CloudFormation action needs StackName")?
                .to_string();
            let change_set = a.config("ChangeSetName").map(String::from);
            if matches!(mode, "CHANGE_SET_REPLACE" | "CHANGE_SET_EXECUTE") && change_set.is_none() {
                return Err(format!("ActionMode {mode} needs ChangeSetName"));
            }
            let req = match mode {
                "CHANGE_SET_EXECUTE" | "DELETE_ONLY" => None,
                _ => Some(self.request(ctx, &stack)?),
            };
            let deploys = matches!(mode, "CREATE_UPDATE" | "REPLACE_ON_FAILURE" | "CHANGE_SET_EXECUTE");
            let stacks = Self::stacks(ctx)?;
            let log = ctx.log.clone();
            let say: meridian_region::Say = Arc::new(move |s: &str| log.line(s));
            // Alias moves of the change are the engine's: its driver shifts them through the
            // region's functions.
            let progress = crate::stacks::Progress {
                say: say.clone(),
                shifter: Some(ctx.delivery_driver(&ctx.region)?),
                delivery: Self::delivery(ctx),
            };
            let region = ctx.region.as_str();
            let outcome: Result<Option<StackOutcome>, String> = async {
                let e = |e: meridian_region::RegionError| e.to_string();
                match mode {
                    "CREATE_UPDATE" => stacks
                        .deploy(req.as_ref().expect("request"), progress.clone())
                        .await
                        .map(Some)
                        .map_err(e),
                    "REPLACE_ON_FAILURE" => {
                        let req = req.as_ref().expect("request");
                        if let Some(s) = stacks.describe_stack(region, &stack).await.map_err(e)? {
                            if s.stack_status.ends_with("_FAILED") || s.stack_status == "ROLLBACK_COMPLETE" {
                                say(&format!(
                                    "stack {stack} is {}: deleting it before creating it again",
                                    s.stack_status
                                ));
                                stacks.delete_stack(region, &stack, say.clone()).await.map_err(e)?;
                            }
                        }
                        stacks.deploy(req, progress.clone()).await.map(Some).map_err(e)
                    }
                    "CHANGE_SET_REPLACE" => {
                        let lines = stacks
                            .create_change_set(req.as_ref().expect("request"), say.clone())
                            .await
                            .map_err(e)?;
                        for line in lines {
                            say(&line);
                        }
                        Ok(None)
                    }
                    "CHANGE_SET_EXECUTE" => stacks
                        .execute_change_set(
                            region,
                            &stack,
                            change_set.as_deref().unwrap_or_default(),
                            progress.clone(),
                        )
                        .await
                        .map(Some)
                        .map_err(e),
                    _ => {
                        if stacks.describe_stack(region, &stack).await.map_err(e)?.is_none() {
                            say(&format!("stack {stack} does not exist in {region}: nothing to delete"));
                        } else {
                            stacks.delete_stack(region, &stack, say.clone()).await.map_err(e)?;
                        }
                        Ok(None)
                    }
                }
            }
            .await;
            let ledger_req = req;
            if deploys {
                if let Some(req) = &ledger_req {
                    self.record(ctx, stacks.as_ref(), req, &outcome).await;
                }
            }
            let outcome = outcome?;
            match outcome {
                Some(o) => {
                    if let StackOutcome::NoChanges(_) = &o {
                        ctx.log.line("No updates are to be performed.");
                    }
                    self.finish(ctx, &o)
                }
                None => Ok(ActionOutput::default()),
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn artifact_paths_are_confined_at_run_time() {
        let t = tempfile::tempdir().unwrap();
        let art = t.path().join("Src");
        std::fs::create_dir_all(&art).unwrap();
        std::fs::write(t.path().join("outside.json"), r#"{"Parameters": {"Secret": "x"}}"#).unwrap();
        std::fs::write(art.join("config.json"), r#"{"Parameters": {"Env": "prod"}}"#).unwrap();
        std::os::unix::fs::symlink("../outside.json", art.join("link.json")).unwrap();
        let ok = file_in(&art, "TemplateConfiguration", "Src", "config.json").unwrap();
        assert_eq!(template_configuration(&ok).unwrap().0["Env"], "prod");
        let e = file_in(&art, "TemplateConfiguration", "Src", "link.json").unwrap_err();
        assert!(
            e.starts_with("TemplateConfiguration: `Src::link.json` is refused: `link.json` leaves"),
            "{e}"
        );
        assert!(e.ends_with("; name a file inside artifact Src"), "{e}");
        let e = file_in(&art, "TemplatePath", "Src", "../outside.json").unwrap_err();
        assert_eq!(
            e,
            "TemplatePath: `Src::../outside.json` is refused: `../outside.json` leaves the directory through `..`; name a file inside artifact Src"
        );
    }

    #[test]
    fn a_template_configuration_is_read_with_a_bound() {
        let t = tempfile::tempdir().unwrap();
        let big = t.path().join("big.json");
        let f = std::fs::File::create(&big).unwrap();
        // sparse: 11 MiB on disk costs nothing
        f.set_len(11 * 1024 * 1024).unwrap();
        let e = template_configuration(&big).unwrap_err();
        assert_eq!(
            e,
            format!(
                "cannot read TemplateConfiguration {}: the file is {} bytes, over Meridian's limit of {} bytes",
                big.display(),
                11 * 1024 * 1024,
                meridian_pipeline::source::MAX_INPUT_BYTES
            )
        );
    }
}
