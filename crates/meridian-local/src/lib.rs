//! The local region's Lambda host: functions run as plain OS processes behind the real Lambda
//! Runtime API, and are invoked through the real Invoke API, so that unmodified runtime clients
//! (`awslambdaric`, `lambda_runtime`) and unmodified callers (boto3, the AWS CLI) work against it.
//!
//! What it holds: the registry of functions, versions and aliases per region (SQLite under the
//! data directory, shared by every `meridian` process), code packages by digest, execution
//! environments (one process each), and invocation metrics in one-second buckets.
//!
//! It also holds the local stack deployer (`stacks`) and the local side of progressive delivery
//! (`functions`: alias weights, invocations and metrics for the engine's deployment driver).
//!
//! What it must not do: talk to AWS, depend on the CLI, or contain deployment policy (traffic
//! schedules, alarms and judging belong to the engine and `meridian-delivery`; this crate only
//! runs and measures what it is told to). Servers bind 127.0.0.1 only.

pub mod apigw;
pub mod authorizer;
pub mod backend;
pub mod buckets;
pub mod code;
pub mod credentials;
mod dynamic;
pub mod endpoint;
pub mod error;
pub mod functions;
pub mod host;
pub mod invoke_api;
mod logs;
pub mod metrics;
pub mod model;
pub mod rest_api;
mod sandbox;
pub mod stacks;
mod store;

pub use endpoint::{Endpoint, EndpointConfig};
pub use error::{LambdaError, Result};
pub use host::{ConfigUpdate, HostConfig, InvokeRequest, InvokeResponse, LambdaHost, Resolved};
pub use invoke_api::{serve_invoke_api, InvokeApiConfig};
pub use metrics::MinuteBucket;
pub use model::{Alias, CodeSource, FunctionRef, FunctionSpec, FunctionVersion, RuntimeKind, LATEST};
