"""``python -m trainer train --data DIR --out BUNDLE_DIR``."""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from pathlib import Path

from bot.errors import BotError
from bot.vision.bundle import PRECISIONS
from bot.vision.cascade import resolve_cascade


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m trainer", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    train = commands.add_parser("train", help="train a model bundle from labelled pictures")
    train.add_argument("--data", type=Path, required=True, help="one sub-folder per character")
    train.add_argument("--out", type=Path, required=True, help="the bundle directory to write")
    train.add_argument(
        "--cache",
        type=Path,
        default=None,
        help="embedding cache directory (default: .cache/embeddings beside --out)",
    )
    train.add_argument("--no-cache", action="store_true", help="recompute every embedding")
    train.add_argument(
        "--cascade",
        type=Path,
        default=None,
        help="an LBP cascade file (default: $CASCADE_PATH, else the installed one)",
    )
    train.add_argument(
        "--backbone",
        default="mobilenet_v2",
        help="mobilenet_v2 (offline, default) or a keras.applications name (downloads weights)",
    )
    train.add_argument(
        "--fine-tune-steps",
        type=int,
        default=None,
        help="steps of fine-tuning the backbone's top blocks (default 240; 0 keeps the "
        "ImageNet backbone as it is)",
    )
    train.add_argument(
        "--backbone-from",
        type=Path,
        default=None,
        metavar="BUNDLE",
        help="reuse this bundle's (fine-tuned) backbone and crop settings; fit only the head",
    )
    train.add_argument(
        "--repeats",
        type=int,
        default=3,
        help="cross-validation repeats (only when no character has 3 pictures to hold out)",
    )
    train.add_argument(
        "--folds",
        type=int,
        default=10,
        help="cross-validation folds (only when no character has 3 pictures to hold out)",
    )
    train.add_argument(
        "--unsure-rate",
        type=float,
        default=0.16,
        help="share of right validation answers the unsure threshold may flag",
    )
    train.add_argument(
        "--precision",
        choices=PRECISIONS,
        default="int8",
        help="how the exported backbone computes (int8: fastest, calibrated on the faces)",
    )
    train.add_argument("--float32", action="store_true", help="same as --precision float32")
    train.add_argument("--quiet", action="store_true", help="no progress bars")
    train.add_argument("--json", action="store_true", help="print model.json when done")
    train.add_argument(
        "--progress-json",
        action="store_true",
        help='print one JSON line per step to stdout: {"stage": S, "done": N, "total": T}',
    )
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point; returns the process exit code."""
    args = _parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    from trainer import progress
    from trainer.finetune import FineTuneOptions
    from trainer.train import TrainOptions, train

    if args.progress_json:
        progress.enable()

    try:
        cascade = resolve_cascade(args.cascade)
    except BotError as exc:
        print(f"error: {exc.user_message}", file=sys.stderr)
        return 1
    if args.fine_tune_steps is not None and args.fine_tune_steps < 0:
        print("error: --fine-tune-steps must be 0 or more", file=sys.stderr)
        return 2
    fine_tune: FineTuneOptions | None = FineTuneOptions()
    if args.fine_tune_steps == 0:
        fine_tune = None
    elif args.fine_tune_steps is not None:
        fine_tune = FineTuneOptions(steps=args.fine_tune_steps)
    cache = None if args.no_cache else (args.cache or args.out.parent / ".cache" / "embeddings")
    options = TrainOptions(
        data=args.data,
        out=args.out,
        cache_dir=cache,
        cascade_path=cascade,
        backbone=args.backbone,
        fine_tune=fine_tune,
        backbone_from=args.backbone_from,
        folds=args.folds,
        repeats=args.repeats,
        false_flag_rate=args.unsure_rate,
        precision="float32" if args.float32 else args.precision,
        progress=not args.quiet,
    )
    try:
        result = train(options)
    except BotError as exc:
        print(f"error: {exc.user_message}", file=sys.stderr)
        return 1
    info = result.info
    if args.json:
        print(json.dumps(info, indent=2))
    else:
        print(
            f"wrote {result.bundle}: {info['label_count']} characters, "
            f"{info['metrics']['method']} top-1 {info['metrics']['top1']:.3f}, "
            f"unsure below {info['unsure']['threshold']:.4f}"
        )
        print("timings: " + ", ".join(f"{k} {v:.1f}s" for k, v in result.timings.items()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
