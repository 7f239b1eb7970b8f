//! `AWS::Serverless::Function`: the Lambda function, its execution role, the auto-published
//! version and alias, the deployment preference and the event sources, in the order
//! aws-sam-translator builds (and validates) them.

use serde_json::{json, Map, Value};

use super::intrinsics::{is_intrinsic, is_intrinsic_if, is_no_value, logical_id_from_intrinsic, validate_if_items};
use super::managed_policies::MANAGED_POLICY_PATHS;
use super::{hash, res_err, template_err, truthy, CfnResource, Context, Failure};

/// The names of SAM's policy templates (policy_templates.json of aws-sam-translator 1.115.0),
/// for telling a template from another policy before the file is read.
const POLICY_TEMPLATE_NAMES: &[&str] = &[
    "AMIDescribePolicy",
    "AWSSecretsManagerGetSecretValuePolicy",
    "AWSSecretsManagerRotationPolicy",
    "AcmGetCertificatePolicy",
    "AthenaQueryPolicy",
    "CloudFormationDescribeStacksPolicy",
    "CloudWatchDashboardPolicy",
    "CloudWatchDescribeAlarmHistoryPolicy",
    "CloudWatchPutMetricPolicy",
    "CodeCommitCrudPolicy",
    "CodeCommitReadPolicy",
    "CodePipelineLambdaExecutionPolicy",
    "CodePipelineReadOnlyPolicy",
    "ComprehendBasicAccessPolicy",
    "CostExplorerReadOnlyPolicy",
    "DynamoDBBackupFullAccessPolicy",
    "DynamoDBCrudPolicy",
    "DynamoDBReadPolicy",
    "DynamoDBReconfigurePolicy",
    "DynamoDBRestoreFromBackupPolicy",
    "DynamoDBStreamReadPolicy",
    "DynamoDBWritePolicy",
    "EC2CopyImagePolicy",
    "EC2DescribePolicy",
    "EFSWriteAccessPolicy",
    "EKSDescribePolicy",
    "EcsRunTaskPolicy",
    "ElasticMapReduceAddJobFlowStepsPolicy",
    "ElasticMapReduceCancelStepsPolicy",
    "ElasticMapReduceModifyInstanceFleetPolicy",
    "ElasticMapReduceModifyInstanceGroupsPolicy",
    "ElasticMapReduceSetTerminationProtectionPolicy",
    "ElasticMapReduceTerminateJobFlowsPolicy",
    "ElasticsearchHttpPostPolicy",
    "EventBridgePutEventsPolicy",
    "FilterLogEventsPolicy",
    "FirehoseCrudPolicy",
    "FirehoseWritePolicy",
    "KMSDecryptPolicy",
    "KMSEncryptPolicy",
    "KMSEncryptPolicy_v2",
    "KinesisCrudPolicy",
    "KinesisStreamReadPolicy",
    "LambdaInvokePolicy",
    "MobileAnalyticsWriteOnlyAccessPolicy",
    "OrganizationsListAccountsPolicy",
    "PinpointEndpointAccessPolicy",
    "PollyFullAccessPolicy",
    "RekognitionDetectOnlyPolicy",
    "RekognitionFacesManagementPolicy",
    "RekognitionFacesPolicy",
    "RekognitionLabelsPolicy",
    "RekognitionNoDataAccessPolicy",
    "RekognitionReadPolicy",
    "RekognitionWriteOnlyAccessPolicy",
    "Route53ChangeResourceRecordSetsPolicy",
    "S3CrudPolicy",
    "S3FullAccessPolicy",
    "S3ReadPolicy",
    "S3WritePolicy",
    "SESBulkTemplatedCrudPolicy",
    "SESBulkTemplatedCrudPolicy_v2",
    "SESCrudPolicy",
    "SESEmailTemplateCrudPolicy",
    "SESSendBouncePolicy",
    "SNSCrudPolicy",
    "SNSPublishMessagePolicy",
    "SQSPollerPolicy",
    "SQSSendMessagePolicy",
    "SSMParameterReadPolicy",
    "SSMParameterWithSlashPrefixReadPolicy",
    "SageMakerCreateEndpointConfigPolicy",
    "SageMakerCreateEndpointPolicy",
    "ServerlessRepoReadWriteAccessPolicy",
    "StepFunctionsCallbackPolicy",
    "StepFunctionsExecutionPolicy",
    "StepFunctionsExecutionPolicy_v2",
    "TextractDetectAnalyzePolicy",
    "TextractGetResultPolicy",
    "TextractPolicy",
    "VPCAccessPolicy",
];

/// The resource attributes SAM keeps on a transformed resource, and the ones it passes on to
/// every generated child.
const SUPPORTED_ATTRIBUTES: &[&str] = &[
    "DeletionPolicy",
    "UpdatePolicy",
    "Condition",
    "UpdateReplacePolicy",
    "Metadata",
];
const PASSTHROUGH_ATTRIBUTES: &[&str] = &["Condition", "DeletionPolicy", "UpdateReplacePolicy"];

pub(crate) fn resource_attributes(resource: &Value) -> Map<String, Value> {
    let mut m = Map::new();
    for a in SUPPORTED_ATTRIBUTES {
        if let Some(v) = resource.get(*a) {
            m.insert(a.to_string(), v.clone());
        }
    }
    m
}

pub(crate) fn passthrough_attributes(resource: &Value) -> Map<String, Value> {
    let mut m = Map::new();
    for a in PASSTHROUGH_ATTRIBUTES {
        if let Some(v) = resource.get(*a) {
            m.insert(a.to_string(), v.clone());
        }
    }
    m
}

/// The properties of a serverless resource; a property set to null is absent (as in SAM).
pub(crate) struct Props<'a>(pub &'a Map<String, Value>);

impl<'a> Props<'a> {
    pub(crate) fn get(&self, name: &str) -> Option<&'a Value> {
        self.0.get(name).filter(|v| !v.is_null())
    }
    pub(crate) fn truthy(&self, name: &str) -> bool {
        self.get(name).map(truthy).unwrap_or(false)
    }
    pub(crate) fn cloned(&self, name: &str) -> Option<Value> {
        self.get(name).cloned()
    }
}

/// The CloudFormation tag list SAM builds: `lambda:createdBy: SAM` first, then the user's tags.
pub(crate) fn tag_list(logical_id: &str, tags: Option<&Value>, with_sam_tag: bool) -> Result<Vec<Value>, Failure> {
    let empty = Map::new();
    let tags = match tags {
        Some(Value::Object(m)) => m,
        _ => &empty,
    };
    for reserved in [
        "lambda:createdBy",
        "serverlessrepo:applicationId",
        "serverlessrepo:semanticVersion",
    ] {
        if tags.contains_key(reserved) {
            return Err(res_err(
                logical_id,
                format!(
                    "{reserved} is a reserved Tag key name and cannot be set on your resource. Please change the tag key in the input."
                ),
            ));
        }
    }
    let mut out = Vec::new();
    if with_sam_tag {
        out.push(json!({"Key": "lambda:createdBy", "Value": "SAM"}));
    }
    out.extend(plain_tag_list(tags));
    Ok(out)
}

pub(crate) fn plain_tag_list(tags: &Map<String, Value>) -> Vec<Value> {
    tags.iter()
        .map(|(k, v)| json!({"Key": k, "Value": if v.is_null() { json!("") } else { v.clone() }}))
        .collect()
}

pub(crate) fn translate(ctx: &mut Context<'_>, id: &str, resource: &Value) -> Result<Vec<CfnResource>, Failure> {
    let empty = Map::new();
    let props_map = resource.get("Properties").and_then(Value::as_object).unwrap_or(&empty);
    let props = Props(props_map);
    let attributes = resource_attributes(resource);
    let passthrough = passthrough_attributes(resource);

    // from_dict: the policy-templates plugin runs on each function before anything else: its
    // policy templates become the statements they stand for.
    let expanded_map;
    let props = match expand_policy_templates(id, &props)? {
        Some(m) => {
            expanded_map = m;
            Props(&expanded_map)
        }
        None => props,
    };
    super::validate::properties(
        id,
        "AWS::Serverless::Function",
        props_map,
        super::validate::FUNCTION,
        &[],
    )?;
    // resources_to_link: each event is parsed.
    super::events::link(ctx, id, &props)?;

    // to_cloudformation
    super::validate::function_rules(id, props_map)?;
    if let Some(dlq) = props.get("DeadLetterQueue").filter(|v| truthy(v)) {
        validate_dlq(id, dlq)?;
    }
    validate_tenancy(id, &props)?;
    for unsupported in ["CapacityProviderConfig", "FunctionScalingConfig"] {
        if props.truthy(unsupported) {
            return Err(unsupported_property(id, unsupported));
        }
    }

    let mut function = construct_function(ctx, id, resource, &props, &attributes)?;
    let mut resources: Vec<CfnResource> = Vec::new();

    if props.truthy("ProvisionedConcurrencyConfig") && !props.truthy("AutoPublishAlias") {
        return Err(res_err(
            id,
            "To set ProvisionedConcurrencyConfig AutoPublishALias must be defined on the function",
        ));
    }

    let mut alias: Option<CfnResource> = None;
    let mut version: Option<CfnResource> = None;
    if let Some(alias_value) = props.get("AutoPublishAlias").filter(|v| truthy(v)) {
        let alias_name = match ctx.resolve_params(alias_value)? {
            Value::String(s) => s,
            _ => {
                return Err(res_err(
                    id,
                    "'AutoPublishAlias' must be a string or a Ref to a template parameter",
                ))
            }
        };
        let mut code_sha256: Option<String> = None;
        if let Some(sha) = props.get("AutoPublishCodeSha256").filter(|v| truthy(v)) {
            let Value::String(sha) = ctx.resolve_params(sha)? else {
                return Err(res_err(id, "AutoPublishCodeSha256 must be a string"));
            };
            let description = match props.get("Description") {
                Some(d) => ctx.resolve_params(d)?,
                None => Value::Null,
            };
            let new_description = if !truthy(&description) {
                Value::String(sha.clone())
            } else if let Value::String(d) = &description {
                Value::String(format!("{d} {sha}"))
            } else {
                json!({"Fn::Join": [" ", [description, sha]]})
            };
            function.set("Description", Some(new_description));
            code_sha256 = Some(sha);
        }
        let v = construct_version(ctx, id, resource, &props, &mut function, code_sha256.as_deref())?;
        alias = Some(construct_alias(id, &alias_name, &props, &passthrough, &v)?);
        version = Some(v);
    }

    let mut url_resources = Vec::new();
    if let Some(cfg) = props.get("FunctionUrlConfig").filter(|v| truthy(v)) {
        url_resources = function_url(id, cfg, alias.as_ref().map(|a| a.logical_id.as_str()), &passthrough)?;
    }

    if let Some(dp) = props.get("DeploymentPreference").filter(|v| truthy(v)) {
        super::deployment::validate_and_add(ctx, id, dp, &props, &passthrough, alias.as_mut())?;
    }

    let mut invoke_resources = Vec::new();
    let mut invoke_policies = Vec::new();
    if let Some(eic) = props.get("EventInvokeConfig").filter(|v| truthy(v)) {
        let alias_name = alias.as_ref().and_then(|a| a.properties.get("Name").cloned());
        let alias_id = alias.as_ref().map(|a| a.logical_id.clone());
        (invoke_resources, invoke_policies) =
            event_invoke_config(ctx, id, eic, alias_id.as_deref(), alias_name, &attributes, &passthrough)?;
    }

    let mut role = construct_role(ctx, id, &props, &passthrough, &invoke_policies)?;
    let mut role_generated = false;
    match function.properties.get("Role").cloned() {
        None => {
            function.set("Role", Some(json!({"Fn::GetAtt": [role.logical_id, "Arn"]})));
            role_generated = true;
        }
        Some(r) if is_intrinsic_if(&r) => {
            let arn = json!({"Fn::GetAtt": [role.logical_id, "Arn"]});
            let resolved = ctx.resolve_params(&r)?;
            let items = resolved.get("Fn::If").cloned().unwrap_or(Value::Null);
            if let Err(e) = validate_if_items(&items) {
                return Err(res_err(id, format!("Malformed 'Role' property: {e}.")));
            }
            let cond = items[0].clone();
            let (then_v, else_v) = (&items[1], &items[2]);
            let mut value = None;
            if is_no_value(then_v) && is_no_value(else_v) {
                value = Some(arn);
            } else if is_no_value(then_v) {
                value = Some(json!({"Fn::If": [cond, arn, else_v]}));
                role.attributes.insert("Condition".into(), cond.clone());
            } else if is_no_value(else_v) {
                value = Some(json!({"Fn::If": [cond, then_v, arn]}));
                let c = cond.as_str().unwrap_or("").to_string();
                role.attributes
                    .insert("Condition".into(), Value::String(format!("NOT{c}")));
                if let Some(conds) = ctx.conditions.as_mut() {
                    conds.insert(format!("NOT{c}"), json!({"Fn::Not": [{"Condition": c}]}));
                }
            }
            if let Some(v) = value {
                function.set("Role", Some(v));
                role_generated = true;
            }
        }
        Some(_) => {}
    }

    resources.push(function);
    if let Some(v) = version {
        resources.push(v);
    }
    if let Some(a) = alias {
        resources.push(a);
    }
    if role_generated {
        resources.push(role);
    }
    resources.extend(url_resources);
    resources.extend(invoke_resources);

    let target = resources
        .iter()
        .find(|r| r.resource_type == "AWS::Lambda::Alias")
        .map(|a| (a.logical_id.clone(), true))
        .unwrap_or_else(|| (id.to_string(), false));
    let role_id = role_generated.then(|| format!("{id}Role"));
    let event_resources = super::events::generate(
        ctx,
        id,
        &props,
        &passthrough,
        &target,
        &mut resources,
        role_id.as_deref(),
    )?;
    resources.extend(event_resources);

    // PropagateTags: every generated resource that has Tags gets the function's tags (only).
    if props.truthy("PropagateTags") {
        if let Some(Value::Object(tags)) = props.get("Tags").filter(|t| truthy(t)) {
            for r in resources.iter_mut() {
                if TAGGABLE.contains(&r.resource_type.as_str()) {
                    r.set("Tags", Some(Value::Array(plain_tag_list(tags))));
                }
            }
        }
    }
    Ok(resources)
}

/// Generated types whose SAM model has a `Tags` property.
const TAGGABLE: &[&str] = &[
    "AWS::Lambda::Function",
    "AWS::IAM::Role",
    "AWS::SQS::Queue",
    "AWS::SNS::Topic",
    "AWS::Scheduler::Schedule",
    "AWS::CodeDeploy::DeploymentGroup",
    "AWS::S3::Bucket",
    "AWS::IoT::TopicRule",
];

fn unsupported_property(id: &str, name: &str) -> Failure {
    res_err(
        id,
        format!("Property '{name}' of AWS::Serverless::Function is not supported by Meridian's local regions yet."),
    )
}

/// `FunctionUrlConfig`: the function URL (of the alias when there is one), and with `AuthType:
/// NONE` the two permissions that open it to everyone.
fn function_url(
    id: &str,
    cfg: &Value,
    alias_id: Option<&str>,
    passthrough: &Map<String, Value>,
) -> Result<Vec<CfnResource>, Failure> {
    let intrinsic = is_intrinsic(cfg);
    let auth = cfg.get("AuthType");
    if !intrinsic && !auth.is_some_and(is_intrinsic) {
        match auth.and_then(Value::as_str) {
            Some("AWS_IAM" | "NONE") => {}
            _ => {
                return Err(res_err(
                    id,
                    "AuthType is required to configure function property `FunctionUrlConfig`. Please provide either AWS_IAM or NONE.",
                ))
            }
        }
    }
    let cors = cfg.get("Cors").filter(|c| truthy(c));
    if let Some(c) = cors.filter(|c| !intrinsic && !is_intrinsic(c)) {
        let Some(c) = c.as_object() else {
            return Err(res_err(id, "Property 'FunctionUrlConfig.Cors' should be a map."));
        };
        for (name, v) in c {
            let (ok, ty) = match name.as_str() {
                "AllowOrigins" | "AllowMethods" | "AllowHeaders" | "ExposeHeaders" => (v.is_array(), "list"),
                "AllowCredentials" => (v.is_boolean(), "bool"),
                "MaxAge" => (v.is_i64() || v.is_u64() || v.is_boolean(), "int"),
                _ => {
                    return Err(res_err(
                        id,
                        format!("{name} is not a valid property for configuring Cors."),
                    ))
                }
            };
            if !ok && !is_intrinsic(v) {
                return Err(res_err(id, format!("{name} must be of type {ty}.")));
            }
        }
    }
    let target = match alias_id {
        Some(a) => json!({"Ref": a}),
        None => json!({"Ref": id}),
    };
    let mut url = CfnResource::new(format!("{id}Url"), "AWS::Lambda::Url");
    url.attributes = passthrough.clone();
    if let Some(c) = cors {
        url.set("Cors", Some(c.clone()));
    }
    url.set("AuthType", cfg.get("AuthType").cloned());
    url.set("TargetFunctionArn", Some(target.clone()));
    url.set("InvokeMode", cfg.get("InvokeMode").cloned());
    let mut out = vec![url];
    if !intrinsic && auth.and_then(Value::as_str) == Some("NONE") {
        let mut public = CfnResource::new(format!("{id}UrlPublicPermissions"), "AWS::Lambda::Permission");
        public.attributes = passthrough.clone();
        public.set("Action", Some(json!("lambda:InvokeFunctionUrl")));
        public.set("FunctionName", Some(target.clone()));
        public.set("Principal", Some(json!("*")));
        public.set("FunctionUrlAuthType", Some(json!("NONE")));
        let mut invoke = CfnResource::new(format!("{id}URLInvokeAllowPublicAccess"), "AWS::Lambda::Permission");
        invoke.attributes = passthrough.clone();
        invoke.set("Action", Some(json!("lambda:InvokeFunction")));
        invoke.set("Principal", Some(json!("*")));
        invoke.set("FunctionName", Some(target));
        invoke.set("InvokedViaFunctionUrl", Some(json!(true)));
        out.push(public);
        out.push(invoke);
    }
    Ok(out)
}

/// `EventInvokeConfig`: the `AWS::Lambda::EventInvokeConfig`, the queue or topic SAM makes for a
/// destination given only by `Type`, and the role policies that let the function send there.
fn event_invoke_config(
    ctx: &mut Context<'_>,
    id: &str,
    eic: &Value,
    alias_id: Option<&str>,
    alias_name: Option<Value>,
    attributes: &Map<String, Value>,
    passthrough: &Map<String, Value>,
) -> Result<(Vec<CfnResource>, Vec<Value>), Failure> {
    let resolved = ctx.resolve_params(eic)?;
    let logical_id = format!("{id}EventInvokeConfig");
    let mut config = CfnResource::new(logical_id.clone(), "AWS::Lambda::EventInvokeConfig");
    if let Some(a) = alias_id {
        config.depends_on = Some(json!([a]));
    }
    config.attributes = attributes.clone();
    let mut resources = Vec::new();
    let mut policies = Vec::new();
    let mut dest = Map::new();
    if let Some(input) = resolved.get("DestinationConfig").filter(|v| truthy(v)) {
        let Some(input) = input.as_object() else {
            return Err(res_err(
                id,
                "Property 'EventInvokeConfig.DestinationConfig' should be a map.",
            ));
        };
        for name in ["OnSuccess", "OnFailure"] {
            let Some(value) = input.get(name).filter(|v| !v.is_null()) else {
                continue;
            };
            let Some(value) = value.as_object() else {
                return Err(res_err(
                    id,
                    format!("Property 'EventInvokeConfig.DestinationConfig.{name}' should be a map."),
                ));
            };
            let (resource, destination, policy) = destination(ctx, id, value, name, &logical_id, passthrough)?;
            dest.insert(name.into(), json!({"Destination": destination}));
            resources.extend(resource);
            if let Some(p) = policy {
                policies.push(p);
            }
        }
    }
    config.set("FunctionName", Some(json!({"Ref": id})));
    config.set("Qualifier", Some(alias_name.unwrap_or_else(|| json!("$LATEST"))));
    config.set("DestinationConfig", Some(Value::Object(dest)));
    config.set(
        "MaximumEventAgeInSeconds",
        resolved.get("MaximumEventAgeInSeconds").cloned(),
    );
    config.set("MaximumRetryAttempts", resolved.get("MaximumRetryAttempts").cloned());
    resources.push(config);
    Ok((resources, policies))
}

/// One destination of `EventInvokeConfig` (SAM's `_validate_and_inject_resource`).
fn destination(
    ctx: &mut Context<'_>,
    id: &str,
    config: &Map<String, Value>,
    event: &str,
    logical_id: &str,
    passthrough: &Map<String, Value>,
) -> Result<(Option<CfnResource>, Value, Option<Value>), Failure> {
    const ACCEPTED: &[&str] = &["SQS", "SNS", "EventBridge", "Lambda", "S3Bucket"];
    let ty = config.get("Type").cloned().unwrap_or(Value::Null);
    let ty_str = ty.as_str().unwrap_or("");
    if !ACCEPTED.contains(&ty_str) {
        let shown = match &ty {
            Value::String(s) => s.clone(),
            other => super::python_repr(other),
        };
        return Err(res_err(
            id,
            format!("'Type: {shown}' must be one of ['SQS', 'SNS', 'EventBridge', 'Lambda', 'S3Bucket']"),
        ));
    }
    let given = config.get("Destination").filter(|v| !v.is_null()).cloned();
    let resource_id = format!("{logical_id}{event}");
    // A destination `!If [C, !Ref AWS::NoValue, ARN]`: SAM makes the queue or topic when C holds.
    let (property_condition, dest_arn) = match &given {
        Some(d) if is_intrinsic_if(d) => {
            let items = d["Fn::If"].clone();
            validate_if_items(&items)
                .map_err(|e| res_err(logical_id, format!("Malformed 'Destination' property: {e}.")))?;
            let cond = items[0].as_str().unwrap_or_default().to_string();
            if is_no_value(&items[1]) && is_no_value(&items[2]) {
                (None, None)
            } else if is_no_value(&items[1]) {
                (Some(cond), Some(items[2].clone()))
            } else if is_no_value(&items[2]) {
                let not = format!("NOT{cond}{}", hash::logical_id("", Some(&json!(logical_id)), None));
                if let Some(c) = ctx.conditions.as_mut() {
                    c.insert(not.clone(), json!({"Fn::Not": [{"Condition": cond}]}));
                }
                (Some(not), Some(items[1].clone()))
            } else {
                (None, None)
            }
        }
        _ => (None, None),
    };
    let policy_for = |arn: &Value| -> Value {
        let (suffix, statements) = match ty_str {
            "SQS" => (
                "SQSPolicy",
                json!([{"Action": "sqs:SendMessage", "Effect": "Allow", "Resource": arn}]),
            ),
            "SNS" => (
                "SNSPolicy",
                json!([{"Action": "sns:publish", "Effect": "Allow", "Resource": arn}]),
            ),
            "EventBridge" => (
                "EventBridgePolicy",
                json!([{"Action": "events:PutEvents", "Effect": "Allow", "Resource": arn}]),
            ),
            "Lambda" => (
                "LambdaPolicy",
                json!([{"Action": "lambda:InvokeFunction", "Effect": "Allow", "Resource": arn}]),
            ),
            _ => (
                "S3Policy",
                json!([
                    {"Action": "s3:PutObject", "Effect": "Allow", "Resource": {"Fn::Join": ["/", [arn, "*"]]}},
                    {"Action": "s3:ListBucket", "Effect": "Allow", "Resource": arn},
                ]),
            ),
        };
        json!({"PolicyName": format!("{resource_id}{suffix}"), "PolicyDocument": {"Statement": statements}})
    };
    let mut resource = None;
    let mut destination = given.clone().unwrap_or(Value::Null);
    let mut policy = None;
    if given.is_none() || property_condition.is_some() {
        let resource_condition = passthrough.get("Condition").and_then(Value::as_str).map(String::from);
        let combined = match (resource_condition, property_condition.clone()) {
            (None, p) => p,
            (Some(r), None) => Some(r),
            (Some(r), Some(p)) => {
                let name = format!("{r}AND{p}{}", hash::logical_id("", Some(&json!(id)), None));
                if let Some(c) = ctx.conditions.as_mut() {
                    // SAM wraps each condition twice (`make_and_condition` of `{"Condition": c}`s)
                    c.insert(
                        name.clone(),
                        json!({"Fn::And": [{"Condition": {"Condition": r}}, {"Condition": {"Condition": p}}]}),
                    );
                }
                Some(name)
            }
        };
        let (made, arn) = match ty_str {
            "SQS" => {
                let q = format!("{resource_id}Queue");
                (
                    CfnResource::new(q.clone(), "AWS::SQS::Queue"),
                    json!({"Fn::GetAtt": [q, "Arn"]}),
                )
            }
            "SNS" => {
                let t = format!("{resource_id}Topic");
                (CfnResource::new(t.clone(), "AWS::SNS::Topic"), json!({"Ref": t}))
            }
            _ => return Err(res_err(id, "Destination is required if Type is not ['SQS', 'SNS']")),
        };
        let mut made = made;
        made.attributes = passthrough.clone();
        if let Some(c) = combined {
            made.attributes.insert("Condition".into(), json!(c));
        }
        destination = match (&property_condition, &dest_arn) {
            (Some(c), Some(other)) => json!({"Fn::If": [c, arn, other]}),
            (Some(c), None) => json!({"Fn::If": [c, arn, {"Ref": "AWS::NoValue"}]}),
            _ => arn,
        };
        policy = Some(policy_for(&destination));
        resource = Some(made);
    }
    if let (Some(d), None) = (&given, &property_condition) {
        policy = Some(policy_for(d));
    }
    Ok((resource, destination, policy))
}

/// A function with `TenancyConfig` takes only Api and HttpApi events, and none of provisioned
/// concurrency, a function URL or SnapStart.
fn validate_tenancy(id: &str, props: &Props<'_>) -> Result<(), Failure> {
    if !props.truthy("TenancyConfig") {
        return Ok(());
    }
    for (name, what) in [
        ("ProvisionedConcurrencyConfig", "Provisioned concurrency"),
        ("FunctionUrlConfig", "Function URL"),
        ("SnapStart", "SnapStart"),
    ] {
        if props.truthy(name) {
            return Err(res_err(
                id,
                format!("{what} is not supported for functions enabled with tenancy configuration."),
            ));
        }
    }
    if let Some(Value::Object(events)) = props.get("Events") {
        for event in events.values() {
            let t = event.get("Type").cloned().unwrap_or(Value::Null);
            if t != "Api" && t != "HttpApi" {
                let shown = match &t {
                    Value::String(s) => s.clone(),
                    other => super::python_repr(other),
                };
                return Err(res_err(
                    id,
                    format!("Event source '{shown}' is not supported for functions enabled with tenancy configuration. Only Api and HttpApi event sources are supported."),
                ));
            }
        }
    }
    Ok(())
}

fn validate_dlq(id: &str, dlq: &Value) -> Result<(), Failure> {
    let t = dlq.get("Type").filter(|v| truthy(v));
    let arn = dlq.get("TargetArn").filter(|v| truthy(v));
    let (Some(t), Some(_)) = (t, arn) else {
        return Err(res_err(
            id,
            "'DeadLetterQueue' requires Type and TargetArn properties to be specified.",
        ));
    };
    let Some(t) = t.as_str() else {
        return Err(res_err(id, "Property 'DeadLetterQueue.Type' should be a string."));
    };
    if t != "SQS" && t != "SNS" {
        return Err(res_err(id, "'DeadLetterQueue' requires Type of ['SQS', 'SNS']"));
    }
    Ok(())
}

/// Copies `name` from the SAM properties when it is set.
const PASSTHROUGH_PROPERTIES: &[&str] = &[
    "Handler",
    "Runtime",
    "Description",
    "MemorySize",
    "Timeout",
    "VpcConfig",
    "Role",
    "Environment",
    "KmsKeyArn",
    "ReservedConcurrentExecutions",
    "Layers",
    "FileSystemConfigs",
    "ImageConfig",
    "PackageType",
    "Architectures",
    "SnapStart",
    "EphemeralStorage",
    "CodeSigningConfigArn",
    "RuntimeManagementConfig",
    "LoggingConfig",
    "TenancyConfig",
    "RecursiveLoop",
    "DurableConfig",
    "PublishToLatestPublished",
];

fn construct_function(
    ctx: &Context<'_>,
    id: &str,
    resource: &Value,
    props: &Props<'_>,
    attributes: &Map<String, Value>,
) -> Result<CfnResource, Failure> {
    let mut f = CfnResource::new(id, "AWS::Lambda::Function");
    f.depends_on = resource.get("DependsOn").cloned();
    f.attributes = attributes.clone();
    if props.truthy("FunctionName") {
        f.set("FunctionName", props.cloned("FunctionName"));
    }
    for name in PASSTHROUGH_PROPERTIES {
        f.set(name, props.cloned(name));
    }
    f.set("Code", Some(Value::Object(code_dict(id, props)?)));
    f.set("Tags", Some(Value::Array(tag_list(id, props.get("Tags"), true)?)));
    if let Some(tracing) = props.get("Tracing").filter(|v| truthy(v)) {
        if ctx.resolve_params(tracing)? != json!("Disabled") {
            f.set("TracingConfig", Some(json!({"Mode": tracing})));
        }
    }
    if let Some(dlq) = props.get("DeadLetterQueue").filter(|v| truthy(v)) {
        f.set(
            "DeadLetterConfig",
            Some(json!({"TargetArn": dlq.get("TargetArn").cloned().unwrap_or(Value::Null)})),
        );
    }
    validate_package_type(id, &f)?;
    Ok(f)
}

fn package_type(props: &Props<'_>) -> Value {
    props
        .get("PackageType")
        .filter(|v| truthy(v))
        .cloned()
        .unwrap_or_else(|| json!("Zip"))
}

fn code_dict(id: &str, props: &Props<'_>) -> Result<Map<String, Value>, Failure> {
    let pt = package_type(props);
    let is_zip = pt == json!("Zip");
    let is_image = pt == json!("Image");
    if !is_zip && !is_image {
        let shown = pt
            .as_str()
            .map(str::to_string)
            .unwrap_or_else(|| super::python_repr(&pt));
        return Err(res_err(id, format!("invalid 'PackageType' : {shown}")));
    }
    let inline = props.get("InlineCode");
    let code_uri = props.get("CodeUri");
    let image_uri = props.get("ImageUri");
    let mut code = if is_zip {
        match (inline, code_uri) {
            (Some(i), _) => {
                let mut m = Map::new();
                m.insert("ZipFile".into(), i.clone());
                m
            }
            (None, Some(uri)) => s3_location(id, uri, "CodeUri")?,
            (None, None) => return Err(res_err(id, "Only one of 'InlineCode' or 'CodeUri' can be set.")),
        }
    } else {
        match image_uri {
            None => return Err(res_err(id, "'ImageUri' must be set.")),
            Some(u) if !truthy(u) => {
                return Err(res_err(
                    id,
                    "'ImageUri' requires that a image hosted at a registry be specified.",
                ))
            }
            Some(u) => {
                let mut m = Map::new();
                m.insert("ImageUri".into(), u.clone());
                m
            }
        }
    };
    if is_zip {
        if let Some(k) = props.get("SourceKMSKeyArn").filter(|v| truthy(v)) {
            code.insert("SourceKMSKeyArn".into(), k.clone());
        }
    }
    Ok(code)
}

/// SAM's `construct_s3_location_object`: `s3://bucket/key?versionId=v` or `{Bucket, Key, Version}`.
pub(crate) fn s3_location(id: &str, uri: &Value, property: &str) -> Result<Map<String, Value>, Failure> {
    let mut code = Map::new();
    match uri {
        Value::Object(m) => {
            let ok = m.get("Bucket").map(truthy).unwrap_or(false) && m.get("Key").map(truthy).unwrap_or(false);
            if !ok {
                return Err(res_err(
                    id,
                    format!("'{property}' requires Bucket and Key properties to be specified."),
                ));
            }
            code.insert("S3Bucket".into(), m["Bucket"].clone());
            code.insert("S3Key".into(), m["Key"].clone());
            if let Some(v) = m.get("Version") {
                code.insert("S3ObjectVersion".into(), v.clone());
            }
            if let Some(v) = m.get("StorageMode") {
                code.insert("S3ObjectStorageMode".into(), v.clone());
            }
        }
        Value::String(s) => {
            if has_ssm_reference_with_slash(s) {
                return Err(res_err(
                    id,
                    format!("Unsupported dynamic reference detected in '{property}'. Please consider using alternative 'FunctionCode' object format."),
                ));
            }
            let Some((bucket, key, version)) = parse_s3_uri(s) else {
                return Err(res_err(
                    id,
                    format!("'{property}' is not a valid S3 Uri of the form 's3://bucket/key' with optional versionId query parameter."),
                ));
            };
            code.insert("S3Bucket".into(), Value::String(bucket));
            code.insert("S3Key".into(), Value::String(key));
            if let Some(v) = version {
                code.insert("S3ObjectVersion".into(), Value::String(v));
            }
        }
        _ => return Err(res_err(id, format!("'{property}' must be of type dict or string."))),
    }
    Ok(code)
}

fn has_ssm_reference_with_slash(s: &str) -> bool {
    let mut rest = s;
    while let Some(i) = rest.find("{{resolve:") {
        let after = &rest[i + "{{resolve:".len()..];
        for svc in ["ssm-secure:", "ssm:", "secretsmanager:"] {
            if let Some(body) = after.strip_prefix(svc) {
                if let Some(end) = body.find("}}") {
                    let inner = &body[..end];
                    let (name, ver) = match inner.rsplit_once(':') {
                        Some((n, v)) if !v.is_empty() && v.chars().all(|c| c.is_ascii_digit()) => (n, Some(v)),
                        _ => (inner, None),
                    };
                    let _ = ver;
                    let valid =
                        !name.is_empty() && name.chars().all(|c| c.is_ascii_alphanumeric() || "_.-/".contains(c));
                    if valid && (inner.contains('/') || svc.contains('/')) {
                        return true;
                    }
                }
            }
        }
        rest = &rest[i + 1..];
    }
    false
}

/// `urlparse`-like split of `s3://bucket/key?versionId=v#fragment`.
pub(crate) fn parse_s3_uri(s: &str) -> Option<(String, String, Option<String>)> {
    let rest = s.strip_prefix("s3://")?;
    let (rest, _fragment) = rest.split_once('#').unwrap_or((rest, ""));
    let (rest, query) = rest.split_once('?').unwrap_or((rest, ""));
    let (netloc, path) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, ""),
    };
    if netloc.is_empty() || path.is_empty() {
        return None;
    }
    // Python's urlparse refuses a bracketed host that is not an IPv6 (or IPvFuture) address.
    if netloc.contains(['[', ']']) {
        let host = netloc.rsplit_once('@').map_or(netloc, |(_, h)| h);
        let inner = host
            .strip_prefix('[')
            .and_then(|h| h.split_once(']'))
            .map(|(inner, _)| inner)?;
        if !(inner.starts_with('v') || inner.parse::<std::net::Ipv6Addr>().is_ok()) {
            return None;
        }
    }
    let mut versions = Vec::new();
    for pair in query.split(['&', ';']) {
        if let Some((k, v)) = pair.split_once('=') {
            if percent_decode(k) == "versionId" && !v.is_empty() {
                versions.push(percent_decode(v));
            }
        }
    }
    let version = (versions.len() == 1).then(|| versions.remove(0));
    Some((netloc.to_string(), path.trim_start_matches('/').to_string(), version))
}

fn percent_decode(s: &str) -> String {
    let bytes = s.replace('+', " ").into_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' && i + 2 < bytes.len() {
            if let Ok(b) = u8::from_str_radix(std::str::from_utf8(&bytes[i + 1..i + 3]).unwrap_or("zz"), 16) {
                out.push(b);
                i += 3;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn validate_package_type(id: &str, f: &CfnResource) -> Result<(), Failure> {
    let p = |n: &str| f.properties.get(n).map(truthy).unwrap_or(false);
    let pt = f
        .properties
        .get("PackageType")
        .filter(|v| truthy(v))
        .cloned()
        .unwrap_or_else(|| json!("Zip"));
    let code_image = f
        .properties
        .get("Code")
        .and_then(|c| c.get("ImageUri"))
        .map(truthy)
        .unwrap_or(false);
    if pt == json!("Zip") {
        if !(p("Runtime") && p("Handler")) {
            return Err(res_err(
                id,
                "Runtime and Handler needs to be present when PackageType is of type `Zip`",
            ));
        }
        if code_image || p("ImageConfig") {
            return Err(res_err(
                id,
                "ImageUri or ImageConfig cannot be present when PackageType is of type `Zip`",
            ));
        }
    } else if pt == json!("Image") {
        if p("Handler") || p("Runtime") || p("Layers") {
            return Err(res_err(
                id,
                "Runtime, Handler, Layers cannot be present when PackageType is of type `Image`",
            ));
        }
        if !code_image {
            return Err(res_err(
                id,
                "ImageUri needs to be present when PackageType is of type `Image`",
            ));
        }
    } else {
        return Err(res_err(id, "PackageType needs to be `Zip` or `Image`"));
    }
    Ok(())
}

fn construct_version(
    ctx: &Context<'_>,
    id: &str,
    resource: &Value,
    props: &Props<'_>,
    function: &mut CfnResource,
    code_sha256: Option<&str>,
) -> Result<CfnResource, Failure> {
    // SAM resolves parameter references in the code location in place: the function's Code
    // carries the resolved values too.
    let code = function.properties.get("Code").cloned().unwrap_or(Value::Null);
    let code = ctx.resolve_params(&code)?;
    function.set("Code", Some(code.clone()));

    let all_properties =
        ctx.opts.publish_on_config_change || props.get("AutoPublishAliasAllProperties").map(truthy).unwrap_or(false);
    let logical_dict = if all_properties {
        let mut properties = function.properties.clone();
        if let Some(Value::Array(layers)) = function.properties.get("Layers") {
            for layer in layers {
                let Some(layer_id) = logical_id_from_intrinsic(layer) else {
                    continue;
                };
                let Some(layer_resource) = ctx.resources_now.get(&layer_id) else {
                    continue;
                };
                let layer_props = layer_resource.get("Properties").cloned().unwrap_or_else(|| json!({}));
                if layer_props.get("PublishLambdaVersion").map(truthy).unwrap_or(false) {
                    properties.insert(layer_id, layer_props);
                }
            }
        }
        Value::Object(properties)
    } else {
        let mut m = match &code {
            Value::Object(c) => c.clone(),
            _ => Map::new(),
        };
        if let Some(Value::Object(e)) = function.properties.get("Environment").filter(|v| truthy(v)) {
            for (k, v) in e {
                m.insert(k.clone(), v.clone());
            }
        }
        if let Some(mem) = function.properties.get("MemorySize").filter(|v| truthy(v)) {
            m.insert("MemorySize".into(), mem.clone());
        }
        if let Some(snap) = function.properties.get("SnapStart").filter(|v| truthy(v)) {
            let apply_on = snap.get("ApplyOn").cloned().unwrap_or_else(|| json!("None"));
            if apply_on != json!("None") {
                m.insert("SnapStart".into(), snap.clone());
            }
        }
        Value::Object(m)
    };
    let logical_id = hash::logical_id(&format!("{id}Version"), Some(&logical_dict), code_sha256);

    let mut attributes = passthrough_attributes(resource);
    if !attributes.contains_key("DeletionPolicy") {
        let policy = props.cloned("VersionDeletionPolicy").unwrap_or_else(|| json!("Retain"));
        attributes.insert("DeletionPolicy".into(), policy);
    }
    let mut version = CfnResource::new(logical_id, "AWS::Lambda::Version");
    version.attributes = attributes;
    version.set("FunctionName", Some(json!({"Ref": id})));
    version.set("Description", props.cloned("VersionDescription"));
    Ok(version)
}

fn alias_name_is_valid(name: &str) -> bool {
    !name.is_empty()
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        && !name.chars().all(|c| c.is_ascii_digit())
}

fn construct_alias(
    id: &str,
    name: &str,
    props: &Props<'_>,
    passthrough: &Map<String, Value>,
    version: &CfnResource,
) -> Result<CfnResource, Failure> {
    if name.is_empty() {
        return Err(res_err(id, "Alias name is required to create an alias"));
    }
    if !alias_name_is_valid(name) {
        return Err(res_err(
            id,
            format!("AutoPublishAlias name ('{name}') must contain only alphanumeric characters, hyphens, or underscores matching (?!^[0-9]+$)([a-zA-Z0-9-_]+) pattern."),
        ));
    }
    let suffix = name.replace('-', "D").replace('_', "U");
    let mut alias = CfnResource::new(format!("{id}Alias{suffix}"), "AWS::Lambda::Alias");
    alias.attributes = passthrough.clone();
    alias.set("Name", Some(json!(name)));
    alias.set("FunctionName", Some(json!({"Ref": id})));
    alias.set(
        "FunctionVersion",
        Some(json!({"Fn::GetAtt": [version.logical_id, "Version"]})),
    );
    if props.truthy("ProvisionedConcurrencyConfig") {
        alias.set(
            "ProvisionedConcurrencyConfig",
            props.cloned("ProvisionedConcurrencyConfig"),
        );
    }
    Ok(alias)
}

#[derive(Debug, PartialEq)]
enum PolicyKind {
    Managed,
    Statement,
    Template,
    Unknown,
}

pub(crate) fn policies_list(props: &Props<'_>) -> Vec<Value> {
    match props.get("Policies") {
        Some(p) if truthy(p) => match p {
            Value::Array(a) => a.clone(),
            other => vec![other.clone()],
        },
        _ => Vec::new(),
    }
}

fn policy_kind(p: &Value) -> Result<PolicyKind, Failure> {
    if p.is_string() {
        return Ok(PolicyKind::Managed);
    }
    if is_intrinsic_if(p) {
        let items = &p["Fn::If"];
        validate_if_items(items).map_err(template_err)?;
        let (a, b) = (&items[1], &items[2]);
        let (ka, kb) = (policy_kind(a)?, policy_kind(b)?);
        if ka == kb {
            return Ok(ka);
        }
        if is_no_value(a) {
            return Ok(kb);
        }
        if is_no_value(b) {
            return Ok(ka);
        }
        return Err(template_err(
            "Different policy types within the same Fn::If statement is unsupported. Separate different policy types into different Fn::If statements",
        ));
    }
    if is_intrinsic(p) {
        return Ok(PolicyKind::Managed);
    }
    if let Value::Object(m) = p {
        if m.contains_key("Statement") {
            return Ok(PolicyKind::Statement);
        }
        if m.len() == 1 && POLICY_TEMPLATE_NAMES.contains(&m.keys().next().map(String::as_str).unwrap_or("")) {
            return Ok(PolicyKind::Template);
        }
    }
    Ok(PolicyKind::Unknown)
}

/// SAM's policy templates (policy_templates.json of aws-sam-translator 1.115.0, Apache-2.0,
/// beside this file with its licence).
fn policy_templates() -> &'static Map<String, Value> {
    static TEMPLATES: std::sync::OnceLock<Map<String, Value>> = std::sync::OnceLock::new();
    TEMPLATES.get_or_init(|| {
        serde_json::from_str::<Value>(include_str!("policy_templates.json"))
            .ok()
            .and_then(|v| v.get("Templates").and_then(Value::as_object).cloned())
            .unwrap_or_default()
    })
}

/// The policy-templates plugin: each policy template of `Policies` (in an `Fn::If` too) becomes
/// the statement it stands for, its parameters' values put in place of their `Ref`s, as
/// aws-sam-translator converts them. `None` when the function names no template.
pub(crate) fn expand_policy_templates(id: &str, props: &Props<'_>) -> Result<Option<Map<String, Value>>, Failure> {
    let list = policies_list(props);
    let mut any = false;
    for p in &list {
        if policy_kind(p)? == PolicyKind::Template {
            any = true;
        }
    }
    if !any {
        return Ok(None);
    }
    let mut out = Vec::new();
    for p in list {
        if policy_kind(&p)? != PolicyKind::Template {
            out.push(p);
        } else if is_intrinsic_if(&p) {
            let items = &p["Fn::If"];
            let branch = |b: &Value| -> Result<Value, Failure> {
                if is_no_value(b) {
                    Ok(b.clone())
                } else {
                    convert_policy_template(id, b)
                }
            };
            out.push(json!({"Fn::If": [items[0].clone(), branch(&items[1])?, branch(&items[2])?]}));
        } else {
            out.push(convert_policy_template(id, &p)?);
        }
    }
    let mut map = props.0.clone();
    map.insert("Policies".into(), Value::Array(out));
    Ok(Some(map))
}

/// The prefix aws-sam-translator gives the `Ref`s of a template's definition, so that a value
/// which itself holds a `Ref` of the same name is not resolved again.
const POLICY_PARAMETER_PREFIX: &str = "___SAM_POLICY_PARAMETER_";

fn convert_policy_template(id: &str, entry: &Value) -> Result<Value, Failure> {
    let (name, values) = match entry.as_object().and_then(|m| m.iter().next()) {
        Some((n, v)) => (n.as_str(), v),
        None => {
            return Err(res_err(
                id,
                "a policy template is `{TemplateName: {Parameter: value}}`".to_string(),
            ))
        }
    };
    let template = policy_templates()
        .get(name)
        .ok_or_else(|| res_err(id, format!("Template '{name}' is not defined.")))?;
    let Some(values) = values.as_object() else {
        return Err(res_err(
            id,
            format!("Must specify valid parameter values for policy template '{name}'"),
        ));
    };
    let parameters: Vec<&String> = template
        .get("Parameters")
        .and_then(Value::as_object)
        .map(|p| p.keys().collect())
        .unwrap_or_default();
    let missing: Vec<String> = parameters
        .iter()
        .filter(|p| !values.contains_key(p.as_str()))
        .map(|p| format!("'{p}'"))
        .collect();
    if !missing.is_empty() {
        return Err(res_err(
            id,
            format!(
                "Following required parameters of template '{name}' don't have values: [{}]",
                missing.join(", ")
            ),
        ));
    }
    fn resolve(v: &Value, parameters: &[&String], values: &Map<String, Value>) -> Value {
        match v {
            Value::Object(o) => {
                if let (1, Some(Value::String(r))) = (o.len(), o.get("Ref")) {
                    return match values.get(r.as_str()).filter(|_| parameters.contains(&r)) {
                        Some(value) => value.clone(),
                        None => json!({"Ref": format!("{POLICY_PARAMETER_PREFIX}{r}")}),
                    };
                }
                Value::Object(
                    o.iter()
                        .map(|(k, x)| {
                            let x = if k == "Ref" && x.is_string() && o.len() > 1 {
                                Value::String(format!("{POLICY_PARAMETER_PREFIX}{}", x.as_str().unwrap_or_default()))
                            } else {
                                resolve(x, parameters, values)
                            };
                            (k.clone(), x)
                        })
                        .collect(),
                )
            }
            Value::Array(a) => Value::Array(a.iter().map(|x| resolve(x, parameters, values)).collect()),
            other => other.clone(),
        }
    }
    Ok(resolve(
        template.get("Definition").unwrap_or(&Value::Null),
        &parameters,
        values,
    ))
}

pub(crate) fn managed_policy_arn(ctx: &Context<'_>, name: &str) -> String {
    if let Ok(i) = MANAGED_POLICY_PATHS.binary_search_by(|(n, _)| (*n).cmp(name)) {
        return ctx.managed_policy_arn(&format!("{}{name}", MANAGED_POLICY_PATHS[i].1));
    }
    // an ARN, an intrinsic's text, or a name AWS does not have: kept as written, as SAM keeps it
    name.to_string()
}

fn construct_role(
    ctx: &Context<'_>,
    id: &str,
    props: &Props<'_>,
    passthrough: &Map<String, Value>,
    invoke_policies: &[Value],
) -> Result<CfnResource, Failure> {
    let assume = props.cloned("AssumeRolePolicyDocument").unwrap_or_else(|| {
        json!({"Version": "2012-10-17", "Statement": [{"Action": ["sts:AssumeRole"], "Effect": "Allow",
               "Principal": {"Service": ["lambda.amazonaws.com"]}}]})
    });
    let mut managed: Vec<Value> = vec![json!(if props.truthy("DurableConfig") {
        ctx.managed_policy_arn("service-role/AWSLambdaBasicDurableExecutionRolePolicy")
    } else {
        ctx.managed_policy_arn("service-role/AWSLambdaBasicExecutionRole")
    })];
    if let Some(tracing) = props.get("Tracing").filter(|v| truthy(v)) {
        if ctx.resolve_params(tracing)? != json!("Disabled") {
            let name = if ctx.opts.partition == "aws" {
                "AWSXrayWriteOnlyAccess"
            } else {
                "AWSXRayDaemonWriteAccess"
            };
            managed.push(json!(ctx.managed_policy_arn(name)));
        }
    }
    if props.truthy("VpcConfig") {
        managed.push(json!(
            ctx.managed_policy_arn("service-role/AWSLambdaVPCAccessExecutionRole")
        ));
    }
    let mut documents: Vec<Value> = Vec::new();
    if let Some(dlq) = props.get("DeadLetterQueue").filter(|v| truthy(v)) {
        let action = if dlq.get("Type") == Some(&json!("SQS")) {
            "sqs:SendMessage"
        } else {
            "sns:Publish"
        };
        documents.push(json!({"PolicyName": "DeadLetterQueuePolicy", "PolicyDocument": {"Version": "2012-10-17",
            "Statement": [{"Action": action, "Resource": dlq.get("TargetArn").cloned().unwrap_or(Value::Null), "Effect": "Allow"}]}}));
    }
    documents.extend(invoke_policies.iter().cloned());
    let role = RoleSpec {
        assume_role_policy: assume,
        managed_policy_arns: managed,
        policy_documents: documents,
        policies: policies_list(props),
        role_path: props.cloned("RolePath"),
        permissions_boundary: props.cloned("PermissionsBoundary"),
        tags: tag_list(id, props.get("Tags"), true)?,
    };
    role.construct(ctx, id, passthrough)
}

/// An execution role as `construct_role_for_resource` makes it: the given managed policies and
/// documents, then the resource's `Policies` (statements become inline policies named after the
/// role and their index, names of managed policies ARNs).
pub(crate) struct RoleSpec {
    pub assume_role_policy: Value,
    pub managed_policy_arns: Vec<Value>,
    pub policy_documents: Vec<Value>,
    pub policies: Vec<Value>,
    pub role_path: Option<Value>,
    pub permissions_boundary: Option<Value>,
    pub tags: Vec<Value>,
}

impl RoleSpec {
    /// The role `<id>Role` of resource `id`.
    pub(crate) fn construct(
        self,
        ctx: &Context<'_>,
        id: &str,
        passthrough: &Map<String, Value>,
    ) -> Result<CfnResource, Failure> {
        let role_id = format!("{id}Role");
        let mut role = CfnResource::new(role_id.clone(), "AWS::IAM::Role");
        role.attributes = passthrough.clone();
        let mut managed = self.managed_policy_arns;
        let mut documents = self.policy_documents;
        for (index, policy) in self.policies.into_iter().enumerate() {
            match policy_kind(&policy)? {
                PolicyKind::Statement => {
                    let name = format!("{role_id}Policy{index}");
                    if is_intrinsic_if(&policy) {
                        let mut p = policy.clone();
                        for i in [1, 2] {
                            let v = p["Fn::If"][i].clone();
                            if !is_no_value(&v) {
                                p["Fn::If"][i] = json!({"PolicyName": name, "PolicyDocument": v});
                            }
                        }
                        documents.push(p);
                    } else {
                        documents.push(json!({"PolicyName": name, "PolicyDocument": policy}));
                    }
                }
                PolicyKind::Managed => {
                    let arn = match &policy {
                        Value::String(s) => json!(managed_policy_arn(ctx, s)),
                        p if is_intrinsic_if(p) => {
                            let mut p = p.clone();
                            for i in [1, 2] {
                                if let Value::String(s) = &p["Fn::If"][i] {
                                    p["Fn::If"][i] = json!(managed_policy_arn(ctx, s));
                                }
                            }
                            p
                        }
                        other => other.clone(),
                    };
                    if !managed.contains(&arn) {
                        managed.push(arn);
                    }
                }
                PolicyKind::Template | PolicyKind::Unknown => {
                    return Err(res_err(
                        id,
                        format!("Policy at index {index} in the 'Policies' property is not valid"),
                    ));
                }
            }
        }
        role.set("AssumeRolePolicyDocument", Some(self.assume_role_policy));
        role.set("ManagedPolicyArns", Some(Value::Array(managed)));
        if !documents.is_empty() {
            role.set("Policies", Some(Value::Array(documents)));
        }
        role.set("Path", self.role_path);
        role.set("PermissionsBoundary", self.permissions_boundary);
        role.set("Tags", Some(Value::Array(self.tags)));
        Ok(role)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn s3_uris_parse_like_urlparse() {
        assert_eq!(
            parse_s3_uri("s3://b/k/x.zip"),
            Some(("b".into(), "k/x.zip".into(), None))
        );
        assert_eq!(
            parse_s3_uri("s3://b/k?versionId=3"),
            Some(("b".into(), "k".into(), Some("3".into())))
        );
        assert_eq!(parse_s3_uri("s3://b"), None);
        assert_eq!(parse_s3_uri("./target"), None);
    }

    #[test]
    fn alias_names_follow_sams_pattern() {
        assert!(alias_name_is_valid("live"));
        assert!(alias_name_is_valid("live-2_x"));
        assert!(!alias_name_is_valid("123"));
        assert!(!alias_name_is_valid("a b"));
    }

    #[test]
    fn managed_policy_names_with_paths_are_known() {
        let opts = super::super::SamOptions::default();
        let ctx = Context::empty(&opts);
        assert_eq!(
            managed_policy_arn(&ctx, "AWSLambdaBasicExecutionRole"),
            "arn:aws:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole"
        );
        assert_eq!(
            managed_policy_arn(&ctx, "AmazonS3ReadOnlyAccess"),
            "arn:aws:iam::aws:policy/AmazonS3ReadOnlyAccess"
        );
        assert_eq!(
            managed_policy_arn(&ctx, "arn:aws:iam::1:policy/x"),
            "arn:aws:iam::1:policy/x"
        );
    }
}
