//! The official sample templates of aws-cloudformation/aws-cloudformation-templates (Apache 2.0,
//! at commit 142ce6f283d285fa370adb7f9d332d7f46dac5fc, with their LICENSE.txt and NOTICE.txt):
//! third-party files, kept beside the project in ../shared/cfn-samples and not committed to it.
//! Each must reach a change set (the template read, its transforms applied, its parameters
//! resolved, its resources planned, as `meridian stack deploy --allow-unsupported` plans them), or
//! fail with the error that tests/cfn_samples.tsv (in the repository) writes down, with the reason.
//!
//! Parameters without a default get a value of their type that meets their constraints, as a
//! user would give one.
//!
//! `MERIDIAN_BLESS=1 cargo test -p meridian-template --test cfn_samples` rewrites the outcomes in
//! cfn_samples.tsv and keeps the reasons written there; a new failure gets the reason `TODO`, which
//! the test refuses.

use meridian_template::eval::{java_regex, resolve_parameters, Pseudo};
use meridian_template::sam::SamOptions;
use meridian_template::{plan, Template};
use serde_json::Value;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// The samples, beside the project; `None` (the test says it is skipped) when they are absent.
/// `python3 scripts/corpus.py` puts them there (MERIDIAN_CFN_SAMPLES to choose another place).
fn root() -> Option<PathBuf> {
    let dir = std::env::var_os("MERIDIAN_CFN_SAMPLES")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/cfn-samples"));
    if dir.is_dir() {
        return Some(dir);
    }
    eprintln!(
        "\n!!! {} not found: SKIPPING the official sample templates (assemble them with `python3 scripts/corpus.py`) !!!\n",
        dir.display()
    );
    None
}

fn templates(dir: &Path, out: &mut Vec<PathBuf>) {
    let mut entries: Vec<_> = std::fs::read_dir(dir).unwrap().map(|e| e.unwrap().path()).collect();
    entries.sort();
    for p in entries {
        if p.is_dir() {
            templates(&p, out);
        } else if p.extension().is_some_and(|e| e == "yaml" || e == "yml" || e == "json") {
            out.push(p);
        }
    }
}

/// A value a user could give for a parameter without a default.
fn value_for(decl: &Value) -> String {
    let ty = decl.get("Type").and_then(Value::as_str).unwrap_or("String");
    if let Some(first) = decl
        .get("AllowedValues")
        .and_then(Value::as_array)
        .and_then(|a| a.first())
    {
        return match first {
            Value::String(s) => s.clone(),
            other => other.to_string(),
        };
    }
    let list = ty.starts_with("List<") || ty == "CommaDelimitedList";
    let by_type = match ty.trim_start_matches("List<").trim_end_matches('>') {
        "AWS::EC2::VPC::Id" => "vpc-0123456789abcdef0",
        "AWS::EC2::Subnet::Id" => "subnet-0123456789abcdef0",
        "AWS::EC2::SecurityGroup::Id" => "sg-0123456789abcdef0",
        "AWS::EC2::Image::Id" => "ami-0123456789abcdef0",
        "AWS::EC2::Instance::Id" => "i-0123456789abcdef0",
        "AWS::EC2::Volume::Id" => "vol-0123456789abcdef0",
        "AWS::EC2::KeyPair::KeyName" | "AWS::EC2::SecurityGroup::GroupName" => "my-key",
        "AWS::EC2::AvailabilityZone::Name" => "us-east-1a",
        "AWS::Route53::HostedZone::Id" => "Z0123456789ABCDEFGHIJ",
        "Number" => "1",
        _ => "",
    };
    if !by_type.is_empty() {
        // Lists get four items (templates select up to the fourth subnet).
        return if list {
            [by_type; 4].join(",")
        } else {
            by_type.to_string()
        };
    }
    let min = |k: &str| {
        decl.get(k)
            .and_then(|v| v.as_f64().or_else(|| v.as_str()?.parse().ok()))
    };
    if ty == "Number" || ty == "List<Number>" {
        return min("MinValue").map(|m| m.to_string()).unwrap_or_else(|| "1".into());
    }
    let candidates = [
        "example",
        "a",
        "x1",
        "Example1",
        "10.0.0.0/16",
        "10.0.0.0/24",
        "0.0.0.0/0",
        "192.168.1.1",
        "t3.micro",
        "example.com",
        "admin@example.com",
        "arn:aws:iam::123456789012:role/example",
        "Abcdefg1!",
        "abcdefgh12345678",
        "1",
        "m-0123456789abcdef0",
        "d-0123456789",
        "https://example.com",
        "s3://bucket/key",
        "EXAMPLE",
        "123456789012",
        "rtb-0123456789abcdef0",
        "arn:aws:kms:us-east-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab",
        "1234abcd-12ab-34cd-56ef-1234567890ab",
        "sample-stack",
        "corp.example.com",
        "CORP",
        "pcx-0123456789abcdef0",
        "vpc-0123456789abcdef0",
        "a,b,c",
    ];
    let pattern = decl.get("AllowedPattern").and_then(Value::as_str).map(java_regex);
    if ty == "CommaDelimitedList" && pattern.is_none() {
        return "a,b,c,d".into();
    }
    let min_len = min("MinLength").unwrap_or(0.0) as usize;
    for c in candidates {
        let c = if c.len() < min_len {
            format!("{c}{}", "a".repeat(min_len - c.len()))
        } else {
            c.to_string()
        };
        if pattern
            .as_ref()
            .is_none_or(|p| p.as_ref().is_ok_and(|re| re.is_match(&c).unwrap_or(false)))
        {
            return c;
        }
    }
    "example".into()
}

/// `ok`, or the first line of the error.
fn outcome(root: &Path, path: &Path) -> String {
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) => return format!("error: {e}"),
    };
    let name = path.strip_prefix(root).unwrap().display().to_string();
    // The values a user gives, read from the template as written.
    let mut given = BTreeMap::new();
    if let Ok((json, _)) = meridian_template::template::read_json(&name, &text) {
        if let Some(params) = json.get("Parameters").and_then(Value::as_object) {
            for (k, decl) in params {
                if decl.get("Default").is_none() {
                    given.insert(k.clone(), value_for(decl));
                }
            }
        }
    }
    let mut opts = SamOptions {
        region: "us-east-1".into(),
        account_id: "123456789012".into(),
        ..SamOptions::default()
    };
    for (k, v) in &given {
        opts.parameter_values.insert(k.clone(), Value::String(v.clone()));
    }
    let result = (|| -> Result<usize, String> {
        let t = Template::parse(&name, &text, &opts).map_err(|e| e.to_string())?;
        let params = resolve_parameters(&t, &given, &|_| Some("from-ssm".into())).map_err(|e| e.to_string())?;
        let pseudo = Pseudo::new(
            "us-east-1",
            "123456789012",
            "sample",
            &meridian_template::eval::pending("AWS::StackId", None),
        );
        let changes = plan::plan(&t, &params, &pseudo, &BTreeMap::new(), &|_| None).map_err(|e| e.to_string())?;
        Ok(changes.len())
    })();
    match result {
        Ok(_) => "ok".into(),
        Err(e) => format!("error: {}", e.lines().next().unwrap_or_default()),
    }
}

#[test]
fn the_official_sample_templates_reach_a_change_set_or_fail_as_written_down() {
    let Some(root) = root() else { return };
    assert!(root.join("LICENSE.txt").is_file() && root.join("NOTICE.txt").is_file());
    let mut files = Vec::new();
    templates(&root, &mut files);
    assert!(files.len() >= 150, "{} templates", files.len());
    let expected_path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/cfn_samples.tsv");
    let expected_text = std::fs::read_to_string(&expected_path).unwrap_or_default();
    // path -> (outcome, reason)
    let mut expected: BTreeMap<String, (String, String)> = BTreeMap::new();
    for line in expected_text
        .lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
    {
        let mut cols = line.splitn(3, '\t');
        let (p, o, r) = (
            cols.next().unwrap(),
            cols.next().unwrap_or(""),
            cols.next().unwrap_or(""),
        );
        expected.insert(p.to_string(), (o.to_string(), r.to_string()));
    }
    let started = std::time::Instant::now();
    let mut actual = BTreeMap::new();
    for f in &files {
        let rel = f.strip_prefix(&root).unwrap().display().to_string();
        actual.insert(rel, outcome(&root, f));
    }
    let elapsed = started.elapsed();
    let ok = actual.values().filter(|o| *o == "ok").count();
    eprintln!(
        "{} sample templates: {ok} reach a change set, {} fail as written down, in {:.2} s",
        actual.len(),
        actual.len() - ok,
        elapsed.as_secs_f64()
    );
    if std::env::var_os("MERIDIAN_BLESS").is_some() {
        let mut out = String::from(
            "# path\toutcome (ok, or the first line of Meridian's error)\treason (why CloudFormation would fail too, or why Meridian differs)\n",
        );
        for (p, o) in &actual {
            let reason = match expected.get(p) {
                Some((old, r)) if old == o || o != "ok" && !r.is_empty() => r.clone(),
                _ if o == "ok" => String::new(),
                _ => "TODO".into(),
            };
            out.push_str(&format!("{p}\t{o}\t{reason}\n"));
        }
        std::fs::write(&expected_path, out).unwrap();
        return;
    }
    let mut wrong = Vec::new();
    for (p, o) in &actual {
        match expected.get(p) {
            Some((e, r)) if e == o => {
                if o != "ok" && (r.trim().is_empty() || r.trim() == "TODO") {
                    wrong.push(format!("{p}: fails without a reason written down: {o}"));
                }
            }
            Some((e, _)) => wrong.push(format!("{p}:\n  expected {e}\n  got      {o}")),
            None => wrong.push(format!("{p}: not in cfn_samples.tsv (got {o})")),
        }
    }
    for p in expected.keys() {
        if !actual.contains_key(p) {
            wrong.push(format!("{p}: in cfn_samples.tsv but not in ../shared/cfn-samples"));
        }
    }
    assert!(
        wrong.is_empty(),
        "{} of {} sample templates differ from cfn_samples.tsv:\n{}",
        wrong.len(),
        actual.len(),
        wrong.join("\n")
    );
}
