"""The characters of one scope (a server, or the base): display names, keys and aliases.

Every method takes the scope and reads or changes only that scope's characters.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import delete, func, literal, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from bot.errors import InvalidNameError
from bot.names import display_name, normalise_name
from bot.storage._sql import Sessions, insert, reading, writing
from bot.storage.schema import Character, CharacterAlias, TrainingExample, Vote
from bot.storage.scope import Scope


@dataclass(frozen=True)
class CharacterInfo:
    """A stored character: its display name and the key it is matched by."""

    id: int
    scope: Scope
    key: str
    name: str
    hidden: bool = False


@dataclass(frozen=True)
class CharacterEntry:
    """A character as ``/characters`` lists it: its name, aliases and training examples."""

    name: str
    aliases: tuple[str, ...]
    examples: int
    hidden: bool


async def find_character(session: AsyncSession, scope: Scope, name: str) -> CharacterInfo | None:
    """The character of ``scope`` whose name or alias matches ``name``, or None."""
    key = normalise_name(name)
    aliased = select(CharacterAlias.character_id).where(
        CharacterAlias.scope_id == scope.id, CharacterAlias.key == key
    )
    row = await session.scalar(
        select(Character).where(
            Character.scope_id == scope.id, or_(Character.key == key, Character.id.in_(aliased))
        )
    )
    return None if row is None else CharacterInfo(row.id, scope, row.key, row.name, row.hidden)


async def find_visible(session: AsyncSession, scope: Scope, name: str) -> CharacterInfo | None:
    """The character ``name`` names as seen from ``scope``: the scope's own, else (for a
    server) the base's, which every server sees; None if neither has one."""
    found = await find_character(session, scope, name)
    if found is None and not scope.is_base:
        found = await find_character(session, Scope.BASE, name)
    return found


async def character_for(
    session: AsyncSession, scope: Scope, name: str, created_by: int | None = None
) -> CharacterInfo:
    """The character that ``name`` (or an alias) names as seen from ``scope`` (a server's
    example may name a base character: it corrects the base model for that server), created
    in ``scope`` if it is new, with ``name`` as its display name."""
    found = await find_visible(session, scope, name)
    if found is not None:
        return found
    shown = display_name(name)
    # ON CONFLICT DO NOTHING: two transactions naming the same new character both succeed.
    await session.execute(
        insert(session, Character)
        .values(scope_id=scope.id, key=normalise_name(shown), name=shown, created_by=created_by)
        .on_conflict_do_nothing(index_elements=[Character.scope_id, Character.key])
    )
    created = await find_character(session, scope, name)
    assert created is not None  # inserted, or inserted by the transaction that won
    return created


class CharacterRepo:
    """Looks up, creates and names the characters of a scope."""

    def __init__(self, sessions: Sessions) -> None:
        self._sessions = sessions

    async def get_or_create(
        self, scope: Scope, name: str, created_by: int | None = None
    ) -> CharacterInfo:
        """The character of ``scope`` called ``name`` (or aliased so), created if it is new."""
        async with writing(self._sessions) as session:
            return await character_for(session, scope, name, created_by)

    async def find(self, scope: Scope, name: str) -> CharacterInfo | None:
        """The character of ``scope`` called ``name`` or aliased so, or None."""
        async with reading(self._sessions) as session:
            return await find_character(session, scope, name)

    async def find_visible(self, scope: Scope, name: str) -> CharacterInfo | None:
        """The character ``name`` names as a server sees it: its own, else the base's."""
        async with reading(self._sessions) as session:
            return await find_visible(session, scope, name)

    async def listing(self, scope: Scope) -> list[CharacterInfo]:
        """Every character of ``scope``, alphabetically by key."""
        async with reading(self._sessions) as session:
            rows = await session.scalars(
                select(Character).where(Character.scope_id == scope.id).order_by(Character.key)
            )
            return [CharacterInfo(row.id, scope, row.key, row.name, row.hidden) for row in rows]

    async def names(self, scope: Scope) -> list[str]:
        """Every character's display name in ``scope``, alphabetically."""
        return [character.name for character in await self.listing(scope)]

    async def add_alias(self, scope: Scope, name: str, alias: str) -> CharacterInfo:
        """Let ``alias`` name the character ``name`` of ``scope`` too.

        Raises ``InvalidNameError`` when ``name`` is no character of the scope, or when
        ``alias`` already names another one.
        """
        key = normalise_name(alias)
        async with writing(self._sessions) as session:
            character = await find_character(session, scope, name)
            if character is None:
                raise InvalidNameError(
                    "There is no character called {name}.", name=display_name(name)
                )
            taken = await find_character(session, scope, alias)
            if taken is not None:
                if taken.id == character.id:
                    return character
                raise InvalidNameError(
                    "{alias} already names {name}.", alias=display_name(alias), name=taken.name
                )
            session.add(
                CharacterAlias(
                    character_id=character.id,
                    scope_id=scope.id,
                    key=key,
                    name=display_name(alias),
                )
            )
            await session.flush()
            return character

    async def search(
        self, scope: Scope, text: str, limit: int = 25, *, include_hidden: bool = False
    ) -> list[str]:
        """Display names of ``scope`` whose name or an alias contains ``text``, those starting
        with it first (autocomplete); hidden characters only when asked."""
        try:
            needle = normalise_name(text) if text.strip() else ""
        except InvalidNameError:
            return []
        pattern = "%" + needle.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
        aliased = select(CharacterAlias.character_id).where(
            CharacterAlias.scope_id == scope.id, CharacterAlias.key.like(pattern, escape="\\")
        )
        async with reading(self._sessions) as session:
            rows = list(
                await session.execute(
                    select(Character.key, Character.name)
                    .where(
                        Character.scope_id == scope.id,
                        or_(Character.key.like(pattern, escape="\\"), Character.id.in_(aliased)),
                        or_(Character.hidden.is_(False), literal(include_hidden)),
                    )
                    .order_by(Character.key)
                )
            )
        rows.sort(key=lambda row: not row.key.startswith(needle))
        return [row.name for row in rows[:limit]]

    async def search_visible(self, scope: Scope, text: str, limit: int = 25) -> list[str]:
        """:meth:`search` over what a server sees: its own characters first, then the base's
        that it has no character of the same name for (a hidden one hides the base's too)."""
        found = await self.search(scope, text, limit)
        if scope.is_base:
            return found
        own = {character.key for character in await self.listing(scope)}
        base = await self.search(Scope.BASE, text, limit)
        found += [name for name in base if normalise_name(name) not in own]
        return found[:limit]

    async def catalogue(
        self, scope: Scope, *, include_hidden: bool = False
    ) -> list[CharacterEntry]:
        """Every character of ``scope`` with its aliases and examples, alphabetically."""
        async with reading(self._sessions) as session:
            query = select(Character).where(Character.scope_id == scope.id)
            if not include_hidden:
                query = query.where(Character.hidden.is_(False))
            characters = list(await session.scalars(query.order_by(Character.key)))
            aliases: dict[int, list[str]] = {}
            for character_id, alias in await session.execute(
                select(CharacterAlias.character_id, CharacterAlias.name)
                .where(CharacterAlias.scope_id == scope.id)
                .order_by(CharacterAlias.key)
            ):
                aliases.setdefault(character_id, []).append(alias)
            counted = await session.execute(
                select(TrainingExample.character_id, func.count())
                .where(TrainingExample.scope_id == scope.id)
                .group_by(TrainingExample.character_id)
            )
            counts = {character_id: count for character_id, count in counted}
            return [
                CharacterEntry(
                    row.name, tuple(aliases.get(row.id, ())), counts.get(row.id, 0), row.hidden
                )
                for row in characters
            ]

    async def rename(self, scope: Scope, name: str, new_name: str) -> CharacterInfo:
        """Give the character ``name`` of ``scope`` the display name (and key) ``new_name``;
        votes for the old name follow. ``InvalidNameError`` when there is no such character
        or ``new_name`` names another one (merge them instead)."""
        async with writing(self._sessions) as session:
            character = await self._existing(session, scope, name)
            taken = await find_character(session, scope, new_name)
            if taken is not None and taken.id != character.id:
                raise InvalidNameError(
                    "{alias} already names {name}: merge the two instead.",
                    alias=display_name(new_name),
                    name=taken.name,
                )
            key = normalise_name(new_name)
            await session.execute(
                delete(CharacterAlias).where(
                    CharacterAlias.scope_id == scope.id, CharacterAlias.key == key
                )
            )
            await session.execute(
                update(Character)
                .where(Character.id == character.id)
                .values(key=key, name=display_name(new_name))
            )
            await self._relabel_votes(session, scope, character.key, key)
            return CharacterInfo(character.id, scope, key, display_name(new_name), character.hidden)

    async def merge(self, scope: Scope, name: str, into: str) -> CharacterInfo:
        """Fold the character ``name`` into ``into``: its training examples and aliases move,
        its name becomes an alias of ``into`` (so typing it still finds the character), and
        votes for it count for ``into``."""
        async with writing(self._sessions) as session:
            source = await self._existing(session, scope, name)
            target = await self._existing(session, scope, into)
            if source.id == target.id:
                raise InvalidNameError(
                    "{name} and {other} are one character.",
                    name=source.name,
                    other=display_name(into),
                )
            await session.execute(
                update(TrainingExample)
                .where(TrainingExample.character_id == source.id)
                .values(character_id=target.id)
            )
            await session.execute(
                update(CharacterAlias)
                .where(CharacterAlias.character_id == source.id)
                .values(character_id=target.id)
            )
            await session.execute(delete(Character).where(Character.id == source.id))
            session.add(
                CharacterAlias(
                    character_id=target.id, scope_id=scope.id, key=source.key, name=source.name
                )
            )
            await self._relabel_votes(session, scope, source.key, target.key)
            await session.flush()
            return target

    async def set_hidden(self, scope: Scope, name: str, hidden: bool) -> CharacterInfo:
        """Hide the character ``name`` from menus, autocomplete and ``/characters`` (or show
        it again); its examples stay."""
        async with writing(self._sessions) as session:
            character = await self._existing(session, scope, name)
            await session.execute(
                update(Character).where(Character.id == character.id).values(hidden=hidden)
            )
            return CharacterInfo(character.id, scope, character.key, character.name, hidden)

    @staticmethod
    async def _existing(session: AsyncSession, scope: Scope, name: str) -> CharacterInfo:
        found = await find_character(session, scope, name)
        if found is None:
            raise InvalidNameError(
                "There is no character called {name} here.", name=display_name(name)
            )
        return found

    @staticmethod
    async def _relabel_votes(session: AsyncSession, scope: Scope, old: str, new: str) -> None:
        """Votes of the scope's server for key ``old`` now say ``new`` (a server's votes
        store keys; the base has no votes)."""
        if old != new:
            await session.execute(
                update(Vote).where(Vote.guild_id == scope.id, Vote.label == old).values(label=new)
            )
