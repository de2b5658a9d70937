//! Per-integration sync settings: the shape, its defaults, and the checks
//! made when they are written (unknown entity, transform or operator → 400 naming the field).

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::error::FieldError;
pub use crate::transform::Transform;
use crate::transform::Transformation;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SyncDirection {
    Import,
    Export,
    Bidirectional,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SyncFrequency {
    Realtime,
    Hourly,
    Daily,
    Manual,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FilterOperator {
    Equals,
    NotEquals,
    Contains,
    InList,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SyncEntity {
    pub local_entity: String,
    pub remote_entity: String,
    #[serde(default = "yes")]
    pub enabled: bool,
    #[serde(default = "import")]
    pub direction: SyncDirection,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct FieldMapping {
    pub local_entity: String,
    pub local_field: String,
    pub remote_field: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub transform: Option<Transform>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub transform_config: Option<serde_json::Map<String, Value>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default_value: Option<Value>,
}

impl FieldMapping {
    /// The mapping's transform with its parsed configuration; errors name fields under `at`.
    pub fn transformation(&self, at: &str) -> Result<Transformation, Vec<FieldError>> {
        Transformation::parse(self.transform, self.transform_config.as_ref(), at)
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SyncFilter {
    pub field: String,
    pub operator: FilterOperator,
    pub value: Value,
}

/// The stored and returned settings; every field has its API default, so partial input is complete.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SyncSettings {
    #[serde(default)]
    pub enabled: bool,
    #[serde(default = "import")]
    pub direction: SyncDirection,
    #[serde(default = "manual")]
    pub frequency: SyncFrequency,
    #[serde(default)]
    pub entities: Vec<SyncEntity>,
    #[serde(default)]
    pub field_mappings: Vec<FieldMapping>,
    #[serde(default)]
    pub filters: Vec<SyncFilter>,
}

impl Default for SyncSettings {
    fn default() -> Self {
        SyncSettings {
            enabled: false,
            direction: SyncDirection::Import,
            frequency: SyncFrequency::Manual,
            entities: Vec::new(),
            field_mappings: Vec::new(),
            filters: Vec::new(),
        }
    }
}

fn yes() -> bool {
    true
}
fn import() -> SyncDirection {
    SyncDirection::Import
}
fn manual() -> SyncFrequency {
    SyncFrequency::Manual
}

const MAX_ENTRIES: usize = 200;
const MAX_NAME_CHARS: usize = 128;
const MAX_PATH_CHARS: usize = 256;

/// One entity a sync run imports: the local entity its records are stored under, and the remote
/// entity (the catalog's, or a custom API's definition) it reads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImportEntity {
    pub local: String,
    pub remote: String,
}

impl SyncSettings {
    /// What a sync imports: the settings' entities that are enabled and import (`import` or
    /// `bidirectional`); with no entities in the settings, every entity of `definitions` (the
    /// provider's, by remote name), under the local name of its default mappings (else its remote
    /// name).
    pub fn import_entities(
        &self,
        definitions: &std::collections::BTreeMap<String, crate::catalog::EntityDef>,
    ) -> Vec<ImportEntity> {
        if self.entities.is_empty() {
            return definitions
                .iter()
                .map(|(remote, definition)| ImportEntity {
                    local: definition
                        .default_mappings
                        .as_ref()
                        .map_or(remote.as_str(), |d| d.local_entity.as_str())
                        .to_string(),
                    remote: remote.clone(),
                })
                .collect();
        }
        self.entities
            .iter()
            .filter(|entity| entity.enabled && entity.direction != SyncDirection::Export)
            .map(|entity| ImportEntity {
                local: entity.local_entity.clone(),
                remote: entity.remote_entity.clone(),
            })
            .collect()
    }

    /// `autoSyncEnabled` = enabled and a frequency other than manual.
    pub fn auto_sync_enabled(&self) -> bool {
        self.enabled && self.frequency != SyncFrequency::Manual
    }

    /// Checks what serde cannot: entities the provider has, mappings and filters that point somewhere.
    /// `remote_entity_exists` answers for the integration's provider (or its custom definitions).
    pub fn validate(&self, remote_entity_exists: impl Fn(&str) -> bool) -> Vec<FieldError> {
        let mut errors = Vec::new();
        let base = "syncSettings";
        for (list, len) in [
            ("entities", self.entities.len()),
            ("fieldMappings", self.field_mappings.len()),
            ("filters", self.filters.len()),
        ] {
            if len > MAX_ENTRIES {
                errors.push(FieldError::new(
                    format!("{base}.{list}"),
                    format!("at most {MAX_ENTRIES} entries"),
                ));
            }
        }
        let mut local_entities = std::collections::HashSet::new();
        for (i, entity) in self.entities.iter().enumerate() {
            let at = format!("{base}.entities[{i}]");
            if let Some(message) = name_problem(&entity.local_entity) {
                errors.push(FieldError::new(format!("{at}.localEntity"), message));
            } else if !local_entities.insert(entity.local_entity.as_str()) {
                errors.push(FieldError::new(
                    format!("{at}.localEntity"),
                    "is listed twice",
                ));
            }
            if !remote_entity_exists(&entity.remote_entity) {
                errors.push(FieldError::new(
                    format!("{at}.remoteEntity"),
                    format!(
                        "the provider has no entity `{}`",
                        truncate(&entity.remote_entity)
                    ),
                ));
            }
        }
        for (i, mapping) in self.field_mappings.iter().enumerate() {
            let at = format!("{base}.fieldMappings[{i}]");
            if !local_entities.contains(mapping.local_entity.as_str()) {
                errors.push(FieldError::new(
                    format!("{at}.localEntity"),
                    format!(
                        "`{}` is not one of syncSettings.entities",
                        truncate(&mapping.local_entity)
                    ),
                ));
            }
            if let Some(message) = name_problem(&mapping.local_field) {
                errors.push(FieldError::new(format!("{at}.localField"), message));
            }
            if let Some(message) = path_problem(&mapping.remote_field) {
                errors.push(FieldError::new(format!("{at}.remoteField"), message));
            }
            if let Err(problems) = mapping.transformation(&at) {
                errors.extend(problems);
            }
        }
        for (i, filter) in self.filters.iter().enumerate() {
            let at = format!("{base}.filters[{i}]");
            if let Some(message) = path_problem(&filter.field) {
                errors.push(FieldError::new(format!("{at}.field"), message));
            }
            if filter.operator == FilterOperator::InList && !filter.value.is_array() {
                errors.push(FieldError::new(
                    format!("{at}.value"),
                    "in_list needs an array value",
                ));
            }
        }
        errors
    }
}

fn name_problem(name: &str) -> Option<String> {
    if name.is_empty() || name.chars().count() > MAX_NAME_CHARS {
        return Some(format!("must be 1-{MAX_NAME_CHARS} characters"));
    }
    if name.chars().any(char::is_control) {
        return Some("must not contain control characters".to_string());
    }
    None
}

/// Dot paths with array indexes (`attendees.0.email`): no empty segment.
fn path_problem(path: &str) -> Option<String> {
    if path.is_empty() || path.chars().count() > MAX_PATH_CHARS {
        return Some(format!(
            "must be a dot path of 1-{MAX_PATH_CHARS} characters"
        ));
    }
    if path.split('.').any(str::is_empty) {
        return Some(
            "must be a dot path without empty segments (e.g. attendees.0.email)".to_string(),
        );
    }
    None
}

fn truncate(value: &str) -> String {
    value.chars().take(64).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_fields_take_the_api_defaults() {
        let settings: SyncSettings = serde_json::from_str("{}").expect("valid");
        assert_eq!(settings, SyncSettings::default());
        assert_eq!(
            serde_json::to_value(&settings).expect("json"),
            serde_json::json!({"enabled": false, "direction": "import", "frequency": "manual",
                               "entities": [], "fieldMappings": [], "filters": []})
        );
    }

    #[test]
    fn unknown_enum_values_and_fields_are_rejected_by_the_parser() {
        assert!(serde_json::from_str::<SyncSettings>(r#"{"direction":"sideways"}"#).is_err());
        assert!(serde_json::from_str::<SyncSettings>(r#"{"frequncy":"daily"}"#).is_err());
        assert!(serde_json::from_str::<SyncSettings>(
            r#"{"fieldMappings":[{"localEntity":"m","localField":"a","remoteField":"b","transform":"eval"}]}"#
        )
        .is_err());
    }

    #[test]
    fn unknown_remote_entities_and_dangling_mappings_are_named() {
        let settings: SyncSettings = serde_json::from_value(serde_json::json!({
            "entities": [{"localEntity": "meeting", "remoteEntity": "event"},
                         {"localEntity": "task", "remoteEntity": "todo"}],
            "fieldMappings": [{"localEntity": "payment", "localField": "amount", "remoteField": "amount"},
                              {"localEntity": "meeting", "localField": "title", "remoteField": "a..b"}],
            "filters": [{"field": "status", "operator": "in_list", "value": "cancelled"}]
        }))
        .expect("parses");
        let errors = settings.validate(|remote| remote == "event");
        let fields: Vec<&str> = errors.iter().map(|e| e.field.as_str()).collect();
        assert_eq!(
            fields,
            [
                "syncSettings.entities[1].remoteEntity",
                "syncSettings.fieldMappings[0].localEntity",
                "syncSettings.fieldMappings[1].remoteField",
                "syncSettings.filters[0].value",
            ]
        );
    }
}
