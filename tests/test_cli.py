"""The bot's command line as operators meet it: ``run`` without a token, ``migrate``."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def run_bot_cli(*args: str, cwd: Path, **env: str) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if k not in {"DISCORD_TOKEN", "DATABASE_URL"}}
    clean["PYTHONPATH"] = str(REPO)
    return subprocess.run(
        [sys.executable, "-m", "bot", *args],
        cwd=cwd,
        env={**clean, **env},
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_run_without_a_token_exits_at_once_saying_how_to_get_one(tmp_path: Path) -> None:
    result = run_bot_cli("run", cwd=tmp_path)

    assert result.returncode == 2
    assert "DISCORD_TOKEN is not set" in result.stderr
    assert "discord.com/developers/applications" in result.stderr
    assert "MESSAGE CONTENT" in result.stderr
    assert "Traceback" not in result.stderr


def test_run_reads_the_token_from_a_dotenv_file(tmp_path: Path) -> None:
    # A token in .env is taken (so the missing-token message is not shown); a bad settings
    # value then stops it with a short message naming the variable instead of a traceback.
    (tmp_path / ".env").write_text('DISCORD_TOKEN="from-dotenv" # mine\nWORKERS=many\n')

    result = run_bot_cli("run", cwd=tmp_path, ENV_FILE="")

    assert result.returncode == 2
    assert "DISCORD_TOKEN is not set" not in result.stderr
    assert "error: WORKERS: Input should be a valid integer" in result.stderr
    assert "from-dotenv" not in result.stderr + result.stdout


def test_migrate_creates_the_schema_in_the_configured_database(tmp_path: Path) -> None:
    database = tmp_path / "bot.db"

    result = run_bot_cli("migrate", cwd=tmp_path, DATABASE_URL=f"sqlite+aiosqlite:///{database}")

    assert result.returncode == 0, result.stderr
    with sqlite3.connect(database) as connection:
        tables = {row[0] for row in connection.execute("SELECT name FROM sqlite_master")}
    assert {"images", "faces", "votes", "training_examples", "model_versions"} <= tables


@pytest.mark.parametrize("args", [["classify"], ["frobnicate"]])
def test_bad_arguments_get_usage_not_a_traceback(tmp_path: Path, args: list[str]) -> None:
    result = run_bot_cli(*args, cwd=tmp_path)

    assert result.returncode == 2
    assert "usage:" in result.stderr
    assert "Traceback" not in result.stderr


def not_a_cascade(folder: Path) -> Path:
    path = folder / "cascade.xml"
    path.write_text("<opencv_storage></opencv_storage>\n")
    return path


@pytest.mark.parametrize(
    ("cascade", "message"),
    [
        (lambda folder: folder / "missing.xml", "error: CASCADE_PATH: no such file: "),
        (not_a_cascade, "error: CASCADE_PATH: not a cascade OpenCV can load: "),
    ],
    ids=["missing", "not-a-cascade"],
)
def test_run_with_a_wrong_cascade_path_says_so_in_one_line_before_anything_else(
    tmp_path: Path, cascade: Callable[[Path], Path], message: str
) -> None:
    result = run_bot_cli(
        "run", cwd=tmp_path, DISCORD_TOKEN="t", CASCADE_PATH=str(cascade(tmp_path))
    )

    assert result.returncode == 2
    assert result.stderr.startswith(message)
    assert len(result.stderr.splitlines()) == 1, result.stderr


def test_a_bad_setting_stops_run_before_the_database_is_touched(tmp_path: Path) -> None:
    database = tmp_path / "bot.db"

    result = run_bot_cli(
        "run",
        cwd=tmp_path,
        DISCORD_TOKEN="t",
        DATABASE_URL=f"sqlite+aiosqlite:///{database}",
        QUEUE_SIZE="0",
    )

    assert result.returncode == 2
    assert result.stderr.splitlines() == [
        "error: QUEUE_SIZE: Input should be greater than or equal to 1 (got '0')"
    ]
    assert not database.exists()
