//! The inbound-webhook Lambda: wiring only.

use hub_shared::services::Services;
use inbound_webhook::{app, InboundState};

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    hub_shared::telemetry::init_json_logs();
    let services = match Services::from_env().await {
        Ok(services) => services,
        Err(error) => {
            // A bad configuration names the variable; Lambda reports the init failure.
            eprintln!("inbound-webhook: {error}");
            std::process::exit(1);
        }
    };
    lambda_http::run(app(InboundState::new(services))).await
}
