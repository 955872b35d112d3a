"""Models in the database: backbones, heads per scope, cached embeddings, serving changes.

Existing model versions move to the base scope (they were the one model every server
used). Their bundles stay on disk, named by ``path``; they have no head in the database, so
they serve again only once installed with ``python -m bot install-base``. Training
examples may now be imported with the base model (``source`` ``import``, with the
picture's hash and path).

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-01
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | Sequence[str] | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

OLD_SOURCES = ("vote", "teach", "moderator")
NEW_SOURCES = (*OLD_SOURCES, "import")


def _sources(*values: str) -> sa.Enum:
    return sa.Enum(
        *values, name="example_source", native_enum=False, create_constraint=True, length=16
    )


def upgrade() -> None:
    op.create_table(
        "backbones",
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("info", sa.JSON(), nullable=False),
        sa.Column("model", sa.LargeBinary(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("sha256", name=op.f("pk_backbones")),
    )
    op.create_table(
        "example_embeddings",
        sa.Column("example_id", sa.Integer(), nullable=False),
        sa.Column("backbone_sha256", sa.String(length=64), nullable=False),
        sa.Column("features", sa.LargeBinary(), nullable=False),
        sa.ForeignKeyConstraint(
            ["backbone_sha256"],
            ["backbones.sha256"],
            name=op.f("fk_example_embeddings_backbone_sha256_backbones"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["example_id"],
            ["training_examples.id"],
            name=op.f("fk_example_embeddings_example_id_training_examples"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint(
            "example_id", "backbone_sha256", name=op.f("pk_example_embeddings")
        ),
    )
    op.create_table(
        "serving_changes",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("scope_id", sa.BigInteger(), nullable=False),
        sa.Column("version", sa.String(length=64), nullable=True),
        sa.Column("changed_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_serving_changes")),
    )
    with op.batch_alter_table("training_examples") as batch_op:
        batch_op.add_column(sa.Column("picture_sha256", sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column("origin", sa.String(length=500), nullable=True))
        batch_op.alter_column(
            "source", existing_type=_sources(*OLD_SOURCES), type_=_sources(*NEW_SOURCES)
        )
    op.drop_index("uq_model_versions_one_active", table_name="model_versions")
    with op.batch_alter_table("model_versions") as batch_op:
        batch_op.add_column(
            sa.Column("scope_id", sa.BigInteger(), nullable=False, server_default="0")
        )
        batch_op.add_column(sa.Column("backbone_sha256", sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column("head", sa.LargeBinary(), nullable=True))
        batch_op.add_column(sa.Column("example_ids", sa.JSON(), nullable=True))
        batch_op.add_column(sa.Column("info", sa.JSON(), nullable=True))
        batch_op.alter_column("path", existing_type=sa.String(length=500), nullable=True)
        batch_op.create_index(batch_op.f("ix_model_versions_scope_id"), ["scope_id"])
        batch_op.create_foreign_key(
            batch_op.f("fk_model_versions_backbone_sha256_backbones"),
            "backbones",
            ["backbone_sha256"],
            ["sha256"],
        )
    with op.batch_alter_table("model_versions") as batch_op:
        batch_op.alter_column("scope_id", existing_type=sa.BigInteger(), server_default=None)
    op.create_index(
        "uq_model_versions_one_active_per_scope",
        "model_versions",
        ["scope_id"],
        unique=True,
        sqlite_where=sa.text("is_active"),
        postgresql_where=sa.text("is_active"),
    )


def downgrade() -> None:
    op.drop_index("uq_model_versions_one_active_per_scope", table_name="model_versions")
    # Only the base's versions existed before; the servers' own ones cannot be kept.
    op.execute(sa.text("DELETE FROM model_versions WHERE scope_id <> 0"))
    with op.batch_alter_table("model_versions") as batch_op:
        batch_op.drop_constraint(
            batch_op.f("fk_model_versions_backbone_sha256_backbones"), type_="foreignkey"
        )
        batch_op.drop_index(batch_op.f("ix_model_versions_scope_id"))
        batch_op.drop_column("info")
        batch_op.drop_column("example_ids")
        batch_op.drop_column("head")
        batch_op.drop_column("backbone_sha256")
        batch_op.drop_column("scope_id")
    op.execute(sa.text("UPDATE model_versions SET path = '' WHERE path IS NULL"))
    with op.batch_alter_table("model_versions") as batch_op:
        batch_op.alter_column("path", existing_type=sa.String(length=500), nullable=False)
    op.create_index(
        "uq_model_versions_one_active",
        "model_versions",
        ["is_active"],
        unique=True,
        sqlite_where=sa.text("is_active"),
        postgresql_where=sa.text("is_active"),
    )
    op.execute(sa.text("DELETE FROM training_examples WHERE source = 'import'"))
    with op.batch_alter_table("training_examples") as batch_op:
        batch_op.alter_column(
            "source", existing_type=_sources(*NEW_SOURCES), type_=_sources(*OLD_SOURCES)
        )
        batch_op.drop_column("origin")
        batch_op.drop_column("picture_sha256")
    op.drop_table("serving_changes")
    op.drop_table("example_embeddings")
    op.drop_table("backbones")
