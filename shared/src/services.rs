//! Start-up: everything a function needs, built once per cold start from one configuration and one
//! AWS SDK configuration — the store (DynamoDB + the envelope cipher over KMS), the catalog, the
//! guarded provider HTTP client and the queues. A bad deploy (configuration, providers file) fails
//! here, with a message naming what is wrong, before any request is served.

use std::sync::Arc;

use crate::auth::TenantClaim;
use crate::catalog::{Catalog, CatalogError};
use crate::config::{Config, ConfigError};
use crate::crypto::EnvelopeCipher;
use crate::http_client::{ClientBuildError, GuardOptions, GuardedHttpClient};
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
        })
    }
}

#[cfg(feature = "http")]
impl axum::extract::FromRef<Services> for TenantClaim {
    fn from_ref(services: &Services) -> TenantClaim {
        services.tenant_claim.clone()
    }
}
