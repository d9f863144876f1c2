"""Tests for the SSRF fetch guard, against real loopback HTTP(S) servers."""

from __future__ import annotations

import ipaddress
import socket
import ssl
import threading
import time
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest
from tests.certs import self_signed

from mediagate.net.guard import (
    FetchRefused,
    IPAddress,
    check_url,
    fetch,
    guarded_transport,
    is_public_ip,
)

Route = Callable[["_Handler"], None]

LOOPBACK_1 = ipaddress.ip_address("127.0.0.1")
LOOPBACK_2 = ipaddress.ip_address("127.0.0.2")


def only_127_0_0_1(ip: IPAddress) -> bool:
    """Test policy: permit exactly one loopback address and nothing else."""
    return ip == LOOPBACK_1


def both_loopbacks(ip: IPAddress) -> bool:
    return ip in (LOOPBACK_1, LOOPBACK_2)


# --------------------------------------------------------------------------- test servers


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, host: str) -> None:
        self.routes: dict[str, Route] = {}
        self.requests: list[tuple[str, dict[str, str]]] = []
        self.connections = 0
        self.stop = threading.Event()
        self.handler_done = threading.Event()
        self.client_aborted = threading.Event()
        self.bytes_sent = 0
        self._lock = threading.Lock()
        super().__init__((host, 0), _Handler)

    def verify_request(self, request: Any, client_address: Any) -> bool:
        # Called once per accepted connection, before any request is read.
        with self._lock:
            self.connections += 1
        return True

    @property
    def port(self) -> int:
        return int(self.server_address[1])

    def url(self, path: str = "/", scheme: str = "http", host: str | None = None) -> str:
        return f"{scheme}://{host or self.server_address[0]}:{self.port}{path}"


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _Server

    def do_GET(self) -> None:
        self.server.requests.append((self.path, dict(self.headers)))
        route = self.server.routes.get(self.path)
        if route is None:
            reply(self, 404, b"not found")
        else:
            route(self)

    def log_message(self, format: str, *args: Any) -> None:
        pass


def reply(
    h: _Handler,
    status: int = 200,
    body: bytes = b"",
    headers: dict[str, str] | None = None,
    content_type: str = "image/png",
) -> None:
    h.send_response(status)
    h.send_header("Content-Type", content_type)
    h.send_header("Content-Length", str(len(body)))
    h.send_header("Connection", "close")
    for name, value in (headers or {}).items():
        h.send_header(name, value)
    h.end_headers()
    h.wfile.write(body)


def ok(body: bytes, content_type: str = "image/png") -> Route:
    return lambda h: reply(h, 200, body, content_type=content_type)


def redirect(location: str, status: int = 302, headers: dict[str, str] | None = None) -> Route:
    return lambda h: reply(h, status, b"", headers={"Location": location, **(headers or {})})


def chunked(total: int, chunk_size: int = 64 * 1024) -> Route:
    """Stream ``total`` bytes with Transfer-Encoding: chunked, noting a client abort."""

    def route(h: _Handler) -> None:
        h.send_response(200)
        h.send_header("Content-Type", "image/png")
        h.send_header("Transfer-Encoding", "chunked")
        h.send_header("Connection", "close")
        h.end_headers()
        sent = 0
        try:
            while sent < total:
                n = min(chunk_size, total - sent)
                h.wfile.write(b"%x\r\n" % n + b"x" * n + b"\r\n")
                sent += n
            h.wfile.write(b"0\r\n\r\n")
        except OSError:
            h.server.client_aborted.set()
        finally:
            h.server.bytes_sent = sent
            h.server.handler_done.set()

    return route


def stall(h: _Handler) -> None:
    h.server.stop.wait(10)
    h.close_connection = True


def drip(h: _Handler) -> None:
    """Send headers then one byte at a time, never finishing within the test's deadline."""
    h.send_response(200)
    h.send_header("Content-Length", "100000")
    h.send_header("Connection", "close")
    h.end_headers()
    try:
        while not h.server.stop.wait(0.05):
            h.wfile.write(b"x")
    except OSError:
        h.server.client_aborted.set()
    h.close_connection = True


@pytest.fixture
def make_server() -> Iterator[Callable[..., _Server]]:
    started: list[tuple[_Server, threading.Thread]] = []

    def start(host: str = "127.0.0.1", tls: ssl.SSLContext | None = None) -> _Server:
        server = _Server(host)
        if tls is not None:
            server.socket = tls.wrap_socket(server.socket, server_side=True)
        thread = threading.Thread(
            target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        thread.start()
        started.append((server, thread))
        return server

    yield start
    for server, thread in started:
        server.stop.set()
        server.shutdown()
        server.server_close()
        thread.join(5)


@pytest.fixture
def server(make_server: Callable[..., _Server]) -> _Server:
    return make_server()


def fake_resolver(monkeypatch: pytest.MonkeyPatch, answers: dict[str, list[str]]) -> list[str]:
    """Make getaddrinfo answer ``answers`` for the given names; returns the names looked up."""
    real = socket.getaddrinfo
    lookups: list[str] = []

    def getaddrinfo(host: Any, port: Any, *args: Any, **kwargs: Any) -> Any:
        if host in answers:
            lookups.append(host)
            return [
                (socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP, "", (ip, port))
                for ip in answers[host]
            ]
        return real(host, port, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    return lookups


async def refused(url: str, **kwargs: Any) -> FetchRefused:
    kwargs.setdefault("max_bytes", 1 << 20)
    kwargs.setdefault("allowed_schemes", ("http", "https"))
    with pytest.raises(FetchRefused) as info:
        await fetch(url, **kwargs)
    return info.value


# --------------------------------------------------------------------------- is_public_ip


@pytest.mark.parametrize(
    ("address", "public"),
    [
        ("10.0.0.1", False),
        ("172.16.0.1", False),
        ("192.168.1.1", False),
        ("127.0.0.1", False),
        ("169.254.169.254", False),
        ("100.64.0.1", False),
        ("0.0.0.0", False),
        ("198.18.0.1", False),
        ("192.0.2.1", False),
        ("224.0.0.1", False),
        ("240.0.0.1", False),
        ("255.255.255.255", False),
        ("::", False),
        ("::1", False),
        ("fe80::1", False),
        ("fc00::1", False),
        ("fd00:ec2::254", False),
        ("ff02::1", False),
        ("2001:db8::1", False),
        ("::ffff:127.0.0.1", False),
        ("::ffff:10.0.0.1", False),
        ("::ffff:169.254.169.254", False),
        ("::127.0.0.1", False),
        ("64:ff9b::a00:1", False),
        ("64:ff9b::7f00:1", False),
        ("2002:7f00:1::", False),
        ("2002:a9fe:a9fe::", False),
        ("2001:0:4136:e378:8000:63bf:3fff:fdd2", False),
        ("8.8.8.8", True),
        ("1.1.1.1", True),
        ("2606:4700::1111", True),
        ("::ffff:8.8.8.8", True),
        ("64:ff9b::808:808", True),
        ("2002:808:808::", True),
    ],
)
def test_is_public_ip(address: str, public: bool) -> None:
    assert is_public_ip(ipaddress.ip_address(address)) is public


# --------------------------------------------------------------------------- check_url


def test_check_url_length_boundary() -> None:
    prefix = "https://example.com/"
    at_limit = prefix + "a" * (100 - len(prefix))
    assert len(at_limit) == 100
    check_url(at_limit, allowed_schemes=("https",), max_url_length=100)
    with pytest.raises(FetchRefused) as info:
        check_url(at_limit + "a", allowed_schemes=("https",), max_url_length=100)
    assert info.value.reason == "url_too_long"


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("http://example.com/a.png", "scheme_not_allowed"),
        ("ftp://example.com/a.png", "scheme_not_allowed"),
        ("file:///etc/passwd", "scheme_not_allowed"),
        ("not a url", "scheme_not_allowed"),
        ("https:///a.png", "missing_host"),
        ("https://user:secret@example.com/a.png", "credentials_not_allowed"),
        ("https://user@example.com/a.png", "credentials_not_allowed"),
        ("https://exa\nmple.com/", "invalid_url"),
    ],
)
def test_check_url_refuses(url: str, reason: str) -> None:
    with pytest.raises(FetchRefused) as info:
        check_url(url, allowed_schemes=("https",), max_url_length=2000)
    assert info.value.reason == reason
    assert reason in str(info.value)


def test_check_url_accepts() -> None:
    check_url("https://example.com/a.png?x=1", allowed_schemes=("https",), max_url_length=2000)
    check_url("HTTPS://Example.COM/", allowed_schemes=("https",), max_url_length=2000)
    check_url("http://example.com/", allowed_schemes=("http", "https"), max_url_length=2000)


# --------------------------------------------------------------------------- address refusal


async def test_loopback_literal_refused_without_connecting(server: _Server) -> None:
    server.routes["/a.png"] = ok(b"png")
    exc = await refused(server.url("/a.png"))
    assert exc.reason == "private_address"
    assert server.connections == 0


@pytest.mark.parametrize(
    "host", ["localhost", "[::ffff:127.0.0.1]", "2130706433", "127.1", "0x7f.0.0.1"]
)
async def test_loopback_spellings_refused(server: _Server, host: str) -> None:
    server.routes["/a.png"] = ok(b"png")
    exc = await refused(server.url("/a.png", host=host))
    assert exc.reason == "private_address"
    assert server.connections == 0


async def test_allow_private_fetches(server: _Server) -> None:
    server.routes["/a.png"] = ok(b"\x89PNG-bytes")
    result = await fetch(
        server.url("/a.png"), max_bytes=100, allow_private=True, allowed_schemes=("http",)
    )
    assert result.content == b"\x89PNG-bytes"
    assert result.content_type == "image/png"
    assert result.url == server.url("/a.png")
    path, headers = server.requests[0]
    assert headers["Accept"] == "image/*"
    assert headers["Accept-Encoding"] == "identity"


async def test_allow_private_resolves_localhost(server: _Server) -> None:
    # localhost may also resolve to ::1, where nothing listens: the next address is tried.
    server.routes["/a.png"] = ok(b"png")
    result = await fetch(
        server.url("/a.png", host="localhost"),
        max_bytes=100,
        allow_private=True,
        allowed_schemes=("http",),
    )
    assert result.content == b"png"


async def test_allow_private_and_policy_are_exclusive() -> None:
    with pytest.raises(ValueError):
        await fetch("https://example.com/", max_bytes=1, allow_private=True, address_policy=bool)


async def test_redirect_to_disallowed_address_refused(make_server: Callable[..., _Server]) -> None:
    first = make_server("127.0.0.1")
    second = make_server("127.0.0.2")
    second.routes["/secret"] = ok(b"secret")
    first.routes["/start"] = redirect(second.url("/secret"))

    exc = await refused(first.url("/start"), address_policy=only_127_0_0_1)
    assert exc.reason == "private_address"
    assert len(first.requests) == 1
    assert second.connections == 0

    # Control: the same chain works once the policy permits the second hop.
    result = await fetch(
        first.url("/start"),
        max_bytes=100,
        address_policy=both_loopbacks,
        allowed_schemes=("http",),
    )
    assert result.content == b"secret"
    assert result.url == second.url("/secret")


async def test_redirect_to_name_resolving_to_disallowed_address(
    make_server: Callable[..., _Server], monkeypatch: pytest.MonkeyPatch
) -> None:
    first = make_server("127.0.0.1")
    second = make_server("127.0.0.2")
    fake_resolver(monkeypatch, {"internal.test": ["127.0.0.2"]})
    first.routes["/start"] = redirect(second.url("/", host="internal.test"))
    exc = await refused(first.url("/start"), address_policy=only_127_0_0_1)
    assert exc.reason == "private_address"
    assert second.connections == 0


async def test_name_with_any_private_answer_refused(
    server: _Server, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake_resolver(monkeypatch, {"mixed.test": ["93.184.216.34", "127.0.0.1"]})
    exc = await refused(server.url("/", host="mixed.test"))
    assert exc.reason == "private_address"
    assert server.connections == 0


async def test_connects_to_checked_address_not_the_name_again(
    make_server: Callable[..., _Server], monkeypatch: pytest.MonkeyPatch
) -> None:
    # A rebinding resolver: first answer is allowed, any later answer would not be.
    allowed = make_server("127.0.0.1")
    allowed.routes["/a.png"] = ok(b"png")
    lookups: list[str] = []
    real = socket.getaddrinfo

    def getaddrinfo(host: Any, port: Any, *args: Any, **kwargs: Any) -> Any:
        if host != "rebind.test":
            return real(host, port, *args, **kwargs)
        lookups.append(host)
        ip = "127.0.0.1" if len(lookups) == 1 else "127.0.0.2"
        return [(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP, "", (ip, port))]

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    result = await fetch(
        allowed.url("/a.png", host="rebind.test"),
        max_bytes=100,
        address_policy=only_127_0_0_1,
        allowed_schemes=("http",),
    )
    assert result.content == b"png"
    assert lookups == ["rebind.test"]
    assert allowed.requests[0][1]["Host"] == f"rebind.test:{allowed.port}"


async def test_unresolvable_host(monkeypatch: pytest.MonkeyPatch) -> None:
    def getaddrinfo(*args: Any, **kwargs: Any) -> Any:
        raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    exc = await refused("https://no-such-host.invalid/a.png")
    assert exc.reason == "unresolvable"


async def test_guarded_transport_refuses_loopback(server: _Server) -> None:
    async with httpx.AsyncClient(transport=guarded_transport(), trust_env=False) as client:
        with pytest.raises(FetchRefused) as info:
            await client.get(server.url("/"))
    assert info.value.reason == "private_address"
    assert server.connections == 0


async def test_tls_uses_original_hostname_for_sni_and_verification(
    make_server: Callable[..., _Server], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    # The certificate names only "sni.test", so verification fails unless the TLS layer is
    # given the hostname even though the TCP connection goes to the checked IP literal.
    cert_path, key_path, cert_pem = self_signed("sni.test", tmp_path)
    server_ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server_ctx.load_cert_chain(cert_path, key_path)
    sni_names: list[str | None] = []
    server_ctx.sni_callback = lambda _sock, name, _ctx: sni_names.append(name)
    tls_server = make_server("127.0.0.1", tls=server_ctx)
    tls_server.routes["/a.png"] = ok(b"tls-png")
    lookups = fake_resolver(monkeypatch, {"sni.test": ["127.0.0.1"]})

    client_ctx = ssl.create_default_context(cadata=cert_pem.decode())
    transport = guarded_transport(address_policy=only_127_0_0_1, ssl_context=client_ctx)
    async with httpx.AsyncClient(transport=transport, trust_env=False) as client:
        response = await client.get(tls_server.url("/a.png", scheme="https", host="sni.test"))
    assert response.status_code == 200
    assert response.content == b"tls-png"
    assert sni_names == ["sni.test"]
    assert lookups == ["sni.test"]
    assert tls_server.requests[0][1]["Host"] == f"sni.test:{tls_server.port}"


# --------------------------------------------------------------------------- scheme, URL, redirects


async def test_http_refused_when_only_https_allowed(server: _Server) -> None:
    server.routes["/a.png"] = ok(b"png")
    exc = await refused(server.url("/a.png"), allow_private=True, allowed_schemes=("https",))
    assert exc.reason == "scheme_not_allowed"
    assert server.connections == 0


async def test_redirect_scheme_rechecked(server: _Server) -> None:
    server.routes["/to-file"] = redirect("file:///etc/passwd")
    server.routes["/to-https"] = redirect(server.url("/x", scheme="https"))
    exc = await refused(server.url("/to-file"), allow_private=True, allowed_schemes=("http",))
    assert exc.reason == "scheme_not_allowed"
    exc = await refused(server.url("/to-https"), allow_private=True, allowed_schemes=("http",))
    assert exc.reason == "scheme_not_allowed"


async def test_url_too_long_refused(server: _Server) -> None:
    exc = await refused(server.url("/" + "a" * 50), allow_private=True, max_url_length=40)
    assert exc.reason == "url_too_long"
    assert server.connections == 0


async def test_redirect_url_length_rechecked(server: _Server) -> None:
    server.routes["/short"] = redirect("/" + "a" * 100)
    exc = await refused(server.url("/short"), allow_private=True, max_url_length=60)
    assert exc.reason == "url_too_long"


async def test_credentials_refused(server: _Server) -> None:
    url = server.url("/a.png", host="user:pw@127.0.0.1")
    exc = await refused(url, allow_private=True)
    assert exc.reason == "credentials_not_allowed"
    assert server.connections == 0


async def test_redirect_limit(server: _Server) -> None:
    for i in range(4):
        server.routes[f"/r{i}"] = redirect(f"/r{i + 1}")
    server.routes["/r4"] = ok(b"end")
    kwargs: dict[str, Any] = {"allow_private": True, "allowed_schemes": ("http",)}

    result = await fetch(server.url("/r1"), max_bytes=10, max_redirects=3, **kwargs)
    assert result.content == b"end"
    assert result.url == server.url("/r4")

    exc = await refused(server.url("/r0"), max_redirects=3, **kwargs)
    assert exc.reason == "too_many_redirects"
    exc = await refused(server.url("/r3"), max_redirects=0, **kwargs)
    assert exc.reason == "too_many_redirects"


async def test_cookies_not_replayed_across_redirects(server: _Server) -> None:
    server.routes["/set"] = redirect("/final", headers={"Set-Cookie": "session=abc; Path=/"})
    server.routes["/final"] = ok(b"done")
    result = await fetch(
        server.url("/set"), max_bytes=10, allow_private=True, allowed_schemes=("http",)
    )
    assert result.content == b"done"
    final_headers = server.requests[-1][1]
    assert "Cookie" not in final_headers


# --------------------------------------------------------------------------- status and size


async def test_not_found_is_bad_status(server: _Server) -> None:
    exc = await refused(server.url("/missing"), allow_private=True)
    assert exc.reason == "bad_status"


async def test_redirect_without_location_is_bad_status(server: _Server) -> None:
    server.routes["/r"] = lambda h: reply(h, 302, b"")
    exc = await refused(server.url("/r"), allow_private=True)
    assert exc.reason == "bad_status"


async def test_compressed_body_refused(server: _Server) -> None:
    server.routes["/gz"] = lambda h: reply(h, 200, b"\x1f\x8b", {"Content-Encoding": "gzip"})
    exc = await refused(server.url("/gz"), allow_private=True)
    assert exc.reason == "unsupported_encoding"


@pytest.mark.parametrize("streaming", [False, True], ids=["content-length", "chunked"])
async def test_size_limit_boundary(server: _Server, streaming: bool) -> None:
    limit = 1000
    for name, size in (("/exact", limit), ("/over", limit + 1)):
        server.routes[name] = chunked(size, chunk_size=300) if streaming else ok(b"x" * size)
    kwargs: dict[str, Any] = {"allow_private": True, "allowed_schemes": ("http",)}

    result = await fetch(server.url("/exact"), max_bytes=limit, **kwargs)
    assert result.content == b"x" * limit

    exc = await refused(server.url("/over"), max_bytes=limit, **kwargs)
    assert exc.reason == "too_large"


async def test_declared_length_refused_before_reading(server: _Server) -> None:
    def huge(h: _Handler) -> None:
        # Claims 100 MB but sends 10 bytes: reading it would end in a protocol error, so a
        # too_large refusal shows the guard stopped at the header.
        h.send_response(200)
        h.send_header("Content-Length", str(100_000_000))
        h.send_header("Connection", "close")
        h.end_headers()
        h.wfile.write(b"x" * 10)

    server.routes["/huge"] = huge
    exc = await refused(server.url("/huge"), allow_private=True, max_bytes=1000)
    assert exc.reason == "too_large"


async def test_unbounded_chunked_stream_aborted(server: _Server) -> None:
    total = 512 * 1024 * 1024
    server.routes["/endless"] = chunked(total)
    exc = await refused(server.url("/endless"), allow_private=True, max_bytes=1000)
    assert exc.reason == "too_large"
    assert server.handler_done.wait(10)
    assert server.client_aborted.is_set()
    assert server.bytes_sent < total


# --------------------------------------------------------------------------- timeouts


async def test_stalled_server_times_out(server: _Server) -> None:
    server.routes["/stall"] = stall
    started = time.monotonic()
    exc = await refused(server.url("/stall"), allow_private=True, timeout=0.3)
    assert exc.reason == "timeout"
    assert time.monotonic() - started < 3


async def test_slow_drip_hits_overall_deadline(server: _Server) -> None:
    # Each byte arrives well within the read timeout; only the whole-fetch deadline ends it.
    server.routes["/drip"] = drip
    started = time.monotonic()
    exc = await refused(server.url("/drip"), allow_private=True, timeout=0.5)
    assert exc.reason == "timeout"
    assert time.monotonic() - started < 3
