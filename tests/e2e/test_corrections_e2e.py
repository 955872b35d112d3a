"""Corrections as members and moderators make them: a confirmed face's controls say so, and
"someone else…" offers the server's characters that match what was typed."""

from __future__ import annotations

import pytest

from bot.storage.schema import TrainingExample, Vote
from bot.storage.scope import Scope
from bot.views import OTHER
from tests.e2e.bundle import face_png
from tests.e2e.conftest import RunningAnimeBot
from tests.fake_discord import MANAGE_MESSAGES, BotMessage, FakeDiscord, StandardGuild

pytestmark = pytest.mark.usefixtures("discord_error_log")


async def answer(fake: FakeDiscord, world: StandardGuild) -> tuple[BotMessage, int]:
    posted = await fake.post_message(
        world.channel, world.member, attachments=[("p.png", face_png(), "image/png")]
    )
    reply = await posted.wait_for_reply()
    [menu] = [c for c in reply.custom_ids if c.startswith("fix:")]
    return reply, int(menu.removeprefix("fix:"))


async def test_a_confirmed_face_says_so_instead_of_taking_votes(
    fake_discord: FakeDiscord, world: StandardGuild, running: RunningAnimeBot
) -> None:
    moderator = world.guild.add_member("mod", permissions=MANAGE_MESSAGES)
    reply, face = await answer(fake_discord, world)

    click = await fake_discord.click_component(reply, f"fix:{face}", moderator, values=["char b"])

    thanks = await click.wait_for_followup()
    assert thanks.ephemeral and "Confirmed by a moderator" in thanks.text
    updated = await click.wait_for_original(lambda m: f"done:{face}" in m.custom_ids)
    done = updated.component(f"done:{face}")
    assert done is not None and done["disabled"] and done["label"] == "✓ Confirmed: Char B"
    assert f"fix:{face}" not in updated.custom_ids and f"ok:{face}" not in updated.custom_ids
    assert await running.count(TrainingExample) == 1


async def test_someone_else_offers_the_characters_that_match_what_was_typed(
    fake_discord: FakeDiscord, world: StandardGuild, running: RunningAnimeBot
) -> None:
    scope = Scope.of_guild(world.guild.id)
    for name in ("Kurosawa Dia", "Kurosawa Ruby"):
        await running.storage.characters.get_or_create(scope, name)
    reply, face = await answer(fake_discord, world)
    opened = await fake_discord.click_component(reply, f"fix:{face}", world.member, values=[OTHER])
    await opened.wait_for_callback()

    submitted = await fake_discord.submit_modal(
        opened, {"Character name": "kurosawa"}, world.member
    )

    question = await submitted.wait_for_message()
    assert question.ephemeral
    [menu] = [c for c in question.walk_components() if c["type"] == 3]
    assert [o["label"] for o in menu["options"]] == [
        "Kurosawa Dia",
        "Kurosawa Ruby",
        "“kurosawa” (a new name)",
    ]
    chose = await fake_discord.click_component(
        question, menu["custom_id"], world.member, values=["Kurosawa Ruby"]
    )
    said = await chose.wait_for_original(lambda m: "Thanks" in m.text)
    assert said.components == []
    assert await running.rows(Vote.label) == [("kurosawa ruby",)]


async def test_a_typed_alias_of_a_character_votes_for_it_at_once(
    fake_discord: FakeDiscord, world: StandardGuild, running: RunningAnimeBot
) -> None:
    scope = Scope.of_guild(world.guild.id)
    await running.storage.characters.get_or_create(scope, "Kurosawa Dia")
    await running.storage.characters.add_alias(scope, "Kurosawa Dia", "Dia-sama")
    reply, face = await answer(fake_discord, world)
    opened = await fake_discord.click_component(reply, f"fix:{face}", world.member, values=[OTHER])
    await opened.wait_for_callback()

    submitted = await fake_discord.submit_modal(
        opened, {"Character name": "dia-sama"}, world.member
    )

    thanks = await submitted.wait_for_message()
    assert "Kurosawa Dia" in thanks.text
    assert await running.rows(Vote.label) == [("kurosawa dia",)]


async def test_someone_else_offers_the_base_models_characters_too(
    fake_discord: FakeDiscord, world: StandardGuild, running: RunningAnimeBot
) -> None:
    reply, face = await answer(fake_discord, world)
    opened = await fake_discord.click_component(reply, f"fix:{face}", world.member, values=[OTHER])
    await opened.wait_for_callback()

    submitted = await fake_discord.submit_modal(opened, {"Character name": "char"}, world.member)

    question = await submitted.wait_for_message()
    [menu] = [c for c in question.walk_components() if c["type"] == 3]
    assert [o["label"] for o in menu["options"]] == [
        "Char A",
        "Char B",
        "Char C",
        "“char” (a new name)",
    ]
    assert await running.rows(Vote.label) == []


async def test_teach_autocompletes_the_base_models_characters(
    fake_discord: FakeDiscord, world: StandardGuild, running: RunningAnimeBot
) -> None:
    moderator = world.guild.add_member("mod", permissions=MANAGE_MESSAGES)

    offered = await fake_discord.send_autocomplete(
        "teach", {"character": "b"}, "character", user=moderator, channel=world.channel
    )

    choices = await offered.wait_for_callback()
    assert [c["name"] for c in choices.data["choices"]] == ["Char B"]
