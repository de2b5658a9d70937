//! Converts the built-in provider catalog (src/catalog/providers.yaml, the source of truth) to JSON,
//! so functions parse JSON at cold start instead of YAML. The tests still parse the YAML itself and
//! check both give the same catalog.

fn main() {
    let source = "src/catalog/providers.yaml";
    println!("cargo:rerun-if-changed={source}");
    let yaml = std::fs::read_to_string(source).unwrap_or_else(|e| panic!("reading {source}: {e}"));
    let document: serde_json::Value =
        serde_yaml::from_str(&yaml).unwrap_or_else(|e| panic!("{source} is not valid YAML: {e}"));
    let out_dir = std::env::var("OUT_DIR").expect("cargo sets OUT_DIR");
    let json = serde_json::to_string(&document).expect("JSON");
    std::fs::write(std::path::Path::new(&out_dir).join("providers.json"), json)
        .expect("writing providers.json");
}
