//! The credentials and environment that AWS CLIs and SDKs need to reach the local regions: one
//! mechanism for functions (set by the Lambda host) and builds (set by the CodeBuild action).
//!
//! Local regions have one set of credentials, printed by `meridian credentials`. The endpoint
//! accepts them (and, unless `meridian serve --require-auth`, any other); S3 always checks the
//! signature of a signed request made with them, as the protocol's chunked uploads are signed.

/// The local regions' access key id.
pub const ACCESS_KEY_ID: &str = "MERIDIANLOCAL";
/// Its secret key.
pub const SECRET_ACCESS_KEY: &str = "meridian-local";
/// A session token (Lambda gives functions session credentials; clients send it along).
pub const SESSION_TOKEN: &str = "meridian-local";
/// The account every local region belongs to (`AWS::AccountId`'s default).
pub const ACCOUNT_ID: &str = "123456789012";

/// The variables that send an AWS CLI, SDK or SAM CLI in `region` to the local endpoint at `url`
/// (`http://127.0.0.1:PORT`) with the local credentials. Without a URL, only the region and the
/// credentials (calls then go nowhere local).
pub fn client_env(region: &str, url: Option<&str>) -> Vec<(String, String)> {
    let mut env: Vec<(String, String)> = [
        ("AWS_REGION", region),
        ("AWS_DEFAULT_REGION", region),
        ("AWS_ACCESS_KEY_ID", ACCESS_KEY_ID),
        ("AWS_SECRET_ACCESS_KEY", SECRET_ACCESS_KEY),
        ("AWS_SESSION_TOKEN", SESSION_TOKEN),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    if let Some(url) = url {
        // Every service (current CLIs, SDKs and the SAM CLI honour it), and the per-service names
        // that some SDK versions read first. Credentials in the environment come before any
        // profile's, so a user's AWS_PROFILE cannot send the calls elsewhere.
        env.push(("AWS_ENDPOINT_URL".into(), url.to_string()));
        for service in [
            "LAMBDA",
            "CODEDEPLOY",
            "S3",
            "CLOUDFORMATION",
            "SSM",
            "SECRETS_MANAGER",
            "STS",
        ] {
            env.push((format!("AWS_ENDPOINT_URL_{service}"), url.to_string()));
        }
        env.push(("AWS_EC2_METADATA_DISABLED".into(), "true".into()));
    }
    env
}
