//! `meridian bootstrap`: what a pipeline needs in each of its regions before it first runs, made
//! idempotently. Today that is each region's artifact bucket:
//!
//! - created in its region (`LocationConstraint` outside us-east-1);
//! - encrypted at rest by default (SSE-S3, or SSE-KMS with the pipeline's key);
//! - versioned, so an overwritten or deleted artifact can be recovered;
//! - with every public access blocked;
//! - with a lifecycle rule that expires what Meridian no longer needs: old versions after
//!   30 days, incomplete uploads and temporary objects (`tmp/`) after 1 day. Current artifacts are
//!   never expired by S3: Meridian's own retention (`retain`) deletes those no release needs.
//!
//! [`plan`] reads what each bucket has and says what is missing; [`apply`] makes only that;
//! [`delete`] removes the buckets (a non-empty one only with `force`; stacks are never touched).

use crate::config::AwsOptions;
use aws_sdk_s3::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_s3::types::{
    AbortIncompleteMultipartUpload, BucketLifecycleConfiguration, BucketLocationConstraint, BucketVersioningStatus,
    CreateBucketConfiguration, ExpirationStatus, LifecycleExpiration, LifecycleRule, LifecycleRuleFilter,
    NoncurrentVersionExpiration, PublicAccessBlockConfiguration, ServerSideEncryption, ServerSideEncryptionByDefault,
    ServerSideEncryptionConfiguration, ServerSideEncryptionRule, VersioningConfiguration,
};
use meridian_region::{ErrorKind, RegionError};
use serde::Serialize;

/// The lifecycle rule Meridian puts on its buckets (found again by this id).
pub const LIFECYCLE_RULE_ID: &str = "meridian-artifacts";
/// Days an overwritten or deleted artifact version is kept.
pub const NONCURRENT_DAYS: i32 = 30;

/// How a bucket's objects are encrypted at rest.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "type", rename_all = "kebab-case")]
pub enum Encryption {
    /// SSE-S3 (AES-256, keys managed by S3).
    SseS3,
    /// SSE-KMS with this key (id, ARN or alias).
    SseKms { key: String },
}

/// One region's artifact bucket, as the pipeline declares it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct BucketSpec {
    pub region: String,
    pub bucket: String,
    pub encryption: Encryption,
}

/// What a bucket lacks, each a call [`apply`] makes.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Step {
    CreateBucket,
    Encrypt,
    EnableVersioning,
    BlockPublicAccess,
    PutLifecycleRule,
}

impl Step {
    pub fn describe(&self, spec: &BucketSpec) -> String {
        match self {
            Step::CreateBucket => format!("create the bucket {} in {}", spec.bucket, spec.region),
            Step::Encrypt => match &spec.encryption {
                Encryption::SseS3 => "encrypt new objects by default with SSE-S3 (AES-256)".into(),
                Encryption::SseKms { key } => format!("encrypt new objects by default with SSE-KMS, key {key}"),
            },
            Step::EnableVersioning => "turn versioning on".into(),
            Step::BlockPublicAccess => "block all public access".into(),
            Step::PutLifecycleRule => format!(
                "add the lifecycle rule `{LIFECYCLE_RULE_ID}` (old versions after {NONCURRENT_DAYS} days; incomplete uploads and tmp/ after 1 day)"
            ),
        }
    }
}

/// One bucket's plan: what it lacks (empty: nothing to do).
#[derive(Clone, Debug, Serialize)]
pub struct BucketPlan {
    pub spec: BucketSpec,
    pub steps: Vec<Step>,
}

fn err<E: ProvideErrorMetadata + std::error::Error + 'static>(
    region: &str,
    action: &str,
    e: SdkError<E>,
) -> RegionError {
    crate::sdk_error(region, action, &e)
}

fn code_of<E: ProvideErrorMetadata>(e: &SdkError<E>) -> Option<&str> {
    match e {
        SdkError::ServiceError(s) => s.err().code(),
        _ => None,
    }
}

async fn client(options: &AwsOptions, region: &str) -> aws_sdk_s3::Client {
    let config = options.sdk_config(region).await;
    let mut b = aws_sdk_s3::config::Builder::from(&config);
    if options.endpoint().is_some() {
        // stand-ins such as moto serve buckets at path-style addresses only
        b = b.force_path_style(true);
    }
    aws_sdk_s3::Client::from_conf(b.build())
}

/// What each bucket lacks, read from S3 (no change is made).
pub async fn plan(options: &AwsOptions, specs: &[BucketSpec]) -> Result<Vec<BucketPlan>, RegionError> {
    let mut plans = Vec::new();
    for spec in specs {
        let s3 = client(options, &spec.region).await;
        plans.push(BucketPlan {
            spec: spec.clone(),
            steps: missing(&s3, spec).await?,
        });
    }
    Ok(plans)
}

async fn missing(s3: &aws_sdk_s3::Client, spec: &BucketSpec) -> Result<Vec<Step>, RegionError> {
    let (region, bucket) = (spec.region.as_str(), spec.bucket.as_str());
    crate::artifacts::check_bucket_name(bucket).map_err(|m| RegionError::new(ErrorKind::Invalid, m).region(region))?;
    match s3.head_bucket().bucket(bucket).send().await {
        Ok(head) => {
            if let Some(r) = head.bucket_region() {
                if r != region {
                    return Err(RegionError::new(
                        ErrorKind::Conflict,
                        format!(
                            "the bucket {bucket} is in {r}, not in {region}: each region needs a bucket of its own in that region; name another bucket for {region} in the pipeline's artifactStores"
                        ),
                    )
                    .region(region));
                }
            }
        }
        Err(e) => {
            let not_found = matches!(&e, SdkError::ServiceError(s) if s.raw().status().as_u16() == 404)
                || code_of(&e) == Some("NotFound");
            if not_found {
                return Ok(vec![
                    Step::CreateBucket,
                    Step::Encrypt,
                    Step::EnableVersioning,
                    Step::BlockPublicAccess,
                    Step::PutLifecycleRule,
                ]);
            }
            let forbidden = matches!(&e, SdkError::ServiceError(s) if s.raw().status().as_u16() == 403);
            if forbidden {
                return Err(RegionError::new(
                    ErrorKind::Permanent,
                    format!(
                        "the bucket {bucket} exists but these credentials may not use it (403): bucket names are global, so it may belong to another account; name another bucket for {region}, or grant s3:ListBucket on it"
                    ),
                )
                .region(region));
            }
            return Err(err(region, "s3:HeadBucket", e));
        }
    }
    let mut steps = Vec::new();
    let enc = s3.get_bucket_encryption().bucket(bucket).send().await;
    let encrypted = match enc {
        Ok(o) => o
            .server_side_encryption_configuration()
            .map(|c| {
                c.rules().iter().any(|r| {
                    r.apply_server_side_encryption_by_default()
                        .is_some_and(|d| match &spec.encryption {
                            Encryption::SseS3 => d.sse_algorithm() == &ServerSideEncryption::Aes256,
                            Encryption::SseKms { key } => {
                                d.sse_algorithm() == &ServerSideEncryption::AwsKms
                                    && d.kms_master_key_id() == Some(key.as_str())
                            }
                        })
                })
            })
            .unwrap_or(false),
        Err(e) if code_of(&e) == Some("ServerSideEncryptionConfigurationNotFoundError") => false,
        Err(e) => return Err(err(region, "s3:GetEncryptionConfiguration", e)),
    };
    if !encrypted {
        steps.push(Step::Encrypt);
    }
    let versioning = s3
        .get_bucket_versioning()
        .bucket(bucket)
        .send()
        .await
        .map_err(|e| err(region, "s3:GetBucketVersioning", e))?;
    if versioning.status() != Some(&BucketVersioningStatus::Enabled) {
        steps.push(Step::EnableVersioning);
    }
    let blocked = match s3.get_public_access_block().bucket(bucket).send().await {
        Ok(o) => o.public_access_block_configuration().is_some_and(|c| {
            c.block_public_acls() == Some(true)
                && c.ignore_public_acls() == Some(true)
                && c.block_public_policy() == Some(true)
                && c.restrict_public_buckets() == Some(true)
        }),
        Err(e) if code_of(&e) == Some("NoSuchPublicAccessBlockConfiguration") => false,
        Err(e) => return Err(err(region, "s3:GetBucketPublicAccessBlock", e)),
    };
    if !blocked {
        steps.push(Step::BlockPublicAccess);
    }
    let has_rule = match s3.get_bucket_lifecycle_configuration().bucket(bucket).send().await {
        Ok(o) => o.rules().iter().any(|r| r.id() == Some(LIFECYCLE_RULE_ID)),
        Err(e) if code_of(&e) == Some("NoSuchLifecycleConfiguration") => false,
        Err(e) => return Err(err(region, "s3:GetLifecycleConfiguration", e)),
    };
    if !has_rule {
        steps.push(Step::PutLifecycleRule);
    }
    Ok(steps)
}

/// Makes what each bucket lacks; `say` hears every change. Returns the plans carried out.
pub async fn apply(
    options: &AwsOptions,
    specs: &[BucketSpec],
    say: &(dyn Fn(&str) + Sync),
) -> Result<Vec<BucketPlan>, RegionError> {
    let plans = plan(options, specs).await?;
    for p in &plans {
        let s3 = client(options, &p.spec.region).await;
        if p.steps.is_empty() {
            say(&format!(
                "{} ({}): ready, nothing to change",
                p.spec.bucket, p.spec.region
            ));
        }
        for step in &p.steps {
            perform(&s3, &p.spec, step).await?;
            say(&format!(
                "{} ({}): {}",
                p.spec.bucket,
                p.spec.region,
                step.describe(&p.spec)
            ));
        }
    }
    Ok(plans)
}

async fn perform(s3: &aws_sdk_s3::Client, spec: &BucketSpec, step: &Step) -> Result<(), RegionError> {
    let (region, bucket) = (spec.region.as_str(), spec.bucket.as_str());
    match step {
        Step::CreateBucket => {
            let mut req = s3.create_bucket().bucket(bucket);
            if region != "us-east-1" {
                req = req.create_bucket_configuration(
                    CreateBucketConfiguration::builder()
                        .location_constraint(BucketLocationConstraint::from(region))
                        .build(),
                );
            }
            match req.send().await {
                Ok(_) => Ok(()),
                // made by an earlier, interrupted bootstrap
                Err(e) if code_of(&e) == Some("BucketAlreadyOwnedByYou") => Ok(()),
                Err(e) if code_of(&e) == Some("BucketAlreadyExists") => Err(RegionError::new(
                    ErrorKind::Conflict,
                    format!("the bucket name {bucket} is taken by another AWS account (bucket names are global): name another bucket for {region} in the pipeline's artifactStores"),
                )
                .region(region)),
                Err(e) => Err(err(region, "s3:CreateBucket", e)),
            }
        }
        Step::Encrypt => {
            let default = match &spec.encryption {
                Encryption::SseS3 => {
                    ServerSideEncryptionByDefault::builder().sse_algorithm(ServerSideEncryption::Aes256)
                }
                Encryption::SseKms { key } => ServerSideEncryptionByDefault::builder()
                    .sse_algorithm(ServerSideEncryption::AwsKms)
                    .kms_master_key_id(key),
            }
            .build()
            .map_err(|e| RegionError::new(ErrorKind::Invalid, e.to_string()))?;
            let rule = ServerSideEncryptionRule::builder()
                .apply_server_side_encryption_by_default(default)
                .bucket_key_enabled(matches!(spec.encryption, Encryption::SseKms { .. }))
                .build();
            let config = ServerSideEncryptionConfiguration::builder()
                .rules(rule)
                .build()
                .map_err(|e| RegionError::new(ErrorKind::Invalid, e.to_string()))?;
            s3.put_bucket_encryption()
                .bucket(bucket)
                .server_side_encryption_configuration(config)
                .send()
                .await
                .map(drop)
                .map_err(|e| err(region, "s3:PutEncryptionConfiguration", e))
        }
        Step::EnableVersioning => s3
            .put_bucket_versioning()
            .bucket(bucket)
            .versioning_configuration(
                VersioningConfiguration::builder()
                    .status(BucketVersioningStatus::Enabled)
                    .build(),
            )
            .send()
            .await
            .map(drop)
            .map_err(|e| err(region, "s3:PutBucketVersioning", e)),
        Step::BlockPublicAccess => s3
            .put_public_access_block()
            .bucket(bucket)
            .public_access_block_configuration(
                PublicAccessBlockConfiguration::builder()
                    .block_public_acls(true)
                    .ignore_public_acls(true)
                    .block_public_policy(true)
                    .restrict_public_buckets(true)
                    .build(),
            )
            .send()
            .await
            .map(drop)
            .map_err(|e| err(region, "s3:PutBucketPublicAccessBlock", e)),
        Step::PutLifecycleRule => {
            let invalid = |e: aws_sdk_s3::error::BuildError| RegionError::new(ErrorKind::Invalid, e.to_string());
            // keep the bucket's other rules: only Meridian's own is replaced
            let mut rules: Vec<LifecycleRule> =
                match s3.get_bucket_lifecycle_configuration().bucket(bucket).send().await {
                    Ok(o) => o
                        .rules()
                        .iter()
                        .filter(|r| r.id() != Some(LIFECYCLE_RULE_ID) && r.id() != Some("meridian-tmp"))
                        .cloned()
                        .collect(),
                    Err(_) => Vec::new(),
                };
            rules.push(
                LifecycleRule::builder()
                    .id(LIFECYCLE_RULE_ID)
                    .status(ExpirationStatus::Enabled)
                    .filter(LifecycleRuleFilter::builder().prefix("").build())
                    .noncurrent_version_expiration(
                        NoncurrentVersionExpiration::builder()
                            .noncurrent_days(NONCURRENT_DAYS)
                            .build(),
                    )
                    .abort_incomplete_multipart_upload(
                        AbortIncompleteMultipartUpload::builder()
                            .days_after_initiation(1)
                            .build(),
                    )
                    .build()
                    .map_err(invalid)?,
            );
            rules.push(
                LifecycleRule::builder()
                    .id("meridian-tmp")
                    .status(ExpirationStatus::Enabled)
                    .filter(LifecycleRuleFilter::builder().prefix("tmp/").build())
                    .expiration(LifecycleExpiration::builder().days(1).build())
                    .build()
                    .map_err(invalid)?,
            );
            s3.put_bucket_lifecycle_configuration()
                .bucket(bucket)
                .lifecycle_configuration(
                    BucketLifecycleConfiguration::builder()
                        .set_rules(Some(rules))
                        .build()
                        .map_err(invalid)?,
                )
                .send()
                .await
                .map(drop)
                .map_err(|e| err(region, "s3:PutLifecycleConfiguration", e))
        }
    }
}

/// What [`delete`] did to one bucket.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub enum Deleted {
    /// It did not exist.
    Absent,
    /// Deleted, after this many object versions.
    Deleted { objects: usize },
}

/// Deletes each bucket. A bucket that still holds objects is refused unless `force` (then every
/// version of every object goes first). Stacks are never deleted by bootstrap.
pub async fn delete(
    options: &AwsOptions,
    specs: &[BucketSpec],
    force: bool,
    say: &(dyn Fn(&str) + Sync),
) -> Result<Vec<(BucketSpec, Deleted)>, RegionError> {
    let mut out = Vec::new();
    for spec in specs {
        let (region, bucket) = (spec.region.as_str(), spec.bucket.as_str());
        crate::artifacts::check_bucket_name(bucket)
            .map_err(|m| RegionError::new(ErrorKind::Invalid, m).region(region))?;
        let s3 = client(options, region).await;
        match s3.head_bucket().bucket(bucket).send().await {
            Ok(_) => {}
            Err(SdkError::ServiceError(s)) if s.raw().status().as_u16() == 404 => {
                say(&format!("{bucket} ({region}): does not exist"));
                out.push((spec.clone(), Deleted::Absent));
                continue;
            }
            Err(e) => return Err(err(region, "s3:HeadBucket", e)),
        }
        let versions = all_versions(&s3, spec).await?;
        if !versions.is_empty() && !force {
            return Err(RegionError::new(
                ErrorKind::Conflict,
                format!(
                    "the bucket {bucket} ({region}) still holds {} object version(s), the artifacts of past releases (a rollback needs them): add --force to delete them with the bucket",
                    versions.len()
                ),
            )
            .region(region));
        }
        for chunk in versions.chunks(1000) {
            let objects = chunk
                .iter()
                .map(|(k, v)| {
                    aws_sdk_s3::types::ObjectIdentifier::builder()
                        .key(k)
                        .set_version_id(v.clone())
                        .build()
                        .map_err(|e| RegionError::new(ErrorKind::Invalid, e.to_string()))
                })
                .collect::<Result<Vec<_>, _>>()?;
            s3.delete_objects()
                .bucket(bucket)
                .delete(
                    aws_sdk_s3::types::Delete::builder()
                        .set_objects(Some(objects))
                        .quiet(true)
                        .build()
                        .map_err(|e| RegionError::new(ErrorKind::Invalid, e.to_string()))?,
                )
                .send()
                .await
                .map_err(|e| err(region, "s3:DeleteObject", e))?;
        }
        s3.delete_bucket()
            .bucket(bucket)
            .send()
            .await
            .map_err(|e| err(region, "s3:DeleteBucket", e))?;
        say(&format!(
            "{bucket} ({region}): deleted, with {} object version(s)",
            versions.len()
        ));
        out.push((
            spec.clone(),
            Deleted::Deleted {
                objects: versions.len(),
            },
        ));
    }
    Ok(out)
}

/// Every (key, version) of a bucket, delete markers included.
async fn all_versions(
    s3: &aws_sdk_s3::Client,
    spec: &BucketSpec,
) -> Result<Vec<(String, Option<String>)>, RegionError> {
    let mut out = Vec::new();
    let mut key_marker = None;
    let mut version_marker = None;
    loop {
        let page = s3
            .list_object_versions()
            .bucket(&spec.bucket)
            .set_key_marker(key_marker.clone())
            .set_version_id_marker(version_marker.clone())
            .send()
            .await
            .map_err(|e| err(&spec.region, "s3:ListBucketVersions", e))?;
        for v in page.versions() {
            if let Some(k) = v.key() {
                out.push((k.to_string(), v.version_id().map(str::to_string)));
            }
        }
        for m in page.delete_markers() {
            if let Some(k) = m.key() {
                out.push((k.to_string(), m.version_id().map(str::to_string)));
            }
        }
        if page.is_truncated() != Some(true) {
            return Ok(out);
        }
        key_marker = page.next_key_marker().map(str::to_string);
        version_marker = page.next_version_id_marker().map(str::to_string);
    }
}

/// The IAM policy a pipeline's runs need in these regions (what `meridian run` calls: S3 for the
/// buckets, CloudFormation for the stacks, Lambda and CloudWatch for the aliases it moves and
/// judges), as an IAM policy document. CloudFormation acts with its own role (`RoleArn`) or the
/// caller's permissions for the stacks' resources: those are the template's, not listed here.
pub fn artifact_policy(specs: &[BucketSpec]) -> serde_json::Value {
    let buckets: Vec<String> = specs.iter().map(|s| format!("arn:aws:s3:::{}", s.bucket)).collect();
    let objects: Vec<String> = specs.iter().map(|s| format!("arn:aws:s3:::{}/*", s.bucket)).collect();
    let mut statements = vec![
        serde_json::json!({
            "Sid": "MeridianArtifactBuckets",
            "Effect": "Allow",
            "Action": ["s3:ListBucket", "s3:GetBucketLocation", "s3:GetBucketVersioning"],
            "Resource": buckets,
        }),
        serde_json::json!({
            "Sid": "MeridianArtifacts",
            "Effect": "Allow",
            "Action": ["s3:GetObject", "s3:PutObject", "s3:DeleteObject", "s3:AbortMultipartUpload"],
            "Resource": objects,
        }),
    ];
    let regions: Vec<&str> = specs.iter().map(|s| s.region.as_str()).collect();
    let in_regions = |service: &str, what: &str| -> Vec<String> {
        regions
            .iter()
            .map(|r| format!("arn:aws:{service}:{r}:*:{what}"))
            .collect()
    };
    // Stacks through change sets, and the aliases Meridian moves itself (docs/aws.md).
    statements.push(serde_json::json!({
        "Sid": "MeridianStacks",
        "Effect": "Allow",
        "Action": [
            "cloudformation:DescribeStacks", "cloudformation:DescribeStackEvents",
            "cloudformation:ListStackResources", "cloudformation:GetTemplate",
            "cloudformation:CreateChangeSet", "cloudformation:DescribeChangeSet",
            "cloudformation:ExecuteChangeSet", "cloudformation:DeleteChangeSet",
            "cloudformation:DeleteStack"
        ],
        "Resource": in_regions("cloudformation", "stack/*"),
    }));
    statements.push(serde_json::json!({
        "Sid": "MeridianTrafficShifting",
        "Effect": "Allow",
        "Action": [
            "lambda:GetAlias", "lambda:UpdateAlias", "lambda:ListAliases",
            "lambda:ListVersionsByFunction", "lambda:GetFunctionConfiguration",
            "lambda:PublishVersion", "lambda:InvokeFunction"
        ],
        "Resource": in_regions("lambda", "function:*"),
    }));
    statements.push(serde_json::json!({
        "Sid": "MeridianJudging",
        "Effect": "Allow",
        "Action": ["cloudwatch:DescribeAlarms", "cloudwatch:GetMetricData"],
        "Resource": "*",
    }));
    // The CodeDeploy deployments CloudFormation starts for aliases Meridian does not move
    // itself (templates sent with their Transform): followed, and stopped on the judge's verdict.
    let mut deploy_groups = in_regions("codedeploy", "deploymentgroup:*");
    deploy_groups.extend(in_regions("codedeploy", "application:*"));
    statements.push(serde_json::json!({
        "Sid": "MeridianFollowing",
        "Effect": "Allow",
        "Action": [
            "codedeploy:ListDeploymentGroups", "codedeploy:ListDeployments", "codedeploy:GetDeployment",
            "codedeploy:GetApplicationRevision", "codedeploy:ListDeploymentTargets", "codedeploy:GetDeploymentTarget",
            "codedeploy:StopDeployment"
        ],
        "Resource": deploy_groups,
    }));
    let keys: Vec<&String> = specs
        .iter()
        .filter_map(|s| match &s.encryption {
            Encryption::SseKms { key } => Some(key),
            Encryption::SseS3 => None,
        })
        .collect();
    if !keys.is_empty() {
        statements.push(serde_json::json!({
            "Sid": "MeridianArtifactKeys",
            "Effect": "Allow",
            "Action": ["kms:Decrypt", "kms:GenerateDataKey"],
            "Resource": keys,
        }));
    }
    serde_json::json!({"Version": "2012-10-17", "Statement": statements})
}

/// The statement a pipeline with `builds: codebuild` adds: starting, following and stopping its
/// projects' builds, and reading their logs.
pub fn builds_statement(specs: &[BucketSpec]) -> serde_json::Value {
    let regions: Vec<&str> = specs.iter().map(|s| s.region.as_str()).collect();
    let arns = |service: &str, what: &str| -> Vec<String> {
        regions
            .iter()
            .map(|r| format!("arn:aws:{service}:{r}:*:{what}"))
            .collect()
    };
    let mut resources = arns("codebuild", "project/*");
    resources.extend(arns("logs", "log-group:/aws/codebuild/*"));
    serde_json::json!({
        "Sid": "MeridianBuilds",
        "Effect": "Allow",
        "Action": ["codebuild:StartBuild", "codebuild:BatchGetBuilds", "codebuild:StopBuild", "logs:GetLogEvents"],
        "Resource": resources,
    })
}

/// The IAM policy `meridian bootstrap` itself needs (creating and configuring the buckets).
pub fn bootstrap_policy(specs: &[BucketSpec]) -> serde_json::Value {
    let buckets: Vec<String> = specs.iter().map(|s| format!("arn:aws:s3:::{}", s.bucket)).collect();
    serde_json::json!({"Version": "2012-10-17", "Statement": [{
        "Sid": "MeridianBootstrap",
        "Effect": "Allow",
        "Action": [
            "s3:CreateBucket", "s3:ListBucket", "s3:ListBucketVersions",
            "s3:GetEncryptionConfiguration", "s3:PutEncryptionConfiguration",
            "s3:GetBucketVersioning", "s3:PutBucketVersioning",
            "s3:GetBucketPublicAccessBlock", "s3:PutBucketPublicAccessBlock",
            "s3:GetLifecycleConfiguration", "s3:PutLifecycleConfiguration",
            "s3:DeleteBucket", "s3:DeleteObject", "s3:DeleteObjectVersion"
        ],
        "Resource": buckets,
    }]})
}

/// The buckets a pipeline needs on AWS: the artifact store of each region whose backend is
/// `aws` (`artifactStores`, or the single `artifactStore` in the home region), encrypted with the
/// store's `encryptionKey` when it names one (SSE-KMS), else with SSE-S3.
pub fn buckets_of(p: &meridian_pipeline::model::Pipeline, home_region: &str) -> Vec<BucketSpec> {
    let choice = meridian_region::BackendChoice {
        default: p.meridian.default_backend.clone(),
        by_region: p.meridian.backends.clone(),
        roles: p.meridian.roles.clone(),
    };
    let spec = |region: &str, s: &meridian_pipeline::model::ArtifactStore| BucketSpec {
        region: region.to_string(),
        bucket: s.location.trim_start_matches("s3://").trim_end_matches('/').to_string(),
        encryption: match &s.encryption_key {
            Some(k) if !k.id.is_empty() => Encryption::SseKms { key: k.id.clone() },
            _ => Encryption::SseS3,
        },
    };
    let mut out: Vec<BucketSpec> = p
        .artifact_stores
        .iter()
        .filter(|(r, _)| choice.kind_of(r) == "aws")
        .map(|(r, s)| spec(r, s))
        .collect();
    if let Some(s) = &p.artifact_store {
        if choice.kind_of(home_region) == "aws" {
            out.push(spec(home_region, s));
        }
    }
    out
}
