"""/retrain, /model and /rollback."""

from __future__ import annotations

from pathlib import Path
from unittest.mock import create_autospec

import discord
import pytest

from bot.cogs.models import Models
from bot.storage.db import Storage
from bot.training import lock_name
from tests.cogs import GUILD, fake_bot, fake_interaction, invoke


@pytest.fixture
def cog(storage: Storage, tmp_path: Path) -> Models:
    return Models(fake_bot(storage, tmp_path / "models"))


async def test_retrain_without_enough_data_says_so_in_its_status_message(cog: Models) -> None:
    interaction = fake_interaction(permissions=discord.Permissions(manage_guild=True))
    status = create_autospec(discord.WebhookMessage, instance=True)
    interaction.followup.send.return_value = status  # type: ignore[attr-defined]

    await invoke(cog, "retrain", interaction)

    final = status.edit.await_args.kwargs["content"]
    assert final.startswith("Training stopped. Not enough confirmed data")
    cog.bot.recognition.refresh.assert_not_called()  # type: ignore[attr-defined]


async def test_retrain_while_the_servers_training_runs_says_it_did_not_start(
    cog: Models, storage: Storage
) -> None:
    await storage.locks.acquire(lock_name(GUILD), "another-host:1/run", 600)
    interaction = fake_interaction(permissions=discord.Permissions(manage_guild=True))
    status = create_autospec(discord.WebhookMessage, instance=True)
    interaction.followup.send.return_value = status  # type: ignore[attr-defined]

    await invoke(cog, "retrain", interaction)

    final = status.edit.await_args.kwargs["content"]
    assert final.startswith("Not started. A training of this server is already running")
