"""One typing indicator per channel, however many pictures are in progress there."""

from __future__ import annotations

import asyncio
import time
from types import SimpleNamespace

import discord
import pytest

from bot.typing_indicator import TypingIndicator

INTERVAL = 1.0
GAP = 0.1


class Channel:
    """A channel whose ``typing()`` is awaited once per typing request, as in discord.py."""

    def __init__(self, fails: BaseException | None = None) -> None:
        self.requests: list[float] = []
        self.fails = fails

    def typing(self) -> asyncio.Future[None]:
        return asyncio.ensure_future(self._send())

    async def _send(self) -> None:
        self.requests.append(time.monotonic())
        if self.fails is not None:
            raise self.fails


def http_error(status: int) -> discord.HTTPException:
    response = SimpleNamespace(status=status, reason="refused")
    if status == 403:
        return discord.Forbidden(response, "Missing Permissions")  # type: ignore[arg-type]
    return discord.HTTPException(response, "server error")  # type: ignore[arg-type]


@pytest.fixture
def indicator() -> TypingIndicator:
    return TypingIndicator(interval=INTERVAL, min_gap=GAP)


async def test_many_pictures_in_one_channel_send_one_request(indicator: TypingIndicator) -> None:
    channel = Channel()
    release = asyncio.Event()

    async def picture() -> None:
        async with indicator.working(channel, 1):  # type: ignore[arg-type]
            await release.wait()

    tasks = [asyncio.create_task(picture()) for _ in range(50)]
    await asyncio.sleep(INTERVAL / 4)
    assert indicator.pending(1) == 50
    assert len(channel.requests) == 1

    release.set()
    await asyncio.gather(*tasks)
    assert indicator.pending(1) == 0


async def test_the_indicator_is_renewed_while_work_goes_on_and_stops_after() -> None:
    indicator = TypingIndicator(interval=0.3, min_gap=GAP)
    channel = Channel()
    async with indicator.working(channel, 1):  # type: ignore[arg-type]
        await asyncio.sleep(0.75)
    renewed = len(channel.requests)
    await asyncio.sleep(0.6)

    assert 2 <= renewed <= 3  # at 0 and 0.3 s, and at 0.6 s unless the loop ran late
    assert len(channel.requests) == renewed


async def test_a_reply_while_others_wait_shows_it_again_at_most_once_a_gap(
    indicator: TypingIndicator,
) -> None:
    channel = Channel()
    async with indicator.working(channel, 1):  # type: ignore[arg-type]
        await asyncio.sleep(GAP / 2)
        assert len(channel.requests) == 1
        for _ in range(10):  # ten replies at once: one more request, GAP after the first
            indicator.replied(1)
        await asyncio.sleep(GAP * 4)  # well before the next renewal, INTERVAL after the first

    assert len(channel.requests) == 2
    assert channel.requests[1] - channel.requests[0] >= GAP * 0.95


async def test_a_reply_after_the_last_picture_sends_nothing(indicator: TypingIndicator) -> None:
    channel = Channel()
    async with indicator.working(channel, 1):  # type: ignore[arg-type]
        await asyncio.sleep(GAP / 2)
    indicator.replied(1)
    await asyncio.sleep(GAP * 2)

    assert len(channel.requests) == 1


async def test_channels_have_their_own_indicators(indicator: TypingIndicator) -> None:
    first, second = Channel(), Channel()
    async with (
        indicator.working(first, 1),  # type: ignore[arg-type]
        indicator.working(second, 2),  # type: ignore[arg-type]
    ):
        await asyncio.sleep(GAP / 2)
        assert (indicator.pending(1), indicator.pending(2)) == (1, 1)

    assert (len(first.requests), len(second.requests)) == (1, 1)


async def test_no_permission_to_type_stops_trying_but_not_the_work(
    indicator: TypingIndicator,
) -> None:
    channel = Channel(fails=http_error(403))
    async with indicator.working(channel, 1):  # type: ignore[arg-type]
        await asyncio.sleep(INTERVAL * 1.5)
        indicator.replied(1)
        await asyncio.sleep(GAP * 2)

    assert len(channel.requests) == 1


async def test_a_failed_request_is_tried_again_at_the_next_interval(
    indicator: TypingIndicator,
) -> None:
    channel = Channel(fails=http_error(500))
    async with indicator.working(channel, 1):  # type: ignore[arg-type]
        await asyncio.sleep(INTERVAL * 1.5)

    assert len(channel.requests) == 2


async def test_leaving_with_an_error_still_ends_the_indicator(
    indicator: TypingIndicator,
) -> None:
    channel = Channel()
    with pytest.raises(RuntimeError):
        async with indicator.working(channel, 1):  # type: ignore[arg-type]
            await asyncio.sleep(GAP / 2)
            raise RuntimeError("recognition failed")
    await asyncio.sleep(INTERVAL * 1.2)

    assert indicator.pending(1) == 0
    assert len(channel.requests) == 1


def test_the_gap_cannot_exceed_the_interval() -> None:
    with pytest.raises(ValueError, match="min_gap"):
        TypingIndicator(interval=1.0, min_gap=2.0)
