//! HTTP APIs on the local endpoint. A request is addressed to an API by its host,
//! `{api-id}.execute-api.localhost[:port]` (curl and browsers resolve `*.localhost` to loopback;
//! `{api-id}.execute-api.{region}.localhost` and AWS's own `{api-id}.execute-api.{region}.amazonaws.com`
//! are accepted too, for `curl --connect-to`), or by the path prefix `/_apis/{api-id}` (no S3
//! bucket name starts with `_`). What follows is the path API Gateway would see: `/{stage}/...`
//! for a named stage, the path itself for `$default`.

use super::{full, Body, Endpoint};
use crate::apigw::{self, HttpAnswer, PayloadVersion, RequestInfo};
use crate::host::InvokeRequest;
use hyper::body::Incoming;
use hyper::{Request, Response};
use meridian_core::RegionId;
use std::time::Duration;

/// HTTP APIs' own limit on a request's body.
const MAX_REQUEST_BODY: usize = 10 * 1024 * 1024;

/// The API a request is addressed to, and the path within it.
pub(super) fn addressed(req: &Request<Incoming>) -> Option<(String, String)> {
    let host = req
        .headers()
        .get(hyper::header::HOST)
        .and_then(|h| h.to_str().ok())
        .or_else(|| req.uri().host())
        .unwrap_or("");
    let name = host
        .rsplit_once(':')
        .map(|(h, _)| h)
        .unwrap_or(host)
        .to_ascii_lowercase();
    if let Some((id, rest)) = name.split_once(".execute-api") {
        let local =
            rest.is_empty() || rest == ".localhost" || rest.ends_with(".localhost") || rest.ends_with(".amazonaws.com");
        if local && is_api_id(id) {
            return Some((id.to_string(), req.uri().path().to_string()));
        }
    }
    let rest = req.uri().path().strip_prefix("/_apis/")?;
    let (id, path) = match rest.split_once('/') {
        Some((id, _)) => (id, &rest[id.len()..]),
        None => (rest, "/"),
    };
    Some((id.to_string(), path.to_string()))
}

fn is_api_id(id: &str) -> bool {
    !id.is_empty() && id.len() <= 32 && id.bytes().all(|b| b.is_ascii_alphanumeric())
}

fn answer(a: HttpAnswer, request_id: &str) -> Response<Body> {
    let mut b = Response::builder().status(a.status);
    for (k, v) in &a.headers {
        match (
            hyper::header::HeaderName::from_bytes(k.as_bytes()),
            hyper::header::HeaderValue::from_str(v),
        ) {
            (Ok(k), Ok(v)) => b = b.header(k, v),
            _ => {
                eprintln!("warning: API Gateway dropped the response header `{k}`: not a valid HTTP header");
            }
        }
    }
    b = b.header("apigw-requestid", request_id);
    b.body(full(a.body)).unwrap_or_else(|_| {
        Response::builder()
            .status(502)
            .body(full(r#"{"message":"Internal Server Error"}"#))
            .expect("valid response")
    })
}

/// Serves one request addressed to the API `api_id`.
pub(super) async fn handle(
    ep: &Endpoint,
    api_id: &str,
    path: &str,
    req: Request<Incoming>,
    request_id: &str,
) -> Response<Body> {
    let api = match ep.stacks().and_then(|s| s.http_api(api_id)) {
        Ok(Some(a)) => a,
        Ok(None) => return answer(apigw::gateway_error(404, "Not Found"), request_id),
        Err(e) => {
            eprintln!("warning: API {api_id} cannot be served: {e}");
            return answer(apigw::gateway_error(500, "Internal Server Error"), request_id);
        }
    };
    let method = req.method().as_str().to_string();
    let source_ip = req
        .extensions()
        .get::<std::net::SocketAddr>()
        .map(|a| a.ip().to_string())
        .unwrap_or_else(|| "127.0.0.1".into());
    let raw_query = req.uri().query().unwrap_or("").to_string();
    let mut headers: Vec<(String, String)> = req
        .headers()
        .iter()
        .map(|(k, v)| {
            (
                k.as_str().to_string(),
                String::from_utf8_lossy(v.as_bytes()).into_owned(),
            )
        })
        .collect();
    headers.push(("x-forwarded-for".into(), source_ip.clone()));
    headers.push(("x-forwarded-proto".into(), "http".into()));
    let body = match super::query::read_body(req.into_body(), MAX_REQUEST_BODY).await {
        Ok(b) => b,
        Err((status, _)) if status == hyper::StatusCode::PAYLOAD_TOO_LARGE => {
            return answer(apigw::gateway_error(413, "Request Entity Too Large"), request_id)
        }
        Err((_, m)) => {
            eprintln!("warning: API {api_id}: {m}");
            return answer(apigw::gateway_error(400, "Bad Request"), request_id);
        }
    };
    let a = serve(
        ep.host(),
        &api,
        ApiRequest {
            method: &method,
            path,
            raw_query: &raw_query,
            headers: &headers,
            body: &body,
            source_ip: &source_ip,
            request_id,
        },
    )
    .await;
    answer(a, request_id)
}

/// One request to an API, as API Gateway receives it.
pub struct ApiRequest<'a> {
    pub method: &'a str,
    /// The path with the stage's prefix (`/Prod/hello`; the path itself for `$default`).
    pub path: &'a str,
    pub raw_query: &'a str,
    pub headers: &'a [(String, String)],
    pub body: &'a [u8],
    pub source_ip: &'a str,
    pub request_id: &'a str,
}

/// How long API Gateway waits for a Lambda authorizer.
const AUTHORIZER_TIMEOUT: Duration = Duration::from_secs(10);

/// Calls a method's Lambda authorizer: the `requestContext.authorizer` its policy gives the
/// function, or API Gateway's answer (401 without the identity or when the authorizer says
/// `Unauthorized`, 403 when the policy does not allow the method, 500 when it fails).
async fn authorize(
    host: &crate::host::LambdaHost,
    (api_id, region): (&str, &RegionId),
    a: &crate::authorizer::LambdaAuthorizer,
    method_arn: &str,
    headers: &[(String, String)],
    proxy_event: &serde_json::Value,
) -> Result<serde_json::Value, HttpAnswer> {
    let (event, identity) = crate::authorizer::event(a, method_arn, headers, proxy_event)?;
    // a policy given for this identity within the TTL decides again, for this method
    if let Some(payload) = crate::authorizer::cached(api_id, a, &identity) {
        return crate::authorizer::decide(a, &payload, method_arn);
    }
    let call = InvokeRequest::new(&a.function_arn, event.to_string());
    let host = host.clone();
    let region = region.clone();
    let task = tokio::spawn(async move { host.invoke(&region, call).await });
    let outcome = tokio::time::timeout(AUTHORIZER_TIMEOUT, task).await;
    match outcome {
        Ok(Ok(Ok(r))) if r.function_error.is_some() => {
            // `throw new Error("Unauthorized")` / `raise Exception("Unauthorized")`: a 401
            let message = serde_json::from_slice::<serde_json::Value>(&r.payload)
                .ok()
                .and_then(|v| v.get("errorMessage").and_then(|m| m.as_str()).map(str::to_string));
            if message.as_deref() == Some("Unauthorized") {
                Err(crate::authorizer::unauthorized())
            } else {
                Err(crate::authorizer::failure(a))
            }
        }
        Ok(Ok(Ok(r))) => {
            let decided = crate::authorizer::decide(a, &r.payload, method_arn);
            // a policy is kept (an allow or a deny); an answer that is not one is not
            if decided.as_ref().is_ok() || decided.as_ref().is_err_and(|e| e.status == 403) {
                crate::authorizer::remember(api_id, a, &identity, &r.payload);
            }
            decided
        }
        Ok(Ok(Err(e))) => {
            eprintln!("warning: authorizer {} ({}): {e}", a.name, a.function_arn);
            Err(crate::authorizer::failure(a))
        }
        _ => Err(crate::authorizer::failure(a)),
    }
}

/// What API Gateway does with one request to `api`: the stage, the route or method, a mock's
/// answer or the Lambda proxy event, the invocation (through the alias the integration names,
/// within its timeout), the answer mapped back. The endpoint serves HTTP with it, and synthetic
/// traffic through an API route calls it directly.
pub async fn serve(host: &crate::host::LambdaHost, api: &apigw::HttpApi, req: ApiRequest<'_>) -> HttpAnswer {
    let api_id = api.id.as_str();
    let request_id = req.request_id;
    let rest = api.rest.clone();
    // REST APIs answer a path, method or stage they do not have with 403s of their own.
    let (no_route, no_stage) = match &rest {
        Some(_) => (crate::rest_api::missing_token(), crate::rest_api::forbidden()),
        None => (
            apigw::gateway_error(404, "Not Found"),
            apigw::gateway_error(404, "Not Found"),
        ),
    };
    let path = req.path;
    let Some((stage, in_stage)) = api.stage_of(path) else {
        return no_stage;
    };
    let method = req.method.to_string();
    let header = |name: &str| {
        req.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.clone())
    };
    let origin = header("origin");
    // With CORS configured, API Gateway answers preflight requests itself.
    if let (Some(cors), Some(origin), true, true) = (
        &api.cors,
        &origin,
        method == "OPTIONS",
        header("access-control-request-method").is_some(),
    ) {
        return cors.preflight(origin);
    }
    // REST APIs ignore a trailing slash (`/Prod/hello/` is `/hello`)
    let in_stage = match &rest {
        Some(_) if in_stage.len() > 1 => in_stage.trim_end_matches('/'),
        _ => in_stage,
    };
    let in_stage = if in_stage.is_empty() { "/" } else { in_stage };
    let Some(matched) = api.route(&method, in_stage) else {
        return no_route;
    };
    let epoch_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0);
    let domain_name = format!("{api_id}.execute-api.{}.amazonaws.com", api.region);
    let no_variables = Default::default();
    let info = RequestInfo {
        api_id,
        region: &api.region,
        stage: &stage,
        stage_variables: api.stages.get(&stage).unwrap_or(&no_variables),
        route_key: &matched.route.key,
        method: &method,
        raw_path: path,
        raw_query: req.raw_query,
        headers: req.headers,
        body: req.body,
        path_parameters: &matched.path_parameters,
        source_ip: req.source_ip,
        request_id,
        domain_name: &domain_name,
        epoch_ms,
    };
    let Ok(region) = api.region.parse::<RegionId>() else {
        return apigw::gateway_error(500, "Internal Server Error");
    };
    // A method's (or route's) Lambda authorizer decides first, before its integration or mock
    // answer (a CORS preflight method with the default authorizer is decided too, as on AWS),
    // with an event of its own format.
    let mut authorizer_context = None;
    if let Some(a) = &matched.route.authorizer {
        let method_arn = format!(
            "arn:aws:execute-api:{}:{}:{api_id}/{stage}/{method}{in_stage}",
            api.region,
            meridian_core::LOCAL_ACCOUNT_ID
        );
        let base = match (a.http, &rest) {
            (None, Some(r)) => crate::rest_api::event(&info, in_stage, &r.binary_media_types),
            (Some(h), _) if h.v2 => apigw::event_v2(&info),
            _ => apigw::event_v1(&info),
        };
        match authorize(host, (api_id, &region), a, &method_arn, req.headers, &base).await {
            Ok(context) => authorizer_context = Some(context),
            Err(answer) => return answer,
        }
    }
    if let Some(mock) = &matched.route.mock {
        return mock.clone();
    }
    let Some(integration) = matched.route.integration.clone() else {
        // A route without an integration: API Gateway has nothing to call.
        return apigw::gateway_error(500, "Internal Server Error");
    };
    let accept = header("accept");
    let mut event = match (&rest, integration.payload_version) {
        (Some(r), _) => crate::rest_api::event(&info, in_stage, &r.binary_media_types),
        (None, PayloadVersion::V1) => apigw::event_v1(&info),
        (None, PayloadVersion::V2) => apigw::event_v2(&info),
    };
    if let Some(context) = authorizer_context {
        event["requestContext"]["authorizer"] = context;
    }
    let failed = || match &rest {
        Some(_) => crate::rest_api::internal_error(),
        None => apigw::gateway_error(502, "Internal Server Error"),
    };
    // The invocation runs on its own task: after the integration timeout the client gets 504
    // and the function goes on to its end, as on AWS.
    let host = host.clone();
    let call = InvokeRequest::new(&integration.function_arn, event.to_string());
    let task = tokio::spawn(async move { host.invoke(&region, call).await });
    let outcome = tokio::time::timeout(Duration::from_millis(integration.timeout_ms), task).await;
    let mut a = match outcome {
        Err(_) => apigw::gateway_error(504, "Endpoint request timed out"),
        Ok(Err(join)) => {
            eprintln!("warning: API {api_id}: the invocation failed: {join}");
            apigw::gateway_error(500, "Internal Server Error")
        }
        // An event over Lambda's 6 MB: API Gateway answers as for a body over its own limit.
        Ok(Ok(Err(crate::LambdaError::RequestTooLarge { .. }))) => {
            apigw::gateway_error(413, "Request Entity Too Large")
        }
        // The Lambda API refused the call (no such function, throttled).
        Ok(Ok(Err(e))) => {
            eprintln!("warning: API {api_id} route `{}`: {e}", matched.route.key);
            apigw::gateway_error(500, "Internal Server Error")
        }
        Ok(Ok(Ok(r))) if r.function_error.is_some() => failed(),
        Ok(Ok(Ok(r))) => match match &rest {
            Some(info) => crate::rest_api::map_response(&r.payload, &info.binary_media_types, accept.as_deref()),
            None => apigw::map_response(integration.payload_version, &r.payload),
        } {
            Ok(a) => a,
            Err(why) => {
                eprintln!(
                    "warning: API {api_id} route `{}`: malformed Lambda proxy response: {why}",
                    matched.route.key
                );
                failed()
            }
        },
    };
    if let (Some(cors), Some(origin)) = (&api.cors, &origin) {
        cors.decorate(origin, &mut a);
    }
    a
}
