//! The integrations Lambda: wiring only.

use hub_shared::config::Config;
use integrations::{app, AppState};

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    hub_shared::telemetry::init_json_logs();
    let config = Config::from_env()?;
    let aws = aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await;
    let state = AppState::new(config, &aws)?;
    lambda_http::run(app(state)).await
}
