//! The one versioned write of the store: a client's change to a versioned resource (integration,
//! incoming or outgoing webhook) sets the given attributes, bumps `version`, stamps `updatedAt`,
//! and — when the client sent `If-Match` — only applies if the version is still the one it read.

use std::collections::HashMap;

use aws_sdk_dynamodb::error::SdkError;
use aws_sdk_dynamodb::operation::update_item::UpdateItemError;
use aws_sdk_dynamodb::types::{AttributeValue, ReturnValue, ReturnValuesOnConditionCheckFailure};

use super::{aws_error, keys, n, s, timestamp, Item, Store, StoreError};

/// The attributes one versioned write sets and removes.
#[derive(Debug, Default)]
pub(crate) struct VersionedChanges {
    sets: Vec<(String, AttributeValue)>,
    removes: Vec<String>,
}

impl VersionedChanges {
    pub(crate) fn set(&mut self, attribute: &str, value: AttributeValue) {
        self.sets.push((attribute.to_string(), value));
    }

    /// `Some(value)` sets it, `None` stores NULL.
    pub(crate) fn set_or_null(&mut self, attribute: &str, value: Option<AttributeValue>) {
        self.set(attribute, value.unwrap_or(AttributeValue::Null(true)));
    }

    pub(crate) fn remove(&mut self, attribute: &str) {
        self.removes.push(attribute.to_string());
    }
}

#[derive(Debug, thiserror::Error)]
pub(crate) enum VersionedUpdateError {
    #[error("not found")]
    NotFound,
    /// The item as it is now (its version differs from the expected one).
    #[error("version mismatch")]
    VersionMismatch(Box<Item>),
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl Store {
    /// Applies `changes` to the item at (`pk`, `sk`) and returns it as it is after the write.
    pub(crate) async fn update_versioned(
        &self,
        pk: String,
        sk: String,
        changes: VersionedChanges,
        expected_version: Option<u64>,
    ) -> Result<Item, VersionedUpdateError> {
        let mut sets = vec![
            "#version = #version + :one".to_string(),
            "#updatedAt = :now".to_string(),
        ];
        let mut names = HashMap::from([
            ("#version".to_string(), "version".to_string()),
            ("#updatedAt".to_string(), "updatedAt".to_string()),
        ]);
        let mut values = HashMap::from([
            (":one".to_string(), n(1)),
            (":now".to_string(), s(timestamp(chrono::Utc::now()))),
        ]);
        for (i, (attribute, value)) in changes.sets.into_iter().enumerate() {
            names.insert(format!("#s{i}"), attribute);
            values.insert(format!(":s{i}"), value);
            sets.push(format!("#s{i} = :s{i}"));
        }
        let mut update = format!("SET {}", sets.join(", "));
        if !changes.removes.is_empty() {
            let removes: Vec<String> = changes
                .removes
                .into_iter()
                .enumerate()
                .map(|(i, attribute)| {
                    names.insert(format!("#r{i}"), attribute);
                    format!("#r{i}")
                })
                .collect();
            update.push_str(&format!(" REMOVE {}", removes.join(", ")));
        }
        let mut condition = "attribute_exists(pk)".to_string();
        if let Some(expected) = expected_version {
            condition.push_str(" AND #version = :expected");
            values.insert(":expected".into(), n(expected));
        }
        let result = self
            .dynamo()
            .update_item()
            .table_name(self.table())
            .key(keys::PK, s(pk))
            .key(keys::SK, s(sk))
            .update_expression(update)
            .condition_expression(condition)
            .set_expression_attribute_names(Some(names))
            .set_expression_attribute_values(Some(values))
            .return_values(ReturnValue::AllNew)
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld)
            .send()
            .await;
        match result {
            Ok(out) => out
                .attributes
                .ok_or_else(|| StoreError::Corrupt("UpdateItem returned nothing".into()).into()),
            Err(SdkError::ServiceError(service))
                if service.err().is_conditional_check_failed_exception() =>
            {
                match service.err() {
                    UpdateItemError::ConditionalCheckFailedException(failed) => {
                        match failed.item.clone() {
                            Some(current) => {
                                Err(VersionedUpdateError::VersionMismatch(Box::new(current)))
                            }
                            None => Err(VersionedUpdateError::NotFound),
                        }
                    }
                    _ => Err(VersionedUpdateError::NotFound),
                }
            }
            Err(error) => Err(aws_error("UpdateItem", error).into()),
        }
    }
}

/// The `version` of a stored item (for the 412 answer).
pub(crate) fn version_of(item: &Item) -> u64 {
    item.get("version")
        .and_then(|v| v.as_n().ok())
        .and_then(|raw| raw.parse().ok())
        .unwrap_or(0)
}
