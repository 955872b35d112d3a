"""Commands as members, moderators and admins meet them: /help, the message menu, stale
commands, private errors, settings that render, and no placeholder descriptions."""

from __future__ import annotations

import logging

import pytest

from bot.cogs.errors import STALE_COMMAND
from tests.e2e.answers import assert_names_one_of
from tests.e2e.bundle import E2E_CHARACTERS, face_png
from tests.e2e.conftest import Launch, RunningAnimeBot
from tests.fake_discord import MANAGE_MESSAGES, FakeDiscord, StandardGuild

pytestmark = pytest.mark.usefixtures("discord_error_log")

LABELS = tuple(c.folder.replace("_", " ") for c in E2E_CHARACTERS)


async def help_text(fake: FakeDiscord, world: StandardGuild, user) -> str:  # type: ignore[no-untyped-def]
    command = await fake.send_slash_command("help", user=user, channel=world.channel)
    page = await command.wait_for_message()
    assert page.ephemeral
    return page.text


async def test_help_lists_a_members_commands_only(
    fake_discord: FakeDiscord, world: StandardGuild, running: RunningAnimeBot
) -> None:
    text = await help_text(fake_discord, world, world.member)

    assert "I name anime characters" in text
    assert "✓ right" in text
    for command in ("`/identify`", "`/help`", "`/forgetme`", "Apps → Identify characters"):
        assert command in text, text
    for command in ("/retrain", "/settings", "/review", "/teach"):
        assert command not in text, text


async def test_help_lists_a_moderators_commands_but_not_an_admins(
    fake_discord: FakeDiscord, world: StandardGuild, running: RunningAnimeBot
) -> None:
    moderator = world.guild.add_member("mod", permissions=MANAGE_MESSAGES)

    text = await help_text(fake_discord, world, moderator)

    assert "`/teach`" in text and "`/review list`" in text
    assert "/retrain" not in text and "/settings" not in text


async def test_help_lists_every_command_for_an_admin(
    fake_discord: FakeDiscord, world: StandardGuild, running: RunningAnimeBot
) -> None:
    text = await help_text(fake_discord, world, world.admin)

    assert "`/retrain`" in text and "`/settings watch`" in text


async def test_help_in_japanese(
    fake_discord: FakeDiscord, world: StandardGuild, running: RunningAnimeBot
) -> None:
    world.member.user.locale = "ja"

    text = await help_text(fake_discord, world, world.member)

    assert "画像の中のアニメキャラクター" in text
    assert "`/identify` — 画像のアニメキャラクターの名前を答えます" in text


async def test_identify_characters_on_a_message_answers_its_picture(
    fake_discord: FakeDiscord,
    world: StandardGuild,
    launch,
    trained_bundle,  # type: ignore[no-untyped-def]
) -> None:
    running = await launch(bundle=trained_bundle)
    await running.storage.guilds.update(world.guild.id, auto_reply=False)
    posted = await fake_discord.post_message(
        world.channel, world.member, attachments=[("p.png", face_png(), "image/png")]
    )

    command = await fake_discord.send_message_command(
        "Identify characters", posted, user=world.admin
    )

    answer = await command.wait_for_message()
    assert not answer.ephemeral
    assert assert_names_one_of(answer, LABELS) == LABELS[0]
    assert posted.replies == []


async def test_identify_characters_on_a_message_without_a_picture_answers_privately(
    fake_discord: FakeDiscord, world: StandardGuild, running: RunningAnimeBot
) -> None:
    posted = await fake_discord.post_message(world.channel, world.member, "just words")

    command = await fake_discord.send_message_command(
        "Identify characters", posted, user=world.member
    )

    answer = await command.wait_for_followup()
    assert answer.ephemeral
    assert "no picture" in answer.text
    public = [m for m in fake_discord.bot_messages if not m.ephemeral and not m.deleted]
    assert public == []


async def test_identify_errors_are_private(
    fake_discord: FakeDiscord, world: StandardGuild, running: RunningAnimeBot
) -> None:
    command = await fake_discord.send_slash_command(
        "identify", {}, user=world.member, channel=world.channel
    )

    answer = await command.wait_for_followup()
    assert answer.ephemeral
    assert "Attach a picture" in answer.text
    assert [m for m in fake_discord.bot_messages if not m.ephemeral and not m.deleted] == []


async def test_a_stale_command_gets_a_short_private_answer_and_no_traceback(
    fake_discord: FakeDiscord,
    world: StandardGuild,
    running: RunningAnimeBot,
    caplog: pytest.LogCaptureFixture,
) -> None:
    command = await fake_discord.send_slash_command(
        "classify_old", {}, user=world.member, channel=world.channel
    )

    answer = await command.wait_for_message()
    assert answer.ephemeral
    assert answer.text == STALE_COMMAND
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR or r.exc_info]


def options(command: dict) -> list[dict]:  # type: ignore[type-arg]
    """Every option of a synced command, subcommands' own included."""
    found = []
    for option in command.get("options") or []:
        found.append(option)
        found += options(option)
    return found


async def test_no_synced_option_has_a_placeholder_description(
    fake_discord: FakeDiscord, running: RunningAnimeBot
) -> None:
    synced = fake_discord.commands[None].values()
    placeholders = [
        f"{command['name']} {option['name']}"
        for command in synced
        for option in options(command)
        if option["description"] in ("…", "...", "")
    ]
    assert placeholders == []


async def test_every_synced_description_has_a_japanese_one(
    fake_discord: FakeDiscord, running: RunningAnimeBot
) -> None:
    missing = []
    for command in fake_discord.commands[None].values():
        for item in (command, *options(command)):
            if item.get("description") and "ja" not in (
                item.get("description_localizations") or {}
            ):
                missing.append(f"{command['name']} {item['name']}: {item['description']!r}")

    assert missing == [], "\n".join(missing)


async def test_settings_show_channel_mentions_where_they_render(
    fake_discord: FakeDiscord, world: StandardGuild, launch: Launch
) -> None:
    await launch(watch_all=False)
    command = await fake_discord.send_slash_command(
        "settings watch", {"channel": world.channel}, user=world.admin, channel=world.channel
    )

    shown = await command.wait_for_message()
    [embed] = shown.embeds
    assert shown.ephemeral
    assert "<#" not in embed["title"]
    assert f"<#{world.channel.id}>" in embed["description"]
    watched = next(f for f in embed["fields"] if f["name"] == "Watched channels")
    assert watched["value"] == f"<#{world.channel.id}>"


async def test_model_shows_when_it_was_trained(
    fake_discord: FakeDiscord, world: StandardGuild, running: RunningAnimeBot
) -> None:
    command = await fake_discord.send_slash_command(
        "model", user=world.admin, channel=world.channel
    )

    shown = await command.wait_for_message()
    assert shown.ephemeral
    trained = next(f for f in shown.embeds[0]["fields"] if f["name"] == "Trained")
    assert trained["value"].startswith("<t:") and trained["value"].endswith(":R>)")


async def test_rollback_answers_privately(
    fake_discord: FakeDiscord, world: StandardGuild, running: RunningAnimeBot
) -> None:
    command = await fake_discord.send_slash_command(
        "rollback", user=world.admin, channel=world.channel
    )

    answer = await command.wait_for_message()
    assert answer.ephemeral
    assert "no earlier model" in answer.text
