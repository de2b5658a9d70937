//! What the Lambda service hands every invocation besides its payload: the `Context` the runtime
//! builds from the Runtime API's headers (request id, deadline, invoked function ARN, trace id) and
//! the function's configuration. The gateway and the workers both build it here, from the function's
//! settings in `infra/template.yaml`, so deadline-aware code sees locally what it sees deployed.

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

pub use lambda_runtime::{Context, LambdaEvent};

use crate::stack::LOCAL_REGION;
use crate::template::{
    FunctionDefinition, TemplateError, DEFAULT_FUNCTION_MEMORY_SIZE_MB,
    DEFAULT_FUNCTION_TIMEOUT_SECONDS,
};

/// The account moto reports in every ARN.
pub const LOCAL_ACCOUNT_ID: &str = "123456789012";

/// One Lambda function as the local stack invokes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LambdaFunction {
    name: String,
    timeout: Duration,
    memory_size_mb: u32,
}

impl LambdaFunction {
    /// A function with Lambda's defaults: 3 s timeout, 128 MB.
    pub fn new(name: impl Into<String>) -> LambdaFunction {
        LambdaFunction {
            name: name.into(),
            timeout: Duration::from_secs(u64::from(DEFAULT_FUNCTION_TIMEOUT_SECONDS)),
            memory_size_mb: DEFAULT_FUNCTION_MEMORY_SIZE_MB,
        }
    }

    /// The function `logical_id` of the bundled template, with its `Timeout` and `MemorySize`.
    pub fn from_template(logical_id: &str) -> Result<LambdaFunction, TemplateError> {
        Ok(LambdaFunction::from(crate::template::function_definition(
            logical_id,
        )?))
    }

    /// How long one invocation may run before Lambda ends it.
    pub fn with_timeout(mut self, timeout: Duration) -> LambdaFunction {
        self.timeout = timeout;
        self
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn timeout(&self) -> Duration {
        self.timeout
    }

    pub fn memory_size_mb(&self) -> u32 {
        self.memory_size_mb
    }

    /// `arn:aws:lambda:<region>:<account>:function:<name>`.
    pub fn arn(&self) -> String {
        format!(
            "arn:aws:lambda:{LOCAL_REGION}:{LOCAL_ACCOUNT_ID}:function:{}",
            self.name
        )
    }

    /// The context of an invocation that starts at `started`: a fresh request id, the deadline
    /// `started + timeout` (milliseconds since the epoch, as the `Lambda-Runtime-Deadline-Ms`
    /// header carries it), the invoked ARN and the function's configuration.
    pub fn invocation_context(
        &self,
        started: SystemTime,
        xray_trace_id: Option<String>,
    ) -> Context {
        let started_ms = started
            .duration_since(UNIX_EPOCH)
            .map_or(0, |since| since.as_millis());
        let deadline = started_ms.saturating_add(self.timeout.as_millis());
        let mut context = Context::default();
        context.request_id = hub_shared::ids::uuid_v4();
        context.deadline = u64::try_from(deadline).unwrap_or(u64::MAX);
        context.invoked_function_arn = self.arn();
        context.xray_trace_id = xray_trace_id;
        context.env_config = Arc::new(lambda_runtime::Config {
            function_name: self.name.clone(),
            memory: i32::try_from(self.memory_size_mb).unwrap_or(i32::MAX),
            version: "$LATEST".to_owned(),
            log_stream: String::new(),
            log_group: format!("/aws/lambda/{}", self.name),
        });
        context
    }
}

impl From<FunctionDefinition> for LambdaFunction {
    fn from(definition: FunctionDefinition) -> LambdaFunction {
        LambdaFunction {
            name: definition.logical_id,
            timeout: Duration::from_secs(u64::from(definition.timeout_seconds)),
            memory_size_mb: definition.memory_size_mb,
        }
    }
}

/// Lambda's message when it ends an invocation at its deadline.
pub fn timed_out_message(timeout: Duration) -> String {
    format!("Task timed out after {:.2} seconds", timeout.as_secs_f64())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_context_carries_the_deadline_arn_and_configuration_lambda_gives() {
        let function =
            LambdaFunction::new("SyncRunnerFunction").with_timeout(Duration::from_secs(300));
        let started = UNIX_EPOCH + Duration::from_millis(1_700_000_000_123);

        let context = function.invocation_context(started, Some("Root=1-abc".into()));

        assert_eq!(context.deadline, 1_700_000_000_123 + 300_000);
        assert_eq!(context.deadline(), started + Duration::from_secs(300));
        assert_eq!(
            context.invoked_function_arn,
            "arn:aws:lambda:us-east-1:123456789012:function:SyncRunnerFunction"
        );
        assert_eq!(context.xray_trace_id.as_deref(), Some("Root=1-abc"));
        assert_eq!(context.env_config.function_name, "SyncRunnerFunction");
        assert_eq!(context.env_config.memory, 128);
        assert_eq!(context.env_config.version, "$LATEST");
        assert_eq!(
            context.env_config.log_group,
            "/aws/lambda/SyncRunnerFunction"
        );
        let groups: Vec<usize> = context.request_id.split('-').map(str::len).collect();
        assert_eq!(groups, [8, 4, 4, 4, 12], "{}", context.request_id);
    }

    #[test]
    fn every_invocation_has_its_own_request_id() {
        let function = LambdaFunction::new("f");
        let now = SystemTime::now();

        let first = function.invocation_context(now, None);
        let second = function.invocation_context(now, None);

        assert_ne!(first.request_id, second.request_id);
    }

    #[test]
    fn template_functions_take_their_timeout_and_memory() {
        let function = LambdaFunction::from_template("IntegrationsFunction").unwrap();

        assert_eq!(function.timeout(), Duration::from_secs(29));
        assert_eq!(function.memory_size_mb(), 256);
    }

    #[test]
    fn the_timeout_message_is_lambdas() {
        assert_eq!(
            timed_out_message(Duration::from_millis(1500)),
            "Task timed out after 1.50 seconds"
        );
    }
}
