//! A pipeline's artifact stores on S3: one bucket per region (`artifactStores`), objects keyed by
//! their SHA-256 digest. The store is the same `ObjectArtifactStore` the local regions use, over
//! object_store's S3 client: uploads are multipart and streamed, S3 checks each part's SHA-256
//! checksum, the digest is verified on every copy between regions, and an object already in a
//! region is never copied again.

use crate::config::AwsOptions;
use meridian_engine::artifacts::ObjectArtifactStore;
use meridian_region::artifacts::{ArtifactError, ArtifactStore, ArtifactStores, StoreLocation};
use object_store::aws::{AmazonS3Builder, AwsCredential};
use std::sync::Arc;
use tokio::sync::OnceCell;

/// Opens S3 artifact stores with the SDK's credentials.
pub struct S3Stores {
    options: AwsOptions,
}

impl S3Stores {
    pub fn new(options: AwsOptions) -> S3Stores {
        S3Stores { options }
    }
}

/// The SDK's credential chain for one region, resolved on first use (opening a store is
/// synchronous; resolving credentials is not).
#[derive(Debug)]
struct LazyCredentials {
    options: AwsOptions,
    region: String,
    provider: OnceCell<Option<aws_credential_types::provider::SharedCredentialsProvider>>,
}

#[async_trait::async_trait]
impl object_store::CredentialProvider for LazyCredentials {
    type Credential = AwsCredential;

    async fn get_credential(&self) -> object_store::Result<Arc<AwsCredential>> {
        let provider = self
            .provider
            .get_or_init(|| async { self.options.sdk_config(&self.region).await.credentials_provider() })
            .await;
        let Some(provider) = provider else {
            return Err(object_store::Error::Generic {
                store: "S3",
                source: "no AWS credentials are configured: set AWS_PROFILE (or AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY), or sign in (aws sso login)".into(),
            });
        };
        crate::config::SdkCredentials(provider.clone()).get_credential().await
    }
}

/// The S3 client object_store uses for `bucket` in `region`.
pub fn object_store_for(
    options: &AwsOptions,
    region: &str,
    bucket: &str,
) -> object_store::Result<object_store::aws::AmazonS3> {
    let mut b = AmazonS3Builder::new()
        .with_region(region)
        .with_bucket_name(bucket)
        .with_checksum_algorithm(object_store::aws::Checksum::SHA256)
        .with_credentials(Arc::new(LazyCredentials {
            options: options.clone(),
            region: region.to_string(),
            provider: OnceCell::new(),
        }));
    if let Some(endpoint) = options.endpoint() {
        b = b
            .with_allow_http(endpoint.starts_with("http://"))
            .with_endpoint(endpoint)
            .with_virtual_hosted_style_request(false);
    }
    b.build()
}

/// S3's rules for a bucket name (3 to 63 lowercase letters, digits, dots and hyphens, starting
/// and ending with a letter or digit): a pipeline's store location is checked before it names a
/// bucket in a URL, so that `../x` or `a/b` never reaches another path of the endpoint.
pub fn check_bucket_name(name: &str) -> Result<(), String> {
    if meridian_core::path::is_bucket_name(name) {
        Ok(())
    } else {
        Err(format!(
            "`{name}` is not an S3 bucket name: use 3 to 63 lowercase letters, digits, dots and hyphens, starting and ending with a letter or digit"
        ))
    }
}

impl ArtifactStores for S3Stores {
    fn open(&self, region: &str, store: &StoreLocation) -> Result<Arc<dyn ArtifactStore>, ArtifactError> {
        if !store.store_type.eq_ignore_ascii_case("S3") {
            return Err(ArtifactError::Store {
                region: region.into(),
                message: format!(
                    "artifact stores of type `{}` are not supported: use S3",
                    store.store_type
                ),
            });
        }
        let bucket = store.location.trim_start_matches("s3://").trim_end_matches('/');
        check_bucket_name(bucket).map_err(|message| ArtifactError::Store {
            region: region.into(),
            message,
        })?;
        let s3 = object_store_for(&self.options, region, bucket).map_err(|e| ArtifactError::Store {
            region: region.into(),
            message: format!("cannot use the bucket `{bucket}`: {e}"),
        })?;
        Ok(Arc::new(ObjectArtifactStore::new(
            region,
            &format!("s3://{bucket}"),
            Arc::new(s3),
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bucket_names_follow_s3_rules() {
        for good in ["abc", "hello-artifacts-us-east-1", "my.bucket.1", &"a".repeat(63)] {
            assert!(check_bucket_name(good).is_ok(), "{good}");
        }
        for bad in [
            "ab",
            "../etc",
            "a/b",
            "Upper",
            "-abc",
            "abc-",
            "a..b",
            "",
            &"a".repeat(64),
        ] {
            assert!(check_bucket_name(bad).is_err(), "{bad}");
        }
        let stores = S3Stores::new(AwsOptions::default());
        let e = stores
            .open(
                "eu-west-1",
                &StoreLocation {
                    store_type: "S3".into(),
                    location: "../other".into(),
                    root: None,
                },
            )
            .err()
            .unwrap()
            .to_string();
        assert!(e.contains("`../other` is not an S3 bucket name"), "{e}");
    }
}
