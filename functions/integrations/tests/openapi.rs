//! The OpenAPI document and the router describe the same routes: a route in one but not the other
//! fails here.

use std::collections::BTreeSet;

use integrations::routes::openapi::OPENAPI_DOCUMENT;
use integrations::ROUTES;
use serde_json::Value;

fn document() -> Value {
    serde_json::from_str(OPENAPI_DOCUMENT).expect("openapi.json is JSON")
}

#[test]
fn every_router_route_is_documented_and_every_documented_route_is_served() {
    let served: BTreeSet<(String, String)> = ROUTES
        .iter()
        .map(|(method, path)| (method.to_string(), path.to_string()))
        .collect();
    let doc = document();
    let paths = doc["paths"].as_object().expect("paths");
    let documented: BTreeSet<(String, String)> = paths
        .iter()
        .flat_map(|(path, item)| {
            item.as_object()
                .into_iter()
                .flat_map(|operations| operations.keys())
                .filter(|key| {
                    matches!(
                        key.as_str(),
                        "get" | "put" | "post" | "delete" | "patch" | "head" | "options"
                    )
                })
                .map(move |method| (method.to_uppercase(), path.clone()))
        })
        .collect();
    let undocumented: Vec<_> = served.difference(&documented).collect();
    let unserved: Vec<_> = documented.difference(&served).collect();
    assert!(
        undocumented.is_empty(),
        "routes missing from openapi.json: {undocumented:?}"
    );
    assert!(
        unserved.is_empty(),
        "documented routes the router lacks: {unserved:?}"
    );
}

#[test]
fn the_document_is_openapi_3_1_with_problem_responses() {
    let doc = document();
    assert!(doc["openapi"].as_str().expect("version").starts_with("3.1"));
    assert!(doc["components"]["schemas"]["Problem"].is_object());
    assert!(doc["components"]["schemas"]["Integration"].is_object());
}
