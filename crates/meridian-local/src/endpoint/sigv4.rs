//! Signature Version 4 checked as AWS checks it, for the requests whose body the endpoint reads
//! whole (the query and JSON APIs) under `meridian serve --require-auth`. S3's signatures are
//! checked by `s3s`.

use hmac::{Hmac, KeyInit, Mac};
use sha2::{Digest, Sha256};

type HmacSha256 = Hmac<Sha256>;

/// How far a request's `X-Amz-Date` may be from now, as AWS allows.
const MAX_SKEW_SECS: i64 = 15 * 60;

/// Why a signature is refused: (error code, message).
pub type Refusal = (&'static str, String);

fn hmac(key: &[u8], data: &[u8]) -> Vec<u8> {
    let mut m = <HmacSha256 as KeyInit>::new_from_slice(key).expect("HMAC takes any key length");
    m.update(data);
    m.finalize().into_bytes().to_vec()
}

fn hex_sha256(data: &[u8]) -> String {
    hex::encode(Sha256::digest(data))
}

/// RFC 3986 encoding as SigV4 wants it (unreserved characters kept).
fn uri_encode(s: &str, keep_slash: bool) -> String {
    let mut o = String::new();
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) || (keep_slash && b == b'/') {
            o.push(b as char);
        } else {
            o.push_str(&format!("%{b:02X}"));
        }
    }
    o
}

/// Checks the `Authorization` header of a request with `secret`.
pub fn verify(
    method: &str,
    path: &str,
    query: Option<&str>,
    headers: &hyper::HeaderMap,
    body: &[u8],
    secret: &str,
) -> Result<(), Refusal> {
    let auth = headers
        .get(hyper::header::AUTHORIZATION)
        .and_then(|h| h.to_str().ok())
        .ok_or((
            "MissingAuthenticationToken",
            "Request is missing Authentication Token".to_string(),
        ))?;
    let malformed = || {
        (
            "IncompleteSignature",
            format!("Authorization header requires Credential, SignedHeaders and Signature: `{auth}`"),
        )
    };
    let rest = auth.strip_prefix("AWS4-HMAC-SHA256 ").ok_or_else(malformed)?;
    let mut credential = None;
    let mut signed = None;
    let mut signature = None;
    for part in rest.split(',') {
        let part = part.trim();
        if let Some(v) = part.strip_prefix("Credential=") {
            credential = Some(v);
        } else if let Some(v) = part.strip_prefix("SignedHeaders=") {
            signed = Some(v);
        } else if let Some(v) = part.strip_prefix("Signature=") {
            signature = Some(v);
        }
    }
    let (credential, signed, signature) = (
        credential.ok_or_else(malformed)?,
        signed.ok_or_else(malformed)?,
        signature.ok_or_else(malformed)?,
    );
    let scope: Vec<&str> = credential.split('/').collect();
    if scope.len() != 5 || scope[4] != "aws4_request" {
        return Err(malformed());
    }
    let amz_date = headers.get("x-amz-date").and_then(|h| h.to_str().ok()).ok_or((
        "IncompleteSignature",
        "the request has no X-Amz-Date header".to_string(),
    ))?;
    let when = jiff::civil::DateTime::strptime("%Y%m%dT%H%M%SZ", amz_date)
        .ok()
        .and_then(|d| d.to_zoned(jiff::tz::TimeZone::UTC).ok())
        .map(|z| z.timestamp())
        .ok_or((
            "IncompleteSignature",
            format!("X-Amz-Date `{amz_date}` is not a date like 20261130T120000Z"),
        ))?;
    let skew = (jiff::Timestamp::now().as_second() - when.as_second()).abs();
    if skew > MAX_SKEW_SECS {
        return Err((
            "InvalidSignatureException",
            format!("Signature expired: {amz_date} is more than 15 minutes from the endpoint's time"),
        ));
    }
    let mut pairs: Vec<(String, String)> = form_urlencoded::parse(query.unwrap_or("").as_bytes())
        .map(|(k, v)| (uri_encode(&k, false), uri_encode(&v, false)))
        .collect();
    pairs.sort();
    let canonical_query = pairs
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join("&");
    let mut canonical_headers = String::new();
    for name in signed.split(';') {
        let values: Vec<String> = headers
            .get_all(name)
            .iter()
            .map(|v| {
                String::from_utf8_lossy(v.as_bytes())
                    .split_whitespace()
                    .collect::<Vec<_>>()
                    .join(" ")
            })
            .collect();
        if values.is_empty() {
            return Err((
                "IncompleteSignature",
                format!("the signed header `{name}` is not in the request"),
            ));
        }
        canonical_headers.push_str(&format!("{name}:{}\n", values.join(",")));
    }
    // Services other than S3 sign the path encoded once more.
    let canonical_uri = uri_encode(if path.is_empty() { "/" } else { path }, true);
    let payload = headers
        .get("x-amz-content-sha256")
        .and_then(|h| h.to_str().ok())
        .map(str::to_string)
        .unwrap_or_else(|| hex_sha256(body));
    let canonical = format!("{method}\n{canonical_uri}\n{canonical_query}\n{canonical_headers}\n{signed}\n{payload}");
    let scope_text = scope[1..].join("/");
    let to_sign = format!(
        "AWS4-HMAC-SHA256\n{amz_date}\n{scope_text}\n{}",
        hex_sha256(canonical.as_bytes())
    );
    let mut key = hmac(format!("AWS4{secret}").as_bytes(), scope[1].as_bytes());
    for part in &scope[2..5] {
        key = hmac(&key, part.as_bytes());
    }
    let expected = hex::encode(hmac(&key, to_sign.as_bytes()));
    // Compared whole, in constant time.
    let same = expected.len() == signature.len()
        && expected
            .bytes()
            .zip(signature.bytes())
            .fold(0u8, |acc, (a, b)| acc | (a ^ b))
            == 0;
    if !same {
        return Err((
            "SignatureDoesNotMatch",
            "The request signature we calculated does not match the signature you provided. Check your AWS Secret Access Key and signing method (local regions take the credentials `meridian credentials` prints).".to_string(),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// AWS's own worked example (the SigV4 test suite's `get-vanilla`, with its fixed date), which
    /// is outside the 15-minute window: the signature is checked by recomputing the expected one.
    #[test]
    fn the_signing_key_and_signature_follow_aws_s_example() {
        // From AWS's documentation: the signing key of this secret, date, region and service.
        let secret = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY";
        let mut key = hmac(format!("AWS4{secret}").as_bytes(), b"20150830");
        for part in ["us-east-1", "iam", "aws4_request"] {
            key = hmac(&key, part.as_bytes());
        }
        assert_eq!(
            hex::encode(&key),
            "c4afb1cc5771d871763a393e44b703571b55cc28424d1a5e86da6ed3c154a4b9"
        );
    }

    #[test]
    fn a_request_signed_now_passes_and_a_changed_body_does_not() {
        let secret = "meridian-local";
        let date = jiff::Timestamp::now().strftime("%Y%m%dT%H%M%SZ").to_string();
        let body = b"Action=GetCallerIdentity&Version=2011-06-15";
        let mut headers = hyper::HeaderMap::new();
        headers.insert("host", "127.0.0.1:9001".parse().unwrap());
        headers.insert("x-amz-date", date.parse().unwrap());
        let canonical = format!(
            "POST\n/\n\nhost:127.0.0.1:9001\nx-amz-date:{date}\n\nhost;x-amz-date\n{}",
            hex_sha256(body)
        );
        let scope = format!("{}/us-east-1/sts/aws4_request", &date[..8]);
        let to_sign = format!(
            "AWS4-HMAC-SHA256\n{date}\n{scope}\n{}",
            hex_sha256(canonical.as_bytes())
        );
        let mut key = hmac(format!("AWS4{secret}").as_bytes(), &date.as_bytes()[..8]);
        for part in ["us-east-1", "sts", "aws4_request"] {
            key = hmac(&key, part.as_bytes());
        }
        let sig = hex::encode(hmac(&key, to_sign.as_bytes()));
        headers.insert(
            hyper::header::AUTHORIZATION,
            format!(
                "AWS4-HMAC-SHA256 Credential=MERIDIANLOCAL/{scope}, SignedHeaders=host;x-amz-date, Signature={sig}"
            )
            .parse()
            .unwrap(),
        );
        assert_eq!(verify("POST", "/", None, &headers, body, secret), Ok(()));
        let e = verify("POST", "/", None, &headers, b"Action=AssumeRole", secret).unwrap_err();
        assert_eq!(e.0, "SignatureDoesNotMatch");
        let e = verify("POST", "/", None, &headers, body, "other-secret").unwrap_err();
        assert_eq!(e.0, "SignatureDoesNotMatch");
    }
}
