"""/forgetme, /contributions and /purge."""

from __future__ import annotations

from pathlib import Path

import discord
import pytest

from bot.cogs.people import People
from bot.storage.db import Storage
from tests.cogs import GUILD, fake_bot, fake_interaction, invoke, sent_text
from tests.storage.helpers import record_face


@pytest.fixture
def cog(storage: Storage, tmp_path: Path) -> People:
    return People(fake_bot(storage, tmp_path / "models"))


async def test_forgetme_deletes_the_callers_votes(cog: People, storage: Storage) -> None:
    face = await record_face(storage, unsure=True)
    await storage.votes.cast(face, 42, GUILD, "hoshizora rin", False)
    interaction = fake_interaction(user_id=42, guild_id=None)

    await invoke(cog, "forgetme", interaction)

    assert sent_text(interaction).startswith("Deleted: 1 vote(s)")
    assert (await storage.users.contributions(42, GUILD)).votes == 0


async def test_purge_removes_a_members_votes_here_only(cog: People, storage: Storage) -> None:
    face = await record_face(storage, unsure=True)
    await storage.votes.cast(face, 7, GUILD, "hoshizora rin", False)
    there = await record_face(storage, unsure=True, guild_id=GUILD + 1)
    await storage.votes.cast(there, 7, GUILD + 1, "hoshizora rin", False)
    interaction = fake_interaction(permissions=discord.Permissions(manage_messages=True))
    target = interaction.user
    target.id = 7

    await invoke(cog, "purge", interaction, target)

    assert "1 vote(s)" in sent_text(interaction)
    assert (await storage.users.contributions(7, GUILD)).votes == 0
    assert (await storage.users.contributions(7, GUILD + 1)).votes == 1
