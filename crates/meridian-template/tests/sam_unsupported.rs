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
fn schedule_v2_becomes_a_scheduler_schedule_with_its_role() {
    let text = r#"
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
"#;
    let t = helpers::parse_template("t.yaml", text);
    let out = transform(&t, &SamOptions::default()).expect("translated");
    let schedule = &out["Resources"]["FTick"];
    assert_eq!(schedule["Type"], "AWS::Scheduler::Schedule");
    assert_eq!(schedule["Properties"]["Name"], "FTick");
    assert_eq!(schedule["Properties"]["FlexibleTimeWindow"]["Mode"], "OFF");
    assert_eq!(
        schedule["Properties"]["Target"]["RoleArn"]["Fn::GetAtt"][0],
        "FTickRole"
    );
    assert_eq!(
        out["Resources"]["FTickRole"]["Properties"]["Policies"][0]["PolicyName"],
        "FTickLambdaPolicy"
    );
}

#[test]
fn state_machines_become_step_functions_with_their_role_and_schedule() {
    let text = r#"
Resources:
  Flow:
    Type: AWS::Serverless::StateMachine
    Properties:
      Definition:
        StartAt: Work
        States:
          Work: {Type: Task, Resource: !GetAtt Fn.Arn, End: true}
      Policies: [AWSLambdaRole]
      Events:
        Nightly:
          Type: Schedule
          Properties: {Schedule: rate(1 day)}
"#;
    let t = helpers::parse_template("t.yaml", text);
    let out = transform(&t, &SamOptions::default()).expect("translated");
    let machine = &out["Resources"]["Flow"];
    assert_eq!(machine["Type"], "AWS::StepFunctions::StateMachine");
    assert_eq!(
        machine["Properties"]["DefinitionSubstitutions"]["definition_substitution_1"],
        serde_json::json!({"Fn::GetAtt": ["Fn", "Arn"]})
    );
    assert_eq!(machine["Properties"]["RoleArn"]["Fn::GetAtt"][0], "FlowRole");
    let rule = &out["Resources"]["FlowNightly"]["Properties"];
    assert_eq!(rule["Targets"][0]["Id"], "FlowNightlyStepFunctionsTarget");
    assert_eq!(rule["Targets"][0]["RoleArn"]["Fn::GetAtt"][0], "FlowNightlyRole");
}

#[test]
fn state_machine_event_errors_name_the_event_alone() {
    let msg = error_of(
        r#"
Resources:
  Flow:
    Type: AWS::Serverless::StateMachine
    Properties:
      DefinitionUri: s3://b/flow.json
      Events:
        Nightly:
          Type: Schedule
          Properties: {Schedule: rate(1 day), Enabled: true, State: ENABLED}
"#,
    );
    assert_eq!(
        msg,
        "Invalid Serverless Application Specification document. Number of errors found: 1. \
         Event with id [Nightly] is invalid. State and Enabled Properties cannot both be specified."
    );
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
