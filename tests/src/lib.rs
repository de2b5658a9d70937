//! Test support shared by the end-to-end suites: one moto per test run, AWS SDK configuration pointing
//! at it, and unique resource names so tests run in parallel and leave nothing behind.

use std::sync::OnceLock;

use aws_config::{BehaviorVersion, Region, SdkConfig};

/// The endpoint of the moto this test process uses: `HUB_TEST_AWS_ENDPOINT` (started by `make test`),
/// else a private moto started once for this process and killed when it exits.
pub fn moto_endpoint() -> &'static str {
    static ENDPOINT: OnceLock<String> = OnceLock::new();
    ENDPOINT.get_or_init(|| {
        if let Ok(endpoint) = std::env::var("HUB_TEST_AWS_ENDPOINT") {
            wait_until_ready(&endpoint);
            return endpoint;
        }
        let (sender, receiver) = std::sync::mpsc::channel();
        // A thread that outlives every test: moto dies with the thread that started it.
        std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("tokio runtime for moto");
            runtime.block_on(async move {
                let log_dir = std::env::temp_dir().join("hub-tests-moto");
                let moto = hub_local::moto::Moto::start_on_free_port(&log_dir)
                    .await
                    .expect("moto_server starts (pip install -r requirements-dev.txt)");
                sender
                    .send(moto.endpoint().to_string())
                    .expect("endpoint handed over");
                std::future::pending::<()>().await;
                drop(moto);
            });
        });
        receiver.recv().expect("moto endpoint")
    })
}

/// Runs on its own thread: callers are usually inside a test's tokio runtime.
fn wait_until_ready(endpoint: &str) {
    let endpoint = endpoint.to_string();
    let ready = std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("tokio runtime");
        runtime.block_on(async {
            for _ in 0..300 {
                if hub_local::moto::is_ready(&endpoint).await {
                    return true;
                }
                tokio::time::sleep(std::time::Duration::from_millis(200)).await;
            }
            false
        })
    })
    .join()
    .unwrap_or(false);
    assert!(ready, "moto did not answer within 60 s");
}

/// SDK configuration for moto: fixed test credentials, us-east-1, the moto endpoint.
pub fn sdk_config() -> SdkConfig {
    SdkConfig::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new("us-east-1"))
        .endpoint_url(moto_endpoint())
        .credentials_provider(aws_credential_types_provider())
        .build()
}

fn aws_credential_types_provider() -> aws_sdk_dynamodb::config::SharedCredentialsProvider {
    aws_sdk_dynamodb::config::SharedCredentialsProvider::new(
        aws_sdk_dynamodb::config::Credentials::new("test", "test", None, None, "hub-tests"),
    )
}

/// A name no other test in this run (or a previous one against the same moto) uses.
pub fn unique_name(prefix: &str) -> String {
    use std::sync::atomic::{AtomicU32, Ordering};
    static COUNTER: AtomicU32 = AtomicU32::new(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    format!("{prefix}-{}-{n}-{nanos:x}", std::process::id())
}

pub mod provider;

pub use app::{spawn_app, spawn_app_on, spawn_app_with, Reply, TestApp};

/// Every log line of this test process as JSON (nextest runs each test in its own process), from
/// the moment [`capture_logs`] is called.
#[derive(Clone, Default)]
pub struct CapturedLogs(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);

impl CapturedLogs {
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().expect("lock")).to_string()
    }
}

impl std::io::Write for CapturedLogs {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0.lock().expect("lock").extend_from_slice(bytes);
        Ok(bytes.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Installs a JSON log subscriber at `level` that writes into the returned buffer.
pub fn capture_logs(level: &str) -> CapturedLogs {
    let captured = CapturedLogs::default();
    let writer = captured.clone();
    let _ = tracing_subscriber::fmt()
        .json()
        .with_env_filter(tracing_subscriber::EnvFilter::new(level))
        .with_writer(move || writer.clone())
        .try_init();
    captured
}

mod app {
    use std::sync::Mutex;

    use hub_local::jwt::dev_token;
    use hub_local::provision::StackNames;
    use hub_local::stack::{LocalStack, StackOptions};
    use serde_json::Value;

    /// The whole local stack (provisioned resources, functions, gateway) on a free port, with fresh
    /// resource names, and an HTTP client that remembers every response for secret scans.
    pub struct TestApp {
        pub url: String,
        pub http: reqwest::Client,
        pub options: StackOptions,
        pub stack: LocalStack,
        responses: Mutex<Vec<String>>,
    }

    #[derive(Debug, Clone)]
    pub struct Reply {
        pub status: u16,
        pub headers: reqwest::header::HeaderMap,
        pub text: String,
    }

    impl Reply {
        pub fn json(&self) -> Value {
            serde_json::from_str(&self.text)
                .unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.text))
        }

        pub fn header(&self, name: &str) -> Option<&str> {
            self.headers.get(name).and_then(|v| v.to_str().ok())
        }
    }

    pub async fn spawn_app() -> TestApp {
        spawn_app_with(|_| {}).await
    }

    pub async fn spawn_app_with(customise: impl FnOnce(&mut StackOptions)) -> TestApp {
        spawn_app_on(&super::sdk_config(), customise).await
    }

    /// A stack on the AWS endpoint of `sdk` (a moto of the test's own).
    pub async fn spawn_app_on(
        sdk: &aws_config::SdkConfig,
        customise: impl FnOnce(&mut StackOptions),
    ) -> TestApp {
        let names = StackNames::with_prefix(&super::unique_name("hub"));
        let mut options = StackOptions::new(names, "127.0.0.1:0".parse().expect("address"));
        customise(&mut options);
        let stack = LocalStack::start(sdk, options.clone())
            .await
            .expect("local stack starts");
        TestApp {
            url: stack.url.clone(),
            http: {
                hub_shared::http_client::install_default_crypto_provider();
                reqwest::Client::new()
            },
            options,
            stack,
            responses: Mutex::new(Vec::new()),
        }
    }

    impl TestApp {
        /// A valid token for `tenant` (subject `user-<tenant>`).
        pub fn token(&self, tenant: &str) -> String {
            dev_token(
                self.options.jwt_secret.as_bytes(),
                &self.options.tenant_claim,
                tenant,
                &format!("user-{tenant}"),
                &self.options.jwt_issuer,
                &self.options.jwt_audience,
                3600,
            )
        }

        pub fn request(
            &self,
            method: reqwest::Method,
            tenant: &str,
            path: &str,
        ) -> reqwest::RequestBuilder {
            self.http
                .request(method, format!("{}{path}", self.url))
                .bearer_auth(self.token(tenant))
        }

        pub async fn send(&self, request: reqwest::RequestBuilder) -> Reply {
            let response = request.send().await.expect("the gateway answers");
            let status = response.status().as_u16();
            let headers = response.headers().clone();
            let text = response.text().await.expect("body");
            self.responses.lock().expect("lock").push(text.clone());
            Reply {
                status,
                headers,
                text,
            }
        }

        pub async fn get(&self, tenant: &str, path: &str) -> Reply {
            self.send(self.request(reqwest::Method::GET, tenant, path))
                .await
        }

        pub async fn delete(&self, tenant: &str, path: &str) -> Reply {
            self.send(self.request(reqwest::Method::DELETE, tenant, path))
                .await
        }

        pub async fn post_json(&self, tenant: &str, path: &str, body: &Value) -> Reply {
            self.send(self.request(reqwest::Method::POST, tenant, path).json(body))
                .await
        }

        pub async fn patch_json(
            &self,
            tenant: &str,
            path: &str,
            body: &Value,
            if_match: Option<&str>,
        ) -> Reply {
            let mut request = self
                .request(reqwest::Method::PATCH, tenant, path)
                .json(body);
            if let Some(version) = if_match {
                request = request.header("if-match", version);
            }
            self.send(request).await
        }

        /// Creates an integration and returns its resource (panics unless 201).
        pub async fn create_integration(&self, tenant: &str, body: &Value) -> Value {
            let reply = self.post_json(tenant, "/api/integrations", body).await;
            assert_eq!(reply.status, 201, "create failed: {}", reply.text);
            reply.json()
        }

        /// Every response body this app has returned so far.
        pub fn response_bodies(&self) -> Vec<String> {
            self.responses.lock().expect("lock").clone()
        }

        /// Every item of the table, as boto3 or a scan would see it (binary attributes as bytes).
        pub async fn scan_table(
            &self,
        ) -> Vec<std::collections::HashMap<String, aws_sdk_dynamodb::types::AttributeValue>>
        {
            let client = aws_sdk_dynamodb::Client::new(&super::sdk_config());
            let mut items = Vec::new();
            let mut start = None;
            loop {
                let out = client
                    .scan()
                    .table_name(&self.stack.provisioned.table_name)
                    .set_exclusive_start_key(start.take())
                    .send()
                    .await
                    .expect("scan");
                items.extend(out.items.unwrap_or_default());
                match out.last_evaluated_key {
                    Some(key) => start = Some(key),
                    None => return items,
                }
            }
        }
    }
}

/// Writes a `PROVIDERS_FILE` with `yaml` into a fresh temporary folder and returns its path.
pub fn write_providers_file(yaml: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(unique_name("providers"));
    std::fs::create_dir_all(&dir).expect("temporary folder");
    let file = dir.join("providers.yaml");
    std::fs::write(&file, yaml).expect("providers file");
    file
}

/// OAuth test support: a provider entry pointing at a [`hub_local::oauth_server::LocalAuthServer`]
/// and the browser's part of a connect flow (no redirect is followed: each hop is checked).
pub mod oauth {
    use hub_local::oauth_server::{ClientAuthMethod, LocalAuthServer, RegisteredClient};
    use serde_json::json;

    use super::app::{Reply, TestApp};

    /// The prefix of every test client id (see [`client_id`]).
    pub const CLIENT_ID: &str = "hub-test-client";
    pub const CLIENT_SECRET: &str = "hub-test-client-secret-1234";

    /// One client per provider entry, so entries can differ in client authentication.
    pub fn client_id(slug: &str) -> String {
        format!("{CLIENT_ID}-{slug}")
    }

    /// How the catalog entry talks to the token endpoint.
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    pub struct ProviderShape {
        pub token_auth_basic: bool,
        pub pkce: bool,
        pub issuer: bool,
        pub revoke: bool,
    }

    impl Default for ProviderShape {
        fn default() -> Self {
            ProviderShape {
                token_auth_basic: false,
                pkce: true,
                issuer: true,
                revoke: true,
            }
        }
    }

    /// A catalog entry `slug` for `server` (its API is the server's `/me`).
    pub fn provider_yaml(slug: &str, server: &LocalAuthServer, shape: ProviderShape) -> String {
        let url = server.url();
        let mut auth =
            format!(
            "    mode: oauth2\n    authorizeUrl: {url}/authorize\n    tokenUrl: {url}/token\n    \
             scopes: [contacts.read, offline_access]\n    pkce: {}\n    tokenAuth: {}\n    \
             authorizeParams: {{access_type: offline}}\n",
            shape.pkce,
            if shape.token_auth_basic { "basic" } else { "body" },
        );
        if shape.revoke {
            auth.push_str(&format!("    revokeUrl: {url}/revoke\n"));
        }
        if shape.issuer {
            auth.push_str(&format!("    issuer: {}\n", server.issuer()));
        }
        format!(
            "{slug}:\n  name: Local {slug}\n  category: crm\n  auth:\n{auth}  api:\n    \
             baseUrl: {url}\n    healthCheck: {{method: GET, path: /me, expect: 200}}\n"
        )
    }

    /// Registers the hub's callback for `slug` at `server` as a client with `auth`.
    pub fn register_client(
        app: &TestApp,
        server: &LocalAuthServer,
        slug: &str,
        auth: ClientAuthMethod,
    ) {
        server.register_client(RegisteredClient {
            client_id: client_id(slug),
            client_secret: CLIENT_SECRET.to_string(),
            redirect_uris: vec![format!("{}/api/integrations/callback/{slug}", app.url)],
            auth_method: auth,
            require_pkce: false,
        });
    }

    /// `PUT /api/providers/{slug}/oauth-app` with the test client (panics unless 200).
    pub async fn configure_app(app: &TestApp, tenant: &str, slug: &str) {
        let reply = app
            .send(
                app.request(
                    reqwest::Method::PUT,
                    tenant,
                    &format!("/api/providers/{slug}/oauth-app"),
                )
                .json(&json!({"clientId": client_id(slug), "clientSecret": CLIENT_SECRET})),
            )
            .await;
        assert_eq!(reply.status, 200, "oauth-app: {}", reply.text);
    }

    /// A client that never follows redirects.
    pub fn browser() -> reqwest::Client {
        hub_shared::http_client::install_default_crypto_provider();
        reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .expect("client")
    }

    /// `GET /api/integrations/connect/{slug}` as JSON: the authorize URL (panics unless 200).
    pub async fn start_connect(app: &TestApp, tenant: &str, slug: &str, query: &str) -> String {
        let reply = app
            .send(
                app.request(
                    reqwest::Method::GET,
                    tenant,
                    &format!("/api/integrations/connect/{slug}?{query}"),
                )
                .header("accept", "application/json"),
            )
            .await;
        assert_eq!(reply.status, 200, "connect: {}", reply.text);
        reply.json()["authorizeUrl"]
            .as_str()
            .expect("authorizeUrl")
            .to_string()
    }

    /// The provider's consent: the authorize URL's redirect back to the hub's callback.
    pub async fn consent(authorize_url: &str) -> String {
        let response = browser()
            .get(authorize_url)
            .send()
            .await
            .expect("authorize");
        assert_eq!(
            response.status().as_u16(),
            302,
            "authorize did not redirect"
        );
        response
            .headers()
            .get("location")
            .and_then(|v| v.to_str().ok())
            .expect("location")
            .to_string()
    }

    /// The browser arriving at the callback URL: its answer (a redirect or a problem).
    pub async fn follow_callback(app: &TestApp, callback_url: &str) -> Reply {
        app.send(browser().get(callback_url)).await
    }

    /// The whole flow for `returnUrl=http://localhost/done`: the callback's answer.
    pub async fn connect(app: &TestApp, tenant: &str, slug: &str, extra_query: &str) -> Reply {
        let authorize = start_connect(
            app,
            tenant,
            slug,
            &format!("returnUrl=http%3A%2F%2Flocalhost%2Fdone{extra_query}"),
        )
        .await;
        let callback = consent(&authorize).await;
        follow_callback(app, &callback).await
    }

    /// The query parameters of a `Location`.
    pub fn location_params(reply: &Reply) -> std::collections::HashMap<String, String> {
        let location = reply.header("location").expect("location");
        url::Url::parse(location)
            .expect("absolute location")
            .query_pairs()
            .into_owned()
            .collect()
    }
}

/// The independent verifier of outgoing signatures: the `standardwebhooks` package (PyPI) for the
/// `standard` scheme, Python's `hmac` for `hmac_sha256_hex`.
mod python_verifier {
    use std::io::Write;
    use std::process::{Command, Stdio};

    use serde_json::Value;

    /// Reads `[{scheme, secret, headers, body, signatureHeader?}]` on stdin and prints, for each case,
    /// `true` when it verifies and otherwise the reason.
    const VERIFIER: &str = r#"
import hashlib, hmac, json, sys
try:
    from standardwebhooks.webhooks import Webhook
except ImportError as error:
    print(f"cannot import standardwebhooks: {error}", file=sys.stderr)
    sys.exit(3)
results = []
for case in json.load(sys.stdin):
    body = case["body"].encode("utf-8")
    if case["scheme"] == "standard":
        try:
            Webhook(case["secret"]).verify(body, case["headers"], json_parse=False)
            results.append(True)
        except Exception as error:
            results.append(f"{type(error).__name__}: {error}")
    else:
        expected = hmac.new(case["secret"].encode("utf-8"), body, hashlib.sha256).hexdigest()
        sent = case["headers"][case["signatureHeader"]].split(" ")
        results.append(True if expected in sent else f"{expected} not in {sent}")
print(json.dumps(results))
"#;

    fn python() -> String {
        std::env::var("PYTHON").unwrap_or_else(|_| "python3".to_owned())
    }

    /// Runs the verifier over `cases`; panics with a clear message when Python or the package is
    /// missing.
    pub fn verify_in_python(cases: &[Value]) -> Vec<Value> {
        let python = python();
        let mut child = Command::new(&python)
            .args(["-c", VERIFIER])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|error| {
                panic!(
                    "cannot run `{python}` ({error}): this test needs Python 3 with the \
                 `standardwebhooks` package (`make deps` or `pip install -r requirements-dev.txt`)"
                )
            });
        child
            .stdin
            .take()
            .expect("piped stdin")
            .write_all(Value::from(cases.to_vec()).to_string().as_bytes())
            .expect("cases written to the verifier");
        let output = child.wait_with_output().expect("the verifier finishes");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(
            output.status.code() != Some(3),
            "{stderr}\nthe `standardwebhooks` package is missing for `{python}`: run `make deps` \
         (or `pip install -r requirements-dev.txt`)"
        );
        assert!(
            output.status.success(),
            "the Python verifier failed: {stderr}"
        );
        let results: Vec<Value> = serde_json::from_slice(&output.stdout)
            .unwrap_or_else(|e| panic!("verifier output is not JSON ({e}): {stderr}"));
        assert_eq!(results.len(), cases.len());
        results
    }
}

pub use python_verifier::verify_in_python;

/// The built-in catalog entry `slug` as shipped, pointed at `base_url` and authenticated with an
/// API key (field `token`) applied as `format` in `Authorization` — the local servers do not run
/// OAuth. Its `config`, `sync` and `actions` are exactly the ones the product ships.
pub fn shipped_entry(slug: &str, base_url: &str, format: &str) -> serde_json::Value {
    use serde_json::{json, Value};
    let catalog: Value =
        serde_saphyr::from_str(include_str!("../../shared/src/catalog/providers.yaml"))
            .expect("the built-in catalog");
    let mut entry = catalog[slug].clone();
    entry["name"] = json!(format!(
        "{} (local)",
        entry["name"].as_str().unwrap_or(slug)
    ));
    entry["auth"] = json!({"mode": "api_key", "fields": [{"name": "token", "secret": true}],
                           "apply": {"header": "Authorization", "format": format}});
    entry["api"]["baseUrl"] = json!(base_url);
    entry
}
