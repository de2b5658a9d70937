//! A local provider API for sync tests: one data set of records served under every pagination
//! style the catalog knows, with a Google-style sync token (and its 410), an updated-since filter,
//! and injectable failures (a status for the next requests, with `Retry-After`). Every request is
//! recorded (path and query).

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use axum::extract::{Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde_json::{json, Value};

#[derive(Default)]
struct Data {
    /// id → record (every record has `id`, `updated` and whatever the test puts in it).
    records: BTreeMap<String, Value>,
    /// Deleted ids, in the order of the change log.
    deleted: BTreeMap<String, u64>,
    /// id → change sequence number of its last change.
    changed_at: HashMap<String, u64>,
    sequence: u64,
    /// Sync tokens below this are expired (410).
    tokens_valid_from: u64,
    failures: VecDeque<(u16, Option<u64>)>,
    /// The next requests are held this long before they are answered.
    stalls: VecDeque<std::time::Duration>,
    requests: Vec<(std::time::Instant, String)>,
    page_size: usize,
}

#[derive(Clone, Default)]
pub struct LocalProvider {
    data: Arc<Mutex<Data>>,
    url: String,
}

impl LocalProvider {
    /// Starts the server on a free port with `count` records `r0001…` (`page_size` per page).
    pub async fn start(count: usize, page_size: usize) -> LocalProvider {
        let provider = LocalProvider::default();
        {
            let mut data = provider.data.lock().expect("lock");
            data.page_size = page_size;
            for i in 1..=count {
                let id = format!("r{i:04}");
                let record = json!({"id": id, "name": format!("Record {i}"), "amount": i * 100,
                                    "status": "active"});
                upsert(&mut data, record);
            }
        }
        let app = Router::new()
            .route("/cursor", get(cursor))
            .route("/offset", get(offset))
            .route("/page", get(page))
            .route("/link", get(link))
            .route("/stripe", get(stripe))
            .route("/since", get(since))
            .with_state(provider.clone());
        let listener = tokio::net::TcpListener::bind(SocketAddr::from(([127, 0, 0, 1], 0)))
            .await
            .expect("bind");
        let url = format!("http://{}", listener.local_addr().expect("address"));
        tokio::spawn(async move { axum::serve(listener, app).await });
        LocalProvider { url, ..provider }
    }

    pub fn url(&self) -> &str {
        &self.url
    }

    /// Adds or replaces a record (its `id` names it); it counts as changed now.
    pub fn put(&self, record: Value) {
        upsert(&mut self.data.lock().expect("lock"), record);
    }

    /// Changes one field of a record.
    pub fn change(&self, id: &str, field: &str, value: Value) {
        let mut data = self.data.lock().expect("lock");
        let mut record = data.records.get(id).cloned().expect("record");
        record[field] = value;
        upsert(&mut data, record);
    }

    pub fn delete(&self, id: &str) {
        let mut data = self.data.lock().expect("lock");
        data.records.remove(id);
        data.sequence += 1;
        let sequence = data.sequence;
        data.deleted.insert(id.to_string(), sequence);
        data.changed_at.insert(id.to_string(), sequence);
    }

    /// Every sync token issued so far answers 410 from now on.
    pub fn expire_sync_tokens(&self) {
        let mut data = self.data.lock().expect("lock");
        data.tokens_valid_from = data.sequence + 1;
    }

    /// The next `count` requests answer `status` (with `Retry-After` when given).
    pub fn fail_next(&self, status: u16, count: usize, retry_after: Option<u64>) {
        let mut data = self.data.lock().expect("lock");
        for _ in 0..count {
            data.failures.push_back((status, retry_after));
        }
    }

    /// The next `count` requests are held for `hold` before they are answered.
    pub fn stall_next(&self, count: usize, hold: std::time::Duration) {
        let mut data = self.data.lock().expect("lock");
        for _ in 0..count {
            data.stalls.push_back(hold);
        }
    }

    /// Every request so far, as `path?query`.
    pub fn requests(&self) -> Vec<String> {
        let data = self.data.lock().expect("lock");
        data.requests.iter().map(|(_, r)| r.clone()).collect()
    }

    /// Every request so far with when it arrived.
    pub fn timed_requests(&self) -> Vec<(std::time::Instant, String)> {
        self.data.lock().expect("lock").requests.clone()
    }

    pub fn ids(&self) -> Vec<String> {
        self.data
            .lock()
            .expect("lock")
            .records
            .keys()
            .cloned()
            .collect()
    }
}

fn upsert(data: &mut Data, mut record: Value) {
    data.sequence += 1;
    let id = record["id"].as_str().expect("id").to_string();
    let updated = chrono::Utc::now() + chrono::Duration::milliseconds(data.sequence as i64);
    record["updated"] = Value::String(updated.to_rfc3339_opts(chrono::SecondsFormat::Millis, true));
    data.deleted.remove(&id);
    data.changed_at.insert(id.clone(), data.sequence);
    data.records.insert(id, record);
}

/// Records the request, holds it when a stall is due, answers an injected failure when one is.
async fn begin(provider: &LocalProvider, uri: &Uri) -> Result<(Vec<Value>, usize), Response> {
    let stall = {
        let mut data = provider.data.lock().expect("lock");
        data.requests
            .push((std::time::Instant::now(), uri.to_string()));
        data.stalls.pop_front()
    };
    if let Some(hold) = stall {
        tokio::time::sleep(hold).await;
    }
    let mut data = provider.data.lock().expect("lock");
    if let Some((status, retry_after)) = data.failures.pop_front() {
        let mut response = (
            StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
            Json(json!({"error": "injected"})),
        )
            .into_response();
        if let Some(seconds) = retry_after {
            response
                .headers_mut()
                .insert("retry-after", HeaderValue::from(seconds));
        }
        return Err(response);
    }
    Ok((data.records.values().cloned().collect(), data.page_size))
}

fn number(query: &HashMap<String, String>, name: &str, default: usize) -> usize {
    query
        .get(name)
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// Google Calendar style: `pageToken` (an offset), `nextPageToken`, and on the last page
/// `nextSyncToken`; with `syncToken`, the changes since it (deletions as `status: cancelled`),
/// or 410 when it expired.
async fn cursor(
    State(provider): State<LocalProvider>,
    uri: Uri,
    Query(query): Query<HashMap<String, String>>,
) -> Result<Response, Response> {
    let (records, size) = begin(&provider, &uri).await?;
    let (items, token_now) = {
        let data = provider.data.lock().expect("lock");
        match query.get("syncToken") {
            Some(token) => {
                let since: u64 = token.parse().unwrap_or(0);
                if since < data.tokens_valid_from {
                    return Ok(
                        (StatusCode::GONE, Json(json!({"error": "fullSyncRequired"})))
                            .into_response(),
                    );
                }
                let mut changes: Vec<Value> = records
                    .into_iter()
                    .filter(|r| {
                        data.changed_at
                            .get(r["id"].as_str().unwrap_or(""))
                            .is_some_and(|at| *at > since)
                    })
                    .collect();
                for (id, at) in &data.deleted {
                    if *at > since {
                        changes.push(json!({"id": id, "status": "cancelled"}));
                    }
                }
                (changes, data.sequence)
            }
            None => (records, data.sequence),
        }
    };
    let start = number(&query, "pageToken", 0);
    let page: Vec<Value> = items.iter().skip(start).take(size).cloned().collect();
    let mut body = json!({"items": page});
    if start + size < items.len() {
        body["nextPageToken"] = Value::String((start + size).to_string());
    } else {
        body["nextSyncToken"] = Value::String(token_now.to_string());
    }
    Ok(Json(body).into_response())
}

/// `offset` + `limit`, records under `results`.
async fn offset(
    State(provider): State<LocalProvider>,
    uri: Uri,
    Query(query): Query<HashMap<String, String>>,
) -> Result<Response, Response> {
    let (records, size) = begin(&provider, &uri).await?;
    let start = number(&query, "offset", 0);
    let limit = number(&query, "limit", size);
    let page: Vec<Value> = records.into_iter().skip(start).take(limit).collect();
    Ok(Json(json!({"results": page})).into_response())
}

/// `page` (from 1) + `per_page` (or the provider's own size), the body itself the array.
async fn page(
    State(provider): State<LocalProvider>,
    uri: Uri,
    Query(query): Query<HashMap<String, String>>,
) -> Result<Response, Response> {
    let (records, size) = begin(&provider, &uri).await?;
    let number_of = number(&query, "page", 1).max(1);
    let per_page = number(&query, "per_page", size);
    let page: Vec<Value> = records
        .into_iter()
        .skip((number_of - 1) * per_page)
        .take(per_page)
        .collect();
    Ok(Json(Value::Array(page)).into_response())
}

/// RFC 8288: the next page as a relative `Link` (the array as the body).
async fn link(
    State(provider): State<LocalProvider>,
    uri: Uri,
    Query(query): Query<HashMap<String, String>>,
) -> Result<Response, Response> {
    let (records, size) = begin(&provider, &uri).await?;
    let number_of = number(&query, "p", 1).max(1);
    let page: Vec<Value> = records
        .iter()
        .skip((number_of - 1) * size)
        .take(size)
        .cloned()
        .collect();
    let mut headers = HeaderMap::new();
    if number_of * size < records.len() {
        let link = format!(
            "</link?p={}>; rel=\"next\", </link?p=1>; rel=\"first\"",
            number_of + 1
        );
        headers.insert("link", HeaderValue::from_str(&link).expect("header"));
    }
    Ok((headers, Json(Value::Array(page))).into_response())
}

/// Stripe: `starting_after` (an id) + `limit`, `{data, has_more}`.
async fn stripe(
    State(provider): State<LocalProvider>,
    uri: Uri,
    Query(query): Query<HashMap<String, String>>,
) -> Result<Response, Response> {
    let (records, size) = begin(&provider, &uri).await?;
    let limit = number(&query, "limit", size);
    let start = match query.get("starting_after") {
        Some(after) => records
            .iter()
            .position(|r| r["id"] == after.as_str())
            .map(|i| i + 1)
            .unwrap_or(records.len()),
        None => 0,
    };
    let page: Vec<Value> = records.iter().skip(start).take(limit).cloned().collect();
    let has_more = start + limit < records.len();
    Ok(Json(json!({"data": page, "has_more": has_more})).into_response())
}

/// Updated since `updatedMin` (RFC 3339), inclusive, all in one answer under `items`.
async fn since(
    State(provider): State<LocalProvider>,
    uri: Uri,
    Query(query): Query<HashMap<String, String>>,
) -> Result<Response, Response> {
    let (records, _) = begin(&provider, &uri).await?;
    let after = query
        .get("updatedMin")
        .and_then(|raw| chrono::DateTime::parse_from_rfc3339(raw).ok());
    let items: Vec<Value> = records
        .into_iter()
        .filter(|r| match after {
            None => true,
            Some(after) => r["updated"]
                .as_str()
                .and_then(|u| chrono::DateTime::parse_from_rfc3339(u).ok())
                .is_some_and(|u| u >= after),
        })
        .collect();
    Ok(Json(json!({"items": items})).into_response())
}
