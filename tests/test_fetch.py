"""ImageFetcher against a real aiohttp server on 127.0.0.1, and the strict rules offline."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import gzip
import ipaddress
import logging
import socket
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from aiohttp.abc import AbstractResolver, ResolveResult
from aiohttp.test_utils import TestServer
from yarl import URL

from bot.errors import FetchError
from bot.fetch import (
    PRIVATE_ADDRESS,
    FetchPolicy,
    GuardedConnector,
    ImageFetcher,
    is_public_address,
)

PICTURE = bytes(range(256)) * 20
LIMIT = 10_000
LENIENT = FetchPolicy(
    max_bytes=LIMIT,
    total_timeout=5.0,
    read_timeout=2.0,
    allowed_hosts=frozenset({"127.0.0.1", "localhost"}),
    allow_private_addresses=True,
    max_redirects=3,
)
HITS = web.AppKey("hits", Counter[str])

MakeSession = Callable[..., aiohttp.ClientSession]


class StaticResolver(AbstractResolver):
    """Answers from a table, as DNS would; records the names it was asked for."""

    def __init__(self, table: dict[str, list[str]]) -> None:
        self.table = table
        self.asked: list[str] = []

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        host = host.rstrip(".")
        self.asked.append(host)
        if host not in self.table:
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        return [
            ResolveResult(
                hostname=host,
                host=address,
                port=port,
                family=socket.AF_INET6 if ":" in address else socket.AF_INET,
                proto=0,
                flags=socket.AI_NUMERICHOST | socket.AI_NUMERICSERV,
            )
            for address in self.table[host]
        ]

    async def close(self) -> None:
        pass


@dataclasses.dataclass
class Traffic:
    """What a client session attempted: requests started and connections opened."""

    requests: int = 0
    connections: int = 0

    def trace_config(self) -> aiohttp.TraceConfig:
        config = aiohttp.TraceConfig()

        async def request_started(*_: Any) -> None:
            self.requests += 1

        async def connected(*_: Any) -> None:
            self.connections += 1

        config.on_request_start.append(request_started)
        config.on_connection_create_end.append(connected)
        return config


# --- the server -------------------------------------------------------------


async def picture(request: web.Request) -> web.Response:
    return web.Response(body=PICTURE, content_type="image/png")


async def stream(
    request: web.Request,
    chunks: list[bytes],
    *,
    length: int | None = None,
    pause: float = 0.0,
    hang: bool = False,
) -> web.StreamResponse:
    """Send ``chunks`` ``pause`` seconds apart (chunked when no ``length``), then hang if asked."""
    response = web.StreamResponse()
    if length is None:
        response.enable_chunked_encoding()
    else:
        response.content_length = length
    await response.prepare(request)
    for chunk in chunks:
        await response.write(chunk)
        await asyncio.sleep(pause)
    if hang:
        await asyncio.sleep(30)
    return response


async def announced_too_large(request: web.Request) -> web.StreamResponse:
    # Announces far too much, then stalls: only an early refusal answers fast.
    return await stream(request, [b"x" * 10], length=10**10, hang=True)


async def chunked_too_large(request: web.Request) -> web.StreamResponse:
    return await stream(request, [b"x" * 1000] * 100)


async def stall(request: web.Request) -> web.StreamResponse:
    return await stream(request, [PICTURE[:100]], length=len(PICTURE), hang=True)


async def trickle(request: web.Request) -> web.StreamResponse:
    return await stream(request, [b"x"] * 600, pause=0.05)


async def gzip_bomb(request: web.Request) -> web.Response:
    body = gzip.compress(b"\0" * 100 * LIMIT)
    return web.Response(body=body, headers={"Content-Encoding": "gzip"})


async def more_than_announced(request: web.Request) -> web.StreamResponse:
    response = web.StreamResponse()
    response.content_length = 100
    await response.prepare(request)
    await response.write(b"a" * 100)
    await asyncio.sleep(0.05)
    # Past aiohttp's writer, which would cut the body at the announced length.
    assert request.transport is not None
    request.transport.write(b"b" * 10 * LIMIT)
    return response


async def fewer_than_announced(request: web.Request) -> web.StreamResponse:
    response = web.StreamResponse()
    response.content_length = 1000
    response.force_close()
    await response.prepare(request)
    await response.write(b"a" * 10)
    return response


async def status(request: web.Request) -> web.Response:
    return web.Response(status=int(request.match_info["code"]))


async def redirect_chain(request: web.Request) -> web.Response:
    remaining = int(request.match_info["remaining"])
    if remaining > 1:
        raise web.HTTPFound(f"/redirect/{remaining - 1}")
    # The last hop changes host within the allow-list.
    raise web.HTTPMovedPermanently(f"http://localhost:{request.url.port}/picture.png?ex=1")


async def redirect_to(request: web.Request) -> web.Response:
    raise web.HTTPTemporaryRedirect(request.query["target"])


async def secret(request: web.Request) -> web.Response:
    return web.Response(text="internal")


@pytest.fixture
async def server() -> AsyncIterator[TestServer]:
    hits: Counter[str] = Counter()

    @web.middleware
    async def count_hits(
        request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
    ) -> web.StreamResponse:
        hits[request.path] += 1
        return await handler(request)

    app = web.Application(middlewares=[count_hits])
    app[HITS] = hits
    app.router.add_get("/picture.png", picture)
    app.router.add_get("/announced-too-large", announced_too_large)
    app.router.add_get("/chunked-too-large", chunked_too_large)
    app.router.add_get("/gzip-bomb", gzip_bomb)
    app.router.add_get("/more-than-announced", more_than_announced)
    app.router.add_get("/fewer-than-announced", fewer_than_announced)
    app.router.add_get("/stall", stall)
    app.router.add_get("/trickle", trickle)
    app.router.add_get("/status/{code}", status)
    app.router.add_get("/redirect/{remaining}", redirect_chain)
    app.router.add_get("/redirect-to", redirect_to)
    app.router.add_get("/secret", secret)
    test_server = TestServer(app, host="127.0.0.1")
    await test_server.start_server(shutdown_timeout=0.1)
    yield test_server
    await test_server.close()


def hits(server: TestServer) -> Counter[str]:
    return server.app[HITS]


# --- the client -------------------------------------------------------------


@pytest.fixture
def resolver() -> StaticResolver:
    return StaticResolver({"localhost": ["127.0.0.1"], "cdn.discordapp.com": ["127.0.0.1"]})


@pytest.fixture
def traffic() -> Traffic:
    return Traffic()


@pytest.fixture
async def make_session(resolver: StaticResolver, traffic: Traffic) -> AsyncIterator[MakeSession]:
    sessions: list[aiohttp.ClientSession] = []

    def make(*, allow_private_addresses: bool) -> aiohttp.ClientSession:
        connector = GuardedConnector(
            allow_private_addresses=allow_private_addresses, resolver=resolver
        )
        session = aiohttp.ClientSession(connector=connector, trace_configs=[traffic.trace_config()])
        sessions.append(session)
        return session

    yield make
    for session in sessions:
        await session.close()


@pytest.fixture
async def lenient_session(make_session: MakeSession) -> aiohttp.ClientSession:
    return make_session(allow_private_addresses=True)


def fetcher(session: aiohttp.ClientSession, **changes: Any) -> ImageFetcher:
    return ImageFetcher(session, dataclasses.replace(LENIENT, **changes))


# --- downloads --------------------------------------------------------------


async def test_downloads_a_picture(
    server: TestServer, lenient_session: aiohttp.ClientSession
) -> None:
    url = str(server.make_url("/picture.png?ex=abc&hm=def"))

    download = await fetcher(lenient_session).fetch(url)

    assert download.data == PICTURE
    assert download.url == url
    assert download.content_type == "image/png"


async def test_shared_session_is_reused_across_downloads(
    server: TestServer, lenient_session: aiohttp.ClientSession, traffic: Traffic
) -> None:
    images = fetcher(lenient_session)

    for _ in range(3):
        await images.fetch(str(server.make_url("/picture.png")))

    assert traffic.requests == 3
    assert traffic.connections == 1


@pytest.mark.parametrize("path", ["/announced-too-large", "/chunked-too-large", "/gzip-bomb"])
async def test_refuses_a_body_over_the_limit(
    server: TestServer, lenient_session: aiohttp.ClientSession, path: str
) -> None:
    with pytest.raises(FetchError, match=r"larger than 9\.77 KB"):
        await fetcher(lenient_session).fetch(str(server.make_url(path)))


async def test_reads_no_more_than_the_announced_length(
    server: TestServer, lenient_session: aiohttp.ClientSession
) -> None:
    # aiohttp stops at the announced length. Extra bytes that arrive in the
    # same read as the body make its parser reject the answer instead; which
    # one happens depends on TCP timing, and both are safe.
    try:
        download = await fetcher(lenient_session).fetch(
            str(server.make_url("/more-than-announced"))
        )
    except FetchError as exc:
        assert exc.user_message == "the picture's server sent a malformed answer"
    else:
        assert download.data == b"a" * 100


async def test_refuses_a_body_shorter_than_announced(
    server: TestServer, lenient_session: aiohttp.ClientSession
) -> None:
    with pytest.raises(FetchError, match="cut off") as caught:
        await fetcher(lenient_session).fetch(str(server.make_url("/fewer-than-announced")))

    assert isinstance(caught.value.__cause__, aiohttp.ClientPayloadError)


async def test_gives_up_on_a_stalled_download(
    server: TestServer, lenient_session: aiohttp.ClientSession
) -> None:
    images = fetcher(lenient_session, read_timeout=0.2, total_timeout=5.0)
    started = asyncio.get_running_loop().time()

    with pytest.raises(FetchError, match="the download stalled") as caught:
        await images.fetch(str(server.make_url("/stall")))

    assert asyncio.get_running_loop().time() - started < 2.0
    assert isinstance(caught.value.__cause__, aiohttp.SocketTimeoutError)


async def test_gives_up_when_the_whole_download_takes_too_long(
    server: TestServer, lenient_session: aiohttp.ClientSession
) -> None:
    images = fetcher(lenient_session, read_timeout=1.0, total_timeout=0.3)

    with pytest.raises(FetchError, match="the download took too long"):
        await images.fetch(str(server.make_url("/trickle")))


@pytest.mark.parametrize(
    ("code", "message"),
    [
        (404, "the picture is gone (HTTP 404)"),
        (410, "the picture is gone (HTTP 410)"),
        (403, "the picture is not public (HTTP 403)"),
        (429, "the picture's server is busy, try again later (HTTP 429)"),
        (418, "the picture's server refused the download (HTTP 418)"),
        (500, "the picture's server failed (HTTP 500)"),
        (503, "the picture's server failed (HTTP 503)"),
        (204, "the picture's server sent no picture (HTTP 204)"),
    ],
)
async def test_explains_http_errors(
    server: TestServer, lenient_session: aiohttp.ClientSession, code: int, message: str
) -> None:
    with pytest.raises(FetchError) as caught:
        await fetcher(lenient_session).fetch(str(server.make_url(f"/status/{code}")))

    assert caught.value.user_message == message


async def test_explains_a_refused_connection(lenient_session: aiohttp.ClientSession) -> None:
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]

    with pytest.raises(FetchError, match=r"could not connect to 127\.0\.0\.1") as caught:
        await fetcher(lenient_session).fetch(f"http://127.0.0.1:{port}/a.png")

    assert isinstance(caught.value.__cause__, aiohttp.ClientConnectorError)


async def test_explains_an_unknown_host(lenient_session: aiohttp.ClientSession) -> None:
    with pytest.raises(FetchError, match=r"could not find the host nowhere\.localhost"):
        await fetcher(lenient_session).fetch("http://nowhere.localhost/a.png")


# --- redirects --------------------------------------------------------------


async def test_follows_a_redirect_chain_within_the_allow_list(
    server: TestServer, lenient_session: aiohttp.ClientSession
) -> None:
    download = await fetcher(lenient_session).fetch(str(server.make_url("/redirect/3")))

    assert download.data == PICTURE
    assert download.url == f"http://localhost:{server.port}/picture.png?ex=1"
    assert hits(server)["/redirect/1"] == 1


async def test_refuses_too_many_redirects(
    server: TestServer, lenient_session: aiohttp.ClientSession
) -> None:
    with pytest.raises(FetchError, match="redirects too many times"):
        await fetcher(lenient_session).fetch(str(server.make_url("/redirect/4")))

    assert hits(server)["/picture.png"] == 0


@pytest.mark.parametrize(
    "target",
    [
        "http://127.0.0.1:{port}/secret",
        "http://[::1]:{port}/secret",
        "http://2130706433:{port}/secret",
        "http://evil.example:{port}/secret",
        "http://localhost.evil.example:{port}/secret",
        "http://user:pw@localhost:{port}/secret",
        "ftp://localhost:{port}/secret",
        "file:///etc/passwd",
    ],
)
async def test_refuses_a_redirect_off_the_allow_list(
    server: TestServer,
    lenient_session: aiohttp.ClientSession,
    resolver: StaticResolver,
    traffic: Traffic,
    target: str,
) -> None:
    # Only the name is allowed, so the loopback literals are off the list too;
    # the other names would reach this server if they were followed.
    resolver.table.update({"evil.example": ["127.0.0.1"], "localhost.evil.example": ["127.0.0.1"]})
    images = fetcher(lenient_session, allowed_hosts=frozenset({"localhost"}))
    start = URL(f"http://localhost:{server.port}/redirect-to").with_query(
        target=target.format(port=server.port)
    )

    with pytest.raises(FetchError):
        await images.fetch(str(start))

    assert traffic.requests == 1
    assert hits(server)["/secret"] == 0


async def test_refuses_a_redirect_to_a_name_that_resolves_to_loopback(
    server: TestServer, make_session: MakeSession, resolver: StaticResolver
) -> None:
    # The first hop is a loopback literal, which never reaches the resolver;
    # the strict connector then refuses the allowed name that resolves to loopback.
    session = make_session(allow_private_addresses=False)
    images = fetcher(session, allowed_hosts=frozenset({"127.0.0.1", "cdn.discordapp.com"}))
    target = f"http://cdn.discordapp.com:{server.port}/secret"
    start = server.make_url("/redirect-to").with_query(target=target)

    with pytest.raises(FetchError, match=PRIVATE_ADDRESS):
        await images.fetch(str(start))

    assert resolver.asked == ["cdn.discordapp.com"]
    assert hits(server)["/secret"] == 0


# --- the strict default policy ----------------------------------------------

ALLOW_LIST = (
    "can only be downloaded from cdn.discordapp.com, images-ext-1.discordapp.net, "
    "images-ext-2.discordapp.net, media.discordapp.net"
)
HTTPS_ONLY = "only https links"
NUMERIC = "unusual number format"
CREDENTIALS = "user name or password"


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("http://localhost/x.png", HTTPS_ONLY),
        ("https://localhost/x.png", PRIVATE_ADDRESS),
        ("https://images.localhost./x.png", PRIVATE_ADDRESS),
        ("https://127.0.0.1/", PRIVATE_ADDRESS),
        ("https://10.0.0.1/", PRIVATE_ADDRESS),
        ("https://172.16.5.4/", PRIVATE_ADDRESS),
        ("https://192.168.1.1/", PRIVATE_ADDRESS),
        ("https://169.254.169.254/latest", PRIVATE_ADDRESS),
        ("https://100.64.0.1/", PRIVATE_ADDRESS),
        ("https://224.0.0.1/", PRIVATE_ADDRESS),
        ("https://0.0.0.0/", PRIVATE_ADDRESS),
        ("https://[::1]/", PRIVATE_ADDRESS),
        ("https://[::]/", PRIVATE_ADDRESS),
        ("https://[fc00::1]/", PRIVATE_ADDRESS),
        ("https://[fe80::1]/", PRIVATE_ADDRESS),
        ("https://[fe80::1%25eth0]/", PRIVATE_ADDRESS),
        ("https://[::ffff:127.0.0.1]/", PRIVATE_ADDRESS),
        ("https://2130706433/", NUMERIC),
        ("https://0177.0.0.1/", NUMERIC),
        ("https://0x7f000001/", NUMERIC),
        ("https://127.1/", NUMERIC),
        ("https://user:pw@cdn.discordapp.com/a.png", CREDENTIALS),
        ("https://:pw@cdn.discordapp.com/a.png", CREDENTIALS),
        ("ftp://cdn.discordapp.com/a.png", HTTPS_ONLY),
        ("file:///etc/passwd", HTTPS_ONLY),
        ("//cdn.discordapp.com/a.png", HTTPS_ONLY),
        ("https://evil.com/a.png", ALLOW_LIST),
        ("https://cdn.discordapp.com.evil.com/a.png", ALLOW_LIST),
        ("https://evilcdn.discordapp.com/a.png", ALLOW_LIST),
        ("https://cdn%2Ediscordapp.com/a.png", ALLOW_LIST),
        ("https://8.8.8.8/a.png", ALLOW_LIST),
        ("https://[::1/", "not a valid link"),
    ],
)
async def test_strict_policy_refuses_before_connecting(
    make_session: MakeSession, resolver: StaticResolver, traffic: Traffic, url: str, message: str
) -> None:
    images = ImageFetcher(make_session(allow_private_addresses=False), FetchPolicy())

    with pytest.raises(FetchError, match=message):
        await images.fetch(url)

    assert traffic.requests == 0
    assert resolver.asked == []


@pytest.mark.parametrize(
    ("url", "host"),
    [
        ("https://cdn.discordapp.com/attachments/1/2/a.png?ex=1&is=2&hm=3", "cdn.discordapp.com"),
        ("https://media.discordapp.net/attachments/1/2/a.png", "media.discordapp.net"),
        ("https://CDN.DiscordApp.com./a.png#fragment", "cdn.discordapp.com"),
        ("https://images.media.discordapp.net/a.png", "images.media.discordapp.net"),
    ],
)
async def test_strict_policy_lets_discord_links_through_to_the_resolver(
    make_session: MakeSession, resolver: StaticResolver, traffic: Traffic, url: str, host: str
) -> None:
    # Every name here resolves to loopback, so the guard stops them after the URL checks.
    resolver.table[host] = ["127.0.0.1"]
    images = ImageFetcher(make_session(allow_private_addresses=False), FetchPolicy())

    with pytest.raises(FetchError, match=PRIVATE_ADDRESS):
        await images.fetch(url)

    assert resolver.asked == [host]
    assert traffic.connections == 0


@pytest.mark.parametrize(
    "addresses", [["127.0.0.1"], ["1.1.1.1", "10.1.2.3"], ["::ffff:169.254.169.254"]]
)
async def test_strict_policy_refuses_an_allowed_name_resolving_to_a_private_address(
    server: TestServer,
    make_session: MakeSession,
    resolver: StaticResolver,
    traffic: Traffic,
    addresses: list[str],
) -> None:
    resolver.table["cdn.discordapp.com"] = addresses
    images = ImageFetcher(make_session(allow_private_addresses=False), FetchPolicy())

    with pytest.raises(FetchError, match=PRIVATE_ADDRESS) as caught:
        await images.fetch(f"https://cdn.discordapp.com:{server.port}/secret")

    assert isinstance(caught.value.__cause__, aiohttp.ClientConnectorDNSError)
    assert resolver.asked == ["cdn.discordapp.com"]
    assert traffic.connections == 0
    assert hits(server)["/secret"] == 0


@pytest.mark.parametrize(
    ("address", "public"),
    [
        ("1.1.1.1", True),
        ("2606:4700:4700::1111", True),
        ("64:ff9b::101:101", True),
        ("127.0.0.1", False),
        ("10.0.0.1", False),
        ("172.31.255.255", False),
        ("192.168.0.1", False),
        ("169.254.169.254", False),
        ("100.64.0.1", False),
        ("224.0.0.1", False),
        ("239.255.255.250", False),
        ("0.0.0.0", False),
        ("255.255.255.255", False),
        ("::", False),
        ("::1", False),
        ("fc00::1", False),
        ("fd12:3456::1", False),
        ("fe80::1", False),
        ("ff02::1", False),
        ("::ffff:127.0.0.1", False),
        ("::ffff:10.0.0.1", False),
        ("::7f00:1", False),
        ("2002:7f00:1::", False),
        ("64:ff9b::7f00:1", False),
    ],
)
def test_is_public_address(address: str, public: bool) -> None:
    assert is_public_address(ipaddress.ip_address(address)) is public


async def test_strict_policy_needs_a_guarded_session() -> None:
    async with aiohttp.ClientSession() as plain:
        with pytest.raises(ValueError, match="GuardedConnector"):
            ImageFetcher(plain, FetchPolicy())
    async with aiohttp.ClientSession(
        connector=GuardedConnector(allow_private_addresses=True)
    ) as lax:
        with pytest.raises(ValueError, match="GuardedConnector"):
            ImageFetcher(lax, FetchPolicy())
    async with aiohttp.ClientSession(connector=GuardedConnector(), trust_env=True) as proxied:
        with pytest.raises(ValueError, match="trust_env"):
            ImageFetcher(proxied, FetchPolicy())


# --- logging ----------------------------------------------------------------


@pytest.mark.parametrize("path", ["/picture.png", "/status/404"])
async def test_logs_host_and_path_but_never_the_signature(
    server: TestServer,
    lenient_session: aiohttp.ClientSession,
    caplog: pytest.LogCaptureFixture,
    path: str,
) -> None:
    url = server.make_url(path).with_query(ex="66a1", hm="SIGNATURE")
    caplog.set_level(logging.DEBUG, logger="bot.fetch")

    with contextlib.suppress(FetchError):
        await fetcher(lenient_session).fetch(str(url))

    assert f"127.0.0.1{path}" in caplog.text
    assert "SIGNATURE" not in caplog.text
