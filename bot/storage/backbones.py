"""Backbones: each ``.tflite`` stored once, by its SHA-256, for every process to load."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import select

from bot.storage._sql import Sessions, insert, reading, writing
from bot.storage.schema import Backbone


@dataclass(frozen=True)
class StoredBackbone:
    """A backbone's description (``BackboneInfo.to_dict()``) and its ``.tflite`` bytes."""

    sha256: str
    info: dict[str, Any]
    model: bytes


class BackboneRepo:
    """Stores and reads backbones; storing one twice keeps the first."""

    def __init__(self, sessions: Sessions) -> None:
        self._sessions = sessions

    async def put(self, sha256: str, name: str, info: dict[str, Any], model: bytes) -> bool:
        """Store a backbone unless it is there; True when it was new."""
        async with writing(self._sessions) as session:
            added = await session.scalar(
                insert(session, Backbone)
                .values(sha256=sha256, name=name, info=info, model=model)
                .on_conflict_do_nothing(index_elements=[Backbone.sha256])
                .returning(Backbone.sha256)
            )
            return added is not None

    async def get(self, sha256: str) -> StoredBackbone | None:
        """The backbone ``sha256``, or None."""
        async with reading(self._sessions) as session:
            row = await session.get(Backbone, sha256)
            return None if row is None else StoredBackbone(row.sha256, dict(row.info), row.model)

    async def info(self, sha256: str) -> dict[str, Any] | None:
        """The description of backbone ``sha256`` (without reading its bytes), or None."""
        async with reading(self._sessions) as session:
            info = await session.scalar(select(Backbone.info).where(Backbone.sha256 == sha256))
            return None if info is None else dict(info)
