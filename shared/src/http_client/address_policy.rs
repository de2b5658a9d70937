//! Which IP addresses an outgoing request may connect to: the SSRF guard.
//!
//! Two tiers:
//! - always refused: link-local (169.254.0.0/16, fe80::/10), where cloud metadata and instance
//!   services answer, and AWS's IPv6 instance-services prefix fd00:ec2::/32 (IMDS at fd00:ec2::254);
//! - refused unless private targets are allowed (`ALLOW_PRIVATE_TARGETS=true`, the local stack):
//!   everything that is not ordinary public unicast — loopback, RFC 1918, CGNAT, "this network",
//!   multicast, broadcast, documentation, benchmarking, IETF-reserved and future-use ranges, unique
//!   local and site-local IPv6, and any IPv6 outside global unicast 2000::/3.
//!
//! Addresses that carry an IPv4 address inside IPv6 are judged by that IPv4 address:
//! - IPv4-mapped `::ffff:a.b.c.d` is judged exactly as `a.b.c.d` (the socket reaches that IPv4 host);
//! - NAT64 `64:ff9b::/96`, 6to4 `2002::/16` and the deprecated IPv4-compatible `::a.b.c.d` are refused
//!   when the embedded IPv4 is refused (so `64:ff9b::a9fe:a9fe` cannot reach the metadata service
//!   through a NAT64 gateway); otherwise NAT64 and 6to4 pass as public addresses, while the deprecated
//!   IPv4-compatible form is refused unless private targets are allowed.
//!
//! Teredo (2001::/32) sits inside the refused IETF block 2001::/23, so its obfuscated IPv4 need not be
//! decoded.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// Why `ip` must not be connected to, or `None` when it may be.
///
/// The reason completes the sentence "address {ip} is …", e.g. "address 10.0.0.1 is private
/// (10.0.0.0/8, RFC 1918)"; it is safe to show to users and to log.
pub fn is_forbidden_ip(ip: IpAddr, allow_private: bool) -> Option<&'static str> {
    match ip {
        IpAddr::V4(v4) => forbidden_v4(v4, allow_private),
        IpAddr::V6(v6) => forbidden_v6(v6, allow_private),
    }
}

struct V4Range {
    network: Ipv4Addr,
    prefix_len: u32,
    reason: &'static str,
}

struct V6Range {
    network: Ipv6Addr,
    prefix_len: u32,
    reason: &'static str,
}

const fn v4(network: [u8; 4], prefix_len: u32, reason: &'static str) -> V4Range {
    V4Range {
        network: Ipv4Addr::new(network[0], network[1], network[2], network[3]),
        prefix_len,
        reason,
    }
}

const fn v6(segments: [u16; 8], prefix_len: u32, reason: &'static str) -> V6Range {
    V6Range {
        network: Ipv6Addr::new(
            segments[0],
            segments[1],
            segments[2],
            segments[3],
            segments[4],
            segments[5],
            segments[6],
            segments[7],
        ),
        prefix_len,
        reason,
    }
}

const ALWAYS_FORBIDDEN_V4: &[V4Range] = &[v4(
    [169, 254, 0, 0],
    16,
    "link-local (169.254.0.0/16, where cloud metadata services answer)",
)];

/// First match wins, so narrower ranges come before the ranges that contain them.
const PRIVATE_V4: &[V4Range] = &[
    v4([0, 0, 0, 0], 32, "unspecified (0.0.0.0)"),
    v4([0, 0, 0, 0], 8, "in the \"this network\" range (0.0.0.0/8)"),
    v4([10, 0, 0, 0], 8, "private (10.0.0.0/8, RFC 1918)"),
    v4(
        [100, 64, 0, 0],
        10,
        "in the carrier-grade NAT range (100.64.0.0/10)",
    ),
    v4([127, 0, 0, 0], 8, "loopback (127.0.0.0/8)"),
    v4([172, 16, 0, 0], 12, "private (172.16.0.0/12, RFC 1918)"),
    v4(
        [192, 0, 0, 0],
        24,
        "reserved for IETF protocol assignments (192.0.0.0/24)",
    ),
    v4(
        [192, 0, 2, 0],
        24,
        "reserved for documentation (192.0.2.0/24)",
    ),
    v4(
        [192, 88, 99, 0],
        24,
        "a deprecated 6to4 relay anycast address (192.88.99.0/24)",
    ),
    v4([192, 168, 0, 0], 16, "private (192.168.0.0/16, RFC 1918)"),
    v4(
        [198, 18, 0, 0],
        15,
        "reserved for benchmarking (198.18.0.0/15)",
    ),
    v4(
        [198, 51, 100, 0],
        24,
        "reserved for documentation (198.51.100.0/24)",
    ),
    v4(
        [203, 0, 113, 0],
        24,
        "reserved for documentation (203.0.113.0/24)",
    ),
    v4([224, 0, 0, 0], 4, "multicast (224.0.0.0/4)"),
    v4(
        [255, 255, 255, 255],
        32,
        "the broadcast address (255.255.255.255)",
    ),
    v4([240, 0, 0, 0], 4, "reserved for future use (240.0.0.0/4)"),
];

const ALWAYS_FORBIDDEN_V6: &[V6Range] = &[
    v6([0xfe80, 0, 0, 0, 0, 0, 0, 0], 10, "link-local (fe80::/10)"),
    v6(
        [0xfd00, 0x0ec2, 0, 0, 0, 0, 0, 0],
        32,
        "an AWS instance-services address (fd00:ec2::/32: metadata, DNS, time)",
    ),
];

/// First match wins, so narrower ranges come before the ranges that contain them.
const PRIVATE_V6: &[V6Range] = &[
    v6([0, 0, 0, 0, 0, 0, 0, 0], 128, "unspecified (::)"),
    v6([0, 0, 0, 0, 0, 0, 0, 1], 128, "loopback (::1)"),
    v6(
        [0, 0, 0, 0, 0, 0, 0, 0],
        96,
        "a deprecated IPv4-compatible IPv6 address (::/96)",
    ),
    v6(
        [0x0064, 0xff9b, 0x0001, 0, 0, 0, 0, 0],
        48,
        "a local-use NAT64 address (64:ff9b:1::/48)",
    ),
    v6(
        [0x0100, 0, 0, 0, 0, 0, 0, 0],
        64,
        "reserved for discard (100::/64)",
    ),
    v6(
        [0x2001, 0, 0, 0, 0, 0, 0, 0],
        23,
        "reserved for IETF protocol assignments (2001::/23, including Teredo and benchmarking)",
    ),
    v6(
        [0x2001, 0x0db8, 0, 0, 0, 0, 0, 0],
        32,
        "reserved for documentation (2001:db8::/32)",
    ),
    v6(
        [0x3fff, 0, 0, 0, 0, 0, 0, 0],
        20,
        "reserved for documentation (3fff::/20)",
    ),
    v6(
        [0xfc00, 0, 0, 0, 0, 0, 0, 0],
        7,
        "a unique local (private) IPv6 address (fc00::/7)",
    ),
    v6(
        [0xfec0, 0, 0, 0, 0, 0, 0, 0],
        10,
        "a deprecated site-local IPv6 address (fec0::/10)",
    ),
    v6([0xff00, 0, 0, 0, 0, 0, 0, 0], 8, "multicast (ff00::/8)"),
];

const GLOBAL_UNICAST_V6: V6Range = v6(
    [0x2000, 0, 0, 0, 0, 0, 0, 0],
    3,
    "not a global unicast IPv6 address (outside 2000::/3)",
);

fn v4_in(ip: Ipv4Addr, range: &V4Range) -> bool {
    let mask = u32::MAX
        .checked_shl(32 - range.prefix_len)
        .unwrap_or_default();
    u32::from(ip) & mask == u32::from(range.network) & mask
}

fn v6_in(ip: Ipv6Addr, range: &V6Range) -> bool {
    let mask = u128::MAX
        .checked_shl(128 - range.prefix_len)
        .unwrap_or_default();
    u128::from(ip) & mask == u128::from(range.network) & mask
}

fn forbidden_v4(ip: Ipv4Addr, allow_private: bool) -> Option<&'static str> {
    if let Some(range) = ALWAYS_FORBIDDEN_V4.iter().find(|r| v4_in(ip, r)) {
        return Some(range.reason);
    }
    if allow_private {
        return None;
    }
    PRIVATE_V4.iter().find(|r| v4_in(ip, r)).map(|r| r.reason)
}

fn forbidden_v6(ip: Ipv6Addr, allow_private: bool) -> Option<&'static str> {
    if let Some(mapped) = ip.to_ipv4_mapped() {
        return forbidden_v4(mapped, allow_private);
    }
    if let Some(range) = ALWAYS_FORBIDDEN_V6.iter().find(|r| v6_in(ip, r)) {
        return Some(range.reason);
    }
    if let Some(translated) = translated_ipv4(ip) {
        return forbidden_v4(translated, allow_private);
    }
    if let Some(compatible) = ipv4_compatible(ip) {
        if let Some(reason) = forbidden_v4(compatible, allow_private) {
            return Some(reason);
        }
    }
    if allow_private {
        return None;
    }
    if let Some(range) = PRIVATE_V6.iter().find(|r| v6_in(ip, r)) {
        return Some(range.reason);
    }
    if !v6_in(ip, &GLOBAL_UNICAST_V6) {
        return Some(GLOBAL_UNICAST_V6.reason);
    }
    None
}

const NAT64_WELL_KNOWN: V6Range = v6([0x0064, 0xff9b, 0, 0, 0, 0, 0, 0], 96, "NAT64");
const SIX_TO_FOUR: V6Range = v6([0x2002, 0, 0, 0, 0, 0, 0, 0], 16, "6to4");
const IPV4_COMPATIBLE: V6Range = v6([0, 0, 0, 0, 0, 0, 0, 0], 96, "IPv4-compatible");

/// The IPv4 address that a NAT64 (64:ff9b::/96) or 6to4 (2002::/16) address leads to; such an
/// address is as safe as that IPv4 address.
fn translated_ipv4(ip: Ipv6Addr) -> Option<Ipv4Addr> {
    let bits = u128::from(ip);
    if v6_in(ip, &NAT64_WELL_KNOWN) {
        return Some(Ipv4Addr::from(bits as u32));
    }
    if v6_in(ip, &SIX_TO_FOUR) {
        return Some(Ipv4Addr::from((bits >> 80) as u32));
    }
    None
}

/// The IPv4 address inside a deprecated IPv4-compatible address (::a.b.c.d). `::` and `::1` lie
/// inside ::/96 but are the IPv6 unspecified and loopback addresses.
fn ipv4_compatible(ip: Ipv6Addr) -> Option<Ipv4Addr> {
    let bits = u128::from(ip);
    (v6_in(ip, &IPV4_COMPATIBLE) && bits > 1).then(|| Ipv4Addr::from(bits as u32))
}

#[cfg(test)]
mod tests {
    use super::*;

    const ALLOWED: Option<&str> = None;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    /// (address, expected with allow_private = false, expected with allow_private = true);
    /// `Some(fragment)` means refused with a reason containing `fragment`.
    type Case = (&'static str, Option<&'static str>, Option<&'static str>);

    fn check_cases(cases: &[Case]) {
        let mut failures = Vec::new();
        for (address, strict, permissive) in cases {
            for (allow_private, expected) in [(false, strict), (true, permissive)] {
                let actual = is_forbidden_ip(ip(address), allow_private);
                let matches = match (expected, actual) {
                    (None, None) => true,
                    (Some(fragment), Some(reason)) => reason.contains(fragment),
                    _ => false,
                };
                if !matches {
                    failures.push(format!(
                        "{address} (allow_private={allow_private}): expected {expected:?}, got {actual:?}"
                    ));
                }
            }
        }
        assert!(failures.is_empty(), "{}", failures.join("\n"));
    }

    #[test]
    fn ipv4_link_local_is_refused_even_when_private_targets_are_allowed() {
        check_cases(&[
            ("169.253.255.255", ALLOWED, ALLOWED),
            ("169.254.0.0", Some("link-local"), Some("link-local")),
            ("169.254.169.254", Some("metadata"), Some("metadata")),
            ("169.254.170.2", Some("link-local"), Some("link-local")),
            ("169.254.255.255", Some("link-local"), Some("link-local")),
            ("169.255.0.0", ALLOWED, ALLOWED),
        ]);
    }

    #[test]
    fn ipv4_private_and_special_ranges_are_refused_only_without_allow_private() {
        check_cases(&[
            ("0.0.0.0", Some("unspecified"), ALLOWED),
            ("0.0.0.1", Some("this network"), ALLOWED),
            ("0.255.255.255", Some("this network"), ALLOWED),
            ("1.0.0.0", ALLOWED, ALLOWED),
            ("9.255.255.255", ALLOWED, ALLOWED),
            ("10.0.0.0", Some("private"), ALLOWED),
            ("10.255.255.255", Some("private"), ALLOWED),
            ("11.0.0.0", ALLOWED, ALLOWED),
            ("100.63.255.255", ALLOWED, ALLOWED),
            ("100.64.0.0", Some("carrier-grade NAT"), ALLOWED),
            ("100.127.255.255", Some("carrier-grade NAT"), ALLOWED),
            ("100.128.0.0", ALLOWED, ALLOWED),
            ("126.255.255.255", ALLOWED, ALLOWED),
            ("127.0.0.0", Some("loopback"), ALLOWED),
            ("127.0.0.1", Some("loopback"), ALLOWED),
            ("127.255.255.255", Some("loopback"), ALLOWED),
            ("128.0.0.0", ALLOWED, ALLOWED),
            ("172.15.255.255", ALLOWED, ALLOWED),
            ("172.16.0.0", Some("private"), ALLOWED),
            ("172.31.255.255", Some("private"), ALLOWED),
            ("172.32.0.0", ALLOWED, ALLOWED),
            ("191.255.255.255", ALLOWED, ALLOWED),
            ("192.0.0.0", Some("IETF protocol"), ALLOWED),
            ("192.0.0.255", Some("IETF protocol"), ALLOWED),
            ("192.0.1.0", ALLOWED, ALLOWED),
            ("192.0.1.255", ALLOWED, ALLOWED),
            ("192.0.2.0", Some("documentation"), ALLOWED),
            ("192.0.2.255", Some("documentation"), ALLOWED),
            ("192.0.3.0", ALLOWED, ALLOWED),
            ("192.88.98.255", ALLOWED, ALLOWED),
            ("192.88.99.0", Some("6to4 relay"), ALLOWED),
            ("192.88.99.255", Some("6to4 relay"), ALLOWED),
            ("192.88.100.0", ALLOWED, ALLOWED),
            ("192.167.255.255", ALLOWED, ALLOWED),
            ("192.168.0.0", Some("private"), ALLOWED),
            ("192.168.255.255", Some("private"), ALLOWED),
            ("192.169.0.0", ALLOWED, ALLOWED),
            ("198.17.255.255", ALLOWED, ALLOWED),
            ("198.18.0.0", Some("benchmarking"), ALLOWED),
            ("198.19.255.255", Some("benchmarking"), ALLOWED),
            ("198.20.0.0", ALLOWED, ALLOWED),
            ("198.51.99.255", ALLOWED, ALLOWED),
            ("198.51.100.0", Some("documentation"), ALLOWED),
            ("198.51.100.255", Some("documentation"), ALLOWED),
            ("198.51.101.0", ALLOWED, ALLOWED),
            ("203.0.112.255", ALLOWED, ALLOWED),
            ("203.0.113.0", Some("documentation"), ALLOWED),
            ("203.0.113.255", Some("documentation"), ALLOWED),
            ("203.0.114.0", ALLOWED, ALLOWED),
            ("223.255.255.255", ALLOWED, ALLOWED),
            ("224.0.0.0", Some("multicast"), ALLOWED),
            ("239.255.255.255", Some("multicast"), ALLOWED),
            ("240.0.0.0", Some("future use"), ALLOWED),
            ("255.255.255.254", Some("future use"), ALLOWED),
            ("255.255.255.255", Some("broadcast"), ALLOWED),
        ]);
    }

    #[test]
    fn ordinary_public_addresses_are_allowed() {
        check_cases(&[
            ("8.8.8.8", ALLOWED, ALLOWED),
            ("52.95.110.1", ALLOWED, ALLOWED),
            ("2606:4700:4700::1111", ALLOWED, ALLOWED),
            ("2a00:1450:4001:80b::200e", ALLOWED, ALLOWED),
        ]);
    }

    #[test]
    fn ipv6_link_local_and_aws_instance_services_are_refused_even_when_private_targets_are_allowed()
    {
        check_cases(&[
            (
                "fe7f:ffff:ffff:ffff:ffff:ffff:ffff:ffff",
                Some("global unicast"),
                ALLOWED,
            ),
            ("fe80::", Some("link-local"), Some("link-local")),
            ("fe80::1", Some("link-local"), Some("link-local")),
            (
                "febf:ffff:ffff:ffff:ffff:ffff:ffff:ffff",
                Some("link-local"),
                Some("link-local"),
            ),
            ("fec0::", Some("site-local"), ALLOWED),
            (
                "fd00:ec1:ffff:ffff:ffff:ffff:ffff:ffff",
                Some("unique local"),
                ALLOWED,
            ),
            ("fd00:ec2::", Some("AWS"), Some("AWS")),
            ("fd00:ec2::254", Some("AWS"), Some("AWS")),
            (
                "fd00:ec2:ffff:ffff:ffff:ffff:ffff:ffff",
                Some("AWS"),
                Some("AWS"),
            ),
            ("fd00:ec3::", Some("unique local"), ALLOWED),
        ]);
    }

    #[test]
    fn ipv6_private_and_special_ranges_are_refused_only_without_allow_private() {
        check_cases(&[
            ("::", Some("unspecified"), ALLOWED),
            ("::1", Some("loopback"), ALLOWED),
            ("::2", Some("this network"), ALLOWED),
            ("::8.8.8.8", Some("IPv4-compatible"), ALLOWED),
            ("::1:0:0:0", Some("global unicast"), ALLOWED),
            ("64:ff9b:1::", Some("local-use NAT64"), ALLOWED),
            (
                "64:ff9b:1:ffff:ffff:ffff:ffff:ffff",
                Some("local-use NAT64"),
                ALLOWED,
            ),
            ("100::", Some("discard"), ALLOWED),
            ("100::ffff:ffff:ffff:ffff", Some("discard"), ALLOWED),
            ("100:0:0:1::", Some("global unicast"), ALLOWED),
            (
                "1fff:ffff:ffff:ffff:ffff:ffff:ffff:ffff",
                Some("global unicast"),
                ALLOWED,
            ),
            ("2000::", ALLOWED, ALLOWED),
            ("2001::", Some("IETF protocol"), ALLOWED),
            ("2001:2::1", Some("IETF protocol"), ALLOWED),
            (
                "2001:1ff:ffff:ffff:ffff:ffff:ffff:ffff",
                Some("IETF protocol"),
                ALLOWED,
            ),
            ("2001:200::", ALLOWED, ALLOWED),
            ("2001:db7:ffff:ffff:ffff:ffff:ffff:ffff", ALLOWED, ALLOWED),
            ("2001:db8::", Some("documentation"), ALLOWED),
            (
                "2001:db8:ffff:ffff:ffff:ffff:ffff:ffff",
                Some("documentation"),
                ALLOWED,
            ),
            ("2001:db9::", ALLOWED, ALLOWED),
            ("3ffe:ffff:ffff:ffff:ffff:ffff:ffff:ffff", ALLOWED, ALLOWED),
            ("3fff::", Some("documentation"), ALLOWED),
            (
                "3fff:fff:ffff:ffff:ffff:ffff:ffff:ffff",
                Some("documentation"),
                ALLOWED,
            ),
            ("3fff:1000::", ALLOWED, ALLOWED),
            ("4000::", Some("global unicast"), ALLOWED),
            (
                "fbff:ffff:ffff:ffff:ffff:ffff:ffff:ffff",
                Some("global unicast"),
                ALLOWED,
            ),
            ("fc00::", Some("unique local"), ALLOWED),
            (
                "fdff:ffff:ffff:ffff:ffff:ffff:ffff:ffff",
                Some("unique local"),
                ALLOWED,
            ),
            ("fe00::", Some("global unicast"), ALLOWED),
            (
                "feff:ffff:ffff:ffff:ffff:ffff:ffff:ffff",
                Some("site-local"),
                ALLOWED,
            ),
            ("ff00::", Some("multicast"), ALLOWED),
            ("ff02::1", Some("multicast"), ALLOWED),
            (
                "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff",
                Some("multicast"),
                ALLOWED,
            ),
        ]);
    }

    #[test]
    fn ipv4_mapped_ipv6_is_judged_by_its_ipv4_address() {
        check_cases(&[
            ("::ffff:127.0.0.1", Some("loopback (127.0.0.0/8)"), ALLOWED),
            (
                "::ffff:169.254.169.254",
                Some("link-local"),
                Some("link-local"),
            ),
            ("::ffff:10.1.2.3", Some("private (10.0.0.0/8"), ALLOWED),
            ("::ffff:0.0.0.0", Some("unspecified (0.0.0.0)"), ALLOWED),
            ("::ffff:8.8.8.8", ALLOWED, ALLOWED),
        ]);
    }

    #[test]
    fn nat64_6to4_and_ipv4_compatible_addresses_are_refused_when_their_ipv4_address_is() {
        check_cases(&[
            (
                "64:ff9b::169.254.169.254",
                Some("link-local"),
                Some("link-local"),
            ),
            ("64:ff9b::127.0.0.1", Some("loopback"), ALLOWED),
            ("64:ff9b::192.168.1.1", Some("private"), ALLOWED),
            ("64:ff9b::8.8.8.8", ALLOWED, ALLOWED),
            ("2002:a9fe:a9fe::", Some("link-local"), Some("link-local")),
            (
                "2002:a9fe:a9fe:1::1",
                Some("link-local"),
                Some("link-local"),
            ),
            ("2002:7f00:1::1", Some("loopback"), ALLOWED),
            ("2002:a00:1::", Some("private"), ALLOWED),
            ("2002:808:808::1", ALLOWED, ALLOWED),
            ("::169.254.169.254", Some("link-local"), Some("link-local")),
            ("::10.0.0.1", Some("private"), ALLOWED),
        ]);
    }
}
