//! Which OAuth app a connection uses: the tenant's own (`PUT /api/providers/{slug}/oauth-app`),
//! else the platform's default for the provider (`PLATFORM_OAUTH_APPS`), else none
//! (`oauth_app_missing`).

use zeroize::Zeroizing;

use super::token_endpoint::ClientCredentials;
use crate::config::Config;
use crate::crypto::{oauth_app_owner_id, CryptoError, SecretSlot};
use crate::domain::{ProviderSlug, TenantId};
use crate::store::{Store, StoreError};

/// The field of the client secret envelope (docs/envelope-format.md).
pub const CLIENT_SECRET_FIELD: &str = "clientSecret";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OAuthAppSource {
    Tenant,
    Platform,
}

/// An OAuth app ready for the token endpoint.
#[derive(Debug, Clone)]
pub struct ResolvedApp {
    pub credentials: ClientCredentials,
    /// The app's scopes when it names its own, else `None` (the catalog's apply).
    pub scopes: Option<Vec<String>>,
    pub source: OAuthAppSource,
}

#[derive(Debug, thiserror::Error)]
pub enum ResolveAppError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Crypto(#[from] CryptoError),
}

/// The tenant's own app for the provider, else the platform default, else `None`.
pub async fn resolve_app(
    store: &Store,
    config: &Config,
    tenant: &TenantId,
    provider: &ProviderSlug,
) -> Result<Option<ResolvedApp>, ResolveAppError> {
    if let Some(app) = store.get_oauth_app(tenant, provider).await? {
        let secret: String = store
            .cipher()
            .open_json(
                SecretSlot::new(
                    tenant.as_str(),
                    &oauth_app_owner_id(provider.as_str()),
                    CLIENT_SECRET_FIELD,
                ),
                &app.client_secret,
            )
            .await?;
        return Ok(Some(ResolvedApp {
            credentials: ClientCredentials {
                client_id: app.client_id,
                client_secret: Zeroizing::new(secret),
            },
            scopes: (!app.scopes.is_empty()).then_some(app.scopes),
            source: OAuthAppSource::Tenant,
        }));
    }
    Ok(config
        .platform_oauth_apps
        .get(provider.as_str())
        .map(|app| ResolvedApp {
            credentials: ClientCredentials {
                client_id: app.client_id.clone(),
                client_secret: app.client_secret.clone(),
            },
            scopes: app.scopes.clone(),
            source: OAuthAppSource::Platform,
        }))
}
