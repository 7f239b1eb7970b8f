//! The template's `Rules` section, evaluated as CloudFormation evaluates it: after the parameters
//! are resolved and before any change is made. A rule whose `RuleCondition` holds (or that has
//! none) has each of its `Assertions` checked; the first that is false fails the operation with its
//! `AssertDescription`.
//!
//! Rule functions: `Fn::And`, `Fn::Or`, `Fn::Not`, `Fn::Equals`, `Fn::Contains`,
//! `Fn::EachMemberEquals`, `Fn::EachMemberIn`, `Fn::RefAll`, `Fn::ValueOf`, `Fn::ValueOfAll`, and
//! `Ref` of a parameter or pseudo parameter.
//!
//! Local regions have no EC2, Route 53 or other resources that AWS-specific parameter types name,
//! and accept any value for such parameters. Consistently with that:
//! - `Fn::RefAll` of such a type is the values the template's parameters of that type were given
//!   (every id the stack is given exists, as far as the local region knows);
//! - `Fn::ValueOf` and `Fn::ValueOfAll` read attributes of those resources (a VPC's tags, a
//!   subnet's zone), which local regions do not have: an assertion (or rule condition) that
//!   depends on one cannot be judged locally and is not enforced.

use crate::eval::{Parameters, Pseudo};
use crate::template::{Template, TemplateError};
use serde_json::{Map, Value};

/// A value in a rule: known, or only knowable in a real AWS account.
#[derive(Debug, Clone, PartialEq)]
enum V {
    Known(Value),
    Unknown,
}

type R<T> = Result<T, String>;

const FUNCTIONS: &str = "Fn::And, Fn::Or, Fn::Not, Fn::Equals, Fn::Contains, Fn::EachMemberEquals, Fn::EachMemberIn, Fn::RefAll, Fn::ValueOf, Fn::ValueOfAll and Ref (of a parameter)";

/// The largest number of rules CloudFormation accepts in a template.
pub const MAX_RULES: usize = 100;

/// Checks the `Rules` section against the parameters' values. Errors name the file, the rule's
/// line and the rule; a failed assertion's message is its `AssertDescription`.
pub fn check(t: &Template, params: &Parameters, pseudo: &Pseudo) -> Result<(), TemplateError> {
    let Some(rules) = t.json.get("Rules") else {
        return Ok(());
    };
    let Some(rules) = rules.as_object() else {
        return Err(TemplateError::new(
            &t.file,
            "Template format error: Rules must be a mapping of rule names to rules",
        )
        .at(t.line_of("Rules"))
        .help("write `Rules:` with one `Name:` entry per rule, each with `Assertions:`"));
    };
    if rules.len() > MAX_RULES {
        return Err(TemplateError::new(
            &t.file,
            format!(
                "Template format error: The template has {} rules; the limit is {MAX_RULES}",
                rules.len()
            ),
        )
        .at(t.line_of("Rules"))
        .help("merge rules: one rule can hold many assertions"));
    }
    let ctx = Ctx { t, params, pseudo };
    for (name, rule) in rules {
        let line = t.line_of(&format!("Rules.{name}")).or_else(|| t.line_of("Rules"));
        let err = |m: String, help: &str| TemplateError::new(&t.file, m).at(line).help(help.to_string());
        let shape_help = "a rule is `RuleCondition:` (optional) and `Assertions:`, a list of `- Assert: <rule function>` with an optional `AssertDescription: text`";
        let Some(rule) = rule.as_object() else {
            return Err(err(
                format!("Template format error: rule {name} must be a mapping"),
                shape_help,
            ));
        };
        if let Some(k) = rule
            .keys()
            .find(|k| !matches!(k.as_str(), "RuleCondition" | "Assertions"))
        {
            return Err(err(
                format!("Template format error: rule {name} has an unknown property `{k}`"),
                shape_help,
            ));
        }
        let Some(assertions) = rule.get("Assertions") else {
            return Err(err(
                format!("Template format error: rule {name} has no Assertions"),
                shape_help,
            ));
        };
        let Some(assertions) = assertions.as_array() else {
            return Err(err(
                format!("Template format error: the Assertions of rule {name} must be a list"),
                shape_help,
            ));
        };
        let mut checks = Vec::new();
        for (i, a) in assertions.iter().enumerate() {
            let a = a.as_object().filter(|a| a.contains_key("Assert")).ok_or_else(|| {
                err(
                    format!(
                        "Template format error: assertion {} of rule {name} has no Assert",
                        i + 1
                    ),
                    shape_help,
                )
            })?;
            // Other keys beside `Assert` are ignored: cfn-lint (AWS's linter, 1.58) accepts them,
            // and an official sample (VPCPeering, `AssetDescription`) carries one.
            let description = match a.get("AssertDescription") {
                None => None,
                Some(Value::String(s)) => Some(s.trim().to_string()),
                Some(_) => {
                    return Err(err(
                        format!(
                        "Template format error: the AssertDescription of assertion {} of rule {name} must be a string",
                        i + 1
                    ),
                        shape_help,
                    ))
                }
            };
            checks.push((&a["Assert"], description));
        }
        let fix = "fix the expression as the message says (see docs/stacks.md, \"Rules\")";
        let applies = match rule.get("RuleCondition") {
            None => Some(true),
            Some(c) => ctx
                .boolean(c)
                .map_err(|m| err(format!("rule {name}: RuleCondition: {m}"), fix))?,
        };
        // Evaluate every assertion (an error in one is reported even when the rule does not
        // apply, as CloudFormation validates the template's rules before judging them).
        let mut results = Vec::new();
        for (i, (assert, description)) in checks.into_iter().enumerate() {
            let v = ctx
                .boolean(assert)
                .map_err(|m| err(format!("rule {name}: assertion {}: {m}", i + 1), fix))?;
            results.push((v, description));
        }
        if applies != Some(true) {
            continue;
        }
        for (v, description) in results {
            if v == Some(false) {
                let message = description
                    .filter(|d| !d.is_empty())
                    .unwrap_or_else(|| format!("Assertion failed for rule {name}"));
                return Err(err(
                    message,
                    &format!("rule {name} of the template refuses these parameter values: give values it accepts (`--param NAME=VALUE`)"),
                ));
            }
        }
    }
    Ok(())
}

struct Ctx<'a> {
    t: &'a Template,
    params: &'a Parameters,
    pseudo: &'a Pseudo,
}

fn one_key(v: &Value) -> Option<(&str, &Value)> {
    let o = v.as_object()?;
    if o.len() != 1 {
        return None;
    }
    o.iter().next().map(|(k, v)| (k.as_str(), v))
}

fn scalar(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

/// A list of strings (a list parameter's value, a literal list, or a comma-separated string).
fn strings(v: &Value, what: &str) -> R<Vec<String>> {
    match v {
        Value::Array(a) => a
            .iter()
            .map(|x| scalar(x).ok_or_else(|| format!("{what} must be a list of strings, found {x}")))
            .collect(),
        other => scalar(other)
            .map(|s| vec![s])
            .ok_or_else(|| format!("{what} must be a list of strings, found {other}")),
    }
}

impl Ctx<'_> {
    fn boolean(&self, v: &Value) -> R<Option<bool>> {
        match self.value(v)? {
            V::Unknown => Ok(None),
            V::Known(Value::Bool(b)) => Ok(Some(b)),
            V::Known(Value::String(s)) if s == "true" => Ok(Some(true)),
            V::Known(Value::String(s)) if s == "false" => Ok(Some(false)),
            V::Known(other) => Err(format!(
                "an assertion or rule condition must be a rule function that gives true or false ({FUNCTIONS}), found {other}"
            )),
        }
    }

    fn value(&self, v: &Value) -> R<V> {
        let Some((f, arg)) = one_key(v) else {
            if let Value::Array(items) = v {
                let mut out = Vec::new();
                for i in items {
                    match self.value(i)? {
                        V::Known(x) => out.push(x),
                        V::Unknown => return Ok(V::Unknown),
                    }
                }
                return Ok(V::Known(Value::Array(out)));
            }
            if let Some((k, _)) = v
                .as_object()
                .and_then(|o| o.iter().find(|(k, _)| k.starts_with("Fn::")))
            {
                return Err(format!("{k} must be the only key of its mapping"));
            }
            return Ok(V::Known(v.clone()));
        };
        if f != "Ref" && !f.starts_with("Fn::") && f != "Condition" {
            return Ok(V::Known(v.clone()));
        }
        let list = |n: usize| -> R<&Vec<Value>> {
            arg.as_array()
                .filter(|a| a.len() == n)
                .ok_or_else(|| format!("{f} takes a list of {n} items"))
        };
        let known = |x: V| -> R<Option<Value>> {
            Ok(match x {
                V::Known(v) => Some(v),
                V::Unknown => None,
            })
        };
        Ok(match f {
            "Ref" => {
                let name = arg.as_str().ok_or("Ref takes a name")?;
                V::Known(self.reference(name)?)
            }
            "Fn::Equals" => {
                let a = list(2)?;
                match (known(self.value(&a[0])?)?, known(self.value(&a[1])?)?) {
                    (Some(x), Some(y)) => V::Known(Value::Bool(match (scalar(&x), scalar(&y)) {
                        (Some(x), Some(y)) => x == y,
                        _ => x == y,
                    })),
                    _ => V::Unknown,
                }
            }
            "Fn::Not" => match self.boolean(&list(1)?[0])? {
                Some(b) => V::Known(Value::Bool(!b)),
                None => V::Unknown,
            },
            "Fn::And" | "Fn::Or" => {
                let items = arg
                    .as_array()
                    .ok_or_else(|| format!("{f} takes a list of 2 to 10 conditions"))?;
                if !(2..=10).contains(&items.len()) {
                    return Err(format!("{f} takes 2 to 10 conditions, found {}", items.len()));
                }
                let mut vals = Vec::new();
                for i in items {
                    vals.push(self.boolean(i)?);
                }
                let decisive = f == "Fn::Or"; // a true decides an Or, a false an And
                if vals.contains(&Some(decisive)) {
                    V::Known(Value::Bool(decisive))
                } else if vals.contains(&None) {
                    V::Unknown
                } else {
                    V::Known(Value::Bool(!decisive))
                }
            }
            "Fn::Contains" | "Fn::EachMemberEquals" | "Fn::EachMemberIn" => {
                let a = list(2)?;
                let (Some(first), Some(second)) = (known(self.value(&a[0])?)?, known(self.value(&a[1])?)?) else {
                    return Ok(V::Unknown);
                };
                let members = strings(&first, &format!("the first item of {f}"))?;
                V::Known(Value::Bool(match f {
                    "Fn::Contains" => {
                        let s = scalar(&second)
                            .ok_or_else(|| format!("the second item of {f} must be a string, found {second}"))?;
                        members.contains(&s)
                    }
                    "Fn::EachMemberEquals" => {
                        let s = scalar(&second)
                            .ok_or_else(|| format!("the second item of {f} must be a string, found {second}"))?;
                        members.iter().all(|m| *m == s)
                    }
                    _ => {
                        let allowed = strings(&second, &format!("the second item of {f}"))?;
                        members.iter().all(|m| allowed.contains(m))
                    }
                }))
            }
            "Fn::RefAll" => {
                let ty = arg
                    .as_str()
                    .ok_or("Fn::RefAll takes a parameter type, such as AWS::EC2::VPC::Id")?;
                V::Known(Value::Array(self.ref_all(ty)))
            }
            "Fn::ValueOf" => {
                let a = list(2)?;
                let name = a[0].as_str().ok_or("Fn::ValueOf's first item is a parameter name")?;
                a[1].as_str().ok_or("Fn::ValueOf's second item is an attribute name")?;
                let ty = self.parameter_type(name)?;
                if !aws_specific(ty) {
                    return Err(format!(
                        "Fn::ValueOf reads an attribute of the resource an AWS-specific parameter names (such as AWS::EC2::VPC::Id); `{name}` is a {ty}"
                    ));
                }
                // The attribute of a VPC, subnet, ... that local regions do not have.
                V::Unknown
            }
            "Fn::ValueOfAll" => {
                let a = list(2)?;
                let ty = a[0].as_str().ok_or("Fn::ValueOfAll's first item is a parameter type")?;
                a[1].as_str()
                    .ok_or("Fn::ValueOfAll's second item is an attribute name")?;
                if !aws_specific(ty) {
                    return Err(format!(
                        "Fn::ValueOfAll takes an AWS-specific parameter type (such as AWS::EC2::VPC::Id), found `{ty}`"
                    ));
                }
                V::Unknown
            }
            other => {
                return Err(format!(
                    "{other} cannot be used in Rules; rule functions are {FUNCTIONS}"
                ))
            }
        })
    }

    fn reference(&self, name: &str) -> R<Value> {
        let p = self.pseudo;
        Ok(match name {
            "AWS::Region" => Value::String(p.region.clone()),
            "AWS::AccountId" => Value::String(p.account_id.clone()),
            "AWS::StackName" => Value::String(p.stack_name.clone()),
            "AWS::StackId" => Value::String(p.stack_id.clone()),
            "AWS::Partition" => Value::String(p.partition.clone()),
            "AWS::URLSuffix" => Value::String(p.url_suffix.clone()),
            "AWS::NotificationARNs" => Value::Array(Vec::new()),
            _ => match self.params.values.get(name) {
                Some(v) => v.clone(),
                None if self.t.section("Resources").is_some_and(|r| r.contains_key(name)) => {
                    return Err(format!(
                        "Ref `{name}` names a resource; rules can refer to parameters only (they are checked before any resource exists)"
                    ))
                }
                None => return Err(format!("Ref `{name}` names no parameter or pseudo parameter")),
            },
        })
    }

    fn declarations(&self) -> Map<String, Value> {
        self.t
            .original
            .get("Parameters")
            .and_then(Value::as_object)
            .cloned()
            .unwrap_or_default()
    }

    fn parameter_type(&self, name: &str) -> R<&str> {
        let decl = self
            .t
            .original
            .get("Parameters")
            .and_then(|p| p.get(name))
            .ok_or_else(|| format!("`{name}` is not a parameter of the template"))?;
        Ok(decl.get("Type").and_then(Value::as_str).unwrap_or("String"))
    }

    /// The values of every parameter of type `ty` (or `List<ty>`) the template was given.
    fn ref_all(&self, ty: &str) -> Vec<Value> {
        let mut out: Vec<Value> = Vec::new();
        for (name, decl) in self.declarations() {
            let t = decl.get("Type").and_then(Value::as_str).unwrap_or("String");
            if t != ty && t != format!("List<{ty}>") {
                continue;
            }
            match self.params.values.get(&name) {
                Some(Value::Array(items)) => out.extend(items.iter().cloned()),
                Some(v) => out.push(v.clone()),
                None => {}
            }
        }
        out.dedup();
        out
    }
}

fn aws_specific(ty: &str) -> bool {
    let inner = ty.strip_prefix("List<").and_then(|t| t.strip_suffix('>')).unwrap_or(ty);
    inner.starts_with("AWS::") && !inner.starts_with("AWS::SSM::Parameter::")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::eval::resolve_parameters;
    use crate::sam::SamOptions;
    use std::collections::BTreeMap;

    fn run(template: &str, given: &[(&str, &str)], region: &str) -> Result<(), TemplateError> {
        let t = Template::parse("t.yaml", template, &SamOptions::default())?;
        let given: BTreeMap<String, String> = given.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        let params = resolve_parameters(&t, &given, &|_| None)?;
        // through the planner: the rules are judged before any change is proposed
        let pseudo = Pseudo::new(region, "123456789012", "app", "arn:stack");
        crate::plan::plan(&t, &params, &pseudo, &BTreeMap::new(), &|_| None).map(|_| ())
    }

    const T: &str = r#"Parameters:
  Env:
    Type: String
    Default: test
  Size:
    Type: String
    Default: small
  Vpc:
    Type: AWS::EC2::VPC::Id
    Default: vpc-1
  Subnets:
    Type: List<AWS::EC2::Subnet::Id>
    Default: subnet-a,subnet-b
Rules:
  ProdIsLarge:
    RuleCondition: !Equals [!Ref Env, prod]
    Assertions:
      - Assert: !Contains [[large, xlarge], !Ref Size]
        AssertDescription: For a production environment, Size must be large or xlarge
  OnlyInEurope:
    Assertions:
      - Assert:
          Fn::Contains: [[eu-west-1, eu-central-1], !Ref "AWS::Region"]
  SubnetsKnown:
    Assertions:
      - Assert: !EachMemberIn [!Ref Subnets, !RefAll "AWS::EC2::Subnet::Id"]
        AssertDescription: every subnet must exist
      - Assert: !Not [!EachMemberEquals [!Ref Subnets, subnet-z]]
      - Assert: !Equals [!ValueOf [Vpc, Tags.Department], IT]
        AssertDescription: the VPC must be IT's
      - Assert: !EachMemberEquals [!ValueOfAll ["AWS::EC2::VPC::Id", Tags.Department], IT]
Resources:
  Q:
    Type: AWS::SNS::Topic
"#;

    #[test]
    fn assertions_are_judged_against_the_parameters() {
        run(T, &[], "eu-west-1").unwrap();
        // the rule condition holds: the assertion applies, and its description is the error
        let e = run(T, &[("Env", "prod")], "eu-west-1").unwrap_err();
        assert_eq!(e.message, "For a production environment, Size must be large or xlarge");
        assert_eq!(e.line, Some(15));
        assert!(e.help.as_deref().unwrap().contains("rule ProdIsLarge"), "{e}");
        run(T, &[("Env", "prod"), ("Size", "xlarge")], "eu-west-1").unwrap();
        // no description: the rule is named
        let e = run(T, &[], "us-east-1").unwrap_err();
        assert_eq!(e.message, "Assertion failed for rule OnlyInEurope");
        assert_eq!(e.to_string().split(':').next(), Some("t.yaml"));
        // EachMemberEquals over a list parameter
        let e = run(T, &[("Subnets", "subnet-z,subnet-z")], "eu-west-1").unwrap_err();
        assert_eq!(e.message, "Assertion failed for rule SubnetsKnown");
        run(T, &[("Subnets", "subnet-z,subnet-y")], "eu-west-1").unwrap();
    }

    #[test]
    fn rule_functions_evaluate_as_cloudformation_does() {
        let t = |assert: &str| {
            format!(
                "Parameters:\n  L:\n    Type: CommaDelimitedList\n    Default: a,b\n  S:\n    Type: String\n    Default: a\nRules:\n  R:\n    Assertions:\n      - Assert: {assert}\n        AssertDescription: no\nResources:\n  Q:\n    Type: AWS::SNS::Topic\n"
            )
        };
        let ok = |a: &str| run(&t(a), &[], "us-east-1").is_ok();
        assert!(ok("!Contains [!Ref L, !Ref S]"));
        assert!(!ok("!Contains [!Ref L, c]"));
        assert!(ok("{Fn::EachMemberIn: [!Ref L, [a, b, c]]}"));
        assert!(!ok("!EachMemberIn [!Ref L, [a]]"));
        assert!(ok("!EachMemberEquals [[a, a], !Ref S]"));
        assert!(!ok("!EachMemberEquals [!Ref L, a]"));
        assert!(ok("!And [!Equals [!Ref S, a], !Not [!Equals [!Ref S, b]]]"));
        assert!(!ok("!Or [!Equals [!Ref S, b], !Equals [!Ref S, c]]"));
        assert!(ok("!Or [!Equals [!Ref S, b], !Equals [!Ref S, a]]"));
        // RefAll of a non-AWS type: the values given to parameters of it
        assert!(ok("!Contains [!RefAll String, a]"));
    }

    #[test]
    fn mistakes_in_rules_are_named() {
        let t = |rule: &str| {
            format!("Parameters:\n  S:\n    Type: String\n    Default: a\nRules:\n  R:\n{rule}Resources:\n  Q:\n    Type: AWS::SNS::Topic\n")
        };
        let err = |rule: &str| run(&t(rule), &[], "us-east-1").unwrap_err();
        let e = err("    RuleCondition: !Equals [!Ref S, a]\n");
        assert_eq!(e.message, "Template format error: rule R has no Assertions");
        assert_eq!(e.line, Some(6));
        let e = err("    Assertions:\n      - Assert: !Sub '${S}'\n");
        assert_eq!(e.message, "rule R: assertion 1: Fn::Sub cannot be used in Rules; rule functions are Fn::And, Fn::Or, Fn::Not, Fn::Equals, Fn::Contains, Fn::EachMemberEquals, Fn::EachMemberIn, Fn::RefAll, Fn::ValueOf, Fn::ValueOfAll and Ref (of a parameter)");
        let e = err("    Assertions:\n      - Assert: !Equals [!Ref Q, a]\n");
        assert!(
            e.message
                .contains("Ref `Q` names a resource; rules can refer to parameters only"),
            "{e}"
        );
        let e = err("    Assertions:\n      - Assert: !Ref S\n");
        assert!(
            e.message.contains("must be a rule function that gives true or false"),
            "{e}"
        );
        let e = err("    Assertions:\n      - Assert: !ValueOf [S, Tags.X]\n");
        assert!(e.message.contains("`S` is a String"), "{e}");
        let e = err("    Assertions:\n      - AssertDescription: x\n");
        assert_eq!(e.message, "Template format error: assertion 1 of rule R has no Assert");
        let e = err("    Assertions: []\n    Asserts: []\n");
        assert_eq!(
            e.message,
            "Template format error: rule R has an unknown property `Asserts`"
        );
        let e = err("    Assertions:\n      - Assert: !Contains [a]\n");
        assert!(e.message.contains("Fn::Contains takes a list of 2 items"), "{e}");
        // a rule that does not apply still has its mistakes reported
        let e = err("    RuleCondition: !Equals [!Ref S, b]\n    Assertions:\n      - Assert: !Contains [a]\n");
        assert!(e.message.contains("Fn::Contains takes a list of 2 items"), "{e}");
    }
}
