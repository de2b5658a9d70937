//! `GET /api/openapi.json`: the one OpenAPI 3.1 document of the whole API (every function's routes,
//! kept at the workspace root in `api/openapi.json`, compiled into the shared crate once).

use axum::response::IntoResponse;
use http::header;

use hub_shared::api_document::document_text;

pub async fn document() -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "application/json")],
        document_text(),
    )
}
