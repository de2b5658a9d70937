//! Configuration from the environment, validated once at start-up (docs/configuration.md).
//! A missing or malformed value stops the function with a message naming the variable.

use std::collections::BTreeMap;
use std::path::PathBuf;

use url::Url;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ConfigError {
    #[error("configuration: {variable} is not set")]
    Missing { variable: &'static str },
    #[error("configuration: {variable} is invalid: {reason}")]
    Invalid {
        variable: &'static str,
        reason: String,
    },
}

/// Every function reads the same configuration.
#[derive(Debug, Clone)]
pub struct Config {
    pub table_name: String,
    /// A key ARN, key id or `alias/...`.
    pub kms_key_id: String,
    pub sync_queue_url: Url,
    pub dispatch_queue_url: Url,
    /// The S3 bucket of inbound bodies too large for one DynamoDB item (claim check).
    pub payload_bucket: String,
    /// No trailing slash: route paths are appended to it.
    pub public_base_url: String,
    /// URL prefixes an OAuth `returnUrl` must start with; empty refuses every return URL.
    pub allowed_return_urls: Vec<String>,
    /// The JWT claim naming the tenant (default `tenant_id`).
    pub tenant_claim: String,
    pub providers_file: Option<PathBuf>,
    /// Lets tenants target loopback/private addresses and plain `http` (the local stack only).
    pub allow_private_targets: bool,
    /// The platform's own OAuth apps by provider slug (`PLATFORM_OAUTH_APPS`), used for tenants
    /// without an app of their own. The slugs are checked against the catalog at start-up.
    pub platform_oauth_apps: BTreeMap<String, PlatformOAuthApp>,
}

/// One platform default OAuth app: `{"clientId": "...", "clientSecret": "...", "scopes"?: [...]}`.
#[derive(Clone, serde::Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct PlatformOAuthApp {
    pub client_id: String,
    #[serde(deserialize_with = "zeroizing_string")]
    pub client_secret: zeroize::Zeroizing<String>,
    /// Replaces the catalog's scopes when given.
    #[serde(default)]
    pub scopes: Option<Vec<String>>,
}

/// Deserialises a secret string straight into zeroize-on-drop storage.
pub fn zeroizing_string<'de, D: serde::Deserializer<'de>>(
    deserializer: D,
) -> Result<zeroize::Zeroizing<String>, D::Error> {
    <String as serde::Deserialize>::deserialize(deserializer).map(zeroize::Zeroizing::new)
}

impl std::fmt::Debug for PlatformOAuthApp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PlatformOAuthApp")
            .field("client_id", &self.client_id)
            .field("client_secret", &"<redacted>")
            .field("scopes", &self.scopes)
            .finish()
    }
}

impl Config {
    pub fn from_env() -> Result<Config, ConfigError> {
        Config::from_lookup(|name| std::env::var(name).ok())
    }

    /// Reads through `lookup` so tests need not touch the process environment.
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Config, ConfigError> {
        let get = |variable: &'static str| -> Option<String> {
            lookup(variable).filter(|value| !value.trim().is_empty())
        };
        let required =
            |variable: &'static str| get(variable).ok_or(ConfigError::Missing { variable });

        if get("AWS_REGION").is_none() && get("AWS_DEFAULT_REGION").is_none() {
            return Err(ConfigError::Missing {
                variable: "AWS_REGION",
            });
        }

        let table_name = required("TABLE_NAME")?;
        let table_ok = (3..=255).contains(&table_name.len())
            && table_name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'));
        if !table_ok {
            return Err(invalid(
                "TABLE_NAME",
                "3-255 characters of A-Z a-z 0-9 _ - .",
            ));
        }

        let kms_key_id = required("KMS_KEY_ID")?;
        let key_ok = kms_key_id.starts_with("alias/")
            || kms_key_id.starts_with("arn:")
            || (kms_key_id.len() == 36
                && kms_key_id
                    .chars()
                    .all(|c| c.is_ascii_hexdigit() || c == '-'));
        if !key_ok {
            return Err(invalid(
                "KMS_KEY_ID",
                "expected a key ARN, a key id or alias/<name>",
            ));
        }

        let sync_queue_url = parse_http_url("SYNC_QUEUE_URL", &required("SYNC_QUEUE_URL")?)?;
        let dispatch_queue_url =
            parse_http_url("DISPATCH_QUEUE_URL", &required("DISPATCH_QUEUE_URL")?)?;

        let payload_bucket = required("PAYLOAD_BUCKET")?;
        if !is_bucket_name(&payload_bucket) {
            return Err(invalid(
                "PAYLOAD_BUCKET",
                "an S3 bucket name: 3-63 characters of a-z 0-9 . -, starting and ending with a letter or digit",
            ));
        }

        let public_base = parse_http_url("PUBLIC_BASE_URL", &required("PUBLIC_BASE_URL")?)?;
        if public_base.query().is_some() || public_base.fragment().is_some() {
            return Err(invalid(
                "PUBLIC_BASE_URL",
                "must not carry a query or fragment",
            ));
        }
        let public_base_url = public_base.as_str().trim_end_matches('/').to_string();

        let allowed_return_urls = match get("ALLOWED_RETURN_URLS") {
            None => Vec::new(),
            Some(list) => list
                .split(',')
                .map(str::trim)
                .filter(|entry| !entry.is_empty())
                .map(|entry| {
                    parse_http_url("ALLOWED_RETURN_URLS", entry).map(|_| entry.to_string())
                })
                .collect::<Result<_, _>>()?,
        };

        let tenant_claim = get("TENANT_CLAIM").unwrap_or_else(|| "tenant_id".to_string());
        if !tenant_claim
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | ':' | '.' | '/'))
        {
            return Err(invalid(
                "TENANT_CLAIM",
                "a claim name of A-Z a-z 0-9 _ - : . /",
            ));
        }

        let providers_file = get("PROVIDERS_FILE").map(PathBuf::from);
        if let Some(path) = &providers_file {
            if !path.is_file() {
                return Err(invalid(
                    "PROVIDERS_FILE",
                    &format!("{} is not a readable file", path.display()),
                ));
            }
        }

        let allow_private_targets = match get("ALLOW_PRIVATE_TARGETS").as_deref() {
            None => false,
            Some(value) => parse_bool(value)
                .ok_or_else(|| invalid("ALLOW_PRIVATE_TARGETS", "expected true or false"))?,
        };

        let platform_oauth_apps = match get("PLATFORM_OAUTH_APPS") {
            None => BTreeMap::new(),
            Some(json) => parse_platform_oauth_apps(&json)?,
        };

        Ok(Config {
            table_name,
            kms_key_id,
            sync_queue_url,
            dispatch_queue_url,
            payload_bucket,
            public_base_url,
            allowed_return_urls,
            tenant_claim,
            providers_file,
            allow_private_targets,
            platform_oauth_apps,
        })
    }
}

/// `PLATFORM_OAUTH_APPS`: a JSON object from provider slug to app. The message never repeats the
/// value (it holds client secrets).
fn parse_platform_oauth_apps(
    json: &str,
) -> Result<BTreeMap<String, PlatformOAuthApp>, ConfigError> {
    let apps: BTreeMap<String, PlatformOAuthApp> = serde_json::from_str(json).map_err(|e| {
        invalid(
            "PLATFORM_OAUTH_APPS",
            &format!(
                "expected a JSON object of provider slug to {{clientId, clientSecret, scopes?}} \
                     (line {}, column {}: {:?})",
                e.line(),
                e.column(),
                e.classify()
            ),
        )
    })?;
    for (slug, app) in &apps {
        if app.client_id.trim().is_empty() || app.client_secret.trim().is_empty() {
            return Err(invalid(
                "PLATFORM_OAUTH_APPS",
                &format!("{slug}: clientId and clientSecret must not be empty"),
            ));
        }
    }
    Ok(apps)
}

fn invalid(variable: &'static str, reason: &str) -> ConfigError {
    ConfigError::Invalid {
        variable,
        reason: reason.to_string(),
    }
}

/// S3's general purpose bucket naming rules, less the reserved prefixes and suffixes (a name that
/// breaks those is refused by S3 when the bucket is created, long before a function reads it).
fn is_bucket_name(name: &str) -> bool {
    let edge_ok = |c: Option<char>| c.is_some_and(|c| c.is_ascii_lowercase() || c.is_ascii_digit());
    (3..=63).contains(&name.len())
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '.' | '-'))
        && edge_ok(name.chars().next())
        && edge_ok(name.chars().last())
        && !name.contains("..")
        && name.parse::<std::net::Ipv4Addr>().is_err()
}

fn parse_http_url(variable: &'static str, value: &str) -> Result<Url, ConfigError> {
    let url =
        Url::parse(value.trim()).map_err(|e| invalid(variable, &format!("not a URL ({e})")))?;
    if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none() {
        return Err(invalid(variable, "expected an absolute http(s) URL"));
    }
    Ok(url)
}

/// `true`/`false` (also `1`/`0`, `yes`/`no`), any case: the one boolean syntax of the configuration.
pub fn parse_bool(value: &str) -> Option<bool> {
    match value.trim().to_ascii_lowercase().as_str() {
        "true" | "1" | "yes" => Some(true),
        "false" | "0" | "no" => Some(false),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn complete() -> HashMap<&'static str, String> {
        HashMap::from([
            ("AWS_REGION", "us-east-1".to_string()),
            ("TABLE_NAME", "integrations-hub".to_string()),
            ("KMS_KEY_ID", "alias/integrations-hub-secrets".to_string()),
            (
                "SYNC_QUEUE_URL",
                "http://127.0.0.1:4566/000000000000/sync".to_string(),
            ),
            (
                "DISPATCH_QUEUE_URL",
                "http://127.0.0.1:4566/000000000000/dispatch".to_string(),
            ),
            ("PAYLOAD_BUCKET", "integrations-hub-payloads".to_string()),
            ("PUBLIC_BASE_URL", "http://127.0.0.1:3000/".to_string()),
            (
                "ALLOWED_RETURN_URLS",
                "http://localhost:5173/, https://app.example.com/done".to_string(),
            ),
        ])
    }

    fn load(vars: &HashMap<&'static str, String>) -> Result<Config, ConfigError> {
        Config::from_lookup(|name| vars.get(name).cloned())
    }

    #[test]
    fn a_complete_environment_loads_with_defaults() {
        let config = load(&complete()).expect("valid");
        assert_eq!(config.public_base_url, "http://127.0.0.1:3000");
        assert_eq!(config.tenant_claim, "tenant_id");
        assert_eq!(config.allowed_return_urls.len(), 2);
        assert!(!config.allow_private_targets);
        assert!(config.providers_file.is_none());
        assert_eq!(config.payload_bucket, "integrations-hub-payloads");
    }

    #[test]
    fn payload_bucket_follows_the_s3_bucket_naming_rules() {
        for (name, valid) in [
            ("hub-payloads", true),
            ("a.b-c", true),
            ("ab", false),
            (&"a".repeat(64), false),
            ("-hub", false),
            ("hub-", false),
            ("hub..payloads", false),
            ("192.168.1.1", false),
            ("Hub", false),
        ] {
            assert_eq!(is_bucket_name(name), valid, "{name}");
        }
    }

    #[test]
    fn each_missing_required_variable_is_named() {
        for variable in [
            "TABLE_NAME",
            "KMS_KEY_ID",
            "SYNC_QUEUE_URL",
            "DISPATCH_QUEUE_URL",
            "PAYLOAD_BUCKET",
            "PUBLIC_BASE_URL",
        ] {
            let mut vars = complete();
            vars.remove(variable);
            assert_eq!(load(&vars).unwrap_err(), ConfigError::Missing { variable });
        }
    }

    #[test]
    fn malformed_values_name_the_variable() {
        for (variable, value) in [
            ("KMS_KEY_ID", "my-key"),
            ("SYNC_QUEUE_URL", "not a url"),
            ("PAYLOAD_BUCKET", "Payloads_Bucket"),
            ("PAYLOAD_BUCKET", "s3://integrations-hub-payloads"),
            ("PUBLIC_BASE_URL", "ftp://example.com"),
            ("ALLOW_PRIVATE_TARGETS", "maybe"),
            (
                "ALLOWED_RETURN_URLS",
                "https://ok.example.com,javascript:alert(1)",
            ),
            ("PROVIDERS_FILE", "/nonexistent/providers.yaml"),
        ] {
            let mut vars = complete();
            vars.insert(variable, value.to_string());
            let error = load(&vars).unwrap_err();
            assert!(
                matches!(error, ConfigError::Invalid { variable: v, .. } if v == variable),
                "{error}"
            );
            assert!(error.to_string().contains(variable));
        }
    }

    #[test]
    fn allow_private_targets_accepts_true_and_false() {
        let mut vars = complete();
        vars.insert("ALLOW_PRIVATE_TARGETS", "true".into());
        assert!(load(&vars).expect("valid").allow_private_targets);
        vars.insert("ALLOW_PRIVATE_TARGETS", "false".into());
        assert!(!load(&vars).expect("valid").allow_private_targets);
    }

    #[test]
    fn platform_oauth_apps_are_read_by_provider_slug() {
        let mut vars = complete();
        vars.insert(
            "PLATFORM_OAUTH_APPS",
            r#"{"hubspot": {"clientId": "hub-client", "clientSecret": "s3cret-value"}}"#
                .to_string(),
        );
        let config = load(&vars).unwrap();
        let app = &config.platform_oauth_apps["hubspot"];
        assert_eq!(app.client_id, "hub-client");
        assert_eq!(app.client_secret.as_str(), "s3cret-value");
        assert!(!format!("{config:?}").contains("s3cret-value"));
    }

    #[test]
    fn malformed_platform_oauth_apps_stop_start_up_without_echoing_the_value() {
        let mut vars = complete();
        vars.insert(
            "PLATFORM_OAUTH_APPS",
            r#"{"hubspot": {"clientId": "a", "clientSecret": "leaky-secret", "typo": 1}}"#
                .to_string(),
        );
        let error = load(&vars).unwrap_err();
        assert!(matches!(
            error,
            ConfigError::Invalid {
                variable: "PLATFORM_OAUTH_APPS",
                ..
            }
        ));
        assert!(!error.to_string().contains("leaky-secret"));
    }
}
