//! The `Events` of a function: event source mappings, rules, schedules, subscriptions and the
//! Lambda permissions they need, as aws-sam-translator's event sources generate them.

use serde_json::{Map, Value};

use super::function::Props;
use super::{res_err, CfnResource, Context, Failure};

/// Every event type SAM knows.
const KNOWN: &[&str] = &[
    "CloudWatchLogs",
    "Kinesis",
    "DynamoDB",
    "SQS",
    "MSK",
    "MQ",
    "SelfManagedKafka",
    "DocumentDB",
    "Schedule",
    "CloudWatchEvent",
    "EventBridgeRule",
    "S3",
    "SNS",
    "Api",
    "AlexaSkill",
    "IoTRule",
    "Cognito",
    "HttpApi",
    "ScheduleV2",
];

fn event_err(function_id: &str, event_id: &str, message: impl std::fmt::Display) -> Failure {
    res_err(function_id, format!("Event with id [{event_id}] is invalid. {message}"))
}

fn events(props: &Props<'_>) -> Vec<(String, Value)> {
    match props.get("Events") {
        Some(Value::Object(m)) => m.iter().map(|(k, v)| (k.clone(), v.clone())).collect(),
        _ => Vec::new(),
    }
}

fn event_type(event: &Value) -> Option<&str> {
    event.get("Type").and_then(Value::as_str).filter(|t| KNOWN.contains(t))
}

/// `resources_to_link`: each event is parsed (its type must be known).
pub(crate) fn link(_ctx: &Context<'_>, function_id: &str, props: &Props<'_>) -> Result<(), Failure> {
    for (event_id, event) in events(props) {
        if event_type(&event).is_none() {
            let shown = match event.get("Type") {
                None | Some(Value::Null) => "None".to_string(),
                Some(Value::String(s)) => s.clone(),
                Some(other) => super::python_repr(other),
            };
            return Err(event_err(
                function_id,
                &event_id,
                format!("Resource dict has missing or invalid value for key Type. Event Type is: {shown}."),
            ));
        }
    }
    Ok(())
}

/// SAM's order of events: by `Properties.Path` when there is one, else by the event's id.
fn ordered(props: &Props<'_>) -> Vec<(String, Value)> {
    let mut evs = events(props);
    evs.sort_by_key(|(id, ev)| {
        ev.get("Properties")
            .and_then(|p| p.get("Path"))
            .and_then(Value::as_str)
            .map(str::to_string)
            .unwrap_or_else(|| id.clone())
    });
    evs
}

/// The resources of every event of the function. `target` is the alias (if any) or the
/// function that events invoke; `role_id` the generated execution role, if any.
pub(crate) fn generate(
    _ctx: &mut Context<'_>,
    function_id: &str,
    props: &Props<'_>,
    _passthrough: &Map<String, Value>,
    _target: &(String, bool),
    _resources: &mut [CfnResource],
    _role_id: Option<&str>,
) -> Result<Vec<CfnResource>, Failure> {
    if let Some((event_id, event)) = ordered(props).into_iter().next() {
        let t = event_type(&event).unwrap_or("");
        return Err(event_err(
            function_id,
            &event_id,
            format!("Event type '{t}' is not supported by Meridian's local regions yet."),
        ));
    }
    Ok(Vec::new())
}
