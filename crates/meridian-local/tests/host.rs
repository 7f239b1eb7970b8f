//! End-to-end tests of the Lambda host: real processes (the local python3 and node) behind the
//! real Runtime API, through the Rust API and through the Invoke API over HTTP.

use meridian_core::RegionId;
use meridian_local::{CodeSource, FunctionSpec, HostConfig, InvokeApiConfig, InvokeRequest, LambdaError, LambdaHost};
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

fn fixtures(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures").join(name)
}

const PREFIX: &str = "meridian-local-tests-";

/// This run's directory for test data. Directories left by earlier runs (whose process is gone)
/// are removed the first time, so repeated runs do not fill the temp directory.
fn test_root() -> &'static Path {
    static ROOT: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    ROOT.get_or_init(|| {
        let base = std::env::temp_dir();
        #[cfg(target_os = "linux")]
        if let Ok(entries) = std::fs::read_dir(&base) {
            for e in entries.flatten() {
                let name = e.file_name().to_string_lossy().into_owned();
                if let Some(pid) = name.strip_prefix(PREFIX) {
                    if !Path::new("/proc").join(pid).exists() {
                        let _ = std::fs::remove_dir_all(e.path());
                    }
                }
            }
        }
        let root = base.join(format!("{PREFIX}{}", std::process::id()));
        std::fs::create_dir_all(&root).unwrap();
        root
    })
}

fn temp_dir(tag: &str) -> PathBuf {
    static N: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    let d = test_root().join(format!(
        "{tag}-{}",
        N.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
    ));
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn us() -> RegionId {
    RegionId::new("us-east-1").unwrap()
}

fn host(tag: &str) -> LambdaHost {
    let mut cfg = HostConfig::new(temp_dir(tag));
    cfg.async_retry_delays = vec![Duration::from_millis(50), Duration::from_millis(50)];
    LambdaHost::open(cfg).unwrap()
}

fn python_fn(host: &LambdaHost, name: &str, handler: &str, timeout: u32) {
    let mut spec = FunctionSpec::new(name, "python3.11", handler);
    spec.timeout = timeout;
    spec.environment.insert("GREETING".into(), "hi".into());
    host.create_function(&us(), spec, &CodeSource::Directory(fixtures("python")))
        .unwrap();
}

fn json_of(b: &[u8]) -> Value {
    serde_json::from_slice(b).unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(b)))
}

#[tokio::test]
async fn python_function_gets_the_standard_environment_and_stays_warm() {
    let host = host("env");
    python_fn(&host, "echo", "handler.echo", 3);
    let r = host
        .invoke(&us(), InvokeRequest::new("echo", r#"{"a": [1, 2]}"#))
        .await
        .unwrap();
    assert_eq!(r.function_error, None, "{}", String::from_utf8_lossy(&r.payload));
    assert!(r.cold_start);
    assert_eq!(r.executed_version, "$LATEST");
    let v = json_of(&r.payload);
    assert_eq!(v["event"], json!({"a": [1, 2]}));
    let env = &v["env"];
    assert_eq!(env["AWS_LAMBDA_FUNCTION_NAME"], "echo");
    assert_eq!(env["AWS_LAMBDA_FUNCTION_VERSION"], "$LATEST");
    assert_eq!(env["AWS_LAMBDA_FUNCTION_MEMORY_SIZE"], "128");
    assert_eq!(env["AWS_REGION"], "us-east-1");
    assert_eq!(env["_HANDLER"], "handler.echo");
    assert_eq!(env["TZ"], ":UTC");
    assert_eq!(env["GREETING"], "hi");
    assert!(env["AWS_LAMBDA_RUNTIME_API"]
        .as_str()
        .unwrap()
        .starts_with("127.0.0.1:"));
    assert!(Path::new(env["LAMBDA_TASK_ROOT"].as_str().unwrap())
        .join("handler.py")
        .is_file());
    assert_eq!(v["arn"], "arn:aws:lambda:us-east-1:123456789012:function:echo");
    assert_eq!(v["request_id"], r.request_id.as_str());
    let remaining = v["remaining_ms"].as_i64().unwrap();
    assert!(
        remaining > 2000 && remaining <= 3000,
        "deadline is the timeout away: {remaining}"
    );

    let again = host.invoke(&us(), InvokeRequest::new("echo", "{}")).await.unwrap();
    assert!(!again.cold_start);
    assert_eq!(json_of(&again.payload)["pid"], v["pid"], "a warm environment is reused");
    assert_eq!(host.warm_environments(&us(), "echo"), 1);
}

#[tokio::test]
async fn registry_is_shared_through_the_data_directory() {
    let dir = temp_dir("registry");
    let a = LambdaHost::open(HostConfig::new(&dir)).unwrap();
    let mut spec = FunctionSpec::new("tagged", "python3.11", "handler.tag");
    spec.environment.insert("TAG".into(), "one".into());
    let created = a
        .create_function(&us(), spec, &CodeSource::Directory(fixtures("python")))
        .unwrap();
    let v1 = a.publish_version(&us(), "tagged", Some("first")).unwrap();
    assert_eq!(v1.version, "1");
    assert_eq!(v1.code_sha256, created.code_sha256);
    // Publishing again without a change returns the same version, as AWS does.
    assert_eq!(a.publish_version(&us(), "tagged", None).unwrap().version, "1");
    let env: BTreeMap<String, String> = [("TAG".to_string(), "two".to_string())].into();
    a.update_function_configuration(
        &us(),
        "tagged",
        meridian_local::ConfigUpdate {
            environment: Some(env),
            ..Default::default()
        },
    )
    .unwrap();
    let v2 = a.publish_version(&us(), "tagged", None).unwrap();
    assert_eq!(v2.version, "2");
    a.create_alias(&us(), "tagged", "live", "1", BTreeMap::new(), "")
        .unwrap();
    // `a` reads (and caches) the alias before `b` changes it below.
    let first = a.invoke(&us(), InvokeRequest::new("tagged:live", "")).await.unwrap();
    assert_eq!(first.executed_version, "1");

    // A second host on the same directory (as another `meridian` process would be) sees it all.
    let b = LambdaHost::open(HostConfig::new(&dir)).unwrap();
    let versions: Vec<String> = b
        .list_versions(&us(), "tagged")
        .unwrap()
        .into_iter()
        .map(|v| v.version)
        .collect();
    assert_eq!(versions, ["$LATEST", "1", "2"]);
    assert_eq!(b.get_alias(&us(), "tagged", "live").unwrap().function_version, "1");
    let live = b.invoke(&us(), InvokeRequest::new("tagged:live", "")).await.unwrap();
    assert_eq!(
        (json_of(&live.payload), live.executed_version.as_str()),
        (json!("one"), "1")
    );
    b.update_alias(&us(), "tagged", "live", Some("2"), None, None).unwrap();
    let live = a.invoke(&us(), InvokeRequest::new("tagged:live", "")).await.unwrap();
    assert_eq!(
        (json_of(&live.payload), live.executed_version.as_str()),
        (json!("two"), "2")
    );
    // Regions are separate.
    assert!(b
        .list_functions(&RegionId::new("eu-west-1").unwrap())
        .unwrap()
        .is_empty());
    assert!(matches!(
        a.create_function(
            &us(),
            FunctionSpec::new("tagged", "python3.11", "h.h"),
            &CodeSource::Directory(fixtures("python"))
        ),
        Err(LambdaError::ResourceConflict(_))
    ));
    b.delete_function(&us(), "tagged").unwrap();
    assert!(matches!(
        a.get_function(&us(), "tagged", None),
        Err(LambdaError::FunctionNotFound { .. })
    ));
}

#[tokio::test]
async fn failures_are_reported_as_lambda_reports_them() {
    let host = host("failures");
    python_fn(&host, "fail", "handler.fail", 3);
    python_fn(&host, "crash", "handler.crash", 3);
    python_fn(&host, "sleepy", "handler.sleep", 1);
    python_fn(&host, "noinit", "missing_module.handler", 3);
    python_fn(&host, "big", "handler.big", 3);

    let r = host
        .invoke(&us(), InvokeRequest::new("fail", r#"{"why": 42}"#))
        .await
        .unwrap();
    assert_eq!(r.function_error.as_deref(), Some("Unhandled"));
    let e = json_of(&r.payload);
    assert_eq!(
        (e["errorType"].as_str(), e["errorMessage"].as_str()),
        (Some("ValueError"), Some("boom: 42"))
    );

    let r = host.invoke(&us(), InvokeRequest::new("crash", "{}")).await.unwrap();
    assert_eq!(r.function_error.as_deref(), Some("Unhandled"));
    let e = json_of(&r.payload);
    assert_eq!(e["errorType"], "Runtime.ExitError");
    assert!(e["errorMessage"].as_str().unwrap().contains("exit status 3"), "{e}");

    let started = Instant::now();
    let mut req = InvokeRequest::new("sleepy", r#"{"seconds": 30}"#);
    req.tail_logs = true;
    let r = host.invoke(&us(), req).await.unwrap();
    assert!(started.elapsed() < Duration::from_secs(5), "killed at the deadline");
    let e = json_of(&r.payload);
    assert_eq!(e["errorType"], "Sandbox.Timedout");
    assert!(
        e["errorMessage"]
            .as_str()
            .unwrap()
            .ends_with("Task timed out after 1.00 seconds"),
        "{e}"
    );
    assert!(r.log_text().unwrap().contains("Task timed out after 1.00 seconds"));
    // The timed-out environment is gone; the next call starts a new one and works.
    let r = host
        .invoke(&us(), InvokeRequest::new("sleepy", r#"{"seconds": 0}"#))
        .await
        .unwrap();
    assert!(r.cold_start && r.function_error.is_none());

    let mut req = InvokeRequest::new("noinit", "{}");
    req.tail_logs = true;
    let r = host.invoke(&us(), req).await.unwrap();
    let log = r.log_text().unwrap();
    assert!(
        log.contains("Unable to import module 'missing_module'"),
        "init output is in the log: {log}"
    );
    assert_eq!(r.function_error.as_deref(), Some("Unhandled"));
    let e = json_of(&r.payload);
    assert_eq!(e["errorType"], "Runtime.ImportModuleError");
    assert!(e["errorMessage"].as_str().unwrap().contains("missing_module"));

    let r = host.invoke(&us(), InvokeRequest::new("big", "{}")).await.unwrap();
    assert_eq!(json_of(&r.payload)["errorType"], "Function.ResponseSizeTooLarge");

    let huge = format!("\"{}\"", "y".repeat(6 * 1024 * 1024));
    let err = host.invoke(&us(), InvokeRequest::new("fail", huge)).await.unwrap_err();
    assert_eq!((err.error_type(), err.http_status()), ("RequestTooLargeException", 413));
    let err = host
        .invoke(&us(), InvokeRequest::new("fail", "{not json"))
        .await
        .unwrap_err();
    assert_eq!(
        (err.error_type(), err.http_status()),
        ("InvalidRequestContentException", 400)
    );
    let err = host.invoke(&us(), InvokeRequest::new("nope", "{}")).await.unwrap_err();
    assert_eq!(
        (err.error_type(), err.http_status()),
        ("ResourceNotFoundException", 404)
    );
    let err = host
        .invoke(&us(), InvokeRequest::new("fail:nope", "{}"))
        .await
        .unwrap_err();
    assert_eq!(err.http_status(), 404);
}

#[tokio::test]
async fn logs_are_captured_per_invocation() {
    let host = host("logs");
    python_fn(&host, "logger", "handler.log", 3);
    for _ in 0..20 {
        let mut req = InvokeRequest::new("logger", "{}");
        req.tail_logs = true;
        let r = host.invoke(&us(), req).await.unwrap();
        let log = r.log_text().unwrap();
        assert!(
            log.starts_with(&format!("START RequestId: {} Version: $LATEST\n", r.request_id)),
            "{log}"
        );
        assert_eq!(log.matches("hello from the function").count(), 1, "{log}");
        assert!(log.contains(&format!("END RequestId: {}", r.request_id)));
        assert!(log.contains("REPORT RequestId:") && log.contains("Memory Size: 128 MB"));
    }
    host.flush_logs();
    let file = host.config().data_dir.join("regions/us-east-1/lambda/logs/logger.log");
    let text = std::fs::read_to_string(file).unwrap();
    assert_eq!(text.matches("hello from the function").count(), 20);
}

#[tokio::test]
async fn scales_out_to_the_concurrency_limit_then_throttles() {
    let host = host("concurrency");
    python_fn(&host, "slow", "handler.sleep", 5);
    host.put_function_concurrency(&us(), "slow", Some(2)).unwrap();
    let call = |h: LambdaHost| async move { h.invoke(&us(), InvokeRequest::new("slow", r#"{"seconds": 0.8}"#)).await };
    let (a, b, c) = tokio::join!(call(host.clone()), call(host.clone()), async {
        tokio::time::sleep(Duration::from_millis(300)).await;
        host.invoke(&us(), InvokeRequest::new("slow", r#"{"seconds": 0}"#))
            .await
    });
    let (a, b) = (a.unwrap(), b.unwrap());
    assert_ne!(
        json_of(&a.payload)["pid"],
        json_of(&b.payload)["pid"],
        "two environments ran side by side"
    );
    let err = c.unwrap_err();
    assert_eq!((err.error_type(), err.http_status()), ("TooManyRequestsException", 429));
    assert_eq!(host.warm_environments(&us(), "slow"), 2);
    // Reserved concurrency 0 throttles everything, as on AWS.
    host.put_function_concurrency(&us(), "slow", Some(0)).unwrap();
    assert!(matches!(
        host.invoke(&us(), InvokeRequest::new("slow", "{}")).await,
        Err(LambdaError::TooManyRequests { .. })
    ));
    let now = meridian_core::SystemClock.now_millis_for_test();
    let m = host.metrics(&us(), "slow", None, now - 120_000, now + 60_000).unwrap();
    let total = |f: fn(&meridian_local::MinuteBucket) -> u64| m.iter().map(f).sum::<u64>();
    assert_eq!(total(|b| b.invocations), 2);
    assert_eq!(total(|b| b.throttles), 2);
    assert_eq!(m.iter().map(|b| b.concurrent_executions).max(), Some(2));
}

trait NowForTest {
    fn now_millis_for_test(&self) -> i64;
}
impl NowForTest for meridian_core::SystemClock {
    fn now_millis_for_test(&self) -> i64 {
        use meridian_core::Clock;
        self.now_millis()
    }
}

#[tokio::test]
async fn idle_environments_are_reaped() {
    let mut cfg = HostConfig::new(temp_dir("reap"));
    cfg.idle_timeout = Duration::from_millis(200);
    let host = LambdaHost::open(cfg).unwrap();
    python_fn(&host, "echo", "handler.echo", 3);
    host.invoke(&us(), InvokeRequest::new("echo", "{}")).await.unwrap();
    assert_eq!(host.reap_idle(), 0);
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(host.reap_idle(), 1);
    assert_eq!(host.warm_environments(&us(), "echo"), 0);
    assert!(
        host.invoke(&us(), InvokeRequest::new("echo", "{}"))
            .await
            .unwrap()
            .cold_start
    );
}

#[tokio::test]
async fn weighted_alias_sends_the_weighted_share_and_reports_the_version() {
    let host = host("weights");
    let mut spec = FunctionSpec::new("canary", "python3.11", "handler.tag");
    spec.environment.insert("TAG".into(), "blue".into());
    host.create_function(&us(), spec, &CodeSource::Directory(fixtures("python")))
        .unwrap();
    host.publish_version(&us(), "canary", None).unwrap();
    let env: BTreeMap<String, String> = [("TAG".to_string(), "green".to_string())].into();
    host.update_function_configuration(
        &us(),
        "canary",
        meridian_local::ConfigUpdate {
            environment: Some(env),
            ..Default::default()
        },
    )
    .unwrap();
    host.publish_version(&us(), "canary", None).unwrap();
    let weights: BTreeMap<String, f64> = [("2".to_string(), 0.1)].into();
    host.create_alias(&us(), "canary", "live", "1", weights, "").unwrap();

    let n = 10_000;
    let mut green = 0;
    for _ in 0..n {
        let r = host
            .invoke(&us(), InvokeRequest::new("canary:live", "{}"))
            .await
            .unwrap();
        let tag = json_of(&r.payload);
        match r.executed_version.as_str() {
            "2" => {
                assert_eq!(tag, "green");
                green += 1;
            }
            "1" => assert_eq!(tag, "blue"),
            other => panic!("executed unexpected version {other}"),
        }
    }
    let share = green as f64 / n as f64;
    assert!(
        (share - 0.10).abs() <= 0.01,
        "version 2 got {:.2}% of calls",
        share * 100.0
    );

    let now = meridian_core::SystemClock.now_millis_for_test();
    let per = |q: &str| -> u64 {
        host.metrics(&us(), "canary", Some(q), now - 600_000, now + 60_000)
            .unwrap()
            .iter()
            .map(|b| b.invocations)
            .sum()
    };
    assert_eq!((per("1"), per("2"), per("live")), (n - green, green, n));
    let buckets = host
        .metrics(&us(), "canary", Some("2"), now - 600_000, now + 60_000)
        .unwrap();
    assert!(buckets
        .iter()
        .all(|b| b.duration_p50_ms.unwrap() <= b.duration_p99_ms.unwrap()));

    // Weights outside 0..=1, or on $LATEST, are refused.
    let bad: BTreeMap<String, f64> = [("2".to_string(), 1.5)].into();
    assert!(host
        .update_alias(&us(), "canary", "live", None, Some(bad), None)
        .is_err());
    let latest: BTreeMap<String, f64> = [("$LATEST".to_string(), 0.5)].into();
    assert!(host
        .update_alias(&us(), "canary", "live", None, Some(latest), None)
        .is_err());
}

#[tokio::test]
async fn event_invocations_are_retried_twice() {
    let host = host("event");
    let record = temp_dir("event-record").join("calls.txt");
    let mut spec = FunctionSpec::new("flaky", "python3.11", "handler.record");
    spec.environment
        .insert("RECORD_FILE".into(), record.display().to_string());
    host.create_function(&us(), spec, &CodeSource::Directory(fixtures("python")))
        .unwrap();
    host.invoke_event(&us(), InvokeRequest::new("flaky", "{}")).unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let calls = std::fs::read_to_string(&record).unwrap_or_default().lines().count();
        if calls >= 3 || Instant::now() > deadline {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(
        std::fs::read_to_string(&record).unwrap().lines().count(),
        3,
        "one call and two retries"
    );
    assert!(host.invoke_event(&us(), InvokeRequest::new("missing", "{}")).is_err());
}

#[tokio::test]
async fn node_functions_run_with_our_bootstrap() {
    let host = host("node");
    host.create_function(
        &us(),
        FunctionSpec::new("nodefn", "nodejs20.x", "index.handler"),
        &CodeSource::Directory(fixtures("node")),
    )
    .unwrap();
    let mut req = InvokeRequest::new("nodefn", r#"{"x": 1}"#);
    req.tail_logs = true;
    let r = host.invoke(&us(), req).await.unwrap();
    assert_eq!(r.function_error, None, "{}", String::from_utf8_lossy(&r.payload));
    let v = json_of(&r.payload);
    assert_eq!(v["echo"], json!({"x": 1}));
    assert_eq!(
        (v["region"].as_str(), v["version"].as_str()),
        (Some("us-east-1"), Some("$LATEST"))
    );
    assert!(r.log_text().unwrap().contains("node handling {\"x\":1}"));
    let r = host
        .invoke(&us(), InvokeRequest::new("nodefn", r#"{"fail": "no"}"#))
        .await
        .unwrap();
    assert_eq!(r.function_error.as_deref(), Some("Unhandled"));
    assert_eq!(json_of(&r.payload)["errorType"], "TypeError");

    // ES module handlers (`.mjs`) load too; a missing module is an init error.
    for (name, handler) in [("esm", "esm.handler"), ("nomodule", "missing.handler")] {
        host.create_function(
            &us(),
            FunctionSpec::new(name, "nodejs22.x", handler),
            &CodeSource::Directory(fixtures("node")),
        )
        .unwrap();
    }
    let r = host
        .invoke(&us(), InvokeRequest::new("esm", r#"{"m": 2}"#))
        .await
        .unwrap();
    assert_eq!(json_of(&r.payload), json!({"esm": true, "echo": {"m": 2}}));
    let r = host.invoke(&us(), InvokeRequest::new("nomodule", "{}")).await.unwrap();
    assert_eq!(json_of(&r.payload)["errorType"], "Runtime.ImportModuleError");
}

/// A minimal HTTP/1.1 exchange over a fresh connection: (status, headers, body).
fn http(
    port: u16,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> (u16, BTreeMap<String, String>, String) {
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    let mut req = format!(
        "{method} {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\nContent-Length: {}\r\n",
        body.len()
    );
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    req.push_str("\r\n");
    req.push_str(body);
    s.write_all(req.as_bytes()).unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap();
    let (head, body) = out.split_once("\r\n\r\n").unwrap();
    let mut lines = head.lines();
    let status = lines.next().unwrap().split(' ').nth(1).unwrap().parse().unwrap();
    let headers = lines
        .filter_map(|l| l.split_once(": "))
        .map(|(k, v)| (k.to_ascii_lowercase(), v.to_string()))
        .collect();
    (status, headers, body.to_string())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invoke_api_speaks_the_lambda_wire_protocol() {
    let host = host("http");
    python_fn(&host, "echo", "handler.echo", 3);
    let eu = RegionId::new("eu-west-1").unwrap();
    host.create_function(
        &eu,
        FunctionSpec::new("echo", "python3.11", "handler.echo"),
        &CodeSource::Directory(fixtures("python")),
    )
    .unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(meridian_local::serve_invoke_api(
        host.clone(),
        listener,
        InvokeApiConfig { default_region: us() },
    ));

    let signed_eu =
        "AWS4-HMAC-SHA256 Credential=AKID/20250101/eu-west-1/lambda/aws4_request, SignedHeaders=host, Signature=00";
    let (status, h, body) = tokio::task::spawn_blocking(move || {
        http(
            port,
            "POST",
            "/2015-03-31/functions/echo/invocations",
            &[("Authorization", signed_eu), ("X-Amz-Log-Type", "Tail")],
            r#"{"k":"v"}"#,
        )
    })
    .await
    .unwrap();
    assert_eq!(status, 200, "{body}");
    assert_eq!(h["x-amz-executed-version"], "$LATEST");
    assert!(h.contains_key("x-amz-log-result"));
    assert_eq!(json_of(body.as_bytes())["env"]["AWS_REGION"], "eu-west-1");

    let arn = "arn%3Aaws%3Alambda%3Aus-east-1%3A123456789012%3Afunction%3Aecho";
    let (status, _, body) = tokio::task::spawn_blocking(move || {
        http(
            port,
            "POST",
            &format!("/2015-03-31/functions/{arn}/invocations?Qualifier=%24LATEST"),
            &[],
            "{}",
        )
    })
    .await
    .unwrap();
    assert_eq!(status, 200);
    assert_eq!(json_of(body.as_bytes())["env"]["AWS_REGION"], "us-east-1");

    type Case = (
        &'static str,
        &'static str,
        Vec<(&'static str, &'static str)>,
        &'static str,
        u16,
        Option<&'static str>,
    );
    let cases: Vec<Case> = vec![
        (
            "POST",
            "/2015-03-31/functions/missing/invocations",
            vec![],
            "{}",
            404,
            Some("ResourceNotFoundException"),
        ),
        (
            "POST",
            "/2015-03-31/functions/echo/invocations",
            vec![],
            "{bad",
            400,
            Some("InvalidRequestContentException"),
        ),
        (
            "POST",
            "/2015-03-31/functions/echo/invocations",
            vec![("X-Amz-Invocation-Type", "DryRun")],
            "{}",
            204,
            None,
        ),
        (
            "POST",
            "/2015-03-31/functions/echo/invocations",
            vec![("X-Amz-Invocation-Type", "Event")],
            "{}",
            202,
            None,
        ),
        (
            "GET",
            "/2015-03-31/functions/echo/aliases/nope",
            vec![],
            "",
            404,
            Some("ResourceNotFoundException"),
        ),
        (
            "DELETE",
            "/2015-03-31/functions/echo/policy",
            vec![],
            "",
            404,
            Some("UnknownOperationException"),
        ),
    ];
    for (method, path, headers, body, want, error_type) in cases {
        let (status, h, text) = tokio::task::spawn_blocking(move || http(port, method, path, &headers, body))
            .await
            .unwrap();
        assert_eq!(status, want, "{method} {path}: {text}");
        assert_eq!(
            h.get("x-amzn-errortype").map(String::as_str),
            error_type,
            "{method} {path}"
        );
        if error_type.is_some() {
            assert!(json_of(text.as_bytes())["Message"].is_string());
        }
    }

    let (status, _, body) = tokio::task::spawn_blocking(move || {
        http(
            port,
            "GET",
            "/2015-03-31/functions/",
            &[("Authorization", signed_eu)],
            "",
        )
    })
    .await
    .unwrap();
    assert_eq!(status, 200);
    let list = json_of(body.as_bytes());
    assert_eq!(
        list["Functions"][0]["FunctionArn"],
        "arn:aws:lambda:eu-west-1:123456789012:function:echo"
    );
}

#[tokio::test]
async fn init_that_takes_too_long_fails_the_invocation() {
    let mut cfg = HostConfig::new(temp_dir("init-timeout"));
    cfg.init_timeout = Duration::from_millis(700);
    let host = LambdaHost::open(cfg).unwrap();
    python_fn(&host, "slowinit", "slow_init.handler", 3);
    let started = Instant::now();
    let r = host.invoke(&us(), InvokeRequest::new("slowinit", "{}")).await.unwrap();
    assert!(started.elapsed() < Duration::from_secs(5));
    assert_eq!(r.function_error.as_deref(), Some("Unhandled"));
    let e = json_of(&r.payload);
    assert_eq!(e["errorType"], "Sandbox.Timedout");
    assert!(
        e["errorMessage"]
            .as_str()
            .unwrap()
            .contains("Init timed out after 0.70 seconds"),
        "{e}"
    );
    assert_eq!(host.warm_environments(&us(), "slowinit"), 0);
}

#[tokio::test]
async fn metrics_follow_the_injected_clock_and_client_context_reaches_the_function() {
    let clock = meridian_core::ManualClock::new(1_700_000_000_000);
    let mut cfg = HostConfig::new(temp_dir("clock"));
    cfg.clock = std::sync::Arc::new(clock.clone());
    let host = LambdaHost::open(cfg).unwrap();
    python_fn(&host, "echo", "handler.echo", 3);
    let mut req = InvokeRequest::new("echo", "{}");
    // {"custom": {"tenant": "t1"}}, base64, as X-Amz-Client-Context carries it.
    req.client_context = Some("eyJjdXN0b20iOiB7InRlbmFudCI6ICJ0MSJ9fQ==".into());
    let r = host.invoke(&us(), req).await.unwrap();
    assert_eq!(json_of(&r.payload)["client_context"]["custom"]["tenant"], "t1");
    clock.advance(Duration::from_secs(60));
    for _ in 0..2 {
        host.invoke(&us(), InvokeRequest::new("echo", "{}")).await.unwrap();
    }
    let start = 1_700_000_000_000 - 1_700_000_000_000 % 60_000;
    let buckets = host
        .metrics(&us(), "echo", Some("$LATEST"), start, start + 120_000)
        .unwrap();
    let counts: Vec<(i64, u64)> = buckets.iter().map(|b| (b.minute, b.invocations)).collect();
    assert_eq!(counts, [(start, 1), (start + 60_000, 2)]);
    assert!(host
        .metrics(&us(), "echo", Some("$LATEST"), start + 120_000, start + 180_000)
        .unwrap()
        .is_empty());
}

/// True while `pid` is a live (not zombie) process.
fn alive(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => stat
            .rsplit_once(") ")
            .map(|(_, rest)| !rest.starts_with('Z'))
            .unwrap_or(false),
        Err(_) => false,
    }
}

#[cfg(target_os = "linux")]
#[tokio::test]
async fn a_timed_out_sandbox_ends_with_everything_the_function_started() {
    let host = host("orphans");
    let record = temp_dir("orphans-record").join("pid");
    let mut spec = FunctionSpec::new("spawner", "python3.11", "handler.orphan");
    spec.timeout = 1;
    spec.environment
        .insert("RECORD_FILE".into(), record.display().to_string());
    host.create_function(&us(), spec, &CodeSource::Directory(fixtures("python")))
        .unwrap();
    let r = host
        .invoke(&us(), InvokeRequest::new("spawner", r#"{"seconds": 10}"#))
        .await
        .unwrap();
    assert_eq!(json_of(&r.payload)["errorType"], "Sandbox.Timedout");
    let pid: u32 = std::fs::read_to_string(&record).unwrap().trim().parse().unwrap();
    let deadline = Instant::now() + Duration::from_secs(3);
    while alive(pid) && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(!alive(pid), "the function's child process {pid} outlived its sandbox");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_silent_client_is_dropped_after_the_header_timeout() {
    let mut cfg = HostConfig::new(temp_dir("silent"));
    cfg.http_header_timeout = Duration::from_millis(300);
    let host = LambdaHost::open(cfg).unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(meridian_local::serve_invoke_api(
        host.clone(),
        listener,
        InvokeApiConfig { default_region: us() },
    ));
    let (closed, took) = tokio::task::spawn_blocking(move || {
        let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        let t0 = std::time::Instant::now();
        let mut buf = [0u8; 256];
        // sends nothing: the server closes the connection (EOF, or a reset)
        let closed = !matches!(s.read(&mut buf), Err(ref e) if e.kind() == std::io::ErrorKind::WouldBlock || e.kind() == std::io::ErrorKind::TimedOut);
        (closed, t0.elapsed())
    })
    .await
    .unwrap();
    assert!(closed, "the silent connection was still open after 5 s");
    assert!(took < Duration::from_secs(3), "{took:?}");
    // a client that does send a request is served as before
    let (status, _, _) = tokio::task::spawn_blocking(move || http(port, "GET", "/2015-03-31/functions/", &[], ""))
        .await
        .unwrap();
    assert_eq!(status, 200);
}

#[tokio::test]
async fn a_client_context_over_lambdas_limit_is_refused_at_once() {
    let host = host("client-context");
    python_fn(&host, "echo", "handler.echo", 30);
    let mut req = InvokeRequest::new("echo", "{}");
    req.client_context = Some("A".repeat(64 * 1024));
    let t0 = std::time::Instant::now();
    let err = host.invoke(&us(), req).await.unwrap_err();
    assert!(t0.elapsed() < Duration::from_secs(2));
    assert_eq!(err.error_type(), "InvalidParameterValueException");
    assert_eq!(
        err.to_string(),
        "Client context must be at most 3583 bytes of base64-encoded data; this one is 65536 bytes"
    );
    // 3,583 bytes are accepted
    let mut req = InvokeRequest::new("echo", "{}");
    req.client_context = Some("A".repeat(3583));
    assert!(host.invoke(&us(), req).await.is_ok());
}
