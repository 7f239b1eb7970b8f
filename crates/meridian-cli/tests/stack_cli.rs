//! Stacks in local regions through the CLI: change sets, rollback, capabilities, exports and
//! unsupported resource types, with real functions behind them.

use serde_json::Value;
use std::path::PathBuf;
use std::process::{Command, Output};

struct Env {
    root: PathBuf,
    data: PathBuf,
    _tmp: tempfile::TempDir,
}

fn setup() -> Env {
    let tmp = tempfile::tempdir().unwrap();
    Env {
        root: tmp.path().to_path_buf(),
        data: tmp.path().join("data"),
        _tmp: tmp,
    }
}

fn cmd(env: &Env, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_meridian"))
        .arg("--data-dir")
        .arg(&env.data)
        .args(args)
        .current_dir(&env.root)
        .output()
        .unwrap()
}

fn write(env: &Env, name: &str, text: &str) -> String {
    let p = env.root.join(name);
    std::fs::write(&p, text).unwrap();
    p.display().to_string()
}

fn deploy(env: &Env, template: &str, stack: &str, extra: &[&str]) -> Output {
    let mut args = vec![
        "--output",
        "json",
        "stack",
        "deploy",
        "--region",
        "us-east-1",
        "--template",
        template,
        "--stack-name",
        stack,
    ];
    args.extend_from_slice(extra);
    cmd(env, &args)
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).to_string()
}

fn json(o: &Output) -> Value {
    serde_json::from_slice(&o.stdout)
        .unwrap_or_else(|e| panic!("not JSON ({e}): {}\n{}", String::from_utf8_lossy(&o.stdout), stderr(o)))
}

fn describe(env: &Env, stack: &str) -> Value {
    json(&cmd(
        env,
        &[
            "--output",
            "json",
            "stack",
            "describe",
            "--region",
            "us-east-1",
            "--stack-name",
            stack,
        ],
    ))
}

fn invoke(env: &Env, function: &str) -> String {
    let o = cmd(env, &["lambda", "invoke", "--region", "us-east-1", function]);
    String::from_utf8_lossy(&o.stdout).trim().to_string()
}

fn function_template(greeting_ref: &str, memory: u32, extra: &str) -> String {
    format!(
        "Parameters:\n  Greeting:\n    Type: String\n    Default: hi\nResources:\n  Fn:\n    Type: AWS::Lambda::Function\n    Properties:\n      FunctionName: greeter\n      Runtime: nodejs20.x\n      Handler: index.handler\n      MemorySize: {memory}\n      Role: arn:aws:iam::123456789012:role/x\n      Environment:\n        Variables:\n          GREETING: {greeting_ref}\n      Code:\n        ZipFile: |\n          exports.handler = async () => process.env.GREETING;\n{extra}"
    )
}

#[test]
fn a_failing_update_rolls_the_stack_and_its_functions_back() {
    let env = setup();
    let t = write(&env, "t.yaml", &function_template("!Ref Greeting", 128, ""));
    let o = deploy(&env, &t, "app", &[]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(invoke(&env, "greeter"), "\"hi\"");

    // The update changes the environment, then a new parameter resource fails: all of it goes back.
    let extra = "  Bad:\n    Type: AWS::Lambda::Version\n    DependsOn: Fn\n    Properties:\n      FunctionName: greeter\n      CodeSha256: bm90LXRoZS1jb2Rl\n";
    let t2 = write(&env, "t2.yaml", &function_template("!Ref Greeting", 256, extra));
    let o = deploy(&env, &t2, "app", &["--param", "Greeting=changed"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("CodeSha256"), "{}", stderr(&o));
    let d = describe(&env, "app");
    assert_eq!(d["Stack"]["StackStatus"], "UPDATE_ROLLBACK_COMPLETE");
    assert_eq!(d["Stack"]["Parameters"]["Greeting"], "hi");
    assert_eq!(
        invoke(&env, "greeter"),
        "\"hi\"",
        "the function is back on its previous environment"
    );
    let f = json(&cmd(
        &env,
        &["--output", "json", "lambda", "get", "--region", "us-east-1", "greeter"],
    ));
    assert_eq!(f["MemorySize"].as_u64(), Some(128), "{f:#}");
    let events = json(&cmd(
        &env,
        &[
            "--output",
            "json",
            "stack",
            "events",
            "--region",
            "us-east-1",
            "--stack-name",
            "app",
        ],
    ));
    let statuses: Vec<String> = events
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            format!(
                "{} {}",
                e["LogicalResourceId"].as_str().unwrap(),
                e["ResourceStatus"].as_str().unwrap()
            )
        })
        .collect();
    for expected in [
        "Fn UPDATE_COMPLETE",
        "Bad CREATE_FAILED",
        "app UPDATE_ROLLBACK_IN_PROGRESS",
        "app UPDATE_ROLLBACK_COMPLETE",
    ] {
        assert!(
            statuses.iter().any(|s| s == expected),
            "missing {expected}: {statuses:#?}"
        );
    }

    // A failed creation ends in ROLLBACK_COMPLETE with nothing left behind, and cannot be updated.
    // (The version fails once the function exists; a property the schema refuses, such as
    // MemorySize 64, is refused before anything is created, as CloudFormation's validation does.)
    let bad = extra.replace("Bad:", "BadFirst:").replace("greeter", "greeter-broken");
    let t3 = write(
        &env,
        "t3.yaml",
        &function_template("x", 128, &bad).replace("FunctionName: greeter\n", "FunctionName: greeter-broken\n"),
    );
    let o = deploy(&env, &t3, "broken", &[]);
    assert_eq!(o.status.code(), Some(1));
    assert_eq!(describe(&env, "broken")["Stack"]["StackStatus"], "ROLLBACK_COMPLETE");
    let o = deploy(&env, &t, "broken", &[]);
    assert!(
        stderr(&o).contains("ROLLBACK_COMPLETE state and can not be updated"),
        "{}",
        stderr(&o)
    );
    let o = cmd(
        &env,
        &["stack", "delete", "--region", "us-east-1", "--stack-name", "broken"],
    );
    assert!(o.status.success(), "{}", stderr(&o));

    // A property the resource type's schema refuses: refused before the stack exists.
    let t4 = write(&env, "t4.yaml", &function_template("x", 64, ""));
    let o = deploy(&env, &t4, "invalid", &[]);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        stderr(&o).contains("Properties validation failed for resource Fn with message: #/MemorySize: 64 is not greater or equal to 128"),
        "{}",
        stderr(&o)
    );
    let o = cmd(
        &env,
        &["stack", "describe", "--region", "us-east-1", "--stack-name", "invalid"],
    );
    assert!(!o.status.success(), "no stack was created");
}

fn strip_ids(mut v: Value) -> Value {
    for k in ["ChangeSetId", "CreationTime", "ChangeSetName"] {
        v.as_object_mut().unwrap().remove(k);
    }
    for c in v["Changes"].as_array_mut().unwrap() {
        if let Some(p) = c.get_mut("PhysicalResourceId") {
            *p = Value::String("<physical id>".into());
        }
    }
    v
}

#[test]
fn change_sets_describe_add_modify_remove_and_replacement() {
    let env = setup();
    let base = "Resources:\n  Name:\n    Type: AWS::SSM::Parameter\n    Properties:\n      Name: /app/name\n      Type: String\n      Value: one\n  Copy:\n    Type: AWS::SSM::Parameter\n    Properties:\n      Name: !Sub '${Name}-copy'\n      Type: String\n      Value: !GetAtt Name.Value\n  Old:\n    Type: AWS::SSM::Parameter\n    Properties:\n      Type: String\n      Value: old\n";
    let t = write(&env, "base.yaml", base);
    assert!(deploy(&env, &t, "params", &[]).status.success());
    let next = "Resources:\n  Name:\n    Type: AWS::SSM::Parameter\n    Properties:\n      Name: /app/renamed\n      Type: String\n      Value: one\n  Copy:\n    Type: AWS::SSM::Parameter\n    Properties:\n      Name: !Sub '${Name}-copy'\n      Type: String\n      Value: two\n  Dependent:\n    Type: AWS::SSM::Parameter\n    Properties:\n      Name: !Sub '${Name}-dep'\n      Type: String\n      Value: x\n  Alarm:\n    Type: AWS::CloudWatch::Alarm\n    Properties:\n      AlarmName: !Sub '${Name}-alarm'\n      MetricName: Errors\n";
    let t2 = write(&env, "next.yaml", next);
    let o = cmd(
        &env,
        &[
            "--output",
            "json",
            "stack",
            "changeset",
            "create",
            "--region",
            "us-east-1",
            "--template",
            &t2,
            "--stack-name",
            "params",
            "--change-set-name",
            "cs1",
        ],
    );
    assert!(o.status.success(), "{}", stderr(&o));
    insta::assert_json_snapshot!("change_set_add_modify_remove", strip_ids(json(&o)));
    // Nothing changed yet; executing applies exactly that.
    assert_eq!(describe(&env, "params")["Resources"].as_array().unwrap().len(), 3);
    let o = cmd(
        &env,
        &[
            "stack",
            "changeset",
            "execute",
            "--region",
            "us-east-1",
            "--stack-name",
            "params",
            "--change-set-name",
            "cs1",
        ],
    );
    assert!(o.status.success(), "{}", stderr(&o));
    let d = describe(&env, "params");
    let ids: Vec<&str> = d["Resources"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["LogicalResourceId"].as_str().unwrap())
        .collect();
    assert_eq!(ids, vec!["Alarm", "Copy", "Dependent", "Name"]);
    let o = cmd(
        &env,
        &[
            "--output",
            "json",
            "stack",
            "changeset",
            "describe",
            "--region",
            "us-east-1",
            "--stack-name",
            "params",
            "--change-set-name",
            "cs1",
        ],
    );
    assert_eq!(json(&o)["ExecutionStatus"], "EXECUTE_COMPLETE");
    // The replaced parameter has its new name in the region's parameter store.
    let o = cmd(
        &env,
        &[
            "secrets",
            "get",
            "--region",
            "us-east-1",
            "--kind",
            "parameter",
            "/app/renamed",
        ],
    );
    assert_eq!(String::from_utf8_lossy(&o.stdout).trim(), "one", "{}", stderr(&o));
    // Deploying the same template again changes nothing.
    let o = deploy(&env, &t2, "params", &[]);
    assert!(o.status.success());
    assert!(stderr(&o).contains("No changes to deploy"), "{}", stderr(&o));
}

#[test]
fn capabilities_are_required_as_aws_requires_them() {
    let env = setup();
    let role = "Resources:\n  R:\n    Type: AWS::IAM::Role\n    Properties:\n      AssumeRolePolicyDocument: {}\n";
    let t = write(&env, "role.yaml", role);
    let o = deploy(&env, &t, "iam", &[]);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        stderr(&o).contains("Requires capabilities : [CAPABILITY_IAM]"),
        "{}",
        stderr(&o)
    );
    let named = write(&env, "named.yaml", &format!("{role}      RoleName: fixed\n"));
    let o = deploy(&env, &named, "iam", &["--capabilities", "CAPABILITY_IAM"]);
    assert!(
        stderr(&o).contains("Requires capabilities : [CAPABILITY_NAMED_IAM]"),
        "{}",
        stderr(&o)
    );
    let o = deploy(&env, &named, "iam", &["--capabilities", "CAPABILITY_NAMED_IAM"]);
    assert!(o.status.success(), "{}", stderr(&o));
    // Nothing was recorded for the refused attempts.
    let list = json(&cmd(&env, &["--output", "json", "stack", "list"]));
    assert_eq!(list.as_array().unwrap().len(), 1);
}

#[test]
fn an_export_in_use_cannot_be_removed() {
    let env = setup();
    let producer = write(
        &env,
        "producer.yaml",
        "Resources:\n  P:\n    Type: AWS::SSM::Parameter\n    Properties:\n      Type: String\n      Value: shared\nOutputs:\n  Name:\n    Value: !Ref P\n    Export:\n      Name: shared-param\n",
    );
    let consumer = write(
        &env,
        "consumer.yaml",
        "Resources:\n  C:\n    Type: AWS::SSM::Parameter\n    Properties:\n      Type: String\n      Value: !ImportValue shared-param\n",
    );
    assert!(deploy(&env, &producer, "producer", &[]).status.success());
    let o = deploy(&env, &consumer, "consumer", &[]);
    assert!(o.status.success(), "{}", stderr(&o));
    let o = cmd(
        &env,
        &["stack", "delete", "--region", "us-east-1", "--stack-name", "producer"],
    );
    assert_eq!(o.status.code(), Some(1));
    assert!(
        stderr(&o).contains("Export shared-param cannot be deleted as it is in use by consumer"),
        "{}",
        stderr(&o)
    );
    let no_export = write(
        &env,
        "producer2.yaml",
        "Resources:\n  P:\n    Type: AWS::SSM::Parameter\n    Properties:\n      Type: String\n      Value: shared\n",
    );
    let o = deploy(&env, &no_export, "producer", &[]);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        stderr(&o).contains("Cannot delete export shared-param as it is in use by consumer"),
        "{}",
        stderr(&o)
    );
    assert_eq!(
        describe(&env, "producer")["Stack"]["StackStatus"],
        "UPDATE_ROLLBACK_COMPLETE"
    );
    // Once the consumer is gone, the producer can go too.
    assert!(cmd(
        &env,
        &["stack", "delete", "--region", "us-east-1", "--stack-name", "consumer"]
    )
    .status
    .success());
    assert!(cmd(
        &env,
        &["stack", "delete", "--region", "us-east-1", "--stack-name", "producer"]
    )
    .status
    .success());
    // A second stack cannot export the same name.
    assert!(deploy(&env, &producer, "producer", &[]).status.success());
    let o = deploy(&env, &producer, "again", &[]);
    assert!(
        stderr(&o).contains("Export with name shared-param is already exported by stack producer"),
        "{}",
        stderr(&o)
    );
}

#[test]
fn unsupported_types_fail_with_name_type_and_line_unless_recorded_as_placeholders() {
    let env = setup();
    let t = write(
        &env,
        "t.yaml",
        "Resources:\n  P:\n    Type: AWS::SSM::Parameter\n    Properties:\n      Type: String\n      Value: v\n  Topic:\n    Type: AWS::EC2::VPC\n",
    );
    let o = deploy(&env, &t, "sns", &[]);
    assert_eq!(o.status.code(), Some(1));
    let e = stderr(&o);
    assert!(
        e.contains("t.yaml:7") && e.contains("`Topic`") && e.contains("AWS::EC2::VPC"),
        "{e}"
    );
    assert!(e.contains("--allow-unsupported"), "{e}");
    let o = deploy(&env, &t, "sns", &["--allow-unsupported"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let d = describe(&env, "sns");
    let topic = d["Resources"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["LogicalResourceId"] == "Topic")
        .unwrap()
        .clone();
    assert_eq!(topic["Local"], "placeholder (not deployed locally)");
    let text = String::from_utf8_lossy(
        &cmd(
            &env,
            &["stack", "describe", "--region", "us-east-1", "--stack-name", "sns"],
        )
        .stdout,
    )
    .to_string();
    assert!(text.contains("placeholder"), "{text}");
}

#[test]
fn sam_templates_deploy_with_local_code_and_publish_versions() {
    let env = setup();
    std::fs::create_dir_all(env.root.join("src")).unwrap();
    std::fs::write(env.root.join("src/index.js"), "exports.handler = async () => 'v1';\n").unwrap();
    let t = write(
        &env,
        "template.yaml",
        "Transform: AWS::Serverless-2016-10-31\nResources:\n  Hello:\n    Type: AWS::Serverless::Function\n    Properties:\n      FunctionName: hello\n      CodeUri: src/\n      Handler: index.handler\n      Runtime: nodejs20.x\n      AutoPublishAlias: live\nOutputs:\n  Fn:\n    Value: !Ref Hello\n",
    );
    let o = deploy(&env, &t, "sam", &["--capabilities", "CAPABILITY_IAM"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(invoke(&env, "hello:live"), "\"v1\"");
    std::fs::write(env.root.join("src/index.js"), "exports.handler = async () => 'v2';\n").unwrap();
    let o = deploy(&env, &t, "sam", &["--capabilities", "CAPABILITY_IAM"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(
        invoke(&env, "hello:live"),
        "\"v2\"",
        "new code, new version, alias moved"
    );
    let aliases = json(&cmd(
        &env,
        &[
            "--output",
            "json",
            "lambda",
            "get",
            "--region",
            "us-east-1",
            "hello:live",
        ],
    ));
    assert_eq!(aliases["Version"], "2", "{aliases:#}");
}

// ---- crashes and races -------------------------------------------------------------------------

const ZIP: &str = "      Code:\n        ZipFile: |\n          exports.handler = async () => process.env.GREETING;\n";

fn function(logical: &str, name: Option<&str>, greeting: &str) -> String {
    format!(
        "  {logical}:\n    Type: AWS::Lambda::Function\n    Properties:\n{}      Runtime: nodejs20.x\n      Handler: index.handler\n      Role: arn:aws:iam::123456789012:role/x\n      Environment:\n        Variables:\n          GREETING: {greeting}\n{ZIP}",
        name.map(|n| format!("      FunctionName: {n}\n")).unwrap_or_default()
    )
}

/// Release `n` of an app: `alpha` answers `v<n>` through its `live` alias on a version published
/// by this release; release 1 has a second function `Beta`, release 2 has `Gamma` instead.
fn release_template(n: u32) -> String {
    let other = if n == 1 {
        function("Beta", None, "beta")
    } else {
        function("Gamma", None, "gamma")
    };
    format!(
        "Resources:\n{}  AlphaV{n}:\n    Type: AWS::Lambda::Version\n    Properties:\n      FunctionName: !Ref Alpha\n  Live:\n    Type: AWS::Lambda::Alias\n    Properties:\n      FunctionName: !Ref Alpha\n      Name: live\n      FunctionVersion: !GetAtt AlphaV{n}.Version\n{other}",
        function("Alpha", Some("alpha"), &format!("v{n}"))
    )
}

fn region_functions(env: &Env) -> Vec<String> {
    let v = json(&cmd(
        env,
        &["--output", "json", "lambda", "list", "--region", "us-east-1"],
    ));
    let mut names: Vec<String> = v["Functions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["FunctionName"].as_str().unwrap().to_string())
        .collect();
    names.sort();
    names
}

fn stack_functions(d: &Value) -> Vec<String> {
    let mut names: Vec<String> = d["Resources"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["ResourceType"] == "AWS::Lambda::Function")
        .map(|r| r["PhysicalResourceId"].as_str().unwrap().to_string())
        .collect();
    names.sort();
    names
}

/// Deploys with `MERIDIAN_FAULT_KILL_AFTER_STACK_EVENTS=n`; true when the process was killed.
fn deploy_killed_after(env: &Env, template: &str, n: u32) -> bool {
    let o = Command::new(env!("CARGO_BIN_EXE_meridian"))
        .arg("--data-dir")
        .arg(&env.data)
        .args([
            "stack",
            "deploy",
            "--region",
            "us-east-1",
            "--template",
            template,
            "--stack-name",
            "app",
        ])
        .env("MERIDIAN_FAULT_KILL_AFTER_STACK_EVENTS", n.to_string())
        .current_dir(&env.root)
        .output()
        .unwrap();
    use std::os::unix::process::ExitStatusExt;
    if o.status.signal() == Some(9) {
        return true;
    }
    assert!(o.status.success(), "after {n} events: {}", stderr(&o));
    false
}

/// A stack deploy killed (SIGKILL) right after each of its stack events in turn, on create and
/// on update: the next command brings the stack to a stable state as CloudFormation would (an
/// interrupted create rolled back and empty, an interrupted update back on its previous release,
/// or finished when only its cleanup was left), no function is left behind outside the stack,
/// and the next deploy succeeds.
#[test]
fn a_deploy_killed_after_every_stack_event_leaves_a_stable_stack() {
    let env = setup();
    let v1 = write(&env, "v1.yaml", &release_template(1));
    let v2 = write(&env, "v2.yaml", &release_template(2));

    let mut create_kills = 0;
    for n in 1.. {
        assert!(n < 40, "the create never completed");
        if !deploy_killed_after(&env, &v1, n) {
            break;
        }
        create_kills += 1;
        let d = describe(&env, "app");
        let status = d["Stack"]["StackStatus"].as_str().unwrap().to_string();
        match status.as_str() {
            "ROLLBACK_COMPLETE" => {
                assert!(stack_functions(&d).is_empty(), "after {n}: {d:#}");
                assert_eq!(
                    region_functions(&env),
                    Vec::<String>::new(),
                    "after {n}: orphaned functions"
                );
                let o = cmd(
                    &env,
                    &["stack", "delete", "--region", "us-east-1", "--stack-name", "app"],
                );
                assert!(o.status.success(), "after {n}: {}", stderr(&o));
            }
            // Killed after its last event: the create had finished.
            "CREATE_COMPLETE" => break,
            other => panic!("after {n} events of the create: {other}\n{d:#}"),
        }
    }
    assert!(create_kills >= 5, "only {create_kills} kill points in the create");
    assert_eq!(invoke(&env, "alpha:live"), "\"v1\"");

    let mut outcomes = std::collections::BTreeMap::<String, u32>::new();
    for n in 1.. {
        assert!(n < 60, "the update never completed");
        let killed = deploy_killed_after(&env, &v2, n);
        let d = describe(&env, "app");
        let status = d["Stack"]["StackStatus"].as_str().unwrap().to_string();
        let answer = match status.as_str() {
            "UPDATE_ROLLBACK_COMPLETE" => "\"v1\"",
            "UPDATE_COMPLETE" => "\"v2\"",
            other => panic!("after {n} events of the update: {other}\n{d:#}"),
        };
        assert_eq!(invoke(&env, "alpha:live"), answer, "after {n}: {status}");
        assert_eq!(invoke(&env, "alpha"), answer, "after {n}: $LATEST of alpha ({status})");
        assert_eq!(
            region_functions(&env),
            stack_functions(&d),
            "after {n} ({status}): the region's functions are the stack's"
        );
        assert_eq!(stack_functions(&d).len(), 2, "after {n}: {d:#}");
        *outcomes.entry(status.clone()).or_default() += 1;
        if !killed {
            break;
        }
        // Back to release 1 for the next kill point.
        if status == "UPDATE_COMPLETE" {
            assert!(!deploy_killed_after(&env, &v1, 1000));
            assert_eq!(invoke(&env, "alpha:live"), "\"v1\"");
        }
    }
    assert!(
        outcomes.get("UPDATE_ROLLBACK_COMPLETE").copied().unwrap_or(0) >= 5,
        "{outcomes:?}"
    );
    assert!(
        outcomes.get("UPDATE_COMPLETE").copied().unwrap_or(0) >= 2,
        "{outcomes:?}"
    );
}

/// Two creates of the same new stack (change sets made while it did not exist, executed by two
/// processes at once): exactly one creates it, the other gets CloudFormation's refusal. And two
/// `stack deploy` of it at once, with different parameters, leave one stack with one set of
/// functions, whichever order they ran in.
#[test]
fn racing_creates_of_one_stack_create_it_once() {
    let env = setup();
    let t = write(&env, "t.yaml", &function_template("!Ref Greeting", 128, ""));
    let meridian = |args: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_meridian"))
            .arg("--data-dir")
            .arg(&env.data)
            .args(args)
            .current_dir(&env.root)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap()
    };
    for round in 0..3 {
        let stack = format!("race{round}");
        for cs in ["a", "b"] {
            let o = cmd(
                &env,
                &[
                    "stack",
                    "changeset",
                    "create",
                    "--region",
                    "us-east-1",
                    "--template",
                    &t,
                    "--stack-name",
                    &stack,
                    "--change-set-name",
                    cs,
                ],
            );
            assert!(o.status.success(), "{}", stderr(&o));
        }
        let exec = |cs: &str| {
            meridian(&[
                "stack",
                "changeset",
                "execute",
                "--region",
                "us-east-1",
                "--stack-name",
                &stack,
                "--change-set-name",
                cs,
            ])
        };
        let (a, b) = (exec("a"), exec("b"));
        let outs = [a.wait_with_output().unwrap(), b.wait_with_output().unwrap()];
        let ok = outs.iter().filter(|o| o.status.success()).count();
        let refusals: Vec<String> = outs.iter().filter(|o| !o.status.success()).map(stderr).collect();
        assert_eq!(ok, 1, "round {round}: {refusals:?}");
        assert!(
            refusals
                .iter()
                .all(|e| e.contains(&format!("Stack [{stack}] already exists"))
                    || e.contains("state and can not be updated")
                    || e.contains("current execution status of [OBSOLETE]")),
            "round {round}: {refusals:?}"
        );
        let d = describe(&env, &stack);
        assert_eq!(d["Stack"]["StackStatus"], "CREATE_COMPLETE");
        assert_eq!(region_functions(&env), vec!["greeter".to_string()]);
        let o = cmd(
            &env,
            &["stack", "delete", "--region", "us-east-1", "--stack-name", &stack],
        );
        assert!(o.status.success(), "{}", stderr(&o));

        // Create-or-update from two processes: serialized, never a second set of resources.
        let deploy = |g: &str| {
            meridian(&[
                "stack",
                "deploy",
                "--region",
                "us-east-1",
                "--template",
                &t,
                "--stack-name",
                &stack,
                "--param",
                &format!("Greeting={g}"),
            ])
        };
        let (a, b) = (deploy("one"), deploy("two"));
        let outs = [a.wait_with_output().unwrap(), b.wait_with_output().unwrap()];
        assert!(
            outs.iter().any(|o| o.status.success()),
            "{:?}",
            outs.iter().map(stderr).collect::<Vec<_>>()
        );
        let d = describe(&env, &stack);
        let status = d["Stack"]["StackStatus"].as_str().unwrap();
        assert!(matches!(status, "CREATE_COMPLETE" | "UPDATE_COMPLETE"), "{d:#}");
        assert_eq!(region_functions(&env), stack_functions(&d));
        let greeting = d["Stack"]["Parameters"]["Greeting"].as_str().unwrap().to_string();
        assert_eq!(invoke(&env, "greeter"), format!("\"{greeting}\""));
        let o = cmd(
            &env,
            &["stack", "delete", "--region", "us-east-1", "--stack-name", &stack],
        );
        assert!(o.status.success(), "{}", stderr(&o));
    }
}

/// Several processes deploying different stacks of one region at once: every stack is created,
/// each with its own function, and none of their writes is lost.
#[test]
fn concurrent_deploys_of_different_stacks_lose_nothing() {
    let env = setup();
    let n = 4;
    let children: Vec<_> = (0..n)
        .map(|i| {
            let t = write(
                &env,
                &format!("t{i}.yaml"),
                &format!(
                    "Resources:\n{}",
                    function(&format!("Fn{i}"), Some(&format!("fn-{i}")), &format!("g{i}"))
                ),
            );
            Command::new(env!("CARGO_BIN_EXE_meridian"))
                .arg("--data-dir")
                .arg(&env.data)
                .args(["stack", "deploy", "--region", "us-east-1", "--template", &t])
                .args(["--stack-name", &format!("s{i}")])
                .current_dir(&env.root)
                .stdout(std::process::Stdio::null())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    for c in children {
        let o = c.wait_with_output().unwrap();
        assert!(o.status.success(), "{}", stderr(&o));
    }
    for i in 0..n {
        let d = describe(&env, &format!("s{i}"));
        assert_eq!(d["Stack"]["StackStatus"], "CREATE_COMPLETE", "{d:#}");
        assert_eq!(invoke(&env, &format!("fn-{i}")), format!("\"g{i}\""));
    }
    let mut expect: Vec<String> = (0..n).map(|i| format!("fn-{i}")).collect();
    expect.sort();
    assert_eq!(region_functions(&env), expect);
}

/// Values known only once a resource exists are resolved when the resources that need them are
/// created: the name cut out of a function's ARN (`!Select [6, !Split [":", !GetAtt Fn.Arn]]`)
/// reaches another function's environment and the stack's outputs as the real, generated name.
#[test]
fn values_known_after_a_resource_exists_deploy_with_their_real_value() {
    let env = setup();
    let name_of_fn = "!Select [6, !Split [':', !GetAtt Fn.Arn]]";
    let t = write(
        &env,
        "late.yaml",
        &format!(
            "Resources:
  Fn:
    Type: AWS::Lambda::Function
    Properties:
      Runtime: nodejs20.x
      Handler: index.handler
      Role: arn:aws:iam::123456789012:role/x
      Code:
        ZipFile: |
          exports.handler = async () => 'hi';
  Reader:
    Type: AWS::Lambda::Function
    Properties:
      FunctionName: reader
      Runtime: nodejs20.x
      Handler: index.handler
      Role: arn:aws:iam::123456789012:role/x
      Environment:
        Variables:
          FN_NAME: {name_of_fn}
          SUBNETS: !Join [',', !Cidr ['10.0.0.0/16', 2, 8]]
      Code:
        ZipFile: |
          exports.handler = async () => process.env.FN_NAME + ' ' + process.env.SUBNETS;
Outputs:
  FnName:
    Value: {name_of_fn}
"
        ),
    );
    // Making the change set, before Fn exists, does not fail on the value still to come.
    let o = cmd(
        &env,
        &[
            "stack",
            "deploy",
            "--region",
            "us-east-1",
            "--template",
            &t,
            "--stack-name",
            "late",
            "--no-execute",
        ],
    );
    assert!(o.status.success(), "{}", stderr(&o));
    let o = deploy(&env, &t, "late", &[]);
    assert!(o.status.success(), "{}", stderr(&o));
    let d = describe(&env, "late");
    let name = d["Stack"]["Outputs"]["FnName"]
        .as_str()
        .unwrap_or_else(|| panic!("{d:#}"))
        .to_string();
    assert!(
        name.starts_with("late-Fn-"),
        "the generated name, not a stand-in: {name}"
    );
    assert_eq!(invoke(&env, &name), "\"hi\"", "{name} is the deployed function");
    assert_eq!(invoke(&env, "reader"), format!("\"{name} 10.0.0.0/24,10.0.1.0/24\""));
}

/// `Fn::GetStackOutput` reads another stack's output, exported or not, in its region or another.
#[test]
fn get_stack_output_reads_another_stacks_outputs() {
    let env = setup();
    let network = write(
        &env,
        "network.yaml",
        "Resources:\n  P:\n    Type: AWS::SSM::Parameter\n    Properties: {Type: String, Value: vpc-0123}\nOutputs:\n  VpcId:\n    Value: !GetAtt P.Value\n",
    );
    let o = cmd(
        &env,
        &[
            "stack",
            "deploy",
            "--region",
            "eu-west-1",
            "--template",
            &network,
            "--stack-name",
            "network",
        ],
    );
    assert!(o.status.success(), "{}", stderr(&o));
    let app = write(
        &env,
        "app.yaml",
        "Resources:\n  Q:\n    Type: AWS::SSM::Parameter\n    Properties:\n      Type: String\n      Value: !GetStackOutput {StackName: network, OutputName: VpcId, Region: eu-west-1}\nOutputs:\n  Vpc:\n    Value: !GetAtt Q.Value\n",
    );
    let o = deploy(&env, &app, "app", &[]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(describe(&env, "app")["Stack"]["Outputs"]["Vpc"], "vpc-0123");
    // An output that does not exist fails the resource, which is rolled back.
    let missing = write(
        &env,
        "missing.yaml",
        &std::fs::read_to_string(&app).unwrap().replace("VpcId", "SubnetId"),
    );
    let o = deploy(&env, &missing, "missing", &[]);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        stderr(&o).contains("Fn::GetStackOutput: stack `network` in eu-west-1 has no output `SubnetId`"),
        "{}",
        stderr(&o)
    );
}

/// The resource types common SAM apps declare resolve `Ref` and `Fn::GetAtt` as on AWS: a bucket
/// is created in the region's local S3 (and removed with the stack when empty), a secret in its
/// secrets store; queues, topics, tables, rules and keys are recorded with the ids and attributes
/// AWS gives them.
#[test]
fn common_resource_types_resolve_ref_and_get_att() {
    let env = setup();
    let t = write(
        &env,
        "t.yaml",
        r#"Resources:
  Bucket:
    Type: AWS::S3::Bucket
    Properties:
      BucketName: app-uploads-us-east-1
  Queue:
    Type: AWS::SQS::Queue
    Properties:
      QueueName: jobs.fifo
      FifoQueue: true
  Topic:
    Type: AWS::SNS::Topic
  Table:
    Type: AWS::DynamoDB::Table
    Properties:
      TableName: items
      AttributeDefinitions: [{AttributeName: id, AttributeType: S}]
      KeySchema: [{AttributeName: id, KeyType: HASH}]
      BillingMode: PAY_PER_REQUEST
      StreamSpecification: {StreamViewType: NEW_IMAGE}
  Rule:
    Type: AWS::Events::Rule
    Properties:
      ScheduleExpression: rate(5 minutes)
  Key:
    Type: AWS::KMS::Key
  Alias:
    Type: AWS::KMS::Alias
    Properties:
      AliasName: alias/app
      TargetKeyId: !Ref Key
  Secret:
    Type: AWS::SecretsManager::Secret
    Properties:
      Name: app/db
      SecretString: '{"password":"hunter2"}'
  Generated:
    Type: AWS::SecretsManager::Secret
    Properties:
      Name: app/generated
      GenerateSecretString:
        SecretStringTemplate: '{"username":"admin"}'
        GenerateStringKey: password
        PasswordLength: 20
        ExcludePunctuation: true
  Policy:
    Type: AWS::SecretsManager::ResourcePolicy
    Properties:
      SecretId: !Ref Secret
      ResourcePolicy: {Version: "2012-10-17", Statement: []}
Outputs:
  BucketName: {Value: !Ref Bucket}
  BucketArn: {Value: !GetAtt Bucket.Arn}
  BucketDomain: {Value: !GetAtt Bucket.RegionalDomainName}
  QueueUrl: {Value: !Ref Queue}
  QueueArn: {Value: !GetAtt Queue.Arn}
  QueueName: {Value: !GetAtt Queue.QueueName}
  TopicArn: {Value: !Ref Topic}
  TopicName: {Value: !GetAtt Topic.TopicName}
  TableName: {Value: !Ref Table}
  TableArn: {Value: !GetAtt Table.Arn}
  StreamArn: {Value: !GetAtt Table.StreamArn}
  RuleArn: {Value: !GetAtt Rule.Arn}
  KeyArn: {Value: !GetAtt Key.Arn}
  KeyId: {Value: !Ref Key}
  Alias: {Value: !Ref Alias}
  SecretArn: {Value: !Ref Secret}
  PolicyId: {Value: !Ref Policy}
"#,
    );
    let o = deploy(&env, &t, "app", &[]);
    assert!(o.status.success(), "{}", stderr(&o));
    let d = describe(&env, "app");
    let out = |k: &str| {
        d["Stack"]["Outputs"][k]
            .as_str()
            .unwrap_or_else(|| panic!("{k}: {d:#}"))
            .to_string()
    };
    assert_eq!(out("BucketName"), "app-uploads-us-east-1");
    assert_eq!(out("BucketArn"), "arn:aws:s3:::app-uploads-us-east-1");
    assert_eq!(out("BucketDomain"), "app-uploads-us-east-1.s3.us-east-1.amazonaws.com");
    assert_eq!(
        out("QueueUrl"),
        "https://sqs.us-east-1.amazonaws.com/123456789012/jobs.fifo"
    );
    assert_eq!(out("QueueArn"), "arn:aws:sqs:us-east-1:123456789012:jobs.fifo");
    assert_eq!(out("QueueName"), "jobs.fifo");
    let topic = out("TopicName");
    assert!(topic.starts_with("app-Topic-"), "{topic}");
    assert_eq!(out("TopicArn"), format!("arn:aws:sns:us-east-1:123456789012:{topic}"));
    assert_eq!(out("TableName"), "items");
    assert_eq!(out("TableArn"), "arn:aws:dynamodb:us-east-1:123456789012:table/items");
    assert!(out("StreamArn").starts_with("arn:aws:dynamodb:us-east-1:123456789012:table/items/stream/"));
    assert!(out("RuleArn").starts_with("arn:aws:events:us-east-1:123456789012:rule/app-Rule-"));
    let key = out("KeyId");
    assert_eq!(key.len(), 36, "{key}");
    assert_eq!(out("KeyArn"), format!("arn:aws:kms:us-east-1:123456789012:key/{key}"));
    assert_eq!(out("Alias"), "alias/app");
    let secret = out("SecretArn");
    assert!(
        secret.starts_with("arn:aws:secretsmanager:us-east-1:123456789012:secret:app/db-"),
        "{secret}"
    );
    assert_eq!(out("PolicyId"), secret);
    let kinds: Vec<(String, String)> = d["Resources"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["LogicalResourceId"].as_str().unwrap().to_string(),
                r["Local"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    assert!(kinds.contains(&("Bucket".into(), "deployed".into())), "{kinds:?}");
    assert!(
        kinds.iter().any(|(id, l)| id == "Queue" && l.starts_with("recorded")),
        "{kinds:?}"
    );

    // Secrets are in the region's secrets store, where builds and {{resolve:secretsmanager:...}} read them.
    let get = |name: &str| {
        let o = cmd(&env, &["secrets", "get", "--region", "us-east-1", name]);
        assert!(o.status.success(), "{}", stderr(&o));
        String::from_utf8_lossy(&o.stdout).trim().to_string()
    };
    assert_eq!(get("app/db"), r#"{"password":"hunter2"}"#);
    let generated: Value = serde_json::from_str(&get("app/generated")).unwrap();
    assert_eq!(generated["username"], "admin");
    let password = generated["password"].as_str().unwrap();
    assert_eq!(password.len(), 20);
    assert!(password.chars().all(|c| c.is_ascii_alphanumeric()), "{password}");
    let clash = write(&env, "clash.yaml", "Resources:\n  S:\n    Type: AWS::SecretsManager::Secret\n    Properties:\n      Name: app/db\n      SecretString: x\n");
    let o = deploy(&env, &clash, "clash", &[]);
    assert!(
        stderr(&o).contains("The operation failed because the secret app/db already exists."),
        "{}",
        stderr(&o)
    );

    // The bucket is in the region's local S3: another stack cannot take its name.
    let bucket_dir = env.data.join("s3/app-uploads-us-east-1");
    assert!(bucket_dir.is_dir());
    let again = write(
        &env,
        "again.yaml",
        "Resources:\n  B:\n    Type: AWS::S3::Bucket\n    Properties:\n      BucketName: app-uploads-us-east-1\n",
    );
    let o = deploy(&env, &again, "other", &[]);
    assert!(!o.status.success());
    assert!(
        stderr(&o).contains("app-uploads-us-east-1 already exists"),
        "{}",
        stderr(&o)
    );
    let bad = write(
        &env,
        "bad.yaml",
        "Resources:\n  B:\n    Type: AWS::S3::Bucket\n    Properties:\n      BucketName: Bad_Name\n",
    );
    let o = deploy(&env, &bad, "bad", &[]);
    assert!(
        stderr(&o).contains("Bucket name should not contain uppercase characters"),
        "{}",
        stderr(&o)
    );

    // Deleting the stack removes the empty bucket.
    let o = cmd(
        &env,
        &["stack", "delete", "--region", "us-east-1", "--stack-name", "app"],
    );
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(!bucket_dir.exists());
    let o = cmd(&env, &["secrets", "get", "--region", "us-east-1", "app/db"]);
    assert!(!o.status.success(), "the secret is deleted with its stack");
}

/// `{{resolve:ssm:...}}` and `{{resolve:secretsmanager:...}}` in properties take their values
/// from the region's stores when the resource is made; the stack store keeps the reference, and a
/// missing parameter fails the change with its name.
#[test]
fn dynamic_references_resolve_from_the_regions_stores() {
    let env = setup();
    let put = |args: &[&str]| assert!(cmd(&env, args).status.success());
    put(&[
        "secrets",
        "put",
        "--kind",
        "parameter",
        "--region",
        "us-east-1",
        "/app/greeting",
        "hello from ssm",
    ]);
    put(&[
        "secrets",
        "put",
        "--region",
        "us-east-1",
        "db",
        r#"{"password":"hunter2"}"#,
    ]);
    let t = write(
        &env,
        "dynamic.yaml",
        "Resources:\n  Copy:\n    Type: AWS::SSM::Parameter\n    Properties:\n      Name: /app/copy\n      Type: String\n      Value: '{{resolve:ssm:/app/greeting}} / {{resolve:secretsmanager:db:SecretString:password}}'\n",
    );
    let out = deploy(&env, &t, "dynamic", &[]);
    assert!(out.status.success(), "{}", stderr(&out));
    let got = cmd(
        &env,
        &[
            "secrets",
            "get",
            "--kind",
            "parameter",
            "--region",
            "us-east-1",
            "/app/copy",
        ],
    );
    assert_eq!(String::from_utf8_lossy(&got.stdout).trim(), "hello from ssm / hunter2");
    let props = cmd(
        &env,
        &[
            "--output",
            "json",
            "stack",
            "describe",
            "--region",
            "us-east-1",
            "--stack-name",
            "dynamic",
        ],
    );
    assert!(
        !String::from_utf8_lossy(&props.stdout).contains("hunter2"),
        "the secret's value is not in the stack's description"
    );

    let missing = write(
        &env,
        "missing.yaml",
        "Resources:\n  Copy:\n    Type: AWS::SSM::Parameter\n    Properties:\n      Type: String\n      Value: '{{resolve:ssm:/app/nope}}'\n",
    );
    let out = deploy(&env, &missing, "missing", &[]);
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("Parameters: [/app/nope]") && stderr(&out).contains("cannot be found in us-east-1"),
        "{}",
        stderr(&out)
    );
}

/// `AWS::Include` reads its snippets from the region's local S3, as CloudFormation reads them
/// from S3: in a resource's properties (`Fn::Transform`, with the location from a parameter) and
/// at the top (`Transform`); a missing snippet fails the deploy with S3's reason, at its line.
#[test]
fn aws_include_reads_snippets_from_the_local_buckets() {
    let env = setup();
    // the bucket, made by a stack as a user would make it
    let b = write(
        &env,
        "bucket.yaml",
        "Resources:\n  Snippets:\n    Type: AWS::S3::Bucket\n    Properties:\n      BucketName: team-snippets\n",
    );
    assert!(deploy(&env, &b, "snippets", &[]).status.success());
    // the objects, where the local S3 keeps them (`aws s3 cp` against the endpoint writes there)
    let objects = env.data.join("s3/team-snippets/cfn");
    std::fs::create_dir_all(&objects).unwrap();
    std::fs::write(
        objects.join("env.yaml"),
        "Environment:\n  Variables:\n    GREETING: !Sub 'hello from ${AWS::Region}'\n",
    )
    .unwrap();
    std::fs::write(
        objects.join("queue.json"),
        r#"{"Resources": {"Jobs": {"Type": "AWS::SQS::Queue", "Properties": {"QueueName": "jobs"}}},
            "Outputs": {"JobsUrl": {"Value": {"Ref": "Jobs"}}}}"#,
    )
    .unwrap();
    let app = |props_location: &str| {
        format!(
            "Transform:\n  Name: AWS::Include\n  Parameters:\n    Location: s3://team-snippets/cfn/queue.json\nParameters:\n  EnvSnippet:\n    Type: String\n    Default: {props_location}\nResources:\n  Fn:\n    Type: AWS::Lambda::Function\n    Properties:\n      FunctionName: greeter\n      Runtime: nodejs20.x\n      Handler: index.handler\n      Role: arn:aws:iam::123456789012:role/x\n      Code:\n        ZipFile: |\n          exports.handler = async () => process.env.GREETING;\n      Fn::Transform:\n        Name: AWS::Include\n        Parameters:\n          Location: !Ref EnvSnippet\n"
        )
    };
    let t = write(&env, "app.yaml", &app("s3://team-snippets/cfn/env.yaml"));
    let o = deploy(&env, &t, "app", &[]);
    assert!(o.status.success(), "{}", stderr(&o));
    // the snippet's environment is the function's, with its Sub evaluated in the region
    assert_eq!(invoke(&env, "greeter"), "\"hello from us-east-1\"");
    // the top-level snippet's resource and output are the stack's
    let d = describe(&env, "app");
    assert_eq!(
        d["Stack"]["Outputs"]["JobsUrl"], "https://sqs.us-east-1.amazonaws.com/123456789012/jobs",
        "{d}"
    );

    // a location with no object: S3's reason, the parameter's line, nothing changed
    let t = write(&env, "app2.yaml", &app("s3://team-snippets/cfn/missing.yaml"));
    let o = deploy(&env, &t, "app", &[]);
    assert!(!o.status.success());
    let e = stderr(&o);
    assert!(
        e.contains("Transform AWS::Include failed with: S3 Error Code: NoSuchKey. The specified key does not exist (s3://team-snippets/cfn/missing.yaml)"),
        "{e}"
    );
    assert!(e.contains("app2.yaml:10"), "the line of resource Fn: {e}");
    assert_eq!(invoke(&env, "greeter"), "\"hello from us-east-1\"");
}

/// A macro backed by a local Lambda function, as on AWS: one stack makes the function and the
/// `AWS::CloudFormation::Macro`; another names it in `Fn::Transform` (its fragment is the
/// mapping that holds the call) and in its `Transform` section (the whole template). A macro's
/// failure fails the deploy with its `errorMessage`; an unknown macro is refused as
/// CloudFormation refuses it.
#[test]
fn macros_backed_by_local_functions_process_templates() {
    let env = setup();
    let macros = write(
        &env,
        "macros.yaml",
        r#"Resources:
  MacroFn:
    Type: AWS::Lambda::Function
    Properties:
      FunctionName: string-macros
      Runtime: nodejs20.x
      Handler: index.handler
      Role: arn:aws:iam::123456789012:role/x
      Code:
        ZipFile: |
          exports.handler = async (event) => {
            const ok = (fragment) => ({ requestId: event.requestId, status: 'success', fragment });
            const p = event.params || {};
            if (p.Operation === 'Upper') return ok(String(p.Input).toUpperCase() + '@' + event.region);
            if (p.Operation === 'Fail') return { requestId: event.requestId, status: 'failure', errorMessage: 'bad input ' + p.Input };
            const f = event.fragment;
            f.Resources.Audit = { Type: 'AWS::SNS::Topic', Properties: { TopicName: 'audit-' + event.templateParameterValues.Env } };
            return ok(f);
          };
  Strings:
    Type: AWS::CloudFormation::Macro
    Properties:
      Name: Strings
      FunctionName: !GetAtt MacroFn.Arn
"#,
    );
    let o = deploy(&env, &macros, "macros", &[]);
    assert!(o.status.success(), "{}", stderr(&o));
    let app = |op: &str| {
        format!(
            "Transform: [Strings]\nParameters:\n  Env:\n    Type: String\n    Default: prod\nResources:\n  Greeting:\n    Type: AWS::SSM::Parameter\n    Properties:\n      Type: String\n      Value:\n        Fn::Transform:\n          Name: Strings\n          Parameters: {{Operation: {op}, Input: hello}}\nOutputs:\n  Greeting:\n    Value: !GetAtt Greeting.Value\n  Audit:\n    Value: !GetAtt Audit.TopicName\n"
        )
    };
    let t = write(&env, "app.yaml", &app("Upper"));
    let o = deploy(&env, &t, "app", &[]);
    assert!(o.status.success(), "{}", stderr(&o));
    let d = describe(&env, "app");
    assert_eq!(d["Stack"]["Outputs"]["Greeting"], "HELLO@us-east-1", "{d}");
    assert_eq!(d["Stack"]["Outputs"]["Audit"], "audit-prod", "{d}");

    let t = write(&env, "app2.yaml", &app("Fail"));
    let o = deploy(&env, &t, "app", &[]);
    assert!(!o.status.success());
    assert!(
        stderr(&o).contains("Transform 123456789012::Strings failed with: bad input hello"),
        "{}",
        stderr(&o)
    );
    // an unknown macro, or one of another region, is refused as CloudFormation refuses it
    let t = write(&env, "app3.yaml", &app("Upper").replace("[Strings]", "[Nope]"));
    let o = deploy(&env, &t, "app", &[]);
    assert!(
        stderr(&o).contains("No transform named 123456789012::Nope found."),
        "{}",
        stderr(&o)
    );
    let o = cmd(
        &env,
        &[
            "stack",
            "deploy",
            "--region",
            "eu-west-1",
            "--template",
            &write(&env, "app4.yaml", &app("Upper")),
            "--stack-name",
            "app",
        ],
    );
    assert!(
        stderr(&o).contains("No transform named 123456789012::Strings found."),
        "{}",
        stderr(&o)
    );
}

/// A CloudFormation module is an account's registered type: local regions say so, by name.
#[test]
fn a_module_is_refused_with_the_reason() {
    let env = setup();
    let t = write(
        &env,
        "module.yaml",
        "Resources:\n  Vpc:\n    Type: MyOrg::Network::Vpc::MODULE\n    Properties:\n      Cidr: 10.0.0.0/16\n",
    );
    let o = deploy(&env, &t, "mod", &[]);
    assert!(!o.status.success());
    let e = stderr(&o);
    assert!(
        e.contains("module.yaml:2: resource `Vpc` is the CloudFormation module MyOrg::Network::Vpc::MODULE: modules are registered in an AWS account and expanded there"),
        "{e}"
    );
}

/// What AWS refuses is refused locally too, with what to do: a parameter value over 4,096 bytes,
/// a function's environment over Lambda's 4 KB, a template over 1 MB.
#[test]
fn aws_quotas_are_refused_locally_as_aws_refuses_them() {
    let env = setup();
    let t = write(&env, "t.yaml", &function_template("!Ref Greeting", 128, ""));
    let o = deploy(&env, &t, "app", &["--param", &format!("Greeting={}", "x".repeat(4097))]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    assert!(
        stderr(&o).contains(
            "parameter `Greeting` is 4097 bytes long; CloudFormation takes parameter values of at most 4096 bytes"
        ),
        "{}",
        stderr(&o)
    );
    assert!(stderr(&o).contains("SSM Parameter Store"), "{}", stderr(&o));
    // 4,096 bytes is still a parameter, but as an environment variable it breaks Lambda's 4 KB.
    let o = deploy(&env, &t, "app", &["--param", &format!("Greeting={}", "x".repeat(4096))]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("exceeded the 4KB limit: 4111 bytes measured as JSON, of variables GREETING"),
        "{}",
        stderr(&o)
    );
    assert_eq!(describe(&env, "app")["Stack"]["StackStatus"], "ROLLBACK_COMPLETE");
    let o = deploy(
        &env,
        &t,
        "small",
        &["--param", &format!("Greeting={}", "x".repeat(4000))],
    );
    assert!(o.status.success(), "{}", stderr(&o));

    // A template over 1 MB as it is sent (its metadata: comments would not be sent) is refused
    // before anything is made.
    let text = function_template("hi", 128, "").replace("FunctionName: greeter\n", "FunctionName: big\n");
    let big = format!("Metadata:\n  Blob: {}\n{text}", "x".repeat(1_048_600));
    let b = write(&env, "big.yaml", &big);
    let o = deploy(&env, &b, "big", &[]);
    assert_ne!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("over CloudFormation's limit of 1048576 bytes for a template"),
        "{}",
        stderr(&o)
    );
    assert!(stderr(&o).contains("nested stacks"), "{}", stderr(&o));
    let d = cmd(
        &env,
        &[
            "--output",
            "json",
            "stack",
            "describe",
            "--region",
            "us-east-1",
            "--stack-name",
            "big",
        ],
    );
    assert!(
        !d.status.success(),
        "no stack is made: {}",
        String::from_utf8_lossy(&d.stdout)
    );
}
