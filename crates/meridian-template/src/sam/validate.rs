//! The property checks aws-sam-translator makes when it reads a serverless resource
//! (`Resource.from_dict`): an unknown property is refused, and each known one is checked against
//! its type, in the model's order, with SAM's messages.

use serde_json::{Map, Value};

use super::{res_err, Failure};

/// A property's validator, as SAM's `samtranslator.model.types` composes them.
#[derive(Clone, Copy)]
pub(crate) enum Check {
    /// PassThroughProperty: anything.
    Any,
    Str,
    Dict,
    Bool,
    /// `Property(..., IS_BOOL)`: a boolean, intrinsic functions not accepted.
    StrictBool,
    /// `Property(..., IS_STR)`: a string, intrinsic functions not accepted.
    StrictStr,
    /// `IS_LIST`
    List,
    /// `IS_INT` (a Python bool is an int)
    Int,
    /// `one_of(IS_STR, IS_DICT)`
    StrOrDict,
    /// `one_of(IS_STR)`: a string, reported without an expected type.
    OneStr,
    /// `list_of(one_of(IS_STR, IS_DICT))`
    ListOfStrOrDict,
    /// `one_of(IS_STR, list_of(one_of(IS_STR, IS_DICT)))`
    StrOrListOfStrOrDict,
    /// `one_of(IS_STR, IS_DICT, list_of(one_of(IS_STR, IS_DICT)))`
    StrDictOrList,
    /// `dict_of(IS_STR, IS_DICT)`
    DictOfDict,
    /// `dict_of(IS_STR, any_type())`: a mapping, reported without an expected type.
    MapOfAny,
    /// `one_of(dict_of(IS_STR, any_type()), list_of(dict_of(IS_STR, any_type())))`
    DictOrListOfDict,
    /// `list_of(IS_STR)`
    ListOfStr,
    /// `IS_STR_ENUM([...])`
    StrEnum(&'static [&'static str]),
}

impl Check {
    fn accepts(self, v: &Value) -> bool {
        let str_or_dict = |x: &Value| x.is_string() || x.is_object();
        match self {
            Check::Any => true,
            Check::Str | Check::StrictStr | Check::OneStr => v.is_string(),
            Check::Dict => v.is_object(),
            Check::Bool | Check::StrictBool => v.is_boolean(),
            Check::List => v.is_array(),
            Check::Int => v.is_i64() || v.is_u64() || v.is_boolean(),
            Check::StrOrDict => str_or_dict(v),
            Check::ListOfStrOrDict => v.as_array().is_some_and(|a| a.iter().all(str_or_dict)),
            Check::StrDictOrList => str_or_dict(v) || v.as_array().is_some_and(|a| a.iter().all(str_or_dict)),
            Check::StrOrListOfStrOrDict => v.is_string() || v.as_array().is_some_and(|a| a.iter().all(str_or_dict)),
            Check::DictOfDict => v.as_object().is_some_and(|m| m.values().all(Value::is_object)),
            Check::MapOfAny => v.is_object(),
            Check::DictOrListOfDict => v.is_object() || v.as_array().is_some_and(|a| a.iter().all(Value::is_object)),
            Check::ListOfStr => v.as_array().is_some_and(|a| a.iter().all(Value::is_string)),
            Check::StrEnum(values) => v.as_str().is_some_and(|s| values.contains(&s)),
        }
    }

    /// `ExpectedType` of the validator: `IS_STR`, `IS_DICT` and string enums have one.
    fn expected(self) -> Option<String> {
        match self {
            Check::Str | Check::StrictStr => Some("string".into()),
            Check::Dict => Some("map".into()),
            Check::StrEnum([one]) => Some(format!("the string '{one}'")),
            Check::StrEnum([a, b]) => Some(format!("one of the strings: '{a}' or '{b}'")),
            Check::StrEnum(values) => {
                let quoted: Vec<String> = values.iter().map(|v| format!("'{v}'")).collect();
                let (last, rest) = quoted.split_last()?;
                Some(format!("one of the strings: {}, or {last}", rest.join(", ")))
            }
            _ => None,
        }
    }
}

/// `from_dict`'s checks: unknown properties, then `validate_properties` (an intrinsic function, a
/// mapping of one key, is left to CloudFormation).
pub(crate) fn properties(
    id: &str,
    resource_type: &str,
    props: &Map<String, Value>,
    model: &[(&str, Check)],
    required: &[&str],
) -> Result<(), Failure> {
    if let Some(k) = props.keys().find(|k| !model.iter().any(|(n, _)| n == k)) {
        return Err(res_err(
            id,
            format!("property {k} not defined for resource of type {resource_type}"),
        ));
    }
    for (name, check) in model {
        let v = props.get(*name);
        let strict = matches!(check, Check::StrictBool | Check::StrictStr);
        if !strict && v.is_some_and(|v| v.as_object().is_some_and(|m| m.len() == 1)) {
            continue;
        }
        let Some(v) = v.filter(|v| !v.is_null()) else {
            if required.contains(name) {
                return Err(res_err(id, format!("Missing required property '{name}'.")));
            }
            continue;
        };
        if !check.accepts(v) {
            return Err(res_err(
                id,
                match check.expected() {
                    Some(t) => format!("Property '{name}' should be a {t}."),
                    None => format!("Type of property '{name}' is invalid."),
                },
            ));
        }
    }
    Ok(())
}

/// The properties of `AWS::Serverless::Function` in aws-sam-translator 1.115.0's model, in order.
pub(crate) const FUNCTION: &[(&str, Check)] = &[
    ("FunctionName", Check::StrOrDict),
    ("Handler", Check::Any),
    ("Runtime", Check::Any),
    ("CodeUri", Check::Any),
    ("ImageUri", Check::Any),
    ("PackageType", Check::Any),
    ("InlineCode", Check::Any),
    ("DeadLetterQueue", Check::Dict),
    ("Description", Check::Any),
    ("MemorySize", Check::Any),
    ("Timeout", Check::Any),
    ("VpcConfig", Check::Any),
    ("Role", Check::Str),
    ("AssumeRolePolicyDocument", Check::Dict),
    ("Policies", Check::StrDictOrList),
    ("RolePath", Check::Any),
    ("PermissionsBoundary", Check::Str),
    ("Environment", Check::DictOfDict),
    ("Events", Check::DictOfDict),
    ("Tags", Check::Dict),
    ("PropagateTags", Check::Bool),
    ("Tracing", Check::StrOrDict),
    ("KmsKeyArn", Check::Any),
    ("DeploymentPreference", Check::Dict),
    ("ReservedConcurrentExecutions", Check::Any),
    ("Layers", Check::ListOfStrOrDict),
    ("EventInvokeConfig", Check::Dict),
    ("EphemeralStorage", Check::Any),
    ("AutoPublishAlias", Check::OneStr),
    ("AutoPublishCodeSha256", Check::OneStr),
    ("AutoPublishAliasAllProperties", Check::StrictBool),
    ("VersionDescription", Check::Any),
    ("ProvisionedConcurrencyConfig", Check::Any),
    ("FileSystemConfigs", Check::Any),
    ("ImageConfig", Check::Any),
    ("CodeSigningConfigArn", Check::Any),
    ("Architectures", Check::Any),
    ("SnapStart", Check::Dict),
    ("FunctionUrlConfig", Check::Dict),
    ("RuntimeManagementConfig", Check::Any),
    ("LoggingConfig", Check::Any),
    ("RecursiveLoop", Check::Any),
    ("SourceKMSKeyArn", Check::Any),
    ("CapacityProviderConfig", Check::Dict),
    ("FunctionScalingConfig", Check::Dict),
    ("VersionDeletionPolicy", Check::StrEnum(&["Delete", "Retain"])),
    ("PublishToLatestPublished", Check::Any),
    ("TenancyConfig", Check::Any),
    ("DurableConfig", Check::Dict),
];

/// The properties of `AWS::Serverless::LayerVersion`, in order.
pub(crate) const LAYER: &[(&str, Check)] = &[
    ("LayerName", Check::StrOrDict),
    ("Description", Check::Str),
    ("PublishLambdaVersion", Check::Bool),
    ("ContentUri", Check::StrOrDict),
    ("CompatibleArchitectures", Check::ListOfStrOrDict),
    ("CompatibleRuntimes", Check::ListOfStrOrDict),
    ("LicenseInfo", Check::Str),
    ("RetentionPolicy", Check::Str),
];

/// `validate_before_transform`'s rules of a function: properties that exclude or need others.
pub(crate) fn function_rules(id: &str, props: &Map<String, Value>) -> Result<(), Failure> {
    let present = |k: &str| props.get(k).is_some_and(|v| !v.is_null());
    let mut messages = Vec::new();
    for (a, b) in [
        ("CapacityProviderConfig", "ProvisionedConcurrencyConfig"),
        ("CapacityProviderConfig", "VpcConfig"),
    ] {
        if present(a) && present(b) {
            messages.push(format!("Cannot specify '{a}' and '{b}' together."));
        }
    }
    for (a, b) in [
        ("FunctionScalingConfig", "CapacityProviderConfig"),
        ("VersionDeletionPolicy", "AutoPublishAlias"),
    ] {
        if present(a) && !present(b) {
            messages.push(format!("'{a}' requires '{b}'."));
        }
    }
    if messages.is_empty() {
        Ok(())
    } else {
        Err(res_err(id, messages.join("\n")))
    }
}
