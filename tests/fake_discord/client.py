"""Running the real discord.py client against the fake: redirect it, start it, watch its log."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Iterator
from typing import TYPE_CHECKING, TypeVar

import discord
import yarl
from discord.gateway import DiscordWebSocket
from discord.http import Route

if TYPE_CHECKING:
    from .server import FakeDiscord

ClientT = TypeVar("ClientT", bound=discord.Client)

FAST_GUILD_READY_TIMEOUT = 0.1
"""Pass as ``guild_ready_timeout=`` to the client under test. discord.py fires
``on_ready`` only after this many seconds pass without a GUILD_CREATE (default 2 s),
so every bot start in a test would otherwise cost 2 s."""


@contextlib.contextmanager
def discord_py_pointed_at(fake: FakeDiscord) -> Iterator[None]:
    """Send discord.py's REST calls (``Route.BASE``, which webhooks and interaction
    callbacks use too) and its gateway connection (``DEFAULT_GATEWAY``) to ``fake``;
    restore both afterwards. These are process-wide: one fake per process at a time."""
    saved = Route.BASE, DiscordWebSocket.DEFAULT_GATEWAY
    Route.BASE = fake.api_base
    DiscordWebSocket.DEFAULT_GATEWAY = yarl.URL(fake.gateway_url)
    try:
        yield
    finally:
        Route.BASE, DiscordWebSocket.DEFAULT_GATEWAY = saved


@contextlib.asynccontextmanager
async def running_bot(
    client: ClientT,
    fake: FakeDiscord,
    *,
    timeout: float = 10.0,  # noqa: ASYNC109
) -> AsyncIterator[ClientT]:
    """Log ``client`` in with the fake's token, connect it, and yield once it is ready
    (all shards); close it and wait for its connection loop to end on exit.

    Build the client with ``guild_ready_timeout=FAST_GUILD_READY_TIMEOUT``.
    """
    connection: asyncio.Task[None] | None = None
    try:
        await client.login(fake.token)
        connection = asyncio.create_task(client.connect(), name="fake-discord-client")
        ready = asyncio.create_task(client.wait_until_ready(), name="fake-discord-ready")
        done, _ = await asyncio.wait(
            {connection, ready}, timeout=timeout, return_when=asyncio.FIRST_COMPLETED
        )
        ready.cancel()
        if connection in done:
            connection.result()
            raise AssertionError("the client stopped before it was ready")
        if ready not in done:
            raise AssertionError(f"the client was not ready within {timeout:g}s")
        yield client
    finally:
        await client.close()
        if connection is not None:
            await connection


class DiscordErrorLog(logging.Handler):
    """Collects ERROR (and worse) records of the ``discord`` logger, where discord.py
    reports exceptions in event handlers, commands and views it otherwise swallows."""

    def __init__(self, logger_name: str = "discord", level: int = logging.ERROR) -> None:
        super().__init__(level)
        self.logger = logging.getLogger(logger_name)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)

    def __enter__(self) -> DiscordErrorLog:
        self.logger.addHandler(self)
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.logger.removeHandler(self)

    def take(self) -> list[logging.LogRecord]:
        """Return and forget the records (for tests that expect errors)."""
        records, self.records = self.records, []
        return records

    def assert_clean(self) -> None:
        """Fail, with the messages and tracebacks, if anything was logged at ERROR."""
        if self.records:
            formatter = logging.Formatter("%(name)s %(levelname)s: %(message)s")
            listing = "\n".join(formatter.format(record) for record in self.records)
            raise AssertionError(f"discord.py logged {len(self.records)} error(s):\n{listing}")
