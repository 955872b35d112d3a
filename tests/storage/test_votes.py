"""Votes: one per person per face, a threshold that makes training data once, held corrections."""

from __future__ import annotations

import asyncio

import pytest
from sqlalchemy import func, select

from bot.errors import StorageError
from bot.storage import Storage, VoteStatus
from bot.storage.images import TopPrediction
from bot.storage.schema import HoldReason, TrainingExample, Vote
from bot.storage.votes import CONFIDENT_SCORE, is_confident
from tests.storage.helpers import GUILD, HERE, OTHER_GUILD, png, record_face


async def count(storage: Storage, model: type, **where: object) -> int:
    async with storage.engine.connect() as connection:
        query = select(func.count()).select_from(model).filter_by(**where)
        return int((await connection.execute(query)).scalar_one())


async def test_a_second_vote_by_the_same_person_replaces_the_first(storage: Storage) -> None:
    face = await record_face(storage, unsure=True)

    first = await storage.votes.cast(face, 1, GUILD, "hoshizora rin", False)
    second = await storage.votes.cast(face, 1, GUILD, "Koizumi  Hanayo", False)

    assert (first.agreeing, first.replaced) == (1, False)
    assert (second.label, second.agreeing, second.replaced) == ("koizumi hanayo", 1, True)
    assert await count(storage, Vote, face_id=face) == 1


async def test_one_person_voting_again_does_not_reach_the_threshold(storage: Storage) -> None:
    face = await record_face(storage, unsure=True)

    for _ in range(3):
        outcome = await storage.votes.cast(face, 1, GUILD, "hoshizora rin", False)

    assert outcome.agreeing == 1
    assert not outcome.accepted
    assert await count(storage, TrainingExample) == 0


async def test_agreeing_votes_reaching_the_threshold_make_one_training_example(
    storage: Storage,
) -> None:
    face = await record_face(storage, unsure=True)

    first = await storage.votes.cast(face, 1, GUILD, "hoshizora rin", False)
    second = await storage.votes.cast(face, 2, GUILD, "hoshizora rin", False)
    third = await storage.votes.cast(face, 3, GUILD, "hoshizora rin", False)

    assert (first.accepted, first.newly_accepted) == (False, False)
    assert (second.accepted, second.newly_accepted, second.agreeing) == (True, True, 2)
    assert (third.accepted, third.newly_accepted) == (True, False)
    assert [label async for label, _ in storage.examples.iter_dataset(HERE)] == ["hoshizora rin"]


async def test_the_threshold_is_the_servers_votes_needed(storage: Storage) -> None:
    await storage.guilds.update(GUILD, votes_needed=3)
    face = await record_face(storage)

    outcomes = [
        await storage.votes.cast(face, user, GUILD, "nishikino maki", True) for user in (1, 2, 3)
    ]

    assert [o.accepted for o in outcomes] == [False, False, True]
    assert outcomes[-1].needed == 3


async def test_confirmations_of_the_model_are_votes_too(storage: Storage) -> None:
    face = await record_face(storage, "nishikino maki")

    await storage.votes.cast(face, 1, GUILD, "nishikino maki", True)
    outcome = await storage.votes.cast(face, 2, GUILD, "nishikino maki", True)

    assert outcome.accepted
    assert await storage.examples.counts(HERE) == {"nishikino maki": 1}


async def test_votes_after_acceptance_do_not_relabel_the_example(storage: Storage) -> None:
    face = await record_face(storage, unsure=True)
    for user in (1, 2):
        await storage.votes.cast(face, user, GUILD, "hoshizora rin", False)

    late = [await storage.votes.cast(face, user, GUILD, "koizumi hanayo", False) for user in (3, 4)]

    assert late[-1].accepted_label == "hoshizora rin"
    assert not late[-1].accepted
    assert await storage.examples.counts(HERE) == {"hoshizora rin": 1}


async def test_the_example_keeps_the_crop_as_classified(storage: Storage) -> None:
    face = await record_face(storage, unsure=True, tag="the-crop")
    for user in (1, 2):
        await storage.votes.cast(face, user, GUILD, "hoshizora rin", False)

    [(label, crop)] = [item async for item in storage.examples.iter_dataset(HERE)]

    assert label == "hoshizora rin"
    assert crop.endswith(b"the-crop")


async def test_concurrent_votes_make_exactly_one_training_example(storage: Storage) -> None:
    face = await record_face(storage, unsure=True)

    outcomes = await asyncio.gather(
        *(storage.votes.cast(face, user, GUILD, "hoshizora rin", False) for user in range(1, 13))
    )

    assert sum(o.newly_accepted for o in outcomes) == 1
    assert all(o.accepted for o in outcomes if o.agreeing >= 2)
    assert sorted(o.agreeing for o in outcomes) == list(range(1, 13))
    assert await count(storage, TrainingExample) == 1


async def test_concurrent_retries_of_one_vote_store_it_once(storage: Storage) -> None:
    face = await record_face(storage, unsure=True)

    await asyncio.gather(
        *(storage.votes.cast(face, 7, GUILD, "hoshizora rin", False) for _ in range(8))
    )

    assert await count(storage, Vote, face_id=face) == 1
    assert await count(storage, TrainingExample) == 0


async def test_moderator_confirmation_makes_training_data_at_once(storage: Storage) -> None:
    face = await record_face(storage, unsure=True)

    outcome = await storage.votes.confirm_by_moderator(face, GUILD, "Sonoda Umi", moderator_id=99)

    assert (outcome.accepted_label, outcome.newly_accepted) == ("sonoda umi", True)
    assert await storage.examples.counts(HERE) == {"Sonoda Umi": 1}


async def test_moderator_confirmation_relabels_a_voted_example(storage: Storage) -> None:
    face = await record_face(storage, unsure=True)
    for user in (1, 2):
        await storage.votes.cast(face, user, GUILD, "hoshizora rin", False)

    await storage.votes.confirm_by_moderator(face, GUILD, "koizumi hanayo", moderator_id=99)

    assert await storage.examples.counts(HERE) == {"koizumi hanayo": 1}


async def test_a_correction_against_a_confident_model_and_the_majority_is_held(
    storage: Storage,
) -> None:
    await storage.guilds.update(GUILD, votes_needed=3)
    face = await record_face(storage, "nishikino maki", 0.97)
    for user in (1, 2):
        await storage.votes.cast(face, user, GUILD, "nishikino maki", True)

    outcome = await storage.votes.cast(face, 3, GUILD, "yazawa nico", False)

    assert (outcome.status, outcome.hold_reason) == (VoteStatus.HELD, HoldReason.CONTRADICTS_MODEL)
    assert outcome.agreeing == 0
    [held] = await storage.votes.held(GUILD)
    assert (held.face_id, held.user_id, held.label) == (face, 3, "yazawa nico")
    assert held.reason is HoldReason.CONTRADICTS_MODEL
    assert (held.model_label, held.model_score) == ("nishikino maki", pytest.approx(0.97))


@pytest.mark.parametrize(
    ("score", "unsure"),
    [(0.97, True), (0.5, False)],
    ids=["model-unsure", "model-not-confident"],
)
async def test_a_correction_against_a_hesitant_model_counts(
    storage: Storage, score: float, unsure: bool
) -> None:
    await storage.guilds.update(GUILD, votes_needed=3)
    face = await record_face(storage, "nishikino maki", score, unsure=unsure)
    for user in (1, 2):
        await storage.votes.cast(face, user, GUILD, "nishikino maki", True)

    outcome = await storage.votes.cast(face, 3, GUILD, "yazawa nico", False)

    assert outcome.status is VoteStatus.COUNTED


async def test_held_votes_never_make_training_data(storage: Storage) -> None:
    face = await record_face(storage, unsure=True)

    for user in (1, 2, 3):
        outcome = await storage.votes.cast(
            face, user, GUILD, "hoshizora rin", False, new_account=True
        )

    assert outcome.status is VoteStatus.HELD
    assert not outcome.accepted
    assert await count(storage, TrainingExample) == 0


async def test_moderator_decision_resolves_held_votes(storage: Storage) -> None:
    face = await record_face(storage, unsure=True)
    await storage.votes.cast(face, 1, GUILD, "hoshizora rin", False, new_account=True)
    await storage.votes.cast(face, 2, GUILD, "yazawa nico", False, new_account=True)

    outcome = await storage.votes.confirm_by_moderator(
        face, GUILD, "hoshizora rin", moderator_id=99
    )

    assert outcome.agreeing == 1
    assert await storage.votes.held(GUILD) == []
    assert await count(storage, Vote, status=VoteStatus.DISMISSED) == 1


async def test_dismissing_held_votes(storage: Storage) -> None:
    face = await record_face(storage, unsure=True)
    await storage.votes.cast(face, 1, GUILD, "hoshizora rin", False, new_account=True)

    assert await storage.votes.dismiss_held(face, GUILD) == 1
    assert await storage.votes.held(GUILD) == []


async def test_recent_count_counts_a_persons_votes_in_the_window(storage: Storage) -> None:
    faces = [await record_face(storage) for _ in range(3)]
    for face in faces:
        await storage.votes.cast(face, 1, GUILD, "nishikino maki", True)
    await storage.votes.cast(faces[0], 2, GUILD, "nishikino maki", True)

    assert await storage.votes.recent_count(1, seconds=60) == 3
    assert await storage.votes.recent_count(2, seconds=60) == 1
    assert await storage.votes.recent_count(1, seconds=0) == 0


async def test_voting_on_a_face_that_is_gone_is_a_storage_error(storage: Storage) -> None:
    with pytest.raises(StorageError, match="no longer stored"):
        await storage.votes.cast(123456, 1, GUILD, "nishikino maki", True)


async def test_a_face_of_a_picture_from_a_dm_takes_no_votes(storage: Storage) -> None:
    face = await record_face(storage, unsure=True, guild_id=None)

    with pytest.raises(StorageError, match="no longer stored"):
        await storage.votes.cast(face, 1, GUILD, "hoshizora rin", False)
    assert await count(storage, Vote) == 0


async def test_a_face_of_another_server_takes_no_votes_and_no_decisions(storage: Storage) -> None:
    face = await record_face(storage, unsure=True, guild_id=OTHER_GUILD)
    await storage.votes.cast(face, 1, OTHER_GUILD, "hoshizora rin", False, new_account=True)

    with pytest.raises(StorageError, match="no longer stored"):
        await storage.votes.cast(face, 2, GUILD, "hoshizora rin", False)
    with pytest.raises(StorageError, match="no longer stored"):
        await storage.votes.confirm_by_moderator(face, GUILD, "yazawa nico", moderator_id=99)
    with pytest.raises(StorageError, match="no longer stored"):
        await storage.votes.dismiss_held(face, GUILD)
    assert await storage.votes.held(GUILD) == []
    assert [v.user_id for v in await storage.votes.held(OTHER_GUILD)] == [1]


async def test_one_vote_against_a_confident_answer_is_held_even_when_one_is_enough(
    storage: Storage,
) -> None:
    await storage.guilds.update(GUILD, votes_needed=1)
    face = await record_face(storage, "nishikino maki", 0.981)

    outcome = await storage.votes.cast(face, 1, GUILD, "sakurauchi riko", False)

    assert (outcome.status, outcome.hold_reason) == (VoteStatus.HELD, HoldReason.CONTRADICTS_MODEL)
    assert not outcome.accepted
    assert await count(storage, TrainingExample) == 0


async def test_a_second_person_saying_the_same_releases_the_held_vote(storage: Storage) -> None:
    face = await record_face(storage, "nishikino maki", 0.981)
    await storage.votes.cast(face, 1, GUILD, "sakurauchi riko", False)

    outcome = await storage.votes.cast(face, 2, GUILD, "Sakurauchi Riko", False)

    assert outcome.status is VoteStatus.COUNTED
    assert (outcome.agreeing, outcome.newly_accepted) == (2, True)
    assert await storage.votes.held(GUILD) == []
    assert await storage.examples.counts(HERE) == {"Sakurauchi Riko": 1}


async def test_a_new_accounts_held_vote_corroborates_nothing(storage: Storage) -> None:
    face = await record_face(storage, "nishikino maki", 0.981)
    await storage.votes.cast(face, 1, GUILD, "sakurauchi riko", False, new_account=True)

    outcome = await storage.votes.cast(face, 2, GUILD, "sakurauchi riko", False)

    assert (outcome.status, outcome.hold_reason) == (VoteStatus.HELD, HoldReason.CONTRADICTS_MODEL)
    assert len(await storage.votes.held(GUILD)) == 2


@pytest.mark.parametrize(("label", "held"), [("nishikino maki", False), ("yazawa nico", True)])
async def test_a_new_accounts_vote_is_held_only_when_it_disagrees_with_the_model(
    storage: Storage, label: str, held: bool
) -> None:
    face = await record_face(storage, "nishikino maki", 0.6)

    outcome = await storage.votes.cast(
        face, 1, GUILD, label, label == "nishikino maki", new_account=True
    )

    assert (outcome.status is VoteStatus.HELD) is held
    assert outcome.hold_reason is (HoldReason.NEW_ACCOUNT if held else None)


@pytest.mark.parametrize(
    ("score", "unsure", "confident"),
    [(0.75, False, True), (0.981, False, True), (0.74, False, False), (0.99, True, False)],
)
def test_confident_means_not_unsure_and_at_least_the_confident_score(
    score: float, unsure: bool, confident: bool
) -> None:
    assert is_confident(TopPrediction("nishikino maki", score, unsure)) is confident
    assert CONFIDENT_SCORE == 0.75


async def test_held_faces_come_a_page_at_a_time_longest_waiting_first(storage: Storage) -> None:
    faces = [await record_face(storage, "nishikino maki", 0.97, tag=f"f{n}") for n in range(5)]
    for face in faces:
        await storage.votes.cast(face, 7, GUILD, "sakurauchi riko", False, new_account=True)
    await storage.votes.cast(faces[0], 8, GUILD, "kurosawa dia", False, new_account=True)

    first, last = (
        await storage.votes.held_faces(GUILD, 0, 2),
        await storage.votes.held_faces(GUILD, 4, 2),
    )

    assert (first.total, [f.face_id for f in first.faces]) == (5, faces[:2])
    assert [f.face_id for f in last.faces] == faces[4:]
    assert [v.label for v in first.faces[0].votes] == ["sakurauchi riko", "kurosawa dia"]
    assert first.faces[0].crop_image == png("f0")
    assert (await storage.votes.held_faces(OTHER_GUILD, 0, 2)).total == 0


async def test_a_held_face_says_what_it_is_already_taught_as(storage: Storage) -> None:
    """Votes held on a face that two members already confirmed: the review page must be able
    to say so (drive-through 4 found nothing said it, and Accept offered the other name)."""
    taught = await record_face(storage, "nishikino maki", 0.97, tag="taught")
    untaught = await record_face(storage, "nishikino maki", 0.97, tag="untaught")
    for member in (1, 2):
        await storage.votes.cast(taught, member, GUILD, "nishikino maki", True)
    for face in (taught, untaught):
        await storage.votes.cast(face, 7, GUILD, "sakurauchi riko", False, new_account=True)

    page = await storage.votes.held_faces(GUILD, 0, 5)

    accepted = {face.face_id: face.accepted_label for face in page.faces}
    assert accepted == {taught: "nishikino maki", untaught: None}
