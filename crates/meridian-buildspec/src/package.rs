//! Packaging a CloudFormation/SAM template once per region, as `aws cloudformation package` does
//! for one: every local code path the command would upload is zipped (or, for definitions and
//! scripts, taken as the file it is), handed to the caller's per-region [`PackageStore`], and the
//! template is written again per region (`packaged-template-<region>.yaml`) pointing at what was
//! stored.
//!
//! Zips are deterministic (entries sorted, fixed timestamps, permissions reduced to 0644/0755), so
//! the same code has the same digest on every machine and at every run, and a content-addressed
//! store keeps it once per region however many functions share it.

use crate::files::walk;
use meridian_pipeline::node;
use meridian_pipeline::source::{SourceFile, Sources};
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::fs;
use std::io::{Cursor, Write};
use std::path::{Path, PathBuf};

/// Where a stored blob is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoredObject {
    pub bucket: String,
    pub key: String,
}

pub type StoreError = Box<dyn std::error::Error + Send + Sync>;

/// A region's artifact store as packaging sees it: put bytes, get back where they are. The
/// engine implements it on its content-addressed stores.
pub trait PackageStore {
    fn put(&self, region: &str, bytes: Vec<u8>) -> Result<StoredObject, StoreError>;
}

#[derive(Debug, thiserror::Error)]
pub enum PackageError {
    #[error("failed to read the template `{}`: {source}", path.display())]
    Read { path: PathBuf, source: std::io::Error },
    #[error("the template `{}` is not valid YAML or JSON:\n{message}", path.display())]
    Parse { path: PathBuf, message: String },
    #[error("{resource}.{property} is `{value}`, but `{}` does not exist", path.display())]
    Missing {
        resource: String,
        property: String,
        value: String,
        path: PathBuf,
    },
    #[error("failed to package `{}` for {resource}.{property}: {source}", path.display())]
    Io {
        resource: String,
        property: String,
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("failed to store {what} in {region}: {source}")]
    Store {
        what: String,
        region: String,
        source: StoreError,
    },
    #[error("failed to write `{}`: {source}", path.display())]
    Write { path: PathBuf, source: std::io::Error },
    #[error("nested templates go more than 10 levels deep at `{}`", .0.display())]
    TooDeep(PathBuf),
}

/// How a property's new value is written.
#[derive(Clone, Copy, Debug)]
enum Form {
    /// `s3://bucket/key`
    S3Uri,
    /// `{<bucket>: bucket, <key>: key}`
    Dict(&'static str, &'static str),
    /// A nested template, packaged itself, then referenced by its path-style https URL.
    Template,
}

#[derive(Clone, Copy, Debug)]
struct Rule {
    resource_type: &'static str,
    /// Dotted for nested properties (`Command.ScriptLocation`).
    property: &'static str,
    /// Files that are not zips are zipped (code packages); directories always are.
    force_zip: bool,
    /// An absent property means "the template's directory" (CodeUri and the like).
    package_absent: bool,
    form: Form,
}

const fn rule(
    resource_type: &'static str,
    property: &'static str,
    force_zip: bool,
    package_absent: bool,
    form: Form,
) -> Rule {
    Rule {
        resource_type,
        property,
        force_zip,
        package_absent,
        form,
    }
}

/// The resources and properties `aws cloudformation package` uploads.
const RULES: &[Rule] = &[
    rule("AWS::Serverless::Function", "CodeUri", true, true, Form::S3Uri),
    rule("AWS::Serverless::LayerVersion", "ContentUri", true, true, Form::S3Uri),
    rule("AWS::Serverless::Api", "DefinitionUri", false, false, Form::S3Uri),
    rule("AWS::Serverless::HttpApi", "DefinitionUri", false, false, Form::S3Uri),
    rule(
        "AWS::Serverless::StateMachine",
        "DefinitionUri",
        false,
        false,
        Form::S3Uri,
    ),
    rule("AWS::Serverless::Application", "Location", false, false, Form::Template),
    rule(
        "AWS::Lambda::Function",
        "Code",
        true,
        true,
        Form::Dict("S3Bucket", "S3Key"),
    ),
    rule(
        "AWS::Lambda::LayerVersion",
        "Content",
        true,
        true,
        Form::Dict("S3Bucket", "S3Key"),
    ),
    rule(
        "AWS::ApiGateway::RestApi",
        "BodyS3Location",
        false,
        false,
        Form::Dict("Bucket", "Key"),
    ),
    rule(
        "AWS::StepFunctions::StateMachine",
        "DefinitionS3Location",
        false,
        false,
        Form::Dict("Bucket", "Key"),
    ),
    rule(
        "AWS::AppSync::GraphQLSchema",
        "DefinitionS3Location",
        false,
        false,
        Form::S3Uri,
    ),
    rule(
        "AWS::AppSync::Resolver",
        "RequestMappingTemplateS3Location",
        false,
        false,
        Form::S3Uri,
    ),
    rule(
        "AWS::AppSync::Resolver",
        "ResponseMappingTemplateS3Location",
        false,
        false,
        Form::S3Uri,
    ),
    rule("AWS::AppSync::Resolver", "CodeS3Location", false, false, Form::S3Uri),
    rule(
        "AWS::AppSync::FunctionConfiguration",
        "RequestMappingTemplateS3Location",
        false,
        false,
        Form::S3Uri,
    ),
    rule(
        "AWS::AppSync::FunctionConfiguration",
        "ResponseMappingTemplateS3Location",
        false,
        false,
        Form::S3Uri,
    ),
    rule(
        "AWS::AppSync::FunctionConfiguration",
        "CodeS3Location",
        false,
        false,
        Form::S3Uri,
    ),
    rule(
        "AWS::ElasticBeanstalk::ApplicationVersion",
        "SourceBundle",
        false,
        false,
        Form::Dict("S3Bucket", "S3Key"),
    ),
    rule(
        "AWS::CloudFormation::Stack",
        "TemplateURL",
        false,
        false,
        Form::Template,
    ),
    rule("AWS::Glue::Job", "Command.ScriptLocation", false, false, Form::S3Uri),
    rule(
        "AWS::CodeCommit::Repository",
        "Code.S3",
        true,
        false,
        Form::Dict("Bucket", "Key"),
    ),
    rule(
        "AWS::CloudFormation::ModuleVersion",
        "ModulePackage",
        true,
        false,
        Form::S3Uri,
    ),
    rule(
        "AWS::CloudFormation::ResourceVersion",
        "SchemaHandlerPackage",
        true,
        false,
        Form::S3Uri,
    ),
];

/// One upload made for one region.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Upload {
    pub region: String,
    /// `Resource.Property` in the template that references it.
    pub reference: String,
    pub local_path: PathBuf,
    pub digest: String,
    pub object: StoredObject,
    pub zipped: bool,
}

#[derive(Clone, Debug, Default)]
pub struct PackageOutcome {
    /// The packaged template of each region, in the order of the regions given.
    pub templates: Vec<(String, PathBuf)>,
    /// Every reference rewritten (several references may share one stored object).
    pub uploads: Vec<Upload>,
}

/// Packages `template` for each region into `out_dir/packaged-template-<region>.yaml`.
pub fn package(
    template: &Path,
    regions: &[String],
    store: &dyn PackageStore,
    out_dir: &Path,
) -> Result<PackageOutcome, PackageError> {
    let mut p = Packager {
        store,
        blobs: HashMap::new(),
        stored: HashMap::new(),
        uploads: Vec::new(),
    };
    let mut outcome = PackageOutcome::default();
    fs::create_dir_all(out_dir).map_err(|source| PackageError::Write {
        path: out_dir.to_path_buf(),
        source,
    })?;
    for region in regions {
        let packaged = p.template(template, region, 0)?;
        let path = out_dir.join(format!("packaged-template-{region}.yaml"));
        fs::write(&path, to_yaml(&packaged)).map_err(|source| PackageError::Write {
            path: path.clone(),
            source,
        })?;
        outcome.templates.push((region.clone(), path));
    }
    outcome.uploads = p.uploads;
    Ok(outcome)
}

/// Reads a CloudFormation/SAM template (YAML with short-form tags, or JSON) as JSON, with the
/// short forms in their `Fn::` JSON form.
pub fn read_template(path: &Path) -> Result<Value, PackageError> {
    use meridian_pipeline::source::{read_text, ReadError, MAX_INPUT_BYTES};
    let text = read_text(path, MAX_INPUT_BYTES).map_err(|e| PackageError::Read {
        path: path.to_path_buf(),
        source: match e {
            ReadError::Io(e) => e,
            other => std::io::Error::new(std::io::ErrorKind::InvalidData, other.to_string()),
        },
    })?;
    let mut sources = Sources::default();
    let id = sources.add(SourceFile::new(
        path.display().to_string(),
        Some(path.to_path_buf()),
        text,
    ));
    let mut diags = Vec::new();
    let root = match node::parse(id, sources.get(id), &mut diags) {
        Ok(r) => Some(r),
        Err(d) => {
            diags.push(*d);
            None
        }
    };
    let errors: Vec<_> = diags.iter().filter(|d| d.is_error()).collect();
    if !errors.is_empty() {
        return Err(PackageError::Parse {
            path: path.to_path_buf(),
            message: errors.iter().map(|d| d.render(&sources, false)).collect(),
        });
    }
    Ok(root.map(|r| r.to_json()).unwrap_or(Value::Null))
}

struct Packager<'a> {
    store: &'a dyn PackageStore,
    /// (path, zipped) -> (bytes, digest): each local path is read and zipped once.
    blobs: HashMap<(PathBuf, bool), (Vec<u8>, String)>,
    /// (region, digest) -> where it was stored: each blob is put once per region.
    stored: HashMap<(String, String), StoredObject>,
    uploads: Vec<Upload>,
}

impl Packager<'_> {
    fn template(&mut self, path: &Path, region: &str, depth: usize) -> Result<Value, PackageError> {
        if depth > 10 {
            return Err(PackageError::TooDeep(path.to_path_buf()));
        }
        let mut doc = read_template(path)?;
        let base = path.parent().unwrap_or(Path::new(".")).to_path_buf();
        let Some(resources) = doc.get_mut("Resources").and_then(Value::as_object_mut) else {
            return Ok(doc);
        };
        for (name, resource) in resources.iter_mut() {
            let Some(rtype) = resource.get("Type").and_then(Value::as_str).map(str::to_string) else {
                continue;
            };
            for rule in RULES.iter().filter(|r| r.resource_type == rtype) {
                if rtype == "AWS::Serverless::Function" && skip_function(resource) {
                    continue;
                }
                let Some(props) = resource.get_mut("Properties").and_then(Value::as_object_mut) else {
                    if rule.package_absent {
                        // A function with no Properties at all: its code is the template's directory.
                        let mut props = Map::new();
                        self.property(&mut props, name, rule, &base, region, depth)?;
                        resource["Properties"] = Value::Object(props);
                    }
                    continue;
                };
                self.property(props, name, rule, &base, region, depth)?;
            }
        }
        Ok(doc)
    }

    fn property(
        &mut self,
        props: &mut Map<String, Value>,
        resource: &str,
        rule: &Rule,
        base: &Path,
        region: &str,
        depth: usize,
    ) -> Result<(), PackageError> {
        // Walk to the object that holds the last part of a dotted property.
        let mut parts: Vec<&str> = rule.property.split('.').collect();
        let last = parts.pop().unwrap_or(rule.property);
        let mut holder = props;
        for p in parts {
            match holder.get_mut(p).and_then(Value::as_object_mut) {
                Some(h) => holder = h,
                None => return Ok(()),
            }
        }
        let value = match holder.get(last) {
            None | Some(Value::Null) if rule.package_absent => ".".to_string(),
            Some(Value::String(s)) => s.clone(),
            // Absent, an S3 location given as a mapping, or an intrinsic function: nothing to upload.
            _ => return Ok(()),
        };
        if is_remote(&value) {
            return Ok(());
        }
        let reference = format!("{resource}.{}", rule.property);
        let local = base.join(&value);
        if !local.exists() {
            return Err(PackageError::Missing {
                resource: resource.to_string(),
                property: rule.property.to_string(),
                value,
                path: local,
            });
        }
        let io = |source| PackageError::Io {
            resource: resource.to_string(),
            property: rule.property.to_string(),
            path: local.clone(),
            source,
        };
        let (bytes, digest, zipped) = match rule.form {
            Form::Template => {
                let packaged = self.template(&local, region, depth + 1)?;
                let bytes = to_yaml(&packaged).into_bytes();
                let digest = sha256(&bytes);
                (bytes, digest, false)
            }
            _ => {
                let zipped = local.is_dir() || (rule.force_zip && !is_zip(&local));
                let key = (local.clone(), zipped);
                if !self.blobs.contains_key(&key) {
                    let bytes = if local.is_dir() {
                        zip_dir(&local).map_err(io)?
                    } else if zipped {
                        zip_file(&local).map_err(io)?
                    } else {
                        fs::read(&local).map_err(io)?
                    };
                    let digest = sha256(&bytes);
                    self.blobs.insert(key.clone(), (bytes, digest));
                }
                let (bytes, digest) = &self.blobs[&key];
                (bytes.clone(), digest.clone(), zipped)
            }
        };
        let object = match self.stored.get(&(region.to_string(), digest.clone())) {
            Some(o) => o.clone(),
            None => {
                let o = self.store.put(region, bytes).map_err(|source| PackageError::Store {
                    what: format!("{reference} ({})", local.display()),
                    region: region.to_string(),
                    source,
                })?;
                self.stored.insert((region.to_string(), digest.clone()), o.clone());
                o
            }
        };
        let new_value = match rule.form {
            Form::S3Uri => Value::String(format!("s3://{}/{}", object.bucket, object.key)),
            Form::Dict(b, k) => {
                let mut m = Map::new();
                m.insert(b.to_string(), Value::String(object.bucket.clone()));
                m.insert(k.to_string(), Value::String(object.key.clone()));
                Value::Object(m)
            }
            Form::Template => Value::String(format!(
                "https://s3.{region}.amazonaws.com/{}/{}",
                object.bucket, object.key
            )),
        };
        holder.insert(last.to_string(), new_value);
        self.uploads.push(Upload {
            region: region.to_string(),
            reference,
            local_path: local,
            digest,
            object,
            zipped,
        });
        Ok(())
    }
}

/// Functions whose code is not a local path: inline code, or a container image.
fn skip_function(resource: &Value) -> bool {
    let props = resource.get("Properties");
    props.and_then(|p| p.get("InlineCode")).is_some()
        || props.and_then(|p| p.get("PackageType")).and_then(Value::as_str) == Some("Image")
}

/// Not a local path: already in S3 or on the web, or a dynamic reference
/// (`{{resolve:ssm:...}}`) that CloudFormation resolves when it deploys.
fn is_remote(v: &str) -> bool {
    v.starts_with("s3://") || v.starts_with("https://") || v.starts_with("http://") || v.starts_with("{{resolve:")
}

fn is_zip(path: &Path) -> bool {
    let mut magic = [0u8; 4];
    fs::File::open(path)
        .and_then(|mut f| std::io::Read::read_exact(&mut f, &mut magic))
        .is_ok()
        && magic == *b"PK\x03\x04"
}

pub fn sha256(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

fn options(executable: bool) -> zip::write::SimpleFileOptions {
    zip::write::SimpleFileOptions::default()
        .compression_method(zip::CompressionMethod::Deflated)
        .last_modified_time(zip::DateTime::default())
        .unix_permissions(if executable { 0o755 } else { 0o644 })
}

#[cfg(unix)]
fn executable(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    fs::metadata(path).is_ok_and(|m| m.permissions().mode() & 0o111 != 0)
}

#[cfg(not(unix))]
fn executable(_: &Path) -> bool {
    false
}

/// A directory as a deterministic zip: files only (links followed), sorted by path, every entry
/// dated 1980-01-01 with mode 0644 or 0755.
pub fn zip_dir(dir: &Path) -> std::io::Result<Vec<u8>> {
    let mut w = zip::ZipWriter::new(Cursor::new(Vec::new()));
    for f in walk(dir, false)? {
        w.start_file(f.rel.as_str(), options(executable(&f.path)))
            .map_err(std::io::Error::other)?;
        w.write_all(&fs::read(&f.path)?)?;
    }
    Ok(w.finish().map_err(std::io::Error::other)?.into_inner())
}

/// One file as a deterministic zip holding just that file.
pub fn zip_file(path: &Path) -> std::io::Result<Vec<u8>> {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let mut w = zip::ZipWriter::new(Cursor::new(Vec::new()));
    w.start_file(name.as_str(), options(executable(path)))
        .map_err(std::io::Error::other)?;
    w.write_all(&fs::read(path)?)?;
    Ok(w.finish().map_err(std::io::Error::other)?.into_inner())
}

/// A content-addressed store in a directory: `<root>/<region>/<sha256>`, in bucket
/// `meridian-artifacts-<region>`. Honest and small: for tests and for `meridian` without an engine.
#[derive(Clone, Debug)]
pub struct DirStore {
    pub root: PathBuf,
}

impl PackageStore for DirStore {
    fn put(&self, region: &str, bytes: Vec<u8>) -> Result<StoredObject, StoreError> {
        let digest = sha256(&bytes);
        let dir = self.root.join(region);
        fs::create_dir_all(&dir)?;
        let path = dir.join(&digest);
        if !path.exists() {
            let tmp = dir.join(format!(".{digest}.tmp"));
            fs::write(&tmp, &bytes)?;
            fs::rename(&tmp, &path)?;
        }
        Ok(StoredObject {
            bucket: format!("meridian-artifacts-{region}"),
            key: digest,
        })
    }
}

/// Writes a JSON value as block-style YAML (strings quoted whenever a plain scalar could be read
/// as something else).
pub fn to_yaml(v: &Value) -> String {
    let mut out = String::new();
    match v {
        Value::Object(m) if !m.is_empty() => emit_map(m, 0, &mut out),
        Value::Array(a) if !a.is_empty() => emit_seq(a, 0, &mut out),
        other => {
            out.push_str(&scalar(other));
            out.push('\n');
        }
    }
    out
}

fn emit_map(m: &Map<String, Value>, indent: usize, out: &mut String) {
    for (i, (k, v)) in m.iter().enumerate() {
        // The first entry of a map inside a list item goes on the `- ` line.
        if i > 0 || !out.ends_with("- ") {
            out.push_str(&" ".repeat(indent));
        }
        out.push_str(&string(k));
        out.push(':');
        emit_value(v, indent, out);
    }
}

fn emit_seq(a: &[Value], indent: usize, out: &mut String) {
    for v in a {
        out.push_str(&" ".repeat(indent));
        out.push_str("- ");
        match v {
            Value::Object(m) if !m.is_empty() => emit_map(m, indent + 2, out),
            Value::Array(inner) if !inner.is_empty() => {
                out.push('\n');
                emit_seq(inner, indent + 2, out);
            }
            other => {
                out.push_str(&scalar(other));
                out.push('\n');
            }
        }
    }
}

fn emit_value(v: &Value, indent: usize, out: &mut String) {
    match v {
        Value::Object(m) if !m.is_empty() => {
            out.push('\n');
            emit_map(m, indent + 2, out);
        }
        Value::Array(a) if !a.is_empty() => {
            out.push('\n');
            emit_seq(a, indent + 2, out);
        }
        other => {
            out.push(' ');
            out.push_str(&scalar(other));
            out.push('\n');
        }
    }
}

fn scalar(v: &Value) -> String {
    match v {
        Value::Null => "null".into(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => n.to_string(),
        Value::String(s) => string(s),
        Value::Object(_) => "{}".into(),
        Value::Array(_) => "[]".into(),
    }
}

fn string(s: &str) -> String {
    const WORDS: &[&str] = &["true", "false", "yes", "no", "on", "off", "null", "y", "n", "~"];
    let plain = s
        .chars()
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '/' || c == '_')
        && s.chars().all(|c| c.is_ascii_alphanumeric() || "_./@=+-:".contains(c))
        && !s.ends_with(':')
        && !s.contains(": ")
        && !WORDS.contains(&s.to_ascii_lowercase().as_str());
    if plain {
        s.to_string()
    } else {
        serde_json::to_string(s).unwrap_or_else(|_| format!("{s:?}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn yaml_output_reads_back_as_the_same_json() {
        let v: Value = serde_json::json!({
            "AWSTemplateFormatVersion": "2010-09-09",
            "Resources": {"Fn": {"Type": "AWS::Serverless::Function", "Properties": {
                "Handler": "src/lambda.handler", "Timeout": 5, "Enabled": true, "Empty": {}, "None": null,
                "Env": {"Fn::Sub": "${AWS::Region}: x\nline two"}, "Yes": "yes", "Num": "0.2",
                "List": [{"A": 1, "B": [1, "two", {"C": "d"}]}, [], "x # not a comment"]
            }}}
        });
        let yaml = to_yaml(&v);
        let mut sources = Sources::default();
        let id = sources.add(SourceFile::new("t.yaml", None, yaml.clone()));
        let mut diags = Vec::new();
        let back = node::parse(id, sources.get(id), &mut diags).unwrap().to_json();
        assert!(diags.is_empty());
        assert_eq!(back, v, "{yaml}");
    }

    #[test]
    fn zips_are_deterministic() {
        let dir = std::env::temp_dir().join(format!("meridian-zip-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(dir.join("b")).unwrap();
        fs::write(dir.join("b/x.js"), "x").unwrap();
        fs::write(dir.join("a.js"), "a").unwrap();
        let first = zip_dir(&dir).unwrap();
        let old = std::time::SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(1_000_000);
        fs::File::options()
            .write(true)
            .open(dir.join("a.js"))
            .unwrap()
            .set_modified(old)
            .unwrap();
        assert_eq!(zip_dir(&dir).unwrap(), first, "timestamps do not change the bytes");
        let mut z = zip::ZipArchive::new(Cursor::new(first)).unwrap();
        assert_eq!(z.len(), 2);
        assert_eq!(z.by_index(0).unwrap().name(), "a.js");
        assert_eq!(z.by_index(1).unwrap().name(), "b/x.js");
        let _ = fs::remove_dir_all(&dir);
    }
}
