//! The declarative sync engine's pure logic: what one provider response means and what the hub
//! stores of it, as functions over JSON bodies, catalog definitions ([`EntityDef`](crate::catalog::EntityDef)) and the
//! integration's [`SyncSettings`](crate::sync_settings::SyncSettings). No I/O: the sync runner
//! (store, rate limits, HTTP) drives these.
//!
//! - [`page_records`] reads the records of one page with their ids and deletion markers;
//! - [`RecordMapper`] applies the settings' filters, then the field mappings with their transforms
//!   and defaults;
//! - [`page_request`] / [`next_position`] walk the pages (cursor, offset, page, `Link` header,
//!   `starting_after`), with [`PagePosition`] the resumable checkpoint between them;
//! - [`run_mode`], [`incremental_query`], [`next_sync_token`] decide between a full and an
//!   incremental run (sync token or updated-since watermark) and what it sends.
//!
//! Every dot path (records, id, mappings, filters, cursors) is read by the one path reader,
//! [`value_at`](crate::inbound::path::value_at); paths are checked when the catalog is loaded and
//! when settings are written.

pub mod engine;
pub mod incremental;
pub mod mapping;
pub mod paging;

#[cfg(test)]
mod tests;

use serde_json::Value;

pub use incremental::{
    detects_deletions, incremental_query, is_expired_token_status, next_sync_token, run_mode,
    IncrementalState, RunMode, UPDATED_SINCE_OVERLAP_SECONDS,
};
pub use mapping::{
    page_records, Mapped, MappingError, PageError, RecordError, RecordMapper, RemoteRecord,
};
pub use paging::{
    next_position, page_request, page_values, parse_link_next, position_fits, PagePosition,
    PageRequest,
};

/// A cursor or sync token found in a body: a non-empty string as it is, a number as its decimal
/// text. Anything else (absent, `null`, `""`, booleans, objects) is no token.
fn token_text(value: Option<&Value>) -> Option<String> {
    match value? {
        Value::String(text) if !text.is_empty() => Some(text.clone()),
        Value::Number(number) => Some(number.to_string()),
        _ => None,
    }
}

/// What kind of JSON value something is, for messages about ids and record arrays.
fn kind_of(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(text) if text.is_empty() => "an empty string",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}
