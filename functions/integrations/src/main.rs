//! The integrations Lambda: wiring only.

use hub_shared::config::Config;
use integrations::{app, AppState};

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    hub_shared::telemetry::init_json_logs();
    let state = match start().await {
        Ok(state) => state,
        Err(error) => {
            // A bad configuration names the variable; Lambda reports the init failure.
            eprintln!("integrations: {error}");
            std::process::exit(1);
        }
    };
    lambda_http::run(app(state)).await
}

async fn start() -> Result<AppState, Box<dyn std::error::Error>> {
    let config = Config::from_env()?;
    let aws = hub_shared::aws::load_sdk_config().await;
    Ok(AppState::new(config, &aws)?)
}
