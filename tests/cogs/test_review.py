"""/review: held corrections listed, accepted, dismissed, only in their own server."""

from __future__ import annotations

from pathlib import Path

import discord
import pytest

from bot.cogs.review import Review
from bot.errors import BotError
from bot.storage.db import Storage
from tests.cogs import GUILD, fake_bot, fake_interaction, invoke, sent_text
from tests.storage.helpers import HERE, record_face

MODERATOR = discord.Permissions(manage_messages=True)


@pytest.fixture
def cog(storage: Storage, tmp_path: Path) -> Review:
    return Review(fake_bot(storage, tmp_path / "models"))


async def test_review_lists_held_corrections_with_the_models_answer(
    cog: Review, storage: Storage
) -> None:
    face = await record_face(storage, "nishikino maki", 0.97)
    await storage.votes.cast(face, 7, GUILD, "sakurauchi riko", False, new_account=True)
    interaction = fake_interaction(permissions=MODERATOR)

    await invoke(cog, "review list", interaction)

    call = interaction.response.send_message.await_args  # type: ignore[attr-defined]
    assert call.kwargs["ephemeral"] is True
    [embed] = call.kwargs["embeds"]
    assert embed.title == f"1. Face {face}"
    assert "<@7> says **Sakurauchi Riko** (new account)" in embed.description
    assert "The model said Nishikino Maki (97%)." in embed.description


async def test_review_accept_makes_the_held_label_training_data(
    cog: Review, storage: Storage
) -> None:
    face = await record_face(storage, "nishikino maki", 0.97)
    await storage.votes.cast(face, 7, GUILD, "sakurauchi riko", False, new_account=True)
    interaction = fake_interaction(permissions=MODERATOR)

    await invoke(cog, "review accept", interaction, face, None)

    assert "training data for *Sakurauchi Riko*" in sent_text(interaction)
    assert await storage.examples.counts(HERE) == {"sakurauchi riko": 1}
    assert await storage.votes.held(GUILD) == []


async def test_review_dismiss_rejects_held_corrections(cog: Review, storage: Storage) -> None:
    face = await record_face(storage, "nishikino maki", 0.97)
    await storage.votes.cast(face, 7, GUILD, "sakurauchi riko", False, new_account=True)
    interaction = fake_interaction(permissions=MODERATOR)

    await invoke(cog, "review dismiss", interaction, face)

    assert "Dismissed 1 held correction" in sent_text(interaction)
    assert await storage.votes.held(GUILD) == []
    assert await storage.examples.counts(HERE) == {}


async def test_review_refuses_a_face_of_another_server(cog: Review, storage: Storage) -> None:
    face = await record_face(storage, guild_id=GUILD + 1)
    interaction = fake_interaction(permissions=MODERATOR)

    with pytest.raises(BotError, match=f"no face {face} in this server"):
        await invoke(cog, "review dismiss", interaction, face)


async def test_review_lists_only_this_servers_held_votes(cog: Review, storage: Storage) -> None:
    there = await record_face(storage, "nishikino maki", 0.97, guild_id=GUILD + 1)
    await storage.votes.cast(there, 7, GUILD + 1, "sakurauchi riko", False)
    interaction = fake_interaction(permissions=MODERATOR)

    await invoke(cog, "review list", interaction)

    assert sent_text(interaction) == "Nothing is waiting."


async def test_review_accept_refuses_a_face_of_another_server(
    cog: Review, storage: Storage
) -> None:
    there = await record_face(storage, "nishikino maki", 0.97, guild_id=GUILD + 1)
    await storage.votes.cast(there, 7, GUILD + 1, "sakurauchi riko", False)
    interaction = fake_interaction(permissions=MODERATOR)

    with pytest.raises(BotError, match=f"no face {there} in this server"):
        await invoke(cog, "review accept", interaction, there, "Sakurauchi Riko")
    assert len(await storage.votes.held(GUILD + 1)) == 1
