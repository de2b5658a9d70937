//! The field-mapping transforms: `transform` names one, `transformConfig` is its
//! configuration, parsed into a typed [`Transformation`] so a bad config is a 400 naming the exact
//! field (`syncSettings.fieldMappings[0].transformConfig.format`) when settings are written, never a
//! surprise during a sync. No code execution: `custom` is a closed set of operations.

use std::collections::BTreeMap;

use serde::Deserialize;
use serde_json::{Map, Value};

pub use crate::catalog::Transform;
use crate::error::FieldError;

/// A transform with its parsed configuration.
#[derive(Debug, Clone, PartialEq)]
pub enum Transformation {
    None,
    DateFormat(DateFormatConfig),
    CurrencyConvert(CurrencyConvertConfig),
    Custom(CustomOperation),
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DateFormatConfig {
    /// `rfc3339`, `date` (`YYYY-MM-DD` in UTC), `epoch_ms`, or a strftime pattern (`%d/%m/%Y`) of
    /// the [`STRFTIME_SPECIFIERS`]. Without `transformConfig`, `rfc3339`.
    pub format: DateOutput,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DateOutput {
    Rfc3339,
    Date,
    EpochMs,
    Pattern(String),
}

impl<'de> Deserialize<'de> for DateOutput {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let raw = String::deserialize(deserializer)?;
        match raw.as_str() {
            "rfc3339" => Ok(DateOutput::Rfc3339),
            "date" => Ok(DateOutput::Date),
            "epoch_ms" => Ok(DateOutput::EpochMs),
            pattern if is_strftime_pattern(pattern) => Ok(DateOutput::Pattern(raw)),
            _ => Err(serde::de::Error::custom(
                "expected rfc3339, date, epoch_ms or a strftime pattern such as %d/%m/%Y",
            )),
        }
    }
}

/// The strftime specifiers a pattern may use (the API document lists the same set): dates, times,
/// zones and `%%`. Anything else between `%` and the next character is refused.
pub const STRFTIME_SPECIFIERS: &str = "aAbBCdDeFHIjklmMpPSTuUwyYzZ%";

fn is_strftime_pattern(pattern: &str) -> bool {
    use chrono::format::{Item, StrftimeItems};
    let mut chars = pattern.chars();
    let mut has_specifier = false;
    while let Some(c) = chars.next() {
        if c == '%' {
            match chars.next() {
                Some(spec) if STRFTIME_SPECIFIERS.contains(spec) => has_specifier = true,
                _ => return false,
            }
        }
    }
    (1..=64).contains(&pattern.chars().count())
        && has_specifier
        && !StrftimeItems::new(pattern).any(|item| matches!(item, Item::Error))
}

/// `amount × multiplyBy ÷ divideBy × rate`, rounded half away from zero to `decimals` (default 2).
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct CurrencyConvertConfig {
    pub multiply_by: Option<f64>,
    pub divide_by: Option<f64>,
    pub rate: Option<f64>,
    pub decimals: Option<u8>,
    /// ISO 4217 code of the result (e.g. `ILS`).
    pub currency: Option<String>,
}

/// The `custom` operations: `{"operation": "lowercase"}`, `{"operation": "split", "separator": ","}`,
/// `{"operation": "lookup", "table": {"a": "b"}, "default": "x"}`, ...
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(tag = "operation", rename_all = "snake_case", deny_unknown_fields)]
pub enum CustomOperation {
    Lowercase,
    Uppercase,
    Trim,
    Split {
        separator: String,
    },
    Join {
        separator: String,
    },
    Lookup {
        table: BTreeMap<String, Value>,
        #[serde(default)]
        default: Option<Value>,
    },
}

const MAX_DECIMALS: u8 = 10;

impl Transformation {
    /// Parses `transformConfig` for `transform`; errors name fields under `at` (the mapping's path).
    pub fn parse(
        transform: Option<Transform>,
        config: Option<&Map<String, Value>>,
        at: &str,
    ) -> Result<Transformation, Vec<FieldError>> {
        let field = |path: &str| format!("{at}.transformConfig{path}");
        let parsed = match (transform.unwrap_or(Transform::None), config) {
            (Transform::None, None) => return Ok(Transformation::None),
            (Transform::None, Some(_)) => {
                return Err(vec![FieldError::new(
                    field(""),
                    "is only allowed with a transform",
                )])
            }
            (Transform::DateFormat, Some(config)) => {
                parse_config(config).map(Transformation::DateFormat)
            }
            // Without options a date is written as RFC 3339.
            (Transform::DateFormat, None) => {
                return Ok(Transformation::DateFormat(DateFormatConfig {
                    format: DateOutput::Rfc3339,
                }))
            }
            (Transform::CurrencyConvert, config) => {
                parse_config(config.unwrap_or(&Map::new())).map(Transformation::CurrencyConvert)
            }
            (Transform::Custom, Some(config)) => parse_config(config).map(Transformation::Custom),
            (Transform::Custom, None) => {
                return Err(vec![FieldError::new(
                    field(""),
                    "is required for this transform",
                )])
            }
        };
        let transformation =
            parsed.map_err(|(path, message)| vec![FieldError::new(field(&path), message)])?;
        let mut errors = Vec::new();
        if let Transformation::CurrencyConvert(config) = &transformation {
            for (name, value) in [
                ("multiplyBy", config.multiply_by),
                ("divideBy", config.divide_by),
                ("rate", config.rate),
            ] {
                if value.is_some_and(|v| !v.is_finite() || v == 0.0) {
                    errors.push(FieldError::new(
                        field(&format!(".{name}")),
                        "must be a non-zero number",
                    ));
                }
            }
            if config.decimals.is_some_and(|d| d > MAX_DECIMALS) {
                errors.push(FieldError::new(
                    field(".decimals"),
                    format!("must be 0-{MAX_DECIMALS}"),
                ));
            }
            if let Some(currency) = &config.currency {
                if currency.len() != 3 || !currency.bytes().all(|b| b.is_ascii_uppercase()) {
                    errors.push(FieldError::new(
                        field(".currency"),
                        "must be a 3-letter ISO 4217 code such as USD",
                    ));
                }
            }
        }
        if errors.is_empty() {
            Ok(transformation)
        } else {
            Err(errors)
        }
    }
}

/// JSON has one number type: `6.0` is the whole number 6 (as JSON Schema's `integer` says), so a
/// whole number written with a fraction is read as an integer.
fn whole_numbers_as_integers(value: &mut Value) {
    match value {
        Value::Number(number) if number.is_f64() => {
            let float = number.as_f64().unwrap_or(f64::NAN);
            if float.fract() == 0.0 && float.abs() < 9.0e15 {
                *value = Value::from(float as i64);
            }
        }
        Value::Array(items) => items.iter_mut().for_each(whole_numbers_as_integers),
        Value::Object(members) => members.values_mut().for_each(whole_numbers_as_integers),
        _ => {}
    }
}

/// A typed config from its JSON object, with the path (`.format`) of the first problem.
fn parse_config<T: serde::de::DeserializeOwned>(
    config: &Map<String, Value>,
) -> Result<T, (String, String)> {
    let mut value = Value::Object(config.clone());
    whole_numbers_as_integers(&mut value);
    serde_path_to_error::deserialize::<_, T>(value).map_err(|error| {
        let path = error.path().to_string();
        let message = error.inner().to_string();
        let path = if path == "." {
            String::new()
        } else {
            format!(".{path}")
        };
        // serde names an unknown or missing field in the message, not in the path.
        for (marker, text) in [
            ("unknown field `", "unknown field"),
            ("missing field `", "is required"),
        ] {
            if let Some(name) = message
                .split_once(marker)
                .and_then(|(_, rest)| rest.split_once('`'))
                .map(|(name, _)| name.to_string())
            {
                let named = if path.ends_with(&format!(".{name}")) {
                    path
                } else {
                    format!("{path}.{name}")
                };
                return (named, text.to_string());
            }
        }
        let message = message
            .replace("invalid type: integer", "invalid type: number")
            .replace("floating point", "number")
            .replace("u8", "a whole number from 0 to 255")
            .replace("f64", "a number")
            .replace("map", "object")
            .replace("sequence", "array");
        (path, message)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn parse(transform: Transform, config: Value) -> Result<Transformation, Vec<FieldError>> {
        Transformation::parse(
            Some(transform),
            config.as_object(),
            "syncSettings.fieldMappings[0]",
        )
    }

    fn field_of(result: Result<Transformation, Vec<FieldError>>) -> String {
        result.expect_err("invalid")[0].field.clone()
    }

    #[test]
    fn a_date_format_that_is_not_a_string_is_named_exactly() {
        assert_eq!(
            field_of(parse(Transform::DateFormat, json!({"format": 42}))),
            "syncSettings.fieldMappings[0].transformConfig.format"
        );
        assert_eq!(
            field_of(parse(Transform::DateFormat, json!({"format": "yesterday"}))),
            "syncSettings.fieldMappings[0].transformConfig.format"
        );
        assert_eq!(
            field_of(parse(Transform::DateFormat, json!({"fmt": "date"}))),
            "syncSettings.fieldMappings[0].transformConfig.fmt"
        );
        assert_eq!(
            field_of(parse(Transform::DateFormat, json!({"format": "%Q"}))),
            "syncSettings.fieldMappings[0].transformConfig.format"
        );
        assert_eq!(
            Transformation::parse(Some(Transform::DateFormat), None, "m"),
            Ok(Transformation::DateFormat(DateFormatConfig {
                format: DateOutput::Rfc3339
            }))
        );
    }

    #[test]
    fn valid_configs_parse_into_their_types() {
        assert_eq!(
            parse(Transform::DateFormat, json!({"format": "%d/%m/%Y"})),
            Ok(Transformation::DateFormat(DateFormatConfig {
                format: DateOutput::Pattern("%d/%m/%Y".into())
            }))
        );
        assert!(matches!(
            parse(
                Transform::CurrencyConvert,
                json!({"divideBy": 100, "decimals": 2, "currency": "ILS"})
            ),
            Ok(Transformation::CurrencyConvert(_))
        ));
        assert_eq!(
            parse(
                Transform::Custom,
                json!({"operation": "split", "separator": ","})
            ),
            Ok(Transformation::Custom(CustomOperation::Split {
                separator: ",".into()
            }))
        );
        assert_eq!(
            Transformation::parse(None, None, "x"),
            Ok(Transformation::None)
        );
    }

    #[test]
    fn a_whole_number_written_with_a_fraction_is_a_whole_number() {
        assert!(matches!(
            parse(
                Transform::CurrencyConvert,
                json!({"decimals": 2.0, "divideBy": 100.0})
            ),
            Ok(Transformation::CurrencyConvert(CurrencyConvertConfig {
                decimals: Some(2),
                ..
            }))
        ));
        assert!(parse(Transform::CurrencyConvert, json!({"decimals": 2.5})).is_err());
    }

    #[test]
    fn currency_and_custom_configs_are_checked() {
        assert_eq!(
            field_of(parse(Transform::CurrencyConvert, json!({"divideBy": 0}))),
            "syncSettings.fieldMappings[0].transformConfig.divideBy"
        );
        assert_eq!(
            field_of(parse(
                Transform::CurrencyConvert,
                json!({"currency": "shekel"})
            )),
            "syncSettings.fieldMappings[0].transformConfig.currency"
        );
        assert_eq!(
            field_of(parse(Transform::Custom, json!({"operation": "eval"}))),
            "syncSettings.fieldMappings[0].transformConfig.operation"
        );
        assert_eq!(
            field_of(parse(Transform::Custom, json!({"operation": "split"}))),
            "syncSettings.fieldMappings[0].transformConfig.separator"
        );
        assert_eq!(
            field_of(Transformation::parse(
                Some(Transform::None),
                json!({"format": "date"}).as_object(),
                "m"
            )),
            "m.transformConfig"
        );
    }
}
