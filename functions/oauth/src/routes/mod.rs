//! One file per route group.

pub mod callback;
pub mod connect;
pub mod oauth_app;
pub mod refresh;

use hub_shared::catalog::{OAuth2, Provider};
use hub_shared::domain::ProviderSlug;
use hub_shared::error::ApiError;

use crate::AppState;

/// The OAuth provider named in the path: unknown → 404, not OAuth → 400 `not_supported`.
pub fn oauth_provider<'a>(
    state: &'a AppState,
    raw: &str,
) -> Result<(ProviderSlug, &'a Provider, &'a OAuth2), ApiError> {
    let slug = ProviderSlug::parse(raw).map_err(|_| ApiError::not_found("provider"))?;
    let provider = state
        .catalog
        .get(slug.as_str())
        .ok_or_else(|| ApiError::not_found("provider"))?;
    let oauth = provider.oauth2().ok_or_else(|| {
        ApiError::not_supported(format!(
            "{slug} does not connect with OAuth 2.0: create it with POST /api/integrations"
        ))
    })?;
    Ok((slug, provider, oauth))
}

/// The redirect URI registered with the provider: `PUBLIC_BASE_URL/api/integrations/callback/{slug}`.
pub fn redirect_uri(state: &AppState, slug: &ProviderSlug) -> String {
    format!(
        "{}/api/integrations/callback/{slug}",
        state.config.public_base_url
    )
}
