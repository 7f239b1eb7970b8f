//! Running real buildspecs end to end: real shells, real files, real process trees.

use meridian_buildspec::runner::{EnvKind, EnvVar};
use meridian_buildspec::{parse_str, run_build, BuildContext, BuildOutcome, SecretKind, SecretStore, Status};
use std::fs;
use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

fn tmp(name: &str) -> PathBuf {
    let p = std::env::temp_dir().join(format!("meridian-run-{name}-{}", std::process::id()));
    let _ = fs::remove_dir_all(&p);
    fs::create_dir_all(&p).unwrap();
    p
}

fn source(root: &Path, files: &[(&str, &str)]) -> PathBuf {
    let src = root.join("source");
    for (p, text) in files {
        let path = src.join(p);
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        fs::write(path, text).unwrap();
    }
    fs::create_dir_all(&src).unwrap();
    src
}

fn build(name: &str, buildspec: &str, files: &[(&str, &str)], tweak: impl FnOnce(&mut BuildContext)) -> BuildOutcome {
    let root = tmp(name);
    let src = source(&root, files);
    let parsed = parse_str("buildspec.yml", buildspec);
    assert!(!parsed.has_errors(), "{}", parsed.render_diagnostics(false));
    let mut ctx = BuildContext::new("proj", src, root.join("work"));
    tweak(&mut ctx);
    run_build(parsed.spec.as_ref().unwrap(), &ctx).unwrap()
}

fn log(o: &BuildOutcome) -> String {
    fs::read_to_string(&o.log_file).unwrap()
}

fn phase_names(o: &BuildOutcome) -> Vec<(&str, Status)> {
    o.phases.iter().map(|p| (p.name, p.status)).collect()
}

#[test]
fn one_shell_carries_cd_and_export_and_sets_codebuild_variables() {
    let spec = r#"
version: 0.2
env:
  variables:
    GREETING: hello
  exported-variables:
    - BUILT_AT
    - GREETING
phases:
  install:
    commands:
      - mkdir -p out/deep && cd out
      - export FROM_INSTALL=carried
  build:
    commands:
      - pwd > $CODEBUILD_SRC_DIR/where.txt
      - echo "$FROM_INSTALL $GREETING $CODEBUILD_BUILD_NUMBER $AWS_REGION $AWS_DEFAULT_REGION $CODEBUILD_BUILD_SUCCEEDING" > deep/vars.txt
      - echo "$CODEBUILD_BUILD_ID|$CODEBUILD_BUILD_ARN|$CODEBUILD_RESOLVED_SOURCE_VERSION|$CODEBUILD_SRC_DIR_lib" > ids.txt
      - export BUILT_AT=yesterday
artifacts:
  files:
    - '**/*'
  base-directory: out
"#;
    let o = build("shell", spec, &[("a.txt", "a")], |c| {
        c.region = "eu-west-1".into();
        c.build_number = 7;
        c.resolved_source_version = Some("abc123".into());
        let lib = c.work_dir.parent().unwrap().join("lib");
        fs::create_dir_all(&lib).unwrap();
        fs::write(lib.join("l.txt"), "lib").unwrap();
        c.secondary_sources = vec![("lib".into(), lib)];
    });
    assert_eq!(o.status, Status::Succeeded, "{}", log(&o));
    let where_ = fs::read_to_string(o.src_dir.join("where.txt")).unwrap();
    assert_eq!(where_.trim(), o.src_dir.join("out").display().to_string());
    assert_eq!(
        fs::read_to_string(o.src_dir.join("out/deep/vars.txt")).unwrap().trim(),
        "carried hello 7 eu-west-1 eu-west-1 1"
    );
    let ids = fs::read_to_string(o.src_dir.join("out/ids.txt")).unwrap();
    let parts: Vec<&str> = ids.trim().split('|').collect();
    assert!(parts[0].starts_with("proj:") && parts[0].len() == 5 + 36, "{ids}");
    assert_eq!(
        parts[1],
        format!("arn:aws:codebuild:eu-west-1:123456789012:build/{}", parts[0])
    );
    assert_eq!(parts[2], "abc123");
    assert!(fs::read_to_string(Path::new(parts[3]).join("l.txt")).is_ok());
    assert_eq!(o.exported_variables["BUILT_AT"], "yesterday");
    assert_eq!(o.exported_variables["GREETING"], "hello");
    let art = &o.artifacts[0];
    assert_eq!(art.files, 2);
    assert!(art.dir.join("deep/vars.txt").is_file() && art.dir.join("ids.txt").is_file());
    assert!(
        !art.dir.join("out").exists(),
        "the base directory itself is not in the artifact"
    );
    let text = log(&o);
    assert!(text.contains("Entering phase INSTALL") && text.contains("Running command export FROM_INSTALL=carried"));
    assert!(text.contains("Phase complete: BUILD State: SUCCEEDED"));
}

#[test]
fn a_failed_build_phase_still_runs_post_build_and_uploads_artifacts() {
    let spec = r#"
version: 0.2
phases:
  pre_build:
    commands: echo pre > pre.txt
  build:
    commands:
      - echo before
      - exit_code_3() { return 3; }; exit_code_3
      - echo never > never.txt
    finally:
      - echo "finally $CODEBUILD_BUILD_SUCCEEDING" > finally.txt
  post_build:
    commands:
      - echo "post $CODEBUILD_BUILD_SUCCEEDING" > post.txt
artifacts:
  files: ['*.txt']
"#;
    let o = build("buildfail", spec, &[], |_| {});
    assert_eq!(o.status, Status::Failed);
    assert_eq!(
        phase_names(&o),
        vec![
            ("PRE_BUILD", Status::Succeeded),
            ("BUILD", Status::Failed),
            ("POST_BUILD", Status::Succeeded),
            ("UPLOAD_ARTIFACTS", Status::Succeeded)
        ]
    );
    assert!(
        !o.src_dir.join("never.txt").exists(),
        "commands after a failed one are skipped"
    );
    // the variable drops to 0 at the failed command, so the finally block already sees it
    assert_eq!(
        fs::read_to_string(o.src_dir.join("finally.txt")).unwrap().trim(),
        "finally 0"
    );
    assert_eq!(fs::read_to_string(o.src_dir.join("post.txt")).unwrap().trim(), "post 0");
    assert_eq!(o.artifacts[0].files, 3);
    assert!(o.phases[1].message.as_ref().unwrap().contains("exit status 3"));
    assert!(
        log(&o).contains("Command did not exit successfully exit_code_3() { return 3; }; exit_code_3 exit status 3")
    );
}

#[test]
fn a_failed_install_ends_the_build_after_its_finally() {
    let spec = r#"
version: 0.2
phases:
  install:
    commands:
      - "false"
    finally:
      - touch install-finally
  pre_build:
    commands: [touch pre]
  build:
    commands: [touch build]
  post_build:
    commands: [touch post]
artifacts:
  files: ['**/*']
"#;
    let o = build("installfail", spec, &[("x", "x")], |_| {});
    assert_eq!(o.status, Status::Failed);
    assert_eq!(phase_names(&o), vec![("INSTALL", Status::Failed)]);
    assert!(o.src_dir.join("install-finally").exists());
    for f in ["pre", "build", "post"] {
        assert!(!o.src_dir.join(f).exists(), "{f} ran after a failed install");
    }
    assert!(o.artifacts.is_empty(), "no artifacts after a failed install");
}

#[test]
fn on_failure_continue_and_abort() {
    let spec = r#"
version: 0.2
phases:
  install:
    on-failure: CONTINUE
    commands: ["false"]
  pre_build:
    commands: [touch pre]
  build:
    on-failure: ABORT
    commands: ["false"]
  post_build:
    commands: [touch post]
artifacts:
  files: [pre]
"#;
    let o = build("onfailure", spec, &[], |_| {});
    assert_eq!(o.status, Status::Failed);
    assert_eq!(
        phase_names(&o),
        vec![
            ("INSTALL", Status::Failed),
            ("PRE_BUILD", Status::Succeeded),
            ("BUILD", Status::Failed)
        ]
    );
    assert!(o.src_dir.join("pre").exists());
    assert!(!o.src_dir.join("post").exists());
    assert!(o.artifacts.is_empty());
}

#[test]
fn a_failing_finally_fails_the_phase() {
    let spec = "version: 0.2\nphases:\n  build:\n    commands: [echo ok]\n    finally: [\"false\", touch after]\n";
    let o = build("finallyfail", spec, &[], |_| {});
    assert_eq!(o.status, Status::Failed);
    assert!(!o.src_dir.join("after").exists());
}

#[test]
fn secrets_are_masked_in_every_log_line() {
    let root = tmp("secrets-data");
    let store = SecretStore::open(&root).unwrap();
    store
        .put("us-east-1", SecretKind::Parameter, "/ci/token", "tok-PARAM-1234")
        .unwrap();
    store
        .put(
            "us-east-1",
            SecretKind::Secret,
            "db",
            r#"{"password":"pw-SECRET-5678","user":"admin"}"#,
        )
        .unwrap();
    store
        .put("us-east-1", SecretKind::Secret, "plain", "whole-SECRET-9")
        .unwrap();
    let spec = r#"
version: 0.2
env:
  parameter-store:
    TOKEN: /ci/token
  secrets-manager:
    DB_PASSWORD: db:password
    WHOLE: plain
phases:
  build:
    commands:
      - echo "token=$TOKEN password=$DB_PASSWORD"
      - echo "$WHOLE" >&2
      - echo "$FROM_PROJECT"
      - printf '%s' "$TOKEN" > token.txt
"#;
    let seen = Arc::new(Mutex::new(Vec::<String>::new()));
    let sink_seen = seen.clone();
    let o = build("secrets", spec, &[], |c| {
        c.secrets = Some(store.clone());
        c.env.push(EnvVar {
            name: "FROM_PROJECT".into(),
            value: "db:user".into(),
            kind: EnvKind::SecretsManager,
        });
        c.on_log = Some(Arc::new(move |l: &str| sink_seen.lock().unwrap().push(l.to_string())));
    });
    assert_eq!(o.status, Status::Succeeded, "{}", log(&o));
    let text = log(&o);
    for secret in ["tok-PARAM-1234", "pw-SECRET-5678", "whole-SECRET-9", "admin"] {
        assert!(!text.contains(secret), "`{secret}` leaked into the log:\n{text}");
        assert!(!seen.lock().unwrap().iter().any(|l| l.contains(secret)));
    }
    assert!(text.contains("token=*** password=***"), "{text}");
    assert!(
        seen.lock().unwrap().iter().any(|l| l == "***"),
        "stderr lines are masked and streamed too"
    );
    // the commands saw the real values
    assert_eq!(
        fs::read_to_string(o.src_dir.join("token.txt")).unwrap(),
        "tok-PARAM-1234"
    );
}

#[test]
fn a_missing_secret_is_an_error_naming_the_command_to_fix_it() {
    let root = tmp("missing-secret");
    let src = source(&root, &[]);
    let parsed = parse_str(
        "b.yml",
        "version: 0.2\nenv:\n  parameter-store:\n    T: /nope\nphases:\n  build:\n    commands: [echo]\n",
    );
    let mut ctx = BuildContext::new("p", src, root.join("work"));
    ctx.secrets = Some(SecretStore::open(&root.join("data")).unwrap());
    let err = run_build(parsed.spec.as_ref().unwrap(), &ctx).unwrap_err().to_string();
    assert!(
        err.contains("meridian secrets put --kind parameter --region us-east-1 /nope VALUE"),
        "{err}"
    );
}

fn alive(pid: i32) -> bool {
    // A killed process may linger as a zombie until its new parent reaps it: that counts as dead.
    match fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => !stat.rsplit(')').next().unwrap_or("").trim_start().starts_with('Z'),
        Err(_) => false,
    }
}

#[test]
fn a_timeout_kills_the_whole_process_tree() {
    let spec = r#"
version: 0.2
phases:
  build:
    commands:
      - (sleep 60; touch grandchild-survived) & echo $! > bg.pid
      - bash -c 'sleep 60 & echo $! > inner.pid; wait'
  post_build:
    commands: [touch post]
"#;
    let t0 = Instant::now();
    let o = build("timeout", spec, &[], |c| c.timeout = Duration::from_millis(1500));
    assert!(t0.elapsed() < Duration::from_secs(10), "took {:?}", t0.elapsed());
    assert_eq!(o.status, Status::TimedOut);
    assert_eq!(phase_names(&o), vec![("BUILD", Status::TimedOut)]);
    assert!(!o.src_dir.join("post").exists());
    for f in ["bg.pid", "inner.pid"] {
        let pid: i32 = fs::read_to_string(o.src_dir.join(f)).unwrap().trim().parse().unwrap();
        let deadline = Instant::now() + Duration::from_secs(3);
        while alive(pid) && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
        }
        assert!(!alive(pid), "process {pid} from {f} survived the timeout");
    }
}

#[test]
fn a_stop_request_kills_the_build() {
    let stop = Arc::new(AtomicBool::new(false));
    let s2 = stop.clone();
    std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(500));
        s2.store(true, std::sync::atomic::Ordering::SeqCst);
    });
    let t0 = Instant::now();
    let o = build(
        "stop",
        "version: 0.2\nphases:\n  build:\n    commands: [sleep 30]\n",
        &[],
        |c| c.stop = Some(stop.clone()),
    );
    assert_eq!(o.status, Status::Stopped);
    assert!(t0.elapsed() < Duration::from_secs(5));
}

#[test]
fn duplicate_keys_and_scalar_commands_run_as_codebuild_runs_them() {
    let spec = "version: 0.2\nenv:\n  variables:\n    V: first\n    V: second\nphases:\n  build:\n    commands: echo first-build > which\n  build:\n    commands: echo \"$V\" > which\n";
    let o = build("dupes", spec, &[], |_| {});
    assert_eq!(o.status, Status::Succeeded);
    assert_eq!(fs::read_to_string(o.src_dir.join("which")).unwrap().trim(), "second");
}

#[test]
fn version_0_1_runs_each_command_in_its_own_shell() {
    let spec = "version: 0.1\nphases:\n  build:\n    commands:\n      - mkdir sub && cd sub && export X=1\n      - pwd > where; echo \"x=$X\" >> where\n";
    let o = build("v01", spec, &[], |_| {});
    assert_eq!(o.status, Status::Succeeded);
    let text = fs::read_to_string(o.src_dir.join("where")).unwrap();
    assert_eq!(text, format!("{}\nx=\n", o.src_dir.display()));
}

#[test]
fn an_exit_in_a_command_fails_it_and_later_commands_get_a_new_shell() {
    let spec = "version: 0.2\nphases:\n  build:\n    on-failure: CONTINUE\n    commands: [export A=1, exit 4]\n  post_build:\n    commands: [echo \"a=$A\" > after]\n";
    let o = build("exit", spec, &[], |_| {});
    assert_eq!(o.status, Status::Failed);
    assert!(o.phases[0].message.as_ref().unwrap().contains("exit status 4"));
    assert_eq!(fs::read_to_string(o.src_dir.join("after")).unwrap().trim(), "a=");
}

#[test]
fn artifacts_follow_files_discard_exclude_and_secondary_rules() {
    let spec = r#"
version: 0.2
phases:
  build:
    commands:
      - ln -s target/app.jar link.jar
artifacts:
  files:
    - target/**/*
    - link.jar
  exclude-paths:
    - '**/*.tmp'
  discard-paths: yes
  name: app-$AWS_REGION-$(echo expanded)
  secondary-artifacts:
    docs:
      files: ['**/*']
      base-directory: 'my-build*'
    links:
      files: [link.jar]
      enable-symlinks: yes
"#;
    let files = [
        ("target/app.jar", "jar"),
        ("target/sub/lib.jar", "lib"),
        ("target/sub/x.tmp", "tmp"),
        ("my-build1/my-file1.txt", "1"),
        ("my-build2/my-file2.txt", "2"),
        ("my-build2/my-subdirectory/my-file3.txt", "3"),
    ];
    let o = build("artifacts", spec, &files, |_| {});
    assert_eq!(o.status, Status::Succeeded, "{}", log(&o));
    let primary = &o.artifacts[0];
    assert_eq!(primary.name.as_deref(), Some("app-us-east-1-expanded"));
    let mut names: Vec<String> = fs::read_dir(&primary.dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert_eq!(names, vec!["app.jar", "lib.jar", "link.jar"]);
    assert!(!fs::symlink_metadata(primary.dir.join("link.jar"))
        .unwrap()
        .file_type()
        .is_symlink());
    let docs = &o.artifacts[1];
    assert_eq!(docs.identifier.as_deref(), Some("docs"));
    assert!(docs.dir.join("my-file1.txt").is_file());
    assert!(docs.dir.join("my-subdirectory/my-file3.txt").is_file());
    let links = &o.artifacts[2];
    assert!(fs::symlink_metadata(links.dir.join("link.jar"))
        .unwrap()
        .file_type()
        .is_symlink());
}

#[test]
fn no_matching_artifact_files_fail_the_build() {
    let o = build(
        "noartifacts",
        "version: 0.2\nphases:\n  build:\n    commands: [echo]\nartifacts:\n  files: [missing/*.jar]\n",
        &[],
        |_| {},
    );
    assert_eq!(o.status, Status::Failed);
    assert!(o
        .phases
        .last()
        .unwrap()
        .message
        .as_ref()
        .unwrap()
        .contains("no matching artifact paths"));
}

#[test]
fn reports_are_summarised() {
    let spec = r#"
version: 0.2
phases:
  build:
    commands:
      - mkdir -p reports && printf '<testsuite><testcase name="a"/><testcase name="b"><failure/></testcase><testcase name="c"><skipped/></testcase></testsuite>' > reports/TEST-a.xml
      - printf '[{"elements":[{"type":"scenario","steps":[{"result":{"status":"passed"}}]}]}]' > cucumber.json
reports:
  unit:
    files: ['**/*.xml']
    base-directory: reports
  features:
    files: [cucumber.json]
    file-format: cucumberjson
"#;
    let o = build("reports", spec, &[], |_| {});
    let unit = &o.reports[0];
    assert_eq!(
        (
            unit.counts.total,
            unit.counts.passed,
            unit.counts.failed,
            unit.counts.skipped
        ),
        (3, 1, 1, 1)
    );
    assert_eq!(unit.files, vec!["TEST-a.xml"]);
    assert_eq!(o.reports[1].counts.passed, 1);
    assert!(log(&o).contains("Report group unit: 3 tests, 1 passed, 1 failed, 1 skipped"));
}

#[test]
fn cache_paths_are_kept_between_builds_of_a_project() {
    let root = tmp("cache");
    let cache = root.join("cache");
    let spec = "version: 0.2\nphases:\n  build:\n    commands:\n      - test -f deps/pkg.txt && echo hit > result || echo miss > result\n      - mkdir -p deps && echo cached > deps/pkg.txt\ncache:\n  paths: ['deps/**/*', '/root/.m2/**/*']\n";
    let c1 = cache.clone();
    let first = build("cache1", spec, &[], move |c| c.cache_dir = Some(c1));
    assert_eq!(fs::read_to_string(first.src_dir.join("result")).unwrap().trim(), "miss");
    assert!(first
        .warnings
        .iter()
        .any(|w| w.contains("/root/.m2/**/*") && w.contains("outside")));
    let c2 = cache.clone();
    let second = build("cache2", spec, &[], move |c| c.cache_dir = Some(c2));
    assert_eq!(fs::read_to_string(second.src_dir.join("result")).unwrap().trim(), "hit");
}

#[test]
fn unsatisfiable_runtime_versions_are_a_warning_naming_what_was_found() {
    let spec = "version: 0.2\nphases:\n  install:\n    runtime-versions:\n      python: 2.1\n      nodejs: $WANTED_NODE\n  build:\n    commands: [echo]\n";
    let o = build("runtimes", spec, &[], |c| {
        c.env.push(EnvVar::plain("WANTED_NODE", "999"))
    });
    assert_eq!(o.status, Status::Succeeded);
    let py = o
        .warnings
        .iter()
        .find(|w| w.contains("python 2.1"))
        .expect("a python warning");
    assert!(
        py.contains("this machine has python 3.") || py.contains("found no python"),
        "{py}"
    );
    assert!(o.warnings.iter().any(|w| w.contains("nodejs 999")), "{:?}", o.warnings);
    assert!(log(&o).contains("Warning: runtime-versions asks for python 2.1"));
}

#[test]
fn output_is_streamed_live_in_order() {
    let seen = Arc::new(Mutex::new(Vec::<(Instant, String)>::new()));
    let s2 = seen.clone();
    let t0 = Instant::now();
    let o = build(
        "live",
        "version: 0.2\nphases:\n  build:\n    commands:\n      - echo one; sleep 1; echo two\n",
        &[],
        |c| {
            c.on_log = Some(Arc::new(move |l: &str| {
                s2.lock().unwrap().push((Instant::now(), l.to_string()))
            }))
        },
    );
    assert_eq!(o.status, Status::Succeeded);
    let seen = seen.lock().unwrap();
    let one = seen.iter().find(|(_, l)| l == "one").unwrap().0;
    let two = seen.iter().find(|(_, l)| l == "two").unwrap().0;
    assert!(
        one.duration_since(t0) < two.duration_since(t0) - Duration::from_millis(500),
        "`one` arrived before the command ended"
    );
}

#[test]
fn a_work_directory_inside_the_source_is_not_copied_into_itself() {
    let root = tmp("inside");
    let src = source(&root, &[("a.txt", "a"), (".meridian/keys/secrets.key", "k")]);
    let parsed = parse_str(
        "b.yml",
        "version: 0.2\nphases:\n  build:\n    commands: [ls -A > listing]\n",
    );
    let mut ctx = BuildContext::new("p", &src, src.join(".meridian/builds/one"));
    ctx.exclude = vec![src.join(".meridian")];
    let o = run_build(parsed.spec.as_ref().unwrap(), &ctx).unwrap();
    assert_eq!(o.status, Status::Succeeded);
    assert_eq!(
        fs::read_to_string(o.src_dir.join("listing")).unwrap(),
        "a.txt\nlisting\n",
        "no .meridian"
    );
}

#[test]
fn multi_line_commands_quotes_and_unterminated_output_run_as_written() {
    let spec = r#"
version: 0.2
phases:
  build:
    commands:
      - |
        if [ -n "$CODEBUILD_SRC_DIR" ]; then
          echo 'it'"'"'s "quoted" \ back' > quoted.txt
        fi
      - printf 'no newline at the end'
      - echo "next line"
"#;
    let seen = Arc::new(Mutex::new(Vec::<String>::new()));
    let s2 = seen.clone();
    let o = build("quoting", spec, &[], |c| {
        c.on_log = Some(Arc::new(move |l: &str| s2.lock().unwrap().push(l.to_string())))
    });
    assert_eq!(o.status, Status::Succeeded, "{}", log(&o));
    assert_eq!(
        fs::read_to_string(o.src_dir.join("quoted.txt")).unwrap(),
        "it's \"quoted\" \\ back\n"
    );
    let seen = seen.lock().unwrap();
    let at = seen
        .iter()
        .position(|l| l == "no newline at the end")
        .expect("the partial line is logged");
    assert!(seen[at + 1..].iter().any(|l| l == "next line"));
}

#[test]
fn exported_secrets_are_masked_in_the_outcome() {
    let root = tmp("exported-secrets-data");
    let store = SecretStore::open(&root).unwrap();
    store
        .put("us-east-1", SecretKind::Parameter, "/ci/token", "tok-EXPORT-4321")
        .unwrap();
    store
        .put("us-east-1", SecretKind::Secret, "api", "key-EXPORT-8765")
        .unwrap();
    let spec = r#"
version: 0.2
env:
  parameter-store:
    TOKEN: /ci/token
  secrets-manager:
    API_KEY: api
  exported-variables:
    - TOKEN
    - API_KEY
    - DERIVED
    - PLAIN
phases:
  build:
    commands:
      - export DERIVED="Bearer $API_KEY"
      - export PLAIN=v1.2.3
"#;
    let o = build("exported-secrets", spec, &[], |c| {
        c.secrets = Some(store.clone());
    });
    assert_eq!(o.status, Status::Succeeded, "{}", log(&o));
    let vars: Vec<(&str, &str)> = o
        .exported_variables
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    assert_eq!(
        vars,
        [
            ("API_KEY", "***"),
            ("DERIVED", "Bearer ***"),
            ("PLAIN", "v1.2.3"),
            ("TOKEN", "***")
        ]
    );
    assert_eq!(o.masked_variables, ["TOKEN", "API_KEY", "DERIVED"]);
    let json = serde_json::to_string(&o).unwrap();
    for secret in ["tok-EXPORT-4321", "key-EXPORT-8765"] {
        assert!(!json.contains(secret), "{json}");
        assert!(!log(&o).contains(secret));
    }
    assert!(log(&o).contains(
        "Exported variable DERIVED holds a secret value: it is exported masked (***); read the secret where it is needed instead"
    ));
}

#[test]
fn a_full_disk_under_the_log_fails_the_build_with_the_reason() {
    let spec = r#"
version: 0.2
phases:
  build:
    commands:
      - echo hello
"#;
    let o = build("full-disk", spec, &[], |c| {
        c.log_file = Some(PathBuf::from("/dev/full"));
    });
    assert_eq!(o.status, Status::Failed);
    let last = o.phases.last().unwrap();
    assert_eq!((last.name, last.status), ("FINALIZING", Status::Failed));
    assert_eq!(
        last.message.as_deref().unwrap(),
        "CLIENT_ERROR: failed to write the build log `/dev/full`: No space left on device (os error 28); the log is incomplete, so the build cannot be trusted: free space on that disk and run it again"
    );
    // the commands themselves ran and succeeded: only the log is missing
    assert_eq!(o.phases[0].status, Status::Succeeded);
}

/// A command that prints 20 MB without a newline: the build goes on, the output reaches the log
/// in pieces of at most `MAX_LINE_BYTES`, and a status marker after it is still seen.
#[test]
fn a_huge_output_line_reaches_the_log_in_pieces() {
    let spec = "version: 0.2\nphases:\n  build:\n    commands:\n      - yes x | head -c 20971520 | tr -d '\\n'\n      - echo after\n";
    let o = build("huge-line", spec, &[], |_| {});
    assert_eq!(o.status, Status::Succeeded, "{:?}", phase_names(&o));
    let text = log(&o);
    // `yes x` prints "x\n"; without the newlines that is 10 MiB of x in one line.
    let xs: usize = text
        .lines()
        .filter(|l| !l.is_empty() && l.bytes().all(|b| b == b'x'))
        .map(str::len)
        .sum();
    assert_eq!(xs, 10_485_760, "every byte reached the log");
    let longest = text.lines().map(str::len).max().unwrap_or(0);
    assert!(
        longest <= meridian_buildspec::MAX_LINE_BYTES + 200,
        "a line of {longest} bytes"
    );
    assert!(text.contains("after"), "the next command ran");
}

/// A secret printed across the point where a long line is cut into pieces is still masked: the
/// end of each piece goes on with the next one, so the secret lies whole in one piece. A
/// multi-byte character at a cut is not broken either.
#[test]
fn a_secret_across_a_long_lines_cut_is_masked() {
    let root = tmp("secret-cut-data");
    let store = SecretStore::open(&root).unwrap();
    let secret = format!("cut-SECRET-{}", "z".repeat(200));
    store.put("us-east-1", SecretKind::Secret, "cut", &secret).unwrap();
    // The secret starts 100 bytes before the first cut (at 1 MiB); an `é` straddles the point
    // where the second piece is split from what is carried on.
    let cap = meridian_buildspec::MAX_LINE_BYTES;
    let carry = meridian_buildspec::CUT_CARRY_BYTES;
    let a = cap - 100;
    let b = 2 * (cap - carry) - 1 - a - secret.len();
    let spec = format!(
        "version: 0.2\nenv:\n  secrets-manager:\n    S: cut\nphases:\n  build:\n    commands:\n      - \"{{ head -c {a} /dev/zero | tr '\\\\0' a; printf '%s' \\\"$S\\\"; head -c {b} /dev/zero | tr '\\\\0' b; printf '\u{e9}'; head -c 100 /dev/zero | tr '\\\\0' c; echo; }}\"\n      - echo after\n",
    );
    let o = build("secret-cut", &spec, &[], |c| {
        c.secrets = Some(store.clone());
    });
    let text = log(&o);
    assert_eq!(o.status, Status::Succeeded, "{}", &text[..2000.min(text.len())]);
    assert!(!text.contains("SECRET"), "part of the secret leaked across the cut");
    assert!(!text.contains("zzzz"), "part of the secret leaked across the cut");
    assert!(text.contains("***"), "the masked secret is in the log");
    assert!(text.contains('\u{e9}'), "the character across the cut is whole");
    assert!(!text.contains('\u{fffd}'), "a character was broken at a cut");
    // the runs of `a` and `b` (pieces are on lines of their own), every byte once
    let run = |c: char| -> usize { text.split(|x: char| x != c).map(str::len).filter(|n| *n > 1000).sum() };
    assert_eq!(run('a'), a, "every byte before the secret reached the log once");
    assert_eq!(run('b'), b);
    assert!(text.contains("after"));
}
