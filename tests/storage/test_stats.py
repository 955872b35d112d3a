"""/stats figures: activity counts and the model's accuracy as judged by its users."""

from __future__ import annotations

import pytest

from bot.storage import Stats, Storage
from tests.storage.helpers import GUILD, face_record, record_face, record_image

OTHER_GUILD = 5000


async def test_stats_of_an_empty_database(storage: Storage) -> None:
    stats = await storage.stats.collect()

    assert stats == Stats(0, 0, 0, 0, 0, 0, 0, 0)
    assert stats.accuracy is None


async def test_accuracy_is_the_share_of_judged_faces_the_model_got_right(
    storage: Storage,
) -> None:
    right = [await record_face(storage, "nishikino maki", unsure=True) for _ in range(3)]
    wrong = await record_face(storage, "nishikino maki", unsure=True)
    unjudged = await record_face(storage, "nishikino maki")
    for face in right:
        for user in (1, 2):
            await storage.votes.cast(face, user, GUILD, "nishikino maki", True)
    for user in (1, 2):
        await storage.votes.cast(wrong, user, GUILD, "yazawa nico", False)
    await storage.votes.cast(unjudged, 3, GUILD, "yazawa nico", False, hold=True)

    stats = await storage.stats.collect(GUILD)

    assert (stats.images, stats.faces, stats.votes) == (5, 5, 9)
    assert (stats.corrections, stats.held, stats.training_examples) == (3, 1, 4)
    assert (stats.confirmed_faces, stats.corrected_faces) == (3, 1)
    assert stats.accuracy == pytest.approx(0.75)


async def test_stats_are_per_server_or_everywhere(storage: Storage) -> None:
    await record_image(storage, face_record(), face_record(tag="2"))
    await record_image(storage, face_record(), guild_id=OTHER_GUILD)

    assert (await storage.stats.collect(GUILD)).faces == 2
    assert (await storage.stats.collect(OTHER_GUILD)).faces == 1
    assert (await storage.stats.collect()).faces == 3
