//! Structured JSON logs (tracing), one subscriber per process.

use tracing_subscriber::EnvFilter;

/// JSON lines to stdout (what Lambda's JSON log format expects), level from `RUST_LOG` (default
/// info). In Lambda, CloudWatch stamps every line, so the time is left out there; elsewhere (the
/// local stack) each line carries its own. Safe to call twice: the second call does nothing.
pub fn init_json_logs() {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .json()
        .with_env_filter(filter)
        .with_current_span(false)
        .with_target(false);
    let _ = if std::env::var_os("AWS_LAMBDA_FUNCTION_NAME").is_some() {
        builder.without_time().try_init()
    } else {
        builder.try_init()
    };
}
