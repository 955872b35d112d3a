"""The characters the bot can name."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.names import normalise_name
from bot.storage._sql import Sessions, insert, reading, writing
from bot.storage.schema import Character


@dataclass(frozen=True)
class CharacterInfo:
    """A stored character."""

    id: int
    name: str


async def character_id(session: AsyncSession, name: str, created_by: int | None = None) -> int:
    """The id of the character called ``name`` (normalised), created if it is new."""
    name = normalise_name(name)
    # ON CONFLICT DO NOTHING: two transactions naming the same new character both succeed.
    await session.execute(
        insert(session, Character)
        .values(name=name, created_by=created_by)
        .on_conflict_do_nothing(index_elements=[Character.name])
    )
    return (await session.scalars(select(Character.id).where(Character.name == name))).one()


class CharacterRepo:
    """Looks up and creates characters by their normalised name."""

    def __init__(self, sessions: Sessions) -> None:
        self._sessions = sessions

    async def get_or_create(self, name: str, created_by: int | None = None) -> CharacterInfo:
        """The character called ``name`` (normalised), created if it is new."""
        async with writing(self._sessions) as session:
            return CharacterInfo(
                id=await character_id(session, name, created_by), name=normalise_name(name)
            )

    async def all(self) -> list[str]:
        """Every character's name, alphabetically."""
        async with reading(self._sessions) as session:
            return list(await session.scalars(select(Character.name).order_by(Character.name)))

    async def search(self, text: str, limit: int = 25) -> list[str]:
        """Names containing ``text`` (normalised), those starting with it first (autocomplete)."""
        try:
            needle = normalise_name(text) if text.strip() else ""
        except ValueError:
            return []
        pattern = "%" + needle.replace("\\", "\\\\").replace("%", "\\%") + "%"
        async with reading(self._sessions) as session:
            matches = list(
                await session.scalars(
                    select(Character.name)
                    .where(Character.name.like(pattern, escape="\\"))
                    .order_by(Character.name)
                )
            )
        matches.sort(key=lambda name: not name.startswith(needle))
        return matches[:limit]
