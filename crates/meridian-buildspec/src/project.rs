//! Glue for the engine's CodeBuild action: a project's buildspec (a path in the primary source,
//! or inline) and its variables, and the action's `EnvironmentVariables` configuration.

use crate::runner::{EnvKind, EnvVar};
use crate::spec::{parse_file, parse_str, Parsed};
use meridian_pipeline::model::{BuildSpecSource, EnvironmentVariable};
use std::path::Path;

/// CodeBuild's build timeout, in minutes: 5 to 2160 (36 hours).
pub const TIMEOUT_MINUTES: std::ops::RangeInclusive<u64> = 5..=2160;

/// A build timeout given in minutes (`meridian build --timeout`, a project's timeout), checked
/// against CodeBuild's range: `0` would leave a build without one.
pub fn build_timeout(minutes: u64) -> Result<std::time::Duration, String> {
    if !TIMEOUT_MINUTES.contains(&minutes) {
        return Err(format!(
            "a build timeout of {minutes} minutes is not allowed: CodeBuild allows 5 to 2160 minutes (36 hours)"
        ));
    }
    Ok(std::time::Duration::from_secs(minutes * 60))
}

/// Reads a project's buildspec: a path inside the primary source (as CodeBuild resolves it
/// against `CODEBUILD_SRC_DIR`; one leading outside it, by `..`, absolutely or through a
/// symbolic link, is refused), or an inline buildspec.
pub fn load_buildspec(source: &BuildSpecSource, primary_src: &Path) -> std::io::Result<Parsed> {
    match source {
        BuildSpecSource::Path(p) => {
            let path = meridian_core::path::confine(primary_src, p).map_err(std::io::Error::other)?;
            parse_file(&path)
        }
        BuildSpecSource::Inline(text) => Ok(parse_str("inline buildspec", text)),
    }
}

/// `PLAINTEXT` (also when empty), `PARAMETER_STORE` or `SECRETS_MANAGER`.
pub fn env_kind(var_type: &str) -> Result<EnvKind, String> {
    match var_type {
        "" | "PLAINTEXT" => Ok(EnvKind::Plaintext),
        "PARAMETER_STORE" => Ok(EnvKind::ParameterStore),
        "SECRETS_MANAGER" => Ok(EnvKind::SecretsManager),
        other => Err(format!(
            "`{other}` is not an environment variable type; use PLAINTEXT, PARAMETER_STORE or SECRETS_MANAGER"
        )),
    }
}

/// A project's environment variables as the runner takes them.
pub fn project_env(vars: &[EnvironmentVariable]) -> Result<Vec<EnvVar>, String> {
    vars.iter()
        .map(|v| {
            Ok(EnvVar {
                name: v.name.clone(),
                value: v.value.clone(),
                kind: env_kind(&v.var_type)?,
            })
        })
        .collect()
}

/// The CodeBuild action's `EnvironmentVariables` configuration: a JSON string holding a list of
/// `{"name", "value", "type"}` (type optional, PLAINTEXT by default).
pub fn action_env(json: &str) -> Result<Vec<EnvVar>, String> {
    let v: serde_json::Value =
        serde_json::from_str(json).map_err(|e| format!("EnvironmentVariables is not JSON: {e}"))?;
    let list = v
        .as_array()
        .ok_or("EnvironmentVariables is a JSON list of {\"name\", \"value\", \"type\"}")?;
    list.iter()
        .map(|item| {
            let field = |k: &str| item.get(k).and_then(|x| x.as_str());
            let name = field("name").ok_or("an EnvironmentVariables entry has no `name`")?;
            let value = match item.get("value") {
                Some(serde_json::Value::String(s)) => s.clone(),
                Some(serde_json::Value::Null) | None => String::new(),
                Some(other) => other.to_string(),
            };
            Ok(EnvVar {
                name: name.to_string(),
                value,
                kind: env_kind(field("type").unwrap_or(""))?,
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn action_environment_variables_are_read() {
        let vars = action_env(
            r#"[{"name":"STAGE","value":"prod","type":"PLAINTEXT"},{"name":"TOKEN","value":"/ci/token","type":"PARAMETER_STORE"},{"name":"N","value":3},{"name":"DB","value":"db:password","type":"SECRETS_MANAGER"}]"#,
        )
        .unwrap();
        assert_eq!(vars[0], EnvVar::plain("STAGE", "prod"));
        assert_eq!(vars[1].kind, EnvKind::ParameterStore);
        assert_eq!(vars[2], EnvVar::plain("N", "3"));
        assert_eq!(vars[3].kind, EnvKind::SecretsManager);
        assert!(action_env(r#"[{"name":"X","value":"1","type":"SECRET"}]"#).is_err());
        assert!(action_env("{").is_err());
    }

    #[test]
    fn inline_and_path_buildspecs_load() {
        let inline = BuildSpecSource::Inline("version: 0.2\nphases:\n  build:\n    commands: [ls]\n".into());
        assert!(load_buildspec(&inline, Path::new("/nonexistent"))
            .unwrap()
            .spec
            .is_some());
        assert!(load_buildspec(&BuildSpecSource::default(), Path::new("/nonexistent")).is_err());
        let env = project_env(&[EnvironmentVariable {
            name: "A".into(),
            value: "b".into(),
            var_type: String::new(),
        }])
        .unwrap();
        assert_eq!(env, vec![EnvVar::plain("A", "b")]);
    }
}
