//! JSON request bodies: content type (415), size (413), then strict parsing into a typed request
//! whose errors name the field (400 `validation_failed` with `errors[]`).

use axum::body::Bytes;
use axum::extract::{FromRequest, Request};
use http::header::CONTENT_TYPE;
use http_body_util::{BodyExt, Limited};
use hub_shared::error::{ApiError, FieldError};
use serde::de::DeserializeOwned;

/// The API contract: bodies over 1 MiB get 413.
pub const MAX_BODY_BYTES: usize = 1024 * 1024;

/// A body parsed strictly into `T` (unknown fields rejected by `T`'s `deny_unknown_fields`).
pub struct JsonBody<T>(pub T);

/// An optional JSON body: empty (or absent) is `None`; anything else must be valid JSON of `T`.
pub struct OptionalJsonBody<T>(pub Option<T>);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for JsonBody<T> {
    type Rejection = ApiError;

    async fn from_request(request: Request, _state: &S) -> Result<Self, Self::Rejection> {
        let bytes = read_json_bytes(request, true).await?;
        parse_json(&bytes).map(JsonBody)
    }
}

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for OptionalJsonBody<T> {
    type Rejection = ApiError;

    async fn from_request(request: Request, _state: &S) -> Result<Self, Self::Rejection> {
        let bytes = read_json_bytes(request, false).await?;
        if bytes.iter().all(u8::is_ascii_whitespace) {
            return Ok(OptionalJsonBody(None));
        }
        parse_json(&bytes).map(|value| OptionalJsonBody(Some(value)))
    }
}

async fn read_json_bytes(request: Request, required: bool) -> Result<Bytes, ApiError> {
    let content_type = request
        .headers()
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let declared_length = request
        .headers()
        .get(http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok()?.parse::<usize>().ok());
    if declared_length.is_some_and(|length| length > MAX_BODY_BYTES) {
        return Err(ApiError::payload_too_large(MAX_BODY_BYTES));
    }
    let bytes = Limited::new(request.into_body(), MAX_BODY_BYTES)
        .collect()
        .await
        .map_err(|_| ApiError::payload_too_large(MAX_BODY_BYTES))?
        .to_bytes();
    if !required && bytes.is_empty() {
        return Ok(bytes);
    }
    match content_type.as_deref() {
        Some(value) if is_json_media_type(value) => Ok(bytes),
        Some(other) => Err(ApiError::unsupported_media_type(format!(
            "expected Content-Type application/json, got {}",
            other.chars().take(80).collect::<String>()
        ))),
        None => Err(ApiError::unsupported_media_type(
            "expected Content-Type application/json",
        )),
    }
}

/// `application/json` or any `+json` type, with parameters (charset must be UTF-8 when given).
fn is_json_media_type(value: &str) -> bool {
    let mut parts = value.split(';');
    let essence = parts.next().unwrap_or("").trim().to_ascii_lowercase();
    let json = essence == "application/json"
        || (essence.starts_with("application/") && essence.ends_with("+json"));
    let charset_ok = parts.all(|parameter| match parameter.split_once('=') {
        Some((name, value)) if name.trim().eq_ignore_ascii_case("charset") => {
            value.trim().trim_matches('"').eq_ignore_ascii_case("utf-8")
        }
        _ => true,
    });
    json && charset_ok
}

/// Parses with the exact path of the first problem: `syncSettings.entities[0].direction`.
pub fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    let deserializer = &mut serde_json::Deserializer::from_slice(bytes);
    match serde_path_to_error::deserialize::<_, T>(deserializer) {
        Ok(value) => Ok(value),
        Err(error) => {
            let inner = error.inner();
            if inner.is_syntax() || inner.is_eof() {
                return Err(ApiError::malformed_json(format!(
                    "the body is not valid JSON: {inner}"
                )));
            }
            let path = display_path(&error.path().to_string());
            Err(ApiError::validation(vec![describe(&path, inner)]))
        }
    }
}

/// serde_path_to_error writes `.` for the root; callers read `""` as "the body itself".
fn display_path(path: &str) -> String {
    if path == "." {
        String::new()
    } else {
        path.to_string()
    }
}

/// Unknown and missing fields are named by the field itself, not by its parent object.
fn describe(path: &str, error: &serde_json::Error) -> FieldError {
    let message = strip_position(&error.to_string());
    // The path of an unknown field already ends with it; a missing field's path is its parent.
    let join = |name: &str| {
        if path.is_empty() || path == name {
            name.to_string()
        } else if path.ends_with(&format!(".{name}")) {
            path.to_string()
        } else {
            format!("{path}.{name}")
        }
    };
    if let Some(name) = quoted_after(&message, "unknown field `") {
        return FieldError::new(join(&name), "unknown field");
    }
    if let Some(name) = quoted_after(&message, "missing field `") {
        return FieldError::new(join(&name), "is required");
    }
    let field = if path.is_empty() {
        "(body)".to_string()
    } else {
        path.to_string()
    };
    FieldError::new(field, message)
}

fn quoted_after(message: &str, marker: &str) -> Option<String> {
    let rest = message.split_once(marker)?.1;
    Some(rest.split_once('`')?.0.to_string())
}

/// serde_json appends " at line L column C": position is noise next to the field path.
fn strip_position(message: &str) -> String {
    match message.rfind(" at line ") {
        Some(index) => message[..index].to_string(),
        None => message.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields, rename_all = "camelCase")]
    #[allow(dead_code)]
    struct Outer {
        name: String,
        inner: Option<Inner>,
    }

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Inner {
        mode: Mode,
    }

    #[derive(Debug, Deserialize)]
    #[serde(rename_all = "snake_case")]
    enum Mode {
        Fast,
    }

    fn field_of(body: &str) -> (String, String) {
        let error = parse_json::<Outer>(body.as_bytes()).unwrap_err();
        assert_eq!(error.code, "validation_failed", "{error}");
        (
            error.errors[0].field.clone(),
            error.errors[0].message.clone(),
        )
    }

    #[test]
    fn unknown_fields_are_named_with_their_full_path() {
        assert_eq!(field_of(r#"{"name":"a","nmae":"b"}"#).0, "nmae");
        assert_eq!(
            field_of(r#"{"name":"a","inner":{"mode":"fast","speed":1}}"#).0,
            "inner.speed"
        );
    }

    #[test]
    fn missing_fields_wrong_types_and_enums_are_named() {
        assert_eq!(field_of(r#"{}"#).0, "name");
        assert_eq!(field_of(r#"{"name":5}"#).0, "name");
        let (field, message) = field_of(r#"{"name":"a","inner":{"mode":"slow"}}"#);
        assert_eq!(field, "inner.mode");
        assert!(message.contains("unknown variant"), "{message}");
    }

    #[test]
    fn malformed_json_is_its_own_problem() {
        assert_eq!(
            parse_json::<Outer>(b"{\"name\":").unwrap_err().code,
            "malformed_json"
        );
        assert_eq!(
            parse_json::<Outer>(b"not json").unwrap_err().code,
            "malformed_json"
        );
    }

    #[test]
    fn json_media_types_are_recognised() {
        assert!(is_json_media_type("application/json"));
        assert!(is_json_media_type("application/json; charset=utf-8"));
        assert!(is_json_media_type("application/merge-patch+json"));
        assert!(!is_json_media_type("text/plain"));
        assert!(!is_json_media_type("application/json; charset=latin1"));
    }
}
