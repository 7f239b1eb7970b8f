//! cfn-lint 1.58.0 (pinned in scripts/test-peers/requirements.txt, installed in `.venv` by
//! scripts/setup.sh) as the oracle of the template language and of what is declared:
//!
//! - tests/cfnlint/*.yaml: Meridian refuses each template cfn-lint reports an error for, and
//!   accepts each it passes (`good-*.yaml`), but for the cases written down in `CFN_LINT_CANNOT_KNOW`.
//! - the official samples (../shared/cfn-samples, beside the project): each sample with an error
//!   of the rules Meridian checks (`LANGUAGE_RULES`) is refused; each sample cfn-lint passes
//!   reaches a change set unless tests/cfn_samples.tsv writes down why not. The rules of resource properties
//!   (E3002, E3012, E3031, E1040, E1150-E1199, E3710, ...) are not checked by Meridian yet: see
//!   docs/stacks.md.

#[path = "sam/helpers.rs"]
mod helpers;

use meridian_template::eval::{resolve_parameters, Pseudo};
use meridian_template::sam::SamOptions;
use meridian_template::{plan, Template};
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .unwrap()
}

/// Cases where cfn-lint cannot know what CloudFormation knows, with the reason.
const CFN_LINT_CANNOT_KNOW: &[(&str, &str)] = &[(
    "transform-unknown-macro.yaml",
    "macros are the account's: cfn-lint skips a template with a macro it does not know; CloudFormation refuses it (\"No transform named 123456789012::MyMacro found.\") and so does Meridian",
)];

/// The rules whose errors are about the template language and declarations, which Meridian
/// checks: the template's shape (E0, E1001), functions (E1010-E1032), parameters (E2), resource
/// attributes and names (E3001, E3005, E3007, E3035, E3036), outputs (E6), mappings (E7) and
/// conditions (E8).
fn language_rule(rule: &str) -> bool {
    let n: u32 = rule[1..].parse().unwrap_or(0);
    rule.starts_with('E')
        && (n < 1000
            || n == 1001
            || (1010..=1032).contains(&n)
            || (2000..3000).contains(&n)
            || matches!(n, 3001 | 3005 | 3007 | 3035 | 3036)
            || (6000..9000).contains(&n))
}

fn cfn_lint() -> Option<PathBuf> {
    let p = std::env::var_os("MERIDIAN_TEST_CFN_LINT")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo().join(".venv/bin/cfn-lint"));
    let version = Command::new(&p).arg("--version").output().ok();
    match version {
        Some(o) if String::from_utf8_lossy(&o.stdout).trim() == "cfn-lint 1.58.0" => Some(p),
        _ => {
            helpers::missing(
                "the template language against cfn-lint (oracle)",
                &format!(
                    "cfn-lint 1.58.0 is not at {}; run scripts/setup.sh (it installs scripts/test-peers/requirements.txt)",
                    p.display()
                ),
            );
            None
        }
    }
}

/// cfn-lint's errors (rule and message) of each file, by path relative to `dir`.
fn lint(cfn_lint: &Path, dir: &Path, files: &[String]) -> BTreeMap<String, Vec<(String, String)>> {
    let out = Command::new(cfn_lint)
        .current_dir(dir)
        .args(["--format", "parseable", "--regions", "us-east-1", "--"])
        .args(files)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    let mut errors: BTreeMap<String, Vec<(String, String)>> = BTreeMap::new();
    for line in text.lines() {
        // path:line:column:end line:end column:rule:message
        let parts: Vec<&str> = line.splitn(7, ':').collect();
        if parts.len() == 7 && parts[5].starts_with('E') {
            errors
                .entry(parts[0].to_string())
                .or_default()
                .push((parts[5].to_string(), parts[6].to_string()));
        }
    }
    errors
}

/// Meridian's verdict: None when the template reaches a change set, or the error.
fn meridian(path: &Path) -> Option<String> {
    let text = std::fs::read_to_string(path).unwrap();
    let name = path.display().to_string();
    let opts = SamOptions {
        region: "us-east-1".into(),
        ..SamOptions::default()
    };
    let t = match Template::parse(&name, &text, &opts) {
        Ok(t) => t,
        Err(e) => return Some(e.to_string()),
    };
    let params = match resolve_parameters(&t, &BTreeMap::new(), &|_| None) {
        Ok(p) => p,
        Err(e) => return Some(e.to_string()),
    };
    let pseudo = Pseudo::new("us-east-1", "123456789012", "oracle", "{{pending:AWS::StackId}}");
    plan::plan(&t, &params, &pseudo, &BTreeMap::new(), &|_| None)
        .err()
        .map(|e| e.to_string())
}

fn yaml_files(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().to_string())
        .filter(|n| n.ends_with(".yaml"))
        .collect();
    v.sort();
    v
}

#[test]
fn meridian_refuses_what_cfn_lint_refuses_and_accepts_what_it_passes() {
    let Some(cfn_lint) = cfn_lint() else { return };
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/cfnlint");
    let files = yaml_files(&dir);
    assert!(files.len() >= 15);
    let errors = lint(&cfn_lint, &dir, &files);
    let exceptions: BTreeMap<&str, &str> = CFN_LINT_CANNOT_KNOW.iter().copied().collect();
    let mut wrong = Vec::new();
    for f in &files {
        let good = f.starts_with("good-");
        let linted = errors.get(f).is_some_and(|e| !e.is_empty());
        let refused = meridian(&dir.join(f));
        if exceptions.contains_key(f.as_str()) {
            assert!(!linted && refused.is_some(), "{f}: the exception no longer holds");
            continue;
        }
        if good == linted {
            wrong.push(format!(
                "{f}: the test data is wrong: cfn-lint says {:?}",
                errors.get(f)
            ));
        }
        match (&refused, linted) {
            (Some(e), false) => wrong.push(format!("{f}: cfn-lint passes it, Meridian refuses it: {e}")),
            (None, true) => wrong.push(format!(
                "{f}: cfn-lint refuses it ({:?}), Meridian accepts it",
                errors[f]
            )),
            _ => {}
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

#[test]
fn the_samples_that_cfn_lint_refuses_for_the_language_are_refused() {
    let Some(cfn_lint) = cfn_lint() else { return };
    let dir = std::env::var_os("MERIDIAN_CFN_SAMPLES")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/cfn-samples"));
    if !dir.is_dir() {
        eprintln!("\n!!! ../shared/cfn-samples not found: SKIPPING cfn-lint on the official samples !!!\n");
        return;
    }
    let expected =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/cfn_samples.tsv")).unwrap();
    let mut outcome = BTreeMap::new();
    for line in expected.lines().filter(|l| !l.starts_with('#')) {
        let cols: Vec<&str> = line.splitn(3, '\t').collect();
        if cols.len() == 3 {
            outcome.insert(cols[0].to_string(), (cols[1] == "ok", cols[2].to_string()));
        }
    }
    let files: Vec<String> = outcome.keys().cloned().collect();
    let errors = lint(&cfn_lint, &dir, &files);
    let mut wrong = Vec::new();
    let mut property_only = BTreeSet::new();
    for (f, (ok, reason)) in &outcome {
        let errs = errors.get(f).cloned().unwrap_or_default();
        let language: Vec<&(String, String)> = errs.iter().filter(|(r, _)| language_rule(r)).collect();
        if !language.is_empty() && *ok {
            wrong.push(format!("{f}: cfn-lint refuses it ({language:?}), Meridian plans it"));
        }
        if errs.is_empty() && !ok && reason.trim().is_empty() {
            wrong.push(format!(
                "{f}: cfn-lint passes it, Meridian refuses it without a reason in cfn_samples.tsv"
            ));
        }
        if !errs.is_empty() && language.is_empty() && *ok {
            property_only.extend(errs.iter().map(|(r, _)| r.clone()));
        }
    }
    eprintln!("cfn-lint errors of resource properties that Meridian does not check yet: {property_only:?}");
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}
