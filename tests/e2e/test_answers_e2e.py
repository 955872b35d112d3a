"""What a member reads: the answer says who it is first, in the reader's language, with the
face's crop or the numbered picture, and no internals."""

from __future__ import annotations

import io

import pytest
from PIL import Image as PILImage

from bot.presenters import SURE_COLOUR, UNSURE_COLOUR
from tests.e2e.answers import answered_name, assert_names_one_of
from tests.e2e.bundle import E2E_CHARACTERS, face_png
from tests.e2e.conftest import RunningAnimeBot
from tests.fake_discord import BotMessage, FakeDiscord, StandardGuild
from tests.pictures import encode, group_picture

pytestmark = pytest.mark.usefixtures("discord_error_log")

LABELS = tuple(c.folder.replace("_", " ") for c in E2E_CHARACTERS)
JAPANESE_FOOTER = "間違っていますか？下から正しい名前を選んでください。"
INTERNALS = ("model ", " ms", "cascade", "animeface", "found by")


def picture(file_bytes: bytes) -> PILImage.Image:
    image = PILImage.open(io.BytesIO(file_bytes))
    image.load()
    return image


async def post(fake: FakeDiscord, world: StandardGuild, png: bytes) -> BotMessage:
    posted = await fake.post_message(
        world.channel, world.member, attachments=[("p.png", png, "image/png")]
    )
    return await posted.wait_for_reply()


async def test_one_face_is_named_first_with_its_crop_as_thumbnail(
    fake_discord: FakeDiscord, world: StandardGuild, running: RunningAnimeBot
) -> None:
    reply = await post(fake_discord, world, face_png())

    [embed] = reply.embeds
    assert assert_names_one_of(reply, LABELS) == LABELS[0]
    assert embed["title"].startswith(("Char A", "Not sure")), embed["title"]
    unsure = embed["title"].startswith("Not sure")
    assert embed["color"] == (UNSURE_COLOUR if unsure else SURE_COLOUR).value
    assert embed["thumbnail"]["url"] == "attachment://face.jpg"
    assert "image" not in embed
    [crop] = reply.files
    assert crop.filename == "face.jpg"
    assert picture(crop.content).format == "JPEG"


async def test_an_answer_shows_no_internals(
    fake_discord: FakeDiscord, world: StandardGuild, running: RunningAnimeBot
) -> None:
    reply = await post(fake_discord, world, face_png())

    assert reply.embeds[0]["footer"]["text"] == "Wrong? Choose the right name below."
    for word in INTERNALS:
        assert word not in reply.text, reply.text
    assert running.bot.base_version is not None
    assert running.bot.base_version not in reply.text


async def test_several_faces_get_one_line_each_and_the_numbered_picture(
    fake_discord: FakeDiscord, world: StandardGuild, running: RunningAnimeBot
) -> None:
    reply = await post(fake_discord, world, encode(group_picture()))

    [embed] = reply.embeds
    lines = embed["description"].splitlines()
    assert [line[:6] for line in lines[:2]] == ["**1.**", "**2.**"]
    assert embed["image"]["url"] == "attachment://faces.jpg"
    assert "thumbnail" not in embed
    [numbered] = reply.files
    assert picture(numbered.content).size == (1000, 500)
    assert embed["title"].count(",") == 1  # two names (or "not sure"), main face first


async def test_a_japanese_reader_gets_the_answer_in_japanese(
    fake_discord: FakeDiscord, world: StandardGuild, running: RunningAnimeBot
) -> None:
    world.member.user.locale = "ja"
    command = await fake_discord.send_slash_command(
        "identify",
        {"image": ("p.png", face_png(), "image/png")},
        user=world.member,
        channel=world.channel,
    )

    answer = await command.wait_for_message()
    assert (
        answer.embeds[0]["footer"]["text"] == "間違っていますか？下から正しい名前を選んでください。"
    )
    assert "（" in answer.embeds[0]["title"] or "自信がありません" in answer.embeds[0]["title"]


async def test_a_post_follows_the_servers_language(
    fake_discord: FakeDiscord,
    world: StandardGuild,
    launch,
    trained_bundle,  # type: ignore[no-untyped-def]
) -> None:
    world.guild.preferred_locale = "ja"
    await launch(bundle=trained_bundle)

    reply = await post(fake_discord, world, face_png())

    assert reply.embeds[0]["footer"]["text"].startswith("間違っていますか")
    assert answered_name(reply) is None or "自信" not in reply.text


async def test_synced_commands_carry_japanese_names_and_descriptions(
    fake_discord: FakeDiscord, running: RunningAnimeBot
) -> None:
    identify = fake_discord.registered_command("identify", None)

    assert identify is not None
    assert identify["name_localizations"]["ja"] == "識別"
    assert identify["description_localizations"]["ja"] == "画像のアニメキャラクターの名前を答えます"
    image = next(o for o in identify["options"] if o["name"] == "image")
    assert image["description_localizations"]["ja"] == "見てほしい画像"
