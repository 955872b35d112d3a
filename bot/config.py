"""Settings, read once from the environment (and an optional ``.env`` file) in ``main()``."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

DEFAULT_DATA_DIR = Path("data")


class ConfigError(ValueError):
    """A setting has a value the bot cannot use; the message names the variable."""


def read_dotenv(path: Path) -> dict[str, str]:
    """Parse a ``KEY=VALUE`` file (comments and blank lines ignored, optional quotes)."""
    values: dict[str, str] = {}
    if not path.is_file():
        return values
    for raw in path.read_text(encoding="utf-8").splitlines():
        line = raw.strip()
        if not line or line.startswith("#") or "=" not in line:
            continue
        key, _, value = line.partition("=")
        key = key.strip().removeprefix("export ").strip()
        value = value.strip()
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
            value = value[1:-1]
        values[key] = value
    return values


def _int(env: Mapping[str, str], name: str, default: int, minimum: int = 0) -> int:
    raw = env.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ConfigError(f"{name} must be a whole number, not {raw!r}") from None
    if value < minimum:
        raise ConfigError(f"{name} must be at least {minimum}, not {value}")
    return value


def _int_list(env: Mapping[str, str], name: str) -> tuple[int, ...] | None:
    raw = env.get(name, "").strip()
    if not raw:
        return None
    try:
        return tuple(int(part) for part in raw.replace(" ", "").split(",") if part)
    except ValueError:
        raise ConfigError(
            f"{name} must be a comma-separated list of numbers, not {raw!r}"
        ) from None


@dataclass(frozen=True)
class Settings:
    """Everything the bot and its tools can be configured with."""

    discord_token: str | None = field(default=None, repr=False)
    data_dir: Path = DEFAULT_DATA_DIR
    database_url: str = ""
    model_dir: Path = DEFAULT_DATA_DIR / "models"
    cascade_path: Path | None = None
    shard_count: int | None = None
    shard_ids: tuple[int, ...] | None = None
    http_host: str = "127.0.0.1"
    http_port: int = 9108
    max_image_bytes: int = 25 * 1024 * 1024
    download_timeout: float = 20.0
    workers: int = 2
    queue_size: int = 16
    discord_api_base: str | None = None
    discord_gateway_url: str | None = None
    log_level: str = "INFO"

    @property
    def sqlite_default(self) -> bool:
        """True when the database is the default SQLite file under the data directory."""
        return self.database_url.startswith("sqlite")

    @classmethod
    def from_env(
        cls, env: Mapping[str, str] | None = None, dotenv: Path | None = Path(".env")
    ) -> Settings:
        """Build settings from ``env`` (default ``os.environ``) over the values in ``dotenv``."""
        merged: dict[str, str] = read_dotenv(dotenv) if dotenv is not None else {}
        merged.update(os.environ if env is None else env)
        data_dir = Path(merged.get("DATA_DIR") or DEFAULT_DATA_DIR)
        database_url = (
            merged.get("DATABASE_URL") or f"sqlite+aiosqlite:///{data_dir / 'animebot.db'}"
        )
        cascade = merged.get("CASCADE_PATH")
        shard_ids = _int_list(merged, "SHARD_IDS")
        shard_count = _int(merged, "SHARD_COUNT", 0, minimum=0) or None
        if shard_ids is not None and shard_count is None:
            raise ConfigError("SHARD_IDS needs SHARD_COUNT as well")
        if shard_ids and shard_count and any(i >= shard_count for i in shard_ids):
            raise ConfigError("every number in SHARD_IDS must be below SHARD_COUNT")
        return cls(
            discord_token=merged.get("DISCORD_TOKEN") or None,
            data_dir=data_dir,
            database_url=database_url,
            model_dir=Path(merged.get("MODEL_DIR") or data_dir / "models"),
            cascade_path=Path(cascade) if cascade else None,
            shard_count=shard_count,
            shard_ids=shard_ids,
            http_host=merged.get("HTTP_HOST") or "127.0.0.1",
            http_port=_int(merged, "HTTP_PORT", 9108),
            max_image_bytes=_int(merged, "MAX_IMAGE_BYTES", 25 * 1024 * 1024, minimum=1024),
            download_timeout=float(_int(merged, "DOWNLOAD_TIMEOUT", 20, minimum=1)),
            workers=_int(merged, "WORKERS", 2, minimum=1),
            queue_size=_int(merged, "QUEUE_SIZE", 16, minimum=1),
            discord_api_base=merged.get("DISCORD_API_BASE") or None,
            discord_gateway_url=merged.get("DISCORD_GATEWAY_URL") or None,
            log_level=(merged.get("LOG_LEVEL") or "INFO").upper(),
        )
