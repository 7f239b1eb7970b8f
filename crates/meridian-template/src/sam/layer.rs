//! `AWS::Serverless::LayerVersion` -> `AWS::Lambda::LayerVersion` under a content-hashed logical
//! id (so every change publishes a new layer version and the old one is retained), with
//! `RetentionPolicy` as the DeletionPolicy.

use serde_json::{json, Map, Value};

use super::function::{passthrough_attributes, resource_attributes, s3_location, Props};
use super::intrinsics::is_intrinsic;
use super::{hash, res_err, CfnResource, Context, Failure};

/// The properties of the SAM LayerVersion model, in its order.
const LAYER_PROPERTIES: &[&str] = &[
    "LayerName",
    "Description",
    "PublishLambdaVersion",
    "ContentUri",
    "CompatibleArchitectures",
    "CompatibleRuntimes",
    "LicenseInfo",
    "RetentionPolicy",
];

pub(crate) fn translate(ctx: &Context<'_>, id: &str, resource: &Value) -> Result<CfnResource, Failure> {
    let empty = Map::new();
    let props_map = resource.get("Properties").and_then(Value::as_object).unwrap_or(&empty);
    let props = Props(props_map);
    super::validate::properties(
        id,
        "AWS::Serverless::LayerVersion",
        props_map,
        super::validate::LAYER,
        &["ContentUri"],
    )?;
    let mut current: Map<String, Value> = Map::new();
    for name in LAYER_PROPERTIES {
        if let Some(v) = props.get(name) {
            current.insert(name.to_string(), v.clone());
        }
    }
    for name in ["LayerName", "LicenseInfo", "Description", "RetentionPolicy"] {
        if let Some(v) = current.get(name).filter(|v| super::truthy(v)).cloned() {
            let resolved = ctx.resolve_params(&v)?;
            if !resolved.is_string() && !resolved.is_object() {
                return Err(res_err(
                    id,
                    format!("Could not resolve parameter for '{name}' or parameter is not a String."),
                ));
            }
            current.insert(name.to_string(), resolved);
        }
    }
    let options = "['Retain', 'Delete']";
    let retention = match current.get("RetentionPolicy") {
        None => None,
        Some(v) if is_intrinsic(v) => {
            return Err(res_err(
                id,
                format!("'RetentionPolicy' does not accept intrinsic functions, please use one of the following options: {options}"),
            ))
        }
        Some(Value::String(s)) => match s.to_lowercase().as_str() {
            "retain" => Some("Retain"),
            "delete" => Some("Delete"),
            _ => {
                return Err(res_err(
                    id,
                    format!("'RetentionPolicy' must be one of the following options: {options}."),
                ))
            }
        },
        Some(_) => {
            return Err(res_err(id, format!("Invalid 'RetentionPolicy' type, please use one of the following options: {options}")))
        }
    };
    let mut attributes = passthrough_attributes(resource);
    if !attributes.contains_key("DeletionPolicy") {
        attributes.insert("DeletionPolicy".into(), json!("Retain"));
    }
    if let Some(r) = retention {
        attributes.insert("DeletionPolicy".into(), json!(r));
    }

    // The hash covers the SAM resource as it stands (resolved names), without the attributes
    // that are passed through.
    let mut hashed = Map::new();
    hashed.insert("Type".into(), json!("AWS::Serverless::LayerVersion"));
    if let Some(d) = resource.get("DependsOn").filter(|d| super::truthy(d)) {
        hashed.insert("DependsOn".into(), d.clone());
    }
    for (k, v) in resource_attributes(resource) {
        if !["DeletionPolicy", "UpdateReplacePolicy", "Metadata"].contains(&k.as_str()) {
            hashed.insert(k, v);
        }
    }
    hashed.insert("Properties".into(), Value::Object(current.clone()));
    let mut wrapper = Map::new();
    wrapper.insert(id.to_string(), Value::Object(hashed));
    let new_id = hash::logical_id(id, Some(&Value::Object(wrapper)), None);

    let mut layer = CfnResource::new(new_id.clone(), "AWS::Lambda::LayerVersion");
    layer.depends_on = resource.get("DependsOn").cloned();
    layer.attributes = attributes;
    let layer_name = current
        .get("LayerName")
        .filter(|v| super::truthy(v))
        .cloned()
        .unwrap_or_else(|| json!(id));
    layer.set("LayerName", Some(layer_name));
    layer.set("Description", current.get("Description").cloned());
    let content = s3_location(&new_id, &current["ContentUri"], "ContentUri")?;
    layer.set("Content", Some(Value::Object(content)));
    layer.set(
        "CompatibleArchitectures",
        current.get("CompatibleArchitectures").cloned(),
    );
    validate_architectures(&new_id, current.get("CompatibleArchitectures"))?;
    layer.set("CompatibleRuntimes", current.get("CompatibleRuntimes").cloned());
    layer.set("LicenseInfo", current.get("LicenseInfo").cloned());
    Ok(layer)
}

fn validate_architectures(id: &str, archs: Option<&Value>) -> Result<(), Failure> {
    let archs = archs
        .filter(|v| super::truthy(v))
        .cloned()
        .unwrap_or_else(|| json!(["x86_64"]));
    if is_intrinsic(&archs) {
        return Ok(());
    }
    if let Value::Array(a) = archs {
        for arch in a {
            if !is_intrinsic(&arch) && arch != json!("arm64") && arch != json!("x86_64") {
                return Err(res_err(
                    id,
                    "CompatibleArchitectures needs to be a list of 'x86_64' or 'arm64'",
                ));
            }
        }
    }
    Ok(())
}
