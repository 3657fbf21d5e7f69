"""The `http` node kind: POST the upstream outputs as JSON to the node's URL.

Who may be called (SPEC §11, §14) is decided here, at execution, in two layers:

1. **Allowlist.** The URL's host must match an entry of `FLOWGATE_HTTP_ALLOWED_HOSTS`. Entries
   follow Django's `ALLOWED_HOSTS` conventions: an exact host or IP (`hooks.example.com`,
   `127.0.0.1`, `::1`), `.example.com` for a domain and its subdomains, or `*` for any host. An
   empty list refuses every call, so a deployment opts in to outbound requests.
2. **Addresses.** The host is resolved and *every* address must be public. Private, loopback,
   link-local, multicast, reserved, unspecified and other non-global addresses are refused
   unless the exact host or that IP is itself an allowlist entry (`127.0.0.1` allows loopback
   explicitly). A pattern (`*`, `.example.com`) never reaches internal addresses, so a DNS record
   pointed at `169.254.169.254` cannot turn an allowed domain into a metadata-service probe.

The request then goes to the address that was checked, never to a fresh DNS answer (no rebinding
between check and connect): the URL carries the IP, the `Host` header the original host, and for
https the TLS SNI/certificate check uses the original host name. Redirects are not followed, proxy
environment variables are ignored (a proxy would resolve the name again), and at most 64 KiB of
the response is read.
"""

from __future__ import annotations

import ipaddress
import json
import socket
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import httpx
from django.conf import settings

from automations.nodes.base import NodeContext, NodeFailure

DEFAULT_TIMEOUT_S = 10.0
MAX_RESPONSE_BYTES = 64 * 1024
USER_AGENT = "Flowgate-http-node/1"

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


def execute(ctx: NodeContext) -> dict[str, Any]:
    """POST `{run_id, node_id, inputs, upstream_outputs}`; returns the status and the
    (truncated) body."""
    spec = ctx.node.get("http")
    if not isinstance(spec, Mapping):
        raise NodeFailure(
            "http node has no 'http' object", failure_kind="invalid_node", retryable=False
        )
    target = _target(spec.get("url"))
    shown = str(target.copy_with(username=None, password=None))  # never echo credentials
    timeout = _timeout(spec.get("timeout_s"))
    addresses = allowed_addresses(target, HostAllowlist.from_settings())
    body = {
        "run_id": ctx.run_id,
        "node_id": ctx.node_id,
        "inputs": ctx.inputs,
        "upstream_outputs": ctx.upstream_outputs,
    }
    content_bytes = json.dumps(body, separators=(",", ":")).encode()
    status_code, content = post_pinned(
        target,
        addresses,
        content=content_bytes,
        headers={"Content-Type": "application/json"},
        timeout=timeout,
        shown=shown,
    )
    if not 200 <= status_code < 300:
        excerpt = (
            content["body"] if isinstance(content["body"], str) else json.dumps(content["body"])
        )
        raise NodeFailure(
            f"POST {shown} answered HTTP {status_code}",
            failure_kind="http_status",
            status_code=status_code,
            body_excerpt=excerpt[:300],
        )
    return {
        "status": "completed",
        "summary": f"POST {shown} → {status_code}",
        "content": content,
    }


@dataclass(frozen=True)
class HostAllowlist:
    """`FLOWGATE_HTTP_ALLOWED_HOSTS`, normalised (lowercase, no brackets, canonical IPs)."""

    entries: frozenset[str]

    @classmethod
    def from_settings(cls) -> HostAllowlist:
        return cls.of(getattr(settings, "FLOWGATE_HTTP_ALLOWED_HOSTS", None) or ())

    @classmethod
    def of(cls, hosts: Iterable[str]) -> HostAllowlist:
        return cls(frozenset(_normal_host(host) for host in hosts if host and host.strip()))

    def permits(self, host: str) -> bool:
        """Layer 1: the host matches an entry (exact, `.domain` suffix or `*`)."""
        host = _normal_host(host)
        for entry in self.entries:
            if entry == "*" or entry == host:
                return True
            if entry.startswith(".") and (host.endswith(entry) or host == entry[1:]):
                return True
        return False

    def lists_exactly(self, host: str, address: IPAddress) -> bool:
        """Layer 2: the host itself or this IP is an entry, so internal addresses are intended."""
        return _normal_host(host) in self.entries or str(address) in self.entries


def allowed_addresses(target: httpx.URL, allowlist: HostAllowlist) -> list[IPAddress]:
    """The addresses the request may use, after both layers; raises `NodeFailure` otherwise."""
    host = target.host
    if not allowlist.entries:
        raise _refused(
            f"http nodes may not call {host!r}: FLOWGATE_HTTP_ALLOWED_HOSTS is empty, "
            "so outbound requests are disabled"
        )
    if not allowlist.permits(host):
        raise _refused(f"host {host!r} is not in FLOWGATE_HTTP_ALLOWED_HOSTS")
    addresses = _resolve(target)
    for address in addresses:
        category = internal_category(address)
        if category and not allowlist.lists_exactly(host, address):
            raise _refused(
                f"host {host!r} resolves to {category} address {address}; list {host!r} or "
                f"{address} in FLOWGATE_HTTP_ALLOWED_HOSTS to allow it"
            )
    return addresses


def internal_category(address: IPAddress) -> str | None:
    """Why an address is not a public one (None when it is)."""
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped:
        address = address.ipv4_mapped  # ::ffff:127.0.0.1 is loopback too
    checks = (
        ("unspecified", address.is_unspecified),
        ("loopback", address.is_loopback),
        ("link-local", address.is_link_local),
        ("multicast", address.is_multicast),
        ("private", address.is_private),
        ("reserved", address.is_reserved),
        ("non-public", not address.is_global),
    )
    return next((category for category, hit in checks if hit), None)


def pinned_request_parts(
    target: httpx.URL, address: IPAddress
) -> tuple[httpx.URL, dict[str, str], dict[str, Any]]:
    """URL aimed at `address`, the headers and the extensions that keep the original host."""
    url = target.copy_with(host=str(address))
    headers = {"Host": target.netloc.decode("ascii"), "User-Agent": USER_AGENT}
    extensions: dict[str, Any] = {}
    if target.scheme == "https":
        extensions["sni_hostname"] = target.raw_host.decode("ascii")
    return url, headers, extensions


def _target(url: Any) -> httpx.URL:
    try:
        target = httpx.URL(url.strip()) if isinstance(url, str) else None
    except httpx.InvalidURL:
        target = None
    if target is None or target.scheme not in ("http", "https") or not target.host:
        raise NodeFailure(
            f"http node URL {url!r} is not an http(s) URL",
            failure_kind="invalid_node",
            retryable=False,
        )
    return target


def _timeout(value: Any) -> float:
    if isinstance(value, int | float) and not isinstance(value, bool) and value > 0:
        return float(value)
    return DEFAULT_TIMEOUT_S


def _normal_host(host: str) -> str:
    host = host.strip().lower().rstrip(".")
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    try:
        return str(ipaddress.ip_address(host))
    except ValueError:
        return host


def _resolve(target: httpx.URL) -> list[IPAddress]:
    """The host's addresses in resolver order, de-duplicated; an IP literal is its own."""
    host = target.raw_host.decode("ascii")
    try:
        return [ipaddress.ip_address(host)]
    except ValueError:
        pass
    try:
        infos = socket.getaddrinfo(host, target.port or 0, type=socket.SOCK_STREAM)
    except (OSError, UnicodeError) as exc:
        raise NodeFailure(
            f"cannot resolve host {target.host!r}: {exc}", failure_kind="http_error"
        ) from exc
    addresses: list[IPAddress] = []
    for *_, sockaddr in infos:
        address = ipaddress.ip_address(str(sockaddr[0]).split("%", 1)[0])
        if address not in addresses:
            addresses.append(address)
    if not addresses:
        raise NodeFailure(f"host {target.host!r} has no addresses", failure_kind="http_error")
    return addresses


def post_pinned(
    target: httpx.URL,
    addresses: list[IPAddress],
    *,
    content: bytes,
    headers: Mapping[str, str],
    timeout: float,
    shown: str,
) -> tuple[int, dict[str, Any]]:
    """POST `content` to the checked addresses in order until one connects (see the module
    docstring); read at most 64 KiB. Raises `NodeFailure` (`http_timeout`, `http_error`).
    Outbound webhooks (`channels.webhooks`) send through this too, under the same rules."""
    deadline = time.monotonic() + timeout
    connect_errors: list[str] = []
    try:
        with httpx.Client(timeout=timeout, follow_redirects=False, trust_env=False) as client:
            for address in addresses:
                url, pinned_headers, extensions = pinned_request_parts(target, address)
                request = client.build_request(
                    "POST",
                    url,
                    content=content,
                    headers={**pinned_headers, **headers},
                    extensions=extensions,
                )
                try:
                    response = client.send(request, stream=True)
                except httpx.ConnectError as exc:
                    connect_errors.append(f"{address}: {exc}")
                    continue
                try:
                    return response.status_code, _read_content(response, deadline)
                finally:
                    response.close()
    except httpx.TimeoutException as exc:
        raise NodeFailure(
            f"POST {shown} timed out after {timeout:g} s", failure_kind="http_timeout"
        ) from exc
    except httpx.HTTPError as exc:
        raise NodeFailure(
            f"POST {shown} failed: {type(exc).__name__}: {exc}", failure_kind="http_error"
        ) from exc
    raise NodeFailure(
        f"POST {shown} failed: could not connect ({'; '.join(connect_errors)})",
        failure_kind="http_error",
    )


def _read_content(response: httpx.Response, deadline: float) -> dict[str, Any]:
    """`{status_code, body, truncated}`: JSON when the response says so and is whole, else text.

    httpx timeouts apply per network operation, so the overall deadline is checked between
    chunks too: a server trickling bytes cannot hold a worker much past the node's timeout.
    """
    raw = bytearray()
    truncated = False
    for chunk in response.iter_bytes():
        if time.monotonic() > deadline:
            raise httpx.ReadTimeout("response body not received in time")
        raw += chunk
        if len(raw) > MAX_RESPONSE_BYTES:
            del raw[MAX_RESPONSE_BYTES:]
            truncated = True
            break
    text = bytes(raw).decode(response.encoding or "utf-8", errors="replace")
    body: Any = text
    if not truncated and "json" in response.headers.get("content-type", "").lower() and text:
        try:
            body = json.loads(text)
        except ValueError:
            body = text
    return {"status_code": response.status_code, "body": body, "truncated": truncated}


def _refused(reason: str) -> NodeFailure:
    """The allowlist refused the call: configuration, so the node fails on this attempt."""
    return NodeFailure(reason, failure_kind="http_refused", retryable=False)
