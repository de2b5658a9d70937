//! The harness as a tenant's back end: JSON requests through the local gateway with a dev token.

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hub_local::stack::{LocalStack, StackOptions};
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client as HttpClient;
use serde_json::Value;

pub type Client = HttpClient<HttpConnector, Full<Bytes>>;

/// `POST <path>` with `body` as `tenant` (a dev token the gateway accepts): the status and the raw
/// answer. `Err` names the step that failed.
pub async fn post_json_as(
    client: &Client,
    stack: &LocalStack,
    options: &StackOptions,
    tenant: &str,
    path: &str,
    body: &Value,
) -> Result<(http::StatusCode, Bytes), String> {
    let token = hub_local::jwt::dev_token(
        options.jwt_secret.as_bytes(),
        &options.tenant_claim,
        tenant,
        "bench-user",
        &options.jwt_issuer,
        &options.jwt_audience,
        3600,
    );
    let request = http::Request::post(format!("{}{path}", stack.url))
        .header("content-type", "application/json")
        .header("authorization", format!("Bearer {token}"))
        .body(Full::new(Bytes::from(body.to_string())))
        .map_err(|e| format!("the request to {path}: {e}"))?;
    let response = client
        .request(request)
        .await
        .map_err(|e| format!("POST {path}: {e}"))?;
    let status = response.status();
    let answer = response
        .into_body()
        .collect()
        .await
        .map_err(|e| format!("the answer of POST {path}: {e}"))?
        .to_bytes();
    Ok((status, answer))
}
