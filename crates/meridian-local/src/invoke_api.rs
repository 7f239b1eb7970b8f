//! The Lambda Invoke API and the read side of the management API over HTTP, on one port for all
//! local regions. The region of a call comes from the SigV4 credential scope of its
//! `Authorization` header (signatures are not checked: local regions have no credentials), or the
//! configured default when the call is unsigned. Errors have AWS's JSON shape and
//! `x-amzn-ErrorType`, so SDKs raise the exceptions they would raise against AWS.

use crate::error::LambdaError;
use crate::host::{ConfigUpdate, InvokeRequest, LambdaHost};
use crate::model::{CodeSource, FunctionSpec};
use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use meridian_core::RegionId;
use serde_json::{json, Value};
use std::collections::BTreeMap;

/// How the Invoke API server behaves.
#[derive(Debug, Clone)]
pub struct InvokeApiConfig {
    /// The region of unsigned calls.
    pub default_region: RegionId,
}

type Body = Full<Bytes>;

/// Serves the API on `listener` until the task is dropped.
pub async fn serve_invoke_api(host: LambdaHost, listener: tokio::net::TcpListener, cfg: InvokeApiConfig) {
    loop {
        let (stream, _) = match listener.accept().await {
            Ok(s) => s,
            Err(e) => {
                eprintln!("warning: failed to accept an Invoke API connection: {e}");
                tokio::time::sleep(std::time::Duration::from_millis(10)).await;
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        let host = host.clone();
        let cfg = cfg.clone();
        // A client that connects and sends nothing (or stays idle between requests) is dropped
        // after the header timeout; a request being served is not timed out.
        let header_timeout = host.config().http_header_timeout;
        tokio::spawn(async move {
            let svc = hyper::service::service_fn(move |req| {
                let host = host.clone();
                let cfg = cfg.clone();
                async move { Ok::<_, std::convert::Infallible>(route(&host, &cfg, req).await) }
            });
            let _ = hyper::server::conn::http1::Builder::new()
                .timer(hyper_util::rt::TokioTimer::new())
                .header_read_timeout(header_timeout)
                .serve_connection(TokioIo::new(stream), svc)
                .await;
        });
    }
}

/// The region named in a SigV4 `Authorization` header's credential scope.
pub fn region_from_authorization(header: &str) -> Option<&str> {
    let cred = header.split("Credential=").nth(1)?;
    let scope = cred.split([',', ' ']).next()?;
    scope.split('/').nth(2)
}

fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' && i + 2 < b.len() {
            if let Ok(v) = u8::from_str_radix(&s[i + 1..i + 3], 16) {
                out.push(v);
                i += 3;
                continue;
            }
        }
        out.push(if b[i] == b'+' { b' ' } else { b[i] });
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn query_params(q: Option<&str>) -> BTreeMap<String, String> {
    q.unwrap_or("")
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            (percent_decode(k), percent_decode(v))
        })
        .collect()
}

fn json_response(status: StatusCode, body: &Value, request_id: &str) -> Response<Body> {
    Response::builder()
        .status(status)
        .header("Content-Type", "application/json")
        .header("x-amzn-RequestId", request_id)
        .body(Full::new(Bytes::from(body.to_string())))
        .expect("valid response")
}

/// An error as the Lambda API returns it.
pub fn error_response(e: &LambdaError, request_id: &str) -> Response<Body> {
    let status = StatusCode::from_u16(e.http_status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let (body, retry) = match e {
        LambdaError::TooManyRequests { reason, .. } => (
            json!({"Type": "User", "message": e.to_string(), "Reason": reason}),
            true,
        ),
        _ => (
            json!({"Type": if status.is_server_error() { "Service" } else { "User" }, "Message": e.to_string()}),
            false,
        ),
    };
    let mut b = Response::builder()
        .status(status)
        .header("Content-Type", "application/json")
        .header("x-amzn-ErrorType", e.error_type())
        .header("x-amzn-RequestId", request_id);
    if retry {
        b = b.header("Retry-After", "1");
    }
    b.body(Full::new(Bytes::from(body.to_string())))
        .expect("valid response")
}

/// Answers one Lambda (or CodeDeploy hook status) request; the local endpoint routes them here.
pub async fn handle(host: &LambdaHost, cfg: &InvokeApiConfig, req: Request<Incoming>) -> Response<Body> {
    route(host, cfg, req).await
}

async fn route(host: &LambdaHost, cfg: &InvokeApiConfig, req: Request<Incoming>) -> Response<Body> {
    let api_request_id = crate::host::new_request_id(&API_IDS);
    let target = req
        .headers()
        .get("x-amz-target")
        .and_then(|h| h.to_str().ok())
        .map(str::to_string);
    if let Some(op) = target.as_deref().and_then(|t| t.strip_prefix("CodeDeploy_20141006.")) {
        return codedeploy(host, op, req, &api_request_id).await;
    }
    match route_inner(host, cfg, req, &api_request_id).await {
        Ok(r) => r,
        Err(e) => error_response(&e, &api_request_id),
    }
}

/// CodeDeploy's JSON 1.1 API, as far as Lambda lifecycle hooks need it:
/// `PutLifecycleEventHookExecutionStatus`, recorded in the delivery store where the deployment
/// driver waits for it.
async fn codedeploy(host: &LambdaHost, op: &str, req: Request<Incoming>, request_id: &str) -> Response<Body> {
    let error = |status: StatusCode, kind: &str, message: &str| {
        Response::builder()
            .status(status)
            .header("Content-Type", "application/x-amz-json-1.1")
            .header("x-amzn-RequestId", request_id)
            .body(Full::new(Bytes::from(
                json!({"__type": kind, "message": message}).to_string(),
            )))
            .expect("valid response")
    };
    if op != "PutLifecycleEventHookExecutionStatus" {
        return error(
            StatusCode::BAD_REQUEST,
            "UnknownOperationException",
            &format!("local regions serve only PutLifecycleEventHookExecutionStatus of CodeDeploy, not {op}"),
        );
    }
    let body = match read_body(req, 1 << 20).await.and_then(|b| body_json(&b)) {
        Ok(v) => v,
        Err(e) => return error(StatusCode::BAD_REQUEST, "SerializationException", &e.to_string()),
    };
    let field = |k: &str| body.get(k).and_then(Value::as_str).unwrap_or_default().to_string();
    let (deployment, exec, status) = (
        field("deploymentId"),
        field("lifecycleEventHookExecutionId"),
        field("status"),
    );
    let data_dir = host.config().data_dir.clone();
    let result = tokio::task::spawn_blocking(move || {
        meridian_engine::delivery::DeliveryStore::open(&data_dir)
            .map_err(|e| ("InternalFailure".to_string(), e))
            .and_then(|s| s.report_hook(&deployment, &exec, &status))
            .map(|_| exec)
    })
    .await
    .unwrap_or_else(|e| Err(("InternalFailure".into(), e.to_string())));
    match result {
        Ok(exec) => Response::builder()
            .status(StatusCode::OK)
            .header("Content-Type", "application/x-amz-json-1.1")
            .header("x-amzn-RequestId", request_id)
            .body(Full::new(Bytes::from(
                json!({"lifecycleEventHookExecutionId": exec}).to_string(),
            )))
            .expect("valid response"),
        Err((kind, message)) => error(StatusCode::BAD_REQUEST, &kind, &message),
    }
}

static API_IDS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1 << 40);

/// Reads a request body of at most `limit` bytes. A client that stops sending before the body
/// it announced is complete is given up on after [`crate::host::HTTP_HEADER_TIMEOUT`] without
/// a byte (as a client sending no request head is): its connection is then closed, never held.
async fn read_body(req: Request<Incoming>, limit: usize) -> Result<Bytes, LambdaError> {
    let mut body = Limited::new(req.into_body(), limit + 1);
    let mut out = bytes::BytesMut::new();
    loop {
        let frame = match tokio::time::timeout(crate::host::HTTP_HEADER_TIMEOUT, body.frame()).await {
            Ok(Some(frame)) => frame,
            Ok(None) => return Ok(out.freeze()),
            Err(_) => {
                return Err(LambdaError::InvalidRequestContent(format!(
                    "the request body stopped arriving: nothing for {} s after {} bytes",
                    crate::host::HTTP_HEADER_TIMEOUT.as_secs(),
                    out.len()
                )))
            }
        };
        match frame {
            Ok(f) => {
                if let Ok(data) = f.into_data() {
                    out.extend_from_slice(&data);
                }
            }
            Err(e) if e.is::<http_body_util::LengthLimitError>() => {
                return Err(LambdaError::RequestTooLarge {
                    kind: "Request",
                    size: limit + 1,
                    limit,
                })
            }
            Err(e) => {
                return Err(LambdaError::InvalidRequestContent(format!(
                    "could not read the request body: {e}"
                )))
            }
        }
    }
}

fn body_json(body: &[u8]) -> Result<Value, LambdaError> {
    if body.is_empty() {
        return Ok(json!({}));
    }
    serde_json::from_slice(body).map_err(|e| LambdaError::InvalidRequestContent(e.to_string()))
}

fn weights_from(v: &Value) -> Result<Option<BTreeMap<String, f64>>, LambdaError> {
    match v.get("RoutingConfig") {
        None | Some(Value::Null) => Ok(None),
        Some(rc) => {
            let mut out = BTreeMap::new();
            if let Some(map) = rc.get("AdditionalVersionWeights").and_then(Value::as_object) {
                for (k, w) in map {
                    let w = w.as_f64().ok_or_else(|| {
                        LambdaError::InvalidParameterValue(format!("weight of version {k} is not a number"))
                    })?;
                    out.insert(k.clone(), w);
                }
            }
            Ok(Some(out))
        }
    }
}

async fn route_inner(
    host: &LambdaHost,
    cfg: &InvokeApiConfig,
    req: Request<Incoming>,
    api_request_id: &str,
) -> Result<Response<Body>, LambdaError> {
    let region = match req.headers().get("authorization").and_then(|h| h.to_str().ok()) {
        Some(auth) => match region_from_authorization(auth) {
            Some(r) => RegionId::new(r).map_err(|e| LambdaError::InvalidParameterValue(e.to_string()))?,
            None => cfg.default_region.clone(),
        },
        None => cfg.default_region.clone(),
    };
    let path = req.uri().path().to_string();
    let params = query_params(req.uri().query());
    let method = req.method().clone();
    let segments: Vec<String> = path.trim_matches('/').split('/').map(percent_decode).collect();
    let seg: Vec<&str> = segments.iter().map(String::as_str).collect();
    let qualifier = params.get("Qualifier").cloned();
    let ok = |v: Value| Ok(json_response(StatusCode::OK, &v, api_request_id));
    let created = |v: Value| Ok(json_response(StatusCode::CREATED, &v, api_request_id));

    match (&method, seg.as_slice()) {
        (&Method::POST, ["2015-03-31", "functions", function, "invocations"]) => {
            let header = |n: &str| req.headers().get(n).and_then(|h| h.to_str().ok()).map(str::to_string);
            let invocation_type = header("x-amz-invocation-type").unwrap_or_else(|| "RequestResponse".into());
            let tail = header("x-amz-log-type").as_deref() == Some("Tail");
            let client_context = header("x-amz-client-context");
            let function = function.to_string();
            let payload = read_body(req, crate::host::MAX_SYNC_PAYLOAD_BYTES).await?;
            let ireq = InvokeRequest {
                function,
                qualifier,
                payload,
                tail_logs: tail,
                client_context,
            };
            match invocation_type.as_str() {
                "RequestResponse" => {
                    let r = host.invoke(&region, ireq).await?;
                    let mut b = Response::builder()
                        .status(StatusCode::OK)
                        .header("Content-Type", "application/json")
                        .header("x-amzn-RequestId", &r.request_id)
                        .header("X-Amz-Executed-Version", &r.executed_version);
                    if let Some(fe) = &r.function_error {
                        b = b.header("X-Amz-Function-Error", fe);
                    }
                    if let Some(lr) = &r.log_result {
                        b = b.header("X-Amz-Log-Result", lr);
                    }
                    Ok(b.body(Full::new(r.payload)).expect("valid response"))
                }
                "Event" => {
                    let id = host.invoke_event(&region, ireq)?;
                    Ok(Response::builder()
                        .status(StatusCode::ACCEPTED)
                        .header("x-amzn-RequestId", id)
                        .body(Full::new(Bytes::new()))
                        .expect("valid response"))
                }
                "DryRun" => {
                    host.dry_run(&region, &ireq)?;
                    Ok(Response::builder()
                        .status(StatusCode::NO_CONTENT)
                        .header("x-amzn-RequestId", api_request_id)
                        .body(Full::new(Bytes::new()))
                        .expect("valid response"))
                }
                other => Err(LambdaError::InvalidParameterValue(format!(
                    "X-Amz-Invocation-Type `{other}` is not one of RequestResponse, Event, DryRun"
                ))),
            }
        }
        (&Method::POST, ["2014-11-13", "functions", function, "invoke-async"]) => {
            let function = function.to_string();
            let payload = read_body(req, crate::host::MAX_ASYNC_PAYLOAD_BYTES).await?;
            host.invoke_event(&region, InvokeRequest::new(&function, payload))?;
            Ok(json_response(
                StatusCode::ACCEPTED,
                &json!({"Status": 202}),
                api_request_id,
            ))
        }
        (&Method::GET, ["2015-03-31", "functions"]) => {
            let fns: Vec<Value> = host.list_functions(&region)?.iter().map(|f| f.to_aws_json()).collect();
            ok(json!({"Functions": fns}))
        }
        (&Method::POST, ["2015-03-31", "functions"]) => {
            let body = body_json(&read_body(req, MAX_CODE_REQUEST_BYTES).await?)?;
            let name = str_field(&body, "FunctionName")?
                .ok_or_else(|| LambdaError::InvalidParameterValue("FunctionName is required".into()))?;
            let runtime = str_field(&body, "Runtime")?
                .ok_or_else(|| LambdaError::InvalidParameterValue("Runtime is required (zip packages)".into()))?;
            let handler = str_field(&body, "Handler")?
                .ok_or_else(|| LambdaError::InvalidParameterValue("Handler is required".into()))?;
            let mut spec = FunctionSpec::new(&name, &runtime, &handler);
            if let Some(t) = u32_field(&body, "Timeout")? {
                spec.timeout = t;
            }
            if let Some(m) = u32_field(&body, "MemorySize")? {
                spec.memory_size = m;
            }
            if let Some(env) = env_field(&body)? {
                spec.environment = env;
            }
            spec.description = str_field(&body, "Description")?.unwrap_or_default();
            let code = zip_field(body.get("Code"))?;
            let latest = host.create_function(&region, spec, &code)?;
            let out = if body.get("Publish").and_then(Value::as_bool) == Some(true) {
                host.publish_version(&region, &name, None)?
            } else {
                latest
            };
            created(out.to_aws_json())
        }
        (&Method::PUT, ["2015-03-31", "functions", function, "code"]) => {
            let name = function_name(function)?;
            let body = body_json(&read_body(req, MAX_CODE_REQUEST_BYTES).await?)?;
            let code = zip_field(Some(&body))?;
            let mut v = host.update_function_code(&region, &name, &code)?;
            if body.get("Publish").and_then(Value::as_bool) == Some(true) {
                v = host.publish_version(&region, &name, None)?;
            }
            ok(v.to_aws_json())
        }
        (&Method::PUT, ["2015-03-31", "functions", function, "configuration"]) => {
            let name = function_name(function)?;
            let body = body_json(&read_body(req, 1 << 20).await?)?;
            let update = ConfigUpdate {
                runtime: str_field(&body, "Runtime")?,
                handler: str_field(&body, "Handler")?,
                memory_size: u32_field(&body, "MemorySize")?,
                timeout: u32_field(&body, "Timeout")?,
                environment: env_field(&body)?,
                description: str_field(&body, "Description")?,
            };
            ok(host
                .update_function_configuration(&region, &name, update)?
                .to_aws_json())
        }
        (&Method::DELETE, ["2015-03-31", "functions", function]) => {
            let name = function_name(function)?;
            host.delete_function(&region, &name)?;
            Ok(empty(StatusCode::NO_CONTENT, api_request_id))
        }
        (&Method::PUT, ["2017-10-31", "functions", function, "concurrency"]) => {
            let name = function_name(function)?;
            let body = body_json(&read_body(req, 1 << 20).await?)?;
            let n = u32_field(&body, "ReservedConcurrentExecutions")?
                .ok_or_else(|| LambdaError::InvalidParameterValue("ReservedConcurrentExecutions is required".into()))?;
            host.put_function_concurrency(&region, &name, Some(n))?;
            ok(json!({"ReservedConcurrentExecutions": n}))
        }
        (&Method::DELETE, ["2017-10-31", "functions", function, "concurrency"]) => {
            let name = function_name(function)?;
            host.put_function_concurrency(&region, &name, None)?;
            Ok(empty(StatusCode::NO_CONTENT, api_request_id))
        }
        (&Method::GET, ["2015-03-31", "functions", function]) => {
            let (v, reserved) = host.get_function(&region, function, qualifier.as_deref())?;
            let location = crate::code::code_dir(&host.config().data_dir, &v.region, &v.code_sha256);
            let mut out = json!({
                "Configuration": v.to_aws_json(),
                "Code": {"RepositoryType": "S3", "Location": format!("file://{}", location.display())},
            });
            if let Some(r) = reserved {
                out["Concurrency"] = json!({"ReservedConcurrentExecutions": r});
            }
            ok(out)
        }
        (&Method::GET, ["2015-03-31", "functions", function, "configuration"]) => {
            let (v, _) = host.get_function(&region, function, qualifier.as_deref())?;
            ok(v.to_aws_json())
        }
        (&Method::GET, ["2015-03-31", "functions", function, "versions"]) => {
            let name = function_name(function)?;
            let vs: Vec<Value> = host
                .list_versions(&region, &name)?
                .iter()
                .map(|v| v.to_aws_json())
                .collect();
            ok(json!({"Versions": vs}))
        }
        (&Method::POST, ["2015-03-31", "functions", function, "versions"]) => {
            let name = function_name(function)?;
            let body = body_json(&read_body(req, 1 << 20).await?)?;
            let v = host.publish_version(&region, &name, body.get("Description").and_then(Value::as_str))?;
            created(v.to_aws_json())
        }
        (&Method::GET, ["2015-03-31", "functions", function, "aliases"]) => {
            let name = function_name(function)?;
            let mut aliases = host.list_aliases(&region, &name)?;
            if let Some(v) = params.get("FunctionVersion") {
                aliases.retain(|a| &a.function_version == v);
            }
            let list: Vec<Value> = aliases.iter().map(|a| a.to_aws_json()).collect();
            ok(json!({"Aliases": list}))
        }
        (&Method::POST, ["2015-03-31", "functions", function, "aliases"]) => {
            let name = function_name(function)?;
            let body = body_json(&read_body(req, 1 << 20).await?)?;
            let field = |k: &str| body.get(k).and_then(Value::as_str).map(str::to_string);
            let alias = field("Name").ok_or_else(|| LambdaError::InvalidParameterValue("Name is required".into()))?;
            let version = field("FunctionVersion")
                .ok_or_else(|| LambdaError::InvalidParameterValue("FunctionVersion is required".into()))?;
            let weights = weights_from(&body)?.unwrap_or_default();
            let a = host.create_alias(
                &region,
                &name,
                &alias,
                &version,
                weights,
                &field("Description").unwrap_or_default(),
            )?;
            created(a.to_aws_json())
        }
        (&Method::GET, ["2015-03-31", "functions", function, "aliases", alias]) => {
            let name = function_name(function)?;
            ok(host.get_alias(&region, &name, alias)?.to_aws_json())
        }
        (&Method::PUT, ["2015-03-31", "functions", function, "aliases", alias]) => {
            let name = function_name(function)?;
            let alias = alias.to_string();
            let body = body_json(&read_body(req, 1 << 20).await?)?;
            let field = |k: &str| body.get(k).and_then(Value::as_str).map(str::to_string);
            let a = host.update_alias(
                &region,
                &name,
                &alias,
                field("FunctionVersion").as_deref(),
                weights_from(&body)?,
                field("Description").as_deref(),
            )?;
            ok(a.to_aws_json())
        }
        _ => Err(LambdaError::UnknownOperation(format!("{method} {path}"))),
    }
}

/// CreateFunction and UpdateFunctionCode carry the zip base64-encoded in JSON (Lambda accepts up to
/// 50 MB zipped this way).
const MAX_CODE_REQUEST_BYTES: usize = 70 * 1024 * 1024;

fn empty(status: StatusCode, request_id: &str) -> Response<Body> {
    Response::builder()
        .status(status)
        .header("x-amzn-RequestId", request_id)
        .body(Full::new(Bytes::new()))
        .expect("valid response")
}

fn str_field(v: &Value, key: &str) -> Result<Option<String>, LambdaError> {
    match v.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(_) => Err(LambdaError::InvalidParameterValue(format!("{key} must be a string"))),
    }
}

fn u32_field(v: &Value, key: &str) -> Result<Option<u32>, LambdaError> {
    match v.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(n) => n
            .as_u64()
            .and_then(|n| u32::try_from(n).ok())
            .map(Some)
            .ok_or_else(|| LambdaError::InvalidParameterValue(format!("{key} must be a whole number"))),
    }
}

fn env_field(v: &Value) -> Result<Option<BTreeMap<String, String>>, LambdaError> {
    let Some(vars) = v.get("Environment").and_then(|e| e.get("Variables")) else {
        return Ok(None);
    };
    let map = vars
        .as_object()
        .ok_or_else(|| LambdaError::InvalidParameterValue("Environment.Variables must be a map".into()))?;
    map.iter()
        .map(|(k, v)| match v.as_str() {
            Some(s) => Ok((k.clone(), s.to_string())),
            None => Err(LambdaError::InvalidParameterValue(format!(
                "environment variable {k} must be a string"
            ))),
        })
        .collect::<Result<_, _>>()
        .map(Some)
}

/// `{"ZipFile": "<base64>"}`; packages in S3 are not available locally.
fn zip_field(code: Option<&Value>) -> Result<CodeSource, LambdaError> {
    use base64::Engine as _;
    let code = code.ok_or_else(|| LambdaError::InvalidParameterValue("Code is required".into()))?;
    if code.get("S3Bucket").is_some() || code.get("ImageUri").is_some() {
        return Err(LambdaError::InvalidParameterValue(
            "local regions take code as ZipFile only (S3 and container images are not supported)".into(),
        ));
    }
    let b64 = code
        .get("ZipFile")
        .and_then(Value::as_str)
        .ok_or_else(|| LambdaError::InvalidParameterValue("Code.ZipFile is required".into()))?;
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(b64)
        .map_err(|e| LambdaError::InvalidParameterValue(format!("ZipFile is not base64: {e}")))?;
    Ok(CodeSource::ZipBytes(bytes))
}

fn function_name(function: &str) -> Result<String, LambdaError> {
    Ok(crate::model::FunctionRef::parse(function)?.name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn region_comes_from_the_credential_scope() {
        let h = "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20240101/eu-west-1/lambda/aws4_request, SignedHeaders=host;x-amz-date, Signature=abc";
        assert_eq!(region_from_authorization(h), Some("eu-west-1"));
        assert_eq!(region_from_authorization("Bearer x"), None);
        assert_eq!(percent_decode("arn%3Aaws%3Alambda"), "arn:aws:lambda");
        assert_eq!(percent_decode("%24LATEST"), "$LATEST");
        assert_eq!(percent_decode("100%"), "100%");
    }
}
