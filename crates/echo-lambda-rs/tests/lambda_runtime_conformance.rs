//! Conformance: a function built with the official `lambda_runtime` crate, packaged as
//! `bootstrap` for `provided.al2023`, runs unmodified on the local Lambda host.

use meridian_core::RegionId;
use meridian_local::{CodeSource, FunctionSpec, HostConfig, InvokeRequest, LambdaHost};
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::io::Write;
use std::time::{Duration, Instant};

fn bootstrap_zip() -> Vec<u8> {
    let binary = std::fs::read(env!("CARGO_BIN_EXE_echo-lambda-rs")).unwrap();
    let mut w = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    let opts = zip::write::SimpleFileOptions::default().unix_permissions(0o755);
    w.start_file("bootstrap", opts).unwrap();
    w.write_all(&binary).unwrap();
    w.finish().unwrap().into_inner()
}

fn json_of(b: &[u8]) -> Value {
    serde_json::from_slice(b).unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(b)))
}

#[tokio::test]
async fn lambda_runtime_function_runs_unmodified() {
    let dir = std::env::temp_dir().join(format!("meridian-echo-rs-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let host = LambdaHost::open(HostConfig::new(&dir)).unwrap();
    let region = RegionId::new("ap-southeast-2").unwrap();
    let mut spec = FunctionSpec::new("echo-rs", "provided.al2023", "bootstrap");
    spec.timeout = 1;
    spec.environment.insert("COLOUR".into(), "teal".into());
    let created = host
        .create_function(&region, spec, &CodeSource::ZipBytes(bootstrap_zip()))
        .unwrap();
    host.publish_version(&region, "echo-rs", None).unwrap();
    host.create_alias(&region, "echo-rs", "live", "1", BTreeMap::new(), "")
        .unwrap();
    assert_eq!(created.runtime, "provided.al2023");

    // Echo: the payload comes back byte-for-byte equal as JSON.
    let event = json!({"hello": "world", "n": [1, 2, 3], "nested": {"ok": true}});
    let r = host
        .invoke(&region, InvokeRequest::new("echo-rs", event.to_string()))
        .await
        .unwrap();
    assert_eq!(r.function_error, None, "{}", String::from_utf8_lossy(&r.payload));
    assert_eq!(json_of(&r.payload), event);
    assert!(r.cold_start);

    // The runtime sees the qualified ARN it was invoked with, and the function's environment.
    let r = host
        .invoke(&region, InvokeRequest::new("echo-rs:live", r#"{"env": "COLOUR"}"#))
        .await
        .unwrap();
    assert_eq!(r.executed_version, "1");
    assert_eq!(
        json_of(&r.payload),
        json!({"value": "teal", "arn": "arn:aws:lambda:ap-southeast-2:123456789012:function:echo-rs:live"})
    );

    // A returned error is a function error, with the runtime's error type.
    let r = host
        .invoke(&region, InvokeRequest::new("echo-rs", r#"{"fail": "nope"}"#))
        .await
        .unwrap();
    assert_eq!(r.function_error.as_deref(), Some("Unhandled"));
    let e = json_of(&r.payload);
    assert_eq!(e["errorMessage"], "nope");
    assert!(e["errorType"].is_string());

    // The deadline is enforced on the process.
    let started = Instant::now();
    let r = host
        .invoke(&region, InvokeRequest::new("echo-rs", r#"{"sleep_ms": 5000}"#))
        .await
        .unwrap();
    assert!(started.elapsed() < Duration::from_secs(3));
    assert_eq!(json_of(&r.payload)["errorType"], "Sandbox.Timedout");

    // Warm invocations are fast: well under a millisecond of host overhead each, in debug builds
    // a loose bound of 20 ms on the median.
    let mut times = Vec::new();
    for _ in 0..200 {
        let r = host.invoke(&region, InvokeRequest::new("echo-rs", "{}")).await.unwrap();
        assert!(!r.cold_start || times.is_empty());
        times.push(r.duration);
    }
    times.sort();
    assert!(times[100] < Duration::from_millis(20), "median {:?}", times[100]);
    host.shutdown().unwrap();
    let _ = std::fs::remove_dir_all(&dir);
}
