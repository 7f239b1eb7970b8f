//! Hostile templates: empty files, runaway intrinsic functions, nesting that would exhaust the
//! stack, and files that are not text. Each ends in one error naming the file, the line or the
//! resource and property, and the fix.

use meridian_template::eval::{resolve_parameters, Pseudo, MAX_VALUE_BYTES};
use meridian_template::plan::plan;
use meridian_template::sam::SamOptions;
use meridian_template::template::{read_json, Template};
use std::collections::BTreeMap;

#[test]
fn an_empty_template_is_an_error() {
    for text in ["", "  \n\t\n", "# only a comment\n", "---\n"] {
        let e = read_json("empty.yaml", text).unwrap_err();
        assert_eq!(
            e.to_string(),
            "empty.yaml:1: the template is empty (help: a template is a mapping with a `Resources` section: start the file with `Resources:`)",
            "{text:?}"
        );
        assert!(Template::parse("empty.yaml", text, &SamOptions::default()).is_err());
    }
}

/// `n` nested `Fn::Base64` around "x", as one resource's UserData.
fn nested_base64(n: usize) -> String {
    let mut v = "\"x\"".to_string();
    for _ in 0..n {
        v = format!("{{\"Fn::Base64\": {v}}}");
    }
    format!(
        "{{\"Resources\": {{\"Inst\": {{\"Type\": \"AWS::EC2::Instance\", \"Properties\": {{\"UserData\": {v}}}}}}}}}"
    )
}

#[test]
fn runaway_intrinsic_functions_stop_at_the_value_limit() {
    for n in [60, 70, 120] {
        let t = Template::parse("t.json", &nested_base64(n), &SamOptions::default()).unwrap();
        let params = resolve_parameters(&t, &BTreeMap::new(), &|_| None).unwrap();
        let pseudo = Pseudo::new("eu-west-1", "123456789012", "app", "arn:stack");
        let started = std::time::Instant::now();
        let e = plan(&t, &params, &pseudo, &BTreeMap::new(), &|_| None).unwrap_err();
        assert!(started.elapsed().as_secs() < 10);
        let msg = e.to_string();
        assert!(
            msg.starts_with("t.json:1: resource `Inst`: the value of property `UserData` would be "),
            "{msg}"
        );
        assert!(
            msg.contains(&format!(
                "bytes (made by Fn::Base64), over Meridian's limit of {MAX_VALUE_BYTES} bytes (4 MiB) for one value"
            )),
            "{msg}"
        );
        assert!(msg.contains("look for Fn::Base64 nested in itself"), "{msg}");
    }
    // a reasonable nesting still evaluates
    let t = Template::parse("t.json", &nested_base64(3), &SamOptions::default()).unwrap();
    let params = resolve_parameters(&t, &BTreeMap::new(), &|_| None).unwrap();
    let pseudo = Pseudo::new("eu-west-1", "123456789012", "app", "arn:stack");
    assert!(plan(&t, &params, &pseudo, &BTreeMap::new(), &|_| None).is_ok());
}

#[test]
fn nesting_that_would_exhaust_the_stack_is_refused_while_reading() {
    let deep = format!(
        "Resources:\n  Q:\n    Type: AWS::SSM::Parameter\n    Properties:\n      Value: {}x{}\n",
        "{a: ".repeat(20_000),
        "}".repeat(20_000)
    );
    let e = Template::parse("deep.yaml", &deep, &SamOptions::default()).unwrap_err();
    assert_eq!(e.line, Some(5));
    assert!(
        e.message
            .contains("the YAML nests lists and mappings deeper than 128 levels"),
        "{e}"
    );
    assert!(
        e.help
            .as_deref()
            .unwrap()
            .contains("Meridian reads at most 128 nested levels"),
        "{e}"
    );
    // just under the limit (three levels per Fn::Join), every walk (transform, evaluation)
    // still fits on a test thread's stack
    let mut v = "\"x\"".to_string();
    for _ in 0..41 {
        v = format!("{{\"Fn::Join\": [\"\", [{v}]]}}");
    }
    let text = format!(
        "{{\"Resources\": {{\"Q\": {{\"Type\": \"AWS::SSM::Parameter\", \"Properties\": {{\"Type\": \"String\", \"Value\": {v}}}}}}}}}"
    );
    let t = Template::parse("join.json", &text, &SamOptions::default()).unwrap();
    let params = resolve_parameters(&t, &BTreeMap::new(), &|_| None).unwrap();
    let pseudo = Pseudo::new("eu-west-1", "123456789012", "app", "arn:stack");
    plan(&t, &params, &pseudo, &BTreeMap::new(), &|_| None).unwrap();
}

#[test]
fn a_template_file_must_be_text() {
    let dir = std::env::temp_dir().join(format!("meridian-template-hostile-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("template.yaml");
    std::fs::write(&path, b"Resources:\n  Q:\n    Type: \xff\xfe\n").unwrap();
    let e = Template::load(&path, &SamOptions::default()).unwrap_err();
    assert_eq!(e.line, Some(3));
    assert!(
        e.message
            .contains("the template is not UTF-8 text at byte offset 26 (line 3)"),
        "{e}"
    );
    assert!(e.help.as_deref().unwrap().contains("templates are UTF-8 text"), "{e}");
    let e = Template::load(std::path::Path::new("/dev/zero"), &SamOptions::default()).unwrap_err();
    assert!(
        e.message
            .contains("the file holds more than 10485760 bytes, Meridian's limit"),
        "{e}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

/// CloudFormation's quota of 500 resources, counted after the SAM transform, with AWS's text.
#[test]
fn more_than_500_resources_is_cloudformations_error() {
    let opts = meridian_template::sam::SamOptions::default();
    let params = |n: usize| -> String {
        (0..n)
            .map(|i| format!("  P{i}:\n    Type: AWS::SSM::Parameter\n    Properties: {{Type: String, Value: v}}\n"))
            .collect()
    };
    let ok = format!("Resources:\n{}", params(500));
    assert!(meridian_template::Template::parse("t.yaml", &ok, &opts).is_ok());
    let over = format!("Resources:\n{}", params(501));
    let e = meridian_template::Template::parse("t.yaml", &over, &opts)
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("Template format error: Number of resources, 501, is greater than maximum allowed, 500"),
        "{e}"
    );
    // SAM functions count as what they expand into (a function and its role): 300 are 600.
    let sam: String = (0..300)
        .map(|i| format!("  F{i}:\n    Type: AWS::Serverless::Function\n    Properties: {{Runtime: nodejs20.x, Handler: index.handler, InlineCode: x}}\n"))
        .collect();
    let sam = format!("Transform: AWS::Serverless-2016-10-31\nResources:\n{sam}");
    let e = meridian_template::Template::parse("t.yaml", &sam, &opts)
        .unwrap_err()
        .to_string();
    assert!(e.contains("Number of resources, 600,"), "{e}");
}
