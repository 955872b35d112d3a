"""/retrain, /model and /rollback of one server."""

from __future__ import annotations

from pathlib import Path
from unittest.mock import create_autospec

import discord
import pytest

from bot.cogs.models import Models, training_summary
from bot.errors import NoModelError, TrainingError
from bot.storage.db import Storage
from bot.training import CharacterChange, TrainingOutcome, lock_name
from tests.cogs import GUILD, fake_bot, fake_interaction, invoke


@pytest.fixture
def cog(storage: Storage, tmp_path: Path) -> Models:
    return Models(fake_bot(storage, tmp_path / "models"))


def manager() -> discord.Interaction:
    interaction = fake_interaction(permissions=discord.Permissions(manage_guild=True))
    status = create_autospec(discord.WebhookMessage, instance=True)
    interaction.followup.send.return_value = status  # type: ignore[attr-defined]
    return interaction


def final_status(interaction: discord.Interaction) -> str:
    status = interaction.followup.send.return_value  # type: ignore[attr-defined]
    return str(status.edit.await_args.kwargs["content"])


async def test_retrain_without_a_base_model_says_how_to_install_one(cog: Models) -> None:
    interaction = manager()

    await invoke(cog, "retrain", interaction)

    assert final_status(interaction).startswith("Training stopped. No base model is installed")
    assert interaction.response.defer.await_args.kwargs["ephemeral"] is True  # type: ignore[attr-defined]


async def test_retrain_while_the_servers_training_runs_says_it_did_not_start(
    cog: Models, storage: Storage
) -> None:
    await storage.locks.acquire(lock_name(GUILD), "another-host:1/run", 600)
    interaction = manager()

    await invoke(cog, "retrain", interaction)

    assert final_status(interaction).startswith(
        "Not started. A training of this server is already running"
    )


def test_a_retrains_summary_shows_each_character_before_and_after() -> None:
    outcome = TrainingOutcome(
        promoted=False,
        message="it is much worse at Sonoda Umi than the current model",
        characters=(
            CharacterChange("Nishikino Maki", 10, 9, 10),
            CharacterChange("Sonoda Umi", 8, 8, 3),
        ),
        new_characters=(CharacterChange("ayanami rei", 6, None, 5),),
    )

    summary = training_summary(outcome)

    assert summary is not None and summary.description is not None
    assert summary.description.splitlines() == [
        "Nishikino Maki: 9/10 → 10/10",
        "Sonoda Umi: 8/8 → 3/8",
        "Ayanami Rei: new → 5/6",
    ]


def test_a_retrain_with_nothing_to_compare_has_no_summary() -> None:
    assert training_summary(TrainingOutcome(promoted=True, message="no model before")) is None


async def test_model_without_any_model_is_a_clear_error(cog: Models) -> None:
    with pytest.raises(NoModelError):
        await invoke(cog, "model", manager())


async def test_rollback_without_an_earlier_model_of_the_server_says_so(cog: Models) -> None:
    with pytest.raises(TrainingError, match="no earlier model of its own"):
        await invoke(cog, "rollback", manager(), False)
