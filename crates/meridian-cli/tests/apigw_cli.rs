//! HTTP APIs (API Gateway V2) in local regions, end to end with real clients: a SAM template
//! with `HttpApi` events and a plain CloudFormation API deployed by `meridian stack deploy`
//! (without `--allow-unsupported`), served by a real `meridian serve`, called with curl, with
//! Node.js functions behind them.

use serde_json::Value;
use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

struct Server {
    child: Child,
    url: String,
    root: PathBuf,
    data: PathBuf,
    _tmp: tempfile::TempDir,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn serve() -> Server {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let mut child = Command::new(env!("CARGO_BIN_EXE_meridian"))
        .arg("--data-dir")
        .arg(&data)
        .args(["serve", "--port", "0"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    assert!(line.starts_with("http://"), "serve printed {line:?}");
    Server {
        child,
        url: line.trim().to_string(),
        root: tmp.path().to_path_buf(),
        data,
        _tmp: tmp,
    }
}

fn cmd(s: &Server, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_meridian"))
        .arg("--data-dir")
        .arg(&s.data)
        .args(args)
        .current_dir(&s.root)
        .output()
        .unwrap()
}

fn deploy(s: &Server, template: &str, stack: &str) -> Output {
    let p = s.root.join(format!("{stack}.yaml"));
    std::fs::write(&p, template).unwrap();
    cmd(
        s,
        &[
            "stack",
            "deploy",
            "--region",
            "us-east-1",
            "--template",
            p.to_str().unwrap(),
            "--stack-name",
            stack,
            "--capabilities",
            "CAPABILITY_IAM",
        ],
    )
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// One response: status, headers (lowercased names, in order), body.
struct Resp {
    status: u16,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Resp {
    fn header(&self, name: &str) -> Vec<&str> {
        self.headers
            .iter()
            .filter(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
            .collect()
    }
    fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|e| panic!("{e}: {}", text(&self.body)))
    }
}

fn curl(args: &[&str]) -> Resp {
    let o = Command::new("curl")
        .args(["-sS", "-i", "--max-time", "20"])
        .args(args)
        .output()
        .expect("curl");
    assert!(o.status.success(), "curl {args:?}: {}", text(&o.stderr));
    // Interim `100 Continue` heads (curl sends `Expect` with large bodies) come first.
    let mut out = &o.stdout[..];
    while out.starts_with(b"HTTP/1.1 100") {
        let end = out.windows(4).position(|w| w == b"\r\n\r\n").expect("a response head");
        out = &out[end + 4..];
    }
    let split = out.windows(4).position(|w| w == b"\r\n\r\n").expect("a response head");
    let head = text(&out[..split]);
    let mut lines = head.lines();
    let status = lines.next().unwrap().split(' ').nth(1).unwrap().parse().unwrap();
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    Resp {
        status,
        headers,
        body: out[split + 4..].to_vec(),
    }
}

const FUNCTION: &str = r#"
exports.handler = async (event) => {
  const path = event.rawPath || event.path;
  if (path.endsWith('/plain')) return 'hello from lambda';
  if (path.endsWith('/object')) return { message: 'no status code' };
  if (path.endsWith('/bad')) return { statusCode: 'not a number' };
  if (path.endsWith('/throw')) throw new Error('boom');
  if (path.endsWith('/slow')) { await new Promise((r) => setTimeout(r, 4000)); return 'late'; }
  if (path.endsWith('/cookies')) {
    return { statusCode: 201, headers: { 'x-one': '1' }, cookies: ['a=1; Path=/', 'b=2'], body: 'ok' };
  }
  if (path.endsWith('/mv')) {
    return { statusCode: 200, headers: { 'x-single': 's' }, multiValueHeaders: { 'x-multi': ['m1', 'm2'] }, body: 'mv' };
  }
  if (path.endsWith('/bin')) {
    const bytes = event.isBase64Encoded ? Buffer.from(event.body, 'base64') : Buffer.from(event.body || '');
    const reversed = Buffer.from(bytes).reverse();
    return { statusCode: 200, headers: { 'content-type': 'application/octet-stream' }, isBase64Encoded: true, body: reversed.toString('base64') };
  }
  return { statusCode: 200, headers: { 'content-type': 'application/json' },
           body: JSON.stringify({ event, version: process.env.AWS_LAMBDA_FUNCTION_VERSION }) };
};
"#;

const SAM: &str = "AWSTemplateFormatVersion: '2010-09-09'
Transform: AWS::Serverless-2016-10-31
Resources:
  Fn:
    Type: AWS::Serverless::Function
    Properties:
      CodeUri: src/
      Handler: index.handler
      Runtime: nodejs20.x
      Timeout: 10
      AutoPublishAlias: live
      Events:
        Item:
          Type: HttpApi
          Properties:
            Path: /items/{id}
            Method: get
        V1:
          Type: HttpApi
          Properties:
            Path: /v1/{proxy+}
            Method: ANY
            PayloadFormatVersion: '1.0'
        Slow:
          Type: HttpApi
          Properties:
            Path: /slow
            Method: get
            TimeoutInMillis: 1000
        Rest:
          Type: HttpApi
          Properties:
            Path: /{proxy+}
            Method: ANY
Outputs:
  ApiUrl:
    Value: !Sub https://${ServerlessHttpApi}.execute-api.${AWS::Region}.${AWS::URLSuffix}/
  ApiId:
    Value: !Ref ServerlessHttpApi
  Endpoint:
    Value: !GetAtt ServerlessHttpApi.ApiEndpoint
";

fn outputs(s: &Server, stack: &str) -> Vec<Vec<String>> {
    let o = cmd(s, &["stack", "outputs", "--region", "us-east-1", "--stack-name", stack]);
    assert!(o.status.success(), "{}", text(&o.stderr));
    text(&o.stdout)
        .lines()
        .map(|l| l.split('\t').map(String::from).collect())
        .collect()
}

/// AWS's documented example of an API Gateway event, as the SAM CLI generates it
/// (`sam local generate-event apigateway KIND`), or `None` when the SAM CLI is not installed
/// (an error in CI, where scripts/setup.sh installs it).
fn documented_event(kind: &str) -> Option<Value> {
    let sam = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../.venv-sam/bin/sam");
    if !sam.is_file() {
        assert!(
            std::env::var_os("CI").is_none(),
            "the SAM CLI ({}) is missing; run scripts/setup.sh",
            sam.display()
        );
        eprintln!("SKIPPED: the documented {kind} event (the SAM CLI is not installed; run scripts/setup.sh)");
        return None;
    }
    let o = Command::new(&sam)
        .args(["local", "generate-event", "apigateway", kind])
        .env("SAM_CLI_TELEMETRY", "0")
        .output()
        .expect("run the SAM CLI");
    assert!(o.status.success(), "{}", text(&o.stderr));
    Some(serde_json::from_slice(&o.stdout).expect("the SAM CLI prints JSON"))
}

/// Every field of the documented event, at the top and in the request context's objects, is in
/// ours with a value of the same JSON kind (or null, as API Gateway sends for what a request
/// lacks); `absent` names the fields a request to this API cannot have.
fn has_documented_shape(doc: &Value, ours: &Value, at: &str, absent: &[&str]) {
    let kind = |v: &Value| match v {
        Value::Null => "null",
        Value::Bool(_) => "bool",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    };
    for (k, d) in doc.as_object().unwrap() {
        let path = format!("{at}{k}");
        if absent.contains(&path.as_str()) {
            continue;
        }
        let Some(o) = ours.get(k) else {
            panic!("the documented field {path} is missing from {ours}");
        };
        assert!(
            o.is_null() || kind(o) == kind(d),
            "{path}: a {} in the documented event, a {} here ({o})",
            kind(d),
            kind(o)
        );
        // the request context's own objects, not free-form maps such as headers
        if d.is_object() && o.is_object() && (k == "requestContext" || at.starts_with("requestContext")) {
            has_documented_shape(d, o, &format!("{path}."), absent);
        }
    }
}

fn keys(v: &Value) -> Vec<String> {
    let mut k: Vec<String> = v.as_object().unwrap().keys().cloned().collect();
    k.sort();
    k
}

fn sorted(k: &[&str]) -> Vec<String> {
    let mut k: Vec<String> = k.iter().map(|s| s.to_string()).collect();
    k.sort();
    k
}

#[test]
fn a_sam_http_api_deploys_and_serves_events_and_responses_as_api_gateway_does() {
    let s = serve();
    std::fs::create_dir_all(s.root.join("src")).unwrap();
    std::fs::write(s.root.join("src/index.js"), FUNCTION).unwrap();
    let o = deploy(&s, SAM, "web");
    assert!(
        o.status.success(),
        "deploys without --allow-unsupported: {}",
        text(&o.stderr)
    );

    // The outputs: AWS's URL, and beside it the local URL a user can curl.
    let outs = outputs(&s, "web");
    let url_row = outs.iter().find(|r| r[0] == "ApiUrl").unwrap();
    let api_id = &outs.iter().find(|r| r[0] == "ApiId").unwrap()[1];
    assert_eq!(api_id.len(), 10);
    assert_eq!(
        url_row[1],
        format!("https://{api_id}.execute-api.us-east-1.amazonaws.com/")
    );
    let port = s.url.rsplit(':').next().unwrap();
    let base = format!("http://{api_id}.execute-api.localhost:{port}");
    assert_eq!(url_row[2], format!("{base}/"), "{outs:?}");
    let endpoint_row = outs.iter().find(|r| r[0] == "Endpoint").unwrap();
    assert_eq!(
        endpoint_row[1],
        format!("https://{api_id}.execute-api.us-east-1.amazonaws.com")
    );

    // 2.0: path parameters, query strings, multi-value headers and cookies, field by field.
    let r = curl(&[
        &format!("{base}/items/42%20x?a=1&a=2&b=x%20y"),
        "-H",
        "X-Multi: one",
        "-H",
        "X-Multi: two",
        "-H",
        "Cookie: c1=v1; c2=v2",
        "-A",
        "meridian-test/1.0",
    ]);
    assert_eq!(r.status, 200, "{}", text(&r.body));
    assert!(!r.header("apigw-requestid").is_empty());
    let answer = r.json();
    assert_eq!(answer["version"], "1", "through the alias `live`");
    let e = &answer["event"];
    // The fields of AWS's documented 2.0 example (authorizer, authentication and stage variables
    // aside, which this API does not have).
    assert_eq!(
        keys(e),
        sorted(&[
            "version",
            "routeKey",
            "rawPath",
            "rawQueryString",
            "cookies",
            "headers",
            "queryStringParameters",
            "requestContext",
            "pathParameters",
            "isBase64Encoded"
        ])
    );
    assert_eq!(
        keys(&e["requestContext"]),
        sorted(&[
            "accountId",
            "apiId",
            "domainName",
            "domainPrefix",
            "http",
            "requestId",
            "routeKey",
            "stage",
            "time",
            "timeEpoch"
        ])
    );
    assert_eq!(
        keys(&e["requestContext"]["http"]),
        sorted(&["method", "path", "protocol", "sourceIp", "userAgent"])
    );
    if let Some(doc) = documented_event("http-api-proxy") {
        // this API has no authorizer and its stage no variables: API Gateway leaves those out
        let absent = [
            "requestContext.authentication",
            "requestContext.authorizer",
            "stageVariables",
            "body",
        ];
        has_documented_shape(&doc, e, "", &absent);
    }
    assert_eq!(e["version"], "2.0");
    assert_eq!(e["routeKey"], "GET /items/{id}");
    assert_eq!(e["rawPath"], "/items/42%20x");
    assert_eq!(e["rawQueryString"], "a=1&a=2&b=x%20y");
    assert_eq!(e["cookies"], serde_json::json!(["c1=v1", "c2=v2"]));
    assert_eq!(e["headers"]["x-multi"], "one,two");
    assert!(e["headers"].get("cookie").is_none());
    assert_eq!(e["queryStringParameters"], serde_json::json!({"a": "1,2", "b": "x y"}));
    assert_eq!(e["pathParameters"], serde_json::json!({"id": "42 x"}));
    assert_eq!(e["isBase64Encoded"], false);
    let rc = &e["requestContext"];
    assert_eq!(rc["apiId"], api_id.as_str());
    assert_eq!(rc["stage"], "$default");
    assert_eq!(rc["accountId"], "123456789012");
    assert_eq!(
        rc["domainName"],
        format!("{api_id}.execute-api.us-east-1.amazonaws.com")
    );
    assert_eq!(rc["http"]["method"], "GET");
    assert_eq!(rc["http"]["path"], "/items/42%20x");
    assert_eq!(rc["http"]["protocol"], "HTTP/1.1");
    assert_eq!(rc["http"]["sourceIp"], "127.0.0.1");
    assert_eq!(rc["http"]["userAgent"], "meridian-test/1.0");
    assert_eq!(rc["requestId"], r.header("apigw-requestid")[0]);
    assert!(rc["timeEpoch"].as_i64().unwrap() > 1_700_000_000_000);
    let time = rc["time"].as_str().unwrap();
    assert!(time.ends_with(" +0000") && time.len() == 26, "{time}");

    // 1.0: the REST-style event, on a greedy path, with a body.
    let r = curl(&[
        &format!("{base}/v1/a/b?x=1&x=2"),
        "-X",
        "POST",
        "-H",
        "content-type: application/json",
        "-H",
        "X-Multi: one",
        "-H",
        "X-Multi: two",
        "--data",
        "{\"k\":1}",
    ]);
    assert_eq!(r.status, 200, "{}", text(&r.body));
    let e = &r.json()["event"];
    assert_eq!(
        keys(e),
        sorted(&[
            "version",
            "resource",
            "path",
            "httpMethod",
            "headers",
            "multiValueHeaders",
            "queryStringParameters",
            "multiValueQueryStringParameters",
            "requestContext",
            "pathParameters",
            "stageVariables",
            "body",
            "isBase64Encoded"
        ])
    );
    if let Some(doc) = documented_event("aws-proxy") {
        // the 1.0 payload is the REST proxy event's shape
        has_documented_shape(&doc, e, "", &[]);
    }
    assert_eq!(e["version"], "1.0");
    assert_eq!(e["resource"], "/v1/{proxy+}");
    assert_eq!(e["path"], "/v1/a/b");
    assert_eq!(e["httpMethod"], "POST");
    assert_eq!(e["headers"]["x-multi"], "two");
    assert_eq!(e["multiValueHeaders"]["x-multi"], serde_json::json!(["one", "two"]));
    assert_eq!(e["queryStringParameters"], serde_json::json!({"x": "2"}));
    assert_eq!(
        e["multiValueQueryStringParameters"],
        serde_json::json!({"x": ["1", "2"]})
    );
    assert_eq!(e["pathParameters"], serde_json::json!({"proxy": "a/b"}));
    assert_eq!(e["stageVariables"], Value::Null);
    assert_eq!(e["body"], "{\"k\":1}");
    assert_eq!(e["requestContext"]["identity"]["sourceIp"], "127.0.0.1");
    assert_eq!(e["requestContext"]["httpMethod"], "POST");
    assert_eq!(e["requestContext"]["resourcePath"], "/v1/{proxy+}");

    // 1.0 responses: headers and multiValueHeaders.
    let r = curl(&[&format!("{base}/v1/mv")]);
    assert_eq!((r.status, text(&r.body).as_str()), (200, "mv"));
    assert_eq!(r.header("x-single"), vec!["s"]);
    assert_eq!(r.header("x-multi"), vec!["m1", "m2"]);

    // 2.0 responses: cookies, status, inference.
    let r = curl(&[&format!("{base}/cookies")]);
    assert_eq!((r.status, text(&r.body).as_str()), (201, "ok"));
    assert_eq!(r.header("set-cookie"), vec!["a=1; Path=/", "b=2"]);
    assert_eq!(r.header("x-one"), vec!["1"]);
    let r = curl(&[&format!("{base}/plain")]);
    assert_eq!((r.status, text(&r.body).as_str()), (200, "hello from lambda"));
    assert_eq!(r.header("content-type"), vec!["application/json"]);
    let r = curl(&[&format!("{base}/object")]);
    assert_eq!(r.status, 200);
    assert_eq!(r.json(), serde_json::json!({"message": "no status code"}));

    // Binary bodies both ways (every byte value).
    let bytes: Vec<u8> = (0..=255u8).collect();
    let file = s.root.join("bytes.bin");
    std::fs::write(&file, &bytes).unwrap();
    let r = curl(&[
        &format!("{base}/bin"),
        "-H",
        "content-type: application/octet-stream",
        "--data-binary",
        &format!("@{}", file.display()),
    ]);
    assert_eq!(r.status, 200);
    let mut reversed = bytes.clone();
    reversed.reverse();
    assert_eq!(r.body, reversed);

    // API Gateway's errors.
    let r = curl(&[&format!("{base}/bad")]);
    assert_eq!(
        (r.status, r.json()),
        (502, serde_json::json!({"message": "Internal Server Error"}))
    );
    let r = curl(&[&format!("{base}/throw")]);
    assert_eq!(
        (r.status, r.json()),
        (502, serde_json::json!({"message": "Internal Server Error"}))
    );
    let t = Instant::now();
    let r = curl(&[&format!("{base}/slow")]);
    assert_eq!(r.status, 504, "{}", text(&r.body));
    assert!(
        t.elapsed() < Duration::from_millis(3500),
        "timed out after TimeoutInMillis, {:?}",
        t.elapsed()
    );
    let r = curl(&[&format!("http://nosuchapi00.execute-api.localhost:{port}/items/1")]);
    assert_eq!((r.status, r.json()), (404, serde_json::json!({"message": "Not Found"})));

    // An event over Lambda's 6 MB payload limit, and a body over HTTP APIs' 10 MB: 413.
    for (size, name) in [(7_000_000, "seven.txt"), (11_000_000, "eleven.txt")] {
        let f = s.root.join(name);
        std::fs::write(&f, vec![b'a'; size]).unwrap();
        let r = curl(&[
            &format!("{base}/plain"),
            "-H",
            "content-type: text/plain",
            "--data-binary",
            &format!("@{}", f.display()),
        ]);
        assert_eq!(
            (r.status, r.json()),
            (413, serde_json::json!({"message": "Request Entity Too Large"})),
            "{size} bytes"
        );
    }

    // The path-style form reaches the same API.
    let r = curl(&[&format!("{}/_apis/{api_id}/plain", s.url)]);
    assert_eq!((r.status, text(&r.body).as_str()), (200, "hello from lambda"));

    // The endpoint still serves the AWS APIs beside the HTTP API.
    let function = answer_function(&s);
    let o = cmd(
        &s,
        &[
            "lambda",
            "invoke",
            "--region",
            "us-east-1",
            "--payload",
            "{\"rawPath\":\"/plain\"}",
            &function,
        ],
    );
    assert!(o.status.success(), "{}", text(&o.stderr));

    // The integration targets the alias, so its canary weights apply to API traffic.
    std::fs::write(s.root.join("src/index.js"), format!("{FUNCTION}\n// v2\n")).unwrap();
    let src = s.root.join("src");
    for args in [
        vec![
            "update-function-code",
            "--function-name",
            &function,
            "--code-dir",
            src.to_str().unwrap(),
        ],
        vec!["publish-version", "--function-name", &function],
        vec![
            "update-alias",
            "--function-name",
            &function,
            "--name",
            "live",
            "--routing-config",
            "2=0.3",
        ],
    ] {
        let mut a = vec!["lambda", args[0], "--region", "us-east-1"];
        a.extend_from_slice(&args[1..]);
        let o = cmd(&s, &a);
        assert!(o.status.success(), "{a:?}: {}", text(&o.stderr));
    }
    let on_v2 = (0..10)
        .filter(|_| curl(&[&format!("{base}/items/1")]).json()["version"] == "2")
        .count();
    assert_eq!(on_v2, 3, "30% of 10 requests through the alias");
}

/// The function of the stack `web`.
fn answer_function(s: &Server) -> String {
    let o = cmd(
        s,
        &[
            "--output",
            "json",
            "stack",
            "describe",
            "--region",
            "us-east-1",
            "--stack-name",
            "web",
        ],
    );
    let d: Value = serde_json::from_slice(&o.stdout).unwrap();
    d["Resources"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["ResourceType"] == "AWS::Lambda::Function")
        .map(|r| r["PhysicalResourceId"].as_str().unwrap().to_string())
        .unwrap()
}

#[test]
fn a_cloudformation_http_api_with_routes_integrations_and_a_named_stage() {
    let s = serve();
    let template = r#"Resources:
  Fn:
    Type: AWS::Lambda::Function
    Properties:
      FunctionName: cfn-api-fn
      Runtime: nodejs20.x
      Handler: index.handler
      Role: arn:aws:iam::123456789012:role/x
      Code:
        ZipFile: |
          exports.handler = async (event) => ({ statusCode: 200, body: JSON.stringify({ resource: event.resource, path: event.path, stage: event.requestContext.stage, vars: event.stageVariables, params: event.pathParameters }) });
  Api:
    Type: AWS::ApiGatewayV2::Api
    Properties:
      Name: pets
      ProtocolType: HTTP
  Integration:
    Type: AWS::ApiGatewayV2::Integration
    Properties:
      ApiId: !Ref Api
      IntegrationType: AWS_PROXY
      IntegrationUri: !GetAtt Fn.Arn
      PayloadFormatVersion: '1.0'
      TimeoutInMillis: 5000
  Route:
    Type: AWS::ApiGatewayV2::Route
    Properties:
      ApiId: !Ref Api
      RouteKey: GET /pets/{petId}
      Target: !Sub integrations/${Integration}
  Stage:
    Type: AWS::ApiGatewayV2::Stage
    Properties:
      ApiId: !Ref Api
      StageName: prod
      AutoDeploy: true
      StageVariables:
        color: blue
  Permission:
    Type: AWS::Lambda::Permission
    Properties:
      Action: lambda:InvokeFunction
      FunctionName: !Ref Fn
      Principal: apigateway.amazonaws.com
Outputs:
  Url:
    Value: !Sub https://${Api}.execute-api.${AWS::Region}.amazonaws.com/prod
"#;
    let o = deploy(&s, template, "pets");
    assert!(o.status.success(), "{}", text(&o.stderr));
    let outs = outputs(&s, "pets");
    let local = &outs[0][2];
    let r = curl(&[&format!("{local}/pets/7")]);
    assert_eq!(r.status, 200, "{}", text(&r.body));
    assert_eq!(
        r.json(),
        serde_json::json!({"resource": "/pets/{petId}", "path": "/prod/pets/7", "stage": "prod", "vars": {"color": "blue"}, "params": {"petId": "7"}})
    );
    // No route, wrong method, no stage: API Gateway's 404.
    for (method, url) in [
        ("GET", format!("{local}/dogs/7")),
        ("POST", format!("{local}/pets/7")),
        ("GET", local.replace("/prod", "/test") + "/pets/7"),
    ] {
        let r = curl(&["-X", method, &url]);
        assert_eq!(
            (r.status, r.json()),
            (404, serde_json::json!({"message": "Not Found"})),
            "{method} {url}"
        );
    }

    // Bad input is refused at deploy with a clear error, and nothing is left half-made.
    let bad = template
        .replace("IntegrationType: AWS_PROXY", "IntegrationType: HTTP_PROXY")
        .replace("cfn-api-fn", "cfn-api-fn2");
    let o = deploy(&s, &bad, "bad");
    assert!(!o.status.success());
    assert!(
        text(&o.stderr).contains("only AWS_PROXY integrations"),
        "{}",
        text(&o.stderr)
    );
    let bad = template
        .replace("GET /pets/{petId}", "GET pets")
        .replace("cfn-api-fn", "cfn-api-fn3");
    let o = deploy(&s, &bad, "bad2");
    assert!(!o.status.success());
    assert!(text(&o.stderr).contains("Invalid route key"), "{}", text(&o.stderr));

    // Deleting the stack takes the API away.
    let o = cmd(
        &s,
        &["stack", "delete", "--region", "us-east-1", "--stack-name", "pets"],
    );
    assert!(o.status.success(), "{}", text(&o.stderr));
    let r = curl(&[&format!("{local}/pets/7")]);
    assert_eq!(r.status, 404);
}

#[test]
fn cors_preflights_are_answered_by_the_api_and_responses_carry_the_headers() {
    let s = serve();
    std::fs::create_dir_all(s.root.join("src")).unwrap();
    std::fs::write(s.root.join("src/index.js"), FUNCTION).unwrap();
    let template = "Transform: AWS::Serverless-2016-10-31
Resources:
  Api:
    Type: AWS::Serverless::HttpApi
    Properties:
      CorsConfiguration:
        AllowOrigins: ['https://app.example']
        AllowMethods: [GET, POST]
        AllowHeaders: [content-type]
        ExposeHeaders: [x-one]
        MaxAge: 600
  Fn:
    Type: AWS::Serverless::Function
    Properties:
      CodeUri: src/
      Handler: index.handler
      Runtime: nodejs20.x
      Events:
        Get:
          Type: HttpApi
          Properties:
            ApiId: !Ref Api
            Path: /cookies
            Method: get
Outputs:
  Url:
    Value: !Sub https://${Api}.execute-api.${AWS::Region}.${AWS::URLSuffix}
";
    let o = deploy(&s, template, "cors");
    assert!(o.status.success(), "{}", text(&o.stderr));
    let base = outputs(&s, "cors")[0][2].clone();
    let r = curl(&[
        "-X",
        "OPTIONS",
        &format!("{base}/cookies"),
        "-H",
        "Origin: https://app.example",
        "-H",
        "Access-Control-Request-Method: GET",
    ]);
    assert_eq!(r.status, 204);
    assert_eq!(r.header("access-control-allow-origin"), vec!["https://app.example"]);
    assert_eq!(r.header("access-control-allow-methods"), vec!["GET,POST"]);
    assert_eq!(r.header("access-control-allow-headers"), vec!["content-type"]);
    assert_eq!(r.header("access-control-max-age"), vec!["600"]);
    let r = curl(&[
        "-X",
        "OPTIONS",
        &format!("{base}/cookies"),
        "-H",
        "Origin: https://evil.example",
        "-H",
        "Access-Control-Request-Method: GET",
    ]);
    assert_eq!(r.status, 204);
    assert!(r.header("access-control-allow-origin").is_empty());
    let r = curl(&[&format!("{base}/cookies"), "-H", "Origin: https://app.example"]);
    assert_eq!(r.status, 201);
    assert_eq!(r.header("access-control-allow-origin"), vec!["https://app.example"]);
    assert_eq!(r.header("access-control-expose-headers"), vec!["x-one"]);
}

/// `sam init`'s hello-world, as the SAM CLI writes it: the first template a new user tries. Its
/// `Api` event makes a REST API, deployed without `--allow-unsupported` and served.
const SAM_INIT_HELLO: &str = r#"AWSTemplateFormatVersion: '2010-09-09'
Transform: AWS::Serverless-2016-10-31
Description: >
  sam-app

  Sample SAM Template for sam-app

Globals:
  Function:
    Timeout: 3

Resources:
  HelloWorldFunction:
    Type: AWS::Serverless::Function
    Properties:
      CodeUri: hello_world/
      Handler: app.lambda_handler
      Runtime: python3.12
      Architectures:
        - x86_64
      Events:
        HelloWorld:
          Type: Api
          Properties:
            Path: /hello
            Method: get

Outputs:
  HelloWorldApi:
    Description: "API Gateway endpoint URL for Prod stage for Hello World function"
    Value: !Sub "https://${ServerlessRestApi}.execute-api.${AWS::Region}.amazonaws.com/Prod/hello/"
  HelloWorldFunction:
    Description: "Hello World Lambda Function ARN"
    Value: !GetAtt HelloWorldFunction.Arn
"#;

const SAM_INIT_APP: &str = r#"import json


def lambda_handler(event, context):
    return {
        "statusCode": 200,
        "body": json.dumps({
            "message": "hello world",
        }),
    }
"#;

#[test]
fn sam_init_hello_world_deploys_and_answers_on_its_rest_api() {
    let s = serve();
    std::fs::create_dir_all(s.root.join("hello_world")).unwrap();
    std::fs::write(s.root.join("hello_world/app.py"), SAM_INIT_APP).unwrap();
    let o = deploy(&s, SAM_INIT_HELLO, "sam-app");
    assert!(o.status.success(), "{}", text(&o.stderr));
    let outs = outputs(&s, "sam-app");
    let row = outs.iter().find(|r| r[0] == "HelloWorldApi").unwrap();
    let api_id = row[1]
        .strip_prefix("https://")
        .and_then(|r| r.split('.').next())
        .unwrap()
        .to_string();
    assert_eq!(api_id.len(), 10, "{row:?}");
    let port = s.url.rsplit(':').next().unwrap();
    assert_eq!(
        row[2],
        format!("http://{api_id}.execute-api.localhost:{port}/Prod/hello/"),
        "the local URL beside AWS's: {outs:?}"
    );
    // what `curl` of the output gives on AWS
    let r = curl(&[&row[2]]);
    assert_eq!(
        (r.status, r.json()),
        (200, serde_json::json!({"message": "hello world"}))
    );
    // the famous 403s of REST APIs: a path or method the API does not have, a stage it does not
    let base = format!("http://{api_id}.execute-api.localhost:{port}");
    for (method, url, message) in [
        ("GET", format!("{base}/Prod/goodbye"), "Missing Authentication Token"),
        ("POST", format!("{base}/Prod/hello"), "Missing Authentication Token"),
        ("GET", format!("{base}/Dev/hello"), "Forbidden"),
    ] {
        let r = curl(&["-X", method, &url]);
        assert_eq!(
            (r.status, r.json()),
            (403, serde_json::json!({ "message": message })),
            "{method} {url}"
        );
    }
    // SAM's deployment also makes the stage named `Stage`, as on AWS
    let r = curl(&[&format!("{base}/Stage/hello")]);
    assert_eq!(r.status, 200, "{}", text(&r.body));
}

#[test]
fn a_sam_rest_api_sends_rest_events_with_cors_binary_and_errors_as_api_gateway_does() {
    let s = serve();
    std::fs::create_dir_all(s.root.join("src")).unwrap();
    std::fs::write(s.root.join("src/index.js"), FUNCTION).unwrap();
    let template = r#"Transform: AWS::Serverless-2016-10-31
Resources:
  Api:
    Type: AWS::Serverless::Api
    Properties:
      StageName: dev
      Cors: "'https://app.example'"
      BinaryMediaTypes: ['application~1octet-stream']
      Variables:
        color: green
  Fn:
    Type: AWS::Serverless::Function
    Properties:
      CodeUri: src/
      Handler: index.handler
      Runtime: nodejs20.x
      Timeout: 10
      AutoPublishAlias: live
      Events:
        Items:
          Type: Api
          Properties:
            RestApiId: !Ref Api
            Path: /items/{proxy+}
            Method: ANY
Outputs:
  Url:
    Value: !Sub https://${Api}.execute-api.${AWS::Region}.amazonaws.com/dev
"#;
    let o = deploy(&s, template, "rest");
    assert!(o.status.success(), "{}", text(&o.stderr));
    let local = outputs(&s, "rest")[0][2].clone();

    // the REST proxy event: path within the stage, the resource's template, no `version`
    let r = curl(&[
        &format!("{local}/items/a/b%20c?x=1&x=2"),
        "-H",
        "X-Multi: one",
        "-H",
        "X-Multi: two",
    ]);
    assert_eq!(r.status, 200, "{}", text(&r.body));
    let v = r.json();
    let e = &v["event"];
    assert_eq!(e["path"], "/items/a/b%20c");
    assert_eq!(e["resource"], "/items/{proxy+}");
    assert_eq!(e["httpMethod"], "GET");
    assert_eq!(e["pathParameters"], serde_json::json!({"proxy": "a/b c"}));
    assert_eq!(e["queryStringParameters"], serde_json::json!({"x": "2"}));
    assert_eq!(
        e["multiValueQueryStringParameters"],
        serde_json::json!({"x": ["1", "2"]})
    );
    assert_eq!(e["multiValueHeaders"]["x-multi"], serde_json::json!(["one", "two"]));
    assert_eq!(e["stageVariables"], serde_json::json!({"color": "green"}));
    assert_eq!(e["requestContext"]["stage"], "dev");
    assert_eq!(e["requestContext"]["path"], "/dev/items/a/b%20c");
    assert_eq!(e["requestContext"]["resourcePath"], "/items/{proxy+}");
    assert!(e.get("version").is_none(), "REST events have no version: {e}");
    assert_eq!(e["isBase64Encoded"], false);
    if let Some(doc) = documented_event("aws-proxy") {
        has_documented_shape(&doc, e, "", &[]);
    }
    // through the alias: the version the alias serves answered
    assert_eq!(v["version"], "1");

    // CORS: SAM's OPTIONS method is a mock integration; API Gateway answers it itself
    let r = curl(&[
        "-X",
        "OPTIONS",
        &format!("{local}/items/a"),
        "-H",
        "Origin: https://app.example",
        "-H",
        "Access-Control-Request-Method: POST",
    ]);
    assert_eq!(r.status, 200, "{}", text(&r.body));
    assert_eq!(r.header("access-control-allow-origin"), ["https://app.example"]);
    assert!(
        r.header("access-control-allow-methods")[0].contains("POST"),
        "{:?}",
        r.headers
    );

    // binary: a body of a binary media type arrives base64-encoded; a base64 answer is decoded
    // for a client that accepts the type, and left as base64 text for one that does not
    let bin = s.root.join("payload.bin");
    std::fs::write(&bin, [0u8, 1, 2, 255]).unwrap();
    let r = curl(&[
        "-X",
        "POST",
        &format!("{local}/items/bin"),
        "-H",
        "Content-Type: application/octet-stream",
        "-H",
        "Accept: application/octet-stream",
        "--data-binary",
        &format!("@{}", bin.display()),
    ]);
    assert_eq!((r.status, r.body.clone()), (200, vec![255u8, 2, 1, 0]));
    let r = curl(&[
        "-X",
        "POST",
        &format!("{local}/items/bin"),
        "-H",
        "Content-Type: application/octet-stream",
        "-H",
        "Accept: text/plain",
        "--data-binary",
        &format!("@{}", bin.display()),
    ]);
    assert_eq!((r.status, text(&r.body)), (200, "/wIBAA==".to_string()));

    // the function fails, or answers something that is not a proxy response: 502
    for path in ["throw", "bad", "plain"] {
        let r = curl(&[&format!("{local}/items/{path}")]);
        assert_eq!(
            (r.status, r.json()),
            (502, serde_json::json!({"message": "Internal server error"})),
            "{path}"
        );
    }
}

#[test]
fn a_cloudformation_rest_api_of_resources_and_methods_is_served() {
    let s = serve();
    let template = r#"Resources:
  Fn:
    Type: AWS::Lambda::Function
    Properties:
      FunctionName: rest-cfn-fn
      Runtime: nodejs20.x
      Handler: index.handler
      Role: arn:aws:iam::123456789012:role/x
      Code:
        ZipFile: |
          exports.handler = async (event) => ({ statusCode: 200, body: JSON.stringify({ resource: event.resource, path: event.path, params: event.pathParameters }) });
  Api:
    Type: AWS::ApiGateway::RestApi
    Properties:
      Name: pets
  Pets:
    Type: AWS::ApiGateway::Resource
    Properties:
      RestApiId: !Ref Api
      ParentId: !GetAtt Api.RootResourceId
      PathPart: pets
  Pet:
    Type: AWS::ApiGateway::Resource
    Properties:
      RestApiId: !Ref Api
      ParentId: !Ref Pets
      PathPart: '{petId}'
  GetPet:
    Type: AWS::ApiGateway::Method
    Properties:
      RestApiId: !Ref Api
      ResourceId: !Ref Pet
      HttpMethod: GET
      AuthorizationType: NONE
      Integration:
        Type: AWS_PROXY
        IntegrationHttpMethod: POST
        Uri: !Sub arn:aws:apigateway:${AWS::Region}:lambda:path/2015-03-31/functions/${Fn.Arn}/invocations
  Health:
    Type: AWS::ApiGateway::Method
    Properties:
      RestApiId: !Ref Api
      ResourceId: !GetAtt Api.RootResourceId
      HttpMethod: GET
      AuthorizationType: NONE
      Integration:
        Type: MOCK
        RequestTemplates: {application/json: '{"statusCode": 200}'}
        IntegrationResponses:
          - StatusCode: 200
            ResponseTemplates: {application/json: '{"ok": true}'}
  Deployment:
    Type: AWS::ApiGateway::Deployment
    DependsOn: [GetPet, Health]
    Properties:
      RestApiId: !Ref Api
  Stage:
    Type: AWS::ApiGateway::Stage
    Properties:
      RestApiId: !Ref Api
      DeploymentId: !Ref Deployment
      StageName: v1
Outputs:
  Url:
    Value: !Sub https://${Api}.execute-api.${AWS::Region}.amazonaws.com/v1
"#;
    let o = deploy(&s, template, "pets");
    assert!(o.status.success(), "{}", text(&o.stderr));
    let local = outputs(&s, "pets")[0][2].clone();
    let r = curl(&[&format!("{local}/pets/7")]);
    assert_eq!(
        (r.status, r.json()),
        (
            200,
            serde_json::json!({"resource": "/pets/{petId}", "path": "/pets/7", "params": {"petId": "7"}})
        )
    );
    let r = curl(&[&format!("{local}/")]);
    assert_eq!((r.status, r.json()), (200, serde_json::json!({"ok": true})));
    let r = curl(&[&format!("{local}/pets")]);
    assert_eq!(r.status, 403);

    // an integration local regions cannot serve is refused at deploy, with the way out
    let bad = template
        .replace("Type: AWS_PROXY", "Type: HTTP_PROXY")
        .replace("rest-cfn-fn", "rest-cfn-fn2");
    let o = deploy(&s, &bad, "bad");
    assert!(!o.status.success());
    assert!(
        text(&o.stderr).contains("only AWS_PROXY integrations"),
        "{}",
        text(&o.stderr)
    );

    // deleting the stack takes the API away
    let o = cmd(
        &s,
        &["stack", "delete", "--region", "us-east-1", "--stack-name", "pets"],
    );
    assert!(o.status.success(), "{}", text(&o.stderr));
    assert_eq!(curl(&[&format!("{local}/pets/7")]).status, 404);
}

/// `sam init`'s Node.js hello-world (nodejs20.x, an ES module `app.mjs`), as the SAM CLI writes it.
#[test]
fn sam_init_node_hello_world_answers_on_its_rest_api() {
    let s = serve();
    let template = SAM_INIT_HELLO
        .replace("CodeUri: hello_world/", "CodeUri: hello-world/")
        .replace("Handler: app.lambda_handler", "Handler: app.lambdaHandler")
        .replace("Runtime: python3.12", "Runtime: nodejs20.x");
    std::fs::create_dir_all(s.root.join("hello-world")).unwrap();
    std::fs::write(
        s.root.join("hello-world/app.mjs"),
        "/**\n * Sample Lambda function\n */\nexport const lambdaHandler = async (event, context) => {\n    const response = {\n      statusCode: 200,\n      body: JSON.stringify({\n        message: 'hello world',\n      })\n    };\n\n    return response;\n  };\n",
    )
    .unwrap();
    std::fs::write(
        s.root.join("hello-world/package.json"),
        "{\n  \"name\": \"hello_world\",\n  \"version\": \"1.0.0\",\n  \"description\": \"hello world sample for NodeJS\",\n  \"main\": \"app.js\",\n  \"license\": \"MIT\"\n}\n",
    )
    .unwrap();
    let o = deploy(&s, &template, "sam-node");
    assert!(o.status.success(), "{}", text(&o.stderr));
    let outs = outputs(&s, "sam-node");
    let row = outs.iter().find(|r| r[0] == "HelloWorldApi").unwrap();
    let r = curl(&[&row[2]]);
    assert_eq!(
        (r.status, r.json()),
        (200, serde_json::json!({"message": "hello world"}))
    );
}

/// A REST API's Lambda authorizers in a local region, as API Gateway runs them: the default
/// token authorizer decides every method (401 without the token or when it says `Unauthorized`,
/// 403 on a deny, the function reached with its `principalId` and `context` on an allow), a
/// request authorizer reads its identity sources, `Authorizer: NONE` leaves a method open, and
/// a cached answer is applied again to the next method.
#[test]
fn rest_api_lambda_authorizers_decide_before_the_function() {
    let s = serve();
    std::fs::create_dir_all(s.root.join("src")).unwrap();
    std::fs::write(s.root.join("src/index.js"), FUNCTION).unwrap();
    std::fs::write(
        s.root.join("src/auth.js"),
        r#"
const policy = (effect, arn, context) => ({ principalId: 'user-7', context,
  policyDocument: { Version: '2012-10-17', Statement: [{ Action: 'execute-api:Invoke', Effect: effect, Resource: arn }] } });
exports.token = async (event) => {
  if (event.type !== 'TOKEN') throw new Error('not a token event');
  if (event.authorizationToken === 'allow') return policy('Allow', event.methodArn.replace(/\/GET\/.*/, '/GET/*'), { tier: 'gold' });
  if (event.authorizationToken === 'deny') return policy('Deny', '*', {});
  if (event.authorizationToken === 'exact') return policy('Allow', event.methodArn, {});
  throw new Error('Unauthorized');
};
exports.request = async (event) => {
  if (event.type !== 'REQUEST') throw new Error('not a request event');
  const ok = event.queryStringParameters && event.queryStringParameters.key === 'k1';
  return policy(ok ? 'Allow' : 'Deny', event.methodArn, { via: 'request' });
};
"#,
    )
    .unwrap();
    let template = r#"Transform: AWS::Serverless-2016-10-31
Resources:
  Api:
    Type: AWS::Serverless::Api
    Properties:
      StageName: prod
      Cors: "'*'"
      Auth:
        DefaultAuthorizer: Tokens
        Authorizers:
          Tokens:
            FunctionArn: !GetAtt TokenFn.Arn
          Keys:
            FunctionArn: !GetAtt RequestFn.Arn
            FunctionPayloadType: REQUEST
            Identity:
              QueryStrings: [key]
  TokenFn:
    Type: AWS::Serverless::Function
    Properties: {CodeUri: src/, Handler: auth.token, Runtime: nodejs20.x}
  RequestFn:
    Type: AWS::Serverless::Function
    Properties: {CodeUri: src/, Handler: auth.request, Runtime: nodejs20.x}
  Fn:
    Type: AWS::Serverless::Function
    Properties:
      CodeUri: src/
      Handler: index.handler
      Runtime: nodejs20.x
      Events:
        Items:
          Type: Api
          Properties: {RestApiId: !Ref Api, Path: /items, Method: get}
        Keyed:
          Type: Api
          Properties: {RestApiId: !Ref Api, Path: /keyed, Method: get, Auth: {Authorizer: Keys}}
        Open:
          Type: Api
          Properties: {RestApiId: !Ref Api, Path: /open, Method: get, Auth: {Authorizer: NONE}}
        Other:
          Type: Api
          Properties: {RestApiId: !Ref Api, Path: /other, Method: get}
Outputs:
  Url:
    Value: !Sub https://${Api}.execute-api.${AWS::Region}.amazonaws.com/prod
"#;
    let o = deploy(&s, template, "auth");
    assert!(o.status.success(), "{}", text(&o.stderr));
    let local = outputs(&s, "auth")[0][2].clone();
    let status_and_body = |url: &str, token: Option<&str>| {
        let header = token.map(|t| format!("Authorization: {t}"));
        let mut args = vec![url];
        if let Some(h) = &header {
            args.extend(["-H", h.as_str()]);
        }
        let r = curl(&args);
        (r.status, r.json())
    };
    let items = format!("{local}/items");
    assert_eq!(
        status_and_body(&items, None),
        (401, serde_json::json!({"message": "Unauthorized"}))
    );
    assert_eq!(
        status_and_body(&items, Some("nope")),
        (401, serde_json::json!({"message": "Unauthorized"}))
    );
    assert_eq!(
        status_and_body(&items, Some("deny")),
        (
            403,
            serde_json::json!({"Message": "User is not authorized to access this resource with an explicit deny"})
        )
    );
    let (status, body) = status_and_body(&items, Some("allow"));
    assert_eq!(status, 200, "{body}");
    let authorizer = &body["event"]["requestContext"]["authorizer"];
    assert_eq!(authorizer["principalId"], "user-7", "{body}");
    assert_eq!(authorizer["tier"], "gold", "{body}");

    // the request authorizer: its identity source missing is a 401; its policy decides
    let keyed = format!("{local}/keyed");
    assert_eq!(status_and_body(&keyed, None).0, 401);
    assert_eq!(status_and_body(&format!("{keyed}?key=other"), None).0, 403);
    let (status, body) = status_and_body(&format!("{keyed}?key=k1"), None);
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["event"]["requestContext"]["authorizer"]["via"], "request");

    // NONE: no authorizer
    assert_eq!(status_and_body(&format!("{local}/open"), None).0, 200);

    // the CORS preflight method carries the default authorizer too (SAM's
    // AddDefaultAuthorizerToCorsPreflight): a browser's preflight, sent without a token, is a 401
    let r = curl(&[
        "-X",
        "OPTIONS",
        &items,
        "-H",
        "Origin: https://app.example",
        "-H",
        "Access-Control-Request-Method: GET",
    ]);
    assert_eq!(r.status, 401, "{}", text(&r.body));

    // an answer is cached by its token (300 s by default) and applied again to the next method:
    // a policy that allows only /items then refuses /other, as on AWS
    assert_eq!(status_and_body(&items, Some("exact")).0, 200);
    let (status, body) = status_and_body(&format!("{local}/other"), Some("exact"));
    assert_eq!(status, 403, "{body}");
    assert_eq!(body["Message"], "User is not authorized to access this resource");
}

/// An HTTP API's Lambda authorizer (payload 2.0, simple responses) in a local region: 401
/// without its identity source, 403 `Forbidden` when it says no, and the function reached with
/// its context under `requestContext.authorizer.lambda` when it says yes.
#[test]
fn http_api_lambda_authorizers_decide_before_the_function() {
    let s = serve();
    std::fs::create_dir_all(s.root.join("src")).unwrap();
    std::fs::write(s.root.join("src/index.js"), FUNCTION).unwrap();
    std::fs::write(
        s.root.join("src/auth.js"),
        r#"
exports.handler = async (event) => {
  if (event.type !== 'REQUEST' || !event.routeArn) throw new Error('not a 2.0 request event');
  return { isAuthorized: event.identitySource[0] === 'let-me-in', context: { tier: 'gold' } };
};
"#,
    )
    .unwrap();
    let template = r#"Transform: AWS::Serverless-2016-10-31
Resources:
  Api:
    Type: AWS::Serverless::HttpApi
    Properties:
      Auth:
        DefaultAuthorizer: Lam
        Authorizers:
          Lam:
            FunctionArn: !GetAtt AuthFn.Arn
            AuthorizerPayloadFormatVersion: "2.0"
            EnableSimpleResponses: true
            Identity:
              Headers: [Authorization]
  AuthFn:
    Type: AWS::Serverless::Function
    Properties: {CodeUri: src/, Handler: auth.handler, Runtime: nodejs20.x}
  Fn:
    Type: AWS::Serverless::Function
    Properties:
      CodeUri: src/
      Handler: index.handler
      Runtime: nodejs20.x
      Events:
        Items:
          Type: HttpApi
          Properties: {ApiId: !Ref Api, Path: /items, Method: get}
Outputs:
  Url:
    Value: !Sub https://${Api}.execute-api.${AWS::Region}.amazonaws.com
"#;
    let o = deploy(&s, template, "httpauth");
    assert!(o.status.success(), "{}", text(&o.stderr));
    let local = outputs(&s, "httpauth")[0][2].clone();
    let items = format!("{local}/items");
    let r = curl(&[&items]);
    assert_eq!(
        (r.status, r.json()),
        (401, serde_json::json!({"message": "Unauthorized"}))
    );
    let r = curl(&[&items, "-H", "Authorization: wrong"]);
    assert_eq!((r.status, r.json()), (403, serde_json::json!({"message": "Forbidden"})));
    let r = curl(&[&items, "-H", "Authorization: let-me-in"]);
    assert_eq!(r.status, 200, "{}", text(&r.body));
    let body = r.json();
    assert_eq!(
        body["event"]["requestContext"]["authorizer"],
        serde_json::json!({"lambda": {"tier": "gold"}}),
        "{body}"
    );
}
