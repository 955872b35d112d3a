"""Per-server settings and watched channels."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import delete, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from bot.storage._sql import Sessions, insert, reading, rowcount, writing
from bot.storage.schema import (
    DEFAULT_AUTO_REPLY,
    DEFAULT_LABELS_SHOWN,
    DEFAULT_VOTES_NEEDED,
    GuildSettings,
    WatchedChannel,
    utcnow,
)

MAX_LABELS_SHOWN = 25
MAX_VOTES_NEEDED = 100


@dataclass(frozen=True)
class GuildConfig:
    """A server's settings as the bot uses them (defaults when the server never changed any)."""

    guild_id: int
    auto_reply: bool = DEFAULT_AUTO_REPLY
    labels_shown: int = DEFAULT_LABELS_SHOWN
    votes_needed: int = DEFAULT_VOTES_NEEDED
    watched_channels: frozenset[int] = frozenset()
    watch_all: bool = False

    def watches(self, channel_id: int) -> bool:
        """Whether the bot answers pictures posted in ``channel_id`` unasked: only in watched
        channels (or every channel, when the admin said so), and only with auto-reply on."""
        return self.auto_reply and (self.watch_all or channel_id in self.watched_channels)


async def votes_needed(session: AsyncSession, guild_id: int | None) -> int:
    """How many agreeing people turn a vote into training data in ``guild_id`` (None: a DM)."""
    if guild_id is None:
        return DEFAULT_VOTES_NEEDED
    needed = await session.scalar(
        select(GuildSettings.votes_needed).where(GuildSettings.guild_id == guild_id)
    )
    return DEFAULT_VOTES_NEEDED if needed is None else needed


class GuildSettingsRepo:
    """Reads and changes per-server settings."""

    def __init__(self, sessions: Sessions) -> None:
        self._sessions = sessions

    async def get(self, guild_id: int) -> GuildConfig:
        """The server's settings, or the defaults if it has none stored."""
        async with reading(self._sessions) as session:
            return await self._load(session, guild_id)

    async def update(
        self,
        guild_id: int,
        *,
        auto_reply: bool | None = None,
        labels_shown: int | None = None,
        votes_needed: int | None = None,
        watch_all: bool | None = None,
    ) -> GuildConfig:
        """Change the given settings (None leaves one as it is) and return the result."""
        if labels_shown is not None and not 1 <= labels_shown <= MAX_LABELS_SHOWN:
            raise ValueError(f"labels_shown must be between 1 and {MAX_LABELS_SHOWN}")
        if votes_needed is not None and not 1 <= votes_needed <= MAX_VOTES_NEEDED:
            raise ValueError(f"votes_needed must be between 1 and {MAX_VOTES_NEEDED}")
        changes = {
            name: value
            for name, value in (
                ("auto_reply", auto_reply),
                ("labels_shown", labels_shown),
                ("votes_needed", votes_needed),
                ("watch_all", watch_all),
            )
            if value is not None
        }
        async with writing(self._sessions) as session:
            await self._ensure_row(session, guild_id)
            row = await session.get_one(GuildSettings, guild_id)
            for name, value in changes.items():
                setattr(row, name, value)
            row.updated_at = utcnow()
            await session.flush()
            return await self._load(session, guild_id)

    async def watch(self, guild_id: int, channel_id: int) -> None:
        """Answer pictures in ``channel_id`` without being asked (no-op if already watched)."""
        async with writing(self._sessions) as session:
            await self._ensure_row(session, guild_id)
            await session.execute(
                insert(session, WatchedChannel)
                .values(guild_id=guild_id, channel_id=channel_id)
                .on_conflict_do_nothing()
            )

    async def unwatch(self, guild_id: int, channel_id: int) -> bool:
        """Stop watching ``channel_id``; False if it was not watched."""
        async with writing(self._sessions) as session:
            removed = await rowcount(
                session,
                delete(WatchedChannel).where(
                    WatchedChannel.guild_id == guild_id, WatchedChannel.channel_id == channel_id
                ),
            )
            return removed > 0

    async def watched(self, guild_id: int) -> frozenset[int]:
        """The channels of ``guild_id`` the bot watches."""
        async with reading(self._sessions) as session:
            return await self._watched(session, guild_id)

    @staticmethod
    async def _ensure_row(session: AsyncSession, guild_id: int) -> None:
        await session.execute(
            insert(session, GuildSettings).values(guild_id=guild_id).on_conflict_do_nothing()
        )

    @staticmethod
    async def _watched(session: AsyncSession, guild_id: int) -> frozenset[int]:
        channels = await session.scalars(
            select(WatchedChannel.channel_id).where(WatchedChannel.guild_id == guild_id)
        )
        return frozenset(channels)

    async def _load(self, session: AsyncSession, guild_id: int) -> GuildConfig:
        row = await session.get(GuildSettings, guild_id)
        watched = await self._watched(session, guild_id)
        if row is None:
            return GuildConfig(guild_id=guild_id, watched_channels=watched)
        return GuildConfig(
            guild_id=guild_id,
            auto_reply=row.auto_reply,
            labels_shown=row.labels_shown,
            votes_needed=row.votes_needed,
            watched_channels=watched,
            watch_all=row.watch_all,
        )

    async def welcome_once(self, guild_id: int) -> bool:
        """Mark the server's admin as told how to start; True only for the first caller (across
        processes), so they are told once."""
        async with writing(self._sessions) as session:
            await self._ensure_row(session, guild_id)
            marked = await rowcount(
                session,
                update(GuildSettings)
                .where(GuildSettings.guild_id == guild_id, GuildSettings.welcomed_at.is_(None))
                .values(welcomed_at=utcnow()),
            )
            return marked > 0
