//! JSON request bodies: content type (415), size (413), then strict parsing into a typed request
//! whose errors name the field (400 `validation_failed` with `errors[]`).

use axum::body::Bytes;
use axum::extract::{FromRequest, Request};
use http::header::CONTENT_TYPE;
use http_body_util::{BodyExt, Limited};
use serde::de::DeserializeOwned;

use crate::error::{ApiError, FieldError};

/// The API contract: bodies over 1 MiB get 413.
pub const MAX_BODY_BYTES: usize = 1024 * 1024;

/// A body parsed strictly into `T` (unknown fields rejected by `T`'s `deny_unknown_fields`).
pub struct JsonBody<T>(pub T);

/// An optional JSON body: empty (or absent) is `None`; anything else must be valid JSON of `T`.
pub struct OptionalJsonBody<T>(pub Option<T>);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for JsonBody<T> {
    type Rejection = ApiError;

    async fn from_request(request: Request, _state: &S) -> Result<Self, Self::Rejection> {
        let bytes = read_json_bytes(request, true).await?;
        parse_json(&bytes).map(JsonBody)
    }
}

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for OptionalJsonBody<T> {
    type Rejection = ApiError;

    async fn from_request(request: Request, _state: &S) -> Result<Self, Self::Rejection> {
        let bytes = read_json_bytes(request, false).await?;
        if bytes.iter().all(u8::is_ascii_whitespace) {
            return Ok(OptionalJsonBody(None));
        }
        parse_json(&bytes).map(|value| OptionalJsonBody(Some(value)))
    }
}

async fn read_json_bytes(request: Request, required: bool) -> Result<Bytes, ApiError> {
    let content_type = request
        .headers()
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let declared_length = request
        .headers()
        .get(http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok()?.parse::<usize>().ok());
    if declared_length.is_some_and(|length| length > MAX_BODY_BYTES) {
        return Err(ApiError::payload_too_large(MAX_BODY_BYTES));
    }
    let bytes = Limited::new(request.into_body(), MAX_BODY_BYTES)
        .collect()
        .await
        .map_err(|_| ApiError::payload_too_large(MAX_BODY_BYTES))?
        .to_bytes();
    if !required && bytes.is_empty() {
        return Ok(bytes);
    }
    match content_type.as_deref() {
        Some(value) if is_json_media_type(value) => Ok(bytes),
        Some(other) => Err(ApiError::unsupported_media_type(format!(
            "expected Content-Type application/json, got {}",
            other.chars().take(80).collect::<String>()
        ))),
        None => Err(ApiError::unsupported_media_type(
            "expected Content-Type application/json",
        )),
    }
}

/// `application/json` or any `+json` type, with parameters (charset must be UTF-8 when given).
fn is_json_media_type(value: &str) -> bool {
    let mut parts = value.split(';');
    let essence = parts.next().unwrap_or("").trim().to_ascii_lowercase();
    let json = essence == "application/json"
        || (essence.starts_with("application/") && essence.ends_with("+json"));
    let charset_ok = parts.all(|parameter| match parameter.split_once('=') {
        Some((name, value)) if name.trim().eq_ignore_ascii_case("charset") => {
            value.trim().trim_matches('"').eq_ignore_ascii_case("utf-8")
        }
        _ => true,
    });
    json && charset_ok
}

/// Parses with the exact path of the first problem: `syncSettings.entities[0].direction`.
pub fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    let value: serde_json::Value = serde_json::from_slice(bytes).map_err(|error| {
        ApiError::malformed_json(format!("the body is not valid JSON: {error}"))
    })?;
    serde_path_to_error::deserialize::<_, T>(strict::StrictValue(&value)).map_err(|error| {
        let path = display_path(&error.path().to_string());
        ApiError::validation(vec![describe(&path, error.inner())])
    })
}

/// Parses one value of a body already read (an action's `config`, chosen by its `type`) as strictly
/// as [`parse_json`], the error's field named under `at` (`actions[1].config.forwardUrl`).
pub fn parse_value_at<T: DeserializeOwned>(
    value: &serde_json::Value,
    at: &str,
) -> Result<T, FieldError> {
    serde_path_to_error::deserialize::<_, T>(strict::StrictValue(value)).map_err(|error| {
        let inner = display_path(&error.path().to_string());
        let path = if inner.is_empty() {
            at.to_string()
        } else if inner.starts_with('[') {
            format!("{at}{inner}")
        } else {
            format!("{at}.{inner}")
        };
        describe(&path, error.inner())
    })
}

/// A JSON value read as the API means it: an object is the only form of an object. serde's derived
/// structs also accept an array of their fields in order (`["fast"]` for `{"mode": "fast"}`), a
/// Rust convenience that would let schema-violating bodies through; this deserializer refuses it.
mod strict {
    use serde::de::{self, DeserializeSeed, IntoDeserializer, MapAccess, SeqAccess, Visitor};
    use serde_json::{Error, Map, Value};

    pub struct StrictValue<'a>(pub &'a Value);

    impl<'de> de::Deserializer<'de> for StrictValue<'_> {
        type Error = Error;

        fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
            match self.0 {
                Value::Null => visitor.visit_unit(),
                Value::Bool(b) => visitor.visit_bool(*b),
                Value::Number(number) => de::Deserializer::deserialize_any(number.clone(), visitor),
                Value::String(text) => visitor.visit_str(text),
                Value::Array(items) => visitor.visit_seq(Seq(items.iter())),
                Value::Object(map) => visitor.visit_map(Fields::new(map)),
            }
        }

        serde::forward_to_deserialize_any! { bool char str string bytes byte_buf unit unit_struct }

        fn deserialize_u8<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
            self.whole_number(visitor)
        }
        fn deserialize_u16<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
            self.whole_number(visitor)
        }
        fn deserialize_u32<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
            self.whole_number(visitor)
        }
        fn deserialize_u64<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
            self.whole_number(visitor)
        }
        fn deserialize_i8<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
            self.whole_number(visitor)
        }
        fn deserialize_i16<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
            self.whole_number(visitor)
        }
        fn deserialize_i32<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
            self.whole_number(visitor)
        }
        fn deserialize_i64<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
            self.whole_number(visitor)
        }

        fn deserialize_option<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
            match self.0 {
                Value::Null => visitor.visit_none(),
                _ => visitor.visit_some(self),
            }
        }

        fn deserialize_struct<V: Visitor<'de>>(
            self,
            _name: &'static str,
            _fields: &'static [&'static str],
            visitor: V,
        ) -> Result<V::Value, Error> {
            match self.0 {
                Value::Object(map) => visitor.visit_map(Fields::new(map)),
                other => Err(de::Error::invalid_type(unexpected(other), &visitor)),
            }
        }

        fn deserialize_map<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
            match self.0 {
                Value::Object(map) => visitor.visit_map(Fields::new(map)),
                other => Err(de::Error::invalid_type(unexpected(other), &visitor)),
            }
        }

        fn deserialize_seq<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
            match self.0 {
                Value::Array(items) => visitor.visit_seq(Seq(items.iter())),
                other => Err(de::Error::invalid_type(unexpected(other), &visitor)),
            }
        }

        fn deserialize_enum<V: Visitor<'de>>(
            self,
            name: &'static str,
            variants: &'static [&'static str],
            visitor: V,
        ) -> Result<V::Value, Error> {
            match self.0 {
                Value::String(text) => visitor.visit_enum(text.as_str().into_deserializer()),
                other => other.clone().deserialize_enum(name, variants, visitor),
            }
        }

        fn deserialize_newtype_struct<V: Visitor<'de>>(
            self,
            _name: &'static str,
            visitor: V,
        ) -> Result<V::Value, Error> {
            visitor.visit_newtype_struct(self)
        }

        serde::forward_to_deserialize_any! {
            i128 u128 f32 f64 tuple tuple_struct identifier ignored_any
        }
    }

    impl StrictValue<'_> {
        /// JSON has one number type: `3.0` is the whole number 3, as JSON Schema's `integer` says.
        fn whole_number<'de, V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
            match self.0 {
                Value::Number(number) if number.is_f64() => {
                    let float = number.as_f64().unwrap_or(f64::NAN);
                    if float.fract() == 0.0 && float >= 0.0 && float < u64::MAX as f64 {
                        visitor.visit_u64(float as u64)
                    } else if float.fract() == 0.0 && float < 0.0 && float >= i64::MIN as f64 {
                        visitor.visit_i64(float as i64)
                    } else {
                        de::Deserializer::deserialize_any(number.clone(), visitor)
                    }
                }
                other => de::Deserializer::deserialize_any(StrictValue(other), visitor),
            }
        }
    }

    fn unexpected(value: &Value) -> de::Unexpected<'_> {
        match value {
            Value::Null => de::Unexpected::Unit,
            Value::Bool(b) => de::Unexpected::Bool(*b),
            Value::Number(_) => de::Unexpected::Other("number"),
            Value::String(text) => de::Unexpected::Str(text),
            Value::Array(_) => de::Unexpected::Seq,
            Value::Object(_) => de::Unexpected::Map,
        }
    }

    struct Seq<'a>(std::slice::Iter<'a, Value>);

    impl<'de> SeqAccess<'de> for Seq<'_> {
        type Error = Error;

        fn next_element_seed<T: DeserializeSeed<'de>>(
            &mut self,
            seed: T,
        ) -> Result<Option<T::Value>, Error> {
            self.0
                .next()
                .map(|value| seed.deserialize(StrictValue(value)))
                .transpose()
        }

        fn size_hint(&self) -> Option<usize> {
            Some(self.0.len())
        }
    }

    struct Fields<'a> {
        entries: serde_json::map::Iter<'a>,
        pending: Option<&'a Value>,
    }

    impl<'a> Fields<'a> {
        fn new(map: &'a Map<String, Value>) -> Fields<'a> {
            Fields {
                entries: map.iter(),
                pending: None,
            }
        }
    }

    impl<'de> MapAccess<'de> for Fields<'_> {
        type Error = Error;

        fn next_key_seed<K: DeserializeSeed<'de>>(
            &mut self,
            seed: K,
        ) -> Result<Option<K::Value>, Error> {
            match self.entries.next() {
                Some((key, value)) => {
                    self.pending = Some(value);
                    seed.deserialize(key.as_str().into_deserializer()).map(Some)
                }
                None => Ok(None),
            }
        }

        fn next_value_seed<V: DeserializeSeed<'de>>(&mut self, seed: V) -> Result<V::Value, Error> {
            match self.pending.take() {
                Some(value) => seed.deserialize(StrictValue(value)),
                None => Err(de::Error::custom("a value was asked for before its key")),
            }
        }

        fn size_hint(&self) -> Option<usize> {
            Some(self.entries.len())
        }
    }
}

/// serde_path_to_error writes `.` for the root; callers read `""` as "the body itself".
fn display_path(path: &str) -> String {
    if path == "." {
        String::new()
    } else {
        path.to_string()
    }
}

/// Unknown and missing fields are named by the field itself, not by its parent object.
fn describe(path: &str, error: &serde_json::Error) -> FieldError {
    let message = in_api_terms(&strip_position(&error.to_string()));
    // The path of an unknown field already ends with it; a missing field's path is its parent.
    let join = |name: &str| {
        if path.is_empty() || path == name {
            name.to_string()
        } else if path.ends_with(&format!(".{name}")) {
            path.to_string()
        } else {
            format!("{path}.{name}")
        }
    };
    if let Some(name) = quoted_after(&message, "unknown field `") {
        return FieldError::new(join(&name), "unknown field");
    }
    if let Some(name) = quoted_after(&message, "missing field `") {
        return FieldError::new(join(&name), "is required");
    }
    if path.is_empty() {
        // The body itself has the wrong shape (`[]`, `"text"`, `42`, `null`).
        return FieldError::new("(body)", "expected a JSON object");
    }
    FieldError::new(path, message)
}

/// serde speaks of Rust types (`struct CreateIntegrationRequest`, `u64`, `a map`, `sequence`); the
/// API's clients speak JSON. Rewrites the message into JSON terms.
fn in_api_terms(message: &str) -> String {
    let mut words: Vec<String> = Vec::new();
    let mut tokens = message.split(' ').peekable();
    while let Some(token) = tokens.next() {
        let (word, tail) = split_punctuation(token);
        let replaced = match word {
            "struct" | "enum" => {
                // `struct Name` → `a JSON object`; the name is the implementation's.
                if let Some(next) = tokens.next() {
                    let (_, next_tail) = split_punctuation(next);
                    words.push(format!(
                        "{}{next_tail}",
                        if word == "struct" {
                            "a JSON object"
                        } else {
                            "one of the accepted values"
                        }
                    ));
                }
                continue;
            }
            "map" => "object",
            "sequence" => "array",
            "unit" => "null",
            "u8" | "u16" | "u32" | "u64" | "u128" | "usize" => "a whole number (0 or more)",
            "i8" | "i16" | "i32" | "i64" | "i128" | "isize" => "a whole number",
            "f32" | "f64" => "a number",
            "floating" if tokens.peek().is_some_and(|next| next.starts_with("point")) => {
                tokens.next();
                "number"
            }
            other => other,
        };
        words.push(format!("{replaced}{tail}"));
    }
    words
        .join(" ")
        .replace("a object", "a JSON object")
        .replace("a array", "an array")
        .replace("untagged enum", "shape")
}

/// `u64,` → (`u64`, `,`): serde's messages put punctuation right after a type name.
fn split_punctuation(token: &str) -> (&str, &str) {
    let end = token.trim_end_matches([',', '.', ':', ';']).len();
    token.split_at(end)
}

fn quoted_after(message: &str, marker: &str) -> Option<String> {
    let rest = message.split_once(marker)?.1;
    Some(rest.split_once('`')?.0.to_string())
}

/// serde_json appends " at line L column C": position is noise next to the field path.
fn strip_position(message: &str) -> String {
    match message.rfind(" at line ") {
        Some(index) => message[..index].to_string(),
        None => message.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields, rename_all = "camelCase")]
    #[allow(dead_code)]
    struct Outer {
        name: String,
        inner: Option<Inner>,
    }

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Inner {
        mode: Mode,
    }

    #[derive(Debug, Deserialize)]
    #[serde(rename_all = "snake_case")]
    enum Mode {
        Fast,
    }

    fn field_of(body: &str) -> (String, String) {
        let error = parse_json::<Outer>(body.as_bytes()).unwrap_err();
        assert_eq!(error.code, "validation_failed", "{error}");
        (
            error.errors[0].field.clone(),
            error.errors[0].message.clone(),
        )
    }

    #[test]
    fn a_value_parsed_on_its_own_names_its_fields_under_its_place() {
        let parse = |value: serde_json::Value| {
            parse_value_at::<Inner>(&value, "actions[1].config").unwrap_err()
        };
        assert_eq!(
            parse(serde_json::json!({"mode": "fast", "speed": 1})).field,
            "actions[1].config.speed"
        );
        assert_eq!(parse(serde_json::json!({})).field, "actions[1].config.mode");
        assert_eq!(
            parse(serde_json::json!({"mode": "slow"})).field,
            "actions[1].config.mode"
        );
        // As in a whole body, an array is not a form of an object.
        assert_eq!(
            parse(serde_json::json!(["fast"])).field,
            "actions[1].config"
        );
        let parsed: Vec<Mode> =
            parse_value_at(&serde_json::json!(["fast"]), "modes").expect("parses");
        assert_eq!(parsed.len(), 1);
        let error =
            parse_value_at::<Vec<Mode>>(&serde_json::json!(["fast", "x"]), "modes").unwrap_err();
        assert_eq!(error.field, "modes[1]");
    }

    #[test]
    fn unknown_fields_are_named_with_their_full_path() {
        assert_eq!(field_of(r#"{"name":"a","nmae":"b"}"#).0, "nmae");
        assert_eq!(
            field_of(r#"{"name":"a","inner":{"mode":"fast","speed":1}}"#).0,
            "inner.speed"
        );
    }

    #[test]
    fn missing_fields_wrong_types_and_enums_are_named() {
        assert_eq!(field_of(r#"{}"#).0, "name");
        assert_eq!(field_of(r#"{"name":5}"#).0, "name");
        let (field, message) = field_of(r#"{"name":"a","inner":{"mode":"slow"}}"#);
        assert_eq!(field, "inner.mode");
        assert!(message.contains("unknown variant"), "{message}");
    }

    #[test]
    fn a_body_that_is_not_an_object_says_so_in_json_terms() {
        for body in ["[]", "\"text\"", "42", "null", "true"] {
            let (field, message) = field_of(body);
            assert_eq!(
                (field.as_str(), message.as_str()),
                ("(body)", "expected a JSON object")
            );
        }
    }

    #[test]
    fn messages_never_name_rust_types() {
        #[derive(Debug, Deserialize)]
        #[allow(dead_code)]
        struct Numbers {
            count: u64,
            ratio: f64,
            inner: Inner,
            list: Vec<String>,
        }
        for (body, expected) in [
            (r#"{"count":-1}"#, "a whole number (0 or more)"),
            (r#"{"count":1,"ratio":"x"}"#, "expected a number"),
            (
                r#"{"count":1,"ratio":1,"inner":[]}"#,
                "invalid type: array, expected a JSON object",
            ),
            (
                r#"{"count":1,"ratio":1,"inner":{"mode":"fast"},"list":{}}"#,
                "invalid type: object, expected an array",
            ),
            (r#"{"count":1.5}"#, "invalid type: number `1.5`"),
        ] {
            let error = parse_json::<Numbers>(body.as_bytes()).unwrap_err();
            let message = &error.errors[0].message;
            assert!(message.contains(expected), "{body}: {message}");
            for internal in ["struct", "u64", "f64", "sequence", "map", "Inner"] {
                assert!(!message.contains(internal), "{body}: {message}");
            }
        }
    }

    #[test]
    fn an_object_given_as_an_array_of_its_fields_is_refused() {
        let (field, message) = field_of(r#"{"name":"a","inner":["fast"]}"#);
        assert_eq!(field, "inner");
        assert!(message.contains("expected a JSON object"), "{message}");
    }

    #[test]
    fn a_whole_number_written_with_a_fraction_is_a_whole_number() {
        #[derive(Debug, Deserialize)]
        struct Counts {
            attempts: u32,
            offset: i64,
        }
        let counts = parse_json::<Counts>(br#"{"attempts":3.0,"offset":-2.0}"#).expect("whole");
        assert_eq!((counts.attempts, counts.offset), (3, -2));
        assert!(parse_json::<Counts>(br#"{"attempts":3.5,"offset":0}"#).is_err());
        assert!(parse_json::<Counts>(br#"{"attempts":-1.0,"offset":0}"#).is_err());
    }

    #[test]
    fn null_is_not_an_empty_object_or_list() {
        #[derive(Debug, Deserialize)]
        #[allow(dead_code)]
        struct Containers {
            map: serde_json::Map<String, serde_json::Value>,
            list: Vec<String>,
        }
        for body in [r#"{"map":null,"list":[]}"#, r#"{"map":{},"list":null}"#] {
            let error = parse_json::<Containers>(body.as_bytes()).unwrap_err();
            assert_eq!(error.code, "validation_failed", "{body}");
        }
        assert!(parse_json::<Containers>(br#"{"map":{},"list":[]}"#).is_ok());
    }

    #[test]
    fn malformed_json_is_its_own_problem() {
        assert_eq!(
            parse_json::<Outer>(b"{\"name\":").unwrap_err().code,
            "malformed_json"
        );
        assert_eq!(
            parse_json::<Outer>(b"not json").unwrap_err().code,
            "malformed_json"
        );
    }

    #[test]
    fn json_media_types_are_recognised() {
        assert!(is_json_media_type("application/json"));
        assert!(is_json_media_type("application/json; charset=utf-8"));
        assert!(is_json_media_type("application/merge-patch+json"));
        assert!(!is_json_media_type("text/plain"));
        assert!(!is_json_media_type("application/json; charset=latin1"));
    }
}
