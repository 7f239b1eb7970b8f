//! Parameters, conditions and intrinsic functions, evaluated as CloudFormation does.

use crate::template::{Template, TemplateError};
use base64::Engine as _;
use serde_json::{Map, Value};
use std::collections::{BTreeMap, BTreeSet};

/// Pseudo parameters of one stack in one region.
#[derive(Debug, Clone)]
pub struct Pseudo {
    pub region: String,
    pub account_id: String,
    pub stack_name: String,
    pub stack_id: String,
    pub partition: String,
    pub url_suffix: String,
}

impl Pseudo {
    pub fn new(region: &str, account_id: &str, stack_name: &str, stack_id: &str) -> Self {
        Pseudo {
            region: region.to_string(),
            account_id: account_id.to_string(),
            stack_name: stack_name.to_string(),
            stack_id: stack_id.to_string(),
            partition: "aws".into(),
            url_suffix: "amazonaws.com".into(),
        }
    }
}

/// What only the deployer knows: physical ids and attributes of resources, and the region's exports.
pub trait Resolver {
    /// `Ref` of a resource: its physical id, once created.
    fn physical_id(&self, logical_id: &str) -> Option<Value>;
    /// `Fn::GetAtt`, once the resource exists.
    fn attribute(&self, logical_id: &str, attr: &str) -> Option<Value>;
    /// `Fn::ImportValue`.
    fn import(&self, name: &str) -> Option<String>;
    /// `Fn::GetStackOutput`: the output `output` of the stack `stack` in `region` (exported or
    /// not). Unknown by default.
    fn stack_output(&self, _region: &str, _stack: &str, _output: &str) -> Option<String> {
        None
    }
}

/// A resolver that knows nothing (templates with no deployed state).
pub struct NoResources;

impl Resolver for NoResources {
    fn physical_id(&self, _: &str) -> Option<Value> {
        None
    }
    fn attribute(&self, _: &str, _: &str) -> Option<Value> {
        None
    }
    fn import(&self, _: &str) -> Option<String> {
        None
    }
}

/// Parameter values after defaults, types and constraints.
#[derive(Debug, Clone, Default)]
pub struct Parameters {
    /// As intrinsic functions see them: strings, numbers as strings, lists for list types.
    pub values: BTreeMap<String, Value>,
    /// The values as given or defaulted, as strings (what a stack records).
    pub raw: BTreeMap<String, String>,
    /// Parameters declared `NoEcho: true`: shown as `****` everywhere.
    pub no_echo: BTreeSet<String>,
}

impl Parameters {
    /// The value as listings show it: `****` for NoEcho parameters.
    pub fn shown(&self, name: &str) -> Option<String> {
        if self.no_echo.contains(name) {
            return Some("****".into());
        }
        self.raw.get(name).cloned()
    }

    /// Values to mask in every message and log (the NoEcho ones).
    pub fn secrets(&self) -> Vec<String> {
        self.no_echo
            .iter()
            .filter_map(|n| self.raw.get(n).cloned())
            .filter(|v| !v.is_empty())
            .collect()
    }
}

fn scalar_string(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

/// CloudFormation's quota on a parameter's value.
pub const MAX_PARAMETER_VALUE_BYTES: usize = 4096;

/// Resolves the template's parameters from the values given (`--param`, ParameterOverrides) and
/// the defaults, checks types and constraints, and reads `AWS::SSM::Parameter::Value<...>` types
/// from the local parameter store (`ssm`).
pub fn resolve_parameters(
    t: &Template,
    given: &BTreeMap<String, String>,
    ssm: &dyn Fn(&str) -> Option<String>,
) -> Result<Parameters, TemplateError> {
    let mut out = Parameters::default();
    let decls = t
        .original
        .get("Parameters")
        .and_then(Value::as_object)
        .cloned()
        .unwrap_or_default();
    for name in given.keys() {
        if !decls.contains_key(name) {
            let known: Vec<&String> = decls.keys().collect();
            return Err(
                TemplateError::new(&t.file, format!("parameter `{name}` is not declared in the template")).help(
                    if known.is_empty() {
                        "the template declares no parameters; remove it".to_string()
                    } else {
                        format!(
                            "declared parameters: {}",
                            known.iter().map(|s| s.as_str()).collect::<Vec<_>>().join(", ")
                        )
                    },
                ),
            );
        }
    }
    for (name, decl) in &decls {
        let line = t.line_of(name);
        let err = |m: String| TemplateError::new(&t.file, m).at(line);
        let ty = decl.get("Type").and_then(Value::as_str).unwrap_or("String");
        if decl
            .get("NoEcho")
            .is_some_and(|v| v == &Value::Bool(true) || v == "true")
        {
            out.no_echo.insert(name.clone());
        }
        let value = match given.get(name) {
            Some(v) => v.clone(),
            None => match decl.get("Default").and_then(scalar_string) {
                Some(d) => d,
                None => match decl.get("Default") {
                    Some(Value::Array(items)) => items.iter().filter_map(scalar_string).collect::<Vec<_>>().join(","),
                    _ => {
                        return Err(err(format!("parameter `{name}` has no value and no Default"))
                            .help(format!("give it with `--param {name}=VALUE`")))
                    }
                },
            },
        };
        if value.len() > MAX_PARAMETER_VALUE_BYTES {
            return Err(err(format!(
                "parameter `{name}` is {} bytes long; CloudFormation takes parameter values of at most {MAX_PARAMETER_VALUE_BYTES} bytes",
                value.len()
            ))
            .help("keep large values in SSM Parameter Store and give the parameter the type `AWS::SSM::Parameter::Value<String>` (its value is then the parameter's name), or ship them as a file in the artifact"));
        }
        let shown = |v: &str| {
            if out.no_echo.contains(name) {
                "****".to_string()
            } else {
                format!("`{v}`")
            }
        };
        let mut effective = value.clone();
        if let Some(inner) = ty
            .strip_prefix("AWS::SSM::Parameter::Value<")
            .and_then(|s| s.strip_suffix('>'))
        {
            effective = ssm(&value).ok_or_else(|| {
                err(format!(
                    "parameter `{name}` names the SSM parameter `{value}`, which does not exist in this region"
                ))
                .help(format!(
                    "create it with `meridian secrets put --region REGION --kind parameter {value} VALUE`"
                ))
            })?;
            if inner.starts_with("List<") || inner == "CommaDelimitedList" {
                out.values.insert(name.clone(), split_list(&effective));
            } else {
                out.values.insert(name.clone(), Value::String(effective.clone()));
            }
        } else if ty == "Number" {
            if effective.trim().parse::<f64>().is_err() {
                return Err(err(format!(
                    "parameter `{name}` is a Number, but {} is not a number",
                    shown(&effective)
                )));
            }
            out.values.insert(name.clone(), Value::String(effective.clone()));
        } else if ty == "List<Number>" {
            for item in effective.split(',') {
                if item.trim().parse::<f64>().is_err() {
                    return Err(err(format!(
                        "parameter `{name}` is a List<Number>, but `{item}` is not a number"
                    )));
                }
            }
            out.values.insert(name.clone(), split_list(&effective));
        } else if ty == "CommaDelimitedList" || ty.starts_with("List<") {
            out.values.insert(name.clone(), split_list(&effective));
        } else {
            out.values.insert(name.clone(), Value::String(effective.clone()));
        }
        check_constraints(name, decl, &effective, ty, &shown).map_err(|(m, h)| err(m).help(h))?;
        out.raw.insert(name.clone(), value);
    }
    Ok(out)
}

fn split_list(s: &str) -> Value {
    if s.is_empty() {
        return Value::Array(Vec::new());
    }
    Value::Array(s.split(',').map(|p| Value::String(p.trim().to_string())).collect())
}

fn check_constraints(
    name: &str,
    decl: &Value,
    value: &str,
    ty: &str,
    shown: &dyn Fn(&str) -> String,
) -> Result<(), (String, String)> {
    let values: Vec<&str> = if ty == "CommaDelimitedList" || ty.starts_with("List<") {
        value.split(',').map(str::trim).collect()
    } else {
        vec![value]
    };
    for v in values {
        if let Some(allowed) = decl.get("AllowedValues").and_then(Value::as_array) {
            let allowed: Vec<String> = allowed.iter().filter_map(scalar_string).collect();
            if !allowed.iter().any(|a| a == v) {
                return Err((
                    format!("parameter `{name}`: {} is not one of the AllowedValues", shown(v)),
                    format!("use one of: {}", allowed.join(", ")),
                ));
            }
        }
        if let Some(pattern) = decl.get("AllowedPattern").and_then(Value::as_str) {
            let re = java_regex(pattern);
            match re {
                Ok(re) if !re.is_match(v).unwrap_or(false) => {
                    let desc = decl.get("ConstraintDescription").and_then(Value::as_str).unwrap_or("");
                    return Err((
                        format!(
                            "parameter `{name}`: {} does not match the AllowedPattern `{pattern}`",
                            shown(v)
                        ),
                        if desc.is_empty() {
                            format!("give a value matching `{pattern}`")
                        } else {
                            desc.to_string()
                        },
                    ));
                }
                Err(e) => {
                    return Err((
                        format!("parameter `{name}`: AllowedPattern `{pattern}` is not a valid regular expression: {e}"),
                        "fix the pattern (CloudFormation reads it as a Java regular expression that must match the whole value)".into(),
                    ))
                }
                _ => {}
            }
        }
        let num = |k: &str| decl.get(k).and_then(scalar_string).and_then(|s| s.parse::<f64>().ok());
        if let Some(min) = num("MinLength") {
            if (v.chars().count() as f64) < min {
                return Err((
                    format!("parameter `{name}` is shorter than MinLength {min}"),
                    "give a longer value".into(),
                ));
            }
        }
        if let Some(max) = num("MaxLength") {
            if (v.chars().count() as f64) > max {
                return Err((
                    format!("parameter `{name}` is longer than MaxLength {max}"),
                    "give a shorter value".into(),
                ));
            }
        }
        if let Ok(n) = v.trim().parse::<f64>() {
            if let Some(min) = num("MinValue") {
                if n < min {
                    return Err((
                        format!("parameter `{name}`: {} is below MinValue {min}", shown(v)),
                        format!("give a number >= {min}"),
                    ));
                }
            }
            if let Some(max) = num("MaxValue") {
                if n > max {
                    return Err((
                        format!("parameter `{name}`: {} is above MaxValue {max}", shown(v)),
                        format!("give a number <= {max}"),
                    ));
                }
            }
        }
    }
    Ok(())
}

pub use meridian_pipeline::pattern::java_regex;

/// Evaluates intrinsic functions for one stack.
pub struct Evaluator<'a> {
    pub template: &'a Template,
    pub params: &'a Parameters,
    pub pseudo: &'a Pseudo,
    pub resolver: &'a dyn Resolver,
    pub conditions: BTreeMap<String, bool>,
    /// Planning: a resource attribute not known yet becomes `{{pending:Id.Attr}}` instead of an error.
    pub lenient: bool,
}

/// A placeholder for a value only known after a resource is created (planning only).
pub fn pending(id: &str, attr: Option<&str>) -> String {
    match attr {
        Some(a) => format!("{{{{pending:{id}.{a}}}}}"),
        None => format!("{{{{pending:{id}}}}}"),
    }
}

/// The stand-in a value holds when it is known only once a resource exists: `{{pending:...}}`
/// while planning, `{{placeholder:...}}` for an attribute of a resource local regions only record.
/// A function whose input is unknown (`Fn::Split` of a pending ARN, `Fn::Cidr` of a pending CIDR
/// block, `Fn::Select` from a pending list) gives that stand-in as its result, as CloudFormation
/// leaves such values to when the resource that needs them is created.
pub fn unknown_in(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => ["{{pending:", "{{placeholder:"].iter().find_map(|open| {
            let start = s.find(open)?;
            let end = s[start..].find("}}")? + start + 2;
            Some(s[start..end].to_string())
        }),
        Value::Array(a) => a.iter().find_map(unknown_in),
        Value::Object(o) => o.values().find_map(unknown_in),
        _ => None,
    }
}

pub fn is_pending(v: &Value) -> bool {
    match v {
        Value::String(s) => s.contains("{{pending:"),
        Value::Array(a) => a.iter().any(is_pending),
        Value::Object(o) => o.values().any(is_pending),
        _ => false,
    }
}

type R<T> = Result<T, String>;

/// The largest value one intrinsic function may produce, in bytes (a list counts its strings
/// plus two bytes per item): 4 MiB. CloudFormation's whole template is at most 1 MB, so only a
/// runaway nesting (sixty `Fn::Base64` inside each other write 373 MB) comes near.
pub const MAX_VALUE_BYTES: usize = 4 * 1024 * 1024;

const TOO_LARGE: &str = "the value would be ";
const TOO_LARGE_AT: &str = "the value of property `";

/// The error for a value of `n` bytes made by `f`, before it is made.
fn too_large(f: &str, n: usize) -> String {
    format!(
        "{TOO_LARGE}{n} bytes (made by {f}), over Meridian's limit of {MAX_VALUE_BYTES} bytes (4 MiB) for one value; CloudFormation accepts templates of at most 1 MB, so look for {f} nested in itself or repeating a large value"
    )
}

fn check_size(f: &str, n: usize) -> R<()> {
    if n > MAX_VALUE_BYTES {
        Err(too_large(f, n))
    } else {
        Ok(())
    }
}

/// Names the property a size error happened in, from the innermost key out
/// (`the value of property `UserData.Fn::Base64``).
fn in_property(key: &str, e: String) -> String {
    if let Some(rest) = e.strip_prefix(TOO_LARGE) {
        format!("{TOO_LARGE_AT}{key}` would be {rest}")
    } else if let Some(rest) = e.strip_prefix(TOO_LARGE_AT) {
        format!("{TOO_LARGE_AT}{key}.{rest}")
    } else {
        e
    }
}

impl<'a> Evaluator<'a> {
    pub fn new(
        template: &'a Template,
        params: &'a Parameters,
        pseudo: &'a Pseudo,
        resolver: &'a dyn Resolver,
    ) -> Result<Self, TemplateError> {
        let mut e = Evaluator {
            template,
            params,
            pseudo,
            resolver,
            conditions: BTreeMap::new(),
            lenient: false,
        };
        let conds = template.section("Conditions").cloned().unwrap_or_default();
        let mut visiting = Vec::new();
        for name in conds.keys() {
            let v = e
                .condition(name, &conds, &mut visiting)
                .map_err(|m| TemplateError::new(&template.file, m).at(template.line_of("Conditions")))?;
            e.conditions.insert(name.clone(), v);
        }
        Ok(e)
    }

    fn condition(&self, name: &str, conds: &Map<String, Value>, visiting: &mut Vec<String>) -> R<bool> {
        if let Some(v) = self.conditions.get(name) {
            return Ok(*v);
        }
        if visiting.iter().any(|n| n == name) {
            return Err(format!(
                "condition `{name}` refers to itself through {}",
                visiting.join(" -> ")
            ));
        }
        let def = conds
            .get(name)
            .ok_or_else(|| format!("condition `{name}` is not declared in `Conditions`"))?;
        visiting.push(name.to_string());
        let v = self.cond_expr(def, conds, visiting);
        visiting.pop();
        v
    }

    fn cond_expr(&self, v: &Value, conds: &Map<String, Value>, visiting: &mut Vec<String>) -> R<bool> {
        let Some((f, arg)) = one_key(v) else {
            return match v {
                Value::Bool(b) => Ok(*b),
                Value::String(s) if s == "true" => Ok(true),
                Value::String(s) if s == "false" => Ok(false),
                _ => Err(format!(
                    "a condition must be Fn::Equals, Fn::And, Fn::Or, Fn::Not or Condition, found {v}"
                )),
            };
        };
        let list = |n: usize| -> R<&Vec<Value>> {
            arg.as_array().filter(|a| n == 0 || a.len() == n).ok_or_else(|| {
                format!(
                    "{f} takes a list{}",
                    if n > 0 { format!(" of {n}") } else { String::new() }
                )
            })
        };
        match f {
            "Condition" => self.condition(arg.as_str().ok_or("Condition takes a condition name")?, conds, visiting),
            "Fn::Equals" => {
                let a = list(2)?;
                let x = self.eval_for_condition(&a[0])?;
                let y = self.eval_for_condition(&a[1])?;
                Ok(loose_eq(&x, &y))
            }
            "Fn::Not" => Ok(!self.cond_expr(&list(1)?[0], conds, visiting)?),
            "Fn::And" | "Fn::Or" => {
                let items = list(0)?;
                if !(2..=10).contains(&items.len()) {
                    return Err(format!("{f} takes 2 to 10 conditions"));
                }
                let mut vals = Vec::new();
                for i in items {
                    vals.push(self.cond_expr(i, conds, visiting)?);
                }
                Ok(if f == "Fn::And" {
                    vals.iter().all(|b| *b)
                } else {
                    vals.iter().any(|b| *b)
                })
            }
            _ => Err(format!("{f} cannot be used as a condition")),
        }
    }

    fn eval_for_condition(&self, v: &Value) -> R<Value> {
        Ok(self.eval(v)?.unwrap_or(Value::Null))
    }

    /// Evaluates a value; `None` is `AWS::NoValue` (the property is removed).
    pub fn eval(&self, v: &Value) -> R<Option<Value>> {
        match v {
            Value::Object(o) => {
                if let Some((f, arg)) = one_key(v) {
                    if f == "Ref" || f.starts_with("Fn::") {
                        return self.intrinsic(f, arg);
                    }
                }
                let mut out = Map::new();
                for (k, val) in o {
                    if let Some(x) = self.eval(val).map_err(|e| in_property(k, e))? {
                        out.insert(k.clone(), x);
                    }
                }
                Ok(Some(Value::Object(out)))
            }
            Value::Array(a) => {
                let mut out = Vec::new();
                for (i, item) in a.iter().enumerate() {
                    if let Some(x) = self.eval(item).map_err(|e| in_property(&i.to_string(), e))? {
                        out.push(x);
                    }
                }
                Ok(Some(Value::Array(out)))
            }
            other => Ok(Some(other.clone())),
        }
    }

    fn must(&self, v: &Value) -> R<Value> {
        self.eval(v)?
            .ok_or_else(|| "AWS::NoValue cannot be used here".to_string())
    }

    fn string(&self, v: &Value, what: &str) -> R<String> {
        let x = self.must(v)?;
        scalar_string(&x).ok_or_else(|| format!("{what} must be a string, found {x}"))
    }

    fn reference(&self, name: &str) -> R<Option<Value>> {
        let p = self.pseudo;
        Ok(Some(match name {
            "AWS::NoValue" => return Ok(None),
            "AWS::Region" => Value::String(p.region.clone()),
            "AWS::AccountId" => Value::String(p.account_id.clone()),
            "AWS::StackName" => Value::String(p.stack_name.clone()),
            "AWS::StackId" => Value::String(p.stack_id.clone()),
            "AWS::Partition" => Value::String(p.partition.clone()),
            "AWS::URLSuffix" => Value::String(p.url_suffix.clone()),
            "AWS::NotificationARNs" => Value::Array(Vec::new()),
            _ => {
                if let Some(v) = self.params.values.get(name) {
                    return Ok(Some(v.clone()));
                }
                if self.template.section("Resources").is_some_and(|r| r.contains_key(name)) {
                    match self.resolver.physical_id(name) {
                        Some(v) => v,
                        None if self.lenient => Value::String(pending(name, None)),
                        None => return Err(format!("`{name}` is not created yet")),
                    }
                } else {
                    return Err(format!(
                        "Ref `{name}` names no parameter, resource or pseudo parameter (AWS::Region, AWS::AccountId, AWS::StackName, AWS::StackId, AWS::Partition, AWS::URLSuffix, AWS::NoValue)"
                    ));
                }
            }
        }))
    }

    fn get_att(&self, id: &str, attr: &str) -> R<Value> {
        if !self.template.section("Resources").is_some_and(|r| r.contains_key(id)) {
            return Err(format!(
                "Fn::GetAtt names `{id}`, which is not a resource of this template"
            ));
        }
        match self.resolver.attribute(id, attr) {
            Some(v) => Ok(v),
            None if self.lenient => Ok(Value::String(pending(id, Some(attr)))),
            None => Err(format!("`{id}` has no attribute `{attr}` (or is not created yet)")),
        }
    }

    fn intrinsic(&self, f: &str, arg: &Value) -> R<Option<Value>> {
        let v = self.intrinsic_value(f, arg).map_err(|e| {
            if e.starts_with(TOO_LARGE_AT) {
                in_property(f, e)
            } else {
                e
            }
        })?;
        if let Some(v) = &v {
            check_size(f, value_size(v))?;
        }
        Ok(v)
    }

    fn intrinsic_value(&self, f: &str, arg: &Value) -> R<Option<Value>> {
        let list = |n: usize| -> R<&Vec<Value>> {
            arg.as_array()
                .filter(|a| a.len() == n)
                .ok_or_else(|| format!("{f} takes a list of {n} items"))
        };
        Ok(Some(match f {
            "Ref" => return self.reference(arg.as_str().ok_or("Ref takes a name")?),
            "Fn::GetAtt" => {
                let (id, attr) = match arg {
                    Value::String(s) => {
                        let (a, b) = s.split_once('.').ok_or("Fn::GetAtt takes `Resource.Attribute`")?;
                        (a.to_string(), b.to_string())
                    }
                    Value::Array(a) if a.len() == 2 => (
                        self.string(&a[0], "Fn::GetAtt's resource")?,
                        self.string(&a[1], "Fn::GetAtt's attribute")?,
                    ),
                    _ => return Err("Fn::GetAtt takes [Resource, Attribute]".into()),
                };
                self.get_att(&id, &attr)?
            }
            "Fn::Join" => {
                let a = list(2)?;
                let sep = self.string(&a[0], "Fn::Join's delimiter")?;
                let items = self.must(&a[1])?;
                if let (Some(m), false) = (unknown_in(&items), items.is_array()) {
                    return Ok(Some(Value::String(m)));
                }
                let items = items.as_array().ok_or("Fn::Join's second item must be a list")?;
                let parts: R<Vec<String>> = items
                    .iter()
                    .map(|i| scalar_string(i).ok_or_else(|| format!("Fn::Join can only join strings, found {i}")))
                    .collect();
                let parts = parts?;
                let total = parts.iter().map(String::len).sum::<usize>()
                    + sep.len().saturating_mul(parts.len().saturating_sub(1));
                check_size(f, total)?;
                Value::String(parts.join(&sep))
            }
            "Fn::Sub" => Value::String(self.sub(arg)?),
            "Fn::Select" => {
                let a = list(2)?;
                let idx = self.string(&a[0], "Fn::Select's index")?;
                let items = self.must(&a[1])?;
                if let Some(m) = unknown_in(&Value::String(idx.clone())).or_else(|| {
                    // A list not known yet (a pending list attribute, or a split of a pending string).
                    unknown_in(&items).filter(|_| !items.is_array())
                }) {
                    return Ok(Some(Value::String(m)));
                }
                let idx: usize = idx
                    .trim()
                    .parse()
                    .map_err(|_| format!("Fn::Select's index `{idx}` is not a number"))?;
                let items = items.as_array().ok_or("Fn::Select's second item must be a list")?;
                items.get(idx).cloned().ok_or_else(|| {
                    format!(
                        "Fn::Select index {idx} is out of range (the list has {} items)",
                        items.len()
                    )
                })?
            }
            "Fn::Split" => {
                let a = list(2)?;
                let sep = self.string(&a[0], "Fn::Split's delimiter")?;
                let s = self.string(&a[1], "Fn::Split's source")?;
                if let Some(m) = unknown_in(&Value::String(s.clone())) {
                    return Ok(Some(Value::String(m)));
                }
                let parts = if sep.is_empty() {
                    s.chars().count() + 2
                } else {
                    s.matches(sep.as_str()).count() + 1
                };
                check_size(f, s.len() + 2 * parts)?;
                Value::Array(s.split(sep.as_str()).map(|p| Value::String(p.to_string())).collect())
            }
            "Fn::If" => {
                let a = list(3)?;
                let name = a[0].as_str().ok_or("Fn::If's first item is a condition name")?;
                let c = *self
                    .conditions
                    .get(name)
                    .ok_or_else(|| format!("Fn::If names condition `{name}`, which is not declared"))?;
                return self.eval(if c { &a[1] } else { &a[2] });
            }
            "Fn::Equals" | "Fn::And" | "Fn::Or" | "Fn::Not" | "Condition" => {
                let conds = self.template.section("Conditions").cloned().unwrap_or_default();
                Value::Bool(self.cond_expr(&single(f, arg), &conds, &mut Vec::new())?)
            }
            "Fn::FindInMap" => {
                let a = arg
                    .as_array()
                    .filter(|a| a.len() == 3 || a.len() == 4)
                    .ok_or("Fn::FindInMap takes [MapName, TopKey, SecondKey]")?;
                let m = self.string(&a[0], "Fn::FindInMap's map")?;
                let k1 = self.string(&a[1], "Fn::FindInMap's top-level key")?;
                let k2 = self.string(&a[2], "Fn::FindInMap's second-level key")?;
                if let Some(u) = unknown_in(&Value::Array(vec![
                    Value::String(k1.clone()),
                    Value::String(k2.clone()),
                ])) {
                    return Ok(Some(Value::String(u)));
                }
                let found = self
                    .template
                    .section("Mappings")
                    .and_then(|ms| ms.get(&m))
                    .ok_or_else(|| format!("Fn::FindInMap: mapping `{m}` is not declared"))?
                    .get(&k1)
                    .and_then(|x| x.get(&k2))
                    .cloned();
                match (found, a.get(3)) {
                    (Some(v), _) => v,
                    (None, Some(default)) => self.must(default.get("DefaultValue").unwrap_or(default))?,
                    (None, None) => return Err(format!("Fn::FindInMap: `{m}` has no `{k1}` / `{k2}`")),
                }
            }
            "Fn::ImportValue" => {
                let name = self.string(arg, "Fn::ImportValue's name")?;
                match self.resolver.import(&name) {
                    Some(v) => Value::String(v),
                    None if self.lenient => Value::String(format!("{{{{import:{name}}}}}")),
                    None => return Err(format!("no stack in region {} exports `{name}`", self.pseudo.region)),
                }
            }
            "Fn::GetStackOutput" => self.get_stack_output(arg)?,
            "Fn::Base64" => {
                let input = self.string(arg, "Fn::Base64's input")?;
                if let Some(m) = unknown_in(&Value::String(input.clone())) {
                    return Ok(Some(Value::String(m)));
                }
                check_size(f, input.len().div_ceil(3) * 4)?;
                Value::String(base64::engine::general_purpose::STANDARD.encode(input))
            }
            "Fn::GetAZs" => {
                // `!GetAZs` with no value, like `!GetAZs ''`, is the stack's region.
                let r = match arg {
                    Value::Null => String::new(),
                    _ => self.string(arg, "Fn::GetAZs's region")?,
                };
                let r = if r.is_empty() { self.pseudo.region.clone() } else { r };
                Value::Array(availability_zones(&r).into_iter().map(Value::String).collect())
            }
            "Fn::Cidr" => {
                let a = list(3)?;
                let block = self.string(&a[0], "Fn::Cidr's block")?;
                let count = self.string(&a[1], "Fn::Cidr's count")?;
                let bits = self.string(&a[2], "Fn::Cidr's cidrBits")?;
                let args = Value::Array(vec![
                    Value::String(block.clone()),
                    Value::String(count.clone()),
                    Value::String(bits.clone()),
                ]);
                if let Some(m) = unknown_in(&args) {
                    return Ok(Some(Value::String(m)));
                }
                Value::Array(cidr(&block, &count, &bits)?.into_iter().map(Value::String).collect())
            }
            "Fn::Length" => {
                let v = self.must(arg)?;
                if let (Some(m), false) = (unknown_in(&v), v.is_array()) {
                    return Ok(Some(Value::String(m)));
                }
                Value::from(v.as_array().ok_or("Fn::Length takes a list")?.len())
            }
            "Fn::ToJsonString" => Value::String(self.must(arg)?.to_string()),
            _ => return Err(format!("unknown intrinsic function `{f}`")),
        }))
    }

    /// `Fn::GetStackOutput` (its own function: the frame of `intrinsic_value`, which every nested
    /// function goes through, stays small).
    #[inline(never)]
    fn get_stack_output(&self, arg: &Value) -> R<Value> {
        let usage = "Fn::GetStackOutput takes {StackName: NAME, OutputName: NAME, Region: REGION, RoleArn: ARN} (Region and RoleArn optional)";
        let o = arg.as_object().ok_or(usage)?;
        if let Some(k) = o
            .keys()
            .find(|k| !matches!(k.as_str(), "StackName" | "OutputName" | "Region" | "RoleArn"))
        {
            return Err(format!("Fn::GetStackOutput has no key `{k}`: {usage}"));
        }
        let field = |k: &str| -> R<Option<String>> {
            o.get(k)
                .map(|v| self.string(v, &format!("Fn::GetStackOutput's {k}")))
                .transpose()
        };
        let stack = field("StackName")?.ok_or(usage)?;
        let output = field("OutputName")?.ok_or(usage)?;
        let region = field("Region")?.unwrap_or_else(|| self.pseudo.region.clone());
        // RoleArn reaches another account on AWS; local regions are one account.
        field("RoleArn")?;
        if let Some(u) = unknown_in(&Value::Array(vec![
            Value::String(stack.clone()),
            Value::String(output.clone()),
        ])) {
            return Ok(Value::String(u));
        }
        Ok(match self.resolver.stack_output(&region, &stack, &output) {
            Some(v) => Value::String(v),
            None if self.lenient => Value::String(format!("{{{{pending:GetStackOutput.{stack}.{output}}}}}")),
            None => {
                return Err(format!(
                    "Fn::GetStackOutput: stack `{stack}` in {region} has no output `{output}` (or does not exist)"
                ))
            }
        })
    }

    fn sub(&self, arg: &Value) -> R<String> {
        let (text, vars) = match arg {
            Value::String(s) => (s.clone(), Map::new()),
            Value::Array(a) if a.len() == 2 => {
                let text = a[0]
                    .as_str()
                    .ok_or("Fn::Sub's first item must be a string")?
                    .to_string();
                let vars = a[1]
                    .as_object()
                    .ok_or("Fn::Sub's second item must be a mapping of variables")?;
                let mut ev = Map::new();
                for (k, v) in vars {
                    ev.insert(k.clone(), self.must(v)?);
                }
                (text, ev)
            }
            _ => return Err("Fn::Sub takes a string or [string, {variables}]".into()),
        };
        let mut out = String::new();
        let mut rest = text.as_str();
        while let Some(start) = rest.find("${") {
            out.push_str(&rest[..start]);
            let after = &rest[start + 2..];
            if let Some(lit) = after.strip_prefix('!') {
                out.push_str("${");
                rest = lit;
                continue;
            }
            let end = after.find('}').ok_or("Fn::Sub: `${` without a closing `}`")?;
            let name = after[..end].trim();
            let value = if let Some(v) = vars.get(name) {
                v.clone()
            } else if let Some((id, attr)) = name.split_once('.').filter(|_| !name.starts_with("AWS::")) {
                self.get_att(id, attr)?
            } else {
                self.reference(name)?.unwrap_or(Value::String(String::new()))
            };
            let value = scalar_string(&value).ok_or_else(|| format!("Fn::Sub: `${{{name}}}` is not a string"))?;
            check_size("Fn::Sub", out.len() + value.len() + rest.len())?;
            out.push_str(&value);
            rest = &after[end + 1..];
        }
        out.push_str(rest);
        Ok(out)
    }
}

/// A value's size as [`MAX_VALUE_BYTES`] counts it: strings by their bytes, two more per item
/// of a list or entry of a mapping (and its key), scalars as written.
fn value_size(v: &Value) -> usize {
    match v {
        Value::String(s) => s.len(),
        Value::Array(a) => a.iter().map(|x| value_size(x) + 2).sum(),
        Value::Object(o) => o.iter().map(|(k, x)| k.len() + value_size(x) + 2).sum(),
        Value::Null | Value::Bool(_) => 4,
        Value::Number(n) => n.to_string().len(),
    }
}

fn single(f: &str, arg: &Value) -> Value {
    let mut m = Map::new();
    m.insert(f.to_string(), arg.clone());
    Value::Object(m)
}

pub(crate) fn one_key(v: &Value) -> Option<(&str, &Value)> {
    let o = v.as_object()?;
    if o.len() != 1 {
        return None;
    }
    o.iter().next().map(|(k, v)| (k.as_str(), v))
}

fn loose_eq(a: &Value, b: &Value) -> bool {
    match (scalar_string(a), scalar_string(b)) {
        (Some(x), Some(y)) => x == y,
        _ => a == b,
    }
}

/// The availability zones `Fn::GetAZs` lists for a region: the zones of the AWS region of that
/// name (as an account created today sees them: us-east-1 has six, us-west-1 two, ap-northeast-1
/// has no `b`); a region not in the table has `a`, `b` and `c`.
pub fn availability_zones(region: &str) -> Vec<String> {
    let letters: &[&str] = match region {
        "us-east-1" => &["a", "b", "c", "d", "e", "f"],
        "us-west-1" => &["b", "c"],
        "us-west-2" | "ap-northeast-2" => &["a", "b", "c", "d"],
        "ca-central-1" => &["a", "b", "d"],
        "ap-northeast-1" => &["a", "c", "d"],
        _ => &["a", "b", "c"],
    };
    letters.iter().map(|l| format!("{region}{l}")).collect()
}

/// `Fn::Cidr`: `count` subnets of `bits` host bits each (a /24 in IPv4 is 8 bits, a /64 in IPv6
/// 64 bits), from the start of `block`, IPv4 or IPv6.
fn cidr(block: &str, count: &str, bits: &str) -> R<Vec<String>> {
    let (addr, prefix) = block
        .split_once('/')
        .ok_or_else(|| format!("Fn::Cidr: `{block}` is not a CIDR block"))?;
    let prefix: u32 = prefix
        .parse()
        .map_err(|_| format!("Fn::Cidr: bad prefix in `{block}`"))?;
    let count: u32 = count
        .trim()
        .parse()
        .map_err(|_| format!("Fn::Cidr: count `{count}` is not a number"))?;
    let bits: u32 = bits
        .trim()
        .parse()
        .map_err(|_| format!("Fn::Cidr: cidrBits `{bits}` is not a number"))?;
    let ip: std::net::IpAddr = addr
        .parse()
        .map_err(|_| format!("Fn::Cidr: `{addr}` is not an IPv4 or IPv6 address"))?;
    let width: u32 = if ip.is_ipv4() { 32 } else { 128 };
    if prefix > width {
        return Err(format!("Fn::Cidr: bad prefix in `{block}`"));
    }
    let new_prefix = width
        .checked_sub(bits)
        .filter(|p| *p >= prefix && bits > 0)
        .ok_or_else(|| format!("Fn::Cidr: cidrBits {bits} does not fit in /{prefix}"))?;
    let spare = new_prefix - prefix;
    let available: u128 = if spare >= 64 { u128::MAX } else { 1u128 << spare };
    if count as u128 > available || !(1..=256).contains(&count) {
        return Err(format!(
            "Fn::Cidr: {count} subnets of /{new_prefix} do not fit in {block} (at most {})",
            available.min(256)
        ));
    }
    let mask = |p: u32| if p == 0 { 0u128 } else { u128::MAX << (128 - p) };
    Ok(match ip {
        std::net::IpAddr::V4(a) => {
            let base = u64::from(u32::from(a)) & (mask(prefix + 96) as u64);
            (0..u64::from(count))
                .map(|i| {
                    let n = (base + (i << bits)) as u32;
                    format!("{}/{new_prefix}", std::net::Ipv4Addr::from(n))
                })
                .collect()
        }
        std::net::IpAddr::V6(a) => {
            let base = u128::from(a) & mask(prefix);
            (0..u128::from(count))
                .map(|i| {
                    let n = i.checked_shl(bits).map_or(base, |step| base.wrapping_add(step));
                    format!("{}/{new_prefix}", std::net::Ipv6Addr::from(n))
                })
                .collect()
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sam::SamOptions;

    fn eval_in(template: &str, expr: &str) -> R<Option<Value>> {
        let t = Template::parse("t.yaml", template, &SamOptions::default()).unwrap();
        let params = resolve_parameters(&t, &BTreeMap::new(), &|_| None).unwrap();
        let pseudo = Pseudo::new("eu-west-1", "123456789012", "app", "arn:stack");
        let e = Evaluator::new(&t, &params, &pseudo, &NoResources).unwrap();
        let (v, _) = crate::template::read_json("e.yaml", &format!("x: {expr}")).unwrap();
        e.eval(&v["x"])
    }

    const T: &str = "Parameters:\n  Env:\n    Type: String\n    Default: prod\n  Ids:\n    Type: CommaDelimitedList\n    Default: a,b,c\nMappings:\n  M:\n    prod:\n      Size: 512\nConditions:\n  IsProd: !Equals [!Ref Env, prod]\n  NotProd: !Not [!Condition IsProd]\nResources:\n  Q:\n    Type: AWS::SSM::Parameter\n";

    #[test]
    fn intrinsics_evaluate_as_cloudformation_does() {
        let s = |e: &str| eval_in(T, e).unwrap().unwrap();
        assert_eq!(
            s("!Sub '${AWS::Region}-${Env}-${!Literal}'"),
            "eu-west-1-prod-${Literal}"
        );
        assert_eq!(
            s("!Sub ['${A}.${AWS::URLSuffix}', {A: !Ref Env}]"),
            "prod.amazonaws.com"
        );
        assert_eq!(s("!Join [':', [a, !Ref Env]]"), "a:prod");
        assert_eq!(s("!Select [1, !Ref Ids]"), "b");
        assert_eq!(s("!Split [',', 'x,y']"), serde_json::json!(["x", "y"]));
        assert_eq!(s("!If [IsProd, big, small]"), "big");
        assert_eq!(s("!If [NotProd, big, small]"), "small");
        assert_eq!(s("!FindInMap [M, !Ref Env, Size]"), 512);
        assert_eq!(s("!Base64 hi"), "aGk=");
        assert_eq!(
            s("!GetAZs ''"),
            serde_json::json!(["eu-west-1a", "eu-west-1b", "eu-west-1c"])
        );
        assert_eq!(s("!Select [5, !GetAZs us-east-1]"), "us-east-1f");
        assert_eq!(s("!GetAZs us-west-1"), serde_json::json!(["us-west-1b", "us-west-1c"]));
        assert_eq!(
            s("!Cidr ['10.0.0.0/16', 2, 8]"),
            serde_json::json!(["10.0.0.0/24", "10.0.1.0/24"])
        );
        assert_eq!(
            s("!Cidr ['2600:1f16:abc:de00::/56', 3, 64]"),
            serde_json::json!([
                "2600:1f16:abc:de00::/64",
                "2600:1f16:abc:de01::/64",
                "2600:1f16:abc:de02::/64"
            ])
        );
        assert_eq!(
            s("!Cidr ['10.0.0.0/8', 2, 20]"),
            serde_json::json!(["10.0.0.0/12", "10.16.0.0/12"])
        );
        assert_eq!(s("{'Fn::Length': [1, 2, 3]}"), 3);
        // YAML's non-specific tag `!` leaves the value as written.
        assert_eq!(s("! abc"), "abc");
        assert_eq!(s("!Select [0, !GetAZs ]"), "eu-west-1a");
        assert_eq!(s("{'Fn::ToJsonString': {a: 1}}"), "{\"a\":1}");
        assert_eq!(s("{a: !Ref AWS::NoValue, b: 1}"), serde_json::json!({"b": 1}));
        assert_eq!(eval_in(T, "!If [IsProd, !Ref AWS::NoValue, x]").unwrap(), None);
    }

    /// Attributes of created resources, as the deployer knows them.
    struct Created;
    impl Resolver for Created {
        fn physical_id(&self, id: &str) -> Option<Value> {
            Some(Value::String(format!("app-{id}-X1")))
        }
        fn attribute(&self, id: &str, attr: &str) -> Option<Value> {
            match attr {
                "Arn" => Some(Value::String(format!(
                    "arn:aws:lambda:eu-west-1:123456789012:function:app-{id}-X1"
                ))),
                "CidrBlock" => Some(Value::String("10.1.0.0/16".into())),
                "SecurityGroups" => Some(serde_json::json!(["sg-1", "sg-2"])),
                _ => None,
            }
        }
        fn import(&self, _: &str) -> Option<String> {
            None
        }
    }

    #[test]
    fn values_known_after_a_resource_exists_are_left_to_then() {
        let t = Template::parse("t.yaml", T, &SamOptions::default()).unwrap();
        let params = resolve_parameters(&t, &BTreeMap::new(), &|_| None).unwrap();
        let pseudo = Pseudo::new("eu-west-1", "123456789012", "app", "arn:stack");
        let exprs = [
            "!Select [6, !Split [':', !GetAtt Q.Arn]]",
            "!Cidr [!GetAtt Q.CidrBlock, 3, 8]",
            "!Join [',', !GetAtt Q.SecurityGroups]",
            "!Select [0, !GetAtt Q.SecurityGroups]",
            "{'Fn::Length': !GetAtt Q.SecurityGroups}",
            "{'Fn::Base64': !Ref Q}",
        ];
        // Planning: each is the stand-in of what it waits for, not an error.
        let mut planning = Evaluator::new(&t, &params, &pseudo, &NoResources).unwrap();
        planning.lenient = true;
        for expr in exprs {
            let (v, _) = crate::template::read_json("e.yaml", &format!("x: {expr}")).unwrap();
            let got = planning
                .eval(&v["x"])
                .unwrap_or_else(|e| panic!("{expr}: {e}"))
                .unwrap();
            assert!(is_pending(&got), "{expr}: {got}");
        }
        // Deploying, once Q exists: the real values.
        let deploying = Evaluator::new(&t, &params, &pseudo, &Created).unwrap();
        let real: Vec<Value> = exprs
            .iter()
            .map(|expr| {
                let (v, _) = crate::template::read_json("e.yaml", &format!("x: {expr}")).unwrap();
                deploying.eval(&v["x"]).unwrap().unwrap()
            })
            .collect();
        assert_eq!(real[0], "app-Q-X1");
        assert_eq!(
            real[1],
            serde_json::json!(["10.1.0.0/24", "10.1.1.0/24", "10.1.2.0/24"])
        );
        assert_eq!(real[2], "sg-1,sg-2");
        assert_eq!(real[3], "sg-1");
        assert_eq!(real[4], 2);
    }

    #[test]
    fn get_stack_output_reads_another_stacks_output() {
        struct Outputs;
        impl Resolver for Outputs {
            fn physical_id(&self, _: &str) -> Option<Value> {
                None
            }
            fn attribute(&self, _: &str, _: &str) -> Option<Value> {
                None
            }
            fn import(&self, _: &str) -> Option<String> {
                None
            }
            fn stack_output(&self, region: &str, stack: &str, output: &str) -> Option<String> {
                (stack == "network" && output == "VpcId").then(|| format!("vpc-in-{region}"))
            }
        }
        let t = Template::parse("t.yaml", T, &SamOptions::default()).unwrap();
        let params = resolve_parameters(&t, &BTreeMap::new(), &|_| None).unwrap();
        let pseudo = Pseudo::new("eu-west-1", "123456789012", "app", "arn:stack");
        let ev = Evaluator::new(&t, &params, &pseudo, &Outputs).unwrap();
        let eval = |expr: &str| {
            let (v, _) = crate::template::read_json("e.yaml", &format!("x: {expr}")).unwrap();
            ev.eval(&v["x"])
        };
        assert_eq!(
            eval("{'Fn::GetStackOutput': {StackName: network, OutputName: VpcId}}")
                .unwrap()
                .unwrap(),
            "vpc-in-eu-west-1"
        );
        assert_eq!(
            eval("{'Fn::GetStackOutput': {StackName: network, OutputName: VpcId, Region: us-east-1}}")
                .unwrap()
                .unwrap(),
            "vpc-in-us-east-1"
        );
        assert!(eval("{'Fn::GetStackOutput': {StackName: network, OutputName: Nope}}")
            .unwrap_err()
            .contains("stack `network` in eu-west-1 has no output `Nope`"));
        assert!(eval("{'Fn::GetStackOutput': {StackName: network}}")
            .unwrap_err()
            .contains("takes {StackName"));
    }

    #[test]
    fn errors_name_what_is_wrong() {
        assert!(eval_in(T, "!Ref Nope").unwrap_err().contains("names no parameter"));
        assert!(eval_in(T, "!Ref Q").unwrap_err().contains("not created yet"));
        assert!(eval_in(T, "!Select [5, !Ref Ids]")
            .unwrap_err()
            .contains("out of range"));
        assert!(eval_in(T, "!ImportValue shared")
            .unwrap_err()
            .contains("exports `shared`"));
    }

    #[test]
    fn allowed_pattern_is_read_as_java_reads_it() {
        let t = Template::parse(
            "t.yaml",
            "Parameters:\n  Pw:\n    Type: String\n    AllowedPattern: '(?=.*[0-9])(?=.*[A-Z])\\p{Alnum}{8,}'\n    ConstraintDescription: eight letters or digits, one of them a digit and one upper case\nResources:\n  Q:\n    Type: AWS::SSM::Parameter\n",
            &SamOptions::default(),
        )
        .unwrap();
        let given = |v: &str| BTreeMap::from([("Pw".to_string(), v.to_string())]);
        resolve_parameters(&t, &given("Abcdefg1"), &|_| None).unwrap();
        for bad in ["abcdefg1", "Abcdefgh", "Abc1", "Abcdefg1!"] {
            let e = resolve_parameters(&t, &given(bad), &|_| None).unwrap_err();
            assert!(
                e.to_string().contains("does not match the AllowedPattern"),
                "{bad}: {e}"
            );
            assert!(e.to_string().contains("one of them a digit"), "{e}");
        }
        // The whole value must match, as Java's `matches` does.
        let re = java_regex("[a-z]+").unwrap();
        assert!(re.is_match("abc").unwrap() && !re.is_match("abc1").unwrap());
        assert!(java_regex("[a-z").is_err());
        // Java's literal dash beside a class shorthand (the Neptune sample's e-mail pattern).
        let email = java_regex(r"^[\w-\+]+(\.[\w]+)*@[\w-]+(\.[\w]+)*(\.[a-z]{2,})$|^$").unwrap();
        assert!(email.is_match("a-b+c@example.com").unwrap() && email.is_match("").unwrap());
        assert!(!email.is_match("a b@example.com").unwrap());
    }

    #[test]
    fn parameters_are_checked_and_no_echo_is_masked() {
        let t = Template::parse(
            "t.yaml",
            "Parameters:\n  Size:\n    Type: Number\n    MinValue: 128\n  Secret:\n    Type: String\n    NoEcho: true\n    AllowedPattern: '[a-z]+'\n  Name:\n    Type: AWS::SSM::Parameter::Value<String>\n    Default: /app/name\nResources:\n  Q:\n    Type: AWS::SSM::Parameter\n",
            &SamOptions::default(),
        )
        .unwrap();
        let given = |pairs: &[(&str, &str)]| pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        let ssm = |n: &str| (n == "/app/name").then(|| "from-ssm".to_string());
        let p = resolve_parameters(&t, &given(&[("Size", "256"), ("Secret", "abc")]), &ssm).unwrap();
        assert_eq!(p.values["Name"], "from-ssm");
        assert_eq!(p.shown("Secret").unwrap(), "****");
        assert_eq!(p.secrets(), vec!["abc".to_string()]);
        let e = resolve_parameters(&t, &given(&[("Size", "64"), ("Secret", "abc")]), &ssm).unwrap_err();
        assert!(e.to_string().contains("below MinValue"), "{e}");
        assert_eq!(e.line, Some(2));
        let e = resolve_parameters(&t, &given(&[("Size", "256"), ("Secret", "ABC")]), &ssm).unwrap_err();
        assert!(e.to_string().contains("****") && !e.to_string().contains("ABC"), "{e}");
        let e = resolve_parameters(&t, &given(&[("Size", "256"), ("Secret", "abc")]), &|_| None).unwrap_err();
        assert!(e.to_string().contains("/app/name"), "{e}");
    }
}
