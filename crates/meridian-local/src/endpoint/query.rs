//! The AWS query protocol (form-encoded `Action=...&Version=...` requests, XML answers) that STS
//! and CloudFormation speak, the JSON 1.1 protocol's answers, and the error shapes of both.

use super::{full, Body, Endpoint};
use bytes::Bytes;
use http_body_util::{BodyExt, Limited};
use hyper::body::Incoming;
use hyper::{Response, StatusCode};
use std::collections::BTreeMap;

/// The largest query or JSON request body served (CloudFormation's own limit on a template body
/// is 51,200 bytes; parameters and tags add little).
pub const MAX_BODY: usize = 1024 * 1024;

pub fn plain(status: StatusCode, text: &str) -> Response<Body> {
    Response::builder()
        .status(status)
        .header("Content-Type", "text/plain")
        .body(full(text.to_string()))
        .expect("valid response")
}

/// Reads a body of at most `limit` bytes; a client that stops sending is given up on after the
/// host's header timeout without a byte.
pub async fn read_body(body: Incoming, limit: usize) -> Result<Bytes, (StatusCode, String)> {
    let mut body = Limited::new(body, limit + 1);
    let mut out = bytes::BytesMut::new();
    loop {
        let frame = match tokio::time::timeout(crate::host::HTTP_HEADER_TIMEOUT, body.frame()).await {
            Ok(Some(frame)) => frame,
            Ok(None) => return Ok(out.freeze()),
            Err(_) => {
                return Err((
                    StatusCode::BAD_REQUEST,
                    format!("the request body stopped arriving after {} bytes", out.len()),
                ))
            }
        };
        match frame {
            Ok(f) => {
                if let Ok(data) = f.into_data() {
                    out.extend_from_slice(&data);
                }
            }
            Err(e) if e.is::<http_body_util::LengthLimitError>() => {
                return Err((
                    StatusCode::PAYLOAD_TOO_LARGE,
                    format!("the request body is larger than the {limit} bytes this API takes"),
                ))
            }
            Err(e) => return Err((StatusCode::BAD_REQUEST, format!("could not read the request body: {e}"))),
        }
    }
}

/// XML text, escaped.
pub fn esc(s: &str) -> String {
    let mut o = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => o.push_str("&amp;"),
            '<' => o.push_str("&lt;"),
            '>' => o.push_str("&gt;"),
            '"' => o.push_str("&quot;"),
            '\'' => o.push_str("&apos;"),
            '\r' => o.push_str("&#xD;"),
            c => o.push(c),
        }
    }
    o
}

/// `<Name>text</Name>`, escaped.
pub fn el(name: &str, text: &str) -> String {
    format!("<{name}>{}</{name}>", esc(text))
}

fn xmlns(service: &str) -> &'static str {
    match service {
        "sts" => "https://sts.amazonaws.com/doc/2011-06-15/",
        _ => "http://cloudformation.amazonaws.com/doc/2010-05-15/",
    }
}

/// A query-protocol answer: `<OpResponse><OpResult>inner</OpResult><ResponseMetadata>…`.
pub fn ok(service: &str, op: &str, inner: &str, request_id: &str) -> Response<Body> {
    let body = format!(
        "<{op}Response xmlns=\"{}\"><{op}Result>{inner}</{op}Result><ResponseMetadata><RequestId>{request_id}</RequestId></ResponseMetadata></{op}Response>",
        xmlns(service)
    );
    Response::builder()
        .status(StatusCode::OK)
        .header("Content-Type", "text/xml")
        .header("x-amzn-RequestId", request_id)
        .body(full(body))
        .expect("valid response")
}

/// A query-protocol error (`Sender` for 4xx).
pub fn error(service: &str, status: StatusCode, code: &str, message: &str, request_id: &str) -> Response<Body> {
    let kind = if status.is_server_error() { "Receiver" } else { "Sender" };
    let body = format!(
        "<ErrorResponse xmlns=\"{}\"><Error><Type>{kind}</Type><Code>{}</Code><Message>{}</Message></Error><RequestId>{request_id}</RequestId></ErrorResponse>",
        xmlns(service),
        esc(code),
        esc(message)
    );
    Response::builder()
        .status(status)
        .header("Content-Type", "text/xml")
        .header("x-amzn-RequestId", request_id)
        .body(full(body))
        .expect("valid response")
}

/// A JSON-protocol answer.
pub fn json_ok(v: &serde_json::Value, request_id: &str) -> Response<Body> {
    Response::builder()
        .status(StatusCode::OK)
        .header("Content-Type", "application/x-amz-json-1.1")
        .header("x-amzn-RequestId", request_id)
        .body(full(v.to_string()))
        .expect("valid response")
}

/// A JSON-protocol error: `__type` and `message`, and `x-amzn-ErrorType`.
pub fn json_error(status: StatusCode, code: &str, message: &str, request_id: &str) -> Response<Body> {
    Response::builder()
        .status(status)
        .header("Content-Type", "application/x-amz-json-1.1")
        .header("x-amzn-RequestId", request_id)
        .header("x-amzn-ErrorType", code)
        .body(full(
            serde_json::json!({"__type": code, "message": message}).to_string(),
        ))
        .expect("valid response")
}

/// An error in the shape of `service`'s protocol.
pub fn refuse(service: &str, code: &str, message: &str, request_id: &str) -> Response<Body> {
    match service {
        "sts" | "cloudformation" | "query" => error(service, StatusCode::BAD_REQUEST, code, message, request_id),
        _ => json_error(StatusCode::BAD_REQUEST, code, message, request_id),
    }
}

/// A query request's parameters.
pub type Params = BTreeMap<String, String>;

/// The members of a query-protocol list (`Prefix.member.1`, `Prefix.member.2`, …), in order.
pub fn members(p: &Params, prefix: &str) -> Vec<String> {
    (1..)
        .map_while(|i| p.get(&format!("{prefix}.member.{i}")).cloned())
        .collect()
}

/// STS and CloudFormation.
pub async fn handle(ep: &Endpoint, service: &str, region: &str, body: Bytes, request_id: &str) -> Response<Body> {
    let params: Params = form_urlencoded::parse(&body).into_owned().collect();
    let Some(action) = params.get("Action").cloned() else {
        return error(
            service,
            StatusCode::BAD_REQUEST,
            "MissingAction",
            "The request must contain the parameter Action (a form-encoded query-protocol request)",
            request_id,
        );
    };
    let service = match (service, params.get("Version").map(String::as_str)) {
        ("query", Some("2011-06-15")) => "sts",
        ("query", Some("2010-05-15")) => "cloudformation",
        ("query", v) => {
            return error(
                "query",
                StatusCode::BAD_REQUEST,
                "InvalidAction",
                &format!("Could not tell the service of action `{action}` (Version {v:?}): sign the request, or use Version 2011-06-15 (STS) or 2010-05-15 (CloudFormation)"),
                request_id,
            )
        }
        (s, _) => s,
    };
    match service {
        "sts" => super::sts::handle(&action, &params, region, request_id),
        _ => super::cloudformation::handle(ep, &action, params, region, request_id).await,
    }
}
