//! Pull event sources: the events a function reads through an `AWS::Lambda::EventSourceMapping`
//! (SQS, Kinesis, DynamoDB, MSK, self-managed Kafka, Amazon MQ, DocumentDB), with the properties,
//! checks and execution-role policies of aws-sam-translator's `PullEventSource` classes.

use serde_json::{json, Map, Value};

use super::intrinsics::is_intrinsic;
use super::{res_err, truthy, CfnResource, Context, Failure};

/// The event types that map to an event source mapping.
pub(crate) const TYPES: &[&str] = &[
    "SQS",
    "Kinesis",
    "DynamoDB",
    "MSK",
    "MQ",
    "SelfManagedKafka",
    "DocumentDB",
];

#[derive(Clone, Copy, PartialEq)]
enum Kind {
    Int,
    Bool,
    Dict,
    List,
    Str,
    Any,
}

/// `PullEventSource.property_types`, in its order.
const BASE: &[(&str, Kind)] = &[
    ("BatchSize", Kind::Int),
    ("StartingPosition", Kind::Any),
    ("StartingPositionTimestamp", Kind::Any),
    ("Enabled", Kind::Bool),
    ("MaximumBatchingWindowInSeconds", Kind::Int),
    ("MaximumRetryAttempts", Kind::Int),
    ("BisectBatchOnFunctionError", Kind::Bool),
    ("MaximumRecordAgeInSeconds", Kind::Int),
    ("DestinationConfig", Kind::Dict),
    ("ParallelizationFactor", Kind::Int),
    ("Topics", Kind::List),
    ("Queues", Kind::List),
    ("SourceAccessConfigurations", Kind::List),
    ("SecretsManagerKmsKeyId", Kind::Str),
    ("TumblingWindowInSeconds", Kind::Int),
    ("FunctionResponseTypes", Kind::List),
    ("KafkaBootstrapServers", Kind::List),
    ("FilterCriteria", Kind::Dict),
    ("KmsKeyArn", Kind::Any),
    ("ConsumerGroupId", Kind::Str),
    ("ScalingConfig", Kind::Dict),
    ("ProvisionedPollerConfig", Kind::Dict),
    ("SchemaRegistryConfig", Kind::Dict),
    ("MetricsConfig", Kind::Dict),
    ("LoggingConfig", Kind::Dict),
];

/// What each type adds to the base properties: (name, kind, required). A base property that is
/// required for a type (`StartingPosition` of streams) keeps its place in the order.
fn extra(t: &str) -> &'static [(&'static str, Kind, bool)] {
    match t {
        "SQS" => &[("Queue", Kind::Any, true)],
        "Kinesis" | "DynamoDB" | "MSK" => &[("Stream", Kind::Any, true), ("StartingPosition", Kind::Any, true)],
        "MQ" => &[("Broker", Kind::Any, true), ("DynamicPolicyName", Kind::Bool, false)],
        "DocumentDB" => &[
            ("Cluster", Kind::Any, true),
            ("DatabaseName", Kind::Any, true),
            ("CollectionName", Kind::Any, false),
            ("FullDocument", Kind::Any, false),
        ],
        _ => &[],
    }
}

/// The properties of type `t` in SAM's order, with their kind and whether they are required.
fn property_types(t: &str) -> Vec<(&'static str, Kind, bool)> {
    let extra = extra(t);
    let mut out: Vec<(&str, Kind, bool)> = BASE
        .iter()
        .map(|(n, k)| match extra.iter().find(|(e, _, _)| e == n) {
            Some(e) => *e,
            None => (*n, *k, false),
        })
        .collect();
    out.extend(extra.iter().filter(|(n, _, _)| !BASE.iter().any(|(b, _)| b == n)));
    out
}

fn kind_ok(kind: Kind, v: &Value) -> bool {
    match kind {
        // Python's bool is an int
        Kind::Int => v.is_i64() || v.is_u64() || v.is_boolean(),
        Kind::Bool => v.is_boolean(),
        Kind::Dict => v.is_object(),
        Kind::List => v.is_array(),
        Kind::Str => v.is_string(),
        Kind::Any => true,
    }
}

/// `from_dict` and `validate_properties`: unknown properties, then each property in order
/// (missing when required, or of the wrong type unless it is an intrinsic function).
pub(crate) fn validate(lid: &str, t: &str, ep: &Map<String, Value>) -> Result<(), Failure> {
    let types = property_types(t);
    if let Some(k) = ep.keys().find(|k| !types.iter().any(|(n, _, _)| n == k)) {
        return Err(res_err(
            lid,
            format!("property {k} not defined for resource of type {t}"),
        ));
    }
    for (name, kind, required) in types {
        match ep.get(name).filter(|v| !v.is_null()) {
            None if required => return Err(res_err(lid, format!("Missing required property '{name}'."))),
            None => {}
            // SAM leaves any one-key mapping to CloudFormation, as it would an intrinsic function
            Some(v) if v.as_object().is_some_and(|m| m.len() == 1) || kind_ok(kind, v) => {}
            Some(_) => return Err(res_err(lid, format!("Type of property '{name}' is invalid."))),
        }
    }
    Ok(())
}

/// The mapping's properties passed through as they are written.
const PASSED: &[&str] = &[
    "StartingPosition",
    "StartingPositionTimestamp",
    "BatchSize",
    "Enabled",
    "MaximumBatchingWindowInSeconds",
    "MaximumRetryAttempts",
    "BisectBatchOnFunctionError",
    "MaximumRecordAgeInSeconds",
    "ParallelizationFactor",
    "Topics",
    "Queues",
    "SourceAccessConfigurations",
    "TumblingWindowInSeconds",
    "FunctionResponseTypes",
    "FilterCriteria",
    "KmsKeyArn",
    "ScalingConfig",
    "ProvisionedPollerConfig",
    "MetricsConfig",
    "LoggingConfig",
];

/// One pull event: checks made while translating it, and what it adds to the execution role.
pub(crate) struct Pull<'a> {
    pub function_id: &'a str,
    pub event_id: &'a str,
    pub lid: &'a str,
    pub t: &'a str,
    pub ep: &'a Map<String, Value>,
}

impl Pull<'_> {
    fn err(&self, message: impl std::fmt::Display) -> Failure {
        res_err(
            self.function_id,
            format!("Event with id [{}] is invalid. {message}", self.event_id),
        )
    }

    /// An `InvalidEventException` raised with the event's full logical id.
    fn err_lid(&self, message: impl std::fmt::Display) -> Failure {
        res_err(
            self.function_id,
            format!("Event with id [{}] is invalid. {message}", self.lid),
        )
    }

    fn get(&self, name: &str) -> Option<&Value> {
        self.ep.get(name).filter(|v| !v.is_null())
    }

    fn set(&self, m: &mut CfnResource, to: &str, from: &str) {
        m.set(to, self.get(from).cloned());
    }

    fn managed_policy(&self) -> Option<&'static str> {
        match self.t {
            "SQS" => Some("service-role/AWSLambdaSQSQueueExecutionRole"),
            "Kinesis" => Some("service-role/AWSLambdaKinesisExecutionRole"),
            "DynamoDB" => Some("service-role/AWSLambdaDynamoDBExecutionRole"),
            "MSK" => Some("service-role/AWSLambdaMSKExecutionRole"),
            _ => None,
        }
    }

    fn source_arn(&self) -> Option<&Value> {
        match self.t {
            "SQS" => self.get("Queue"),
            "MQ" => self.get("Broker"),
            "DocumentDB" => self.get("Cluster"),
            "SelfManagedKafka" => None,
            _ => self.get("Stream"),
        }
    }

    /// The event source mapping, and the policies the function's generated role gets.
    pub(crate) fn generate(
        &self,
        ctx: &Context<'_>,
        target: Value,
        passthrough: &Map<String, Value>,
        role: Option<&mut CfnResource>,
    ) -> Result<CfnResource, Failure> {
        let mut m = CfnResource::new(self.lid.to_string(), "AWS::Lambda::EventSourceMapping");
        m.attributes = passthrough.clone();
        m.set("FunctionName", Some(target));
        m.set("EventSourceArn", self.source_arn().cloned());
        for name in PASSED {
            self.set(&mut m, name, name);
        }
        if let Some(fc) = self.get("FilterCriteria").filter(|v| truthy(v) && !is_intrinsic(v)) {
            let keys: Vec<&String> = fc.as_object().map(|m| m.keys().collect()).unwrap_or_default();
            if !(keys.is_empty() || keys == ["Filters"]) {
                return Err(self.err("FilterCriteria field has a wrong format"));
            }
        }
        if let Some(servers) = self.get("KafkaBootstrapServers").filter(|v| truthy(v)) {
            m.set(
                "SelfManagedEventSource",
                Some(json!({"Endpoints": {"KafkaBootstrapServers": servers}})),
            );
        }
        let kafka_config = match self.t {
            "MSK" => Some("AmazonManagedKafkaEventSourceConfig"),
            "SelfManagedKafka" => Some("SelfManagedKafkaEventSourceConfig"),
            _ => None,
        };
        let mut kafka = Map::new();
        if let Some(group) = self.get("ConsumerGroupId").filter(|v| truthy(v)) {
            if kafka_config.is_none() {
                return Err(self.err_lid(format!(
                    "Property ConsumerGroupId not defined for resource of type {}.",
                    self.t
                )));
            }
            kafka.insert("ConsumerGroupId".into(), group.clone());
        }
        if let Some(registry) = self.get("SchemaRegistryConfig").filter(|v| truthy(v)) {
            if kafka_config.is_some() {
                kafka.insert("SchemaRegistryConfig".into(), registry.clone());
            }
        }
        if let (Some(name), false) = (kafka_config, kafka.is_empty()) {
            m.set(name, Some(Value::Object(kafka)));
        }
        let mut destination_policy = None;
        if let Some(dc) = self.get("DestinationConfig").filter(|v| truthy(v)) {
            let mut dc = dc.clone();
            let Some(on_failure) = dc.get_mut("OnFailure").and_then(Value::as_object_mut) else {
                return Err(self.err_lid("Property 'DestinationConfig.OnFailure' should be a map."));
            };
            let kind = on_failure.get("Type").filter(|v| truthy(v)).cloned();
            if let Some(kind) = kind {
                on_failure.remove("Type");
                let destination = on_failure.get("Destination").cloned().unwrap_or(Value::Null);
                let statements = match kind.as_str() {
                    Some("SQS") => Some((
                        "SQSPolicy",
                        json!([{"Action": "sqs:SendMessage", "Effect": "Allow", "Resource": destination}]),
                    )),
                    Some("SNS") => Some((
                        "SNSPolicy",
                        json!([{"Action": "sns:publish", "Effect": "Allow", "Resource": destination}]),
                    )),
                    Some("S3") => Some((
                        "S3Policy",
                        json!([
                            {"Action": "s3:PutObject", "Effect": "Allow", "Resource": {"Fn::Join": ["/", [destination, "*"]]}},
                            {"Action": "s3:ListBucket", "Effect": "Allow", "Resource": destination},
                        ]),
                    )),
                    Some("Kafka") => None,
                    _ => {
                        return Err(self.err_lid("The only valid values for 'Type' are 'SQS', 'SNS', 'S3', and 'Kafka'"))
                    }
                };
                destination_policy = statements.map(|(suffix, statements)| {
                    json!({"PolicyName": format!("{}{suffix}", self.lid), "PolicyDocument": {"Statement": statements}})
                });
            }
            m.set("DestinationConfig", Some(dc));
        }
        if self.t == "DocumentDB" {
            let mut config = Map::new();
            config.insert(
                "DatabaseName".into(),
                self.get("DatabaseName").cloned().unwrap_or(Value::Null),
            );
            for k in ["CollectionName", "FullDocument"] {
                if let Some(v) = self.get(k).filter(|v| truthy(v)) {
                    config.insert(k.into(), v.clone());
                }
            }
            m.set("DocumentDBEventSourceConfig", Some(Value::Object(config)));
        }
        // `_link_policy`: the statements are worked out (and checked) with or without a role
        let statements = self.policy_statements(ctx)?;
        if let Some(role) = role {
            if let Some(name) = self.managed_policy() {
                let arn = json!(ctx.managed_policy_arn(name));
                if let Some(Value::Array(arns)) = role.properties.get_mut("ManagedPolicyArns") {
                    if !arns.contains(&arn) {
                        arns.push(arn);
                    }
                }
            }
            for policy in statements.into_iter().chain(destination_policy) {
                let policies = role.properties.entry("Policies").or_insert_with(|| json!([]));
                if let Value::Array(policies) = policies {
                    let same_document = policies
                        .iter()
                        .any(|p| p.get("PolicyDocument") == policy.get("PolicyDocument"));
                    if !policies.contains(&policy) && !same_document {
                        policies.push(policy);
                    }
                }
            }
        }
        Ok(m)
    }

    /// `get_policy_statements`: the inline policies of the type (the checks of its access
    /// configurations are made here, as SAM makes them).
    fn policy_statements(&self, ctx: &Context<'_>) -> Result<Vec<Value>, Failure> {
        match self.t {
            "MSK" => {
                let mut statements = self.schema_registry_statements(ctx)?;
                if let Some(Value::Array(confs)) = self.get("SourceAccessConfigurations") {
                    for conf in confs {
                        if conf.get("Type") == Some(&json!("CLIENT_CERTIFICATE_TLS_AUTH")) {
                            if let Some(uri) = conf.get("URI").filter(|v| truthy(v)) {
                                statements.push(secret(uri));
                            }
                        }
                    }
                }
                if statements.is_empty() {
                    return Ok(Vec::new());
                }
                Ok(vec![
                    json!({"PolicyName": "MSKExecutionRolePolicy", "PolicyDocument": {"Statement": statements}}),
                ])
            }
            "MQ" => {
                let uri = self.access_uri(&["BASIC_AUTH", "VIRTUAL_HOST"], "BASIC_AUTH")?;
                let mut statements = vec![
                    secret(&uri),
                    json!({"Action": ["mq:DescribeBroker"], "Effect": "Allow", "Resource": self.get("Broker")}),
                ];
                if let Some(key) = self.kms_key()? {
                    statements.push(json!({"Action": "kms:Decrypt", "Effect": "Allow", "Resource": kms_arn(&key)}));
                }
                let name = if self.get("DynamicPolicyName").is_some_and(truthy) {
                    format!("{}AMQPolicy", self.lid)
                } else {
                    "SamAutoGeneratedAMQPolicy".into()
                };
                Ok(vec![
                    json!({"PolicyName": name, "PolicyDocument": {"Statement": statements}}),
                ])
            }
            "DocumentDB" => {
                let uri = self.access_uri(&["BASIC_AUTH"], "BASIC_AUTH")?;
                let sub = |what: &str| json!({"Fn::Sub": format!("arn:${{AWS::Partition}}:rds:${{AWS::Region}}:${{AWS::AccountId}}:{what}")});
                let mut statements = vec![
                    secret(&uri),
                    json!({"Action": ["rds:DescribeDBClusterParameters"], "Effect": "Allow", "Resource": sub("cluster-pg:*")}),
                    json!({"Action": ["rds:DescribeDBSubnetGroups"], "Effect": "Allow", "Resource": sub("subgrp:*")}),
                    json!({"Action": ["rds:DescribeDBClusters"], "Effect": "Allow", "Resource": self.get("Cluster")}),
                    vpc_statement(),
                ];
                if let Some(key) = self.kms_key()? {
                    statements.push(json!({"Action": ["kms:Decrypt"], "Effect": "Allow", "Resource": kms_arn(&key)}));
                }
                Ok(vec![
                    json!({"PolicyName": "SamAutoGeneratedDocumentDBPolicy", "PolicyDocument": {"Statement": statements}}),
                ])
            }
            "SelfManagedKafka" => self.self_managed_kafka(ctx),
            _ => Ok(Vec::new()),
        }
    }

    fn kms_key(&self) -> Result<Option<String>, Failure> {
        match self.get("SecretsManagerKmsKeyId").filter(|v| truthy(v)) {
            None => Ok(None),
            Some(Value::String(s)) => Ok(Some(s.clone())),
            Some(_) => Err(self.err("Property 'SecretsManagerKmsKeyId' should be a string.")),
        }
    }

    /// `_validate_source_access_configurations`: the URI of the one configuration of the
    /// required type.
    fn access_uri(&self, supported: &[&str], required: &str) -> Result<Value, Failure> {
        let confs = match self.get("SourceAccessConfigurations").filter(|v| truthy(v)) {
            None => {
                return Err(self.err(format!(
                    "No SourceAccessConfigurations for Amazon {} event provided.",
                    self.t
                )))
            }
            Some(Value::Array(a)) => a,
            Some(_) => return Err(self.err("Provided SourceAccessConfigurations cannot be parsed into a list.")),
        };
        let mut found: Option<Value> = None;
        for (i, conf) in confs.iter().enumerate() {
            let Some(conf) = conf.as_object() else {
                return Err(self.err(format!("Property 'SourceAccessConfigurations[{i}]' should be a map.")));
            };
            let Some(t) = conf.get("Type").and_then(Value::as_str) else {
                return Err(self.err(format!(
                    "Property 'SourceAccessConfigurations[{i}].Type' should be a string."
                )));
            };
            if !supported.contains(&t) {
                return Err(self.err(format!(
                    "Invalid property Type specified in SourceAccessConfigurations. The supported values are: {}.",
                    super::python_list(supported)
                )));
            }
            if t == required {
                if found.is_some() {
                    return Err(self.err(format!(
                        "Multiple {required} properties specified in SourceAccessConfigurations."
                    )));
                }
                match conf.get("URI").filter(|v| truthy(v)) {
                    Some(uri) => found = Some(uri.clone()),
                    None => {
                        return Err(self.err(format!(
                            "No {required} URI property specified in SourceAccessConfigurations."
                        )))
                    }
                }
            }
        }
        found.ok_or_else(|| {
            self.err(format!(
                "No {required} property specified in SourceAccessConfigurations."
            ))
        })
    }

    fn self_managed_kafka(&self, ctx: &Context<'_>) -> Result<Vec<Value>, Failure> {
        const NAME: &str = "self managed kafka";
        if !self.get("KafkaBootstrapServers").is_some_and(truthy) {
            return Err(self.err(format!(
                "No KafkaBootstrapServers provided for {NAME} as an event source"
            )));
        }
        let topics = self.get("Topics").filter(|v| truthy(v));
        let Some(topics) = topics else {
            return Err(self.err(format!("No Topics provided for {NAME} as an event source")));
        };
        // Python's `len`: of the list, or of a mapping such as `Ref`
        let len = match topics {
            Value::Array(a) => a.len(),
            Value::Object(m) => m.len(),
            Value::String(s) => s.chars().count(),
            _ => 0,
        };
        if len != 1 {
            return Err(self.err(format!("Topics for {NAME} only supports single configuration entry.")));
        }
        let Some(confs) = self.get("SourceAccessConfigurations").filter(|v| truthy(v)) else {
            return Err(self.err(format!("No SourceAccessConfigurations for {NAME} event provided.")));
        };
        let Some(confs) = confs.as_array() else {
            return Err(self.err(format!("SourceAccessConfigurations for {NAME} event should be a list.")));
        };
        let (mut auth, mut root_ca, mut subnet, mut group) = (None, None, false, false);
        for conf in confs {
            let Some(conf) = conf.as_object() else {
                return Err(res_err(
                    self.event_id,
                    "Property 'SourceAccessConfigurations' should be a map.",
                ));
            };
            let uri = conf.get("URI");
            let t = conf.get("Type").and_then(Value::as_str).unwrap_or("");
            match t {
                "VPC_SUBNET" | "VPC_SECURITY_GROUP" => {
                    self.kafka_uri(uri, t)?;
                    if t == "VPC_SUBNET" {
                        subnet = true;
                    } else {
                        group = true;
                    }
                }
                "SASL_SCRAM_256_AUTH" | "SASL_SCRAM_512_AUTH" | "BASIC_AUTH" | "CLIENT_CERTIFICATE_TLS_AUTH" => {
                    if auth.is_some() {
                        return Err(self.err(format!(
                            "Multiple auth mechanism properties specified in SourceAccessConfigurations for {NAME} event."
                        )));
                    }
                    self.kafka_uri(uri, "auth mechanism")?;
                    auth = uri.cloned();
                }
                "SERVER_ROOT_CA_CERTIFICATE" => {
                    self.kafka_uri(uri, t)?;
                    root_ca = uri.cloned();
                }
                _ => {
                    return Err(self.err(format!(
                        "Invalid SourceAccessConfigurations Type provided for {NAME} event."
                    )))
                }
            }
        }
        if subnet != group {
            return Err(self.err(
                "VPC_SUBNET and VPC_SECURITY_GROUP in SourceAccessConfigurations for SelfManagedKafka must be both provided.",
            ));
        }
        let mut statements = Vec::new();
        if let Some(uri) = &auth {
            statements.push(secret(uri));
        }
        if root_ca.is_some() {
            // SAM grants the auth mechanism's secret a second time here, not the certificate's
            statements.push(secret(auth.as_ref().unwrap_or(&Value::Null)));
        }
        if subnet && group {
            statements.push(vpc_statement());
        }
        if let Some(key) = self.kms_key()? {
            statements.push(json!({"Action": ["kms:Decrypt"], "Effect": "Allow", "Resource": kms_arn(&key)}));
        }
        statements.extend(self.schema_registry_statements(ctx)?);
        Ok(vec![json!({
            "PolicyDocument": {"Statement": statements, "Version": "2012-10-17"},
            "PolicyName": "SelfManagedKafkaExecutionRolePolicy",
        })])
    }

    fn kafka_uri(&self, uri: Option<&Value>, what: &str) -> Result<(), Failure> {
        match uri {
            Some(v) if truthy(v) => {
                if v.is_string() || is_intrinsic(v) {
                    Ok(())
                } else {
                    Err(self.err(format!(
                        "Wrong Type for {what} URI property specified in SourceAccessConfigurations for self managed kafka event."
                    )))
                }
            }
            _ => Err(self.err(format!(
                "No {what} URI property specified in SourceAccessConfigurations for self managed kafka event."
            ))),
        }
    }

    /// `get_schema_registry_permissions`, with `validate_schema_registry_config`'s checks.
    fn schema_registry_statements(&self, ctx: &Context<'_>) -> Result<Vec<Value>, Failure> {
        let Some(config) = self.get("SchemaRegistryConfig").filter(|v| truthy(v)) else {
            return Ok(Vec::new());
        };
        let Some(config) = config.as_object() else {
            return Err(self.err("Property 'SchemaRegistryConfig' should be a map."));
        };
        for field in ["SchemaRegistryURI", "EventRecordFormat", "SchemaValidationConfigs"] {
            if !config.contains_key(field) {
                return Err(self.err(format!("Missing required field {field} in SchemaRegistryConfig")));
            }
        }
        if !matches!(
            config.get("EventRecordFormat").and_then(Value::as_str),
            Some("JSON" | "SOURCE")
        ) {
            return Err(self.err("EventRecordFormat in SchemaRegistryConfig must be either 'JSON' or 'SOURCE'"));
        }
        if !config.get("SchemaValidationConfigs").is_some_and(Value::is_array) {
            return Err(self.err("SchemaValidationConfigs must be a list"));
        }
        let mut statements = Vec::new();
        if let Some(access) = config.get("AccessConfigs").filter(|v| truthy(v)) {
            let Some(access) = access.as_array() else {
                return Err(self.err("AccessConfigs in SchemaRegistryConfig must be a list"));
            };
            for c in access {
                if !(c.get("Type").is_some() && c.get("URI").is_some()) {
                    return Err(self.err("Each AccessConfig must be a dict with 'Type' and 'URI' fields"));
                }
            }
            for c in access {
                statements.push(secret(&c["URI"]));
            }
        }
        let uri = config.get("SchemaRegistryURI").cloned().unwrap_or(Value::Null);
        let arn = match &uri {
            Value::String(s) => Some(s.clone()),
            Value::Object(_) => match ctx.resolve_params(&uri)?.get("Fn::Sub") {
                Some(Value::String(s)) => Some(s.clone()),
                _ => None,
            },
            _ => None,
        };
        if let Some(name) = arn.as_deref().and_then(registry_name) {
            statements.push(json!({"Action": ["glue:GetRegistry"], "Effect": "Allow", "Resource": uri}));
            statements.push(json!({"Action": ["glue:GetSchemaVersion"], "Effect": "Allow", "Resource": [
                {"Fn::Sub": format!("arn:${{AWS::Partition}}:glue:${{AWS::Region}}:${{AWS::AccountId}}:schema/{name}/*")}
            ]}));
        }
        Ok(statements)
    }
}

/// The registry's name in a Glue registry ARN (`arn:...:registry/NAME`).
fn registry_name(arn: &str) -> Option<String> {
    if !arn.starts_with("arn") {
        return None;
    }
    let parts: Vec<&str> = arn.split(':').collect();
    (parts.len() >= 6)
        .then(|| parts[5].strip_prefix("registry/").map(str::to_string))
        .flatten()
}

fn secret(uri: &Value) -> Value {
    json!({"Action": ["secretsmanager:GetSecretValue"], "Effect": "Allow", "Resource": uri})
}

fn kms_arn(key: &str) -> Value {
    json!({"Fn::Sub": format!("arn:${{AWS::Partition}}:kms:${{AWS::Region}}:${{AWS::AccountId}}:key/{key}")})
}

fn vpc_statement() -> Value {
    json!({
        "Action": [
            "ec2:CreateNetworkInterface",
            "ec2:DescribeNetworkInterfaces",
            "ec2:DeleteNetworkInterface",
            "ec2:DescribeVpcs",
            "ec2:DescribeSubnets",
            "ec2:DescribeSecurityGroups",
        ],
        "Effect": "Allow",
        "Resource": "*",
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn required_stream_properties_keep_their_place() {
        let names: Vec<&str> = property_types("MSK")
            .iter()
            .filter(|(_, _, r)| *r)
            .map(|(n, _, _)| *n)
            .collect();
        assert_eq!(names, ["StartingPosition", "Stream"]);
        let names: Vec<&str> = property_types("DocumentDB")
            .iter()
            .filter(|(_, _, r)| *r)
            .map(|(n, _, _)| *n)
            .collect();
        assert_eq!(names, ["Cluster", "DatabaseName"]);
    }

    #[test]
    fn glue_registry_names_come_from_the_arn() {
        assert_eq!(
            registry_name("arn:aws:glue:us-east-1:1:registry/orders").as_deref(),
            Some("orders")
        );
        assert_eq!(registry_name("arn:aws:glue:us-east-1:1:schema/x"), None);
        assert_eq!(registry_name("None"), None);
    }
}
