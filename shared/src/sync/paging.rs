//! Walking the pages of one listing. [`page_request`] says what a request for a position adds,
//! [`next_position`] reads a response for the next position; the runner saves the position after
//! every page (it is serialised into its checkpoint), so a resumed run asks for the same page.
//!
//! Stop rules: no next cursor (absent, `null`, `""`); for `offset` and `page` a page with fewer than
//! `pageSize` records; no `Link: <…>; rel="next"`; `hasMore` not `true`. Beyond the spec, paging
//! also stops where continuing would ask for the same page again (a cursor, link or
//! `starting_after` id equal to the one just sent, or an empty page), which would otherwise loop
//! until the run times out; and at a position that does not fit the pagination (a checkpoint from
//! before the catalog changed) it restarts from the first page.

use http::HeaderMap;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use url::Url;

use super::token_text;
use crate::catalog::Pagination;
use crate::inbound::path::value_at;

/// Where a listing is: the page to ask for next.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PagePosition {
    /// The first page: the request as the entity defines it.
    First,
    /// The cursor to send as `param`.
    Cursor(String),
    /// The number of records seen so far.
    Offset(u64),
    /// The page number, from 1.
    Page(u64),
    /// The absolute URL of the next page from a `Link` header.
    Link(String),
    /// The id of the last record seen (Stripe).
    StartingAfter(String),
}

/// What a page's request adds to the entity's request.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct PageRequest {
    /// Query parameters, replacing any of the entity's `request.params` of the same name.
    pub query: Vec<(String, String)>,
    /// A `link_header` next URL replaces the whole request URL, query included: it is requested
    /// as given (the entity's params and `query` are not added again).
    pub url: Option<Url>,
}

/// Whether `position` is one `pagination` produces: `First` always, the others only with their
/// own pagination type (`Page` from 1, `Link` an absolute http(s) URL).
pub fn position_fits(pagination: Option<&Pagination>, position: &PagePosition) -> bool {
    match (pagination, position) {
        (_, PagePosition::First) => true,
        (Some(Pagination::Cursor { .. }), PagePosition::Cursor(cursor)) => !cursor.is_empty(),
        (Some(Pagination::Offset { .. }), PagePosition::Offset(_)) => true,
        (Some(Pagination::Page { .. }), PagePosition::Page(page)) => *page >= 1,
        (Some(Pagination::LinkHeader {}), PagePosition::Link(url)) => {
            absolute_http_url(url).is_some()
        }
        (Some(Pagination::StartingAfter { .. }), PagePosition::StartingAfter(id)) => !id.is_empty(),
        _ => false,
    }
}

/// The parameters (or URL) of the request for `position`. The first page of `offset` sends
/// `param=0` and of `page` `param=1`; the size parameter (`limitParam`, `sizeParam`) is sent with
/// every page when the catalog declares one. A pagination without `param` sends no position
/// parameter: the entity's request carries it as a `{page.*}` placeholder ([`page_values`]).
/// A position that does not fit is the first page.
pub fn page_request(pagination: Option<&Pagination>, position: &PagePosition) -> PageRequest {
    let position = fitting(pagination, position);
    let Some(pagination) = pagination else {
        return PageRequest::default();
    };
    let pairs = |param: &Option<String>, value: String, size: Option<(&Option<String>, u32)>| {
        let mut query: Vec<(String, String)> = param
            .as_ref()
            .map(|name| (name.clone(), value))
            .into_iter()
            .collect();
        if let Some((Some(size_param), page_size)) = size {
            query.push((size_param.clone(), page_size.to_string()));
        }
        PageRequest { query, url: None }
    };
    match (pagination, position) {
        (Pagination::Cursor { param, .. }, PagePosition::Cursor(cursor)) => {
            pairs(param, cursor.clone(), None)
        }
        (
            Pagination::Offset {
                param,
                limit_param,
                page_size,
            },
            position,
        ) => pairs(
            param,
            offset_of(position).to_string(),
            Some((limit_param, *page_size)),
        ),
        (
            Pagination::Page {
                param,
                size_param,
                page_size,
            },
            position,
        ) => pairs(
            param,
            page_number_of(position).to_string(),
            Some((size_param, *page_size)),
        ),
        (Pagination::LinkHeader {}, PagePosition::Link(url)) => PageRequest {
            query: Vec::new(),
            url: absolute_http_url(url),
        },
        (Pagination::StartingAfter { param, .. }, PagePosition::StartingAfter(id)) => PageRequest {
            query: vec![(param.clone(), id.clone())],
            url: None,
        },
        _ => PageRequest::default(),
    }
}

/// The `{page.*}` values of the request for `position`: `cursor` (the cursor, `null` on the
/// first page) for cursor pagination; `offset` (records read so far, from 0), `start` (one more
/// than `offset`, for 1-based APIs such as QuickBooks' `STARTPOSITION`) and `size` for offset
/// pagination;
/// `number` (from 1) and `size` for page pagination. Other paginations have none.
pub fn page_values(pagination: Option<&Pagination>, position: &PagePosition) -> Map<String, Value> {
    let position = fitting(pagination, position);
    let mut values = Map::new();
    match pagination {
        Some(Pagination::Cursor { .. }) => {
            let cursor = match position {
                PagePosition::Cursor(cursor) => Value::String(cursor.clone()),
                _ => Value::Null,
            };
            values.insert("cursor".into(), cursor);
        }
        Some(Pagination::Offset { page_size, .. }) => {
            let offset = offset_of(position);
            values.insert("offset".into(), offset.into());
            values.insert("start".into(), offset.saturating_add(1).into());
            values.insert("size".into(), (*page_size).into());
        }
        Some(Pagination::Page { page_size, .. }) => {
            values.insert("number".into(), page_number_of(position).into());
            values.insert("size".into(), (*page_size).into());
        }
        Some(Pagination::LinkHeader {} | Pagination::StartingAfter { .. }) | None => {}
    }
    values
}

fn offset_of(position: &PagePosition) -> u64 {
    match position {
        PagePosition::Offset(offset) => *offset,
        _ => 0,
    }
}

fn page_number_of(position: &PagePosition) -> u64 {
    match position {
        PagePosition::Page(page) => *page,
        _ => 1,
    }
}

/// After the page at `position`: where the next one is, or `None` when this was the last.
/// `records_on_page` counts every element of the page's records array (with or without a readable
/// id), `last_record_id` is the id of its last record with one, `request_url` the URL the page was
/// requested at (relative `Link` targets resolve against it).
pub fn next_position(
    pagination: Option<&Pagination>,
    position: &PagePosition,
    body: &Value,
    headers: &HeaderMap,
    records_on_page: usize,
    last_record_id: Option<&str>,
    request_url: &Url,
) -> Option<PagePosition> {
    let position = fitting(pagination, position);
    match pagination? {
        Pagination::Cursor { next, .. } => {
            let cursor = token_text(value_at(body, next))?;
            let repeated = matches!(position, PagePosition::Cursor(sent) if *sent == cursor);
            (!repeated).then_some(PagePosition::Cursor(cursor))
        }
        Pagination::Offset { page_size, .. } => {
            let seen = offset_of(position);
            let full = full_page(records_on_page, *page_size);
            full.then(|| seen.checked_add(u64::try_from(records_on_page).ok()?))
                .flatten()
                .map(PagePosition::Offset)
        }
        Pagination::Page { page_size, .. } => {
            let page = page_number_of(position);
            let full = full_page(records_on_page, *page_size);
            full.then(|| page.checked_add(1))
                .flatten()
                .map(PagePosition::Page)
        }
        Pagination::LinkHeader {} => {
            let next = parse_link_next(headers, request_url)?;
            (next != *request_url).then(|| PagePosition::Link(next.to_string()))
        }
        Pagination::StartingAfter { has_more, .. } => {
            if value_at(body, has_more) != Some(&Value::Bool(true)) {
                return None;
            }
            let last = last_record_id.filter(|id| !id.is_empty())?;
            let repeated = matches!(position, PagePosition::StartingAfter(sent) if sent == last);
            (!repeated).then(|| PagePosition::StartingAfter(last.to_string()))
        }
    }
}

/// A page of at least `page_size` records is not the last; an empty one always is.
fn full_page(records_on_page: usize, page_size: u32) -> bool {
    records_on_page > 0
        && u64::try_from(records_on_page).unwrap_or(u64::MAX) >= u64::from(page_size)
}

fn fitting<'p>(pagination: Option<&Pagination>, position: &'p PagePosition) -> &'p PagePosition {
    if position_fits(pagination, position) {
        position
    } else {
        &PagePosition::First
    }
}

fn absolute_http_url(text: &str) -> Option<Url> {
    Url::parse(text)
        .ok()
        .filter(|url| matches!(url.scheme(), "http" | "https"))
}

/// The target of the first RFC 8288 link with the relation type `next` in `headers` (every `Link`
/// header, each a comma-separated list), resolved against `base`. `rel` may be quoted or not and
/// hold several relation types (`rel="next last"`), compared case-insensitively; only a link's first
/// `rel` counts (RFC 8288 §3.3); a link with an `anchor` is about another resource and is passed
/// over, as are targets that do not resolve to an http(s) URL.
pub fn parse_link_next(headers: &HeaderMap, base: &Url) -> Option<Url> {
    headers
        .get_all(http::header::LINK)
        .iter()
        .filter_map(|value| std::str::from_utf8(value.as_bytes()).ok())
        .flat_map(link_values)
        .filter(|link| !link.anchored && link.rel.as_deref().is_some_and(has_next))
        .find_map(|link| {
            base.join(link.target.trim())
                .ok()
                .filter(|url| matches!(url.scheme(), "http" | "https"))
        })
}

fn has_next(rel: &str) -> bool {
    rel.split_ascii_whitespace()
        .any(|relation| relation.eq_ignore_ascii_case("next"))
}

/// One `<target>; param=value; …` of a `Link` header.
#[derive(Debug, PartialEq)]
struct LinkValue<'h> {
    target: &'h str,
    rel: Option<String>,
    anchored: bool,
}

/// The link values of one header value. Malformed parts are skipped up to the next link, so one bad
/// link does not hide the others.
fn link_values(header: &str) -> Vec<LinkValue<'_>> {
    let mut links = Vec::new();
    let mut rest = header;
    loop {
        rest = rest.trim_start_matches(|c: char| c == ',' || c.is_ascii_whitespace());
        if rest.is_empty() {
            return links;
        }
        let Some(opened) = rest.strip_prefix('<') else {
            rest = after_next_comma(rest);
            continue;
        };
        let Some((target, after_target)) = opened.split_once('>') else {
            return links;
        };
        rest = after_target;
        let mut link = LinkValue {
            target,
            rel: None,
            anchored: false,
        };
        while let Some(parameter) = rest.trim_start().strip_prefix(';') {
            let (name, value, after) = link_parameter(parameter);
            rest = after;
            if name.eq_ignore_ascii_case("rel") && link.rel.is_none() {
                link.rel = Some(value.unwrap_or_default());
            } else if name.eq_ignore_ascii_case("anchor") {
                link.anchored = true;
            }
        }
        links.push(link);
        rest = after_next_comma(rest);
    }
}

/// One `name[=value]` after a `;`: its name, its value (a quoted string unescaped, or a token), and
/// the text after it.
fn link_parameter(text: &str) -> (&str, Option<String>, &str) {
    let text = text.trim_start();
    let name_end = text
        .find(|c: char| matches!(c, '=' | ';' | ',') || c.is_ascii_whitespace())
        .unwrap_or(text.len());
    let (name, rest) = text.split_at(name_end);
    let Some(rest) = rest.trim_start().strip_prefix('=') else {
        return (name, None, rest);
    };
    let rest = rest.trim_start();
    if let Some(quoted) = rest.strip_prefix('"') {
        let (value, after) = quoted_string(quoted);
        return (name, Some(value), after);
    }
    let value_end = rest.find([';', ',']).unwrap_or(rest.len());
    let (value, after) = rest.split_at(value_end);
    (name, Some(value.trim().to_string()), after)
}

/// The content of a quoted string whose opening quote is already read (`\x` is `x`), and the text
/// after its closing quote (none when it is not closed).
fn quoted_string(text: &str) -> (String, &str) {
    let mut value = String::new();
    let mut chars = text.char_indices();
    while let Some((at, c)) = chars.next() {
        match c {
            '"' => return (value, &text[at + 1..]),
            '\\' => {
                if let Some((_, escaped)) = chars.next() {
                    value.push(escaped);
                }
            }
            other => value.push(other),
        }
    }
    (value, "")
}

/// The text after the next comma that is not inside a quoted string (empty when there is none).
fn after_next_comma(text: &str) -> &str {
    let mut quoted = false;
    let mut escaped = false;
    for (at, c) in text.char_indices() {
        match c {
            _ if escaped => escaped = false,
            '\\' if quoted => escaped = true,
            '"' => quoted = !quoted,
            ',' if !quoted => return &text[at + 1..],
            _ => {}
        }
    }
    ""
}
