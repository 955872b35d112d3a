"""The gateway websocket: HELLO/IDENTIFY/READY, heartbeats, sharding, RESUME with replay."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import logging
import secrets
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from aiohttp import WSMsgType, web

from .records import ResumeRecord
from .snowflakes import shard_of

if TYPE_CHECKING:
    from .server import FakeDiscord

log = logging.getLogger(__name__)

OP_DISPATCH = 0
OP_HEARTBEAT = 1
OP_IDENTIFY = 2
OP_PRESENCE_UPDATE = 3
OP_VOICE_STATE_UPDATE = 4
OP_RESUME = 6
OP_RECONNECT = 7
OP_REQUEST_GUILD_MEMBERS = 8
OP_INVALID_SESSION = 9
OP_HELLO = 10
OP_HEARTBEAT_ACK = 11

INTENT_GUILD_MEMBERS = 1 << 1
INTENT_GUILD_PRESENCES = 1 << 8
INTENT_GUILD_MESSAGES = 1 << 9
INTENT_DIRECT_MESSAGES = 1 << 12
INTENT_MESSAGE_CONTENT = 1 << 15
PRIVILEGED_INTENTS = INTENT_GUILD_MEMBERS | INTENT_GUILD_PRESENCES | INTENT_MESSAGE_CONTENT

CLOSE_AUTHENTICATION_FAILED = 4004
CLOSE_ALREADY_AUTHENTICATED = 4005
CLOSE_INVALID_SHARD = 4010
CLOSE_INVALID_INTENTS = 4013
CLOSE_DISALLOWED_INTENTS = 4014


@dataclass(eq=False)
class GatewayConnection:
    """One websocket opened by a client, with the heartbeats it sent."""

    id: int
    ws: web.WebSocketResponse = field(repr=False)
    path: str
    opened_at: float = field(default_factory=time.monotonic)
    session: GatewaySession | None = None
    heartbeats: list[float] = field(default_factory=list)
    heartbeat_sequences: list[int | None] = field(default_factory=list)
    closed_at: float | None = None
    close_code: int | None = None
    _send_lock: asyncio.Lock = field(default_factory=asyncio.Lock, repr=False)

    @property
    def shard_id(self) -> int | None:
        """The shard of the session on this connection (None before IDENTIFY/RESUME)."""
        return self.session.shard_id if self.session else None

    @property
    def open(self) -> bool:
        """Whether frames can still be sent."""
        return self.closed_at is None and not self.ws.closed

    async def send(self, payload: dict[str, Any]) -> bool:
        """Send one text frame; False when the socket is already gone."""
        if not self.open:
            return False
        async with self._send_lock:
            try:
                await self.ws.send_str(json.dumps(payload))
            except (ConnectionError, RuntimeError):
                return False
        return True

    def heartbeat_gaps(self) -> list[float]:
        """Seconds between consecutive heartbeats the client sent on this connection."""
        return [b - a for a, b in itertools.pairwise(self.heartbeats)]

    def max_heartbeat_gap(self) -> float:
        """The longest wait between heartbeats, counting the wait since the last one
        while the connection is still open (a client blocked right now shows up)."""
        gaps = self.heartbeat_gaps()
        if self.heartbeats and self.open:
            gaps.append(time.monotonic() - self.heartbeats[-1])
        return max(gaps, default=0.0)


@dataclass(eq=False)
class GatewaySession:
    """An IDENTIFYed session. It outlives its connection so that a RESUME can replay
    the events sent while the client was away; sequence numbers are per session."""

    session_id: str
    shard_id: int
    shard_count: int
    intents: int
    sharded: bool
    sequence: int = 0
    events: list[dict[str, Any]] = field(default_factory=list, repr=False)
    connection: GatewayConnection | None = None
    connections: list[GatewayConnection] = field(default_factory=list, repr=False)
    superseded: bool = False
    presence: dict[str, Any] | None = None
    lock: asyncio.Lock = field(default_factory=asyncio.Lock, repr=False)

    def owns_guild(self, guild_id: int) -> bool:
        """Whether Discord would route this guild to this session's shard."""
        return shard_of(guild_id, self.shard_count) == self.shard_id

    def has_intent(self, intent: int) -> bool:
        """Whether the client asked for ``intent`` in IDENTIFY."""
        return bool(self.intents & intent)

    async def dispatch(self, event: str, data: dict[str, Any]) -> int:
        """Number, keep (for replay) and send an event; a detached session only keeps it."""
        async with self.lock:
            return await self.dispatch_locked(event, data)

    async def dispatch_locked(self, event: str, data: dict[str, Any]) -> int:
        """:meth:`dispatch` for a caller that already holds :attr:`lock`."""
        self.sequence += 1
        frame = {"op": OP_DISPATCH, "t": event, "s": self.sequence, "d": data}
        self.events.append(frame)
        if self.connection is not None:
            await self.connection.send(frame)
        return self.sequence


@dataclass
class HeartbeatAckPolicy:
    """How the fake answers heartbeats: after ``delay`` seconds, or never when ``stalled``."""

    delay: float = 0.0
    stalled: bool = False


class Gateway:
    """Serves ``/gateway`` (and ``/resume``, the ``resume_gateway_url``) for many clients."""

    def __init__(self, fake: FakeDiscord) -> None:
        self.fake = fake
        self.sessions: list[GatewaySession] = []
        self.connections: list[GatewayConnection] = []
        self.ack_policies: dict[int | None, HeartbeatAckPolicy] = {None: HeartbeatAckPolicy()}
        self._connection_ids = itertools.count(1)
        self._tasks: set[asyncio.Task[None]] = set()

    # -- routing -----------------------------------------------------------------

    def live_sessions(self) -> list[GatewaySession]:
        """Sessions that events can still go to, newest first."""
        return [s for s in reversed(self.sessions) if not s.superseded]

    def session_for_guild(self, guild_id: int | None) -> GatewaySession | None:
        """The session Discord would send a guild's events to (DMs go to shard 0)."""
        for session in self.live_sessions():
            if guild_id is None and session.shard_id == 0:
                return session
            if guild_id is not None and session.owns_guild(guild_id):
                return session
        return None

    def session_for_shard(self, shard_id: int) -> GatewaySession:
        """The newest live session of a shard."""
        for session in self.live_sessions():
            if session.shard_id == shard_id:
                return session
        raise LookupError(f"fake Discord: no gateway session for shard {shard_id}")

    def ack_policy(self, shard_id: int | None) -> HeartbeatAckPolicy:
        """The heartbeat policy for a shard, falling back to the default one."""
        return self.ack_policies.get(shard_id, self.ack_policies[None])

    # -- the websocket --------------------------------------------------------------

    async def handle(self, request: web.Request) -> web.WebSocketResponse:
        """aiohttp handler for one client websocket."""
        if request.query.get("encoding", "json") != "json":
            self.fake.record_error(f"gateway asked for encoding {request.query['encoding']!r}")
        ws = web.WebSocketResponse(max_msg_size=0)
        await ws.prepare(request)
        conn = GatewayConnection(next(self._connection_ids), ws, request.path)
        self.connections.append(conn)
        interval_ms = round(self.fake.heartbeat_interval * 1000)
        await conn.send({"op": OP_HELLO, "d": {"heartbeat_interval": interval_ms}})
        try:
            async for message in ws:
                if message.type is not WSMsgType.TEXT:
                    self.fake.record_error(f"gateway got a non-text frame: {message.type!r}")
                    continue
                await self._on_frame(conn, json.loads(message.data))
        finally:
            conn.closed_at = time.monotonic()
            conn.close_code = ws.close_code
            session = conn.session
            if session is not None and session.connection is conn:
                session.connection = None
        return ws

    async def _on_frame(self, conn: GatewayConnection, frame: dict[str, Any]) -> None:
        op = frame.get("op")
        data: Any = frame.get("d")  # an object, a number or null, depending on op
        if op == OP_HEARTBEAT:
            self._on_heartbeat(conn, data)
        elif op == OP_IDENTIFY:
            await self._on_identify(conn, data)
        elif op == OP_RESUME:
            await self._on_resume(conn, data)
        elif op == OP_REQUEST_GUILD_MEMBERS:
            await self._on_request_members(conn, data)
        elif op == OP_PRESENCE_UPDATE:
            if conn.session is not None:
                conn.session.presence = data
        else:
            self.fake.record_error(f"gateway got unsupported op {op}: {frame}")

    def _on_heartbeat(self, conn: GatewayConnection, sequence: int | None) -> None:
        conn.heartbeats.append(time.monotonic())
        conn.heartbeat_sequences.append(sequence)
        policy = self.ack_policy(conn.shard_id)
        if policy.stalled:
            return
        if policy.delay <= 0:
            self._spawn(conn.send({"op": OP_HEARTBEAT_ACK}))
        else:
            self._spawn(self._ack_later(conn, policy.delay))

    async def _ack_later(self, conn: GatewayConnection, delay: float) -> None:
        await asyncio.sleep(delay)
        await conn.send({"op": OP_HEARTBEAT_ACK})

    def _spawn(self, coro: Any) -> None:
        task = asyncio.create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _on_identify(self, conn: GatewayConnection, data: dict[str, Any]) -> None:
        fake = self.fake
        if conn.session is not None:
            await self._close(conn, CLOSE_ALREADY_AUTHENTICATED, "already authenticated")
            return
        if data.get("token") != fake.token:
            await self._close(conn, CLOSE_AUTHENTICATION_FAILED, "authentication failed")
            return
        intents = data.get("intents")
        if not isinstance(intents, int):
            await self._close(conn, CLOSE_INVALID_INTENTS, "invalid intents")
            return
        if intents & PRIVILEGED_INTENTS & ~fake.privileged_intents:
            await self._close(conn, CLOSE_DISALLOWED_INTENTS, "disallowed intents")
            return
        shard = data.get("shard")
        shard_id, shard_count = shard if shard else (0, 1)
        if not 0 <= shard_id < shard_count:
            await self._close(conn, CLOSE_INVALID_SHARD, "invalid shard")
            return

        for old in self.live_sessions():
            if (old.shard_id, old.shard_count) == (shard_id, shard_count):
                old.superseded = True
        session = GatewaySession(
            secrets.token_hex(16), shard_id, shard_count, intents, sharded=bool(shard)
        )
        session.presence = data.get("presence")
        guilds = [g for g in fake.guilds if session.owns_guild(g.id)]
        async with session.lock:  # events injected meanwhile queue up behind READY
            self.sessions.append(session)
            session.connection = conn
            session.connections.append(conn)
            conn.session = session
            await session.dispatch_locked("READY", self._ready_payload(session, guilds))
            for guild in guilds:
                await session.dispatch_locked("GUILD_CREATE", guild.to_payload())
        log.debug("shard %s/%s identified with %d guilds", shard_id, shard_count, len(guilds))
        fake.identified.add(session)

    def _ready_payload(self, session: GatewaySession, guilds: list[Any]) -> dict[str, Any]:
        fake = self.fake
        payload: dict[str, Any] = {
            "v": 10,
            "user": fake.bot_user.to_payload() | {"verified": True, "mfa_enabled": False},
            "guilds": [{"id": str(g.id), "unavailable": True} for g in guilds],
            "session_id": session.session_id,
            "session_type": "normal",
            "resume_gateway_url": fake.resume_gateway_url,
            "application": {"id": str(fake.application_id), "flags": 0},
            "private_channels": [],
            "presences": [],
            "relationships": [],
            "_trace": ["fake-discord"],
        }
        if session.sharded:
            payload["shard"] = [session.shard_id, session.shard_count]
        return payload

    async def _on_resume(self, conn: GatewayConnection, data: dict[str, Any]) -> None:
        session = next((s for s in self.sessions if s.session_id == data.get("session_id")), None)
        if session is None or session.superseded or data.get("token") != self.fake.token:
            await conn.send({"op": OP_INVALID_SESSION, "d": False})
            return
        last_seen = data.get("seq") or 0
        async with session.lock:
            previous = session.connection
            session.connection = conn
            session.connections.append(conn)
            conn.session = session
            missed = [frame for frame in session.events if frame["s"] > last_seen]
            for frame in missed:
                await conn.send(frame)
            session.sequence += 1
            resumed = {"op": OP_DISPATCH, "t": "RESUMED", "s": session.sequence, "d": {}}
            await conn.send(resumed)
        if previous is not None and previous is not conn:
            await self._close(previous, 4000, "resumed elsewhere")
        log.debug("session %s resumed, %d events replayed", session.session_id, len(missed))
        self.fake.resumes.add(ResumeRecord(session.session_id, session.shard_id, len(missed)))

    async def _on_request_members(self, conn: GatewayConnection, data: dict[str, Any]) -> None:
        session = conn.session
        if session is None:
            self.fake.record_error("REQUEST_GUILD_MEMBERS before IDENTIFY")
            return
        guild_ids = data["guild_id"]
        for guild_id in guild_ids if isinstance(guild_ids, list) else [guild_ids]:
            guild = self.fake.guild(int(guild_id))
            members = list(guild.members.values())
            if data.get("user_ids"):
                wanted = {int(u) for u in data["user_ids"]}
                members = [m for m in members if m.id in wanted]
            if data.get("query"):
                members = [m for m in members if m.user.username.startswith(data["query"])]
            if data.get("limit"):
                members = members[: data["limit"]]
            chunk = {
                "guild_id": str(guild.id),
                "members": [m.to_payload() for m in members],
                "chunk_index": 0,
                "chunk_count": 1,
                "not_found": [],
            }
            if data.get("nonce"):
                chunk["nonce"] = data["nonce"]
            await session.dispatch("GUILD_MEMBERS_CHUNK", chunk)

    async def _close(self, conn: GatewayConnection, code: int, reason: str) -> None:
        conn.closed_at = conn.closed_at or time.monotonic()
        with contextlib.suppress(ConnectionError, RuntimeError):
            await conn.ws.close(code=code, message=reason.encode())

    # -- faults ----------------------------------------------------------------------

    async def disconnect(self, shard_id: int, code: int) -> GatewaySession:
        """Close the shard's socket; later events wait in the session until RESUME."""
        session = self.session_for_shard(shard_id)
        async with session.lock:
            conn, session.connection = session.connection, None
        if conn is None:
            raise LookupError(f"fake Discord: shard {shard_id} is not connected")
        await self._close(conn, code, "disconnected by the test")
        return session

    async def send_op(self, shard_id: int, op: int, data: Any = None) -> None:
        """Send a non-dispatch opcode (RECONNECT, INVALID_SESSION) to a shard."""
        session = self.session_for_shard(shard_id)
        if session.connection is None or not await session.connection.send({"op": op, "d": data}):
            raise LookupError(f"fake Discord: shard {shard_id} is not connected")
        if op == OP_INVALID_SESSION and not data:
            session.superseded = True

    async def close(self) -> None:
        """Close every socket (server shutdown) and drop pending heartbeat ACKs."""
        for task in list(self._tasks):
            task.cancel()
        for conn in self.connections:
            if conn.open:
                await self._close(conn, 1001, "fake Discord is shutting down")
