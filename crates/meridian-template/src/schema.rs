//! Resource properties checked against the CloudFormation registry schemas of the types local
//! regions deploy or record (schemas/, as cfn-lint 1.58.0 ships them: MIT-0), with CloudFormation's
//! message ("Properties validation failed for resource Fn with message: #: required key [Role]
//! not found"). A subset of JSON Schema is read: type, required, properties with
//! additionalProperties false, enum, minimum/maximum, minLength/maxLength, items and
//! `$ref: #/definitions/...`; a value still to come (an intrinsic function, a stand-in) is not
//! judged. Lambda's own rule is added: a function from a deployment package needs a Runtime and
//! a Handler.

use crate::eval::unknown_in;
use serde_json::Value;
use std::sync::OnceLock;

const SCHEMAS: &[(&str, &str)] = &[
    (
        "AWS::Lambda::Function",
        include_str!("../schemas/aws-lambda-function.json"),
    ),
    (
        "AWS::Lambda::Version",
        include_str!("../schemas/aws-lambda-version.json"),
    ),
    ("AWS::Lambda::Alias", include_str!("../schemas/aws-lambda-alias.json")),
    (
        "AWS::Lambda::LayerVersion",
        include_str!("../schemas/aws-lambda-layerversion.json"),
    ),
    ("AWS::SSM::Parameter", include_str!("../schemas/aws-ssm-parameter.json")),
    // The other types local regions deploy, and the ones they record: CloudFormation checks
    // their properties on AWS, so a template it would refuse is refused here too.
    ("AWS::S3::Bucket", include_str!("../schemas/aws-s3-bucket.json")),
    (
        "AWS::ApiGatewayV2::Api",
        include_str!("../schemas/aws-apigatewayv2-api.json"),
    ),
    (
        "AWS::ApiGatewayV2::Route",
        include_str!("../schemas/aws-apigatewayv2-route.json"),
    ),
    (
        "AWS::ApiGatewayV2::Integration",
        include_str!("../schemas/aws-apigatewayv2-integration.json"),
    ),
    (
        "AWS::ApiGatewayV2::Stage",
        include_str!("../schemas/aws-apigatewayv2-stage.json"),
    ),
    (
        "AWS::ApiGatewayV2::Deployment",
        include_str!("../schemas/aws-apigatewayv2-deployment.json"),
    ),
    (
        "AWS::ApiGateway::RestApi",
        include_str!("../schemas/aws-apigateway-restapi.json"),
    ),
    (
        "AWS::ApiGateway::Resource",
        include_str!("../schemas/aws-apigateway-resource.json"),
    ),
    (
        "AWS::ApiGateway::Method",
        include_str!("../schemas/aws-apigateway-method.json"),
    ),
    (
        "AWS::ApiGateway::Deployment",
        include_str!("../schemas/aws-apigateway-deployment.json"),
    ),
    (
        "AWS::ApiGateway::Stage",
        include_str!("../schemas/aws-apigateway-stage.json"),
    ),
    (
        "AWS::Lambda::Permission",
        include_str!("../schemas/aws-lambda-permission.json"),
    ),
    (
        "AWS::CloudWatch::Alarm",
        include_str!("../schemas/aws-cloudwatch-alarm.json"),
    ),
    (
        "AWS::CodeDeploy::Application",
        include_str!("../schemas/aws-codedeploy-application.json"),
    ),
    (
        "AWS::CodeDeploy::DeploymentGroup",
        include_str!("../schemas/aws-codedeploy-deploymentgroup.json"),
    ),
    (
        "AWS::CodeDeploy::DeploymentConfig",
        include_str!("../schemas/aws-codedeploy-deploymentconfig.json"),
    ),
    ("AWS::IAM::Role", include_str!("../schemas/aws-iam-role.json")),
    ("AWS::IAM::Policy", include_str!("../schemas/aws-iam-policy.json")),
    (
        "AWS::IAM::ManagedPolicy",
        include_str!("../schemas/aws-iam-managedpolicy.json"),
    ),
    ("AWS::Logs::LogGroup", include_str!("../schemas/aws-logs-loggroup.json")),
    ("AWS::Events::Rule", include_str!("../schemas/aws-events-rule.json")),
    ("AWS::KMS::Key", include_str!("../schemas/aws-kms-key.json")),
    ("AWS::KMS::Alias", include_str!("../schemas/aws-kms-alias.json")),
    (
        "AWS::SecretsManager::Secret",
        include_str!("../schemas/aws-secretsmanager-secret.json"),
    ),
    (
        "AWS::SecretsManager::ResourcePolicy",
        include_str!("../schemas/aws-secretsmanager-resourcepolicy.json"),
    ),
    ("AWS::SQS::Queue", include_str!("../schemas/aws-sqs-queue.json")),
    ("AWS::SNS::Topic", include_str!("../schemas/aws-sns-topic.json")),
    (
        "AWS::DynamoDB::Table",
        include_str!("../schemas/aws-dynamodb-table.json"),
    ),
    (
        "AWS::S3::BucketPolicy",
        include_str!("../schemas/aws-s3-bucketpolicy.json"),
    ),
    (
        "AWS::SQS::QueuePolicy",
        include_str!("../schemas/aws-sqs-queuepolicy.json"),
    ),
    (
        "AWS::SNS::TopicPolicy",
        include_str!("../schemas/aws-sns-topicpolicy.json"),
    ),
];

fn schemas() -> &'static Vec<(&'static str, Value)> {
    static PARSED: OnceLock<Vec<(&'static str, Value)>> = OnceLock::new();
    PARSED.get_or_init(|| {
        SCHEMAS
            .iter()
            .filter_map(|(t, text)| serde_json::from_str(text).ok().map(|v| (*t, v)))
            .collect()
    })
}

/// The types whose properties are checked.
pub fn checked_types() -> Vec<&'static str> {
    schemas().iter().map(|(t, _)| *t).collect()
}

/// The top-level properties of `type_` whose change replaces the resource, as its schema says
/// (`createOnlyProperties`); empty for a type without a bundled schema.
pub fn create_only(type_: &str) -> Vec<String> {
    let Some((_, schema)) = schemas().iter().find(|(t, _)| *t == type_) else {
        return Vec::new();
    };
    schema
        .get("createOnlyProperties")
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(Value::as_str)
                .filter_map(|p| p.strip_prefix("/properties/"))
                .filter(|p| !p.contains('/'))
                .map(String::from)
                .collect()
        })
        .unwrap_or_default()
}

/// Checks one resource's properties (evaluated: `AWS::NoValue` removed). `Ok` for a type
/// without a bundled schema.
pub fn check(logical_id: &str, type_: &str, properties: &Value) -> Result<(), String> {
    let Some((_, schema)) = schemas().iter().find(|(t, _)| *t == type_) else {
        return Ok(());
    };
    let fail = |m: String| format!("Properties validation failed for resource {logical_id} with message: {m}");
    let empty = Value::Object(Default::default());
    let props = if properties.is_null() { &empty } else { properties };
    let mut v = Validator { root: schema, depth: 0 };
    // Read-only properties (Arn, ...) are CloudFormation's to set, not the template's.
    let read_only: Vec<&str> = schema
        .get("readOnlyProperties")
        .and_then(Value::as_array)
        .map(|a| a.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    if let Some(o) = props.as_object() {
        for k in o.keys() {
            if read_only.contains(&format!("/properties/{k}").as_str()) {
                return Err(fail(format!("#: extraneous key [{k}] is not permitted")));
            }
        }
    }
    v.check(schema, props, "#").map_err(fail)?;
    if type_ == "AWS::Lambda::Function" {
        let image = props.get("PackageType").and_then(Value::as_str) == Some("Image")
            || props.get("Code").and_then(|c| c.get("ImageUri")).is_some();
        if !image && (props.get("Runtime").is_none() || props.get("Handler").is_none()) {
            return Err(format!(
                "Resource handler returned message: \"Runtime and Handler are mandatory parameters for functions created with deployment packages.\" (resource {logical_id})"
            ));
        }
    }
    Ok(())
}

struct Validator<'a> {
    root: &'a Value,
    depth: usize,
}

fn type_name(v: &Value) -> &'static str {
    match v {
        Value::Null => "Null",
        Value::Bool(_) => "Boolean",
        Value::Number(n) if n.is_i64() || n.is_u64() => "Integer",
        Value::Number(_) => "Number",
        Value::String(_) => "String",
        Value::Array(_) => "JSONArray",
        Value::Object(_) => "JSONObject",
    }
}

/// Whether a value of the template can stand for the schema's type. CloudFormation converts
/// scalars (YAML `MemorySize: "128"`, `Value: 5`), so a number written as a string is a number.
fn fits(ty: &str, v: &Value) -> bool {
    match ty {
        "string" => matches!(v, Value::String(_) | Value::Number(_) | Value::Bool(_)),
        "integer" => match v {
            Value::Number(n) => n.is_i64() || n.is_u64() || n.as_f64().is_some_and(|f| f.fract() == 0.0),
            Value::String(s) => s.trim().parse::<i64>().is_ok(),
            _ => false,
        },
        "number" => match v {
            Value::Number(_) => true,
            Value::String(s) => s.trim().parse::<f64>().is_ok(),
            _ => false,
        },
        "boolean" => match v {
            Value::Bool(_) => true,
            Value::String(s) => matches!(s.as_str(), "true" | "false"),
            _ => false,
        },
        "array" => v.is_array(),
        "object" => v.is_object(),
        _ => true,
    }
}

fn is_function(v: &Value) -> bool {
    v.as_object()
        .is_some_and(|o| o.len() == 1 && o.keys().all(|k| k == "Ref" || k.starts_with("Fn::")))
}

/// `$ref: #/definitions/X` read from the schema's root.
fn resolve<'s>(root: &'s Value, schema: &'s Value) -> &'s Value {
    match schema.get("$ref").and_then(Value::as_str) {
        Some(r) => r
            .strip_prefix("#/")
            .and_then(|path| path.split('/').try_fold(root, |acc, seg| acc.get(seg)))
            .unwrap_or(schema),
        None => schema,
    }
}

impl Validator<'_> {
    fn check(&mut self, schema: &Value, v: &Value, path: &str) -> Result<(), String> {
        if self.depth > 32 || is_function(v) || unknown_in(v).is_some() && !v.is_object() && !v.is_array() {
            return Ok(());
        }
        let root = self.root;
        let schema = resolve(root, schema);
        let types: Vec<&str> = match schema.get("type") {
            Some(Value::String(t)) => vec![t.as_str()],
            Some(Value::Array(a)) => a.iter().filter_map(Value::as_str).collect(),
            _ => Vec::new(),
        };
        if !types.is_empty() && !types.iter().any(|t| fits(t, v)) {
            let expected: Vec<String> = types
                .iter()
                .map(|t| match *t {
                    "array" => "JSONArray".to_string(),
                    "object" => "JSONObject".to_string(),
                    other => {
                        let mut c = other.chars();
                        c.next()
                            .map(|f| f.to_uppercase().chain(c).collect())
                            .unwrap_or_default()
                    }
                })
                .collect();
            return Err(format!(
                "{path}: expected type: {}, found: {}",
                expected.join(" or "),
                type_name(v)
            ));
        }
        if let Some(allowed) = schema.get("enum").and_then(Value::as_array) {
            let s = match v {
                Value::String(s) => Some(s.clone()),
                Value::Number(n) => Some(n.to_string()),
                _ => None,
            };
            if let Some(s) = s {
                // a number may be written as a string (`RetentionInDays: "14"`, a parameter's value)
                let same_number = |a: &Value| {
                    a.as_f64()
                        .is_some_and(|n| s.trim().parse::<f64>().is_ok_and(|x| x == n))
                };
                if !allowed
                    .iter()
                    .any(|a| a.as_str() == Some(&s) || a == v || same_number(a))
                {
                    return Err(format!("{path}: {s} is not a valid enum value"));
                }
            }
        }
        let num = match v {
            Value::Number(n) => n.as_f64(),
            Value::String(s) if types.contains(&"integer") || types.contains(&"number") => s.trim().parse().ok(),
            _ => None,
        };
        if let Some(n) = num {
            if let Some(min) = schema.get("minimum").and_then(Value::as_f64) {
                if n < min {
                    return Err(format!("{path}: {n} is not greater or equal to {min}"));
                }
            }
            if let Some(max) = schema.get("maximum").and_then(Value::as_f64) {
                if n > max {
                    return Err(format!("{path}: {n} is not less or equal to {max}"));
                }
            }
        }
        if let Value::String(s) = v {
            let len = s.chars().count() as u64;
            if let Some(min) = schema.get("minLength").and_then(Value::as_u64) {
                if len < min {
                    return Err(format!("{path}: expected minLength: {min}, actual: {len}"));
                }
            }
            if let Some(max) = schema.get("maxLength").and_then(Value::as_u64) {
                if len > max {
                    return Err(format!("{path}: expected maxLength: {max}, actual: {len}"));
                }
            }
        }
        if let Value::Object(o) = v {
            if let Some(req) = schema.get("required").and_then(Value::as_array) {
                for r in req.iter().filter_map(Value::as_str) {
                    if !o.contains_key(r) {
                        return Err(format!("{path}: required key [{r}] not found"));
                    }
                }
            }
            let props = schema.get("properties").and_then(Value::as_object);
            let closed = schema.get("additionalProperties") == Some(&Value::Bool(false));
            for (k, x) in o {
                match props.and_then(|p| p.get(k)) {
                    Some(sub) => {
                        self.depth += 1;
                        let r = self.check(sub, x, &format!("{path}/{k}"));
                        self.depth -= 1;
                        r?;
                    }
                    None if closed && props.is_some() => {
                        return Err(format!("{path}: extraneous key [{k}] is not permitted"));
                    }
                    None => {}
                }
            }
        }
        if let (Value::Array(items), Some(item_schema)) = (v, schema.get("items")) {
            for (i, x) in items.iter().enumerate() {
                self.depth += 1;
                let r = self.check(item_schema, x, &format!("{path}/{i}"));
                self.depth -= 1;
                r?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn properties_are_checked_against_the_registry_schema() {
        let f = json!({
            "Runtime": "python3.12", "Handler": "app.handler", "Role": "arn:aws:iam::123456789012:role/r",
            "Code": {"ZipFile": "x"}, "MemorySize": 256, "Environment": {"Variables": {"A": "1"}}
        });
        check("Fn", "AWS::Lambda::Function", &f).unwrap();
        let without = |k: &str| {
            let mut x = f.clone();
            x.as_object_mut().unwrap().remove(k);
            check("Fn", "AWS::Lambda::Function", &x).unwrap_err()
        };
        assert_eq!(
            without("Role"),
            "Properties validation failed for resource Fn with message: #: required key [Role] not found"
        );
        assert!(without("Runtime").contains("Runtime and Handler are mandatory parameters"));
        // An image needs neither.
        let image = json!({"PackageType": "Image", "Role": "r", "Code": {"ImageUri": "123456789012.dkr.ecr.us-east-1.amazonaws.com/app:1"}});
        check("Fn", "AWS::Lambda::Function", &image).unwrap();
        let with = |k: &str, v: Value| {
            let mut x = f.clone();
            x[k] = v;
            check("Fn", "AWS::Lambda::Function", &x)
        };
        assert!(with("MemorySize", json!("abc"))
            .unwrap_err()
            .ends_with("#/MemorySize: expected type: Integer, found: String"));
        assert!(with("MemorySize", json!(64))
            .unwrap_err()
            .contains("#/MemorySize: 64 is not greater or equal to 128"));
        assert!(with("Runtime", json!("cobol1.0"))
            .unwrap_err()
            .contains("#/Runtime: cobol1.0 is not a valid enum value"));
        assert!(with("Memory", json!(256))
            .unwrap_err()
            .contains("#: extraneous key [Memory] is not permitted"));
        assert!(with("Environment", json!({"Vars": {}}))
            .unwrap_err()
            .contains("#/Environment: extraneous key [Vars]"));
        // Numbers written as strings, functions and values still to come are not judged wrong.
        with("MemorySize", json!("512")).unwrap();
        check("L", "AWS::Logs::LogGroup", &json!({"RetentionInDays": "14"})).unwrap();
        assert!(check("L", "AWS::Logs::LogGroup", &json!({"RetentionInDays": 15}))
            .unwrap_err()
            .contains("#/RetentionInDays: 15 is not a valid enum value"));
        with("Role", json!({"Fn::GetAtt": ["R", "Arn"]})).unwrap();
        with("MemorySize", json!("{{pending:P.Value}}")).unwrap();
        check("P", "AWS::SSM::Parameter", &json!({"Type": "String", "Value": "x"})).unwrap();
        assert!(check("P", "AWS::SSM::Parameter", &json!({"Value": "x"}))
            .unwrap_err()
            .contains("required key [Type]"));
        // recorded types are checked too; a type without a bundled schema is not
        assert!(check("T", "AWS::SNS::Topic", &json!({"Anything": 1}))
            .unwrap_err()
            .contains("#: extraneous key [Anything] is not permitted"));
        assert!(check("R", "AWS::IAM::Role", &json!({"RoleName": "r"}))
            .unwrap_err()
            .contains("required key [AssumeRolePolicyDocument] not found"));
        check("V", "AWS::EC2::VPC", &json!({"Anything": 1})).unwrap();
        // what replaces a resource comes from the schema where Meridian has no list of its own
        assert!(crate::plan::forces_replacement("AWS::ApiGateway::Resource", "PathPart"));
        assert!(crate::plan::forces_replacement("AWS::ApiGateway::Method", "HttpMethod"));
        assert!(!crate::plan::forces_replacement(
            "AWS::ApiGateway::Method",
            "Integration"
        ));
        assert!(!crate::plan::forces_replacement("AWS::IAM::Policy", "PolicyName"));
    }
}
