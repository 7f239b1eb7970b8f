//! What Meridian's SAM transform does not translate yet is a clear error naming the resource,
//! reported where SAM would translate it (so SAM's own earlier errors still come first).

#[path = "sam/helpers.rs"]
mod helpers;

use meridian_template::sam::{is_sam, transform, SamOptions};

fn error_of(text: &str) -> String {
    let t = helpers::parse_template("t.yaml", text);
    transform(&t, &SamOptions::default()).expect_err("an error").to_string()
}

#[test]
fn rest_api_features_not_translated_yet_are_named_errors() {
    let msg = error_of(
        r#"
Transform: AWS::Serverless-2016-10-31
Resources:
  Web:
    Type: AWS::Serverless::Function
    Properties:
      CodeUri: s3://b/k.zip
      Handler: app.handler
      Runtime: python3.12
      Events:
        Get:
          Type: Api
          Properties: {Path: /, Method: get, RestApiId: !Ref Rest, ResponseTransferMode: STREAM}
  Rest:
    Type: AWS::Serverless::Api
    Properties:
      StageName: prod
      AlwaysDeploy: true
"#,
    );
    assert_eq!(
        msg,
        "Invalid Serverless Application Specification document. Number of errors found: 2. \
         Resource with id [Web] is invalid. Event with id [Get] is invalid. Property 'ResponseTransferMode' of Api events is not supported by Meridian's local regions yet. \
         Resource with id [Rest] is invalid. Property 'AlwaysDeploy' of AWS::Serverless::Api is not supported by Meridian's local regions yet."
    );
}

#[test]
fn policy_templates_become_their_statements_or_the_translators_error() {
    let text = r#"
Resources:
  F:
    Type: AWS::Serverless::Function
    Properties:
      CodeUri: s3://b/k.zip
      Handler: app.handler
      Runtime: python3.12
      Policies:
        - S3ReadPolicy: {BucketName: !Ref Bucket}
"#;
    let t = helpers::parse_template("t.yaml", text);
    let out = transform(&t, &SamOptions::default()).unwrap();
    let policy = &out["Resources"]["FRole"]["Properties"]["Policies"][0];
    assert_eq!(policy["PolicyName"], "FRolePolicy0");
    let statement = policy["PolicyDocument"]["Statement"][0].to_string();
    assert!(
        statement.contains("s3:GetObject") && statement.contains(r#""bucketName":{"Ref":"Bucket"}"#),
        "{statement}"
    );
    let msg = error_of(&text.replace("{BucketName: !Ref Bucket}", "{Bucket: b}"));
    assert!(
        msg.contains("Resource with id [F] is invalid. Following required parameters of template 'S3ReadPolicy' don't have values: ['BucketName']"),
        "{msg}"
    );
}

#[test]
fn schedule_v2_is_a_clear_error() {
    let msg = error_of(
        r#"
Resources:
  F:
    Type: AWS::Serverless::Function
    Properties:
      CodeUri: s3://b/k.zip
      Handler: app.handler
      Runtime: python3.12
      Events:
        Tick:
          Type: ScheduleV2
          Properties: {ScheduleExpression: rate(1 minute)}
"#,
    );
    assert!(msg.ends_with("Event with id [Tick] is invalid. Event type 'ScheduleV2' is not supported by Meridian's local regions yet."), "{msg}");
}

#[test]
fn is_sam_reads_the_transform_as_a_string_or_a_list() {
    let t = |s: &str| helpers::parse_template("t.yaml", s);
    assert!(is_sam(&t("Transform: AWS::Serverless-2016-10-31\nResources: {}")));
    assert!(is_sam(&t(
        "Transform: [AWS::LanguageExtensions, AWS::Serverless-2016-10-31]\nResources: {}"
    )));
    assert!(!is_sam(&t("Resources: {}")));
}
