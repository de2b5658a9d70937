//! The record an entity action (`create_entity` / `update_entity`) makes of a body: its id from
//! `idPath`, each local field from the body path `fieldMappings` maps to it. The dispatcher upserts
//! it; the dry run (`POST /api/webhooks/{id}/test`) shows it.

use serde_json::{Map, Value};

use super::config::EntityActionConfig;
use crate::domain::RemoteId;

/// One record, as an entity action would write it.
#[derive(Debug, Clone, PartialEq)]
pub struct ExtractedRecord {
    /// The value at `idPath`: a string as it is, a number as its decimal text; at most
    /// [`RemoteId::MAX_BYTES`] bytes, so it is always a valid `RemoteId`.
    pub id: String,
    /// Local field → the value at its body path; fields whose path the body lacks are left out.
    pub data: Map<String, Value>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ExtractError {
    #[error("the body has no value at idPath `{path}`")]
    MissingId { path: String },
    #[error("the value at idPath `{path}` is {found}; an id is a non-empty string or a number")]
    InvalidId { path: String, found: &'static str },
    #[error(
        "the id at idPath `{path}` is longer than {} bytes",
        RemoteId::MAX_BYTES
    )]
    IdTooLong { path: String },
}

/// The record `config` makes of `body` (the parsed JSON body).
pub fn extract_record(
    config: &EntityActionConfig,
    body: &Value,
) -> Result<ExtractedRecord, ExtractError> {
    let path = config.id_path.as_str().to_string();
    let id = match config.id_path.lookup(body) {
        None | Some(Value::Null) => return Err(ExtractError::MissingId { path }),
        Some(Value::String(text)) if !text.is_empty() => text.clone(),
        Some(Value::Number(number)) => number.to_string(),
        Some(other) => {
            return Err(ExtractError::InvalidId {
                path,
                found: kind_of(other),
            })
        }
    };
    // The id becomes the record's `RemoteId` (part of its sort key): the same bound.
    if id.len() > RemoteId::MAX_BYTES {
        return Err(ExtractError::IdTooLong { path });
    }
    let data = config
        .field_mappings
        .iter()
        .filter_map(|(field, path)| {
            path.lookup(body)
                .map(|value| (field.clone(), value.clone()))
        })
        .collect();
    Ok(ExtractedRecord { id, data })
}

fn kind_of(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "an empty string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn config(id_path: &str, mappings: Value) -> EntityActionConfig {
        serde_json::from_value(json!({
            "entityType": "payment", "idPath": id_path, "fieldMappings": mappings
        }))
        .expect("valid config")
    }

    #[test]
    fn the_id_and_the_mapped_fields_come_from_their_paths() {
        let body = json!({"data": {"object": {"id": "in_1", "amount_paid": 500, "currency": "eur",
            "lines": [{"amount": 5}]}}});
        let config = config(
            "data.object.id",
            json!({"amount": "data.object.amount_paid", "currency": "data.object.currency",
                   "first": "data.object.lines.0.amount", "absent": "data.object.missing"}),
        );
        let record = extract_record(&config, &body).expect("extracted");
        assert_eq!(record.id, "in_1");
        assert_eq!(
            Value::Object(record.data),
            json!({"amount": 500, "currency": "eur", "first": 5})
        );
    }

    #[test]
    fn a_numeric_id_is_its_decimal_text() {
        let record =
            extract_record(&config("id", json!({})), &json!({"id": 42})).expect("extracted");
        assert_eq!(record.id, "42");
        let record =
            extract_record(&config("id", json!({})), &json!({"id": 1.5})).expect("extracted");
        assert_eq!(record.id, "1.5");
    }

    #[test]
    fn a_missing_or_unusable_id_says_which_path() {
        let config = config("data.id", json!({}));
        let cases = [
            (json!({"data": {}}), "the body has no value at idPath `data.id`"),
            (json!({"data": {"id": null}}), "the body has no value at idPath `data.id`"),
            (
                json!({"data": {"id": ""}}),
                "the value at idPath `data.id` is an empty string; an id is a non-empty string or a number",
            ),
            (
                json!({"data": {"id": {"x": 1}}}),
                "the value at idPath `data.id` is an object; an id is a non-empty string or a number",
            ),
            (json!("text"), "the body has no value at idPath `data.id`"),
        ];
        for (body, expected) in cases {
            let error = extract_record(&config, &body).expect_err("refused");
            assert_eq!(error.to_string(), expected);
        }
        let long = json!({"data": {"id": "ש".repeat(RemoteId::MAX_BYTES / 2 + 1)}});
        assert!(matches!(
            extract_record(&config, &long),
            Err(ExtractError::IdTooLong { .. })
        ));
    }
}
