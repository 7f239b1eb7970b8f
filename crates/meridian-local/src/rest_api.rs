//! REST APIs (API Gateway V1) of local regions: the API as its stack deployed it (methods from
//! the API's Swagger/OpenAPI `Body`, as SAM's `Api` events make it, or from `Resource` and
//! `Method` resources), its stages (`Stage` resources, and the stage a `Deployment` names), the
//! Lambda proxy event REST APIs send, and the mapping of the function's answer, with REST APIs'
//! own errors (`403 Missing Authentication Token` for a path or method the API does not have,
//! `502 Internal server error`). Mock integrations (the `OPTIONS` methods of SAM's `Cors`)
//! answer by themselves.
//!
//! No I/O: the endpoint (`endpoint/apigw.rs`) reads the API from the stacks and serves it.

use crate::apigw::{
    function_of_uri, gateway_error, parse_route_key, ApiResource, HttpAnswer, HttpApi, Integration, PayloadVersion,
    RequestInfo, Route,
};
use serde_json::Value;
use std::collections::BTreeMap;

/// Default and maximum integration timeout of a REST API (`timeoutInMillis`).
pub const DEFAULT_TIMEOUT_MS: u64 = 29_000;

/// What only REST APIs have.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RestApiInfo {
    /// `BinaryMediaTypes` (or the Body's `x-amazon-apigateway-binary-media-types`): request bodies
    /// of these types reach the function base64-encoded, and base64 answers are decoded for them.
    pub binary_media_types: Vec<String>,
}

/// REST APIs' answer to a path or method the API does not have.
pub fn missing_token() -> HttpAnswer {
    gateway_error(403, "Missing Authentication Token")
}

/// REST APIs' answer to a stage the API does not have.
pub fn forbidden() -> HttpAnswer {
    gateway_error(403, "Forbidden")
}

/// REST APIs' answer when the function fails or answers something that is not a proxy response.
pub fn internal_error() -> HttpAnswer {
    gateway_error(502, "Internal server error")
}

fn timeout_of(v: Option<&Value>) -> Result<u64, String> {
    crate::apigw::integration_timeout(v, "timeoutInMillis", DEFAULT_TIMEOUT_MS, "REST APIs")
}

/// A mock integration's answer: the status, the static header values (`'...'`) of its response
/// parameters, and its static `application/json` template.
fn mock_answer(status: &Value, params: Option<&Value>, templates: Option<&Value>) -> HttpAnswer {
    let status = status
        .as_u64()
        .or_else(|| status.as_str().and_then(|s| s.parse().ok()))
        .filter(|s| (100..=599).contains(s))
        .unwrap_or(200) as u16;
    let mut headers = Vec::new();
    for (k, v) in params.and_then(Value::as_object).into_iter().flatten() {
        if let (Some(name), Some(v)) = (k.strip_prefix("method.response.header."), v.as_str()) {
            if let Some(value) = v.strip_prefix('\'').and_then(|v| v.strip_suffix('\'')) {
                headers.push((name.to_string(), value.to_string()));
            }
        }
    }
    let body = templates
        .and_then(|t| t.get("application/json"))
        .and_then(Value::as_str)
        .filter(|t| !t.contains('$'))
        .unwrap_or("")
        .as_bytes()
        .to_vec();
    if !body.is_empty() {
        headers.push(("content-type".into(), "application/json".into()));
    }
    HttpAnswer { status, headers, body }
}

/// One method of a Swagger/OpenAPI `Body`: its integration or mock answer.
fn body_integration(i: &Value, at: &str) -> Result<(Option<Integration>, Option<HttpAnswer>), String> {
    let t = i.get("type").and_then(Value::as_str).unwrap_or_default();
    if t.eq_ignore_ascii_case("mock") {
        let default = i.get("responses").and_then(|r| r.get("default"));
        let status = default
            .and_then(|d| d.get("statusCode"))
            .cloned()
            .unwrap_or(Value::from(200));
        return Ok((
            None,
            Some(mock_answer(
                &status,
                default.and_then(|d| d.get("responseParameters")),
                default.and_then(|d| d.get("responseTemplates")),
            )),
        ));
    }
    if !t.eq_ignore_ascii_case("aws_proxy") {
        return Err(format!(
            "{at}: integration type {t} is not served by local regions: only aws_proxy integrations with Lambda functions, and mock integrations, are"
        ));
    }
    let uri = match i.get("uri") {
        Some(Value::String(s)) => s.clone(),
        // SAM writes the uri as `Fn::Sub`; deployed, it is a string
        Some(other) => return Err(format!("{at}: the integration's uri must be a string, found {other}")),
        None => return Err(format!("{at}: the integration has no uri")),
    };
    Ok((
        Some(Integration {
            function_arn: function_of_uri(&uri)?,
            payload_version: PayloadVersion::V1,
            timeout_ms: timeout_of(i.get("timeoutInMillis"))?,
        }),
        None,
    ))
}

/// The methods of a REST API's `Body` (Swagger 2.0 or OpenAPI 3.0 with API Gateway's extensions).
pub fn routes_of_body(body: &Value) -> Result<Vec<Route>, String> {
    let mut out = Vec::new();
    let authorizers = crate::authorizer::authorizers_of_body(body)?;
    let Some(paths) = body.get("paths") else { return Ok(out) };
    let paths = paths.as_object().ok_or("Body.paths must be a mapping of paths")?;
    for (path, ops) in paths {
        let Some(ops) = ops.as_object() else { continue };
        for (method, op) in ops {
            let m = match method.as_str() {
                "x-amazon-apigateway-any-method" => "ANY".to_string(),
                "get" | "post" | "put" | "delete" | "patch" | "head" | "options" => method.to_ascii_uppercase(),
                _ => continue,
            };
            let key = format!("{m} {path}");
            let (method, segs) = parse_route_key(&key).map_err(|e| format!("Body.paths: {e}"))?;
            let at = format!("Body.paths.{path}.{m}");
            let (integration, mock) = match op.get("x-amazon-apigateway-integration") {
                None => (None, None),
                Some(i) => body_integration(i, &at)?,
            };
            out.push(Route {
                key,
                method,
                path: segs,
                integration,
                mock,
                authorizer: crate::authorizer::of_method(op, &authorizers, &at, false)?,
            });
        }
    }
    Ok(out)
}

/// The binary media types of an API's properties.
fn binary_media_types(props: &Value) -> Vec<String> {
    let from = |v: Option<&Value>| -> Vec<String> {
        v.and_then(Value::as_array)
            .map(|a| {
                a.iter()
                    .filter_map(Value::as_str)
                    .map(|s| s.replace("~1", "/"))
                    .collect()
            })
            .unwrap_or_default()
    };
    let mut types = from(props.get("BinaryMediaTypes"));
    types.extend(from(
        props
            .get("Body")
            .and_then(|b| b.get("x-amazon-apigateway-binary-media-types")),
    ));
    types
}

/// Checks an `AWS::ApiGateway::RestApi`'s properties as local regions serve them.
pub fn check_rest_api(props: &Value) -> Result<(), String> {
    if props.get("BodyS3Location").is_some() {
        return Err(
            "BodyS3Location is not read by local regions yet: give the definition inline as Body (SAM: DefinitionBody)"
                .into(),
        );
    }
    if let Some(b) = props.get("Body") {
        routes_of_body(b)?;
    }
    Ok(())
}

/// An `AWS::ApiGateway::Method`'s integration, checked.
pub fn method_integration(props: &Value) -> Result<(Option<Integration>, Option<HttpAnswer>), String> {
    let Some(i) = props.get("Integration") else {
        return Ok((None, None));
    };
    let t = i.get("Type").and_then(Value::as_str).unwrap_or_default();
    if t.eq_ignore_ascii_case("MOCK") {
        let first = i
            .get("IntegrationResponses")
            .and_then(Value::as_array)
            .and_then(|r| r.iter().find(|r| r.get("SelectionPattern").is_none()).or(r.first()));
        let status = first
            .and_then(|r| r.get("StatusCode"))
            .cloned()
            .unwrap_or(Value::from(200));
        return Ok((
            None,
            Some(mock_answer(
                &status,
                first.and_then(|r| r.get("ResponseParameters")),
                first.and_then(|r| r.get("ResponseTemplates")),
            )),
        ));
    }
    if !t.eq_ignore_ascii_case("AWS_PROXY") {
        return Err(format!(
            "Integration.Type {t} is not served by local regions: only AWS_PROXY integrations with Lambda functions, and MOCK integrations, are"
        ));
    }
    let uri = i
        .get("Uri")
        .and_then(Value::as_str)
        .ok_or("Properties validation failed: Integration.Uri is required for AWS_PROXY integrations")?;
    Ok((
        Some(Integration {
            function_arn: function_of_uri(uri)?,
            payload_version: PayloadVersion::V1,
            timeout_ms: timeout_of(i.get("TimeoutInMillis"))?,
        }),
        None,
    ))
}

fn str_of<'a>(v: &'a Value, key: &str) -> Option<&'a str> {
    v.get(key).and_then(Value::as_str)
}

fn variables(v: Option<&Value>) -> BTreeMap<String, String> {
    v.and_then(Value::as_object)
        .map(|m| {
            m.iter()
                .map(|(k, v)| (k.clone(), v.as_str().map(String::from).unwrap_or_else(|| v.to_string())))
                .collect()
        })
        .unwrap_or_default()
}

/// A REST API ready to serve, from its `RestApi` resource and the resources that name it.
pub fn build(id: &str, region: &str, resources: &[ApiResource]) -> Result<HttpApi, String> {
    let mut routes = Vec::new();
    let mut stages = BTreeMap::new();
    let mut info = RestApiInfo::default();
    let mut root = None;
    // resource id -> (parent id, path part)
    let mut tree: BTreeMap<&str, (&str, &str)> = BTreeMap::new();
    for r in resources {
        match r.type_.as_str() {
            "AWS::ApiGateway::RestApi" => {
                if let Some(b) = r.properties.get("Body") {
                    routes.extend(routes_of_body(b)?);
                }
                info.binary_media_types = binary_media_types(&r.properties);
                root = r.attributes.get("RootResourceId").and_then(Value::as_str);
            }
            "AWS::ApiGateway::Resource" => {
                if let (Some(parent), Some(part)) =
                    (str_of(&r.properties, "ParentId"), str_of(&r.properties, "PathPart"))
                {
                    tree.insert(&r.physical_id, (parent, part));
                }
            }
            "AWS::ApiGateway::Stage" => {
                let name = str_of(&r.properties, "StageName").unwrap_or(&r.physical_id);
                stages.insert(name.to_string(), variables(r.properties.get("Variables")));
            }
            "AWS::ApiGateway::Deployment" => {
                if let Some(name) = str_of(&r.properties, "StageName") {
                    let vars = variables(r.properties.get("StageDescription").and_then(|d| d.get("Variables")));
                    stages.entry(name.to_string()).or_insert(vars);
                }
            }
            _ => {}
        }
    }
    for r in resources.iter().filter(|r| r.type_ == "AWS::ApiGateway::Method") {
        let p = &r.properties;
        let (Some(rid), Some(method)) = (str_of(p, "ResourceId"), str_of(p, "HttpMethod")) else {
            continue;
        };
        let Some(path) = path_of(&tree, root, rid) else {
            continue;
        };
        let key = format!("{} {path}", method.to_ascii_uppercase());
        let (method, segs) = parse_route_key(&key)?;
        let (integration, mock) = method_integration(p)?;
        routes.push(Route {
            key,
            method,
            path: segs,
            integration,
            mock,
            authorizer: None,
        });
    }
    Ok(HttpApi {
        id: id.to_string(),
        region: region.to_string(),
        routes,
        stages,
        cors: None,
        rest: Some(info),
    })
}

/// The path of a resource: its parts up to the root (bounded: a cycle is not a path).
fn path_of<'a>(tree: &BTreeMap<&'a str, (&'a str, &'a str)>, root: Option<&str>, mut rid: &'a str) -> Option<String> {
    let mut parts = Vec::new();
    for _ in 0..=tree.len() {
        if Some(rid) == root {
            parts.reverse();
            return Some(format!("/{}", parts.join("/")));
        }
        let (parent, part) = tree.get(rid)?;
        parts.push(*part);
        rid = parent;
    }
    None
}

/// Does `content_type` fall under one of `types` (`image/png`, `image/*`, `*/*`)?
pub fn is_binary(types: &[String], content_type: Option<&str>) -> bool {
    let Some(ct) = content_type else { return false };
    let ct = ct.split(';').next().unwrap_or("").trim().to_ascii_lowercase();
    types.iter().any(|t| {
        let t = t.trim().to_ascii_lowercase();
        t == "*/*"
            || t == ct
            || t.strip_suffix("/*")
                .is_some_and(|major| ct.split('/').next() == Some(major))
    })
}

fn header<'a>(headers: &'a [(String, String)], name: &str) -> Option<&'a str> {
    headers
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_str())
}

/// The Lambda proxy event of a REST API: `path` within the stage, `resource` the method's path
/// template, the body base64-encoded only for a binary media type.
pub fn event(req: &RequestInfo, in_stage: &str, binary_types: &[String]) -> Value {
    let mut e = crate::apigw::event_v1(req);
    let resource = req.route_key.split_once(' ').map(|(_, p)| p).unwrap_or(req.route_key);
    if let Some(o) = e.as_object_mut() {
        o.remove("version");
        o.insert("path".into(), Value::String(in_stage.to_string()));
        let (body, b64) = if req.body.is_empty() {
            (Value::Null, false)
        } else if is_binary(binary_types, header(req.headers, "content-type")) {
            use base64::Engine;
            (
                Value::String(base64::engine::general_purpose::STANDARD.encode(req.body)),
                true,
            )
        } else {
            (Value::String(String::from_utf8_lossy(req.body).into_owned()), false)
        };
        o.insert("body".into(), body);
        o.insert("isBase64Encoded".into(), Value::Bool(b64));
        if let Some(ctx) = o.get_mut("requestContext").and_then(Value::as_object_mut) {
            ctx.insert("path".into(), Value::String(format!("/{}{}", req.stage, in_stage)));
            ctx.insert("resourceId".into(), Value::String(resource_id(req.route_key)));
            ctx.insert("resourcePath".into(), Value::String(resource.to_string()));
        }
    }
    e
}

/// A stable 6-character id for a method's resource, as API Gateway shows one.
fn resource_id(route_key: &str) -> String {
    let path = route_key.split_once(' ').map(|(_, p)| p).unwrap_or(route_key);
    let h = meridian_core::digest::Digest::of(path.as_bytes()).hex();
    h[..6].to_string()
}

/// Maps the function's answer as a REST API does: a base64 body is decoded only when the
/// request's `Accept` (its first type) is a binary media type of the API, as API Gateway converts
/// for Lambda proxy integrations; otherwise it goes out as the text it is.
pub fn map_response(payload: &[u8], binary_types: &[String], accept: Option<&str>) -> Result<HttpAnswer, String> {
    let mut v: Value =
        serde_json::from_slice(payload).map_err(|e| format!("the function's response is not JSON: {e}"))?;
    let binary = accept.is_some_and(|a| is_binary(binary_types, a.split(',').next()));
    if !binary {
        if let Some(o) = v.as_object_mut() {
            if o.get("isBase64Encoded").is_some_and(|b| b == &Value::Bool(true)) {
                o.insert("isBase64Encoded".into(), Value::Bool(false));
            }
        }
    }
    let bytes = serde_json::to_vec(&v).map_err(|e| e.to_string())?;
    crate::apigw::map_response(PayloadVersion::V1, &bytes)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn res(type_: &str, id: &str, props: Value, attrs: Value) -> ApiResource {
        ApiResource {
            type_: type_.into(),
            physical_id: id.into(),
            properties: props,
            attributes: attrs,
        }
    }

    const FN: &str = "arn:aws:lambda:us-east-1:123456789012:function:items:live";

    #[test]
    fn methods_of_resources_take_their_paths_from_the_tree() {
        let uri = format!("arn:aws:apigateway:us-east-1:lambda:path/2015-03-31/functions/{FN}/invocations");
        let api = build(
            "abcdefghij",
            "us-east-1",
            &[
                res("AWS::ApiGateway::RestApi", "abcdefghij", json!({"Name": "a"}), json!({"RootResourceId": "root01"})),
                res("AWS::ApiGateway::Resource", "items1", json!({"ParentId": "root01", "PathPart": "items"}), Value::Null),
                res("AWS::ApiGateway::Resource", "item01", json!({"ParentId": "items1", "PathPart": "{id}"}), Value::Null),
                res(
                    "AWS::ApiGateway::Method",
                    "m1",
                    json!({"ResourceId": "item01", "HttpMethod": "GET", "Integration": {"Type": "AWS_PROXY", "IntegrationHttpMethod": "POST", "Uri": uri}}),
                    Value::Null,
                ),
                res(
                    "AWS::ApiGateway::Method",
                    "m2",
                    json!({"ResourceId": "items1", "HttpMethod": "OPTIONS", "Integration": {"Type": "MOCK",
                        "IntegrationResponses": [{"StatusCode": 204, "ResponseParameters": {"method.response.header.Access-Control-Allow-Origin": "'*'"}}]}}),
                    Value::Null,
                ),
                res("AWS::ApiGateway::Deployment", "dep001", json!({"StageName": "dev"}), Value::Null),
                res("AWS::ApiGateway::Stage", "Prod", json!({"StageName": "Prod", "Variables": {"v": "1"}}), Value::Null),
            ],
        )
        .unwrap();
        assert_eq!(api.stages.keys().collect::<Vec<_>>(), ["Prod", "dev"]);
        assert_eq!(api.stages["Prod"]["v"], "1");
        let m = api.route("GET", "/items/42").unwrap();
        assert_eq!(m.route.key, "GET /items/{id}");
        assert_eq!(m.path_parameters["id"], "42");
        assert_eq!(m.route.integration.as_ref().unwrap().function_arn, FN);
        assert_eq!(m.route.integration.as_ref().unwrap().timeout_ms, 29_000);
        let o = api.route("OPTIONS", "/items").unwrap();
        let mock = o.route.mock.as_ref().unwrap();
        assert_eq!(mock.status, 204);
        assert_eq!(
            mock.headers,
            vec![("Access-Control-Allow-Origin".to_string(), "*".to_string())]
        );
        assert!(api.route("POST", "/items/42").is_none());
    }

    #[test]
    fn integrations_other_than_lambda_proxy_and_mock_are_refused() {
        let body = json!({"paths": {"/x": {"get": {"x-amazon-apigateway-integration": {"type": "http", "uri": "https://example.com"}}}}});
        let e = check_rest_api(&json!({"Body": body})).unwrap_err();
        assert!(e.contains("integration type http is not served"), "{e}");
        let e =
            method_integration(&json!({"Integration": {"Type": "AWS_PROXY", "Uri": "x", "TimeoutInMillis": 30000}}))
                .unwrap_err();
        assert!(e.contains("out of range") || e.contains("not a Lambda function"), "{e}");
    }

    #[test]
    fn binary_media_types_decide_base64() {
        let types = vec!["image/*".to_string(), "application/octet-stream".to_string()];
        assert!(is_binary(&types, Some("image/png")));
        assert!(is_binary(&types, Some("application/octet-stream; charset=x")));
        assert!(!is_binary(&types, Some("text/plain")));
        let payload = br#"{"statusCode": 200, "headers": {"content-type": "text/plain"}, "isBase64Encoded": true, "body": "aGk="}"#;
        // the client does not accept a binary type: the base64 text goes out as it is
        assert_eq!(map_response(payload, &types, None).unwrap().body, b"aGk=");
        assert_eq!(
            map_response(payload, &types, Some("text/plain, image/png"))
                .unwrap()
                .body,
            b"aGk="
        );
        // the client accepts a binary type: decoded
        assert_eq!(map_response(payload, &types, Some("image/png")).unwrap().body, b"hi");
    }
}
