"""Characters: one per key and scope, display names kept, aliases, search; never shared
between servers."""

from __future__ import annotations

import asyncio

import pytest
from sqlalchemy import select

from bot.errors import InvalidNameError
from bot.storage import Storage
from bot.storage.schema import Vote
from bot.storage.scope import Scope
from tests.storage.helpers import ELSEWHERE, GUILD, HERE, record_face


async def test_get_or_create_returns_the_same_character_for_the_same_key(
    storage: Storage,
) -> None:
    first = await storage.characters.get_or_create(HERE, "Nishikino Maki", created_by=5)
    second = await storage.characters.get_or_create(HERE, "nishikino_maki")

    assert first == second
    assert (first.key, first.name) == ("nishikino maki", "Nishikino Maki")
    assert await storage.characters.names(HERE) == ["Nishikino Maki"]


async def test_concurrent_creation_of_one_name_makes_one_character(storage: Storage) -> None:
    made = await asyncio.gather(
        *(storage.characters.get_or_create(HERE, "Sonoda Umi") for _ in range(6))
    )

    assert len({character.id for character in made}) == 1
    assert await storage.characters.names(HERE) == ["Sonoda Umi"]


async def test_the_same_name_in_two_servers_is_two_characters(storage: Storage) -> None:
    here = await storage.characters.get_or_create(HERE, "Nishikino Maki")
    there = await storage.characters.get_or_create(ELSEWHERE, "NISHIKINO MAKI")

    assert here.id != there.id
    assert (here.scope, there.scope) == (HERE, ELSEWHERE)
    assert there.name == "NISHIKINO MAKI"


async def test_a_servers_characters_are_not_seen_from_another(storage: Storage) -> None:
    await storage.characters.get_or_create(HERE, "Nishikino Maki")
    await storage.characters.add_alias(HERE, "Nishikino Maki", "Maki-chan")

    assert await storage.characters.names(ELSEWHERE) == []
    assert await storage.characters.find(ELSEWHERE, "Maki-chan") is None
    assert await storage.characters.search(ELSEWHERE, "maki") == []
    assert await storage.characters.names(Scope.BASE) == []


async def test_an_alias_finds_its_character(storage: Storage) -> None:
    maki = await storage.characters.get_or_create(HERE, "Nishikino Maki")

    await storage.characters.add_alias(HERE, "nishikino maki", "Maki-chan")

    assert await storage.characters.find(HERE, "maki chan") is None
    assert await storage.characters.find(HERE, "MAKI-CHAN") == maki
    assert await storage.characters.get_or_create(HERE, "Maki-chan") == maki
    assert await storage.characters.search(HERE, "chan") == ["Nishikino Maki"]


async def test_an_alias_cannot_name_two_characters(storage: Storage) -> None:
    await storage.characters.get_or_create(HERE, "Nishikino Maki")
    await storage.characters.get_or_create(HERE, "Sakurauchi Riko")
    await storage.characters.add_alias(HERE, "Nishikino Maki", "Maki")

    with pytest.raises(InvalidNameError, match="already names Nishikino Maki"):
        await storage.characters.add_alias(HERE, "Sakurauchi Riko", "maki")
    with pytest.raises(InvalidNameError, match="already names Sakurauchi Riko"):
        await storage.characters.add_alias(HERE, "Nishikino Maki", "Sakurauchi Riko")


async def test_an_alias_needs_a_character(storage: Storage) -> None:
    with pytest.raises(InvalidNameError, match="no character called Rem"):
        await storage.characters.add_alias(HERE, "Rem", "Remu")


async def test_search_puts_names_starting_with_the_text_first(storage: Storage) -> None:
    for name in ("Hoshizora Rin", "Rin Tohsaka", "Nishikino Maki", "100% Orange", "a_b"):
        await storage.characters.get_or_create(HERE, name)

    assert await storage.characters.search(HERE, "Rin") == ["Rin Tohsaka", "Hoshizora Rin"]
    assert await storage.characters.search(HERE, "%") == ["100% Orange"]
    assert await storage.characters.search(HERE, "") == [
        "100% Orange",
        "a b",
        "Hoshizora Rin",
        "Nishikino Maki",
        "Rin Tohsaka",
    ]
    assert await storage.characters.search(HERE, "", limit=1) == ["100% Orange"]


async def test_a_rename_carries_the_servers_votes_along(storage: Storage) -> None:
    face = await record_face(storage, "nishikino maki", 0.5)
    await storage.characters.get_or_create(HERE, "Nishikno Maki")
    await storage.votes.cast(face, 7, GUILD, "Nishikno Maki", False)

    renamed = await storage.characters.rename(HERE, "nishikno maki", "Nishikino Maki")

    assert (renamed.key, renamed.name) == ("nishikino maki", "Nishikino Maki")
    assert await storage.characters.find(HERE, "Nishikno Maki") is None
    async with storage.engine.connect() as connection:
        labels = list(await connection.scalars(select(Vote.label)))
    assert labels == ["nishikino maki"]


async def test_a_rename_onto_another_character_is_refused(storage: Storage) -> None:
    for name in ("Rem", "Ram"):
        await storage.characters.get_or_create(HERE, name)

    with pytest.raises(InvalidNameError, match="merge the two instead"):
        await storage.characters.rename(HERE, "Rem", "ram")


async def test_a_merge_moves_examples_and_keeps_the_old_name_as_an_alias(storage: Storage) -> None:
    await storage.examples.add_taught(HERE, "Maki", b"one", 1)
    await storage.examples.add_taught(HERE, "Nishikino Maki", b"two", 1)

    await storage.characters.merge(HERE, "maki", "nishikino maki")

    assert await storage.examples.counts(HERE) == {"Nishikino Maki": 2}
    found = await storage.characters.find(HERE, "Maki")
    assert found is not None and found.name == "Nishikino Maki"
    [entry] = await storage.characters.catalogue(HERE)
    assert (entry.name, entry.aliases, entry.examples) == ("Nishikino Maki", ("Maki",), 2)


async def test_a_hidden_character_is_left_out_until_shown_again(storage: Storage) -> None:
    for name in ("Kurosawa Dia", "Kurosawa Ruby"):
        await storage.characters.get_or_create(HERE, name)

    await storage.characters.set_hidden(HERE, "kurosawa ruby", True)

    assert await storage.characters.search(HERE, "kuro") == ["Kurosawa Dia"]
    assert [e.name for e in await storage.characters.catalogue(HERE)] == ["Kurosawa Dia"]
    await storage.characters.set_hidden(HERE, "kurosawa ruby", False)
    assert await storage.characters.search(HERE, "kuro") == ["Kurosawa Dia", "Kurosawa Ruby"]


async def test_character_changes_stay_in_their_server(storage: Storage) -> None:
    await storage.characters.get_or_create(ELSEWHERE, "Rem")

    with pytest.raises(InvalidNameError, match="no character called Rem"):
        await storage.characters.rename(HERE, "Rem", "Ram")
    assert await storage.characters.names(ELSEWHERE) == ["Rem"]
