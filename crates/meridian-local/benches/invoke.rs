//! Invoke benchmark: warm latency (p50, p99) and throughput at concurrency 1 and 8 for the echo
//! function built with `lambda_runtime`, called through the Invoke API over keep-alive HTTP/1.1,
//! plus cold-start overhead beyond the runtime's own start.
//!
//! ```text
//! cargo build --release -p echo-lambda-rs
//! cargo bench -p meridian-local --bench invoke
//! # the same client against another local emulator, e.g. `cargo lambda watch` on port 9000:
//! cargo bench -p meridian-local --bench invoke -- --external http://127.0.0.1:9000 --function echo-lambda-rs
//! ```

use meridian_core::RegionId;
use meridian_local::{CodeSource, ConfigUpdate, FunctionSpec, HostConfig, InvokeApiConfig, InvokeRequest, LambdaHost};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::PathBuf;
use std::time::{Duration, Instant};

/// A blocking keep-alive HTTP/1.1 client: one connection, one request at a time.
struct Client {
    reader: BufReader<TcpStream>,
    writer: TcpStream,
    path: String,
}

impl Client {
    fn connect(addr: &str, function: &str) -> Client {
        let s = TcpStream::connect(addr).unwrap_or_else(|e| panic!("failed to connect to {addr}: {e}"));
        s.set_nodelay(true).unwrap();
        Client {
            reader: BufReader::new(s.try_clone().unwrap()),
            writer: s,
            path: format!("/2015-03-31/functions/{function}/invocations"),
        }
    }

    fn invoke(&mut self, body: &[u8]) -> Vec<u8> {
        let head = format!(
            "POST {} HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
            self.path,
            body.len()
        );
        let mut req = head.into_bytes();
        req.extend_from_slice(body);
        self.writer.write_all(&req).unwrap();
        let mut status = String::new();
        self.reader.read_line(&mut status).unwrap();
        assert!(status.starts_with("HTTP/1.1 200"), "unexpected response: {status}");
        let mut len = 0usize;
        loop {
            let mut line = String::new();
            self.reader.read_line(&mut line).unwrap();
            if line == "\r\n" {
                break;
            }
            if let Some((k, v)) = line.split_once(':') {
                if k.eq_ignore_ascii_case("content-length") {
                    len = v.trim().parse().unwrap();
                }
            }
        }
        let mut out = vec![0; len];
        self.reader.read_exact(&mut out).unwrap();
        out
    }
}

struct Stats {
    p50: Duration,
    p99: Duration,
    per_second: f64,
}

fn run(addr: &str, function: &str, concurrency: usize, calls_per_client: usize) -> Stats {
    let payload = br#"{"hello":"world","n":42}"#;
    let started = Instant::now();
    let handles: Vec<_> = (0..concurrency)
        .map(|_| {
            let addr = addr.to_string();
            let function = function.to_string();
            std::thread::spawn(move || {
                let mut c = Client::connect(&addr, &function);
                let mut lat = Vec::with_capacity(calls_per_client);
                for _ in 0..calls_per_client {
                    let t = Instant::now();
                    let out = c.invoke(payload);
                    lat.push(t.elapsed());
                    assert_eq!(out, payload, "the echo function answered something else");
                }
                lat
            })
        })
        .collect();
    let mut all: Vec<Duration> = handles.into_iter().flat_map(|h| h.join().unwrap()).collect();
    let elapsed = started.elapsed();
    all.sort();
    Stats {
        p50: all[all.len() / 2],
        p99: all[all.len() * 99 / 100],
        per_second: all.len() as f64 / elapsed.as_secs_f64(),
    }
}

fn report(label: &str, s: &Stats) {
    println!(
        "{label:<28} p50 {:>8.3} ms   p99 {:>8.3} ms   {:>9.0} calls/s",
        s.p50.as_secs_f64() * 1000.0,
        s.p99.as_secs_f64() * 1000.0,
        s.per_second
    );
}

fn bench_warm(addr: &str, function: &str, calls: usize) {
    // Warm up: start environments and let the connection pools settle.
    run(addr, function, 8, 50);
    report("warm, concurrency 1", &run(addr, function, 1, calls));
    report("warm, concurrency 8", &run(addr, function, 8, calls));
}

fn arg(name: &str) -> Option<String> {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1).cloned())
}

fn echo_binary() -> PathBuf {
    if let Some(p) = std::env::var_os("MERIDIAN_BENCH_BOOTSTRAP") {
        return PathBuf::from(p);
    }
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../target"));
    let p = target.join("release/echo-lambda-rs");
    if !p.is_file() {
        eprintln!(
            "error: {} is missing; build it first: cargo build --release -p echo-lambda-rs",
            p.display()
        );
        std::process::exit(2);
    }
    p
}

/// How long the bootstrap takes, on its own, from spawn to its first `/next` request.
fn runtime_own_start(binary: &PathBuf) -> Duration {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let t = Instant::now();
    let mut child = std::process::Command::new(binary)
        .env_clear()
        .env("AWS_LAMBDA_RUNTIME_API", addr.to_string())
        .env("AWS_LAMBDA_FUNCTION_NAME", "probe")
        .env("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST")
        .env("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "128")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let (mut s, _) = listener.accept().unwrap();
    let mut buf = [0u8; 64];
    let _ = s.read(&mut buf).unwrap();
    let d = t.elapsed();
    let _ = child.kill();
    let _ = child.wait();
    d
}

fn main() {
    let calls: usize = arg("--calls").and_then(|c| c.parse().ok()).unwrap_or(5000);
    if let Some(endpoint) = arg("--external") {
        let function = arg("--function").unwrap_or_else(|| "echo-lambda-rs".into());
        let addr = endpoint.trim_start_matches("http://").trim_end_matches('/').to_string();
        println!("external endpoint {endpoint}, function {function}, {calls} calls per client");
        bench_warm(&addr, &function, calls);
        return;
    }

    let binary = echo_binary();
    let data = std::env::temp_dir().join(format!("meridian-bench-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&data);
    let mut cfg = HostConfig::new(&data);
    cfg.max_concurrency_per_function = 8;
    let host = LambdaHost::open(cfg).unwrap();
    let region = RegionId::new("us-east-1").unwrap();
    let mut zip = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    zip.start_file(
        "bootstrap",
        zip::write::SimpleFileOptions::default().unix_permissions(0o755),
    )
    .unwrap();
    zip.write_all(&std::fs::read(&binary).unwrap()).unwrap();
    let zip = zip.finish().unwrap().into_inner();
    host.create_function(
        &region,
        FunctionSpec::new("echo", "provided.al2023", "bootstrap"),
        &CodeSource::ZipBytes(zip),
    )
    .unwrap();

    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let listener = rt.block_on(tokio::net::TcpListener::bind("127.0.0.1:0")).unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    rt.spawn(meridian_local::serve_invoke_api(
        host.clone(),
        listener,
        InvokeApiConfig {
            default_region: region.clone(),
        },
    ));
    println!("meridian local Lambda host, echo function on lambda_runtime, {calls} calls per client");
    bench_warm(&addr, "echo", calls);

    // Cold starts: each configuration change makes a new revision, which no warm environment
    // serves, so the next call starts a process.
    let rounds = 20;
    let mut cold = Vec::new();
    let mut own = Vec::new();
    let mut client = Client::connect(&addr, "echo");
    for i in 0..rounds {
        let env = [("ROUND".to_string(), i.to_string())].into();
        host.update_function_configuration(
            &region,
            "echo",
            ConfigUpdate {
                environment: Some(env),
                ..Default::default()
            },
        )
        .unwrap();
        let t = Instant::now();
        client.invoke(b"{}");
        cold.push(t.elapsed());
        own.push(runtime_own_start(&binary));
    }
    let warm = run(&addr, "echo", 1, 500).p50;
    cold.sort();
    own.sort();
    let cold_p50 = cold[rounds / 2];
    let own_p50 = own[rounds / 2];
    println!(
        "cold start (p50 of {rounds})     total {:>7.2} ms   runtime's own start {:>6.2} ms   warm call {:>6.3} ms   overhead {:>6.2} ms",
        cold_p50.as_secs_f64() * 1000.0,
        own_p50.as_secs_f64() * 1000.0,
        warm.as_secs_f64() * 1000.0,
        (cold_p50.as_secs_f64() - own_p50.as_secs_f64() - warm.as_secs_f64()) * 1000.0
    );
    // A sanity check that the Rust API agrees with the HTTP path.
    let r = rt
        .block_on(host.invoke(&region, InvokeRequest::new("echo", "{\"ok\":1}")))
        .unwrap();
    assert_eq!(&r.payload[..], b"{\"ok\":1}");
    host.shutdown().unwrap();
    let _ = std::fs::remove_dir_all(&data);
}
