//! `AWS::Serverless::Connector` and the embedded `Connectors` attribute, as aws-sam-translator
//! transforms them.
//!
//! A connector names a source and one or more destinations (by logical id, or by type and ARN,
//! role name, queue URL...) and the access the source needs (`Read`, `Write`). SAM's connector
//! profiles (profiles.json of aws-sam-translator, Apache-2.0, beside this file with its licence)
//! say, per pair of CloudFormation types, what that access becomes: a managed policy on a role,
//! a queue or topic policy, or Lambda permissions. Connectors are translated after every other
//! serverless resource, so they see (and point at) the CloudFormation resources those became.
//!
//! Embedded connectors (`Connectors:` on any resource) are first turned into connector resources
//! named `<resource><connector>` whose source is the resource they sit on.

use std::sync::OnceLock;

use serde_json::{json, Map, Value};

use super::function::resource_attributes;
use super::validate::{self, Check};
use super::{res_err, truthy, CfnResource, Context, Failure, SamResourceError};

const CONNECTOR_TYPE: &str = "AWS::Serverless::Connector";

/// The properties of SAM's connector model, in order: `Source` a mapping, `Destination` a
/// mapping or a list of them, `Permissions` a list of strings.
const PROPERTIES: &[(&str, Check)] = &[
    ("Source", Check::MapOfAny),
    ("Destination", Check::DictOrListOfDict),
    ("Permissions", Check::ListOfStr),
];

/// SAM's connector profiles: `Permissions` (source type -> destination type -> profile) and
/// `CfnResourceProperties` (what a resource of a type offers: its ARN, role, queue URL...).
fn profiles() -> &'static Value {
    static PROFILES: OnceLock<Value> = OnceLock::new();
    PROFILES.get_or_init(|| serde_json::from_str(include_str!("profiles.json")).unwrap_or(Value::Null))
}

/// The CloudFormation types SAM's serverless types become, for references given by `Type`.
fn cfn_type_of(sam_type: &str) -> &str {
    match sam_type {
        "AWS::Serverless::Function" => "AWS::Lambda::Function",
        "AWS::Serverless::StateMachine" => "AWS::StepFunctions::StateMachine",
        "AWS::Serverless::Api" => "AWS::ApiGateway::RestApi",
        "AWS::Serverless::HttpApi" => "AWS::ApiGatewayV2::Api",
        "AWS::Serverless::SimpleTable" => "AWS::DynamoDB::Table",
        other => other,
    }
}

// ---------------------------------------------------------------------------------------------
// Embedded connectors
// ---------------------------------------------------------------------------------------------

/// Replaces every `Connectors` attribute with connector resources (appended to `resources`),
/// as SAM does right after its plugins ran. What is wrong with an embedded connector is
/// reported and that connector left out; the transform goes on.
pub(crate) fn embed(resources: &mut Map<String, Value>) -> Vec<SamResourceError> {
    let mut errors = Vec::new();
    let mut generated: Vec<(String, Value)> = Vec::new();
    for (source_id, resource) in resources.iter() {
        let Some(connectors) = resource.get("Connectors") else {
            continue;
        };
        let Some(connectors) = connectors.as_object() else {
            errors.push(error(
                source_id,
                format!("Attribute '{source_id}.Connectors' should be a map."),
            ));
            continue;
        };
        for (connector_id, connector) in connectors {
            let full_id = format!("{source_id}{connector_id}");
            match embedded_connector(source_id, connector_id, &full_id, connector) {
                Ok(_) if resources.contains_key(&full_id) => {
                    errors.push(SamResourceError {
                        logical_id: None,
                        message: format!(
                            "Transforming resource with id [{source_id}] attempts to create a new resource with id [{full_id}] and type \"{CONNECTOR_TYPE}\". A resource with that id already exists within this template. Please use a different id for that resource."
                        ),
                    });
                }
                Ok(c) => generated.push((full_id, c)),
                Err(Failure::Resource(e)) => errors.push(e),
                Err(Failure::Document(d)) => errors.extend(d),
            }
        }
    }
    for (id, connector) in generated {
        resources.insert(id, connector);
    }
    for resource in resources.values_mut() {
        if let Some(r) = resource.as_object_mut() {
            r.shift_remove("Connectors");
        }
    }
    errors
}

fn error(logical_id: &str, message: String) -> SamResourceError {
    SamResourceError {
        logical_id: Some(logical_id.to_string()),
        message,
    }
}

/// One embedded connector as the connector resource it stands for (checked as SAM reads one).
fn embedded_connector(source_id: &str, connector_id: &str, full_id: &str, connector: &Value) -> Result<Value, Failure> {
    let Some(connector) = connector.as_object() else {
        return Err(res_err(full_id, format!("{source_id}.{full_id} should be a map.")));
    };
    let Some(props) = connector.get("Properties").and_then(Value::as_object) else {
        return Err(res_err(
            source_id,
            format!("Attribute 'Connectors.{connector_id}.Properties' should be a map."),
        ));
    };
    let mut props = props.clone();
    let mut source = Map::new();
    source.insert("Id".into(), Value::String(source_id.to_string()));
    if let Some(reference) = props.shift_remove("SourceReference") {
        let Some(reference) = reference.as_object() else {
            return Err(res_err(
                source_id,
                format!("Property 'Connectors.{connector_id}.Properties.SourceReference' should be a map."),
            ));
        };
        if reference.contains_key("Id") {
            return Err(res_err(connector_id, "'Id' shouldn't be defined in 'SourceReference'."));
        }
        source.extend(reference.clone());
    }
    props.insert("Source".into(), Value::Object(source));

    super::validate_logical_id(full_id)?;
    validate::properties(
        full_id,
        CONNECTOR_TYPE,
        &props,
        PROPERTIES,
        &["Source", "Destination", "Permissions"],
    )?;

    let mut out = Map::new();
    out.insert("Type".into(), Value::String(CONNECTOR_TYPE.into()));
    if let Some(d) = connector.get("DependsOn").filter(|d| truthy(d)) {
        out.insert("DependsOn".into(), d.clone());
    }
    out.extend(resource_attributes(&Value::Object(connector.clone())));
    let properties: Map<String, Value> = PROPERTIES
        .iter()
        .filter_map(|(name, _)| {
            props
                .get(*name)
                .filter(|v| !v.is_null())
                .map(|v| (name.to_string(), v.clone()))
        })
        .collect();
    out.insert("Properties".into(), Value::Object(properties));
    Ok(Value::Object(out))
}

// ---------------------------------------------------------------------------------------------
// Connector resources
// ---------------------------------------------------------------------------------------------

/// A connector's source or destination, as SAM's `ConnectorResourceReference` resolves it.
#[derive(Debug, Default)]
struct Endpoint {
    logical_id: Option<String>,
    /// A CloudFormation type (a serverless one given as `Type` is mapped to its CloudFormation type).
    resource_type: String,
    arn: Option<Value>,
    role_name: Option<Value>,
    queue_url: Option<Value>,
    resource_id: Option<Value>,
    name: Option<Value>,
    qualifier: Option<Value>,
}

/// Which end of the connector a profile puts its policy on.
#[derive(Clone, Copy)]
enum End {
    Source,
    Destination,
}

impl End {
    fn of(source_policy: bool) -> End {
        if source_policy {
            End::Source
        } else {
            End::Destination
        }
    }

    fn name(self) -> &'static str {
        match self {
            End::Source => "Source",
            End::Destination => "Destination",
        }
    }
}

/// A value of a mapping, a null being no value (as a Python `dict.get` of a loaded null is None).
fn get<'a>(m: &'a Map<String, Value>, key: &str) -> Option<&'a Value> {
    m.get(key).filter(|v| !v.is_null())
}

fn nonblank_str(v: Option<&Value>) -> Option<&str> {
    v.and_then(Value::as_str).filter(|s| !s.is_empty())
}

/// The logical id named by `Ref` or `Fn::GetAtt` (SAM's `get_logical_id_from_intrinsic`).
fn logical_id_of(v: &Value) -> Option<&str> {
    let m = v.as_object().filter(|m| m.len() == 1)?;
    let (key, _) = m.iter().next()?;
    if !(key == "Ref" || key == "Condition" || key.starts_with("Fn::")) {
        return None;
    }
    if let Some(Value::String(id)) = m.get("Ref") {
        return Some(id);
    }
    match m.get("Fn::GetAtt") {
        Some(Value::Array(a)) if a.len() == 2 => a[0].as_str(),
        Some(Value::String(s)) => {
            let mut parts = s.split('.');
            match (parts.next(), parts.next(), parts.next()) {
                (Some(id), Some(_), None) => Some(id),
                _ => None,
            }
        }
        _ => None,
    }
}

/// Resolves a `Source` or `Destination` (`obj`); `other` is the other end as written (an events
/// rule's role is the one of its target that is the other end).
fn endpoint(
    obj: &Map<String, Value>,
    resources: &Map<String, Value>,
    other: &Map<String, Value>,
) -> Result<Endpoint, String> {
    let id_given = obj.contains_key("Id");
    let others_given = obj.keys().any(|k| k != "Id" && k != "Qualifier");
    if id_given == others_given {
        return Err(
            "Must provide 'Id' (with optional 'Qualifier') or a supported combination of other properties.".into(),
        );
    }
    let id = obj.get("Id");
    if !id.is_some_and(truthy) {
        let Some(t) = nonblank_str(obj.get("Type")) else {
            return Err("'Type' is missing or not a string.".into());
        };
        return Ok(Endpoint {
            logical_id: None,
            resource_type: cfn_type_of(t).to_string(),
            arn: get(obj, "Arn").cloned(),
            role_name: get(obj, "RoleName").cloned(),
            queue_url: get(obj, "QueueUrl").cloned(),
            resource_id: get(obj, "ResourceId").cloned(),
            name: get(obj, "Name").cloned(),
            qualifier: get(obj, "Qualifier").cloned(),
        });
    }
    let Some(id) = nonblank_str(id) else {
        return Err("'Id' is missing or not a string.".into());
    };
    let Some(resource) = resources.get(id).filter(|r| truthy(r)) else {
        return Err(format!("Unable to find resource with logical ID '{id}'."));
    };
    let Some(resource_type) = nonblank_str(resource.get("Type")) else {
        return Err("'Type' is missing or not a string.".into());
    };
    let empty = Map::new();
    let properties = resource.get("Properties").and_then(Value::as_object).unwrap_or(&empty);
    let cfn = cfn_resource_properties(resource_type, id);
    let output = |key: &str| {
        cfn.get("Outputs")
            .and_then(|o| o.get(key))
            .filter(|v| !v.is_null())
            .cloned()
    };
    let qualifier = if obj.contains_key("Qualifier") {
        get(obj, "Qualifier").cloned()
    } else {
        output("Qualifier")
    };
    Ok(Endpoint {
        logical_id: Some(id.to_string()),
        resource_type: resource_type.to_string(),
        arn: output("Arn"),
        role_name: role_name(&cfn, properties, other),
        queue_url: output("Url"),
        resource_id: output("Id"),
        name: output("Name"),
        qualifier,
    })
}

/// The profile's description of a resource type, its logical id put in place.
fn cfn_resource_properties(resource_type: &str, logical_id: &str) -> Value {
    let described = profiles()
        .get("CfnResourceProperties")
        .and_then(|c| c.get(resource_type))
        .cloned()
        .unwrap_or_else(|| json!({}));
    let id = Value::String(logical_id.to_string());
    // only `logicalId` is replaced, and it is never missing
    replace_variables(&described, &[("logicalId", Some(&id))]).unwrap_or(described)
}

/// `{"Ref": <role>}` for the role the resource's properties name (by `Ref` or `Fn::GetAtt`).
fn role_name(cfn: &Value, properties: &Map<String, Value>, other: &Map<String, Value>) -> Option<Value> {
    let role = match cfn.get("Inputs").and_then(|i| i.get("Role")) {
        Some(Value::String(property)) => properties.get(property),
        Some(Value::Object(f)) if f.get("Function").and_then(Value::as_str) == Some("GetEventsRuleRole") => {
            events_rule_role(properties, other)
        }
        _ => None,
    }?;
    if !truthy(role) {
        return None;
    }
    logical_id_of(role).map(|id| json!({ "Ref": id }))
}

/// The `RoleArn` of the rule's target that is the other end of the connector.
fn events_rule_role<'a>(properties: &'a Map<String, Value>, other: &Map<String, Value>) -> Option<&'a Value> {
    let other_id = other.get("Id");
    let other_arn = other.get("Arn").filter(|a| truthy(a));
    let targets = properties.get("Targets").and_then(Value::as_array)?;
    let target = targets.iter().filter_map(Value::as_object).find(|target| {
        let arn = target.get("Arn");
        let by_id = arn
            .and_then(logical_id_of)
            .is_some_and(|id| other_id.and_then(Value::as_str) == Some(id));
        let by_arn = other_arn.is_some_and(|o| arn.unwrap_or(&Value::Null) == o);
        by_id || by_arn
    })?;
    target.get("RoleArn").filter(|v| !v.is_null())
}

/// Puts the variables' values (`%{Name}`) in place, as SAM's `profile_replace`: a string that is
/// exactly one variable becomes its value, a string holding some becomes an `Fn::Sub`. A variable
/// without a value is reported (`<name> is missing.`).
fn replace_variables(v: &Value, values: &[(&str, Option<&Value>)]) -> Result<Value, String> {
    match v {
        Value::Object(m) => m
            .iter()
            .map(|(k, v)| Ok((k.clone(), replace_variables(v, values)?)))
            .collect::<Result<Map<_, _>, String>>()
            .map(Value::Object),
        Value::Array(a) => a
            .iter()
            .map(|v| replace_variables(v, values))
            .collect::<Result<Vec<_>, String>>()
            .map(Value::Array),
        Value::String(s) => replace_in_string(s, values),
        other => Ok(other.clone()),
    }
}

fn replace_in_string(s: &str, values: &[(&str, Option<&Value>)]) -> Result<Value, String> {
    let mut s = s.to_string();
    let mut sub_values = Map::new();
    for (name, value) in values {
        let pattern = format!("%{{{name}}}");
        if !s.contains(&pattern) {
            continue;
        }
        let Some(value) = value else {
            return Err(format!("{name} is missing."));
        };
        if s == pattern {
            return Ok((*value).clone());
        }
        // Fn::Sub's variables are alphanumeric
        let sub_name: String = name.chars().filter(|c| c.is_alphanumeric()).collect();
        s = s.replace(&pattern, &format!("${{{sub_name}}}"));
        sub_values.insert(sub_name, (*value).clone());
    }
    if !has_sub_variable(&s) {
        Ok(Value::String(s))
    } else if sub_values.is_empty() {
        Ok(json!({ "Fn::Sub": s }))
    } else {
        Ok(json!({ "Fn::Sub": [s, sub_values] }))
    }
}

/// Whether the string matches `\${.+}` (a `${`, something, a `}` on the same line).
fn has_sub_variable(s: &str) -> bool {
    s.match_indices("${").any(|(i, _)| {
        let line = s[i + 2..].split('\n').next().unwrap_or("");
        line.char_indices().skip(1).any(|(_, c)| c == '}')
    })
}

/// The access a connector asks for, without repeats (SAM makes a set of them).
fn permissions(props: &Map<String, Value>) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    let names: Vec<&str> = match props.get("Permissions") {
        Some(Value::Array(a)) => a.iter().filter_map(Value::as_str).collect(),
        Some(Value::Object(m)) => m.keys().map(String::as_str).collect(),
        _ => Vec::new(),
    };
    for n in names {
        if !out.iter().any(|o| o == n) {
            out.push(n.to_string());
        }
    }
    out
}

/// What one translation of a connector needs to know.
struct Connector<'a> {
    id: &'a str,
    permissions: Vec<String>,
    depends_on: Option<Value>,
    attributes: Map<String, Value>,
}

impl Connector<'_> {
    fn resource(&self, logical_id: String, resource_type: &str) -> CfnResource {
        let mut r = CfnResource::new(logical_id, resource_type);
        r.depends_on = self.depends_on.clone();
        r.attributes = self.attributes.clone();
        r
    }

    fn name(&self, kind: &str, dest_index: usize, multi_dest: bool) -> String {
        if multi_dest {
            format!("{}{kind}Destination{dest_index}", self.id)
        } else {
            format!("{}{kind}", self.id)
        }
    }

    /// The statements of the access categories asked for, in the profile's order.
    fn policy_document(&self, profile: &Map<String, Value>) -> Value {
        let statements: Vec<Value> = access_categories(profile)
            .filter(|(name, _)| self.permissions.iter().any(|p| p == *name))
            .flat_map(|(_, c)| {
                c.get("Statement")
                    .and_then(Value::as_array)
                    .cloned()
                    .unwrap_or_default()
            })
            .collect();
        json!({ "Version": "2012-10-17", "Statement": statements })
    }
}

fn access_categories(profile: &Map<String, Value>) -> impl Iterator<Item = (&String, &Value)> {
    profile
        .get("AccessCategories")
        .and_then(Value::as_object)
        .into_iter()
        .flatten()
}

/// Translates a connector: per destination, the policy or permissions its profile says.
pub(crate) fn translate(
    ctx: &mut Context<'_>,
    id: &str,
    resource: &Value,
    sam_resources: &Map<String, Value>,
) -> Result<Vec<CfnResource>, Failure> {
    let empty = Map::new();
    let props = resource.get("Properties").and_then(Value::as_object).unwrap_or(&empty);
    validate::properties(
        id,
        CONNECTOR_TYPE,
        props,
        PROPERTIES,
        &["Source", "Destination", "Permissions"],
    )?;
    let source_obj = props.get("Source").and_then(Value::as_object).unwrap_or(&empty);
    let (destinations, multi_dest): (Vec<&Map<String, Value>>, bool) = match props.get("Destination") {
        Some(Value::Object(d)) => (vec![d], false),
        Some(Value::Array(a)) => (a.iter().filter_map(Value::as_object).collect(), true),
        _ => (Vec::new(), true),
    };
    let connector = Connector {
        id,
        permissions: permissions(props),
        depends_on: resource.get("DependsOn").cloned(),
        attributes: resource_attributes(resource),
    };

    let mut generated: Vec<CfnResource> = Vec::new();
    for (dest_index, dest_obj) in destinations.into_iter().enumerate() {
        let destination = endpoint(dest_obj, &ctx.resources_now, source_obj).map_err(|m| res_err(id, m))?;
        let source = endpoint(source_obj, &ctx.resources_now, dest_obj).map_err(|m| res_err(id, m))?;
        let mut resources = generate(ctx, &connector, &source, &destination, dest_index, multi_dest)?;
        let metadata = json!({
            "aws:sam:connectors": {
                id: {
                    "Source": {"Type": original_type(sam_resources, &source)},
                    "Destination": {"Type": original_type(sam_resources, &destination)},
                }
            }
        });
        for r in &mut resources {
            let mut merged = r
                .attributes
                .get("Metadata")
                .and_then(Value::as_object)
                .cloned()
                .unwrap_or_default();
            merged.extend(metadata.as_object().cloned().unwrap_or_default());
            r.attributes.insert("Metadata".into(), Value::Object(merged));
        }
        generated.extend(resources);
    }

    let generated_ids: Vec<Value> = generated.iter().map(|r| Value::String(r.logical_id.clone())).collect();
    replace_depends_on(&mut ctx.resources_now, id, &generated_ids);
    if generated.is_empty() {
        return Err(res_err(id, "'Destination' is an empty list"));
    }
    Ok(generated)
}

/// The type of the end as written in the template (a serverless type stays serverless).
fn original_type(sam_resources: &Map<String, Value>, end: &Endpoint) -> Value {
    end.logical_id
        .as_ref()
        .and_then(|id| sam_resources.get(id))
        .and_then(|r| r.get("Type"))
        .filter(|t| truthy(t))
        .cloned()
        .unwrap_or_else(|| Value::String(end.resource_type.clone()))
}

fn generate(
    ctx: &mut Context<'_>,
    connector: &Connector<'_>,
    source: &Endpoint,
    destination: &Endpoint,
    dest_index: usize,
    multi_dest: bool,
) -> Result<Vec<CfnResource>, Failure> {
    let id = connector.id;
    let (s_type, d_type) = (&source.resource_type, &destination.resource_type);
    let Some(profile) = profiles()
        .get("Permissions")
        .and_then(|p| p.get(s_type))
        .and_then(|p| p.get(d_type))
        .and_then(Value::as_object)
    else {
        return Err(res_err(
            id,
            format!(
                "Unable to create connector from {s_type} to {d_type}; it's not supported or the template is invalid."
            ),
        ));
    };
    let profile_type = profile.get("Type").and_then(Value::as_str).unwrap_or("");
    let empty = Map::new();
    let properties = profile.get("Properties").and_then(Value::as_object).unwrap_or(&empty);

    let categories: Vec<&str> = access_categories(properties).map(|(k, _)| k.as_str()).collect();
    let valid = categories.join(", ");
    if connector.permissions.is_empty() {
        return Err(res_err(
            id,
            format!("'Permissions' cannot be empty; valid values are: {valid}."),
        ));
    }
    if connector.permissions.iter().any(|p| !categories.contains(&p.as_str())) {
        return Err(res_err(
            id,
            format!("Unsupported 'Permissions' provided for connector from {s_type} to {d_type}; valid values are: {valid}."),
        ));
    }
    if let Some(combinations) = properties.get("ValidAccessCategories").and_then(Value::as_array) {
        let combinations: Vec<Vec<&str>> = combinations
            .iter()
            .map(|c| {
                let mut c: Vec<&str> = c.as_array().into_iter().flatten().filter_map(Value::as_str).collect();
                c.sort_unstable();
                c
            })
            .collect();
        let mut asked: Vec<&str> = connector.permissions.iter().map(String::as_str).collect();
        asked.sort_unstable();
        if !combinations.is_empty() && !combinations.contains(&asked) {
            let listed: Vec<String> = combinations.iter().map(|c| c.join(" + ")).collect();
            return Err(res_err(
                id,
                format!(
                    "Unsupported 'Permissions' provided for connector from {s_type} to {d_type}; valid combinations are: {}.",
                    listed.join(", ")
                ),
            ));
        }
    }

    let values: [(&str, Option<&Value>); 8] = [
        ("Source.Arn", source.arn.as_ref()),
        ("Destination.Arn", destination.arn.as_ref()),
        ("Source.ResourceId", source.resource_id.as_ref()),
        ("Destination.ResourceId", destination.resource_id.as_ref()),
        ("Source.Name", source.name.as_ref()),
        ("Destination.Name", destination.name.as_ref()),
        ("Source.Qualifier", source.qualifier.as_ref()),
        ("Destination.Qualifier", destination.qualifier.as_ref()),
    ];
    let replaced = replace_variables(&Value::Object(properties.clone()), &values).map_err(|m| res_err(id, m))?;
    let profile = replaced.as_object().unwrap_or(&empty);
    let end = End::of(profile.get("SourcePolicy").and_then(Value::as_bool).unwrap_or(false));
    let on = match end {
        End::Source => source,
        End::Destination => destination,
    };
    let missing = |what: &str| res_err(id, format!("Unable to get {what} from '{}' resource.", end.name()));

    match profile_type {
        "AWS_IAM_ROLE_MANAGED_POLICY" => {
            let role = on.role_name.clone().ok_or_else(|| missing("IAM role name"))?;
            let mut policy = connector.resource(
                connector.name("Policy", dest_index, multi_dest),
                "AWS::IAM::ManagedPolicy",
            );
            policy.set("PolicyDocument", Some(connector.policy_document(profile)));
            policy.set("Roles", Some(json!([role])));
            match profile.get("DependedBy").and_then(Value::as_str) {
                Some("DESTINATION_EVENT_SOURCE_MAPPING") => {
                    if let (Some(s), Some(d)) = (&source.logical_id, &destination.logical_id) {
                        let mappings = event_source_mappings(&ctx.resources_now, s, d);
                        // only one mapping may join a source to a function
                        if let [only] = mappings.as_slice() {
                            add_depends_on(&mut ctx.resources_now, only, &policy.logical_id);
                        }
                    }
                }
                Some("SOURCE") => {
                    if let Some(s) = &source.logical_id {
                        add_depends_on(&mut ctx.resources_now, s, &policy.logical_id);
                    }
                }
                _ => {}
            }
            Ok(vec![policy])
        }
        "AWS_SQS_QUEUE_POLICY" => {
            let url = on.queue_url.clone().ok_or_else(|| missing("SQS queue URL"))?;
            let mut policy = connector.resource(
                connector.name("QueuePolicy", dest_index, multi_dest),
                "AWS::SQS::QueuePolicy",
            );
            policy.set("PolicyDocument", Some(connector.policy_document(profile)));
            policy.set("Queues", Some(json!([url])));
            Ok(vec![policy])
        }
        "AWS_SNS_TOPIC_POLICY" => {
            let arn = on.arn.clone().ok_or_else(|| missing("SNS topic ARN"))?;
            let mut policy = connector.resource(
                connector.name("TopicPolicy", dest_index, multi_dest),
                "AWS::SNS::TopicPolicy",
            );
            policy.set("Topics", Some(json!([arn])));
            policy.set("PolicyDocument", Some(connector.policy_document(profile)));
            Ok(vec![policy])
        }
        "AWS_LAMBDA_PERMISSION" => {
            let arn = on.arn.clone().ok_or_else(|| missing("Lambda function ARN"))?;
            Ok(access_categories(profile)
                .filter(|(name, _)| connector.permissions.iter().any(|p| p == *name))
                .map(|(name, category)| {
                    let mut permission = connector.resource(
                        connector.name(&format!("{name}LambdaPermission"), dest_index, multi_dest),
                        "AWS::Lambda::Permission",
                    );
                    permission.set("Action", category.get("Action").cloned());
                    permission.set("FunctionName", Some(arn.clone()));
                    permission.set("Principal", category.get("Principal").cloned());
                    permission.set("SourceArn", category.get("SourceArn").cloned());
                    permission.set("SourceAccount", category.get("SourceAccount").cloned());
                    permission
                })
                .collect())
        }
        other => Err(res_err(id, format!("Profile type {other} is not supported"))),
    }
}

/// The event source mappings from `source` to the function `function`.
fn event_source_mappings(resources: &Map<String, Value>, source: &str, function: &str) -> Vec<String> {
    resources
        .iter()
        .filter(|(_, r)| r.get("Type").and_then(Value::as_str) == Some("AWS::Lambda::EventSourceMapping"))
        .filter(|(_, r)| {
            let props = r.get("Properties");
            let of = |key: &str| props.and_then(|p| p.get(key)).and_then(logical_id_of);
            of("FunctionName") == Some(function) && of("EventSourceArn") == Some(source)
        })
        .map(|(id, _)| id.clone())
        .collect()
}

/// `DependsOn` as a list (a single value becomes a list of it).
fn depends_on_list(v: Option<&Value>) -> Vec<Value> {
    match v {
        None => Vec::new(),
        Some(Value::Array(a)) => a.clone(),
        Some(other) => vec![other.clone()],
    }
}

fn insert_unique(list: &mut Vec<Value>, values: &[Value]) {
    for v in values {
        if !list.contains(v) {
            list.push(v.clone());
        }
    }
}

/// Makes the resource `logical_id` (if there is one) depend on `on`.
fn add_depends_on(resources: &mut Map<String, Value>, logical_id: &str, on: &str) {
    let Some(resource) = resources.get_mut(logical_id).and_then(Value::as_object_mut) else {
        return;
    };
    let mut deps = depends_on_list(resource.get("DependsOn"));
    insert_unique(&mut deps, &[Value::String(on.to_string())]);
    resource.insert("DependsOn".into(), Value::Array(deps));
}

/// Every resource that depends on the connector depends on what it became instead.
fn replace_depends_on(resources: &mut Map<String, Value>, connector_id: &str, generated: &[Value]) {
    let connector = Value::String(connector_id.to_string());
    for resource in resources.values_mut().filter_map(Value::as_object_mut) {
        let mut deps = depends_on_list(resource.get("DependsOn"));
        let Some(i) = deps.iter().position(|d| *d == connector) else {
            continue;
        };
        deps.remove(i);
        insert_unique(&mut deps, generated);
        resource.insert("DependsOn".into(), Value::Array(deps));
    }
}

#[cfg(test)]
mod tests {
    use super::super::{transform, SamOptions};
    use super::*;

    fn transformed(template: Value) -> Value {
        match transform(&template, &SamOptions::default()) {
            Ok(v) => v,
            Err(e) => panic!("transform failed: {e}"),
        }
    }

    fn function() -> Value {
        json!({
            "Type": "AWS::Serverless::Function",
            "Properties": {"Runtime": "python3.12", "Handler": "index.handler", "InlineCode": "x"}
        })
    }

    #[test]
    fn a_function_to_table_connector_gives_the_read_policy_on_the_functions_role() {
        let out = transformed(json!({
            "Transform": "AWS::Serverless-2016-10-31",
            "Resources": {
                "Fn": function(),
                "Table": {"Type": "AWS::DynamoDB::Table"},
                "FnToTable": {
                    "Type": "AWS::Serverless::Connector",
                    "Properties": {
                        "Source": {"Id": "Fn"},
                        "Destination": {"Id": "Table"},
                        "Permissions": ["Read"]
                    }
                }
            }
        }));
        let policy = &out["Resources"]["FnToTablePolicy"];
        assert_eq!(policy["Type"], "AWS::IAM::ManagedPolicy");
        assert_eq!(policy["Properties"]["Roles"], json!([{"Ref": "FnRole"}]));
        let statements = policy["Properties"]["PolicyDocument"]["Statement"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        assert_eq!(statements.len(), 1);
        assert!(statements[0]["Action"]
            .as_array()
            .is_some_and(|a| a.contains(&json!("dynamodb:GetItem")) && !a.contains(&json!("dynamodb:PutItem"))));
        assert_eq!(
            statements[0]["Resource"],
            json!([
                {"Fn::GetAtt": ["Table", "Arn"]},
                {"Fn::Sub": ["${DestinationArn}/index/*", {"DestinationArn": {"Fn::GetAtt": ["Table", "Arn"]}}]}
            ])
        );
        assert_eq!(
            policy["Metadata"]["aws:sam:connectors"]["FnToTable"]["Source"]["Type"],
            "AWS::Serverless::Function"
        );
        assert!(out["Resources"].get("FnToTable").is_none());
    }

    #[test]
    fn an_embedded_connector_is_named_after_its_resource_and_the_attribute_is_removed() {
        let out = transformed(json!({
            "Transform": "AWS::Serverless-2016-10-31",
            "Resources": {
                "Fn": function(),
                "Topic": {
                    "Type": "AWS::SNS::Topic",
                    "Connectors": {"ToFn": {"Properties": {"Destination": {"Id": "Fn"}, "Permissions": ["Write"]}}}
                }
            }
        }));
        let permission = &out["Resources"]["TopicToFnWriteLambdaPermission"];
        assert_eq!(permission["Type"], "AWS::Lambda::Permission");
        assert_eq!(permission["Properties"]["Principal"], "sns.amazonaws.com");
        assert_eq!(permission["Properties"]["SourceArn"], json!({"Ref": "Topic"}));
        assert_eq!(
            permission["Properties"]["FunctionName"],
            json!({"Fn::GetAtt": ["Fn", "Arn"]})
        );
        assert!(out["Resources"]["Topic"].get("Connectors").is_none());
    }

    #[test]
    fn resources_depending_on_a_connector_depend_on_what_it_became() {
        let out = transformed(json!({
            "Transform": "AWS::Serverless-2016-10-31",
            "Resources": {
                "Fn": function(),
                "Queue": {"Type": "AWS::SQS::Queue"},
                "Conn": {
                    "Type": "AWS::Serverless::Connector",
                    "Properties": {"Source": {"Id": "Fn"}, "Destination": {"Id": "Queue"}, "Permissions": ["Write"]}
                },
                "Later": {"Type": "AWS::SNS::Topic", "DependsOn": "Conn"}
            }
        }));
        assert_eq!(out["Resources"]["Later"]["DependsOn"], json!(["ConnPolicy"]));
    }

    #[test]
    fn unsupported_pairs_and_permissions_are_refused_with_sams_words() {
        let template = json!({
            "Transform": "AWS::Serverless-2016-10-31",
            "Resources": {
                "Fn": function(),
                "Queue": {"Type": "AWS::SQS::Queue"},
                "Bad": {
                    "Type": "AWS::Serverless::Connector",
                    "Properties": {"Source": {"Id": "Fn"}, "Destination": {"Id": "Queue"}, "Permissions": ["Delete"]}
                }
            }
        });
        let Err(e) = transform(&template, &SamOptions::default()) else {
            panic!("an unknown permission was accepted");
        };
        assert_eq!(
            e.errors[0].full_message(),
            "Resource with id [Bad] is invalid. Unsupported 'Permissions' provided for connector from AWS::Lambda::Function to AWS::SQS::Queue; valid values are: Read, Write."
        );
    }

    #[test]
    fn variables_inside_strings_become_fn_sub() {
        let arn = json!({"Ref": "T"});
        let values = [("Destination.Arn", Some(&arn))];
        assert_eq!(replace_in_string("%{Destination.Arn}", &values), Ok(arn.clone()));
        assert_eq!(
            replace_in_string("%{Destination.Arn}/*", &values),
            Ok(json!({"Fn::Sub": ["${DestinationArn}/*", {"DestinationArn": arn}]}))
        );
        assert_eq!(
            replace_in_string("arn:${AWS::Partition}:x", &values),
            Ok(json!({"Fn::Sub": "arn:${AWS::Partition}:x"}))
        );
        assert_eq!(
            replace_in_string("%{Source.Arn}", &[("Source.Arn", None)]),
            Err("Source.Arn is missing.".to_string())
        );
        assert!(!has_sub_variable("${}"));
    }
}
