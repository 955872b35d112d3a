"""Per-server settings and watched channels."""

from __future__ import annotations

from typing import Any

import pytest

from bot.storage import GuildConfig, Storage


async def test_a_server_without_settings_gets_the_defaults(storage: Storage) -> None:
    assert await storage.guilds.get(42) == GuildConfig(
        guild_id=42, auto_reply=True, labels_shown=3, votes_needed=2
    )


async def test_update_changes_only_the_given_settings(storage: Storage) -> None:
    await storage.guilds.update(42, labels_shown=5)

    updated = await storage.guilds.update(42, auto_reply=False)

    assert (updated.auto_reply, updated.labels_shown, updated.votes_needed) == (False, 5, 2)
    assert await storage.guilds.get(42) == updated


async def test_settings_of_one_server_do_not_leak_to_another(storage: Storage) -> None:
    await storage.guilds.update(42, votes_needed=4)

    assert (await storage.guilds.get(43)).votes_needed == 2


@pytest.mark.parametrize("change", [{"labels_shown": 0}, {"labels_shown": 26}, {"votes_needed": 0}])
async def test_out_of_range_settings_are_refused(storage: Storage, change: dict[str, Any]) -> None:
    with pytest.raises(ValueError, match="between"):
        await storage.guilds.update(42, **change)


async def test_watching_and_unwatching_channels(storage: Storage) -> None:
    await storage.guilds.watch(42, 7)
    await storage.guilds.watch(42, 7)
    await storage.guilds.watch(42, 8)
    await storage.guilds.watch(43, 9)

    assert await storage.guilds.watched(42) == {7, 8}
    assert await storage.guilds.unwatch(42, 7)
    assert not await storage.guilds.unwatch(42, 7)
    assert (await storage.guilds.get(42)).watched_channels == {8}
    assert await storage.guilds.watched(43) == {9}


async def test_snowflakes_beyond_32_bits_round_trip(storage: Storage) -> None:
    guild, channel = 1_234_567_890_123_456_789, 987_654_321_098_765_432

    await storage.guilds.watch(guild, channel)

    assert await storage.guilds.watched(guild) == {channel}


async def test_the_owner_is_welcomed_once(storage: Storage) -> None:
    assert [await storage.guilds.welcome_once(42) for _ in range(3)] == [True, False, False]
    assert await storage.guilds.welcome_once(43) is True


@pytest.mark.parametrize(
    ("config", "watched"),
    [
        (GuildConfig(1), False),
        (GuildConfig(1, watched_channels=frozenset({7})), True),
        (GuildConfig(1, watched_channels=frozenset({8})), False),
        (GuildConfig(1, watch_all=True), True),
        (GuildConfig(1, auto_reply=False, watch_all=True), False),
    ],
)
def test_a_channel_is_watched_only_when_named_or_all_are(
    config: GuildConfig, watched: bool
) -> None:
    assert config.watches(7) is watched
