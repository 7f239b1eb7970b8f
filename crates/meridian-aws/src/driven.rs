//! Aliases that Meridian moves itself on AWS, as it does on local regions: its own schedules
//! (multi-step ones too), its judge, alarms read from CloudWatch, and `promote`/`extend`/`abort`.
//!
//! An alias under a SAM `DeploymentPreference` (`UpdatePolicy: CodeDeployLambdaAliasUpdate` once
//! transformed) would be handed by CloudFormation to CodeDeploy. When the engine's delivery driver
//! deploys the stack, Meridian takes that move over instead:
//!
//! 1. the SAM transform is applied here (the same transform the local regions use, checked
//!    against aws-sam-translator), so that the alias can be pinned: its `FunctionVersion` is the
//!    version it serves now, and its `UpdatePolicy` is left out. CloudFormation then publishes
//!    the new version and leaves the alias where it is;
//! 2. after the stack update, the driver shifts the alias with `UpdateAlias` and `RoutingConfig`,
//!    bakes, judges and reads the deployment group's alarms (`DescribeAlarms`);
//! 3. if the deployment fails, the alias is already back on the old version (the driver's
//!    doing), and the stack is put back on its previous template, the alias pinned to the old
//!    version, with its previous parameters: an update, since CloudFormation cannot roll back an
//!    update that completed.
//!
//! A stack's first creation has no old version to shift from: its aliases are created on the
//! new version, as CodeDeploy does.

use crate::functions::calls;
use aws_sdk_cloudformation::types::TemplateStage;
use meridian_region::stacks::{AliasDeployment, StackRequest};
use meridian_region::{ErrorKind, RegionError};
use meridian_template::eval::{resolve_parameters, Evaluator, Pseudo, Resolver};
use meridian_template::sam::SamOptions;
use meridian_template::template::Template;
use serde_json::Value;
use std::collections::BTreeMap;

/// One alias whose move Meridian drives.
#[derive(Debug, Clone)]
pub(crate) struct DrivenAlias {
    pub logical_id: String,
    /// The alias's name (`live`).
    pub name: String,
    /// Logical ids of its function and of the version resource it is meant to serve.
    pub function_logical: String,
    pub version_logical: Option<String>,
    /// `CodeDeployLambdaAliasUpdate`: the deployment group and hooks.
    pub policy: Value,
    /// The function's name and the version the alias served before this update (`None`: the
    /// alias does not exist yet, nothing to shift from).
    pub live: Option<(String, String)>,
}

/// A template body and the parameters to deploy it with.
pub(crate) type Restore = (String, BTreeMap<String, String>);

/// A stack update whose aliases Meridian drives.
pub(crate) struct Driven {
    /// The template sent to CloudFormation (processed, aliases pinned).
    pub body: String,
    pub aliases: Vec<DrivenAlias>,
    template: Template,
    /// The stack's template and parameters before this update, to put back if a move fails.
    previous: Option<Restore>,
}

fn invalid(req: &StackRequest, message: String) -> RegionError {
    RegionError::new(ErrorKind::Invalid, message)
        .region(&req.region)
        .stack(&req.stack_name)
}

fn parse(
    req: &StackRequest,
    file: &str,
    text: &str,
    params: &BTreeMap<String, String>,
) -> Result<Template, RegionError> {
    let mut opts = SamOptions {
        region: req.region.clone(),
        publish_on_config_change: req.publish_on_config_change,
        ..SamOptions::default()
    };
    for (k, v) in params {
        opts.parameter_values.insert(k.clone(), Value::String(v.clone()));
    }
    Template::parse(file, text, &opts).map_err(|e| invalid(req, e.to_string()))
}

/// `{"Ref": X}` -> X.
fn ref_of(v: Option<&Value>) -> Option<String> {
    v?.get("Ref")?.as_str().map(str::to_string)
}

/// `{"Fn::GetAtt": [X, "Version"]}` (or `X.Version`) -> X.
fn version_of(v: Option<&Value>) -> Option<String> {
    match v?.get("Fn::GetAtt")? {
        Value::Array(a) => a.first()?.as_str().map(str::to_string),
        Value::String(s) => s.split('.').next().map(str::to_string),
        _ => None,
    }
}

/// The aliases of a processed template that CloudFormation would hand to CodeDeploy.
fn driven_aliases(json: &Value) -> Vec<DrivenAlias> {
    let Some(resources) = json.get("Resources").and_then(Value::as_object) else {
        return Vec::new();
    };
    resources
        .iter()
        .filter(|(_, r)| r.get("Type").and_then(Value::as_str) == Some("AWS::Lambda::Alias"))
        .filter_map(|(id, r)| {
            let policy = r.get("UpdatePolicy")?.get("CodeDeployLambdaAliasUpdate")?.clone();
            let props = r.get("Properties")?;
            Some(DrivenAlias {
                logical_id: id.clone(),
                name: props.get("Name")?.as_str()?.to_string(),
                function_logical: ref_of(props.get("FunctionName"))?,
                version_logical: version_of(props.get("FunctionVersion")),
                policy,
                live: None,
            })
        })
        .collect()
}

/// Pins each alias to the version it serves (when it serves one) and leaves its move to Meridian.
fn pin(json: &mut Value, aliases: &[DrivenAlias]) {
    for a in aliases {
        let Some(r) = json
            .get_mut("Resources")
            .and_then(|r| r.get_mut(&a.logical_id))
            .and_then(Value::as_object_mut)
        else {
            continue;
        };
        if let Some(Value::Object(up)) = r.get_mut("UpdatePolicy") {
            up.remove("CodeDeployLambdaAliasUpdate");
            if up.is_empty() {
                r.remove("UpdatePolicy");
            }
        }
        if let (Some((_, version)), Some(Value::Object(props))) = (&a.live, r.get_mut("Properties")) {
            props.insert("FunctionVersion".into(), Value::String(version.clone()));
        }
    }
}

/// One resource of a stack: logical id, physical id, type.
pub(crate) type StackResource = (String, String, String);

/// The stack's resources that have a logical and a physical id (a stand-in may give blank ones).
pub(crate) async fn stack_resources(
    cf: &aws_sdk_cloudformation::Client,
    region: &str,
    stack: &str,
) -> Result<Vec<StackResource>, RegionError> {
    let mut out = Vec::new();
    let mut next = None;
    loop {
        let page = cf
            .list_stack_resources()
            .stack_name(stack)
            .set_next_token(next)
            .send()
            .await
            .map_err(|e| crate::sdk_error(region, "cloudformation:ListStackResources", &e).stack(stack))?;
        for r in page.stack_resource_summaries() {
            if let (Some(l), Some(p)) = (r.logical_resource_id(), r.physical_resource_id()) {
                if !l.is_empty() && !p.is_empty() {
                    out.push((
                        l.to_string(),
                        p.to_string(),
                        r.resource_type().unwrap_or_default().to_string(),
                    ));
                }
            }
        }
        next = page.next_token().map(str::to_string);
        if next.is_none() {
            return Ok(out);
        }
    }
}

/// The stack's resources: logical id -> physical id.
async fn physical_ids(
    cf: &aws_sdk_cloudformation::Client,
    region: &str,
    stack: &str,
) -> Result<BTreeMap<String, String>, RegionError> {
    Ok(stack_resources(cf, region, stack)
        .await?
        .into_iter()
        .map(|(l, p, _)| (l, p))
        .collect())
}

/// Reads the template of `req` and, when it has aliases Meridian drives, returns the template to
/// send instead. `exists`: the stack exists (its aliases may serve a version).
pub(crate) async fn prepare(
    req: &StackRequest,
    cf: &aws_sdk_cloudformation::Client,
    lambda: &aws_sdk_lambda::Client,
    text: &str,
    exists: bool,
) -> Result<Option<Driven>, RegionError> {
    let file = req
        .source_template
        .as_ref()
        .unwrap_or(&req.template_path)
        .display()
        .to_string();
    let template = parse(req, &file, text, &req.parameters)?;
    let mut aliases = driven_aliases(&template.json);
    if aliases.is_empty() {
        return Ok(None);
    }
    let (region, stack) = (req.region.as_str(), req.stack_name.as_str());
    let mut previous = None;
    if exists {
        let ids = physical_ids(cf, region, stack).await?;
        for a in &mut aliases {
            if let Some(function) = ids.get(&a.function_logical) {
                if let Some(v) = calls::alias_version(lambda, region, function, &a.name).await? {
                    a.live = Some((function.clone(), v));
                }
            }
        }
        let body = cf
            .get_template()
            .stack_name(stack)
            .template_stage(TemplateStage::Original)
            .send()
            .await
            .map_err(|e| crate::sdk_error(region, "cloudformation:GetTemplate", &e).stack(stack))?
            .template_body()
            .unwrap_or_default()
            .to_string();
        let params = cf
            .describe_stacks()
            .stack_name(stack)
            .send()
            .await
            .map_err(|e| crate::sdk_error(region, "cloudformation:DescribeStacks", &e).stack(stack))?
            .stacks()
            .first()
            .map(|s| {
                s.parameters()
                    .iter()
                    .filter_map(|p| Some((p.parameter_key()?.to_string(), p.parameter_value()?.to_string())))
                    .collect()
            })
            .unwrap_or_default();
        if !body.is_empty() {
            previous = Some((body, params));
        }
    }
    let mut json = template.json.clone();
    pin(&mut json, &aliases);
    let body =
        serde_json::to_string(&json).map_err(|e| invalid(req, format!("cannot write the processed template: {e}")))?;
    Ok(Some(Driven {
        body,
        aliases,
        template,
        previous,
    }))
}

/// Physical ids as CloudFormation gives them, and where it gives none (a stand-in such as moto
/// that does not create the resource type), the name the template gives the resource.
struct Known<'a> {
    ids: &'a BTreeMap<String, String>,
    names: BTreeMap<String, String>,
}

impl Resolver for Known<'_> {
    fn physical_id(&self, logical_id: &str) -> Option<Value> {
        self.ids
            .get(logical_id)
            .or_else(|| self.names.get(logical_id))
            .map(|s| Value::String(s.clone()))
    }
    fn attribute(&self, _: &str, _: &str) -> Option<Value> {
        None
    }
    fn import(&self, _: &str) -> Option<String> {
        None
    }
}

/// The property that names a resource of this type, when the template may set it.
fn name_property(type_: &str) -> Option<&'static str> {
    Some(match type_ {
        "AWS::CloudWatch::Alarm" => "AlarmName",
        "AWS::Lambda::Function" => "FunctionName",
        "AWS::CodeDeploy::DeploymentGroup" => "DeploymentGroupName",
        "AWS::CodeDeploy::DeploymentConfig" => "DeploymentConfigName",
        "AWS::CodeDeploy::Application" => "ApplicationName",
        _ => return None,
    })
}

impl Driven {
    /// The moves to make now that the stack is updated: one per alias that served a version
    /// and has a new one.
    pub(crate) async fn deployments(
        &self,
        req: &StackRequest,
        cf: &aws_sdk_cloudformation::Client,
        lambda: &aws_sdk_lambda::Client,
        stack_id: &str,
    ) -> Result<Vec<AliasDeployment>, RegionError> {
        let (region, stack) = (req.region.as_str(), req.stack_name.as_str());
        let ids = physical_ids(cf, region, stack).await?;
        // The version each alias is to serve: its version resource's number (the ARN's end), else
        // the function's newest (an endpoint that gives versions no physical id).
        let mut tos = BTreeMap::new();
        for a in &self.aliases {
            let Some((function, _)) = &a.live else {
                continue;
            };
            let to = match a.version_logical.as_ref().and_then(|v| ids.get(v)) {
                Some(arn) if arn.rsplit(':').next().is_some_and(|n| n.parse::<u64>().is_ok()) => {
                    Some(arn.rsplit(':').next().unwrap_or_default().to_string())
                }
                _ => calls::latest_version(lambda, region, function).await?,
            };
            let to = calls::version_with_latest_code(lambda, region, function, to).await?;
            if let Some(to) = to {
                tos.insert(a.logical_id.clone(), to);
            }
        }
        let params =
            resolve_parameters(&self.template, &req.parameters, &|_| None).map_err(|e| invalid(req, e.to_string()))?;
        let pseudo = Pseudo::new(region, "", stack, stack_id);
        let resources = self.template.resources();
        // Names the template gives resources, for those the endpoint gives no physical id.
        let first = Known {
            ids: &ids,
            names: BTreeMap::new(),
        };
        let mut names = BTreeMap::new();
        {
            let mut ev =
                Evaluator::new(&self.template, &params, &pseudo, &first).map_err(|e| invalid(req, e.to_string()))?;
            ev.lenient = true;
            for r in &resources {
                if let Some(p) = name_property(&r.type_).and_then(|k| r.properties.get(k)) {
                    if let Ok(Some(Value::String(n))) = ev.eval(p) {
                        names.insert(r.logical_id.clone(), n);
                    }
                }
            }
        }
        let known = Known { ids: &ids, names };
        let mut ev =
            Evaluator::new(&self.template, &params, &pseudo, &known).map_err(|e| invalid(req, e.to_string()))?;
        ev.lenient = true;
        let eval = |v: &Value| ev.eval(v).ok().flatten().unwrap_or(Value::Null);
        let props_of = |logical: &str| {
            resources
                .iter()
                .find(|r| r.logical_id == logical)
                .map(|r| eval(&r.properties))
                .unwrap_or(Value::Null)
        };
        let by_name = |type_: &str, name: &str| {
            resources
                .iter()
                .find(|r| {
                    r.type_ == type_ && known.physical_id(&r.logical_id).as_ref().and_then(Value::as_str) == Some(name)
                })
                .map(|r| r.logical_id.clone())
        };
        let mut out = Vec::new();
        for a in &self.aliases {
            let Some((function, from)) = &a.live else {
                continue;
            };
            let Some(to) = tos.get(&a.logical_id).cloned() else {
                continue;
            };
            if &to == from {
                continue;
            }
            let group_logical = ref_of(a.policy.get("DeploymentGroupName"));
            let group = group_logical.as_deref().map(props_of).unwrap_or(Value::Null);
            let mut alarms = BTreeMap::new();
            for al in group
                .get("AlarmConfiguration")
                .and_then(|c| c.get("Alarms"))
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
            {
                if let Some(n) = al.get("Name").and_then(Value::as_str) {
                    let props = by_name("AWS::CloudWatch::Alarm", n)
                        .map(|l| props_of(&l))
                        .unwrap_or(Value::Null);
                    alarms.insert(n.to_string(), props);
                }
            }
            let deployment_config = group
                .get("DeploymentConfigName")
                .and_then(Value::as_str)
                .and_then(|n| by_name("AWS::CodeDeploy::DeploymentConfig", n))
                .map(|l| props_of(&l));
            let policy = eval(&a.policy);
            let hook = |k: &str| {
                policy
                    .get(k)
                    .and_then(Value::as_str)
                    .map(|s| s.rsplit(':').next().unwrap_or(s).to_string())
            };
            out.push(AliasDeployment {
                region: region.to_string(),
                stack_name: stack.to_string(),
                function: function.clone(),
                alias: a.name.clone(),
                from_version: from.clone(),
                to_version: to,
                deployment_group: group,
                deployment_config,
                alarms,
                before_hook: hook("BeforeAllowTrafficHook"),
                after_hook: hook("AfterAllowTrafficHook"),
                options: req.delivery.clone(),
            });
        }
        Ok(out)
    }

    /// The template and parameters that put the stack back where it was: its previous template
    /// (processed here if it was a SAM one), each driven alias pinned to the version it served.
    pub(crate) fn restore(&self, req: &StackRequest) -> Result<Option<Restore>, RegionError> {
        let Some((body, params)) = &self.previous else {
            return Ok(None);
        };
        let previous = parse(req, "the stack's previous template", body, params)?;
        let mut json = previous.json;
        let mut aliases = driven_aliases(&json);
        // Aliases Meridian drove before have no UpdatePolicy in the template it sent: find them by id.
        for a in &self.aliases {
            if !aliases.iter().any(|x| x.logical_id == a.logical_id) {
                aliases.push(a.clone());
            }
        }
        for a in &mut aliases {
            a.live = self
                .aliases
                .iter()
                .find(|x| x.logical_id == a.logical_id)
                .and_then(|x| x.live.clone());
        }
        pin(&mut json, &aliases);
        let body = serde_json::to_string(&json)
            .map_err(|e| invalid(req, format!("cannot write the previous template: {e}")))?;
        Ok(Some((body, params.clone())))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn an_alias_under_codedeploy_is_pinned_to_the_version_it_serves_and_left_to_meridian() {
        let mut t = json!({"Resources": {
            "FnAliaslive": {"Type": "AWS::Lambda::Alias",
                "UpdatePolicy": {"CodeDeployLambdaAliasUpdate": {"ApplicationName": {"Ref": "App"}, "DeploymentGroupName": {"Ref": "Group"}}},
                "Properties": {"Name": "live", "FunctionName": {"Ref": "Fn"}, "FunctionVersion": {"Fn::GetAtt": ["FnVersion1", "Version"]}}},
            "Plain": {"Type": "AWS::Lambda::Alias", "Properties": {"Name": "x", "FunctionName": {"Ref": "Fn"}, "FunctionVersion": "3"}}
        }});
        let mut aliases = driven_aliases(&t);
        assert_eq!(aliases.len(), 1, "only the alias under CodeDeploy is driven");
        let a = &aliases[0];
        assert_eq!((a.name.as_str(), a.function_logical.as_str()), ("live", "Fn"));
        assert_eq!(a.version_logical.as_deref(), Some("FnVersion1"));
        aliases[0].live = Some(("app-Fn-1".into(), "7".into()));
        pin(&mut t, &aliases);
        let r = &t["Resources"]["FnAliaslive"];
        assert!(r.get("UpdatePolicy").is_none(), "{r}");
        assert_eq!(r["Properties"]["FunctionVersion"], "7");
        // at creation (no live version) the alias is created on the new version
        let mut t2 = json!({"Resources": {"A": {"Type": "AWS::Lambda::Alias",
            "UpdatePolicy": {"CodeDeployLambdaAliasUpdate": {}},
            "Properties": {"Name": "live", "FunctionName": {"Ref": "Fn"}, "FunctionVersion": {"Fn::GetAtt": ["V", "Version"]}}}}});
        let a2 = driven_aliases(&t2);
        pin(&mut t2, &a2);
        assert_eq!(
            t2["Resources"]["A"]["Properties"]["FunctionVersion"]["Fn::GetAtt"][0],
            "V"
        );
        assert!(t2["Resources"]["A"].get("UpdatePolicy").is_none());
    }
}
