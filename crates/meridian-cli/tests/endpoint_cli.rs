//! The local regions' AWS endpoint with real clients: the AWS CLI (`aws s3`, `aws s3api`,
//! `aws cloudformation package` and `deploy`, `aws ssm`, `aws sts`) and boto3, installed by
//! `scripts/setup.sh` into `.venv`, against `meridian serve`; and a pipeline whose unmodified
//! buildspec packages its template with the AWS CLI once per region, then deploys it to two
//! regions. Outside CI the tests are skipped (loudly) when the virtualenv is missing; in CI (`CI`
//! set) a missing virtualenv fails them.

use serde_json::Value;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .unwrap()
}

/// A virtualenv's `bin` directory holding `program` (made by `scripts/setup.sh`), or `None` to
/// skip: outside CI the test is skipped loudly, in CI a missing peer fails it.
fn peer_bin(venv: &str, program: &str, what: &str) -> Option<PathBuf> {
    let bin = repo().join(venv).join("bin");
    if bin.join(program).is_file() {
        return Some(bin);
    }
    if std::env::var_os("CI").is_some() {
        panic!(
            "{what} ({}) is missing; run scripts/setup.sh",
            bin.join(program).display()
        );
    }
    eprintln!(
        "SKIPPED: {what} is not installed ({}); run scripts/setup.sh",
        bin.display()
    );
    None
}

/// The AWS CLI and boto3.
fn venv_bin() -> Option<PathBuf> {
    peer_bin(".venv", "aws", "the AWS CLI")
}

/// `meridian serve` on a free port of its own data directory; killed on drop.
struct Server {
    child: Child,
    url: String,
    data: PathBuf,
    _tmp: tempfile::TempDir,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn serve(extra: &[&str]) -> Server {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let mut child = Command::new(env!("CARGO_BIN_EXE_meridian"))
        .arg("--data-dir")
        .arg(&data)
        .args(["serve", "--port", "0"])
        .args(extra)
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
        data,
        _tmp: tmp,
    }
}

/// A client command with the environment `meridian credentials` prints.
fn client(bin: &Path, server: &Server, program: &str, region: &str) -> Command {
    let mut c = Command::new(bin.join(program));
    for var in ["AWS_PROFILE", "AWS_CONFIG_FILE", "AWS_SHARED_CREDENTIALS_FILE"] {
        c.env_remove(var);
    }
    let creds = Command::new(env!("CARGO_BIN_EXE_meridian"))
        .args(["credentials", "--endpoint-url", &server.url, "--region", region])
        .output()
        .unwrap();
    for line in String::from_utf8_lossy(&creds.stdout).lines() {
        let (k, v) = line.trim_start_matches("export ").split_once('=').unwrap();
        c.env(k, v.trim_matches('\''));
    }
    c.env("AWS_CONFIG_FILE", "/dev/null")
        .env("AWS_SHARED_CREDENTIALS_FILE", "/dev/null");
    c
}

fn aws(bin: &Path, server: &Server, region: &str, args: &[&str]) -> Output {
    client(bin, server, "aws", region).args(args).output().unwrap()
}

fn ok(o: &Output) -> String {
    assert!(
        o.status.success(),
        "failed ({}):\nstdout: {}\nstderr: {}",
        o.status,
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn err(o: &Output) -> String {
    assert!(!o.status.success(), "succeeded: {}", String::from_utf8_lossy(&o.stdout));
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn json(o: &Output) -> Value {
    serde_json::from_str(&ok(o)).unwrap()
}

#[test]
fn aws_s3_commands_work_on_local_buckets_region_by_region() {
    let Some(bin) = venv_bin() else { return };
    let s = serve(&[]);
    let tmp = tempfile::tempdir().unwrap();
    ok(&aws(&bin, &s, "us-east-1", &["s3", "mb", "s3://art-us-east-1"]));
    ok(&aws(&bin, &s, "eu-west-1", &["s3", "mb", "s3://art-eu-west-1"]));
    // A name is global: making it again, anywhere, is refused.
    assert!(err(&aws(&bin, &s, "eu-west-1", &["s3", "mb", "s3://art-us-east-1"])).contains("BucketAlreadyOwnedByYou"));
    // A bucket outside us-east-1 needs its location constraint, as on S3.
    let e = err(&aws(
        &bin,
        &s,
        "eu-west-1",
        &["s3api", "create-bucket", "--bucket", "no-constraint"],
    ));
    assert!(e.contains("IllegalLocationConstraintException"), "{e}");

    // A small file, and one large enough for a multipart upload (8 MiB parts).
    let small = tmp.path().join("small.txt");
    std::fs::write(&small, "hello\n").unwrap();
    let big = tmp.path().join("big.bin");
    let bytes: Vec<u8> = (0..20_000_000u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    std::fs::write(&big, &bytes).unwrap();
    ok(&aws(
        &bin,
        &s,
        "us-east-1",
        &[
            "s3",
            "cp",
            "--no-progress",
            small.to_str().unwrap(),
            "s3://art-us-east-1/a/b/small.txt",
        ],
    ));
    ok(&aws(
        &bin,
        &s,
        "eu-west-1",
        &[
            "s3",
            "cp",
            "--no-progress",
            big.to_str().unwrap(),
            "s3://art-eu-west-1/big.bin",
        ],
    ));

    let listing = ok(&aws(
        &bin,
        &s,
        "us-east-1",
        &["s3", "ls", "--recursive", "s3://art-us-east-1"],
    ));
    assert!(
        listing.contains("a/b/small.txt") && !listing.contains(".meridian"),
        "{listing}"
    );
    let top = ok(&aws(&bin, &s, "us-east-1", &["s3", "ls", "s3://art-us-east-1"]));
    assert!(top.contains("PRE a/"), "delimiter listing: {top}");
    // Asked in the wrong region, S3 redirects and the CLI follows.
    let eu = ok(&aws(&bin, &s, "us-east-1", &["s3", "ls", "s3://art-eu-west-1"]));
    assert!(eu.contains("20000000 big.bin"), "{eu}");

    let back = tmp.path().join("back.bin");
    ok(&aws(
        &bin,
        &s,
        "eu-west-1",
        &[
            "s3",
            "cp",
            "--no-progress",
            "s3://art-eu-west-1/big.bin",
            back.to_str().unwrap(),
        ],
    ));
    assert!(std::fs::read(&back).unwrap() == bytes, "the downloaded object differs");

    // The object is where the artifact stores keep it: a pipeline sees what `aws s3 cp` wrote.
    assert_eq!(
        std::fs::read(s.data.join("s3/art-us-east-1/a/b/small.txt")).unwrap(),
        b"hello\n"
    );

    let loc = json(&aws(
        &bin,
        &s,
        "us-east-1",
        &["s3api", "get-bucket-location", "--bucket", "art-eu-west-1"],
    ));
    assert_eq!(loc["LocationConstraint"], "eu-west-1");
    let head = json(&aws(
        &bin,
        &s,
        "eu-west-1",
        &["s3api", "head-object", "--bucket", "art-eu-west-1", "--key", "big.bin"],
    ));
    assert_eq!(head["ContentLength"], 20_000_000);
    let range = tmp.path().join("range.bin");
    ok(&aws(
        &bin,
        &s,
        "eu-west-1",
        &[
            "s3api",
            "get-object",
            "--bucket",
            "art-eu-west-1",
            "--key",
            "big.bin",
            "--range",
            "bytes=100-199",
            range.to_str().unwrap(),
        ],
    ));
    assert_eq!(std::fs::read(&range).unwrap(), bytes[100..200]);
    let e = err(&aws(
        &bin,
        &s,
        "us-east-1",
        &["s3api", "head-object", "--bucket", "art-us-east-1", "--key", "nope"],
    ));
    assert!(e.contains("404"), "{e}");
    let e = err(&aws(
        &bin,
        &s,
        "us-east-1",
        &["s3", "cp", "s3://art-us-east-1/missing.txt", "-"],
    ));
    assert!(
        e.contains("404") || e.contains("NoSuchKey") || e.contains("Not Found"),
        "{e}"
    );

    ok(&aws(
        &bin,
        &s,
        "us-east-1",
        &[
            "s3",
            "cp",
            "--no-progress",
            "s3://art-eu-west-1/big.bin",
            "s3://art-us-east-1/copy.bin",
        ],
    ));
    assert_eq!(
        std::fs::read(s.data.join("s3/art-us-east-1/copy.bin")).unwrap().len(),
        20_000_000
    );
    let e = err(&aws(&bin, &s, "us-east-1", &["s3", "rb", "s3://art-us-east-1"]));
    assert!(e.contains("BucketNotEmpty"), "{e}");
    ok(&aws(
        &bin,
        &s,
        "us-east-1",
        &["s3", "rm", "--recursive", "s3://art-us-east-1"],
    ));
    ok(&aws(&bin, &s, "us-east-1", &["s3", "rb", "s3://art-us-east-1"]));
    assert!(!s.data.join("s3/art-us-east-1").exists());
}

#[test]
fn ssm_secrets_and_sts_answer_as_aws_does() {
    let Some(bin) = venv_bin() else { return };
    let s = serve(&[]);
    let put = json(&aws(
        &bin,
        &s,
        "eu-west-1",
        &[
            "ssm",
            "put-parameter",
            "--name",
            "/app/bucket",
            "--value",
            "art-eu",
            "--type",
            "String",
        ],
    ));
    assert_eq!(put["Version"], 1);
    let e = err(&aws(
        &bin,
        &s,
        "eu-west-1",
        &[
            "ssm",
            "put-parameter",
            "--name",
            "/app/bucket",
            "--value",
            "x",
            "--type",
            "String",
        ],
    ));
    assert!(e.contains("ParameterAlreadyExists"), "{e}");
    let put = json(&aws(
        &bin,
        &s,
        "eu-west-1",
        &[
            "ssm",
            "put-parameter",
            "--name",
            "/app/bucket",
            "--value",
            "art-eu-2",
            "--overwrite",
        ],
    ));
    assert_eq!(put["Version"], 2);
    ok(&aws(
        &bin,
        &s,
        "eu-west-1",
        &[
            "ssm",
            "put-parameter",
            "--name",
            "/app/token",
            "--value",
            "s3cr3t",
            "--type",
            "SecureString",
        ],
    ));
    let got = json(&aws(
        &bin,
        &s,
        "eu-west-1",
        &["ssm", "get-parameter", "--name", "/app/bucket"],
    ));
    assert_eq!(got["Parameter"]["Value"], "art-eu-2");
    assert_eq!(got["Parameter"]["Version"], 2);
    let by_path = json(&aws(
        &bin,
        &s,
        "eu-west-1",
        &["ssm", "get-parameters-by-path", "--path", "/app", "--with-decryption"],
    ));
    let names: Vec<&str> = by_path["Parameters"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["Name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["/app/bucket", "/app/token"]);
    assert_eq!(by_path["Parameters"][1]["Type"], "SecureString");
    // Parameters belong to their region.
    let e = err(&aws(
        &bin,
        &s,
        "us-east-1",
        &["ssm", "get-parameter", "--name", "/app/bucket"],
    ));
    assert!(e.contains("ParameterNotFound"), "{e}");
    ok(&aws(
        &bin,
        &s,
        "eu-west-1",
        &["ssm", "delete-parameter", "--name", "/app/bucket"],
    ));
    assert!(err(&aws(
        &bin,
        &s,
        "eu-west-1",
        &["ssm", "delete-parameter", "--name", "/app/bucket"]
    ))
    .contains("ParameterNotFound"));

    // A secret put with `meridian secrets` is read with the AWS CLI.
    let mut put = Command::new(env!("CARGO_BIN_EXE_meridian"))
        .arg("--data-dir")
        .arg(&s.data)
        .args(["secrets", "put", "--region", "eu-west-1", "db-password", "hunter2"])
        .output()
        .unwrap();
    put.stdout.clear();
    ok(&put);
    let secret = json(&aws(
        &bin,
        &s,
        "eu-west-1",
        &["secretsmanager", "get-secret-value", "--secret-id", "db-password"],
    ));
    assert_eq!(secret["SecretString"], "hunter2");
    assert!(err(&aws(
        &bin,
        &s,
        "eu-west-1",
        &["secretsmanager", "get-secret-value", "--secret-id", "nope"]
    ))
    .contains("ResourceNotFoundException"));

    let who = json(&aws(&bin, &s, "us-east-1", &["sts", "get-caller-identity"]));
    assert_eq!(who["Account"], "123456789012");
    let role = json(&aws(
        &bin,
        &s,
        "us-east-1",
        &[
            "sts",
            "assume-role",
            "--role-arn",
            "arn:aws:iam::210987654321:role/deployer",
            "--role-session-name",
            "ci",
        ],
    ));
    assert_eq!(
        role["AssumedRoleUser"]["Arn"],
        "arn:aws:sts::210987654321:assumed-role/deployer/ci"
    );
    assert_eq!(role["Credentials"]["AccessKeyId"], "MERIDIANLOCAL");

    // An operation not served gets the protocol's error shape, naming what is.
    let e = err(&aws(&bin, &s, "us-east-1", &["ssm", "describe-parameters"]));
    assert!(e.contains("InvalidAction") && e.contains("GetParameter"), "{e}");
    let e = err(&aws(&bin, &s, "us-east-1", &["sts", "get-session-token"]));
    assert!(e.contains("GetCallerIdentity"), "{e}");
    let e = err(&aws(&bin, &s, "us-east-1", &["dynamodb", "list-tables"]));
    assert!(e.contains("do not serve the `dynamodb` API"), "{e}");
}

const TEMPLATE: &str = r#"AWSTemplateFormatVersion: '2010-09-09'
Transform: AWS::Serverless-2016-10-31
Parameters:
  Greeting:
    Type: String
    Default: hello
Resources:
  Fn:
    Type: AWS::Serverless::Function
    Properties:
      CodeUri: src/
      Handler: index.handler
      Runtime: nodejs20.x
      AutoPublishAlias: live
      Environment:
        Variables:
          GREETING: !Ref Greeting
  Errors:
    Type: AWS::CloudWatch::Alarm
    Properties:
      Namespace: AWS/Lambda
      MetricName: Errors
      Dimensions:
        - Name: FunctionName
          Value: !Ref Fn
      Statistic: Sum
      Period: 60
      EvaluationPeriods: 1
      Threshold: 0
      ComparisonOperator: GreaterThanThreshold
      TreatMissingData: notBreaching
Outputs:
  FunctionName:
    Value: !Ref Fn
"#;

const HANDLER: &str =
    "exports.handler = async () => ({ greeting: process.env.GREETING, region: process.env.AWS_REGION });\n";

fn app(dir: &Path) {
    std::fs::create_dir_all(dir.join("src")).unwrap();
    std::fs::write(dir.join("template.yaml"), TEMPLATE).unwrap();
    std::fs::write(dir.join("src/index.js"), HANDLER).unwrap();
}

#[test]
fn aws_cloudformation_package_and_deploy_create_and_update_a_local_stack() {
    let Some(bin) = venv_bin() else { return };
    let s = serve(&[]);
    let tmp = tempfile::tempdir().unwrap();
    app(tmp.path());
    let packaged = tmp.path().join("packaged.yaml");
    ok(&aws(&bin, &s, "eu-west-1", &["s3", "mb", "s3://art-eu-west-1"]));
    let mut c = client(&bin, &s, "aws", "eu-west-1");
    c.current_dir(tmp.path());
    ok(&c
        .args([
            "cloudformation",
            "package",
            "--template-file",
            "template.yaml",
            "--s3-bucket",
            "art-eu-west-1",
            "--output-template-file",
        ])
        .arg(&packaged)
        .output()
        .unwrap());
    let text = std::fs::read_to_string(&packaged).unwrap();
    assert!(text.contains("CodeUri: s3://art-eu-west-1/"), "{text}");

    let deploy = |greeting: &str| {
        aws(
            &bin,
            &s,
            "eu-west-1",
            &[
                "cloudformation",
                "deploy",
                "--template-file",
                packaged.to_str().unwrap(),
                "--stack-name",
                "app",
                "--capabilities",
                "CAPABILITY_IAM",
                "--parameter-overrides",
                &format!("Greeting={greeting}"),
            ],
        )
    };
    let out = ok(&deploy("hello"));
    assert!(out.contains("Successfully created/updated stack - app"), "{out}");
    let d = json(&aws(
        &bin,
        &s,
        "eu-west-1",
        &["cloudformation", "describe-stacks", "--stack-name", "app"],
    ));
    assert_eq!(d["Stacks"][0]["StackStatus"], "CREATE_COMPLETE");
    let function = d["Stacks"][0]["Outputs"][0]["OutputValue"]
        .as_str()
        .unwrap()
        .to_string();

    let invoke = |name: &str| {
        let out = tmp.path().join("out.json");
        ok(&aws(
            &bin,
            &s,
            "eu-west-1",
            &["lambda", "invoke", "--function-name", name, out.to_str().unwrap()],
        ));
        serde_json::from_str::<Value>(&std::fs::read_to_string(&out).unwrap()).unwrap()
    };
    assert_eq!(invoke(&format!("{function}:live"))["greeting"], "hello");

    // An update through a change set (a configuration change: $LATEST has it; the `live` alias
    // stays on its version, as SAM publishes versions for code changes); the same template again
    // is "No changes".
    ok(&deploy("bonjour"));
    let d = json(&aws(
        &bin,
        &s,
        "eu-west-1",
        &["cloudformation", "describe-stacks", "--stack-name", "app"],
    ));
    assert_eq!(d["Stacks"][0]["StackStatus"], "UPDATE_COMPLETE");
    assert_eq!(d["Stacks"][0]["Parameters"][0]["ParameterValue"], "bonjour");
    assert_eq!(invoke(&function)["greeting"], "bonjour");
    let e = err(&deploy("bonjour"));
    assert!(e.contains("No changes to deploy"), "{e}");

    let events = json(&aws(
        &bin,
        &s,
        "eu-west-1",
        &["cloudformation", "describe-stack-events", "--stack-name", "app"],
    ));
    assert_eq!(
        events["StackEvents"][0]["ResourceStatus"], "UPDATE_COMPLETE",
        "newest first"
    );
    let resources = json(&aws(
        &bin,
        &s,
        "eu-west-1",
        &["cloudformation", "describe-stack-resources", "--stack-name", "app"],
    ));
    assert!(resources["StackResources"]
        .as_array()
        .unwrap()
        .iter()
        .any(|r| r["ResourceType"] == "AWS::Lambda::Alias"));
    let t = json(&aws(
        &bin,
        &s,
        "eu-west-1",
        &["cloudformation", "get-template", "--stack-name", "app"],
    ));
    assert!(t["TemplateBody"].to_string().contains("art-eu-west-1"), "{t}");
    // The stack is in eu-west-1 only.
    let e = err(&aws(
        &bin,
        &s,
        "us-east-1",
        &["cloudformation", "describe-stacks", "--stack-name", "app"],
    ));
    assert!(e.contains("ValidationError") && e.contains("does not exist"), "{e}");

    ok(&aws(
        &bin,
        &s,
        "eu-west-1",
        &["cloudformation", "delete-stack", "--stack-name", "app"],
    ));
    ok(&aws(
        &bin,
        &s,
        "eu-west-1",
        &["cloudformation", "wait", "stack-delete-complete", "--stack-name", "app"],
    ));
}

#[test]
fn bad_requests_get_aws_errors_and_the_server_keeps_serving() {
    let Some(bin) = venv_bin() else { return };
    let s = serve(&[]);
    let code = format!(
        r##"
import boto3, botocore, urllib.request, json
url = {url:?}
kw = dict(endpoint_url=url, region_name="us-east-1", aws_access_key_id="MERIDIANLOCAL", aws_secret_access_key="meridian-local")
s3 = boto3.client("s3", **kw)
cfn = boto3.client("cloudformation", **kw)
out = {{}}
def code_of(f):
    try:
        f()
        return "ok"
    except botocore.exceptions.ClientError as e:
        return e.response["Error"]["Code"]
out["no_bucket"] = code_of(lambda: s3.put_object(Bucket="nope", Key="k", Body=b"x"))
s3.create_bucket(Bucket="bkt1")
out["bad_md5"] = code_of(lambda: s3.put_object(Bucket="bkt1", Key="k", Body=b"x", ContentMD5="AAAAAAAAAAAAAAAAAAAAAA=="))
out["no_key"] = code_of(lambda: s3.get_object(Bucket="bkt1", Key="missing"))
out["bad_upload"] = code_of(lambda: s3.upload_part(Bucket="bkt1", Key="k", UploadId="ffff", PartNumber=1, Body=b"x"))
out["bad_template"] = code_of(lambda: cfn.validate_template(TemplateBody="Resources: [unclosed"))
out["too_big"] = code_of(lambda: cfn.create_stack(StackName="s", TemplateBody="#" * 60000))
out["no_stack"] = code_of(lambda: cfn.describe_stacks(StackName="nope"))
try:
    cfn.create_change_set(StackName="odd", ChangeSetName="c", ChangeSetType="CREATE",
        TemplateBody="Resources:\n  Q:\n    Type: AWS::AppSync::GraphQLApi\n    Properties: {{Name: x, AuthenticationType: API_KEY}}\n")
    out["unsupported"] = "accepted"
except botocore.exceptions.ClientError as e:
    out["unsupported"] = e.response["Error"]["Message"]
out["unknown_op"] = code_of(lambda: cfn.describe_account_limits())
# malformed bodies, raw
def raw(body, headers):
    req = urllib.request.Request(url + "/", data=body, headers=headers, method="POST")
    try:
        with urllib.request.urlopen(req) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()
out["bad_form"] = raw(b"%%%", {{"Content-Type": "application/x-www-form-urlencoded"}})
out["bad_json"] = raw(b"{{not json", {{"Content-Type": "application/x-amz-json-1.1", "X-Amz-Target": "AmazonSSM.GetParameter"}})
req = urllib.request.Request(url + "/bkt1?delete", data=b"<Delete><Object>", method="POST")
try:
    urllib.request.urlopen(req)
    out["bad_xml"] = "ok"
except urllib.error.HTTPError as e:
    out["bad_xml"] = e.code
s3.put_object(Bucket="bkt1", Key="after", Body=b"still serving")
out["after"] = s3.get_object(Bucket="bkt1", Key="after")["Body"].read().decode()
ssm = boto3.client("ssm", **kw)
ssm.put_parameter(Name="/b/p", Value="v", Type="String")
out["ssm_value"] = ssm.get_parameter(Name="/b/p")["Parameter"]["Value"]
out["ssm_missing"] = code_of(lambda: ssm.get_parameter(Name="/b/none"))
# An upload that announces more than S3's 5 GiB limit is refused before its body is read.
import socket
host, port = url.replace("http://", "").split(":")
sock = socket.create_connection((host, int(port)))
sock.sendall(b"PUT /bkt1/huge HTTP/1.1\r\nHost: x\r\nContent-Length: 5368709121\r\n\r\nxxxx")
sock.settimeout(10)
answer = b""
while b"</Error>" not in answer:
    chunk = sock.recv(65536)
    if not chunk:
        break
    answer += chunk
sock.close()
out["too_large"] = answer.decode(errors="replace")
# A query body over 1 MiB.
out["big_query"] = raw(b"Action=DescribeStacks&Version=2010-05-15&x=" + b"a" * (1024 * 1024 + 10), {{"Content-Type": "application/x-www-form-urlencoded"}})[0]
print(json.dumps(out))
"##,
        url = s.url
    );
    let o = Command::new(bin.join("python")).arg("-c").arg(&code).output().unwrap();
    let v: Value = serde_json::from_str(&ok(&o)).unwrap();
    assert_eq!(v["no_bucket"], "NoSuchBucket");
    assert_eq!(v["bad_md5"], "BadDigest");
    assert_eq!(v["no_key"], "NoSuchKey");
    assert_eq!(v["bad_upload"], "NoSuchUpload");
    assert_eq!(v["bad_template"], "ValidationError");
    assert_eq!(v["too_big"], "ValidationError");
    assert_eq!(v["no_stack"], "ValidationError");
    let unsupported = v["unsupported"].as_str().unwrap();
    assert!(
        unsupported.starts_with("the template:")
            && unsupported.contains("AWS::AppSync::GraphQLApi")
            && unsupported.contains("meridian stack deploy --allow-unsupported")
            && !unsupported.contains("endpoint/templates"),
        "{unsupported}"
    );
    assert_eq!(v["unknown_op"], "InvalidAction");
    assert_eq!(v["bad_form"][0], 400, "{v}");
    assert!(v["bad_form"][1].as_str().unwrap().contains("MissingAction"), "{v}");
    assert_eq!(v["bad_json"][0], 400);
    assert!(
        v["bad_json"][1].as_str().unwrap().contains("SerializationException"),
        "{v}"
    );
    assert_eq!(v["bad_xml"], 400, "{v}");
    assert_eq!(v["after"], "still serving");
    assert_eq!(v["ssm_value"], "v");
    assert_eq!(v["ssm_missing"], "ParameterNotFound");
    assert!(v["too_large"].as_str().unwrap().contains("EntityTooLarge"), "{v}");
    assert_eq!(v["big_query"], 413);
}

#[test]
fn require_auth_refuses_unsigned_and_foreign_credentials() {
    let Some(bin) = venv_bin() else { return };
    let s = serve(&["--require-auth"]);
    ok(&aws(&bin, &s, "us-east-1", &["s3", "mb", "s3://signed"]));
    ok(&aws(&bin, &s, "us-east-1", &["sts", "get-caller-identity"]));
    let mut c = client(&bin, &s, "aws", "us-east-1");
    c.env("AWS_ACCESS_KEY_ID", "AKIAOTHER")
        .env("AWS_SECRET_ACCESS_KEY", "other");
    let e = err(&c.args(["s3", "ls", "s3://signed"]).output().unwrap());
    assert!(e.contains("InvalidAccessKeyId"), "{e}");
    let mut c = client(&bin, &s, "aws", "us-east-1");
    c.env("AWS_ACCESS_KEY_ID", "AKIAOTHER")
        .env("AWS_SECRET_ACCESS_KEY", "other");
    let e = err(&c.args(["ssm", "get-parameter", "--name", "x"]).output().unwrap());
    assert!(e.contains("UnrecognizedClientException"), "{e}");
    let e = err(&aws(
        &bin,
        &s,
        "us-east-1",
        &["s3", "ls", "s3://signed", "--no-sign-request"],
    ));
    assert!(e.contains("AccessDenied"), "{e}");
    // Without --require-auth, other credentials are served.
    let open = serve(&[]);
    ok(&aws(&bin, &open, "us-east-1", &["s3", "mb", "s3://open"]));
    let mut c = client(&bin, &open, "aws", "us-east-1");
    c.env("AWS_ACCESS_KEY_ID", "AKIAOTHER")
        .env("AWS_SECRET_ACCESS_KEY", "other");
    ok(&c.args(["s3", "ls", "s3://open"]).output().unwrap());
}

fn git(dir: &Path, args: &[&str]) {
    let out = Command::new("git")
        .args(["-c", "user.email=dev@example.com", "-c", "user.name=Dev"])
        .args(args)
        .current_dir(dir)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "git {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The multi-region pattern: one build packages the template once per region with the AWS CLI
/// into that region's bucket; CloudFormation actions deploy each region's packaged template.
#[test]
fn a_buildspec_that_packages_with_the_aws_cli_per_region_deploys_to_two_regions() {
    let Some(bin) = venv_bin() else { return };
    let tmp = tempfile::tempdir().unwrap();
    let repo_dir = tmp.path().join("app");
    app(&repo_dir);
    std::fs::write(
        repo_dir.join("buildspec.yml"),
        "version: 0.2\nphases:\n  build:\n    commands:\n      - chmod u+x ./multiregion-build.sh\n      - ./multiregion-build.sh\nartifacts:\n  discard-paths: yes\n  files:\n    - target/packaged-template-us-east-1.yaml\n    - target/packaged-template-eu-west-1.yaml\n",
    )
    .unwrap();
    std::fs::write(
        repo_dir.join("multiregion-build.sh"),
        "#!/bin/bash\nset -euo pipefail\nmkdir -p target\nfor region in us-east-1 eu-west-1; do\n  aws cloudformation package --template-file template.yaml --s3-bucket \"orders-artifacts-$region\" --output-template-file \"target/packaged-template-$region.yaml\" --region \"$region\"\ndone\n",
    )
    .unwrap();
    git(&repo_dir, &["init", "-q", "-b", "main"]);
    git(&repo_dir, &["add", "."]);
    git(&repo_dir, &["commit", "-q", "-m", "first"]);
    let deploy = |region: &str| {
        serde_json::json!({"name": format!("Deploy-{region}"), "region": region, "runOrder": 1,
            "actionTypeId": {"category": "Deploy", "owner": "AWS", "provider": "CloudFormation", "version": "1"},
            "configuration": {"ActionMode": "CREATE_UPDATE", "StackName": "orders", "Capabilities": "CAPABILITY_IAM,CAPABILITY_AUTO_EXPAND",
                "TemplatePath": format!("BuildOutput::packaged-template-{region}.yaml")},
            "inputArtifacts": [{"name": "BuildOutput"}]})
    };
    let pipeline = serde_json::json!({"pipeline": {"name": "orders", "roleArn": "arn:aws:iam::123456789012:role/pipeline",
        "artifactStores": {
            "us-east-1": {"type": "S3", "location": "orders-artifacts-us-east-1"},
            "eu-west-1": {"type": "S3", "location": "orders-artifacts-eu-west-1"}},
        "stages": [
            {"name": "Source", "actions": [{"name": "Source", "region": "us-east-1",
                "actionTypeId": {"category": "Source", "owner": "AWS", "provider": "CodeCommit", "version": "1"},
                "configuration": {"RepositoryName": "orders", "BranchName": "main"}, "outputArtifacts": [{"name": "SourceArtifact"}]}]},
            {"name": "Build", "actions": [{"name": "Build", "region": "us-east-1",
                "actionTypeId": {"category": "Build", "owner": "AWS", "provider": "CodeBuild", "version": "1"},
                "configuration": {"ProjectName": "orders-build"},
                "inputArtifacts": [{"name": "SourceArtifact"}], "outputArtifacts": [{"name": "BuildOutput"}]}]},
            {"name": "Deploy", "actions": [deploy("us-east-1"), deploy("eu-west-1")]}]}});
    let file = tmp.path().join("pipeline.json");
    std::fs::write(&file, serde_json::to_string_pretty(&pipeline).unwrap()).unwrap();
    let data = tmp.path().join("data");
    // The build finds the AWS CLI on its PATH, as in a CodeBuild image.
    let path = format!("{}:{}", bin.display(), std::env::var("PATH").unwrap_or_default());
    let meridian = |args: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_meridian"))
            .arg("--data-dir")
            .arg(&data)
            .args(args)
            .env("PATH", &path)
            .env_remove("AWS_ENDPOINT_URL")
            .env_remove("AWS_PROFILE")
            .current_dir(tmp.path())
            .output()
            .unwrap()
    };
    let repo = format!("orders={}", repo_dir.display());
    let run = meridian(&["run", file.to_str().unwrap(), "--repo", &repo]);
    let log = meridian(&["logs", "latest", "Build"]);
    assert!(
        run.status.success(),
        "run failed:\n{}\n{}\nbuild log:\n{}{}",
        String::from_utf8_lossy(&run.stdout),
        String::from_utf8_lossy(&run.stderr),
        String::from_utf8_lossy(&log.stdout),
        String::from_utf8_lossy(&log.stderr)
    );
    // Each region's code went to its own bucket, uploaded by the AWS CLI through the endpoint.
    for region in ["us-east-1", "eu-west-1"] {
        let bucket = data.join("s3").join(format!("orders-artifacts-{region}"));
        let uploaded = std::fs::read_dir(&bucket)
            .unwrap()
            .flatten()
            .filter(|e| e.file_name().to_string_lossy().len() == 32)
            .count();
        assert!(uploaded >= 1, "no packaged code in {}", bucket.display());
        let out = meridian(&[
            "--output",
            "json",
            "stack",
            "outputs",
            "--stack-name",
            "orders",
            "--region",
            region,
        ]);
        let outputs: Value =
            serde_json::from_slice(&out.stdout).unwrap_or_else(|_| panic!("{}", String::from_utf8_lossy(&out.stderr)));
        let function = outputs["FunctionName"].as_str().unwrap().to_string();
        let inv = meridian(&["lambda", "invoke", "--region", region, &format!("{function}:live")]);
        let answer = String::from_utf8_lossy(&inv.stdout).into_owned();
        assert!(
            answer.contains(&format!("\"region\":\"{region}\"")) && answer.contains("hello"),
            "{answer}\n{}",
            String::from_utf8_lossy(&inv.stderr)
        );
    }
}

/// The SAM CLI's directory (`.venv-sam/bin`), or `None` to skip.
fn sam_bin() -> Option<PathBuf> {
    peer_bin(".venv-sam", "sam", "the SAM CLI")
}

#[test]
fn sam_package_and_sam_deploy_deploy_to_a_local_region() {
    let (Some(bin), Some(sam)) = (venv_bin(), sam_bin()) else {
        return;
    };
    let s = serve(&[]);
    let tmp = tempfile::tempdir().unwrap();
    app(tmp.path());
    ok(&aws(
        &bin,
        &s,
        "ap-southeast-2",
        &["s3", "mb", "s3://sam-art-ap-southeast-2", "--region", "ap-southeast-2"],
    ));
    let sam_cmd = |args: &[&str]| {
        let mut c = client(&sam, &s, "sam", "ap-southeast-2");
        c.env("SAM_CLI_TELEMETRY", "0")
            .env("HOME", tmp.path())
            .current_dir(tmp.path())
            .args(args);
        c.output().unwrap()
    };
    let out = ok(&sam_cmd(&[
        "package",
        "--template-file",
        "template.yaml",
        "--s3-bucket",
        "sam-art-ap-southeast-2",
        "--output-template-file",
        "packaged.yaml",
    ]));
    assert!(out.contains("Successfully packaged"), "{out}");
    let deploy = |greeting: &str| {
        sam_cmd(&[
            "deploy",
            "--template-file",
            "packaged.yaml",
            "--stack-name",
            "samapp",
            "--s3-bucket",
            "sam-art-ap-southeast-2",
            "--capabilities",
            "CAPABILITY_IAM",
            "--no-confirm-changeset",
            "--region",
            "ap-southeast-2",
            "--parameter-overrides",
            &format!("Greeting={greeting}"),
        ])
    };
    let out = ok(&deploy("g'day"));
    assert!(
        out.contains("Successfully created/updated stack - samapp in ap-southeast-2"),
        "{out}"
    );
    // sam deploy prints the change set and the stack's events as they come.
    assert!(
        out.contains("AWS::Lambda::Function") && out.contains("CREATE_COMPLETE"),
        "{out}"
    );
    let d = json(&aws(
        &bin,
        &s,
        "ap-southeast-2",
        &["cloudformation", "describe-stacks", "--stack-name", "samapp"],
    ));
    assert_eq!(d["Stacks"][0]["StackStatus"], "CREATE_COMPLETE");
    let function = d["Stacks"][0]["Outputs"][0]["OutputValue"]
        .as_str()
        .unwrap()
        .to_string();
    let result = tmp.path().join("out.json");
    ok(&aws(
        &bin,
        &s,
        "ap-southeast-2",
        &[
            "lambda",
            "invoke",
            "--function-name",
            &format!("{function}:live"),
            result.to_str().unwrap(),
        ],
    ));
    let answer: Value = serde_json::from_str(&std::fs::read_to_string(&result).unwrap()).unwrap();
    assert_eq!(
        answer,
        serde_json::json!({"greeting": "g'day", "region": "ap-southeast-2"})
    );
    // An update, then nothing to change.
    ok(&deploy("hello"));
    let e = String::from_utf8_lossy(&deploy("hello").stdout).into_owned()
        + &String::from_utf8_lossy(&deploy("hello").stderr);
    assert!(e.contains("No changes to deploy"), "{e}");
    // `--resolve-s3` (what `sam deploy --guided` writes): SAM's managed stack makes its bucket in
    // the local S3, tagged as SAM checks, and the unpackaged template is packaged into it.
    let out = ok(&sam_cmd(&[
        "deploy",
        "--template-file",
        "template.yaml",
        "--stack-name",
        "resolved",
        "--resolve-s3",
        "--capabilities",
        "CAPABILITY_IAM",
        "--no-confirm-changeset",
        "--region",
        "ap-southeast-2",
    ]));
    assert!(
        out.contains("Successfully created/updated stack - resolved in ap-southeast-2"),
        "{out}"
    );
    let managed = json(&aws(
        &bin,
        &s,
        "ap-southeast-2",
        &[
            "cloudformation",
            "describe-stacks",
            "--stack-name",
            "aws-sam-cli-managed-default",
        ],
    ));
    assert_eq!(
        managed["Stacks"][0]["Tags"][0]["Key"], "ManagedStackSource",
        "{managed}"
    );
}

#[test]
fn cloudwatch_metrics_and_alarms_come_from_the_local_region() {
    let Some(bin) = venv_bin() else { return };
    let s = serve(&[]);
    let tmp = tempfile::tempdir().unwrap();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    let (start, end) = ((now - 600).to_string(), (now + 600).to_string());
    let query = |ns: &str, metric: &str, dims: &str, stat: &str| {
        format!(
            r#"[{{"Id":"q","MetricStat":{{"Metric":{{"Namespace":"{ns}","MetricName":"{metric}","Dimensions":{dims}}},"Period":60,"Stat":"{stat}"}}}}]"#
        )
    };
    // Custom metrics: put, then read back by statistic.
    ok(&aws(
        &bin,
        &s,
        "eu-west-1",
        &[
            "cloudwatch",
            "put-metric-data",
            "--namespace",
            "App",
            "--metric-data",
            r#"[{"MetricName":"Latency","Dimensions":[{"Name":"Service","Value":"api"}],"Values":[10,20],"Counts":[1,3]}]"#,
        ],
    ));
    let dims = r#"[{"Name":"Service","Value":"api"}]"#;
    let get = |q: String| {
        json(&aws(
            &bin,
            &s,
            "eu-west-1",
            &[
                "cloudwatch",
                "get-metric-data",
                "--start-time",
                &start,
                "--end-time",
                &end,
                "--metric-data-queries",
                &q,
            ],
        ))
    };
    let avg = get(query("App", "Latency", dims, "Average"));
    assert_eq!(
        avg["MetricDataResults"][0]["Values"],
        serde_json::json!([17.5]),
        "{avg}"
    );
    let n = get(query("App", "Latency", dims, "SampleCount"));
    assert_eq!(n["MetricDataResults"][0]["Values"], serde_json::json!([4.0]));
    // Metrics belong to their region.
    let other = json(&aws(
        &bin,
        &s,
        "us-east-1",
        &[
            "cloudwatch",
            "get-metric-data",
            "--start-time",
            &start,
            "--end-time",
            &end,
            "--metric-data-queries",
            &query("App", "Latency", dims, "Sum"),
        ],
    ));
    assert_eq!(other["MetricDataResults"][0]["Values"], serde_json::json!([]));
    let e = err(&aws(
        &bin,
        &s,
        "eu-west-1",
        &[
            "cloudwatch",
            "put-metric-data",
            "--namespace",
            "AWS/Lambda",
            "--metric-name",
            "X",
            "--value",
            "1",
        ],
    ));
    assert!(e.contains("InvalidParameterValue"), "{e}");

    // Lambda's own metrics and the stack's alarm, after three calls.
    app(tmp.path());
    let packaged = tmp.path().join("packaged.yaml");
    ok(&aws(&bin, &s, "eu-west-1", &["s3", "mb", "s3://cw-eu-west-1"]));
    let mut c = client(&bin, &s, "aws", "eu-west-1");
    c.current_dir(tmp.path());
    ok(&c
        .args([
            "cloudformation",
            "package",
            "--template-file",
            "template.yaml",
            "--s3-bucket",
            "cw-eu-west-1",
            "--output-template-file",
        ])
        .arg(&packaged)
        .output()
        .unwrap());
    ok(&aws(
        &bin,
        &s,
        "eu-west-1",
        &[
            "cloudformation",
            "deploy",
            "--template-file",
            packaged.to_str().unwrap(),
            "--stack-name",
            "cw",
            "--capabilities",
            "CAPABILITY_IAM",
        ],
    ));
    let d = json(&aws(
        &bin,
        &s,
        "eu-west-1",
        &["cloudformation", "describe-stacks", "--stack-name", "cw"],
    ));
    let function = d["Stacks"][0]["Outputs"][0]["OutputValue"]
        .as_str()
        .unwrap()
        .to_string();
    let out = tmp.path().join("out.json");
    for _ in 0..3 {
        ok(&aws(
            &bin,
            &s,
            "eu-west-1",
            &["lambda", "invoke", "--function-name", &function, out.to_str().unwrap()],
        ));
    }
    let fdims = format!(r#"[{{"Name":"FunctionName","Value":"{function}"}}]"#);
    let calls = get(query("AWS/Lambda", "Invocations", &fdims, "Sum"));
    let total: f64 = calls["MetricDataResults"][0]["Values"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_f64().unwrap())
        .sum();
    assert_eq!(total, 3.0, "{calls}");
    let p99 = get(query("AWS/Lambda", "Duration", &fdims, "p99"));
    assert!(
        p99["MetricDataResults"][0]["Values"][0].as_f64().unwrap() > 0.0,
        "{p99}"
    );
    let alarms = json(&aws(&bin, &s, "eu-west-1", &["cloudwatch", "describe-alarms"]));
    let a = &alarms["MetricAlarms"][0];
    assert_eq!(a["StateValue"], "OK", "{alarms}");
    assert_eq!(a["MetricName"], "Errors");
    assert_eq!(a["Threshold"], 0.0);
    let none = json(&aws(
        &bin,
        &s,
        "eu-west-1",
        &["cloudwatch", "describe-alarms", "--state-value", "ALARM"],
    ));
    assert_eq!(none["MetricAlarms"], serde_json::json!([]));
}

/// A change set made while the stack is being updated (a canary shift takes minutes) is refused
/// as CloudFormation refuses it, and the update goes on.
#[test]
fn a_change_set_on_a_stack_being_updated_is_refused() {
    let Some(bin) = venv_bin() else { return };
    let s = serve(&[]);
    let tmp = tempfile::tempdir().unwrap();
    app(tmp.path());
    let canary = TEMPLATE.replace(
        "      AutoPublishAlias: live\n",
        "      AutoPublishAlias: live\n      DeploymentPreference:\n        Type: Canary10Percent5Minutes\n",
    );
    std::fs::write(tmp.path().join("template.yaml"), canary).unwrap();
    ok(&aws(&bin, &s, "eu-west-1", &["s3", "mb", "s3://upd-eu-west-1"]));
    let package = |out: &str| {
        let mut c = client(&bin, &s, "aws", "eu-west-1");
        c.current_dir(tmp.path());
        ok(&c
            .args([
                "cloudformation",
                "package",
                "--template-file",
                "template.yaml",
                "--s3-bucket",
                "upd-eu-west-1",
                "--output-template-file",
                out,
            ])
            .output()
            .unwrap());
        tmp.path().join(out)
    };
    let v1 = package("v1.yaml");
    ok(&aws(
        &bin,
        &s,
        "eu-west-1",
        &[
            "cloudformation",
            "deploy",
            "--template-file",
            v1.to_str().unwrap(),
            "--stack-name",
            "app",
            "--capabilities",
            "CAPABILITY_IAM",
        ],
    ));
    std::fs::write(
        tmp.path().join("src/index.js"),
        HANDLER.replace("greeting:", "release: 2, greeting:"),
    )
    .unwrap();
    let v2 = package("v2.yaml");
    let body = format!("file://{}", v2.display());
    let change_set = |name: &str| {
        aws(
            &bin,
            &s,
            "eu-west-1",
            &[
                "cloudformation",
                "create-change-set",
                "--stack-name",
                "app",
                "--change-set-name",
                name,
                "--template-body",
                &body,
                "--capabilities",
                "CAPABILITY_IAM",
            ],
        )
    };
    ok(&change_set("v2"));
    ok(&aws(
        &bin,
        &s,
        "eu-west-1",
        &[
            "cloudformation",
            "wait",
            "change-set-create-complete",
            "--stack-name",
            "app",
            "--change-set-name",
            "v2",
        ],
    ));
    ok(&aws(
        &bin,
        &s,
        "eu-west-1",
        &[
            "cloudformation",
            "execute-change-set",
            "--stack-name",
            "app",
            "--change-set-name",
            "v2",
        ],
    ));
    let d = json(&aws(
        &bin,
        &s,
        "eu-west-1",
        &["cloudformation", "describe-stacks", "--stack-name", "app"],
    ));
    assert_eq!(
        d["Stacks"][0]["StackStatus"], "UPDATE_IN_PROGRESS",
        "the canary takes minutes: {d}"
    );
    let e = err(&change_set("v3"));
    assert!(e.contains("ValidationError") && e.contains("UPDATE_IN_PROGRESS"), "{e}");
    // Executing the same change set again is refused too.
    let e = err(&aws(
        &bin,
        &s,
        "eu-west-1",
        &[
            "cloudformation",
            "execute-change-set",
            "--stack-name",
            "app",
            "--change-set-name",
            "v2",
        ],
    ));
    assert!(e.contains("InvalidChangeSetStatus"), "{e}");
    let d = json(&aws(
        &bin,
        &s,
        "eu-west-1",
        &["cloudformation", "describe-stacks", "--stack-name", "app"],
    ));
    assert_eq!(d["Stacks"][0]["StackStatus"], "UPDATE_IN_PROGRESS");
}

/// `aws cloudformation describe-change-set --include-property-values`: each changed property's
/// values before and after, and `{{changeSet:KNOWN_AFTER_APPLY}}` where the value comes from a
/// resource the change set replaces, as CloudFormation shows it.
#[test]
fn change_sets_show_property_values_and_known_after_apply() {
    let Some(bin) = venv_bin() else { return };
    let s = serve(&[]);
    let tmp = tempfile::tempdir().unwrap();
    let template = |name: &str, copy: &str| {
        format!("Resources:\n  Name:\n    Type: AWS::SSM::Parameter\n    Properties:\n      Name: {name}\n      Type: String\n      Value: one\n  Copy:\n    Type: AWS::SSM::Parameter\n    Properties:\n      Name: !Sub '${{Name}}-copy'\n      Type: String\n      Value: {copy}\n")
    };
    let write = |file: &str, text: &str| {
        let p = tmp.path().join(file);
        std::fs::write(&p, text).unwrap();
        format!("file://{}", p.display())
    };
    let v1 = tmp.path().join("v1.yaml");
    std::fs::write(&v1, template("/app/name", "first")).unwrap();
    ok(&aws(
        &bin,
        &s,
        "eu-west-1",
        &[
            "cloudformation",
            "deploy",
            "--template-file",
            v1.to_str().unwrap(),
            "--stack-name",
            "params",
        ],
    ));
    let body = write("v2.yaml", &template("/app/renamed", "second"));
    ok(&aws(
        &bin,
        &s,
        "eu-west-1",
        &[
            "cloudformation",
            "create-change-set",
            "--stack-name",
            "params",
            "--change-set-name",
            "cs",
            "--template-body",
            &body,
        ],
    ));
    let describe = |extra: &[&str]| {
        let mut args = vec![
            "cloudformation",
            "describe-change-set",
            "--stack-name",
            "params",
            "--change-set-name",
            "cs",
        ];
        args.extend_from_slice(extra);
        json(&aws(&bin, &s, "eu-west-1", &args))
    };
    let v = describe(&["--include-property-values"]);
    let change = |id: &str| {
        v["Changes"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["ResourceChange"]["LogicalResourceId"] == id)
            .unwrap_or_else(|| panic!("{v:#}"))["ResourceChange"]
            .clone()
    };
    let name = change("Name");
    assert_eq!(name["Replacement"], "True");
    let target = &name["Details"][0]["Target"];
    assert_eq!(target["Name"], "Name");
    assert_eq!(target["RequiresRecreation"], "Always");
    assert_eq!(target["BeforeValue"], "\"/app/name\"");
    assert_eq!(target["AfterValue"], "\"/app/renamed\"");
    let copy = change("Copy");
    assert_eq!(copy["Replacement"], "Conditional");
    let details = copy["Details"].as_array().unwrap();
    let of = |prop: &str| details.iter().find(|d| d["Target"]["Name"] == prop).unwrap()["Target"].clone();
    assert_eq!(of("Name")["AfterValue"], "\"{{changeSet:KNOWN_AFTER_APPLY}}\"");
    assert_eq!(of("Name")["RequiresRecreation"], "Conditionally");
    assert_eq!(of("Value")["BeforeValue"], "\"first\"");
    assert_eq!(of("Value")["AfterValue"], "\"second\"");
    let after: Value = serde_json::from_str(copy["AfterContext"].as_str().unwrap()).unwrap();
    assert_eq!(after["Name"], "{{changeSet:KNOWN_AFTER_APPLY}}");
    // without the flag: which properties, not their values
    let v = describe(&[]);
    let t = &v["Changes"][0]["ResourceChange"]["Details"][0]["Target"];
    assert!(t.get("AfterValue").is_none() && t["Attribute"] == "Properties", "{v:#}");
}
