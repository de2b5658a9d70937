//! Tests of the sync engine's pure logic against the built-in catalog's real definitions and
//! realistic provider bodies.

mod incremental;
mod mapping;
mod paging;
mod positions;
mod proptests;
mod records;

use serde_json::Value;

use crate::catalog::{Catalog, EntityDef};
use crate::sync_settings::SyncSettings;

/// A built-in catalog entity, as the runner gets it.
fn builtin_entity(provider: &str, entity: &str) -> EntityDef {
    Catalog::builtin()
        .get(provider)
        .and_then(|provider| provider.entity(entity))
        .unwrap_or_else(|| panic!("{provider}.{entity} is in the built-in catalog"))
        .clone()
}

/// An entity as a `custom_api` integration defines it (loaded and checked like catalog entities).
fn custom_entity(definition: Value) -> EntityDef {
    let catalog = Catalog::builtin();
    let custom = catalog.get("custom_api").expect("custom_api is built in");
    let mut entities = custom
        .parse_entities(&serde_json::json!({ "item": definition }))
        .unwrap_or_else(|error| panic!("a valid definition: {error}"));
    entities.remove("item").expect("the entity")
}

fn settings(value: Value) -> SyncSettings {
    serde_json::from_value(value).expect("valid sync settings")
}
