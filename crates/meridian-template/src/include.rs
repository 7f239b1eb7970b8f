//! `AWS::Include` and macros: template snippets read from S3 and inserted where the template
//! says, and an account's own macros run on the template, as CloudFormation does when it makes a
//! change set.
//!
//! - `Fn::Transform: {Name: AWS::Include, Parameters: {Location: s3://bucket/key}}` anywhere in
//!   the template (except `Parameters`) is replaced by the snippet: the snippet's keys join the
//!   mapping that holds `Fn::Transform` (the snippet's value wins when both have a key).
//!   CloudFormation evaluates macros from the most deeply nested outward, so these come before
//!   the `Transform` section.
//! - `Transform: {Name: AWS::Include, Parameters: {Location: ...}}` in the `Transform` section
//!   inserts the snippet at the top of the template, in its place among the other transforms;
//!   sections both have are merged entry by entry.
//!
//! - A macro (`AWS::CloudFormation::Macro`, backed by a Lambda function) named by `Fn::Transform`
//!   gets the mapping that holds it, without the `Fn::Transform` key, as its `fragment`, and its
//!   answer's fragment replaces that mapping; named in the `Transform` section, it gets the whole
//!   template. The event and answer are CloudFormation's (`region`, `accountId`, `fragment`,
//!   `transformId`, `params`, `requestId`, `templateParameterValues`; `requestId`, `status`,
//!   `fragment`, `errorMessage`).
//!
//! A snippet is YAML or JSON, a mapping, and cannot include another snippet. `Location` is an S3
//! URI, written out or a `Ref` to a parameter. Where the snippet comes from is the caller's
//! [`Snippets`]: a local region reads its own buckets.

use crate::declared::INCLUDE;
use serde_json::{Map, Value};

/// Where a region's S3 objects are read from.
pub trait Snippets: Send + Sync + std::fmt::Debug {
    /// The text of object `key` of `bucket`; an error says why not, in S3's words.
    fn get(&self, bucket: &str, key: &str) -> Result<String, String>;
}

/// A region's own macros: the functions behind the `AWS::CloudFormation::Macro`s its stacks made.
pub trait Macros: Send + Sync + std::fmt::Debug {
    /// Whether the region has macro `name`.
    fn exists(&self, name: &str) -> bool;
    /// Invokes macro `name`'s function with `event`; its answer, or why it failed.
    fn invoke(&self, name: &str, event: &Value) -> Result<Value, String>;
}

/// What a macro's event says of the stack.
#[derive(Debug, Clone)]
pub struct MacroContext {
    pub region: String,
    pub account_id: String,
    /// The template's parameters: the values given, else the defaults.
    pub parameter_values: Map<String, Value>,
}

impl MacroContext {
    pub fn new(region: &str, account_id: &str, given: &Map<String, Value>, template: &Value) -> MacroContext {
        let mut values = Map::new();
        for (name, p) in template
            .get("Parameters")
            .and_then(Value::as_object)
            .into_iter()
            .flatten()
        {
            if let Some(d) = p.get("Default") {
                values.insert(name.clone(), d.clone());
            }
        }
        values.extend(given.clone());
        MacroContext {
            region: region.to_string(),
            account_id: account_id.to_string(),
            parameter_values: values,
        }
    }
}

/// Runs macro `name` on `fragment` and returns the fragment it answers.
pub fn run_macro(
    macros: &dyn Macros,
    name: &str,
    params: &Value,
    fragment: Value,
    ctx: &MacroContext,
    budget: &mut Budget,
    at: &str,
) -> Result<Value, IncludeError> {
    let transform_id = format!("{}::{name}", ctx.account_id);
    let fail = |why: String| IncludeError {
        message: format!("Transform {transform_id} failed with: {why}"),
        at: at.to_string(),
    };
    budget.count += 1;
    if budget.count > MAX_INCLUDES {
        return Err(fail(format!(
            "a template runs at most {MAX_INCLUDES} macros and snippets in Meridian"
        )));
    }
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    let request_id = format!("{nanos:x}-{}", budget.count);
    let event = serde_json::json!({
        "region": ctx.region,
        "accountId": ctx.account_id,
        "fragment": fragment,
        "transformId": transform_id,
        "params": params,
        "requestId": request_id,
        "templateParameterValues": ctx.parameter_values,
    });
    let answer = macros.invoke(name, &event).map_err(fail)?;
    let status = answer.get("status").and_then(Value::as_str).unwrap_or_default();
    if !status.eq_ignore_ascii_case("success") {
        let why = answer
            .get("errorMessage")
            .and_then(Value::as_str)
            .map(String::from)
            .unwrap_or_else(|| format!("the macro's function answered status `{status}`"));
        return Err(fail(why));
    }
    if answer.get("requestId").and_then(Value::as_str) != Some(request_id.as_str()) {
        return Err(fail("the macro's answer has another requestId than its event".into()));
    }
    answer
        .get("fragment")
        .cloned()
        .ok_or_else(|| fail("the macro's answer has no fragment".into()))
}

/// At most this many snippets are included in one template, and at most this many bytes of them
/// in all (CloudFormation's processed template is itself at most 1 MB).
pub const MAX_INCLUDES: usize = 100;
pub const MAX_INCLUDED_BYTES: usize = 10 * 1024 * 1024;

/// What the includes of one template have used of the limits.
#[derive(Debug, Default)]
pub struct Budget {
    count: usize,
    bytes: usize,
}

/// Why an include failed: the message (CloudFormation's `Transform AWS::Include failed with: ...`
/// form) and the path in the template where it was asked for.
#[derive(Debug)]
pub struct IncludeError {
    pub message: String,
    pub at: String,
}

fn failed(at: &str, why: impl std::fmt::Display) -> IncludeError {
    IncludeError {
        message: format!("Transform {INCLUDE} failed with: {why}"),
        at: at.to_string(),
    }
}

/// The `AWS::Include` of an `Fn::Transform` value, if it is one: its `Location`.
fn include_location(transform: &Value) -> Option<&Value> {
    let t = match transform {
        Value::Array(a) if a.len() == 1 => &a[0],
        other => other,
    };
    (t.get("Name").and_then(Value::as_str) == Some(INCLUDE)).then(|| {
        t.get("Parameters")
            .and_then(|p| p.get("Location"))
            .unwrap_or(&Value::Null)
    })
}

/// `s3://bucket/key` from a `Location`: a string, or a `Ref` to a parameter (given, or its
/// default).
fn location(
    v: &Value,
    params: &Map<String, Value>,
    template: &Value,
    at: &str,
) -> Result<(String, String), IncludeError> {
    let uri = match v {
        Value::String(s) => s.clone(),
        Value::Object(o) if o.len() == 1 && o.get("Ref").is_some_and(Value::is_string) => {
            let name = o["Ref"].as_str().unwrap_or_default();
            let given = params.get(name).or_else(|| {
                template
                    .get("Parameters")
                    .and_then(|p| p.get(name))
                    .and_then(|p| p.get("Default"))
            });
            match given {
                Some(Value::String(s)) => s.clone(),
                _ => {
                    return Err(failed(
                        at,
                        format!("Location refers to parameter `{name}`, which has no value"),
                    ))
                }
            }
        }
        Value::Null => return Err(failed(at, "Parameters.Location is required")),
        other => {
            return Err(failed(
                at,
                format!("Location must be an S3 URI (s3://bucket/key) or a Ref to a parameter, found {other}"),
            ))
        }
    };
    let parsed = uri
        .strip_prefix("s3://")
        .and_then(|rest| rest.split_once('/'))
        .filter(|(b, k)| !b.is_empty() && !k.is_empty());
    match parsed {
        Some((b, k)) => Ok((b.to_string(), k.to_string())),
        None => Err(failed(
            at,
            format!("Location must be an S3 URI with a bucket and a key (s3://bucket/snippet.yaml), found `{uri}`"),
        )),
    }
}

/// Reads the snippet at `loc` as a mapping.
fn fetch(
    loc: &Value,
    params: &Map<String, Value>,
    template: &Value,
    snippets: &dyn Snippets,
    budget: &mut Budget,
    at: &str,
) -> Result<Map<String, Value>, IncludeError> {
    let (bucket, key) = location(loc, params, template, at)?;
    budget.count += 1;
    if budget.count > MAX_INCLUDES {
        return Err(failed(
            at,
            format!("a template includes at most {MAX_INCLUDES} snippets in Meridian"),
        ));
    }
    let text = snippets.get(&bucket, &key).map_err(|e| failed(at, e))?;
    budget.bytes += text.len();
    if budget.bytes > MAX_INCLUDED_BYTES {
        return Err(failed(
            at,
            format!("the snippets of this template hold more than {MAX_INCLUDED_BYTES} bytes"),
        ));
    }
    let uri = format!("s3://{bucket}/{key}");
    let (value, _) = crate::template::read_json(&uri, &text)
        .map_err(|e| failed(at, format!("the snippet is not valid YAML or JSON: {e}")))?;
    let Value::Object(map) = value else {
        return Err(failed(
            at,
            format!("the snippet {uri} must be a mapping of keys to values"),
        ));
    };
    if contains_include(&Value::Object(map.clone())) {
        return Err(failed(
            at,
            format!("the snippet {uri} includes another snippet; AWS::Include does not nest"),
        ));
    }
    Ok(map)
}

fn contains_include(v: &Value) -> bool {
    match v {
        Value::Object(o) => {
            o.get("Fn::Transform").and_then(include_location).is_some() || o.values().any(contains_include)
        }
        Value::Array(a) => a.iter().any(contains_include),
        _ => false,
    }
}

/// Replaces every `Fn::Transform` of `AWS::Include` in the template (deepest first; not in
/// `Parameters`) by its snippet. Other `Fn::Transform`s are left for the caller to judge.
pub fn expand(
    template: &Value,
    params: &Map<String, Value>,
    snippets: &dyn Snippets,
    budget: &mut Budget,
) -> Result<Value, IncludeError> {
    expand_all(template, params, Some(snippets), None, budget)
}

/// [`expand`], and the `Fn::Transform`s of the region's own macros run (deepest first), when
/// `macros` is given; a source that is `None` leaves its `Fn::Transform`s in place (the caller
/// refuses them).
pub fn expand_all(
    template: &Value,
    params: &Map<String, Value>,
    snippets: Option<&dyn Snippets>,
    macros: Option<(&dyn Macros, &MacroContext)>,
    budget: &mut Budget,
) -> Result<Value, IncludeError> {
    let sources = Sources { snippets, macros };
    let Value::Object(top) = template else {
        return Ok(template.clone());
    };
    let mut out = Map::new();
    for (section, v) in top {
        let v = if section == "Parameters" {
            v.clone()
        } else {
            walk(v, params, template, &sources, budget, section)?
        };
        out.insert(section.clone(), v);
    }
    Ok(Value::Object(out))
}

/// Where `Fn::Transform`s are served from.
struct Sources<'a> {
    snippets: Option<&'a dyn Snippets>,
    macros: Option<(&'a dyn Macros, &'a MacroContext)>,
}

/// The macro an `Fn::Transform` names, when it is one of the region's: its name and parameters.
fn own_macro<'v>(transform: &'v Value, sources: &Sources) -> Option<(&'v str, Option<&'v Value>)> {
    let (macros, _) = sources.macros?;
    let t = match transform {
        Value::Array(a) if a.len() == 1 => &a[0],
        other => other,
    };
    let name = t.get("Name").and_then(Value::as_str)?;
    (name != INCLUDE && macros.exists(name)).then(|| (name, t.get("Parameters")))
}

fn walk(
    v: &Value,
    params: &Map<String, Value>,
    template: &Value,
    sources: &Sources,
    budget: &mut Budget,
    at: &str,
) -> Result<Value, IncludeError> {
    match v {
        Value::Object(o) => {
            let transform = o.get("Fn::Transform");
            let include = transform
                .and_then(include_location)
                .filter(|_| sources.snippets.is_some());
            let own = transform.and_then(|t| own_macro(t, sources));
            let mut out = Map::new();
            for (k, x) in o {
                if k == "Fn::Transform" && (include.is_some() || own.is_some()) {
                    continue;
                }
                out.insert(
                    k.clone(),
                    walk(x, params, template, sources, budget, &format!("{at}.{k}"))?,
                );
            }
            if let (Some(loc), Some(snippets)) = (include, sources.snippets) {
                let snippet = fetch(loc, params, template, snippets, budget, at)?;
                out.extend(snippet);
            }
            if let (Some((name, mparams)), Some((macros, ctx))) = (own, sources.macros) {
                let mparams = mparams.cloned().unwrap_or_else(|| Value::Object(Map::new()));
                return run_macro(macros, name, &mparams, Value::Object(out), ctx, budget, at);
            }
            Ok(Value::Object(out))
        }
        Value::Array(a) => a
            .iter()
            .enumerate()
            .map(|(i, x)| walk(x, params, template, sources, budget, &format!("{at}.{i}")))
            .collect::<Result<Vec<_>, _>>()
            .map(Value::Array),
        other => Ok(other.clone()),
    }
}

/// Inserts the snippet of a `Transform` section's `AWS::Include` at the top of the template.
pub fn include_top(
    template: &mut Value,
    loc: &Value,
    params: &Map<String, Value>,
    snippets: &dyn Snippets,
    budget: &mut Budget,
) -> Result<(), IncludeError> {
    let snippet = fetch(loc, params, template, snippets, budget, "Transform")?;
    let Value::Object(top) = template else {
        return Ok(());
    };
    for (section, v) in snippet {
        match (top.get_mut(&section), v) {
            (Some(Value::Object(mine)), Value::Object(theirs)) => mine.extend(theirs),
            (_, v) => {
                top.insert(section, v);
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use std::collections::BTreeMap;

    #[derive(Debug, Default)]
    struct Bucket(BTreeMap<String, String>);

    impl Snippets for Bucket {
        fn get(&self, bucket: &str, key: &str) -> Result<String, String> {
            self.0
                .get(&format!("{bucket}/{key}"))
                .cloned()
                .ok_or_else(|| format!("S3 object s3://{bucket}/{key} does not exist"))
        }
    }

    fn bucket(items: &[(&str, &str)]) -> Bucket {
        Bucket(items.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect())
    }

    #[test]
    fn a_snippet_joins_the_mapping_that_asks_for_it() {
        let b = bucket(&[(
            "b/props.yaml",
            "VersioningConfiguration:\n  Status: Enabled\nBucketName: !Sub '${AWS::StackName}-x'\n",
        )]);
        let t = json!({"Resources": {"B": {"Type": "AWS::S3::Bucket", "Properties": {
            "BucketName": "mine", "Tags": [],
            "Fn::Transform": {"Name": "AWS::Include", "Parameters": {"Location": "s3://b/props.yaml"}}}}}});
        let out = expand(&t, &Map::new(), &b, &mut Budget::default()).unwrap();
        assert_eq!(
            out["Resources"]["B"]["Properties"],
            json!({"BucketName": {"Fn::Sub": "${AWS::StackName}-x"}, "Tags": [], "VersioningConfiguration": {"Status": "Enabled"}})
        );
    }

    #[test]
    fn the_location_can_come_from_a_parameter() {
        let b = bucket(&[("b/r.json", "{\"Q\": {\"Type\": \"AWS::SQS::Queue\"}}")]);
        let t = json!({"Parameters": {"Snip": {"Type": "String", "Default": "s3://b/none.json"}},
            "Resources": {"Fn::Transform": {"Name": "AWS::Include", "Parameters": {"Location": {"Ref": "Snip"}}}}});
        let e = expand(&t, &Map::new(), &b, &mut Budget::default()).unwrap_err();
        assert_eq!(
            e.message,
            "Transform AWS::Include failed with: S3 object s3://b/none.json does not exist"
        );
        assert_eq!(e.at, "Resources");
        let mut params = Map::new();
        params.insert("Snip".into(), json!("s3://b/r.json"));
        let out = expand(&t, &params, &b, &mut Budget::default()).unwrap();
        assert_eq!(out["Resources"], json!({"Q": {"Type": "AWS::SQS::Queue"}}));
    }

    #[test]
    fn snippets_that_cannot_be_included_are_refused_with_the_reason() {
        let b = bucket(&[
            ("b/list.yaml", "- a\n- b\n"),
            (
                "b/nest.yaml",
                "X:\n  Fn::Transform: {Name: AWS::Include, Parameters: {Location: s3://b/list.yaml}}\n",
            ),
            ("b/bad.yaml", "a: [\n"),
        ]);
        let msg = |loc: Value| {
            let t = json!({"Resources": {"Fn::Transform": {"Name": "AWS::Include", "Parameters": {"Location": loc}}}});
            expand(&t, &Map::new(), &b, &mut Budget::default()).unwrap_err().message
        };
        assert!(msg(json!("s3://b/list.yaml")).ends_with("must be a mapping of keys to values"));
        assert!(msg(json!("s3://b/nest.yaml")).ends_with("AWS::Include does not nest"));
        assert!(msg(json!("s3://b/bad.yaml")).contains("is not valid YAML or JSON"));
        assert!(msg(json!("https://b.s3.amazonaws.com/x")).contains("must be an S3 URI with a bucket and a key"));
        assert!(msg(json!("s3://b")).contains("must be an S3 URI with a bucket and a key"));
        assert!(msg(Value::Null).ends_with("Parameters.Location is required"));
        assert!(msg(json!({"Fn::Sub": "x"})).contains("or a Ref to a parameter"));
    }

    #[test]
    fn includes_are_bounded() {
        let b = bucket(&[("b/one.yaml", "K: v\n")]);
        let inc = json!({"Fn::Transform": {"Name": "AWS::Include", "Parameters": {"Location": "s3://b/one.yaml"}}});
        let many: Vec<Value> = (0..=MAX_INCLUDES).map(|_| inc.clone()).collect();
        let t = json!({"Resources": {"R": {"Type": "T", "Properties": {"L": many}}}});
        let e = expand(&t, &Map::new(), &b, &mut Budget::default()).unwrap_err();
        assert!(e.message.contains("at most 100 snippets"), "{}", e.message);
    }

    /// A macro that upper-cases `params.Input`, or adds a topic to its fragment, or fails.
    #[derive(Debug)]
    struct Upper;

    impl Macros for Upper {
        fn exists(&self, name: &str) -> bool {
            name == "Upper"
        }
        fn invoke(&self, _name: &str, e: &Value) -> Result<Value, String> {
            let id = e["requestId"].clone();
            if let Some(s) = e["params"].get("Input").and_then(Value::as_str) {
                return Ok(json!({"requestId": id, "status": "success", "fragment": s.to_uppercase()}));
            }
            if e["params"].get("Fail").is_some() {
                return Ok(json!({"requestId": id, "status": "failure", "errorMessage": "no thanks"}));
            }
            let mut f = e["fragment"].clone();
            f["Added"] = json!({"Type": "AWS::SNS::Topic"});
            Ok(json!({"requestId": id, "status": "success", "fragment": f}))
        }
    }

    #[test]
    fn own_macros_run_on_their_fragment() {
        let ctx = MacroContext::new("eu-west-1", "123456789012", &Map::new(), &json!({}));
        let t = json!({"Resources": {
            "P": {"Type": "AWS::SSM::Parameter", "Properties": {"Type": "String",
                "Value": {"Fn::Transform": {"Name": "Upper", "Parameters": {"Input": "hello"}}}}},
            "Fn::Transform": {"Name": "Upper"}}});
        let out = expand_all(&t, &Map::new(), None, Some((&Upper, &ctx)), &mut Budget::default()).unwrap();
        assert_eq!(out["Resources"]["P"]["Properties"]["Value"], "HELLO");
        // the mapping that held the Fn::Transform, without it, was the fragment
        assert_eq!(out["Resources"]["Added"], json!({"Type": "AWS::SNS::Topic"}));
        assert!(out["Resources"].get("Fn::Transform").is_none());
        let t = json!({"Resources": {"Fn::Transform": {"Name": "Upper", "Parameters": {"Fail": true}}}});
        let e = expand_all(&t, &Map::new(), None, Some((&Upper, &ctx)), &mut Budget::default()).unwrap_err();
        assert_eq!(e.message, "Transform 123456789012::Upper failed with: no thanks");
        // another name is left in place, for the caller to refuse
        let t = json!({"Resources": {"Fn::Transform": {"Name": "Other"}}});
        let out = expand_all(&t, &Map::new(), None, Some((&Upper, &ctx)), &mut Budget::default()).unwrap();
        assert_eq!(out, t);
    }

    #[test]
    fn a_top_level_include_merges_its_sections() {
        let b = bucket(&[(
            "b/top.yaml",
            "Resources:\n  Q: {Type: AWS::SQS::Queue}\nOutputs:\n  O: {Value: x}\n",
        )]);
        let mut t = json!({"Resources": {"T": {"Type": "AWS::SNS::Topic"}}});
        include_top(
            &mut t,
            &json!("s3://b/top.yaml"),
            &Map::new(),
            &b,
            &mut Budget::default(),
        )
        .unwrap();
        assert_eq!(
            t,
            json!({"Resources": {"T": {"Type": "AWS::SNS::Topic"}, "Q": {"Type": "AWS::SQS::Queue"}}, "Outputs": {"O": {"Value": "x"}}})
        );
    }
}
