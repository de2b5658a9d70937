//! A counting pass-through in front of the AWS endpoint (moto): every request is forwarded as it is
//! and recorded as `<service>:<operation>` — `dynamodb:PutItem`, `sqs:SendMessage`, `kms:Decrypt`,
//! `s3:PUT` — so a test or benchmark can state how many AWS requests an operation made, black-box,
//! whatever client made them.
//!
//! The service is read from the SigV4 credential scope of `Authorization`
//! (`…/<date>/<region>/<service>/aws4_request`), the operation from `X-Amz-Target` (the JSON
//! protocols of DynamoDB, KMS and SQS) or, for S3, the HTTP method.
//!
//! Started with [`AwsRequestCounter::start_keeping_bodies`], it also keeps each request's and
//! response's body ([`AwsExchange`]), for a caller that prices requests by what they carried (the
//! benchmarks' cost of a webhook: DynamoDB item sizes, SQS payload sizes).

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use http::{HeaderMap, Request, StatusCode};
use http_body_util::BodyExt;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

/// The largest request or response the counter relays (S3 payloads are at most a few MiB).
const MAX_RELAYED_BYTES: usize = 32 * 1024 * 1024;

/// One relayed request with both bodies, as they went over the wire.
#[derive(Debug, Clone)]
pub struct AwsExchange {
    /// `<service>:<operation>`, as [`AwsRequestCounter::counts`] names it.
    pub call: String,
    pub request: Bytes,
    pub response: Bytes,
}

#[derive(Clone)]
struct Relay {
    upstream: String,
    client: reqwest::Client,
    calls: Arc<Mutex<Vec<String>>>,
    /// `None` unless started with [`AwsRequestCounter::start_keeping_bodies`].
    exchanges: Option<Arc<Mutex<Vec<AwsExchange>>>>,
}

/// A running counter; dropping it stops it.
pub struct AwsRequestCounter {
    url: String,
    calls: Arc<Mutex<Vec<String>>>,
    exchanges: Option<Arc<Mutex<Vec<AwsExchange>>>>,
    task: JoinHandle<()>,
}

impl AwsRequestCounter {
    /// Listens on a free port of 127.0.0.1 and relays to `upstream` (`http://127.0.0.1:<moto>`).
    pub async fn start(upstream: &str) -> std::io::Result<AwsRequestCounter> {
        Self::listen(upstream, false).await
    }

    /// As [`AwsRequestCounter::start`], and keeps every request's and response's body
    /// ([`AwsRequestCounter::exchanges`]).
    pub async fn start_keeping_bodies(upstream: &str) -> std::io::Result<AwsRequestCounter> {
        Self::listen(upstream, true).await
    }

    async fn listen(upstream: &str, keep_bodies: bool) -> std::io::Result<AwsRequestCounter> {
        let listener = TcpListener::bind(SocketAddr::from(([127, 0, 0, 1], 0))).await?;
        let url = format!("http://{}", listener.local_addr()?);
        let calls = Arc::new(Mutex::new(Vec::new()));
        let exchanges = keep_bodies.then(|| Arc::new(Mutex::new(Vec::new())));
        hub_shared::http_client::install_default_crypto_provider();
        let relay = Relay {
            upstream: upstream.trim_end_matches('/').to_string(),
            client: reqwest::Client::builder()
                .no_proxy()
                .build()
                .map_err(std::io::Error::other)?,
            calls: Arc::clone(&calls),
            exchanges: exchanges.clone(),
        };
        let app = axum::Router::new().fallback(forward).with_state(relay);
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Ok(AwsRequestCounter {
            url,
            calls,
            exchanges,
            task,
        })
    }

    /// The endpoint to give clients instead of the upstream one.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// Every request so far, in arrival order.
    pub fn calls(&self) -> Vec<String> {
        self.calls
            .lock()
            .map(|calls| calls.clone())
            .unwrap_or_default()
    }

    /// How many requests of each `<service>:<operation>`.
    pub fn counts(&self) -> BTreeMap<String, usize> {
        let mut counts = BTreeMap::new();
        for call in self.calls() {
            *counts.entry(call).or_insert(0) += 1;
        }
        counts
    }

    /// Every exchange answered so far, in the order the answers came back (empty unless started
    /// with [`AwsRequestCounter::start_keeping_bodies`]).
    pub fn exchanges(&self) -> Vec<AwsExchange> {
        self.exchanges
            .as_ref()
            .and_then(|exchanges| exchanges.lock().ok().map(|kept| kept.clone()))
            .unwrap_or_default()
    }

    /// Forgets what was counted (and kept).
    pub fn reset(&self) {
        if let Ok(mut calls) = self.calls.lock() {
            calls.clear();
        }
        if let Some(Ok(mut exchanges)) = self.exchanges.as_ref().map(|kept| kept.lock()) {
            exchanges.clear();
        }
    }
}

impl Drop for AwsRequestCounter {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// `<service>:<operation>` of a signed AWS request.
pub fn classify(method: &http::Method, headers: &HeaderMap) -> String {
    let service = headers
        .get(http::header::AUTHORIZATION)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.split("Credential=").nth(1))
        .and_then(|credential| credential.split([',', ' ']).next())
        .and_then(|scope| scope.split('/').nth(3))
        .unwrap_or("unknown")
        .to_string();
    let operation = headers
        .get("x-amz-target")
        .and_then(|value| value.to_str().ok())
        .and_then(|target| target.rsplit('.').next())
        .map(str::to_string)
        .unwrap_or_else(|| method.as_str().to_string());
    format!("{service}:{operation}")
}

async fn forward(State(relay): State<Relay>, request: Request<Body>) -> Response {
    let (parts, body) = request.into_parts();
    let call = classify(&parts.method, &parts.headers);
    if let Ok(mut calls) = relay.calls.lock() {
        calls.push(call.clone());
    }
    let body = match http_body_util::Limited::new(body, MAX_RELAYED_BYTES)
        .collect()
        .await
    {
        Ok(collected) => collected.to_bytes(),
        Err(_) => return StatusCode::PAYLOAD_TOO_LARGE.into_response(),
    };
    let path = parts
        .uri
        .path_and_query()
        .map(|p| p.as_str())
        .unwrap_or("/");
    let mut upstream = relay
        .client
        .request(parts.method.clone(), format!("{}{path}", relay.upstream))
        .body(body.clone());
    for (name, value) in &parts.headers {
        if name != http::header::HOST && name != http::header::CONTENT_LENGTH {
            upstream = upstream.header(name, value);
        }
    }
    let answer = match upstream.send().await {
        Ok(answer) => answer,
        Err(_) => return StatusCode::BAD_GATEWAY.into_response(),
    };
    let status = answer.status();
    let headers = answer.headers().clone();
    let bytes = answer.bytes().await.unwrap_or_default();
    if let Some(Ok(mut exchanges)) = relay.exchanges.as_ref().map(|kept| kept.lock()) {
        exchanges.push(AwsExchange {
            call,
            request: body,
            response: bytes.clone(),
        });
    }
    let mut response = Response::new(Body::from(bytes));
    *response.status_mut() = status;
    for (name, value) in &headers {
        if name != http::header::TRANSFER_ENCODING && name != http::header::CONTENT_LENGTH {
            response.headers_mut().append(name, value.clone());
        }
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_are_named_by_scope_and_target() {
        let mut headers = HeaderMap::new();
        headers.insert(
            http::header::AUTHORIZATION,
            "AWS4-HMAC-SHA256 Credential=test/20261201/us-east-1/dynamodb/aws4_request, SignedHeaders=host, Signature=00"
                .parse()
                .expect("header"),
        );
        headers.insert(
            "x-amz-target",
            "DynamoDB_20120810.PutItem".parse().expect("header"),
        );
        assert_eq!(classify(&http::Method::POST, &headers), "dynamodb:PutItem");
        headers.remove("x-amz-target");
        headers.insert(
            http::header::AUTHORIZATION,
            "AWS4-HMAC-SHA256 Credential=test/20261201/us-east-1/s3/aws4_request, SignedHeaders=host, Signature=00"
                .parse()
                .expect("header"),
        );
        assert_eq!(classify(&http::Method::PUT, &headers), "s3:PUT");
        assert_eq!(
            classify(&http::Method::GET, &HeaderMap::new()),
            "unknown:GET"
        );
    }

    #[tokio::test]
    async fn kept_exchanges_carry_both_bodies_and_a_reset_forgets_them() {
        let listener = TcpListener::bind(SocketAddr::from(([127, 0, 0, 1], 0)))
            .await
            .expect("listener");
        let upstream = format!("http://{}", listener.local_addr().expect("address"));
        let echo = axum::Router::new().fallback(|body: Bytes| async move {
            format!("answer to {}", String::from_utf8_lossy(&body))
        });
        tokio::spawn(async move { axum::serve(listener, echo).await });
        let keeping = AwsRequestCounter::start_keeping_bodies(&upstream)
            .await
            .expect("counter");
        let counting = AwsRequestCounter::start(&upstream).await.expect("counter");
        let client = reqwest::Client::builder()
            .no_proxy()
            .build()
            .expect("client");
        for counter in [&keeping, &counting] {
            let answer = client
                .post(counter.url())
                .header(
                    http::header::AUTHORIZATION,
                    "AWS4-HMAC-SHA256 Credential=test/20261201/us-east-1/sqs/aws4_request, SignedHeaders=host, Signature=00",
                )
                .header("x-amz-target", "AmazonSQS.SendMessage")
                .body(r#"{"MessageBody":"hi"}"#)
                .send()
                .await
                .expect("relayed");
            assert_eq!(
                answer.text().await.expect("body"),
                r#"answer to {"MessageBody":"hi"}"#
            );
        }
        let kept = keeping.exchanges();
        assert_eq!(kept.len(), 1);
        assert_eq!(kept[0].call, "sqs:SendMessage");
        assert_eq!(kept[0].request, Bytes::from(r#"{"MessageBody":"hi"}"#));
        assert_eq!(
            kept[0].response,
            Bytes::from(r#"answer to {"MessageBody":"hi"}"#)
        );
        assert!(counting.exchanges().is_empty());
        assert_eq!(counting.counts().get("sqs:SendMessage"), Some(&1));
        keeping.reset();
        assert!(keeping.exchanges().is_empty() && keeping.calls().is_empty());
    }
}
