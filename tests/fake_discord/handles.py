"""What the injection methods return: handles that tests await for the bot's answers."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from .records import BotMessage, CallbackRecord, MessageFields

if TYPE_CHECKING:
    from .server import FakeDiscord

MessagePredicate = Callable[[BotMessage], bool]

CALLBACK_MESSAGE = 4
CALLBACK_DEFERRED_MESSAGE = 5
CALLBACK_DEFERRED_UPDATE = 6
CALLBACK_UPDATE_MESSAGE = 7
CALLBACK_AUTOCOMPLETE = 8
CALLBACK_MODAL = 9


def _both(first: MessagePredicate, second: MessagePredicate | None) -> MessagePredicate:
    return first if second is None else (lambda m: first(m) and second(m))


@dataclass(eq=False)
class PostedMessage(MessageFields):
    """A message a test user posted (MESSAGE_CREATE)."""

    fake: FakeDiscord = field(repr=False)
    data: dict[str, Any]
    posted_at: float = field(default_factory=time.monotonic)

    @property
    def replies(self) -> list[BotMessage]:
        """Bot messages that reply to this one so far."""
        return [m for m in self.fake.bot_messages if m.reference_id == self.id]

    async def wait_for_reply(
        self,
        predicate: MessagePredicate | None = None,
        *,
        timeout: float = 10.0,  # noqa: ASYNC109
    ) -> BotMessage:
        """The bot's reply to this message (a message whose reference is this one)."""
        return await self.fake.wait_for_message(
            self.channel_id,
            _both(lambda m: m.reference_id == self.id, predicate),
            timeout=timeout,
            describe=f"replying to message {self.id}",
        )


@dataclass(eq=False)
class InteractionHandle:
    """An interaction the fake sent (slash command, component click, modal submit)."""

    fake: FakeDiscord = field(repr=False)
    id: int
    token: str
    type: int
    payload: dict[str, Any] = field(repr=False)
    channel_id: int
    guild_id: int | None
    user_id: int
    message_id: int | None = None
    """The message a component sits on (component and modal interactions)."""
    delivered_at: float | None = None
    callbacks: list[CallbackRecord] = field(default_factory=list)
    original_message_id: int | None = None
    """What ``@original`` refers to once the interaction has been answered."""

    @property
    def responded(self) -> bool:
        """Whether the bot answered the interaction at all."""
        return bool(self.callbacks)

    @property
    def callback(self) -> CallbackRecord | None:
        """The bot's (first) interaction callback."""
        return self.callbacks[0] if self.callbacks else None

    @property
    def modal(self) -> dict[str, Any] | None:
        """The modal the bot opened in answer (``custom_id``, ``title``, ``components``)."""
        return next((c.data for c in self.callbacks if c.type == CALLBACK_MODAL), None)

    @property
    def messages(self) -> list[BotMessage]:
        """Messages created in answer: the response and any follow-ups."""
        return [m for m in self.fake.bot_messages if m.interaction_id == self.id]

    @property
    def original(self) -> BotMessage | None:
        """The ``@original`` message as it stands now."""
        if self.original_message_id is None:
            return None
        return self.fake.bot_message(self.original_message_id)

    async def wait_for_callback(
        self,
        *,
        timeout: float = 10.0,  # noqa: ASYNC109
    ) -> CallbackRecord:
        """The bot's interaction callback (any type)."""
        return await self.fake.wait_for_interaction_response(self, timeout=timeout)

    async def wait_for_message(
        self,
        predicate: MessagePredicate | None = None,
        *,
        timeout: float = 10.0,  # noqa: ASYNC109
        include_placeholders: bool = False,
    ) -> BotMessage:
        """A message created in answer to this interaction (a type 4 response, a deferred
        response once filled in, or a follow-up); edits are seen as they happen."""

        def matches(message: BotMessage) -> bool:
            if message.interaction_id != self.id or message.deleted:
                return False
            return include_placeholders or not message.is_placeholder

        return await self.fake.wait_for_message(
            None,
            _both(matches, predicate),
            timeout=timeout,
            describe=f"answering interaction {self.id}",
        )

    async def wait_for_followup(
        self,
        predicate: MessagePredicate | None = None,
        *,
        timeout: float = 10.0,  # noqa: ASYNC109
    ) -> BotMessage:
        """A follow-up message (``POST /webhooks/{app}/{token}``)."""
        return await self.wait_for_message(
            _both(lambda m: m.source == "followup", predicate), timeout=timeout
        )

    async def wait_for_original(
        self,
        predicate: MessagePredicate | None = None,
        *,
        timeout: float = 10.0,  # noqa: ASYNC109
    ) -> BotMessage:
        """The ``@original`` message once it satisfies ``predicate``: for a component
        interaction this is the message the component sits on (type 7 updates and
        ``edit_original_response`` after a type 6 deferral)."""
        return await self.fake.wait_for_message(
            None,
            _both(lambda m: m.id == self.original_message_id and not m.is_placeholder, predicate),
            timeout=timeout,
            describe=f"as @original of interaction {self.id}",
        )
