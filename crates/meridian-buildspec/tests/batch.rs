//! Batch builds (issue 17, item 6): `batch:` read as CodeBuild reads it, and run as it runs it:
//! a build-list and an expanded build-matrix side by side, a build-graph in dependency order,
//! each build in its own directory with its own variables and log, the batch failing by
//! CodeBuild's rules (`ignore-failure`, `fast-fail`).

use meridian_buildspec::batch::{run_batch, BatchKind, BatchOutcome};
use meridian_buildspec::{parse_str, run_build, BuildContext, BuildError, Status};
use std::fs;
use std::path::{Path, PathBuf};
use std::time::Instant;

fn tmp(name: &str) -> PathBuf {
    let p = std::env::temp_dir().join(format!("meridian-batch-{name}-{}", std::process::id()));
    let _ = fs::remove_dir_all(&p);
    fs::create_dir_all(&p).unwrap();
    p
}

fn messages(text: &str) -> Vec<String> {
    parse_str("buildspec.yml", text)
        .diagnostics
        .iter()
        .filter(|d| d.is_error())
        .map(|d| d.message.clone())
        .collect()
}

fn run(name: &str, spec: &str, files: &[(&str, &str)], parallel: usize) -> (BatchOutcome, PathBuf) {
    let root = tmp(name);
    let src = root.join("source");
    fs::create_dir_all(&src).unwrap();
    for (p, text) in files {
        fs::write(src.join(p), text).unwrap();
    }
    let parsed = parse_str("buildspec.yml", spec);
    assert!(!parsed.has_errors(), "{}", parsed.render_diagnostics(false));
    let ctx = BuildContext::new("proj", src, root.join("work"));
    (run_batch(parsed.spec.as_ref().unwrap(), &ctx, parallel).unwrap(), root)
}

fn statuses(o: &BatchOutcome) -> Vec<(&str, Option<Status>)> {
    o.builds.iter().map(|b| (b.identifier.as_str(), b.status)).collect()
}

fn log(dir: &Path) -> String {
    fs::read_to_string(dir.join("build.log")).unwrap_or_default()
}

#[test]
fn a_matrix_expands_to_every_combination_in_codebuilds_order() {
    let text = "version: 0.2
batch:
  build-matrix:
    static:
      ignore-failure: true
      env:
        variables:
          STAGE: test
    dynamic:
      buildspec: [a.yml, b.yml]
      env:
        image: aws/codebuild/standard:7.0
        variables:
          RUNTIME: [node, python]
phases:
  build:
    commands: [true]
";
    let parsed = parse_str("buildspec.yml", text);
    assert!(!parsed.has_errors(), "{}", parsed.render_diagnostics(false));
    let batch = parsed.spec.unwrap().batch.unwrap();
    assert_eq!(batch.kind, BatchKind::BuildMatrix);
    let shown: Vec<String> = batch
        .builds
        .iter()
        .map(|b| {
            format!(
                "{} {} {:?} {}",
                b.identifier,
                b.buildspec.as_deref().unwrap_or("-"),
                b.variables,
                b.ignore_failure
            )
        })
        .collect();
    assert_eq!(
        shown,
        [
            r#"build1 a.yml [("STAGE", "test"), ("RUNTIME", "node")] true"#,
            r#"build2 a.yml [("STAGE", "test"), ("RUNTIME", "python")] true"#,
            r#"build3 b.yml [("STAGE", "test"), ("RUNTIME", "node")] true"#,
            r#"build4 b.yml [("STAGE", "test"), ("RUNTIME", "python")] true"#,
        ]
    );
}

#[test]
fn mistakes_in_a_batch_are_errors_at_their_place() {
    let head = "version: 0.2\nphases:\n  build:\n    commands: [true]\nbatch:\n";
    let cases = [
        ("  build-graph:\n    - identifier: a\n      depend-on: [b]\n    - identifier: b\n      depend-on: [a]\n", "build `a` depends on itself through a -> b"),
        ("  build-graph:\n    - identifier: a\n      depend-on: [nope]\n", "build `a` depends on `nope`, which is not a build of the graph"),
        ("  build-list:\n    - identifier: a\n    - identifier: a\n", "two builds of the batch are named `a`"),
        ("  build-list:\n    - identifier: linux-small\n", "`linux-small` is not a batch build identifier"),
        ("  build-list:\n    - buildspec: x.yml\n", "a batch build has no `identifier`"),
        ("  build-list:\n    - identifier: a\n  build-graph:\n    - identifier: b\n", "`batch` has both `build-list` and `build-graph`"),
        ("  fast-fail: true\n", "`batch` has no `build-list`, `build-matrix` or `build-graph`"),
        ("  build-list:\n    - identifier: a\n      buildspec: ../outside.yml\n", "`buildspec` must stay inside the build's source directory"),
        ("  build-fanout:\n    parallelism: 4\n", "`build-fanout` is not supported by Meridian: it splits no tests across builds"),
        ("  build-matrix:\n    dynamic:\n      env:\n        variables:\n          A: [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11]\n          B: [1, 2, 3, 4, 5, 6, 7, 8, 9, 10]\n", "the batch has 110 builds; CodeBuild allows at most 100"),
    ];
    for (batch, want) in cases {
        let got = messages(&format!("{head}{batch}"));
        assert!(
            got.iter().any(|m| m.contains(want)),
            "{batch}\nwanted `{want}`, got {got:?}"
        );
    }
}

#[test]
fn a_graph_runs_in_dependency_order_and_skips_what_depends_on_a_failure() {
    let spec = "version: 0.2
batch:
  build-graph:
    - identifier: first
    - identifier: second
      depend-on: [first]
      env:
        variables:
          WHAT: second
    - identifier: broken
      buildspec: broken.yml
      depend-on: [first]
    - identifier: after_broken
      depend-on: [broken]
phases:
  build:
    commands:
      - date +%s%N > when
      - echo \"I am $CODEBUILD_BATCH_BUILD_IDENTIFIER and WHAT=$WHAT\"
";
    let broken = "version: 0.2\nphases:\n  build:\n    commands:\n      - exit 3\n";
    let (o, root) = run("graph", spec, &[("broken.yml", broken)], 4);
    assert_eq!(
        statuses(&o),
        [
            ("first", Some(Status::Succeeded)),
            ("second", Some(Status::Succeeded)),
            ("broken", Some(Status::Failed)),
            ("after_broken", None),
        ]
    );
    assert_eq!(o.status, Status::Failed);
    assert_eq!(
        o.builds[3].reason.as_deref(),
        Some("the build `broken` it depends on did not succeed")
    );
    // each build: its own directory, log and variables
    let work = root.join("work");
    assert!(log(&work.join("first")).contains("I am first and WHAT="));
    assert!(log(&work.join("second")).contains("I am second and WHAT=second"));
    assert!(log(&work.join("broken")).contains("exit 3"));
    let when = |id: &str| -> u128 {
        let src = &o
            .builds
            .iter()
            .find(|b| b.identifier == id)
            .unwrap()
            .outcome
            .as_ref()
            .unwrap()
            .src_dir;
        fs::read_to_string(src.join("when")).unwrap().trim().parse().unwrap()
    };
    assert!(when("first") < when("second"), "second ran before what it depends on");
}

#[test]
fn a_list_runs_side_by_side_and_ignored_failures_do_not_fail_it() {
    let spec = "version: 0.2
batch:
  build-list:
    - identifier: one
    - identifier: two
    - identifier: flaky
      ignore-failure: true
      env:
        variables:
          FAIL: \"yes\"
phases:
  build:
    commands:
      - sleep 1
      - test \"$FAIL\" != yes
";
    let started = Instant::now();
    let (o, _) = run("list", spec, &[], 3);
    let took = started.elapsed();
    assert_eq!(
        statuses(&o),
        [
            ("one", Some(Status::Succeeded)),
            ("two", Some(Status::Succeeded)),
            ("flaky", Some(Status::Failed)),
        ]
    );
    assert_eq!(o.status, Status::Succeeded, "flaky's failure is ignored");
    assert!(took.as_secs_f64() < 2.5, "three 1 s builds side by side took {took:?}");
}

#[test]
fn fast_fail_stops_the_batch_at_the_first_failure() {
    let spec = "version: 0.2
batch:
  fast-fail: true
  build-list:
    - identifier: fails
      env:
        variables:
          FAIL: \"yes\"
    - identifier: slow
    - identifier: later
phases:
  build:
    commands:
      - if [ \"$FAIL\" = yes ]; then exit 1; fi
      - sleep 30
";
    let started = Instant::now();
    // two at once: `later` waits for a place, and never gets one
    let (o, _) = run("fast-fail", spec, &[], 2);
    assert!(started.elapsed().as_secs() < 20, "the slow build was not stopped");
    assert_eq!(o.status, Status::Failed);
    assert_eq!(o.builds[0].status, Some(Status::Failed));
    assert_eq!(o.builds[1].status, Some(Status::Stopped));
    assert_eq!(o.builds[2].status, None);
}

#[test]
fn a_batch_buildspec_is_not_run_as_one_build() {
    let text = "version: 0.2\nbatch:\n  build-list:\n    - identifier: a\nphases:\n  build:\n    commands: [true]\n";
    let parsed = parse_str("buildspec.yml", text);
    let root = tmp("not-one");
    let ctx = BuildContext::new("proj", root.clone(), root.join("work"));
    match run_build(parsed.spec.as_ref().unwrap(), &ctx) {
        Err(e @ BuildError::IsABatch(_)) => assert!(e.to_string().contains("runs as a batch build"), "{e}"),
        other => panic!("expected IsABatch, got {:?}", other.map(|o| o.status)),
    }
}
