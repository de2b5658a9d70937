//! Meta's (Facebook, Instagram, WhatsApp Cloud API) subscription handshake: a `GET` with
//! `hub.mode=subscribe&hub.verify_token=<token>&hub.challenge=<challenge>`, answered with the
//! challenge when the token is the webhook's `verifyToken`.

use std::borrow::Cow;

use super::tokens_equal;

/// What to answer a `GET` to a `meta` webhook.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MetaHandshake {
    /// 200 with the challenge as the body.
    Challenge(String),
    /// 403: a handshake with a wrong or missing token (or no `verifyToken` configured), another
    /// `hub.mode`, or a challenge that is not safe to echo.
    Forbidden,
    /// The query carries no `hub.*` parameter at all.
    NotAHandshake,
}

/// The longest challenge echoed back; Meta sends a short integer.
const MAX_CHALLENGE_LEN: usize = 256;

/// Reads `query` (the raw query string, with or without its `?`) and compares `hub.verify_token`
/// with `verify_token` in constant time. The first of a repeated parameter counts. Only a
/// challenge of ASCII letters, digits and `-._~` (at most 256) is echoed: nothing else from a
/// request ever reaches a response body.
pub fn meta_handshake(query: &str, verify_token: Option<&str>) -> MetaHandshake {
    let query = query.strip_prefix('?').unwrap_or(query);
    let mut mode: Option<Cow<str>> = None;
    let mut token: Option<Cow<str>> = None;
    let mut challenge: Option<Cow<str>> = None;
    for (name, value) in url::form_urlencoded::parse(query.as_bytes()) {
        let slot = match &*name {
            "hub.mode" => &mut mode,
            "hub.verify_token" => &mut token,
            "hub.challenge" => &mut challenge,
            _ => continue,
        };
        slot.get_or_insert(value);
    }
    if mode.is_none() && token.is_none() && challenge.is_none() {
        return MetaHandshake::NotAHandshake;
    }
    let (Some(mode), Some(token), Some(challenge), Some(expected)) = (
        mode,
        token,
        challenge,
        verify_token.filter(|t| !t.is_empty()),
    ) else {
        return MetaHandshake::Forbidden;
    };
    if mode != "subscribe" || !is_echoable(&challenge) || !tokens_equal(&token, expected) {
        return MetaHandshake::Forbidden;
    }
    MetaHandshake::Challenge(challenge.into_owned())
}

fn is_echoable(challenge: &str) -> bool {
    (1..=MAX_CHALLENGE_LEN).contains(&challenge.len())
        && challenge
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-._~".contains(&b))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_right_token_gets_the_challenge_back() {
        assert_eq!(
            meta_handshake(
                "hub.mode=subscribe&hub.challenge=1158201444&hub.verify_token=meatyhamhock",
                Some("meatyhamhock")
            ),
            MetaHandshake::Challenge("1158201444".into())
        );
        // With the `?`, percent-encoded, and in any order.
        assert_eq!(
            meta_handshake(
                "?hub.verify_token=a%20b&hub.challenge=x-1&hub.mode=subscribe",
                Some("a b")
            ),
            MetaHandshake::Challenge("x-1".into())
        );
    }

    #[test]
    fn a_wrong_or_missing_token_is_forbidden() {
        let query = "hub.mode=subscribe&hub.challenge=1&hub.verify_token=guess";
        for configured in [Some("secret"), Some("gues"), Some("guess2"), Some(""), None] {
            assert_eq!(
                meta_handshake(query, configured),
                MetaHandshake::Forbidden,
                "{configured:?}"
            );
        }
        assert_eq!(
            meta_handshake("hub.mode=subscribe&hub.challenge=1", Some("secret")),
            MetaHandshake::Forbidden
        );
    }

    #[test]
    fn another_mode_or_an_unsafe_challenge_is_forbidden() {
        for query in [
            "hub.mode=unsubscribe&hub.challenge=1&hub.verify_token=t",
            "hub.mode=subscribe&hub.challenge=%3Cscript%3E&hub.verify_token=t",
            "hub.mode=subscribe&hub.challenge=&hub.verify_token=t",
            "hub.mode=subscribe&hub.verify_token=t",
        ] {
            assert_eq!(
                meta_handshake(query, Some("t")),
                MetaHandshake::Forbidden,
                "{query}"
            );
        }
        let long = format!(
            "hub.mode=subscribe&hub.verify_token=t&hub.challenge={}",
            "1".repeat(257)
        );
        assert_eq!(meta_handshake(&long, Some("t")), MetaHandshake::Forbidden);
    }

    #[test]
    fn the_first_of_a_repeated_parameter_counts() {
        assert_eq!(
            meta_handshake(
                "hub.mode=subscribe&hub.verify_token=t&hub.verify_token=u&hub.challenge=1",
                Some("u")
            ),
            MetaHandshake::Forbidden
        );
    }

    #[test]
    fn a_query_without_hub_parameters_is_not_a_handshake() {
        for query in ["", "?", "a=1&b=2", "hub=1"] {
            assert_eq!(
                meta_handshake(query, Some("t")),
                MetaHandshake::NotAHandshake,
                "{query}"
            );
        }
    }
}
