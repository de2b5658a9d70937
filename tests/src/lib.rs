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
                sender.send(moto.endpoint().to_string()).expect("endpoint handed over");
                std::future::pending::<()>().await;
                drop(moto);
            });
        });
        receiver.recv().expect("moto endpoint")
    })
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
