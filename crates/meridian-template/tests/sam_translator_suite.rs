//! The SAM transform measured against aws-sam-translator's whole translator test suite
//! (../shared/fixtures/sam-translator-suite: `input/<case>.yaml` and `output/<case>.json`, the
//! exact CloudFormation or the exact error; Apache 2.0, kept beside the project and not
//! committed). Each case goes through what `meridian template transform` does: the template read
//! (YAML short forms), `Transform: AWS::Serverless-2016-10-31` added when the input omits it (the
//! translator applies it unconditionally), the transforms checked, the SAM transform run.
//!
//! The figures are printed; the test fails when one goes below what has been reached (a ratchet:
//! raise the constants when the figures rise; no error case may be accepted). Absent fixtures skip loudly, and fail with CI set.
//!
//! `MERIDIAN_SUITE_REPORT=/tmp/suite.tsv cargo test -p meridian-template --test
//! sam_translator_suite -- --nocapture` also writes each case's outcome, for finding what to do
//! next.

#[path = "sam/helpers.rs"]
mod helpers;

use meridian_template::declared;
use meridian_template::sam::{transform, SamOptions};
use serde_json::Value;
use std::collections::BTreeMap;

/// Success cases whose output equals the translator's, at least.
const MIN_SUCCESS_EQUAL: usize = 500;
/// Error cases refused with exactly the translator's message, at least.
const MIN_ERROR_EXACT: usize = 260;

enum Outcome {
    Output(Value),
    Refused(String),
}

/// The case through `meridian template transform`'s steps.
fn run(name: &str, text: &str) -> Outcome {
    let (mut json, _) = match meridian_template::template::read_json(name, text) {
        Ok(v) => v,
        Err(e) => return Outcome::Refused(e.message),
    };
    let Some(top) = json.as_object_mut() else {
        return Outcome::Refused("a template is a mapping".into());
    };
    if !top.contains_key("Transform") {
        top.insert("Transform".into(), Value::String("AWS::Serverless-2016-10-31".into()));
    }
    if let Err(p) = declared::transforms(&json) {
        return Outcome::Refused(p.message);
    }
    // the region the translator's harness runs its cases in
    let opts = SamOptions {
        region: "ap-southeast-1".into(),
        ..SamOptions::default()
    };
    match transform(&json, &opts) {
        Ok(out) => Outcome::Output(out),
        // The suite's `errorMessage` lists the causes as SAM's test harness sorts them (a stable
        // sort by `_exception_sort_key`: the resource's logical id, else the message); the
        // transform reports them in the order it finds them.
        Err(e) => {
            let mut causes: Vec<(String, String)> = e
                .errors
                .iter()
                .map(|c| (exception_sort_key(c), c.full_message()))
                .collect();
            causes.sort_by(|a, b| a.0.cmp(&b.0));
            let causes: Vec<String> = causes.into_iter().map(|(_, m)| m).collect();
            Outcome::Refused(format!(
                "Invalid Serverless Application Specification document. Number of errors found: {}. {}",
                causes.len(),
                causes.join(" ")
            ))
        }
    }
}

/// SAM's harness sorts a document's causes by their `_logical_id` (a duplicate logical id's is
/// the id of the resource being transformed), else by their message.
fn exception_sort_key(cause: &meridian_template::sam::SamResourceError) -> String {
    if let Some(id) = &cause.logical_id {
        return id.clone();
    }
    cause
        .message
        .strip_prefix("Transforming resource with id [")
        .and_then(|rest| rest.split_once(']'))
        .map(|(id, _)| id.to_string())
        .unwrap_or_else(|| cause.message.clone())
}

/// The value with its mappings' keys and every list sorted, members first: the form in which
/// the translator's harness compares outputs.
fn unordered(v: &Value) -> Value {
    match v {
        Value::Object(m) => {
            let sorted: BTreeMap<&String, Value> = m.iter().map(|(k, v)| (k, unordered(v))).collect();
            Value::Object(sorted.into_iter().map(|(k, v)| (k.clone(), v)).collect())
        }
        Value::Array(a) => {
            let mut items: Vec<(String, Value)> = a
                .iter()
                .map(|x| {
                    let x = unordered(x);
                    (x.to_string(), x)
                })
                .collect();
            items.sort_by(|a, b| a.0.cmp(&b.0));
            Value::Array(items.into_iter().map(|(_, x)| x).collect())
        }
        other => other.clone(),
    }
}

/// A short name for why a case is refused, to group them.
fn reason(message: &str) -> String {
    for key in ["Resource type '", "Event type '", "property '"] {
        if let Some(i) = message.find(key) {
            let rest = &message[i + key.len()..];
            if let Some(j) = rest.find('\'') {
                return format!("{key}{}'", &rest[..j]);
            }
        }
    }
    if message.contains("not supported by Meridian") {
        return "not supported by Meridian (other)".into();
    }
    "SAM validation error".into()
}

#[test]
fn the_translator_suite_stays_at_or_above_its_figures() {
    let dir = helpers::shared_dir().join("fixtures/sam-translator-suite");
    let input_dir = dir.join("input");
    if !input_dir.is_dir() {
        helpers::missing(
            "the SAM transform against aws-sam-translator's test suite",
            &format!("the fixtures directory {} is absent", input_dir.display()),
        );
        return;
    }
    let mut names: Vec<String> = std::fs::read_dir(&input_dir)
        .expect("read the suite's input directory")
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".yaml"))
        .collect();
    names.sort();
    assert!(names.len() > 800, "the suite has {} inputs, expected 831", names.len());

    let (mut equal, mut refused, mut differ) = (0, 0, 0);
    let mut equal_unordered = 0;
    let (mut exact, mut wrong, mut accepted) = (0, 0, 0);
    let mut no_output = 0;
    let mut refusals: BTreeMap<String, usize> = BTreeMap::new();
    let mut report = String::new();
    for name in &names {
        let case = name.trim_end_matches(".yaml");
        let Ok(expected) = std::fs::read_to_string(dir.join("output").join(format!("{case}.json"))) else {
            no_output += 1;
            continue;
        };
        let expected: Value = serde_json::from_str(&expected).expect("the suite's outputs are JSON");
        let text = std::fs::read_to_string(input_dir.join(name)).expect("read the input");
        let outcome = run(name, &text);
        let (category, detail) = match (expected.get("errorMessage").and_then(Value::as_str), outcome) {
            (None, Outcome::Output(out)) if out == expected => {
                equal += 1;
                ("equal", String::new())
            }
            // The translator's own harness compares with every list sorted (`deep_sort_lists`:
            // "lists are unordered"), so its expected outputs fix a list's members, not their
            // order.
            (None, Outcome::Output(out)) if unordered(&out) == unordered(&expected) => {
                equal += 1;
                equal_unordered += 1;
                ("equal-unordered", String::new())
            }
            (None, Outcome::Output(out)) => {
                differ += 1;
                let d = helpers::diff(&expected, &out);
                (
                    "differ",
                    format!(
                        "{} paths: {}",
                        d.len(),
                        d.iter().take(6).cloned().collect::<Vec<_>>().join(" || ")
                    ),
                )
            }
            (None, Outcome::Refused(m)) => {
                refused += 1;
                *refusals.entry(reason(&m)).or_default() += 1;
                ("refused", m)
            }
            (Some(e), Outcome::Refused(m)) if e == m => {
                exact += 1;
                ("exact", String::new())
            }
            (Some(e), Outcome::Refused(m)) => {
                wrong += 1;
                ("wrong-message", format!("expected: {e} | got: {m}"))
            }
            (Some(e), Outcome::Output(_)) => {
                accepted += 1;
                ("accepted", format!("expected: {e}"))
            }
        };
        report.push_str(&format!("{case}\t{category}\t{}\n", detail.replace(['\n', '\t'], " ")));
    }
    let success = equal + refused + differ;
    let errors = exact + wrong + accepted;
    eprintln!(
        "aws-sam-translator test suite ({} inputs, {no_output} without an output):",
        names.len()
    );
    eprintln!(
        "  success cases: {equal}/{success} equal ({equal_unordered} of them with a list in another order), {refused} refused, {differ} differ"
    );
    eprintln!("  error cases:   {exact}/{errors} exact error, {wrong} with another message, {accepted} accepted");
    let mut by_count: Vec<_> = refusals.into_iter().collect();
    by_count.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
    eprintln!("  success cases refused, by reason:");
    for (r, n) in by_count.iter().take(12) {
        eprintln!("    {n:4}  {r}");
    }
    if let Some(path) = std::env::var_os("MERIDIAN_SUITE_REPORT") {
        std::fs::write(&path, report).expect("write the report");
    }
    assert!(
        equal >= MIN_SUCCESS_EQUAL,
        "{equal} success cases equal, fewer than the {MIN_SUCCESS_EQUAL} reached before"
    );
    assert!(
        exact >= MIN_ERROR_EXACT,
        "{exact} error cases exact, fewer than the {MIN_ERROR_EXACT} reached before"
    );
    // none of the cases the translator refuses may be accepted
    assert_eq!(
        accepted, 0,
        "{accepted} error cases accepted although aws-sam-translator refuses them"
    );
}
