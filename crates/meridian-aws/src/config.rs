//! Credentials, regions and endpoints, resolved by `aws-config` as the AWS CLI resolves them.

use aws_config::{BehaviorVersion, Region, SdkConfig};
use aws_credential_types::provider::ProvideCredentials;
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

/// How Meridian reaches AWS: which profile, and which endpoint (a stand-in such as moto, or a
/// VPC endpoint). Unset fields fall back to the environment, as the AWS CLI does
/// (`AWS_PROFILE`, `AWS_ENDPOINT_URL`).
#[derive(Clone, Debug, Default)]
pub struct AwsOptions {
    pub profile: Option<String>,
    /// Every service of every region at this URL (`--endpoint-url`); moto serves them all on one.
    pub endpoint_url: Option<String>,
    /// The IAM role assumed in a region (another account), by region; `*`: every region without
    /// its own. The credentials above are the ones that assume it.
    pub roles: BTreeMap<String, String>,
    /// Each region's configuration, resolved once: credentials (and assumed roles' sessions) are
    /// cached by the SDK inside it, so clients made from it share them.
    /// (A cache: leave it to `Default`.)
    pub configs: Arc<Mutex<BTreeMap<String, SdkConfig>>>,
}

impl AwsOptions {
    /// The endpoint in force: `--endpoint-url`, else `AWS_ENDPOINT_URL`.
    pub fn endpoint(&self) -> Option<String> {
        self.endpoint_url
            .clone()
            .or_else(|| std::env::var("AWS_ENDPOINT_URL").ok())
            .filter(|e| !e.is_empty())
    }

    /// The role assumed in `region`, if any.
    pub fn role_of(&self, region: &str) -> Option<&str> {
        self.roles
            .get(region)
            .or_else(|| self.roles.get("*"))
            .map(String::as_str)
    }

    /// The SDK's configuration for one region: with the credentials of the role the region
    /// assumes (`AssumeRole`, session `meridian`, refreshed by the SDK before it expires).
    pub async fn sdk_config(&self, region: &str) -> SdkConfig {
        if let Some(c) = self.configs.lock().unwrap_or_else(|e| e.into_inner()).get(region) {
            return c.clone();
        }
        let mut loader = aws_config::defaults(BehaviorVersion::latest()).region(Region::new(region.to_string()));
        if let Some(p) = &self.profile {
            loader = loader.profile_name(p);
        }
        if let Some(e) = &self.endpoint_url {
            loader = loader.endpoint_url(e);
        }
        let mut config = loader.load().await;
        if let Some(role) = self.role_of(region) {
            let assumed = aws_config::sts::AssumeRoleProvider::builder(role)
                .session_name("meridian")
                .region(Region::new(region.to_string()))
                .configure(&config)
                .build()
                .await;
            config = config
                .into_builder()
                .credentials_provider(aws_credential_types::provider::SharedCredentialsProvider::new(assumed))
                .build();
        }
        self.configs
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(region.to_string(), config.clone());
        config
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
