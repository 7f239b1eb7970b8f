//! Packaging templates once per region into per-region content-addressed stores.

use meridian_buildspec::package::{
    package, read_template, DirStore, PackageError, PackageStore, StoreError, StoredObject,
};
use serde_json::json;
use std::fs;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

fn tmp(name: &str) -> PathBuf {
    let p = std::env::temp_dir().join(format!("meridian-package-{name}-{}", std::process::id()));
    let _ = fs::remove_dir_all(&p);
    fs::create_dir_all(&p).unwrap();
    p
}

fn write(root: &Path, rel: &str, text: &str) {
    let p = root.join(rel);
    fs::create_dir_all(p.parent().unwrap()).unwrap();
    fs::write(p, text).unwrap();
}

/// Counts the puts it receives, over a directory store.
struct Counting {
    inner: DirStore,
    puts: Mutex<Vec<String>>,
}

impl PackageStore for Counting {
    fn put(&self, region: &str, bytes: Vec<u8>) -> Result<StoredObject, StoreError> {
        self.puts.lock().unwrap().push(region.to_string());
        self.inner.put(region, bytes)
    }
}

fn regions() -> Vec<String> {
    vec!["us-east-1".into(), "eu-west-1".into(), "ap-southeast-2".into()]
}

fn stored_files(root: &Path, region: &str) -> usize {
    fs::read_dir(root.join(region)).map(|d| d.count()).unwrap_or(0)
}

#[test]
fn symphonia_template_is_packaged_for_three_regions() {
    let fixture = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../../shared/fixtures/multi-region-codepipeline/template.yaml");
    if !fixture.exists() {
        assert!(
            std::env::var_os("CI").is_none(),
            "fixture {} is missing, and CI is set",
            fixture.display()
        );
        eprintln!(
            "SKIP!!! fixture {} is missing (../shared is absent); this test checked nothing",
            fixture.display()
        );
        return;
    }
    let root = tmp("symphonia");
    fs::copy(&fixture, root.join("template.yaml")).unwrap();
    write(&root, "target/src/lambda.js", "exports.handler = async () => 'hi';");
    let store = DirStore {
        root: root.join("store"),
    };
    let out = package(&root.join("template.yaml"), &regions(), &store, &root.join("out")).unwrap();
    assert_eq!(out.templates.len(), 3);
    let digest = &out.uploads[0].digest;
    for (region, path) in &out.templates {
        assert_eq!(
            path.file_name().unwrap().to_str().unwrap(),
            format!("packaged-template-{region}.yaml")
        );
        let t = read_template(path).unwrap();
        assert_eq!(
            t["Resources"]["MyLambdaFunction"]["Properties"]["CodeUri"],
            json!(format!("s3://meridian-artifacts-{region}/{digest}"))
        );
        assert_eq!(t["Transform"], "AWS::Serverless-2016-10-31");
        assert_eq!(t["AWSTemplateFormatVersion"], "2010-09-09");
        assert_eq!(t["Resources"]["MyLambdaFunction"]["Properties"]["Timeout"], 5);
        let blob = fs::read(root.join("store").join(region).join(digest)).unwrap();
        let mut z = zip::ZipArchive::new(std::io::Cursor::new(blob)).unwrap();
        assert_eq!(z.by_index(0).unwrap().name(), "src/lambda.js");
    }
}

#[test]
fn shared_code_is_stored_once_per_region_and_references_are_rewritten_as_the_aws_cli_does() {
    let root = tmp("shared");
    write(&root, "src/app.js", "exports.a = 1;");
    write(&root, "src/lib/util.js", "exports.u = 2;");
    write(&root, "layer/nodejs/x.js", "x");
    write(&root, "api.yaml", "openapi: 3.0.0\n");
    write(
        &root,
        "child/child.yaml",
        "Resources:\n  ChildFn:\n    Type: AWS::Serverless::Function\n    Properties:\n      CodeUri: ../src\n      Handler: app.a\n",
    );
    write(
        &root,
        "template.yaml",
        r#"AWSTemplateFormatVersion: "2010-09-09"
Transform: AWS::Serverless-2016-10-31
Parameters:
  Stage: {Type: String, Default: prod}
Resources:
  One:
    Type: AWS::Serverless::Function
    Properties:
      CodeUri: src
      Handler: app.a
      Environment:
        Variables:
          TABLE: !Ref Table
          ARN: !GetAtt Table.Arn
          NAME: !Sub "${Stage}-one"
  Two:
    Type: AWS::Serverless::Function
    Properties:
      CodeUri: ./src/
      Handler: app.a
  Three:
    Type: AWS::Serverless::Function
    Properties:
      CodeUri: ./src
      Handler: app.a
  Raw:
    Type: AWS::Lambda::Function
    Properties:
      Code: src
      Handler: app.a
  Inline:
    Type: AWS::Serverless::Function
    Properties:
      InlineCode: "exports.h = 1"
      Handler: index.h
  Remote:
    Type: AWS::Serverless::Function
    Properties:
      CodeUri: s3://elsewhere/code.zip
  Layer:
    Type: AWS::Serverless::LayerVersion
    Properties:
      ContentUri: layer
  Api:
    Type: AWS::Serverless::Api
    Properties:
      StageName: prod
      DefinitionUri: api.yaml
  Rest:
    Type: AWS::ApiGateway::RestApi
    Properties:
      BodyS3Location: api.yaml
  Inline2:
    Type: AWS::Serverless::Api
    Properties:
      StageName: prod
      DefinitionBody: {openapi: 3.0.0}
  Nested:
    Type: AWS::CloudFormation::Stack
    Properties:
      TemplateURL: child/child.yaml
  Table:
    Type: AWS::DynamoDB::Table
"#,
    );
    let store = Counting {
        inner: DirStore {
            root: root.join("store"),
        },
        puts: Mutex::new(Vec::new()),
    };
    let out = package(&root.join("template.yaml"), &regions(), &store, &root.join("out")).unwrap();
    // per region: src zip (shared by One, Two, Three, Raw and the child's function), layer zip,
    // api.yaml as is, and the nested template
    for r in regions() {
        assert_eq!(stored_files(&root.join("store"), &r), 4, "{r}");
        assert_eq!(store.puts.lock().unwrap().iter().filter(|p| **p == r).count(), 4);
    }
    let t = read_template(&out.templates[1].1).unwrap();
    let res = &t["Resources"];
    let src_digest = out
        .uploads
        .iter()
        .find(|u| u.reference == "One.CodeUri")
        .map(|u| u.digest.clone())
        .unwrap();
    let uri = json!(format!("s3://meridian-artifacts-eu-west-1/{src_digest}"));
    for f in ["One", "Two", "Three"] {
        assert_eq!(res[f]["Properties"]["CodeUri"], uri, "{f}");
    }
    assert_eq!(
        res["Raw"]["Properties"]["Code"],
        json!({"S3Bucket": "meridian-artifacts-eu-west-1", "S3Key": src_digest})
    );
    assert_eq!(
        res["Inline"]["Properties"].get("CodeUri"),
        None,
        "inline code is left alone"
    );
    assert_eq!(res["Remote"]["Properties"]["CodeUri"], "s3://elsewhere/code.zip");
    assert!(res["Layer"]["Properties"]["ContentUri"]
        .as_str()
        .unwrap()
        .starts_with("s3://meridian-artifacts-eu-west-1/"));
    let api = fs::read(root.join("api.yaml")).unwrap();
    let api_key = meridian_buildspec::package::sha256(&api);
    assert_eq!(
        res["Api"]["Properties"]["DefinitionUri"],
        json!(format!("s3://meridian-artifacts-eu-west-1/{api_key}"))
    );
    assert_eq!(
        res["Rest"]["Properties"]["BodyS3Location"],
        json!({"Bucket": "meridian-artifacts-eu-west-1", "Key": api_key}),
        "definitions are uploaded as the file they are"
    );
    assert_eq!(res["Inline2"]["Properties"].get("DefinitionUri"), None);
    // short-form tags come out in their JSON form
    assert_eq!(
        res["One"]["Properties"]["Environment"]["Variables"]["TABLE"],
        json!({"Ref": "Table"})
    );
    assert_eq!(
        res["One"]["Properties"]["Environment"]["Variables"]["ARN"],
        json!({"Fn::GetAtt": ["Table", "Arn"]})
    );
    assert_eq!(
        res["One"]["Properties"]["Environment"]["Variables"]["NAME"],
        json!({"Fn::Sub": "${Stage}-one"})
    );
    // the nested template is packaged for the region and referenced by its https URL
    let url = res["Nested"]["Properties"]["TemplateURL"].as_str().unwrap();
    let prefix = "https://s3.eu-west-1.amazonaws.com/meridian-artifacts-eu-west-1/";
    assert!(url.starts_with(prefix), "{url}");
    let child = fs::read_to_string(root.join("store/eu-west-1").join(&url[prefix.len()..])).unwrap();
    assert!(
        child.contains(&format!("s3://meridian-artifacts-eu-west-1/{src_digest}")),
        "{child}"
    );

    // packaging again gives the same digests and the same templates
    let again = package(&root.join("template.yaml"), &regions(), &store, &root.join("out2")).unwrap();
    for ((_, a), (_, b)) in out.templates.iter().zip(&again.templates) {
        assert_eq!(fs::read(a).unwrap(), fs::read(b).unwrap());
    }
}

#[test]
fn a_missing_code_path_names_the_resource_and_property() {
    let root = tmp("missing");
    write(
        &root,
        "template.json",
        r#"{"Resources": {"Fn": {"Type": "AWS::Serverless::Function", "Properties": {"CodeUri": "build/out"}}}}"#,
    );
    let err = package(
        &root.join("template.json"),
        &regions(),
        &DirStore { root: root.join("s") },
        &root.join("o"),
    )
    .unwrap_err();
    assert!(matches!(err, PackageError::Missing { .. }));
    let msg = err.to_string();
    assert!(msg.contains("Fn.CodeUri is `build/out`"), "{msg}");
}

#[test]
fn a_function_without_code_uri_packages_the_template_directory() {
    let root = tmp("default");
    write(&root, "handler.py", "def h(e, c): pass");
    write(
        &root,
        "template.yaml",
        "Resources:\n  Fn:\n    Type: AWS::Serverless::Function\n    Properties:\n      Handler: handler.h\n",
    );
    let out = package(
        &root.join("template.yaml"),
        &["us-east-1".to_string()],
        &DirStore {
            root: root.join("../default-store"),
        },
        &root.join("../default-out"),
    )
    .unwrap();
    let t = read_template(&out.templates[0].1).unwrap();
    assert!(t["Resources"]["Fn"]["Properties"]["CodeUri"]
        .as_str()
        .unwrap()
        .starts_with("s3://"));
    let blob = fs::read(root.join("../default-store/us-east-1").join(&out.uploads[0].digest)).unwrap();
    let z = zip::ZipArchive::new(std::io::Cursor::new(blob)).unwrap();
    let names: Vec<&str> = z.file_names().collect();
    assert!(
        names.contains(&"handler.py") && names.contains(&"template.yaml"),
        "{names:?}"
    );
}

/// A dynamic reference where a path could be (`TemplateURL: '{{resolve:ssm:...}}'`) is left for
/// CloudFormation to resolve when it deploys, not read as a file.
#[test]
fn dynamic_references_are_left_to_cloudformation() {
    let root = tmp("dynref");
    write(
        &root,
        "template.yaml",
        "Resources:\n  Child:\n    Type: AWS::CloudFormation::Stack\n    Properties:\n      TemplateURL: '{{resolve:ssm:/templates/child}}'\n",
    );
    let out = package(
        &root.join("template.yaml"),
        &regions(),
        &DirStore { root: root.join("s") },
        &root.join("o"),
    )
    .unwrap();
    let t = read_template(&out.templates[0].1).unwrap();
    assert_eq!(
        t["Resources"]["Child"]["Properties"]["TemplateURL"],
        "{{resolve:ssm:/templates/child}}"
    );
    assert!(out.uploads.is_empty());
}
