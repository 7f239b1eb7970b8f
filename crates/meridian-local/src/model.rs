//! The registry's data: functions, their versions and aliases, and how they look on the wire.

use base64::Engine as _;
use meridian_core::clock::EpochMillis;
use meridian_core::{Digest, RegionId, LOCAL_ACCOUNT_ID};
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::path::PathBuf;

use crate::error::{LambdaError, Result};

pub const LATEST: &str = "$LATEST";

/// The languages a local region can run, derived from the AWS runtime identifier.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RuntimeKind {
    /// `provided.al2023`, `provided.al2`, `provided`: the package's `bootstrap` executable.
    Provided,
    /// `python3.N`, with the minor version asked for.
    Python { minor: u32 },
    /// `nodejsN.x`, with the major version asked for.
    Node { major: u32 },
}

impl RuntimeKind {
    pub fn parse(runtime: &str) -> Result<Self> {
        let bad = || LambdaError::InvalidRuntime(runtime.to_string());
        match runtime {
            "provided" | "provided.al2" | "provided.al2023" => Ok(RuntimeKind::Provided),
            _ => {
                if let Some(minor) = runtime.strip_prefix("python3.") {
                    let minor = minor.parse().map_err(|_| bad())?;
                    Ok(RuntimeKind::Python { minor })
                } else if let Some(major) = runtime.strip_prefix("nodejs").and_then(|r| r.strip_suffix(".x")) {
                    let major: u32 = major.parse().map_err(|_| bad())?;
                    if (18..=24).contains(&major) {
                        Ok(RuntimeKind::Node { major })
                    } else {
                        Err(bad())
                    }
                } else {
                    Err(bad())
                }
            }
        }
    }
}

/// What a caller gives to create a function.
#[derive(Debug, Clone)]
pub struct FunctionSpec {
    pub function_name: String,
    pub runtime: String,
    pub handler: String,
    pub memory_size: u32,
    /// Seconds, 1..=900.
    pub timeout: u32,
    pub environment: BTreeMap<String, String>,
    pub description: String,
    /// `None`: the host's per-function limit applies. `Some(0)` throttles every call, as on AWS.
    pub reserved_concurrency: Option<u32>,
}

impl FunctionSpec {
    /// A spec with AWS's defaults: 128 MB, 3 seconds.
    pub fn new(name: &str, runtime: &str, handler: &str) -> Self {
        FunctionSpec {
            function_name: name.to_string(),
            runtime: runtime.to_string(),
            handler: handler.to_string(),
            memory_size: 128,
            timeout: 3,
            environment: BTreeMap::new(),
            description: String::new(),
            reserved_concurrency: None,
        }
    }

    pub(crate) fn validate(&self) -> Result<()> {
        validate_function_name(&self.function_name)?;
        RuntimeKind::parse(&self.runtime)?;
        if self.handler.is_empty() || self.handler.len() > 128 {
            return Err(LambdaError::InvalidParameterValue(format!(
                "handler `{}` must be 1 to 128 characters",
                self.handler
            )));
        }
        if !(1..=900).contains(&self.timeout) {
            return Err(LambdaError::InvalidParameterValue(format!(
                "timeout {} is outside 1..=900 seconds",
                self.timeout
            )));
        }
        if !(128..=10240).contains(&self.memory_size) {
            return Err(LambdaError::InvalidParameterValue(format!(
                "memory size {} MB is outside 128..=10240",
                self.memory_size
            )));
        }
        // Lambda measures the variables as the JSON object it stores.
        let measured = serde_json::to_string(&self.environment).unwrap_or_default();
        if !self.environment.is_empty() && measured.len() > MAX_ENVIRONMENT_BYTES {
            let keys: Vec<&str> = self.environment.keys().map(String::as_str).collect();
            return Err(LambdaError::InvalidParameterValue(format!(
                "Lambda was unable to configure your environment variables because the environment variables you have provided exceeded the 4KB limit: {} bytes measured as JSON, of variables {}; move large values to SSM Parameter Store or Secrets Manager and read them at run time",
                measured.len(),
                keys.join(", ")
            )));
        }
        for key in self.environment.keys() {
            let ok = key.chars().next().is_some_and(|c| c.is_ascii_alphabetic())
                && key.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
            if !ok || RESERVED_ENV.contains(&key.as_str()) {
                return Err(LambdaError::InvalidParameterValue(format!(
                    "environment variable `{key}` is not allowed (reserved or not a valid name)"
                )));
            }
        }
        Ok(())
    }
}

/// Lambda's quota on a function's environment variables: 4 KB, measured as their JSON object.
pub const MAX_ENVIRONMENT_BYTES: usize = 4096;

/// Variables Lambda sets itself; a function may not override them.
const RESERVED_ENV: &[&str] = &[
    "_HANDLER",
    "AWS_REGION",
    "AWS_EXECUTION_ENV",
    "AWS_LAMBDA_FUNCTION_NAME",
    "AWS_LAMBDA_FUNCTION_MEMORY_SIZE",
    "AWS_LAMBDA_FUNCTION_VERSION",
    "AWS_LAMBDA_LOG_GROUP_NAME",
    "AWS_LAMBDA_LOG_STREAM_NAME",
    "AWS_LAMBDA_RUNTIME_API",
    "LAMBDA_TASK_ROOT",
    "LAMBDA_RUNTIME_DIR",
];

pub(crate) fn validate_function_name(name: &str) -> Result<()> {
    if name.is_empty() || name.len() > 64 || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_') {
        return Err(LambdaError::InvalidParameterValue(format!(
            "function name `{name}` must be 1 to 64 letters, digits, hyphens or underscores"
        )));
    }
    Ok(())
}

pub(crate) fn validate_alias_name(name: &str) -> Result<()> {
    let chars_ok = name.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
    if name.is_empty() || name.len() > 128 || !chars_ok || name.chars().all(|c| c.is_ascii_digit()) {
        return Err(LambdaError::InvalidParameterValue(format!(
            "alias name `{name}` must be 1 to 128 letters, digits, hyphens or underscores, and not all digits"
        )));
    }
    Ok(())
}

/// Where a function's code comes from. Zip bytes or a zip file, as the artifact store hands them
/// over; a directory is zipped first so that its digest means the same as a package's.
#[derive(Debug, Clone)]
pub enum CodeSource {
    ZipBytes(Vec<u8>),
    ZipFile(PathBuf),
    Directory(PathBuf),
}

/// `$LATEST` or one published version of a function: everything needed to run it.
#[derive(Debug, Clone, PartialEq)]
pub struct FunctionVersion {
    pub region: RegionId,
    pub function_name: String,
    pub version: String,
    pub runtime: String,
    pub handler: String,
    pub memory_size: u32,
    pub timeout: u32,
    pub environment: BTreeMap<String, String>,
    pub description: String,
    pub code_sha256: Digest,
    pub code_size: u64,
    pub last_modified: EpochMillis,
    /// Changes whenever code or configuration change; warm environments of an older revision are
    /// never reused.
    pub revision_id: String,
}

pub fn function_arn(region: &RegionId, name: &str) -> String {
    format!("arn:aws:lambda:{region}:{LOCAL_ACCOUNT_ID}:function:{name}")
}

impl FunctionVersion {
    pub fn function_arn(&self) -> String {
        function_arn(&self.region, &self.function_name)
    }

    /// The ARN with the version as qualifier (`$LATEST` included, as AWS reports it).
    pub fn version_arn(&self) -> String {
        format!("{}:{}", self.function_arn(), self.version)
    }

    /// `FunctionConfiguration` as the Lambda API returns it.
    pub fn to_aws_json(&self) -> Value {
        let arn = if self.version == LATEST {
            self.function_arn()
        } else {
            self.version_arn()
        };
        json!({
            "FunctionName": self.function_name,
            "FunctionArn": arn,
            "Runtime": self.runtime,
            "Role": format!("arn:aws:iam::{LOCAL_ACCOUNT_ID}:role/meridian-local"),
            "Handler": self.handler,
            "CodeSize": self.code_size,
            "Description": self.description,
            "Timeout": self.timeout,
            "MemorySize": self.memory_size,
            "LastModified": iso8601(self.last_modified),
            "CodeSha256": base64::engine::general_purpose::STANDARD.encode(self.code_sha256.as_bytes()),
            "Version": self.version,
            "Environment": {"Variables": self.environment},
            "RevisionId": self.revision_id,
            "State": "Active",
            "LastUpdateStatus": "Successful",
            "PackageType": "Zip",
            "Architectures": ["x86_64"],
        })
    }
}

/// A named pointer to a version, optionally sending a share of traffic to one more version.
#[derive(Debug, Clone, PartialEq)]
pub struct Alias {
    pub region: RegionId,
    pub function_name: String,
    pub name: String,
    pub function_version: String,
    /// At most one entry on AWS: additional version -> weight in 0..=1.
    pub additional_version_weights: BTreeMap<String, f64>,
    pub description: String,
    pub revision_id: String,
}

impl Alias {
    pub fn arn(&self) -> String {
        format!("{}:{}", function_arn(&self.region, &self.function_name), self.name)
    }

    /// `AliasConfiguration` as the Lambda API returns it.
    pub fn to_aws_json(&self) -> Value {
        let mut v = json!({
            "AliasArn": self.arn(),
            "Name": self.name,
            "FunctionVersion": self.function_version,
            "Description": self.description,
            "RevisionId": self.revision_id,
        });
        if !self.additional_version_weights.is_empty() {
            v["RoutingConfig"] = json!({"AdditionalVersionWeights": self.additional_version_weights});
        }
        v
    }
}

/// Formats epoch milliseconds the way Lambda formats `LastModified`: `2024-05-01T12:00:00.000+0000`.
pub fn iso8601(millis: EpochMillis) -> String {
    let secs = millis.div_euclid(1000);
    let ms = millis.rem_euclid(1000);
    let days = secs.div_euclid(86_400);
    let sod = secs.rem_euclid(86_400);
    let (y, m, d) = civil_from_days(days);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{ms:03}+0000",
        sod / 3600,
        (sod % 3600) / 60,
        sod % 60
    )
}

/// Days since 1970-01-01 to a proleptic Gregorian date (Howard Hinnant's published algorithm).
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

/// A function reference as the Invoke API accepts it: a name, a full ARN or a partial ARN, each
/// optionally followed by `:qualifier`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FunctionRef {
    pub region: Option<RegionId>,
    pub name: String,
    pub qualifier: Option<String>,
}

impl FunctionRef {
    pub fn parse(input: &str) -> Result<Self> {
        let bad =
            || LambdaError::InvalidParameterValue(format!("`{input}` is not a function name, ARN or partial ARN"));
        let parts: Vec<&str> = input.split(':').collect();
        let (region, rest): (Option<&str>, &[&str]) = match parts.as_slice() {
            ["arn", "aws", "lambda", region, _account, "function", rest @ ..] => (Some(*region), rest),
            [_account, "function", rest @ ..] => (None, rest),
            rest => (None, rest),
        };
        let (name, qualifier) = match rest {
            [name] => (*name, None),
            [name, q] => (*name, Some(q.to_string())),
            _ => return Err(bad()),
        };
        validate_function_name(name)?;
        let region = match region {
            Some(r) => Some(RegionId::new(r).map_err(|e| LambdaError::InvalidParameterValue(e.to_string()))?),
            None => None,
        };
        if qualifier.as_deref() == Some("") {
            return Err(bad());
        }
        Ok(FunctionRef {
            region,
            name: name.to_string(),
            qualifier,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_names_arns_and_partial_arns() {
        let r = FunctionRef::parse("arn:aws:lambda:eu-west-1:123456789012:function:f:live").unwrap();
        assert_eq!(r.region.unwrap().as_str(), "eu-west-1");
        assert_eq!((r.name.as_str(), r.qualifier.as_deref()), ("f", Some("live")));
        let r = FunctionRef::parse("123456789012:function:f").unwrap();
        assert_eq!((r.region, r.name.as_str(), r.qualifier), (None, "f", None));
        let r = FunctionRef::parse("f:7").unwrap();
        assert_eq!(r.qualifier.as_deref(), Some("7"));
        assert!(FunctionRef::parse("a:b:c:d").is_err());
        assert!(FunctionRef::parse("bad name").is_err());
        assert!(FunctionRef::parse("arn:aws:lambda:mars-1:1:function:f").is_err());
    }

    #[test]
    fn runtimes_and_dates() {
        assert_eq!(
            RuntimeKind::parse("python3.12").unwrap(),
            RuntimeKind::Python { minor: 12 }
        );
        assert_eq!(
            RuntimeKind::parse("nodejs20.x").unwrap(),
            RuntimeKind::Node { major: 20 }
        );
        assert_eq!(RuntimeKind::parse("provided.al2023").unwrap(), RuntimeKind::Provided);
        assert!(RuntimeKind::parse("java21").is_err());
        assert_eq!(iso8601(0), "1970-01-01T00:00:00.000+0000");
        assert_eq!(iso8601(1_709_210_096_789), "2024-02-29T12:34:56.789+0000");
    }

    #[test]
    fn alias_names_may_not_be_numbers() {
        assert!(validate_alias_name("live").is_ok());
        assert!(validate_alias_name("12").is_err());
        assert!(validate_alias_name("a b").is_err());
    }
}
