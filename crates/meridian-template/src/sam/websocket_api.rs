//! WebSocket APIs (API Gateway v2) as aws-sam-translator 1.110.0 makes them:
//! `AWS::Serverless::WebSocketApi` -> an `AWS::ApiGatewayV2::Api` with `ProtocolType: WEBSOCKET`;
//! per route an `AWS::ApiGatewayV2::Route`, its `AWS_PROXY` `AWS::ApiGatewayV2::Integration` and
//! the `AWS::Lambda::Permission` that lets API Gateway call the route's function; one
//! auto-deployed `AWS::ApiGatewayV2::Stage` (`default` unless named); with `Auth`, the `$connect`
//! route's authorization (a `CUSTOM` one is an `AWS::ApiGatewayV2::Authorizer`, and its
//! permission unless it has an `InvokeRole`); with `Domain`, the custom domain of an HTTP API
//! (see [`super::domain`]), mutual TLS excepted; its `Route53` records are not shared with other
//! APIs naming the same hosted zone (SAM's quirk: the last such API's records win).
//!
//! As in SAM, the API's resource attributes (Condition, DeletionPolicy...) are not passed on to
//! what it generates, nor kept on the API; `FailOnWarnings` is checked but has no effect.
//!
//! Local regions do not serve WebSocket APIs: the resulting `WEBSOCKET` API is refused at deploy
//! time.

use serde_json::{json, Map, Value};

use super::domain::RecordSetGroups;
use super::intrinsics::is_intrinsic;
use super::validate::{self, Check};
use super::{res_err, truthy, CfnResource, Context, Failure};

const RESOURCE_TYPE: &str = "AWS::Serverless::WebSocketApi";
const TAG_NAME: &str = "websocketapi:createdBy";
/// Not HTTP APIs' `$default`, which would be confused with the `$default` route.
const DEFAULT_STAGE: &str = "default";
const CONNECT: &str = "$connect";

/// The properties of `AWS::Serverless::WebSocketApi`, in the model's order.
const MODEL: &[(&str, Check)] = &[
    ("ApiKeySelectionExpression", Check::Str),
    ("AccessLogSettings", Check::Dict),
    ("Auth", Check::Dict),
    ("DefaultRouteSettings", Check::Dict),
    ("Description", Check::Str),
    ("DisableExecuteApiEndpoint", Check::Bool),
    ("Domain", Check::Dict),
    ("DisableSchemaValidation", Check::Bool),
    ("FailOnWarnings", Check::Bool),
    ("IpAddressType", Check::Str),
    ("Name", Check::Str),
    ("PropagateTags", Check::Bool),
    ("Routes", Check::Dict),
    ("RouteSettings", Check::Dict),
    ("RouteSelectionExpression", Check::Str),
    ("StageName", Check::StrOrDict),
    ("StageVariables", Check::Dict),
    ("Tags", Check::Dict),
];
const REQUIRED: &[&str] = &["Routes", "RouteSelectionExpression"];

/// `Auth.AuthType`, as SAM validates it (in any case).
#[derive(Debug, Clone, Copy, PartialEq)]
enum AuthType {
    None,
    AwsIam,
    Custom,
}

impl AuthType {
    fn parse(s: &str) -> Option<Self> {
        match s.to_uppercase().as_str() {
            "NONE" => Some(AuthType::None),
            "AWS_IAM" => Some(AuthType::AwsIam),
            "CUSTOM" => Some(AuthType::Custom),
            _ => None,
        }
    }

    fn as_str(self) -> &'static str {
        match self {
            AuthType::None => "NONE",
            AuthType::AwsIam => "AWS_IAM",
            AuthType::Custom => "CUSTOM",
        }
    }
}

/// The API's `Auth` (a non-empty map): it applies to the `$connect` route.
struct Auth<'a> {
    api_id: &'a str,
    config: &'a Map<String, Value>,
}

impl Auth<'_> {
    /// `_validate_auth`: the type is known, and only `CUSTOM` takes more settings.
    fn validate(&self) -> Result<(), Failure> {
        let fail = |m: &str| Err(res_err(self.api_id, m));
        let Some(raw) = self.config.get("AuthType").filter(|v| truthy(v)) else {
            return fail("AuthType must be specified for additional auth configurations.");
        };
        let Some(auth_type) = raw.as_str().and_then(AuthType::parse) else {
            return fail("AuthType is not one of AWS_IAM, CUSTOM or NONE.");
        };
        let extra = self.config.len() > 1;
        match auth_type {
            AuthType::Custom if !self.config.get("AuthArn").is_some_and(truthy) => {
                fail("AuthArn must be specified if AuthType is CUSTOM.")
            }
            AuthType::AwsIam if extra => fail("No additional configurations supported for AuthType AWS_IAM."),
            AuthType::None if extra => fail("No additional configurations supported for AuthType NONE."),
            _ => Ok(()),
        }
    }

    /// The route's `AuthorizationType`. SAM compares the type as written, so only upper case
    /// `CUSTOM` and `AWS_IAM` count: any other spelling is `NONE`.
    fn route_type(&self) -> AuthType {
        match self.config.get("AuthType").and_then(Value::as_str) {
            Some("CUSTOM") => AuthType::Custom,
            Some("AWS_IAM") => AuthType::AwsIam,
            _ => AuthType::None,
        }
    }

    /// The function of a `CUSTOM` authorizer.
    fn function_arn(&self) -> Option<&Value> {
        self.config.get("AuthArn").filter(|v| truthy(v))
    }

    /// `_construct_authorizer`: the `$connect` route's REQUEST authorizer.
    fn authorizer(&self, logical_id: String) -> CfnResource {
        let mut a = CfnResource::new(logical_id.clone(), "AWS::ApiGatewayV2::Authorizer");
        a.set("ApiId", Some(json!({"Ref": self.api_id})));
        if let Some(role) = self.config.get("InvokeRole") {
            a.set("AuthorizerCredentialsArn", Some(role.clone()));
        }
        a.set("AuthorizerType", Some(json!("REQUEST")));
        if let Some(arn) = self.config.get("AuthArn") {
            a.set("AuthorizerUri", Some(invocation_uri("AuthArn", arn)));
        }
        a.set("IdentitySource", self.config.get("IdentitySource").cloned());
        let name = self.config.get("Name").filter(|v| truthy(v)).cloned();
        a.set("Name", Some(name.unwrap_or(Value::String(logical_id))));
        a
    }

    /// `_construct_authorizer_permission`: none when API Gateway calls the authorizer with a role.
    fn permission(&self) -> Option<CfnResource> {
        if self.route_type() != AuthType::Custom || self.config.get("InvokeRole").is_some_and(truthy) {
            return None;
        }
        let arn = self.function_arn()?.clone();
        Some(super::http_api::authorizer_permission(
            format!("{}AuthorizerPermission", self.api_id),
            arn,
            self.api_id,
        ))
    }
}

/// `Fn::Sub` of the Lambda invocation URI of the function in `variable`.
fn invocation_uri(variable: &str, function_arn: &Value) -> Value {
    json!({"Fn::Sub": [
        format!("arn:${{AWS::Partition}}:apigateway:${{AWS::Region}}:lambda:path/2015-03-31/functions/${{{variable}}}/invocations"),
        {variable: function_arn},
    ]})
}

/// Python's `str.capitalize`: the first character upper case, the others lower case.
fn capitalize(s: &str) -> String {
    let mut chars = s.chars();
    match chars.next() {
        Some(first) => first.to_uppercase().chain(chars.flat_map(char::to_lowercase)).collect(),
        None => String::new(),
    }
}

/// `_sanitize_route_key`: the part of the route's resources' ids that names the route.
fn route_id_part(api_id: &str, route_key: &str) -> Result<String, Failure> {
    if matches!(route_key, "$connect" | "$disconnect" | "$default") {
        return Ok(capitalize(&route_key.replace('$', "")));
    }
    if !route_key.is_empty() && route_key.chars().all(char::is_alphanumeric) {
        return Ok(capitalize(route_key));
    }
    Err(res_err(
        api_id,
        format!(
            "Route key '{route_key}' must be alphanumeric. Only $connect, $disconnect, and $default special routes are supported."
        ),
    ))
}

/// The API being translated, with what its routes need.
struct WebSocketApi<'a> {
    id: &'a str,
    stage_name: Value,
    auth: Option<Auth<'a>>,
}

impl WebSocketApi<'_> {
    /// The route of `route_key`, its integration and its function's permission, and with `Auth`
    /// on `$connect`, its `CUSTOM` authorizer.
    fn route(&self, route_key: &str, spec: &Value) -> Result<(Vec<CfnResource>, Option<CfnResource>), Failure> {
        let id = self.id;
        let base = format!("{id}{}", route_id_part(id, route_key)?);
        let integration_id = format!("{base}Integration");
        let Some(spec) = spec.as_object() else {
            return Err(res_err(id, format!("Property 'Routes.{route_key}' should be a map.")));
        };
        let get = |k: &str| spec.get(k).cloned();

        let mut route = CfnResource::new(format!("{base}Route"), "AWS::ApiGatewayV2::Route");
        route.set("RouteKey", Some(json!(route_key)));
        route.set("ApiId", Some(json!({"Ref": id})));
        route.set("ApiKeyRequired", get("ApiKeyRequired"));
        route.set("ModelSelectionExpression", get("ModelSelectionExpression"));
        route.set("OperationName", get("OperationName"));
        route.set("RequestModels", get("RequestModels"));
        if let Some(parameters) = spec.get("RequestParameters").filter(|v| truthy(v)) {
            if route_key != CONNECT {
                return Err(res_err(
                    id,
                    "Request parameters are only supported for the $connect route in WebSocket APIs.",
                ));
            }
            route.set("RequestParameters", Some(parameters.clone()));
        }
        route.set(
            "RouteResponseSelectionExpression",
            get("RouteResponseSelectionExpression"),
        );
        route.set(
            "Target",
            Some(json!({"Fn::Join": ["/", ["integrations", {"Ref": integration_id}]]})),
        );

        let mut authorizer = None;
        if let Some(auth) = &self.auth {
            auth.validate()?;
            if route_key == CONNECT {
                let auth_type = auth.route_type();
                route.set("AuthorizationType", Some(json!(auth_type.as_str())));
                if auth_type == AuthType::Custom {
                    let a = auth.authorizer(format!("{id}ConnectAuthorizer"));
                    route.set("AuthorizerId", Some(json!({"Ref": a.logical_id})));
                    authorizer = Some(a);
                }
            }
        }

        let Some(function_arn) = spec.get("FunctionArn") else {
            return Err(res_err(id, "Route must have associated function."));
        };
        let mut integration = CfnResource::new(integration_id, "AWS::ApiGatewayV2::Integration");
        integration.set("ApiId", Some(json!({"Ref": id})));
        integration.set("IntegrationType", Some(json!("AWS_PROXY")));
        integration.set("IntegrationUri", Some(invocation_uri("FunctionArn", function_arn)));
        integration.set("TimeoutInMillis", get("IntegrationTimeout"));

        let mut permission = CfnResource::new(format!("{base}Permission"), "AWS::Lambda::Permission");
        permission.set("Action", Some(json!("lambda:InvokeFunction")));
        permission.set("FunctionName", Some(function_arn.clone()));
        permission.set("Principal", Some(json!("apigateway.amazonaws.com")));
        let prefix =
            format!("arn:${{AWS::Partition}}:execute-api:${{AWS::Region}}:${{AWS::AccountId}}:${{{id}.ApiId}}/");
        let source_arn = match &self.stage_name {
            Value::String(stage) => json!({"Fn::Sub": format!("{prefix}{stage}/{route_key}")}),
            stage => json!({"Fn::Sub": [format!("{prefix}${{__StageName__}}/{route_key}"), {"__StageName__": stage}]}),
        };
        permission.set("SourceArn", Some(source_arn));
        Ok((vec![route, integration, permission], authorizer))
    }

    /// `_construct_stage`: auto-deployed, named `default` unless `StageName` says otherwise.
    fn stage(&self, props: &Map<String, Value>, tags: Value) -> Result<CfnResource, Failure> {
        let id = self.id;
        let stage_id = match self.stage_name.as_str() {
            Some("$default") => {
                return Err(res_err(id, "Stages cannot be named $default for WebSocket APIs."));
            }
            Some(DEFAULT_STAGE) => format!("{id}DefaultStage"),
            // as in SAM, the name is taken as it is (CloudFormation refuses a non-alphanumeric id)
            Some(name) => format!("{id}{name}Stage"),
            // an intrinsic: no prefix
            None => format!("{id}Stage"),
        };
        let get = |k: &str| props.get(k).cloned();
        let mut stage = CfnResource::new(stage_id, "AWS::ApiGatewayV2::Stage");
        stage.set("ApiId", Some(json!({"Ref": id})));
        stage.set("StageName", Some(self.stage_name.clone()));
        stage.set("StageVariables", get("StageVariables"));
        stage.set("AccessLogSettings", get("AccessLogSettings"));
        stage.set("DefaultRouteSettings", get("DefaultRouteSettings"));
        stage.set("Tags", Some(tags));
        stage.set("AutoDeploy", Some(json!(true)));
        stage.set("RouteSettings", get("RouteSettings"));
        Ok(stage)
    }
}

/// `AWS::Serverless::WebSocketApi` -> its CloudFormation resources, in SAM's order (the API; each
/// route's route, integration and permission; the domain's resources; the stage; the authorizer
/// and its permission).
pub(crate) fn translate(ctx: &Context<'_>, id: &str, resource: &Value) -> Result<Vec<CfnResource>, Failure> {
    let empty = Map::new();
    let props = resource.get("Properties").and_then(Value::as_object).unwrap_or(&empty);
    validate::properties(id, RESOURCE_TYPE, props, MODEL, REQUIRED)?;
    let get = |k: &str| props.get(k).filter(|v| !v.is_null());
    let resolve = |k: &str| get(k).map(|v| ctx.resolve_params(v)).transpose();
    let auth_config = resolve("Auth")?;
    let domain = resolve("Domain")?;
    let routes = resolve("Routes")?.unwrap_or(Value::Null);

    // the generator's own checks
    let routes = match routes {
        Value::Object(r) if !r.is_empty() => r,
        Value::Object(_) | Value::Null => {
            return Err(res_err(id, "WebSocket API must have at least one route."));
        }
        _ => return Err(res_err(id, "Property 'Routes' should be a map.")),
    };
    if let Some(t) = get("IpAddressType") {
        if !is_intrinsic(t) && !matches!(t.as_str(), Some("ipv4" | "dualstack")) {
            return Err(res_err(id, "IpAddressType must be 'ipv4' or 'dualstack'."));
        }
    }
    let domain = match domain {
        None => None,
        Some(Value::Object(d)) => Some(d),
        Some(_) => return Err(res_err(id, "Property 'Domain' should be a map.")),
    };
    if domain
        .as_ref()
        .is_some_and(|d| d.get("MutualTlsAuthentication").is_some_and(truthy))
    {
        return Err(res_err(
            id,
            "Mutual TLS domain name association is not supported for Websocket APIs.",
        ));
    }
    let auth = match auth_config.as_ref().filter(|a| truthy(a)) {
        None => None,
        Some(Value::Object(config)) => Some(Auth { api_id: id, config }),
        Some(_) => return Err(res_err(id, "Property 'Auth' should be a map.")),
    };
    if auth.is_some() && !routes.contains_key(CONNECT) {
        return Err(res_err(
            id,
            "Authorization is only available if there is a $connect route.",
        ));
    }

    // The API, with SAM's tag added to the user's; with PropagateTags, the user's tags (and
    // SAM's) go to the stage and the domain too.
    let user_tags = get("Tags").and_then(Value::as_object).filter(|t| !t.is_empty());
    let mut tags = user_tags.cloned().unwrap_or_default();
    tags.insert(TAG_NAME.into(), json!("SAM"));
    let tags = Value::Object(tags);
    let generated_tags = if user_tags.is_some() && get("PropagateTags").is_some_and(truthy) {
        tags.clone()
    } else {
        json!({TAG_NAME: "SAM"})
    };
    let mut api = CfnResource::new(id, "AWS::ApiGatewayV2::Api");
    api.depends_on = resource.get("DependsOn").cloned();
    for key in [
        "ApiKeySelectionExpression",
        "Description",
        "DisableExecuteApiEndpoint",
        "DisableSchemaValidation",
        "IpAddressType",
    ] {
        api.set(key, get(key).cloned());
    }
    api.set("Name", Some(get("Name").cloned().unwrap_or_else(|| json!(id))));
    api.set("ProtocolType", Some(json!("WEBSOCKET")));
    api.set("RouteSelectionExpression", get("RouteSelectionExpression").cloned());
    api.set("Tags", Some(tags));

    // SAM hands each WebSocket API a record set group map of its own (it reads the shared one
    // under a misspelt name): an API's group holds only its own records, and the last API to
    // name a hosted zone decides the group's records.
    let domain_resources = match &domain {
        Some(config) => super::domain::http(
            &mut RecordSetGroups::new(),
            id,
            config,
            &Map::new(),
            generated_tags.clone(),
        )?,
        None => Vec::new(),
    };
    let ws = WebSocketApi {
        id,
        stage_name: get("StageName").cloned().unwrap_or_else(|| json!(DEFAULT_STAGE)),
        auth,
    };
    let mut stage = ws.stage(props, generated_tags)?;

    let mut out = vec![api];
    let mut route_ids = Vec::new();
    let mut authorizer = None;
    for (key, spec) in &routes {
        let (resources, route_authorizer) = ws.route(key, spec)?;
        route_ids.extend(resources.first().map(|r| json!(r.logical_id)));
        out.extend(resources);
        authorizer = route_authorizer.or(authorizer);
    }
    out.extend(domain_resources);
    // a stage whose settings name routes must wait for them
    if get("RouteSettings").is_some_and(truthy) && !route_ids.is_empty() {
        stage.depends_on = Some(Value::Array(route_ids));
    }
    out.push(stage);
    if let Some(a) = authorizer {
        out.push(a);
        out.extend(ws.auth.as_ref().and_then(Auth::permission));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sam::SamOptions;

    fn translate_props(props: Value) -> Result<Vec<CfnResource>, String> {
        let opts = SamOptions::default();
        let ctx = Context::empty(&opts);
        let resource = json!({"Type": RESOURCE_TYPE, "Properties": props});
        translate(&ctx, "Chat", &resource).map_err(|f| match f {
            Failure::Resource(e) => e.message,
            Failure::Document(d) => d.iter().map(|e| e.full_message()).collect::<Vec<_>>().join(" "),
        })
    }

    fn ids(resources: &[CfnResource]) -> Vec<&str> {
        resources.iter().map(|r| r.logical_id.as_str()).collect()
    }

    #[test]
    fn routes_become_route_integration_and_permission() {
        let out = translate_props(json!({
            "RouteSelectionExpression": "$request.body.action",
            "Routes": {
                "$connect": {"FunctionArn": {"Fn::GetAtt": ["OnConnect", "Arn"]}},
                "sendMessage": {"FunctionArn": "arn:fn", "IntegrationTimeout": 500}
            }
        }))
        .expect("a valid API");
        assert_eq!(
            ids(&out),
            vec![
                "Chat",
                "ChatConnectRoute",
                "ChatConnectIntegration",
                "ChatConnectPermission",
                // SAM capitalizes the key: the rest of it is lower case
                "ChatSendmessageRoute",
                "ChatSendmessageIntegration",
                "ChatSendmessagePermission",
                "ChatDefaultStage",
            ]
        );
        assert_eq!(out[0].properties["ProtocolType"], json!("WEBSOCKET"));
        assert_eq!(out[0].properties["Name"], json!("Chat"));
        assert_eq!(out[0].properties["Tags"], json!({TAG_NAME: "SAM"}));
        assert_eq!(out[5].properties["TimeoutInMillis"], json!(500));
        assert_eq!(
            out[6].properties["SourceArn"],
            json!({"Fn::Sub": "arn:${AWS::Partition}:execute-api:${AWS::Region}:${AWS::AccountId}:${Chat.ApiId}/default/sendMessage"})
        );
        assert_eq!(out[7].properties["StageName"], json!("default"));
        assert_eq!(out[7].properties["AutoDeploy"], json!(true));
    }

    #[test]
    fn a_custom_authorizer_guards_connect() {
        let out = translate_props(json!({
            "RouteSelectionExpression": "$request.body.action",
            "StageName": {"Ref": "Stage"},
            "Auth": {"AuthType": "CUSTOM", "AuthArn": "arn:auth", "IdentitySource": ["route.request.header.Auth"]},
            "Routes": {"$connect": {"FunctionArn": "arn:fn"}}
        }))
        .expect("a valid API");
        assert_eq!(
            ids(&out),
            vec![
                "Chat",
                "ChatConnectRoute",
                "ChatConnectIntegration",
                "ChatConnectPermission",
                "ChatStage",
                "ChatConnectAuthorizer",
                "ChatAuthorizerPermission",
            ]
        );
        assert_eq!(out[1].properties["AuthorizationType"], json!("CUSTOM"));
        assert_eq!(
            out[1].properties["AuthorizerId"],
            json!({"Ref": "ChatConnectAuthorizer"})
        );
        assert_eq!(out[5].properties["Name"], json!("ChatConnectAuthorizer"));
        assert_eq!(
            out[3].properties["SourceArn"]["Fn::Sub"][1],
            json!({"__StageName__": {"Ref": "Stage"}})
        );
    }

    #[test]
    fn errors_use_sams_words() {
        let api = |extra: Value| {
            let mut props = json!({"RouteSelectionExpression": "$request.body.action",
                                   "Routes": {"$connect": {"FunctionArn": "arn:fn"}}});
            if let (Some(p), Value::Object(e)) = (props.as_object_mut(), extra) {
                p.extend(e);
            }
            translate_props(props).map(|_| ()).err().unwrap_or_default()
        };
        assert_eq!(
            api(json!({"Routes": {}})),
            "WebSocket API must have at least one route."
        );
        assert_eq!(
            api(json!({"Routes": {"send-it": {"FunctionArn": "arn:fn"}}})),
            "Route key 'send-it' must be alphanumeric. Only $connect, $disconnect, and $default special routes are supported."
        );
        assert_eq!(
            api(json!({"StageName": "$default"})),
            "Stages cannot be named $default for WebSocket APIs."
        );
        assert_eq!(
            api(json!({"Auth": {"AuthType": "AWS_IAM", "AuthArn": "arn:auth"}})),
            "No additional configurations supported for AuthType AWS_IAM."
        );
        assert_eq!(
            api(json!({"Routes": {"$default": {"FunctionArn": "arn:fn"}}, "Auth": {"AuthType": "NONE"}})),
            "Authorization is only available if there is a $connect route."
        );
        assert_eq!(
            api(
                json!({"Domain": {"DomainName": "a.com", "CertificateArn": "c", "MutualTlsAuthentication": {"TruststoreUri": "s3://t"}}})
            ),
            "Mutual TLS domain name association is not supported for Websocket APIs."
        );
        assert_eq!(
            api(json!({"Routes": {"$connect": "arn:fn"}})),
            "Property 'Routes.$connect' should be a map."
        );
    }
}
