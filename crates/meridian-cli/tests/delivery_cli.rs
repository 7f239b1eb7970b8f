//! Progressive delivery through the CLI, with real functions: canary shifting under synthetic
//! traffic judged against the old version, an alarm rolling a faulty version back, lifecycle
//! hooks reporting through the local CodeDeploy API (with boto3), operator abort, and a driver
//! killed mid-shift whose alias is put back by the next process.

use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

struct Env {
    root: PathBuf,
    data: PathBuf,
    python: Option<PathBuf>,
    _tmp: tempfile::TempDir,
}

fn setup() -> Env {
    let tmp = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(tmp.path().join("src")).unwrap();
    Env {
        root: tmp.path().to_path_buf(),
        data: tmp.path().join("data"),
        python: None,
        _tmp: tmp,
    }
}

fn command(env: &Env, args: &[&str]) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_meridian"));
    c.arg("--data-dir").arg(&env.data).args(args).current_dir(&env.root);
    if let Some(p) = &env.python {
        c.env("MERIDIAN_PYTHON", p);
    }
    c
}

fn cmd(env: &Env, args: &[&str]) -> Output {
    command(env, args).output().unwrap()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).to_string()
}

fn json(o: &Output) -> Value {
    serde_json::from_slice(&o.stdout)
        .unwrap_or_else(|e| panic!("not JSON ({e}): {}\n{}", String::from_utf8_lossy(&o.stdout), stderr(o)))
}

const TEMPLATE: &str = r#"Transform: AWS::Serverless-2016-10-31
Resources:
  Hello:
    Type: AWS::Serverless::Function
    Properties:
      FunctionName: hello
      CodeUri: src/
      Handler: index.handler
      Runtime: nodejs20.x
      AutoPublishAlias: live
      DeploymentPreference:
        Type: Canary10Percent5Minutes
        Alarms:
          - !Ref Errors
  Errors:
    Type: AWS::CloudWatch::Alarm
    Properties:
      Namespace: AWS/Lambda
      MetricName: Errors
      Dimensions:
        - Name: Resource
          Value: hello:live
      Statistic: Sum
      Period: 60
      EvaluationPeriods: 1
      Threshold: 0
      ComparisonOperator: GreaterThanThreshold
      TreatMissingData: notBreaching
"#;

fn code(env: &Env, body: &str) {
    std::fs::write(env.root.join("src/index.js"), body).unwrap();
}

fn template(env: &Env, text: &str) -> String {
    let p = env.root.join("template.yaml");
    std::fs::write(&p, text).unwrap();
    p.display().to_string()
}

fn deploy_args<'a>(t: &'a str, extra: &[&'a str]) -> Vec<&'a str> {
    let mut a = vec![
        "stack",
        "deploy",
        "--region",
        "us-east-1",
        "--template",
        t,
        "--stack-name",
        "app",
        "--capabilities",
        "CAPABILITY_IAM",
    ];
    a.extend_from_slice(extra);
    a
}

/// The `live` alias of `hello` as ListAliases shows it.
fn alias(env: &Env, _name: &str) -> Value {
    let v = json(&cmd(
        env,
        &[
            "--output",
            "json",
            "lambda",
            "list-aliases",
            "--region",
            "us-east-1",
            "--function-name",
            "hello",
        ],
    ));
    v["Aliases"]
        .as_array()
        .and_then(|a| a.iter().find(|x| x["Name"] == "live"))
        .cloned()
        .unwrap_or_else(|| panic!("no alias live: {v:#}"))
}

fn deployments(env: &Env) -> Vec<Value> {
    json(&cmd(env, &["--output", "json", "deployments", "list"]))
        .as_array()
        .cloned()
        .unwrap_or_default()
}

fn events(env: &Env, id: &str) -> String {
    let o = cmd(env, &["deployments", "show", id]);
    String::from_utf8_lossy(&o.stdout).to_string()
}

fn invoke(env: &Env, target: &str) -> String {
    let o = cmd(env, &["lambda", "invoke", "--region", "us-east-1", target]);
    String::from_utf8_lossy(&o.stdout).trim().to_string()
}

/// [`wait_for`], with the child's stderr (written to `log`) in the failure's message.
fn wait_for_logged(env: &Env, state: &str, child: &mut Child, log: &Path) -> Value {
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| wait_for(env, state, child)));
    result.unwrap_or_else(|e| {
        let why = e
            .downcast_ref::<String>()
            .cloned()
            .or_else(|| e.downcast_ref::<&str>().map(|s| s.to_string()))
            .unwrap_or_default();
        panic!(
            "{why}\n--- its stderr:\n{}",
            std::fs::read_to_string(log).unwrap_or_default()
        )
    })
}

/// Waits until the newest deployment is in `state`.
fn wait_for(env: &Env, state: &str, child: &mut Child) -> Value {
    let start = Instant::now();
    loop {
        if let Some(d) = deployments(env).last() {
            if d["status"] == state {
                return d.clone();
            }
        }
        if let Ok(Some(s)) = child.try_wait() {
            panic!("the deploy ended ({s}) before its deployment reached {state}");
        }
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "no deployment reached {state}: {:?}",
            deployments(env)
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn a_canary_under_traffic_is_judged_and_a_faulty_version_is_rolled_back_by_its_alarm() {
    let env = setup();
    let t = template(&env, TEMPLATE);
    code(&env, "exports.handler = async () => 'v1';\n");
    let o = cmd(&env, &deploy_args(&t, &[]));
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(
        deployments(&env).is_empty(),
        "a new stack's alias is created, not shifted"
    );

    // A good version: 10% for a (scaled) five minutes under traffic, judged, then all of it.
    code(&env, "exports.handler = async () => 'v2';\n");
    let args = [
        "--time-scale",
        "60",
        "--traffic-rate",
        "60",
        "--judge",
        "--judge-max-error-rate-increase",
        "0.05",
    ];
    let o = cmd(&env, &deploy_args(&t, &args));
    assert!(o.status.success(), "{}", stderr(&o));
    let log = stderr(&o);
    assert!(log.contains("version 1 -> 2: 10% for 5m, then 100%"), "{log}");
    let d = deployments(&env);
    assert_eq!(d.len(), 1);
    assert_eq!(d[0]["status"], "Succeeded", "{d:?}");
    let ev = events(&env, d[0]["id"].as_str().unwrap());
    assert!(ev.contains("10% of hello:live on version 2"), "{ev}");
    let verdict = ev
        .lines()
        .find(|l| l.contains(": pass"))
        .unwrap_or_else(|| panic!("{ev}"));
    // The judge counted what each version served, and the canary got about a tenth.
    let counts: Vec<u64> = verdict
        .split(" errors")
        .filter_map(|s| s.rsplit('/').next().and_then(|n| n.trim().parse().ok()))
        .collect();
    assert!(
        counts.len() == 2 && counts[0] >= 50 && counts[1] > 4 * counts[0],
        "{verdict}"
    );
    let a = alias(&env, "hello:live");
    assert_eq!(a["FunctionVersion"], "2", "{a:#}");
    assert!(
        a.get("RoutingConfig")
            .is_none_or(|r| r["AdditionalVersionWeights"].as_object().is_none_or(|w| w.is_empty())),
        "{a:#}"
    );

    // A faulty version: the errors alarm trips during the canary and everything goes back.
    code(&env, "exports.handler = async () => { throw new Error('bug'); };\n");
    let o = cmd(&env, &deploy_args(&t, &["--time-scale", "60", "--traffic-rate", "60"]));
    assert!(!o.status.success(), "the faulty version must fail the deploy");
    let log = stderr(&o);
    assert!(log.contains("went to ALARM"), "{log}");
    let d = deployments(&env);
    assert_eq!(d[1]["status"], "RolledBack", "{d:?}");
    assert_eq!(d[1]["new_version_percent"], 0.0);
    let a = alias(&env, "hello:live");
    assert_eq!(a["FunctionVersion"], "2", "{a:#}");
    assert_eq!(invoke(&env, "hello:live"), "\"v2\"");
    let stack = describe(&env);
    assert_eq!(stack["Stack"]["StackStatus"], "UPDATE_ROLLBACK_COMPLETE", "{stack:#}");
    // The stack's function has its old code back too: $LATEST answers like version 2.
    assert_eq!(invoke(&env, "hello"), "\"v2\"");
}

#[test]
fn an_operator_abort_rolls_back_and_a_killed_driver_is_put_back_by_the_next_process() {
    let env = setup();
    let t = template(&env, TEMPLATE);
    code(&env, "exports.handler = async () => 'v1';\n");
    assert!(cmd(&env, &deploy_args(&t, &[])).status.success());

    // Thirty (scaled) minutes of canary: abort it from another process.
    code(&env, "exports.handler = async () => 'v2';\n");
    let slow = ["--preference", "Canary10Percent30Minutes", "--time-scale", "60"];
    let mut child = command(&env, &deploy_args(&t, &slow))
        .stderr(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    wait_for(&env, "Baking", &mut child);
    let a = alias(&env, "hello:live");
    assert_eq!(a["RoutingConfig"]["AdditionalVersionWeights"]["2"], 0.1, "{a:#}");
    let o = cmd(&env, &["abort", "--region", "us-east-1"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let out = child.wait_with_output().unwrap();
    assert!(!out.status.success(), "an aborted deployment fails the deploy");
    let d = deployments(&env);
    assert_eq!(d[0]["status"], "RolledBack", "{d:?}");
    assert!(events(&env, d[0]["id"].as_str().unwrap()).contains("operator: abort"));
    assert_eq!(alias(&env, "hello:live")["FunctionVersion"], "1");
    let o = cmd(&env, &["promote", "--region", "us-east-1"]);
    assert!(!o.status.success(), "nothing is running any more");
    assert!(
        stderr(&o).contains("no deployment is running in us-east-1"),
        "{}",
        stderr(&o)
    );

    // Killed while baking: the alias is mixed until the next process that opens the region.
    code(&env, "exports.handler = async () => 'v3';\n");
    let mut child = command(&env, &deploy_args(&t, &slow))
        .stderr(Stdio::null())
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    let running = wait_for(&env, "Baking", &mut child);
    child.kill().unwrap();
    child.wait().unwrap();
    let a = alias(&env, "hello:live");
    assert!(
        a["RoutingConfig"]["AdditionalVersionWeights"]
            .as_object()
            .is_some_and(|w| !w.is_empty()),
        "mixed while nobody drives it: {a:#}"
    );
    let o = cmd(&env, &["stack", "list"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("the process running it had ended"),
        "{}",
        stderr(&o)
    );
    let a = alias(&env, "hello:live");
    assert_eq!(a["FunctionVersion"], "1", "{a:#}");
    assert!(
        a.get("RoutingConfig")
            .is_none_or(|r| r["AdditionalVersionWeights"].as_object().is_none_or(|w| w.is_empty())),
        "{a:#}"
    );
    let d = deployments(&env);
    let last = d.iter().find(|x| x["id"] == running["id"]).unwrap();
    assert_eq!(last["status"], "RolledBack", "{d:?}");
    // The stack the killed process was updating is not wedged: it rolled back as CloudFormation
    // rolls back a failed update, with its function's code, and the next deploy goes through.
    assert!(
        stderr(&o).contains("stack app in us-east-1: UPDATE_ROLLBACK_COMPLETE"),
        "{}",
        stderr(&o)
    );
    let s = describe(&env);
    assert_eq!(s["Stack"]["StackStatus"], "UPDATE_ROLLBACK_COMPLETE", "{s:#}");
    assert_eq!(invoke(&env, "hello"), "\"v1\"", "$LATEST has its previous code again");
    let o = cmd(&env, &deploy_args(&t, &["--preference", "AllAtOnce"]));
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(invoke(&env, "hello:live"), "\"v3\"");
    assert_eq!(describe(&env)["Stack"]["StackStatus"], "UPDATE_COMPLETE");
}

fn describe(env: &Env) -> Value {
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
            "app",
        ],
    ))
}

/// `meridian stack cancel-update` from another process stops an update in the middle of its
/// canary: the alias goes back at once and the stack rolls back with CloudFormation's reason.
#[test]
fn cancel_update_stops_a_canary_and_rolls_the_stack_back() {
    let env = setup();
    let t = template(&env, TEMPLATE);
    code(&env, "exports.handler = async () => 'v1';\n");
    assert!(cmd(&env, &deploy_args(&t, &[])).status.success());
    let cancel = ["stack", "cancel-update", "--region", "us-east-1", "--stack-name", "app"];
    let o = cmd(&env, &cancel);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        stderr(&o).contains("CancelUpdateStack cannot be called from current stack status CREATE_COMPLETE"),
        "{}",
        stderr(&o)
    );

    code(&env, "exports.handler = async () => 'v2';\n");
    let slow = ["--preference", "Canary10Percent30Minutes", "--time-scale", "60"];
    let mut child = command(&env, &deploy_args(&t, &slow))
        .stderr(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    wait_for(&env, "Baking", &mut child);
    assert_eq!(describe(&env)["Stack"]["StackStatus"], "UPDATE_IN_PROGRESS");
    let o = cmd(&env, &cancel);
    assert!(o.status.success(), "{}", stderr(&o));
    let out = child.wait_with_output().unwrap();
    assert!(!out.status.success(), "a cancelled update fails the deploy");
    let s = describe(&env);
    assert_eq!(s["Stack"]["StackStatus"], "UPDATE_ROLLBACK_COMPLETE", "{s:#}");
    let ev = String::from_utf8_lossy(
        &cmd(
            &env,
            &["stack", "events", "--region", "us-east-1", "--stack-name", "app"],
        )
        .stdout,
    )
    .to_string();
    assert!(
        ev.lines()
            .any(|l| l.contains("UPDATE_ROLLBACK_IN_PROGRESS") && l.contains("User Initiated")),
        "{ev}"
    );
    assert_eq!(alias(&env, "hello:live")["FunctionVersion"], "1");
    assert_eq!(invoke(&env, "hello"), "\"v1\"");
    assert_eq!(deployments(&env)[0]["status"], "RolledBack");
}

fn venv_python() -> Option<PathBuf> {
    let p = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../.venv/bin/python");
    if p.is_file() {
        return Some(p);
    }
    if std::env::var_os("CI").is_some() {
        panic!(
            "the test peers' Python ({}) is missing; run scripts/setup.sh",
            p.display()
        );
    }
    eprintln!(
        "\n!!! SKIPPING the hook test: {} is missing. Run `bash scripts/setup.sh`.\n",
        p.display()
    );
    None
}

const HOOKED: &str = r#"Transform: AWS::Serverless-2016-10-31
Resources:
  Hello:
    Type: AWS::Serverless::Function
    Properties:
      FunctionName: hello
      CodeUri: src/
      Handler: index.handler
      Runtime: nodejs20.x
      AutoPublishAlias: live
      DeploymentPreference:
        Type: AllAtOnce
        Hooks:
          PreTraffic: !Ref PreTrafficHook
  PreTrafficHook:
    Type: AWS::Serverless::Function
    Properties:
      FunctionName: CodeDeployHook_pre
      CodeUri: hook/
      Handler: hook.handler
      Runtime: python3.11
      Environment:
        Variables:
          HOOK_STATUS: "@STATUS@"
"#;

const HOOK: &str = r#"import os
import boto3

def handler(event, context):
    # What a CodeDeploy hook does on AWS: test, then report with the ids it was given.
    status = os.environ["HOOK_STATUS"]
    if status == "Silent":
        return "never reports"
    boto3.client("codedeploy").put_lifecycle_event_hook_execution_status(
        deploymentId=event["DeploymentId"],
        lifecycleEventHookExecutionId=event["LifecycleEventHookExecutionId"],
        status=status,
    )
    return status
"#;

#[test]
fn lifecycle_hooks_report_with_boto3_through_the_local_codedeploy_api() {
    let Some(python) = venv_python() else { return };
    let mut env = setup();
    env.python = Some(python);
    std::fs::create_dir_all(env.root.join("hook")).unwrap();
    std::fs::write(env.root.join("hook/hook.py"), HOOK).unwrap();
    let caps = ["--capabilities", "CAPABILITY_IAM,CAPABILITY_AUTO_EXPAND"];
    let deploy = |env: &Env, status: &str, version: &str, scale: &str| {
        let t = template(env, &HOOKED.replace("@STATUS@", status));
        code(env, &format!("exports.handler = async () => '{version}';\n"));
        let mut a = deploy_args(&t, &["--time-scale", scale]);
        a.extend_from_slice(&caps);
        cmd(env, &a)
    };
    let o = deploy(&env, "Succeeded", "v1", "1");
    assert!(o.status.success(), "{}", stderr(&o));

    // The hook reports Succeeded: traffic moves.
    let o = deploy(&env, "Succeeded", "v2", "1");
    assert!(o.status.success(), "{}", stderr(&o));
    let d = deployments(&env);
    assert_eq!(d.last().unwrap()["status"], "Succeeded", "{d:?}\n{}", stderr(&o));
    let ev = events(&env, d.last().unwrap()["id"].as_str().unwrap());
    assert!(ev.contains("reported Succeeded"), "{ev}");
    assert_eq!(invoke(&env, "hello:live"), "\"v2\"");

    // It reports Failed: no traffic ever reaches the new version.
    let o = deploy(&env, "Failed", "v3", "1");
    assert!(!o.status.success());
    let d = deployments(&env);
    assert_eq!(d.last().unwrap()["status"], "Failed", "{d:?}");
    assert_eq!(invoke(&env, "hello:live"), "\"v2\"");

    // It never reports: it fails at its (scaled) one-hour deadline.
    let o = deploy(&env, "Silent", "v4", "3600");
    assert!(!o.status.success());
    let d = deployments(&env);
    let last = d.last().unwrap();
    assert_eq!(last["status"], "Failed", "{d:?}");
    assert!(last["reason"].as_str().unwrap_or_default().contains("hook"), "{last}");
    assert_eq!(invoke(&env, "hello:live"), "\"v2\"");
}

fn git(dir: &Path, args: &[&str]) {
    let o = Command::new("git")
        .args(["-c", "user.email=t@example.com", "-c", "user.name=T"])
        .args(args)
        .current_dir(dir)
        .output()
        .unwrap();
    assert!(o.status.success(), "git {args:?}: {}", stderr(&o));
}

const PIPELINE: &str = r#"pipeline: two-regions
source:
  path: .
build:
  buildspec: buildspec.yml
deploy:
  template: template.yaml
  stack: app
  preference: Canary10Percent5Minutes
  traffic:
    rate: 40
  rollback: @POLICY@
waves:
  - name: primary
    regions: [us-east-1]
  - name: rest
    regions: [eu-west-1]
"#;

const BUILDSPEC: &str = "version: 0.2\nphases:\n  build:\n    commands:\n      - echo build\nartifacts:\n  files:\n    - template.yaml\n    - src/**/*\n";

/// Release `n` of a function that fails in eu-west-1 from release 2 on.
fn release(env: &Env, n: u32) {
    code(
        env,
        &format!(
            "const RELEASE = '{n}';\nexports.handler = async () => {{\n  if (RELEASE !== '1' && process.env.AWS_REGION === 'eu-west-1') throw new Error('eu bug');\n  return RELEASE;\n}};\n"
        ),
    );
    git(&env.root, &["add", "."]);
    git(&env.root, &["commit", "-q", "-m", &format!("release {n}")]);
}

fn live(env: &Env) -> Vec<Value> {
    json(&cmd(env, &["--output", "json", "releases", "two-regions"]))
        .as_array()
        .cloned()
        .unwrap_or_default()
}

fn invoke_in(env: &Env, region: &str) -> String {
    let outputs = cmd(env, &["stack", "outputs", "--region", region, "--stack-name", "app"]);
    let text = String::from_utf8_lossy(&outputs.stdout).to_string();
    let f = text
        .lines()
        .find_map(|l| l.strip_prefix("Fn\t"))
        .unwrap_or_else(|| panic!("{text}"))
        .to_string();
    let o = cmd(env, &["lambda", "invoke", "--region", region, &format!("{f}:live")]);
    String::from_utf8_lossy(&o.stdout).trim().to_string()
}

fn pipeline_env(policy: &str) -> (Env, PathBuf) {
    let env = setup();
    let t = TEMPLATE
        .replace("      FunctionName: hello\n", "")
        .replace("Value: hello:live", "Value: !Sub \"${Hello}:live\"")
        + "Outputs:\n  Fn:\n    Value: !Ref Hello\n";
    template(&env, &t);
    std::fs::write(env.root.join("buildspec.yml"), BUILDSPEC).unwrap();
    let file = env.root.join("meridian.yaml");
    std::fs::write(&file, PIPELINE.replace("@POLICY@", policy)).unwrap();
    git(&env.root, &["init", "-q", "-b", "main"]);
    release(&env, 1);
    (env, file)
}

fn run(env: &Env, file: &Path) -> Output {
    cmd(env, &["run", file.to_str().unwrap(), "--time-scale", "60"])
}

#[test]
fn a_failed_region_is_rolled_back_alone_or_with_every_region_of_its_execution() {
    // Policy `region`: eu-west-1 fails and goes back; us-east-1 keeps release 2.
    let (env, file) = pipeline_env("region");
    let o = run(&env, &file);
    assert!(o.status.success(), "{}", stderr(&o));
    let first: Vec<String> = live(&env)
        .iter()
        .map(|r| r["release_id"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(first.len(), 2);
    assert_eq!(first[0], first[1], "one release in both regions");
    release(&env, 2);
    let o = run(&env, &file);
    assert!(!o.status.success(), "release 2 fails in eu-west-1");
    assert!(stderr(&o).contains("went to ALARM"), "{}", stderr(&o));
    let now = live(&env);
    let by_region = |rows: &[Value], r: &str| {
        rows.iter()
            .find(|x| x["region"] == r)
            .map(|x| x["release_id"].as_str().unwrap().to_string())
            .unwrap()
    };
    let r1 = first[0].clone();
    let r2 = by_region(&now, "us-east-1");
    assert_ne!(r2, r1, "us-east-1 moved to release 2");
    assert_eq!(by_region(&now, "eu-west-1"), r1, "eu-west-1 stayed on release 1");
    assert_eq!(invoke_in(&env, "us-east-1"), "\"2\"");
    assert_eq!(invoke_in(&env, "eu-west-1"), "\"1\"");
    let history = json(&cmd(
        &env,
        &["--output", "json", "releases", "two-regions", "--history"],
    ));
    let statuses: Vec<(String, String)> = history
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["region"].as_str().unwrap().into(),
                r["status"].as_str().unwrap().into(),
            )
        })
        .collect();
    assert!(
        statuses.contains(&("eu-west-1".into(), "failed".into())),
        "{statuses:?}"
    );

    // An operator puts us-east-1 back on release 1, shifting it again.
    let o = cmd(
        &env,
        &[
            "rollback",
            "two-regions",
            "--regions",
            "us-east-1",
            "--time-scale",
            "60",
            "--preference",
            "AllAtOnce",
        ],
    );
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(by_region(&live(&env), "us-east-1"), r1);
    assert_eq!(invoke_in(&env, "us-east-1"), "\"1\"");
    let history = json(&cmd(
        &env,
        &["--output", "json", "releases", "two-regions", "--history"],
    ));
    assert!(
        history
            .as_array()
            .unwrap()
            .iter()
            .any(|r| r["region"] == "us-east-1" && r["release_id"] == r2 && r["status"] == "rolled-back"),
        "{history:#}"
    );

    // Policy `execution`: the failure in eu-west-1 also puts us-east-1 back on release 1.
    let (env, file) = pipeline_env("execution");
    assert!(run(&env, &file).status.success());
    let r1 = live(&env)[0]["release_id"].as_str().unwrap().to_string();
    release(&env, 2);
    let o = run(&env, &file);
    assert!(!o.status.success());
    let now = live(&env);
    assert_eq!(by_region(&now, "us-east-1"), r1, "{}", stderr(&o));
    assert_eq!(by_region(&now, "eu-west-1"), r1);
    assert_eq!(invoke_in(&env, "us-east-1"), "\"1\"");
    assert_eq!(invoke_in(&env, "eu-west-1"), "\"1\"");
}

/// The issue users met: `meridian run` killed (SIGKILL) during the primary region's canary. The
/// next command puts the alias back and rolls the stack back (UPDATE_ROLLBACK_COMPLETE), the
/// ledger still says release 1 is live there, and the next run deploys the release everywhere.
#[test]
fn a_run_killed_during_the_primary_canary_leaves_nothing_wedged() {
    let (env, file) = pipeline_env("region");
    let o = run(&env, &file);
    assert!(o.status.success(), "{}", stderr(&o));
    let first = live(&env);
    assert_eq!(invoke_in(&env, "us-east-1"), "\"1\"");

    code(&env, "exports.handler = async () => 'good';\n");
    git(&env.root, &["add", "."]);
    git(&env.root, &["commit", "-q", "-m", "good release"]);
    let log = env.root.join("killed-run.log");
    let mut child = command(&env, &["run", file.to_str().unwrap(), "--time-scale", "60"])
        .stderr(std::fs::File::create(&log).unwrap())
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    let d = wait_for_logged(&env, "Baking", &mut child, &log);
    assert_eq!(d["region"], "us-east-1", "{d}");
    child.kill().unwrap();
    child.wait().unwrap();

    let stack = describe(&env);
    assert_eq!(stack["Stack"]["StackStatus"], "UPDATE_ROLLBACK_COMPLETE", "{stack:#}");
    assert_eq!(invoke_in(&env, "us-east-1"), "\"1\"");
    let ledger = live(&env);
    assert_eq!(ledger, first, "the ledger still has release 1 live everywhere");

    let o = run(&env, &file);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(invoke_in(&env, "us-east-1"), "\"good\"");
    assert_eq!(invoke_in(&env, "eu-west-1"), "\"good\"");
}

fn function_in(env: &Env, region: &str) -> String {
    let outputs = cmd(env, &["stack", "outputs", "--region", region, "--stack-name", "app"]);
    let text = String::from_utf8_lossy(&outputs.stdout).to_string();
    text.lines()
        .find_map(|l| l.strip_prefix("Fn\t"))
        .unwrap_or_else(|| panic!("{text}"))
        .to_string()
}

/// After recovery, every region is on the release the ledger says is live there: the stack is
/// stable and the `live` alias wholly on the ledger's version.
fn regions_match_the_ledger(env: &Env, what: &str) {
    let ledger = live(env);
    for region in ["us-east-1", "eu-west-1"] {
        let row = ledger
            .iter()
            .find(|r| r["region"] == region)
            .unwrap_or_else(|| panic!("{what}: nothing live in {region}: {ledger:?}"));
        let s = json(&cmd(
            env,
            &[
                "--output",
                "json",
                "stack",
                "describe",
                "--region",
                region,
                "--stack-name",
                "app",
            ],
        ));
        let status = s["Stack"]["StackStatus"].as_str().unwrap().to_string();
        assert!(
            matches!(
                status.as_str(),
                "UPDATE_COMPLETE" | "UPDATE_ROLLBACK_COMPLETE" | "CREATE_COMPLETE"
            ),
            "{what}: {region} stack {status}"
        );
        let f = function_in(env, region);
        let aliases = json(&cmd(
            env,
            &[
                "--output",
                "json",
                "lambda",
                "list-aliases",
                "--region",
                region,
                "--function-name",
                &f,
            ],
        ));
        let a = aliases["Aliases"]
            .as_array()
            .and_then(|l| l.iter().find(|x| x["Name"] == "live"))
            .cloned()
            .unwrap_or_else(|| panic!("{what}: {aliases}"));
        assert!(
            a.get("RoutingConfig")
                .is_none_or(|r| r["AdditionalVersionWeights"].as_object().is_none_or(|w| w.is_empty())),
            "{what}: {region} alias left mixed: {a}"
        );
        let version = row["functions"][0]["version"].as_str().unwrap_or_default();
        assert_eq!(
            a["FunctionVersion"], version,
            "{what}: {region}: alias {a} vs ledger {row}"
        );
    }
}

/// `meridian run` killed (SIGKILL) after each of its journal writes, and after each of its stack
/// events (the deploys and their traffic shifts, in both waves), in turn: the next commands
/// recover it, every region is on its ledger's live release, and the next run succeeds.
#[test]
fn a_run_killed_at_every_deploy_and_shift_step_is_recovered() {
    let (env, file) = pipeline_env("region");
    let o = run(&env, &file);
    assert!(o.status.success(), "{}", stderr(&o));
    let mut release = 1;
    let mut kills = 0;
    let mut points = std::collections::BTreeMap::new();
    for fault in [
        "MERIDIAN_FAULT_KILL_AFTER_STACK_EVENTS",
        "MERIDIAN_FAULT_KILL_AFTER_WRITES",
    ] {
        for n in 1.. {
            assert!(n < 120, "{fault}: the run never completed");
            release += 1;
            code(&env, &format!("exports.handler = async () => 'r{release}';\n"));
            git(&env.root, &["commit", "-q", "-am", &format!("release {release}")]);
            let o = command(&env, &["run", file.to_str().unwrap(), "--time-scale", "600"])
                .env(fault, n.to_string())
                .output()
                .unwrap();
            use std::os::unix::process::ExitStatusExt;
            let killed = o.status.signal() == Some(9);
            let what = format!("{fault}={n}");
            if killed {
                kills += 1;
                *points.entry(fault).or_insert(0) += 1;
                // The next command recovers; a resumed execution finishes in the background.
                let start = Instant::now();
                loop {
                    let list = json(&cmd(&env, &["--output", "json", "executions", "list"]));
                    let last = list.as_array().unwrap().last().unwrap().clone();
                    if last["status"] != "InProgress" && last["status"] != "Stopping" {
                        break;
                    }
                    assert!(
                        start.elapsed() < Duration::from_secs(60),
                        "{what}: not recovered: {last}"
                    );
                    std::thread::sleep(Duration::from_millis(100));
                }
                regions_match_the_ledger(&env, &what);
            } else {
                assert!(o.status.success(), "{what}: {}", stderr(&o));
            }
            // Whatever happened, the next run puts this release everywhere.
            let o = run(&env, &file);
            assert!(o.status.success(), "{what}: the next run: {}", stderr(&o));
            regions_match_the_ledger(&env, &format!("{what}, then a clean run"));
            assert_eq!(invoke_in(&env, "eu-west-1"), format!("\"r{release}\""), "{what}");
            if !killed {
                break;
            }
        }
    }
    eprintln!("kill points: {points:?}");
    assert!(kills >= 20, "only {kills} kill points");
}

/// A canary judged on API traffic: the synthetic traffic goes through the REST API in front of
/// the alias (`--traffic-route`), as users' requests come, so the judge and the alarm see what
/// API Gateway's event and mapping make of the new version; a route that does not reach the
/// alias fails the deploy before anything moves.
#[test]
fn a_canary_behind_a_rest_api_is_judged_on_requests_through_the_api() {
    let env = setup();
    let api_template = TEMPLATE.replace(
        "      AutoPublishAlias: live\n",
        "      AutoPublishAlias: live\n      Events:\n        Hello:\n          Type: Api\n          Properties:\n            Path: /hello\n            Method: get\n",
    );
    let t = template(&env, &api_template);
    code(
        &env,
        "exports.handler = async (e) => ({ statusCode: 200, body: 'v1 ' + e.resource });\n",
    );
    let o = cmd(&env, &deploy_args(&t, &[]));
    assert!(o.status.success(), "{}", stderr(&o));

    // A good version, under 60 requests a second through `GET /hello` of the REST API.
    code(
        &env,
        "exports.handler = async (e) => ({ statusCode: 200, body: 'v2 ' + e.resource });\n",
    );
    let through_api = [
        "--time-scale",
        "60",
        "--traffic-rate",
        "60",
        "--traffic-route",
        "GET /hello",
        "--judge",
        "--judge-max-error-rate-increase",
        "0.05",
    ];
    let o = cmd(&env, &deploy_args(&t, &through_api));
    assert!(o.status.success(), "{}", stderr(&o));
    let d = deployments(&env);
    assert_eq!(d[0]["status"], "Succeeded", "{d:?}");
    let ev = events(&env, d[0]["id"].as_str().unwrap());
    assert!(
        ev.contains("synthetic traffic: 60 requests/s to `GET /hello` of the API in front of hello:live"),
        "{ev}"
    );
    // the judge counted the API's requests on both versions
    let verdict = ev
        .lines()
        .find(|l| l.contains(": pass"))
        .unwrap_or_else(|| panic!("{ev}"));
    let counts: Vec<u64> = verdict
        .split(" errors")
        .filter_map(|s| s.rsplit('/').next().and_then(|n| n.trim().parse().ok()))
        .collect();
    assert!(counts.len() == 2 && counts[0] >= 50, "{verdict}");
    // the function saw API Gateway's event: each request had the REST API's resource
    let a = alias(&env, "hello:live");
    assert_eq!(a["FunctionVersion"], "2", "{a:#}");

    // A version that fails on the requests the API sends (it reads the REST event's
    // `resource`; a direct invoke with `{}` would not reach the bug): the traffic through the
    // API makes it fail, its alarm trips, and the alias goes back.
    code(
        &env,
        "exports.handler = async (e) => { if (e.resource === '/hello') throw new Error('bug'); return { statusCode: 200, body: 'v3' }; };\n",
    );
    let o = cmd(&env, &deploy_args(&t, &through_api));
    assert!(
        !o.status.success(),
        "a version that breaks the API must not pass: {}",
        stderr(&o)
    );
    assert!(stderr(&o).contains("went to ALARM"), "{}", stderr(&o));
    let d = deployments(&env);
    assert_eq!(d[1]["status"], "RolledBack", "{d:?}");
    assert_eq!(alias(&env, "hello:live")["FunctionVersion"], "2");

    // A route that does not reach the alias: refused before any traffic moves.
    code(
        &env,
        "exports.handler = async (e) => ({ statusCode: 200, body: 'v4' });\n",
    );
    let mut args = through_api.to_vec();
    args[5] = "GET /nope";
    let o = cmd(&env, &deploy_args(&t, &args));
    assert!(!o.status.success());
    let log = stderr(&o);
    assert!(
        log.contains("no API of region us-east-1 routes `GET /nope` to hello:live"),
        "{log}"
    );
    assert_eq!(alias(&env, "hello:live")["FunctionVersion"], "2");
}
