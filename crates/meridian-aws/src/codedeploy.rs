//! The CodeDeploy deployments that CloudFormation starts, followed.
//!
//! A template sent to CloudFormation with its `Transform` (a pipeline's own `CHANGE_SET_REPLACE`
//! and `CHANGE_SET_EXECUTE` actions, or a template Meridian's transform cannot process) keeps
//! its aliases under `UpdatePolicy: CodeDeployLambdaAliasUpdate`: CloudFormation hands each
//! alias's move to CodeDeploy and waits for it. While the change set executes, Meridian finds
//! those deployments (the stack's deployment groups, `ListDeployments` since the execution
//! began), reads which alias and versions each moves from its AppSpec (`GetDeployment`), and
//! gives each to the engine's delivery driver to follow ([`meridian_region::stacks::AliasShifter::follow`]):
//! status, the alias's weights (`GetAlias`), hook results (`GetDeploymentTarget`), the judge's
//! verdicts, and `StopDeployment` (with automatic rollback) when the judge or an operator says so.

use aws_sdk_codedeploy::primitives::DateTime;
use aws_sdk_codedeploy::types::TimeRange;
use meridian_delivery::follow::{Look, RemoteStatus};
use meridian_region::stacks::{AliasShifter, DeliveryOptions, DeploymentHandle, FollowedDeployment};
use meridian_region::{ErrorKind, RegionError, Say};
use std::collections::{BTreeMap, HashSet};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};

fn err<E: aws_sdk_codedeploy::error::ProvideErrorMetadata + std::error::Error + 'static>(
    region: &str,
    action: &str,
    e: aws_sdk_codedeploy::error::SdkError<E>,
) -> RegionError {
    crate::sdk_error(region, action, &e)
}

/// What an AppSpec of a Lambda deployment says it moves: `Resources: [{Fn: {Type:
/// AWS::Lambda::Function, Properties: {Name, Alias, CurrentVersion, TargetVersion}}}]`, as
/// CloudFormation writes it (JSON). `None` when it is not such an AppSpec.
pub fn appspec_move(content: &str) -> Option<(String, String, String, String)> {
    let v: serde_json::Value = serde_json::from_str(content).ok()?;
    let resources = v.get("Resources").or_else(|| v.get("resources"))?.as_array()?;
    resources.iter().find_map(|r| {
        r.as_object()?.values().find_map(|f| {
            if f.get("Type")?.as_str()? != "AWS::Lambda::Function" {
                return None;
            }
            let p = f.get("Properties")?;
            let s = |k: &str| -> Option<String> {
                match p.get(k)? {
                    serde_json::Value::String(s) => Some(s.clone()),
                    serde_json::Value::Number(n) => Some(n.to_string()),
                    _ => None,
                }
            };
            Some((s("Name")?, s("Alias")?, s("CurrentVersion")?, s("TargetVersion")?))
        })
    })
}

/// The deployment groups of a stack, by application: `(application, group)`.
pub async fn stack_groups(
    cf: &aws_sdk_cloudformation::Client,
    cd: &aws_sdk_codedeploy::Client,
    region: &str,
    stack: &str,
) -> Result<Vec<(String, String)>, RegionError> {
    let resources = crate::driven::stack_resources(cf, region, stack).await?;
    let apps: Vec<&String> = resources
        .iter()
        .filter(|(_, _, t)| t == "AWS::CodeDeploy::Application")
        .map(|(_, p, _)| p)
        .collect();
    let groups: Vec<&String> = resources
        .iter()
        .filter(|(_, _, t)| t == "AWS::CodeDeploy::DeploymentGroup")
        .map(|(_, p, _)| p)
        .collect();
    let mut out = Vec::new();
    match apps.as_slice() {
        [] => {}
        [app] => out.extend(groups.iter().map(|g| ((*app).clone(), (*g).clone()))),
        _ => {
            for app in apps {
                let mut token: Option<String> = None;
                loop {
                    let listed = cd
                        .list_deployment_groups()
                        .application_name(app)
                        .set_next_token(token)
                        .send()
                        .await
                        .map_err(|e| err(region, "codedeploy:ListDeploymentGroups", e))?;
                    for g in listed.deployment_groups() {
                        if groups.contains(&g) {
                            out.push((app.clone(), g.clone()));
                        }
                    }
                    token = listed.next_token().map(String::from);
                    if token.is_none() {
                        break;
                    }
                }
            }
        }
    }
    Ok(out)
}

/// The ids of a group's deployments created at or after `since` (epoch seconds).
pub async fn deployments_since(
    cd: &aws_sdk_codedeploy::Client,
    region: &str,
    app: &str,
    group: &str,
    since: i64,
) -> Result<Vec<String>, RegionError> {
    let mut out = Vec::new();
    let mut token: Option<String> = None;
    loop {
        let page = cd
            .list_deployments()
            .application_name(app)
            .deployment_group_name(group)
            .create_time_range(TimeRange::builder().start(DateTime::from_secs(since)).build())
            .set_next_token(token)
            .send()
            .await
            .map_err(|e| err(region, "codedeploy:ListDeployments", e))?;
        out.extend(page.deployments().iter().cloned());
        token = page.next_token().map(String::from);
        if token.is_none() || out.len() > 1000 {
            return Ok(out);
        }
    }
}

/// What [`describe`] found.
#[derive(Debug)]
pub enum Described {
    /// A move of an alias to follow, and when CodeDeploy created it (epoch milliseconds).
    Move {
        deployment: Box<FollowedDeployment>,
        created_ms: i64,
    },
    /// A deployment CodeDeploy or CloudFormation made to roll an alias back (a failed or
    /// stopped deployment's, or a stack rollback's): its own move is not judged or stopped.
    Rollback { of: Option<String> },
    /// Not a Lambda alias move Meridian can read, and why.
    Unreadable(String),
}

/// A deployment as the driver follows it: which alias and versions (from its AppSpec, read
/// with `GetApplicationRevision` when `GetDeployment` does not carry it) and its configuration.
pub async fn describe(
    cd: &aws_sdk_codedeploy::Client,
    region: &str,
    stack: &str,
    id: &str,
    options: &DeliveryOptions,
) -> Result<Described, RegionError> {
    use aws_sdk_codedeploy::types::DeploymentCreator;
    let got = cd
        .get_deployment()
        .deployment_id(id)
        .send()
        .await
        .map_err(|e| err(region, "codedeploy:GetDeployment", e))?;
    let Some(info) = got.deployment_info() else {
        return Ok(Described::Unreadable("CodeDeploy described nothing".into()));
    };
    let triggered_by = info
        .rollback_info()
        .and_then(|r| r.rollback_triggering_deployment_id())
        .map(String::from);
    if matches!(
        info.creator(),
        Some(DeploymentCreator::CodeDeployRollback | DeploymentCreator::CloudFormationRollback)
    ) || triggered_by.is_some()
    {
        return Ok(Described::Rollback { of: triggered_by });
    }
    let inline = |r: &aws_sdk_codedeploy::types::RevisionLocation| {
        r.app_spec_content()
            .and_then(|a| a.content())
            .or_else(|| r.string().and_then(|s| s.content()))
            .map(String::from)
    };
    let mut content = info.revision().and_then(inline);
    if content.is_none() {
        if let (Some(app), Some(revision)) = (info.application_name(), info.revision()) {
            let got = cd
                .get_application_revision()
                .application_name(app)
                .revision(revision.clone())
                .send()
                .await
                .map_err(|e| err(region, "codedeploy:GetApplicationRevision", e))?;
            content = got.revision().and_then(inline);
        }
    }
    let Some(content) = content else {
        return Ok(Described::Unreadable("its revision carries no AppSpec".into()));
    };
    let Some((function, alias, from, to)) = appspec_move(&content) else {
        return Ok(Described::Unreadable(
            "its AppSpec moves no Lambda alias (AWS::Lambda::Function with Name, Alias, CurrentVersion, TargetVersion)"
                .into(),
        ));
    };
    Ok(Described::Move {
        deployment: Box::new(FollowedDeployment {
            region: region.to_string(),
            stack_name: stack.to_string(),
            id: id.to_string(),
            function,
            alias,
            from_version: from,
            to_version: to,
            config_name: info
                .deployment_config_name()
                .unwrap_or("CodeDeployDefault.LambdaAllAtOnce")
                .to_string(),
            options: options.clone(),
        }),
        created_ms: info.create_time().and_then(|t| t.to_millis().ok()).unwrap_or(i64::MAX),
    })
}

/// One followed deployment: looks and stops through the SDK, on the runtime of the stack
/// operation that found it (the driver calls from a blocking thread).
pub struct CodeDeployHandle {
    runtime: tokio::runtime::Handle,
    codedeploy: aws_sdk_codedeploy::Client,
    lambda: aws_sdk_lambda::Client,
    d: FollowedDeployment,
    /// Set when the stack operation is over.
    ended: Arc<Mutex<Option<String>>>,
    /// Reads of the hooks that failed in a row: after 5 (a CodeDeploy without deployment
    /// targets, as moto's), hooks are no longer read.
    hook_failures: AtomicU32,
}

impl CodeDeployHandle {
    pub fn new(
        runtime: tokio::runtime::Handle,
        codedeploy: aws_sdk_codedeploy::Client,
        lambda: aws_sdk_lambda::Client,
        d: FollowedDeployment,
        ended: Arc<Mutex<Option<String>>>,
    ) -> CodeDeployHandle {
        CodeDeployHandle {
            runtime,
            codedeploy,
            lambda,
            d,
            ended,
            hook_failures: AtomicU32::new(0),
        }
    }

    async fn look_async(&self) -> Result<Look, RegionError> {
        let region = self.d.region.as_str();
        let got = self
            .codedeploy
            .get_deployment()
            .deployment_id(&self.d.id)
            .send()
            .await
            .map_err(|e| err(region, "codedeploy:GetDeployment", e))?;
        let info = got.deployment_info().ok_or_else(|| {
            RegionError::new(
                ErrorKind::NotFound,
                format!("CodeDeploy has no deployment {}", self.d.id),
            )
            .region(region)
        })?;
        let status = info.status().map(|s| s.as_str()).unwrap_or_default();
        let status = RemoteStatus::parse(status).ok_or_else(|| {
            RegionError::new(
                ErrorKind::Invalid,
                format!(
                    "deployment {} has a status Meridian does not know: `{status}`",
                    self.d.id
                ),
            )
            .region(region)
        })?;
        // The alias's weights are the traffic, whoever moves them.
        let alias = self
            .lambda
            .get_alias()
            .function_name(&self.d.function)
            .name(&self.d.alias)
            .send()
            .await
            .map_err(|e| crate::sdk_error(region, "lambda:GetAlias", &e))?;
        let percent = if alias.function_version() == Some(self.d.to_version.as_str()) {
            100.0
        } else {
            alias
                .routing_config()
                .and_then(|r| r.additional_version_weights())
                .and_then(|w| w.get(&self.d.to_version))
                .map(|w| (w * 100.0 * 100.0).round() / 100.0)
                .unwrap_or(0.0)
        };
        let mut hooks = BTreeMap::new();
        // A deployment's targets exist once it has started (`DeploymentNotStartedException`
        // before); a failed read is tried again at the next look.
        let started = !matches!(status, RemoteStatus::Created | RemoteStatus::Queued);
        if started && self.hook_failures.load(Ordering::Relaxed) < 5 {
            match self.hooks().await {
                Ok(h) => {
                    hooks = h;
                    self.hook_failures.store(0, Ordering::Relaxed);
                }
                Err(_) => {
                    self.hook_failures.fetch_add(1, Ordering::Relaxed);
                }
            }
        }
        Ok(Look {
            status,
            new_version_percent: Some(percent),
            hooks,
            message: info.error_information().and_then(|e| e.message()).map(String::from),
        })
    }

    async fn hooks(&self) -> Result<BTreeMap<String, String>, RegionError> {
        let region = self.d.region.as_str();
        let targets = self
            .codedeploy
            .list_deployment_targets()
            .deployment_id(&self.d.id)
            .send()
            .await
            .map_err(|e| err(region, "codedeploy:ListDeploymentTargets", e))?;
        let mut out = BTreeMap::new();
        for t in targets.target_ids() {
            let got = self
                .codedeploy
                .get_deployment_target()
                .deployment_id(&self.d.id)
                .target_id(t)
                .send()
                .await
                .map_err(|e| err(region, "codedeploy:GetDeploymentTarget", e))?;
            let events = got
                .deployment_target()
                .and_then(|t| t.lambda_target())
                .map(|l| l.lifecycle_events())
                .unwrap_or_default();
            for ev in events {
                let (Some(name), Some(status)) = (ev.lifecycle_event_name(), ev.status()) else {
                    continue;
                };
                // AllowTraffic is CodeDeploy's own move; the hooks are the user's functions.
                if name != "AllowTraffic" && status.as_str() != "Pending" {
                    out.insert(name.to_string(), status.as_str().to_string());
                }
            }
        }
        Ok(out)
    }
}

impl DeploymentHandle for CodeDeployHandle {
    fn look(&self) -> Result<Look, RegionError> {
        self.runtime.block_on(self.look_async())
    }

    /// `StopDeployment` has no field for the reason: the driver records it.
    fn stop(&self, _reason: &str) -> Result<(), RegionError> {
        let region = self.d.region.clone();
        self.runtime.block_on(async {
            self.codedeploy
                .stop_deployment()
                .deployment_id(&self.d.id)
                .auto_rollback_enabled(true)
                .send()
                .await
                .map(|_| ())
                .map_err(|e| err(&region, "codedeploy:StopDeployment", e))
        })
    }

    fn ended(&self) -> Option<String> {
        self.ended.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }
}

/// A stack operation that stops being waited for (an error reading its events, the action
/// stopped) ends its followers too: each takes one last look and records what it saw.
impl Drop for Followers {
    fn drop(&mut self) {
        let mut ended = self.ended.lock().unwrap_or_else(|e| e.into_inner());
        if ended.is_none() {
            *ended = Some("the stack operation stopped being followed".to_string());
        }
    }
}

/// How often a stack operation looks for new deployments while an alias is being updated.
const FIND_EVERY: std::time::Duration = std::time::Duration::from_secs(5);

/// The deployments of one stack operation: found while it runs, each followed by the driver on
/// a blocking thread of its own, and waited for when the operation is over.
pub struct Followers {
    shifter: Arc<dyn AliasShifter>,
    options: DeliveryOptions,
    say: Say,
    region: String,
    stack: String,
    /// Deployments created from here on (epoch milliseconds: the execution's start, 10 s early
    /// for the skew between this machine's clock and AWS's) are the operation's.
    since_ms: i64,
    codedeploy: aws_sdk_codedeploy::Client,
    lambda: aws_sdk_lambda::Client,
    groups: Option<Vec<(String, String)>>,
    /// An alias of the stack is being updated: CloudFormation may have handed it to CodeDeploy.
    looking: bool,
    last_find: Option<std::time::Instant>,
    seen: HashSet<String>,
    ended: Arc<Mutex<Option<String>>>,
    tasks: Vec<(String, tokio::task::JoinHandle<Result<(), String>>)>,
    /// Set once finding failed: said once, and the operation goes on unfollowed.
    broken: bool,
}

impl Followers {
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        shifter: Arc<dyn AliasShifter>,
        options: DeliveryOptions,
        say: Say,
        region: &str,
        stack: &str,
        started_ms: i64,
        codedeploy: aws_sdk_codedeploy::Client,
        lambda: aws_sdk_lambda::Client,
    ) -> Followers {
        Followers {
            shifter,
            options,
            say,
            region: region.to_string(),
            stack: stack.to_string(),
            since_ms: started_ms - 10_000,
            codedeploy,
            lambda,
            groups: None,
            looking: false,
            last_find: None,
            seen: HashSet::new(),
            ended: Arc::new(Mutex::new(None)),
            tasks: Vec::new(),
            broken: false,
        }
    }

    /// The deployment groups to search, `(application, group)`, when they are known; otherwise
    /// they are read from the stack's resources.
    pub fn with_groups(mut self, groups: Vec<(String, String)>) -> Followers {
        self.groups = Some(groups);
        self
    }

    /// A stack event: an alias being updated may be CodeDeploy's to move.
    pub fn saw(&mut self, resource_type: &str, status: &str) {
        if resource_type == "AWS::Lambda::Alias" && status == "UPDATE_IN_PROGRESS" {
            self.looking = true;
        }
    }

    /// Looks for new deployments (at most every few seconds) and starts following them.
    pub async fn find(&mut self, cf: &aws_sdk_cloudformation::Client) {
        if !self.looking || self.broken || self.last_find.is_some_and(|t| t.elapsed() < FIND_EVERY) {
            return;
        }
        self.last_find = Some(std::time::Instant::now());
        match self.find_inner(cf).await {
            Ok(()) => {}
            // Throttled or unreachable: the next search tries again.
            Err(e) if matches!(e.kind, ErrorKind::Throttled | ErrorKind::Unavailable) => (self.say)(&format!(
                "{} {}: looking for this update's CodeDeploy deployments: {e}; trying again",
                self.region, self.stack
            )),
            Err(e) => {
                self.broken = true;
                (self.say)(&format!(
                    "{} {}: the CodeDeploy deployments of this update cannot be followed ({e}); CloudFormation still waits for them",
                    self.region, self.stack
                ));
            }
        }
    }

    /// One last search once the stack has settled: a deployment that began and ended between
    /// two searches (an all-at-once one, a hook failing at once) is recorded too.
    pub async fn find_last(&mut self, cf: &aws_sdk_cloudformation::Client) {
        self.last_find = None;
        self.find(cf).await;
    }

    async fn find_inner(&mut self, cf: &aws_sdk_cloudformation::Client) -> Result<(), RegionError> {
        if self.groups.as_ref().is_none_or(|g| g.is_empty()) {
            self.groups = Some(stack_groups(cf, &self.codedeploy, &self.region, &self.stack).await?);
        }
        for (app, group) in self.groups.clone().unwrap_or_default() {
            for id in deployments_since(&self.codedeploy, &self.region, &app, &group, self.since_ms / 1000).await? {
                if self.seen.contains(&id) {
                    continue;
                }
                let described = describe(&self.codedeploy, &self.region, &self.stack, &id, &self.options).await?;
                self.seen.insert(id.clone());
                match described {
                    // Created before this execution began: an earlier update's.
                    Described::Move { created_ms, .. } if created_ms < self.since_ms => {}
                    Described::Move { deployment, .. } => self.follow(*deployment),
                    Described::Rollback { of } => (self.say)(&format!(
                        "{} {}: CodeDeploy deployment {id} rolls an alias back{}",
                        self.region,
                        self.stack,
                        of.map(|o| format!(" (after {o})")).unwrap_or_default()
                    )),
                    Described::Unreadable(why) => (self.say)(&format!(
                        "{} {}: CodeDeploy deployment {id} of {group} is not followed: {why}",
                        self.region, self.stack
                    )),
                }
            }
        }
        Ok(())
    }

    /// Gives the deployment to the driver, on a blocking thread.
    pub fn follow(&mut self, d: FollowedDeployment) {
        let handle = CodeDeployHandle::new(
            tokio::runtime::Handle::current(),
            self.codedeploy.clone(),
            self.lambda.clone(),
            d.clone(),
            self.ended.clone(),
        );
        let (shifter, say, id) = (self.shifter.clone(), self.say.clone(), d.id.clone());
        let task = tokio::task::spawn_blocking(move || shifter.follow(&d, &handle, &|l| say(l)));
        self.tasks.push((id, task));
    }

    /// The operation is over: every follower takes one last look and ends. Returns why the
    /// deployments that did not succeed did not.
    pub async fn finish(mut self, why: &str) -> Vec<String> {
        *self.ended.lock().unwrap_or_else(|e| e.into_inner()) = Some(why.to_string());
        let mut failures = Vec::new();
        for (id, task) in std::mem::take(&mut self.tasks) {
            match task.await {
                Ok(Ok(())) => {}
                Ok(Err(e)) => failures.push(e),
                // The follower itself failed: the deployment's outcome is the stack's to say.
                Err(e) => (self.say)(&format!(
                    "{} {}: following deployment {id} stopped: {e}",
                    self.region, self.stack
                )),
            }
        }
        failures
    }
}

#[cfg(test)]
mod tests {
    use super::appspec_move;

    #[test]
    fn the_appspec_cloudformation_writes_names_the_alias_and_versions() {
        // As CloudFormation writes it for an alias under CodeDeployLambdaAliasUpdate.
        let content = r#"{"version":0.0,"Resources":[{"HelloFunction":{"Type":"AWS::Lambda::Function","Properties":{"Name":"app-HelloFunction-1X2Y","Alias":"live","CurrentVersion":"3","TargetVersion":"4"}}}],"Hooks":[{"BeforeAllowTraffic":"app-PreTraffic-9Z"}]}"#;
        assert_eq!(
            appspec_move(content),
            Some(("app-HelloFunction-1X2Y".into(), "live".into(), "3".into(), "4".into()))
        );
        // Versions written as numbers, too.
        let content = r#"{"Resources":[{"F":{"Type":"AWS::Lambda::Function","Properties":{"Name":"f","Alias":"a","CurrentVersion":1,"TargetVersion":2}}}]}"#;
        assert_eq!(
            appspec_move(content),
            Some(("f".into(), "a".into(), "1".into(), "2".into()))
        );
        // An ECS AppSpec, or text that is not JSON: nothing to follow.
        assert_eq!(
            appspec_move(r#"{"Resources":[{"T":{"Type":"AWS::ECS::Service","Properties":{}}}]}"#),
            None
        );
        assert_eq!(appspec_move("version: 0.0"), None);
    }
}
