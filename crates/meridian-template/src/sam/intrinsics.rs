//! The few intrinsic-function resolutions the SAM transform performs, with aws-sam-translator's
//! semantics: parameter `Ref`s and `${Param}` in `Fn::Sub` are inlined (everything else stays),
//! `Fn::FindInMap` against `Mappings`, and the rewriting of references to SAM resources
//! (`MyFunction.Alias`, renamed layer ids) after the transform.

use std::collections::BTreeMap;

use serde_json::{Map, Value};

use super::{Failure, SamResourceError};

/// `{"Ref": ..}`, `{"Condition": ..}` or `{"Fn::..": ..}`: a one-key object naming an intrinsic.
pub(crate) fn is_intrinsic(v: &Value) -> bool {
    match v {
        Value::Object(m) if m.len() == 1 => {
            let k = m.keys().next().map(String::as_str).unwrap_or("");
            k == "Ref" || k == "Condition" || k.starts_with("Fn::")
        }
        _ => false,
    }
}

pub(crate) fn is_intrinsic_if(v: &Value) -> bool {
    is_intrinsic(v) && v.get("Fn::If").is_some()
}

pub(crate) fn is_no_value(v: &Value) -> bool {
    is_intrinsic(v) && v.get("Ref").and_then(Value::as_str) == Some("AWS::NoValue")
}

/// SAM's `validate_intrinsic_if_items`: the message of the ValueError it raises.
pub(crate) fn validate_if_items(items: &Value) -> Result<(), String> {
    match items {
        Value::Array(a) if a.len() == 3 => Ok(()),
        _ => Err("Fn::If requires 3 arguments".to_string()),
    }
}

fn single_key(v: &Value) -> Option<(&str, &Value)> {
    match v {
        Value::Object(m) if m.len() == 1 => m.iter().next().map(|(k, v)| (k.as_str(), v)),
        _ => None,
    }
}

/// `IntrinsicsResolver(parameters).resolve_parameter_refs`: `Ref` to a parameter becomes its
/// value, `${Param}` inside `Fn::Sub` is substituted, everything else is kept; applied top-down
/// to the whole value.
pub(crate) fn resolve_parameter_refs(v: Value, params: &Map<String, Value>) -> Result<Value, Failure> {
    if params.is_empty() {
        return Ok(v);
    }
    let v = match single_key(&v) {
        Some(("Ref", Value::String(name))) => match parameter_value(params, name) {
            Some(value) => value.clone(),
            None => v,
        },
        Some(("Fn::Sub", _)) => {
            let Value::Object(mut m) = v else { unreachable!() };
            let sub = m.remove("Fn::Sub").unwrap_or(Value::Null);
            let sub = substitute_sub_value(sub, &mut |full, name| match parameter_value(params, name) {
                Some(Value::String(s)) => Ok(s.clone()),
                Some(other) => Err(sub_error(other)),
                None => Ok(full.to_string()),
            })?;
            m.insert("Fn::Sub".into(), sub);
            Value::Object(m)
        }
        _ => v,
    };
    Ok(match v {
        Value::Object(m) => {
            let mut out = Map::new();
            for (k, val) in m {
                out.insert(k, resolve_parameter_refs(val, params)?);
            }
            Value::Object(out)
        }
        Value::Array(a) => Value::Array(
            a.into_iter()
                .map(|x| resolve_parameter_refs(x, params))
                .collect::<Result<_, _>>()?,
        ),
        other => other,
    })
}

fn parameter_value<'a>(params: &'a Map<String, Value>, name: &str) -> Option<&'a Value> {
    match params.get(name) {
        Some(Value::String(s)) if s.starts_with("{{IntrinsicFunction:") => None,
        other => other,
    }
}

fn sub_error(value: &Value) -> Failure {
    Failure::Document(vec![SamResourceError {
        logical_id: None,
        message: format!(
            "Structure of the SAM template is invalid. Invalid Fn::Sub variable value {}. Fn::Sub expects all variables to be strings.",
            super::python_repr(value)
        ),
    }])
}

/// Applies `handler(full "${x}", x)` to every `${x}` of a `Fn::Sub` string (or the string of its
/// list form), as SAM's `SubAction._sub_all_refs` does.
fn substitute_sub_value(
    sub: Value,
    handler: &mut dyn FnMut(&str, &str) -> Result<String, Failure>,
) -> Result<Value, Failure> {
    match sub {
        Value::String(s) => Ok(Value::String(sub_all_refs(&s, handler)?)),
        Value::Array(mut a) => {
            if let Some(Value::String(s)) = a.first() {
                let replaced = sub_all_refs(s, handler)?;
                a[0] = Value::String(replaced);
            }
            Ok(Value::Array(a))
        }
        other => Ok(other),
    }
}

/// The `${name}` references of a Sub string, with SAM's pattern
/// `\$\{([A-Za-z0-9\.]+|AWS::[A-Z][A-Za-z]*)\}` (non-overlapping, left to right).
pub(crate) fn sub_refs(text: &str) -> Vec<(String, String)> {
    let bytes = text.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i + 1 < bytes.len() {
        if bytes[i] == b'$' && bytes[i + 1] == b'{' {
            let start = i + 2;
            // first alternative: [A-Za-z0-9.]+
            let mut j = start;
            while j < bytes.len() && (bytes[j].is_ascii_alphanumeric() || bytes[j] == b'.') {
                j += 1;
            }
            if j > start && j < bytes.len() && bytes[j] == b'}' {
                out.push((text[i..=j].to_string(), text[start..j].to_string()));
                i = j + 1;
                continue;
            }
            // second alternative: AWS::[A-Z][A-Za-z]*
            if text[start..].starts_with("AWS::") {
                let k0 = start + 5;
                if k0 < bytes.len() && bytes[k0].is_ascii_uppercase() {
                    let mut k = k0 + 1;
                    while k < bytes.len() && bytes[k].is_ascii_alphabetic() {
                        k += 1;
                    }
                    if k < bytes.len() && bytes[k] == b'}' {
                        out.push((text[i..=k].to_string(), text[start..k].to_string()));
                        i = k + 1;
                        continue;
                    }
                }
            }
        }
        i += 1;
    }
    out
}

fn sub_all_refs(text: &str, handler: &mut dyn FnMut(&str, &str) -> Result<String, Failure>) -> Result<String, Failure> {
    let mut substituted = text.to_string();
    for (full, name) in sub_refs(text) {
        let value = handler(&full, &name)?;
        substituted = substituted.replacen(&full, &value, 1);
    }
    Ok(substituted)
}

/// `IntrinsicsResolver(Mappings, {FindInMap}).resolve_parameter_refs`.
pub(crate) fn resolve_find_in_map(v: Value, mappings: &Map<String, Value>) -> Result<Value, Failure> {
    if mappings.is_empty() {
        return Ok(v);
    }
    let v = if let Some(("Fn::FindInMap", args)) = single_key(&v) {
        find_in_map(&v, args, mappings)?
    } else {
        v
    };
    Ok(match v {
        Value::Object(m) => {
            let mut out = Map::new();
            for (k, val) in m {
                out.insert(k, resolve_find_in_map(val, mappings)?);
            }
            Value::Object(out)
        }
        Value::Array(a) => Value::Array(
            a.into_iter()
                .map(|x| resolve_find_in_map(x, mappings))
                .collect::<Result<_, _>>()?,
        ),
        other => other,
    })
}

fn find_in_map(whole: &Value, args: &Value, mappings: &Map<String, Value>) -> Result<Value, Failure> {
    let doc_err = |msg: String| {
        Failure::Document(vec![SamResourceError {
            logical_id: None,
            message: format!("Structure of the SAM template is invalid. {msg}"),
        }])
    };
    let items = match args {
        Value::Array(a) if a.len() == 3 => a,
        other => {
            return Err(doc_err(format!(
                "Invalid FindInMap value {}. FindInMap expects an array with 3 values.",
                super::python_repr(other)
            )))
        }
    };
    let keys: Vec<Value> = items
        .iter()
        .map(|k| match single_key(k) {
            Some(("Fn::FindInMap", inner)) => find_in_map(k, inner, mappings),
            _ => Ok(k.clone()),
        })
        .collect::<Result<_, _>>()?;
    let (Some(map_name), Some(top), Some(second)) = (keys[0].as_str(), keys[1].as_str(), keys[2].as_str()) else {
        return Ok(whole.clone());
    };
    let not_two_level = || {
        doc_err(format!(
            "Cannot use Fn::FindInMap on Mapping '{map_name}' which is not a a two-level map."
        ))
    };
    let Some(map) = mappings.get(map_name) else {
        return Ok(whole.clone());
    };
    let Value::Object(map) = map else {
        return Err(not_two_level());
    };
    let Some(level) = map.get(top) else {
        return Ok(whole.clone());
    };
    let Value::Object(level) = level else {
        return Err(not_two_level());
    };
    Ok(level.get(second).cloned().unwrap_or_else(|| whole.clone()))
}

/// References to SAM resources' generated children: `MyFunction.Alias` -> `MyFunctionAliaslive`.
#[derive(Default, Debug)]
pub(crate) struct ResourceRefs {
    refs: BTreeMap<String, BTreeMap<String, String>>,
}

impl ResourceRefs {
    pub(crate) fn add(&mut self, logical_id: &str, property: &str, value: &str) {
        self.refs
            .entry(logical_id.to_string())
            .or_default()
            .insert(property.to_string(), value.to_string());
    }

    fn get(&self, logical_id: &str, property: &str) -> Option<&str> {
        self.refs
            .get(logical_id)
            .and_then(|m| m.get(property))
            .map(String::as_str)
    }

    fn is_empty(&self) -> bool {
        self.refs.is_empty()
    }
}

/// `resolve_sam_resource_refs`: Ref/GetAtt/Sub to `Id.Property` of a SAM resource.
pub(crate) fn resolve_sam_resource_refs(v: Value, refs: &ResourceRefs) -> Value {
    if refs.is_empty() {
        return v;
    }
    let v = match single_key(&v) {
        Some(("Ref", Value::String(s))) => match s.split_once('.') {
            Some((id, prop)) if !id.is_empty() && !prop.is_empty() => match refs.get(id, prop) {
                Some(r) => serde_json::json!({ "Ref": r }),
                None => v,
            },
            _ => v,
        },
        Some(("Fn::GetAtt", Value::Array(items))) if getatt_ok(items) => {
            let joined = items.iter().filter_map(Value::as_str).collect::<Vec<_>>().join(".");
            let splits: Vec<&str> = joined.split('.').collect();
            if splits.len() >= 2 {
                match refs.get(splits[0], splits[1]) {
                    Some(r) => {
                        let mut new = vec![Value::String(r.to_string())];
                        new.extend(splits[2..].iter().map(|s| Value::String(s.to_string())));
                        serde_json::json!({ "Fn::GetAtt": new })
                    }
                    None => v,
                }
            } else {
                v
            }
        }
        Some(("Fn::Sub", _)) => {
            let Value::Object(mut m) = v else { unreachable!() };
            let sub = m.remove("Fn::Sub").unwrap_or(Value::Null);
            let sub = substitute_sub_value(sub, &mut |full, name| {
                let splits: Vec<&str> = name.split('.').collect();
                if splits.len() < 2 {
                    return Ok(full.to_string());
                }
                match refs.get(splits[0], splits[1]) {
                    Some(r) => Ok(full.replace(&format!("{}.{}", splits[0], splits[1]), r)),
                    None => Ok(full.to_string()),
                }
            })
            .unwrap_or(Value::Null);
            m.insert("Fn::Sub".into(), sub);
            Value::Object(m)
        }
        _ => v,
    };
    map_children(v, &|x| resolve_sam_resource_refs(x, refs))
}

fn getatt_ok(items: &[Value]) -> bool {
    items.len() >= 2 && items.iter().all(Value::is_string)
}

fn map_children(v: Value, f: &dyn Fn(Value) -> Value) -> Value {
    match v {
        Value::Object(m) => Value::Object(m.into_iter().map(|(k, x)| (k, f(x))).collect()),
        Value::Array(a) => Value::Array(a.into_iter().map(f).collect()),
        other => other,
    }
}

/// `resolve_sam_resource_id_refs`: Ref/GetAtt/Sub to a SAM resource whose logical id changed.
pub(crate) fn resolve_sam_resource_id_refs(v: Value, changed: &BTreeMap<String, String>) -> Value {
    if changed.is_empty() {
        return v;
    }
    let v = match single_key(&v) {
        Some(("Ref", Value::String(s))) if !s.contains('.') => match changed.get(s) {
            Some(r) if !r.is_empty() => serde_json::json!({ "Ref": r }),
            _ => v,
        },
        Some(("Fn::GetAtt", Value::Array(items))) if getatt_ok(items) => {
            let joined = items.iter().filter_map(Value::as_str).collect::<Vec<_>>().join(".");
            let splits: Vec<&str> = joined.split('.').collect();
            match changed.get(splits[0]) {
                Some(r) if !r.is_empty() => {
                    let mut new = vec![Value::String(r.clone())];
                    new.extend(splits[1..].iter().map(|s| Value::String(s.to_string())));
                    serde_json::json!({ "Fn::GetAtt": new })
                }
                _ => v,
            }
        }
        Some(("Fn::Sub", _)) => {
            let Value::Object(mut m) = v else { unreachable!() };
            let sub = m.remove("Fn::Sub").unwrap_or(Value::Null);
            let sub = substitute_sub_value(sub, &mut |full, name| {
                let id = name.split('.').next().unwrap_or("");
                match changed.get(id) {
                    Some(r) if !r.is_empty() => Ok(full.replace(id, r)),
                    _ => Ok(full.to_string()),
                }
            })
            .unwrap_or(Value::Null);
            m.insert("Fn::Sub".into(), sub);
            Value::Object(m)
        }
        _ => v,
    };
    map_children(v, &|x| resolve_sam_resource_id_refs(x, changed))
}

/// `ResolveDependsOn`: a `DependsOn` (anywhere in the template) naming a renamed resource.
pub(crate) fn resolve_depends_on(v: &mut Value, changed: &BTreeMap<String, String>) {
    if let Value::Object(m) = v {
        if let Some(dep) = m.get_mut("DependsOn") {
            for (old, new) in changed {
                match dep {
                    Value::Array(items) => {
                        for item in items.iter_mut() {
                            if item.as_str() == Some(old.as_str()) {
                                *item = Value::String(new.clone());
                            }
                        }
                    }
                    Value::String(s) if s == old => *dep = Value::String(new.clone()),
                    _ => {}
                }
            }
        }
    }
    match v {
        Value::Object(m) => m.values_mut().for_each(|x| resolve_depends_on(x, changed)),
        Value::Array(a) => a.iter_mut().for_each(|x| resolve_depends_on(x, changed)),
        _ => {}
    }
}

/// SAM's `get_logical_id_from_intrinsic`: the id a `Ref` or `Fn::GetAtt` points at.
pub(crate) fn logical_id_from_intrinsic(v: &Value) -> Option<String> {
    if !is_intrinsic(v) {
        return None;
    }
    if let Some(Value::String(s)) = v.get("Ref") {
        return Some(s.clone());
    }
    match v.get("Fn::GetAtt") {
        Some(Value::Array(a)) if a.len() == 2 => a[0].as_str().map(str::to_string),
        Some(Value::String(s)) => {
            let tokens: Vec<&str> = s.split('.').collect();
            (tokens.len() == 2).then(|| tokens[0].to_string())
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn params() -> Map<String, Value> {
        json!({"Stage": "beta", "Count": 10, "AWS::Region": "us-east-1"})
            .as_object()
            .unwrap()
            .clone()
    }

    #[test]
    fn parameter_refs_and_subs_are_inlined_other_intrinsics_kept() {
        let v = json!({"a": {"Ref": "Stage"}, "b": {"Fn::Sub": "x-${Stage}-${AWS::Region}-${Other}"},
                       "c": {"Fn::GetAtt": ["R", "Arn"]}, "d": [{"Ref": "Count"}, {"Ref": "R"}]});
        let out = resolve_parameter_refs(v, &params()).unwrap();
        assert_eq!(
            out,
            json!({"a": "beta", "b": {"Fn::Sub": "x-beta-us-east-1-${Other}"},
                   "c": {"Fn::GetAtt": ["R", "Arn"]}, "d": [10, {"Ref": "R"}]})
        );
    }

    #[test]
    fn sub_with_a_non_string_parameter_is_a_document_error() {
        let err = resolve_parameter_refs(json!({"Fn::Sub": "${Count}"}), &params()).unwrap_err();
        let Failure::Document(e) = err else { panic!() };
        assert!(e[0].message.contains("Invalid Fn::Sub variable value 10."));
    }

    #[test]
    fn find_in_map_resolves_two_levels() {
        let maps = json!({"M": {"beta": {"K": "v"}}}).as_object().unwrap().clone();
        let out = resolve_find_in_map(json!({"Fn::FindInMap": ["M", "beta", "K"]}), &maps).unwrap();
        assert_eq!(out, json!("v"));
        let keep = json!({"Fn::FindInMap": ["M", {"Ref": "S"}, "K"]});
        assert_eq!(resolve_find_in_map(keep.clone(), &maps).unwrap(), keep);
    }

    #[test]
    fn sam_resource_refs_are_rewritten() {
        let mut refs = ResourceRefs::default();
        refs.add("F", "Alias", "FAliaslive");
        refs.add("F", "Version", "FVersionabc");
        let v = json!([{"Ref": "F.Alias"}, {"Fn::GetAtt": ["F.Version", "Version"]}, {"Fn::Sub": "${F.Alias}"}, {"Ref": "F"}]);
        assert_eq!(
            resolve_sam_resource_refs(v, &refs),
            json!([{"Ref": "FAliaslive"}, {"Fn::GetAtt": ["FVersionabc", "Version"]}, {"Fn::Sub": "${FAliaslive}"}, {"Ref": "F"}])
        );
    }
}
