"""The recognize cog's cached per-server settings, and how one reply covers a post's pictures."""

from __future__ import annotations

import asyncio
from pathlib import Path

import discord
import pytest

from bot.cogs import recognize
from bot.cogs.recognize import AnswerPart, Recognize, combine
from bot.errors import StorageError
from bot.i18n import ENGLISH
from bot.storage.db import Storage
from bot.storage.guilds import GuildConfig
from bot.vision.classifier import LabelScore, Prediction
from bot.vision.geometry import Box
from bot.vision.recognizer import FaceResult
from tests.cogs import GUILD, fake_bot


@pytest.fixture
def cog(storage: Storage, tmp_path: Path) -> Recognize:
    return Recognize(fake_bot(storage, tmp_path / "models"))


async def test_settings_are_read_once_within_the_ttl(cog: Recognize, storage: Storage) -> None:
    assert (await cog.guild_config(GUILD)).labels_shown == 3
    await storage.guilds.update(GUILD, labels_shown=5)  # as another process would

    assert (await cog.guild_config(GUILD)).labels_shown == 3


async def test_a_settings_command_here_takes_effect_at_once(
    cog: Recognize, storage: Storage
) -> None:
    await cog.guild_config(GUILD)
    await storage.guilds.update(GUILD, labels_shown=5)

    await cog.on_guild_settings_changed(GUILD)

    assert (await cog.guild_config(GUILD)).labels_shown == 5


async def test_settings_changed_elsewhere_are_seen_after_the_ttl(
    cog: Recognize, storage: Storage, monkeypatch: pytest.MonkeyPatch
) -> None:
    await cog.guild_config(GUILD)
    await storage.guilds.update(GUILD, labels_shown=5)
    monkeypatch.setattr(recognize, "SETTINGS_TTL", 0.0)

    assert (await cog.guild_config(GUILD)).labels_shown == 5


class CountingReads:
    """Counts the settings reads that reach the real repository (a spy, not a fake)."""

    def __init__(self, storage: Storage, monkeypatch: pytest.MonkeyPatch) -> None:
        self.calls = 0
        self.gate = asyncio.Event()
        self.gate.set()
        real = storage.guilds.get

        async def get(guild_id: int) -> GuildConfig:
            self.calls += 1
            await self.gate.wait()
            return await real(guild_id)

        monkeypatch.setattr(storage.guilds, "get", get)


async def test_posts_arriving_together_share_one_settings_read(
    cog: Recognize, storage: Storage, monkeypatch: pytest.MonkeyPatch
) -> None:
    await storage.guilds.update(GUILD, labels_shown=4)
    reads = CountingReads(storage, monkeypatch)
    reads.gate.clear()

    waiting = [asyncio.create_task(cog.guild_config(GUILD)) for _ in range(50)]
    await asyncio.sleep(0.05)
    reads.gate.set()
    configs = await asyncio.gather(*waiting)

    assert reads.calls == 1
    assert {c.labels_shown for c in configs} == {4}


async def test_one_waiter_giving_up_does_not_cancel_the_shared_read(
    cog: Recognize, storage: Storage, monkeypatch: pytest.MonkeyPatch
) -> None:
    await storage.guilds.update(GUILD, labels_shown=4)
    reads = CountingReads(storage, monkeypatch)
    reads.gate.clear()
    first = asyncio.create_task(cog.guild_config(GUILD))
    second = asyncio.create_task(cog.guild_config(GUILD))
    await asyncio.sleep(0.05)

    first.cancel()
    reads.gate.set()

    assert (await second).labels_shown == 4
    assert first.cancelled()
    assert reads.calls == 1


async def test_a_change_during_a_read_is_not_overwritten_by_that_read(
    cog: Recognize, storage: Storage, monkeypatch: pytest.MonkeyPatch
) -> None:
    reads = CountingReads(storage, monkeypatch)
    reads.gate.clear()
    stale = asyncio.create_task(cog.guild_config(GUILD))
    await asyncio.sleep(0.05)
    # The read has started (and will see the old settings); a settings command now runs.
    await storage.guilds.update(GUILD, labels_shown=5)
    monkeypatch.setattr(recognize, "SETTINGS_TTL", 3600.0)
    await cog.on_guild_settings_changed(GUILD)
    reads.gate.set()
    await stale

    assert (await cog.guild_config(GUILD)).labels_shown == 5
    assert reads.calls == 2


async def test_the_database_down_gives_the_last_settings_read(
    cog: Recognize, storage: Storage, monkeypatch: pytest.MonkeyPatch
) -> None:
    await storage.guilds.update(GUILD, labels_shown=4)
    assert (await cog.guild_config(GUILD)).labels_shown == 4
    monkeypatch.setattr(recognize, "SETTINGS_TTL", 0.0)

    async def down(guild_id: int) -> GuildConfig:
        raise StorageError("The database is not available right now")

    monkeypatch.setattr(storage.guilds, "get", down)

    assert (await cog.guild_config(GUILD)).labels_shown == 4
    assert (await cog.guild_config(GUILD + 1)).labels_shown == 3  # never read: the defaults


def part(number: int, face_id: int) -> AnswerPart:
    """The answer to the post's picture ``number``: one face, named Maki."""
    face = FaceResult(
        Box(0, 0, 10, 10),
        "cascade",
        Prediction((LabelScore("maki", 0.9), LabelScore("rin", 0.1)), False, 0.5),
        views=None,  # type: ignore[arg-type]
    )
    return AnswerPart(
        discord.Embed(title="Maki (90%)"), face_ids=[face_id], faces=[face], number=number
    )


def authors(payload: dict[str, object]) -> list[str | None]:
    return [embed.author.name for embed in payload["embeds"]]  # type: ignore[attr-defined]


def menus(payload: dict[str, object]) -> list[str | None]:
    view = payload["view"]
    assert isinstance(view, discord.ui.View)
    rows = view.to_components()
    return [
        item.get("placeholder") for row in rows for item in row["components"] if item["type"] == 3
    ]


async def test_answers_keep_their_pictures_numbers_when_one_has_no_face() -> None:
    payload = combine([part(1, 7), part(2, 8), part(4, 9)], {}, ENGLISH, looked_at=4)

    assert authors(payload) == ["Picture 1 of 4", "Picture 2 of 4", "Picture 4 of 4"]
    assert payload["content"] == "Pictures without an anime face: 3."
    assert menus(payload) == ["Face 1: who is it?", "Face 2: who is it?", "Face 4: who is it?"]


async def test_a_lone_answer_to_one_of_several_pictures_says_which_it_is() -> None:
    payload = combine([part(3, 7)], {}, ENGLISH, looked_at=4)

    assert authors(payload) == ["Picture 3 of 4"]
    assert payload["content"] == "Pictures without an anime face: 1, 2, 4."
    assert menus(payload) == ["Face 3: who is it?"]


async def test_one_picture_gets_no_number_and_no_note() -> None:
    payload = combine([part(1, 7)], {}, ENGLISH, looked_at=1)

    assert authors(payload) == [None]
    assert "content" not in payload
    assert menus(payload) == ["Face 1: who is it?"]


async def test_pictures_left_out_and_pictures_without_a_face_are_both_said() -> None:
    payload = combine([part(1, 7), part(3, 8), part(4, 9)], {}, ENGLISH, skipped=1, looked_at=4)

    assert payload["content"] == (
        "I look at a message's first 4 pictures and left out the other 1.\n"
        "Pictures without an anime face: 2."
    )
