//! Local CloudFormation: stacks per region, change sets, rollback, exports, and the resources local
//! regions deploy (Lambda functions, versions, aliases, layers, SSM parameters, buckets, secrets,
//! HTTP APIs, which the endpoint serves from the rows here; alarms, CodeDeploy,
//! IAM and log groups are recorded). State lives in `<data>/local-stacks.sqlite` and every resource
//! transition is committed (with its event) before the next one starts, so an interrupted
//! deployment is always on record.

use crate::host::{ConfigUpdate, LambdaHost};
use crate::model::{CodeSource, FunctionSpec};
use futures::future::BoxFuture;
use meridian_core::{RegionId, LOCAL_ACCOUNT_ID};
pub use meridian_region::stacks::{AliasDeployment, AliasShifter};
use meridian_region::stacks::{
    DeliveryOptions, LiveFunction, Progress, StackDeployer, StackInfo, StackOutcome, StackRequest,
};
use meridian_region::{RegionError, Say};
use meridian_template::eval::{resolve_parameters, Evaluator, Parameters, Pseudo, Resolver};
use meridian_template::plan::{self, Change, ChangeAction, Deployed, Replacement};
use meridian_template::sam::SamOptions;
use meridian_template::Template;
use rusqlite::{params, Connection, OptionalExtension};
use serde_json::{json, Value};
use std::cell::RefCell;
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

/// Resource types local regions deploy for real.
pub const DEPLOYED_TYPES: &[&str] = &[
    "AWS::Lambda::Function",
    "AWS::Lambda::Version",
    "AWS::Lambda::Alias",
    "AWS::Lambda::LayerVersion",
    "AWS::SSM::Parameter",
    "AWS::S3::Bucket",
    // HTTP APIs, served on the local endpoint (`crate::apigw`, `endpoint/apigw.rs`) from what
    // their stack deployed.
    "AWS::ApiGatewayV2::Api",
    "AWS::ApiGatewayV2::Route",
    "AWS::ApiGatewayV2::Integration",
    "AWS::ApiGatewayV2::Stage",
    "AWS::ApiGatewayV2::Deployment",
    // Macros backed by the region's functions: templates of the region can name them.
    "AWS::CloudFormation::Macro",
    // REST APIs, served on the local endpoint too (`crate::rest_api`).
    "AWS::ApiGateway::RestApi",
    "AWS::ApiGateway::Resource",
    "AWS::ApiGateway::Method",
    "AWS::ApiGateway::Deployment",
    "AWS::ApiGateway::Stage",
];

/// Resource types local regions record (they configure other parts, or are not enforced).
pub const RECORDED_TYPES: &[&str] = &[
    "AWS::Lambda::Permission",
    "AWS::CloudWatch::Alarm",
    "AWS::CodeDeploy::Application",
    "AWS::CodeDeploy::DeploymentGroup",
    "AWS::CodeDeploy::DeploymentConfig",
    "AWS::IAM::Role",
    "AWS::IAM::Policy",
    "AWS::IAM::ManagedPolicy",
    "AWS::Logs::LogGroup",
    // Recorded with the physical ids and attributes AWS gives them, so that `Ref` and
    // `Fn::GetAtt` resolve; local regions do not run rules, keys, queues, topics or tables yet.
    "AWS::Events::Rule",
    "AWS::KMS::Key",
    "AWS::KMS::Alias",
    "AWS::SecretsManager::Secret",
    "AWS::SecretsManager::ResourcePolicy",
    "AWS::SQS::Queue",
    "AWS::SNS::Topic",
    "AWS::DynamoDB::Table",
    // Resource policies: local regions enforce no IAM, so they are recorded (as IAM policies are).
    "AWS::S3::BucketPolicy",
    "AWS::SQS::QueuePolicy",
    "AWS::SNS::TopicPolicy",
];

#[derive(Clone)]
pub struct LocalStacks {
    inner: Arc<Inner>,
    /// Where local buckets live (`<root>/s3/<bucket>`): the data directory, or a run's `--artifact-root`.
    root: PathBuf,
}

struct Inner {
    db: Mutex<Connection>,
    host: LambdaHost,
    data_dir: PathBuf,
    shifter: Mutex<Option<Arc<dyn AliasShifter>>>,
    /// Fault injection for crash tests: `MERIDIAN_FAULT_KILL_AFTER_STACK_EVENTS=N` makes the
    /// process SIGKILL itself right after its N-th stack event is committed.
    kill_after_events: Option<u64>,
    events_written: std::sync::atomic::AtomicU64,
}

/// What an operation in progress on a stack is (CloudFormation's CREATE, UPDATE, DELETE).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum OpKind {
    Create,
    Update,
    Delete,
}

impl OpKind {
    fn name(self) -> &'static str {
        match self {
            OpKind::Create => "CREATE",
            OpKind::Update => "UPDATE",
            OpKind::Delete => "DELETE",
        }
    }

    fn parse(s: &str) -> OpKind {
        match s {
            "CREATE" => OpKind::Create,
            "DELETE" => OpKind::Delete,
            _ => OpKind::Update,
        }
    }

    fn progress(self) -> &'static str {
        match self {
            OpKind::Create => "CREATE_IN_PROGRESS",
            OpKind::Update => "UPDATE_IN_PROGRESS",
            OpKind::Delete => "DELETE_IN_PROGRESS",
        }
    }
}

/// An operation on a stack whose process may have died: the row of `stack_ops` written in the
/// same transaction as the stack's `*_IN_PROGRESS` status, with what recovery needs to undo it
/// (the resources as they were) or to finish it (the resources its cleanup deletes).
struct Operation {
    region: String,
    name: String,
    stack_id: String,
    kind: OpKind,
    phase: String,
    owner_pid: Option<i64>,
    owner_start: Option<i64>,
    before: BTreeMap<String, Row>,
    cleanup: Vec<Row>,
}

/// This process, as an operation's owner (pid and start time, so a reused pid is not taken for it).
fn me() -> (i64, i64) {
    let pid = std::process::id();
    let start = meridian_engine::journal::process_start_time(pid).unwrap_or(0);
    (pid as i64, start as i64)
}

/// CloudFormation's quota on a template (read from S3; 51,200 bytes when sent inline): a larger
/// one is refused before anything is read further, as AWS would refuse it.
pub const MAX_TEMPLATE_BYTES: u64 = 1_048_576;

const INTERRUPTED: &str =
    "The process running this operation ended before it finished; rolled back when Meridian next opened the stacks";

#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
struct Row {
    deployed: Deployed,
    status: String,
    placeholder: bool,
    retain: bool,
    update_policy: Option<Value>,
}

impl Row {
    /// A resource's row as the template declares it, once created or updated.
    fn of(
        r: &meridian_template::Resource,
        physical_id: String,
        properties: Value,
        attributes: BTreeMap<String, Value>,
        status: &str,
        placeholder: bool,
    ) -> Row {
        Row {
            deployed: Deployed {
                logical_id: r.logical_id.clone(),
                type_: r.type_.clone(),
                physical_id,
                properties,
                attributes,
            },
            status: status.to_string(),
            placeholder,
            retain: r.deletion_policy.as_deref() == Some("Retain"),
            update_policy: r.update_policy.clone(),
        }
    }
}

struct StackRow {
    id: String,
    status: String,
    template: String,
    params: BTreeMap<String, String>,
    shown: BTreeMap<String, String>,
    outputs: BTreeMap<String, String>,
    created: i64,
    updated: Option<i64>,
    reason: Option<String>,
}

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

fn iso(ms: i64) -> String {
    crate::model::iso8601(ms)
}

fn random_suffix() -> String {
    meridian_core::random::alphanumeric(8)
}

/// Attributes that are all strings.
fn strings(attrs: &[(&str, String)]) -> BTreeMap<String, Value> {
    attrs
        .iter()
        .map(|(k, v)| (k.to_string(), Value::String(v.clone())))
        .collect()
}

fn bool_prop(props: &Value, key: &str) -> bool {
    matches!(props.get(key), Some(Value::Bool(true))) || props.get(key).and_then(Value::as_str) == Some("true")
}

/// An id shaped like a KMS key id (a random UUID).
fn uuid_like() -> String {
    let mut b = [0u8; 16];
    meridian_core::random::fill(&mut b);
    let hex = hex_of(&b);
    format!(
        "{}-{}-{}-{}-{}",
        &hex[..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..32]
    )
}

fn hex_of(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The label of a DynamoDB stream: the time it was enabled, as AWS writes it.
fn stream_label() -> String {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis())
        .unwrap_or(0);
    format!("{secs}")
}

/// The name of a secret from its ARN (`...:secret:NAME-XXXXXX`).
fn secret_name_of(arn: &str) -> String {
    let name = arn.split_once(":secret:").map_or(arn, |(_, n)| n);
    match name.rsplit_once('-') {
        Some((base, suffix)) if suffix.len() == 6 => base.to_string(),
        _ => name.to_string(),
    }
}

/// A value as Secrets Manager's `GenerateSecretString` makes one: a random password
/// (`PasswordLength`, 32 by default, of the character classes not excluded, one of each at least),
/// put under `GenerateStringKey` in `SecretStringTemplate` when both are given.
fn generate_secret(g: &Value) -> Result<String, String> {
    let flag = |k: &str| bool_prop(g, k);
    let length = g
        .get("PasswordLength")
        .and_then(|v| v.as_u64().or_else(|| v.as_str().and_then(|s| s.parse().ok())))
        .unwrap_or(32) as usize;
    if !(1..=4096).contains(&length) {
        return Err(format!(
            "GenerateSecretString: PasswordLength must be 1 to 4096, found {length}"
        ));
    }
    let excluded = g.get("ExcludeCharacters").and_then(Value::as_str).unwrap_or("");
    let mut classes: Vec<Vec<char>> = Vec::new();
    let mut class = |skip: bool, chars: &str| {
        if !skip {
            let set: Vec<char> = chars.chars().filter(|c| !excluded.contains(*c)).collect();
            if !set.is_empty() {
                classes.push(set);
            }
        }
    };
    class(flag("ExcludeUppercase"), "ABCDEFGHIJKLMNOPQRSTUVWXYZ");
    class(flag("ExcludeLowercase"), "abcdefghijklmnopqrstuvwxyz");
    class(flag("ExcludeNumbers"), "0123456789");
    class(flag("ExcludePunctuation"), "!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~");
    class(!flag("IncludeSpace"), " ");
    let all: Vec<char> = classes.iter().flatten().copied().collect();
    if all.is_empty() {
        return Err("GenerateSecretString excludes every character".into());
    }
    let require_each = g.get("RequireEachIncludedType").is_none() || flag("RequireEachIncludedType");
    let pick = |set: &[char]| {
        let mut b = [0u8; 4];
        meridian_core::random::fill(&mut b);
        set[u32::from_le_bytes(b) as usize % set.len()]
    };
    let mut password: String;
    let mut tries = 0;
    loop {
        password = (0..length).map(|_| pick(&all)).collect();
        tries += 1;
        let complete = classes.iter().all(|c| password.chars().any(|p| c.contains(&p)));
        if !require_each || complete || length < classes.len() || tries > 1000 {
            break;
        }
    }
    match (
        g.get("SecretStringTemplate").and_then(Value::as_str),
        g.get("GenerateStringKey").and_then(Value::as_str),
    ) {
        (Some(template), Some(key)) => {
            let mut doc: serde_json::Map<String, Value> = serde_json::from_str(template)
                .map_err(|e| format!("GenerateSecretString: SecretStringTemplate is not a JSON object: {e}"))?;
            doc.insert(key.to_string(), Value::String(password));
            Ok(Value::Object(doc).to_string())
        }
        (None, None) => Ok(password),
        _ => Err("GenerateSecretString: SecretStringTemplate and GenerateStringKey go together".into()),
    }
}

/// S3's rules for bucket names (the ones a local directory can break or S3 refuses).
fn check_bucket_name(name: &str) -> Result<(), String> {
    if meridian_core::path::is_bucket_name(name) {
        Ok(())
    } else {
        Err(format!(
            "Bucket name should not contain uppercase characters, and must be 3 to 63 lowercase letters, digits, dots or hyphens, starting and ending with a letter or digit: `{name}`"
        ))
    }
}

/// A physical name as CloudFormation generates it: `<stack>-<LogicalId>-<RANDOM>`, cut to `max`.
fn generated_name(stack: &str, logical: &str, max: usize) -> String {
    let suffix = random_suffix();
    let mut head = format!("{stack}-{logical}");
    let room = max.saturating_sub(suffix.len() + 1);
    head.truncate(room);
    format!("{head}-{suffix}")
}

fn function_name_of(v: &str) -> String {
    match v.split_once(":function:") {
        Some((_, rest)) => rest.split(':').next().unwrap_or(rest).to_string(),
        None => v.split(':').next().unwrap_or(v).to_string(),
    }
}

fn str_prop<'a>(props: &'a Value, key: &str) -> Option<&'a str> {
    props.get(key).and_then(Value::as_str)
}

fn num_prop(props: &Value, key: &str) -> Option<u32> {
    match props.get(key)? {
        Value::Number(n) => n.as_u64().map(|n| n as u32),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

/// A function's configuration as its properties give it (AWS's defaults for what they leave out).
fn function_config(props: &Value) -> ConfigUpdate {
    ConfigUpdate {
        runtime: str_prop(props, "Runtime").map(String::from),
        handler: str_prop(props, "Handler").map(String::from),
        memory_size: Some(num_prop(props, "MemorySize").unwrap_or(128)),
        timeout: Some(num_prop(props, "Timeout").unwrap_or(3)),
        environment: Some(env_prop(props)),
        description: Some(str_prop(props, "Description").unwrap_or_default().to_string()),
    }
}

fn env_prop(props: &Value) -> BTreeMap<String, String> {
    props
        .get("Environment")
        .and_then(|e| e.get("Variables"))
        .and_then(Value::as_object)
        .map(|m| {
            m.iter()
                .map(|(k, v)| (k.clone(), v.as_str().map(String::from).unwrap_or_else(|| v.to_string())))
                .collect()
        })
        .unwrap_or_default()
}

struct StackResolver<'a> {
    current: &'a RefCell<BTreeMap<String, Row>>,
    exports: BTreeMap<String, String>,
    imported: RefCell<BTreeSet<String>>,
    /// The stacks of every region, for Fn::GetStackOutput.
    stacks: &'a LocalStacks,
}

impl Resolver for StackResolver<'_> {
    fn physical_id(&self, id: &str) -> Option<Value> {
        self.current
            .borrow()
            .get(id)
            .map(|r| Value::String(r.deployed.physical_id.clone()))
    }
    fn attribute(&self, id: &str, attr: &str) -> Option<Value> {
        let cur = self.current.borrow();
        let r = cur.get(id)?;
        if r.placeholder {
            return Some(Value::String(format!("{{{{placeholder:{id}.{attr}}}}}")));
        }
        r.deployed.attributes.get(attr).cloned()
    }
    fn import(&self, name: &str) -> Option<String> {
        self.imported.borrow_mut().insert(name.to_string());
        self.exports.get(name).cloned()
    }
    fn stack_output(&self, region: &str, stack: &str, output: &str) -> Option<String> {
        let row = self.stacks.stack_row(region, stack).ok().flatten()?;
        row.outputs.get(output).cloned()
    }
}

/// What a change set or a direct deployment was made from.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
struct Prepared {
    file: String,
    template_text: String,
    params: BTreeMap<String, String>,
    capabilities: Vec<String>,
    allow_unsupported: bool,
    publish_on_config_change: bool,
    #[serde(default)]
    artifact_root: Option<PathBuf>,
    /// The user's template (name and text) when `template_text` is a packaged copy of it.
    #[serde(default)]
    source: Option<(String, String)>,
    #[serde(default)]
    delivery: DeliveryOptions,
    /// Made against a stack that did not exist yet (ChangeSetType CREATE): executing it once the
    /// stack exists is refused.
    #[serde(default)]
    create: bool,
    /// The operation's stack tags (none: the stack keeps its tags, as CloudFormation does).
    #[serde(default)]
    tags: BTreeMap<String, String>,
}

impl LocalStacks {
    pub fn open(data_dir: &Path, artifact_root: &Path, host: LambdaHost) -> Result<LocalStacks, String> {
        std::fs::create_dir_all(data_dir).map_err(|e| format!("cannot create {}: {e}", data_dir.display()))?;
        let path = data_dir.join("local-stacks.sqlite");
        let db = meridian_engine::journal::open_store(
            &path,
            std::time::Duration::from_secs(30),
            "CREATE TABLE IF NOT EXISTS stack_tags (region TEXT, name TEXT, tags TEXT, PRIMARY KEY (region, name));
             CREATE TABLE IF NOT EXISTS stacks (region TEXT, name TEXT, stack_id TEXT, status TEXT, reason TEXT,
                 template TEXT, params TEXT, shown TEXT, outputs TEXT, created INTEGER, updated INTEGER,
                 PRIMARY KEY (region, name));
             CREATE TABLE IF NOT EXISTS resources (stack_id TEXT, logical_id TEXT, type TEXT, physical_id TEXT,
                 status TEXT, properties TEXT, attributes TEXT, placeholder INTEGER, retain INTEGER, update_policy TEXT,
                 PRIMARY KEY (stack_id, logical_id));
             CREATE TABLE IF NOT EXISTS events (seq INTEGER PRIMARY KEY AUTOINCREMENT, stack_id TEXT, at INTEGER,
                 logical_id TEXT, physical_id TEXT, type TEXT, status TEXT, reason TEXT);
             CREATE TABLE IF NOT EXISTS exports (region TEXT, name TEXT, value TEXT, stack_id TEXT, PRIMARY KEY (region, name));
             CREATE TABLE IF NOT EXISTS imports (region TEXT, name TEXT, stack_id TEXT, PRIMARY KEY (region, name, stack_id));
             CREATE TABLE IF NOT EXISTS change_sets (region TEXT, stack TEXT, name TEXT, id TEXT, status TEXT,
                 execution_status TEXT, reason TEXT, prepared TEXT, changes TEXT, created INTEGER,
                 PRIMARY KEY (region, stack, name));
             CREATE TABLE IF NOT EXISTS stack_ops (region TEXT, name TEXT, stack_id TEXT, kind TEXT, phase TEXT,
                 owner_pid INTEGER, owner_start INTEGER, before TEXT, cleanup TEXT, cancel INTEGER NOT NULL DEFAULT 0,
                 recovering INTEGER NOT NULL DEFAULT 0, started INTEGER, PRIMARY KEY (region, name));",
            "the local regions' stacks, their resources and events are then forgotten (functions stay in local-lambda.sqlite)",
        )?;
        Ok(LocalStacks {
            inner: Arc::new(Inner {
                db: Mutex::new(db),
                host,
                data_dir: data_dir.to_path_buf(),
                shifter: Mutex::new(None),
                kill_after_events: std::env::var("MERIDIAN_FAULT_KILL_AFTER_STACK_EVENTS")
                    .ok()
                    .and_then(|v| v.parse().ok()),
                events_written: std::sync::atomic::AtomicU64::new(0),
            }),
            root: artifact_root.to_path_buf(),
        })
    }

    /// Aliases under a CodeDeploy deployment group are moved by this shifter (progressive delivery);
    /// without one they move at once.
    pub fn set_shifter(&self, s: Arc<dyn AliasShifter>) {
        *self.inner.shifter.lock().expect("shifter lock") = Some(s);
    }

    /// The same stacks, reading code from buckets under another root.
    pub fn rooted(&self, root: Option<&Path>) -> LocalStacks {
        LocalStacks {
            inner: self.inner.clone(),
            root: root.map(Path::to_path_buf).unwrap_or_else(|| self.root.clone()),
        }
    }

    pub fn host(&self) -> &LambdaHost {
        &self.inner.host
    }

    fn db<T>(&self, f: impl FnOnce(&Connection) -> rusqlite::Result<T>) -> Result<T, String> {
        let c = self
            .inner
            .db
            .lock()
            .map_err(|_| "the stack store lock is poisoned".to_string())?;
        f(&c).map_err(|e| format!("local stack store: {e}"))
    }

    fn stack_row(&self, region: &str, name: &str) -> Result<Option<StackRow>, String> {
        self.db(|c| {
            c.query_row(
                "SELECT stack_id, status, template, params, shown, outputs, created, updated, reason FROM stacks WHERE region=?1 AND name=?2",
                params![region, name],
                |r| {
                    let j = |i: usize| -> rusqlite::Result<BTreeMap<String, String>> {
                        let s: Option<String> = r.get(i)?;
                        Ok(s.and_then(|s| serde_json::from_str(&s).ok()).unwrap_or_default())
                    };
                    Ok(StackRow {
                        id: r.get(0)?,
                        status: r.get(1)?,
                        template: r.get::<_, Option<String>>(2)?.unwrap_or_default(),
                        params: j(3)?,
                        shown: j(4)?,
                        outputs: j(5)?,
                        created: r.get(6)?,
                        updated: r.get(7)?,
                        reason: r.get(8)?,
                    })
                },
            )
            .optional()
        })
    }

    fn info(&self, region: &str, name: &str, s: &StackRow) -> StackInfo {
        StackInfo {
            stack_name: name.to_string(),
            stack_id: s.id.clone(),
            region: region.to_string(),
            stack_status: s.status.clone(),
            stack_status_reason: s.reason.clone(),
            parameters: s.shown.clone(),
            outputs: s.outputs.clone(),
            tags: self
                .db(|c| {
                    c.query_row(
                        "SELECT tags FROM stack_tags WHERE region=?1 AND name=?2",
                        params![region, name],
                        |r| r.get::<_, String>(0),
                    )
                    .optional()
                })
                .ok()
                .flatten()
                .and_then(|t| serde_json::from_str(&t).ok())
                .unwrap_or_default(),
            creation_time: iso(s.created),
            last_updated_time: s.updated.map(iso),
        }
    }

    fn rows(&self, stack_id: &str) -> Result<BTreeMap<String, Row>, String> {
        self.db(|c| read_rows(c, stack_id))
    }

    fn save_row(&self, stack_id: &str, r: &Row) -> Result<(), String> {
        self.db(|c| {
            c.execute(
                "INSERT OR REPLACE INTO resources VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
                params![
                    stack_id,
                    r.deployed.logical_id,
                    r.deployed.type_,
                    r.deployed.physical_id,
                    r.status,
                    r.deployed.properties.to_string(),
                    serde_json::to_string(&r.deployed.attributes).unwrap_or_default(),
                    r.placeholder as i64,
                    r.retain as i64,
                    r.update_policy.as_ref().map(|v| v.to_string()),
                ],
            )
            .map(|_| ())
        })
    }

    fn drop_row(&self, stack_id: &str, logical: &str) -> Result<(), String> {
        self.db(|c| {
            c.execute(
                "DELETE FROM resources WHERE stack_id=?1 AND logical_id=?2",
                params![stack_id, logical],
            )
            .map(|_| ())
        })
    }

    #[allow(clippy::too_many_arguments)]
    fn event(
        &self,
        stack_id: &str,
        logical: &str,
        physical: &str,
        type_: &str,
        status: &str,
        reason: Option<&str>,
        log: &dyn Fn(&str),
    ) -> Result<(), String> {
        log_event(log, status, type_, logical, reason);
        self.db(|c| insert_event(c, stack_id, logical, physical, type_, status, reason))?;
        self.event_written();
        Ok(())
    }

    /// Counts a committed stack event, for `MERIDIAN_FAULT_KILL_AFTER_STACK_EVENTS`.
    fn event_written(&self) {
        let n = self
            .inner
            .events_written
            .fetch_add(1, std::sync::atomic::Ordering::SeqCst)
            + 1;
        if self.inner.kill_after_events == Some(n) {
            // SAFETY: kill(2) on our own pid has no memory-safety preconditions.
            unsafe {
                libc::kill(libc::getpid(), libc::SIGKILL);
            }
        }
    }

    fn set_status(
        &self,
        region: &str,
        name: &str,
        id: &str,
        status: &str,
        reason: Option<&str>,
        log: &dyn Fn(&str),
    ) -> Result<(), String> {
        self.db(|c| update_status(c, region, name, status, reason))?;
        self.event(id, name, id, "AWS::CloudFormation::Stack", status, reason, log)
    }

    fn exports_of_region(&self, region: &str) -> Result<BTreeMap<String, (String, String)>, String> {
        self.db(|c| {
            let mut st = c.prepare("SELECT name, value, stack_id FROM exports WHERE region=?1")?;
            let rows = st
                .query_map([region], |r| Ok((r.get::<_, String>(0)?, (r.get(1)?, r.get(2)?))))?
                .collect::<rusqlite::Result<BTreeMap<_, _>>>()?;
            Ok(rows)
        })
    }

    fn importers(&self, region: &str, export: &str) -> Result<Vec<String>, String> {
        self.db(|c| {
            let mut st = c.prepare(
                "SELECT s.name FROM imports i JOIN stacks s ON s.stack_id = i.stack_id WHERE i.region=?1 AND i.name=?2",
            )?;
            let rows = st
                .query_map(params![region, export], |r| r.get(0))?
                .collect::<rusqlite::Result<Vec<String>>>()?;
            Ok(rows)
        })
    }

    fn read_template(&self, p: &Prepared, region: &str) -> Result<Template, String> {
        let mut opts = SamOptions {
            region: region.to_string(),
            account_id: LOCAL_ACCOUNT_ID.to_string(),
            publish_on_config_change: p.publish_on_config_change,
            snippets: Some(std::sync::Arc::new(crate::buckets::LocalSnippets {
                root: self.root.clone(),
            })),
            macros: Some(std::sync::Arc::new(LocalMacros {
                functions: self.macros_of_region(region)?,
                host: self.inner.host.clone(),
                region: region.to_string(),
            })),
            ..SamOptions::default()
        };
        for (k, v) in &p.params {
            opts.parameter_values.insert(k.clone(), Value::String(v.clone()));
        }
        let mut t = Template::parse(&p.file, &p.template_text, &opts).map_err(|e| match &p.source {
            Some((name, _)) => e.to_string().replacen(&p.file, name, 1),
            None => e.to_string(),
        })?;
        if let Some((name, text)) = &p.source {
            t.relabel(name, text);
        }
        Ok(t)
    }

    fn ssm_lookup(&self, region: &str) -> impl Fn(&str) -> Option<String> {
        let store = meridian_buildspec::secrets::SecretStore::open(&self.inner.data_dir).ok();
        let region = region.to_string();
        move |name: &str| {
            store.as_ref().and_then(|s| {
                s.get(&region, meridian_buildspec::secrets::Kind::Parameter, name)
                    .ok()
                    .flatten()
            })
        }
    }

    /// Checks capabilities as CloudFormation does, with its error text.
    fn check_capabilities(&self, t: &Template, p: &Prepared, direct: bool) -> Result<(), String> {
        let has = |c: &str| p.capabilities.iter().any(|x| x == c);
        if direct && meridian_template::sam::is_sam(&t.original) && !has("CAPABILITY_AUTO_EXPAND") {
            return Err("Requires capabilities : [CAPABILITY_AUTO_EXPAND]".into());
        }
        let mut needs_iam = false;
        let mut needs_named = false;
        for r in t.resources() {
            if r.type_.starts_with("AWS::IAM::") {
                needs_iam = true;
                for k in [
                    "RoleName",
                    "ManagedPolicyName",
                    "UserName",
                    "GroupName",
                    "InstanceProfileName",
                ] {
                    if r.properties.get(k).is_some() {
                        needs_named = true;
                    }
                }
            }
        }
        if needs_named && !has("CAPABILITY_NAMED_IAM") {
            return Err("Requires capabilities : [CAPABILITY_NAMED_IAM]".into());
        }
        if needs_iam && !has("CAPABILITY_IAM") && !has("CAPABILITY_NAMED_IAM") {
            return Err("Requires capabilities : [CAPABILITY_IAM]".into());
        }
        Ok(())
    }

    /// Plans a change: the template, its parameters and the changes against what is deployed.
    fn plan(
        &self,
        region: &str,
        name: &str,
        p: &Prepared,
        direct: bool,
    ) -> Result<(Template, Parameters, Vec<Change>), String> {
        RegionId::new(region).map_err(|e| e.to_string())?;
        let t = self.read_template(p, region)?;
        self.check_capabilities(&t, p, direct)?;
        let params = resolve_parameters(&t, &p.params, &self.ssm_lookup(region)).map_err(|e| e.to_string())?;
        let existing = self.stack_row(region, name)?;
        let deployed: BTreeMap<String, Deployed> = match &existing {
            Some(s) => self.rows(&s.id)?.into_iter().map(|(k, r)| (k, r.deployed)).collect(),
            None => BTreeMap::new(),
        };
        let stack_id = existing
            .as_ref()
            .map(|s| s.id.clone())
            .unwrap_or_else(|| meridian_template::eval::pending("AWS::StackId", None));
        let pseudo = Pseudo::new(region, LOCAL_ACCOUNT_ID, name, &stack_id);
        let exports: BTreeMap<String, String> = self
            .exports_of_region(region)?
            .into_iter()
            .map(|(k, (v, _))| (k, v))
            .collect();
        let changes =
            plan::plan(&t, &params, &pseudo, &deployed, &|n| exports.get(n).cloned()).map_err(|e| e.to_string())?;
        // Unsupported types are refused when the change set is made, naming resource, type and line.
        if !p.allow_unsupported {
            for c in &changes {
                if c.action != ChangeAction::Remove && !is_supported(&c.resource_type) {
                    let line = t
                        .line_of(&c.logical_resource_id)
                        .map(|l| format!(":{l}"))
                        .unwrap_or_default();
                    // A module (`Org::Service::Name::MODULE`) is a registry type of an account:
                    // CloudFormation expands it into its resources, which local regions cannot fetch.
                    if c.resource_type.ends_with("::MODULE") {
                        return Err(format!(
                            "{}{line}: resource `{}` is the CloudFormation module {}: modules are registered in an AWS account and expanded there, and local regions cannot fetch them; write the module's resources into the template, or deploy to AWS (backend: aws)",
                            t.file, c.logical_resource_id, c.resource_type
                        ));
                    }
                    return Err(format!(
                        "{}{line}: resource `{}` has type {}, which local regions do not deploy (supported: {}); \
                         pass --allow-unsupported (or record them as placeholders) to record it as an inert placeholder",
                        t.file,
                        c.logical_resource_id,
                        c.resource_type,
                        DEPLOYED_TYPES.iter().chain(RECORDED_TYPES).copied().collect::<Vec<_>>().join(", ")
                    ));
                }
            }
        }
        Ok((t, params, changes))
    }

    fn prepared(req: &StackRequest) -> Result<Prepared, String> {
        use meridian_pipeline::source::{read_text, ReadError};
        let shown = req.template_path.display();
        let text = read_text(&req.template_path, MAX_TEMPLATE_BYTES).map_err(|e| match e {
            ReadError::TooLarge { size, limit } => format!(
                "the template {shown} is {}, over CloudFormation's limit of {limit} bytes for a template (from S3; 51,200 sent inline): AWS would refuse it. Split it into nested stacks (AWS::CloudFormation::Stack), or move large inline code and data out of it",
                size.map(|s| format!("{s} bytes")).unwrap_or_else(|| format!("more than {limit} bytes"))
            ),
            ReadError::NotText { offset, .. } => {
                format!("the template {shown} is not UTF-8 text (at byte {offset}): check that this is the template")
            }
            ReadError::Io(e) => format!("cannot read the template {shown}: {e}"),
        })?;
        Ok(Prepared {
            file: req.template_path.display().to_string(),
            template_text: text,
            params: req.parameters.clone(),
            capabilities: req.capabilities.clone(),
            allow_unsupported: req.allow_unsupported,
            publish_on_config_change: req.publish_on_config_change,
            artifact_root: req.artifact_root.clone(),
            source: req.source_template.as_ref().and_then(|p| {
                read_text(p, meridian_pipeline::source::MAX_INPUT_BYTES)
                    .ok()
                    .map(|t| (p.display().to_string(), t))
            }),
            delivery: req.delivery.clone(),
            create: false,
            tags: req.tags.clone(),
        })
    }

    fn ensure_stack(&self, region: &str, name: &str, status: &str) -> Result<String, String> {
        if let Some(s) = self.stack_row(region, name)? {
            return Ok(s.id);
        }
        let id = format!(
            "arn:aws:cloudformation:{region}:{LOCAL_ACCOUNT_ID}:stack/{name}/{}",
            random_suffix().to_lowercase()
        );
        // Another process may create it at the same moment: the first row stays.
        self.db(|c| {
            let made = c.execute(
                "INSERT OR IGNORE INTO stacks (region, name, stack_id, status, created) VALUES (?1, ?2, ?3, ?4, ?5)",
                params![region, name, id, status, now()],
            )?;
            // A stack made for a change set has its first event, as on AWS (clients read the
            // newest event's time before executing).
            if made == 1 && status == "REVIEW_IN_PROGRESS" {
                insert_event(
                    c,
                    &id,
                    name,
                    &id,
                    "AWS::CloudFormation::Stack",
                    status,
                    Some("User Initiated"),
                )?;
            }
            Ok(())
        })?;
        self.stack_row(region, name)?
            .map(|s| s.id)
            .ok_or_else(|| no_stack(name, region))
    }

    fn check_updatable(&self, region: &str, name: &str, log: &dyn Fn(&str)) -> Result<Option<StackRow>, String> {
        let mut s = self.stack_row(region, name)?;
        if s.as_ref().is_some_and(|s| s.status.ends_with("_IN_PROGRESS")) {
            // An operation whose process has ended is undone (or finished) first.
            self.recover_stack(region, name, log)?;
            self.wait_for_recovery(region, name)?;
            s = self.stack_row(region, name)?;
        }
        if let Some(s) = &s {
            if s.status.ends_with("_IN_PROGRESS") && s.status != "REVIEW_IN_PROGRESS" {
                return Err(format!(
                    "Stack:{} is in {} state and can not be updated.",
                    s.id, s.status
                ));
            }
            if matches!(
                s.status.as_str(),
                "ROLLBACK_COMPLETE" | "ROLLBACK_FAILED" | "DELETE_FAILED"
            ) {
                return Err(format!(
                    "Stack:{} is in {} state and can not be updated. (delete it first, or deploy with ActionMode REPLACE_ON_FAILURE)",
                    s.id, s.status
                ));
            }
        }
        Ok(s)
    }

    // ---- operations: one at a time per stack, undone or finished after a crash ----------------

    /// Runs `f` in one IMMEDIATE transaction: other processes wait on SQLite's write lock, so what
    /// `f` reads is still true when it writes.
    fn tx<T>(&self, f: impl FnOnce(&Connection) -> Result<T, String>) -> Result<T, String> {
        let c = self
            .inner
            .db
            .lock()
            .map_err(|_| "the stack store lock is poisoned".to_string())?;
        c.execute_batch("BEGIN IMMEDIATE")
            .map_err(|e| format!("local stack store: {e}"))?;
        let out = f(&c).and_then(|v| {
            c.execute_batch("COMMIT")
                .map(|_| v)
                .map_err(|e| format!("local stack store: {e}"))
        });
        if out.is_err() {
            let _ = c.execute_batch("ROLLBACK");
        }
        out
    }

    /// Starts an operation on a stack, atomically across processes. The stack must still be as it
    /// was when the operation was planned (`seen`: its status then, `None` when it did not exist)
    /// and no other operation may be running on it; CloudFormation's errors otherwise. The
    /// resources as they are now are recorded with the stack's new `*_IN_PROGRESS` status, so that
    /// a crash from here on is undone by [`LocalStacks::recover_interrupted`]. Returns the stack's
    /// id and those resources.
    fn begin_op(
        &self,
        region: &str,
        name: &str,
        kind: OpKind,
        seen: Option<&str>,
        log: &dyn Fn(&str),
    ) -> Result<(String, BTreeMap<String, Row>), String> {
        let (pid, start) = me();
        let progress = kind.progress();
        let db = |e: rusqlite::Error| format!("local stack store: {e}");
        let (id, before) = self.tx(|c| {
            let cur: Option<(String, String)> = c
                .query_row(
                    "SELECT stack_id, status FROM stacks WHERE region=?1 AND name=?2",
                    params![region, name],
                    |r| Ok((r.get(0)?, r.get(1)?)),
                )
                .optional()
                .map_err(db)?;
            let id = match (cur, seen) {
                (Some((id, st)), _) if st.ends_with("_IN_PROGRESS") && st != "REVIEW_IN_PROGRESS" => {
                    let verb = if kind == OpKind::Delete { "deleted" } else { "updated" };
                    return Err(format!("Stack:{id} is in {st} state and can not be {verb}."));
                }
                // A create that another process won.
                (Some((_, st)), _) if kind == OpKind::Create && st != "REVIEW_IN_PROGRESS" => {
                    return Err(format!("Stack [{name}] already exists"));
                }
                (Some((id, st)), Some(seen)) if st != seen => {
                    return Err(format!(
                        "Stack:{id} became {st} while this operation was being prepared (another process changed it); run it again"
                    ));
                }
                (None, Some(_)) => {
                    return Err(format!(
                        "stack {name} in {region} was deleted while this operation was being prepared; run it again"
                    ));
                }
                (Some((id, _)), _) => {
                    update_status(c, region, name, progress, None).map_err(db)?;
                    id
                }
                (None, None) => {
                    let id = format!(
                        "arn:aws:cloudformation:{region}:{LOCAL_ACCOUNT_ID}:stack/{name}/{}",
                        random_suffix().to_lowercase()
                    );
                    c.execute(
                        "INSERT INTO stacks (region, name, stack_id, status, created) VALUES (?1, ?2, ?3, ?4, ?5)",
                        params![region, name, id, progress, now()],
                    )
                    .map_err(db)?;
                    id
                }
            };
            let before = read_rows(c, &id).map_err(db)?;
            c.execute(
                "INSERT OR REPLACE INTO stack_ops (region, name, stack_id, kind, phase, owner_pid, owner_start, before, cleanup, cancel, started)
                 VALUES (?1, ?2, ?3, ?4, 'apply', ?5, ?6, ?7, '[]', 0, ?8)",
                params![
                    region,
                    name,
                    id,
                    kind.name(),
                    pid,
                    start,
                    serde_json::to_string(&before).map_err(|e| e.to_string())?,
                    now()
                ],
            )
            .map_err(db)?;
            insert_event(c, &id, name, &id, "AWS::CloudFormation::Stack", progress, None).map_err(db)?;
            Ok((id, before))
        })?;
        log_event(log, progress, "AWS::CloudFormation::Stack", name, None);
        self.event_written();
        Ok((id, before))
    }

    /// Ends the operation on a stack: its final status and the end of its record, in one
    /// transaction.
    fn end_op(
        &self,
        region: &str,
        name: &str,
        id: &str,
        status: &str,
        reason: Option<&str>,
        log: &dyn Fn(&str),
    ) -> Result<(), String> {
        self.tx(|c| {
            let db = |e: rusqlite::Error| format!("local stack store: {e}");
            update_status(c, region, name, status, reason).map_err(db)?;
            c.execute(
                "DELETE FROM stack_ops WHERE region=?1 AND name=?2",
                params![region, name],
            )
            .map_err(db)?;
            insert_event(c, id, name, id, "AWS::CloudFormation::Stack", status, reason).map_err(db)
        })?;
        log_event(log, status, "AWS::CloudFormation::Stack", name, reason);
        self.event_written();
        Ok(())
    }

    /// Deletes what an applied update leaves behind: resources removed from the template (their
    /// rows go too) and the old copies of replaced ones (their rows are the new copies already).
    /// A resource that cannot be deleted is reported, and the update still completes, as on AWS.
    fn clean_up(&self, region: &str, id: &str, rows: &[Row], log: &dyn Fn(&str)) -> Result<(), String> {
        let current = self.rows(id)?;
        for row in rows {
            let d = &row.deployed;
            self.event(
                id,
                &d.logical_id,
                &d.physical_id,
                &d.type_,
                "DELETE_IN_PROGRESS",
                None,
                log,
            )?;
            let res = if row.retain || row.placeholder {
                Ok(())
            } else {
                self.delete_resource(region, row)
            };
            let (status, reason) = match &res {
                Ok(()) if row.retain => ("DELETE_SKIPPED", None),
                Ok(()) => ("DELETE_COMPLETE", None),
                Err(e) => ("DELETE_FAILED", Some(e.as_str())),
            };
            self.event(id, &d.logical_id, &d.physical_id, &d.type_, status, reason, log)?;
            if current
                .get(&d.logical_id)
                .is_some_and(|r| r.deployed.physical_id == d.physical_id)
            {
                self.drop_row(id, &d.logical_id)?;
            }
        }
        Ok(())
    }

    /// Whether `meridian stack cancel-update` asked the running update to stop.
    fn cancel_requested(&self, region: &str, name: &str) -> Result<bool, String> {
        self.db(|c| {
            c.query_row(
                "SELECT cancel FROM stack_ops WHERE region=?1 AND name=?2",
                params![region, name],
                |r| r.get::<_, i64>(0),
            )
            .optional()
            .map(|v| v.unwrap_or(0) != 0)
        })
    }

    fn operations(&self) -> Result<Vec<Operation>, String> {
        self.db(|c| {
            let mut st = c.prepare(
                "SELECT region, name, stack_id, kind, phase, owner_pid, owner_start, before, cleanup FROM stack_ops ORDER BY started",
            )?;
            let rows = st.query_map([], |r| {
                let json = |i: usize| r.get::<_, String>(i);
                Ok(Operation {
                    region: r.get(0)?,
                    name: r.get(1)?,
                    stack_id: r.get(2)?,
                    kind: OpKind::parse(&r.get::<_, String>(3)?),
                    phase: r.get(4)?,
                    owner_pid: r.get(5)?,
                    owner_start: r.get(6)?,
                    before: serde_json::from_str(&json(7)?).unwrap_or_default(),
                    cleanup: serde_json::from_str(&json(8)?).unwrap_or_default(),
                })
            })?;
            rows.collect()
        })
    }

    /// Stacks left `*_IN_PROGRESS` by a Meridian that kept no operation record get one owned by
    /// nobody, with their resources as they are (nothing to undo is known).
    fn adopt_unrecorded(&self) -> Result<(), String> {
        self.tx(|c| {
            let db = |e: rusqlite::Error| format!("local stack store: {e}");
            let stuck: Vec<(String, String, String, String)> = {
                let mut st = c
                    .prepare(
                        "SELECT s.region, s.name, s.stack_id, s.status FROM stacks s
                         WHERE s.status LIKE '%_IN_PROGRESS' AND s.status <> 'REVIEW_IN_PROGRESS'
                         AND NOT EXISTS (SELECT 1 FROM stack_ops o WHERE o.region = s.region AND o.name = s.name)",
                    )
                    .map_err(db)?;
                let rows = st
                    .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))
                    .map_err(db)?;
                rows.collect::<rusqlite::Result<_>>().map_err(db)?
            };
            for (region, name, id, status) in stuck {
                let kind = if status.starts_with("DELETE") {
                    OpKind::Delete
                } else if status.starts_with("CREATE") || status.starts_with("ROLLBACK") {
                    OpKind::Create
                } else {
                    OpKind::Update
                };
                let before = if kind == OpKind::Create {
                    BTreeMap::new()
                } else {
                    read_rows(c, &id).map_err(db)?
                };
                c.execute(
                    "INSERT INTO stack_ops (region, name, stack_id, kind, phase, owner_pid, owner_start, before, cleanup, cancel, started)
                     VALUES (?1, ?2, ?3, ?4, 'apply', NULL, NULL, ?5, '[]', 0, ?6)",
                    params![
                        region,
                        name,
                        id,
                        kind.name(),
                        serde_json::to_string(&before).map_err(|e| e.to_string())?,
                        now()
                    ],
                )
                .map_err(db)?;
            }
            Ok(())
        })
    }

    /// Makes this process the owner of an interrupted operation; false when another process took
    /// it first.
    fn take_over(&self, op: &Operation) -> Result<bool, String> {
        let (pid, start) = me();
        self.db(|c| {
            c.execute(
                "UPDATE stack_ops SET owner_pid=?5, owner_start=?6, recovering=1 WHERE region=?1 AND name=?2 AND owner_pid IS ?3 AND owner_start IS ?4",
                params![op.region, op.name, op.owner_pid, op.owner_start, pid, start],
            )
            .map(|n| n == 1)
        })
    }

    /// Brings every stack whose operation was interrupted (its process ended: killed, crashed,
    /// machine restarted) to a stable state, as CloudFormation does after a failure: an
    /// interrupted create is rolled back (`ROLLBACK_COMPLETE`), an interrupted update is put back
    /// on its previous resources (`UPDATE_ROLLBACK_COMPLETE`), an update interrupted during its
    /// cleanup is finished (`UPDATE_COMPLETE`), and an interrupted delete is finished. Operations
    /// whose process still runs are left alone. Returns one line per stack recovered.
    pub fn recover_interrupted(&self, log: &dyn Fn(&str)) -> Result<Vec<String>, String> {
        self.adopt_unrecorded()?;
        let mut done = Vec::new();
        for op in self.operations()? {
            if meridian_engine::journal::owner_alive(op.owner_pid, op.owner_start) || !self.take_over(&op)? {
                continue;
            }
            done.push(self.finish_interrupted(&op, log)?);
        }
        Ok(done)
    }

    /// Recovers one stack, if its operation's process has ended.
    fn recover_stack(&self, region: &str, name: &str, log: &dyn Fn(&str)) -> Result<(), String> {
        self.adopt_unrecorded()?;
        for op in self.operations()? {
            if op.region == region
                && op.name == name
                && !meridian_engine::journal::owner_alive(op.owner_pid, op.owner_start)
                && self.take_over(&op)?
            {
                self.finish_interrupted(&op, log)?;
            }
        }
        Ok(())
    }

    /// Waits while another live process recovers the stack (it takes moments), so that the
    /// command that follows a crash is not refused because a second one is cleaning up.
    fn wait_for_recovery(&self, region: &str, name: &str) -> Result<(), String> {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(300);
        loop {
            let recovering: Option<(Option<i64>, Option<i64>)> = self.db(|c| {
                c.query_row(
                    "SELECT owner_pid, owner_start FROM stack_ops WHERE region=?1 AND name=?2 AND recovering=1",
                    params![region, name],
                    |r| Ok((r.get(0)?, r.get(1)?)),
                )
                .optional()
            })?;
            match recovering {
                Some((pid, start))
                    if meridian_engine::journal::owner_alive(pid, start) && std::time::Instant::now() < deadline =>
                {
                    std::thread::sleep(std::time::Duration::from_millis(50));
                }
                _ => return Ok(()),
            }
        }
    }

    fn finish_interrupted(&self, op: &Operation, log: &dyn Fn(&str)) -> Result<String, String> {
        let (region, name, id) = (op.region.as_str(), op.name.as_str(), op.stack_id.as_str());
        // A change set that was executing failed with the operation.
        self.db(|c| {
            c.execute(
                "UPDATE change_sets SET execution_status='EXECUTE_FAILED' WHERE region=?1 AND stack=?2 AND execution_status='EXECUTE_IN_PROGRESS'",
                params![region, name],
            )
            .map(|_| ())
        })?;
        let outcome = match (op.kind, op.phase.as_str()) {
            (OpKind::Delete, _) => {
                self.delete_resources(region, name, id, log)?;
                "deleted (its deletion was interrupted and has been finished)".to_string()
            }
            (OpKind::Update, "cleanup") => {
                self.clean_up(region, id, &op.cleanup, log)?;
                self.end_op(region, name, id, "UPDATE_COMPLETE", None, log)?;
                "UPDATE_COMPLETE (its update was applied; the interrupted cleanup has been finished)".to_string()
            }
            (kind, _) => {
                let creating = kind == OpKind::Create;
                let current = self.rows(id)?;
                // Everything the operation may have touched: rows it changed or added, and every
                // function and alias (a crash between the host's change and the row's leaves the
                // row as it was). Putting back what did not change does no harm.
                let touched: Vec<String> = current
                    .iter()
                    .filter(|(lid, row)| {
                        let old = op.before.get(*lid);
                        old.is_none_or(|o| o.deployed != row.deployed)
                            || matches!(
                                row.deployed.type_.as_str(),
                                "AWS::Lambda::Function" | "AWS::Lambda::Alias"
                            )
                    })
                    .map(|(lid, _)| lid.clone())
                    .collect();
                let end = self.roll_back(
                    region,
                    name,
                    id,
                    creating,
                    &op.before,
                    &RefCell::new(current),
                    &touched,
                    INTERRUPTED,
                    log,
                )?;
                format!("{end} ({INTERRUPTED})")
            }
        };
        Ok(format!("stack {name} in {region}: {outcome}"))
    }

    /// CloudFormation's CancelUpdateStack: an update in progress stops and rolls back. When the
    /// process running it has ended, the rollback happens here and now; otherwise that process is
    /// asked to stop (between two resources, and any traffic shift it runs is aborted) and rolls
    /// back itself. Returns what was done.
    pub fn cancel_update(&self, region: &str, name: &str, log: &dyn Fn(&str)) -> Result<String, String> {
        let s = self.stack_row(region, name)?.ok_or_else(|| no_stack(name, region))?;
        if s.status != "UPDATE_IN_PROGRESS" {
            return Err(format!(
                "CancelUpdateStack cannot be called from current stack status {} (stack {name} in {region}; only an update in progress, UPDATE_IN_PROGRESS, can be cancelled)",
                s.status
            ));
        }
        let op = self
            .operations()?
            .into_iter()
            .find(|o| o.region == region && o.name == name);
        if let Some(op) = &op {
            if !meridian_engine::journal::owner_alive(op.owner_pid, op.owner_start) {
                self.recover_stack(region, name, log)?;
                let s = self.stack_row(region, name)?.ok_or_else(|| no_stack(name, region))?;
                return Ok(format!(
                    "the process running the update had ended; the stack rolled back here ({})",
                    s.status
                ));
            }
        }
        self.db(|c| {
            c.execute(
                "UPDATE stack_ops SET cancel=1 WHERE region=?1 AND name=?2",
                params![region, name],
            )
            .map(|_| ())
        })?;
        // A traffic shift of the update stops now (its alias goes back), and the update with it.
        let deliveries = meridian_engine::delivery::DeliveryStore::open(&self.inner.data_dir)?;
        for d in deliveries.list()? {
            if d.region == region && d.stack == name && !d.is_over() {
                let _ = deliveries.command(&d.id, &meridian_engine::delivery::Command::Abort);
            }
        }
        Ok(
            "the update was asked to stop; it rolls back to the previous template (watch `meridian stack events`)"
                .into(),
        )
    }

    /// Creates a change set (replacing one of the same name) and returns it.
    pub fn create_change_set_named(&self, req: &StackRequest) -> Result<ChangeSetInfo, String> {
        let name = req.change_set_name.clone().ok_or("a change set needs a name")?;
        let region = &req.region;
        let existing = self.check_updatable(region, &req.stack_name, &|_| {})?;
        let p = Self::prepared(req)?;
        let mut p = p;
        p.create = existing.as_ref().is_none_or(|s| s.status == "REVIEW_IN_PROGRESS");
        let (_, _, changes) = self.plan(region, &req.stack_name, &p, false)?;
        self.ensure_stack(region, &req.stack_name, "REVIEW_IN_PROGRESS")?;
        let same_input = existing
            .as_ref()
            .is_some_and(|s| s.params == p.params && s.template == p.template_text);
        let (status, exec, reason) = if changes.is_empty() && same_input {
            ("FAILED", "UNAVAILABLE", Some("The submitted information didn't contain changes. Submit different information to create a change set."))
        } else {
            ("CREATE_COMPLETE", "AVAILABLE", None)
        };
        let id = format!(
            "arn:aws:cloudformation:{region}:{LOCAL_ACCOUNT_ID}:changeSet/{name}/{}",
            random_suffix().to_lowercase()
        );
        self.db(|c| {
            c.execute(
                "INSERT OR REPLACE INTO change_sets VALUES (?1,?2,?3,?4,?5,?6,?7,?8,?9,?10)",
                params![
                    region,
                    req.stack_name,
                    name,
                    id,
                    status,
                    exec,
                    reason,
                    serde_json::to_string(&p).unwrap_or_default(),
                    serde_json::to_string(&changes).unwrap_or_default(),
                    now()
                ],
            )
            .map(|_| ())
        })?;
        self.describe_change_set(region, &req.stack_name, &name)
    }

    pub fn describe_change_set(&self, region: &str, stack: &str, name: &str) -> Result<ChangeSetInfo, String> {
        self.db(|c| {
            c.query_row(
                "SELECT id, status, execution_status, reason, changes, created FROM change_sets WHERE region=?1 AND stack=?2 AND name=?3",
                params![region, stack, name],
                |r| {
                    let changes: String = r.get(4)?;
                    Ok(ChangeSetInfo {
                        change_set_name: name.to_string(),
                        change_set_id: r.get(0)?,
                        stack_name: stack.to_string(),
                        status: r.get(1)?,
                        execution_status: r.get(2)?,
                        status_reason: r.get(3)?,
                        changes: serde_json::from_str(&changes).unwrap_or_default(),
                        creation_time: iso(r.get(5)?),
                    })
                },
            )
            .optional()
        })?
        .ok_or_else(|| format!("ChangeSet [{name}] does not exist (stack {stack} in {region})"))
    }

    pub fn delete_change_set(&self, region: &str, stack: &str, name: &str) -> Result<(), String> {
        self.describe_change_set(region, stack, name)?;
        self.db(|c| {
            c.execute(
                "DELETE FROM change_sets WHERE region=?1 AND stack=?2 AND name=?3",
                params![region, stack, name],
            )
            .map(|_| ())
        })?;
        // A stack that only ever had change sets goes away with its last one, as on AWS.
        if let Some(s) = self.stack_row(region, stack)? {
            if s.status == "REVIEW_IN_PROGRESS" {
                let left: i64 = self.db(|c| {
                    c.query_row(
                        "SELECT COUNT(*) FROM change_sets WHERE region=?1 AND stack=?2",
                        params![region, stack],
                        |r| r.get(0),
                    )
                })?;
                if left == 0 {
                    self.db(|c| {
                        c.execute(
                            "DELETE FROM stack_tags WHERE region=?1 AND name=?2",
                            params![region, stack],
                        )?;
                        c.execute("DELETE FROM stacks WHERE region=?1 AND name=?2", params![region, stack])
                            .map(|_| ())
                    })?;
                }
            }
        }
        Ok(())
    }

    /// The template a stack was last deployed with (`GetTemplate`).
    pub fn template_body(&self, region: &str, name: &str) -> Result<String, String> {
        let s = self.stack_row(region, name)?.ok_or_else(|| no_stack(name, region))?;
        Ok(s.template)
    }

    /// A region's exports: (name, value, exporting stack id).
    pub fn exports(&self, region: &str) -> Result<Vec<(String, String, String)>, String> {
        Ok(self
            .exports_of_region(region)?
            .into_iter()
            .map(|(n, (v, id))| (n, v, id))
            .collect())
    }

    /// The stack and name of a change set given by its ARN.
    pub fn change_set_by_id(&self, region: &str, id: &str) -> Result<Option<(String, String)>, String> {
        self.db(|c| {
            c.query_row(
                "SELECT stack, name FROM change_sets WHERE region=?1 AND id=?2",
                params![region, id],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()
        })
    }

    /// The stack, or AWS's error when it does not exist.
    pub fn describe(&self, region: &str, name: &str) -> Result<StackInfo, String> {
        let s = self.stack_row(region, name)?.ok_or_else(|| no_stack(name, region))?;
        Ok(self.info(region, name, &s))
    }

    pub fn list_stacks(&self, region: Option<&str>) -> Result<Vec<StackInfo>, String> {
        let names: Vec<(String, String)> = self.db(|c| {
            let mut st = c.prepare("SELECT region, name FROM stacks ORDER BY region, name")?;
            let rows = st
                .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?
                .collect::<rusqlite::Result<Vec<_>>>()?;
            Ok(rows)
        })?;
        let mut out = Vec::new();
        for (r, n) in names {
            if region.is_some_and(|x| x != r) {
                continue;
            }
            if let Some(s) = self.stack_row(&r, &n)? {
                out.push(self.info(&r, &n, &s));
            }
        }
        Ok(out)
    }

    /// The stack's resources: (logical id, type, physical id, status, placeholder).
    pub fn resources(&self, region: &str, name: &str) -> Result<Vec<ResourceInfo>, String> {
        let s = self.stack_row(region, name)?.ok_or_else(|| no_stack(name, region))?;
        Ok(self
            .rows(&s.id)?
            .into_values()
            .map(|r| ResourceInfo {
                logical_resource_id: r.deployed.logical_id,
                resource_type: r.deployed.type_.clone(),
                physical_resource_id: r.deployed.physical_id,
                resource_status: r.status,
                local: if r.placeholder {
                    "placeholder (not deployed locally)".into()
                } else if DEPLOYED_TYPES.contains(&r.deployed.type_.as_str()) {
                    "deployed".into()
                } else {
                    "recorded (not enforced locally)".into()
                },
            })
            .collect())
    }

    /// The API `api_id` as its region's stacks deployed it: an HTTP API (its own resource, and
    /// the routes, integrations and stages of any stack of the region that name it), or a REST
    /// API (its resources, methods, deployments and stages), with its region.
    pub fn http_api(&self, api_id: &str) -> Result<Option<crate::apigw::HttpApi>, String> {
        const HTTP: ApiKind = ApiKind {
            api: "AWS::ApiGatewayV2::Api",
            children: "'AWS::ApiGatewayV2::Route', 'AWS::ApiGatewayV2::Integration', 'AWS::ApiGatewayV2::Stage'",
            id_property: "ApiId",
        };
        const REST: ApiKind = ApiKind {
            api: "AWS::ApiGateway::RestApi",
            children: "'AWS::ApiGateway::Resource', 'AWS::ApiGateway::Method', 'AWS::ApiGateway::Deployment', 'AWS::ApiGateway::Stage'",
            id_property: "RestApiId",
        };
        if let Some((region, resources)) = self.api_resources(api_id, &HTTP)? {
            return crate::apigw::build(api_id, &region, &resources).map(Some);
        }
        match self.api_resources(api_id, &REST)? {
            Some((region, resources)) => crate::rest_api::build(api_id, &region, &resources).map(Some),
            None => Ok(None),
        }
    }

    /// An API's own resource and the resources of its region's stacks that name it.
    fn api_resources(
        &self,
        api_id: &str,
        kind: &ApiKind,
    ) -> Result<Option<(String, Vec<crate::apigw::ApiResource>)>, String> {
        let found =
            self.db(|c| {
                c.query_row(
                "SELECT s.region, r.properties, r.attributes FROM resources r JOIN stacks s ON s.stack_id = r.stack_id
                 WHERE r.type = ?2 AND r.physical_id = ?1 AND r.placeholder = 0
                   AND r.status NOT LIKE 'DELETE_%' AND r.status NOT LIKE 'CREATE_FAILED'",
                params![api_id, kind.api],
                |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?, r.get::<_, Option<String>>(2)?)),
            )
            .optional()
            })?;
        let Some((region, props, attrs)) = found else {
            return Ok(None);
        };
        let json = |s: &str| serde_json::from_str(s).unwrap_or(Value::Null);
        let mut resources = vec![crate::apigw::ApiResource {
            type_: kind.api.into(),
            physical_id: api_id.to_string(),
            properties: json(&props),
            attributes: attrs.as_deref().map(json).unwrap_or(Value::Null),
        }];
        let children = self.db(|c| {
            // the type list and property name are constants of this file, not input
            let mut st = c.prepare(&format!(
                "SELECT r.type, r.physical_id, r.properties FROM resources r JOIN stacks s ON s.stack_id = r.stack_id
                 WHERE s.region = ?1 AND r.placeholder = 0 AND r.status NOT LIKE 'DELETE_%'
                   AND r.type IN ({}) AND json_extract(r.properties, '$.{}') = ?2",
                kind.children, kind.id_property
            ))?;
            let rows = st.query_map(params![region, api_id], |r| {
                Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?, r.get::<_, String>(2)?))
            })?;
            rows.collect::<rusqlite::Result<Vec<_>>>()
        })?;
        for (type_, physical_id, p) in children {
            resources.push(crate::apigw::ApiResource {
                type_,
                physical_id,
                properties: json(&p),
                attributes: Value::Null,
            });
        }
        Ok(Some((region, resources)))
    }

    /// The API of `region` (HTTP or REST) with a route or method for `method` `path` (within a
    /// stage) whose integration calls `target` (`function`, `function:alias` or
    /// `function:version`), with the path a request takes to reach it (the stage's prefix
    /// added: the first stage in name order, `$default` for an HTTP API that has one).
    pub fn api_routing_to(
        &self,
        region: &str,
        method: &str,
        path: &str,
        target: &str,
    ) -> Result<Option<(crate::apigw::HttpApi, String)>, String> {
        let ids = self.db(|c| {
            let mut st = c.prepare(
                "SELECT r.physical_id FROM resources r JOIN stacks s ON s.stack_id = r.stack_id
                 WHERE s.region = ?1 AND r.placeholder = 0 AND r.status NOT LIKE 'DELETE_%'
                   AND r.status NOT LIKE 'CREATE_FAILED'
                   AND r.type IN ('AWS::ApiGatewayV2::Api', 'AWS::ApiGateway::RestApi')
                 ORDER BY r.physical_id",
            )?;
            let rows = st.query_map(params![region], |r| r.get::<_, String>(0))?;
            rows.collect::<rusqlite::Result<Vec<_>>>()
        })?;
        let suffix = format!(":function:{target}");
        for id in ids {
            let Some(api) = self.http_api(&id)? else { continue };
            let routes_there = api.route(method, path).is_some_and(|m| {
                m.route
                    .integration
                    .as_ref()
                    .is_some_and(|i| i.function_arn.ends_with(&suffix))
            });
            if !routes_there {
                continue;
            }
            let stage = if api.rest.is_none() && api.stages.contains_key("$default") {
                None
            } else {
                api.stages.keys().next().cloned()
            };
            let full = match stage {
                None if api.rest.is_none() => path.to_string(),
                None => continue,
                Some(s) => format!("/{s}{path}"),
            };
            return Ok(Some((api, full)));
        }
        Ok(None)
    }

    /// The macros of `region` (`AWS::CloudFormation::Macro` of its live stacks): name -> function.
    fn macros_of_region(&self, region: &str) -> Result<BTreeMap<String, String>, String> {
        self.db(|c| {
            let mut st = c.prepare(
                "SELECT r.physical_id, json_extract(r.properties, '$.FunctionName') FROM resources r
                 JOIN stacks s ON s.stack_id = r.stack_id
                 WHERE s.region = ?1 AND r.type = 'AWS::CloudFormation::Macro' AND r.placeholder = 0
                   AND r.status NOT LIKE 'DELETE_%' AND r.status NOT LIKE 'CREATE_FAILED'",
            )?;
            let rows = st.query_map(params![region], |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    r.get::<_, Option<String>>(1)?.unwrap_or_default(),
                ))
            })?;
            rows.collect::<rusqlite::Result<BTreeMap<_, _>>>()
        })
    }

    /// The deployed (evaluated) properties of one resource.
    pub fn resource_properties(&self, region: &str, name: &str, logical: &str) -> Result<Option<Value>, String> {
        let s = self.stack_row(region, name)?.ok_or_else(|| no_stack(name, region))?;
        Ok(self.rows(&s.id)?.remove(logical).map(|r| r.deployed.properties))
    }

    pub fn events(&self, region: &str, name: &str) -> Result<Vec<StackEvent>, String> {
        let id = match self.stack_row(region, name)? {
            Some(s) => s.id,
            None => {
                // A deleted stack's events stay readable by name.
                self.db(|c| {
                    c.query_row(
                        "SELECT stack_id FROM events WHERE logical_id=?1 AND type='AWS::CloudFormation::Stack' AND stack_id LIKE ?2 ORDER BY seq DESC LIMIT 1",
                        params![name, format!("arn:aws:cloudformation:{region}:%")],
                        |r| r.get(0),
                    )
                    .optional()
                })?
                .ok_or_else(|| no_stack(name, region))?
            }
        };
        self.db(|c| {
            let mut st = c.prepare(
                "SELECT at, logical_id, physical_id, type, status, reason FROM events WHERE stack_id=?1 ORDER BY seq",
            )?;
            let rows = st
                .query_map([&id], |r| {
                    Ok(StackEvent {
                        timestamp: iso(r.get(0)?),
                        logical_resource_id: r.get(1)?,
                        physical_resource_id: r.get(2)?,
                        resource_type: r.get(3)?,
                        resource_status: r.get(4)?,
                        resource_status_reason: r.get(5)?,
                    })
                })?
                .collect::<rusqlite::Result<Vec<_>>>()?;
            Ok(rows)
        })
    }

    // ---- applying changes ---------------------------------------------------------------------

    #[allow(clippy::too_many_arguments)]
    fn apply(
        &self,
        region: &str,
        name: &str,
        p: &Prepared,
        direct: bool,
        log: &dyn Fn(&str),
        driver: Option<&Arc<dyn AliasShifter>>,
    ) -> Result<StackOutcome, String> {
        if p.artifact_root.is_some() && p.artifact_root.as_deref() != Some(self.root.as_path()) {
            return self
                .rooted(p.artifact_root.as_deref())
                .apply(region, name, p, direct, log, driver);
        }
        let existing = self.check_updatable(region, name, log)?;
        let (t, params, changes) = self.plan(region, name, p, direct)?;
        let creating = existing.as_ref().is_none_or(|s| s.status == "REVIEW_IN_PROGRESS");
        if p.create && !creating {
            return Err(format!("Stack [{name}] already exists"));
        }
        if !p.tags.is_empty() {
            let tags = serde_json::to_string(&p.tags).unwrap_or_default();
            self.db(|c| {
                c.execute(
                    "INSERT OR REPLACE INTO stack_tags VALUES (?1, ?2, ?3)",
                    params![region, name, tags],
                )
                .map(|_| ())
            })?;
        }
        if let Some(s) = &existing {
            if !creating && changes.is_empty() && s.params == p.params {
                let outputs_same = self
                    .outputs_for(region, name, &t, &params, &s.id)
                    .map(|(o, _)| o == s.outputs)
                    .unwrap_or(false);
                if outputs_same {
                    return Ok(StackOutcome::NoChanges(self.info(region, name, s)));
                }
            }
        }
        let (kind, complete) = if creating {
            (OpKind::Create, "CREATE_COMPLETE")
        } else {
            (OpKind::Update, "UPDATE_COMPLETE")
        };
        let seen = existing.as_ref().map(|s| s.status.as_str());
        let (id, before) = self.begin_op(region, name, kind, seen, log)?;
        let current = RefCell::new(before.clone());
        let resolver = StackResolver {
            current: &current,
            exports: self
                .exports_of_region(region)?
                .into_iter()
                .map(|(k, (v, _))| (k, v))
                .collect(),
            imported: RefCell::new(BTreeSet::new()),
            stacks: self,
        };
        let pseudo = Pseudo::new(region, LOCAL_ACCOUNT_ID, name, &id);
        let ev = Evaluator::new(&t, &params, &pseudo, &resolver).map_err(|e| e.to_string())?;
        let by_id: BTreeMap<String, meridian_template::Resource> =
            t.resources().into_iter().map(|r| (r.logical_id.clone(), r)).collect();
        let masks = params.secrets();
        let mask = |s: String| masks.iter().fold(s, |acc, m| acc.replace(m.as_str(), "****"));
        let mut done: Vec<String> = Vec::new();
        let mut replaced_old: Vec<Row> = Vec::new();
        let mut failure: Option<String> = None;
        let mut rollback_reason = "The following resource(s) failed; rolling back";
        let active = plan::active_resources(&t, &ev).map_err(|e| e.to_string())?;
        let change_of: BTreeMap<&str, &Change> = changes.iter().map(|c| (c.logical_resource_id.as_str(), c)).collect();
        for lid in &active {
            let Some(change) = change_of.get(lid.as_str()) else {
                continue;
            };
            if self.cancel_requested(region, name)? {
                failure = Some("the update was cancelled (CancelUpdateStack)".into());
                rollback_reason = "User Initiated";
                break;
            }
            let r = &by_id[lid];
            let res = (|| -> Result<(), String> {
                let props = ev
                    .eval(&r.properties)
                    .map_err(|m| format!("{}:{} resource `{lid}`: {m}", t.file, r.line.unwrap_or(0)))?
                    .unwrap_or(json!({}));
                let placeholder = !is_supported(&r.type_);
                // Dynamic references are resolved for the call only: the stored properties keep them.
                let live = if crate::dynamic::has_references(&props) {
                    let store =
                        meridian_buildspec::SecretStore::open(&self.inner.data_dir).map_err(|e| e.to_string())?;
                    crate::dynamic::resolve(&store, region, &props)
                        .map_err(|m| format!("{}:{} resource `{lid}`: {m}", t.file, r.line.unwrap_or(0)))?
                } else {
                    props.clone()
                };
                let reserve = |phys: &str| {
                    let row = Row::of(
                        r,
                        phys.to_string(),
                        props.clone(),
                        BTreeMap::new(),
                        "CREATE_IN_PROGRESS",
                        false,
                    );
                    self.save_row(&id, &row)
                };
                match change.action {
                    ChangeAction::Add => {
                        self.event(&id, lid, "", &r.type_, "CREATE_IN_PROGRESS", None, log)?;
                        let (phys, attrs) = if placeholder {
                            (format!("placeholder-{lid}"), BTreeMap::new())
                        } else {
                            self.create_resource(region, name, r, &live, &reserve)?
                        };
                        let row = Row::of(r, phys.clone(), props, attrs, "CREATE_COMPLETE", placeholder);
                        self.save_row(&id, &row)?;
                        self.event(
                            &id,
                            lid,
                            &phys,
                            &r.type_,
                            "CREATE_COMPLETE",
                            placeholder.then_some("recorded as a placeholder: not deployed locally"),
                            log,
                        )?;
                        current.borrow_mut().insert(lid.clone(), row);
                    }
                    ChangeAction::Modify => {
                        let old = current.borrow()[lid].clone();
                        let changed = plan::changed_properties(&old.deployed.properties, &props);
                        let replace = old.deployed.type_ != r.type_
                            || changed.iter().any(|p| plan::forces_replacement(&r.type_, p));
                        if changed.is_empty() && !replace && change.replacement != Some(Replacement::True) {
                            return Ok(());
                        }
                        self.event(&id, lid, &old.deployed.physical_id, &r.type_, "UPDATE_IN_PROGRESS", replace.then_some("Requested update requires the creation of a new physical resource; hence creating one."), log)?;
                        let (phys, attrs) = if placeholder {
                            (old.deployed.physical_id.clone(), BTreeMap::new())
                        } else if replace {
                            self.create_resource(region, name, r, &live, &reserve)?
                        } else {
                            let attrs =
                                self.update_resource(region, name, r, &old, &live, &ev, &p.delivery, log, driver)?;
                            (old.deployed.physical_id.clone(), attrs)
                        };
                        if replace {
                            replaced_old.push(old.clone());
                        }
                        let row = Row::of(r, phys.clone(), props, attrs, "UPDATE_COMPLETE", placeholder);
                        self.save_row(&id, &row)?;
                        self.event(&id, lid, &phys, &r.type_, "UPDATE_COMPLETE", None, log)?;
                        current.borrow_mut().insert(lid.clone(), row);
                    }
                    ChangeAction::Remove => {}
                }
                Ok(())
            })();
            match res {
                Ok(()) => done.push(lid.clone()),
                Err(e) => {
                    let e = mask(e);
                    if self.cancel_requested(region, name)? {
                        rollback_reason = "User Initiated";
                    }
                    // A resource that failed half-way through an update is put back too.
                    if change.action == ChangeAction::Modify {
                        done.push(lid.clone());
                    } else if !current.borrow().contains_key(lid) {
                        // Reserved, but its creation failed: nothing to delete.
                        self.drop_row(&id, lid)?;
                    }
                    let failed = if change.action == ChangeAction::Add {
                        "CREATE_FAILED"
                    } else {
                        "UPDATE_FAILED"
                    };
                    let phys = current
                        .borrow()
                        .get(lid)
                        .map(|r| r.deployed.physical_id.clone())
                        .unwrap_or_default();
                    self.event(&id, lid, &phys, &r.type_, failed, Some(&e), log)?;
                    failure = Some(format!("resource {lid} ({}) failed: {e}", r.type_));
                    break;
                }
            }
        }
        // Outputs and exports are checked before anything is removed.
        let mut outputs = BTreeMap::new();
        let mut new_exports = BTreeMap::new();
        if failure.is_none() {
            match self.outputs_for(region, name, &t, &params, &id).and_then(|(o, ex)| {
                let exp_ok = self.check_exports(region, &id, &ex);
                exp_ok.map(|_| (o, ex))
            }) {
                Ok((o, ex)) => {
                    outputs = o;
                    new_exports = ex;
                }
                Err(e) => failure = Some(e),
            }
        }
        if let Some(reason) = failure {
            let reason = mask(reason);
            self.roll_back(
                region,
                name,
                &id,
                creating,
                &before,
                &current,
                &done,
                rollback_reason,
                log,
            )?;
            let stack = self.stack_row(region, name)?.ok_or_else(|| no_stack(name, region))?;
            return Err(format!(
                "stack {name} in {region}: {reason}; rolled back ({})",
                stack.status
            ));
        }
        // Cleanup: resources removed from the template, and the old copies of replaced ones.
        let mut to_delete: Vec<Row> = replaced_old;
        for c in changes.iter().filter(|c| c.action == ChangeAction::Remove).rev() {
            if let Some(row) = current.borrow().get(&c.logical_resource_id) {
                to_delete.push(row.clone());
            }
        }
        // The update is applied: the stack's template, parameters, outputs and exports, with the
        // cleanup left to do, in one transaction. From here on a crash finishes the cleanup
        // instead of undoing the update.
        let shown: BTreeMap<String, String> = params
            .raw
            .keys()
            .filter_map(|k| params.shown(k).map(|v| (k.clone(), v)))
            .collect();
        let imported: Vec<String> = resolver.imported.borrow().iter().cloned().collect();
        let cleanup = serde_json::to_string(&to_delete).map_err(|e| e.to_string())?;
        self.tx(|c| {
            let db = |e: rusqlite::Error| format!("local stack store: {e}");
            c.execute(
                "UPDATE stacks SET template=?3, params=?4, shown=?5, outputs=?6 WHERE region=?1 AND name=?2",
                params![
                    region,
                    name,
                    p.template_text,
                    serde_json::to_string(&p.params).unwrap_or_default(),
                    serde_json::to_string(&shown).unwrap_or_default(),
                    serde_json::to_string(&outputs).unwrap_or_default()
                ],
            )
            .map_err(db)?;
            c.execute(
                "DELETE FROM exports WHERE region=?1 AND stack_id=?2",
                params![region, id],
            )
            .map_err(db)?;
            for (n, v) in &new_exports {
                c.execute("INSERT INTO exports VALUES (?1, ?2, ?3, ?4)", params![region, n, v, id])
                    .map_err(db)?;
            }
            c.execute(
                "DELETE FROM imports WHERE region=?1 AND stack_id=?2",
                params![region, id],
            )
            .map_err(db)?;
            for n in &imported {
                c.execute(
                    "INSERT OR IGNORE INTO imports VALUES (?1, ?2, ?3)",
                    params![region, n, id],
                )
                .map_err(db)?;
            }
            c.execute(
                "UPDATE stack_ops SET phase='cleanup', cleanup=?3 WHERE region=?1 AND name=?2",
                params![region, name, cleanup],
            )
            .map_err(db)?;
            Ok(())
        })?;
        if !creating {
            self.set_status(region, name, &id, "UPDATE_COMPLETE_CLEANUP_IN_PROGRESS", None, log)?;
        }
        self.clean_up(region, &id, &to_delete, log)?;
        self.end_op(region, name, &id, complete, None, log)?;
        let s = self.stack_row(region, name)?.ok_or_else(|| no_stack(name, region))?;
        Ok(StackOutcome::Applied(self.info(region, name, &s)))
    }

    fn outputs_for(
        &self,
        region: &str,
        name: &str,
        t: &Template,
        params: &Parameters,
        id: &str,
    ) -> Result<(Named, Named), String> {
        let current = RefCell::new(self.rows(id)?);
        let resolver = StackResolver {
            current: &current,
            exports: self
                .exports_of_region(region)?
                .into_iter()
                .map(|(k, (v, _))| (k, v))
                .collect(),
            imported: RefCell::new(BTreeSet::new()),
            stacks: self,
        };
        let pseudo = Pseudo::new(region, LOCAL_ACCOUNT_ID, name, id);
        let ev = Evaluator::new(t, params, &pseudo, &resolver).map_err(|e| e.to_string())?;
        let mut outputs = BTreeMap::new();
        let mut exports = BTreeMap::new();
        for (k, o) in t.section("Outputs").cloned().unwrap_or_default() {
            if let Some(c) = o.get("Condition").and_then(Value::as_str) {
                if ev.conditions.get(c) != Some(&true) {
                    continue;
                }
            }
            let at = |m: String| format!("{}:{} output `{k}`: {m}", t.file, t.line_of(&k).unwrap_or(0));
            let v = ev
                .eval(o.get("Value").unwrap_or(&Value::Null))
                .map_err(at)?
                .unwrap_or(Value::Null);
            let s = v.as_str().map(String::from).unwrap_or_else(|| match &v {
                Value::Array(a) => a
                    .iter()
                    .map(|x| x.as_str().map(String::from).unwrap_or_else(|| x.to_string()))
                    .collect::<Vec<_>>()
                    .join(","),
                other => other.to_string(),
            });
            if let Some(ex) = o.get("Export").and_then(|e| e.get("Name")) {
                let n = ev
                    .eval(ex)
                    .map_err(at)?
                    .and_then(|v| v.as_str().map(String::from))
                    .ok_or_else(|| at("Export Name must be a string".into()))?;
                exports.insert(n, s.clone());
            }
            outputs.insert(k.clone(), s);
        }
        Ok((outputs, exports))
    }

    fn check_exports(&self, region: &str, id: &str, new: &BTreeMap<String, String>) -> Result<(), String> {
        let all = self.exports_of_region(region)?;
        for (n, v) in new {
            if let Some((old_v, owner)) = all.get(n) {
                if owner != id {
                    let owner_name = owner.split('/').nth(1).unwrap_or(owner);
                    return Err(format!(
                        "Export with name {n} is already exported by stack {owner_name}"
                    ));
                }
                if old_v != v {
                    let users = self.importers(region, n)?;
                    if !users.is_empty() {
                        return Err(format!(
                            "Cannot update export {n} as it is in use by {}",
                            users.join(", ")
                        ));
                    }
                }
            }
        }
        for (n, (_, owner)) in &all {
            if owner == id && !new.contains_key(n) {
                let users = self.importers(region, n)?;
                if !users.is_empty() {
                    return Err(format!(
                        "Cannot delete export {n} as it is in use by {}",
                        users.join(", ")
                    ));
                }
            }
        }
        Ok(())
    }

    #[allow(clippy::too_many_arguments)]
    fn roll_back(
        &self,
        region: &str,
        name: &str,
        id: &str,
        creating: bool,
        before: &BTreeMap<String, Row>,
        current: &RefCell<BTreeMap<String, Row>>,
        done: &[String],
        reason: &str,
        log: &dyn Fn(&str),
    ) -> Result<&'static str, String> {
        let (progress, complete) = if creating {
            ("ROLLBACK_IN_PROGRESS", "ROLLBACK_COMPLETE")
        } else {
            ("UPDATE_ROLLBACK_IN_PROGRESS", "UPDATE_ROLLBACK_COMPLETE")
        };
        self.set_status(region, name, id, progress, Some(reason), log)?;
        let mut failed_rollback = false;
        let cur = current.borrow().clone();
        for lid in done.iter().rev() {
            let Some(now_row) = cur.get(lid) else { continue };
            let d = &now_row.deployed;
            match before.get(lid) {
                // Created by this operation (or a replacement): delete the new one.
                None => {
                    self.event(id, lid, &d.physical_id, &d.type_, "DELETE_IN_PROGRESS", None, log)?;
                    let r = if now_row.placeholder {
                        Ok(())
                    } else {
                        self.delete_resource(region, now_row)
                    };
                    match r {
                        Ok(()) => self.event(id, lid, &d.physical_id, &d.type_, "DELETE_COMPLETE", None, log)?,
                        Err(e) => {
                            failed_rollback = true;
                            self.event(id, lid, &d.physical_id, &d.type_, "DELETE_FAILED", Some(&e), log)?
                        }
                    }
                    self.drop_row(id, lid)?;
                }
                Some(old) if old.deployed.physical_id != d.physical_id => {
                    // Replaced: the old one is still there; drop the new one and point back.
                    self.event(id, lid, &d.physical_id, &d.type_, "DELETE_IN_PROGRESS", None, log)?;
                    if !now_row.placeholder && !now_row.retain {
                        let _ = self.delete_resource(region, now_row);
                    }
                    self.event(id, lid, &d.physical_id, &d.type_, "DELETE_COMPLETE", None, log)?;
                    self.save_row(id, old)?;
                }
                Some(old) => {
                    self.event(
                        id,
                        lid,
                        &d.physical_id,
                        &d.type_,
                        "UPDATE_IN_PROGRESS",
                        Some("rolling back to the previous properties"),
                        log,
                    )?;
                    let r = if old.placeholder {
                        Ok(old.deployed.attributes.clone())
                    } else {
                        self.restore_resource(region, name, old)
                    };
                    match r {
                        Ok(_) => {
                            self.save_row(id, old)?;
                            self.event(id, lid, &d.physical_id, &d.type_, "UPDATE_COMPLETE", None, log)?
                        }
                        Err(e) => {
                            failed_rollback = true;
                            self.event(id, lid, &d.physical_id, &d.type_, "UPDATE_FAILED", Some(&e), log)?
                        }
                    }
                }
            }
        }
        if !creating {
            self.set_status(
                region,
                name,
                id,
                "UPDATE_ROLLBACK_COMPLETE_CLEANUP_IN_PROGRESS",
                None,
                log,
            )?;
        }
        let end = if failed_rollback {
            if creating {
                "ROLLBACK_FAILED"
            } else {
                "UPDATE_ROLLBACK_FAILED"
            }
        } else {
            complete
        };
        self.end_op(region, name, id, end, None, log)?;
        Ok(end)
    }

    /// Deletes a stack and its resources (reverse dependency order).
    pub fn delete(&self, region: &str, name: &str, log: &dyn Fn(&str)) -> Result<(), String> {
        let mut s = self.stack_row(region, name)?.ok_or_else(|| no_stack(name, region))?;
        if s.status.ends_with("_IN_PROGRESS") {
            self.recover_stack(region, name, log)?;
            s = self.stack_row(region, name)?.ok_or_else(|| no_stack(name, region))?;
        }
        for (n, (_, owner)) in self.exports_of_region(region)? {
            if owner == s.id {
                let users = self.importers(region, &n)?;
                if !users.is_empty() {
                    // Refused before anything is deleted: the stack stays as it is.
                    return Err(format!(
                        "Export {n} cannot be deleted as it is in use by {}",
                        users.join(", ")
                    ));
                }
            }
        }
        let (id, _) = self.begin_op(region, name, OpKind::Delete, Some(&s.status), log)?;
        self.delete_resources(region, name, &id, log)
    }

    /// Deletes a stack's resources (reverse dependency order), then the stack; the second half of
    /// a delete, and what recovery runs to finish an interrupted one.
    fn delete_resources(&self, region: &str, name: &str, id: &str, log: &dyn Fn(&str)) -> Result<(), String> {
        let s = self.stack_row(region, name)?.ok_or_else(|| no_stack(name, region))?;
        let rows = self.rows(id)?;
        // Reverse creation order: from the stored template when it still reads, else as stored.
        let order: Vec<String> = {
            let p = Prepared {
                file: name.to_string(),
                template_text: s.template.clone(),
                params: s.params.clone(),
                capabilities: vec![],
                allow_unsupported: true,
                publish_on_config_change: false,
                artifact_root: None,
                source: None,
                delivery: DeliveryOptions::default(),
                create: false,
                tags: BTreeMap::new(),
            };
            self.read_template(&p, region)
                .ok()
                .and_then(|t| meridian_template::graph::creation_order(&t).ok())
                .unwrap_or_else(|| rows.keys().cloned().collect())
        };
        let mut ids: Vec<String> = order.into_iter().filter(|i| rows.contains_key(i)).collect();
        for k in rows.keys() {
            if !ids.contains(k) {
                ids.push(k.clone());
            }
        }
        let mut failed = None;
        for lid in ids.iter().rev() {
            let row = &rows[lid];
            let d = &row.deployed;
            self.event(&s.id, lid, &d.physical_id, &d.type_, "DELETE_IN_PROGRESS", None, log)?;
            let r = if row.retain || row.placeholder {
                Ok(())
            } else {
                self.delete_resource(region, row)
            };
            match r {
                Ok(()) => {
                    self.event(
                        &s.id,
                        lid,
                        &d.physical_id,
                        &d.type_,
                        if row.retain {
                            "DELETE_SKIPPED"
                        } else {
                            "DELETE_COMPLETE"
                        },
                        None,
                        log,
                    )?;
                    self.drop_row(&s.id, lid)?;
                }
                Err(e) => {
                    self.event(&s.id, lid, &d.physical_id, &d.type_, "DELETE_FAILED", Some(&e), log)?;
                    failed = Some(format!("resource {lid} could not be deleted: {e}"));
                }
            }
        }
        if let Some(reason) = failed {
            self.end_op(region, name, id, "DELETE_FAILED", Some(&reason), log)?;
            return Err(reason);
        }
        self.tx(|c| {
            let db = |e: rusqlite::Error| format!("local stack store: {e}");
            insert_event(c, id, name, id, "AWS::CloudFormation::Stack", "DELETE_COMPLETE", None).map_err(db)?;
            c.execute(
                "DELETE FROM stack_tags WHERE region=?1 AND name=?2",
                params![region, name],
            )
            .map_err(db)?;
            c.execute("DELETE FROM stacks WHERE region=?1 AND name=?2", params![region, name])
                .map_err(db)?;
            c.execute(
                "DELETE FROM stack_ops WHERE region=?1 AND name=?2",
                params![region, name],
            )
            .map_err(db)?;
            c.execute("DELETE FROM exports WHERE stack_id=?1", [id]).map_err(db)?;
            c.execute("DELETE FROM imports WHERE stack_id=?1", [id]).map_err(db)?;
            c.execute(
                "DELETE FROM change_sets WHERE region=?1 AND stack=?2",
                params![region, name],
            )
            .map_err(db)?;
            Ok(())
        })?;
        log_event(log, "DELETE_COMPLETE", "AWS::CloudFormation::Stack", name, None);
        self.event_written();
        Ok(())
    }

    // ---- resources ----------------------------------------------------------------------------

    fn region(region: &str) -> Result<RegionId, String> {
        RegionId::new(region).map_err(|e| e.to_string())
    }

    /// The local file of `s3://bucket/key`, refusing another region's bucket as AWS does.
    fn code_file(&self, region: &str, bucket: &str, key: &str) -> Result<PathBuf, String> {
        let dir = crate::buckets::store_root(&self.root, "S3", bucket);
        if !dir.is_dir() {
            return Err(format!(
                "Error occurred while GetObject. S3 Error Code: NoSuchBucket. S3 Error Message: The specified bucket does not exist (bucket `{bucket}` under {})",
                self.root.join("s3").display()
            ));
        }
        if let Some(owner) = crate::buckets::bucket_region(&dir) {
            if owner != region {
                return Err(format!(
                    "Error occurred while GetObject. S3 Error Code: PermanentRedirect. S3 Error Message: The bucket is in this region: {owner}. Please use this region to retry the request (code in bucket `{bucket}` cannot be deployed to {region}: package the template for {region})"
                ));
            }
        }
        // the file the local S3 keeps the key in (object_store's mapping: no `..`, no absolute path)
        let file = crate::endpoint::s3::local_object(&self.root, bucket, key).filter(|f| f.is_file());
        file.ok_or_else(|| format!(
            "Error occurred while GetObject. S3 Error Code: NoSuchKey. S3 Error Message: The specified key does not exist (s3://{bucket}/{key})"
        ))
    }

    fn code_source(&self, region: &str, props: &Value, runtime: &str) -> Result<CodeSource, String> {
        let code = props
            .get("Code")
            .ok_or("Properties validation failed: required key [Code] not found")?;
        if let Some(zip) = code.get("ZipFile").and_then(Value::as_str) {
            let name = if runtime.starts_with("python") {
                "index.py"
            } else {
                "index.js"
            };
            return Ok(CodeSource::ZipBytes(inline_zip(name, zip)?));
        }
        if code.get("ImageUri").is_some() {
            return Err(
                "container images (Code.ImageUri) are not supported in local regions; use a zip package".into(),
            );
        }
        let bucket = code
            .get("S3Bucket")
            .and_then(Value::as_str)
            .ok_or("Code needs S3Bucket and S3Key, or ZipFile")?;
        let key = code.get("S3Key").and_then(Value::as_str).ok_or("Code needs S3Key")?;
        Ok(CodeSource::ZipFile(self.code_file(region, bucket, key)?))
    }

    fn create_resource(
        &self,
        region: &str,
        stack: &str,
        r: &meridian_template::Resource,
        props: &Value,
        reserve: &dyn Fn(&str) -> Result<(), String>,
    ) -> Result<(String, BTreeMap<String, Value>), String> {
        let rid = Self::region(region)?;
        let host = &self.inner.host;
        let lid = r.logical_id.as_str();
        let arn = |svc: &str, rest: String| format!("arn:aws:{svc}:{region}:{LOCAL_ACCOUNT_ID}:{rest}");
        let named = |key: &str, max: usize| {
            str_prop(props, key)
                .map(String::from)
                .unwrap_or_else(|| generated_name(stack, lid, max))
        };
        Ok(match r.type_.as_str() {
            "AWS::Lambda::Function" => {
                let name = named("FunctionName", 64);
                let runtime = str_prop(props, "Runtime")
                    .ok_or("Properties validation failed: required key [Runtime] not found")?;
                let handler = str_prop(props, "Handler")
                    .ok_or("Properties validation failed: required key [Handler] not found")?;
                let code = self.code_source(region, props, runtime)?;
                let mut spec = FunctionSpec::new(&name, runtime, handler);
                spec.memory_size = num_prop(props, "MemorySize").unwrap_or(128);
                spec.timeout = num_prop(props, "Timeout").unwrap_or(3);
                spec.environment = env_prop(props);
                spec.description = str_prop(props, "Description").unwrap_or_default().to_string();
                spec.reserved_concurrency = num_prop(props, "ReservedConcurrentExecutions");
                // On record before it exists: a crash from here on deletes it when rolling back.
                reserve(&name)?;
                let v = host.create_function(&rid, spec, &code).map_err(|e| e.to_string())?;
                (name, BTreeMap::from([("Arn".into(), Value::String(v.function_arn()))]))
            }
            "AWS::Lambda::Version" => {
                let f = function_name_of(str_prop(props, "FunctionName").ok_or("Version needs FunctionName")?);
                let v = host
                    .publish_version(&rid, &f, str_prop(props, "Description"))
                    .map_err(|e| e.to_string())?;
                if let Some(sha) = str_prop(props, "CodeSha256") {
                    let have = base64_of_hex(&v.code_sha256.hex());
                    if sha != have {
                        return Err(format!("CodeSha256 {sha} does not match the code of $LATEST ({have})"));
                    }
                }
                (
                    v.version_arn(),
                    BTreeMap::from([("Version".into(), Value::String(v.version.clone()))]),
                )
            }
            "AWS::Lambda::Alias" => {
                let f = function_name_of(str_prop(props, "FunctionName").ok_or("Alias needs FunctionName")?);
                let name = str_prop(props, "Name").ok_or("Alias needs Name")?;
                let version = str_prop(props, "FunctionVersion").ok_or("Alias needs FunctionVersion")?;
                let a = host
                    .create_alias(
                        &rid,
                        &f,
                        name,
                        version,
                        routing(props),
                        str_prop(props, "Description").unwrap_or_default(),
                    )
                    .map_err(|e| e.to_string())?;
                (a.arn(), BTreeMap::from([("AliasArn".into(), Value::String(a.arn()))]))
            }
            "AWS::Lambda::LayerVersion" => {
                let content = props.get("Content").ok_or("LayerVersion needs Content")?;
                let bucket = content
                    .get("S3Bucket")
                    .and_then(Value::as_str)
                    .ok_or("Content needs S3Bucket")?;
                let key = content
                    .get("S3Key")
                    .and_then(Value::as_str)
                    .ok_or("Content needs S3Key")?;
                self.code_file(region, bucket, key)?;
                let name = named("LayerName", 64);
                let n = now();
                let a = arn("lambda", format!("layer:{name}:{n}"));
                (
                    a.clone(),
                    BTreeMap::from([("LayerVersionArn".into(), Value::String(a))]),
                )
            }
            "AWS::SSM::Parameter" => {
                let name = str_prop(props, "Name")
                    .map(String::from)
                    .unwrap_or_else(|| format!("CFN-{lid}-{}", random_suffix()));
                if props.get("Value").is_none() {
                    return Err("Properties validation failed: required key [Value] not found".into());
                }
                if self.ssm_lookup(region)(&name).is_some() {
                    return Err(format!("{name} already exists in the region's parameter store"));
                }
                let value = self.put_parameter(region, &name, props)?;
                (
                    name,
                    BTreeMap::from([
                        (
                            "Type".into(),
                            Value::String(str_prop(props, "Type").unwrap_or("String").to_string()),
                        ),
                        ("Value".into(), Value::String(value)),
                    ]),
                )
            }
            "AWS::IAM::Role" => {
                let name = named("RoleName", 64);
                let a = arn("iam", format!("role/{name}")).replace(&format!(":{region}:"), "::");
                (
                    name,
                    BTreeMap::from([
                        ("Arn".into(), Value::String(a)),
                        ("RoleId".into(), Value::String(format!("AROA{}", random_suffix()))),
                    ]),
                )
            }
            "AWS::IAM::ManagedPolicy" => {
                let name = named("ManagedPolicyName", 128);
                let a = arn("iam", format!("policy/{name}")).replace(&format!(":{region}:"), "::");
                (a.clone(), BTreeMap::from([("PolicyArn".into(), Value::String(a))]))
            }
            "AWS::Logs::LogGroup" => {
                let name = named("LogGroupName", 512);
                (
                    name.clone(),
                    BTreeMap::from([("Arn".into(), Value::String(arn("logs", format!("log-group:{name}:*"))))]),
                )
            }
            "AWS::CloudWatch::Alarm" => {
                let name = named("AlarmName", 255);
                (
                    name.clone(),
                    BTreeMap::from([("Arn".into(), Value::String(arn("cloudwatch", format!("alarm:{name}"))))]),
                )
            }
            "AWS::S3::Bucket" => {
                let name = str_prop(props, "BucketName")
                    .map(String::from)
                    .unwrap_or_else(|| generated_name(stack, lid, 63).to_lowercase());
                check_bucket_name(&name)?;
                let dir = crate::buckets::store_root(&self.root, "S3", &name);
                if crate::buckets::bucket_region(&dir).is_some() {
                    return Err(format!("{name} already exists"));
                }
                reserve(&name)?;
                crate::buckets::claim_bucket(&dir, region)?;
                let attrs = [
                    ("Arn", format!("arn:aws:s3:::{name}")),
                    ("DomainName", format!("{name}.s3.amazonaws.com")),
                    ("RegionalDomainName", format!("{name}.s3.{region}.amazonaws.com")),
                    (
                        "DualStackDomainName",
                        format!("{name}.s3.dualstack.{region}.amazonaws.com"),
                    ),
                    ("WebsiteURL", format!("http://{name}.s3-website-{region}.amazonaws.com")),
                ];
                (name, strings(&attrs))
            }
            "AWS::Events::Rule" => {
                let name = named("Name", 64);
                let bus = str_prop(props, "EventBusName").filter(|b| *b != "default");
                let path = match bus {
                    // a bus given by ARN is named by its last part
                    Some(b) => format!("rule/{}/{name}", b.rsplit('/').next().unwrap_or(b)),
                    None => format!("rule/{name}"),
                };
                let a = arn("events", path);
                (a.clone(), strings(&[("Arn", a)]))
            }
            "AWS::KMS::Key" => {
                let id = uuid_like();
                let a = arn("kms", format!("key/{id}"));
                (id.clone(), strings(&[("Arn", a), ("KeyId", id)]))
            }
            "AWS::KMS::Alias" => {
                let name = str_prop(props, "AliasName")
                    .ok_or("Properties validation failed: required key [AliasName] not found")?;
                (name.to_string(), BTreeMap::new())
            }
            "AWS::SecretsManager::Secret" => {
                let name = named("Name", 512);
                let store =
                    meridian_buildspec::secrets::SecretStore::open(&self.inner.data_dir).map_err(|e| e.to_string())?;
                if store
                    .get(region, meridian_buildspec::secrets::Kind::Secret, &name)
                    .map_err(|e| e.to_string())?
                    .is_some()
                {
                    return Err(format!(
                        "The operation failed because the secret {name} already exists."
                    ));
                }
                self.put_secret(region, &name, props)?;
                // Secrets Manager appends six random characters to the name in the ARN.
                let suffix: String = random_suffix()
                    .chars()
                    .filter(|c| c.is_ascii_alphanumeric())
                    .take(6)
                    .collect();
                let a = arn("secretsmanager", format!("secret:{name}-{suffix}"));
                (a.clone(), strings(&[("Id", a)]))
            }
            "AWS::SecretsManager::ResourcePolicy" => {
                let secret = str_prop(props, "SecretId")
                    .ok_or("Properties validation failed: required key [SecretId] not found")?;
                (secret.to_string(), strings(&[("Id", secret.to_string())]))
            }
            "AWS::SQS::Queue" => {
                let fifo = bool_prop(props, "FifoQueue");
                let name = str_prop(props, "QueueName").map(String::from).unwrap_or_else(|| {
                    if fifo {
                        format!("{}.fifo", generated_name(stack, lid, 75))
                    } else {
                        generated_name(stack, lid, 80)
                    }
                });
                if fifo != name.ends_with(".fifo") {
                    return Err(if fifo {
                        format!("The name of a FIFO queue can only include alphanumeric characters, hyphens, or underscores, must end with .fifo suffix: `{name}`")
                    } else {
                        format!("The name of a standard queue cannot end with .fifo (set FifoQueue: true for a FIFO queue): `{name}`")
                    });
                }
                let url = format!("https://sqs.{region}.amazonaws.com/{LOCAL_ACCOUNT_ID}/{name}");
                let attrs = [
                    ("Arn", arn("sqs", name.clone())),
                    ("QueueName", name.clone()),
                    ("QueueUrl", url.clone()),
                ];
                (url, strings(&attrs))
            }
            "AWS::SNS::Topic" => {
                let fifo = bool_prop(props, "FifoTopic");
                let name = str_prop(props, "TopicName").map(String::from).unwrap_or_else(|| {
                    if fifo {
                        format!("{}.fifo", generated_name(stack, lid, 251))
                    } else {
                        generated_name(stack, lid, 256)
                    }
                });
                let a = arn("sns", name.clone());
                (a.clone(), strings(&[("TopicArn", a), ("TopicName", name)]))
            }
            "AWS::DynamoDB::Table" => {
                let name = named("TableName", 255);
                let a = arn("dynamodb", format!("table/{name}"));
                let mut attrs = vec![("Arn", a.clone())];
                if props.get("StreamSpecification").is_some() {
                    attrs.push(("StreamArn", format!("{a}/stream/{}", stream_label())));
                }
                (name, strings(&attrs))
            }
            "AWS::ApiGatewayV2::Api" => {
                crate::apigw::check_api(props)?;
                let id = meridian_core::random::alphanumeric(10).to_ascii_lowercase();
                let endpoint = format!("https://{id}.execute-api.{region}.amazonaws.com");
                (id.clone(), strings(&[("ApiId", id), ("ApiEndpoint", endpoint)]))
            }
            "AWS::ApiGatewayV2::Route" => {
                check_api_child(props)?;
                let key = str_prop(props, "RouteKey")
                    .ok_or("Properties validation failed: required key [RouteKey] not found")?;
                crate::apigw::parse_route_key(key)?;
                if let Some(t) = str_prop(props, "Target") {
                    if !t.starts_with("integrations/") {
                        return Err(format!("Target `{t}` must be `integrations/INTEGRATION_ID`"));
                    }
                }
                let id = meridian_core::random::alphanumeric(7).to_ascii_lowercase();
                (id.clone(), strings(&[("RouteId", id)]))
            }
            "AWS::ApiGatewayV2::Integration" => {
                check_api_child(props)?;
                crate::apigw::integration_of(props)?;
                let id = meridian_core::random::alphanumeric(7).to_ascii_lowercase();
                (id.clone(), strings(&[("IntegrationId", id)]))
            }
            "AWS::ApiGatewayV2::Stage" => {
                check_api_child(props)?;
                let name = str_prop(props, "StageName")
                    .ok_or("Properties validation failed: required key [StageName] not found")?;
                if name != "$default"
                    && (name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_'))
                {
                    return Err(format!(
                        "Stage name `{name}` is invalid: use `$default` or letters, digits, `-` and `_`"
                    ));
                }
                (name.to_string(), BTreeMap::new())
            }
            "AWS::CloudFormation::Macro" => {
                let name =
                    str_prop(props, "Name").ok_or("Properties validation failed: required key [Name] not found")?;
                if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-') {
                    return Err(format!(
                        "Macro name `{name}` is invalid: use letters, digits, `_` and `-`"
                    ));
                }
                let function = str_prop(props, "FunctionName")
                    .ok_or("Properties validation failed: required key [FunctionName] not found")?;
                host.resolve(&rid, function, None)
                    .map_err(|e| format!("the macro's function {function}: {e}"))?;
                if self.macros_of_region(region)?.contains_key(name) {
                    return Err(format!(
                        "Macro {name} already exists in {region} (another stack made it)"
                    ));
                }
                (name.to_string(), BTreeMap::new())
            }
            "AWS::ApiGateway::RestApi" => {
                crate::rest_api::check_rest_api(props)?;
                let id = meridian_core::random::alphanumeric(10).to_ascii_lowercase();
                let root = meridian_core::random::alphanumeric(10).to_ascii_lowercase();
                (id, strings(&[("RootResourceId", root)]))
            }
            "AWS::ApiGateway::Resource" => {
                check_rest_child(props)?;
                for k in ["ParentId", "PathPart"] {
                    if str_prop(props, k).is_none() {
                        return Err(format!("Properties validation failed: required key [{k}] not found"));
                    }
                }
                let part = str_prop(props, "PathPart").unwrap_or_default();
                crate::apigw::parse_route_key(&format!("GET /{part}")).map_err(|_| {
                    format!("PathPart `{part}` is invalid: a path part is a name, `{{param}}` or `{{proxy+}}`")
                })?;
                let id = meridian_core::random::alphanumeric(6).to_ascii_lowercase();
                (id.clone(), strings(&[("ResourceId", id)]))
            }
            "AWS::ApiGateway::Method" => {
                check_rest_child(props)?;
                for k in ["ResourceId", "HttpMethod"] {
                    if str_prop(props, k).is_none() {
                        return Err(format!("Properties validation failed: required key [{k}] not found"));
                    }
                }
                crate::rest_api::method_integration(props)?;
                let id = meridian_core::random::alphanumeric(10).to_ascii_lowercase();
                (id, BTreeMap::new())
            }
            "AWS::ApiGateway::Deployment" => {
                check_rest_child(props)?;
                let id = meridian_core::random::alphanumeric(6).to_ascii_lowercase();
                (id.clone(), strings(&[("DeploymentId", id)]))
            }
            "AWS::ApiGateway::Stage" => {
                check_rest_child(props)?;
                let name = str_prop(props, "StageName")
                    .ok_or("Properties validation failed: required key [StageName] not found")?;
                if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_') {
                    return Err(format!(
                        "Stage name `{name}` is invalid: use letters, digits, `-` and `_`"
                    ));
                }
                (name.to_string(), BTreeMap::new())
            }
            "AWS::ApiGatewayV2::Deployment" => {
                check_api_child(props)?;
                let id = meridian_core::random::alphanumeric(6).to_ascii_lowercase();
                (id.clone(), strings(&[("DeploymentId", id)]))
            }
            "AWS::CodeDeploy::Application" => (named("ApplicationName", 100), BTreeMap::new()),
            "AWS::CodeDeploy::DeploymentGroup" => (named("DeploymentGroupName", 100), BTreeMap::new()),
            "AWS::CodeDeploy::DeploymentConfig" => (named("DeploymentConfigName", 100), BTreeMap::new()),
            _ => (generated_name(stack, lid, 64), BTreeMap::new()),
        })
    }

    #[allow(clippy::too_many_arguments)]
    fn update_resource(
        &self,
        region: &str,
        stack: &str,
        r: &meridian_template::Resource,
        old: &Row,
        props: &Value,
        ev: &Evaluator,
        delivery: &DeliveryOptions,
        log: &dyn Fn(&str),
        driver: Option<&Arc<dyn AliasShifter>>,
    ) -> Result<BTreeMap<String, Value>, String> {
        let rid = Self::region(region)?;
        let host = &self.inner.host;
        let d = &old.deployed;
        let changed = plan::changed_properties(&d.properties, props);
        match r.type_.as_str() {
            "AWS::Lambda::Function" => {
                let name = d.physical_id.clone();
                let runtime = str_prop(props, "Runtime").unwrap_or_default();
                if changed.iter().any(|c| c == "Code") {
                    host.update_function_code(&rid, &name, &self.code_source(region, props, runtime)?)
                        .map_err(|e| e.to_string())?;
                }
                let cfg = function_config(props);
                host.update_function_configuration(&rid, &name, cfg)
                    .map_err(|e| e.to_string())?;
                if changed.iter().any(|c| c == "ReservedConcurrentExecutions") {
                    host.put_function_concurrency(&rid, &name, num_prop(props, "ReservedConcurrentExecutions"))
                        .map_err(|e| e.to_string())?;
                }
                Ok(d.attributes.clone())
            }
            "AWS::Lambda::Alias" => {
                let f = function_name_of(str_prop(props, "FunctionName").unwrap_or_default());
                let name = str_prop(props, "Name").unwrap_or_default();
                let to = str_prop(props, "FunctionVersion").unwrap_or_default();
                let from = str_prop(&d.properties, "FunctionVersion").unwrap_or_default();
                // The engine's driver for this operation, else this region's own.
                let shifter = driver
                    .cloned()
                    .or_else(|| self.inner.shifter.lock().ok().and_then(|s| s.clone()));
                let policy = r
                    .update_policy
                    .as_ref()
                    .and_then(|u| u.get("CodeDeployLambdaAliasUpdate"));
                if let (Some(policy), Some(shifter), true) = (policy, shifter, from != to) {
                    let mut dep = self.alias_deployment(region, stack, &f, name, from, to, policy, ev)?;
                    dep.options = delivery.clone();
                    shifter.shift(&dep, log)?;
                } else {
                    host.update_alias(
                        &rid,
                        &f,
                        name,
                        Some(to),
                        Some(routing(props)),
                        str_prop(props, "Description"),
                    )
                    .map_err(|e| e.to_string())?;
                }
                Ok(d.attributes.clone())
            }
            "AWS::SSM::Parameter" => {
                let value = self.put_parameter(region, &d.physical_id, props)?;
                let mut a = d.attributes.clone();
                a.insert("Value".into(), Value::String(value));
                Ok(a)
            }
            "AWS::ApiGatewayV2::Api" => {
                crate::apigw::check_api(props)?;
                Ok(d.attributes.clone())
            }
            "AWS::ApiGatewayV2::Integration" => {
                crate::apigw::integration_of(props)?;
                Ok(d.attributes.clone())
            }
            "AWS::ApiGateway::RestApi" => {
                crate::rest_api::check_rest_api(props)?;
                Ok(d.attributes.clone())
            }
            "AWS::ApiGateway::Method" => {
                crate::rest_api::method_integration(props)?;
                Ok(d.attributes.clone())
            }
            "AWS::ApiGatewayV2::Route" => {
                crate::apigw::parse_route_key(str_prop(props, "RouteKey").unwrap_or_default())?;
                Ok(d.attributes.clone())
            }
            "AWS::SecretsManager::Secret" => {
                if changed
                    .iter()
                    .any(|c| c == "SecretString" || c == "GenerateSecretString")
                {
                    self.put_secret(region, &secret_name_of(&d.physical_id), props)?;
                }
                Ok(d.attributes.clone())
            }
            _ => Ok(d.attributes.clone()),
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn alias_deployment(
        &self,
        region: &str,
        stack: &str,
        function: &str,
        alias: &str,
        from: &str,
        to: &str,
        policy: &Value,
        ev: &Evaluator,
    ) -> Result<AliasDeployment, String> {
        let policy = ev.eval(policy)?.unwrap_or(Value::Null);
        let group_name = str_prop(&policy, "DeploymentGroupName").unwrap_or_default().to_string();
        let s = self.stack_row(region, stack)?.ok_or_else(|| no_stack(stack, region))?;
        let rows = self.rows(&s.id)?;
        let group = rows
            .values()
            .find(|r| r.deployed.type_ == "AWS::CodeDeploy::DeploymentGroup" && r.deployed.physical_id == group_name)
            .map(|r| r.deployed.properties.clone())
            .unwrap_or(Value::Null);
        let mut alarms = BTreeMap::new();
        for a in group
            .get("AlarmConfiguration")
            .and_then(|c| c.get("Alarms"))
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            if let Some(n) = a.get("Name").and_then(Value::as_str) {
                let props = rows
                    .values()
                    .find(|r| r.deployed.type_ == "AWS::CloudWatch::Alarm" && r.deployed.physical_id == n)
                    .map(|r| r.deployed.properties.clone())
                    .unwrap_or(Value::Null);
                alarms.insert(n.to_string(), props);
            }
        }
        let hook = |k: &str| policy.get(k).and_then(Value::as_str).map(function_name_of);
        // A custom configuration is a DeploymentConfig resource of the stack (by physical name).
        let deployment_config = group.get("DeploymentConfigName").and_then(Value::as_str).and_then(|n| {
            rows.values()
                .find(|r| r.deployed.type_ == "AWS::CodeDeploy::DeploymentConfig" && r.deployed.physical_id == n)
                .map(|r| r.deployed.properties.clone())
        });
        Ok(AliasDeployment {
            region: region.to_string(),
            stack_name: stack.to_string(),
            function: function.to_string(),
            alias: alias.to_string(),
            from_version: from.to_string(),
            to_version: to.to_string(),
            deployment_group: group,
            alarms,
            before_hook: hook("BeforeAllowTrafficHook"),
            after_hook: hook("AfterAllowTrafficHook"),
            deployment_config,
            options: DeliveryOptions::default(),
        })
    }

    /// Puts a resource back to earlier properties (update rollback).
    fn restore_resource(&self, region: &str, _stack: &str, old: &Row) -> Result<BTreeMap<String, Value>, String> {
        let rid = Self::region(region)?;
        let host = &self.inner.host;
        let d = &old.deployed;
        let props = &d.properties;
        match d.type_.as_str() {
            "AWS::Lambda::Function" => {
                let runtime = str_prop(props, "Runtime").unwrap_or_default();
                host.update_function_code(&rid, &d.physical_id, &self.code_source(region, props, runtime)?)
                    .map_err(|e| e.to_string())?;
                let cfg = function_config(props);
                host.update_function_configuration(&rid, &d.physical_id, cfg)
                    .map_err(|e| e.to_string())?;
            }
            "AWS::Lambda::Alias" => {
                let f = function_name_of(str_prop(props, "FunctionName").unwrap_or_default());
                host.update_alias(
                    &rid,
                    &f,
                    str_prop(props, "Name").unwrap_or_default(),
                    str_prop(props, "FunctionVersion"),
                    Some(routing(props)),
                    None,
                )
                .map_err(|e| e.to_string())?;
            }
            "AWS::SSM::Parameter" => {
                self.put_parameter(region, &d.physical_id, props)?;
            }
            "AWS::SecretsManager::Secret" => {
                self.put_secret(region, &secret_name_of(&d.physical_id), props)?;
            }
            _ => {}
        }
        Ok(d.attributes.clone())
    }

    /// Writes an `AWS::SSM::Parameter`'s value into the region's parameter store.
    fn put_parameter(&self, region: &str, name: &str, props: &Value) -> Result<String, String> {
        let value = props
            .get("Value")
            .map(|v| v.as_str().map(String::from).unwrap_or_else(|| v.to_string()))
            .unwrap_or_default();
        let store = meridian_buildspec::secrets::SecretStore::open(&self.inner.data_dir).map_err(|e| e.to_string())?;
        store
            .put(region, meridian_buildspec::secrets::Kind::Parameter, name, &value)
            .map_err(|e| e.to_string())?;
        Ok(value)
    }

    /// Writes a secret's value (`SecretString`, or one made as `GenerateSecretString` asks) into
    /// the region's secrets store as its new `AWSCURRENT` version; a secret with neither is empty.
    fn put_secret(&self, region: &str, name: &str, props: &Value) -> Result<(), String> {
        let value = match (props.get("SecretString"), props.get("GenerateSecretString")) {
            (Some(v), _) => v.as_str().map(String::from).unwrap_or_else(|| v.to_string()),
            (None, Some(g)) => generate_secret(g)?,
            (None, None) => return Ok(()),
        };
        let store = meridian_buildspec::secrets::SecretStore::open(&self.inner.data_dir).map_err(|e| e.to_string())?;
        store
            .put(region, meridian_buildspec::secrets::Kind::Secret, name, &value)
            .map_err(|e| e.to_string())?;
        Ok(())
    }

    fn delete_resource(&self, region: &str, row: &Row) -> Result<(), String> {
        let rid = Self::region(region)?;
        let d = &row.deployed;
        match d.type_.as_str() {
            "AWS::Lambda::Function" => match self.inner.host.delete_function(&rid, &d.physical_id) {
                Ok(()) => Ok(()),
                Err(crate::LambdaError::FunctionNotFound { .. }) => Ok(()),
                Err(e) => Err(e.to_string()),
            },
            "AWS::SecretsManager::Secret" => {
                let store =
                    meridian_buildspec::secrets::SecretStore::open(&self.inner.data_dir).map_err(|e| e.to_string())?;
                store
                    .delete(
                        region,
                        meridian_buildspec::secrets::Kind::Secret,
                        &secret_name_of(&d.physical_id),
                    )
                    .map_err(|e| e.to_string())?;
                Ok(())
            }
            "AWS::S3::Bucket" => {
                let dir = crate::buckets::store_root(&self.root, "S3", &d.physical_id);
                if crate::buckets::bucket_region(&dir).as_deref() != Some(region) {
                    return Ok(());
                }
                let not_empty = std::fs::read_dir(&dir)
                    .map(|entries| {
                        entries
                            .filter_map(Result::ok)
                            .any(|e| e.file_name() != std::ffi::OsStr::new(crate::buckets::BUCKET_REGION_FILE))
                    })
                    .unwrap_or(false);
                if not_empty {
                    return Err(format!(
                        "The bucket you tried to delete is not empty (bucket {}): empty it, or give the resource `DeletionPolicy: Retain`",
                        d.physical_id
                    ));
                }
                std::fs::remove_dir_all(&dir)
                    .map_err(|e| format!("cannot delete the local bucket {}: {e}", dir.display()))
            }
            _ => Ok(()),
        }
    }

    /// Zips local code paths of a template (as `sam deploy` does) into the region's default local
    /// bucket, `meridian-local-<region>`, and returns the packaged template's path.
    pub fn package_local_code(&self, template: &Path, region: &str, out_dir: &Path) -> Result<PathBuf, String> {
        let bucket = format!("meridian-local-{region}");
        let root = crate::buckets::store_root(&self.root, "S3", &bucket);
        crate::buckets::claim_bucket(&root, region)?;
        struct Store {
            root: PathBuf,
            bucket: String,
        }
        impl meridian_buildspec::package::PackageStore for Store {
            fn put(
                &self,
                _region: &str,
                bytes: Vec<u8>,
            ) -> Result<meridian_buildspec::package::StoredObject, meridian_buildspec::package::StoreError>
            {
                let hexd = meridian_core::Digest::of(&bytes).hex();
                let key = format!("sha256/{hexd}.zip");
                let path = self.root.join(&key);
                if !path.exists() {
                    std::fs::create_dir_all(path.parent().expect("key has a directory"))?;
                    let tmp = path.with_extension("tmp");
                    std::fs::write(&tmp, &bytes)?;
                    std::fs::rename(&tmp, &path)?;
                }
                Ok(meridian_buildspec::package::StoredObject {
                    bucket: self.bucket.clone(),
                    key,
                })
            }
        }
        std::fs::create_dir_all(out_dir).map_err(|e| e.to_string())?;
        let outcome =
            meridian_buildspec::package::package(template, &[region.to_string()], &Store { root, bucket }, out_dir)
                .map_err(|e| e.to_string())?;
        outcome
            .templates
            .into_iter()
            .map(|(_, p)| p)
            .next()
            .ok_or_else(|| "packaging produced no template".to_string())
    }
}

/// Outputs or exports by name.
type Named = BTreeMap<String, String>;

/// A stack's new status; `updated` moves except when it leaves REVIEW_IN_PROGRESS (a create).
fn update_status(c: &Connection, region: &str, name: &str, status: &str, reason: Option<&str>) -> rusqlite::Result<()> {
    c.execute(
        "UPDATE stacks SET status=?3, reason=?4, updated=CASE WHEN status='REVIEW_IN_PROGRESS' THEN updated ELSE ?5 END WHERE region=?1 AND name=?2",
        params![region, name, status, reason, now()],
    )
    .map(|_| ())
}

fn log_event(log: &dyn Fn(&str), status: &str, type_: &str, logical: &str, reason: Option<&str>) {
    log(&format!(
        "{status:<36} {type_:<34} {logical}{}",
        reason.map(|r| format!("  {r}")).unwrap_or_default()
    ));
}

fn insert_event(
    c: &Connection,
    stack_id: &str,
    logical: &str,
    physical: &str,
    type_: &str,
    status: &str,
    reason: Option<&str>,
) -> rusqlite::Result<()> {
    c.execute(
        "INSERT INTO events (stack_id, at, logical_id, physical_id, type, status, reason) VALUES (?1,?2,?3,?4,?5,?6,?7)",
        params![stack_id, now(), logical, physical, type_, status, reason],
    )
    .map(|_| ())
}

fn read_rows(c: &Connection, stack_id: &str) -> rusqlite::Result<BTreeMap<String, Row>> {
    let mut st = c.prepare(
        "SELECT logical_id, type, physical_id, status, properties, attributes, placeholder, retain, update_policy FROM resources WHERE stack_id=?1",
    )?;
    let rows = st
        .query_map([stack_id], |r| {
            let props: String = r.get(4)?;
            let attrs: String = r.get(5)?;
            let up: Option<String> = r.get(8)?;
            Ok(Row {
                deployed: Deployed {
                    logical_id: r.get(0)?,
                    type_: r.get(1)?,
                    physical_id: r.get(2)?,
                    properties: serde_json::from_str(&props).unwrap_or(Value::Null),
                    attributes: serde_json::from_str(&attrs).unwrap_or_default(),
                },
                status: r.get(3)?,
                placeholder: r.get::<_, i64>(6)? != 0,
                retain: r.get::<_, i64>(7)? != 0,
                update_policy: up.and_then(|s| serde_json::from_str(&s).ok()),
            })
        })?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    Ok(rows.into_iter().map(|r| (r.deployed.logical_id.clone(), r)).collect())
}

fn no_stack(name: &str, region: &str) -> String {
    format!("Stack with id {name} does not exist (region {region})")
}

/// An API's route, integration, stage or deployment names its API.
fn check_api_child(props: &Value) -> Result<(), String> {
    match str_prop(props, "ApiId") {
        Some(id) if !id.is_empty() => Ok(()),
        _ => Err("Properties validation failed: required key [ApiId] not found".into()),
    }
}

/// What an API's resources are: its own type, the types that name it, and the property that does.
struct ApiKind {
    api: &'static str,
    children: &'static str,
    id_property: &'static str,
}

/// A region's macros for the template engine: each name's function, invoked on the Lambda host.
#[derive(Debug)]
struct LocalMacros {
    functions: BTreeMap<String, String>,
    host: LambdaHost,
    region: String,
}

impl meridian_template::include::Macros for LocalMacros {
    fn exists(&self, name: &str) -> bool {
        self.functions.contains_key(name)
    }

    fn invoke(&self, name: &str, event: &Value) -> Result<Value, String> {
        let function = self
            .functions
            .get(name)
            .ok_or_else(|| format!("no macro {name}"))?
            .clone();
        let region = Self::region_id(&self.region)?;
        let host = self.host.clone();
        let payload = event.to_string();
        // The template is read from synchronous code that may itself run on a runtime: the
        // invocation runs on a thread of its own, on the macros' runtime.
        let answer = std::thread::spawn(move || {
            macro_runtime()?
                .block_on(host.invoke(&region, crate::InvokeRequest::new(&function, payload)))
                .map_err(|e| e.to_string())
        })
        .join()
        .map_err(|_| "the macro's invocation panicked".to_string())??;
        if let Some(kind) = &answer.function_error {
            return Err(format!(
                "the macro's function failed ({kind}): {}",
                String::from_utf8_lossy(&answer.payload)
            ));
        }
        serde_json::from_slice(&answer.payload).map_err(|e| format!("the macro's answer is not JSON: {e}"))
    }
}

impl LocalMacros {
    fn region_id(region: &str) -> Result<RegionId, String> {
        RegionId::new(region).map_err(|e| e.to_string())
    }
}

/// The runtime macro invocations run on (one for the process: the Lambda host keeps warm
/// environments between invocations).
fn macro_runtime() -> Result<&'static tokio::runtime::Runtime, String> {
    static RT: std::sync::OnceLock<Result<tokio::runtime::Runtime, String>> = std::sync::OnceLock::new();
    RT.get_or_init(|| {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("meridian-macros")
            .enable_all()
            .build()
            .map_err(|e| format!("cannot start the macros' runtime: {e}"))
    })
    .as_ref()
    .map_err(Clone::clone)
}

fn check_rest_child(props: &Value) -> Result<(), String> {
    match str_prop(props, "RestApiId") {
        Some(id) if !id.is_empty() => Ok(()),
        _ => Err("Properties validation failed: required key [RestApiId] not found".into()),
    }
}

fn is_supported(t: &str) -> bool {
    DEPLOYED_TYPES.contains(&t) || RECORDED_TYPES.contains(&t)
}

fn routing(props: &Value) -> BTreeMap<String, f64> {
    props
        .get("RoutingConfig")
        .and_then(|r| r.get("AdditionalVersionWeights"))
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(|w| {
                    let v = w.get("FunctionVersion")?.as_str()?.to_string();
                    let weight = match w.get("FunctionWeight")? {
                        Value::Number(n) => n.as_f64()?,
                        Value::String(s) => s.parse().ok()?,
                        _ => return None,
                    };
                    Some((v, weight))
                })
                .collect()
        })
        .unwrap_or_default()
}

fn base64_of_hex(h: &str) -> String {
    use base64::Engine as _;
    let bytes: Vec<u8> = (0..h.len() / 2)
        .filter_map(|i| u8::from_str_radix(&h[2 * i..2 * i + 2], 16).ok())
        .collect();
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

fn inline_zip(name: &str, text: &str) -> Result<Vec<u8>, String> {
    use std::io::Write;
    let mut buf = std::io::Cursor::new(Vec::new());
    {
        let mut z = zip::ZipWriter::new(&mut buf);
        let opts = zip::write::SimpleFileOptions::default()
            .last_modified_time(zip::DateTime::default())
            .unix_permissions(0o644);
        z.start_file(name, opts).map_err(|e| e.to_string())?;
        z.write_all(text.as_bytes()).map_err(|e| e.to_string())?;
        z.finish().map_err(|e| e.to_string())?;
    }
    Ok(buf.into_inner())
}

/// A change set as `describe-change-set` shows it.
#[derive(Debug, Clone, serde::Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct ChangeSetInfo {
    pub change_set_name: String,
    pub change_set_id: String,
    pub stack_name: String,
    pub status: String,
    pub execution_status: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status_reason: Option<String>,
    pub changes: Vec<Change>,
    pub creation_time: String,
}

impl ChangeSetInfo {
    /// One line per change, as a table.
    pub fn lines(&self) -> Vec<String> {
        let mut out = vec![format!(
            "change set {} for stack {}: {} ({})",
            self.change_set_name, self.stack_name, self.status, self.execution_status
        )];
        if let Some(r) = &self.status_reason {
            out.push(format!("  {r}"));
        }
        for c in &self.changes {
            let repl = match c.replacement {
                Some(Replacement::True) => "True",
                Some(Replacement::False) => "False",
                Some(Replacement::Conditional) => "Conditional",
                None => "-",
            };
            out.push(format!(
                "  {:<7} {:<32} {:<34} replacement={repl}{}",
                format!("{:?}", c.action),
                c.logical_resource_id,
                c.resource_type,
                if c.details.is_empty() {
                    String::new()
                } else {
                    format!(" ({})", c.details.join(", "))
                }
            ));
            // each changed property's values, cut (the JSON output has them whole)
            for name in &c.details {
                let shown = |ctx: &Option<Value>| -> String {
                    match ctx.as_ref().and_then(|v| v.get(name)) {
                        None => "(none)".to_string(),
                        Some(Value::String(s)) => cut(s, 60),
                        Some(v) => cut(&v.to_string(), 60),
                    }
                };
                out.push(format!(
                    "            {name}: {} -> {}",
                    shown(&c.before_context),
                    shown(&c.after_context)
                ));
            }
        }
        out
    }
}

/// `s` cut to `max` characters, with `…` where it was cut.
fn cut(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        return s.to_string();
    }
    format!("{}…", s.chars().take(max).collect::<String>())
}

#[derive(Debug, Clone, serde::Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct StackEvent {
    pub timestamp: String,
    pub logical_resource_id: String,
    pub physical_resource_id: String,
    pub resource_type: String,
    pub resource_status: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub resource_status_reason: Option<String>,
}

#[derive(Debug, Clone, serde::Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct ResourceInfo {
    pub logical_resource_id: String,
    pub resource_type: String,
    pub physical_resource_id: String,
    pub resource_status: String,
    /// How the local region treats it: deployed, recorded, or a placeholder.
    pub local: String,
}

/// The stack operations as CloudFormation's API offers them; they block (SQLite, the Lambda host,
/// traffic shifting), so the async port below runs them on blocking threads.
impl LocalStacks {
    pub fn describe_stack(&self, region: &str, stack: &str) -> Result<Option<StackInfo>, String> {
        Ok(self.stack_row(region, stack)?.map(|s| self.info(region, stack, &s)))
    }

    /// Creates or updates the stack now. Alias moves go through `driver` when given, else
    /// through the driver set with [`LocalStacks::set_shifter`].
    pub fn deploy(
        &self,
        req: &StackRequest,
        log: &dyn Fn(&str),
        driver: Option<&Arc<dyn AliasShifter>>,
    ) -> Result<StackOutcome, String> {
        let p = Self::prepared(req)?;
        self.apply(&req.region, &req.stack_name, &p, true, log, driver)
    }

    pub fn create_change_set(&self, req: &StackRequest) -> Result<Vec<String>, String> {
        Ok(self.create_change_set_named(req)?.lines())
    }

    pub fn execute_change_set(
        &self,
        region: &str,
        stack: &str,
        change_set: &str,
        log: &dyn Fn(&str),
        driver: Option<&Arc<dyn AliasShifter>>,
    ) -> Result<StackOutcome, String> {
        let cs = self.describe_change_set(region, stack, change_set)?;
        if cs.execution_status != "AVAILABLE" {
            return Err(format!(
                "ChangeSet [{}] cannot be executed in its current execution status of [{}]{}",
                cs.change_set_id,
                cs.execution_status,
                cs.status_reason.map(|r| format!(": {r}")).unwrap_or_default()
            ));
        }
        let prepared: String = self.db(|c| {
            c.query_row(
                "SELECT prepared FROM change_sets WHERE region=?1 AND stack=?2 AND name=?3",
                params![region, stack, change_set],
                |r| r.get(0),
            )
        })?;
        let p: Prepared = serde_json::from_str(&prepared).map_err(|e| e.to_string())?;
        // Claimed atomically: a change set runs once, even when two processes execute it.
        let claimed = self.db(|c| {
            c.execute(
                "UPDATE change_sets SET execution_status='EXECUTE_IN_PROGRESS' WHERE region=?1 AND stack=?2 AND name=?3 AND execution_status='AVAILABLE'",
                params![region, stack, change_set],
            )
        })?;
        if claimed != 1 {
            let now = self.describe_change_set(region, stack, change_set)?;
            return Err(format!(
                "ChangeSet [{}] cannot be executed in its current execution status of [{}]",
                now.change_set_id, now.execution_status
            ));
        }
        let res = self.apply(region, stack, &p, false, log, driver);
        let status = if res.is_ok() {
            "EXECUTE_COMPLETE"
        } else {
            "EXECUTE_FAILED"
        };
        self.db(|c| {
            c.execute(
                "UPDATE change_sets SET execution_status=?4 WHERE region=?1 AND stack=?2 AND name=?3",
                params![region, stack, change_set, status],
            )?;
            // Other change sets of the stack were made against the old state.
            c.execute(
                "UPDATE change_sets SET execution_status='OBSOLETE' WHERE region=?1 AND stack=?2 AND name<>?3 AND execution_status='AVAILABLE'",
                params![region, stack, change_set],
            )
            .map(|_| ())
        })?;
        res
    }

    pub fn live_functions(&self, region: &str, stack: &str) -> Result<Vec<LiveFunction>, String> {
        let Some(s) = self.stack_row(region, stack)? else {
            return Ok(Vec::new());
        };
        let rid = Self::region(region)?;
        let mut out = Vec::new();
        for r in self.rows(&s.id)?.values() {
            if r.deployed.type_ != "AWS::Lambda::Alias" {
                continue;
            }
            let props = &r.deployed.properties;
            let function = function_name_of(str_prop(props, "FunctionName").unwrap_or_default());
            let alias = str_prop(props, "Name").unwrap_or_default().to_string();
            // What the alias serves now, from the host (a shift may have moved it).
            let version = match self.inner.host.get_alias(&rid, &function, &alias) {
                Ok(a) => a.function_version,
                Err(_) => str_prop(props, "FunctionVersion").unwrap_or_default().to_string(),
            };
            out.push(LiveFunction {
                function,
                alias,
                version,
            });
        }
        out.sort_by(|a, b| (&a.function, &a.alias).cmp(&(&b.function, &b.alias)));
        Ok(out)
    }
}

impl LocalStacks {
    /// Runs a stack operation on a blocking thread, with its log lines sent to `log`.
    fn blocking<'a, T: Send + 'static>(
        &self,
        op: impl FnOnce(&LocalStacks, &dyn Fn(&str)) -> Result<T, String> + Send + 'static,
        log: Say,
    ) -> BoxFuture<'a, Result<T, RegionError>> {
        let me = self.clone();
        Box::pin(async move {
            tokio::task::spawn_blocking(move || op(&me, &|l: &str| log(l)))
                .await
                .map_err(|e| RegionError::permanent(format!("the stack operation stopped: {e}")))?
                .map_err(RegionError::from)
        })
    }
}

impl StackDeployer for LocalStacks {
    fn describe_stack<'a>(
        &'a self,
        region: &'a str,
        stack: &'a str,
    ) -> BoxFuture<'a, Result<Option<StackInfo>, RegionError>> {
        let (r, s) = (region.to_string(), stack.to_string());
        self.blocking(move |me, _| me.describe_stack(&r, &s), Arc::new(|_: &str| {}))
    }

    fn deploy<'a>(
        &'a self,
        req: &'a StackRequest,
        progress: Progress,
    ) -> BoxFuture<'a, Result<StackOutcome, RegionError>> {
        let req = req.clone();
        let driver = progress.shifter;
        self.blocking(move |me, log| me.deploy(&req, log, driver.as_ref()), progress.say)
    }

    fn create_change_set<'a>(
        &'a self,
        req: &'a StackRequest,
        log: Say,
    ) -> BoxFuture<'a, Result<Vec<String>, RegionError>> {
        let req = req.clone();
        self.blocking(move |me, _| me.create_change_set(&req), log)
    }

    fn execute_change_set<'a>(
        &'a self,
        region: &'a str,
        stack: &'a str,
        change_set: &'a str,
        progress: Progress,
    ) -> BoxFuture<'a, Result<StackOutcome, RegionError>> {
        let (r, s, c) = (region.to_string(), stack.to_string(), change_set.to_string());
        let driver = progress.shifter;
        self.blocking(
            move |me, log| me.execute_change_set(&r, &s, &c, log, driver.as_ref()),
            progress.say,
        )
    }

    fn delete_stack<'a>(&'a self, region: &'a str, stack: &'a str, log: Say) -> BoxFuture<'a, Result<(), RegionError>> {
        let (r, s) = (region.to_string(), stack.to_string());
        self.blocking(move |me, log| me.delete(&r, &s, log), log)
    }

    fn live_functions<'a>(
        &'a self,
        region: &'a str,
        stack: &'a str,
    ) -> BoxFuture<'a, Result<Vec<LiveFunction>, RegionError>> {
        let (r, s) = (region.to_string(), stack.to_string());
        self.blocking(move |me, _| me.live_functions(&r, &s), Arc::new(|_: &str| {}))
    }
}
