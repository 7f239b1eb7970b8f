//! The error every port returns: what went wrong, whether trying again can help, and where.

use serde::{Deserialize, Serialize};

/// Whether a failed call can succeed if made again, and when.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorKind {
    /// The region asked us to slow down (AWS's Throttling, SlowDown, TooManyRequests): retry
    /// with backoff.
    Throttled,
    /// The region could not be reached or answered with a fault of its own: retry with backoff.
    Unavailable,
    /// Something else is happening to the same thing (a stack being updated, a change set already
    /// executing, a name just taken): retry once it is over, or not at all for a create.
    Conflict,
    /// What the call names does not exist.
    NotFound,
    /// The request itself is wrong (a template error, a missing capability, a bad parameter):
    /// the same call fails again until the user changes something.
    Invalid,
    /// It failed for good (a resource that could not be created, a deployment rolled back).
    Permanent,
}

impl ErrorKind {
    /// Whether the same call, made again later unchanged, can succeed.
    pub fn retryable(self) -> bool {
        matches!(
            self,
            ErrorKind::Throttled | ErrorKind::Unavailable | ErrorKind::Conflict
        )
    }
}

/// Where an error happened, as far as the port knows: the region, the stack and resource, and
/// the user's file and line that asked for it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorContext {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub region: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stack: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resource: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub file: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub line: Option<u32>,
}

/// A failed call to a region. `message` is what the user reads (AWS's own text where AWS has
/// one); it is serializable so that the journal can keep it with the action that failed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
#[error("{message}")]
pub struct RegionError {
    pub kind: ErrorKind,
    pub message: String,
    /// Boxed: errors travel in `Result`s of hot calls, and most have little context.
    #[serde(default)]
    pub context: Box<ErrorContext>,
}

impl RegionError {
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        RegionError {
            kind,
            message: message.into(),
            context: Box::default(),
        }
    }

    pub fn permanent(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Permanent, message)
    }

    pub fn region(mut self, region: &str) -> Self {
        self.context.region = Some(region.to_string());
        self
    }

    pub fn stack(mut self, stack: &str) -> Self {
        self.context.stack = Some(stack.to_string());
        self
    }

    pub fn resource(mut self, resource: &str) -> Self {
        self.context.resource = Some(resource.to_string());
        self
    }

    pub fn retryable(&self) -> bool {
        self.kind.retryable()
    }

    /// An error a region reported as text, classified by what CloudFormation's, Lambda's and
    /// S3's messages say: implementations that only have a message use this, so that the
    /// engine can still tell a conflict from a mistake.
    pub fn classify(message: impl Into<String>) -> Self {
        let message = message.into();
        let m = message.to_ascii_lowercase();
        let kind = if m.contains("throttl")
            || m.contains("rate exceeded")
            || m.contains("slow down")
            || m.contains("too many requests")
        {
            ErrorKind::Throttled
        } else if m.contains("state and can not be")
            || m.contains("already exists")
            || m.contains("while this operation was being prepared")
            || m.contains("current execution status")
            || m.contains("database is locked")
        {
            ErrorKind::Conflict
        } else if m.contains("does not exist") || m.contains("not found") || m.contains("no such") {
            ErrorKind::NotFound
        } else if m.contains("requires capabilities")
            || m.contains("template")
            || m.contains("parameter")
            || m.contains("validation")
            || m.contains("must be")
            || m.contains("needs ")
        {
            ErrorKind::Invalid
        } else if m.contains("connection") || m.contains("timed out") || m.contains("unavailable") {
            ErrorKind::Unavailable
        } else {
            ErrorKind::Permanent
        };
        RegionError::new(kind, message)
    }
}

impl From<String> for RegionError {
    fn from(message: String) -> Self {
        RegionError::classify(message)
    }
}

impl From<&str> for RegionError {
    fn from(message: &str) -> Self {
        RegionError::classify(message)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_are_classified_as_the_engine_needs() {
        let cases = [
            (
                "Stack:arn:x is in UPDATE_IN_PROGRESS state and can not be updated.",
                ErrorKind::Conflict,
                true,
            ),
            ("Stack [app] already exists", ErrorKind::Conflict, true),
            ("Stack with id app does not exist", ErrorKind::NotFound, false),
            ("Requires capabilities : [CAPABILITY_IAM]", ErrorKind::Invalid, false),
            ("Rate exceeded", ErrorKind::Throttled, true),
            (
                "resource Fn (AWS::Lambda::Function) failed: boom",
                ErrorKind::Permanent,
                false,
            ),
        ];
        for (m, kind, retry) in cases {
            let e = RegionError::from(m);
            assert_eq!(e.kind, kind, "{m}");
            assert_eq!(e.retryable(), retry, "{m}");
            assert_eq!(e.to_string(), m, "the message is the user's text, unchanged");
        }
    }

    #[test]
    fn errors_round_trip_through_json_with_their_context() {
        let e = RegionError::new(ErrorKind::Conflict, "busy")
            .region("eu-west-1")
            .stack("app");
        let text = serde_json::to_string(&e).unwrap();
        assert!(text.contains("\"kind\":\"conflict\""), "{text}");
        let back: RegionError = serde_json::from_str(&text).unwrap();
        assert_eq!(back, e);
    }
}
