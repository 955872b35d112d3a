"""/forgetme and a moderator's purge remove one person's data and nobody else's."""

from __future__ import annotations

from sqlalchemy import select

from bot.storage import Storage, UserData
from bot.storage.schema import Character, Vote
from tests.storage.helpers import ELSEWHERE, GUILD, HERE, OTHER_GUILD, png, record_face

ALICE, BOB, CAROL = 11, 12, 13


async def votes_by(storage: Storage) -> dict[int, int]:
    async with storage.engine.connect() as connection:
        users = (await connection.execute(select(Vote.user_id))).scalars().all()
    return {user: users.count(user) for user in set(users)}


async def test_forget_user_removes_their_votes_and_contributions_only(storage: Storage) -> None:
    shared = await record_face(storage, unsure=True)
    for user in (ALICE, BOB, CAROL):  # stays training data without Alice: 2 of 2 needed
        await storage.votes.cast(shared, user, GUILD, "hoshizora rin", False)
    pair = await record_face(storage, unsure=True)
    for user in (ALICE, BOB):  # Alice's vote was needed: the example goes
        await storage.votes.cast(pair, user, GUILD, "koizumi hanayo", False)
    await storage.examples.add_taught(HERE, "sonoda umi", png("alice"), ALICE)
    await storage.examples.add_taught(HERE, "sonoda umi", png("bob"), BOB)

    removed = await storage.users.forget_user(ALICE)

    assert removed == UserData(votes=2, held_votes=0, examples=2, images=0)
    assert await votes_by(storage) == {BOB: 2, CAROL: 1}
    assert await storage.examples.counts(HERE) == {"hoshizora rin": 1, "sonoda umi": 1}
    assert [crop async for _, crop in storage.examples.iter_dataset(HERE)][-1] == png("bob")
    assert await storage.users.contributions(ALICE, GUILD) == UserData()


async def test_forget_user_removes_their_data_in_every_server(storage: Storage) -> None:
    for guild, scope in ((GUILD, HERE), (OTHER_GUILD, ELSEWHERE)):
        face = await record_face(storage, unsure=True, guild_id=guild, author_id=ALICE)
        await storage.votes.cast(face, ALICE, guild, "hoshizora rin", False)
        await storage.examples.add_taught(scope, "sonoda umi", png(f"{guild}"), ALICE)

    removed = await storage.users.forget_user(ALICE)

    assert removed == UserData(votes=2, held_votes=0, examples=2, images=2)
    for guild, scope in ((GUILD, HERE), (OTHER_GUILD, ELSEWHERE)):
        assert await storage.users.contributions(ALICE, guild) == UserData()
        assert await storage.examples.counts(scope) == {}


async def test_forget_user_deletes_the_pictures_they_posted(storage: Storage) -> None:
    theirs = await record_face(storage, unsure=True, author_id=ALICE)
    others = await record_face(storage, unsure=True, author_id=BOB)
    for face in (theirs, others):
        for user in (BOB, CAROL):
            await storage.votes.cast(face, user, GUILD, "hoshizora rin", False)

    removed = await storage.users.forget_user(ALICE)

    assert (removed.images, removed.examples) == (1, 1)
    assert await storage.images.face(theirs, GUILD) is None
    assert await storage.images.face(others, GUILD) is not None
    assert await storage.examples.counts(HERE) == {"hoshizora rin": 1}


async def test_forget_user_clears_their_id_from_what_stays(storage: Storage) -> None:
    await storage.characters.get_or_create(HERE, "sonoda umi", created_by=ALICE)
    run = await storage.runs.start(GUILD, requested_by=ALICE)

    await storage.users.forget_user(ALICE)

    async with storage.engine.connect() as connection:
        creators = (await connection.execute(select(Character.created_by))).scalars().all()
    assert creators == [None]
    info = await storage.runs.get(run, GUILD)
    assert info is not None and info.requested_by is None


async def test_contributions_count_what_a_person_gave(storage: Storage) -> None:
    face = await record_face(storage, unsure=True, author_id=ALICE)
    for user in (ALICE, BOB):
        await storage.votes.cast(face, user, GUILD, "hoshizora rin", False)
    held = await record_face(storage, unsure=True)
    await storage.votes.cast(held, ALICE, GUILD, "yazawa nico", False, new_account=True)
    await storage.examples.add_taught(HERE, "sonoda umi", png("a"), ALICE)

    assert await storage.users.contributions(ALICE, GUILD) == UserData(
        votes=2, held_votes=1, examples=2, images=1
    )
    assert await storage.users.contributions(ALICE, guild_id=OTHER_GUILD) == UserData()


async def test_purge_is_limited_to_the_moderators_server(storage: Storage) -> None:
    here = await record_face(storage, unsure=True)
    there = await record_face(storage, unsure=True, guild_id=OTHER_GUILD)
    for face, guild in ((here, GUILD), (there, OTHER_GUILD)):
        for user in (ALICE, BOB):
            await storage.votes.cast(face, user, guild, "hoshizora rin", False)
    await storage.examples.add_taught(HERE, "sonoda umi", png("here"), ALICE)
    await storage.examples.add_taught(ELSEWHERE, "sonoda umi", png("there"), ALICE)

    removed = await storage.users.purge_user(ALICE, GUILD)

    assert removed == UserData(votes=1, held_votes=0, examples=2, images=0)
    assert await storage.users.contributions(ALICE, guild_id=GUILD) == UserData()
    assert await storage.users.contributions(ALICE, guild_id=OTHER_GUILD) == UserData(
        votes=1, examples=2
    )
    assert await storage.examples.counts(HERE) == {}
    assert await storage.examples.counts(ELSEWHERE) == {"hoshizora rin": 1, "sonoda umi": 1}


async def test_after_a_purge_new_votes_can_accept_the_face_again(storage: Storage) -> None:
    face = await record_face(storage, unsure=True)
    for user in (ALICE, BOB):
        await storage.votes.cast(face, user, GUILD, "yazawa nico", False)
    await storage.users.purge_user(ALICE, GUILD)

    outcome = await storage.votes.cast(face, CAROL, GUILD, "yazawa nico", False)

    assert outcome.newly_accepted
