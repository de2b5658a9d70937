//! B4's webhook receiver on 127.0.0.1: it verifies each request's Standard Webhooks signature,
//! answers 500 to a chosen share of requests at random (seeded, so a run can be repeated) and 204 to
//! the rest, and counts what arrived per `webhook-id`: how many 2xx each id got, and which event
//! (the envelope's `id`) it carried.

use std::collections::HashMap;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use http::{HeaderMap, Request, Response, StatusCode};
use http_body_util::{BodyExt, Full};
use hub_shared::webhooks::sign::SigningKeys;
use hub_shared::webhooks::verify::verify_standard;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde::Serialize;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::{JoinHandle, JoinSet};

/// What the sink saw, as the report gives it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct SinkCounts {
    pub requests: u64,
    /// Answered 500 on purpose.
    pub injected_failures: u64,
    /// Distinct `webhook-id`s answered 2xx at least once: the delivered count.
    pub delivered: u64,
    /// 2xx answers beyond the first for one `webhook-id` (a delivery sent again after it succeeded).
    pub duplicate_successes: u64,
    /// Requests whose signature did not verify (or had no `webhook-id`); answered 401.
    pub invalid_signatures: u64,
    /// `webhook-id`s that arrived with more than one event, and events that arrived under more
    /// than one `webhook-id`: both must be 0 (one id per event, the same on every attempt).
    pub ids_with_several_events: u64,
    pub events_with_several_ids: u64,
}

struct PerId {
    event_id: String,
    successes: u64,
}

struct State {
    keys: SigningKeys,
    failure_rate: f64,
    rng: StdRng,
    counts: SinkCounts,
    ids: HashMap<String, PerId>,
    id_of_event: HashMap<String, String>,
}

pub struct Sink {
    address: SocketAddr,
    state: Arc<Mutex<State>>,
    delivered: watch::Receiver<u64>,
    server: JoinHandle<()>,
}

impl Sink {
    /// Listens on a free port of 127.0.0.1; `failure_rate` of the requests (0.0-1.0) get a 500.
    pub async fn start(keys: SigningKeys, failure_rate: f64, seed: u64) -> std::io::Result<Sink> {
        let listener = TcpListener::bind((std::net::Ipv4Addr::LOCALHOST, 0)).await?;
        let address = listener.local_addr()?;
        let state = Arc::new(Mutex::new(State {
            keys,
            failure_rate,
            rng: StdRng::seed_from_u64(seed),
            counts: SinkCounts::default(),
            ids: HashMap::new(),
            id_of_event: HashMap::new(),
        }));
        let (delivered_tx, delivered) = watch::channel(0);
        let server = tokio::spawn(serve(listener, Arc::clone(&state), Arc::new(delivered_tx)));
        Ok(Sink {
            address,
            state,
            delivered,
            server,
        })
    }

    /// The URL deliveries are sent to.
    pub fn url(&self) -> String {
        format!("http://{}/hook", self.address)
    }

    /// Verifies the requests from now on with `keys`: for a target whose secret exists only once
    /// the webhook pointing at it was created (an inbound `forward`).
    pub fn verify_with(&self, keys: SigningKeys) {
        if let Ok(mut state) = self.state.lock() {
            state.keys = keys;
        }
    }

    pub fn counts(&self) -> SinkCounts {
        self.state
            .lock()
            .map(|state| state.counts.clone())
            .unwrap_or_default()
    }

    /// Resolves once `target` distinct `webhook-id`s have had a 2xx.
    pub async fn delivered_at_least(&self, target: u64) {
        let mut delivered = self.delivered.clone();
        let _ = delivered.wait_for(|count| *count >= target).await;
    }

    pub fn delivered(&self) -> u64 {
        *self.delivered.borrow()
    }
}

impl Drop for Sink {
    fn drop(&mut self) {
        self.server.abort();
    }
}

async fn serve(
    listener: TcpListener,
    state: Arc<Mutex<State>>,
    delivered: Arc<watch::Sender<u64>>,
) {
    let mut connections = JoinSet::new();
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            continue;
        };
        let _ = stream.set_nodelay(true);
        let state = Arc::clone(&state);
        let delivered = Arc::clone(&delivered);
        connections.spawn(async move {
            let service = service_fn(move |request| {
                receive(request, Arc::clone(&state), Arc::clone(&delivered))
            });
            let _ = http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
        while connections.try_join_next().is_some() {}
    }
}

async fn receive(
    request: Request<Incoming>,
    state: Arc<Mutex<State>>,
    delivered: Arc<watch::Sender<u64>>,
) -> Result<Response<Full<Bytes>>, Infallible> {
    let (parts, body) = request.into_parts();
    let body = match body.collect().await {
        Ok(collected) => collected.to_bytes(),
        Err(_) => return Ok(answer(StatusCode::BAD_REQUEST)),
    };
    let now = chrono::Utc::now().timestamp();
    let Ok(mut state) = state.lock() else {
        return Ok(answer(StatusCode::INTERNAL_SERVER_ERROR));
    };
    let status = state.record(&parts.headers, &body, now);
    delivered.send_replace(state.counts.delivered);
    Ok(answer(status))
}

impl State {
    fn record(&mut self, headers: &HeaderMap, body: &[u8], now: i64) -> StatusCode {
        self.counts.requests += 1;
        let webhook_id = headers
            .get("webhook-id")
            .and_then(|value| value.to_str().ok())
            .map(str::to_string);
        let (Some(webhook_id), Ok(())) =
            (webhook_id, verify_standard(&self.keys, headers, body, now))
        else {
            self.counts.invalid_signatures += 1;
            return StatusCode::UNAUTHORIZED;
        };
        let event_id = serde_json::from_slice::<serde_json::Value>(body)
            .ok()
            .and_then(|envelope| envelope["id"].as_str().map(str::to_string))
            .unwrap_or_default();
        let entry = self.ids.entry(webhook_id.clone()).or_insert_with(|| PerId {
            event_id: event_id.clone(),
            successes: 0,
        });
        if entry.event_id != event_id {
            self.counts.ids_with_several_events += 1;
        }
        let known = self
            .id_of_event
            .entry(event_id)
            .or_insert_with(|| webhook_id.clone());
        if *known != webhook_id {
            self.counts.events_with_several_ids += 1;
        }
        if self.failure_rate > 0.0 && self.rng.gen_bool(self.failure_rate.min(1.0)) {
            self.counts.injected_failures += 1;
            return StatusCode::INTERNAL_SERVER_ERROR;
        }
        entry.successes += 1;
        if entry.successes == 1 {
            self.counts.delivered += 1;
        } else {
            self.counts.duplicate_successes += 1;
        }
        StatusCode::NO_CONTENT
    }
}

fn answer(status: StatusCode) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::new()));
    *response.status_mut() = status;
    response
}

#[cfg(test)]
mod tests {
    use super::*;
    use hub_shared::webhooks::sign::{generate_secret, Signing};

    fn signed(keys: &SigningKeys, id: &str, body: &str, now: i64) -> HeaderMap {
        let mut headers = HeaderMap::new();
        for (name, value) in Signing::Standard
            .sign(keys, id, now, body.as_bytes())
            .expect("signable")
        {
            headers.insert(name, value);
        }
        headers
    }

    fn state(keys: SigningKeys, failure_rate: f64) -> State {
        State {
            keys,
            failure_rate,
            rng: StdRng::seed_from_u64(7),
            counts: SinkCounts::default(),
            ids: HashMap::new(),
            id_of_event: HashMap::new(),
        }
    }

    #[test]
    fn a_signed_delivery_counts_once_and_a_repeat_is_a_duplicate() {
        let keys = SigningKeys::new(generate_secret());
        let mut sink = state(keys.clone(), 0.0);
        let now = 1_765_000_000;
        let headers = signed(&keys, "msg_1", r#"{"id":"evt_1"}"#, now);
        assert_eq!(
            sink.record(&headers, br#"{"id":"evt_1"}"#, now),
            StatusCode::NO_CONTENT
        );
        sink.record(&headers, br#"{"id":"evt_1"}"#, now);
        let other = signed(&keys, "msg_2", r#"{"id":"evt_1"}"#, now);
        sink.record(&other, br#"{"id":"evt_1"}"#, now);
        assert_eq!(
            (
                sink.counts.delivered,
                sink.counts.duplicate_successes,
                sink.counts.events_with_several_ids,
                sink.counts.ids_with_several_events
            ),
            (2, 1, 1, 0)
        );
    }

    #[test]
    fn a_wrong_signature_is_refused_and_counted() {
        let keys = SigningKeys::new(generate_secret());
        let mut sink = state(keys, 0.0);
        let other_keys = SigningKeys::new(generate_secret());
        let now = 1_765_000_000;
        let headers = signed(&other_keys, "msg_1", "{}", now);
        assert_eq!(sink.record(&headers, b"{}", now), StatusCode::UNAUTHORIZED);
        assert_eq!(
            (sink.counts.invalid_signatures, sink.counts.delivered),
            (1, 0)
        );
    }

    #[test]
    fn about_the_chosen_share_of_requests_fails() {
        let keys = SigningKeys::new(generate_secret());
        let mut sink = state(keys.clone(), 0.5);
        let now = 1_765_000_000;
        for n in 0..1000 {
            let body = format!(r#"{{"id":"evt_{n}"}}"#);
            let headers = signed(&keys, &format!("msg_{n}"), &body, now);
            sink.record(&headers, body.as_bytes(), now);
        }
        let failed = sink.counts.injected_failures;
        assert!((400..=600).contains(&failed), "{failed} of 1000 failed");
        assert_eq!(sink.counts.delivered, 1000 - failed);
    }
}
