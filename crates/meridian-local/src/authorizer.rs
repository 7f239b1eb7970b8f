//! Lambda authorizers of REST APIs in local regions, as API Gateway runs them: a method whose
//! `security` names a `token` or `request` authorizer of the Body (`x-amazon-apigateway-authorizer`
//! in `securityDefinitions`, or `components.securitySchemes`) calls the authorizer's function
//! before its own integration, with API Gateway's authorizer event; the policy it returns
//! (`Allow`/`Deny` of `execute-api:Invoke` on the method's ARN) lets the request through or
//! answers 401/403 as API Gateway does, and its `principalId` and `context` reach the function in
//! `requestContext.authorizer`.
//!
//! An authorizer's answer is cached for `authorizerResultTtlInSeconds` (300 unless said; 0: no
//! cache) by its identity (the token, or the identity sources' values), and a cached policy is
//! applied again to the next method asked for, as API Gateway applies it. Cognito user pool and
//! IAM authorizers are recorded, not enforced.
//!
//! No I/O: [`crate::endpoint`] invokes the function; this module builds the event and reads the
//! answer.

use crate::apigw::{function_of_uri, gateway_error, HttpAnswer};
use serde_json::{json, Map, Value};

/// A Lambda authorizer of a method.
#[derive(Debug, Clone, PartialEq)]
pub struct LambdaAuthorizer {
    pub name: String,
    pub function_arn: String,
    pub kind: AuthorizerKind,
    /// `authorizerResultTtlInSeconds`: how long an answer is reused for the same identity.
    pub ttl_seconds: u64,
    /// An HTTP API's authorizer: its payload format and whether it answers simply; `None` for a
    /// REST API's.
    pub http: Option<HttpAuthorizer>,
}

/// What an HTTP API's Lambda authorizer adds.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct HttpAuthorizer {
    /// `authorizerPayloadFormatVersion` 2.0 (else 1.0).
    pub v2: bool,
    /// `enableSimpleResponses`: `{"isAuthorized": bool, "context": {...}}` instead of a policy.
    pub simple: bool,
}

/// API Gateway's default `authorizerResultTtlInSeconds`, and its largest.
pub const DEFAULT_TTL_SECONDS: u64 = 300;
const MAX_TTL_SECONDS: u64 = 3600;

#[derive(Debug, Clone, PartialEq)]
pub enum AuthorizerKind {
    /// The token is the value of one header; the request is refused (401) without it, or when it
    /// does not match the validation expression.
    Token { header: String, validation: Option<String> },
    /// The identity sources (`method.request.header.X`, `method.request.querystring.q`): the
    /// request is refused (401) when one is missing.
    Request { sources: Vec<String> },
}

/// The Lambda authorizers a Body defines, by name (Cognito, IAM and others are left out).
pub fn authorizers_of_body(body: &Value) -> Result<Map<String, Value>, String> {
    let defs = body
        .get("securityDefinitions")
        .or_else(|| body.get("components").and_then(|c| c.get("securitySchemes")));
    let mut out = Map::new();
    for (name, def) in defs.and_then(Value::as_object).into_iter().flatten() {
        let Some(a) = def.get("x-amazon-apigateway-authorizer") else {
            continue;
        };
        let kind = a
            .get("type")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_ascii_lowercase();
        if kind != "token" && kind != "request" {
            continue;
        }
        out.insert(name.clone(), def.clone());
    }
    Ok(out)
}

/// The Lambda authorizer a method's `security` names, if any (`http`: of an HTTP API).
pub fn of_method(
    op: &Value,
    authorizers: &Map<String, Value>,
    at: &str,
    http: bool,
) -> Result<Option<LambdaAuthorizer>, String> {
    let Some(security) = op.get("security").and_then(Value::as_array) else {
        return Ok(None);
    };
    for entry in security {
        for name in entry.as_object().map(|m| m.keys()).into_iter().flatten() {
            let Some(def) = authorizers.get(name) else { continue };
            let a = &def["x-amazon-apigateway-authorizer"];
            let uri = match a.get("authorizerUri") {
                Some(Value::String(s)) => s.clone(),
                Some(other) => {
                    return Err(format!(
                        "{at}: the authorizerUri of authorizer {name} must be a string, found {other}"
                    ))
                }
                None => return Err(format!("{at}: authorizer {name} has no authorizerUri")),
            };
            let function_arn = function_of_uri(&uri)?;
            let kind = if a
                .get("type")
                .and_then(Value::as_str)
                .is_some_and(|t| t.eq_ignore_ascii_case("token"))
            {
                AuthorizerKind::Token {
                    header: def
                        .get("name")
                        .and_then(Value::as_str)
                        .unwrap_or("Authorization")
                        .to_string(),
                    validation: a
                        .get("identityValidationExpression")
                        .and_then(Value::as_str)
                        .map(str::to_string),
                }
            } else {
                // a comma-separated string (REST), or a list (HTTP)
                let sources = match a.get("identitySource") {
                    Some(Value::Array(l)) => l.iter().filter_map(Value::as_str).map(str::to_string).collect(),
                    Some(Value::String(s)) => s.split(',').map(|s| s.trim().to_string()).collect(),
                    _ => Vec::new(),
                };
                AuthorizerKind::Request {
                    sources: sources.into_iter().filter(|s: &String| !s.is_empty()).collect(),
                }
            };
            let http = http.then(|| HttpAuthorizer {
                v2: a
                    .get("authorizerPayloadFormatVersion")
                    .map(|v| v.as_str().map(str::to_string).unwrap_or_else(|| v.to_string()))
                    .is_some_and(|v| v.starts_with('2')),
                simple: a.get("enableSimpleResponses") == Some(&Value::Bool(true)),
            });
            let ttl_seconds = match a.get("authorizerResultTtlInSeconds") {
                None | Some(Value::Null) => DEFAULT_TTL_SECONDS,
                Some(v) => v
                    .as_u64()
                    .or_else(|| v.as_str().and_then(|t| t.trim().parse().ok()))
                    .ok_or_else(|| format!("{at}: authorizerResultTtlInSeconds of authorizer {name} must be a number of seconds, found {v}"))?
                    .min(MAX_TTL_SECONDS),
            };
            return Ok(Some(LambdaAuthorizer {
                name: name.clone(),
                function_arn,
                kind,
                ttl_seconds,
                http,
            }));
        }
    }
    Ok(None)
}

/// API Gateway's 401.
pub fn unauthorized() -> HttpAnswer {
    gateway_error(401, "Unauthorized")
}

/// API Gateway's 403 for a policy that does not allow the method.
pub fn denied(explicit: bool) -> HttpAnswer {
    let message = if explicit {
        "User is not authorized to access this resource with an explicit deny"
    } else {
        "User is not authorized to access this resource"
    };
    HttpAnswer {
        status: 403,
        headers: vec![("content-type".into(), "application/json".into())],
        body: json!({"Message": message}).to_string().into_bytes(),
    }
}

/// What API Gateway answers when the authorizer does not allow the request.
fn refused(a: &LambdaAuthorizer, explicit: bool) -> HttpAnswer {
    match a.http {
        Some(_) => gateway_error(403, "Forbidden"),
        None => denied(explicit),
    }
}

/// What API Gateway answers when the authorizer fails.
pub fn failure(a: &LambdaAuthorizer) -> HttpAnswer {
    match a.http {
        Some(_) => gateway_error(500, "Internal Server Error"),
        None => failed(),
    }
}

/// API Gateway's 500 for an authorizer that failed or answered something else than a policy.
pub fn failed() -> HttpAnswer {
    HttpAnswer {
        status: 500,
        headers: vec![
            ("content-type".into(), "application/json".into()),
            ("x-amzn-errortype".into(), "AuthorizerConfigurationException".into()),
        ],
        body: json!({"message": null}).to_string().into_bytes(),
    }
}

/// The authorizer's event for a request and the request's identity (what its answer is cached
/// by), or the answer when the request lacks its identity. `proxy_event` is the REST proxy event
/// of the request (a request authorizer gets its fields).
pub fn event(
    a: &LambdaAuthorizer,
    method_arn: &str,
    headers: &[(String, String)],
    proxy_event: &Value,
) -> Result<(Value, String), HttpAnswer> {
    let header = |name: &str| {
        headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.clone())
    };
    match &a.kind {
        AuthorizerKind::Token {
            header: name,
            validation,
        } => {
            let Some(token) = header(name).filter(|t| !t.is_empty()) else {
                return Err(unauthorized());
            };
            if let Some(expr) = validation {
                let matches = regex::Regex::new(&format!("^(?:{expr})$"))
                    .map(|r| r.is_match(&token))
                    .unwrap_or(false);
                if !matches {
                    return Err(unauthorized());
                }
            }
            let e = json!({"type": "TOKEN", "authorizationToken": token, "methodArn": method_arn});
            Ok((e, token))
        }
        AuthorizerKind::Request { sources } => {
            let mut identity = Vec::new();
            for s in sources {
                let header_name = s
                    .strip_prefix("method.request.header.")
                    .or_else(|| s.strip_prefix("$request.header."));
                let query_name = s
                    .strip_prefix("method.request.querystring.")
                    .or_else(|| s.strip_prefix("$request.querystring."));
                let value = if let Some(h) = header_name {
                    header(h).filter(|v| !v.is_empty())
                } else if let Some(q) = query_name {
                    proxy_event["queryStringParameters"]
                        .get(q)
                        .and_then(Value::as_str)
                        .map(str::to_string)
                } else {
                    Some(String::new())
                };
                let Some(value) = value else {
                    return Err(unauthorized());
                };
                identity.push(value);
            }
            let mut e = proxy_event.clone();
            if let Some(m) = e.as_object_mut() {
                m.remove("body");
                m.remove("isBase64Encoded");
                m.insert("type".into(), json!("REQUEST"));
                match a.http {
                    // HTTP APIs: the route's ARN and the identity's values
                    Some(h) if h.v2 => {
                        m.insert("routeArn".into(), json!(method_arn));
                        m.insert("identitySource".into(), json!(identity));
                    }
                    Some(_) => {
                        m.insert("methodArn".into(), json!(method_arn));
                        m.insert("identitySource".into(), json!(identity.join(",")));
                    }
                    None => {
                        m.insert("methodArn".into(), json!(method_arn));
                    }
                }
            }
            // without identity sources there is nothing to cache an answer by
            let key = if sources.is_empty() {
                String::new()
            } else {
                identity.join("\u{0}")
            };
            Ok((e, key))
        }
    }
}

/// Authorizer answers by (API, authorizer, identity): when they were given, and the answer.
type Answers = std::collections::HashMap<(String, String, String), (std::time::Instant, Vec<u8>)>;

/// The answers cached in this process (at most this many; the cache starts afresh when full),
/// each at most `MAX_CACHED_ANSWER` bytes, by the SHA-256 of the identity: a bounded amount of
/// memory, whatever tokens clients send.
const MAX_CACHED: usize = 2_000;
const MAX_CACHED_ANSWER: usize = 16 * 1024;

fn cache_key(api: &str, a: &LambdaAuthorizer, identity: &str) -> (String, String, String) {
    (
        api.to_string(),
        a.name.clone(),
        meridian_core::Digest::of(identity.as_bytes()).hex(),
    )
}

fn answers() -> &'static std::sync::Mutex<Answers> {
    static CACHE: std::sync::OnceLock<std::sync::Mutex<Answers>> = std::sync::OnceLock::new();
    CACHE.get_or_init(Default::default)
}

/// A cached answer of the authorizer for this identity, still within its TTL.
pub fn cached(api: &str, a: &LambdaAuthorizer, identity: &str) -> Option<Vec<u8>> {
    if a.ttl_seconds == 0 || identity.is_empty() {
        return None;
    }
    let key = cache_key(api, a, identity);
    let cache = answers().lock().unwrap_or_else(|e| e.into_inner());
    cache
        .get(&key)
        .filter(|(at, _)| at.elapsed() < std::time::Duration::from_secs(a.ttl_seconds))
        .map(|(_, payload)| payload.clone())
}

/// Keeps the authorizer's answer (a policy) for this identity.
pub fn remember(api: &str, a: &LambdaAuthorizer, identity: &str, payload: &[u8]) {
    if a.ttl_seconds == 0 || identity.is_empty() || payload.len() > MAX_CACHED_ANSWER {
        return;
    }
    let mut cache = answers().lock().unwrap_or_else(|e| e.into_inner());
    if cache.len() >= MAX_CACHED {
        // the expired ones first; all of them only when none has expired
        cache.retain(|_, (at, _)| at.elapsed() < std::time::Duration::from_secs(MAX_TTL_SECONDS));
        if cache.len() >= MAX_CACHED {
            cache.clear();
        }
    }
    cache.insert(
        cache_key(api, a, identity),
        (std::time::Instant::now(), payload.to_vec()),
    );
}

/// `*` and `?` of an IAM resource pattern.
fn resource_matches(pattern: &str, arn: &str) -> bool {
    let mut re = String::from("^");
    for c in pattern.chars() {
        match c {
            '*' => re.push_str(".*"),
            '?' => re.push('.'),
            other => re.push_str(&regex::escape(&other.to_string())),
        }
    }
    re.push('$');
    regex::Regex::new(&re).map(|r| r.is_match(arn)).unwrap_or(false)
}

fn list(v: Option<&Value>) -> Vec<String> {
    match v {
        Some(Value::String(s)) => vec![s.clone()],
        Some(Value::Array(a)) => a.iter().filter_map(Value::as_str).map(str::to_string).collect(),
        _ => Vec::new(),
    }
}

/// Reads the authorizer's answer: the `requestContext.authorizer` for the function when its
/// policy (or, answering simply, `isAuthorized`) allows the method, else API Gateway's answer.
pub fn decide(a: &LambdaAuthorizer, payload: &[u8], method_arn: &str) -> Result<Value, HttpAnswer> {
    let Ok(answer) = serde_json::from_slice::<Value>(payload) else {
        return Err(failure(a));
    };
    if let Some(h) = a.http.filter(|h| h.simple && h.v2) {
        let _ = h;
        return match answer.get("isAuthorized") {
            Some(Value::Bool(true)) => Ok(json!({"lambda": answer.get("context").cloned().unwrap_or(json!({}))})),
            Some(Value::Bool(false)) => Err(refused(a, false)),
            _ => Err(failure(a)),
        };
    }
    let Some(policy) = answer.get("policyDocument") else {
        return Err(failure(a));
    };
    let statements = match policy.get("Statement") {
        Some(Value::Array(a)) => a.clone(),
        Some(s @ Value::Object(_)) => vec![s.clone()],
        _ => return Err(failure(a)),
    };
    let applies = |s: &Value| {
        let actions = list(s.get("Action"));
        let resources = list(s.get("Resource"));
        actions
            .iter()
            .any(|a| a == "*" || a.eq_ignore_ascii_case("execute-api:Invoke") || a == "execute-api:*")
            && resources.iter().any(|r| resource_matches(r, method_arn))
    };
    let effect = |s: &Value, e: &str| {
        s.get("Effect")
            .and_then(Value::as_str)
            .is_some_and(|x| x.eq_ignore_ascii_case(e))
    };
    if statements.iter().any(|s| effect(s, "Deny") && applies(s)) {
        return Err(refused(a, true));
    }
    if !statements.iter().any(|s| effect(s, "Allow") && applies(s)) {
        return Err(refused(a, false));
    }
    if a.http.is_some_and(|h| h.v2) {
        // a 2.0 authorizer's policy answer: its context under `lambda`
        let mut lambda = answer.get("context").cloned().unwrap_or(json!({}));
        if let (Some(m), Some(p)) = (lambda.as_object_mut(), answer.get("principalId")) {
            m.entry("principalId").or_insert(p.clone());
        }
        return Ok(json!({"lambda": lambda}));
    }
    let mut context = Map::new();
    if let Some(c) = answer.get("context").and_then(Value::as_object) {
        for (k, v) in c {
            // API Gateway passes strings, numbers and booleans, as strings
            let v = match v {
                Value::String(s) => s.clone(),
                Value::Number(n) => n.to_string(),
                Value::Bool(b) => b.to_string(),
                _ => continue,
            };
            context.insert(k.clone(), json!(v));
        }
    }
    if let Some(p) = answer.get("principalId") {
        context.insert("principalId".into(), p.clone());
    }
    context.insert("integrationLatency".into(), json!(0));
    Ok(Value::Object(context))
}

#[cfg(test)]
mod tests {
    use super::*;

    const ARN: &str = "arn:aws:execute-api:us-east-1:123456789012:abc/prod/GET/items/7";

    fn policy(effect: &str, resource: &str) -> Vec<u8> {
        json!({"principalId": "user-1", "context": {"tier": "gold", "n": 3},
            "policyDocument": {"Version": "2012-10-17", "Statement": [
                {"Action": "execute-api:Invoke", "Effect": effect, "Resource": resource}]}})
        .to_string()
        .into_bytes()
    }

    fn rest(kind: AuthorizerKind) -> LambdaAuthorizer {
        LambdaAuthorizer {
            name: "T".into(),
            function_arn: "arn:aws:lambda:us-east-1:123456789012:function:auth".into(),
            kind,
            ttl_seconds: 0,
            http: None,
        }
    }

    #[test]
    fn an_allow_on_the_method_passes_the_context_on() {
        let a = rest(AuthorizerKind::Request { sources: vec![] });
        let ctx = decide(
            &a,
            &policy("Allow", "arn:aws:execute-api:us-east-1:123456789012:abc/prod/GET/*"),
            ARN,
        )
        .unwrap();
        assert_eq!(ctx["principalId"], "user-1");
        assert_eq!(ctx["tier"], "gold");
        assert_eq!(ctx["n"], "3");
    }

    #[test]
    fn a_deny_or_no_matching_allow_is_refused_and_garbage_fails() {
        let a = rest(AuthorizerKind::Request { sources: vec![] });
        assert_eq!(decide(&a, &policy("Deny", "*"), ARN).unwrap_err().status, 403);
        let other = decide(
            &a,
            &policy("Allow", "arn:aws:execute-api:us-east-1:123456789012:abc/prod/POST/*"),
            ARN,
        );
        let other = other.unwrap_err();
        assert_eq!(other.status, 403);
        assert!(String::from_utf8_lossy(&other.body).contains("not authorized"));
        assert_eq!(decide(&a, b"not json", ARN).unwrap_err().status, 500);
        assert_eq!(decide(&a, b"{}", ARN).unwrap_err().status, 500);
    }

    #[test]
    fn an_http_authorizers_simple_answer_decides_and_its_context_is_under_lambda() {
        let mut a = rest(AuthorizerKind::Request {
            sources: vec!["$request.header.Authorization".into()],
        });
        a.http = Some(HttpAuthorizer { v2: true, simple: true });
        let ok = decide(
            &a,
            br#"{"isAuthorized": true, "context": {"tier": "gold", "n": 3}}"#,
            ARN,
        )
        .unwrap();
        assert_eq!(ok, json!({"lambda": {"tier": "gold", "n": 3}}));
        let no = decide(&a, br#"{"isAuthorized": false}"#, ARN).unwrap_err();
        assert_eq!(
            (no.status, String::from_utf8_lossy(&no.body).contains("Forbidden")),
            (403, true)
        );
        assert_eq!(decide(&a, b"{}", ARN).unwrap_err().status, 500);
        // the identity source missing: 401 before the call; present: the 2.0 event
        assert_eq!(event(&a, ARN, &[], &json!({})).unwrap_err().status, 401);
        let h = [("authorization".to_string(), "t0k".to_string())];
        let (e, identity) = event(&a, ARN, &h, &json!({"version": "2.0", "body": "x"})).unwrap();
        assert_eq!(
            e,
            json!({"version": "2.0", "type": "REQUEST", "routeArn": ARN, "identitySource": ["t0k"]})
        );
        assert_eq!(identity, "t0k");
    }

    #[test]
    fn a_token_authorizer_needs_its_header_matching_the_expression() {
        let a = LambdaAuthorizer {
            name: "T".into(),
            function_arn: "arn:aws:lambda:us-east-1:123456789012:function:auth".into(),
            kind: AuthorizerKind::Token {
                header: "Authorization".into(),
                validation: Some("Bearer .+".into()),
            },
            ttl_seconds: 0,
            http: None,
        };
        assert_eq!(event(&a, ARN, &[], &json!({})).unwrap_err().status, 401);
        let bad = [("authorization".to_string(), "Basic x".to_string())];
        assert_eq!(event(&a, ARN, &bad, &json!({})).unwrap_err().status, 401);
        let good = [("authorization".to_string(), "Bearer abc".to_string())];
        let (e, identity) = event(&a, ARN, &good, &json!({})).unwrap();
        assert_eq!(
            e,
            json!({"type": "TOKEN", "authorizationToken": "Bearer abc", "methodArn": ARN})
        );
        assert_eq!(identity, "Bearer abc");
    }
}
