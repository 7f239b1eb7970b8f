//! What a template declares, checked as CloudFormation checks it before anything is created: the
//! sections and their shapes, the parameter declarations, the resource attributes, the transforms
//! it names, and CloudFormation's quotas. Errors carry CloudFormation's own text where AWS has one
//! (`Template format error: ...`); docs/stacks.md lists them.

use serde_json::{Map, Value};

/// Resources a template may declare, as CloudFormation counts them (after its transforms).
pub const MAX_RESOURCES: usize = 500;
/// Parameters a template may declare.
pub const MAX_PARAMETERS: usize = 200;
/// Outputs a template may declare.
pub const MAX_OUTPUTS: usize = 200;
/// Mappings a template may declare.
pub const MAX_MAPPINGS: usize = 200;

/// The only template format version CloudFormation knows.
pub const FORMAT_VERSION: &str = "2010-09-09";

/// The SAM transform.
pub const SAM: &str = "AWS::Serverless-2016-10-31";
/// `Fn::ForEach`, `Fn::Length`, `Fn::ToJsonString`, intrinsics in policies, FindInMap defaults.
pub const LANGUAGE_EXTENSIONS: &str = "AWS::LanguageExtensions";
/// Snippets read from S3.
pub const INCLUDE: &str = "AWS::Include";

/// The account every local region runs as (macros are named `ACCOUNT::Name` in CloudFormation's
/// messages).
pub const LOCAL_ACCOUNT: &str = "123456789012";

/// A problem found: the message, the top-level key or logical id it is about (for the line), and
/// the fix.
#[derive(Debug, Clone, PartialEq)]
pub struct Problem {
    pub message: String,
    pub at: Option<String>,
    pub help: String,
}

fn problem(at: &str, message: impl Into<String>, help: impl Into<String>) -> Problem {
    Problem {
        message: message.into(),
        at: Some(at.to_string()),
        help: help.into(),
    }
}

/// Parameter types CloudFormation knows (besides `List<...>` of the AWS-specific ones and
/// `AWS::SSM::Parameter::Value<...>`).
const AWS_SPECIFIC_TYPES: &[&str] = &[
    "AWS::EC2::AvailabilityZone::Name",
    "AWS::EC2::Image::Id",
    "AWS::EC2::Instance::Id",
    "AWS::EC2::KeyPair::KeyName",
    "AWS::EC2::SecurityGroup::GroupName",
    "AWS::EC2::SecurityGroup::Id",
    "AWS::EC2::Subnet::Id",
    "AWS::EC2::Volume::Id",
    "AWS::EC2::VPC::Id",
    "AWS::Route53::HostedZone::Id",
];

/// Whether CloudFormation knows the parameter type (the list cfn-lint 1.58 checks against).
pub fn known_parameter_type(ty: &str) -> bool {
    let specific = |t: &str| AWS_SPECIFIC_TYPES.contains(&t);
    // Lists of every AWS-specific type but key pairs, and of strings and numbers.
    let list_of = |t: &str| {
        t.strip_prefix("List<")
            .and_then(|s| s.strip_suffix('>'))
            .is_some_and(|inner| {
                matches!(inner, "String" | "Number") || (specific(inner) && inner != "AWS::EC2::KeyPair::KeyName")
            })
    };
    let plain = |t: &str| matches!(t, "String" | "Number" | "CommaDelimitedList");
    if plain(ty) || specific(ty) || list_of(ty) || ty == "AWS::SSM::Parameter::Name" {
        return true;
    }
    ty.strip_prefix("AWS::SSM::Parameter::Value<")
        .and_then(|s| s.strip_suffix('>'))
        .is_some_and(|inner| plain(inner) || specific(inner) || list_of(inner) || inner == "AWS::SSM::Parameter::Name")
}

const PARAMETER_PROPERTIES: &[&str] = &[
    "AllowedPattern",
    "AllowedValues",
    "ConstraintDescription",
    "Default",
    "Description",
    "MaxLength",
    "MaxValue",
    "MinLength",
    "MinValue",
    "NoEcho",
    "Type",
];

const SECTIONS: &[&str] = &[
    "AWSTemplateFormatVersion",
    "Description",
    "Metadata",
    "Parameters",
    "Rules",
    "Mappings",
    "Conditions",
    "Transform",
    "Resources",
    "Outputs",
    "Hooks",
];

fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "nothing",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "a mapping",
    }
}

fn is_number(v: &Value) -> bool {
    match v {
        Value::Number(_) => true,
        Value::String(s) => s.trim().parse::<f64>().is_ok_and(f64::is_finite),
        _ => false,
    }
}

/// The transforms a template names, in the order CloudFormation applies them.
#[derive(Debug, Clone, PartialEq)]
pub enum Transform {
    Sam,
    LanguageExtensions,
    /// `AWS::Include` with its `Location`.
    Include(Value),
    /// A macro of the account (on a local region, an `AWS::CloudFormation::Macro` a stack made),
    /// with its parameters.
    Macro(String, Value),
}

/// Reads the `Transform` section: a name, a list of names, or `{Name, Parameters}` mappings. A
/// macro that does not exist is refused with CloudFormation's change-set failure reason.
pub fn transforms(template: &Value) -> Result<Vec<Transform>, Problem> {
    transforms_with(template, &|_| false)
}

/// [`transforms`], where the macros `known` names exist (a region's own).
pub fn transforms_with(template: &Value, known: &dyn Fn(&str) -> bool) -> Result<Vec<Transform>, Problem> {
    let Some(section) = template.get("Transform") else {
        return Ok(Vec::new());
    };
    let items: Vec<&Value> = match section {
        Value::Array(a) => a.iter().collect(),
        other => vec![other],
    };
    let help = format!(
        "Transform names {SAM}, {LANGUAGE_EXTENSIONS} or {{Name: {INCLUDE}, Parameters: {{Location: s3://...}}}} (a list applies them in order); local regions have no other macros"
    );
    let mut out = Vec::new();
    for item in items {
        let (name, params) = match item {
            Value::String(s) => (s.as_str(), None),
            Value::Object(o) => match o.get("Name") {
                Some(Value::String(s)) => (s.as_str(), o.get("Parameters")),
                _ => {
                    return Err(problem(
                        "Transform",
                        "Template format error: Key Name of transform definition must be a string.",
                        help,
                    ))
                }
            },
            other => {
                return Err(problem(
                    "Transform",
                    format!(
                        "Template format error: Transform must be a macro name or a list of them, found {}",
                        kind(other)
                    ),
                    help,
                ))
            }
        };
        out.push(match name {
            SAM => Transform::Sam,
            LANGUAGE_EXTENSIONS => Transform::LanguageExtensions,
            INCLUDE => Transform::Include(params.and_then(|p| p.get("Location")).cloned().unwrap_or(Value::Null)),
            other if known(other) => Transform::Macro(
                other.to_string(),
                params.cloned().unwrap_or_else(|| Value::Object(Default::default())),
            ),
            other => {
                let full = if other.starts_with("AWS::") {
                    other.to_string()
                } else {
                    format!("{LOCAL_ACCOUNT}::{other}")
                };
                return Err(problem(
                    "Transform",
                    format!("No transform named {full} found."),
                    if other.starts_with("AWS::Serverless") {
                        format!("the SAM transform is {SAM}")
                    } else {
                        help
                    },
                ));
            }
        });
    }
    Ok(out)
}

/// Whether the template's `Transform` section names the SAM transform (which reads `Globals`;
/// without it CloudFormation refuses the section).
fn names_sam(template: &Value) -> bool {
    let named = |v: &Value| match v {
        Value::String(s) => s == SAM,
        Value::Object(o) => o.get("Name").and_then(Value::as_str) == Some(SAM),
        _ => false,
    };
    match template.get("Transform") {
        Some(Value::Array(a)) => a.iter().any(named),
        Some(other) => named(other),
        None => false,
    }
}

/// The macro an `Fn::Transform` names, wherever it is in `v`: a macro that does not exist is
/// refused as CloudFormation refuses it; `AWS::Include` is not read yet.
fn snippet_transforms(v: &Value, at: &str) -> Result<(), Problem> {
    match v {
        Value::Object(o) => {
            if let Some(t) = o.get("Fn::Transform") {
                let first = match t {
                    Value::Array(a) => a.first().unwrap_or(&Value::Null),
                    other => other,
                };
                let name = match first.get("Name") {
                    Some(Value::String(s)) => s.as_str(),
                    _ => {
                        return Err(problem(
                            at,
                            "Template format error: Key Name of transform definition must be a string.",
                            "write `Fn::Transform: {Name: MACRO, Parameters: {...}}`",
                        ))
                    }
                };
                return Err(if name == INCLUDE {
                    problem(
                        at,
                        format!("Fn::Transform with {INCLUDE} reads a snippet from S3, and this command reads no region's buckets"),
                        "deploy the stack to a region (`meridian stack deploy`), which reads the snippet from its S3, or paste the snippet into the template",
                    )
                } else {
                    problem(
                        at,
                        format!(
                            "No transform named {} found.",
                            if name.starts_with("AWS::") {
                                name.to_string()
                            } else {
                                format!("{LOCAL_ACCOUNT}::{name}")
                            }
                        ),
                        "local regions have no macros: expand the snippet in the template",
                    )
                });
            }
            o.values().try_for_each(|x| snippet_transforms(x, at))
        }
        Value::Array(a) => a.iter().try_for_each(|x| snippet_transforms(x, at)),
        _ => Ok(()),
    }
}

/// Checks the template as written (before any transform): sections, parameters, conditions,
/// mappings, outputs and resource attributes.
pub fn check(template: &Value) -> Result<(), Problem> {
    let Some(top) = template.as_object() else {
        return Ok(());
    };
    let unknown: Vec<&str> = top
        .keys()
        .map(String::as_str)
        .filter(|k| !SECTIONS.contains(k) && (*k != "Globals" || !names_sam(template)))
        .collect();
    if let Some(first) = unknown.first() {
        return Err(problem(
            first,
            format!("Template format error: Invalid template property or properties [{}]", unknown.join(", ")),
            "sections are AWSTemplateFormatVersion, Description, Metadata, Parameters, Rules, Mappings, Conditions, Transform, Resources, Outputs and Hooks (Globals with the SAM transform)",
        ));
    }
    if let Some(v) = top.get("AWSTemplateFormatVersion") {
        if v.as_str() != Some(FORMAT_VERSION) {
            return Err(problem(
                "AWSTemplateFormatVersion",
                format!(
                    "Template format error: Unsupported AWSTemplateFormatVersion {}; the only version is {FORMAT_VERSION}",
                    v.as_str().map(String::from).unwrap_or_else(|| v.to_string())
                ),
                format!("write `AWSTemplateFormatVersion: \"{FORMAT_VERSION}\"` or leave it out"),
            ));
        }
    }
    if let Some(v) = top.get("Description") {
        if !v.is_string() {
            return Err(problem(
                "Description",
                format!(
                    "Template format error: Every Description member must be a string, found {}",
                    kind(v)
                ),
                "write the description as one string",
            ));
        }
    }
    for section in ["Parameters", "Mappings", "Conditions", "Outputs", "Metadata", "Rules"] {
        if let Some(v) = top.get(section) {
            if !v.is_object() {
                return Err(problem(
                    section,
                    format!(
                        "Template format error: {section} must be a mapping of names to declarations, found {}",
                        kind(v)
                    ),
                    format!("write `{section}:` with one `Name:` entry per declaration (not a `- ` list)"),
                ));
            }
        }
    }
    let empty = Map::new();
    let section = |name: &str| top.get(name).and_then(Value::as_object).unwrap_or(&empty);
    let params = section("Parameters");
    quota("Parameters", "parameters", params.len(), MAX_PARAMETERS)?;
    quota("Outputs", "outputs", section("Outputs").len(), MAX_OUTPUTS)?;
    quota("Mappings", "mappings", section("Mappings").len(), MAX_MAPPINGS)?;
    for (name, decl) in params {
        check_parameter(name, decl)?;
    }
    for (name, m) in section("Mappings") {
        let Some(m) = m.as_object() else {
            return Err(problem(
                "Mappings",
                format!("Template format error: Every Mappings member {name} must be a map"),
                "a mapping holds top-level keys, each a mapping of second-level keys to values",
            ));
        };
        for (k, inner) in m {
            if !inner.is_object() {
                return Err(problem(
                    "Mappings",
                    format!("Template format error: Every Mappings attribute {k} of {name} must be a map"),
                    "a mapping holds top-level keys, each a mapping of second-level keys to values",
                ));
            }
        }
    }
    for (name, o) in section("Outputs") {
        // A loop of the language extensions: its outputs are checked once expanded.
        if name.starts_with("Fn::ForEach::") {
            continue;
        }
        if o.get("Value").is_none() {
            return Err(problem(
                name,
                "Template format error: Every Outputs member must contain a Value object",
                format!("give output `{name}` a `Value:`"),
            ));
        }
    }
    for sec in ["Resources", "Outputs", "Conditions", "Mappings"] {
        for (name, v) in section(sec) {
            snippet_transforms(
                v,
                if sec == "Resources" || sec == "Outputs" {
                    name
                } else {
                    sec
                },
            )?;
        }
    }
    let extensions = transforms(template)
        .map(|t| t.contains(&Transform::LanguageExtensions))
        .unwrap_or(false);
    if let Some(resources) = top.get("Resources").and_then(Value::as_object) {
        for (id, r) in resources {
            if params.contains_key(id) {
                return Err(problem(
                    id,
                    format!("Template format error: `{id}` is declared both as a parameter and as a resource; logical ids must be unique in the template"),
                    "rename the parameter or the resource (Ref could not tell them apart)",
                ));
            }
            let Some(r) = r.as_object() else { continue };
            let snapshots = r
                .get("Type")
                .and_then(Value::as_str)
                .is_some_and(|t| SNAPSHOT_TYPES.contains(&t));
            let deletion: &[&str] = if snapshots {
                &["Delete", "Retain", "RetainExceptOnCreate", "Snapshot"]
            } else {
                &["Delete", "Retain", "RetainExceptOnCreate"]
            };
            let replace: &[&str] = if snapshots {
                &["Delete", "Retain", "Snapshot"]
            } else {
                &["Delete", "Retain"]
            };
            for (attr, allowed) in [("DeletionPolicy", deletion), ("UpdateReplacePolicy", replace)] {
                match r.get(attr) {
                    None => {}
                    Some(Value::String(s)) if allowed.contains(&s.as_str()) => {}
                    Some(Value::String(s)) => {
                        return Err(problem(
                            id,
                            format!("Template format error: Unrecognized {attr} {s} for resource {id}"),
                            format!("use one of: {}", allowed.join(", ")),
                        ))
                    }
                    // Language extensions resolve an intrinsic function here (Ref, FindInMap, If...).
                    Some(Value::Object(_)) if extensions => {}
                    Some(other) => {
                        return Err(problem(
                            id,
                            format!(
                                "Template format error: Every {attr} member must be a string, found {}",
                                kind(other)
                            ),
                            if other.is_object() {
                                format!("a function in {attr} needs `Transform: {LANGUAGE_EXTENSIONS}`; otherwise use one of: {}", allowed.join(", "))
                            } else {
                                format!("use one of: {}", allowed.join(", "))
                            },
                        ))
                    }
                }
            }
            if let Some(c) = r.get("Condition") {
                if !c.is_string() {
                    return Err(problem(
                        id,
                        "Template format error: Every Condition member must be a string.",
                        "name one condition of `Conditions`",
                    ));
                }
            }
            match r.get("DependsOn") {
                None | Some(Value::String(_)) => {}
                Some(Value::Array(a)) if a.iter().all(Value::is_string) => {}
                Some(_) => {
                    return Err(problem(
                        id,
                        "Template format error: DependsOn must be a string or list of strings.",
                        "name logical ids of `Resources`",
                    ))
                }
            }
        }
    }
    Ok(())
}

/// The types whose DeletionPolicy or UpdateReplacePolicy may be `Snapshot`.
const SNAPSHOT_TYPES: &[&str] = &[
    "AWS::DocDB::DBCluster",
    "AWS::EC2::Volume",
    "AWS::ElastiCache::CacheCluster",
    "AWS::ElastiCache::ReplicationGroup",
    "AWS::Neptune::DBCluster",
    "AWS::RDS::DBCluster",
    "AWS::RDS::DBInstance",
    "AWS::Redshift::Cluster",
];

/// CloudFormation's quota errors.
pub fn quota(section: &str, what: &str, n: usize, max: usize) -> Result<(), Problem> {
    if n > max {
        return Err(problem(
            section,
            format!("Template format error: Number of {what}, {n}, is greater than maximum allowed, {max}"),
            if what == "resources" {
                "split the template into nested stacks (AWS::CloudFormation::Stack) or several stacks; SAM resources count as the resources they expand into".to_string()
            } else {
                format!("CloudFormation allows {max} {what} per template: split the template into nested stacks")
            },
        ));
    }
    Ok(())
}

fn check_parameter(name: &str, decl: &Value) -> Result<(), Problem> {
    let Some(d) = decl.as_object() else {
        return Err(problem(
            name,
            format!(
                "Template format error: Every Parameters member must be an object, found {} for {name}",
                kind(decl)
            ),
            "declare the parameter as a mapping with at least `Type:`",
        ));
    };
    for k in d.keys() {
        if !PARAMETER_PROPERTIES.contains(&k.as_str()) {
            return Err(problem(
                name,
                format!("Template format error: Invalid template parameter property '{k}'"),
                format!("parameter properties are {}", PARAMETER_PROPERTIES.join(", ")),
            ));
        }
    }
    let ty = match d.get("Type") {
        None => {
            return Err(problem(
                name,
                "Template format error: Every Parameters object must contain a Type member.",
                format!("add `Type: String` (or Number, CommaDelimitedList, ...) to parameter `{name}`"),
            ))
        }
        Some(Value::String(s)) => s.as_str(),
        Some(other) => {
            return Err(problem(
                name,
                format!("Template format error: Unrecognized parameter type: {other}"),
                "Type is String, Number, List<Number>, CommaDelimitedList, an AWS-specific type or AWS::SSM::Parameter::Value<...>",
            ))
        }
    };
    if !known_parameter_type(ty) {
        return Err(problem(
            name,
            format!("Template format error: Unrecognized parameter type: {ty}"),
            if ty.starts_with("List<") {
                "List<...> holds String, Number or an AWS-specific type other than key pairs (List<AWS::EC2::Subnet::Id>, ...)".to_string()
            } else {
                "Type is String, Number, List<Number>, CommaDelimitedList, an AWS-specific type (AWS::EC2::VPC::Id, ...) or AWS::SSM::Parameter::Value<...>".to_string()
            },
        ));
    }
    if let Some(v) = d.get("AllowedValues") {
        if !v.is_array() {
            return Err(problem(
                name,
                "Template format error: Every AllowedValues member must be a list.",
                "write AllowedValues as a list: `AllowedValues: [a, b]`",
            ));
        }
    }
    for k in ["MinValue", "MaxValue", "MinLength", "MaxLength"] {
        if let Some(v) = d.get(k) {
            if !is_number(v) {
                return Err(problem(
                    name,
                    format!("Template format error: Every {k} member must be a number, found {v} in parameter {name}"),
                    format!("write {k} as a number"),
                ));
            }
        }
    }
    if let Some(v) = d.get("NoEcho") {
        let ok = matches!(v, Value::Bool(_)) || matches!(v.as_str(), Some("true" | "false" | "True" | "False"));
        if !ok {
            return Err(problem(
                name,
                format!("Template format error: Every NoEcho member must be a boolean, found {v} in parameter {name}"),
                "write `NoEcho: true` or `NoEcho: false`",
            ));
        }
    }
    if let Some(p) = d.get("AllowedPattern") {
        let Some(p) = p.as_str() else {
            return Err(problem(
                name,
                format!(
                    "Template format error: Every AllowedPattern member must be a string, found {}",
                    kind(p)
                ),
                "write the pattern as a string",
            ));
        };
        if let Err(e) = crate::eval::java_regex(p) {
            return Err(problem(
                name,
                format!("parameter `{name}`: AllowedPattern `{p}` is not a valid regular expression: {e}"),
                "fix the pattern (CloudFormation reads it as a Java regular expression that must match the whole value)",
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn yaml(s: &str) -> Value {
        crate::template::read_json("t.yaml", s).unwrap().0
    }

    fn msg(s: &str) -> String {
        check(&yaml(s)).unwrap_err().message
    }

    const R: &str = "Resources:\n  Q:\n    Type: AWS::SSM::Parameter\n    Properties: {Type: String, Value: x}\n";

    #[test]
    fn parameter_declarations_are_checked_with_cloudformations_messages() {
        let p = |decl: &str| msg(&format!("Parameters:\n  P: {decl}\n{R}"));
        assert_eq!(
            p("{Type: Foo}"),
            "Template format error: Unrecognized parameter type: Foo"
        );
        assert_eq!(
            p("{Type: List<Strings>}"),
            "Template format error: Unrecognized parameter type: List<Strings>"
        );
        assert_eq!(
            p("{Type: List<AWS::EC2::KeyPair::KeyName>}"),
            "Template format error: Unrecognized parameter type: List<AWS::EC2::KeyPair::KeyName>"
        );
        assert_eq!(
            p("{Type: String, AllowedValues: a}"),
            "Template format error: Every AllowedValues member must be a list."
        );
        assert!(p("{Type: Number, MinValue: a}").contains("Every MinValue member must be a number"));
        assert!(p("{Type: String, NoEcho: 123}").contains("Every NoEcho member must be a boolean"));
        assert_eq!(
            p("{Type: String, Defualt: a}"),
            "Template format error: Invalid template parameter property 'Defualt'"
        );
        assert_eq!(
            p("{Default: a}"),
            "Template format error: Every Parameters object must contain a Type member."
        );
        assert!(p("{Type: String, AllowedPattern: '[a-z'}").contains("AllowedPattern `[a-z`"));
        // Types CloudFormation knows pass.
        for ty in [
            "String",
            "Number",
            "List<Number>",
            "CommaDelimitedList",
            "List<String>",
            "AWS::EC2::VPC::Id",
            "List<AWS::EC2::Subnet::Id>",
            "AWS::SSM::Parameter::Value<String>",
            "AWS::SSM::Parameter::Value<List<AWS::EC2::Subnet::Id>>",
        ] {
            check(&yaml(&format!("Parameters:\n  P: {{Type: '{ty}'}}\n{R}"))).unwrap();
        }
        // Java look-ahead is a valid pattern.
        check(&yaml(&format!(
            "Parameters:\n  P: {{Type: String, AllowedPattern: '(?=.*[0-9]).+'}}\n{R}"
        )))
        .unwrap();
    }

    #[test]
    fn sections_and_attributes_are_checked() {
        assert!(msg(&format!("AWSTemplateFormatVersion: '2011-01-01'\n{R}"))
            .contains("Unsupported AWSTemplateFormatVersion 2011-01-01"));
        check(&yaml(&format!("AWSTemplateFormatVersion: '2010-09-09'\n{R}"))).unwrap();
        check(&yaml(&format!("AWSTemplateFormatVersion: 2010-09-09\n{R}"))).unwrap();
        assert!(msg(&format!("Conditions:\n  - A\n{R}")).contains("Conditions must be a mapping"));
        assert_eq!(
            msg(&format!("Parameters:\n  Q: {{Type: String}}\n{R}")),
            "Template format error: `Q` is declared both as a parameter and as a resource; logical ids must be unique in the template"
        );
        let policy = |p: &str| msg(&format!("{R}    DeletionPolicy: {p}\n"));
        assert_eq!(
            policy("Keep"),
            "Template format error: Unrecognized DeletionPolicy Keep for resource Q"
        );
        assert!(policy("[Retain]").contains("Every DeletionPolicy member must be a string"));
        // Snapshot is for types that have snapshots (an SSM parameter has none).
        assert!(policy("Snapshot").contains("Unrecognized DeletionPolicy Snapshot"));
        check(&yaml(&format!(
            "{}    DeletionPolicy: Snapshot\n",
            R.replace("AWS::SSM::Parameter", "AWS::RDS::DBInstance")
        )))
        .unwrap();
        assert!(policy("!Ref P").contains("Every DeletionPolicy member must be a string"));
        check(&yaml(&format!(
            "Transform: AWS::LanguageExtensions\n{R}    DeletionPolicy: !Ref AWS::NoValue\n"
        )))
        .unwrap();
        assert_eq!(
            msg(&format!("Outputs:\n  O: {{Description: x}}\n{R}")),
            "Template format error: Every Outputs member must contain a Value object"
        );
        assert_eq!(
            msg(&format!("Foo: 1\n{R}")),
            "Template format error: Invalid template property or properties [Foo]"
        );
        // Globals is SAM's: without the SAM transform CloudFormation refuses it
        assert_eq!(
            msg(&format!("Globals:\n  Function: {{Timeout: 3}}\n{R}")),
            "Template format error: Invalid template property or properties [Globals]"
        );
        for transform in [
            "AWS::Serverless-2016-10-31",
            "[AWS::LanguageExtensions, AWS::Serverless-2016-10-31]",
            "{Name: AWS::Serverless-2016-10-31}",
        ] {
            check(&yaml(&format!(
                "Transform: {transform}\nGlobals:\n  Function: {{Timeout: 3}}\n{R}"
            )))
            .unwrap();
        }
    }

    #[test]
    fn quotas_are_cloudformations() {
        let params: String = (0..201).map(|i| format!("  P{i}: {{Type: String}}\n")).collect();
        assert_eq!(
            msg(&format!("Parameters:\n{params}{R}")),
            "Template format error: Number of parameters, 201, is greater than maximum allowed, 200"
        );
        let params: String = (0..200).map(|i| format!("  P{i}: {{Type: String}}\n")).collect();
        check(&yaml(&format!("Parameters:\n{params}{R}"))).unwrap();
        let outputs: String = (0..201).map(|i| format!("  O{i}: {{Value: x}}\n")).collect();
        assert_eq!(
            msg(&format!("Outputs:\n{outputs}{R}")),
            "Template format error: Number of outputs, 201, is greater than maximum allowed, 200"
        );
        let maps: String = (0..201).map(|i| format!("  M{i}: {{a: {{b: c}}}}\n")).collect();
        assert_eq!(
            msg(&format!("Mappings:\n{maps}{R}")),
            "Template format error: Number of mappings, 201, is greater than maximum allowed, 200"
        );
    }

    #[test]
    fn transforms_are_known_or_refused_as_cloudformation_refuses_them() {
        let t = |s: &str| transforms(&yaml(&format!("Transform: {s}\n{R}")));
        assert_eq!(t("AWS::Serverless-2016-10-31").unwrap(), vec![Transform::Sam]);
        assert_eq!(
            t("[AWS::LanguageExtensions, AWS::Serverless-2016-10-31]").unwrap(),
            vec![Transform::LanguageExtensions, Transform::Sam]
        );
        assert_eq!(
            t("[MyMacro]").unwrap_err().message,
            "No transform named 123456789012::MyMacro found."
        );
        assert_eq!(
            t("AWS::Serverless-2099-01-01").unwrap_err().message,
            "No transform named AWS::Serverless-2099-01-01 found."
        );
        assert!(t("42").unwrap_err().message.contains("Transform must be a macro name"));
        assert!(t("[{Parameters: {}}]")
            .unwrap_err()
            .message
            .contains("Key Name of transform definition must be a string."));
        let snippet = format!("{R}    Metadata: {{'Fn::Transform': {{Name: StringFunctions, Parameters: {{}}}}}}\n");
        assert_eq!(msg(&snippet), "No transform named 123456789012::StringFunctions found.");
    }
}
