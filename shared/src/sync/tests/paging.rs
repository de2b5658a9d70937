use http::header::LINK;
use http::{HeaderMap, HeaderValue};
use serde_json::{json, Value};
use url::Url;

use super::{builtin_entity, custom_entity};
use crate::catalog::Pagination;
use crate::sync::{
    next_position, page_request, parse_link_next, position_fits, PagePosition, PageRequest,
};

fn url(text: &str) -> Url {
    Url::parse(text).expect("a URL")
}

fn links(values: &[&str]) -> HeaderMap {
    let mut headers = HeaderMap::new();
    for value in values {
        headers.append(LINK, HeaderValue::from_str(value).expect("a header value"));
    }
    headers
}

fn query(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs
        .iter()
        .map(|(name, value)| (name.to_string(), value.to_string()))
        .collect()
}

fn pagination(provider: &str, entity: &str) -> Pagination {
    builtin_entity(provider, entity)
        .pagination
        .expect("the entity pages")
}

/// The next position after a page that only the body decides (cursor, has_more).
fn after_body(
    pagination: &Pagination,
    position: &PagePosition,
    body: &Value,
    last_id: Option<&str>,
) -> Option<PagePosition> {
    next_position(
        Some(pagination),
        position,
        body,
        &HeaderMap::new(),
        1,
        last_id,
        &url("https://api.example.com/items"),
    )
}

/// The next position after a page of `count` records (offset, page).
fn after_count(
    pagination: &Pagination,
    position: &PagePosition,
    count: usize,
) -> Option<PagePosition> {
    next_position(
        Some(pagination),
        position,
        &json!({}),
        &HeaderMap::new(),
        count,
        None,
        &url("https://api.example.com/items"),
    )
}

#[test]
fn google_calendar_follows_next_page_token_until_the_last_page() {
    let google = pagination("google_calendar", "event");
    assert_eq!(
        page_request(Some(&google), &PagePosition::First),
        PageRequest::default()
    );
    let first = json!({"kind": "calendar#events", "items": [{"id": "1"}],
                       "nextPageToken": "CiAKGjBpNDd2Nmp2Zml2cXRwYjBpOXA"});
    let next = after_body(&google, &PagePosition::First, &first, Some("1")).expect("a next page");
    assert_eq!(
        next,
        PagePosition::Cursor("CiAKGjBpNDd2Nmp2Zml2cXRwYjBpOXA".into())
    );
    assert_eq!(
        page_request(Some(&google), &next).query,
        query(&[("pageToken", "CiAKGjBpNDd2Nmp2Zml2cXRwYjBpOXA")])
    );
    // Google may send an empty page that still has a next token: paging goes on.
    let empty = json!({"items": [], "nextPageToken": "second"});
    assert_eq!(
        next_position(
            Some(&google),
            &next,
            &empty,
            &HeaderMap::new(),
            0,
            None,
            &url("https://x.io/")
        ),
        Some(PagePosition::Cursor("second".into()))
    );
    let last = json!({"items": [{"id": "9"}], "nextSyncToken": "CPDAlvWDx70CEPDAlvWDx70CGAU="});
    assert_eq!(after_body(&google, &next, &last, Some("9")), None);
}

#[test]
fn an_absent_empty_null_or_repeated_cursor_ends_paging() {
    let google = pagination("google_calendar", "event");
    for body in [
        json!({"items": []}),
        json!({"nextPageToken": ""}),
        json!({"nextPageToken": null}),
        json!({"nextPageToken": false}),
        json!({"nextPageToken": {"token": "x"}}),
    ] {
        assert_eq!(
            after_body(&google, &PagePosition::First, &body, None),
            None,
            "{body}"
        );
    }
    let repeated = json!({"nextPageToken": "same"});
    assert_eq!(
        after_body(
            &google,
            &PagePosition::Cursor("same".into()),
            &repeated,
            None
        ),
        None
    );
    assert_eq!(
        after_body(
            &google,
            &PagePosition::First,
            &json!({"nextPageToken": 12}),
            None
        ),
        Some(PagePosition::Cursor("12".into()))
    );
}

#[test]
fn hubspot_reads_its_cursor_at_a_nested_path() {
    let hubspot = pagination("hubspot", "contact");
    let body = json!({"results": [{"id": "51"}],
                      "paging": {"next": {"after": "NTI1Cg%3D%3D", "link": "?after=NTI1Cg%3D%3D"}}});
    let next = after_body(&hubspot, &PagePosition::First, &body, Some("51")).expect("next");
    assert_eq!(
        page_request(Some(&hubspot), &next).query,
        query(&[("after", "NTI1Cg%3D%3D")])
    );
    assert_eq!(
        after_body(
            &hubspot,
            &next,
            &json!({"results": [{"id": "52"}]}),
            Some("52")
        ),
        None
    );
}

#[test]
fn slack_stops_at_an_empty_next_cursor() {
    let slack = pagination("slack", "conversation");
    let more = json!({"ok": true, "channels": [], "response_metadata": {"next_cursor": "dGVhbTpDMDYxRkE1UEI="}});
    assert_eq!(
        after_body(&slack, &PagePosition::First, &more, None),
        Some(PagePosition::Cursor("dGVhbTpDMDYxRkE1UEI=".into()))
    );
    let last = json!({"ok": true, "channels": [], "response_metadata": {"next_cursor": ""}});
    assert_eq!(
        after_body(&slack, &PagePosition::Cursor("x".into()), &last, None),
        None
    );
}

#[test]
fn offset_sends_records_seen_and_the_limit_until_a_short_page() {
    // Outlook: $skip/$top, 100 a page.
    let outlook = pagination("outlook_calendar", "event");
    assert_eq!(
        page_request(Some(&outlook), &PagePosition::First).query,
        query(&[("$skip", "0"), ("$top", "100")])
    );
    let second = after_count(&outlook, &PagePosition::First, 100).expect("a full page");
    assert_eq!(second, PagePosition::Offset(100));
    assert_eq!(
        page_request(Some(&outlook), &second).query,
        query(&[("$skip", "100"), ("$top", "100")])
    );
    // A provider that returns more than asked still advances by what it returned.
    assert_eq!(
        after_count(&outlook, &second, 120),
        Some(PagePosition::Offset(220))
    );
    assert_eq!(after_count(&outlook, &second, 99), None);
    assert_eq!(after_count(&outlook, &second, 0), None);
    // Mailchimp: offset/count.
    let mailchimp = pagination("mailchimp", "list");
    assert_eq!(
        page_request(Some(&mailchimp), &PagePosition::Offset(200)).query,
        query(&[("offset", "200"), ("count", "100")])
    );
}

#[test]
fn offset_and_page_without_a_size_parameter_send_none_and_still_detect_the_last_page() {
    let offset = custom_entity(json!({
        "request": {"method": "GET", "path": "/items"}, "records": "items", "id": "id",
        "pagination": {"type": "offset", "param": "start", "pageSize": 50}
    }))
    .pagination
    .expect("pages");
    assert_eq!(
        page_request(Some(&offset), &PagePosition::First).query,
        query(&[("start", "0")])
    );
    assert_eq!(
        after_count(&offset, &PagePosition::First, 50),
        Some(PagePosition::Offset(50))
    );
    assert_eq!(after_count(&offset, &PagePosition::Offset(50), 49), None);
    let page = custom_entity(json!({
        "request": {"method": "GET", "path": "/items"}, "records": "items", "id": "id",
        "pagination": {"type": "page", "param": "p", "pageSize": 25}
    }))
    .pagination
    .expect("pages");
    assert_eq!(
        page_request(Some(&page), &PagePosition::Page(3)).query,
        query(&[("p", "3")])
    );
    assert_eq!(
        after_count(&page, &PagePosition::Page(3), 25),
        Some(PagePosition::Page(4))
    );
    assert_eq!(after_count(&page, &PagePosition::Page(4), 24), None);
}

#[test]
fn page_numbers_start_at_one_and_stop_at_a_short_page() {
    // Xero contacts: page/pageSize, 100 a page.
    let xero = pagination("xero", "contact");
    assert_eq!(
        page_request(Some(&xero), &PagePosition::First).query,
        query(&[("page", "1"), ("pageSize", "100")])
    );
    let second = after_count(&xero, &PagePosition::First, 100).expect("a full page");
    assert_eq!(second, PagePosition::Page(2));
    assert_eq!(
        page_request(Some(&xero), &second).query,
        query(&[("page", "2"), ("pageSize", "100")])
    );
    assert_eq!(
        after_count(&xero, &second, 100),
        Some(PagePosition::Page(3))
    );
    assert_eq!(after_count(&xero, &PagePosition::Page(3), 7), None);
    assert_eq!(after_count(&xero, &PagePosition::Page(3), 0), None);
}

#[test]
fn stripe_continues_after_the_last_id_while_has_more_is_true() {
    let stripe = pagination("stripe", "customer");
    assert_eq!(
        page_request(Some(&stripe), &PagePosition::First),
        PageRequest::default()
    );
    let more = json!({"object": "list", "url": "/v1/customers", "has_more": true,
                      "data": [{"id": "cus_1"}, {"id": "cus_NffrFeUfNV2Hib"}]});
    let next = after_body(
        &stripe,
        &PagePosition::First,
        &more,
        Some("cus_NffrFeUfNV2Hib"),
    )
    .expect("more");
    assert_eq!(
        next,
        PagePosition::StartingAfter("cus_NffrFeUfNV2Hib".into())
    );
    assert_eq!(
        page_request(Some(&stripe), &next).query,
        query(&[("starting_after", "cus_NffrFeUfNV2Hib")])
    );
    let last = json!({"object": "list", "has_more": false, "data": [{"id": "cus_9"}]});
    assert_eq!(after_body(&stripe, &next, &last, Some("cus_9")), None);
    // Only a JSON true continues; a page without an id to continue after cannot.
    for has_more in [json!("true"), json!(1), json!(null)] {
        let body = json!({"has_more": has_more, "data": [{"id": "cus_9"}]});
        assert_eq!(
            after_body(&stripe, &next, &body, Some("cus_9")),
            None,
            "{has_more}"
        );
    }
    assert_eq!(after_body(&stripe, &next, &more, None), None);
    assert_eq!(after_body(&stripe, &next, &more, Some("")), None);
    assert_eq!(
        after_body(&stripe, &next, &more, Some("cus_NffrFeUfNV2Hib")),
        None,
        "the same id again"
    );
}

#[test]
fn an_entity_without_pagination_is_one_page() {
    let figma = builtin_entity("figma", "file");
    assert_eq!(figma.pagination, None);
    assert_eq!(
        page_request(None, &PagePosition::First),
        PageRequest::default()
    );
    let body = json!({"files": [{"key": "a"}], "nextPageToken": "x"});
    let headers = links(&[r#"<https://api.figma.com/v1/next>; rel="next""#]);
    assert_eq!(
        next_position(
            None,
            &PagePosition::First,
            &body,
            &headers,
            500,
            Some("a"),
            &url("https://api.figma.com/v1/projects/1/files")
        ),
        None
    );
}

#[test]
fn link_headers_give_the_next_url_among_several_links() {
    let base = url("https://api.github.com/repos/o/r/issues?per_page=100");
    let github = links(&[concat!(
        r#"<https://api.github.com/repositories/1300192/issues?per_page=100&page=1>; rel="prev", "#,
        r#"<https://api.github.com/repositories/1300192/issues?per_page=100&page=3>; rel="next", "#,
        r#"<https://api.github.com/repositories/1300192/issues?per_page=100&page=50>; rel="last""#
    )]);
    assert_eq!(
        parse_link_next(&github, &base),
        Some(url(
            "https://api.github.com/repositories/1300192/issues?per_page=100&page=3"
        ))
    );
    // One link per header line, next in the second.
    let separate = links(&[
        r#"<https://api.example.com/items?page=1>; rel="first""#,
        r#"<https://api.example.com/items?page=2>; rel="next""#,
    ]);
    assert_eq!(
        parse_link_next(&separate, &base),
        Some(url("https://api.example.com/items?page=2"))
    );
    assert_eq!(
        parse_link_next(&links(&[r#"<https://x.io/a>; rel="last""#]), &base),
        None
    );
    assert_eq!(parse_link_next(&HeaderMap::new(), &base), None);
}

#[test]
fn link_relations_may_be_unquoted_several_or_in_any_case() {
    let base = url("https://api.example.com/v1/items");
    for header in [
        "<https://api.example.com/v1/items?c=2>; rel=next",
        "<https://api.example.com/v1/items?c=2>;rel=\"prev next\"",
        "<https://api.example.com/v1/items?c=2>; REL=\"NEXT\"",
        "<https://api.example.com/v1/items?c=2>; title=\"a, b; c\"; rel=\"next\"",
        "<https://api.example.com/v1/items?c=2> ; rel = \"next last\" ; type=\"application/json\"",
        // A malformed link does not hide the next one.
        "garbage, <https://api.example.com/v1/items?c=2>; rel=next",
        "<https://api.example.com/v1/items?c=1>; rel=\"nextpage\", <https://api.example.com/v1/items?c=2>; rel=next",
    ] {
        assert_eq!(
            parse_link_next(&links(&[header]), &base),
            Some(url("https://api.example.com/v1/items?c=2")),
            "{header}"
        );
    }
}

#[test]
fn only_the_first_rel_of_a_link_counts_and_anchored_links_are_passed_over() {
    let base = url("https://api.example.com/items");
    assert_eq!(
        parse_link_next(
            &links(&[r#"<https://x.io/b>; rel="last"; rel="next""#]),
            &base
        ),
        None
    );
    assert_eq!(
        parse_link_next(
            &links(&[r#"<https://x.io/b>; anchor="https://x.io/other"; rel="next""#]),
            &base
        ),
        None
    );
    assert_eq!(
        parse_link_next(
            &links(&[r#"<mailto:ops@x.io>; rel="next", <https://x.io/c>; rel="next""#]),
            &base
        ),
        Some(url("https://x.io/c"))
    );
}

#[test]
fn relative_link_targets_resolve_against_the_request_url() {
    let base = url("https://api.example.com/v2/contacts?limit=50&cursor=abc");
    for (target, expected) in [
        (
            "/v2/contacts?cursor=def",
            "https://api.example.com/v2/contacts?cursor=def",
        ),
        (
            "?cursor=def",
            "https://api.example.com/v2/contacts?cursor=def",
        ),
        (
            "contacts?cursor=def",
            "https://api.example.com/v2/contacts?cursor=def",
        ),
        ("//cdn.example.com/page/2", "https://cdn.example.com/page/2"),
        (
            "https://other.example.com/p?x=1",
            "https://other.example.com/p?x=1",
        ),
    ] {
        let header = format!("<{target}>; rel=\"next\"");
        assert_eq!(
            parse_link_next(&links(&[&header]), &base),
            Some(url(expected)),
            "{target}"
        );
    }
}

#[test]
fn link_header_paging_requests_the_next_url_as_given_until_there_is_none() {
    let entity = custom_entity(json!({
        "request": {"method": "GET", "path": "/items"}, "records": "", "id": "id",
        "pagination": {"type": "link_header"}
    }));
    let pagination = entity.pagination.expect("pages");
    assert_eq!(
        page_request(Some(&pagination), &PagePosition::First),
        PageRequest::default()
    );
    let request_url = url("https://api.example.com/items?per_page=100");
    let headers = links(&[r#"</items?per_page=100&page=2>; rel="next""#]);
    let next = next_position(
        Some(&pagination),
        &PagePosition::First,
        &json!([{"id": 1}]),
        &headers,
        1,
        Some("1"),
        &request_url,
    )
    .expect("a next page");
    assert_eq!(
        next,
        PagePosition::Link("https://api.example.com/items?per_page=100&page=2".into())
    );
    assert_eq!(
        page_request(Some(&pagination), &next),
        PageRequest {
            query: Vec::new(),
            url: Some(url("https://api.example.com/items?per_page=100&page=2"))
        }
    );
    let second_url = url("https://api.example.com/items?per_page=100&page=2");
    assert_eq!(
        next_position(
            Some(&pagination),
            &next,
            &json!([]),
            &HeaderMap::new(),
            0,
            None,
            &second_url
        ),
        None
    );
    // A next link back to the page just read would loop: it ends paging.
    let itself = links(&[r#"<?per_page=100&page=2>; rel="next""#]);
    assert_eq!(
        next_position(
            Some(&pagination),
            &next,
            &json!([{"id": 2}]),
            &itself,
            1,
            Some("2"),
            &second_url
        ),
        None
    );
}

#[test]
fn a_position_of_another_pagination_type_restarts_at_the_first_page() {
    let xero = pagination("xero", "contact");
    assert!(position_fits(Some(&xero), &PagePosition::Page(4)));
    assert!(!position_fits(Some(&xero), &PagePosition::Page(0)));
    assert!(!position_fits(
        Some(&xero),
        &PagePosition::Cursor("abc".into())
    ));
    assert!(position_fits(None, &PagePosition::First));
    assert!(!position_fits(None, &PagePosition::Offset(3)));
    assert_eq!(
        page_request(Some(&xero), &PagePosition::Cursor("abc".into())).query,
        query(&[("page", "1"), ("pageSize", "100")])
    );
    let link = custom_entity(json!({
        "request": {"method": "GET", "path": "/items"}, "records": "", "id": "id",
        "pagination": {"type": "link_header"}
    }))
    .pagination
    .expect("pages");
    assert!(!position_fits(
        Some(&link),
        &PagePosition::Link("/relative".into())
    ));
    assert!(!position_fits(
        Some(&link),
        &PagePosition::Link("ftp://x.io/a".into())
    ));
    assert_eq!(
        page_request(Some(&link), &PagePosition::Link("not a url".into())),
        PageRequest::default()
    );
}

#[test]
fn positions_serialise_for_the_checkpoint_and_read_back() {
    let positions = [
        (PagePosition::First, json!("first")),
        (
            PagePosition::Cursor("CiAK".into()),
            json!({"cursor": "CiAK"}),
        ),
        (PagePosition::Offset(200), json!({"offset": 200})),
        (PagePosition::Page(3), json!({"page": 3})),
        (
            PagePosition::Link("https://x.io/a?page=2".into()),
            json!({"link": "https://x.io/a?page=2"}),
        ),
        (
            PagePosition::StartingAfter("cus_1".into()),
            json!({"starting_after": "cus_1"}),
        ),
    ];
    for (position, expected) in positions {
        let json = serde_json::to_value(&position).expect("serialises");
        assert_eq!(json, expected);
        assert_eq!(
            serde_json::from_value::<PagePosition>(json).expect("reads back"),
            position
        );
    }
}
