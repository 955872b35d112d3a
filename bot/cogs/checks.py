"""One decorator per permission level: Discord's default permissions, the bot's own check,
and no DMs, set together so that no command can have one without the others.

Discord only *hides* a command from members without its default permissions, and server
admins can change that in their settings; the check inside the bot is what refuses. A
decorator works on a command, and on a ``GroupCog`` class: the group gets the default
permissions and every subcommand the check.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

import discord
from discord import app_commands
from discord.ext import commands

T = TypeVar("T")

MANAGER = discord.Permissions(manage_guild=True)
"""Runs the bot in a server: models, settings, statistics, the dataset."""
MODERATOR = discord.Permissions(manage_messages=True)
"""Looks after the community's data: teaching, held votes, members' contributions."""
OWNER_DEFAULT = discord.Permissions(administrator=True)
"""Discord offers owners' commands to server administrators only (the bot refuses anyone
who is not an owner of the bot, administrator or not)."""


class NotOwnerError(app_commands.CheckFailure):
    """Someone who is not one of the bot's owners ran an owners' command."""


def in_server(interaction: discord.Interaction) -> bool:
    """Refuse DMs inside the bot (``guild_only`` only tells Discord where to offer a command)."""
    if interaction.guild_id is None:
        raise app_commands.NoPrivateMessage()
    return True


def server(interaction: discord.Interaction) -> int:
    """The id of the server a command of a server-only level runs in."""
    if interaction.guild_id is None:  # the level's check refused it already
        raise app_commands.NoPrivateMessage()
    return interaction.guild_id


def _checked(target: T, predicate: Callable[[discord.Interaction], Any]) -> T:
    """``target`` (a command, or a ``GroupCog`` class: each of its subcommands) checked by
    ``predicate`` inside the bot."""
    if isinstance(target, type) and issubclass(target, commands.GroupCog):
        # The group carries Discord's defaults; the bot checks each subcommand.
        for command in target.__cog_app_commands__:
            if isinstance(command, app_commands.Command):
                command.add_check(predicate)
        return target
    return app_commands.check(predicate)(target)


def _permission_level(required: discord.Permissions) -> Callable[[T], T]:
    def predicate(interaction: discord.Interaction) -> bool:
        in_server(interaction)
        missing = [
            name
            for name, needed in required
            if needed and not getattr(interaction.permissions, name)
        ]
        if missing:
            raise app_commands.MissingPermissions(missing)
        return True

    def decorator(target: T) -> T:
        target = _checked(target, predicate)
        # On a GroupCog class these set what GroupCog reads when it builds its group.
        target = app_commands.default_permissions(required)(target)
        return app_commands.guild_only()(target)

    return decorator


def is_manager() -> Callable[[T], T]:
    """For those who run the bot in a server (Manage Server)."""
    return _permission_level(MANAGER)


def is_moderator() -> Callable[[T], T]:
    """For those who look after the community's data (Manage Messages)."""
    return _permission_level(MODERATOR)


async def is_bot_owner(interaction: discord.Interaction) -> bool:
    """Whether the user is an owner of the bot: one of the application's owners (its owner or
    team members, as Discord says), or listed in the ``OWNER_IDS`` setting."""
    client = interaction.client
    settings = getattr(client, "settings", None)
    if settings is not None and interaction.user.id in settings.owner_ids:
        return True
    # ``commands.Bot.is_owner`` asks Discord for the application's owners once and caches them.
    is_owner = getattr(client, "is_owner", None)
    return is_owner is not None and bool(await is_owner(interaction.user))


def is_owner() -> Callable[[T], T]:
    """For the bot's owners only, never a server's admins: what changes the base model that
    every server sees, or reads across servers. Works in DMs too."""

    async def predicate(interaction: discord.Interaction) -> bool:
        if not await is_bot_owner(interaction):
            raise NotOwnerError("Only the bot's owners can do that.")
        return True

    def decorator(target: T) -> T:
        return app_commands.default_permissions(OWNER_DEFAULT)(_checked(target, predicate))

    return decorator
