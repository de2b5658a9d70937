//! No input panics the engine's readers, and what they return keeps its shape, for ALL inputs.

use std::collections::BTreeMap;

use chrono::DateTime;
use http::header::LINK;
use http::{HeaderMap, HeaderValue};
use proptest::prelude::*;
use serde_json::{json, Map, Value};
use url::Url;

use super::custom_entity;
use crate::catalog::{Catalog, EntityDef, Pagination};
use crate::domain::RemoteId;
use crate::sync::{
    next_position, page_records, parse_link_next, Mapped, PagePosition, RecordMapper,
};
use crate::sync_settings::SyncSettings;
use crate::transform::{
    CurrencyConvertConfig, CustomOperation, DateFormatConfig, DateOutput, Transformation,
};

/// Keys the catalog and the generated paths use, so that paths find values.
const KEYS: &[&str] = &[
    "id",
    "items",
    "data",
    "results",
    "value",
    "start",
    "dateTime",
    "status",
    "summary",
    "0",
    "1",
    "has_more",
    "nextPageToken",
    "paging",
    "next",
    "after",
    "amount",
    "שם",
    "🚀",
    "",
];

fn key() -> impl Strategy<Value = String> {
    prop_oneof![
        3 => prop::sample::select(KEYS).prop_map(str::to_string),
        1 => "[a-zA-Z_]{1,4}",
    ]
}

/// Text shaped like what transforms and ids read (dates, epochs, decimals, JSON dates), and any.
fn text() -> impl Strategy<Value = String> {
    prop_oneof![
        "[0-9]{4}-[0-9]{2}-[0-9]{2}([T ][0-9]{2}:[0-9]{2}(:[0-9]{2}(\\.[0-9]{1,10})?)?)?(Z|z|[+-][0-9]{2}:?[0-9]{2})?",
        "[+-]?[0-9]{1,40}(\\.[0-9]{0,25})?",
        "/Date\\([+-]?[0-9]{0,22}([+-][0-9]{0,4})?\\)/",
        "\\PC{0,16}",
        any::<String>(),
        prop::sample::select(KEYS).prop_map(str::to_string),
    ]
}

fn number() -> impl Strategy<Value = Value> {
    prop_oneof![
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        any::<f64>().prop_filter_map("finite", |f| serde_json::Number::from_f64(f)
            .map(Value::Number)),
        (-200_000_000_000_000_i64..200_000_000_000_000).prop_map(Value::from),
        (-1.0e12..1.0e12_f64).prop_map(Value::from),
    ]
}

fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        number(),
        text().prop_map(Value::String),
    ];
    leaf.prop_recursive(4, 48, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::vec((key(), inner), 0..6)
                .prop_map(|members| Value::Object(members.into_iter().collect())),
        ]
    })
}

fn path() -> impl Strategy<Value = String> {
    prop::collection::vec(key(), 1..4).prop_map(|keys| keys.join("."))
}

fn factor() -> impl Strategy<Value = Option<f64>> {
    prop_oneof![
        Just(None),
        prop::sample::select(vec![
            100.0, 1000.0, 0.01, 3.0, 3.7, -0.5, 1.0e-300, 1.0e300, 0.1
        ])
        .prop_map(Some),
        any::<f64>()
            .prop_filter("a usable factor", |f| f.is_finite() && *f != 0.0)
            .prop_map(Some),
    ]
}

/// Transformations as settings parse them, and some only code can build (more decimals, odd
/// patterns, a zero divisor): `apply` must not panic on those either.
fn transformation() -> impl Strategy<Value = Transformation> {
    let date = prop_oneof![
        Just(DateOutput::Rfc3339),
        Just(DateOutput::Date),
        Just(DateOutput::EpochMs),
        prop::sample::select(vec![
            "%d/%m/%Y %H:%M:%S %z",
            "%A %e %B %Y %Z %%",
            "%C%y %j %U %w",
            "%Q",
            "%"
        ])
        .prop_map(|pattern| DateOutput::Pattern(pattern.to_string())),
    ]
    .prop_map(|format| Transformation::DateFormat(DateFormatConfig { format }));
    let currency = (
        factor(),
        factor(),
        factor(),
        prop_oneof![
            Just(None),
            (0u8..=12).prop_map(Some),
            any::<u8>().prop_map(Some)
        ],
    )
        .prop_map(|(multiply_by, divide_by, rate, decimals)| {
            Transformation::CurrencyConvert(CurrencyConvertConfig {
                multiply_by,
                divide_by,
                rate,
                decimals,
                currency: None,
            })
        });
    let separator = prop::sample::select(vec![",", "", " ", "ש", ", "]).prop_map(str::to_string);
    let table = prop::collection::btree_map(text(), json_value(), 0..4);
    let custom = prop_oneof![
        Just(CustomOperation::Lowercase),
        Just(CustomOperation::Uppercase),
        Just(CustomOperation::Trim),
        separator
            .clone()
            .prop_map(|separator| CustomOperation::Split { separator }),
        separator.prop_map(|separator| CustomOperation::Join { separator }),
        (table, prop::option::of(json_value())).prop_map(|(table, default)| {
            CustomOperation::Lookup {
                table: table.into_iter().collect::<BTreeMap<_, _>>(),
                default,
            }
        }),
    ]
    .prop_map(Transformation::Custom);
    prop_oneof![Just(Transformation::None), date, currency, custom]
}

/// Settings JSON with mappings (valid and invalid transform configs) and filters of every operator.
fn settings() -> impl Strategy<Value = SyncSettings> {
    let transform = prop::sample::select(vec![
        json!({}),
        json!({"transform": "date_format"}),
        json!({"transform": "date_format", "transformConfig": {"format": "date"}}),
        json!({"transform": "date_format", "transformConfig": {"format": "epoch_ms"}}),
        json!({"transform": "date_format", "transformConfig": {"format": "%d/%m/%Y"}}),
        json!({"transform": "date_format", "transformConfig": {"format": "soon"}}),
        json!({"transform": "currency_convert", "transformConfig": {"divideBy": 100}}),
        json!({"transform": "currency_convert", "transformConfig": {"multiplyBy": 3.7, "decimals": 4}}),
        json!({"transform": "currency_convert", "transformConfig": {"divideBy": 0}}),
        json!({"transform": "custom", "transformConfig": {"operation": "lowercase"}}),
        json!({"transform": "custom", "transformConfig": {"operation": "split", "separator": ","}}),
        json!({"transform": "custom", "transformConfig": {"operation": "join", "separator": ";"}}),
        json!({"transform": "custom", "transformConfig": {"operation": "lookup", "table": {"a": 1}}}),
        json!({"transform": "custom"}),
    ]);
    let mapping = (
        prop::sample::select(vec!["meeting", "contact"]),
        prop::sample::select(vec!["title", "startTime", "amount", "שם", "emoji🚀"]),
        path(),
        transform,
        prop::option::of(json_value()),
    )
        .prop_map(|(entity, local, remote, transform, default)| {
            let mut mapping =
                json!({"localEntity": entity, "localField": local, "remoteField": remote});
            if let (Some(target), Some(extra)) = (mapping.as_object_mut(), transform.as_object()) {
                target.extend(extra.clone());
                if let Some(default) = default {
                    target.insert("defaultValue".into(), default);
                }
            }
            mapping
        });
    let filter = (
        path(),
        prop::sample::select(vec!["equals", "not_equals", "contains", "in_list"]),
        json_value(),
    )
        .prop_map(|(field, operator, value)| json!({"field": field, "operator": operator, "value": value}));
    (
        prop::collection::vec(mapping, 0..5),
        prop::collection::vec(filter, 0..3),
    )
        .prop_map(|(mappings, filters)| {
            serde_json::from_value(json!({"fieldMappings": mappings, "filters": filters}))
                .expect("generated settings have the settings' shape")
        })
}

fn every_entity() -> Vec<EntityDef> {
    let catalog = Catalog::builtin();
    let mut entities: Vec<EntityDef> = catalog
        .iter()
        .filter_map(|(_, provider)| provider.sync.as_ref())
        .flat_map(|sync| sync.entities.values().cloned())
        .collect();
    entities.push(custom_entity(json!({
        "request": {"method": "GET", "path": "/items"}, "records": "data.0.items", "id": "שם.🚀",
        "updatedAt": "start.dateTime", "deleted": {"path": "status", "equals": 1},
        "pagination": {"type": "link_header"}
    })));
    entities
}

/// A body holding `records` at the entity's records path (so records are read), or any value.
fn body_for(entity: &EntityDef) -> impl Strategy<Value = Value> {
    let records_path = entity.records.clone();
    let id_key = entity.id.split('.').next().unwrap_or("id").to_string();
    let record = (
        json_value(),
        prop_oneof![number(), text().prop_map(Value::String), json_value()],
    )
        .prop_map(move |(record, id)| match record {
            Value::Object(mut members) => {
                members.insert(id_key.clone(), id);
                Value::Object(members)
            }
            other => other,
        });
    prop_oneof![
        3 => prop::collection::vec(record, 0..8).prop_map(move |records| {
            let mut body = Value::Array(records);
            if !records_path.is_empty() {
                for segment in records_path.rsplit('.') {
                    let mut wrapper = Map::new();
                    wrapper.insert(segment.to_string(), body);
                    body = Value::Object(wrapper);
                }
            }
            body
        }),
        1 => json_value(),
    ]
}

fn entity_and_body() -> impl Strategy<Value = (EntityDef, Value)> {
    prop::sample::select(every_entity()).prop_flat_map(|entity| {
        let body = body_for(&entity);
        (Just(entity), body)
    })
}

/// Header text: the characters links are made of, sometimes anything a header may carry.
fn link_header_text() -> impl Strategy<Value = String> {
    prop_oneof![
        "([<>;,=\" \\\\]|rel|next|prev|anchor|https?://|[a-z/?.#&%:]|\\.\\.|//|é){0,40}",
        "[ -~\u{80}-\u{10ffff}]{0,60}",
    ]
}

fn link_headers() -> impl Strategy<Value = HeaderMap> {
    prop::collection::vec(link_header_text(), 0..4).prop_map(|values| {
        let mut headers = HeaderMap::new();
        for value in values {
            if let Ok(value) = HeaderValue::from_bytes(value.as_bytes()) {
                headers.append(LINK, value);
            }
        }
        headers
    })
}

fn base_url() -> impl Strategy<Value = Url> {
    prop::sample::select(vec![
        "https://api.example.com/v1/items?page=1",
        "http://127.0.0.1:8080/a/b/",
        "https://xn--4dbrk0ce.example/שלום?x=1",
    ])
    .prop_map(|text| Url::parse(text).expect("a base URL"))
}

fn pagination_and_position() -> impl Strategy<Value = (Option<Pagination>, PagePosition)> {
    let paginations: Vec<Option<Pagination>> = std::iter::once(None)
        .chain(every_entity().into_iter().map(|entity| entity.pagination))
        .chain([
            custom_entity(json!({"request": {"method": "GET", "path": "/i"}, "records": "", "id": "id",
                                 "pagination": {"type": "offset", "param": "o", "pageSize": 1}})).pagination,
            custom_entity(json!({"request": {"method": "GET", "path": "/i"}, "records": "", "id": "id",
                                 "pagination": {"type": "page", "param": "p", "pageSize": 4000000000_u32}})).pagination,
        ])
        .collect();
    let position = prop_oneof![
        Just(PagePosition::First),
        text().prop_map(PagePosition::Cursor),
        any::<u64>().prop_map(PagePosition::Offset),
        any::<u64>().prop_map(PagePosition::Page),
        prop_oneof![
            Just("https://api.example.com/v1/items?page=2".to_string()),
            text()
        ]
        .prop_map(PagePosition::Link),
        text().prop_map(PagePosition::StartingAfter),
    ];
    (prop::sample::select(paginations), position)
}

/// `scaled × 10^-decimals` computed from a decimal text by hand, rounded half away from zero: the
/// oracle of the currency property below.
fn rounded_by_hand(text: &str, decimals: usize) -> Value {
    let (negative, unsigned) = match text.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, text),
    };
    let (whole, fraction) = unsigned.split_once('.').unwrap_or((unsigned, ""));
    let mut kept: String = fraction.chars().take(decimals).collect();
    while kept.len() < decimals {
        kept.push('0');
    }
    let mut scaled: i128 = format!("{whole}{kept}").parse().expect("digits");
    if fraction
        .chars()
        .nth(decimals)
        .is_some_and(|digit| digit >= '5')
    {
        scaled += 1;
    }
    let unit = 10i128.pow(u32::try_from(decimals).expect("few decimals"));
    let (int, frac) = (scaled / unit, scaled % unit);
    let sign = if negative && scaled != 0 { "-" } else { "" };
    if frac == 0 {
        let int = i64::try_from(int).expect("fits");
        return Value::from(if sign.is_empty() { int } else { -int });
    }
    let text = format!("{sign}{int}.{frac:0decimals$}");
    Value::from(text.parse::<f64>().expect("a float"))
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn apply_never_panics_and_its_output_has_the_transform_s_type(
        transformation in transformation(),
        value in json_value(),
    ) {
        let result = transformation.apply(&value);
        if value.is_null() {
            prop_assert_eq!(result, Ok(Value::Null));
        } else if let Ok(output) = result {
            match &transformation {
                Transformation::None => prop_assert_eq!(output, value),
                Transformation::DateFormat(DateFormatConfig { format: DateOutput::Rfc3339 }) => {
                    let text = output.as_str().unwrap_or_default();
                    prop_assert!(DateTime::parse_from_rfc3339(text).is_ok(), "{}", output);
                }
                Transformation::DateFormat(DateFormatConfig { format: DateOutput::Date }) => {
                    prop_assert_eq!(output.as_str().map(str::len), Some(10), "{}", output);
                }
                Transformation::DateFormat(DateFormatConfig { format: DateOutput::EpochMs }) => {
                    prop_assert!(output.is_i64(), "{}", output);
                }
                Transformation::DateFormat(_) => prop_assert!(output.is_string()),
                Transformation::CurrencyConvert(_) => prop_assert!(output.is_number(), "{}", output),
                Transformation::Custom(CustomOperation::Split { .. }) => prop_assert!(output.is_array()),
                Transformation::Custom(CustomOperation::Lookup { .. }) => {}
                Transformation::Custom(_) => prop_assert!(output.is_string()),
            }
        }
    }

    #[test]
    fn currency_rounds_any_decimal_as_by_hand_half_away_from_zero(
        text in "-?[0-9]{1,12}\\.[0-9]{1,8}",
        decimals in 0usize..=6,
    ) {
        let config = Transformation::CurrencyConvert(CurrencyConvertConfig {
            multiply_by: None, divide_by: None, rate: None,
            decimals: Some(u8::try_from(decimals).expect("few")), currency: None,
        });
        let expected = rounded_by_hand(&text, decimals);
        prop_assert_eq!(config.apply(&Value::String(text.clone())), Ok(expected.clone()));
        // The same amount as a JSON number, when the float reads back as the same decimal.
        if let Ok(number) = serde_json::from_str::<Value>(&text) {
            if serde_json::to_string(&number).ok().as_deref() == Some(text.as_str()) {
                prop_assert_eq!(config.apply(&number), Ok(expected));
            }
        }
    }

    #[test]
    fn whole_cents_divided_by_100_are_exact(cents in -1_000_000_000_000_000_i64..1_000_000_000_000_000) {
        let config = Transformation::CurrencyConvert(CurrencyConvertConfig {
            multiply_by: None, divide_by: Some(100.0), rate: None, decimals: None, currency: None,
        });
        let sign = if cents < 0 { "-" } else { "" };
        let text = format!("{sign}{}.{:02}", cents.unsigned_abs() / 100, cents.unsigned_abs() % 100);
        prop_assert_eq!(config.apply(&Value::from(cents)), Ok(rounded_by_hand(&text, 2)));
    }

    #[test]
    fn millisecond_epochs_read_back_through_rfc3339_unchanged(
        milliseconds in prop_oneof![
            100_000_000_000_i64..253_402_300_799_999,
            -62_167_219_200_000_i64..=-100_000_000_000,
        ],
    ) {
        let epoch_ms = Transformation::DateFormat(DateFormatConfig { format: DateOutput::EpochMs });
        let rfc3339 = Transformation::DateFormat(DateFormatConfig { format: DateOutput::Rfc3339 });
        let written = rfc3339.apply(&Value::from(milliseconds));
        prop_assert!(written.is_ok(), "{:?}", written);
        let back = epoch_ms.apply(&written.unwrap_or_default());
        prop_assert_eq!(back, Ok(Value::from(milliseconds)));
    }

    #[test]
    fn map_never_panics_and_data_holds_exactly_the_mapped_fields(
        settings in settings(),
        entity in prop::sample::select(vec!["meeting", "contact", "task"]),
        remote in json_value(),
    ) {
        let Ok(mapper) = RecordMapper::new(&settings, entity, None) else {
            return Ok(());
        };
        let mut expected: Vec<&str> = Vec::new();
        for mapping in settings.field_mappings.iter().filter(|m| m.local_entity == entity) {
            if !expected.contains(&mapping.local_field.as_str()) {
                expected.push(&mapping.local_field);
            }
        }
        if let Ok(Mapped::Record(data)) = mapper.map(&remote) {
            if expected.is_empty() {
                prop_assert_eq!(Value::Object(data), remote);
            } else {
                prop_assert_eq!(data.keys().map(String::as_str).collect::<Vec<_>>(), expected);
            }
        }
    }

    #[test]
    fn page_records_never_panics_and_returns_one_item_per_record(
        (entity, body) in entity_and_body(),
    ) {
        if let Ok(items) = page_records(&entity, &body) {
            let array = if entity.records.is_empty() {
                Some(&body)
            } else {
                crate::inbound::path::value_at(&body, &entity.records)
            };
            let expected = match array {
                // An optional records array may be absent: no records.
                None if entity.records_optional => Some(0),
                found => found.and_then(Value::as_array).map(Vec::len),
            };
            prop_assert_eq!(Some(items.len()), expected);
            for (index, item) in items.iter().enumerate() {
                match item {
                    Ok(record) => prop_assert!(RemoteId::parse(&record.id).is_ok(), "{}", record.id),
                    Err(error) => prop_assert_eq!(error.index, index),
                }
            }
        }
    }

    #[test]
    fn parse_link_next_never_panics_and_gives_only_http_urls(
        headers in link_headers(),
        base in base_url(),
    ) {
        if let Some(next) = parse_link_next(&headers, &base) {
            prop_assert!(matches!(next.scheme(), "http" | "https"), "{}", next);
        }
    }

    #[test]
    fn parse_link_next_finds_the_first_link_whose_rel_lists_next(
        links in prop::collection::vec(
            ("[a-z0-9]{1,8}", prop::collection::vec(prop::sample::select(vec!["next", "prev", "last", "NEXT", "nextish", "first"]), 1..3), any::<bool>()),
            0..5,
        ),
        base in base_url(),
    ) {
        let header = links
            .iter()
            .map(|(path, rels, quoted)| {
                let rel = rels.join(" ");
                if *quoted || rels.len() > 1 { format!("</{path}>; rel=\"{rel}\"") } else { format!("</{path}>; rel={rel}") }
            })
            .collect::<Vec<_>>()
            .join(", ");
        let mut headers = HeaderMap::new();
        if let Ok(value) = HeaderValue::from_str(&header) {
            headers.insert(LINK, value);
        }
        let expected = links
            .iter()
            .find(|(_, rels, _)| rels.iter().any(|rel| rel.eq_ignore_ascii_case("next")))
            .and_then(|(path, _, _)| base.join(&format!("/{path}")).ok());
        prop_assert_eq!(parse_link_next(&headers, &base), expected);
    }

    #[test]
    fn next_position_never_panics_and_never_asks_for_the_same_page_again(
        (pagination, position) in pagination_and_position(),
        body in json_value(),
        headers in link_headers(),
        records_on_page in prop_oneof![0usize..300, any::<usize>()],
        last_id in prop::option::of(text()),
        base in base_url(),
    ) {
        // The runner requests a link position at that very URL.
        let request_url = match &position {
            PagePosition::Link(link) => Url::parse(link).unwrap_or(base),
            _ => base,
        };
        let next = next_position(pagination.as_ref(), &position, &body, &headers, records_on_page, last_id.as_deref(), &request_url);
        prop_assert_ne!(next.as_ref(), Some(&position));
        prop_assert_ne!(next, Some(PagePosition::First));
    }
}

#[test]
fn the_generated_entities_cover_every_pagination_type() {
    let kinds: Vec<&str> = every_entity()
        .iter()
        .filter_map(|entity| entity.pagination.as_ref())
        .map(|pagination| match pagination {
            Pagination::Cursor { .. } => "cursor",
            Pagination::Offset { .. } => "offset",
            Pagination::Page { .. } => "page",
            Pagination::LinkHeader {} => "link_header",
            Pagination::StartingAfter { .. } => "starting_after",
        })
        .collect();
    for kind in ["cursor", "offset", "page", "link_header", "starting_after"] {
        assert!(kinds.contains(&kind), "{kind}");
    }
}
