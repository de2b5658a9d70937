//! `GET|POST|PUT|PATCH|DELETE /api/integrations/{id}/proxy/{path}`: an authenticated
//! pass-through to the provider. The request goes to the provider's base URL (or the
//! integration's `config.baseUrl`) + `path` + the caller's query, byte-exact, with the
//! integration's credentials applied as the catalog says (the OAuth token made valid first),
//! through the SSRF-guarded client and the provider's rate-limit bucket. The caller's
//! `Authorization`, cookies and hop-by-hop headers are not forwarded; the provider's status,
//! headers (minus `Set-Cookie` and hop-by-hop ones) and body come back as they are
//! (docs/decisions.md, "Proxy").

use std::time::Instant;

use axum::body::{Body, Bytes};
use axum::extract::{Path, State};
use axum::response::Response;
use http::{HeaderMap, HeaderName, Method, StatusCode, Uri};
use hub_shared::auth::AuthContext;
use hub_shared::catalog::Values;
use hub_shared::credentials;
use hub_shared::domain::LogId;
use hub_shared::error::ApiError;
use hub_shared::http::MAX_BODY_BYTES;
use hub_shared::http_client::{origin_for_logs, OutgoingRequest, SendErrorKind};
use hub_shared::oauth::provider_credentials;
use hub_shared::store::{timestamp, IntegrationLog, LogAction, LogStatus};
use serde_json::json;

use crate::routes::actions::ACTION_TIMEOUT;
use crate::routes::integrations::{load, provider_of, take_provider_token, with_catalog_headers};
use crate::state::AppState;

/// A provider answer larger than this is refused (502): a Lambda response holds at most 6 MB.
pub const MAX_PROXY_RESPONSE_BYTES: usize = 5 * 1024 * 1024;

/// The hop-by-hop fields (RFC 9110 §7.6.1, and the `Proxy-Connection` some clients send): they
/// belong to one connection, never forwarded either way.
const HOP_BY_HOP: [&str; 8] = [
    "connection",
    "keep-alive",
    "proxy-authenticate",
    "proxy-connection",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
];

/// Request headers never forwarded besides those: the caller's credentials and cookies, what the
/// hop sets (`Host`, `Content-Length`), `Forwarded`, and `Accept-Encoding` (answers stay
/// uncompressed, so they pass through unchanged).
const DROPPED_REQUEST: [&str; 7] = [
    "authorization",
    "proxy-authorization",
    "cookie",
    "host",
    "content-length",
    "forwarded",
    "accept-encoding",
];

fn dropped_request_header(name: &HeaderName) -> bool {
    let name = name.as_str();
    HOP_BY_HOP.contains(&name)
        || DROPPED_REQUEST.contains(&name)
        || name.starts_with("x-forwarded-")
        || name.starts_with("x-amz")
        || name == "x-request-id"
}

/// Response headers never passed back: the hop-by-hop ones, cookies, and `Content-Length` (the
/// response's own is set for the body it carries).
fn dropped_response_header(name: &HeaderName) -> bool {
    let name = name.as_str();
    HOP_BY_HOP.contains(&name) || name == "set-cookie" || name == "content-length"
}

pub async fn forward(
    State(state): State<AppState>,
    auth: AuthContext,
    Path((id, _path)): Path<(String, String)>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    if body.len() > MAX_BODY_BYTES {
        return Err(ApiError::payload_too_large(MAX_BODY_BYTES));
    }
    let item = load(&state, &auth, &id).await?;
    let provider = provider_of(&state, &item)?;
    if provider.api.is_none() {
        return Err(ApiError::not_supported(format!(
            "{} has no API to proxy to",
            item.provider
        )));
    }
    let path = raw_tail(&uri, &id)?;

    take_provider_token(&state, &item, provider).await?;
    let fields = provider_credentials(&state, provider, &item).await?;
    let plain = credentials::to_values(&fields);
    // The base with the credentials applied; the caller's path and query are added as sent,
    // never as templates (a `{apiKey}` in a caller's path stays literal text).
    let prepared = provider.prepare_request(
        method.clone(),
        "",
        &Default::default(),
        &Values::new(&item.config, &plain),
    )?;
    drop(plain);
    drop(fields);
    let mut url = prepared.url;
    let base_path = url.path().trim_end_matches('/').to_string();
    url.set_path(&format!("{base_path}/{path}"));
    let ours = url.query().map(str::to_string);
    let query = match (uri.query().filter(|q| !q.is_empty()), ours) {
        (Some(theirs), Some(ours)) => Some(format!("{theirs}&{ours}")),
        (Some(theirs), None) => Some(theirs.to_string()),
        (None, ours) => ours,
    };
    url.set_query(query.as_deref());

    let origin = origin_for_logs(&url);
    let mut request = OutgoingRequest::new(method.clone(), url)
        .timeout(ACTION_TIMEOUT)
        .max_response_bytes(MAX_PROXY_RESPONSE_BYTES + 1);
    let catalog_names: Vec<String> = prepared
        .headers
        .iter()
        .map(|(name, _)| name.to_ascii_lowercase())
        .collect();
    for (name, value) in &headers {
        if !dropped_request_header(name) && !catalog_names.contains(&name.as_str().to_string()) {
            request = request.header(name.clone(), value.clone());
        }
    }
    let mut request = with_catalog_headers(request, &prepared.headers)?;
    if !body.is_empty() {
        request = request.body(body);
    }

    let started_at = chrono::Utc::now();
    let started = Instant::now();
    let sent = state.provider_http.send(request).await;
    let duration = started.elapsed();
    let (answer, http_status, error) = match sent {
        Ok(response)
            if response.body_truncated || response.body.len() > MAX_PROXY_RESPONSE_BYTES =>
        {
            let problem = ApiError::new(
                StatusCode::BAD_GATEWAY,
                "provider_error",
                "Provider error",
                format!("{origin} answered more than {MAX_PROXY_RESPONSE_BYTES} bytes"),
            )
            .with_extension("providerStatus", json!(response.status.as_u16()));
            let code = Some(("provider_response_too_large", problem.detail.clone()));
            (Err(problem), Some(response.status.as_u16()), code)
        }
        Ok(response) => {
            let status = response.status;
            let mut answer = Response::new(Body::from(response.body));
            *answer.status_mut() = status;
            for (name, value) in &response.headers {
                if !dropped_response_header(name) {
                    answer.headers_mut().append(name.clone(), value.clone());
                }
            }
            (Ok(answer), Some(status.as_u16()), None)
        }
        Err(error) => {
            let problem = match &error.kind {
                SendErrorKind::Timeout { limit } => ApiError::new(
                    StatusCode::GATEWAY_TIMEOUT,
                    "provider_timeout",
                    "Provider timeout",
                    format!("{origin} did not answer within {limit:?}"),
                ),
                SendErrorKind::Rejected(rejected) => ApiError::bad_request(
                    "target_rejected",
                    format!("{origin} may not be called: {rejected}"),
                ),
                _ => ApiError::new(
                    StatusCode::BAD_GATEWAY,
                    "provider_error",
                    "Provider error",
                    format!("{origin}: {error}"),
                )
                .with_extension("providerStatus", serde_json::Value::Null),
            };
            let code = Some((problem.code, problem.detail.clone()));
            (Err(problem), None, code)
        }
    };

    let completed_at = chrono::Utc::now();
    let log = IntegrationLog {
        id: LogId::generate(),
        integration_id: item.id.clone(),
        action: LogAction::Proxy,
        direction: Some("outgoing".to_string()),
        status: match (&error, http_status) {
            (None, Some(status)) if status < 400 => LogStatus::Success,
            _ => LogStatus::Failed,
        },
        summary: Some(json!({
            "method": method.as_str(),
            "path": format!("/{path}"),
            "httpStatus": http_status,
            "durationMs": duration.as_millis() as u64,
        })),
        failed_items: Vec::new(),
        error_message: error.as_ref().map(|(_, detail)| detail.clone()),
        error_code: error.as_ref().map(|(code, _)| code.to_string()),
        started_at: timestamp(started_at),
        completed_at: timestamp(completed_at),
        duration_ms: duration.as_millis() as u64,
        job_id: None,
    };
    state.store.put_integration_log(&auth.tenant, &log).await?;
    tracing::info!(
        tenantId = %auth.tenant, integrationId = %item.id, method = method.as_str(),
        httpStatus = http_status.map(u64::from), durationMs = duration.as_millis() as u64, "proxy"
    );
    answer
}

/// The request path after `/api/integrations/{id}/proxy/`, as the caller encoded it. Dot
/// segments (`.`, `..`, also percent-encoded) are refused: the path stays under the base URL.
fn raw_tail(uri: &Uri, id: &str) -> Result<String, ApiError> {
    let prefix = format!("/api/integrations/{id}/proxy/");
    let tail = uri
        .path()
        .strip_prefix(&prefix)
        .ok_or_else(ApiError::route_not_found)?;
    let dot_segment = tail.split('/').any(|segment| {
        let decoded = segment.to_ascii_lowercase().replace("%2e", ".");
        decoded == "." || decoded == ".."
    });
    if dot_segment || tail.is_empty() {
        return Err(ApiError::field(
            "path",
            "must be a path under the provider's base URL, without `.` or `..` segments",
        ));
    }
    Ok(tail.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tail(path: &str) -> Result<String, ApiError> {
        raw_tail(&path.parse().expect("uri"), "int_1")
    }

    #[test]
    fn the_tail_is_kept_as_encoded_and_dot_segments_are_refused() {
        assert_eq!(
            tail("/api/integrations/int_1/proxy/v1/customers/cus%2F1?limit=3").expect("ok"),
            "v1/customers/cus%2F1"
        );
        for bad in [
            "/api/integrations/int_1/proxy/../admin",
            "/api/integrations/int_1/proxy/v1/%2e%2E/x",
            "/api/integrations/int_1/proxy/./x",
        ] {
            assert_eq!(tail(bad).expect_err(bad).status, StatusCode::BAD_REQUEST);
        }
    }

    #[test]
    fn callers_credentials_cookies_and_hop_headers_are_not_forwarded() {
        for name in [
            "authorization",
            "cookie",
            "connection",
            "x-forwarded-for",
            "x-amzn-trace-id",
        ] {
            assert!(
                dropped_request_header(&HeaderName::from_static(name)),
                "{name}"
            );
        }
        for name in [
            "content-type",
            "accept",
            "stripe-version",
            "idempotency-key",
        ] {
            assert!(
                !dropped_request_header(&HeaderName::from_static(name)),
                "{name}"
            );
        }
    }
}
