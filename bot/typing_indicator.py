"""The typing indicator, shown once per channel however many pictures are in progress there.

discord.py's ``async with channel.typing()`` sends one typing request when it is entered and
another every 5 seconds, for each picture. When 50 pictures wait in the queue of one channel,
that is 50 requests at once and 10 a second after that, all for one indicator ("the bot is
typing…") that Discord shows per channel and per user. They cost the event loop, the
connection pool and Discord's per-channel rate limit, and they tell the user nothing more.

:class:`TypingIndicator` keeps one loop per channel while at least one picture there is in
progress. Discord hides a user's indicator when that user sends a message, so after each
reply in a channel where more pictures are still in progress the indicator is sent again,
at most once every ``min_gap`` seconds.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import aiohttp
import discord

log = logging.getLogger(__name__)

REFRESH_INTERVAL = 5.0
"""Seconds between typing requests while work goes on (Discord shows one for about 10 s)."""
MIN_GAP = 1.0
"""The fewest seconds between two typing requests in one channel."""


@dataclass(eq=False)
class _Channel:
    channel: discord.abc.Messageable
    pending: int = 0
    replied: asyncio.Event = field(default_factory=asyncio.Event)
    task: asyncio.Task[None] | None = None


class TypingIndicator:
    """Shows "typing…" in a channel while at least one picture there is in progress."""

    def __init__(self, *, interval: float = REFRESH_INTERVAL, min_gap: float = MIN_GAP) -> None:
        if interval <= 0 or min_gap < 0 or min_gap > interval:
            raise ValueError("need 0 <= min_gap <= interval and interval > 0")
        self.interval = interval
        self.min_gap = min_gap
        self._channels: dict[int, _Channel] = {}

    def pending(self, channel_id: int) -> int:
        """Pictures in progress in ``channel_id``."""
        state = self._channels.get(channel_id)
        return state.pending if state else 0

    @contextlib.asynccontextmanager
    async def working(
        self, channel: discord.abc.Messageable, channel_id: int
    ) -> AsyncIterator[None]:
        """Hold the indicator in ``channel`` for the duration of the block.

        Entering never waits for Discord: the first request is sent by the channel's loop.
        """
        state = self._channels.get(channel_id)
        if state is None:
            state = self._channels[channel_id] = _Channel(channel)
            state.task = asyncio.get_running_loop().create_task(
                self._loop(channel_id, state), name=f"typing-{channel_id}"
            )
        state.pending += 1
        try:
            yield
        finally:
            state.pending -= 1
            if state.pending == 0:
                self._channels.pop(channel_id, None)
                if state.task is not None:
                    state.task.cancel()

    def replied(self, channel_id: int) -> None:
        """The bot has just sent a message in ``channel_id``, which hides its indicator:
        show it again soon if other pictures there are still in progress."""
        state = self._channels.get(channel_id)
        if state is not None:
            state.replied.set()

    async def _loop(self, channel_id: int, state: _Channel) -> None:
        last = -float("inf")
        while True:
            wait = self.min_gap - (time.monotonic() - last)
            if wait > 0:
                await asyncio.sleep(wait)
            state.replied.clear()
            last = time.monotonic()
            try:
                await state.channel.typing()  # one typing request
            except discord.Forbidden:
                log.debug("may not show typing in channel %s", channel_id)
                return  # the pictures are still answered; the indicator is a courtesy
            except (discord.HTTPException, aiohttp.ClientError, OSError, TimeoutError) as exc:
                log.debug("typing indicator in channel %s failed: %s", channel_id, exc)
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self.interval):
                    await state.replied.wait()
