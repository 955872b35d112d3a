"""Every server command of every cog: refused to members without its permission level and in
DMs by the bot itself, and hidden from them by Discord's default permissions too."""

from __future__ import annotations

import inspect
from pathlib import Path

import discord
import pytest
from discord import app_commands
from discord.ext import commands

from bot.app import AnimeBot
from bot.cogs import characters, checks, dataset, models, people, review, settings
from bot.storage.db import Storage
from tests.cogs import fake_bot, fake_interaction

COGS = (
    models.Models,
    models.Base,
    settings.Settings,
    review.Review,
    dataset.Dataset,
    people.People,
    characters.CharacterManagement,
)
MANAGER = [
    "retrain",
    "model",
    "rollback",
    "stats",
    "export",
    "settings show",
    "settings watch",
    "settings watch_all",
    "settings unwatch",
    "settings labels_shown",
    "settings auto_reply",
    "settings votes_needed",
]
MODERATOR = [
    "teach",
    "contributions",
    "purge",
    "review list",
    "review accept",
    "review dismiss",
    "character rename",
    "character merge",
    "character alias",
    "character hide",
]
FOR_EVERYONE = ["forgetme"]
OWNER = ["base model", "base rollback"]


@pytest.fixture
def bot(storage: Storage, tmp_path: Path) -> AnimeBot:
    return fake_bot(storage, tmp_path / "models")


@pytest.fixture
def every_command(bot: AnimeBot) -> dict[str, app_commands.Command]:
    found: dict[str, app_commands.Command] = {}
    for cog_class in COGS:
        cog = cog_class(bot)  # type: ignore[arg-type]
        group = cog.__cog_app_commands_group__
        walked = group.walk_commands() if group else cog.walk_app_commands()
        for command in walked:
            if isinstance(command, app_commands.Command):
                found[command.qualified_name] = command
    return found


async def run_checks(command: app_commands.Command, interaction: discord.Interaction) -> None:
    for check in command.checks:
        result = check(interaction)
        if inspect.isawaitable(result):
            result = await result
        assert result


def defaults_of(command: app_commands.Command) -> discord.Permissions | None:
    return (command.parent or command).default_permissions


def test_every_command_has_a_level(every_command: dict[str, app_commands.Command]) -> None:
    assert set(every_command) == {*MANAGER, *MODERATOR, *FOR_EVERYONE, *OWNER}


LEVELS = [(n, "manage_guild") for n in MANAGER] + [(n, "manage_messages") for n in MODERATOR]


@pytest.mark.parametrize(("name", "permission"), LEVELS)
async def test_a_member_without_the_permission_is_refused(
    every_command: dict[str, app_commands.Command], name: str, permission: str
) -> None:
    command = every_command[name]
    member = fake_interaction(permissions=discord.Permissions(send_messages=True))

    with pytest.raises(app_commands.MissingPermissions) as refused:
        await run_checks(command, member)
    assert refused.value.missing_permissions == [permission]
    allowed = fake_interaction(permissions=discord.Permissions(**{permission: True}))
    await run_checks(command, allowed)


@pytest.mark.parametrize("name", MANAGER + MODERATOR)
async def test_server_commands_are_refused_in_dms(
    every_command: dict[str, app_commands.Command], name: str
) -> None:
    command = every_command[name]

    assert (command.parent or command).guild_only
    with pytest.raises(app_commands.NoPrivateMessage):
        await run_checks(command, fake_interaction(guild_id=None))


@pytest.mark.parametrize(("name", "permission"), LEVELS)
def test_server_commands_are_hidden_from_members_too(
    every_command: dict[str, app_commands.Command], name: str, permission: str
) -> None:
    defaults = defaults_of(every_command[name])

    assert defaults is not None
    assert defaults == discord.Permissions(**{permission: True})


@pytest.mark.parametrize("name", OWNER)
async def test_owner_commands_are_refused_to_a_servers_administrators(
    bot: AnimeBot, every_command: dict[str, app_commands.Command], name: str
) -> None:
    bot.is_owner.return_value = False  # type: ignore[attr-defined]
    admin = fake_interaction(permissions=discord.Permissions(administrator=True))
    admin.client = bot

    with pytest.raises(checks.NotOwnerError):
        await run_checks(every_command[name], admin)
    assert defaults_of(every_command[name]) == checks.OWNER_DEFAULT


@pytest.mark.parametrize("name", OWNER)
async def test_owner_commands_are_open_to_owner_ids_anywhere(
    bot: AnimeBot, every_command: dict[str, app_commands.Command], name: str
) -> None:
    bot.is_owner.return_value = False  # type: ignore[attr-defined]
    bot.settings = bot.settings.model_copy(update={"owner_ids": (42,)})
    owner = fake_interaction(user_id=42, guild_id=None)
    owner.client = bot

    await run_checks(every_command[name], owner)


async def test_owner_commands_are_open_to_the_applications_owners(
    bot: AnimeBot, every_command: dict[str, app_commands.Command]
) -> None:
    bot.is_owner.return_value = True  # type: ignore[attr-defined]
    owner = fake_interaction(user_id=7)
    owner.client = bot

    await run_checks(every_command["base model"], owner)
    bot.is_owner.assert_awaited_once_with(owner.user)  # type: ignore[attr-defined]


async def test_forgetme_is_open_to_everyone_and_in_dms(
    every_command: dict[str, app_commands.Command],
) -> None:
    command = every_command["forgetme"]

    await run_checks(command, fake_interaction(guild_id=None))
    assert defaults_of(command) is None
    assert not command.guild_only


def test_one_decorator_gives_a_command_its_check_defaults_and_server_only() -> None:
    @app_commands.command(name="x", description="x")
    @checks.is_moderator()
    async def command(interaction: discord.Interaction) -> None:
        """A command."""

    assert command.default_permissions == checks.MODERATOR
    assert command.guild_only
    assert len(command.checks) == 1


async def test_the_cogs_load_into_a_real_bot_and_their_commands_serialise(
    bot: AnimeBot,
) -> None:
    real = commands.Bot(command_prefix="!", intents=discord.Intents.none())
    for name in ("storage", "settings", "models", "metrics", "training", "voting"):
        setattr(real, name, getattr(bot, name))

    for module in (models, settings, review, dataset, people):
        await module.setup(real)  # type: ignore[arg-type]

    payloads = {c.name: c.to_dict(real.tree) for c in real.tree.get_commands()}
    for group, level in (("settings", checks.MANAGER), ("review", checks.MODERATOR)):
        assert int(payloads[group]["default_member_permissions"]) == level.value
        assert payloads[group]["contexts"] == [0]
    assert {o["name"] for o in payloads["settings"]["options"]} >= {"watch", "votes_needed"}
    assert payloads["retrain"]["contexts"] == [0]
    assert "default_member_permissions" not in payloads["forgetme"] or (
        payloads["forgetme"]["default_member_permissions"] is None
    )
