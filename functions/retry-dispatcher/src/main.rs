//! The retry-dispatcher Lambda: wiring only.

use hub_shared::services::Services;
use lambda_runtime::{service_fn, LambdaEvent};
use retry_dispatcher::Consumer;

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    hub_shared::telemetry::init_json_logs();
    let dispatcher = match Services::from_env()
        .await
        .map_err(|e| e.to_string())
        .and_then(|services| Consumer::new(&services).map_err(|e| e.to_string()))
    {
        Ok(dispatcher) => dispatcher,
        Err(error) => {
            // A bad configuration names the variable; Lambda reports the init failure.
            eprintln!("retry-dispatcher: {error}");
            std::process::exit(1);
        }
    };
    lambda_runtime::run(service_fn(move |event: LambdaEvent<_>| {
        retry_dispatcher::handle(dispatcher.clone(), event)
    }))
    .await
}
