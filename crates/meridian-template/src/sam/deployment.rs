//! `DeploymentPreference`: the alias's `CodeDeployLambdaAliasUpdate` update policy, one
//! CodeDeploy deployment group per function, and the shared `ServerlessDeploymentApplication`
//! and `CodeDeployServiceRole`, as aws-sam-translator's DeploymentPreferenceCollection makes them.

use serde_json::{json, Map, Value};

use super::function::{plain_tag_list, Props};
use super::intrinsics::{is_intrinsic, is_intrinsic_if, is_no_value, validate_if_items};
use super::{res_err, truthy, CfnResource, Context, Failure, SamResourceError};

const APPLICATION_ID: &str = "ServerlessDeploymentApplication";
const SERVICE_ROLE_ID: &str = "CodeDeployServiceRole";
const CONDITION_NAME: &str = "ServerlessCodeDeployCondition";
const PREDEFINED: &[&str] = &[
    "Canary10Percent5Minutes",
    "Canary10Percent10Minutes",
    "Canary10Percent15Minutes",
    "Canary10Percent30Minutes",
    "Linear10PercentEvery1Minute",
    "Linear10PercentEvery2Minutes",
    "Linear10PercentEvery3Minutes",
    "Linear10PercentEvery10Minutes",
    "AllAtOnce",
];

#[derive(Debug, Clone, Default)]
pub(crate) struct Preference {
    pub enabled: bool,
    deployment_type: Value,
    pre_traffic_hook: Option<Value>,
    post_traffic_hook: Option<Value>,
    alarms: Option<Value>,
    role: Option<Value>,
    trigger_configurations: Option<Value>,
    condition: Option<Value>,
    tags: Option<Map<String, Value>>,
    propagate_tags: bool,
}

/// All functions' preferences, in the order the functions were translated.
#[derive(Debug, Default)]
pub(crate) struct Collection {
    prefs: Vec<(String, Preference)>,
}

fn get_opt(m: &Map<String, Value>, k: &str) -> Option<Value> {
    m.get(k).filter(|v| !v.is_null()).cloned()
}

impl Preference {
    fn from_dict(
        id: &str,
        d: &Map<String, Value>,
        condition: Option<Value>,
        tags: Option<&Value>,
        propagate_tags: bool,
    ) -> Result<Preference, Failure> {
        let enabled = d.get("Enabled").cloned().unwrap_or(Value::Bool(true));
        let enabled = if enabled == json!("false") || enabled == json!("False") {
            Value::Bool(false)
        } else {
            enabled
        };
        if !truthy(&enabled) {
            return Ok(Preference::default());
        }
        let Some(deployment_type) = d.get("Type") else {
            return Err(res_err(
                id,
                "'DeploymentPreference' is missing required Property 'Type'",
            ));
        };
        let hooks = d.get("Hooks").cloned().unwrap_or_else(|| json!({}));
        let Value::Object(hooks) = hooks else {
            return Err(res_err(
                id,
                "'Hooks' property of 'DeploymentPreference' must be a dictionary",
            ));
        };
        let passthrough_condition = d.get("PassthroughCondition").map(truthy).unwrap_or(false);
        Ok(Preference {
            enabled: true,
            deployment_type: deployment_type.clone(),
            pre_traffic_hook: get_opt(&hooks, "PreTraffic"),
            post_traffic_hook: get_opt(&hooks, "PostTraffic"),
            alarms: get_opt(d, "Alarms"),
            role: get_opt(d, "Role"),
            trigger_configurations: get_opt(d, "TriggerConfigurations"),
            condition: if passthrough_condition {
                condition.filter(truthy)
            } else {
                None
            },
            tags: match tags {
                Some(Value::Object(t)) if propagate_tags && !t.is_empty() => Some(t.clone()),
                _ => None,
            },
            propagate_tags,
        })
    }
}

/// `_validate_deployment_preference_and_add_update_policy` of SamFunction.
pub(crate) fn validate_and_add(
    ctx: &mut Context<'_>,
    id: &str,
    dp: &Value,
    props: &Props<'_>,
    passthrough: &Map<String, Value>,
    alias: Option<&mut CfnResource>,
) -> Result<(), Failure> {
    let Value::Object(dp) = dp else {
        return Err(res_err(id, "Property 'DeploymentPreference' should be a map."));
    };
    let mut dp = dp.clone();
    for key in ["Enabled", "Type"] {
        if let Some(v) = dp.get(key).cloned() {
            let v = ctx.resolve_params(&v)?;
            let v = ctx.resolve_mappings(v)?;
            dp.insert(key.into(), v);
        }
    }
    let passthrough_condition = match dp.get("PassthroughCondition").cloned() {
        Some(v) => {
            let v = ctx.resolve_params(&v)?;
            let v = ctx.resolve_mappings(v)?;
            if v == json!(true) || v == json!("true") || v == json!("True") {
                true
            } else if v == json!(false) || v == json!("false") || v == json!("False") {
                false
            } else if is_intrinsic(&v) {
                return Err(res_err(
                    id,
                    "Unsupported intrinsic: the only intrinsic functions supported for property PassthroughCondition are FindInMap and parameter Refs.",
                ));
            } else {
                return Err(res_err(id, "Invalid value for property PassthroughCondition."));
            }
        }
        None => false,
    };
    dp.insert("PassthroughCondition".into(), Value::Bool(passthrough_condition));

    if ctx.deployments.prefs.iter().any(|(i, _)| i == id) {
        return Err(res_err(
            id,
            format!("logical_id {id} previously added to this deployment_preference_collection"),
        ));
    }
    let pref = Preference::from_dict(
        id,
        &dp,
        passthrough.get("Condition").cloned(),
        props.get("Tags"),
        props.truthy("PropagateTags"),
    )?;
    let enabled = pref.enabled;
    ctx.deployments.prefs.push((id.to_string(), pref.clone()));
    if enabled {
        if !props.truthy("AutoPublishAlias") {
            return Err(res_err(
                id,
                "'DeploymentPreference' requires AutoPublishAlias property to be specified.",
            ));
        }
        if let Some(alias) = alias {
            let mut update = Map::new();
            update.insert("ApplicationName".into(), json!({"Ref": APPLICATION_ID}));
            update.insert(
                "DeploymentGroupName".into(),
                json!({"Ref": format!("{id}DeploymentGroup")}),
            );
            for (k, v) in [
                ("BeforeAllowTrafficHook", &pref.pre_traffic_hook),
                ("AfterAllowTrafficHook", &pref.post_traffic_hook),
            ] {
                if let Some(v) = v {
                    if *v != json!({"Ref": null}) {
                        update.insert(k.into(), v.clone());
                    }
                }
            }
            alias
                .attributes
                .insert("UpdatePolicy".into(), json!({"CodeDeployLambdaAliasUpdate": update}));
        }
    }
    Ok(())
}

impl Collection {
    pub(crate) fn any_enabled(&self) -> bool {
        self.prefs.iter().any(|(_, p)| p.enabled)
    }

    fn can_skip_service_role(&self) -> bool {
        self.prefs
            .iter()
            .all(|(_, p)| p.role.as_ref().map(truthy).unwrap_or(false) || !p.enabled)
    }

    fn needs_resource_condition(&self) -> bool {
        !self.prefs.is_empty() && !self.prefs.iter().any(|(_, p)| p.condition.is_none() && p.enabled)
    }

    /// The distinct conditions (SAM builds them from a set; with one condition the order is moot).
    fn all_conditions(&self) -> Vec<Value> {
        let mut out: Vec<Value> = Vec::new();
        for (_, p) in &self.prefs {
            if let Some(c) = &p.condition {
                if !out.contains(c) {
                    out.push(c.clone());
                }
            }
        }
        out
    }

    fn merged_tags(&self) -> Map<String, Value> {
        let mut m = Map::new();
        for (_, p) in &self.prefs {
            if let (true, true, Some(t)) = (p.enabled, p.propagate_tags, &p.tags) {
                m.extend(t.clone());
            }
        }
        m
    }

    fn resource_condition(&self) -> Option<Value> {
        if !self.needs_resource_condition() {
            return None;
        }
        let conds = self.all_conditions();
        if conds.len() <= 1 {
            conds.into_iter().next()
        } else {
            Some(json!(CONDITION_NAME))
        }
    }

    /// The shared application and service role, the deployment groups, new Conditions, errors.
    pub(crate) fn generate(
        &self,
        ctx: &Context<'_>,
    ) -> (Vec<CfnResource>, Option<Map<String, Value>>, Vec<SamResourceError>) {
        let mut out = Vec::new();
        let mut errors = Vec::new();
        let mut app = CfnResource::new(APPLICATION_ID, "AWS::CodeDeploy::Application");
        app.set("ComputePlatform", Some(json!("Lambda")));
        let tags = self.merged_tags();
        if !tags.is_empty() {
            app.set("Tags", Some(Value::Array(plain_tag_list(&tags))));
        }
        if let Some(c) = self.resource_condition() {
            app.attributes.insert("Condition".into(), c);
        }
        out.push(app);

        let mut new_conditions = None;
        if self.needs_resource_condition() {
            new_conditions = combined_condition(self.all_conditions(), CONDITION_NAME);
        }

        if !self.can_skip_service_role() {
            let mut role = CfnResource::new(SERVICE_ROLE_ID, "AWS::IAM::Role");
            role.set(
                "AssumeRolePolicyDocument",
                Some(
                    json!({"Version": "2012-10-17", "Statement": [{"Action": ["sts:AssumeRole"], "Effect": "Allow",
                    "Principal": {"Service": ["codedeploy.amazonaws.com"]}}]}),
                ),
            );
            let name = if ["aws-iso", "aws-iso-b"].contains(&ctx.opts.partition.as_str()) {
                "service-role/AWSCodeDeployRoleForLambdaLimited"
            } else {
                "service-role/AWSCodeDeployRoleForLambda"
            };
            role.set("ManagedPolicyArns", Some(json!([ctx.managed_policy_arn(name)])));
            if let Some(c) = self.resource_condition() {
                role.attributes.insert("Condition".into(), c);
            }
            if !tags.is_empty() {
                role.set("Tags", Some(Value::Array(plain_tag_list(&tags))));
            }
            out.push(role);
        }

        for (id, p) in self.prefs.iter().filter(|(_, p)| p.enabled) {
            match deployment_group(id, p) {
                Ok(g) => out.push(g),
                Err(Failure::Resource(e)) => errors.push(e),
                Err(Failure::Document(d)) => errors.extend(d),
            }
        }
        (out, new_conditions, errors)
    }
}

pub(crate) fn combined_condition(mut conditions: Vec<Value>, name: &str) -> Option<Map<String, Value>> {
    if conditions.len() < 2 {
        return None;
    }
    let max = 10;
    let mut out = Map::new();
    let total = conditions.len();
    // SAM: ceil((n - 1) / (max - 1)) conditions are needed; all but the last are numbered.
    let mut remaining_names = (total - 1).div_ceil(max - 1) as i64 - 1;
    while conditions.len() > 1 {
        let mut new_name = name.to_string();
        if remaining_names > 0 {
            new_name = format!("{name}{remaining_names}");
            remaining_names -= 1;
        }
        let take: Vec<Value> = conditions.iter().take(max).cloned().collect();
        conditions = conditions.into_iter().skip(max).collect();
        conditions.push(json!(new_name));
        out.insert(
            new_name,
            json!({"Fn::Or": take.into_iter().map(|c| json!({"Condition": c})).collect::<Vec<_>>()}),
        );
    }
    Some(out)
}

fn deployment_group(id: &str, p: &Preference) -> Result<CfnResource, Failure> {
    let mut g = CfnResource::new(format!("{id}DeploymentGroup"), "AWS::CodeDeploy::DeploymentGroup");
    let alarms = convert_alarms(p.alarms.as_ref()).map_err(|e| res_err(id, e))?;
    g.set("AlarmConfiguration", alarms);
    g.set("ApplicationName", Some(json!({"Ref": APPLICATION_ID})));
    g.set(
        "AutoRollbackConfiguration",
        Some(json!({"Enabled": true, "Events": ["DEPLOYMENT_FAILURE", "DEPLOYMENT_STOP_ON_ALARM", "DEPLOYMENT_STOP_ON_REQUEST"]})),
    );
    g.set(
        "DeploymentConfigName",
        Some(replace_deployment_types(p.deployment_type.clone(), None)),
    );
    g.set(
        "DeploymentStyle",
        Some(json!({"DeploymentType": "BLUE_GREEN", "DeploymentOption": "WITH_TRAFFIC_CONTROL"})),
    );
    let role = p
        .role
        .clone()
        .filter(truthy)
        .unwrap_or_else(|| json!({"Fn::GetAtt": [SERVICE_ROLE_ID, "Arn"]}));
    g.set("ServiceRoleArn", Some(role));
    if let Some(t) = p.trigger_configurations.clone().filter(truthy) {
        g.set("TriggerConfigurations", Some(t));
    }
    if let Some(tags) = &p.tags {
        g.set("Tags", Some(Value::Array(plain_tag_list(tags))));
    }
    if let Some(c) = &p.condition {
        g.attributes.insert("Condition".into(), c.clone());
    }
    Ok(g)
}

fn convert_alarms(alarms: Option<&Value>) -> Result<Option<Value>, String> {
    let Some(alarms) = alarms.filter(|a| truthy(a) && !is_no_value(a)) else {
        return Ok(None);
    };
    if is_intrinsic_if(alarms) {
        let mut processed = alarms.clone();
        let items = &processed["Fn::If"];
        validate_if_items(items)?;
        let a = build_alarm_configuration(&items[1])?;
        let b = build_alarm_configuration(&items[2])?;
        processed["Fn::If"][1] = a;
        processed["Fn::If"][2] = b;
        return Ok(Some(processed));
    }
    build_alarm_configuration(alarms).map(Some)
}

fn build_alarm_configuration(alarms: &Value) -> Result<Value, String> {
    let Value::Array(list) = alarms else {
        return Err("Alarms must be a list".into());
    };
    if list.is_empty() || is_no_value(&list[0]) {
        return Ok(json!({}));
    }
    Ok(json!({"Enabled": true, "Alarms": list.iter().map(|a| json!({"Name": a})).collect::<Vec<_>>()}))
}

/// Predefined configuration names become `CodeDeployDefault.Lambda<Name>` through Fn::Sub,
/// also inside intrinsics (without nesting a Sub in a Sub).
fn replace_deployment_types(v: Value, key: Option<&str>) -> Value {
    match v {
        Value::Array(a) => Value::Array(a.into_iter().map(|x| replace_deployment_types(x, None)).collect()),
        Value::Object(m) if is_intrinsic(&Value::Object(m.clone())) => Value::Object(
            m.into_iter()
                .map(|(k, x)| {
                    let x = replace_deployment_types(x, Some(&k));
                    (k, x)
                })
                .collect(),
        ),
        Value::String(s) if PREDEFINED.contains(&s.as_str()) => {
            let args = json!(["CodeDeployDefault.Lambda${ConfigName}", {"ConfigName": s}]);
            if key == Some("Fn::Sub") {
                args
            } else {
                json!({"Fn::Sub": args})
            }
        }
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn predefined_types_become_subs_without_nesting() {
        assert_eq!(
            replace_deployment_types(json!({"Fn::Sub": "AllAtOnce"}), None),
            json!({"Fn::Sub": ["CodeDeployDefault.Lambda${ConfigName}", {"ConfigName": "AllAtOnce"}]})
        );
        assert_eq!(
            replace_deployment_types(json!({"Fn::If": ["C", "Custom", "Canary10Percent5Minutes"]}), None),
            json!({"Fn::If": ["C", "Custom", {"Fn::Sub": ["CodeDeployDefault.Lambda${ConfigName}", {"ConfigName": "Canary10Percent5Minutes"}]}]})
        );
        assert_eq!(replace_deployment_types(json!("Mine"), None), json!("Mine"));
    }

    #[test]
    fn combined_conditions_or_together() {
        let c = combined_condition(vec![json!("A"), json!("B")], CONDITION_NAME).unwrap();
        assert_eq!(
            Value::Object(c),
            json!({"ServerlessCodeDeployCondition": {"Fn::Or": [{"Condition": "A"}, {"Condition": "B"}]}})
        );
    }
}
