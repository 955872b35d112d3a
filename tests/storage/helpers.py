"""Small builders shared by the storage tests."""

from __future__ import annotations

import hashlib
import itertools

from bot.storage import FaceRecord, LabelScore, RecordedImage, Storage
from bot.storage.scope import Scope

GUILD = 1000
CHANNEL = 2000
POSTER = 3000

_messages = itertools.count(1_000_000)  # far from the ids tests choose themselves


def png(tag: str) -> bytes:
    """Distinct stand-in bytes for a face crop (the storage layer never decodes them)."""
    return b"\x89PNG\r\n\x1a\n" + tag.encode()


def face_record(
    label: str = "nishikino maki",
    score: float = 0.95,
    *,
    unsure: bool = False,
    others: tuple[str, ...] = ("hoshizora rin",),
    tag: str = "face",
) -> FaceRecord:
    """A face whose top label is ``label``; the other labels share what is left."""
    rest = (1.0 - score) / max(len(others), 1)
    return FaceRecord(
        box=(10, 20, 30, 40),
        detector="cascade",
        crop_image=png(tag),
        scores=(LabelScore(label, score), *(LabelScore(other, rest) for other in others)),
        unsure=unsure,
    )


async def record_image(
    storage: Storage,
    *faces: FaceRecord,
    message_id: int | None = None,
    sha256: str | None = None,
    guild_id: int | None = GUILD,
    author_id: int = POSTER,
) -> RecordedImage:
    """Store a picture with ``faces`` (one default face if none), by default in a new message."""
    message_id = next(_messages) if message_id is None else message_id
    return await storage.images.record(
        sha256=sha256 or hashlib.sha256(str(message_id).encode()).hexdigest(),
        width=640,
        height=480,
        guild_id=guild_id,
        channel_id=CHANNEL,
        message_id=message_id,
        author_id=author_id,
        model_version="v1",
        faces=faces or (face_record(),),
    )


async def record_face(
    storage: Storage,
    label: str = "nishikino maki",
    score: float = 0.95,
    *,
    unsure: bool = False,
    guild_id: int | None = GUILD,
    author_id: int = POSTER,
    tag: str = "face",
) -> int:
    """Store a picture with one face whose model answer is ``label``; return the face's id."""
    recorded = await record_image(
        storage,
        face_record(label, score, unsure=unsure, tag=tag),
        guild_id=guild_id,
        author_id=author_id,
    )
    return recorded.face_ids[0]


OTHER_GUILD = 1001
HERE = Scope.of_guild(GUILD)
ELSEWHERE = Scope.of_guild(OTHER_GUILD)
