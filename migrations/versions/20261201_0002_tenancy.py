"""Tenancy: characters and training examples belong to a scope (a server, or the base).

Existing rows keep their data and get the server they belong to: a training example its
``guild_id`` (none: the base scope, 0); a character the scopes of the examples that use
it, split into one character per scope when examples of several servers used it (each
server's examples move to its own copy); a character no example uses goes to the base.
Characters' names were stored normalised, so the display name starts as the key.
Votes get the reason they are held (unknown, so empty, for votes held before) and the
server of the face they are about.

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-01
"""

from collections import defaultdict
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | Sequence[str] | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

BASE_SCOPE_ID = 0  # bot.storage.scope.BASE_SCOPE_ID, repeated: revisions do not import the app

characters = sa.table(
    "characters",
    sa.column("id", sa.Integer()),
    sa.column("scope_id", sa.BigInteger()),
    sa.column("key", sa.String()),
    sa.column("name", sa.String()),
    sa.column("created_at", sa.DateTime(timezone=True)),
    sa.column("created_by", sa.BigInteger()),
)
examples = sa.table(
    "training_examples",
    sa.column("id", sa.Integer()),
    sa.column("character_id", sa.Integer()),
    sa.column("guild_id", sa.BigInteger()),
    sa.column("scope_id", sa.BigInteger()),
)
votes = sa.table(
    "votes",
    sa.column("face_id", sa.Integer()),
    sa.column("guild_id", sa.BigInteger()),
)
faces = sa.table("faces", sa.column("id", sa.Integer()), sa.column("image_id", sa.Integer()))
images = sa.table("images", sa.column("id", sa.Integer()), sa.column("guild_id", sa.BigInteger()))


def upgrade() -> None:
    op.create_table(
        "character_aliases",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("character_id", sa.Integer(), nullable=False),
        sa.Column("scope_id", sa.BigInteger(), nullable=False),
        sa.Column("key", sa.String(length=100), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.ForeignKeyConstraint(
            ["character_id"],
            ["characters.id"],
            name=op.f("fk_character_aliases_character_id_characters"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_character_aliases")),
        sa.UniqueConstraint("scope_id", "key", name=op.f("uq_character_aliases_scope_id_key")),
    )
    op.create_index(
        op.f("ix_character_aliases_character_id"), "character_aliases", ["character_id"]
    )

    with op.batch_alter_table("characters") as batch_op:
        batch_op.add_column(sa.Column("scope_id", sa.BigInteger(), nullable=True))
        batch_op.add_column(sa.Column("key", sa.String(length=100), nullable=True))
        batch_op.drop_constraint(batch_op.f("uq_characters_name"), type_="unique")
    with op.batch_alter_table("training_examples") as batch_op:
        batch_op.add_column(sa.Column("scope_id", sa.BigInteger(), nullable=True))

    bind = op.get_bind()
    bind.execute(
        examples.update().values(
            scope_id=sa.func.coalesce(examples.c.guild_id, sa.literal(BASE_SCOPE_ID))
        )
    )
    _split_characters_per_scope(bind)

    with op.batch_alter_table("characters") as batch_op:
        batch_op.alter_column("scope_id", existing_type=sa.BigInteger(), nullable=False)
        batch_op.alter_column("key", existing_type=sa.String(length=100), nullable=False)
        batch_op.create_unique_constraint(
            batch_op.f("uq_characters_scope_id_key"), ["scope_id", "key"]
        )
    with op.batch_alter_table("training_examples") as batch_op:
        batch_op.alter_column("scope_id", existing_type=sa.BigInteger(), nullable=False)
        batch_op.create_index(batch_op.f("ix_training_examples_scope_id"), ["scope_id"])
        batch_op.drop_column("guild_id")

    with op.batch_alter_table("votes") as batch_op:
        batch_op.add_column(
            sa.Column(
                "hold_reason",
                sa.Enum(
                    "new_account",
                    "contradicts",
                    name="hold_reason",
                    native_enum=False,
                    create_constraint=True,
                    length=16,
                ),
                nullable=True,
            )
        )
    # A vote belongs to the server of the face it is about (not where it was clicked).
    face_guild = (
        sa.select(images.c.guild_id)
        .select_from(faces.join(images, faces.c.image_id == images.c.id))
        .where(faces.c.id == votes.c.face_id)
        .scalar_subquery()
    )
    bind.execute(votes.update().values(guild_id=face_guild))


def _split_characters_per_scope(bind: sa.Connection) -> None:
    """Give each character the scope of its examples, one copy per scope it is used in."""
    used_in: defaultdict[int, set[int]] = defaultdict(set)
    for character_id, scope_id in bind.execute(
        sa.select(examples.c.character_id, examples.c.scope_id).distinct()
    ):
        used_in[character_id].add(scope_id)
    rows = bind.execute(
        sa.select(
            characters.c.id, characters.c.name, characters.c.created_at, characters.c.created_by
        ).order_by(characters.c.id)
    ).all()
    for row in rows:
        first, *others = sorted(used_in.get(row.id) or {BASE_SCOPE_ID})
        bind.execute(
            characters.update()
            .where(characters.c.id == row.id)
            .values(scope_id=first, key=row.name)
        )
        for scope_id in others:
            copy_id = bind.execute(
                characters.insert()
                .values(
                    scope_id=scope_id,
                    key=row.name,
                    name=row.name,
                    created_at=row.created_at,
                    created_by=row.created_by,
                )
                .returning(characters.c.id)
            ).scalar_one()
            bind.execute(
                examples.update()
                .where(examples.c.character_id == row.id, examples.c.scope_id == scope_id)
                .values(character_id=copy_id)
            )


def downgrade() -> None:
    with op.batch_alter_table("votes") as batch_op:
        # SQLite keeps a CHECK of a dropped column (and then fails on it): drop it first.
        batch_op.drop_constraint(batch_op.f("ck_votes_hold_reason"), type_="check")
        batch_op.drop_column("hold_reason")

    with op.batch_alter_table("training_examples") as batch_op:
        batch_op.add_column(sa.Column("guild_id", sa.BigInteger(), nullable=True))
    bind = op.get_bind()
    bind.execute(
        examples.update().values(
            guild_id=sa.func.nullif(examples.c.scope_id, sa.literal(BASE_SCOPE_ID))
        )
    )
    _merge_characters_by_key(bind)
    with op.batch_alter_table("training_examples") as batch_op:
        batch_op.drop_index(batch_op.f("ix_training_examples_scope_id"))
        batch_op.drop_column("scope_id")

    op.drop_index(op.f("ix_character_aliases_character_id"), table_name="character_aliases")
    op.drop_table("character_aliases")
    with op.batch_alter_table("characters") as batch_op:
        batch_op.drop_constraint(batch_op.f("uq_characters_scope_id_key"), type_="unique")
        batch_op.create_unique_constraint(batch_op.f("uq_characters_name"), ["name"])
        batch_op.drop_column("key")
        batch_op.drop_column("scope_id")


def _merge_characters_by_key(bind: sa.Connection) -> None:
    """One character per key again (the oldest), named by its key, with every example."""
    keep: dict[str, int] = {}
    for character_id, key in bind.execute(
        sa.select(characters.c.id, characters.c.key).order_by(characters.c.id)
    ):
        kept = keep.setdefault(key, character_id)
        if kept != character_id:
            bind.execute(
                examples.update()
                .where(examples.c.character_id == character_id)
                .values(character_id=kept)
            )
            bind.execute(characters.delete().where(characters.c.id == character_id))
    for key, character_id in keep.items():
        bind.execute(characters.update().where(characters.c.id == character_id).values(name=key))
