//! A Lambda function written against the official `lambda_runtime` crate, used by Meridian's
//! conformance tests and invoke benchmark: it proves that an unmodified third-party runtime client
//! runs on the local Lambda host. It must stay a plain function, with no knowledge of Meridian.
//!
//! Behaviour, chosen by the event: `{"fail": "message"}` returns a handled error,
//! `{"sleep_ms": N}` sleeps first, `{"env": "NAME"}` reports an environment variable;
//! anything else is echoed back.

use lambda_runtime::{service_fn, Error, LambdaEvent};
use serde_json::{json, Value};

async fn handle(event: LambdaEvent<Value>) -> Result<Value, Error> {
    let (payload, ctx) = event.into_parts();
    if let Some(message) = payload.get("fail").and_then(Value::as_str) {
        return Err(message.to_string().into());
    }
    if let Some(ms) = payload.get("sleep_ms").and_then(Value::as_u64) {
        tokio::time::sleep(std::time::Duration::from_millis(ms)).await;
    }
    if let Some(name) = payload.get("env").and_then(Value::as_str) {
        return Ok(json!({ "value": std::env::var(name).ok(), "arn": ctx.invoked_function_arn }));
    }
    Ok(payload)
}

#[tokio::main]
async fn main() -> Result<(), Error> {
    lambda_runtime::run(service_fn(handle)).await
}
