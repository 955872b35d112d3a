"""pytest fixtures for the fake Discord: ``pytest_plugins = ["tests.fake_discord.plugin"]``.

``fake_discord``: a started :class:`FakeDiscord` with discord.py pointed at it; the
test fails at teardown if the bot called an unknown route or sent something Discord
would refuse. Its constructor options come from the ``fake_discord_options`` fixture,
which a module can override, or a test can parametrize::

    @pytest.mark.parametrize("fake_discord_options", [{"heartbeat_interval": 0.2}])

``discord_error_log``: fails the test at teardown on any ERROR logged by ``discord``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest
import pytest_asyncio

from .client import DiscordErrorLog, discord_py_pointed_at
from .server import FakeDiscord


@pytest.fixture
def fake_discord_options() -> dict[str, Any]:
    """Keyword arguments for the ``fake_discord`` fixture's :class:`FakeDiscord`."""
    return {"heartbeat_interval": 1.0}


@pytest_asyncio.fixture
async def fake_discord(fake_discord_options: dict[str, Any]) -> AsyncIterator[FakeDiscord]:
    """A fake Discord on a free port, with discord.py pointed at it."""
    async with FakeDiscord(**fake_discord_options) as fake:
        with discord_py_pointed_at(fake):
            yield fake
    fake.assert_no_errors()


@pytest.fixture
def discord_error_log() -> Iterator[DiscordErrorLog]:
    """Fail the test if discord.py logs an error (an exception in a handler or view)."""
    with DiscordErrorLog() as captured:
        yield captured
    captured.assert_clean()
