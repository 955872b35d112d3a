"""Recording answered pictures: image, faces and predictions in one go, once per message."""

from __future__ import annotations

import asyncio

import pytest
from sqlalchemy import func, select

from bot.storage import RecordedImage, Storage
from bot.storage.schema import Face, Image, Prediction
from tests.storage.helpers import GUILD, OTHER_GUILD, face_record, record_image


async def table_count(storage: Storage, model: type) -> int:
    async with storage.engine.connect() as connection:
        return int((await connection.execute(select(func.count()).select_from(model))).scalar_one())


async def record_message(storage: Storage, message_id: int) -> RecordedImage:
    """The same two-face picture, posted in ``message_id``."""
    return await record_image(
        storage,
        face_record("nishikino maki", tag="main"),
        face_record("hoshizora rin", tag="second"),
        message_id=message_id,
        sha256="ab" * 32,
    )


async def test_record_stores_faces_in_order_with_ranked_predictions(storage: Storage) -> None:
    recorded = await record_message(storage, 1)

    main, second = [await storage.images.face(face_id, GUILD) for face_id in recorded.face_ids]

    assert recorded.created
    assert main is not None and second is not None
    assert (main.position, second.position) == (0, 1)
    assert [s.label for s in main.scores] == ["nishikino maki", "hoshizora rin"]
    assert main.scores[0].score == pytest.approx(0.95)
    assert second.scores[0].label == "hoshizora rin"
    assert (main.model_version, main.guild_id, main.message_id, main.box) == (
        "v1",
        GUILD,
        1,
        (10, 20, 30, 40),
    )


async def test_recording_the_same_message_again_returns_the_first_ids(storage: Storage) -> None:
    first = await record_message(storage, 1)
    again = await record_message(storage, 1)

    assert again.face_ids == first.face_ids
    assert not again.created
    assert await table_count(storage, Image) == 1
    assert await table_count(storage, Face) == 2
    assert await table_count(storage, Prediction) == 4


async def test_concurrent_recordings_of_one_message_store_it_once(storage: Storage) -> None:
    results = await asyncio.gather(*(record_message(storage, 9) for _ in range(6)))

    assert len({r.face_ids for r in results}) == 1
    assert sum(r.created for r in results) == 1
    assert await table_count(storage, Face) == 2


async def test_the_same_picture_in_another_message_is_a_new_image(storage: Storage) -> None:
    first = await record_message(storage, 1)
    other = await record_message(storage, 2)

    assert set(first.face_ids).isdisjoint(other.face_ids)


async def test_a_picture_without_faces_is_recorded(storage: Storage) -> None:
    recorded = await storage.images.record(
        sha256="cd" * 32,
        width=1,
        height=1,
        guild_id=None,
        channel_id=2000,
        message_id=5,
        author_id=3000,
        model_version="v7",
        faces=[],
    )

    assert recorded.face_ids == ()
    assert await table_count(storage, Image) == 1


async def test_face_is_none_when_it_does_not_exist(storage: Storage) -> None:
    assert await storage.images.face(404, GUILD) is None


async def test_prediction_labels_are_normalised(storage: Storage) -> None:
    [face_id] = (await record_image(storage, face_record("Nishikino_Maki"))).face_ids

    face = await storage.images.face(face_id, GUILD)

    assert face is not None
    assert face.scores[0].label == "nishikino maki"


async def test_a_face_is_not_read_from_another_server(storage: Storage) -> None:
    [face_id] = (await record_image(storage, face_record())).face_ids

    assert await storage.images.face(face_id, OTHER_GUILD) is None
    assert await storage.images.face(face_id, GUILD) is not None
