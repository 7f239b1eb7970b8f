//! CloudFormation's query API over the local stacks, as far as `aws cloudformation deploy`,
//! `sam deploy` and scripts call it: stacks, change sets, events, resources, templates, exports.
//!
//! Executing a change set (and CreateStack, UpdateStack, DeleteStack) returns as soon as the
//! operation has started, as on AWS; clients then poll `DescribeStacks` (the CLI's waiters) while
//! the stack is `*_IN_PROGRESS`. The operation runs on a thread of this process; if the process is
//! killed, the next command that opens the stacks recovers it as after any crash.

use super::query::{el, error, members, ok, Params};
use super::{Body, Endpoint};
use crate::credentials::ACCOUNT_ID;
use crate::stacks::LocalStacks;
use hyper::{Response, StatusCode};
use meridian_region::stacks::{StackInfo, StackRequest};
use std::collections::BTreeMap;
use std::path::PathBuf;

/// CloudFormation's limit on a `TemplateBody`.
const MAX_TEMPLATE_BODY: usize = 51_200;

struct Failure {
    status: StatusCode,
    code: &'static str,
    message: String,
}

fn validation(message: impl Into<String>) -> Failure {
    Failure {
        status: StatusCode::BAD_REQUEST,
        code: "ValidationError",
        message: message.into(),
    }
}

/// A local stacks error, with the code CloudFormation gives the same condition.
fn from_stacks(message: String) -> Failure {
    let code = if message.contains("already exists") {
        "AlreadyExistsException"
    } else if message.contains("ChangeSet [") && message.contains("does not exist") {
        "ChangeSetNotFound"
    } else if message.contains("cannot be executed in its current") {
        "InvalidChangeSetStatus"
    } else if message.contains("Requires capabilities") || message.contains("InsufficientCapabilities") {
        "InsufficientCapabilitiesException"
    } else {
        "ValidationError"
    };
    Failure {
        status: StatusCode::BAD_REQUEST,
        code,
        message,
    }
}

pub async fn handle(ep: &Endpoint, action: &str, p: Params, region: &str, request_id: &str) -> Response<Body> {
    let ep2 = ep.clone();
    let action2 = action.to_string();
    let region2 = region.to_string();
    let answer = tokio::task::spawn_blocking(move || {
        let stacks = ep2.stacks().map_err(|m| Failure {
            status: StatusCode::INTERNAL_SERVER_ERROR,
            code: "InternalFailure",
            message: m,
        })?;
        dispatch(&ep2, stacks, &action2, &p, &region2)
    })
    .await
    .unwrap_or_else(|e| {
        Err(Failure {
            status: StatusCode::INTERNAL_SERVER_ERROR,
            code: "InternalFailure",
            message: format!("the operation failed: {e}"),
        })
    });
    match answer {
        Ok(inner) => ok("cloudformation", action, &inner, request_id),
        Err(f) => error("cloudformation", f.status, f.code, &f.message, request_id),
    }
}

fn need<'a>(p: &'a Params, key: &str) -> Result<&'a str, Failure> {
    p.get(key).map(String::as_str).filter(|v| !v.is_empty()).ok_or_else(|| {
        validation(format!(
            "1 validation error detected: Value null at '{}' failed to satisfy constraint: Member must not be null",
            lower_first(key)
        ))
    })
}

fn lower_first(s: &str) -> String {
    let mut c = s.chars();
    c.next()
        .map(|f| f.to_ascii_lowercase().to_string() + c.as_str())
        .unwrap_or_default()
}

/// A stack name, or the name in a stack ARN (`arn:aws:cloudformation:R:A:stack/NAME/ID`).
fn stack_name(v: &str) -> String {
    v.strip_prefix("arn:")
        .and_then(|_| v.split(":stack/").nth(1))
        .and_then(|r| r.split('/').next())
        .unwrap_or(v)
        .to_string()
}

fn dispatch(ep: &Endpoint, stacks: &LocalStacks, action: &str, p: &Params, region: &str) -> Result<String, Failure> {
    match action {
        "DescribeStacks" => {
            let list = match p.get("StackName") {
                Some(n) => vec![stacks.describe(region, &stack_name(n)).map_err(from_stacks)?],
                None => stacks
                    .list_stacks(Some(region))
                    .map_err(from_stacks)?
                    .into_iter()
                    .filter(|s| s.stack_status != "DELETE_COMPLETE")
                    .collect(),
            };
            Ok(format!("<Stacks>{}</Stacks>", list.iter().map(stack_xml).collect::<String>()))
        }
        "ListStacks" => {
            let filter = members(p, "StackStatusFilter");
            let list = stacks.list_stacks(Some(region)).map_err(from_stacks)?;
            let rows: String = list
                .iter()
                .filter(|s| filter.is_empty() || filter.contains(&s.stack_status))
                .map(|s| {
                    format!(
                        "<member>{}{}{}{}</member>",
                        el("StackId", &s.stack_id),
                        el("StackName", &s.stack_name),
                        el("CreationTime", &s.creation_time),
                        el("StackStatus", &s.stack_status)
                    )
                })
                .collect();
            Ok(format!("<StackSummaries>{rows}</StackSummaries>"))
        }
        "CreateChangeSet" => {
            let name = need(p, "StackName")?.to_string();
            let cs = need(p, "ChangeSetName")?.to_string();
            let kind = p.get("ChangeSetType").map(String::as_str).unwrap_or("UPDATE");
            let existing = stacks.describe_stack(region, &name).map_err(from_stacks)?;
            let live = existing.as_ref().filter(|s| s.stack_status != "REVIEW_IN_PROGRESS");
            match (kind, live) {
                ("CREATE", Some(_)) => {
                    return Err(Failure {
                        status: StatusCode::BAD_REQUEST,
                        code: "AlreadyExistsException",
                        message: format!("Stack [{name}] already exists and cannot be created again with the changeSet [{cs}]."),
                    })
                }
                ("UPDATE", None) => {
                    return Err(validation(format!("Stack [{name}] does not exist: create it with --change-set-type CREATE")))
                }
                ("CREATE" | "UPDATE", _) => {}
                (other, _) => return Err(validation(format!("local regions make CREATE and UPDATE change sets, not {other}"))),
            }
            let req = request(ep, p, region, &name, Some(cs), existing.as_ref())?;
            let info = stacks
                .create_change_set_named(&req)
                .map_err(|m| from_stacks(for_api(m, &req.template_path)))?;
            let stack = stacks.describe(region, &name).map_err(from_stacks)?;
            Ok(format!("{}{}", el("Id", &info.change_set_id), el("StackId", &stack.stack_id)))
        }
        "DescribeChangeSet" => {
            let (stack, cs) = change_set_of(stacks, p, region)?;
            let info = stacks.describe_change_set(region, &stack, &cs).map_err(from_stacks)?;
            let s = stacks.describe_stack(region, &stack).map_err(from_stacks)?;
            // `--include-property-values`: the resource's properties before and after, and each
            // changed property's values (KNOWN_AFTER_APPLY for what the execution will tell).
            let values = p.get("IncludePropertyValues").is_some_and(|v| v == "true");
            let changes: String = info
                .changes
                .iter()
                .map(|c| {
                    let replacement = match c.replacement {
                        Some(meridian_template::plan::Replacement::True) => el("Replacement", "True"),
                        Some(meridian_template::plan::Replacement::False) => el("Replacement", "False"),
                        Some(meridian_template::plan::Replacement::Conditional) => el("Replacement", "Conditional"),
                        None => String::new(),
                    };
                    let json = |v: Option<&serde_json::Value>| v.map(|v| v.to_string());
                    let details: String = c
                        .details
                        .iter()
                        .map(|name| {
                            let name = name.split(' ').next().unwrap_or(name);
                            let before = json(c.before_context.as_ref().and_then(|b| b.get(name)));
                            let after = json(c.after_context.as_ref().and_then(|a| a.get(name)));
                            let recreation = if !meridian_template::plan::forces_replacement(&c.resource_type, name) {
                                "Never"
                            } else if after.as_deref().is_some_and(|a| a.contains(meridian_template::plan::KNOWN_AFTER_APPLY)) {
                                "Conditionally"
                            } else {
                                "Always"
                            };
                            let mut target = format!("{}{}{}", el("Attribute", "Properties"), el("Name", name), el("RequiresRecreation", recreation));
                            if values {
                                let change_type = match (&before, &after) {
                                    (None, Some(_)) => "Add",
                                    (Some(_), None) => "Remove",
                                    _ => "Modify",
                                };
                                target.push_str(&el("AttributeChangeType", change_type));
                                target.push_str(&before.map(|b| el("BeforeValue", &b)).unwrap_or_default());
                                target.push_str(&after.map(|a| el("AfterValue", &a)).unwrap_or_default());
                            }
                            format!("<member><Target>{target}</Target><Evaluation>Static</Evaluation><ChangeSource>DirectModification</ChangeSource></member>")
                        })
                        .collect();
                    let contexts = if values {
                        format!(
                            "{}{}",
                            json(c.before_context.as_ref()).map(|b| el("BeforeContext", &b)).unwrap_or_default(),
                            json(c.after_context.as_ref()).map(|a| el("AfterContext", &a)).unwrap_or_default()
                        )
                    } else {
                        String::new()
                    };
                    format!(
                        "<member><Type>Resource</Type><ResourceChange>{}{}{}{}{replacement}<Scope>{}</Scope><Details>{details}</Details>{contexts}</ResourceChange></member>",
                        el("Action", &format!("{:?}", c.action)),
                        el("LogicalResourceId", &c.logical_resource_id),
                        c.physical_resource_id.as_deref().map(|v| el("PhysicalResourceId", v)).unwrap_or_default(),
                        el("ResourceType", &c.resource_type),
                        if c.details.is_empty() { String::new() } else { "<member>Properties</member>".to_string() },
                    )
                })
                .collect();
            Ok(format!(
                "{}{}{}{}{}{}{}{}<Changes>{changes}</Changes>",
                el("ChangeSetName", &info.change_set_name),
                el("ChangeSetId", &info.change_set_id),
                el("StackName", &info.stack_name),
                el("StackId", &s.map(|s| s.stack_id).unwrap_or_default()),
                el("Status", &info.status),
                el("ExecutionStatus", &info.execution_status),
                info.status_reason.as_deref().map(|r| el("StatusReason", r)).unwrap_or_default(),
                el("CreationTime", &info.creation_time),
            ))
        }
        "ExecuteChangeSet" => {
            let (stack, cs) = change_set_of(stacks, p, region)?;
            let info = stacks.describe_change_set(region, &stack, &cs).map_err(from_stacks)?;
            if info.execution_status != "AVAILABLE" {
                return Err(Failure {
                    status: StatusCode::BAD_REQUEST,
                    code: "InvalidChangeSetStatus",
                    message: format!(
                        "ChangeSet [{}] cannot be executed in its current execution status of [{}]{}",
                        info.change_set_id,
                        info.execution_status,
                        info.status_reason.map(|r| format!(": {r}")).unwrap_or_default()
                    ),
                });
            }
            let (s, r, n) = (stacks.clone(), region.to_string(), stack.clone());
            start(stacks, region, &stack, move |log| s.execute_change_set(&r, &n, &cs, log, None).map(|_| ()))?;
            Ok(String::new())
        }
        "DeleteChangeSet" => {
            let (stack, cs) = change_set_of(stacks, p, region)?;
            stacks.delete_change_set(region, &stack, &cs).map_err(from_stacks)?;
            Ok(String::new())
        }
        "CreateStack" | "UpdateStack" => {
            let name = need(p, "StackName")?.to_string();
            let existing = stacks.describe_stack(region, &name).map_err(from_stacks)?;
            let live = existing.as_ref().filter(|s| s.stack_status != "REVIEW_IN_PROGRESS");
            if action == "CreateStack" && live.is_some() {
                return Err(Failure {
                    status: StatusCode::BAD_REQUEST,
                    code: "AlreadyExistsException",
                    message: format!("Stack [{name}] already exists"),
                });
            }
            if action == "UpdateStack" && live.is_none() {
                return Err(validation(format!("Stack [{name}] does not exist")));
            }
            // As CloudFormation does it: a change set made and executed at once.
            let cs = format!("meridian-{}-{}", action.to_ascii_lowercase(), meridian_core::random::alphanumeric(8).to_lowercase());
            let req = request(ep, p, region, &name, Some(cs.clone()), existing.as_ref())?;
            let info = stacks
                .create_change_set_named(&req)
                .map_err(|m| from_stacks(for_api(m, &req.template_path)))?;
            if info.execution_status != "AVAILABLE" {
                let _ = stacks.delete_change_set(region, &name, &cs);
                return Err(validation(info.status_reason.unwrap_or_else(|| "No updates are to be performed.".into()).replace(
                    "The submitted information didn't contain changes. Submit different information to create a change set.",
                    "No updates are to be performed.",
                )));
            }
            let (s, r, n) = (stacks.clone(), region.to_string(), name.clone());
            start(stacks, region, &name, move |log| {
                let res = s.execute_change_set(&r, &n, &cs, log, None).map(|_| ());
                let _ = s.delete_change_set(&r, &n, &cs);
                res
            })?;
            let stack = stacks.describe(region, &name).map_err(from_stacks)?;
            Ok(el("StackId", &stack.stack_id))
        }
        "DeleteStack" => {
            let name = stack_name(need(p, "StackName")?);
            // Deleting a stack that does not exist succeeds, as on AWS.
            if stacks.describe_stack(region, &name).map_err(from_stacks)?.is_none() {
                return Ok(String::new());
            }
            let (s, r, n) = (stacks.clone(), region.to_string(), name.clone());
            start(stacks, region, &name, move |log| s.delete(&r, &n, log))?;
            Ok(String::new())
        }
        "DescribeStackEvents" => {
            let name = stack_name(need(p, "StackName")?);
            let events = stacks.events(region, &name).map_err(from_stacks)?;
            let id = stacks
                .describe_stack(region, &name)
                .map_err(from_stacks)?
                .map(|s| s.stack_id)
                .unwrap_or_else(|| format!("arn:aws:cloudformation:{region}:{ACCOUNT_ID}:stack/{name}/deleted"));
            let rows: String = events
                .iter()
                .enumerate()
                .rev()
                .map(|(i, e)| {
                    format!(
                        "<member>{}{}{}{}{}{}{}{}{}</member>",
                        el("EventId", &format!("{name}-{i}")),
                        el("StackId", &id),
                        el("StackName", &name),
                        el("LogicalResourceId", &e.logical_resource_id),
                        el("PhysicalResourceId", &e.physical_resource_id),
                        el("ResourceType", &e.resource_type),
                        el("Timestamp", &e.timestamp),
                        el("ResourceStatus", &e.resource_status),
                        e.resource_status_reason.as_deref().map(|r| el("ResourceStatusReason", r)).unwrap_or_default()
                    )
                })
                .collect();
            Ok(format!("<StackEvents>{rows}</StackEvents>"))
        }
        "DescribeStackResources" | "ListStackResources" => {
            let name = stack_name(need(p, "StackName")?);
            let s = stacks.describe(region, &name).map_err(from_stacks)?;
            let at = s.last_updated_time.clone().unwrap_or_else(|| s.creation_time.clone());
            let rows: String = stacks
                .resources(region, &name)
                .map_err(from_stacks)?
                .iter()
                .map(|r| {
                    let common = format!(
                        "{}{}{}{}",
                        el("LogicalResourceId", &r.logical_resource_id),
                        el("PhysicalResourceId", &r.physical_resource_id),
                        el("ResourceType", &r.resource_type),
                        el("ResourceStatus", &r.resource_status)
                    );
                    if action == "ListStackResources" {
                        format!("<member>{common}{}</member>", el("LastUpdatedTimestamp", &at))
                    } else {
                        format!("<member>{}{}{common}{}</member>", el("StackName", &name), el("StackId", &s.stack_id), el("Timestamp", &at))
                    }
                })
                .collect();
            let list = if action == "ListStackResources" { "StackResourceSummaries" } else { "StackResources" };
            Ok(format!("<{list}>{rows}</{list}>"))
        }
        "GetTemplate" => {
            let name = stack_name(need(p, "StackName")?);
            let body = stacks.template_body(region, &name).map_err(from_stacks)?;
            Ok(format!("{}<StagesAvailable><member>Original</member><member>Processed</member></StagesAvailable>", el("TemplateBody", &body)))
        }
        "ListExports" => {
            let rows: String = stacks
                .exports(region)
                .map_err(from_stacks)?
                .iter()
                .map(|(n, v, id)| format!("<member>{}{}{}</member>", el("ExportingStackId", id), el("Name", n), el("Value", v)))
                .collect();
            Ok(format!("<Exports>{rows}</Exports>"))
        }
        "ValidateTemplate" | "GetTemplateSummary" => {
            let text = if let (Some(n), None, None) = (p.get("StackName"), p.get("TemplateBody"), p.get("TemplateURL")) {
                stacks.template_body(region, &stack_name(n)).map_err(from_stacks)?
            } else {
                let (path, _) = template_file(ep, p, region, "validate")?;
                let text = std::fs::read_to_string(&path).map_err(|e| validation(format!("cannot read the template: {e}")));
                let _ = std::fs::remove_file(&path);
                text?
            };
            let t = meridian_template::Template::parse("template", &text, &Default::default()).map_err(|e| validation(format!("Template format error: {e}")))?;
            let empty = serde_json::Map::new();
            let declared = t.original.get("Parameters").and_then(|v| v.as_object()).unwrap_or(&empty);
            let params: String = declared
                .iter()
                .map(|(k, d)| {
                    let no_echo = d.get("NoEcho").map(scalar).is_some_and(|v| v.eq_ignore_ascii_case("true"));
                    format!(
                        "<member>{}{}{}{}{}</member>",
                        el("ParameterKey", k),
                        d.get("Default").map(|v| el("DefaultValue", &scalar(v))).unwrap_or_default(),
                        if action == "GetTemplateSummary" { el("ParameterType", &d.get("Type").map(scalar).unwrap_or_default()) } else { String::new() },
                        el("NoEcho", if no_echo { "true" } else { "false" }),
                        d.get("Description").map(|v| el("Description", &scalar(v))).unwrap_or_default()
                    )
                })
                .collect();
            let description = t.original.get("Description").map(scalar);
            let mut out = format!(
                "<Parameters>{params}</Parameters>{}",
                description.as_deref().map(|d| el("Description", d)).unwrap_or_default()
            );
            if action == "GetTemplateSummary" {
                let mut types: Vec<String> = t
                    .original
                    .get("Resources")
                    .and_then(|r| r.as_object())
                    .map(|r| r.values().filter_map(|v| v.get("Type").map(scalar)).collect())
                    .unwrap_or_default();
                types.sort();
                types.dedup();
                let transforms: Vec<String> = match t.original.get("Transform") {
                    Some(serde_json::Value::String(s)) => vec![s.clone()],
                    Some(serde_json::Value::Array(a)) => a.iter().map(scalar).collect(),
                    _ => Vec::new(),
                };
                let list = |items: &[String]| items.iter().map(|i| format!("<member>{}</member>", crate::endpoint::query::esc(i))).collect::<String>();
                out.push_str(&format!(
                    "<ResourceTypes>{}</ResourceTypes><DeclaredTransforms>{}</DeclaredTransforms>{}",
                    list(&types),
                    list(&transforms),
                    el("Version", &t.original.get("AWSTemplateFormatVersion").map(scalar).unwrap_or_else(|| "2010-09-09".into()))
                ));
            }
            Ok(out)
        }
        other => Err(Failure {
            status: StatusCode::BAD_REQUEST,
            code: "InvalidAction",
            message: format!(
                "local regions do not serve CloudFormation's `{other}`; they serve CreateStack, UpdateStack, DeleteStack, DescribeStacks, ListStacks, DescribeStackEvents, DescribeStackResources, ListStackResources, GetTemplate, GetTemplateSummary, CreateChangeSet, DescribeChangeSet, ExecuteChangeSet, DeleteChangeSet, ListExports and ValidateTemplate (docs/local-regions.md)"
            ),
        }),
    }
}

/// A local stacks message as an API client should read it: the endpoint's copy of the template
/// is "the template", and the command-line way out is named as such.
fn for_api(message: String, copy: &std::path::Path) -> String {
    message
        .replace(&copy.display().to_string(), "the template")
        .replace(
            "pass --allow-unsupported (or record them as placeholders) to record it as an inert placeholder",
            "local regions cannot deploy it (`meridian stack deploy --allow-unsupported` records such resources as inert placeholders)",
        )
}

fn scalar(v: &serde_json::Value) -> String {
    match v {
        serde_json::Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// The (stack, change set name) a request names: a name with `StackName`, or a change set ARN.
fn change_set_of(stacks: &LocalStacks, p: &Params, region: &str) -> Result<(String, String), Failure> {
    let cs = need(p, "ChangeSetName")?;
    if cs.starts_with("arn:") {
        if let Some(found) = stacks.change_set_by_id(region, cs).map_err(from_stacks)? {
            return Ok(found);
        }
        return Err(Failure {
            status: StatusCode::NOT_FOUND,
            code: "ChangeSetNotFound",
            message: format!("ChangeSet [{cs}] does not exist"),
        });
    }
    let stack = p
        .get("StackName")
        .map(|s| stack_name(s))
        .ok_or_else(|| validation("StackName must be specified if ChangeSetName is not specified as an ARN."))?;
    Ok((stack, cs.to_string()))
}

/// Starts a stack operation on a thread and returns once the stack shows it in progress (or it
/// has ended), so that a client polling `DescribeStacks` next never sees the state from before.
fn start(
    stacks: &LocalStacks,
    region: &str,
    name: &str,
    op: impl FnOnce(&dyn Fn(&str)) -> Result<(), String> + Send + 'static,
) -> Result<(), Failure> {
    let before = stacks.describe_stack(region, name).map_err(from_stacks)?;
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::Builder::new()
        .name("meridian-cfn-op".into())
        .spawn(move || {
            let r = op(&|_| {});
            let _ = tx.send(r);
        })
        .map_err(|e| Failure {
            status: StatusCode::INTERNAL_SERVER_ERROR,
            code: "InternalFailure",
            message: format!("cannot start the stack operation: {e}"),
        })?;
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    loop {
        match rx.recv_timeout(std::time::Duration::from_millis(20)) {
            // Ended already: its outcome is in the stack's status (a failure is a rollback state).
            Ok(_) | Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => return Ok(()),
            Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {}
        }
        let now = stacks.describe_stack(region, name).map_err(from_stacks)?;
        let moved = match (&before, &now) {
            (_, None) => true,
            (Some(b), Some(n)) => n.stack_status != b.stack_status || n.last_updated_time != b.last_updated_time,
            (None, Some(_)) => true,
        };
        if moved && now.as_ref().is_none_or(|n| n.stack_status != "REVIEW_IN_PROGRESS") {
            return Ok(());
        }
        if std::time::Instant::now() > deadline {
            return Ok(());
        }
    }
}

/// The template of a request (`TemplateBody`, or `TemplateURL` of an object in a local bucket),
/// written to a file of its own under the data directory.
fn template_file(ep: &Endpoint, p: &Params, region: &str, stack: &str) -> Result<(PathBuf, bool), Failure> {
    let dir = ep.data_dir().join("endpoint").join("templates");
    std::fs::create_dir_all(&dir).map_err(|e| validation(format!("cannot keep the template: {e}")))?;
    let file = dir.join(format!(
        "{}-{}-{}.template",
        meridian_core::path::safe_component(region),
        meridian_core::path::safe_component(stack),
        meridian_core::random::alphanumeric(10)
    ));
    if let Some(body) = p.get("TemplateBody") {
        if body.len() > MAX_TEMPLATE_BODY {
            return Err(validation(format!(
                "1 validation error detected: Value '{}...' at 'templateBody' failed to satisfy constraint: Member must have length less than or equal to {MAX_TEMPLATE_BODY} (upload it to a bucket and pass --s3-bucket)",
                &body.chars().take(20).collect::<String>()
            )));
        }
        std::fs::write(&file, body).map_err(|e| validation(format!("cannot keep the template: {e}")))?;
        return Ok((file, false));
    }
    let url = p
        .get("TemplateURL")
        .ok_or_else(|| validation("Either Template URL or Template Body must be specified."))?;
    let (bucket, key) = bucket_key(url).ok_or_else(|| {
        validation(format!(
            "TemplateURL must be a supported URL: `{url}` names no bucket and key"
        ))
    })?;
    let src = super::s3::local_object(ep.data_dir(), &bucket, &key)
        .filter(|f| f.is_file())
        .ok_or_else(|| {
            validation(format!(
                "S3 error: Access Denied (the template `{url}` is not in the local bucket `{bucket}`)"
            ))
        })?;
    std::fs::copy(&src, &file).map_err(|e| validation(format!("cannot read the template: {e}")))?;
    Ok((file, true))
}

/// The bucket and key of an S3 URL: path style (`https://s3.REGION.amazonaws.com/B/K`, the local
/// endpoint's `http://127.0.0.1:PORT/B/K`) or virtual-hosted (`https://B.s3.REGION.amazonaws.com/K`).
fn bucket_key(url: &str) -> Option<(String, String)> {
    let rest = url.split_once("://").map(|(_, r)| r).unwrap_or(url);
    let (host, path) = rest.split_once('/')?;
    let host = host.rsplit_once(':').map(|(h, _)| h).unwrap_or(host);
    let decode = |s: &str| percent_encoding::percent_decode_str(s).decode_utf8_lossy().into_owned();
    let path = path.split(['?', '#']).next().unwrap_or(path);
    let virtual_bucket = host
        .split_once(".s3.")
        .or_else(|| host.split_once(".s3-"))
        .map(|(b, _)| b);
    match virtual_bucket {
        Some(b) if !host.starts_with("s3.") && !host.starts_with("s3-") => Some((b.to_string(), decode(path))),
        _ => {
            let (b, k) = path.split_once('/')?;
            Some((decode(b), decode(k)))
        }
    }
}

/// The stack request of a CreateChangeSet, CreateStack or UpdateStack.
fn request(
    ep: &Endpoint,
    p: &Params,
    region: &str,
    name: &str,
    change_set: Option<String>,
    existing: Option<&StackInfo>,
) -> Result<StackRequest, Failure> {
    let (template_path, _) = if p.get("UsePreviousTemplate").map(String::as_str) == Some("true") {
        let stacks = ep.stacks().map_err(validation)?;
        let body = stacks.template_body(region, name).map_err(from_stacks)?;
        let mut q = p.clone();
        q.insert("TemplateBody".into(), body);
        template_file(ep, &q, region, name)?
    } else {
        template_file(ep, p, region, name)?
    };
    let mut parameters = BTreeMap::new();
    for i in 1.. {
        let Some(k) = p.get(&format!("Parameters.member.{i}.ParameterKey")) else {
            break;
        };
        if p.get(&format!("Parameters.member.{i}.UsePreviousValue"))
            .map(String::as_str)
            == Some("true")
        {
            let prev = existing.and_then(|s| s.parameters.get(k)).ok_or_else(|| {
                validation(format!("Invalid input for parameter key {k}. Cannot specify usePreviousValue as true for a parameter key not in the previous template"))
            })?;
            parameters.insert(k.clone(), prev.clone());
        } else {
            parameters.insert(
                k.clone(),
                p.get(&format!("Parameters.member.{i}.ParameterValue"))
                    .cloned()
                    .unwrap_or_default(),
            );
        }
    }
    let mut tags = BTreeMap::new();
    for i in 1.. {
        let Some(k) = p.get(&format!("Tags.member.{i}.Key")) else {
            break;
        };
        tags.insert(
            k.clone(),
            p.get(&format!("Tags.member.{i}.Value")).cloned().unwrap_or_default(),
        );
    }
    Ok(StackRequest {
        region: region.to_string(),
        stack_name: name.to_string(),
        change_set_name: change_set,
        template_path,
        parameters,
        capabilities: members(p, "Capabilities"),
        tags,
        allow_unsupported: false,
        publish_on_config_change: false,
        artifact_root: None,
        source_template: None,
        delivery: Default::default(),
        template_bucket: None,
        service_role: None,
    })
}

fn stack_xml(s: &StackInfo) -> String {
    let params: String = s
        .parameters
        .iter()
        .map(|(k, v)| format!("<member>{}{}</member>", el("ParameterKey", k), el("ParameterValue", v)))
        .collect();
    let outputs: String = s
        .outputs
        .iter()
        .map(|(k, v)| format!("<member>{}{}</member>", el("OutputKey", k), el("OutputValue", v)))
        .collect();
    let tags: String = s
        .tags
        .iter()
        .map(|(k, v)| format!("<member>{}{}</member>", el("Key", k), el("Value", v)))
        .collect();
    format!(
        "<member>{}{}{}{}{}{}<Parameters>{params}</Parameters><Outputs>{outputs}</Outputs><Tags>{tags}</Tags><DisableRollback>false</DisableRollback><DriftInformation><StackDriftStatus>NOT_CHECKED</StackDriftStatus></DriftInformation></member>",
        el("StackName", &s.stack_name),
        el("StackId", &s.stack_id),
        el("CreationTime", &s.creation_time),
        s.last_updated_time.as_deref().map(|t| el("LastUpdatedTime", t)).unwrap_or_default(),
        el("StackStatus", &s.stack_status),
        s.stack_status_reason.as_deref().map(|r| el("StackStatusReason", r)).unwrap_or_default(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn template_urls_name_their_bucket_and_key() {
        for (url, b, k) in [
            ("https://s3.amazonaws.com/art/t/a.yaml", "art", "t/a.yaml"),
            ("https://s3.eu-west-1.amazonaws.com/art/a.yaml", "art", "a.yaml"),
            ("https://art.s3.eu-west-1.amazonaws.com/dir/a.yaml", "art", "dir/a.yaml"),
            ("https://art.s3-eu-west-1.amazonaws.com/a.yaml", "art", "a.yaml"),
            ("http://127.0.0.1:9001/art/a%20b.yaml", "art", "a b.yaml"),
        ] {
            assert_eq!(bucket_key(url), Some((b.to_string(), k.to_string())), "{url}");
        }
        assert_eq!(bucket_key("https://s3.amazonaws.com/only-bucket"), None);
    }

    #[test]
    fn stack_arns_name_their_stack() {
        assert_eq!(
            stack_name("arn:aws:cloudformation:us-east-1:123456789012:stack/app/abc"),
            "app"
        );
        assert_eq!(stack_name("app"), "app");
    }
}
