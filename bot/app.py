"""The Discord bot: owns nothing it did not get through its constructor."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import socket
from collections.abc import Iterator
from contextlib import AsyncExitStack
from typing import Any

import aiohttp
import discord
import yarl
from aiohttp import web
from discord.ext import commands, tasks

from bot.config import Settings
from bot.errors import BotError
from bot.fetch import DISCORD_MEDIA_HOSTS, FetchPolicy, GuardedConnector, ImageFetcher
from bot.health import LiveState, Metrics, health_app
from bot.i18n import Catalog, CatalogTranslator
from bot.model_store import ModelStore
from bot.service import RecognitionService
from bot.storage.db import Storage
from bot.training import TrainingManager
from bot.vision.faces import default_face_finder
from bot.voting import Voting

log = logging.getLogger(__name__)

EXTENSIONS = (
    "bot.cogs.errors",
    "bot.cogs.recognize",
    "bot.cogs.corrections",
    "bot.cogs.models",
    "bot.cogs.settings",
    "bot.cogs.review",
    "bot.cogs.dataset",
    "bot.cogs.people",
    "bot.cogs.help",
    "bot.cogs.welcome",
    "bot.cogs.characters",
)
MODEL_POLL_SECONDS = 2.0
STOP_GRACE = 8.0
"""On SIGTERM, how long pictures in progress may take before the bot disconnects (Docker
and systemd send SIGKILL 10 s after SIGTERM by default)."""


def intents() -> discord.Intents:
    """Guilds and messages, with message content (to see attachments in watched channels)."""
    value = discord.Intents.none()
    value.guilds = True
    value.guild_messages = True
    value.message_content = True
    return value


class AnimeBot(commands.AutoShardedBot):
    """The bot. Services come in through the constructor; cogs reach them as attributes."""

    def __init__(
        self,
        *,
        settings: Settings,
        storage: Storage,
        fetcher: ImageFetcher,
        recognition: RecognitionService,
        models: ModelStore,
        training: TrainingManager,
        voting: Voting,
        metrics: Metrics,
        catalog: Catalog | None = None,
        **options: Any,
    ) -> None:
        if settings.shard_count is not None:
            options.setdefault("shard_count", settings.shard_count)
            if settings.shard_ids is not None:
                options.setdefault("shard_ids", list(settings.shard_ids))
        super().__init__(
            command_prefix=commands.when_mentioned,
            intents=intents(),
            help_command=None,
            allowed_mentions=discord.AllowedMentions.none(),
            **options,
        )
        self.settings = settings
        self.storage = storage
        self.fetcher = fetcher
        self.recognition = recognition
        self.models = models
        self.training = training
        self.voting = voting
        self.metrics = metrics
        self.catalog = catalog or Catalog.load()
        """Every language's texts (answers follow the reader's locale)."""
        self.base_version: str | None = None
        """The base model's version as last seen (for /metrics)."""
        self.accepting = True
        """False once the bot is stopping: new pictures get a "restarting" reply."""
        self._answering: dict[asyncio.Task[Any] | None, int] = {}
        self._all_answered = asyncio.Event()
        self._all_answered.set()

    @property
    def answering_now(self) -> int:
        """Posts and ``/identify`` commands between their arrival and the bot's reply."""
        return sum(self._answering.values())

    @contextlib.contextmanager
    def answering(self) -> Iterator[None]:
        """Count one post in progress, from its arrival to the reply (for a graceful stop)."""
        task = asyncio.current_task()
        self._answering[task] = self._answering.get(task, 0) + 1
        self._all_answered.clear()
        try:
            yield
        finally:
            self._answering[task] -= 1
            if not self._answering[task]:
                del self._answering[task]
            if not self._answering:
                self._all_answered.set()

    async def stop_gracefully(self, grace: float = STOP_GRACE) -> None:
        """Take no new pictures, give the ones in progress up to ``grace`` seconds to get
        their replies, then disconnect (which ends :meth:`start`)."""
        self.accepting = False
        if self._answering:
            log.info(
                "stopping: finishing %d post(s) in progress, for up to %g s",
                self.answering_now,
                grace,
            )
            try:
                async with asyncio.timeout(grace):
                    await self._all_answered.wait()
            except TimeoutError:
                log.warning("stopping with %d post(s) still unanswered", self.answering_now)
                # Their replies could not be sent once disconnected: end them here.
                for task in self._answering:
                    if task is not None:
                        task.cancel()
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(1.0):
                        await self._all_answered.wait()
        log.info("stopping: disconnecting")
        await self.close()

    async def setup_hook(self) -> None:
        """Note the serving models, load the cogs, sync slash commands, start the model
        watcher."""
        await self.follow_model.coro(self)
        for name in EXTENSIONS:
            await self.load_extension(name)
        await self.tree.set_translator(CatalogTranslator(self.catalog))
        await self.tree.sync()
        self.follow_model.start()

    async def close(self) -> None:
        """Stop the watcher, then disconnect."""
        self.follow_model.cancel()
        await super().close()

    @tasks.loop(seconds=MODEL_POLL_SECONDS)
    async def follow_model(self) -> None:
        """Pick up models promoted by any process sharing the database."""
        try:
            await self.models.follow_changes()
            base = await self.models.base_model()
        except BotError as exc:
            log.warning("could not check for new models: %s", exc)
            return
        version = base.version if base is not None else None
        if version != self.base_version:
            log.info("the base model is %s", version)
            self.base_version = version

    def shards_description(self) -> str:
        """``0,1/4`` style: the shards this process runs."""
        ids = ",".join(str(i) for i in (self.shard_ids or [])) or "auto"
        return f"{ids}/{self.shard_count or '?'}"


def bot_of(interaction: discord.Interaction) -> AnimeBot:
    """The bot an interaction came to, with its services (for views, which have no cog)."""
    client = interaction.client
    if not isinstance(client, AnimeBot):
        raise TypeError(f"interaction for {client!r}, not the AnimeBot")
    return client


def point_at_api(settings: Settings) -> None:
    """Use another Discord API base and gateway (a local fake in tests, a proxy in production)."""
    if settings.discord_api_base:
        discord.http.Route.BASE = settings.discord_api_base.rstrip("/")
    if settings.discord_gateway_url:
        discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY = yarl.URL(settings.discord_gateway_url)


async def start_health_endpoint(bot: AnimeBot, stack: AsyncExitStack) -> None:
    """Serve /healthz and /metrics on the configured local address (port 0 turns it off)."""
    if bot.settings.http_port == 0:
        return

    bot.metrics.watch(
        LiveState(
            queue=lambda: bot.recognition.pending,
            model_version=lambda: bot.base_version,
            shards=bot.shards_description,
        )
    )

    def healthy() -> tuple[bool, str]:
        ready = bot.is_ready() and not bot.is_closed()
        return ready, "ok" if ready else "starting"

    runner = web.AppRunner(health_app(bot.metrics, healthy), access_log=None)
    await runner.setup()
    stack.push_async_callback(runner.cleanup)
    site = web.TCPSite(runner, bot.settings.http_host, bot.settings.http_port)
    await site.start()
    log.info("health and metrics on http://%s:%d", bot.settings.http_host, bot.settings.http_port)


def instance_name() -> str:
    """``host:pid``: this process among those sharing the database."""
    return f"{socket.gethostname()}:{os.getpid()}"


def download_policy(settings: Settings) -> FetchPolicy:
    """Where and how much the bot may download (Discord's CDN unless told otherwise)."""
    allow_private = bool(os.environ.get("ANIMEBOT_ALLOW_PRIVATE_DOWNLOADS"))
    return FetchPolicy(
        max_bytes=settings.max_image_bytes,
        total_timeout=settings.download_timeout,
        allow_private_addresses=allow_private,
        allowed_hosts=_allowed_hosts(allow_private),
    )


async def build_bot(
    settings: Settings,
    stack: AsyncExitStack,
    *,
    policy: FetchPolicy | None = None,
    **bot_options: Any,
) -> AnimeBot:
    """Open the bot's resources on ``stack`` (closed in reverse order) and build the bot.

    ``policy`` replaces the download policy from the settings (tests download from
    127.0.0.1); ``bot_options`` go to discord.py.
    """
    policy = policy or download_policy(settings)
    storage = await stack.enter_async_context(Storage.open(settings.database_url))
    session = await stack.enter_async_context(
        aiohttp.ClientSession(
            connector=GuardedConnector(allow_private_addresses=policy.allow_private_addresses)
        )
    )
    models = ModelStore(storage, settings.model_dir, cache_size=settings.model_cache_size)
    recognition = RecognitionService(
        models,
        cascade_path=settings.cascade_path,
        workers=settings.workers,
        queue_size=settings.queue_size,
    )
    stack.callback(recognition.close)
    training = TrainingManager(storage, models, settings, instance=instance_name())
    return AnimeBot(
        settings=settings,
        storage=storage,
        fetcher=ImageFetcher(session, policy),
        recognition=recognition,
        models=models,
        training=training,
        voting=Voting(storage),
        metrics=Metrics(),
        **bot_options,
    )


async def serve(settings: Settings, **bot_options: Any) -> None:
    """Open every resource, run the bot until it stops, then close them in reverse order."""
    point_at_api(settings)
    # Refuse a wrong CASCADE_PATH now, not on the first picture.
    default_face_finder(settings.cascade_path)
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    async with AsyncExitStack() as stack:
        bot = await build_bot(settings, stack, **bot_options)
        await stack.enter_async_context(bot)
        await start_health_endpoint(bot, stack)
        stop_on_sigterm(bot, stack)
        await bot.start(settings.discord_token or "")


def stop_on_sigterm(bot: AnimeBot, stack: AsyncExitStack) -> None:
    """SIGTERM (``docker stop``, systemd, Kubernetes) stops the bot gracefully: the pictures
    in progress are answered first (see :meth:`AnimeBot.stop_gracefully`)."""
    loop = asyncio.get_running_loop()
    stopping: list[asyncio.Task[None]] = []

    def on_sigterm() -> None:
        if not stopping:
            log.info("SIGTERM received")
            stopping.append(loop.create_task(bot.stop_gracefully()))

    loop.add_signal_handler(signal.SIGTERM, on_sigterm)
    stack.callback(loop.remove_signal_handler, signal.SIGTERM)


def _allowed_hosts(allow_private: bool) -> frozenset[str]:
    hosts = set(DISCORD_MEDIA_HOSTS)
    extra = os.environ.get("ANIMEBOT_EXTRA_DOWNLOAD_HOSTS", "")
    hosts.update(h.strip().lower() for h in extra.split(",") if h.strip())
    if allow_private:
        hosts.update({"127.0.0.1", "localhost"})
    return frozenset(hosts)


def run_bot(settings: Settings) -> int:
    """Run until interrupted; returns the process exit code."""
    try:
        asyncio.run(serve(settings))
    except discord.LoginFailure:
        log.error("Discord refused the token: check DISCORD_TOKEN")
        return 2
    except discord.PrivilegedIntentsRequired:
        log.error("enable the MESSAGE CONTENT intent for the bot in the developer portal")
        return 2
    except KeyboardInterrupt:
        pass
    return 0
