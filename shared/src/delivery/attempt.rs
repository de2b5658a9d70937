//! One attempt of one delivery: render the body (the webhook's payload template, or the envelope),
//! sign it, send it through the guarded client within the webhook's timeout, and describe what
//! happened in the form a log keeps (redacted headers, bodies cut to 16 KiB).

use std::time::{Duration, Instant};

use bytes::Bytes;
use http::{header, HeaderMap, HeaderName, HeaderValue, Method, StatusCode};
use serde_json::Value;
use url::Url;

use crate::domain::DeliveryId;
use crate::http_client::{GuardedHttpClient, OutgoingRequest, SendErrorKind};
use crate::retry;
use crate::store::{
    AttemptStatus, DeliveryMethod, LoggedRequest, LoggedResponse, OutgoingWebhookItem, Store,
    StoreError,
};
use crate::webhooks::redact::{redact_headers, truncate_body};
use crate::webhooks::sign::{Signing, SigningKeys, WebhookSecret};
use crate::webhooks::template::PayloadTemplate;

/// A target's answer is read up to this many bytes (the log keeps 16 KiB of it).
const MAX_RESPONSE_BYTES: usize = 64 * 1024;

/// What one attempt did.
#[derive(Debug, Clone, PartialEq)]
pub struct AttemptResult {
    pub status: AttemptStatus,
    /// Whether another attempt can help: false for a 410 or a target the hub refuses to call.
    pub retryable: bool,
    /// The target answered 410 Gone: the webhook is to be disabled.
    pub gone: bool,
    /// A `Retry-After` of a 429/503, to honour within [delay, 2 × delay].
    pub retry_after: Option<Duration>,
    pub duration: Duration,
    pub error_message: Option<String>,
    pub request: LoggedRequest,
    pub response: Option<LoggedResponse>,
}

impl AttemptResult {
    pub fn duration_ms(&self) -> u64 {
        u64::try_from(self.duration.as_millis()).unwrap_or(u64::MAX)
    }
}

/// The webhook's signing keys at `now`: the current secret and, within 24 h of a rotation, the
/// previous one (newest first).
pub async fn signing_keys(
    store: &Store,
    webhook: &OutgoingWebhookItem,
    now: chrono::DateTime<chrono::Utc>,
) -> Result<SigningKeys, StoreError> {
    let secrets = store.open_signing_secrets(webhook).await?;
    let corrupt = |e| StoreError::Corrupt(format!("the signing secret of {}: {e}", webhook.id));
    let mut keys = SigningKeys::new(WebhookSecret::parse(&secrets.current).map_err(corrupt)?);
    if let (Some(previous), Some(expires_at)) = (&secrets.previous, &secrets.previous_expires_at) {
        let expires_at = chrono::DateTime::parse_from_rfc3339(expires_at)
            .map_err(|e| StoreError::Corrupt(format!("previousExpiresAt: {e}")))?
            .with_timezone(&chrono::Utc);
        keys = keys.with_previous(
            WebhookSecret::parse(previous).map_err(corrupt)?,
            expires_at,
            now,
        );
    }
    Ok(keys)
}

/// Sends `event` (the envelope) to `webhook` as attempt of delivery `delivery_id`.
pub async fn send_attempt(
    store: &Store,
    http: &GuardedHttpClient,
    webhook: &OutgoingWebhookItem,
    delivery_id: &DeliveryId,
    event: &Value,
) -> Result<AttemptResult, StoreError> {
    let started = Instant::now();
    let now = chrono::Utc::now();
    let method = match webhook.method {
        DeliveryMethod::Post => Method::POST,
        DeliveryMethod::Put => Method::PUT,
        DeliveryMethod::Patch => Method::PATCH,
    };
    let signing = Signing::from_settings(
        webhook.signature_scheme,
        Some(webhook.signature_header.as_str()),
    )
    .unwrap_or(Signing::Standard);
    let secret_headers = [signing.signature_header()];

    let mut headers = HeaderMap::new();
    for (name, value) in &webhook.headers {
        if let (Ok(name), Ok(value)) = (
            HeaderName::from_bytes(name.as_bytes()),
            HeaderValue::from_str(value),
        ) {
            headers.insert(name, value);
        }
    }
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );

    let body = render(webhook, event);
    let failed_before_sending = |headers: &HeaderMap, body: &[u8], message: String| AttemptResult {
        status: AttemptStatus::Failed,
        retryable: false,
        gone: false,
        retry_after: None,
        duration: started.elapsed(),
        error_message: Some(message),
        request: LoggedRequest {
            method: method.to_string(),
            url: webhook.url.clone(),
            headers: redact_headers(headers, &secret_headers),
            body: truncate_body(body),
        },
        response: None,
    };
    let body = match body {
        Ok(body) => body,
        Err(message) => return Ok(failed_before_sending(&headers, b"", message)),
    };
    if webhook.sign_requests {
        let keys = signing_keys(store, webhook, now).await?;
        match signing.sign(&keys, delivery_id.as_str(), now.timestamp(), &body) {
            Ok(signed) => {
                for (name, value) in signed {
                    headers.insert(name, value);
                }
            }
            Err(error) => return Ok(failed_before_sending(&headers, &body, error.to_string())),
        }
    }
    let url = match Url::parse(&webhook.url) {
        Ok(url) => url,
        Err(error) => {
            return Ok(failed_before_sending(
                &headers,
                &body,
                format!("the webhook URL is not valid: {error}"),
            ))
        }
    };
    let logged_request = LoggedRequest {
        method: method.to_string(),
        url: webhook.url.clone(),
        headers: redact_headers(&headers, &secret_headers),
        body: truncate_body(&body),
    };
    let mut request = OutgoingRequest::new(method, url)
        .body(Bytes::from(body))
        .timeout(Duration::from_secs(u64::from(
            webhook.timeout_seconds.max(1),
        )))
        .max_response_bytes(MAX_RESPONSE_BYTES);
    request.headers = headers;

    match http.send(request).await {
        Ok(response) => {
            let success = response.status.is_success();
            let gone = response.status == StatusCode::GONE;
            Ok(AttemptResult {
                status: if success {
                    AttemptStatus::Success
                } else {
                    AttemptStatus::Failed
                },
                retryable: !success && !gone,
                gone,
                retry_after: retry::retry_after(response.status, &response.headers, now),
                duration: started.elapsed(),
                error_message: (!success)
                    .then(|| format!("the target answered {}", response.status.as_u16())),
                request: logged_request,
                response: Some(LoggedResponse {
                    status: response.status.as_u16(),
                    headers: redact_headers(&response.headers, &[]),
                    body: truncate_body(&response.body),
                }),
            })
        }
        Err(error) => Ok(AttemptResult {
            status: AttemptStatus::Failed,
            // A target the guard refuses (private address, bad scheme) stays refused.
            retryable: !matches!(error.kind, SendErrorKind::Rejected(_)),
            gone: false,
            retry_after: None,
            duration: started.elapsed(),
            error_message: Some(format!("{} ({})", error.kind, error.code())),
            request: logged_request,
            response: None,
        }),
    }
}

/// The body: the template rendered over the envelope, or the envelope itself.
fn render(webhook: &OutgoingWebhookItem, event: &Value) -> Result<Vec<u8>, String> {
    match &webhook.payload_template {
        Some(text) => {
            let template = PayloadTemplate::parse(text)
                .map_err(|e| format!("the payload template is not valid: {e}"))?;
            template
                .render(event)
                .map(String::into_bytes)
                .map_err(|e| format!("the payload template could not be rendered: {e}"))
        }
        None => serde_json::to_vec(event).map_err(|e| e.to_string()),
    }
}
