//! REST API `Auth` through the SAM transform: authorizers become the swagger's security
//! definitions, the default authorizer guards every method unless an event says `NONE`, and
//! Lambda authorizers get the permission API Gateway needs to call them.

#[path = "sam/helpers.rs"]
mod helpers;

use meridian_template::sam::{transform, SamOptions};

const TEMPLATE: &str = r#"
Transform: AWS::Serverless-2016-10-31
Resources:
  Api:
    Type: AWS::Serverless::Api
    Properties:
      StageName: prod
      Auth:
        DefaultAuthorizer: Tokens
        Authorizers:
          Tokens:
            FunctionArn: !GetAtt AuthFn.Arn
          Pool:
            UserPoolArn: arn:aws:cognito-idp:us-east-1:123456789012:userpool/us-east-1_x
  AuthFn:
    Type: AWS::Serverless::Function
    Properties:
      Runtime: python3.12
      Handler: a.handler
      CodeUri: s3://b/a.zip
  Fn:
    Type: AWS::Serverless::Function
    Properties:
      Runtime: python3.12
      Handler: f.handler
      CodeUri: s3://b/f.zip
      Events:
        Private:
          Type: Api
          Properties: {RestApiId: !Ref Api, Path: /private, Method: get}
        Pooled:
          Type: Api
          Properties: {RestApiId: !Ref Api, Path: /pooled, Method: get, Auth: {Authorizer: Pool}}
        Open:
          Type: Api
          Properties: {RestApiId: !Ref Api, Path: /open, Method: get, Auth: {Authorizer: NONE}}
"#;

#[test]
fn authorizers_guard_the_methods_and_lambda_authorizers_may_be_invoked() {
    let template = helpers::parse_template("auth.yaml", TEMPLATE);
    let out = transform(&template, &SamOptions::default()).expect("the template transforms");
    let body = &out["Resources"]["Api"]["Properties"]["Body"];
    let defs = &body["securityDefinitions"];
    assert_eq!(defs["Tokens"]["x-amazon-apigateway-authtype"], "custom");
    assert_eq!(defs["Tokens"]["x-amazon-apigateway-authorizer"]["type"], "token");
    assert_eq!(
        defs["Pool"]["x-amazon-apigateway-authorizer"]["type"],
        "cognito_user_pools"
    );
    let security = |path: &str| body["paths"][path]["get"]["security"].clone();
    assert_eq!(security("/private"), serde_json::json!([{"Tokens": []}]));
    assert_eq!(security("/pooled"), serde_json::json!([{"Pool": []}]));
    // `NONE` keeps the default away; SAM leaves its marker in the swagger as it is
    assert_eq!(security("/open"), serde_json::json!([{"NONE": []}]));
    let permission = &out["Resources"]["ApiTokensAuthorizerPermission"];
    assert_eq!(permission["Type"], "AWS::Lambda::Permission");
    assert_eq!(permission["Properties"]["Principal"], "apigateway.amazonaws.com");
    assert!(out["Resources"].get("ApiPoolAuthorizerPermission").is_none());
}

#[test]
fn an_unknown_default_authorizer_is_refused_with_sams_words() {
    let text = TEMPLATE.replace("DefaultAuthorizer: Tokens", "DefaultAuthorizer: Missing");
    let template = helpers::parse_template("auth.yaml", &text);
    let err = transform(&template, &SamOptions::default()).expect_err("refused");
    let messages: Vec<String> = err.errors.iter().map(|e| e.full_message()).collect();
    assert!(
        messages.iter().any(|m| m
            == "Resource with id [Api] is invalid. Unable to set DefaultAuthorizer because 'Missing' was not defined in 'Authorizers'."),
        "{messages:?}"
    );
}
