"""What the bot did, as recorded by the fake, and journals that tests can wait on."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

T = TypeVar("T")

EPHEMERAL = 1 << 6
LOADING = 1 << 7


class Journal(Generic[T]):
    """An append-only list of records; :meth:`wait_for` resolves when a record matches.

    Records that change later (an edited message) are announced with :meth:`touched`
    so that waiters see their new state.
    """

    def __init__(self, what: str, context: Callable[[], str] = lambda: "") -> None:
        self.what = what
        self.items: list[T] = []
        self._context = context
        self._waiters: list[tuple[Callable[[T], bool], asyncio.Future[T]]] = []

    def __iter__(self) -> Iterator[T]:
        return iter(list(self.items))

    def __len__(self) -> int:
        return len(self.items)

    def add(self, item: T) -> T:
        """Record ``item`` and wake the waiters it satisfies."""
        self.items.append(item)
        self.touched(item)
        return item

    def touched(self, item: T) -> None:
        """Re-offer a record whose state changed to the waiters."""
        for waiter in list(self._waiters):
            predicate, future = waiter
            if future.done():
                continue
            try:
                matched = predicate(item)
            except Exception as exc:  # the test's predicate is broken: tell the test
                future.set_exception(exc)
                continue
            if matched:
                future.set_result(item)

    async def wait_for(
        self,
        predicate: Callable[[T], bool],
        *,
        timeout: float,  # noqa: ASYNC109
        describe: str = "",
        since: int = 0,
    ) -> T:
        """The first record (from index ``since`` on, or a future one) that satisfies
        ``predicate``.

        The timeout is a parameter rather than the caller's ``asyncio.timeout`` so that
        it fails as an ``AssertionError`` listing what the bot did instead.
        """
        for item in self.items[since:]:
            if predicate(item):
                return item
        future: asyncio.Future[T] = asyncio.get_running_loop().create_future()
        waiter = (predicate, future)
        self._waiters.append(waiter)
        try:
            return await asyncio.wait_for(future, timeout)
        except TimeoutError:
            context = self._context()
            raise AssertionError(
                f"fake Discord: no {self.what} {describe} within {timeout:g}s "
                f"({len(self.items)} recorded)" + (f"\n{context}" if context else "")
            ) from None
        finally:
            self._waiters.remove(waiter)


@dataclass(frozen=True)
class SentFile:
    """A file the bot uploaded (``files[n]`` of a multipart request)."""

    filename: str
    content: bytes
    content_type: str | None = None

    @property
    def size(self) -> int:
        """Number of bytes uploaded."""
        return len(self.content)


class MessageFields:
    """Read access to the common fields of a message object held in ``data``."""

    data: dict[str, Any]

    @property
    def id(self) -> int:
        """The message's snowflake."""
        return int(self.data["id"])

    @property
    def channel_id(self) -> int:
        """Where the message was posted."""
        return int(self.data["channel_id"])

    @property
    def content(self) -> str:
        """The text content."""
        return self.data.get("content") or ""


@dataclass(eq=False)
class BotMessage(MessageFields):
    """A message the bot created: in a channel, as an interaction response, or a follow-up.

    ``data`` is the message object as it stands now (edits applied); ``request`` is
    the body that created it and ``edits`` the bodies of later edits.
    """

    data: dict[str, Any]
    request: dict[str, Any]
    files: list[SentFile]
    source: str
    interaction_id: int | None = None
    edits: list[dict[str, Any]] = field(default_factory=list)
    deleted: bool = False
    created_at: float = field(default_factory=time.monotonic)
    updated_at: float = field(default_factory=time.monotonic)

    @property
    def embeds(self) -> list[dict[str, Any]]:
        """The embeds as sent."""
        return self.data.get("embeds") or []

    @property
    def components(self) -> list[dict[str, Any]]:
        """The component rows as sent."""
        return self.data.get("components") or []

    @property
    def flags(self) -> int:
        """Message flags (ephemeral is 64)."""
        return int(self.data.get("flags") or 0)

    @property
    def ephemeral(self) -> bool:
        """Whether only the invoking user sees it."""
        return bool(self.flags & EPHEMERAL)

    @property
    def is_placeholder(self) -> bool:
        """A deferred response's "thinking…" message that has not been filled in yet."""
        return bool(self.flags & LOADING)

    @property
    def reference_id(self) -> int | None:
        """The message this one replies to, if any."""
        reference = self.data.get("message_reference") or {}
        return int(reference["message_id"]) if reference.get("message_id") else None

    @property
    def text(self) -> str:
        """Content and all embed text joined, for loose assertions."""
        parts = [self.content]
        for embed in self.embeds:
            parts += [embed.get("title") or "", embed.get("description") or ""]
            parts += [f"{f.get('name')} {f.get('value')}" for f in embed.get("fields") or []]
            parts.append((embed.get("footer") or {}).get("text") or "")
        return "\n".join(part for part in parts if part)

    def walk_components(self) -> Iterator[dict[str, Any]]:
        """Every component, depth first (rows, containers, sections, accessories)."""
        yield from walk_components(self.components)

    @property
    def custom_ids(self) -> list[str]:
        """The custom ids of all interactive components."""
        return [c["custom_id"] for c in self.walk_components() if c.get("custom_id")]

    def component(self, custom_id: str) -> dict[str, Any] | None:
        """The component with this custom id."""
        return next((c for c in self.walk_components() if c.get("custom_id") == custom_id), None)


def walk_components(components: list[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    """Depth-first walk over a component tree."""
    for component in components:
        yield component
        yield from walk_components(component.get("components") or [])
        for key in ("component", "accessory"):
            if isinstance(component.get(key), dict):
                yield from walk_components([component[key]])


@dataclass(frozen=True)
class CallbackRecord:
    """An interaction callback: ``type`` 4 message, 5 deferred, 6 deferred update, 7 update,
    8 autocomplete choices, 9 modal."""

    interaction_id: int
    type: int
    data: dict[str, Any] | None
    files: tuple[SentFile, ...] = ()
    at: float = field(default_factory=time.monotonic)


@dataclass(frozen=True)
class TypingRecord:
    """``POST /channels/{id}/typing``."""

    channel_id: int
    at: float = field(default_factory=time.monotonic)


@dataclass(frozen=True)
class ReactionRecord:
    """A reaction the bot added (``added``) or removed."""

    channel_id: int
    message_id: int
    emoji: str
    added: bool
    user_id: int | None = None


@dataclass(frozen=True)
class RestCall:
    """One REST request and the status the fake answered."""

    method: str
    path: str
    query: dict[str, str]
    body: Any
    status: int
    at: float = field(default_factory=time.monotonic)


@dataclass(frozen=True)
class ResumeRecord:
    """A session the client RESUMEd, with how many missed events were replayed."""

    session_id: str
    shard_id: int
    replayed: int
    at: float = field(default_factory=time.monotonic)
