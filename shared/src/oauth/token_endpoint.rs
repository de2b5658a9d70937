//! The provider's token endpoint: the authorization-code exchange and refresh-token grants through
//! the `oauth2` crate, and RFC 7009 revocation, all sent through the SSRF-guarded client without
//! following redirects (a token request is never replayed to another origin).
//!
//! Every failure is classified once, here: a refusal (an OAuth error response, or 400/401) means
//! the grant is dead and the tenant must reconnect; anything else (network, timeout, 5xx, an
//! unreadable answer) may pass and is retried.

use std::future::Future;
use std::pin::Pin;
use std::sync::Mutex;
use std::time::Duration;

use http::{header, HeaderValue, Method};
use oauth2::basic::{
    BasicErrorResponse, BasicRevocationErrorResponse, BasicTokenIntrospectionResponse,
    BasicTokenType,
};
use oauth2::{
    AuthType, AuthorizationCode, Client, ClientId, ClientSecret, EndpointNotSet, EndpointSet,
    ExtraTokenFields, PkceCodeVerifier, RedirectUrl, RefreshToken, RequestTokenError,
    StandardRevocableToken, StandardTokenResponse, TokenResponse, TokenUrl,
};
use serde::{Deserialize, Serialize};
use url::Url;
use zeroize::Zeroizing;

use crate::catalog::{OAuth2, TokenAuth};
use crate::http_client::{GuardedHttpClient, OutgoingRequest, SendError};

/// A token request gets 10 s, like test connection: a caller waits on it.
pub const TOKEN_REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
/// Token responses are small; a bigger one is not read.
const MAX_TOKEN_RESPONSE_BYTES: usize = 64 * 1024;

/// The client credentials of an OAuth app (the tenant's own or the platform's).
#[derive(Clone)]
pub struct ClientCredentials {
    pub client_id: String,
    pub client_secret: Zeroizing<String>,
}

impl std::fmt::Debug for ClientCredentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientCredentials")
            .field("client_id", &self.client_id)
            .finish_non_exhaustive()
    }
}

/// What a successful grant returned. Token values are zeroized on drop and never printed.
pub struct TokenGrant {
    pub access_token: Zeroizing<String>,
    pub refresh_token: Option<Zeroizing<String>>,
    pub id_token: Option<Zeroizing<String>>,
    pub token_type: String,
    pub expires_in: Option<Duration>,
    /// The granted scopes when the server said (RFC 6749 §5.1: absent = as requested).
    pub scopes: Option<Vec<String>>,
}

impl std::fmt::Debug for TokenGrant {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenGrant")
            .field("token_type", &self.token_type)
            .field("expires_in", &self.expires_in)
            .field("has_refresh_token", &self.refresh_token.is_some())
            .field("has_id_token", &self.id_token.is_some())
            .field("scopes", &self.scopes)
            .finish()
    }
}

/// Why a token request failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TokenEndpointError {
    /// The server refused the grant (`invalid_grant`, `invalid_client`, or any 400/401): trying
    /// again with the same grant cannot work.
    #[error("the token endpoint refused the request ({status}: {error})")]
    Refused {
        status: u16,
        /// The OAuth error code (`invalid_grant`, ...), or `http_<status>` without one.
        error: String,
    },
    /// No usable answer (network, timeout, 5xx, an unreadable body): may work later.
    #[error("the token endpoint is unavailable: {reason}")]
    Unavailable { reason: String },
}

impl TokenEndpointError {
    /// A stable code for logs and `lastError`.
    pub fn code(&self) -> &str {
        match self {
            TokenEndpointError::Refused { error, .. } => error,
            TokenEndpointError::Unavailable { .. } => "token_endpoint_unavailable",
        }
    }
}

/// The one extra field read from token responses: OpenID Connect's `id_token` (kept as a secret).
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
struct IdTokenField {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    id_token: Option<String>,
}

impl ExtraTokenFields for IdTokenField {}

type HubTokenResponse = StandardTokenResponse<IdTokenField, BasicTokenType>;

type HubClient = Client<
    BasicErrorResponse,
    HubTokenResponse,
    BasicTokenIntrospectionResponse,
    StandardRevocableToken,
    BasicRevocationErrorResponse,
    EndpointNotSet,
    EndpointNotSet,
    EndpointNotSet,
    EndpointNotSet,
    EndpointSet,
>;

fn client_for(
    token_url: &Url,
    app: &ClientCredentials,
    token_auth: TokenAuth,
    redirect_uri: Option<&str>,
) -> Result<HubClient, TokenEndpointError> {
    let mut client = Client::new(ClientId::new(app.client_id.clone()))
        .set_client_secret(ClientSecret::new(app.client_secret.as_str().to_string()))
        .set_token_uri(TokenUrl::from_url(token_url.clone()))
        .set_auth_type(match token_auth {
            TokenAuth::Body => AuthType::RequestBody,
            TokenAuth::Basic => AuthType::BasicAuth,
        });
    if let Some(uri) = redirect_uri {
        let uri =
            RedirectUrl::new(uri.to_string()).map_err(|e| TokenEndpointError::Unavailable {
                reason: format!("the redirect URI is not a URL: {e}"),
            })?;
        client = client.set_redirect_uri(uri);
    }
    Ok(client)
}

/// Exchanges an authorization code (with its PKCE verifier when one was sent) for tokens.
pub async fn exchange_code(
    http: &GuardedHttpClient,
    oauth: &OAuth2,
    app: &ClientCredentials,
    redirect_uri: &str,
    code: &str,
    pkce_verifier: Option<&str>,
) -> Result<TokenGrant, TokenEndpointError> {
    let client = client_for(&oauth.token_url, app, oauth.token_auth, Some(redirect_uri))?;
    let mut request = client.exchange_code(AuthorizationCode::new(code.to_string()));
    if let Some(verifier) = pkce_verifier {
        request = request.set_pkce_verifier(PkceCodeVerifier::new(verifier.to_string()));
    }
    let bridge = Bridge::new(http);
    let result = request.request_async(&bridge).await;
    grant_from(result, &bridge)
}

/// Trades a refresh token for a new access token (and, with rotation, a new refresh token) at
/// `refreshUrl` when the catalog has one, else `tokenUrl`.
pub async fn refresh(
    http: &GuardedHttpClient,
    oauth: &OAuth2,
    app: &ClientCredentials,
    refresh_token: &str,
) -> Result<TokenGrant, TokenEndpointError> {
    let url = oauth.refresh_url.as_ref().unwrap_or(&oauth.token_url);
    let client = client_for(url, app, oauth.token_auth, None)?;
    let token = RefreshToken::new(refresh_token.to_string());
    let bridge = Bridge::new(http);
    let result = client
        .exchange_refresh_token(&token)
        .request_async(&bridge)
        .await;
    grant_from(result, &bridge)
}

/// RFC 7009 revocation with the token endpoint's client authentication. Sent directly rather than
/// through `oauth2`, which refuses a revocation URL that is not `https` even where the guard
/// admits plain `http` (the local stack); in production the guard refuses `http` itself.
pub async fn revoke(
    http: &GuardedHttpClient,
    revoke_url: &Url,
    token_auth: TokenAuth,
    app: &ClientCredentials,
    token: &str,
    token_type_hint: &str,
) -> Result<(), TokenEndpointError> {
    let (request, body) = revocation_request(revoke_url, token_auth, app, token, token_type_hint)?;
    let request = request.body(body.as_bytes().to_vec());
    let response = http.send(request).await.map_err(unavailable)?;
    let status = response.status.as_u16();
    match status {
        // RFC 7009 §2.2: 200 also for a token the server did not know.
        200..=299 => Ok(()),
        400..=499 => Err(TokenEndpointError::Refused {
            status,
            error: oauth_error_code(&response.body).unwrap_or_else(|| format!("http_{status}")),
        }),
        _ => Err(TokenEndpointError::Unavailable {
            reason: format!("the revocation endpoint answered {status}"),
        }),
    }
}

/// The revocation request and its form body (built apart: the form serializer is not `Send`).
fn revocation_request(
    revoke_url: &Url,
    token_auth: TokenAuth,
    app: &ClientCredentials,
    token: &str,
    token_type_hint: &str,
) -> Result<(OutgoingRequest, Zeroizing<String>), TokenEndpointError> {
    let mut form = url::form_urlencoded::Serializer::new(String::new());
    form.append_pair("token", token);
    form.append_pair("token_type_hint", token_type_hint);
    let mut request = OutgoingRequest::new(Method::POST, revoke_url.clone())
        .timeout(TOKEN_REQUEST_TIMEOUT)
        .max_response_bytes(MAX_TOKEN_RESPONSE_BYTES)
        .header(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/x-www-form-urlencoded"),
        )
        .header(header::ACCEPT, HeaderValue::from_static("application/json"));
    match token_auth {
        TokenAuth::Body => {
            form.append_pair("client_id", &app.client_id);
            form.append_pair("client_secret", &app.client_secret);
        }
        TokenAuth::Basic => {
            // RFC 6749 §2.3.1: both parts form-urlencoded before base64, as oauth2 does for /token.
            let user: String =
                url::form_urlencoded::byte_serialize(app.client_id.as_bytes()).collect();
            let password: Zeroizing<String> = Zeroizing::new(
                url::form_urlencoded::byte_serialize(app.client_secret.as_bytes()).collect(),
            );
            let credentials = Zeroizing::new(format!("{user}:{}", password.as_str()));
            use base64::Engine as _;
            let encoded = Zeroizing::new(
                base64::engine::general_purpose::STANDARD.encode(credentials.as_bytes()),
            );
            let mut value =
                HeaderValue::from_str(&format!("Basic {}", encoded.as_str())).map_err(|_| {
                    TokenEndpointError::Unavailable {
                        reason: "the client id cannot be sent in a header".to_string(),
                    }
                })?;
            value.set_sensitive(true);
            request = request.header(header::AUTHORIZATION, value);
        }
    }
    Ok((request, Zeroizing::new(form.finish())))
}

/// The `error` member of an OAuth error body, when it is a short code.
fn oauth_error_code(body: &[u8]) -> Option<String> {
    #[derive(Deserialize)]
    struct ErrorBody {
        error: String,
    }
    serde_json::from_slice::<ErrorBody>(body)
        .ok()
        .map(|body| body.error)
        .filter(|code| {
            code.len() <= 64
                && code
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'))
        })
}

fn unavailable(error: SendError) -> TokenEndpointError {
    TokenEndpointError::Unavailable {
        reason: error.to_string(),
    }
}

/// Carries `oauth2`'s requests over the guarded client and remembers the last status, which
/// `oauth2`'s errors do not keep but the classification needs.
/// It owns its (cheaply cloned) client: `oauth2`'s futures are `Send` for every lifetime only
/// with a client type that borrows nothing.
struct Bridge {
    http: GuardedHttpClient,
    last_status: Mutex<Option<u16>>,
}

impl Bridge {
    fn new(http: &GuardedHttpClient) -> Self {
        Bridge {
            http: http.clone(),
            last_status: Mutex::new(None),
        }
    }

    fn last_status(&self) -> Option<u16> {
        self.last_status
            .lock()
            .map(|status| *status)
            .unwrap_or(None)
    }

    async fn send(&self, request: oauth2::HttpRequest) -> Result<oauth2::HttpResponse, SendError> {
        let (parts, body) = request.into_parts();
        let url = Url::parse(&parts.uri.to_string()).map_err(|e| SendError {
            kind: crate::http_client::SendErrorKind::Network {
                detail: format!("the token URL is not a URL: {e}"),
            },
            elapsed: Duration::ZERO,
        })?;
        let mut outgoing = OutgoingRequest::new(parts.method, url)
            .timeout(TOKEN_REQUEST_TIMEOUT)
            .max_response_bytes(MAX_TOKEN_RESPONSE_BYTES);
        outgoing.headers = parts.headers;
        let body = Zeroizing::new(body);
        let outgoing = outgoing.body(body.to_vec());
        let response = self.http.send(outgoing).await?;
        if let Ok(mut last) = self.last_status.lock() {
            *last = Some(response.status.as_u16());
        }
        let mut answer = http::Response::builder().status(response.status);
        if let Some(headers) = answer.headers_mut() {
            *headers = response.headers;
        }
        answer.body(response.body.to_vec()).map_err(|e| SendError {
            kind: crate::http_client::SendErrorKind::Network {
                detail: e.to_string(),
            },
            elapsed: response.latency,
        })
    }
}

/// A named client rather than a closure: the boxed `Send` future keeps the handlers' futures
/// `Send` for every lifetime (a closure returning a borrowing future is not general enough).
impl<'c> oauth2::AsyncHttpClient<'c> for Bridge {
    type Error = SendError;
    type Future =
        Pin<Box<dyn Future<Output = Result<oauth2::HttpResponse, SendError>> + Send + 'c>>;

    fn call(&'c self, request: oauth2::HttpRequest) -> Self::Future {
        Box::pin(self.send(request))
    }
}

fn grant_from(
    result: Result<
        HubTokenResponse,
        RequestTokenError<
            SendError,
            oauth2::StandardErrorResponse<oauth2::basic::BasicErrorResponseType>,
        >,
    >,
    bridge: &Bridge,
) -> Result<TokenGrant, TokenEndpointError> {
    let status = bridge.last_status();
    match result {
        Ok(response) => Ok(TokenGrant {
            access_token: Zeroizing::new(response.access_token().secret().clone()),
            refresh_token: response
                .refresh_token()
                .map(|token| Zeroizing::new(token.secret().clone())),
            id_token: response.extra_fields().id_token.clone().map(Zeroizing::new),
            token_type: token_type_name(response.token_type()),
            expires_in: response.expires_in(),
            scopes: response
                .scopes()
                .map(|scopes| scopes.iter().map(|scope| scope.to_string()).collect()),
        }),
        // An OAuth error body with a 5xx is still an outage (`temporarily_unavailable`).
        Err(RequestTokenError::ServerResponse(error)) => match status {
            Some(status) if status >= 500 => Err(TokenEndpointError::Unavailable {
                reason: format!("the token endpoint answered {status} ({})", error.error()),
            }),
            _ => Err(TokenEndpointError::Refused {
                status: status.unwrap_or(400),
                error: error.error().to_string(),
            }),
        },
        Err(RequestTokenError::Request(error)) => Err(unavailable(error)),
        Err(other) => match status {
            Some(status @ (400 | 401)) => Err(TokenEndpointError::Refused {
                status,
                error: format!("http_{status}"),
            }),
            Some(status) => Err(TokenEndpointError::Unavailable {
                reason: format!("the token endpoint answered {status} ({})", short(&other)),
            }),
            None => Err(TokenEndpointError::Unavailable {
                reason: short(&other),
            }),
        },
    }
}

fn token_type_name(token_type: &BasicTokenType) -> String {
    match token_type {
        BasicTokenType::Bearer => "Bearer".to_string(),
        BasicTokenType::Mac => "MAC".to_string(),
        BasicTokenType::Extension(name) => name.clone(),
    }
}

/// A description of a parse failure without the body (which may hold tokens).
fn short<E: std::error::Error>(
    error: &RequestTokenError<
        E,
        oauth2::StandardErrorResponse<oauth2::basic::BasicErrorResponseType>,
    >,
) -> String {
    match error {
        RequestTokenError::Parse(error, _) => {
            format!("an unreadable token response (at {})", error.path())
        }
        RequestTokenError::Other(message) => message.chars().take(120).collect(),
        RequestTokenError::ServerResponse(error) => error.error().to_string(),
        RequestTokenError::Request(error) => error.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::http_client::GuardOptions;
    use wiremock::matchers::{body_string_contains, header, method, path};
    use wiremock::{Mock, MockServer, ResponseTemplate};

    fn provider(server: &MockServer, token_auth: TokenAuth) -> OAuth2 {
        let url = |p: &str| Url::parse(&format!("{}{p}", server.uri())).expect("url");
        OAuth2 {
            authorize_url: url("/authorize"),
            token_url: url("/token"),
            revoke_url: Some(url("/revoke")),
            refresh_url: None,
            issuer: None,
            scopes: vec!["a".into()],
            scope_separator: " ".into(),
            pkce: true,
            token_auth,
            authorize_params: Default::default(),
            apply: None,
        }
    }

    fn app() -> ClientCredentials {
        ClientCredentials {
            client_id: "client:id".into(),
            client_secret: Zeroizing::new("s3cr+t/=".into()),
        }
    }

    fn http() -> GuardedHttpClient {
        crate::http_client::install_default_crypto_provider();
        GuardedHttpClient::new(GuardOptions::webhook_deliveries(true)).expect("client")
    }

    async fn refresh_against(response: ResponseTemplate) -> Result<TokenGrant, TokenEndpointError> {
        let server = MockServer::start().await;
        Mock::given(method("POST"))
            .and(path("/token"))
            .respond_with(response)
            .mount(&server)
            .await;
        refresh(&http(), &provider(&server, TokenAuth::Body), &app(), "rt").await
    }

    #[tokio::test]
    async fn a_grant_answer_is_read_with_its_rotated_refresh_token_and_id_token() {
        let grant = refresh_against(ResponseTemplate::new(200).set_body_json(serde_json::json!({
            "access_token": "at", "token_type": "bearer", "expires_in": 3600,
            "refresh_token": "rt2", "id_token": "a.b.c", "scope": "a b"
        })))
        .await
        .expect("grant");
        assert_eq!(grant.access_token.as_str(), "at");
        assert_eq!(
            grant.refresh_token.as_deref().map(String::as_str),
            Some("rt2")
        );
        assert_eq!(grant.id_token.as_deref().map(String::as_str), Some("a.b.c"));
        assert_eq!(grant.token_type, "Bearer");
        assert_eq!(grant.expires_in, Some(Duration::from_secs(3600)));
        assert_eq!(grant.scopes, Some(vec!["a".to_string(), "b".to_string()]));
    }

    #[tokio::test]
    async fn refusals_are_told_apart_from_outages() {
        let refused = refresh_against(
            ResponseTemplate::new(400).set_body_json(serde_json::json!({"error": "invalid_grant"})),
        )
        .await
        .unwrap_err();
        assert_eq!(
            refused,
            TokenEndpointError::Refused {
                status: 400,
                error: "invalid_grant".into()
            }
        );
        let bare_401 = refresh_against(ResponseTemplate::new(401))
            .await
            .unwrap_err();
        assert!(matches!(
            bare_401,
            TokenEndpointError::Refused { status: 401, .. }
        ));
        for outage in [
            ResponseTemplate::new(503),
            ResponseTemplate::new(500)
                .set_body_json(serde_json::json!({"error": "temporarily_unavailable"})),
            ResponseTemplate::new(200).set_body_string("<html>maintenance</html>"),
        ] {
            let error = refresh_against(outage).await.unwrap_err();
            assert!(
                matches!(error, TokenEndpointError::Unavailable { .. }),
                "{error:?}"
            );
        }
    }

    #[tokio::test]
    async fn an_unreachable_token_endpoint_is_an_outage() {
        let server = MockServer::start().await;
        let oauth = provider(&server, TokenAuth::Body);
        drop(server);
        let error = refresh(&http(), &oauth, &app(), "rt").await.unwrap_err();
        assert!(matches!(error, TokenEndpointError::Unavailable { .. }));
    }

    #[tokio::test]
    async fn revocation_authenticates_like_the_token_endpoint() {
        let server = MockServer::start().await;
        // RFC 6749 §2.3.1: "client:id" / "s3cr+t/=" form-urlencoded, then base64.
        let expected = {
            use base64::Engine as _;
            base64::engine::general_purpose::STANDARD.encode("client%3Aid:s3cr%2Bt%2F%3D")
        };
        Mock::given(method("POST"))
            .and(path("/revoke"))
            .and(header(
                "authorization",
                format!("Basic {expected}").as_str(),
            ))
            .and(body_string_contains("token=the-refresh-token"))
            .and(body_string_contains("token_type_hint=refresh_token"))
            .respond_with(ResponseTemplate::new(200))
            .expect(1)
            .mount(&server)
            .await;
        Mock::given(method("POST"))
            .and(path("/revoke"))
            .and(body_string_contains("client_secret=s3cr%2Bt%2F%3D"))
            .and(body_string_contains("token_type_hint=access_token"))
            .respond_with(ResponseTemplate::new(200))
            .expect(1)
            .mount(&server)
            .await;
        let oauth = provider(&server, TokenAuth::Basic);
        let url = oauth.revoke_url.clone().expect("revoke url");
        revoke(
            &http(),
            &url,
            TokenAuth::Basic,
            &app(),
            "the-refresh-token",
            "refresh_token",
        )
        .await
        .expect("revoked");
        revoke(
            &http(),
            &url,
            TokenAuth::Body,
            &app(),
            "the-access-token",
            "access_token",
        )
        .await
        .expect("revoked");
    }
}
