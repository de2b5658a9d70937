//! A local provider API for sync tests: one data set of records served under every pagination
//! style the catalog knows, with a Google-style sync token (and its 410), an updated-since filter,
//! and injectable failures (a status for the next requests, with `Retry-After`). Every request is
//! recorded (path and query, and a JSON body). Two routes take the shape of real APIs whose paging
//! is not a parameter of its own: QuickBooks' query statement (`/v3/company/{realmId}/query`)
//! and monday's GraphQL `items_page` (`POST /v2`).

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use axum::extract::Path;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
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
            .route("/v3/company/{realm}/query", get(quickbooks))
            .route("/v2", post(monday))
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

    /// Every request so far, as `path?query` (and ` ` + the body for a JSON body).
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
async fn begin(
    provider: &LocalProvider,
    uri: &Uri,
    body: Option<&Value>,
) -> Result<(Vec<Value>, usize), Response> {
    let stall = {
        let mut data = provider.data.lock().expect("lock");
        let request = match body {
            Some(body) => format!("{uri} {body}"),
            None => uri.to_string(),
        };
        data.requests.push((std::time::Instant::now(), request));
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
    let (records, size) = begin(&provider, &uri, None).await?;
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
    let (records, size) = begin(&provider, &uri, None).await?;
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
    let (records, size) = begin(&provider, &uri, None).await?;
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
    let (records, size) = begin(&provider, &uri, None).await?;
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
    let (records, size) = begin(&provider, &uri, None).await?;
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
    let (records, _) = begin(&provider, &uri, None).await?;
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

/// The answer to a request the real API would refuse: its status and a message.
fn refused(status: StatusCode, message: &str) -> Response {
    (status, Json(json!({"error": message}))).into_response()
}

/// QuickBooks Online's query endpoint: `query` must be exactly the statement the catalog sends
/// (inactive customers included), paged by `STARTPOSITION` (from 1) and `MAXRESULTS` (≤ 1,000),
/// with a Bearer token. Records are QuickBooks customers (`Id`, `DisplayName`, `Balance`,
/// `Active` false for a record whose `status` is `inactive`, `MetaData.LastUpdatedTime`); a
/// page with no customers is `{"QueryResponse": {}}`, as QuickBooks answers.
async fn quickbooks(
    State(provider): State<LocalProvider>,
    Path(realm): Path<String>,
    uri: Uri,
    headers: HeaderMap,
    Query(query): Query<HashMap<String, String>>,
) -> Result<Response, Response> {
    let (records, _) = begin(&provider, &uri, None).await?;
    if !bearer(&headers) || !realm.chars().all(|c| c.is_ascii_digit()) {
        return Err(refused(StatusCode::UNAUTHORIZED, "AuthenticationFailed"));
    }
    let statement = query.get("query").map(String::as_str).unwrap_or("");
    let prefix = "select * from Customer where Active IN (true, false) STARTPOSITION ";
    let Some((start, max)) = statement
        .strip_prefix(prefix)
        .and_then(|rest| rest.split_once(" MAXRESULTS "))
        .and_then(|(start, max)| Some((start.parse::<usize>().ok()?, max.parse::<usize>().ok()?)))
        .filter(|(start, max)| *start >= 1 && (1..=1000).contains(max))
    else {
        return Err(refused(StatusCode::BAD_REQUEST, "QueryParserError"));
    };
    let customers: Vec<Value> = records
        .iter()
        .skip(start - 1)
        .take(max)
        .map(|r| {
            json!({"Id": r["id"], "DisplayName": r["name"], "Balance": r["amount"],
                   "Active": r["status"] != "inactive",
                   "MetaData": {"CreateTime": r["updated"], "LastUpdatedTime": r["updated"]}})
        })
        .collect();
    let mut response = json!({"QueryResponse": {}, "time": chrono::Utc::now().to_rfc3339()});
    if !customers.is_empty() {
        response["QueryResponse"] =
            json!({"Customer": customers, "startPosition": start, "maxResults": customers.len()});
    }
    Ok(Json(response).into_response())
}

fn bearer(headers: &HeaderMap) -> bool {
    headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("Bearer ") && v.len() > 7)
}

/// monday.com's GraphQL endpoint for `boards(ids: $board) { items_page(limit, cursor: $cursor) }`:
/// a JSON POST with the token as the bare `Authorization` value, `variables.board` one board id,
/// `variables.cursor` null for the first page or the cursor the previous page answered. Items
/// are `{id, name, state, updated_at, column_values}`; the last page's cursor is null.
async fn monday(
    State(provider): State<LocalProvider>,
    uri: Uri,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Result<Response, Response> {
    let request: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    let (records, _) = begin(&provider, &uri, Some(&request)).await?;
    let token = headers.get("authorization").and_then(|v| v.to_str().ok());
    let json_body = headers
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"));
    if token.is_none_or(|t| t.is_empty() || t.starts_with("Bearer ")) || !json_body {
        return Err(refused(StatusCode::UNAUTHORIZED, "Not Authenticated"));
    }
    let query = request["query"].as_str().unwrap_or("");
    let limit = query
        .split_once("items_page(limit: ")
        .and_then(|(_, rest)| rest.split(|c: char| !c.is_ascii_digit()).next())
        .and_then(|n| n.parse::<usize>().ok())
        .filter(|n| (1..=500).contains(n));
    let board = request["variables"]["board"].as_array().map(Vec::as_slice);
    let (Some(limit), Some([Value::String(_)])) = (limit, board) else {
        return Ok(Json(
            json!({"errors": [{"message": "Field 'items_page' needs a board and a limit"}]}),
        )
        .into_response());
    };
    let start = match &request["variables"]["cursor"] {
        Value::Null => 0,
        Value::String(cursor) => match cursor.strip_prefix("cur-").and_then(|n| n.parse().ok()) {
            Some(start) => start,
            None => {
                return Ok(Json(json!({"errors": [{"message": "CursorException"}]})).into_response())
            }
        },
        _ => {
            return Ok(
                Json(json!({"errors": [{"message": "cursor must be a String"}]})).into_response(),
            )
        }
    };
    let items: Vec<Value> = records
        .iter()
        .skip(start)
        .take(limit)
        .map(|r| {
            json!({"id": r["id"], "name": r["name"], "state": "active", "updated_at": r["updated"],
                   "column_values": [{"id": "numbers", "type": "numbers", "text": r["amount"].to_string(),
                                      "value": r["amount"].to_string()}]})
        })
        .collect();
    let next = (start + limit < records.len()).then(|| format!("cur-{}", start + limit));
    Ok(Json(
        json!({"data": {"boards": [{"items_page": {"cursor": next, "items": items}}]},
                   "account_id": 1}),
    )
    .into_response())
}
