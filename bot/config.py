"""Settings, read once from the environment and a ``.env`` file in ``main()`` (pydantic-settings).

``.env`` is looked for in this order, and only the first one found is read:

1. the file ``ENV_FILE`` names (it must exist; ``ENV_FILE=/dev/null`` reads none);
2. ``.env`` in the current directory;
3. ``.env`` in the application's root, the folder that holds ``bot/`` (the repository
   checkout, ``/app`` in the Docker image).

Variables in the environment win over the file. Values are parsed by python-dotenv, so
quotes and inline comments (``DISCORD_TOKEN="abc" # my token``) work as in a shell.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Annotated, Any

from pydantic import Field, ValidationError, field_validator, model_validator
from pydantic_core import PydanticCustomError
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from bot.errors import CascadeError
from bot.vision.cascade import bundled_cascade

DEFAULT_DATA_DIR = Path("data")
APP_ROOT = Path(__file__).resolve().parents[1]
"""The folder that holds ``bot/``: the repository checkout, or ``/app`` in the image."""
SECRET_FIELDS = frozenset({"discord_token"})
"""Settings whose values never appear in an error message."""


def default_training_concurrency() -> int:
    """One training per two cores this process may use (a training keeps about two busy)."""
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        cores = os.cpu_count() or 1
    return max(1, cores // 2)


class ConfigError(ValueError):
    """A setting has a value the bot cannot use; the message names the variable."""


def find_env_file(environ: Mapping[str, str] | None = None, cwd: Path | None = None) -> Path | None:
    """The ``.env`` file to read (see the module docstring), or None when there is none."""
    environ = os.environ if environ is None else environ
    named = environ.get("ENV_FILE")
    if named:
        path = Path(named)
        if not (path.is_file() or path.is_char_device() or path.is_fifo()):
            raise ConfigError(f"ENV_FILE names {named}, which is not a file")
        return path
    for folder in (cwd or Path.cwd(), APP_ROOT):
        candidate = folder / ".env"
        if candidate.is_file():
            return candidate
    return None


class Settings(BaseSettings):
    """Everything the bot and its tools can be configured with.

    Each field is read from the upper-case variable of the same name (``WORKERS`` for
    ``workers``). Built directly, it takes its arguments (and the process environment);
    :meth:`from_env` also reads the ``.env`` file and turns bad values into a
    :class:`ConfigError`.
    """

    model_config = SettingsConfigDict(
        frozen=True,
        extra="forbid",
        # Unknown names in .env (POSTGRES_PASSWORD for compose, say) are not ours to refuse.
        dotenv_filtering="only_existing",
        # `DISCORD_TOKEN=` (as in .env.example) means "not set", not "the empty token".
        env_ignore_empty=True,
        # Validation errors would otherwise quote the token.
        hide_input_in_errors=True,
    )

    discord_token: str | None = Field(default=None, repr=False)
    data_dir: Path = DEFAULT_DATA_DIR
    database_url: str = f"sqlite+aiosqlite:///{DEFAULT_DATA_DIR / 'animebot.db'}"
    model_dir: Path = DEFAULT_DATA_DIR / "models"
    cascade_path: Path = Field(default_factory=bundled_cascade)
    shard_count: int | None = Field(default=None, ge=0)
    shard_ids: Annotated[tuple[int, ...] | None, NoDecode] = None
    http_host: str = "127.0.0.1"
    http_port: int = Field(default=9108, ge=0, le=65535)
    max_image_bytes: int = Field(default=25 * 1024 * 1024, ge=1024)
    download_timeout: float = Field(default=20.0, ge=1)
    workers: int = Field(default=2, ge=1)
    queue_size: int = Field(default=16, ge=1)
    training_concurrency: int = Field(default_factory=default_training_concurrency, ge=1)
    """How many servers' trainings this process runs at once (more wait their turn)."""
    model_cache_size: int = Field(default=256, ge=1)
    """How many servers' models (heads) each process keeps loaded; others load on demand."""
    owner_ids: Annotated[tuple[int, ...], NoDecode] = ()
    """Discord user ids of the bot's owners, besides the application's owners."""
    discord_api_base: str | None = None
    discord_gateway_url: str | None = None
    log_level: str = "INFO"

    @model_validator(mode="before")
    @classmethod
    def _defaults_under_data_dir(cls, values: Any) -> Any:
        """``DATABASE_URL`` and ``MODEL_DIR`` default to places under ``DATA_DIR``."""
        if not isinstance(values, dict):
            return values
        data_dir = Path(values.get("data_dir") or DEFAULT_DATA_DIR)
        if not values.get("database_url"):
            values["database_url"] = f"sqlite+aiosqlite:///{data_dir / 'animebot.db'}"
        if not values.get("model_dir"):
            values["model_dir"] = data_dir / "models"
        return values

    @field_validator("owner_ids", mode="before")
    @classmethod
    def _id_list(cls, value: Any) -> Any:
        """``OWNER_IDS=123,456`` (spaces allowed)."""
        if isinstance(value, str):
            return tuple(part.strip() for part in value.split(",") if part.strip())
        return value

    @field_validator("shard_ids", mode="before")
    @classmethod
    def _comma_separated(cls, value: Any) -> Any:
        """``SHARD_IDS=0,1`` (spaces allowed); empty means "not set"."""
        if isinstance(value, str):
            parts = [part.strip() for part in value.split(",") if part.strip()]
            return tuple(parts) or None
        return value

    @field_validator("shard_count", mode="after")
    @classmethod
    def _zero_shards_is_automatic(cls, value: int | None) -> int | None:
        return value or None

    @field_validator("discord_token", "discord_api_base", "discord_gateway_url", mode="after")
    @classmethod
    def _empty_is_unset(cls, value: str | None) -> str | None:
        return value or None

    @field_validator("log_level", mode="after")
    @classmethod
    def _upper_case(cls, value: str) -> str:
        return value.upper()

    @field_validator("cascade_path", mode="after")
    @classmethod
    def _cascade_exists(cls, value: Path) -> Path:
        if not value.is_file():
            raise PydanticCustomError("no_file", "no such file: {path}", {"path": str(value)})
        return value

    @model_validator(mode="after")
    def _shards_agree(self) -> Settings:
        if self.shard_ids is not None and self.shard_count is None:
            raise PydanticCustomError("shards", "SHARD_IDS needs SHARD_COUNT as well")
        if (
            self.shard_ids
            and self.shard_count
            and any(i >= self.shard_count for i in self.shard_ids)
        ):
            raise PydanticCustomError(
                "shards", "every number in SHARD_IDS must be below SHARD_COUNT"
            )
        return self

    @property
    def sqlite_default(self) -> bool:
        """True when the database is the default SQLite file under the data directory."""
        return self.database_url.startswith("sqlite")

    @classmethod
    def from_env(cls, env_files: Sequence[Path] | None = None) -> Settings:
        """Settings from the environment over the ``.env`` file (``env_files`` replaces the
        search described in the module docstring; ``()`` reads none)."""
        if env_files is None:
            found = find_env_file()
            env_files = () if found is None else (found,)
        try:
            return cls(_env_file=tuple(env_files) or None)  # type: ignore[call-arg]
        except ValidationError as exc:
            raise ConfigError(describe(exc)) from None
        except CascadeError as exc:  # no CASCADE_PATH, and the installed cascade is unusable
            raise ConfigError(str(exc)) from None


def describe(error: ValidationError) -> str:
    """One line naming each bad variable and what is wrong with it (never a secret)."""
    problems = []
    for item in error.errors(include_url=False):
        field = str(item["loc"][0]) if item["loc"] else ""
        message = item["msg"]
        given = item.get("input")
        if (
            field not in SECRET_FIELDS
            and isinstance(given, str | int)
            and str(given) not in message
        ):
            message = f"{message} (got {given!r})"
        problems.append(f"{field.upper()}: {message}" if field else message)
    return "; ".join(problems)


def variable_names() -> frozenset[str]:
    """Every environment variable the settings read, ``ENV_FILE`` included."""
    return frozenset({name.upper() for name in Settings.model_fields} | {"ENV_FILE"})
