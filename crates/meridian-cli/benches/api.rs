//! Benchmark of local API Gateway (issue 16): requests per second through a REST API (SAM `Api`
//! event) and an HTTP API (SAM `HttpApi` event) to an echo function, against direct invokes of the
//! same function through the Lambda Invoke API of the same endpoint. One keep-alive HTTP/1.1
//! connection, requests in sequence; the median of three rounds.
//!
//! ```text
//! cargo bench -p meridian-cli --bench api            # 1,000 requests per round
//! MERIDIAN_BENCH_REQUESTS=5000 cargo bench -p meridian-cli --bench api
//! ```
//!
//! It uses the debug `meridian` binary unless MERIDIAN_BIN names another. `sam local start-api`,
//! the peer one would compare with, needs Docker, which this machine does not have: it is not
//! measured.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Instant;

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .unwrap()
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}

/// One keep-alive connection, one request at a time.
struct Client {
    reader: BufReader<TcpStream>,
    writer: TcpStream,
}

impl Client {
    fn connect(addr: &str) -> Client {
        let s = TcpStream::connect(addr).unwrap();
        s.set_nodelay(true).unwrap();
        Client {
            reader: BufReader::new(s.try_clone().unwrap()),
            writer: s,
        }
    }

    /// Sends a request and reads the whole response; returns its status and body.
    fn request(&mut self, method: &str, host: &str, path: &str, body: &[u8]) -> (u16, Vec<u8>) {
        let head = format!(
            "{method} {path} HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
            body.len()
        );
        self.writer.write_all(head.as_bytes()).unwrap();
        self.writer.write_all(body).unwrap();
        let mut status = String::new();
        self.reader.read_line(&mut status).unwrap();
        let code: u16 = status.split(' ').nth(1).and_then(|c| c.parse().ok()).unwrap_or(0);
        let (mut len, mut chunked) = (0usize, false);
        loop {
            let mut line = String::new();
            self.reader.read_line(&mut line).unwrap();
            if line == "\r\n" || line.is_empty() {
                break;
            }
            if let Some((k, v)) = line.split_once(':') {
                if k.eq_ignore_ascii_case("content-length") {
                    len = v.trim().parse().unwrap();
                }
                if k.eq_ignore_ascii_case("transfer-encoding") && v.to_ascii_lowercase().contains("chunked") {
                    chunked = true;
                }
            }
        }
        let mut out = Vec::new();
        if chunked {
            loop {
                let mut size = String::new();
                self.reader.read_line(&mut size).unwrap();
                let n = usize::from_str_radix(size.trim(), 16).unwrap();
                let mut chunk = vec![0; n + 2];
                self.reader.read_exact(&mut chunk).unwrap();
                if n == 0 {
                    break;
                }
                out.extend_from_slice(&chunk[..n]);
            }
        } else {
            out.resize(len, 0);
            self.reader.read_exact(&mut out).unwrap();
        }
        (code, out)
    }
}

const TEMPLATE: &str = r#"Transform: AWS::Serverless-2016-10-31
Resources:
  Echo:
    Type: AWS::Serverless::Function
    Properties:
      FunctionName: bench-echo
      Runtime: nodejs20.x
      Handler: index.handler
      InlineCode: |
        exports.handler = async () => ({ statusCode: 200, body: 'ok' });
      Events:
        Rest:
          Type: Api
          Properties:
            Path: /echo
            Method: get
        Http:
          Type: HttpApi
          Properties:
            Path: /echo
            Method: get
Outputs:
  RestApi:
    Value: !Ref ServerlessRestApi
  HttpApi:
    Value: !Ref ServerlessHttpApi
"#;

fn main() {
    let n: usize = std::env::var("MERIDIAN_BENCH_REQUESTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1000);
    let meridian = std::env::var("MERIDIAN_BIN").map(PathBuf::from).unwrap_or_else(|_| {
        let status = Command::new("cargo")
            .args(["build", "-q", "-p", "meridian-cli"])
            .status()
            .unwrap();
        assert!(status.success());
        repo().join("target/debug/meridian")
    });
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let mut server = Command::new(&meridian)
        .arg("--data-dir")
        .arg(&data)
        .args(["serve", "--port", "0"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut url = String::new();
    BufReader::new(server.stdout.take().unwrap())
        .read_line(&mut url)
        .unwrap();
    let addr = url.trim().trim_start_matches("http://").to_string();
    let template = tmp.path().join("template.yaml");
    std::fs::write(&template, TEMPLATE).unwrap();
    let meridian_cmd = |args: &[&str]| {
        let o = Command::new(&meridian)
            .arg("--data-dir")
            .arg(&data)
            .args(args)
            .output()
            .unwrap();
        assert!(
            o.status.success(),
            "meridian {args:?}: {}",
            String::from_utf8_lossy(&o.stderr)
        );
        String::from_utf8_lossy(&o.stdout).into_owned()
    };
    meridian_cmd(&[
        "stack",
        "deploy",
        "--region",
        "us-east-1",
        "--template",
        template.to_str().unwrap(),
        "--stack-name",
        "bench",
        "--capabilities",
        "CAPABILITY_IAM",
    ]);
    let outputs = meridian_cmd(&["stack", "outputs", "--region", "us-east-1", "--stack-name", "bench"]);
    let output = |name: &str| {
        outputs
            .lines()
            .find_map(|l| l.strip_prefix(&format!("{name}\t")))
            .map(|v| v.split('\t').next().unwrap_or(v).to_string())
            .unwrap_or_else(|| panic!("no output {name}: {outputs}"))
    };
    let (rest, http) = (output("RestApi"), output("HttpApi"));

    // (label, host, method, path, body)
    let invoke_path = "/2015-03-31/functions/bench-echo/invocations".to_string();
    let modes: Vec<(&str, String, &str, String, &[u8])> = vec![
        ("Invoke API (direct)", "localhost".into(), "POST", invoke_path, b"{}"),
        (
            "REST API (Api event)",
            format!("{rest}.execute-api.localhost"),
            "GET",
            "/Prod/echo".into(),
            b"",
        ),
        (
            "HTTP API (HttpApi event)",
            format!("{http}.execute-api.localhost"),
            "GET",
            "/echo".into(),
            b"",
        ),
    ];
    println!("{n} requests per round, one keep-alive connection, median of 3 rounds (debug build unless MERIDIAN_BIN)");
    let mut rates = Vec::new();
    for (label, host, method, path, body) in &modes {
        let mut client = Client::connect(&addr);
        for _ in 0..50 {
            let (code, _) = client.request(method, host, path, body);
            assert_eq!(code, 200, "{label}: warm-up answered {code}");
        }
        let mut rounds = Vec::new();
        for _ in 0..3 {
            let start = Instant::now();
            for _ in 0..n {
                let (code, _) = client.request(method, host, path, body);
                assert_eq!(code, 200, "{label}");
            }
            rounds.push(n as f64 / start.elapsed().as_secs_f64());
        }
        let rate = median(rounds);
        rates.push(rate);
        println!("{label:<26} {rate:>8.0} requests/s");
    }
    println!(
        "through the REST API: {:.2} of direct invokes; through the HTTP API: {:.2}",
        rates[1] / rates[0],
        rates[2] / rates[0]
    );
    let _ = server.kill();
    let _ = server.wait();
}
