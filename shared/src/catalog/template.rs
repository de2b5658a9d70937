//! Placeholder templates used throughout the catalog (`api.baseUrl`, paths, params, headers, `apply`).
//!
//! Grammar: literal text with placeholders in braces; `{{` and `}}` stand for literal braces.
//! - `{config.name}` — the integration's non-secret `config.name`; `{config.name|fallback}` renders
//!   `fallback` when the integration has no such value (e.g. Google's `calendarId` → `primary`);
//! - `{name}` — a credential field (api_key/basic) or a member of the OAuth token set (`accessToken`);
//! - `{remoteId}` — the remote record id, only in export (`write`) paths;
//! - `{page.name}` — where a listing is (`cursor`, `offset`, `start`, `number`, `size`), only in a
//!   sync entity's `request.params` and `request.body`, for providers that take the page position
//!   inside a parameter or a body rather than as a parameter of its own;
//! - `{input.name}` — a member of an action's input, only in `actions` requests;
//!   `{credentials.name}` is `{name}` written out (the spec's spelling in actions);
//! - `{item}` — the element of a `$each` list being rendered, only inside its `as`.
//!
//! `{config.*}` and `{input.*}` may name alternatives, tried in order when a value is absent or
//! null, and end with literal text: `{input.from|config.fromNumber}`,
//! `{input.model|config.model|gpt-4o-mini}`, `{config.calendarId|primary}`.

use serde_json::{Map, Value};

/// Where a placeholder takes its value from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Source {
    Config,
    Credential,
    RemoteId,
    Page,
    Input,
    Item,
}

/// The `{page.*}` names: the cursor (cursor pagination), the number of records already read
/// (`offset`, from 0) and the 1-based position of the first record (`start`) for offset
/// pagination, the page number from 1 (`number`) for page pagination, and `pageSize` (`size`).
pub(crate) const PAGE_NAMES: [&str; 5] = ["cursor", "offset", "start", "number", "size"];

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Placeholder {
    pub(crate) source: Source,
    pub(crate) name: String,
    /// `{config.*}` / `{input.*}` alternatives tried in order when the value is absent.
    pub(crate) alternates: Vec<(Source, String)>,
    /// The literal text used when neither the value nor an alternative has one.
    pub(crate) fallback: Option<String>,
}

impl Placeholder {
    /// The placeholder as written in the catalog, for error messages.
    pub(crate) fn display(&self) -> String {
        match self.source {
            Source::Config => format!("{{config.{}}}", self.name),
            Source::Page => format!("{{page.{}}}", self.name),
            Source::Input => format!("{{input.{}}}", self.name),
            Source::Credential | Source::RemoteId | Source::Item => format!("{{{}}}", self.name),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Segment {
    Literal(String),
    Placeholder(Placeholder),
}

/// A parsed template.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Template {
    pub(crate) segments: Vec<Segment>,
}

/// The name used for the remote record id in export paths.
pub(crate) const REMOTE_ID: &str = "remoteId";

fn is_identifier(name: &str) -> bool {
    let mut chars = name.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

impl Template {
    /// Parses `text`; the error says what is wrong with the template.
    pub(crate) fn parse(text: &str) -> Result<Template, String> {
        let mut segments = Vec::new();
        let mut literal = String::new();
        let mut chars = text.char_indices().peekable();
        while let Some((start, c)) = chars.next() {
            match c {
                '{' if chars.peek().map(|(_, n)| *n) == Some('{') => {
                    chars.next();
                    literal.push('{');
                }
                '}' if chars.peek().map(|(_, n)| *n) == Some('}') => {
                    chars.next();
                    literal.push('}');
                }
                '}' => {
                    return Err(format!(
                        "unmatched `}}` at byte {start} (write `}}}}` for a literal brace)"
                    ))
                }
                '{' => {
                    let mut inner = String::new();
                    let mut closed = false;
                    for (_, n) in chars.by_ref() {
                        if n == '}' {
                            closed = true;
                            break;
                        }
                        inner.push(n);
                    }
                    if !closed {
                        return Err(format!("unclosed placeholder starting at byte {start}"));
                    }
                    if !literal.is_empty() {
                        segments.push(Segment::Literal(std::mem::take(&mut literal)));
                    }
                    segments.push(Segment::Placeholder(parse_placeholder(&inner)?));
                }
                other => literal.push(other),
            }
        }
        if !literal.is_empty() {
            segments.push(Segment::Literal(literal));
        }
        Ok(Template { segments })
    }

    pub(crate) fn placeholders(&self) -> impl Iterator<Item = &Placeholder> {
        self.segments.iter().filter_map(|segment| match segment {
            Segment::Placeholder(p) => Some(p),
            Segment::Literal(_) => None,
        })
    }

    /// True when the template begins with a placeholder (a whole base URL such as `{config.baseUrl}`).
    pub(crate) fn starts_with_placeholder(&self) -> bool {
        matches!(self.segments.first(), Some(Segment::Placeholder(_)))
    }

    /// Renders the template. `encode(index, value)` decides how the value of the placeholder at
    /// segment `index` is escaped (percent-encoding in URLs, nothing in headers); `preceding` is the
    /// text rendered so far, so URL rendering can tell a path from a query.
    pub(crate) fn render(
        &self,
        values: &Values<'_>,
        encode: impl Fn(usize, &str, &str) -> String,
    ) -> Result<String, MissingValue> {
        let mut out = String::new();
        for (index, segment) in self.segments.iter().enumerate() {
            match segment {
                Segment::Literal(text) => out.push_str(text),
                Segment::Placeholder(p) => {
                    let value = values.lookup(p)?;
                    let encoded = encode(index, &out, &value);
                    out.push_str(&encoded);
                }
            }
        }
        Ok(out)
    }
}

/// The name of the `$each` element placeholder.
pub(crate) const ITEM: &str = "item";

fn parse_placeholder(inner: &str) -> Result<Placeholder, String> {
    let invalid = || {
        format!(
            "`{{{inner}}}` is not a valid placeholder (expected {{fieldName}} or {{config.name}})"
        )
    };
    let (head, rest) = match inner.split_once('|') {
        Some((head, rest)) => (head, Some(rest)),
        None => (inner, None),
    };
    let (source, name) = if let Some(name) = head.strip_prefix("page.") {
        if !PAGE_NAMES.contains(&name) {
            return Err(format!(
                "`{{{inner}}}` is not a page placeholder (expected one of {})",
                PAGE_NAMES.map(|n| format!("{{page.{n}}}")).join(", ")
            ));
        }
        (Source::Page, name)
    } else if let Some(reference) = reference(head) {
        reference
    } else if let Some(name) = head.strip_prefix("credentials.") {
        (Source::Credential, name)
    } else if head == REMOTE_ID {
        (Source::RemoteId, head)
    } else if head == ITEM {
        (Source::Item, head)
    } else {
        (Source::Credential, head)
    };
    if !is_identifier(name) {
        return Err(match source {
            Source::Config => {
                format!("`{{{inner}}}` is not a valid placeholder (expected {{config.name}})")
            }
            Source::Input => {
                format!("`{{{inner}}}` is not a valid placeholder (expected {{input.name}})")
            }
            _ => invalid(),
        });
    }
    let mut alternates = Vec::new();
    let mut fallback = None;
    if let Some(rest) = rest {
        if !matches!(source, Source::Config | Source::Input) {
            return Err(format!(
                "`{{{inner}}}`: only {{config.*}} and {{input.*}} may have alternatives"
            ));
        }
        let mut parts = rest.split('|');
        while let Some(part) = parts.next() {
            match reference(part) {
                Some((source, name)) if is_identifier(name) => {
                    alternates.push((source, name.to_owned()))
                }
                _ => {
                    // The literal ends the chain (and may hold `|` itself).
                    let remainder: Vec<&str> = std::iter::once(part).chain(parts).collect();
                    fallback = Some(remainder.join("|"));
                    break;
                }
            }
        }
    }
    Ok(Placeholder {
        source,
        name: name.to_owned(),
        alternates,
        fallback,
    })
}

/// `config.name` or `input.name`: a source an alternative may name.
fn reference(text: &str) -> Option<(Source, &str)> {
    if let Some(name) = text.strip_prefix("config.") {
        Some((Source::Config, name))
    } else {
        text.strip_prefix("input.")
            .map(|name| (Source::Input, name))
    }
}

/// A placeholder had no value to render.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct MissingValue {
    pub(crate) placeholder: String,
    pub(crate) reason: &'static str,
}

/// The values placeholders are rendered from.
#[derive(Debug, Clone, Copy)]
pub struct Values<'a> {
    pub(crate) config: &'a Map<String, Value>,
    pub(crate) credentials: &'a Map<String, Value>,
    pub(crate) remote_id: Option<&'a str>,
    /// The `{page.*}` values of the page being requested (a `null` value: none on this page).
    pub(crate) page: Option<&'a Map<String, Value>>,
    /// An action's input (`{input.*}`).
    pub(crate) input: Option<&'a Map<String, Value>>,
    /// The `$each` element being rendered (`{item}`).
    pub(crate) item: Option<&'a Value>,
}

impl<'a> Values<'a> {
    /// Values from an integration's `config` and its decrypted credentials (the credential fields,
    /// or for OAuth the token set with `accessToken`).
    pub fn new(config: &'a Map<String, Value>, credentials: &'a Map<String, Value>) -> Self {
        Values {
            config,
            credentials,
            remote_id: None,
            page: None,
            input: None,
            item: None,
        }
    }

    /// Adds an action's input, rendered as `{input.*}`.
    pub fn with_input(self, input: &'a Map<String, Value>) -> Self {
        Values {
            input: Some(input),
            ..self
        }
    }

    /// The same values with `{item}` = `item` (one element of a `$each` list).
    pub(crate) fn with_item(self, item: &'a Value) -> Self {
        Values {
            item: Some(item),
            ..self
        }
    }

    /// Adds the remote record id rendered into export paths as `{remoteId}`.
    pub fn with_remote_id(self, remote_id: &'a str) -> Self {
        Values {
            remote_id: Some(remote_id),
            ..self
        }
    }

    /// Adds the position of the page being requested, rendered as `{page.*}`.
    pub fn with_page(self, page: &'a Map<String, Value>) -> Self {
        Values {
            page: Some(page),
            ..self
        }
    }

    /// The JSON value of a `{page.*}` placeholder (`null` when the page has none, as the first
    /// page has no cursor).
    pub(crate) fn page_value(&self, name: &str) -> Value {
        self.page
            .and_then(|page| page.get(name))
            .cloned()
            .unwrap_or(Value::Null)
    }

    /// The value of one source, `None` when absent or null.
    fn value_of(&self, source: &Source, name: &str) -> Option<Value> {
        let value = match source {
            Source::RemoteId => return self.remote_id.map(|id| Value::String(id.to_owned())),
            Source::Item => self.item,
            Source::Config => self.config.get(name),
            Source::Credential => self.credentials.get(name),
            Source::Page => self.page.and_then(|page| page.get(name)),
            Source::Input => self.input.and_then(|input| input.get(name)),
        };
        value.filter(|v| !v.is_null()).cloned()
    }

    /// The placeholder's value with its JSON type: its own, else the first alternative's, else
    /// the literal fallback as a string; `None` when there is none of them.
    pub(crate) fn typed(&self, p: &Placeholder) -> Option<Value> {
        self.value_of(&p.source, &p.name)
            .or_else(|| {
                p.alternates
                    .iter()
                    .find_map(|(source, name)| self.value_of(source, name))
            })
            .or_else(|| p.fallback.clone().map(Value::String))
    }

    fn lookup(&self, p: &Placeholder) -> Result<String, MissingValue> {
        let missing = |reason| MissingValue {
            placeholder: p.display(),
            reason,
        };
        match self.typed(p) {
            Some(Value::String(s)) => Ok(s),
            Some(Value::Number(n)) => Ok(n.to_string()),
            Some(Value::Bool(b)) => Ok(b.to_string()),
            None | Some(Value::Null) => Err(missing("no value")),
            Some(Value::Array(_) | Value::Object(_)) => {
                Err(missing("value is not a string, number or boolean"))
            }
        }
    }
}

/// Percent-encodes `value` for a URL path segment or a query component: everything except
/// unreserved characters is escaped, so a value can never add a path segment or a parameter.
pub(crate) fn percent_encode(value: &str) -> String {
    // form_urlencoded escapes all but `*-._` and alphanumerics, and writes a space as `+`;
    // `+` itself is escaped, so every remaining `+` is a space and becomes `%20`.
    url::form_urlencoded::byte_serialize(value.as_bytes())
        .collect::<String>()
        .replace('+', "%20")
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn map(value: Value) -> Map<String, Value> {
        match value {
            Value::Object(m) => m,
            _ => Map::new(),
        }
    }

    #[test]
    fn escaped_braces_render_as_literal_braces() {
        let t = Template::parse(r#"{{"api_key":"{apiKey}"}}"#).expect("valid");
        let creds = map(json!({"apiKey": "k1"}));
        let config = Map::new();
        let out = t
            .render(&Values::new(&config, &creds), |_, _, v| v.to_owned())
            .expect("renders");
        assert_eq!(out, r#"{"api_key":"k1"}"#);
    }

    #[test]
    fn config_placeholder_uses_its_fallback_when_the_value_is_absent() {
        let t = Template::parse("/calendars/{config.calendarId|primary}/events").expect("valid");
        let empty = Map::new();
        let out = t
            .render(&Values::new(&empty, &empty), |_, _, v| v.to_owned())
            .expect("renders");
        assert_eq!(out, "/calendars/primary/events");
    }

    #[test]
    fn malformed_templates_are_rejected_with_a_reason() {
        assert!(Template::parse("/a/{config.}").is_err());
        assert!(Template::parse("/a/{unclosed").is_err());
        assert!(Template::parse("/a/}").is_err());
        assert!(Template::parse("/a/{with space}").is_err());
    }

    #[test]
    fn percent_encoding_escapes_separators_and_spaces() {
        assert_eq!(percent_encode("a/b?c#d e+f@g"), "a%2Fb%3Fc%23d%20e%2Bf%40g");
    }
}
