//! JSON templates: sync request bodies and GraphQL variables, and actions' `json`, `form` and
//! `query` values. Every string is a template; a string that is exactly one placeholder takes the
//! value with its JSON type (`"{input.attendees}"` → the caller's array, `"{page.size}"` → `100`).
//!
//! Optional input: an `{input.*}` placeholder (with its alternatives) that has no value leaves its
//! member out: the key of an object, the element of an array, the parameter of a form or query.
//! An object or array that refers to the input only through absent values is left out as a whole
//! (SendGrid's `{type: "text/html", value: "{input.html}"}` without `html`). Any other placeholder
//! without a value is an error. `{"$each": "{input.list}", "as": T}` renders `T` once per element
//! of the list, with `{item}` the element.

use serde_json::{Map, Value};

use super::template::{Placeholder, Segment, Source, Template, Values};
use super::CatalogError;

/// One rendered value, `None` when left out; whether it referred to the input, and whether any
/// such reference had a value.
struct Rendered {
    value: Option<Value>,
    uses_input: bool,
    has_input: bool,
}

impl Rendered {
    fn literal(value: Value) -> Self {
        Rendered {
            value: Some(value),
            uses_input: false,
            has_input: false,
        }
    }
}

fn parse(text: &str) -> Result<Template, CatalogError> {
    Template::parse(text).map_err(|reason| CatalogError::InvalidRequest(format!("body: {reason}")))
}

fn uses_input(p: &Placeholder) -> bool {
    p.source == Source::Input || p.alternates.iter().any(|(s, _)| *s == Source::Input)
}

fn missing(p: &Placeholder) -> CatalogError {
    CatalogError::MissingValue {
        placeholder: p.display(),
        reason: "no value".to_owned(),
    }
}

/// Renders `template`; `None` when it is left out (optional input without a value).
pub(crate) fn render(template: &Value, values: &Values<'_>) -> Result<Option<Value>, CatalogError> {
    Ok(render_value(template, values)?.value)
}

/// Renders a JSON object template as name/value pairs for a form or a query string: strings as
/// they are, numbers and booleans as their text, lists and objects as JSON text (Kavenegar takes
/// JSON arrays in form fields); members left out and nulls are not sent.
pub(crate) fn render_pairs(
    template: &Map<String, Value>,
    values: &Values<'_>,
) -> Result<Vec<(String, String)>, CatalogError> {
    let mut pairs = Vec::with_capacity(template.len());
    for (name, member) in template {
        let text = match render_value(member, values)?.value {
            None | Some(Value::Null) => continue,
            Some(Value::String(text)) => text,
            Some(Value::Number(n)) => n.to_string(),
            Some(Value::Bool(b)) => b.to_string(),
            Some(other) => other.to_string(),
        };
        pairs.push((name.clone(), text));
    }
    Ok(pairs)
}

fn render_value(template: &Value, values: &Values<'_>) -> Result<Rendered, CatalogError> {
    match template {
        Value::String(text) => render_string(text, values),
        Value::Array(items) => {
            let mut out = Vec::with_capacity(items.len());
            let (mut uses, mut has) = (false, false);
            for item in items {
                let rendered = render_value(item, values)?;
                uses |= rendered.uses_input;
                has |= rendered.has_input;
                out.extend(rendered.value);
            }
            Ok(container(Value::Array(out), uses, has))
        }
        Value::Object(members) if members.contains_key("$each") => render_each(members, values),
        Value::Object(members) => {
            let mut out = Map::new();
            let (mut uses, mut has) = (false, false);
            for (key, member) in members {
                let rendered = render_value(member, values)?;
                uses |= rendered.uses_input;
                has |= rendered.has_input;
                if let Some(value) = rendered.value {
                    out.insert(key.clone(), value);
                }
            }
            Ok(container(Value::Object(out), uses, has))
        }
        other => Ok(Rendered::literal(other.clone())),
    }
}

/// A list or object is left out when it refers to the input only through absent values.
fn container(value: Value, uses_input: bool, has_input: bool) -> Rendered {
    Rendered {
        value: (!uses_input || has_input).then_some(value),
        uses_input,
        has_input,
    }
}

fn render_string(text: &str, values: &Values<'_>) -> Result<Rendered, CatalogError> {
    let template = parse(text)?;
    if let [Segment::Placeholder(p)] = template.segments.as_slice() {
        if p.source == Source::Page {
            return Ok(Rendered::literal(values.page_value(&p.name)));
        }
        let uses = uses_input(p);
        return match values.typed(p) {
            Some(value) => Ok(Rendered {
                value: Some(value),
                uses_input: uses,
                has_input: uses,
            }),
            None if uses => Ok(Rendered {
                value: None,
                uses_input: true,
                has_input: false,
            }),
            None => Err(missing(p)),
        };
    }
    let mut uses = false;
    for p in template.placeholders() {
        if uses_input(p) {
            uses = true;
            if values.typed(p).is_none() {
                // Text about an absent input value is left out with it.
                return Ok(Rendered {
                    value: None,
                    uses_input: true,
                    has_input: false,
                });
            }
        }
    }
    let text = template
        .render(values, |_, _, v| v.to_owned())
        .map_err(|m| CatalogError::MissingValue {
            placeholder: m.placeholder,
            reason: m.reason.to_owned(),
        })?;
    Ok(Rendered {
        value: Some(Value::String(text)),
        uses_input: uses,
        has_input: uses,
    })
}

fn render_each(
    members: &Map<String, Value>,
    values: &Values<'_>,
) -> Result<Rendered, CatalogError> {
    let source = members.get("$each").and_then(Value::as_str).unwrap_or("");
    let template = parse(source)?;
    let [Segment::Placeholder(p)] = template.segments.as_slice() else {
        return Err(CatalogError::InvalidRequest(
            "`$each` must be one placeholder".to_owned(),
        ));
    };
    let each = members.get("as").unwrap_or(&Value::Null);
    match values.typed(p) {
        None => Ok(Rendered {
            value: None,
            uses_input: true,
            has_input: false,
        }),
        Some(Value::Array(items)) => {
            let mut out = Vec::with_capacity(items.len());
            for item in &items {
                out.extend(render_value(each, &values.with_item(item))?.value);
            }
            Ok(Rendered {
                value: Some(Value::Array(out)),
                uses_input: true,
                has_input: true,
            })
        }
        Some(_) => Err(CatalogError::InvalidRequest(format!(
            "{} is not a list",
            p.display()
        ))),
    }
}
