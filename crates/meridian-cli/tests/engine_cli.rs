//! The execution engine as users run it: real `meridian` processes, real git repositories, real
//! shells, a real SQLite journal shared by several processes.

use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

struct Env {
    _tmp: tempfile::TempDir,
    root: PathBuf,
    data: PathBuf,
    repo: PathBuf,
}

fn git(dir: &Path, args: &[&str]) {
    let out = Command::new("git")
        .args(["-c", "user.email=dev@example.com", "-c", "user.name=Dev"])
        .args(args)
        .current_dir(dir)
        .output()
        .expect("git");
    assert!(
        out.status.success(),
        "git {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn setup() -> Env {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().to_path_buf();
    let repo = root.join("app");
    std::fs::create_dir_all(&repo).unwrap();
    git(&repo, &["init", "-q", "-b", "main"]);
    std::fs::write(repo.join("hello.sh"), "#!/bin/sh\necho \"hello from $AWS_REGION\"\n").unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(repo.join("hello.sh"), std::fs::Permissions::from_mode(0o755)).unwrap();
    git(&repo, &["add", "."]);
    git(&repo, &["commit", "-q", "-m", "first"]);
    Env {
        data: root.join("data"),
        root,
        repo,
        _tmp: tmp,
    }
}

fn commands(name: &str, region: Option<&str>, cmds: &[&str], inputs: &[&str], outputs: &[&str]) -> Value {
    let mut a = json!({
        "name": name,
        "actionTypeId": {"category": "Compute", "owner": "AWS", "provider": "Commands", "version": "1"},
        "commands": cmds,
        "inputArtifacts": inputs.iter().map(|i| json!({"name": i})).collect::<Vec<_>>(),
        "outputArtifacts": outputs.iter().map(|o| json!({"name": o})).collect::<Vec<_>>(),
    });
    if let Some(r) = region {
        a["region"] = json!(r);
    }
    a
}

fn source() -> Value {
    json!({"name": "Source", "actions": [{"name": "Source", "namespace": "Src",
        "actionTypeId": {"category": "Source", "owner": "AWS", "provider": "CodeCommit", "version": "1"},
        "configuration": {"RepositoryName": "app", "BranchName": "main"}, "outputArtifacts": [{"name": "Code"}]}]})
}

const REGIONS: [&str; 3] = ["us-east-1", "eu-west-1", "ap-southeast-2"];

fn pipeline(env: &Env, name: &str, mode: &str, stages: Vec<Value>) -> PathBuf {
    let stores: serde_json::Map<String, Value> = REGIONS
        .iter()
        .map(|r| {
            (
                r.to_string(),
                json!({"type": "S3", "location": format!("{name}-artifacts-{r}")}),
            )
        })
        .collect();
    let mut all = vec![source()];
    all.extend(stages);
    let p = json!({"pipeline": {"name": name, "pipelineType": "V2", "executionMode": mode, "artifactStores": stores, "stages": all,
        "variables": [{"name": "Greeting", "defaultValue": "hello"}]}});
    let path = env.root.join(format!("{name}.json"));
    std::fs::write(&path, serde_json::to_string_pretty(&p).unwrap()).unwrap();
    path
}

fn cmd(env: &Env, args: &[&str]) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_meridian"));
    c.arg("--data-dir").arg(&env.data).args(args).current_dir(&env.root);
    c.env_remove("MERIDIAN_FAULT_KILL_AFTER_WRITES");
    c
}

fn run(env: &Env, file: &Path, extra: &[&str]) -> Output {
    let repo = format!("app={}", env.repo.display());
    let mut args = vec!["--output", "json", "run", file.to_str().unwrap(), "--repo", &repo];
    args.extend_from_slice(extra);
    cmd(env, &args).output().unwrap()
}

fn spawn_run(env: &Env, file: &Path, extra: &[&str]) -> Child {
    let repo = format!("app={}", env.repo.display());
    let mut args = vec!["--output", "json", "run", file.to_str().unwrap(), "--repo", &repo];
    args.extend_from_slice(extra);
    cmd(env, &args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

fn json_of(out: &Output) -> Value {
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "not JSON ({e}):\n{}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    })
}

fn list(env: &Env) -> Vec<Value> {
    let out = cmd(env, &["--output", "json", "executions", "list"]).output().unwrap();
    json_of(&out).as_array().cloned().unwrap_or_default()
}

fn show(env: &Env, id: &str) -> Value {
    json_of(
        &cmd(env, &["--output", "json", "executions", "show", id])
            .output()
            .unwrap(),
    )
}

fn action<'a>(exec: &'a Value, name: &str) -> &'a Value {
    exec["stages"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|s| s["actions"].as_array().unwrap())
        .find(|a| a["name"] == name)
        .unwrap()
}

fn wait_for(env: &Env, what: &str, mut f: impl FnMut(&Env) -> bool) {
    let start = Instant::now();
    while !f(env) {
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "timed out waiting for {what}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn log(env: &Env, id: &str, action: &str) -> String {
    String::from_utf8_lossy(&cmd(env, &["logs", id, action]).output().unwrap().stdout).to_string()
}

#[test]
fn multi_region_commands_with_cross_region_artifacts() {
    let env = setup();
    let deploys: Vec<Value> = REGIONS
        .iter()
        .map(|r| {
            commands(
                &format!("Deploy-{r}"),
                Some(r),
                &[
                    "cat built.txt",
                    "./hello.sh",
                    "echo v=#{B.VERSION} g=#{variables.Greeting}",
                    "sleep 0.5",
                ],
                &["Built"],
                &[],
            )
        })
        .collect();
    let mut build = commands(
        "Build",
        None,
        &["./hello.sh > built.txt", "export VERSION=1.0-#{Src.CommitId}"],
        &["Code"],
        &["Built"],
    );
    build["namespace"] = json!("B");
    build["outputVariables"] = json!(["VERSION"]);
    let file = pipeline(
        &env,
        "multi",
        "QUEUED",
        vec![
            json!({"name": "Build", "actions": [build]}),
            json!({"name": "Deploy", "actions": deploys}),
        ],
    );
    let out = run(&env, &file, &["--var", "Greeting=dia duit"]);
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    let v = json_of(&out);
    assert_eq!(v["status"], "Succeeded");
    let id = v["executionId"].as_str().unwrap().to_string();
    let commit = action(&v, "Source")["outputVariables"]["CommitId"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(commit.len(), 40);
    assert_eq!(
        action(&v, "Build")["outputVariables"]["VERSION"],
        format!("1.0-{commit}")
    );
    for r in REGIONS {
        let a = action(&v, &format!("Deploy-{r}"));
        assert_eq!(a["region"], r);
        assert_eq!(a["status"], "Succeeded");
        let text = log(&env, &id, &format!("Deploy-{r}"));
        assert!(
            text.contains("hello from us-east-1"),
            "the build ran in the home region: {text}"
        );
        assert!(text.contains(&format!("hello from {r}")), "{text}");
        assert!(text.contains(&format!("v=1.0-{commit} g=dia duit")), "{text}");
        if r != "us-east-1" {
            assert!(
                text.contains("replicated artifact Built") && text.contains("digest verified"),
                "{text}"
            );
        }
        // The artifact is in that region's own store, under its digest.
        let digest = show(&env, &id)["artifacts"]
            .as_array()
            .unwrap()
            .iter()
            .find(|a| a["name"] == "Built")
            .unwrap()["digest"]
            .as_str()
            .unwrap()
            .trim_start_matches("sha256:")
            .to_string();
        assert!(
            env.data
                .join(format!("s3/multi-artifacts-{r}/sha256/{digest}.zip"))
                .is_file(),
            "no copy in {r}"
        );
    }
    // The three regions really ran at once: their time ranges overlap.
    let starts: Vec<String> = REGIONS
        .iter()
        .map(|r| {
            action(&v, &format!("Deploy-{r}"))["startedAt"]
                .as_str()
                .unwrap()
                .to_string()
        })
        .collect();
    let ends: Vec<String> = REGIONS
        .iter()
        .map(|r| {
            action(&v, &format!("Deploy-{r}"))["endedAt"]
                .as_str()
                .unwrap()
                .to_string()
        })
        .collect();
    assert!(
        starts.iter().max().unwrap() <= ends.iter().min().unwrap(),
        "regions of one run order run concurrently: {starts:?} {ends:?}"
    );

    // A second run of the same commit produces the same bytes: nothing is copied again.
    let again = json_of(&run(&env, &file, &[]));
    assert_eq!(again["status"], "Succeeded");
    let id2 = again["executionId"].as_str().unwrap();
    let text = log(&env, id2, "Deploy-eu-west-1");
    assert!(text.contains("is already in the eu-west-1 store"), "{text}");
    assert!(!text.contains("replicated artifact"), "{text}");
}

#[test]
fn failures_name_the_command_and_stop_later_stages() {
    let env = setup();
    let file = pipeline(
        &env,
        "fails",
        "QUEUED",
        vec![
            json!({"name": "Deploy", "actions": [
                commands("ok", Some("us-east-1"), &["sleep 0.3", "echo fine"], &["Code"], &[]),
                commands("bad", Some("eu-west-1"), &["echo before", "exit 3", "echo never"], &["Code"], &[]),
                commands("later-group", Some("eu-west-1"), &["echo never"], &["Code"], &[]),
            ]}),
            json!({"name": "After", "actions": [commands("after", None, &["echo never"], &["Code"], &[])]}),
        ],
    );
    // Put later-group at run order 2.
    let mut p: Value = serde_json::from_str(&std::fs::read_to_string(&file).unwrap()).unwrap();
    p["pipeline"]["stages"][1]["actions"][2]["runOrder"] = json!(2);
    p["pipeline"]["stages"][1]["actions"][0]["configuration"] = json!({"Unused": "#{Src.NoSuchVariable}"});
    std::fs::write(&file, p.to_string()).unwrap();
    let out = run(&env, &file, &[]);
    assert_eq!(out.status.code(), Some(1));
    let v = json_of(&out);
    assert_eq!(v["status"], "Failed");
    assert_eq!(action(&v, "bad")["error"], "command `exit 3` exited with code 3");
    let ok = action(&v, "ok");
    assert_eq!(ok["status"], "Failed", "an unresolvable reference fails the action");
    assert!(
        ok["error"]
            .as_str()
            .unwrap()
            .contains("`#{Src.NoSuchVariable}`: namespace `Src` has no variable `NoSuchVariable`"),
        "{ok}"
    );
    assert_eq!(
        action(&v, "later-group")["status"],
        "Pending",
        "later run orders do not start"
    );
    assert_eq!(action(&v, "after")["status"], "Pending", "later stages do not start");
    assert_eq!(v["stages"][2]["status"], "Pending");
}

#[test]
fn unimplemented_provider_fails_with_its_name() {
    let env = setup();
    let file = pipeline(
        &env,
        "notyet",
        "QUEUED",
        vec![
            json!({"name": "Invoke", "actions": [{"name": "Smoke", "actionTypeId": {"category": "Invoke", "owner": "AWS", "provider": "StepFunctions", "version": "1"},
            "configuration": {"StateMachineArn": "arn:aws:states:us-east-1:123456789012:stateMachine:x"}}]}),
        ],
    );
    let v = json_of(&run(&env, &file, &[]));
    assert_eq!(
        action(&v, "Smoke")["error"],
        "provider StepFunctions (Invoke/AWS) is not implemented in local regions yet"
    );
}

fn timing_pipeline(env: &Env, name: &str, mode: &str, seconds: f64) -> PathBuf {
    let marks = env.root.join(format!("{name}.marks"));
    let script = format!(
        "echo \"start $(date +%s.%N) $MERIDIAN_EXECUTION_ID\" >> {m}; sleep {seconds}; echo \"end $(date +%s.%N) $MERIDIAN_EXECUTION_ID\" >> {m}",
        m = marks.display()
    );
    pipeline(
        env,
        name,
        mode,
        vec![
            json!({"name": "Build", "actions": [commands("Work", None, &[&script], &["Code"], &[])]}),
            json!({"name": "Deploy", "actions": [commands("Deploy", None, &["true"], &["Code"], &[])]}),
        ],
    )
}

#[test]
fn queued_executions_run_one_at_a_time_across_processes() {
    let env = setup();
    let file = timing_pipeline(&env, "queued", "QUEUED", 0.6);
    let first = spawn_run(&env, &file, &[]);
    wait_for(&env, "the first execution", |e| !list(e).is_empty());
    let second = spawn_run(&env, &file, &[]);
    wait_for(&env, "the second execution to queue", |e| {
        list(e)
            .get(1)
            .is_some_and(|x| x["waiting"].as_str().is_some_and(|w| w.starts_with("queued behind")))
    });
    let (a, b) = (first.wait_with_output().unwrap(), second.wait_with_output().unwrap());
    assert_eq!(json_of(&a)["status"], "Succeeded");
    assert_eq!(json_of(&b)["status"], "Succeeded");
    let marks = std::fs::read_to_string(env.root.join("queued.marks")).unwrap();
    let lines: Vec<&str> = marks.lines().collect();
    assert_eq!(lines.len(), 4, "{marks}");
    assert!(
        lines[0].starts_with("start") && lines[1].starts_with("end") && lines[2].starts_with("start"),
        "no overlap: {marks}"
    );
    assert_eq!(
        lines[0].split(' ').nth(2),
        lines[1].split(' ').nth(2),
        "the first one finished first: {marks}"
    );
}

#[test]
fn superseded_replaces_an_execution_waiting_at_a_stage() {
    let env = setup();
    let file = timing_pipeline(&env, "sup", "SUPERSEDED", 2.0);
    let a = spawn_run(&env, &file, &[]);
    wait_for(&env, "A in Build", |e| {
        list(e)
            .first()
            .is_some_and(|x| show(e, x["executionId"].as_str().unwrap())["stages"][1]["status"] == "InProgress")
    });
    let b = spawn_run(&env, &file, &[]);
    wait_for(&env, "B waiting at Build", |e| {
        list(e).get(1).is_some_and(|x| x["waiting"] == "stage Build")
    });
    let c = spawn_run(&env, &file, &[]);
    let (a, b, c) = (
        a.wait_with_output().unwrap(),
        b.wait_with_output().unwrap(),
        c.wait_with_output().unwrap(),
    );
    let (a, b, c) = (json_of(&a), json_of(&b), json_of(&c));
    assert_eq!(a["status"], "Succeeded");
    assert_eq!(b["status"], "Superseded");
    assert!(
        b["statusReason"].as_str().unwrap().contains(&format!(
            "superseded by execution {}",
            c["executionId"].as_str().unwrap()
        )),
        "{b}"
    );
    assert_eq!(c["status"], "Succeeded");
    assert_eq!(action(&b, "Work")["status"], "Pending", "B never entered Build");
}

fn approval_pipeline(env: &Env, name: &str, timeout: Option<i64>) -> PathBuf {
    let mut approve = json!({"name": "Approve", "actionTypeId": {"category": "Approval", "owner": "AWS", "provider": "Manual", "version": "1"},
        "configuration": {"CustomData": "check the canary"}});
    if let Some(t) = timeout {
        approve["timeoutInMinutes"] = json!(t);
    }
    pipeline(
        env,
        name,
        "QUEUED",
        vec![
            json!({"name": "Gate", "actions": [approve]}),
            json!({"name": "Deploy", "actions": [commands("Deploy", Some("eu-west-1"), &["echo deployed"], &["Code"], &[])]}),
        ],
    )
}

fn waiting_approval(env: &Env) -> Option<String> {
    let id = list(env).first()?["executionId"].as_str()?.to_string();
    (action(&show(env, &id), "Approve")["status"] == "InProgress").then_some(id)
}

#[test]
fn approval_from_a_second_process() {
    let env = setup();
    let file = approval_pipeline(&env, "gate", None);
    let runner = spawn_run(&env, &file, &[]);
    wait_for(&env, "the approval to wait", |e| waiting_approval(e).is_some());
    let id = waiting_approval(&env).unwrap();
    let text = log(&env, &id, "Approve");
    assert!(
        text.contains(&format!("meridian approve {} Approve", &id[..8])) && text.contains("check the canary"),
        "{text}"
    );
    let bad = cmd(&env, &["approve", &id, "Deploy"]).output().unwrap();
    assert_eq!(bad.status.code(), Some(2), "Deploy is not an approval");
    let ok = cmd(&env, &["approve", &id[..8], "Approve", "--comment", "looks good"])
        .output()
        .unwrap();
    assert!(ok.status.success(), "{}", String::from_utf8_lossy(&ok.stderr));
    let v = json_of(&runner.wait_with_output().unwrap());
    assert_eq!(v["status"], "Succeeded");
    assert_eq!(action(&v, "Approve")["outputVariables"]["ApprovalStatus"], "Approved");
    let events = show(&env, &id)["events"].to_string();
    assert!(
        events.contains("approved: looks good"),
        "the decision is in the journal"
    );

    // Rejected.
    let runner = spawn_run(&env, &file, &[]);
    let start = Instant::now();
    let id2 = loop {
        let l = list(&env);
        if let Some(x) = l.get(1) {
            let id2 = x["executionId"].as_str().unwrap().to_string();
            if action(&show(&env, &id2), "Approve")["status"] == "InProgress" {
                break id2;
            }
        }
        assert!(start.elapsed() < Duration::from_secs(30));
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(cmd(
        &env,
        &["approve", &id2, "Approve", "--reject", "--comment", "not today"]
    )
    .output()
    .unwrap()
    .status
    .success());
    let v = json_of(&runner.wait_with_output().unwrap());
    assert_eq!(v["status"], "Failed");
    assert_eq!(action(&v, "Approve")["error"], "rejected: not today");
    assert_eq!(action(&v, "Deploy")["status"], "Pending");
}

#[test]
fn approvals_expire_and_timeouts_kill_the_process_tree() {
    let env = setup();
    // 5 minutes at --time-scale 600 is half a second.
    let file = approval_pipeline(&env, "expire", Some(5));
    let v = json_of(&run(&env, &file, &["--time-scale", "600"]));
    assert_eq!(
        action(&v, "Approve")["error"],
        "the approval expired after 5 minutes without a decision"
    );

    let pidfile = env.root.join("child.pid");
    let mut slow = commands(
        "Slow",
        None,
        &[&format!("(sleep 60 & echo $! > {}; wait)", pidfile.display())],
        &["Code"],
        &[],
    );
    slow["timeoutInMinutes"] = json!(5);
    let file = pipeline(
        &env,
        "slow",
        "QUEUED",
        vec![json!({"name": "Build", "actions": [slow]})],
    );
    let started = Instant::now();
    let v = json_of(&run(&env, &file, &["--time-scale", "300"]));
    assert!(started.elapsed() < Duration::from_secs(20));
    assert_eq!(
        action(&v, "Slow")["error"],
        "timed out after 5 minutes; its processes were killed"
    );
    let pid: i32 = std::fs::read_to_string(&pidfile).unwrap().trim().parse().unwrap();
    std::thread::sleep(Duration::from_millis(200));
    assert!(
        !Path::new(&format!("/proc/{pid}")).exists()
            || std::fs::read_to_string(format!("/proc/{pid}/stat"))
                .unwrap()
                .contains(") Z"),
        "the grandchild sleep was killed too"
    );
}

#[test]
fn retry_runs_the_failed_actions_again_and_continues() {
    let env = setup();
    let marker = env.root.join("second-time");
    let flaky = format!(
        "if [ -f {m} ]; then echo recovered; else touch {m}; echo flaky; exit 1; fi",
        m = marker.display()
    );
    let file = pipeline(
        &env,
        "retry",
        "QUEUED",
        vec![
            json!({"name": "Deploy", "actions": [commands("steady", Some("us-east-1"), &["echo steady"], &["Code"], &[]), commands("flaky", Some("eu-west-1"), &[&flaky], &["Code"], &[])]}),
            json!({"name": "Verify", "actions": [commands("verify", None, &["echo verified"], &["Code"], &[])]}),
        ],
    );
    let v = json_of(&run(&env, &file, &[]));
    assert_eq!(v["status"], "Failed");
    let id = v["executionId"].as_str().unwrap();
    let r = cmd(&env, &["--output", "json", "retry", id, "--failed-actions"])
        .output()
        .unwrap();
    assert_eq!(r.status.code(), Some(0), "{}", String::from_utf8_lossy(&r.stderr));
    let v = json_of(&r);
    assert_eq!(v["status"], "Succeeded");
    assert_eq!(action(&v, "flaky")["attempt"], 2);
    assert_eq!(action(&v, "steady")["attempt"], 1, "only the failed action ran again");
    assert_eq!(action(&v, "verify")["status"], "Succeeded");
    assert!(log(&env, id, "flaky").contains("recovered"));
    let again = cmd(&env, &["retry", id]).output().unwrap();
    assert_eq!(again.status.code(), Some(2), "a succeeded execution is not retried");
}

#[test]
fn stop_with_abandon_kills_running_actions() {
    let env = setup();
    let file = pipeline(
        &env,
        "stop",
        "QUEUED",
        vec![json!({"name": "Build", "actions": [commands("Long", None, &["sleep 60"], &["Code"], &[])]})],
    );
    let runner = spawn_run(&env, &file, &[]);
    let start = Instant::now();
    let id = loop {
        if let Some(x) = list(&env).first() {
            let id = x["executionId"].as_str().unwrap().to_string();
            if action(&show(&env, &id), "Long")["status"] == "InProgress" {
                break id;
            }
        }
        assert!(start.elapsed() < Duration::from_secs(30));
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(cmd(&env, &["stop", &id, "--abandon"])
        .output()
        .unwrap()
        .status
        .success());
    let out = runner.wait_with_output().unwrap();
    assert!(
        start.elapsed() < Duration::from_secs(30),
        "the sleep was killed, not waited for"
    );
    assert_eq!(out.status.code(), Some(1));
    let v = json_of(&out);
    assert_eq!(v["status"], "Stopped");
    assert_eq!(action(&v, "Long")["status"], "Abandoned");
    // Stopping it again says why there is nothing to do.
    let id = v["executionId"].as_str().unwrap();
    let o = cmd(&env, &["stop", id]).output().unwrap();
    assert!(!o.status.success());
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains(&format!(
            "execution {id} has already ended (Stopped): there is nothing to stop"
        )),
        "{err}"
    );
}

/// Kills `meridian run` with SIGKILL right after each of its journal writes in turn, lets the next
/// command recover it, and checks that the journal is consistent every time.
#[test]
fn killed_at_every_transition_then_recovered() {
    let env = setup();
    let file = pipeline(
        &env,
        "crash",
        "QUEUED",
        vec![json!({"name": "Deploy", "actions": [
            commands("us", Some("us-east-1"), &["./hello.sh"], &["Code"], &[]),
            commands("eu", Some("eu-west-1"), &["./hello.sh"], &["Code"], &[]),
        ]})],
    );
    let repo = format!("app={}", env.repo.display());
    let mut killed_points = 0;
    let mut outcomes = std::collections::BTreeMap::<String, usize>::new();
    let mut unrecovered = None;
    for n in 1.. {
        assert!(n < 60, "the run never completed without being killed");
        let out = cmd(
            &env,
            &["--output", "json", "run", file.to_str().unwrap(), "--repo", &repo],
        )
        .env("MERIDIAN_FAULT_KILL_AFTER_WRITES", n.to_string())
        .output()
        .unwrap();
        use std::os::unix::process::ExitStatusExt;
        if out.status.signal() != Some(9) {
            assert!(
                out.status.success(),
                "after {n} writes: {}",
                String::from_utf8_lossy(&out.stderr)
            );
            assert!(
                unrecovered.is_none_or(|u| u == n - 1),
                "a run killed mid-way was not recovered: {unrecovered:?}"
            );
            break;
        }
        killed_points += 1;
        // The next command on the data directory recovers it; wait until it is finished.
        let mut id = String::new();
        wait_for(&env, &format!("recovery after write {n}"), |e| {
            let l = list(e);
            let last = l.last().unwrap();
            id = last["executionId"].as_str().unwrap().to_string();
            last["status"] != "InProgress" && last["status"] != "Stopping"
        });
        let v = show(&env, &id);
        let status = v["status"].as_str().unwrap().to_string();
        let actions: Vec<&Value> = v["stages"]
            .as_array()
            .unwrap()
            .iter()
            .flat_map(|s| s["actions"].as_array().unwrap())
            .collect();
        for a in &actions {
            assert_ne!(a["status"], "InProgress", "after write {n}: {a}");
            if a["status"] == "Succeeded" {
                assert!(!a["startedAt"].is_null() && !a["endedAt"].is_null() && a["attempt"].as_i64().unwrap() >= 1);
            }
        }
        match status.as_str() {
            "Succeeded" => assert!(
                actions.iter().all(|a| a["status"] == "Succeeded"),
                "after write {n}: {v}"
            ),
            "Failed" => {
                let reason = v["statusReason"].as_str().unwrap();
                assert!(reason.contains("not safe to repeat"), "after write {n}: {reason}");
            }
            other => panic!("after write {n}: unexpected status {other}"),
        }
        let events = v["events"].as_array().unwrap();
        assert!(events.windows(2).all(|w| w[0]["seq"].as_i64() < w[1]["seq"].as_i64()));
        if !events.iter().any(|e| e["kind"] == "Recovered") {
            // Only a kill after the very last write (the execution had finished) needs none.
            assert!(unrecovered.is_none(), "after write {n}: no recovery recorded");
            unrecovered = Some(n);
        }
        *outcomes.entry(status).or_default() += 1;
    }
    assert!(killed_points >= 10, "only {killed_points} kill points");
    assert!(
        outcomes.get("Succeeded").copied().unwrap_or(0) > 0,
        "some kills were resumed: {outcomes:?}"
    );
    assert!(
        outcomes.get("Failed").copied().unwrap_or(0) > 0,
        "some kills hit an unsafe action: {outcomes:?}"
    );
}

/// Git source, a CodeBuild build from the repository's buildspec, and packaging for three regions:
/// each region's template points at code stored once in that region's own store.
#[test]
fn build_and_package_for_three_regions() {
    let env = setup();
    let app = &env.repo;
    std::fs::create_dir_all(app.join("src")).unwrap();
    std::fs::write(
        app.join("src/index.js"),
        "exports.handler = async () => ({ statusCode: 200, body: 'hi' });\n",
    )
    .unwrap();
    std::fs::write(
        app.join("template.yaml"),
        "AWSTemplateFormatVersion: '2010-09-09'\nTransform: AWS::Serverless-2016-10-31\nResources:\n  Hello:\n    Type: AWS::Serverless::Function\n    Properties:\n      CodeUri: src/\n      Handler: index.handler\n      Runtime: nodejs20.x\n  Hello2:\n    Type: AWS::Serverless::Function\n    Properties:\n      CodeUri: ./src\n      Handler: index.handler\n      Runtime: nodejs20.x\n",
    )
    .unwrap();
    std::fs::write(
        app.join("buildspec.yml"),
        "version: 0.2\nenv:\n  exported-variables: [BUILT_FOR]\nphases:\n  build:\n    commands:\n      - export BUILT_FOR=$STAGE-$AWS_REGION\n      - echo \"built $CODEBUILD_RESOLVED_SOURCE_VERSION\" > src/build-info.txt\nartifacts:\n  files: ['**/*']\n",
    )
    .unwrap();
    git(app, &["add", "."]);
    git(app, &["commit", "-q", "-m", "app"]);
    let build = json!({"name": "Build", "namespace": "Build", "actionTypeId": {"category": "Build", "owner": "AWS", "provider": "CodeBuild", "version": "1"},
        "configuration": {"ProjectName": "app-build"}, "inputArtifacts": [{"name": "Code"}], "outputArtifacts": [{"name": "BuildOutput"}]});
    let package = json!({"name": "Package", "actionTypeId": {"category": "Build", "owner": "Meridian", "provider": "Package", "version": "1"},
        "configuration": {"TemplatePath": "BuildOutput::template.yaml", "Regions": REGIONS.join(",")},
        "inputArtifacts": [{"name": "BuildOutput"}], "outputArtifacts": [{"name": "Packaged"}]});
    let verify: Vec<Value> = REGIONS
        .iter()
        .map(|r| {
            commands(
                &format!("Verify-{r}"),
                Some(r),
                &["grep -c 'sha256/' packaged-template-$AWS_REGION.yaml"],
                &["Packaged"],
                &[],
            )
        })
        .collect();
    let file = pipeline(
        &env,
        "pkg",
        "QUEUED",
        vec![
            json!({"name": "Build", "actions": [build]}),
            json!({"name": "Package", "actions": [package]}),
            json!({"name": "Verify", "actions": verify}),
        ],
    );
    let mut p: Value = serde_json::from_str(&std::fs::read_to_string(&file).unwrap()).unwrap();
    p["pipeline"]["meridian"] = json!({"buildProjects": {"app-build": {"buildspec": {"path": "buildspec.yml"},
        "environmentVariables": [{"name": "STAGE", "value": "prod", "type": "PLAINTEXT"}]}}});
    std::fs::write(&file, p.to_string()).unwrap();
    let out = run(&env, &file, &[]);
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    let v = json_of(&out);
    let id = v["executionId"].as_str().unwrap();
    assert_eq!(action(&v, "Build")["outputVariables"]["BUILT_FOR"], "prod-us-east-1");
    assert_eq!(
        action(&v, "Package")["outputVariables"]["UploadedObjects"],
        "3",
        "one object per region for two functions sharing code"
    );
    // The build ran with CODEBUILD_RESOLVED_SOURCE_VERSION set to the source's commit, and its
    // artifact carries what it wrote.
    let commit = action(&v, "Source")["outputVariables"]["CommitId"]
        .as_str()
        .unwrap()
        .to_string();
    let built = show(&env, id)["artifacts"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["name"] == "BuildOutput")
        .unwrap()["digest"]
        .as_str()
        .unwrap()
        .trim_start_matches("sha256:")
        .to_string();
    let built_dir = env.root.join("built");
    meridian_engine::artifacts::unpack(
        &env.data.join(format!("s3/pkg-artifacts-us-east-1/sha256/{built}.zip")),
        &built_dir,
    )
    .unwrap();
    assert_eq!(
        std::fs::read_to_string(built_dir.join("src/build-info.txt")).unwrap(),
        format!("built {commit}\n")
    );
    // Unpack the Packaged artifact and check every region's template.
    let arts = show(&env, id)["artifacts"].clone();
    let packaged = arts
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["name"] == "Packaged")
        .unwrap();
    let digest = packaged["digest"].as_str().unwrap().trim_start_matches("sha256:");
    let zip = env.data.join(format!("s3/pkg-artifacts-us-east-1/sha256/{digest}.zip"));
    let dir = env.root.join("packaged");
    meridian_engine::artifacts::unpack(&zip, &dir).unwrap();
    for r in REGIONS {
        let text = std::fs::read_to_string(dir.join(format!("packaged-template-{r}.yaml"))).unwrap();
        let keys: std::collections::BTreeSet<&str> = text
            .split(&format!("s3://pkg-artifacts-{r}/"))
            .skip(1)
            .map(|rest| {
                rest.split(|c: char| c.is_whitespace() || c == '\'' || c == '"')
                    .next()
                    .unwrap()
            })
            .collect();
        assert_eq!(keys.len(), 1, "{r}: both functions share one object: {text}");
        let key = keys.into_iter().next().unwrap();
        assert!(
            env.data.join(format!("s3/pkg-artifacts-{r}")).join(key).is_file(),
            "{r}: {key} is in the region's own store"
        );
        assert!(
            !text.contains("CodeUri: src/"),
            "{r}: local paths are rewritten: {text}"
        );
        assert!(
            log(&env, id, &format!("Verify-{r}")).contains('2'),
            "the region's own template has both references"
        );
    }
}

#[test]
fn on_failure_retry_reruns_the_failed_actions_automatically() {
    let env = setup();
    let marker = env.root.join("tried");
    let flaky = format!(
        "if [ -f {m} ]; then echo ok; else touch {m}; exit 1; fi",
        m = marker.display()
    );
    let file = pipeline(
        &env,
        "autoretry",
        "QUEUED",
        vec![
            json!({"name": "Deploy", "onFailure": {"result": "RETRY", "retryConfiguration": {"retryMode": "FAILED_ACTIONS"}},
            "actions": [commands("flaky", None, &[&flaky], &["Code"], &[])]}),
        ],
    );
    let v = json_of(&run(&env, &file, &[]));
    assert_eq!(v["status"], "Succeeded", "{v}");
    assert_eq!(action(&v, "flaky")["attempt"], 2);
    let events = show(&env, v["executionId"].as_str().unwrap())["events"].to_string();
    assert!(events.contains("automatic retry after"), "{events}");
}

#[test]
fn on_failure_rollback_reruns_the_stage_with_the_last_good_artifacts() {
    let env = setup();
    let file = pipeline(
        &env,
        "rollback",
        "QUEUED",
        vec![json!({"name": "Deploy", "onFailure": {"result": "ROLLBACK"},
            "actions": [commands("deploy", None, &["test ! -f bad", "cat hello.sh"], &["Code"], &[])]})],
    );
    let good = json_of(&run(&env, &file, &[]));
    assert_eq!(good["status"], "Succeeded");
    std::fs::write(env.repo.join("bad"), "broken release\n").unwrap();
    git(&env.repo, &["add", "."]);
    git(&env.repo, &["commit", "-q", "-m", "bad"]);
    let bad = json_of(&run(&env, &file, &[]));
    assert_eq!(bad["status"], "Failed");
    let reason = bad["statusReason"].as_str().unwrap();
    let good_id = good["executionId"].as_str().unwrap();
    assert!(
        reason.contains("rolled back by execution") && reason.contains(good_id),
        "{reason}"
    );
    // The rollback execution runs the Deploy stage (only) with the good execution's artifacts.
    wait_for(&env, "the rollback", |e| {
        list(e).len() == 3 && list(e)[2]["status"] == "Succeeded"
    });
    let rb = &list(&env)[2];
    assert!(rb["trigger"].as_str().unwrap().starts_with("Rollback of"), "{rb}");
    let rb = show(&env, rb["executionId"].as_str().unwrap());
    assert_eq!(action(&rb, "deploy")["status"], "Succeeded");
    assert_eq!(action(&rb, "Source")["status"], "Pending", "only the failed stage runs");
}

#[test]
fn parallel_executions_overlap() {
    let env = setup();
    let file = timing_pipeline(&env, "par", "PARALLEL", 0.8);
    let a = spawn_run(&env, &file, &[]);
    let b = spawn_run(&env, &file, &[]);
    assert_eq!(json_of(&a.wait_with_output().unwrap())["status"], "Succeeded");
    assert_eq!(json_of(&b.wait_with_output().unwrap())["status"], "Succeeded");
    let marks = std::fs::read_to_string(env.root.join("par.marks")).unwrap();
    let kinds: Vec<&str> = marks.lines().map(|l| l.split(' ').next().unwrap()).collect();
    assert_eq!(kinds, ["start", "start", "end", "end"], "both ran at once: {marks}");
}

#[test]
fn retention_deletes_artifacts_of_older_executions() {
    let env = setup();
    let file = pipeline(
        &env,
        "gc",
        "QUEUED",
        vec![json!({"name": "Build", "actions": [commands("b", None, &["date +%s%N > stamp"], &["Code"], &["Out"])]})],
    );
    let first = json_of(&run(&env, &file, &["--retain", "1"]));
    let digest_of = |v: &Value| -> String {
        show(&env, v["executionId"].as_str().unwrap())["artifacts"]
            .as_array()
            .unwrap()
            .iter()
            .find(|a| a["name"] == "Out")
            .unwrap()["digest"]
            .as_str()
            .unwrap()
            .trim_start_matches("sha256:")
            .to_string()
    };
    let old = digest_of(&first);
    let store = env.data.join("s3/gc-artifacts-us-east-1/sha256");
    // --artifact-root puts the stores elsewhere.
    let elsewhere = env.root.join("stores");
    let moved = json_of(&run(&env, &file, &["--artifact-root", elsewhere.to_str().unwrap()]));
    assert_eq!(moved["status"], "Succeeded");
    assert!(elsewhere
        .join("s3/gc-artifacts-us-east-1/sha256")
        .join(format!("{}.zip", digest_of(&moved)))
        .is_file());
    assert!(store.join(format!("{old}.zip")).is_file());
    let second = json_of(&run(&env, &file, &["--retain", "1"]));
    let new = digest_of(&second);
    assert_ne!(old, new);
    assert!(
        !store.join(format!("{old}.zip")).exists(),
        "the older execution's artifact is deleted"
    );
    assert!(
        store.join(format!("{new}.zip")).is_file(),
        "the retained execution's artifact is kept"
    );
}

/// The symphoniacloud application end to end: its SAM template with a real Node handler, built,
/// packaged for its two regions, and deployed by the symphoniacloud pipeline's own Deploy stage
/// (CloudFormation actions with `Region:` and `BuildOutput::packaged-template-<region>.yaml`); then
/// the function answers through the Lambda API in both regions.
#[test]
fn symphoniacloud_app_deployed_to_two_regions_by_its_own_deploy_stage() {
    let fixtures = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/fixtures/multi-region-codepipeline");
    if !fixtures.is_dir() {
        assert!(
            std::env::var_os("CI").is_none(),
            "the shared fixtures are missing in CI"
        );
        eprintln!("\n!!! ../shared/fixtures is absent: the symphoniacloud end-to-end test was NOT run !!!\n");
        return;
    }
    let env = setup();
    let app = &env.repo;
    // The template as published, except its runtime: nodejs8.10 was retired by AWS (and local
    // regions refuse it the same way), so the app is built for a current Node.
    let template = std::fs::read_to_string(fixtures.join("template.yaml"))
        .unwrap()
        .replace("nodejs8.10", "nodejs20.x");
    std::fs::write(app.join("template.yaml"), template).unwrap();
    std::fs::create_dir_all(app.join("src")).unwrap();
    std::fs::write(
        app.join("src/lambda.js"),
        "exports.handler = async (event) => ({ message: 'hello from ' + process.env.AWS_REGION, input: event });\n",
    )
    .unwrap();
    std::fs::write(
        app.join("buildspec.yml"),
        "version: 0.2\nphases:\n  build:\n    commands:\n      - mkdir -p target/src && cp src/lambda.js target/src/\nartifacts:\n  files: ['**/*']\n",
    )
    .unwrap();
    git(app, &["add", "."]);
    git(app, &["commit", "-q", "-m", "app"]);

    // The Deploy stage exactly as the symphoniacloud pipeline declares it.
    let opts = meridian_pipeline::LoadOptions {
        params: [("GitHubOAuthToken", "t"), ("ArtifactBucketNamePrefix", "sym")]
            .into_iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
        ..Default::default()
    };
    let loaded = meridian_pipeline::load_files(&[fixtures.join("deployment-pipeline/pipeline.yaml")], &opts);
    let deploy = loaded.pipelines[0]
        .stages
        .iter()
        .find(|s| s.name == "Deploy")
        .expect("the fixture has a Deploy stage");
    let deploy = serde_json::to_value(deploy).unwrap();
    assert_eq!(deploy["actions"][1]["region"], "us-west-2");

    let stores: serde_json::Map<String, Value> = ["us-east-1", "us-west-2"]
        .iter()
        .map(|r| (r.to_string(), json!({"type": "S3", "location": format!("sym-{r}")})))
        .collect();
    let build = json!({"name": "Build", "actionTypeId": {"category": "Build", "owner": "AWS", "provider": "CodeBuild", "version": "1"},
        "configuration": {"ProjectName": "app-build"}, "inputArtifacts": [{"name": "Code"}], "outputArtifacts": [{"name": "Built"}]});
    let package = json!({"name": "Package", "actionTypeId": {"category": "Build", "owner": "Meridian", "provider": "Package", "version": "1"},
        "configuration": {"TemplatePath": "Built::template.yaml", "Regions": "us-east-1,us-west-2"}, "runOrder": 2,
        "inputArtifacts": [{"name": "Built"}], "outputArtifacts": [{"name": "BuildOutput"}]});
    let p = json!({"pipeline": {"name": "sym", "pipelineType": "V2", "executionMode": "QUEUED", "artifactStores": stores,
        "stages": [source(), {"name": "Build", "actions": [build, package]}, deploy],
        "meridian": {"buildProjects": {"app-build": {"buildspec": {"path": "buildspec.yml"}}}}}});
    let file = env.root.join("sym.json");
    std::fs::write(&file, p.to_string()).unwrap();
    let out = run(&env, &file, &[]);
    let v = json_of(&out);
    assert_eq!(
        v["status"],
        "Succeeded",
        "{v:#}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );

    for region in ["us-east-1", "us-west-2"] {
        let out = cmd(
            &env,
            &[
                "--output",
                "json",
                "stack",
                "describe",
                "--region",
                region,
                "--stack-name",
                "multi-region-codepipeline-app",
            ],
        )
        .output()
        .unwrap();
        let d = json_of(&out);
        assert_eq!(d["Stack"]["StackStatus"], "CREATE_COMPLETE", "{d:#}");
        let function = d["Resources"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["ResourceType"] == "AWS::Lambda::Function")
            .unwrap()["PhysicalResourceId"]
            .as_str()
            .unwrap()
            .to_string();
        // The function's code came from the region's own bucket.
        let props = cmd(
            &env,
            &["--output", "json", "lambda", "get", "--region", region, &function],
        )
        .output()
        .unwrap();
        assert!(props.status.success(), "{}", String::from_utf8_lossy(&props.stderr));
        let out = cmd(
            &env,
            &[
                "lambda",
                "invoke",
                "--region",
                region,
                &function,
                "--payload",
                "{\"n\":1}",
            ],
        )
        .output()
        .unwrap();
        let body = String::from_utf8_lossy(&out.stdout);
        assert!(out.status.success(), "{body}\n{}", String::from_utf8_lossy(&out.stderr));
        let body: Value = serde_json::from_str(body.trim()).unwrap();
        assert_eq!(body["message"], format!("hello from {region}"));
        assert_eq!(body["input"]["n"], 1);
    }
    // A second run converges: no changes to either stack.
    let v = json_of(&run(&env, &file, &[]));
    assert_eq!(v["status"], "Succeeded", "{v:#}");
    assert!(
        log(&env, v["executionId"].as_str().unwrap(), "DeployToUsWest2").contains("No updates are to be performed.")
    );
}

/// A region the pipeline sends to a backend this build does not have fails the execution at once,
/// with the reason and the way out, instead of leaving it in progress. (A build with the `aws`
/// feature has it: crates/meridian-cli/tests/aws_cli.rs runs that path against moto.)
#[cfg(not(feature = "aws"))]
#[test]
fn a_region_on_a_backend_this_build_lacks_fails_the_run_with_the_way_out() {
    let env = setup();
    let file = pipeline(
        &env,
        "aws-bound",
        "QUEUED",
        vec![
            json!({"name": "Deploy", "actions": [commands("eu", Some("eu-west-1"), &["./hello.sh"], &["Code"], &[])]}),
        ],
    );
    let mut p: Value = serde_json::from_str(&std::fs::read_to_string(&file).unwrap()).unwrap();
    p["x-meridian"] = json!({"regions": {"eu-west-1": {"backend": "aws"}}});
    std::fs::write(&file, p.to_string()).unwrap();
    let o = run(&env, &file, &[]);
    assert!(!o.status.success());
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("region eu-west-1 is to be reached through the `aws` backend")
            && err.contains("remove `backend: aws`"),
        "{err}"
    );
    let last = list(&env).pop().unwrap();
    assert_eq!(last["status"], "Failed", "{last}");
    assert!(
        last["statusReason"]
            .as_str()
            .unwrap()
            .contains("the pipeline's regions cannot be reached"),
        "{last}"
    );
}

/// A damaged journal is never silently replaced: commands refuse with what is wrong and the way
/// out, `meridian reset-journal` moves it aside (kept), and only then does a fresh one start.
#[test]
fn a_damaged_journal_is_kept_explained_and_reset_only_when_asked() {
    let env = setup();
    std::fs::create_dir_all(&env.data).unwrap();
    std::fs::write(env.data.join("journal.db"), b"").unwrap();
    let o = cmd(&env, &["executions", "list"]).output().unwrap();
    assert!(!o.status.success());
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("is damaged") && err.contains("mv "), "{err}");
    assert_eq!(
        std::fs::metadata(env.data.join("journal.db")).unwrap().len(),
        0,
        "left untouched"
    );

    let o = cmd(&env, &["reset-journal"]).output().unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let kept: Vec<_> = std::fs::read_dir(&env.data)
        .unwrap()
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().to_string())
        .filter(|n| n.starts_with("journal.db.corrupt-"))
        .collect();
    assert_eq!(kept.len(), 1, "the damaged file is kept aside");
    let o = cmd(&env, &["--output", "json", "executions", "list"]).output().unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
}

/// A CodeBuild action with `BatchEnabled` runs the buildspec's batch; its output artifacts are
/// named by build (`linux`) and by build and secondary artifact (`arm_notes`), as CodePipeline
/// names them, or combined into one with `CombineArtifacts`.
#[test]
fn batch_builds_in_a_pipeline_name_their_artifacts_by_build() {
    let env = setup();
    std::fs::write(
        env.repo.join("buildspec.yml"),
        "version: 0.2\nbatch:\n  build-list:\n    - identifier: linux\n      env:\n        variables:\n          TARGET: linux\n    - identifier: arm\n      env:\n        variables:\n          TARGET: arm\nphases:\n  build:\n    commands:\n      - echo \"built for $TARGET\" > out.txt\n      - echo \"notes for $TARGET\" > notes.txt\nartifacts:\n  files: [out.txt]\n  secondary-artifacts:\n    notes:\n      files: [notes.txt]\n",
    )
    .unwrap();
    git(&env.repo, &["add", "."]);
    git(&env.repo, &["commit", "-q", "-m", "batch"]);
    let build = |outputs: &[&str], combine: bool| {
        let mut config = json!({"ProjectName": "app-build", "BatchEnabled": "true"});
        if combine {
            config["CombineArtifacts"] = json!("true");
        }
        json!({"name": "Build", "actionTypeId": {"category": "Build", "owner": "AWS", "provider": "CodeBuild", "version": "1"},
            "configuration": config, "inputArtifacts": [{"name": "Code"}],
            "outputArtifacts": outputs.iter().map(|o| json!({"name": o})).collect::<Vec<_>>()})
    };
    // Separate artifacts.
    let read = commands(
        "Read",
        None,
        &["cat out.txt", "cat $CODEBUILD_SRC_DIR_arm_notes/notes.txt"],
        &["linux", "arm_notes"],
        &[],
    );
    let file = pipeline(
        &env,
        "batch",
        "QUEUED",
        vec![
            json!({"name": "Build", "actions": [build(&["linux", "arm_notes"], false)]}),
            json!({"name": "Read", "actions": [read]}),
        ],
    );
    let out = run(&env, &file, &[]);
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    let id = json_of(&out)["executionId"].as_str().unwrap().to_string();
    let read_log = log(&env, &id, "Read");
    assert!(read_log.contains("built for linux"), "{read_log}");
    assert!(read_log.contains("notes for arm"), "{read_log}");
    let build_log = log(&env, &id, "Build");
    assert!(build_log.contains("batch build linux: SUCCEEDED"), "{build_log}");
    assert!(build_log.contains("batch build arm: SUCCEEDED"), "{build_log}");

    // Combined artifacts: one output, a directory per build.
    let read = commands(
        "Read",
        None,
        &["cat linux/out.txt arm/out.txt arm_notes/notes.txt"],
        &["All"],
        &[],
    );
    let file = pipeline(
        &env,
        "combined",
        "QUEUED",
        vec![
            json!({"name": "Build", "actions": [build(&["All"], true)]}),
            json!({"name": "Read", "actions": [read]}),
        ],
    );
    let out = run(&env, &file, &[]);
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    let id = json_of(&out)["executionId"].as_str().unwrap().to_string();
    let read_log = log(&env, &id, "Read");
    for line in ["built for linux", "built for arm", "notes for arm"] {
        assert!(read_log.contains(line), "{line}: {read_log}");
    }

    // An output named after no build fails, naming the names the batch made.
    let file = pipeline(
        &env,
        "wrong",
        "QUEUED",
        vec![json!({"name": "Build", "actions": [build(&["BuildOutput"], false)]})],
    );
    let out = run(&env, &file, &[]);
    assert_eq!(out.status.code(), Some(1));
    let id = json_of(&out)["executionId"].as_str().unwrap().to_string();
    let summary =
        String::from_utf8_lossy(&cmd(&env, &["executions", "show", &id]).output().unwrap().stdout).to_string();
    assert!(summary.contains("no artifact for output `BuildOutput`"), "{summary}");
    assert!(summary.contains("arm_notes"), "{summary}");
}
