//! Shared by the SAM test binaries: reading a template the way the transform receives it.

#![allow(dead_code)]

use std::path::{Path, PathBuf};

use meridian_pipeline::source::{SourceFile, Sources};
use serde_json::Value;

/// Parses YAML or JSON text into JSON (short-form tags in long form, plain scalars typed).
pub fn parse_template(name: &str, text: &str) -> Value {
    let mut sources = Sources::default();
    let id = sources.add(SourceFile::new(name, None, text.to_string()));
    let mut diags = Vec::new();
    let node = meridian_pipeline::node::parse(id, sources.get(id), &mut diags)
        .unwrap_or_else(|d| panic!("{name}: cannot parse: {d:?}"));
    assert!(diags.is_empty(), "{name}: {diags:?}");
    node.to_json()
}

pub fn read_template(path: &Path) -> Value {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    parse_template(&path.display().to_string(), &text)
}

/// `/work/shared` next to the project root (the fixtures live there, not in the repository).
pub fn shared_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared")
}

pub fn in_ci() -> bool {
    std::env::var_os("CI").is_some_and(|v| !v.is_empty())
}

/// Fails in CI, otherwise prints a loud warning that `what` was NOT checked.
pub fn missing(what: &str, why: &str) {
    if in_ci() {
        panic!("{what}: {why} (CI is set, so this is a failure)");
    }
    eprintln!();
    eprintln!("!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!");
    eprintln!("!!! WARNING: {what} was NOT checked.");
    eprintln!("!!! {why}");
    eprintln!("!!! (With CI set this is a test failure.)");
    eprintln!("!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!");
    eprintln!();
}

/// A readable difference between two JSON values (paths that differ).
pub fn diff(expected: &Value, actual: &Value) -> Vec<String> {
    let mut out = Vec::new();
    walk("", expected, actual, &mut out);
    out
}

fn walk(path: &str, e: &Value, a: &Value, out: &mut Vec<String>) {
    match (e, a) {
        (Value::Object(me), Value::Object(ma)) => {
            for (k, ve) in me {
                match ma.get(k) {
                    Some(va) => walk(&format!("{path}/{k}"), ve, va, out),
                    None => out.push(format!("{path}/{k}: missing (expected {ve})")),
                }
            }
            for k in ma.keys().filter(|k| !me.contains_key(*k)) {
                out.push(format!("{path}/{k}: unexpected {}", ma[k]));
            }
        }
        (Value::Array(ve), Value::Array(va)) if ve.len() == va.len() => {
            for (i, (x, y)) in ve.iter().zip(va).enumerate() {
                walk(&format!("{path}/{i}"), x, y, out);
            }
        }
        _ if e == a => {}
        _ => out.push(format!("{path}: expected {e}, got {a}")),
    }
}
