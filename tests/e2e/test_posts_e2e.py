"""Posts as members make them: links to pictures, and several pictures in one message
(posted in a watched channel, or pointed at with ``/identify`` and the message menu)."""

from __future__ import annotations

from pathlib import Path

import pytest
import pytest_asyncio

from tests.e2e.answers import MAIN_FACE
from tests.e2e.bundle import E2E_CHARACTERS, face_png
from tests.e2e.conftest import Launch, RunningAnimeBot
from tests.fake_discord import AttachmentSpec, BotMessage, FakeDiscord, StandardGuild
from tests.fake_discord.handles import PostedMessage
from tests.pictures import encode, group_picture

pytestmark = pytest.mark.usefixtures("discord_error_log")

LABELS = tuple(c.folder.replace("_", " ") for c in E2E_CHARACTERS)


def pictures(count: int) -> list[tuple[str, bytes, str]]:
    """Pictures of the three characters in turn, each drawn afresh (the first of each
    character as the other end-to-end tests draw it)."""
    return [
        (f"p{n}.png", face_png(E2E_CHARACTERS[n % 3], seed=1234 + n // 3), "image/png")
        for n in range(count)
    ]


def names(reply: BotMessage) -> list[str]:
    found = []
    for embed in reply.embeds:
        match = MAIN_FACE.match(embed.get("title") or "")
        found.append(match["name"].lower() if match else "")
    return found


async def test_a_link_is_read_from_discords_media_proxy(
    fake_discord: FakeDiscord, world: StandardGuild, running: RunningAnimeBot
) -> None:
    proxied = fake_discord.serve_attachment(
        world.channel.id, AttachmentSpec("linked.png", face_png(), "image/png")
    )["url"]
    link = "https://example.com/some/picture.png"
    embed = {
        "type": "image",
        "url": link,
        "thumbnail": {"url": link, "proxy_url": proxied, "width": 256, "height": 256},
    }

    posted = await fake_discord.post_message(world.channel, world.member, link, embeds=[embed])

    reply = await posted.wait_for_reply()
    assert names(reply) == [LABELS[0]]
    assert "can only be downloaded" not in reply.text


async def test_four_pictures_get_one_reply_covering_them(
    fake_discord: FakeDiscord, world: StandardGuild, running: RunningAnimeBot
) -> None:
    posted = await fake_discord.post_message(world.channel, world.member, attachments=pictures(4))

    reply = await posted.wait_for_reply()
    assert len(posted.replies) == 1
    assert names(reply) == [LABELS[0], LABELS[1], LABELS[2], LABELS[0]]
    assert [e["author"]["name"] for e in reply.embeds] == [f"Picture {n} of 4" for n in range(1, 5)]
    assert sorted(f.filename for f in reply.files) == [f"face-{n}.jpg" for n in range(1, 5)]
    assert reply.embeds[1]["thumbnail"]["url"] == "attachment://face-2.jpg"
    placeholders = [c.get("placeholder") for c in reply.walk_components() if c["type"] == 3]
    assert placeholders == [f"Face {n}: who is it?" for n in range(1, 5)]
    assert reply.content == ""


async def test_five_pictures_get_one_reply_that_says_one_was_left_out(
    fake_discord: FakeDiscord, world: StandardGuild, running: RunningAnimeBot
) -> None:
    posted = await fake_discord.post_message(world.channel, world.member, attachments=pictures(5))

    reply = await posted.wait_for_reply()
    assert len(posted.replies) == 1
    assert len(reply.embeds) == 4
    assert reply.content == "I look at a message's first 4 pictures and left out the other 1."


def message_link(guild_id: int, posted: PostedMessage) -> str:
    return f"https://discord.com/channels/{guild_id}/{posted.channel_id}/{posted.id}"


@pytest_asyncio.fixture
async def quiet(launch: Launch, world: StandardGuild, trained_bundle: Path) -> RunningAnimeBot:
    """The bot serving the trained bundle, watching no channel (so only commands answer)."""
    return await launch(bundle=trained_bundle, watch_all=False)


async def test_identify_characters_on_five_pictures_covers_four_in_one_answer(
    fake_discord: FakeDiscord, world: StandardGuild, quiet: RunningAnimeBot
) -> None:
    posted = await fake_discord.post_message(world.channel, world.member, attachments=pictures(5))

    command = await fake_discord.send_message_command(
        "Identify characters", posted, user=world.member
    )

    answer = await command.wait_for_message()
    assert not answer.ephemeral
    assert names(answer) == [LABELS[0], LABELS[1], LABELS[2], LABELS[0]]
    numbers = [e["author"]["name"] for e in answer.embeds]
    assert numbers == [f"Picture {n} of 4" for n in range(1, 5)]
    assert answer.content == "I look at a message's first 4 pictures and left out the other 1."
    placeholders = [c.get("placeholder") for c in answer.walk_components() if c["type"] == 3]
    assert placeholders == [f"Face {n}: who is it?" for n in range(1, 5)]
    assert posted.replies == []


async def test_identify_with_a_link_covers_every_picture_of_the_message(
    fake_discord: FakeDiscord, world: StandardGuild, quiet: RunningAnimeBot
) -> None:
    posted = await fake_discord.post_message(world.channel, world.member, attachments=pictures(3))

    command = await fake_discord.send_slash_command(
        "identify",
        {"link": message_link(world.guild.id, posted)},
        user=world.member,
        channel=world.channel,
    )

    answer = await command.wait_for_message()
    assert not answer.ephemeral
    assert names(answer) == list(LABELS[:3])
    assert sorted(f.filename for f in answer.files) == [f"face-{n}.jpg" for n in range(1, 4)]
    assert answer.content == ""


async def test_identify_with_a_link_in_japanese_numbers_the_pictures_in_japanese(
    fake_discord: FakeDiscord, world: StandardGuild, quiet: RunningAnimeBot
) -> None:
    posted = await fake_discord.post_message(world.channel, world.member, attachments=pictures(2))
    world.member.user.locale = "ja"

    command = await fake_discord.send_slash_command(
        "identify",
        {"link": message_link(world.guild.id, posted)},
        user=world.member,
        channel=world.channel,
    )

    answer = await command.wait_for_message()
    assert [e["author"]["name"] for e in answer.embeds] == ["画像 1/2", "画像 2/2"]


async def test_identify_refuses_a_link_to_another_servers_message_privately(
    fake_discord: FakeDiscord, world: StandardGuild, trained_bundle: Path, launch: Launch
) -> None:
    other = fake_discord.add_standard_guild("Elsewhere")
    await launch(bundle=trained_bundle, watch_all=False)
    posted = await fake_discord.post_message(other.channel, other.member, attachments=pictures(1))

    command = await fake_discord.send_slash_command(
        "identify",
        {"link": message_link(other.guild.id, posted)},
        user=world.member,
        channel=world.channel,
    )

    answer = await command.wait_for_followup()
    assert answer.ephemeral
    assert "only look at messages of the server" in answer.text
    assert [m for m in fake_discord.bot_messages if not m.ephemeral and not m.deleted] == []


async def test_faces_beyond_the_four_menus_are_said_to_have_none(
    fake_discord: FakeDiscord, world: StandardGuild, running: RunningAnimeBot
) -> None:
    groups = [(f"g{n}.png", encode(group_picture(seed=n)), "image/png") for n in range(3)]

    posted = await fake_discord.post_message(world.channel, world.member, attachments=groups)

    reply = await posted.wait_for_reply()
    placeholders = [c.get("placeholder") for c in reply.walk_components() if c["type"] == 3]
    assert placeholders == [f"Face {n}: who is it?" for n in ("1.1", "1.2", "2.1", "2.2")]
    assert reply.content == "Only faces 1.1, 1.2, 2.1, 2.2 can be corrected below."


async def test_a_picture_that_cannot_be_read_is_said_so_in_a_sentence(
    fake_discord: FakeDiscord, world: StandardGuild, running: RunningAnimeBot
) -> None:
    """The reason is worded to follow "not used: " in /teach; alone in an answer it starts
    with a capital (drive-through 4 read "the PNG picture is truncated …")."""
    cut = ("cut.png", face_png()[:3000], "image/png")
    text = ("notes.txt", b"not a picture\n" * 40, "text/plain")
    posted = await fake_discord.post_message(
        world.channel, world.member, attachments=[pictures(1)[0], cut]
    )

    reply = await posted.wait_for_reply()
    assert names(reply)[0] == LABELS[0]
    failed = reply.embeds[1]
    assert failed["author"]["name"] == "Picture 2 of 2"
    assert failed["description"] == "The PNG picture is truncated (incomplete file?)"

    command = await fake_discord.send_slash_command(
        "identify", {"image": text}, user=world.member, channel=world.channel
    )
    refused = await command.wait_for_followup()
    assert refused.ephemeral
    assert refused.embeds[0]["description"] == "Not a picture: looks like text"
