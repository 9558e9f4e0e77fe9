"""Property-based fuzzing of the management API against its own description, docs/openapi.json.

Schemathesis generates requests for every documented operation, valid ones (positive) and ones that
break the schema (negative), and sends them with the system key along each of `conftest.PATHS`:
`durable-ext start`'s Durable Functions path, the app's management functions under the same
process, and those functions in the fake Functions host with Azure's settings. For every input:

* no 5xx (no input may crash a handler);
* no hang: every call answers within `CALL_TIMEOUT` (the `timeout` a caller may ask the API to wait
  for an instance is capped first, so a legitimate long wait is not taken for a hang);
* the response conforms to the description: a documented status code, content type, headers and
  body schema.

A second test sends only schema-breaking requests to the operations that write, and checks that
every one the API rejected (4xx) left the Instances and History tables and every queue as they
were. A third sends valid requests of every operation without the key, with a wrong one, or by a
method the path does not document: each must be refused (401 for the key) and change nothing.
Examples are derandomized (the same inputs every run) and bounded to keep the module well under
a minute.
"""

from __future__ import annotations

import json
import secrets
import urllib.request
from collections import Counter
from typing import Any

import hypothesis
import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from schemathesis import GenerationMode
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from tests.azurite import REPO_ROOT
from tests.fuzz.conftest import PATHS, FuzzApi

SPEC = REPO_ROOT / "docs" / "openapi.json"
CALL_TIMEOUT = 15.0
MAX_WAIT = 1.0
"""Seconds: the most a fuzzed `timeout` query value may ask the API to wait for an instance."""
CHECKS = [
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
]
FUZZ = settings(
    max_examples=12,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=list(HealthCheck),
)

schema = schemathesis.openapi.from_path(SPEC)
NEGATIVE_ANSWERS: dict[str, Counter[int]] = {path: Counter() for path in PATHS}
"""Status codes the schema-breaking writes got on each path (checked by the last test)."""


def bounded(case: Any) -> None:
    """Cap the wait a request asks for (`timeout`, `pollingInterval` in seconds)."""
    query = case.query or {}
    for name in ("timeout", "pollingInterval"):
        value = query.get(name)
        try:
            if value is not None and float(value) > MAX_WAIT:
                query[name] = str(MAX_WAIT)
        except (TypeError, ValueError):
            pass


def call(case: Any, api: FuzzApi, headers: dict[str, str] | None = None) -> Any:
    """Send `case` to `api` with the system key (or with `headers` instead)."""
    bounded(case)
    if headers is None:
        headers = {"x-functions-key": api.key}
    return case.call(base_url=api.api_url, headers=headers, timeout=CALL_TIMEOUT)


@schema.parametrize()
@FUZZ
def test_any_request_gets_a_documented_answer_and_never_a_500(case: Any, fuzz_api: FuzzApi) -> None:
    response = call(case, fuzz_api)
    status = response.status_code
    assert status < 500, (
        f"{status} for {case.method} {case.formatted_path} {case.query}: {response.text[:500]}"
    )
    case.validate_response(response, checks=CHECKS)


def test_a_trailing_slash_names_the_same_route(fuzz_api: FuzzApi) -> None:
    """As the Functions host matches routes (the description lists `/instances/` too); found by
    the fuzzer: `durable-ext start` answered 404 there on its management functions' path."""
    status, body = fuzz_api.request("GET", "/instances/?instanceIdPrefix=fuzz-waiting")
    assert status == 200, body
    assert [status["instanceId"] for status in body] == ["fuzz-waiting"]


def test_routes_match_in_any_case_and_a_wrong_method_is_not_found(fuzz_api: FuzzApi) -> None:
    """As the Functions host routes: `durable-ext start` answered 404 to another case and 405
    to a method the function does not take (the webhook path answers for itself: 404 too)."""
    if fuzz_api.name != "webhook":
        upper = fuzz_api.api_url.upper().replace("HTTP://", "http://")
        request = urllib.request.Request(
            f"{upper}/INSTANCES/?instanceIdPrefix=fuzz-waiting",
            headers={"x-functions-key": fuzz_api.key},
        )
        with urllib.request.urlopen(request, timeout=30) as response:
            assert [s["instanceId"] for s in json.loads(response.read())] == ["fuzz-waiting"]
    status, _ = fuzz_api.request("PATCH", "/instances/fuzz-waiting")
    assert status == 404


TOO_LARGE = 100 * 1024 * 1024 + 1
"""Bytes: over the body limit of `durable-ext start` (64 MiB) and the Functions host's (100 MiB)."""


@pytest.mark.parametrize(
    ("path", "body", "expected"),
    [
        ("/orchestrators/hello/fuzz-new", b'{"not": json}', 400),
        ("/instances/fuzz-waiting/raiseEvent/go", b'"\xff\xfe is not UTF-8"', 400),
        ("/orchestrators/hello/fuzz-new", TOO_LARGE, 413),
    ],
    ids=["not JSON", "not UTF-8", "too large"],
)
def test_a_body_that_is_not_json_or_too_large_is_refused_and_changes_nothing(
    fuzz_api: FuzzApi, path: str, body: bytes | int, expected: int
) -> None:
    """`body`: the bytes, or the size of a JSON string to send."""
    data = body if isinstance(body, bytes) else b'"' + b"x" * (body - 2) + b'"'
    before = fuzz_api.snapshot()
    status, answer = fuzz_api.request("POST", path, data)
    assert status == expected, answer
    assert fuzz_api.snapshot() == before


def _operations(*methods: str) -> list[Any]:
    """The operations of the description with these methods (it must load without errors)."""
    operations = []
    for result in schema.get_all_operations():
        operation = result.ok()  # type: ignore[union-attr]  # an Err raises: the spec is broken
        if operation.method.upper() in methods:
            operations.append(operation)
    return operations


NEGATIVE_WRITES = st.sampled_from(_operations("POST", "DELETE")).flatmap(
    lambda operation: operation.as_strategy(generation_mode=GenerationMode.NEGATIVE)
)


@hypothesis.given(case=NEGATIVE_WRITES)
@settings(FUZZ, max_examples=40)
def test_a_rejected_request_changes_nothing(case: Any, fuzz_api: FuzzApi) -> None:
    before = fuzz_api.snapshot()
    response = call(case, fuzz_api)
    NEGATIVE_ANSWERS[fuzz_api.name][response.status_code] += 1
    assert response.status_code < 500, (
        case.method,
        case.formatted_path,
        response.text,
    )
    if 400 <= response.status_code < 500:
        after = fuzz_api.snapshot()
        assert after == before, (
            f"{case.method} {case.formatted_path} {case.query} was refused with "
            f"{response.status_code} but changed storage"
        )


def test_the_schema_breaking_writes_were_mostly_refused(fuzz_api: FuzzApi) -> None:
    """The previous test proves something only if its requests were refused: most must have been
    (some schema-breaking values are harmless, e.g. an unknown query parameter)."""
    answers = NEGATIVE_ANSWERS[fuzz_api.name]
    refused = sum(n for status, n in answers.items() if 400 <= status < 500)
    assert refused >= 20, dict(answers)


METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE")
WRONG_KEY = secrets.token_urlsafe(32)
KEY_FAULTS = ("no key", "a wrong x-functions-key", "a wrong code=")


def _faulty(operation: Any) -> st.SearchStrategy[tuple[Any, str]]:
    """A valid request of `operation` and what is wrong with it: one of KEY_FAULTS, or a method
    the path does not document."""
    documented = {name.upper() for name in schema.raw_schema["paths"][operation.path]}
    faults = [*KEY_FAULTS, *(m for m in METHODS if m not in documented)]
    return st.tuples(
        operation.as_strategy(generation_mode=GenerationMode.POSITIVE), st.sampled_from(faults)
    )


@hypothesis.given(request=st.sampled_from(_operations(*METHODS)).flatmap(_faulty))
@settings(FUZZ, max_examples=30)
def test_a_request_without_the_key_or_by_a_wrong_method_is_refused_and_changes_nothing(
    request: tuple[Any, str], fuzz_api: FuzzApi
) -> None:
    case, fault = request
    headers = {"x-functions-key": fuzz_api.key}
    case.query = {k: v for k, v in (case.query or {}).items() if k.lower() != "code"}
    if fault in METHODS:
        case.method = fault
    elif fault == "a wrong code=":
        headers, case.query["code"] = {}, WRONG_KEY
    else:
        headers = {"x-functions-key": WRONG_KEY} if fault == "a wrong x-functions-key" else {}
    before = fuzz_api.snapshot()
    response = call(case, fuzz_api, headers)
    what = f"{case.method} {case.formatted_path} {case.query} with {fault}"
    if fault in KEY_FAULTS:
        assert response.status_code == 401, (what, response.status_code, response.text[:500])
    else:
        assert 400 <= response.status_code < 500, (what, response.status_code, response.text)
    assert fuzz_api.snapshot() == before, f"{what} was refused but changed storage"
