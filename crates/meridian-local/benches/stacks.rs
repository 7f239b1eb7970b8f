//! Deploy, update and delete a stack of 50 functions in a local region (target: under 2 s each).
//! `cargo bench -p meridian-local --bench stacks`

use meridian_engine::stacks::StackRequest;
use meridian_local::stacks::LocalStacks;
use meridian_local::{HostConfig, LambdaHost};
use std::time::Instant;

fn template(version: &str) -> String {
    let mut t = String::from("Resources:\n");
    for i in 0..50 {
        t.push_str(&format!(
            "  Fn{i}:\n    Type: AWS::Lambda::Function\n    Properties:\n      Runtime: nodejs20.x\n      Handler: index.handler\n      Role: arn:aws:iam::123456789012:role/r\n      Environment:\n        Variables:\n          RELEASE: {version}\n      Code:\n        ZipFile: \"exports.handler = async () => '{version}-{i}';\"\n  Fn{i}Version{version}:\n    Type: AWS::Lambda::Version\n    Properties:\n      FunctionName: !Ref Fn{i}\n  Fn{i}Alias:\n    Type: AWS::Lambda::Alias\n    Properties:\n      FunctionName: !Ref Fn{i}\n      Name: live\n      FunctionVersion: !GetAtt Fn{i}Version{version}.Version\n"
        ));
    }
    t
}

fn main() {
    let dir = tempfile::tempdir().expect("tempdir");
    let host = LambdaHost::open(HostConfig::new(dir.path())).expect("host");
    let stacks = LocalStacks::open(dir.path(), dir.path(), host).expect("stacks");
    let quiet = |_: &str| {};
    let req = |version: &str| {
        let path = dir.path().join(format!("t-{version}.yaml"));
        std::fs::write(&path, template(version)).expect("write");
        StackRequest {
            region: "us-east-1".into(),
            stack_name: "fifty".into(),
            template_path: path,
            ..StackRequest::default()
        }
    };
    println!("stack of 50 functions (150 resources), local region:");
    let t = Instant::now();
    stacks.deploy(&req("a"), &quiet, None).expect("create");
    println!("  create: {:>7.1} ms (target < 2000)", t.elapsed().as_secs_f64() * 1e3);
    let t = Instant::now();
    stacks.deploy(&req("b"), &quiet, None).expect("update");
    println!(
        "  update (new code, new versions, aliases moved): {:>7.1} ms (target < 2000)",
        t.elapsed().as_secs_f64() * 1e3
    );
    let t = Instant::now();
    stacks.delete("us-east-1", "fifty", &quiet).expect("delete");
    println!("  delete: {:>7.1} ms (target < 2000)", t.elapsed().as_secs_f64() * 1e3);
}
