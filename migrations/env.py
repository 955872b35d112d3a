"""Alembic environment: the URL comes from the bot's settings, migrations run on an async engine.

``bot.storage.db.upgrade_to_head`` passes the URL in ``config.attributes["database_url"]``;
from the command line it is ``Settings.from_env().database_url`` (``DATABASE_URL``, else
the default SQLite file under the data directory).
"""

from __future__ import annotations

import asyncio
from logging.config import fileConfig
from typing import Any, Literal

from alembic import context
from alembic.autogenerate.api import AutogenContext
from sqlalchemy import text
from sqlalchemy.engine import Connection

from bot.config import Settings
from bot.storage.db import create_engine
from bot.storage.schema import Base, UTCDateTime

config = context.config
if config.config_file_name is not None:
    fileConfig(config.config_file_name, disable_existing_loggers=False)

target_metadata = Base.metadata

# An arbitrary constant naming this application's migration lock on PostgreSQL.
MIGRATION_LOCK_KEY = 0x616E696D65626F74  # "animebot"


def database_url() -> str:
    """The URL handed in by the caller, else the one in the bot's settings."""
    url = config.attributes.get("database_url")
    return url if url else Settings.from_env().database_url


def render_item(type_: str, obj: Any, autogen_context: AutogenContext) -> str | Literal[False]:
    """Write the UTC datetime type as the plain column type it stores, so revisions stay
    independent of the application's code."""
    if type_ == "type" and isinstance(obj, UTCDateTime):
        return "sa.DateTime(timezone=True)"
    return False


def configure(**options: Any) -> None:
    """Configure the migration context the same way online and offline."""
    context.configure(
        target_metadata=target_metadata,
        # SQLite cannot ALTER most things; batch mode rebuilds the table instead.
        render_as_batch=True,
        render_item=render_item,
        compare_type=True,
        # db.create_engine makes SQLite begin real transactions, so a failed migration
        # rolls back completely there too.
        transactional_ddl=True,
        **options,
    )


def run_migrations_offline() -> None:
    """Write the SQL to standard output instead of running it (``alembic upgrade --sql``)."""
    configure(url=database_url(), literal_binds=True, dialect_opts={"paramstyle": "named"})
    with context.begin_transaction():
        context.run_migrations()


def run_migrations(connection: Connection) -> None:
    """Run the pending migrations on ``connection`` in one transaction."""
    configure(connection=connection)
    with context.begin_transaction():
        if connection.dialect.name == "postgresql":
            # Bot processes sharing the database may start together: one migrates while
            # the others wait here, then find the database at head. (On SQLite the
            # transaction begins IMMEDIATE, which serialises them the same way.)
            connection.execute(
                text("SELECT pg_advisory_xact_lock(:key)"), {"key": MIGRATION_LOCK_KEY}
            )
        context.run_migrations()


async def run_migrations_online() -> None:
    """Connect with the bot's own engine settings and migrate."""
    # Foreign keys off: batch mode copies and drops SQLite tables, and a DROP of a
    # referenced table with foreign keys on would cascade into the rows that refer to it.
    engine = create_engine(database_url(), sqlite_foreign_keys=False)
    try:
        async with engine.connect() as connection:
            await connection.run_sync(run_migrations)
    finally:
        await engine.dispose()


if context.is_offline_mode():
    run_migrations_offline()
else:
    asyncio.run(run_migrations_online())
