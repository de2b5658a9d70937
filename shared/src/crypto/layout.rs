//! The byte layout of a version-1 envelope (docs/envelope-format.md), with no cryptography in it, so that
//! parsing can be tested on any input without KMS.
//!
//! ```text
//! byte 0        : 0x01 (format version)
//! bytes 1..3    : length L of the encrypted data key, u16 big-endian
//! bytes 3..3+L  : the encrypted data key (KMS CiphertextBlob)
//! next 12 bytes : AES-GCM nonce (random per encryption)
//! rest          : AES-256-GCM ciphertext followed by its 16-byte tag
//! ```

/// The only format version this code writes and reads.
pub const FORMAT_VERSION: u8 = 0x01;
/// AES-GCM nonce length (96 bits, the GCM standard size).
pub const NONCE_LEN: usize = 12;
/// AES-GCM authentication tag length.
pub const TAG_LEN: usize = 16;
/// Version byte plus the u16 length of the encrypted data key.
const HEADER_LEN: usize = 3;

/// Why bytes are not a version-1 envelope. Messages give sizes only, never content.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum EnvelopeFormatError {
    #[error("the envelope is empty")]
    Empty,
    #[error("unsupported envelope format version {found:#04x} (this code reads version 0x01)")]
    UnsupportedVersion { found: u8 },
    #[error("the envelope is {len} bytes long, shorter than its 3-byte header")]
    TruncatedHeader { len: usize },
    #[error("the envelope declares an empty encrypted data key")]
    EmptyDataKey,
    #[error(
        "the envelope declares a {declared}-byte encrypted data key but only {available} bytes follow the header"
    )]
    DataKeyOverflow { declared: usize, available: usize },
    #[error(
        "the envelope has {available} bytes after its encrypted data key, fewer than the {needed} of a nonce and an authentication tag"
    )]
    TruncatedBody { available: usize, needed: usize },
    #[error(
        "an encrypted data key of {len} bytes does not fit the envelope's 16-bit length field"
    )]
    DataKeyTooLong { len: usize },
}

/// The parts of an envelope, borrowed from its bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EnvelopeParts<'a> {
    pub encrypted_data_key: &'a [u8],
    pub nonce: &'a [u8; NONCE_LEN],
    /// AES-256-GCM ciphertext followed by its tag; at least `TAG_LEN` bytes.
    pub sealed: &'a [u8],
}

/// Splits an envelope into its parts, checking every length before slicing.
pub fn parse(envelope: &[u8]) -> Result<EnvelopeParts<'_>, EnvelopeFormatError> {
    let (&version, after_version) = envelope.split_first().ok_or(EnvelopeFormatError::Empty)?;
    if version != FORMAT_VERSION {
        return Err(EnvelopeFormatError::UnsupportedVersion { found: version });
    }
    let (length_bytes, after_header) = match after_version.split_first_chunk::<2>() {
        Some(split) => split,
        None => {
            return Err(EnvelopeFormatError::TruncatedHeader {
                len: envelope.len(),
            })
        }
    };
    let declared = usize::from(u16::from_be_bytes(*length_bytes));
    if declared == 0 {
        return Err(EnvelopeFormatError::EmptyDataKey);
    }
    if declared > after_header.len() {
        return Err(EnvelopeFormatError::DataKeyOverflow {
            declared,
            available: after_header.len(),
        });
    }
    let (encrypted_data_key, body) = after_header.split_at(declared);
    let too_short = EnvelopeFormatError::TruncatedBody {
        available: body.len(),
        needed: NONCE_LEN + TAG_LEN,
    };
    let (nonce, sealed) = body.split_first_chunk::<NONCE_LEN>().ok_or(too_short)?;
    if sealed.len() < TAG_LEN {
        return Err(too_short);
    }
    Ok(EnvelopeParts {
        encrypted_data_key,
        nonce,
        sealed,
    })
}

/// Writes the header, the encrypted data key and the nonce into a buffer that already has room for
/// `sealed_len` more bytes, so that encrypting in place after it never reallocates (a reallocation
/// would leave a copy of the plaintext behind in freed memory).
pub fn start_envelope(
    encrypted_data_key: &[u8],
    nonce: &[u8; NONCE_LEN],
    sealed_len: usize,
) -> Result<Vec<u8>, EnvelopeFormatError> {
    if encrypted_data_key.is_empty() {
        return Err(EnvelopeFormatError::EmptyDataKey);
    }
    let key_len = u16::try_from(encrypted_data_key.len()).map_err(|_| {
        EnvelopeFormatError::DataKeyTooLong {
            len: encrypted_data_key.len(),
        }
    })?;
    let mut envelope =
        Vec::with_capacity(HEADER_LEN + encrypted_data_key.len() + NONCE_LEN + sealed_len);
    envelope.push(FORMAT_VERSION);
    envelope.extend_from_slice(&key_len.to_be_bytes());
    envelope.extend_from_slice(encrypted_data_key);
    envelope.extend_from_slice(nonce);
    Ok(envelope)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{Rng, RngCore, SeedableRng};

    fn envelope_of(key: &[u8], nonce: &[u8; NONCE_LEN], sealed: &[u8]) -> Vec<u8> {
        let mut envelope = start_envelope(key, nonce, sealed.len()).expect("valid key length");
        envelope.extend_from_slice(sealed);
        envelope
    }

    #[test]
    fn written_envelope_has_the_documented_byte_layout() {
        // Given a 3-byte encrypted key, a nonce and a 17-byte sealed body
        let nonce = [7u8; NONCE_LEN];
        let sealed = [9u8; TAG_LEN + 1];
        // When they are written
        let envelope = envelope_of(&[0xaa, 0xbb, 0xcc], &nonce, &sealed);
        // Then byte 0 is the version, bytes 1..3 the big-endian length, then key, nonce, body
        assert_eq!(envelope[0], 0x01);
        assert_eq!(&envelope[1..3], &[0x00, 0x03]);
        assert_eq!(&envelope[3..6], &[0xaa, 0xbb, 0xcc]);
        assert_eq!(&envelope[6..18], &nonce);
        assert_eq!(&envelope[18..], &sealed);
    }

    #[test]
    fn parse_returns_the_parts_that_were_written() {
        let key: Vec<u8> = (0..=255u8).cycle().take(300).collect();
        let nonce = [3u8; NONCE_LEN];
        let sealed = [5u8; 40];
        let envelope = envelope_of(&key, &nonce, &sealed);

        let parts = parse(&envelope).expect("well-formed envelope");

        assert_eq!(&envelope[1..3], &300u16.to_be_bytes());
        assert_eq!(parts.encrypted_data_key, key.as_slice());
        assert_eq!(parts.nonce, &nonce);
        assert_eq!(parts.sealed, &sealed);
    }

    #[test]
    fn empty_input_is_rejected() {
        assert_eq!(parse(&[]), Err(EnvelopeFormatError::Empty));
    }

    #[test]
    fn unknown_version_is_rejected_whatever_follows() {
        let mut envelope = envelope_of(&[1, 2, 3], &[0; NONCE_LEN], &[0; TAG_LEN]);
        for version in [0x00, 0x02, 0xff] {
            envelope[0] = version;
            assert_eq!(
                parse(&envelope),
                Err(EnvelopeFormatError::UnsupportedVersion { found: version })
            );
        }
    }

    #[test]
    fn header_cut_short_is_rejected() {
        assert_eq!(
            parse(&[0x01]),
            Err(EnvelopeFormatError::TruncatedHeader { len: 1 })
        );
        assert_eq!(
            parse(&[0x01, 0x00]),
            Err(EnvelopeFormatError::TruncatedHeader { len: 2 })
        );
    }

    #[test]
    fn zero_length_data_key_is_rejected() {
        let mut envelope = vec![0x01, 0x00, 0x00];
        envelope.extend_from_slice(&[0; NONCE_LEN + TAG_LEN]);
        assert_eq!(parse(&envelope), Err(EnvelopeFormatError::EmptyDataKey));
    }

    #[test]
    fn declared_key_length_past_the_end_is_rejected() {
        // Given a header that declares 0xffff key bytes but carries 40
        let mut envelope = vec![0x01, 0xff, 0xff];
        envelope.extend_from_slice(&[0; 40]);
        assert_eq!(
            parse(&envelope),
            Err(EnvelopeFormatError::DataKeyOverflow {
                declared: 0xffff,
                available: 40
            })
        );
    }

    #[test]
    fn body_without_room_for_nonce_and_tag_is_rejected() {
        let whole = envelope_of(&[1, 2, 3], &[0; NONCE_LEN], &[0; TAG_LEN]);
        let body_start = 3 + 3;
        for cut in body_start..whole.len() {
            assert_eq!(
                parse(&whole[..cut]),
                Err(EnvelopeFormatError::TruncatedBody {
                    available: cut - body_start,
                    needed: NONCE_LEN + TAG_LEN
                }),
                "cut at {cut}"
            );
        }
        assert!(
            parse(&whole).is_ok(),
            "an empty plaintext (tag only) is valid"
        );
    }

    #[test]
    fn every_truncation_of_a_valid_envelope_is_an_error() {
        let whole = envelope_of(&[9; 20], &[1; NONCE_LEN], &[2; TAG_LEN + 8]);
        // A cut inside the body still parses when the tag fits: only cuts into key/nonce/tag fail.
        let minimum = 3 + 20 + NONCE_LEN + TAG_LEN;
        for cut in 0..minimum {
            assert!(parse(&whole[..cut]).is_err(), "cut at {cut} parsed");
        }
    }

    #[test]
    fn data_key_too_long_for_the_length_field_is_not_written() {
        let key = vec![0u8; usize::from(u16::MAX) + 1];
        assert_eq!(
            start_envelope(&key, &[0; NONCE_LEN], 16),
            Err(EnvelopeFormatError::DataKeyTooLong { len: key.len() })
        );
        assert!(start_envelope(&key[..usize::from(u16::MAX)], &[0; NONCE_LEN], 16).is_ok());
        assert_eq!(
            start_envelope(&[], &[0; NONCE_LEN], 16),
            Err(EnvelopeFormatError::EmptyDataKey)
        );
    }

    #[test]
    fn random_bytes_never_panic_and_accepted_ones_are_consistent() {
        // Property: for any input, parse either errors or returns parts that re-assemble the input.
        let mut rng = rand::rngs::StdRng::seed_from_u64(0x5eed_0001);
        let mut accepted = 0;
        for _ in 0..20_000 {
            let len = rng.gen_range(0..96);
            let mut bytes = vec![0u8; len];
            rng.fill_bytes(&mut bytes);
            // Bias towards the interesting prefix so the deeper checks are exercised too.
            if len > 0 && rng.gen_bool(0.7) {
                bytes[0] = FORMAT_VERSION;
            }
            if len > 2 && rng.gen_bool(0.5) {
                bytes[1] = 0;
                bytes[2] = rng.gen_range(0..64);
            }
            if let Ok(parts) = parse(&bytes) {
                accepted += 1;
                let again = envelope_of(parts.encrypted_data_key, parts.nonce, parts.sealed);
                assert_eq!(again, bytes);
            }
        }
        assert!(
            accepted > 100,
            "the generator reached valid envelopes ({accepted})"
        );
    }
}
