//! `AWS::Serverless::SimpleTable` -> `AWS::DynamoDB::Table` with a single hash key (`id`, a
//! string, unless `PrimaryKey` says otherwise), billed per request unless `ProvisionedThroughput`
//! is given.

use serde_json::{json, Map, Value};

use super::function::{plain_tag_list, resource_attributes, Props};
use super::{res_err, truthy, CfnResource, Failure};

/// The properties of SAM's SimpleTable model.
const PROPERTIES: &[&str] = &[
    "PointInTimeRecoverySpecification",
    "PrimaryKey",
    "ProvisionedThroughput",
    "TableName",
    "Tags",
    "SSESpecification",
];

pub(crate) fn translate(id: &str, resource: &Value) -> Result<CfnResource, Failure> {
    let empty = Map::new();
    let props_map = resource.get("Properties").and_then(Value::as_object).unwrap_or(&empty);
    if let Some(k) = props_map.keys().find(|k| !PROPERTIES.contains(&k.as_str())) {
        return Err(res_err(
            id,
            format!("property {k} not defined for resource of type AWS::Serverless::SimpleTable"),
        ));
    }
    let props = Props(props_map);
    // The property types SAM checks, in its order.
    for (name, ok, kind) in [
        (
            "PrimaryKey",
            props.get("PrimaryKey").is_none_or(Value::is_object),
            "map",
        ),
        (
            "ProvisionedThroughput",
            props.get("ProvisionedThroughput").is_none_or(Value::is_object),
            "map",
        ),
        (
            "TableName",
            props.get("TableName").is_none_or(|v| v.is_string() || v.is_object()),
            "",
        ),
        ("Tags", props.get("Tags").is_none_or(Value::is_object), "map"),
        (
            "SSESpecification",
            props.get("SSESpecification").is_none_or(Value::is_object),
            "map",
        ),
    ] {
        if !ok {
            return Err(res_err(
                id,
                if kind.is_empty() {
                    format!("Type of property '{name}' is invalid.")
                } else {
                    format!("Property '{name}' should be a {kind}.")
                },
            ));
        }
    }
    let mut table = CfnResource::new(id, "AWS::DynamoDB::Table");
    table.depends_on = resource.get("DependsOn").cloned();
    table.attributes = resource_attributes(resource);
    let primary_key = match props.get("PrimaryKey").filter(|v| truthy(v)) {
        Some(pk) => {
            let name = pk
                .get("Name")
                .filter(|v| !v.is_null())
                .ok_or_else(|| res_err(id, "Property 'PrimaryKey.Name' is required."))?;
            let ty = pk
                .get("Type")
                .filter(|v| !v.is_null())
                .ok_or_else(|| res_err(id, "Property 'PrimaryKey.Type' is required."))?;
            let converted = match ty.as_str() {
                Some("String") => "S",
                Some("Number") => "N",
                Some("Binary") => "B",
                _ => {
                    let shown = match ty {
                        Value::String(s) => s.clone(),
                        other => super::python_repr(other),
                    };
                    return Err(res_err(id, format!("Invalid 'Type' \"{shown}\".")));
                }
            };
            json!({"AttributeName": name, "AttributeType": converted})
        }
        None => json!({"AttributeName": "id", "AttributeType": "S"}),
    };
    table.set("AttributeDefinitions", Some(json!([primary_key.clone()])));
    table.set(
        "KeySchema",
        Some(json!([{"AttributeName": primary_key["AttributeName"], "KeyType": "HASH"}])),
    );
    if let Some(p) = props.get("PointInTimeRecoverySpecification").filter(|v| truthy(v)) {
        table.set("PointInTimeRecoverySpecification", Some(p.clone()));
    }
    match props.get("ProvisionedThroughput").filter(|v| truthy(v)) {
        Some(p) => table.set("ProvisionedThroughput", Some(p.clone())),
        None => table.set("BillingMode", Some(json!("PAY_PER_REQUEST"))),
    }
    if let Some(s) = props.get("SSESpecification").filter(|v| truthy(v)) {
        table.set("SSESpecification", Some(s.clone()));
    }
    if let Some(n) = props.get("TableName").filter(|v| truthy(v)) {
        table.set("TableName", Some(n.clone()));
    }
    if let Some(Value::Object(tags)) = props.get("Tags").filter(|v| truthy(v)) {
        table.set("Tags", Some(Value::Array(plain_tag_list(tags))));
    }
    Ok(table)
}
