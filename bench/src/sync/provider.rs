//! B3's provider API on 127.0.0.1: data sets of generated contacts, each listed in pages of
//! [`PAGE_SIZE`] under `GET /ds/{name}/contacts` (Google-style cursor: `pageToken` in,
//! `nextPageToken` out, absent on the last page), and with `updatedMin` (RFC 3339) only the
//! records updated at or after it (the change feed an `updated_since` entity reads).
//!
//! Every record is rendered to JSON once, when it is made or changed, and the full listing's pages
//! are kept as ready bodies, so a page costs the provider a lookup and a copy: the engine, not the
//! provider, is what the benchmark times. The change feed is assembled per request from the
//! rendered records (one pass over the timestamps).

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Instant;

use axum::extract::{Path, Query, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use bytes::Bytes;
use chrono::{DateTime, SecondsFormat, Utc};
use serde_json::{json, Value};
use tokio::task::JoinHandle;

/// Records per page, as the provider serves them (the engine sends no size).
pub const PAGE_SIZE: usize = 100;

/// One generated contact: 7 fields besides its id, 6 of which the integration maps.
#[derive(Debug, Clone, PartialEq)]
pub struct Contact {
    /// From 1.
    pub number: usize,
    pub changed: bool,
    pub updated: DateTime<Utc>,
}

impl Contact {
    pub fn id(&self) -> String {
        format!("c{:06}", self.number)
    }

    /// The record as the provider sends it.
    pub fn to_json(&self) -> Value {
        let n = self.number;
        let name = if self.changed {
            format!("Contact {n} (renamed)")
        } else {
            format!("Contact {n}")
        };
        json!({
            "id": self.id(),
            "name": name,
            "email": format!("contact{n}@example.com"),
            "phone": format!("+1-555-{:03}-{:04}", n / 10_000 % 1000, n % 10_000),
            "company": format!("Company {}", n % 500),
            "amount": (n * 137) % 1_000_000,
            "status": "active",
            "updated": self.updated.to_rfc3339_opts(SecondsFormat::Millis, true),
        })
    }
}

/// `count` contacts `c000001…`, updated one second apart from `base`.
pub fn contacts(count: usize, base: DateTime<Utc>) -> Vec<Contact> {
    (1..=count)
        .map(|number| Contact {
            number,
            changed: false,
            updated: base + chrono::TimeDelta::seconds(number as i64),
        })
        .collect()
}

/// Which records 1 % of a data set is: every 100th (one per page), from the first.
pub fn changed_indices(count: usize, percent: usize) -> Vec<usize> {
    let changed = count * percent / 100;
    if changed == 0 {
        return Vec::new();
    }
    let step = (count / changed).max(1);
    (0..changed).map(|k| k * step).collect()
}

struct Dataset {
    contacts: Vec<Contact>,
    /// `contacts[i]` as JSON text.
    rendered: Vec<String>,
    /// The full listing, page by page, as whole response bodies.
    pages: Vec<Bytes>,
    requests: Arc<AtomicU64>,
    /// Of those, the ones with `updatedMin` (the change feed).
    feed_requests: Arc<AtomicU64>,
    /// When each request arrived.
    arrivals: Arc<Mutex<Vec<Instant>>>,
}

impl Dataset {
    fn new(contacts: Vec<Contact>) -> Dataset {
        let rendered = contacts.iter().map(|c| c.to_json().to_string()).collect();
        let mut dataset = Dataset {
            contacts,
            rendered,
            pages: Vec::new(),
            requests: Arc::new(AtomicU64::new(0)),
            feed_requests: Arc::new(AtomicU64::new(0)),
            arrivals: Arc::new(Mutex::new(Vec::new())),
        };
        dataset.render_pages();
        dataset
    }

    fn render_pages(&mut self) {
        let all: Vec<&str> = self.rendered.iter().map(String::as_str).collect();
        self.pages = paged(&all);
    }
}

/// The bodies of `records` (JSON texts) in pages of [`PAGE_SIZE`]; each but the last names the
/// next one's token (the offset it starts at). No records: one empty page.
pub fn paged(records: &[&str]) -> Vec<Bytes> {
    if records.is_empty() {
        return vec![Bytes::from_static(br#"{"items":[]}"#)];
    }
    records
        .chunks(PAGE_SIZE)
        .enumerate()
        .map(|(page, chunk)| {
            let mut body =
                String::with_capacity(chunk.iter().map(|r| r.len() + 1).sum::<usize>() + 48);
            body.push_str(r#"{"items":["#);
            for (i, record) in chunk.iter().enumerate() {
                if i > 0 {
                    body.push(',');
                }
                body.push_str(record);
            }
            body.push(']');
            let next = (page + 1) * PAGE_SIZE;
            if next < records.len() {
                body.push_str(&format!(r#","nextPageToken":"{next}""#));
            }
            body.push('}');
            Bytes::from(body)
        })
        .collect()
}

#[derive(Clone, Default)]
struct Shared {
    datasets: Arc<RwLock<HashMap<String, Dataset>>>,
}

pub struct Provider {
    url: String,
    shared: Shared,
    server: JoinHandle<()>,
}

impl Provider {
    pub async fn start() -> std::io::Result<Provider> {
        let listener = tokio::net::TcpListener::bind(SocketAddr::from(([127, 0, 0, 1], 0))).await?;
        let url = format!("http://{}", listener.local_addr()?);
        let shared = Shared::default();
        let app = Router::new()
            .route("/ds/{name}/contacts", get(list))
            .with_state(shared.clone());
        let server = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Ok(Provider {
            url,
            shared,
            server,
        })
    }

    pub fn url(&self) -> &str {
        &self.url
    }

    /// Serves `contacts` as the data set `name` (its path: `/ds/{name}/contacts`).
    pub fn add(&self, name: &str, contacts: Vec<Contact>) {
        let dataset = Dataset::new(contacts);
        if let Ok(mut datasets) = self.shared.datasets.write() {
            datasets.insert(name.to_string(), dataset);
        }
    }

    /// Renames the contacts at `indices` and marks them updated at `at` (plus a millisecond each,
    /// in order); the listing's pages are rendered again.
    pub fn change(&self, name: &str, indices: &[usize], at: DateTime<Utc>) -> usize {
        let Ok(mut datasets) = self.shared.datasets.write() else {
            return 0;
        };
        let Some(dataset) = datasets.get_mut(name) else {
            return 0;
        };
        let mut changed = 0;
        for (k, &i) in indices.iter().enumerate() {
            if let Some(contact) = dataset.contacts.get_mut(i) {
                contact.changed = true;
                contact.updated = at + chrono::TimeDelta::milliseconds(k as i64);
                dataset.rendered[i] = contact.to_json().to_string();
                changed += 1;
            }
        }
        dataset.render_pages();
        changed
    }

    /// Page requests the data set has answered so far: all of them, and those of the change
    /// feed (with `updatedMin`).
    pub fn requests(&self, name: &str) -> (u64, u64) {
        self.shared
            .datasets
            .read()
            .ok()
            .and_then(|datasets| {
                datasets.get(name).map(|d| {
                    (
                        d.requests.load(Ordering::Relaxed),
                        d.feed_requests.load(Ordering::Relaxed),
                    )
                })
            })
            .unwrap_or((0, 0))
    }

    /// When the data set's requests arrived, from the `skip`th on.
    pub fn arrivals(&self, name: &str, skip: usize) -> Vec<Instant> {
        self.shared
            .datasets
            .read()
            .ok()
            .and_then(|datasets| {
                datasets.get(name).and_then(|d| {
                    d.arrivals
                        .lock()
                        .ok()
                        .map(|arrivals| arrivals.iter().skip(skip).copied().collect())
                })
            })
            .unwrap_or_default()
    }

    pub fn stop(self) {
        self.server.abort();
    }
}

async fn list(
    State(shared): State<Shared>,
    Path(name): Path<String>,
    Query(query): Query<HashMap<String, String>>,
) -> Response {
    let Ok(datasets) = shared.datasets.read() else {
        return StatusCode::INTERNAL_SERVER_ERROR.into_response();
    };
    let Some(dataset) = datasets.get(&name) else {
        return StatusCode::NOT_FOUND.into_response();
    };
    dataset.requests.fetch_add(1, Ordering::Relaxed);
    if let Ok(mut arrivals) = dataset.arrivals.lock() {
        arrivals.push(Instant::now());
    }
    let offset = match query.get("pageToken").map(|t| t.parse::<usize>()) {
        None => 0,
        Some(Ok(offset)) if offset % PAGE_SIZE == 0 => offset,
        Some(_) => return (StatusCode::BAD_REQUEST, "bad pageToken").into_response(),
    };
    let body = match query.get("updatedMin") {
        None => dataset.pages.get(offset / PAGE_SIZE).cloned(),
        Some(since) => {
            dataset.feed_requests.fetch_add(1, Ordering::Relaxed);
            let Ok(since) = DateTime::parse_from_rfc3339(since) else {
                return (StatusCode::BAD_REQUEST, "bad updatedMin").into_response();
            };
            let changes: Vec<&str> = dataset
                .contacts
                .iter()
                .zip(&dataset.rendered)
                .filter(|(contact, _)| contact.updated >= since)
                .map(|(_, rendered)| rendered.as_str())
                .collect();
            paged(&changes).into_iter().nth(offset / PAGE_SIZE)
        }
    };
    match body {
        Some(body) => ([(header::CONTENT_TYPE, "application/json")], body).into_response(),
        None => (StatusCode::BAD_REQUEST, "pageToken past the end").into_response(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn base() -> DateTime<Utc> {
        DateTime::parse_from_rfc3339("2026-11-01T00:00:00Z")
            .expect("time")
            .with_timezone(&Utc)
    }

    #[test]
    fn pages_hold_a_hundred_records_and_name_the_next_offset_until_the_last() {
        let records: Vec<String> = contacts(250, base())
            .iter()
            .map(|c| c.to_json().to_string())
            .collect();
        let texts: Vec<&str> = records.iter().map(String::as_str).collect();
        let pages = paged(&texts);
        assert_eq!(pages.len(), 3);
        let bodies: Vec<Value> = pages
            .iter()
            .map(|p| serde_json::from_slice(p).expect("JSON"))
            .collect();
        assert_eq!(bodies[0]["items"].as_array().map(Vec::len), Some(100));
        assert_eq!(bodies[0]["nextPageToken"], "100");
        assert_eq!(bodies[1]["nextPageToken"], "200");
        assert_eq!(bodies[2]["items"].as_array().map(Vec::len), Some(50));
        assert!(bodies[2].get("nextPageToken").is_none());
        assert_eq!(bodies[1]["items"][0]["id"], "c000101");
        assert_eq!(
            serde_json::from_slice::<Value>(&paged(&[])[0]).expect("JSON"),
            json!({"items": []})
        );
    }

    #[test]
    fn a_contact_has_its_id_and_seven_fields_and_a_change_renames_it() {
        let mut contact = contacts(3, base()).remove(2);
        let record = contact.to_json();
        assert_eq!(record["id"], "c000003");
        assert_eq!(record.as_object().map(|r| r.len()), Some(8));
        assert_eq!(record["updated"], "2026-11-01T00:00:03.000Z");
        assert_eq!(record["amount"], 411);
        contact.changed = true;
        assert_eq!(contact.to_json()["name"], "Contact 3 (renamed)");
    }

    #[test]
    fn one_percent_is_one_record_per_page_spread_over_the_set() {
        let changed = changed_indices(20_000, 1);
        assert_eq!(changed.len(), 200);
        assert_eq!(&changed[..3], &[0, 100, 200]);
        assert_eq!(changed[199], 19_900);
        assert_eq!(changed_indices(5_000, 1).len(), 50);
        assert!(changed_indices(50, 1).is_empty());
    }

    #[tokio::test]
    async fn the_listing_and_the_change_feed_are_served_page_by_page() {
        let provider = Provider::start().await.expect("provider");
        provider.add("t", contacts(230, base()));
        let at = base() + chrono::TimeDelta::days(10);
        assert_eq!(provider.change("t", &changed_indices(230, 1), at), 2);
        let client = reqwest_free_get(provider.url());
        let first = client("/ds/t/contacts").await;
        assert_eq!(first["items"].as_array().map(Vec::len), Some(100));
        assert_eq!(first["items"][0]["name"], "Contact 1 (renamed)");
        let last = client("/ds/t/contacts?pageToken=200").await;
        assert_eq!(last["items"].as_array().map(Vec::len), Some(30));
        let since = client(&format!(
            "/ds/t/contacts?updatedMin={}",
            at.to_rfc3339_opts(SecondsFormat::Secs, true)
        ))
        .await;
        let ids: Vec<&str> = since["items"]
            .as_array()
            .expect("items")
            .iter()
            .filter_map(|r| r["id"].as_str())
            .collect();
        assert_eq!(ids, vec!["c000001", "c000116"]);
        assert!(since.get("nextPageToken").is_none());
        assert_eq!(provider.requests("t"), (3, 1));
        let arrivals = provider.arrivals("t", 1);
        assert_eq!(arrivals.len(), 2);
        assert!(arrivals[0] <= arrivals[1]);
        provider.stop();
    }

    /// A GET of `url` + path answering JSON, with the harness's plain HTTP client.
    fn reqwest_free_get(
        url: &str,
    ) -> impl Fn(&str) -> std::pin::Pin<Box<dyn std::future::Future<Output = Value>>> {
        let url = url.to_string();
        move |path: &str| {
            let uri = format!("{url}{path}");
            Box::pin(async move {
                let client: hyper_util::client::legacy::Client<_, http_body_util::Empty<Bytes>> =
                    hyper_util::client::legacy::Client::builder(
                        hyper_util::rt::TokioExecutor::new(),
                    )
                    .build_http();
                let response = client
                    .get(uri.parse().expect("uri"))
                    .await
                    .expect("answered");
                assert_eq!(response.status(), 200);
                let body = http_body_util::BodyExt::collect(response.into_body())
                    .await
                    .expect("body")
                    .to_bytes();
                serde_json::from_slice(&body).expect("JSON")
            })
        }
    }
}
