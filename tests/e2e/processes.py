"""The real bot as an operating-system process (``python -m bot run``) against the fake Discord.

Each process gets only the settings it is given (none leak in from the test's environment),
reads no ``.env`` file, logs to a file, and serves
``/healthz`` and ``/metrics`` on a local port so that a test can tell processes apart.
:meth:`BotProcess.stop` never leaves anything running: SIGINT (a clean shutdown), then
SIGTERM, then SIGKILL to the process and to its process group (a trainer it started, say).
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp
from prometheus_client.parser import text_string_to_metric_families

from bot.config import variable_names
from tests.fake_discord import FakeDiscord, StandardGuild

REPOSITORY = Path(__file__).resolve().parents[2]
BOT_SETTINGS = variable_names()
"""The bot's settings (``bot.config.Settings.from_env``): a child gets none of ours."""
STOP_STEPS = ((signal.SIGINT, 10.0), (signal.SIGTERM, 5.0), (signal.SIGKILL, 5.0))


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def bot_settings(
    fake: FakeDiscord, *, database_url: str, model_dir: Path, data_dir: Path
) -> dict[str, str]:
    """The whole configuration of one ``python -m bot run`` against ``fake`` (one worker,
    ``/metrics`` on a fixed free port, downloads from the fake's CDN on 127.0.0.1)."""
    return {
        "DISCORD_TOKEN": fake.token,
        "DISCORD_API_BASE": fake.api_base,
        "DISCORD_GATEWAY_URL": fake.gateway_url,
        "DATABASE_URL": database_url,
        "DATA_DIR": str(data_dir),
        "MODEL_DIR": str(model_dir),
        "HTTP_HOST": "127.0.0.1",
        "HTTP_PORT": str(free_port()),
        "WORKERS": "1",
        "ANIMEBOT_ALLOW_PRIVATE_DOWNLOADS": "1",
    }


def child_environment(settings: Mapping[str, str]) -> dict[str, str]:
    """This process's environment without any bot setting, plus ``settings``; the
    repository importable from any working directory."""
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in BOT_SETTINGS and not k.startswith("ANIMEBOT_")
    }
    python_path = [str(REPOSITORY), *filter(None, env.get("PYTHONPATH", "").split(os.pathsep))]
    env |= {
        "PYTHONPATH": os.pathsep.join(python_path),
        "PYTHONUNBUFFERED": "1",
        "TF_CPP_MIN_LOG_LEVEL": "3",
        "CUDA_VISIBLE_DEVICES": "",
        # No .env at all: not even one in the repository root (see bot.config).
        "ENV_FILE": os.devnull,
    }
    return env | dict(settings)


def _terminate_with_parent() -> Callable[[], None] | None:
    """A ``preexec_fn``: Linux sends the child SIGTERM if the test run dies first."""
    try:
        prctl = ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):
        return None
    pr_set_pdeathsig = 1
    return lambda: prctl(pr_set_pdeathsig, signal.SIGTERM)


@dataclass(frozen=True)
class Metrics:
    """One scrape of ``/metrics``: samples by name and labels."""

    samples: dict[tuple[str, frozenset[tuple[str, str]]], float]

    @classmethod
    def parse(cls, text: str) -> Metrics:
        """Read the Prometheus text format (with prometheus_client's parser)."""
        return cls({
            (sample.name, frozenset(sample.labels.items())): sample.value
            for family in text_string_to_metric_families(text)
            for sample in family.samples
        })  # fmt: skip

    def value(self, name: str, **labels: str) -> float | None:
        """The sample ``name{labels}`` (exactly those labels), or None."""
        return self.samples.get((name, frozenset(labels.items())))

    def labels(self, name: str) -> dict[str, str]:
        """The labels of the first sample called ``name`` (an ``_info`` gauge, say)."""
        for sample_name, labels in self.samples:
            if sample_name == name:
                return dict(labels)
        return {}

    @property
    def answered(self) -> float | None:
        """Pictures this process answered."""
        return self.value("animebot_images_total", outcome="answered")

    @property
    def model_version(self) -> str | None:
        """The model this process serves (None before any)."""
        version = self.labels("animebot_model_info").get("version")
        return None if version in (None, "none") else version

    @property
    def shards(self) -> str | None:
        """The shards this process runs, ``0/2`` style."""
        return self.labels("animebot_model_info").get("shards")


@dataclass
class BotProcess:
    """``python -m bot run`` in ``home`` with ``settings`` as its whole configuration."""

    name: str
    home: Path
    settings: dict[str, str]
    process: subprocess.Popen[bytes] | None = field(default=None, repr=False)
    exit_code: int | None = None
    stopped_with: str = ""
    """The signal that ended it in :meth:`stop` ("" when it had exited by itself)."""

    @property
    def pid(self) -> int:
        """Its process id (it must have been started)."""
        assert self.process is not None, "not started"
        return self.process.pid

    @property
    def log_path(self) -> Path:
        """Standard output and error of the process."""
        return self.home / "bot.log"

    @property
    def http_port(self) -> int:
        """The port of its ``/healthz`` and ``/metrics``."""
        return int(self.settings["HTTP_PORT"])

    def start(self) -> None:
        """Start the process (it connects to the fake by itself)."""
        self.home.mkdir(parents=True, exist_ok=True)
        with self.log_path.open("wb") as log_file:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "bot", "run"],
                cwd=self.home,  # no stray .env is read
                env=child_environment(self.settings),
                stdin=subprocess.DEVNULL,
                stdout=log_file,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # its own process group, killed as one in stop()
                preexec_fn=_terminate_with_parent(),
            )

    def running(self) -> bool:
        """Whether it was started and has not exited."""
        return self.process is not None and self.process.poll() is None

    async def _get(self, session: aiohttp.ClientSession, path: str) -> tuple[int, str]:
        url = f"http://127.0.0.1:{self.http_port}{path}"
        async with session.get(url) as response:
            return response.status, await response.text()

    async def wait_ready(self, timeout: float) -> float:  # noqa: ASYNC109
        """Until ``/healthz`` says the bot is ready (connected, guilds received); the
        seconds waited. RuntimeError with the log's tail if it exits or takes too long."""
        started = time.monotonic()
        client_timeout = aiohttp.ClientTimeout(total=2)
        async with aiohttp.ClientSession(timeout=client_timeout) as session:
            while time.monotonic() - started < timeout:
                if not self.running():
                    raise RuntimeError(f"{self.name} exited at start:\n{self.log_tail()}")
                with contextlib.suppress(aiohttp.ClientError, OSError, TimeoutError):
                    status, _ = await self._get(session, "/healthz")
                    if status == 200:
                        return time.monotonic() - started
                await asyncio.sleep(0.1)
        raise RuntimeError(f"{self.name} was not ready within {timeout:g} s:\n{self.log_tail()}")

    async def metrics(self) -> Metrics:
        """Scrape ``/metrics`` once."""
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=5)) as session:
            status, text = await self._get(session, "/metrics")
        if status != 200:
            raise RuntimeError(f"{self.name}: /metrics answered {status}")
        return Metrics.parse(text)

    async def wait_for_metrics(
        self,
        condition: Callable[[Metrics], bool],
        what: str,
        timeout: float = 10.0,  # noqa: ASYNC109
    ) -> Metrics:
        """Scrape every 0.1 s until ``condition`` holds; AssertionError after ``timeout``."""
        deadline = time.monotonic() + timeout
        while True:
            scraped = await self.metrics()
            if condition(scraped):
                return scraped
            if time.monotonic() > deadline:
                raise AssertionError(
                    f"{self.name}: still waiting for {what} after {timeout:g} s; "
                    f"answered={scraped.answered}, model={scraped.model_version}"
                )
            await asyncio.sleep(0.1)

    def stop(self) -> int | None:
        """SIGINT, then SIGTERM, then SIGKILL; then SIGKILL to whatever is left in its
        process group. Returns the exit code."""
        if self.process is None:
            return None
        for sig, wait in STOP_STEPS:
            if self.process.poll() is not None:
                break
            self.stopped_with = sig.name
            with contextlib.suppress(ProcessLookupError):
                self.process.send_signal(sig)
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.process.wait(wait)
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.process.pid, signal.SIGKILL)
        self.exit_code = self.process.poll()
        return self.exit_code

    def log_text(self) -> str:
        """Everything it wrote so far."""
        try:
            return self.log_path.read_text("utf-8", errors="replace")
        except OSError:
            return ""

    def log_tail(self, lines: int = 60) -> str:
        """The last ``lines`` lines of its log."""
        return "\n".join(self.log_text().splitlines()[-lines:])

    def log_problems(self) -> list[str]:
        """ERROR and CRITICAL lines and tracebacks in its log."""
        return [
            line
            for line in self.log_text().splitlines()
            if " ERROR " in line or " CRITICAL " in line or line.startswith("Traceback")
        ]


async def watch_every_channel(fake: FakeDiscord, world: StandardGuild) -> None:
    """The server's admin has the bot answer pictures in every channel (watching is opt-in),
    through the command, as on Discord."""
    command = await fake.send_slash_command(
        "settings watch_all", {"enabled": True}, user=world.admin, channel=world.channel
    )
    await command.wait_for_message()
