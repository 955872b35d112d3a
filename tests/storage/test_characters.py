"""Characters: one per key and scope, display names kept, aliases, search; never shared
between servers."""

from __future__ import annotations

import asyncio

import pytest

from bot.errors import InvalidNameError
from bot.storage import Storage
from bot.storage.scope import Scope
from tests.storage.helpers import ELSEWHERE, HERE


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
