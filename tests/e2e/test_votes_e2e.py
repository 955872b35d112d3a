"""Votes one person cannot game, through the real bot and the fake Discord, with the
server needing a single vote (``votes_needed`` 1)."""

from __future__ import annotations

import itertools
import time

import pytest
import pytest_asyncio

from bot.storage.schema import Prediction, TrainingExample, Vote
from bot.storage.votes import CONFIDENT_SCORE
from tests.e2e.bundle import face_png
from tests.e2e.conftest import RunningAnimeBot
from tests.fake_discord import BotMessage, FakeDiscord, FakeMember, FakeUser, StandardGuild
from tests.fake_discord.snowflakes import DISCORD_EPOCH_MS

pytestmark = pytest.mark.usefixtures("discord_error_log")

YEARS_AGO_MS = int(time.time() * 1000) - 3 * 365 * 24 * 3600 * 1000
_old_ids = itertools.count(1)


def old_member(world: StandardGuild, name: str) -> FakeMember:
    """A member whose account is three years old (its id says when it was created)."""
    user = FakeUser(((YEARS_AGO_MS - DISCORD_EPOCH_MS) << 22) + next(_old_ids), name)
    return world.guild.add_member(user)


@pytest_asyncio.fixture
async def one_vote_needed(running: RunningAnimeBot, world: StandardGuild) -> RunningAnimeBot:
    await running.storage.guilds.update(world.guild.id, votes_needed=1)
    return running


async def confident_answer(
    fake: FakeDiscord, world: StandardGuild, bot: RunningAnimeBot
) -> BotMessage:
    """A member posts a face the model answers confidently; the answer."""
    posted = await fake.post_message(
        world.channel, world.member, attachments=[("face.png", face_png(), "image/png")]
    )
    answer = await posted.wait_for_reply()
    ranked = await bot.rows(Prediction.rank, Prediction.score, Prediction.unsure)
    [(score, unsure)] = [(score, unsure) for rank, score, unsure in ranked if rank == 0]
    assert score >= CONFIDENT_SCORE and not unsure, (score, unsure)
    return answer


async def click(
    fake: FakeDiscord, answer: BotMessage, prefix: str, user: FakeMember, **kw: object
) -> str:
    [custom_id] = [c for c in answer.custom_ids if c.startswith(prefix)]
    handle = await fake.click_component(answer, custom_id, user, **kw)  # type: ignore[arg-type]
    return (await handle.wait_for_message()).text


async def test_one_member_cannot_relabel_a_confident_answer(
    fake_discord: FakeDiscord, world: StandardGuild, one_vote_needed: RunningAnimeBot
) -> None:
    answer = await confident_answer(fake_discord, world, one_vote_needed)

    said = await click(fake_discord, answer, "fix:", old_member(world, "troll"), values=["char b"])

    assert "model was confident" in said and "waits for a moderator" in said
    assert await one_vote_needed.rows(Vote.status, Vote.hold_reason) == [("held", "contradicts")]
    assert await one_vote_needed.count(TrainingExample) == 0


async def test_a_second_member_saying_the_same_makes_it_training_data(
    fake_discord: FakeDiscord, world: StandardGuild, one_vote_needed: RunningAnimeBot
) -> None:
    answer = await confident_answer(fake_discord, world, one_vote_needed)
    await click(fake_discord, answer, "fix:", old_member(world, "first"), values=["char b"])

    said = await click(fake_discord, answer, "fix:", old_member(world, "second"), values=["char b"])

    assert said == "Thanks — *Char B* is accepted as training data."
    assert await one_vote_needed.count(TrainingExample) == 1


async def test_a_confirmed_face_takes_no_more_votes(
    fake_discord: FakeDiscord, world: StandardGuild, one_vote_needed: RunningAnimeBot
) -> None:
    answer = await confident_answer(fake_discord, world, one_vote_needed)

    first = await click(fake_discord, answer, "ok:", old_member(world, "first"))

    assert first == "Thanks — *Char A* is accepted as training data."
    assert not [c for c in answer.custom_ids if c.startswith(("ok:", "fix:"))]
    [done] = [c for c in answer.custom_ids if c.startswith("done:")]
    component = answer.component(done)
    assert component is not None and component["label"] == "✓ Confirmed: Char A"


async def test_a_new_accounts_vote_for_the_models_answer_is_not_held(
    fake_discord: FakeDiscord, world: StandardGuild, one_vote_needed: RunningAnimeBot
) -> None:
    answer = await confident_answer(fake_discord, world, one_vote_needed)

    said = await click(fake_discord, answer, "ok:", world.member)  # created just now

    assert said == "Thanks — *Char A* is accepted as training data."
    assert await one_vote_needed.rows(Vote.status) == [("counted",)]
