"""Shared fixtures: a throw-away PostgreSQL server, the local fake Discord API, a database."""

import os
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from bot.config import variable_names
from bot.storage.db import Storage

pytest_plugins = ["tests.postgres", "tests.fake_discord.plugin"]


@pytest.fixture(autouse=True)
def no_settings_from_outside(monkeypatch: pytest.MonkeyPatch) -> None:
    """Each test sees only the bot settings it gives: none from the developer's environment
    or a ``.env`` file (processes the test starts inherit this)."""
    for name in variable_names():
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("ENV_FILE", os.devnull)


@pytest.fixture
async def storage(tmp_path: Path) -> AsyncIterator[Storage]:
    """Every repository on a new SQLite file at head (the storage tests run theirs on
    PostgreSQL too)."""
    async with Storage.open(f"sqlite+aiosqlite:///{tmp_path}/t.db") as opened:
        yield opened
