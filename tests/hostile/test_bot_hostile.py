"""Hostile input through the real bot and the fake Discord: every corpus entry posted as a
picture, hostile downloads, and links the bot must refuse before connecting anywhere.

Each refused one gets one short reply without internals (a readable picture without an
anime face gets none, as in any watched channel), nothing reaches the training data,
refused pictures are not stored, and the bot answers a good picture afterwards.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import socket
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import pytest
import pytest_asyncio
from aiohttp import web
from aiohttp.abc import AbstractResolver, ResolveResult
from yarl import URL

from bot.fetch import FetchPolicy, GuardedConnector, ImageFetcher
from bot.storage.schema import Image, TrainingExample
from tests.e2e.answers import MAIN_FACE, answered_name
from tests.e2e.bundle import face_png
from tests.e2e.conftest import RunningAnimeBot
from tests.fake_discord import AttachmentSpec, BotMessage, FakeDiscord, StandardGuild
from tests.hostile.corpus import (
    Decodes,
    HostileInput,
    hostile_corpus,
)
from tests.pictures import TINY_LABELS

pytestmark = pytest.mark.usefixtures("discord_error_log")

GOOD_LABEL = TINY_LABELS[0]  # face_png() draws the first character
INTERNALS = re.compile(r"Traceback|File \"|\w+(Error|Exception)\b|Error:|0x[0-9a-f]{6,}")
SHORT_REPLY = 300
DOWNLOAD_CAP = 1 << 20
READ_TIMEOUT = 0.5
SERVER_PATIENCE = 10.0
# What the fetcher says instead of the decoder (the file never reaches the decoder).
FETCHER_WORDS = {"over_size_cap": ("larger than",)}


def assert_short_clean_reply(reply: BotMessage, *words: str) -> None:
    """One short reply, saying ``words``, with no traceback or exception names."""
    text = reply.text
    assert len(text) < SHORT_REPLY, text
    assert INTERNALS.search(text) is None, text
    assert all(word in text.lower() for word in words), (words, text)


def assert_answer(reply: BotMessage) -> None:
    """The reply names the drawn character of :func:`face_png`."""
    assert answered_name(reply) == GOOD_LABEL, reply.text


async def post(
    fake: FakeDiscord,
    world: StandardGuild,
    *,
    attachment: AttachmentSpec | tuple[str, bytes, str] | None = None,
    embed_url: str = "",
) -> BotMessage:
    """A member posts a picture (an attachment or a link embed) in #general; the bot's reply."""
    attachments = [attachment] if attachment is not None else []
    embeds = [{"type": "image", "url": embed_url, "image": {"url": embed_url}}] if embed_url else []
    posted = await fake.post_message(
        world.channel,
        world.member,
        embed_url,
        attachments=attachments,
        embeds=embeds,
    )
    reply = await posted.wait_for_reply()
    assert len(posted.replies) == 1, [r.text for r in posted.replies]
    return reply


async def assert_still_serving(fake: FakeDiscord, world: StandardGuild) -> None:
    """A good picture posted now is answered."""
    assert_answer(await post(fake, world, attachment=("face.png", face_png(), "image/png")))


# -- the corpus -------------------------------------------------------------------------------


def as_attachment(entry: HostileInput) -> tuple[str, bytes, str]:
    """The entry as a user would attach it."""
    return entry.filename, entry.data, entry.content_type


async def post_decodable(
    fake: FakeDiscord, world: StandardGuild, entry: HostileInput
) -> list[dict[str, Any]]:
    """A member posts ``entry`` with a good face after it; what the bot's one reply to the
    post says about the entry: an answer's embed (when a detector found a face in it) or,
    as for any picture without an anime face in a watched channel, nothing."""
    posted = await fake.post_message(
        world.channel,
        world.member,
        attachments=[as_attachment(entry), ("face.png", face_png(), "image/png")],
    )
    reply = await posted.wait_for_reply()
    *about_entry, good = reply.embeds
    assert MAIN_FACE.match(good["title"])["name"].lower() == GOOD_LABEL, reply.text
    assert posted.replies == [reply]
    return about_entry


def assert_bot_outcome(outcome: list[dict[str, Any]] | BotMessage, entry: HostileInput) -> None:
    """A refusal in the expected words; for a decodable entry nothing, or an answer."""
    if isinstance(outcome, list):
        for embed in outcome:
            text = f"{embed.get('title', '')} {embed.get('description', '')}"
            assert MAIN_FACE.match(embed.get("title") or ""), text
            assert INTERNALS.search(text) is None, text
    else:
        assert_short_clean_reply(outcome, *FETCHER_WORDS.get(entry.name, entry.expect.words))


async def test_every_corpus_entry_gets_one_short_answer_and_stores_nothing(
    fake_discord: FakeDiscord, world: StandardGuild, running: RunningAnimeBot
) -> None:
    # One bot for the whole corpus (a bot per entry would cost a minute).
    for entry in hostile_corpus():
        images_before = await running.count(Image)

        if isinstance(entry.expect, Decodes):
            outcome: list[dict[str, Any]] | BotMessage = await post_decodable(
                fake_discord, world, entry
            )
        else:
            outcome = await post(fake_discord, world, attachment=as_attachment(entry))

        assert_bot_outcome(outcome, entry)
        if not isinstance(entry.expect, Decodes):
            assert await running.count(Image) == images_before, entry.name
    assert await running.count(TrainingExample) == 0
    await assert_still_serving(fake_discord, world)


# -- downloads and links ------------------------------------------------------------------------


@dataclass
class Trap:
    """A TCP server on 127.0.0.1 that counts connections: what must never be reached."""

    port: int = 0
    connections: int = 0


@pytest_asyncio.fixture
async def trap() -> AsyncIterator[Trap]:
    """A listening trap; links to it must be refused before connecting."""
    found = Trap()

    async def accept(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        found.connections += 1
        writer.close()

    server = await asyncio.start_server(accept, "127.0.0.1", 0)
    found.port = server.sockets[0].getsockname()[1]
    async with server:
        yield found


@dataclass
class Downloads:
    """Every URL the bot's download session started a request for (before connecting)."""

    requested: list[URL] = field(default_factory=list)

    def hosts(self) -> set[str]:
        """The hosts requests were started for."""
        return {url.host or "" for url in self.requested}


def tracing(downloads: Downloads) -> aiohttp.TraceConfig:
    """Record the URL of every request the session starts (before any connection)."""
    config = aiohttp.TraceConfig()

    async def started(_: object, __: object, params: aiohttp.TraceRequestStartParams) -> None:
        downloads.requested.append(params.url)

    config.on_request_start.append(started)
    return config


@pytest_asyncio.fixture
async def local_only(
    running: RunningAnimeBot, fake_discord: FakeDiscord
) -> AsyncIterator[Downloads]:
    """The bot downloads only from the fake's CDN host, with a 1 MiB cap and 0.5 s stall limit.

    The fake's CDN is plain http on 127.0.0.1, so local addresses must stay allowed at the
    connector; the allow-list holds only that host.
    """
    downloads = Downloads()
    policy = FetchPolicy(
        max_bytes=DOWNLOAD_CAP,
        total_timeout=5.0,
        read_timeout=READ_TIMEOUT,
        allowed_hosts=frozenset({URL(fake_discord.cdn_base).host or ""}),
        allow_private_addresses=True,
    )
    connector = GuardedConnector(allow_private_addresses=True)
    async with aiohttp.ClientSession(connector=connector, trace_configs=[tracing(downloads)]) as s:
        running.bot.fetcher = ImageFetcher(s, policy)
        yield downloads


class StaticResolver(AbstractResolver):
    """Names resolve to fixed addresses (the Discord CDN to 127.0.0.1: DNS rebinding)."""

    def __init__(self, addresses: dict[str, str]) -> None:
        self.addresses = addresses

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        if host not in self.addresses:
            raise OSError(f"no address for {host}")
        return [
            ResolveResult(
                hostname=host,
                host=self.addresses[host],
                port=port,
                family=socket.AF_INET,
                proto=0,
                flags=socket.AI_NUMERICHOST,
            )
        ]

    async def close(self) -> None:
        """Nothing to release."""


@pytest_asyncio.fixture
async def production(running: RunningAnimeBot) -> AsyncIterator[Downloads]:
    """The bot downloads as in production (https, Discord's CDN, public addresses only),
    with the CDN's names resolving to local addresses."""
    downloads = Downloads()
    resolver = StaticResolver(
        {"cdn.discordapp.com": "127.0.0.1", "media.discordapp.net": "10.0.0.1"}
    )
    connector = GuardedConnector(resolver=resolver)
    async with aiohttp.ClientSession(connector=connector, trace_configs=[tracing(downloads)]) as s:
        running.bot.fetcher = ImageFetcher(s, FetchPolicy())
        yield downloads


async def until_disconnected(request: web.Request) -> None:
    """Wait (bounded) until the client hangs up, so that the fake's shutdown is not held up."""
    for _ in range(int(SERVER_PATIENCE / 0.05)):
        if request.transport is None or request.transport.is_closing():
            return
        await asyncio.sleep(0.05)


async def png_response(request: web.Request, length: int | None) -> web.StreamResponse:
    """A started "image/png" answer announcing ``length`` bytes (chunked if None)."""
    response = web.StreamResponse(headers={"Content-Type": "image/png"})
    if length is None:
        response.enable_chunked_encoding()
    else:
        response.content_length = length
    await response.prepare(request)
    return response


async def announces_over_the_cap(request: web.Request) -> web.StreamResponse:
    """Announces 8 MiB, sends 1 KB, then waits."""
    response = await png_response(request, 8 * DOWNLOAD_CAP)
    await response.write(face_png()[:1024])
    await until_disconnected(request)
    return response


async def endless_without_length(request: web.Request) -> web.StreamResponse:
    """Chunked, no length: sends up to 16 MiB of a "PNG" unless the client hangs up."""
    response = await png_response(request, None)
    chunk = face_png()[:64] + bytes(64 * 1024)
    for _ in range(16 * DOWNLOAD_CAP // len(chunk)):
        if request.transport is None or request.transport.is_closing():
            break
        await response.write(chunk)
    return response


async def stalls(request: web.Request) -> web.StreamResponse:
    """Sends the headers and 100 bytes, then nothing."""
    picture = face_png()
    response = await png_response(request, len(picture))
    await response.write(picture[:100])
    await until_disconnected(request)
    return response


async def cut_off(request: web.Request) -> web.StreamResponse:
    """Announces the whole picture, sends half of it and closes the connection."""
    picture = face_png()
    response = await png_response(request, len(picture))
    await response.write(picture[: len(picture) // 2])
    assert request.transport is not None
    request.transport.close()
    return response


@pytest_asyncio.fixture
async def overflowing() -> AsyncIterator[str]:
    """A raw HTTP server (aiohttp's own would trim the body) that announces a picture's
    length and sends 4 MiB more; the URL of its picture."""
    picture = face_png()

    async def answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        head = f"HTTP/1.1 200 OK\r\nContent-Type: image/png\r\nContent-Length: {len(picture)}\r\n"
        writer.write(head.encode() + b"\r\n" + picture + bytes(4 * DOWNLOAD_CAP))
        with contextlib.suppress(ConnectionError):  # the client may hang up first
            await writer.drain()
        writer.close()

    server = await asyncio.start_server(answer, "127.0.0.1", 0)
    async with server:
        yield f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}/face.png"


DOWNLOADS: dict[str, tuple[Callable[[web.Request], Awaitable[web.StreamResponse]], str]] = {
    "announces_over_the_cap": (announces_over_the_cap, "larger than"),
    "endless_without_length": (endless_without_length, "larger than"),
    "stalls": (stalls, "stalled"),
    "cut_off": (cut_off, "cut off"),
}


@pytest.mark.parametrize("case", list(DOWNLOADS))
async def test_hostile_download_is_refused_and_the_bot_carries_on(
    fake_discord: FakeDiscord,
    world: StandardGuild,
    running: RunningAnimeBot,
    local_only: Downloads,
    case: str,
) -> None:
    handler, words = DOWNLOADS[case]
    url = fake_discord.add_route("GET", f"/hostile/{case}.png", handler)

    reply = await post(fake_discord, world, attachment=AttachmentSpec("face.png", url=url))

    assert_short_clean_reply(reply, words)
    assert await running.count(Image) == 0
    await assert_still_serving(fake_discord, world)
    assert await running.count(TrainingExample) == 0


async def test_download_with_more_bytes_than_announced_is_refused_as_malformed(
    fake_discord: FakeDiscord,
    world: StandardGuild,
    running: RunningAnimeBot,
    local_only: Downloads,
    overflowing: str,
) -> None:
    # aiohttp's parser takes the bytes after the announced length for a next response and
    # fails the download, rather than handing over a longer body or the announced prefix.
    reply = await post(fake_discord, world, attachment=AttachmentSpec("face.png", url=overflowing))

    assert_short_clean_reply(reply, "malformed")
    assert await running.count(Image) == 0
    await assert_still_serving(fake_discord, world)
    assert await running.count(TrainingExample) == 0


LOCAL_ONLY_REFUSALS = {
    "http://localhost:{trap}/face.png": "can only be downloaded from",
    "http://[::1]:{trap}/face.png": "can only be downloaded from",
    "http://10.0.0.1/face.png": "can only be downloaded from",
    "http://169.254.169.254/latest/meta-data/iam/security-credentials/": "can only be",
}
PRODUCTION_REFUSALS = {
    "https://localhost:{trap}/face.png": "private or local address",
    "https://127.0.0.1:{trap}/face.png": "private or local address",
    "https://[::ffff:127.0.0.1]:{trap}/face.png": "private or local address",
    "https://10.0.0.1/face.png": "private or local address",
    "https://169.254.169.254/latest/meta-data/": "private or local address",
    "https://2130706433:{trap}/face.png": "unusual number format",
    # An allowed name that resolves to 127.0.0.1: refused after the lookup, before connecting.
    "https://cdn.discordapp.com:{trap}/attachments/1/2/face.png": "private or local address",
    "http://cdn.discordapp.com:{trap}/attachments/1/2/face.png": "only https",
    "https://evil.example/face.png": "can only be downloaded from",
}


async def assert_links_refused(
    fake: FakeDiscord,
    world: StandardGuild,
    running: RunningAnimeBot,
    trap: Trap,
    refusals: dict[str, str],
) -> None:
    """Each link, posted as an embed, gets a refusal; the trap saw no connection."""
    for template, words in refusals.items():
        reply = await post(fake, world, embed_url=template.format(trap=trap.port))
        assert_short_clean_reply(reply, words)
    assert trap.connections == 0
    assert await running.count(Image) == 0


async def test_links_off_the_cdn_are_refused_before_connecting(
    fake_discord: FakeDiscord,
    world: StandardGuild,
    running: RunningAnimeBot,
    local_only: Downloads,
    trap: Trap,
) -> None:
    await assert_links_refused(fake_discord, world, running, trap, LOCAL_ONLY_REFUSALS)

    assert local_only.requested == []
    await assert_still_serving(fake_discord, world)


async def test_production_policy_refuses_local_addresses_before_connecting(
    fake_discord: FakeDiscord,
    world: StandardGuild,
    running: RunningAnimeBot,
    production: Downloads,
    trap: Trap,
) -> None:
    await assert_links_refused(fake_discord, world, running, trap, PRODUCTION_REFUSALS)

    # Only the allowed name was requested (its lookup was refused); nothing else at all.
    assert production.hosts() <= {"cdn.discordapp.com"}
    reply = await post(fake_discord, world, attachment=("face.png", face_png(), "image/png"))
    assert_short_clean_reply(reply, "only https")  # the fake's CDN is plain http


@pytest.mark.parametrize(
    "target",
    [
        "http://localhost:{trap}/face.png",
        "http://169.254.169.254/latest/meta-data/",
        "http://10.0.0.1/face.png",
    ],
)
async def test_redirect_from_the_cdn_towards_a_local_address_is_not_followed(
    fake_discord: FakeDiscord,
    world: StandardGuild,
    running: RunningAnimeBot,
    local_only: Downloads,
    trap: Trap,
    target: str,
) -> None:
    # 127.0.0.1 is the (allowed) CDN itself here, so the targets are other local places.
    location = target.format(trap=trap.port)

    async def redirect(_: web.Request) -> web.StreamResponse:
        raise web.HTTPFound(location)

    url = fake_discord.add_route("GET", "/hostile/redirect.png", redirect)

    reply = await post(fake_discord, world, attachment=AttachmentSpec("face.png", url=url))

    assert_short_clean_reply(reply, "can only be downloaded from")
    assert [str(u) for u in local_only.requested] == [url]
    assert trap.connections == 0


async def test_identify_refuses_links_off_the_cdn_before_connecting(
    fake_discord: FakeDiscord,
    world: StandardGuild,
    running: RunningAnimeBot,
    local_only: Downloads,
    trap: Trap,
) -> None:
    local = f"http://localhost:{trap.port}/face.png"
    embedded = await fake_discord.post_message(
        world.channel, world.member, local, embeds=[{"type": "image", "image": {"url": local}}]
    )
    await embedded.wait_for_reply()  # the channel is watched: refused there too
    message_link = f"https://discord.com/channels/{world.guild.id}/{world.channel.id}/{embedded.id}"
    asked: dict[str, tuple[dict[str, Any], str]] = {
        # A plain picture link is read like an attachment: refused by the same allow-list.
        "link": ({"link": local}, "can only be downloaded from"),
        "message": ({"link": message_link}, "can only be downloaded from"),
        "image": (
            {"image": AttachmentSpec("face.png", url="http://10.0.0.1/face.png")},
            "can only be downloaded from",
        ),
    }

    for options, words in asked.values():
        command = await fake_discord.send_slash_command(
            "identify", options, user=world.member, channel=world.channel
        )
        assert_short_clean_reply(await command.wait_for_message(), words)

    assert local_only.requested == []
    assert trap.connections == 0
    assert await running.count(Image) == 0
