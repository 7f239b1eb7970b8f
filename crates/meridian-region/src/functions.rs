//! What the progressive-delivery driver needs from a region's functions: alias routing,
//! invocations, metrics. Implemented by the local Lambda host and by AWS (Lambda, CloudWatch).

use crate::RegionError;
use meridian_delivery::alarm::{AlarmState, MetricPoint};

/// What the driver needs from a region's functions. Calls block: the delivery driver runs on a
/// thread of its own (one per deployment), never on the async runtime.
pub trait FunctionControl: Send + Sync {
    /// Routes `function:alias`: `version` takes the traffic `extra` does not, `extra` is another
    /// version with its weight in `0..1`.
    fn route_alias(
        &self,
        region: &str,
        function: &str,
        alias: &str,
        version: &str,
        extra: Option<(&str, f64)>,
    ) -> Result<(), RegionError>;
    /// Invokes asynchronously (InvocationType `Event`).
    fn invoke_event(&self, region: &str, function: &str, payload: &[u8]) -> Result<(), RegionError>;
    /// Invokes and waits; `Ok(false)` when the function returned an error.
    fn invoke(&self, region: &str, function: &str, payload: &[u8]) -> Result<bool, RegionError>;
    /// Metrics of `function` (`qualifier`: an alias or a version) in `[since, until)`, in
    /// periods of `period_ms` aligned on `since`; periods without data are left out.
    fn metrics(
        &self,
        region: &str,
        function: &str,
        qualifier: Option<&str>,
        since_ms: i64,
        until_ms: i64,
        period_ms: i64,
    ) -> Result<Vec<MetricPoint>, RegionError>;
    /// Metrics of `version` as it serves `function:alias` (the judge's samples during a shift).
    /// Local regions count a version's invocations however it was reached; on AWS, Lambda
    /// records an alias's invocations under the alias with the version that ran them (dimension
    /// `ExecutedVersion`), not under the version's own qualifier.
    #[allow(clippy::too_many_arguments)]
    fn version_metrics(
        &self,
        region: &str,
        function: &str,
        _alias: &str,
        version: &str,
        since_ms: i64,
        until_ms: i64,
        period_ms: i64,
    ) -> Result<Vec<MetricPoint>, RegionError> {
        self.metrics(region, function, Some(version), since_ms, until_ms, period_ms)
    }
    /// The state of the CloudWatch alarm `alarm` (its name) as the region evaluates it, with the
    /// reason it gives. `None`: the region leaves alarms to the driver, which evaluates them from
    /// [`FunctionControl::metrics`] (local regions). AWS answers from `DescribeAlarms`.
    fn alarm_state(&self, _region: &str, _alarm: &str) -> Result<Option<(AlarmState, String)>, RegionError> {
        Ok(None)
    }
    /// Sends `route` (`METHOD /path`, the path within the stage) through the API of the region
    /// that routes it to `target` (`function:alias`), with `body`, as a user's request goes:
    /// through API Gateway's event and answer mapping. `Ok(false)` when the answer is a server
    /// error (5xx). The first call checks that such an API exists: its error says what is
    /// missing.
    fn api_request(&self, region: &str, target: &str, route: &str, _body: &[u8]) -> Result<bool, RegionError> {
        Err(RegionError::new(
            crate::ErrorKind::Invalid,
            format!("synthetic traffic through an API route (`{route}` to {target}) is served by local regions; give traffic without `route` here"),
        )
        .region(region))
    }
    /// Makes sure hook functions can reach `PutLifecycleEventHookExecutionStatus`.
    fn ensure_hook_endpoint(&self) -> Result<(), RegionError> {
        Ok(())
    }
}
