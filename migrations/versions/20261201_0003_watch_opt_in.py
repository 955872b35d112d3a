"""Watching is opt-in: a server answers pictures only in the channels it names, or in every
channel once its admin says so (``watch_all``). A server that had settings and named no
channel was answered everywhere; it keeps that (``watch_all`` true). A server without
settings gets the new default. ``welcomed_at`` remembers that the admin of a server without
a model was told, once, how to start.

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-01
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | Sequence[str] | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("guild_settings") as batch_op:
        batch_op.add_column(
            sa.Column("watch_all", sa.Boolean(), server_default=sa.false(), nullable=False)
        )
        batch_op.add_column(sa.Column("welcomed_at", sa.DateTime(timezone=True), nullable=True))
    op.execute(
        "UPDATE guild_settings SET watch_all = true WHERE guild_id NOT IN "
        "(SELECT guild_id FROM watched_channels)"
    )


def downgrade() -> None:
    with op.batch_alter_table("guild_settings") as batch_op:
        batch_op.drop_column("welcomed_at")
        batch_op.drop_column("watch_all")
