"""Two servers on one bot, through the fake Discord: nothing one server makes is visible to,
counted in, exported from or changeable by the other, command by command; ``/forgetme``
reaches every server.

Server A teaches and votes; server B must see none of it. The same person is a member of
both.
"""

from __future__ import annotations

import io
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio

from bot.storage.schema import Character, Image, TrainingExample, TrainingRun, Vote
from bot.storage.scope import Scope
from tests.e2e.bundle import face_png
from tests.e2e.conftest import Launch, RunningAnimeBot
from tests.fake_discord import (
    MANAGE_GUILD,
    MANAGE_MESSAGES,
    BotMessage,
    FakeChannel,
    FakeDiscord,
    FakeGuild,
    FakeMember,
    InteractionHandle,
)

pytestmark = pytest.mark.usefixtures("discord_error_log")

TAUGHT = "Nishikino Maki"


@dataclass
class Server:
    """One server of the test: its channel, an admin who is also a moderator, a member."""

    guild: FakeGuild
    channel: FakeChannel
    admin: FakeMember
    member: FakeMember


@dataclass
class Two:
    """Server A, server B and the bot serving both."""

    a: Server
    b: Server
    bot: RunningAnimeBot
    fake: FakeDiscord

    async def command(
        self, server: Server, name: str, options: dict[str, Any] | None = None, *, by: str = "admin"
    ) -> InteractionHandle:
        """``/name`` run in ``server`` by its admin (or its ``member``)."""
        user = server.admin if by == "admin" else server.member
        return await self.fake.send_slash_command(
            name, options or {}, user=user, channel=server.channel
        )

    async def reply(
        self, server: Server, name: str, options: dict[str, Any] | None = None, *, by: str = "admin"
    ) -> BotMessage:
        """What ``/name`` answers in ``server``."""
        handle = await self.command(server, name, options, by=by)
        return await handle.wait_for_message()

    async def post(self, server: Server) -> BotMessage:
        """The member posts a face in ``server``; the bot's answer."""
        posted = await self.fake.post_message(
            server.channel, server.member, attachments=[("face.png", face_png(), "image/png")]
        )
        return await posted.wait_for_reply()

    async def teach(self, server: Server, name: str = TAUGHT) -> None:
        """The admin teaches ``name`` with one portrait in ``server``."""
        said = await self.reply(
            server, "teach", {"character": name, "image": ("maki.png", face_png(), "image/png")}
        )
        assert said.text.endswith("1. learnt"), said.text


def menu_options(answer: BotMessage) -> list[str]:
    """The values of the answer's first "who is it?" menu."""
    [menu] = [c for c in answer.walk_components() if c.get("type") == 3]
    return [option["value"] for option in menu["options"]]


def add_server(fake: FakeDiscord, name: str, member: FakeMember | None) -> Server:
    guild = fake.add_guild(name)
    channel = guild.add_text_channel("general")
    admin = guild.add_member(f"{name} admin", permissions=MANAGE_GUILD | MANAGE_MESSAGES)
    joined = guild.add_member(member.user if member else f"{name} member")
    return Server(guild, channel, admin, joined)


@pytest_asyncio.fixture
async def two(fake_discord: FakeDiscord, launch: Launch, trained_bundle: Path) -> Two:
    a = add_server(fake_discord, "server A", None)
    b = add_server(fake_discord, "server B", a.member)
    return Two(a, b, await launch(bundle=trained_bundle), fake_discord)


async def test_a_character_taught_in_one_server_is_in_its_menus_only(two: Two) -> None:
    await two.teach(two.a)

    in_a, in_b = await two.post(two.a), await two.post(two.b)

    assert TAUGHT in menu_options(in_a)
    assert TAUGHT not in menu_options(in_b)


async def test_autocomplete_offers_only_the_servers_own_characters(two: Two) -> None:
    await two.teach(two.a)
    choices = {}

    for server in (two.a, two.b):
        handle = await two.fake.send_autocomplete(
            "teach", {"character": "nishi"}, "character", user=server.admin, channel=server.channel
        )
        callback = await handle.wait_for_callback()
        assert callback.data is not None
        choices[server.guild.name] = [choice["value"] for choice in callback.data["choices"]]

    assert choices == {"server A": [TAUGHT], "server B": []}


async def test_export_holds_only_the_servers_own_examples(two: Two) -> None:
    await two.teach(two.a)

    from_a = await two.reply(two.a, "export")
    from_b = await two.reply(two.b, "export")

    [dataset] = from_a.files
    with zipfile.ZipFile(io.BytesIO(dataset.content)) as archive:
        assert archive.namelist() == ["Nishikino_Maki/0.jpg"]
    assert from_b.files == []
    assert "no confirmed examples yet" in from_b.text


async def held_vote_in_a(two: Two) -> int:
    """The member of both servers votes on an answer in server A (a new account, against
    the model: held); the face's id."""
    answer = await two.post(two.a)
    [menu] = [c for c in answer.custom_ids if c.startswith("fix:")]
    click = await two.fake.click_component(answer, menu, two.a.member, values=["char b"])
    assert "held" in (await click.wait_for_message()).text
    return int(menu.removeprefix("fix:"))


async def test_stats_count_only_the_servers_own(two: Two) -> None:
    await held_vote_in_a(two)

    in_a = await two.reply(two.a, "stats")
    in_b = await two.reply(two.b, "stats")

    assert "Votes 1" in in_a.text and "Held for moderators 1" in in_a.text
    assert "Pictures 0" in in_b.text and "Votes 0" in in_b.text
    assert "Held for moderators 0" in in_b.text


async def test_review_lists_and_decides_only_the_servers_own(two: Two) -> None:
    face = await held_vote_in_a(two)

    listed_a = await two.reply(two.a, "review list")
    listed_b = await two.reply(two.b, "review list")
    accepted_from_b = await two.reply(two.b, "review accept", {"face": face, "label": "Rem"})
    dismissed_from_b = await two.reply(two.b, "review dismiss", {"face": face})

    assert f"Face {face}" in listed_a.text
    assert listed_b.text == "Nothing is waiting."
    for refused in (accepted_from_b, dismissed_from_b):
        assert f"There is no face {face} in this server." in refused.text
    assert await two.bot.rows(Vote.status) == [("held",)]
    assert await two.bot.count(TrainingExample) == 0


async def test_contributions_and_purge_reach_the_servers_own(two: Two) -> None:
    await held_vote_in_a(two)
    member = {"user": two.a.member}

    seen_in_b = await two.reply(two.b, "contributions", member)
    purged_in_b = await two.reply(two.b, "purge", member)
    seen_in_a = await two.reply(two.a, "contributions", member)

    assert "0 vote(s) (0 held)" in seen_in_b.text
    assert "0 vote(s) (0 held)" in purged_in_b.text
    assert "1 vote(s) (1 held)" in seen_in_a.text
    assert await two.bot.count(Vote) == 1


async def test_forgetme_deletes_a_members_data_in_every_server(two: Two) -> None:
    await held_vote_in_a(two)
    answer_b = await two.post(two.b)
    [ok] = [c for c in answer_b.custom_ids if c.startswith("ok:")]
    await (await two.fake.click_component(answer_b, ok, two.b.member)).wait_for_message()
    assert await two.bot.count(Vote) == 2

    said = await two.reply(two.b, "forgetme", by="member")

    assert said.text.startswith("Deleted: 2 vote(s) (1 held)")
    assert await two.bot.count(Vote) == 0


async def test_retrain_sees_only_the_servers_own_examples(two: Two) -> None:
    for name in (TAUGHT, "Sakurauchi Riko"):
        for _ in range(3):
            await two.teach(two.a, name)

    await two.command(two.b, "retrain")
    done = await two.fake.wait_for_message(
        two.b.channel, lambda m: m.content.startswith("Training stopped"), timeout=30
    )

    assert "no confirmed pictures of its own" in done.content
    assert [guild for (guild,) in await two.bot.rows(TrainingRun.guild_id)] == [two.b.guild.id]
    rows = await two.bot.rows(Character.name, Character.scope_id)
    assert sorted(name for name, scope in rows if scope != Scope.BASE.id) == [
        TAUGHT,
        "Sakurauchi Riko",
    ]


async def test_an_answer_in_a_dm_belongs_to_no_server_and_takes_no_votes(two: Two) -> None:
    command = await two.fake.send_slash_command(
        "identify",
        {"image": ("face.png", face_png(), "image/png")},
        user=two.a.member,
        channel=two.fake.dm_channel(two.a.member),
    )

    answer = await command.wait_for_message()

    assert "%" in answer.text and answer.custom_ids == []
    assert await two.bot.count(Image) == 0


async def test_settings_changed_in_one_server_stay_there(two: Two) -> None:
    await two.reply(two.a, "settings votes_needed", {"count": 5})

    in_b = await two.reply(two.b, "settings show")
    in_a = await two.reply(two.a, "settings show")

    assert "Votes needed 5" in in_a.text
    assert "Votes needed 2" in in_b.text
