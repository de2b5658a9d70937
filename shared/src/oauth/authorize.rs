//! The start of a connect flow: the single-use state, PKCE (S256), the return-URL allowlist and
//! the provider's authorize URL.

use base64::Engine as _;
use oauth2::PkceCodeChallenge;
use rand::RngCore;
use sha2::{Digest, Sha256};
use url::Url;

use crate::catalog::OAuth2;

/// A connect flow must come back within 10 minutes.
pub const STATE_TTL: chrono::Duration = chrono::Duration::minutes(10);
/// 256 random bits (the spec asks for at least 128).
const STATE_BYTES: usize = 32;
/// Extra scopes a connect request may add.
pub const MAX_EXTRA_SCOPES: usize = 50;

/// A fresh state value: URL-safe, unguessable.
pub fn new_state() -> String {
    let mut bytes = [0u8; STATE_BYTES];
    rand::thread_rng().fill_bytes(&mut bytes);
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

/// What the table keys a state by: its SHA-256, so the table never holds a usable state.
pub fn state_key(state: &str) -> String {
    hex::encode(Sha256::digest(state.as_bytes()))
}

/// A PKCE pair (RFC 7636, S256): the verifier kept with the state, the challenge sent.
pub struct Pkce {
    pub verifier: String,
    pub challenge: String,
}

pub fn new_pkce() -> Pkce {
    let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
    Pkce {
        verifier: verifier.secret().clone(),
        challenge: challenge.as_str().to_string(),
    }
}

/// `returnUrl` must start with one of `ALLOWED_RETURN_URLS` — and, so that a prefix such as
/// `https://app.example.com` cannot admit `https://app.example.com.evil.test` or
/// `https://app.example.com@evil.test`, be an absolute http(s) URL without credentials whose host
/// is the prefix's host.
pub fn return_url_allowed(allowed: &[String], candidate: &str) -> bool {
    let Ok(url) = Url::parse(candidate) else {
        return false;
    };
    if !matches!(url.scheme(), "http" | "https")
        || !url.username().is_empty()
        || url.password().is_some()
        || url.host_str().is_none()
        || candidate.chars().any(|c| c.is_control() || c == ' ')
    {
        return false;
    }
    allowed.iter().any(|prefix| {
        candidate.starts_with(prefix.as_str())
            && Url::parse(prefix).is_ok_and(|prefix| {
                prefix.scheme() == url.scheme() && prefix.host_str() == url.host_str()
            })
    })
}

/// Appends result parameters to the return URL with `?` or `&` as it needs.
pub fn return_url_with(return_url: &str, params: &[(&str, &str)]) -> String {
    match Url::parse(return_url) {
        Ok(mut url) => {
            {
                let mut query = url.query_pairs_mut();
                for (name, value) in params {
                    query.append_pair(name, value);
                }
            }
            url.to_string()
        }
        // Checked at connect time; kept as written if it somehow no longer parses.
        Err(_) => return_url.to_string(),
    }
}

/// Extra scopes of `?scopes=`: separated by spaces or commas, each an RFC 6749 scope token.
pub fn parse_extra_scopes(raw: &str) -> Result<Vec<String>, String> {
    let scopes: Vec<String> = raw
        .split([' ', ','])
        .filter(|scope| !scope.is_empty())
        .map(str::to_string)
        .collect();
    if scopes.len() > MAX_EXTRA_SCOPES {
        return Err(format!("at most {MAX_EXTRA_SCOPES} scopes"));
    }
    // scope-token = 1*( %x21 / %x23-5B / %x5D-7E )
    let valid = |scope: &str| {
        scope.len() <= 256
            && scope
                .bytes()
                .all(|b| b == 0x21 || (0x23..=0x5B).contains(&b) || (0x5D..=0x7E).contains(&b))
    };
    match scopes.iter().find(|scope| !valid(scope)) {
        Some(_) => Err(
            "each scope is 1-256 printable ASCII characters without quotes or backslashes"
                .to_string(),
        ),
        None => Ok(scopes),
    }
}

/// The base scopes and the extras, in order, without repeats.
pub fn requested_scopes(base: &[String], extra: &[String]) -> Vec<String> {
    let mut scopes: Vec<String> = Vec::with_capacity(base.len() + extra.len());
    for scope in base.iter().chain(extra) {
        if !scopes.contains(scope) {
            scopes.push(scope.clone());
        }
    }
    scopes
}

/// The provider's authorize URL (RFC 6749 §4.1.1), with the catalog's scope separator and extra
/// parameters. The catalog's own query parameters come first and are never overridden.
pub fn authorize_url(
    oauth: &OAuth2,
    client_id: &str,
    redirect_uri: &str,
    scopes: &[String],
    state: &str,
    pkce_challenge: Option<&str>,
) -> Url {
    let mut url = oauth.authorize_url.clone();
    {
        let mut query = url.query_pairs_mut();
        query.append_pair("response_type", "code");
        query.append_pair("client_id", client_id);
        query.append_pair("redirect_uri", redirect_uri);
        if !scopes.is_empty() {
            query.append_pair("scope", &scopes.join(&oauth.scope_separator));
        }
        query.append_pair("state", state);
        if let Some(challenge) = pkce_challenge {
            query.append_pair("code_challenge", challenge);
            query.append_pair("code_challenge_method", "S256");
        }
        const RESERVED: [&str; 7] = [
            "response_type",
            "client_id",
            "redirect_uri",
            "scope",
            "state",
            "code_challenge",
            "code_challenge_method",
        ];
        for (name, value) in &oauth.authorize_params {
            if !RESERVED.contains(&name.as_str()) {
                query.append_pair(name, value);
            }
        }
    }
    url
}

#[cfg(test)]
mod tests {
    use super::*;

    fn allowed() -> Vec<String> {
        vec![
            "https://app.example.com/oauth/done".to_string(),
            "http://localhost".to_string(),
        ]
    }

    #[test]
    fn states_are_unguessable_and_keyed_by_their_hash() {
        let (a, b) = (new_state(), new_state());
        assert_ne!(a, b);
        assert_eq!(a.len(), 43); // 256 bits in unpadded base64url
        assert_eq!(state_key(&a).len(), 64);
        assert!(!state_key(&a).contains(&a));
    }

    #[test]
    fn pkce_challenge_is_the_s256_of_the_verifier() {
        let pkce = new_pkce();
        let expected = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .encode(Sha256::digest(pkce.verifier.as_bytes()));
        assert_eq!(pkce.challenge, expected);
        assert!((43..=128).contains(&pkce.verifier.len()));
    }

    #[test]
    fn return_urls_under_an_allowed_prefix_pass() {
        assert!(return_url_allowed(
            &allowed(),
            "https://app.example.com/oauth/done?tab=2"
        ));
        assert!(return_url_allowed(&allowed(), "http://localhost:5173/cb"));
    }

    #[test]
    fn look_alike_return_urls_are_refused() {
        for url in [
            "https://app.example.com/other",
            "https://app.example.com.evil.test/oauth/done",
            "http://localhost.evil.test/",
            "http://localhost@evil.test/",
            "http://localhost:80@evil.test/",
            "javascript:alert(1)",
            "/relative",
            "https://evil.test/?https://app.example.com/oauth/done",
        ] {
            assert!(!return_url_allowed(&allowed(), url), "{url}");
        }
        assert!(!return_url_allowed(&[], "http://localhost/"));
    }

    #[test]
    fn result_parameters_are_appended_with_question_mark_or_ampersand() {
        assert_eq!(
            return_url_with("https://app.example.com/done", &[("status", "connected")]),
            "https://app.example.com/done?status=connected"
        );
        assert_eq!(
            return_url_with(
                "https://app.example.com/done?a=1",
                &[("error", "access_denied")]
            ),
            "https://app.example.com/done?a=1&error=access_denied"
        );
    }

    #[test]
    fn extra_scopes_split_on_spaces_and_commas_and_refuse_quotes() {
        assert_eq!(
            parse_extra_scopes("a b,c").unwrap(),
            vec!["a".to_string(), "b".to_string(), "c".to_string()]
        );
        assert!(parse_extra_scopes("bad\"scope").is_err());
        assert_eq!(
            requested_scopes(&["a".into(), "b".into()], &["b".into(), "c".into()]),
            vec!["a".to_string(), "b".to_string(), "c".to_string()]
        );
    }
}
