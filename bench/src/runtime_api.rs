//! A minimal Lambda Runtime API (the HTTP interface a function's runtime client polls), served on
//! 127.0.0.1 so a benchmark sees exactly when a function asks for work and what it answers.
//!
//! The server decides nothing: every call is forwarded to the benchmark as a [`RuntimeApiCall`], and a
//! `GET /next` is answered only when the benchmark hands over an [`Invocation`] (a call it never answers
//! stays pending, as on Lambda when no event arrives).

use std::convert::Infallible;
use std::net::SocketAddr;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use http::{Method, Request, Response, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;
use tokio::sync::{mpsc, oneshot};
use tokio::task::{JoinHandle, JoinSet};

const API_PREFIX: &str = "/2018-06-01/runtime/";

/// One event handed to the function in answer to its `GET /runtime/invocation/next`.
#[derive(Debug, Clone)]
pub struct Invocation {
    pub request_id: String,
    pub function_arn: String,
    pub deadline_in: Duration,
    pub trace_id: String,
    pub event: Bytes,
}

/// What the function did, with the instant the server received it.
#[derive(Debug)]
pub enum RuntimeApiCall {
    /// The function is ready for work; send an [`Invocation`] to answer, or drop `reply` to leave it
    /// waiting.
    Next {
        at: Instant,
        reply: oneshot::Sender<Invocation>,
    },
    Response {
        at: Instant,
        request_id: String,
        body: Bytes,
    },
    InvocationError {
        request_id: String,
        body: Bytes,
    },
    InitError {
        body: Bytes,
    },
}

/// The running server; dropping it stops the server and closes every connection.
pub struct RuntimeApi {
    address: SocketAddr,
    calls: mpsc::UnboundedReceiver<RuntimeApiCall>,
    server: JoinHandle<()>,
}

impl RuntimeApi {
    /// Listens on a free port of 127.0.0.1.
    pub async fn start() -> std::io::Result<RuntimeApi> {
        let listener = TcpListener::bind((std::net::Ipv4Addr::LOCALHOST, 0)).await?;
        let address = listener.local_addr()?;
        let (sender, calls) = mpsc::unbounded_channel();
        let server = tokio::spawn(accept_connections(listener, sender));
        Ok(RuntimeApi {
            address,
            calls,
            server,
        })
    }

    /// The value for `AWS_LAMBDA_RUNTIME_API` (`host:port`, no scheme).
    pub fn address(&self) -> SocketAddr {
        self.address
    }

    /// The function's next call, in arrival order.
    pub async fn next_call(&mut self) -> Option<RuntimeApiCall> {
        self.calls.recv().await
    }
}

impl Drop for RuntimeApi {
    fn drop(&mut self) {
        self.server.abort();
    }
}

async fn accept_connections(listener: TcpListener, calls: mpsc::UnboundedSender<RuntimeApiCall>) {
    // Owned here so aborting this task aborts every connection with it.
    let mut connections = JoinSet::new();
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            continue;
        };
        // Small request/response pairs: Nagle's algorithm would only add latency to what we time.
        let _ = stream.set_nodelay(true);
        let calls = calls.clone();
        connections.spawn(async move {
            let service = service_fn(move |request| answer(request, calls.clone()));
            let _ = http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
        while connections.try_join_next().is_some() {}
    }
}

async fn answer(
    request: Request<Incoming>,
    calls: mpsc::UnboundedSender<RuntimeApiCall>,
) -> Result<Response<Full<Bytes>>, Infallible> {
    let at = Instant::now();
    let route = request
        .uri()
        .path()
        .strip_prefix(API_PREFIX)
        .unwrap_or("")
        .to_string();
    let method = request.method().clone();
    let segments: Vec<&str> = route.split('/').collect();
    let response = match (method, segments.as_slice()) {
        (Method::GET, ["invocation", "next"]) => {
            let (reply, invocation) = oneshot::channel();
            if calls.send(RuntimeApiCall::Next { at, reply }).is_err() {
                return Ok(plain(StatusCode::SERVICE_UNAVAILABLE, "benchmark gone"));
            }
            match invocation.await {
                Ok(invocation) => event_response(&invocation),
                // No event for this poll: keep the function waiting until it is stopped.
                Err(_) => std::future::pending().await,
            }
        }
        (Method::POST, ["invocation", request_id, "response"]) => {
            let request_id = request_id.to_string();
            match read_body(request).await {
                Ok(body) => accepted(
                    &calls,
                    RuntimeApiCall::Response {
                        at,
                        request_id,
                        body,
                    },
                ),
                Err(response) => response,
            }
        }
        (Method::POST, ["invocation", request_id, "error"]) => {
            let request_id = request_id.to_string();
            match read_body(request).await {
                Ok(body) => accepted(&calls, RuntimeApiCall::InvocationError { request_id, body }),
                Err(response) => response,
            }
        }
        (Method::POST, ["init", "error"]) => match read_body(request).await {
            Ok(body) => accepted(&calls, RuntimeApiCall::InitError { body }),
            Err(response) => response,
        },
        _ => plain(StatusCode::NOT_FOUND, "not a Runtime API route"),
    };
    Ok(response)
}

async fn read_body(request: Request<Incoming>) -> Result<Bytes, Response<Full<Bytes>>> {
    match request.into_body().collect().await {
        Ok(collected) => Ok(collected.to_bytes()),
        Err(error) => Err(plain(
            StatusCode::BAD_REQUEST,
            &format!("unreadable body: {error}"),
        )),
    }
}

fn accepted(
    calls: &mpsc::UnboundedSender<RuntimeApiCall>,
    call: RuntimeApiCall,
) -> Response<Full<Bytes>> {
    let _ = calls.send(call);
    let mut response = Response::new(Full::new(Bytes::from_static(br#"{"status":"OK"}"#)));
    *response.status_mut() = StatusCode::ACCEPTED;
    response
}

fn event_response(invocation: &Invocation) -> Response<Full<Bytes>> {
    let deadline_ms = (SystemTime::now() + invocation.deadline_in)
        .duration_since(UNIX_EPOCH)
        .map(|since_epoch| since_epoch.as_millis())
        .unwrap_or_default();
    Response::builder()
        .status(StatusCode::OK)
        .header("content-type", "application/json")
        .header(
            "lambda-runtime-aws-request-id",
            invocation.request_id.as_str(),
        )
        .header("lambda-runtime-deadline-ms", deadline_ms.to_string())
        .header(
            "lambda-runtime-invoked-function-arn",
            invocation.function_arn.as_str(),
        )
        .header("lambda-runtime-trace-id", invocation.trace_id.as_str())
        .body(Full::new(invocation.event.clone()))
        .unwrap_or_else(|error| {
            plain(
                StatusCode::INTERNAL_SERVER_ERROR,
                &format!("bad invocation: {error}"),
            )
        })
}

fn plain(status: StatusCode, message: &str) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::from(message.to_string())));
    *response.status_mut() = status;
    response
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::TcpStream;

    /// One HTTP/1.1 exchange on a fresh connection, returning the raw response text.
    async fn exchange(address: SocketAddr, request: String) -> String {
        let mut stream = TcpStream::connect(address).await.expect("connect");
        stream.write_all(request.as_bytes()).await.expect("write");
        let mut response = Vec::new();
        stream.read_to_end(&mut response).await.expect("read");
        String::from_utf8_lossy(&response).into_owned()
    }

    fn post(path: &str, body: &str) -> String {
        format!(
            "POST {path} HTTP/1.1\r\nhost: x\r\nconnection: close\r\ncontent-length: {}\r\n\r\n{body}",
            body.len()
        )
    }

    fn invocation() -> Invocation {
        Invocation {
            request_id: "req-1".into(),
            function_arn: "arn:aws:lambda:eu-west-1:123456789012:function:f".into(),
            deadline_in: Duration::from_secs(30),
            trace_id: "Root=1-00000000-000000000000000000000001;Sampled=0".into(),
            event: Bytes::from_static(br#"{"hello":"world"}"#),
        }
    }

    #[tokio::test]
    async fn next_is_reported_and_answered_with_the_event_and_lambda_headers() {
        // Given a Runtime API and a function polling for work
        let mut api = RuntimeApi::start().await.expect("start");
        let address = api.address();
        let poll = tokio::spawn(exchange(
            address,
            "GET /2018-06-01/runtime/invocation/next HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n".into(),
        ));
        // When the benchmark hands it an invocation
        let Some(RuntimeApiCall::Next { reply, .. }) = api.next_call().await else {
            panic!("expected a Next call");
        };
        reply.send(invocation()).expect("poll still waiting");
        // Then the function receives the event with the headers the runtime client requires
        let response = poll.await.expect("poll task").to_ascii_lowercase();
        assert!(response.starts_with("http/1.1 200"), "{response}");
        assert!(
            response.contains("lambda-runtime-aws-request-id: req-1"),
            "{response}"
        );
        assert!(
            response.contains("lambda-runtime-invoked-function-arn: arn:aws:lambda:"),
            "{response}"
        );
        assert!(
            response.contains("lambda-runtime-trace-id: root=1-"),
            "{response}"
        );
        assert!(
            response.contains("lambda-runtime-deadline-ms: 1"),
            "{response}"
        );
        assert!(response.ends_with(r#"{"hello":"world"}"#), "{response}");
    }

    #[tokio::test]
    async fn an_unanswered_next_keeps_the_function_waiting() {
        let mut api = RuntimeApi::start().await.expect("start");
        let poll = tokio::spawn(exchange(
            api.address(),
            "GET /2018-06-01/runtime/invocation/next HTTP/1.1\r\nhost: x\r\n\r\n".into(),
        ));
        let Some(RuntimeApiCall::Next { reply, .. }) = api.next_call().await else {
            panic!("expected a Next call");
        };
        drop(reply);
        let waited = tokio::time::timeout(Duration::from_millis(200), poll).await;
        assert!(waited.is_err(), "the poll must still be pending");
    }

    #[tokio::test]
    async fn a_response_is_accepted_and_reported_with_its_request_id_and_body() {
        let mut api = RuntimeApi::start().await.expect("start");
        let answer = exchange(
            api.address(),
            post(
                "/2018-06-01/runtime/invocation/req-7/response",
                r#"{"ok":1}"#,
            ),
        )
        .await;
        assert!(answer.starts_with("HTTP/1.1 202"), "{answer}");
        match api.next_call().await {
            Some(RuntimeApiCall::Response {
                request_id, body, ..
            }) => {
                assert_eq!(request_id, "req-7");
                assert_eq!(&body[..], br#"{"ok":1}"#);
            }
            other => panic!("expected a Response call, got {other:?}"),
        }
    }

    #[tokio::test]
    async fn init_and_invocation_errors_are_reported_with_their_bodies() {
        let mut api = RuntimeApi::start().await.expect("start");
        exchange(
            api.address(),
            post("/2018-06-01/runtime/init/error", "bad config"),
        )
        .await;
        exchange(
            api.address(),
            post("/2018-06-01/runtime/invocation/req-8/error", "boom"),
        )
        .await;
        match api.next_call().await {
            Some(RuntimeApiCall::InitError { body, .. }) => assert_eq!(&body[..], b"bad config"),
            other => panic!("expected an InitError call, got {other:?}"),
        }
        match api.next_call().await {
            Some(RuntimeApiCall::InvocationError {
                request_id, body, ..
            }) => {
                assert_eq!((request_id.as_str(), &body[..]), ("req-8", &b"boom"[..]));
            }
            other => panic!("expected an InvocationError call, got {other:?}"),
        }
    }

    #[tokio::test]
    async fn other_paths_are_not_found() {
        let api = RuntimeApi::start().await.expect("start");
        let answer = exchange(
            api.address(),
            "GET /2018-06-01/runtime/invocation HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n"
                .into(),
        )
        .await;
        assert!(answer.starts_with("HTTP/1.1 404"), "{answer}");
    }
}
