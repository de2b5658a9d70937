//! What every handler of the function shares, built once per cold start.

use std::sync::Arc;

use axum::extract::FromRef;
use hub_shared::auth::TenantClaim;
use hub_shared::catalog::{Catalog, CatalogError};
use hub_shared::config::{Config, ConfigError};
use hub_shared::crypto::EnvelopeCipher;
use hub_shared::http_client::{ClientBuildError, GuardOptions, GuardedHttpClient};
use hub_shared::store::Store;

#[derive(Clone)]
pub struct AppState {
    pub config: Arc<Config>,
    pub store: Store,
    pub catalog: Arc<Catalog>,
    /// Provider calls (test connection): redirects followed hop by hop through the SSRF guard.
    pub provider_http: GuardedHttpClient,
    tenant_claim: TenantClaim,
}

#[derive(Debug, thiserror::Error)]
pub enum StartupError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error(transparent)]
    Catalog(#[from] CatalogError),
    #[error("could not build the HTTP client: {0}")]
    HttpClient(#[from] ClientBuildError),
}

impl AppState {
    /// Validates everything a request could trip over later, so a bad deploy fails at start-up.
    pub fn new(config: Config, aws: &aws_config::SdkConfig) -> Result<AppState, StartupError> {
        let catalog = Catalog::load(config.providers_file.as_deref())?;
        let cipher = EnvelopeCipher::new(aws_sdk_kms::Client::new(aws), config.kms_key_id.clone());
        let store = Store::new(
            aws_sdk_dynamodb::Client::new(aws),
            config.table_name.clone(),
            cipher,
        );
        let provider_http =
            GuardedHttpClient::new(GuardOptions::provider_calls(config.allow_private_targets))?;
        Ok(AppState {
            tenant_claim: TenantClaim(config.tenant_claim.as_str().into()),
            config: Arc::new(config),
            store,
            catalog: Arc::new(catalog),
            provider_http,
        })
    }
}

impl FromRef<AppState> for TenantClaim {
    fn from_ref(state: &AppState) -> TenantClaim {
        state.tenant_claim.clone()
    }
}
