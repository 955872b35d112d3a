"""/characters for members, and /character rename|merge|alias|hide for moderators."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.storage.schema import TrainingExample, Vote
from bot.storage.scope import Scope
from tests.e2e.bundle import install_base_model
from tests.e2e.conftest import Launch, RunningAnimeBot
from tests.fake_discord import MANAGE_MESSAGES, BotMessage, FakeDiscord, FakeMember, StandardGuild

pytestmark = pytest.mark.usefixtures("discord_error_log")


@pytest.fixture
def moderator(world: StandardGuild) -> FakeMember:
    return world.guild.add_member("mod", permissions=MANAGE_MESSAGES)


async def ask(
    fake: FakeDiscord, world: StandardGuild, user: FakeMember, command_name: str, **options: object
) -> BotMessage:
    command = await fake.send_slash_command(command_name, options, user=user, channel=world.channel)
    answer = await command.wait_for_message()
    assert answer.ephemeral
    return answer


async def test_characters_lists_names_with_aliases_a_page_at_a_time(
    fake_discord: FakeDiscord, world: StandardGuild, running: RunningAnimeBot
) -> None:
    scope = Scope.of_guild(world.guild.id)
    for number in range(20):
        await running.storage.characters.get_or_create(scope, f"Character {number:02d}")
    await running.storage.characters.add_alias(scope, "Character 00", "Zero")

    listed = await ask(fake_discord, world, world.member, "characters")

    [embed] = listed.embeds
    assert embed["title"] == "Characters I know here (23)"  # and the base model's three
    lines = embed["description"].splitlines()
    assert lines[:4] == ["**Char A**", "**Char B**", "**Char C**", "**Character 00** — also Zero"]
    assert embed["footer"]["text"] == "Page 1 of 2"
    [forward] = [c for c in listed.walk_components() if c.get("label") == "▶"]
    click = await fake_discord.click_component(listed, forward["custom_id"], world.member)
    page = await click.wait_for_original(lambda m: "Page 2 of 2" in m.text)
    assert page.embeds[0]["description"].splitlines()[0] == "**Character 12**"


async def test_a_mistyped_name_is_renamed_and_its_votes_follow(
    fake_discord: FakeDiscord, world: StandardGuild, running: RunningAnimeBot, moderator: FakeMember
) -> None:
    scope = Scope.of_guild(world.guild.id)
    await running.storage.characters.get_or_create(scope, "Nishikno Maki")

    said = await ask(
        fake_discord,
        world,
        moderator,
        "character rename",
        name="Nishikno Maki",
        new_name="Nishikino Maki",
    )

    assert said.text == "Renamed to **Nishikino Maki**."
    listed = await ask(fake_discord, world, world.member, "characters")
    assert "**Nishikino Maki**" in listed.text and "Nishikno" not in listed.text


async def test_a_duplicate_is_merged_into_the_right_character(
    fake_discord: FakeDiscord, world: StandardGuild, running: RunningAnimeBot, moderator: FakeMember
) -> None:
    scope = Scope.of_guild(world.guild.id)
    await running.storage.examples.add_taught(scope, "Maki", b"crop-1", moderator.id)
    await running.storage.examples.add_taught(scope, "Nishikino Maki", b"crop-2", moderator.id)

    said = await ask(
        fake_discord, world, moderator, "character merge", name="Maki", into="Nishikino Maki"
    )

    assert said.text == "Merged **Maki** into **Nishikino Maki**."
    assert await running.storage.examples.counts(scope) == {"Nishikino Maki": 2}
    listed = await ask(fake_discord, world, world.member, "characters")
    assert "**Nishikino Maki** — also Maki" in listed.text
    assert await running.count(TrainingExample) == 2


async def test_an_alias_finds_the_character_in_autocomplete(
    fake_discord: FakeDiscord, world: StandardGuild, running: RunningAnimeBot, moderator: FakeMember
) -> None:
    scope = Scope.of_guild(world.guild.id)
    await running.storage.characters.get_or_create(scope, "Kurosawa Dia")

    said = await ask(
        fake_discord, world, moderator, "character alias", name="Kurosawa Dia", alias="Dia-sama"
    )
    typed = await fake_discord.send_autocomplete(
        "review accept",
        {"face": 1, "label": "sama"},
        "label",
        user=moderator,
        channel=world.channel,
    )

    assert said.text == "**Dia-sama** now also names **Kurosawa Dia**."
    choices = (await typed.wait_for_callback()).data["choices"]
    assert [c["name"] for c in choices] == ["Kurosawa Dia"]


async def test_a_hidden_character_is_not_offered(
    fake_discord: FakeDiscord, world: StandardGuild, running: RunningAnimeBot, moderator: FakeMember
) -> None:
    scope = Scope.of_guild(world.guild.id)
    for name in ("Kurosawa Dia", "Kurosawa Ruby"):
        await running.storage.characters.get_or_create(scope, name)

    said = await ask(fake_discord, world, moderator, "character hide", name="Kurosawa Ruby")

    assert said.text == "**Kurosawa Ruby** is hidden."
    listed = await ask(fake_discord, world, world.member, "characters")
    assert "Ruby" not in listed.text and "Kurosawa Dia" in listed.text
    assert await running.storage.characters.search(scope, "kurosawa") == ["Kurosawa Dia"]


async def test_a_member_cannot_rename(
    fake_discord: FakeDiscord, world: StandardGuild, running: RunningAnimeBot
) -> None:
    scope = Scope.of_guild(world.guild.id)
    await running.storage.characters.get_or_create(scope, "Rem")

    said = await ask(
        fake_discord, world, world.member, "character rename", name="Rem", new_name="Ram"
    )

    assert "Manage Messages" in said.text
    assert await running.storage.characters.names(scope) == ["Rem"]
    assert await running.count(Vote) == 0


async def test_characters_include_the_base_models(
    fake_discord: FakeDiscord,
    world: StandardGuild,
    launch: Launch,
    trained_bundle: Path,
    tmp_path: Path,
) -> None:
    database_url = f"sqlite+aiosqlite:///{tmp_path / 'with-base.db'}"
    await install_base_model(trained_bundle, database_url, tmp_path / "models", with_data=True)
    running = await launch(database_url=database_url, model_dir=tmp_path / "models")
    scope = Scope.of_guild(world.guild.id)
    await running.storage.characters.get_or_create(scope, "Kurosawa Dia")

    listed = await ask(fake_discord, world, world.member, "characters")

    assert listed.embeds[0]["description"].splitlines() == [
        "**Char A**",
        "**Char B**",
        "**Char C**",
        "**Kurosawa Dia**",
    ]
