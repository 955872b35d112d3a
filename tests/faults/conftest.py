"""Fixtures for the fault tests: the end-to-end bot fixtures, and a PostgreSQL server that
a test may stop and start again."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.e2e.conftest import launch, trained_bundle, world
from tests.postgres import PostgresServer, find_bin_dir, start_server, stop_server

__all__ = ["launch", "restartable_postgres", "trained_bundle", "world"]


@pytest.fixture(scope="module")
def restartable_postgres() -> Iterator[PostgresServer]:
    """A throw-away PostgreSQL server of the module's own, so a test can stop and restart it
    without disturbing the session's shared server (skips if PostgreSQL is not installed)."""
    bin_dir = find_bin_dir()
    if bin_dir is None:
        pytest.skip("PostgreSQL server binaries are not installed; run .ci/ensure-postgres")
    server = start_server(bin_dir)
    try:
        yield server
    finally:
        stop_server(server)
