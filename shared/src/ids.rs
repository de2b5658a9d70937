//! Prefixed, unguessable, time-ordered ids (a ULID-like time part, then randomness).
//!
//! Layout after the prefix: 10 Crockford base32 characters of the creation time in milliseconds
//! (48 bits, so ids sort by creation), then 20 characters of randomness (100 bits from the OS CSPRNG).

use rand::RngCore;

const ALPHABET: &[u8; 32] = b"0123456789abcdefghjkmnpqrstvwxyz";
const TIME_CHARS: usize = 10;
const RANDOM_CHARS: usize = 20;
pub const ID_BODY_LEN: usize = TIME_CHARS + RANDOM_CHARS;

/// The type prefixes of the API's ids.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IdKind {
    Integration,
    IncomingWebhook,
    OutgoingWebhook,
    Event,
    Delivery,
    Log,
    Job,
}

impl IdKind {
    pub const fn prefix(self) -> &'static str {
        match self {
            IdKind::Integration => "int_",
            IdKind::IncomingWebhook => "whin_",
            IdKind::OutgoingWebhook => "whout_",
            IdKind::Event => "evt_",
            IdKind::Delivery => "dlv_",
            IdKind::Log => "log_",
            IdKind::Job => "job_",
        }
    }
}

/// A new id of `kind` created now.
pub fn new_id(kind: IdKind) -> String {
    new_id_at(kind, chrono::Utc::now().timestamp_millis().max(0) as u64)
}

pub fn new_id_at(kind: IdKind, unix_millis: u64) -> String {
    let mut out = String::with_capacity(kind.prefix().len() + ID_BODY_LEN);
    out.push_str(kind.prefix());
    for i in (0..TIME_CHARS).rev() {
        out.push(ALPHABET[((unix_millis >> (5 * i)) & 31) as usize] as char);
    }
    let mut random = [0u8; 13];
    rand::rngs::OsRng.fill_bytes(&mut random);
    let bits = u128::from_be_bytes({
        let mut wide = [0u8; 16];
        wide[3..].copy_from_slice(&random);
        wide
    });
    for i in (0..RANDOM_CHARS).rev() {
        out.push(ALPHABET[((bits >> (5 * i)) & 31) as usize] as char);
    }
    out
}

/// A random (version 4) UUID, the id format of AWS events and Lambda requests.
pub fn uuid_v4() -> String {
    let mut bytes = [0u8; 16];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    bytes[6] = (bytes[6] & 0x0f) | 0x40;
    bytes[8] = (bytes[8] & 0x3f) | 0x80;
    let hex = hex::encode(bytes);
    format!(
        "{}-{}-{}-{}-{}",
        &hex[0..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..32]
    )
}

/// Whether `candidate` has the shape of an id of `kind` (a cheap check before any lookup).
pub fn is_id_of(kind: IdKind, candidate: &str) -> bool {
    candidate.strip_prefix(kind.prefix()).is_some_and(|body| {
        body.len() == ID_BODY_LEN && body.bytes().all(|b| ALPHABET.contains(&b))
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn ids_carry_their_prefix_and_shape() {
        let id = new_id(IdKind::Integration);
        assert!(id.starts_with("int_"));
        assert!(is_id_of(IdKind::Integration, &id));
        assert!(!is_id_of(IdKind::Log, &id));
        assert!(!is_id_of(IdKind::Integration, "int_../../etc"));
    }

    #[test]
    fn ids_sort_by_creation_time() {
        let earlier = new_id_at(IdKind::Log, 1_700_000_000_000);
        let later = new_id_at(IdKind::Log, 1_700_000_000_001);
        assert!(earlier < later);
    }

    #[test]
    fn uuids_are_version_4_in_the_canonical_form() {
        let uuid = uuid_v4();
        let groups: Vec<usize> = uuid.split('-').map(str::len).collect();
        assert_eq!(groups, [8, 4, 4, 4, 12]);
        assert_eq!(&uuid[14..15], "4");
        assert!(matches!(&uuid[19..20], "8" | "9" | "a" | "b"));
        assert_ne!(uuid, uuid_v4());
    }

    #[test]
    fn ids_made_in_the_same_millisecond_differ() {
        let ids: HashSet<String> = (0..10_000).map(|_| new_id_at(IdKind::Event, 42)).collect();
        assert_eq!(ids.len(), 10_000);
    }
}
