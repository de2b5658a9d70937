//! Whether a tenant-supplied URL may be requested: the static check (scheme, credentials, IP-literal
//! host), the create/update-time check that also resolves the host, and the DNS resolver that the
//! client connects through, which hands reqwest only vetted addresses (no DNS-rebinding gap).

use std::net::{IpAddr, SocketAddr};

use reqwest::dns::{Addrs, Name, Resolve, Resolving};
use url::{Host, Url};

use super::address_policy::is_forbidden_ip;

/// Why a target URL may not be requested. Every message is a complete sentence that can be shown to
/// the tenant in a 400 problem and written to a log: it names at most the host, never the path or
/// query (which may carry keys).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TargetRejected {
    #[error("the URL scheme \"{scheme}\" is not supported; use {expected}")]
    UnsupportedScheme {
        scheme: String,
        expected: &'static str,
    },
    #[error("plain http is not allowed for outgoing requests; use https")]
    InsecureScheme,
    #[error("the URL has no host")]
    MissingHost,
    #[error(
        "the URL must not contain a user name or password; put credentials in the integration's \
         credentials instead"
    )]
    EmbeddedCredentials,
    #[error("address {ip} is {reason}")]
    ForbiddenAddress { ip: IpAddr, reason: &'static str },
    #[error("host {host} resolves to {ip}, which is {reason}")]
    ForbiddenResolvedAddress {
        host: String,
        ip: IpAddr,
        reason: &'static str,
    },
    #[error("host {host} could not be resolved: {detail}")]
    Unresolvable { host: String, detail: String },
}

impl TargetRejected {
    /// The stable error code, shared with [`super::SendError::code`].
    pub fn code(&self) -> &'static str {
        match self {
            Self::UnsupportedScheme { .. } | Self::MissingHost | Self::EmbeddedCredentials => {
                "invalid_url"
            }
            Self::InsecureScheme
            | Self::ForbiddenAddress { .. }
            | Self::ForbiddenResolvedAddress { .. } => "forbidden_target",
            Self::Unresolvable { .. } => "dns_error",
        }
    }
}

/// Checks what can be known without DNS: the scheme (`https`; `http` too when private targets are
/// allowed), that no credentials are embedded, and an IP-literal host (which reqwest connects to
/// without asking the resolver). Hostnames are vetted later by the resolver, at connect time.
pub fn check_target_url(url: &Url, allow_private: bool) -> Result<(), TargetRejected> {
    match url.scheme() {
        "https" => {}
        "http" if allow_private => {}
        "http" => return Err(TargetRejected::InsecureScheme),
        other => {
            return Err(TargetRejected::UnsupportedScheme {
                scheme: other.to_owned(),
                expected: if allow_private {
                    "https or http"
                } else {
                    "https"
                },
            })
        }
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(TargetRejected::EmbeddedCredentials);
    }
    let ip = match url.host() {
        None => return Err(TargetRejected::MissingHost),
        Some(Host::Domain("")) => return Err(TargetRejected::MissingHost),
        Some(Host::Domain(_)) => return Ok(()),
        Some(Host::Ipv4(ip)) => IpAddr::V4(ip),
        Some(Host::Ipv6(ip)) => IpAddr::V6(ip),
    };
    match is_forbidden_ip(ip, allow_private) {
        Some(reason) => Err(TargetRejected::ForbiddenAddress { ip, reason }),
        None => Ok(()),
    }
}

/// The create/update-time check: [`check_target_url`], then resolves a hostname and refuses it if
/// any of its addresses is forbidden (stricter than delivery time, where the forbidden addresses are
/// merely skipped: a name that mixes public and private addresses is suspect), or if it does not
/// resolve at all.
pub async fn validate_target(url: &Url, allow_private: bool) -> Result<(), TargetRejected> {
    check_target_url(url, allow_private)?;
    let Some(Host::Domain(host)) = url.host() else {
        return Ok(());
    };
    for addr in lookup(host).await? {
        if let Some(reason) = is_forbidden_ip(addr.ip(), allow_private) {
            return Err(TargetRejected::ForbiddenResolvedAddress {
                host: host.to_owned(),
                ip: addr.ip(),
                reason,
            });
        }
    }
    Ok(())
}

/// `scheme://host[:port]` of a URL: what may be logged or shown about a target. Paths are left out
/// too, because some targets carry their secret there (Slack incoming webhooks, Telegram bot URLs).
pub fn origin_for_logs(url: &Url) -> String {
    let host = url.host_str().unwrap_or("");
    match url.port() {
        Some(port) => format!("{}://{host}:{port}", url.scheme()),
        None => format!("{}://{host}", url.scheme()),
    }
}

/// The resolver every guarded client connects through: it resolves with the system resolver
/// (tokio's `lookup_host`) and passes on only the allowed addresses, so the address that is checked
/// is the address that is connected.
#[derive(Debug, Clone, Copy)]
pub(crate) struct GuardedResolver {
    pub(crate) allow_private: bool,
}

impl Resolve for GuardedResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let allow_private = self.allow_private;
        let host = name.as_str().to_owned();
        Box::pin(async move {
            let resolved = lookup(&host).await?;
            let vetted = vet_resolved_addrs(&host, resolved, allow_private)?;
            Ok(Box::new(vetted.into_iter()) as Addrs)
        })
    }
}

async fn lookup(host: &str) -> Result<Vec<SocketAddr>, TargetRejected> {
    let unresolvable = |detail: String| TargetRejected::Unresolvable {
        host: host.to_owned(),
        detail,
    };
    let addrs: Vec<SocketAddr> = tokio::net::lookup_host((host, 0))
        .await
        .map_err(|e| unresolvable(e.to_string()))?
        .collect();
    if addrs.is_empty() {
        return Err(unresolvable("the name has no addresses".to_owned()));
    }
    Ok(addrs)
}

/// Keeps the allowed addresses; when none is left, the first refused one gives the reason.
pub(crate) fn vet_resolved_addrs(
    host: &str,
    resolved: Vec<SocketAddr>,
    allow_private: bool,
) -> Result<Vec<SocketAddr>, TargetRejected> {
    let mut first_refused = None;
    let allowed: Vec<SocketAddr> = resolved
        .into_iter()
        .filter(|addr| match is_forbidden_ip(addr.ip(), allow_private) {
            Some(reason) => {
                first_refused.get_or_insert((addr.ip(), reason));
                false
            }
            None => true,
        })
        .collect();
    if !allowed.is_empty() {
        return Ok(allowed);
    }
    Err(match first_refused {
        Some((ip, reason)) => TargetRejected::ForbiddenResolvedAddress {
            host: host.to_owned(),
            ip,
            reason,
        },
        None => TargetRejected::Unresolvable {
            host: host.to_owned(),
            detail: "the name has no addresses".to_owned(),
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn url(s: &str) -> Url {
        Url::parse(s).unwrap()
    }

    fn sock(s: &str) -> SocketAddr {
        SocketAddr::new(s.parse().unwrap(), 0)
    }

    #[test]
    fn https_to_a_public_host_passes_the_static_check() {
        assert_eq!(
            check_target_url(&url("https://hooks.example.com/in?k=v"), false),
            Ok(())
        );
        assert_eq!(check_target_url(&url("https://8.8.8.8/"), false), Ok(()));
    }

    #[test]
    fn plain_http_is_refused_unless_private_targets_are_allowed() {
        let target = url("http://hooks.example.com/in");

        let refused = check_target_url(&target, false).unwrap_err();

        assert_eq!(refused, TargetRejected::InsecureScheme);
        assert_eq!(refused.code(), "forbidden_target");
        assert_eq!(
            refused.to_string(),
            "plain http is not allowed for outgoing requests; use https"
        );
        assert_eq!(check_target_url(&target, true), Ok(()));
    }

    #[test]
    fn schemes_other_than_http_and_https_are_invalid_urls() {
        for (target, allow_private, expected) in [
            ("ftp://files.example.com/x", false, "https"),
            ("file:///etc/passwd", true, "https or http"),
            ("gopher://example.com/", false, "https"),
        ] {
            let refused = check_target_url(&url(target), allow_private).unwrap_err();

            assert_eq!(refused.code(), "invalid_url", "{target}");
            assert!(
                refused.to_string().ends_with(&format!("; use {expected}")),
                "{target}: {refused}"
            );
        }
    }

    #[test]
    fn urls_with_embedded_credentials_are_refused() {
        for target in [
            "https://user:pass@example.com/",
            "https://user@example.com/",
            "https://:pass@example.com/",
        ] {
            let refused = check_target_url(&url(target), true).unwrap_err();

            assert_eq!(refused, TargetRejected::EmbeddedCredentials, "{target}");
            assert!(!refused.to_string().contains("pass@"));
        }
    }

    #[test]
    fn ip_literal_hosts_are_judged_before_any_connection() {
        let refused =
            check_target_url(&url("https://127.0.0.1:8443/x?key=secret"), false).unwrap_err();
        assert_eq!(
            refused.to_string(),
            "address 127.0.0.1 is loopback (127.0.0.0/8)"
        );
        assert_eq!(refused.code(), "forbidden_target");

        let metadata = check_target_url(&url("http://169.254.169.254/latest/meta-data"), true);
        assert!(matches!(
            metadata,
            Err(TargetRejected::ForbiddenAddress { reason, .. }) if reason.contains("link-local")
        ));

        let ipv6 = check_target_url(&url("https://[fe80::1]/"), true).unwrap_err();
        assert_eq!(
            ipv6.to_string(),
            "address fe80::1 is link-local (fe80::/10)"
        );
    }

    #[test]
    fn ipv4_mapped_literals_are_judged_by_their_ipv4_address() {
        let loopback = check_target_url(&url("https://[::ffff:127.0.0.1]/"), false).unwrap_err();
        assert_eq!(
            loopback.to_string(),
            "address ::ffff:127.0.0.1 is loopback (127.0.0.0/8)"
        );
        assert_eq!(
            check_target_url(&url("https://[::ffff:127.0.0.1]/"), true),
            Ok(())
        );

        let metadata =
            check_target_url(&url("http://[::ffff:169.254.169.254]/"), true).unwrap_err();
        assert!(metadata.to_string().contains("link-local (169.254.0.0/16"));
    }

    #[test]
    fn numeric_host_spellings_are_normalised_before_the_check() {
        // The URL parser turns these WHATWG spellings into 127.0.0.1 / 169.254.169.254, so they
        // cannot sneak past as "domains".
        for target in [
            "https://2130706433/",
            "https://0x7f.1/",
            "https://0177.0.0.1/",
            "https://127.1/",
        ] {
            let refused = check_target_url(&url(target), false).unwrap_err();
            assert_eq!(
                refused.to_string(),
                "address 127.0.0.1 is loopback (127.0.0.0/8)",
                "{target}"
            );
        }
        assert!(check_target_url(&url("http://0xa9fea9fe/"), true).is_err());
    }

    #[test]
    fn resolved_addresses_are_filtered_and_the_forbidden_ones_dropped() {
        let resolved = vec![
            sock("10.0.0.7"),
            sock("93.184.216.34"),
            sock("169.254.169.254"),
            sock("2606:2800:220:1::1"),
        ];

        let vetted = vet_resolved_addrs("mixed.example", resolved, false).unwrap();

        assert_eq!(
            vetted,
            vec![sock("93.184.216.34"), sock("2606:2800:220:1::1")]
        );
    }

    #[test]
    fn a_name_with_only_forbidden_addresses_is_refused_with_the_first_reason() {
        let refused = vet_resolved_addrs(
            "internal.example",
            vec![sock("192.168.1.10"), sock("::1")],
            false,
        )
        .unwrap_err();

        assert_eq!(
            refused.to_string(),
            "host internal.example resolves to 192.168.1.10, which is private (192.168.0.0/16, RFC 1918)"
        );
        assert_eq!(refused.code(), "forbidden_target");
    }

    #[test]
    fn a_name_resolving_to_the_metadata_service_is_refused_even_when_private_targets_are_allowed() {
        let refused = vet_resolved_addrs(
            "rebind.example",
            vec![sock("169.254.169.254"), sock("fd00:ec2::254")],
            true,
        )
        .unwrap_err();

        assert!(matches!(
            refused,
            TargetRejected::ForbiddenResolvedAddress { ref host, reason, .. }
                if host == "rebind.example" && reason.contains("metadata")
        ));
        assert_eq!(
            vet_resolved_addrs("dev.local", vec![sock("127.0.0.1")], true),
            Ok(vec![sock("127.0.0.1")])
        );
    }

    #[tokio::test]
    async fn the_guarded_resolver_refuses_localhost_without_allow_private() {
        let resolver = GuardedResolver {
            allow_private: false,
        };

        let result = resolver.resolve("localhost".parse().unwrap()).await;

        let error = result.err().expect("localhost must be refused");
        let rejected = error
            .downcast_ref::<TargetRejected>()
            .expect("the resolver reports a TargetRejected");
        assert_eq!(rejected.code(), "forbidden_target");
        assert!(rejected
            .to_string()
            .starts_with("host localhost resolves to "));
        assert!(rejected.to_string().contains("loopback"));
    }

    #[tokio::test]
    async fn the_guarded_resolver_passes_localhost_when_private_targets_are_allowed() {
        let resolver = GuardedResolver {
            allow_private: true,
        };

        let addrs: Vec<SocketAddr> = resolver
            .resolve("localhost".parse().unwrap())
            .await
            .map_err(|e| e.to_string())
            .unwrap()
            .collect();

        assert!(!addrs.is_empty());
        assert!(addrs.iter().all(|a| a.ip().is_loopback()), "{addrs:?}");
    }

    #[tokio::test]
    async fn validation_resolves_the_host_and_explains_a_refusal() {
        let refused = validate_target(&url("https://localhost:8443/hook?token=s3cr3t"), false)
            .await
            .unwrap_err();

        assert_eq!(refused.code(), "forbidden_target");
        assert!(refused
            .to_string()
            .starts_with("host localhost resolves to "));
        assert!(!refused.to_string().contains("s3cr3t"));
        assert_eq!(
            validate_target(&url("http://localhost:8443/hook"), true).await,
            Ok(())
        );
    }

    #[tokio::test]
    async fn validation_reports_a_name_that_does_not_resolve() {
        // `.invalid` is reserved never to resolve (RFC 2606).
        let refused = validate_target(&url("https://no-such-host.invalid/"), false)
            .await
            .unwrap_err();

        assert_eq!(refused.code(), "dns_error");
        assert!(refused
            .to_string()
            .starts_with("host no-such-host.invalid could not be resolved: "));
    }

    #[test]
    fn the_loggable_origin_leaves_out_path_query_and_credentials() {
        assert_eq!(
            origin_for_logs(&url("https://hooks.slack.com/services/T0/B0/secret?x=1")),
            "https://hooks.slack.com"
        );
        assert_eq!(
            origin_for_logs(&url("http://u:p@127.0.0.1:8080/a?key=k")),
            "http://127.0.0.1:8080"
        );
        assert_eq!(origin_for_logs(&url("https://[::1]:443/")), "https://[::1]");
    }
}
