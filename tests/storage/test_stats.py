"""/stats figures: activity counts and the model's accuracy as judged by its users."""

from __future__ import annotations

import pytest

from bot.storage import Stats, Storage
from tests.storage.helpers import (
    ELSEWHERE,
    GUILD,
    OTHER_GUILD,
    face_record,
    record_face,
    record_image,
)


async def test_stats_of_an_empty_database(storage: Storage) -> None:
    stats = await storage.stats.collect(GUILD)

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
    await storage.votes.cast(unjudged, 3, GUILD, "yazawa nico", False, new_account=True)

    stats = await storage.stats.collect(GUILD)

    assert (stats.images, stats.faces, stats.votes) == (5, 5, 9)
    assert (stats.corrections, stats.held, stats.training_examples) == (3, 1, 4)
    assert (stats.confirmed_faces, stats.corrected_faces) == (3, 1)
    assert stats.accuracy == pytest.approx(0.75)


async def test_a_servers_stats_count_nothing_of_another(storage: Storage) -> None:
    await record_image(storage, face_record(), face_record(tag="2"))
    there = await record_face(storage, "nishikino maki", unsure=True, guild_id=OTHER_GUILD)
    for user in (1, 2):
        await storage.votes.cast(there, user, OTHER_GUILD, "yazawa nico", False)
    await storage.votes.cast(there, 3, OTHER_GUILD, "hoshizora rin", False, new_account=True)
    await storage.examples.add_taught(ELSEWHERE, "sonoda umi", b"crop", 9)

    assert await storage.stats.collect(GUILD) == Stats(1, 2, 0, 0, 0, 0, 0, 0)
    assert await storage.stats.collect(OTHER_GUILD) == Stats(1, 1, 3, 3, 1, 2, 0, 1)
