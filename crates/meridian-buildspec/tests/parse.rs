//! Parsing buildspecs: what CodeBuild accepts is accepted, what it rejects has a diagnostic at the line.

use meridian_buildspec::spec::{OnFailure, ReportFormat, SpecVersion};
use meridian_buildspec::{parse_file, parse_str, plan, PhaseName};
use std::path::PathBuf;

/// A third-party fixture from ../shared/fixtures. Absent outside CI: a loud SKIP. Absent in CI: a failure.
fn fixture(rel: &str) -> Option<PathBuf> {
    let p = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../../shared/fixtures")
        .join(rel);
    if p.exists() {
        return Some(p);
    }
    if std::env::var_os("CI").is_some() {
        panic!("fixture {} is missing, and CI is set", p.display());
    }
    eprintln!(
        "SKIP!!! fixture {} is missing (../shared is absent); this test checked nothing",
        p.display()
    );
    None
}

fn codes(text: &str) -> Vec<(&'static str, bool, usize)> {
    let parsed = parse_str("buildspec.yml", text);
    parsed
        .diagnostics
        .iter()
        .map(|d| {
            let line = d
                .span
                .map(|s| parsed.sources.get(s.file).line_col(s.start as usize).0)
                .unwrap_or(0);
            (d.code, d.is_error(), line)
        })
        .collect()
}

#[test]
fn reference_example_parses_and_plans() {
    let Some(path) = fixture("aws-codebuild-user-guide/build-spec-ref-example.buildspec.yml") else {
        return;
    };
    let parsed = parse_file(&path).unwrap();
    assert!(!parsed.has_errors(), "{}", parsed.render_diagnostics(false));
    let spec = parsed.spec.unwrap();
    assert_eq!(spec.version, SpecVersion::V0_2);
    assert_eq!(
        spec.env.variables,
        vec![("JAVA_HOME".into(), "/usr/lib/jvm/java-8-openjdk-amd64".into())]
    );
    assert_eq!(
        spec.env.parameter_store,
        vec![("LOGIN_PASSWORD".into(), "/CodeBuild/dockerLoginPassword".into())]
    );
    assert_eq!(spec.phases.len(), 4);
    let install = spec.phase(PhaseName::Install).unwrap();
    assert_eq!(install.commands.len(), 3);
    assert_eq!(install.commands[1].text, "apt-get update -y");
    assert_eq!(install.commands[1].line, 13);
    assert_eq!(install.finally.len(), 1);
    assert!(spec.phase(PhaseName::PostBuild).unwrap().finally.is_empty());
    assert_eq!(spec.reports.len(), 2);
    assert_eq!(spec.reports[0].format, ReportFormat::JunitXml);
    assert_eq!(spec.reports[0].base_directory.as_deref(), Some("target/tests/reports"));
    assert!(!spec.reports[0].discard_paths);
    assert_eq!(spec.reports[1].name, "reportGroupCucumberJson");
    assert_eq!(spec.reports[1].format, ReportFormat::CucumberJson);
    assert!(spec.reports[1].discard_paths);
    let a = spec.artifacts.as_ref().unwrap();
    assert_eq!(a.primary.files, vec!["target/messageUtil-1.0.jar"]);
    assert!(a.primary.discard_paths);
    assert_eq!(a.secondary.len(), 2);
    assert_eq!(a.secondary[1].0, "artifact2");
    assert_eq!(spec.cache_paths, vec!["/root/.m2/**/*"]);

    let plan = plan::render(&spec);
    let expected_order = [
        "phase INSTALL",
        "$ apt-get install -y maven",
        "finally:",
        "phase PRE_BUILD: on failure: the build ends",
        "phase BUILD: on failure: POST_BUILD still runs",
        "$ echo Build started on `date`",
        "phase POST_BUILD",
        "report group reportGroupCucumberJson (CUCUMBERJSON)",
        "artifacts:",
        "secondary artifact artifact1:",
        "cache paths",
    ];
    let mut at = 0;
    for piece in expected_order {
        let found = plan[at..]
            .find(piece)
            .unwrap_or_else(|| panic!("`{piece}` not after byte {at} in:\n{plan}"));
        at += found + piece.len();
    }
    assert!(plan.contains("LOGIN_PASSWORD <- parameter store `/CodeBuild/dockerLoginPassword`"));
}

#[test]
fn symphonia_multi_region_buildspec_parses() {
    let Some(path) = fixture("multi-region-codepipeline/deployment-pipeline/buildspec.yaml") else {
        return;
    };
    let parsed = parse_file(&path).unwrap();
    assert!(!parsed.has_errors(), "{}", parsed.render_diagnostics(false));
    let spec = parsed.spec.unwrap();
    assert_eq!(
        spec.phase(PhaseName::Build).unwrap().commands[1].text,
        "./multiregion-build.sh"
    );
    let a = spec.artifacts.unwrap();
    assert!(a.primary.discard_paths);
    assert_eq!(a.primary.files.len(), 2);
}

#[test]
fn accepts_what_codebuild_accepts() {
    let text = "version: 0.2\nenv:\n  variables:\n    A: one\n    A: two\n    N: 8080\n    E:\n  exported-variables:\nphases:\n  install:\n  build:\n    on-failure: CONTINUE\n    commands: echo single string\n  build:\n    commands: echo later wins\n    finally:\n      - echo done\nartifacts:\n  files: '**/*'\n  discard-paths: yes\n  enable-symlinks: no\ncache:\n";
    let parsed = parse_str("b.yml", text);
    assert!(!parsed.has_errors(), "{}", parsed.render_diagnostics(false));
    // duplicate keys are warnings: later wins, as in CodeBuild
    assert!(parsed
        .diagnostics
        .iter()
        .any(|d| d.code == "duplicate-key" && !d.is_error()));
    let spec = parsed.spec.unwrap();
    assert_eq!(
        spec.env.variables,
        vec![
            ("A".into(), "two".into()),
            ("N".into(), "8080".into()),
            ("E".into(), "".into())
        ]
    );
    let build = spec.phase(PhaseName::Build).unwrap();
    assert_eq!(build.commands.len(), 1);
    assert_eq!(build.commands[0].text, "echo later wins");
    assert_eq!(
        build.on_failure,
        OnFailure::Transitions,
        "the whole later `build` mapping wins"
    );
    assert_eq!(build.finally[0].text, "echo done");
    assert!(spec.phase(PhaseName::Install).unwrap().commands.is_empty());
    let a = spec.artifacts.unwrap().primary;
    assert_eq!(a.files, vec!["**/*"]);
    assert!(a.discard_paths && !a.enable_symlinks);
    // quoted version
    assert!(!parse_str("b.yml", "version: \"0.2\"\nphases:\n  build:\n    commands: [true]\n").has_errors());
    // only secondary artifacts, as CodeBuild's runtime-versions sample writes them (issue 17);
    // without them, `files` is still required
    let only_secondary = "version: 0.2\nphases:\n  build:\n    commands: [true]\nartifacts:\n  secondary-artifacts:\n    go:\n      files: [hello]\n";
    let parsed = parse_str("b.yml", only_secondary);
    assert!(!parsed.has_errors(), "{}", parsed.render_diagnostics(false));
    let a = parsed.spec.unwrap().artifacts.unwrap();
    assert!(a.primary.files.is_empty());
    assert_eq!(a.secondary[0].1.files, vec!["hello"]);
    let none = parse_str(
        "b.yml",
        "version: 0.2\nphases:\n  build:\n    commands: [true]\nartifacts:\n  name: x\n",
    );
    assert!(none
        .diagnostics
        .iter()
        .any(|d| d.message == "`artifacts` has no `files`"));
}

#[test]
fn version_0_1_is_a_warning_about_shells() {
    let parsed = parse_str(
        "b.yml",
        "version: 0.1\nphases:\n  build:\n    commands:\n      - cd sub\n",
    );
    assert!(!parsed.has_errors());
    assert_eq!(parsed.spec.as_ref().unwrap().version, SpecVersion::V0_1);
    let d = parsed.diagnostics.iter().find(|d| d.code == "version-0.1").unwrap();
    assert!(!d.is_error());
    assert!(parsed.render_diagnostics(false).contains("own shell"));
}

#[test]
fn rejects_what_codebuild_rejects_at_the_line() {
    let cases: &[(&str, &str, usize)] = &[
        ("phases:\n  build:\n    commands: [ls]\n", "missing-field", 1),
        ("version: 0.3\nphases:\n  build:\n    commands: [ls]\n", "unsupported-version", 1),
        ("version: 0.2\nphases:\n  prebuild:\n    commands: [ls]\n", "unknown-phase", 3),
        ("version: 0.2\nphases:\n  build:\n    on-failure: abort\n    commands: [ls]\n", "invalid-value", 4),
        ("version: 0.2\nphases:\n  build:\n    on-failure: RETRY-3\n    commands: [ls]\n", "not-supported", 4),
        ("version: 0.2\nphases:\n  build:\n    commands:\n      - echo a: b\n", "wrong-type", 5),
        ("version: 0.2\nphases:\n  build:\n    commands:\n      a: b\n", "wrong-type", 5),
        ("version: 0.2\nenv:\n  variables: [A]\nphases:\n  build:\n    commands: [ls]\n", "wrong-type", 3),
        ("version: 0.2\nproxy:\n  logs: maybe\nphases:\n  build:\n    commands: [ls]\n", "wrong-type", 3),
        // a batch needs its builds (issue 17: batch builds are read and run)
        ("version: 0.2\nbatch:\n  fast-fail: true\nphases:\n  build:\n    commands: [ls]\n", "missing-field", 2),
        ("version: 0.2\nphases:\n  build:\n    commands: [ls]\nartifacts:\n  discard-paths: maybe\n  files: [a]\n", "wrong-type", 6),
        ("version: 0.2\nphases:\n  build:\n    commands: [ls]\nartifacts:\n  name: x\n", "missing-field", 5),
        ("version: 0.2\nenv:\n  secrets-manager:\n    A: a:b:c:d:e\nphases:\n  build:\n    commands: [ls]\n", "invalid-secret-reference", 4),
        ("version: 0.2\nenv:\n  shell: powershell.exe\nphases:\n  build:\n    commands: [ls]\n", "not-supported", 3),
        ("version: 0.2\nenv:\n  variables:\n    CODEBUILD_X: 1\nphases:\n  build:\n    commands: [ls]\n", "reserved-variable", 4),
        ("version: 0.2\nphases:\n  build:\n    runtime-versions: {nodejs: 18}\n    commands: [ls]\n", "invalid-field", 4),
        ("version: 0.2\nphases:\n  build:\n    commands: [ls]\nreports:\n  g:\n    file-format: XUNIT\n    files: [a]\n", "invalid-value", 7),
        ("version: 0.2\nphases: [build]\n", "wrong-type", 2),
        ("version: 0.2\nphases:\n  build:\n   commands: [ls\n", "syntax", 5),
    ];
    for (text, code, line) in cases {
        let got = codes(text);
        assert!(
            got.iter().any(|(c, err, l)| c == code && *err && l == line),
            "expected error `{code}` at line {line} for:\n{text}\ngot {got:?}"
        );
        assert!(parse_str("b.yml", text).spec.is_none());
    }
}

#[test]
fn diagnostics_render_with_snippet_and_help() {
    let parsed = parse_str(
        "buildspec.yml",
        "version: 0.2\nphases:\n  prebuild:\n    commands: [ls]\n",
    );
    let text = parsed.render_diagnostics(false);
    assert!(text.contains("`prebuild` is not a build phase"), "{text}");
    assert!(text.contains("buildspec.yml:3:3"), "{text}");
    assert!(text.contains("did you mean `pre_build`"), "{text}");
}

#[test]
fn run_as_and_git_credential_helper_are_read_with_a_warning() {
    let parsed = parse_str(
        "b.yml",
        "version: 0.2\nrun-as: builder\nenv:\n  git-credential-helper: yes\nphases:\n  build:\n    run-as: root\n    commands: [ls]\n",
    );
    assert!(!parsed.has_errors());
    assert_eq!(parsed.diagnostics.iter().filter(|d| d.code == "ignored").count(), 3);
    let spec = parsed.spec.unwrap();
    assert_eq!(spec.run_as.as_deref(), Some("builder"));
    assert!(spec.env.git_credential_helper);
}

#[test]
fn unknown_keys_are_warnings_with_the_closest_name() {
    let parsed = parse_str("b.yml", "version: 0.2\nphases:\n  build:\n    comands: [ls]\n");
    assert!(!parsed.has_errors());
    let d = parsed.diagnostics.iter().find(|d| d.code == "unknown-field").unwrap();
    assert_eq!(d.help.as_deref(), Some("did you mean `commands`?"));
}

/// Positions after a block scalar of Japanese, emoji and accented text stay on the mistake
/// (yaml-rust2 counts bytes there; issue 17).
#[test]
fn positions_after_non_ascii_block_scalars_are_right() {
    let text = "version: 0.2\nenv:\n  variables:\n    NOTE: |\n      日本語のメモ 🚀\n      café crème\nphases:\n  biuld:\n    commands: [ls]\n";
    let parsed = parse_str("b.yml", text);
    let d = parsed
        .diagnostics
        .iter()
        .find(|d| d.message.contains("`biuld`"))
        .unwrap_or_else(|| panic!("{}", parsed.render_diagnostics(false)));
    assert_eq!(d.location(&parsed.sources).as_deref(), Some("b.yml:8:3"));
    assert!(parsed.render_diagnostics(false).contains("[b.yml:8:3]"));
}

/// `proxy` only matters inside an explicit proxy server: read, checked, and ignored with a
/// warning, so that buildspecs written for one still run.
#[test]
fn proxy_is_checked_then_ignored_with_a_warning() {
    let text = "version: 0.2\nproxy:\n  upload-artifacts: yes\n  logs: no\nphases:\n  build:\n    commands: [ls]\n";
    assert_eq!(codes(text), vec![("ignored", false, 2)]);
    let parsed = parse_str("buildspec.yml", text);
    assert!(parsed.spec.is_some() && !parsed.has_errors());
    assert_eq!(
        codes("version: 0.2\nproxy: yes\nphases:\n  build:\n    commands: [ls]\n")[0].0,
        "wrong-type"
    );
}
