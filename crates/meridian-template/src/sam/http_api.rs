//! HTTP APIs (API Gateway v2) as aws-sam-translator 1.115.0 makes them: `HttpApi` events of
//! functions, the implicit `ServerlessHttpApi` they share, and `AWS::Serverless::HttpApi` ->
//! `AWS::ApiGatewayV2::Api` (its OpenAPI `Body`, with the routes the events add) and its
//! `AWS::ApiGatewayV2::Stage` (`$default`, auto-deployed).
//!
//! `Domain` adds the custom domain's resources (see [`super::domain`]); `DisableExecuteApiEndpoint`
//! goes to the body's servers.
//!
//! Not translated yet (a clear error naming the resource): HttpApi events of functions with a
//! `Condition`.

use serde_json::{json, Map, Value};

use super::function::parse_s3_uri;
use super::{res_err, truthy, CfnResource, Context, Failure, SamResourceError};

pub(crate) const IMPLICIT_ID: &str = "ServerlessHttpApi";
const ANY: &str = "x-amazon-apigateway-any-method";
const DEFAULT_PATH: &str = "$default";
const INTEGRATION: &str = "x-amazon-apigateway-integration";
const TAG_NAME: &str = "httpapi:createdBy";

fn skeleton() -> Value {
    json!({"openapi": "3.0.1", "info": {"version": "1.0", "title": {"Ref": "AWS::StackName"}}, "paths": {}})
}

fn is_valid_openapi(doc: &Value) -> bool {
    let version = doc.get("openapi").and_then(Value::as_str).unwrap_or("");
    doc.get("paths").is_some_and(Value::is_object) && version.starts_with('3') && {
        // ^3\.\d+(\.\d+)?$
        let rest: Vec<&str> = version.split('.').collect();
        (2..=3).contains(&rest.len())
            && rest[0] == "3"
            && rest[1..]
                .iter()
                .all(|p| !p.is_empty() && p.chars().all(|c| c.is_ascii_digit()))
    }
}

fn normalize_method(m: &str) -> String {
    let m = m.to_lowercase();
    if m == "any" {
        ANY.to_string()
    } else {
        m
    }
}

fn event_error(function_id: &str, event_id: &str, message: &str) -> SamResourceError {
    SamResourceError {
        logical_id: Some(function_id.to_string()),
        message: format!("Event with id [{event_id}] is invalid. {message}"),
    }
}

/// SAM's DefaultDefinitionBodyPlugin (for HTTP APIs) and ImplicitHttpApiPlugin: HTTP APIs without a
/// definition get an empty OpenAPI document that SAM manages; `HttpApi` events without `ApiId` go
/// to the implicit `ServerlessHttpApi`, and each event's route is added to the API it names.
pub(crate) fn plugin(template: &mut Map<String, Value>) -> Result<(), Vec<SamResourceError>> {
    // the Globals plugin runs after this one: the functions' tags are read from Globals too
    let globals = template.get("Globals").cloned().unwrap_or(Value::Null);
    let Some(Value::Object(resources)) = template.get_mut("Resources") else {
        return Ok(());
    };
    for r in resources.values_mut() {
        if r.get("Type").and_then(Value::as_str) != Some("AWS::Serverless::HttpApi") {
            continue;
        }
        let Some(obj) = r.as_object_mut() else { continue };
        let props = obj.entry("Properties").or_insert_with(|| json!({}));
        let Some(props) = props.as_object_mut() else { continue };
        if props.get("DefinitionBody").is_some_and(truthy) || props.get("DefinitionUri").is_some_and(truthy) {
            continue;
        }
        props.insert("DefinitionBody".into(), skeleton());
        props.insert("__MANAGE_SWAGGER".into(), json!(true));
    }
    let existing = resources.get(IMPLICIT_ID).cloned();
    resources.insert(
        IMPLICIT_ID.into(),
        json!({"Type": "AWS::Serverless::HttpApi", "Properties": {"DefinitionBody": skeleton(), "__MANAGE_SWAGGER": true}}),
    );
    let mut errors = Vec::new();
    let ids: Vec<String> = resources.keys().cloned().collect();
    let mut deletion: Vec<Value> = Vec::new();
    let mut update_replace: Vec<Value> = Vec::new();
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
        let condition = resources[&id].get("Condition").cloned();
        let mut changed = events.clone();
        for (event_id, event) in &events {
            if !event.is_object() || event.get("Type").and_then(Value::as_str) != Some("HttpApi") {
                continue;
            }
            let mut props = match event.get("Properties") {
                None | Some(Value::Null) => Map::new(),
                Some(Value::Object(p)) => p.clone(),
                Some(_) => {
                    errors.push(event_error(&id, event_id, "Properties should be a map."));
                    break;
                }
            };
            if condition.is_some() {
                errors.push(event_error(
                    &id,
                    event_id,
                    "HttpApi events of a function with a Condition are not supported by Meridian's local regions yet.",
                ));
                break;
            }
            if !props.contains_key("ApiId") {
                let fprops = resources[&id].get("Properties").cloned().unwrap_or(Value::Null);
                super::tags_to_implicit_api(resources, IMPLICIT_ID, &t, &fprops, &globals);
                props.insert("ApiId".into(), json!({"Ref": IMPLICIT_ID}));
            }
            let has = |k: &str| props.get(k).is_some_and(truthy);
            if !has("Path") && !has("Method") {
                props.insert("Path".into(), json!(DEFAULT_PATH));
                props.insert("Method".into(), json!(ANY));
            }
            let api_id = match &props["ApiId"] {
                Value::Object(o) if o.contains_key("Ref") => o["Ref"].clone(),
                v => v.clone(),
            };
            let present = |k: &str| props.get(k).is_some_and(|v| !v.is_null());
            let problem = if !present("Path") {
                Some("Property 'Path' is required.".to_string())
            } else if !present("Method") {
                Some("Property 'Method' is required.".to_string())
            } else if !api_id.is_string() {
                Some("Property 'ApiId' should be a string.".to_string())
            } else if !props["Path"].is_string() {
                Some("Property 'Path' should be a string.".to_string())
            } else if !props["Method"].is_string() {
                Some("Property 'Method' should be a string.".to_string())
            } else if !resources.contains_key(api_id.as_str().unwrap_or_default()) {
                Some(
                    "ApiId must be a valid reference to an 'AWS::Serverless::HttpApi' resource in same template."
                        .to_string(),
                )
            } else {
                None
            };
            if let Some(m) = problem {
                errors.push(event_error(&id, event_id, &m));
                break;
            }
            let api_name = api_id.as_str().unwrap_or_default().to_string();
            if api_name == IMPLICIT_ID {
                deletion.push(resources[&id].get("DeletionPolicy").cloned().unwrap_or(Value::Null));
                update_replace.push(
                    resources[&id]
                        .get("UpdateReplacePolicy")
                        .cloned()
                        .unwrap_or(Value::Null),
                );
            }
            let path = props["Path"].as_str().unwrap_or_default().to_string();
            let method = normalize_method(props["Method"].as_str().unwrap_or_default());
            if let Some(api_props) = resources
                .get_mut(&api_name)
                .and_then(|r| r.get_mut("Properties"))
                .and_then(Value::as_object_mut)
            {
                let managed = api_props.get("__MANAGE_SWAGGER").is_some_and(truthy);
                if let Some(body) = api_props.get_mut("DefinitionBody").filter(|b| is_valid_openapi(b)) {
                    if managed {
                        if let Some(paths) = body.get_mut("paths").and_then(Value::as_object_mut) {
                            let item = paths.entry(path.clone()).or_insert_with(|| json!({}));
                            match item.as_object_mut() {
                                Some(item) => {
                                    item.entry(method.clone()).or_insert_with(|| json!({}));
                                }
                                None => {
                                    return Err(vec![SamResourceError {
                                        logical_id: None,
                                        message: format!("Structure of the SAM template is invalid. Value of '{path}' path must be a dictionary according to Swagger spec."),
                                    }])
                                }
                            }
                        }
                    }
                }
            }
            // The event's RouteSettings go to the API's, under the route's key.
            if let Some(route_settings) = props.get("RouteSettings") {
                let written = props["Method"].as_str().unwrap_or_default();
                let route = if written == ANY {
                    path.clone()
                } else {
                    format!("{} {path}", written.to_uppercase())
                };
                let Some(api_props) = resources
                    .get_mut(&api_name)
                    .and_then(|r| r.get_mut("Properties"))
                    .and_then(Value::as_object_mut)
                else {
                    continue;
                };
                let settings = api_props.entry("RouteSettings").or_insert_with(|| json!({}));
                let Some(settings) = settings.as_object_mut() else {
                    return Err(vec![SamResourceError {
                        logical_id: Some(api_name.clone()),
                        message: "Property 'RouteSettings' should be a map.".into(),
                    }]);
                };
                let Some(event_settings) = route_settings.as_object() else {
                    errors.push(event_error(&id, event_id, "Property 'RouteSettings' should be a map."));
                    break;
                };
                let entry = settings.entry(route).or_insert_with(|| json!({}));
                if let Some(entry) = entry.as_object_mut() {
                    for (k, v) in event_settings {
                        entry.insert(k.clone(), v.clone());
                    }
                }
            }
            let mut ev = event.clone();
            ev["Properties"] = Value::Object(props);
            changed.insert(event_id.clone(), ev);
        }
        if let Some(p) = resources
            .get_mut(&id)
            .and_then(|r| r.get_mut("Properties"))
            .and_then(Value::as_object_mut)
        {
            p.insert("Events".into(), Value::Object(changed));
        }
    }
    // The implicit API takes the strongest deletion policies of the functions that use it.
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
    // No route: no implicit API (a resource of the user's of that name is kept).
    let empty = resources[IMPLICIT_ID]["Properties"]["DefinitionBody"]["paths"]
        .as_object()
        .is_none_or(Map::is_empty);
    if empty {
        match existing {
            Some(e) => {
                resources.insert(IMPLICIT_ID.into(), e);
            }
            None => {
                resources.shift_remove(IMPLICIT_ID);
            }
        }
    }
    if errors.is_empty() {
        Ok(())
    } else {
        Err(errors)
    }
}

/// The permission of an `HttpApi` event and its route's integration in the API's OpenAPI body.
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
        ("Path", ep.get("Path").is_none_or(Value::is_string)),
        ("Method", ep.get("Method").is_none_or(Value::is_string)),
        ("Stage", ep.get("Stage").is_none_or(Value::is_string)),
        (
            "PayloadFormatVersion",
            ep.get("PayloadFormatVersion").is_none_or(Value::is_string),
        ),
    ] {
        let intrinsic = ep
            .get(name)
            .is_some_and(|v| v.as_object().is_some_and(|m| m.len() == 1));
        if !ok && !intrinsic {
            return Err(res_err(lid, format!("Property '{name}' should be a string.")));
        }
    }
    let api_ref = ep.get("ApiId").cloned().unwrap_or(Value::Null);
    let api_id = match &api_ref {
        Value::Object(o) if o.contains_key("Ref") => o["Ref"].as_str().unwrap_or_default().to_string(),
        v => v.as_str().unwrap_or_default().to_string(),
    };
    let raw_path = ep.get("Path").and_then(Value::as_str).unwrap_or_default().to_string();
    let method = normalize_method(ep.get("Method").and_then(Value::as_str).unwrap_or_default());
    let api = ctx
        .resources_now
        .get(&api_id)
        .and_then(|r| r.get("Properties"))
        .cloned()
        .unwrap_or_else(|| json!({}));
    let body = api.get("DefinitionBody").filter(|b| truthy(b)).cloned();
    if let Some(b) = &body {
        if !is_valid_openapi(b) {
            return Err(res_err(
                &api_id,
                "Structure of the SAM template is invalid. Invalid OpenApi document. Invalid values or missing keys for 'openapi' or 'paths' in 'DefinitionBody'.",
            ));
        }
    }
    let uri = json!({"Fn::Sub": format!(
        "arn:${{AWS::Partition}}:apigateway:${{AWS::Region}}:lambda:path/2015-03-31/functions/{}/invocations",
        shorthand(function_arn)
    )});

    // The permission: none when the API's $default route already goes to this function.
    let mut path = raw_path.clone();
    if path.len() > 1 && path.ends_with('/') {
        path.pop();
    }
    let default_is_this = body.as_ref().is_some_and(|b| {
        b["paths"][DEFAULT_PATH][ANY][INTEGRATION]["uri"]["Fn::Sub"]
            .as_str()
            .is_some_and(|s| s.contains(&format!("${{{function_id}.Arn}}")))
    });
    let mut out = Vec::new();
    let skip_permission = path != DEFAULT_PATH && default_is_this;
    if !skip_permission {
        let path = if path == DEFAULT_PATH {
            String::new()
        } else {
            star_params(&path)
        };
        let m = if method == "any" || method == ANY {
            "*".to_string()
        } else {
            method.to_uppercase()
        };
        let written = ep
            .get("Method")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_lowercase();
        let resource = if written == "any" && path == format!("/{DEFAULT_PATH}") {
            format!("${{__ApiId__}}/${{__Stage__}}{path}")
        } else {
            format!("${{__ApiId__}}/${{__Stage__}}/{m}{path}")
        };
        let mut p = CfnResource::new(format!("{lid}Permission"), "AWS::Lambda::Permission");
        p.attributes = passthrough.clone();
        p.set("Action", Some(json!("lambda:InvokeFunction")));
        p.set("FunctionName", Some(function_name.clone()));
        p.set("Principal", Some(json!("apigateway.amazonaws.com")));
        p.set(
            "SourceArn",
            Some(json!({"Fn::Sub": [
                format!("arn:${{AWS::Partition}}:execute-api:${{AWS::Region}}:${{AWS::AccountId}}:{resource}"),
                {"__ApiId__": api_ref, "__Stage__": "*"},
            ]})),
        );
        out.push(p);
    }

    // The route's integration.
    let Some(mut body) = body else {
        return Ok(out);
    };
    let managed = api.get("__MANAGE_SWAGGER").is_some_and(truthy);
    let has_integration = body["paths"][&raw_path][&method].get(INTEGRATION).is_some_and(truthy);
    if managed && has_integration {
        return Err(ev_err(format!(
            "API method '{method}' defined multiple times for path '{raw_path}'."
        )));
    }
    if !has_integration {
        let paths = body["paths"]
            .as_object_mut()
            .ok_or_else(|| res_err(&api_id, "paths must be a map"))?;
        let item = paths.entry(raw_path.clone()).or_insert_with(|| json!({}));
        let Some(item) = item.as_object_mut() else {
            return Err(Failure::Document(vec![SamResourceError {
                logical_id: None,
                message: format!("Structure of the SAM template is invalid. Value of '{raw_path}' path must be a dictionary according to Swagger spec."),
            }]));
        };
        let def = item.entry(method.clone()).or_insert_with(|| json!({}));
        if def.is_null() {
            *def = json!({});
        }
        let Some(def) = def.as_object_mut() else {
            return Err(ev_err(format!(
                "the method '{method}' of path '{raw_path}' must be a map"
            )));
        };
        let mut integration = Map::new();
        integration.insert("type".into(), json!("aws_proxy"));
        integration.insert("httpMethod".into(), json!("POST"));
        integration.insert("payloadFormatVersion".into(), json!("2.0"));
        integration.insert("uri".into(), uri);
        def.insert(INTEGRATION.into(), Value::Object(integration));
        if raw_path == DEFAULT_PATH && method == ANY {
            def.insert("isDefaultRoute".into(), json!(true));
        }
        def.entry("responses").or_insert_with(|| json!({}));
    }
    let def = &mut body["paths"][&raw_path][&method];
    if let Some(t) = ep.get("TimeoutInMillis").filter(|v| truthy(v)) {
        def[INTEGRATION]["timeoutInMillis"] = t.clone();
    }
    let params = path_parameters(&raw_path);
    if !params.is_empty() {
        if !def.get("parameters").is_some_and(Value::is_array) {
            def["parameters"] = json!([]);
        }
        if let Some(list) = def["parameters"].as_array_mut() {
            for p in params {
                if let Some(existing) = list.iter_mut().find(|x| x.get("name") == Some(&json!(p))) {
                    existing["in"] = json!("path");
                    existing["required"] = json!(true);
                } else {
                    list.push(json!({"name": p, "in": "path", "required": true}));
                }
            }
        }
    }
    if let Some(auth) = ep.get("Auth").filter(|v| truthy(v)) {
        let method_authorizer = method_auth(&api, &api_id, event_id, &raw_path, &method, auth).map_err(ev_err)?;
        let def = &mut body["paths"][&raw_path][&method];
        let mut scopes = json!([]);
        if method_authorizer != "NONE" && method_authorizer != "AWS_IAM" {
            let declared = api["Auth"]["Authorizers"][&method_authorizer]["AuthorizationScopes"].clone();
            let given = auth.get("AuthorizationScopes").filter(|v| truthy(v)).cloned();
            if let Some(s) = given.or(Some(declared)).filter(truthy) {
                scopes = s;
            }
        }
        let mut security = match def.get("security") {
            None => Vec::new(),
            Some(Value::Array(a)) => a.clone(),
            Some(_) => {
                return Err(Failure::Document(vec![SamResourceError {
                    logical_id: None,
                    message: format!("Structure of the SAM template is invalid. Type of security for path {raw_path} method {method} must be a list"),
                }]))
            }
        };
        security.push(json!({ method_authorizer: scopes }));
        def["security"] = Value::Array(security);
    }
    let def = &mut body["paths"][&raw_path][&method];
    if let Some(v) = ep.get("PayloadFormatVersion").filter(|v| truthy(v)) {
        def[INTEGRATION]["payloadFormatVersion"] = v.clone();
    }
    if let Some(p) = ctx
        .resources_now
        .get_mut(&api_id)
        .and_then(|r| r.get_mut("Properties"))
        .and_then(Value::as_object_mut)
    {
        p.insert("DefinitionBody".into(), body);
    }
    Ok(out)
}

/// The authorizer of an event's route (its own, or the API's default), checked as SAM checks it.
fn method_auth(
    api: &Value,
    api_id: &str,
    event_id: &str,
    path: &str,
    method: &str,
    auth: &Value,
) -> Result<String, String> {
    let _ = event_id;
    let api_auth = api.get("Auth").cloned().unwrap_or_else(|| json!({}));
    if !api_auth.is_object() {
        return Err(format!("Property '{api_id}.Auth' should be a map."));
    }
    let default = api_auth.get("DefaultAuthorizer").filter(|v| truthy(v)).cloned();
    let authorizer = match auth.get("Authorizer").filter(|v| truthy(v)).cloned().or(default.clone()) {
        Some(a) => a,
        None => {
            return Err("'Auth' section requires either an explicit 'Authorizer' set or a 'DefaultAuthorizer' configured on the HttpApi.".into())
        }
    };
    let authorizers = api_auth.get("Authorizers").filter(|v| truthy(v));
    let iam = api_auth.get("EnableIamAuthorizer") == Some(&json!(true));
    let shown = match &authorizer {
        Value::String(s) => s.clone(),
        other => super::python_repr(other),
    };
    let name = authorizer.as_str().unwrap_or_default();
    let builtin = name == "NONE" || (name == "AWS_IAM" && iam);
    let named = authorizer.is_string() && authorizers.is_none_or(Value::is_object);
    if !(builtin || named) {
        return Err(format!("Unable to set Authorizer [{shown}] on API method [{method}] for path [{path}]. The method authorizer must be a string with a corresponding dict entry in the api authorizer."));
    }
    if name == "NONE" {
        if default.is_none() {
            return Err(format!("Unable to set Authorizer on API method [{method}] for path [{path}] because 'NONE' is only a valid value when a DefaultAuthorizer on the API is specified."));
        }
    } else if name != "AWS_IAM" || !iam {
        let Some(list) = authorizers else {
            return Err(format!("Unable to set Authorizer [{name}] on API method [{method}] for path [{path}] because the related API does not define any Authorizers."));
        };
        if !list.get(name).is_some_and(truthy) {
            return Err(format!("Unable to set Authorizer [{name}] on API method [{method}] for path [{path}] because it wasn't defined in the API's Authorizers."));
        }
    }
    if auth
        .get("AuthorizationScopes")
        .is_some_and(|s| truthy(s) && !s.is_array())
    {
        return Err(format!("Unable to set Authorizer on API method [{method}] for path [{path}] because 'AuthorizationScopes' must be a list of strings."));
    }
    Ok(name.to_string())
}

/// The API's `Auth`: its authorizers as OpenAPI security schemes, and the default authorizer on
/// every route that has none of its own. Returns the permissions of Lambda authorizers that ask for them.
fn add_auth(id: &str, body: Option<&mut Value>, auth: &Value) -> Result<Vec<CfnResource>, Failure> {
    let Some(body) = body else {
        return Err(res_err(
            id,
            "Auth works only with inline OpenApi specified in the 'DefinitionBody' property.",
        ));
    };
    let Some(auth) = auth.as_object() else {
        return Err(res_err(id, "Property 'Auth' should be a map."));
    };
    if !auth
        .keys()
        .all(|k| ["Authorizers", "DefaultAuthorizer", "EnableIamAuthorizer"].contains(&k.as_str()))
    {
        return Err(res_err(id, "Invalid value for 'Auth' property"));
    }
    if !is_valid_openapi(body) {
        return Err(res_err(
            id,
            "Unable to add Auth configuration because 'DefinitionBody' does not contain a valid OpenApi definition.",
        ));
    }
    // name -> (security scheme, scopes, Lambda function ARN when it wants a permission)
    let mut schemes: Vec<(String, Value, Value, Option<Value>)> = Vec::new();
    if auth.get("EnableIamAuthorizer") == Some(&json!(true)) {
        schemes.push((
            "AWS_IAM".into(),
            json!({"type": "apiKey", "name": "Authorization", "in": "header", "x-amazon-apigateway-authtype": "awsSigv4"}),
            json!([]),
            None,
        ));
    }
    if let Some(list) = auth.get("Authorizers").filter(|v| truthy(v)) {
        let Some(list) = list.as_object() else {
            return Err(res_err(id, "Property 'Auth.Authorizers' should be a map."));
        };
        for (name, a) in list {
            let Some(a) = a.as_object() else {
                return Err(res_err(
                    id,
                    format!("Property 'Auth.Authorizers.{name}' should be a map."),
                ));
            };
            if a.contains_key("OpenIdConnectUrl") {
                return Err(res_err(id, format!("'OpenIdConnectUrl' is no longer a supported property for authorizer '{name}'. Please refer to the AWS SAM documentation.")));
            }
            let get = |k: &str| a.get(k).filter(|v| !v.is_null());
            let jwt = get("JwtConfiguration").filter(|v| truthy(v));
            if let Some(j) = jwt {
                if !j.is_object() {
                    return Err(res_err(id, "Property 'JwtConfiguration' should be a map."));
                }
            }
            if get("AuthorizationScopes").is_some_and(|v| !v.is_array()) {
                return Err(res_err(id, "AuthorizationScopes must be a list."));
            }
            let (kind, allowed): (&str, &[&str]) = if jwt.is_some() {
                ("JWT", &["AuthorizationScopes", "JwtConfiguration", "IdentitySource"])
            } else {
                (
                    "REQUEST",
                    &[
                        "FunctionArn",
                        "FunctionInvokeRole",
                        "Identity",
                        "AuthorizerPayloadFormatVersion",
                        "EnableSimpleResponses",
                        "EnableFunctionDefaultPermissions",
                    ],
                )
            };
            for (prop, for_) in [
                ("AuthorizationScopes", "OAuth2 Authorizer"),
                ("JwtConfiguration", "OAuth2 Authorizer"),
                (
                    "IdentitySource",
                    "OAuth2 Authorizer. For Lambda Authorizer, use the 'Identity' property instead",
                ),
                ("FunctionArn", "Lambda Authorizer"),
                ("FunctionInvokeRole", "Lambda Authorizer"),
                ("Identity", "Lambda Authorizer"),
                ("AuthorizerPayloadFormatVersion", "Lambda Authorizer"),
                ("EnableSimpleResponses", "Lambda Authorizer"),
                ("EnableFunctionDefaultPermissions", "Lambda Authorizer"),
            ] {
                if get(prop).is_some() && !allowed.contains(&prop) {
                    return Err(res_err(id, format!("{prop} is only supported for {for_}.")));
                }
            }
            let scheme = if let Some(j) = jwt {
                if !get("IdentitySource").is_some_and(truthy) {
                    return Err(res_err(
                        id,
                        format!("{name} OAuth2 Authorizer must define 'IdentitySource'."),
                    ));
                }
                let lower: Map<String, Value> = j
                    .as_object()
                    .into_iter()
                    .flatten()
                    .map(|(k, v)| (k.to_lowercase(), v.clone()))
                    .collect();
                json!({"type": "oauth2", "x-amazon-apigateway-authorizer": {
                    "jwtConfiguration": lower, "identitySource": a["IdentitySource"], "type": "jwt"}})
            } else {
                let Some(arn) = get("FunctionArn").filter(|v| truthy(v)) else {
                    return Err(res_err(
                        id,
                        format!("{name} Lambda Authorizer must define 'FunctionArn'."),
                    ));
                };
                let Some(version) = get("AuthorizerPayloadFormatVersion").filter(|v| truthy(v)) else {
                    return Err(res_err(
                        id,
                        format!("{name} Lambda Authorizer must define 'AuthorizerPayloadFormatVersion'."),
                    ));
                };
                if get("EnableFunctionDefaultPermissions").is_some_and(|v| !v.is_boolean()) {
                    return Err(res_err(
                        id,
                        format!("Property 'Authorizers.{name}.EnableFunctionDefaultPermissions' should be a boolean."),
                    ));
                }
                let mut authorizer = Map::new();
                authorizer.insert("type".into(), json!("request"));
                authorizer.insert(
                    "authorizerUri".into(),
                    json!({"Fn::Sub": [
                        "arn:aws:apigateway:${AWS::Region}:lambda:path/2015-03-31/functions/${__FunctionArn__}/invocations",
                        {"__FunctionArn__": arn},
                    ]}),
                );
                if let Some(role) = get("FunctionInvokeRole").filter(|v| truthy(v) && *v != &json!("NONE")) {
                    authorizer.insert("authorizerCredentials".into(), role.clone());
                }
                if let Some(identity) = get("Identity") {
                    let Some(identity) = identity.as_object() else {
                        return Err(res_err(
                            id,
                            format!("Property 'Auth.Authorizers.{name}.Identity' should be a map."),
                        ));
                    };
                    if let Some(ttl) = identity.get("ReauthorizeEvery").filter(|v| !v.is_null()) {
                        authorizer.insert("authorizerResultTtlInSeconds".into(), ttl.clone());
                    }
                    let mut sources = Vec::new();
                    for (prefix, key) in [
                        ("$request.header.", "Headers"),
                        ("$request.querystring.", "QueryStrings"),
                        ("$stageVariables.", "StageVariables"),
                        ("$context.", "Context"),
                    ] {
                        if let Some(values) = identity.get(key).filter(|v| truthy(v)) {
                            let Some(values) = values.as_array() else {
                                return Err(res_err(
                                    id,
                                    format!("Property 'Authorizers.{name}.Identity.{key}' should be a list."),
                                ));
                            };
                            for (i, v) in values.iter().enumerate() {
                                let Some(v) = v.as_str() else {
                                    return Err(res_err(
                                        id,
                                        format!(
                                            "Property 'Authorizers.{name}.Identity.{key}[{i}]' should be a string."
                                        ),
                                    ));
                                };
                                sources.push(json!(format!("{prefix}{v}")));
                            }
                        }
                    }
                    authorizer.insert("identitySource".into(), Value::Array(sources));
                }
                authorizer.insert("authorizerPayloadFormatVersion".into(), version.clone());
                if let Some(simple) = get("EnableSimpleResponses").filter(|v| truthy(v)) {
                    authorizer.insert("enableSimpleResponses".into(), simple.clone());
                }
                json!({"type": "apiKey", "name": "Unused", "in": "header", "x-amazon-apigateway-authorizer": authorizer})
            };
            let _ = kind;
            let permission = (get("EnableFunctionDefaultPermissions") == Some(&json!(true)))
                .then(|| get("FunctionArn").cloned())
                .flatten();
            schemes.push((
                name.clone(),
                scheme,
                get("AuthorizationScopes").cloned().unwrap_or(json!([])),
                permission,
            ));
        }
    }
    let doc = body
        .as_object_mut()
        .ok_or_else(|| res_err(id, "DefinitionBody must be a map"))?;
    let components = doc.entry("components").or_insert_with(|| json!({}));
    if !components.is_object() {
        *components = json!({});
    }
    let security_schemes = components
        .as_object_mut()
        .map(|c| c.entry("securitySchemes").or_insert_with(|| json!({})))
        .and_then(Value::as_object_mut)
        .ok_or_else(|| res_err(id, "components.securitySchemes must be a map"))?;
    for (name, scheme, _, _) in &schemes {
        security_schemes.insert(name.clone(), scheme.clone());
    }
    if let Some(default) = auth
        .get("DefaultAuthorizer")
        .filter(|v| truthy(v) && !super::intrinsics::is_no_value(v))
    {
        let Some(default) = default.as_str() else {
            return Err(res_err(id, "Property 'Auth.DefaultAuthorizer' should be a string."));
        };
        let Some((_, _, scopes, _)) = schemes.iter().find(|(n, ..)| n == default) else {
            return Err(res_err(
                id,
                format!("Unable to set DefaultAuthorizer because '{default}' was not defined in 'Authorizers'."),
            ));
        };
        if let Some(paths) = doc.get_mut("paths").and_then(Value::as_object_mut) {
            for (path, raw_item) in paths.iter_mut() {
                // A path item under `Fn::If` is each of its branches (AWS::NoValue left out).
                let conditional = raw_item
                    .get("Fn::If")
                    .and_then(Value::as_array)
                    .is_some_and(|b| b.len() == 3);
                let items: Vec<&mut Value> = if conditional {
                    raw_item["Fn::If"]
                        .as_array_mut()
                        .into_iter()
                        .flat_map(|b| b.iter_mut().skip(1))
                        .filter(|b| !super::intrinsics::is_no_value(b))
                        .collect()
                } else {
                    vec![raw_item]
                };
                for item in items {
                    let Some(item) = item.as_object_mut() else {
                        return Err(Failure::Document(vec![SamResourceError {
                        logical_id: None,
                        message: format!("Structure of the SAM template is invalid. Value of '{path}' path must be a dictionary according to Swagger spec."),
                    }]));
                    };
                    let keys: Vec<String> = item.keys().cloned().collect();
                    for (method, def) in item.iter_mut() {
                        let normalized = normalize_method(method);
                        if normalized == "parameters" || normalized == "options" {
                            continue;
                        }
                        let structure = |m: String| {
                            Failure::Document(vec![SamResourceError {
                                logical_id: None,
                                message: format!("Structure of the SAM template is invalid. {m}"),
                            }])
                        };
                        if !keys.contains(&normalized) {
                            return Err(structure(format!(
                                "Could not find {normalized} in {path} within DefinitionBody."
                            )));
                        }
                        let Some(def) = def.as_object_mut() else {
                            return Err(structure(format!(
                                "Definition of method '{method}' for path '{path}' should be a map."
                            )));
                        };
                        if !def.get(INTEGRATION).is_some_and(truthy) || def.get("security").is_some_and(truthy) {
                            continue;
                        }
                        def.insert("security".into(), json!([{ default: scopes }]));
                    }
                }
            }
        }
    }
    let mut permissions = Vec::new();
    for (name, _, _, arn) in schemes {
        if let Some(arn) = arn {
            permissions.push(authorizer_permission(
                format!("{id}{name}AuthorizerPermission"),
                arn,
                id,
            ));
        }
    }
    Ok(permissions)
}

/// The permission that lets API Gateway (v2) call an authorizer function of the API `api_id`
/// (`ApiV2Generator._get_authorizer_permission`).
pub(crate) fn authorizer_permission(logical_id: String, function_arn: Value, api_id: &str) -> CfnResource {
    let mut p = CfnResource::new(logical_id, "AWS::Lambda::Permission");
    p.set("Action", Some(json!("lambda:InvokeFunction")));
    p.set("FunctionName", Some(function_arn));
    p.set("Principal", Some(json!("apigateway.amazonaws.com")));
    p.set(
        "SourceArn",
        Some(json!({"Fn::Sub": ["arn:${AWS::Partition}:execute-api:${AWS::Region}:${AWS::AccountId}:${__ApiId__}/authorizers/*", {"__ApiId__": {"Ref": api_id}}]})),
    );
    p
}

/// `{Ref: X}` -> `${X}`, `{Fn::GetAtt: [X, Arn]}` -> `${X.Arn}`.
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

/// `{name}` parameters of a path, in order.
fn path_parameters(path: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut rest = path;
    while let Some(i) = rest.find('{') {
        let after = &rest[i + 1..];
        let Some(j) = after.find('}') else { break };
        out.push(after[..j].to_string());
        rest = &after[j + 1..];
    }
    out
}

/// Path parameters as `*` in a permission's ARN (`{id}`, `{proxy+}`).
fn star_params(path: &str) -> String {
    let mut out = String::new();
    let mut rest = path;
    while let Some(i) = rest.find('{') {
        let after = &rest[i + 1..];
        match after.find('}') {
            Some(j)
                if {
                    let name = &after[..j];
                    name == "proxy+"
                        || (!name.is_empty() && name.chars().all(|c| c.is_ascii_alphanumeric() || "._-".contains(c)))
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

const PROPERTIES: &[&str] = &[
    "__MANAGE_SWAGGER",
    "Name",
    "StageName",
    "Tags",
    "PropagateTags",
    "DefinitionBody",
    "DefinitionUri",
    "StageVariables",
    "CorsConfiguration",
    "AccessLogSettings",
    "DefaultRouteSettings",
    "Auth",
    "RouteSettings",
    "Domain",
    "FailOnWarnings",
    "Description",
    "DisableExecuteApiEndpoint",
];

/// `AWS::Serverless::HttpApi` -> `AWS::ApiGatewayV2::Api` and its stage.
pub(crate) fn translate(ctx: &mut Context<'_>, id: &str, resource: &Value) -> Result<Vec<CfnResource>, Failure> {
    let empty = Map::new();
    let props = resource.get("Properties").and_then(Value::as_object).unwrap_or(&empty);
    if let Some(k) = props.keys().find(|k| !PROPERTIES.contains(&k.as_str())) {
        return Err(res_err(
            id,
            format!("property {k} not defined for resource of type AWS::Serverless::HttpApi"),
        ));
    }
    let get = |k: &str| props.get(k).filter(|v| !v.is_null());
    for (name, ok, expected) in [
        (
            "StageName",
            get("StageName").is_none_or(|v| v.is_string() || v.is_object()),
            None,
        ),
        ("Tags", get("Tags").is_none_or(Value::is_object), Some("map")),
        (
            "PropagateTags",
            get("PropagateTags").is_none_or(Value::is_boolean),
            None,
        ),
        (
            "DefinitionBody",
            get("DefinitionBody").is_none_or(Value::is_object),
            Some("map"),
        ),
        (
            "DefinitionUri",
            get("DefinitionUri").is_none_or(|v| v.is_string() || v.is_object()),
            None,
        ),
        (
            "StageVariables",
            get("StageVariables").is_none_or(Value::is_object),
            Some("map"),
        ),
        (
            "AccessLogSettings",
            get("AccessLogSettings").is_none_or(Value::is_object),
            Some("map"),
        ),
        (
            "DefaultRouteSettings",
            get("DefaultRouteSettings").is_none_or(Value::is_object),
            Some("map"),
        ),
        (
            "RouteSettings",
            get("RouteSettings").is_none_or(Value::is_object),
            Some("map"),
        ),
        ("Domain", get("Domain").is_none_or(Value::is_object), Some("map")),
        (
            "FailOnWarnings",
            get("FailOnWarnings").is_none_or(Value::is_boolean),
            None,
        ),
        (
            "Description",
            get("Description").is_none_or(Value::is_string),
            Some("string"),
        ),
        (
            "DisableExecuteApiEndpoint",
            get("DisableExecuteApiEndpoint").is_none_or(Value::is_boolean),
            None,
        ),
    ] {
        let intrinsic = get(name).is_some_and(|v| v.as_object().is_some_and(|m| m.len() == 1));
        if !ok && !intrinsic {
            return Err(res_err(
                id,
                match expected {
                    Some(t) => format!("Property '{name}' should be a {t}."),
                    None => format!("Type of property '{name}' is invalid."),
                },
            ));
        }
    }
    let mut body = get("DefinitionBody").cloned();
    let uri = get("DefinitionUri").cloned();
    if body.is_some() && uri.is_some() {
        return Err(res_err(
            id,
            "Specify either 'DefinitionUri' or 'DefinitionBody' property and not both.",
        ));
    }
    if let Some(cors) = get("CorsConfiguration").filter(|c| truthy(c)) {
        let cors = ctx.resolve_params(cors)?;
        add_cors(id, body.as_mut(), &cors)?;
    }
    let mut auth_permissions = Vec::new();
    if let Some(auth) = get("Auth").filter(|a| truthy(a)) {
        auth_permissions = add_auth(id, body.as_mut(), auth)?;
    }
    // Tags: the API's (in its OpenAPI body, with SAM's own) and the stage's.
    let mut tags = get("Tags").and_then(Value::as_object).cloned();
    if tags.is_some() && body.is_none() {
        return Err(res_err(
            id,
            "Tags works only with inline OpenApi specified in the 'DefinitionBody' property.",
        ));
    }
    if let Some(b) = body.as_mut() {
        if is_valid_openapi(b) {
            let t = tags.get_or_insert_with(Map::new);
            t.insert(TAG_NAME.into(), json!("SAM"));
            let list = b
                .as_object_mut()
                .map(|o| o.entry("tags").or_insert_with(|| json!([])))
                .and_then(Value::as_array_mut)
                .ok_or_else(|| res_err(id, "Tags in OpenApi DefinitionBody needs to be a list."))?;
            for (name, value) in t.iter() {
                match list.iter_mut().find(|x| x.get("name") == Some(&json!(name))) {
                    Some(existing) => existing["x-amazon-apigateway-tag-value"] = value.clone(),
                    None => list.push(json!({"name": name, "x-amazon-apigateway-tag-value": value})),
                }
            }
        } else if tags.is_some() {
            return Err(res_err(
                id,
                "Unable to add `Tags` because 'DefinitionBody' does not contain a valid OpenApi definition.",
            ));
        }
    }
    // SAM propagates the API's tags to what it generates when it has a definition body.
    let propagated_tags = (get("Tags").is_some_and(truthy) && get("DefinitionBody").is_some())
        .then(|| tags.clone())
        .flatten();
    let fail_on_warnings = get("FailOnWarnings").cloned().filter(truthy);
    if let Some(disable) = get("DisableExecuteApiEndpoint") {
        let Some(b) = body.as_mut().filter(|b| truthy(b)) else {
            return Err(res_err(
                id,
                "DisableExecuteApiEndpoint works only within 'DefinitionBody' property.",
            ));
        };
        add_endpoint_configuration(b, disable)?;
    }
    if let Some(name) = get("Name") {
        let Some(b) = body.as_mut() else {
            return Err(res_err(
                id,
                "Name works only with inline OpenApi specified in the 'DefinitionBody' property.",
            ));
        };
        if b["info"]["title"] != json!({"Ref": "AWS::StackName"}) {
            return Err(res_err(
                id,
                "Unable to set Name because it is already defined within inline OpenAPI specified in the 'DefinitionBody' property.",
            ));
        }
        b["info"]["title"] = name.clone();
    }
    if let Some(d) = get("Description").filter(|d| truthy(d)) {
        let Some(b) = body.as_mut() else {
            return Err(res_err(
                id,
                "Description works only with inline OpenApi specified in the 'DefinitionBody' property.",
            ));
        };
        if b["info"].get("description").is_some_and(truthy) {
            return Err(res_err(
                id,
                "Unable to set Description because it is already defined within inline OpenAPI specified in the 'DefinitionBody' property.",
            ));
        }
        if !b["info"].is_object() {
            b["info"] = json!({});
        }
        b["info"]["description"] = d.clone();
    }
    if fail_on_warnings.is_some() {
        if let Some(paths) = body
            .as_mut()
            .and_then(|b| b.get_mut("paths"))
            .and_then(Value::as_object_mut)
        {
            if let Some(v) = paths.shift_remove(DEFAULT_PATH) {
                paths.insert(format!("/{DEFAULT_PATH}"), v);
            }
        }
    }
    let mut api = CfnResource::new(id, "AWS::ApiGatewayV2::Api");
    api.depends_on = resource.get("DependsOn").cloned();
    api.attributes = super::function::resource_attributes(resource);
    if let Some(f) = fail_on_warnings {
        api.set("FailOnWarnings", Some(f));
    }
    match (uri, body) {
        (Some(u), _) => api.set("BodyS3Location", Some(body_s3(id, &ctx.resolve_params(&u)?)?)),
        (None, Some(b)) => api.set("Body", Some(b)),
        (None, None) => {
            return Err(res_err(
                id,
                "'DefinitionUri' or 'DefinitionBody' are required properties of an 'AWS::Serverless::HttpApi'. Add a value for one of these properties or add a 'HttpApi' event to an 'AWS::Serverless::Function'.",
            ))
        }
    }
    let domain = match get("Domain") {
        Some(d) => {
            let d = ctx.resolve_params(d)?;
            let config = d.as_object().cloned().unwrap_or_default();
            let tags = match &propagated_tags {
                Some(t) => Value::Object(t.clone()),
                None => json!({TAG_NAME: "SAM"}),
            };
            let passthrough = super::function::passthrough_attributes(resource);
            super::domain::http(&mut ctx.route53_groups, id, &config, &passthrough, tags)?
        }
        None => Vec::new(),
    };
    let mut out = vec![api];
    out.extend(auth_permissions);
    out.extend(domain);

    // The stage: `$default` unless named.
    let stage_name = get("StageName").cloned().unwrap_or_else(|| json!(DEFAULT_PATH));
    let prefix = stage_name.as_str().unwrap_or("");
    let stage_id = if !prefix.is_empty() && prefix.chars().all(|c| c.is_alphanumeric()) {
        format!("{id}{prefix}Stage")
    } else if prefix == DEFAULT_PATH {
        format!("{id}ApiGatewayDefaultStage")
    } else {
        super::hash::logical_id(&format!("{id}Stage"), Some(&json!(prefix)), None)
    };
    let mut stage = CfnResource::new(stage_id, "AWS::ApiGatewayV2::Stage");
    stage.attributes = super::function::passthrough_attributes(resource);
    stage.set("ApiId", Some(json!({"Ref": id})));
    stage.set("StageName", Some(stage_name));
    stage.set("StageVariables", get("StageVariables").cloned());
    stage.set("AccessLogSettings", get("AccessLogSettings").cloned());
    stage.set("DefaultRouteSettings", get("DefaultRouteSettings").cloned());
    stage.set("Tags", tags.map(Value::Object));
    stage.set("AutoDeploy", Some(json!(true)));
    stage.set("RouteSettings", get("RouteSettings").cloned());
    out.push(stage);
    Ok(out)
}

/// `DisableExecuteApiEndpoint` as `x-amazon-apigateway-endpoint-configuration` of every server
/// of the OpenAPI body (one server when it lists none).
fn add_endpoint_configuration(body: &mut Value, disable: &Value) -> Result<(), Failure> {
    const ENDPOINT_CONFIGURATION: &str = "x-amazon-apigateway-endpoint-configuration";
    if !is_valid_openapi(body) {
        return Err(Failure::Document(vec![SamResourceError {
            logical_id: None,
            message: "Structure of the SAM template is invalid. Invalid OpenApi document. Invalid values or missing keys for 'openapi' or 'paths' in 'DefinitionBody'.".into(),
        }]));
    }
    let Some(doc) = body.as_object_mut() else {
        return Ok(());
    };
    let servers = doc.entry("servers").or_insert_with(|| json!([{}]));
    let Some(servers) = servers.as_array_mut() else {
        return Ok(());
    };
    for server in servers {
        let Some(server) = server.as_object_mut() else {
            return Err(Failure::Document(vec![SamResourceError {
                logical_id: None,
                message: "Structure of the SAM template is invalid. Value of 'servers' item must be a dictionary according to Swagger spec.".into(),
            }]));
        };
        let conf = server.entry(ENDPOINT_CONFIGURATION).or_insert_with(|| json!({}));
        if !conf.is_object() {
            *conf = json!({});
        }
        conf["disableExecuteApiEndpoint"] = disable.clone();
    }
    Ok(())
}

/// `CorsConfiguration` as the OpenAPI body's `x-amazon-apigateway-cors`.
fn add_cors(id: &str, body: Option<&mut Value>, cors: &Value) -> Result<(), Failure> {
    const FIELDS: &[&str] = &[
        "AllowMethods",
        "AllowHeaders",
        "AllowOrigins",
        "MaxAge",
        "ExposeHeaders",
        "AllowCredentials",
    ];
    let Some(body) = body else {
        return Err(res_err(
            id,
            "Cors works only with inline OpenApi specified in 'DefinitionBody' property.",
        ));
    };
    let intrinsic = super::intrinsics::is_intrinsic(cors);
    let props: Map<String, Value> = match cors {
        Value::Bool(_) => Map::from_iter([("AllowOrigins".to_string(), json!(["*"]))]),
        _ if intrinsic => Map::from_iter([("AllowOrigins".to_string(), cors.clone())]),
        Value::Object(m) => {
            if let Some(k) = m.keys().find(|k| !FIELDS.contains(&k.as_str())) {
                return Err(res_err(id, format!("Invalid key '{k}' for 'Cors' property.")));
            }
            m.clone()
        }
        _ => return Err(res_err(id, "Invalid value for 'Cors' property.")),
    };
    if !is_valid_openapi(body) {
        return Err(res_err(
            id,
            "Unable to add Cors configuration because 'DefinitionBody' does not contain a valid OpenApi definition.",
        ));
    }
    let origins = props.get("AllowOrigins").cloned().unwrap_or(Value::Null);
    if props.get("AllowCredentials") == Some(&json!(true)) && origins == json!(["*"]) {
        return Err(res_err(
            id,
            "Unable to add Cors configuration because 'AllowCredentials' can not be true when 'AllowOrigin' is \"'*'\" or not set.",
        ));
    }
    let doc = body
        .as_object_mut()
        .ok_or_else(|| res_err(id, "DefinitionBody must be a map"))?;
    let mut config = match doc.get("x-amazon-apigateway-cors") {
        None => Map::new(),
        Some(Value::Object(m)) => m.clone(),
        Some(_) => {
            return Err(Failure::Document(vec![SamResourceError {
                logical_id: None,
                message: "Structure of the SAM template is invalid. Value of 'x-amazon-apigateway-cors' must be a dictionary according to Swagger spec.".into(),
            }]))
        }
    };
    if truthy(&origins) && super::intrinsics::is_intrinsic(&origins) {
        // SAM rewrites the keys' names inside the intrinsic's JSON text.
        let mut text = origins.to_string();
        for f in FIELDS {
            let lower = format!("{}{}", f[..1].to_lowercase(), &f[1..]);
            text = text.replace(f, &lower);
        }
        if let Ok(Value::Object(m)) = serde_json::from_str::<Value>(&text) {
            config.extend(m);
        }
    } else {
        for (field, key) in [
            ("AllowOrigins", "allowOrigins"),
            ("AllowHeaders", "allowHeaders"),
            ("AllowMethods", "allowMethods"),
            ("ExposeHeaders", "exposeHeaders"),
        ] {
            if let Some(v) = props.get(field).filter(|v| truthy(v)) {
                config.insert(key.into(), v.clone());
            }
        }
        if let Some(v) = props.get("MaxAge").filter(|v| !v.is_null()) {
            config.insert("maxAge".into(), v.clone());
        }
        if props.get("AllowCredentials") == Some(&json!(true)) {
            config.insert("allowCredentials".into(), json!(true));
        }
    }
    doc.insert("x-amazon-apigateway-cors".into(), Value::Object(config));
    Ok(())
}

/// `DefinitionUri` as `BodyS3Location`.
fn body_s3(id: &str, uri: &Value) -> Result<Value, Failure> {
    let (bucket, key, version) = match uri {
        Value::Object(m) => {
            let (Some(b), Some(k)) = (m.get("Bucket").filter(|v| truthy(v)), m.get("Key").filter(|v| truthy(v)))
            else {
                return Err(res_err(
                    id,
                    "'DefinitionUri' requires Bucket and Key properties to be specified.",
                ));
            };
            (b.clone(), k.clone(), m.get("Version").cloned())
        }
        Value::String(s) => {
            let Some((b, k, v)) = parse_s3_uri(s) else {
                return Err(res_err(
                    id,
                    "'DefinitionUri' is not a valid S3 Uri of the form 's3://bucket/key' with optional versionId query parameter.",
                ));
            };
            (json!(b), json!(k), v.map(Value::String))
        }
        _ => {
            return Err(res_err(
                id,
                "'DefinitionUri' is not a valid S3 Uri of the form 's3://bucket/key' with optional versionId query parameter.",
            ))
        }
    };
    let mut m = Map::new();
    m.insert("Bucket".into(), bucket);
    m.insert("Key".into(), key);
    if let Some(v) = version {
        m.insert("Version".into(), v);
    }
    Ok(Value::Object(m))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn disable_execute_api_endpoint_goes_to_every_server() {
        let mut body = skeleton();
        add_endpoint_configuration(&mut body, &json!(true)).expect("a valid body");
        assert_eq!(
            body["servers"],
            json!([{"x-amazon-apigateway-endpoint-configuration": {"disableExecuteApiEndpoint": true}}])
        );
        body["servers"] = json!(["not a map"]);
        assert!(matches!(
            add_endpoint_configuration(&mut body, &json!(true)),
            Err(Failure::Document(_))
        ));
    }
}
