"""The world the fake serves: users, guilds, roles, channels and members, as Discord payloads."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .snowflakes import SnowflakeFactory

# Permission bits (https://discord.com/developers/docs/topics/permissions).
CREATE_INSTANT_INVITE = 1 << 0
ADMINISTRATOR = 1 << 3
MANAGE_CHANNELS = 1 << 4
MANAGE_GUILD = 1 << 5
ADD_REACTIONS = 1 << 6
VIEW_CHANNEL = 1 << 10
SEND_MESSAGES = 1 << 11
MANAGE_MESSAGES = 1 << 13
EMBED_LINKS = 1 << 14
ATTACH_FILES = 1 << 15
READ_MESSAGE_HISTORY = 1 << 16
USE_EXTERNAL_EMOJIS = 1 << 18
CHANGE_NICKNAME = 1 << 26
USE_APPLICATION_COMMANDS = 1 << 31
SEND_MESSAGES_IN_THREADS = 1 << 38
ALL_PERMISSIONS = (1 << 53) - 1

EVERYONE_PERMISSIONS = (
    CREATE_INSTANT_INVITE
    | ADD_REACTIONS
    | VIEW_CHANNEL
    | SEND_MESSAGES
    | EMBED_LINKS
    | ATTACH_FILES
    | READ_MESSAGE_HISTORY
    | USE_EXTERNAL_EMOJIS
    | CHANGE_NICKNAME
    | USE_APPLICATION_COMMANDS
    | SEND_MESSAGES_IN_THREADS
)
"""What ``@everyone`` may do in the fake's guilds (close to a new server's defaults)."""

TEXT_CHANNEL = 0
DM_CHANNEL = 1


def iso_now() -> str:
    """The current time the way Discord writes timestamps."""
    return datetime.now(UTC).isoformat()


@dataclass(eq=False)
class FakeUser:
    """A Discord account: a person or the bot under test."""

    id: int
    username: str
    bot: bool = False
    locale: str = "en-US"
    """The language of the person's Discord client (an interaction's ``locale``)."""

    def to_payload(self) -> dict[str, Any]:
        """The user object Discord sends."""
        return {
            "id": str(self.id),
            "username": self.username,
            "global_name": None if self.bot else self.username,
            "discriminator": "0",
            "avatar": None,
            "bot": self.bot,
            "public_flags": 0,
        }


@dataclass(eq=False)
class FakeRole:
    """A guild role; ``@everyone`` has the guild's id."""

    id: int
    name: str
    permissions: int = 0
    position: int = 0
    managed_by_bot: int | None = None

    def to_payload(self) -> dict[str, Any]:
        """The role object Discord sends."""
        payload: dict[str, Any] = {
            "id": str(self.id),
            "name": self.name,
            "color": 0,
            "colors": {"primary_color": 0, "secondary_color": None, "tertiary_color": None},
            "hoist": False,
            "icon": None,
            "unicode_emoji": None,
            "position": self.position,
            "permissions": str(self.permissions),
            "managed": self.managed_by_bot is not None,
            "mentionable": False,
            "flags": 0,
        }
        if self.managed_by_bot is not None:
            payload["tags"] = {"bot_id": str(self.managed_by_bot)}
        return payload


@dataclass(eq=False)
class FakeChannel:
    """A guild text channel, or a DM channel when ``guild`` is None."""

    id: int
    name: str
    guild: FakeGuild | None = None
    type: int = TEXT_CHANNEL
    position: int = 0
    recipient: FakeUser | None = None

    def to_payload(self) -> dict[str, Any]:
        """The channel object Discord sends."""
        if self.guild is None:
            recipients = [self.recipient.to_payload()] if self.recipient else []
            return {"id": str(self.id), "type": self.type, "recipients": recipients}
        return {
            "id": str(self.id),
            "type": self.type,
            "guild_id": str(self.guild.id),
            "name": self.name,
            "position": self.position,
            "permission_overwrites": [],
            "nsfw": False,
            "parent_id": None,
            "topic": None,
            "last_message_id": None,
            "rate_limit_per_user": 0,
            "flags": 0,
        }


@dataclass(eq=False)
class FakeMember:
    """A user's membership of one guild, with the roles that grant permissions."""

    user: FakeUser
    guild: FakeGuild
    roles: list[FakeRole] = field(default_factory=list)
    joined_at: str = field(default_factory=iso_now)

    @property
    def id(self) -> int:
        """The member's user id."""
        return self.user.id

    @property
    def permissions(self) -> int:
        """Guild-wide permissions from ``@everyone`` and the member's roles (owner: all)."""
        if self.guild.owner_id == self.user.id:
            return ALL_PERMISSIONS
        value = self.guild.everyone.permissions
        for role in self.roles:
            value |= role.permissions
        return ALL_PERMISSIONS if value & ADMINISTRATOR else value

    def to_payload(self, *, with_user: bool = True, with_permissions: bool = False) -> dict:
        """The guild member object; MESSAGE_CREATE sends it without ``user``."""
        payload: dict[str, Any] = {
            "roles": [str(role.id) for role in self.roles],
            "joined_at": self.joined_at,
            "nick": None,
            "avatar": None,
            "banner": None,
            "deaf": False,
            "mute": False,
            "flags": 0,
            "pending": False,
            "premium_since": None,
            "communication_disabled_until": None,
        }
        if with_user:
            payload["user"] = self.user.to_payload()
        if with_permissions:
            payload["permissions"] = str(self.permissions)
        return payload


@dataclass(eq=False)
class FakeGuild:
    """A server: its channels, roles and members. Build it with :meth:`FakeDiscord.add_guild`."""

    id: int
    name: str
    owner_id: int
    ids: SnowflakeFactory = field(repr=False)
    channels: list[FakeChannel] = field(default_factory=list)
    roles: list[FakeRole] = field(default_factory=list)
    members: dict[int, FakeMember] = field(default_factory=dict)
    preferred_locale: str = "en-US"
    """The server's language (Server Settings → Community → Overview)."""

    def __post_init__(self) -> None:
        if not self.roles:
            self.roles.append(FakeRole(self.id, "@everyone", EVERYONE_PERMISSIONS))

    @property
    def everyone(self) -> FakeRole:
        """The ``@everyone`` role."""
        return self.roles[0]

    def add_text_channel(self, name: str = "general") -> FakeChannel:
        """Create a text channel in this guild."""
        channel = FakeChannel(self.ids.next(), name, self, position=len(self.channels))
        self.channels.append(channel)
        return channel

    def add_role(self, name: str, permissions: int = 0) -> FakeRole:
        """Create a role granting ``permissions`` (bit flags, e.g. ``MANAGE_GUILD``)."""
        role = FakeRole(self.ids.next(), name, permissions, position=len(self.roles))
        self.roles.append(role)
        return role

    def add_member(
        self,
        user: FakeUser | str,
        *,
        permissions: int = 0,
        roles: Iterable[FakeRole] = (),
    ) -> FakeMember:
        """Add a person (a new user when given a name); ``permissions`` adds a role of their own.

        ``guild.add_member("admin", permissions=MANAGE_GUILD)`` makes a server admin;
        ``guild.add_member("someone")`` an ordinary member.
        """
        if isinstance(user, str):
            user = FakeUser(self.ids.next(), user)
        member_roles = list(roles)
        if permissions:
            member_roles.append(self.add_role(f"{user.username}-role", permissions))
        member = FakeMember(user, self, member_roles)
        self.members[user.id] = member
        return member

    def channel(self, channel_id: int) -> FakeChannel | None:
        """The channel with this id, if it belongs to this guild."""
        return next((c for c in self.channels if c.id == channel_id), None)

    def to_payload(self) -> dict[str, Any]:
        """The full GUILD_CREATE payload (every member included, so nothing is chunked)."""
        return {
            "id": str(self.id),
            "name": self.name,
            "icon": None,
            "splash": None,
            "discovery_splash": None,
            "banner": None,
            "description": None,
            "owner_id": str(self.owner_id),
            "afk_channel_id": None,
            "afk_timeout": 300,
            "verification_level": 0,
            "default_message_notifications": 0,
            "explicit_content_filter": 0,
            "mfa_level": 0,
            "nsfw_level": 0,
            "premium_tier": 0,
            "premium_subscription_count": 0,
            "system_channel_id": None,
            "system_channel_flags": 0,
            "rules_channel_id": None,
            "public_updates_channel_id": None,
            "preferred_locale": self.preferred_locale,
            "features": [],
            "emojis": [],
            "stickers": [],
            "roles": [role.to_payload() for role in self.roles],
            "channels": [channel.to_payload() for channel in self.channels],
            "threads": [],
            "members": [member.to_payload() for member in self.members.values()],
            "member_count": len(self.members),
            "presences": [],
            "voice_states": [],
            "stage_instances": [],
            "guild_scheduled_events": [],
            "soundboard_sounds": [],
            "large": False,
            "unavailable": False,
            "joined_at": iso_now(),
        }


@dataclass(frozen=True)
class AttachmentSpec:
    """A file a user attaches to a message or a slash command.

    By default the fake serves ``content`` under ``/attachments/...``; pass ``url``
    (e.g. a route added with :meth:`FakeDiscord.add_route`) to serve it some other
    way, and ``size`` to announce a size different from what is served.
    """

    filename: str
    content: bytes = b""
    content_type: str | None = None
    url: str | None = None
    size: int | None = None
    width: int | None = None
    height: int | None = None


def as_attachment_spec(value: AttachmentSpec | tuple) -> AttachmentSpec:
    """Accept ``AttachmentSpec`` or a ``(filename, bytes, content_type)`` tuple."""
    if isinstance(value, AttachmentSpec):
        return value
    filename, content, *rest = value
    return AttachmentSpec(filename, content, rest[0] if rest else None)
