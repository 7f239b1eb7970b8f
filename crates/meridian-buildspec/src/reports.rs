//! Test reports: JUnit XML and Cucumber JSON files read into pass/fail/skip counts.
//!
//! The XML reader is deliberately tiny: it walks tags (skipping comments, CDATA, declarations
//! and processing instructions) and counts `<testcase>` elements by the `<failure>`, `<error>`
//! and `<skipped>` elements inside them. That is all a summary needs.

use serde::Serialize;

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Counts {
    pub total: usize,
    pub passed: usize,
    pub failed: usize,
    pub skipped: usize,
}

impl Counts {
    pub fn add(&mut self, o: &Counts) {
        self.total += o.total;
        self.passed += o.passed;
        self.failed += o.failed;
        self.skipped += o.skipped;
    }
}

#[derive(Clone, Copy, PartialEq)]
enum Outcome {
    Passed,
    Failed,
    Skipped,
}

/// Counts the test cases of a JUnit XML document (`<testsuites>`, `<testsuite>` or bare cases).
pub fn junit(xml: &str) -> Result<Counts, String> {
    let mut counts = Counts::default();
    let mut case: Option<Outcome> = None;
    let mut depth_in_case = 0usize;
    let mut i = 0;
    let mut saw_root = false;
    while let Some(off) = xml[i..].find('<') {
        i += off;
        let rest = &xml[i..];
        if rest.starts_with("<!--") {
            i += rest.find("-->").ok_or("an unclosed comment")? + 3;
            continue;
        }
        if rest.starts_with("<![CDATA[") {
            i += rest.find("]]>").ok_or("an unclosed CDATA section")? + 3;
            continue;
        }
        if rest.starts_with("<?") || rest.starts_with("<!") {
            i += rest.find('>').ok_or("an unclosed declaration")? + 1;
            continue;
        }
        let end = tag_end(rest).ok_or("an unclosed tag")?;
        let tag = &rest[1..end];
        i += end + 1;
        let closing = tag.starts_with('/');
        let self_closing = tag.ends_with('/');
        let name: String = tag
            .trim_start_matches('/')
            .chars()
            .take_while(|c| !c.is_whitespace() && *c != '/' && *c != '>')
            .collect();
        saw_root = true;
        if closing {
            if name == "testcase" && case.is_some() && depth_in_case == 0 {
                finish(&mut counts, case.take());
            } else if case.is_some() && depth_in_case > 0 {
                depth_in_case -= 1;
            }
            continue;
        }
        match (name.as_str(), case.is_some()) {
            ("testcase", false) => {
                if self_closing {
                    finish(&mut counts, Some(Outcome::Passed));
                } else {
                    case = Some(Outcome::Passed);
                    depth_in_case = 0;
                }
            }
            (n, true) => {
                if depth_in_case == 0 {
                    match n {
                        "failure" | "error" => case = Some(Outcome::Failed),
                        "skipped" if case != Some(Outcome::Failed) => case = Some(Outcome::Skipped),
                        _ => {}
                    }
                }
                if !self_closing {
                    depth_in_case += 1;
                }
            }
            _ => {}
        }
    }
    if case.is_some() {
        return Err("a <testcase> is not closed".into());
    }
    if !saw_root {
        return Err("no XML element found".into());
    }
    Ok(counts)
}

/// The end of a tag starting at `<`, skipping `>` inside quoted attribute values.
fn tag_end(s: &str) -> Option<usize> {
    let mut quote = None;
    for (i, c) in s.char_indices().skip(1) {
        match (quote, c) {
            (None, '"' | '\'') => quote = Some(c),
            (Some(q), c) if c == q => quote = None,
            (None, '>') => return Some(i),
            _ => {}
        }
    }
    None
}

fn finish(counts: &mut Counts, o: Option<Outcome>) {
    let Some(o) = o else { return };
    counts.total += 1;
    match o {
        Outcome::Passed => counts.passed += 1,
        Outcome::Failed => counts.failed += 1,
        Outcome::Skipped => counts.skipped += 1,
    }
}

/// Counts the scenarios of a Cucumber JSON report: a scenario fails when a step failed, is
/// skipped when a step was skipped, pending or undefined, and passes otherwise.
pub fn cucumber(json: &str) -> Result<Counts, String> {
    let v: serde_json::Value = serde_json::from_str(json).map_err(|e| e.to_string())?;
    let features = v.as_array().ok_or("a Cucumber JSON report is a list of features")?;
    let mut counts = Counts::default();
    for f in features {
        for el in f.get("elements").and_then(|e| e.as_array()).into_iter().flatten() {
            if el.get("type").and_then(|t| t.as_str()) == Some("background") {
                continue;
            }
            let statuses: Vec<&str> = el
                .get("steps")
                .and_then(|s| s.as_array())
                .into_iter()
                .flatten()
                .filter_map(|s| s.pointer("/result/status").and_then(|x| x.as_str()))
                .collect();
            let o = if statuses.contains(&"failed") {
                Outcome::Failed
            } else if statuses
                .iter()
                .any(|s| matches!(*s, "skipped" | "pending" | "undefined"))
            {
                Outcome::Skipped
            } else {
                Outcome::Passed
            };
            finish(&mut counts, Some(o));
        }
    }
    Ok(counts)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn junit_counts_cases() {
        let xml = r#"<?xml version="1.0"?>
<!-- <testcase> in a comment is not a case -->
<testsuites><testsuite name="a" tests="4">
  <testcase name="ok" classname="x"/>
  <testcase name="bad"><failure message="a > b">trace <![CDATA[<testcase/>]]></failure></testcase>
  <testcase name="err"><error type="E"/><system-out>x</system-out></testcase>
  <testcase name="skip"><skipped/></testcase>
  <testcase name="ok2"><system-out>fine</system-out></testcase>
</testsuite></testsuites>"#;
        assert_eq!(
            junit(xml).unwrap(),
            Counts {
                total: 5,
                passed: 2,
                failed: 2,
                skipped: 1
            }
        );
        assert!(junit("<testsuite><testcase name='a'>").is_err());
        assert!(junit("not xml").is_err());
    }

    #[test]
    fn cucumber_counts_scenarios() {
        let json = r#"[{"elements":[
            {"type":"scenario","steps":[{"result":{"status":"passed"}},{"result":{"status":"passed"}}]},
            {"type":"scenario","steps":[{"result":{"status":"passed"}},{"result":{"status":"failed"}}]},
            {"type":"scenario","steps":[{"result":{"status":"undefined"}}]},
            {"type":"background","steps":[{"result":{"status":"passed"}}]}
        ]}]"#;
        assert_eq!(
            cucumber(json).unwrap(),
            Counts {
                total: 3,
                passed: 1,
                failed: 1,
                skipped: 1
            }
        );
        assert!(cucumber("{}").is_err());
    }
}
