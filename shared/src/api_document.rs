//! The OpenAPI 3.1 document of the whole API (`api/openapi.json` at the workspace root), compiled
//! in once: the integrations function serves it, and the event-type schemas take the integration
//! resource from it, so an event's `data` and `GET /api/integrations/{id}` share one definition.

use std::sync::OnceLock;

use serde_json::{Map, Value};

/// `api/openapi.json` made compact and DEFLATE-compressed by build.rs.
const DEFLATED: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/openapi.json.deflate"));

/// The document as served: `api/openapi.json` made compact (the same JSON value, with the same key
/// order), inflated once.
///
/// # Panics
/// Only if the compiled-in bytes do not inflate to UTF-8, which every test that reads the document
/// rules out before anything ships.
pub fn document_text() -> &'static str {
    static TEXT: OnceLock<String> = OnceLock::new();
    TEXT.get_or_init(|| {
        let bytes = miniz_oxide::inflate::decompress_to_vec(DEFLATED)
            .unwrap_or_else(|e| panic!("the compiled-in api/openapi.json does not inflate: {e:?}"));
        String::from_utf8(bytes).unwrap_or_else(|e| panic!("api/openapi.json is not UTF-8: {e}"))
    })
}

/// The document, parsed once.
///
/// # Panics
/// Only if the compiled-in document is not JSON, which the route-parity and conformance tests rule
/// out before anything ships.
pub fn document() -> &'static Value {
    static DOCUMENT: OnceLock<Value> = OnceLock::new();
    DOCUMENT.get_or_init(|| match serde_json::from_str(document_text()) {
        Ok(document) => document,
        Err(e) => panic!("api/openapi.json is not JSON: {e}"),
    })
}

/// `#/components/schemas/<name>` as a standalone JSON Schema: every `#/components/schemas/…`
/// reference inlined, examples dropped (they illustrate the API response, not other documents).
/// A recursive schema (`JsonValue` holds arrays of `JsonValue`) cannot be inlined: a reference back
/// into a schema being inlined becomes `#/$defs/<name>`, and those definitions are carried in the
/// result's own `$defs`.
pub fn component_schema(name: &str) -> Option<Value> {
    let schemas = document().pointer("/components/schemas")?;
    let target = schemas.get(name)?;
    let mut inliner = Inliner {
        schemas,
        stack: vec![name.to_string()],
        recursive: Vec::new(),
    };
    let mut schema = inliner.inline(target);
    let mut defs = Map::new();
    let mut done = 0;
    while done < inliner.recursive.len() {
        let def = inliner.recursive[done].clone();
        done += 1;
        if let Some(target) = schemas.get(&def) {
            inliner.stack = vec![def.clone()];
            let inlined = inliner.inline(target);
            defs.insert(def, inlined);
        }
    }
    if let (Value::Object(root), false) = (&mut schema, defs.is_empty()) {
        root.insert("$defs".into(), Value::Object(defs));
    }
    Some(schema)
}

struct Inliner<'a> {
    schemas: &'a Value,
    /// The components being inlined, outermost first.
    stack: Vec<String>,
    /// Components referenced recursively, in the order met: they go to `$defs`.
    recursive: Vec<String>,
}

impl Inliner<'_> {
    fn inline(&mut self, value: &Value) -> Value {
        match value {
            Value::Object(fields) => {
                let mut out = Map::new();
                let reference = fields
                    .get("$ref")
                    .and_then(Value::as_str)
                    .and_then(|r| r.strip_prefix("#/components/schemas/"))
                    .map(str::to_string);
                if let Some(name) = &reference {
                    if self.stack.contains(name) {
                        if !self.recursive.contains(name) {
                            self.recursive.push(name.clone());
                        }
                        out.insert("$ref".into(), Value::String(format!("#/$defs/{name}")));
                    } else if let Some(target) = self.schemas.get(name) {
                        self.stack.push(name.clone());
                        if let Value::Object(resolved) = self.inline(target) {
                            out.extend(resolved);
                        }
                        self.stack.pop();
                    }
                }
                for (key, field) in fields {
                    match key.as_str() {
                        "$ref" if reference.is_some() => {}
                        "examples" | "example" => {}
                        // Its keys are property names, not keywords: each value is a schema.
                        "properties" | "$defs" | "patternProperties" => {
                            let named = match field {
                                Value::Object(named) => named
                                    .iter()
                                    .map(|(name, schema)| (name.clone(), self.inline(schema)))
                                    .collect(),
                                _ => Map::new(),
                            };
                            out.insert(key.clone(), Value::Object(named));
                        }
                        _ => {
                            let inlined = self.inline(field);
                            out.insert(key.clone(), inlined);
                        }
                    }
                }
                Value::Object(out)
            }
            Value::Array(items) => Value::Array(items.iter().map(|v| self.inline(v)).collect()),
            other => other.clone(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_integration_schema_stands_alone() {
        let schema = component_schema("Integration").expect("Integration");
        let text = schema.to_string();
        assert!(!text.contains("#/components/"), "{text}");
        // Recursive parts (free-form JSON values) are carried as the schema's own definitions.
        for reference in text.split("\"$ref\":\"#/$defs/").skip(1) {
            let name = reference.split('"').next().unwrap_or_default();
            assert!(
                schema["$defs"].get(name).is_some(),
                "{name} is not in $defs"
            );
        }
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
