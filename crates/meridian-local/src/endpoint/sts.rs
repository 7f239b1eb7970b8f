//! STS, as far as CLIs and SDKs call it: `GetCallerIdentity` (who am I) and `AssumeRole`
//! (cross-account deploys), answered with the local account and the local credentials.

use super::query::{el, error, ok, Params};
use super::Body;
use crate::credentials::{ACCESS_KEY_ID, ACCOUNT_ID, SECRET_ACCESS_KEY, SESSION_TOKEN};
use hyper::{Response, StatusCode};

pub fn handle(action: &str, p: &Params, _region: &str, request_id: &str) -> Response<Body> {
    match action {
        "GetCallerIdentity" => ok(
            "sts",
            action,
            &format!(
                "{}{}{}",
                el("Arn", &format!("arn:aws:iam::{ACCOUNT_ID}:user/meridian-local")),
                el("UserId", ACCESS_KEY_ID),
                el("Account", ACCOUNT_ID)
            ),
            request_id,
        ),
        "AssumeRole" | "AssumeRoleWithWebIdentity" => {
            let (Some(role), Some(session)) = (p.get("RoleArn"), p.get("RoleSessionName")) else {
                return error(
                    "sts",
                    StatusCode::BAD_REQUEST,
                    "ValidationError",
                    "AssumeRole needs RoleArn and RoleSessionName",
                    request_id,
                );
            };
            let Some(role_name) = role
                .strip_prefix("arn:aws:iam::")
                .and_then(|r| r.split_once(":role/"))
                .map(|(_, n)| n.rsplit('/').next().unwrap_or(n).to_string())
            else {
                return error(
                    "sts",
                    StatusCode::BAD_REQUEST,
                    "ValidationError",
                    &format!("`{role}` is not a role ARN (arn:aws:iam::ACCOUNT:role/NAME)"),
                    request_id,
                );
            };
            let seconds: i64 = p.get("DurationSeconds").and_then(|d| d.parse().ok()).unwrap_or(3600);
            let expires = jiff::Timestamp::now()
                .checked_add(jiff::SignedDuration::from_secs(seconds.clamp(900, 43_200)))
                .unwrap_or(jiff::Timestamp::MAX);
            let account = role.split(':').nth(4).unwrap_or(ACCOUNT_ID);
            ok(
                "sts",
                action,
                &format!(
                    "<Credentials>{}{}{}{}</Credentials><AssumedRoleUser>{}{}</AssumedRoleUser>",
                    el("AccessKeyId", ACCESS_KEY_ID),
                    el("SecretAccessKey", SECRET_ACCESS_KEY),
                    el("SessionToken", SESSION_TOKEN),
                    el("Expiration", &expires.strftime("%Y-%m-%dT%H:%M:%SZ").to_string()),
                    el(
                        "Arn",
                        &format!("arn:aws:sts::{account}:assumed-role/{role_name}/{session}")
                    ),
                    el("AssumedRoleId", &format!("AROAMERIDIANLOCAL:{session}")),
                ),
                request_id,
            )
        }
        other => error(
            "sts",
            StatusCode::BAD_REQUEST,
            "InvalidAction",
            &format!("local regions serve STS's GetCallerIdentity and AssumeRole, not `{other}`"),
            request_id,
        ),
    }
}
