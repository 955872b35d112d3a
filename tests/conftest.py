"""Shared fixtures: a throw-away PostgreSQL server and the local fake Discord API."""

import os

import pytest

from bot.config import variable_names

pytest_plugins = ["tests.postgres", "tests.fake_discord.plugin"]


@pytest.fixture(autouse=True)
def no_settings_from_outside(monkeypatch: pytest.MonkeyPatch) -> None:
    """Each test sees only the bot settings it gives: none from the developer's environment
    or a ``.env`` file (processes the test starts inherit this)."""
    for name in variable_names():
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("ENV_FILE", os.devnull)
