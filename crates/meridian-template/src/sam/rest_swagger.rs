//! The rest of what SAM writes into a REST API's swagger: an `Api` event's `RequestModel`
//! (with its request validator) and `RequestParameters`, and the API's `GatewayResponses`,
//! `Models` and `DisableExecuteApiEndpoint`, as aws-sam-translator's `SwaggerEditor` and
//! `ApiGenerator` write them.

use serde_json::{Map, Value};

use super::intrinsics::is_intrinsic;
use super::py27::{Py, PyDict};
use super::rest_auth::{doc_err, Editor};
use super::{python_repr, res_err, truthy, Failure};

const INTEGRATION: &str = "x-amazon-apigateway-integration";
const VALIDATORS: &str = "x-amazon-apigateway-request-validators";
const GATEWAY_RESPONSES: &str = "x-amazon-apigateway-gateway-responses";

fn shown(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => python_repr(other),
    }
}

/// An `Api` event's `RequestModel` and `RequestParameters`, on its method.
#[allow(clippy::too_many_arguments)]
pub(crate) fn add_to_method(
    editor: &mut Editor,
    function_id: &str,
    event_id: &str,
    ep: &Map<String, Value>,
    api_models: Option<&Value>,
    method: &str,
    path: &str,
) -> Result<(), Failure> {
    let ev_err = |m: String| res_err(function_id, format!("Event with id [{event_id}] is invalid. {m}"));
    if let Some(model) = ep.get("RequestModel").filter(|v| truthy(v)) {
        let Some(model) = model.as_object() else {
            return Err(ev_err("Property 'RequestModel' should be a map.".into()));
        };
        if let Some(name) = model.get("Model").filter(|v| truthy(v)) {
            let shown_name = shown(name);
            let unable = |why: &str| {
                ev_err(format!(
                    "Unable to set RequestModel [{shown_name}] on API method [{method}] for path [{path}] because {why}"
                ))
            };
            let Some(models) = api_models.filter(|m| truthy(m)) else {
                return Err(unable("the related API does not define any Models."));
            };
            if !is_intrinsic(models) && !models.is_object() {
                return Err(unable("the related API Models defined is of invalid type."));
            }
            let Some(name) = name.as_str() else {
                return Err(unable("the related API does not contain valid Models."));
            };
            if !models.get(name).is_some_and(truthy) {
                return Err(unable("it wasn't defined in the API's Models."));
            }
            add_request_model(
                editor,
                path,
                method,
                name,
                model.get("Required").filter(|v| !v.is_null()),
            )?;
            let body = model.get("ValidateBody").filter(|v| !v.is_null());
            let params = model.get("ValidateParameters").filter(|v| !v.is_null());
            if body.is_some() || params.is_some() {
                let body = body.cloned().unwrap_or(Value::Bool(false));
                let params = params.cloned().unwrap_or(Value::Bool(false));
                let (Some(body), Some(params)) = (body.as_bool(), params.as_bool()) else {
                    return Err(ev_err(format!(
                        "Unable to set Validator to RequestModel [{shown_name}] on API method [{method}] for path [{path}] ValidateBody and ValidateParameters must be a boolean type, strings or intrinsics are not supported."
                    )));
                };
                add_request_validator(editor, path, method, body, params)?;
            }
        }
    }
    if let Some(list) = ep.get("RequestParameters").filter(|v| truthy(v)) {
        let format_err = || {
            ev_err("Invalid value for 'RequestParameters' property. Keys must be in the format 'method.request.[querystring|path|header].{value}', e.g 'method.request.header.Authorization'.".into())
        };
        let located = |name: &str| {
            ["querystring", "path", "header"]
                .iter()
                .any(|l| name.starts_with(&format!("method.request.{l}.")))
        };
        // (name, required, caching)
        let mut parameters: Vec<(String, Py, bool)> = Vec::new();
        for p in list.as_array().cloned().unwrap_or_default() {
            match &p {
                Value::Object(m) if !m.is_empty() => {
                    let (name, value) = m.iter().next().map(|(k, v)| (k.clone(), v.clone())).unwrap_or_default();
                    if !located(&name) {
                        return Err(format_err());
                    }
                    let ok = value
                        .as_object()
                        .is_some_and(|v| v.keys().all(|k| k == "Required" || k == "Caching"));
                    if !ok {
                        return Err(ev_err("Invalid value for 'RequestParameters' property. Values must be an object, e.g { Required: true, Caching: false }".into()));
                    }
                    let required = value.get("Required").map(Py::from_template).unwrap_or(Py::Bool(false));
                    let caching = value.get("Caching").is_some_and(truthy);
                    parameters.push((name, required, caching));
                }
                Value::String(name) => {
                    if !located(name) {
                        return Err(format_err());
                    }
                    parameters.push((name.clone(), Py::Bool(false), false));
                }
                _ => {
                    return Err(ev_err(
                        "Invalid value for 'RequestParameters' property. Property must be either a string or an object"
                            .into(),
                    ))
                }
            }
        }
        editor.each_method(path, Some(method), &mut |_, def, _| {
            let mut existing = match def.get("parameters") {
                Some(Py::List(l)) => l.clone(),
                _ => Vec::new(),
            };
            for (name, required, caching) in &parameters {
                let located = name.trim_start_matches("method.request.");
                let (location, short) = located.split_once('.').unwrap_or((located, ""));
                // the template's text, but `query` is SAM's own
                let location = if location == "querystring" {
                    Py::s("query")
                } else {
                    Py::Str(location.to_string(), true)
                };
                let mut parameter = PyDict::py27();
                parameter.set("in", false, location);
                parameter.set("name", false, Py::Str(short.to_string(), true));
                parameter.set("required", false, required.clone());
                parameter.set("type", false, Py::s("string"));
                existing.push(Py::Dict(parameter));
                if *caching {
                    if let Some(Py::Dict(integration)) = def.get_mut(INTEGRATION) {
                        let mut keys = match integration.get("cacheKeyParameters") {
                            Some(Py::List(l)) => l.clone(),
                            _ => Vec::new(),
                        };
                        keys.push(Py::Str(name.clone(), true));
                        integration.set("cacheKeyParameters", false, Py::List(keys));
                    }
                }
            }
            def.set("parameters", false, Py::List(existing));
            Ok(())
        })?;
    }
    Ok(())
}

/// `add_request_model_to_method`: a body parameter (Swagger) or request body (OpenAPI 3).
fn add_request_model(
    editor: &mut Editor,
    path: &str,
    method: &str,
    model: &str,
    required: Option<&Value>,
) -> Result<(), Failure> {
    let model = model.to_lowercase();
    let top = editor.doc.as_dict();
    let swagger = top
        .and_then(|d| d.get("swagger"))
        .is_some_and(|v| !matches!(v, Py::None));
    let openapi3 = top
        .and_then(|d| d.get("openapi"))
        .and_then(|v| v.to_json().as_str().map(str::to_string))
        .is_some_and(|v| super::rest_api::version_matches(&v, "3"));
    editor.each_method(path, Some(method), &mut |_, def, _| {
        if swagger {
            let mut existing = match def.get("parameters") {
                Some(Py::List(l)) => l.clone(),
                _ => Vec::new(),
            };
            let mut parameter = PyDict::py27();
            parameter.set("in", false, Py::s("body"));
            parameter.set("name", false, Py::Str(model.clone(), true));
            let mut schema = PyDict::plain();
            schema.set("$ref", false, Py::s(&format!("#/definitions/{model}")));
            parameter.set("schema", false, Py::Dict(schema));
            if let Some(r) = required {
                parameter.set("required", false, Py::from_template(r));
            }
            existing.push(Py::Dict(parameter));
            def.set("parameters", false, Py::List(existing));
        } else if openapi3 {
            let mut schema = PyDict::plain();
            schema.set("$ref", false, Py::s(&format!("#/components/schemas/{model}")));
            let mut json = PyDict::plain();
            json.set("schema", false, Py::Dict(schema));
            let mut content = PyDict::plain();
            content.set("application/json", false, Py::Dict(json));
            let mut body = PyDict::plain();
            body.set("content", false, Py::Dict(content));
            if let Some(r) = required {
                body.set("required", false, Py::from_template(r));
            }
            def.set("requestBody", false, Py::Dict(body));
        }
        Ok(())
    })
}

/// `add_request_validator_to_method`.
fn add_request_validator(
    editor: &mut Editor,
    path: &str,
    method: &str,
    body: bool,
    params: bool,
) -> Result<(), Failure> {
    let name = match (body, params) {
        (true, true) => "body-and-params",
        (true, false) => "body-only",
        (false, true) => "params-only",
        (false, false) => "no-validation",
    };
    if let Some(doc) = editor.doc.as_dict_mut() {
        let present = doc.get(VALIDATORS).is_some_and(|v| truthy(&v.to_json()));
        if !present {
            doc.set(VALIDATORS, false, Py::Dict(PyDict::py27()));
        }
        if let Some(Py::Dict(validators)) = doc.get_mut(VALIDATORS) {
            if !validators.get(name).is_some_and(|v| truthy(&v.to_json())) {
                let mut v = PyDict::py27();
                v.set("validateRequestBody", false, Py::Bool(body));
                v.set("validateRequestParameters", false, Py::Bool(params));
                validators.set(name, false, Py::Dict(v));
            }
        }
    }
    editor.each_method(path, Some(method), &mut |_, def, _| {
        def.set("x-amazon-apigateway-request-validator", false, Py::s(name));
        Ok(())
    })
}

/// The Python type name SAM's message shows for a value.
fn type_name(v: &Value) -> &'static str {
    match v {
        Value::Null => "NoneType",
        Value::Bool(_) => "bool",
        Value::Number(n) if n.is_f64() => "float",
        Value::Number(_) => "int",
        Value::String(_) => "Py27UniStr",
        Value::Array(_) => "list",
        Value::Object(_) => "Py27Dict",
    }
}

/// `_add_gateway_responses`.
pub(crate) fn gateway_responses(api_id: &str, responses: &Value, body: Option<&mut Py>) -> Result<(), Failure> {
    if !truthy(responses) {
        return Ok(());
    }
    let Some(body) = body else {
        return Err(res_err(
            api_id,
            "GatewayResponses works only with inline Swagger specified in 'DefinitionBody' property.",
        ));
    };
    let Some(responses) = responses.as_object() else {
        return Ok(());
    };
    for (kind, response) in responses {
        if is_intrinsic(response) {
            return Err(res_err(
                api_id,
                "Unable to set GatewayResponses attribute because intrinsic functions are not supported for this field.",
            ));
        }
        let Some(r) = response.as_object() else {
            return Err(res_err(
                api_id,
                format!(
                    "Invalid property type '{}' for GatewayResponses. Expected an object of type 'GatewayResponse'.",
                    type_name(response)
                ),
            ));
        };
        if let Some(k) = r
            .keys()
            .find(|k| !["ResponseParameters", "ResponseTemplates", "StatusCode"].contains(&k.as_str()))
        {
            return Err(res_err(
                api_id,
                format!("Invalid property '{k}' in 'GatewayResponses' property '{kind}'."),
            ));
        }
    }
    if !super::rest_api::is_valid_swagger(&body.to_json()) {
        return Err(res_err(
            api_id,
            "Unable to add Auth configuration because 'DefinitionBody' does not contain a valid Swagger definition.",
        ));
    }
    let mut doc = body.deepcopy();
    let mut generated = PyDict::py27();
    let order = Py::from_template(&Value::Object(responses.clone()))
        .as_dict()
        .map(PyDict::keys)
        .unwrap_or_default();
    for kind in order {
        let r = responses
            .get(&kind)
            .and_then(Value::as_object)
            .cloned()
            .unwrap_or_default();
        let parameters = r.get("ResponseParameters").filter(|v| truthy(v));
        if parameters.is_some_and(|p| !p.is_object()) {
            return Err(res_err(
                api_id,
                format!("Property 'GatewayResponses.{kind}.ResponseParameters' should be a map."),
            ));
        }
        let parameters = parameters.and_then(Value::as_object).cloned().unwrap_or_default();
        if let Some(k) = parameters
            .keys()
            .find(|k| !["Headers", "Paths", "QueryStrings"].contains(&k.as_str()))
        {
            return Err(res_err(api_id, format!("Invalid gateway response parameter '{k}'")));
        }
        let status = match r.get("StatusCode").filter(|v| !v.is_null()) {
            None => None,
            Some(Value::String(s)) => Some(s.clone()),
            Some(Value::Bool(b)) => Some(if *b { "True" } else { "False" }.to_string()),
            Some(v @ Value::Number(_)) => Some(python_repr(v)),
            Some(v) => Some(python_repr(v)),
        };
        if let Some(code) = &status {
            let numeric = !code.is_empty() && code.len() <= 3 && code.chars().all(|c| c.is_ascii_digit());
            if r.get("StatusCode").is_some_and(truthy) && !numeric {
                return Err(res_err(api_id, "Property 'StatusCode' must be numeric"));
            }
        }
        let mut prefixed = PyDict::py27();
        for (name, prefix) in [
            ("Headers", "header."),
            ("Paths", "path."),
            ("QueryStrings", "querystring."),
        ] {
            let value = parameters.get(name).cloned().unwrap_or(Value::Object(Map::new()));
            let Some(value) = value.as_object() else {
                return Err(res_err(
                    api_id,
                    format!("Property 'ResponseParameters.{name}' should be a map."),
                ));
            };
            let order = Py::from_template(&Value::Object(value.clone()))
                .as_dict()
                .map(PyDict::keys)
                .unwrap_or_default();
            for key in order {
                prefixed.set(
                    &format!("gatewayresponse.{prefix}{key}"),
                    true,
                    Py::from_template(value.get(&key).unwrap_or(&Value::Null)),
                );
            }
        }
        let templates = match r.get("ResponseTemplates").filter(|v| truthy(v)) {
            Some(t) => Py::from_template(t),
            None => Py::Dict(PyDict::py27()),
        };
        let mut swagger = PyDict::py27();
        swagger.set("responseParameters", false, Py::Dict(prefixed));
        swagger.set("responseTemplates", false, templates);
        if let Some(code) = status.filter(|c| !c.is_empty()) {
            swagger.set("statusCode", false, Py::s(&code));
        }
        generated.set(&kind, true, Py::Dict(swagger));
    }
    if generated.len() > 0 {
        if let Some(d) = doc.as_dict_mut() {
            let mut existing = match d.get(GATEWAY_RESPONSES) {
                Some(Py::Dict(e)) if e.len() > 0 => e.clone(),
                _ => PyDict::py27(),
            };
            for kind in generated.keys() {
                if let Some(v) = generated.get(&kind) {
                    existing.set(&kind, true, v.clone());
                }
            }
            d.set(GATEWAY_RESPONSES, false, Py::Dict(existing));
        }
    }
    *body = doc.deepcopy();
    Ok(())
}

/// `_add_models`: the models as the swagger's `definitions`, named in lower case.
pub(crate) fn models(
    api_id: &str,
    models: &Value,
    body: Option<&mut Py>,
    open_api_version: Option<&Value>,
) -> Result<(), Failure> {
    if !truthy(models) {
        return Ok(());
    }
    let Some(body) = body else {
        return Err(res_err(
            api_id,
            "Models works only with inline Swagger specified in 'DefinitionBody' property.",
        ));
    };
    if !super::rest_api::is_valid_swagger(&body.to_json()) {
        return Err(res_err(
            api_id,
            "Unable to add Models definitions because 'DefinitionBody' does not contain a valid Swagger definition.",
        ));
    }
    let Some(models) = models.as_object() else {
        return Err(res_err(api_id, "Invalid value for 'Models' property"));
    };
    if !models.values().all(Value::is_object) {
        return Err(res_err(api_id, "Invalid value for 'Models' property"));
    }
    let mut doc = body.deepcopy();
    if let Some(d) = doc.as_dict_mut() {
        let mut definitions = match d.get("definitions") {
            Some(Py::Dict(e)) if e.len() > 0 => e.clone(),
            _ => PyDict::py27(),
        };
        let order = Py::from_template(&Value::Object(models.clone()))
            .as_dict()
            .map(PyDict::keys)
            .unwrap_or_default();
        for name in order {
            let Some(schema) = models.get(&name) else { continue };
            if !schema.get("type").is_some_and(truthy) {
                return Err(doc_err("'Models' schema is missing 'type'.".into()));
            }
            definitions.set(&name.to_lowercase(), true, Py::from_template(schema));
        }
        if definitions.len() > 0 {
            d.set("definitions", false, Py::Dict(definitions));
        }
    }
    let mut doc = doc.deepcopy();
    super::rest_api::openapi_postprocess(&mut doc, open_api_version)?;
    *body = doc;
    Ok(())
}

/// `_add_endpoint_extension`: `disableExecuteApiEndpoint` in the endpoint configuration
/// extension (of each server for OpenAPI 3).
pub(crate) fn disable_execute_api_endpoint(api_id: &str, value: &Value, body: Option<&mut Py>) -> Result<(), Failure> {
    let Some(body) = body else {
        return Err(res_err(
            api_id,
            "DisableExecuteApiEndpoint works only within 'DefinitionBody' property.",
        ));
    };
    if !super::rest_api::is_valid_swagger(&body.to_json()) {
        return Err(doc_err(
            "Invalid Swagger document or the Swagger document is not explicitly defined in 'DefinitionBody'.".into(),
        ));
    }
    const CONFIG: &str = "x-amazon-apigateway-endpoint-configuration";
    let mut doc = body.deepcopy();
    let value = Py::from_template(value);
    let set_in = |d: &mut PyDict, at: &str| -> Result<(), Failure> {
        let config = d.setdefault(CONFIG, false, Py::Dict(PyDict::plain()));
        match config.as_dict_mut() {
            Some(c) => {
                c.set("disableExecuteApiEndpoint", false, value.clone());
                Ok(())
            }
            None => Err(doc_err(format!(
                "Invalid OpenAPI definition{at}: The value of '{CONFIG}' should be a map."
            ))),
        }
    };
    let openapi3 = doc
        .as_dict()
        .and_then(|d| d.get("openapi"))
        .and_then(|v| v.to_json().as_str().map(str::to_string))
        .is_some_and(|v| super::rest_api::version_matches(&v, "3"));
    if let Some(d) = doc.as_dict_mut() {
        if openapi3 {
            let mut servers = match d.get("servers") {
                Some(Py::List(l)) => l.clone(),
                Some(_) | None => vec![Py::Dict(PyDict::py27())],
            };
            for (i, server) in servers.iter_mut().enumerate() {
                let Some(s) = server.as_dict_mut() else {
                    return Err(doc_err(format!(
                        "Invalid OpenAPI definition of 'servers[{i}]': It should be a map."
                    )));
                };
                set_in(s, &format!(" of 'servers[{i}]'"))?;
            }
            d.set("servers", false, Py::List(servers));
        } else {
            set_in(d, "")?;
        }
    }
    *body = doc.deepcopy();
    Ok(())
}
