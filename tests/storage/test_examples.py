"""The dataset the trainer reads: taught examples and voted ones, one server's at a time,
streamed in batches."""

from __future__ import annotations

import pytest

from bot.errors import StorageError
from bot.storage import Storage
from bot.storage.scope import Scope
from tests.storage.helpers import ELSEWHERE, GUILD, HERE, png, record_face


async def test_taught_examples_join_the_servers_dataset(storage: Storage) -> None:
    await storage.examples.add_taught(HERE, "Nishikino Maki", png("a"), contributor_id=9)
    await storage.examples.add_taught(HERE, "hoshizora rin", png("b"), contributor_id=9)

    dataset = [item async for item in storage.examples.iter_dataset(HERE)]

    assert dataset == [("Nishikino Maki", png("a")), ("hoshizora rin", png("b"))]
    assert await storage.characters.names(HERE) == ["hoshizora rin", "Nishikino Maki"]


async def test_a_servers_dataset_has_nothing_of_another(storage: Storage) -> None:
    await storage.examples.add_taught(HERE, "Nishikino Maki", png("here"), contributor_id=9)
    await storage.examples.add_taught(ELSEWHERE, "Nishikino Maki", png("there"), contributor_id=9)
    await storage.examples.add_taught(ELSEWHERE, "Sakurauchi Riko", png("riko"), contributor_id=9)

    here = [item async for item in storage.examples.iter_dataset(HERE)]

    assert here == [("Nishikino Maki", png("here"))]
    assert await storage.examples.counts(HERE) == {"Nishikino Maki": 1}
    assert await storage.examples.counts(ELSEWHERE) == {"Nishikino Maki": 1, "Sakurauchi Riko": 1}


async def test_iter_dataset_reads_every_example_across_batches(storage: Storage) -> None:
    for i in range(7):
        await storage.examples.add_taught(HERE, f"character {i % 3}", png(str(i)), 9)
        await storage.examples.add_taught(ELSEWHERE, "intruder", png(f"x{i}"), 9)

    dataset = [item async for item in storage.examples.iter_dataset(HERE, batch_size=2)]

    assert [crop for _, crop in dataset] == [png(str(i)) for i in range(7)]


async def test_counts_cover_taught_and_voted_examples(storage: Storage) -> None:
    await storage.examples.add_taught(HERE, "hoshizora rin", png("t"), 9)
    face = await record_face(storage, unsure=True)
    for user in (1, 2):
        await storage.votes.cast(face, user, GUILD, "hoshizora rin", False)

    assert await storage.examples.counts(HERE) == {"hoshizora rin": 2}


async def test_a_voted_example_belongs_to_its_pictures_server(storage: Storage) -> None:
    face = await record_face(storage, unsure=True, guild_id=ELSEWHERE.id)
    for user in (1, 2):
        await storage.votes.cast(face, user, ELSEWHERE.id, "hoshizora rin", False)

    assert await storage.examples.counts(HERE) == {}
    assert await storage.examples.counts(ELSEWHERE) == {"hoshizora rin": 1}


async def test_a_picture_from_outside_a_server_never_becomes_an_example(
    storage: Storage,
) -> None:
    face = await record_face(storage, guild_id=None)

    with pytest.raises(StorageError):
        await storage.votes.confirm_by_moderator(face, GUILD, "hoshizora rin", 9)
    assert await storage.examples.counts(HERE) == {}


async def test_an_empty_dataset(storage: Storage) -> None:
    assert [item async for item in storage.examples.iter_dataset(HERE)] == []
    assert await storage.examples.counts(HERE) == {}


async def test_a_picture_of_the_base_is_imported_once(storage: Storage) -> None:
    first = await storage.examples.add_imported(
        "Nishikino Maki", png("maki"), picture_sha256="a" * 64, origin="Nishikino_Maki/1.jpg"
    )
    again = await storage.examples.add_imported(
        "Nishikino Maki", png("maki"), picture_sha256="a" * 64, origin="copy/1.jpg"
    )

    assert first is not None and again is None
    (ref,) = await storage.examples.training_refs(Scope.BASE)
    assert (ref.id, ref.scope, ref.key, ref.name, ref.group) == (
        first,
        Scope.BASE,
        "nishikino maki",
        "Nishikino Maki",
        "a" * 64,
    )


async def test_a_servers_training_set_is_the_base_and_its_own_only(storage: Storage) -> None:
    base = await storage.examples.add_imported(
        "Nishikino Maki", png("maki"), picture_sha256="a" * 64, origin="m/1.jpg"
    )
    own = await storage.examples.add_taught(HERE, "Sakurauchi Riko", png("riko"), 9)
    await storage.examples.add_taught(ELSEWHERE, "Intruder", png("x"), 9)

    refs = await storage.examples.training_refs(HERE)

    assert [(r.id, r.scope, r.key) for r in refs] == [
        (base, Scope.BASE, "nishikino maki"),
        (own, HERE, "sakurauchi riko"),
    ]


async def test_a_server_example_may_name_a_base_character(storage: Storage) -> None:
    await storage.examples.add_imported(
        "Nishikino Maki", png("maki"), picture_sha256="a" * 64, origin="m/1.jpg"
    )

    await storage.examples.add_taught(HERE, "nishikino maki", png("correction"), 9)

    refs = await storage.examples.training_refs(HERE)
    assert {r.key for r in refs} == {"nishikino maki"}
    assert await storage.characters.names(HERE) == []  # no copy of the base's character
    assert [r.scope for r in refs] == [Scope.BASE, HERE]


async def test_embeddings_are_cached_per_backbone(storage: Storage) -> None:
    example = await storage.examples.add_taught(HERE, "Maki", png("m"), 9)
    for sha in ("1" * 64, "2" * 64):
        await storage.backbones.put(sha, "toy", {}, b"tflite")
    await storage.examples.store_embeddings("1" * 64, {example: b"one", example + 99: b"gone"})
    await storage.examples.store_embeddings("1" * 64, {example: b"again"})  # kept: the first

    assert await storage.examples.embeddings("1" * 64, [example]) == {example: b"one"}
    assert await storage.examples.embeddings("2" * 64, [example]) == {}
    assert await storage.examples.crops([example, example + 99]) == {example: png("m")}
