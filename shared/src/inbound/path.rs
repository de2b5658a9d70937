//! Dot paths into a JSON body (`data.object.id`, `items.0.name`): what `filters.bodyPath`, `idPath`
//! and `fieldMappings` values are. A segment of digits also indexes an array.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::domain::InvalidValue;

/// A parsed dot path: 1-20 non-empty segments, at most 512 characters in all.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct BodyPath(String);

impl BodyPath {
    pub const MAX_CHARS: usize = 512;
    pub const MAX_SEGMENTS: usize = 20;

    pub fn parse(value: &str) -> Result<BodyPath, InvalidValue> {
        if value.is_empty() || value.chars().count() > Self::MAX_CHARS {
            return Err(InvalidValue(format!(
                "a body path is 1-{} characters",
                Self::MAX_CHARS
            )));
        }
        let segments = value.split('.').count();
        if segments > Self::MAX_SEGMENTS || value.split('.').any(str::is_empty) {
            return Err(InvalidValue(format!(
                "a body path is 1-{} dot-separated names, none empty (e.g. data.object.id)",
                Self::MAX_SEGMENTS
            )));
        }
        if value.chars().any(char::is_control) {
            return Err(InvalidValue(
                "a body path must not contain control characters".to_string(),
            ));
        }
        Ok(BodyPath(value.to_string()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The value at this path in `body`, if every segment exists.
    pub fn lookup<'v>(&self, body: &'v Value) -> Option<&'v Value> {
        value_at(body, &self.0)
    }
}

/// The value at the dot path `path` in `body`, if every segment exists: the one path reader, for
/// paths parsed here and for those the catalog and sync settings checked when they were written.
pub fn value_at<'v>(body: &'v Value, path: &str) -> Option<&'v Value> {
    path.split('.')
        .try_fold(body, |value, segment| match value {
            Value::Object(map) => map.get(segment),
            Value::Array(items) => segment.parse::<usize>().ok().and_then(|i| items.get(i)),
            _ => None,
        })
}

impl TryFrom<String> for BodyPath {
    type Error = InvalidValue;

    fn try_from(value: String) -> Result<Self, Self::Error> {
        BodyPath::parse(&value)
    }
}

impl From<BodyPath> for String {
    fn from(path: BodyPath) -> String {
        path.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn paths_walk_objects_and_arrays() {
        let body = json!({"data": {"object": {"id": "in_1", "lines": [{"amount": 5}]}}});
        let path = |p: &str| BodyPath::parse(p).expect("valid");
        assert_eq!(path("data.object.id").lookup(&body), Some(&json!("in_1")));
        assert_eq!(
            path("data.object.lines.0.amount").lookup(&body),
            Some(&json!(5))
        );
        assert_eq!(path("data.missing").lookup(&body), None);
        assert_eq!(path("data.object.id.deeper").lookup(&body), None);
    }

    #[test]
    fn malformed_paths_are_refused() {
        for bad in ["", "a..b", ".a", "a.", &"a.".repeat(21), "a\u{0}b"] {
            assert!(BodyPath::parse(bad).is_err(), "{bad:?}");
        }
        assert!(BodyPath::parse("שם.מזהה").is_ok());
    }
}
