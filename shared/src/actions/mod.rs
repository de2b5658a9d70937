//! Declared actions (catalog `actions`, sync.md "Actions through a connection"): the pure parts
//! of a call. [`InputSchema`] checks the caller's input against the action's JSON Schema (draft
//! 2020-12) and names the failing field; [`output`] picks the action's fields from the provider's
//! answer; [`loggable_input`] is the input as an integration log may show it (secret properties
//! replaced). The HTTP call, the bucket, the token and idempotency are the route's.

use serde_json::{Map, Value};

use crate::catalog::{ActionDef, Catalog};
use crate::error::FieldError;
use crate::inbound::path::value_at;

#[cfg(test)]
mod tests;

/// What a log shows instead of a secret input value.
pub const REDACTED: &str = "[redacted]";

/// A compiled input schema.
pub struct InputSchema {
    schemas: boon::Schemas,
    index: boon::SchemaIndex,
}

/// Where the schema is registered while it is compiled (it refers to nothing else).
const SCHEMA_LOCATION: &str = "urn:integrations-hub:action-input";

impl InputSchema {
    /// Compiles `schema` as draft 2020-12; the compiler checks it against the draft's
    /// meta-schema first. `format` is asserted (`date-time` must be RFC 3339), not only an
    /// annotation: a provider would refuse what it does not parse.
    pub fn compile(schema: &Value) -> Result<InputSchema, String> {
        let invalid = |e: &dyn std::fmt::Display| format!("not a valid JSON Schema: {e}");
        let mut compiler = boon::Compiler::new();
        compiler.set_default_draft(boon::Draft::V2020_12);
        compiler.enable_format_assertions();
        compiler
            .add_resource(SCHEMA_LOCATION, schema.clone())
            .map_err(|e| invalid(&e))?;
        let mut schemas = boon::Schemas::new();
        let index = compiler
            .compile(SCHEMA_LOCATION, &mut schemas)
            .map_err(|e| invalid(&e))?;
        Ok(InputSchema { schemas, index })
    }

    /// Every way `input` fails the schema, each naming its field (`to`, `attendees[1]`;
    /// `input` for the object itself), in the schema's order.
    pub fn check(&self, input: &Value) -> Result<(), Vec<FieldError>> {
        let Err(error) = self.schemas.validate(input, self.index) else {
            return Ok(());
        };
        let mut errors = Vec::new();
        leaves(&error, &mut errors);
        Err(errors)
    }
}

/// The innermost errors of a validation error tree (a failed `anyOf` names what each branch
/// wanted), as field errors.
fn leaves(error: &boon::ValidationError<'_, '_>, out: &mut Vec<FieldError>) {
    if !error.causes.is_empty() {
        for cause in &error.causes {
            leaves(cause, out);
        }
        return;
    }
    let at = field_path(&error.instance_location.to_string());
    match &error.kind {
        boon::ErrorKind::Required { want } => {
            for name in want {
                out.push(FieldError::new(join(&at, name), "is required"));
            }
        }
        boon::ErrorKind::AdditionalProperties { got } => {
            for name in got {
                out.push(FieldError::new(
                    join(&at, name),
                    "is not an input of this action",
                ));
            }
        }
        kind => out.push(FieldError::new(
            if at.is_empty() {
                "input".to_owned()
            } else {
                at
            },
            kind.to_string(),
        )),
    }
}

/// A JSON pointer (`/attendees/0/email`) as a field path (`attendees[0].email`).
fn field_path(pointer: &str) -> String {
    let mut out = String::new();
    for segment in pointer.split('/').skip(1) {
        let segment = segment.replace("~1", "/").replace("~0", "~");
        if !segment.is_empty() && segment.bytes().all(|b| b.is_ascii_digit()) && !out.is_empty() {
            out.push_str(&format!("[{segment}]"));
        } else {
            if !out.is_empty() {
                out.push('.');
            }
            out.push_str(&segment);
        }
    }
    out
}

fn join(parent: &str, name: &str) -> String {
    if parent.is_empty() {
        name.to_owned()
    } else {
        format!("{parent}.{name}")
    }
}

/// Compiles the input schema of every action in `catalog`, so a `PROVIDERS_FILE` with a broken
/// schema stops the function at start-up, naming the action.
pub fn check_catalog_schemas(catalog: &Catalog) -> Result<(), String> {
    for (slug, provider) in catalog.iter() {
        for (name, action) in &provider.actions {
            InputSchema::compile(&action.input)
                .map_err(|e| format!("provider \"{slug}\": actions.{name}.input: {e}"))?;
        }
    }
    Ok(())
}

/// The action's output: each declared field from the answer's JSON body (`""` the whole body,
/// `$status` the HTTP status); a path the answer lacks gives `null`.
pub fn output(action: &ActionDef, status: u16, body: &Value) -> Value {
    let mut out = Map::new();
    for (field, path) in &action.output {
        let value = match path.as_str() {
            "$status" => Value::from(status),
            "" => body.clone(),
            path => value_at(body, path).cloned().unwrap_or(Value::Null),
        };
        out.insert(field.clone(), value);
    }
    Value::Object(out)
}

/// Whether a 2xx answer is a success: `okWhen`, when the action declares one, must hold.
pub fn succeeded(action: &ActionDef, body: &Value) -> bool {
    action.ok_when.as_ref().is_none_or(|condition| {
        value_at(body, &condition.path)
            .is_some_and(|found| crate::catalog::json_equal(found, &condition.equals))
    })
}

/// The input as a log may show it: the value of every top-level property the schema marks
/// `secret: true` is replaced by [`REDACTED`].
pub fn loggable_input(action: &ActionDef, input: &Map<String, Value>) -> Value {
    let secret = |name: &str| action.input["properties"][name]["secret"] == Value::Bool(true);
    Value::Object(
        input
            .iter()
            .map(|(name, value)| {
                let shown = if secret(name) {
                    Value::String(REDACTED.to_owned())
                } else {
                    value.clone()
                };
                (name.clone(), shown)
            })
            .collect(),
    )
}
