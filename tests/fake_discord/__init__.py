"""A local fake Discord API (REST, gateway websocket, attachment CDN) for end-to-end tests
of the real, unmodified discord.py client.

    async with FakeDiscord(heartbeat_interval=0.5) as fake:
        world = fake.add_standard_guild()            # #general, an admin, a member
        with discord_py_pointed_at(fake):
            bot = MyBot(..., guild_ready_timeout=FAST_GUILD_READY_TIMEOUT)
            async with running_bot(bot, fake):
                posted = await fake.post_message(world.channel, world.member, "hi",
                                                 attachments=[("a.png", png, "image/png")])
                reply = await posted.wait_for_reply()

In pytest, load :mod:`tests.fake_discord.plugin` for the ``fake_discord`` and
``discord_error_log`` fixtures. A bot in another process gets ``fake.api_base``,
``fake.gateway_url`` and ``fake.token`` through its settings, and should be built with
a small ``guild_ready_timeout`` (see :data:`FAST_GUILD_READY_TIMEOUT`).
"""

from .client import FAST_GUILD_READY_TIMEOUT, DiscordErrorLog, discord_py_pointed_at, running_bot
from .gateway import GatewayConnection, GatewaySession
from .handles import InteractionHandle, PostedMessage
from .models import (
    ADMINISTRATOR,
    MANAGE_GUILD,
    MANAGE_MESSAGES,
    AttachmentSpec,
    FakeChannel,
    FakeGuild,
    FakeMember,
    FakeRole,
    FakeUser,
)
from .records import BotMessage, CallbackRecord, ReactionRecord, RestCall, ResumeRecord, SentFile
from .server import FakeDiscord, StandardGuild
from .snowflakes import shard_of

__all__ = [
    "ADMINISTRATOR",
    "FAST_GUILD_READY_TIMEOUT",
    "MANAGE_GUILD",
    "MANAGE_MESSAGES",
    "AttachmentSpec",
    "BotMessage",
    "CallbackRecord",
    "DiscordErrorLog",
    "FakeChannel",
    "FakeDiscord",
    "FakeGuild",
    "FakeMember",
    "FakeRole",
    "FakeUser",
    "GatewayConnection",
    "GatewaySession",
    "InteractionHandle",
    "PostedMessage",
    "ReactionRecord",
    "RestCall",
    "ResumeRecord",
    "SentFile",
    "StandardGuild",
    "discord_py_pointed_at",
    "running_bot",
    "shard_of",
]
