//! `meridian bootstrap` against moto's server (the stand-in for AWS, in .venv-moto from
//! scripts/setup.sh), checked with boto3: each `backend: aws` region's bucket made once,
//! encrypted, versioned and private; a second run changes nothing; the dry run and the policy
//! change nothing; deletion refuses a bucket that holds artifacts unless --force.
#![cfg(feature = "aws")]

use std::path::Path;
use std::process::{Command, Output};

#[path = "../../meridian-aws/tests/support/moto_server.rs"]
mod moto_server;
use moto_server::{boto3, Moto};

fn moto() -> Option<Moto> {
    moto_server::start()
}

/// `meridian ARGS` in `dir` (its data in `dir/data`), against moto.
fn meridian_command(dir: &Path, moto: &Moto, args: &[&str]) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_meridian"));
    c.args(args)
        .current_dir(dir)
        .env("MERIDIAN_DATA_DIR", dir.join("data"))
        .env("AWS_ENDPOINT_URL", &moto.url)
        .env("AWS_ACCESS_KEY_ID", "testing")
        .env("AWS_SECRET_ACCESS_KEY", "testing")
        .env_remove("AWS_PROFILE");
    c
}

fn meridian(dir: &Path, moto: &Moto, args: &[&str]) -> Output {
    meridian_command(dir, moto, args).output().unwrap()
}

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

const PIPELINE: &str = r#"{
  "x-meridian": {"backend": "aws", "regions": {"ap-southeast-2": {"backend": "local"}}},
  "pipeline": {
    "name": "hello", "roleArn": "arn:aws:iam::123456789012:role/pipeline", "pipelineType": "V2",
    "artifactStores": {
      "us-east-1": {"type": "S3", "location": "hello-artifacts-use1"},
      "eu-west-1": {"type": "S3", "location": "hello-artifacts-euw1", "encryptionKey": {"id": "alias/hello", "type": "KMS"}},
      "ap-southeast-2": {"type": "S3", "location": "hello-artifacts-apse2"}
    },
    "stages": [
      {"name": "Source", "actions": [{"name": "Source", "region": "us-east-1",
        "actionTypeId": {"category": "Source", "owner": "AWS", "provider": "CodeCommit", "version": "1"},
        "configuration": {"RepositoryName": "hello", "BranchName": "main"}, "outputArtifacts": [{"name": "Code"}]}]},
      {"name": "Deploy", "actions": [
        {"name": "East", "region": "us-east-1", "inputArtifacts": [{"name": "Code"}],
          "actionTypeId": {"category": "Deploy", "owner": "AWS", "provider": "CloudFormation", "version": "1"},
          "configuration": {"ActionMode": "CREATE_UPDATE", "StackName": "hello", "TemplatePath": "Code::template.yaml", "RoleArn": "arn:aws:iam::123456789012:role/cfn"}},
        {"name": "West", "region": "eu-west-1", "inputArtifacts": [{"name": "Code"}],
          "actionTypeId": {"category": "Deploy", "owner": "AWS", "provider": "CloudFormation", "version": "1"},
          "configuration": {"ActionMode": "CREATE_UPDATE", "StackName": "hello", "TemplatePath": "Code::template.yaml", "RoleArn": "arn:aws:iam::123456789012:role/cfn"}},
        {"name": "South", "region": "ap-southeast-2", "inputArtifacts": [{"name": "Code"}],
          "actionTypeId": {"category": "Deploy", "owner": "AWS", "provider": "CloudFormation", "version": "1"},
          "configuration": {"ActionMode": "CREATE_UPDATE", "StackName": "hello", "TemplatePath": "Code::template.yaml", "RoleArn": "arn:aws:iam::123456789012:role/cfn"}}
      ]}
    ]
  }
}"#;

#[test]
fn bootstrap_creates_the_aws_regions_buckets_once() {
    let Some(moto) = moto() else { return };
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("pipeline.json"), PIPELINE).unwrap();
    let run = |args: &[&str]| meridian(dir.path(), &moto, args);
    let buckets = || {
        boto3(
            &moto,
            "print(json.dumps(sorted(b['Name'] for b in s3('us-east-1').list_buckets()['Buckets'])))",
        )
    };

    // the policy and the dry run change nothing
    let policy = run(&["bootstrap", "pipeline.json", "--print-policy"]);
    assert!(policy.status.success(), "{}", text(&policy));
    let policy: serde_json::Value = serde_json::from_slice(&policy.stdout).unwrap();
    let resources = policy["pipeline"]["Statement"][1]["Resource"].to_string();
    assert!(
        resources.contains("arn:aws:s3:::hello-artifacts-use1/*") && resources.contains("hello-artifacts-euw1/*"),
        "{resources}"
    );
    assert!(!resources.contains("apse2"), "ap-southeast-2 is local: {resources}");
    let statement = |sid: &str| {
        policy["pipeline"]["Statement"]
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["Sid"] == sid)
            .cloned()
            .unwrap_or_else(|| panic!("no statement {sid}: {policy}"))
    };
    assert_eq!(
        statement("MeridianArtifactKeys")["Resource"],
        serde_json::json!(["alias/hello"])
    );
    // what the runs call to move aliases, only in the AWS regions
    let shifting = statement("MeridianTrafficShifting");
    assert!(
        shifting["Action"].to_string().contains("lambda:UpdateAlias"),
        "{shifting}"
    );
    assert_eq!(
        shifting["Resource"],
        serde_json::json!([
            "arn:aws:lambda:eu-west-1:*:function:*",
            "arn:aws:lambda:us-east-1:*:function:*"
        ])
    );
    // following and stopping the deployments CloudFormation hands to CodeDeploy
    let following = statement("MeridianFollowing");
    assert!(
        following["Action"].to_string().contains("codedeploy:StopDeployment"),
        "{following}"
    );
    assert!(
        following["Resource"]
            .to_string()
            .contains("arn:aws:codedeploy:eu-west-1:*:deploymentgroup:*"),
        "{following}"
    );
    let dry = run(&["bootstrap", "pipeline.json", "--dry-run"]);
    assert!(dry.status.success(), "{}", text(&dry));
    assert!(
        text(&dry)
            .contains("hello-artifacts-euw1 (eu-west-1): would create the bucket hello-artifacts-euw1 in eu-west-1"),
        "{}",
        text(&dry)
    );
    assert_eq!(buckets(), serde_json::json!([]));

    let first = run(&["bootstrap", "pipeline.json"]);
    assert!(first.status.success(), "{}", text(&first));
    assert!(
        text(&first)
            .contains("hello-artifacts-euw1 (eu-west-1): encrypt new objects by default with SSE-KMS, key alias/hello"),
        "{}",
        text(&first)
    );
    // ap-southeast-2 deploys to the local region: nothing of it on AWS
    assert_eq!(
        buckets(),
        serde_json::json!(["hello-artifacts-euw1", "hello-artifacts-use1"])
    );
    let seen = boto3(
        &moto,
        "c = s3('eu-west-1')\nb = 'hello-artifacts-euw1'\nprint(json.dumps([c.get_bucket_location(Bucket=b)['LocationConstraint'], c.get_bucket_versioning(Bucket=b)['Status'], c.get_bucket_encryption(Bucket=b)['ServerSideEncryptionConfiguration']['Rules'][0]['ApplyServerSideEncryptionByDefault']['SSEAlgorithm']]))",
    );
    assert_eq!(seen, serde_json::json!(["eu-west-1", "Enabled", "aws:kms"]));

    let second = run(&["bootstrap", "pipeline.json"]);
    assert!(second.status.success(), "{}", text(&second));
    assert_eq!(
        String::from_utf8_lossy(&second.stdout)
            .lines()
            .filter(|l| l.ends_with("ready, nothing to change"))
            .count(),
        2,
        "{}",
        text(&second)
    );

    // a bucket holding artifacts is not deleted without --force
    boto3(
        &moto,
        "s3('us-east-1').put_object(Bucket='hello-artifacts-use1', Key='sha256/a.zip', Body=b'a')\nprint('{}')",
    );
    let refused = run(&["bootstrap", "pipeline.json", "--delete"]);
    assert_eq!(refused.status.code(), Some(1), "{}", text(&refused));
    assert!(
        text(&refused).contains("still holds 1 object version(s)") && text(&refused).contains("--force"),
        "{}",
        text(&refused)
    );
    let deleted = run(&["bootstrap", "pipeline.json", "--delete", "--force"]);
    assert!(deleted.status.success(), "{}", text(&deleted));
    assert_eq!(buckets(), serde_json::json!([]));
}

#[test]
fn bootstrap_of_a_pipeline_without_aws_regions_says_so() {
    let Some(moto) = moto() else { return };
    let dir = tempfile::tempdir().unwrap();
    let local = PIPELINE.replace("\"backend\": \"aws\", ", "");
    std::fs::write(dir.path().join("pipeline.json"), local).unwrap();
    let o = meridian(dir.path(), &moto, &["bootstrap", "pipeline.json"]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(
        text(&o).contains("no region of pipeline hello uses the aws backend"),
        "{}",
        text(&o)
    );
}

fn git(dir: &Path, args: &[&str]) {
    let ok = Command::new("git")
        .args(["-c", "user.email=t@example.com", "-c", "user.name=T"])
        .args(args)
        .current_dir(dir)
        .status()
        .unwrap()
        .success();
    assert!(ok, "git {args:?}");
}

const STACK: &str = r#"Resources:
  Greeting:
    Type: AWS::SSM::Parameter
    Properties:
      Name: /app/greeting
      Type: String
      Value: !Sub "hello from ${AWS::Region}, release RELEASE"
"#;

/// `meridian run` of a pipeline whose regions are on AWS (moto): the source artifact goes to the
/// home region's bucket and is copied by digest to eu-west-1's, the stack is made in us-east-1 and
/// then in eu-west-1 through CloudFormation change sets, and a second release updates both.
#[test]
fn a_pipeline_deploys_its_stacks_to_aws_regions() {
    let Some(moto) = moto() else { return };
    let dir = tempfile::tempdir().unwrap();
    let repo = dir.path().join("app");
    std::fs::create_dir_all(&repo).unwrap();
    git(&repo, &["init", "-q", "-b", "main"]);
    std::fs::write(repo.join("template.yaml"), STACK.replace("RELEASE", "1")).unwrap();
    git(&repo, &["add", "."]);
    git(&repo, &["commit", "-q", "-m", "release 1"]);
    let pipeline = serde_json::json!({
        "x-meridian": {"backend": "aws"},
        "pipeline": {"name": "app", "roleArn": "arn:aws:iam::123456789012:role/pipeline", "pipelineType": "V2",
        "artifactStores": {
            "us-east-1": {"type": "S3", "location": "app-artifacts-use1"},
            "eu-west-1": {"type": "S3", "location": "app-artifacts-euw1"}
        },
        "stages": [
            {"name": "Source", "actions": [{"name": "Source", "region": "us-east-1",
                "actionTypeId": {"category": "Source", "owner": "AWS", "provider": "CodeCommit", "version": "1"},
                "configuration": {"RepositoryName": "app", "BranchName": "main"}, "outputArtifacts": [{"name": "Code"}]}]},
            {"name": "Deploy", "actions": [
                {"name": "East", "region": "us-east-1", "runOrder": 1, "inputArtifacts": [{"name": "Code"}],
                  "actionTypeId": {"category": "Deploy", "owner": "AWS", "provider": "CloudFormation", "version": "1"},
                  "configuration": {"ActionMode": "CREATE_UPDATE", "StackName": "app", "TemplatePath": "Code::template.yaml", "RoleArn": "arn:aws:iam::123456789012:role/cfn"}},
                {"name": "West", "region": "eu-west-1", "runOrder": 2, "inputArtifacts": [{"name": "Code"}],
                  "actionTypeId": {"category": "Deploy", "owner": "AWS", "provider": "CloudFormation", "version": "1"},
                  "configuration": {"ActionMode": "CREATE_UPDATE", "StackName": "app", "TemplatePath": "Code::template.yaml", "RoleArn": "arn:aws:iam::123456789012:role/cfn"}}
            ]}
        ]}
    });
    std::fs::write(dir.path().join("pipeline.json"), pipeline.to_string()).unwrap();
    let run = |args: &[&str]| meridian(dir.path(), &moto, args);
    let boot = run(&["bootstrap", "pipeline.json"]);
    assert!(boot.status.success(), "{}", text(&boot));
    let repo_arg = format!("app={}", repo.display());
    let first = run(&["--output", "json", "run", "pipeline.json", "--repo", &repo_arg]);
    assert!(first.status.success(), "{}", text(&first));
    let greeting = |region: &str| {
        boto3(
            &moto,
            &format!(
                "ssm = client('ssm', '{region}')\ncf = client('cloudformation', '{region}')\nprint(json.dumps([cf.describe_stacks(StackName='app')['Stacks'][0]['StackStatus'], ssm.get_parameter(Name='/app/greeting')['Parameter']['Value']]))"
            ),
        )
    };
    assert_eq!(
        greeting("us-east-1"),
        serde_json::json!(["CREATE_COMPLETE", "hello from us-east-1, release 1"])
    );
    assert_eq!(
        greeting("eu-west-1"),
        serde_json::json!(["CREATE_COMPLETE", "hello from eu-west-1, release 1"])
    );
    // the source artifact, by digest, in both regions' buckets
    let objects = boto3(
        &moto,
        "print(json.dumps([sorted(o['Key'] for o in s3(r).list_objects_v2(Bucket=b).get('Contents', [])) for r, b in [('us-east-1', 'app-artifacts-use1'), ('eu-west-1', 'app-artifacts-euw1')]]))",
    );
    assert_eq!(objects[0], objects[1], "{objects}");
    assert!(
        objects[0]
            .as_array()
            .unwrap()
            .iter()
            .any(|k| k.as_str().unwrap().starts_with("sha256/")),
        "{objects}"
    );

    // release 2 updates both stacks
    std::fs::write(repo.join("template.yaml"), STACK.replace("RELEASE", "2")).unwrap();
    git(&repo, &["commit", "-q", "-am", "release 2"]);
    let second = run(&["--output", "json", "run", "pipeline.json", "--repo", &repo_arg]);
    assert!(second.status.success(), "{}", text(&second));
    assert_eq!(
        greeting("us-east-1"),
        serde_json::json!(["UPDATE_COMPLETE", "hello from us-east-1, release 2"])
    );
    assert_eq!(
        greeting("eu-west-1"),
        serde_json::json!(["UPDATE_COMPLETE", "hello from eu-west-1, release 2"])
    );
}

/// A git repository at `dir` holding `files` (path, text), committed as release 1.
fn app_repo(dir: &Path, files: &[(&str, String)]) -> std::path::PathBuf {
    for (path, text) in files {
        let p = dir.join(path);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, text).unwrap();
    }
    git(dir, &["init", "-q", "-b", "main"]);
    git(dir, &["add", "."]);
    git(dir, &["commit", "-q", "-m", "release 1"]);
    dir.to_path_buf()
}

/// examples/hello-regions in a repository at `dir`, with `pipeline` as its meridian.yaml.
fn hello_app(dir: &Path, pipeline: String) -> std::path::PathBuf {
    let example = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/hello-regions");
    let mut files: Vec<(&str, String)> = ["template.yaml", "buildspec.yml", "traffic.jsonl", "src/index.js"]
        .into_iter()
        .map(|f| (f, std::fs::read_to_string(example.join(f)).unwrap()))
        .collect();
    files.push(("meridian.yaml", pipeline));
    app_repo(dir, &files)
}

/// Commits `app`'s next release: `RELEASE` of src/index.js goes from `from` to `to`.
fn next_release(app: &Path, from: u32, to: u32) {
    let src = std::fs::read_to_string(app.join("src/index.js")).unwrap();
    std::fs::write(
        app.join("src/index.js"),
        src.replace(
            &format!("const RELEASE = \"{from}\";"),
            &format!("const RELEASE = \"{to}\";"),
        ),
    )
    .unwrap();
    git(app, &["commit", "-q", "-am", &format!("release {to}")]);
}

/// moto's CloudFormation skips AWS::Lambda::Alias and AWS::CloudWatch::Alarm: they are made here,
/// as hello-regions' template says (docs/aws.md), in each region, after its first release.
fn make_alias_and_alarm(moto: &Moto, regions: &[&str]) {
    boto3(
        moto,
        &format!(
            "for r in {regions:?}:
    fn = client('lambda', r).list_functions()['Functions'][0]['FunctionName']
    client('lambda', r).create_alias(FunctionName=fn, Name='live', FunctionVersion='1')
    cw = client('cloudwatch', r)
    cw.put_metric_alarm(AlarmName='hello-regions-errors', Namespace='AWS/Lambda', MetricName='Errors', Statistic='Sum', Period=60, EvaluationPeriods=1, Threshold=0, ComparisonOperator='GreaterThanThreshold', Dimensions=[{{'Name': 'FunctionName', 'Value': fn}}, {{'Name': 'Resource', 'Value': fn + ':live'}}])
    cw.set_alarm_state(AlarmName='hello-regions-errors', StateValue='OK', StateReason='no errors')
print('{{}}')"
        ),
    );
}

/// The `live` alias of us-east-1's function: [version, additional weights].
fn live_alias(moto: &Moto) -> serde_json::Value {
    boto3(
        moto,
        "lam = client('lambda', 'us-east-1')
fn = lam.list_functions()['Functions'][0]['FunctionName']
a = lam.get_alias(FunctionName=fn, Name='live')
print(json.dumps([a['FunctionVersion'], a.get('RoutingConfig', {}).get('AdditionalVersionWeights') or {}]))",
    )
}

/// Starts a boto3 script against moto in the background (a watcher), with its output in `out`.
fn background_boto3(moto: &Moto, code: &str, out: &Path) -> std::process::Child {
    let script = format!(
        "import boto3, json, time\ndef client(service, region):\n    return boto3.client(service, region_name=region, endpoint_url='{}', aws_access_key_id='testing', aws_secret_access_key='testing')\n{code}",
        moto.url
    );
    Command::new(moto_server::moto_bin("python").unwrap())
        .arg("-c")
        .arg(script)
        .stdout(std::fs::File::create(out).unwrap())
        .spawn()
        .unwrap()
}

/// Records every state of us-east-1's `live` alias (version, weights) until told to stop; with
/// `trip`, sets the stack's errors alarm to ALARM as soon as a canary is seen (what CloudWatch
/// does on AWS when the canary's version errs; moto evaluates no alarm on its own).
fn alias_watcher(trip: bool) -> String {
    format!(
        "lam, cw = client('lambda', 'us-east-1'), client('cloudwatch', 'us-east-1')
fn = [f['FunctionName'] for f in lam.list_functions()['Functions']][0]
seen, end = [], time.time() + 120
while time.time() < end:
    a = lam.get_alias(FunctionName=fn, Name='live')
    state = [a['FunctionVersion'], a.get('RoutingConfig', {{}}).get('AdditionalVersionWeights') or {{}}]
    if not seen or seen[-1] != state:
        seen.append(state)
        print(json.dumps(state), flush=True)
        if {trip} and state[1]:
            cw.set_alarm_state(AlarmName='hello-regions-errors', StateValue='ALARM', StateReason='errors in the canary')
    time.sleep(0.1)",
        trip = if trip { "True" } else { "False" }
    )
}

/// The end-to-end run of examples/hello-regions on three AWS regions (moto), as demo-aws.sh runs
/// it: bootstrap, then three releases, checked with boto3. Release 2 moves every region's alias
/// 10% -> 100% (seen during the canary); release 3 trips its alarm in us-east-1 and is rolled back
/// there (alias, then stack), the other regions untouched; the ledger says what is live.
#[test]
fn hello_regions_on_three_aws_regions_shifts_then_rolls_back_a_bad_release() {
    let Some(moto) = moto() else { return };
    let dir = tempfile::tempdir().unwrap();
    let example = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/hello-regions");
    // moto runs no function code (without Docker): no traffic to send, nothing to judge
    let pipeline = std::fs::read_to_string(example.join("meridian.yaml")).unwrap();
    let (head, tail) = pipeline.split_once("  traffic:").unwrap();
    let tail = &tail[tail.find("  rollback:").unwrap()..];
    let app = hello_app(&dir.path().join("app"), format!("backend: aws\n{head}{tail}"));
    let run = |args: &[&str]| meridian(&app, &moto, args);
    let regions = ["us-east-1", "eu-west-1", "ap-southeast-2"];

    let boot = run(&["bootstrap", "meridian.yaml"]);
    assert!(boot.status.success(), "{}", text(&boot));
    let first = run(&["run", "meridian.yaml", "--time-scale", "60", "--skip-windows"]);
    assert!(first.status.success(), "{}", text(&first));
    // each region: its encrypted bucket holds the code packaged for it, and its stack deploys it
    let state = boto3(
        &moto,
        "out = {}
for r in ['us-east-1', 'eu-west-1', 'ap-southeast-2']:
    b = f'hello-regions-artifacts-{r}'
    enc = s3(r).get_bucket_encryption(Bucket=b)['ServerSideEncryptionConfiguration']['Rules'][0]['ApplyServerSideEncryptionByDefault']['SSEAlgorithm']
    zips = [o['Key'] for o in s3(r).list_objects_v2(Bucket=b).get('Contents', []) if o['Key'].endswith('.zip')]
    cf = client('cloudformation', r)
    template = json.dumps(cf.get_template(StackName='hello-regions')['TemplateBody'])
    fns = client('lambda', r).list_functions()['Functions']
    out[r] = [enc, len(zips) > 0, b in template, cf.describe_stacks(StackName='hello-regions')['Stacks'][0]['StackStatus'], len(fns), fns[0]['Environment']['Variables']['GREETING']]
print(json.dumps(out))",
    );
    for (r, greeting) in regions.iter().zip(["hello", "dia duit", "hello"]) {
        assert_eq!(
            state[r],
            serde_json::json!(["AES256", true, true, "CREATE_COMPLETE", 1, greeting]),
            "{r}: {state}"
        );
    }
    make_alias_and_alarm(&moto, &regions);
    let aliases = || {
        boto3(
            &moto,
            "out = {}
for r in ['us-east-1', 'eu-west-1', 'ap-southeast-2']:
    lam = client('lambda', r)
    fn = lam.list_functions()['Functions'][0]['FunctionName']
    a = lam.get_alias(FunctionName=fn, Name='live')
    versions = [v['Version'] for v in lam.list_versions_by_function(FunctionName=fn)['Versions']]
    same = lam.get_function_configuration(FunctionName=fn)['CodeSha256'] == lam.get_function_configuration(FunctionName=fn, Qualifier=a['FunctionVersion'])['CodeSha256']
    out[r] = [a['FunctionVersion'], a.get('RoutingConfig', {}).get('AdditionalVersionWeights') or {}, versions[-1], same, client('cloudformation', r).describe_stacks(StackName='hello-regions')['Stacks'][0]['StackStatus']]
print(json.dumps(out))",
        )
    };

    // release 2: 10% during the canary, then 100%, in every region
    next_release(&app, 1, 2);
    let seen = dir.path().join("seen-2.jsonl");
    let mut watcher = background_boto3(&moto, &alias_watcher(false), &seen);
    let second = run(&["run", "meridian.yaml", "--time-scale", "60", "--skip-windows"]);
    let _ = watcher.kill();
    let _ = watcher.wait();
    assert!(second.status.success(), "{}", text(&second));
    let seen = std::fs::read_to_string(&seen).unwrap();
    assert!(
        seen.lines().any(|l| l == r#"["1", {"2": 0.1}]"#),
        "the canary was never seen at 10%: {seen}"
    );
    assert_eq!(seen.lines().last(), Some(r#"["2", {}]"#), "{seen}");
    let after = aliases();
    for r in regions {
        assert_eq!(
            after[r],
            serde_json::json!(["2", {}, "2", true, "UPDATE_COMPLETE"]),
            "{r}: {after}"
        );
    }

    // release 3: its canary's alarm goes to ALARM in us-east-1
    let src = std::fs::read_to_string(app.join("src/index.js")).unwrap();
    std::fs::write(
        app.join("src/index.js"),
        src.replace(
            "exports.handler = async (event) => {",
            "exports.handler = async (event) => {\n  if (event.user) throw new Error('the bug');",
        ),
    )
    .unwrap();
    git(&app, &["commit", "-q", "-am", "release 3"]);
    let seen = dir.path().join("seen-3.jsonl");
    let mut watcher = background_boto3(&moto, &alias_watcher(true), &seen);
    let third = run(&["run", "meridian.yaml", "--time-scale", "60", "--skip-windows"]);
    let _ = watcher.kill();
    let _ = watcher.wait();
    assert!(!third.status.success(), "release 3 must fail: {}", text(&third));
    let out = text(&third);
    assert!(
        out.contains("alarm hello-regions-errors went to ALARM") && out.contains("back on its previous template"),
        "{out}"
    );
    let seen = std::fs::read_to_string(&seen).unwrap();
    assert!(seen.lines().any(|l| l == r#"["2", {"3": 0.1}]"#), "{seen}");
    let after = aliases();
    // us-east-1: version 3 was published and shifted to, then the alias and the function's code
    // went back to release 2; the other regions never saw release 3
    assert_eq!(
        after["us-east-1"],
        serde_json::json!(["2", {}, "3", true, "UPDATE_COMPLETE"]),
        "{after}"
    );
    for r in ["eu-west-1", "ap-southeast-2"] {
        assert_eq!(
            after[r],
            serde_json::json!(["2", {}, "2", true, "UPDATE_COMPLETE"]),
            "{r}: {after}"
        );
    }
    // the ledger: release 2 live everywhere, release 3 failed in us-east-1
    let ledger = run(&["--output", "json", "releases", "hello-regions", "--history"]);
    assert!(ledger.status.success(), "{}", text(&ledger));
    let rows: Vec<serde_json::Value> = serde_json::from_slice(&ledger.stdout).unwrap();
    let live: Vec<(String, String)> = rows
        .iter()
        .filter(|r| r["status"] == "live")
        .map(|r| {
            (
                r["region"].as_str().unwrap().to_string(),
                r["functions"][0]["version"].as_str().unwrap_or_default().to_string(),
            )
        })
        .collect();
    assert_eq!(live.len(), 3, "{rows:?}");
    assert!(live.iter().all(|(_, v)| v == "2"), "{live:?}");
    let failed: Vec<&serde_json::Value> = rows.iter().filter(|r| r["status"] == "failed").collect();
    assert_eq!(failed.len(), 1, "{rows:?}");
    assert_eq!(failed[0]["region"], "us-east-1");

    // `meridian rollback` in eu-west-1: release 1's code is deployed again and the alias moved to it
    let back = run(&[
        "rollback",
        "hello-regions",
        "--regions",
        "eu-west-1",
        "--time-scale",
        "60",
    ]);
    assert!(back.status.success(), "{}", text(&back));
    let code = boto3(
        &moto,
        "out = {}
for r in ['us-east-1', 'eu-west-1', 'ap-southeast-2']:
    lam = client('lambda', r)
    fn = lam.list_functions()['Functions'][0]['FunctionName']
    live = lam.get_alias(FunctionName=fn, Name='live')['FunctionVersion']
    sha = lambda q: lam.get_function_configuration(FunctionName=fn, Qualifier=q)['CodeSha256']
    out[r] = [sha(live) == sha('1'), sha(live) == sha('2')]
print(json.dumps(out))",
    );
    assert_eq!(code["eu-west-1"], serde_json::json!([true, false]), "{code}");
    assert_eq!(code["us-east-1"], serde_json::json!([false, true]), "{code}");
    assert_eq!(code["ap-southeast-2"], serde_json::json!([false, true]), "{code}");
}

/// Without credentials, a command that calls AWS says where it looked and what to set.
#[test]
fn missing_credentials_are_named_with_what_to_set() {
    let Some(moto) = moto() else { return };
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("pipeline.json"), PIPELINE).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_meridian"))
        .args(["bootstrap", "pipeline.json"])
        .current_dir(dir.path())
        .env("MERIDIAN_DATA_DIR", dir.path().join("data"))
        .env("AWS_ENDPOINT_URL", &moto.url)
        .env("HOME", dir.path())
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .env_remove("AWS_ACCESS_KEY_ID")
        .env_remove("AWS_SECRET_ACCESS_KEY")
        .env_remove("AWS_SESSION_TOKEN")
        .env_remove("AWS_PROFILE")
        .env_remove("AWS_WEB_IDENTITY_TOKEN_FILE")
        .env_remove("AWS_CONTAINER_CREDENTIALS_RELATIVE_URI")
        .env_remove("AWS_CONTAINER_CREDENTIALS_FULL_URI")
        .output()
        .unwrap();
    let all = text(&out);
    assert!(!out.status.success(), "{all}");
    assert!(
        all.contains("no AWS credentials were found") && all.contains("AWS_PROFILE"),
        "{all}"
    );
}

/// A build in a region with `role:` gets that role's session in its environment, so the AWS CLI
/// and SDKs it runs act in the role's account, as Meridian does there (checked with boto3: the
/// credentials the build saw are the role's).
#[test]
fn a_build_in_a_role_region_acts_as_the_role() {
    let Some(moto) = moto() else { return };
    let dir = tempfile::tempdir().unwrap();
    let seen_file = dir.path().join("build-env.txt");
    let app = app_repo(
        &dir.path().join("app"),
        &[
            (
                "buildspec.yml",
                format!(
                    "version: 0.2\nphases:\n  build:\n    commands:\n      - env | grep '^AWS_' | sort > {}\n      - 'echo \"secret: $AWS_SECRET_ACCESS_KEY token: $AWS_SESSION_TOKEN\"'\nartifacts:\n  files: ['**/*']\n",
                    seen_file.display()
                ),
            ),
            ("template.yaml", "Resources:\n  P:\n    Type: AWS::SSM::Parameter\n    Properties:\n      Name: /built\n      Type: String\n      Value: yes\n".to_string()),
            ("meridian.yaml", "pipeline: rolebuild\nbackend: aws\nsource:\n  path: .\n  branch: main\nbuild:\n  buildspec: buildspec.yml\ndeploy:\n  template: template.yaml\nwaves:\n  - regions: [us-east-1]\nregions:\n  us-east-1:\n    role: arn:aws:iam::222222222222:role/deploy\n".to_string()),
        ],
    );
    let run = |args: &[&str]| meridian(&app, &moto, args);
    let boot = run(&["bootstrap", "meridian.yaml"]);
    assert!(boot.status.success(), "{}", text(&boot));
    let out = run(&["run", "meridian.yaml"]);
    assert!(out.status.success(), "{}", text(&out));
    let vars: std::collections::BTreeMap<String, String> = std::fs::read_to_string(&seen_file)
        .unwrap()
        .lines()
        .filter_map(|l| l.split_once('=').map(|(k, v)| (k.to_string(), v.to_string())))
        .collect();
    assert_ne!(
        vars.get("AWS_ACCESS_KEY_ID").map(String::as_str),
        Some("testing"),
        "{vars:?}"
    );
    assert!(vars.contains_key("AWS_SESSION_TOKEN"), "{vars:?}");
    let who = boto3(
        &moto,
        &format!(
            "print(json.dumps(boto3.client('sts', region_name='us-east-1', endpoint_url=client('s3', 'us-east-1').meta.endpoint_url,
    aws_access_key_id='{}', aws_secret_access_key='{}', aws_session_token='{}').get_caller_identity()['Account']))",
            vars["AWS_ACCESS_KEY_ID"], vars["AWS_SECRET_ACCESS_KEY"], vars["AWS_SESSION_TOKEN"]
        ),
    );
    assert_eq!(who, serde_json::json!("222222222222"), "{vars:?}");
    // the session's secrets never reach the build's log, which the build echoed them to
    let (mut seen_in, mut echoed) = (Vec::new(), false);
    let mut stack = vec![app.join("data")];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).into_iter().flatten().flatten() {
            let path = entry.path();
            if path.is_dir() {
                stack.push(path);
            } else if let Ok(bytes) = std::fs::read(&path) {
                let text = String::from_utf8_lossy(&bytes);
                echoed |= text.contains("secret: ");
                if text.contains(&vars["AWS_SECRET_ACCESS_KEY"]) || text.contains(&vars["AWS_SESSION_TOKEN"]) {
                    seen_in.push(path.display().to_string());
                }
            }
        }
    }
    assert!(echoed, "the build's log line is not in the data directory");
    assert!(seen_in.is_empty(), "the role's secrets were written to {seen_in:?}");
}

/// A region with `role:` is reached with that role's credentials (AssumeRole), so its bucket and
/// its stack are made in the role's account; the other region stays in the caller's account.
#[test]
fn a_region_with_a_role_deploys_into_the_roles_account() {
    let Some(moto) = moto() else { return };
    let dir = tempfile::tempdir().unwrap();
    let app = app_repo(
        &dir.path().join("app"),
        &[
            ("template.yaml", "Resources:\n  Where:\n    Type: AWS::SSM::Parameter\n    Properties:\n      Name: /cross/account\n      Type: String\n      Value: !Sub \"${AWS::AccountId} ${AWS::Region}\"\n".to_string()),
            ("meridian.yaml", "pipeline: cross\nbackend: aws\nsource:\n  path: .\n  branch: main\ndeploy:\n  template: template.yaml\n  stack: cross\nwaves:\n  - name: primary\n    regions: [us-east-1]\n  - name: rest\n    regions: [eu-west-1]\nregions:\n  eu-west-1:\n    role: arn:aws:iam::222222222222:role/deploy\n".to_string()),
        ],
    );
    let run = |args: &[&str]| meridian(&app, &moto, args);
    let boot = run(&["bootstrap", "meridian.yaml"]);
    assert!(boot.status.success(), "{}", text(&boot));
    let first = run(&["run", "meridian.yaml"]);
    assert!(first.status.success(), "{}", text(&first));
    let seen = boto3(
        &moto,
        "c = client('sts', 'us-east-1').assume_role(RoleArn='arn:aws:iam::222222222222:role/deploy', RoleSessionName='checks')['Credentials']
def other(service, region):
    return boto3.client(service, region_name=region, endpoint_url=client('s3', 'us-east-1').meta.endpoint_url, aws_access_key_id=c['AccessKeyId'], aws_secret_access_key=c['SecretAccessKey'], aws_session_token=c['SessionToken'])
def buckets(f):
    return sorted(b['Name'] for b in f('s3', 'us-east-1').list_buckets()['Buckets'])
def param(f, r):
    try:
        return f('ssm', r).get_parameter(Name='/cross/account')['Parameter']['Value']
    except Exception:
        return None
print(json.dumps({'caller': [buckets(client), param(client, 'us-east-1'), param(client, 'eu-west-1')],
                  'role': [buckets(other), param(other, 'us-east-1'), param(other, 'eu-west-1')]}))",
    );
    assert_eq!(
        seen["caller"],
        serde_json::json!([["cross-artifacts-us-east-1"], "123456789012 us-east-1", null]),
        "{seen}"
    );
    assert_eq!(
        seen["role"],
        serde_json::json!([["cross-artifacts-eu-west-1"], null, "222222222222 eu-west-1"]),
        "{seen}"
    );
    // a role that is not an ARN is refused when the file is read
    std::fs::write(
        app.join("meridian.yaml"),
        std::fs::read_to_string(app.join("meridian.yaml"))
            .unwrap()
            .replace("arn:aws:iam::222222222222:role/deploy", "deploy"),
    )
    .unwrap();
    let bad = run(&["validate", "meridian.yaml"]);
    assert!(!bad.status.success());
    assert!(
        text(&bad).contains("`deploy` is not the ARN of an IAM role"),
        "{}",
        text(&bad)
    );
}

/// A template over CloudFormation's 51,200 bytes for a request goes through the region's bucket
/// (TemplateURL), as `aws cloudformation deploy --s3-bucket` sends it.
#[test]
fn a_template_too_large_for_the_request_goes_through_the_regions_bucket() {
    let Some(moto) = moto() else { return };
    let dir = tempfile::tempdir().unwrap();
    // 60 kB of metadata (CloudFormation takes up to 1 MB from S3)
    let notes: String = (0..600)
        .map(|i| format!("    note{i}: \"{}\"\n", "x".repeat(90)))
        .collect();
    let app = app_repo(
        &dir.path().join("app"),
        &[
            ("template.yaml", format!("Metadata:\n  Notes:\n{notes}Resources:\n  Big:\n    Type: AWS::SSM::Parameter\n    Properties:\n      Name: /big/ok\n      Type: String\n      Value: deployed\n")),
            ("meridian.yaml", "pipeline: big\nbackend: aws\nsource:\n  path: .\n  branch: main\ndeploy:\n  template: template.yaml\nwaves:\n  - name: primary\n    regions: [eu-west-1]\n".to_string()),
        ],
    );
    assert!(std::fs::metadata(app.join("template.yaml")).unwrap().len() > 51_200);
    let run = |args: &[&str]| meridian(&app, &moto, args);
    let boot = run(&["bootstrap", "meridian.yaml"]);
    assert!(boot.status.success(), "{}", text(&boot));
    let first = run(&["run", "meridian.yaml"]);
    assert!(first.status.success(), "{}", text(&first));
    let seen = boto3(
        &moto,
        "keys = [o['Key'] for o in s3('eu-west-1').list_objects_v2(Bucket='big-artifacts-eu-west-1', Prefix='tmp/templates/').get('Contents', [])]
print(json.dumps([client('ssm', 'eu-west-1').get_parameter(Name='/big/ok')['Parameter']['Value'], len(keys)]))",
    );
    assert_eq!(seen, serde_json::json!(["deployed", 1]), "{seen}");

    // a second release, then `meridian rollback` to the first: the large template goes back
    // through the bucket too
    let template = std::fs::read_to_string(app.join("template.yaml")).unwrap();
    std::fs::write(
        app.join("template.yaml"),
        template.replace("Value: deployed", "Value: release 2"),
    )
    .unwrap();
    git(&app, &["commit", "-q", "-am", "release 2"]);
    let second = run(&["run", "meridian.yaml"]);
    assert!(second.status.success(), "{}", text(&second));
    let back = run(&["rollback", "big", "--regions", "eu-west-1"]);
    assert!(back.status.success(), "{}", text(&back));
    let seen = boto3(
        &moto,
        "print(json.dumps(client('ssm', 'eu-west-1').get_parameter(Name='/big/ok')['Parameter']['Value']))",
    );
    assert_eq!(seen, serde_json::json!("deployed"), "{seen}");

    // rolling back again (to release 2) starts from a release the rollback made, which has no
    // execution: the bucket is found through the release rolled back to
    let again = run(&["rollback", "big", "--regions", "eu-west-1"]);
    assert!(again.status.success(), "{}", text(&again));
    let seen = boto3(
        &moto,
        "print(json.dumps(client('ssm', 'eu-west-1').get_parameter(Name='/big/ok')['Parameter']['Value']))",
    );
    assert_eq!(seen, serde_json::json!("release 2"), "{seen}");
}

fn ecs_pipeline(backend: &str) -> String {
    serde_json::json!({
        "x-meridian": {"backend": backend},
        "pipeline": {"name": "web", "roleArn": "arn:aws:iam::123456789012:role/pipeline", "pipelineType": "V2",
        "artifactStores": {"us-east-1": {"type": "S3", "location": "web-artifacts-use1"}},
        "stages": [
            {"name": "Source", "actions": [{"name": "Source", "region": "us-east-1",
                "actionTypeId": {"category": "Source", "owner": "AWS", "provider": "CodeCommit", "version": "1"},
                "configuration": {"RepositoryName": "web", "BranchName": "main"}, "outputArtifacts": [{"name": "Images"}]}]},
            {"name": "Deploy", "actions": [{"name": "Service", "region": "us-east-1", "inputArtifacts": [{"name": "Images"}],
                "actionTypeId": {"category": "Deploy", "owner": "AWS", "provider": "ECS", "version": "1"},
                "configuration": {"ClusterName": "apps", "ServiceName": "web", "DeploymentTimeout": "5"}}]}
        ]}
    })
    .to_string()
}

/// The ECS deploy action on an AWS region (moto, which reports a service's tasks as running
/// with MOTO_ECS_SERVICE_RUNNING): a new task definition revision with the image of
/// imagedefinitions.json, the service updated to it; the other container and settings kept.
#[test]
fn the_ecs_action_moves_a_service_to_its_new_images() {
    let Some(moto) = moto_server::start_with(&[("MOTO_ECS_SERVICE_RUNNING", "2")]) else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let repo = app_repo(
        &dir.path().join("web"),
        &[(
            "imagedefinitions.json",
            r#"[{"name": "web", "imageUri": "123456789012.dkr.ecr.us-east-1.amazonaws.com/web:2"}]"#.to_string(),
        )],
    );
    std::fs::write(dir.path().join("pipeline.json"), ecs_pipeline("aws")).unwrap();
    boto3(
        &moto,
        "ecs = client('ecs', 'us-east-1')
ecs.create_cluster(clusterName='apps')
ecs.register_task_definition(family='web', containerDefinitions=[
    {'name': 'web', 'image': 'web:1', 'memory': 256, 'essential': True},
    {'name': 'log', 'image': 'fluent-bit:3', 'memory': 64, 'essential': False}])
ecs.create_service(cluster='apps', serviceName='web', taskDefinition='web:1', desiredCount=2)
print('{}')",
    );
    let run = |args: &[&str]| meridian(dir.path(), &moto, args);
    let boot = run(&["bootstrap", "pipeline.json"]);
    assert!(boot.status.success(), "{}", text(&boot));
    let repo_arg = format!("web={}", repo.display());
    let out = run(&["run", "pipeline.json", "--repo", &repo_arg]);
    assert!(out.status.success(), "{}", text(&out));
    let seen = boto3(
        &moto,
        "ecs = client('ecs', 'us-east-1')
s = ecs.describe_services(cluster='apps', services=['web'])['services'][0]
td = ecs.describe_task_definition(taskDefinition=s['taskDefinition'])['taskDefinition']
print(json.dumps([td['family'], td['revision'], sorted([c['name'], c['image'], c['memory']] for c in td['containerDefinitions'])]))",
    );
    assert_eq!(
        seen,
        serde_json::json!([
            "web",
            2,
            [
                ["log", "fluent-bit:3", 64],
                ["web", "123456789012.dkr.ecr.us-east-1.amazonaws.com/web:2", 256]
            ]
        ])
    );
}

/// On a local region the ECS action is refused with what to do.
#[test]
fn the_ecs_action_on_a_local_region_names_the_aws_backend() {
    let Some(moto) = moto() else { return };
    let dir = tempfile::tempdir().unwrap();
    let repo = app_repo(
        &dir.path().join("web"),
        &[(
            "imagedefinitions.json",
            r#"[{"name": "web", "imageUri": "web:2"}]"#.to_string(),
        )],
    );
    std::fs::write(dir.path().join("pipeline.json"), ecs_pipeline("local")).unwrap();
    let repo_arg = format!("web={}", repo.display());
    let out = meridian(dir.path(), &moto, &["run", "pipeline.json", "--repo", &repo_arg]);
    assert!(!out.status.success());
    assert!(
        text(&out).contains("local regions run no containers: give us-east-1 `backend: aws`"),
        "{}",
        text(&out)
    );
}

fn codebuild_pipeline(backend: &str, output: bool) -> String {
    let mut build = serde_json::json!({"name": "Build", "region": "us-east-1", "inputArtifacts": [{"name": "Src"}],
        "actionTypeId": {"category": "Build", "owner": "AWS", "provider": "CodeBuild", "version": "1"},
        "configuration": {"ProjectName": "web-build",
            "EnvironmentVariables": "[{\"name\":\"STAGE\",\"value\":\"prod\",\"type\":\"PLAINTEXT\"}]"}});
    if output {
        build["outputArtifacts"] = serde_json::json!([{"name": "Built"}]);
    }
    serde_json::json!({
        "x-meridian": {"backend": backend, "builds": "codebuild"},
        "pipeline": {"name": "web", "roleArn": "arn:aws:iam::123456789012:role/pipeline", "pipelineType": "V2",
        "artifactStores": {"us-east-1": {"type": "S3", "location": "web-artifacts-use1"}},
        "stages": [
            {"name": "Source", "actions": [{"name": "Source", "region": "us-east-1",
                "actionTypeId": {"category": "Source", "owner": "AWS", "provider": "CodeCommit", "version": "1"},
                "configuration": {"RepositoryName": "web", "BranchName": "main"}, "outputArtifacts": [{"name": "Src"}]}]},
            {"name": "Build", "actions": [build]}
        ]}
    })
    .to_string()
}

/// `builds: codebuild`: the CodeBuild action runs on the region's AWS CodeBuild (moto's, which
/// records builds and reports them succeeded without running anything): the source zipped into
/// the region's bucket and given as the build's S3 source, the action's variables and the output
/// artifact's place as overrides, checked with boto3. moto uploads no artifact, so an action
/// with an output artifact fails saying so; on a local region the action is refused with what to
/// do.
#[test]
fn codebuild_actions_run_on_aws_codebuild_when_the_pipeline_says_so() {
    let Some(moto) = moto() else { return };
    let dir = tempfile::tempdir().unwrap();
    let repo = app_repo(
        &dir.path().join("web"),
        &[(
            "buildspec.yml",
            "version: 0.2\nphases:\n  build:\n    commands: [make]\n".to_string(),
        )],
    );
    boto3(
        &moto,
        "client('codebuild', 'us-east-1').create_project(name='web-build',
    source={'type': 'S3', 'location': 'web-artifacts-use1/none.zip'}, artifacts={'type': 'NO_ARTIFACTS'},
    environment={'type': 'LINUX_CONTAINER', 'image': 'aws/codebuild/standard:7.0', 'computeType': 'BUILD_GENERAL1_SMALL'},
    serviceRole='arn:aws:iam::123456789012:role/codebuild')
print('{}')",
    );
    let repo_arg = format!("web={}", repo.display());
    let run = |args: &[&str]| meridian(dir.path(), &moto, args);

    std::fs::write(dir.path().join("pipeline.json"), codebuild_pipeline("aws", false)).unwrap();
    let boot = run(&["bootstrap", "pipeline.json"]);
    assert!(boot.status.success(), "{}", text(&boot));
    let out = run(&["run", "pipeline.json", "--repo", &repo_arg]);
    assert!(out.status.success(), "{}", text(&out));
    let seen = boto3(
        &moto,
        "cb = client('codebuild', 'us-east-1')
ids = cb.list_builds_for_project(projectName='web-build')['ids']
b = cb.batch_get_builds(ids=ids)['builds'][0]
keys = [o['Key'] for o in s3('us-east-1').list_objects_v2(Bucket='web-artifacts-use1').get('Contents', [])]
import io, zipfile, botocore.config
# the objects carry SHA-256 checksums of their parts, which boto3 would check as a whole
raw = boto3.client('s3', region_name='us-east-1', endpoint_url=s3('us-east-1').meta.endpoint_url,
    aws_access_key_id='testing', aws_secret_access_key='testing',
    config=botocore.config.Config(response_checksum_validation='when_required'))
names = []
for k in keys:
    body = raw.get_object(Bucket='web-artifacts-use1', Key=k)['Body'].read()
    names += zipfile.ZipFile(io.BytesIO(body)).namelist()
print(json.dumps([len(ids), b['buildStatus'], b['artifacts'].get('location'), 'buildspec.yml' in names]))",
    );
    // no output artifact: the build is sent nowhere to put one
    assert_eq!(seen, serde_json::json!([1, "SUCCEEDED", null, true]), "{seen}");

    // with an output artifact: its place in the bucket is the build's artifacts override, and
    // a build that uploaded nothing there fails the action
    std::fs::write(dir.path().join("pipeline.json"), codebuild_pipeline("aws", true)).unwrap();
    let out = run(&["run", "pipeline.json", "--repo", &repo_arg]);
    assert!(!out.status.success());
    assert!(
        text(&out).contains("a success, but its output artifact s3://web-artifacts-use1/meridian/builds/"),
        "{}",
        text(&out)
    );
    let seen = boto3(
        &moto,
        "cb = client('codebuild', 'us-east-1')
ids = cb.list_builds_for_project(projectName='web-build')['ids']
a = [b['artifacts'] for b in cb.batch_get_builds(ids=ids)['builds']]
print(json.dumps([len(ids), [x.get('location') for x in a]]))",
    );
    // (moto keeps only the override's bucket of what it is sent)
    assert_eq!(seen, serde_json::json!([2, [null, "web-artifacts-use1"]]), "{seen}");

    // a local region has no CodeBuild
    std::fs::write(dir.path().join("pipeline.json"), codebuild_pipeline("local", false)).unwrap();
    let out = run(&["run", "pipeline.json", "--repo", &repo_arg]);
    assert!(!out.status.success());
    assert!(
        text(&out).contains("us-east-1 is a local region, which has no CodeBuild: give us-east-1 `backend: aws`"),
        "{}",
        text(&out)
    );
}

/// A run killed during an AWS canary leaves the alias at 10%: local commands still work (their
/// recovery leaves AWS deployments alone), and resuming the execution first puts the alias back
/// on the old version (the driver's recovery), then shifts it again to the new one.
#[test]
fn a_run_killed_during_an_aws_canary_is_put_back_then_finished_on_resume() {
    let Some(moto) = moto() else { return };
    let dir = tempfile::tempdir().unwrap();
    let app = hello_app(
        &dir.path().join("app"),
        "pipeline: hello-regions\nbackend: aws\nsource:\n  path: .\n  branch: main\nbuild:\n  buildspec: buildspec.yml\ndeploy:\n  template: template.yaml\n  stack: hello-regions\n  preference: \"10%:10m,100%\"\n  capabilities: [CAPABILITY_IAM, CAPABILITY_AUTO_EXPAND]\nwaves:\n  - name: primary\n    regions: [us-east-1]\n".to_string(),
    );
    let run = |args: &[&str]| meridian(&app, &moto, args);
    assert!(run(&["bootstrap", "meridian.yaml"]).status.success());
    let first = run(&["run", "meridian.yaml", "--time-scale", "60"]);
    assert!(first.status.success(), "{}", text(&first));
    make_alias_and_alarm(&moto, &["us-east-1"]);
    next_release(&app, 1, 2);
    // a 10-minute bake at time scale 60: 10 s at 10%, long enough to be killed in
    let mut child = meridian_command(&app, &moto, &["run", "meridian.yaml", "--time-scale", "60"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let alias = || live_alias(&moto);
    let started = std::time::Instant::now();
    loop {
        if alias() == serde_json::json!(["1", {"2": 0.1}]) {
            break;
        }
        assert!(
            started.elapsed() < std::time::Duration::from_secs(60),
            "the canary never started"
        );
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    child.kill().unwrap();
    child.wait().unwrap();
    assert_eq!(
        alias(),
        serde_json::json!(["1", {"2": 0.1}]),
        "the kill left the canary"
    );
    // local regions' commands open (and recover) only local deployments
    let local = run(&["stack", "list"]);
    assert!(local.status.success(), "{}", text(&local));
    // any command that opens the engine resumes the orphaned execution (in the background):
    // the alias is put back, then moved to version 2 again, to the end
    let started = std::time::Instant::now();
    loop {
        let listed = run(&["--output", "json", "executions", "list"]);
        let rows: serde_json::Value = serde_json::from_slice(&listed.stdout).unwrap();
        let statuses: Vec<&str> = rows
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["status"].as_str().unwrap_or_default())
            .collect();
        assert!(!statuses.contains(&"Failed"), "{rows}");
        if statuses.iter().all(|s| *s == "Succeeded") {
            break;
        }
        assert!(
            started.elapsed() < std::time::Duration::from_secs(120),
            "the execution was not resumed: {rows}"
        );
        std::thread::sleep(std::time::Duration::from_millis(500));
    }
    assert_eq!(alias(), serde_json::json!(["2", {}]));
    let listed = run(&["--output", "json", "deployments", "list"]);
    let deployments: serde_json::Value = serde_json::from_slice(&listed.stdout).unwrap();
    let states: Vec<(String, String)> = deployments
        .as_array()
        .unwrap()
        .iter()
        .map(|d| {
            (
                d["status"].as_str().unwrap_or_default().to_string(),
                d["reason"].as_str().unwrap_or_default().to_string(),
            )
        })
        .collect();
    assert_eq!(states.len(), 2, "{deployments}");
    assert_eq!(states[0].0, "RolledBack", "{deployments}");
    assert!(
        states[0].1.contains("the process running this deployment ended"),
        "{deployments}"
    );
    assert_eq!(states[1].0, "Succeeded", "{deployments}");
}
