"""Server-side request forgery (SSRF) guard for fetching user-supplied URLs.

Every outbound request to a URL that a client gave us (input images by URL, webhook deliveries)
must go through :func:`fetch`, or through an ``httpx.AsyncClient`` built on
:func:`guarded_transport`. The guard:

* validates the URL syntactically (:func:`check_url`) on every hop, redirects included;
* resolves host names itself, refuses when *any* resolved address is not public, and then
  connects to the checked IP address rather than the name, so a DNS answer cannot change
  between the check and the connect (DNS rebinding);
* bounds URL length, redirects, response size and total time.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import ipaddress
import socket
import ssl
from collections.abc import AsyncIterable, AsyncIterator, Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Final, Literal, cast

import httpcore
import httpx

__all__ = [
    "AddressPolicy",
    "FetchRefused",
    "Fetched",
    "GuardedNetworkBackend",
    "GuardedTransport",
    "IPAddress",
    "RefusalReason",
    "check_url",
    "fetch",
    "guarded_transport",
    "is_public_ip",
]

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
AddressPolicy = Callable[[IPAddress], bool]
"""Decides whether a resolved address may be connected to (True = allowed)."""

RefusalReason = Literal[
    "invalid_url",
    "url_too_long",
    "scheme_not_allowed",
    "missing_host",
    "credentials_not_allowed",
    "private_address",
    "unresolvable",
    "too_large",
    "too_many_redirects",
    "bad_status",
    "unsupported_encoding",
    "timeout",
    "network_error",
]

USER_AGENT: Final = "Mediagate-Fetch/1"

_SocketOption = (
    tuple[int, int, int] | tuple[int, int, bytes | bytearray] | tuple[int, int, None, int]
)


class FetchRefused(Exception):
    """An outbound fetch was refused by the guard or failed; ``reason`` is a stable code."""

    def __init__(self, reason: RefusalReason, message: str) -> None:
        super().__init__(message)
        self.reason: RefusalReason = reason
        self.message = message

    def __str__(self) -> str:
        return f"{self.message} [{self.reason}]"


@dataclass(frozen=True, slots=True)
class Fetched:
    """A successfully fetched body; ``url`` is the final URL after redirects."""

    content: bytes = field(repr=False)
    content_type: str | None
    url: str


# --------------------------------------------------------------------------- address policy

_V4 = ipaddress.IPv4Network
_V6 = ipaddress.IPv6Network

# Listed explicitly rather than relying only on ``is_global``/``is_private``, whose tables
# changed between CPython patch releases.
_BLOCKED_V4: Final = tuple(
    _V4(n)
    for n in (
        "0.0.0.0/8",  # "this network", incl. 0.0.0.0 which Linux routes to localhost
        "10.0.0.0/8",
        "100.64.0.0/10",  # shared address space (carrier-grade NAT)
        "127.0.0.0/8",
        "169.254.0.0/16",  # link-local, incl. cloud metadata 169.254.169.254
        "172.16.0.0/12",
        "192.0.0.0/24",  # IETF protocol assignments
        "192.0.2.0/24",  # TEST-NET-1
        "192.88.99.0/24",  # deprecated 6to4 relay anycast
        "192.168.0.0/16",
        "198.18.0.0/15",  # benchmarking
        "198.51.100.0/24",  # TEST-NET-2
        "203.0.113.0/24",  # TEST-NET-3
        "224.0.0.0/4",  # multicast
        "240.0.0.0/4",  # reserved, incl. 255.255.255.255
    )
)

_BLOCKED_V6: Final = tuple(
    _V6(n)
    for n in (
        # Unspecified, loopback and the deprecated IPv4-compatible range: nothing legitimate
        # lives here, so the whole /96 is refused whatever IPv4 address it embeds.
        "::/96",
        "64:ff9b:1::/48",  # local-use NAT64
        "100::/64",  # discard-only
        "2001::/23",  # IETF protocol assignments, incl. Teredo 2001::/32
        "2001:db8::/32",  # documentation
        "3fff::/20",  # documentation
        "5f00::/16",  # SRv6 SIDs
        "fd00:ec2::254/128",  # AWS metadata over IPv6 (also inside fc00::/7 below)
        "fc00::/7",  # unique local
        "fe80::/10",  # link-local
        "fec0::/10",  # deprecated site-local
        "ff00::/8",  # multicast
    )
)

_NAT64: Final = _V6("64:ff9b::/96")


def _embedded_ipv4(ip: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    """Return the IPv4 address a mapped, NAT64 or 6to4 address would actually reach."""
    if ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    if ip in _NAT64:
        return ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    return ip.sixtofour


def is_public_ip(ip: IPAddress) -> bool:
    """Return True when ``ip`` is a globally routable unicast address that is safe to fetch."""
    if isinstance(ip, ipaddress.IPv6Address):
        if any(ip in net for net in _BLOCKED_V6):
            return False
        embedded = _embedded_ipv4(ip)
        if embedded is not None:
            # These forms are translated to IPv4 on the way out, so judge the real target.
            return is_public_ip(embedded)
    elif any(ip in net for net in _BLOCKED_V4):
        return False
    return ip.is_global and not (
        ip.is_private
        or ip.is_loopback
        or ip.is_link_local
        or ip.is_multicast
        or ip.is_reserved
        or ip.is_unspecified
    )


def allowing(networks: Sequence[str]) -> AddressPolicy | None:
    """Public addresses plus the operator's trusted ``networks`` (CIDRs, e.g. an intranet image
    store); None when there are none, meaning the plain public-address check."""
    if not networks:
        return None
    trusted = [ipaddress.ip_network(n, strict=False) for n in networks]

    def policy(ip: IPAddress) -> bool:
        return is_public_ip(ip) or any(ip in net for net in trusted)

    return policy


def _allow_any(_ip: IPAddress) -> bool:
    return True


def _make_policy(allow_private: bool, address_policy: AddressPolicy | None) -> AddressPolicy:
    if address_policy is not None:
        if allow_private:
            raise ValueError("pass either allow_private or address_policy, not both")
        return address_policy
    return _allow_any if allow_private else is_public_ip


# --------------------------------------------------------------------------- network backend


class GuardedNetworkBackend(httpcore.AsyncNetworkBackend):
    """httpcore backend that resolves, checks, then connects to the checked IP address.

    Every new connection goes through :meth:`connect_tcp`, so each redirect hop (and each
    reconnect) is checked again. Requires an asyncio event loop.
    """

    def __init__(
        self,
        *,
        address_policy: AddressPolicy = is_public_ip,
        resolve_timeout: float = 15.0,
        inner: httpcore.AsyncNetworkBackend | None = None,
    ) -> None:
        self._policy = address_policy
        self._resolve_timeout = resolve_timeout
        self._inner = inner if inner is not None else httpcore.AnyIOBackend()

    async def resolve(
        self, host: str, port: int, time_limit: float | None = None
    ) -> list[IPAddress]:
        """Resolve ``host`` to its addresses (in resolver order, de-duplicated)."""
        try:
            return [ipaddress.ip_address(host)]
        except ValueError:
            pass
        loop = asyncio.get_running_loop()
        try:
            limit = time_limit if time_limit is not None else self._resolve_timeout
            async with asyncio.timeout(limit):
                infos = await loop.getaddrinfo(
                    host, port, type=socket.SOCK_STREAM, proto=socket.IPPROTO_TCP
                )
        except TimeoutError:
            raise httpcore.ConnectTimeout(f"resolving {host!r} timed out") from None
        except (OSError, UnicodeError) as exc:
            raise FetchRefused("unresolvable", f"cannot resolve host {host!r}: {exc}") from None
        addresses: list[IPAddress] = []
        for family, *_rest, sockaddr in infos:
            if family not in (socket.AF_INET, socket.AF_INET6):
                continue
            ip = ipaddress.ip_address(sockaddr[0])
            if ip not in addresses:
                addresses.append(ip)
        if not addresses:
            raise FetchRefused("unresolvable", f"host {host!r} has no IP addresses")
        return addresses

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,  # noqa: ASYNC109 - httpcore's backend interface
        local_address: str | None = None,
        socket_options: Iterable[_SocketOption] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        """Connect to ``host`` only if every address it resolves to passes the policy."""
        addresses = await self.resolve(host, port, timeout)
        # Refuse if *any* answer is non-public: a name mixing public and private answers is
        # an attack (or a misconfiguration) either way, and refusing keeps behaviour stable.
        for ip in addresses:
            if not self._policy(ip):
                raise FetchRefused(
                    "private_address", f"host {host!r} resolves to non-public address {ip}"
                )
        last_error: Exception | None = None
        for ip in addresses:
            try:
                # Connect to the checked literal, never the name, so no second DNS lookup
                # happens. TLS is unaffected: httpcore's AsyncHTTPConnection._connect then
                # calls stream.start_tls(server_hostname=<host from the URL>), so SNI and
                # certificate verification use the original hostname, and the Host header
                # comes from the request URL.
                return await self._inner.connect_tcp(
                    str(ip),
                    port,
                    timeout=timeout,
                    local_address=local_address,
                    socket_options=socket_options,
                )
            except (httpcore.ConnectError, httpcore.ConnectTimeout) as exc:
                last_error = exc
        assert last_error is not None
        raise last_error

    async def connect_unix_socket(
        self,
        path: str,
        timeout: float | None = None,  # noqa: ASYNC109 - httpcore's backend interface
        socket_options: Iterable[_SocketOption] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        """Unix sockets are local by definition, so they are never allowed."""
        raise FetchRefused("private_address", "unix socket connections are not allowed")

    async def sleep(self, seconds: float) -> None:
        await self._inner.sleep(seconds)


# --------------------------------------------------------------------------- httpx transport

# Most specific first: the first match wins.
_EXCEPTION_MAP: Final[tuple[tuple[type[Exception], type[httpx.TransportError]], ...]] = (
    (httpcore.ConnectTimeout, httpx.ConnectTimeout),
    (httpcore.ReadTimeout, httpx.ReadTimeout),
    (httpcore.WriteTimeout, httpx.WriteTimeout),
    (httpcore.PoolTimeout, httpx.PoolTimeout),
    (httpcore.TimeoutException, httpx.TimeoutException),
    (httpcore.ConnectError, httpx.ConnectError),
    (httpcore.ReadError, httpx.ReadError),
    (httpcore.WriteError, httpx.WriteError),
    (httpcore.NetworkError, httpx.NetworkError),
    (httpcore.ProxyError, httpx.ProxyError),
    (httpcore.UnsupportedProtocol, httpx.UnsupportedProtocol),
    (httpcore.LocalProtocolError, httpx.LocalProtocolError),
    (httpcore.RemoteProtocolError, httpx.RemoteProtocolError),
    (httpcore.ProtocolError, httpx.ProtocolError),
)


@contextlib.contextmanager
def _map_httpcore_exceptions() -> Iterator[None]:
    """Re-raise httpcore errors as their httpx equivalents, as httpx's own transport does."""
    try:
        yield
    except Exception as exc:
        for source, target in _EXCEPTION_MAP:
            if isinstance(exc, source):
                raise target(str(exc)) from exc
        raise


class _ResponseStream(httpx.AsyncByteStream):
    def __init__(self, stream: AsyncIterable[bytes]) -> None:
        self._stream = stream

    async def __aiter__(self) -> AsyncIterator[bytes]:
        with _map_httpcore_exceptions():
            async for part in self._stream:
                yield part

    async def aclose(self) -> None:
        aclose = getattr(self._stream, "aclose", None)
        if aclose is not None:
            with _map_httpcore_exceptions():
                await aclose()


@functools.cache
def _default_ssl_context() -> ssl.SSLContext:
    # Honours SSL_CERT_FILE / SSL_CERT_DIR (operator configuration); proxies and .netrc are
    # never read because fetches use trust_env=False clients and this transport has no proxy.
    return httpx.create_ssl_context()


class GuardedTransport(httpx.AsyncBaseTransport):
    """httpx transport over an httpcore pool that uses a guarded network backend; no proxies."""

    def __init__(
        self,
        network_backend: httpcore.AsyncNetworkBackend,
        *,
        ssl_context: ssl.SSLContext | None = None,
        max_connections: int = 10,
    ) -> None:
        self._pool = httpcore.AsyncConnectionPool(
            ssl_context=ssl_context if ssl_context is not None else _default_ssl_context(),
            max_connections=max_connections,
            max_keepalive_connections=max_connections,
            http1=True,
            http2=False,
            retries=0,
            network_backend=network_backend,
        )

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        core_request = httpcore.Request(
            method=request.method,
            url=httpcore.URL(
                scheme=request.url.raw_scheme,
                host=request.url.raw_host,
                port=request.url.port,
                target=request.url.raw_path,
            ),
            headers=request.headers.raw,
            content=cast(AsyncIterable[bytes], request.stream),
            extensions=request.extensions,
        )
        with _map_httpcore_exceptions():
            core_response = await self._pool.handle_async_request(core_request)
        return httpx.Response(
            status_code=core_response.status,
            headers=core_response.headers,
            stream=_ResponseStream(cast(AsyncIterable[bytes], core_response.stream)),
            extensions=core_response.extensions,
        )

    async def aclose(self) -> None:
        await self._pool.aclose()


def guarded_transport(
    *,
    allow_private: bool = False,
    timeout: float = 15.0,
    address_policy: AddressPolicy | None = None,
    ssl_context: ssl.SSLContext | None = None,
) -> httpx.AsyncBaseTransport:
    """Build an httpx transport that only connects to addresses the policy allows.

    ``address_policy`` (mainly for tests) replaces the default public-address check;
    ``timeout`` bounds DNS resolution when the request carries no connect timeout.
    Use it with ``httpx.AsyncClient(transport=..., trust_env=False)`` and check URLs with
    :func:`check_url` first; the transport itself only guards addresses.
    """
    backend = GuardedNetworkBackend(
        address_policy=_make_policy(allow_private, address_policy), resolve_timeout=timeout
    )
    return GuardedTransport(backend, ssl_context=ssl_context)


# --------------------------------------------------------------------------- URL checks and fetch


def _parse_checked_url(
    url: str, *, allowed_schemes: tuple[str, ...], max_url_length: int
) -> httpx.URL:
    if len(url) > max_url_length:
        raise FetchRefused("url_too_long", f"URL is longer than {max_url_length} characters")
    try:
        parsed = httpx.URL(url)
    except (httpx.InvalidURL, TypeError, ValueError) as exc:
        raise FetchRefused("invalid_url", f"invalid URL: {exc}") from None
    # httpx lower-cases the scheme; parse with the same library that sends the request so a
    # parser differential cannot make the check and the request see different hosts.
    if parsed.scheme not in {s.lower() for s in allowed_schemes}:
        allowed = ", ".join(allowed_schemes)
        raise FetchRefused(
            "scheme_not_allowed", f"URL scheme {parsed.scheme!r} is not allowed ({allowed})"
        )
    if not parsed.host:
        raise FetchRefused("missing_host", "URL has no host")
    if parsed.userinfo:
        raise FetchRefused("credentials_not_allowed", "URLs with credentials are not allowed")
    return parsed


def check_url(
    url: str,
    *,
    allowed_schemes: tuple[str, ...] = ("https",),
    max_url_length: int = 2000,
) -> None:
    """Raise :class:`FetchRefused` if ``url`` is syntactically unacceptable; does no I/O."""
    _parse_checked_url(url, allowed_schemes=allowed_schemes, max_url_length=max_url_length)


def _check_literal_host(url: httpx.URL, policy: AddressPolicy) -> None:
    # The backend checks again at connect time; refusing here gives a clear error early.
    try:
        ip = ipaddress.ip_address(url.host)
    except ValueError:
        return
    if not policy(ip):
        raise FetchRefused("private_address", f"address {ip} is not allowed")


async def _read_limited(response: httpx.Response, max_bytes: int) -> bytes:
    declared = response.headers.get("content-length")
    if declared is not None and declared.strip().isdigit() and int(declared) > max_bytes:
        raise FetchRefused("too_large", f"response declares {declared} bytes (limit {max_bytes})")
    body = bytearray()
    async for chunk in response.aiter_raw():
        body += chunk
        if len(body) > max_bytes:
            raise FetchRefused("too_large", f"response exceeds {max_bytes} bytes")
    return bytes(body)


async def fetch(
    url: str,
    *,
    max_bytes: int,
    allow_private: bool = False,
    address_policy: AddressPolicy | None = None,
    allowed_schemes: tuple[str, ...] = ("https",),
    max_redirects: int = 3,
    max_url_length: int = 2000,
    timeout: float = 15.0,  # noqa: ASYNC109 - also bounds connect/read; one knob for callers
    accept: str = "image/*",
    ssl_context: ssl.SSLContext | None = None,
    trusted_networks: Sequence[str] = (),
) -> Fetched:
    """GET a user-supplied URL with SSRF protection, following at most ``max_redirects``.

    ``timeout`` is both the per-operation network timeout and the deadline for the whole
    fetch, redirects included. ``ssl_context`` replaces the default trust store (an
    operator's extra certificate authority). ``trusted_networks`` (CIDRs) may be reached
    although private. ``address_policy`` (mainly for tests) replaces the default
    public-address check. Raises :class:`FetchRefused` on any refusal or failure.
    """
    if max_bytes < 0 or max_redirects < 0:
        raise ValueError("max_bytes and max_redirects must not be negative")
    if address_policy is None and not allow_private:
        address_policy = allowing(trusted_networks)
    policy = _make_policy(allow_private, address_policy)
    current = _parse_checked_url(
        url, allowed_schemes=allowed_schemes, max_url_length=max_url_length
    )
    transport = GuardedTransport(
        GuardedNetworkBackend(address_policy=policy, resolve_timeout=timeout),
        ssl_context=ssl_context,
    )
    # Identity encoding only: decoding a compressed body happens a whole network chunk at a
    # time, so a small compressed chunk could expand far past max_bytes before we can count it.
    headers = {"Accept": accept, "Accept-Encoding": "identity", "User-Agent": USER_AGENT}
    try:
        async with (
            asyncio.timeout(timeout),
            httpx.AsyncClient(
                transport=transport, trust_env=False, follow_redirects=False, timeout=timeout
            ) as client,
        ):
            redirects = 0
            while True:
                _check_literal_host(current, policy)
                # Requests are built directly (not client.build_request) so the client's cookie
                # jar is never attached: cookies set by one hop are not replayed to the next.
                request = httpx.Request("GET", current, headers=headers)
                response = await client.send(request, stream=True)
                try:
                    if response.has_redirect_location and response.next_request is not None:
                        redirects += 1
                        if redirects > max_redirects:
                            raise FetchRefused(
                                "too_many_redirects", f"more than {max_redirects} redirects"
                            )
                        current = _parse_checked_url(
                            str(response.next_request.url),
                            allowed_schemes=allowed_schemes,
                            max_url_length=max_url_length,
                        )
                        continue
                    if not response.is_success:
                        raise FetchRefused(
                            "bad_status", f"server answered HTTP {response.status_code}"
                        )
                    encoding = response.headers.get("content-encoding", "identity").strip()
                    if encoding.lower() not in ("", "identity"):
                        raise FetchRefused(
                            "unsupported_encoding", f"unsupported content-encoding {encoding!r}"
                        )
                    content = await _read_limited(response, max_bytes)
                    return Fetched(
                        content=content,
                        content_type=response.headers.get("content-type"),
                        url=str(response.url),
                    )
                finally:
                    await response.aclose()
    except TimeoutError:
        raise FetchRefused("timeout", f"fetch did not finish within {timeout} seconds") from None
    except httpx.TimeoutException as exc:
        raise FetchRefused("timeout", f"network timeout: {exc}") from exc
    except httpx.HTTPError as exc:
        raise FetchRefused("network_error", f"fetch failed: {exc}") from exc
