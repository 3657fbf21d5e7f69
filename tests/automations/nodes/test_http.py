"""The http node kind over real HTTP to a local stand-in server: the allowlist, the internal-address
guard, address pinning, status and timeout failures, and response handling."""

from __future__ import annotations

import ipaddress
import socket
import time
from typing import Any

import httpx
import pytest
from django.test import override_settings

from automations.nodes.base import NodeContext, NodeFailure
from automations.nodes.http import (
    MAX_RESPONSE_BYTES,
    execute,
    internal_category,
    pinned_request_parts,
)

UPSTREAM = {"draft": {"status": "completed", "content": {"text": "Draft ready."}}}


def context(url: str, **http: Any) -> NodeContext:
    node = {"node_id": "notify", "kind": "http", "http": {"url": url, "method": "POST", **http}}
    return NodeContext(
        run_id="run-1",
        automation_id="auto-1",
        workspace="acme/ops",
        node=node,
        agent=None,
        upstream_outputs=UPSTREAM,
    )


def failure(ctx: NodeContext) -> NodeFailure:
    with pytest.raises(NodeFailure) as caught:
        execute(ctx)
    return caught.value


def allow(*hosts: str):
    return override_settings(FLOWGATE_HTTP_ALLOWED_HOSTS=list(hosts))


@pytest.fixture
def fake_dns(monkeypatch):
    """`fake_dns({"hooks.test": "127.0.0.1"})`: names resolve as given (others for real);
    returns the list of names looked up."""
    real = socket.getaddrinfo
    looked_up: list[str] = []

    def install(answers: dict[str, str]) -> list[str]:
        def getaddrinfo(host, port, *args, **kwargs):
            looked_up.append(host)
            if host in answers:
                family = socket.AF_INET6 if ":" in answers[host] else socket.AF_INET
                return [(family, socket.SOCK_STREAM, 6, "", (answers[host], port or 0))]
            return real(host, port, *args, **kwargs)

        monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
        return looked_up

    return install


# --- calls that are allowed ----------------------------------------------------------------------


def test_posts_run_node_and_upstream_outputs_to_an_allowlisted_server(stand_in):
    stand_in.reply = {"received": True}
    url = f"{stand_in.url}/hooks/x?via=test"

    with allow("127.0.0.1"):
        output = execute(context(url))

    [request] = stand_in.requests
    assert (request.method, request.path) == ("POST", "/hooks/x?via=test")
    assert request.headers["content-type"] == "application/json"
    assert request.json() == {
        "run_id": "run-1",
        "node_id": "notify",
        "inputs": {},
        "upstream_outputs": UPSTREAM,
    }
    assert output == {
        "status": "completed",
        "summary": f"POST {url} → 200",
        "content": {"status_code": 200, "body": {"received": True}, "truncated": False},
    }


def test_exact_host_listed_allows_its_loopback_address(stand_in):
    with allow("localhost"):
        output = execute(context(f"http://localhost:{stand_in.port}/x"))

    assert output["content"]["status_code"] == 200
    assert stand_in.requests[0].headers["host"] == f"localhost:{stand_in.port}"


def test_listed_ip_allows_a_name_matched_by_a_pattern(stand_in):
    with allow("*", "127.0.0.1"):
        output = execute(context(f"http://localhost:{stand_in.port}/x"))

    assert output["content"]["status_code"] == 200


def test_connects_to_the_checked_address_without_resolving_again(stand_in, fake_dns):
    looked_up = fake_dns({"hooks.test": "127.0.0.1"})

    with allow("hooks.test"):
        execute(context(f"http://hooks.test:{stand_in.port}/x"))

    assert looked_up.count("hooks.test") == 1  # the check; the request used the checked IP
    assert stand_in.requests[0].headers["host"] == f"hooks.test:{stand_in.port}"


def test_https_keeps_the_host_name_for_sni_and_certificate_checks():
    target = httpx.URL("https://user:pw@Hooks.Example.com:8443/x?y=1")

    url, headers, extensions = pinned_request_parts(target, ipaddress.ip_address("203.0.113.7"))

    assert str(url) == "https://user:pw@203.0.113.7:8443/x?y=1"
    assert headers["Host"] == "hooks.example.com:8443"
    assert extensions == {"sni_hostname": "hooks.example.com"}


def test_text_bodies_are_kept_as_text_and_large_ones_truncated(stand_in):
    stand_in.content_type = "text/plain; charset=utf-8"
    stand_in.reply = b"x" * (MAX_RESPONSE_BYTES + 10)

    with allow("127.0.0.1"):
        content = execute(context(stand_in.url))["content"]

    assert content["body"] == "x" * MAX_RESPONSE_BYTES
    assert content["truncated"] is True


def test_credentials_in_the_url_are_not_echoed(stand_in):
    url = f"http://user:secret@127.0.0.1:{stand_in.port}/x"

    with allow("127.0.0.1"):
        output = execute(context(url))

    assert "secret" not in output["summary"]
    assert stand_in.requests[0].headers["authorization"].startswith("Basic ")


# --- calls that are refused ----------------------------------------------------------------------


def test_an_empty_allowlist_refuses_every_call(stand_in):
    with allow():
        error = failure(context(stand_in.url))

    assert error.failure_kind == "http_refused"
    assert "FLOWGATE_HTTP_ALLOWED_HOSTS is empty" in error.reason
    assert stand_in.requests == []


def test_loopback_is_refused_when_127_0_0_1_is_not_allowlisted(stand_in):
    with allow("hooks.example.com"):
        error = failure(context(stand_in.url))

    assert error.failure_kind == "http_refused"
    assert error.reason == "host '127.0.0.1' is not in FLOWGATE_HTTP_ALLOWED_HOSTS"
    assert stand_in.requests == []


@pytest.mark.parametrize(
    ("url", "category"),
    [
        ("http://10.0.0.1/hook", "private address 10.0.0.1"),
        ("http://169.254.169.254/latest/meta-data/", "link-local address 169.254.169.254"),
        ("http://[::1]/hook", "loopback address ::1"),
        ("http://localhost/hook", "loopback address 127.0.0.1"),
        ("http://[::ffff:127.0.0.1]/hook", "loopback address ::ffff:7f00:1"),
        ("http://0.0.0.0/hook", "unspecified address 0.0.0.0"),
        ("http://2130706433/hook", "loopback address 127.0.0.1"),  # 127.0.0.1 as one number
        ("http://100.64.0.1/hook", "non-public address 100.64.0.1"),  # carrier-grade NAT
    ],
)
def test_internal_addresses_are_refused_unless_listed_exactly(url, category):
    with allow("*"):
        error = failure(context(url))

    assert error.failure_kind == "http_refused"
    assert f"resolves to {category}" in error.reason


def test_a_domain_pattern_does_not_reach_internal_addresses(fake_dns):
    fake_dns({"hooks.example.com": "10.0.0.5"})

    with allow(".example.com"):
        error = failure(context("https://hooks.example.com/x"))

    assert error.failure_kind == "http_refused"
    assert "resolves to private address 10.0.0.5" in error.reason


def test_patterns_match_like_django_allowed_hosts(fake_dns):
    fake_dns({"example.com": "10.0.0.5", "a.example.com": "10.0.0.5", "badexample.com": "1.1.1.1"})

    with allow(".example.com"):
        assert "resolves to private" in failure(context("http://example.com/")).reason
        assert "resolves to private" in failure(context("http://a.example.com/")).reason
        assert "not in FLOWGATE" in failure(context("http://badexample.com/")).reason


def test_every_resolved_address_must_pass(fake_dns, monkeypatch):
    def getaddrinfo(host, port, *args, **kwargs):
        return [
            (socket.AF_INET, socket.SOCK_STREAM, 6, "", ("93.184.215.14", port)),
            (socket.AF_INET, socket.SOCK_STREAM, 6, "", ("10.1.2.3", port)),
        ]

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)

    with allow("*"):
        assert "private address 10.1.2.3" in failure(context("http://mixed.test/")).reason


def test_unresolvable_host_fails(fake_dns, monkeypatch):
    def getaddrinfo(host, port, *args, **kwargs):
        raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)

    with allow("*"):
        assert failure(context("http://nowhere.test/")).failure_kind == "http_error"


def test_internal_category_of_public_addresses_is_none():
    assert internal_category(ipaddress.ip_address("93.184.215.14")) is None
    assert internal_category(ipaddress.ip_address("2606:4700::1111")) is None
    assert internal_category(ipaddress.ip_address("224.0.0.1")) == "multicast"


# --- failures ------------------------------------------------------------------------------------


@pytest.mark.parametrize("status", [404, 500, 503])
def test_non_2xx_is_an_http_status_failure(stand_in, status):
    stand_in.status = status
    stand_in.reply = {"error": "nope"}

    with allow("127.0.0.1"):
        error = failure(context(f"{stand_in.url}/x"))

    assert error.failure_kind == "http_status"
    assert error.reason == f"POST {stand_in.url}/x answered HTTP {status}"
    assert error.details == {"status_code": status, "body_excerpt": '{"error": "nope"}'}


def test_redirects_are_not_followed(stand_in):
    stand_in.status = 302
    stand_in.headers = {"Location": "http://169.254.169.254/latest/meta-data/"}
    stand_in.reply = b""

    with allow("127.0.0.1"):
        error = failure(context(stand_in.url))

    assert error.failure_kind == "http_status"
    assert len(stand_in.requests) == 1


def test_timeout_is_an_http_timeout_failure(stand_in):
    stand_in.delay_s = 5

    started = time.monotonic()
    with allow("127.0.0.1"):
        error = failure(context(stand_in.url, timeout_s=0.3))

    assert error.failure_kind == "http_timeout"
    assert "timed out after 0.3 s" in error.reason
    assert time.monotonic() - started < 3


def test_connection_refused_is_an_http_error(stand_in):
    url = stand_in.url
    stand_in.stop()

    with allow("127.0.0.1"):
        error = failure(context(url))

    assert error.failure_kind == "http_error"
    assert "could not connect" in error.reason
