"""schemathesis hooks of `make test`'s API fuzzing (docs/api-fuzzing.md).

One hook, `filter_failure`, drops exactly one kind of report: "schema-valid request rejected"
(ST202, the positive_data_acceptance check) when the 400 names only rules that JSON Schema cannot
state, because they relate two values of the request or the request to stored state or to DNS.
Each rule is listed below with the reason; docs/decisions.md ("API fuzzing") says the same. Any
other failure of any check is kept, and so is a 400 that names any other field. The number of
dropped reports, by rule, is printed when the run ends, so the exemptions stay visible.

A second hook, `map_case`, adjusts schema-valid requests (and only those) so that they satisfy
what a schema cannot state, and are accepted and stored rather than all refused alike:
- `syncSettings.entities[].localEntity` is unique: later entities repeating one are left out;
- each `syncSettings.fieldMappings[i].localEntity` names one of those entities: it is set to the
  (i mod n)-th one, and the mappings are left out when there is no entity;
- `config.baseUrl` points at the loopback address (scheme, path, query and fragment stay as
  generated): a create or update resolves the URL's host, and a generated host name never
  resolves here; each such request would be one DNS query answered "not found" (~0.2 s), slow and
  testing nothing about this API.
- a recover window (`since`, `until`) lies in the last hour, in order: the API takes a `since`
  within the 14-day log retention and before `until`, rules relative to the time of the request
  that no schema can state, and a generated date-time is almost never that recent.
- an incoming webhook's forward targets point at the loopback address (as above), and the
  integrations it names are the run's real one (`HUB_FUZZ_INTEGRATION_ID`), given to the webhook
  when its actions need one: a generated integration id never exists in the tenant.
- the OAuth callback's `state` is a fresh one from connect (`HUB_FUZZ_CONNECT_URL` with
  `HUB_FUZZ_TOKEN`): a state is an opaque, single-use value only connect issues, so a generated one
  is always the 400 `invalid_state`, and the exchange and redirects behind it would go untested.
  A third hook, `map_query`, does the same for the queries the examples and fuzzing phases build
  before the case, replacing only a non-empty string state (the one thing that makes a callback's
  query valid), so an invalid query stays invalid.
Every change keeps the request valid against the document.
"""

import atexit
import json
import os
import re
import sys
import urllib.request
from collections import Counter
from datetime import datetime, timedelta, timezone
from urllib.parse import parse_qs, urlsplit

import schemathesis

INCOMING_WRITES = {"POST /api/webhooks/incoming", "PATCH /api/webhooks/incoming/{id}"}
OAUTH_CALLBACK = "GET /api/integrations/callback/{provider}"
# The states _fresh_state got from connect (a case mapped twice keeps its first).
ISSUED_STATES = set()

# (rule name, operations it applies to or None for all, field pattern, message pattern)
EXEMPT_FIELDS = [
    # The SSRF guard refuses `config.baseUrl` targets by address (unspecified, multicast, cloud
    # metadata...) and by what a host name resolves to at the time of writing: address ranges and
    # DNS are not something a string schema can state.
    ("baseUrl is a target the SSRF guard allows", None, r"config\.baseUrl",
     r"^address .* is |resolves to|could not be resolved"),
    # The same guard decides an outgoing webhook's `url`.
    ("webhook url is a target the SSRF guard allows", {"POST /api/webhooks/outgoing", "PATCH /api/webhooks/outgoing/{id}"},
     r"url", r"^address .* is |resolves to|could not be resolved"),
    # Webhook headers: the hub refuses, case-insensitively, the headers it sets itself or that would
    # carry a secret in plain configuration; a case-insensitive deny list is not a schema keyword.
    ("webhook headers are headers the hub may send", {"POST /api/webhooks/outgoing", "PATCH /api/webhooks/outgoing/{id}"},
     r"headers\..*", r"is set by the hub"),
    ("webhook signature header is not one the hub sets", {"POST /api/webhooks/outgoing", "PATCH /api/webhooks/outgoing/{id}"},
     r"signatureHeader", r"is set by the hub itself"),
    # The same guard, the same header rules and the same signature header rule for incoming
    # webhooks: a forward action's target and headers, an hmac_sha256 signatureHeader.
    ("forward url is a target the SSRF guard allows", INCOMING_WRITES,
     r"actions\[\d+\]\.config\.forwardUrl", r"^address .* is |resolves to|could not be resolved"),
    ("forward headers are headers the hub may send", INCOMING_WRITES,
     r"actions\[\d+\]\.config\.forwardHeaders\..*", r"is set by the hub"),
    ("hmac signature header is not one the hub sets", INCOMING_WRITES,
     r"verification\.signatureHeader", r"is set by the hub itself"),
    # An incoming webhook's integration (and a trigger_sync's) must be an integration of the tenant:
    # stored state. Entity actions, and a trigger_sync without its own integration, need the
    # webhook's integrationId: a rule between an array's items and another property (and in a
    # PATCH, the stored webhook's values). map_case supplies the run's real integration where it
    # can; these remain for ids it cannot see and for the coverage phase.
    ("incoming webhook integrations are the tenant's and present where actions need them",
     INCOMING_WRITES, r"integrationId|actions\[\d+\]\.config\.integrationId",
     r"is not an integration of your tenant|is required"),
    # A sendgrid key is base64 of 60-200 bytes: the pattern and lengths state the base64, but the
    # decoded size of a padded string is not a character count.
    ("sendgrid publicKey decodes to 60-200 bytes", INCOMING_WRITES,
     r"verification\.publicKey", r"^decodes to \d+ bytes"),
    # A PATCH that changes the scheme must give what the new scheme requires (its provider's
    # secret, sendgrid's key); with the stored scheme, nothing is required. Which applies depends on
    # the stored webhook.
    ("PATCH verification fits the stored scheme", {"PATCH /api/webhooks/incoming/{id}"},
     r"verification\.(secret|publicKey)", r"is required for the"),
    # An outgoing webhook has one secret: rotate-secret's `target` (documented for the path, which
    # both kinds share) is for incoming webhooks only. Which kind an id is, is stored state.
    ("rotate-secret target is for incoming webhooks", {"POST /api/webhooks/{id}/rotate-secret"},
     r"target", r"an outgoing webhook has one secret"),
    # A payload template is JSON text with `{{path}}` placeholders: whether a string is such JSON
    # text is not a property JSON Schema can state.
    ("payloadTemplate is JSON text with closed placeholders", {"POST /api/webhooks/outgoing", "PATCH /api/webhooks/outgoing/{id}"},
     r"payloadTemplate", r".*"),
    # Each entity type appears in one trigger only: uniqueness of one property across array items.
    ("one trigger per entity type", {"POST /api/webhooks/outgoing", "PATCH /api/webhooks/outgoing/{id}"},
     r"triggers\[\d+\]\.entityType", r"is already the entity type of"),
    # At most 16 KiB of JSON: a size in bytes of the serialised value is not a JSON Schema keyword.
    ("config at most 16 KiB", None, r"config", r"at most \d+ bytes"),
    # Free-form values (config, transform options, default and filter values) nest at most 16
    # levels deep, what DynamoDB leaves for them: a bound on the depth of a recursive value, which a
    # schema could only state by being written out 16 times.
    ("free-form JSON at most 16 levels deep", None, r"config.*|syncSettings\..*|filters\.bodyValue.*", r"nests more than \d+ levels deep"),
    # An update is checked against the integration's provider, which is stored state: the body
    # of a PATCH does not say which provider's credential fields and entities apply.
    ("PATCH credentials fit the stored provider", {"PATCH /api/integrations/{id}"},
     r"credentials(\..*)?", r"is not a credential field of|takes no credential fields|cannot be set here"),
    ("PATCH config fits the stored provider's settings", {"PATCH /api/integrations/{id}"},
     r"config(\..*)?", r".*"),
    ("PATCH entities exist at the stored provider", {"PATCH /api/integrations/{id}"},
     r"syncSettings\.entities\[\d+\]\.remoteEntity", r"the provider has no entity"),
    # custom_api defines its entities in the request's own `config.entities` (catalog entity
    # definitions, documented in docs/catalog.md): names and definitions refer to each other.
    # custom_api `config.headers` are sent to the tenant's API: the hub refuses the headers it sets
    # itself or that carry secrets (Authorization, Host, Cookie, ...), case-insensitively, and
    # values an HTTP header cannot carry; a case-insensitive name list is not a schema keyword.
    ("custom_api headers are headers the hub may send", {"POST /api/integrations", "PATCH /api/integrations/{id}"},
     r"config\.headers(\..*)?", r".*"),
    ("custom_api entities come from config.entities", {"POST /api/integrations", "PATCH /api/integrations/{id}"},
     r"syncSettings\.entities\[\d+\]\.remoteEntity|config\.entities(\..*)?", r".*"),
    # A recover window is in order, `until` being now when absent or later: a rule relative to the
    # time of the request. map_case moves generated windows into the last hour, but the coverage
    # phase sends its boundary values as they are.
    ("recover window in order", {"POST /api/webhooks/outgoing/{id}/recover"},
     r"since", r"before until"),
]

dropped = Counter()
URL_AUTHORITY = re.compile(r"^(https?://)[^/?#@]+(.*)$", re.S)


def _problem(response):
    try:
        return json.loads(response.content or b"")
    except ValueError:
        return None


def _exempt_rule(operation, provider, error):
    field, message = error.get("field", ""), error.get("message", "")
    for name, operations, field_pattern, message_pattern in EXEMPT_FIELDS:
        if operations is not None and operation not in operations:
            continue
        if name.startswith("custom_api") and operation.startswith("POST") and provider != "custom_api":
            continue
        if re.fullmatch(field_pattern, field) and re.search(message_pattern, message):
            return name
    return None


@schemathesis.hook
def filter_failure(context, failure, case, response):
    if failure.code != "ST202" or response.status_code != 400:
        return True
    problem = _problem(response)
    if not isinstance(problem, dict):
        return True
    operation = case.operation.label
    if problem.get("code") == "not_supported" and operation == "POST /api/integrations/{id}/test":
        # Whether an integration can be tested depends on its stored provider (`healthCheck` in
        # the catalog), not on the request: 400 not_supported is the documented answer.
        dropped["test needs a provider with a health check"] += 1
        return False
    if problem.get("code") == "not_supported" and operation == "POST /api/webhooks/{id}/rotate-secret":
        # Whether a secret can be rotated depends on the stored webhook: a secret the hub generated
        # (not one a provider gave), a forward action for target=forward.
        dropped["rotate-secret needs a secret the hub generated"] += 1
        return False
    if problem.get("code") == "invalid_cursor":
        # A cursor is an opaque, signed token only this API issues: a generated one is a forgery,
        # and 400 invalid_cursor is the documented answer. Real cursors are followed by the
        # conformance test (tests/tests/openapi_conformance.rs).
        dropped["cursor issued by this API"] += 1
        return False
    errors = problem.get("errors") or []
    if problem.get("code") != "validation_failed" or not errors:
        return True
    provider = case.body.get("provider") if isinstance(case.body, dict) else None
    rules = [_exempt_rule(operation, provider, error) for error in errors]
    if any(rule is None for rule in rules):
        # Kept: say which errors no rule covers (the report itself truncates the body).
        kept = [e for e, rule in zip(errors, rules) if rule is None]
        print(f"api-fuzz hooks: kept {operation}: {json.dumps(kept, ensure_ascii=False)[:2000]}",
              file=sys.stderr)
        return True
    for rule in set(rules):
        dropped[rule] += 1
    return False


@schemathesis.hook
def map_case(context, case):
    meta = getattr(case, "meta", None)
    if case.operation.label == OAUTH_CALLBACK:
        if meta is None or meta.generation.mode.is_positive:
            case.query = dict(case.query or {})
            if case.query.get("state") not in ISSUED_STATES:
                case.query["state"] = _fresh_state()
        return case
    if meta is None or not meta.generation.mode.is_positive or not isinstance(case.body, dict):
        return case
    settings = case.body.get("syncSettings")
    if isinstance(settings, dict):
        _declare_mapped_entities(settings)
    config = case.body.get("config")
    url = config.get("baseUrl") if isinstance(config, dict) else None
    match = URL_AUTHORITY.match(url) if isinstance(url, str) else None
    if match:
        config["baseUrl"] = f"{match.group(1)}127.0.0.1{match.group(2)}"
    # An outgoing webhook's target too: a generated host name would be a DNS query each.
    target = case.body.get("url")
    match = URL_AUTHORITY.match(target) if isinstance(target, str) else None
    if case.operation.label in ("POST /api/webhooks/outgoing", "PATCH /api/webhooks/outgoing/{id}"):
        if match:
            case.body["url"] = f"{match.group(1)}127.0.0.1{match.group(2)}"
        # Two cross-field rules a schema cannot state, met the way a client would: one trigger per
        # entity type (later repeats left out), and a template that is JSON text (a generated string
        # almost never is; one with a placeholder replaces it).
        triggers = case.body.get("triggers")
        if isinstance(triggers, list):
            seen, unique = set(), []
            for trigger in triggers:
                entity = trigger.get("entityType") if isinstance(trigger, dict) else None
                if entity not in seen:
                    seen.add(entity)
                    unique.append(trigger)
            case.body["triggers"] = unique
        if isinstance(case.body.get("payloadTemplate"), str):
            case.body["payloadTemplate"] = '{"event": "{{type}}", "data": "{{data}}"}'
    if case.operation.label in INCOMING_WRITES:
        _meet_incoming_rules(case.body)
    if case.operation.label == "POST /api/webhooks/outgoing/{id}/recover":
        now = datetime.now(timezone.utc)
        if "since" in case.body:
            case.body["since"] = (now - timedelta(hours=1)).isoformat()
        if "until" in case.body:
            case.body["until"] = now.isoformat()
    return case


@schemathesis.hook
def map_query(context, query):
    # The examples and fuzzing phases build a callback's query before the case (map_case does not
    # see those of the examples phase). Only the state can make a callback's query invalid
    # (required, non-empty; the other parameters are any strings), so a non-empty string state is
    # replaced and a missing, empty or non-string one is kept: validity is unchanged either way.
    operation = getattr(context, "operation", None)
    if operation is None or operation.label != OAUTH_CALLBACK or not isinstance(query, dict):
        return query
    state = query.get("state")
    if isinstance(state, str) and state and state not in ISSUED_STATES:
        query = dict(query)
        query["state"] = _fresh_state()
    return query


def _fresh_state():
    """A state connect just issued (it asks for the JSON answer, so nothing redirects)."""
    request = urllib.request.Request(
        os.environ["HUB_FUZZ_CONNECT_URL"],
        headers={"Authorization": f"Bearer {os.environ['HUB_FUZZ_TOKEN']}", "Accept": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=60) as response:
        authorize_url = json.loads(response.read())["authorizeUrl"]
    state = parse_qs(urlsplit(authorize_url).query)["state"][0]
    ISSUED_STATES.add(state)
    return state


def _meet_incoming_rules(body):
    """Forward targets point at the loopback address (as an outgoing webhook's url), and the
    integrations named are the run's real one (HUB_FUZZ_INTEGRATION_ID), given to the webhook when
    its actions need one: generated ids never exist."""
    integration = os.environ.get("HUB_FUZZ_INTEGRATION_ID")
    actions = body.get("actions")
    needs_integration = False
    if isinstance(actions, list):
        for action in actions:
            config = action.get("config") if isinstance(action, dict) else None
            if not isinstance(config, dict):
                continue
            kind = action.get("type")
            target = config.get("forwardUrl")
            match = URL_AUTHORITY.match(target) if isinstance(target, str) else None
            if kind == "forward" and match:
                config["forwardUrl"] = f"{match.group(1)}127.0.0.1{match.group(2)}"
            if kind == "trigger_sync" and integration and isinstance(config.get("integrationId"), str):
                config["integrationId"] = integration
            if kind in ("create_entity", "update_entity") or (
                    kind == "trigger_sync" and not config.get("integrationId")):
                needs_integration = True
    if integration and (isinstance(body.get("integrationId"), str)
                        or (needs_integration and body.get("integrationId") is None)):
        body["integrationId"] = integration


def _declare_mapped_entities(settings):
    entities = settings.get("entities")
    names = []
    if isinstance(entities, list):
        unique = []
        for entity in entities:
            name = entity.get("localEntity") if isinstance(entity, dict) else None
            if name not in names:
                names.append(name)
                unique.append(entity)
        settings["entities"] = unique
    mappings = settings.get("fieldMappings")
    if isinstance(mappings, list) and mappings:
        if not names:
            settings["fieldMappings"] = []
        for i, mapping in enumerate(settings["fieldMappings"]):
            if isinstance(mapping, dict):
                mapping["localEntity"] = names[i % len(names)]


@atexit.register
def _report():
    total = sum(dropped.values())
    lines = [f"  {count:5}  {rule}" for rule, count in sorted(dropped.items())]
    print(f"api-fuzz hooks: {total} ST202 reports dropped as inexpressible rules (docs/decisions.md)",
          *lines, sep="\n", file=sys.stderr)
