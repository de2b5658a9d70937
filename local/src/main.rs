//! `make run`: moto, the template's resources, every HTTP function on http://127.0.0.1:3000, and the
//! workers (scheduler tick, queue pollers) that stand in for EventBridge and SQS event sources.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use hub_local::jwt::dev_token;
use hub_local::moto::Moto;
use hub_local::provision::StackNames;
use hub_local::stack::{local_sdk_config, LocalStack, StackOptions};
use hub_local::workers::{
    parse_schedule_seconds, RunningWorkers, DEFAULT_SCHEDULE_INTERVAL, SCHEDULE_SECONDS_VARIABLE,
};
use hub_shared::config::parse_bool;

#[tokio::main]
async fn main() {
    if let Err(error) = run().await {
        eprintln!("make run: {error}");
        std::process::exit(1);
    }
}

async fn run() -> Result<(), Box<dyn std::error::Error>> {
    tracing_subscriber_init();
    let settings = Settings::from_env()?;
    let moto = Moto::reuse_or_start(settings.moto_port, &PathBuf::from("target/local")).await?;
    let sdk = local_sdk_config(moto.endpoint());

    let mut options = StackOptions::new(StackNames::with_prefix(&settings.prefix), settings.listen);
    options.jwt_secret = settings.jwt_secret.clone();
    options.allow_private_targets = settings.allow_private_targets;
    options.providers_file = settings.providers_file.clone();
    options.platform_oauth_apps = settings.platform_oauth_apps.clone();
    options.schedule_interval = settings.schedule_interval;
    if let Some(claim) = &settings.tenant_claim {
        options.tenant_claim = claim.clone();
    }
    if let Some(urls) = &settings.allowed_return_urls {
        options.allowed_return_urls = urls.clone();
    }
    let stack = LocalStack::start(&sdk, options.clone()).await?;

    let token = dev_token(
        settings.jwt_secret.as_bytes(),
        &options.tenant_claim,
        "demo",
        "dev-user",
        &options.jwt_issuer,
        &options.jwt_audience,
        7 * 24 * 3600,
    );
    println!();
    println!("Integrations Hub local stack");
    println!("  API        {}", stack.url);
    println!(
        "  moto       {} ({})",
        moto.endpoint(),
        if moto.owns_process() {
            "started here"
        } else {
            "reused"
        }
    );
    println!("  table      {}", stack.provisioned.table_name);
    println!("  KMS key    {}", stack.provisioned.key_id);
    println!("  payloads   s3://{}", stack.provisioned.payload_bucket);
    println!("  routes     {}", stack.routes.len());
    println!(
        "  workers    {}",
        describe_workers(stack.workers(), settings.schedule_interval)
    );
    println!(
        "  private targets allowed: {}",
        settings.allow_private_targets
    );
    println!();
    println!("Dev JWT for tenant `demo` (valid 7 days):");
    println!("  export TOKEN={token}");
    println!();
    println!("Try:");
    println!(
        "  curl -s -H \"Authorization: Bearer $TOKEN\" '{}/api/providers?category=payments'",
        stack.url
    );
    println!();
    println!("Ctrl-C stops everything.");

    tokio::signal::ctrl_c().await?;
    println!("stopping…");
    stack.stop().await?;
    moto.stop().await;
    Ok(())
}

struct Settings {
    listen: SocketAddr,
    moto_port: u16,
    prefix: String,
    jwt_secret: String,
    allow_private_targets: bool,
    providers_file: Option<PathBuf>,
    platform_oauth_apps: Option<String>,
    tenant_claim: Option<String>,
    allowed_return_urls: Option<Vec<String>>,
    schedule_interval: Duration,
}

impl Settings {
    fn from_env() -> Result<Settings, String> {
        let var = |name: &str| std::env::var(name).ok().filter(|v| !v.trim().is_empty());
        let port = |name: &str, default: u16| -> Result<u16, String> {
            var(name).map_or(Ok(default), |v| {
                v.parse()
                    .map_err(|_| format!("{name} must be a port number, got {v}"))
            })
        };
        let listen = SocketAddr::from(([127, 0, 0, 1], port("LOCAL_PORT", 3000)?));
        // On by default in the local stack only; `ALLOW_PRIVATE_TARGETS=false make run` is honoured.
        let allow_private_targets = match var("ALLOW_PRIVATE_TARGETS") {
            None => true,
            Some(value) => parse_bool(&value).ok_or_else(|| {
                format!("ALLOW_PRIVATE_TARGETS must be true or false, got {value}")
            })?,
        };
        let schedule_interval = match var(SCHEDULE_SECONDS_VARIABLE) {
            None => DEFAULT_SCHEDULE_INTERVAL,
            Some(value) => parse_schedule_seconds(&value).map_err(|e| e.to_string())?,
        };
        Ok(Settings {
            listen,
            moto_port: port("MOTO_PORT", 4566)?,
            prefix: var("LOCAL_STACK_PREFIX").unwrap_or_else(|| "integrations-hub".to_string()),
            jwt_secret: var("LOCAL_JWT_SECRET")
                .unwrap_or_else(|| hub_local::stack::DEFAULT_JWT_SECRET.to_string()),
            allow_private_targets,
            providers_file: var("PROVIDERS_FILE").map(PathBuf::from),
            platform_oauth_apps: var("PLATFORM_OAUTH_APPS"),
            tenant_claim: var("TENANT_CLAIM"),
            allowed_return_urls: var("ALLOWED_RETURN_URLS").map(|list| {
                list.split(',')
                    .map(|s| s.trim().to_string())
                    .filter(|s| !s.is_empty())
                    .collect()
            }),
            schedule_interval,
        })
    }
}

/// The banner's workers line: only what actually runs.
fn describe_workers(workers: &RunningWorkers, schedule_interval: Duration) -> String {
    let schedules = if workers.schedules().is_empty() {
        "none yet".to_string()
    } else {
        workers
            .schedules()
            .iter()
            .map(|s| format!("{} every {} s", s.name, s.interval.as_secs()))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let pollers = if workers.queue_pollers().is_empty() {
        "none yet".to_string()
    } else {
        workers
            .queue_pollers()
            .iter()
            .map(|p| format!("{} <- {}", p.name, p.queue_url))
            .collect::<Vec<_>>()
            .join(", ")
    };
    format!(
        "scheduler every {} s, scheduled consumers: {schedules}; queue pollers: {pollers}",
        schedule_interval.as_secs()
    )
}

fn tracing_subscriber_init() {
    hub_shared::telemetry::init_json_logs();
}
