"""Moderators and admins read the bot in their language too: the same commands with the
interaction's locale set to Japanese (what Discord sends for a Japanese client)."""

from __future__ import annotations

import pytest

from tests.e2e.bundle import face_png
from tests.e2e.conftest import RunningAnimeBot
from tests.fake_discord import MANAGE_MESSAGES, BotMessage, FakeDiscord, StandardGuild

pytestmark = pytest.mark.usefixtures("discord_error_log")


async def ask(fake: FakeDiscord, world: StandardGuild, name: str, user, options=None) -> BotMessage:  # type: ignore[no-untyped-def]
    user.user.locale = "ja"
    command = await fake.send_slash_command(name, options or {}, user=user, channel=world.channel)
    answer = await command.wait_for_message()
    assert answer.ephemeral
    return answer


async def test_settings_in_japanese(
    fake_discord: FakeDiscord, world: StandardGuild, running: RunningAnimeBot
) -> None:
    answer = await ask(fake_discord, world, "settings votes_needed", world.admin, {"count": 3})

    [embed] = answer.embeds
    assert embed["title"] == "設定"
    assert embed["description"] == "変更しました。"
    fields = {field["name"]: field["value"] for field in embed["fields"]}
    assert fields == {
        "自動返信": "オン",
        "見守るチャンネル": "すべてのチャンネル",
        "表示する候補数": "3",
        "必要な票数": "3",
    }


async def test_a_refused_retrain_in_japanese(
    fake_discord: FakeDiscord, world: StandardGuild, running: RunningAnimeBot
) -> None:
    refusal = await ask(fake_discord, world, "retrain", world.member)
    assert refusal.text == "それには「サーバー管理」の権限が必要です。"

    status = await ask(fake_discord, world, "retrain", world.admin)
    stopped = await fake_discord.wait_for_message(
        world.channel, lambda m: m.id == status.id and m.content.startswith("学習を中止しました。")
    )
    assert "このサーバーにはまだ独自の確認済み画像がない" in stopped.content


async def test_review_and_teach_in_japanese(
    fake_discord: FakeDiscord, world: StandardGuild, running: RunningAnimeBot
) -> None:
    moderator = world.guild.add_member("mod", permissions=MANAGE_MESSAGES)
    nothing = await ask(fake_discord, world, "review list", moderator)
    assert nothing.text == "保留中のものはありません。"

    taught = await ask(
        fake_discord,
        world,
        "teach",
        moderator,
        {"character": "Char A", "image": ("a.png", face_png(), "image/png")},
    )
    assert taught.text.splitlines() == ["*Char A* を教えています：", "1. 学習しました"]


async def test_a_members_vote_is_thanked_in_japanese(
    fake_discord: FakeDiscord, world: StandardGuild, running: RunningAnimeBot
) -> None:
    posted = await fake_discord.post_message(
        world.channel, world.member, attachments=[("face.png", face_png(), "image/png")]
    )
    answer = await posted.wait_for_reply()
    world.member.user.locale = "ja"
    [right] = [c for c in answer.custom_ids if c.startswith("ok:")]

    click = await fake_discord.click_component(answer, right, world.member)

    said = await click.wait_for_message()
    assert said.ephemeral
    assert said.text.startswith("ありがとうございます — "), said.text
