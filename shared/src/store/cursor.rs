//! List cursors: opaque, tamper-evident, and bound to the tenant and the list they came from.
//!
//! A cursor is `base64url(sort key) . base64url(HMAC-SHA256(key, tenant ‖ list scope ‖ sort key))`,
//! truncated to 128 bits. The tenant and the list's scope (route and filters) are in the MAC but not
//! in the cursor, so a cursor replayed by another tenant, on another list, or edited, fails the check
//! (400 `invalid_cursor`) and never positions a query anywhere.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use hmac::{Hmac, Mac};
use sha2::Sha256;

use crate::domain::TenantId;

const TAG_BYTES: usize = 16;
const MAX_CURSOR_LEN: usize = 1024;

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the cursor was not issued for this list")]
pub struct InvalidCursor;

pub struct CursorCodec<'k> {
    key: &'k [u8],
}

impl<'k> CursorCodec<'k> {
    pub fn new(key: &'k [u8]) -> CursorCodec<'k> {
        CursorCodec { key }
    }

    fn mac(&self, tenant: &TenantId, scope: &str, position: &str) -> Hmac<Sha256> {
        // Length-prefixed parts: no two (tenant, scope, position) triples share an input.
        let mut mac =
            <Hmac<Sha256> as Mac>::new_from_slice(self.key).expect("HMAC takes any key length");
        for part in [tenant.as_str(), scope, position] {
            mac.update(&(part.len() as u64).to_be_bytes());
            mac.update(part.as_bytes());
        }
        mac
    }

    pub fn encode(&self, tenant: &TenantId, scope: &str, position: &str) -> String {
        let tag = self.mac(tenant, scope, position).finalize().into_bytes();
        format!(
            "{}.{}",
            URL_SAFE_NO_PAD.encode(position),
            URL_SAFE_NO_PAD.encode(&tag[..TAG_BYTES])
        )
    }

    /// The position (the sort key to continue after), if the cursor is genuine for this list.
    pub fn decode(
        &self,
        tenant: &TenantId,
        scope: &str,
        cursor: &str,
    ) -> Result<String, InvalidCursor> {
        if cursor.len() > MAX_CURSOR_LEN {
            return Err(InvalidCursor);
        }
        let (position, tag) = cursor.split_once('.').ok_or(InvalidCursor)?;
        let position = URL_SAFE_NO_PAD
            .decode(position)
            .map_err(|_| InvalidCursor)?;
        let position = String::from_utf8(position).map_err(|_| InvalidCursor)?;
        let tag = URL_SAFE_NO_PAD.decode(tag).map_err(|_| InvalidCursor)?;
        if tag.len() != TAG_BYTES {
            return Err(InvalidCursor);
        }
        self.mac(tenant, scope, &position)
            .verify_truncated_left(&tag)
            .map_err(|_| InvalidCursor)?;
        Ok(position)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tenant(id: &str) -> TenantId {
        TenantId::parse(id).expect("valid")
    }

    #[test]
    fn a_cursor_round_trips_for_its_tenant_and_list() {
        let codec = CursorCodec::new(b"0123456789abcdef0123456789abcdef");
        let cursor = codec.encode(&tenant("a"), "integrations", "INT#int_1");
        assert_eq!(
            codec.decode(&tenant("a"), "integrations", &cursor),
            Ok("INT#int_1".to_string())
        );
    }

    #[test]
    fn foreign_forged_and_misplaced_cursors_are_refused() {
        let codec = CursorCodec::new(b"0123456789abcdef0123456789abcdef");
        let cursor = codec.encode(&tenant("a"), "integrations", "INT#int_1");
        assert_eq!(
            codec.decode(&tenant("b"), "integrations", &cursor),
            Err(InvalidCursor)
        );
        assert_eq!(
            codec.decode(&tenant("a"), "logs", &cursor),
            Err(InvalidCursor)
        );
        let (_, tag) = cursor.split_once('.').expect("two parts");
        let forged = format!("{}.{tag}", URL_SAFE_NO_PAD.encode("INT#int_2"));
        assert_eq!(
            codec.decode(&tenant("a"), "integrations", &forged),
            Err(InvalidCursor)
        );
        let other_key = CursorCodec::new(b"another key entirely............");
        assert_eq!(
            other_key.decode(&tenant("a"), "integrations", &cursor),
            Err(InvalidCursor)
        );
    }

    #[test]
    fn garbage_never_panics() {
        let codec = CursorCodec::new(b"k");
        for garbage in [
            "",
            ".",
            "..",
            "abc",
            "a.b",
            "%%%.%%%",
            "🚀.🚀",
            &"A".repeat(5000),
        ] {
            assert_eq!(codec.decode(&tenant("a"), "s", garbage), Err(InvalidCursor));
        }
    }
}
