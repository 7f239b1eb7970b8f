//! Real AWS regions, through the official AWS SDK for Rust. This is the only crate of the
//! workspace that depends on `aws-sdk-*` (they are heavy to build): the CLI has it only with its
//! `aws` feature, so the local demo builds without it.
//!
//! - [`config`]: credentials, regions and endpoints resolved as the AWS CLI resolves them
//!   (environment, profiles, SSO, web identity, instance roles; `AWS_ENDPOINT_URL`, or
//!   `--endpoint-url` for one run), per region.
//! - [`artifacts`]: a pipeline's artifact stores on S3, one bucket per region, through the same
//!   `ObjectArtifactStore` the local regions use (object_store's S3 client, SHA-256 checksums
//!   verified by S3), with the SDK's credentials.
//! - [`bootstrap`]: what a pipeline needs in each of its regions before it first runs (the
//!   artifact bucket: encrypted, versioned, public access blocked, old artifacts expired), made
//!   idempotently, planned with `--dry-run`, torn down in a safe order, and the IAM policy the
//!   pipeline needs per region.

pub mod artifacts;
pub mod bootstrap;
pub mod codebuild;
pub mod codedeploy;
pub mod config;
mod driven;
pub mod ecs;
pub mod functions;
pub mod stacks;

pub use config::AwsOptions;

/// An SDK error of any AWS service as the region ports' typed error: AWS's code and message
/// when the answer has them ([`region_error`]), else what [`unreadable`] says.
pub fn sdk_error<E: aws_sdk_s3::error::ProvideErrorMetadata + std::error::Error + 'static>(
    region: &str,
    action: &str,
    e: &aws_smithy_runtime_api::client::result::SdkError<E, aws_smithy_runtime_api::http::Response>,
) -> meridian_region::RegionError {
    use aws_smithy_runtime_api::client::result::SdkError;
    let (code, message) = match e {
        SdkError::ServiceError(s) if s.err().code().is_some() => (
            s.err().code().map(str::to_string),
            s.err().message().map(str::to_string).unwrap_or_default(),
        ),
        other => (None, unreadable(other)),
    };
    region_error(region, action, code.as_deref(), message)
}

/// What is said when no credentials were found, whatever the SDK tried.
pub const NO_CREDENTIALS: &str = "no AWS credentials were found (environment, AWS_PROFILE and ~/.aws, SSO, web identity, the instance's role): set AWS_PROFILE (and run `aws sso login` for an SSO profile), or AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY";

/// The statement of `meridian bootstrap --print-policy` that grants an action.
pub fn policy_statement(action: &str) -> &'static str {
    match action.split(':').next().unwrap_or_default() {
        "s3" => "MeridianArtifacts (objects) or MeridianArtifactBuckets (buckets)",
        "kms" => "MeridianArtifactKeys",
        "cloudformation" => "MeridianStacks",
        "lambda" => "MeridianTrafficShifting",
        "cloudwatch" => "MeridianJudging",
        "codebuild" | "logs" => "MeridianBuilds",
        "codedeploy" => "MeridianFollowing",
        _ => "the pipeline's",
    }
}

/// An SDK error without AWS's code, in words: an answer the SDK could not read (its HTTP
/// status: is the endpoint AWS, or a stand-in that lacks the operation?), or no answer at all
/// (no credentials, no network), with its causes, cut to a readable length.
pub fn unreadable<E: std::error::Error + 'static>(
    e: &aws_smithy_runtime_api::client::result::SdkError<E, aws_smithy_runtime_api::http::Response>,
) -> String {
    use aws_smithy_runtime_api::client::result::SdkError;
    let status = match e {
        SdkError::ServiceError(s) => Some(s.raw().status().as_u16()),
        SdkError::ResponseError(r) => Some(r.raw().status().as_u16()),
        _ => None,
    };
    let mut s = match status {
        Some(code) => format!(
            "HTTP {code}, an answer the AWS SDK cannot read (does the endpoint serve this operation? AWS does; a stand-in may not)"
        ),
        None => {
            let text = aws_sdk_s3::error::DisplayErrorContext(e).to_string();
            if text.contains("no credentials found") || text.contains("credential provider was not enabled") {
                return NO_CREDENTIALS.to_string();
            }
            text
        }
    };
    if s.len() > 300 {
        let mut cut = 300;
        while !s.is_char_boundary(cut) {
            cut -= 1;
        }
        s.truncate(cut);
        s.push_str(" ...");
    }
    s
}

/// An AWS SDK error as the region ports' typed error: throttling and 5xx can be retried,
/// `AccessDenied` names the action and what to grant, a missing resource is `NotFound`.
pub fn region_error(
    region: &str,
    action: &str,
    code: Option<&str>,
    message: impl std::fmt::Display,
) -> meridian_region::RegionError {
    use meridian_region::{ErrorKind, RegionError};
    let kind = match code.unwrap_or_default() {
        "Throttling" | "ThrottlingException" | "SlowDown" | "RequestLimitExceeded" | "TooManyRequestsException" => {
            ErrorKind::Throttled
        }
        "InternalError" | "ServiceUnavailable" | "InternalFailure" | "RequestTimeout" => ErrorKind::Unavailable,
        "NoSuchBucket" | "NoSuchKey" | "NotFound" | "ResourceNotFoundException" => ErrorKind::NotFound,
        "BucketAlreadyOwnedByYou" | "OperationAbortedException" | "ConflictException" => ErrorKind::Conflict,
        "AccessDenied"
        | "AccessDeniedException"
        | "UnauthorizedOperation"
        | "InvalidClientTokenId"
        | "ExpiredToken"
        | "SignatureDoesNotMatch" => ErrorKind::Permanent,
        _ => ErrorKind::Invalid,
    };
    let hint = match code.unwrap_or_default() {
        "AccessDenied" | "AccessDeniedException" => format!(
            "; the credentials in use may not call {action} in {region}: grant it, as statement {} of `meridian bootstrap <pipeline file> --print-policy` does",
            policy_statement(action)
        ),
        "InvalidClientTokenId" | "ExpiredToken" | "SignatureDoesNotMatch" => {
            "; the credentials were refused: check AWS_PROFILE or AWS_ACCESS_KEY_ID, or sign in again (aws sso login)".to_string()
        }
        "NoSuchBucket" => format!(
            "; the pipeline's bucket for {region} does not exist: create every region's bucket with `meridian bootstrap <pipeline file>`"
        ),
        "ValidationError" if message.to_string().contains("ROLLBACK_COMPLETE") => {
            "; a stack whose creation failed must be deleted before it can be created again (aws cloudformation delete-stack)".to_string()
        }
        "ValidationError" if message.to_string().contains("UPDATE_ROLLBACK_FAILED") => {
            "; the stack is stuck: `aws cloudformation continue-update-rollback` (skipping the resources that cannot roll back), then run the pipeline again".to_string()
        }
        _ => String::new(),
    };
    let code = code.map(|c| format!("{c}: ")).unwrap_or_default();
    RegionError::new(kind, format!("{action} in {region} failed: {code}{message}{hint}")).region(region)
}

pub mod backend {
    //! The AWS region as the engine's ports: one [`meridian_region::RegionBackend`].

    use crate::AwsOptions;
    use meridian_region::{RegionBackend, RegionError};
    use std::sync::Arc;

    /// Builds use the user's own AWS configuration; an endpoint override (`--endpoint-url`, a
    /// stand-in such as moto) is passed on so that their calls go where Meridian's do. In a
    /// region that assumes a role (another account), the build gets that role's session, so
    /// that its AWS CLI and SDKs act in the account the region deploys to, as Meridian does.
    struct Endpoint(AwsOptions);

    impl meridian_region::ClientAccess for Endpoint {
        fn environment(&self, region: &str) -> Result<Vec<(String, String)>, RegionError> {
            let mut env: Vec<(String, String)> = self
                .0
                .endpoint()
                .iter()
                .map(|u| ("AWS_ENDPOINT_URL".to_string(), u.clone()))
                .collect();
            let Some(role) = self.0.role_of(region).map(str::to_string) else {
                return Ok(env);
            };
            // called off the async runtime's workers (from a blocking task), or with none
            let options = self.0.clone();
            let fetch = async move {
                use aws_credential_types::provider::ProvideCredentials;
                let config = options.sdk_config(region).await;
                let provider = config
                    .credentials_provider()
                    .ok_or_else(|| RegionError::new(meridian_region::ErrorKind::Invalid, crate::NO_CREDENTIALS))?;
                provider.provide_credentials().await.map_err(|e| {
                    RegionError::new(
                        meridian_region::ErrorKind::Invalid,
                        format!("cannot assume role {role} in {region} for the build: {e}"),
                    )
                    .region(region)
                })
            };
            let creds = match tokio::runtime::Handle::try_current() {
                Ok(handle) => handle.block_on(fetch)?,
                Err(_) => tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .map_err(|e| RegionError::new(meridian_region::ErrorKind::Invalid, e.to_string()))?
                    .block_on(fetch)?,
            };
            env.push(("AWS_ACCESS_KEY_ID".into(), creds.access_key_id().to_string()));
            env.push(("AWS_SECRET_ACCESS_KEY".into(), creds.secret_access_key().to_string()));
            if let Some(token) = creds.session_token() {
                env.push(("AWS_SESSION_TOKEN".into(), token.to_string()));
            }
            Ok(env)
        }
    }

    /// Every AWS region, reached with `options` (credentials and endpoint as the AWS CLI resolves
    /// them).
    pub fn backend(options: AwsOptions) -> Result<RegionBackend, RegionError> {
        Ok(RegionBackend {
            kind: "aws".into(),
            artifacts: Arc::new(crate::artifacts::S3Stores::new(options.clone())),
            stacks: Arc::new(crate::stacks::CloudFormationStacks::new(options.clone())),
            functions: Arc::new(crate::functions::AwsFunctions::new(options.clone())?),
            clients: Arc::new(Endpoint(options.clone())),
            services: Arc::new(crate::ecs::EcsServices::new(options.clone())),
            builds: Arc::new(crate::codebuild::CodeBuildService::new(options.clone())),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use meridian_region::ErrorKind;

    #[test]
    fn errors_say_what_to_do() {
        let e = region_error(
            "eu-west-1",
            "PutObject",
            Some("NoSuchBucket"),
            "The specified bucket does not exist",
        );
        assert_eq!(e.kind, ErrorKind::NotFound);
        assert!(e.message.contains("meridian bootstrap"), "{}", e.message);
        let e = region_error(
            "eu-west-1",
            "CreateChangeSet",
            Some("ValidationError"),
            "Stack:arn:aws:cloudformation:eu-west-1:1:stack/app/x is in ROLLBACK_COMPLETE state and can not be updated.",
        );
        assert!(e.message.contains("must be deleted"), "{}", e.message);
        let e = region_error(
            "eu-west-1",
            "UpdateAlias",
            Some("AccessDeniedException"),
            "not authorized",
        );
        assert_eq!(e.kind, ErrorKind::Permanent);
        assert!(
            e.message.contains("UpdateAlias in eu-west-1") && e.message.contains("--print-policy"),
            "{}",
            e.message
        );
        let e = region_error(
            "eu-west-1",
            "lambda:UpdateAlias",
            Some("AccessDeniedException"),
            "not authorized",
        );
        assert!(e.message.contains("statement MeridianTrafficShifting"), "{}", e.message);
        let e = region_error("eu-west-1", "DescribeStacks", Some("Throttling"), "Rate exceeded");
        assert_eq!(e.kind, ErrorKind::Throttled);
    }
}
