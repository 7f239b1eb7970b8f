//! The dependency graph of a template's resources: `Ref`, `Fn::GetAtt`, `Fn::Sub` references and
//! `DependsOn`, in an order that creates every resource after what it needs. Cycles are errors.

use crate::template::{Template, TemplateError};
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};

/// The resources a value refers to (among `ids`).
pub fn references(v: &Value, ids: &BTreeSet<String>, out: &mut BTreeSet<String>) {
    match v {
        Value::Object(o) => {
            if o.len() == 1 {
                let (k, arg) = o.iter().next().expect("one entry");
                match k.as_str() {
                    "Ref" => {
                        if let Some(s) = arg.as_str().filter(|s| ids.contains(*s)) {
                            out.insert(s.to_string());
                        }
                        return;
                    }
                    "Fn::GetAtt" => {
                        let id = match arg {
                            Value::String(s) => s.split('.').next().map(String::from),
                            Value::Array(a) => a.first().and_then(Value::as_str).map(String::from),
                            _ => None,
                        };
                        if let Some(id) = id.filter(|i| ids.contains(i)) {
                            out.insert(id);
                        }
                        if let Value::Array(a) = arg {
                            a.iter().skip(1).for_each(|x| references(x, ids, out));
                        }
                        return;
                    }
                    "Fn::Sub" => {
                        let (text, vars) = match arg {
                            Value::String(s) => (s.as_str(), None),
                            Value::Array(a) => (a.first().and_then(Value::as_str).unwrap_or(""), a.get(1)),
                            _ => ("", None),
                        };
                        let declared: BTreeSet<&str> = vars
                            .and_then(Value::as_object)
                            .map(|m| m.keys().map(String::as_str).collect())
                            .unwrap_or_default();
                        let mut rest = text;
                        while let Some(start) = rest.find("${") {
                            let after = &rest[start + 2..];
                            let Some(end) = after.find('}') else { break };
                            let name = after[..end].trim();
                            if !name.starts_with('!') && !declared.contains(name) {
                                let id = name.split('.').next().unwrap_or(name);
                                if ids.contains(id) {
                                    out.insert(id.to_string());
                                }
                            }
                            rest = &after[end + 1..];
                        }
                        if let Some(v) = vars {
                            references(v, ids, out);
                        }
                        return;
                    }
                    _ => {}
                }
            }
            o.values().for_each(|x| references(x, ids, out));
        }
        Value::Array(a) => a.iter().for_each(|x| references(x, ids, out)),
        _ => {}
    }
}

/// Each resource's dependencies (references in its properties, update policy, and DependsOn).
pub fn dependencies(t: &Template) -> Result<BTreeMap<String, BTreeSet<String>>, TemplateError> {
    let resources = t.resources();
    let ids: BTreeSet<String> = resources.iter().map(|r| r.logical_id.clone()).collect();
    let mut deps = BTreeMap::new();
    for r in &resources {
        let mut d = BTreeSet::new();
        references(&r.properties, &ids, &mut d);
        if let Some(up) = &r.update_policy {
            references(up, &ids, &mut d);
        }
        for dep in &r.depends_on {
            if !ids.contains(dep) {
                return Err(
                    TemplateError::new(&t.file, format!("DependsOn names `{dep}`, which is not a resource"))
                        .at(r.line)
                        .resource(&r.logical_id)
                        .help("name a logical id from `Resources`"),
                );
            }
            d.insert(dep.clone());
        }
        if d.contains(&r.logical_id) {
            return Err(TemplateError::new(&t.file, "the resource refers to itself")
                .at(r.line)
                .resource(&r.logical_id));
        }
        deps.insert(r.logical_id.clone(), d);
    }
    // References to unknown names in Ref/GetAtt are caught by evaluation; here only the graph.
    Ok(deps)
}

/// Resources in creation order (dependencies first, then template order); deletion is the reverse.
pub fn creation_order(t: &Template) -> Result<Vec<String>, TemplateError> {
    let deps = dependencies(t)?;
    let order_in_file: Vec<String> = t.resources().into_iter().map(|r| r.logical_id).collect();
    let mut done: BTreeSet<String> = BTreeSet::new();
    let mut out = Vec::new();
    while out.len() < order_in_file.len() {
        let next = order_in_file
            .iter()
            .find(|id| !done.contains(*id) && deps[*id].iter().all(|d| done.contains(d)));
        match next {
            Some(id) => {
                done.insert(id.clone());
                out.push(id.clone());
            }
            None => {
                let left: Vec<&String> = order_in_file.iter().filter(|id| !done.contains(*id)).collect();
                let cycle = find_cycle(&deps, &left);
                let first = cycle.first().cloned().unwrap_or_default();
                return Err(TemplateError::new(
                    &t.file,
                    format!("circular dependency between resources: {}", cycle.join(" -> ")),
                )
                .at(t.line_of(&first))
                .resource(&first)
                .help("break the cycle: remove one Ref/GetAtt/DependsOn, or move the value into a parameter"));
            }
        }
    }
    Ok(out)
}

fn find_cycle(deps: &BTreeMap<String, BTreeSet<String>>, left: &[&String]) -> Vec<String> {
    let left_set: BTreeSet<&String> = left.iter().copied().collect();
    let Some(start) = left.first() else { return Vec::new() };
    let mut path: Vec<String> = vec![(*start).clone()];
    loop {
        let cur = path.last().expect("non-empty").clone();
        let next = deps[&cur].iter().find(|d| left_set.contains(d)).cloned();
        match next {
            Some(n) => {
                if let Some(pos) = path.iter().position(|p| *p == n) {
                    let mut cycle = path[pos..].to_vec();
                    cycle.push(n);
                    return cycle;
                }
                path.push(n);
            }
            None => return path,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sam::SamOptions;

    #[test]
    fn order_follows_references_and_cycles_are_named() {
        let t = Template::parse(
            "t.yaml",
            "Resources:\n  B:\n    Type: X::Y\n    Properties:\n      A: !Sub '${A.Arn}'\n  A:\n    Type: X::Y\n    DependsOn: C\n  C:\n    Type: X::Y\n",
            &SamOptions::default(),
        )
        .unwrap();
        assert_eq!(creation_order(&t).unwrap(), vec!["C", "A", "B"]);
        let t = Template::parse(
            "t.yaml",
            "Resources:\n  A:\n    Type: X::Y\n    Properties:\n      P: !Ref B\n  B:\n    Type: X::Y\n    Properties:\n      P: !GetAtt A.Arn\n",
            &SamOptions::default(),
        )
        .unwrap();
        let e = creation_order(&t).unwrap_err();
        assert!(e.message.contains("A -> B -> A"), "{e}");
        assert_eq!(e.line, Some(2));
        assert_eq!(e.logical_id.as_deref(), Some("A"));
    }
}
