//! `google_channel` (Google push notification channels: Drive, Calendar, …): the
//! `X-Goog-Channel-Token` set when the channel was opened must equal the webhook's secret. Nothing
//! signs the body; Google sends none (the notification is in the `X-Goog-*` headers).

use http::HeaderName;
use zeroize::Zeroizing;

use super::{header_text, tokens_equal, InboundVerifyError, ReceivedRequest};

pub(super) const X_GOOG_CHANNEL_TOKEN: HeaderName = HeaderName::from_static("x-goog-channel-token");

pub(super) fn verify(
    secrets: &[Zeroizing<String>],
    request: &ReceivedRequest,
) -> Result<(), InboundVerifyError> {
    let token = header_text(
        request.headers,
        &X_GOOG_CHANNEL_TOKEN,
        "X-Goog-Channel-Token",
    )?;
    if secrets.is_empty() {
        return Err(InboundVerifyError::MissingSecret);
    }
    if secrets.iter().any(|secret| tokens_equal(token, secret)) {
        Ok(())
    } else {
        Err(InboundVerifyError::TokenMismatch)
    }
}

#[cfg(test)]
mod tests {
    use super::super::tests::{keys, TestRequest};
    use super::super::{verify, InboundScheme};
    use super::*;

    #[test]
    fn only_the_exact_token_verifies() {
        let secret = "whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD";
        let check = |token: &str| {
            verify(
                InboundScheme::GoogleChannel,
                None,
                &keys(&[secret]),
                &TestRequest::new(b"")
                    .header("X-Goog-Channel-Token", token)
                    .received(),
            )
        };
        assert_eq!(check(secret), Ok(()));
        for other in [&secret[..secret.len() - 1], &format!("{secret}x"), "whsec_"] {
            assert_eq!(
                check(other),
                Err(InboundVerifyError::TokenMismatch),
                "{other}"
            );
        }
    }
}
