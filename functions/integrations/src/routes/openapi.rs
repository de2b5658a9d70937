//! `GET /api/openapi.json`: the one OpenAPI 3.1 document of the whole API (every function's routes,
//! kept at the workspace root in `api/openapi.json`).

use axum::response::IntoResponse;
use http::header;

pub const OPENAPI_DOCUMENT: &str = include_str!("../../../../api/openapi.json");

pub async fn document() -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "application/json")],
        OPENAPI_DOCUMENT,
    )
}
