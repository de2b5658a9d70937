//! Real HTTP over 127.0.0.1 against a started server, as the end-to-end tests use it.

use super::*;

const REDIRECT_URI: &str = "http://127.0.0.1:3000/api/integrations/callback/acme_crm";
const POST_CLIENT: &str = "post-client";
const BASIC_CLIENT: &str = "basic-client";
// Characters that RFC 6749 §2.3.1 form-urlencoding changes, to prove the server decodes them.
const BASIC_SECRET: &str = "s3cr:t+/=&%é";
const POST_SECRET: &str = "post-secret";
const VERIFIER: &str = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";

fn http() -> reqwest::Client {
    hub_shared::http_client::install_default_crypto_provider();
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .no_proxy()
        .build()
        .expect("client")
}

fn client(id: &str, secret: &str, auth_method: ClientAuthMethod) -> RegisteredClient {
    RegisteredClient {
        client_id: id.to_owned(),
        client_secret: secret.to_owned(),
        redirect_uris: vec![REDIRECT_URI.to_owned()],
        auth_method,
        require_pkce: true,
    }
}

async fn server_with(options: AuthServerOptions) -> LocalAuthServer {
    let server = LocalAuthServer::start(options)
        .await
        .expect("server starts");
    server.register_client(client(POST_CLIENT, POST_SECRET, ClientAuthMethod::Post));
    server.register_client(client(BASIC_CLIENT, BASIC_SECRET, ClientAuthMethod::Basic));
    server
}

async fn server() -> LocalAuthServer {
    server_with(AuthServerOptions::default()).await
}

/// `base64(urlencode(id):urlencode(secret))`, as RFC 6749 §2.3.1 has clients send it.
fn basic_header(id: &str, secret: &str) -> String {
    let encode = |s: &str| url::form_urlencoded::byte_serialize(s.as_bytes()).collect::<String>();
    format!(
        "Basic {}",
        STANDARD.encode(format!("{}:{}", encode(id), encode(secret)))
    )
}

/// Query parameters of a redirect's `Location`.
fn location_params(response: &reqwest::Response) -> HashMap<String, String> {
    let location = response
        .headers()
        .get(header::LOCATION)
        .expect("a Location header")
        .to_str()
        .expect("ASCII Location");
    let location = url::Url::parse(location).expect("absolute Location");
    location.query_pairs().into_owned().collect()
}

async fn authorize_with(server: &LocalAuthServer, params: &[(&str, &str)]) -> reqwest::Response {
    http()
        .get(server.authorize_url())
        .query(params)
        .send()
        .await
        .expect("authorize answers")
}

/// A code for `client_id` with an S256 challenge of [`VERIFIER`].
async fn code_for(server: &LocalAuthServer, client_id: &str) -> String {
    let challenge = s256_challenge(VERIFIER);
    let response = authorize_with(
        server,
        &[
            ("response_type", "code"),
            ("client_id", client_id),
            ("redirect_uri", REDIRECT_URI),
            ("scope", "read write"),
            ("state", "st-1"),
            ("code_challenge", &challenge),
            ("code_challenge_method", "S256"),
        ],
    )
    .await;
    assert_eq!(response.status(), 302);
    location_params(&response)
        .remove("code")
        .expect("a code in the redirect")
}

async fn post_token(
    server: &LocalAuthServer,
    form: &[(&str, &str)],
    basic: Option<(&str, &str)>,
) -> (u16, Value, HeaderMap) {
    let mut request = http().post(server.token_url()).form(form);
    if let Some((id, secret)) = basic {
        request = request.header(header::AUTHORIZATION, basic_header(id, secret));
    }
    let response = request.send().await.expect("token answers");
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    let body = response.json::<Value>().await.unwrap_or(Value::Null);
    (status, body, headers)
}

async fn exchange_as_post_client(
    server: &LocalAuthServer,
    code: &str,
    verifier: Option<&str>,
) -> (u16, Value) {
    let mut form = vec![
        ("grant_type", "authorization_code"),
        ("code", code),
        ("redirect_uri", REDIRECT_URI),
        ("client_id", POST_CLIENT),
        ("client_secret", POST_SECRET),
    ];
    if let Some(verifier) = verifier {
        form.push(("code_verifier", verifier));
    }
    let (status, body, _) = post_token(server, &form, None).await;
    (status, body)
}

async fn refresh_as_post_client(server: &LocalAuthServer, refresh_token: &str) -> (u16, Value) {
    let (status, body, _) = post_token(
        server,
        &[
            ("grant_type", "refresh_token"),
            ("refresh_token", refresh_token),
            ("client_id", POST_CLIENT),
            ("client_secret", POST_SECRET),
        ],
        None,
    )
    .await;
    (status, body)
}

async fn tokens_for_post_client(server: &LocalAuthServer) -> (String, String) {
    let code = code_for(server, POST_CLIENT).await;
    let (status, body) = exchange_as_post_client(server, &code, Some(VERIFIER)).await;
    assert_eq!(status, 200, "{body}");
    (
        body["access_token"]
            .as_str()
            .expect("access token")
            .to_owned(),
        body["refresh_token"]
            .as_str()
            .expect("refresh token")
            .to_owned(),
    )
}

async fn me_status(server: &LocalAuthServer, access_token: &str) -> (u16, Value) {
    let response = http()
        .get(server.me_url())
        .bearer_auth(access_token)
        .send()
        .await
        .expect("me answers");
    let status = response.status().as_u16();
    (
        status,
        response.json::<Value>().await.unwrap_or(Value::Null),
    )
}

fn text(body: &Value, field: &str) -> String {
    body[field].as_str().unwrap_or_default().to_owned()
}

// --- code flow -------------------------------------------------------------------------------

#[tokio::test]
async fn given_post_client_with_pkce_when_code_is_exchanged_then_tokens_work_at_me() {
    let server = server().await;
    let code = code_for(&server, POST_CLIENT).await;

    let (status, body, headers) = post_token(
        &server,
        &[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("redirect_uri", REDIRECT_URI),
            ("code_verifier", VERIFIER),
            ("client_id", POST_CLIENT),
            ("client_secret", POST_SECRET),
        ],
        None,
    )
    .await;

    assert_eq!(status, 200, "{body}");
    assert_eq!(text(&body, "token_type"), "Bearer");
    assert_eq!(body["expires_in"], 3600);
    assert_eq!(text(&body, "scope"), "read write");
    assert!(body.get("id_token").is_none());
    assert_eq!(headers[header::CACHE_CONTROL], "no-store");
    let access_token = text(&body, "access_token");
    let refresh_token = text(&body, "refresh_token");
    assert!(access_token.len() >= 22 && refresh_token.len() >= 22);
    assert_ne!(access_token, refresh_token);
    assert_ne!(access_token, code);
    assert!(server.is_access_token_active(&access_token));
    assert_eq!(server.active_refresh_tokens(), vec![refresh_token]);
    let (me, me_body) = me_status(&server, &access_token).await;
    assert_eq!(me, 200);
    assert_eq!(me_body["sub"], "local-user");
    assert_eq!(me_body["client_id"], POST_CLIENT);
    let api_me = http()
        .get(format!("{}/api/me", server.url()))
        .bearer_auth(&access_token)
        .send()
        .await
        .expect("api/me answers");
    assert_eq!(api_me.status(), 200);
}

#[tokio::test]
async fn given_basic_client_with_urlencoded_credentials_when_code_is_exchanged_then_tokens_are_issued(
) {
    let server = server().await;
    let code = code_for(&server, BASIC_CLIENT).await;

    let (status, body, _) = post_token(
        &server,
        &[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("redirect_uri", REDIRECT_URI),
            ("code_verifier", VERIFIER),
        ],
        Some((BASIC_CLIENT, BASIC_SECRET)),
    )
    .await;

    assert_eq!(status, 200, "{body}");
    assert!(server.is_access_token_active(&text(&body, "access_token")));
    let records = server.token_requests();
    assert_eq!(records.len(), 1);
    assert_eq!(records[0].client_auth, Some(ClientAuthMethod::Basic));
    assert_eq!(records[0].client_id.as_deref(), Some(BASIC_CLIENT));
}

#[tokio::test]
async fn given_a_code_when_the_verifier_is_wrong_or_missing_then_invalid_grant() {
    let server = server().await;
    let code = code_for(&server, POST_CLIENT).await;
    let other_verifier = "x".repeat(43);

    let (wrong, wrong_body) = exchange_as_post_client(&server, &code, Some(&other_verifier)).await;
    let (missing, missing_body) = exchange_as_post_client(&server, &code, None).await;

    assert_eq!(
        (wrong, text(&wrong_body, "error").as_str()),
        (400, "invalid_grant")
    );
    assert_eq!(
        (missing, text(&missing_body, "error").as_str()),
        (400, "invalid_grant")
    );
    // Failed attempts do not burn the code: the right verifier still works.
    let (right, _) = exchange_as_post_client(&server, &code, Some(VERIFIER)).await;
    assert_eq!(right, 200);
}

#[tokio::test]
async fn given_a_used_code_when_it_is_exchanged_again_then_invalid_grant_and_its_tokens_are_revoked(
) {
    let server = server().await;
    let code = code_for(&server, POST_CLIENT).await;
    let (first, first_body) = exchange_as_post_client(&server, &code, Some(VERIFIER)).await;
    assert_eq!(first, 200);
    let access_token = text(&first_body, "access_token");

    let (second, second_body) = exchange_as_post_client(&server, &code, Some(VERIFIER)).await;

    assert_eq!(second, 400);
    assert_eq!(text(&second_body, "error"), "invalid_grant");
    assert!(!server.is_access_token_active(&access_token));
    assert!(server.active_refresh_tokens().is_empty());
    assert_eq!(me_status(&server, &access_token).await.0, 401);
}

#[tokio::test]
async fn given_a_code_when_redirect_uri_differs_or_is_missing_at_token_then_invalid_grant() {
    let server = server().await;
    let code = code_for(&server, POST_CLIENT).await;
    let other_uri = format!("{REDIRECT_URI}/");

    let (different, body, _) = post_token(
        &server,
        &[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("redirect_uri", &other_uri),
            ("code_verifier", VERIFIER),
            ("client_id", POST_CLIENT),
            ("client_secret", POST_SECRET),
        ],
        None,
    )
    .await;
    let (missing, missing_body, _) = post_token(
        &server,
        &[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("code_verifier", VERIFIER),
            ("client_id", POST_CLIENT),
            ("client_secret", POST_SECRET),
        ],
        None,
    )
    .await;

    assert_eq!(
        (different, text(&body, "error").as_str()),
        (400, "invalid_grant")
    );
    assert_eq!(
        (missing, text(&missing_body, "error").as_str()),
        (400, "invalid_grant")
    );
}

#[tokio::test]
async fn given_a_code_of_one_client_when_another_client_exchanges_it_then_invalid_grant() {
    let server = server().await;
    let code = code_for(&server, BASIC_CLIENT).await;

    let (status, body) = exchange_as_post_client(&server, &code, Some(VERIFIER)).await;

    assert_eq!(
        (status, text(&body, "error").as_str()),
        (400, "invalid_grant")
    );
}

#[tokio::test]
async fn given_an_expired_code_when_it_is_exchanged_then_invalid_grant() {
    let server = server_with(AuthServerOptions {
        authorization_code_ttl: Duration::ZERO,
        ..AuthServerOptions::default()
    })
    .await;
    let code = code_for(&server, POST_CLIENT).await;

    let (status, body) = exchange_as_post_client(&server, &code, Some(VERIFIER)).await;

    assert_eq!(
        (status, text(&body, "error").as_str()),
        (400, "invalid_grant")
    );
}

#[tokio::test]
async fn given_no_challenge_at_authorize_when_a_verifier_is_sent_then_invalid_grant() {
    let server = server().await;
    let mut optional_pkce = client("plain-client", "plain-secret", ClientAuthMethod::Post);
    optional_pkce.require_pkce = false;
    server.register_client(optional_pkce);
    let response = authorize_with(
        &server,
        &[
            ("response_type", "code"),
            ("client_id", "plain-client"),
            ("redirect_uri", REDIRECT_URI),
        ],
    )
    .await;
    let code = location_params(&response).remove("code").expect("code");
    let token_form = |verifier: Option<&'static str>| {
        let mut form = vec![
            ("grant_type", "authorization_code".to_owned()),
            ("code", code.clone()),
            ("redirect_uri", REDIRECT_URI.to_owned()),
            ("client_id", "plain-client".to_owned()),
            ("client_secret", "plain-secret".to_owned()),
        ];
        if let Some(verifier) = verifier {
            form.push(("code_verifier", verifier.to_owned()));
        }
        form
    };
    let send = |form: Vec<(&'static str, String)>| {
        let url = server.token_url();
        async move {
            let response = http().post(url).form(&form).send().await.expect("token");
            let status = response.status().as_u16();
            (
                status,
                response.json::<Value>().await.unwrap_or(Value::Null),
            )
        }
    };

    let (downgrade, downgrade_body) = send(token_form(Some(VERIFIER))).await;
    let (without, _) = send(token_form(None)).await;

    assert_eq!(
        (downgrade, text(&downgrade_body, "error").as_str()),
        (400, "invalid_grant")
    );
    assert_eq!(without, 200);
}

// --- authorize -------------------------------------------------------------------------------

#[tokio::test]
async fn given_an_unregistered_redirect_uri_or_client_when_authorizing_then_400_page_without_redirect(
) {
    let server = server().await;
    let challenge = s256_challenge(VERIFIER);
    let base = [
        ("response_type", "code"),
        ("code_challenge", challenge.as_str()),
        ("code_challenge_method", "S256"),
        ("state", "s"),
    ];
    let attempts: [&[(&str, &str)]; 3] = [
        &[
            ("client_id", POST_CLIENT),
            ("redirect_uri", "http://evil.example/cb"),
        ],
        &[
            ("client_id", POST_CLIENT),
            ("redirect_uri", &format!("{REDIRECT_URI}?x=1")),
        ],
        &[("client_id", "nobody"), ("redirect_uri", REDIRECT_URI)],
    ];

    for attempt in attempts {
        let params: Vec<(&str, &str)> = base.iter().chain(attempt.iter()).copied().collect();
        let response = authorize_with(&server, &params).await;
        assert_eq!(response.status(), 400, "{attempt:?}");
        assert!(response.headers().get(header::LOCATION).is_none());
    }
}

#[tokio::test]
async fn given_pkce_required_when_challenge_is_missing_or_plain_then_invalid_request_redirect() {
    let server = server().await;
    let challenge = s256_challenge(VERIFIER);
    let attempts: [&[(&str, &str)]; 3] = [
        &[],
        &[("code_challenge", &challenge)],
        &[
            ("code_challenge", &challenge),
            ("code_challenge_method", "plain"),
        ],
    ];

    for extra in attempts {
        let mut params = vec![
            ("response_type", "code"),
            ("client_id", POST_CLIENT),
            ("redirect_uri", REDIRECT_URI),
            ("state", "st-9"),
        ];
        params.extend_from_slice(extra);
        let response = authorize_with(&server, &params).await;
        assert_eq!(response.status(), 302);
        let answer = location_params(&response);
        assert_eq!(answer["error"], "invalid_request", "{extra:?}");
        assert_eq!(answer["state"], "st-9");
        assert!(!answer.contains_key("code"));
    }
}

#[tokio::test]
async fn given_a_bad_response_type_or_scope_when_authorizing_then_the_error_is_redirected() {
    let server = server_with(AuthServerOptions {
        scopes_supported: Some(vec!["read".to_owned(), "write".to_owned()]),
        ..AuthServerOptions::default()
    })
    .await;
    let challenge = s256_challenge(VERIFIER);
    let cases = [
        ("token", "read", "unsupported_response_type"),
        ("code", "read admin", "invalid_scope"),
    ];

    for (response_type, scope, expected) in cases {
        let response = authorize_with(
            &server,
            &[
                ("response_type", response_type),
                ("client_id", POST_CLIENT),
                ("redirect_uri", REDIRECT_URI),
                ("scope", scope),
                ("code_challenge", &challenge),
                ("code_challenge_method", "S256"),
            ],
        )
        .await;
        assert_eq!(response.status(), 302);
        assert_eq!(location_params(&response)["error"], expected);
    }
}

#[tokio::test]
async fn given_deny_next_consent_when_authorizing_then_access_denied_once_with_state_and_iss() {
    let server = server().await;
    server.deny_next_consent();
    let challenge = s256_challenge(VERIFIER);
    let params = [
        ("response_type", "code"),
        ("client_id", POST_CLIENT),
        ("redirect_uri", REDIRECT_URI),
        ("state", "st-2"),
        ("code_challenge", challenge.as_str()),
        ("code_challenge_method", "S256"),
    ];

    let denied = location_params(&authorize_with(&server, &params).await);
    let approved = location_params(&authorize_with(&server, &params).await);

    assert_eq!(denied["error"], "access_denied");
    assert_eq!(denied["state"], "st-2");
    assert_eq!(denied["iss"], server.issuer());
    assert!(!denied.contains_key("code"));
    assert!(approved.contains_key("code"));
}

#[tokio::test]
async fn given_send_iss_on_or_off_when_authorizing_then_iss_is_present_or_absent() {
    let with_iss = server().await;
    let without_iss = server_with(AuthServerOptions {
        send_iss: false,
        ..AuthServerOptions::default()
    })
    .await;
    let challenge = s256_challenge(VERIFIER);
    let params = [
        ("response_type", "code"),
        ("client_id", POST_CLIENT),
        ("redirect_uri", REDIRECT_URI),
        ("code_challenge", challenge.as_str()),
        ("code_challenge_method", "S256"),
    ];

    let on = authorize_with(&with_iss, &params).await;
    let off = location_params(&authorize_with(&without_iss, &params).await);

    let raw_location = on.headers()[header::LOCATION].to_str().expect("ascii");
    assert!(raw_location.starts_with(&format!("{REDIRECT_URI}?code=")));
    // The issuer is form-urlencoded in the query.
    assert!(raw_location.contains("&iss=http%3A%2F%2F127.0.0.1%3A"));
    assert_eq!(location_params(&on)["iss"], with_iss.issuer());
    assert_eq!(with_iss.issuer(), with_iss.url());
    assert!(!off.contains_key("iss"));
    assert!(off.contains_key("code"));
}

#[tokio::test]
async fn given_a_redirect_uri_with_a_query_when_authorizing_then_code_is_appended_with_ampersand() {
    let server = server().await;
    let uri_with_query = "http://127.0.0.1:3000/cb?tenant=t1";
    let mut registered = client("query-client", "q-secret", ClientAuthMethod::Post);
    registered.redirect_uris = vec![uri_with_query.to_owned()];
    registered.require_pkce = false;
    server.register_client(registered);

    let response = authorize_with(
        &server,
        &[
            ("response_type", "code"),
            ("client_id", "query-client"),
            ("redirect_uri", uri_with_query),
        ],
    )
    .await;

    let location = response.headers()[header::LOCATION]
        .to_str()
        .expect("ascii");
    assert!(
        location.starts_with("http://127.0.0.1:3000/cb?tenant=t1&code="),
        "{location}"
    );
    assert_eq!(location_params(&response)["tenant"], "t1");
}

// --- client authentication -------------------------------------------------------------------

#[tokio::test]
async fn given_a_client_registered_for_one_method_when_it_uses_another_then_401_invalid_client() {
    let server = server().await;
    let post_code = code_for(&server, POST_CLIENT).await;
    let basic_code = code_for(&server, BASIC_CLIENT).await;

    let (post_via_basic, post_body, post_headers) = post_token(
        &server,
        &[
            ("grant_type", "authorization_code"),
            ("code", &post_code),
            ("redirect_uri", REDIRECT_URI),
            ("code_verifier", VERIFIER),
        ],
        Some((POST_CLIENT, POST_SECRET)),
    )
    .await;
    let (basic_via_post, basic_body, basic_headers) = post_token(
        &server,
        &[
            ("grant_type", "authorization_code"),
            ("code", &basic_code),
            ("redirect_uri", REDIRECT_URI),
            ("code_verifier", VERIFIER),
            ("client_id", BASIC_CLIENT),
            ("client_secret", BASIC_SECRET),
        ],
        None,
    )
    .await;

    assert_eq!(post_via_basic, 401);
    assert_eq!(text(&post_body, "error"), "invalid_client");
    assert!(post_headers[header::WWW_AUTHENTICATE]
        .to_str()
        .expect("ascii")
        .starts_with("Basic"));
    assert_eq!(basic_via_post, 401);
    assert_eq!(text(&basic_body, "error"), "invalid_client");
    assert!(basic_headers.get(header::WWW_AUTHENTICATE).is_none());
    // Neither code was consumed by the refused requests.
    assert_eq!(
        exchange_as_post_client(&server, &post_code, Some(VERIFIER))
            .await
            .0,
        200
    );
}

#[tokio::test]
async fn given_wrong_secret_both_methods_or_no_auth_when_requesting_a_token_then_401_invalid_client(
) {
    let server = server().await;
    let code = code_for(&server, POST_CLIENT).await;
    let grant = [
        ("grant_type", "authorization_code"),
        ("code", code.as_str()),
        ("redirect_uri", REDIRECT_URI),
        ("code_verifier", VERIFIER),
    ];
    let with = |extra: &[(&'static str, &'static str)]| {
        grant
            .iter()
            .chain(extra.iter())
            .copied()
            .collect::<Vec<_>>()
    };

    let wrong_secret = post_token(
        &server,
        &with(&[("client_id", POST_CLIENT), ("client_secret", "nope")]),
        None,
    )
    .await;
    let unencoded_basic = http()
        .post(server.token_url())
        .basic_auth(BASIC_CLIENT, Some(BASIC_SECRET))
        .form(&grant)
        .send()
        .await
        .expect("token answers");
    let both = post_token(
        &server,
        &with(&[("client_secret", BASIC_SECRET)]),
        Some((BASIC_CLIENT, BASIC_SECRET)),
    )
    .await;
    let id_only = post_token(&server, &with(&[("client_id", POST_CLIENT)]), None).await;

    for (status, body, _) in [&wrong_secret, &both, &id_only] {
        assert_eq!(
            (*status, text(body, "error").as_str()),
            (401, "invalid_client")
        );
    }
    // The secret has characters that must be form-urlencoded inside Basic; raw, it does not match.
    assert_eq!(unencoded_basic.status(), 401);
    let auth: Vec<_> = server
        .token_requests()
        .iter()
        .map(|r| r.client_auth)
        .collect();
    assert_eq!(
        auth,
        vec![
            Some(ClientAuthMethod::Post),
            Some(ClientAuthMethod::Basic),
            Some(ClientAuthMethod::Basic),
            None
        ]
    );
}

#[tokio::test]
async fn given_a_json_body_when_requesting_a_token_then_400_invalid_request() {
    let server = server().await;

    let response = http()
        .post(server.token_url())
        .json(&json!({"grant_type": "refresh_token", "refresh_token": "x"}))
        .send()
        .await
        .expect("token answers");

    assert_eq!(response.status(), 400);
    let body: Value = response.json().await.expect("json");
    assert_eq!(body["error"], "invalid_request");
    assert_eq!(server.token_requests()[0].status, 400);
}

#[tokio::test]
async fn given_an_unknown_grant_type_when_requesting_a_token_then_unsupported_grant_type() {
    let server = server().await;

    let (status, body, _) = post_token(
        &server,
        &[
            ("grant_type", "password"),
            ("client_id", POST_CLIENT),
            ("client_secret", POST_SECRET),
        ],
        None,
    )
    .await;

    assert_eq!(
        (status, text(&body, "error").as_str()),
        (400, "unsupported_grant_type")
    );
    assert_eq!(server.token_requests()[0].grant_type, "password");
}

// --- refresh ---------------------------------------------------------------------------------

#[tokio::test]
async fn given_rotation_when_refreshing_then_new_token_works_and_reusing_the_old_revokes_the_family(
) {
    let server = server().await;
    let (first_access, first_refresh) = tokens_for_post_client(&server).await;

    let (status, body) = refresh_as_post_client(&server, &first_refresh).await;
    assert_eq!(status, 200, "{body}");
    let second_access = text(&body, "access_token");
    let second_refresh = text(&body, "refresh_token");
    assert_ne!(second_refresh, first_refresh);
    assert_eq!(text(&body, "scope"), "read write");
    assert_eq!(server.active_refresh_tokens(), vec![second_refresh.clone()]);
    assert_eq!(me_status(&server, &second_access).await.0, 200);

    let (reuse, reuse_body) = refresh_as_post_client(&server, &first_refresh).await;

    assert_eq!(
        (reuse, text(&reuse_body, "error").as_str()),
        (400, "invalid_grant")
    );
    assert!(server.active_refresh_tokens().is_empty());
    assert!(!server.is_access_token_active(&first_access));
    assert!(!server.is_access_token_active(&second_access));
    assert_eq!(
        refresh_as_post_client(&server, &second_refresh).await.0,
        400
    );
}

#[tokio::test]
async fn given_no_rotation_when_refreshing_then_no_refresh_token_is_returned_and_the_old_stays_valid(
) {
    let server = server_with(AuthServerOptions {
        rotate_refresh_tokens: false,
        ..AuthServerOptions::default()
    })
    .await;
    let (_, refresh_token) = tokens_for_post_client(&server).await;

    let (first, first_body) = refresh_as_post_client(&server, &refresh_token).await;
    let (second, _) = refresh_as_post_client(&server, &refresh_token).await;

    assert_eq!(first, 200);
    assert!(first_body.get("refresh_token").is_none());
    assert_eq!(second, 200);
    assert_eq!(server.active_refresh_tokens(), vec![refresh_token]);
}

#[tokio::test]
async fn given_a_refresh_token_of_another_client_when_refreshing_then_invalid_grant() {
    let server = server().await;
    let code = code_for(&server, BASIC_CLIENT).await;
    let (_, body, _) = post_token(
        &server,
        &[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("redirect_uri", REDIRECT_URI),
            ("code_verifier", VERIFIER),
        ],
        Some((BASIC_CLIENT, BASIC_SECRET)),
    )
    .await;

    let (status, answer) = refresh_as_post_client(&server, &text(&body, "refresh_token")).await;

    assert_eq!(
        (status, text(&answer, "error").as_str()),
        (400, "invalid_grant")
    );
    assert_eq!(server.active_refresh_tokens().len(), 1);
}

#[tokio::test]
async fn given_token_delay_when_one_refresh_token_is_used_twice_concurrently_then_one_wins_and_the_family_is_revoked(
) {
    let server = server_with(AuthServerOptions {
        token_delay: Duration::from_millis(50),
        ..AuthServerOptions::default()
    })
    .await;
    let (_, refresh_token) = tokens_for_post_client(&server).await;

    let (one, two) = tokio::join!(
        refresh_as_post_client(&server, &refresh_token),
        refresh_as_post_client(&server, &refresh_token)
    );

    let mut statuses = [one.0, two.0];
    statuses.sort();
    assert_eq!(statuses, [200, 400]);
    assert!(server.active_refresh_tokens().is_empty());
}

#[tokio::test]
async fn given_a_short_ttl_when_the_access_token_expires_then_me_answers_401() {
    let server = server().await;
    server.set_access_token_ttl(Duration::ZERO);
    let code = code_for(&server, POST_CLIENT).await;

    let (_, body) = exchange_as_post_client(&server, &code, Some(VERIFIER)).await;

    assert_eq!(body["expires_in"], 0);
    let access_token = text(&body, "access_token");
    assert!(!server.is_access_token_active(&access_token));
    let response = http()
        .get(server.me_url())
        .bearer_auth(&access_token)
        .send()
        .await
        .expect("me answers");
    assert_eq!(response.status(), 401);
    assert_eq!(
        response.headers()[header::WWW_AUTHENTICATE],
        "Bearer error=\"invalid_token\""
    );
}

// --- injected failures -----------------------------------------------------------------------

#[tokio::test]
async fn given_injected_failures_when_requesting_tokens_then_they_are_answered_recorded_and_the_code_survives(
) {
    let server = server().await;
    let code = code_for(&server, POST_CLIENT).await;
    server.fail_next_token_requests(InjectedFailure::ServerError, 2);
    server.fail_next_token_requests(InjectedFailure::InvalidGrant, 1);
    server.fail_next_token_requests(InjectedFailure::Unauthorized, 1);

    let mut answers = Vec::new();
    for _ in 0..5 {
        let (status, body) = exchange_as_post_client(&server, &code, Some(VERIFIER)).await;
        answers.push((status, text(&body, "error")));
    }

    assert_eq!(
        answers,
        vec![
            (503, "temporarily_unavailable".to_owned()),
            (503, "temporarily_unavailable".to_owned()),
            (400, "invalid_grant".to_owned()),
            (401, "invalid_client".to_owned()),
            (200, String::new()),
        ]
    );
    let recorded: Vec<(u16, Option<String>)> = server
        .token_requests()
        .into_iter()
        .map(|r| (r.status, r.error))
        .collect();
    assert_eq!(recorded.len(), 5);
    assert_eq!(
        recorded[0],
        (503, Some("temporarily_unavailable".to_owned()))
    );
    assert_eq!(recorded[4], (200, None));
}

// --- revocation ------------------------------------------------------------------------------

#[tokio::test]
async fn given_an_access_token_when_it_is_revoked_then_it_is_inactive_and_me_answers_401() {
    let server = server().await;
    let (access_token, refresh_token) = tokens_for_post_client(&server).await;

    let response = http()
        .post(server.revoke_url())
        .form(&[
            ("token", access_token.as_str()),
            ("token_type_hint", "access_token"),
            ("client_id", POST_CLIENT),
            ("client_secret", POST_SECRET),
        ])
        .send()
        .await
        .expect("revoke answers");

    assert_eq!(response.status(), 200);
    assert!(response.bytes().await.expect("body").is_empty());
    assert!(!server.is_access_token_active(&access_token));
    let (me, me_body) = me_status(&server, &access_token).await;
    assert_eq!(
        (me, text(&me_body, "error").as_str()),
        (401, "invalid_token")
    );
    // Revoking an access token leaves the refresh token of its grant alone.
    assert_eq!(server.active_refresh_tokens(), vec![refresh_token]);
    let records = server.revocations();
    assert_eq!(records.len(), 1);
    assert!(records[0].revoked);
    assert_eq!(records[0].token_type_hint.as_deref(), Some("access_token"));
    assert_eq!(records[0].client_auth, Some(ClientAuthMethod::Post));
}

#[tokio::test]
async fn given_a_refresh_token_when_it_is_revoked_then_its_access_tokens_are_revoked_too() {
    let server = server().await;
    let code = code_for(&server, BASIC_CLIENT).await;
    let (_, body, _) = post_token(
        &server,
        &[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("redirect_uri", REDIRECT_URI),
            ("code_verifier", VERIFIER),
        ],
        Some((BASIC_CLIENT, BASIC_SECRET)),
    )
    .await;
    let access_token = text(&body, "access_token");

    let response = http()
        .post(server.revoke_url())
        .header(
            header::AUTHORIZATION,
            basic_header(BASIC_CLIENT, BASIC_SECRET),
        )
        .form(&[("token", text(&body, "refresh_token"))])
        .send()
        .await
        .expect("revoke answers");

    assert_eq!(response.status(), 200);
    assert!(!server.is_access_token_active(&access_token));
    assert!(server.active_refresh_tokens().is_empty());
    assert_eq!(
        server.revocations()[0].client_auth,
        Some(ClientAuthMethod::Basic)
    );
}

#[tokio::test]
async fn given_an_unknown_token_or_bad_client_when_revoking_then_200_not_revoked_or_401() {
    let server = server().await;
    let revoke = |form: Vec<(&'static str, &'static str)>| {
        let url = server.revoke_url();
        async move {
            http()
                .post(url)
                .form(&form)
                .send()
                .await
                .expect("revoke answers")
                .status()
                .as_u16()
        }
    };

    let unknown = revoke(vec![
        ("token", "never-issued"),
        ("client_id", POST_CLIENT),
        ("client_secret", POST_SECRET),
    ])
    .await;
    let bad_client = revoke(vec![
        ("token", "never-issued"),
        ("client_id", POST_CLIENT),
        ("client_secret", "wrong"),
    ])
    .await;

    assert_eq!((unknown, bad_client), (200, 401));
    let revoked: Vec<(u16, bool)> = server
        .revocations()
        .iter()
        .map(|r| (r.status, r.revoked))
        .collect();
    assert_eq!(revoked, vec![(200, false), (401, false)]);
}

// --- records, metadata, id token -------------------------------------------------------------

#[tokio::test]
async fn given_a_code_exchange_and_a_refresh_when_reading_records_then_every_field_is_filled() {
    let server = server().await;
    let (_, refresh_token) = tokens_for_post_client(&server).await;
    refresh_as_post_client(&server, &refresh_token).await;

    let records = server.token_requests();

    assert_eq!(
        records,
        vec![
            TokenRequestRecord {
                grant_type: "authorization_code".to_owned(),
                client_auth: Some(ClientAuthMethod::Post),
                client_id: Some(POST_CLIENT.to_owned()),
                code_verifier: Some(VERIFIER.to_owned()),
                redirect_uri: Some(REDIRECT_URI.to_owned()),
                refresh_token: None,
                status: 200,
                error: None,
            },
            TokenRequestRecord {
                grant_type: "refresh_token".to_owned(),
                client_auth: Some(ClientAuthMethod::Post),
                client_id: Some(POST_CLIENT.to_owned()),
                code_verifier: None,
                redirect_uri: None,
                refresh_token: Some(refresh_token),
                status: 200,
                error: None,
            },
        ]
    );
}

#[tokio::test]
async fn given_the_metadata_endpoint_when_fetched_then_it_describes_the_server() {
    let server = server().await;

    let document: Value = http()
        .get(server.metadata_url())
        .send()
        .await
        .expect("metadata answers")
        .json()
        .await
        .expect("json");

    assert_eq!(document["issuer"], server.issuer());
    assert_eq!(document["authorization_endpoint"], server.authorize_url());
    assert_eq!(document["token_endpoint"], server.token_url());
    assert_eq!(document["revocation_endpoint"], server.revoke_url());
    assert_eq!(
        document["code_challenge_methods_supported"],
        json!(["S256"])
    );
    assert_eq!(
        document["token_endpoint_auth_methods_supported"],
        json!(["client_secret_basic", "client_secret_post"])
    );
    assert_eq!(
        document["authorization_response_iss_parameter_supported"],
        true
    );
}

#[tokio::test]
async fn given_issue_id_token_when_a_code_is_exchanged_then_a_jwt_shaped_id_token_is_returned() {
    let server = server_with(AuthServerOptions {
        issue_id_token: true,
        ..AuthServerOptions::default()
    })
    .await;
    let code = code_for(&server, POST_CLIENT).await;

    let (_, body) = exchange_as_post_client(&server, &code, Some(VERIFIER)).await;

    let id_token = text(&body, "id_token");
    let parts: Vec<&str> = id_token.split('.').collect();
    assert_eq!(parts.len(), 3);
    let claims: Value =
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(parts[1]).expect("base64url"))
            .expect("json");
    assert_eq!(claims["aud"], POST_CLIENT);
    assert_eq!(claims["iss"], server.issuer());
}

#[tokio::test]
async fn given_a_stopped_server_when_called_then_the_connection_is_refused() {
    let server = server().await;
    let url = server.metadata_url();

    server.stop().await;

    assert!(http().get(url).send().await.is_err());
}

// --- pure helpers ----------------------------------------------------------------------------

#[test]
fn given_form_urlencoded_basic_parts_when_decoding_then_plus_and_escapes_are_undone() {
    assert_eq!(form_urldecode("a+b%3Ac%25").as_deref(), Some("a b:c%"));
    assert_eq!(form_urldecode("%C3%A9").as_deref(), Some("é"));
    assert_eq!(form_urldecode("%zz"), None);
    assert_eq!(form_urldecode("%4"), None);
}

#[test]
fn given_the_rfc_7636_example_verifier_when_hashing_then_the_example_challenge_comes_out() {
    assert_eq!(
        s256_challenge(VERIFIER),
        "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"
    );
}
