//! Start-up: everything a function needs, built once per cold start from one configuration and one
//! AWS SDK configuration — the store (DynamoDB + the envelope cipher over KMS), the catalog, the
//! guarded provider HTTP client and the queues. The webhook delivery client and the payload store
//! are built on first use, so a cold start (and a binary) that never uses them does not pay for
//! them. A bad deploy (configuration, providers file) fails here, with a message naming what is
//! wrong, before any request is served.

use std::sync::{Arc, OnceLock};

use crate::auth::TenantClaim;
use crate::catalog::{Catalog, CatalogError};
use crate::config::{Config, ConfigError};
use crate::crypto::EnvelopeCipher;
use crate::http_client::{ClientBuildError, GuardOptions, GuardedHttpClient};
#[cfg(feature = "payloads")]
use crate::payloads::PayloadStore;
use crate::queue::Queues;
use crate::store::Store;

#[derive(Debug, thiserror::Error)]
pub enum StartupError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error(transparent)]
    Catalog(#[from] CatalogError),
    #[error("could not build the HTTP client: {0}")]
    HttpClient(#[from] ClientBuildError),
}

/// What every handler and consumer shares. Cheap to clone (all parts are shared handles).
#[derive(Clone)]
pub struct Services {
    pub config: Arc<Config>,
    pub store: Store,
    pub catalog: Arc<Catalog>,
    /// Provider calls (test connection, sync, actions): every hop through the SSRF guard.
    pub provider_http: GuardedHttpClient,
    pub queues: Queues,
    pub tenant_claim: TenantClaim,
    /// Large inbound bodies (the payloads bucket); see [`Services::payloads`].
    #[cfg(feature = "payloads")]
    payloads: Arc<LazyPayloadStore>,
    /// Webhook deliveries made in the request (`POST /api/webhooks/{id}/test`); see
    /// [`Services::delivery_http`].
    delivery_http: Arc<OnceLock<GuardedHttpClient>>,
}

impl Services {
    /// The deployed start-up: configuration from the environment, AWS from the default chain.
    pub async fn from_env() -> Result<Services, StartupError> {
        let config = Config::from_env()?;
        let aws = crate::aws::load_sdk_config().await;
        Services::new(config, &aws)
    }

    /// Validates everything a request could trip over later, so a bad deploy fails at start-up.
    pub fn new(config: Config, aws: &aws_config::SdkConfig) -> Result<Services, StartupError> {
        let catalog = Catalog::load(config.providers_file.as_deref())?;
        for slug in config.platform_oauth_apps.keys() {
            if catalog.get(slug).and_then(|p| p.oauth2()).is_none() {
                return Err(StartupError::Config(ConfigError::Invalid {
                    variable: "PLATFORM_OAUTH_APPS",
                    reason: format!("{slug} is not an OAuth 2.0 provider of the catalog"),
                }));
            }
        }
        let cipher = EnvelopeCipher::new(aws_sdk_kms::Client::new(aws), config.kms_key_id.clone());
        let store = Store::new(
            aws_sdk_dynamodb::Client::new(aws),
            config.table_name.clone(),
            cipher,
        );
        let provider_http =
            GuardedHttpClient::new(GuardOptions::provider_calls(config.allow_private_targets))?;
        let queues = Queues::new(
            aws_sdk_sqs::Client::new(aws),
            config.sync_queue_url.to_string(),
            config.dispatch_queue_url.to_string(),
        );
        Ok(Services {
            tenant_claim: TenantClaim(config.tenant_claim.as_str().into()),
            config: Arc::new(config),
            store,
            catalog: Arc::new(catalog),
            provider_http,
            queues,
            #[cfg(feature = "payloads")]
            payloads: Arc::new(LazyPayloadStore {
                aws: aws.clone(),
                store: OnceLock::new(),
            }),
            delivery_http: Arc::new(OnceLock::new()),
        })
    }

    /// The payloads bucket (claim check of large inbound bodies), built on first use; with the
    /// `payloads` feature, which the functions that receive or process inbound webhooks enable.
    /// Built at start-up, the S3 client grew the integrations binary (which never reads a payload)
    /// past 10 MiB in any build that also had the feature on, since one cargo invocation unifies
    /// features. Built here, only a binary that calls this links it (docs/decisions.md, "Large
    /// payloads").
    #[cfg(feature = "payloads")]
    pub fn payloads(&self) -> &PayloadStore {
        self.payloads.store.get_or_init(|| {
            PayloadStore::new(
                crate::payloads::s3_client(&self.payloads.aws),
                self.config.payload_bucket.clone(),
                self.config.kms_key_id.clone(),
            )
        })
    }

    /// The client for webhook deliveries (the SSRF guard, no redirects), built on first use. Its
    /// options are the same ones start-up validated for the provider client, so a failure here is
    /// a broken TLS set-up, not a bad deploy value.
    pub fn delivery_http(&self) -> Result<&GuardedHttpClient, ClientBuildError> {
        if let Some(client) = self.delivery_http.get() {
            return Ok(client);
        }
        let client = GuardedHttpClient::new(GuardOptions::webhook_deliveries(
            self.config.allow_private_targets,
        ))?;
        // Two requests racing both build one; the first stored is the one every caller gets.
        Ok(self.delivery_http.get_or_init(|| client))
    }
}

/// The payload store and the SDK configuration it is built from (once; building makes no AWS call).
#[cfg(feature = "payloads")]
struct LazyPayloadStore {
    aws: aws_config::SdkConfig,
    store: OnceLock<PayloadStore>,
}

#[cfg(feature = "http")]
impl axum::extract::FromRef<Services> for TenantClaim {
    fn from_ref(services: &Services) -> TenantClaim {
        services.tenant_claim.clone()
    }
}
