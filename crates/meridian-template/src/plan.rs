//! The stack planner: a template and the deployed state in, a change set out. It never changes
//! anything; the deployer performs the changes it proposes.

use crate::eval::{is_pending, Evaluator, Parameters, Pseudo, Resolver};
use crate::graph;
use crate::template::{Template, TemplateError};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::cell::RefCell;
use std::collections::{BTreeMap, BTreeSet};

/// One resource as it is deployed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Deployed {
    pub logical_id: String,
    pub type_: String,
    pub physical_id: String,
    /// Properties as evaluated when the resource was last created or updated.
    pub properties: Value,
    /// What `Fn::GetAtt` returns.
    pub attributes: BTreeMap<String, Value>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum ChangeAction {
    Add,
    Modify,
    Remove,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Replacement {
    True,
    False,
    Conditional,
}

/// One line of a change set, as `describe-change-set` shows it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Change {
    pub action: ChangeAction,
    pub logical_resource_id: String,
    pub resource_type: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub physical_resource_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub replacement: Option<Replacement>,
    /// Properties whose value changes (Modify).
    #[serde(skip_serializing_if = "Vec::is_empty", default)]
    pub details: Vec<String>,
    /// The resource's properties before the change (Modify, Remove), as `describe-change-set
    /// --include-property-values` shows them.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub before_context: Option<Value>,
    /// Its properties after the change (Add, Modify): a value known only once a resource it
    /// depends on exists is `{{changeSet:KNOWN_AFTER_APPLY}}`, as CloudFormation shows it.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub after_context: Option<Value>,
}

/// What CloudFormation shows for a value known only when the change set is executed.
pub const KNOWN_AFTER_APPLY: &str = "{{changeSet:KNOWN_AFTER_APPLY}}";

/// `v` as a change set shows it: every value still to come is [`KNOWN_AFTER_APPLY`], and the
/// values of `NoEcho` parameters (`secrets`) are `****`.
pub fn as_shown(v: &Value, secrets: &[String]) -> Value {
    match v {
        Value::String(s) if s.contains("{{pending:") => Value::String(KNOWN_AFTER_APPLY.into()),
        Value::String(s) => {
            let mut s = s.clone();
            for secret in secrets {
                s = s.replace(secret.as_str(), "****");
            }
            Value::String(s)
        }
        Value::Array(a) => Value::Array(a.iter().map(|x| as_shown(x, secrets)).collect()),
        Value::Object(o) => Value::Object(o.iter().map(|(k, x)| (k.clone(), as_shown(x, secrets))).collect()),
        other => other.clone(),
    }
}

/// Properties whose change makes CloudFormation create a new resource ("Replacement: True").
/// `*` means every property.
pub fn replacing_properties(type_: &str) -> &'static [&'static str] {
    match type_ {
        "AWS::Lambda::Function" => &["FunctionName", "PackageType"],
        "AWS::Lambda::Version" => &["FunctionName", "CodeSha256", "Description", "RuntimePolicy"],
        "AWS::Lambda::Alias" => &["FunctionName", "Name"],
        "AWS::Lambda::Permission" | "AWS::Lambda::LayerVersion" | "AWS::CodeDeploy::DeploymentConfig" => &["*"],
        "AWS::IAM::Role" => &["RoleName", "Path"],
        "AWS::IAM::Policy" => &[],
        "AWS::Logs::LogGroup" => &["LogGroupName"],
        "AWS::SSM::Parameter" => &["Name"],
        "AWS::CloudWatch::Alarm" => &["AlarmName"],
        "AWS::CodeDeploy::Application" => &["ApplicationName", "ComputePlatform"],
        "AWS::CodeDeploy::DeploymentGroup" => &["ApplicationName", "DeploymentGroupName"],
        "AWS::S3::Bucket" => &["BucketName", "ObjectLockEnabled"],
        "AWS::Events::Rule" => &["Name", "EventBusName"],
        "AWS::KMS::Alias" => &["AliasName"],
        "AWS::SecretsManager::Secret" => &["Name"],
        "AWS::SecretsManager::ResourcePolicy" => &["SecretId"],
        "AWS::SQS::Queue" => &["QueueName", "FifoQueue"],
        "AWS::SNS::Topic" => &["TopicName", "FifoTopic"],
        "AWS::DynamoDB::Table" => &["TableName", "KeySchema"],
        "AWS::CloudFormation::Macro" => &["Name"],
        _ => &[],
    }
}

/// Whether changing `property` makes CloudFormation create a new resource of this type: the
/// list above, or else the type's registry schema (`createOnlyProperties`).
pub fn forces_replacement(type_: &str, property: &str) -> bool {
    let replacing = replacing_properties(type_);
    if replacing.contains(&"*") || replacing.contains(&property) {
        return true;
    }
    replacing.is_empty() && crate::schema::create_only(type_).iter().any(|p| p == property)
}

struct PlanResolver<'a> {
    deployed: &'a BTreeMap<String, Deployed>,
    /// Resources that will get a new physical id (added or replaced): unknown until created.
    fresh: RefCell<BTreeSet<String>>,
    imports: &'a dyn Fn(&str) -> Option<String>,
}

impl Resolver for PlanResolver<'_> {
    fn physical_id(&self, id: &str) -> Option<Value> {
        if self.fresh.borrow().contains(id) {
            return None;
        }
        self.deployed.get(id).map(|d| Value::String(d.physical_id.clone()))
    }
    fn attribute(&self, id: &str, attr: &str) -> Option<Value> {
        if self.fresh.borrow().contains(id) {
            return None;
        }
        self.deployed.get(id).and_then(|d| d.attributes.get(attr).cloned())
    }
    fn import(&self, name: &str) -> Option<String> {
        (self.imports)(name)
    }
}

/// The resources the template declares under the stack's parameters (those whose condition is
/// false are left out), in creation order.
pub fn active_resources(t: &Template, ev: &Evaluator) -> Result<Vec<String>, TemplateError> {
    let order = graph::creation_order(t)?;
    let by_id: BTreeMap<String, _> = t.resources().into_iter().map(|r| (r.logical_id.clone(), r)).collect();
    let mut out = Vec::new();
    for id in order {
        let r = &by_id[&id];
        if let Some(c) = &r.condition {
            match ev.conditions.get(c) {
                Some(true) => {}
                Some(false) => continue,
                None => {
                    return Err(
                        TemplateError::new(&t.file, format!("Condition `{c}` is not declared in `Conditions`"))
                            .at(r.line)
                            .resource(&id),
                    )
                }
            }
        }
        out.push(id);
    }
    Ok(out)
}

/// Proposes the changes that take the deployed resources to the template's.
pub fn plan(
    t: &Template,
    params: &Parameters,
    pseudo: &Pseudo,
    deployed: &BTreeMap<String, Deployed>,
    imports: &dyn Fn(&str) -> Option<String>,
) -> Result<Vec<Change>, TemplateError> {
    // The Rules section judges the parameters before anything is planned.
    crate::rules::check(t, params, pseudo)?;
    let secrets = params.secrets();
    let resolver = PlanResolver {
        deployed,
        fresh: RefCell::new(BTreeSet::new()),
        imports,
    };
    let mut ev = Evaluator::new(t, params, pseudo, &resolver)?;
    ev.lenient = true;
    let active = active_resources(t, &ev)?;
    let by_id: BTreeMap<String, _> = t.resources().into_iter().map(|r| (r.logical_id.clone(), r)).collect();
    let mut changes = Vec::new();
    for id in &active {
        let r = &by_id[id];
        let props = ev
            .eval(&r.properties)
            .map_err(|m| TemplateError::new(&t.file, m).at(r.line).resource(id))?
            .unwrap_or(Value::Null);
        // CloudFormation validates the properties against the type's registry schema.
        crate::schema::check(id, &r.type_, &props).map_err(|m| {
            TemplateError::new(&t.file, m)
                .at(r.line)
                .resource(id)
                .help(format!("the properties of {} are checked against its CloudFormation registry schema; fix the property the message names", r.type_))
        })?;
        match deployed.get(id) {
            None => {
                resolver.fresh.borrow_mut().insert(id.clone());
                changes.push(Change {
                    action: ChangeAction::Add,
                    logical_resource_id: id.clone(),
                    resource_type: r.type_.clone(),
                    physical_resource_id: None,
                    replacement: None,
                    details: Vec::new(),
                    before_context: None,
                    after_context: Some(as_shown(&props, &secrets)),
                });
            }
            Some(d) => {
                let changed = changed_properties(&d.properties, &props);
                if changed.is_empty() && d.type_ == r.type_ {
                    continue;
                }
                let mut replacement = Replacement::False;
                if d.type_ != r.type_ {
                    replacement = Replacement::True;
                }
                for p in &changed {
                    if forces_replacement(&r.type_, p) {
                        let known = !props.get(p).is_some_and(is_pending);
                        if known {
                            replacement = Replacement::True;
                        } else if replacement == Replacement::False {
                            replacement = Replacement::Conditional;
                        }
                    }
                }
                if replacement != Replacement::False {
                    resolver.fresh.borrow_mut().insert(id.clone());
                }
                changes.push(Change {
                    action: ChangeAction::Modify,
                    logical_resource_id: id.clone(),
                    resource_type: r.type_.clone(),
                    physical_resource_id: Some(d.physical_id.clone()),
                    replacement: Some(replacement),
                    details: changed,
                    before_context: Some(as_shown(&d.properties, &secrets)),
                    after_context: Some(as_shown(&props, &secrets)),
                });
            }
        }
    }
    let active_set: BTreeSet<&String> = active.iter().collect();
    for (id, d) in deployed {
        if !active_set.contains(id) {
            changes.push(Change {
                action: ChangeAction::Remove,
                logical_resource_id: id.clone(),
                resource_type: d.type_.clone(),
                physical_resource_id: Some(d.physical_id.clone()),
                replacement: None,
                details: Vec::new(),
                before_context: Some(as_shown(&d.properties, &secrets)),
                after_context: None,
            });
        }
    }
    Ok(changes)
}

/// Top-level property names whose value differs (a pending value always differs).
pub fn changed_properties(old: &Value, new: &Value) -> Vec<String> {
    let empty = serde_json::Map::new();
    let o = old.as_object().unwrap_or(&empty);
    let n = new.as_object().unwrap_or(&empty);
    let keys: BTreeSet<&String> = o.keys().chain(n.keys()).collect();
    keys.into_iter()
        .filter(|k| {
            let nv = n.get(*k);
            nv.is_some_and(is_pending) || o.get(*k) != nv
        })
        .cloned()
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn change_sets_show_values_to_come_and_hide_no_echo_values() {
        let v = serde_json::json!({"A": "{{pending:Fn.Arn}}", "B": ["x", {"C": "pre-{{pending:Q.Name}}"}], "D": "user:hunter2", "E": 5});
        assert_eq!(
            as_shown(&v, &["hunter2".to_string()]),
            serde_json::json!({"A": KNOWN_AFTER_APPLY, "B": ["x", {"C": KNOWN_AFTER_APPLY}], "D": "user:****", "E": 5})
        );
    }
    use crate::eval::resolve_parameters;
    use crate::sam::SamOptions;

    fn t(body: &str) -> Template {
        Template::parse("t.yaml", body, &SamOptions::default()).unwrap()
    }

    fn deployed_from(tpl: &Template) -> BTreeMap<String, Deployed> {
        let params = resolve_parameters(tpl, &BTreeMap::new(), &|_| None).unwrap();
        let pseudo = Pseudo::new("us-east-1", "123456789012", "s", "id");
        let mut out = BTreeMap::new();
        for r in tpl.resources() {
            out.insert(
                r.logical_id.clone(),
                Deployed {
                    logical_id: r.logical_id.clone(),
                    type_: r.type_.clone(),
                    physical_id: format!("phys-{}", r.logical_id),
                    properties: Value::Null,
                    attributes: BTreeMap::from([("Arn".into(), Value::String(format!("arn-{}", r.logical_id)))]),
                },
            );
        }
        let resolver = PlanResolver {
            deployed: &out.clone(),
            fresh: RefCell::new(BTreeSet::new()),
            imports: &|_| None,
        };
        let ev = Evaluator::new(tpl, &params, &pseudo, &resolver).unwrap();
        for r in tpl.resources() {
            out.get_mut(&r.logical_id).unwrap().properties = ev.eval(&r.properties).unwrap().unwrap();
        }
        out
    }

    #[test]
    fn changes_are_add_modify_remove_with_replacement() {
        let old = t("Resources:\n  P:\n    Type: AWS::SSM::Parameter\n    Properties:\n      Type: String\n      Name: a\n      Value: x\n  Q:\n    Type: AWS::SSM::Parameter\n    Properties:\n      Type: String\n      Name: q\n      Value: !Ref P\n  Gone:\n    Type: AWS::SSM::Parameter\n    Properties:\n      Type: String\n      Value: x\n");
        let deployed = deployed_from(&old);
        let new = t("Resources:\n  P:\n    Type: AWS::SSM::Parameter\n    Properties:\n      Type: String\n      Name: b\n      Value: x\n  Q:\n    Type: AWS::SSM::Parameter\n    Properties:\n      Type: String\n      Name: !Ref P\n      Value: y\n  New:\n    Type: AWS::SSM::Parameter\n    Properties:\n      Type: String\n      Value: x\n");
        let params = resolve_parameters(&new, &BTreeMap::new(), &|_| None).unwrap();
        let pseudo = Pseudo::new("us-east-1", "123456789012", "s", "id");
        let changes = plan(&new, &params, &pseudo, &deployed, &|_| None).unwrap();
        let find = |id: &str| changes.iter().find(|c| c.logical_resource_id == id).unwrap();
        assert_eq!(find("P").replacement, Some(Replacement::True));
        // Q's name now depends on P's new physical id, unknown until P is replaced.
        assert_eq!(find("Q").replacement, Some(Replacement::Conditional));
        assert_eq!(find("Q").details, vec!["Name", "Value"]);
        assert_eq!(find("New").action, ChangeAction::Add);
        assert_eq!(find("Gone").action, ChangeAction::Remove);
        let same = plan(
            &old,
            &resolve_parameters(&old, &BTreeMap::new(), &|_| None).unwrap(),
            &pseudo,
            &deployed,
            &|_| None,
        )
        .unwrap();
        assert!(same.is_empty(), "{same:?}");
    }
}
