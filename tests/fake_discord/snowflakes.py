"""Discord snowflake ids: timestamp-based, unique, and placeable on a chosen shard."""

from __future__ import annotations

import itertools
import time

DISCORD_EPOCH_MS = 1_420_070_400_000


def shard_of(guild_id: int, shard_count: int) -> int:
    """The shard that Discord routes a guild to: ``(guild_id >> 22) % shard_count``."""
    return (guild_id >> 22) % shard_count


def snowflake_time_ms(snowflake: int) -> int:
    """Unix time in milliseconds encoded in a snowflake."""
    return (snowflake >> 22) + DISCORD_EPOCH_MS


class SnowflakeFactory:
    """Hands out increasing snowflakes stamped with the current time.

    discord.py computes an interaction's expiry from its id, so ids must carry a
    realistic timestamp; the counter keeps ids unique within one millisecond.
    """

    def __init__(self, worker_id: int = 1) -> None:
        self._worker = (worker_id & 0x1F) << 17
        self._counter = itertools.count()

    def next(self) -> int:
        """A fresh snowflake for the present moment."""
        return self._make(int(time.time() * 1000) - DISCORD_EPOCH_MS)

    def for_shard(self, shard_id: int, shard_count: int) -> int:
        """A fresh snowflake whose guild routing lands on ``shard_id`` of ``shard_count``.

        The timestamp is moved at most ``shard_count - 1`` milliseconds back.
        """
        if not 0 <= shard_id < shard_count:
            raise ValueError(f"shard {shard_id} is outside 0..{shard_count - 1}")
        stamp = int(time.time() * 1000) - DISCORD_EPOCH_MS
        stamp -= (stamp - shard_id) % shard_count
        return self._make(stamp)

    def _make(self, stamp_ms: int) -> int:
        return (stamp_ms << 22) | self._worker | (next(self._counter) & 0xFFF)
