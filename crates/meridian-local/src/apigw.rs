//! HTTP APIs (API Gateway V2) of local regions: the API as its stack deployed it (routes from the
//! API's OpenAPI `Body`, from `Route` and `Integration` resources, or from a quick-create
//! `Target`), route selection as API Gateway selects, the Lambda proxy event of payload format
//! 1.0 and 2.0, and the mapping of the function's answer back to HTTP.
//!
//! What it must not do: perform I/O. The endpoint (`endpoint/apigw.rs`) reads the API from the
//! stacks, invokes the function and writes the response.

use serde_json::{json, Map, Value};
use std::collections::BTreeMap;

/// Default and maximum integration timeout of an HTTP API (`TimeoutInMillis`).
pub const DEFAULT_TIMEOUT_MS: u64 = 30_000;

/// The file of the data directory where a running `meridian serve` writes its URL.
pub const SERVE_URL_FILE: &str = "serve-endpoint-url";

/// The local URL of an AWS-shaped HTTP API URL (`https://{id}.execute-api.{region}.amazonaws.com/rest`)
/// on the endpoint `endpoint` (`http://127.0.0.1:9001`): `http://{id}.execute-api.localhost:9001/rest`.
pub fn local_url(aws_url: &str, endpoint: &str) -> Option<String> {
    let rest = aws_url.strip_prefix("https://")?;
    let (host, path) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, ""),
    };
    let (id, tail) = host.split_once(".execute-api.")?;
    if !tail.ends_with(".amazonaws.com") || id.is_empty() || !id.bytes().all(|b| b.is_ascii_alphanumeric()) {
        return None;
    }
    let ep = endpoint.trim_end_matches('/');
    let port = ep
        .rsplit_once(':')
        .map(|(_, p)| p)
        .filter(|p| p.bytes().all(|b| b.is_ascii_digit()))?;
    Some(format!("http://{id}.execute-api.localhost:{port}{path}"))
}

/// A deployed resource of an API's stack, as the stacks hold it.
#[derive(Debug, Clone)]
pub struct ApiResource {
    pub type_: String,
    pub physical_id: String,
    pub properties: Value,
    /// Its attributes (a REST API's `RootResourceId`).
    pub attributes: Value,
}

/// One HTTP API, ready to serve.
#[derive(Debug, Clone)]
pub struct HttpApi {
    pub id: String,
    pub region: String,
    pub routes: Vec<Route>,
    /// Stage name -> stage variables.
    pub stages: BTreeMap<String, BTreeMap<String, String>>,
    /// The API's CORS configuration (`CorsConfiguration`, or the Body's `x-amazon-apigateway-cors`).
    pub cors: Option<Cors>,
    /// A REST API (API Gateway V1) is served as one, with what only REST APIs have.
    pub rest: Option<crate::rest_api::RestApiInfo>,
}

/// An HTTP API's CORS configuration: API Gateway answers preflight requests itself and adds the
/// headers to the integration's responses.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Cors {
    pub allow_origins: Vec<String>,
    pub allow_methods: Vec<String>,
    pub allow_headers: Vec<String>,
    pub expose_headers: Vec<String>,
    pub max_age: Option<u64>,
    pub allow_credentials: bool,
}

impl Cors {
    /// From `CorsConfiguration` (`AllowOrigins`, ...) or `x-amazon-apigateway-cors` (`allowOrigins`, ...).
    pub fn of(v: &Value) -> Cors {
        let get = |k: &str| {
            let mut camel = k.to_string();
            camel[..1].make_ascii_lowercase();
            v.get(k).or_else(|| v.get(&camel))
        };
        let list = |k: &str| -> Vec<String> {
            get(k)
                .and_then(Value::as_array)
                .map(|a| a.iter().filter_map(|x| x.as_str().map(String::from)).collect())
                .unwrap_or_default()
        };
        Cors {
            allow_origins: list("AllowOrigins"),
            allow_methods: list("AllowMethods"),
            allow_headers: list("AllowHeaders"),
            expose_headers: list("ExposeHeaders"),
            max_age: get("MaxAge").and_then(|m| m.as_u64().or_else(|| m.as_str().and_then(|s| s.parse().ok()))),
            allow_credentials: matches!(get("AllowCredentials"), Some(Value::Bool(true))),
        }
    }

    /// The `Access-Control-Allow-Origin` for a request from `origin`, if it is allowed.
    fn allow_origin(&self, origin: &str) -> Option<String> {
        if self.allow_origins.iter().any(|o| o == "*") {
            return Some(if self.allow_credentials {
                origin.to_string()
            } else {
                "*".to_string()
            });
        }
        self.allow_origins
            .iter()
            .any(|o| o.eq_ignore_ascii_case(origin))
            .then(|| origin.to_string())
    }

    /// The answer to a preflight request (`OPTIONS` with `Origin` and
    /// `Access-Control-Request-Method`): 204, with the CORS headers when the origin is allowed.
    pub fn preflight(&self, origin: &str) -> HttpAnswer {
        let mut headers = Vec::new();
        if let Some(o) = self.allow_origin(origin) {
            headers.push(("access-control-allow-origin".to_string(), o));
            if !self.allow_methods.is_empty() {
                headers.push(("access-control-allow-methods".into(), self.allow_methods.join(",")));
            }
            if !self.allow_headers.is_empty() {
                headers.push(("access-control-allow-headers".into(), self.allow_headers.join(",")));
            }
            if let Some(m) = self.max_age {
                headers.push(("access-control-max-age".into(), m.to_string()));
            }
            if self.allow_credentials {
                headers.push(("access-control-allow-credentials".into(), "true".into()));
            }
        }
        HttpAnswer {
            status: 204,
            headers,
            body: Vec::new(),
        }
    }

    /// Adds the CORS headers to an integration's response to a request from `origin`.
    pub fn decorate(&self, origin: &str, a: &mut HttpAnswer) {
        let Some(o) = self.allow_origin(origin) else { return };
        a.headers
            .retain(|(k, _)| !k.to_ascii_lowercase().starts_with("access-control-"));
        a.headers.push(("access-control-allow-origin".into(), o));
        if !self.expose_headers.is_empty() {
            a.headers
                .push(("access-control-expose-headers".into(), self.expose_headers.join(",")));
        }
        if self.allow_credentials {
            a.headers
                .push(("access-control-allow-credentials".into(), "true".into()));
        }
    }
}

#[derive(Debug, Clone)]
pub struct Route {
    /// `GET /items/{id}`, `ANY /{proxy+}` or `$default`.
    pub key: String,
    /// None for `ANY` and `$default`.
    pub(crate) method: Option<String>,
    /// None for `$default`.
    pub(crate) path: Option<Vec<Segment>>,
    pub integration: Option<Integration>,
    /// A REST API's mock integration: the answer API Gateway gives itself (CORS preflights).
    pub mock: Option<HttpAnswer>,
    /// A REST API method's Lambda authorizer, called before the integration.
    pub authorizer: Option<crate::authorizer::LambdaAuthorizer>,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Segment {
    Literal(String),
    Param(String),
    Greedy(String),
}

#[derive(Debug, Clone, PartialEq)]
pub struct Integration {
    /// The Lambda function's ARN (with its alias or version when it names one).
    pub function_arn: String,
    pub payload_version: PayloadVersion,
    pub timeout_ms: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PayloadVersion {
    V1,
    V2,
}

impl PayloadVersion {
    fn parse(v: &Value) -> Result<PayloadVersion, String> {
        match v.as_str().map(String::from).unwrap_or_else(|| v.to_string()).as_str() {
            "1.0" | "1" => Ok(PayloadVersion::V1),
            "2.0" | "2" => Ok(PayloadVersion::V2),
            other => Err(format!("PayloadFormatVersion {other} is not supported: use 1.0 or 2.0")),
        }
    }
}

/// Checks a route key (`$default`, or `METHOD /path`) and parses it.
pub fn parse_route_key(key: &str) -> Result<(Option<String>, Option<Vec<Segment>>), String> {
    if key == "$default" {
        return Ok((None, None));
    }
    let bad = || {
        format!("Invalid route key `{key}`: use `$default` or `METHOD /path` (for example `GET /items/{{id}}` or `ANY /{{proxy+}}`)")
    };
    let (method, path) = key.split_once(' ').ok_or_else(bad)?;
    const METHODS: &[&str] = &["ANY", "GET", "POST", "PUT", "DELETE", "PATCH", "HEAD", "OPTIONS"];
    let method = method.to_ascii_uppercase();
    if !METHODS.contains(&method.as_str()) || !path.starts_with('/') {
        return Err(bad());
    }
    let mut segs = Vec::new();
    let parts: Vec<&str> = if path == "/" {
        Vec::new()
    } else {
        path[1..].split('/').collect()
    };
    for (i, p) in parts.iter().enumerate() {
        if let Some(name) = p.strip_prefix('{').and_then(|p| p.strip_suffix('}')) {
            if let Some(g) = name.strip_suffix('+') {
                if i + 1 != parts.len() {
                    return Err(format!("Invalid route key `{key}`: a greedy path variable `{{{g}+}}` must be the last part of the path"));
                }
                segs.push(Segment::Greedy(g.to_string()));
            } else if name.is_empty() || name.contains(['{', '}']) {
                return Err(bad());
            } else {
                segs.push(Segment::Param(name.to_string()));
            }
        } else if p.contains(['{', '}']) {
            return Err(format!(
                "Invalid route key `{key}`: a path variable must be a whole path part (`/{{name}}`)"
            ));
        } else {
            segs.push(Segment::Literal(p.to_string()));
        }
    }
    Ok(((method != "ANY").then_some(method), Some(segs)))
}

/// The Lambda function an integration URI names: a function ARN (with qualifier), or API
/// Gateway's `arn:aws:apigateway:REGION:lambda:path/2015-03-31/functions/ARN/invocations`.
pub fn function_of_uri(uri: &str) -> Result<String, String> {
    let arn = match uri.split_once(":lambda:path/2015-03-31/functions/") {
        Some((_, rest)) => rest.strip_suffix("/invocations").unwrap_or(rest),
        None => uri,
    };
    if arn.starts_with("arn:") && arn.contains(":lambda:") && arn.contains(":function:") {
        Ok(arn.to_string())
    } else {
        Err(format!(
            "IntegrationUri `{uri}` is not a Lambda function: local regions serve AWS_PROXY integrations to Lambda functions (a function or alias ARN)"
        ))
    }
}

/// An `AWS::ApiGatewayV2::Integration`'s properties, checked.
pub fn integration_of(props: &Value) -> Result<Integration, String> {
    let t = props.get("IntegrationType").and_then(Value::as_str).unwrap_or_default();
    if !t.eq_ignore_ascii_case("AWS_PROXY") {
        return Err(format!(
            "IntegrationType {t} is not served by local regions: only AWS_PROXY integrations with Lambda functions are"
        ));
    }
    let uri = props
        .get("IntegrationUri")
        .and_then(Value::as_str)
        .ok_or("Properties validation failed: required key [IntegrationUri] not found")?;
    let version = props
        .get("PayloadFormatVersion")
        .ok_or("PayloadFormatVersion is required for AWS_PROXY integrations of HTTP APIs (1.0 or 2.0)")?;
    Ok(Integration {
        function_arn: function_of_uri(uri)?,
        payload_version: PayloadVersion::parse(version)?,
        timeout_ms: timeout_of(props.get("TimeoutInMillis"))?,
    })
}

fn timeout_of(v: Option<&Value>) -> Result<u64, String> {
    integration_timeout(v, "TimeoutInMillis", DEFAULT_TIMEOUT_MS, "HTTP APIs")
}

/// An integration's timeout in milliseconds: `max` when unset, else 50 to `max` (`apis` names
/// the kind of API in the message).
pub(crate) fn integration_timeout(v: Option<&Value>, name: &str, max: u64, apis: &str) -> Result<u64, String> {
    let Some(v) = v else { return Ok(max) };
    let n = v
        .as_u64()
        .or_else(|| v.as_str().and_then(|s| s.parse().ok()))
        .ok_or_else(|| format!("{name} must be a number, found {v}"))?;
    if !(50..=max).contains(&n) {
        return Err(format!("{name} {n} is out of range: {apis} take 50 to {max}"));
    }
    Ok(n)
}

/// The routes an API's OpenAPI `Body` declares (`x-amazon-apigateway-integration` of type
/// `aws_proxy`; `x-amazon-apigateway-any-method` is `ANY`; path `$default` the default route).
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
            let key = if path == "$default" || path == "/$default" {
                "$default".to_string()
            } else {
                format!("{m} {path}")
            };
            let (method, segs) = parse_route_key(&key).map_err(|e| format!("Body.paths: {e}"))?;
            let integration = match op.get("x-amazon-apigateway-integration") {
                None => None,
                Some(i) => {
                    let t = i.get("type").and_then(Value::as_str).unwrap_or_default();
                    if !t.eq_ignore_ascii_case("aws_proxy") {
                        return Err(format!(
                            "Body.paths.{path}.{method_name}: integration type {t} is not served by local regions: only aws_proxy integrations with Lambda functions are",
                            method_name = op_name(&key)
                        ));
                    }
                    let uri = i
                        .get("uri")
                        .and_then(Value::as_str)
                        .ok_or_else(|| format!("Body.paths.{path}: the integration has no uri"))?;
                    Some(Integration {
                        function_arn: function_of_uri(uri)?,
                        payload_version: PayloadVersion::parse(
                            i.get("payloadFormatVersion").unwrap_or(&Value::String("2.0".into())),
                        )?,
                        timeout_ms: timeout_of(i.get("timeoutInMillis"))?,
                    })
                }
            };
            let at = format!("Body.paths.{path}.{}", op_name(&key));
            out.push(Route {
                key,
                method,
                path: segs,
                integration,
                mock: None,
                authorizer: crate::authorizer::of_method(op, &authorizers, &at, true)?,
            });
        }
    }
    Ok(out)
}

fn op_name(key: &str) -> &str {
    key.split(' ').next().unwrap_or(key)
}

/// Checks an `AWS::ApiGatewayV2::Api`'s properties as local regions serve them.
pub fn check_api(props: &Value) -> Result<(), String> {
    if let Some(p) = props.get("ProtocolType").and_then(Value::as_str) {
        if p != "HTTP" {
            return Err(format!(
                "ProtocolType {p} is not served by local regions yet: only HTTP APIs are"
            ));
        }
    } else if props.get("Body").is_none() {
        return Err("Properties validation failed: an API needs ProtocolType (HTTP) or an OpenAPI Body".into());
    }
    if props.get("BodyS3Location").is_some() {
        return Err("BodyS3Location is not read by local regions yet: give the OpenAPI definition inline as Body (SAM: DefinitionBody)".into());
    }
    if let Some(b) = props.get("Body") {
        routes_of_body(b)?;
    }
    if let Some(t) = props.get("Target").and_then(Value::as_str) {
        function_of_uri(t)?;
        if let Some(k) = props.get("RouteKey").and_then(Value::as_str) {
            parse_route_key(k)?;
        }
    }
    Ok(())
}

/// Builds the API `id` from the resources of the region that name it.
pub fn build(id: &str, region: &str, resources: &[ApiResource]) -> Result<HttpApi, String> {
    let mut routes = Vec::new();
    let mut stages = BTreeMap::new();
    let mut cors = None;
    let mut integrations = BTreeMap::new();
    for r in resources {
        if r.type_ == "AWS::ApiGatewayV2::Integration" {
            integrations.insert(r.physical_id.clone(), integration_of(&r.properties));
        }
    }
    for r in resources {
        let p = &r.properties;
        match r.type_.as_str() {
            "AWS::ApiGatewayV2::Api" => {
                if let Some(b) = p.get("Body") {
                    routes.extend(routes_of_body(b)?);
                    if let Some(c) = b.get("x-amazon-apigateway-cors") {
                        cors = Some(Cors::of(c));
                    }
                }
                if let Some(c) = p.get("CorsConfiguration") {
                    cors = Some(Cors::of(c));
                }
                if let Some(t) = p.get("Target").and_then(Value::as_str) {
                    // Quick create: a route, its integration (payload 2.0) and the `$default`
                    // stage with automatic deployment.
                    let key = p.get("RouteKey").and_then(Value::as_str).unwrap_or("$default");
                    let (method, path) = parse_route_key(key)?;
                    routes.push(Route {
                        key: key.to_string(),
                        method,
                        path,
                        integration: Some(Integration {
                            function_arn: function_of_uri(t)?,
                            payload_version: PayloadVersion::V2,
                            timeout_ms: DEFAULT_TIMEOUT_MS,
                        }),
                        mock: None,
                        authorizer: None,
                    });
                    stages.entry("$default".to_string()).or_insert_with(BTreeMap::new);
                }
            }
            "AWS::ApiGatewayV2::Route" => {
                let key = p.get("RouteKey").and_then(Value::as_str).unwrap_or_default();
                let (method, path) = parse_route_key(key)?;
                let integration = match p.get("Target").and_then(Value::as_str) {
                    Some(t) => {
                        let iid = t.strip_prefix("integrations/").unwrap_or(t);
                        match integrations.get(iid) {
                            Some(Ok(i)) => Some(i.clone()),
                            Some(Err(e)) => return Err(e.clone()),
                            None => None,
                        }
                    }
                    None => None,
                };
                routes.push(Route {
                    key: key.to_string(),
                    method,
                    path,
                    integration,
                    mock: None,
                    authorizer: None,
                });
            }
            "AWS::ApiGatewayV2::Stage" => {
                let name = p.get("StageName").and_then(Value::as_str).unwrap_or(&r.physical_id);
                let vars = p
                    .get("StageVariables")
                    .and_then(Value::as_object)
                    .map(|m| {
                        m.iter()
                            .map(|(k, v)| (k.clone(), v.as_str().map(String::from).unwrap_or_else(|| v.to_string())))
                            .collect()
                    })
                    .unwrap_or_default();
                stages.insert(name.to_string(), vars);
            }
            _ => {}
        }
    }
    Ok(HttpApi {
        id: id.to_string(),
        region: region.to_string(),
        routes,
        stages,
        cors,
        rest: None,
    })
}

/// A matched route.
#[derive(Debug)]
pub struct Matched<'a> {
    pub route: &'a Route,
    pub path_parameters: BTreeMap<String, String>,
}

impl HttpApi {
    /// The stage a request's path addresses, and the path within it: a named stage is the
    /// path's first part; `$default` serves the rest.
    pub fn stage_of<'p>(&self, path: &'p str) -> Option<(String, &'p str)> {
        let rest = path.strip_prefix('/').unwrap_or(path);
        let (first, tail) = match rest.split_once('/') {
            Some((f, _)) => (f, &rest[f.len()..]),
            None => (rest, "/"),
        };
        if !first.is_empty() && first != "$default" && self.stages.contains_key(first) {
            return Some((first.to_string(), tail));
        }
        if self.stages.contains_key("$default") {
            return Some(("$default".to_string(), path));
        }
        None
    }

    /// The route API Gateway selects: the most specific path (literal parts before variables,
    /// variables before a greedy variable), a method before `ANY`, then `$default`.
    pub fn route(&self, method: &str, path: &str) -> Option<Matched<'_>> {
        let parts: Vec<&str> = if path == "/" || path.is_empty() {
            Vec::new()
        } else {
            path.strip_prefix('/').unwrap_or(path).split('/').collect()
        };
        let mut best: Option<(Vec<u8>, u8, Matched<'_>)> = None;
        for r in &self.routes {
            let Some(segs) = &r.path else { continue };
            let method_rank = match &r.method {
                Some(m) if m.eq_ignore_ascii_case(method) => 1,
                Some(_) => continue,
                None => 0,
            };
            let Some((rank, params)) = match_path(segs, &parts) else {
                continue;
            };
            let better = match &best {
                None => true,
                Some((br, bm, _)) => (&rank, method_rank) > (br, *bm),
            };
            if better {
                best = Some((
                    rank,
                    method_rank,
                    Matched {
                        route: r,
                        path_parameters: params,
                    },
                ));
            }
        }
        if let Some((_, _, m)) = best {
            return Some(m);
        }
        self.routes.iter().find(|r| r.key == "$default").map(|r| Matched {
            route: r,
            path_parameters: BTreeMap::new(),
        })
    }
}

/// Ranks per part (3 literal, 2 variable, 1 greedy) and the path variables, if `segs` matches.
fn match_path(segs: &[Segment], parts: &[&str]) -> Option<(Vec<u8>, BTreeMap<String, String>)> {
    let mut rank = Vec::new();
    let mut params = BTreeMap::new();
    for (i, s) in segs.iter().enumerate() {
        match s {
            Segment::Greedy(name) => {
                if i >= parts.len() {
                    return None;
                }
                rank.push(1);
                params.insert(name.clone(), decode(&parts[i..].join("/")));
                return Some((rank, params));
            }
            Segment::Literal(l) => {
                if parts.get(i) != Some(&l.as_str()) {
                    return None;
                }
                rank.push(3);
            }
            Segment::Param(name) => {
                let p = parts.get(i)?;
                if p.is_empty() {
                    return None;
                }
                params.insert(name.clone(), decode(p));
                rank.push(2);
            }
        }
    }
    (segs.len() == parts.len()).then_some((rank, params))
}

fn decode(s: &str) -> String {
    percent_encoding::percent_decode_str(s).decode_utf8_lossy().into_owned()
}

/// What the endpoint knows of one request.
pub struct RequestInfo<'a> {
    pub api_id: &'a str,
    pub region: &'a str,
    pub stage: &'a str,
    pub stage_variables: &'a BTreeMap<String, String>,
    pub route_key: &'a str,
    pub method: &'a str,
    /// The path as received (with the stage's prefix).
    pub raw_path: &'a str,
    pub raw_query: &'a str,
    /// Header names as received, in order, with each value.
    pub headers: &'a [(String, String)],
    pub body: &'a [u8],
    pub path_parameters: &'a BTreeMap<String, String>,
    pub source_ip: &'a str,
    pub request_id: &'a str,
    pub domain_name: &'a str,
    pub epoch_ms: i64,
}

/// API Gateway's `requestContext.time`: `12/Mar/2020:19:03:58 +0000`.
pub fn clf_time(epoch_ms: i64) -> String {
    let ts = jiff::Timestamp::from_millisecond(epoch_ms).unwrap_or(jiff::Timestamp::UNIX_EPOCH);
    ts.strftime("%d/%b/%Y:%H:%M:%S +0000").to_string()
}

/// Whether HTTP APIs pass a body of this content type as text (else base64).
fn is_text(content_type: Option<&str>) -> bool {
    let Some(ct) = content_type else { return true };
    let ct = ct.split(';').next().unwrap_or("").trim().to_ascii_lowercase();
    ct.starts_with("text/")
        || ct == "application/json"
        || ct.ends_with("+json")
        || ct == "application/xml"
        || ct.ends_with("+xml")
        || ct == "application/javascript"
}

fn body_fields(req: &RequestInfo) -> (Value, bool) {
    if req.body.is_empty() {
        return (Value::Null, false);
    }
    let ct = req
        .headers
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case("content-type"))
        .map(|(_, v)| v.as_str());
    match std::str::from_utf8(req.body) {
        Ok(s) if is_text(ct) => (Value::String(s.to_string()), false),
        _ => {
            use base64::Engine;
            (
                Value::String(base64::engine::general_purpose::STANDARD.encode(req.body)),
                true,
            )
        }
    }
}

fn query_pairs(raw: &str) -> Vec<(String, String)> {
    form_urlencoded::parse(raw.as_bytes())
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect()
}

fn string_map(m: &BTreeMap<String, String>) -> Value {
    if m.is_empty() {
        return Value::Null;
    }
    Value::Object(m.iter().map(|(k, v)| (k.clone(), Value::String(v.clone()))).collect())
}

/// The proxy event of payload format 2.0.
pub fn event_v2(req: &RequestInfo) -> Value {
    let mut headers: BTreeMap<String, String> = BTreeMap::new();
    let mut cookies = Vec::new();
    for (k, v) in req.headers {
        let k = k.to_ascii_lowercase();
        if k == "cookie" {
            cookies.extend(v.split(';').map(|c| c.trim().to_string()).filter(|c| !c.is_empty()));
            continue;
        }
        headers
            .entry(k)
            .and_modify(|e| {
                e.push(',');
                e.push_str(v)
            })
            .or_insert_with(|| v.clone());
    }
    let mut query: BTreeMap<String, String> = BTreeMap::new();
    for (k, v) in query_pairs(req.raw_query) {
        query
            .entry(k)
            .and_modify(|e| {
                e.push(',');
                e.push_str(&v)
            })
            .or_insert(v);
    }
    let (body, b64) = body_fields(req);
    let user_agent = headers.get("user-agent").cloned().unwrap_or_default();
    let mut e = Map::new();
    e.insert("version".into(), json!("2.0"));
    e.insert("routeKey".into(), json!(req.route_key));
    e.insert("rawPath".into(), json!(req.raw_path));
    e.insert("rawQueryString".into(), json!(req.raw_query));
    if !cookies.is_empty() {
        e.insert("cookies".into(), json!(cookies));
    }
    e.insert("headers".into(), string_map(&headers));
    if !query.is_empty() {
        e.insert("queryStringParameters".into(), string_map(&query));
    }
    e.insert(
        "requestContext".into(),
        json!({
            "accountId": meridian_core::LOCAL_ACCOUNT_ID,
            "apiId": req.api_id,
            "domainName": req.domain_name,
            "domainPrefix": req.api_id,
            "http": {
                "method": req.method,
                "path": req.raw_path,
                "protocol": "HTTP/1.1",
                "sourceIp": req.source_ip,
                "userAgent": user_agent,
            },
            "requestId": req.request_id,
            "routeKey": req.route_key,
            "stage": req.stage,
            "time": clf_time(req.epoch_ms),
            "timeEpoch": req.epoch_ms,
        }),
    );
    if !body.is_null() {
        e.insert("body".into(), body);
    }
    if !req.path_parameters.is_empty() {
        e.insert("pathParameters".into(), string_map(req.path_parameters));
    }
    e.insert("isBase64Encoded".into(), json!(b64));
    if !req.stage_variables.is_empty() {
        e.insert("stageVariables".into(), string_map(req.stage_variables));
    }
    Value::Object(e)
}

/// The proxy event of payload format 1.0 (the REST API's shape).
pub fn event_v1(req: &RequestInfo) -> Value {
    let mut headers: BTreeMap<String, String> = BTreeMap::new();
    let mut multi: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for (k, v) in req.headers {
        let k = k.to_ascii_lowercase();
        headers.insert(k.clone(), v.clone());
        multi.entry(k).or_default().push(v.clone());
    }
    let mut query: BTreeMap<String, String> = BTreeMap::new();
    let mut mquery: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for (k, v) in query_pairs(req.raw_query) {
        query.insert(k.clone(), v.clone());
        mquery.entry(k).or_default().push(v);
    }
    let (body, b64) = body_fields(req);
    let resource = req.route_key.split_once(' ').map(|(_, p)| p).unwrap_or(req.route_key);
    let user_agent = headers.get("user-agent").cloned();
    let multi_map = |m: &BTreeMap<String, Vec<String>>| {
        if m.is_empty() {
            Value::Null
        } else {
            json!(m)
        }
    };
    json!({
        "version": "1.0",
        "resource": resource,
        "path": req.raw_path,
        "httpMethod": req.method,
        "headers": string_map(&headers),
        "multiValueHeaders": multi_map(&multi),
        "queryStringParameters": string_map(&query),
        "multiValueQueryStringParameters": multi_map(&mquery),
        "requestContext": {
            "accountId": meridian_core::LOCAL_ACCOUNT_ID,
            "apiId": req.api_id,
            "domainName": req.domain_name,
            "domainPrefix": req.api_id,
            "extendedRequestId": req.request_id,
            "httpMethod": req.method,
            "identity": {
                "accessKey": null,
                "accountId": null,
                "caller": null,
                "cognitoAuthenticationProvider": null,
                "cognitoAuthenticationType": null,
                "cognitoIdentityId": null,
                "cognitoIdentityPoolId": null,
                "principalOrgId": null,
                "sourceIp": req.source_ip,
                "user": null,
                "userAgent": user_agent,
                "userArn": null,
            },
            "path": req.raw_path,
            "protocol": "HTTP/1.1",
            "requestId": req.request_id,
            "requestTime": clf_time(req.epoch_ms),
            "requestTimeEpoch": req.epoch_ms,
            "resourceId": req.route_key,
            "resourcePath": resource,
            "stage": req.stage,
        },
        "pathParameters": string_map(req.path_parameters),
        "stageVariables": string_map(req.stage_variables),
        "body": body,
        "isBase64Encoded": b64,
    })
}

/// The HTTP response API Gateway makes of the function's answer.
#[derive(Debug, Clone, PartialEq)]
pub struct HttpAnswer {
    pub status: u16,
    /// In order; a name may repeat (multi-value headers, `Set-Cookie`).
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

/// API Gateway's own errors.
pub fn gateway_error(status: u16, message: &str) -> HttpAnswer {
    HttpAnswer {
        status,
        headers: vec![("content-type".into(), "application/json".into())],
        body: json!({ "message": message }).to_string().into_bytes(),
    }
}

/// Maps the function's response payload. `Err` is why it is malformed (API Gateway answers
/// 502 and logs the reason).
pub fn map_response(version: PayloadVersion, payload: &[u8]) -> Result<HttpAnswer, String> {
    let v: Value = serde_json::from_slice(payload).map_err(|e| format!("the function's response is not JSON: {e}"))?;
    let has_status = v.get("statusCode").is_some();
    if version == PayloadVersion::V2 && !has_status {
        // Inferred: any valid JSON without statusCode is the body of a 200.
        let body = match &v {
            Value::String(s) => s.clone().into_bytes(),
            _ => payload.to_vec(),
        };
        return Ok(HttpAnswer {
            status: 200,
            headers: vec![("content-type".into(), "application/json".into())],
            body,
        });
    }
    let o = v
        .as_object()
        .ok_or("the function's response is not an object with statusCode")?;
    let status = match o.get("statusCode") {
        Some(Value::Number(n)) => n.as_u64(),
        Some(Value::String(s)) => s.parse().ok(),
        _ => None,
    }
    .filter(|s| (100..=599).contains(s))
    .ok_or_else(|| {
        format!(
            "statusCode must be an HTTP status code, found {}",
            o.get("statusCode").unwrap_or(&Value::Null)
        )
    })? as u16;
    let text = |v: &Value| match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(_) | Value::Bool(_) => Some(v.to_string()),
        _ => None,
    };
    let mut headers = Vec::new();
    match o.get("headers") {
        None | Some(Value::Null) => {}
        Some(Value::Object(h)) => {
            for (k, v) in h {
                headers.push((
                    k.clone(),
                    text(v).ok_or_else(|| format!("header `{k}` must be a string"))?,
                ));
            }
        }
        Some(_) => return Err("headers must be an object".into()),
    }
    if version == PayloadVersion::V1 {
        match o.get("multiValueHeaders") {
            None | Some(Value::Null) => {}
            Some(Value::Object(h)) => {
                for (k, vs) in h {
                    let vs = vs
                        .as_array()
                        .ok_or_else(|| format!("multiValueHeaders.{k} must be a list"))?;
                    // A name in both: multiValueHeaders' values are added after headers'.
                    for v in vs {
                        headers.push((
                            k.clone(),
                            text(v).ok_or_else(|| format!("multiValueHeaders.{k} must hold strings"))?,
                        ));
                    }
                }
            }
            Some(_) => return Err("multiValueHeaders must be an object".into()),
        }
    } else {
        match o.get("cookies") {
            None | Some(Value::Null) => {}
            Some(Value::Array(cs)) => {
                for c in cs {
                    headers.push(("set-cookie".into(), text(c).ok_or("cookies must hold strings")?));
                }
            }
            Some(_) => return Err("cookies must be a list".into()),
        }
    }
    let b64 = match o.get("isBase64Encoded") {
        None | Some(Value::Null) => false,
        Some(Value::Bool(b)) => *b,
        Some(Value::String(s)) if s == "true" || s == "false" => s == "true",
        Some(_) => return Err("isBase64Encoded must be a boolean".into()),
    };
    let body = match o.get("body") {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::String(s)) if b64 => {
            use base64::Engine;
            base64::engine::general_purpose::STANDARD
                .decode(s.trim())
                .map_err(|e| format!("body is not base64 although isBase64Encoded is true: {e}"))?
        }
        Some(Value::String(s)) => s.clone().into_bytes(),
        Some(other) if version == PayloadVersion::V2 => other.to_string().into_bytes(),
        Some(_) => return Err("body must be a string".into()),
    };
    Ok(HttpAnswer { status, headers, body })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn api(keys: &[&str]) -> HttpApi {
        HttpApi {
            id: "abc123defg".into(),
            region: "us-east-1".into(),
            routes: keys
                .iter()
                .map(|k| {
                    let (method, path) = parse_route_key(k).unwrap();
                    Route {
                        key: k.to_string(),
                        method,
                        path,
                        integration: None,
                        mock: None,
                        authorizer: None,
                    }
                })
                .collect(),
            stages: BTreeMap::from([("$default".to_string(), BTreeMap::new())]),
            cors: None,
            rest: None,
        }
    }

    #[test]
    fn cors_answers_preflights_and_decorates_responses() {
        let c =
            Cors::of(&json!({"allowOrigins": ["https://a.example"], "allowMethods": ["GET", "POST"], "MaxAge": 60}));
        let p = c.preflight("https://a.example");
        assert_eq!(p.status, 204);
        assert!(p
            .headers
            .contains(&("access-control-allow-methods".into(), "GET,POST".into())));
        assert!(p.headers.contains(&("access-control-max-age".into(), "60".into())));
        assert!(c.preflight("https://b.example").headers.is_empty());
        let mut a = gateway_error(200, "x");
        c.decorate("https://a.example", &mut a);
        assert!(a
            .headers
            .contains(&("access-control-allow-origin".into(), "https://a.example".into())));
    }

    #[test]
    fn routes_are_selected_as_api_gateway_selects_them() {
        let a = api(&[
            "GET /pets/{id}",
            "GET /pets/dog",
            "ANY /pets/{id}",
            "ANY /{proxy+}",
            "$default",
            "POST /pets",
        ]);
        let key = |m: &str, p: &str| a.route(m, p).map(|r| r.route.key.clone());
        assert_eq!(key("GET", "/pets/dog").unwrap(), "GET /pets/dog");
        assert_eq!(key("GET", "/pets/cat").unwrap(), "GET /pets/{id}");
        assert_eq!(key("PUT", "/pets/cat").unwrap(), "ANY /pets/{id}");
        assert_eq!(key("POST", "/pets").unwrap(), "POST /pets");
        assert_eq!(key("GET", "/pets").unwrap(), "ANY /{proxy+}");
        assert_eq!(key("GET", "/").unwrap(), "$default");
        let m = a.route("GET", "/a/b%20c/d").unwrap();
        assert_eq!(m.path_parameters["proxy"], "a/b c/d");
        assert!(api(&["GET /x"]).route("GET", "/y").is_none());
        assert!(parse_route_key("GET /{a+}/b").is_err());
        assert!(parse_route_key("FETCH /a").is_err());
        assert!(parse_route_key("/a").is_err());
    }

    #[test]
    fn stages_take_the_first_part_of_the_path() {
        let mut a = api(&[]);
        a.stages.insert("prod".into(), BTreeMap::new());
        assert_eq!(a.stage_of("/prod/items/1"), Some(("prod".into(), "/items/1")));
        assert_eq!(a.stage_of("/prod"), Some(("prod".into(), "/")));
        assert_eq!(a.stage_of("/items"), Some(("$default".into(), "/items")));
        a.stages.remove("$default");
        assert_eq!(a.stage_of("/items"), None);
    }

    #[test]
    fn responses_map_as_api_gateway_maps_them() {
        let r = map_response(PayloadVersion::V2, br#""hello""#).unwrap();
        assert_eq!((r.status, r.body), (200, b"hello".to_vec()));
        let r = map_response(PayloadVersion::V2, br#"{"a":1}"#).unwrap();
        assert_eq!(r.body, br#"{"a":1}"#.to_vec());
        let r = map_response(
            PayloadVersion::V2,
            br#"{"statusCode":201,"cookies":["a=1","b=2"],"body":"aGk=","isBase64Encoded":true}"#,
        )
        .unwrap();
        assert_eq!(r.status, 201);
        assert_eq!(r.body, b"hi");
        assert_eq!(r.headers.iter().filter(|(k, _)| k == "set-cookie").count(), 2);
        assert!(map_response(PayloadVersion::V1, br#"{"a":1}"#).is_err());
        assert!(map_response(PayloadVersion::V1, b"not json").is_err());
        assert!(map_response(PayloadVersion::V2, br#"{"statusCode":"abc"}"#).is_err());
        let r = map_response(
            PayloadVersion::V1,
            br#"{"statusCode":200,"multiValueHeaders":{"x-a":["1","2"]},"body":"ok"}"#,
        )
        .unwrap();
        assert_eq!(
            r.headers,
            vec![("x-a".to_string(), "1".to_string()), ("x-a".into(), "2".into())]
        );
    }

    #[test]
    fn function_of_uri_reads_both_forms() {
        let f = "arn:aws:lambda:us-east-1:123456789012:function:f:live";
        assert_eq!(function_of_uri(f).unwrap(), f);
        assert_eq!(
            function_of_uri(&format!(
                "arn:aws:apigateway:us-east-1:lambda:path/2015-03-31/functions/{f}/invocations"
            ))
            .unwrap(),
            f
        );
        assert!(function_of_uri("http://example.com").is_err());
    }
}
