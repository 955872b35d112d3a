"""The bot's command line: ``run`` (the Discord bot), ``classify`` (pictures on disk),
``migrate`` (bring the database to the latest schema), ``install-base`` (the operator's base
model and its training pictures into the database)."""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from bot.config import ConfigError, Settings
from bot.errors import BotError

log = logging.getLogger("bot")

TOKEN_HELP = """\
DISCORD_TOKEN is not set, so the bot cannot log in.
Create an application at https://discord.com/developers/applications, add a Bot to it,
copy its token and put it in the environment or in a .env file:

    DISCORD_TOKEN=your-token-here

Also enable the MESSAGE CONTENT intent on the Bot page (see README.md, "Install the bot")."""


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m bot", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("run", help="run the Discord bot (settings from the environment)")
    commands.add_parser("migrate", help="apply database migrations and exit")
    classify = commands.add_parser("classify", help="name the characters in pictures on disk")
    classify.add_argument("--model", type=Path, required=True, help="a model bundle directory")
    classify.add_argument("--json", action="store_true", help="one JSON object per line")
    classify.add_argument("--top", type=int, default=3, help="labels shown per face (human)")
    classify.add_argument(
        "--cascade",
        type=Path,
        default=None,
        help="an LBP cascade file (default: $CASCADE_PATH, else the installed one)",
    )
    classify.add_argument("images", nargs="+", help="picture files")
    install = commands.add_parser(
        "install-base",
        help="install a bundle as the base model, importing its training pictures once",
    )
    install.add_argument("bundle", type=Path, help="a bundle from `python -m trainer train`")
    install.add_argument(
        "--data", type=Path, default=None, help="the folder the bundle was trained on"
    )
    return parser


def _install_base(args: argparse.Namespace, settings: Settings) -> int:
    import asyncio

    from bot.install import install_base
    from bot.model_store import ModelStore
    from bot.storage.db import Storage

    async def install() -> int:
        async with Storage.open(settings.database_url) as storage:
            store = ModelStore(storage, settings.model_dir)
            result = await install_base(
                storage,
                store,
                args.bundle,
                args.data,
                cascade_path=settings.cascade_path,
                report=lambda line: print(line, file=sys.stderr),
            )
        print(
            f"base model {result.version} installed: {len(result.labels)} characters; "
            f"{result.imported} training pictures imported"
            + (f", {result.already_there} imported before" if result.already_there else "")
            + (f", {len(result.skipped)} skipped" if result.skipped else "")
        )
        for line in result.skipped:
            print(f"  skipped {line}")
        return 0

    return asyncio.run(install())


def _classify(args: argparse.Namespace, settings: Settings) -> int:
    from bot.cli_classify import classify_paths
    from bot.vision.bundle import load_bundle
    from bot.vision.recognizer import Recognizer

    recognizer = Recognizer.from_paths(
        load_bundle(args.model), args.cascade or settings.cascade_path
    )
    failures = classify_paths(recognizer, args.images, as_json=args.json, top=max(1, args.top))
    return 0 if failures < len(args.images) else 1


def _check_cascade(settings: Settings) -> None:
    """Refuse a cascade OpenCV cannot load now, before any log line or database work."""
    from bot.vision.faces import DetectorConfigError, default_face_finder

    try:
        default_face_finder(settings.cascade_path)
    except DetectorConfigError as exc:
        raise ConfigError(f"CASCADE_PATH: {exc.user_message}") from None


def main(argv: list[str] | None = None) -> int:
    """Entry point; returns the exit code."""
    args = _parser().parse_args(argv)
    try:
        settings = Settings.from_env()
        if args.command == "run" and settings.discord_token:
            _check_cascade(settings)
    except ConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    logging.basicConfig(
        level=settings.log_level, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    try:
        if args.command == "classify":
            return _classify(args, settings)
        if args.command == "install-base":
            return _install_base(args, settings)
        if args.command == "migrate":
            import asyncio

            from bot.storage.db import upgrade_to_head

            asyncio.run(upgrade_to_head(settings.database_url))
            return 0
        if not settings.discord_token:
            print(TOKEN_HELP, file=sys.stderr)
            return 2
        from bot.app import run_bot

        return run_bot(settings)
    except BotError as exc:
        print(f"error: {exc.user_message}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
