//! Credentials, regions and endpoints, resolved by `aws-config` as the AWS CLI resolves them.

use aws_config::{BehaviorVersion, Region, SdkConfig};
use aws_credential_types::provider::ProvideCredentials;
use std::sync::Arc;

/// How Meridian reaches AWS: which profile, and which endpoint (a stand-in such as moto, or a
/// VPC endpoint). Unset fields fall back to the environment, as the AWS CLI does
/// (`AWS_PROFILE`, `AWS_ENDPOINT_URL`).
#[derive(Clone, Debug, Default)]
pub struct AwsOptions {
    pub profile: Option<String>,
    /// Every service of every region at this URL (`--endpoint-url`); moto serves them all on one.
    pub endpoint_url: Option<String>,
}

impl AwsOptions {
    /// The endpoint in force: `--endpoint-url`, else `AWS_ENDPOINT_URL`.
    pub fn endpoint(&self) -> Option<String> {
        self.endpoint_url
            .clone()
            .or_else(|| std::env::var("AWS_ENDPOINT_URL").ok())
            .filter(|e| !e.is_empty())
    }

    /// The SDK's configuration for one region.
    pub async fn sdk_config(&self, region: &str) -> SdkConfig {
        let mut loader = aws_config::defaults(BehaviorVersion::latest()).region(Region::new(region.to_string()));
        if let Some(p) = &self.profile {
            loader = loader.profile_name(p);
        }
        if let Some(e) = &self.endpoint_url {
            loader = loader.endpoint_url(e);
        }
        loader.load().await
    }
}

/// The SDK's credential chain as object_store's credential provider, so that S3 objects are
/// written with the same credentials (profiles, SSO, assumed roles) as every other call.
#[derive(Debug)]
pub struct SdkCredentials(pub aws_credential_types::provider::SharedCredentialsProvider);

#[async_trait::async_trait]
impl object_store::CredentialProvider for SdkCredentials {
    type Credential = object_store::aws::AwsCredential;

    async fn get_credential(&self) -> object_store::Result<Arc<Self::Credential>> {
        let c = self
            .0
            .provide_credentials()
            .await
            .map_err(|e| object_store::Error::Generic {
                store: "S3",
                source: format!(
                    "no AWS credentials: {e}. Set AWS_PROFILE (or AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY), or sign in (aws sso login)"
                )
                .into(),
            })?;
        Ok(Arc::new(object_store::aws::AwsCredential {
            key_id: c.access_key_id().to_string(),
            secret_key: c.secret_access_key().to_string(),
            token: c.session_token().map(str::to_string),
        }))
    }
}
