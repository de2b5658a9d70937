//! The AWS SDK configuration every function loads once per cold start.
//!
//! The SDK's default HTTPS client reads the platform's certificate store (a file plus every file of
//! a directory) when it is built, which dominated cold start (docs/benchmarks.md). This client only
//! ever talks to AWS service endpoints, whose certificates chain to Amazon Trust Services: it trusts
//! exactly the roots AWS tells clients to trust (Amazon Root CA 1–4 and Starfield Services Root
//! G2). build.rs picks them out of the Mozilla list and compiles them in as PEM, so start-up does no
//! file I/O and no certificate search: it parses five PEM certificates.

use aws_config::{BehaviorVersion, SdkConfig};
use aws_smithy_http_client::tls::{self, rustls_provider::CryptoMode, TlsContext, TrustStore};

include!(concat!(env!("OUT_DIR"), "/aws_roots.rs"));

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

fn aws_roots_context() -> TlsContext {
    let mut trust_store = TrustStore::empty();
    for pem in AWS_ROOT_PEMS {
        trust_store.add_pem_certificate(pem.as_bytes());
    }
    TlsContext::builder()
        .with_trust_store(trust_store)
        .build()
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use base64::engine::general_purpose::STANDARD;
    use base64::Engine as _;

    use super::*;

    fn der_of(pem: &str) -> Vec<u8> {
        let body: String = pem
            .lines()
            .filter(|line| !line.starts_with("-----"))
            .collect();
        STANDARD.decode(body).expect("base64 body")
    }

    #[test]
    fn the_compiled_roots_are_the_amazon_trust_services_roots_of_the_mozilla_list() {
        let names = [
            "Amazon Root CA 1",
            "Amazon Root CA 2",
            "Amazon Root CA 3",
            "Amazon Root CA 4",
            "Starfield Services Root Certificate Authority - G2",
        ];
        assert_eq!(AWS_ROOT_PEMS.len(), names.len());
        for (pem, name) in AWS_ROOT_PEMS.iter().zip(names) {
            assert!(pem.starts_with("-----BEGIN CERTIFICATE-----\n"), "{name}");
            assert!(pem.ends_with("-----END CERTIFICATE-----\n"), "{name}");
            let der = der_of(pem);
            assert!(
                webpki_root_certs::TLS_SERVER_ROOT_CERTS
                    .iter()
                    .any(|root| root.as_ref() == der.as_slice()),
                "{name} is a Mozilla root"
            );
            assert!(
                der.windows(name.len())
                    .any(|window| window == name.as_bytes()),
                "the certificate is {name}'s"
            );
        }
    }

    #[tokio::test]
    async fn the_sdk_configuration_loads_without_touching_the_network() {
        let config = load_sdk_config().await;
        assert!(config.http_client().is_some());
    }
}
