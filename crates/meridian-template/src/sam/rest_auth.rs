//! `Auth` of REST APIs, as aws-sam-translator's `ApiGenerator._add_auth`, `ApiGatewayAuthorizer`
//! and the `SwaggerEditor`'s security methods write it into the swagger: Cognito and Lambda
//! (token and request) authorizers as `securityDefinitions`, the API's `DefaultAuthorizer` and
//! `ApiKeyRequired` on every method, an event's own `Auth` (`Authorizer`, `AuthorizationScopes`,
//! `ApiKeyRequired`, `InvokeRole`) on its method, and the permissions that let API Gateway invoke
//! Lambda authorizers.
//!
//! Local regions record authorizers; they do not enforce them.

use serde_json::{json, Map, Value};

use super::events::Owner;
use super::py27::{Py, PyDict};
use super::{python_repr, res_err, truthy, CfnResource, Context, Failure, SamResourceError};

const SECURITY: &str = "securityDefinitions";
const POLICY: &str = "x-amazon-apigateway-policy";
const INTEGRATION: &str = "x-amazon-apigateway-integration";
const EXCLUDED: &[&str] = &["summary", "description", "parameters"];
/// `AuthProperties`' fields.
const FIELDS: &[&str] = &[
    "Authorizers",
    "DefaultAuthorizer",
    "InvokeRole",
    "AddDefaultAuthorizerToCorsPreflight",
    "AddApiKeyRequiredToCorsPreflight",
    "ApiKeyRequired",
    "ResourcePolicy",
    "UsagePlan",
];

pub(crate) fn doc_err(message: String) -> Failure {
    Failure::Document(vec![SamResourceError {
        logical_id: None,
        message: format!("Structure of the SAM template is invalid. {message}"),
    }])
}

/// The swagger being edited, with its security definitions apart (as `SwaggerEditor` holds them).
pub(crate) struct Editor {
    pub(crate) doc: Py,
    security: PyDict,
    /// `x-amazon-apigateway-policy`, the API's resource policy.
    policy: PyDict,
    /// The document's `securityDefinitions` is set but is not a mapping.
    security_invalid: bool,
}

impl Editor {
    /// The editor over `doc` (the caller copies it first, as `SwaggerEditor` does).
    pub(crate) fn from_doc(doc: Py) -> Editor {
        let security = doc
            .as_dict()
            .and_then(|d| d.get(SECURITY))
            .and_then(Py::as_dict)
            .filter(|d| d.len() > 0)
            .cloned()
            .unwrap_or_else(PyDict::py27);
        let security_invalid = doc
            .as_dict()
            .and_then(|d| d.get(SECURITY))
            .is_some_and(|v| v.as_dict().is_none() && truthy(&v.to_json()));
        let policy = doc
            .as_dict()
            .and_then(|d| d.get(POLICY))
            .and_then(Py::as_dict)
            .filter(|d| d.len() > 0)
            .cloned()
            .unwrap_or_else(PyDict::py27);
        Editor {
            doc,
            security,
            policy,
            security_invalid,
        }
    }

    /// The document with the security definitions written back (`SwaggerEditor.swagger`, before
    /// its copy).
    pub(crate) fn into_doc(mut self) -> Py {
        if self.security.len() > 0 {
            if let Some(d) = self.doc.as_dict_mut() {
                d.set(SECURITY, false, Py::Dict(self.security));
            }
        }
        self.doc
    }

    /// `add_resource_policy`: the statements of a `ResourcePolicy` for the methods of `path`.
    fn add_resource_policy(&mut self, rp: &Value, path: &str, stage: &Py) -> Result<(), Failure> {
        let Some(rp) = rp.as_object() else {
            return Err(doc_err("Resource Policy is not a valid dictionary.".into()));
        };
        let get = |k: &str| rp.get(k).filter(|v| !v.is_null());
        if let Some(list) = get("AwsAccountWhitelist") {
            let resources = self.method_uris(path, stage)?;
            self.iam_statement(list, "Allow", resources)?;
        }
        if let Some(list) = get("AwsAccountBlacklist") {
            let resources = self.method_uris(path, stage)?;
            self.iam_statement(list, "Deny", resources)?;
        }
        if let Some(list) = get("IpRangeWhitelist") {
            let resources = self.method_uris(path, stage)?;
            self.ip_statements("NotIpAddress", list, resources);
        }
        if let Some(list) = get("IpRangeBlacklist") {
            let resources = self.method_uris(path, stage)?;
            self.ip_statements("IpAddress", list, resources);
        }
        for (strings, vpc, vpce, conditional, name) in [
            (
                "SourceVpcBlacklist",
                "IntrinsicVpcBlacklist",
                "IntrinsicVpceBlacklist",
                "StringEquals",
                "Blacklist",
            ),
            (
                "SourceVpcWhitelist",
                "IntrinsicVpcWhitelist",
                "IntrinsicVpceWhitelist",
                "StringNotEquals",
                "Whitelist",
            ),
        ] {
            if get(strings)
                .and_then(Value::as_array)
                .is_some_and(|l| !l.iter().all(Value::is_string))
            {
                return Err(doc_err(format!(
                    "SourceVpc{name} must be a list of strings. Use IntrinsicVpc{name} instead for values that use Intrinsic Functions"
                )));
            }
            let mut condition = PyDict::py27();
            let mut extend = |key: &str, items: Vec<Value>| {
                if items.is_empty() && condition.contains(key) {
                    return;
                }
                let mut list = match condition.get(key) {
                    Some(Py::List(l)) => l.clone(),
                    _ => Vec::new(),
                };
                list.extend(items.iter().map(Py::from_template));
                condition.set(key, false, Py::List(list));
            };
            if let Some(list) = get(strings) {
                let all = python_items(list);
                let pick = |prefix: &str| -> Vec<Value> {
                    all.iter()
                        .filter(|e| e.as_str().is_some_and(|s| s.starts_with(prefix)))
                        .cloned()
                        .collect()
                };
                let (vpcs, vpces) = (pick("vpc-"), pick("vpce-"));
                if !vpcs.is_empty() {
                    extend("aws:SourceVpc", vpcs);
                }
                if !vpces.is_empty() {
                    extend("aws:SourceVpce", vpces);
                }
            }
            if let Some(list) = get(vpc) {
                extend("aws:SourceVpc", python_items(list));
            }
            if let Some(list) = get(vpce) {
                extend("aws:SourceVpce", python_items(list));
            }
            let nonempty = |k: &str| matches!(condition.get(k), Some(Py::List(l)) if !l.is_empty());
            if !nonempty("aws:SourceVpc") && !nonempty("aws:SourceVpce") {
                continue;
            }
            let resources = self.method_uris(path, stage)?;
            let mut outer = PyDict::plain();
            outer.set(conditional, false, Py::Dict(condition));
            self.push_pair(Py::Dict(outer), resources);
        }
        self.write_policy();
        Ok(())
    }

    fn write_policy(&mut self) {
        let policy = Py::Dict(self.policy.clone());
        if let Some(d) = self.doc.as_dict_mut() {
            d.set(POLICY, false, policy);
        }
    }

    /// `add_custom_statements`.
    fn add_custom_statements(&mut self, custom: &Value) {
        self.policy.set("Version", false, Py::s("2012-10-17"));
        match self.policy.get("Statement") {
            None | Some(Py::None) => self.policy.set("Statement", false, Py::from_template(custom)),
            Some(existing) => {
                let mut statements = match existing {
                    Py::List(l) => l.clone(),
                    other => vec![other.clone()],
                };
                let custom: Vec<Value> = match custom {
                    Value::Array(a) => a.clone(),
                    other => vec![other.clone()],
                };
                for c in custom {
                    if !statements.iter().any(|s| s.to_json() == c) {
                        statements.push(Py::from_template(&c));
                    }
                }
                self.policy.set("Statement", false, Py::List(statements));
            }
        }
        self.write_policy();
    }

    /// `_get_method_path_uri_list`: `execute-api:/${__Stage__}/METHOD/path` for every method of
    /// the path.
    fn method_uris(&self, path: &str, stage: &Py) -> Result<Py, Failure> {
        let mut methods: Vec<(String, bool)> = Vec::new();
        let Some(item) = self
            .doc
            .as_dict()
            .and_then(|d| d.get("paths"))
            .and_then(Py::as_dict)
            .and_then(|p| p.get(path))
        else {
            return Ok(Py::List(Vec::new()));
        };
        let path_uni = self
            .doc
            .as_dict()
            .and_then(|d| d.get("paths"))
            .and_then(Py::as_dict)
            .map(|p| p.keys_with_kind().into_iter().any(|(k, u)| k == path && u))
            .unwrap_or(false);
        let mut item = item.clone();
        for content in item
            .conditional_contents_mut()
            .map_err(|_| doc_err("Value of Fn::If must be a list.".into()))?
        {
            let Some(d) = content.as_dict() else {
                return Err(doc_err(format!(
                    "Value of '{path}' path must be a dictionary according to Swagger spec."
                )));
            };
            methods.extend(d.keys_with_kind());
        }
        let starred = super::rest_api::starred_path(path);
        let mut out = Vec::new();
        for (m, uni) in methods {
            let lower = m.to_lowercase();
            let (method, method_uni) = if lower == "x-amazon-apigateway-any-method" || lower == "any" {
                ("*".to_string(), false)
            } else {
                (m.to_uppercase(), uni)
            };
            let mut vars = PyDict::plain();
            vars.set("__Stage__", false, stage.clone());
            let mut sub = PyDict::plain();
            sub.set(
                "Fn::Sub",
                false,
                Py::List(vec![
                    Py::Str(
                        format!("execute-api:/${{__Stage__}}/{method}{starred}"),
                        method_uni || path_uni,
                    ),
                    Py::Dict(vars),
                ]),
            );
            out.push(Py::Dict(sub));
        }
        Ok(Py::List(out))
    }

    /// `_add_iam_resource_policy_for_method`.
    fn iam_statement(&mut self, list: &Value, effect: &str, resources: Py) -> Result<(), Failure> {
        if !truthy(list) {
            return Ok(());
        }
        if !list.is_object() && !list.is_array() {
            let shown = match list {
                Value::String(s) => s.clone(),
                v => python_repr(v),
            };
            return Err(doc_err(format!("Type of '{shown}' must be a list or dictionary")));
        }
        let principals = match list {
            Value::Array(_) => Py::from_template(list),
            other => Py::List(vec![Py::from_template(other)]),
        };
        self.policy.set("Version", false, Py::s("2012-10-17"));
        let mut statement = PyDict::py27();
        statement.set("Effect", false, Py::s(effect));
        statement.set("Action", false, Py::s("execute-api:Invoke"));
        statement.set("Resource", false, resources);
        let mut principal = PyDict::py27();
        principal.set("AWS", false, principals);
        statement.set("Principal", false, Py::Dict(principal));
        match self.policy.get("Statement") {
            None | Some(Py::None) => self.policy.set("Statement", false, Py::Dict(statement)),
            Some(existing) => {
                let mut statements = match existing {
                    Py::List(l) => l.clone(),
                    other => vec![other.clone()],
                };
                statements.push(Py::Dict(statement));
                self.policy.set("Statement", false, Py::List(statements));
            }
        }
        Ok(())
    }

    /// `_add_ip_resource_policy_for_method`.
    fn ip_statements(&mut self, conditional: &str, list: &Value, resources: Py) {
        if !truthy(list) {
            return;
        }
        let ips = match list {
            Value::Array(_) => Py::from_template(list),
            other => Py::List(vec![Py::from_template(other)]),
        };
        let mut inner = PyDict::plain();
        inner.set("aws:SourceIp", false, ips);
        let mut outer = PyDict::plain();
        outer.set(conditional, false, Py::Dict(inner));
        self.push_pair(Py::Dict(outer), resources);
    }

    /// An allow-all statement and a deny statement under `condition`, each added once.
    fn push_pair(&mut self, condition: Py, resources: Py) {
        self.policy.set("Version", false, Py::s("2012-10-17"));
        let statement = |effect: &str, condition: Option<Py>| {
            let mut s = PyDict::py27();
            s.set("Effect", false, Py::s(effect));
            s.set("Action", false, Py::s("execute-api:Invoke"));
            s.set("Resource", false, resources.clone());
            s.set("Principal", false, Py::s("*"));
            if let Some(c) = condition {
                s.set("Condition", false, c);
            }
            Py::Dict(s)
        };
        let allow = statement("Allow", None);
        let deny = statement("Deny", Some(condition));
        match self.policy.get("Statement") {
            None | Some(Py::None) => self.policy.set("Statement", false, Py::List(vec![allow, deny])),
            Some(existing) => {
                let mut statements = match existing {
                    Py::List(l) => l.clone(),
                    other => vec![other.clone()],
                };
                for s in [allow, deny] {
                    if !statements.iter().any(|x| x.to_json() == s.to_json()) {
                        statements.push(s);
                    }
                }
                self.policy.set("Statement", false, Py::List(statements));
            }
        }
    }

    /// Security definitions can be added (`securityDefinitions must be a dictionary.` if not).
    fn check_security(&self) -> Result<(), Failure> {
        if self.security_invalid {
            return Err(doc_err("securityDefinitions must be a dictionary.".into()));
        }
        Ok(())
    }

    fn paths(&self) -> Vec<String> {
        self.doc
            .as_dict()
            .and_then(|d| d.get("paths"))
            .and_then(Py::as_dict)
            .map(PyDict::keys)
            .unwrap_or_default()
    }

    /// Calls `f` with each method definition (with an integration) of `path`, through `Fn::If`s:
    /// every method (`iter_on_all_methods_for_path`) or the one named.
    pub(crate) fn each_method(
        &mut self,
        path: &str,
        only: Option<&str>,
        f: &mut dyn FnMut(&str, &mut PyDict, &mut PyDict) -> Result<(), Failure>,
    ) -> Result<(), Failure> {
        let if_err = || doc_err("Value of Fn::If must be a list.".into());
        let security = &mut self.security;
        let Some(item) = self
            .doc
            .as_dict_mut()
            .and_then(|d| d.get_mut("paths"))
            .and_then(Py::as_dict_mut)
            .and_then(|p| p.get_mut(path))
        else {
            return Ok(());
        };
        for content in item.conditional_contents_mut().map_err(|_| if_err())? {
            let Some(content) = content.as_dict_mut() else {
                return Err(doc_err(format!(
                    "Value of '{path}' path must be a dictionary according to Swagger spec."
                )));
            };
            for name in content.keys() {
                if EXCLUDED.contains(&name.as_str()) {
                    continue;
                }
                let normalized = normalize(&name);
                if only.is_some_and(|m| normalize(m) != normalized) {
                    continue;
                }
                let Some(method) = content.get_mut(&name) else { continue };
                for def in method.conditional_contents_mut().map_err(|_| if_err())? {
                    let Some(def) = def.as_dict_mut() else {
                        return Err(doc_err(format!(
                            "Definition of method '{name}' for path '{path}' should be a map."
                        )));
                    };
                    if !def.get(INTEGRATION).is_some_and(|i| truthy(&i.to_json())) {
                        continue;
                    }
                    f(&normalized, def, security)?;
                }
            }
        }
        Ok(())
    }
}

fn normalize(m: &str) -> String {
    let m = m.to_lowercase();
    if m == "any" {
        "x-amazon-apigateway-any-method".into()
    } else {
        m
    }
}

/// `add_awsiam_security_definition` (idempotent).
fn add_iam_definition(security: &mut PyDict) {
    if !security.contains("AWS_IAM") {
        let mut d = PyDict::py27();
        d.set("x-amazon-apigateway-authtype", false, Py::s("awsSigv4"));
        d.set("type", false, Py::s("apiKey"));
        d.set("name", false, Py::s("Authorization"));
        d.set("in", false, Py::s("header"));
        security.set("AWS_IAM", false, Py::Dict(d));
    }
}

/// `add_apikey_security_definition` (idempotent).
fn add_apikey_definition(security: &mut PyDict) {
    if !security.contains("api_key") {
        let mut d = PyDict::py27();
        d.set("type", false, Py::s("apiKey"));
        d.set("name", false, Py::s("x-api-key"));
        d.set("in", false, Py::s("header"));
        security.set("api_key", false, Py::Dict(d));
    }
}

/// A method's `security` list (a missing one is empty).
fn security_of(def: &PyDict, path: &str, method: &str) -> Result<Vec<Py>, Failure> {
    match def.get("security") {
        None => Ok(Vec::new()),
        Some(Py::List(l)) => Ok(l.clone()),
        Some(_) => Err(doc_err(format!(
            "Type of security for path {path} method {method} must be a list"
        ))),
    }
}

fn security_keys(entry: &Py, path: &str, method: &str) -> Result<Vec<String>, Failure> {
    match entry.as_dict() {
        Some(d) => Ok(d.keys()),
        None => Err(doc_err(format!(
            "{} in Security for path {path} method {method} is not a valid dictionary.",
            python_repr(&entry.to_json())
        ))),
    }
}

/// A method's security requirements: those naming one of `names`, and the others (each must
/// be a mapping).
fn split_security(existing: &[Py], path: &str, method: &str, names: &[&str]) -> Result<(Vec<Py>, Vec<Py>), Failure> {
    let (mut named, mut others) = (Vec::new(), Vec::new());
    for s in existing {
        let keys = security_keys(s, path, method)?;
        if keys.iter().any(|k| names.contains(&k.as_str())) {
            named.push(s.clone());
        } else {
            others.push(s.clone());
        }
    }
    Ok((named, others))
}

fn single(key: &str, uni: bool, value: Py) -> Py {
    let mut d = PyDict::py27();
    d.set(key, uni, value);
    Py::Dict(d)
}

/// A method's security requirements, and the `AWS_IAM` definition when the first names it (as
/// SAM adds it after setting an authorizer).
fn set_security(def: &mut PyDict, security_defs: &mut PyDict, security: Vec<Py>) {
    let iam = security
        .first()
        .and_then(Py::as_dict)
        .is_some_and(|d| d.contains("AWS_IAM"));
    def.set("security", false, Py::List(security));
    if iam {
        add_iam_definition(security_defs);
    }
}

/// One authorizer of the API (`ApiGatewayAuthorizer`).
struct Authorizer {
    name: String,
    user_pool_arn: Option<Value>,
    function_arn: Option<Value>,
    identity: Option<Value>,
    payload_type: Option<String>,
    invoke_role: Option<Value>,
    is_iam: bool,
    scopes: Value,
    disable_permissions: bool,
}

impl Authorizer {
    fn kind(&self) -> &'static str {
        if self.is_iam {
            "AWS_IAM"
        } else if self.user_pool_arn.as_ref().is_some_and(truthy) {
            "COGNITO_USER_POOLS"
        } else {
            "LAMBDA"
        }
    }

    fn payload(&self) -> &str {
        self.payload_type.as_deref().unwrap_or("TOKEN")
    }

    /// `generate_swagger`.
    fn swagger(&self, api_id: &str, partition: &str) -> Result<Py, Failure> {
        let identity = self.identity.as_ref().filter(|i| truthy(i));
        if identity.is_some_and(|i| !i.is_object()) {
            return Err(res_err(
                api_id,
                "Auth.Authorizers.<Authorizer>.Identity must be a dict (LambdaTokenAuthorizationIdentity, LambdaRequestAuthorizationIdentity or CognitoAuthorizationIdentity).",
            ));
        }
        let ident = |k: &str| identity.and_then(|i| i.get(k)).filter(|v| !v.is_null());
        let kind = self.kind();
        let mut s = PyDict::py27();
        s.set("type", false, Py::s("apiKey"));
        let header = if kind == "LAMBDA" && self.payload() == "REQUEST" {
            Py::s("Unused")
        } else {
            match ident("Header").filter(|h| truthy(h)) {
                Some(h) => Py::from_template(h),
                None => Py::s("Authorization"),
            }
        };
        s.set("name", false, header);
        s.set("in", false, Py::s("header"));
        let authtype = match kind {
            "AWS_IAM" => "awsSigv4",
            "COGNITO_USER_POOLS" => "cognito_user_pools",
            _ => "custom",
        };
        s.set("x-amazon-apigateway-authtype", false, Py::s(authtype));
        let authorizer_type = match (kind, self.payload()) {
            ("COGNITO_USER_POOLS", _) => Py::s("cognito_user_pools"),
            (_, "REQUEST") => Py::s("request"),
            (_, "TOKEN") => Py::s("token"),
            _ => Py::None,
        };
        let mut a = PyDict::py27();
        match kind {
            "COGNITO_USER_POOLS" => {
                a.set("type", false, authorizer_type);
                let arns = match self.user_pool_arn.as_ref() {
                    Some(Value::Array(l)) => Py::from_template(&Value::Array(l.clone())),
                    Some(v) => Py::List(vec![Py::from_template(v)]),
                    None => Py::List(vec![Py::None]),
                };
                a.set("providerARNs", false, arns);
            }
            "LAMBDA" => {
                a.set("type", false, authorizer_type);
                let mut vars = PyDict::plain();
                vars.set(
                    "__FunctionArn__",
                    false,
                    self.function_arn.as_ref().map(Py::from_template).unwrap_or(Py::None),
                );
                let mut sub = PyDict::plain();
                sub.set(
                    "Fn::Sub",
                    false,
                    Py::List(vec![
                        Py::s(&format!(
                            "arn:{partition}:apigateway:${{AWS::Region}}:lambda:path/2015-03-31/functions/${{__FunctionArn__}}/invocations"
                        )),
                        Py::Dict(vars),
                    ]),
                );
                a.set("authorizerUri", false, Py::Dict(sub));
                if let Some(ttl) = ident("ReauthorizeEvery") {
                    a.set("authorizerResultTtlInSeconds", false, Py::from_template(ttl));
                }
                if let Some(role) = self
                    .invoke_role
                    .as_ref()
                    .filter(|r| truthy(r) && r.as_str() != Some("NONE"))
                {
                    a.set("authorizerCredentials", false, Py::from_template(role));
                }
                if self.payload() == "REQUEST" {
                    let source = self.identity_source(api_id)?;
                    if !source.0.is_empty() {
                        a.set("identitySource", false, Py::Str(source.0, source.1));
                    }
                }
            }
            _ => {}
        }
        if kind == "COGNITO_USER_POOLS" || (kind == "LAMBDA" && self.payload() == "TOKEN") {
            if let Some(e) = ident("ValidationExpression").filter(|v| truthy(v)) {
                a.set("identityValidationExpression", false, Py::from_template(e));
            }
        }
        if kind != "AWS_IAM" {
            s.set("x-amazon-apigateway-authorizer", false, Py::Dict(a));
        }
        Ok(Py::Dict(s))
    }

    /// `_get_identity_source`: the sources joined, and whether the text is a template string.
    fn identity_source(&self, api_id: &str) -> Result<(String, bool), Failure> {
        let mut items = Vec::new();
        let mut uni = false;
        let Some(identity) = self.identity.as_ref() else {
            return Ok((String::new(), false));
        };
        for (key, prefix) in [
            ("Headers", "method.request.header."),
            ("QueryStrings", "method.request.querystring."),
            ("StageVariables", "stageVariables."),
            ("Context", "context."),
        ] {
            let Some(list) = identity.get(key).filter(|v| truthy(v)) else {
                continue;
            };
            let path = format!("Auth.Authorizers.{}.Identity.{key}", self.name);
            let Some(list) = list.as_array() else {
                return Err(res_err(api_id, format!("Property '{path}' should be a list.")));
            };
            for (i, v) in list.iter().enumerate() {
                let Some(s) = v.as_str() else {
                    return Err(res_err(api_id, format!("Property '{path}[{i}]' should be a string.")));
                };
                items.push(format!("{prefix}{s}"));
                uni = true;
            }
        }
        Ok((items.join(", "), uni))
    }
}

/// The API's `Auth`, checked as `_add_auth` and `AuthProperties` check it.
pub(crate) struct ApiAuth {
    pub auth: Map<String, Value>,
}

impl ApiAuth {
    fn get(&self, k: &str) -> Option<&Value> {
        self.auth.get(k).filter(|v| !v.is_null())
    }

    /// `_get_authorizers` (with `AWS_IAM` first when it is the default), in the order of SAM's
    /// `Py27Dict`.
    fn authorizers(&self, api_id: &str, with_default: bool) -> Result<Vec<Authorizer>, Failure> {
        let mut out = Vec::new();
        if with_default && self.get("DefaultAuthorizer").and_then(Value::as_str) == Some("AWS_IAM") {
            out.push(Authorizer {
                name: "AWS_IAM".into(),
                user_pool_arn: None,
                function_arn: None,
                identity: None,
                payload_type: None,
                invoke_role: None,
                is_iam: true,
                scopes: json!([]),
                disable_permissions: false,
            });
        }
        let Some(config) = self.get("Authorizers").filter(|v| truthy(v)) else {
            return Ok(out);
        };
        let Some(config) = config.as_object() else {
            return Err(res_err(api_id, "Property 'Auth.Authorizers' should be a map."));
        };
        let order = Py::from_template(&Value::Object(config.clone()))
            .as_dict()
            .map(PyDict::keys)
            .unwrap_or_default();
        let mut defined = Vec::new();
        for name in config.keys() {
            let Some(a) = config[name].as_object() else {
                return Err(res_err(
                    api_id,
                    format!("Property 'Auth.Authorizers.{name}' should be a map."),
                ));
            };
            let payload_type = match a.get("FunctionPayloadType").filter(|v| !v.is_null()) {
                None => None,
                Some(Value::String(s)) if s == "TOKEN" || s == "REQUEST" => Some(s.clone()),
                Some(other) => {
                    let shown = match other {
                        Value::String(s) => s.clone(),
                        v => python_repr(v),
                    };
                    return Err(res_err(
                        api_id,
                        format!("{name} Authorizer has invalid 'FunctionPayloadType': {shown}."),
                    ));
                }
            };
            let identity = a.get("Identity").filter(|v| !v.is_null()).cloned();
            if payload_type.as_deref() == Some("REQUEST") && missing_identity_source(api_id, name, identity.as_ref())? {
                return Err(res_err(
                    api_id,
                    format!("{name} Authorizer must specify Identity with at least one of Headers, QueryStrings, StageVariables, or Context."),
                ));
            }
            let scopes = a
                .get("AuthorizationScopes")
                .filter(|v| !v.is_null())
                .cloned()
                .unwrap_or(json!([]));
            if !scopes.is_array() {
                return Err(res_err(
                    api_id,
                    format!("Property 'Authorizers.{name}.AuthorizationScopes' should be a list."),
                ));
            }
            let disable = a.get("DisableFunctionDefaultPermissions").filter(|v| !v.is_null());
            if disable.is_some_and(|d| !d.is_boolean()) {
                return Err(res_err(
                    api_id,
                    format!("Property 'Authorizers.{name}.DisableFunctionDefaultPermissions' should be a boolean."),
                ));
            }
            defined.push(Authorizer {
                name: name.clone(),
                user_pool_arn: a.get("UserPoolArn").filter(|v| !v.is_null()).cloned(),
                function_arn: a.get("FunctionArn").filter(|v| !v.is_null()).cloned(),
                identity,
                payload_type,
                invoke_role: a.get("FunctionInvokeRole").filter(|v| !v.is_null()).cloned(),
                is_iam: false,
                scopes,
                disable_permissions: disable.is_some_and(truthy),
            });
        }
        for name in order {
            if let Some(pos) = defined.iter().position(|a| a.name == name) {
                out.push(defined.remove(pos));
            }
        }
        Ok(out)
    }
}

/// `_is_missing_identity_source`.
fn missing_identity_source(api_id: &str, name: &str, identity: Option<&Value>) -> Result<bool, Failure> {
    let Some(identity) = identity.filter(|i| truthy(i)) else {
        return Ok(true);
    };
    let Some(m) = identity.as_object() else {
        return Err(res_err(
            api_id,
            format!("Property 'Authorizer.{name}.Identity' should be a map."),
        ));
    };
    let has = |k: &str| m.get(k).is_some_and(truthy);
    let missing = !has("Headers") && !has("QueryStrings") && !has("StageVariables") && !has("Context");
    let ttl = match m.get("ReauthorizeEvery") {
        None | Some(Value::Null) => return Ok(missing),
        Some(Value::Number(n)) => n.as_f64().map(|f| f.trunc() as i64),
        Some(Value::Bool(b)) => Some(*b as i64),
        Some(Value::String(s)) => s.trim().parse::<i64>().ok(),
        Some(_) => None,
    };
    Ok(match ttl {
        None => missing,
        Some(t) => t > 0 && missing,
    })
}

/// `_add_auth` on the API's swagger, and the permissions of its Lambda authorizers. `body` is
/// `None` when the API has no inline definition.
pub(crate) fn add_to_api(
    ctx: &Context<'_>,
    api_id: &str,
    auth: &Value,
    body: Option<&mut Py>,
    stage: Option<&Value>,
    open_api_version: Option<&Value>,
    passthrough: &Map<String, Value>,
) -> Result<Vec<CfnResource>, Failure> {
    if !truthy(auth) {
        return Ok(Vec::new());
    }
    let auth = ctx.resolve_params(auth)?;
    let Some(body) = body else {
        return Err(res_err(
            api_id,
            "Auth works only with inline Swagger specified in 'DefinitionBody' property.",
        ));
    };
    let Some(map) = auth.as_object() else {
        return Err(res_err(api_id, "Property 'Auth' should be a map."));
    };
    if map.keys().any(|k| !FIELDS.contains(&k.as_str())) {
        return Err(res_err(api_id, "Invalid value for 'Auth' property"));
    }
    if !super::rest_api::is_valid_swagger(&body.to_json()) {
        return Err(res_err(
            api_id,
            "Unable to add Auth configuration because 'DefinitionBody' does not contain a valid Swagger definition.",
        ));
    }
    let api = ApiAuth { auth: map.clone() };
    let mut editor = Editor::from_doc(body.deepcopy());
    let authorizers = api.authorizers(api_id, true)?;
    if !authorizers.is_empty() || api.get("ApiKeyRequired").is_some_and(truthy) {
        editor.check_security()?;
    }
    if !authorizers.is_empty() {
        for a in &authorizers {
            let swagger = a.swagger(api_id, &ctx.opts.partition)?;
            // the names are the template's strings, `AWS_IAM` as the default too
            editor.security.set(&a.name, true, swagger);
        }
        set_default_authorizer(&mut editor, api_id, &api, &authorizers)?;
    }
    if api.get("ApiKeyRequired").is_some_and(truthy) {
        add_apikey_definition(&mut editor.security);
        let preflight = api.get("AddApiKeyRequiredToCorsPreflight").is_none_or(truthy);
        for path in editor.paths() {
            editor.each_method(&path, None, &mut |method, def, _| {
                let existing = security_of(def, &path, method)?;
                let (keyed, others) = split_security(&existing, &path, method, &["api_key", "api_key_false"])?;
                let off = keyed
                    .iter()
                    .any(|s| s.as_dict().is_some_and(|d| d.contains("api_key_false")));
                let mut security = others.clone();
                if !off {
                    security.push(single("api_key", false, Py::List(Vec::new())));
                }
                if method == "options" && !preflight {
                    security = others;
                }
                if Py::List(security.clone()).to_json() != Py::List(existing).to_json() {
                    def.set("security", false, Py::List(security));
                }
                Ok(())
            })?;
        }
    }
    if let Some(policy) = api.get("ResourcePolicy").filter(|v| truthy(v)) {
        if !policy.is_object() {
            return Err(doc_err(
                "ResourcePolicy must be a map (ResourcePolicyStatement).".into(),
            ));
        }
        // the implicit API's `Prod` is SAM's own string
        let stage = match stage {
            Some(Value::String(s)) if api_id == super::rest_api::IMPLICIT_ID && s == "Prod" => Py::s("Prod"),
            Some(v) => Py::from_template(v),
            None => Py::None,
        };
        for path in editor.paths() {
            editor.add_resource_policy(policy, &path, &stage)?;
        }
        if let Some(custom) = policy.get("CustomStatements").filter(|v| truthy(v)) {
            editor.add_custom_statements(custom);
        }
    }
    *body = editor.into_doc().deepcopy();
    // `_add_auth` ends with `_openapi_postprocess`, which runs again after the other steps
    super::rest_api::openapi_postprocess(body, open_api_version)?;

    // the permissions of Lambda authorizers
    let mut out = Vec::new();
    for a in api.authorizers(api_id, false)? {
        let Some(arn) = a.function_arn.as_ref().filter(|v| truthy(v)) else {
            continue;
        };
        if a.disable_permissions {
            continue;
        }
        let mut p = CfnResource::new(
            format!("{api_id}{}AuthorizerPermission", a.name),
            "AWS::Lambda::Permission",
        );
        p.attributes = passthrough.clone();
        p.set("Action", Some(json!("lambda:InvokeFunction")));
        p.set("FunctionName", Some(arn.clone()));
        p.set("Principal", Some(json!("apigateway.amazonaws.com")));
        p.set(
            "SourceArn",
            Some(json!({"Fn::Sub": [
                format!("arn:{}:execute-api:${{AWS::Region}}:${{AWS::AccountId}}:${{__ApiId__}}/authorizers/*", ctx.opts.partition),
                {"__ApiId__": {"Ref": api_id}},
            ]})),
        );
        out.push(p);
    }
    Ok(out)
}

/// `_set_default_authorizer` / `set_path_default_authorizer`.
fn set_default_authorizer(
    editor: &mut Editor,
    api_id: &str,
    api: &ApiAuth,
    authorizers: &[Authorizer],
) -> Result<(), Failure> {
    let Some(default) = api.get("DefaultAuthorizer").filter(|v| truthy(v)) else {
        return Ok(());
    };
    let Some(default) = default.as_str() else {
        return Err(res_err(api_id, "DefaultAuthorizer is not a string."));
    };
    let found = authorizers.iter().find(|a| a.name == default);
    if found.is_none() && default != "AWS_IAM" {
        return Err(res_err(
            api_id,
            format!("Unable to set DefaultAuthorizer because '{default}' was not defined in 'Authorizers'."),
        ));
    }
    let preflight = api.get("AddDefaultAuthorizerToCorsPreflight").is_none_or(truthy);
    let mut names: Vec<&str> = vec!["AWS_IAM"];
    names.extend(authorizers.iter().map(|a| a.name.as_str()));
    let scopes = found
        .map(|a| Py::from_template(&a.scopes))
        .unwrap_or(Py::List(Vec::new()));
    for path in editor.paths() {
        editor.each_method(&path, None, &mut |method, def, security_defs| {
            if !preflight && method == "options" {
                return Ok(());
            }
            let existing = security_of(def, &path, method)?;
            let (authorizer_security, mut others) = split_security(&existing, &path, method, &names)?;
            let none = others
                .iter()
                .position(|s| s.as_dict().is_some_and(|d| d.contains("NONE")));
            let chosen = if let Some(i) = none {
                others.remove(i);
                Vec::new()
            } else if !authorizer_security.is_empty() {
                authorizer_security
            } else {
                vec![single(default, true, scopes.deepcopy())]
            };
            let mut security = others;
            security.extend(chosen);
            if !security.is_empty() {
                set_security(def, security_defs, security);
            }
            Ok(())
        })?;
    }
    Ok(())
}

/// An `Api` event's `Auth` on its method (`add_auth_to_swagger` and `add_auth_to_method`), after
/// its integration is added. `api_auth` is the API's `Auth` (parameters resolved).
#[allow(clippy::too_many_arguments)]
pub(crate) fn add_to_method(
    editor: &mut Editor,
    function_id: &str,
    event_id: &str,
    api_id: &str,
    event_auth: &Map<String, Value>,
    api_auth: Option<&Value>,
    method: &str,
    path: &str,
    stage: &str,
) -> Result<(), Failure> {
    let owner = Owner::Function(function_id);
    add_to_method_of(
        editor,
        owner,
        event_id,
        api_id,
        event_auth,
        api_auth,
        method,
        path,
        Some(stage),
    )
}

/// [`add_to_method`] for an event of a function or a state machine (`owner`).
#[allow(clippy::too_many_arguments)]
pub(crate) fn add_to_method_of(
    editor: &mut Editor,
    owner: Owner<'_>,
    event_id: &str,
    api_id: &str,
    event_auth: &Map<String, Value>,
    api_auth: Option<&Value>,
    method: &str,
    path: &str,
    stage: Option<&str>,
) -> Result<(), Failure> {
    let ev_err = |m: String| owner.event_err(event_id, m);
    let authorizer = event_auth.get("Authorizer").filter(|v| truthy(v));
    let api_authorizers = api_auth.and_then(|a| a.get("Authorizers")).filter(|v| truthy(v));
    if let Some(a) = authorizer {
        if api_authorizers.is_some_and(|v| !v.is_object()) {
            return Err(res_err(api_id, "Property 'Auth.Authorizers' should be a map."));
        }
        let shown = match a {
            Value::String(s) => s.clone(),
            v => python_repr(v),
        };
        let check_types = || {
            if a.as_str() == Some("NONE") {
                return Ok(());
            }
            if !a.is_string() || !api_authorizers.is_some_and(Value::is_object) {
                return Err(ev_err(format!(
                    "Unable to set Authorizer [{shown}] on API method [{method}] for path [{path}]. The method authorizer must be a string with a corresponding dict entry in the api authorizer."
                )));
            }
            Ok(())
        };
        if a.as_str() != Some("AWS_IAM") {
            if a.as_str() != Some("NONE") {
                if api_authorizers.is_none() {
                    return Err(ev_err(format!(
                        "Unable to set Authorizer [{shown}] on API method [{method}] for path [{path}] because the related API does not define any Authorizers."
                    )));
                }
                check_types()?;
                let defined = a
                    .as_str()
                    .and_then(|n| api_authorizers.and_then(|m| m.get(n)))
                    .is_some_and(truthy);
                if !defined {
                    return Err(ev_err(format!(
                        "Unable to set Authorizer [{shown}] on API method [{method}] for path [{path}] because it wasn't defined in the API's Authorizers."
                    )));
                }
            } else {
                check_types()?;
                if !api_auth.and_then(|a| a.get("DefaultAuthorizer")).is_some_and(truthy) {
                    return Err(ev_err(format!(
                        "Unable to set Authorizer on API method [{method}] for path [{path}] because 'NONE' is only a valid value when a DefaultAuthorizer on the API is specified."
                    )));
                }
            }
        }
    }
    if let Some(scopes) = event_auth.get("AuthorizationScopes").filter(|v| truthy(v)) {
        if !scopes.is_array() {
            return Err(ev_err("Property 'Auth.AuthorizationScopes' should be a list.".into()));
        }
        if authorizer.is_none() {
            return Err(ev_err("AuthorizationScopes works only when Authorizer is set".into()));
        }
    }
    let apikey = event_auth.get("ApiKeyRequired").filter(|v| !v.is_null());
    if apikey.is_some_and(|v| !truthy(v)) && !api_auth.and_then(|a| a.get("ApiKeyRequired")).is_some_and(truthy) {
        return Err(ev_err(format!(
            "Unable to set ApiKeyRequired [False] on API method [{method}] for path [{path}] because the related API does not specify any ApiKeyRequired."
        )));
    }
    if let Some(name) = authorizer {
        let name = name.as_str().unwrap_or_default().to_string();
        let method_scopes = event_auth.get("AuthorizationScopes").filter(|v| !v.is_null());
        editor.each_method(path, Some(method), &mut |_, def, security_defs| {
            let mut entry = PyDict::py27();
            entry.set(&name, true, Py::List(Vec::new()));
            if name != "NONE" {
                if let Some(m) = api_authorizers.and_then(Value::as_object) {
                    let defined = m.get(&name);
                    if defined.is_some_and(|d| !d.is_object()) {
                        return Err(doc_err(format!("Type of authorizer '{name}' must be a dictionary")));
                    }
                    let scopes = method_scopes.or_else(|| {
                        defined
                            .and_then(|d| d.get("AuthorizationScopes"))
                            .filter(|v| !v.is_null())
                    });
                    if let (Some(_), Some(s)) = (defined, scopes) {
                        entry.set(&name, true, Py::from_template(s));
                    }
                }
            }
            let mut security = security_of(def, path, method)?;
            security.push(Py::Dict(entry));
            set_security(def, security_defs, security);
            Ok(())
        })?;
    }
    if let Some(required) = apikey {
        let required = truthy(required);
        if required {
            editor.check_security()?;
        }
        editor.each_method(path, Some(method), &mut |_, def, security_defs| {
            let entry = if required {
                add_apikey_definition(security_defs);
                single("api_key", false, Py::List(Vec::new()))
            } else {
                single("api_key_false", false, Py::List(Vec::new()))
            };
            let mut security = security_of(def, path, method)?;
            security.push(entry);
            def.set("security", false, Py::List(security));
            Ok(())
        })?;
    }
    if let Some(policy) = event_auth.get("ResourcePolicy").filter(|v| truthy(v)) {
        if !policy.is_object() {
            return Err(res_err(event_id, "Property 'Auth.ResourcePolicy' should be a map."));
        }
        // the implicit API's `Prod` is SAM's own string; a stage named in the template is the
        // template's
        let stage = match stage {
            Some(stage) => {
                let implicit = api_id == super::rest_api::IMPLICIT_ID && stage == "Prod";
                Py::Str(stage.to_string(), !implicit)
            }
            None => Py::None,
        };
        editor.add_resource_policy(policy, path, &stage)?;
        if let Some(custom) = policy.get("CustomStatements").filter(|v| truthy(v)) {
            editor.add_custom_statements(custom);
        }
    }
    Ok(())
}

/// The `credentials` of an integration behind `AWS_IAM` (`add_lambda_integration`).
pub(crate) fn iam_credentials(
    event_auth: &Map<String, Value>,
    api_auth: &Map<String, Value>,
    partition: &str,
) -> Option<Py> {
    let iam = event_auth.get("Authorizer").and_then(Value::as_str) == Some("AWS_IAM")
        || (api_auth.get("DefaultAuthorizer").and_then(Value::as_str) == Some("AWS_IAM") && event_auth.is_empty());
    if !iam {
        return None;
    }
    let role = |m: &Map<String, Value>| match m.get("InvokeRole") {
        Some(v) if truthy(v) => Some(v.clone()),
        Some(_) => Some(json!("NONE")),
        None => None,
    };
    let chosen = role(event_auth).or_else(|| role(api_auth));
    let credentials = match chosen {
        Some(r) if r.as_str() != Some("CALLER_CREDENTIALS") => r,
        _ => json!(format!("arn:{partition}:iam::*:user/*")),
    };
    if credentials.as_str() == Some("NONE") {
        return None;
    }
    let template = credentials.as_str() != Some(&format!("arn:{partition}:iam::*:user/*"));
    Some(Py::from_json(&credentials, template))
}

/// What the APIs with a `SHARED` usage plan have in common (`SharedApiUsagePlan`): one
/// `ServerlessUsagePlan`, `ServerlessApiKey` and `ServerlessUsagePlanKey` for all of them.
#[derive(Default)]
pub(crate) struct SharedUsagePlan {
    stage_keys: Vec<Value>,
    api_stages: Vec<Value>,
    depends_on: Vec<Value>,
    conditions: Vec<String>,
    any_without_condition: bool,
    deletion_policy: Option<Value>,
    update_replace_policy: Option<Value>,
}

const SHARED_CONDITION: &str = "SharedUsagePlanCondition";

impl SharedUsagePlan {
    /// `get_combined_resource_attributes`: the strongest policies and, when every API has one,
    /// a condition that holds when any of theirs does (written into the template's Conditions).
    fn combined(
        &mut self,
        attributes: &Map<String, Value>,
        conditions: &mut Option<Map<String, Value>>,
    ) -> Result<Map<String, Value>, Failure> {
        if let Some(p) = attributes.get("DeletionPolicy").filter(|v| truthy(v)) {
            if self.deletion_policy.is_none() || p == "Retain" {
                self.deletion_policy = Some(p.clone());
            }
        }
        if let Some(p) = attributes.get("UpdateReplacePolicy").filter(|v| truthy(v)) {
            let current = self.update_replace_policy.as_ref().and_then(Value::as_str);
            if current.is_none() || p == "Retain" || (p == "Snapshot" && current == Some("Delete")) {
                self.update_replace_policy = Some(p.clone());
            }
        }
        if !self.any_without_condition {
            match attributes.get("Condition").filter(|v| truthy(v)) {
                Some(c) => {
                    let c = c.as_str().unwrap_or_default().to_string();
                    if !self.conditions.contains(&c) {
                        let Some(template) = conditions.as_mut() else {
                            return Err(Failure::Document(vec![SamResourceError {
                                logical_id: None,
                                message: "Structure of the SAM template is invalid. Can't have condition without having 'Conditions' section in the template".into(),
                            }]));
                        };
                        self.conditions.push(c.clone());
                        let value = if self.conditions.len() == 1 {
                            json!(c)
                        } else {
                            let mut all = self.conditions.clone();
                            all.sort();
                            json!({"Fn::Or": all.iter().map(|c| json!({"Condition": c})).collect::<Vec<_>>()})
                        };
                        template.insert(SHARED_CONDITION.into(), value);
                    }
                }
                None => {
                    self.any_without_condition = true;
                    if let Some(template) = conditions.as_mut() {
                        template.shift_remove(SHARED_CONDITION);
                    }
                }
            }
        }
        let mut out = Map::new();
        if let Some(p) = &self.deletion_policy {
            out.insert("DeletionPolicy".into(), p.clone());
        }
        if let Some(p) = &self.update_replace_policy {
            out.insert("UpdateReplacePolicy".into(), p.clone());
        }
        if !self.conditions.is_empty() && !self.any_without_condition {
            out.insert("Condition".into(), json!(SHARED_CONDITION));
        }
        Ok(out)
    }
}

/// `_construct_usage_plan`: the usage plan, API key and usage plan key of `Auth.UsagePlan`.
pub(crate) fn usage_plan(
    ctx: &mut Context<'_>,
    api_id: &str,
    auth: Option<&Value>,
    stage_id: &str,
    passthrough: &Map<String, Value>,
) -> Result<Vec<CfnResource>, Failure> {
    let Some(auth) = auth.filter(|a| truthy(a)) else {
        return Ok(Vec::new());
    };
    let auth = ctx.resolve_params(auth)?;
    let Some(plan) = auth.get("UsagePlan").filter(|v| !v.is_null()) else {
        return Ok(Vec::new());
    };
    let Some(plan) = plan.as_object() else {
        return Err(res_err(api_id, "'UsagePlan' must be a dictionary"));
    };
    const FIELDS: &[&str] = &[
        "CreateUsagePlan",
        "Description",
        "Quota",
        "Tags",
        "Throttle",
        "UsagePlanName",
    ];
    if plan.keys().any(|k| !FIELDS.contains(&k.as_str())) {
        return Err(res_err(api_id, "Invalid property for 'UsagePlan'"));
    }
    let create = match plan.get("CreateUsagePlan") {
        None | Some(Value::Null) => {
            return Err(res_err(api_id, "'CreateUsagePlan' is a required field for UsagePlan."))
        }
        Some(Value::String(s)) if ["SHARED", "PER_API", "NONE"].contains(&s.as_str()) => s.clone(),
        Some(_) => {
            return Err(res_err(
                api_id,
                "'CreateUsagePlan' accepts one of ['SHARED', 'PER_API', 'NONE'].",
            ))
        }
    };
    let api_stage = json!({"ApiId": {"Ref": api_id}, "Stage": {"Ref": stage_id}});
    let stage_key = json!({"RestApiId": {"Ref": api_id}, "StageName": {"Ref": stage_id}});
    let (plan_id, key_id, plan_key_id, plan_deps, api_stages, stage_keys, attributes) = match create.as_str() {
        "NONE" => return Ok(Vec::new()),
        "PER_API" => (
            format!("{api_id}UsagePlan"),
            format!("{api_id}ApiKey"),
            format!("{api_id}UsagePlanKey"),
            vec![json!(api_id)],
            vec![api_stage],
            vec![stage_key],
            passthrough.clone(),
        ),
        _ => {
            let shared = &mut ctx.shared_usage_plan;
            if !shared.depends_on.contains(&json!(api_id)) {
                shared.depends_on.push(json!(api_id));
            }
            if !shared.api_stages.contains(&api_stage) {
                shared.api_stages.push(api_stage);
            }
            if !shared.stage_keys.contains(&stage_key) {
                shared.stage_keys.push(stage_key);
            }
            let attributes = shared.combined(passthrough, &mut ctx.conditions)?;
            let shared = &ctx.shared_usage_plan;
            (
                "ServerlessUsagePlan".to_string(),
                "ServerlessApiKey".to_string(),
                "ServerlessUsagePlanKey".to_string(),
                shared.depends_on.clone(),
                shared.api_stages.clone(),
                shared.stage_keys.clone(),
                attributes,
            )
        }
    };
    let mut usage_plan = CfnResource::new(plan_id.clone(), "AWS::ApiGateway::UsagePlan");
    usage_plan.depends_on = Some(Value::Array(plan_deps));
    usage_plan.attributes = attributes.clone();
    usage_plan.set("ApiStages", Some(Value::Array(api_stages)));
    for name in ["UsagePlanName", "Description", "Quota", "Tags", "Throttle"] {
        if let Some(v) = plan.get(name).filter(|v| truthy(v)) {
            usage_plan.set(name, Some(v.clone()));
        }
    }
    let mut key = CfnResource::new(key_id.clone(), "AWS::ApiGateway::ApiKey");
    key.depends_on = Some(json!([plan_id]));
    key.attributes = attributes.clone();
    key.set("Enabled", Some(json!(true)));
    key.set("StageKeys", Some(Value::Array(stage_keys)));
    let mut plan_key = CfnResource::new(plan_key_id, "AWS::ApiGateway::UsagePlanKey");
    plan_key.depends_on = Some(json!([key_id]));
    plan_key.attributes = attributes;
    plan_key.set("KeyId", Some(json!({"Ref": key_id})));
    plan_key.set("KeyType", Some(json!("API_KEY")));
    plan_key.set("UsagePlanId", Some(json!({"Ref": plan_id})));
    Ok(vec![usage_plan, key, plan_key])
}

/// What Python's `list.extend(v)` adds: a list's items, a mapping's keys, a string's characters.
fn python_items(v: &Value) -> Vec<Value> {
    match v {
        Value::Array(a) => a.clone(),
        Value::Object(m) => m.keys().map(|k| json!(k)).collect(),
        Value::String(s) => s.chars().map(|c| json!(c.to_string())).collect(),
        _ => Vec::new(),
    }
}
