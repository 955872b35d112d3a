"""The fake Discord: an aiohttp server with the REST API, the gateway and a CDN, plus the
methods tests use to define the world, inject user actions and inspect what the bot did."""

from __future__ import annotations

import copy
import logging
import secrets
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping
from typing import Any, NamedTuple, Self
from urllib.parse import quote

from aiohttp import web

from .gateway import (
    INTENT_DIRECT_MESSAGES,
    INTENT_GUILD_MESSAGES,
    INTENT_MESSAGE_CONTENT,
    OP_INVALID_SESSION,
    OP_RECONNECT,
    PRIVILEGED_INTENTS,
    Gateway,
    GatewayConnection,
    GatewaySession,
    HeartbeatAckPolicy,
)
from .handles import InteractionHandle, PostedMessage
from .models import (
    ADD_REACTIONS,
    ATTACH_FILES,
    DM_CHANNEL,
    EMBED_LINKS,
    MANAGE_GUILD,
    READ_MESSAGE_HISTORY,
    SEND_MESSAGES,
    SEND_MESSAGES_IN_THREADS,
    USE_EXTERNAL_EMOJIS,
    VIEW_CHANNEL,
    AttachmentSpec,
    FakeChannel,
    FakeGuild,
    FakeMember,
    FakeRole,
    FakeUser,
    as_attachment_spec,
)
from .payloads import (
    OPTION_ATTACHMENT,
    OPTION_CHANNEL,
    OPTION_ROLE,
    OPTION_USER,
    attachment_payload,
    command_options,
    mentioned_ids,
    message_payload,
)
from .records import (
    BotMessage,
    CallbackRecord,
    Journal,
    ReactionRecord,
    RestCall,
    ResumeRecord,
    TypingRecord,
)
from .rest import RestApi
from .snowflakes import SnowflakeFactory

log = logging.getLogger(__name__)

BOT_PERMISSIONS = (
    VIEW_CHANNEL
    | SEND_MESSAGES
    | SEND_MESSAGES_IN_THREADS
    | EMBED_LINKS
    | ATTACH_FILES
    | READ_MESSAGE_HISTORY
    | ADD_REACTIONS
    | USE_EXTERNAL_EMOJIS
)
"""What the bot's managed role grants in each guild (a typical invite link)."""

INTERACTION_APPLICATION_COMMAND = 2
INTERACTION_MESSAGE_COMPONENT = 3
INTERACTION_AUTOCOMPLETE = 4
INTERACTION_MODAL_SUBMIT = 5

SELECT_TYPES = (3, 5, 6, 7, 8)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class StandardGuild(NamedTuple):
    """A guild with one text channel, an admin (Manage Server) and an ordinary member."""

    guild: FakeGuild
    channel: FakeChannel
    admin: FakeMember
    member: FakeMember


class FakeDiscord:
    """A local Discord API (REST, gateway websocket and attachment CDN) on 127.0.0.1.

    Define guilds before the bot connects, start it (``async with FakeDiscord() as
    fake``), point discord.py at ``api_base`` and ``gateway_url``, then inject user
    actions and await the bot's answers. Unknown routes and malformed bot requests
    are answered like Discord would and collected in :attr:`errors`.
    """

    def __init__(
        self,
        *,
        token: str = "fake-bot-token",
        heartbeat_interval: float = 41.25,
        bot_name: str = "FakeBot",
        recommended_shards: int = 1,
        interaction_deadline: float | None = 3.0,
        attachment_size_limit: int = 10 * 1024 * 1024,
        privileged_intents: int = PRIVILEGED_INTENTS,
        host: str = "127.0.0.1",
        port: int = 0,
    ) -> None:
        self.token = token
        self.heartbeat_interval = heartbeat_interval
        self.recommended_shards = recommended_shards
        self.interaction_deadline = interaction_deadline
        self.attachment_size_limit = attachment_size_limit
        self.privileged_intents = privileged_intents
        self.host, self.port = host, port

        self.ids = SnowflakeFactory()
        self.bot_user = FakeUser(self.ids.next(), bot_name, bot=True)
        self.application_id = self.bot_user.id
        self.owner = FakeUser(self.ids.next(), "app-owner")
        self.users: dict[int, FakeUser] = {u.id: u for u in (self.bot_user, self.owner)}
        self.guilds: list[FakeGuild] = []
        self.dm_channels: dict[int, FakeChannel] = {}
        self.commands: dict[int | None, dict[str, dict[str, Any]]] = {}
        self.user_messages: dict[int, dict[str, Any]] = {}
        self._bot_messages_by_id: dict[int, BotMessage] = {}
        self.interactions: dict[int, InteractionHandle] = {}
        self.files: dict[int, tuple[AttachmentSpec, int]] = {}
        self.errors: list[str] = []
        self.dropped: list[str] = []

        self.messages: Journal[BotMessage] = Journal("bot message", self.describe)
        self.callbacks: Journal[CallbackRecord] = Journal("interaction callback", self.describe)
        self.typing: Journal[TypingRecord] = Journal("typing indicator", self.describe)
        self.reactions: Journal[ReactionRecord] = Journal("reaction", self.describe)
        self.requests: Journal[RestCall] = Journal("REST request", self.describe)
        self.resumes: Journal[ResumeRecord] = Journal("RESUME", self.describe)
        self.identified: Journal[GatewaySession] = Journal("IDENTIFY", self.describe)

        self.gateway = Gateway(self)
        self.rest = RestApi(self)
        self._runner: web.AppRunner | None = None
        self._fault_marks = (0, 0)

    # -- lifecycle ------------------------------------------------------------------

    async def start(self) -> None:
        """Listen on ``host`` (a free port unless one was given)."""
        app = web.Application(middlewares=[self.rest.middleware], client_max_size=256 << 20)
        app.router.add_get("/gateway", self.gateway.handle)
        app.router.add_get("/resume", self.gateway.handle)
        self.rest.add_routes(app.router)
        self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=1.0)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.host, self.port)
        await site.start()
        self.port = self._runner.addresses[0][1]
        log.debug("fake Discord listening on %s", self.base_url)

    async def stop(self) -> None:
        """Close every gateway socket and the server."""
        await self.gateway.close()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.stop()

    @property
    def base_url(self) -> str:
        """``http://127.0.0.1:PORT``."""
        return f"http://{self.host}:{self.port}"

    @property
    def api_base(self) -> str:
        """The REST base for ``discord.http.Route.BASE`` / the bot's API base setting."""
        return f"{self.base_url}/api/v10"

    @property
    def gateway_url(self) -> str:
        """The gateway for ``DiscordWebSocket.DEFAULT_GATEWAY`` and ``GET /gateway/bot``."""
        return f"ws://{self.host}:{self.port}/gateway"

    @property
    def resume_gateway_url(self) -> str:
        """Where READY tells clients to RESUME (a different path, so tests can tell)."""
        return f"ws://{self.host}:{self.port}/resume"

    @property
    def cdn_base(self) -> str:
        """Prefix of every attachment URL the fake hands out (the bot's "Discord CDN")."""
        return f"{self.base_url}/attachments/"

    def url(self, path: str) -> str:
        """An absolute URL on the fake for ``path`` (e.g. a route from :meth:`add_route`)."""
        return self.base_url + path

    # -- the world -------------------------------------------------------------------------

    def add_guild(
        self, name: str = "Test Guild", *, shard: tuple[int, int] | None = None
    ) -> FakeGuild:
        """A guild the bot is in; ``shard=(id, count)`` picks an id Discord routes there."""
        guild_id = self.ids.for_shard(*shard) if shard else self.ids.next()
        guild = FakeGuild(guild_id, name, owner_id=self.owner.id, ids=self.ids)
        guild.add_member(self.owner)
        bot_role = guild.add_role(self.bot_user.username, BOT_PERMISSIONS)
        bot_role.managed_by_bot = self.bot_user.id
        guild.add_member(self.bot_user, roles=[bot_role])
        self.guilds.append(guild)
        return guild

    def add_standard_guild(
        self, name: str = "Test Guild", *, shard: tuple[int, int] | None = None
    ) -> StandardGuild:
        """A guild with ``#general``, an admin with Manage Server and an ordinary member."""
        guild = self.add_guild(name, shard=shard)
        channel = guild.add_text_channel("general")
        admin = guild.add_member("admin", permissions=MANAGE_GUILD)
        member = guild.add_member("member")
        return StandardGuild(guild, channel, admin, member)

    def add_user(self, name: str) -> FakeUser:
        """A user who shares no guild with the bot (for DMs)."""
        user = FakeUser(self.ids.next(), name)
        self.users[user.id] = user
        return user

    def dm_channel(self, user: FakeUser | FakeMember) -> FakeChannel:
        """The DM channel between the bot and ``user`` (created on first use)."""
        user = user.user if isinstance(user, FakeMember) else user
        self.users.setdefault(user.id, user)
        if user.id not in self.dm_channels:
            channel = FakeChannel(self.ids.next(), "", None, DM_CHANNEL, recipient=user)
            self.dm_channels[user.id] = channel
        return self.dm_channels[user.id]

    def guild(self, guild_id: int) -> FakeGuild:
        """The guild with this id."""
        found = next((g for g in self.guilds if g.id == guild_id), None)
        if found is None:
            raise LookupError(f"fake Discord: no guild {guild_id}")
        return found

    def channel(self, channel_id: int) -> FakeChannel | None:
        """A guild or DM channel by id."""
        for guild in self.guilds:
            found = guild.channel(channel_id)
            if found is not None:
                return found
        return next((c for c in self.dm_channels.values() if c.id == channel_id), None)

    def user(self, user_id: int) -> FakeUser | None:
        """Any user the fake knows of."""
        if user_id in self.users:
            return self.users[user_id]
        members = (g.members.get(user_id) for g in self.guilds)
        return next((m.user for m in members if m is not None), None)

    async def announce_guild(self, guild: FakeGuild) -> None:
        """Send GUILD_CREATE for a guild added after the bot connected (the bot joins it)."""
        await self._session_for(guild.id).dispatch("GUILD_CREATE", guild.to_payload())

    def registered_command(self, name: str, guild_id: int | None) -> dict[str, Any] | None:
        """The command the bot synced under ``name`` (guild commands first, then global)."""
        for scope in (guild_id, None):
            if scope in self.commands and name in self.commands[scope]:
                return self.commands[scope][name]
        return None

    # -- messages and files -----------------------------------------------------------------

    @property
    def bot_messages(self) -> list[BotMessage]:
        """Every message the bot created, in order."""
        return list(self.messages)

    def bot_message(self, message_id: int) -> BotMessage | None:
        """A message the bot created, by id."""
        return self._bot_messages_by_id.get(message_id)

    def add_bot_message(self, message: BotMessage) -> BotMessage:
        """Record a message the bot created (the REST handlers call this)."""
        self._bot_messages_by_id[message.id] = message
        return self.messages.add(message)

    def find_message(self, message_id: int) -> dict[str, Any] | None:
        """Any message (from the bot or a test user) as a message object."""
        if message_id in self.user_messages:
            return self.user_messages[message_id]
        found = self.bot_message(message_id)
        return found.data if found is not None and not found.deleted else None

    def serve_attachment(self, channel_id: int, spec: AttachmentSpec) -> dict[str, Any]:
        """Register a file on the fake's CDN and return its attachment object."""
        attachment_id = self.ids.next()
        self.files[attachment_id] = (spec, channel_id)
        url = spec.url or (
            f"{self.cdn_base}{channel_id}/{attachment_id}/{quote(spec.filename)}"
            f"?ex={secrets.token_hex(4)}&is={secrets.token_hex(4)}&hm={secrets.token_hex(16)}"
        )
        return attachment_payload(attachment_id, spec, url)

    def record_error(self, text: str) -> None:
        """Note something a real Discord would refuse or the bot should not do."""
        log.warning("fake Discord: %s", text)
        self.errors.append(text)

    def take_errors(self) -> list[str]:
        """Return and forget the recorded errors (for tests that provoke them)."""
        errors, self.errors = self.errors, []
        return errors

    def assert_no_errors(self) -> None:
        """Fail when the bot called an unknown route or sent something Discord refuses."""
        if self.errors:
            listing = "\n  ".join(self.errors)
            raise AssertionError(f"fake Discord recorded {len(self.errors)} error(s):\n  {listing}")

    def describe(self) -> str:
        """A short account of recent activity, appended to wait timeouts."""
        lines = [f"  bot message {m.id} in {m.channel_id}: {m.text[:80]!r}" for m in self.messages]
        unanswered = [i.id for i in self.interactions.values() if not i.responded]
        if unanswered:
            lines.append(f"  unanswered interactions: {unanswered}")
        lines += [f"  error: {e}" for e in self.errors] + [f"  dropped: {d}" for d in self.dropped]
        return "\n".join(lines[-12:])

    # -- user actions ----------------------------------------------------------------

    async def post_message(
        self,
        channel: FakeChannel | int,
        author: FakeMember | FakeUser,
        content: str = "",
        *,
        attachments: Iterable[AttachmentSpec | tuple] = (),
        embeds: Iterable[dict[str, Any]] = (),
        reply_to: int | None = None,
    ) -> PostedMessage:
        """A user posts a message (MESSAGE_CREATE to the shard owning the guild).

        Attachments are ``(filename, bytes, content_type)`` tuples or
        :class:`AttachmentSpec`; the bytes are served under :attr:`cdn_base`.
        """
        target = self._channel(channel)
        user, member = self._participant(target, author)
        data = message_payload(
            message_id=self.ids.next(),
            channel=target,
            author=user,
            member=member,
            content=content,
            embeds=list(embeds),
            attachments=[
                self.serve_attachment(target.id, as_attachment_spec(a)) for a in attachments
            ],
            mentions=[u for u in map(self.user, mentioned_ids(content)) if u is not None],
            message_type=19 if reply_to else 0,
        )
        if reply_to is not None:
            data["message_reference"] = {"message_id": str(reply_to), "channel_id": str(target.id)}
            data["referenced_message"] = self.find_message(reply_to)
        self.user_messages[int(data["id"])] = data
        posted = PostedMessage(self, data)
        await self._deliver_message(target, data)
        return posted

    async def _deliver_message(self, channel: FakeChannel, data: dict[str, Any]) -> None:
        guild_id = channel.guild.id if channel.guild else None
        session = self._session_for(guild_id)
        needed = INTENT_GUILD_MESSAGES if guild_id else INTENT_DIRECT_MESSAGES
        if not session.has_intent(needed):
            self.dropped.append(f"MESSAGE_CREATE {data['id']}: the bot lacks intent {needed}")
            return
        mentioned = any(int(u["id"]) == self.bot_user.id for u in data["mentions"])
        if guild_id and not mentioned and not session.has_intent(INTENT_MESSAGE_CONTENT):
            data = data | {"content": "", "embeds": [], "attachments": [], "components": []}
        await session.dispatch("MESSAGE_CREATE", data)

    async def send_slash_command(
        self,
        name: str,
        options: Mapping[str, Any] | None = None,
        *,
        user: FakeMember | FakeUser,
        channel: FakeChannel | int,
    ) -> InteractionHandle:
        """A user runs ``/name`` (``"group sub"`` for subcommands) with ``options``.

        Option values: str/int/float/bool, an attachment (tuple or
        :class:`AttachmentSpec`), a user/member, channel or role. When the bot has
        synced the command, its registered options type and check the values.
        """
        target = self._channel(channel)
        data = self._command_data(name, options or {}, target, focused=None)
        return await self._send_interaction(INTERACTION_APPLICATION_COMMAND, data, target, user)

    async def send_autocomplete(
        self,
        name: str,
        options: Mapping[str, Any],
        focused: str,
        *,
        user: FakeMember | FakeUser,
        channel: FakeChannel | int,
    ) -> InteractionHandle:
        """A user types in option ``focused`` of ``/name``; await the type 8 callback."""
        target = self._channel(channel)
        data = self._command_data(name, options, target, focused=focused)
        return await self._send_interaction(INTERACTION_AUTOCOMPLETE, data, target, user)

    async def send_message_command(
        self,
        name: str,
        message: PostedMessage | BotMessage,
        *,
        user: FakeMember | FakeUser,
    ) -> InteractionHandle:
        """A user picks the message context-menu command ``name`` (Apps → name) on
        ``message``, in the message's channel."""
        target = self._channel(message.channel_id)
        guild_id = target.guild.id if target.guild else None
        command = self.registered_command(name, guild_id)
        if command is not None and command.get("type") != 3:
            raise ValueError(f"command {name!r} is not a message command")
        data: dict[str, Any] = {
            "id": command["id"] if command else str(self.ids.next()),
            "name": name,
            "type": 3,
            "target_id": str(message.id),
            "resolved": {"messages": {str(message.id): copy.deepcopy(message.data)}},
        }
        return await self._send_interaction(INTERACTION_APPLICATION_COMMAND, data, target, user)

    def _command_data(
        self,
        name: str,
        options: Mapping[str, Any],
        channel: FakeChannel,
        *,
        focused: str | None,
    ) -> dict[str, Any]:
        guild_id = channel.guild.id if channel.guild else None
        command_name, *path = name.split()
        command = self.registered_command(command_name, guild_id)
        resolved: dict[str, dict[str, Any]] = {}
        data: dict[str, Any] = {
            "id": command["id"] if command else str(self.ids.next()),
            "name": command_name,
            "type": 1,
            "options": command_options(
                path,
                options,
                command.get("options", []) if command else None,
                lambda value, kind, res: self._option_value(channel, value, kind, res),
                resolved,
                focused=focused,
            ),
        }
        if resolved:
            data["resolved"] = resolved
        if command and command.get("guild_id"):
            data["guild_id"] = command["guild_id"]
        return data

    def _option_value(
        self, channel: FakeChannel, value: Any, kind: int, resolved: dict[str, dict[str, Any]]
    ) -> Any:
        if kind == OPTION_ATTACHMENT:
            attachment = self.serve_attachment(channel.id, as_attachment_spec(value))
            resolved.setdefault("attachments", {})[attachment["id"]] = attachment
            return attachment["id"]
        if kind == OPTION_USER:
            user = value.user if isinstance(value, FakeMember) else value
            resolved.setdefault("users", {})[str(user.id)] = user.to_payload()
            if channel.guild and user.id in channel.guild.members:
                member = channel.guild.members[user.id].to_payload(with_user=False)
                resolved.setdefault("members", {})[str(user.id)] = member
            return str(user.id)
        if kind == OPTION_CHANNEL:
            payload = value.to_payload() | {"permissions": str(BOT_PERMISSIONS)}
            resolved.setdefault("channels", {})[str(value.id)] = payload
            return str(value.id)
        if kind == OPTION_ROLE:
            assert isinstance(value, FakeRole)
            resolved.setdefault("roles", {})[str(value.id)] = value.to_payload()
            return str(value.id)
        return value

    async def click_component(
        self,
        message: BotMessage | int,
        custom_id: str,
        user: FakeMember | FakeUser,
        values: list[str] | None = None,
    ) -> InteractionHandle:
        """A user presses a button or picks ``values`` in a select menu on a bot message."""
        found = self.bot_message(message) if isinstance(message, int) else message
        if found is None or found.deleted:
            raise LookupError(f"fake Discord: the bot sent no message {message}")
        component = found.component(custom_id)
        if component is None:
            raise LookupError(
                f"no component {custom_id!r} on message {found.id}: {found.custom_ids}"
            )
        if component.get("disabled"):
            raise ValueError(f"component {custom_id!r} is disabled; Discord would not send a click")
        data: dict[str, Any] = {"custom_id": custom_id, "component_type": component["type"]}
        if component["type"] in SELECT_TYPES:
            data["values"] = self._checked_select_values(component, values or [])
        elif values is not None:
            raise ValueError(f"component {custom_id!r} is a button; it takes no values")
        target = self._channel(found.channel_id)
        return await self._send_interaction(
            INTERACTION_MESSAGE_COMPONENT, data, target, user, message=found
        )

    @staticmethod
    def _checked_select_values(component: dict[str, Any], values: list[str]) -> list[str]:
        low, high = component.get("min_values", 1), component.get("max_values", 1)
        if not low <= len(values) <= high:
            raise ValueError(f"select {component['custom_id']!r} takes {low}..{high} values")
        if component["type"] == 3:
            offered = {option["value"] for option in component.get("options", [])}
            if not set(values) <= offered:
                raise ValueError(f"values {set(values) - offered} are not options of the select")
        return [str(v) for v in values]

    async def submit_modal(
        self,
        modal: InteractionHandle | str,
        values: Mapping[str, str | list[str]],
        user: FakeMember | FakeUser,
        *,
        channel: FakeChannel | int | None = None,
    ) -> InteractionHandle:
        """A user fills in and submits a modal the bot opened (a type 9 callback).

        ``modal`` is the interaction the bot answered with the modal, or the modal's
        custom id. ``values`` maps each input's custom id or label to what was typed
        (a list of values for a select); the submission mirrors the modal's layout.
        """
        if isinstance(modal, InteractionHandle):
            opener: InteractionHandle | None = modal
        else:
            opener = next(
                (
                    h
                    for h in reversed(self.interactions.values())
                    if (h.modal or {}).get("custom_id") == modal
                ),
                None,
            )
        if opener is None or opener.modal is None:
            if channel is None or not isinstance(modal, str):
                raise LookupError(f"the bot opened no modal {modal!r}; pass channel= to force one")
            custom_id, components = modal, _modal_submission(None, dict(values))
        else:
            custom_id = opener.modal["custom_id"]
            components = _modal_submission(opener.modal["components"], dict(values))
            channel = opener.channel_id if channel is None else channel
        message = self.bot_message(opener.message_id) if opener and opener.message_id else None
        data = {"custom_id": custom_id, "components": components}
        return await self._send_interaction(
            INTERACTION_MODAL_SUBMIT, data, self._channel(channel), user, message=message
        )

    async def _send_interaction(
        self,
        kind: int,
        data: dict[str, Any],
        channel: FakeChannel,
        user: FakeMember | FakeUser,
        *,
        message: BotMessage | None = None,
    ) -> InteractionHandle:
        person, member = self._participant(channel, user)
        guild = channel.guild
        bot_member = guild.members[self.bot_user.id] if guild else None
        interaction_id = self.ids.next()
        payload: dict[str, Any] = {
            "id": str(interaction_id),
            "application_id": str(self.application_id),
            "type": kind,
            "data": data,
            "token": secrets.token_urlsafe(48),
            "version": 1,
            "channel_id": str(channel.id),
            "channel": channel.to_payload()
            | {"permissions": str(member.permissions if member else BOT_PERMISSIONS)},
            "app_permissions": str(bot_member.permissions if bot_member else BOT_PERMISSIONS),
            "locale": person.locale,
            "entitlements": [],
            "authorizing_integration_owners": (
                {"0": str(guild.id)} if guild else {"1": str(person.id)}
            ),
            "context": 0 if guild else 1,
            "attachment_size_limit": self.attachment_size_limit,
        }
        if guild is not None and member is not None:
            payload |= {
                "guild_id": str(guild.id),
                "guild": {"id": str(guild.id), "locale": guild.preferred_locale, "features": []},
                "guild_locale": guild.preferred_locale,
                "member": member.to_payload(with_permissions=True),
            }
        else:
            payload["user"] = person.to_payload()
        if message is not None:
            payload["message"] = copy.deepcopy(message.data)
        handle = InteractionHandle(
            self,
            interaction_id,
            payload["token"],
            kind,
            payload,
            channel.id,
            guild.id if guild else None,
            person.id,
            message_id=message.id if message else None,
        )
        self.interactions[interaction_id] = handle
        session = self._session_for(handle.guild_id)
        await session.dispatch("INTERACTION_CREATE", payload)
        handle.delivered_at = time.monotonic()
        return handle

    # -- waiting ---------------------------------------------------------------------

    async def wait_for_message(
        self,
        channel: FakeChannel | int | None = None,
        predicate: Callable[[BotMessage], bool] | None = None,
        *,
        timeout: float = 10.0,  # noqa: ASYNC109
        include_placeholders: bool = False,
        describe: str = "",
    ) -> BotMessage:
        """The first bot message (in ``channel``, if given) satisfying ``predicate``.

        Edits count: a message that matches only after an edit is returned then.
        Deferred "thinking…" placeholders are skipped unless asked for.
        """
        channel_id = None if channel is None else getattr(channel, "id", channel)

        def matches(message: BotMessage) -> bool:
            if message.deleted or (message.is_placeholder and not include_placeholders):
                return False
            if channel_id is not None and message.channel_id != channel_id:
                return False
            return predicate is None or predicate(message)

        where = f"in channel {channel_id}" if channel_id else ""
        return await self.messages.wait_for(
            matches, timeout=timeout, describe=f"{where} {describe}".strip()
        )

    async def wait_for_interaction_response(
        self,
        interaction: InteractionHandle,
        *,
        timeout: float = 10.0,  # noqa: ASYNC109
    ) -> CallbackRecord:
        """The bot's callback to ``interaction``."""
        return await self.callbacks.wait_for(
            lambda c: c.interaction_id == interaction.id,
            timeout=timeout,
            describe=f"for interaction {interaction.id}",
        )

    async def wait_for_typing(
        self,
        channel: FakeChannel | int,
        *,
        timeout: float = 10.0,  # noqa: ASYNC109
    ) -> None:
        """Until the bot has shown the typing indicator in ``channel``."""
        channel_id = getattr(channel, "id", channel)
        await self.typing.wait_for(
            lambda t: t.channel_id == channel_id, timeout=timeout, describe=f"in {channel_id}"
        )

    async def wait_for_reaction(
        self,
        message_id: int,
        emoji: str | None = None,
        *,
        timeout: float = 10.0,  # noqa: ASYNC109
    ) -> ReactionRecord:
        """A reaction the bot added to ``message_id`` (optionally a given emoji)."""
        return await self.reactions.wait_for(
            lambda r: r.message_id == message_id and r.added and emoji in (None, r.emoji),
            timeout=timeout,
            describe=f"on message {message_id}",
        )

    async def wait_for_session(
        self,
        shard_id: int | None = None,
        *,
        timeout: float = 10.0,  # noqa: ASYNC109
    ) -> GatewaySession:
        """A session IDENTIFYed (for ``shard_id``, if given) since the last injected
        gateway fault (any session, before the first fault)."""
        return await self.identified.wait_for(
            lambda s: shard_id in (None, s.shard_id),
            timeout=timeout,
            describe=f"for shard {shard_id}",
            since=self._fault_marks[1],
        )

    async def wait_for_resume(
        self,
        shard_id: int | None = None,
        *,
        timeout: float = 10.0,  # noqa: ASYNC109
    ) -> ResumeRecord:
        """A RESUME answered (for ``shard_id``, if given) since the last injected
        gateway fault (:meth:`disconnect`, :meth:`request_reconnect`, ...)."""
        return await self.resumes.wait_for(
            lambda r: shard_id in (None, r.shard_id),
            timeout=timeout,
            describe=f"for shard {shard_id}",
            since=self._fault_marks[0],
        )

    def _mark_fault(self) -> None:
        self._fault_marks = (len(self.resumes), len(self.identified))

    # -- gateway faults and measurements ---------------------------------------------

    @property
    def sessions(self) -> list[GatewaySession]:
        """Every IDENTIFYed session, oldest first."""
        return list(self.gateway.sessions)

    @property
    def connections(self) -> list[GatewayConnection]:
        """Every gateway websocket, oldest first (with its heartbeat times)."""
        return list(self.gateway.connections)

    async def disconnect(self, shard_id: int = 0, code: int = 4000) -> GatewaySession:
        """Close a shard's websocket with ``code``; 4000 makes discord.py RESUME, and the
        events injected meanwhile are replayed then, each exactly once."""
        self._mark_fault()
        return await self.gateway.disconnect(shard_id, code)

    async def request_reconnect(self, shard_id: int = 0) -> None:
        """Send op 7 RECONNECT (the client closes and RESUMEs)."""
        self._mark_fault()
        await self.gateway.send_op(shard_id, OP_RECONNECT)

    async def invalidate_session(self, shard_id: int = 0, *, resumable: bool = False) -> None:
        """Send op 9 INVALID_SESSION; when not resumable the client IDENTIFYs again
        (discord.py waits 5 s in ``before_identify_hook`` first)."""
        self._mark_fault()
        await self.gateway.send_op(shard_id, OP_INVALID_SESSION, resumable)

    def set_heartbeat_acks(
        self, *, delay: float = 0.0, stalled: bool = False, shard_id: int | None = None
    ) -> None:
        """Answer heartbeats after ``delay`` seconds, or not at all (``stalled``), for one
        shard or (``shard_id=None``) as the default."""
        if stalled or delay:
            self._mark_fault()
        self.gateway.ack_policies[shard_id] = HeartbeatAckPolicy(delay, stalled)

    def max_heartbeat_gap(self, shard_id: int | None = None) -> float:
        """The longest time any client (of ``shard_id``) went without sending a heartbeat,
        in seconds; compare with :attr:`heartbeat_interval`."""
        conns = [c for c in self.gateway.connections if shard_id in (None, c.shard_id)]
        return max((c.max_heartbeat_gap() for c in conns), default=0.0)

    # -- extra HTTP ------------------------------------------------------------------

    def add_route(self, method: str, path: str, handler: Handler) -> str:
        """Serve ``handler`` at ``path`` (``{name}`` placeholders allowed), e.g. a stalled
        or oversized download; returns the absolute URL of ``path``."""
        self.rest.extra_routes.add(method, path, handler)
        return self.url(path)

    def fail_requests(
        self,
        method: str,
        path: str,
        *,
        status: int | None = 500,
        body: dict[str, Any] | None = None,
        times: int = 1,
        delay: float = 0.0,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        """Answer the next ``times`` REST calls matching ``method path`` (below the API
        base, ``{name}`` placeholders allowed) with ``status``, after ``delay`` seconds;
        ``status=None`` only delays them. 5xx makes discord.py retry with sleeps."""
        self.rest.add_fault(method, path, status, body, times, delay, headers)

    # -- helpers ---------------------------------------------------------------------

    def _channel(self, channel: FakeChannel | int) -> FakeChannel:
        if isinstance(channel, FakeChannel):
            return channel
        found = self.channel(channel)
        if found is None:
            raise LookupError(f"fake Discord: no channel {channel}")
        return found

    def _participant(
        self, channel: FakeChannel, who: FakeMember | FakeUser
    ) -> tuple[FakeUser, FakeMember | None]:
        user = who.user if isinstance(who, FakeMember) else who
        if channel.guild is None:
            return user, None
        member = channel.guild.members.get(user.id)
        if member is None:
            raise LookupError(f"{user.username} is not a member of guild {channel.guild.name}")
        return user, member

    def _session_for(self, guild_id: int | None) -> GatewaySession:
        session = self.gateway.session_for_guild(guild_id)
        if session is None:
            where = f"guild {guild_id}" if guild_id else "DMs (shard 0)"
            raise LookupError(f"fake Discord: no gateway session for {where}; is the bot up?")
        return session


def _modal_submission(
    layout: list[dict[str, Any]] | None, values: dict[str, str | list[str]]
) -> list[dict[str, Any]]:
    """The ``components`` of a modal submit, shaped like the modal that was opened;
    ``values`` are keyed by input custom id or label."""
    if layout is None:
        return [
            {"type": 1, "components": [{"type": 4, "custom_id": key, "value": value}]}
            for key, value in values.items()
        ]

    def answer(component: dict[str, Any], label: str | None) -> dict[str, Any] | None:
        custom_id = component.get("custom_id")
        key = custom_id if custom_id in values else label or component.get("label") or ""
        if component.get("type") == 4:
            if key not in values and component.get("required", True):
                raise ValueError(f"the modal's text input {label or custom_id!r} is required")
            return {"type": 4, "custom_id": custom_id, "value": values.pop(key, "")}
        if component.get("type") in SELECT_TYPES:
            chosen = values.pop(key, [])
            chosen = [chosen] if isinstance(chosen, str) else list(chosen)
            return {"type": component["type"], "custom_id": custom_id, "values": chosen}
        return None

    submitted: list[dict[str, Any]] = []
    for entry in layout:
        if entry.get("type") == 1:
            inner = [a for a in (answer(c, None) for c in entry.get("components", [])) if a]
            submitted.append({"type": 1, "components": inner})
        elif entry.get("type") == 18:
            inner_answer = answer(entry["component"], entry.get("label"))
            if inner_answer is not None:
                submitted.append({"type": 18, "id": entry.get("id"), "component": inner_answer})
    if values:
        raise ValueError(f"the modal has no inputs {sorted(values)}")
    return submitted
