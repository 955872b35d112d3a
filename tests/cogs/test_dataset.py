"""/teach, /export and /stats, each about its own server only."""

from __future__ import annotations

import io
import zipfile
from pathlib import Path
from unittest.mock import create_autospec

import discord
import numpy as np
import pytest

from bot.cogs.dataset import Dataset
from bot.fetch import Download
from bot.storage.db import Storage
from bot.storage.scope import Scope
from bot.views import FacePicker
from tests.cogs import GUILD, fake_bot, fake_interaction, invoke, sent_text
from tests.pictures import (
    CHARACTERS,
    blank_picture,
    character_picture,
    encode,
    group_picture,
    landscape_picture,
)

HERE = Scope.of_guild(GUILD)
MODERATOR = discord.Permissions(manage_messages=True)


@pytest.fixture
def cog(storage: Storage, tmp_path: Path) -> Dataset:
    return Dataset(fake_bot(storage, tmp_path / "models"))


def attachments(cog: Dataset, *pictures: np.ndarray) -> list[discord.Attachment]:
    """Attachments whose download (through the bot's fetcher) gives ``pictures``."""
    served = {}
    made = []
    for number, pixels in enumerate(pictures):
        attachment = create_autospec(discord.Attachment, instance=True)
        attachment.url = f"https://cdn.discordapp.com/{number}.png"
        served[attachment.url] = Download(encode(pixels), attachment.url, "image/png")
        made.append(attachment)
    cog.bot.fetcher.fetch.side_effect = lambda url: served[url]  # type: ignore[attr-defined]
    return made


def portrait(seed: int = 5) -> np.ndarray:
    return character_picture(CHARACTERS[0], np.random.default_rng(seed))


async def test_teach_learns_the_face_of_a_portrait(cog: Dataset, storage: Storage) -> None:
    interaction = fake_interaction(permissions=MODERATOR)
    [picture] = attachments(cog, portrait())

    await invoke(cog, "teach", interaction, " Nishikino Maki", picture)

    assert sent_text(interaction) == "Teaching *Nishikino Maki*:\n1. learnt"
    assert await storage.examples.counts(HERE) == {"Nishikino Maki": 1}
    cog.bot.dispatch.assert_called_with("guild_characters_changed", GUILD)  # type: ignore[attr-defined]


@pytest.mark.parametrize("picture", [blank_picture, landscape_picture], ids=["blank", "landscape"])
async def test_teach_stores_nothing_of_a_picture_without_an_anime_face(
    cog: Dataset, storage: Storage, picture: object
) -> None:
    interaction = fake_interaction(permissions=MODERATOR)
    [attachment] = attachments(cog, picture())  # type: ignore[operator]

    await invoke(cog, "teach", interaction, "Nishikino Maki", attachment)

    assert "1. not used: I found no anime face in that picture." in sent_text(interaction)
    assert await storage.examples.counts(HERE) == {}
    assert await storage.characters.names(HERE) == []


async def test_teach_asks_which_face_of_a_group_picture(cog: Dataset, storage: Storage) -> None:
    interaction = fake_interaction(permissions=MODERATOR)
    good, group = attachments(cog, portrait(), group_picture())

    await invoke(cog, "teach", interaction, "Nishikino Maki", good, group)

    summary, question = interaction.followup.send.await_args_list  # type: ignore[attr-defined]
    assert (
        summary.args[0] == "Teaching *Nishikino Maki*:\n1. learnt\n2. 2 faces: which one? (below)"
    )
    assert question.args[0] == "Picture 2: which face is *Nishikino Maki*?"
    assert question.kwargs["ephemeral"] is True
    assert question.kwargs["file"].filename == "faces.jpg"
    view = question.kwargs["view"]
    assert isinstance(view, FacePicker)
    assert [item.label for item in view.children] == ["face 1", "face 2", "none of them"]  # type: ignore[attr-defined]
    assert await storage.examples.counts(HERE) == {"Nishikino Maki": 1}


async def test_the_face_option_picks_the_face_of_a_group_picture(
    cog: Dataset, storage: Storage
) -> None:
    interaction = fake_interaction(permissions=MODERATOR)
    [group] = attachments(cog, group_picture())

    await invoke(cog, "teach", interaction, "Sonoda Umi", group, None, None, None, 2)

    assert sent_text(interaction) == "Teaching *Sonoda Umi*:\n1. learnt"
    assert await storage.examples.counts(HERE) == {"Sonoda Umi": 1}


async def test_a_face_option_beyond_the_faces_found_is_refused(
    cog: Dataset, storage: Storage
) -> None:
    interaction = fake_interaction(permissions=MODERATOR)
    [picture] = attachments(cog, portrait())

    await invoke(cog, "teach", interaction, "Sonoda Umi", picture, None, None, None, 3)

    assert "1. not used: it has 1 face(s), no face 3." in sent_text(interaction)
    assert await storage.examples.counts(HERE) == {}


async def test_teach_autocompletes_only_this_servers_characters(
    cog: Dataset, storage: Storage
) -> None:
    await storage.characters.get_or_create(HERE, "Nishikino Maki")
    await storage.characters.get_or_create(Scope.of_guild(GUILD + 1), "Nishizumi Miho")

    choices = await cog.teach_character(fake_interaction(), "nishi")

    assert [choice.value for choice in choices] == ["Nishikino Maki"]


async def test_export_attaches_only_this_servers_dataset(cog: Dataset, storage: Storage) -> None:
    await storage.examples.add_taught(HERE, "Nishikino Maki", b"\xff\xd8\xff\xe0 crop", 1)
    await storage.examples.add_taught(Scope.of_guild(GUILD + 1), "Sonoda Umi", b"\xff\xd8 x", 1)
    interaction = fake_interaction(permissions=discord.Permissions(manage_guild=True))

    await invoke(cog, "export", interaction)

    file = interaction.followup.send.await_args.kwargs["file"]  # type: ignore[attr-defined]
    with zipfile.ZipFile(io.BytesIO(file.fp.read())) as archive:
        assert archive.namelist() == ["Nishikino_Maki/0.jpg"]
