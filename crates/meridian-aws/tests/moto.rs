//! Against moto's server (the stand-in for AWS, pinned in scripts/test-peers/requirements-moto.txt and
//! installed by scripts/setup.sh): `meridian bootstrap`'s buckets in three regions, checked with
//! boto3, and artifact stores on S3 (upload once, replicate by digest, verified, never copied
//! twice).

use meridian_aws::bootstrap::{self, BucketSpec, Deleted, Encryption, Step};
use meridian_aws::AwsOptions;
use meridian_core::Clock;
use meridian_region::artifacts::{ArtifactStores, StoreLocation};
use std::time::Duration;

#[path = "support/moto_server.rs"]
mod moto_server;
use moto_server::{boto3, Moto};

/// moto, with the credentials the SDK needs (moto accepts any) in this process's environment.
fn moto() -> Option<Moto> {
    let m = moto_server::start()?;
    static CREDS: std::sync::Once = std::sync::Once::new();
    CREDS.call_once(|| {
        // set once, before any test of this binary reads them, and never changed
        std::env::set_var("AWS_ACCESS_KEY_ID", "testing");
        std::env::set_var("AWS_SECRET_ACCESS_KEY", "testing");
        std::env::remove_var("AWS_PROFILE");
    });
    Some(m)
}

fn specs() -> Vec<BucketSpec> {
    ["us-east-1", "eu-west-1", "ap-southeast-2"]
        .iter()
        .map(|r| BucketSpec {
            region: r.to_string(),
            bucket: format!("hello-artifacts-{r}"),
            encryption: if *r == "eu-west-1" {
                Encryption::SseKms {
                    key: "alias/meridian".into(),
                }
            } else {
                Encryption::SseS3
            },
        })
        .collect()
}

/// boto3 lines making function `name` in eu-west-1 with versions 1 and 2 (`lam` its Lambda
/// client, `role` its role).
fn two_versions(name: &str) -> String {
    format!(
        r#"
import io, zipfile
iam = client('iam', 'us-east-1')
role = iam.create_role(RoleName='{name}-role', AssumeRolePolicyDocument='{{}}')['Role']['Arn']
lam = client('lambda', 'eu-west-1')
buf = io.BytesIO()
with zipfile.ZipFile(buf, 'w') as z:
    z.writestr('index.py', 'def handler(e, c):\n    return e\n')
lam.create_function(FunctionName='{name}', Runtime='python3.12', Role=role, Handler='index.handler', Code={{'ZipFile': buf.getvalue()}}, Publish=True)
lam.update_function_code(FunctionName='{name}', ZipFile=buf.getvalue(), Publish=True)"#
    )
}

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap()
}

#[test]
fn bootstrap_makes_each_regions_bucket_once_and_deletes_it_safely() {
    let Some(moto) = moto() else { return };
    let options = AwsOptions {
        endpoint_url: Some(moto.url.clone()),
        ..Default::default()
    };
    let rt = rt();
    let specs = specs();

    // the dry run: everything is missing, nothing is made
    let plan = rt.block_on(bootstrap::plan(&options, &specs)).unwrap();
    assert!(
        plan.iter()
            .all(|p| p.steps.len() == 5 && p.steps[0] == Step::CreateBucket),
        "{plan:?}"
    );
    let listed = boto3(
        &moto,
        "print(json.dumps([b['Name'] for b in s3('us-east-1').list_buckets()['Buckets']]))",
    );
    assert_eq!(listed, serde_json::json!([]), "a plan changes nothing");

    let said = std::sync::Mutex::new(Vec::new());
    let say = |l: &str| said.lock().unwrap().push(l.to_string());
    rt.block_on(bootstrap::apply(&options, &specs, &say)).unwrap();
    assert_eq!(said.lock().unwrap().len(), 15, "{said:?}");

    // what boto3 sees: each bucket in its region, encrypted, versioned, private, with the rule
    let seen = boto3(
        &moto,
        r#"
out = {}
for region in ['us-east-1', 'eu-west-1', 'ap-southeast-2']:
    c, b = s3(region), 'hello-artifacts-' + region
    enc = c.get_bucket_encryption(Bucket=b)['ServerSideEncryptionConfiguration']['Rules'][0]['ApplyServerSideEncryptionByDefault']
    out[region] = {
        'location': c.get_bucket_location(Bucket=b).get('LocationConstraint'),
        'sse': enc['SSEAlgorithm'],
        'key': enc.get('KMSMasterKeyID'),
        'versioning': c.get_bucket_versioning(Bucket=b).get('Status'),
        'public': c.get_public_access_block(Bucket=b)['PublicAccessBlockConfiguration'],
        'rules': sorted(r['ID'] for r in c.get_bucket_lifecycle_configuration(Bucket=b)['Rules']),
    }
print(json.dumps(out))
"#,
    );
    let block = serde_json::json!({"BlockPublicAcls": true, "IgnorePublicAcls": true, "BlockPublicPolicy": true, "RestrictPublicBuckets": true});
    assert_eq!(
        seen["us-east-1"]["location"],
        serde_json::Value::Null,
        "us-east-1 has no constraint"
    );
    assert_eq!(seen["eu-west-1"]["location"], "eu-west-1");
    assert_eq!(seen["ap-southeast-2"]["location"], "ap-southeast-2");
    assert_eq!(seen["us-east-1"]["sse"], "AES256");
    assert_eq!(seen["eu-west-1"]["sse"], "aws:kms");
    assert_eq!(seen["eu-west-1"]["key"], "alias/meridian");
    for r in ["us-east-1", "eu-west-1", "ap-southeast-2"] {
        assert_eq!(seen[r]["versioning"], "Enabled", "{r}");
        assert_eq!(seen[r]["public"], block, "{r}");
        assert_eq!(
            seen[r]["rules"],
            serde_json::json!(["meridian-artifacts", "meridian-tmp"]),
            "{r}"
        );
    }

    // idempotent: a second bootstrap has nothing to do
    let again = rt.block_on(bootstrap::plan(&options, &specs)).unwrap();
    assert!(again.iter().all(|p| p.steps.is_empty()), "{again:?}");
    // a setting removed by hand is put back, and only it
    boto3(&moto, "s3('eu-west-1').put_bucket_versioning(Bucket='hello-artifacts-eu-west-1', VersioningConfiguration={'Status': 'Suspended'})\nprint('{}')");
    let drift = rt.block_on(bootstrap::plan(&options, &specs)).unwrap();
    assert_eq!(drift[1].steps, vec![Step::EnableVersioning]);
    assert!(drift[0].steps.is_empty() && drift[2].steps.is_empty());

    // an artifact in us-east-1: delete refuses the non-empty bucket without --force
    boto3(
        &moto,
        "s3('us-east-1').put_object(Bucket='hello-artifacts-us-east-1', Key='sha256/x.zip', Body=b'x')\nprint('{}')",
    );
    let refused = rt
        .block_on(bootstrap::delete(&options, &specs, false, &|_| {}))
        .unwrap_err();
    assert!(refused.to_string().contains("add --force"), "{refused}");
    let deleted = rt.block_on(bootstrap::delete(&options, &specs, true, &|_| {})).unwrap();
    assert!(matches!(deleted[0].1, Deleted::Deleted { objects: 1 }), "{deleted:?}");
    let listed = boto3(
        &moto,
        "print(json.dumps([b['Name'] for b in s3('us-east-1').list_buckets()['Buckets']]))",
    );
    assert_eq!(listed, serde_json::json!([]));
    // deleting again finds nothing to delete
    let absent = rt
        .block_on(bootstrap::delete(&options, &specs, false, &|_| {}))
        .unwrap();
    assert!(absent.iter().all(|(_, d)| *d == Deleted::Absent));
}

#[test]
fn artifacts_are_uploaded_once_and_replicated_by_digest() {
    let Some(moto) = moto() else { return };
    let options = AwsOptions {
        endpoint_url: Some(moto.url.clone()),
        ..Default::default()
    };
    let rt = rt();
    let specs: Vec<BucketSpec> = specs()
        .into_iter()
        .map(|mut s| {
            s.bucket = format!("store-{}", s.region);
            s
        })
        .collect();
    rt.block_on(bootstrap::apply(&options, &specs, &|_| {})).unwrap();
    let stores = meridian_aws::artifacts::S3Stores::new(options.clone());
    let open = |region: &str| {
        stores
            .open(
                region,
                &StoreLocation {
                    store_type: "S3".into(),
                    location: format!("store-{region}"),
                    root: None,
                },
            )
            .unwrap()
    };
    let (home, eu) = (open("us-east-1"), open("eu-west-1"));
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("artifact.zip");
    // 12 MiB: a multipart upload of two parts
    let body: Vec<u8> = (0..12u32 << 20)
        .map(|i| (i.wrapping_mul(2654435761) >> 24) as u8)
        .collect();
    std::fs::write(&file, &body).unwrap();
    let (digest, size) = rt.block_on(home.put_file(&file)).unwrap();
    assert_eq!(size, body.len() as u64);
    assert_eq!(digest, meridian_core::Digest::of(&body));
    assert!(rt.block_on(home.contains(&digest)).unwrap());
    assert!(!rt.block_on(eu.contains(&digest)).unwrap());

    // replicated to eu-west-1 once; the second time nothing is copied
    assert_eq!(
        rt.block_on(eu.replicate_from(home.as_ref(), &digest)).unwrap(),
        body.len() as u64
    );
    assert_eq!(rt.block_on(eu.replicate_from(home.as_ref(), &digest)).unwrap(), 0);
    let back = dir.path().join("back.zip");
    rt.block_on(eu.get_to_file(&digest, &back)).unwrap();
    assert_eq!(std::fs::read(&back).unwrap(), body);

    // boto3 sees the object under its digest in the eu-west-1 bucket, encrypted with the KMS key
    let seen = boto3(
        &moto,
        &format!(
            "h = s3('eu-west-1').head_object(Bucket='store-eu-west-1', Key='sha256/{}.zip')\nprint(json.dumps({{'size': h['ContentLength'], 'sse': h.get('ServerSideEncryption')}}))",
            digest.hex()
        ),
    );
    assert_eq!(seen["size"], body.len() as u64);
    assert_eq!(seen["sse"], "aws:kms");

    assert_eq!(rt.block_on(eu.list()).unwrap(), vec![digest]);
    rt.block_on(eu.delete(&digest)).unwrap();
    assert!(!rt.block_on(eu.contains(&digest)).unwrap());

    // a store whose bucket does not exist says so
    let missing = stores
        .open(
            "ap-southeast-2",
            &StoreLocation {
                store_type: "S3".into(),
                location: "no-such-bucket".into(),
                root: None,
            },
        )
        .unwrap();
    let e = rt.block_on(missing.put_file(&file)).unwrap_err().to_string();
    assert!(e.contains("no-such-bucket") || e.contains("NoSuchBucket"), "{e}");
}

const STACK_V1: &str = r#"
Parameters:
  Env:
    Type: String
Resources:
  Config:
    Type: AWS::SSM::Parameter
    Properties:
      Name: /hello/env
      Type: String
      Value: !Ref Env
Outputs:
  ParameterName:
    Value: !Ref Config
"#;

#[test]
fn stacks_deploy_through_change_sets_with_their_events() {
    use meridian_aws::stacks::CloudFormationStacks;
    use meridian_region::stacks::{Progress, StackDeployer, StackOutcome, StackRequest};
    let Some(moto) = moto() else { return };
    let options = AwsOptions {
        endpoint_url: Some(moto.url.clone()),
        ..Default::default()
    };
    let rt = rt();
    let mut stacks = CloudFormationStacks::new(options);
    stacks.poll = Duration::from_millis(100);
    let dir = tempfile::tempdir().unwrap();
    let template = dir.path().join("template.yaml");
    std::fs::write(&template, STACK_V1).unwrap();
    let said = std::sync::Arc::new(std::sync::Mutex::new(Vec::<String>::new()));
    let progress = {
        let said = said.clone();
        Progress::say(std::sync::Arc::new(move |l: &str| {
            said.lock().unwrap().push(l.to_string())
        }))
    };
    let request = |env: &str| StackRequest {
        region: "eu-west-1".into(),
        stack_name: "hello".into(),
        template_path: template.clone(),
        parameters: [("Env".to_string(), env.to_string())].into(),
        tags: [("app".to_string(), "hello".to_string())].into(),
        ..Default::default()
    };

    assert_eq!(rt.block_on(stacks.describe_stack("eu-west-1", "hello")).unwrap(), None);
    let created = rt
        .block_on(stacks.deploy(&request("staging"), progress.clone()))
        .unwrap();
    let StackOutcome::Applied(info) = created else {
        panic!("{created:?}")
    };
    assert_eq!(info.stack_status, "CREATE_COMPLETE");
    // moto 5.1.22 keeps no outputs and no tags for a stack made by a change set (docs/aws.md)
    let lines = said.lock().unwrap().clone();
    assert!(
        lines.iter().any(|l| l.contains("Add Config AWS::SSM::Parameter")),
        "{lines:?}"
    );
    // the stack's events, streamed as they come (moto reports the stack's own, not its resources')
    assert!(
        lines
            .iter()
            .any(|l| l == "eu-west-1 hello: hello AWS::CloudFormation::Stack CREATE_COMPLETE"),
        "{lines:?}"
    );

    // what boto3 sees: the stack in eu-west-1 with its parameter and tag, and the resource
    let seen = boto3(
        &moto,
        "cf = client('cloudformation', 'eu-west-1')\nssm = client('ssm', 'eu-west-1')\ns = cf.describe_stacks(StackName='hello')['Stacks'][0]\nprint(json.dumps([s['StackStatus'], s['Parameters'], ssm.get_parameter(Name='/hello/env')['Parameter']['Value']]))",
    );
    assert_eq!(seen[0], "CREATE_COMPLETE");
    assert_eq!(
        seen[1],
        serde_json::json!([{"ParameterKey": "Env", "ParameterValue": "staging"}])
    );
    assert_eq!(seen[2], "staging");

    // an update through an UPDATE change set
    let updated = rt.block_on(stacks.deploy(&request("prod"), progress.clone())).unwrap();
    assert!(
        matches!(&updated, StackOutcome::Applied(s) if s.stack_status == "UPDATE_COMPLETE"),
        "{updated:?}"
    );
    assert_eq!(updated.stack().parameters.get("Env").map(String::as_str), Some("prod"));

    // a named change set, described, then executed
    std::fs::write(
        &template,
        STACK_V1.replace(
            "Type: String\n      Value",
            "Type: String\n      Description: env\n      Value",
        ),
    )
    .unwrap();
    let mut named = request("prod");
    named.change_set_name = Some("described".into());
    let changes = rt
        .block_on(stacks.create_change_set(&named, progress.say.clone()))
        .unwrap();
    assert!(
        changes
            .iter()
            .any(|l| l.starts_with("Modify Config AWS::SSM::Parameter")),
        "{changes:?}"
    );
    let executed = rt
        .block_on(stacks.execute_change_set("eu-west-1", "hello", "described", progress.clone()))
        .unwrap();
    assert_eq!(executed.stack().stack_status, "UPDATE_COMPLETE");

    rt.block_on(stacks.delete_stack("eu-west-1", "hello", progress.say.clone()))
        .unwrap();
    assert_eq!(rt.block_on(stacks.describe_stack("eu-west-1", "hello")).unwrap(), None);
}

/// The delivery driver's port on AWS: alias weights through UpdateAlias (seen by boto3) and
/// invocations; a call moto cannot answer fails with a short, clear error.
#[test]
fn functions_shift_aliases_invoke_and_read_metrics() {
    use meridian_aws::functions::AwsFunctions;
    use meridian_region::FunctionControl;
    let Some(moto) = moto() else { return };
    let options = AwsOptions {
        endpoint_url: Some(moto.url.clone()),
        ..Default::default()
    };
    // moto runs Lambda code in Docker unless told to echo the payload instead
    boto3(
        &moto,
        &format!(
            "import urllib.request\nurllib.request.urlopen(urllib.request.Request('{}/moto-api/config', data=json.dumps({{'lambda': {{'use_docker': False}}}}).encode(), method='POST', headers={{'Content-Type': 'application/json'}}))\nprint('{{}}')",
            moto.url
        ),
    );
    boto3(
        &moto,
        &format!(
            "{}{}",
            two_versions("hello"),
            r#"
lam.create_alias(FunctionName='hello', Name='live', FunctionVersion='1')
cw = client('cloudwatch', 'eu-west-1')
dims = [{'Name': 'FunctionName', 'Value': 'hello'}, {'Name': 'Resource', 'Value': 'hello:live'}]
import datetime
now = datetime.datetime.now(datetime.timezone.utc)
cw.put_metric_data(Namespace='AWS/Lambda', MetricData=[
    {'MetricName': 'Invocations', 'Dimensions': dims, 'Value': 40, 'Timestamp': now},
    {'MetricName': 'Errors', 'Dimensions': dims, 'Value': 3, 'Timestamp': now},
])
print('{}')
"#
        ),
    );
    let functions = AwsFunctions::new(options).unwrap();
    // called from inside another runtime's task, as the delivery driver is
    let rt = rt();
    rt.block_on(async {
        functions
            .route_alias("eu-west-1", "hello", "live", "1", Some(("2", 0.1)))
            .unwrap();
    });
    let routing = boto3(
        &moto,
        "lam = client('lambda', 'eu-west-1')\na = lam.get_alias(FunctionName='hello', Name='live')\nprint(json.dumps([a['FunctionVersion'], a.get('RoutingConfig', {}).get('AdditionalVersionWeights', {})]))",
    );
    assert_eq!(routing, serde_json::json!(["1", {"2": 0.1}]));
    functions.route_alias("eu-west-1", "hello", "live", "2", None).unwrap();
    let routing = boto3(
        &moto,
        "lam = client('lambda', 'eu-west-1')\na = lam.get_alias(FunctionName='hello', Name='live')\nprint(json.dumps([a['FunctionVersion'], a.get('RoutingConfig', {}).get('AdditionalVersionWeights', {})]))",
    );
    assert_eq!(routing, serde_json::json!(["2", {}]));

    assert!(functions.invoke("eu-west-1", "hello", br#"{"n": 1}"#).unwrap());
    functions.invoke_event("eu-west-1", "hello", b"{}").unwrap();
    // (moto without Docker answers an invocation of any name, so a missing function is not
    // checked here)

    // Metrics per alias, as Lambda puts them (put above; moto answers GetMetricData because
    // aws-sdk-cloudwatch is pinned to 1.99, which speaks the awsQuery protocol moto serves)
    let now = meridian_core::clock::SystemClock.now_millis();
    let points = functions
        .metrics("eu-west-1", "hello", Some("live"), now - 600_000, now + 60_000, 60_000)
        .unwrap();
    let (invocations, errors) = points
        .iter()
        .fold((0, 0), |(i, e), p| (i + p.invocations, e + p.errors));
    assert_eq!((invocations, errors), (40, 3), "{points:?}");
    // other qualifiers see none of it
    assert!(functions
        .metrics("eu-west-1", "hello", Some("2"), now - 600_000, now + 60_000, 60_000)
        .unwrap()
        .is_empty());

    // What each version ran of the alias's traffic, as Lambda records an alias with weights:
    // under the alias, with the version that ran (ExecutedVersion). The judge reads these; the
    // version's own qualifier has none of it.
    boto3(
        &moto,
        r#"
import datetime
cw = client('cloudwatch', 'eu-west-1')
now = datetime.datetime.now(datetime.timezone.utc)
for v, n, e in (('1', 90, 0), ('2', 10, 4)):
    dims = [{'Name': 'FunctionName', 'Value': 'hello'}, {'Name': 'Resource', 'Value': 'hello:live'}, {'Name': 'ExecutedVersion', 'Value': v}]
    cw.put_metric_data(Namespace='AWS/Lambda', MetricData=[
        {'MetricName': 'Invocations', 'Dimensions': dims, 'Value': n, 'Timestamp': now},
        {'MetricName': 'Errors', 'Dimensions': dims, 'Value': e, 'Timestamp': now},
    ])
print('{}')
"#,
    );
    for (version, want) in [("1", (90, 0)), ("2", (10, 4))] {
        let points = functions
            .version_metrics(
                "eu-west-1",
                "hello",
                "live",
                version,
                now - 600_000,
                now + 60_000,
                60_000,
            )
            .unwrap();
        let got = points
            .iter()
            .fold((0, 0), |(i, e), p| (i + p.invocations, e + p.errors));
        assert_eq!(got, want, "version {version}: {points:?}");
    }
    assert!(functions
        .metrics("eu-west-1", "hello", Some("2"), now - 600_000, now + 60_000, 60_000)
        .unwrap()
        .is_empty());

    // Alarm states as CloudWatch has them (DescribeAlarms), which the driver reads on AWS
    boto3(
        &moto,
        "cw = client('cloudwatch', 'eu-west-1')\ncw.put_metric_alarm(AlarmName='hello-errors', Namespace='AWS/Lambda', MetricName='Errors', Statistic='Sum', Period=60, EvaluationPeriods=1, Threshold=0, ComparisonOperator='GreaterThanThreshold')\ncw.set_alarm_state(AlarmName='hello-errors', StateValue='ALARM', StateReason='3 errors')\nprint('{}')",
    );
    let (state, reason) = functions.alarm_state("eu-west-1", "hello-errors").unwrap().unwrap();
    assert_eq!(state, meridian_delivery::alarm::AlarmState::Alarm);
    assert_eq!(reason, "3 errors");
    let e = functions.alarm_state("eu-west-1", "no-such-alarm").unwrap_err();
    assert_eq!(e.kind, meridian_region::ErrorKind::NotFound, "{e}");
}

/// A build on CodeBuild (moto's, which records it and reports it succeeded at once without
/// running it): started with the source and overrides, its phases said, and its output artifact
/// copied back from the bucket (put there by the test, as the build would upload it); a build
/// that ends otherwise names its status.
#[test]
fn codebuild_builds_are_started_followed_and_their_artifact_fetched() {
    use meridian_region::services::{RemoteBuild, RemoteBuilds};
    use std::sync::{atomic::AtomicBool, Arc, Mutex};
    let Some(moto) = moto() else { return };
    let options = AwsOptions {
        endpoint_url: Some(moto.url.clone()),
        ..Default::default()
    };
    boto3(
        &moto,
        "s3('eu-west-1').create_bucket(Bucket='builds-euw1', CreateBucketConfiguration={'LocationConstraint': 'eu-west-1'})
s3('eu-west-1').put_object(Bucket='builds-euw1', Key='src.zip', Body=b'PK')
s3('eu-west-1').put_object(Bucket='builds-euw1', Key='out/app/Built.zip', Body=b'the build output')
client('codebuild', 'eu-west-1').create_project(name='app',
    source={'type': 'S3', 'location': 'builds-euw1/src.zip'}, artifacts={'type': 'NO_ARTIFACTS'},
    environment={'type': 'LINUX_CONTAINER', 'image': 'aws/codebuild/standard:7.0', 'computeType': 'BUILD_GENERAL1_SMALL'},
    serviceRole='arn:aws:iam::123456789012:role/codebuild')
print('{}')",
    );
    let dir = tempfile::tempdir().unwrap();
    let mut service = meridian_aws::codebuild::CodeBuildService::new(options);
    service.poll = Duration::from_millis(50);
    let req = RemoteBuild {
        region: "eu-west-1".into(),
        project: "app".into(),
        bucket: "builds-euw1".into(),
        source_key: "src.zip".into(),
        buildspec: Some("version: 0.2\nphases:\n  build:\n    commands: [make]\n".into()),
        env: vec![("STAGE".into(), "prod".into(), "PLAINTEXT".into())],
        timeout_minutes: Some(20),
        output: Some(("out/app/Built.zip".into(), dir.path().join("out.zip"))),
    };
    let said = Arc::new(Mutex::new(Vec::<String>::new()));
    let sink = said.clone();
    let say: meridian_region::Say = Arc::new(move |l: &str| sink.lock().unwrap().push(l.to_string()));
    let done = rt()
        .block_on(service.run_build(&req, say, Arc::new(AtomicBool::new(false))))
        .unwrap();
    assert!(done.id.starts_with("app:"), "{}", done.id);
    assert_eq!(done.status, "SUCCEEDED");
    assert_eq!(std::fs::read(dir.path().join("out.zip")).unwrap(), b"the build output");
    let said = said.lock().unwrap().clone();
    assert!(said[0].starts_with("started build app:"), "{said:?}");
    assert!(said.iter().any(|l| l.starts_with("phase BUILD: SUCCEEDED")), "{said:?}");

    // a project that does not exist: CodeBuild's own error, with the action named
    let missing = RemoteBuild {
        project: "nope".into(),
        output: None,
        ..req
    };
    let e = rt()
        .block_on(service.run_build(&missing, Arc::new(|_: &str| {}), Arc::new(AtomicBool::new(false))))
        .unwrap_err();
    assert!(
        e.message.contains("codebuild:StartBuild in eu-west-1 failed"),
        "{}",
        e.message
    );
    assert!(e.message.contains("Project cannot be found"), "{}", e.message);
}

/// A CodeDeploy deployment of an alias (what CloudFormation starts for an alias under
/// `CodeDeployLambdaAliasUpdate`), made with boto3 in moto: found by its group and time, read
/// from its AppSpec (function, alias, versions, configuration), looked at (status, the alias's
/// weights) and followed by the engine's delivery driver through the SDK, which records it
/// under CodeDeploy's id. moto's deployments stay `Created` and it has no `StopDeployment` or
/// deployment targets: the follower ends when told the stack operation is over, and the stop
/// fails naming the action.
#[test]
fn codedeploy_deployments_are_found_read_and_followed() {
    use meridian_aws::codedeploy::{self, CodeDeployHandle};
    use meridian_delivery::follow::RemoteStatus;
    use meridian_region::stacks::{DeliveryOptions, DeploymentHandle};
    let Some(moto) = moto() else { return };
    let options = AwsOptions {
        endpoint_url: Some(moto.url.clone()),
        ..Default::default()
    };
    let started = meridian_core::clock::SystemClock.now_millis() / 1000;
    let id = boto3(
        &moto,
        &format!(
            "{}{}",
            two_versions("app-Hello-1"),
            r#"
# CodeDeploy's canary has moved 10% to version 2
lam.create_alias(FunctionName='app-Hello-1', Name='live', FunctionVersion='1', RoutingConfig={'AdditionalVersionWeights': {'2': 0.1}})
cd = client('codedeploy', 'eu-west-1')
cd.create_application(applicationName='app-ServerlessDeploymentApplication-X', computePlatform='Lambda')
cd.create_deployment_group(applicationName='app-ServerlessDeploymentApplication-X', deploymentGroupName='app-HelloDeploymentGroup-Y', serviceRoleArn=role, deploymentConfigName='CodeDeployDefault.LambdaCanary10Percent5Minutes')
appspec = {'version': 0.0, 'Resources': [{'Hello': {'Type': 'AWS::Lambda::Function', 'Properties': {'Name': 'app-Hello-1', 'Alias': 'live', 'CurrentVersion': '1', 'TargetVersion': '2'}}}]}
d = cd.create_deployment(applicationName='app-ServerlessDeploymentApplication-X', deploymentGroupName='app-HelloDeploymentGroup-Y', revision={'revisionType': 'AppSpecContent', 'appSpecContent': {'content': json.dumps(appspec)}})
print(json.dumps(d['deploymentId']))
"#
        ),
    );
    let id = id.as_str().unwrap().to_string();
    let rt = rt();
    let config = rt.block_on(options.sdk_config("eu-west-1"));
    let cd = aws_sdk_codedeploy::Client::new(&config);
    let lambda = aws_sdk_lambda::Client::new(&config);
    let found = rt
        .block_on(codedeploy::deployments_since(
            &cd,
            "eu-west-1",
            "app-ServerlessDeploymentApplication-X",
            "app-HelloDeploymentGroup-Y",
            started - 60,
        ))
        .unwrap();
    assert_eq!(found, vec![id.clone()]);
    let delivery = DeliveryOptions {
        pipeline: Some("hello".into()),
        execution_id: Some("e-1".into()),
        ..Default::default()
    };
    let d = match rt
        .block_on(codedeploy::describe(&cd, "eu-west-1", "app", &id, &delivery))
        .unwrap()
    {
        codedeploy::Described::Move { deployment, created_ms } => {
            assert!(created_ms >= started * 1000 - 1000, "{created_ms}");
            *deployment
        }
        other => panic!("{other:?}"),
    };
    assert_eq!(
        (
            d.function.as_str(),
            d.alias.as_str(),
            d.from_version.as_str(),
            d.to_version.as_str(),
            d.config_name.as_str()
        ),
        (
            "app-Hello-1",
            "live",
            "1",
            "2",
            "CodeDeployDefault.LambdaCanary10Percent5Minutes"
        )
    );

    let handle = CodeDeployHandle::new(
        rt.handle().clone(),
        cd.clone(),
        lambda.clone(),
        d.clone(),
        Default::default(),
    );
    // Looked at from a blocking thread, as the driver does.
    let look = std::thread::scope(|s| s.spawn(|| handle.look()).join().unwrap()).unwrap();
    assert_eq!(look.status, RemoteStatus::Created);
    assert_eq!(look.new_version_percent, Some(10.0));
    // (moto has no StopDeployment: the error names the action, as AWS's AccessDenied would)
    let e = std::thread::scope(|s| s.spawn(|| handle.stop("test")).join().unwrap()).unwrap_err();
    assert!(e.to_string().contains("codedeploy:StopDeployment"), "{e}");

    // Followed by the engine's driver, as a change set's execution follows it: on a blocking
    // thread of the stack operation's runtime, until the operation says it is over.
    let dir = tempfile::tempdir().unwrap();
    let functions = std::sync::Arc::new(meridian_aws::functions::AwsFunctions::new(options.clone()).unwrap());
    let shifter = std::sync::Arc::new(
        meridian_engine::delivery::Shifter::new(
            functions,
            meridian_engine::delivery::DeliveryStore::open(dir.path()).unwrap(),
        )
        .for_backend("aws"),
    );
    let lines = std::sync::Arc::new(std::sync::Mutex::new(Vec::<String>::new()));
    let say: meridian_region::Say = {
        let lines = lines.clone();
        std::sync::Arc::new(move |l: &str| lines.lock().unwrap().push(l.to_string()))
    };
    let cf = aws_sdk_cloudformation::Client::new(&config);
    let failures = rt.block_on(async {
        let mut followers = codedeploy::Followers::new(
            shifter.clone(),
            delivery.clone(),
            say.clone(),
            "eu-west-1",
            "app",
            started * 1000,
            cd.clone(),
            lambda.clone(),
        )
        .with_groups(vec![(
            "app-ServerlessDeploymentApplication-X".into(),
            "app-HelloDeploymentGroup-Y".into(),
        )]);
        // Nothing is searched before an alias is being updated.
        followers.find(&cf).await;
        followers.saw("AWS::Lambda::Function", "UPDATE_IN_PROGRESS");
        followers.find(&cf).await;
        assert!(lines.lock().unwrap().is_empty(), "{:?}", lines.lock().unwrap());
        followers.saw("AWS::Lambda::Alias", "UPDATE_IN_PROGRESS");
        followers.find(&cf).await;
        tokio::time::sleep(Duration::from_millis(300)).await;
        // found once: the last search after the stack settles follows nothing twice
        followers.find_last(&cf).await;
        followers.finish("the stack ended UPDATE_COMPLETE").await
    });
    let said = lines.lock().unwrap().join("\n");
    assert_eq!(said.matches("CodeDeploy deploys app-Hello-1:live").count(), 1, "{said}");
    // A deployment created before the execution began is an earlier update's: not followed.
    let failures_later = rt.block_on(async {
        let mut followers = codedeploy::Followers::new(
            shifter.clone(),
            delivery.clone(),
            say,
            "eu-west-1",
            "app",
            (started + 120) * 1000,
            cd,
            lambda,
        )
        .with_groups(vec![(
            "app-ServerlessDeploymentApplication-X".into(),
            "app-HelloDeploymentGroup-Y".into(),
        )]);
        followers.saw("AWS::Lambda::Alias", "UPDATE_IN_PROGRESS");
        followers.find_last(&cf).await;
        followers.finish("the stack ended UPDATE_COMPLETE").await
    });
    assert!(failures_later.is_empty());
    assert_eq!(
        lines
            .lock()
            .unwrap()
            .join("\n")
            .matches("CodeDeploy deploys app-Hello-1:live")
            .count(),
        1,
        "{}",
        lines.lock().unwrap().join("\n")
    );
    assert!(failures.is_empty(), "{failures:?}");
    let said = lines.lock().unwrap().join("\n");
    assert!(
        said.contains(&format!(
            "[eu-west-1 {id}] CodeDeploy deploys app-Hello-1:live version 1 -> 2"
        )),
        "{said}"
    );
    assert!(
        said.contains("10% on the new version: app-Hello-1:live version 2"),
        "{said}"
    );
    let row = shifter.store().get(&id).unwrap().unwrap();
    assert_eq!(row.status, "Unknown");
    assert_eq!(row.new_version_percent, 10.0);
    assert_eq!(row.pipeline.as_deref(), Some("hello"));
    assert!(
        row.reason
            .as_deref()
            .unwrap_or_default()
            .contains("the stack ended UPDATE_COMPLETE, while CodeDeploy still said Created"),
        "{row:?}"
    );
}
