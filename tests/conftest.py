"""Shared fixtures: a throw-away PostgreSQL server and the local fake Discord API."""

pytest_plugins = ["tests.postgres", "tests.fake_discord.plugin"]
