"""Who gets in: app HTTP functions honour their auth level, the management API wants the system
key, wrong keys are refused however close they are, and no secret leaks into the host's output or
into an error response.

Everything goes through a real `durable-ext start` process (`conftest.py`) over HTTP, with the
three keys of `FunctionKeys` and the system key configured as app settings.
"""

from __future__ import annotations

import ast
import http.client
import inspect
import json
import textwrap
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote, urlsplit

import pytest
from playwright.sync_api import BrowserContext, expect

from durable_ext import http_api
from durable_ext.host import http_functions
from tests.access.conftest import KeyedHost, wrong_like
from tests.dashboard.live import browser, require_browser, wait_ready

WEBHOOKS = "/runtime/webhooks/durabletask"
FUNCTIONS = "/api/durabletask"
TIMEOUT = 30.0


@dataclass
class Reply:
    status: int
    body: bytes = field(repr=False)

    @property
    def text(self) -> str:
        return self.body.decode("utf-8", errors="replace")


class Caller:
    """Raw HTTP to the host (header values may be any bytes); remembers every error response."""

    def __init__(self, host: KeyedHost) -> None:
        parts = urlsplit(host.base_url)
        self.host, self.port = parts.hostname or "127.0.0.1", parts.port or 80
        self.errors: list[tuple[str, Reply]] = []

    def __call__(
        self,
        method: str,
        path: str,
        *,
        code: str | None = None,
        header: str | bytes | None = None,
        body: object | None = None,
    ) -> Reply:
        if code is not None:
            path += ("&" if "?" in path else "?") + "code=" + quote(code, safe="")
        connection = http.client.HTTPConnection(self.host, self.port, timeout=TIMEOUT)
        try:
            connection.putrequest(method, path)
            if header is not None:
                connection.putheader("x-functions-key", header)
            data = b""
            if body is not None:
                data = json.dumps(body).encode()
                connection.putheader("Content-Type", "application/json")
            connection.putheader("Content-Length", str(len(data)))
            connection.endheaders(data)
            response = connection.getresponse()
            reply = Reply(response.status, response.read())
        finally:
            connection.close()
        if reply.status >= 400:
            self.errors.append((f"{method} {path}", reply))
        return reply


@pytest.fixture(scope="module")
def call(keyed_host: KeyedHost) -> Iterator[Caller]:
    yield Caller(keyed_host)


def test_anonymous_functions_are_open_to_everyone(keyed_host: KeyedHost, call: Caller) -> None:
    assert call("GET", "/api/open").status == 200
    assert call("GET", "/api/open", code="not-a-key").status == 200
    assert call("GET", "/api/open", header=wrong_like(keyed_host.keys.master)).status == 200


def test_function_level_wants_the_function_key_or_the_master_key(
    keyed_host: KeyedHost, call: Caller
) -> None:
    keys = keyed_host.keys
    for accepted in (keys.function, keys.master):
        assert call("GET", "/api/keyed", code=accepted).status == 200
        reply = call("GET", "/api/keyed", header=accepted)
        assert (reply.status, reply.text) == (200, "keyed")
    refused = [
        {},
        {"code": ""},
        {"code": wrong_like(keys.function)},
        {"header": wrong_like(keys.function)},
        {"code": wrong_like(keys.master)},
        {"code": keys.system},  # the system key opens the management API only
        {"header": keys.system},
        {"code": keys.function[:-1]},  # a prefix
        {"code": keys.function + "x"},  # an extension
        {"code": keys.function.upper() if keys.function.upper() != keys.function else "Q"},
    ]
    for presented in refused:
        reply = call("GET", "/api/keyed", **presented)
        assert reply.status == 401, (presented, reply)
        assert "key" in json.loads(reply.body)["error"]


def test_admin_level_wants_the_master_key(keyed_host: KeyedHost, call: Caller) -> None:
    keys = keyed_host.keys
    assert call("GET", "/api/admin", code=keys.master).status == 200
    assert call("GET", "/api/admin", header=keys.master).status == 200
    for presented in (None, keys.function, keys.system, wrong_like(keys.master)):
        assert call("GET", "/api/admin", code=presented).status == 401, presented
        assert call("GET", "/api/admin", header=presented).status == 401, presented


MANAGEMENT_CALLS = (
    ("GET", "/instances", None),
    ("GET", "/instances/nobody", None),
    ("DELETE", "/instances/nobody", None),
    ("POST", "/instances/nobody/terminate?reason=x", None),
    ("POST", "/instances/nobody/raiseEvent/go", {"a": 1}),
    ("POST", "/orchestrators/greet", "world"),
    ("DELETE", "/instances?createdTimeFrom=2020-01-01T00:00:00Z", None),
    ("GET", "/entities", None),
    ("GET", "/orchestrators", None),
    ("GET", "/instances/nobody/history", None),
    ("GET", "/taskhub", None),
    ("GET", "/taskhub/counts", None),
    ("GET", "/no/such/route", None),
)


def test_the_management_api_wants_the_system_or_master_key(
    keyed_host: KeyedHost, call: Caller
) -> None:
    keys = keyed_host.keys
    for method, path, body in MANAGEMENT_CALLS:
        for presented in (
            {},
            {"code": keys.function},
            {"header": keys.function},
            {"code": wrong_like(keys.system)},
            {"header": wrong_like(keys.system)},
            {"code": wrong_like(keys.master)},
            {"code": keys.system[:-1]},
        ):
            reply = call(method, WEBHOOKS + path, body=body, **presented)
            assert reply.status == 401, (method, path, presented, reply.status)
        for presented in (
            {"code": keys.system},
            {"header": keys.system},
            {"code": keys.master},
            {"header": keys.master},
        ):
            reply = call(method, WEBHOOKS + path, body=body, **presented)
            assert reply.status not in (401, 500), (method, path, presented, reply)


def test_the_management_functions_want_the_same_keys(keyed_host: KeyedHost, call: Caller) -> None:
    """The app's management functions (/api/durabletask/..., anonymous for the host) check the
    same keys themselves: the system key or the master key, never the function key."""
    keys = keyed_host.keys
    for method, path, body in MANAGEMENT_CALLS:
        if path.startswith("/no/"):
            continue  # no function has that route: the host's plain 404
        for presented in (
            {},
            {"code": keys.function},
            {"header": keys.function},
            {"code": wrong_like(keys.system)},
            {"header": b"\xff\xfe"},
        ):
            reply = call(method, FUNCTIONS + path, body=body, **presented)
            assert reply.status == 401, (method, path, presented, reply.status)
        for presented in ({"code": keys.system}, {"header": keys.master}):
            reply = call(method, FUNCTIONS + path, body=body, **presented)
            assert reply.status not in (401, 500), (method, path, presented, reply)


def test_the_dashboard_page_is_public_and_its_data_keyed(keyed_host: KeyedHost, call: Caller) -> None:
    """The page and its files hold no data and load without a key (the page asks for one); every
    read it makes goes through the keyed API, and the key it is given in the URL never reaches
    the page's own responses."""
    page = call("GET", FUNCTIONS + "/dashboard/")
    assert page.status == 200 and b"<!doctype html>" in page.body
    assert call("GET", FUNCTIONS + "/dashboard/app.mjs").status == 200
    keyed = call("GET", FUNCTIONS + "/dashboard/", code=keyed_host.keys.system)
    assert keyed.status == 200 and keyed_host.keys.system.encode() not in keyed.body
    assert call("GET", FUNCTIONS + "/taskhub").status == 401
    assert call("GET", FUNCTIONS + "/taskhub", code=keyed_host.keys.system).status == 200


def test_odd_keys_are_refused_not_a_server_error(keyed_host: KeyedHost, call: Caller) -> None:
    """Keys in the query string that are not ASCII, not UTF-8 or hold NULs, UTF-8 header keys, and
    header keys with control characters (which the HTTP parser itself refuses with 400) get no
    further than any wrong key."""
    answers: dict[tuple[str, object], int] = {}
    for code in ("\u00e9" * 43, "\U0001f511", "%00", "\x00"):
        for path in ("/api/keyed", WEBHOOKS + "/instances"):
            answers[path, code] = call("GET", path, code=code).status
    for escaped in ("%FF%FE", "%ED%B3%BF"):  # not UTF-8; a lone surrogate
        for path in ("/api/keyed", WEBHOOKS + "/instances"):
            answers[path, escaped] = call("GET", f"{path}?code={escaped}").status
    for path in ("/api/keyed", "/api/admin", WEBHOOKS + "/instances"):
        answers[path, "UTF-8 header"] = call("GET", path, header="café".encode()).status
        control = call("GET", path, header=b"\x01\x02").status
        answers[path, "control characters"] = 401 if control == 400 else control
    wrong = {where: status for where, status in answers.items() if status != 401}
    assert not wrong, f"not refused with 401: {wrong}"


def test_a_header_key_that_is_not_utf8_is_refused_not_a_server_error(
    keyed_host: KeyedHost, call: Caller
) -> None:
    """Header values are bytes on the wire: a key that is not UTF-8 must get the same 401 as any
    wrong key, from the app functions and from the management API."""
    answers = {}
    for raw in (b"\xff\xfe\xfd", "é".encode("latin-1") * 43):
        for path in ("/api/keyed", "/api/admin", WEBHOOKS + "/instances"):
            answers[path, raw] = call("GET", path, header=raw).status
    wrong = {where: status for where, status in answers.items() if status != 401}
    assert not wrong, f"not refused with 401: {wrong}"


def _calls_in(function: Callable[..., Any]) -> tuple[set[str], list[str]]:
    """The dotted names a function calls, and the `==`/`!=` comparisons in its source."""
    source = textwrap.dedent(inspect.getsource(function))
    tree = ast.parse(source)
    called = {ast.unparse(node.func) for node in ast.walk(tree) if isinstance(node, ast.Call)}
    equalities = [
        ast.unparse(node)
        for node in ast.walk(tree)
        if isinstance(node, ast.Compare)
        and any(isinstance(op, ast.Eq | ast.NotEq | ast.In | ast.NotIn) for op in node.ops)
    ]
    return called, equalities


def test_every_key_check_compares_in_constant_time() -> None:
    """The two places a presented key meets a configured one compare with hmac.compare_digest,
    never with `==`, `!=` or `in` (which stop at the first differing character)."""
    for check in (http_functions.FunctionKeys.allows, http_api._authorize):
        called, equalities = _calls_in(check)
        assert "hmac.compare_digest" in called, check
        keyish = [e for e in equalities if "key" in e.lower() or "presented" in e.lower()]
        assert not keyish, f"{check.__qualname__} compares keys directly: {keyish}"


def test_no_secret_leaks_into_the_host_log_or_an_error_response(
    keyed_host: KeyedHost, call: Caller
) -> None:
    """After a run with refused keys, a failing function, a failing orchestration and malformed
    management calls, none of the keys nor the storage account key is in the host's stdout/stderr
    or in any error response (success bodies carry the system key in management URIs, as Durable
    Functions' do, and are not checked for it)."""
    keys = keyed_host.keys
    assert call("GET", "/api/broken", code=keys.function).status == 500
    started = call("POST", "/api/start/fail", code=keys.function, body="boom")
    assert started.status == 202, started
    status_uri = json.loads(started.body)["statusQueryGetUri"]
    assert keys.system in status_uri  # by design, like Durable Functions
    path = urlsplit(status_uri).path + "?" + urlsplit(status_uri).query
    for _ in range(300):
        status = call("GET", path)
        if status.status != 202:
            break
    assert json.loads(status.body)["runtimeStatus"] == "Failed", status
    for method, path_, body in MANAGEMENT_CALLS:
        call(method, WEBHOOKS + path_ + ("&" if "?" in path_ else "?") + "top=-1", body=body)
    call("GET", WEBHOOKS + "/instances?top=zero", code=keys.system)
    call("POST", WEBHOOKS + "/orchestrators/nope", code=keys.system, body={"x": 1})
    call("POST", "/api/start/nope", code=keys.function, body=None)
    call("GET", "/api/keyed", header=b"\xff")

    secrets_ = {"system key": keys.system, "function key": keys.function, "master key": keys.master}
    secrets_["storage account key"] = keyed_host.account_key
    log = keyed_host.process.log()
    assert "Functions (" in log and len(call.errors) > 20
    for name, secret in secrets_.items():
        assert secret not in log, f"the {name} is in the host's output"
        leaked = [where for where, reply in call.errors if secret in reply.text]
        assert not leaked, f"the {name} is in error responses of {leaked}"
    assert keyed_host.account_key not in status.text


# -- the dashboard in a browser: it asks for the key, keeps it for the tab and reads with it ----------


@pytest.fixture(scope="module")
def tabs(keyed_host: KeyedHost) -> Iterator[BrowserContext]:
    """One browser; each test opens its own tab (the key lives in the tab's session storage)."""
    require_browser()
    with browser() as context:
        context.set_default_timeout(15_000)
        yield context


def test_the_page_asks_for_the_key_then_reads_with_it(
    keyed_host: KeyedHost, tabs: BrowserContext
) -> None:
    page = tabs.new_page()
    refused: list[str] = []
    page.on("response", lambda r: refused.append(r.url) if r.status == 401 else None)
    page.goto(f"{keyed_host.base_url}{FUNCTIONS}/dashboard/")
    expect(page.locator("#dialog-title")).to_have_text("System key required")
    assert refused, "the API refused the page's first reads"
    refused_before = len(refused)
    page.fill("#key-input", keyed_host.keys.system)
    page.click("#dialog-confirm")
    wait_ready(page)
    expect(page.locator("#instances tbody tr").first).to_be_visible()
    assert len(refused) == refused_before, "no 401 once the page has the key"
    expect(page.locator("#dialog")).not_to_be_visible()


def test_a_key_in_the_address_is_kept_for_the_tab_and_taken_out(
    keyed_host: KeyedHost, tabs: BrowserContext
) -> None:
    page = tabs.new_page()
    page.goto(f"{keyed_host.base_url}{FUNCTIONS}/dashboard/?code={keyed_host.keys.system}#/taskhub")
    wait_ready(page)
    expect(page.locator("#partitions tbody tr").first).to_be_visible()
    assert keyed_host.keys.system not in page.url
    assert page.url.endswith("/dashboard/#/taskhub")
    page.reload()  # the key stays with the tab
    wait_ready(page)
    expect(page.locator("#partitions tbody tr").first).to_be_visible()
    expect(page.locator("#dialog")).not_to_be_visible()
