//! The one error type of the HTTP API: every expected failure becomes an RFC 9457
//! `application/problem+json` response with a stable machine `code`.
//! Internal causes are logged, never shown: no stack trace, secret or ARN leaves through an error.

use http::{header, HeaderName, HeaderValue, StatusCode};
use serde::Serialize;

pub const PROBLEM_CONTENT_TYPE: &str = "application/problem+json";

/// One field-level validation failure: `field` is the JSON path in the request (`syncSettings.direction`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FieldError {
    pub field: String,
    pub message: String,
}

impl FieldError {
    pub fn new(field: impl Into<String>, message: impl Into<String>) -> FieldError {
        FieldError {
            field: field.into(),
            message: message.into(),
        }
    }
}

#[derive(Debug, Clone)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: &'static str,
    pub title: &'static str,
    pub detail: String,
    pub errors: Vec<FieldError>,
    pub(crate) headers: Vec<(HeaderName, HeaderValue)>,
    /// RFC 9457 extension members (a `provider_error`'s `providerStatus`, `providerBody`).
    /// Boxed: most problems have none, and `ApiError` travels in every `Result`.
    pub extensions: Option<Box<serde_json::Map<String, serde_json::Value>>>,
}

impl ApiError {
    pub fn new(
        status: StatusCode,
        code: &'static str,
        title: &'static str,
        detail: impl Into<String>,
    ) -> ApiError {
        ApiError {
            status,
            code,
            title,
            detail: detail.into(),
            errors: Vec::new(),
            headers: Vec::new(),
            extensions: None,
        }
    }

    /// Adds the extension member `name` to the problem body.
    pub fn with_extension(mut self, name: &str, value: serde_json::Value) -> ApiError {
        self.extensions
            .get_or_insert_with(Default::default)
            .insert(name.to_owned(), value);
        self
    }

    pub fn with_header(mut self, name: HeaderName, value: HeaderValue) -> ApiError {
        self.headers.push((name, value));
        self
    }

    /// 400 `validation_failed` carrying every field error found.
    pub fn validation(errors: Vec<FieldError>) -> ApiError {
        let detail = match errors.as_slice() {
            [only] => format!("{}: {}", only.field, only.message),
            _ => format!("{} fields are invalid", errors.len()),
        };
        ApiError {
            errors,
            ..ApiError::new(
                StatusCode::BAD_REQUEST,
                "validation_failed",
                "Validation failed",
                detail,
            )
        }
    }

    pub fn field(field: impl Into<String>, message: impl Into<String>) -> ApiError {
        ApiError::validation(vec![FieldError::new(field, message)])
    }

    pub fn bad_request(code: &'static str, detail: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::BAD_REQUEST, code, "Bad request", detail)
    }

    pub fn malformed_json(detail: impl Into<String>) -> ApiError {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            "malformed_json",
            "Malformed JSON body",
            detail,
        )
    }

    pub fn invalid_cursor() -> ApiError {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            "invalid_cursor",
            "Invalid cursor",
            "the cursor is not one this API issued for this list; start again without it",
        )
    }

    pub fn unauthorized(detail: impl Into<String>) -> ApiError {
        ApiError::new(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "Unauthorized",
            detail,
        )
        .with_header(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"))
    }

    pub fn not_found(what: &str) -> ApiError {
        ApiError::new(
            StatusCode::NOT_FOUND,
            "not_found",
            "Not found",
            format!("{what} not found"),
        )
    }

    pub fn route_not_found() -> ApiError {
        ApiError::new(
            StatusCode::NOT_FOUND,
            "not_found",
            "Not found",
            "no such route",
        )
    }

    pub fn method_not_allowed(allow: HeaderValue) -> ApiError {
        ApiError::new(
            StatusCode::METHOD_NOT_ALLOWED,
            "method_not_allowed",
            "Method not allowed",
            format!(
                "this path supports {}",
                allow.to_str().unwrap_or("other methods")
            ),
        )
        .with_header(header::ALLOW, allow)
    }

    pub fn conflict(detail: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::CONFLICT, "conflict", "Conflict", detail)
    }

    pub fn precondition_failed(current_version: Option<u64>) -> ApiError {
        let detail = match current_version {
            Some(version) => format!(
                "If-Match does not match the current version {version}; GET it again and retry"
            ),
            None => {
                "If-Match does not match the current version; GET it again and retry".to_string()
            }
        };
        ApiError::new(
            StatusCode::PRECONDITION_FAILED,
            "precondition_failed",
            "Precondition failed",
            detail,
        )
    }

    pub fn payload_too_large(limit_bytes: usize) -> ApiError {
        ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "payload_too_large",
            "Payload too large",
            format!("the body is larger than {limit_bytes} bytes"),
        )
    }

    pub fn unsupported_media_type(detail: impl Into<String>) -> ApiError {
        ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            "Unsupported media type",
            detail,
        )
    }

    pub fn not_supported(detail: impl Into<String>) -> ApiError {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            "not_supported",
            "Not supported",
            detail,
        )
    }

    /// 400: connect needs an OAuth app (the tenant's own or the platform's) for the provider.
    pub fn oauth_app_missing(detail: impl Into<String>) -> ApiError {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            "oauth_app_missing",
            "OAuth app missing",
            detail,
        )
    }

    /// 400: an OAuth callback whose state is unknown, expired, already used or another provider's.
    pub fn invalid_state(detail: impl Into<String>) -> ApiError {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            "invalid_state",
            "Invalid OAuth state",
            detail,
        )
    }

    pub fn rate_limited(retry_after_seconds: u64) -> ApiError {
        let seconds = retry_after_seconds.max(1);
        ApiError::new(
            StatusCode::TOO_MANY_REQUESTS,
            "rate_limited",
            "Rate limited",
            format!("the provider's rate limit for this tenant is used up; retry in {seconds} s"),
        )
        .with_header(header::RETRY_AFTER, HeaderValue::from(seconds))
    }

    /// 503 for a dependency that is briefly unavailable (throttled AWS service): safe to retry.
    pub fn unavailable(cause: &dyn std::fmt::Display) -> ApiError {
        tracing::warn!(error = %cause, "dependency unavailable");
        ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "service_unavailable",
            "Service unavailable",
            "a dependency is briefly unavailable; retry shortly",
        )
        .with_header(header::RETRY_AFTER, HeaderValue::from_static("1"))
    }

    /// 500: the cause is logged here and never shown.
    pub fn internal(cause: &dyn std::fmt::Display) -> ApiError {
        tracing::error!(error = %cause, "internal error");
        ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal_error",
            "Internal error",
            "an unexpected error occurred; it has been logged",
        )
    }
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {}: {}", self.status.as_u16(), self.code, self.detail)
    }
}

impl std::error::Error for ApiError {}

/// Where every module's errors become problems, once: handlers write `?`.
mod conversions {
    use super::ApiError;
    use crate::catalog::CatalogError;
    use crate::crypto::CryptoError;
    use crate::store::{
        CreateIntegrationError, StoreError, UpdateIntegrationError, UpdateWebhookError,
    };

    impl From<StoreError> for ApiError {
        fn from(error: StoreError) -> ApiError {
            match &error {
                StoreError::Unavailable { .. } => ApiError::unavailable(&error),
                StoreError::Crypto(crypto) if crypto.is_retryable() => {
                    ApiError::unavailable(&error)
                }
                _ => ApiError::internal(&error),
            }
        }
    }

    impl From<CryptoError> for ApiError {
        fn from(error: CryptoError) -> ApiError {
            if error.is_retryable() {
                ApiError::unavailable(&error)
            } else {
                ApiError::internal(&error)
            }
        }
    }

    impl From<CreateIntegrationError> for ApiError {
        fn from(error: CreateIntegrationError) -> ApiError {
            match error {
                CreateIntegrationError::Duplicate { .. } => ApiError::conflict(error.to_string()),
                CreateIntegrationError::Store(error) => error.into(),
            }
        }
    }

    impl From<UpdateIntegrationError> for ApiError {
        fn from(error: UpdateIntegrationError) -> ApiError {
            match error {
                UpdateIntegrationError::NotFound => ApiError::not_found("integration"),
                UpdateIntegrationError::VersionMismatch { current } => {
                    ApiError::precondition_failed(Some(current))
                }
                UpdateIntegrationError::Store(error) => error.into(),
            }
        }
    }

    impl From<crate::delivery::EmitError> for ApiError {
        fn from(error: crate::delivery::EmitError) -> ApiError {
            match error {
                crate::delivery::EmitError::Store(error) => error.into(),
                crate::delivery::EmitError::Queue(error) => ApiError::unavailable(&error),
            }
        }
    }

    impl From<UpdateWebhookError> for ApiError {
        fn from(error: UpdateWebhookError) -> ApiError {
            match error {
                UpdateWebhookError::NotFound => ApiError::not_found("webhook"),
                UpdateWebhookError::VersionMismatch { current } => {
                    ApiError::precondition_failed(Some(current))
                }
                UpdateWebhookError::Store(error) => error.into(),
            }
        }
    }

    /// Catalog errors a request can meet: definitions it supplied (a `custom_api` config) are the
    /// caller's to fix (400 naming the field); a request the catalog cannot build for this
    /// integration is a configuration problem (400); load errors only happen at start-up (500).
    impl From<CatalogError> for ApiError {
        fn from(error: CatalogError) -> ApiError {
            match &error {
                CatalogError::InvalidDefinition { path, message } => {
                    ApiError::field(format!("config.entities.{path}"), message.clone())
                }
                CatalogError::NoHealthCheck | CatalogError::NoApi => {
                    ApiError::not_supported(error.to_string())
                }
                CatalogError::MissingValue { .. } | CatalogError::InvalidRequest(_) => {
                    ApiError::bad_request("invalid_configuration", error.to_string())
                }
                CatalogError::ReadFile { .. }
                | CatalogError::Document { .. }
                | CatalogError::InvalidSlug { .. }
                | CatalogError::InvalidEntry { .. } => ApiError::internal(&error),
            }
        }
    }

    impl From<crate::oauth::TokenError> for ApiError {
        fn from(error: crate::oauth::TokenError) -> ApiError {
            use crate::oauth::TokenError;
            match error {
                TokenError::ReconnectRequired(_) => ApiError::new(
                    http::StatusCode::CONFLICT,
                    "reconnect_required",
                    "Reconnect required",
                    error.to_string(),
                ),
                TokenError::Unavailable(_) => ApiError::new(
                    http::StatusCode::BAD_GATEWAY,
                    "provider_error",
                    "Provider error",
                    format!("{error}; the integration keeps its status, try again later"),
                ),
                TokenError::AppMissing(_) => ApiError::oauth_app_missing(error.to_string()),
                TokenError::Gone => ApiError::not_found("integration"),
                TokenError::Store(error) => error.into(),
                TokenError::Crypto(error) => error.into(),
            }
        }
    }

    impl From<crate::oauth::apps::ResolveAppError> for ApiError {
        fn from(error: crate::oauth::apps::ResolveAppError) -> ApiError {
            match error {
                crate::oauth::apps::ResolveAppError::Store(error) => error.into(),
                crate::oauth::apps::ResolveAppError::Crypto(error) => error.into(),
            }
        }
    }
}
