"""The corrections cog routes clicks on every answer's controls."""

from __future__ import annotations

from pathlib import Path

from bot.cogs.corrections import Corrections
from bot.storage.db import Storage
from bot.views import FixSelect, RightButton
from tests.cogs import fake_bot


async def test_the_cog_registers_the_dynamic_items_and_removes_them(tmp_path: Path) -> None:
    async with Storage.open(f"sqlite+aiosqlite:///{tmp_path}/t.db") as storage:
        cog = Corrections(fake_bot(storage, tmp_path / "models"))

        await cog.cog_load()
        await cog.cog_unload()

    cog.bot.add_dynamic_items.assert_called_once_with(FixSelect, RightButton)  # type: ignore[attr-defined]
    cog.bot.remove_dynamic_items.assert_called_once_with(FixSelect, RightButton)  # type: ignore[attr-defined]
