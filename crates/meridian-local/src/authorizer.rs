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

/// The Lambda authorizer a method's `security` names, if any.
pub fn of_method(op: &Value, authorizers: &Map<String, Value>, at: &str) -> Result<Option<LambdaAuthorizer>, String> {
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
                AuthorizerKind::Request {
                    sources: a
                        .get("identitySource")
                        .and_then(Value::as_str)
                        .unwrap_or_default()
                        .split(',')
                        .map(|s| s.trim().to_string())
                        .filter(|s| !s.is_empty())
                        .collect(),
                }
            };
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
                let value = if let Some(h) = s.strip_prefix("method.request.header.") {
                    header(h).filter(|v| !v.is_empty())
                } else if let Some(q) = s.strip_prefix("method.request.querystring.") {
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
                m.insert("methodArn".into(), json!(method_arn));
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

/// The answers cached in this process (at most this many; the cache starts afresh when full).
const MAX_CACHED: usize = 10_000;

fn answers() -> &'static std::sync::Mutex<Answers> {
    static CACHE: std::sync::OnceLock<std::sync::Mutex<Answers>> = std::sync::OnceLock::new();
    CACHE.get_or_init(Default::default)
}

/// A cached answer of the authorizer for this identity, still within its TTL.
pub fn cached(api: &str, a: &LambdaAuthorizer, identity: &str) -> Option<Vec<u8>> {
    if a.ttl_seconds == 0 || identity.is_empty() {
        return None;
    }
    let key = (api.to_string(), a.name.clone(), identity.to_string());
    let cache = answers().lock().unwrap_or_else(|e| e.into_inner());
    cache
        .get(&key)
        .filter(|(at, _)| at.elapsed() < std::time::Duration::from_secs(a.ttl_seconds))
        .map(|(_, payload)| payload.clone())
}

/// Keeps the authorizer's answer (a policy) for this identity.
pub fn remember(api: &str, a: &LambdaAuthorizer, identity: &str, payload: &[u8]) {
    if a.ttl_seconds == 0 || identity.is_empty() {
        return;
    }
    let mut cache = answers().lock().unwrap_or_else(|e| e.into_inner());
    if cache.len() >= MAX_CACHED {
        cache.clear();
    }
    cache.insert(
        (api.to_string(), a.name.clone(), identity.to_string()),
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
/// policy allows the method, else API Gateway's answer.
pub fn decide(payload: &[u8], method_arn: &str) -> Result<Value, HttpAnswer> {
    let Ok(answer) = serde_json::from_slice::<Value>(payload) else {
        return Err(failed());
    };
    let Some(policy) = answer.get("policyDocument") else {
        return Err(failed());
    };
    let statements = match policy.get("Statement") {
        Some(Value::Array(a)) => a.clone(),
        Some(s @ Value::Object(_)) => vec![s.clone()],
        _ => return Err(failed()),
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
        return Err(denied(true));
    }
    if !statements.iter().any(|s| effect(s, "Allow") && applies(s)) {
        return Err(denied(false));
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

    #[test]
    fn an_allow_on_the_method_passes_the_context_on() {
        let ctx = decide(
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
        assert_eq!(decide(&policy("Deny", "*"), ARN).unwrap_err().status, 403);
        let other = decide(
            &policy("Allow", "arn:aws:execute-api:us-east-1:123456789012:abc/prod/POST/*"),
            ARN,
        );
        let other = other.unwrap_err();
        assert_eq!(other.status, 403);
        assert!(String::from_utf8_lossy(&other.body).contains("not authorized"));
        assert_eq!(decide(b"not json", ARN).unwrap_err().status, 500);
        assert_eq!(decide(b"{}", ARN).unwrap_err().status, 500);
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
