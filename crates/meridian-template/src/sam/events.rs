//! The `Events` of a function: event source mappings, rules, schedules, subscriptions and the
//! Lambda permissions they need, as aws-sam-translator's event sources generate them.

use serde_json::{Map, Value};

use super::function::Props;
use serde_json::json;

use super::validate::Check;
use super::{res_err, truthy, CfnResource, Context, Failure, SamResourceError};

/// Every event type SAM knows.
const KNOWN: &[&str] = &[
    "CloudWatchLogs",
    "Kinesis",
    "DynamoDB",
    "SQS",
    "MSK",
    "MQ",
    "SelfManagedKafka",
    "DocumentDB",
    "Schedule",
    "CloudWatchEvent",
    "EventBridgeRule",
    "S3",
    "SNS",
    "Api",
    "AlexaSkill",
    "IoTRule",
    "Cognito",
    "HttpApi",
    "ScheduleV2",
];

fn event_err(function_id: &str, event_id: &str, message: impl std::fmt::Display) -> Failure {
    Owner::Function(function_id).event_err(event_id, message)
}

/// The resource whose events these are, which decides how their errors read: a function reports
/// them as its own (`Resource with id [F] is invalid. Event with id [E] is invalid. ...`), a
/// state machine lets the event's error through alone (`Event with id [E] is invalid. ...`).
#[derive(Clone, Copy, Debug)]
pub(crate) enum Owner<'a> {
    Function(&'a str),
    StateMachine,
}

impl Owner<'_> {
    pub(crate) fn event_err(self, event_id: &str, message: impl std::fmt::Display) -> Failure {
        let message = format!("Event with id [{event_id}] is invalid. {message}");
        match self {
            Owner::Function(id) => res_err(id, message),
            Owner::StateMachine => Failure::Resource(SamResourceError {
                logical_id: None,
                message,
            }),
        }
    }
}

fn events(props: &Props<'_>) -> Vec<(String, Value)> {
    match props.get("Events") {
        Some(Value::Object(m)) => m.iter().map(|(k, v)| (k.clone(), v.clone())).collect(),
        _ => Vec::new(),
    }
}

fn event_type(event: &Value) -> Option<&str> {
    event.get("Type").and_then(Value::as_str).filter(|t| KNOWN.contains(t))
}

/// Properties an event type requires, in the order SAM checks them.
fn required(t: &str) -> &'static [&'static str] {
    match t {
        "Schedule" => &["Schedule"],
        "SNS" => &["Topic"],
        "S3" => &["Bucket", "Events"],
        "CloudWatchLogs" => &["LogGroupName", "FilterPattern"],
        "IoTRule" => &["Sql"],
        "Cognito" => &["UserPool", "Trigger"],
        _ => &[],
    }
}

/// The properties of the event sources Meridian translates, as aws-sam-translator 1.115.0 models
/// them (`None`: not checked here).
fn known_properties(t: &str) -> Option<&'static [&'static str]> {
    const RULE: &[&str] = &[
        "EventBusName",
        "RuleName",
        "Pattern",
        "DeadLetterConfig",
        "RetryPolicy",
        "Input",
        "InputPath",
        "Target",
        "Enabled",
        "State",
        "InputTransformer",
    ];
    Some(match t {
        "Schedule" => &[
            "Schedule",
            "RuleName",
            "Input",
            "Enabled",
            "State",
            "Name",
            "Description",
            "DeadLetterConfig",
            "RetryPolicy",
        ],
        "CloudWatchEvent" | "EventBridgeRule" => RULE,
        "SNS" => &[
            "Topic",
            "Region",
            "FilterPolicy",
            "FilterPolicyScope",
            "SqsSubscription",
            "RedrivePolicy",
        ],
        "S3" => &["Bucket", "Events", "Filter"],
        "CloudWatchLogs" => &["LogGroupName", "FilterPattern"],
        "AlexaSkill" => &["SkillId"],
        "IoTRule" => &["Sql", "AwsIotSqlVersion"],
        "Cognito" => &["UserPool", "Trigger"],
        "Api" => &[
            "Path",
            "Method",
            "RestApiId",
            "Stage",
            "Auth",
            "RequestModel",
            "RequestParameters",
            "TimeoutInMillis",
            "ResponseTransferMode",
        ],
        "HttpApi" => &[
            "Path",
            "Method",
            "ApiId",
            "Stage",
            "Auth",
            "TimeoutInMillis",
            "RouteSettings",
            "PayloadFormatVersion",
        ],
        _ => return None,
    })
}

fn event_props(event: &Value) -> Map<String, Value> {
    event
        .get("Properties")
        .and_then(Value::as_object)
        .cloned()
        .unwrap_or_default()
}

fn set_if(r: &mut CfnResource, name: &str, props: &Map<String, Value>, from: &str) {
    r.set(name, props.get(from).filter(|v| !v.is_null()).cloned());
}

/// `resolve_resource_type`: the event's type, one of `types`.
pub(crate) fn resolve_type<'t>(
    resource_id: &str,
    event_id: &str,
    event: &Value,
    types: &[&'t str],
) -> Result<&'t str, Failure> {
    let t = event.get("Type").and_then(Value::as_str);
    if let Some(known) = t.and_then(|t| types.iter().find(|k| **k == t)) {
        return Ok(known);
    }
    let shown = match event.get("Type") {
        None | Some(Value::Null) => "None".to_string(),
        Some(Value::String(s)) => s.clone(),
        Some(other) => super::python_repr(other),
    };
    Err(event_err(
        resource_id,
        event_id,
        format!("Resource dict has missing or invalid value for key Type. Event Type is: {shown}."),
    ))
}

/// `resources_to_link`: each event is parsed (its type must be known, its required properties
/// set) and S3 events must name a bucket of the template.
pub(crate) fn link(ctx: &Context<'_>, function_id: &str, props: &Props<'_>) -> Result<(), Failure> {
    for (event_id, event) in events(props) {
        let t = resolve_type(function_id, &event_id, &event, KNOWN)?;
        let ep = event_props(&event);
        if super::pull::TYPES.contains(&t) {
            super::pull::validate(&format!("{function_id}{event_id}"), t, &ep)?;
            continue;
        }
        if t == "ScheduleV2" {
            let lid = format!("{function_id}{event_id}");
            super::validate::properties(&lid, t, &ep, SCHEDULE_V2, &["ScheduleExpression"])?;
            continue;
        }
        if let Some(known) = known_properties(t) {
            if let Some(k) = ep.keys().find(|k| !known.contains(&k.as_str())) {
                return Err(res_err(
                    &format!("{function_id}{event_id}"),
                    format!("property {k} not defined for resource of type {t}"),
                ));
            }
        }
        for name in required(t) {
            if ep.get(*name).is_none_or(Value::is_null) {
                return Err(res_err(
                    &format!("{function_id}{event_id}"),
                    format!("Missing required property '{name}'."),
                ));
            }
        }
        // `IS_STR` properties (a one-key mapping is left to CloudFormation as an intrinsic)
        let strings: &[&str] = match t {
            "CloudWatchLogs" => &["LogGroupName", "FilterPattern"],
            "AlexaSkill" => &["SkillId"],
            "IoTRule" => &["Sql", "AwsIotSqlVersion"],
            "Cognito" => &["UserPool"],
            _ => &[],
        };
        for name in strings {
            let bad = ep
                .get(*name)
                .filter(|v| !v.is_null() && !v.is_string() && v.as_object().is_none_or(|m| m.len() != 1));
            if bad.is_some() {
                return Err(res_err(
                    &format!("{function_id}{event_id}"),
                    format!("Type of property '{name}' is invalid."),
                ));
            }
        }
        if t == "Cognito" {
            // one string or a list of strings, and no intrinsic function
            let ok = match ep.get("Trigger") {
                Some(Value::String(_)) => true,
                Some(Value::Array(a)) => a.iter().all(Value::is_string),
                _ => false,
            };
            if !ok {
                return Err(res_err(
                    &format!("{function_id}{event_id}"),
                    "Type of property 'Trigger' is invalid.",
                ));
            }
            match ep.get("UserPool").and_then(|p| p.get("Ref")) {
                Some(Value::String(id)) if ctx.resources_now.contains_key(id) => {}
                Some(r) if !r.is_string() => {
                    return Err(event_err(
                        function_id,
                        &format!("{function_id}{event_id}"),
                        "Ref in Userpool is not a string.",
                    ))
                }
                _ => {
                    return Err(event_err(
                        function_id,
                        &event_id,
                        "Cognito events must reference a Cognito UserPool in the same template.",
                    ))
                }
            }
        }
        if t == "S3" {
            let bucket = ep.get("Bucket");
            let bucket_ref = bucket.and_then(|b| b.as_object()).and_then(|b| b.get("Ref"));
            match bucket_ref {
                Some(Value::String(id)) if ctx.resources_now.contains_key(id) => {}
                Some(r) if !r.is_string() => {
                    return Err(event_err(
                        function_id,
                        &event_id,
                        "'Ref' value in S3 events is not a valid string.",
                    ))
                }
                _ => {
                    return Err(event_err(
                        function_id,
                        &event_id,
                        "S3 events must reference an S3 bucket in the same template.",
                    ))
                }
            }
        }
    }
    Ok(())
}

/// SAM's order of events: by `Properties.Path` when there is one, else by the event's id.
fn ordered(props: &Props<'_>) -> Vec<(String, Value)> {
    let mut evs = events(props);
    evs.sort_by_key(|(id, ev)| {
        ev.get("Properties")
            .and_then(|p| p.get("Path"))
            .and_then(Value::as_str)
            .map(str::to_string)
            .unwrap_or_else(|| id.clone())
    });
    evs
}

fn unsupported(function_id: &str, event_id: &str, what: &str) -> Failure {
    event_err(
        function_id,
        event_id,
        format!("{what} is not supported by Meridian's local regions yet."),
    )
}

/// What events invoke: the alias when there is one, else the function.
struct Target {
    id: String,
    is_alias: bool,
}

impl Target {
    /// `get_runtime_attr("name")`, or the ARN where there is no name (an alias).
    fn name_or_arn(&self) -> Value {
        json!({"Ref": self.id})
    }
    fn arn(&self) -> Value {
        if self.is_alias {
            json!({"Ref": self.id})
        } else {
            json!({"Fn::GetAtt": [self.id, "Arn"]})
        }
    }
}

fn permission(
    event_logical_id: &str,
    target: &Target,
    passthrough: &Map<String, Value>,
    principal: &str,
    source_arn: Option<Value>,
    source_account: Option<Value>,
) -> CfnResource {
    let mut p = CfnResource::new(format!("{event_logical_id}Permission"), "AWS::Lambda::Permission");
    p.attributes = passthrough.clone();
    p.set("Action", Some(json!("lambda:InvokeFunction")));
    p.set("FunctionName", Some(target.name_or_arn()));
    p.set("Principal", Some(json!(principal)));
    p.set("SourceArn", source_arn);
    p.set("SourceAccount", source_account);
    p
}

/// `generate_valid_target_id`: the rule's id and the suffix, cut to the 64 characters of a
/// target id.
fn target_id(logical_id: &str, suffix: &str) -> String {
    const MAX: usize = 64;
    if logical_id.len() + suffix.len() <= MAX {
        format!("{logical_id}{suffix}")
    } else {
        let keep: String = logical_id.chars().take(MAX.saturating_sub(suffix.len())).collect();
        format!("{keep}{suffix}")
    }
}

/// `validate_dlq_config`: `Arn` or `Type: SQS`, not both.
fn validate_dead_letter(owner: Owner<'_>, lid: &str, dlc: &Map<String, Value>) -> Result<(), Failure> {
    let (arn, ty) = (dlc.contains_key("Arn"), dlc.contains_key("Type"));
    if arn && ty {
        return Err(owner.event_err(
            lid,
            "You can either define 'Arn' or 'Type' property of DeadLetterConfig.",
        ));
    }
    if ty && dlc.get("Type") != Some(&json!("SQS")) {
        return Err(owner.event_err(
            lid,
            "The only valid value for 'Type' property of DeadLetterConfig is 'SQS'.",
        ));
    }
    if !arn && !ty {
        return Err(owner.event_err(lid, "No 'Arn' or 'Type' property provided for DeadLetterConfig."));
    }
    Ok(())
}

/// The queue a `DeadLetterConfig` of `Type: SQS` makes (`QueueLogicalId`, or the event's id and
/// `Queue`).
fn dead_letter_queue(
    owner: Owner<'_>,
    lid: &str,
    dlc: &Map<String, Value>,
    passthrough: &Map<String, Value>,
) -> Result<CfnResource, Failure> {
    let queue_id = match dlc.get("QueueLogicalId").filter(|v| !v.is_null()) {
        None => format!("{lid}Queue"),
        Some(Value::String(s)) => s.clone(),
        Some(_) => return Err(owner.event_err(lid, "QueueLogicalId must be a string")),
    };
    let mut queue = CfnResource::new(queue_id, "AWS::SQS::Queue");
    queue.attributes = passthrough.clone();
    Ok(queue)
}

/// A rule's `DeadLetterConfig`: the queue's ARN (given as `Arn`, or of a queue made for it with
/// `Type: SQS`, with the policy that lets EventBridge send to it) and the resources made.
fn dead_letter(
    owner: Owner<'_>,
    lid: &str,
    ep: &Map<String, Value>,
    passthrough: &Map<String, Value>,
) -> Result<Option<(Value, Vec<CfnResource>)>, Failure> {
    let Some(dlc) = ep.get("DeadLetterConfig").filter(|v| !v.is_null()) else {
        return Ok(None);
    };
    let empty = Map::new();
    let dlc = dlc.as_object().unwrap_or(&empty);
    validate_dead_letter(owner, lid, dlc)?;
    if let Some(a) = dlc.get("Arn").filter(|v| !v.is_null()) {
        return Ok(Some((a.clone(), Vec::new())));
    }
    let queue = dead_letter_queue(owner, lid, dlc, passthrough)?;
    let queue_arn = json!({"Fn::GetAtt": [queue.logical_id, "Arn"]});
    let mut policy = CfnResource::new(format!("{lid}QueuePolicy"), "AWS::SQS::QueuePolicy");
    policy.attributes = passthrough.clone();
    policy.set(
        "PolicyDocument",
        Some(json!({
            "Version": "2012-10-17",
            "Statement": [{
                "Action": "sqs:SendMessage",
                "Effect": "Allow",
                "Principal": {"Service": "events.amazonaws.com"},
                "Resource": queue_arn,
                "Condition": {"ArnEquals": {"aws:SourceArn": {"Fn::GetAtt": [lid, "Arn"]}}},
            }],
        })),
    );
    policy.set("Queues", Some(json!([{"Ref": queue.logical_id}])));
    Ok(Some((queue_arn, vec![queue, policy])))
}

fn state(owner: Owner<'_>, event_id: &str, ep: &Map<String, Value>, rule: &mut CfnResource) -> Result<(), Failure> {
    let st = ep.get("State").filter(|v| truthy(v));
    let enabled = ep.get("Enabled").filter(|v| !v.is_null());
    if st.is_some() && enabled.is_some() {
        return Err(owner.event_err(event_id, "State and Enabled Properties cannot both be specified."));
    }
    if let Some(s) = st {
        rule.set("State", Some(s.clone()));
    }
    if let Some(e) = enabled {
        rule.set("State", Some(json!(if truthy(e) { "ENABLED" } else { "DISABLED" })));
    }
    Ok(())
}

/// An EventBridge rule event: `Schedule` (a schedule expression) or `CloudWatchEvent` /
/// `EventBridgeRule` (an event pattern).
pub(crate) struct RuleEvent<'a> {
    pub owner: Owner<'a>,
    pub event_id: &'a str,
    /// The rule's logical id (the owner's id and the event's).
    pub lid: &'a str,
    pub is_schedule: bool,
    pub ep: &'a Map<String, Value>,
    pub passthrough: &'a Map<String, Value>,
}

impl RuleEvent<'_> {
    /// The rule (first) and its dead-letter queue's resources. Its one target calls `arn`
    /// (with `role_arn`, the role it takes, if any); the target's id ends with `id_suffix`
    /// unless the event's `Target` names one.
    pub(crate) fn generate(
        &self,
        arn: Value,
        id_suffix: &str,
        role_arn: Option<Value>,
    ) -> Result<Vec<CfnResource>, Failure> {
        let (ep, lid) = (self.ep, self.lid);
        let mut rule = CfnResource::new(lid, "AWS::Events::Rule");
        rule.attributes = self.passthrough.clone();
        let dlq = if self.is_schedule {
            set_if(&mut rule, "ScheduleExpression", ep, "Schedule");
            state(self.owner, self.event_id, ep, &mut rule)?;
            set_if(&mut rule, "Name", ep, "Name");
            set_if(&mut rule, "Description", ep, "Description");
            dead_letter(self.owner, lid, ep, self.passthrough)?
        } else {
            set_if(&mut rule, "EventBusName", ep, "EventBusName");
            set_if(&mut rule, "EventPattern", ep, "Pattern");
            set_if(&mut rule, "Name", ep, "RuleName");
            let dlq = dead_letter(self.owner, lid, ep, self.passthrough)?;
            state(self.owner, self.event_id, ep, &mut rule)?;
            dlq
        };
        let id = ep
            .get("Target")
            .and_then(|t| t.get("Id"))
            .cloned()
            .unwrap_or_else(|| json!(target_id(lid, id_suffix)));
        let mut tgt = Map::new();
        tgt.insert("Arn".into(), arn);
        tgt.insert("Id".into(), id);
        if let Some(role) = role_arn {
            tgt.insert("RoleArn".into(), role);
        }
        let passed: &[&str] = if self.is_schedule {
            &["Input"]
        } else {
            &["Input", "InputPath"]
        };
        for k in passed {
            if let Some(v) = ep.get(*k).filter(|v| !v.is_null()) {
                tgt.insert(k.to_string(), v.clone());
            }
        }
        let mut out = Vec::new();
        if let Some((arn, resources)) = dlq {
            tgt.insert("DeadLetterConfig".into(), json!({"Arn": arn}));
            out.extend(resources);
        }
        let passed: &[&str] = if self.is_schedule {
            &["RetryPolicy"]
        } else {
            &["RetryPolicy", "InputTransformer"]
        };
        for k in passed {
            if let Some(v) = ep.get(*k).filter(|v| !v.is_null()) {
                tgt.insert(k.to_string(), v.clone());
            }
        }
        rule.set("Targets", Some(json!([tgt])));
        out.insert(0, rule);
        Ok(out)
    }
}

/// What a `ScheduleV2` schedule calls.
#[derive(Clone, Copy)]
pub(crate) enum ScheduleTarget {
    Function,
    StateMachine,
}

/// The properties of `ScheduleV2` events, in aws-sam-translator's model order.
pub(crate) const SCHEDULE_V2: &[(&str, Check)] = &[
    ("PermissionsBoundary", Check::Str),
    ("ScheduleExpression", Check::Str),
    ("FlexibleTimeWindow", Check::Dict),
    ("Name", Check::Str),
    ("State", Check::Str),
    ("Description", Check::Str),
    ("StartDate", Check::Str),
    ("EndDate", Check::Str),
    ("ScheduleExpressionTimezone", Check::Str),
    ("GroupName", Check::Str),
    ("KmsKeyArn", Check::Str),
    ("Input", Check::Str),
    ("RoleArn", Check::Str),
    ("DeadLetterConfig", Check::Dict),
    ("RetryPolicy", Check::Dict),
    ("OmitName", Check::StrictBool),
];

/// A `ScheduleV2` event: an EventBridge Scheduler schedule calling `arn`, the role it takes
/// (unless `RoleArn` is given) and its dead-letter queue (given, or made).
pub(crate) fn schedule_v2(
    owner: Owner<'_>,
    lid: &str,
    ep: &Map<String, Value>,
    passthrough: &Map<String, Value>,
    arn: Value,
    kind: ScheduleTarget,
) -> Result<Vec<CfnResource>, Failure> {
    let given = |k: &str| ep.get(k).filter(|v| !v.is_null()).cloned();
    let mut schedule = CfnResource::new(lid, "AWS::Scheduler::Schedule");
    schedule.attributes = passthrough.clone();
    schedule.set("ScheduleExpression", given("ScheduleExpression"));
    schedule.set("State", given("State").filter(truthy));
    if given("OmitName").is_some_and(|v| truthy(&v)) {
        if given("Name").is_some_and(|v| truthy(&v)) {
            return Err(owner.event_err(lid, "Name cannot be set when OmitName is True"));
        }
    } else {
        schedule.set("Name", Some(given("Name").filter(truthy).unwrap_or_else(|| json!(lid))));
    }
    schedule.set("Description", given("Description"));
    schedule.set(
        "FlexibleTimeWindow",
        Some(
            given("FlexibleTimeWindow")
                .filter(truthy)
                .unwrap_or_else(|| json!({"Mode": "OFF"})),
        ),
    );
    for k in [
        "StartDate",
        "EndDate",
        "ScheduleExpressionTimezone",
        "GroupName",
        "KmsKeyArn",
    ] {
        schedule.set(k, given(k));
    }
    let mut out = Vec::new();
    let mut dlq_arn = None;
    if let Some(dlc) = given("DeadLetterConfig") {
        let empty = Map::new();
        let dlc = dlc.as_object().unwrap_or(&empty);
        validate_dead_letter(owner, lid, dlc)?;
        dlq_arn = Some(match dlc.get("Arn").filter(|v| !v.is_null()) {
            Some(a) => a.clone(),
            None => {
                let queue = dead_letter_queue(owner, lid, dlc, passthrough)?;
                let arn = json!({"Fn::GetAtt": [queue.logical_id, "Arn"]});
                out.push(queue);
                arn
            }
        });
    }
    let role_arn = match given("RoleArn").filter(truthy) {
        Some(r) => r,
        None => {
            let (action, policy_name) = match kind {
                ScheduleTarget::Function => ("lambda:InvokeFunction", format!("{lid}LambdaPolicy")),
                ScheduleTarget::StateMachine => ("states:StartExecution", format!("{lid}StartExecutionPolicy")),
            };
            let mut policies = vec![json!({"PolicyName": policy_name, "PolicyDocument": {
                "Statement": [{"Action": action, "Effect": "Allow", "Resource": arn}]}})];
            if let Some(q) = &dlq_arn {
                policies.push(json!({"PolicyName": format!("{lid}SQSPolicy"), "PolicyDocument": {
                    "Statement": [{"Action": "sqs:SendMessage", "Effect": "Allow", "Resource": q}]}}));
            }
            let mut role = CfnResource::new(format!("{lid}Role"), "AWS::IAM::Role");
            role.attributes = passthrough.clone();
            role.set(
                "AssumeRolePolicyDocument",
                Some(assume_role_policy("scheduler.amazonaws.com")),
            );
            role.set("Policies", Some(Value::Array(policies)));
            role.set("PermissionsBoundary", given("PermissionsBoundary").filter(truthy));
            let role_arn = json!({"Fn::GetAtt": [role.logical_id, "Arn"]});
            out.push(role);
            role_arn
        }
    };
    let mut target = Map::new();
    target.insert("Arn".into(), arn);
    target.insert("RoleArn".into(), role_arn);
    if let Some(v) = given("Input") {
        target.insert("Input".into(), v);
    }
    if let Some(q) = dlq_arn {
        target.insert("DeadLetterConfig".into(), json!({"Arn": q}));
    }
    if let Some(v) = given("RetryPolicy") {
        target.insert("RetryPolicy".into(), v);
    }
    schedule.set("Target", Some(Value::Object(target)));
    out.insert(0, schedule);
    Ok(out)
}

/// The trust policy of a role a service takes.
pub(crate) fn assume_role_policy(service: &str) -> Value {
    json!({"Version": "2012-10-17", "Statement": [{"Action": ["sts:AssumeRole"], "Effect": "Allow",
        "Principal": {"Service": [service]}}]})
}

/// The resources of every event of the function. `target` is the alias (if any) or the
/// function that events invoke; `role_id` the generated execution role, if any (pull events
/// add their managed policy to it).
pub(crate) fn generate(
    ctx: &mut Context<'_>,
    function_id: &str,
    props: &Props<'_>,
    passthrough: &Map<String, Value>,
    target: &(String, bool),
    resources: &mut [CfnResource],
    role_id: Option<&str>,
) -> Result<Vec<CfnResource>, Failure> {
    let target = Target {
        id: target.0.clone(),
        is_alias: target.1,
    };
    let mut out = Vec::new();
    for (event_id, event) in ordered(props) {
        let t = event_type(&event).unwrap_or("");
        let ep = event_props(&event);
        let lid = format!("{function_id}{event_id}");
        match t {
            t if super::pull::TYPES.contains(&t) => {
                let pull = super::pull::Pull {
                    function_id,
                    event_id: &event_id,
                    lid: &lid,
                    t,
                    ep: &ep,
                };
                let role = role_id.and_then(|r| resources.iter_mut().find(|x| x.logical_id == r));
                out.push(pull.generate(ctx, target.name_or_arn(), passthrough, role)?);
            }
            "Schedule" | "CloudWatchEvent" | "EventBridgeRule" => {
                let rule = RuleEvent {
                    owner: Owner::Function(function_id),
                    event_id: &event_id,
                    lid: &lid,
                    is_schedule: t == "Schedule",
                    ep: &ep,
                    passthrough,
                };
                out.extend(rule.generate(target.arn(), "LambdaTarget", None)?);
                let source = json!({"Fn::GetAtt": [lid, "Arn"]});
                out.push(permission(
                    &lid,
                    &target,
                    passthrough,
                    "events.amazonaws.com",
                    Some(source),
                    None,
                ));
            }
            "ScheduleV2" => {
                out.extend(schedule_v2(
                    Owner::Function(function_id),
                    &lid,
                    &ep,
                    passthrough,
                    target.arn(),
                    ScheduleTarget::Function,
                )?);
            }
            "SNS" if ep.get("SqsSubscription").is_some_and(truthy) => {
                // The topic feeds a queue, which the function reads.
                let topic = ep.get("Topic").cloned().unwrap_or(Value::Null);
                let sqs = &ep["SqsSubscription"];
                let (queue_arn, queue_url, policy_id, batch, enabled) = match sqs {
                    Value::Bool(_) => {
                        let queue_id = format!("{lid}Queue");
                        let mut queue = CfnResource::new(queue_id.clone(), "AWS::SQS::Queue");
                        queue.attributes = passthrough.clone();
                        let fifo = super::intrinsics::logical_id_from_intrinsic(&topic)
                            .and_then(|t| ctx.resources_now.get(&t).cloned())
                            .and_then(|r| r.get("Properties").and_then(|p| p.get("FifoTopic")).cloned());
                        if let Some(f) = fifo {
                            let f = ctx.resolve_params(&f)?;
                            if truthy(&f) {
                                queue.set("FifoQueue", Some(f));
                            }
                        }
                        out.push(queue);
                        (
                            json!({"Fn::GetAtt": [queue_id, "Arn"]}),
                            json!({"Ref": queue_id}),
                            None,
                            None,
                            None,
                        )
                    }
                    Value::Object(m) => {
                        let arn = m.get("QueueArn").filter(|v| truthy(v));
                        let url = m.get("QueueUrl").filter(|v| truthy(v));
                        let (Some(arn), Some(url)) = (arn, url) else {
                            return Err(event_err(function_id, &event_id, "No QueueARN or QueueURL provided."));
                        };
                        (
                            arn.clone(),
                            url.clone(),
                            m.get("QueuePolicyLogicalId").cloned().filter(|v| !v.is_null()),
                            m.get("BatchSize").cloned().filter(truthy),
                            m.get("Enabled").cloned().filter(|v| !v.is_null()),
                        )
                    }
                    _ => {
                        return Err(event_err(
                            function_id,
                            &event_id,
                            "Property 'SqsSubscription' should be a map.",
                        ));
                    }
                };
                let _ = enabled; // SAM always enables the mapping it makes
                let mut m = CfnResource::new(format!("{lid}EventSourceMapping"), "AWS::Lambda::EventSourceMapping");
                m.attributes = passthrough.clone();
                m.set("FunctionName", Some(target.name_or_arn()));
                m.set("EventSourceArn", Some(queue_arn.clone()));
                m.set("BatchSize", Some(batch.unwrap_or(json!(10))));
                m.set("Enabled", Some(json!(true)));
                let arn = json!(ctx.managed_policy_arn("service-role/AWSLambdaSQSQueueExecutionRole"));
                if let Some(role) = role_id.and_then(|r| resources.iter_mut().find(|x| x.logical_id == r)) {
                    if let Some(Value::Array(arns)) = role.properties.get_mut("ManagedPolicyArns") {
                        if !arns.contains(&arn) {
                            arns.push(arn);
                        }
                    }
                }
                let policy_id = match policy_id {
                    Some(Value::String(s)) => s,
                    _ => format!("{lid}QueuePolicy"),
                };
                let mut policy = CfnResource::new(policy_id, "AWS::SQS::QueuePolicy");
                policy.attributes = passthrough.clone();
                policy.set(
                    "PolicyDocument",
                    Some(json!({
                        "Version": "2012-10-17",
                        "Statement": [{
                            "Action": "sqs:SendMessage",
                            "Effect": "Allow",
                            "Principal": "*",
                            "Resource": queue_arn,
                            "Condition": {"ArnEquals": {"aws:SourceArn": topic}},
                        }],
                    })),
                );
                policy.set("Queues", Some(json!([queue_url])));
                let mut sub = CfnResource::new(lid.clone(), "AWS::SNS::Subscription");
                sub.attributes = passthrough.clone();
                sub.set("Protocol", Some(json!("sqs")));
                sub.set("Endpoint", Some(queue_arn));
                sub.set("TopicArn", Some(topic));
                for k in ["Region", "FilterPolicy", "FilterPolicyScope", "RedrivePolicy"] {
                    set_if(&mut sub, k, &ep, k);
                }
                out.push(m);
                out.push(policy);
                out.push(sub);
            }
            "SNS" => {
                let topic = ep.get("Topic").cloned().unwrap_or(Value::Null);
                let perm = permission(
                    &lid,
                    &target,
                    passthrough,
                    "sns.amazonaws.com",
                    Some(topic.clone()),
                    None,
                );
                let mut sub = CfnResource::new(lid.clone(), "AWS::SNS::Subscription");
                sub.attributes = passthrough.clone();
                sub.set("Protocol", Some(json!("lambda")));
                sub.set("Endpoint", Some(target.arn()));
                sub.set("TopicArn", Some(topic));
                for k in ["Region", "FilterPolicy", "FilterPolicyScope", "RedrivePolicy"] {
                    set_if(&mut sub, k, &ep, k);
                }
                out.push(perm);
                out.push(sub);
            }
            "S3" => {
                // the S3 event source's `Events` takes no intrinsic function
                let kinds_ok = match ep.get("Events") {
                    Some(Value::String(_)) | None => true,
                    Some(Value::Array(a)) => a.iter().all(Value::is_string),
                    Some(_) => false,
                };
                if !kinds_ok {
                    return Err(res_err(&lid, "Type of property 'Events' is invalid."));
                }
                let bucket_id = ep["Bucket"]["Ref"].as_str().unwrap_or_default().to_string();
                let perm = permission(
                    &lid,
                    &target,
                    passthrough,
                    "s3.amazonaws.com",
                    None,
                    Some(json!({"Ref": "AWS::AccountId"})),
                );
                let mut bucket = ctx.resources_now.get(&bucket_id).cloned().unwrap_or_else(|| json!({}));
                let condition = passthrough.get("Condition").cloned();
                if let Some(cond) = &condition {
                    let props = bucket
                        .as_object_mut()
                        .unwrap()
                        .entry("Properties")
                        .or_insert_with(|| json!({}));
                    let tags = props
                        .as_object_mut()
                        .map(|p| p.entry("Tags").or_insert_with(|| json!([])));
                    if let Some(Value::Array(tags)) = tags {
                        tags.push(json!({"Key": format!("sam:ConditionalDependsOn:{}", perm.logical_id),
                            "Value": {"Fn::If": [cond, {"Ref": perm.logical_id}, "no dependency"]}}));
                    }
                } else {
                    // SAM makes a Python set of it: None, a number or a list holding a mapping
                    // or a list cannot be one.
                    let deps = match bucket.get("DependsOn") {
                        Some(Value::String(s)) => vec![json!(s)],
                        Some(Value::Array(a)) if a.iter().all(|d| !d.is_object() && !d.is_array()) => a.clone(),
                        Some(Value::Object(m)) => m.keys().map(|k| json!(k)).collect(),
                        None => Vec::new(),
                        Some(_) => {
                            return Err(res_err(
                                &lid,
                                "Invalid type for field 'DependsOn'. Expected a string or list of strings.",
                            ))
                        }
                    };
                    let mut deps_out: Vec<Value> = Vec::new();
                    for d in deps.into_iter().chain([json!(perm.logical_id)]) {
                        if !deps_out.contains(&d) {
                            deps_out.push(d);
                        }
                    }
                    bucket["DependsOn"] = Value::Array(deps_out);
                }
                let mut base = Map::new();
                base.insert("Function".into(), target.arn());
                if let Some(f) = ep.get("Filter").filter(|v| !v.is_null()) {
                    base.insert("Filter".into(), f.clone());
                }
                let kinds = match &ep["Events"] {
                    Value::Array(a) => a.clone(),
                    other => vec![other.clone()],
                };
                let bucket_obj = bucket.as_object_mut().unwrap();
                let props = bucket_obj.entry("Properties").or_insert_with(|| json!({}));
                if !props.is_object() {
                    return Err(res_err(&bucket_id, "Properties should be a map."));
                }
                let nc = props
                    .as_object_mut()
                    .unwrap()
                    .entry("NotificationConfiguration")
                    .or_insert_with(|| json!({}));
                let Some(nc) = nc.as_object_mut() else {
                    return Err(res_err(
                        &bucket_id,
                        "Property 'NotificationConfiguration' should be a map.",
                    ));
                };
                let lc = nc.entry("LambdaConfigurations").or_insert_with(|| json!([]));
                let Value::Array(lc) = lc else {
                    return Err(res_err(
                        &bucket_id,
                        "Invalid type for LambdaConfigurations. Must be a list.",
                    ));
                };
                for kind in kinds {
                    let mut ev = base.clone();
                    ev.insert("Event".into(), kind);
                    let mut ev = Value::Object(ev);
                    if let Some(cond) = &condition {
                        ev = json!({"Fn::If": [cond, ev, {"Ref": "AWS::NoValue"}]});
                    }
                    if !lc.contains(&ev) {
                        lc.push(ev);
                    }
                }
                ctx.resources_now.insert(bucket_id.clone(), bucket.clone());
                out.push(perm);
                let mut b = CfnResource::new(bucket_id, "AWS::S3::Bucket");
                b.depends_on = bucket.get("DependsOn").cloned();
                b.attributes = super::function::resource_attributes(&bucket);
                b.properties = bucket
                    .get("Properties")
                    .and_then(Value::as_object)
                    .cloned()
                    .unwrap_or_default();
                out.push(b);
            }
            "CloudWatchLogs" => {
                let group = ep.get("LogGroupName").cloned().unwrap_or(Value::Null);
                let source = json!({"Fn::Sub": [
                    format!("arn:{}:logs:${{AWS::Region}}:${{AWS::AccountId}}:log-group:${{__LogGroupName__}}:*", ctx.opts.partition),
                    {"__LogGroupName__": group},
                ]});
                let perm = permission(&lid, &target, passthrough, "logs.amazonaws.com", Some(source), None);
                let mut filter = CfnResource::new(lid.clone(), "AWS::Logs::SubscriptionFilter");
                filter.attributes = passthrough.clone();
                filter.depends_on = Some(json!([perm.logical_id]));
                set_if(&mut filter, "LogGroupName", &ep, "LogGroupName");
                set_if(&mut filter, "FilterPattern", &ep, "FilterPattern");
                filter.set("DestinationArn", Some(target.arn()));
                out.push(perm);
                out.push(filter);
            }
            "AlexaSkill" => {
                let mut perm = permission(&lid, &target, passthrough, "alexa-appkit.amazon.com", None, None);
                set_if(&mut perm, "EventSourceToken", &ep, "SkillId");
                out.push(perm);
            }
            "IoTRule" => {
                let source = json!({"Fn::Sub": [
                    format!("arn:{}:iot:${{AWS::Region}}:${{AWS::AccountId}}:rule/${{RuleName}}", ctx.opts.partition),
                    {"RuleName": {"Ref": lid}},
                ]});
                let account = json!({"Fn::Sub": "${AWS::AccountId}"});
                out.push(permission(
                    &lid,
                    &target,
                    passthrough,
                    "iot.amazonaws.com",
                    Some(source),
                    Some(account),
                ));
                let mut payload = Map::new();
                payload.insert("Sql".into(), ep.get("Sql").cloned().unwrap_or(Value::Null));
                payload.insert("RuleDisabled".into(), json!(false));
                payload.insert("Actions".into(), json!([{"Lambda": {"FunctionArn": target.arn()}}]));
                if let Some(v) = ep.get("AwsIotSqlVersion").filter(|v| truthy(v)) {
                    payload.insert("AwsIotSqlVersion".into(), v.clone());
                }
                let mut rule = CfnResource::new(lid.clone(), "AWS::IoT::TopicRule");
                rule.attributes = passthrough.clone();
                rule.set("TopicRulePayload", Some(Value::Object(payload)));
                out.push(rule);
            }
            "Cognito" => {
                out.extend(cognito(ctx, function_id, &event_id, &ep, &target, passthrough)?);
            }
            "Api" => {
                let made = super::rest_api::event(
                    ctx,
                    function_id,
                    &event_id,
                    &lid,
                    &ep,
                    &target.arn(),
                    &target.name_or_arn(),
                    passthrough,
                )?;
                out.extend(made);
            }
            "HttpApi" => {
                let made = super::http_api::event(
                    ctx,
                    function_id,
                    &event_id,
                    &lid,
                    &ep,
                    &target.arn(),
                    &target.name_or_arn(),
                    passthrough,
                )?;
                out.extend(made);
            }
            other => return Err(unsupported(function_id, &event_id, &format!("Event type '{other}'"))),
        }
    }
    Ok(out)
}

/// A Cognito trigger: the permission, and the template's user pool with the function in its
/// `LambdaConfig` (SAM rewrites the pool; a trigger may be set once).
fn cognito(
    ctx: &mut Context<'_>,
    function_id: &str,
    event_id: &str,
    ep: &Map<String, Value>,
    target: &Target,
    passthrough: &Map<String, Value>,
) -> Result<Vec<CfnResource>, Failure> {
    let pool_id = ep["UserPool"]["Ref"].as_str().unwrap_or_default().to_string();
    let source = json!({"Fn::GetAtt": [pool_id, "Arn"]});
    let mut perm = permission(
        &format!("{}Cognito", target.id),
        target,
        passthrough,
        "cognito-idp.amazonaws.com",
        Some(source),
        None,
    );
    perm.attributes = passthrough.clone();
    let triggers = match &ep["Trigger"] {
        Value::Array(a) => a.clone(),
        other => vec![other.clone()],
    };
    let mut pool = ctx.resources_now.get(&pool_id).cloned().unwrap_or_else(|| json!({}));
    let Some(pool_map) = pool.as_object_mut() else {
        return Err(res_err(&pool_id, "Resource should be a map."));
    };
    let props = pool_map.entry("Properties").or_insert_with(|| json!({}));
    if props.is_null() {
        *props = json!({});
    }
    let Some(props) = props.as_object_mut() else {
        return Err(res_err(&pool_id, "Properties should be a map."));
    };
    let config = props.entry("LambdaConfig").or_insert_with(|| json!({}));
    if config.is_null() {
        *config = json!({});
    }
    let Some(config) = config.as_object_mut() else {
        return Err(res_err(&pool_id, "Property 'LambdaConfig' should be a map."));
    };
    for trigger in &triggers {
        let name = trigger.as_str().unwrap_or_default();
        if config.contains_key(name) {
            let shown = match &ep["Trigger"] {
                Value::String(s) => s.clone(),
                other => super::python_repr(other),
            };
            return Err(event_err(
                function_id,
                event_id,
                format!("Cognito trigger \"{shown}\" defined multiple times."),
            ));
        }
        config.insert(name.into(), target.arn());
    }
    ctx.resources_now.insert(pool_id.clone(), pool.clone());
    let mut p = CfnResource::new(pool_id, "AWS::Cognito::UserPool");
    p.depends_on = pool.get("DependsOn").cloned();
    p.attributes = super::function::resource_attributes(&pool);
    p.properties = pool
        .get("Properties")
        .and_then(Value::as_object)
        .cloned()
        .unwrap_or_default();
    Ok(vec![perm, p])
}
