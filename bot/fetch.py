"""Downloads of user-linked pictures, with a host allow-list, size and time limits.

Two layers keep a download away from the bot's own network. Before any
connection, :class:`ImageFetcher` checks every URL (the first and each
redirect) against the scheme, the allow-list and literal addresses. When a
connection is made, :class:`GuardedConnector` checks the addresses a name
resolves to, so the address that is connected to is the address that was
checked (a name that resolves to 127.0.0.1, DNS rebinding).
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import socket
from dataclasses import dataclass, field
from typing import Any

import aiohttp
from aiohttp import hdrs
from aiohttp.abc import AbstractResolver, ResolveResult
from aiohttp.resolver import DefaultResolver
from yarl import URL

from bot.errors import FetchError
from bot.phrases import phrase

log = logging.getLogger(__name__)

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

_CHUNK_SIZE = 64 * 1024
_REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})
_NAT64 = ipaddress.IPv6Network("64:ff9b::/96")
# Images are compressed already; asking for the bytes as they are also keeps
# the Content-Length comparable with what arrives.
_REQUEST_HEADERS = {hdrs.ACCEPT: "image/*", hdrs.ACCEPT_ENCODING: "identity"}

PRIVATE_ADDRESS = "that link points to a private or local address"


DISCORD_MEDIA_HOSTS = frozenset(
    {
        "cdn.discordapp.com",
        "media.discordapp.net",
        "images-ext-1.discordapp.net",
        "images-ext-2.discordapp.net",
    }
)
"""Attachments, and Discord's media proxy (its copies of pictures linked in messages)."""


@dataclass(frozen=True)
class FetchPolicy:
    """Limits for one download; the defaults are the production ones."""

    max_bytes: int = 25 * 1024 * 1024
    total_timeout: float = 20.0
    """Seconds for the whole download, redirects included."""
    read_timeout: float = 10.0
    """Seconds without a single byte before the download counts as stalled."""
    allowed_hosts: frozenset[str] = DISCORD_MEDIA_HOSTS
    """Exact hosts; a name also admits its subdomains."""
    allow_private_addresses: bool = False
    """Also allow plain http and local addresses (tests download from 127.0.0.1)."""
    max_redirects: int = 3


@dataclass(frozen=True)
class Download:
    """The bytes of a downloaded picture. Neither the bytes nor the signed URL appear in repr."""

    data: bytes = field(repr=False)
    url: str = field(repr=False)
    """The final URL, after redirects."""
    content_type: str | None
    """The media type the server announced; callers sniff the bytes instead of trusting it."""


def is_public_address(address: IPAddress) -> bool:
    """True when ``address`` is a public unicast address that a download may connect to.

    IPv6 forms that carry an IPv4 address (``::ffff:127.0.0.1``, 6to4, NAT64)
    are judged by the IPv4 address inside.
    """
    if isinstance(address, ipaddress.IPv6Address):
        embedded = address.ipv4_mapped or address.sixtofour
        if embedded is None and address in _NAT64:
            embedded = ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
        if embedded is not None:
            return is_public_address(embedded)
    # is_global leaves out loopback, private, link-local, CGNAT and unspecified
    # addresses, but counts multicast and parts of ::/8 as global.
    return address.is_global and not address.is_multicast and not address.is_reserved


class AddressRefusedError(OSError):
    """A host name resolved to an address that downloads must not connect to."""


class _GuardedResolver(AbstractResolver):
    """Resolves through ``upstream`` and refuses names with any non-public address."""

    def __init__(self, upstream: AbstractResolver, *, allow_private_addresses: bool) -> None:
        self._upstream = upstream
        self._allow_private_addresses = allow_private_addresses

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        results = await self._upstream.resolve(host, port, family)
        if not self._allow_private_addresses and not all(
            _is_public_text(result["host"]) for result in results
        ):
            # An OSError, as resolvers raise: aiohttp wraps it into a
            # ClientConnectorDNSError and connects to nothing.
            raise AddressRefusedError(f"{host} resolves to a non-public address")
        return results

    async def close(self) -> None:
        await self._upstream.close()


class GuardedConnector(aiohttp.TCPConnector):
    """A TCP connector that connects only to public addresses (unless told otherwise).

    Build the app's one ``ClientSession`` on it. A ``resolver`` passed in is
    wrapped and owned: the connector closes it.
    """

    def __init__(
        self,
        *,
        allow_private_addresses: bool = False,
        resolver: AbstractResolver | None = None,
        **kwargs: Any,
    ) -> None:
        self._guard = _GuardedResolver(
            resolver or DefaultResolver(), allow_private_addresses=allow_private_addresses
        )
        self._allow_private_addresses = allow_private_addresses
        super().__init__(resolver=self._guard, **kwargs)

    @property
    def allow_private_addresses(self) -> bool:
        """Whether names may resolve to loopback, private and other local addresses."""
        return self._allow_private_addresses

    async def close(self, *, abort_ssl: bool = False) -> None:
        """Close the connections, then the resolver."""
        await super().close(abort_ssl=abort_ssl)
        await self._guard.close()


class ImageFetcher:
    """Downloads pictures through the app's shared session, within a :class:`FetchPolicy`."""

    def __init__(self, session: aiohttp.ClientSession, policy: FetchPolicy) -> None:
        if not policy.allow_private_addresses:
            connector = session.connector
            if not isinstance(connector, GuardedConnector) or connector.allow_private_addresses:
                raise ValueError("a strict FetchPolicy needs a session built on GuardedConnector()")
            if session.trust_env:
                # A proxy from the environment would resolve names itself, unchecked.
                raise ValueError("a strict FetchPolicy needs a session with trust_env=False")
        self._session = session
        self._policy = policy
        self._schemes = {"https", "http"} if policy.allow_private_addresses else {"https"}
        self._timeout = aiohttp.ClientTimeout(
            total=policy.total_timeout,
            sock_connect=policy.read_timeout,
            sock_read=policy.read_timeout,
        )

    async def fetch(self, url: str) -> Download:
        """Download the picture at ``url``, following allowed redirects.

        Raises :class:`FetchError` with a message fit for users on any refusal
        or failure; refused URLs are refused before any connection is made.
        """
        target = _parse(url)
        log.debug("downloading from %s", _for_log(target))
        try:
            async with asyncio.timeout(self._policy.total_timeout):
                download = await self._follow(self._checked(target))
        except TimeoutError as exc:
            log.info("download from %s took too long", _for_log(target))
            raise FetchError("the download took too long") from exc
        except FetchError as exc:
            log.info("download from %s failed: %s", _for_log(target), exc)
            raise
        log.info("downloaded %d bytes from %s", len(download.data), _for_log(target))
        return download

    async def _follow(self, url: URL) -> Download:
        for _ in range(self._policy.max_redirects + 1):
            try:
                async with self._session.get(
                    url, allow_redirects=False, timeout=self._timeout, headers=_REQUEST_HEADERS
                ) as response:
                    if response.status in _REDIRECT_STATUSES:
                        url = self._redirect_target(url, response)
                        log.debug("redirected to %s", _for_log(url))
                        continue
                    _raise_for_status(response.status)
                    data = await self._read_body(response)
                    content_type = (
                        response.content_type if hdrs.CONTENT_TYPE in response.headers else None
                    )
                    return Download(data=data, url=str(url), content_type=content_type)
            except (aiohttp.ClientError, OSError) as exc:
                raise _translate(exc, url) from exc
        raise FetchError("the link redirects too many times")

    def _redirect_target(self, url: URL, response: aiohttp.ClientResponse) -> URL:
        location = response.headers.get(hdrs.LOCATION)
        if not location:
            raise FetchError("the server sent a redirect without a target")
        return self._checked(url.join(_parse(location)))

    async def _read_body(self, response: aiohttp.ClientResponse) -> bytes:
        limit = self._policy.max_bytes
        announced = response.content_length
        if announced is not None and announced > limit:
            raise _too_large(limit)
        body = bytearray()
        async for chunk in response.content.iter_chunked(_CHUNK_SIZE):
            body += chunk
            if len(body) > limit:
                raise _too_large(limit)
        # aiohttp raises on a connection closed early; this also covers a parser
        # that stops short. A compressed body is not comparable with its length.
        encoded = response.headers.get(hdrs.CONTENT_ENCODING, "identity") != "identity"
        if announced is not None and not encoded and len(body) < announced:
            raise FetchError("the download was cut off")
        return bytes(body)

    def _checked(self, url: URL) -> URL:
        """``url`` without its fragment, if the policy allows downloading from it."""
        if url.scheme not in self._schemes or not url.absolute or not url.host:
            raise FetchError("only https links can be downloaded")
        if url.user is not None or url.password is not None:
            raise FetchError("links with a user name or password are refused")
        address = _literal_address(url.host)
        host = str(address) if address is not None else (url.raw_host or "").rstrip(".").lower()
        if not self._policy.allow_private_addresses and (
            (address is not None and not is_public_address(address))
            or host == "localhost"
            or host.endswith(".localhost")
        ):
            raise FetchError(PRIVATE_ADDRESS)
        if not self._host_allowed(host, is_name=address is None):
            allowed = ", ".join(sorted(self._policy.allowed_hosts))
            raise FetchError("pictures can only be downloaded from {hosts}", hosts=allowed)
        return url.with_fragment(None)

    def _host_allowed(self, host: str, *, is_name: bool) -> bool:
        return any(
            host == allowed or (is_name and host.endswith("." + allowed))
            for allowed in self._policy.allowed_hosts
        )


def _parse(url: str) -> URL:
    try:
        return URL(url)
    except (ValueError, TypeError) as exc:
        raise FetchError("that is not a valid link") from exc


def _literal_address(host: str) -> IPAddress | None:
    """The address ``host`` spells, or None for a name.

    Legacy numeric forms (``2130706433``, ``0177.0.0.1``, ``0x7f000001``,
    ``127.1``) are refused outright: parsers disagree about what they mean.
    """
    try:
        return ipaddress.ip_address(host)
    except ValueError:
        pass
    try:
        socket.inet_aton(host)
    except OSError:
        return None
    raise FetchError("that link hides its address in an unusual number format")


def _is_public_text(address: str) -> bool:
    try:
        return is_public_address(ipaddress.ip_address(address))
    except ValueError:
        return False


def _raise_for_status(status: int) -> None:
    if status == 200:
        return
    if status in (404, 410):
        problem = phrase("the picture is gone")
    elif status in (401, 403):
        problem = phrase("the picture is not public")
    elif status in (408, 429):
        problem = phrase("the picture's server is busy, try again later")
    elif status >= 500:
        problem = phrase("the picture's server failed")
    elif status >= 400:
        problem = phrase("the picture's server refused the download")
    else:
        problem = phrase("the picture's server sent no picture")
    raise FetchError("{problem} (HTTP {status})", problem=problem, status=status)


def _translate(exc: aiohttp.ClientError | OSError, url: URL) -> FetchError:
    """A user-facing error for an aiohttp failure on ``url`` (which it must not name whole)."""
    host = url.host
    if isinstance(exc, aiohttp.SocketTimeoutError):
        return FetchError("the download stalled")
    if isinstance(exc, aiohttp.ConnectionTimeoutError):
        return FetchError("could not connect to {host} in time", host=host)
    if isinstance(exc, TimeoutError):
        # aiohttp's own total timeout; the shared deadline usually fires first.
        return FetchError("the download took too long")
    if isinstance(exc, aiohttp.ClientConnectorDNSError):
        if isinstance(exc.os_error, AddressRefusedError):
            return FetchError(PRIVATE_ADDRESS)
        return FetchError("could not find the host {host}", host=host)
    if isinstance(exc, aiohttp.ClientSSLError):
        return FetchError("could not make a secure connection to {host}", host=host)
    if isinstance(exc, aiohttp.ClientConnectorError):
        return FetchError("could not connect to {host}", host=host)
    if isinstance(exc, aiohttp.ClientPayloadError):
        return FetchError("the download was cut off")
    if isinstance(exc, aiohttp.ClientResponseError):
        # Raised by the HTTP parser for a malformed answer (status 400 is made up).
        return FetchError("the picture's server sent a malformed answer")
    return FetchError("the download failed")


def _for_log(url: URL) -> str:
    """Host and path only: Discord CDN query strings are signatures."""
    return f"{url.host or ''}{url.path}"


def _too_large(limit: int) -> FetchError:
    return FetchError("the picture is larger than {size}", size=_describe_size(limit))


def _describe_size(size: int) -> str:
    for unit, scale in (("MB", 1 << 20), ("KB", 1 << 10)):
        if size >= scale:
            return f"{size / scale:.3g} {unit}"
    return f"{size} bytes"
