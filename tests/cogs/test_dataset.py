"""/teach, /export and /stats."""

from __future__ import annotations

import io
import zipfile
from collections.abc import AsyncIterator
from pathlib import Path
from unittest.mock import create_autospec

import discord
import pytest

from bot.cogs.dataset import Dataset
from bot.storage.db import Storage
from tests.cogs import GUILD, fake_bot, fake_interaction, invoke, sent_text


@pytest.fixture
async def storage(tmp_path: Path) -> AsyncIterator[Storage]:
    async with Storage.open(f"sqlite+aiosqlite:///{tmp_path}/t.db") as opened:
        yield opened


@pytest.fixture
def cog(storage: Storage, tmp_path: Path) -> Dataset:
    return Dataset(fake_bot(storage, tmp_path / "models"))


async def test_export_attaches_the_dataset_zip(cog: Dataset, storage: Storage) -> None:
    await storage.examples.add_taught("nishikino maki", b"\xff\xd8\xff\xe0 crop", 1, GUILD)
    interaction = fake_interaction(permissions=discord.Permissions(manage_guild=True))

    await invoke(cog, "export", interaction)

    file = interaction.followup.send.await_args.kwargs["file"]  # type: ignore[attr-defined]
    with zipfile.ZipFile(io.BytesIO(file.fp.read())) as archive:
        assert archive.namelist() == ["nishikino_maki/0.jpg"]


async def test_teach_stores_the_main_faces_crop(cog: Dataset, storage: Storage) -> None:
    from bot.fetch import Download
    from bot.service import Answer
    from bot.vision.recognizer import Recognition

    interaction = fake_interaction(permissions=discord.Permissions(manage_messages=True))
    picture = create_autospec(discord.Attachment, instance=True)
    picture.url = "https://cdn.discordapp.com/x.png"
    download = Download(b"picture", picture.url, "image/png")
    cog.bot.fetcher.fetch.return_value = download  # type: ignore[attr-defined]
    answer = Answer(create_autospec(Recognition, instance=True), "sha", None, (b"main-face", b"x"))
    cog.bot.recognition.recognize.return_value = answer  # type: ignore[attr-defined]

    await invoke(cog, "teach", interaction, " Nishikino Maki", picture)

    assert "1. learnt" in sent_text(interaction)
    assert [e async for e in storage.examples.iter_dataset()] == [("nishikino maki", b"main-face")]
