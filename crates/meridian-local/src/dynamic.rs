//! CloudFormation's dynamic references in resource properties, resolved from the region's
//! parameter and secrets stores when a resource is created or updated (the stored properties
//! keep the reference, so a secret's value is never written to the stack store, and a change of a
//! parameter's value alone changes nothing, as on AWS):
//!
//! - `{{resolve:ssm:NAME}}`, `{{resolve:ssm:NAME:VERSION}}`
//! - `{{resolve:ssm-secure:NAME}}`, `{{resolve:ssm-secure:NAME:VERSION}}`
//! - `{{resolve:secretsmanager:ID:SecretString:JSON-KEY:VERSION-STAGE:VERSION-ID}}` (all but the
//!   id optional)

use meridian_buildspec::secrets::SecretStore;
use meridian_buildspec::spec::SecretRef;
use meridian_buildspec::SecretKind;
use serde_json::Value;

/// Does `v` hold a dynamic reference anywhere?
pub fn has_references(v: &Value) -> bool {
    match v {
        Value::String(s) => s.contains("{{resolve:"),
        Value::Array(a) => a.iter().any(has_references),
        Value::Object(o) => o.values().any(has_references),
        _ => false,
    }
}

/// `v` with every dynamic reference replaced by its value in `region`.
pub fn resolve(store: &SecretStore, region: &str, v: &Value) -> Result<Value, String> {
    Ok(match v {
        Value::String(s) if s.contains("{{resolve:") => Value::String(resolve_str(store, region, s)?),
        Value::Array(a) => Value::Array(a.iter().map(|x| resolve(store, region, x)).collect::<Result<_, _>>()?),
        Value::Object(o) => Value::Object(
            o.iter()
                .map(|(k, x)| Ok((k.clone(), resolve(store, region, x)?)))
                .collect::<Result<_, String>>()?,
        ),
        other => other.clone(),
    })
}

fn resolve_str(store: &SecretStore, region: &str, s: &str) -> Result<String, String> {
    let mut out = String::new();
    let mut rest = s;
    while let Some(i) = rest.find("{{resolve:") {
        out.push_str(&rest[..i]);
        let after = &rest[i + "{{resolve:".len()..];
        let end = after
            .find("}}")
            .ok_or_else(|| format!("the dynamic reference `{}` has no closing `}}}}`", &rest[i..]))?;
        out.push_str(&one(store, region, &after[..end])?);
        rest = &after[end + 2..];
    }
    out.push_str(rest);
    Ok(out)
}

fn one(store: &SecretStore, region: &str, reference: &str) -> Result<String, String> {
    let (service, rest) = reference
        .split_once(':')
        .ok_or_else(|| format!("`{{{{resolve:{reference}}}}}` names no service: write {{{{resolve:ssm:NAME}}}}, ssm-secure or secretsmanager"))?;
    match service {
        "ssm" | "ssm-secure" => {
            // A version is the part after the last colon when it is a number (names may hold colons
            // only in ARNs, which local regions resolve by their name).
            let (name, version) = match rest.rsplit_once(':') {
                Some((n, v)) if !v.is_empty() && v.bytes().all(|b| b.is_ascii_digit()) => (n, Some(v)),
                _ => (rest, None),
            };
            let name = name.split(":parameter").nth(1).filter(|_| name.starts_with("arn:")).unwrap_or(name);
            let value = store
                .get(region, SecretKind::Parameter, name)
                .map_err(|e| e.to_string())?
                .ok_or_else(|| {
                    format!("Parameters: [{name}] referenced by {{{{resolve:{service}:...}}}} cannot be found in {region}: put it with `aws ssm put-parameter` or `meridian secrets put --kind parameter --region {region} {name}`")
                })?;
            if let Some(v) = version {
                let current = store
                    .info(region, SecretKind::Parameter, name)
                    .map_err(|e| e.to_string())?
                    .map(|i| i.version)
                    .unwrap_or(1);
                if v.parse::<u64>().ok() != Some(current) {
                    return Err(format!(
                        "version {v} of parameter {name} is not available locally: local regions keep the current version ({current})"
                    ));
                }
            }
            Ok(value)
        }
        "secretsmanager" => {
            // ID:SecretString:JSON-KEY:VERSION-STAGE:VERSION-ID, the id possibly an ARN.
            let (id, tail) = match rest.find(":SecretString") {
                Some(i) => (&rest[..i], rest[i + ":SecretString".len()..].trim_start_matches(':')),
                None => (rest, ""),
            };
            let text = if tail.is_empty() { id.to_string() } else { format!("{id}:{tail}") };
            let r = SecretRef::parse(&text).map_err(|e| format!("`{{{{resolve:{reference}}}}}`: {e}"))?;
            store
                .resolve_secret(region, &r)
                .map_err(|e| e.to_string())?
                .ok_or_else(|| {
                    format!("Secrets Manager can't find the specified secret `{}` referenced by {{{{resolve:secretsmanager:...}}}} in {region}: put it with `meridian secrets put --region {region}`", r.secret_id)
                })
        }
        other => Err(format!(
            "`{{{{resolve:{other}:...}}}}` is not a dynamic reference CloudFormation knows (ssm, ssm-secure, secretsmanager)"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn references_resolve_from_the_regions_stores() {
        let dir = tempfile::tempdir().unwrap();
        let store = SecretStore::open(dir.path()).unwrap();
        store
            .put_typed(
                "eu-west-1",
                SecretKind::Parameter,
                "/app/bucket",
                "art-eu",
                Some("String"),
            )
            .unwrap();
        store
            .put("eu-west-1", SecretKind::Secret, "db", r#"{"password":"hunter2"}"#)
            .unwrap();
        let v = json!({"Env": {"Variables": {
            "BUCKET": "{{resolve:ssm:/app/bucket}}",
            "PASSWORD": "pw={{resolve:secretsmanager:db:SecretString:password}}",
            "PINNED": "{{resolve:ssm:/app/bucket:1}}",
            "PLAIN": "x"}}});
        assert!(has_references(&v));
        let r = resolve(&store, "eu-west-1", &v).unwrap();
        assert_eq!(
            r,
            json!({"Env": {"Variables": {"BUCKET": "art-eu", "PASSWORD": "pw=hunter2", "PINNED": "art-eu", "PLAIN": "x"}}})
        );
        let e = resolve(&store, "us-east-1", &json!("{{resolve:ssm:/app/bucket}}")).unwrap_err();
        assert!(e.contains("cannot be found in us-east-1"), "{e}");
        let e = resolve(&store, "eu-west-1", &json!("{{resolve:ssm:/app/bucket:7}}")).unwrap_err();
        assert!(e.contains("version 7"), "{e}");
        let e = resolve(&store, "eu-west-1", &json!("{{resolve:s3:x}}")).unwrap_err();
        assert!(e.contains("not a dynamic reference"), "{e}");
    }
}
