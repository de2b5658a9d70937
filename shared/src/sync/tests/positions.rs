//! The page position inside a request (`{page.*}` in `request.params`, `request.body` and
//! `request.graphql.variables`), with the built-in QuickBooks and monday definitions that need it.

use serde_json::{json, Map, Value};

use super::builtin_entity;
use crate::catalog::{Catalog, EntityDef, Values};
use crate::sync::{next_position, page_records, page_request, page_values, PagePosition};

fn obj(value: Value) -> Map<String, Value> {
    match value {
        Value::Object(map) => map,
        _ => panic!("an object"),
    }
}

/// The URL and JSON body the engine sends for `entity` of `provider` at `position`.
fn rendered(
    provider: &str,
    entity: &EntityDef,
    config: Value,
    position: &PagePosition,
) -> (url::Url, Option<Value>) {
    let catalog = Catalog::builtin();
    let provider = catalog.get(provider).expect("built in");
    let config = obj(config);
    let credentials = obj(json!({"accessToken": "tok", "apiKey": "k"}));
    let page = page_values(entity.pagination.as_ref(), position);
    let values = Values::new(&config, &credentials).with_page(&page);
    let request = provider
        .prepare_request(
            entity.request.method.clone(),
            &entity.request.path,
            &entity.request.params,
            &values,
        )
        .expect("renders");
    let body = provider
        .entity_body(&entity.request, &values)
        .expect("renders");
    assert!(page_request(entity.pagination.as_ref(), position)
        .query
        .is_empty());
    (request.url, body)
}

fn query_param(url: &url::Url, name: &str) -> Option<String> {
    url.query_pairs()
        .find(|(key, _)| key == name)
        .map(|(_, value)| value.into_owned())
}

#[test]
fn quickbooks_pages_inside_its_query_statement_from_position_one() {
    let customer = builtin_entity("quickbooks", "customer");
    let config = json!({"realmId": "9130347"});
    let (first, body) = rendered(
        "quickbooks",
        &customer,
        config.clone(),
        &PagePosition::First,
    );
    assert_eq!(body, None);
    assert_eq!(first.path(), "/v3/company/9130347/query");
    assert_eq!(
        query_param(&first, "query").as_deref(),
        Some("select * from Customer where Active IN (true, false) STARTPOSITION 1 MAXRESULTS 100")
    );
    assert_eq!(query_param(&first, "minorversion").as_deref(), Some("75"));

    // A full page of 100 → the next statement starts at 101.
    let customers: Vec<Value> = (1..=100)
        .map(|i| json!({"Id": i.to_string(), "DisplayName": format!("C{i}"), "Active": true}))
        .collect();
    let page =
        json!({"QueryResponse": {"Customer": customers, "startPosition": 1, "maxResults": 100}});
    let next = next_position(
        customer.pagination.as_ref(),
        &PagePosition::First,
        &page,
        &Default::default(),
        100,
        Some("100"),
        &first,
    )
    .expect("a full page is not the last");
    assert_eq!(next, PagePosition::Offset(100));
    let (second, _) = rendered("quickbooks", &customer, config, &next);
    assert!(query_param(&second, "query")
        .expect("query")
        .ends_with("STARTPOSITION 101 MAXRESULTS 100"));
}

#[test]
fn an_empty_quickbooks_answer_is_an_empty_page_and_inactive_customers_are_deletions() {
    let customer = builtin_entity("quickbooks", "customer");
    let empty = json!({"QueryResponse": {}, "time": "2026-12-01T10:00:00.000-08:00"});
    assert!(page_records(&customer, &empty)
        .expect("no records")
        .is_empty());

    let page = json!({"QueryResponse": {"Customer": [
        {"Id": "58", "DisplayName": "Active one", "Active": true},
        {"Id": "59", "DisplayName": "Made inactive", "Active": false}
    ]}});
    let records = page_records(&customer, &page).expect("records");
    let deleted: Vec<bool> = records
        .iter()
        .map(|r| r.as_ref().expect("a record").deleted)
        .collect();
    assert_eq!(deleted, [false, true]);

    // Without `recordsOptional` a missing array stays an error, so a wrong path never reads
    // as an empty data set (which a full sync would take for "everything was deleted").
    let strict = EntityDef {
        records_optional: false,
        ..customer
    };
    assert!(page_records(&strict, &empty).is_err());
}

#[test]
fn monday_sends_its_graphql_query_with_the_board_and_cursor_as_variables() {
    let item = builtin_entity("monday", "item");
    let config = json!({"boardId": "1234567890"});
    let (first, body) = rendered("monday", &item, config.clone(), &PagePosition::First);
    assert_eq!(first.as_str(), "https://api.monday.com/v2");
    let body = body.expect("a GraphQL body");
    assert!(body["query"]
        .as_str()
        .expect("query")
        .contains("items_page(limit: 100, cursor: $cursor)"));
    assert_eq!(
        body["variables"],
        json!({"board": ["1234567890"], "cursor": null})
    );

    let page = json!({"data": {"boards": [{"items_page": {
        "cursor": "MSw5NzI4MDA5MDAs",
        "items": [{"id": "1001", "name": "Lead", "updated_at": "2026-11-30T10:00:00Z"}]}}]}});
    let next = next_position(
        item.pagination.as_ref(),
        &PagePosition::First,
        &page,
        &Default::default(),
        1,
        Some("1001"),
        &first,
    )
    .expect("a cursor");
    let (_, body) = rendered("monday", &item, config, &next);
    assert_eq!(
        body.expect("body")["variables"]["cursor"],
        "MSw5NzI4MDA5MDAs"
    );

    // Without the board setting the request cannot be built, and the error says which one.
    let catalog = Catalog::builtin();
    let monday = catalog.get("monday").expect("built in");
    let (no_config, credentials) = (Map::new(), obj(json!({"accessToken": "tok"})));
    let page = page_values(item.pagination.as_ref(), &PagePosition::First);
    let error = monday
        .entity_body(
            &item.request,
            &Values::new(&no_config, &credentials).with_page(&page),
        )
        .expect_err("no board")
        .to_string();
    assert!(error.contains("{config.boardId}"), "{error}");

    let last = json!({"data": {"boards": [{"items_page": {"cursor": null, "items": []}}]}});
    assert_eq!(
        next_position(
            item.pagination.as_ref(),
            &next,
            &last,
            &Default::default(),
            0,
            None,
            &first,
        ),
        None
    );
}

#[test]
fn a_cursor_placeholder_parameter_is_left_out_of_the_first_page() {
    let entity = super::custom_entity(json!({
        "request": {"method": "GET", "path": "/items", "params": {"after": "{page.cursor}", "limit": 50}},
        "records": "results", "id": "id",
        "pagination": {"type": "cursor", "next": "paging.next.after"}
    }));
    let first = rendered_custom(&entity, &PagePosition::First);
    assert_eq!(first.query(), Some("limit=50"));
    let second = rendered_custom(&entity, &PagePosition::Cursor("a b&c".into()));
    assert_eq!(query_param(&second, "after").as_deref(), Some("a b&c"));
}

#[test]
fn page_numbers_and_sizes_keep_their_json_type_in_a_body() {
    let entity = super::custom_entity(json!({
        "request": {"method": "POST", "path": "/search",
                    "body": {"page": "{page.number}", "perPage": "{page.size}", "label": "page {page.number}"}},
        "records": "results", "id": "id",
        "pagination": {"type": "page", "pageSize": 25}
    }));
    let catalog = Catalog::builtin();
    let custom = catalog.get("custom_api").expect("built in");
    let config = obj(json!({"baseUrl": "https://crm.example.com"}));
    let credentials = obj(json!({"apiKey": "k"}));
    let page = page_values(entity.pagination.as_ref(), &PagePosition::Page(3));
    let values = Values::new(&config, &credentials).with_page(&page);
    let body = custom
        .entity_body(&entity.request, &values)
        .expect("renders")
        .expect("a body");
    assert_eq!(body, json!({"page": 3, "perPage": 25, "label": "page 3"}));
}

fn rendered_custom(entity: &EntityDef, position: &PagePosition) -> url::Url {
    rendered(
        "custom_api",
        entity,
        json!({"baseUrl": "https://crm.example.com"}),
        position,
    )
    .0
}

#[test]
fn page_placeholders_are_checked_against_the_pagination_when_loaded() {
    let catalog = Catalog::builtin();
    let custom = catalog.get("custom_api").expect("built in");
    let cases = [
        (
            json!({"request": {"method": "GET", "path": "/i", "params": {"q": "after {page.cursor}"}},
                   "records": "", "id": "id", "pagination": {"type": "cursor", "next": "next"}}),
            "item.request.params.q",
            "{page.cursor} must be the whole value",
        ),
        (
            json!({"request": {"method": "GET", "path": "/i", "params": {"p": "{page.number}"}},
                   "records": "", "id": "id", "pagination": {"type": "cursor", "param": "c", "next": "next"}}),
            "item.request.params.p",
            "{page.number} has no value with cursor pagination",
        ),
        (
            json!({"request": {"method": "GET", "path": "/i", "params": {"p": "{page.size}"}},
                   "records": "", "id": "id"}),
            "item.request.params.p",
            "{page.size} has no value with no pagination",
        ),
        (
            json!({"request": {"method": "GET", "path": "/i"},
                   "records": "", "id": "id", "pagination": {"type": "offset", "pageSize": 10}}),
            "item.pagination.param",
            "is required unless request.params or request.body carries {page.offset} or {page.start}",
        ),
        (
            json!({"request": {"method": "GET", "path": "/i/{page.number}"},
                   "records": "", "id": "id", "pagination": {"type": "page", "pageSize": 10}}),
            "item.request.path",
            "{page.number} is only allowed in a sync entity's request.params and request.body",
        ),
        (
            json!({"request": {"method": "GET", "path": "/i", "body": {"a": 1}},
                   "records": "", "id": "id"}),
            "item.request.method",
            "a GET request has no body: use POST",
        ),
        (
            json!({"request": {"method": "POST", "path": "/i", "body": {"a": 1},
                               "graphql": {"query": "{ a }"}},
                   "records": "", "id": "id"}),
            "item.request.body",
            "a request has either body or graphql, not both",
        ),
        (
            json!({"request": {"method": "POST", "path": "/i", "params": {"p": "{page.first}"}},
                   "records": "", "id": "id"}),
            "item.request.params.p",
            "is not a page placeholder",
        ),
        (
            json!({"request": {"method": "POST", "path": "/graphql",
                               "graphql": {"query": "query ($c: String) { a(cursor: $c) { id } }",
                                           "variables": {"c": "{page.cursor}", "org": "{config.org}"}}},
                   "records": "data.a", "id": "id", "pagination": {"type": "cursor", "next": "data.next"}}),
            "item.request.graphql.variables.org",
            "{config.org} names no declared setting",
        ),
    ];
    for (definition, field, message) in cases {
        let error = custom
            .parse_entities(&json!({ "item": definition }))
            .expect_err("an invalid definition")
            .to_string();
        assert!(
            error.contains(field) && error.contains(message),
            "expected `{field}`: `{message}`, got: {error}"
        );
    }
}
