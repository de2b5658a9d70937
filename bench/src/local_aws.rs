//! What the moto-backed benchmarks (B1, B3, B4) share: the AWS they talk to, and the environment a
//! function process gets against the local stack.

use std::path::Path;

use hub_local::moto::{Moto, MotoError};
use hub_shared::config::Config;

use hub_local::stack::LOCAL_REGION;

/// `given` (`BENCH_AWS_ENDPOINT`) when set, else a moto of its own under `dir`, started after
/// `starting` is called. The returned handle keeps that moto running.
pub async fn moto_or_given(
    given: &Option<String>,
    dir: &Path,
    starting: impl FnOnce(),
) -> Result<(Option<Moto>, String), MotoError> {
    if let Some(endpoint) = given {
        return Ok((None, endpoint.clone()));
    }
    starting();
    let moto = Moto::start_on_free_port(dir).await?;
    let endpoint = moto.endpoint().to_string();
    Ok((Some(moto), endpoint))
}

/// A function's AWS and configuration variables against the local stack: test credentials, AWS
/// at `endpoint`, the stack's table, key, queues, bucket and URLs, private targets allowed.
pub fn function_environment(config: &Config, endpoint: &str) -> Vec<(&'static str, String)> {
    vec![
        ("AWS_REGION", LOCAL_REGION.into()),
        ("AWS_DEFAULT_REGION", LOCAL_REGION.into()),
        ("AWS_ACCESS_KEY_ID", "test".into()),
        ("AWS_SECRET_ACCESS_KEY", "test".into()),
        ("AWS_ENDPOINT_URL", endpoint.into()),
        ("AWS_EC2_METADATA_DISABLED", "true".into()),
        ("TABLE_NAME", config.table_name.clone()),
        ("KMS_KEY_ID", config.kms_key_id.clone()),
        ("SYNC_QUEUE_URL", config.sync_queue_url.to_string()),
        ("DISPATCH_QUEUE_URL", config.dispatch_queue_url.to_string()),
        ("PAYLOAD_BUCKET", config.payload_bucket.clone()),
        ("PUBLIC_BASE_URL", config.public_base_url.clone()),
        ("ALLOWED_RETURN_URLS", config.allowed_return_urls.join(",")),
        ("TENANT_CLAIM", config.tenant_claim.clone()),
        ("ALLOW_PRIVATE_TARGETS", "true".into()),
    ]
}
