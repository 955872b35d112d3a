"""A person's correction, from a click to a vote: rate limits, moderators, new accounts, and
the sentence that tells them what their vote did. Knows nothing of Discord's objects.

While the database is unavailable, votes are refused ("corrections can't be saved right
now, try again later"), not queued: a queue in memory dies with the process, and the
rate limit and the checks against the face need the database anyway.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from bot.errors import BotError
from bot.names import character_name
from bot.phrases import Phrase, phrase
from bot.storage.db import Storage
from bot.storage.schema import HoldReason
from bot.storage.votes import VoteOutcome, VoteStatus

log = logging.getLogger(__name__)

RATE_LIMIT_VOTES = 10
RATE_LIMIT_SECONDS = 60.0
NEW_ACCOUNT_AGE = timedelta(days=7)
FACE_GONE = "That picture is no longer stored, so it cannot be confirmed."
NOT_IN_A_SERVER = "Corrections only count in a server."


@dataclass(frozen=True)
class Voter:
    """Who clicked: their id, the server they clicked in, their account's age, their role."""

    user_id: int
    guild_id: int | None
    account_created: datetime
    is_moderator: bool

    @property
    def is_new_account(self) -> bool:
        """Accounts younger than ``NEW_ACCOUNT_AGE``: a cheap way to flood votes."""
        return datetime.now(UTC) - self.account_created < NEW_ACCOUNT_AGE


def describe_outcome(outcome: VoteOutcome) -> Phrase:
    """The sentence telling a voter what their vote did."""
    name = character_name(outcome.name)
    if outcome.status is VoteStatus.HELD:
        if outcome.hold_reason is HoldReason.CONTRADICTS_MODEL:
            return phrase(
                "Thanks — the model was confident about this one, so your vote for *{name}* "
                "waits for a moderator (or for someone else to say the same).",
                name=name,
            )
        return phrase(
            "Thanks — your vote for *{name}* is held for a moderator to check.", name=name
        )
    if outcome.newly_accepted:
        return phrase("Thanks — *{name}* is accepted as training data.", name=name)
    if outcome.accepted:
        if outcome.is_confirmation:
            return phrase("Thanks — you agree: this is *{name}*, as already confirmed.", name=name)
        return phrase("Thanks — you agree: *{name}* is already confirmed for this face.", name=name)
    if outcome.accepted_name is not None:
        return phrase(
            "Thanks — noted. This face is already confirmed as *{name}*; "
            "a moderator can change that.",
            name=character_name(outcome.accepted_name),
        )
    return phrase(
        "Thanks — {agreeing} of {needed} votes needed for *{name}*.",
        agreeing=outcome.agreeing,
        needed=outcome.needed,
        name=name,
    )


@dataclass(frozen=True)
class Ballot:
    """What a vote did: the sentence for the voter, and the face's confirmed character's
    display name once it is training data (its controls then say so)."""

    message: Phrase
    confirmed: str | None


class Voting:
    """Casts votes for people and confirmations for moderators."""

    def __init__(self, storage: Storage) -> None:
        self.storage = storage

    async def confirm(self, voter: Voter, face_id: int) -> Phrase:
        """A "right" vote: for the model's top label of ``face_id``; what it did, in words."""
        return (await self.confirm_ballot(voter, face_id)).message

    async def confirm_ballot(self, voter: Voter, face_id: int) -> Ballot:
        """A "right" vote: for the model's top label of ``face_id``."""
        guild_id = self._server(voter)
        face = await self.storage.images.face(face_id, guild_id)
        if face is None or not face.scores:
            raise BotError(FACE_GONE)
        return await self.ballot(voter, face_id, face.scores[0].label, is_confirmation=True)

    async def vote(
        self, voter: Voter, face_id: int, label: str, *, is_confirmation: bool
    ) -> Phrase:
        """Rate-limit, cast (or, for a moderator's correction, confirm) and say what happened."""
        return (await self.ballot(voter, face_id, label, is_confirmation=is_confirmation)).message

    async def ballot(
        self, voter: Voter, face_id: int, label: str, *, is_confirmation: bool
    ) -> Ballot:
        """:meth:`vote`, also saying whether the face is now confirmed training data."""
        guild_id = self._server(voter)
        if voter.is_moderator and not is_confirmation:
            outcome = await self.storage.votes.confirm_by_moderator(
                face_id, guild_id, label, voter.user_id
            )
            message = phrase(
                "Confirmed by a moderator: *{name}* is training data.",
                name=character_name(outcome.name),
            )
        else:
            recent = await self.storage.votes.recent_count(voter.user_id, RATE_LIMIT_SECONDS)
            if recent >= RATE_LIMIT_VOTES:
                raise BotError(
                    "Slow down: at most {count} votes a minute. Try again shortly.",
                    count=RATE_LIMIT_VOTES,
                )
            outcome = await self.storage.votes.cast(
                face_id,
                voter.user_id,
                guild_id,
                label,
                is_confirmation,
                new_account=voter.is_new_account,
            )
            message = describe_outcome(outcome)
        log.info("vote on face %s: %s (%s)", face_id, outcome.label, outcome.status)
        return Ballot(message, outcome.accepted_name)

    @staticmethod
    def _server(voter: Voter) -> int:
        if voter.guild_id is None:
            raise BotError(NOT_IN_A_SERVER)
        return voter.guild_id
