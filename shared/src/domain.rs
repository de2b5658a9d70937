//! Parsed domain values: once one exists it is valid, so handlers never re-check it.
//! Text is kept byte-exact (no trimming or normalisation): Hebrew, Arabic, Persian and emoji names
//! round-trip unchanged.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct InvalidValue(pub String);

fn invalid(message: impl Into<String>) -> InvalidValue {
    InvalidValue(message.into())
}

/// The tenant from the verified JWT. `#` and `/` are refused: the first separates DynamoDB key parts,
/// the second the parts of an envelope's associated data.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct TenantId(String);

impl TenantId {
    pub fn parse(value: &str) -> Result<TenantId, InvalidValue> {
        let ok = (1..=128).contains(&value.len())
            && value.chars().all(|c| {
                c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | ':' | '@' | '|')
            });
        if ok {
            Ok(TenantId(value.to_string()))
        } else {
            Err(invalid(
                "a tenant id is 1-128 characters of A-Z a-z 0-9 - _ . : @ |",
            ))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for TenantId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// One id type per prefix of the API (`int_`, `whin_`, `whout_`, `evt_`, `dlv_`, `log_`, `job_`; see
/// [`crate::ids`]): only ids of the right shape reach the store, and one kind cannot be passed where
/// another is meant.
macro_rules! prefixed_id {
    ($(#[$doc:meta])* $name:ident, $kind:ident, $what:literal) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[serde(try_from = "String", into = "String")]
        pub struct $name(String);

        impl $name {
            /// A fresh, unguessable id.
            pub fn generate() -> $name {
                $name(crate::ids::new_id(crate::ids::IdKind::$kind))
            }

            pub fn parse(value: &str) -> Result<$name, InvalidValue> {
                if crate::ids::is_id_of(crate::ids::IdKind::$kind, value) {
                    Ok($name(value.to_string()))
                } else {
                    Err(invalid(concat!("not ", $what)))
                }
            }

            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl TryFrom<String> for $name {
            type Error = InvalidValue;

            fn try_from(value: String) -> Result<Self, Self::Error> {
                $name::parse(&value)
            }
        }

        impl From<$name> for String {
            fn from(id: $name) -> String {
                id.0
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(&self.0)
            }
        }
    };
}

prefixed_id!(
    /// An integration (`int_…`).
    IntegrationId, Integration, "an integration id"
);
prefixed_id!(
    /// An incoming webhook (`whin_…`).
    IncomingWebhookId, IncomingWebhook, "an incoming webhook id"
);
prefixed_id!(
    /// An outgoing webhook (`whout_…`).
    OutgoingWebhookId, OutgoingWebhook, "an outgoing webhook id"
);
prefixed_id!(
    /// An event (`evt_…`).
    EventId, Event, "an event id"
);
prefixed_id!(
    /// One delivery of an event to one outgoing webhook (`dlv_…`).
    DeliveryId, Delivery, "a delivery id"
);
prefixed_id!(
    /// A log entry (`log_…`).
    LogId, Log, "a log id"
);
prefixed_id!(
    /// A sync job (`job_…`).
    JobId, Job, "a job id"
);

/// A catalog slug: `^[a-z][a-z0-9_]{1,63}$`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize, PartialOrd, Ord)]
#[serde(try_from = "String", into = "String")]
pub struct ProviderSlug(String);

impl ProviderSlug {
    pub fn parse(value: &str) -> Result<ProviderSlug, InvalidValue> {
        let mut chars = value.chars();
        let ok = (2..=64).contains(&value.len())
            && chars.next().is_some_and(|c| c.is_ascii_lowercase())
            && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
        if ok {
            Ok(ProviderSlug(value.to_string()))
        } else {
            Err(invalid(
                "a provider slug is 2-64 characters of a-z 0-9 _ starting with a letter",
            ))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for ProviderSlug {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// Distinguishes several connections of one tenant to one provider (default `default`).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct ConnectionKey(String);

impl ConnectionKey {
    pub fn parse(value: &str) -> Result<ConnectionKey, InvalidValue> {
        let ok = (1..=64).contains(&value.len())
            && value
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
        if ok {
            Ok(ConnectionKey(value.to_string()))
        } else {
            Err(invalid(
                "a connection key is 1-64 characters of A-Z a-z 0-9 - _ .",
            ))
        }
    }

    pub fn default_key() -> ConnectionKey {
        ConnectionKey("default".to_string())
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A human name: 1-200 characters, not blank, no control characters; stored exactly as given.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct DisplayName(String);

impl DisplayName {
    pub const MAX_CHARS: usize = 200;

    pub fn parse(value: &str) -> Result<DisplayName, InvalidValue> {
        check_text(value, Self::MAX_CHARS)?;
        if value.trim().is_empty() {
            return Err(invalid("must not be empty or blank"));
        }
        Ok(DisplayName(value.to_string()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Free text up to 2,000 characters; line breaks and tabs allowed, other control characters not.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Description(String);

impl Description {
    pub const MAX_CHARS: usize = 2000;

    pub fn parse(value: &str) -> Result<Description, InvalidValue> {
        check_text(value, Self::MAX_CHARS)?;
        Ok(Description(value.to_string()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

fn check_text(value: &str, max_chars: usize) -> Result<(), InvalidValue> {
    if value.chars().count() > max_chars {
        return Err(invalid(format!("must be at most {max_chars} characters")));
    }
    if value
        .chars()
        .any(|c| c.is_control() && !matches!(c, '\n' | '\r' | '\t'))
    {
        return Err(invalid("must not contain control characters"));
    }
    Ok(())
}

/// A record's id at the provider (or the id an incoming webhook's `idPath` found): any text of 1-512
/// bytes of UTF-8, kept byte-exact (`#`, `/`, spaces and emoji included). The bound keeps a record's
/// sort key, and a list cursor that carries it, within DynamoDB's and the cursor's limits.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct RemoteId(String);

impl RemoteId {
    pub const MAX_BYTES: usize = 512;

    pub fn parse(value: &str) -> Result<RemoteId, InvalidValue> {
        if value.is_empty() || value.len() > Self::MAX_BYTES {
            return Err(invalid(format!(
                "a remote id is 1 to {} bytes of UTF-8",
                Self::MAX_BYTES
            )));
        }
        Ok(RemoteId(value.to_string()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for RemoteId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum IntegrationStatus {
    Connected,
    Disconnected,
    Error,
    Expired,
}

impl IntegrationStatus {
    pub const fn as_str(self) -> &'static str {
        match self {
            IntegrationStatus::Connected => "connected",
            IntegrationStatus::Disconnected => "disconnected",
            IntegrationStatus::Error => "error",
            IntegrationStatus::Expired => "expired",
        }
    }

    pub fn parse(value: &str) -> Result<IntegrationStatus, InvalidValue> {
        match value {
            "connected" => Ok(IntegrationStatus::Connected),
            "disconnected" => Ok(IntegrationStatus::Disconnected),
            "error" => Ok(IntegrationStatus::Error),
            "expired" => Ok(IntegrationStatus::Expired),
            _ => Err(invalid(
                "expected one of connected, disconnected, error, expired",
            )),
        }
    }
}

/// The stored and wire form of the text newtypes: parsed on the way in, so a stored item that does
/// not parse is reported as corrupt instead of flowing on.
macro_rules! string_newtype_serde {
    ($($name:ident),*) => {$(
        impl TryFrom<String> for $name {
            type Error = InvalidValue;

            fn try_from(value: String) -> Result<Self, Self::Error> {
                $name::parse(&value)
            }
        }

        impl From<$name> for String {
            fn from(value: $name) -> String {
                value.0
            }
        }
    )*};
}

string_newtype_serde!(
    TenantId,
    ProviderSlug,
    ConnectionKey,
    DisplayName,
    Description,
    RemoteId
);

impl std::fmt::Display for ConnectionKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// `If-Match` as the API accepts it: `"3"` (the ETag), a weak `W/"3"`, or a bare `3`; a version is
/// 1-19 digits. Anything else (`W/3`, `"3`, 20 digits) is not a version (the caller answers 412).
pub fn parse_if_match(value: &str) -> Option<u64> {
    let value = value.trim();
    let digits = match value.strip_prefix("W/").unwrap_or(value).strip_prefix('"') {
        Some(quoted) => quoted.strip_suffix('"')?,
        None if value.starts_with("W/") => return None,
        None => value,
    };
    if digits.is_empty() || digits.len() > 19 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tenant_ids_refuse_key_and_aad_separators() {
        assert!(TenantId::parse("acme-42").is_ok());
        assert!(TenantId::parse("a#b").is_err());
        assert!(TenantId::parse("a/b").is_err());
        assert!(TenantId::parse("").is_err());
        assert!(TenantId::parse(&"x".repeat(129)).is_err());
    }

    #[test]
    fn names_keep_unicode_byte_exact() {
        for name in [
            "יומן המרפאה",
            "تقويم العيادة",
            "تقویم کلینیک",
            "📅 Calendar 🚀",
            "  spaced  ",
        ] {
            assert_eq!(
                DisplayName::parse(name).expect("valid").as_str().as_bytes(),
                name.as_bytes()
            );
        }
        assert!(DisplayName::parse("   ").is_err());
        assert!(DisplayName::parse("bell\u{7}").is_err());
        assert!(DisplayName::parse(&"ש".repeat(200)).is_ok());
        assert!(DisplayName::parse(&"ש".repeat(201)).is_err());
    }

    #[test]
    fn if_match_accepts_bare_quoted_and_weak_versions() {
        assert_eq!(parse_if_match("3"), Some(3));
        assert_eq!(parse_if_match("\"3\""), Some(3));
        assert_eq!(parse_if_match("W/\"12\""), Some(12));
        assert_eq!(parse_if_match("abc"), None);
        for malformed in ["W/3", "\"3", "3\"", "+3", "", "\"\"", &"9".repeat(20)] {
            assert_eq!(parse_if_match(malformed), None, "{malformed}");
        }
    }

    #[test]
    fn remote_ids_are_any_text_of_1_to_512_bytes() {
        for id in ["evt 1", "a#b/c", "אירוע-۱۲۳", "📅", &"x".repeat(512)] {
            assert_eq!(RemoteId::parse(id).expect("valid").as_str(), id);
        }
        assert!(RemoteId::parse("").is_err());
        assert!(RemoteId::parse(&"x".repeat(513)).is_err());
        // 128 four-byte emoji are 512 bytes; one more is too long, whatever the character count.
        assert!(RemoteId::parse(&"🚀".repeat(128)).is_ok());
        assert!(RemoteId::parse(&"🚀".repeat(129)).is_err());
    }

    #[test]
    fn slugs_and_connection_keys_are_restricted() {
        assert!(ProviderSlug::parse("google_calendar").is_ok());
        assert!(ProviderSlug::parse("Google").is_err());
        assert!(ConnectionKey::parse("clinic-2.main").is_ok());
        assert!(ConnectionKey::parse("a b").is_err());
    }
}
