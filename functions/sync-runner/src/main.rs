//! The sync-runner Lambda: wiring only. One function takes both of its event sources (the
//! EventBridge schedule and the sync queue), told apart by the event's shape.

use hub_shared::services::Services;
use lambda_runtime::{service_fn, LambdaEvent};
use serde_json::Value;

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    hub_shared::telemetry::init_json_logs();
    let services = match Services::from_env().await {
        Ok(services) => services,
        Err(error) => {
            // A bad configuration names the variable; Lambda reports the init failure.
            eprintln!("sync-runner: {error}");
            std::process::exit(1);
        }
    };
    lambda_runtime::run(service_fn(move |event: LambdaEvent<Value>| {
        sync_runner::handle_any(services.clone(), event)
    }))
    .await
}
