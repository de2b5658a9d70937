//! Build-time work, so that a cold start does none of it:
//! - the built-in provider catalog (src/catalog/providers.yaml, the source of truth) is converted to
//!   JSON, so functions parse JSON at cold start instead of YAML (the tests still parse the YAML
//!   itself and check both give the same catalog);
//! - the OpenAPI document (api/openapi.json, kept pretty-printed for readers and diffs) is compiled in
//!   compact and DEFLATE-compressed: the functions must stay under 10 MiB (docs/benchmarks.md);
//! - the roots the AWS SDK's HTTPS client trusts (the Amazon Trust Services roots) are picked out of
//!   the Mozilla list and written as PEM, so start-up neither searches nor encodes certificates.

use std::path::Path;

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;

/// The subject common names of the roots AWS service endpoints chain to (Amazon Root CA 1–4,
/// cross-signed by Starfield Services Root G2): the roots AWS tells clients to trust.
const AWS_ROOT_NAMES: [&str; 5] = [
    "Amazon Root CA 1",
    "Amazon Root CA 2",
    "Amazon Root CA 3",
    "Amazon Root CA 4",
    "Starfield Services Root Certificate Authority - G2",
];

fn main() {
    let out_dir = std::env::var("OUT_DIR").expect("cargo sets OUT_DIR");
    let out_dir = Path::new(&out_dir);
    catalog_json(out_dir);
    compact_openapi(out_dir);
    aws_root_pems(out_dir);
}

fn compact_openapi(out_dir: &Path) {
    let source = "../api/openapi.json";
    println!("cargo:rerun-if-changed={source}");
    let text = std::fs::read_to_string(source).unwrap_or_else(|e| panic!("reading {source}: {e}"));
    let document: serde_json::Value =
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("{source} is not JSON: {e}"));
    let json = serde_json::to_string(&document).expect("JSON");
    // Compressed (raw DEFLATE): 207 KB of JSON is a few tens of KB in the binary, and the
    // integrations function must stay under 10 MiB (docs/benchmarks.md, B5).
    let deflated = miniz_oxide::deflate::compress_to_vec(json.as_bytes(), 10);
    std::fs::write(out_dir.join("openapi.json.deflate"), deflated)
        .expect("writing openapi.json.deflate");
}

fn catalog_json(out_dir: &Path) {
    let source = "src/catalog/providers.yaml";
    println!("cargo:rerun-if-changed={source}");
    let yaml = std::fs::read_to_string(source).unwrap_or_else(|e| panic!("reading {source}: {e}"));
    let document: serde_json::Value =
        serde_saphyr::from_str(&yaml).unwrap_or_else(|e| panic!("{source} is not valid YAML: {e}"));
    let json = serde_json::to_string(&document).expect("JSON");
    std::fs::write(out_dir.join("providers.json"), json).expect("writing providers.json");
}

/// Writes `aws_roots.rs`: `AWS_ROOT_PEMS`, one PEM certificate per name of [`AWS_ROOT_NAMES`], in
/// that order. The build fails unless each name is found in exactly one Mozilla root.
fn aws_root_pems(out_dir: &Path) {
    let mut pems = Vec::with_capacity(AWS_ROOT_NAMES.len());
    for name in AWS_ROOT_NAMES {
        let matching: Vec<&[u8]> = webpki_root_certs::TLS_SERVER_ROOT_CERTS
            .iter()
            .map(|certificate| certificate.as_ref())
            .filter(|der| contains(der, name.as_bytes()))
            .collect();
        match matching.as_slice() {
            [der] => pems.push(pem_certificate(der)),
            found => panic!(
                "expected exactly one Mozilla root named {name:?} in webpki-root-certs, found {}",
                found.len()
            ),
        }
    }
    let mut source = String::from(
        "/// The Amazon Trust Services roots, PEM-encoded by build.rs from the Mozilla list.\n",
    );
    source.push_str(&format!(
        "pub(crate) const AWS_ROOT_PEMS: [&str; {}] = [\n",
        pems.len()
    ));
    for pem in &pems {
        source.push_str(&format!("    {pem:?},\n"));
    }
    source.push_str("];\n");
    std::fs::write(out_dir.join("aws_roots.rs"), source).expect("writing aws_roots.rs");
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack
        .windows(needle.len())
        .any(|window| window == needle)
}

fn pem_certificate(der: &[u8]) -> String {
    let body = STANDARD.encode(der);
    let mut pem = String::from("-----BEGIN CERTIFICATE-----\n");
    for line in body.as_bytes().chunks(64) {
        pem.push_str(std::str::from_utf8(line).expect("base64 is ASCII"));
        pem.push('\n');
    }
    pem.push_str("-----END CERTIFICATE-----\n");
    pem
}
