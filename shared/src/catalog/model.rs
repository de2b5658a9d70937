//! The catalog file format: one serde type per part of an entry, with exactly the file's field
//! names. Unknown field names are errors everywhere.

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

use serde::de::{self, Deserializer, Visitor};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

pub use crate::sync_settings::FieldMapping;

/// What kind of service a provider is (`GET /api/providers?category=`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Category {
    Calendar,
    Storage,
    Accounting,
    Communication,
    Payments,
    Design,
    Crm,
    Health,
    Ai,
    Custom,
}

impl Category {
    pub const ALL: [Category; 10] = [
        Category::Calendar,
        Category::Storage,
        Category::Accounting,
        Category::Communication,
        Category::Payments,
        Category::Design,
        Category::Crm,
        Category::Health,
        Category::Ai,
        Category::Custom,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Category::Calendar => "calendar",
            Category::Storage => "storage",
            Category::Accounting => "accounting",
            Category::Communication => "communication",
            Category::Payments => "payments",
            Category::Design => "design",
            Category::Crm => "crm",
            Category::Health => "health",
            Category::Ai => "ai",
            Category::Custom => "custom",
        }
    }
}

impl FromStr for Category {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Category::ALL
            .into_iter()
            .find(|c| c.as_str() == s)
            .ok_or_else(|| format!("unknown category `{s}`"))
    }
}

/// How a tenant authenticates to the provider; also the integration resource's `authMode`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Deserialize, Serialize)]
pub enum AuthMode {
    #[serde(rename = "oauth2")]
    OAuth2,
    #[serde(rename = "api_key")]
    ApiKey,
    #[serde(rename = "basic")]
    Basic,
    #[serde(rename = "none")]
    None,
}

impl AuthMode {
    pub fn as_str(self) -> &'static str {
        match self {
            AuthMode::OAuth2 => "oauth2",
            AuthMode::ApiKey => "api_key",
            AuthMode::Basic => "basic",
            AuthMode::None => "none",
        }
    }
}

/// How the client credentials reach the OAuth token endpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TokenAuth {
    /// `client_id` and `client_secret` in the form body (`client_secret_post`).
    #[default]
    Body,
    /// HTTP basic authentication (`client_secret_basic`).
    Basic,
}

/// One credential a tenant supplies for an api_key/basic provider.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct CredentialField {
    pub name: String,
    /// Secret fields are stored encrypted and never shown again; non-secret ones (an account id)
    /// may be shown and used in URLs.
    pub secret: bool,
}

/// `auth` as written; turned into [`super::Auth`] by validation, which enforces the per-mode rules.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub(crate) struct RawAuth {
    pub(crate) mode: AuthMode,
    pub(crate) authorize_url: Option<String>,
    pub(crate) token_url: Option<String>,
    pub(crate) revoke_url: Option<String>,
    pub(crate) refresh_url: Option<String>,
    pub(crate) issuer: Option<String>,
    pub(crate) scopes: Option<Vec<String>>,
    pub(crate) scope_separator: Option<String>,
    pub(crate) pkce: Option<bool>,
    pub(crate) token_auth: Option<TokenAuth>,
    pub(crate) authorize_params: Option<BTreeMap<String, ScalarString>>,
    pub(crate) fields: Option<Vec<CredentialField>>,
    pub(crate) apply: Option<RawApply>,
}

/// `apply` as written: exactly one of `header`+`format`, `query`+`format`, `basic`, `url`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub(crate) struct RawApply {
    pub(crate) header: Option<String>,
    pub(crate) query: Option<String>,
    pub(crate) format: Option<String>,
    pub(crate) basic: Option<BasicApply>,
    pub(crate) url: Option<bool>,
}

/// HTTP basic credentials built from templates (`{accountSid}` / `{authToken}`).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct BasicApply {
    pub username: String,
    pub password: String,
}

/// `api`: where and how fast the provider's API is called.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Api {
    /// May hold `{config.*}` placeholders; an integration's `config.baseUrl` overrides it.
    pub base_url: String,
    /// Extra headers sent with every request (e.g. `Accept: application/json`, Xero's
    /// `xero-tenant-id: "{config.tenantId}"`); values are templates.
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    /// Query parameters sent with every request (e.g. Cardcom's
    /// `terminalnumber: "{config.terminalNumber}"`); values are templates.
    #[serde(default, deserialize_with = "scalar_map")]
    pub params: BTreeMap<String, String>,
    /// Absent = unlimited.
    pub rate_limit: Option<RateLimit>,
    /// Absent → test connection answers 400 `not_supported`.
    pub health_check: Option<HealthCheck>,
}

/// A token bucket: capacity `requests`, refilled at `requests / perSeconds`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct RateLimit {
    pub requests: u32,
    pub per_seconds: u32,
}

/// A cheap authenticated request whose answer proves the credentials work.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct HealthCheck {
    #[serde(deserialize_with = "method")]
    pub method: http::Method,
    pub path: String,
    pub expect: HealthExpect,
}

/// What a passing health check answers: a status, and for providers that answer 200 for bad
/// credentials (Slack's `auth.test`) a value in the JSON body. Written as `200` or
/// `{status: 200, path: ok, equals: true}`.
#[derive(Debug, Clone, PartialEq)]
pub struct HealthExpect {
    pub status: u16,
    pub body: Option<BodyCondition>,
}

/// The JSON value at the dot path `path` (array indexes as numbers: `entries.0.status`) must equal
/// `equals`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BodyCondition {
    pub path: String,
    pub equals: Value,
}

impl<'de> Deserialize<'de> for HealthExpect {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(deny_unknown_fields)]
        struct Condition {
            status: u16,
            path: String,
            equals: Value,
        }
        let value = Value::deserialize(deserializer)?;
        let form = "expected a status (200) or {status, path, equals}";
        match value {
            Value::Number(n) => n
                .as_u64()
                .and_then(|n| u16::try_from(n).ok())
                .map(|status| HealthExpect { status, body: None })
                .ok_or_else(|| de::Error::custom(format!("{n} is not an HTTP status; {form}"))),
            Value::Object(_) => {
                let Condition {
                    status,
                    path,
                    equals,
                } = serde_json::from_value(value)
                    .map_err(|e| de::Error::custom(format!("{e}; {form}")))?;
                Ok(HealthExpect {
                    status,
                    body: Some(BodyCondition { path, equals }),
                })
            }
            _ => Err(de::Error::custom(form)),
        }
    }
}

/// One non-secret setting an integration of the provider takes in `config`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ConfigSetting {
    pub name: String,
    /// A create or patch without it is a 400 naming `config.<name>`.
    #[serde(default)]
    pub required: bool,
    pub description: Option<String>,
    /// What a `{config.<name>}` placeholder renders when the integration has no value.
    pub default: Option<String>,
    /// A value must match it as a whole (the subset of regular expressions in `pattern.rs`).
    pub pattern: Option<String>,
}

/// `webhook`: the default inbound verification scheme for the provider's webhooks.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct WebhookDefaults {
    pub scheme: WebhookScheme,
    /// The provider's signature header, for `hmac_sha256` (e.g. Dropbox's `X-Dropbox-Signature`).
    pub signature_header: Option<String>,
}

/// The inbound webhook verification schemes a catalog entry may name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum WebhookScheme {
    Standard,
    HmacSha256,
    Stripe,
    Github,
    Slack,
    Meta,
    Twilio,
    Shopify,
    HubspotV3,
    Sendgrid,
    GoogleChannel,
    None,
}

impl WebhookScheme {
    pub fn as_str(self) -> &'static str {
        match self {
            WebhookScheme::Standard => "standard",
            WebhookScheme::HmacSha256 => "hmac_sha256",
            WebhookScheme::Stripe => "stripe",
            WebhookScheme::Github => "github",
            WebhookScheme::Slack => "slack",
            WebhookScheme::Meta => "meta",
            WebhookScheme::Twilio => "twilio",
            WebhookScheme::Shopify => "shopify",
            WebhookScheme::HubspotV3 => "hubspot_v3",
            WebhookScheme::Sendgrid => "sendgrid",
            WebhookScheme::GoogleChannel => "google_channel",
            WebhookScheme::None => "none",
        }
    }
}

/// `sync`: the remote entities the one sync engine can read (and write).
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct SyncDef {
    pub entities: BTreeMap<String, EntityDef>,
}

/// How to list (and optionally write) one remote entity.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct EntityDef {
    pub request: EntityRequest,
    /// Dot path to the array of records in the response body; `""` = the body is the array.
    pub records: String,
    /// True when a response may leave the records array out to mean "no records" (QuickBooks
    /// answers `{"QueryResponse": {}}` to a query with no results). Otherwise a response without
    /// it is an error, so a wrong path can never read as an empty data set.
    #[serde(default)]
    pub records_optional: bool,
    /// Dot path to the remote id inside a record.
    pub id: String,
    /// Dot path to the record's modification time.
    pub updated_at: Option<String>,
    /// A record whose value at `path` equals `equals` is a deletion marker.
    pub deleted: Option<DeletedMarker>,
    /// Absent = one page.
    pub pagination: Option<Pagination>,
    /// Absent or `{type: none}` = full sync with deletion detection.
    pub incremental: Option<Incremental>,
    /// Mappings a new integration starts with for this entity.
    pub default_mappings: Option<DefaultMappings>,
    /// How a local record is exported to this entity.
    pub write: Option<WriteDef>,
}

impl EntityDef {
    /// True when the entity is read incrementally (a sync token or an updated-since parameter).
    pub fn is_incremental(&self) -> bool {
        !matches!(self.incremental, None | Some(Incremental::None {}))
    }
}

/// The list request; `path` and `params` values are templates, and so is every string in `body`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct EntityRequest {
    #[serde(deserialize_with = "method")]
    pub method: http::Method,
    pub path: String,
    #[serde(default, deserialize_with = "scalar_map")]
    pub params: BTreeMap<String, String>,
    /// A JSON body (search APIs take the cursor and filters in the body), sent as
    /// `application/json`. Every string in it is a template; one that is exactly one `{page.*}`
    /// placeholder becomes that value with its JSON type (a number, or the cursor; `null` on the
    /// first page).
    pub body: Option<Value>,
    /// A GraphQL request (monday): sent as the JSON body `{"query", "variables"}`.
    pub graphql: Option<GraphQlRequest>,
}

/// A GraphQL query with its variables. The query is literal text (its braces are GraphQL's);
/// the variables are a template as `body` is, so the cursor and settings travel as variables.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct GraphQlRequest {
    pub query: String,
    #[serde(default)]
    pub variables: Map<String, Value>,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct DeletedMarker {
    pub path: String,
    pub equals: Value,
}

/// How the next page is requested (declarative sync definitions).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(
    tag = "type",
    rename_all = "snake_case",
    rename_all_fields = "camelCase",
    deny_unknown_fields
)]
pub enum Pagination {
    /// The value at `next` in the body is sent as `param` on the next request. Without `param`
    /// the request carries it as `{page.cursor}` (in a parameter or the body).
    Cursor { param: Option<String>, next: String },
    /// `param` = records seen so far, `limitParam` = `pageSize`. Without `limitParam` no size is
    /// sent (the provider's fixed page size applies); `pageSize` still detects the last page.
    /// Without `param` the request carries the position as `{page.offset}` or `{page.start}`.
    Offset {
        param: Option<String>,
        limit_param: Option<String>,
        page_size: u32,
    },
    /// `param` = page number from 1, `sizeParam` = `pageSize` (optional as `limitParam` is).
    /// Without `param` the request carries the number as `{page.number}`.
    Page {
        param: Option<String>,
        size_param: Option<String>,
        page_size: u32,
    },
    /// RFC 8288 `Link: <...>; rel="next"`.
    LinkHeader {},
    /// Stripe: `param` = id of the last record while the body's `hasMore` path is true.
    StartingAfter { param: String, has_more: String },
}

/// How only changes are fetched.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(
    tag = "type",
    rename_all = "snake_case",
    rename_all_fields = "camelCase",
    deny_unknown_fields
)]
pub enum Incremental {
    /// The body's `next` value is saved and sent as `param`; `expiredStatus` (Google: 410) means
    /// the token expired and a full sync follows.
    SyncToken {
        param: String,
        next: String,
        expired_status: Option<u16>,
    },
    /// `param` = start of the last successful run minus 60 s, in `format`.
    UpdatedSince {
        param: String,
        #[serde(default)]
        format: TimeFormat,
    },
    /// Full sync with deletion detection.
    None {},
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TimeFormat {
    #[default]
    Rfc3339,
    EpochS,
    EpochMs,
}

/// Default mappings of one remote entity to a local entity. Written without `localEntity` on each
/// field (it is the block's); read into the one [`FieldMapping`] type the sync settings use.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(try_from = "RawDefaultMappings")]
pub struct DefaultMappings {
    pub local_entity: String,
    pub fields: Vec<FieldMapping>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct RawDefaultMappings {
    local_entity: String,
    fields: Vec<serde_json::Map<String, Value>>,
}

impl TryFrom<RawDefaultMappings> for DefaultMappings {
    type Error = String;

    fn try_from(raw: RawDefaultMappings) -> Result<Self, Self::Error> {
        let fields = raw
            .fields
            .into_iter()
            .enumerate()
            .map(|(i, mut field)| {
                if field.contains_key("localEntity") {
                    return Err(format!(
                        "fields[{i}]: localEntity is the block's, not a field's"
                    ));
                }
                field.insert(
                    "localEntity".into(),
                    Value::String(raw.local_entity.clone()),
                );
                serde_json::from_value::<FieldMapping>(Value::Object(field))
                    .map_err(|e| format!("fields[{i}]: {e}"))
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(DefaultMappings {
            local_entity: raw.local_entity,
            fields,
        })
    }
}

/// The field-mapping transforms.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Transform {
    None,
    DateFormat,
    CurrencyConvert,
    Custom,
}

/// Export of local records: the requests that create, update and delete a remote record.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct WriteDef {
    pub create: Option<WriteRequest>,
    /// Its path holds `{remoteId}`.
    pub update: Option<WriteRequest>,
    /// Its path holds `{remoteId}`.
    pub delete: Option<WriteRequest>,
    /// Dot path to the new remote id in the create response; absent = the entity's `id` path.
    pub id: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct WriteRequest {
    #[serde(deserialize_with = "method")]
    pub method: http::Method,
    pub path: String,
    #[serde(default)]
    pub body: BodyEncoding,
}

/// How an exported record is encoded (Stripe and Twilio take forms).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BodyEncoding {
    #[default]
    Json,
    Form,
}

/// A named operation through a connection (`actions`): the caller's input, checked against a
/// JSON Schema, becomes one provider request; `output` picks the answer's fields.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ActionDef {
    pub description: String,
    /// JSON Schema (draft 2020-12) of the input object. A property with `secret: true` is never
    /// written to a log.
    pub input: Value,
    pub request: ActionRequest,
    /// Local field → dot path in the provider's JSON answer (`""` = the whole body, `$status` =
    /// the HTTP status).
    #[serde(default)]
    pub output: BTreeMap<String, String>,
    /// For providers that answer 200 to a failed call and say so in the body (Slack's `ok`,
    /// Kavenegar's `return.status`): the condition a 2xx answer must meet to be a success.
    pub ok_when: Option<BodyCondition>,
}

/// An action's request: `path` is a template; `json` (a JSON template), `form` (name → template,
/// `application/x-www-form-urlencoded`) and `query` (name → template, added to the URL) carry the
/// input. At most one of `json` and `form`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ActionRequest {
    #[serde(deserialize_with = "method")]
    pub method: http::Method,
    pub path: String,
    pub json: Option<Value>,
    pub form: Option<Map<String, Value>>,
    pub query: Option<Map<String, Value>>,
}

/// A provider entry as written, before the per-mode rules are checked.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub(crate) struct RawProvider {
    pub(crate) name: String,
    pub(crate) category: Category,
    pub(crate) auth: RawAuth,
    #[serde(default)]
    pub(crate) config: Vec<ConfigSetting>,
    pub(crate) api: Option<Api>,
    pub(crate) webhook: Option<WebhookDefaults>,
    pub(crate) sync: Option<SyncDef>,
    #[serde(default)]
    pub(crate) actions: BTreeMap<String, ActionDef>,
}

/// A YAML scalar (string, number or boolean) taken as text, so `singleEvents: true` and
/// `singleEvents: "true"` mean the same query parameter.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ScalarString(pub(crate) String);

impl<'de> Deserialize<'de> for ScalarString {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct ScalarVisitor;
        impl Visitor<'_> for ScalarVisitor {
            type Value = ScalarString;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a string, number or boolean")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<ScalarString, E> {
                Ok(ScalarString(v.to_owned()))
            }
            fn visit_bool<E: de::Error>(self, v: bool) -> Result<ScalarString, E> {
                Ok(ScalarString(v.to_string()))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<ScalarString, E> {
                Ok(ScalarString(v.to_string()))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<ScalarString, E> {
                Ok(ScalarString(v.to_string()))
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<ScalarString, E> {
                Ok(ScalarString(v.to_string()))
            }
        }
        deserializer.deserialize_any(ScalarVisitor)
    }
}

fn scalar_map<'de, D: Deserializer<'de>>(
    deserializer: D,
) -> Result<BTreeMap<String, String>, D::Error> {
    let raw = BTreeMap::<String, ScalarString>::deserialize(deserializer)?;
    Ok(raw.into_iter().map(|(k, v)| (k, v.0)).collect())
}

/// An HTTP method in upper case (`GET`, `POST`, `PROPFIND`).
fn method<'de, D: Deserializer<'de>>(deserializer: D) -> Result<http::Method, D::Error> {
    let text = String::deserialize(deserializer)?;
    if text.is_empty() || text != text.to_ascii_uppercase() {
        return Err(de::Error::custom(format!(
            "`{text}` is not an upper-case HTTP method"
        )));
    }
    http::Method::from_bytes(text.as_bytes())
        .map_err(|_| de::Error::custom(format!("`{text}` is not an HTTP method")))
}
