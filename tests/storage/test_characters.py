"""Characters: normalised names, created once."""

from __future__ import annotations

import asyncio

import pytest

from bot.storage import Storage, normalise_name


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("Nishikino Maki", "nishikino maki"),
        ("  nishikino   MAKI ", "nishikino maki"),
        ("nishikino_maki", "nishikino maki"),
        ("Ｍａｋｉ", "maki"),  # full-width letters
        ("Hatsune\tMiku", "hatsune miku"),
    ],
)
def test_names_are_normalised(raw: str, expected: str) -> None:
    assert normalise_name(raw) == expected


@pytest.mark.parametrize("raw", ["", "   ", "x" * 101])
def test_empty_or_overlong_names_are_refused(raw: str) -> None:
    with pytest.raises(ValueError, match="character name"):
        normalise_name(raw)


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
