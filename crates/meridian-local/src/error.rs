//! Errors of the local Lambda host, each mapped to the AWS error type and HTTP status that the
//! Lambda API would return, so that SDKs and the AWS CLI understand them.

use std::path::PathBuf;

pub type Result<T, E = LambdaError> = std::result::Result<T, E>;

#[derive(Debug, thiserror::Error)]
pub enum LambdaError {
    #[error("Function not found: {arn}")]
    FunctionNotFound { arn: String },
    #[error("Alias not found: {arn}")]
    AliasNotFound { arn: String },
    #[error("Version {version} of function {arn} does not exist")]
    VersionNotFound { arn: String, version: String },
    #[error(
        "Rate Exceeded: {function} already runs {limit} concurrent executions ({reason}); \
         raise its reserved concurrency or the host limit"
    )]
    TooManyRequests {
        function: String,
        limit: u32,
        reason: &'static str,
    },
    #[error("{kind} payload of {size} bytes exceeds the maximum allowed payload size ({limit} bytes)")]
    RequestTooLarge {
        kind: &'static str,
        size: usize,
        limit: usize,
    },
    #[error("Could not parse request body into json: {0}")]
    InvalidRequestContent(String),
    #[error("{0}")]
    InvalidParameterValue(String),
    #[error("{0}")]
    ResourceConflict(String),
    #[error("failed to read the code package: {0}")]
    InvalidZipFile(String),
    #[error(
        "runtime `{0}` is not supported by local regions (supported: provided.al2023, provided.al2, \
         provided, python3.x, nodejs18.x, nodejs20.x, nodejs22.x)"
    )]
    InvalidRuntime(String),
    #[error("failed to access the local Lambda state in {path}: {source}")]
    Store {
        path: PathBuf,
        #[source]
        source: rusqlite::Error,
    },
    /// The message already says the cause: it is not a `#[source]` too, or callers that print
    /// error chains would say it twice.
    #[error("failed to {action} {path}: {cause}")]
    Io {
        action: &'static str,
        path: PathBuf,
        cause: std::io::Error,
    },
    #[error("no Lambda API operation at {0}")]
    UnknownOperation(String),
    #[error("{0}")]
    Service(String),
}

impl LambdaError {
    /// The error code that AWS puts in `x-amzn-ErrorType`.
    pub fn error_type(&self) -> &'static str {
        match self {
            LambdaError::FunctionNotFound { .. }
            | LambdaError::AliasNotFound { .. }
            | LambdaError::VersionNotFound { .. } => "ResourceNotFoundException",
            LambdaError::TooManyRequests { .. } => "TooManyRequestsException",
            LambdaError::RequestTooLarge { .. } => "RequestTooLargeException",
            LambdaError::InvalidRequestContent(_) => "InvalidRequestContentException",
            LambdaError::InvalidParameterValue(_) => "InvalidParameterValueException",
            LambdaError::ResourceConflict(_) => "ResourceConflictException",
            LambdaError::InvalidZipFile(_) => "InvalidZipFileException",
            LambdaError::InvalidRuntime(_) => "InvalidParameterValueException",
            LambdaError::UnknownOperation(_) => "UnknownOperationException",
            LambdaError::Store { .. } | LambdaError::Io { .. } | LambdaError::Service(_) => "ServiceException",
        }
    }

    /// The region port's kind of this error: whether the engine may retry.
    pub fn kind(&self) -> meridian_region::ErrorKind {
        use meridian_region::ErrorKind;
        match self.http_status() {
            404 => ErrorKind::NotFound,
            429 => ErrorKind::Throttled,
            409 => ErrorKind::Conflict,
            500 => ErrorKind::Unavailable,
            _ => ErrorKind::Invalid,
        }
    }

    /// The HTTP status code AWS answers with.
    pub fn http_status(&self) -> u16 {
        match self {
            LambdaError::FunctionNotFound { .. }
            | LambdaError::AliasNotFound { .. }
            | LambdaError::VersionNotFound { .. }
            | LambdaError::UnknownOperation(_) => 404,
            LambdaError::TooManyRequests { .. } => 429,
            LambdaError::RequestTooLarge { .. } => 413,
            LambdaError::ResourceConflict(_) => 409,
            LambdaError::InvalidRequestContent(_)
            | LambdaError::InvalidParameterValue(_)
            | LambdaError::InvalidZipFile(_)
            | LambdaError::InvalidRuntime(_) => 400,
            LambdaError::Store { .. } | LambdaError::Io { .. } | LambdaError::Service(_) => 500,
        }
    }

    pub(crate) fn io(action: &'static str, path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        LambdaError::Io {
            action,
            path: path.into(),
            cause: source,
        }
    }
}

impl From<LambdaError> for meridian_region::RegionError {
    fn from(e: LambdaError) -> Self {
        meridian_region::RegionError::new(e.kind(), e.to_string())
    }
}
