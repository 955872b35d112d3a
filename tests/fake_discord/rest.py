"""The REST API under ``/api/v10``, the attachment CDN, and extra routes tests add.

Every JSON answer carries exactly ``Content-Type: application/json`` (aiohttp's
``json_response`` adds ``; charset=utf-8``, which makes discord.py treat the body
as a string); 204 answers carry no body and no content type.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote

from aiohttp import BodyPartReader, web

from .handles import (
    CALLBACK_AUTOCOMPLETE,
    CALLBACK_DEFERRED_MESSAGE,
    CALLBACK_DEFERRED_UPDATE,
    CALLBACK_MESSAGE,
    CALLBACK_MODAL,
    CALLBACK_UPDATE_MESSAGE,
    InteractionHandle,
)
from .models import AttachmentSpec, FakeChannel, FakeGuild, FakeUser, iso_now
from .payloads import message_payload, message_problems, modal_problems
from .records import (
    EPHEMERAL,
    LOADING,
    BotMessage,
    CallbackRecord,
    ReactionRecord,
    RestCall,
    SentFile,
    TypingRecord,
)

if TYPE_CHECKING:
    from .server import FakeDiscord

log = logging.getLogger(__name__)

API_PREFIX = "/api/v10"
UNAUTHENTICATED = ("/interactions/", "/webhooks/")

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

BODY: web.RequestKey[Any] = web.RequestKey("fake_discord_body")
"""The parsed JSON body (``payload_json`` of a multipart body), or None."""
FILES: web.RequestKey[dict[int, SentFile]] = web.RequestKey("fake_discord_files")
"""The uploaded ``files[n]`` parts by ``n``."""

UNKNOWN_CHANNEL = 10003
UNKNOWN_GUILD = 10004
UNKNOWN_MEMBER = 10007
UNKNOWN_MESSAGE = 10008
UNKNOWN_USER = 10013
UNKNOWN_WEBHOOK = 10015
UNKNOWN_INTERACTION = 10062
CANNOT_EDIT_OTHERS = 50005
INVALID_FORM_BODY = 50035
ALREADY_ACKNOWLEDGED = 40060


def json_response(data: Any, status: int = 200) -> web.Response:
    """A JSON answer with exactly ``Content-Type: application/json``."""
    return web.Response(
        body=json.dumps(data).encode(), status=status, headers={"Content-Type": "application/json"}
    )


def error_response(status: int, code: int, message: str, errors: Any = None) -> web.Response:
    """A Discord-shaped error body."""
    body: dict[str, Any] = {"code": code, "message": message}
    if errors is not None:
        body["errors"] = errors
    return json_response(body, status)


def no_content() -> web.Response:
    """204, without a body or content type."""
    return web.Response(status=204)


def compile_path(path: str) -> re.Pattern[str]:
    """``/channels/{channel_id}/x`` as a regex with named groups."""
    parts = re.split(r"\{(\w+)\}", path)
    pattern = "".join(
        re.escape(part) if i % 2 == 0 else f"(?P<{part}>[^/]+)" for i, part in enumerate(parts)
    )
    return re.compile(pattern + "$")


class RouteTable:
    """Routes added while the server runs (aiohttp's router is frozen by then)."""

    def __init__(self) -> None:
        self._routes: list[tuple[str, re.Pattern[str], Handler]] = []

    def add(self, method: str, path: str, handler: Handler) -> None:
        """Serve ``handler`` for ``method`` (or ``*``) at ``path``."""
        self._routes.append((method.upper(), compile_path(path), handler))

    def match(self, method: str, path: str) -> tuple[Handler, dict[str, str]] | None:
        """The newest route for ``method path``, with its placeholders."""
        for route_method, pattern, handler in reversed(self._routes):
            found = pattern.match(path)
            if found and route_method in ("*", method):
                return handler, found.groupdict()
        return None


@dataclass
class Fault:
    """A canned answer (or delay) for the next matching REST calls."""

    method: str
    pattern: re.Pattern[str]
    status: int | None
    body: dict[str, Any] | None
    remaining: int
    delay: float
    headers: Mapping[str, str] | None


class Refused(Exception):
    """Raised by a handler to answer with a Discord error; ``record`` also notes it in
    :attr:`FakeDiscord.errors` (for refusals that mean the bot is wrong)."""

    def __init__(
        self, status: int, code: int, message: str, *, errors: Any = None, record: str = ""
    ) -> None:
        super().__init__(message)
        self.response = error_response(status, code, message, errors)
        self.record = record


def refuse_invalid(what: str, problems: list[str]) -> None:
    """Raise the 400 Discord answers to a body it cannot accept, if there are problems."""
    if problems:
        errors = {"_errors": [{"code": "BASE_TYPE_INVALID", "message": p} for p in problems]}
        record = f"{what} refused: {'; '.join(problems)}"
        raise Refused(400, INVALID_FORM_BODY, "Invalid Form Body", errors=errors, record=record)


async def read_body(request: web.Request) -> tuple[Any, dict[int, SentFile]]:
    """The JSON body (``payload_json`` of a multipart body) and the ``files[n]`` parts."""
    if request.content_type.startswith("multipart/"):
        payload: Any = None
        files: dict[int, SentFile] = {}
        reader = await request.multipart()
        while (part := await reader.next()) is not None:
            assert isinstance(part, BodyPartReader)
            name = part.name or ""
            if name == "payload_json":
                payload = json.loads(await part.text())
            elif found := re.fullmatch(r"files\[(\d+)\]", name):
                content = bytes(await part.read(decode=False))
                content_type = part.headers.get("Content-Type")
                files[int(found[1])] = SentFile(part.filename or "", content, content_type)
            else:
                raise ValueError(f"unexpected multipart part {name!r}")
        return payload, files
    raw = await request.read()
    if not raw:
        return None, {}
    if request.content_type != "application/json":
        raise ValueError(f"a body with Content-Type {request.content_type!r}")
    return json.loads(raw), {}


class RestApi:
    """Handlers for the REST routes discord.py uses; see :meth:`add_routes`."""

    def __init__(self, fake: FakeDiscord) -> None:
        self.fake = fake
        self.extra_routes = RouteTable()
        self.faults: list[Fault] = []

    def add_fault(
        self,
        method: str,
        path: str,
        status: int | None,
        body: dict[str, Any] | None,
        times: int,
        delay: float,
        headers: Mapping[str, str] | None,
    ) -> None:
        """See :meth:`FakeDiscord.fail_requests`."""
        fault = Fault(method.upper(), compile_path(path), status, body, times, delay, headers)
        self.faults.append(fault)

    def add_routes(self, router: web.UrlDispatcher) -> None:
        """Register every route; anything else reaches :meth:`fallback`."""
        channel = "/channels/{channel_id}"
        message = channel + "/messages/{message_id}"
        webhook_message = "/webhooks/{app_id}/{token}/messages/{message_id}"
        api = [
            ("GET", "/users/@me", self.get_current_user),
            ("GET", "/users/{user_id}", self.get_user),
            ("POST", "/users/@me/channels", self.create_dm),
            ("GET", "/oauth2/applications/@me", self.get_application),
            ("GET", "/applications/@me", self.get_application),
            ("GET", "/gateway", self.get_gateway),
            ("GET", "/gateway/bot", self.get_gateway_bot),
            ("GET", channel, self.get_channel),
            ("GET", channel + "/messages", self.get_messages),
            ("POST", channel + "/messages", self.create_message),
            ("POST", channel + "/typing", self.typing),
            ("GET", message, self.get_message),
            ("PATCH", message, self.edit_message),
            ("DELETE", message, self.delete_message),
            ("PUT", message + "/reactions/{emoji}/@me", self.add_reaction),
            ("DELETE", message + "/reactions/{emoji}/{user}", self.remove_reaction),
            ("GET", "/guilds/{guild_id}", self.get_guild),
            ("GET", "/guilds/{guild_id}/channels", self.get_guild_channels),
            ("GET", "/guilds/{guild_id}/roles", self.get_roles),
            ("GET", "/guilds/{guild_id}/members", self.get_members),
            ("GET", "/guilds/{guild_id}/members/{user_id}", self.get_member),
            ("POST", "/interactions/{interaction_id}/{token}/callback", self.callback),
            ("POST", "/webhooks/{app_id}/{token}", self.create_followup),
            ("GET", webhook_message, self.get_webhook_message),
            ("PATCH", webhook_message, self.edit_webhook_message),
            ("DELETE", webhook_message, self.delete_webhook_message),
        ]
        for scope in ("/applications/{app_id}", "/applications/{app_id}/guilds/{guild_id}"):
            api += [
                ("GET", scope + "/commands", self.get_commands),
                ("PUT", scope + "/commands", self.put_commands),
                ("POST", scope + "/commands", self.post_command),
            ]
        for method, path, handler in api:
            router.add_route(method, API_PREFIX + path, handler)
        router.add_get("/attachments/{channel_id}/{attachment_id}/{filename}", self.get_attachment)
        router.add_route("*", "/{tail:.*}", self.fallback)

    # -- plumbing ------------------------------------------------------------------------

    @web.middleware
    async def middleware(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        """Parse bodies, apply faults and auth, turn refusals and crashes into Discord
        errors, and record every API call."""
        if not request.path.startswith(API_PREFIX + "/"):
            return await handler(request)
        path = request.path[len(API_PREFIX) :]
        body: Any = None
        try:
            body, files = await read_body(request)
            request[BODY], request[FILES] = body, files
            response = await self._answer(request, handler, path)
        except ValueError as exc:
            self.fake.record_error(f"{request.method} {path}: unreadable body: {exc}")
            response = error_response(400, 50109, "The request body contains invalid JSON.")
        call = RestCall(request.method, path, dict(request.query), body, response.status)
        self.fake.requests.add(call)
        return response

    async def _answer(
        self, request: web.Request, handler: Handler, path: str
    ) -> web.StreamResponse:
        fault = self._take_fault(request.method, path)
        if fault is not None:
            await asyncio.sleep(fault.delay)
            if fault.status is not None:
                body = fault.body or {"code": 0, "message": f"injected {fault.status}"}
                response = json_response(body, fault.status)
                response.headers.update(fault.headers or {})
                return response
        authorization = request.headers.get("Authorization")
        exempt = path.startswith(UNAUTHENTICATED) or (request.method, path) == ("GET", "/gateway")
        if not exempt and authorization != f"Bot {self.fake.token}":
            return error_response(401, 0, "401: Unauthorized")
        try:
            return await handler(request)
        except Refused as refused:
            if refused.record:
                self.fake.record_error(refused.record)
            return refused.response
        except Exception as exc:
            log.exception("fake Discord failed on %s %s", request.method, path)
            self.fake.record_error(f"the fake crashed on {request.method} {path}: {exc!r}")
            return error_response(400, 0, "the fake Discord could not handle this request")

    def _take_fault(self, method: str, path: str) -> Fault | None:
        for fault in self.faults:
            if fault.remaining > 0 and fault.method in ("*", method) and fault.pattern.match(path):
                fault.remaining -= 1
                return fault
        return None

    async def fallback(self, request: web.Request) -> web.StreamResponse:
        """Extra routes from tests; anything else is an unknown route: 404 and an error."""
        matched = self.extra_routes.match(request.method, request.path)
        if matched is not None:
            handler, params = matched
            request.match_info.update(params)
            return await handler(request)
        self.fake.record_error(f"unknown route {request.method} {request.path}")
        return error_response(404, 0, "404: Not Found")

    # -- lookups that refuse like Discord -----------------------------------------------

    def _channel(self, request: web.Request) -> FakeChannel:
        channel = self.fake.channel(int(request.match_info["channel_id"]))
        if channel is None:
            raise Refused(404, UNKNOWN_CHANNEL, "Unknown Channel")
        return channel

    def _guild(self, request: web.Request) -> FakeGuild:
        try:
            return self.fake.guild(int(request.match_info["guild_id"]))
        except LookupError:
            raise Refused(404, UNKNOWN_GUILD, "Unknown Guild") from None

    def _user(self, user_id: int) -> FakeUser:
        user = self.fake.user(user_id)
        if user is None:
            raise Refused(404, UNKNOWN_USER, "Unknown User")
        return user

    def _message(self, message_id: int) -> dict[str, Any]:
        data = self.fake.find_message(message_id)
        if data is None:
            raise Refused(404, UNKNOWN_MESSAGE, "Unknown Message")
        return data

    def _own_message(self, message_id: int) -> BotMessage:
        self._message(message_id)
        message = self.fake.bot_message(message_id)
        if message is None:
            raise Refused(403, CANNOT_EDIT_OTHERS, "Cannot edit a message authored by another user")
        return message

    # -- users, application, gateway ---------------------------------------------------------

    async def get_current_user(self, request: web.Request) -> web.Response:
        """``GET /users/@me``: the bot user (a 401 here is discord.py's ``LoginFailure``)."""
        extra = {"verified": True, "mfa_enabled": False, "flags": 0, "locale": "en-US"}
        return json_response(self.fake.bot_user.to_payload() | extra)

    async def get_user(self, request: web.Request) -> web.Response:
        """``GET /users/{id}``."""
        return json_response(self._user(int(request.match_info["user_id"])).to_payload())

    async def create_dm(self, request: web.Request) -> web.Response:
        """``POST /users/@me/channels``: open a DM with a user."""
        user = self._user(int(request[BODY]["recipient_id"]))
        return json_response(self.fake.dm_channel(user).to_payload())

    async def get_application(self, request: web.Request) -> web.Response:
        """``GET /oauth2/applications/@me`` (no ``interactions_endpoint_url``: gateway only)."""
        fake = self.fake
        return json_response(
            {
                "id": str(fake.application_id),
                "name": fake.bot_user.username,
                "icon": None,
                "description": "",
                "summary": "",
                "rpc_origins": [],
                "bot_public": True,
                "bot_require_code_grant": False,
                "bot": fake.bot_user.to_payload(),
                "owner": fake.owner.to_payload(),
                "team": None,
                "verify_key": "0" * 64,
                "flags": 0,
                "redirect_uris": [],
                "approximate_guild_count": len(fake.guilds),
            }
        )

    async def get_gateway(self, request: web.Request) -> web.Response:
        """``GET /gateway``."""
        return json_response({"url": self.fake.gateway_url})

    async def get_gateway_bot(self, request: web.Request) -> web.Response:
        """``GET /gateway/bot``: what ``AutoShardedClient`` asks when no shard count is set."""
        return json_response(
            {
                "url": self.fake.gateway_url,
                "shards": self.fake.recommended_shards,
                "session_start_limit": {
                    "total": 1000,
                    "remaining": 999,
                    "reset_after": 14_400_000,
                    "max_concurrency": 1,
                },
            }
        )

    # -- application commands ------------------------------------------------------------

    def _command_scope(self, request: web.Request) -> int | None:
        """The guild whose commands a route addresses (None: global)."""
        if int(request.match_info["app_id"]) != self.fake.application_id:
            record = f"commands addressed to another application: {request.path}"
            raise Refused(403, 50001, "Missing Access", record=record)
        if "guild_id" not in request.match_info:
            return None
        try:
            return self.fake.guild(int(request.match_info["guild_id"])).id
        except LookupError:
            raise Refused(403, 50001, "Missing Access") from None

    def _registered(self, scope: int | None, command: dict[str, Any]) -> dict[str, Any]:
        refuse_invalid(f"command /{command.get('name')}", command_problems(command))
        existing = self.fake.commands.get(scope, {}).get(command["name"])
        return {
            "type": 1,
            "default_member_permissions": None,
            "nsfw": False,
            "description": "",
            "options": [],
            **command,
            "id": existing["id"] if existing else str(self.fake.ids.next()),
            "application_id": str(self.fake.application_id),
            "version": str(self.fake.ids.next()),
            **({"guild_id": str(scope)} if scope else {}),
        }

    async def get_commands(self, request: web.Request) -> web.Response:
        """``GET`` global or guild commands."""
        scope = self._command_scope(request)
        return json_response(list(self.fake.commands.get(scope, {}).values()))

    async def put_commands(self, request: web.Request) -> web.Response:
        """``PUT`` (bulk overwrite, what ``tree.sync()`` does): echo with ids added."""
        scope = self._command_scope(request)
        registered = [self._registered(scope, command) for command in request[BODY] or []]
        self.fake.commands[scope] = {command["name"]: command for command in registered}
        return json_response(registered)

    async def post_command(self, request: web.Request) -> web.Response:
        """``POST`` one command (create or replace by name)."""
        scope = self._command_scope(request)
        command = self._registered(scope, request[BODY])
        self.fake.commands.setdefault(scope, {})[command["name"]] = command
        return json_response(command, 201)

    # -- channels and messages -------------------------------------------------------------

    async def get_channel(self, request: web.Request) -> web.Response:
        """``GET /channels/{id}``."""
        return json_response(self._channel(request).to_payload())

    async def get_messages(self, request: web.Request) -> web.Response:
        """``GET /channels/{id}/messages`` (history, newest first; ``before``/``after``)."""
        channel_id = str(self._channel(request).id)
        before = int(request.query.get("before", 1 << 63))
        after = int(request.query.get("after", 0))
        bot_messages = [m.data for m in self.fake.messages if not m.deleted]
        found = [
            data
            for data in [*self.fake.user_messages.values(), *bot_messages]
            if data["channel_id"] == channel_id and after < int(data["id"]) < before
        ]
        found.sort(key=lambda data: int(data["id"]), reverse=True)
        return json_response(found[: int(request.query.get("limit", 50))])

    async def get_message(self, request: web.Request) -> web.Response:
        """``GET /channels/{id}/messages/{id}`` (how a bot resolves a message link)."""
        data = self._message(int(request.match_info["message_id"]))
        if data["channel_id"] != request.match_info["channel_id"]:
            raise Refused(404, UNKNOWN_MESSAGE, "Unknown Message")
        return json_response(data)

    async def create_message(self, request: web.Request) -> web.Response:
        """``POST /channels/{id}/messages`` (JSON, or multipart with ``files[n]``)."""
        channel = self._channel(request)
        body, files = request[BODY] or {}, request[FILES]
        problems = message_problems(body, len(files), creating=True)
        reference = (body.get("message_reference") or {}).get("message_id")
        if reference and self.fake.find_message(int(reference)) is None:
            problems.append(f"message_reference: unknown message {reference}")
        refuse_invalid(f"message to channel {channel.id}", problems)
        return json_response(self.new_bot_message(channel, body, files, source="channel").data)

    async def edit_message(self, request: web.Request) -> web.Response:
        """``PATCH /channels/{id}/messages/{id}``: only the bot's own messages."""
        message = self._own_message(int(request.match_info["message_id"]))
        return json_response(self.edit(message, request[BODY] or {}, request[FILES]))

    async def delete_message(self, request: web.Request) -> web.Response:
        """``DELETE /channels/{id}/messages/{id}``."""
        message_id = int(request.match_info["message_id"])
        self._message(message_id)
        message = self.fake.bot_message(message_id)
        if message is not None:
            self._delete(message)
        else:
            self.fake.user_messages.pop(message_id)
        return no_content()

    async def typing(self, request: web.Request) -> web.Response:
        """``POST /channels/{id}/typing`` → 204."""
        self.fake.typing.add(TypingRecord(self._channel(request).id))
        return no_content()

    async def add_reaction(self, request: web.Request) -> web.Response:
        """``PUT .../reactions/{emoji}/@me`` → 204."""
        return self._reaction(request, added=True, user_id=self.fake.bot_user.id)

    async def remove_reaction(self, request: web.Request) -> web.Response:
        """``DELETE .../reactions/{emoji}/{@me | user id}`` → 204."""
        user = request.match_info["user"]
        user_id = self.fake.bot_user.id if user == "@me" else int(user)
        return self._reaction(request, added=False, user_id=user_id)

    def _reaction(self, request: web.Request, *, added: bool, user_id: int) -> web.Response:
        message_id = int(request.match_info["message_id"])
        self._message(message_id)
        emoji = unquote(request.match_info["emoji"])
        channel_id = int(request.match_info["channel_id"])
        self.fake.reactions.add(ReactionRecord(channel_id, message_id, emoji, added, user_id))
        return no_content()

    # -- guilds ------------------------------------------------------------------------

    async def get_guild(self, request: web.Request) -> web.Response:
        """``GET /guilds/{id}``."""
        guild = self._guild(request)
        payload = guild.to_payload()
        for key in ("channels", "members", "threads", "presences", "voice_states"):
            payload.pop(key)
        return json_response(payload | {"approximate_member_count": len(guild.members)})

    async def get_guild_channels(self, request: web.Request) -> web.Response:
        """``GET /guilds/{id}/channels``."""
        return json_response([c.to_payload() for c in self._guild(request).channels])

    async def get_roles(self, request: web.Request) -> web.Response:
        """``GET /guilds/{id}/roles``."""
        return json_response([r.to_payload() for r in self._guild(request).roles])

    async def get_members(self, request: web.Request) -> web.Response:
        """``GET /guilds/{id}/members`` (``limit``, ``after``)."""
        guild = self._guild(request)
        after = int(request.query.get("after", 0))
        user_ids = sorted(user_id for user_id in guild.members if user_id > after)
        chosen = user_ids[: int(request.query.get("limit", 1))]
        return json_response([guild.members[user_id].to_payload() for user_id in chosen])

    async def get_member(self, request: web.Request) -> web.Response:
        """``GET /guilds/{id}/members/{user id}``."""
        member = self._guild(request).members.get(int(request.match_info["user_id"]))
        if member is None:
            raise Refused(404, UNKNOWN_MEMBER, "Unknown Member")
        return json_response(member.to_payload())

    # -- interactions ----------------------------------------------------------------------

    async def callback(self, request: web.Request) -> web.Response:
        """``POST /interactions/{id}/{token}/callback``; the answer is shaped
        ``{"interaction": {...}, "resource": {...}}`` (discord.py asks ``with_response``)."""
        fake = self.fake
        handle = fake.interactions.get(int(request.match_info["interaction_id"]))
        if handle is None or handle.token != request.match_info["token"]:
            note = f"callback for an unknown interaction: {request.path}"
            raise Refused(404, UNKNOWN_INTERACTION, "Unknown interaction", record=note)
        if handle.callbacks:
            note = f"interaction {handle.id} answered twice"
            text = "Interaction has already been acknowledged."
            raise Refused(400, ALREADY_ACKNOWLEDGED, text, record=note)
        late = time.monotonic() - (handle.delivered_at or time.monotonic())
        if fake.interaction_deadline is not None and late > fake.interaction_deadline:
            note = f"interaction {handle.id} answered after {late:.1f}s (Discord allows 3)"
            raise Refused(404, UNKNOWN_INTERACTION, "Unknown interaction", record=note)

        body, files = request[BODY] or {}, request[FILES]
        kind, data = int(body.get("type") or 0), body.get("data") or {}
        message = self._perform_callback(handle, kind, data, files)
        record = CallbackRecord(handle.id, kind, data, tuple(files.values()))
        handle.callbacks.append(record)
        fake.callbacks.add(record)
        original = fake.bot_message(handle.original_message_id or 0)
        if original is not None:
            fake.messages.touched(original)  # its @original role may satisfy a waiter now
        if request.query.get("with_response") not in ("1", "true", "True"):
            return no_content()
        return json_response(
            {
                "interaction": {
                    "id": str(handle.id),
                    "type": handle.type,
                    "activity_instance_id": None,
                    "response_message_id": str(message.id) if message else None,
                    "response_message_loading": kind == CALLBACK_DEFERRED_MESSAGE,
                    "response_message_ephemeral": bool(message and message.ephemeral),
                },
                "resource": {"type": kind} | ({"message": message.data} if message else {}),
            }
        )

    def _perform_callback(
        self, handle: InteractionHandle, kind: int, data: dict[str, Any], files: dict[int, SentFile]
    ) -> BotMessage | None:
        """Carry out a callback; returns the message it created or updated, if any."""
        channel = self.fake.channel(handle.channel_id)
        assert channel is not None
        if kind == CALLBACK_MESSAGE:
            problems = message_problems(data, len(files), creating=True)
            refuse_invalid(f"response to interaction {handle.id}", problems)
            message = self.new_bot_message(
                channel, data, files, source="interaction", handle=handle
            )
            handle.original_message_id = message.id
            return message
        if kind == CALLBACK_DEFERRED_MESSAGE:
            placeholder = {"flags": int(data.get("flags") or 0) | LOADING}
            thinking = self.new_bot_message(
                channel, placeholder, {}, source="interaction", handle=handle
            )
            handle.original_message_id = thinking.id
            return thinking
        on_message = handle.type in (3, 5) and handle.message_id is not None
        if kind in (CALLBACK_DEFERRED_UPDATE, CALLBACK_UPDATE_MESSAGE) and on_message:
            handle.original_message_id = handle.message_id
            updated = self.fake.bot_message(handle.message_id or 0)
            if kind == CALLBACK_UPDATE_MESSAGE and updated is not None:
                self.edit(updated, data, files)
            return updated
        if kind == CALLBACK_AUTOCOMPLETE and handle.type == 4:
            return None
        if kind == CALLBACK_MODAL and handle.type in (2, 3):
            refuse_invalid("modal", modal_problems(data))
            return None
        record = f"callback type {kind} does not fit interaction type {handle.type}"
        raise Refused(400, INVALID_FORM_BODY, "Invalid Form Body", record=record)

    def _webhook_interaction(self, request: web.Request) -> InteractionHandle:
        token = request.match_info["token"]
        handle = next((h for h in self.fake.interactions.values() if h.token == token), None)
        if int(request.match_info["app_id"]) != self.fake.application_id or handle is None:
            record = f"unknown interaction webhook: {request.path}"
            raise Refused(404, UNKNOWN_WEBHOOK, "Unknown Webhook", record=record)
        if not handle.callbacks:
            record = f"webhook of interaction {handle.id} used before any callback"
            raise Refused(404, UNKNOWN_WEBHOOK, "Unknown Webhook", record=record)
        return handle

    def _webhook_message(self, request: web.Request) -> BotMessage:
        handle = self._webhook_interaction(request)
        wanted = request.match_info["message_id"]
        message_id = handle.original_message_id if wanted == "@original" else int(wanted)
        message = self.fake.bot_message(message_id or 0)
        ours = message is not None and (
            wanted == "@original" or message.interaction_id == handle.id
        )
        if message is None or message.deleted or not ours:
            raise Refused(404, UNKNOWN_MESSAGE, "Unknown Message")
        return message

    async def create_followup(self, request: web.Request) -> web.Response:
        """``POST /webhooks/{app}/{token}``: a follow-up. The first one after a type 5
        deferral fills in the "thinking…" message, as Discord does."""
        handle = self._webhook_interaction(request)
        body, files = request[BODY] or {}, request[FILES]
        problems = message_problems(body, len(files), creating=True)
        refuse_invalid(f"follow-up to interaction {handle.id}", problems)
        placeholder = self.fake.bot_message(handle.original_message_id or 0)
        if placeholder is not None and placeholder.is_placeholder and not placeholder.deleted:
            placeholder.source = "followup"
            flags = int(body.get("flags") or 0) | (placeholder.flags & EPHEMERAL)
            data = self.edit(placeholder, body | {"flags": flags}, files)
        else:
            channel = self.fake.channel(handle.channel_id)
            assert channel is not None
            message = self.new_bot_message(channel, body, files, source="followup", handle=handle)
            data = message.data
        if request.query.get("wait") in ("1", "true", "True"):
            return json_response(data)
        return no_content()

    async def get_webhook_message(self, request: web.Request) -> web.Response:
        """``GET /webhooks/{app}/{token}/messages/{@original | id}``."""
        return json_response(self._webhook_message(request).data)

    async def edit_webhook_message(self, request: web.Request) -> web.Response:
        """``PATCH /webhooks/{app}/{token}/messages/{@original | id}``."""
        message = self._webhook_message(request)
        return json_response(self.edit(message, request[BODY] or {}, request[FILES]))

    async def delete_webhook_message(self, request: web.Request) -> web.Response:
        """``DELETE /webhooks/{app}/{token}/messages/{@original | id}``."""
        self._delete(self._webhook_message(request))
        return no_content()

    # -- the CDN -------------------------------------------------------------------

    async def get_attachment(self, request: web.Request) -> web.StreamResponse:
        """Serve attachment bytes, as Discord's CDN does (not JSON)."""
        entry = self.fake.files.get(int(request.match_info["attachment_id"]))
        if entry is None or str(entry[1]) != request.match_info["channel_id"]:
            return web.Response(status=404, text="not found")
        spec = entry[0]
        content_type = spec.content_type or "application/octet-stream"
        return web.Response(body=spec.content, headers={"Content-Type": content_type})

    # -- bot messages -----------------------------------------------------------------

    def new_bot_message(
        self,
        channel: FakeChannel,
        body: dict[str, Any],
        files: dict[int, SentFile],
        *,
        source: str,
        handle: InteractionHandle | None = None,
    ) -> BotMessage:
        """Store a message the bot created and return it with its full message object."""
        fake = self.fake
        bot_member = channel.guild.members.get(fake.bot_user.id) if channel.guild else None
        reference = body.get("message_reference")
        if reference:
            message_type = 19
        elif handle is not None and handle.type == 2 and source == "interaction":
            message_type = 20
        else:
            message_type = 0
        data = message_payload(
            message_id=fake.ids.next(),
            channel=channel,
            author=fake.bot_user,
            member=bot_member,
            content=body.get("content") or "",
            embeds=body.get("embeds") or [],
            attachments=self._attachments(channel, body, files, kept=[]),
            components=body.get("components") or [],
            flags=int(body.get("flags") or 0),
            message_type=message_type,
        )
        if reference:
            data["message_reference"] = {
                "type": 0,
                "message_id": str(reference["message_id"]),
                "channel_id": str(channel.id),
            } | ({"guild_id": str(channel.guild.id)} if channel.guild else {})
            data["referenced_message"] = fake.find_message(int(reference["message_id"]))
        if handle is not None:
            invoker = handle.payload.get("member", handle.payload)["user"]
            data |= {
                "webhook_id": str(fake.application_id),
                "application_id": str(fake.application_id),
                "interaction_metadata": {
                    "id": str(handle.id),
                    "type": handle.type,
                    "user": invoker,
                    "authorizing_integration_owners": handle.payload[
                        "authorizing_integration_owners"
                    ],
                },
            }
        interaction_id = handle.id if handle else None
        message = BotMessage(data, body, list(files.values()), source, interaction_id)
        return fake.add_bot_message(message)

    def _attachments(
        self,
        channel: FakeChannel,
        body: dict[str, Any],
        files: dict[int, SentFile],
        *,
        kept: list[dict[str, Any]],
    ) -> list[dict[str, Any]]:
        """Attachment objects for uploaded ``files[n]`` after the ``kept`` existing ones."""
        described = {str(a["id"]): a for a in body.get("attachments") or [] if "id" in a}
        result = list(kept)
        for index, sent in sorted(files.items()):
            filename = described.get(str(index), {}).get("filename") or sent.filename
            spec = AttachmentSpec(filename, sent.content, sent.content_type)
            result.append(self.fake.serve_attachment(channel.id, spec))
        return result

    def edit(
        self, message: BotMessage, body: dict[str, Any], files: dict[int, SentFile]
    ) -> dict[str, Any]:
        """Apply an edit the way Discord does and return the updated message object."""
        problems = message_problems(body, len(files), creating=False)
        refuse_invalid(f"edit of message {message.id}", problems)
        data = message.data
        for key in ("content", "embeds", "components"):
            if key in body:
                data[key] = body[key] or ("" if key == "content" else [])
        if "flags" in body:  # only some flags can change; ephemeral stays as it was
            changed = int(body["flags"] or 0) & ~(LOADING | EPHEMERAL)
            data["flags"] = (data.get("flags", 0) & EPHEMERAL) | changed
        else:
            data["flags"] = data.get("flags", 0) & ~LOADING
        if "attachments" in body or files:
            previous = {a["id"]: a for a in data["attachments"]}
            if "attachments" in body:
                kept_ids = [str(a["id"]) for a in body["attachments"] or []]
                kept = [previous[i] for i in kept_ids if i in previous]
            else:
                kept = list(previous.values())
            channel = self.fake.channel(message.channel_id)
            assert channel is not None
            data["attachments"] = self._attachments(channel, body, files, kept=kept)
        data["edited_timestamp"] = iso_now()
        message.edits.append(body)
        message.files += list(files.values())
        message.updated_at = time.monotonic()
        self.fake.messages.touched(message)
        return data

    def _delete(self, message: BotMessage) -> None:
        message.deleted = True
        message.updated_at = time.monotonic()
        self.fake.messages.touched(message)


DISCORD_LOCALES = frozenset(
    {
        "id", "da", "de", "en-GB", "en-US", "es-ES", "es-419", "fr", "hr", "it", "lt", "hu",
        "nl", "no", "pl", "pt-BR", "ro", "fi", "sv-SE", "vi", "tr", "cs", "el", "bg", "ru",
        "uk", "hi", "th", "zh-CN", "ja", "zh-TW", "ko",
    }
)  # fmt: skip


def command_problems(command: dict[str, Any]) -> list[str]:
    """What Discord would refuse in a command registration (the common mistakes)."""
    problems: list[str] = []
    name = command.get("name", "")
    kind = command.get("type", 1)
    if kind == 1 and (not re.fullmatch(r"[-_\w]{1,32}", name) or name != name.lower()):
        problems.append(f"command name {name!r} must be 1-32 lowercase letters, digits, - or _")
    if kind == 1 and not 1 <= len(command.get("description", "")) <= 100:
        problems.append(f"/{name}: description must be 1-100 characters")
    if kind != 1 and not 1 <= len(name) <= 32:
        problems.append(f"context-menu command name {name!r} must be 1-32 characters")
    for locale, translated in (command.get("name_localizations") or {}).items():
        if locale not in DISCORD_LOCALES:
            problems.append(f"/{name}: {locale!r} is not a Discord locale")
        elif kind == 1 and (
            not re.fullmatch(r"[-_\w]{1,32}", translated) or translated != translated.lower()
        ):
            problems.append(f"/{name}: the {locale} name {translated!r} is not a valid name")
    for locale, translated in (command.get("description_localizations") or {}).items():
        if locale not in DISCORD_LOCALES or not 1 <= len(translated) <= 100:
            problems.append(f"/{name}: bad {locale} description {translated!r}")
    options = command.get("options") or []
    if len(options) > 25:
        problems.append(f"/{name}: {len(options)} options, the limit is 25")
    required = [bool(o.get("required")) for o in options if o.get("type") not in (1, 2)]
    if required != sorted(required, reverse=True):
        problems.append(f"/{name}: required options must come before optional ones")
    for option in options:
        if len(option.get("choices") or []) > 25:
            problems.append(f"/{name} {option.get('name')}: more than 25 choices")
        if option.get("type") in (1, 2):
            problems += command_problems(option | {"type": 1})
    return problems
