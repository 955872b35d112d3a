"""SIGKILL while corrections are being recorded: every vote acknowledged to its voter
survives, none is stored twice, and the database passes its integrity check.

A voter process (``vote_worker``) casts votes through the corrections cog on the real
storage and prints an acknowledgement after each commit; it is killed at random moments,
restarted a little before where it was acknowledged last (voters clicking again), and
finally left to finish.
"""

from __future__ import annotations

import asyncio
import json
import random
import sqlite3
import sys
from collections import Counter
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from sqlalchemy import func, select

from bot.storage.db import Storage
from bot.storage.schema import TrainingExample, Vote
from tests.postgres import PostgresServer
from tests.storage.helpers import record_face

REPOSITORY = Path(__file__).resolve().parents[2]
ROUNDS = 5
FACES = 40
VOTERS_PER_FACE = 3
LABELS = ("hoshizora rin", "nishikino maki")
REVOTES = 2  # acknowledged votes cast again after each restart
KILL_AFTER_ACKS = (1, 20)  # the kill comes after this many acknowledgements…
KILL_JITTER = (0.0, 0.03)  # …and a random fraction of a vote later (seconds)
START_TIMEOUT = 30.0
FINISH_TIMEOUT = 60.0
SEED = 20240605

Pair = tuple[int, int]


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """An SQLite file (WAL) or, where PostgreSQL is installed, a fresh PostgreSQL database."""
    if request.param == "sqlite":
        return f"sqlite+aiosqlite:///{tmp_path / 'votes.db'}"
    server: PostgresServer = request.getfixturevalue("postgres_server")
    return server.url(server.create_database())


@pytest.fixture
async def storage(database_url: str) -> AsyncIterator[Storage]:
    async with Storage.open(database_url) as opened:
        yield opened


async def make_plan(storage: Storage, rng: random.Random) -> list[tuple[int, int, str]]:
    """``FACES`` stored faces, each with ``VOTERS_PER_FACE`` voters (every voter votes
    once, so no one reaches the rate limit) naming a random label."""
    plan = []
    for n in range(FACES):
        face = await record_face(storage, "nishikino maki", 0.6, tag=f"face {n}")
        for j in range(VOTERS_PER_FACE):
            plan.append((face, 10_000 + n * VOTERS_PER_FACE + j, rng.choice(LABELS)))
    return plan


class VoteWorker:
    """One run of ``tests.faults.vote_worker``, from its ``ready`` line to its end."""

    def __init__(self, process: asyncio.subprocess.Process, stderr: Path) -> None:
        self.process = process
        self.stderr = stderr

    @classmethod
    async def start(cls, url: str, plan: Path, start: int, stderr: Path) -> VoteWorker:
        with stderr.open("ab") as err:
            process = await asyncio.create_subprocess_exec(
                sys.executable,
                "-m",
                "tests.faults.vote_worker",
                url,
                str(plan),
                str(start),
                cwd=REPOSITORY,
                stdin=asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.PIPE,
                stderr=err,
            )
        worker = cls(process, stderr)
        assert process.stdout is not None
        line = await asyncio.wait_for(process.stdout.readline(), START_TIMEOUT)
        assert line == b"ready\n", worker.failure(f"expected 'ready', got {line!r}")
        return worker

    async def end(self, *, kill: tuple[int, float] | None) -> tuple[list[Pair], int]:
        """Let it finish or, with ``kill=(acks, delay)``, SIGKILL it ``delay`` seconds after
        its ``acks``-th acknowledgement; what it acknowledged and its exit status."""
        assert self.process.stdout is not None
        output = b""
        if kill is not None:
            acks_before_kill, delay = kill
            while output.count(b"\n") < acks_before_kill:
                line = await asyncio.wait_for(self.process.stdout.readline(), FINISH_TIMEOUT)
                if not line:
                    break  # it finished first
                output += line
            await asyncio.sleep(delay)
            if self.process.returncode is None:
                self.process.kill()
        output += await asyncio.wait_for(self.process.stdout.read(), FINISH_TIMEOUT)
        returncode = await self.process.wait()
        acks = []
        for line in output.decode().splitlines(keepends=True):
            if line.startswith("ack ") and line.endswith("\n"):  # a line cut by the kill is not
                _, face, user = line.split()
                acks.append((int(face), int(user)))
        return acks, returncode

    def failure(self, what: str) -> str:
        return f"{what}; the worker's stderr:\n{self.stderr.read_text(errors='replace')[-3000:]}"


async def stored_votes(storage: Storage) -> Counter[Pair]:
    """How many rows each (face, user) has in ``votes``."""
    async with storage.engine.connect() as connection:
        rows = await connection.execute(select(Vote.face_id, Vote.user_id))
        return Counter((face, user) for face, user in rows)


async def examples_per_face(storage: Storage) -> Counter[int]:
    async with storage.engine.connect() as connection:
        rows = await connection.execute(
            select(TrainingExample.face_id, func.count()).group_by(TrainingExample.face_id)
        )
        return Counter({face: count for face, count in rows})


def check_integrity(database_url: str, request: pytest.FixtureRequest) -> None:
    """SQLite's ``integrity_check`` and ``foreign_key_check``; PostgreSQL's amcheck on
    every B-tree index (unique ones included) with their heap."""
    if database_url.startswith("sqlite"):
        path = database_url.split("///", 1)[1]
        with sqlite3.connect(path) as connection:
            assert connection.execute("PRAGMA journal_mode").fetchone() == ("wal",)
            assert connection.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
            assert connection.execute("PRAGMA foreign_key_check").fetchall() == []
        return
    server: PostgresServer = request.getfixturevalue("postgres_server")
    database = database_url.rsplit("/", 1)[1]
    server.psql("CREATE EXTENSION IF NOT EXISTS amcheck", database)
    server.psql(  # raises (psql exits non-zero) on any inconsistency
        "SELECT bt_index_check(i.indexrelid, true) FROM pg_index i "
        "JOIN pg_class c ON c.oid = i.indexrelid JOIN pg_am am ON am.oid = c.relam "
        "JOIN pg_namespace n ON n.oid = c.relnamespace "
        "WHERE am.amname = 'btree' AND n.nspname = 'public'",
        database,
    )


async def test_acknowledged_votes_survive_sigkill_once_each(
    storage: Storage, database_url: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    rng = random.Random(SEED)
    plan = await make_plan(storage, rng)
    plan_file = tmp_path / "plan.json"
    plan_file.write_text(json.dumps(plan), "utf-8")
    order = {(face, user): index for index, (face, user, _) in enumerate(plan)}
    stderr = tmp_path / "worker.stderr"
    acknowledged: set[Pair] = set()
    done = kills = 0

    for _ in range(ROUNDS):
        worker = await VoteWorker.start(database_url, plan_file, max(0, done - REVOTES), stderr)
        kill = (rng.randint(*KILL_AFTER_ACKS), rng.uniform(*KILL_JITTER))
        acks, returncode = await worker.end(kill=kill)
        assert returncode in (-9, 0), worker.failure(f"the worker exited with {returncode}")
        kills += returncode == -9
        acknowledged.update(acks)
        done = max([done, *(order[pair] + 1 for pair in acks)])

        stored = await stored_votes(storage)
        assert acknowledged <= set(stored), "an acknowledged vote was lost"
        assert max(stored.values(), default=1) == 1, "a vote was stored twice"

    worker = await VoteWorker.start(database_url, plan_file, max(0, done - REVOTES), stderr)
    acks, returncode = await worker.end(kill=None)
    assert returncode == 0, worker.failure(f"the last worker exited with {returncode}")
    acknowledged.update(acks)

    assert kills == ROUNDS, f"only {kills} of {ROUNDS} workers were killed mid-way"
    stored = await stored_votes(storage)
    assert set(stored) == set(order) == acknowledged
    assert set(stored.values()) == {1}
    async with storage.engine.connect() as connection:
        labels = {
            (f, u): label
            for f, u, label in await connection.execute(
                select(Vote.face_id, Vote.user_id, Vote.label)
            )
        }
    assert labels == {(face, user): label for face, user, label in plan}
    # Two of three voters agreeing make a face training data, exactly once.
    agreed = {
        face
        for face in {f for f, _, _ in plan}
        if max(Counter(label for f, _, label in plan if f == face).values()) >= 2
    }
    examples = await examples_per_face(storage)
    assert set(examples) == agreed
    assert set(examples.values()) == {1}
    await storage.engine.dispose()
    check_integrity(database_url, request)
