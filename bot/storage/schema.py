"""The database schema: declarative models on one naming convention (Alembic mirrors it).

Tenancy. A Discord server is the unit of everything its community makes, and every row of
it says which server it belongs to:

- ``guild_id`` on tables that only ever hold a server's data: settings, watched channels,
  pictures (``NULL`` for a picture answered in a DM: it never becomes training data),
  votes, training runs. A vote's ``guild_id`` is its face's picture's server.
- ``scope_id`` (never NULL) on tables whose rows may also belong to the operator's *base*,
  which every server sees: characters, their aliases and training examples. It is the
  server's id, or ``BASE_SCOPE_ID`` (0) for the base (see ``bot.storage.scope``).

A character is unique by ``(scope_id, key)``: the same key in two servers is two
characters, so one server can never rename, merge or relabel another's. Its ``name`` is
the display name as people write it ("Nishikino Maki"), its ``key`` the normalised name
names are matched by (``bot.names.normalise_name``); an alias is another key for the
same character, unique within the scope too. A training example's ``scope_id`` is whose
data it is; its character is in the same scope (phase B may let a server's example name a
base character, to correct the base model for that server, so this is not a foreign key
over both columns). Faces and predictions belong to their picture's server.

Models. What a model needs at run time is in the database, so bot processes on different
machines need only the database: ``backbones`` holds each backbone ``.tflite`` once (by its
SHA-256), ``model_versions`` each scope's heads (small) naming the backbone they run on.
At most one version is active per scope; a server without one is answered by the base's.
Every activation appends to ``serving_changes``, which every process polls cheaply to drop
what it cached of that scope. ``example_embeddings`` caches each example's embedding per
backbone, so refitting a head needs no backbone run for examples already seen.
"""

from __future__ import annotations

import enum
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    DateTime,
    Dialect,
    Enum,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Text,
    UniqueConstraint,
    false,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from sqlalchemy.types import TypeDecorator

from bot.names import NAME_LENGTH

NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

VERSION_LENGTH = 64

# Settings of a server that never changed them.
DEFAULT_AUTO_REPLY = True
DEFAULT_LABELS_SHOWN = 3
DEFAULT_VOTES_NEEDED = 2


def utcnow() -> datetime:
    """The current time, timezone-aware in UTC (the only kind of time stored)."""
    return datetime.now(UTC)


class UTCDateTime(TypeDecorator[datetime]):
    """A timezone-aware UTC ``datetime``; SQLite, which has no time zones, stores it naive."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetimes are ambiguous; pass a timezone-aware one")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class VoteStatus(enum.StrEnum):
    """Whether a vote counts towards its face's label or waits for a moderator."""

    COUNTED = "counted"
    HELD = "held"
    DISMISSED = "dismissed"


class HoldReason(enum.StrEnum):
    """Why a vote waits for a moderator."""

    NEW_ACCOUNT = "new_account"
    """The voter's account is new, and the vote disagrees with the model."""
    CONTRADICTS_MODEL = "contradicts"
    """It names another character than a confident answer, and nobody else agreed yet."""


class ExampleSource(enum.StrEnum):
    """How a training example was confirmed."""

    VOTE = "vote"
    TEACH = "teach"
    MODERATOR = "moderator"
    IMPORT = "import"
    """Imported by the operator with the base model's training pictures."""


class RunStatus(enum.StrEnum):
    """The life of one training run."""

    QUEUED = "queued"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    REJECTED = "rejected"


def _str_enum(cls: type[enum.StrEnum], name: str) -> Enum:
    # A VARCHAR with a CHECK constraint: portable, and new values need no ALTER TYPE.
    return Enum(
        cls,
        name=name,
        native_enum=False,
        create_constraint=True,
        length=16,
        values_callable=lambda members: [member.value for member in members],
    )


def _created_at() -> Mapped[datetime]:
    return mapped_column(UTCDateTime(), default=utcnow)


class Base(DeclarativeBase):
    """The declarative base; its metadata is Alembic's ``target_metadata``."""

    metadata = MetaData(naming_convention=NAMING_CONVENTION)


class GuildSettings(Base):
    """Per-server settings; a server without a row uses the defaults."""

    __tablename__ = "guild_settings"

    guild_id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    auto_reply: Mapped[bool] = mapped_column(Boolean, default=DEFAULT_AUTO_REPLY)
    labels_shown: Mapped[int] = mapped_column(Integer, default=DEFAULT_LABELS_SHOWN)
    votes_needed: Mapped[int] = mapped_column(Integer, default=DEFAULT_VOTES_NEEDED)
    watch_all: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    """Answer pictures in every channel; otherwise only in the watched ones (opt-in)."""
    welcomed_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    """When the server's admin was told, once, how to start (a fresh install, no model)."""
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, onupdate=utcnow)


class WatchedChannel(Base):
    """A channel whose pictures the bot answers without being asked."""

    __tablename__ = "watched_channels"

    guild_id: Mapped[int] = mapped_column(
        BigInteger, ForeignKey("guild_settings.guild_id", ondelete="CASCADE"), primary_key=True
    )
    channel_id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)


class Character(Base):
    """A character the bot can name in one scope: its display name and its matching key."""

    __tablename__ = "characters"
    __table_args__ = (UniqueConstraint("scope_id", "key"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    scope_id: Mapped[int] = mapped_column(BigInteger)
    key: Mapped[str] = mapped_column(String(NAME_LENGTH))
    name: Mapped[str] = mapped_column(String(NAME_LENGTH))
    created_at: Mapped[datetime] = _created_at()
    created_by: Mapped[int | None] = mapped_column(BigInteger)
    hidden: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    """Left out of menus, autocomplete and ``/characters`` (a moderator hid it)."""


class CharacterAlias(Base):
    """Another name of a character (a nickname, another spelling), matched by its key."""

    __tablename__ = "character_aliases"
    __table_args__ = (UniqueConstraint("scope_id", "key"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    character_id: Mapped[int] = mapped_column(
        ForeignKey("characters.id", ondelete="CASCADE"), index=True
    )
    scope_id: Mapped[int] = mapped_column(BigInteger)
    key: Mapped[str] = mapped_column(String(NAME_LENGTH))
    name: Mapped[str] = mapped_column(String(NAME_LENGTH))


class Image(Base):
    """A picture the bot answered; one row per (message, picture) so retries do not duplicate."""

    __tablename__ = "images"
    __table_args__ = (UniqueConstraint("message_id", "sha256"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    sha256: Mapped[str] = mapped_column(String(64))
    width: Mapped[int] = mapped_column(Integer)
    height: Mapped[int] = mapped_column(Integer)
    guild_id: Mapped[int | None] = mapped_column(BigInteger, index=True)
    channel_id: Mapped[int] = mapped_column(BigInteger)
    message_id: Mapped[int] = mapped_column(BigInteger)
    author_id: Mapped[int] = mapped_column(BigInteger, index=True)
    created_at: Mapped[datetime] = _created_at()


class Face(Base):
    """One face found in an image, with the crop exactly as it was classified."""

    __tablename__ = "faces"
    __table_args__ = (UniqueConstraint("image_id", "position"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    image_id: Mapped[int] = mapped_column(ForeignKey("images.id", ondelete="CASCADE"))
    position: Mapped[int] = mapped_column(Integer)  # 0 is the picture's main face
    x: Mapped[int] = mapped_column(Integer)
    y: Mapped[int] = mapped_column(Integer)
    w: Mapped[int] = mapped_column(Integer)
    h: Mapped[int] = mapped_column(Integer)
    detector: Mapped[str] = mapped_column(String(32))
    crop_image: Mapped[bytes] = mapped_column(LargeBinary)
    created_at: Mapped[datetime] = _created_at()


class Prediction(Base):
    """One ranked label the model gave a face (rank 0 is its answer)."""

    __tablename__ = "predictions"
    __table_args__ = (UniqueConstraint("face_id", "model_version", "rank"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    face_id: Mapped[int] = mapped_column(ForeignKey("faces.id", ondelete="CASCADE"))
    model_version: Mapped[str] = mapped_column(String(VERSION_LENGTH))
    label: Mapped[str] = mapped_column(String(NAME_LENGTH))
    score: Mapped[float] = mapped_column(Float)
    rank: Mapped[int] = mapped_column(Integer)
    unsure: Mapped[bool] = mapped_column(Boolean)


class Vote(Base):
    """What one person says a face is; a second vote by the same person replaces the first."""

    __tablename__ = "votes"
    __table_args__ = (
        UniqueConstraint("face_id", "user_id"),
        Index(None, "user_id", "created_at"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    face_id: Mapped[int] = mapped_column(ForeignKey("faces.id", ondelete="CASCADE"))
    user_id: Mapped[int] = mapped_column(BigInteger)
    guild_id: Mapped[int | None] = mapped_column(BigInteger)
    label: Mapped[str] = mapped_column(String(NAME_LENGTH))
    is_confirmation: Mapped[bool] = mapped_column(Boolean)
    status: Mapped[VoteStatus] = mapped_column(
        _str_enum(VoteStatus, "vote_status"), default=VoteStatus.COUNTED
    )
    hold_reason: Mapped[HoldReason | None] = mapped_column(_str_enum(HoldReason, "hold_reason"))
    created_at: Mapped[datetime] = _created_at()


class TrainingExample(Base):
    """A confirmed (label, face crop) pair: the data the trainer learns from."""

    __tablename__ = "training_examples"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    character_id: Mapped[int] = mapped_column(ForeignKey("characters.id"), index=True)
    crop_image: Mapped[bytes] = mapped_column(LargeBinary)
    source: Mapped[ExampleSource] = mapped_column(_str_enum(ExampleSource, "example_source"))
    # The crop is copied, so an example outlives its image unless someone asks to be forgotten.
    face_id: Mapped[int | None] = mapped_column(
        ForeignKey("faces.id", ondelete="SET NULL"), unique=True
    )
    contributor_id: Mapped[int | None] = mapped_column(BigInteger, index=True)
    scope_id: Mapped[int] = mapped_column(BigInteger, index=True)
    created_at: Mapped[datetime] = _created_at()
    # Where an imported example came from: the picture's hash and its path in the folder.
    picture_sha256: Mapped[str | None] = mapped_column(String(64))
    origin: Mapped[str | None] = mapped_column(String(500))


class Backbone(Base):
    """A backbone ``.tflite`` (one crop view in, pooled features out), stored once."""

    __tablename__ = "backbones"

    sha256: Mapped[str] = mapped_column(String(64), primary_key=True)
    name: Mapped[str] = mapped_column(String(100))
    info: Mapped[dict[str, Any]] = mapped_column(JSON)
    model: Mapped[bytes] = mapped_column(LargeBinary)
    created_at: Mapped[datetime] = _created_at()


class ExampleEmbedding(Base):
    """A training example's embedding (``2×D`` float32: as seen, mirrored) by one backbone."""

    __tablename__ = "example_embeddings"

    example_id: Mapped[int] = mapped_column(
        ForeignKey("training_examples.id", ondelete="CASCADE"), primary_key=True
    )
    backbone_sha256: Mapped[str] = mapped_column(
        ForeignKey("backbones.sha256", ondelete="CASCADE"), primary_key=True
    )
    features: Mapped[bytes] = mapped_column(LargeBinary)


class ModelVersion(Base):
    """A model of one scope: its head, the backbone it runs on, and what it was trained on.

    Versions registered before models lived in the database have no head (only the
    ``path`` of their bundle on disk) and cannot serve until installed again.
    """

    __tablename__ = "model_versions"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    version: Mapped[str] = mapped_column(String(VERSION_LENGTH), unique=True)
    scope_id: Mapped[int] = mapped_column(BigInteger, index=True, default=0)
    path: Mapped[str | None] = mapped_column(String(500))
    backbone_sha256: Mapped[str | None] = mapped_column(ForeignKey("backbones.sha256"))
    head: Mapped[bytes | None] = mapped_column(LargeBinary)
    example_ids: Mapped[list[int] | None] = mapped_column(JSON)
    info: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    created_at: Mapped[datetime] = _created_at()
    labels: Mapped[list[str]] = mapped_column(JSON)
    metrics: Mapped[dict[str, Any]] = mapped_column(JSON)
    training_size: Mapped[int] = mapped_column(Integer)
    is_active: Mapped[bool] = mapped_column(Boolean, default=False)
    promoted_at: Mapped[datetime | None] = mapped_column(UTCDateTime())


# A partial unique index: any number of inactive versions, but one active per scope.
_versions = ModelVersion.__table__.c
Index(
    "uq_model_versions_one_active_per_scope",
    _versions.scope_id,
    unique=True,
    sqlite_where=_versions.is_active,
    postgresql_where=_versions.is_active,
)


class ServingChange(Base):
    """One change of a scope's serving model; processes poll the highest id to follow them."""

    __tablename__ = "serving_changes"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    scope_id: Mapped[int] = mapped_column(BigInteger)
    version: Mapped[str | None] = mapped_column(String(VERSION_LENGTH))
    changed_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class TrainingRun(Base):
    """One request to retrain, and how it ended."""

    __tablename__ = "training_runs"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    guild_id: Mapped[int | None] = mapped_column(BigInteger)
    requested_by: Mapped[int | None] = mapped_column(BigInteger)
    status: Mapped[RunStatus] = mapped_column(_str_enum(RunStatus, "run_status"))
    started_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    message: Mapped[str | None] = mapped_column(Text)
    candidate_version: Mapped[str | None] = mapped_column(String(VERSION_LENGTH))
    metrics: Mapped[dict[str, Any] | None] = mapped_column(JSON)


class Lock(Base):
    """A named lock shared by every process using the database; it lapses at ``expires_at``."""

    __tablename__ = "locks"

    name: Mapped[str] = mapped_column(String(100), primary_key=True)
    holder: Mapped[str] = mapped_column(String(200))
    acquired_at: Mapped[datetime] = mapped_column(UTCDateTime())
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime())
