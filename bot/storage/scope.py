"""Whose data a row is: one Discord server's, or the operator's base that every server sees.

Tables whose rows may belong to the base (characters, their aliases, training examples)
carry a ``scope_id`` column that is never NULL: a server's id, or ``BASE_SCOPE_ID`` (0,
which no Discord snowflake is) for the base. A sentinel rather than a NULL so that
``UNIQUE (scope_id, key)`` holds for the base too on SQLite and PostgreSQL alike, and so
that no caller reads the base by passing a missing server id (a DM's ``None``): the base is
only ever asked for by name, ``Scope.BASE``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

BASE_SCOPE_ID = 0


@dataclass(frozen=True, slots=True)
class Scope:
    """A server's data (``Scope.of_guild(id)``) or the operator's base (``Scope.BASE``)."""

    id: int

    BASE: ClassVar[Scope]

    @classmethod
    def of_guild(cls, guild_id: int) -> Scope:
        """The scope of server ``guild_id`` (a Discord snowflake, so positive)."""
        if guild_id <= BASE_SCOPE_ID:
            raise ValueError(f"not a server id: {guild_id!r}")
        return cls(guild_id)

    @property
    def is_base(self) -> bool:
        """True for the operator's base."""
        return self.id == BASE_SCOPE_ID

    @property
    def guild_id(self) -> int | None:
        """The server's id, or None for the base."""
        return None if self.is_base else self.id


Scope.BASE = Scope(BASE_SCOPE_ID)
