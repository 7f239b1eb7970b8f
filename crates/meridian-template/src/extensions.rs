//! `Transform: AWS::LanguageExtensions`, applied before the SAM transform as CloudFormation
//! applies it: `Fn::ForEach` loops are expanded (in `Resources`, `Outputs`, `Conditions` and any
//! mapping of a resource, nested, with the `${Id}` and `&{Id}` forms), and intrinsic functions in
//! `DeletionPolicy` and `UpdateReplacePolicy` are resolved from the parameters and mappings.
//! `Fn::Length`, `Fn::ToJsonString` and `Fn::FindInMap` with `DefaultValue` are evaluated with
//! the other intrinsic functions (crate::eval).

use crate::eval::one_key;
use serde_json::{Map, Value};
use std::collections::BTreeMap;

const FOR_EACH: &str = "Fn::ForEach::";
/// Loops nested in loops, at most (CloudFormation allows five levels).
const MAX_DEPTH: usize = 5;
/// Items a template may expand to in all, so a loop over a loop cannot blow up.
const MAX_EXPANDED: usize = 10_000;

type R<T> = Result<T, String>;

/// Applies the language extensions to a template, with the values of its parameters (those given,
/// else the declared defaults).
pub fn apply(template: &Value, given: &Map<String, Value>) -> R<Value> {
    let params = parameter_values(template, given);
    let mappings = template.get("Mappings").cloned().unwrap_or(Value::Null);
    let mut ctx = Ctx {
        params,
        mappings,
        expanded: 0,
    };
    let mut out = ctx.expand(template, &BTreeMap::new(), 0)?;
    if let Some(resources) = out.get_mut("Resources").and_then(Value::as_object_mut) {
        for (id, r) in resources.iter_mut() {
            for attr in ["DeletionPolicy", "UpdateReplacePolicy"] {
                if let Some(v) = r.get(attr).filter(|v| v.is_object()).cloned() {
                    let resolved = ctx.policy(&v).map_err(|e| format!("resource `{id}`: {attr}: {e}"))?;
                    r[attr] = Value::String(resolved);
                }
            }
        }
    }
    // The transform is done: what remains for CloudFormation (or SAM) is a plain template.
    if let Some(o) = out.as_object_mut() {
        match o.get("Transform") {
            Some(Value::String(s)) if s == crate::declared::LANGUAGE_EXTENSIONS => {
                o.shift_remove("Transform");
            }
            Some(Value::Array(a)) => {
                let rest: Vec<Value> = a
                    .iter()
                    .filter(|v| v.as_str() != Some(crate::declared::LANGUAGE_EXTENSIONS))
                    .cloned()
                    .collect();
                if rest.is_empty() {
                    o.shift_remove("Transform");
                } else {
                    o.insert("Transform".into(), Value::Array(rest));
                }
            }
            _ => {}
        }
    }
    Ok(out)
}

fn parameter_values(template: &Value, given: &Map<String, Value>) -> BTreeMap<String, Value> {
    let mut out = BTreeMap::new();
    let Some(decls) = template.get("Parameters").and_then(Value::as_object) else {
        return out;
    };
    for (name, decl) in decls {
        let ty = decl.get("Type").and_then(Value::as_str).unwrap_or("String");
        let Some(v) = given.get(name).or_else(|| decl.get("Default")).cloned() else {
            continue;
        };
        let listy = ty == "CommaDelimitedList" || ty.starts_with("List<");
        let v = match v {
            Value::String(s) if listy => {
                Value::Array(s.split(',').map(|p| Value::String(p.trim().to_string())).collect())
            }
            Value::Number(n) => Value::String(n.to_string()),
            other => other,
        };
        out.insert(name.clone(), v);
    }
    out
}

struct Ctx {
    params: BTreeMap<String, Value>,
    mappings: Value,
    expanded: usize,
}

fn scalar(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

/// `${Id}` and `&{Id}` (the value with every character that is not a letter or digit left out)
/// replaced in a string.
fn substitute(s: &str, vars: &BTreeMap<String, String>) -> String {
    let mut out = s.to_string();
    for (k, v) in vars {
        out = out.replace(&format!("${{{k}}}"), v);
        let alnum: String = v.chars().filter(|c| c.is_ascii_alphanumeric()).collect();
        out = out.replace(&format!("&{{{k}}}"), &alnum);
    }
    out
}

impl Ctx {
    fn expand(&mut self, v: &Value, vars: &BTreeMap<String, String>, depth: usize) -> R<Value> {
        match v {
            Value::Object(o) => {
                if let Some(("Ref", Value::String(name))) = one_key(v) {
                    if let Some(val) = vars.get(name) {
                        return Ok(Value::String(val.clone()));
                    }
                }
                let mut out = Map::new();
                for (k, val) in o {
                    if let Some(loop_name) = k.strip_prefix(FOR_EACH) {
                        for (nk, nv) in self.for_each(loop_name, val, vars, depth)? {
                            if out.contains_key(&nk) {
                                return Err(format!(
                                    "Fn::ForEach::{loop_name} generates `{nk}`, which is already declared"
                                ));
                            }
                            out.insert(nk, nv);
                        }
                    } else {
                        let key = substitute(k, vars);
                        out.insert(key, self.expand(val, vars, depth)?);
                    }
                }
                // `!Ref {Fn::Sub: Topic${Name}}` and `!GetAtt [{Fn::Sub: ...}, Arn]`: a name the
                // loop made, resolved once its identifier is replaced.
                for f in ["Ref", "Fn::GetAtt"] {
                    if out.len() != 1 {
                        break;
                    }
                    if let Some(arg) = out.get_mut(f) {
                        let target = match arg {
                            Value::Array(a) => a.first_mut(),
                            other => Some(other),
                        };
                        if let Some(t) = target {
                            if let Some(Value::String(name)) =
                                t.get("Fn::Sub").filter(|_| t.as_object().is_some_and(|o| o.len() == 1))
                            {
                                if !name.contains("${") {
                                    *t = Value::String(name.clone());
                                }
                            }
                        }
                    }
                }
                Ok(Value::Object(out))
            }
            Value::Array(a) => a
                .iter()
                .map(|x| self.expand(x, vars, depth))
                .collect::<R<Vec<_>>>()
                .map(Value::Array),
            Value::String(s) if !vars.is_empty() => Ok(Value::String(substitute(s, vars))),
            other => Ok(other.clone()),
        }
    }

    fn for_each(
        &mut self,
        name: &str,
        def: &Value,
        vars: &BTreeMap<String, String>,
        depth: usize,
    ) -> R<Vec<(String, Value)>> {
        let usage = format!("Fn::ForEach::{name} takes [Identifier, [Value, ...], {{OutputKey: Template}}]");
        if depth >= MAX_DEPTH {
            return Err(format!(
                "Fn::ForEach::{name} is nested more than {MAX_DEPTH} levels deep (CloudFormation's limit)"
            ));
        }
        if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric()) {
            return Err(format!("the loop name of Fn::ForEach::{name} must be alphanumeric"));
        }
        let a = def.as_array().filter(|a| a.len() == 3).ok_or_else(|| usage.clone())?;
        let id = a[0]
            .as_str()
            .filter(|s| !s.is_empty())
            .ok_or_else(|| format!("{usage}: the identifier must be a string"))?;
        if vars.contains_key(id) || self.params.contains_key(id) {
            return Err(format!(
                "Fn::ForEach::{name}: the identifier `{id}` is already a parameter or an outer loop's identifier"
            ));
        }
        let items = self.expand(&a[1], vars, depth)?;
        let collection = self.collection(&items)?;
        let body = a[2]
            .as_object()
            .ok_or_else(|| format!("{usage}: the third item must be a mapping of output keys to templates"))?;
        if !body
            .keys()
            .any(|k| k.contains(&format!("${{{id}}}")) || k.contains(&format!("&{{{id}}}")) || k.starts_with(FOR_EACH))
        {
            return Err(format!(
                "Fn::ForEach::{name}: the output key must use the identifier as ${{{id}}} or &{{{id}}}, or every item would have the same name"
            ));
        }
        let mut out = Vec::new();
        for item in collection {
            self.expanded += 1;
            if self.expanded > MAX_EXPANDED {
                return Err(format!(
                    "Fn::ForEach loops expand to more than {MAX_EXPANDED} items; CloudFormation allows 500 resources"
                ));
            }
            let mut inner = vars.clone();
            inner.insert(id.to_string(), item);
            let expanded = self.expand(&Value::Object(body.clone()), &inner, depth + 1)?;
            if let Value::Object(o) = expanded {
                out.extend(o);
            }
        }
        Ok(out)
    }

    /// The items a loop goes through: a list of strings, a `Ref` to a list parameter, or
    /// `Fn::FindInMap`/`Fn::Split` of known values.
    fn collection(&self, v: &Value) -> R<Vec<String>> {
        let v = self.resolve(v)?;
        let items = v
            .as_array()
            .ok_or_else(|| format!("the collection of Fn::ForEach must be a list, found {v}"))?;
        items
            .iter()
            .map(|i| scalar(i).ok_or_else(|| format!("the collection of Fn::ForEach holds {i}, which is not a string")))
            .collect()
    }

    /// Resolves the functions the transform itself can resolve (parameters and mappings).
    fn resolve(&self, v: &Value) -> R<Value> {
        let Some((f, arg)) = one_key(v) else {
            return match v {
                Value::Array(a) => a
                    .iter()
                    .map(|x| self.resolve(x))
                    .collect::<R<Vec<_>>>()
                    .map(Value::Array),
                other => Ok(other.clone()),
            };
        };
        match f {
            "Ref" => {
                let name = arg.as_str().unwrap_or_default();
                self.params.get(name).cloned().ok_or_else(|| {
                    format!("Ref `{name}` here must name a parameter with a value (the transform runs before any resource exists)")
                })
            }
            "Fn::FindInMap" => {
                let a = arg
                    .as_array()
                    .filter(|a| (3..=4).contains(&a.len()))
                    .ok_or("Fn::FindInMap takes [MapName, TopKey, SecondKey]")?;
                let key = |i: usize| -> R<String> {
                    let k = self.resolve(&a[i])?;
                    scalar(&k).ok_or_else(|| format!("Fn::FindInMap's key {k} is not a string"))
                };
                let (m, k1, k2) = (key(0)?, key(1)?, key(2)?);
                match self.mappings.get(&m).and_then(|x| x.get(&k1)).and_then(|x| x.get(&k2)) {
                    Some(found) => Ok(found.clone()),
                    None => match a.get(3).and_then(|d| d.get("DefaultValue")) {
                        Some(d) => self.resolve(d),
                        None => Err(format!("Fn::FindInMap: `{m}` has no `{k1}` / `{k2}`")),
                    },
                }
            }
            "Fn::Split" => {
                let a = arg.as_array().filter(|a| a.len() == 2).ok_or("Fn::Split takes [delimiter, string]")?;
                let sep = scalar(&self.resolve(&a[0])?).ok_or("Fn::Split's delimiter must be a string")?;
                let s = scalar(&self.resolve(&a[1])?).ok_or("Fn::Split's source must be a string")?;
                if sep.is_empty() {
                    return Err("Fn::Split's delimiter must not be empty".into());
                }
                Ok(Value::Array(s.split(sep.as_str()).map(|p| Value::String(p.to_string())).collect()))
            }
            other => Err(format!(
                "{other} cannot be resolved by AWS::LanguageExtensions here; use a list, a Ref to a parameter, Fn::FindInMap or Fn::Split"
            )),
        }
    }

    fn policy(&self, v: &Value) -> R<String> {
        let r = self.resolve(v)?;
        let s = scalar(&r).ok_or_else(|| format!("resolves to {r}, not a string"))?;
        if !["Delete", "Retain", "RetainExceptOnCreate", "Snapshot"].contains(&s.as_str()) {
            return Err(format!(
                "resolves to `{s}`; use Delete, Retain, RetainExceptOnCreate or Snapshot"
            ));
        }
        Ok(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn yaml(s: &str) -> Value {
        crate::template::read_json("t.yaml", s).unwrap().0
    }

    #[test]
    fn for_each_expands_resources_outputs_and_properties() {
        let t = yaml(
            "Transform: AWS::LanguageExtensions
Parameters:
  Envs: {Type: CommaDelimitedList, Default: 'dev,prod'}
  Policy: {Type: String, Default: Retain}
Resources:
  Fn::ForEach::Topics:
    - Name
    - [Success, Failure-Queue]
    - Topic&{Name}:
        Type: AWS::SNS::Topic
        DeletionPolicy: !Ref Policy
        Properties:
          TopicName: !Sub '${AWS::StackName}-${Name}'
          DisplayName: !Ref Name
          Fn::ForEach::Tags:
            - Env
            - !Ref Envs
            - Tag${Env}: ${Name}-${Env}
Outputs:
  Fn::ForEach::Out:
    - Env
    - !Ref Envs
    - Out${Env}:
        Value: !Ref Env
  Fn::ForEach::Arns:
    - Name
    - [Success]
    - Arn${Name}:
        Value: !Ref
          Fn::Sub: Topic${Name}
      Name${Name}:
        Value: !GetAtt [!Sub 'Topic${Name}', TopicName]
",
        );
        let out = apply(&t, &Map::new()).unwrap();
        assert!(out.get("Transform").is_none());
        let r = &out["Resources"];
        assert_eq!(r.as_object().unwrap().len(), 2);
        let q = &r["TopicFailureQueue"];
        assert_eq!(q["DeletionPolicy"], "Retain");
        assert_eq!(
            q["Properties"]["TopicName"],
            json!({"Fn::Sub": "${AWS::StackName}-Failure-Queue"})
        );
        assert_eq!(q["Properties"]["DisplayName"], "Failure-Queue");
        assert_eq!(q["Properties"]["Tagprod"], "Failure-Queue-prod");
        assert_eq!(out["Outputs"]["Outdev"]["Value"], "dev");
        assert_eq!(out["Outputs"]["ArnSuccess"]["Value"], json!({"Ref": "TopicSuccess"}));
        assert_eq!(
            out["Outputs"]["NameSuccess"]["Value"],
            json!({"Fn::GetAtt": ["TopicSuccess", "TopicName"]})
        );
        // A given value wins over the default.
        let out = apply(&t, &Map::from_iter([("Envs".to_string(), json!("qa"))])).unwrap();
        assert_eq!(
            out["Outputs"].as_object().unwrap().keys().collect::<Vec<_>>(),
            vec!["Outqa", "ArnSuccess", "NameSuccess"]
        );
    }

    #[test]
    fn extensions_run_before_sam_as_listed() {
        let t = crate::Template::parse(
            "t.yaml",
            "Transform: [AWS::LanguageExtensions, AWS::Serverless-2016-10-31]
Resources:
  Fn::ForEach::Fns:
    - Name
    - [Orders, Users]
    - ${Name}Fn:
        Type: AWS::Serverless::Function
        Properties:
          Runtime: python3.12
          Handler: app.handler
          InlineCode: 'def handler(e, c): return 1'
          Environment:
            Variables:
              COUNT: {'Fn::Length': [a, b]}
",
            &crate::sam::SamOptions::default(),
        )
        .unwrap();
        let ids: Vec<String> = t.resources().into_iter().map(|r| r.logical_id).collect();
        assert_eq!(ids, vec!["OrdersFn", "OrdersFnRole", "UsersFn", "UsersFnRole"]);
        // Without the transform, a loop is no resource.
        let e = crate::Template::parse(
            "t.yaml",
            "Resources:\n  Fn::ForEach::L:\n    - X\n    - [a]\n    - R${X}: {Type: AWS::SNS::Topic}\n",
            &crate::sam::SamOptions::default(),
        )
        .unwrap_err();
        assert!(e.message.contains("must be alphanumeric"), "{e}");
    }

    #[test]
    fn loops_that_cannot_expand_say_why() {
        let e = |body: &str| apply(&yaml(&format!("Resources:\n{body}")), &Map::new()).unwrap_err();
        assert!(e("  Fn::ForEach::L: [X, [a, b]]\n").contains("takes [Identifier"));
        assert!(
            e("  Fn::ForEach::L:\n    - X\n    - [a, b]\n    - Same: {Type: AWS::SNS::Topic}\n")
                .contains("must use the identifier")
        );
        assert!(
            e("  Fn::ForEach::L:\n    - X\n    - !GetAtt A.B\n    - R${X}: {Type: AWS::SNS::Topic}\n")
                .contains("cannot be resolved")
        );
        assert!(
            e("  Fn::ForEach::L:\n    - X\n    - [a, a]\n    - R${X}: {Type: AWS::SNS::Topic}\n")
                .contains("already declared")
        );
        let mut nested = "{'R${X5}': {Type: AWS::SNS::Topic}}".to_string();
        for i in (0..6).rev() {
            nested = format!("{{Fn::ForEach::L{i}: [X{i}, [a], {nested}]}}");
        }
        let t = yaml(&format!("Resources: {nested}"));
        let e = apply(&t, &Map::new()).unwrap_err();
        assert!(e.contains("nested more than 5"), "{e}");
    }
}
