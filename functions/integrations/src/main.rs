//! The integrations Lambda: wiring only.

use hub_shared::services::Services;
use integrations::app;

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    hub_shared::telemetry::init_json_logs();
    let services = match Services::from_env().await.and_then(integrations::checked) {
        Ok(services) => services,
        Err(error) => {
            // A bad configuration names the variable; Lambda reports the init failure.
            eprintln!("integrations: {error}");
            std::process::exit(1);
        }
    };
    lambda_http::run(app(services)).await
}
