//! The token lifecycle every provider call goes through ([`provider_credentials`]).
//!
//! An access token that expires within 5 minutes is refreshed first, by exactly one process: the
//! one that takes the refresh lease on the integration (one conditional write over the token
//! generation it read). Everyone else waits, reads the integration again, and uses the tokens the
//! holder stored. A rotated refresh token is saved with the access token, in the same write. A
//! refusal from the token endpoint (`invalid_grant`, 400, 401) makes the integration `expired`
//! and announces it; an outage keeps the status, is retried with backoff, and falls back to the
//! current access token while it is still valid.

use std::time::Duration;

use chrono::{DateTime, Utc};
use zeroize::Zeroizing;

use super::apps::{resolve_app, ResolveAppError};
use super::token_endpoint::{self, TokenEndpointError, TokenGrant};
use crate::catalog::{OAuth2, Provider};
use crate::credentials::{self, CredentialFields};
use crate::crypto::CryptoError;
use crate::domain::{IntegrationStatus, LogId};
use crate::events::{Event, StatusChangeReason};
use crate::retry::{retry_delay, RandomJitter};
use crate::services::Services;
use crate::store::{
    timestamp, IntegrationItem, IntegrationLog, LeaseAttempt, LogAction, LogStatus, StoreError,
    TokenWrite,
};

/// Refresh when the access token expires within this long.
pub const REFRESH_WINDOW: chrono::Duration = chrono::Duration::minutes(5);
/// The lease outlives every attempt its holder makes (3 token requests of at most 10 s plus
/// backoff), so it is never taken from a live holder.
pub const REFRESH_LEASE: Duration = Duration::from_secs(60);
/// How long a caller waits for another process's refresh before giving up.
const MAX_WAIT: Duration = Duration::from_secs(45);
/// Token requests per refresh when the endpoint is unavailable.
const REFRESH_ATTEMPTS: u32 = 3;

/// The field names of the token set in the credentials envelope.
pub const ACCESS_TOKEN: &str = "accessToken";
pub const REFRESH_TOKEN: &str = "refreshToken";
pub const ID_TOKEN: &str = "idToken";
pub const TOKEN_TYPE: &str = "tokenType";

#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    /// The integration cannot get a usable token without the tenant connecting again.
    #[error("{0}; reconnect through GET /api/integrations/connect/{{provider}}")]
    ReconnectRequired(String),
    /// The token endpoint is unavailable and the access token has expired (or a refresh was
    /// asked for): the status is kept, later calls try again.
    #[error("the provider's token endpoint is unavailable: {0}")]
    Unavailable(String),
    /// Neither the tenant nor the platform has an OAuth app for the provider any more.
    #[error("no OAuth app is configured for {0}")]
    AppMissing(String),
    #[error("the integration no longer exists")]
    Gone,
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Crypto(#[from] CryptoError),
}

impl From<ResolveAppError> for TokenError {
    fn from(error: ResolveAppError) -> Self {
        match error {
            ResolveAppError::Store(error) => TokenError::Store(error),
            ResolveAppError::Crypto(error) => TokenError::Crypto(error),
        }
    }
}

/// The token set as sealed in the credentials envelope.
pub fn token_fields(grant: &TokenGrant, previous_refresh: Option<&str>) -> CredentialFields {
    let mut fields = CredentialFields::new();
    fields.insert(ACCESS_TOKEN.to_string(), grant.access_token.clone());
    let refresh = grant
        .refresh_token
        .clone()
        .or_else(|| previous_refresh.map(|token| Zeroizing::new(token.to_string())));
    if let Some(refresh) = refresh {
        fields.insert(REFRESH_TOKEN.to_string(), refresh);
    }
    if let Some(id_token) = &grant.id_token {
        fields.insert(ID_TOKEN.to_string(), id_token.clone());
    }
    fields.insert(
        TOKEN_TYPE.to_string(),
        Zeroizing::new(grant.token_type.clone()),
    );
    fields
}

/// When the granted access token expires (`None`: the server did not say).
pub fn expires_at(grant: &TokenGrant, now: DateTime<Utc>) -> Option<String> {
    grant.expires_in.map(|lifetime| {
        let lifetime = chrono::Duration::from_std(lifetime).unwrap_or(chrono::Duration::days(3650));
        timestamp(now + lifetime)
    })
}

/// The granted scopes, or the requested ones when the server did not list them (RFC 6749 §5.1).
pub fn granted_scopes(grant: &TokenGrant, requested: &[String]) -> Vec<String> {
    grant.scopes.clone().unwrap_or_else(|| requested.to_vec())
}

/// The credentials a provider call applies: the stored fields of an API-key or basic
/// integration, or for OAuth a token set whose access token is valid for at least 5 minutes
/// (refreshed here when it is not).
pub async fn provider_credentials(
    services: &Services,
    provider: &Provider,
    item: &IntegrationItem,
) -> Result<CredentialFields, TokenError> {
    match provider.oauth2() {
        Some(oauth) => fresh_tokens(services, oauth, item, false).await,
        None if item.credentials.is_some() => open_tokens(services, item).await,
        None => Ok(CredentialFields::new()),
    }
}

/// `POST /api/integrations/{id}/refresh`: a refresh now, whatever the expiry, under the same
/// lease. Returns the integration as stored after it.
pub async fn refresh_now(
    services: &Services,
    oauth: &OAuth2,
    item: &IntegrationItem,
) -> Result<IntegrationItem, TokenError> {
    fresh_tokens(services, oauth, item, true).await?;
    services
        .store
        .get_integration(&item.tenant_id, &item.id)
        .await?
        .ok_or(TokenError::Gone)
}

async fn fresh_tokens(
    services: &Services,
    oauth: &OAuth2,
    item: &IntegrationItem,
    force: bool,
) -> Result<CredentialFields, TokenError> {
    if item.status == IntegrationStatus::Expired {
        return Err(TokenError::ReconnectRequired(
            "the integration's tokens have expired".to_string(),
        ));
    }
    let owner = crate::ids::new_id(crate::ids::IdKind::Log).replacen("log_", "lease_", 1);
    let started = tokio::time::Instant::now();
    let mut current = item.clone();
    let mut must_refresh = force;
    let mut waits = 0u32;
    loop {
        let tokens = open_tokens(services, &current).await?;
        let expiry = parse_expiry(current.token_expires_at.as_deref());
        let now = Utc::now();
        if !must_refresh && !expires_within(expiry, now, REFRESH_WINDOW) {
            return Ok(tokens);
        }
        let Some(refresh_token) = tokens.get(REFRESH_TOKEN).cloned() else {
            // Nothing to refresh with: use the token while it lasts.
            if !force && !expires_within(expiry, now, chrono::Duration::zero()) {
                return Ok(tokens);
            }
            return Err(TokenError::ReconnectRequired(
                "the provider issued no refresh token and the access token has expired".to_string(),
            ));
        };
        match services
            .store
            .acquire_refresh_lease(
                &current.tenant_id,
                &current.id,
                &owner,
                current.token_generation,
                REFRESH_LEASE,
            )
            .await?
        {
            LeaseAttempt::Acquired => {
                return refresh_under_lease(
                    services,
                    oauth,
                    &current,
                    &owner,
                    &refresh_token,
                    tokens,
                    force,
                )
                .await;
            }
            LeaseAttempt::Gone => return Err(TokenError::Gone),
            LeaseAttempt::Busy => {
                if started.elapsed() > MAX_WAIT {
                    return Err(TokenError::Unavailable(
                        "another refresh of this integration did not finish in time".to_string(),
                    ));
                }
                tokio::time::sleep(wait_step(waits)).await;
                waits += 1;
                let seen = current.token_generation;
                current = services
                    .store
                    .get_integration(&item.tenant_id, &item.id)
                    .await?
                    .ok_or(TokenError::Gone)?;
                if current.status == IntegrationStatus::Expired {
                    return Err(TokenError::ReconnectRequired(
                        "the provider refused the refresh token".to_string(),
                    ));
                }
                if current.token_generation != seen {
                    // Someone else refreshed: their tokens are ours, even when forced (the point
                    // of a forced refresh, fresh tokens, is met) and even inside the window, as
                    // long as they have not expired.
                    let expiry = parse_expiry(current.token_expires_at.as_deref());
                    if !expires_within(expiry, Utc::now(), chrono::Duration::zero()) {
                        return open_tokens(services, &current).await;
                    }
                    must_refresh = true;
                }
            }
        }
    }
}

/// The holder's part: the token request (retried while the endpoint is unavailable), then one
/// write that stores the tokens and drops the lease.
async fn refresh_under_lease(
    services: &Services,
    oauth: &OAuth2,
    item: &IntegrationItem,
    owner: &str,
    refresh_token: &str,
    current_tokens: CredentialFields,
    force: bool,
) -> Result<CredentialFields, TokenError> {
    let started_at = Utc::now();
    let Some(app) = resolve_app(
        &services.store,
        &services.config,
        &item.tenant_id,
        &item.provider,
    )
    .await?
    else {
        services
            .store
            .release_refresh_lease(&item.tenant_id, &item.id, owner)
            .await?;
        return Err(TokenError::AppMissing(item.provider.to_string()));
    };
    let http = services
        .delivery_http()
        .map_err(|e| TokenError::Unavailable(e.to_string()))?;
    let mut attempt = 0;
    let outcome = loop {
        attempt += 1;
        match token_endpoint::refresh(http, oauth, &app.credentials, refresh_token).await {
            Err(TokenEndpointError::Unavailable { reason }) if attempt < REFRESH_ATTEMPTS => {
                tracing::warn!(tenantId = %item.tenant_id, integrationId = %item.id, attempt,
                    reason = %reason, "token refresh failed; retrying");
                // The one backoff function: 1 s, then 2 s (±20 %), well inside the lease.
                tokio::time::sleep(retry_delay(1, attempt, None, RandomJitter)).await;
            }
            other => break other,
        }
    };
    match outcome {
        Ok(grant) => {
            let now = Utc::now();
            let fields = token_fields(&grant, Some(refresh_token));
            let envelope = credentials::seal(
                services.store.cipher(),
                item.tenant_id.as_str(),
                &item.id,
                &fields,
            )
            .await?;
            let saved = services
                .store
                .save_refreshed_tokens(
                    &item.tenant_id,
                    &item.id,
                    TokenWrite {
                        envelope,
                        token_expires_at: expires_at(&grant, now),
                        scopes: granted_scopes(&grant, &item.scopes),
                    },
                )
                .await?;
            if saved.is_none() {
                return Err(TokenError::Gone);
            }
            log_refresh(services, item, started_at, None).await;
            tracing::info!(tenantId = %item.tenant_id, integrationId = %item.id,
                rotated = grant.refresh_token.is_some(), "token refreshed");
            Ok(fields)
        }
        Err(TokenEndpointError::Refused { status, error }) => {
            let message = format!(
                "the provider refused the refresh token ({error}, HTTP {status}); reconnect to restore the integration"
            );
            let transition = services
                .store
                .mark_refresh_refused(&item.tenant_id, &item.id, &message)
                .await?;
            log_refresh(services, item, started_at, Some((&error, &message))).await;
            tracing::warn!(tenantId = %item.tenant_id, integrationId = %item.id, status,
                error = %error, "token refresh refused; the integration is expired");
            if let Some(changed) = transition.and_then(|t| {
                Event::status_changed(&t.item, t.from, StatusChangeReason::RefreshFailed)
            }) {
                if let Err(emit) =
                    crate::delivery::emit(&services.store, &services.queues, &[changed]).await
                {
                    tracing::error!(tenantId = %item.tenant_id, integrationId = %item.id,
                        error = %emit, "integration.status_changed could not be emitted");
                }
            }
            Err(TokenError::ReconnectRequired(format!(
                "the provider refused the refresh token ({error})"
            )))
        }
        Err(TokenEndpointError::Unavailable { reason }) => {
            services
                .store
                .release_refresh_lease(&item.tenant_id, &item.id, owner)
                .await?;
            log_refresh(
                services,
                item,
                started_at,
                Some(("token_endpoint_unavailable", &reason)),
            )
            .await;
            let expiry = parse_expiry(item.token_expires_at.as_deref());
            // A refresh that was asked for did not happen: say so. Otherwise a token that is
            // still valid lets the call go ahead; a later one refreshes.
            if !force && !expires_within(expiry, Utc::now(), chrono::Duration::zero()) {
                tracing::warn!(tenantId = %item.tenant_id, integrationId = %item.id,
                    reason = %reason, "token refresh unavailable; using the current token");
                return Ok(current_tokens);
            }
            Err(TokenError::Unavailable(reason))
        }
    }
}

/// The schedule refreshes tokens that expire within this long.
pub const SWEEP_WINDOW: chrono::Duration = chrono::Duration::minutes(10);
/// Integrations the sweep looks at per tick.
const SWEEP_LIMIT: usize = 200;

/// What one token sweep did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SweepReport {
    pub expiring: usize,
    pub refreshed: usize,
    /// `integration.token_expiring` announced (no way to refresh).
    pub announced: usize,
    pub failed: usize,
}

/// The schedule's token sweep: every OAuth token that expires within 10 minutes is refreshed
/// (under the same lease as any refresh); one that cannot be (no refresh token, no OAuth app) is
/// announced once with `integration.token_expiring`. A refused refresh makes the integration
/// `expired` (and says so) as anywhere else; an outage is tried again on the next tick.
pub async fn sweep_expiring_tokens(services: &Services) -> Result<SweepReport, StoreError> {
    let due = services
        .store
        .tokens_expiring_before(Utc::now() + SWEEP_WINDOW, SWEEP_LIMIT)
        .await?;
    let mut report = SweepReport {
        expiring: due.len(),
        ..SweepReport::default()
    };
    for entry in due {
        let Some(item) = services
            .store
            .get_integration(&entry.tenant, &entry.id)
            .await?
        else {
            continue;
        };
        let Some(oauth) = services
            .catalog
            .get(item.provider.as_str())
            .and_then(|provider| provider.oauth2())
        else {
            continue;
        };
        if item.status == IntegrationStatus::Expired {
            continue;
        }
        let can_refresh = match open_tokens(services, &item).await {
            Ok(tokens) => tokens.contains_key(REFRESH_TOKEN),
            Err(TokenError::Store(error)) => return Err(error),
            Err(_) => false,
        };
        let outcome = if can_refresh {
            refresh_now(services, oauth, &item).await.map(|_| ())
        } else {
            Err(TokenError::ReconnectRequired(
                "no refresh token".to_string(),
            ))
        };
        match outcome {
            Ok(()) => report.refreshed += 1,
            Err(TokenError::Store(error)) => return Err(error),
            Err(error @ (TokenError::ReconnectRequired(_) | TokenError::AppMissing(_)))
                if !can_refresh || matches!(error, TokenError::AppMissing(_)) =>
            {
                let expires_at = item.token_expires_at.clone().unwrap_or_default();
                if services
                    .store
                    .note_token_expiring(&item.tenant_id, &item.id, &expires_at)
                    .await?
                {
                    report.announced += 1;
                    let event =
                        Event::integration(crate::events::IntegrationEvent::TokenExpiring, &item);
                    if let Err(emit) =
                        crate::delivery::emit(&services.store, &services.queues, &[event]).await
                    {
                        tracing::error!(tenantId = %item.tenant_id, integrationId = %item.id,
                            error = %emit, "integration.token_expiring could not be emitted");
                    }
                }
            }
            Err(error) => {
                report.failed += 1;
                tracing::warn!(tenantId = %item.tenant_id, integrationId = %item.id,
                    error = %error, "the token sweep could not refresh a token");
            }
        }
    }
    Ok(report)
}

/// Revokes the integration's tokens at the provider (RFC 7009) when the catalog has a revocation
/// URL: the refresh token when there is one, else the access token, with the token endpoint's
/// client authentication. A failure is logged and reported, never fatal to the caller.
pub async fn revoke_tokens(
    services: &Services,
    provider: &Provider,
    item: &IntegrationItem,
) -> bool {
    let (Some(oauth), Some(envelope)) = (provider.oauth2(), item.credentials.as_ref()) else {
        return false;
    };
    let Some(revoke_url) = &oauth.revoke_url else {
        return false;
    };
    let result = async {
        let tokens = credentials::open(
            services.store.cipher(),
            item.tenant_id.as_str(),
            &item.id,
            envelope,
        )
        .await
        .map_err(|e| e.to_string())?;
        let app = resolve_app(
            &services.store,
            &services.config,
            &item.tenant_id,
            &item.provider,
        )
        .await
        .map_err(|e| e.to_string())?
        .ok_or_else(|| "no OAuth app is configured any more".to_string())?;
        let (token, hint) = match (tokens.get(REFRESH_TOKEN), tokens.get(ACCESS_TOKEN)) {
            (Some(refresh), _) => (refresh, "refresh_token"),
            (None, Some(access)) => (access, "access_token"),
            (None, None) => return Err("the integration holds no token".to_string()),
        };
        let http = services.delivery_http().map_err(|e| e.to_string())?;
        token_endpoint::revoke(
            http,
            revoke_url,
            oauth.token_auth,
            &app.credentials,
            token,
            hint,
        )
        .await
        .map_err(|e| e.to_string())
    }
    .await;
    match result {
        Ok(()) => {
            tracing::info!(tenantId = %item.tenant_id, integrationId = %item.id,
                "tokens revoked at the provider");
            true
        }
        Err(reason) => {
            tracing::warn!(tenantId = %item.tenant_id, integrationId = %item.id,
                reason = %reason, "token revocation failed; the integration is deleted anyway");
            false
        }
    }
}

/// The stored credentials (for OAuth, the token set), opened.
async fn open_tokens(
    services: &Services,
    item: &IntegrationItem,
) -> Result<CredentialFields, TokenError> {
    match &item.credentials {
        Some(envelope) => Ok(credentials::open(
            services.store.cipher(),
            item.tenant_id.as_str(),
            &item.id,
            envelope,
        )
        .await?),
        None => Err(TokenError::ReconnectRequired(
            "the integration holds no tokens".to_string(),
        )),
    }
}

/// One `action: refresh` integration log per refresh (no token in it).
async fn log_refresh(
    services: &Services,
    item: &IntegrationItem,
    started_at: DateTime<Utc>,
    failure: Option<(&str, &str)>,
) {
    let completed_at = Utc::now();
    let log = IntegrationLog {
        id: LogId::generate(),
        integration_id: item.id.clone(),
        action: LogAction::Refresh,
        direction: Some("outgoing".to_string()),
        status: if failure.is_some() {
            LogStatus::Failed
        } else {
            LogStatus::Success
        },
        summary: None,
        failed_items: Vec::new(),
        error_message: failure.map(|(_, message)| message.to_string()),
        error_code: failure.map(|(code, _)| code.to_string()),
        started_at: timestamp(started_at),
        completed_at: timestamp(completed_at),
        duration_ms: (completed_at - started_at).num_milliseconds().max(0) as u64,
        job_id: None,
    };
    if let Err(error) = services
        .store
        .put_integration_log(&item.tenant_id, &log)
        .await
    {
        tracing::warn!(tenantId = %item.tenant_id, integrationId = %item.id, error = %error,
            "the refresh log could not be written");
    }
}

fn parse_expiry(raw: Option<&str>) -> Option<DateTime<Utc>> {
    raw.and_then(|raw| DateTime::parse_from_rfc3339(raw).ok())
        .map(|at| at.with_timezone(&Utc))
}

/// Whether a token with this expiry is gone `margin` from now (unknown expiry: never).
fn expires_within(
    expiry: Option<DateTime<Utc>>,
    now: DateTime<Utc>,
    margin: chrono::Duration,
) -> bool {
    expiry.is_some_and(|at| at <= now + margin)
}

/// 50, 100, 200, 400 ms, then 500 ms, with jitter: short enough that waiters see the holder's
/// result soon after it lands.
fn wait_step(waits: u32) -> Duration {
    use rand::Rng;
    let base = 50u64.saturating_mul(1 << waits.min(4)).min(500);
    Duration::from_millis(base + rand::thread_rng().gen_range(0..=base / 2))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_token_inside_the_window_needs_a_refresh_and_an_unknown_expiry_never_does() {
        let now = Utc::now();
        assert!(expires_within(
            Some(now + chrono::Duration::minutes(4)),
            now,
            REFRESH_WINDOW
        ));
        assert!(!expires_within(
            Some(now + chrono::Duration::minutes(6)),
            now,
            REFRESH_WINDOW
        ));
        assert!(!expires_within(None, now, REFRESH_WINDOW));
        assert!(expires_within(
            Some(now - chrono::Duration::seconds(1)),
            now,
            chrono::Duration::zero()
        ));
    }

    #[test]
    fn a_grant_without_a_refresh_token_keeps_the_previous_one() {
        let grant = TokenGrant {
            access_token: Zeroizing::new("new-access".into()),
            refresh_token: None,
            id_token: None,
            token_type: "Bearer".into(),
            expires_in: Some(Duration::from_secs(3600)),
            scopes: None,
        };
        let fields = token_fields(&grant, Some("old-refresh"));
        assert_eq!(fields[ACCESS_TOKEN].as_str(), "new-access");
        assert_eq!(fields[REFRESH_TOKEN].as_str(), "old-refresh");
        let rotated = TokenGrant {
            refresh_token: Some(Zeroizing::new("new-refresh".into())),
            ..grant
        };
        assert_eq!(
            token_fields(&rotated, Some("old-refresh"))[REFRESH_TOKEN].as_str(),
            "new-refresh"
        );
    }

    #[test]
    fn waits_grow_and_stay_bounded() {
        for waits in 0..20 {
            assert!(wait_step(waits) <= Duration::from_millis(750));
        }
    }
}
