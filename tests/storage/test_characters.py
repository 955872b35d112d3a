"""Characters: normalised names, created once."""

from __future__ import annotations

import asyncio

from bot.storage import Storage


async def test_get_or_create_returns_the_same_character_for_the_same_name(
    storage: Storage,
) -> None:
    first = await storage.characters.get_or_create("Nishikino Maki", created_by=5)
    second = await storage.characters.get_or_create("nishikino_maki")

    assert first == second
    assert first.name == "nishikino maki"
    assert await storage.characters.all() == ["nishikino maki"]


async def test_concurrent_creation_of_one_name_makes_one_character(storage: Storage) -> None:
    made = await asyncio.gather(*(storage.characters.get_or_create("Sonoda Umi") for _ in range(6)))

    assert len({character.id for character in made}) == 1
    assert await storage.characters.all() == ["sonoda umi"]


async def test_search_puts_names_starting_with_the_text_first(storage: Storage) -> None:
    for name in ("hoshizora rin", "rin tohsaka", "nishikino maki", "100% orange"):
        await storage.characters.get_or_create(name)

    assert await storage.characters.search("Rin") == ["rin tohsaka", "hoshizora rin"]
    assert await storage.characters.search("%") == ["100% orange"]
    assert await storage.characters.search("") == [
        "100% orange",
        "hoshizora rin",
        "nishikino maki",
        "rin tohsaka",
    ]
    assert await storage.characters.search("", limit=1) == ["100% orange"]
