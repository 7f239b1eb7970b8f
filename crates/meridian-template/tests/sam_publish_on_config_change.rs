//! `SamOptions::publish_on_config_change`: a new version (a new `<Id>Version<hash>` logical id)
//! when the function's configuration changes, not only its code.
//!
//! Note: SAM's own version hash already covers the code location, `Environment` and
//! `MemorySize`, so those publish a new version with the option off too; the option adds
//! everything else (Timeout, Handler, Runtime, Layers, ...).

#[path = "sam/helpers.rs"]
mod helpers;

use meridian_template::sam::{transform, SamOptions};
use serde_json::Value;

const BASE: &str = r#"
Transform: AWS::Serverless-2016-10-31
Resources:
  Fn:
    Type: AWS::Serverless::Function
    Properties:
      CodeUri: s3://bucket/fn.zip
      Handler: app.handler
      Runtime: python3.12
      MemorySize: 128
      Timeout: 3
      Environment:
        Variables:
          MODE: a
      AutoPublishAlias: live
"#;

fn version_id(text: &str, on: bool) -> String {
    let template = helpers::parse_template("t.yaml", text);
    let opts = SamOptions {
        publish_on_config_change: on,
        ..SamOptions::default()
    };
    let out = transform(&template, &opts).expect("transform");
    let resources = out["Resources"].as_object().unwrap();
    let ids: Vec<&String> = resources
        .iter()
        .filter(|(_, r)| r["Type"] == "AWS::Lambda::Version")
        .map(|(id, _)| id)
        .collect();
    assert_eq!(ids.len(), 1);
    // the alias follows the version
    assert_eq!(
        out["Resources"]["FnAliaslive"]["Properties"]["FunctionVersion"]["Fn::GetAtt"][0],
        Value::from(ids[0].as_str())
    );
    ids[0].clone()
}

#[test]
fn configuration_changes_publish_a_version_only_with_the_option() {
    for (what, changed) in [
        ("Timeout", BASE.replace("Timeout: 3", "Timeout: 30")),
        ("Handler", BASE.replace("Handler: app.handler", "Handler: app.other")),
        ("Runtime", BASE.replace("python3.12", "python3.13")),
        (
            "Layers",
            BASE.replace(
                "      AutoPublishAlias",
                "      Layers: [arn:aws:lambda:us-east-1:1:layer:x:1]\n      AutoPublishAlias",
            ),
        ),
    ] {
        assert_ne!(version_id(BASE, true), version_id(&changed, true), "{what}: option on");
        assert_eq!(
            version_id(BASE, false),
            version_id(&changed, false),
            "{what}: option off (as SAM)"
        );
    }
}

#[test]
fn memory_and_environment_changes_publish_a_version_with_the_option() {
    for (what, changed) in [
        ("MemorySize", BASE.replace("MemorySize: 128", "MemorySize: 512")),
        ("Environment", BASE.replace("MODE: a", "MODE: b")),
    ] {
        assert_ne!(version_id(BASE, true), version_id(&changed, true), "{what}: option on");
        // SAM's default hash covers these two already.
        assert_ne!(
            version_id(BASE, false),
            version_id(&changed, false),
            "{what}: option off"
        );
    }
}

#[test]
fn unchanged_configuration_keeps_the_version() {
    assert_eq!(version_id(BASE, true), version_id(BASE, true));
    // with the option on, the hash is SAM's AutoPublishAliasAllProperties hash
    let all = BASE.replace(
        "      AutoPublishAlias: live",
        "      AutoPublishAlias: live\n      AutoPublishAliasAllProperties: true",
    );
    assert_eq!(version_id(BASE, true), version_id(&all, false));
}
