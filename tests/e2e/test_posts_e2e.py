"""Posts as members make them: links to pictures, and several pictures in one message."""

from __future__ import annotations

import numpy as np
import pytest

from tests.e2e.answers import MAIN_FACE
from tests.e2e.bundle import E2E_CHARACTERS, face_png
from tests.e2e.conftest import RunningAnimeBot
from tests.fake_discord import AttachmentSpec, BotMessage, FakeDiscord, StandardGuild
from tests.pictures import character_picture, encode

pytestmark = pytest.mark.usefixtures("discord_error_log")

LABELS = tuple(c.folder.replace("_", " ") for c in E2E_CHARACTERS)


def pictures(count: int) -> list[tuple[str, bytes, str]]:
    rng = np.random.default_rng(5)
    return [
        (f"p{n}.png", encode(character_picture(E2E_CHARACTERS[n % 3], rng)), "image/png")
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
    assert reply.content == "I look at the first 4 pictures of a message; 1 more were left out."
