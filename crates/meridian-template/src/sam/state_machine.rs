//! `AWS::Serverless::StateMachine` -> `AWS::StepFunctions::StateMachine`, as aws-sam-translator's
//! `StateMachineGenerator` makes it: the definition (inline, as a readable `Fn::Join` of its JSON
//! lines with intrinsic functions moved to `DefinitionSubstitutions`, or from S3), the execution
//! role, the version and alias of `AutoPublishAlias`, and the event sources (`Schedule`,
//! `ScheduleV2`, `CloudWatchEvent` / `EventBridgeRule`, and `Api`, an integration of the REST
//! API with Step Functions' StartExecution).

use serde_json::{json, Map, Value};

use super::events::{self, Owner, RuleEvent, ScheduleTarget};
use super::function::{self, passthrough_attributes, resource_attributes, Props, RoleSpec};
use super::intrinsics::is_intrinsic;
use super::validate::Check;
use super::{res_err, truthy, CfnResource, Context, Failure};

const TYPE: &str = "AWS::Serverless::StateMachine";

/// The properties of `AWS::Serverless::StateMachine` in aws-sam-translator's model, in order.
const PROPERTIES: &[(&str, Check)] = &[
    ("Definition", Check::Dict),
    ("DefinitionUri", Check::StrOrDict),
    ("Logging", Check::Dict),
    ("Role", Check::Str),
    ("RolePath", Check::Any),
    ("DefinitionSubstitutions", Check::Dict),
    ("Events", Check::DictOfDict),
    ("Name", Check::Str),
    ("Type", Check::Str),
    ("Tags", Check::Dict),
    ("PropagateTags", Check::Bool),
    ("Policies", Check::StrOrListOfStrOrDict),
    ("Tracing", Check::Dict),
    ("PermissionsBoundary", Check::Str),
    ("AutoPublishAlias", Check::Any),
    ("DeploymentPreference", Check::Any),
    ("UseAliasAsEventTarget", Check::StrictBool),
];

/// The event types of state machines.
const EVENT_TYPES: &[&str] = &["Schedule", "CloudWatchEvent", "EventBridgeRule", "Api", "ScheduleV2"];

/// The properties of a state machine's event of type `t`, and the required ones.
fn event_model(t: &str) -> (&'static [(&'static str, Check)], &'static [&'static str]) {
    const SCHEDULE: &[(&str, Check)] = &[
        ("Schedule", Check::Str),
        ("Input", Check::Str),
        ("Enabled", Check::Bool),
        ("State", Check::Str),
        ("Name", Check::Str),
        ("Description", Check::Str),
        ("DeadLetterConfig", Check::Dict),
        ("RetryPolicy", Check::Dict),
        ("Target", Check::Dict),
        ("RoleArn", Check::StrictStr),
    ];
    const RULE: &[(&str, Check)] = &[
        ("EventBusName", Check::Str),
        ("RuleName", Check::Str),
        ("Pattern", Check::Dict),
        ("Input", Check::Str),
        ("InputPath", Check::Str),
        ("DeadLetterConfig", Check::Dict),
        ("RetryPolicy", Check::Dict),
        ("State", Check::Str),
        ("Target", Check::Dict),
        ("InputTransformer", Check::Dict),
    ];
    const API: &[(&str, Check)] = &[
        ("Path", Check::Str),
        ("Method", Check::Str),
        ("RestApiId", Check::Str),
        ("Stage", Check::Str),
        ("Auth", Check::Dict),
        ("UnescapeMappingTemplate", Check::StrictBool),
    ];
    match t {
        "Schedule" => (SCHEDULE, &["Schedule"]),
        "Api" => (API, &["Path", "Method", "RestApiId"]),
        "ScheduleV2" => (events::SCHEDULE_V2, &["ScheduleExpression"]),
        _ => (RULE, &[]),
    }
}

/// Generated types whose model has `Tags` (they take the state machine's tags with `PropagateTags`).
const TAGGABLE: &[&str] = &["AWS::StepFunctions::StateMachine", "AWS::IAM::Role", "AWS::SQS::Queue"];

pub(crate) fn translate(ctx: &mut Context<'_>, id: &str, resource: &Value) -> Result<Vec<CfnResource>, Failure> {
    let empty = Map::new();
    let props_map = resource.get("Properties").and_then(Value::as_object).unwrap_or(&empty);
    // The policy-templates plugin runs first: templates become the statements they stand for.
    let expanded;
    let props = match function::expand_policy_templates(id, &Props(props_map))? {
        Some(m) => {
            expanded = m;
            Props(&expanded)
        }
        None => Props(props_map),
    };
    super::validate::properties(id, TYPE, props_map, PROPERTIES, &[])?;
    let events = link_events(id, &props)?;

    let passthrough = passthrough_attributes(resource);
    let mut machine = CfnResource::new(id, "AWS::StepFunctions::StateMachine");
    machine.attributes = resource_attributes(resource);
    machine.depends_on = resource.get("DependsOn").cloned();

    let mut substitutions = props
        .get("DefinitionSubstitutions")
        .filter(|v| truthy(v))
        .and_then(Value::as_object)
        .cloned();
    let definition = props.get("Definition").filter(|v| truthy(v));
    let definition_uri = props.get("DefinitionUri").filter(|v| truthy(v));
    match (definition, definition_uri) {
        (Some(_), Some(_)) => {
            return Err(res_err(
                id,
                "Specify either 'Definition' or 'DefinitionUri' property and not both.",
            ))
        }
        (Some(definition), None) => {
            let mut definition = definition.clone();
            let mut generated = Map::new();
            substitute_dynamic_values(&mut definition, &mut generated);
            if !generated.is_empty() {
                substitutions.get_or_insert_with(Map::new).extend(generated);
            }
            let lines: Vec<Value> = super::hash::python_json_indented(&definition)
                .split('\n')
                .map(|l| json!(l))
                .collect();
            machine.set("DefinitionString", Some(json!({"Fn::Join": ["\n", lines]})));
        }
        (None, Some(uri)) => machine.set("DefinitionS3Location", Some(definition_s3_location(id, uri)?)),
        (None, None) => {
            return Err(res_err(
                id,
                "Either 'Definition' or 'DefinitionUri' property must be specified.",
            ))
        }
    }
    machine.set("DefinitionSubstitutions", substitutions.map(Value::Object));

    let role = props.get("Role").filter(|v| truthy(v));
    if role.is_some() && props.truthy("Policies") {
        return Err(res_err(
            id,
            "Specify either 'Role' or 'Policies' (but not both at the same time) or neither of them",
        ));
    }
    let tags = tag_list(&props);
    let mut resources = Vec::new();
    match role {
        Some(r) => machine.set("RoleArn", Some(r.clone())),
        None => {
            let execution_role = execution_role(ctx, id, &props, &passthrough, tags.clone())?;
            machine.set(
                "RoleArn",
                Some(json!({"Fn::GetAtt": [execution_role.logical_id, "Arn"]})),
            );
            resources.push(execution_role);
        }
    }
    for (name, prop) in [
        ("StateMachineName", "Name"),
        ("StateMachineType", "Type"),
        ("LoggingConfiguration", "Logging"),
        ("TracingConfiguration", "Tracing"),
    ] {
        machine.set(name, props.cloned(prop));
    }
    machine.set("Tags", Some(Value::Array(tags)));

    let alias = traffic_shifting(id, &props, &passthrough, &mut resources)?;
    // the resource events start: the alias with `UseAliasAsEventTarget`, else the state machine
    let target = match (&alias, props.truthy("UseAliasAsEventTarget")) {
        (Some(alias), true) => alias.clone(),
        _ => id.to_string(),
    };
    let boundary = props.cloned("PermissionsBoundary").filter(truthy);
    for linked in &events {
        let lid = format!("{id}{}", linked.id);
        let event = Event {
            event_id: &linked.id,
            lid: &lid,
            ep: &linked.properties,
            target: &target,
            passthrough: &passthrough,
            permissions_boundary: boundary.as_ref(),
        };
        resources.extend(event.generate(ctx, id, linked.event_type)?);
    }
    resources.insert(0, machine);

    if props.truthy("PropagateTags") {
        if let Some(Value::Object(tags)) = props.get("Tags").filter(|t| truthy(t)) {
            for r in resources.iter_mut() {
                if TAGGABLE.contains(&r.resource_type.as_str()) {
                    r.set("Tags", Some(Value::Array(function::plain_tag_list(tags))));
                }
            }
        }
    }
    Ok(resources)
}

/// An event as `resources_to_link` read it.
struct LinkedEvent {
    id: String,
    event_type: &'static str,
    properties: Map<String, Value>,
}

/// `resources_to_link`: each event's type must be one of a state machine's, and its properties
/// those of its model. The events, in the template's order.
fn link_events(id: &str, props: &Props<'_>) -> Result<Vec<LinkedEvent>, Failure> {
    let Some(Value::Object(events)) = props.get("Events") else {
        return Ok(Vec::new());
    };
    let mut out = Vec::new();
    for (event_id, event) in events {
        let t = events::resolve_type(id, event_id, event, EVENT_TYPES)?;
        let ep = event
            .get("Properties")
            .and_then(Value::as_object)
            .cloned()
            .unwrap_or_default();
        let (model, required) = event_model(t);
        super::validate::properties(&format!("{id}{event_id}"), t, &ep, model, required)?;
        out.push(LinkedEvent {
            id: event_id.clone(),
            event_type: t,
            properties: ep,
        });
    }
    Ok(out)
}

/// `stateMachine:createdBy: SAM`, then the state machine's tags.
fn tag_list(props: &Props<'_>) -> Vec<Value> {
    let mut tags = vec![json!({"Key": "stateMachine:createdBy", "Value": "SAM"})];
    if let Some(Value::Object(m)) = props.get("Tags") {
        tags.extend(function::plain_tag_list(m));
    }
    tags
}

/// The role Step Functions takes: the `Policies` (and X-Ray's managed policy when tracing is
/// enabled), no others.
fn execution_role(
    ctx: &Context<'_>,
    id: &str,
    props: &Props<'_>,
    passthrough: &Map<String, Value>,
    tags: Vec<Value>,
) -> Result<CfnResource, Failure> {
    let mut policies = function::policies_list(props);
    if props.get("Tracing").and_then(|t| t.get("Enabled")) == Some(&Value::Bool(true)) {
        let xray = if ctx.opts.partition == "aws" {
            "AWSXrayWriteOnlyAccess"
        } else {
            "AWSXRayDaemonWriteAccess"
        };
        policies.push(json!(xray));
    }
    RoleSpec {
        assume_role_policy: events::assume_role_policy("states.amazonaws.com"),
        managed_policy_arns: Vec::new(),
        policy_documents: Vec::new(),
        policies,
        role_path: props.cloned("RolePath"),
        permissions_boundary: props.cloned("PermissionsBoundary"),
        tags,
    }
    .construct(ctx, id, passthrough)
}

/// `DefinitionUri` as `DefinitionS3Location`: a `{Bucket, Key, Version}` mapping or an
/// `s3://bucket/key?versionId=..` URI.
fn definition_s3_location(id: &str, uri: &Value) -> Result<Value, Failure> {
    let (bucket, key, version) = match uri {
        Value::Object(m) => {
            let (Some(bucket), Some(key)) = (
                m.get("Bucket").filter(|v| truthy(v)),
                m.get("Key").filter(|v| truthy(v)),
            ) else {
                return Err(res_err(
                    id,
                    "'DefinitionUri' requires Bucket and Key properties to be specified.",
                ));
            };
            (bucket.clone(), key.clone(), m.get("Version").cloned())
        }
        other => match other.as_str().and_then(function::parse_s3_uri) {
            Some((bucket, key, version)) => (json!(bucket), json!(key), version.map(Value::String)),
            None => {
                return Err(res_err(
                    id,
                    "'DefinitionUri' is not a valid S3 Uri of the form 's3://bucket/key' with optional versionId query parameter.",
                ))
            }
        },
    };
    let mut location = Map::new();
    location.insert("Bucket".into(), bucket);
    location.insert("Key".into(), key);
    if let Some(v) = version {
        location.insert("Version".into(), v);
    }
    Ok(Value::Object(location))
}

/// A CloudFormation dynamic reference, `{{resolve:service:key}}`.
fn is_dynamic_reference(v: &Value) -> bool {
    let Some(s) = v.as_str() else { return false };
    // Python's `$` also matches before a final newline
    let s = s.strip_suffix('\n').unwrap_or(s);
    let Some(inner) = s.strip_prefix("{{resolve:").and_then(|r| r.strip_suffix("}}")) else {
        return false;
    };
    let Some((service, key)) = inner.split_once(':') else {
        return false;
    };
    !service.is_empty()
        && service.chars().all(|c| c.is_ascii_lowercase() || c == '-')
        && !key.is_empty()
        && !key.contains('\n')
}

/// Replaces every intrinsic function and dynamic reference of the definition (in the order of
/// sorted keys, depth first) with `${definition_substitution_N}`, and records what it stood for.
fn substitute_dynamic_values(v: &mut Value, substitutions: &mut Map<String, Value>) {
    let mut children: Vec<&mut Value> = match v {
        Value::Object(m) => {
            let mut entries: Vec<(&String, &mut Value)> = m.iter_mut().collect();
            entries.sort_by(|a, b| a.0.cmp(b.0));
            entries.into_iter().map(|(_, v)| v).collect()
        }
        Value::Array(a) => a.iter_mut().collect(),
        _ => return,
    };
    for child in children.iter_mut() {
        if is_intrinsic(child) || is_dynamic_reference(child) {
            let n = substitutions.len() + 1;
            let value = std::mem::replace(*child, json!(format!("${{definition_substitution_{n}}}")));
            substitutions.insert(format!("definition_substitution_{n}"), value);
        } else {
            substitute_dynamic_values(child, substitutions);
        }
    }
}

/// `AutoPublishAlias` (and `DeploymentPreference`, which needs it): a version that follows the
/// state machine's revisions and an alias on it. Returns the alias' id.
fn traffic_shifting(
    id: &str,
    props: &Props<'_>,
    passthrough: &Map<String, Value>,
    resources: &mut Vec<CfnResource>,
) -> Result<Option<String>, Failure> {
    let alias_name = props.get("AutoPublishAlias").filter(|v| truthy(v));
    let preference = props.get("DeploymentPreference").filter(|v| truthy(v));
    let Some(alias_name) = alias_name else {
        if props.truthy("UseAliasAsEventTarget") {
            return Err(res_err(
                id,
                "'UseAliasAsEventTarget' requires 'AutoPublishAlias' property to be specified.",
            ));
        }
        if preference.is_some() {
            return Err(res_err(
                id,
                "'DeploymentPreference' requires 'AutoPublishAlias' property to be specified.",
            ));
        }
        return Ok(None);
    };
    let mut version = CfnResource::new(format!("{id}Version"), "AWS::StepFunctions::StateMachineVersion");
    version.attributes = passthrough.clone();
    for policy in ["DeletionPolicy", "UpdateReplacePolicy"] {
        version.attributes.entry(policy).or_insert_with(|| json!("Retain"));
    }
    version.set("StateMachineArn", Some(json!({"Ref": id})));
    version.set(
        "StateMachineRevisionId",
        Some(json!({"Fn::GetAtt": [id, "StateMachineRevisionId"]})),
    );
    let shown = match alias_name {
        Value::String(s) => s.clone(),
        other => super::python_repr(other),
    };
    let mut alias = CfnResource::new(format!("{id}Alias{shown}"), "AWS::StepFunctions::StateMachineAlias");
    alias.attributes = passthrough.clone();
    alias.set("Name", Some(alias_name.clone()));
    let mut deployment = match preference {
        Some(Value::Object(p)) => p.clone(),
        _ => {
            let mut m = Map::new();
            m.insert("Type".into(), json!("ALL_AT_ONCE"));
            m
        }
    };
    deployment.insert("StateMachineVersionArn".into(), json!({"Ref": version.logical_id}));
    alias.set("DeploymentPreference", Some(Value::Object(deployment)));
    let alias_id = alias.logical_id.clone();
    resources.push(version);
    resources.push(alias);
    Ok(Some(alias_id))
}

/// One event of a state machine.
struct Event<'a> {
    event_id: &'a str,
    /// The event's resources' logical id (the state machine's id and the event's).
    lid: &'a str,
    ep: &'a Map<String, Value>,
    /// What the event starts: the state machine or its alias.
    target: &'a str,
    passthrough: &'a Map<String, Value>,
    permissions_boundary: Option<&'a Value>,
}

impl Event<'_> {
    fn generate(&self, ctx: &mut Context<'_>, machine_id: &str, event_type: &str) -> Result<Vec<CfnResource>, Failure> {
        let arn = json!({"Ref": self.target});
        match event_type {
            "ScheduleV2" => events::schedule_v2(
                Owner::StateMachine,
                self.lid,
                self.ep,
                self.passthrough,
                arn,
                ScheduleTarget::StateMachine,
            ),
            "Api" => {
                let role = self.role("apigateway.amazonaws.com");
                let role_arn = json!({"Fn::GetAtt": [role.logical_id, "Arn"]});
                let integration = super::rest_api::StateMachineIntegration {
                    machine_id,
                    event_id: self.event_id,
                    target_id: self.target,
                    credentials: role_arn,
                    condition: self.passthrough.get("Condition").cloned(),
                };
                integration.add(ctx, self.ep)?;
                Ok(vec![role])
            }
            rule_type => {
                let is_schedule = rule_type == "Schedule";
                let rule = RuleEvent {
                    owner: Owner::StateMachine,
                    event_id: self.event_id,
                    lid: self.lid,
                    is_schedule,
                    ep: self.ep,
                    passthrough: self.passthrough,
                };
                let given_role = self.ep.get("RoleArn").filter(|v| is_schedule && !v.is_null());
                let (role_arn, role) = match given_role {
                    Some(r) => (r.clone(), None),
                    None => {
                        let role = self.role("events.amazonaws.com");
                        (json!({"Fn::GetAtt": [role.logical_id, "Arn"]}), Some(role))
                    }
                };
                let mut out = rule.generate(arn, "StepFunctionsTarget", Some(role_arn))?;
                out.extend(role);
                Ok(out)
            }
        }
    }

    /// The role `principal` takes to start the state machine.
    fn role(&self, principal: &str) -> CfnResource {
        let role_id = format!("{}Role", self.lid);
        let mut role = CfnResource::new(role_id.clone(), "AWS::IAM::Role");
        role.attributes = self.passthrough.clone();
        role.set("AssumeRolePolicyDocument", Some(events::assume_role_policy(principal)));
        role.set(
            "Policies",
            Some(json!([{
                "PolicyName": format!("{role_id}StartExecutionPolicy"),
                "PolicyDocument": {"Statement": [{
                    "Action": "states:StartExecution",
                    "Effect": "Allow",
                    "Resource": {"Ref": self.target},
                }]},
            }])),
        );
        role.set("PermissionsBoundary", self.permissions_boundary.cloned());
        role
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn intrinsics_of_the_definition_become_substitutions_in_key_order() {
        let mut def = json!({
            "States": {
                "B": {"Resource": {"Fn::GetAtt": ["F", "Arn"]}},
                "A": {"Resource": {"Ref": "T"}, "Parameters": ["{{resolve:ssm:name}}", "plain"]},
            }
        });
        let mut subs = Map::new();
        substitute_dynamic_values(&mut def, &mut subs);
        assert_eq!(
            def["States"]["A"]["Parameters"][0],
            json!("${definition_substitution_1}")
        );
        assert_eq!(def["States"]["A"]["Resource"], json!("${definition_substitution_2}"));
        assert_eq!(def["States"]["B"]["Resource"], json!("${definition_substitution_3}"));
        assert_eq!(subs["definition_substitution_2"], json!({"Ref": "T"}));
        assert_eq!(def["States"]["A"]["Parameters"][1], json!("plain"));
    }

    #[test]
    fn dynamic_references_follow_cloudformations_pattern() {
        assert!(is_dynamic_reference(&json!(
            "{{resolve:secretsmanager:s:SecretString:k}}"
        )));
        assert!(!is_dynamic_reference(&json!("{{resolve:SSM:x}}")));
        assert!(!is_dynamic_reference(&json!("{{resolve:ssm:}}")));
        assert!(!is_dynamic_reference(&json!("prefix {{resolve:ssm:x}}")));
    }

    #[test]
    fn definition_uri_needs_a_bucket_and_a_key() {
        assert_eq!(
            definition_s3_location("M", &json!("s3://b/k.json?versionId=3")).ok(),
            Some(json!({"Bucket": "b", "Key": "k.json", "Version": "3"}))
        );
        assert!(definition_s3_location("M", &json!({"Bucket": "b"})).is_err());
        assert!(definition_s3_location("M", &json!("./local.json")).is_err());
    }
}
