"""The dataset the trainer reads: taught examples and voted ones, streamed in batches."""

from __future__ import annotations

from bot.storage import Storage
from tests.storage.helpers import GUILD, png, record_face


async def test_taught_examples_join_the_dataset(storage: Storage) -> None:
    await storage.examples.add_taught("Nishikino Maki", png("a"), contributor_id=9, guild_id=GUILD)
    await storage.examples.add_taught("hoshizora rin", png("b"), contributor_id=9, guild_id=None)

    dataset = [item async for item in storage.examples.iter_dataset()]

    assert dataset == [("nishikino maki", png("a")), ("hoshizora rin", png("b"))]
    assert await storage.characters.all() == ["hoshizora rin", "nishikino maki"]


async def test_iter_dataset_reads_every_example_across_batches(storage: Storage) -> None:
    for i in range(7):
        await storage.examples.add_taught(f"character {i % 3}", png(str(i)), 9, GUILD)

    dataset = [item async for item in storage.examples.iter_dataset(batch_size=2)]

    assert [crop for _, crop in dataset] == [png(str(i)) for i in range(7)]


async def test_counts_cover_taught_and_voted_examples(storage: Storage) -> None:
    await storage.examples.add_taught("hoshizora rin", png("t"), 9, GUILD)
    face = await record_face(storage, unsure=True)
    for user in (1, 2):
        await storage.votes.cast(face, user, GUILD, "hoshizora rin", False)

    assert await storage.examples.counts() == {"hoshizora rin": 2}


async def test_an_empty_dataset(storage: Storage) -> None:
    assert [item async for item in storage.examples.iter_dataset()] == []
    assert await storage.examples.counts() == {}
