//! Assembling the local stack: resources provisioned from the template in moto, the functions built
//! from the same configuration AWS would give them, the gateway in front, and the background workers
//! (scheduler tick, queue pollers) standing in for EventBridge and the SQS event source mappings.
//! `make run` and the end-to-end tests both go through [`LocalStack::start`], so they exercise the
//! same wiring.

use std::collections::{BTreeSet, HashMap};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use aws_config::{BehaviorVersion, Region, SdkConfig};
use hub_shared::config::Config;
use hub_shared::services::Services;
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use crate::gateway::{Gateway, GatewayError};
use crate::jwt::JwtVerifier;
use crate::lambda::LambdaFunction;
use crate::provision::{provision, ProvisionError, Provisioned, StackNames};
use crate::template::{http_routes, TemplateError};
use crate::workers::{
    PollOptions, RunningWorkers, Workers, WorkersError, DEFAULT_SCHEDULE_INTERVAL,
};

pub const LOCAL_REGION: &str = "us-east-1";
pub const DEFAULT_JWT_SECRET: &str = "local-dev-secret";
pub const DEFAULT_JWT_ISSUER: &str = "integrations-hub-local";
pub const DEFAULT_JWT_AUDIENCE: &str = "integrations-hub";

/// The SDK configuration of every client of the local stack: moto's endpoint, fixed test keys.
pub fn local_sdk_config(endpoint: &str) -> SdkConfig {
    SdkConfig::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new(LOCAL_REGION))
        .endpoint_url(endpoint)
        .credentials_provider(aws_sdk_dynamodb::config::SharedCredentialsProvider::new(
            aws_sdk_dynamodb::config::Credentials::new("test", "test", None, None, "local-stack"),
        ))
        .build()
}

#[derive(Debug, Clone)]
pub struct StackOptions {
    pub names: StackNames,
    /// Where the gateway listens (`127.0.0.1:3000`; port 0 for a free one).
    pub listen: SocketAddr,
    pub jwt_secret: String,
    pub jwt_issuer: String,
    pub jwt_audience: String,
    pub allow_private_targets: bool,
    pub allowed_return_urls: Vec<String>,
    pub providers_file: Option<PathBuf>,
    /// `PLATFORM_OAUTH_APPS` for the functions (the platform's default OAuth apps).
    pub platform_oauth_apps: Option<String>,
    pub tenant_claim: String,
    /// How often the scheduled consumers tick (`LOCAL_SCHEDULE_SECONDS`; the template's
    /// `rate(1 minute)` by default).
    pub schedule_interval: Duration,
    /// How the queue pollers long-poll (shorter waits make `stop` quicker in tests).
    pub poll: PollOptions,
    /// Run the scheduler and queue pollers (off for tests that read the queues themselves).
    pub start_workers: bool,
}

impl StackOptions {
    pub fn new(names: StackNames, listen: SocketAddr) -> StackOptions {
        StackOptions {
            names,
            listen,
            jwt_secret: DEFAULT_JWT_SECRET.to_string(),
            jwt_issuer: DEFAULT_JWT_ISSUER.to_string(),
            jwt_audience: DEFAULT_JWT_AUDIENCE.to_string(),
            allow_private_targets: true,
            allowed_return_urls: vec![
                "http://localhost".to_string(),
                "http://127.0.0.1".to_string(),
            ],
            providers_file: None,
            platform_oauth_apps: None,
            tenant_claim: "tenant_id".to_string(),
            schedule_interval: DEFAULT_SCHEDULE_INTERVAL,
            poll: PollOptions::default(),
            start_workers: true,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum StackError {
    #[error("provisioning the local AWS resources failed: {0}")]
    Provision(#[from] ProvisionError),
    #[error("reading the HTTP routes of infra/template.yaml failed: {0}")]
    Template(#[from] TemplateError),
    #[error(transparent)]
    Config(#[from] hub_shared::config::ConfigError),
    #[error("starting the integrations function failed: {0}")]
    Function(#[from] integrations::StartupError),
    #[error("starting the retry dispatcher failed: {0}")]
    Dispatcher(String),
    #[error(transparent)]
    Gateway(#[from] GatewayError),
    #[error("routes point at functions the local stack does not serve yet: {0:?}")]
    MissingFunctions(Vec<String>),
    #[error(transparent)]
    Workers(#[from] WorkersError),
    #[error("could not listen on {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        source: std::io::Error,
    },
}

/// A running local stack: the gateway task, the workers, and what they were built from.
pub struct LocalStack {
    pub url: String,
    pub provisioned: Provisioned,
    pub config: Config,
    pub routes: Vec<String>,
    workers: RunningWorkers,
    stop: Option<oneshot::Sender<()>>,
    task: JoinHandle<Result<(), GatewayError>>,
}

impl LocalStack {
    pub async fn start(sdk: &SdkConfig, options: StackOptions) -> Result<LocalStack, StackError> {
        let provisioned = provision(sdk, &options.names).await?;
        let listener =
            TcpListener::bind(options.listen)
                .await
                .map_err(|source| StackError::Bind {
                    addr: options.listen,
                    source,
                })?;
        let addr = listener.local_addr().map_err(|source| StackError::Bind {
            addr: options.listen,
            source,
        })?;
        let url = format!("http://{addr}");
        let config = function_config(&options, &provisioned, &url)?;

        let mut functions = HashMap::new();
        functions.insert(
            "IntegrationsFunction".to_string(),
            integrations::app(integrations::checked(integrations::AppState::new(
                config.clone(),
                sdk,
            )?)?),
        );
        functions.insert(
            "OAuthFunction".to_string(),
            oauth::app(Services::new(config.clone(), sdk)?),
        );
        functions.insert(
            "InboundWebhookFunction".to_string(),
            inbound_webhook::app(inbound_webhook::InboundState::new(Services::new(
                config.clone(),
                sdk,
            )?)),
        );
        let verifier = JwtVerifier::new(
            options.jwt_secret.as_bytes().to_vec(),
            Some(options.jwt_issuer.clone()),
            Some(vec![options.jwt_audience.clone()]),
        );
        let routes = http_routes()?;
        let mut gateway = Gateway::new(routes.clone(), functions, verifier)?;
        for function in routes
            .iter()
            .map(|route| &route.function)
            .collect::<BTreeSet<_>>()
        {
            gateway = gateway.with_lambda_function(LambdaFunction::from_template(function)?);
        }
        let missing = gateway.missing_functions();
        if !missing.is_empty() {
            return Err(StackError::MissingFunctions(missing));
        }
        let routes = gateway.route_keys();
        // Consumers plug in here, one `.schedule(...)` / `.poll_queue(...)` line each with the
        // function's `LambdaFunction::from_template(...)`.
        let dispatcher = retry_dispatcher::Consumer::new(&Services::new(config.clone(), sdk)?)
            .map_err(|e| StackError::Dispatcher(e.to_string()))?;
        let sync_services = Services::new(config.clone(), sdk)?;
        let tick_services = sync_services.clone();
        let mut workers = Workers::new();
        if options.start_workers {
            workers = workers
                .schedule(
                    LambdaFunction::from_template("SyncRunnerFunction")?,
                    options.schedule_interval,
                    move |event| sync_runner::handle_schedule(tick_services.clone(), event),
                )
                .poll_queue(
                    LambdaFunction::from_template("SyncRunnerFunction")?,
                    sdk,
                    provisioned.sync_queue_url.clone(),
                    options.poll,
                    move |event| sync_runner::handle_jobs(sync_services.clone(), event),
                );
            workers = workers.poll_queue(
                LambdaFunction::from_template("RetryDispatcherFunction")?,
                sdk,
                provisioned.dispatch_queue_url.clone(),
                options.poll,
                move |event| retry_dispatcher::handle(dispatcher.clone(), event),
            );
        }
        let workers = workers.start().await?;
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(gateway.serve(listener, async move {
            let _ = stopped.await;
        }));
        Ok(LocalStack {
            url,
            provisioned,
            config,
            routes,
            workers,
            stop: Some(stop),
            task,
        })
    }

    /// The scheduled consumers and queue pollers running in this stack.
    pub fn workers(&self) -> &RunningWorkers {
        &self.workers
    }

    /// Stops the workers (each finishes its in-flight invocation), then the gateway (stops
    /// accepting, finishes in-flight requests).
    pub async fn stop(mut self) -> Result<(), StackError> {
        let workers = self.workers.stop().await;
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        let gateway = match (&mut self.task).await {
            Ok(result) => result,
            Err(join) => Err(GatewayError::Crashed(join.to_string())),
        };
        workers?;
        Ok(gateway?)
    }
}

/// The environment a deployed function would get, validated by the same `Config` loader.
fn function_config(
    options: &StackOptions,
    provisioned: &Provisioned,
    public_url: &str,
) -> Result<Config, StackError> {
    let mut env: HashMap<&str, String> = HashMap::from([
        ("AWS_REGION", LOCAL_REGION.to_string()),
        ("TABLE_NAME", provisioned.table_name.clone()),
        ("KMS_KEY_ID", provisioned.key_id.clone()),
        ("SYNC_QUEUE_URL", provisioned.sync_queue_url.clone()),
        ("DISPATCH_QUEUE_URL", provisioned.dispatch_queue_url.clone()),
        ("PAYLOAD_BUCKET", provisioned.payload_bucket.clone()),
        ("PUBLIC_BASE_URL", public_url.to_string()),
        ("ALLOWED_RETURN_URLS", options.allowed_return_urls.join(",")),
        ("TENANT_CLAIM", options.tenant_claim.clone()),
        (
            "ALLOW_PRIVATE_TARGETS",
            options.allow_private_targets.to_string(),
        ),
    ]);
    if let Some(apps) = &options.platform_oauth_apps {
        env.insert("PLATFORM_OAUTH_APPS", apps.clone());
    }
    if let Some(file) = &options.providers_file {
        env.insert("PROVIDERS_FILE", file.display().to_string());
    }
    Ok(Config::from_lookup(|name| env.get(name).cloned())?)
}
