"""Every admin and moderator command, tried by an ordinary member and in a DM: refused by the
bot itself (not only hidden by Discord), privately, and nothing changes.

The commands are read from the running bot's tree, so a new command is covered as soon as
it is registered; only the commands meant for everyone are skipped.
"""

from __future__ import annotations

from typing import Any

import discord
import pytest
from discord import app_commands
from sqlalchemy import select

from bot.storage.schema import Base
from tests.e2e.bundle import face_png
from tests.e2e.conftest import Launch, RunningAnimeBot
from tests.fake_discord import FakeChannel, FakeDiscord, FakeMember, StandardGuild

pytestmark = pytest.mark.usefixtures("discord_error_log")

FOR_EVERYONE = frozenset({"identify", "forgetme", "help", "characters"})
FOR_OWNERS = frozenset({"base"})
MESSAGE = 4  # interaction callback: a message (not a deferral)
Snapshot = dict[str, list[tuple[Any, ...]]]


def restricted_commands(running: RunningAnimeBot) -> list[app_commands.Command]:
    """Every slash command the bot registered, subcommands included, but those for everyone."""
    return [
        command
        for command in running.bot.tree.walk_commands()
        if isinstance(command, app_commands.Command)
        and command.qualified_name.split()[0] not in FOR_EVERYONE | FOR_OWNERS
    ]


def required_permissions(command: app_commands.Command) -> list[str]:
    """What Discord is told the command needs (a subcommand inherits its group's)."""
    declared = command.default_permissions
    if declared is None and command.parent is not None:
        declared = command.parent.default_permissions
    assert declared is not None, f"/{command.qualified_name} declares no default permission"
    return [name for name, granted in declared if granted]


def permission_label(name: str) -> str:
    """The name Discord's settings show for a permission (``manage_guild`` is Manage Server)."""
    return name.replace("_", " ").title().replace("Guild", "Server")


def valid_options(command: app_commands.Command, world: StandardGuild) -> dict[str, Any]:
    """A valid value for every required option, so that only the permission check can refuse."""
    values: dict[str, Any] = {}
    for option in command.parameters:
        if not option.required:
            continue
        kind = option.type
        if option.choices:
            values[option.name] = option.choices[0].value
        elif kind in (discord.AppCommandOptionType.integer, discord.AppCommandOptionType.number):
            values[option.name] = option.min_value if option.min_value is not None else 1
        elif kind is discord.AppCommandOptionType.string:
            values[option.name] = "Rem"
        elif kind is discord.AppCommandOptionType.boolean:
            values[option.name] = False
        elif kind in (discord.AppCommandOptionType.user, discord.AppCommandOptionType.mentionable):
            values[option.name] = world.admin
        elif kind is discord.AppCommandOptionType.channel:
            values[option.name] = world.channel
        elif kind is discord.AppCommandOptionType.role:
            values[option.name] = world.guild.everyone
        elif kind is discord.AppCommandOptionType.attachment:
            values[option.name] = ("face.png", face_png(), "image/png")
        else:
            raise AssertionError(f"/{command.qualified_name}: no test value for a {kind} option")
    return values


async def snapshot(running: RunningAnimeBot) -> Snapshot:
    """Every row of every table (the serving models among them)."""
    rows: Snapshot = {}
    async with running.storage.engine.connect() as connection:
        for table in Base.metadata.sorted_tables:
            rows[table.name] = [tuple(r) for r in await connection.execute(select(table))]
    return rows


async def refusals(
    fake: FakeDiscord,
    world: StandardGuild,
    running: RunningAnimeBot,
    user: FakeMember,
    channel: FakeChannel,
) -> dict[str, tuple[str, list[str]]]:
    """Run every restricted command as ``user`` in ``channel``; for each, the refusal text
    and the permissions it requires. Checks each is one private message and changes nothing."""
    commands = restricted_commands(running)
    assert {"retrain", "settings watch", "purge"} <= {c.qualified_name for c in commands}
    before = await snapshot(running)
    seen: dict[str, tuple[str, list[str]]] = {}
    for command in commands:
        handle = await fake.send_slash_command(
            command.qualified_name, valid_options(command, world), user=user, channel=channel
        )
        refusal = await handle.wait_for_message()
        assert refusal.ephemeral, (command.qualified_name, refusal.text)
        assert [c.type for c in handle.callbacks] == [MESSAGE], command.qualified_name
        seen[command.qualified_name] = (refusal.text, required_permissions(command))
    assert await snapshot(running) == before
    assert all(m.ephemeral for m in fake.bot_messages)
    return seen


async def test_every_restricted_command_refuses_an_ordinary_member_and_changes_nothing(
    fake_discord: FakeDiscord, world: StandardGuild, launch: Launch
) -> None:
    running = await launch()
    await running.storage.guilds.update(world.guild.id, labels_shown=5)

    seen = await refusals(fake_discord, world, running, world.member, world.channel)

    for name, (text, permissions) in seen.items():
        for permission in permissions:
            assert f"{permission_label(permission)} permission" in text, (name, text)


async def test_every_restricted_command_refuses_in_a_dm_and_changes_nothing(
    fake_discord: FakeDiscord, world: StandardGuild, launch: Launch
) -> None:
    running = await launch()
    await running.storage.guilds.update(world.guild.id, labels_shown=5)

    seen = await refusals(
        fake_discord, world, running, world.admin, fake_discord.dm_channel(world.admin)
    )

    for name, (text, _) in seen.items():
        assert "only works in a server" in text, (name, text)


async def test_the_owners_commands_refuse_a_servers_admin_and_change_nothing(
    fake_discord: FakeDiscord, world: StandardGuild, launch: Launch
) -> None:
    running = await launch()
    before = await snapshot(running)

    for name in ("base model", "base rollback"):
        handle = await fake_discord.send_slash_command(
            name, {}, user=world.admin, channel=world.channel
        )
        refusal = await handle.wait_for_message()
        assert refusal.ephemeral and "Only the bot's owners can do that." in refusal.text

    assert await snapshot(running) == before
