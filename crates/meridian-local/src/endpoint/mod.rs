//! The local regions' AWS endpoint: one HTTP port that serves the AWS APIs build and deploy
//! scripts call (S3, CloudFormation, SSM Parameter Store, Secrets Manager, STS) beside the Lambda
//! API, so that the AWS CLI, the SDKs and the SAM CLI work against local regions unmodified.
//!
//! A request is routed as AWS routes it: by the service and region of its SigV4 credential scope
//! (`Credential=KEY/DATE/REGION/SERVICE/aws4_request`). An unsigned request is routed by its shape
//! (`X-Amz-Target`, Lambda's versioned paths, a query-protocol form) and goes to the default
//! region. Every operation not served gets AWS's error shape for its protocol, with a message that
//! names what local regions serve (docs/local-regions.md).
//!
//! Unsigned requests addressed to an HTTP API (`{api-id}.execute-api.localhost`, or the path
//! `/_apis/{api-id}/...`) are served by `apigw.rs`, before anything else.

pub mod apigw;
mod cloudformation;
mod cloudwatch;
mod query;
pub mod s3;
mod sigv4;
mod ssm;
mod sts;

use crate::credentials::{ACCESS_KEY_ID, SECRET_ACCESS_KEY};
use crate::host::LambdaHost;
use crate::invoke_api::InvokeApiConfig;
use bytes::Bytes;
use http_body_util::combinators::UnsyncBoxBody;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use meridian_core::RegionId;
use std::path::PathBuf;
use std::sync::{Arc, OnceLock};

/// Every response's body.
pub type Body = UnsyncBoxBody<Bytes, Box<dyn std::error::Error + Send + Sync>>;

pub(crate) fn full(b: impl Into<Bytes>) -> Body {
    Full::new(b.into()).map_err(|never| match never {}).boxed_unsync()
}

/// How the endpoint behaves.
#[derive(Clone, Debug)]
pub struct EndpointConfig {
    /// The region of unsigned requests.
    pub default_region: RegionId,
    /// Refuse unsigned requests and credentials other than the local ones
    /// (`meridian serve --require-auth`).
    pub require_auth: bool,
}

/// The endpoint: cheap to clone, shared by every connection.
#[derive(Clone)]
pub struct Endpoint {
    inner: Arc<Inner>,
}

struct Inner {
    host: LambdaHost,
    cfg: EndpointConfig,
    data_dir: PathBuf,
    s3: s3s::service::S3Service,
    secrets: OnceLock<Result<meridian_buildspec::SecretStore, String>>,
    stacks: OnceLock<Result<crate::stacks::LocalStacks, String>>,
}

/// S3 accepts the local credentials only: it checks signatures (the protocol signs chunked
/// uploads chunk by chunk).
struct LocalAuth;

#[async_trait::async_trait]
impl s3s::auth::S3Auth for LocalAuth {
    async fn get_secret_key(&self, access_key: &str) -> s3s::S3Result<s3s::auth::SecretKey> {
        if access_key == ACCESS_KEY_ID {
            Ok(SECRET_ACCESS_KEY.into())
        } else {
            Err(s3s::S3Error::with_message(
                s3s::S3ErrorCode::InvalidAccessKeyId,
                format!("The AWS Access Key Id you provided does not exist in our records (`{access_key}`): local regions take the credentials `meridian credentials` prints"),
            ))
        }
    }
}

/// Without `--require-auth`, unsigned requests are served too.
struct Access {
    require_auth: bool,
}

#[async_trait::async_trait]
impl s3s::access::S3Access for Access {
    async fn check(&self, cx: &mut s3s::access::S3AccessContext<'_>) -> s3s::S3Result<()> {
        if self.require_auth && cx.credentials().is_none() {
            return Err(s3s::S3Error::with_message(
                s3s::S3ErrorCode::AccessDenied,
                "Access Denied: this endpoint requires signed requests (meridian serve --require-auth); sign with the credentials `meridian credentials` prints",
            ));
        }
        Ok(())
    }
}

/// Path-style requests (`http://127.0.0.1:PORT/bucket/key`), and virtual-hosted ones addressed to
/// `BUCKET.s3.localhost` or `BUCKET.localhost`.
struct Hosts;

impl s3s::host::S3Host for Hosts {
    fn parse_host_header<'a>(&'a self, host: &'a str) -> s3s::S3Result<s3s::host::VirtualHost<'a>> {
        let name = host.rsplit_once(':').map(|(h, _)| h).unwrap_or(host);
        for suffix in [".s3.localhost", ".localhost"] {
            if let Some(bucket) = name.strip_suffix(suffix) {
                if !bucket.is_empty() {
                    return Ok(s3s::host::VirtualHost::new(&suffix[1..]).with_bucket(bucket));
                }
            }
        }
        Ok(s3s::host::VirtualHost::new(host))
    }
}

/// A request's SigV4 credential scope.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Scope {
    pub access_key: String,
    pub region: String,
    pub service: String,
}

/// The credential scope of a signed request: from its `Authorization` header, or a presigned
/// URL's `X-Amz-Credential`.
pub fn scope_of(headers: &hyper::HeaderMap, query: Option<&str>) -> Option<Scope> {
    let cred = match headers.get(hyper::header::AUTHORIZATION).and_then(|h| h.to_str().ok()) {
        Some(h) if h.starts_with("AWS4-HMAC-SHA256") => {
            h.split("Credential=").nth(1)?.split([',', ' ']).next()?.to_string()
        }
        _ => form_urlencoded::parse(query?.as_bytes())
            .find(|(k, _)| k == "X-Amz-Credential")
            .map(|(_, v)| v.into_owned())?,
    };
    let mut parts = cred.split('/');
    let access_key = parts.next()?.to_string();
    let _date = parts.next()?;
    let region = parts.next()?.to_string();
    let service = parts.next()?.to_string();
    Some(Scope {
        access_key,
        region,
        service,
    })
}

/// The AWS service an unsigned request is for, by its shape.
fn service_by_shape(req: &Request<Incoming>) -> &'static str {
    let target = req
        .headers()
        .get("x-amz-target")
        .and_then(|t| t.to_str().ok())
        .unwrap_or("");
    if target.starts_with("AmazonSSM.") {
        return "ssm";
    }
    if target.starts_with("secretsmanager.") {
        return "secretsmanager";
    }
    if target.starts_with("CodeDeploy_") {
        return "codedeploy";
    }
    let path = req.uri().path();
    if target.starts_with("GraniteServiceVersion20100801.")
        || path.starts_with("/service/GraniteServiceVersion20100801/")
    {
        return "monitoring";
    }
    // Lambda's REST paths start with their API version.
    if path.len() > 11
        && path.as_bytes()[0] == b'/'
        && path[1..5].bytes().all(|b| b.is_ascii_digit())
        && path.as_bytes()[5] == b'-'
    {
        return "lambda";
    }
    let form = req
        .headers()
        .get(hyper::header::CONTENT_TYPE)
        .and_then(|c| c.to_str().ok())
        .is_some_and(|c| c.starts_with("application/x-www-form-urlencoded"));
    if req.method() == hyper::Method::POST && path == "/" && form {
        return "query";
    }
    "s3"
}

impl Endpoint {
    pub fn new(host: LambdaHost, cfg: EndpointConfig) -> Endpoint {
        let data_dir = host.config().data_dir.clone();
        let mut b = s3s::service::S3ServiceBuilder::new(s3::LocalS3 {
            data_dir: data_dir.clone(),
            default_region: cfg.default_region.to_string(),
        });
        b.set_auth(LocalAuth);
        b.set_access(Access {
            require_auth: cfg.require_auth,
        });
        b.set_host(Hosts);
        Endpoint {
            inner: Arc::new(Inner {
                host,
                data_dir,
                s3: b.build(),
                secrets: OnceLock::new(),
                stacks: OnceLock::new(),
                cfg,
            }),
        }
    }

    pub fn host(&self) -> &LambdaHost {
        &self.inner.host
    }

    pub(crate) fn secrets(&self) -> Result<&meridian_buildspec::SecretStore, String> {
        self.inner
            .secrets
            .get_or_init(|| meridian_buildspec::SecretStore::open(&self.inner.data_dir).map_err(|e| e.to_string()))
            .as_ref()
            .map_err(Clone::clone)
    }

    /// The local stacks, opened (and recovered) on first use, over this endpoint's Lambda host.
    pub(crate) fn stacks(&self) -> Result<&crate::stacks::LocalStacks, String> {
        self.inner
            .stacks
            .get_or_init(|| {
                crate::backend::open_stacks_with_host(self.inner.host.clone(), &self.inner.data_dir, &|l| {
                    eprintln!("{l}")
                })
            })
            .as_ref()
            .map_err(Clone::clone)
    }

    pub(crate) fn data_dir(&self) -> &std::path::Path {
        &self.inner.data_dir
    }

    /// Serves on `listener` until the task is dropped.
    pub async fn serve(self, listener: tokio::net::TcpListener) {
        loop {
            let (stream, peer) = match listener.accept().await {
                Ok(s) => s,
                Err(e) => {
                    eprintln!("warning: failed to accept a connection to the local endpoint: {e}");
                    tokio::time::sleep(std::time::Duration::from_millis(10)).await;
                    continue;
                }
            };
            let _ = stream.set_nodelay(true);
            let this = self.clone();
            // A client that connects and sends nothing is dropped after the header timeout; a
            // request being served is not timed out.
            let header_timeout = this.inner.host.config().http_header_timeout;
            tokio::spawn(async move {
                let svc = hyper::service::service_fn(move |mut req: Request<Incoming>| {
                    // The client's address, for HTTP APIs' `sourceIp`.
                    req.extensions_mut().insert(peer);
                    let this = this.clone();
                    async move { Ok::<_, std::convert::Infallible>(this.handle(req).await) }
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .timer(hyper_util::rt::TokioTimer::new())
                    .header_read_timeout(header_timeout)
                    .serve_connection(TokioIo::new(stream), svc)
                    .await;
            });
        }
    }

    /// Answers one request.
    pub async fn handle(&self, mut req: Request<Incoming>) -> Response<Body> {
        let scope = scope_of(req.headers(), req.uri().query());
        let request_id = crate::host::new_request_id(&IDS);
        // A request to an HTTP API (by its host or `/_apis/{id}`) is not an AWS API call.
        if scope.is_none() {
            if let Some((api, path)) = apigw::addressed(&req) {
                return apigw::handle(self, &api, &path, req, &request_id).await;
            }
        }
        let service = match &scope {
            Some(s) => s.service.clone(),
            None => service_by_shape(&req).to_string(),
        };
        let region = scope
            .as_ref()
            .map(|s| s.region.clone())
            .unwrap_or_else(|| self.inner.cfg.default_region.to_string());
        if service == "s3" {
            if let Some(s) = &scope {
                // Without --require-auth, other credentials are served as unsigned requests (their
                // signatures cannot be checked without their secret), unless the body is signed
                // chunk by chunk.
                let streaming_signed = req
                    .headers()
                    .get("x-amz-content-sha256")
                    .and_then(|v| v.to_str().ok())
                    .is_some_and(|v| v.starts_with("STREAMING-AWS4-HMAC-SHA256"));
                if s.access_key != ACCESS_KEY_ID && !self.inner.cfg.require_auth && !streaming_signed {
                    req.headers_mut().remove(hyper::header::AUTHORIZATION);
                }
            }
            req.extensions_mut().insert(s3::RequestRegion(region));
            return match hyper::service::Service::call(&self.inner.s3, req).await {
                Ok(resp) => resp.map(|b| b.boxed_unsync()),
                Err(e) => query::plain(StatusCode::INTERNAL_SERVER_ERROR, &format!("internal error: {e:?}")),
            };
        }
        if self.inner.cfg.require_auth {
            match &scope {
                None => {
                    return query::refuse(&service, "MissingAuthenticationToken", "Request is missing Authentication Token: this endpoint requires signed requests (meridian serve --require-auth)", &request_id)
                }
                Some(s) if s.access_key != ACCESS_KEY_ID => {
                    return query::refuse(&service, "UnrecognizedClientException", &format!("The security token included in the request is invalid: local regions take the credentials `meridian credentials` prints, not `{}`", s.access_key), &request_id)
                }
                Some(_) => {}
            }
        }
        match service.as_str() {
            "lambda" | "codedeploy" => {
                let cfg = InvokeApiConfig {
                    default_region: self.inner.cfg.default_region.clone(),
                };
                crate::invoke_api::handle(&self.inner.host, &cfg, req).await.map(|b| b.map_err(|never| match never {}).boxed_unsync())
            }
            "ssm" | "secretsmanager" | "sts" | "cloudformation" | "query" | "monitoring" => {
                let (parts, body) = req.into_parts();
                let body = match query::read_body(body, query::MAX_BODY).await {
                    Ok(b) => b,
                    Err((status, m)) => {
                        return match service.as_str() {
                            "ssm" | "secretsmanager" | "monitoring" => query::json_error(status, "ValidationException", &m, &request_id),
                            _ => query::error(&service, status, "InvalidRequest", &m, &request_id),
                        }
                    }
                };
                if self.inner.cfg.require_auth {
                    if let Err((code, m)) = sigv4::verify(parts.method.as_str(), parts.uri.path(), parts.uri.query(), &parts.headers, &body, SECRET_ACCESS_KEY) {
                        return query::refuse(&service, code, &m, &request_id);
                    }
                }
                if service == "monitoring" {
                    let target = parts.headers.get("x-amz-target").and_then(|t| t.to_str().ok());
                    return match cloudwatch::operation(parts.uri.path(), target) {
                        Some((protocol, op)) => cloudwatch::handle(self, &region, protocol, &op, body, &request_id).await,
                        None => query::refuse(
                            "monitoring",
                            "InvalidAction",
                            "local regions serve CloudWatch over the RPC v2 CBOR and JSON 1.0 protocols (current SDKs and CLIs), not the query protocol",
                            &request_id,
                        ),
                    };
                }
                if service == "ssm" || service == "secretsmanager" {
                    let target = parts.headers.get("x-amz-target").and_then(|t| t.to_str().ok()).unwrap_or("");
                    ssm::handle(self, &service, &region, target, body, &request_id).await
                } else {
                    query::handle(self, &service, &region, body, &request_id).await
                }
            }
            other => query::refuse(
                other,
                "UnknownOperationException",
                &format!("local regions do not serve the `{other}` API; they serve S3, CloudFormation, SSM Parameter Store, Secrets Manager, STS, CloudWatch and Lambda (docs/local-regions.md)"),
                &request_id,
            ),
        }
    }
}

static IDS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_credential_scope_names_service_and_region() {
        let mut h = hyper::HeaderMap::new();
        h.insert(
            hyper::header::AUTHORIZATION,
            "AWS4-HMAC-SHA256 Credential=MERIDIANLOCAL/20261130/eu-west-1/s3/aws4_request, SignedHeaders=host, Signature=abc"
                .parse()
                .unwrap(),
        );
        assert_eq!(
            scope_of(&h, None),
            Some(Scope {
                access_key: "MERIDIANLOCAL".into(),
                region: "eu-west-1".into(),
                service: "s3".into()
            })
        );
        let q = "X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=AK%2F20261130%2Fap-southeast-2%2Fs3%2Faws4_request";
        assert_eq!(
            scope_of(&hyper::HeaderMap::new(), Some(q)).unwrap().region,
            "ap-southeast-2"
        );
        assert_eq!(scope_of(&hyper::HeaderMap::new(), Some("a=b")), None);
    }
}
