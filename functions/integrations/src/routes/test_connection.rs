//! `POST /api/integrations/{id}/test`: the catalog's health-check request, sent through the SSRF
//! guard with the credentials applied as the catalog says. Answers 200 whether the check passed or
//! not; the outcome updates status and health and is written to the integration's logs.

use std::time::{Duration, Instant};

use axum::extract::{Path, State};
use axum::Json;
use http::{HeaderName, HeaderValue};
use hub_shared::auth::AuthContext;
use hub_shared::catalog::{CatalogError, ExpectOutcome, HealthCheckRequest};
use hub_shared::credentials;
use hub_shared::domain::LogId;
use hub_shared::error::ApiError;
use hub_shared::events::{Event, StatusChangeReason};
use hub_shared::http_client::{origin_for_logs, OutgoingRequest};
use hub_shared::oauth::{provider_credentials, TokenError};
use hub_shared::store::{
    timestamp, CheckOutcome, IntegrationItem, IntegrationLog, LogAction, LogStatus,
};
use serde_json::{json, Value};

use crate::routes::integrations::{load, provider_of, take_provider_token};
use crate::state::AppState;

/// Test connection gives the provider 10 s (docs/decisions.md, "Test connection").
pub const TEST_TIMEOUT: Duration = Duration::from_secs(10);
/// The status, and for a body condition the JSON body read no further than this.
const MAX_RESPONSE_BYTES: usize = 64 * 1024;

/// What the check found, before it is recorded.
struct CheckResult {
    ok: bool,
    http_status: Option<u16>,
    latency: Duration,
    error_code: Option<&'static str>,
    error_message: Option<String>,
}

pub async fn test(
    State(state): State<AppState>,
    auth: AuthContext,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let item = load(&state, &auth, &id).await?;
    let provider = provider_of(&state, &item)?;
    let Some(has_health_check) = provider.api.as_ref().map(|api| api.health_check.is_some()) else {
        return Err(ApiError::not_supported(format!(
            "{} has no API to test",
            item.provider
        )));
    };
    if !has_health_check {
        return Err(ApiError::not_supported(format!(
            "{} declares no health check",
            item.provider
        )));
    }
    take_provider_token(&state, &item, provider).await?;

    // OAuth tokens are refreshed first when they expire within 5 minutes (under the lease).
    let started_at = chrono::Utc::now();
    let fields = match provider_credentials(&state, provider, &item).await {
        Ok(fields) => fields,
        Err(error) => return token_failure(&state, &auth, &item, error, started_at).await,
    };
    let plain = credentials::to_values(&fields);
    let result = match provider.build_health_check(&item.config, &plain) {
        Ok(request) => run_check(&state, request).await,
        Err(CatalogError::NoHealthCheck) => {
            return Err(ApiError::not_supported(format!(
                "{} declares no health check",
                item.provider
            )))
        }
        Err(error) => CheckResult {
            ok: false,
            http_status: None,
            latency: Duration::ZERO,
            error_code: Some("invalid_configuration"),
            error_message: Some(error.to_string()),
        },
    };
    drop(plain);
    drop(fields);
    let completed_at = chrono::Utc::now();

    let transition = state
        .store
        .record_check_outcome(
            &auth.tenant,
            &item.id,
            &CheckOutcome {
                success: result.ok,
                error: result.error_message.clone(),
            },
        )
        .await?;
    write_test_log(&state, &auth, &item, &result, started_at, completed_at).await?;
    let reason = if result.ok {
        StatusChangeReason::TestPassed
    } else {
        StatusChangeReason::TestFailed
    };
    let changed = transition.and_then(|t| Event::status_changed(&t.item, t.from, reason));
    super::emit(&state, changed).await?;
    tracing::info!(
        tenantId = %auth.tenant, integrationId = %item.id, ok = result.ok,
        httpStatus = result.http_status.map(u64::from), error = result.error_code, "test connection"
    );

    Ok(Json(answer(&result)))
}

fn answer(result: &CheckResult) -> Value {
    let mut body = json!({
        "ok": result.ok,
        "httpStatus": result.http_status,
        "latencyMs": result.latency.as_millis() as u64,
    });
    if let Some(code) = result.error_code {
        body["error"] = Value::String(code.to_string());
    }
    body
}

async fn write_test_log(
    state: &AppState,
    auth: &AuthContext,
    item: &IntegrationItem,
    result: &CheckResult,
    started_at: chrono::DateTime<chrono::Utc>,
    completed_at: chrono::DateTime<chrono::Utc>,
) -> Result<(), ApiError> {
    let log = IntegrationLog {
        id: LogId::generate(),
        integration_id: item.id.clone(),
        action: LogAction::Test,
        direction: Some("outgoing".to_string()),
        status: if result.ok {
            LogStatus::Success
        } else {
            LogStatus::Failed
        },
        summary: Some(
            json!({ "httpStatus": result.http_status, "latencyMs": result.latency.as_millis() as u64 }),
        ),
        failed_items: Vec::new(),
        error_message: result.error_message.clone(),
        error_code: result.error_code.map(str::to_string),
        started_at: timestamp(started_at),
        completed_at: timestamp(completed_at),
        duration_ms: (completed_at - started_at).num_milliseconds().max(0) as u64,
        job_id: None,
    };
    state.store.put_integration_log(&auth.tenant, &log).await?;
    Ok(())
}

/// No usable token: the check fails without a request to the provider, and is logged. The
/// status is the token lifecycle's to set (`expired` on a refused refresh; kept on an outage),
/// so the outcome is not folded into status and health here.
async fn token_failure(
    state: &AppState,
    auth: &AuthContext,
    item: &IntegrationItem,
    error: TokenError,
    started_at: chrono::DateTime<chrono::Utc>,
) -> Result<Json<Value>, ApiError> {
    let code = match &error {
        TokenError::ReconnectRequired(_) => "reconnect_required",
        TokenError::Unavailable(_) => "token_refresh_failed",
        TokenError::AppMissing(_) => "oauth_app_missing",
        TokenError::Gone => return Err(ApiError::not_found("integration")),
        TokenError::Store(_) | TokenError::Crypto(_) => return Err(error.into()),
    };
    let result = CheckResult {
        ok: false,
        http_status: None,
        latency: Duration::ZERO,
        error_code: Some(code),
        error_message: Some(error.to_string()),
    };
    write_test_log(state, auth, item, &result, started_at, chrono::Utc::now()).await?;
    tracing::info!(tenantId = %auth.tenant, integrationId = %item.id, error = code,
        "test connection: no usable token");
    Ok(Json(answer(&result)))
}

async fn run_check(state: &AppState, check: HealthCheckRequest) -> CheckResult {
    let origin = origin_for_logs(&check.url);
    let mut request = OutgoingRequest::new(check.method, check.url)
        .timeout(TEST_TIMEOUT)
        .max_response_bytes(MAX_RESPONSE_BYTES);
    for (name, value) in &check.headers {
        let (Ok(name), Ok(value)) = (
            HeaderName::try_from(name.as_str()),
            HeaderValue::from_str(value),
        ) else {
            return CheckResult {
                ok: false,
                http_status: None,
                latency: Duration::ZERO,
                error_code: Some("invalid_configuration"),
                error_message: Some(format!("the catalog header {name} cannot be sent")),
            };
        };
        request = request.header(name, value);
    }
    let started = Instant::now();
    match state.provider_http.send(request).await {
        Ok(response) => {
            let status = response.status.as_u16();
            let (error_code, error_message) = match check.expect.evaluate(status, &response.body) {
                ExpectOutcome::Met => (None, None),
                ExpectOutcome::WrongStatus => (
                    Some(status_error_code(status)),
                    Some(format!(
                        "{origin} answered {status}, expected {}",
                        check.expect.status
                    )),
                ),
                // A provider that answers 200 for bad credentials says so in the body (Slack).
                ExpectOutcome::UnexpectedBody(reason) => {
                    let read = if response.body_truncated {
                        " (only the first 64 KiB were read)"
                    } else {
                        ""
                    };
                    (
                        Some("unexpected_response"),
                        Some(format!("{origin} answered {status} but {reason}{read}")),
                    )
                }
            };
            CheckResult {
                ok: error_code.is_none(),
                http_status: Some(status),
                latency: response.latency,
                error_code,
                error_message,
            }
        }
        Err(error) => CheckResult {
            ok: false,
            http_status: None,
            latency: started.elapsed(),
            error_code: Some(error.code()),
            error_message: Some(format!("{origin}: {error}")),
        },
    }
}

/// A stable code for an unexpected answer, so clients can tell bad credentials from an outage.
fn status_error_code(status: u16) -> &'static str {
    match status {
        401 | 403 => "unauthorized",
        404 => "not_found",
        429 => "rate_limited",
        500..=599 => "provider_error",
        _ => "unexpected_status",
    }
}
