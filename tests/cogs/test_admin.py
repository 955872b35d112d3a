"""Admin and moderator commands: refused to members without the permission and in DMs."""

from __future__ import annotations

import inspect
import io
import zipfile
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any
from unittest.mock import create_autospec

import discord
import pytest
from discord import app_commands

from bot.cogs.admin import Admin
from bot.errors import BotError
from bot.storage.db import Storage
from tests.cogs import GUILD, fake_bot, fake_interaction, sent_text
from tests.storage.helpers import record_face


@pytest.fixture
async def storage(tmp_path: Path) -> AsyncIterator[Storage]:
    async with Storage.open(f"sqlite+aiosqlite:///{tmp_path}/t.db") as opened:
        yield opened


@pytest.fixture
def cog(storage: Storage, tmp_path: Path) -> Admin:
    return Admin(fake_bot(storage, tmp_path / "models"))


def commands_of(cog: Admin) -> dict[str, app_commands.Command]:
    return {
        command.qualified_name: command
        for command in cog.walk_app_commands()
        if isinstance(command, app_commands.Command)
    }


MANAGE_GUILD = [
    "retrain",
    "model",
    "rollback",
    "stats",
    "export",
    "settings show",
    "settings watch",
    "settings unwatch",
    "settings labels_shown",
    "settings auto_reply",
    "settings votes_needed",
]
MANAGE_MESSAGES = [
    "teach",
    "contributions",
    "purge",
    "review list",
    "review accept",
    "review dismiss",
]


async def run_checks(command: app_commands.Command, interaction: discord.Interaction) -> None:
    for check in command.checks:
        result = check(interaction)
        if inspect.isawaitable(result):
            result = await result
        assert result


async def invoke(command: app_commands.Command, cog: Admin, *args: Any) -> None:
    callback: Any = command.callback
    await callback(cog, *args)


def test_every_command_is_covered(cog: Admin) -> None:
    assert set(commands_of(cog)) == {*MANAGE_GUILD, *MANAGE_MESSAGES, "forgetme"}


@pytest.mark.parametrize(
    ("name", "permission"),
    [(n, "manage_guild") for n in MANAGE_GUILD] + [(n, "manage_messages") for n in MANAGE_MESSAGES],
)
async def test_a_member_without_the_permission_is_refused(
    cog: Admin, name: str, permission: str
) -> None:
    command = commands_of(cog)[name]
    member = fake_interaction(permissions=discord.Permissions(send_messages=True))

    with pytest.raises(app_commands.MissingPermissions) as refused:
        await run_checks(command, member)
    assert refused.value.missing_permissions == [permission]
    allowed = fake_interaction(permissions=discord.Permissions(**{permission: True}))
    await run_checks(command, allowed)


@pytest.mark.parametrize("name", MANAGE_GUILD + MANAGE_MESSAGES)
async def test_server_commands_are_refused_in_dms(cog: Admin, name: str) -> None:
    command = commands_of(cog)[name]
    top = command.parent or command

    assert top.guild_only
    with pytest.raises(app_commands.NoPrivateMessage):
        await run_checks(command, fake_interaction(guild_id=None))


@pytest.mark.parametrize(
    ("name", "permission"),
    [(n, "manage_guild") for n in MANAGE_GUILD] + [(n, "manage_messages") for n in MANAGE_MESSAGES],
)
def test_server_commands_are_hidden_from_members_too(
    cog: Admin, name: str, permission: str
) -> None:
    command = commands_of(cog)[name]
    defaults = (command.parent or command).default_permissions

    assert defaults is not None
    assert getattr(defaults, permission)


async def test_forgetme_is_open_to_everyone(cog: Admin, storage: Storage) -> None:
    command = commands_of(cog)["forgetme"]
    face = await record_face(storage)
    await storage.votes.cast(face, 42, GUILD, "hoshizora rin", False)
    interaction = fake_interaction(user_id=42, guild_id=None)

    await run_checks(command, interaction)
    await invoke(command, cog, interaction)

    assert sent_text(interaction).startswith("Deleted: 1 votes")
    assert (await storage.users.contributions(42)).votes == 0


async def test_settings_change_votes_needed(cog: Admin, storage: Storage) -> None:
    command = commands_of(cog)["settings votes_needed"]
    interaction = fake_interaction(permissions=discord.Permissions(manage_guild=True))

    await invoke(command, cog, interaction, 3)

    assert (await storage.guilds.get(GUILD)).votes_needed == 3
    assert sent_text(interaction) == "Settings changed"
    cog.bot.dispatch.assert_called_with("guild_settings_changed", GUILD)  # type: ignore[attr-defined]


async def test_purge_removes_a_members_votes(cog: Admin, storage: Storage) -> None:
    face = await record_face(storage)
    await storage.votes.cast(face, 7, GUILD, "hoshizora rin", False)
    interaction = fake_interaction(permissions=discord.Permissions(manage_messages=True))
    target = interaction.user
    target.id = 7

    await invoke(commands_of(cog)["purge"], cog, interaction, target)

    assert "1 votes" in sent_text(interaction)
    assert (await storage.users.contributions(7, GUILD)).votes == 0


async def test_export_attaches_the_dataset_zip(cog: Admin, storage: Storage) -> None:
    await storage.examples.add_taught("nishikino maki", b"\xff\xd8\xff\xe0 crop", 1, GUILD)
    interaction = fake_interaction(permissions=discord.Permissions(manage_guild=True))

    await invoke(commands_of(cog)["export"], cog, interaction)

    file = interaction.followup.send.await_args.kwargs["file"]  # type: ignore[attr-defined]
    with zipfile.ZipFile(io.BytesIO(file.fp.read())) as archive:
        assert archive.namelist() == ["nishikino_maki/0.jpg"]


async def test_the_cogs_load_into_a_real_bot_and_their_commands_serialise(
    storage: Storage, tmp_path: Path
) -> None:
    from discord.ext import commands

    from bot.cogs import admin, corrections

    bot = commands.Bot(command_prefix="!", intents=discord.Intents.none())
    spec = fake_bot(storage, tmp_path / "models")
    for name in ("storage", "settings", "models", "metrics", "instance_name"):
        setattr(bot, name, getattr(spec, name))

    await admin.setup(bot)  # type: ignore[arg-type]
    await corrections.setup(bot)  # type: ignore[arg-type]

    payloads = {c.name: c.to_dict(bot.tree) for c in bot.tree.get_commands()}
    assert int(payloads["settings"]["default_member_permissions"]) == (
        discord.Permissions(manage_guild=True).value
    )
    assert {o["name"] for o in payloads["settings"]["options"]} >= {"watch", "votes_needed"}
    assert payloads["retrain"]["contexts"] == [0]


async def test_retrain_without_enough_data_says_so_in_its_status_message(
    cog: Admin, storage: Storage
) -> None:
    interaction = fake_interaction(permissions=discord.Permissions(manage_guild=True))
    status = create_autospec(discord.WebhookMessage, instance=True)
    interaction.followup.send.return_value = status  # type: ignore[attr-defined]

    await invoke(commands_of(cog)["retrain"], cog, interaction)

    final = status.edit.await_args.kwargs["content"]
    assert final.startswith("Training stopped. Not enough confirmed data")
    cog.bot.recognition.refresh.assert_not_called()  # type: ignore[attr-defined]


async def test_teach_stores_the_main_faces_crop(cog: Admin, storage: Storage) -> None:
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

    await invoke(commands_of(cog)["teach"], cog, interaction, " Nishikino Maki", picture)

    assert "1. learnt" in sent_text(interaction)
    assert [e async for e in storage.examples.iter_dataset()] == [("nishikino maki", b"main-face")]


MODERATOR = discord.Permissions(manage_messages=True)


async def test_review_lists_held_corrections_with_the_models_answer(
    cog: Admin, storage: Storage
) -> None:
    face = await record_face(storage, "nishikino maki", 0.97)
    await storage.votes.cast(face, 7, GUILD, "sakurauchi riko", False, hold=True)
    interaction = fake_interaction(permissions=MODERATOR)

    await invoke(commands_of(cog)["review list"], cog, interaction)

    text = sent_text(interaction)
    assert f"face {face}: <@7> says **sakurauchi riko**" in text
    assert "model said nishikino maki (97.0%)" in text


async def test_review_accept_makes_the_held_label_training_data(
    cog: Admin, storage: Storage
) -> None:
    face = await record_face(storage, "nishikino maki", 0.97)
    await storage.votes.cast(face, 7, GUILD, "sakurauchi riko", False, hold=True)
    interaction = fake_interaction(permissions=MODERATOR)

    await invoke(commands_of(cog)["review accept"], cog, interaction, face, None)

    assert "training data for *sakurauchi riko*" in sent_text(interaction)
    assert await storage.examples.counts() == {"sakurauchi riko": 1}
    assert await storage.votes.held(GUILD) == []


async def test_review_dismiss_rejects_held_corrections(cog: Admin, storage: Storage) -> None:
    face = await record_face(storage, "nishikino maki", 0.97)
    await storage.votes.cast(face, 7, GUILD, "sakurauchi riko", False, hold=True)
    interaction = fake_interaction(permissions=MODERATOR)

    await invoke(commands_of(cog)["review dismiss"], cog, interaction, face)

    assert "Dismissed 1 held correction" in sent_text(interaction)
    assert await storage.votes.held(GUILD) == []
    assert await storage.examples.counts() == {}


async def test_review_refuses_a_face_of_another_server(cog: Admin, storage: Storage) -> None:
    face = await record_face(storage, guild_id=GUILD + 1)
    interaction = fake_interaction(permissions=MODERATOR)

    with pytest.raises(BotError, match=f"no face {face} in this server"):
        await invoke(commands_of(cog)["review dismiss"], cog, interaction, face)
