//! `ApiError` as an HTTP response: RFC 9457 `application/problem+json` with the stable `code`, the
//! field errors of a validation failure, and the error's extra headers (`Allow`, `Retry-After`, ...).

use axum::response::{IntoResponse, Response};
use http::{header, HeaderValue};
use serde::Serialize;

use crate::error::{ApiError, FieldError, PROBLEM_CONTENT_TYPE};

#[derive(Serialize)]
struct ProblemBody<'a> {
    #[serde(rename = "type")]
    kind: String,
    title: &'a str,
    status: u16,
    detail: &'a str,
    code: &'a str,
    #[serde(skip_serializing_if = "<[FieldError]>::is_empty")]
    errors: &'a [FieldError],
    #[serde(flatten, skip_serializing_if = "Option::is_none")]
    extensions: Option<&'a serde_json::Map<String, serde_json::Value>>,
}

impl ApiError {
    fn problem_body(&self) -> ProblemBody<'_> {
        ProblemBody {
            kind: format!("urn:integrations-hub:problem:{}", self.code),
            title: self.title,
            status: self.status.as_u16(),
            detail: &self.detail,
            code: self.code,
            errors: &self.errors,
            extensions: self.extensions.as_deref(),
        }
    }

    /// The problem body as JSON (what the response carries), for answers that are stored and
    /// replayed (an action's idempotent result).
    pub fn problem_json(&self) -> serde_json::Value {
        serde_json::to_value(self.problem_body()).unwrap_or_default()
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let bytes = serde_json::to_vec(&self.problem_body()).unwrap_or_else(|_| b"{}".to_vec());
        let mut response = (self.status, bytes).into_response();
        let headers = response.headers_mut();
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static(PROBLEM_CONTENT_TYPE),
        );
        for (name, value) in self.headers {
            headers.insert(name, value);
        }
        response
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::StatusCode;
    use http_body_util::BodyExt;

    async fn body_json(response: Response) -> serde_json::Value {
        let bytes = response
            .into_body()
            .collect()
            .await
            .expect("body")
            .to_bytes();
        serde_json::from_slice(&bytes).expect("json")
    }

    #[tokio::test]
    async fn validation_errors_render_as_problem_json_with_field_errors() {
        let response =
            ApiError::field("syncSettings.direction", "unknown variant `sideways`").into_response();
        assert_eq!(response.status(), StatusCode::BAD_REQUEST);
        assert_eq!(
            response.headers()[header::CONTENT_TYPE],
            PROBLEM_CONTENT_TYPE
        );
        let body = body_json(response).await;
        assert_eq!(body["code"], "validation_failed");
        assert_eq!(body["status"], 400);
        assert_eq!(body["errors"][0]["field"], "syncSettings.direction");
        assert!(body["type"]
            .as_str()
            .unwrap_or_default()
            .ends_with("validation_failed"));
    }

    #[tokio::test]
    async fn rate_limited_carries_retry_after() {
        let response = ApiError::rate_limited(7).into_response();
        assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(response.headers()[header::RETRY_AFTER], "7");
        assert!(body_json(response).await.get("errors").is_none());
    }

    #[tokio::test]
    async fn internal_errors_hide_their_cause() {
        let response = ApiError::internal(&"arn:aws:kms:us-east-1:123:key/secret-thing failed")
            .into_response();
        let body = body_json(response).await;
        assert!(!body.to_string().contains("arn:aws"));
        assert_eq!(body["code"], "internal_error");
    }
}
