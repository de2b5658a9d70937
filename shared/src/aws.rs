//! The AWS SDK configuration every function loads once per cold start.
//!
//! The SDK's default HTTPS client reads the platform's certificate store (a file plus every file of
//! a directory) when it is built, which dominated cold start (docs/benchmarks.md). This client only
//! ever talks to AWS service endpoints, whose certificates chain to Amazon Trust Services: it trusts
//! exactly the roots AWS tells clients to trust (Amazon Root CA 1–4 and Starfield Services Root
//! G2), taken from the compiled-in Mozilla list. No file I/O at start-up, five roots to parse.

use aws_config::{BehaviorVersion, SdkConfig};
use aws_smithy_http_client::tls::{self, rustls_provider::CryptoMode, TlsContext, TrustStore};
use base64::engine::general_purpose::STANDARD;
use base64::Engine;

/// `aws_config::load_defaults` with the HTTPS client described above.
pub async fn load_sdk_config() -> SdkConfig {
    let http_client = aws_smithy_http_client::Builder::new()
        .tls_provider(tls::Provider::Rustls(CryptoMode::AwsLc))
        .tls_context(aws_roots_context())
        .build_https();
    aws_config::defaults(BehaviorVersion::latest())
        .http_client(http_client)
        .load()
        .await
}

/// The subject common names of the roots AWS endpoints chain to.
const AWS_ROOT_NAMES: [&[u8]; 5] = [
    b"Amazon Root CA 1",
    b"Amazon Root CA 2",
    b"Amazon Root CA 3",
    b"Amazon Root CA 4",
    b"Starfield Services Root Certificate Authority - G2",
];

fn aws_roots() -> impl Iterator<Item = &'static [u8]> {
    webpki_root_certs::TLS_SERVER_ROOT_CERTS
        .iter()
        .map(|certificate| certificate.as_ref())
        .filter(|der| AWS_ROOT_NAMES.iter().any(|name| contains(der, name)))
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack
        .windows(needle.len())
        .any(|window| window == needle)
}

fn aws_roots_context() -> TlsContext {
    let mut trust_store = TrustStore::empty();
    for der in aws_roots() {
        trust_store.add_pem_certificate(pem_certificate(der));
    }
    TlsContext::builder()
        .with_trust_store(trust_store)
        .build()
        .unwrap_or_default()
}

fn pem_certificate(der: &[u8]) -> Vec<u8> {
    let body = STANDARD.encode(der);
    let mut pem = Vec::with_capacity(body.len() + body.len() / 64 + 64);
    pem.extend_from_slice(b"-----BEGIN CERTIFICATE-----\n");
    for line in body.as_bytes().chunks(64) {
        pem.extend_from_slice(line);
        pem.push(b'\n');
    }
    pem.extend_from_slice(b"-----END CERTIFICATE-----\n");
    pem
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_mozilla_root_round_trips_through_pem() {
        assert!(webpki_root_certs::TLS_SERVER_ROOT_CERTS.len() > 100);
        for certificate in webpki_root_certs::TLS_SERVER_ROOT_CERTS {
            let pem = pem_certificate(certificate.as_ref());
            let text = String::from_utf8(pem).expect("ascii");
            let body: String = text
                .lines()
                .filter(|line| !line.starts_with("-----"))
                .collect();
            assert_eq!(STANDARD.decode(body).expect("base64"), certificate.as_ref());
        }
    }

    #[test]
    fn exactly_the_amazon_trust_services_roots_are_trusted() {
        // "Amazon Root CA 1" is a prefix of no other name in the list, so each name matches once.
        assert_eq!(aws_roots().count(), AWS_ROOT_NAMES.len());
    }

    #[tokio::test]
    async fn the_sdk_configuration_loads_without_touching_the_network() {
        let config = load_sdk_config().await;
        assert!(config.http_client().is_some());
    }
}
