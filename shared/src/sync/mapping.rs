//! From one provider response page to the records the hub stores: [`page_records`] finds the
//! records with their ids and deletion markers, a [`RecordMapper`] filters and maps each one.
//!
//! Rules (where the spec is silent, the choice is written here):
//! - **Filters are global**: a `SyncFilter` names no entity, so every filter of the settings applies
//!   to the remote records of every entity of the integration, all of them must hold, and they read
//!   remote paths. A path the record lacks reads as `null`: `equals`, `contains` and `in_list`
//!   then fail (unless they look for `null`) and `not_equals` holds.
//! - **Which mappings**: the settings' `fieldMappings` of the local entity; when there are none, the
//!   catalog entity's default mappings (whatever local entity name they suggest: they describe the
//!   remote entity's shape); when there are none either, `data` is the remote record as received.
//! - **`data` holds exactly the mapped local fields**: every mapped field is present, `null` when
//!   the remote value is absent or `null` and no `defaultValue` is given. A `defaultValue` is a
//!   local value: it is stored as written, not transformed. Two mappings of one local field: the
//!   later one wins.
//! - A value a transform cannot convert fails the record ([`MappingError`] naming the local field).

use serde_json::{Map, Value};

use super::kind_of;
use crate::catalog::{json_equal, DefaultMappings, EntityDef};
use crate::domain::RemoteId;
use crate::inbound::path::value_at;
use crate::sync_settings::{FieldMapping, FilterOperator, SyncFilter, SyncSettings};
use crate::transform::Transformation;

/// Why a record (or the mapper of an entity) could not be mapped. `field` is the local field whose
/// value failed, `filters[i]` for a filter of the settings, and empty when the record as a whole is
/// unusable.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {message}")]
pub struct MappingError {
    pub field: String,
    pub message: String,
}

/// The outcome of mapping one remote record.
#[derive(Debug, Clone, PartialEq)]
pub enum Mapped {
    /// The record's `data`.
    Record(Map<String, Value>),
    /// A filter excluded it: the run counts it `skipped` (and deletes it if it was stored).
    FilteredOut,
}

/// The filters and field mappings of one (integration, local entity), parsed once per run.
#[derive(Debug, Clone, PartialEq)]
pub struct RecordMapper {
    filters: Vec<Filter>,
    /// `None`: no mappings at all, `data` is the remote record.
    fields: Option<Vec<FieldRule>>,
}

#[derive(Debug, Clone, PartialEq)]
struct Filter {
    path: String,
    condition: Condition,
}

#[derive(Debug, Clone, PartialEq)]
enum Condition {
    Equals(Value),
    NotEquals(Value),
    Contains(Value),
    InList(Vec<Value>),
}

#[derive(Debug, Clone, PartialEq)]
struct FieldRule {
    local_field: String,
    remote_field: String,
    transformation: Transformation,
    default_value: Option<Value>,
}

impl RecordMapper {
    /// The mapper of `local_entity`: every filter of `settings`, its `fieldMappings` for the entity,
    /// else `defaults` (the catalog entity's). Settings were validated when written; what still does
    /// not parse (an `in_list` without an array, a bad `transformConfig`) is an error, not a panic.
    pub fn new(
        settings: &SyncSettings,
        local_entity: &str,
        defaults: Option<&DefaultMappings>,
    ) -> Result<RecordMapper, MappingError> {
        let filters = settings
            .filters
            .iter()
            .enumerate()
            .map(|(index, filter)| Filter::parse(index, filter))
            .collect::<Result<Vec<_>, _>>()?;
        let own: Vec<(String, &FieldMapping)> = settings
            .field_mappings
            .iter()
            .enumerate()
            .filter(|(_, mapping)| mapping.local_entity == local_entity)
            .map(|(index, mapping)| (format!("fieldMappings[{index}]"), mapping))
            .collect();
        let chosen = if own.is_empty() {
            defaults
                .map(|defaults| {
                    defaults
                        .fields
                        .iter()
                        .enumerate()
                        .map(|(index, mapping)| {
                            (format!("defaultMappings.fields[{index}]"), mapping)
                        })
                        .collect()
                })
                .unwrap_or_default()
        } else {
            own
        };
        let fields = if chosen.is_empty() {
            None
        } else {
            Some(
                chosen
                    .into_iter()
                    .map(|(at, mapping)| FieldRule::parse(&at, mapping))
                    .collect::<Result<Vec<_>, _>>()?,
            )
        };
        Ok(RecordMapper { filters, fields })
    }

    /// Whether the entity has no mappings at all, so records are stored as received.
    pub fn keeps_records_as_received(&self) -> bool {
        self.fields.is_none()
    }

    /// Filters `remote`, then maps it: transforms applied, defaults filled in.
    pub fn map(&self, remote: &Value) -> Result<Mapped, MappingError> {
        if !self.filters.iter().all(|filter| filter.keeps(remote)) {
            return Ok(Mapped::FilteredOut);
        }
        let Some(fields) = &self.fields else {
            return match remote {
                Value::Object(record) => Ok(Mapped::Record(record.clone())),
                other => Err(MappingError {
                    field: String::new(),
                    message: format!(
                        "the record is {}; without field mappings a record must be an object",
                        kind_of(other)
                    ),
                }),
            };
        };
        let mut data = Map::new();
        for rule in fields {
            let value = match value_at(remote, &rule.remote_field) {
                None | Some(Value::Null) => rule.default_value.clone().unwrap_or(Value::Null),
                Some(value) => rule
                    .transformation
                    .apply(value)
                    .map_err(|error| MappingError {
                        field: rule.local_field.clone(),
                        message: format!("`{}`: {}", rule.remote_field, error.message),
                    })?,
            };
            data.insert(rule.local_field.clone(), value);
        }
        Ok(Mapped::Record(data))
    }
}

impl Filter {
    fn parse(index: usize, filter: &SyncFilter) -> Result<Filter, MappingError> {
        let condition = match filter.operator {
            FilterOperator::Equals => Condition::Equals(filter.value.clone()),
            FilterOperator::NotEquals => Condition::NotEquals(filter.value.clone()),
            FilterOperator::Contains => Condition::Contains(filter.value.clone()),
            FilterOperator::InList => match &filter.value {
                Value::Array(items) => Condition::InList(items.clone()),
                other => {
                    return Err(MappingError {
                        field: format!("filters[{index}]"),
                        message: format!("in_list needs an array value, not {}", kind_of(other)),
                    })
                }
            },
        };
        Ok(Filter {
            path: filter.field.clone(),
            condition,
        })
    }

    /// `equals`/`not_equals`/`in_list` compare JSON values (numbers by value: 2 = 2.0, strings
    /// exactly); `contains` is a substring of a string or an element of an array.
    fn keeps(&self, remote: &Value) -> bool {
        let found = value_at(remote, &self.path).unwrap_or(&Value::Null);
        match &self.condition {
            Condition::Equals(wanted) => json_equal(found, wanted),
            Condition::NotEquals(unwanted) => !json_equal(found, unwanted),
            Condition::Contains(wanted) => match (found, wanted) {
                (Value::String(text), Value::String(part)) => text.contains(part.as_str()),
                (Value::Array(items), wanted) => items.iter().any(|item| json_equal(item, wanted)),
                _ => false,
            },
            Condition::InList(list) => list.iter().any(|item| json_equal(found, item)),
        }
    }
}

impl FieldRule {
    fn parse(at: &str, mapping: &FieldMapping) -> Result<FieldRule, MappingError> {
        let transformation = mapping
            .transformation(at)
            .map_err(|problems| MappingError {
                field: mapping.local_field.clone(),
                message: problems
                    .iter()
                    .map(|problem| format!("{} {}", problem.field, problem.message))
                    .collect::<Vec<_>>()
                    .join("; "),
            })?;
        Ok(FieldRule {
            local_field: mapping.local_field.clone(),
            remote_field: mapping.remote_field.clone(),
            transformation,
            default_value: mapping.default_value.clone(),
        })
    }
}

/// A remote record as the engine sees it.
#[derive(Debug, Clone, PartialEq)]
pub struct RemoteRecord<'a> {
    /// The value at the entity's `id` path: a string as it is, a number as its decimal text; 1 to
    /// [`RemoteId::MAX_BYTES`] bytes, so always a valid [`RemoteId`].
    pub id: String,
    /// The value at `updatedAt`, when the entity declares one and the record holds a non-null value.
    pub updated_at: Option<&'a Value>,
    /// The record is the provider's deletion marker (`deleted: {path, equals}`): the runner deletes
    /// it without mapping it (a marker may hold little more than its id).
    pub deleted: bool,
    /// The record as received: what [`RecordMapper::map`] reads.
    pub body: &'a Value,
}

/// One record of a page without a usable id; the run counts it `failed`. `index` is its position
/// in the page's records array (the only way to name it).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("record {index} of the page: {message}")]
pub struct RecordError {
    pub index: usize,
    pub message: String,
}

/// A page whose body does not hold a records array where the entity says. The page fails as a
/// whole: reading it as empty would end a full run early and delete every record not yet seen.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct PageError {
    pub message: String,
}

/// The records of one response page with their ids and deletion flags, in the page's order. A
/// record without a readable id is an error item; the body without an array at the entity's
/// `records` path (`""` = the body itself) is a [`PageError`].
pub fn page_records<'a>(
    entity: &EntityDef,
    body: &'a Value,
) -> Result<Vec<Result<RemoteRecord<'a>, RecordError>>, PageError> {
    let found = if entity.records.is_empty() {
        Some(body)
    } else {
        value_at(body, &entity.records)
    };
    let place = if entity.records.is_empty() {
        "the body".to_string()
    } else {
        format!("the value at records path `{}`", entity.records)
    };
    let items = match found {
        Some(Value::Array(items)) => items,
        None if entity.records_optional => return Ok(Vec::new()),
        Some(other) => {
            return Err(PageError {
                message: format!("{place} is {}, not an array of records", kind_of(other)),
            })
        }
        None => {
            return Err(PageError {
                message: format!("the body has no value at records path `{}`", entity.records),
            })
        }
    };
    Ok(items
        .iter()
        .enumerate()
        .map(|(index, record)| {
            remote_record(entity, record).map_err(|message| RecordError { index, message })
        })
        .collect())
}

fn remote_record<'a>(entity: &EntityDef, record: &'a Value) -> Result<RemoteRecord<'a>, String> {
    let path = &entity.id;
    let id = match value_at(record, path) {
        None | Some(Value::Null) => return Err(format!("no id at `{path}`")),
        Some(Value::String(text)) => text.clone(),
        Some(Value::Number(number)) => number.to_string(),
        Some(other) => {
            return Err(format!(
                "the id at `{path}` is {}; an id is a string or a number",
                kind_of(other)
            ))
        }
    };
    // The id becomes the stored record's `RemoteId`: the same bounds.
    RemoteId::parse(&id).map_err(|problem| format!("the id at `{path}`: {problem}"))?;
    let updated_at = entity
        .updated_at
        .as_deref()
        .and_then(|path| value_at(record, path))
        .filter(|value| !value.is_null());
    let deleted = entity.deleted.as_ref().is_some_and(|marker| {
        value_at(record, &marker.path).is_some_and(|value| json_equal(value, &marker.equals))
    });
    Ok(RemoteRecord {
        id,
        updated_at,
        deleted,
        body: record,
    })
}
