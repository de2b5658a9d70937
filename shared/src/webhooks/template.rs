//! `payloadTemplate`: JSON text with `{{path}}` placeholders over the event envelope (`{{type}}`,
//! `{{data.name}}`, `{{data.attendees.0.email}}`), parsed once when the webhook is written and
//! rendered for each delivery.
//!
//! - A JSON string that is exactly one placeholder (`"{{data.count}}"`) takes the value with its JSON
//!   type; a missing path, or one whose value is `null`, gives `null`.
//! - Inside a longer string (`"Hi {{data.name}}!"`) a string value is inserted as-is, any other value
//!   as compact JSON, `null` as `null`, and a missing path as nothing.
//! - A path is dot-separated; a numeric segment indexes an array (and names a key in an object).
//!   Spaces just inside the braces are ignored (`{{ type }}`).
//! - Placeholders are not allowed in object keys, and a key may not repeat: every rendered object has
//!   the keys the template wrote, so the output is always valid JSON with no duplicate keys.
//! - There is no escape: `{{` always opens a placeholder.
//! - The output is compact JSON; strings and numbers keep their values, Unicode passes through
//!   byte-exact (never `\u` escaped), and key order is the template's.

use std::cell::RefCell;
use std::collections::HashSet;
use std::fmt;

use serde::de::{DeserializeSeed, MapAccess, SeqAccess, Visitor};
use serde_json::Value;

use crate::error::FieldError;

/// The longest template accepted, in bytes of JSON text.
pub const MAX_TEMPLATE_BYTES: usize = 64 * 1024;
/// The largest body a template may render, in bytes: a guard against a small template repeating a
/// large envelope value many times.
pub const MAX_RENDERED_BYTES: usize = 4 * 1024 * 1024;
/// The API field a template error names.
pub const FIELD: &str = "payloadTemplate";

/// A parsed template; once it exists, it renders.
#[derive(Debug, Clone, PartialEq)]
pub struct PayloadTemplate {
    root: Node,
}

#[derive(Debug, Clone, PartialEq)]
enum Node {
    /// `null`, `true`, `false` or a number: its JSON text.
    Scalar(String),
    Text(Text),
    Array(Vec<Node>),
    Object(Vec<(String, Node)>),
}

#[derive(Debug, Clone, PartialEq)]
enum Text {
    Literal(String),
    /// The whole string is one placeholder: the value keeps its JSON type.
    Whole(Path),
    Mixed(Vec<Piece>),
}

#[derive(Debug, Clone, PartialEq)]
enum Piece {
    Literal(String),
    Placeholder(Path),
}

#[derive(Debug, Clone, PartialEq)]
struct Path(Vec<String>);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TemplateError {
    #[error("must be at most 64 KiB of JSON text (it is {bytes} bytes)")]
    TooLong { bytes: usize },
    #[error("must be JSON text: {detail}")]
    NotJson { detail: String },
    #[error("{problem} at line {line} column {column}")]
    Invalid {
        problem: TemplateProblem,
        line: usize,
        column: usize,
    },
}

/// What is wrong with a template that is JSON.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TemplateProblem {
    #[error("unclosed placeholder `{0}`")]
    UnclosedPlaceholder(String),
    #[error("empty placeholder `{{{{}}}}`")]
    EmptyPath,
    #[error("placeholder `{{{{{0}}}}}` has an empty path segment")]
    EmptySegment(String),
    #[error("placeholder `{{{{{0}}}}}` contains `{{` or `}}`")]
    BraceInPath(String),
    #[error("object key `{0}` holds a placeholder; placeholders are allowed in values only")]
    PlaceholderInKey(String),
    #[error("duplicate key `{0}`")]
    DuplicateKey(String),
}

impl TemplateError {
    /// The 400 field error naming `payloadTemplate`.
    pub fn field_error(&self) -> FieldError {
        FieldError::new(FIELD, self.to_string())
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum RenderError {
    #[error("the payload template renders more than 4 MiB")]
    TooLarge,
}

impl PayloadTemplate {
    pub fn parse(text: &str) -> Result<PayloadTemplate, TemplateError> {
        if text.len() > MAX_TEMPLATE_BYTES {
            return Err(TemplateError::TooLong { bytes: text.len() });
        }
        let problem = RefCell::new(None);
        let mut deserializer = serde_json::Deserializer::from_str(text);
        let parsed = NodeSeed { problem: &problem }
            .deserialize(&mut deserializer)
            .and_then(|root| deserializer.end().map(|()| root));
        match parsed {
            Ok(root) => Ok(PayloadTemplate { root }),
            Err(error) => Err(match problem.into_inner() {
                Some(problem) => TemplateError::Invalid {
                    problem,
                    line: error.line(),
                    column: error.column(),
                },
                None => TemplateError::NotJson {
                    detail: error.to_string(),
                },
            }),
        }
    }

    /// The body for `envelope` (the event as delivered without a template).
    pub fn render(&self, envelope: &Value) -> Result<String, RenderError> {
        let mut out = Output {
            buf: Vec::with_capacity(256),
        };
        out.node(&self.root, envelope)?;
        Ok(String::from_utf8(out.buf).expect("serde_json writes UTF-8"))
    }
}

struct Output {
    buf: Vec<u8>,
}

impl Output {
    fn node(&mut self, node: &Node, envelope: &Value) -> Result<(), RenderError> {
        match node {
            Node::Scalar(text) => self.raw(text),
            Node::Text(Text::Literal(text)) => self.json(text),
            Node::Text(Text::Whole(path)) => match lookup(envelope, path) {
                Some(value) => self.json(value),
                None => self.raw("null"),
            },
            Node::Text(Text::Mixed(pieces)) => {
                let text = mixed_text(pieces, envelope)?;
                self.json(&text)
            }
            Node::Array(items) => {
                self.raw("[")?;
                for (i, item) in items.iter().enumerate() {
                    if i > 0 {
                        self.raw(",")?;
                    }
                    self.node(item, envelope)?;
                }
                self.raw("]")
            }
            Node::Object(entries) => {
                self.raw("{")?;
                for (i, (key, value)) in entries.iter().enumerate() {
                    if i > 0 {
                        self.raw(",")?;
                    }
                    self.json(key)?;
                    self.raw(":")?;
                    self.node(value, envelope)?;
                }
                self.raw("}")
            }
        }
    }

    fn raw(&mut self, text: &str) -> Result<(), RenderError> {
        self.buf.extend_from_slice(text.as_bytes());
        self.within_limit()
    }

    fn json<T: serde::Serialize + ?Sized>(&mut self, value: &T) -> Result<(), RenderError> {
        serde_json::to_writer(&mut self.buf, value).expect("writing JSON into a Vec cannot fail");
        self.within_limit()
    }

    fn within_limit(&self) -> Result<(), RenderError> {
        if self.buf.len() > MAX_RENDERED_BYTES {
            return Err(RenderError::TooLarge);
        }
        Ok(())
    }
}

fn mixed_text(pieces: &[Piece], envelope: &Value) -> Result<String, RenderError> {
    let mut text = String::new();
    for piece in pieces {
        match piece {
            Piece::Literal(literal) => text.push_str(literal),
            Piece::Placeholder(path) => match lookup(envelope, path) {
                Some(Value::String(value)) => text.push_str(value),
                Some(value) => text.push_str(&value.to_string()),
                None => {}
            },
        }
        if text.len() > MAX_RENDERED_BYTES {
            return Err(RenderError::TooLarge);
        }
    }
    Ok(text)
}

fn lookup<'v>(envelope: &'v Value, path: &Path) -> Option<&'v Value> {
    path.0
        .iter()
        .try_fold(envelope, |value, segment| match value {
            Value::Object(map) => map.get(segment),
            Value::Array(items) => segment.parse::<usize>().ok().and_then(|i| items.get(i)),
            _ => None,
        })
}

fn compile_text(text: &str) -> Result<Text, TemplateProblem> {
    let mut pieces = Vec::new();
    let mut literal = String::new();
    let mut rest = text;
    while let Some(start) = rest.find("{{") {
        literal.push_str(&rest[..start]);
        let inside = &rest[start + 2..];
        let end = inside
            .find("}}")
            .ok_or_else(|| TemplateProblem::UnclosedPlaceholder(snippet(&rest[start..])))?;
        let path = parse_path(&inside[..end])?;
        if !literal.is_empty() {
            pieces.push(Piece::Literal(std::mem::take(&mut literal)));
        }
        pieces.push(Piece::Placeholder(path));
        rest = &inside[end + 2..];
    }
    literal.push_str(rest);
    Ok(match pieces.as_slice() {
        [] => Text::Literal(literal),
        [Piece::Placeholder(path)] if literal.is_empty() => Text::Whole(path.clone()),
        _ => {
            if !literal.is_empty() {
                pieces.push(Piece::Literal(literal));
            }
            Text::Mixed(pieces)
        }
    })
}

fn parse_path(raw: &str) -> Result<Path, TemplateProblem> {
    let path = raw.trim();
    if path.is_empty() {
        return Err(TemplateProblem::EmptyPath);
    }
    if path.contains(['{', '}']) {
        return Err(TemplateProblem::BraceInPath(snippet(path)));
    }
    if path.split('.').any(str::is_empty) {
        return Err(TemplateProblem::EmptySegment(snippet(path)));
    }
    Ok(Path(path.split('.').map(str::to_owned).collect()))
}

/// At most 40 characters of the template, for a message.
fn snippet(text: &str) -> String {
    match text.char_indices().nth(40) {
        Some((cut, _)) => format!("{}…", &text[..cut]),
        None => text.to_owned(),
    }
}

/// Builds the template tree straight from the JSON parser, so placeholders are compiled, and keys
/// checked, once; the first problem is kept for a structured error.
struct NodeSeed<'p> {
    problem: &'p RefCell<Option<TemplateProblem>>,
}

impl NodeSeed<'_> {
    fn fail<E: serde::de::Error>(&self, problem: TemplateProblem) -> E {
        let error = E::custom(&problem);
        *self.problem.borrow_mut() = Some(problem);
        error
    }
}

impl<'de> DeserializeSeed<'de> for NodeSeed<'_> {
    type Value = Node;

    fn deserialize<D: serde::Deserializer<'de>>(self, deserializer: D) -> Result<Node, D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for NodeSeed<'_> {
    type Value = Node;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_unit<E>(self) -> Result<Node, E> {
        Ok(Node::Scalar("null".to_owned()))
    }

    fn visit_bool<E>(self, value: bool) -> Result<Node, E> {
        Ok(Node::Scalar(value.to_string()))
    }

    fn visit_i64<E>(self, value: i64) -> Result<Node, E> {
        Ok(Node::Scalar(value.to_string()))
    }

    fn visit_u64<E>(self, value: u64) -> Result<Node, E> {
        Ok(Node::Scalar(value.to_string()))
    }

    fn visit_f64<E>(self, value: f64) -> Result<Node, E> {
        // The parser only yields finite numbers; `Value` writes them as serde_json does.
        Ok(Node::Scalar(Value::from(value).to_string()))
    }

    fn visit_str<E: serde::de::Error>(self, value: &str) -> Result<Node, E> {
        compile_text(value)
            .map(Node::Text)
            .map_err(|problem| self.fail(problem))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Node, A::Error> {
        let mut items = Vec::new();
        while let Some(item) = seq.next_element_seed(NodeSeed {
            problem: self.problem,
        })? {
            items.push(item);
        }
        Ok(Node::Array(items))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Node, A::Error> {
        let mut entries = Vec::new();
        let mut seen = HashSet::new();
        while let Some(key) = map.next_key::<String>()? {
            if key.contains("{{") {
                return Err(self.fail(TemplateProblem::PlaceholderInKey(snippet(&key))));
            }
            if !seen.insert(key.clone()) {
                return Err(self.fail(TemplateProblem::DuplicateKey(snippet(&key))));
            }
            let value = map.next_value_seed(NodeSeed {
                problem: self.problem,
            })?;
            entries.push((key, value));
        }
        Ok(Node::Object(entries))
    }
}

#[cfg(test)]
mod tests {
    use rand::rngs::StdRng;
    use rand::{Rng, SeedableRng};
    use serde_json::json;

    use super::*;

    fn envelope() -> Value {
        json!({
            "id": "evt_1",
            "type": "meeting.created",
            "timestamp": "2026-01-02T03:04:05Z",
            "tenantId": "t1",
            "data": {
                "name": "Board \"Q1\" review\n\\ end",
                "count": 3,
                "ratio": 0.5,
                "ok": true,
                "nothing": null,
                "tags": ["a", "b"],
                "owner": {"email": "o@example.com", "age": 40},
                "attendees": [{"email": "first@example.com"}, {"email": "second@example.com"}],
                "hebrew": "שלום עולם",
                "arabic": "مرحبا بالعالم",
                "emoji": "🎉👩‍💻🇮🇱"
            }
        })
    }

    fn render(template: &str) -> Value {
        let body = PayloadTemplate::parse(template)
            .unwrap()
            .render(&envelope())
            .unwrap();
        serde_json::from_str(&body).unwrap_or_else(|e| panic!("{body} is not JSON: {e}"))
    }

    fn problem(template: &str) -> TemplateProblem {
        match PayloadTemplate::parse(template) {
            Err(TemplateError::Invalid { problem, .. }) => problem,
            other => panic!("{template}: expected a template problem, got {other:?}"),
        }
    }

    #[test]
    fn a_whole_string_placeholder_takes_the_value_with_its_json_type() {
        assert_eq!(
            render(
                r#"{"t": "{{type}}", "n": "{{data.count}}", "r": "{{data.ratio}}", "b": "{{data.ok}}",
                    "o": "{{data.owner}}", "a": "{{data.tags}}", "z": "{{data.nothing}}"}"#
            ),
            json!({"t": "meeting.created", "n": 3, "r": 0.5, "b": true,
                   "o": {"email": "o@example.com", "age": 40}, "a": ["a", "b"], "z": null})
        );
    }

    #[test]
    fn numeric_segments_index_arrays() {
        assert_eq!(
            render(
                r#"["{{data.attendees.0.email}}", "{{data.attendees.1.email}}", "{{data.tags.1}}"]"#
            ),
            json!(["first@example.com", "second@example.com", "b"])
        );
    }

    #[test]
    fn a_missing_path_renders_null_as_a_whole_value_and_nothing_inside_a_string() {
        assert_eq!(
            render(
                r#"{"a": "{{data.missing}}", "b": "{{data.attendees.9.email}}", "c": "{{type.deeper}}",
                    "d": "x{{data.missing}}y"}"#
            ),
            json!({"a": null, "b": null, "c": null, "d": "xy"})
        );
    }

    #[test]
    fn inside_a_longer_string_strings_are_inserted_as_is_and_other_values_as_compact_json() {
        assert_eq!(
            render(
                r#"{"s": "[{{type}}] {{data.owner.email}}", "n": "count={{data.count}}",
                    "o": "owner: {{data.owner}}", "a": "{{data.tags}}!", "z": "z={{data.nothing}}",
                    "two": "{{data.count}}{{data.ok}}"}"#
            ),
            json!({"s": "[meeting.created] o@example.com", "n": "count=3",
                   "o": r#"owner: {"email":"o@example.com","age":40}"#, "a": r#"["a","b"]!"#,
                   "z": "z=null", "two": "3true"})
        );
    }

    #[test]
    fn values_needing_escapes_render_valid_json_that_reads_back_equal() {
        let rendered = render(r#"{"whole": "{{data.name}}", "inside": "«{{data.name}}»"}"#);
        let name = "Board \"Q1\" review\n\\ end";
        assert_eq!(
            rendered,
            json!({"whole": name, "inside": format!("«{name}»")})
        );
        let control = json!({"data": {"x": "\u{0}\u{1f}\t\"\\/\u{2028}"}});
        let body = PayloadTemplate::parse(r#"{"a": "{{data.x}}", "b": "-{{data.x}}-"}"#)
            .unwrap()
            .render(&control)
            .unwrap();
        let back: Value = serde_json::from_str(&body).unwrap();
        assert_eq!(back["a"], control["data"]["x"]);
        assert_eq!(
            back["b"],
            format!("-{}-", control["data"]["x"].as_str().unwrap())
        );
    }

    #[test]
    fn hebrew_arabic_and_emoji_pass_through_byte_exact() {
        let template = r#"{"שם": "שלום {{data.hebrew}}", "ar": "{{data.arabic}}", "e": "{{data.emoji}}!", "lit": "مرحبا 🎉"}"#;
        let body = PayloadTemplate::parse(template)
            .unwrap()
            .render(&envelope())
            .unwrap();

        assert_eq!(
            body,
            r#"{"שם":"שלום שלום עולם","ar":"مرحبا بالعالم","e":"🎉👩‍💻🇮🇱!","lit":"مرحبا 🎉"}"#
        );
    }

    #[test]
    fn literals_keep_their_values_and_key_order_and_render_compact() {
        let body = PayloadTemplate::parse(
            r#" { "z": 1, "a": [true, false, null, -2, 1.5e3, 0.1], "m": {"k": "plain } {"} } "#,
        )
        .unwrap()
        .render(&envelope())
        .unwrap();

        assert_eq!(
            body,
            r#"{"z":1,"a":[true,false,null,-2,1500.0,0.1],"m":{"k":"plain } {"}}"#
        );
    }

    #[test]
    fn spaces_just_inside_the_braces_are_ignored() {
        assert_eq!(
            render(r#"["{{ type }}", "{{  data.count\t}}"]"#),
            json!(["meeting.created", 3])
        );
    }

    #[test]
    fn a_template_may_be_a_single_placeholder() {
        assert_eq!(
            render(r#""{{data.owner}}""#),
            json!({"email": "o@example.com", "age": 40})
        );
        assert_eq!(render(r#""{{data}}""#), envelope()["data"]);
    }

    #[test]
    fn text_that_is_not_json_is_refused_as_such() {
        for text in [
            "",
            "{",
            "{\"a\": }",
            "{{type}}",
            "[1,]",
            "{\"a\": 1} trailing",
            "'x'",
        ] {
            assert!(
                matches!(
                    PayloadTemplate::parse(text),
                    Err(TemplateError::NotJson { .. })
                ),
                "{text:?}"
            );
        }
        let error = PayloadTemplate::parse("{\"a\": }").unwrap_err();
        assert_eq!(
            error.to_string(),
            "must be JSON text: expected value at line 1 column 7"
        );
    }

    #[test]
    fn placeholder_mistakes_are_named_with_their_position() {
        let error = PayloadTemplate::parse("{\n  \"a\": \"Hi {{data.name\"\n}").unwrap_err();
        assert_eq!(
            error.to_string(),
            "unclosed placeholder `{{data.name` at line 2 column 23"
        );
        assert_eq!(problem(r#"{"a": "{{}}"}"#), TemplateProblem::EmptyPath);
        assert_eq!(problem(r#"{"a": "{{   }}"}"#), TemplateProblem::EmptyPath);
        assert_eq!(
            problem(r#"{"a": "{{data..name}}"}"#),
            TemplateProblem::EmptySegment("data..name".into())
        );
        assert_eq!(
            problem(r#"["{{.type}}"]"#),
            TemplateProblem::EmptySegment(".type".into())
        );
        assert_eq!(
            problem(r#"["{{{type}}}"]"#),
            TemplateProblem::BraceInPath("{type".into())
        );
        assert_eq!(
            problem(r#"["{{ {{type}} }}"]"#),
            TemplateProblem::BraceInPath("{{type".into())
        );
        assert_eq!(
            problem(r#"["{{type}"]"#),
            TemplateProblem::UnclosedPlaceholder("{{type}".into())
        );
    }

    #[test]
    fn placeholders_in_object_keys_and_duplicate_keys_are_refused() {
        assert_eq!(
            problem(r#"{"{{type}}": 1}"#),
            TemplateProblem::PlaceholderInKey("{{type}}".into())
        );
        assert_eq!(
            problem(r#"{"a": {"b": 1, "b": 2}}"#),
            TemplateProblem::DuplicateKey("b".into())
        );
        assert_eq!(
            PayloadTemplate::parse(r#"{"a": 1, "a": 1}"#)
                .unwrap_err()
                .to_string(),
            "duplicate key `a` at line 1 column 12"
        );
    }

    /// The examples docs/decisions.md gives.
    #[test]
    fn documented_error_messages() {
        for (template, message) in [
            (r#"{"a": }"#, "must be JSON text: expected value at line 1 column 7"),
            (
                "{\n  \"a\": \"Hi {{data.name\"\n}",
                "unclosed placeholder `{{data.name` at line 2 column 23",
            ),
            (r#"{"a": "{{}}"}"#, "empty placeholder `{{}}` at line 1 column 12"),
            (
                r#"{"a": "{{data..name}}"}"#,
                "placeholder `{{data..name}}` has an empty path segment at line 1 column 22",
            ),
            (
                r#"{"{{type}}": 1}"#,
                "object key `{{type}}` holds a placeholder; placeholders are allowed in values only at line 1 column 11",
            ),
            (r#"{"a": 1, "a": 1}"#, "duplicate key `a` at line 1 column 12"),
        ] {
            assert_eq!(
                PayloadTemplate::parse(template).unwrap_err().to_string(),
                message
            );
        }
    }

    #[test]
    fn errors_become_a_field_error_naming_payload_template() {
        let error = PayloadTemplate::parse(r#"{"a": "{{"}"#).unwrap_err();
        assert_eq!(
            error.field_error(),
            FieldError::new(
                "payloadTemplate",
                "unclosed placeholder `{{` at line 1 column 10"
            )
        );
    }

    #[test]
    fn a_long_placeholder_is_shortened_in_the_message() {
        let long = format!(r#"["{{{{{}"]"#, "x".repeat(100));
        let TemplateProblem::UnclosedPlaceholder(shown) = problem(&long) else {
            panic!("expected an unclosed placeholder");
        };
        assert_eq!(shown.chars().count(), 41);
        assert!(shown.ends_with('…'));
    }

    #[test]
    fn templates_over_64_kib_are_refused() {
        let text = format!(r#""{}""#, "x".repeat(MAX_TEMPLATE_BYTES));
        assert_eq!(
            PayloadTemplate::parse(&text),
            Err(TemplateError::TooLong { bytes: text.len() })
        );
    }

    #[test]
    fn a_render_that_would_exceed_4_mib_stops_with_an_error() {
        let envelope = json!({"data": {"big": "x".repeat(64 * 1024)}});
        let whole: Vec<&str> = vec!["{{data.big}}"; 100];
        let inside = format!("\"{}\"", "{{data.big}}".repeat(100));
        for template in [serde_json::to_string(&whole).unwrap(), inside] {
            assert_eq!(
                PayloadTemplate::parse(&template).unwrap().render(&envelope),
                Err(RenderError::TooLarge)
            );
        }
    }

    #[test]
    fn deep_nesting_is_refused_not_a_stack_overflow() {
        let deep = format!("{}{}", "[".repeat(10_000), "]".repeat(10_000));
        assert!(matches!(
            PayloadTemplate::parse(&deep),
            Err(TemplateError::NotJson { .. })
        ));
    }

    /// Random text over an alphabet rich in JSON and placeholder syntax: parsing never panics, and
    /// whatever parses renders valid JSON.
    #[test]
    fn arbitrary_text_never_panics_and_what_parses_renders_valid_json() {
        let alphabet: Vec<char> = r#"{}{}[]"":,. \0123abtype\data\n\u05d0שם🎉"#.chars().collect();
        let mut rng = StdRng::seed_from_u64(42);
        let envelope = envelope();
        let mut parsed = 0;
        for _ in 0..20_000 {
            let length = rng.gen_range(0..40);
            let text: String = (0..length)
                .map(|_| alphabet[rng.gen_range(0..alphabet.len())])
                .collect();
            if let Ok(template) = PayloadTemplate::parse(&text) {
                parsed += 1;
                let body = template.render(&envelope).unwrap();
                assert!(
                    serde_json::from_str::<Value>(&body).is_ok(),
                    "{text:?} → {body:?}"
                );
            }
        }
        assert!(parsed > 100, "only {parsed} random texts parsed");
    }

    /// Random valid templates (random structure, literals and placeholders over random paths)
    /// always parse and render JSON in which every literal reads back unchanged.
    #[test]
    fn generated_templates_render_valid_json_with_their_literals_intact() {
        let mut rng = StdRng::seed_from_u64(7);
        let envelope = envelope();
        for _ in 0..2_000 {
            let (template, expected_literals) = generated_template(&mut rng, 0);
            let text = serde_json::to_string(&template).unwrap();
            let body = PayloadTemplate::parse(&text)
                .unwrap_or_else(|e| panic!("{text}: {e}"))
                .render(&envelope)
                .unwrap();
            let rendered: Value = serde_json::from_str(&body).unwrap();
            for (pointer, literal) in expected_literals {
                assert_eq!(
                    rendered.pointer(&pointer),
                    Some(&literal),
                    "{text} → {body}"
                );
            }
        }
    }

    const PATHS: &[&str] = &[
        "type",
        "id",
        "data",
        "data.name",
        "data.count",
        "data.nothing",
        "data.tags.0",
        "data.attendees.1.email",
        "data.missing",
        "data.hebrew",
        "data.emoji",
        "data.owner",
    ];
    const WORDS: &[&str] = &[
        "", "a", " ", "\"q\"", "\\", "\n", "}", "{", "שלום", "🎉", "{ {", "} }",
    ];

    /// A template value and the JSON pointers of its literal (placeholder-free) leaves.
    fn generated_template(rng: &mut StdRng, depth: usize) -> (Value, Vec<(String, Value)>) {
        let choice = if depth >= 3 {
            rng.gen_range(0..4)
        } else {
            rng.gen_range(0..6)
        };
        match choice {
            0 => {
                let literal = json!(rng.gen_range(-1000..1000));
                (literal.clone(), vec![(String::new(), literal)])
            }
            1 => {
                let literal = Value::String(
                    (0..rng.gen_range(0..4))
                        .map(|_| WORDS[rng.gen_range(0..WORDS.len())])
                        .collect::<String>()
                        .replace("{{", "{ {"),
                );
                let literal = if literal.as_str().is_some_and(|s| s.contains("{{")) {
                    Value::Null
                } else {
                    literal
                };
                (literal.clone(), vec![(String::new(), literal)])
            }
            2 => (
                Value::String(format!("{{{{{}}}}}", PATHS[rng.gen_range(0..PATHS.len())])),
                vec![],
            ),
            3 => {
                let mut text = String::new();
                for _ in 0..rng.gen_range(1..4) {
                    // A `{` right before a placeholder would make a brace part of its path.
                    text.push_str(&WORDS[rng.gen_range(0..WORDS.len())].replace('{', "("));
                    text.push_str(&format!(
                        "{{{{ {} }}}}",
                        PATHS[rng.gen_range(0..PATHS.len())]
                    ));
                }
                (Value::String(text), vec![])
            }
            4 => {
                let mut items = Vec::new();
                let mut literals = Vec::new();
                for i in 0..rng.gen_range(0..4) {
                    let (item, inner) = generated_template(rng, depth + 1);
                    items.push(item);
                    literals.extend(inner.into_iter().map(|(p, v)| (format!("/{i}{p}"), v)));
                }
                (Value::Array(items), literals)
            }
            _ => {
                let mut map = serde_json::Map::new();
                let mut literals = Vec::new();
                for i in 0..rng.gen_range(0..4) {
                    let key =
                        format!("k{i}{}", WORDS[rng.gen_range(0..WORDS.len())]).replace('{', "(");
                    let (value, inner) = generated_template(rng, depth + 1);
                    let escaped = key.replace('~', "~0").replace('/', "~1");
                    literals.extend(
                        inner
                            .into_iter()
                            .map(|(p, v)| (format!("/{escaped}{p}"), v)),
                    );
                    map.insert(key, value);
                }
                (Value::Object(map), literals)
            }
        }
    }
}
