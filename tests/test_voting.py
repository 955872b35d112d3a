"""The voting service: votes stored and counted once, rate limits, new accounts, moderators."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from bot.errors import BotError
from bot.storage.db import Storage
from bot.voting import RATE_LIMIT_VOTES, Voter, Voting
from tests.storage.helpers import GUILD, HERE, record_face

OLD_ACCOUNT = datetime(2020, 1, 1, tzinfo=UTC)


def member(user_id: int, *, created: datetime = OLD_ACCOUNT) -> Voter:
    return Voter(user_id, GUILD, created, is_moderator=False)


def moderator(user_id: int) -> Voter:
    return Voter(user_id, GUILD, OLD_ACCOUNT, is_moderator=True)


@pytest.fixture
def voting(storage: Storage) -> Voting:
    return Voting(storage)


async def test_a_correction_is_stored_and_counted(voting: Voting, storage: Storage) -> None:
    face = await record_face(storage, "nishikino maki", 0.6)

    said = str(await voting.vote(member(1), face, "hoshizora rin", is_confirmation=False))

    assert said == "Thanks — 1 of 2 votes needed for *Hoshizora Rin*."
    assert (await storage.stats.collect(GUILD)).votes == 1


async def test_one_person_voting_twice_counts_once(voting: Voting, storage: Storage) -> None:
    face = await record_face(storage, "nishikino maki", 0.6)
    await voting.vote(member(1), face, "hoshizora rin", is_confirmation=False)

    said = str(await voting.vote(member(1), face, "hoshizora rin", is_confirmation=False))

    assert "1 of 2 votes" in said
    assert (await storage.stats.collect(GUILD)).training_examples == 0


async def test_two_people_agreeing_make_training_data(voting: Voting, storage: Storage) -> None:
    face = await record_face(storage, "nishikino maki", 0.6)
    await voting.vote(member(1), face, "hoshizora rin", is_confirmation=False)

    said = str(await voting.vote(member(2), face, "hoshizora rin", is_confirmation=False))

    assert "accepted as training data" in said
    assert await storage.examples.counts(HERE) == {"hoshizora rin": 1}


async def test_confirming_votes_for_the_models_answer(voting: Voting, storage: Storage) -> None:
    face = await record_face(storage, "nishikino maki", 0.95)

    said = str(await voting.confirm(member(1), face))

    assert "for *Nishikino Maki*" in said
    assert (await storage.stats.collect(GUILD)).corrections == 0


async def test_votes_beyond_the_rate_limit_are_refused(voting: Voting, storage: Storage) -> None:
    faces = [await record_face(storage, tag=str(n)) for n in range(RATE_LIMIT_VOTES + 1)]
    for face in faces[:-1]:
        await voting.vote(member(1), face, "nishikino maki", is_confirmation=True)

    with pytest.raises(BotError, match="Slow down"):
        await voting.vote(member(1), faces[-1], "nishikino maki", is_confirmation=True)
    assert (await storage.stats.collect(GUILD)).votes == RATE_LIMIT_VOTES


async def test_a_new_accounts_vote_is_held(voting: Voting, storage: Storage) -> None:
    face = await record_face(storage, "nishikino maki", 0.6)

    said = await voting.vote(
        member(1, created=datetime.now(UTC)), face, "hoshizora rin", is_confirmation=False
    )

    assert str(said) == "Thanks — your vote for *Hoshizora Rin* is held for a moderator to check."
    assert (await storage.stats.collect(GUILD)).held == 1


async def test_a_moderators_correction_is_training_data_at_once(
    voting: Voting, storage: Storage
) -> None:
    face = await record_face(storage, "nishikino maki", 0.99)

    said = str(await voting.vote(moderator(9), face, "hoshizora rin", is_confirmation=False))

    assert "Confirmed by a moderator" in said
    assert await storage.examples.counts(HERE) == {"hoshizora rin": 1}


async def test_a_vote_on_a_deleted_face_says_so(voting: Voting) -> None:
    with pytest.raises(BotError, match="no longer stored"):
        await voting.vote(member(1), 999_999, "nishikino maki", is_confirmation=False)


async def test_a_correction_against_a_confident_model_and_the_majority_is_held(
    voting: Voting, storage: Storage
) -> None:
    face = await record_face(storage, "nishikino maki", 0.97)
    for user in (1, 2):
        await voting.confirm(member(user), face)

    said = str(await voting.vote(member(3), face, "hoshizora rin", is_confirmation=False))

    assert "waits for a moderator" in said


async def test_one_member_cannot_relabel_a_confident_answer_even_with_one_vote_needed(
    voting: Voting, storage: Storage
) -> None:
    await storage.guilds.update(GUILD, votes_needed=1)
    face = await record_face(storage, "nishikino maki", 0.981)

    said = str(await voting.vote(member(1), face, "sakurauchi riko", is_confirmation=False))

    assert said == (
        "Thanks — the model was confident about this one, so your vote for *Sakurauchi Riko* "
        "waits for a moderator (or for someone else to say the same)."
    )
    assert await storage.examples.counts(HERE) == {}
    second = str(await voting.vote(member(2), face, "sakurauchi riko", is_confirmation=False))
    assert second == "Thanks — *Sakurauchi Riko* is accepted as training data."


async def test_a_right_vote_on_a_confirmed_face_is_worded_as_agreement(
    voting: Voting, storage: Storage
) -> None:
    await storage.guilds.update(GUILD, votes_needed=1)
    face = await record_face(storage, "nishikino maki", 0.95)
    await voting.confirm(member(1), face)

    said = str(await voting.confirm(member(2), face))

    assert said == "Thanks — you agree: this is *Nishikino Maki*, as already confirmed."


async def test_a_right_vote_on_a_face_confirmed_as_someone_else_says_so(
    voting: Voting, storage: Storage
) -> None:
    await storage.guilds.update(GUILD, votes_needed=1)
    face = await record_face(storage, "nishikino maki", 0.95)
    await voting.vote(moderator(9), face, "Sakurauchi Riko", is_confirmation=False)

    said = str(await voting.confirm(member(2), face))

    assert said == (
        "Thanks — noted. This face is already confirmed as *Sakurauchi Riko*; "
        "a moderator can change that."
    )
    assert "votes needed" not in said


async def test_a_new_accounts_vote_for_the_models_answer_counts(
    voting: Voting, storage: Storage
) -> None:
    face = await record_face(storage, "nishikino maki", 0.6)

    said = str(await voting.confirm(member(1, created=datetime.now(UTC)), face))

    assert said == "Thanks — 1 of 2 votes needed for *Nishikino Maki*."
    assert (await storage.stats.collect(GUILD)).held == 0


async def test_votes_outside_a_server_are_refused(voting: Voting, storage: Storage) -> None:
    face = await record_face(storage, "nishikino maki", 0.6)
    in_a_dm = Voter(1, None, OLD_ACCOUNT, is_moderator=False)

    with pytest.raises(BotError, match="only count in a server"):
        await voting.vote(in_a_dm, face, "hoshizora rin", is_confirmation=False)


async def test_a_face_of_another_server_cannot_be_voted_on(
    voting: Voting, storage: Storage
) -> None:
    face = await record_face(storage, "nishikino maki", 0.6, guild_id=GUILD + 1)

    with pytest.raises(BotError, match="no longer stored"):
        await voting.confirm(member(1), face)
    with pytest.raises(BotError, match="no longer stored"):
        await voting.vote(moderator(9), face, "hoshizora rin", is_confirmation=False)
