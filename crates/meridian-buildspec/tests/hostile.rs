//! Hostile buildspecs and sources: variable names CodeBuild refuses, paths and symbolic links
//! leading out of the build's source directory, no timeout, files that are not text.

use meridian_buildspec::project::build_timeout;
use meridian_buildspec::{parse_file, parse_str, run_build, BuildContext, BuildError, Status};
use std::fs;
use std::path::{Path, PathBuf};
use std::time::Duration;

fn tmp(name: &str) -> PathBuf {
    let p = std::env::temp_dir().join(format!("meridian-bs-hostile-{name}-{}", std::process::id()));
    let _ = fs::remove_dir_all(&p);
    fs::create_dir_all(&p).unwrap();
    p
}

/// Every error as `line:column code message | help`.
fn errors(text: &str) -> Vec<String> {
    let parsed = parse_str("buildspec.yml", text);
    parsed
        .diagnostics
        .iter()
        .filter(|d| d.is_error())
        .map(|d| {
            format!(
                "{} {} {} | {}",
                d.location(&parsed.sources).unwrap_or_default(),
                d.code,
                d.message,
                d.help.clone().unwrap_or_default()
            )
        })
        .collect()
}

#[test]
fn environment_variable_names_are_checked() {
    let help = "a name is letters, digits and underscores, not starting with a digit, such as `MY_VAR`; to set `X=Y`, write `X: Y`";
    let cases = [
        (
            "variables",
            "\"X=Y\": v",
            5,
            "`X=Y` in `variables` is not a valid environment variable name: it holds `=`",
        ),
        (
            "variables",
            "\"HAS SPACE\": v",
            5,
            "`HAS SPACE` in `variables` is not a valid environment variable name: it holds a space",
        ),
        (
            "variables",
            "\"\": v",
            5,
            "`` in `variables` is not a valid environment variable name: an empty name",
        ),
        (
            "variables",
            "1ST: v",
            5,
            "`1ST` in `variables` is not a valid environment variable name: it starts with a digit",
        ),
        (
            "variables",
            "\"A\\u202eB\": v",
            5,
            "`A\\u{202e}B` in `variables` is not a valid environment variable name: it holds `\\u{202e}`",
        ),
        (
            "parameter-store",
            "\"TOKEN-X\": /ci/token",
            5,
            "`TOKEN-X` in `parameter-store` is not a valid environment variable name: it holds `-`",
        ),
        (
            "secrets-manager",
            "\"DB PASS\": db:password",
            5,
            "`DB PASS` in `secrets-manager` is not a valid environment variable name: it holds a space",
        ),
    ];
    for (section, entry, line, message) in cases {
        let text = format!(
            "version: 0.2\nenv:\n  {section}:\n    OK_NAME: x\n    {entry}\nphases:\n  build:\n    commands: [ls]\n"
        );
        let got = errors(&text);
        assert_eq!(
            got,
            vec![format!(
                "buildspec.yml:{line}:5 invalid-variable-name {message} | {help}"
            )],
            "{text}"
        );
    }
    let text = "version: 0.2\nenv:\n  exported-variables:\n    - GOOD\n    - \"BAD=1\"\nphases:\n  build:\n    commands: [ls]\n";
    assert_eq!(
        errors(text),
        vec![format!("buildspec.yml:5:7 invalid-variable-name `BAD=1` in `exported-variables` is not a valid environment variable name: it holds `=` | {help}")]
    );
    assert!(
        errors("version: 0.2\nenv:\n  variables:\n    _A1: x\n    b: y\nphases:\n  build:\n    commands: [ls]\n")
            .is_empty()
    );
}

#[test]
fn paths_leaving_the_source_are_validation_errors() {
    let text = "version: 0.2\nphases:\n  build:\n    commands: [ls]\nartifacts:\n  files: ['**/*']\n  base-directory: ../../..\n  secondary-artifacts:\n    two:\n      files: ['../secret/*']\n      base-directory: /etc\nreports:\n  tests:\n    files: ['*.xml']\n    base-directory: ../out\ncache:\n  paths:\n    - '../../.m2/**/*'\n    - '/root/.m2/**/*'\n";
    let got = errors(text);
    let fix = "| give a directory inside the source, like `base-directory: build/output`";
    assert_eq!(
        got,
        vec![
            format!("buildspec.yml:7:19 path-outside-source `base-directory` must stay inside the build's source directory: `../../..` leaves the directory through `..` {fix}"),
            "buildspec.yml:10:15 path-outside-source `files` entries must stay inside the build's source directory: `../secret/*` leaves the directory through `..` | write a path or glob inside the source, like `build/**/*`".to_string(),
            format!("buildspec.yml:11:23 path-outside-source `base-directory` must stay inside the build's source directory: `/etc` is an absolute path; only paths relative to the directory are allowed {fix}"),
            format!("buildspec.yml:15:21 path-outside-source `base-directory` must stay inside the build's source directory: `../out` leaves the directory through `..` {fix}"),
            "buildspec.yml:18:7 path-outside-source `paths` entries must stay inside the build's source directory: `../../.m2/**/*` leaves the directory through `..` | write a path or glob inside the source, like `build/**/*`".to_string(),
        ]
    );
}

fn build_with_links(name: &str, spec: &str) -> (meridian_buildspec::BuildOutcome, PathBuf) {
    let root = tmp(name);
    let src = root.join("source");
    fs::create_dir_all(src.join("out")).unwrap();
    fs::write(src.join("out/app.txt"), "app").unwrap();
    let secret = root.join("outside");
    fs::create_dir_all(&secret).unwrap();
    fs::write(secret.join("id_rsa"), "PRIVATE KEY").unwrap();
    std::os::unix::fs::symlink(&secret, src.join("out/leak")).unwrap();
    std::os::unix::fs::symlink(secret.join("id_rsa"), src.join("out/key")).unwrap();
    std::os::unix::fs::symlink(&secret, src.join("my-build-evil")).unwrap();
    let parsed = parse_str("buildspec.yml", spec);
    assert!(!parsed.has_errors(), "{}", parsed.render_diagnostics(false));
    let ctx = BuildContext::new("proj", &src, root.join("work"));
    (run_build(parsed.spec.as_ref().unwrap(), &ctx).unwrap(), root)
}

fn no_secret_under(dir: &Path) {
    if !dir.exists() {
        return;
    }
    for e in walk(dir) {
        let text = fs::read_to_string(&e).unwrap_or_default();
        assert!(!text.contains("PRIVATE KEY"), "{} holds the secret", e.display());
    }
}

fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for e in fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() && !p.is_symlink() {
            out.extend(walk(&p));
        } else {
            out.push(p);
        }
    }
    out
}

#[test]
fn symbolic_links_out_of_the_source_are_never_followed_into_artifacts() {
    for (name, spec, refused) in [
        (
            "follow",
            "version: 0.2\nphases:\n  build:\n    commands: [ls]\nartifacts:\n  files: ['**/*']\n  base-directory: out\n",
            "primary",
        ),
        (
            "keep",
            "version: 0.2\nphases:\n  build:\n    commands: [ls]\nartifacts:\n  files: ['**/*']\n  base-directory: out\n  enable-symlinks: yes\n",
            "primary",
        ),
        (
            "globbase",
            "version: 0.2\nphases:\n  build:\n    commands: [ls]\nartifacts:\n  files: [out/app.txt]\n  secondary-artifacts:\n    evil:\n      files: ['**/*']\n      base-directory: 'my-build*'\n",
            "evil",
        ),
        (
            // a failed build still uploads artifacts (BUILD failing goes on to POST_BUILD), and
            // still not from outside
            "failed",
            "version: 0.2\nphases:\n  build:\n    commands: ['false']\nartifacts:\n  files: ['**/*']\n  base-directory: out\n",
            "primary",
        ),
    ] {
        let (o, root) = build_with_links(name, spec);
        assert_eq!(o.status, Status::Failed, "{name}");
        let upload = o.phases.iter().find(|p| p.name == "UPLOAD_ARTIFACTS").unwrap();
        let msg = upload.message.as_deref().unwrap();
        assert!(
            msg.starts_with(&format!("CLIENT_ERROR: the {refused} artifact is refused: `")),
            "{name}: {msg}"
        );
        assert!(
            msg.contains("outside the build's source directory: Meridian copies no file from outside it"),
            "{name}: {msg}"
        );
        no_secret_under(&root.join("work/artifacts"));
        let log = fs::read_to_string(&o.log_file).unwrap();
        assert!(log.contains(&format!("Artifact {refused}: refused: ")), "{name}: {log}");
        let _ = fs::remove_dir_all(&root);
    }
}

#[test]
fn links_inside_the_source_still_work() {
    let root = tmp("inside");
    let src = root.join("source");
    fs::create_dir_all(src.join("out/real")).unwrap();
    fs::write(src.join("out/real/a.txt"), "a").unwrap();
    std::os::unix::fs::symlink("real", src.join("out/alias")).unwrap();
    let parsed = parse_str(
        "buildspec.yml",
        "version: 0.2\nphases:\n  build:\n    commands: [ls]\nartifacts:\n  files: ['**/*']\n  base-directory: out\n",
    );
    let ctx = BuildContext::new("proj", &src, root.join("work"));
    let o = run_build(parsed.spec.as_ref().unwrap(), &ctx).unwrap();
    assert_eq!(o.status, Status::Succeeded, "{:?}", o.phases);
    assert!(o.artifacts[0].dir.join("alias/a.txt").is_file());
    let _ = fs::remove_dir_all(&root);
}

#[test]
fn a_build_needs_a_timeout_in_codebuilds_range() {
    assert_eq!(
        build_timeout(0).unwrap_err(),
        "a build timeout of 0 minutes is not allowed: CodeBuild allows 5 to 2160 minutes (36 hours)"
    );
    assert!(build_timeout(2161).is_err());
    assert_eq!(build_timeout(5).unwrap(), Duration::from_secs(300));
    assert_eq!(build_timeout(2160).unwrap(), Duration::from_secs(2160 * 60));
    let root = tmp("timeout");
    fs::create_dir_all(root.join("source")).unwrap();
    let parsed = parse_str("b.yml", "version: 0.2\nphases:\n  build:\n    commands: [ls]\n");
    let mut ctx = BuildContext::new("proj", root.join("source"), root.join("work"));
    ctx.timeout = Duration::ZERO;
    let e = run_build(parsed.spec.as_ref().unwrap(), &ctx).unwrap_err();
    assert!(matches!(e, BuildError::NoTimeout));
    assert_eq!(
        e.to_string(),
        "the build timeout is zero: a build needs a timeout (CodeBuild allows 5 to 2160 minutes)"
    );
    let _ = fs::remove_dir_all(&root);
}

#[test]
fn a_buildspec_file_must_be_text() {
    let root = tmp("binary");
    let path = root.join("buildspec.yml");
    fs::write(&path, b"version: 0.2\nphases:\n  build:\n    commands: [\"\x00\"]\n").unwrap();
    let parsed = parse_file(&path).unwrap();
    assert!(parsed.spec.is_none());
    let d = &parsed.diagnostics[0];
    assert_eq!(
        d.message,
        format!(
            "`{}` is not UTF-8 text at byte offset 46 (line 4): it holds a NUL byte",
            path.display()
        )
    );
    assert_eq!(d.location(&parsed.sources).unwrap(), format!("{}:4:17", path.display()));
    let rendered = parsed.render_diagnostics(false);
    assert!(rendered.contains("\\u{0}") && !rendered.contains('\0'), "{rendered}");
    let parsed = parse_file(Path::new("/dev/zero")).unwrap();
    assert_eq!(
        parsed.diagnostics[0].message,
        "`/dev/zero` holds more than 10485760 bytes, Meridian's limit for a definition file"
    );
    // a buildspec path leading out of the source is refused before it is read
    let src = root.join("src");
    fs::create_dir_all(&src).unwrap();
    let e = meridian_buildspec::project::load_buildspec(
        &meridian_pipeline::model::BuildSpecSource::Path("../buildspec.yml".into()),
        &src,
    )
    .unwrap_err();
    assert_eq!(e.to_string(), "`../buildspec.yml` leaves the directory through `..`");
    let _ = fs::remove_dir_all(&root);
}

#[test]
fn links_leading_outside_are_not_cached() {
    let root = tmp("cache");
    let src = root.join("source");
    fs::create_dir_all(src.join("deps")).unwrap();
    fs::write(src.join("deps/lib.txt"), "lib").unwrap();
    fs::create_dir_all(root.join("outside")).unwrap();
    fs::write(root.join("outside/id_rsa"), "PRIVATE KEY").unwrap();
    std::os::unix::fs::symlink(root.join("outside/id_rsa"), src.join("deps/key")).unwrap();
    let parsed = parse_str(
        "buildspec.yml",
        "version: 0.2\nphases:\n  build:\n    commands: [ls]\ncache:\n  paths: ['deps/**/*']\n",
    );
    let mut ctx = BuildContext::new("proj", &src, root.join("work"));
    ctx.cache_dir = Some(root.join("cache"));
    let o = run_build(parsed.spec.as_ref().unwrap(), &ctx).unwrap();
    assert_eq!(o.status, Status::Succeeded);
    assert!(root.join("cache/files/deps/lib.txt").is_file());
    assert!(
        fs::symlink_metadata(root.join("cache/files/deps/key")).is_err(),
        "the link was cached"
    );
    assert!(
        o.warnings
            .iter()
            .any(|w| w.starts_with("`deps/key` is a symbolic link to `")
                && w.ends_with(
                    "outside the build's source directory: Meridian copies no file from outside it; it is not cached"
                )),
        "{:?}",
        o.warnings
    );
    let _ = fs::remove_dir_all(&root);
}
