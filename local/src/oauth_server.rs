//! A local OAuth 2.0 authorization server for the end-to-end tests and the README walkthrough.
//!
//! It stands in for a provider's authorization server (authorization code grant with PKCE, refresh,
//! revocation) and a protected resource (`/me`), and it checks what a real one checks, so a client
//! bug fails here rather than against the provider: RFC 6749 (code grant, client authentication,
//! single-use codes bound to client, redirect URI and scope, error responses), RFC 7636 (PKCE S256
//! only), RFC 9207 (`iss` in the authorization response), RFC 7009 (revocation), RFC 8414
//! (metadata), and refresh token rotation with reuse detection (OAuth 2.0 Security BCP, RFC 9700).
//!
//! Consent is simulated: `/authorize` approves at once unless [`LocalAuthServer::deny_next_consent`]
//! was called. Tests can inject token endpoint failures and read back every token and revocation
//! request.

use std::collections::{HashMap, HashSet, VecDeque};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine;
use rand::RngCore;
use serde_json::{json, Map, Value};
use sha2::{Digest, Sha256};
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

#[cfg(test)]
mod tests;

/// How long an authorization code can be exchanged (RFC 6749 §4.1.2 recommends at most 10 minutes).
pub const DEFAULT_AUTHORIZATION_CODE_TTL: Duration = Duration::from_secs(600);

/// The `sub` of the one simulated resource owner.
pub const LOCAL_USER: &str = "local-user";

/// The realm named in `WWW-Authenticate: Basic` (RFC 7617 requires one).
const BASIC_REALM: &str = "local-oauth-server";

/// Random bytes in codes and tokens: 256 bits, well past the 128 below which guessing becomes a
/// concern (RFC 6749 §10.10, RFC 6819 §5.1.4.2.2).
const TOKEN_BYTES: usize = 32;

/// How a client proves its identity at the token and revocation endpoints (RFC 6749 §2.3.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClientAuthMethod {
    /// `client_secret_basic`: `Authorization: Basic base64(urlencode(id):urlencode(secret))`.
    Basic,
    /// `client_secret_post`: `client_id` and `client_secret` in the form body.
    Post,
}

impl ClientAuthMethod {
    /// The RFC 8414 / RFC 7591 name of the method.
    pub fn as_str(&self) -> &'static str {
        match self {
            ClientAuthMethod::Basic => "client_secret_basic",
            ClientAuthMethod::Post => "client_secret_post",
        }
    }
}

/// A confidential client known to the server.
#[derive(Clone, PartialEq, Eq)]
pub struct RegisteredClient {
    pub client_id: String,
    pub client_secret: String,
    /// Compared as exact strings, as RFC 6749 §3.1.2.2 and the Security BCP require.
    pub redirect_uris: Vec<String>,
    /// The only client authentication method accepted for this client.
    pub auth_method: ClientAuthMethod,
    /// When set, an authorization request without an S256 `code_challenge` is refused.
    pub require_pkce: bool,
}

impl std::fmt::Debug for RegisteredClient {
    // The secret stays out of logs and assertion messages.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RegisteredClient")
            .field("client_id", &self.client_id)
            .field("client_secret", &"<redacted>")
            .field("redirect_uris", &self.redirect_uris)
            .field("auth_method", &self.auth_method)
            .field("require_pkce", &self.require_pkce)
            .finish()
    }
}

/// How the server behaves; [`AuthServerOptions::default`] is a strict, ordinary server.
#[derive(Debug, Clone)]
pub struct AuthServerOptions {
    /// `127.0.0.1:0` picks a free port.
    pub listen: SocketAddr,
    /// RFC 9207: add `iss=<issuer>` to every authorization response redirect.
    pub send_iss: bool,
    /// `expires_in` and lifetime of issued access tokens.
    pub access_token_ttl: Duration,
    /// Each refresh issues a new refresh token and makes the old one invalid; reusing an old one
    /// revokes the whole token family.
    pub rotate_refresh_tokens: bool,
    /// Add an `id_token` (JWT-shaped, not verifiable) to code exchange responses.
    pub issue_id_token: bool,
    /// Sleep before answering `/token`, so concurrent requests overlap in tests.
    pub token_delay: Duration,
    /// When set, every requested scope must be one of these (else `invalid_scope`).
    pub scopes_supported: Option<Vec<String>>,
    /// How long an authorization code can be exchanged (default 10 minutes).
    pub authorization_code_ttl: Duration,
    /// Print one line per request to stderr (method, path, client id, grant type, status; never a
    /// token, secret, code or state). For the `local-oauth-server` binary.
    pub log_requests: bool,
}

impl Default for AuthServerOptions {
    fn default() -> Self {
        AuthServerOptions {
            listen: SocketAddr::from((Ipv4Addr::LOCALHOST, 0)),
            send_iss: true,
            access_token_ttl: Duration::from_secs(3600),
            rotate_refresh_tokens: true,
            issue_id_token: false,
            token_delay: Duration::ZERO,
            scopes_supported: None,
            authorization_code_ttl: DEFAULT_AUTHORIZATION_CODE_TTL,
            log_requests: false,
        }
    }
}

/// A failure the token endpoint answers instead of processing the request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InjectedFailure {
    /// 400 `{"error":"invalid_grant"}`.
    InvalidGrant,
    /// 503 `{"error":"temporarily_unavailable"}`.
    ServerError,
    /// 401 `{"error":"invalid_client"}`.
    Unauthorized,
}

/// One `POST /token`, refused or not, as the server saw it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenRequestRecord {
    /// Empty when the request had none.
    pub grant_type: String,
    /// How the client tried to authenticate (whether or not it succeeded); `None` if it did not.
    pub client_auth: Option<ClientAuthMethod>,
    pub client_id: Option<String>,
    pub code_verifier: Option<String>,
    pub redirect_uri: Option<String>,
    pub refresh_token: Option<String>,
    pub status: u16,
    /// The `error` of the answer, `None` on success.
    pub error: Option<String>,
}

/// One `POST /revoke`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RevocationRecord {
    pub token: String,
    pub token_type_hint: Option<String>,
    pub client_auth: Option<ClientAuthMethod>,
    pub client_id: Option<String>,
    pub status: u16,
    /// The token was known (and issued to this client) and is now inactive.
    pub revoked: bool,
}

/// The server, serving in a background task; dropping it stops the server.
pub struct LocalAuthServer {
    base_url: String,
    shared: Arc<Shared>,
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<()>>,
}

impl LocalAuthServer {
    /// Binds `options.listen` and serves until [`LocalAuthServer::stop`] or drop.
    pub async fn start(options: AuthServerOptions) -> std::io::Result<LocalAuthServer> {
        let listener = TcpListener::bind(options.listen).await?;
        let base_url = format!("http://{}", reachable(listener.local_addr()?));
        let shared = Arc::new(Shared {
            issuer: base_url.clone(),
            state: Mutex::new(ServerState::new(options)),
        });
        let app = Router::new()
            .route("/authorize", get(authorize))
            .route("/token", post(token))
            .route("/revoke", post(revoke))
            .route("/me", get(protected_resource))
            .route("/api/me", get(protected_resource))
            .route("/.well-known/oauth-authorization-server", get(metadata))
            .fallback(not_found)
            .with_state(shared.clone());
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(async move {
            let shutdown = async move {
                // A dropped sender means stop as well.
                let _ = stopped.await;
            };
            if let Err(error) = axum::serve(listener, app)
                .with_graceful_shutdown(shutdown)
                .await
            {
                tracing::error!(%error, "local OAuth server stopped with an error");
            }
        });
        Ok(LocalAuthServer {
            base_url,
            shared,
            stop: Some(stop),
            task: Some(task),
        })
    }

    /// `http://127.0.0.1:PORT`, no trailing slash.
    pub fn url(&self) -> String {
        self.base_url.clone()
    }

    /// The RFC 8414 / RFC 9207 issuer identifier: the same as [`LocalAuthServer::url`].
    pub fn issuer(&self) -> String {
        self.shared.issuer.clone()
    }

    pub fn authorize_url(&self) -> String {
        format!("{}/authorize", self.base_url)
    }

    pub fn token_url(&self) -> String {
        format!("{}/token", self.base_url)
    }

    pub fn revoke_url(&self) -> String {
        format!("{}/revoke", self.base_url)
    }

    /// The protected resource: `GET` with `Authorization: Bearer <access token>`.
    pub fn me_url(&self) -> String {
        format!("{}/me", self.base_url)
    }

    /// RFC 8414 metadata document.
    pub fn metadata_url(&self) -> String {
        format!("{}/.well-known/oauth-authorization-server", self.base_url)
    }

    /// Adds a client, replacing one with the same `client_id`.
    pub fn register_client(&self, client: RegisteredClient) {
        self.shared
            .lock()
            .clients
            .insert(client.client_id.clone(), client);
    }

    /// Every `POST /token` so far, in order, refused ones included.
    pub fn token_requests(&self) -> Vec<TokenRequestRecord> {
        self.shared.lock().token_requests.clone()
    }

    /// Every `POST /revoke` so far, in order.
    pub fn revocations(&self) -> Vec<RevocationRecord> {
        self.shared.lock().revocations.clone()
    }

    /// The lifetime of access tokens issued from now on.
    pub fn set_access_token_ttl(&self, ttl: Duration) {
        self.shared.lock().options.access_token_ttl = ttl;
    }

    /// The next `count` `POST /token` answer `failure` without being processed (a code stays
    /// unused, a refresh token unrotated); they are still recorded. Queued after failures still
    /// pending from an earlier call.
    pub fn fail_next_token_requests(&self, failure: InjectedFailure, count: usize) {
        if count > 0 {
            self.shared
                .lock()
                .pending_failures
                .push_back((failure, count));
        }
    }

    /// The next `/authorize` that reaches consent redirects with `error=access_denied`.
    pub fn deny_next_consent(&self) {
        self.shared.lock().deny_next_consent = true;
    }

    /// The token was issued here, has not expired, and was not revoked.
    pub fn is_access_token_active(&self, token: &str) -> bool {
        self.shared.lock().active_access_token(token).is_some()
    }

    /// Refresh tokens that a refresh request would accept, oldest first.
    pub fn active_refresh_tokens(&self) -> Vec<String> {
        let state = self.shared.lock();
        let mut active: Vec<(&String, &RefreshToken)> = state
            .refresh_tokens
            .iter()
            .filter(|(_, grant)| grant.status == RefreshStatus::Active)
            .collect();
        active.sort_by_key(|(_, grant)| grant.sequence);
        active.into_iter().map(|(token, _)| token.clone()).collect()
    }

    /// Stops accepting, lets in-flight requests finish, and waits for the server task.
    pub async fn stop(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
    }
}

impl Drop for LocalAuthServer {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

/// A wildcard bind address is not a URL a client can call: name loopback instead.
fn reachable(addr: SocketAddr) -> SocketAddr {
    match addr.ip() {
        IpAddr::V4(ip) if ip.is_unspecified() => {
            SocketAddr::from((Ipv4Addr::LOCALHOST, addr.port()))
        }
        IpAddr::V6(ip) if ip.is_unspecified() => {
            SocketAddr::from((Ipv6Addr::LOCALHOST, addr.port()))
        }
        _ => addr,
    }
}

struct Shared {
    issuer: String,
    state: Mutex<ServerState>,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, ServerState> {
        // A panicking handler leaves consistent data behind (every update is a few assignments).
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

struct ServerState {
    options: AuthServerOptions,
    clients: HashMap<String, RegisteredClient>,
    codes: HashMap<String, AuthorizationCode>,
    access_tokens: HashMap<String, AccessToken>,
    refresh_tokens: HashMap<String, RefreshToken>,
    /// One counter for token family ids (one per redeemed code) and refresh token issue order.
    next_sequence: u64,
    token_requests: Vec<TokenRequestRecord>,
    revocations: Vec<RevocationRecord>,
    pending_failures: VecDeque<(InjectedFailure, usize)>,
    deny_next_consent: bool,
}

/// What an authorization code is bound to.
struct AuthorizationCode {
    client_id: String,
    redirect_uri: String,
    scope: Option<String>,
    code_challenge: Option<String>,
    nonce: Option<String>,
    issued_at: Instant,
    /// Set on the first exchange: the family of the tokens issued from it, revoked on reuse.
    redeemed_family: Option<u64>,
}

struct AccessToken {
    client_id: String,
    scope: Option<String>,
    family: u64,
    issued_at: Instant,
    ttl: Duration,
    revoked: bool,
}

struct RefreshToken {
    client_id: String,
    scope: Option<String>,
    family: u64,
    sequence: u64,
    status: RefreshStatus,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum RefreshStatus {
    Active,
    /// Exchanged once with rotation on: presenting it again is a replay.
    Rotated,
    Revoked,
}

impl ServerState {
    fn new(options: AuthServerOptions) -> ServerState {
        ServerState {
            options,
            clients: HashMap::new(),
            codes: HashMap::new(),
            access_tokens: HashMap::new(),
            refresh_tokens: HashMap::new(),
            next_sequence: 0,
            token_requests: Vec::new(),
            revocations: Vec::new(),
            pending_failures: VecDeque::new(),
            deny_next_consent: false,
        }
    }

    fn next_sequence(&mut self) -> u64 {
        self.next_sequence += 1;
        self.next_sequence
    }

    fn take_injected_failure(&mut self) -> Option<InjectedFailure> {
        let (failure, remaining) = self.pending_failures.front_mut()?;
        let failure = *failure;
        *remaining -= 1;
        if *remaining == 0 {
            self.pending_failures.pop_front();
        }
        Some(failure)
    }

    fn active_access_token(&self, token: &str) -> Option<&AccessToken> {
        self.access_tokens
            .get(token)
            .filter(|grant| !grant.revoked && grant.issued_at.elapsed() < grant.ttl)
    }

    /// Every access and refresh token descending from one authorization code becomes inactive.
    fn revoke_family(&mut self, family: u64) {
        for grant in self.access_tokens.values_mut() {
            if grant.family == family {
                grant.revoked = true;
            }
        }
        for grant in self.refresh_tokens.values_mut() {
            if grant.family == family {
                grant.status = RefreshStatus::Revoked;
            }
        }
    }

    fn issue_access_token(
        &mut self,
        client_id: &str,
        scope: Option<String>,
        family: u64,
    ) -> String {
        let token = random_token();
        let ttl = self.options.access_token_ttl;
        self.access_tokens.insert(
            token.clone(),
            AccessToken {
                client_id: client_id.to_owned(),
                scope,
                family,
                issued_at: Instant::now(),
                ttl,
                revoked: false,
            },
        );
        token
    }

    fn issue_refresh_token(
        &mut self,
        client_id: &str,
        scope: Option<String>,
        family: u64,
    ) -> String {
        let token = random_token();
        let sequence = self.next_sequence();
        self.refresh_tokens.insert(
            token.clone(),
            RefreshToken {
                client_id: client_id.to_owned(),
                scope,
                family,
                sequence,
                status: RefreshStatus::Active,
            },
        );
        token
    }

    /// RFC 6749 §2.3.1 / §3.2.1: exactly one method, the one registered, with the right secret.
    fn authenticate_client(
        &self,
        params: &Params,
        credentials: &BasicCredentials,
    ) -> Result<RegisteredClient, OAuthError> {
        let body_id = params.get("client_id");
        let body_secret = params.get("client_secret");
        let (client_id, secret, method) = match credentials {
            BasicCredentials::Absent => match (body_id, body_secret) {
                (Some(id), Some(secret)) => (id, secret, ClientAuthMethod::Post),
                (None, Some(_)) => {
                    return Err(OAuthError::invalid_client(
                        "client_secret was sent without client_id",
                        false,
                    ))
                }
                _ => return Err(OAuthError::invalid_client(
                    "client authentication is required (client_secret_basic or client_secret_post)",
                    false,
                )),
            },
            BasicCredentials::NotBasic => {
                return Err(OAuthError::invalid_client(
                    "the Authorization header must use the Basic scheme",
                    true,
                ))
            }
            BasicCredentials::Malformed(why) => {
                return Err(OAuthError::invalid_client(why.to_string(), true))
            }
            BasicCredentials::Present {
                client_id,
                client_secret,
            } => {
                if body_secret.is_some() {
                    return Err(OAuthError::invalid_client(
                        "more than one client authentication method was used (Basic and client_secret in the body)",
                        true,
                    ));
                }
                if body_id.is_some_and(|id| id != client_id) {
                    return Err(OAuthError::invalid_client(
                        "client_id in the body differs from the Basic credentials",
                        true,
                    ));
                }
                (
                    client_id.as_str(),
                    client_secret.as_str(),
                    ClientAuthMethod::Basic,
                )
            }
        };
        let tried_basic = method == ClientAuthMethod::Basic;
        let Some(client) = self.clients.get(client_id) else {
            return Err(OAuthError::invalid_client("unknown client", tried_basic));
        };
        if client.auth_method != method {
            return Err(OAuthError::invalid_client(
                format!(
                    "this client must authenticate with {}",
                    client.auth_method.as_str()
                ),
                tried_basic,
            ));
        }
        if !secrets_equal(&client.client_secret, secret) {
            return Err(OAuthError::invalid_client(
                "client authentication failed",
                tried_basic,
            ));
        }
        Ok(client.clone())
    }

    fn grant(
        &mut self,
        params: &Params,
        credentials: &BasicCredentials,
        issuer: &str,
    ) -> Result<Value, OAuthError> {
        if let Some(name) = params.duplicated.first() {
            return Err(OAuthError::invalid_request(format!(
                "parameter {name} was sent more than once"
            )));
        }
        let client = self.authenticate_client(params, credentials)?;
        match params.get("grant_type") {
            None => Err(OAuthError::invalid_request("grant_type is missing")),
            Some("authorization_code") => self.exchange_code(&client, params, issuer),
            Some("refresh_token") => self.refresh(&client, params),
            Some(_) => Err(OAuthError::new(
                StatusCode::BAD_REQUEST,
                "unsupported_grant_type",
                "only authorization_code and refresh_token are supported",
            )),
        }
    }

    /// RFC 6749 §4.1.3 and RFC 7636 §4.6.
    fn exchange_code(
        &mut self,
        client: &RegisteredClient,
        params: &Params,
        issuer: &str,
    ) -> Result<Value, OAuthError> {
        let Some(code_value) = params.get("code") else {
            return Err(OAuthError::invalid_request("code is missing"));
        };
        let code_ttl = self.options.authorization_code_ttl;
        let Some(code) = self.codes.get(code_value) else {
            return Err(OAuthError::invalid_grant("unknown authorization code"));
        };
        if let Some(family) = code.redeemed_family {
            // RFC 6749 §4.1.2: a code used twice may be stolen; revoke what it produced.
            self.revoke_family(family);
            return Err(OAuthError::invalid_grant(
                "the authorization code was already used; the tokens issued from it are revoked",
            ));
        }
        if code.issued_at.elapsed() >= code_ttl {
            return Err(OAuthError::invalid_grant(
                "the authorization code has expired",
            ));
        }
        if code.client_id != client.client_id {
            return Err(OAuthError::invalid_grant(
                "the authorization code was issued to another client",
            ));
        }
        match params.get("redirect_uri") {
            None => {
                return Err(OAuthError::invalid_grant(
                    "redirect_uri is missing (it was sent in the authorization request)",
                ))
            }
            Some(uri) if uri != code.redirect_uri => {
                return Err(OAuthError::invalid_grant(
                    "redirect_uri differs from the one in the authorization request",
                ))
            }
            Some(_) => {}
        }
        match (&code.code_challenge, params.get("code_verifier")) {
            (Some(_), None) => {
                return Err(OAuthError::invalid_grant("code_verifier is missing"));
            }
            (Some(challenge), Some(verifier)) => {
                if !is_pkce_value(verifier) || s256_challenge(verifier) != *challenge {
                    return Err(OAuthError::invalid_grant(
                        "code_verifier does not match the code_challenge",
                    ));
                }
            }
            // OAuth 2.1 §4.1.3: a verifier without a challenge is a PKCE downgrade attempt.
            (None, Some(_)) => {
                return Err(OAuthError::invalid_grant(
                    "code_verifier was sent but the authorization request had no code_challenge",
                ));
            }
            (None, None) => {}
        }
        let scope = code.scope.clone();
        let nonce = code.nonce.clone();
        let family = self.next_sequence();
        if let Some(code) = self.codes.get_mut(code_value) {
            code.redeemed_family = Some(family);
        }
        let access_token = self.issue_access_token(&client.client_id, scope.clone(), family);
        let refresh_token = self.issue_refresh_token(&client.client_id, scope.clone(), family);
        let mut answer = self.token_answer(access_token, Some(refresh_token), scope.as_deref());
        if self.options.issue_id_token {
            answer.insert(
                "id_token".to_owned(),
                Value::String(id_token(issuer, &client.client_id, nonce.as_deref())),
            );
        }
        Ok(Value::Object(answer))
    }

    /// RFC 6749 §6, with rotation and reuse detection (RFC 9700 §4.14.2).
    fn refresh(&mut self, client: &RegisteredClient, params: &Params) -> Result<Value, OAuthError> {
        let Some(presented) = params.get("refresh_token") else {
            return Err(OAuthError::invalid_request("refresh_token is missing"));
        };
        let Some(grant) = self.refresh_tokens.get(presented) else {
            return Err(OAuthError::invalid_grant("unknown refresh token"));
        };
        if grant.client_id != client.client_id {
            return Err(OAuthError::invalid_grant(
                "the refresh token was issued to another client",
            ));
        }
        let family = grant.family;
        let original_scope = grant.scope.clone();
        match grant.status {
            RefreshStatus::Active => {}
            RefreshStatus::Rotated => {
                self.revoke_family(family);
                return Err(OAuthError::invalid_grant(
                    "the refresh token was already used; every token of its grant is revoked",
                ));
            }
            RefreshStatus::Revoked => {
                return Err(OAuthError::invalid_grant("the refresh token was revoked"));
            }
        }
        let granted_scope = match params.get("scope") {
            None => original_scope.clone(),
            Some(requested) => {
                let original: HashSet<&str> = original_scope
                    .as_deref()
                    .unwrap_or("")
                    .split(' ')
                    .filter(|s| !s.is_empty())
                    .collect();
                if !scope_tokens(requested).all(|s| original.contains(s)) {
                    return Err(OAuthError::new(
                        StatusCode::BAD_REQUEST,
                        "invalid_scope",
                        "a refresh cannot widen the scope of the grant",
                    ));
                }
                Some(requested.to_owned())
            }
        };
        let access_token =
            self.issue_access_token(&client.client_id, granted_scope.clone(), family);
        let new_refresh_token = if self.options.rotate_refresh_tokens {
            if let Some(old) = self.refresh_tokens.get_mut(presented) {
                old.status = RefreshStatus::Rotated;
            }
            // RFC 6749 §6: the new refresh token keeps the scope of the grant.
            Some(self.issue_refresh_token(&client.client_id, original_scope, family))
        } else {
            None
        };
        Ok(Value::Object(self.token_answer(
            access_token,
            new_refresh_token,
            granted_scope.as_deref(),
        )))
    }

    fn token_answer(
        &self,
        access_token: String,
        refresh_token: Option<String>,
        scope: Option<&str>,
    ) -> Map<String, Value> {
        let mut answer = Map::new();
        answer.insert("access_token".to_owned(), Value::String(access_token));
        answer.insert("token_type".to_owned(), Value::String("Bearer".to_owned()));
        answer.insert(
            "expires_in".to_owned(),
            Value::from(self.options.access_token_ttl.as_secs()),
        );
        if let Some(refresh_token) = refresh_token {
            answer.insert("refresh_token".to_owned(), Value::String(refresh_token));
        }
        if let Some(scope) = scope.filter(|s| !s.is_empty()) {
            answer.insert("scope".to_owned(), Value::String(scope.to_owned()));
        }
        answer
    }

    /// RFC 7009 §2.1. Returns whether a token of this client became inactive.
    fn revoke_token(&mut self, client: &RegisteredClient, token: &str) -> Result<bool, OAuthError> {
        let owner_and_family = self
            .access_tokens
            .get(token)
            .map(|grant| (grant.client_id.clone(), None))
            .or_else(|| {
                self.refresh_tokens
                    .get(token)
                    .map(|grant| (grant.client_id.clone(), Some(grant.family)))
            });
        let Some((owner, refresh_family)) = owner_and_family else {
            // Unknown or garbage: RFC 7009 §2.2 answers 200 all the same.
            return Ok(false);
        };
        if owner != client.client_id {
            return Err(OAuthError::new(
                StatusCode::BAD_REQUEST,
                "unauthorized_client",
                "the token was issued to another client",
            ));
        }
        match refresh_family {
            // A revoked refresh token takes the access tokens of its grant with it.
            Some(family) => self.revoke_family(family),
            None => {
                if let Some(grant) = self.access_tokens.get_mut(token) {
                    grant.revoked = true;
                }
            }
        }
        Ok(true)
    }
}

/// An OAuth error answer (RFC 6749 §5.2 at the token endpoint).
#[derive(Debug)]
struct OAuthError {
    status: StatusCode,
    error: &'static str,
    description: String,
    /// The client tried `Authorization: Basic`, so a 401 must name the scheme (RFC 6749 §5.2).
    challenge_basic: bool,
}

impl OAuthError {
    fn new(status: StatusCode, error: &'static str, description: impl Into<String>) -> OAuthError {
        OAuthError {
            status,
            error,
            description: description.into(),
            challenge_basic: false,
        }
    }

    fn invalid_request(description: impl Into<String>) -> OAuthError {
        OAuthError::new(StatusCode::BAD_REQUEST, "invalid_request", description)
    }

    fn invalid_grant(description: impl Into<String>) -> OAuthError {
        OAuthError::new(StatusCode::BAD_REQUEST, "invalid_grant", description)
    }

    fn invalid_client(description: impl Into<String>, tried_basic: bool) -> OAuthError {
        OAuthError {
            challenge_basic: tried_basic,
            ..OAuthError::new(StatusCode::UNAUTHORIZED, "invalid_client", description)
        }
    }

    fn injected(failure: InjectedFailure, tried_basic: bool) -> OAuthError {
        match failure {
            InjectedFailure::InvalidGrant => OAuthError::invalid_grant("injected failure"),
            InjectedFailure::ServerError => OAuthError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "temporarily_unavailable",
                "injected failure",
            ),
            InjectedFailure::Unauthorized => {
                OAuthError::invalid_client("injected failure", tried_basic)
            }
        }
    }

    fn into_response(self) -> Response {
        let mut response = (
            self.status,
            Json(json!({"error": self.error, "error_description": self.description})),
        )
            .into_response();
        let headers = response.headers_mut();
        no_store(headers);
        if self.status == StatusCode::UNAUTHORIZED && self.challenge_basic {
            if let Ok(value) = HeaderValue::from_str(&format!("Basic realm=\"{BASIC_REALM}\"")) {
                headers.insert(header::WWW_AUTHENTICATE, value);
            }
        }
        response
    }
}

/// RFC 6749 §5.1: token answers must not be cached.
fn no_store(headers: &mut HeaderMap) {
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
}

/// Request parameters (query or form body) after the RFC 6749 §3.1 rules: a parameter without a
/// value counts as absent, and one sent twice is recorded so the request can be refused.
#[derive(Debug, Default)]
struct Params {
    values: HashMap<String, String>,
    duplicated: Vec<String>,
}

impl Params {
    fn parse(encoded: &[u8]) -> Params {
        let mut params = Params::default();
        for (name, value) in url::form_urlencoded::parse(encoded) {
            if value.is_empty() {
                continue;
            }
            if params.values.contains_key(name.as_ref()) {
                if !params.duplicated.iter().any(|d| d == name.as_ref()) {
                    params.duplicated.push(name.into_owned());
                }
            } else {
                params.values.insert(name.into_owned(), value.into_owned());
            }
        }
        params
    }

    fn get(&self, name: &str) -> Option<&str> {
        self.values.get(name).map(String::as_str)
    }

    fn is_duplicated(&self, name: &str) -> bool {
        self.duplicated.iter().any(|d| d == name)
    }
}

/// What the `Authorization` header says about client authentication.
#[derive(Debug, PartialEq, Eq)]
enum BasicCredentials {
    Absent,
    /// A scheme other than Basic.
    NotBasic,
    Malformed(&'static str),
    Present {
        client_id: String,
        client_secret: String,
    },
}

impl BasicCredentials {
    fn from_headers(headers: &HeaderMap) -> BasicCredentials {
        let mut values = headers.get_all(header::AUTHORIZATION).iter();
        let Some(value) = values.next() else {
            return BasicCredentials::Absent;
        };
        if values.next().is_some() {
            return BasicCredentials::Malformed("more than one Authorization header");
        }
        let Ok(value) = value.to_str() else {
            return BasicCredentials::Malformed("the Authorization header is not ASCII");
        };
        let Some((scheme, encoded)) = value.trim().split_once(' ') else {
            return BasicCredentials::NotBasic;
        };
        if !scheme.eq_ignore_ascii_case("basic") {
            return BasicCredentials::NotBasic;
        }
        let Ok(decoded) = STANDARD.decode(encoded.trim()) else {
            return BasicCredentials::Malformed("the Basic credentials are not valid base64");
        };
        let Ok(decoded) = String::from_utf8(decoded) else {
            return BasicCredentials::Malformed("the Basic credentials are not UTF-8");
        };
        let Some((id, secret)) = decoded.split_once(':') else {
            return BasicCredentials::Malformed("the Basic credentials have no ':'");
        };
        // RFC 6749 §2.3.1: both parts are form-urlencoded before they are joined.
        match (form_urldecode(id), form_urldecode(secret)) {
            (Some(client_id), Some(client_secret)) if !client_id.is_empty() => {
                BasicCredentials::Present {
                    client_id,
                    client_secret,
                }
            }
            (Some(_), Some(_)) => BasicCredentials::Malformed("the Basic client id is empty"),
            _ => {
                BasicCredentials::Malformed("the Basic credentials are not valid form-urlencoding")
            }
        }
    }

    fn method(&self) -> Option<ClientAuthMethod> {
        match self {
            BasicCredentials::Absent | BasicCredentials::NotBasic => None,
            BasicCredentials::Malformed(_) | BasicCredentials::Present { .. } => {
                Some(ClientAuthMethod::Basic)
            }
        }
    }

    fn tried_basic(&self) -> bool {
        !matches!(self, BasicCredentials::Absent)
    }
}

/// `application/x-www-form-urlencoded` decoding of one value: `+` is a space, `%XX` a byte.
/// `None` for a broken escape or bytes that are not UTF-8.
fn form_urldecode(encoded: &str) -> Option<String> {
    let bytes = encoded.as_bytes();
    let mut decoded = Vec::with_capacity(bytes.len());
    let mut index = 0;
    while index < bytes.len() {
        match bytes[index] {
            b'+' => decoded.push(b' '),
            b'%' => {
                let hex = encoded.get(index + 1..index + 3)?;
                decoded.push(u8::from_str_radix(hex, 16).ok()?);
                index += 2;
            }
            byte => decoded.push(byte),
        }
        index += 1;
    }
    String::from_utf8(decoded).ok()
}

/// Who tried to authenticate and how, for the records, from the raw request.
fn claimed_client(
    credentials: &BasicCredentials,
    params: &Params,
) -> (Option<ClientAuthMethod>, Option<String>) {
    let method = credentials
        .method()
        .or_else(|| params.get("client_secret").map(|_| ClientAuthMethod::Post));
    let client_id = match credentials {
        BasicCredentials::Present { client_id, .. } => Some(client_id.clone()),
        _ => params.get("client_id").map(str::to_owned),
    };
    (method, client_id)
}

fn is_form_urlencoded(headers: &HeaderMap) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.split(';').next())
        .is_some_and(|media_type| {
            media_type
                .trim()
                .eq_ignore_ascii_case("application/x-www-form-urlencoded")
        })
}

/// Constant-time comparison of the secrets' digests: timing tells nothing about the secret.
fn secrets_equal(expected: &str, presented: &str) -> bool {
    let expected = Sha256::digest(expected.as_bytes());
    let presented = Sha256::digest(presented.as_bytes());
    expected
        .iter()
        .zip(presented.iter())
        .fold(0u8, |difference, (a, b)| difference | (a ^ b))
        == 0
}

/// RFC 7636 §4.1 / §4.2: 43 to 128 unreserved characters.
fn is_pkce_value(value: &str) -> bool {
    (43..=128).contains(&value.len())
        && value
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~'))
}

/// `BASE64URL-ENCODE(SHA256(ASCII(code_verifier)))`, RFC 7636 §4.2.
pub fn s256_challenge(verifier: &str) -> String {
    URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()))
}

fn random_token() -> String {
    let mut bytes = [0u8; TOKEN_BYTES];
    rand::thread_rng().fill_bytes(&mut bytes);
    URL_SAFE_NO_PAD.encode(bytes)
}

fn scope_tokens(scope: &str) -> impl Iterator<Item = &str> {
    scope.split(' ').filter(|s| !s.is_empty())
}

/// RFC 6749 §3.3: `scope-token = 1*( %x21 / %x23-5B / %x5D-7E )`, separated by single spaces.
fn is_valid_scope(scope: &str) -> bool {
    scope.split(' ').all(|token| {
        !token.is_empty()
            && token
                .bytes()
                .all(|b| b == 0x21 || (0x23..=0x5B).contains(&b) || (0x5D..=0x7E).contains(&b))
    })
}

/// JWT-shaped (`header.payload.signature`) but signed with nothing anyone can check: clients
/// that need an ID token's presence get one, nobody can mistake it for a real one.
fn id_token(issuer: &str, client_id: &str, nonce: Option<&str>) -> String {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_secs();
    let mut claims = json!({
        "iss": issuer,
        "sub": LOCAL_USER,
        "aud": client_id,
        "iat": now,
        "exp": now + 3600,
    });
    if let (Some(nonce), Some(object)) = (nonce, claims.as_object_mut()) {
        object.insert("nonce".to_owned(), Value::String(nonce.to_owned()));
    }
    let header = URL_SAFE_NO_PAD.encode(br#"{"alg":"HS256","typ":"JWT"}"#);
    let payload = URL_SAFE_NO_PAD.encode(claims.to_string());
    format!("{header}.{payload}.{}", random_token())
}

/// One stderr line per request when `log_requests` is on. Only identifiers go in, never
/// credentials, each through [`loggable`].
/// A request value for a log line: `-` when absent, escaped so that a client cannot forge lines.
fn loggable(value: Option<&str>) -> String {
    value.map_or_else(|| "-".to_owned(), |value| value.escape_debug().to_string())
}

fn log_request(state: &ServerState, line: std::fmt::Arguments<'_>) {
    tracing::debug!("{line}");
    if state.options.log_requests {
        eprintln!("{line}");
    }
}

// ---------------------------------------------------------------------------------------------
// Handlers
// ---------------------------------------------------------------------------------------------

/// RFC 6749 §4.1.1–§4.1.2.1, RFC 7636 §4.3–§4.4, RFC 9207.
async fn authorize(State(shared): State<Arc<Shared>>, uri: Uri) -> Response {
    let params = Params::parse(uri.query().unwrap_or("").as_bytes());
    let mut state = shared.lock();
    let outcome = authorize_outcome(&mut state, &shared.issuer, &params);
    let client_id = params.get("client_id");
    match outcome {
        AuthorizeOutcome::ErrorPage(message) => {
            log_request(
                &state,
                format_args!(
                    "GET /authorize client_id={} -> 400 ({message})",
                    loggable(client_id)
                ),
            );
            error_page(message)
        }
        AuthorizeOutcome::Redirect {
            redirect_uri,
            pairs,
            summary,
        } => {
            log_request(
                &state,
                format_args!(
                    "GET /authorize client_id={} -> 302 ({summary})",
                    loggable(client_id)
                ),
            );
            redirect(&redirect_uri, &pairs)
        }
    }
}

enum AuthorizeOutcome {
    /// The redirect URI cannot be trusted: tell the user, do not redirect (RFC 6749 §4.1.2.1).
    ErrorPage(&'static str),
    Redirect {
        redirect_uri: String,
        pairs: Vec<(&'static str, String)>,
        /// For the log: `code issued` or the error code.
        summary: &'static str,
    },
}

fn authorize_outcome(state: &mut ServerState, issuer: &str, params: &Params) -> AuthorizeOutcome {
    if params.is_duplicated("client_id") {
        return AuthorizeOutcome::ErrorPage("client_id was sent more than once");
    }
    let Some(client) = params.get("client_id").and_then(|id| state.clients.get(id)) else {
        return AuthorizeOutcome::ErrorPage("unknown or missing client_id");
    };
    if params.is_duplicated("redirect_uri") {
        return AuthorizeOutcome::ErrorPage("redirect_uri was sent more than once");
    }
    let Some(redirect_uri) = params.get("redirect_uri") else {
        return AuthorizeOutcome::ErrorPage("redirect_uri is missing");
    };
    if !client.redirect_uris.iter().any(|uri| uri == redirect_uri) {
        return AuthorizeOutcome::ErrorPage("redirect_uri is not registered for this client");
    }
    if redirect_uri.contains('#') {
        // RFC 6749 §3.1.2: a redirection endpoint has no fragment.
        return AuthorizeOutcome::ErrorPage("the registered redirect_uri has a fragment");
    }
    let client = client.clone();
    let redirect_uri = redirect_uri.to_owned();

    // From here on errors go back to the client (RFC 6749 §4.1.2.1).
    let state_param = (!params.is_duplicated("state"))
        .then(|| params.get("state").map(str::to_owned))
        .flatten();
    let send_iss = state.options.send_iss;
    let with_state_and_iss = |mut pairs: Vec<(&'static str, String)>| {
        if let Some(value) = &state_param {
            pairs.push(("state", value.clone()));
        }
        if send_iss {
            pairs.push(("iss", issuer.to_owned()));
        }
        pairs
    };
    let refuse = |error: &'static str, description: &str| AuthorizeOutcome::Redirect {
        redirect_uri: redirect_uri.clone(),
        pairs: with_state_and_iss(vec![
            ("error", error.to_owned()),
            ("error_description", description.to_owned()),
        ]),
        summary: error,
    };

    if let Some(name) = params.duplicated.first() {
        return refuse(
            "invalid_request",
            &format!("parameter {name} was sent more than once"),
        );
    }
    match params.get("response_type") {
        None => return refuse("invalid_request", "response_type is missing"),
        Some("code") => {}
        Some(_) => {
            return refuse(
                "unsupported_response_type",
                "only response_type=code is supported",
            )
        }
    }
    let code_challenge = params.get("code_challenge");
    match (code_challenge, params.get("code_challenge_method")) {
        (None, Some(_)) => {
            return refuse(
                "invalid_request",
                "code_challenge_method was sent without code_challenge",
            )
        }
        (None, None) if client.require_pkce => {
            return refuse(
                "invalid_request",
                "this client must send a PKCE code_challenge (S256)",
            )
        }
        (None, None) => {}
        // A missing method means `plain` (RFC 7636 §4.3), which is not accepted.
        (Some(_), method) if method != Some("S256") => {
            return refuse("invalid_request", "code_challenge_method must be S256")
        }
        (Some(challenge), _) if !is_pkce_value(challenge) => {
            return refuse("invalid_request", "code_challenge is malformed")
        }
        (Some(_), _) => {}
    }
    let scope = params.get("scope");
    if let Some(scope) = scope {
        if !is_valid_scope(scope) {
            return refuse("invalid_scope", "scope is malformed");
        }
        if let Some(supported) = &state.options.scopes_supported {
            if !scope_tokens(scope).all(|s| supported.iter().any(|known| known == s)) {
                return refuse("invalid_scope", "a requested scope is not supported");
            }
        }
    }
    if std::mem::take(&mut state.deny_next_consent) {
        return refuse("access_denied", "the resource owner denied the request");
    }

    let code = random_token();
    state.codes.insert(
        code.clone(),
        AuthorizationCode {
            client_id: client.client_id.clone(),
            redirect_uri: redirect_uri.clone(),
            scope: scope.map(str::to_owned),
            code_challenge: code_challenge.map(str::to_owned),
            nonce: params.get("nonce").map(str::to_owned),
            issued_at: Instant::now(),
            redeemed_family: None,
        },
    );
    AuthorizeOutcome::Redirect {
        redirect_uri: redirect_uri.clone(),
        pairs: with_state_and_iss(vec![("code", code)]),
        summary: "code issued",
    }
}

/// A 302 to `redirect_uri` with `pairs` added to its query (after an existing one).
fn redirect(redirect_uri: &str, pairs: &[(&'static str, String)]) -> Response {
    let mut query = url::form_urlencoded::Serializer::new(String::new());
    for (name, value) in pairs {
        query.append_pair(name, value);
    }
    let query = query.finish();
    let separator = match redirect_uri.find('?') {
        None => "?",
        Some(at) if at + 1 == redirect_uri.len() || redirect_uri.ends_with('&') => "",
        Some(_) => "&",
    };
    let location = format!("{redirect_uri}{separator}{query}");
    match HeaderValue::from_str(&location) {
        Ok(location) => {
            let mut response = StatusCode::FOUND.into_response();
            response.headers_mut().insert(header::LOCATION, location);
            no_store(response.headers_mut());
            response
        }
        // Only a registered URI with characters a header cannot carry gets here.
        Err(_) => error_page("the registered redirect_uri cannot be used in a Location header"),
    }
}

fn error_page(message: &'static str) -> Response {
    // `message` is always one of this module's constants: nothing from the request is reflected.
    let body = format!(
        "<!doctype html><title>Authorization error</title><h1>Authorization error</h1><p>{message}</p>"
    );
    (
        StatusCode::BAD_REQUEST,
        [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
        body,
    )
        .into_response()
}

/// What the token and revocation endpoints read first: the form (when the body is one) and the
/// client the request claims to be, and how.
struct ClientRequest {
    form: bool,
    params: Params,
    credentials: BasicCredentials,
    client_auth: Option<ClientAuthMethod>,
    client_id: Option<String>,
}

impl ClientRequest {
    fn read(headers: &HeaderMap, body: &Bytes) -> ClientRequest {
        let form = is_form_urlencoded(headers);
        let params = if form {
            Params::parse(body)
        } else {
            Params::default()
        };
        let credentials = BasicCredentials::from_headers(headers);
        let (client_auth, client_id) = claimed_client(&credentials, &params);
        ClientRequest {
            form,
            params,
            credentials,
            client_auth,
            client_id,
        }
    }
}

/// RFC 6749 §3.2: the token endpoint.
async fn token(State(shared): State<Arc<Shared>>, headers: HeaderMap, body: Bytes) -> Response {
    let delay = shared.lock().options.token_delay;
    if !delay.is_zero() {
        tokio::time::sleep(delay).await;
    }
    let ClientRequest {
        form,
        params,
        credentials,
        client_auth,
        client_id,
    } = ClientRequest::read(&headers, &body);

    let mut state = shared.lock();
    let outcome = if let Some(failure) = state.take_injected_failure() {
        Err(OAuthError::injected(failure, credentials.tried_basic()))
    } else if !form {
        Err(OAuthError::invalid_request(
            "the body must be application/x-www-form-urlencoded",
        ))
    } else {
        state.grant(&params, &credentials, &shared.issuer)
    };
    let (status, error) = match &outcome {
        Ok(_) => (StatusCode::OK, None),
        Err(error) => (error.status, Some(error.error.to_owned())),
    };
    let grant_type = params.get("grant_type").unwrap_or("").to_owned();
    log_request(
        &state,
        format_args!(
            "POST /token grant_type={} client_id={} -> {}{}",
            loggable(params.get("grant_type")),
            loggable(client_id.as_deref()),
            status.as_u16(),
            error
                .as_deref()
                .map(|e| format!(" {e}"))
                .unwrap_or_default()
        ),
    );
    state.token_requests.push(TokenRequestRecord {
        grant_type,
        client_auth,
        client_id,
        code_verifier: params.get("code_verifier").map(str::to_owned),
        redirect_uri: params.get("redirect_uri").map(str::to_owned),
        refresh_token: params.get("refresh_token").map(str::to_owned),
        status: status.as_u16(),
        error,
    });
    drop(state);
    match outcome {
        Ok(answer) => {
            let mut response = Json(answer).into_response();
            no_store(response.headers_mut());
            response
        }
        Err(error) => error.into_response(),
    }
}

/// RFC 7009: the revocation endpoint.
async fn revoke(State(shared): State<Arc<Shared>>, headers: HeaderMap, body: Bytes) -> Response {
    let ClientRequest {
        form,
        params,
        credentials,
        client_auth,
        client_id,
    } = ClientRequest::read(&headers, &body);

    let mut state = shared.lock();
    let outcome = if !form {
        Err(OAuthError::invalid_request(
            "the body must be application/x-www-form-urlencoded",
        ))
    } else if let Some(name) = params.duplicated.first() {
        Err(OAuthError::invalid_request(format!(
            "parameter {name} was sent more than once"
        )))
    } else {
        state
            .authenticate_client(&params, &credentials)
            .and_then(|client| match params.get("token") {
                None => Err(OAuthError::invalid_request("token is missing")),
                Some(token) => state.revoke_token(&client, token),
            })
    };
    let (status, revoked) = match &outcome {
        Ok(revoked) => (StatusCode::OK, *revoked),
        Err(error) => (error.status, false),
    };
    let hint = params.get("token_type_hint").map(str::to_owned);
    log_request(
        &state,
        format_args!(
            "POST /revoke token_type_hint={} client_id={} -> {}{}",
            loggable(hint.as_deref()),
            loggable(client_id.as_deref()),
            status.as_u16(),
            match &outcome {
                Ok(true) => " revoked".to_owned(),
                Ok(false) => " (unknown token, nothing revoked)".to_owned(),
                Err(error) => format!(" {}", error.error),
            }
        ),
    );
    state.revocations.push(RevocationRecord {
        token: params.get("token").unwrap_or("").to_owned(),
        token_type_hint: hint,
        client_auth,
        client_id,
        status: status.as_u16(),
        revoked,
    });
    drop(state);
    match outcome {
        Ok(_) => {
            let mut response = StatusCode::OK.into_response();
            no_store(response.headers_mut());
            response
        }
        Err(error) => error.into_response(),
    }
}

/// A provider API call: RFC 6750 bearer token in the Authorization header.
async fn protected_resource(
    State(shared): State<Arc<Shared>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
) -> Response {
    let token = headers
        .get(header::AUTHORIZATION)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.trim().split_once(' '))
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
        .map(|(_, token)| token.trim());
    let state = shared.lock();
    let grant = token.and_then(|token| state.active_access_token(token));
    let path = uri.path();
    match grant {
        Some(grant) => {
            log_request(
                &state,
                format_args!(
                    "{method} {path} client_id={} -> 200",
                    loggable(Some(&grant.client_id))
                ),
            );
            let mut body = json!({"sub": LOCAL_USER, "client_id": grant.client_id});
            if let (Some(scope), Some(object)) = (&grant.scope, body.as_object_mut()) {
                object.insert("scope".to_owned(), Value::String(scope.clone()));
            }
            Json(body).into_response()
        }
        None => {
            log_request(&state, format_args!("{method} {path} -> 401 invalid_token"));
            (
                StatusCode::UNAUTHORIZED,
                [(header::WWW_AUTHENTICATE, "Bearer error=\"invalid_token\"")],
                Json(json!({
                    "error": "invalid_token",
                    "error_description": "the access token is missing, unknown, expired or revoked"
                })),
            )
                .into_response()
        }
    }
}

/// RFC 8414 §3.2.
async fn metadata(State(shared): State<Arc<Shared>>) -> Response {
    let state = shared.lock();
    let issuer = &shared.issuer;
    let auth_methods = [
        ClientAuthMethod::Basic.as_str(),
        ClientAuthMethod::Post.as_str(),
    ];
    let mut document = json!({
        "issuer": issuer,
        "authorization_endpoint": format!("{issuer}/authorize"),
        "token_endpoint": format!("{issuer}/token"),
        "revocation_endpoint": format!("{issuer}/revoke"),
        "response_types_supported": ["code"],
        "response_modes_supported": ["query"],
        "grant_types_supported": ["authorization_code", "refresh_token"],
        "code_challenge_methods_supported": ["S256"],
        "token_endpoint_auth_methods_supported": auth_methods,
        "revocation_endpoint_auth_methods_supported": auth_methods,
        "authorization_response_iss_parameter_supported": state.options.send_iss,
    });
    if let (Some(scopes), Some(object)) =
        (&state.options.scopes_supported, document.as_object_mut())
    {
        object.insert("scopes_supported".to_owned(), json!(scopes));
    }
    log_request(
        &state,
        format_args!("GET /.well-known/oauth-authorization-server -> 200"),
    );
    Json(document).into_response()
}

/// Any other path: 404, logged like the rest so a mistyped endpoint shows up in the binary's log.
async fn not_found(State(shared): State<Arc<Shared>>, method: Method, uri: Uri) -> Response {
    log_request(
        &shared.lock(),
        format_args!("{method} {} -> 404", loggable(Some(uri.path()))),
    );
    StatusCode::NOT_FOUND.into_response()
}
