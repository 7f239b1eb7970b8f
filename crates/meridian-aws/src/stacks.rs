//! Stacks through CloudFormation, as `aws cloudformation deploy` runs them: a change set
//! (CREATE for a new stack, UPDATE otherwise), described, executed, and waited for with the
//! stack's events streamed as progress lines; a failure is reported with the events that say why
//! and the state CloudFormation left the stack in.

use crate::config::AwsOptions;
use aws_sdk_cloudformation::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_cloudformation::types::{Capability, ChangeSetStatus, ChangeSetType, Parameter, StackStatus, Tag};
use aws_sdk_cloudformation::Client;
use futures::future::BoxFuture;
use meridian_region::stacks::{
    AliasShifter, DeliveryOptions, LiveFunction, Progress, StackDeployer, StackInfo, StackOutcome, StackRequest,
};
use meridian_region::{ErrorKind, RegionError, Say};
use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

/// CloudFormation's limit on a template sent in the request (`TemplateBody`).
pub const MAX_TEMPLATE_BODY: usize = 51_200;

/// The StackDeployer of AWS regions.
pub struct CloudFormationStacks {
    options: AwsOptions,
    /// How often a change set or a stack is looked at while it works.
    pub poll: Duration,
}

impl CloudFormationStacks {
    pub fn new(options: AwsOptions) -> CloudFormationStacks {
        CloudFormationStacks {
            options,
            poll: Duration::from_secs(2),
        }
    }

    async fn client(&self, region: &str) -> Client {
        Client::new(&self.options.sdk_config(region).await)
    }
}

fn err<E: ProvideErrorMetadata + std::error::Error + 'static>(
    region: &str,
    stack: &str,
    action: &str,
    e: SdkError<E>,
) -> RegionError {
    crate::sdk_error(region, action, &e).stack(stack)
}

fn is_missing_stack<E: ProvideErrorMetadata>(e: &SdkError<E>) -> bool {
    matches!(e, SdkError::ServiceError(s) if s.err().code() == Some("ValidationError")
        && s.err().message().is_some_and(|m| m.contains("does not exist")))
}

fn iso(t: Option<&aws_sdk_cloudformation::primitives::DateTime>) -> Option<String> {
    t.and_then(|t| t.fmt(aws_sdk_cloudformation::primitives::DateTimeFormat::DateTime).ok())
}

fn info(region: &str, s: &aws_sdk_cloudformation::types::Stack) -> StackInfo {
    StackInfo {
        stack_name: s.stack_name().unwrap_or_default().to_string(),
        stack_id: s.stack_id().unwrap_or_default().to_string(),
        region: region.to_string(),
        stack_status: s.stack_status().map(|x| x.as_str().to_string()).unwrap_or_default(),
        stack_status_reason: s.stack_status_reason().map(str::to_string),
        parameters: s
            .parameters()
            .iter()
            .filter_map(|p| {
                Some((
                    p.parameter_key()?.to_string(),
                    p.parameter_value().unwrap_or_default().to_string(),
                ))
            })
            .collect(),
        tags: s
            .tags()
            .iter()
            .filter_map(|t| Some((t.key()?.to_string(), t.value()?.to_string())))
            .collect(),
        outputs: s
            .outputs()
            .iter()
            .filter_map(|o| {
                Some((
                    o.output_key()?.to_string(),
                    o.output_value().unwrap_or_default().to_string(),
                ))
            })
            .collect(),
        creation_time: iso(s.creation_time()).unwrap_or_default(),
        last_updated_time: iso(s.last_updated_time()),
    }
}

/// A stack's status as CloudFormation names it: whether it is still working, done well, or
/// done badly (a rollback, or a failure that left the stack to be fixed).
fn settled(status: &str) -> Option<bool> {
    if status.ends_with("_IN_PROGRESS") {
        return None;
    }
    Some(matches!(
        status,
        "CREATE_COMPLETE" | "UPDATE_COMPLETE" | "IMPORT_COMPLETE" | "DELETE_COMPLETE"
    ))
}

impl CloudFormationStacks {
    async fn describe(&self, cf: &Client, region: &str, stack: &str) -> Result<Option<StackInfo>, RegionError> {
        match cf.describe_stacks().stack_name(stack).send().await {
            Ok(o) => Ok(o.stacks().first().map(|s| info(region, s))),
            Err(e) if is_missing_stack(&e) => Ok(None),
            Err(e) => Err(err(region, stack, "cloudformation:DescribeStacks", e)),
        }
    }

    /// Whether the stack exists as a stack (not only as a change set under review).
    async fn exists(&self, cf: &Client, region: &str, stack: &str) -> Result<bool, RegionError> {
        Ok(self
            .describe(cf, region, stack)
            .await?
            .is_some_and(|s| s.stack_status != "REVIEW_IN_PROGRESS"))
    }

    /// Creates a change set and waits for it; `None` when it holds no changes. `body`: the
    /// template to send (else the request's file); `exists`: whether the stack exists, when known.
    async fn make_change_set(
        &self,
        cf: &Client,
        req: &StackRequest,
        name: &str,
        body: Option<String>,
        exists: Option<bool>,
    ) -> Result<Option<aws_sdk_cloudformation::operation::describe_change_set::DescribeChangeSetOutput>, RegionError>
    {
        let (region, stack) = (req.region.as_str(), req.stack_name.as_str());
        let body = match body {
            Some(b) => b,
            None => read_template(req)?,
        };
        let template_url = if body.len() > MAX_TEMPLATE_BODY {
            Some(self.upload_template(req, &body).await?)
        } else {
            None
        };
        let exists = match exists {
            Some(e) => e,
            None => self.exists(cf, region, stack).await?,
        };
        let mut create = cf
            .create_change_set()
            .stack_name(stack)
            .change_set_name(name)
            .set_template_body(template_url.is_none().then_some(body))
            .set_template_url(template_url)
            .set_role_arn(req.service_role.clone())
            .change_set_type(if exists {
                ChangeSetType::Update
            } else {
                ChangeSetType::Create
            })
            .set_capabilities(Some(
                req.capabilities.iter().map(|c| Capability::from(c.as_str())).collect(),
            ))
            .set_parameters(Some(
                req.parameters
                    .iter()
                    .map(|(k, v)| Parameter::builder().parameter_key(k).parameter_value(v).build())
                    .collect(),
            ));
        for (k, v) in &req.tags {
            create = create.tags(Tag::builder().key(k).value(v).build());
        }
        create
            .send()
            .await
            .map_err(|e| err(region, stack, "cloudformation:CreateChangeSet", e))?;
        loop {
            let cs = cf
                .describe_change_set()
                .stack_name(stack)
                .change_set_name(name)
                .send()
                .await
                .map_err(|e| err(region, stack, "cloudformation:DescribeChangeSet", e))?;
            match cs.status() {
                Some(ChangeSetStatus::CreateComplete) => return Ok(Some(cs)),
                Some(ChangeSetStatus::Failed) => {
                    let reason = cs.status_reason().unwrap_or_default().to_string();
                    if reason.contains("didn't contain changes") || reason.contains("No updates are to be performed") {
                        let _ = cf
                            .delete_change_set()
                            .stack_name(stack)
                            .change_set_name(name)
                            .send()
                            .await;
                        return Ok(None);
                    }
                    return Err(RegionError::new(
                        ErrorKind::Invalid,
                        format!("the change set {name} of stack {stack} failed: {reason}"),
                    )
                    .region(region)
                    .stack(stack));
                }
                _ => tokio::time::sleep(self.poll).await,
            }
        }
    }

    /// Executes a change set and waits until the stack is stable, saying each new event. With a
    /// driver (`follow`), the CodeDeploy deployments CloudFormation starts for the stack's
    /// aliases are followed by it while the stack waits for them.
    async fn execute(
        &self,
        cf: &Client,
        region: &str,
        stack: &str,
        name: &str,
        say: &Say,
        follow: Option<(Arc<dyn AliasShifter>, DeliveryOptions)>,
    ) -> Result<StackOutcome, RegionError> {
        let mut seen: HashSet<String> = self.event_ids(cf, region, stack).await?.into_iter().collect();
        let mut followers = match follow {
            Some((shifter, options)) => {
                let config = self.options.sdk_config(region).await;
                Some(crate::codedeploy::Followers::new(
                    shifter,
                    options,
                    say.clone(),
                    region,
                    stack,
                    meridian_core::clock::SystemClock.now_millis(),
                    aws_sdk_codedeploy::Client::new(&config),
                    aws_sdk_lambda::Client::new(&config),
                ))
            }
            None => None,
        };
        cf.execute_change_set()
            .stack_name(stack)
            .change_set_name(name)
            .send()
            .await
            .map_err(|e| err(region, stack, "cloudformation:ExecuteChangeSet", e))?;
        let mut failures = Vec::new();
        loop {
            let events = cf
                .describe_stack_events()
                .stack_name(stack)
                .send()
                .await
                .map_err(|e| err(region, stack, "cloudformation:DescribeStackEvents", e))?;
            // newest first: said oldest first
            for ev in events.stack_events().iter().rev() {
                let id = ev.event_id().unwrap_or_default().to_string();
                if !seen.insert(id) {
                    continue;
                }
                let status = ev.resource_status().map(|s| s.as_str()).unwrap_or_default();
                let reason = ev.resource_status_reason().unwrap_or_default();
                if let Some(f) = followers.as_mut() {
                    f.saw(ev.resource_type().unwrap_or_default(), status);
                }
                say(&format!(
                    "{region} {stack}: {} {} {status}{}",
                    ev.logical_resource_id().unwrap_or_default(),
                    ev.resource_type().unwrap_or_default(),
                    if reason.is_empty() {
                        String::new()
                    } else {
                        format!(" ({reason})")
                    }
                ));
                if status.ends_with("_FAILED") && !reason.is_empty() && !reason.contains("Resource creation cancelled")
                {
                    failures.push(format!("{}: {reason}", ev.logical_resource_id().unwrap_or_default()));
                }
            }
            if let Some(f) = followers.as_mut() {
                f.find(cf).await;
            }
            let Some(now) = self.describe(cf, region, stack).await? else {
                return Err(RegionError::new(ErrorKind::NotFound, format!("stack {stack} is gone"))
                    .region(region)
                    .stack(stack));
            };
            let Some(ok) = settled(&now.stack_status) else {
                tokio::time::sleep(self.poll).await;
                continue;
            };
            // The deployments CloudFormation waited for are over: their followers end.
            let followed = match followers.take() {
                Some(mut f) => {
                    f.find_last(cf).await;
                    f.finish(&format!("the stack ended {}", now.stack_status)).await
                }
                None => Vec::new(),
            };
            match ok {
                true if followed.is_empty() => return Ok(StackOutcome::Applied(now)),
                // The judge failed a deployment that CodeDeploy finished before it stopped.
                true => {
                    return Err(RegionError::new(
                        ErrorKind::Permanent,
                        format!(
                            "stack {stack} in {region} ended {} with the new versions, but: {}",
                            now.stack_status,
                            followed.join("; ")
                        ),
                    )
                    .region(region)
                    .stack(stack))
                }
                false => {
                    // CodeDeploy's reason (the judge's, an alarm's) says more than the alias's event.
                    failures.splice(0..0, followed);
                    let why = if failures.is_empty() {
                        now.stack_status_reason.clone().unwrap_or_default()
                    } else {
                        failures.join("; ")
                    };
                    return Err(RegionError::new(
                        ErrorKind::Permanent,
                        format!("stack {stack} in {region} ended {}: {why}", now.stack_status),
                    )
                    .region(region)
                    .stack(stack));
                }
            }
        }
    }

    /// Puts a template too large for the request (CloudFormation's 51,200 bytes) into the
    /// region's artifact bucket, under `tmp/` (which `meridian bootstrap`'s lifecycle rule
    /// expires after a day), by digest, and returns the URL CloudFormation reads it from.
    async fn upload_template(&self, req: &StackRequest, body: &str) -> Result<String, RegionError> {
        let (region, stack) = (req.region.as_str(), req.stack_name.as_str());
        let Some(bucket) = req.template_bucket.as_deref() else {
            return Err(RegionError::new(
                ErrorKind::Invalid,
                format!(
                    "the template `{}` is {} bytes, over CloudFormation's {MAX_TEMPLATE_BODY} for a template sent with the request, and no artifact bucket of {region} was given to put it in: deploy it from a pipeline (whose artifact store is that bucket)",
                    req.template_path.display(),
                    body.len()
                ),
            )
            .region(region)
            .stack(stack));
        };
        let key = format!(
            "tmp/templates/{}.json",
            meridian_core::Digest::of(body.as_bytes()).hex()
        );
        let s3 = aws_sdk_s3::Client::new(&self.options.sdk_config(region).await);
        s3.put_object()
            .bucket(bucket)
            .key(&key)
            .body(aws_sdk_s3::primitives::ByteStream::from(body.as_bytes().to_vec()))
            .content_type("application/json")
            .send()
            .await
            .map_err(|e| crate::sdk_error(region, "s3:PutObject", &e).stack(stack))?;
        Ok(format!("https://s3.{region}.amazonaws.com/{bucket}/{key}"))
    }

    /// After a failed move (the alias is back on its old version): the stack's previous template
    /// and parameters again, so that functions, configuration and alias agree with what serves.
    async fn put_back(
        &self,
        cf: &Client,
        req: &StackRequest,
        driven: &crate::driven::Driven,
        say: &Say,
        failure: String,
    ) -> RegionError {
        let (region, stack) = (req.region.as_str(), req.stack_name.as_str());
        let restored = async {
            let Some((body, parameters)) = driven.restore(req)? else {
                return Ok::<_, RegionError>("the stack was just created: it keeps its template".to_string());
            };
            say(&format!(
                "{region} {stack}: putting the stack back on its previous template"
            ));
            let back = StackRequest {
                parameters,
                ..req.clone()
            };
            let name = change_set_name();
            match self.make_change_set(cf, &back, &name, Some(body), Some(true)).await? {
                None => Ok("the stack's template was already the previous one".to_string()),
                Some(_) => {
                    let s = self.execute(cf, region, stack, &name, say, None).await?;
                    Ok(format!(
                        "the stack is back on its previous template ({})",
                        s.stack().stack_status
                    ))
                }
            }
        }
        .await;
        match restored {
            Ok(what) => RegionError::new(ErrorKind::Permanent, format!("{failure}; {what}"))
                .region(region)
                .stack(stack),
            Err(e) => RegionError::new(
                ErrorKind::Permanent,
                format!("{failure}; putting the stack back on its previous template failed too: {e}"),
            )
            .region(region)
            .stack(stack),
        }
    }

    async fn event_ids(&self, cf: &Client, region: &str, stack: &str) -> Result<Vec<String>, RegionError> {
        match cf.describe_stack_events().stack_name(stack).send().await {
            Ok(o) => Ok(o
                .stack_events()
                .iter()
                .filter_map(|e| e.event_id().map(str::to_string))
                .collect()),
            Err(e) if is_missing_stack(&e) => Ok(Vec::new()),
            Err(e) => Err(err(region, stack, "cloudformation:DescribeStackEvents", e)),
        }
    }
}

/// CloudFormation's limit on a template read from S3 (`TemplateURL`): no larger one is read.
pub const MAX_TEMPLATE_URL_BODY: u64 = 1_048_576;

fn read_template(req: &StackRequest) -> Result<String, RegionError> {
    meridian_pipeline::source::read_text(&req.template_path, MAX_TEMPLATE_URL_BODY).map_err(|e| {
        RegionError::new(
            ErrorKind::Invalid,
            format!(
                "cannot read the template `{}`: {e} (CloudFormation takes templates of at most 1 MB)",
                req.template_path.display()
            ),
        )
        .region(&req.region)
        .stack(&req.stack_name)
    })
}

/// The change set's changes as lines, as `meridian stack plan` shows the local ones.
fn describe_changes(
    cs: &aws_sdk_cloudformation::operation::describe_change_set::DescribeChangeSetOutput,
) -> Vec<String> {
    cs.changes()
        .iter()
        .filter_map(|c| c.resource_change())
        .map(|r| {
            let replacement = match r.replacement().map(|x| x.as_str()) {
                Some("True") => " (replacement)",
                Some("Conditional") => " (may be replaced)",
                _ => "",
            };
            format!(
                "{} {} {}{replacement}",
                r.action().map(|a| a.as_str()).unwrap_or_default(),
                r.logical_resource_id().unwrap_or_default(),
                r.resource_type().unwrap_or_default()
            )
        })
        .collect()
}

fn change_set_name() -> String {
    let ms = meridian_core::clock::SystemClock.now_millis();
    format!("meridian-{ms}")
}

use meridian_core::Clock;

impl StackDeployer for CloudFormationStacks {
    fn describe_stack<'a>(
        &'a self,
        region: &'a str,
        stack: &'a str,
    ) -> BoxFuture<'a, Result<Option<StackInfo>, RegionError>> {
        Box::pin(async move {
            let cf = self.client(region).await;
            self.describe(&cf, region, stack).await
        })
    }

    fn deploy<'a>(
        &'a self,
        req: &'a StackRequest,
        progress: Progress,
    ) -> BoxFuture<'a, Result<StackOutcome, RegionError>> {
        Box::pin(async move {
            let cf = self.client(&req.region).await;
            let name = change_set_name();
            let text = read_template(req)?;
            let exists = self.exists(&cf, &req.region, &req.stack_name).await?;
            // Aliases under CodeDeploy are moved by the engine's driver when there is one.
            let driven = match &progress.shifter {
                Some(_) => {
                    let lambda = aws_sdk_lambda::Client::new(&self.options.sdk_config(&req.region).await);
                    match crate::driven::prepare(req, &cf, &lambda, &text, exists).await {
                        Ok(d) => d.map(|d| (d, lambda)),
                        // A template Meridian's transform cannot process goes to CloudFormation
                        // with its Transform, and CodeDeploy moves its aliases, as on AWS.
                        Err(e) if e.kind == ErrorKind::Invalid => {
                            (progress.say)(&format!(
                                "{} {}: Meridian cannot process the template itself ({e}); CloudFormation applies its transforms and CodeDeploy moves its aliases",
                                req.region, req.stack_name
                            ));
                            None
                        }
                        Err(e) => return Err(e),
                    }
                }
                None => None,
            };
            let body = match &driven {
                Some((d, _)) => d.body.clone(),
                None => text,
            };
            let outcome = match self.make_change_set(&cf, req, &name, Some(body), Some(exists)).await? {
                None => {
                    let now = self.describe(&cf, &req.region, &req.stack_name).await?.ok_or_else(|| {
                        RegionError::new(ErrorKind::NotFound, format!("stack {} is gone", req.stack_name))
                    })?;
                    (progress.say)(&format!("{} {}: no changes", req.region, req.stack_name));
                    StackOutcome::NoChanges(now)
                }
                Some(cs) => {
                    for line in describe_changes(&cs) {
                        (progress.say)(&format!("{} {}: {line}", req.region, req.stack_name));
                    }
                    // Aliases Meridian does not move itself are CodeDeploy's: followed.
                    let follow = match (&driven, &progress.shifter) {
                        (None, Some(shifter)) => Some((shifter.clone(), req.delivery.clone())),
                        _ => None,
                    };
                    self.execute(&cf, &req.region, &req.stack_name, &name, &progress.say, follow)
                        .await?
                }
            };
            // Every alias ends on the version that holds the stack's code: after an update, and
            // also when the template has not changed but an alias does not serve it yet (a run
            // killed during its shift, put back by the driver's recovery, then resumed).
            if let (Some((d, lambda)), Some(shifter)) = (&driven, &progress.shifter) {
                let moves = d.deployments(req, &cf, lambda, &outcome.stack().stack_id).await?;
                for m in moves {
                    let (shifter, say) = (shifter.clone(), progress.say.clone());
                    let moved = tokio::task::spawn_blocking(move || shifter.shift(&m, &|l| say(l)))
                        .await
                        .unwrap_or_else(|e| Err(format!("the delivery driver stopped: {e}")));
                    if let Err(e) = moved {
                        return Err(self.put_back(&cf, req, d, &progress.say, e).await);
                    }
                }
            }
            Ok(outcome)
        })
    }

    fn create_change_set<'a>(
        &'a self,
        req: &'a StackRequest,
        log: Say,
    ) -> BoxFuture<'a, Result<Vec<String>, RegionError>> {
        Box::pin(async move {
            let cf = self.client(&req.region).await;
            let name = req.change_set_name.clone().unwrap_or_else(change_set_name);
            // CHANGE_SET_REPLACE: a change set of the same name is replaced
            let _ = cf
                .delete_change_set()
                .stack_name(&req.stack_name)
                .change_set_name(&name)
                .send()
                .await;
            let lines = match self.make_change_set(&cf, req, &name, None, None).await? {
                None => vec!["no changes".to_string()],
                Some(cs) => describe_changes(&cs),
            };
            for l in &lines {
                log(&format!("{} {} {name}: {l}", req.region, req.stack_name));
            }
            Ok(lines)
        })
    }

    fn execute_change_set<'a>(
        &'a self,
        region: &'a str,
        stack: &'a str,
        change_set: &'a str,
        progress: Progress,
    ) -> BoxFuture<'a, Result<StackOutcome, RegionError>> {
        Box::pin(async move {
            let cf = self.client(region).await;
            let follow = progress.shifter.clone().map(|s| (s, progress.delivery.clone()));
            self.execute(&cf, region, stack, change_set, &progress.say, follow)
                .await
        })
    }

    fn live_functions<'a>(
        &'a self,
        region: &'a str,
        stack: &'a str,
    ) -> BoxFuture<'a, Result<Vec<LiveFunction>, RegionError>> {
        Box::pin(async move {
            let cf = self.client(region).await;
            if self.describe(&cf, region, stack).await?.is_none() {
                return Ok(Vec::new());
            }
            let lambda = aws_sdk_lambda::Client::new(&self.options.sdk_config(region).await);
            // The stack's functions, and what each of their aliases serves now (a move may have
            // changed it since the stack's last update).
            let functions: Vec<String> = crate::driven::stack_resources(&cf, region, stack)
                .await?
                .into_iter()
                .filter(|(_, _, t)| t == "AWS::Lambda::Function")
                .map(|(_, p, _)| p)
                .collect();
            let mut out = Vec::new();
            for f in functions {
                for (alias, version) in crate::functions::calls::aliases(&lambda, region, &f).await? {
                    out.push(LiveFunction {
                        function: f.clone(),
                        alias,
                        version,
                    });
                }
            }
            out.sort_by(|a, b| (&a.function, &a.alias).cmp(&(&b.function, &b.alias)));
            Ok(out)
        })
    }

    fn delete_stack<'a>(&'a self, region: &'a str, stack: &'a str, log: Say) -> BoxFuture<'a, Result<(), RegionError>> {
        Box::pin(async move {
            let cf = self.client(region).await;
            let Some(before) = self.describe(&cf, region, stack).await? else {
                return Ok(());
            };
            cf.delete_stack()
                .stack_name(stack)
                .send()
                .await
                .map_err(|e| err(region, stack, "cloudformation:DeleteStack", e))?;
            loop {
                // a deleted stack is described by its id, not its name
                match cf.describe_stacks().stack_name(&before.stack_id).send().await {
                    Ok(o) => {
                        let status = o
                            .stacks()
                            .first()
                            .and_then(|s| s.stack_status())
                            .cloned()
                            .unwrap_or(StackStatus::DeleteComplete);
                        match status {
                            StackStatus::DeleteComplete => break,
                            StackStatus::DeleteFailed => {
                                return Err(RegionError::new(
                                    ErrorKind::Permanent,
                                    format!("stack {stack} in {region} could not be deleted (DELETE_FAILED)"),
                                )
                                .region(region)
                                .stack(stack))
                            }
                            _ => tokio::time::sleep(self.poll).await,
                        }
                    }
                    Err(e) if is_missing_stack(&e) => break,
                    Err(e) => return Err(err(region, stack, "cloudformation:DescribeStacks", e)),
                }
            }
            log(&format!("{region} {stack}: DELETE_COMPLETE"));
            Ok(())
        })
    }
}
