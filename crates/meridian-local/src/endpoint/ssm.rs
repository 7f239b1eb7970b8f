//! SSM Parameter Store and Secrets Manager (JSON 1.1 protocol) over the local parameter and
//! secrets store: the same values a buildspec's `parameter-store` and `secrets-manager` read and
//! `meridian params` / `meridian secrets` write.

use super::query::{json_error, json_ok};
use super::{Body, Endpoint};
use crate::credentials::ACCOUNT_ID;
use bytes::Bytes;
use hyper::{Response, StatusCode};
use meridian_buildspec::secrets::Info;
use meridian_buildspec::SecretKind;
use serde_json::{json, Value};

type Answer = Result<Value, (StatusCode, &'static str, String)>;

fn bad(code: &'static str, message: impl Into<String>) -> (StatusCode, &'static str, String) {
    (StatusCode::BAD_REQUEST, code, message.into())
}

fn str_field<'a>(v: &'a Value, key: &str) -> Result<&'a str, (StatusCode, &'static str, String)> {
    v.get(key)
        .and_then(Value::as_str)
        .ok_or_else(|| bad("ValidationException", format!("1 validation error detected: Value null at '{key}' failed to satisfy constraint: Member must not be null")))
}

pub async fn handle(
    ep: &Endpoint,
    service: &str,
    region: &str,
    target: &str,
    body: Bytes,
    request_id: &str,
) -> Response<Body> {
    let input: Value = if body.is_empty() {
        json!({})
    } else {
        match serde_json::from_slice(&body) {
            Ok(v @ Value::Object(_)) => v,
            Ok(_) | Err(_) => {
                return json_error(
                    StatusCode::BAD_REQUEST,
                    "SerializationException",
                    "the request body is not a JSON object",
                    request_id,
                )
            }
        }
    };
    let store = match ep.secrets() {
        Ok(s) => s,
        Err(e) => return json_error(StatusCode::INTERNAL_SERVER_ERROR, "InternalServerError", &e, request_id),
    };
    let op = target.split_once('.').map(|(_, o)| o).unwrap_or("");
    let answer = match service {
        "ssm" => ssm(store, op, &input, region),
        _ => secrets(store, op, &input, region),
    };
    match answer {
        Ok(v) => json_ok(&v, request_id),
        Err((status, code, m)) => json_error(status, code, &m, request_id),
    }
}

fn store_error(e: impl std::fmt::Display) -> (StatusCode, &'static str, String) {
    (StatusCode::INTERNAL_SERVER_ERROR, "InternalServerError", e.to_string())
}

fn epoch(rfc3339: &str) -> f64 {
    rfc3339
        .parse::<jiff::Timestamp>()
        .map(|t| t.as_millisecond() as f64 / 1000.0)
        .unwrap_or(0.0)
}

fn parameter(
    store: &meridian_buildspec::SecretStore,
    region: &str,
    name: &str,
) -> Result<Option<Value>, (StatusCode, &'static str, String)> {
    let name = name
        .strip_prefix(&format!("arn:aws:ssm:{region}:{ACCOUNT_ID}:parameter"))
        .unwrap_or(name);
    let Some(value) = store.get(region, SecretKind::Parameter, name).map_err(store_error)? else {
        return Ok(None);
    };
    let info: Info = store
        .info(region, SecretKind::Parameter, name)
        .map_err(store_error)?
        .unwrap_or(Info {
            version: 1,
            value_type: None,
            updated: String::new(),
            version_id: String::new(),
        });
    let arn_name = if name.starts_with('/') {
        name.to_string()
    } else {
        format!("/{name}")
    };
    Ok(Some(json!({
        "Name": name,
        "Type": info.value_type.as_deref().unwrap_or("String"),
        "Value": value,
        "Version": info.version,
        "LastModifiedDate": epoch(&info.updated),
        "ARN": format!("arn:aws:ssm:{region}:{ACCOUNT_ID}:parameter{arn_name}"),
        "DataType": "text",
    })))
}

fn not_found(name: &str) -> (StatusCode, &'static str, String) {
    bad("ParameterNotFound", format!("Parameter {name} not found. (put it with `aws ssm put-parameter --name {name} --value ...` or `meridian secrets put --kind parameter`)"))
}

fn ssm(store: &meridian_buildspec::SecretStore, op: &str, v: &Value, region: &str) -> Answer {
    match op {
        "GetParameter" => {
            let name = str_field(v, "Name")?;
            let p = parameter(store, region, name)?.ok_or_else(|| not_found(name))?;
            Ok(json!({ "Parameter": p }))
        }
        "GetParameters" => {
            let names: Vec<&str> = v
                .get("Names")
                .and_then(Value::as_array)
                .ok_or_else(|| bad("ValidationException", "GetParameters needs Names (a list)"))?
                .iter()
                .filter_map(Value::as_str)
                .collect();
            if names.len() > 10 {
                return Err(bad("ValidationException", "1 validation error detected: Value at 'names' failed to satisfy constraint: Member must have length less than or equal to 10"));
            }
            let mut found = Vec::new();
            let mut invalid = Vec::new();
            for n in names {
                match parameter(store, region, n)? {
                    Some(p) => found.push(p),
                    None => invalid.push(json!(n)),
                }
            }
            Ok(json!({ "Parameters": found, "InvalidParameters": invalid }))
        }
        "GetParametersByPath" => {
            let path = str_field(v, "Path")?;
            if !path.starts_with('/') {
                return Err(bad("ValidationException", format!("The parameter doesn't meet the parameter name requirements. The parameter name must begin with a forward slash \"/\" ({path})")));
            }
            let recursive = v.get("Recursive").and_then(Value::as_bool).unwrap_or(false);
            let base = if path.ends_with('/') { path.to_string() } else { format!("{path}/") };
            let mut out = Vec::new();
            for l in store.list(region, SecretKind::Parameter).map_err(store_error)? {
                let Some(rest) = l.name.strip_prefix(&base) else { continue };
                if rest.is_empty() || (!recursive && rest.contains('/')) {
                    continue;
                }
                if let Some(p) = parameter(store, region, &l.name)? {
                    out.push(p);
                }
            }
            Ok(json!({ "Parameters": out }))
        }
        "PutParameter" => {
            let name = str_field(v, "Name")?;
            let value = str_field(v, "Value")?;
            let overwrite = v.get("Overwrite").and_then(Value::as_bool).unwrap_or(false);
            let ty = v.get("Type").and_then(Value::as_str);
            if let Some(t) = ty {
                if !["String", "StringList", "SecureString"].contains(&t) {
                    return Err(bad("ValidationException", format!("1 validation error detected: Value '{t}' at 'type' failed to satisfy constraint: Member must satisfy enum value set: [SecureString, StringList, String]")));
                }
            }
            if value.len() > 8192 {
                return Err(bad("ValidationException", "1 validation error detected: Value at 'value' failed to satisfy constraint: Member must have length less than or equal to 8192 (advanced tier)"));
            }
            let exists = store.info(region, SecretKind::Parameter, name).map_err(store_error)?;
            if exists.is_some() && !overwrite {
                return Err(bad("ParameterAlreadyExists", format!("The parameter already exists. To overwrite this value, set the overwrite option in the request to true. ({name})")));
            }
            if exists.is_none() && ty.is_none() {
                return Err(bad("ValidationException", "A parameter type is required when you create a parameter."));
            }
            store
                .put_typed(region, SecretKind::Parameter, name, value, ty)
                .map_err(|e| bad("ValidationException", e.to_string()))?;
            let info = store.info(region, SecretKind::Parameter, name).map_err(store_error)?;
            Ok(json!({ "Version": info.map(|i| i.version).unwrap_or(1), "Tier": "Standard" }))
        }
        "DeleteParameter" => {
            let name = str_field(v, "Name")?;
            if !store.delete(region, SecretKind::Parameter, name).map_err(store_error)? {
                return Err(not_found(name));
            }
            Ok(json!({}))
        }
        "DeleteParameters" => {
            let mut deleted = Vec::new();
            let mut invalid = Vec::new();
            for n in v.get("Names").and_then(Value::as_array).into_iter().flatten().filter_map(Value::as_str) {
                if store.delete(region, SecretKind::Parameter, n).map_err(store_error)? {
                    deleted.push(json!(n));
                } else {
                    invalid.push(json!(n));
                }
            }
            Ok(json!({ "DeletedParameters": deleted, "InvalidParameters": invalid }))
        }
        other => Err(bad(
            "InvalidAction",
            format!("local regions serve SSM's GetParameter, GetParameters, GetParametersByPath, PutParameter and DeleteParameter(s), not `{other}`"),
        )),
    }
}

fn secrets(store: &meridian_buildspec::SecretStore, op: &str, v: &Value, region: &str) -> Answer {
    match op {
        "GetSecretValue" => {
            let id = str_field(v, "SecretId")?;
            // An ARN names the secret by its part after `:secret:` (AWS adds a 6-character suffix).
            let name = id.split(":secret:").nth(1).unwrap_or(id);
            let stage = v.get("VersionStage").and_then(Value::as_str);
            let version_id = v.get("VersionId").and_then(Value::as_str);
            let value = store
                .get_version(region, SecretKind::Secret, name, stage, version_id)
                .map_err(store_error)?
                .ok_or_else(|| bad("ResourceNotFoundException", format!("Secrets Manager can't find the specified secret (`{name}` in {region}; create it with `meridian secrets put`)")))?;
            let info = store.info(region, SecretKind::Secret, name).map_err(store_error)?;
            let (vid, created) = info.map(|i| (i.version_id, i.updated)).unwrap_or_default();
            Ok(json!({
                "ARN": format!("arn:aws:secretsmanager:{region}:{ACCOUNT_ID}:secret:{name}"),
                "Name": name,
                "VersionId": version_id.map(str::to_string).unwrap_or(vid),
                "SecretString": value,
                "VersionStages": [stage.unwrap_or("AWSCURRENT")],
                "CreatedDate": epoch(&created),
            }))
        }
        other => Err(bad(
            "InvalidRequestException",
            format!("local regions serve Secrets Manager's GetSecretValue, not `{other}` (put secrets with `meridian secrets put`)"),
        )),
    }
}
