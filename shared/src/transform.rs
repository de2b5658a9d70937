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

/// Why a value could not be transformed. The record holding it fails with this message: a value a
/// transform cannot convert is never written as a silent `null`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct TransformError {
    pub message: String,
}

impl TransformError {
    fn new(message: impl Into<String>) -> TransformError {
        TransformError {
            message: message.into(),
        }
    }
}

impl Transformation {
    /// The transformed value. `null` is no value, not one to convert: every transform passes it
    /// through (a mapping's `defaultValue` is what fills it). See each config type for the rules.
    pub fn apply(&self, value: &Value) -> Result<Value, TransformError> {
        if value.is_null() {
            return Ok(Value::Null);
        }
        match self {
            Transformation::None => Ok(value.clone()),
            Transformation::DateFormat(config) => config.apply(value),
            Transformation::CurrencyConvert(config) => config.apply(value),
            Transformation::Custom(operation) => operation.apply(value),
        }
    }
}

/// Epoch numbers whose magnitude is at least this are milliseconds, smaller ones seconds: 10^11
/// seconds is the year 5138 and 10^11 milliseconds is 1973-03-03, so only millisecond times before
/// March 1973 would be misread (as seconds).
pub const EPOCH_MILLISECONDS_FROM: i64 = 100_000_000_000;

impl DateFormatConfig {
    /// Reads an instant from any of these and writes it in `format`, always in UTC:
    /// - RFC 3339 (`2024-03-05T10:00:00+02:00`, fraction and `Z` allowed);
    /// - ISO 8601 extended without a zone (`2024-03-05T10:00:00.0000000`, `2024-03-05 10:00`),
    ///   taken as UTC (Microsoft Graph with `Prefer: outlook.timezone="UTC"`), or with a `+0200`
    ///   offset;
    /// - an ISO date (`2024-03-05`), midnight UTC;
    /// - epoch seconds or milliseconds as a JSON number or a string of digits (optionally signed,
    ///   with a fraction), told apart by magnitude ([`EPOCH_MILLISECONDS_FROM`]), to the nearest
    ///   millisecond; `YYYYMMDD` is read as epoch seconds, not as a date;
    /// - Microsoft JSON dates (`/Date(1573755038314+0000)/`, Xero): the milliseconds, which are UTC.
    ///
    /// Anything else (booleans, objects, other text, instants outside the years 0000-9999) is an
    /// error.
    fn apply(&self, value: &Value) -> Result<Value, TransformError> {
        let instant = instant_of(value).ok_or_else(|| {
            TransformError::new(format!(
                "{} is not a date (RFC 3339, ISO 8601 or epoch seconds/milliseconds)",
                excerpt(value)
            ))
        })?;
        Ok(match &self.format {
            DateOutput::Rfc3339 => {
                Value::String(instant.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true))
            }
            DateOutput::Date => Value::String(instant.format("%Y-%m-%d").to_string()),
            DateOutput::EpochMs => Value::from(instant.timestamp_millis()),
            DateOutput::Pattern(pattern) => {
                use std::fmt::Write;
                // A pattern is checked when settings are written; one that still fails to format
                // (written by code) is an error here, where `to_string` would panic.
                let mut text = String::new();
                write!(text, "{}", instant.format(pattern)).map_err(|_| {
                    TransformError::new(format!("`{pattern}` is not a usable strftime pattern"))
                })?;
                Value::String(text)
            }
        })
    }
}

type Instant = chrono::DateTime<chrono::Utc>;

/// The instant a value holds, within the years 0000-9999 that RFC 3339 can write.
fn instant_of(value: &Value) -> Option<Instant> {
    use chrono::Datelike;
    match value {
        Value::Number(number) => epoch_instant(number),
        Value::String(text) => instant_of_text(text.trim()),
        _ => None,
    }
    .filter(|instant| (0..=9999).contains(&instant.year()))
}

fn epoch_instant(number: &serde_json::Number) -> Option<Instant> {
    let milliseconds = match number.as_i64() {
        Some(whole) if whole.unsigned_abs() >= EPOCH_MILLISECONDS_FROM.unsigned_abs() => whole,
        Some(whole) => whole.checked_mul(1000)?,
        None => {
            let float = number.as_f64()?;
            let milliseconds = if float.abs() >= EPOCH_MILLISECONDS_FROM as f64 {
                float.round()
            } else {
                (float * 1000.0).round()
            };
            // Beyond ±2^63 the cast would saturate; chrono's range is far smaller anyway.
            if !milliseconds.is_finite() || milliseconds.abs() >= 9.0e18 {
                return None;
            }
            milliseconds as i64
        }
    };
    chrono::DateTime::from_timestamp_millis(milliseconds)
}

fn instant_of_text(text: &str) -> Option<Instant> {
    use chrono::{DateTime, NaiveDate, NaiveDateTime, Utc};
    if let Ok(instant) = DateTime::parse_from_rfc3339(text) {
        return Some(instant.with_timezone(&Utc));
    }
    for pattern in ["%Y-%m-%dT%H:%M:%S%.f%z", "%Y-%m-%dT%H:%M%z"] {
        if let Ok(instant) = DateTime::parse_from_str(text, pattern) {
            return Some(instant.with_timezone(&Utc));
        }
    }
    for pattern in [
        "%Y-%m-%dT%H:%M:%S%.f",
        "%Y-%m-%d %H:%M:%S%.f",
        "%Y-%m-%dT%H:%M",
        "%Y-%m-%d %H:%M",
    ] {
        if let Ok(naive) = NaiveDateTime::parse_from_str(text, pattern) {
            return Some(naive.and_utc());
        }
    }
    if let Ok(date) = NaiveDate::parse_from_str(text, "%Y-%m-%d") {
        return date.and_hms_opt(0, 0, 0).map(|naive| naive.and_utc());
    }
    if let Some(inner) = text
        .strip_prefix("/Date(")
        .and_then(|rest| rest.strip_suffix(")/"))
    {
        // The offset after the milliseconds (`+0000`) says where they were written, not what they
        // mean: the milliseconds are UTC.
        let digits_end = inner
            .char_indices()
            .skip(1)
            .find(|(_, c)| matches!(c, '+' | '-'))
            .map_or(inner.len(), |(at, _)| at);
        let milliseconds: i64 = inner[..digits_end].parse().ok()?;
        return DateTime::from_timestamp_millis(milliseconds);
    }
    if is_decimal_text(text) {
        let number = match text.parse::<i64>() {
            Ok(whole) => serde_json::Number::from(whole),
            Err(_) => serde_json::Number::from_f64(text.parse::<f64>().ok()?)?,
        };
        return epoch_instant(&number);
    }
    None
}

/// `[+-]digits[.digits]`: the number texts read as epochs and as amounts.
fn is_decimal_text(text: &str) -> bool {
    let unsigned = text.strip_prefix(['+', '-']).unwrap_or(text);
    let (whole, fraction) = match unsigned.split_once('.') {
        Some((whole, fraction)) => (whole, Some(fraction)),
        None => (unsigned, None),
    };
    let all_digits = |part: &str| !part.is_empty() && part.bytes().all(|b| b.is_ascii_digit());
    all_digits(whole) && fraction.is_none_or(all_digits)
}

impl CurrencyConvertConfig {
    /// `amount × multiplyBy ÷ divideBy × rate`, rounded half away from zero to `decimals` (default
    /// 2), computed exactly in decimal: every operand is taken as the decimal it is written as (a
    /// JSON number's shortest form, so `1.005` is 1.005, not the binary float just below it), the
    /// quotient is rounded once with integer arithmetic, and only the result becomes a float. So
    /// 2.345 → 2.35, -2.345 → -2.35 and 1.005 → 1.01. The amount is a JSON number or a decimal
    /// string (`"12.50"`); a whole result is written as an integer (`12`, not `12.0`). Operands with
    /// more digits than 128-bit integers hold (some 38 in all) are an error, not a rounded guess.
    /// `currency` names the result's currency for readers; it does not change the number.
    fn apply(&self, value: &Value) -> Result<Value, TransformError> {
        let not_a_number = || {
            TransformError::new(format!(
                "{} is not an amount (a number or a decimal string)",
                excerpt(value)
            ))
        };
        let too_large = || {
            TransformError::new("the amount and factors have too many digits to convert exactly")
        };
        let amount = match value {
            Value::Number(number) => Decimal::of_number(number),
            Value::String(text) if is_decimal_text(text) => Decimal::of_text(text),
            _ => return Err(not_a_number()),
        }
        .ok_or_else(too_large)?;
        let factor = |factor: Option<f64>| match factor {
            None => Some(Decimal::ONE),
            Some(factor) => Decimal::of_float(factor),
        };
        let (multiply_by, divide_by, rate) = (
            factor(self.multiply_by).ok_or_else(too_large)?,
            factor(self.divide_by).ok_or_else(too_large)?,
            factor(self.rate).ok_or_else(too_large)?,
        );
        if divide_by.digits == 0 {
            return Err(TransformError::new("divideBy is zero"));
        }
        let decimals = self.decimals.unwrap_or(2);
        let numerator = amount
            .times(multiply_by)
            .and_then(|product| product.times(rate))
            .ok_or_else(too_large)?;
        let scaled = numerator
            .divided_to(divide_by, decimals)
            .ok_or_else(too_large)?;
        scaled_number(scaled, decimals).ok_or_else(too_large)
    }
}

/// `digits × 10^-scale`; the scale is negative for large round numbers (1e3 = 1 × 10^3).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Decimal {
    digits: i128,
    scale: i32,
}

impl Decimal {
    const ONE: Decimal = Decimal {
        digits: 1,
        scale: 0,
    };

    fn of_number(number: &serde_json::Number) -> Option<Decimal> {
        if let Some(whole) = number.as_i64() {
            return Some(Decimal {
                digits: i128::from(whole),
                scale: 0,
            });
        }
        if let Some(whole) = number.as_u64() {
            return Some(Decimal {
                digits: i128::from(whole),
                scale: 0,
            });
        }
        Decimal::of_float(number.as_f64()?)
    }

    /// The decimal a float is written as: Rust's `{:e}` is the shortest text that reads back as
    /// the same float (`1.005e0`), which is also what serde_json writes and read.
    fn of_float(float: f64) -> Option<Decimal> {
        if !float.is_finite() {
            return None;
        }
        let text = format!("{float:e}");
        let (mantissa, exponent) = text.split_once('e')?;
        let exponent: i32 = exponent.parse().ok()?;
        let fraction_len = mantissa.split_once('.').map_or(0, |(_, f)| f.len());
        let digits: i128 = mantissa.replace('.', "").parse().ok()?;
        Some(Decimal {
            digits,
            scale: i32::try_from(fraction_len).ok()?.checked_sub(exponent)?,
        })
    }

    fn of_text(text: &str) -> Option<Decimal> {
        if !is_decimal_text(text) {
            return None;
        }
        let fraction_len = text.split_once('.').map_or(0, |(_, f)| f.len());
        let digits: i128 = text.replace('.', "").parse().ok()?;
        Some(Decimal {
            digits,
            scale: i32::try_from(fraction_len).ok()?,
        })
    }

    fn times(self, other: Decimal) -> Option<Decimal> {
        Some(Decimal {
            digits: self.digits.checked_mul(other.digits)?,
            scale: self.scale.checked_add(other.scale)?,
        })
    }

    /// `self ÷ divisor × 10^decimals`, rounded half away from zero to an integer.
    fn divided_to(self, divisor: Decimal, decimals: u8) -> Option<i128> {
        // self / divisor = (a / 10^sa) / (b / 10^sb) = a × 10^(sb - sa) / b.
        let exponent = divisor
            .scale
            .checked_sub(self.scale)?
            .checked_add(i32::from(decimals))?;
        let power = 10u128.checked_pow(exponent.unsigned_abs())?;
        let (mut numerator, mut denominator) =
            (self.digits.unsigned_abs(), divisor.digits.unsigned_abs());
        if exponent >= 0 {
            numerator = numerator.checked_mul(power)?;
        } else {
            denominator = denominator.checked_mul(power)?;
        }
        let quotient = numerator / denominator;
        let remainder = numerator % denominator;
        let rounded = if remainder >= denominator - remainder {
            quotient.checked_add(1)?
        } else {
            quotient
        };
        let magnitude = i128::try_from(rounded).ok()?;
        let negative = (self.digits < 0) != (divisor.digits < 0);
        Some(if negative { -magnitude } else { magnitude })
    }
}

/// `scaled × 10^-decimals` as a JSON number: an integer when whole, else the float nearest to the
/// decimal text (so it prints as that text when it has up to 15 significant digits).
fn scaled_number(scaled: i128, decimals: u8) -> Option<Value> {
    let unit = 10u128.checked_pow(u32::from(decimals))?;
    let magnitude = scaled.unsigned_abs();
    let (whole, fraction) = (magnitude / unit, magnitude % unit);
    let sign = if scaled < 0 { "-" } else { "" };
    if fraction == 0 {
        if let Ok(whole) = i64::try_from(whole) {
            return Some(Value::from(if scaled < 0 { -whole } else { whole }));
        }
    }
    let text = format!(
        "{sign}{whole}.{fraction:0width$}",
        width = usize::from(decimals)
    );
    text.parse::<f64>()
        .ok()
        .and_then(serde_json::Number::from_f64)
        .map(Value::Number)
}

impl CustomOperation {
    /// - `lowercase`, `uppercase`, `trim`: a string (Unicode case mapping and white space);
    /// - `split`: a string into an array of strings, exactly as separated (an empty string is `[]`,
    ///   an empty separator splits into characters);
    /// - `join`: an array of strings, numbers and booleans (numbers and booleans as their JSON text)
    ///   into one string;
    /// - `lookup`: a string, number or boolean (by its JSON text) → the table's value, else the
    ///   `default`; a key the table lacks without a `default` is an error.
    ///
    /// Any other input is an error naming what was expected.
    fn apply(&self, value: &Value) -> Result<Value, TransformError> {
        let text = |name: &str| {
            value.as_str().ok_or_else(|| {
                TransformError::new(format!("{name} needs a string, not {}", excerpt(value)))
            })
        };
        Ok(match self {
            CustomOperation::Lowercase => Value::String(text("lowercase")?.to_lowercase()),
            CustomOperation::Uppercase => Value::String(text("uppercase")?.to_uppercase()),
            CustomOperation::Trim => Value::String(text("trim")?.trim().to_string()),
            CustomOperation::Split { separator } => {
                let text = text("split")?;
                let parts: Vec<Value> = if text.is_empty() {
                    Vec::new()
                } else if separator.is_empty() {
                    text.chars().map(|c| Value::String(c.to_string())).collect()
                } else {
                    text.split(separator.as_str())
                        .map(|part| Value::String(part.to_string()))
                        .collect()
                };
                Value::Array(parts)
            }
            CustomOperation::Join { separator } => {
                let items = value.as_array().ok_or_else(|| {
                    TransformError::new(format!("join needs an array, not {}", excerpt(value)))
                })?;
                let parts = items
                    .iter()
                    .map(|item| {
                        scalar_text(item).ok_or_else(|| {
                            TransformError::new(format!(
                                "join takes strings, numbers and booleans, not {}",
                                excerpt(item)
                            ))
                        })
                    })
                    .collect::<Result<Vec<_>, _>>()?;
                Value::String(parts.join(separator))
            }
            CustomOperation::Lookup { table, default } => {
                let key = scalar_text(value).ok_or_else(|| {
                    TransformError::new(format!(
                        "lookup takes a string, number or boolean, not {}",
                        excerpt(value)
                    ))
                })?;
                match table.get(&key).or(default.as_ref()) {
                    Some(found) => found.clone(),
                    None => {
                        return Err(TransformError::new(format!(
                            "the lookup table has no {} and no default",
                            excerpt(value)
                        )))
                    }
                }
            }
        })
    }
}

/// A string as it is, a number or boolean as its JSON text; nothing for other values.
fn scalar_text(value: &Value) -> Option<String> {
    match value {
        Value::String(text) => Some(text.clone()),
        Value::Number(number) => Some(number.to_string()),
        Value::Bool(flag) => Some(flag.to_string()),
        _ => None,
    }
}

/// A value for an error message: its JSON text, cut after 40 characters.
fn excerpt(value: &Value) -> String {
    let text = value.to_string();
    if text.chars().count() > 40 {
        format!("{}…", text.chars().take(40).collect::<String>())
    } else {
        text
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

    fn date(format: &str) -> Transformation {
        parse(Transform::DateFormat, json!({ "format": format })).expect("valid date config")
    }

    fn currency(config: Value) -> Transformation {
        parse(Transform::CurrencyConvert, config).expect("valid currency config")
    }

    fn custom(config: Value) -> Transformation {
        parse(Transform::Custom, config).expect("valid custom config")
    }

    fn applied(transformation: &Transformation, value: Value) -> Value {
        transformation
            .apply(&value)
            .unwrap_or_else(|error| panic!("{value} transforms: {error}"))
    }

    #[test]
    fn none_passes_every_value_through_unchanged() {
        for value in [
            json!("שלום 👋"),
            json!(1.5),
            json!({"a": [1, null]}),
            json!(false),
        ] {
            assert_eq!(applied(&Transformation::None, value.clone()), value);
        }
    }

    #[test]
    fn null_is_no_value_and_passes_through_every_transform() {
        for transformation in [
            date("rfc3339"),
            currency(json!({})),
            custom(json!({"operation": "lowercase"})),
            custom(json!({"operation": "lookup", "table": {}})),
        ] {
            assert_eq!(applied(&transformation, Value::Null), Value::Null);
        }
    }

    #[test]
    fn dates_in_every_accepted_form_become_rfc3339_in_utc() {
        let rfc3339 = date("rfc3339");
        for (input, expected) in [
            (json!("2024-03-05T10:00:00+02:00"), "2024-03-05T08:00:00Z"),
            (json!("2024-03-05T08:00:00Z"), "2024-03-05T08:00:00Z"),
            (
                json!("2024-03-05T08:00:00.250Z"),
                "2024-03-05T08:00:00.250Z",
            ),
            (json!("2024-03-05t08:00:00z"), "2024-03-05T08:00:00Z"),
            (json!(" 2024-03-05T08:00:00Z "), "2024-03-05T08:00:00Z"),
            // Microsoft Graph with Prefer: outlook.timezone="UTC": no zone, seven fraction digits.
            (json!("2024-03-05T08:00:00.0000000"), "2024-03-05T08:00:00Z"),
            (json!("2024-03-05 08:00:00"), "2024-03-05T08:00:00Z"),
            (json!("2024-03-05T08:00"), "2024-03-05T08:00:00Z"),
            (
                json!("2024-03-05T10:00:00.000+0200"),
                "2024-03-05T08:00:00Z",
            ),
            (json!("2024-03-05"), "2024-03-05T00:00:00Z"),
            (
                json!("/Date(1573755038314+0000)/"),
                "2019-11-14T18:10:38.314Z",
            ),
            (json!("/Date(1573755038314)/"), "2019-11-14T18:10:38.314Z"),
        ] {
            assert_eq!(applied(&rfc3339, input.clone()), json!(expected), "{input}");
        }
    }

    #[test]
    fn epochs_are_seconds_below_1e11_and_milliseconds_from_it() {
        let rfc3339 = date("rfc3339");
        for (input, expected) in [
            (json!(1_700_000_000), "2023-11-14T22:13:20Z"),
            (json!(1_700_000_000_123_i64), "2023-11-14T22:13:20.123Z"),
            (json!("1700000000"), "2023-11-14T22:13:20Z"),
            (json!(1_700_000_000.5), "2023-11-14T22:13:20.500Z"),
            // Slack's `ts`: seconds with microseconds, kept to the millisecond.
            (json!("1503435956.000247"), "2017-08-22T21:05:56Z"),
            (json!(0), "1970-01-01T00:00:00Z"),
            (json!(-86_400), "1969-12-31T00:00:00Z"),
            (json!(99_999_999_999_i64), "5138-11-16T09:46:39Z"),
            (json!(100_000_000_000_i64), "1973-03-03T09:46:40Z"),
            (json!(-100_000_000_000_i64), "1966-10-31T14:13:20Z"),
        ] {
            assert_eq!(applied(&rfc3339, input.clone()), json!(expected), "{input}");
        }
    }

    #[test]
    fn dates_are_written_in_each_output_format() {
        let input = json!("2024-03-05T23:30:00-05:00");
        assert_eq!(applied(&date("date"), input.clone()), json!("2024-03-06"));
        assert_eq!(
            applied(&date("epoch_ms"), input.clone()),
            json!(1_709_699_400_000_i64)
        );
        assert!(applied(&date("epoch_ms"), input.clone()).is_i64());
        assert_eq!(
            applied(&date("%d/%m/%Y %H:%M"), input.clone()),
            json!("06/03/2024 04:30")
        );
        assert_eq!(
            applied(&date("%A %e %B %Y, %Z"), input),
            json!("Wednesday  6 March 2024, UTC")
        );
        assert_eq!(
            applied(&date("epoch_ms"), json!(1_700_000_000)),
            json!(1_700_000_000_000_i64)
        );
    }

    #[test]
    fn a_value_that_is_not_a_date_is_an_error_never_a_null() {
        let rfc3339 = date("rfc3339");
        for input in [
            json!("tomorrow"),
            json!("2024-02-30"),
            json!("2024-13-01T00:00:00Z"),
            json!("20240305T"),
            json!(""),
            json!("1.2.3"),
            json!(true),
            json!({"dateTime": "2024-03-05T08:00:00Z"}),
            json!(["2024-03-05"]),
            json!(1e300),
            json!(u64::MAX),
            // Beyond the years RFC 3339 can write.
            json!("+12024-01-01T00:00:00Z"),
            json!(-100_000_000_000_000_i64),
        ] {
            let error = rfc3339.apply(&input).expect_err("not a date");
            assert!(error.message.contains("is not a date"), "{input}: {error}");
        }
        assert_eq!(
            rfc3339
                .apply(&json!("tomorrow"))
                .expect_err("not a date")
                .message,
            "\"tomorrow\" is not a date (RFC 3339, ISO 8601 or epoch seconds/milliseconds)"
        );
    }

    #[test]
    fn a_pattern_that_cannot_format_is_an_error_not_a_panic() {
        let broken = Transformation::DateFormat(DateFormatConfig {
            format: DateOutput::Pattern("%Q %".into()),
        });
        assert!(broken.apply(&json!("2024-03-05")).is_err());
    }

    #[test]
    fn currency_rounds_half_away_from_zero_in_decimal() {
        let two_places = currency(json!({}));
        for (input, expected) in [
            (json!(2.345), json!(2.35)),
            (json!(-2.345), json!(-2.35)),
            // 1.005 is just below 1.005 as a binary float; read as the decimal it is written as.
            (json!(1.005), json!(1.01)),
            (json!(-1.005), json!(-1.01)),
            (json!(2.344), json!(2.34)),
            (json!(0.005), json!(0.01)),
            (json!(-0.004), json!(0)),
            (json!(12), json!(12)),
            (json!("12.50"), json!(12.5)),
            (json!("-0.125"), json!(-0.13)),
        ] {
            assert_eq!(applied(&two_places, input.clone()), expected, "{input}");
        }
        assert_eq!(
            applied(&currency(json!({"decimals": 0})), json!(2.5)),
            json!(3)
        );
        assert_eq!(
            applied(&currency(json!({"decimals": 0})), json!(-2.5)),
            json!(-3)
        );
        assert_eq!(
            applied(&currency(json!({"decimals": 3})), json!(1.0005)),
            json!(1.001)
        );
    }

    #[test]
    fn currency_multiplies_divides_and_applies_the_rate_exactly() {
        // Stripe amounts are in cents.
        let cents = currency(json!({"divideBy": 100}));
        assert_eq!(applied(&cents, json!(123_456)), json!(1234.56));
        assert_eq!(applied(&cents, json!(234.5)), json!(2.35));
        assert_eq!(applied(&cents, json!(-234.5)), json!(-2.35));
        assert_eq!(applied(&cents, json!(1200)), json!(12));
        assert!(
            applied(&cents, json!(1200)).is_i64(),
            "a whole result is an integer"
        );
        let to_ils = currency(json!({"divideBy": 100, "rate": 3.7, "currency": "ILS"}));
        assert_eq!(applied(&to_ils, json!(1999)), json!(73.96)); // 19.99 × 3.7 = 73.963
        let per_thousand = currency(json!({"multiplyBy": 1.5, "divideBy": 1000, "decimals": 4}));
        assert_eq!(applied(&per_thousand, json!(3)), json!(0.0045));
        // A third is not a finite decimal: rounded once, from the exact quotient.
        let thirds = currency(json!({"divideBy": 3}));
        assert_eq!(applied(&thirds, json!(1)), json!(0.33));
        assert_eq!(applied(&thirds, json!(2)), json!(0.67));
        let negative_rate = currency(json!({"rate": -0.5}));
        assert_eq!(applied(&negative_rate, json!(0.05)), json!(-0.03));
    }

    #[test]
    fn a_value_that_is_not_an_amount_is_an_error() {
        let two_places = currency(json!({}));
        for input in [
            json!("12,50"),
            json!("12.5 ILS"),
            json!("abc"),
            json!(""),
            json!("1e3"),
            json!(true),
            json!([1]),
            json!({"amount": 1}),
        ] {
            let error = two_places.apply(&input).expect_err("not an amount");
            assert!(
                error.message.contains("is not an amount"),
                "{input}: {error}"
            );
        }
        let huge = json!("1".repeat(60));
        assert!(two_places
            .apply(&huge)
            .expect_err("too many digits")
            .message
            .contains("too many digits"));
        assert!(currency(json!({"decimals": 10}))
            .apply(&json!(1e30))
            .is_err());
    }

    #[test]
    fn a_zero_divisor_written_by_code_is_an_error_not_a_panic() {
        let config = Transformation::CurrencyConvert(CurrencyConvertConfig {
            multiply_by: None,
            divide_by: Some(0.0),
            rate: None,
            decimals: Some(200),
            currency: None,
        });
        assert!(config.apply(&json!(5)).is_err());
        let many_decimals = Transformation::CurrencyConvert(CurrencyConvertConfig {
            multiply_by: None,
            divide_by: None,
            rate: None,
            decimals: Some(255),
            currency: None,
        });
        assert!(many_decimals.apply(&json!(5)).is_err());
    }

    #[test]
    fn custom_case_and_trim_operations_change_strings_only() {
        assert_eq!(
            applied(
                &custom(json!({"operation": "lowercase"})),
                json!("ÉCOLE Straße")
            ),
            json!("école straße")
        );
        assert_eq!(
            applied(&custom(json!({"operation": "uppercase"})), json!("straße")),
            json!("STRASSE")
        );
        assert_eq!(
            applied(
                &custom(json!({"operation": "trim"})),
                json!("\u{a0} שלום עולם \n")
            ),
            json!("שלום עולם")
        );
        assert_eq!(
            applied(
                &custom(json!({"operation": "lowercase"})),
                json!("مرحبا 🎉")
            ),
            json!("مرحبا 🎉")
        );
        for operation in ["lowercase", "uppercase", "trim"] {
            let error = custom(json!({ "operation": operation }))
                .apply(&json!(42))
                .expect_err("not a string");
            assert_eq!(error.message, format!("{operation} needs a string, not 42"));
        }
    }

    #[test]
    fn custom_split_and_join_convert_between_strings_and_arrays() {
        let split = custom(json!({"operation": "split", "separator": ", "}));
        assert_eq!(applied(&split, json!("a, b,c")), json!(["a", "b,c"]));
        assert_eq!(applied(&split, json!("")), json!([]));
        assert_eq!(applied(&split, json!("a, ")), json!(["a", ""]));
        let characters = custom(json!({"operation": "split", "separator": ""}));
        assert_eq!(
            applied(&characters, json!("שלום")),
            json!(["ש", "ל", "ו", "ם"])
        );
        assert!(split.apply(&json!(["a"])).is_err());
        let join = custom(json!({"operation": "join", "separator": "; "}));
        assert_eq!(
            applied(&join, json!(["a@x.io", 7, true, "b@x.io"])),
            json!("a@x.io; 7; true; b@x.io")
        );
        assert_eq!(applied(&join, json!([])), json!(""));
        assert!(join.apply(&json!("a,b")).is_err());
        let error = join
            .apply(&json!(["a", {"email": "b"}]))
            .expect_err("object");
        assert_eq!(
            error.message,
            "join takes strings, numbers and booleans, not {\"email\":\"b\"}"
        );
        assert!(join.apply(&json!(["a", null])).is_err());
    }

    #[test]
    fn custom_lookup_maps_through_the_table_then_the_default() {
        let statuses = custom(json!({"operation": "lookup",
            "table": {"confirmed": "booked", "1": "one", "true": "yes"}, "default": "other"}));
        assert_eq!(applied(&statuses, json!("confirmed")), json!("booked"));
        assert_eq!(applied(&statuses, json!(1)), json!("one"));
        assert_eq!(applied(&statuses, json!(true)), json!("yes"));
        assert_eq!(applied(&statuses, json!("tentative")), json!("other"));
        let strict = custom(json!({"operation": "lookup", "table": {"a": {"nested": [1]}}}));
        assert_eq!(applied(&strict, json!("a")), json!({"nested": [1]}));
        let error = strict.apply(&json!("b")).expect_err("no entry");
        assert_eq!(
            error.message,
            "the lookup table has no \"b\" and no default"
        );
        assert!(strict.apply(&json!(["a"])).is_err());
    }

    #[test]
    fn long_values_are_cut_short_in_messages() {
        let error = date("date")
            .apply(&json!("x".repeat(100)))
            .expect_err("not a date");
        assert!(
            error.message.starts_with(&format!("\"{}…", "x".repeat(39))),
            "{error}"
        );
    }
}
