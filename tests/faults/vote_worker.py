"""A voter process for the SIGKILL test: casts votes through ``bot.views.answer_vote`` and
the voting service (what the correction controls call) on the real storage, and prints
``ack <face> <user>`` when a vote is acknowledged, that is when the voter's ephemeral
"thanks" is sent, which happens only after the vote's transaction committed.

    python -m tests.faults.vote_worker DATABASE_URL PLAN_JSON START

``PLAN_JSON`` is a list of ``[face_id, user_id, label]``; votes ``START`` onwards are cast
in order. ``ready`` is printed once the database is open.
"""

from __future__ import annotations

import asyncio
import json
import sys
from datetime import UTC, datetime
from pathlib import Path
from types import SimpleNamespace
from typing import Any
from unittest.mock import create_autospec

import discord

from bot.app import AnimeBot
from bot.health import Metrics
from bot.i18n import Catalog
from bot.storage.db import Storage
from bot.views import answer_vote, voter_of
from bot.voting import Voting

GUILD = 1000
OLD_ACCOUNT = datetime(2020, 1, 1, tzinfo=UTC)


class AcknowledgingResponse:
    """The interaction's response: sending the voter's reply prints the acknowledgement."""

    def __init__(self, face_id: int, user_id: int) -> None:
        self.face_id = face_id
        self.user_id = user_id

    def is_done(self) -> bool:
        """Nothing was answered yet."""
        return False

    async def send_message(self, message: str, *, ephemeral: bool = False) -> None:
        """What the voter would see; refusals are not acknowledgements."""
        if not message.startswith("Thanks"):
            raise RuntimeError(f"vote refused: {message}")
        print(f"ack {self.face_id} {self.user_id}", flush=True)


def interaction(client: Any, face_id: int, user_id: int) -> Any:
    """The parts of a ``discord.Interaction`` that the controls read."""
    return SimpleNamespace(
        client=client,
        user=SimpleNamespace(id=user_id, created_at=OLD_ACCOUNT),
        guild_id=GUILD,
        locale=discord.Locale.american_english,
        permissions=discord.Permissions.none(),
        response=AcknowledgingResponse(face_id, user_id),
    )


async def cast_votes(url: str, plan: list[list[Any]], start: int) -> None:
    """Cast ``plan[start:]`` one vote after another, as clicks arrive."""
    async with Storage.open(url, migrate=False) as storage:
        client = create_autospec(AnimeBot, instance=True)
        client.voting = Voting(storage)
        client.metrics = Metrics()
        client.catalog = Catalog.load()
        print("ready", flush=True)
        for face_id, user_id, label in plan[start:]:
            clicked = interaction(client, face_id, user_id)
            vote = client.voting.vote(voter_of(clicked), face_id, label, is_confirmation=False)
            await answer_vote(clicked, vote)


def main(argv: list[str]) -> None:
    """Entry point: ``DATABASE_URL PLAN_JSON START``."""
    url, plan_path, start = argv
    plan = json.loads(Path(plan_path).read_text("utf-8"))
    asyncio.run(cast_votes(url, plan, int(start)))


if __name__ == "__main__":
    main(sys.argv[1:])
