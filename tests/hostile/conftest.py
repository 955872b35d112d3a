"""Fixtures for the hostile-input tests: the tiny trained bundle, and the real bot against the
fake Discord (the end-to-end fixtures, imported so that they are the same code)."""

from __future__ import annotations

from pathlib import Path

import pytest
import pytest_asyncio

from tests.e2e.conftest import Launch, RunningAnimeBot, launch, world
from tests.fake_discord import StandardGuild
from tests.hostile import tiny_bundle

__all__ = ["launch", "world"]  # fixtures re-declared for tests/hostile


@pytest.fixture(scope="session")
def bundle_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The tiny trained bundle, in a directory named after its version."""
    return tiny_bundle(tmp_path_factory)


@pytest_asyncio.fixture
async def running(launch: Launch, world: StandardGuild, bundle_dir: Path) -> RunningAnimeBot:
    """The bot with the tiny bundle serving, connected to the standard guild."""
    return await launch(bundle=bundle_dir)
