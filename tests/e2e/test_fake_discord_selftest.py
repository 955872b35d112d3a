"""The fake Discord API carries the real discord.py client through everything the bot's
end-to-end tests rely on: messages with downloaded attachments, slash commands,
buttons, select menus, modals, RESUME after a disconnect, and sharding."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import discord
import pytest
import pytest_asyncio
from aiohttp import web
from discord import app_commands
from discord.ext import commands
from discord.http import Route

from tests.fake_discord import (
    FAST_GUILD_READY_TIMEOUT,
    AttachmentSpec,
    DiscordErrorLog,
    FakeDiscord,
    StandardGuild,
    running_bot,
)

pytest_plugins = ["tests.fake_discord.plugin"]
pytestmark = pytest.mark.usefixtures("discord_error_log")

FAST_HEARTBEAT = {"heartbeat_interval": 0.2}
PICTURE = b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 16


class Picker(discord.ui.View):
    """A button that edits its message and a select menu that answers privately."""

    def __init__(self) -> None:
        super().__init__(timeout=60)

    @discord.ui.button(label="Press", custom_id="selftest:press")
    async def press(self, interaction: discord.Interaction, button: discord.ui.Button) -> None:
        await interaction.response.edit_message(content="pressed", view=self)

    @discord.ui.select(
        custom_id="selftest:pick",
        options=[discord.SelectOption(label=name, value=name) for name in ("rem", "ram")],
    )
    async def pick(self, interaction: discord.Interaction, select: discord.ui.Select) -> None:
        await interaction.response.send_message(f"picked {select.values[0]}", ephemeral=True)


class RenameModal(discord.ui.Modal, title="Rename"):
    new_name: discord.ui.TextInput[RenameModal] = discord.ui.TextInput(label="New name")

    async def on_submit(self, interaction: discord.Interaction) -> None:
        await interaction.response.send_message(f"renamed to {self.new_name.value}")


class SelfTestCog(commands.Cog):
    """Replies with attachment sizes, offers the Picker, and has two slash commands."""

    def __init__(self) -> None:
        self.seen: list[int] = []

    @commands.Cog.listener()
    async def on_message(self, message: discord.Message) -> None:
        if message.author.bot:
            return
        self.seen.append(message.id)
        if message.content == "menu":
            await message.channel.send("choose", view=Picker())
            return
        async with message.channel.typing():
            sizes = [len(await attachment.read()) for attachment in message.attachments]
        shard = message.guild.shard_id if message.guild else 0
        await message.reply(f"shard {shard}: {sizes}")

    @app_commands.command(description="Measure a picture")
    async def size(self, interaction: discord.Interaction, image: discord.Attachment) -> None:
        await interaction.response.defer(thinking=True)
        data = await image.read()
        await interaction.followup.send(f"{image.filename}: {len(data)} bytes")

    @app_commands.command(description="Rename something")
    async def rename(self, interaction: discord.Interaction) -> None:
        await interaction.response.send_modal(RenameModal())


class SelfTestSetup:
    """Adds the cog and syncs the command tree, as a real bot's setup_hook would."""

    cog: SelfTestCog

    async def setup_hook(self) -> None:
        self.cog = SelfTestCog()
        await self.add_cog(self.cog)  # type: ignore[attr-defined]
        await self.tree.sync()  # type: ignore[attr-defined]


class SelfTestBot(SelfTestSetup, commands.Bot):
    pass


class ShardedSelfTestBot(SelfTestSetup, commands.AutoShardedBot):
    pass


def bot_options(**extra: Any) -> dict[str, Any]:
    """Constructor arguments for the self-test bots: message content, a fast start."""
    intents = discord.Intents.default()
    intents.message_content = True
    fast = {"guild_ready_timeout": FAST_GUILD_READY_TIMEOUT}
    return {"command_prefix": "!", "intents": intents, **fast, **extra}


@pytest.fixture
def world(fake_discord: FakeDiscord) -> StandardGuild:
    return fake_discord.add_standard_guild()


@pytest_asyncio.fixture
async def bot(fake_discord: FakeDiscord, world: StandardGuild) -> AsyncIterator[SelfTestBot]:
    async with running_bot(SelfTestBot(**bot_options()), fake_discord) as running:
        yield running


async def test_message_with_attachment_is_answered_with_its_downloaded_size(
    fake_discord: FakeDiscord, world: StandardGuild, bot: SelfTestBot
) -> None:
    posted = await fake_discord.post_message(
        world.channel, world.member, "look", attachments=[("face.png", PICTURE, "image/png")]
    )

    reply = await posted.wait_for_reply()

    assert reply.content == f"shard 0: [{len(PICTURE)}]"
    assert [t.channel_id for t in fake_discord.typing] == [world.channel.id]


async def test_direct_message_reaches_shard_zero(
    fake_discord: FakeDiscord, world: StandardGuild, bot: SelfTestBot
) -> None:
    dm = fake_discord.dm_channel(world.member)

    reply = await (await fake_discord.post_message(dm, world.member, "hi")).wait_for_reply()

    assert (reply.channel_id, reply.content) == (dm.id, "shard 0: []")


async def test_slash_command_defers_then_follows_up(
    fake_discord: FakeDiscord, world: StandardGuild, bot: SelfTestBot
) -> None:
    registered = fake_discord.registered_command("size", None)
    assert registered is not None and registered["options"][0]["type"] == 11

    command = await fake_discord.send_slash_command(
        "size",
        {"image": ("face.png", PICTURE, "image/png")},
        user=world.member,
        channel=world.channel,
    )

    assert (await command.wait_for_callback()).type == 5
    followup = await command.wait_for_followup()
    assert followup.content == f"face.png: {len(PICTURE)} bytes"


async def test_button_click_updates_its_message(
    fake_discord: FakeDiscord, world: StandardGuild, bot: SelfTestBot
) -> None:
    await fake_discord.post_message(world.channel, world.member, "menu")
    menu = await fake_discord.wait_for_message(world.channel, lambda m: bool(m.custom_ids))

    click = await fake_discord.click_component(menu, "selftest:press", world.member)

    updated = await click.wait_for_original(lambda m: m.content == "pressed")
    assert updated.id == menu.id
    assert click.callback is not None and click.callback.type == 7


async def test_select_menu_choice_is_answered_privately(
    fake_discord: FakeDiscord, world: StandardGuild, bot: SelfTestBot
) -> None:
    await fake_discord.post_message(world.channel, world.member, "menu")
    menu = await fake_discord.wait_for_message(world.channel, lambda m: bool(m.custom_ids))

    pick = await fake_discord.click_component(menu, "selftest:pick", world.admin, values=["ram"])

    answer = await pick.wait_for_message()
    assert (answer.content, answer.ephemeral) == ("picked ram", True)


async def test_modal_submission_reaches_the_bot(
    fake_discord: FakeDiscord, world: StandardGuild, bot: SelfTestBot
) -> None:
    command = await fake_discord.send_slash_command(
        "rename", user=world.admin, channel=world.channel
    )
    assert (await command.wait_for_callback()).type == 9
    assert command.modal is not None and command.modal["title"] == "Rename"

    submitted = await fake_discord.submit_modal(command, {"New name": "Rem"}, world.admin)

    assert (await submitted.wait_for_message()).content == "renamed to Rem"


async def test_event_sent_while_disconnected_is_delivered_once_after_resume(
    fake_discord: FakeDiscord, world: StandardGuild, bot: SelfTestBot
) -> None:
    await (await fake_discord.post_message(world.channel, world.member, "before")).wait_for_reply()

    await fake_discord.disconnect(shard_id=0, code=4000)
    in_gap = await fake_discord.post_message(world.channel, world.member, "during the gap")
    resumed = await fake_discord.wait_for_resume(shard_id=0)
    await in_gap.wait_for_reply()
    sentinel = await fake_discord.post_message(world.channel, world.member, "after")
    await sentinel.wait_for_reply()

    assert resumed.replayed == 1
    assert bot.cog.seen.count(in_gap.id) == 1
    assert len(in_gap.replies) == 1
    assert fake_discord.connections[-1].path == "/resume"
    assert len(fake_discord.sessions) == 1


async def test_each_shard_process_receives_only_its_guilds(fake_discord: FakeDiscord) -> None:
    guilds = [fake_discord.add_standard_guild(f"shard {n}", shard=(n, 2)) for n in (0, 1)]
    bots = [ShardedSelfTestBot(**bot_options(shard_ids=[n], shard_count=2)) for n in (0, 1)]

    async with contextlib.AsyncExitStack() as stack:
        for sharded in bots:
            await stack.enter_async_context(running_bot(sharded, fake_discord))
        posts = [await fake_discord.post_message(g.channel, g.member, "hi") for g in guilds]
        replies = [await post.wait_for_reply() for post in posts]

        assert [[g.id for g in b.guilds] for b in bots] == [[g.guild.id] for g in guilds]
        assert [r.content for r in replies] == ["shard 0: []", "shard 1: []"]
        assert [b.cog.seen for b in bots] == [[posts[0].id], [posts[1].id]]


@pytest.mark.parametrize("fake_discord_options", [{"recommended_shards": 1}])
async def test_auto_sharded_bot_asks_gateway_bot_for_its_shards(
    fake_discord: FakeDiscord, world: StandardGuild
) -> None:
    async with running_bot(ShardedSelfTestBot(**bot_options()), fake_discord) as sharded:
        assert sharded.shard_count == 1
        assert [g.id for g in sharded.guilds] == [world.guild.id]
    assert any(call.path == "/gateway/bot" for call in fake_discord.requests)


@pytest.mark.parametrize("fake_discord_options", [FAST_HEARTBEAT], ids=["fast-heartbeat"])
async def test_blocking_the_event_loop_shows_as_a_heartbeat_gap(
    fake_discord: FakeDiscord, bot: SelfTestBot
) -> None:
    await asyncio.sleep(0.5)
    assert fake_discord.max_heartbeat_gap() < 0.5

    time.sleep(0.8)  # noqa: ASYNC251 - the point is to block the loop the client runs on
    await asyncio.sleep(0.3)

    assert fake_discord.max_heartbeat_gap() >= 0.8


@pytest.mark.parametrize("fake_discord_options", [FAST_HEARTBEAT], ids=["fast-heartbeat"])
async def test_unanswered_heartbeats_make_the_client_resume(
    fake_discord: FakeDiscord, world: StandardGuild
) -> None:
    zombie_aware = SelfTestBot(**bot_options(heartbeat_timeout=0.6))
    async with running_bot(zombie_aware, fake_discord):
        fake_discord.set_heartbeat_acks(stalled=True)
        await fake_discord.wait_for_resume(shard_id=0, timeout=5)
        fake_discord.set_heartbeat_acks()

        posted = await fake_discord.post_message(world.channel, world.member, "still there?")
        assert (await posted.wait_for_reply()).content == "shard 0: []"


async def test_attachment_can_be_served_by_a_route_the_test_adds(
    fake_discord: FakeDiscord, world: StandardGuild, bot: SelfTestBot
) -> None:
    async def truncated(request: web.Request) -> web.Response:
        return web.Response(body=PICTURE[:100], content_type="image/png")

    url = fake_discord.add_route("GET", "/slow/{name}", truncated)
    announced = AttachmentSpec("face.png", url=url, size=len(PICTURE), content_type="image/png")

    posted = await fake_discord.post_message(world.channel, world.member, attachments=[announced])

    assert (await posted.wait_for_reply()).content == "shard 0: [100]"


async def test_injected_rest_fault_reaches_the_bot_as_an_http_error(
    fake_discord: FakeDiscord,
    world: StandardGuild,
    bot: SelfTestBot,
    discord_error_log: DiscordErrorLog,
) -> None:
    missing_permissions = {"code": 50013, "message": "Missing Permissions"}
    fake_discord.fail_requests(
        "POST", "/channels/{channel_id}/messages", status=403, body=missing_permissions
    )

    await fake_discord.post_message(world.channel, world.member, "hello?")
    await fake_discord.wait_for_typing(world.channel)
    await asyncio.sleep(0.1)

    [logged] = discord_error_log.take()
    assert logged.exc_info is not None and isinstance(logged.exc_info[1], discord.Forbidden)
    assert fake_discord.bot_messages == []


async def test_bot_can_resolve_a_message_link(
    fake_discord: FakeDiscord, world: StandardGuild, bot: SelfTestBot
) -> None:
    posted = await fake_discord.post_message(world.channel, world.member, "original")
    await posted.wait_for_reply()

    fetched = await bot.get_partial_messageable(world.channel.id).fetch_message(posted.id)

    assert (fetched.content, fetched.author.id) == ("original", world.member.id)


async def test_unknown_route_is_a_json_404_and_a_recorded_error(
    fake_discord: FakeDiscord, bot: SelfTestBot
) -> None:
    with pytest.raises(discord.NotFound):
        await bot.http.request(Route("GET", "/voice/regions"))

    assert fake_discord.take_errors() == ["unknown route GET /api/v10/voice/regions"]


async def test_message_discord_would_refuse_is_a_400_and_a_recorded_error(
    fake_discord: FakeDiscord, world: StandardGuild, bot: SelfTestBot
) -> None:
    channel = bot.get_channel(world.channel.id)
    assert isinstance(channel, discord.TextChannel)

    with pytest.raises(discord.HTTPException) as refused:
        await channel.send(embed=discord.Embed(title="x" * 300))

    assert refused.value.status == 400
    assert "embeds[0].title is 300 characters" in fake_discord.take_errors()[0]


async def test_rest_answers_carry_exactly_the_json_content_type(
    fake_discord: FakeDiscord,
) -> None:
    headers = {"Authorization": f"Bot {fake_discord.token}"}
    async with aiohttp.ClientSession(headers=headers) as session:
        for path in ("/users/@me", "/no/such/route"):
            async with session.get(fake_discord.api_base + path) as response:
                assert response.headers["Content-Type"] == "application/json"
                assert isinstance(await response.json(), dict)

    assert fake_discord.take_errors() == ["unknown route GET /api/v10/no/such/route"]
