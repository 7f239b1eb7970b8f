//! REST APIs (API Gateway v1) as aws-sam-translator 1.115.0 makes them: `Api` events of
//! functions, the implicit `ServerlessRestApi` they share (stage `Prod`), and
//! `AWS::Serverless::Api` -> `AWS::ApiGateway::RestApi` (its swagger `Body` with the events'
//! `aws_proxy` integrations), `AWS::ApiGateway::Deployment` (named by the hash of the swagger's
//! Python text, see [`super::py27`]) and `AWS::ApiGateway::Stage`, and one
//! `AWS::Lambda::Permission` per event.
//!
//! `Cors` adds an `options` method (a mock integration answering the preflight) to every path.
//!
//! `OpenApiVersion` 3 turns the managed swagger into OpenAPI (`openapi` instead of `swagger`,
//! `components`), as SAM's Globals plugin and `_openapi_postprocess` do.
//!
//! `Auth` (authorizers, default authorizer, API keys, usage plans, resource policies) is
//! written by [`super::rest_auth`]; `Domain` adds the custom domain's resources (see
//! [`super::domain`]).
//!
//! Gateway responses, models, `DisableExecuteApiEndpoint` and events' `RequestModel` and
//! `RequestParameters` are written by [`super::rest_swagger`].
//!
//! `MergeDefinitions` writes each event's method into a skeleton of its own and merges it into
//! the API's definition.
//!
//! `PropagateTags` tags what the API generates; a function's tags (`PropagateTags`, from Globals
//! too) go to the implicit API.
//!
//! Not translated yet (a clear error naming the resource): `AlwaysDeploy`; on events
//! `ResponseTransferMode`.
//!
//! `Api` events of state machines integrate the method with Step Functions (see
//! [`StateMachineIntegration`]).
//!
//! Functions with a `Condition`: their integrations are wrapped in `Fn::If`, paths whose methods
//! all have conditions and the implicit API exist under them (combined with `Fn::Or` when several).

use std::collections::BTreeMap;

use serde_json::{json, Map, Value};

use super::py27::{Py, PyDict};
use super::validate::Check;
use super::{res_err, truthy, CfnResource, Context, Failure, SamResourceError};

pub(crate) const IMPLICIT_ID: &str = "ServerlessRestApi";
const ANY: &str = "x-amazon-apigateway-any-method";
const INTEGRATION: &str = "x-amazon-apigateway-integration";

/// The swagger bodies SAM manages, as Python values (their key order and string kinds decide
/// the deployment's hash).
pub(crate) type Bodies = BTreeMap<String, Py>;

fn not_yet(what: &str) -> String {
    format!("{what} is not supported by Meridian's local regions yet.")
}

/// `SwaggerEditor.gen_skeleton()`.
fn skeleton() -> Py {
    let mut info = PyDict::py27();
    info.set("version", false, Py::s("1.0"));
    let mut title = PyDict::plain();
    title.set("Ref", false, Py::s("AWS::StackName"));
    info.set("title", false, Py::Dict(title));
    let mut sk = PyDict::py27();
    sk.set("swagger", false, Py::s("2.0"));
    sk.set("info", false, Py::Dict(info));
    sk.set("paths", false, Py::Dict(PyDict::py27()));
    Py::Dict(sk)
}

/// `_normalize_method_name`: lower case (keeping the string's kind), `any` as API Gateway's
/// any-method (a string SAM writes).
fn normalize_method(m: &str) -> (String, bool) {
    let m = m.to_lowercase();
    if m == "any" {
        (ANY.to_string(), false)
    } else {
        (m, true)
    }
}

fn doc_err(message: String) -> Vec<SamResourceError> {
    vec![SamResourceError {
        logical_id: None,
        message: format!("Structure of the SAM template is invalid. {message}"),
    }]
}

/// `SwaggerEditor.add_path` on a deep copy, as the editor works.
fn add_path(body: &Py, path: &str, method: &str) -> Result<Py, String> {
    let mut doc = body.deepcopy();
    let (method, uni) = normalize_method(method);
    let paths = doc
        .as_dict_mut()
        .and_then(|d| d.get_mut("paths"))
        .and_then(Py::as_dict_mut)
        .ok_or_else(|| "Invalid Swagger document".to_string())?;
    let item = paths.setdefault(path, true, Py::Dict(PyDict::py27()));
    let Some(item) = item.as_dict_mut() else {
        return Err(format!(
            "Value of '{path}' path must be a dictionary according to Swagger spec."
        ));
    };
    item.setdefault(&method, uni, Py::Dict(PyDict::py27()));
    Ok(doc.deepcopy())
}

/// The order in which SAM's plugin reads a mapping of the template: a `Py27Dict` filled in the
/// template's order.
pub(crate) fn py27_order(m: &Map<String, Value>) -> Vec<&String> {
    let mut d = PyDict::py27();
    for k in m.keys() {
        d.set(k, true, Py::None);
    }
    let order = Py::Dict(d).to_json();
    order
        .as_object()
        .map(|o| o.keys().filter_map(|k| m.get_key_value(k).map(|(k, _)| k)).collect())
        .unwrap_or_default()
}

/// SAM's DefaultDefinitionBodyPlugin (for REST APIs) and ImplicitRestApiPlugin: APIs without a
/// definition get a swagger skeleton SAM manages; `Api` events without `RestApiId` go to the
/// implicit `ServerlessRestApi` (stage `Prod`), and each event's path and method are added to
/// the managed swagger of the API it names. Runs after `implicit_api_checks`.
pub(crate) fn plugin(template: &mut Map<String, Value>) -> Result<Bodies, Vec<SamResourceError>> {
    let mut bodies = Bodies::new();
    // the Globals plugin runs after this one: the functions' tags are read from Globals too
    let globals = template.get("Globals").cloned().unwrap_or(Value::Null);
    let Some(Value::Object(resources)) = template.get_mut("Resources") else {
        return Ok(bodies);
    };
    for (id, r) in resources.iter_mut() {
        if r.get("Type").and_then(Value::as_str) != Some("AWS::Serverless::Api") {
            continue;
        }
        let Some(obj) = r.as_object_mut() else { continue };
        let props = obj.entry("Properties").or_insert_with(|| json!({}));
        let Some(props) = props.as_object_mut() else { continue };
        if props.get("DefinitionBody").is_some_and(truthy) || props.get("DefinitionUri").is_some_and(truthy) {
            continue;
        }
        let sk = skeleton();
        props.insert("DefinitionBody".into(), sk.to_json());
        props.insert("__MANAGE_SWAGGER".into(), json!(true));
        bodies.insert(id.clone(), sk);
    }
    let existing = resources.get(IMPLICIT_ID).cloned();
    let sk = skeleton();
    resources.insert(
        IMPLICIT_ID.into(),
        json!({"Type": "AWS::Serverless::Api", "Properties": {"StageName": "Prod", "DefinitionBody": sk.to_json(), "__MANAGE_SWAGGER": true}}),
    );
    bodies.insert(IMPLICIT_ID.into(), sk);

    // {api: {path: {method: the function's condition}}}
    let mut api_conditions: BTreeMap<String, BTreeMap<String, BTreeMap<String, Option<String>>>> = BTreeMap::new();
    let mut new_conditions = Map::new();
    let mut deletion: Vec<Value> = Vec::new();
    let mut update_replace: Vec<Value> = Vec::new();
    let ids: Vec<String> = py27_order(resources).into_iter().cloned().collect();
    for id in ids {
        let t = resources[&id]
            .get("Type")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string();
        if t != "AWS::Serverless::Function" && t != "AWS::Serverless::StateMachine" {
            continue;
        }
        let Some(events) = resources[&id]
            .get("Properties")
            .and_then(|p| p.get("Events"))
            .and_then(Value::as_object)
            .cloned()
        else {
            continue;
        };
        let mut changed = events.clone();
        let mut any_api = false;
        // `_get_api_events`: the Api events, put in a new Py27Dict in the Events' order, and read
        // in that dict's own order
        let api_events: Vec<&String> = py27_order(&events)
            .into_iter()
            .filter(|id| {
                let e = &events[*id];
                e.is_object() && e.get("Type").and_then(Value::as_str) == Some("Api")
            })
            .collect();
        let mut reinserted = PyDict::py27();
        for id in &api_events {
            reinserted.set(id, true, Py::None);
        }
        for event_id in reinserted.keys() {
            let event = &events[&event_id];
            let event_id = &event_id;
            let Some(props) = event
                .get("Properties")
                .and_then(Value::as_object)
                .filter(|p| !p.is_empty())
            else {
                continue;
            };
            let condition = resources[&id]
                .get("Condition")
                .and_then(Value::as_str)
                .map(str::to_string);
            let mut props = props.clone();
            if !props.contains_key("RestApiId") {
                let fprops = resources[&id].get("Properties").cloned().unwrap_or(Value::Null);
                super::tags_to_implicit_api(resources, IMPLICIT_ID, &t, &fprops, &globals);
                props.insert("RestApiId".into(), json!({"Ref": IMPLICIT_ID}));
            }
            let api_id = match &props["RestApiId"] {
                Value::Object(o) if o.contains_key("Ref") => o["Ref"].as_str().unwrap_or_default().to_string(),
                v => v.as_str().unwrap_or_default().to_string(),
            };
            any_api = true;
            if api_id == IMPLICIT_ID {
                deletion.push(resources[&id].get("DeletionPolicy").cloned().unwrap_or(Value::Null));
                update_replace.push(
                    resources[&id]
                        .get("UpdateReplacePolicy")
                        .cloned()
                        .unwrap_or(Value::Null),
                );
            }
            let path = props
                .get("Path")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_string();
            let method = props
                .get("Method")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_string();
            api_conditions
                .entry(api_id.clone())
                .or_default()
                .entry(path.clone())
                .or_default()
                .insert(method.clone(), condition);
            let managed = resources
                .get(&api_id)
                .and_then(|r| r.get("Properties"))
                .and_then(|p| p.get("__MANAGE_SWAGGER"))
                .is_some_and(truthy);
            if managed {
                if let Some(body) = bodies.get(&api_id) {
                    let new = add_path(body, &path, &method).map_err(doc_err)?;
                    if let Some(p) = resources
                        .get_mut(&api_id)
                        .and_then(|r| r.get_mut("Properties"))
                        .and_then(Value::as_object_mut)
                    {
                        p.insert("DefinitionBody".into(), new.to_json());
                    }
                    bodies.insert(api_id.clone(), new);
                }
            }
            let mut ev = event.clone();
            ev["Properties"] = Value::Object(props);
            changed.insert(event_id.clone(), ev);
        }
        if any_api {
            if let Some(p) = resources
                .get_mut(&id)
                .and_then(|r| r.get_mut("Properties"))
                .and_then(Value::as_object_mut)
            {
                p.insert("Events".into(), Value::Object(changed));
            }
        }
    }
    // The implicit API exists only under its functions' conditions when all of them have one.
    if let Some(paths) = api_conditions.get(IMPLICIT_ID) {
        let all: Vec<&Option<String>> = paths.values().flat_map(|m| m.values()).collect();
        if !all.is_empty() && all.iter().all(|c| c.is_some()) {
            let mut unique: Vec<String> = all.iter().filter_map(|c| (*c).clone()).collect();
            unique.sort();
            unique.dedup();
            if let Some(api) = resources.get_mut(IMPLICIT_ID).and_then(Value::as_object_mut) {
                if unique.len() == 1 {
                    api.insert("Condition".into(), json!(unique[0]));
                } else {
                    let name = format!("{IMPLICIT_ID}Condition");
                    api.insert("Condition".into(), json!(name));
                    let list = unique.into_iter().map(Value::String).collect();
                    new_conditions.extend(super::deployment::combined_condition(list, &name).unwrap_or_default());
                }
            }
        }
    }
    if let Some(api) = resources.get_mut(IMPLICIT_ID).and_then(Value::as_object_mut) {
        let strongest = |ps: &[Value], order: &[&str]| {
            order
                .iter()
                .find(|o| ps.iter().any(|p| p == &json!(o)))
                .map(|o| json!(o))
        };
        if let Some(p) = strongest(&deletion, &["Retain", "Delete"]) {
            api.insert("DeletionPolicy".into(), p);
        }
        if let Some(p) = strongest(&update_replace, &["Retain", "Snapshot", "Delete"]) {
            api.insert("UpdateReplacePolicy".into(), p);
        }
    }
    // Paths whose methods all have conditions exist only under them.
    let api_ids: Vec<String> = py27_order(resources).into_iter().cloned().collect();
    for api_id in api_ids {
        let r = &resources[&api_id];
        if r.get("Type").and_then(Value::as_str) != Some("AWS::Serverless::Api") {
            continue;
        }
        let managed = r
            .get("Properties")
            .and_then(|p| p.get("__MANAGE_SWAGGER"))
            .is_some_and(truthy);
        let Some(body) = bodies.get(&api_id).filter(|_| managed) else {
            continue;
        };
        let mut doc = body.deepcopy();
        if let Some(paths) = doc
            .as_dict_mut()
            .and_then(|d| d.get_mut("paths"))
            .and_then(Py::as_dict_mut)
        {
            for path in paths.keys() {
                let conds: Vec<Option<String>> = api_conditions
                    .get(&api_id)
                    .and_then(|m| m.get(&path))
                    .map(|m| m.values().cloned().collect())
                    .unwrap_or_default();
                if conds.is_empty() || conds.iter().any(Option::is_none) {
                    continue;
                }
                let mut unique: Vec<String> = conds.into_iter().flatten().collect();
                unique.sort();
                unique.dedup();
                let condition = if unique.len() == 1 {
                    Py::Str(unique[0].clone(), true)
                } else {
                    let name = format!(
                        "{api_id}{}PathCondition",
                        path.replace('/', "SLASH").replace('{', "OB").replace('}', "CB")
                    );
                    let list = unique.into_iter().map(Value::String).collect();
                    new_conditions.extend(super::deployment::combined_condition(list, &name).unwrap_or_default());
                    Py::s(&name)
                };
                if let Some(item) = paths.get(&path).cloned() {
                    paths.set(&path, true, item.conditional(condition));
                }
            }
        }
        let doc = doc.deepcopy();
        if let Some(p) = resources
            .get_mut(&api_id)
            .and_then(|r| r.get_mut("Properties"))
            .and_then(Value::as_object_mut)
        {
            p.insert("DefinitionBody".into(), doc.to_json());
        }
        bodies.insert(api_id, doc);
    }
    let empty = bodies
        .get(IMPLICIT_ID)
        .and_then(Py::as_dict)
        .and_then(|d| d.get("paths"))
        .and_then(Py::as_dict)
        .is_none_or(|p| p.len() == 0);
    if empty {
        bodies.remove(IMPLICIT_ID);
        match existing {
            Some(e) => {
                resources.insert(IMPLICIT_ID.into(), e);
            }
            None => {
                resources.shift_remove(IMPLICIT_ID);
            }
        }
    }
    if !new_conditions.is_empty() {
        let conditions = template.entry("Conditions").or_insert_with(|| json!({}));
        if let Some(c) = conditions.as_object_mut() {
            c.extend(new_conditions);
        }
    }
    Ok(bodies)
}

/// `\A3(\.\d)(\.\d)?$` (`major` "3"), or `\A[2-3](\.\d)(\.\d)?$` (`major` "23").
pub(crate) fn version_matches(v: &str, majors: &str) -> bool {
    let parts: Vec<&str> = v.split('.').collect();
    parts[0].len() == 1
        && majors.contains(parts[0])
        && (2..=3).contains(&parts.len())
        && parts[1..]
            .iter()
            .all(|p| p.len() == 1 && p.chars().all(|c| c.is_ascii_digit()))
}

/// The Globals plugin's `fix_openapi_definitions`: a managed API with an `OpenApiVersion` of 3
/// declares it in its body instead of `swagger: '2.0'`.
pub(crate) fn fix_openapi(template: &mut Map<String, Value>, bodies: &mut Bodies) {
    let Some(Value::Object(resources)) = template.get_mut("Resources") else {
        return;
    };
    for (id, r) in resources.iter_mut() {
        if r.get("Type").and_then(Value::as_str) != Some("AWS::Serverless::Api") {
            continue;
        }
        let Some(props) = r.get_mut("Properties").and_then(Value::as_object_mut) else {
            continue;
        };
        // a number (`OpenApiVersion: 3.0` in YAML) becomes Python's text of it, a plain `str`
        let (version, uni) = match props.get("OpenApiVersion") {
            Some(Value::String(v)) => (v.clone(), true),
            Some(n @ Value::Number(_)) => (super::python_repr(n), false),
            _ => continue,
        };
        if !props.contains_key("__MANAGE_SWAGGER") || !version_matches(&version, "3") {
            continue;
        }
        if !uni {
            props.insert("OpenApiVersion".into(), Value::String(version.clone()));
        }
        if let Some(doc) = bodies.get_mut(id).and_then(Py::as_dict_mut) {
            doc.set("openapi", false, Py::Str(version.clone(), uni));
            if doc.get("swagger").is_some_and(|s| !matches!(s, Py::None)) {
                doc.remove("swagger");
            }
            let json = Py::Dict(doc.clone()).to_json();
            props.insert("DefinitionBody".into(), json);
        }
    }
}

/// `ApiGenerator._openapi_postprocess`: for OpenAPI 3, security definitions and definitions
/// move under `components`, and the CORS preflight loses `produces`/`consumes` and gains
/// header schemas.
pub(crate) fn openapi_postprocess(body: &mut Py, open_api_version: Option<&Value>) -> Result<(), Failure> {
    let Some(doc) = body.as_dict_mut() else { return Ok(()) };
    if doc.get("swagger").is_some_and(|s| !matches!(s, Py::None)) {
        return Ok(());
    }
    let version = match (doc.get("openapi"), open_api_version) {
        (Some(v), None) if !matches!(v, Py::None) => v.to_json(),
        (_, v) => v.cloned().unwrap_or(Value::Null),
    };
    let Some(version) = version.as_str().filter(|v| version_matches(v, "3")) else {
        return Ok(());
    };
    let _ = version;
    let py_truthy = |p: Option<&Py>| p.is_some_and(|p| truthy(&p.to_json()));
    for (from, to) in [("securityDefinitions", "securitySchemes"), ("definitions", "schemas")] {
        if py_truthy(doc.get(from)) {
            let mut components = match doc.get("components") {
                Some(c) if truthy(&c.to_json()) => c.clone(),
                _ => Py::Dict(PyDict::py27()),
            };
            let moved = doc.get(from).cloned().unwrap_or(Py::None);
            if let Some(c) = components.as_dict_mut() {
                c.set(to, false, moved);
            }
            doc.set("components", false, components);
            doc.remove(from);
        }
    }
    let Some(paths) = doc.get_mut("paths") else {
        return Ok(());
    };
    if !truthy(&paths.to_json()) {
        return Ok(());
    }
    let Some(paths) = paths.as_dict_mut() else {
        return Err(Failure::Document(doc_err(
            "Value of paths must be a dictionary according to Swagger spec.".into(),
        )));
    };
    for path in paths.keys() {
        let Some(item) = paths.get_mut(&path).and_then(Py::as_dict_mut) else {
            return Err(Failure::Document(doc_err(format!(
                "Value of '{path}' path must be a dictionary according to Swagger spec."
            ))));
        };
        if !py_truthy(item.get("options")) {
            continue;
        }
        let Some(options) = item.get_mut("options").and_then(Py::as_dict_mut) else {
            return Err(Failure::Document(doc_err(format!(
                "Value of options method for path {path} must be a dictionary according to Swagger spec."
            ))));
        };
        for field in options.keys() {
            if field == "produces" || field == "consumes" {
                options.remove(&field);
            }
            if field != "responses" {
                continue;
            }
            let Some(responses) = options.get_mut("responses") else {
                continue;
            };
            let headers = match responses {
                Py::None => None,
                Py::Dict(r) => match r.get_mut("200") {
                    None | Some(Py::None) => None,
                    Some(Py::Dict(ok)) => ok.get_mut("headers"),
                    Some(_) => {
                        return Err(Failure::Document(doc_err(format!(
                            "Invalid responses in options method for path {path}: The value of '200' should be a map."
                        ))))
                    }
                },
                _ => {
                    return Err(Failure::Document(doc_err(format!(
                        "Invalid responses in options method for path {path}: It should be a map."
                    ))))
                }
            };
            let Some(headers) = headers.filter(|h| truthy(&h.to_json())) else {
                continue;
            };
            let Some(headers) = headers.as_dict_mut() else {
                return Err(Failure::Document(doc_err(format!(
                    "Value of response's headers in options method for path {path} must be a dictionary according to Swagger spec."
                ))));
            };
            for header in headers.keys() {
                let value = headers.get(&header).cloned().unwrap_or(Py::None);
                let mut wrapped = PyDict::py27();
                wrapped.set("schema", false, value);
                headers.set(&header, false, Py::Dict(wrapped));
            }
        }
    }
    Ok(())
}

/// `_get_merged_definitions`: the API's own definition with the event's method from `generated`
/// merged into it (the generated keys win); nothing changes when the definition has no paths.
fn merge_definitions(
    api_id: &str,
    source: Py,
    generated: &Py,
    path: &str,
    method: &str,
    normalized: &str,
) -> Result<Py, Failure> {
    let mut merged = source;
    let Some(top) = merged.as_dict_mut() else {
        return Ok(merged);
    };
    let paths = top.get("paths").filter(|p| truthy(&p.to_json())).cloned();
    let invalid = |e: String| res_err(api_id, format!("Property 'DefinitionBody' is invalid: {e}"));
    // dict_deep_get(paths, [path, method]) or {}
    let existing = match &paths {
        None => None,
        Some(Py::Dict(d)) => match d.get(path) {
            None | Some(Py::None) => None,
            Some(Py::Dict(item)) => item.get(method).cloned(),
            Some(_) => return Err(invalid(format!("The value of '{path}' should be a map"))),
        },
        Some(_) => return Err(invalid("It should be a map".into())),
    };
    let existing = existing
        .filter(|v| truthy(&v.to_json()))
        .unwrap_or_else(|| Py::Dict(PyDict::plain()));
    let Some(existing) = existing.as_dict() else {
        return Err(res_err(
            api_id,
            format!("Property 'DefinitionBody.paths.{path}.{method}' should be a map."),
        ));
    };
    let made = generated
        .as_dict()
        .and_then(|d| d.get("paths"))
        .and_then(Py::as_dict)
        .and_then(|p| p.get(path))
        .and_then(Py::as_dict)
        .and_then(|i| i.get(normalized))
        .and_then(Py::as_dict);
    let mut body = PyDict::plain();
    for d in [Some(existing), made].into_iter().flatten() {
        for (k, uni) in d.keys_with_kind() {
            body.set(&k, uni, d.get(&k).cloned().unwrap_or(Py::None));
        }
    }
    let Some(Py::Dict(paths)) = top.get_mut("paths").filter(|_| paths.is_some()) else {
        return Ok(merged);
    };
    if !paths.contains(path) {
        paths.set(path, true, Py::Dict(PyDict::plain()));
    }
    if let Some(item) = paths.get_mut(path).and_then(Py::as_dict_mut) {
        item.set(method, true, Py::Dict(body));
    }
    Ok(merged)
}

/// `SwaggerEditor.add_path`: the path (in each branch of its `Fn::If`) with the method; the
/// path's item is returned.
fn add_method<'a>(paths: &'a mut PyDict, path: &str, method: &str, uni: bool) -> Result<&'a mut Py, Failure> {
    let item = paths.setdefault(path, true, Py::Dict(PyDict::py27()));
    if item.as_dict().is_none() {
        return Err(Failure::Document(doc_err(format!(
            "Value of '{path}' path must be a dictionary according to Swagger spec."
        ))));
    }
    let contents = item
        .conditional_contents_mut()
        .map_err(|_| Failure::Document(doc_err("Value of Fn::If must be a list.".into())))?;
    for content in contents {
        if let Some(c) = content.as_dict_mut() {
            c.setdefault(method, uni, Py::Dict(PyDict::py27()));
        }
    }
    Ok(item)
}

/// `SwaggerEditor.has_integration`: every branch of the path has the method, and every branch
/// of the path's method definition an integration... in one of its own branches.
fn has_integration(paths: &PyDict, path: &str, method: &str) -> Result<bool, Failure> {
    let Some(item) = paths.get(path) else { return Ok(false) };
    let mut item = item.clone();
    let if_err = || Failure::Document(doc_err("Value of Fn::If must be a list.".into()));
    let contents = item.conditional_contents_mut().map_err(|_| if_err())?;
    if contents.iter().any(|c| c.as_dict().is_none_or(|d| !d.contains(method))) {
        return Ok(false);
    }
    for content in contents {
        let Some(mut def) = content.as_dict().and_then(|d| d.get(method)).cloned() else {
            return Ok(false);
        };
        if def.as_dict().is_none() {
            return Ok(false);
        }
        let mut any = false;
        for branch in def.conditional_contents_mut().map_err(|_| if_err())? {
            let Some(b) = branch.as_dict() else {
                return Err(Failure::Document(doc_err(format!(
                    "Definition of method '{method}' for path '{path}' should be a map."
                ))));
            };
            if b.get(INTEGRATION).is_some_and(|i| truthy(&i.to_json())) {
                any = true;
                break;
            }
        }
        if !any {
            return Ok(false);
        }
    }
    Ok(true)
}

/// `get_path_without_trailing_slash` after the trailing `/` is removed: path parameters as `*`.
fn permission_path(path: &str) -> String {
    let mut p = path.to_string();
    if p.len() > 1 && p.ends_with('/') {
        p.pop();
    }
    starred_path(&p)
}

/// `get_path_without_trailing_slash` (despite its name): path parameters as `*`.
pub(crate) fn starred_path(p: &str) -> String {
    let mut out = String::new();
    let mut rest = p;
    while let Some(i) = rest.find('{') {
        let after = &rest[i + 1..];
        match after.find('}') {
            Some(j)
                if {
                    let name = after[..j].strip_suffix('+').unwrap_or(&after[..j]);
                    !name.is_empty() && name.chars().all(|c| c.is_ascii_alphanumeric() || "._-".contains(c))
                } =>
            {
                out.push_str(&rest[..i]);
                out.push('*');
                rest = &after[j + 1..];
            }
            _ => {
                out.push_str(&rest[..=i]);
                rest = after;
            }
        }
    }
    out.push_str(rest);
    out
}

fn shorthand(v: &Value) -> String {
    if let Some(r) = v.get("Ref").and_then(Value::as_str) {
        return format!("${{{r}}}");
    }
    if let Some(Value::Array(a)) = v.get("Fn::GetAtt") {
        let parts: Vec<&str> = a.iter().filter_map(Value::as_str).collect();
        return format!("${{{}}}", parts.join("."));
    }
    String::new()
}

/// The permission of an `Api` event, and its integration in the API's swagger when SAM manages it.
#[allow(clippy::too_many_arguments)]
pub(crate) fn event(
    ctx: &mut Context<'_>,
    function_id: &str,
    event_id: &str,
    lid: &str,
    ep: &Map<String, Value>,
    function_arn: &Value,
    function_name: &Value,
    passthrough: &Map<String, Value>,
) -> Result<Vec<CfnResource>, Failure> {
    let ev_err = |m: String| res_err(function_id, format!("Event with id [{event_id}] is invalid. {m}"));
    for (name, ok) in [
        ("Path", ep.get("Path").is_some_and(Value::is_string)),
        ("Method", ep.get("Method").is_some_and(Value::is_string)),
        ("Stage", ep.get("Stage").is_none_or(Value::is_string)),
    ] {
        if !ok {
            return Err(res_err(lid, format!("Type of property '{name}' is invalid.")));
        }
    }
    for unsupported in ["ResponseTransferMode"] {
        if ep.get(unsupported).is_some_and(|v| !v.is_null()) {
            return Err(ev_err(not_yet(&format!("Property '{unsupported}' of Api events"))));
        }
    }
    let raw_api = ep.get("RestApiId").cloned().unwrap_or(Value::Null);
    let api_id = match &raw_api {
        Value::Object(o) if o.contains_key("Ref") => o["Ref"].as_str().map(str::to_string),
        Value::String(s) => Some(s.clone()),
        _ => None,
    };
    // resources_to_link: the stage of the API named, for the permission's id.
    let mut api_props = Map::new();
    let suffix = match &api_id {
        None => "AllStages".to_string(),
        Some(a) => {
            let Some(api) = ctx.resources_now.get(a).filter(|r| r.is_object()) else {
                return Err(ev_err(
                    "RestApiId property of Api event must reference a valid resource in the same template.".into(),
                ));
            };
            api_props = api
                .get("Properties")
                .and_then(Value::as_object)
                .cloned()
                .unwrap_or_default();
            match api_props.get("StageName") {
                Some(Value::String(s)) if s.is_empty() => return Err(res_err(a, "StageName cannot be empty.")),
                Some(Value::String(s)) => s.clone(),
                _ => "Stage".to_string(),
            }
        }
    };
    let path = ep["Path"].as_str().unwrap_or_default().to_string();
    let method = ep["Method"].as_str().unwrap_or_default().to_lowercase();
    let shown_method = if method == "any" {
        "*".to_string()
    } else {
        method.to_uppercase()
    };
    let permission_id = if !suffix.is_empty() && suffix.chars().all(char::is_alphanumeric) {
        format!("{lid}Permission{suffix}")
    } else {
        super::hash::logical_id(&format!("{lid}Permission"), Some(&json!(suffix)), None)
    };
    let mut perm = CfnResource::new(permission_id, "AWS::Lambda::Permission");
    perm.attributes = passthrough.clone();
    perm.set("Action", Some(json!("lambda:InvokeFunction")));
    perm.set("FunctionName", Some(function_name.clone()));
    perm.set("Principal", Some(json!("apigateway.amazonaws.com")));
    perm.set(
        "SourceArn",
        Some(json!({"Fn::Sub": [
            format!(
                "arn:{}:execute-api:${{AWS::Region}}:${{AWS::AccountId}}:${{__ApiId__}}/${{__Stage__}}/{shown_method}{}",
                ctx.opts.partition,
                permission_path(&path)
            ),
            {"__ApiId__": raw_api, "__Stage__": "*"}
        ]})),
    );

    let managed = api_props.get("__MANAGE_SWAGGER").is_some_and(truthy);
    let event_auth = match ep.get("Auth").filter(|v| !v.is_null()) {
        None => Map::new(),
        Some(Value::Object(m)) => m.clone(),
        Some(v) if !truthy(v) => Map::new(),
        Some(_) => return Err(ev_err("Property 'Auth' should be a map.".into())),
    };
    let api_auth_raw = api_props.get("Auth").filter(|v| truthy(v)).cloned();
    let api_auth = match &api_auth_raw {
        Some(a) => Some(ctx.resolve_params(a)?),
        None => None,
    };
    let api_name = api_id.clone().unwrap_or_default();
    let merge = api_props.get("MergeDefinitions").is_some_and(truthy);
    if (managed || merge) && api_auth.as_ref().is_some_and(|a| !a.is_object()) {
        return Err(res_err(&api_name, "Property 'Auth' should be a map."));
    }
    let api_auth_map = api_auth
        .as_ref()
        .and_then(Value::as_object)
        .cloned()
        .unwrap_or_default();
    if managed || merge {
        let api_id = api_id.unwrap_or_default();
        // With MergeDefinitions the event's method is written into a skeleton of its own, then
        // merged into the API's definition.
        let mut doc = if merge {
            skeleton().deepcopy()
        } else {
            let Some(body) = ctx.rest_bodies.get(&api_id) else {
                return Ok(vec![perm]);
            };
            body.deepcopy()
        };
        let (m, m_uni) = normalize_method(&method);
        let paths = doc
            .as_dict_mut()
            .and_then(|d| d.get_mut("paths"))
            .and_then(Py::as_dict_mut)
            .ok_or_else(|| res_err(&api_id, "Invalid Swagger document"))?;
        if has_integration(paths, &path, &m)? {
            return Err(ev_err(format!(
                "API method \"{method}\" defined multiple times for path \"{path}\"."
            )));
        }
        let path_err = || {
            Failure::Document(doc_err(format!(
                "Value of '{path}' path must be a dictionary according to Swagger spec."
            )))
        };
        let if_err = || Failure::Document(doc_err("Value of Fn::If must be a list.".into()));
        let item = add_method(paths, &path, &m, m_uni)?;
        // the function's ARN from the template's id is a Py27UniStr; an alias's ARN is not
        let uri_uni = function_arn.get("Fn::GetAtt").is_some();
        let arn = format!(
            "arn:{}:apigateway:${{AWS::Region}}:lambda:path/2015-03-31/functions/{}/invocations",
            ctx.opts.partition,
            shorthand(function_arn)
        );
        let mut uri = PyDict::py27();
        uri.set("Fn::Sub", false, Py::Str(arn, uri_uni));
        let condition = passthrough.get("Condition").map(Py::from_template);
        let uri = match &condition {
            Some(c) => Py::Dict(uri).conditional(c.clone()),
            None => Py::Dict(uri),
        };
        for content in item.conditional_contents_mut().map_err(|_| if_err())? {
            let Some(content) = content.as_dict_mut() else {
                return Err(path_err());
            };
            let Some(method_def) = content.get_mut(&m).and_then(Py::as_dict_mut) else {
                return Err(Failure::Document(doc_err(format!(
                    "Definition of method '{m}' for path '{path}' should be a map."
                ))));
            };
            let mut integration = PyDict::py27();
            integration.set("type", false, Py::s("aws_proxy"));
            integration.set("httpMethod", false, Py::s("POST"));
            integration.set("uri", false, uri.clone());
            if let Some(c) = super::rest_auth::iam_credentials(&event_auth, &api_auth_map, &ctx.opts.partition) {
                integration.set("credentials", false, c);
            }
            if let Some(t) = ep.get("TimeoutInMillis").filter(|v| truthy(v)) {
                integration.set("timeoutInMillis", false, Py::from_template(t));
            }
            method_def.set(INTEGRATION, false, Py::Dict(integration));
            method_def.setdefault("responses", false, Py::Dict(PyDict::py27()));
            if let Some(c) = &condition {
                let def = content.get(&m).cloned().unwrap_or(Py::None);
                content.set(&m, m_uni, def.conditional(c.clone()));
            }
        }
        let mut editor = super::rest_auth::Editor::from_doc(doc);
        if !event_auth.is_empty() {
            super::rest_auth::add_to_method(
                &mut editor,
                function_id,
                event_id,
                &api_id,
                &event_auth,
                api_auth.as_ref(),
                &method,
                &path,
                &suffix,
            )?;
        }
        super::rest_swagger::add_to_method(
            &mut editor,
            function_id,
            event_id,
            ep,
            api_props.get("Models"),
            &method,
            &path,
        )?;
        doc = editor.into_doc();
        let new = if merge {
            let source = ctx
                .rest_bodies
                .get(&api_id)
                .cloned()
                .or_else(|| api_props.get("DefinitionBody").map(Py::from_template))
                .unwrap_or(Py::None);
            merge_definitions(&api_id, source, &doc.deepcopy(), &path, &method, &m)?
        } else {
            doc.deepcopy()
        };
        if let Some(p) = ctx
            .resources_now
            .get_mut(&api_id)
            .and_then(|r| r.get_mut("Properties"))
            .and_then(Value::as_object_mut)
        {
            p.insert("DefinitionBody".into(), new.to_json());
        }
        ctx.rest_bodies.insert(api_id, new);
    }
    // `OverrideApiAuth`: the event's auth is written into the API's own definition too
    let body_given = ctx
        .resources_now
        .get(&api_name)
        .and_then(|r| r.get("Properties"))
        .and_then(|p| p.get("DefinitionBody"))
        .filter(|b| truthy(b))
        .cloned();
    if let (Some(body), true) = (body_given, event_auth.get("OverrideApiAuth").is_some_and(truthy)) {
        if !["Authorizer", "ApiKeyRequired", "ResourcePolicy"]
            .iter()
            .any(|k| event_auth.get(*k).is_some_and(truthy))
        {
            return Err(ev_err(
                "Must define one of: Authorizer, ApiKeyRequired or ResourcePolicy when using the OverrideApiAuth property."
                    .into(),
            ));
        }
        let doc = ctx
            .rest_bodies
            .get(&api_name)
            .cloned()
            .unwrap_or_else(|| Py::from_template(&body));
        let mut editor = super::rest_auth::Editor::from_doc(doc.deepcopy());
        super::rest_auth::add_to_method(
            &mut editor,
            function_id,
            event_id,
            &api_name,
            &event_auth,
            api_auth.as_ref(),
            &method,
            &path,
            &suffix,
        )?;
        let new = editor.into_doc().deepcopy();
        if let Some(p) = ctx
            .resources_now
            .get_mut(&api_name)
            .and_then(|r| r.get_mut("Properties"))
            .and_then(Value::as_object_mut)
        {
            p.insert("DefinitionBody".into(), new.to_json());
        }
        ctx.rest_bodies.insert(api_name, new);
    }
    Ok(vec![perm])
}

/// An `Api` event of a state machine (`add_state_machine_integration`): the method's `aws`
/// integration with Step Functions' StartExecution, its request template naming the state
/// machine, and the event's `Auth`, in the swagger of the API when SAM manages it.
pub(crate) struct StateMachineIntegration<'a> {
    pub machine_id: &'a str,
    pub event_id: &'a str,
    /// The state machine or its alias: what the execution starts.
    pub target_id: &'a str,
    /// The ARN of the role API Gateway takes (a `Fn::GetAtt` of the event's role).
    pub credentials: Value,
    pub condition: Option<Value>,
}

impl StateMachineIntegration<'_> {
    pub(crate) fn add(&self, ctx: &mut Context<'_>, ep: &Map<String, Value>) -> Result<(), Failure> {
        let owner = super::events::Owner::StateMachine;
        // resources_to_link: the API named, reported as the state machine's error
        let api_id = match ep.get("RestApiId") {
            Some(Value::Object(o)) => o.get("Ref").and_then(Value::as_str),
            Some(Value::String(s)) => Some(s.as_str()),
            _ => None,
        };
        let Some(api_id) = api_id.map(str::to_string) else {
            return Ok(());
        };
        let Some(api) = ctx.resources_now.get(&api_id).filter(|r| r.is_object()) else {
            return Err(super::events::Owner::Function(self.machine_id).event_err(
                self.event_id,
                "RestApiId property of Api event must reference a valid resource in the same template.",
            ));
        };
        let api_props = api
            .get("Properties")
            .and_then(Value::as_object)
            .cloned()
            .unwrap_or_default();
        if api_props.get("StageName").and_then(Value::as_str) == Some("") {
            return Err(res_err(&api_id, "StageName cannot be empty."));
        }
        if !api_props.get("__MANAGE_SWAGGER").is_some_and(truthy) {
            return Ok(());
        }
        let Some(body) = ctx.rest_bodies.get(&api_id) else {
            return Ok(());
        };
        let path = ep.get("Path").and_then(Value::as_str).unwrap_or_default().to_string();
        let method = ep
            .get("Method")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_lowercase();
        let (m, m_uni) = normalize_method(&method);
        let mut doc = body.deepcopy();
        let paths = doc
            .as_dict_mut()
            .and_then(|d| d.get_mut("paths"))
            .and_then(Py::as_dict_mut)
            .ok_or_else(|| res_err(&api_id, "Invalid Swagger document"))?;
        if has_integration(paths, &path, &method)? {
            return Err(owner.event_err(
                self.event_id,
                format!("API method \"{method}\" defined multiple times for path \"{path}\"."),
            ));
        }
        if has_integration(paths, &path, &m)? {
            return Err(Failure::Document(doc_err(format!(
                "Integration already exists on Path={path}, Method={m}"
            ))));
        }
        let path_err = || {
            Failure::Document(doc_err(format!(
                "Value of '{path}' path must be a dictionary according to Swagger spec."
            )))
        };
        let if_err = || Failure::Document(doc_err("Value of Fn::If must be a list.".into()));
        let item = add_method(paths, &path, &m, m_uni)?;
        let mut uri = PyDict::plain();
        uri.set(
            "Fn::Sub",
            false,
            Py::s("arn:${AWS::Partition}:apigateway:${AWS::Region}:states:action/StartExecution"),
        );
        let condition = self.condition.as_ref().map(Py::from_template);
        let uri = match &condition {
            Some(c) => Py::Dict(uri).conditional(c.clone()),
            None => Py::Dict(uri),
        };
        let statuses = |key: &str, values: [&str; 2]| {
            let mut d = PyDict::py27();
            for (status, value) in ["200", "400"].into_iter().zip(values) {
                let mut entry = PyDict::py27();
                entry.set(key, false, Py::s(value));
                d.set(status, false, Py::Dict(entry));
            }
            Py::Dict(d)
        };
        // SAM's own strings, as the role's id is
        let credentials = Py::from_json(&self.credentials, false);
        let mut template = PyDict::plain();
        template.set("Fn::Sub", false, Py::Str(self.request_template(ep), false));
        let mut templates = PyDict::plain();
        templates.set("application/json", false, Py::Dict(template));
        for content in item.conditional_contents_mut().map_err(|_| if_err())? {
            let Some(content) = content.as_dict_mut() else {
                return Err(path_err());
            };
            let Some(method_def) = content.get_mut(&m).and_then(Py::as_dict_mut) else {
                return Err(Failure::Document(doc_err(format!(
                    "Definition of method '{m}' for path '{path}' should be a map."
                ))));
            };
            let mut integration = PyDict::py27();
            integration.set("type", false, Py::s("aws"));
            integration.set("httpMethod", false, Py::s("POST"));
            integration.set("uri", false, uri.clone());
            integration.set("responses", false, statuses("statusCode", ["200", "400"]));
            integration.set("credentials", false, credentials.clone());
            integration.set("requestTemplates", false, Py::Dict(templates.clone()));
            method_def.set(INTEGRATION, false, Py::Dict(integration));
            method_def.setdefault("responses", false, statuses("description", ["OK", "Bad Request"]));
            if let Some(c) = &condition {
                let def = content.get(&m).cloned().unwrap_or(Py::None);
                content.set(&m, m_uni, def.conditional(c.clone()));
            }
        }
        let event_auth = match ep.get("Auth") {
            Some(Value::Object(a)) if !a.is_empty() => Some(a),
            _ => None,
        };
        if let Some(event_auth) = event_auth {
            let api_auth = match api_props.get("Auth") {
                Some(a) => Some(ctx.resolve_params(a)?),
                None => None,
            };
            let mut editor = super::rest_auth::Editor::from_doc(doc);
            super::rest_auth::add_to_method_of(
                &mut editor,
                owner,
                self.event_id,
                &api_id,
                event_auth,
                api_auth.as_ref(),
                &method,
                &path,
                ep.get("Stage").and_then(Value::as_str),
            )?;
            doc = editor.into_doc();
        }
        let new = doc.deepcopy();
        if let Some(p) = ctx
            .resources_now
            .get_mut(&api_id)
            .and_then(|r| r.get_mut("Properties"))
            .and_then(Value::as_object_mut)
        {
            p.insert("DefinitionBody".into(), new.to_json());
        }
        ctx.rest_bodies.insert(api_id, new);
        Ok(())
    }

    /// The body mapping template: the request's body as the execution's input (with single
    /// quotes unescaped when `UnescapeMappingTemplate` is set).
    fn request_template(&self, ep: &Map<String, Value>) -> String {
        let input = if ep.get("UnescapeMappingTemplate").is_some_and(truthy) {
            r#"$util.escapeJavaScript($input.json('$')).replaceAll("\\'","'")"#
        } else {
            r#"$util.escapeJavaScript($input.json('$'))"#
        };
        format!(
            r#"{{"input": "{input}", "stateMachineArn": "${{{}}}"}}"#,
            self.target_id
        )
    }
}

/// The properties of `AWS::Serverless::Api` in aws-sam-translator 1.115.0's model, in order.
const PROPERTIES: &[(&str, Check)] = &[
    ("__MANAGE_SWAGGER", Check::Bool),
    ("Name", Check::StrOrDict),
    ("StageName", Check::StrOrDict),
    ("Tags", Check::Dict),
    ("PropagateTags", Check::Bool),
    ("DefinitionBody", Check::Dict),
    ("DefinitionUri", Check::StrOrDict),
    ("MergeDefinitions", Check::StrictBool),
    ("CacheClusterEnabled", Check::Bool),
    ("CacheClusterSize", Check::Str),
    ("Variables", Check::Dict),
    ("EndpointConfiguration", Check::StrOrDict),
    ("MethodSettings", Check::List),
    ("BinaryMediaTypes", Check::List),
    ("MinimumCompressionSize", Check::Int),
    ("Cors", Check::StrOrDict),
    ("Auth", Check::Dict),
    ("GatewayResponses", Check::Dict),
    ("AccessLogSetting", Check::Dict),
    ("CanarySetting", Check::Dict),
    ("TracingEnabled", Check::Bool),
    ("OpenApiVersion", Check::Str),
    ("Models", Check::Dict),
    ("Domain", Check::Dict),
    ("FailOnWarnings", Check::Bool),
    ("Description", Check::Str),
    ("Mode", Check::Str),
    ("DisableExecuteApiEndpoint", Check::Bool),
    ("ApiKeySourceType", Check::Str),
    ("AlwaysDeploy", Check::StrictBool),
    ("Policy", Check::StrOrDict),
    ("SecurityPolicy", Check::Str),
    ("EndpointAccessMode", Check::Str),
];

/// `AWS::Serverless::Api` -> `AWS::ApiGateway::RestApi`, its deployment and its stage.
pub(crate) fn translate(
    ctx: &mut Context<'_>,
    id: &str,
    resource: &Value,
    function_names: &BTreeMap<String, String>,
) -> Result<Vec<CfnResource>, Failure> {
    let empty = Map::new();
    let props = resource.get("Properties").and_then(Value::as_object).unwrap_or(&empty);
    super::validate::properties(id, "AWS::Serverless::Api", props, PROPERTIES, &["StageName"])?;
    let get = |k: &str| props.get(k).filter(|v| !v.is_null());
    if get("DisableExecuteApiEndpoint").is_some() && get("DefinitionBody").is_none() {
        return Err(res_err(
            id,
            "DisableExecuteApiEndpoint works only within 'DefinitionBody' property.",
        ));
    }
    if get("MergeDefinitions").is_some_and(truthy) && get("DefinitionUri").is_some() {
        return Err(res_err(
            id,
            "Cannot set 'MergeDefinitions' to True when using `DefinitionUri`.",
        ));
    }
    for unsupported in ["AlwaysDeploy"] {
        if get(unsupported).is_some_and(truthy) {
            return Err(res_err(
                id,
                not_yet(&format!("Property '{unsupported}' of AWS::Serverless::Api")),
            ));
        }
    }
    let open_api_version = get("OpenApiVersion").filter(|v| truthy(v)).cloned();
    let body_given = get("DefinitionBody").cloned();
    let uri = get("DefinitionUri").cloned();
    if body_given.is_some() && uri.is_some() {
        return Err(res_err(
            id,
            "Specify either 'DefinitionUri' or 'DefinitionBody' property and not both.",
        ));
    }
    if let Some(v) = &open_api_version {
        if !v.as_str().is_some_and(|v| version_matches(v, "23")) {
            return Err(res_err(id, "The OpenApiVersion value must be of the format '3.0.0'."));
        }
    }
    let mut body: Option<Py> = match &body_given {
        None => None,
        Some(b) => Some(ctx.rest_bodies.get(id).cloned().unwrap_or_else(|| Py::from_template(b))),
    };
    if let Some(cors) = get("Cors").filter(|c| truthy(c)) {
        add_cors(id, body.as_mut(), cors)?;
    }
    let passthrough = super::function::passthrough_attributes(resource);
    let authorizer_permissions = match get("Auth") {
        Some(auth) => super::rest_auth::add_to_api(
            ctx,
            id,
            auth,
            body.as_mut(),
            get("StageName"),
            open_api_version.as_ref(),
            &passthrough,
        )?,
        None => Vec::new(),
    };
    if let Some(responses) = get("GatewayResponses") {
        super::rest_swagger::gateway_responses(id, responses, body.as_mut())?;
    }
    let binary = match get("BinaryMediaTypes") {
        Some(b) => Some(ctx.resolve_params(b)?),
        None => None,
    };
    if let (Some(bmt), Some(doc)) = (binary.as_ref().filter(|b| truthy(b)), body.as_mut()) {
        let mut d = doc.deepcopy();
        let value = replace_tilde(&Py::from_template(bmt));
        if let Some(dd) = d.as_dict_mut() {
            dd.set("x-amazon-apigateway-binary-media-types", false, value);
        }
        *doc = d.deepcopy();
    }
    if let Some(models) = get("Models") {
        super::rest_swagger::models(id, models, body.as_mut(), open_api_version.as_ref())?;
    }
    if let Some(disable) = get("DisableExecuteApiEndpoint") {
        super::rest_swagger::disable_execute_api_endpoint(id, disable, body.as_mut())?;
    }

    let mut api = CfnResource::new(id, "AWS::ApiGateway::RestApi");
    api.depends_on = resource.get("DependsOn").cloned();
    api.attributes = super::function::resource_attributes(resource);
    api.set("BinaryMediaTypes", binary);
    api.set("MinimumCompressionSize", get("MinimumCompressionSize").cloned());
    if let Some(ec) = get("EndpointConfiguration").filter(|v| truthy(v)) {
        let ty = ec.get("Type").filter(|t| truthy(t));
        match (ec, ty) {
            (Value::Object(m), Some(ty)) => {
                api.set("Parameters", Some(json!({"endpointConfigurationTypes": ty})));
                let mut conf = Map::new();
                conf.insert("Types".into(), json!([ty]));
                if m.contains_key("VPCEndpointIds") && m.contains_key("VpcEndpointIds") {
                    return Err(res_err(
                        id,
                        "'VPCEndpointIds' and 'VpcEndpointIds' cannot be used together in EndpointConfiguration.",
                    ));
                }
                if m.contains_key("VPCEndpointIds") || m.contains_key("VpcEndpointIds") {
                    let ids = m
                        .get("VPCEndpointIds")
                        .filter(|v| truthy(v))
                        .or_else(|| m.get("VpcEndpointIds"))
                        .cloned()
                        .unwrap_or(Value::Null);
                    conf.insert("VpcEndpointIds".into(), ids);
                }
                if let Some(t) = m.get("IpAddressType") {
                    conf.insert("IpAddressType".into(), t.clone());
                }
                api.set("EndpointConfiguration", Some(Value::Object(conf)));
            }
            _ => {
                api.set("EndpointConfiguration", Some(json!({"Types": [ec]})));
                api.set("Parameters", Some(json!({"endpointConfigurationTypes": ec})));
            }
        }
    }
    if let Some(f) = get("FailOnWarnings").filter(|v| truthy(v)) {
        api.set("FailOnWarnings", Some(f.clone()));
    }
    // what the deployment's id hashes: the body, or the S3 location
    let hashed: Py;
    match (&uri, &body) {
        (Some(u), _) => {
            let loc = body_s3(id, &ctx.resolve_params(u)?, u.is_string())?;
            api.set("BodyS3Location", Some(loc.to_json()));
            hashed = loc;
        }
        (None, Some(b)) => {
            let mut b = b.clone();
            openapi_postprocess(&mut b, open_api_version.as_ref())?;
            api.set("Body", Some(b.to_json()));
            hashed = b;
        }
        (None, None) => {
            return Err(res_err(
                id,
                "'DefinitionUri' or 'DefinitionBody' are required properties of an 'AWS::Serverless::Api'. Add a value for one of these properties or add a 'Api' event to an 'AWS::Serverless::Function'.",
            ))
        }
    }
    for k in [
        "Name",
        "Description",
        "Mode",
        "ApiKeySourceType",
        "Policy",
        "SecurityPolicy",
        "EndpointAccessMode",
    ] {
        if let Some(v) = get(k).filter(|v| truthy(v)) {
            api.set(k, Some(v.clone()));
        }
    }

    let domain = match get("Domain") {
        Some(d) => {
            let d = ctx.resolve_params(d)?;
            Some(super::domain::rest(&mut ctx.route53_groups, id, &d, &passthrough)?)
        }
        None => None,
    };
    // the deployment: named by the hash of the swagger's Python text (and of the domain's
    // configuration as SAM read it)
    let mut hash_input = vec![hashed.repr()];
    if let Some(Value::String(v)) = &open_api_version {
        hash_input.push(v.clone());
    }
    if let Some(d) = &domain {
        // the configuration is a Py27Dict: its keys go in Python 2.7's order
        let config = Py::from_template(&Value::Object(d.config.clone())).to_json();
        hash_input.push(super::hash::python_json_dumps(&config));
    }
    if let Some(names) = function_names.get(id).filter(|n| !n.is_empty()) {
        hash_input.push(names.clone());
    }
    let data = hash_input.join("||");
    let digest = {
        use sha1::{Digest, Sha1};
        hex::encode(Sha1::digest(data.as_bytes()))
    };
    let deployment_id = format!("{id}Deployment{}", &digest[..super::hash::HASH_LENGTH]);
    let mut deployment = CfnResource::new(deployment_id.clone(), "AWS::ApiGateway::Deployment");
    deployment.attributes = passthrough.clone();
    deployment.set("Description", Some(json!(format!("RestApi deployment id: {digest}"))));
    deployment.set("RestApiId", Some(json!({"Ref": id})));
    if open_api_version.is_none() {
        deployment.set("StageName", Some(json!("Stage")));
    }

    let stage_name = get("StageName").cloned().unwrap_or(Value::Null);
    let prefix = stage_name.as_str().unwrap_or("");
    let stage_id = if !prefix.is_empty() && prefix.chars().all(char::is_alphanumeric) {
        format!("{id}{prefix}Stage")
    } else {
        super::hash::logical_id(&format!("{id}Stage"), Some(&json!(prefix)), None)
    };
    let mut stage = CfnResource::new(stage_id, "AWS::ApiGateway::Stage");
    stage.attributes = passthrough.clone();
    stage.set("RestApiId", Some(json!({"Ref": id})));
    stage.set("DeploymentId", Some(json!({"Ref": deployment_id})));
    stage.set("StageName", Some(stage_name));
    stage.set("CacheClusterEnabled", get("CacheClusterEnabled").cloned());
    stage.set("CacheClusterSize", get("CacheClusterSize").cloned());
    stage.set("Variables", get("Variables").cloned());
    stage.set("MethodSettings", get("MethodSettings").cloned());
    stage.set("AccessLogSetting", get("AccessLogSetting").cloned());
    stage.set("CanarySetting", get("CanarySetting").cloned());
    stage.set("TracingEnabled", get("TracingEnabled").cloned());
    if let Some(tags) = get("Tags").and_then(Value::as_object) {
        stage.set("Tags", Some(Value::Array(super::function::plain_tag_list(tags))));
    }
    let stage_id = stage.logical_id.clone();
    let mut out = vec![api, deployment, stage];
    out.extend(authorizer_permissions);
    out.extend(domain.into_iter().flat_map(|d| d.resources));
    out.extend(super::rest_auth::usage_plan(
        ctx,
        id,
        get("Auth"),
        &stage_id,
        &passthrough,
    )?);
    // PropagateTags: the API's tags on every generated resource that takes tags
    if let (true, Some(tags)) = (
        get("PropagateTags").is_some_and(truthy),
        get("Tags").filter(|t| truthy(t)).and_then(Value::as_object),
    ) {
        const TAGGED: &[&str] = &[
            "AWS::ApiGateway::RestApi",
            "AWS::ApiGateway::Stage",
            "AWS::ApiGateway::DomainName",
            "AWS::ApiGateway::DomainNameV2",
            "AWS::ApiGateway::UsagePlan",
            "AWS::ApiGateway::ApiKey",
            "AWS::ApiGateway::DomainNameAccessAssociation",
        ];
        for r in out.iter_mut().filter(|r| TAGGED.contains(&r.resource_type.as_str())) {
            r.set("Tags", Some(Value::Array(super::function::plain_tag_list(tags))));
        }
    }
    Ok(out)
}

/// `SwaggerEditor.is_valid`.
pub(crate) fn is_valid_swagger(doc: &Value) -> bool {
    if !doc.get("paths").is_some_and(Value::is_object) {
        return false;
    }
    if doc.get("swagger").is_some_and(truthy) {
        return true;
    }
    match doc.get("openapi") {
        Some(Value::String(v)) if truthy(&json!(v)) => {
            // \A3(\.\d)(\.\d)?$
            let parts: Vec<&str> = v.split('.').collect();
            parts[0] == "3"
                && (2..=3).contains(&parts.len())
                && parts[1..]
                    .iter()
                    .all(|p| p.len() == 1 && p.chars().all(|c| c.is_ascii_digit()))
        }
        _ => false,
    }
}

const CORS_FIELDS: &[&str] = &[
    "AllowMethods",
    "AllowHeaders",
    "AllowOrigin",
    "MaxAge",
    "AllowCredentials",
];
const ALL_HTTP_METHODS: &[&str] = &["OPTIONS", "GET", "HEAD", "POST", "PUT", "DELETE", "PATCH"];

/// `ApiGenerator._add_cors`: an `options` method answering the CORS preflight on every path.
fn add_cors(id: &str, body: Option<&mut Py>, cors: &Value) -> Result<(), Failure> {
    let Some(body) = body else {
        return Err(res_err(
            id,
            "Cors works only with inline Swagger specified in 'DefinitionBody' property.",
        ));
    };
    let mut props: Map<String, Value> = Map::new();
    if cors.is_string() || super::intrinsics::is_intrinsic(cors) {
        props.insert("AllowOrigin".into(), cors.clone());
    } else if let Value::Object(m) = cors {
        let order = Py::from_template(cors).as_dict().map(|d| d.keys()).unwrap_or_default();
        if let Some(k) = order.iter().find(|k| !CORS_FIELDS.contains(&k.as_str())) {
            return Err(res_err(id, format!("Invalid key '{k}' for 'Cors' property.")));
        }
        props = m.clone();
    } else {
        return Err(res_err(id, "Invalid value for 'Cors' property"));
    }
    // the default origin is SAM's own string, not the template's
    let origin_given = props.contains_key("AllowOrigin");
    let origin = props.get("AllowOrigin").cloned().unwrap_or_else(|| json!("'*'"));
    let headers = props.get("AllowHeaders").cloned().unwrap_or(Value::Null);
    let methods = props.get("AllowMethods").cloned().unwrap_or(Value::Null);
    let max_age = props.get("MaxAge").cloned().unwrap_or(Value::Null);
    let credentials = props.get("AllowCredentials") == Some(&json!(true));
    if !is_valid_swagger(&body.to_json()) {
        return Err(res_err(
            id,
            "Unable to add Cors configuration because 'DefinitionBody' does not contain a valid Swagger definition.",
        ));
    }
    if credentials && origin == json!("'*'") {
        return Err(res_err(
            id,
            "Unable to add Cors configuration because 'AllowCredentials' can not be true when 'AllowOrigin' is \"'*'\" or not set",
        ));
    }
    let mut doc = body.deepcopy();
    let paths = doc
        .as_dict_mut()
        .and_then(|d| d.get_mut("paths"))
        .and_then(Py::as_dict_mut)
        .ok_or_else(|| res_err(id, "Invalid Swagger document"))?;
    let mut seen: Vec<String> = Vec::new();
    for path in paths.keys() {
        let normalized = if path == "/" {
            path.clone()
        } else {
            path.trim_end_matches('/').to_string()
        };
        if seen.contains(&normalized) {
            continue;
        }
        seen.push(normalized);
        let item = paths.get_mut(&path).expect("a key of paths");
        if item.as_dict().is_none() {
            return Err(Failure::Document(doc_err(format!(
                "Value of '{path}' path must be a dictionary according to Swagger spec."
            ))));
        }
        let contents = item
            .conditional_contents_mut()
            .map_err(|_| Failure::Document(doc_err("Value of Fn::If must be a list.".into())))?;
        // SAM computes the allowed methods once per path, from its first branch
        let mut allowed_methods: Option<Py> = truthy(&methods).then(|| Py::from_template(&methods));
        for content in contents {
            let Some(item) = content.as_dict_mut() else {
                return Err(Failure::Document(doc_err(format!(
                    "Value of '{path}' path must be a dictionary according to Swagger spec."
                ))));
            };
            if item.contains("options") {
                continue;
            }
            if !truthy(&origin) {
                return Err(res_err(
                    id,
                    "Structure of the SAM template is invalid. Invalid input. Value for AllowedOrigins is required",
                ));
            }
            let methods_now = allowed_methods.get_or_insert_with(|| {
                let keys = item.keys();
                let mut list: Vec<String> = if keys.iter().any(|k| k == ANY) {
                    ALL_HTTP_METHODS.iter().map(|m| m.to_string()).collect()
                } else {
                    keys.iter()
                        .map(|k| k.to_uppercase())
                        .chain(["OPTIONS".to_string()])
                        .collect()
                };
                list.sort();
                list.dedup();
                Py::s(&format!("'{}'", list.join(",")))
            });
            item.set(
                "options",
                false,
                cors_options(
                    &if origin_given {
                        Py::from_template(&origin)
                    } else {
                        Py::s("'*'")
                    },
                    &headers,
                    methods_now,
                    &max_age,
                    credentials,
                ),
            );
        }
    }
    *body = doc.deepcopy();
    Ok(())
}

/// `_options_method_response_for_cors`.
fn cors_options(origin: &Py, headers: &Value, methods: &Py, max_age: &Value, credentials: bool) -> Py {
    let plain = |pairs: &[(&str, &str)]| {
        let mut d = PyDict::plain();
        for (k, v) in pairs {
            d.set(k, false, Py::s(v));
        }
        Py::Dict(d)
    };
    let key = |h: &str| format!("method.response.header.{h}");
    let mut params = PyDict::py27();
    let mut headers_out = PyDict::py27();
    params.set(&key("Access-Control-Allow-Origin"), false, origin.clone());
    headers_out.set("Access-Control-Allow-Origin", false, plain(&[("type", "string")]));
    if truthy(headers) {
        params.set(&key("Access-Control-Allow-Headers"), false, Py::from_template(headers));
        headers_out.set("Access-Control-Allow-Headers", false, plain(&[("type", "string")]));
    }
    params.set(&key("Access-Control-Allow-Methods"), false, methods.clone());
    headers_out.set("Access-Control-Allow-Methods", false, plain(&[("type", "string")]));
    if !max_age.is_null() {
        params.set(&key("Access-Control-Max-Age"), false, Py::from_template(max_age));
        headers_out.set("Access-Control-Max-Age", false, plain(&[("type", "integer")]));
    }
    if credentials {
        params.set(&key("Access-Control-Allow-Credentials"), false, Py::s("'true'"));
        headers_out.set("Access-Control-Allow-Credentials", false, plain(&[("type", "string")]));
    }
    let mut default = PyDict::py27();
    default.set("statusCode", false, Py::s("200"));
    default.set("responseParameters", false, Py::Dict(params));
    default.set("responseTemplates", false, plain(&[("application/json", "{}\n")]));
    let mut responses = PyDict::py27();
    responses.set("default", false, Py::Dict(default));
    let mut integration = PyDict::py27();
    integration.set("type", false, Py::s("mock"));
    integration.set(
        "requestTemplates",
        false,
        plain(&[("application/json", "{\n  \"statusCode\" : 200\n}\n")]),
    );
    integration.set("responses", false, Py::Dict(responses));
    let mut ok = PyDict::py27();
    ok.set("description", false, Py::s("Default response for CORS method"));
    ok.set("headers", false, Py::Dict(headers_out));
    let mut method_responses = PyDict::py27();
    method_responses.set("200", false, Py::Dict(ok));
    let mut out = PyDict::py27();
    out.set("summary", false, Py::s("CORS support"));
    out.set("consumes", false, Py::List(vec![Py::s("application/json")]));
    out.set("produces", false, Py::List(vec![Py::s("application/json")]));
    out.set(INTEGRATION, false, Py::Dict(integration));
    out.set("responses", false, Py::Dict(method_responses));
    Py::Dict(out)
}

/// `add_binary_media_types`' `replace_recursively`: `~1` as `/`, strings as `Py27UniStr`.
fn replace_tilde(v: &Py) -> Py {
    match v {
        Py::Str(s, _) => Py::Str(s.replace("~1", "/"), true),
        Py::List(l) => Py::List(l.iter().map(replace_tilde).collect()),
        Py::Dict(d) => {
            let mut out = PyDict::py27();
            let j = Py::Dict(d.clone()).to_json();
            if let Some(m) = j.as_object() {
                for (k, x) in m {
                    out.set(&k.replace("~1", "/"), true, replace_tilde(&Py::from_template(x)));
                }
            }
            Py::Dict(out)
        }
        other => other.clone(),
    }
}

/// `DefinitionUri` as `BodyS3Location` (a `Py27Dict`, its strings `Py27UniStr` when written in the
/// template).
fn body_s3(id: &str, uri: &Value, uni: bool) -> Result<Py, Failure> {
    let mut d = PyDict::py27();
    match uri {
        Value::Object(m) => {
            let (Some(b), Some(k)) = (m.get("Bucket").filter(|v| truthy(v)), m.get("Key").filter(|v| truthy(v)))
            else {
                return Err(res_err(
                    id,
                    "'DefinitionUri' requires Bucket and Key properties to be specified.",
                ));
            };
            d.set("Bucket", false, Py::from_template(b));
            d.set("Key", false, Py::from_template(k));
            if let Some(v) = m.get("Version") {
                d.set("Version", false, Py::from_template(v));
            }
        }
        Value::String(s) => {
            let Some((b, k, v)) = super::function::parse_s3_uri(s) else {
                return Err(res_err(
                    id,
                    "'DefinitionUri' is not a valid S3 Uri of the form 's3://bucket/key' with optional versionId query parameter.",
                ));
            };
            d.set("Bucket", false, Py::Str(b, uni));
            d.set("Key", false, Py::Str(k, uni));
            if let Some(v) = v {
                d.set("Version", false, Py::Str(v, uni));
            }
        }
        _ => {
            return Err(res_err(
                id,
                "'DefinitionUri' is not a valid S3 Uri of the form 's3://bucket/key' with optional versionId query parameter.",
            ))
        }
    }
    Ok(Py::Dict(d))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn permission_paths_star_parameters() {
        assert_eq!(permission_path("/{proxy+}"), "/*");
        assert_eq!(permission_path("/users/{id}/"), "/users/*");
        assert_eq!(permission_path("/"), "/");
    }
}
