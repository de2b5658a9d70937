//! The one HTTP client for every outgoing call to a provider or a tenant's target, with the SSRF
//! guard.
//!
//! How the guard holds:
//! - every hostname is resolved by the guarded resolver (`target.rs`), which hands reqwest only allowed
//!   addresses, so the address that was checked is the address that is connected (no DNS-rebinding
//!   gap);
//! - IP-literal hosts never reach a resolver, so [`check_target_url`] judges them before sending and
//!   on every redirect hop;
//! - proxies are disabled (a proxy would resolve the name itself), the `Referer` header is never
//!   sent on redirects (it would leak the previous URL's query), and credentials in URLs are refused;
//! - only `https`, plus `http` when private targets are allowed.
//!
//! Errors and log lines name at most the target's origin (`scheme://host[:port]`), never its path or
//! query, which may carry keys.

mod address_policy;
mod target;

use std::error::Error as StdError;
use std::io;
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode};
use url::Url;

pub use address_policy::is_forbidden_ip;
pub use target::{check_target_url, origin_for_logs, validate_target, TargetRejected};

use target::GuardedResolver;

/// Total time allowed for a request unless the caller sets another (test connection uses 10 s too).
pub const DEFAULT_REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
/// Time allowed to resolve, connect and finish the TLS handshake.
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// How much of a response body is kept unless the caller sets another cap; the rest is dropped and
/// [`OutgoingResponse::body_truncated`] is set.
pub const DEFAULT_MAX_RESPONSE_BYTES: usize = 1024 * 1024;
/// Redirect hops followed for provider calls.
pub const PROVIDER_MAX_REDIRECTS: u8 = 5;

const DEFAULT_USER_AGENT: &str = concat!("IntegrationsHub/", env!("CARGO_PKG_VERSION"));

/// What a client does with a 3xx answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RedirectPolicy {
    /// The 3xx is returned as the response (webhook deliveries: a 3xx is a failed attempt).
    None,
    /// Follow at most this many hops, each checked like the first URL (provider calls).
    Limited(u8),
}

/// How a [`GuardedHttpClient`] behaves; fixed for the client's life.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GuardOptions {
    /// `ALLOW_PRIVATE_TARGETS`: admit loopback/private/reserved addresses and plain `http`.
    /// Link-local and the AWS instance-services addresses stay refused regardless.
    pub allow_private: bool,
    pub redirects: RedirectPolicy,
    pub connect_timeout: Duration,
    pub user_agent: String,
}

impl GuardOptions {
    /// Outgoing webhook deliveries and `forward` actions: redirects are not followed.
    pub fn webhook_deliveries(allow_private: bool) -> Self {
        Self {
            allow_private,
            redirects: RedirectPolicy::None,
            connect_timeout: DEFAULT_CONNECT_TIMEOUT,
            user_agent: DEFAULT_USER_AGENT.to_owned(),
        }
    }

    /// Provider API calls (sync, test connection, OAuth token endpoints): up to
    /// [`PROVIDER_MAX_REDIRECTS`] checked hops.
    pub fn provider_calls(allow_private: bool) -> Self {
        Self {
            redirects: RedirectPolicy::Limited(PROVIDER_MAX_REDIRECTS),
            ..Self::webhook_deliveries(allow_private)
        }
    }
}

/// The client could not be built (TLS backend initialisation, or a user agent that is not a valid
/// header value).
#[derive(Debug, thiserror::Error)]
pub enum ClientBuildError {
    #[error("could not build the outgoing HTTP client: {0}")]
    Http(#[source] reqwest::Error),
    #[error("could not configure TLS for the outgoing HTTP client: {0}")]
    Tls(#[source] rustls::Error),
}

/// The guarded client. Cloning is cheap (the connection pool is shared); build one per function at
/// start-up and pass it around.
#[derive(Debug, Clone)]
pub struct GuardedHttpClient {
    inner: reqwest::Client,
    allow_private: bool,
    connect_timeout: Duration,
}

/// One outgoing request. Its `Debug` output shows only the method, the origin, the header names and
/// the body length, so logging it leaks no secret.
#[derive(Clone)]
pub struct OutgoingRequest {
    pub method: Method,
    pub url: Url,
    pub headers: HeaderMap,
    pub body: Option<Bytes>,
    /// Total time for connecting, sending and reading the (capped) body.
    pub timeout: Duration,
    pub max_response_bytes: usize,
}

impl OutgoingRequest {
    pub fn new(method: Method, url: Url) -> Self {
        Self {
            method,
            url,
            headers: HeaderMap::new(),
            body: None,
            timeout: DEFAULT_REQUEST_TIMEOUT,
            max_response_bytes: DEFAULT_MAX_RESPONSE_BYTES,
        }
    }

    pub fn get(url: Url) -> Self {
        Self::new(Method::GET, url)
    }

    pub fn post(url: Url) -> Self {
        Self::new(Method::POST, url)
    }

    /// Adds a header (appends when the name is already present).
    pub fn header(mut self, name: HeaderName, value: HeaderValue) -> Self {
        self.headers.append(name, value);
        self
    }

    pub fn body(mut self, body: impl Into<Bytes>) -> Self {
        self.body = Some(body.into());
        self
    }

    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    pub fn max_response_bytes(mut self, max: usize) -> Self {
        self.max_response_bytes = max;
        self
    }
}

impl std::fmt::Debug for OutgoingRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OutgoingRequest")
            .field("method", &self.method)
            .field("origin", &origin_for_logs(&self.url))
            .field("header_names", &self.headers.keys().collect::<Vec<_>>())
            .field("body_len", &self.body.as_ref().map(Bytes::len))
            .field("timeout", &self.timeout)
            .field("max_response_bytes", &self.max_response_bytes)
            .finish()
    }
}

/// A response of any status (4xx/5xx and, with [`RedirectPolicy::None`], 3xx are answers, not
/// errors). Its `Debug` output leaves out header values and the body: a provider's token endpoint
/// answers with tokens.
#[derive(Clone)]
pub struct OutgoingResponse {
    pub status: StatusCode,
    pub headers: HeaderMap,
    /// At most the request's `max_response_bytes`.
    pub body: Bytes,
    /// The target sent more than `max_response_bytes`; the rest was not read.
    pub body_truncated: bool,
    /// From the start of `send` to the end of the (capped) body.
    pub latency: Duration,
}

impl std::fmt::Debug for OutgoingResponse {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OutgoingResponse")
            .field("status", &self.status)
            .field("header_names", &self.headers.keys().collect::<Vec<_>>())
            .field("body_len", &self.body.len())
            .field("body_truncated", &self.body_truncated)
            .field("latency", &self.latency)
            .finish()
    }
}

/// A request that produced no response, with how long it took to fail.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{kind}")]
pub struct SendError {
    pub kind: SendErrorKind,
    pub elapsed: Duration,
}

impl SendError {
    /// The stable code stored in logs and returned by test connection (docs/decisions.md, "Test connection").
    pub fn code(&self) -> &'static str {
        self.kind.code()
    }

    /// Whether trying again later may succeed (timeouts, refused connections, DNS and network
    /// failures), as opposed to a target that is refused or misconfigured.
    pub fn is_transient(&self) -> bool {
        matches!(
            self.kind,
            SendErrorKind::Timeout { .. }
                | SendErrorKind::ConnectionRefused
                | SendErrorKind::Dns { .. }
                | SendErrorKind::Network { .. }
        )
    }
}

/// Why a request produced no response. Messages are user-facing sentences without URLs.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SendErrorKind {
    /// The URL or one of its redirect hops was refused (scheme, credentials, forbidden address).
    #[error("{0}")]
    Rejected(TargetRejected),
    #[error("could not resolve host {host}: {detail}")]
    Dns { host: String, detail: String },
    #[error("the target did not answer within {limit:?}")]
    Timeout { limit: Duration },
    #[error("the target refused the connection")]
    ConnectionRefused,
    #[error("the TLS handshake with the target failed: {detail}")]
    Tls { detail: String },
    #[error("the target redirected more than {max} times")]
    TooManyRedirects { max: u8 },
    #[error("the request failed: {detail}")]
    Network { detail: String },
}

impl SendErrorKind {
    pub fn code(&self) -> &'static str {
        match self {
            Self::Rejected(rejected) => rejected.code(),
            Self::Dns { .. } => "dns_error",
            Self::Timeout { .. } => "timeout",
            Self::ConnectionRefused => "connection_refused",
            Self::Tls { .. } => "tls_error",
            Self::TooManyRedirects { .. } => "too_many_redirects",
            Self::Network { .. } => "network_error",
        }
    }
}

/// Why the redirect policy stopped a redirect; travels through reqwest's error and is recognised by
/// [`classify`].
#[derive(Debug, thiserror::Error)]
enum RedirectRefused {
    #[error("the target redirected more than {max} times")]
    TooMany { max: u8 },
    #[error("redirect refused: {0}")]
    Target(TargetRejected),
}

/// Decides one redirect hop: `hops_so_far` counts the URLs already requested (the first one
/// included), so the n-th redirect sees n.
fn check_redirect_hop(
    next: &Url,
    hops_so_far: usize,
    max: u8,
    allow_private: bool,
) -> Result<(), RedirectRefused> {
    if hops_so_far > usize::from(max) {
        return Err(RedirectRefused::TooMany { max });
    }
    check_target_url(next, allow_private).map_err(RedirectRefused::Target)
}

fn redirect_policy(policy: RedirectPolicy, allow_private: bool) -> reqwest::redirect::Policy {
    match policy {
        RedirectPolicy::None => reqwest::redirect::Policy::none(),
        RedirectPolicy::Limited(max) => reqwest::redirect::Policy::custom(move |attempt| {
            match check_redirect_hop(attempt.url(), attempt.previous().len(), max, allow_private) {
                Ok(()) => attempt.follow(),
                Err(refused) => attempt.error(refused),
            }
        }),
    }
}

/// Makes aws-lc-rs the process's default rustls crypto provider, for any other rustls client built in
/// the process (a plain `reqwest::Client` panics without one). Idempotent.
pub fn install_default_crypto_provider() {
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
}

/// TLS for provider and webhook targets: rustls on aws-lc-rs (the AWS SDK's crypto, so each binary
/// carries one TLS stack) trusting the compiled-in Mozilla roots (no file I/O at start-up).
fn tls_config() -> Result<rustls::ClientConfig, rustls::Error> {
    let roots = rustls::RootCertStore {
        roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
    };
    let mut config = rustls::ClientConfig::builder_with_provider(std::sync::Arc::new(
        rustls::crypto::aws_lc_rs::default_provider(),
    ))
    .with_safe_default_protocol_versions()?
    .with_root_certificates(roots)
    .with_no_client_auth();
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(config)
}

impl GuardedHttpClient {
    pub fn new(options: GuardOptions) -> Result<Self, ClientBuildError> {
        let tls = tls_config().map_err(ClientBuildError::Tls)?;
        let inner = reqwest::Client::builder()
            .use_preconfigured_tls(tls)
            .dns_resolver(std::sync::Arc::new(GuardedResolver {
                allow_private: options.allow_private,
            }))
            .no_proxy()
            .https_only(!options.allow_private)
            .redirect(redirect_policy(options.redirects, options.allow_private))
            .referer(false)
            .connect_timeout(options.connect_timeout)
            .user_agent(options.user_agent)
            .build()
            .map_err(ClientBuildError::Http)?;
        Ok(Self {
            inner,
            allow_private: options.allow_private,
            connect_timeout: options.connect_timeout,
        })
    }

    pub fn allow_private(&self) -> bool {
        self.allow_private
    }

    /// [`validate_target`] with this client's `allow_private`: the create/update-time check.
    pub async fn validate_target(&self, url: &Url) -> Result<(), TargetRejected> {
        validate_target(url, self.allow_private).await
    }

    /// Sends the request through the guard and reads the body up to the request's cap. Any HTTP
    /// status is an `Ok`; an `Err` means no response came.
    pub async fn send(&self, request: OutgoingRequest) -> Result<OutgoingResponse, SendError> {
        let started = Instant::now();
        let origin = origin_for_logs(&request.url);
        let limit = request.timeout;
        let outcome = match tokio::time::timeout(limit, self.send_unbounded(request)).await {
            Ok(outcome) => outcome,
            Err(_elapsed) => Err(SendErrorKind::Timeout { limit }),
        };
        let latency = started.elapsed();
        match outcome {
            Ok((status, headers, (body, body_truncated))) => {
                tracing::debug!(
                    target_origin = %origin,
                    status = status.as_u16(),
                    latency_ms = latency.as_millis() as u64,
                    body_truncated,
                    "outgoing request answered"
                );
                Ok(OutgoingResponse {
                    status,
                    headers,
                    body,
                    body_truncated,
                    latency,
                })
            }
            Err(kind) => {
                tracing::debug!(
                    target_origin = %origin,
                    error_code = kind.code(),
                    error = %kind,
                    latency_ms = latency.as_millis() as u64,
                    "outgoing request failed"
                );
                Err(SendError {
                    kind,
                    elapsed: latency,
                })
            }
        }
    }

    async fn send_unbounded(
        &self,
        request: OutgoingRequest,
    ) -> Result<(StatusCode, HeaderMap, (Bytes, bool)), SendErrorKind> {
        check_target_url(&request.url, self.allow_private).map_err(SendErrorKind::Rejected)?;
        let mut outgoing = reqwest::Request::new(request.method, request.url);
        *outgoing.headers_mut() = request.headers;
        *outgoing.body_mut() = request.body.map(reqwest::Body::from);
        let response = self
            .inner
            .execute(outgoing)
            .await
            .map_err(|e| self.classify(e))?;
        let status = response.status();
        let headers = response.headers().clone();
        let body = read_capped(response, request.max_response_bytes)
            .await
            .map_err(|e| self.classify(e))?;
        Ok((status, headers, body))
    }

    fn classify(&self, error: reqwest::Error) -> SendErrorKind {
        classify(error, self.connect_timeout)
    }
}

/// Reads at most `max` bytes of the body; returns whether more was sent.
async fn read_capped(
    mut response: reqwest::Response,
    max: usize,
) -> Result<(Bytes, bool), reqwest::Error> {
    let expected = response.content_length().map_or(0, |len| len as usize);
    let mut body = BytesMut::with_capacity(expected.min(max));
    while let Some(chunk) = response.chunk().await? {
        let room = max - body.len();
        if chunk.len() > room {
            body.extend_from_slice(&chunk[..room]);
            return Ok((body.freeze(), true));
        }
        body.extend_from_slice(&chunk);
    }
    Ok((body.freeze(), false))
}

/// The causes of an error, outermost first. `io::Error::source` skips the error it wraps, so the
/// wrapped error is visited explicitly (that is where rustls' and our resolver's errors sit).
fn causes<'a>(
    error: &'a (dyn StdError + 'static),
) -> impl Iterator<Item = &'a (dyn StdError + 'static)> {
    std::iter::successors(
        Some(error),
        |&current: &&'a (dyn StdError + 'static)| match current
            .downcast_ref::<io::Error>()
            .and_then(io::Error::get_ref)
        {
            Some(wrapped) => Some(wrapped as &(dyn StdError + 'static)),
            None => current.source(),
        },
    )
}

/// Maps reqwest's error to a stable kind. The URL is stripped first: reqwest's messages include it,
/// query and all.
fn classify(error: reqwest::Error, connect_timeout: Duration) -> SendErrorKind {
    let error = error.without_url();
    let root: &(dyn StdError + 'static) = &error;
    for cause in causes(root) {
        if let Some(rejected) = cause.downcast_ref::<TargetRejected>() {
            return match rejected {
                TargetRejected::Unresolvable { host, detail } => SendErrorKind::Dns {
                    host: host.clone(),
                    detail: detail.clone(),
                },
                other => SendErrorKind::Rejected(other.clone()),
            };
        }
        match cause.downcast_ref::<RedirectRefused>() {
            Some(RedirectRefused::TooMany { max }) => {
                return SendErrorKind::TooManyRedirects { max: *max }
            }
            Some(RedirectRefused::Target(rejected)) => {
                return SendErrorKind::Rejected(rejected.clone())
            }
            None => {}
        }
    }
    if error.is_timeout() {
        // The total timeout is enforced around the whole exchange by `send`; inside reqwest only
        // the connect timeout can fire.
        return SendErrorKind::Timeout {
            limit: connect_timeout,
        };
    }
    let io_errors = || causes(root).filter_map(|c| c.downcast_ref::<io::Error>());
    if io_errors().any(|e| e.kind() == io::ErrorKind::ConnectionRefused) {
        return SendErrorKind::ConnectionRefused;
    }
    let detail = causes(root)
        .last()
        .map_or_else(|| error.to_string(), |cause| cause.to_string());
    // rustls reports handshake and certificate failures as `InvalidData` I/O errors wrapping its own
    // error, during the connect phase.
    if error.is_connect()
        && io_errors().any(|e| e.kind() == io::ErrorKind::InvalidData && e.get_ref().is_some())
    {
        return SendErrorKind::Tls { detail };
    }
    SendErrorKind::Network { detail }
}

#[cfg(test)]
mod tests {
    use super::*;
    use wiremock::matchers::{header, method, path};
    use wiremock::{Mock, MockServer, ResponseTemplate};

    fn client(allow_private: bool, redirects: RedirectPolicy) -> GuardedHttpClient {
        GuardedHttpClient::new(GuardOptions {
            redirects,
            ..GuardOptions::webhook_deliveries(allow_private)
        })
        .unwrap()
    }

    fn url(s: &str) -> Url {
        Url::parse(s).unwrap()
    }

    async fn send_err(client: &GuardedHttpClient, request: OutgoingRequest) -> SendError {
        match client.send(request).await {
            Ok(response) => panic!("expected an error, got status {}", response.status),
            Err(error) => error,
        }
    }

    #[tokio::test]
    async fn a_local_target_is_reached_when_private_targets_are_allowed() {
        let server = MockServer::start().await;
        Mock::given(method("POST"))
            .and(path("/hook"))
            .and(header("x-signature", "abc"))
            .respond_with(ResponseTemplate::new(202).set_body_string("accepted"))
            .expect(1)
            .mount(&server)
            .await;
        let target = url(&format!("{}/hook", server.uri()));

        let response = client(true, RedirectPolicy::None)
            .send(
                OutgoingRequest::post(target)
                    .header(
                        HeaderName::from_static("x-signature"),
                        HeaderValue::from_static("abc"),
                    )
                    .body(r#"{"event":"x"}"#),
            )
            .await
            .unwrap();

        assert_eq!(response.status, StatusCode::ACCEPTED);
        assert_eq!(&response.body[..], b"accepted");
        assert!(!format!("{response:?}").contains("accepted"));
        assert!(!response.body_truncated);
        let received = server.received_requests().await.unwrap();
        assert_eq!(received[0].body, br#"{"event":"x"}"#);
        assert!(received[0]
            .headers
            .get("user-agent")
            .is_some_and(|ua| ua.to_str().unwrap().starts_with("IntegrationsHub/")));
    }

    #[tokio::test]
    async fn a_loopback_literal_is_refused_without_allow_private_and_nothing_is_sent() {
        let server = MockServer::start().await;
        let target = url(&format!(
            "https://127.0.0.1:{}/hook?api_key=SECRET",
            server.address().port()
        ));

        let error = send_err(
            &client(false, RedirectPolicy::None),
            OutgoingRequest::get(target),
        )
        .await;

        assert_eq!(error.code(), "forbidden_target");
        assert_eq!(
            error.to_string(),
            "address 127.0.0.1 is loopback (127.0.0.0/8)"
        );
        assert!(!error.is_transient());
        assert!(server.received_requests().await.unwrap().is_empty());
    }

    #[tokio::test]
    async fn localhost_is_refused_by_the_resolver_without_allow_private() {
        let server = MockServer::start().await;
        let target = url(&format!(
            "https://localhost:{}/hook",
            server.address().port()
        ));

        let error = send_err(
            &client(false, RedirectPolicy::None),
            OutgoingRequest::get(target),
        )
        .await;

        // Had the guard let the connection through, the TLS handshake with the plain-HTTP mock
        // would have failed with "tls_error" instead.
        assert_eq!(error.code(), "forbidden_target", "{error}");
        assert!(
            error.to_string().starts_with("host localhost resolves to "),
            "{error}"
        );
        assert!(error.to_string().contains("loopback"), "{error}");
    }

    #[tokio::test]
    async fn the_metadata_address_is_refused_even_when_private_targets_are_allowed() {
        for target in [
            "http://169.254.169.254/latest/meta-data/",
            "http://[::ffff:169.254.169.254]/latest/meta-data/",
            "http://[fd00:ec2::254]/latest/meta-data/",
        ] {
            let error = send_err(
                &client(true, RedirectPolicy::None),
                OutgoingRequest::get(url(target)),
            )
            .await;

            assert_eq!(error.code(), "forbidden_target", "{target}");
            assert!(error.to_string().contains("metadata"), "{target}: {error}");
            assert!(error.elapsed < Duration::from_secs(1));
        }
    }

    #[tokio::test]
    async fn plain_http_is_refused_without_allow_private() {
        let error = send_err(
            &client(false, RedirectPolicy::None),
            OutgoingRequest::get(url("http://hooks.example.com/in")),
        )
        .await;

        assert_eq!(error.code(), "forbidden_target");
        assert_eq!(
            error.to_string(),
            "plain http is not allowed for outgoing requests; use https"
        );
    }

    #[tokio::test]
    async fn a_3xx_is_returned_as_the_response_when_redirects_are_not_followed() {
        let server = MockServer::start().await;
        Mock::given(path("/hook"))
            .respond_with(
                ResponseTemplate::new(302).insert_header("location", "http://169.254.169.254/"),
            )
            .mount(&server)
            .await;

        let response = client(true, RedirectPolicy::None)
            .send(OutgoingRequest::post(url(&format!(
                "{}/hook",
                server.uri()
            ))))
            .await
            .unwrap();

        assert_eq!(response.status, StatusCode::FOUND);
        assert_eq!(
            response.headers.get("location").unwrap(),
            "http://169.254.169.254/"
        );
    }

    #[tokio::test]
    async fn a_redirect_to_the_metadata_address_is_refused_at_the_hop() {
        let server = MockServer::start().await;
        Mock::given(path("/start"))
            .respond_with(ResponseTemplate::new(302).insert_header(
                "location",
                "http://169.254.169.254/latest/meta-data/iam?token=SECRET",
            ))
            .expect(1)
            .mount(&server)
            .await;

        let error = send_err(
            &client(true, RedirectPolicy::Limited(5)),
            OutgoingRequest::get(url(&format!("{}/start", server.uri()))),
        )
        .await;

        assert_eq!(error.code(), "forbidden_target", "{error}");
        assert!(
            error
                .to_string()
                .starts_with("address 169.254.169.254 is link-local"),
            "{error}"
        );
        assert!(!format!("{error} {error:?}").contains("SECRET"));
    }

    #[tokio::test]
    async fn allowed_redirects_are_followed_without_a_referer() {
        let server = MockServer::start().await;
        Mock::given(path("/old"))
            .respond_with(ResponseTemplate::new(301).insert_header("location", "/new"))
            .mount(&server)
            .await;
        Mock::given(path("/new"))
            .respond_with(ResponseTemplate::new(200).set_body_string("moved here"))
            .mount(&server)
            .await;

        let response = client(true, RedirectPolicy::Limited(5))
            .send(OutgoingRequest::get(url(&format!(
                "{}/old?key=SECRET",
                server.uri()
            ))))
            .await
            .unwrap();

        assert_eq!(response.status, StatusCode::OK);
        assert_eq!(&response.body[..], b"moved here");
        let received = server.received_requests().await.unwrap();
        assert_eq!(received.len(), 2);
        assert!(received[1].headers.get("referer").is_none());
    }

    #[tokio::test]
    async fn a_redirect_chain_longer_than_the_limit_fails() {
        let server = MockServer::start().await;
        Mock::given(path("/loop"))
            .respond_with(ResponseTemplate::new(302).insert_header("location", "/loop"))
            .mount(&server)
            .await;

        let error = send_err(
            &client(true, RedirectPolicy::Limited(2)),
            OutgoingRequest::get(url(&format!("{}/loop", server.uri()))),
        )
        .await;

        assert_eq!(error.code(), "too_many_redirects", "{error}");
        assert_eq!(error.to_string(), "the target redirected more than 2 times");
        // The first request plus two followed hops.
        assert_eq!(server.received_requests().await.unwrap().len(), 3);
    }

    #[test]
    fn each_redirect_hop_is_checked_like_the_first_url() {
        let private = url("https://10.0.0.5/internal");
        let downgrade = url("http://api.example.com/next");
        let fine = url("https://api.example.com/next");

        assert!(matches!(
            check_redirect_hop(&private, 1, 5, false),
            Err(RedirectRefused::Target(
                TargetRejected::ForbiddenAddress { .. }
            ))
        ));
        assert!(matches!(
            check_redirect_hop(&downgrade, 1, 5, false),
            Err(RedirectRefused::Target(TargetRejected::InsecureScheme))
        ));
        assert!(check_redirect_hop(&fine, 5, 5, false).is_ok());
        assert!(matches!(
            check_redirect_hop(&fine, 6, 5, false),
            Err(RedirectRefused::TooMany { max: 5 })
        ));
        assert!(check_redirect_hop(&private, 1, 5, true).is_ok());
    }

    #[tokio::test]
    async fn a_slow_target_fails_with_timeout() {
        let server = MockServer::start().await;
        Mock::given(path("/slow"))
            .respond_with(ResponseTemplate::new(200).set_delay(Duration::from_secs(5)))
            .mount(&server)
            .await;

        let error = send_err(
            &client(true, RedirectPolicy::None),
            OutgoingRequest::get(url(&format!("{}/slow?key=SECRET", server.uri())))
                .timeout(Duration::from_millis(200)),
        )
        .await;

        assert_eq!(error.code(), "timeout");
        assert_eq!(error.to_string(), "the target did not answer within 200ms");
        assert!(error.is_transient());
        assert!(error.elapsed >= Duration::from_millis(200));
        assert!(error.elapsed < Duration::from_secs(2));
    }

    #[tokio::test]
    async fn a_closed_port_fails_with_connection_refused() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        drop(listener);

        let error = send_err(
            &client(true, RedirectPolicy::None),
            OutgoingRequest::get(url(&format!("http://127.0.0.1:{port}/"))),
        )
        .await;

        assert_eq!(error.code(), "connection_refused", "{error:?}");
        assert_eq!(error.to_string(), "the target refused the connection");
    }

    #[tokio::test]
    async fn a_failed_tls_handshake_is_a_tls_error() {
        let server = MockServer::start().await;

        let error = send_err(
            &client(true, RedirectPolicy::None),
            OutgoingRequest::get(url(&format!(
                "https://127.0.0.1:{}/",
                server.address().port()
            ))),
        )
        .await;

        assert_eq!(error.code(), "tls_error", "{error:?}");
        assert!(
            error
                .to_string()
                .starts_with("the TLS handshake with the target failed: "),
            "{error}"
        );
    }

    #[tokio::test]
    async fn an_unresolvable_host_is_a_dns_error() {
        let error = send_err(
            &client(false, RedirectPolicy::None),
            OutgoingRequest::get(url("https://no-such-host.invalid/")),
        )
        .await;

        assert_eq!(error.code(), "dns_error", "{error:?}");
        assert!(
            error
                .to_string()
                .starts_with("could not resolve host no-such-host.invalid: "),
            "{error}"
        );
    }

    #[tokio::test]
    async fn a_large_body_is_truncated_at_the_cap() {
        let server = MockServer::start().await;
        Mock::given(path("/big"))
            .respond_with(ResponseTemplate::new(200).set_body_bytes(vec![b'x'; 3 * 1024 * 1024]))
            .mount(&server)
            .await;
        Mock::given(path("/exact"))
            .respond_with(ResponseTemplate::new(200).set_body_bytes(vec![b'y'; 1024]))
            .mount(&server)
            .await;
        let client = client(true, RedirectPolicy::None);

        let big = client
            .send(OutgoingRequest::get(url(&format!("{}/big", server.uri()))))
            .await
            .unwrap();
        let exact = client
            .send(
                OutgoingRequest::get(url(&format!("{}/exact", server.uri())))
                    .max_response_bytes(1024),
            )
            .await
            .unwrap();

        assert_eq!(big.body.len(), DEFAULT_MAX_RESPONSE_BYTES);
        assert!(big.body_truncated);
        assert_eq!(exact.body.len(), 1024);
        assert!(!exact.body_truncated);
    }

    #[tokio::test]
    async fn urls_with_credentials_or_other_schemes_are_invalid() {
        let client = client(true, RedirectPolicy::None);

        let credentials = send_err(
            &client,
            OutgoingRequest::get(url("https://user:hunter2@example.com/")),
        )
        .await;
        let scheme = send_err(&client, OutgoingRequest::get(url("ftp://example.com/f"))).await;

        assert_eq!(credentials.code(), "invalid_url");
        assert!(!credentials.to_string().contains("hunter2"));
        assert_eq!(scheme.code(), "invalid_url");
    }

    #[test]
    fn a_request_debug_output_shows_no_secret() {
        let request = OutgoingRequest::post(url(
            "https://api.example.com/v1/bot123:TOKEN/send?key=SECRET",
        ))
        .header(
            http::header::AUTHORIZATION,
            HeaderValue::from_static("Bearer TOKEN"),
        )
        .body("SECRET body");

        let shown = format!("{request:?}");

        assert!(shown.contains("https://api.example.com"), "{shown}");
        assert!(shown.contains("authorization"), "{shown}");
        assert!(
            !shown.contains("TOKEN") && !shown.contains("SECRET"),
            "{shown}"
        );
    }
}
