//! The `Globals` section, as aws-sam-translator's GlobalsPlugin applies it: each section's
//! properties are merged into every resource of its type (maps merge key by key, lists
//! concatenate global + local, scalars and intrinsics: local wins; `Function.Architectures`
//! is replaced, not concatenated), honouring `IgnoreGlobals`; then the section is removed.

use serde_json::{Map, Value};

use super::intrinsics::is_intrinsic;
use super::{python_list, Failure, SamResourceError};

const PREFIX: &str = "AWS::Serverless::";

/// Properties each Globals section accepts, in SAM's order (it shows them in its messages).
fn supported_properties(section: &str) -> Option<&'static [&'static str]> {
    Some(match section {
        "Function" => &[
            "Handler",
            "Runtime",
            "CodeUri",
            "DeadLetterQueue",
            "Description",
            "MemorySize",
            "Timeout",
            "VpcConfig",
            "Environment",
            "Tags",
            "PropagateTags",
            "Tracing",
            "KmsKeyArn",
            "AutoPublishAlias",
            "AutoPublishAliasAllProperties",
            "Layers",
            "DeploymentPreference",
            "RolePath",
            "PermissionsBoundary",
            "ReservedConcurrentExecutions",
            "ProvisionedConcurrencyConfig",
            "AssumeRolePolicyDocument",
            "EventInvokeConfig",
            "FileSystemConfigs",
            "CodeSigningConfigArn",
            "Architectures",
            "SnapStart",
            "EphemeralStorage",
            "FunctionUrlConfig",
            "RuntimeManagementConfig",
            "LoggingConfig",
            "RecursiveLoop",
            "SourceKMSKeyArn",
            "TenancyConfig",
            "DurableConfig",
            "CapacityProviderConfig",
            "FunctionScalingConfig",
            "PublishToLatestPublished",
            "VersionDeletionPolicy",
        ],
        "Api" => &[
            "Auth",
            "Name",
            "DefinitionUri",
            "CacheClusterEnabled",
            "CacheClusterSize",
            "MergeDefinitions",
            "Variables",
            "EndpointConfiguration",
            "MethodSettings",
            "BinaryMediaTypes",
            "MinimumCompressionSize",
            "Cors",
            "GatewayResponses",
            "AccessLogSetting",
            "CanarySetting",
            "TracingEnabled",
            "OpenApiVersion",
            "Domain",
            "AlwaysDeploy",
            "PropagateTags",
            "SecurityPolicy",
            "EndpointAccessMode",
        ],
        "HttpApi" => &[
            "Auth",
            "AccessLogSettings",
            "StageVariables",
            "Tags",
            "CorsConfiguration",
            "DefaultRouteSettings",
            "Domain",
            "RouteSettings",
            "FailOnWarnings",
            "PropagateTags",
        ],
        "SimpleTable" => &["SSESpecification"],
        "StateMachine" => &["PropagateTags"],
        "LayerVersion" => &["PublishLambdaVersion"],
        "CapacityProvider" => &[
            "VpcConfig",
            "OperatorRole",
            "Tags",
            "InstanceRequirements",
            "ScalingConfig",
            "KmsKeyArn",
            "PropagateTags",
            "LoggingConfig",
            "ManagedResourceTags",
        ],
        "MicrovmImage" => &[
            "BuildRoleArn",
            "BaseImageArn",
            "BaseImageVersion",
            "Logging",
            "EgressNetworkConnectors",
            "CpuConfigurations",
            "Resources",
            "AdditionalOsCapabilities",
            "Hooks",
            "EnvironmentVariables",
            "Tags",
            "PropagateTags",
        ],
        "NetworkConnector" => &["OperatorRole", "Tags", "PropagateTags"],
        "WebSocketApi" => &[
            "AccessLogSettings",
            "ApiKeySelectionExpression",
            "DefaultRouteSettings",
            "DisableExecuteApiEndpoint",
            "DisableSchemaValidation",
            "Domain",
            "FailOnWarnings",
            "IpAddressType",
            "PropagateTags",
            "RouteSelectionExpression",
            "RouteSettings",
            "StageVariables",
            "Tags",
        ],
        _ => return None,
    })
}

/// Section names in SAM's (sorted) order.
const SECTIONS: &[&str] = &[
    "Api",
    "CapacityProvider",
    "Function",
    "HttpApi",
    "LayerVersion",
    "MicrovmImage",
    "NetworkConnector",
    "SimpleTable",
    "StateMachine",
    "WebSocketApi",
];

#[derive(Clone, Copy, PartialEq)]
enum Strategy {
    Default,
    Replace,
    PruneAndMerge,
}

fn strategy(section: &str, path: &str) -> Strategy {
    match (section, path) {
        ("Function", "Architectures") => Strategy::Replace,
        ("CapacityProvider", "InstanceRequirements.Architectures") => Strategy::Replace,
        ("CapacityProvider", "ManagedResourceTags") => Strategy::PruneAndMerge,
        _ => Strategy::Default,
    }
}

fn invalid(message: String) -> Failure {
    Failure::Document(vec![SamResourceError {
        logical_id: None,
        message: format!("'Globals' section is invalid. {message}"),
    }])
}

/// Parses the Globals section: section name -> its properties.
type Sections = Vec<(String, Map<String, Value>)>;

fn parse(globals: &Value) -> Result<Sections, Failure> {
    let Value::Object(sections) = globals else {
        return Err(invalid("It must be a non-empty dictionary".into()));
    };
    let mut out = Vec::new();
    for (name, props) in sections {
        let Some(supported) = supported_properties(name) else {
            return Err(invalid(format!(
                "'{name}' is not supported. Must be one of the following values - {}",
                python_list(SECTIONS)
            )));
        };
        let Value::Object(props) = props else {
            // SAM's message has this literal placeholder.
            return Err(invalid("Value of ${section} must be a dictionary".into()));
        };
        for key in props.keys() {
            if !supported.contains(&key.as_str()) {
                return Err(invalid(format!(
                    "'{key}' is not a supported property of '{name}'. Must be one of the following values - {}",
                    python_list(supported)
                )));
            }
        }
        out.push((name.clone(), props.clone()));
    }
    Ok(out)
}

/// Applies the Globals section of `template` to its resources and removes the section.
pub(crate) fn apply(template: &mut Map<String, Value>) -> Result<(), Failure> {
    let Some(globals) = template.get("Globals") else {
        return Ok(());
    };
    let sections = parse(globals)?;
    if let Some(Value::Object(resources)) = template.get_mut("Resources") {
        for (logical_id, resource) in resources.iter_mut() {
            let Value::Object(resource) = resource else { continue };
            let Some(rtype) = resource.get("Type").and_then(Value::as_str).map(str::to_string) else {
                continue;
            };
            if !super::is_sam_type(&rtype) {
                continue;
            }
            let section_name = rtype.trim_start_matches(PREFIX);
            let Some((_, global_props)) = sections.iter().find(|(n, _)| n == section_name) else {
                continue;
            };
            let global_props = effective_globals(logical_id, global_props, resource.get("IgnoreGlobals"))?;
            let local = resource
                .get("Properties")
                .cloned()
                .unwrap_or_else(|| Value::Object(Map::new()));
            let merged = merge_value(section_name, Value::Object(global_props), local, "");
            resource.insert("Properties".into(), merged);
        }
    }
    template.shift_remove("Globals");
    Ok(())
}

fn effective_globals(
    logical_id: &str,
    globals: &Map<String, Value>,
    ignore: Option<&Value>,
) -> Result<Map<String, Value>, Failure> {
    let attr_err = |message: String| {
        Failure::Document(vec![SamResourceError {
            logical_id: Some(logical_id.to_string()),
            message,
        }])
    };
    match ignore {
        None => Ok(globals.clone()),
        Some(v) if !super::truthy(v) => Ok(globals.clone()),
        Some(Value::String(s)) if s == "*" => Ok(Map::new()),
        Some(Value::Array(keys)) => {
            let mut out = globals.clone();
            for key in keys {
                let k = key
                    .as_str()
                    .map(str::to_string)
                    .unwrap_or_else(|| super::python_repr(key));
                if out.shift_remove(&k).is_none() {
                    return Err(attr_err(format!(
                        "Resource {logical_id} has invalid resource attribute 'IgnoreGlobals' on item '{k}'."
                    )));
                }
            }
            Ok(out)
        }
        Some(_) => Err(attr_err(format!(
            "Resource {logical_id} has invalid resource attribute 'IgnoreGlobals'."
        ))),
    }
}

#[derive(PartialEq)]
enum Token {
    Primitive,
    Dict,
    List,
}

fn token(v: &Value) -> Token {
    match v {
        Value::Object(_) if is_intrinsic(v) => Token::Primitive,
        Value::Object(_) => Token::Dict,
        Value::Array(_) => Token::List,
        _ => Token::Primitive,
    }
}

/// SAM's `GlobalProperties._do_merge`.
pub(crate) fn merge_value(section: &str, global: Value, local: Value, path: &str) -> Value {
    let (tg, tl) = (token(&global), token(&local));
    if tg != tl || tg == Token::Primitive {
        return local;
    }
    match (global, local) {
        (Value::Object(g), Value::Object(l)) => match strategy(section, path) {
            Strategy::Replace => Value::Object(l),
            Strategy::PruneAndMerge if !l.is_empty() => {
                let mut out = Map::new();
                for (k, lv) in l {
                    let child = child_path(path, &k);
                    let v = match g.get(&k) {
                        Some(gv) => merge_value(section, gv.clone(), lv, &child),
                        None => lv,
                    };
                    out.insert(k, v);
                }
                Value::Object(out)
            }
            _ => {
                let mut out = g;
                for (k, lv) in l {
                    let child = child_path(path, &k);
                    let v = match out.get(&k) {
                        Some(gv) => merge_value(section, gv.clone(), lv, &child),
                        None => lv,
                    };
                    out.insert(k, v);
                }
                Value::Object(out)
            }
        },
        (Value::Array(g), Value::Array(l)) => {
            if strategy(section, path) == Strategy::Replace {
                Value::Array(l)
            } else {
                Value::Array(g.into_iter().chain(l).collect())
            }
        }
        (_, l) => l,
    }
}

fn child_path(prefix: &str, key: &str) -> String {
    format!("{prefix}.{key}").trim_start_matches('.').to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn maps_merge_lists_concatenate_scalars_and_intrinsics_override() {
        let g = json!({"Runtime": "python3.12", "Environment": {"Variables": {"A": "1", "B": "2"}},
                       "Layers": ["l1"], "Tags": {"t": "g"}, "Architectures": ["x86_64"],
                       "MemorySize": 128, "CodeUri": "s3://b/k"});
        let l = json!({"Runtime": "nodejs20.x", "Environment": {"Variables": {"B": "3"}}, "Layers": [{"Ref": "L"}],
                       "Architectures": ["arm64"], "MemorySize": {"Ref": "Mem"}, "CodeUri": {"Bucket": "b", "Key": "k"}});
        let merged = merge_value("Function", g, l, "");
        assert_eq!(
            merged,
            json!({"Runtime": "nodejs20.x", "Environment": {"Variables": {"A": "1", "B": "3"}},
                   "Layers": ["l1", {"Ref": "L"}], "Tags": {"t": "g"}, "Architectures": ["arm64"],
                   "MemorySize": {"Ref": "Mem"}, "CodeUri": {"Bucket": "b", "Key": "k"}})
        );
    }

    #[test]
    fn unsupported_keys_and_sections_are_sam_errors() {
        let mut t = json!({"Globals": {"Function": {"Role": "r"}}, "Resources": {}})
            .as_object()
            .unwrap()
            .clone();
        let Err(Failure::Document(e)) = apply(&mut t) else {
            panic!()
        };
        assert!(e[0].message.starts_with(
            "'Globals' section is invalid. 'Role' is not a supported property of 'Function'. Must be one of the following values - ['Handler', 'Runtime', 'CodeUri',"
        ));
        let mut t = json!({"Globals": {"Foo": {}}, "Resources": {}})
            .as_object()
            .unwrap()
            .clone();
        let Err(Failure::Document(e)) = apply(&mut t) else {
            panic!()
        };
        assert_eq!(
            e[0].message,
            "'Globals' section is invalid. 'Foo' is not supported. Must be one of the following values - ['Api', 'CapacityProvider', 'Function', 'HttpApi', 'LayerVersion', 'MicrovmImage', 'NetworkConnector', 'SimpleTable', 'StateMachine', 'WebSocketApi']"
        );
    }

    #[test]
    fn ignore_globals_drops_listed_keys() {
        let mut t = json!({"Globals": {"Function": {"Runtime": "python3.12", "Timeout": 3}},
            "Resources": {"F": {"Type": "AWS::Serverless::Function", "IgnoreGlobals": ["Timeout"], "Properties": {}}}})
        .as_object()
        .unwrap()
        .clone();
        apply(&mut t).unwrap();
        assert_eq!(t["Resources"]["F"]["Properties"], json!({"Runtime": "python3.12"}));
        assert!(t.get("Globals").is_none());
    }
}
