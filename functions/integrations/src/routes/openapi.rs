//! `GET /api/openapi.json`: the OpenAPI 3.1 document of this function's routes.

use axum::response::IntoResponse;
use http::header;

pub const OPENAPI_DOCUMENT: &str = include_str!("../../openapi.json");

pub async fn document() -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "application/json")],
        OPENAPI_DOCUMENT,
    )
}
