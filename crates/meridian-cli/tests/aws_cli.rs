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

fn meridian(dir: &Path, moto: &Moto, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_meridian"))
        .args(args)
        .current_dir(dir)
        .env("MERIDIAN_DATA_DIR", dir.join("data"))
        .env("AWS_ENDPOINT_URL", &moto.url)
        .env("AWS_ACCESS_KEY_ID", "testing")
        .env("AWS_SECRET_ACCESS_KEY", "testing")
        .env_remove("AWS_PROFILE")
        .output()
        .unwrap()
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
    assert_eq!(
        policy["pipeline"]["Statement"][2]["Resource"],
        serde_json::json!(["alias/hello"])
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
