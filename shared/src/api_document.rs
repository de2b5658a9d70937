//! The OpenAPI 3.1 document of the whole API (`api/openapi.json` at the workspace root), compiled
//! in once: the integrations function serves it, and the event-type schemas take the integration
//! resource from it, so an event's `data` and `GET /api/integrations/{id}` share one definition.

use std::sync::OnceLock;

use serde_json::{Map, Value};

pub const OPENAPI_DOCUMENT: &str = include_str!("../../api/openapi.json");

/// The document, parsed once.
///
/// # Panics
/// Only if the compiled-in document is not JSON, which the route-parity and conformance tests rule
/// out before anything ships.
pub fn document() -> &'static Value {
    static DOCUMENT: OnceLock<Value> = OnceLock::new();
    DOCUMENT.get_or_init(|| match serde_json::from_str(OPENAPI_DOCUMENT) {
        Ok(document) => document,
        Err(e) => panic!("api/openapi.json is not JSON: {e}"),
    })
}

/// `#/components/schemas/<name>` as a standalone JSON Schema: every `#/components/schemas/…`
/// reference inlined, examples dropped (they illustrate the API response, not other documents).
pub fn component_schema(name: &str) -> Option<Value> {
    let schemas = document().pointer("/components/schemas")?;
    schemas.get(name).map(|schema| inline(schema, schemas))
}

fn inline(value: &Value, schemas: &Value) -> Value {
    match value {
        Value::Object(fields) => {
            let mut out = Map::new();
            if let Some(target) = fields
                .get("$ref")
                .and_then(Value::as_str)
                .and_then(|r| r.strip_prefix("#/components/schemas/"))
                .and_then(|name| schemas.get(name))
            {
                if let Value::Object(resolved) = inline(target, schemas) {
                    out.extend(resolved);
                }
            }
            for (key, field) in fields {
                match key.as_str() {
                    "$ref" if !out.is_empty() => {}
                    "examples" | "example" => {}
                    // Its keys are property names, not keywords: each value is a schema.
                    "properties" | "$defs" | "patternProperties" => {
                        let named = match field {
                            Value::Object(named) => named
                                .iter()
                                .map(|(name, schema)| (name.clone(), inline(schema, schemas)))
                                .collect(),
                            _ => Map::new(),
                        };
                        out.insert(key.clone(), Value::Object(named));
                    }
                    _ => {
                        out.insert(key.clone(), inline(field, schemas));
                    }
                }
            }
            Value::Object(out)
        }
        Value::Array(items) => Value::Array(items.iter().map(|v| inline(v, schemas)).collect()),
        other => other.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_integration_schema_stands_alone() {
        let schema = component_schema("Integration").expect("Integration");
        let text = schema.to_string();
        assert!(!text.contains("$ref"), "{text}");
        assert!(!text.contains("\"examples\""));
        assert_eq!(
            schema.pointer("/properties/health/properties/score/maximum"),
            Some(&Value::from(100))
        );
        assert_eq!(
            schema.pointer("/properties/syncSettings/properties/entities/items/required/0"),
            Some(&Value::from("localEntity"))
        );
    }
}
